//! Content codings, decoded here as a body arrives rather than by the HTTP client: the
//! client read only the first member of a gzip body (`cat a.gz b.gz`, which `gzip -d` and
//! browsers read whole), and on a connection whose close ends the body it could not tell
//! a stream cut short from a whole one, having removed the `Content-Length`; the decoder
//! can, whatever the framing: a gzip stream ends with its trailer, a brotli one with its
//! last block. RFC 9110 §8.4.1 has coding names compared without regard to case and
//! `x-gzip` read as `gzip`, as browsers read them (Apache's stock `AddEncoding x-gzip
//! .gz` sends it), and `deflate` is read in either form servers send it; a few codings
//! one over another (`gzip, gzip`) are decoded last first; any other coding is a body
//! the crawler cannot read, and is not taken for HTML. A transfer coding besides
//! `chunked` (`Transfer-Encoding: gzip, chunked`, RFC 9112 §7) is read the same way,
//! over the content codings: the HTTP client takes only the chunks apart.

use std::io::{self, Write};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_ENCODING, TRANSFER_ENCODING};

/// The most codings one over another that are decoded: a server behind two compressing
/// proxies sends two, and each is one more decoder per body.
const MAX_STACKED: usize = 3;

/// The `Accept-Encoding` every request sends: the codings servers compress pages in that
/// [`Decoder`] reads (`deflate` is read when sent all the same, but not asked for).
pub const ACCEPTED: HeaderValue = HeaderValue::from_static("gzip, br");

/// A coding on a response's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Coding {
    /// `gzip`, in any spelling (`x-gzip`, `GZIP`).
    Gzip(String),
    /// `deflate`: a zlib stream, as RFC 9110 has it, or raw deflate, as some servers
    /// send it and browsers read it.
    Deflate(String),
    /// `br`.
    Brotli(String),
    /// Codings applied one over another, in the order listed (`gzip, br`: gzipped, then
    /// brotli over that), as a server behind two compressing proxies sends them (`gzip,
    /// gzip`), and browsers decode them: named by the whole list.
    Stacked(String, Vec<Coding>),
    /// A coding the crawler does not decode (`compress`, `zstd`, a list naming one, or
    /// more than [`MAX_STACKED`]).
    Unknown(String),
}

impl Coding {
    /// The coding on a body with `headers`, if any: its content codings, then its
    /// transfer codings (applied over them). `identity` in a list is no coding (`gzip,
    /// identity` is `gzip`, as browsers read it); a list of more than one coding is
    /// [`Coding::Stacked`], if the crawler decodes each.
    pub fn left_on(headers: &HeaderMap) -> Option<Self> {
        let content = listed(headers, CONTENT_ENCODING).join(", ");
        let value = match transfer_codings(headers) {
            transfer if transfer.is_empty() => content,
            transfer if content.is_empty() => transfer,
            transfer => format!("{content}, {transfer}"),
        };
        let mut codings: Vec<_> = value
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty() && !name.eq_ignore_ascii_case("identity"))
            .map(Self::named)
            .collect();
        match codings.len() {
            0 | 1 => codings.pop(),
            n if n > MAX_STACKED || codings.iter().any(|c| matches!(c, Self::Unknown(_))) => {
                Some(Self::Unknown(value))
            }
            _ => Some(Self::Stacked(value, codings)),
        }
    }

    /// The headers that name the coding on a body with `headers`, for a message.
    pub fn named_by(headers: &HeaderMap) -> &'static str {
        match (
            headers.contains_key(CONTENT_ENCODING),
            transfer_codings(headers).is_empty(),
        ) {
            (_, true) => "Content-Encoding",
            (false, false) => "Transfer-Encoding",
            (true, false) => "Content-Encoding and Transfer-Encoding",
        }
    }

    /// The one coding `name` names.
    fn named(name: &str) -> Self {
        let name = name.to_owned();
        if name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip") {
            Self::Gzip(name)
        } else if name.eq_ignore_ascii_case("deflate") {
            Self::Deflate(name)
        } else if name.eq_ignore_ascii_case("br") {
            Self::Brotli(name)
        } else {
            Self::Unknown(name)
        }
    }

    /// The coding as the server named it.
    pub fn name(&self) -> &str {
        match self {
            Self::Gzip(name)
            | Self::Deflate(name)
            | Self::Brotli(name)
            | Self::Stacked(name, _)
            | Self::Unknown(name) => name,
        }
    }
}

/// A body read as its bytes come, decoded from its coding, at most its cap of it kept
/// (the rest of a bomb is decoded to nowhere, and the reader stops once
/// [`Decoder::overflowed`]). A body in no coding, or in one the crawler does not decode,
/// is kept as it came: every reader of bodies reads them all through one loop.
///
/// The bytes taken in are held to the cap too: a stream that decodes to little or
/// nothing (empty stored blocks, empty gzip members, bytes after its end) had no end
/// but the server's or `fetch.timeout_ms`. Real compressed bodies are smaller than what
/// they decode to, or larger by a few bytes a block; in a stack, each layer's input is
/// held so.
pub struct Decoder {
    stream: Stream,
    cap: usize,
    /// How many bytes were taken in.
    taken: usize,
    /// More than the cap came in: the rest was dropped.
    overfed: bool,
    /// Whether any bytes came: no bytes are no content in any coding (a server's empty
    /// page or robots.txt, not a stream cut short).
    begun: bool,
    /// Whether the stream has ended: the bytes after it are ignored.
    ended: bool,
}

enum Stream {
    /// No coding, or one not decoded (`Unknown`).
    Identity(Sink),
    /// The gzip member being read: a body may hold several (RFC 1952), and
    /// `zcat` reads them as one text.
    Gzip(flate2::write::GzDecoder<Sink>),
    /// The first bytes of a `deflate` body, until there are two to tell a zlib header
    /// by, as browsers tell the two forms apart.
    Deflate(Sink, Vec<u8>),
    Zlib(flate2::write::ZlibDecoder<Sink>),
    RawDeflate(flate2::write::DeflateDecoder<Sink>),
    Brotli(Box<brotli::DecompressorWriter<Sink>>),
}

/// Where a [`Decoder`] writes what it decodes: kept, or, in a stack of codings, to the
/// decoder of the coding under its own, as it comes (no layer is held whole).
enum Sink {
    Kept(Capped),
    Next(Box<Decoder>),
}

impl Sink {
    fn kept(&mut self) -> &mut Capped {
        match self {
            Self::Kept(out) => out,
            Self::Next(decoder) => decoder.sink().kept(),
        }
    }
}

impl Default for Sink {
    fn default() -> Self {
        Self::Kept(Capped::default())
    }
}

impl Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Self::Kept(out) => out.write(bytes),
            Self::Next(decoder) => decoder.write(bytes).map(|()| bytes.len()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Decoder {
    /// A reader of a body in `coding` that keeps at most `cap` bytes of it, decoded. A body
    /// kept as it came starts with room for `presize` bytes (its declared length, so that
    /// it is not copied as it grows).
    pub fn of(coding: Option<&Coding>, cap: usize, presize: usize) -> Self {
        let kept = |presize: usize| {
            Sink::Kept(Capped {
                out: Vec::with_capacity(presize),
                cap,
                overflowed: false,
            })
        };
        match coding {
            None | Some(Coding::Unknown(_)) => Self::new(Stream::Identity(kept(presize)), cap),
            Some(coding) => Self::decoding(coding, kept(0), cap),
        }
    }

    /// A reader of a body in `coding` that writes what it decodes to `out`, taking in at
    /// most `cap` bytes.
    fn decoding(coding: &Coding, out: Sink, cap: usize) -> Self {
        let stream = match coding {
            Coding::Unknown(_) => Stream::Identity(out),
            Coding::Gzip(_) => Stream::Gzip(flate2::write::GzDecoder::new(out)),
            Coding::Deflate(_) => Stream::Deflate(out, Vec::new()),
            Coding::Brotli(_) => {
                Stream::Brotli(Box::new(brotli::DecompressorWriter::new(out, 4096)))
            }
            Coding::Stacked(_, codings) => {
                // The coding listed first was applied first: its decoder is the innermost.
                let stack = codings.iter().fold(out, |out, coding| {
                    Sink::Next(Box::new(Self::decoding(coding, out, cap)))
                });
                match stack {
                    Sink::Next(outermost) => return *outermost,
                    kept @ Sink::Kept(_) => Stream::Identity(kept),
                }
            }
        };
        Self::new(stream, cap)
    }

    fn new(stream: Stream, cap: usize) -> Self {
        Self {
            stream,
            cap,
            taken: 0,
            overfed: false,
            begun: false,
            ended: false,
        }
    }

    /// Decodes `bytes`, the body's next, until more than the cap came, in or out. An
    /// error is a body that is not in its coding (not a stream, or a corrupt one),
    /// whatever else comes.
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        let room = self.cap.saturating_sub(self.taken);
        let taken = &bytes[..bytes.len().min(room)];
        self.taken += taken.len();
        let decoded = self.decode(taken);
        self.overfed |= bytes.len() > room;
        decoded
    }

    fn decode(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.begun |= !bytes.is_empty();
        let mut rest = bytes;
        while !rest.is_empty() && !self.ended && !self.overflowed() {
            let used = match &mut self.stream {
                Stream::Identity(out) => out.write(rest)?,
                Stream::Gzip(member) => match member.write(rest)? {
                    0 => {
                        // The member ended; bytes that start no other (a server's zero
                        // padding, a newline a script printed after its compressed
                        // output) are ignored, as `gzip` and browsers ignore them.
                        member.try_finish()?;
                        self.ended = !GZIP_MAGIC.starts_with(&rest[..rest.len().min(2)]);
                        if !self.ended {
                            let out = std::mem::take(member.get_mut());
                            *member = flate2::write::GzDecoder::new(out);
                        }
                        0
                    }
                    used => used,
                },
                Stream::Deflate(out, first) => {
                    let used = rest.len().min(2 - first.len());
                    first.extend_from_slice(&rest[..used]);
                    if first.len() == 2 {
                        let (out, first) = (std::mem::take(out), std::mem::take(first));
                        self.stream = if has_zlib_header(&first) {
                            Stream::Zlib(flate2::write::ZlibDecoder::new(out))
                        } else {
                            Stream::RawDeflate(flate2::write::DeflateDecoder::new(out))
                        };
                        self.decode(&first)?;
                    }
                    used
                }
                Stream::Zlib(stream) => stream.write(rest)?,
                Stream::RawDeflate(stream) => stream.write(rest)?,
                Stream::Brotli(stream) => stream.write(rest)?,
            };
            // A stream that takes nothing more has ended.
            self.ended |= used == 0 && !matches!(self.stream, Stream::Gzip(_));
            rest = &rest[used..];
        }
        Ok(())
    }

    /// Whether more came than the cap, in or out (in any layer of a stack): what is
    /// kept is cut there.
    pub fn overflowed(&mut self) -> bool {
        self.overfed
            || match self.sink() {
                Sink::Kept(out) => out.overflowed,
                Sink::Next(decoder) => decoder.overflowed(),
            }
    }

    /// What is kept so far (a decoder may hold back a few bytes it has not yet written
    /// out): enough to tell what a body is.
    pub fn decoded(&mut self) -> &[u8] {
        &self.sink().kept().out
    }

    fn sink(&mut self) -> &mut Sink {
        match &mut self.stream {
            Stream::Identity(out) => out,
            Stream::Gzip(stream) => stream.get_mut(),
            Stream::Deflate(out, _) => out,
            Stream::Zlib(stream) => stream.get_mut(),
            Stream::RawDeflate(stream) => stream.get_mut(),
            Stream::Brotli(stream) => stream.get_mut(),
        }
    }

    /// What was decoded, and the error that says the stream did not end (cut short), if
    /// it did not: a gzip member without its trailer, a brotli stream before its last
    /// block, a zlib one without its Adler-32 trailer, a raw deflate one before its final
    /// block (one byte is neither: the shortest deflate stream takes two). In a stack,
    /// the first such error, from the outermost coding in.
    pub fn finish(mut self) -> (Vec<u8>, Option<io::Error>) {
        let finished = match &mut self.stream {
            _ if !self.begun => Ok(()),
            Stream::Identity(_) => Ok(()),
            Stream::Gzip(stream) => stream.try_finish(),
            Stream::Deflate(..) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "incomplete deflate stream",
            )),
            Stream::Zlib(stream) => stream.try_finish(),
            Stream::RawDeflate(stream) => stream.try_finish(),
            Stream::Brotli(stream) => stream.close(),
        };
        match std::mem::take(self.sink()) {
            Sink::Kept(out) => (out.out, finished.err()),
            Sink::Next(decoder) => {
                let (out, unfinished) = decoder.finish();
                (out, finished.err().or(unfinished))
            }
        }
    }
}

/// Where a [`Decoder`] keeps what it decodes: at most `cap` bytes, the rest taken and
/// dropped (a decoder whose output is refused stops with an error).
#[derive(Default)]
struct Capped {
    out: Vec<u8>,
    cap: usize,
    /// Bytes past the cap came, and were dropped.
    overflowed: bool,
}

impl Write for Capped {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let room = self.cap.saturating_sub(self.out.len());
        self.overflowed |= bytes.len() > room;
        self.out.extend_from_slice(&bytes[..bytes.len().min(room)]);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The transfer codings on a body with `headers`, as listed, but its last `chunked`: the
/// framing the HTTP client takes apart (any other it leaves in the body).
fn transfer_codings(headers: &HeaderMap) -> String {
    let mut codings = listed(headers, TRANSFER_ENCODING);
    if codings
        .last()
        .is_some_and(|last| last.eq_ignore_ascii_case("chunked"))
    {
        codings.pop();
    }
    codings.join(", ")
}

/// The codings the `name` header lines of `headers` list, in order: several lines are one
/// list (RFC 9110 §5.3), as a proxy that compresses a server's answer adds its own line.
/// Read from the first line only, a body gzipped and then brotli'd was "not the gzip
/// named", and one under `identity` then `gzip` was taken as it came.
fn listed(headers: &HeaderMap, name: HeaderName) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .flat_map(|value| {
            String::from_utf8_lossy(value.as_bytes())
                .split(',')
                .map(|name| name.trim().to_owned())
                .collect::<Vec<_>>()
        })
        .filter(|name| !name.is_empty())
        .collect()
}

/// How a gzip member starts.
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Decompresses every member of gzip `raw` into `out`, up to `cap` bytes in all, as
/// [`Decoder`] does (a sitemap file written in parts, `gzip -c part >> sitemap.gz`, is a
/// series of members); a `raw` that starts no member at all is an error. On an error,
/// what was decompressed before it is in `out`; a stream that stops short of its end
/// (a file cut off, its trailer's last bytes included) is an `UnexpectedEof`, which
/// flate2's words ("does not have a matching checksum") do not say. Whether more than
/// `cap` bytes came, cut at `cap` (exactly `cap` is all of it).
pub fn gunzip(raw: &[u8], cap: usize, out: &mut Vec<u8>) -> io::Result<bool> {
    let mut decoder = Decoder::of(Some(&Coding::Gzip(String::new())), cap, 0);
    let written = decoder.write(raw);
    let cut = decoder.overflowed();
    let (decoded, unfinished) = decoder.finish();
    *out = decoded;
    let unfinished = unfinished.map(|e| io::Error::new(io::ErrorKind::UnexpectedEof, e));
    written.and(unfinished.filter(|_| !cut).map_or(Ok(cut), Err))
}

/// Whether `raw` opens with a zlib header (RFC 1950: the deflate method, and a check
/// that makes the first two bytes a multiple of 31), as browsers tell the two apart.
fn has_zlib_header(raw: &[u8]) -> bool {
    match raw {
        [cmf, flg, ..] => cmf & 0x0f == 8 && u16::from_be_bytes([*cmf, *flg]) % 31 == 0,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn coded(value: &str) -> Option<Coding> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_ENCODING, HeaderValue::from_str(value).unwrap());
        Coding::left_on(&headers)
    }

    fn gzip(text: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(text).unwrap();
        gz.finish().unwrap()
    }

    /// `raw` decoded in `coding`, a few bytes at a time as a body arrives, held to `cap`;
    /// the error that refused it or found it cut short.
    fn decode(coding: &Coding, raw: &[u8], cap: usize) -> (Vec<u8>, Option<io::Error>) {
        let mut decoder = Decoder::of(Some(coding), cap, 0);
        let written = raw.chunks(7).try_for_each(|chunk| decoder.write(chunk));
        let (text, unfinished) = decoder.finish();
        (text, written.err().or(unfinished))
    }

    #[test]
    fn gzip_in_any_spelling_is_decoded_and_held_to_the_cap() {
        let gz = gzip(&[b'a'; 10_000]);
        for name in ["gzip", "x-gzip", "GZIP", "X-Gzip"] {
            let coding = coded(name).unwrap();
            assert_eq!(coding, Coding::Gzip(name.to_owned()));
            let (whole, error) = decode(&coding, &gz, 1 << 20);
            assert_eq!((whole.len(), error.is_none()), (10_000, true));
            let (cut, _) = decode(&coding, &gz, 100);
            assert_eq!(cut.len(), 100);
            let (empty, error) = decode(&coding, &[], 100);
            assert_eq!((empty.len(), error.is_none()), (0, true));
        }
    }

    #[test]
    fn gzip_members_are_read_and_the_bytes_after_them_ignored() {
        let coding = coded("gzip").unwrap();
        let members = [gzip(b"ab"), gzip(b"cd"), b"\n\0\0".to_vec()].concat();
        let (text, error) = decode(&coding, &members, 100);
        assert_eq!((text.as_slice(), error.is_none()), (&b"abcd"[..], true));
        let (plain, error) = decode(&coding, b"<title>x</title>", 100);
        assert_eq!((plain.len(), error.is_some()), (0, true), "not gzip at all");
        let whole = gzip(b"abcd");
        let (cut, error) = decode(&coding, &whole[..whole.len() - 4], 100);
        assert_eq!(
            (cut.as_slice(), error.is_some()),
            (&b"abcd"[..], true),
            "its end cut off"
        );
        let mut out = Vec::new();
        assert!(gunzip(&members, 100, &mut out).is_ok());
        assert_eq!(out, b"abcd");
    }

    #[test]
    fn brotli_is_decoded_and_a_stream_cut_short_is_told() {
        let mut br = brotli::CompressorWriter::new(Vec::new(), 4096, 5, 22);
        br.write_all(&[b'b'; 10_000]).unwrap();
        let br = br.into_inner();
        let coding = coded("br").unwrap();
        let (whole, error) = decode(&coding, &br, 1 << 20);
        assert_eq!((whole.len(), error.is_none()), (10_000, true));
        let (_, error) = decode(&coding, &br[..br.len() - 2], 1 << 20);
        assert!(error.is_some(), "its last block cut off");
    }

    #[test]
    fn deflate_in_either_form_is_decoded() {
        let text = b"<title>deflated</title>";
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        zlib.write_all(text).unwrap();
        let zlib = zlib.finish().unwrap();
        let raw = &zlib[2..zlib.len() - 4];
        let coding = coded("Deflate").unwrap();
        for stream in [&zlib[..], raw] {
            let (decoded, error) = decode(&coding, stream, 100);
            assert_eq!((decoded.as_slice(), error.is_none()), (&text[..], true));
        }
        for cut in [&zlib[..zlib.len() - 4], &raw[..raw.len() / 2], &zlib[..1]] {
            let (_, error) = decode(&coding, cut, 100);
            assert!(error.is_some(), "{} bytes: cut short", cut.len());
        }
    }

    #[test]
    fn identity_is_no_coding_and_others_are_not_decoded() {
        assert_eq!(coded("identity"), None);
        assert_eq!(coded(""), None);
        assert_eq!(coded("Identity, "), None);
        assert_eq!(coded("identity, BR"), Some(Coding::Brotli("BR".to_owned())));
        assert_eq!(
            coded("gzip,identity"),
            Some(Coding::Gzip("gzip".to_owned()))
        );
        for name in ["compress", "zstd", "gzip, zstd", "gzip, gzip, gzip, gzip"] {
            let coding = coded(name).unwrap();
            assert_eq!(coding, Coding::Unknown(name.to_owned()));
            let (kept, error) = decode(&coding, b"\x1f\x8b as it came", 10);
            assert_eq!(
                (kept.as_slice(), error.is_none()),
                (&b"\x1f\x8b as it c"[..], true)
            );
        }
    }

    /// `gzip, br`: gzipped, then brotli over that; decoded last first, each layer held
    /// to the cap as it comes, so a bomb gzipped twice is cut there too.
    #[test]
    fn codings_one_over_another_are_decoded_last_first() {
        let mut br = brotli::CompressorWriter::new(Vec::new(), 4096, 5, 22);
        br.write_all(&gzip(b"<title>twice</title>")).unwrap();
        let coding = coded("x-gzip, identity, BR").unwrap();
        assert!(matches!(coding, Coding::Stacked(ref name, _) if name == "x-gzip, identity, BR"));
        let (text, error) = decode(&coding, &br.into_inner(), 100);
        assert_eq!(
            (text.as_slice(), error.is_none()),
            (&b"<title>twice</title>"[..], true)
        );
        let coding = coded("gzip, gzip").unwrap();
        let bomb = gzip(&gzip(&vec![0; 4 << 20]));
        let (cut, error) = decode(&coding, &bomb, 1000);
        assert_eq!((cut.len(), error.is_some()), (1000, true), "cut at the cap");
        let twice = gzip(&gzip(b"abcd"));
        let (cut, error) = decode(&coding, &twice[..twice.len() - 4], 100);
        assert_eq!(
            (cut.as_slice(), error.is_some()),
            (&b"abcd"[..], true),
            "its end cut off"
        );
        let (plain, error) = decode(&coding, &gzip(b"<title>once</title>"), 100);
        assert_eq!(
            (plain.len(), error.is_some()),
            (0, true),
            "gzipped once only"
        );
    }

    /// A transfer coding besides the last `chunked` is read over the content codings.
    #[test]
    fn transfer_codings_are_read_over_the_content_codings() {
        let headed = |pairs: &[(reqwest::header::HeaderName, &'static str)]| {
            let mut headers = HeaderMap::new();
            for (name, value) in pairs {
                headers.append(name, HeaderValue::from_static(value));
            }
            (Coding::left_on(&headers), Coding::named_by(&headers))
        };
        let chunked = (TRANSFER_ENCODING, "chunked");
        assert_eq!(
            headed(std::slice::from_ref(&chunked)),
            (None, "Content-Encoding")
        );
        assert_eq!(
            headed(&[(TRANSFER_ENCODING, "gzip, chunked")]),
            (Some(Coding::Gzip("gzip".to_owned())), "Transfer-Encoding")
        );
        let (both, named_by) = headed(&[
            (CONTENT_ENCODING, "br"),
            (TRANSFER_ENCODING, "gzip"),
            chunked,
        ]);
        assert_eq!(named_by, "Content-Encoding and Transfer-Encoding");
        assert!(matches!(both, Some(Coding::Stacked(ref name, _)) if name == "br, gzip"));
        let (framing_first, _) = headed(&[(TRANSFER_ENCODING, "chunked, gzip")]);
        assert_eq!(
            framing_first,
            Some(Coding::Unknown("chunked, gzip".to_owned()))
        );
    }

    /// A stream that decodes to nothing is held to the cap by the bytes it takes in.
    #[test]
    fn the_bytes_taken_in_are_held_to_the_cap() {
        let mut empty_blocks = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
        empty_blocks.extend([0, 0, 0, 0xff, 0xff].repeat(1000));
        let mut decoder = Decoder::of(coded("gzip").as_ref(), 1000, 0);
        decoder.write(&empty_blocks).unwrap();
        assert!(decoder.overflowed());
        let mut decoder = Decoder::of(None, 10, 0);
        decoder.write(b"0123456789abc").unwrap();
        assert_eq!(
            (decoder.overflowed(), decoder.decoded()),
            (true, &b"0123456789"[..])
        );
    }
}
