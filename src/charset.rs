//! Turning a body's bytes into text with the encoding the page meant.
//!
//! Order, as browsers do it: a byte-order mark, then the `Content-Type` charset, then a
//! `<meta charset>` / `http-equiv` declaration in the first kilobyte or later in the head,
//! then an XML declaration's `encoding` (XHTML's), whose `<?x` tells UTF-16 without a mark.
//! Without any of them the body is UTF-8 if it is valid UTF-8, else windows-1252 (the
//! web's old default), so undeclared legacy pages still come out readable rather than
//! full of U+FFFD. A page served as `application/xhtml+xml` is read as a browser's XML
//! parser reads it, which knows no `<meta>`.

use std::borrow::Cow;
use std::sync::LazyLock;

use encoding_rs::{Encoding, UTF_16BE, UTF_16LE, UTF_8, WINDOWS_1252, X_USER_DEFINED};
use regex::bytes::Regex;

use crate::html::Syntax;

/// How far into the body a `<meta>` declaration is always looked for (the HTML spec's
/// prescan).
const PRESCAN_BYTES: usize = 1024;
/// How far a `<head>` is read for a declaration past [`PRESCAN_BYTES`]. Browsers honour
/// one anywhere in the head (Chrome reads on while it sees head elements, Firefox reloads
/// the page in the declared encoding), so a legacy page whose scripts and styles come
/// before its `<meta charset>` shows right in them; the crawl must read it alike.
const HEAD_SCAN_BYTES: usize = 64 * 1024;

/// Where a document's head visibly ends.
static HEAD_END: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i-u)</head\b|<body\b")
        .unwrap_or_else(|e| panic!("the end-of-head pattern is a constant: {e}"))
});

/// A `<meta>` tag; a `>` inside a quoted value does not end it.
static META_TAG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i-u)<meta[\s/](?:"[^"]*"|'[^']*'|[^"'>])*"#)
        .unwrap_or_else(|e| panic!("the meta tag pattern is a constant: {e}"))
});

/// One attribute of a tag: its name, and its value double-quoted, single-quoted or bare.
static ATTRIBUTE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?-u)([^\s"'>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]*)))?"#)
        .unwrap_or_else(|e| panic!("the attribute pattern is a constant: {e}"))
});

/// A body as text, with the encoding it was read in.
pub struct Decoded<'a> {
    pub text: Cow<'a, str>,
    /// The page's encoding, which its links' query strings are spelled in, as browsers
    /// spell them (see [`crate::urlnorm::resolve_in`]).
    pub encoding: &'static Encoding,
}

/// Decodes `body`, choosing the encoding as the module doc describes.
pub fn decode<'a>(body: &'a [u8], content_type: Option<&str>) -> Decoded<'a> {
    let decoded = |encoding: &'static Encoding, bytes: &'a [u8]| Decoded {
        text: encoding.decode_without_bom_handling(bytes).0,
        encoding,
    };
    if let Some((encoding, bom_len)) = declared(body, content_type) {
        return decoded(encoding, &body[bom_len..]);
    }
    match is_utf8(body) {
        true => decoded(UTF_8, body),
        false => decoded(WINDOWS_1252, body),
    }
}

/// Whether undeclared `body` is UTF-8: valid, or valid up to a character cut off at the
/// end (a body cut at `fetch.max_body_bytes`; plain ASCII before one high byte proves
/// nothing).
fn is_utf8(body: &[u8]) -> bool {
    match std::str::from_utf8(body) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && !body[..e.valid_up_to()].is_ascii(),
    }
}

/// The encoding `body` declares by its byte-order mark (with the mark's length), else by
/// `content_type` or a `<meta>` (length 0): what decides before any sniffing.
pub fn declared(body: &[u8], content_type: Option<&str>) -> Option<(&'static Encoding, usize)> {
    Encoding::for_bom(body).or_else(|| {
        content_type
            .and_then(from_content_type)
            .or_else(|| prescan(body, Syntax::of(content_type)))
            .map(|encoding| (encoding, 0))
    })
}

fn from_content_type(content_type: &str) -> Option<&'static Encoding> {
    content_type
        .split(';')
        .skip(1)
        .filter_map(charset_parameter)
        .find_map(|label| Encoding::for_label(label.as_bytes()))
}

/// The label a `Content-Type`'s first `charset` parameter names, known or not (what a
/// later line of the same type without one inherits).
pub fn charset_label(content_type: &str) -> Option<&str> {
    content_type.split(';').skip(1).find_map(charset_parameter)
}

/// The value of one `;`-separated parameter if it is `charset`, unquoted.
fn charset_parameter(param: &str) -> Option<&str> {
    let (name, value) = param.split_once('=')?;
    name.trim()
        .eq_ignore_ascii_case("charset")
        .then(|| value.trim().trim_matches(['"', '\'']))
}

/// What the body says of its own encoding when no header did: a `<meta>`, else an XML
/// declaration, as the HTML standard's prescan reads them. A page in XML `syntax` says
/// it by its XML declaration only, as browsers' XML parsers read it: without one it is
/// UTF-8, XML's default, whatever an XHTML template's stale `<meta>` says, and only a
/// page that is not UTF-8 either (which browsers refuse to show) is read by its `<meta>`,
/// the best guess left.
fn prescan(body: &[u8], syntax: Syntax) -> Option<&'static Encoding> {
    // An XML declaration in UTF-16 (`<?x`, each byte beside a zero) tells UTF-16 without
    // a byte-order mark, which the prescan looks for first.
    if body.starts_with(b"<\0?\0x\0") {
        return Some(UTF_16LE);
    }
    if body.starts_with(b"\0<\0?\0x") {
        return Some(UTF_16BE);
    }
    if let Some(utf16) = utf16_by_its_zeros(body) {
        return Some(utf16);
    }
    let encoding = match syntax {
        Syntax::Html => from_meta(body).or_else(|| from_xml_declaration(body)),
        Syntax::Xml => from_xml_declaration(body)
            .or_else(|| (!is_utf8(body)).then(|| from_meta(body)).flatten()),
    }?;
    // A body that reached here has no BOM, so a declared UTF-16 cannot be right; the HTML
    // spec reads such pages as UTF-8, and `x-user-defined` (a font hack) as windows-1252.
    Some(if encoding == UTF_16LE || encoding == UTF_16BE {
        UTF_8
    } else if encoding == X_USER_DEFINED {
        WINDOWS_1252
    } else {
        encoding
    })
}

/// The fewest bytes UTF-16 is told by in [`utf16_by_its_zeros`]: room for
/// `<title></title>`, as Firefox has it.
const UTF16_SNIFF_MIN_BYTES: usize = 30;

/// UTF-16 with neither a byte-order mark nor a declaration (a Windows tool's "Unicode"
/// saved without its mark), told as Firefox tells it: in the first kilobyte, every other
/// byte is zero and none between them is (markup in ASCII), the zeros after the letters
/// in little-endian, before them in big-endian. Read byte by byte, such a page has a NUL
/// beside each letter: a binary file, its title and links lost.
fn utf16_by_its_zeros(body: &[u8]) -> Option<&'static Encoding> {
    let head = &body[..body.len().min(PRESCAN_BYTES)];
    if head.len() < UTF16_SNIFF_MIN_BYTES {
        return None;
    }
    let every_other = |first: usize, zero: bool| {
        head.iter()
            .skip(first)
            .step_by(2)
            .all(|&byte| (byte == 0) == zero)
    };
    if every_other(0, false) && every_other(1, true) {
        Some(UTF_16LE)
    } else if every_other(0, true) && every_other(1, false) {
        Some(UTF_16BE)
    } else {
        None
    }
}

fn from_meta(body: &[u8]) -> Option<&'static Encoding> {
    let head = outside_comments(&body[..head_len(body)]);
    META_TAG
        .find_iter(&head)
        .find_map(|tag| meta_declares(tag.as_bytes()))
}

/// The `encoding` of an XML declaration opening the body (`<?xml version="1.0"
/// encoding="Shift_JIS"?>`), as the HTML standard's "get an XML encoding" reads it: an
/// XHTML page names its encoding there and only there (an XML parser knows no `<meta
/// charset>`), and browsers read it from a `text/html` page too.
fn from_xml_declaration<'a>(body: &'a [u8]) -> Option<&'static Encoding> {
    const ENCODING: &[u8] = b"encoding";
    let rest = body[..body.len().min(PRESCAN_BYTES)].strip_prefix(b"<?xml")?;
    let declaration = &rest[..rest.iter().position(|&b| b == b'>')?];
    let at = declaration
        .windows(ENCODING.len())
        .position(|w| w.eq_ignore_ascii_case(ENCODING))?;
    // The standard skips every byte up to a space around the `=`, controls too.
    let spaced = |bytes: &'a [u8]| &bytes[bytes.iter().take_while(|&&b| b <= b' ').count()..];
    let rest = spaced(&declaration[at + ENCODING.len()..]).strip_prefix(b"=")?;
    let (&quote, rest) = spaced(rest).split_first()?;
    if quote != b'"' && quote != b'\'' {
        return None;
    }
    let label = &rest[..rest.iter().position(|&b| b == quote)?];
    match label.iter().any(|&b| b <= b' ') {
        true => None,
        false => Encoding::for_label(label),
    }
}

/// The encoding a `<meta>` tag declares, as the HTML standard's prescan reads it: its
/// `charset`, else the charset in the `content` of an `http-equiv="content-type"`. Other
/// metas' text (a description that mentions "charset=utf-8") declares nothing, and a
/// label no browser knows (`utf8mb4`, a template's `{charset}`) leaves the decision to
/// the next `<meta>`.
fn meta_declares(tag: &[u8]) -> Option<&'static Encoding> {
    let (mut pragma, mut charset, mut content) = (false, None, None);
    for attr in ATTRIBUTE.captures_iter(tag.get(b"<meta".len()..)?) {
        let Some(name) = attr.get(1).map(|n| n.as_bytes()) else {
            continue;
        };
        // A bare value runs up to a space or `>`, so `<meta charset=utf-8/>` would say
        // `utf-8/`: the slash closes the tag, as its author meant.
        let bare = attr.get(4).map(|v| v.as_bytes());
        let value = match (attr.get(2).or(attr.get(3)), bare) {
            (Some(quoted), _) => quoted.as_bytes(),
            (None, Some(bare)) => bare.strip_suffix(b"/").unwrap_or(bare),
            (None, None) => b"",
        };
        if name.eq_ignore_ascii_case(b"http-equiv") {
            pragma |= value.eq_ignore_ascii_case(b"content-type");
        } else if name.eq_ignore_ascii_case(b"charset") {
            charset.get_or_insert(value);
        } else if name.eq_ignore_ascii_case(b"content") {
            content.get_or_insert(value);
        }
    }
    match (charset, content) {
        (Some(label), _) => Encoding::for_label(label),
        (None, Some(content)) if pragma => {
            charset_in_content(content).and_then(Encoding::for_label)
        }
        _ => None,
    }
}

/// The label in a `content="text/html; charset=…"`, as the HTML standard extracts it.
fn charset_in_content(content: &[u8]) -> Option<&[u8]> {
    const CHARSET: &[u8] = b"charset";
    let mut rest = content;
    loop {
        let at = rest
            .windows(CHARSET.len())
            .position(|w| w.eq_ignore_ascii_case(CHARSET))?;
        rest = &rest[at + CHARSET.len()..];
        let Some(value) = rest.trim_ascii_start().strip_prefix(b"=") else {
            continue;
        };
        let value = value.trim_ascii_start();
        return match value.first() {
            Some(&quote @ (b'"' | b'\'')) => {
                let quoted = &value[1..];
                quoted
                    .iter()
                    .position(|&c| c == quote)
                    .map(|end| &quoted[..end])
            }
            _ => {
                let end = value
                    .iter()
                    .position(|c| c.is_ascii_whitespace() || *c == b';')
                    .unwrap_or(value.len());
                (end > 0).then(|| &value[..end])
            }
        };
    }
}

/// How much of `body` may declare its encoding: the prescan's bytes, or up to where the
/// head ends when that is further but within [`HEAD_SCAN_BYTES`]. A page that never
/// says where its head ends gets the prescan only.
fn head_len(body: &[u8]) -> usize {
    let window = &body[..body.len().min(HEAD_SCAN_BYTES)];
    let head = HEAD_END.find(window).map_or(0, |end| end.start());
    head.max(PRESCAN_BYTES).min(body.len())
}

/// `head` without its `<!-- … -->` comments: a commented-out declaration (a template's
/// leftover, an old charset kept for reference) is not the page's, as the HTML spec's
/// prescan skips comments too. A comment still open at the end hides the rest.
fn outside_comments(head: &[u8]) -> Cow<'_, [u8]> {
    let Some(first) = find(head, b"<!--") else {
        return Cow::Borrowed(head);
    };
    let mut kept = head[..first].to_vec();
    let mut rest = &head[first..];
    while let Some(open) = find(rest, b"<!--") {
        kept.extend_from_slice(&rest[..open]);
        let body = &rest[open + 4..];
        // `<!-->` and `<!--->` are complete (empty) comments, as the tokenizer reads them.
        let close = if body.starts_with(b">") {
            Some(1)
        } else if body.starts_with(b"->") {
            Some(2)
        } else {
            find(body, b"-->").map(|c| c + 3)
        };
        let Some(close) = close else {
            return Cow::Owned(kept);
        };
        rest = &body[close..];
    }
    kept.extend_from_slice(rest);
    Cow::Owned(kept)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode<'a>(body: &'a [u8], content_type: Option<&str>) -> Cow<'a, str> {
        super::decode(body, content_type).text
    }

    #[test]
    fn the_header_charset_wins_over_meta() {
        let body = b"<meta charset=utf-8><title>\x93hi\x94</title>";
        assert!(
            decode(body, Some("text/html; charset=windows-1252")).contains("\u{201c}hi\u{201d}")
        );
    }

    #[test]
    fn meta_declares_when_the_header_does_not() {
        let (sjis, _, _) = encoding_rs::SHIFT_JIS.encode("日本語");
        let mut body = b"<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=Shift_JIS\"><title>".to_vec();
        body.extend_from_slice(&sjis);
        assert!(decode(&body, Some("text/html")).contains("日本語"));
    }

    #[test]
    fn a_declaration_in_a_comment_is_not_the_pages() {
        let body = b"<!-- <meta charset=shift_jis> --><title>caf\xc3\xa9</title>";
        assert_eq!(
            decode(body, None),
            "<!-- <meta charset=shift_jis> --><title>caf\u{e9}</title>"
        );
        let after = b"<!--> <meta charset=iso-8859-2><title>\xb1</title>";
        assert!(
            decode(after, None).ends_with("<title>\u{105}</title>"),
            "`<!-->` is closed"
        );
        let unclosed = b"<!-- <meta charset=iso-8859-2><title>\xb1";
        assert!(
            decode(unclosed, None).ends_with("\u{b1}"),
            "windows-1252, not latin-2"
        );
    }

    #[test]
    fn a_declaration_late_in_a_long_head_still_decides() {
        let scripts = "<script>var x = 1;</script>\n".repeat(60);
        let mut body = format!("<html><head>{scripts}").into_bytes();
        assert!(body.len() > PRESCAN_BYTES);
        body.extend_from_slice(b"<meta charset=iso-8859-2><title>\xb1</title></head><body>");
        assert!(decode(&body, Some("text/html")).ends_with("<title>\u{105}</title></head><body>"));

        let text = "x".repeat(2 * PRESCAN_BYTES);
        let mut in_body = format!("<head><title>t</title></head><body>{text}").into_bytes();
        in_body.extend_from_slice(b"<meta charset=iso-8859-2>\xb1");
        assert!(
            decode(&in_body, None).ends_with("\u{b1}"),
            "a declaration in the body is not the page's"
        );
    }

    #[test]
    fn undeclared_bytes_fall_back_to_utf8_then_windows_1252() {
        assert_eq!(decode("café".as_bytes(), None), "café");
        assert_eq!(decode(b"caf\xe9", None), "café");
    }

    #[test]
    fn a_byte_order_mark_decides_and_is_removed() {
        assert_eq!(
            decode(b"\xef\xbb\xbfok", Some("text/html; charset=iso-8859-1")),
            "ok"
        );
    }

    #[test]
    fn utf8_cut_off_mid_character_stays_utf8() {
        let page = "<title>Café – 日本語</title>".as_bytes();
        let cut = &page[..page.len() - 10];
        assert!(std::str::from_utf8(cut).is_err(), "cut inside a character");
        assert_eq!(decode(cut, Some("text/html")), "<title>Café – 日本\u{fffd}");
    }

    /// As the HTML standard's prescan reads a `<meta>`: its `charset`, or the charset in
    /// the `content` of an `http-equiv="content-type"`; a label no browser knows leaves
    /// the next `<meta>` to decide, and other metas' words (a description that says
    /// "charset=utf-8") declare nothing.
    #[test]
    fn only_a_meta_declaring_a_known_charset_decides() {
        for head in [
            "<meta name=description content='Set charset=utf-8 in your editor'>",
            "<meta property='og:title' content=\"charset=utf-8\"><meta content='text/html; charset=utf-8'>",
        ] {
            let mut body = head.as_bytes().to_vec();
            body.extend_from_slice(b"<title>caf\xe9</title>");
            assert!(decode(&body, None).ends_with("caf\u{e9}</title>"), "{head}");
        }
        for head in [
            "<meta charset='utf8mb4'><meta charset=iso-8859-2>",
            "<meta http-equiv='Content-Type' content='text/html; charset={charset}'>\
             <meta http-equiv=content-type content='text/html; charset=iso-8859-2'>",
            "<meta content='a > b' name=x><meta charset=\"iso-8859-2\">",
            "<meta charset=iso-8859-2/>",
        ] {
            assert_eq!(b1_after(head), "\u{105}", "{head}");
        }
        let user_defined = b"<meta charset=x-user-defined><title>\x80</title>";
        assert!(decode(user_defined, None).ends_with("<title>\u{20ac}</title>"));
    }

    /// What byte 0xB1 in a `<title>` after `head` reads as: `ą` in latin-2, `±` in
    /// windows-1252, U+FFFD in UTF-8.
    fn b1_after(head: &str) -> String {
        let mut body = head.as_bytes().to_vec();
        body.extend_from_slice(b"<title>\xb1</title>");
        let text = decode(&body, None);
        let title = text.rsplit("<title>").next().unwrap_or_default();
        title.trim_end_matches("</title>").to_owned()
    }

    /// XHTML names its encoding in its XML declaration, read as the HTML standard's "get
    /// an XML encoding" does: after any `<meta>`, and only a quoted label at the very start.
    #[test]
    fn an_xml_declaration_names_the_encoding_when_no_meta_does() {
        for declaration in [
            "<?xml version='1.0' encoding='iso-8859-2'?>",
            "<?xml version=\"1.0\" ENCODING = \"ISO-8859-2\" standalone=\"yes\"?>",
            "<?xml version='1.0' encoding='windows-1252'?><meta charset=iso-8859-2>",
        ] {
            assert_eq!(b1_after(declaration), "\u{105}", "{declaration}");
        }
        for not_one in [
            " <?xml version='1.0' encoding='iso-8859-2'?>",
            "<?xml version='1.0' encoding=iso-8859-2?>",
            "<?xml version='1.0'?><p>encoding='iso-8859-2'</p>",
        ] {
            assert_eq!(b1_after(not_one), "\u{b1}", "{not_one}");
        }
        assert_eq!(
            b1_after("<?xml version='1.0' encoding='utf-16'?>"),
            "\u{fffd}",
            "UTF-16 with no BOM is read as UTF-8"
        );
    }

    /// Without a byte-order mark or a declaration, UTF-16 is told by the zero beside each
    /// ASCII byte of its first kilobyte, as Firefox tells it; a body too short to tell by,
    /// or whose zeros fall at both, is not.
    #[test]
    fn utf16_without_a_bom_is_told_by_its_zeros() {
        let le = utf16_both_ways("<html><title>caf\u{e9}</title></html>");
        assert!(utf16_by_its_zeros(&le[..UTF16_SNIFF_MIN_BYTES - 2]).is_none());
        let mut mixed = le.clone();
        mixed[2] = 0;
        assert!(
            utf16_by_its_zeros(&mixed).is_none(),
            "a zero among the letters"
        );
    }

    /// Without a byte-order mark, UTF-16 is told by an XML declaration opening the page,
    /// `<?x` with a zero beside each byte, as the HTML standard's prescan tells it.
    #[test]
    fn utf16_without_a_bom_is_told_by_its_xml_declaration() {
        let le = utf16_both_ways("<?xml version='1.0'?><title>\u{e9}</title>");
        assert!(
            decode(&le, Some("text/html; charset=windows-1252")).starts_with("<\0?\0x\0"),
            "a header charset decides first"
        );
    }

    /// `page` in UTF-16LE, once checked that it and its UTF-16BE are decoded back to it
    /// without a byte-order mark or a header charset.
    fn utf16_both_ways(page: &str) -> Vec<u8> {
        let le: Vec<u8> = page.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let be: Vec<u8> = page.encode_utf16().flat_map(u16::to_be_bytes).collect();
        assert_eq!(decode(&le, None), page, "UTF-16LE");
        assert_eq!(decode(&be, None), page, "UTF-16BE");
        le
    }
}
