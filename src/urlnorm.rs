//! URL normalisation: one spelling per resource, so the frontier's unique `url` column is
//! also its dedup.
//!
//! The `url` crate already lowercases scheme and host, drops default ports and resolves dot
//! segments. On top of that we drop a host's trailing dot, fragments (they never reach the
//! server) and an empty `?`, and spell percent-escapes one way: unreserved characters
//! decoded and hex digits uppercase; a `%` that starts no escape is kept, as browsers send
//! it.

use std::borrow::Cow;

use encoding_rs::{EncoderResult, Encoding, UTF_8};
use url::{Position, Url};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("is not a URL: {0}")]
    Unparsable(#[from] url::ParseError),
    /// Quoted only when shown: every `mailto:` link of every page is one, and dropped.
    #[error("has scheme {}; only http and https are crawled", quoted(.0))]
    Scheme(String),
    #[error("has no scheme: write `{0}` (or http:// for a site without TLS)")]
    NoScheme(String),
    #[error("has no host")]
    NoHost,
    /// An IPv6 address with a zone id, `[fe80::1%25eth0]` (RFC 6874), which browsers and
    /// the URL standard refuse: the interface is the machine's, not the URL's.
    #[error(
        "names an IPv6 zone id (`{0}`), which a URL cannot carry (browsers refuse it too): \
         name the host by a global address or a DNS name"
    )]
    ZoneId(String),
    /// `http://::1:8080/`, an IPv6 address as a terminal prints it: its colons are read
    /// as a port's, and it was refused as "empty host" or "invalid port number".
    #[error("names an IPv6 address without the brackets a URL writes it in: write `{0}`")]
    Unbracketed(String),
    #[error("is {0} bytes long; URLs longer than {MAX_URL_BYTES} bytes are not crawled")]
    TooLong(usize),
}

/// The longest URL the crawl keeps, anywhere. PostgreSQL refuses an index entry over
/// 2,704 bytes, and every URL lands in one (`frontier.url`, `links.target_url`): a longer
/// one would fail its whole batch there. Real pages' URLs stay far below this; longer
/// ones are tracking blobs and traps.
pub const MAX_URL_BYTES: usize = 2560;

/// The most of a text an error quotes, in bytes.
const QUOTED_BYTES: usize = 100;

/// `text` quoted for an error message: whole, or when longer than [`QUOTED_BYTES`], its
/// start and its length. A server's `Location` may be as long as its headers may be (a
/// scheme of 10,000 letters), and its redirect error is stored in every such page's row.
pub fn quoted(text: &str) -> String {
    if text.len() <= QUOTED_BYTES {
        return format!("{text:?}");
    }
    let start = &text[..text.floor_char_boundary(QUOTED_BYTES)];
    format!("{start:?}… ({} bytes)", text.len())
}

/// Parses and normalises an absolute URL: a seed, a sitemap's `<loc>`, a URL typed. The
/// whitespace around it goes, and what is drawn as nothing ([`trimmed`]): a list saved by
/// a spreadsheet or Notepad starts with a byte order mark, invisible, and a paste carries
/// it into the first URL.
pub fn normalize_str(input: &str) -> Result<Url, UrlError> {
    let input = trimmed(input);
    let without_scheme = |e| with_a_scheme(input).map_or(e, UrlError::NoScheme);
    match Url::parse(input) {
        Ok(url) => normalize(url).map_err(|e| match e {
            UrlError::Scheme(_) => without_scheme(e),
            e => e,
        }),
        Err(e @ url::ParseError::InvalidIpv6Address) => Err(match zone_id(input) {
            Some(zone) => UrlError::ZoneId(zone.to_owned()),
            None => UrlError::Unparsable(e),
        }),
        Err(e @ (url::ParseError::EmptyHost | url::ParseError::InvalidPort)) => {
            Err(bracketed(input).map_or_else(
                || without_scheme(UrlError::Unparsable(e)),
                UrlError::Unbracketed,
            ))
        }
        Err(e) => Err(without_scheme(UrlError::Unparsable(e))),
    }
}

/// The zone id of the bracketed IPv6 address in `input`, `%25eth0` in `[fe80::1%25eth0]`.
fn zone_id(input: &str) -> Option<&str> {
    let address = input.split_once('[')?.1.split_once(']')?.0;
    address.find('%').map(|at| &address[at..])
}

/// `input` with its authority, an IPv6 address without brackets, put in them, and a last
/// group of digits that leaves an address before it taken as the port (`::1:8080` is
/// `[::1]:8080`, as a dev server on IPv6 loopback is most often meant), if it is one.
fn bracketed(input: &str) -> Option<String> {
    let (scheme, rest) = input.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let is_address = |a: &str| a.parse::<std::net::Ipv6Addr>().is_ok();
    let host_port = match authority.rsplit_once(':') {
        Some((address, port))
            if is_address(address)
                && port.bytes().all(|b| b.is_ascii_digit())
                && port.parse::<u16>().is_ok() =>
        {
            format!("[{address}]:{port}")
        }
        _ if is_address(authority) => format!("[{authority}]"),
        _ => return None,
    };
    let path = if path.is_empty() { "/" } else { path };
    Some(format!("{scheme}://{host_port}{path}"))
}

/// `input` without the whitespace and the characters drawn as nothing (a byte order mark,
/// a zero-width space, a direction mark: [`crate::invisible`]) [`normalize_str`] takes
/// from around a URL: a seeds file's line is trimmed so before it is read as a comment or
/// a URL. They come unseen with a URL copied from a web page or a document (a direction
/// mark from a right-to-left one), and after one the parser took it into the path.
pub fn trimmed(input: &str) -> &str {
    input.trim_matches(|c: char| c.is_whitespace() || crate::invisible::is(c))
}

/// `input` with `https://` before it, when it is a host (and port, path) as typed into a
/// browser's address bar, which adds the scheme: the URL parser reads `example.com` as a
/// relative URL, and `localhost:8080` as a URL of the scheme `localhost`, and said so.
/// Not when what comes after a colon is no port (`mailto:a@b.c`), nor for credentials
/// (`a@b.c`, an email address). An IPv6 address's colons are inside its brackets, its
/// port after them (`[::1]:8080`).
fn with_a_scheme(input: &str) -> Option<String> {
    let rest = input.strip_prefix("//").unwrap_or(input);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let after_address = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split_once(']').map_or("", |(_, after)| after),
        None => authority,
    };
    let port_or_none = after_address
        .split_once(':')
        .is_none_or(|(_, port)| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()));
    if input.contains("://") || authority.is_empty() || authority.contains('@') || !port_or_none {
        return None;
    }
    let url = normalize(Url::parse(&format!("https://{rest}")).ok()?).ok()?;
    // Shown as typed, not as stored: `https://xn--bcher-kva.de/stra%C3%9Fe` for
    // `bücher.de/straße` reads as another URL to the one who typed it.
    Some(as_read(&url).unwrap_or_else(|| url.into()))
}

/// Resolves `href` against `base` and normalises the result. The URL parser strips
/// what a browser strips around an `href` (ASCII whitespace and controls); a no-break
/// space is part of the URL, so `str::trim` would make another URL of it.
pub fn resolve(base: &Url, href: &str) -> Result<Url, UrlError> {
    normalize(base.join(href)?)
}

/// A header value naming a URL (`Location`, `Refresh`, a `Link` target) as text. Servers
/// send raw bytes there (`/café` in UTF-8, a Latin-1 server's `/caf\xe9`) and browsers
/// follow them: a byte that is not UTF-8 is percent-encoded as it is, as browsers send
/// it back, so the server gets the bytes it meant. Borrowed when the value is UTF-8.
pub fn header_url_text(bytes: &[u8]) -> Cow<'_, str> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Cow::Borrowed(text);
    }
    let mut text = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        text.push_str(chunk.valid());
        for byte in chunk.invalid() {
            text.push_str(&format!("%{byte:02X}"));
        }
    }
    Cow::Owned(text)
}

/// [`resolve`] for a link on a page read in `encoding`: a query string's non-ASCII text is
/// percent-encoded in the page's encoding, as browsers send it (the URL standard's
/// encoding override), so `?q=日本` on a Shift_JIS page asks the server what its own
/// search form would, not another URL it may not understand.
pub fn resolve_in(base: &Url, href: &str, encoding: &'static Encoding) -> Result<Url, UrlError> {
    normalize(join_in(base, href, encoding)?)
}

/// `href` parsed against `base` as a page read in `encoding` parses it, its query's
/// non-ASCII text in that encoding, and not normalised: a `<base href>` is such a URL
/// (the HTML standard parses it with the document's encoding), and whatever its scheme,
/// it is the base of the page's links.
pub fn join_in(
    base: &Url,
    href: &str,
    encoding: &'static Encoding,
) -> Result<Url, url::ParseError> {
    // UTF-16 pages' URLs are UTF-8, as the standard's "output encoding" says.
    let encoding = encoding.output_encoding();
    if encoding == UTF_8 {
        return base.join(href);
    }
    let encode: &dyn Fn(&str) -> Cow<'_, [u8]> = &|text| encode_query(encoding, text);
    Url::options()
        .base_url(Some(base))
        .encoding_override(Some(encode))
        .parse(href)
}

/// `text` in `encoding`; a character it cannot spell becomes `%26%23` + its code point in
/// decimal + `%3B` (`&#26085;` escaped), as the URL standard has browsers write it. The URL
/// parser leaves `%` as it is, so these escapes reach the server unchanged.
fn encode_query<'a>(encoding: &'static Encoding, text: &'a str) -> Cow<'a, [u8]> {
    let (bytes, _, unmappable) = encoding.encode(text);
    if !unmappable {
        return bytes;
    }
    let mut encoder = encoding.new_encoder();
    let mut out = Vec::with_capacity(text.len() * 2);
    let mut rest = text;
    loop {
        out.reserve(
            encoder
                .max_buffer_length_from_utf8_without_replacement(rest.len())
                .unwrap_or(rest.len()),
        );
        let (result, read) =
            encoder.encode_from_utf8_to_vec_without_replacement(rest, &mut out, true);
        rest = &rest[read..];
        match result {
            EncoderResult::InputEmpty => return Cow::Owned(out),
            EncoderResult::OutputFull => {}
            EncoderResult::Unmappable(c) => {
                out.extend_from_slice(format!("%26%23{}%3B", u32::from(c)).as_bytes());
            }
        }
    }
}

/// Normalises a parsed URL; refuses what a crawler cannot fetch.
pub fn normalize(mut url: Url) -> Result<Url, UrlError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UrlError::Scheme(url.scheme().to_owned()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(UrlError::NoHost);
    }
    drop_trailing_dots(&mut url)?;
    url.set_fragment(None);
    if let Some(path) = canonical_escapes(url.path()) {
        url.set_path(&path);
    }
    match url.query() {
        Some("") => url.set_query(None),
        Some(query) => {
            if let Some(q) = canonical_escapes(query) {
                url.set_query(Some(&q));
            }
        }
        None => {}
    }
    match url.as_str().len() {
        len if len > MAX_URL_BYTES => Err(UrlError::TooLong(len)),
        _ => Ok(url),
    }
}

/// `example.com.` → `example.com`: DNS resolves both alike, but servers match `Host`
/// against the name without the dot (some refuse the dotted one), and a link written
/// either way must be one frontier row, one host and one request.
fn drop_trailing_dots(url: &mut Url) -> Result<(), UrlError> {
    let Some(url::Host::Domain(domain)) = url.host() else {
        return Ok(());
    };
    let bare = domain.trim_end_matches('.');
    if bare.len() == domain.len() {
        return Ok(());
    }
    if bare.is_empty() {
        return Err(UrlError::NoHost);
    }
    let bare = bare.to_owned();
    Ok(url.set_host(Some(&bare))?)
}

/// Drops the user name and password (`http://user:pw@host/`) of `url`, found on `page`
/// (a link, a redirect's target, a sitemap's entry), unless they are `page`'s own on
/// `page`'s origin: a seed's, which its relative links inherit. A URL's credentials are
/// sent to its host (as HTTP Basic authorization), and those a page writes are not the
/// crawl's to send, to that host or any other; without them the URL is also the one row
/// and the one fetch it is when written plainly.
///
/// Every link of every page passes here: most carry no credentials and cost two reads
/// (`origin()` allocates).
pub fn strip_foreign_userinfo(url: &mut Url, page: &Url) {
    if !has_userinfo(url) {
        return;
    }
    let own = url.username() == page.username()
        && url.password() == page.password()
        && url.origin() == page.origin();
    if !own {
        drop_userinfo(url);
    }
}

/// `text`, a URL or what was meant for one, with the password its user info writes
/// replaced by `***`: for messages, which logs, terminals and bug reports keep.
pub fn hide_password(text: &str) -> String {
    match Url::parse(text) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        Ok(_) => text.to_owned(),
        // A URL that does not parse (a port that is no number) is named in the error that
        // says so: what lies between `user:` and the last `@` before its query is taken
        // for its password.
        Err(_) => {
            let (scheme, rest) = match text.split_once("://") {
                Some((scheme, rest)) => (format!("{scheme}://"), rest),
                None => (String::new(), text),
            };
            let address = rest.split(['?', '#']).next().unwrap_or_default();
            match address
                .rsplit_once('@')
                .and_then(|(userinfo, _)| userinfo.split_once(':'))
            {
                Some((user, _)) => {
                    let host = &rest[address.rfind('@').map_or(0, |at| at + 1)..];
                    format!("{scheme}{user}:***@{host}")
                }
                None => text.to_owned(),
            }
        }
    }
}

/// `text` with every password in it replaced by `***`: a URL's (up to its last `@`
/// before its path, as a password may hold `@`), and one given as `password=` (a
/// PostgreSQL URL's parameter, libpq's keyword form). A config's error shows the line it
/// points at, value and all, and a misspelt key (`proxxy = "http://u:secret@proxy:3128"`,
/// `databse = "postgres://…"`) was printed with its password.
pub fn hide_passwords_in(text: &str) -> String {
    static USERINFO: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r#"(?P<user>[A-Za-z][A-Za-z0-9+.-]*://[^\s/?#@:'"]*:)[^\s/?#'"]*@"#)
            .unwrap_or_else(|e| panic!("the user info pattern is a constant: {e}"))
    });
    static PARAMETER: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r#"(?i)(?P<name>\bpassword\s*=\s*)[^&\s'"]+"#)
            .unwrap_or_else(|e| panic!("the password parameter pattern is a constant: {e}"))
    });
    let hidden = USERINFO.replace_all(text, "${user}***@");
    PARAMETER.replace_all(&hidden, "${name}***").into_owned()
}

/// Whether `url` writes a user name or a password.
pub fn has_userinfo(url: &Url) -> bool {
    !url.username().is_empty() || url.password().is_some()
}

/// Drops the user name and password of `url`.
pub fn drop_userinfo(url: &mut Url) {
    // Only a URL without a host cannot take these, and an http(s) URL has one.
    let _ = url.set_username("");
    let _ = url.set_password(None);
}

/// The politeness and robots.txt unit: host plus port when it is not the scheme's default.
pub fn host_key(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// The name of a [`host_key`], its port left out: `example.com:8080` → `example.com`;
/// `[::1]:80` → `[::1]`.
pub fn host_name(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// Rewrites `%7e` → `~` and `%2f` → `%2F`; `None` when the input is already canonical.
///
/// robots.txt rules are spelled this way too, so they match the URLs they name.
///
/// A `%` that starts no escape (`100%.pdf`) is kept as written, as browsers send it (the
/// URL standard's percent-encode sets leave `%` alone): escaped, it asks the server for
/// another resource. An escape of a hex digit within two characters after one is not
/// decoded, for it would make a new escape of them (`%%33` read as `%3`, `%A%33` as
/// `%A3`): the URL would normalise to another URL the next time, and mean another
/// resource to the server.
pub fn canonical_escapes(s: &str) -> Option<String> {
    respelled_escapes(s, String::push)
}

/// A regular expression matched against stored URLs (a scope rule, a boost's, a recrawl
/// rule's) with the escapes it writes spelled as [`canonical_escapes`] spells a URL's:
/// `%c3%a9` as `%C3%A9`, `%7e` as `~`. A rule copied from a page or a tool that writes
/// them otherwise (.NET's `UrlEncode` writes `%c3%a9`, older encoders `%7E`) would else
/// match no URL. A `%` inside a character class or after a backslash is the regular
/// expression's, and is left as written; a decoded `.` is matched as itself (`\.`).
pub fn rule_escapes(pattern: &str) -> Cow<'_, str> {
    if !pattern.contains('%') {
        return Cow::Borrowed(pattern);
    }
    let mut out = String::with_capacity(pattern.len());
    let mut changed = false;
    let mut run = String::new();
    let mut flush = |run: &mut String, out: &mut String| {
        let push = |out: &mut String, c: char| {
            if c == '.' {
                out.push('\\');
            }
            out.push(c);
        };
        match respelled_escapes(run, push) {
            Some(respelled) => {
                changed = true;
                out.push_str(&respelled);
            }
            None => out.push_str(run),
        }
        run.clear();
    };
    let (mut chars, mut classes) = (pattern.chars().peekable(), 0_usize);
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                flush(&mut run, &mut out);
                out.push(c);
                out.extend(chars.next());
            }
            '[' => {
                flush(&mut run, &mut out);
                classes += 1;
                out.push(c);
                // A `]` first in a class (`[]a]`, `[^]a]`) is one of its characters.
                out.extend(chars.next_if_eq(&'^'));
                out.extend(chars.next_if_eq(&']'));
            }
            ']' if classes > 0 => {
                classes -= 1;
                out.push(c);
            }
            _ if classes > 0 => out.push(c),
            _ => run.push(c),
        }
    }
    flush(&mut run, &mut out);
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(pattern)
    }
}

/// [`canonical_escapes`], each decoded character written by `push`.
fn respelled_escapes(s: &str, push: impl Fn(&mut String, char)) -> Option<String> {
    if !s.contains('%') {
        return None;
    }
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut changed = false;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = |j: usize| bytes.get(j).copied().and_then(hex_value);
            if let (Some(h), Some(l)) = (hex(i + 1), hex(i + 2)) {
                let decoded = h * 16 + l;
                // A `%` in `out` is one that starts no escape: a kept escape is followed
                // by its two digits, and nothing decoded is a `%`.
                let joins_stray = decoded.is_ascii_hexdigit()
                    && match out.as_bytes() {
                        [.., b'%'] => true,
                        [.., b'%', digit] => digit.is_ascii_hexdigit(),
                        _ => false,
                    };
                if (decoded.is_ascii_alphanumeric() || b"-._~".contains(&decoded)) && !joins_stray {
                    push(&mut out, char::from(decoded));
                    changed = true;
                } else {
                    let (hi, lo) = (bytes[i + 1], bytes[i + 2]);
                    let upper = (hi.to_ascii_uppercase(), lo.to_ascii_uppercase());
                    changed |= upper != (hi, lo);
                    out.extend(['%', char::from(upper.0), char::from(upper.1)]);
                }
                i += 3;
            } else {
                out.push('%');
                i += 1;
            }
            continue;
        }
        let ch_len = utf8_len(bytes[i]);
        out.push_str(&s[i..i + ch_len]);
        i += ch_len;
    }
    changed.then_some(out)
}

/// `url` as people write it, when that differs: an international host in Unicode
/// (`xn--bcher-kva.de` read as `bücher.de`) and UTF-8 escapes decoded (`/wiki/Caf%C3%A9`
/// read as `/wiki/Café`), as a browser's address bar shows it. Escapes of ASCII (`%2F`,
/// `%20`) and bytes that are not UTF-8 (a Shift_JIS query) stay escaped: decoding those
/// would make another URL of it, or no text at all.
pub fn as_read(url: &Url) -> Option<String> {
    match host_as_read(url) {
        Some(host) => {
            let s = format!(
                "{}{host}{}",
                &url[..Position::BeforeHost],
                &url[Position::AfterHost..]
            );
            Some(utf8_escapes_decoded(&s).unwrap_or(s))
        }
        None => utf8_escapes_decoded(url.as_str()),
    }
}

/// `url` half as people write it, when it has both an international host and UTF-8
/// escapes after it: its host read and the rest as stored, and its host as stored and
/// the rest read ([`as_read`] reads both). A rule written partly from what the crawler
/// prints (`xn--bcher-kva.de`) and partly by hand (`/café/`) matches one of these.
pub fn as_half_read(url: &Url) -> Vec<String> {
    // The host first: most URLs have an ASCII one, and their rest need not be decoded.
    let Some(host) = host_as_read(url) else {
        return Vec::new();
    };
    let Some(rest) = utf8_escapes_decoded(&url[Position::AfterHost..]) else {
        return Vec::new();
    };
    vec![
        format!(
            "{}{host}{}",
            &url[..Position::BeforeHost],
            &url[Position::AfterHost..]
        ),
        format!("{}{rest}", &url[..Position::AfterHost]),
    ]
}

/// `url`'s host in Unicode, when it is an international name (`xn--bcher-kva.de` read as
/// `bücher.de`).
fn host_as_read(url: &Url) -> Option<String> {
    url.host_str().filter(|h| h.contains("xn--")).and_then(|h| {
        let (name, read) = idna::domain_to_unicode(h);
        (read.is_ok() && name != h).then_some(name)
    })
}

/// `s` with its escapes of UTF-8 decoded, when it has any.
fn utf8_escapes_decoded(s: &str) -> Option<String> {
    if !s.contains('%') {
        return None;
    }
    let bytes = s.as_bytes();
    let escaped_byte = |i: usize| {
        let hex = |j: usize| bytes.get(j).copied().and_then(hex_value);
        match (bytes.get(i), hex(i + 1), hex(i + 2)) {
            (Some(b'%'), Some(h), Some(l)) if h >= 8 => Some(h * 16 + l),
            _ => None,
        }
    };
    // Most escapes are of ASCII (`%2F`, `%20`): such a URL is not copied.
    let first = (0..bytes.len()).find(|&i| escaped_byte(i).is_some())?;
    let mut out = String::with_capacity(s.len());
    out.push_str(&s[..first]);
    let mut decoded = false;
    let mut i = first;
    while i < bytes.len() {
        let mut run = Vec::new();
        while let Some(b) = escaped_byte(i) {
            run.push(b);
            i += 3;
        }
        for chunk in run.utf8_chunks() {
            decoded |= !chunk.valid().is_empty();
            out.push_str(chunk.valid());
            for b in chunk.invalid() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        if let Some(ch) = s.get(i..).and_then(|rest| rest.chars().next()) {
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    decoded.then_some(out)
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).map(|d| d as u8)
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// The URL ranges [from, to) that hold the URLs on `host` as the user typed it, spelled
/// as the crawler stores them: the name in lower case and punycode, without a trailing
/// dot, a scheme's default port left out. A URL (pasted from a browser or a log line)
/// names its host and port. An IPv6 address may be typed without brackets (`::1`, as
/// `ip` and `ss` print it), and then names no port: its last group is not one.
pub fn host_ranges(host: &str) -> Vec<(String, String)> {
    let typed = host.trim();
    let typed = match typed.split_once("://") {
        Some((_, rest)) => rest.split(['/', '?', '#']).next().unwrap_or_default(),
        None => typed.trim_end_matches('/'),
    };
    let typed: Cow<'_, str> = match typed.parse::<std::net::Ipv6Addr>() {
        Ok(_) => Cow::Owned(format!("[{typed}]")),
        Err(_) => Cow::Borrowed(typed),
    };
    let (name, port) = match typed.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            // As the URL parser spells it (`08080` is 8080); a port no URL can have
            // matches nothing.
            (
                name,
                Some(
                    port.parse::<u16>()
                        .map_or_else(|_| port.to_owned(), |p| p.to_string()),
                ),
            )
        }
        _ => (typed.as_ref(), None),
    };
    let name = normalize_str(&format!("http://{name}/"))
        .ok()
        .and_then(|url| url.host_str().map(str::to_owned))
        .unwrap_or_else(|| name.to_ascii_lowercase());
    let mut ranges = Vec::new();
    for (scheme, default_port) in [("http", "80"), ("https", "443")] {
        let base = format!("{scheme}://{name}");
        match port.as_deref() {
            Some(port) if port == default_port => {
                ranges.push((format!("{base}/"), format!("{base}0")));
            }
            Some(port) => ranges.push((format!("{base}:{port}/"), format!("{base}:{port}0"))),
            None => {
                ranges.push((format!("{base}/"), format!("{base}0")));
                ranges.push((format!("{base}:"), format!("{base};")));
            }
        }
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_in_a_text_are_hidden() {
        assert_eq!(
            hide_passwords_in("5 | proxxy = \"http://u:s3cr%40t@proxy:3128\"\n  |  ^"),
            "5 | proxxy = \"http://u:***@proxy:3128\"\n  |  ^"
        );
        assert_eq!(
            hide_passwords_in("'postgres://crawler:pw@db/crawl' and https://a.example/x@y"),
            "'postgres://crawler:***@db/crawl' and https://a.example/x@y"
        );
        assert_eq!(hide_passwords_in("http://user@host/"), "http://user@host/");
        assert_eq!(
            hide_passwords_in("'http://u:p@ss@proxy:3128/a@b'"),
            "'http://u:***@proxy:3128/a@b'"
        );
        assert_eq!(
            hide_passwords_in("'postgres://db/crawl?user=c&password=pw&sslmode=require'"),
            "'postgres://db/crawl?user=c&password=***&sslmode=require'"
        );
        assert_eq!(
            hide_passwords_in("'host=db password=pw dbname=crawl'"),
            "'host=db password=*** dbname=crawl'"
        );
    }

    fn n(s: &str) -> String {
        normalize_str(s).unwrap().to_string()
    }

    #[test]
    fn spellings_of_one_resource_normalise_to_one_url() {
        let same = [
            "HTTP://Example.COM:80/a/./b/../c?",
            "http://example.com/a/c#frag",
            "http://example.com/a/%63",
            "http://example.com:80/a/c",
        ];
        for s in same {
            assert_eq!(n(s), "http://example.com/a/c", "{s}");
        }
        assert_eq!(n("https://example.com"), "https://example.com/");
        assert_eq!(
            n("https://example.com:8443/x"),
            "https://example.com:8443/x"
        );
    }

    /// A fully qualified name's final dot names the same host to DNS, but a server that
    /// does not expect it in `Host` may refuse it, and the frontier would hold both.
    #[test]
    fn a_hosts_trailing_dot_is_dropped() {
        assert_eq!(n("http://Example.COM./a"), "http://example.com/a");
        assert_eq!(
            n("https://example.com..:8443/"),
            "https://example.com:8443/"
        );
        assert_eq!(n("http://1.2.3.4../"), "http://1.2.3.4/");
        assert_eq!(normalize_str("http://./"), Err(UrlError::NoHost));
        let base = normalize_str("http://h/").unwrap();
        assert_eq!(resolve(&base, "//h./x").unwrap().as_str(), "http://h/x");
    }

    #[test]
    fn escapes_are_spelled_one_way_and_reserved_ones_kept() {
        assert_eq!(n("http://h/a%2fb?q=%7e%2f"), "http://h/a%2Fb?q=~%2F");
        assert_eq!(n("http://h/caf%C3%A9"), "http://h/caf%C3%A9");
        assert_eq!(n("http://h/a%zz?q=%"), "http://h/a%zz?q=%");
    }

    /// Found by `cargo fuzz run urlnorm`: `%%33` decoded to `%3`, which the next
    /// normalisation read as another escape. A stray `%` is kept as browsers send it, and
    /// an escape of a hex digit that would make a new escape with it is not decoded.
    #[test]
    fn a_stray_percent_is_kept_and_normalising_twice_changes_nothing() {
        for s in [
            "http://h/%",
            "http://h/%%33",
            "http://h/%%3741",
            "http://h/%%%%%%T%%%%333%%%%%%%%",
            "http://h/p?a=%%7e&b=%4",
            "http://h/%25",
            "http://h/%A%33%34",
            "http://h/%G%41",
            "http://h/%%7E%41",
        ] {
            let once = n(s);
            assert_eq!(n(&once), once, "{s}");
        }
        assert_eq!(n("http://h/%%33"), "http://h/%%33");
        assert_eq!(n("http://h/%A%33%34"), "http://h/%A%334");
        assert_eq!(n("http://h/%G%41"), "http://h/%GA");
        assert_eq!(n("http://h/%%7E%41"), "http://h/%~A");
        assert_eq!(n("http://h/%"), "http://h/%");
    }

    /// A zone id (`[fe80::1%25eth0]`, RFC 6874: which interface a link-local address is
    /// on) is no part of a URL as browsers and the URL standard read it. Refused as "not
    /// a URL: invalid IPv6 address", the address looked mistyped, though it was not.
    #[test]
    fn an_ipv6_zone_id_is_refused_saying_urls_carry_none() {
        for typed in ["http://[fe80::1%25eth0]:8080/", "http://[::1%lo]/"] {
            let error = normalize_str(typed).expect_err(typed).to_string();
            assert!(error.contains("zone id"), "{typed}: {error}");
        }
        let mistyped = normalize_str("http://[::g]/").expect_err("no address");
        assert!(!mistyped.to_string().contains("zone id"), "{mistyped}");
    }

    /// `http://::1:8080/`, an address as `netstat` prints it, was refused as "empty
    /// host"; `http://fe80::1/` as "invalid port number": the brackets are shown.
    #[test]
    fn an_ipv6_address_without_brackets_is_shown_with_them() {
        let shown = |s: &str| match normalize_str(s) {
            Err(UrlError::Unbracketed(with)) => with,
            other => panic!("{s}: {other:?}"),
        };
        assert_eq!(shown("http://::1:8080/a?b"), "http://[::1]:8080/a?b");
        assert_eq!(shown("https://fe80::1"), "https://[fe80::1]/");
        assert_eq!(shown("http://2001:db8::7/x"), "http://[2001:db8::7]/x");
        assert!(matches!(
            normalize_str("http://:80/"),
            Err(UrlError::Unparsable(_))
        ));
        assert!(matches!(
            normalize_str("http://h:99999/"),
            Err(UrlError::Unparsable(_))
        ));
        // No port: nothing this URL could be written as.
        assert!(matches!(
            normalize_str("http://::1:99999/"),
            Err(UrlError::Unparsable(_))
        ));
    }

    /// An IPv6 address is typed in brackets, its port after them (`[::1]:8080`, a dev
    /// server on IPv6 loopback): its own colons are no port, and it was refused as "not
    /// a URL: relative URL without a base", where `localhost:8080` is shown with a scheme.
    #[test]
    fn an_ipv6_address_without_a_scheme_is_shown_with_one() {
        let shown = |s: &str| match normalize_str(s) {
            Err(UrlError::NoScheme(with)) => Some(with),
            other => panic!("{s}: {other:?}"),
        };
        assert_eq!(
            shown("[::1]:8080/a").as_deref(),
            Some("https://[::1]:8080/a")
        );
        assert_eq!(shown("[0:0::1]").as_deref(), Some("https://[::1]/"));
        assert_eq!(
            shown("//[2001:DB8::7]:443/").as_deref(),
            Some("https://[2001:db8::7]/")
        );
        assert!(normalize_str("[::1]:x/").is_err_and(|e| !matches!(e, UrlError::NoScheme(_))));
    }

    #[test]
    fn a_url_without_a_scheme_is_refused_showing_it_with_one() {
        let shown = |s: &str| match normalize_str(s) {
            Err(UrlError::NoScheme(with)) => Some(with),
            _ => None,
        };
        assert_eq!(
            shown(" Example.com ").as_deref(),
            Some("https://example.com/")
        );
        assert_eq!(
            shown("127.0.0.1:8080/a?b").as_deref(),
            Some("https://127.0.0.1:8080/a?b")
        );
        assert_eq!(
            shown("localhost:443").as_deref(),
            Some("https://localhost/")
        );
        // In the spelling it was given, not the stored one (`xn--bcher-kva.example`,
        // `/stra%C3%9Fe`), which reads as another URL to the one who typed it.
        assert_eq!(
            shown("Bücher.example/straße?q=café").as_deref(),
            Some("https://bücher.example/straße?q=café")
        );
        for not_a_host in [
            "a@b.c",
            "mailto:a@b.c",
            "javascript:void(0)",
            "a b",
            "/path",
            "",
        ] {
            assert_eq!(shown(not_a_host), None, "{not_a_host}");
        }
    }

    #[test]
    fn non_http_schemes_are_refused() {
        for s in [
            "mailto:a@b.c",
            "javascript:void(0)",
            "data:text/html,hi",
            "ftp://h/",
        ] {
            assert!(matches!(normalize_str(s), Err(UrlError::Scheme(_))), "{s}");
        }
    }

    #[test]
    fn an_href_loses_ascii_whitespace_around_it_and_keeps_a_no_break_space() {
        let base = normalize_str("http://h/dir/").unwrap();
        let resolved = |href: &str| resolve(&base, href).unwrap().to_string();
        assert_eq!(resolved(" \t\n/a \r\n"), "http://h/a");
        assert_eq!(resolved("/a\u{a0}"), "http://h/a%C2%A0");
    }

    #[test]
    fn urls_past_the_longest_kept_are_refused() {
        let at_most = format!("http://h/{}", "a".repeat(MAX_URL_BYTES - 9));
        assert_eq!(n(&at_most).len(), MAX_URL_BYTES);
        let past = format!("{at_most}b");
        assert_eq!(
            normalize_str(&past),
            Err(UrlError::TooLong(MAX_URL_BYTES + 1))
        );
        let base = normalize_str("http://h/").unwrap();
        assert!(matches!(
            resolve(&base, &format!("/?q={}", "x".repeat(MAX_URL_BYTES))),
            Err(UrlError::TooLong(_))
        ));
    }

    #[test]
    fn host_key_keeps_only_non_default_ports() {
        assert_eq!(host_key(&normalize_str("http://a.b:80/").unwrap()), "a.b");
        assert_eq!(
            host_key(&normalize_str("http://127.0.0.2:9000/").unwrap()),
            "127.0.0.2:9000"
        );
    }

    #[test]
    fn a_links_query_is_spelled_in_its_pages_encoding() {
        let base = normalize_str("http://h/dir/").unwrap();
        let on = |encoding| {
            resolve_in(&base, "/日本?q=日本#top", encoding)
                .unwrap()
                .to_string()
        };
        assert_eq!(
            on(encoding_rs::SHIFT_JIS),
            "http://h/%E6%97%A5%E6%9C%AC?q=%93%FA%96{",
            "the path is UTF-8 whatever the page"
        );
        assert_eq!(
            on(encoding_rs::WINDOWS_1252),
            "http://h/%E6%97%A5%E6%9C%AC?q=%26%2326085%3B%26%2326412%3B",
            "what the encoding cannot spell becomes a character reference, as in browsers"
        );
        for utf8 in [UTF_8, encoding_rs::UTF_16LE] {
            assert_eq!(on(utf8), "http://h/%E6%97%A5%E6%9C%AC?q=%E6%97%A5%E6%9C%AC");
        }
    }

    #[test]
    fn a_rule_writes_its_escapes_as_urls_are_stored_outside_its_classes() {
        for (rule, stored) in [
            ("/caf%c3%a9$", "/caf%C3%A9$"),
            ("/%7eanna/%2e%2E", "/~anna/\\.\\."),
            ("^https?://[^/]+/%41+", "^https?://[^/]+/A+"),
            ("/100%%33", "/100%%33"),
            ("/[%ab]\\%7e%7E", "/[%ab]\\%7e~"),
            ("/[]%7e]%7e", "/[]%7e]~"),
            ("/[^]%7e]", "/[^]%7e]"),
            ("/caf%C3%A9", "/caf%C3%A9"),
        ] {
            assert_eq!(rule_escapes(rule), stored, "{rule}");
        }
    }

    #[test]
    fn a_url_as_read_decodes_utf8_escapes_only() {
        let read = |s: &str| as_read(&normalize_str(s).unwrap());
        assert_eq!(
            read("http://h/wiki/Café?q=grün%2Fx").as_deref(),
            Some("http://h/wiki/Café?q=grün%2Fx")
        );
        assert_eq!(
            read("http://h/a%E9%C3%A9%C3").as_deref(),
            Some("http://h/a%E9é%C3"),
            "bytes that are not UTF-8 stay escaped"
        );
        assert_eq!(
            read("http://Bücher.de/Caf%C3%A9").as_deref(),
            Some("http://bücher.de/Café"),
            "an international host as it reads"
        );
        assert_eq!(
            read("http://xn--bcher-kva.de/").as_deref(),
            Some("http://bücher.de/")
        );
        assert_eq!(read("http://h/a%2Fb%20c"), None);
        assert_eq!(read("http://h/plain"), None);
        let half = |s: &str| as_half_read(&normalize_str(s).unwrap());
        assert_eq!(
            half("http://bücher.de:81/Caf%C3%A9"),
            [
                "http://bücher.de:81/Caf%C3%A9",
                "http://xn--bcher-kva.de:81/Café"
            ]
        );
        assert!(half("http://bücher.de/plain").is_empty());
        assert!(half("http://h/Caf%C3%A9").is_empty());
    }

    fn owned<const N: usize>(pairs: [(&str, &str); N]) -> Vec<(String, String)> {
        pairs.map(|(a, b)| (a.to_owned(), b.to_owned())).to_vec()
    }

    #[test]
    fn a_host_without_a_port_is_on_any_port() {
        assert_eq!(
            host_ranges(" Example.COM/"),
            owned([
                ("http://example.com/", "http://example.com0"),
                ("http://example.com:", "http://example.com;"),
                ("https://example.com/", "https://example.com0"),
                ("https://example.com:", "https://example.com;"),
            ])
        );
    }

    #[test]
    fn a_port_is_spelled_as_stored_urls_spell_it() {
        assert_eq!(
            host_ranges("127.0.0.2:08080"),
            owned([
                ("http://127.0.0.2:8080/", "http://127.0.0.2:80800"),
                ("https://127.0.0.2:8080/", "https://127.0.0.2:80800"),
            ])
        );
        assert_eq!(
            host_ranges("a.b:443"),
            owned([
                ("http://a.b:443/", "http://a.b:4430"),
                ("https://a.b/", "https://a.b0"),
            ])
        );
    }

    #[test]
    fn international_names_and_ipv6_are_spelled_as_the_crawler_stores_them() {
        assert_eq!(host_ranges("Bücher.de")[0].0, "http://xn--bcher-kva.de/");
        assert_eq!(host_ranges("[::1]:8080")[0].0, "http://[::1]:8080/");
        assert_eq!(host_ranges("[::1]")[1].0, "http://[::1]:");
    }

    /// `example.com.` is stored as `example.com`, and `::1` is how `ip` and `ss` print
    /// loopback: either typed (or pasted in a URL) matched nothing.
    #[test]
    fn a_hosts_trailing_dot_and_an_unbracketed_ipv6_address_name_the_stored_host() {
        assert_eq!(host_ranges("Example.COM."), host_ranges("example.com"));
        assert_eq!(
            host_ranges("http://example.com.:8080/docs"),
            host_ranges("example.com:8080")
        );
        assert_eq!(host_ranges("::1"), host_ranges("[::1]"));
        assert_eq!(
            host_ranges("0:0::FFFF:7f00:1"),
            host_ranges("[::ffff:7f00:1]")
        );
    }

    #[test]
    fn a_url_names_its_host_and_port() {
        assert_eq!(
            host_ranges("https://Example.com/a?b#c"),
            host_ranges("example.com")
        );
        assert_eq!(host_ranges("http://a.b:8080"), host_ranges("a.b:8080"));
        assert_eq!(
            host_ranges("http://[::1]:8080/x"),
            host_ranges("[::1]:8080")
        );
    }
}
