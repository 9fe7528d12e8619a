//! `seeds_file`: seeds one per line in a text file, as Nutch (`bin/nutch inject`),
//! Heritrix (`seeds.txt`) and StormCrawler take them, for lists too long to write into
//! the config. Read a line at a time: a line's bytes are all it holds at once. A gzipped
//! file is read as the text it holds.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use flate2::bufread::MultiGzDecoder;
use url::Url;

use crate::urlnorm;

/// A line longer than this is refused without being held: no seed is near it (URLs stop
/// at [`urlnorm::MAX_URL_BYTES`]), and a file with no line ends (a binary file named by
/// mistake) would otherwise be read whole into one line.
const MAX_LINE_BYTES: u64 = 64 * 1024;

/// Lines that are no seeds named one by one, at most; the rest are counted. A file of a
/// million lines in the wrong format would otherwise print a million problems.
const NAMED_BAD_LINES: usize = 20;

/// A line that is no seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// 1-based, as editors and `sed -n 12p` count.
    pub number: usize,
    pub why: String,
}

/// What a seeds file holds.
#[derive(Debug, Default)]
pub struct SeedLines {
    pub seeds: Vec<Url>,
    /// The first [`NAMED_BAD_LINES`] lines that are no seeds.
    pub bad: Vec<BadLine>,
    /// How many more there are.
    pub more_bad: u64,
}

impl SeedLines {
    fn refuse(&mut self, number: usize, why: String) {
        if self.bad.len() < NAMED_BAD_LINES {
            self.bad.push(BadLine { number, why });
        } else {
            self.more_bad += 1;
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SeedsFileError {
    #[error("cannot be read: {0}")]
    Io(#[from] std::io::Error),
    /// A gzipped file that ends before its stream does (copied or downloaded in part),
    /// of which flate2 says only "incomplete deflate stream".
    #[error("is cut short: it ends within its gzip stream ({0}); copy the file whole")]
    CutShort(std::io::Error),
    /// A device or a pipe: `/dev/zero` never ends, and a pipe is empty when a SIGHUP reads
    /// it again.
    #[error("is not a file (a device or a pipe)")]
    NotAFile,
    /// A directory, as Nutch's `bin/nutch inject crawldb urls/` takes one: the first few
    /// files in it, to name one of.
    #[error("is a directory, where `seeds_file` names one file of seeds{}", name_one_of(.0))]
    Directory(Option<Vec<String>>),
    /// Told by its byte order mark, once: line by line, each would be "not UTF-8" or a
    /// URL of NULs.
    #[error("{SAVED_AS_UTF16}")]
    Utf16,
}

/// What is said of a text file saved as UTF-16, told by its byte order mark: a seeds
/// file, or the config.
pub const SAVED_AS_UTF16: &str = "is UTF-16 (what Windows Notepad saves as \"Unicode\"): \
    save it as UTF-8 (Notepad: Save As, Encoding: UTF-8; or `iconv -f UTF-16 -t UTF-8`)";

/// Whether `start`, a file's first bytes, is a UTF-16 byte order mark.
pub fn is_utf16(start: &[u8]) -> bool {
    start.starts_with(&[0xff, 0xfe]) || start.starts_with(&[0xfe, 0xff])
}

/// The files a directory named as `seeds_file` holds, the first three by name: links to
/// files too, hidden ones (`.gitkeep`, `.DS_Store`) not. None when it cannot be listed:
/// it is a directory all the same.
fn files_in(dir: &Path) -> Option<Vec<String>> {
    let entries = std::fs::read_dir(dir).ok()?;
    let mut files: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|entry| !entry.file_name().as_encoded_bytes().starts_with(b"."))
        .map(|entry| entry.path())
        .filter(|path| path.is_file())
        .map(|path| path.display().to_string())
        .collect();
    files.sort();
    files.truncate(3);
    Some(files)
}

/// What to write instead of a directory: one of the files in it, if any.
fn name_one_of(files: &Option<Vec<String>>) -> String {
    match files.as_deref().map(<[String]>::split_first) {
        None => ", and this one cannot be listed".to_owned(),
        Some(None) => ", and this one holds none".to_owned(),
        Some(Some((first, rest))) => {
            let others: String = rest.iter().map(|f| format!(", or {f:?}")).collect();
            format!(": write `seeds_file = {first:?}`{others}")
        }
    }
}

/// Reads the seeds in `path`: one URL a line, each checked as a `seeds` entry is. Blank
/// lines, and those starting with `#` (comments), are skipped; the whitespace around a
/// URL and a byte order mark are no part of it, nor are double quotes around it (an Excel
/// cell), what follows a tab (Nutch's `nutch.score=10` metadata) or a `#` comment after
/// it. A tab cannot be part of a URL:
/// the URL parser drops it and would join that text to the URL's path.
pub fn read(path: &Path) -> Result<SeedLines, SeedsFileError> {
    // Before opening it: opening a pipe waits for a writer.
    let meta = std::fs::metadata(path)?;
    if meta.is_dir() {
        return Err(SeedsFileError::Directory(files_in(path)));
    }
    if !meta.is_file() {
        return Err(SeedsFileError::NotAFile);
    }
    let mut reader = open(path)?;
    let start = reader.fill_buf()?;
    if is_utf16(start) {
        return Err(SeedsFileError::Utf16);
    }
    let mut lines = SeedLines::default();
    let mut line = Vec::new();
    let mut number = 0;
    loop {
        line.clear();
        let read = (&mut reader)
            .take(MAX_LINE_BYTES)
            .read_until(b'\n', &mut line)
            .map_err(cut_short_or_io)?;
        if read == 0 {
            return Ok(lines);
        }
        number += 1;
        if line.last() != Some(&b'\n') && read as u64 == MAX_LINE_BYTES {
            skip_rest_of_line(&mut reader).map_err(cut_short_or_io)?;
            lines.refuse(
                number,
                format!("is longer than {MAX_LINE_BYTES} bytes: no URL is"),
            );
            continue;
        }
        let Ok(text) = std::str::from_utf8(&line) else {
            lines.refuse(number, "is not UTF-8 (save the file so)".to_owned());
            continue;
        };
        let text = unquoted(urlnorm::trimmed(text));
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        if let Some(why) =
            crate::surt::seeds_line_problem(text).or_else(|| crate::surt::seed_problem(text))
        {
            lines.refuse(number, why);
            continue;
        }
        let url = match url_of(text) {
            Ok(url) => url,
            Err(why) => {
                lines.refuse(number, why);
                continue;
            }
        };
        match urlnorm::normalize_str(url) {
            Ok(seed) => lines.seeds.push(seed),
            Err(e) => lines.refuse(number, format!("{:?} {e}", urlnorm::hide_password(url))),
        }
    }
}

/// `e`, met reading the file's lines: an early end is a gzip stream's (a plain file's
/// lines end at its end), told as the file being cut short.
fn cut_short_or_io(e: std::io::Error) -> SeedsFileError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        SeedsFileError::CutShort(e)
    } else {
        SeedsFileError::Io(e)
    }
}

/// `line` without the double quotes around its first cell, as Excel copies a cell that
/// holds a quote, a tab or a line break into tab-separated text (and some such exports
/// quote every cell): a URL holds no `"`, so they are no part of it, nor is a next cell,
/// after a tab. Comma-separated lines are no seeds file's: a comma may be in a URL.
fn unquoted(line: &str) -> &str {
    let Some((cell, rest)) = line.strip_prefix('"').and_then(|q| q.split_once('"')) else {
        return line;
    };
    if rest.is_empty() || rest.starts_with('\t') {
        urlnorm::trimmed(cell)
    } else {
        line
    }
}

/// The URL `line` (trimmed, no comment) starts with. It ends at the first whitespace,
/// which the URL parser would take into its path (`/a # home` was `/a%20`), or drop (a
/// carriage return, joining two URLs of a file with old Mac line ends). What follows a
/// tab is Nutch's metadata, what follows spaces a `#` comment; anything else is refused.
fn url_of(line: &str) -> Result<&str, String> {
    let Some(end) = line.find(|c: char| c.is_whitespace()) else {
        return Ok(line);
    };
    let (url, rest) = line.split_at(end);
    let after_spaces = rest.trim_start_matches(' ');
    if rest.starts_with('\t') || after_spaces.starts_with(['#', '\t']) {
        return Ok(url);
    }
    Err(format!(
        "{url:?} is followed by {rest:?}: a URL has no spaces or line breaks in it \
         (write a space as %20), and what follows one on its line can only be a `#` \
         comment"
    ))
}

/// The file at `path`, decompressed as it is read when it is gzipped: seed lists of a
/// million lines are kept so (`seeds.txt.gz`), and Nutch and Heritrix read them so. Told
/// by its first bytes, whatever its name.
fn open(path: &Path) -> std::io::Result<Box<dyn BufRead>> {
    let mut file = BufReader::new(File::open(path)?);
    if file.fill_buf()?.starts_with(&crate::coding::GZIP_MAGIC) {
        return Ok(Box::new(BufReader::new(MultiGzDecoder::new(file))));
    }
    Ok(Box::new(file))
}

/// Reads on to the end of the line (or the file), in bounded pieces.
fn skip_rest_of_line(reader: &mut impl BufRead) -> std::io::Result<()> {
    loop {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            return Ok(());
        }
        match buffer.iter().position(|&b| b == b'\n') {
            Some(end) => {
                reader.consume(end + 1);
                return Ok(());
            }
            None => {
                let all = buffer.len();
                reader.consume(all);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_text(bytes: &[u8]) -> SeedLines {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("seeds.txt");
        std::fs::write(&path, bytes).expect("write the seeds file");
        read(&path).expect("a readable file")
    }

    #[test]
    fn a_line_with_no_end_is_refused_and_the_next_read() {
        let mut bytes = vec![b'a'; 3 * MAX_LINE_BYTES as usize];
        bytes.extend_from_slice(b"\nhttp://a.example/\n\xff\n");
        let lines = read_text(&bytes);
        assert_eq!(
            lines.seeds,
            [Url::parse("http://a.example/").expect("a URL")]
        );
        let numbers: Vec<usize> = lines.bad.iter().map(|b| b.number).collect();
        assert_eq!(numbers, [1, 3], "{:?}", lines.bad);
    }

    /// Heritrix's seeds.txt adds to the scope with a `+` line (a SURT prefix, or a URL whose
    /// directory is one): read as a seed, it was "not a URL: relative URL without a
    /// base", which said nothing of what the line is or where its rule goes.
    #[test]
    fn a_heritrix_scope_line_is_refused_with_the_include_rule_it_means() {
        let lines = read_text(
            b"http://example.org/\n+http://(org,example,)/docs/\n+http://example.org/a/b.html\n",
        );
        assert_eq!(lines.seeds.len(), 1);
        let whys: Vec<&str> = lines.bad.iter().map(|b| b.why.as_str()).collect();
        assert_eq!(whys.len(), 2, "{whys:?}");
        for (why, meant) in whys.iter().zip([
            r"'^https?://example\.org/docs/'",
            r"'^https?://example\.org/a/'",
        ]) {
            assert!(
                why.contains("Heritrix") && why.contains(meant) && why.contains("scope.include"),
                "{why}"
            );
        }
    }

    #[test]
    fn past_the_first_bad_lines_they_are_counted() {
        let lines = read_text("nope\n".repeat(NAMED_BAD_LINES + 5).as_bytes());
        assert_eq!(lines.bad.len(), NAMED_BAD_LINES);
        assert_eq!(lines.more_bad, 5);
    }

    /// Nutch's `bin/nutch inject crawldb urls/` takes a directory of seed files: named
    /// here, it was "not a file", with no word of what to name instead.
    #[test]
    fn a_directory_is_refused_naming_the_files_in_it() {
        let dir = tempfile::tempdir().expect("a temp dir");
        std::fs::write(dir.path().join(".gitkeep"), "").expect("a hidden file");
        std::fs::write(dir.path().join("seed.txt"), "https://example.com/\n").expect("a seed");
        let said = read(dir.path()).err().map(|e| e.to_string());
        let file = dir.path().join("seed.txt").display().to_string();
        assert!(
            said.as_deref().is_some_and(|said| said
                .starts_with("is a directory, where `seeds_file` names one file")
                && said.contains(&format!("`seeds_file = {file:?}`"))),
            "{said:?}"
        );
    }

    /// A gzipped seeds file cut short (copied or downloaded in part) was refused as
    /// "cannot be read: incomplete deflate stream", which says not that the file is cut,
    /// nor what to do.
    #[test]
    fn a_gzipped_file_cut_short_is_refused_as_cut_short() {
        use std::io::Write as _;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        for i in 0..1000 {
            writeln!(gz, "http://a.example/{i}").expect("gzip in memory");
        }
        let whole = gz.finish().expect("gzip in memory");
        for cut in [whole.len() / 2, whole.len() - 3] {
            let dir = tempfile::tempdir().expect("a temp dir");
            let path = dir.path().join("seeds.txt.gz");
            std::fs::write(&path, &whole[..cut]).expect("write the seeds file");
            let said = read(&path).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(said.starts_with("is cut short"), "{cut}: {said}");
        }
    }
}
