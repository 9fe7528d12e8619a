//! Content codings the HTTP client leaves encoded. reqwest decodes a body whose
//! `Content-Encoding` is exactly `gzip` or `br`; one spelled otherwise passes through as
//! it came, its header kept. RFC 9110 §8.4.1 has coding names compared without regard to
//! case and `x-gzip` read as `gzip`, as browsers read them (Apache's stock
//! `AddEncoding x-gzip .gz` sends it), so those are decoded here, and `deflate` in either
//! form servers send it; any other coding is a body the crawler cannot read, and is not
//! taken for HTML.

use std::io::Read;

use reqwest::header::{HeaderMap, CONTENT_ENCODING};

/// A coding left on a response's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Coding {
    /// `gzip` in another spelling (`x-gzip`, `GZIP`).
    Gzip(String),
    /// `deflate`: a zlib stream, as RFC 9110 has it, or raw deflate, as some servers
    /// send it and browsers read it.
    Deflate(String),
    /// A coding the crawler does not decode (`compress`, `zstd`, a list of codings).
    Unknown(String),
}

impl Coding {
    /// The coding still on a body with `headers`, if any (the client removes the header
    /// of a body it decoded).
    pub fn left_on(headers: &HeaderMap) -> Option<Self> {
        let value = headers.get(CONTENT_ENCODING)?;
        let name = String::from_utf8_lossy(value.as_bytes()).trim().to_owned();
        let coding = if name.is_empty() || name.eq_ignore_ascii_case("identity") {
            return None;
        } else if name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip") {
            Self::Gzip(name)
        } else if name.eq_ignore_ascii_case("deflate") {
            Self::Deflate(name)
        } else {
            Self::Unknown(name)
        };
        Some(coding)
    }

    /// The coding as the server named it.
    pub fn name(&self) -> &str {
        match self {
            Self::Gzip(name) | Self::Deflate(name) | Self::Unknown(name) => name,
        }
    }

    /// At most `cap` bytes of `raw` decoded, and the error that stopped the decoding
    /// early, if one did (what was decoded before it is kept, as the client keeps it).
    /// `None` for a coding the crawler does not decode.
    pub fn decode(&self, raw: &[u8], cap: usize) -> Option<(Vec<u8>, Option<std::io::Error>)> {
        let limit = u64::try_from(cap).unwrap_or(u64::MAX);
        let mut decoded = Vec::new();
        let result = match self {
            Self::Unknown(_) => return None,
            // No bytes are no content in any coding, as the client reads an empty body
            // in `gzip` (a server's empty page or robots.txt, not a stream cut short).
            _ if raw.is_empty() => Ok(0),
            Self::Gzip(_) => gunzip(raw, cap, &mut decoded).map(|()| decoded.len()),
            Self::Deflate(_) if has_zlib_header(raw) => flate2::read::ZlibDecoder::new(raw)
                .take(limit)
                .read_to_end(&mut decoded),
            Self::Deflate(_) => flate2::read::DeflateDecoder::new(raw)
                .take(limit)
                .read_to_end(&mut decoded),
        };
        Some((decoded, result.err()))
    }
}

/// How a gzip member starts.
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Decompresses every member of gzip `raw` into `out`, up to `cap` bytes in all: a file
/// written in parts (`gzip -c part >> sitemap.gz`, a block compressor) is a series of
/// members (RFC 1952), which `zcat` reads as one text. Bytes after the last member that
/// start none (a server's zero padding, a newline a script printed after its compressed
/// output) are ignored, as `gzip` and browsers ignore them; a `raw` that starts no member
/// at all is an error. On an error, what was decompressed before it is in `out`.
pub fn gunzip(raw: &[u8], cap: usize, out: &mut Vec<u8>) -> std::io::Result<()> {
    let mut rest = raw;
    loop {
        let room = u64::try_from(cap.saturating_sub(out.len())).unwrap_or(u64::MAX);
        let mut member = flate2::bufread::GzDecoder::new(rest);
        (&mut member).take(room).read_to_end(out)?;
        rest = member.into_inner();
        if !rest.starts_with(&GZIP_MAGIC) || out.len() >= cap {
            return Ok(());
        }
    }
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
    use std::io::Write;

    use reqwest::header::HeaderValue;

    use super::*;

    fn coded(value: &str) -> Option<Coding> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_ENCODING, HeaderValue::from_str(value).unwrap());
        Coding::left_on(&headers)
    }

    #[test]
    fn gzip_in_any_spelling_is_decoded_and_held_to_the_cap() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&[b'a'; 10_000]).unwrap();
        let gz = gz.finish().unwrap();
        for name in ["x-gzip", "GZIP", "X-Gzip"] {
            let coding = coded(name).unwrap();
            assert_eq!(coding, Coding::Gzip(name.to_owned()));
            let (whole, error) = coding.decode(&gz, 1 << 20).unwrap();
            assert_eq!((whole.len(), error.is_none()), (10_000, true));
            let (cut, _) = coding.decode(&gz, 100).unwrap();
            assert_eq!(cut.len(), 100);
            let (empty, error) = coding.decode(&[], 100).unwrap();
            assert_eq!((empty.len(), error.is_none()), (0, true));
        }
    }

    #[test]
    fn gzip_members_are_read_and_the_bytes_after_them_ignored() {
        let gzip = |text: &[u8]| {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(text).unwrap();
            gz.finish().unwrap()
        };
        let coding = coded("x-gzip").unwrap();
        let members = [gzip(b"ab"), gzip(b"cd"), b"\n\0\0".to_vec()].concat();
        let (text, error) = coding.decode(&members, 100).unwrap();
        assert_eq!((text.as_slice(), error.is_none()), (&b"abcd"[..], true));
        let (plain, error) = coding.decode(b"<title>x</title>", 100).unwrap();
        assert_eq!((plain.len(), error.is_some()), (0, true), "not gzip at all");
        let whole = gzip(b"abcd");
        let (cut, error) = coding.decode(&whole[..whole.len() - 4], 100).unwrap();
        assert_eq!(
            (cut.as_slice(), error.is_some()),
            (&b"abcd"[..], true),
            "its end cut off"
        );
    }

    #[test]
    fn identity_is_no_coding_and_others_are_not_decoded() {
        assert_eq!(coded("identity"), None);
        assert_eq!(coded(""), None);
        for name in ["compress", "zstd", "gzip, br"] {
            let coding = coded(name).unwrap();
            assert_eq!(coding, Coding::Unknown(name.to_owned()));
            assert!(coding.decode(b"abc", 10).is_none());
        }
    }
}
