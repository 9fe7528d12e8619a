//! Telling HTML from other bytes when a response has no `Content-Type`, as browsers do
//! (the WHATWG MIME Sniffing standard's HTML patterns): a server that forgets the header
//! still serves pages people read, and their links lead on. And telling binary bytes (an
//! image, an archive) served as HTML by their first bytes, which are all it takes.

use encoding_rs::{UTF_16BE, UTF_16LE};
use reqwest::header::{HeaderMap, X_CONTENT_TYPE_OPTIONS};

use crate::charset;

/// How much of a body the standard looks at (its "resource header").
pub const SNIFF_BYTES: usize = 1445;

/// What an HTML page starts with, after whitespace, each followed by a space or `>`.
const HTML_STARTS: [&[u8]; 17] = [
    b"<!DOCTYPE HTML",
    b"<HTML",
    b"<HEAD",
    b"<SCRIPT",
    b"<IFRAME",
    b"<H1",
    b"<DIV",
    b"<FONT",
    b"<TABLE",
    b"<A",
    b"<STYLE",
    b"<TITLE",
    b"<B",
    b"<BODY",
    b"<BR",
    b"<P",
    b"<!--",
];

/// A `Content-Type`'s `type/subtype`, its parameters and surrounding spaces left out. It
/// ends at the first `;`, space, tab or `(`, as Chromium and Firefox read it: a value
/// missing the `;` before its charset (PHP's `header("Content-Type: text/html
/// charset=utf-8")`) is still `text/html` there, and the page is shown.
pub fn essence(content_type: &str) -> &str {
    let value = content_type.trim_start();
    let end = value.find([';', ' ', '\t', '(']).unwrap_or(value.len());
    value[..end].trim_end()
}

/// Whether a response's `Content-Type` leaves its type to the body, as browsers take
/// it: none at all, one naming no `type/subtype` (PHP's `header("Content-Type:
/// charset=utf-8")`, an empty value), one the standard's MIME parser fails (a type in
/// quotes, `"text/html"`: its halves must be tokens), or one of its "unknown" types.
pub fn type_unknown(content_type: Option<&str>) -> bool {
    let Some(content_type) = content_type else {
        return true;
    };
    let essence = essence(content_type);
    let Some((kind, subtype)) = essence.split_once('/') else {
        return true;
    };
    !is_token(kind)
        || !is_token(subtype)
        || ["unknown/unknown", "application/unknown", "*/*"]
            .iter()
            .any(|unknown| essence.eq_ignore_ascii_case(unknown))
}

/// Whether a response forbids sniffing its type (`X-Content-Type-Options: nosniff`), as
/// the Fetch standard's "determine nosniff" reads the header: its first value, in any
/// case. Browsers then sniff a body of no known type without the HTML patterns, and show
/// a page as text: security middleware (helmet, Spring Security) sends the header on
/// every answer, a script's that forgot its type included.
pub fn forbidden(headers: &HeaderMap) -> bool {
    headers
        .get(X_CONTENT_TYPE_OPTIONS)
        .and_then(|value| value.as_bytes().split(|&b| b == b',').next())
        .is_some_and(|first| first.trim_ascii().eq_ignore_ascii_case(b"nosniff"))
}

/// Whether `text` is an HTTP token (RFC 9110 §5.6.2), as a MIME type's halves must be.
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Whether a body starting with `head` is HTML. Only the start counts: text that merely
/// holds markup further on (a log, a README) is not a page.
pub fn looks_like_html(head: &[u8]) -> bool {
    let rest = after_whitespace(head);
    HTML_STARTS.iter().any(|tag| {
        rest.len() > tag.len()
            && rest[..tag.len()].eq_ignore_ascii_case(tag)
            && matches!(rest[tag.len()], b' ' | b'>')
    })
}

/// NUL bytes near the start mean binary data (an image, an archive) labelled as HTML;
/// text in UTF-16 has them too, and says so by its byte-order mark, its `Content-Type`
/// charset or an XML declaration in UTF-16. A body that starts as a page does
/// (`<!DOCTYPE html>`, `<html>`: what browsers sniff HTML by; `<?xml`, as XHTML does) is
/// a page with a stray NUL (a corrupt field), which browsers drop: no image or archive
/// starts so. Asked of the first bytes the fetcher has decoded, so a binary body is read
/// no further: what decides is all in the first [`SNIFF_BYTES`] (a `<meta>` naming UTF-16
/// names UTF-8 to the prescan), so that much of a body tells it as surely as the whole.
pub fn looks_binary(body: &[u8], content_type: Option<&str>) -> bool {
    body[..body.len().min(1024)].contains(&0)
        && !looks_like_markup(body)
        && !charset::declared(body, content_type)
            .is_some_and(|(encoding, _)| encoding == UTF_16LE || encoding == UTF_16BE)
}

/// Whether a body starting with `head` is markup as it came: HTML by the patterns above,
/// or XML by its declaration (XHTML, a sitemap). No compressed stream starts so, which
/// tells a body under a `Content-Encoding` naming no coding (`UTF-8`, `none`) from one
/// in a coding the crawler cannot decode. A UTF-8 byte order mark before it (a page a
/// Windows editor or ASP.NET wrote) leaves it markup: no coding's stream starts so either.
/// (Sniffing a body of no known type does not skip one: the standard takes such a body
/// for text.)
pub fn looks_like_markup(head: &[u8]) -> bool {
    let head = head.strip_prefix(UTF8_BOM).unwrap_or(head);
    looks_like_html(head) || after_whitespace(head).starts_with(b"<?xml")
}

/// The UTF-8 encoding of U+FEFF, the byte order mark.
const UTF8_BOM: &[u8] = b"\xef\xbb\xbf";

/// The standard's resource header of a body, its leading whitespace skipped.
fn after_whitespace(head: &[u8]) -> &[u8] {
    let head = &head[..head.len().min(SNIFF_BYTES)];
    let start = head
        .iter()
        .position(|b| !matches!(b, b'\t' | b'\n' | b'\x0c' | b'\r' | b' '))
        .unwrap_or(head.len());
    &head[start..]
}

#[cfg(test)]
mod tests {
    use reqwest::header::{HeaderMap, HeaderValue, X_CONTENT_TYPE_OPTIONS};

    use super::{
        essence, forbidden, looks_binary, looks_like_html, looks_like_markup, type_unknown,
    };

    #[test]
    fn a_stray_nul_in_a_page_is_not_binary() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\x0d<title>x</title>";
        assert!(looks_binary(png, Some("text/html")));
        assert!(looks_binary(&[0; 64], Some("text/html")));
        let page = b"\n<!DOCTYPE html><html><meta content='a\0b'><title>t</title>";
        assert!(!looks_binary(page, Some("text/html")));
        let xhtml = b"<?xml version='1.0'?>\n<html><meta content='a\0b'/><title>t</title>";
        assert!(!looks_binary(xhtml, Some("application/xhtml+xml")));
    }

    #[test]
    fn nosniff_is_the_headers_first_value_in_any_case() {
        let with = |lines: &[&'static str]| {
            let mut headers = HeaderMap::new();
            for line in lines {
                headers.append(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static(line));
            }
            forbidden(&headers)
        };
        assert!(with(&["nosniff"]));
        assert!(with(&[" NoSniff , other"]));
        assert!(with(&["nosniff", "other"]));
        assert!(!with(&[]));
        assert!(!with(&["other, nosniff"]));
        assert!(!with(&["nosniffing"]));
    }

    #[test]
    fn a_type_that_names_none_is_left_to_the_body() {
        for unknown in [
            None,
            Some(""),
            Some("charset=utf-8"),
            Some("*/*"),
            Some("text/"),
            Some("\"text/html\""),
            Some("text /html"),
        ] {
            assert!(type_unknown(unknown), "{unknown:?}");
        }
        for known in ["text/html", "image/png; q=1", "Application/Octet-Stream"] {
            assert!(!type_unknown(Some(known)), "{known}");
        }
    }

    #[test]
    fn a_type_ends_where_browsers_end_it() {
        for (value, type_) in [
            (" text/html ; charset=utf-8", "text/html"),
            ("text/html charset=utf-8", "text/html"),
            ("text/html\tcharset=utf-8", "text/html"),
            ("text/html(comment)", "text/html"),
            ("charset=utf-8", "charset=utf-8"),
            ("", ""),
        ] {
            assert_eq!(essence(value), type_, "{value:?}");
        }
    }

    #[test]
    fn a_page_is_known_by_its_first_tag() {
        for page in [
            "<!doctype html><title>t</title>",
            "\r\n  <HTML lang=en>",
            "<p>hello",
            "<!-- generated -->",
        ] {
            assert!(looks_like_html(page.as_bytes()), "{page}");
        }
        for other in [
            "plain text <a href='/x'>x</a>",
            "<?xml version='1.0'?><html>",
            "<pre>",
            "<a",
            "\u{feff}<html>",
            "",
        ] {
            assert!(!looks_like_html(other.as_bytes()), "{other}");
        }
    }

    #[test]
    fn markup_as_it_came_is_told_from_an_encoded_body() {
        for markup in [
            "<!DOCTYPE html>",
            " <?xml version='1.0'?><html>",
            "<p>hi",
            "\u{feff}<!DOCTYPE html>",
            "\u{feff}\n<?xml version='1.0'?>",
        ] {
            assert!(looks_like_markup(markup.as_bytes()), "{markup}");
        }
        for encoded in [
            &b"\x1f\x9d\x90<html>"[..],
            b"\x28\xb5\x2f\xfd<p>",
            b"<?xm",
            b"",
        ] {
            assert!(!looks_like_markup(encoded), "{encoded:?}");
        }
    }
}
