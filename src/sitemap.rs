//! Sitemaps (sitemaps.org): XML `<urlset>` and `<sitemapindex>`, gzipped or not, the
//! plain-text one-URL-a-line form, and RSS and Atom feeds, which sites name as their
//! sitemaps too (the protocol and search engines take them): each item's link is a page.
//!
//! Everything is bounded the way the protocol bounds it: 50,000 URLs and 50 MB
//! uncompressed per file, so a hostile "sitemap" cannot make the crawler hold more.

use std::borrow::Cow;

use encoding_rs::{Encoding, UTF_16BE, UTF_16LE, UTF_8};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use reqwest::header::HeaderValue;
use url::Url;

use crate::coding::{gunzip, GZIP_MAGIC};
use crate::{charset, urlnorm};

/// What a sitemap is asked for as: XML first, then anything, as sitemaps come as plain
/// text, feeds and gzip files too.
pub const ACCEPTED_TYPES: HeaderValue =
    HeaderValue::from_static("application/xml,text/xml;q=0.9,*/*;q=0.8");

/// The protocol's limits per sitemap file.
const MAX_ENTRIES: usize = 50_000;
const MAX_UNCOMPRESSED: u64 = 50 * 1024 * 1024;

/// What one sitemap file lists.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Sitemap {
    /// Pages (`<urlset><url><loc>`, plain-text lines, a feed's `<item><link>` or
    /// `<entry><link href>`).
    pub pages: Vec<Url>,
    /// Further sitemaps (`<sitemapindex><sitemap><loc>`).
    pub sitemaps: Vec<Url>,
    /// Why the sitemap could not be read to its end. The entries before the break are
    /// kept: they were listed as well as any, and a generator's one slip near the end of
    /// 50,000 URLs must not cost them all.
    pub error: Option<String>,
}

/// Reads a sitemap body fetched from `at`; entries that are not http(s) URLs are
/// skipped. `at` is what a feed's relative links are resolved against.
pub fn parse(body: &[u8], at: &Url) -> Sitemap {
    read(body, false, at)
}

/// Reads the part of a sitemap body that came before its answer broke off or was cut
/// at the limit: as [`parse`], but a plain-text sitemap's last line, which no line end
/// closes, is the start of a URL, not one the site lists.
pub fn parse_part(body: &[u8], at: &Url) -> Sitemap {
    read(body, true, at)
}

fn read(body: &[u8], mut cut: bool, at: &Url) -> Sitemap {
    let mut gzip_error = None;
    let unzipped;
    let bytes = if body.starts_with(&GZIP_MAGIC) {
        let mut out = Vec::new();
        let cap = usize::try_from(MAX_UNCOMPRESSED).unwrap_or(usize::MAX);
        // The few bytes that came set no `truncated`: the row is told here instead, or a
        // plain-text sitemap's entries past the cut went without a word.
        gzip_error = match gunzip(body, cap, &mut out) {
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Some(format!(
                "the gzipped sitemap stops short of its end ({e}): cut off, the URLs before \
                 the cut are read"
            )),
            Err(e) => Some(format!("the gzipped sitemap does not decompress: {e}")),
            Ok(true) => Some(format!(
                "the gzipped sitemap decompresses to more than {} MiB, the protocol's limit \
                 for one file: what follows is not read",
                MAX_UNCOMPRESSED >> 20
            )),
            Ok(false) => None,
        };
        cut |= gzip_error.is_some();
        unzipped = out;
        &unzipped[..]
    } else {
        body
    };
    let text = text_of(bytes);
    let text = text.trim_start_matches('\u{feff}');
    let mut sitemap = if let Some(start) = xml_start(text) {
        parse_xml(&text[start..], at)
    } else {
        let text = match text.rfind('\n') {
            Some(end) if cut => &text[..end],
            None if cut => "",
            _ => text,
        };
        parse_text(text)
    };
    sitemap.error = gzip_error.or(sitemap.error);
    sitemap
}

/// A sitemap's bytes as text: UTF-8, as the protocol has sitemaps written, when they
/// are. Else the encoding the file names: older generators write another and say so
/// (`<?xml version="1.0" encoding="ISO-8859-1"?>`, a raw `é` in a path), Windows tools
/// write UTF-16 behind a byte-order mark; read as UTF-8, the first's letters were
/// U+FFFD (another URL than the page) and the second listed nothing and said nothing.
/// A file that is UTF-8 is read so whatever a stale declaration says.
fn text_of(bytes: &[u8]) -> Cow<'_, str> {
    let declared = charset::declared(bytes, None).filter(|&(encoding, _)| encoding != UTF_8);
    let utf16 = declared.is_some_and(|(encoding, _)| encoding == UTF_16LE || encoding == UTF_16BE);
    match (declared, std::str::from_utf8(bytes)) {
        (_, Ok(text)) if !utf16 => Cow::Borrowed(text),
        (Some((encoding, bom)), _) => Cow::Owned(decode(&bytes[bom..], encoding)),
        (None, _) => Cow::Owned(lossy(bytes)),
    }
}

/// A plain-text sitemap: a URL a line. A file with lines none of which is a URL is no
/// sitemap (a server's "Not Found" in plain text, a JSON error, paths where the protocol
/// wants URLs): its row says so, as an XML file's does, rather than pass for a sitemap
/// that lists nothing.
fn parse_text(text: &str) -> Sitemap {
    let mut out = Sitemap::default();
    let mut skipped = 0usize;
    let mut first_skipped = None;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if out.pages.len() == MAX_ENTRIES {
            if urlnorm::normalize_str(line).is_ok() {
                out.error = Some(past_the_limit());
            }
            break;
        }
        match urlnorm::normalize_str(line) {
            Ok(url) => out.pages.push(url),
            Err(_) => {
                skipped += 1;
                first_skipped.get_or_insert(line);
            }
        }
    }
    if let (true, Some(first)) = (out.pages.is_empty(), first_skipped) {
        out.error = Some(lists_no_url(skipped, "line", first));
    }
    out
}

/// Why a sitemap whose `skipped` entries (`what`s: `<loc>`s, lines) name no URL lists
/// nothing, `first` the first of them.
fn lists_no_url(skipped: usize, what: &str, first: &str) -> String {
    let first: String = first.trim().chars().take(SHOWN_LOC_CHARS).collect();
    format!(
        "no URL in the sitemap: its {skipped} {what}(s) name no absolute http(s) URL \
         (the first: {first:?})"
    )
}

/// Why a sitemap's entries past the protocol's limit were not read: a site that lists
/// more in one file would otherwise find its last pages missing without a word.
fn past_the_limit() -> String {
    format!(
        "the sitemap lists more than {MAX_ENTRIES} URLs, the protocol's limit for one file: \
         those after the {MAX_ENTRIES}th are not read"
    )
}

/// Whether the rest of a sitemap read to the protocol's limit holds another entry; a
/// file of exactly the limit is a whole one.
fn lists_more(reader: &mut Reader<&[u8]>) -> bool {
    loop {
        match reader.read_event() {
            Ok(Event::Start(e) | Event::Empty(e))
                if matches!(
                    e.local_name().as_ref(),
                    "url" | "sitemap" | "item" | "entry"
                ) =>
            {
                return true
            }
            Ok(Event::Eof) | Err(_) => return false,
            Ok(_) => {}
        }
    }
}

/// `bytes` as text in `encoding`, at most [`MAX_UNCOMPRESSED`] bytes of it: a Latin-1
/// letter takes two bytes for one.
fn decode(bytes: &[u8], encoding: &'static Encoding) -> String {
    const CHUNK: usize = 64 * 1024;
    let mut decoder = encoding.new_decoder_without_bom_handling();
    let mut text = String::new();
    let mut chunks = bytes.chunks(CHUNK).peekable();
    while let Some(chunk) = chunks.next() {
        // Room for all the chunk can decode to, so the decoder takes it whole.
        text.reserve(
            decoder
                .max_utf8_buffer_length(chunk.len())
                .unwrap_or(4 * CHUNK),
        );
        let last = chunks.peek().is_none();
        let _ = decoder.decode_to_string(chunk, &mut text, last);
        if held_to_cap(&mut text) {
            break;
        }
    }
    text
}

/// `bytes` as text, U+FFFD in place of what is not UTF-8, at most [`MAX_UNCOMPRESSED`]
/// bytes of it: a U+FFFD takes three bytes for one, and a sitemap of stray bytes would
/// otherwise be held three times over.
fn lossy(bytes: &[u8]) -> String {
    let mut text = String::new();
    for chunk in bytes.utf8_chunks() {
        text.push_str(chunk.valid());
        if !chunk.invalid().is_empty() {
            text.push(char::REPLACEMENT_CHARACTER);
        }
        if held_to_cap(&mut text) {
            break;
        }
    }
    text
}

/// Cuts `text` to [`MAX_UNCOMPRESSED`] bytes (at a character's start) once it has
/// reached them; whether it had.
fn held_to_cap(text: &mut String) -> bool {
    let cap = usize::try_from(MAX_UNCOMPRESSED).unwrap_or(usize::MAX);
    if text.len() < cap {
        return false;
    }
    let mut end = cap;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    true
}

/// Where the XML of an XML sitemap begins; `None` for a plain-text one. Text before the
/// XML is a server's slip (a PHP warning printed ahead of it), not a list of URLs.
fn xml_start(text: &str) -> Option<usize> {
    if text.trim_start().starts_with('<') {
        return Some(0);
    }
    ["<?xml", "<urlset", "<sitemapindex", "<rss", "<feed"]
        .iter()
        .filter_map(|mark| text.find(mark))
        .min()
}

fn parse_xml(text: &str, at: &Url) -> Sitemap {
    let text = escape_bare_ampersands(text);
    let mut reader = Reader::from_str(&text);
    let mut out = Sitemap::default();
    // The entry a URL belongs to (`url` or `sitemap`; a feed's `item` or `entry`), how
    // deep inside it the reader is (only its own `<loc>` or `<link>`, at depth 0, names
    // it: an image sitemap's `<image:loc>` inside `<image:image>` is a picture, not a
    // page), and the text being read.
    let mut parent: Option<String> = None;
    let mut inner = 0usize;
    let mut loc: Option<String> = None;
    // Elements open: the reader takes an end of file inside one for the end of the
    // document, and a file cut short would pass for a whole one.
    let mut open = 0usize;
    // The document's first element, and the `<loc>`s that name no http(s) URL: what
    // the file is, or holds, should it list nothing.
    let mut root: Option<String> = None;
    // What a feed's relative links resolve against, as Atom has it: the `xml:base` of
    // the root, else the file's URL; within an entry, the entry's `xml:base` over that.
    // Feed readers take RSS's relative links so too.
    let mut doc_base = Cow::Borrowed(at);
    let mut entry_base: Option<Url> = None;
    let mut skipped = 0usize;
    let mut first_skipped: Option<String> = None;
    // Entries past the protocol's limit are not read, an Atom entry's link as a `<loc>`.
    while out.pages.len() + out.sitemaps.len() < MAX_ENTRIES {
        let event = match reader.read_event() {
            Ok(event) => event,
            Err(e) => {
                out.error = Some(format!("the sitemap is not well-formed XML: {e}"));
                break;
            }
        };
        if let (Event::Start(e) | Event::Empty(e), None) = (&event, &root) {
            root = Some(e.local_name().as_ref().to_owned());
            if let Some(base) = based(e, at) {
                doc_base = Cow::Owned(base);
            }
        }
        match &event {
            Event::Start(_) => open += 1,
            Event::End(_) => open = open.saturating_sub(1),
            _ => {}
        }
        match event {
            Event::Start(e) => match e.local_name().as_ref() {
                name @ ("url" | "sitemap" | "item" | "entry") if parent.is_none() => {
                    parent = Some(name.to_owned());
                    inner = 0;
                    entry_base = based(&e, &doc_base);
                }
                name if parent.is_some() => {
                    if inner == 0 && names_entry(parent.as_deref(), name) {
                        loc = Some(String::new());
                    }
                    if inner == 0 && parent.as_deref() == Some("entry") {
                        let base = entry_base.as_ref().unwrap_or(&doc_base);
                        take_atom_link(&e, base, &mut out.pages);
                    }
                    inner += 1;
                }
                _ => {}
            },
            Event::Empty(e) if inner == 0 && parent.as_deref() == Some("entry") => {
                let base = entry_base.as_ref().unwrap_or(&doc_base);
                take_atom_link(&e, base, &mut out.pages);
            }
            Event::Text(t) => {
                if let Some(loc) = loc.as_mut() {
                    loc.push_str(&t.xml10_content());
                }
            }
            Event::CData(t) => {
                if let Some(loc) = loc.as_mut() {
                    loc.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                if let Some(loc) = loc.as_mut() {
                    match r.resolve_char_ref() {
                        Ok(Some(c)) => loc.push(c),
                        _ => push_entity(loc, &r),
                    }
                }
            }
            Event::End(e) if parent.is_some() && inner > 0 => {
                inner -= 1;
                if inner == 0 && names_entry(parent.as_deref(), e.local_name().as_ref()) {
                    if let (Some(text), Some(parent)) = (loc.take(), parent.as_deref()) {
                        // A sitemap's `<loc>` is absolute, as the protocol has it.
                        let url = if parent == "item" {
                            let base = entry_base.as_ref().unwrap_or(&doc_base);
                            urlnorm::resolve(base, &text)
                        } else {
                            urlnorm::normalize_str(&text)
                        };
                        match url {
                            Ok(url) if parent == "sitemap" => out.sitemaps.push(url),
                            Ok(url) => out.pages.push(url),
                            Err(_) => {
                                skipped += 1;
                                first_skipped.get_or_insert(text);
                            }
                        }
                    }
                }
            }
            Event::End(_) => parent = None,
            Event::Eof => {
                if open > 0 {
                    out.error = Some(
                        "the sitemap ends before its XML does: the file is cut off".to_owned(),
                    );
                }
                break;
            }
            _ => {}
        }
    }
    if out.error.is_none()
        && out.pages.len() + out.sitemaps.len() >= MAX_ENTRIES
        && lists_more(&mut reader)
    {
        out.error = Some(past_the_limit());
    }
    if out.pages.is_empty() && out.sitemaps.is_empty() {
        let lists = |root: &str| matches!(root, "urlset" | "sitemapindex" | "rss" | "RDF" | "feed");
        if let Some(root) = root.filter(|r| !lists(r)) {
            out.error = Some(format!(
                "not a sitemap: its root element is <{root}>, not <urlset>, <sitemapindex>, \
                 <rss> or <feed>"
            ));
        } else if let (None, Some(first)) = (&out.error, first_skipped) {
            out.error = Some(lists_no_url(skipped, "<loc>", &first));
        }
    }
    out
}

/// Whether an element of that name, directly in an entry `parent`, holds the entry's URL
/// as its text: sitemaps' `<loc>`, RSS's `<link>` (2.0, and 1.0's RDF). Atom's is an
/// attribute: [`take_atom_link`].
fn names_entry(parent: Option<&str>, name: &str) -> bool {
    match parent {
        Some("url" | "sitemap") => name == "loc",
        Some("item") => name == "link",
        _ => false,
    }
}

/// An Atom entry's page: the `href` of its `<link>` whose `rel` is `alternate`, as it is
/// when none is given (`self`, `edit`, `enclosure` name other things than the page),
/// resolved against the link's `xml:base` over `base`, as Atom has it.
fn take_atom_link(link: &BytesStart<'_>, base: &Url, pages: &mut Vec<Url>) {
    if link.local_name().as_ref() != "link" {
        return;
    }
    if attribute(link, "rel").is_some_and(|rel| rel.trim() != "alternate") {
        return;
    }
    let own = based(link, base);
    let base = own.as_ref().unwrap_or(base);
    if let Some(url) = attribute(link, "href").and_then(|href| urlnorm::resolve(base, &href).ok()) {
        pages.push(url);
    }
}

/// `base` as the `xml:base` of `e` moves it, if `e` has one.
fn based(e: &BytesStart<'_>, base: &Url) -> Option<Url> {
    attribute(e, "xml:base").and_then(|href| base.join(&href).ok())
}

/// The value of `e`'s attribute `name`: an `xml:` one by its full name, any other by its
/// local name.
fn attribute(e: &BytesStart<'_>, name: &str) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.as_ref() == name || a.key.local_name().as_ref() == name)
        .and_then(|a| {
            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .ok()
                .map(Cow::into_owned)
        })
}

/// How much of a `<loc>` (or a text sitemap's line) an error message shows.
const SHOWN_LOC_CHARS: usize = 200;

/// Appends what the entity `&name;` stands for: XML's five (the common case, without a
/// look-up), and the HTML names a generator that escaped its URLs for HTML writes (PHP's
/// `htmlentities`: `&eacute;`), which XML leaves undefined. Any other is kept as
/// written: dropped, it made another URL of the entry (`/caf&eacute;` was `/caf`).
fn push_entity(text: &mut String, name: &str) {
    let xml = match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => None,
    };
    if let Some(c) = xml {
        text.push(c);
        return;
    }
    let found = html5ever::data::NAMED_ENTITIES.get(format!("{name};").as_str());
    match found.map(|&(first, second)| (char::from_u32(first), char::from_u32(second))) {
        Some((Some(first), second)) if first != '\0' => {
            text.push(first);
            text.extend(second.filter(|&c| c != '\0'));
        }
        _ => {
            text.push('&');
            text.push_str(name);
            text.push(';');
        }
    }
}

/// `text` with each `&` that starts no reference written `&amp;`, as lenient readers
/// take it: sitemap generators often paste query strings in unescaped, and the XML
/// reader would refuse the whole file at the first. CDATA sections are literal text and
/// stay as they are. What is written is held to [`MAX_UNCOMPRESSED`] bytes, as what was
/// read is: a file of bare `&`s would otherwise grow fivefold. Past that the file is read
/// as ending there, with the entries before it kept.
fn escape_bare_ampersands(text: &str) -> Cow<'_, str> {
    const CDATA: &str = "<![CDATA[";
    let cap = usize::try_from(MAX_UNCOMPRESSED).unwrap_or(usize::MAX);
    let mut out = String::new();
    // `text[..kept]` is in `out`, once there is anything to escape.
    let mut kept = 0;
    let mut at = 0;
    while let Some(i) = text[at..].find(['&', '<']).map(|i| at + i) {
        let rest = &text[i..];
        at = i + 1;
        if rest.starts_with(CDATA) {
            at = rest.find("]]>").map_or(text.len(), |end| i + end + 3);
        } else if rest.starts_with('&') && !starts_reference(&rest[1..]) {
            if out.len() + (i - kept) + "&amp;".len() > cap {
                return Cow::Owned(out);
            }
            out.push_str(&text[kept..i]);
            out.push_str("&amp;");
            kept = i + 1;
        }
    }
    if kept == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[kept..]);
    Cow::Owned(out)
}

/// Whether the text after a `&` is a reference: a name or `#` number, then `;`. Real
/// names are short, so only the first few characters are looked at.
fn starts_reference(after: &str) -> bool {
    const LONGEST_NAME: usize = 32;
    for (i, c) in after.char_indices().take(LONGEST_NAME) {
        match c {
            ';' => return i > 0,
            c if c.is_alphanumeric() || matches!(c, '#' | '.' | '-' | '_' | ':') => {}
            _ => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Where the files these tests read are: what their relative links resolve against.
    fn at() -> Url {
        Url::parse("http://h/maps/feed.xml").expect("a URL")
    }

    fn parse(body: &[u8]) -> Sitemap {
        super::parse(body, &at())
    }

    fn urls(list: &[&str]) -> Vec<Url> {
        list.iter().map(|u| Url::parse(u).unwrap()).collect()
    }

    #[test]
    fn bytes_that_are_not_utf8_are_read_as_u_fffd() {
        let sitemap = parse(b"http://a.test/caf\xe9\nhttp://b.test/\xff\xfe\n");
        assert_eq!(
            sitemap.pages,
            urls(&[
                "http://a.test/caf%EF%BF%BD",
                "http://b.test/%EF%BF%BD%EF%BF%BD"
            ])
        );
        let held = lossy(&vec![0xff; 1 << 20]);
        assert_eq!(held.chars().count(), 1 << 20, "one U+FFFD a byte");
    }

    #[test]
    fn a_urlset_lists_pages_with_entities_decoded() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
            <urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
              <url><loc> http://h/a?x=1&amp;y=2 </loc><lastmod>2024-01-01</lastmod></url>
              <url><loc><![CDATA[http://h/b]]></loc></url>
              <url><loc>mailto:x@y</loc></url>
            </urlset>"#;
        let s = parse(xml.as_bytes());
        assert_eq!(s.pages, urls(&["http://h/a?x=1&y=2", "http://h/b"]));
        assert!(s.sitemaps.is_empty());
    }

    #[test]
    fn an_index_lists_sitemaps_and_gzip_is_undone() {
        let xml = r#"<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
            <sitemap><loc>http://h/s1.xml.gz</loc></sitemap></sitemapindex>"#;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(xml.as_bytes()).unwrap();
        let s = parse(&gz.finish().unwrap());
        assert_eq!(s.sitemaps, urls(&["http://h/s1.xml.gz"]));
        assert!(s.pages.is_empty());
    }

    /// A gzipped sitemap that decompresses past the protocol's 50 MiB is read to there,
    /// and its row says so, in either form: as text, the entries after were left out
    /// without a word (the wire bytes, far fewer, set no `truncated`); as XML, it was
    /// taken for a file cut off by its server.
    #[test]
    fn a_gzipped_sitemap_past_the_size_limit_says_so() {
        let long = "x".repeat(1200);
        let text: String = (0..46_000)
            .map(|i| format!("http://h/{i}?{long}\n"))
            .collect();
        let xml = format!(
            "<urlset>{}</urlset>",
            (0..46_000)
                .map(|i| format!("<url><loc>http://h/{i}?{long}</loc></url>"))
                .collect::<String>()
        );
        for (form, body) in [("text", text), ("xml", xml)] {
            assert!(body.len() as u64 > MAX_UNCOMPRESSED && body.len() < 2 * (50 << 20));
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(body.as_bytes()).unwrap();
            let s = parse(&gz.finish().unwrap());
            assert!(s.pages.len() > 40_000 && s.pages.len() < 46_000, "{form}");
            assert!(
                s.error
                    .as_deref()
                    .is_some_and(|e| e.contains("more than 50 MiB")),
                "{form}: {:?}",
                s.error
            );
        }
    }

    /// One of exactly 50 MiB decompressed is within the limit: all of it is read, and
    /// its row has no error.
    #[test]
    fn a_gzipped_sitemap_of_exactly_the_size_limit_is_whole() {
        let line = |i: usize| format!("http://h/{i}?{}\n", "x".repeat(1200));
        let mut text: String = (0..43_000).map(line).collect();
        let last = format!("http://h/last?{}", "y".repeat(2000));
        let room = usize::try_from(MAX_UNCOMPRESSED).unwrap() - text.len() - last.len();
        text.push_str(&last);
        text.push_str(&"\n".repeat(room));
        assert_eq!(text.len() as u64, MAX_UNCOMPRESSED);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(text.as_bytes()).unwrap();
        let s = parse(&gz.finish().unwrap());
        assert_eq!(s.error, None);
        assert_eq!(s.pages.len(), 43_001);
    }

    #[test]
    fn plain_text_sitemaps_and_broken_xml() {
        let s = parse(b"http://h/1\nnot a url\nhttp://h/2\n");
        assert_eq!(s.pages, urls(&["http://h/1", "http://h/2"]));
        let broken = parse(b"<urlset><url><loc>http://h/1</loc></url></urlset2>");
        assert!(broken.error.is_some());
        assert_eq!(
            broken.pages,
            urls(&["http://h/1"]),
            "what came before is kept"
        );
    }

    /// Entries past the protocol's limit are not read, and the sitemap's row says so; a
    /// file of exactly the limit is whole, in either form.
    #[test]
    fn entries_past_the_protocol_limit_are_not_read_and_said_so() {
        let xml = |n: usize| {
            let urls: String = (0..n)
                .map(|i| format!("<url><loc>http://h/{i}</loc></url>\n"))
                .collect();
            format!("<urlset>{urls}</urlset>")
        };
        let text = |n: usize| -> String { (0..n).map(|i| format!("http://h/{i}\n")).collect() };
        for (form, over, full) in [
            ("xml", xml(MAX_ENTRIES + 10), xml(MAX_ENTRIES)),
            ("text", text(MAX_ENTRIES + 10), text(MAX_ENTRIES)),
        ] {
            let over = parse(over.as_bytes());
            assert_eq!(over.pages.len(), MAX_ENTRIES, "{form}");
            assert!(
                over.error
                    .as_deref()
                    .is_some_and(|e| e.contains("more than 50000 URLs")),
                "{form}: {:?}",
                over.error
            );
            let full = parse(full.as_bytes());
            assert_eq!(
                (full.pages.len(), full.error),
                (MAX_ENTRIES, None),
                "{form}"
            );
        }
    }

    #[test]
    fn an_image_sitemaps_pictures_are_not_pages() {
        let xml = r#"<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
              xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">
              <url><loc>http://h/page</loc>
                <image:image><image:loc>http://cdn.h/photo.jpg</image:loc></image:image>
              </url>
              <url><image:image><image:loc>http://cdn.h/b.jpg</image:loc></image:image>
                <loc>http://h/b</loc></url></urlset>"#;
        let s = parse(xml.as_bytes());
        assert_eq!(
            s.pages,
            vec![
                Url::parse("http://h/page").unwrap(),
                Url::parse("http://h/b").unwrap()
            ]
        );
    }

    #[test]
    fn a_byte_order_mark_before_the_xml_is_skipped() {
        let mut body = b"\xef\xbb\xbf".to_vec();
        body.extend_from_slice(
            br#"<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>http://h/a</loc></url></urlset>"#,
        );
        assert_eq!(parse(&body).pages, vec![Url::parse("http://h/a").unwrap()]);
    }

    /// Sitemap generators that paste query strings in unescaped are common; a lenient
    /// reader (Scrapy's, lxml's `recover`) takes a bare `&` as the character it means.
    /// Escapes and character data keep their meaning.
    #[test]
    fn an_unescaped_ampersand_does_not_cost_the_sitemap() {
        let xml = r#"<urlset>
              <url><loc>http://h/a?x=1&y=2</loc></url>
              <url><loc>http://h/b?p=1&amp;q=&#50;&amp</loc></url>
              <url><loc><![CDATA[http://h/c?x=1&y=2&amp;]]></loc></url>
              <url><loc>http://h/d</loc></url>
            </urlset>"#;
        let s = parse(xml.as_bytes());
        assert_eq!(
            s.pages,
            urls(&[
                "http://h/a?x=1&y=2",
                "http://h/b?p=1&q=2&amp",
                "http://h/c?x=1&y=2&amp;",
                "http://h/d"
            ])
        );
    }

    /// A PHP warning printed before the XML (`display_errors` on, `html_errors` off) is
    /// not a plain-text sitemap; nor is a byte-order mark part of the first URL.
    #[test]
    fn text_before_the_xml_or_a_byte_order_mark_does_not_hide_urls() {
        let warned = "Warning: Undefined index: x in /var/www/s.php on line 3\n<?xml version=\"1.0\"?>\n<urlset><url><loc>http://h/a</loc></url></urlset>";
        assert_eq!(parse(warned.as_bytes()).pages, urls(&["http://h/a"]));
        let text = "\u{feff}http://h/1\r\nhttp://h/2\r\n";
        assert_eq!(
            parse(text.as_bytes()).pages,
            urls(&["http://h/1", "http://h/2"])
        );
    }

    /// A gzip file is a series of members (RFC 1952), as a sitemap written in parts
    /// (`gzip -c part >> sitemap.gz`, block compressors such as bgzip) is; `zcat` reads
    /// them all, and so must the crawl.
    #[test]
    fn every_member_of_a_gzip_file_is_read() {
        let mut body = Vec::new();
        for part in [
            "<?xml version=\"1.0\"?><urlset><url><loc>http://h/1</loc></url>",
            "<url><loc>http://h/2</loc></url></urlset>",
        ] {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            gz.write_all(part.as_bytes()).unwrap();
            body.extend(gz.finish().unwrap());
        }
        let s = parse(&body);
        assert_eq!(s.pages, urls(&["http://h/1", "http://h/2"]));
        assert_eq!(s.error, None);
        body.extend_from_slice(&[0; 16]);
        assert_eq!(parse(&body), s, "zero padding after the members is not one");
    }

    /// A gzipped sitemap cut short (by its trailer's last bytes, or mid-stream) lists the
    /// URLs before the cut, and its row says it stops short, as a page's does: it said
    /// the file "does not decompress", and of a trailer cut that its checksum did not
    /// match, though every URL in it was read.
    #[test]
    fn a_gzipped_sitemap_cut_short_says_so_and_lists_what_came() {
        let xml =
            "<urlset><url><loc>http://h/1</loc></url><url><loc>http://h/2</loc></url></urlset>";
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(xml.as_bytes()).unwrap();
        let whole = gz.finish().unwrap();
        let s = parse(&whole[..whole.len() - 3]);
        assert_eq!(s.pages, urls(&["http://h/1", "http://h/2"]));
        let error = s.error.unwrap_or_default();
        assert!(error.contains("stops short of its end"), "{error}");
        assert!(!error.contains("does not decompress"), "{error}");
    }

    /// Generators that escape URLs for HTML (PHP's `htmlentities`) write `&eacute;`,
    /// which XML does not define: it is the character HTML means by it, not nothing,
    /// which made `/caf&eacute;` the page `/caf`. A name HTML does not know either is
    /// kept as written.
    #[test]
    fn an_html_entity_in_a_loc_is_its_character() {
        let xml = "<urlset><url><loc>http://h/caf&eacute;</loc></url>\
            <url><loc>http://h/a?b=1&copy;</loc></url>\
            <url><loc>http://h/q?x=1&unknown;</loc></url></urlset>";
        let s = parse(xml.as_bytes());
        assert_eq!(
            s.pages,
            urls(&[
                "http://h/caf%C3%A9",
                "http://h/a?b=1%C2%A9",
                "http://h/q?x=1&unknown;"
            ])
        );
    }

    /// A sitemap whose file ends part way (a generator that died mid-write, a copy cut
    /// short) is as broken as one with a stray tag: its row says so, and the entries
    /// before the cut are kept.
    #[test]
    fn a_sitemap_cut_off_mid_file_says_so() {
        let cut = parse(b"<urlset><url><loc>http://h/1</loc></url><url><loc>http://h/2");
        assert_eq!(cut.pages, urls(&["http://h/1"]));
        assert!(cut.error.is_some(), "a cut file reads as whole: {cut:?}");
        let whole = parse(b"<urlset><url><loc>http://h/1</loc></url></urlset>\n");
        assert_eq!(whole.error, None);
    }

    /// What robots.txt names or `/sitemap.xml` answers is not always a sitemap: a
    /// site's HTML page (a soft 404), an RSS feed. Its row says what it is rather than
    /// read as an empty sitemap, or as broken XML for want of a `</meta>`.
    #[test]
    fn a_page_or_feed_that_is_no_sitemap_says_so() {
        for (body, root) in [
            ("<html><body>Not found</body></html>", "<html>"),
            (
                "<!DOCTYPE html><html><head><meta charset=utf-8></head></html>",
                "<html>",
            ),
        ] {
            let s = parse(body.as_bytes());
            assert!(
                s.error.as_deref().is_some_and(|e| e.contains(root)),
                "{body}: {s:?}"
            );
        }
        let empty = parse(b"<urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\"/>");
        assert_eq!(empty, Sitemap::default(), "an empty sitemap is one");
    }

    /// The protocol wants every `<loc>` absolute; a generator that writes paths
    /// (`<loc>/a</loc>`) lists nothing a crawler can fetch, and the row says so rather
    /// than pass for an empty sitemap. One bad entry among good ones is only skipped.
    #[test]
    fn a_sitemap_of_relative_locs_says_why_it_lists_nothing() {
        let relative = parse(b"<urlset><url><loc>/a</loc></url><url><loc>/b</loc></url></urlset>");
        assert!(relative.pages.is_empty());
        assert!(
            relative
                .error
                .as_deref()
                .is_some_and(|e| e.contains("\"/a\"")),
            "{relative:?}"
        );
        let mixed =
            parse(b"<urlset><url><loc>/a</loc></url><url><loc>http://h/b</loc></url></urlset>");
        assert_eq!((mixed.pages, mixed.error), (urls(&["http://h/b"]), None));
    }

    /// Sites name their RSS or Atom feed as a sitemap (in robots.txt, or at
    /// /sitemap.xml), and search engines read them as ones: each item's link is a page.
    /// The channel's own link, an image's, and an Atom entry's `self`/`edit` links are
    /// not pages of the feed's.
    #[test]
    fn a_feeds_items_are_its_pages() {
        let rss = r#"<?xml version="1.0"?><rss version="2.0"><channel>
            <link>http://h/</link><image><link>http://h/logo</link></image>
            <item><title>A</title><link> http://h/a </link><guid>x</guid></item>
            <item><link>http://h/b?x=1&amp;y=2</link></item></channel></rss>"#;
        let read = parse(rss.as_bytes());
        assert_eq!(
            (read.pages, read.error),
            (urls(&["http://h/a", "http://h/b?x=1&y=2"]), None)
        );
        let rdf = r#"<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
            xmlns="http://purl.org/rss/1.0/"><channel><link>http://h/</link></channel>
            <item rdf:about="http://h/c"><link>http://h/c</link></item></rdf:RDF>"#;
        assert_eq!(parse(rdf.as_bytes()).pages, urls(&["http://h/c"]));
        let atom = r#"<feed xmlns="http://www.w3.org/2005/Atom"><link href="http://h/"/>
            <entry><link rel="self" href="http://h/feed/1"/><link href="http://h/d"/></entry>
            <entry><link rel="alternate" type="text/html" href="http://h/e"></link>
              <link rel="edit" href="http://h/edit/e"/></entry></feed>"#;
        let read = parse(atom.as_bytes());
        assert_eq!(
            (read.pages, read.error),
            (urls(&["http://h/d", "http://h/e"]), None)
        );
    }

    /// The protocol has sitemaps in UTF-8, but older generators write the encoding they
    /// name (`encoding="ISO-8859-1"`, raw `é` in a path) and Windows tools UTF-16 with
    /// a byte-order mark. Read as UTF-8, the first's letters were U+FFFD, another URL
    /// than the page, and the second listed nothing and said nothing. A file that is
    /// UTF-8 is read as UTF-8, whatever a stale declaration says.
    #[test]
    fn a_sitemap_is_read_in_the_encoding_it_names_when_it_is_not_utf8() {
        let latin1 = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\
            <urlset><url><loc>http://h/caf\xe9</loc></url></urlset>";
        assert_eq!(parse(latin1).pages, urls(&["http://h/caf%C3%A9"]));
        let stale = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\
            <urlset><url><loc>http://h/caf\u{e9}</loc></url></urlset>";
        assert_eq!(parse(stale.as_bytes()).pages, urls(&["http://h/caf%C3%A9"]));
        let xml = "<?xml version=\"1.0\" encoding=\"UTF-16\"?>\
            <urlset><url><loc>http://h/\u{e9}t\u{e9}</loc></url></urlset>";
        let mut utf16 = vec![0xff, 0xfe];
        utf16.extend(xml.encode_utf16().flat_map(u16::to_le_bytes));
        let read = parse(&utf16);
        assert_eq!(
            (read.pages, read.error),
            (urls(&["http://h/%C3%A9t%C3%A9"]), None)
        );
    }

    /// A feed's links may be relative: Atom's resolve against the `xml:base` of the link,
    /// its entry and the feed, each over the next, else the file's URL; RSS's against the
    /// file's URL, as feed readers take them. They were dropped without a word. A
    /// sitemap's `<loc>` stays absolute, as the protocol has it.
    #[test]
    fn a_feeds_relative_links_resolve_against_its_base() {
        let atom = r#"<feed xmlns="http://www.w3.org/2005/Atom" xml:base="/blog/">
            <entry><link href="a"/></entry>
            <entry xml:base="2024/"><link href="b"></link></entry>
            <entry xml:base="2024/"><link xml:base="/other/" href="c"/></entry>
            <entry><link href="http://elsewhere/d"/></entry></feed>"#;
        let read = parse(atom.as_bytes());
        assert_eq!(
            (read.pages, read.error),
            (
                urls(&[
                    "http://h/blog/a",
                    "http://h/blog/2024/b",
                    "http://h/other/c",
                    "http://elsewhere/d"
                ]),
                None
            )
        );
        let atom = r#"<feed><entry><link href="../e"/></entry></feed>"#;
        assert_eq!(parse(atom.as_bytes()).pages, urls(&["http://h/e"]));
        let rss = r#"<rss version="2.0"><channel><item><link> /f </link></item>
            <item><link>g?x=1&amp;y=2</link></item></channel></rss>"#;
        assert_eq!(
            parse(rss.as_bytes()).pages,
            urls(&["http://h/f", "http://h/maps/g?x=1&y=2"])
        );
    }

    /// The protocol's 50,000 entries hold for a feed's links too.
    #[test]
    fn a_feed_past_the_protocol_limit_is_read_to_it() {
        let mut atom = String::from("<feed>");
        for i in 0..MAX_ENTRIES + 10 {
            atom.push_str(&format!("<entry><link href=\"http://h/{i}\"/></entry>"));
        }
        atom.push_str("</feed>");
        let read = parse(atom.as_bytes());
        assert_eq!(read.pages.len(), MAX_ENTRIES);
        assert!(read.error.is_some_and(|e| e.contains("more than")));
    }
}
