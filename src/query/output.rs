//! How answers are printed: an aligned table for people; CSV, JSON or JSON Lines for
//! programs. Rows go from the database to the writer one at a time, so an answer of any
//! size prints in flat memory (a table looks ahead a bounded number of rows to size its
//! columns).

use std::borrow::Cow;
use std::io::{self, Write};

use super::error::QueryError;
use super::reader::{Reader, Statement};
use super::table::Table;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Columns aligned for reading.
    Table,
    /// RFC 4180, with a header row; NULL is an empty field (`""` alone on its row), an
    /// empty text `""`.
    Csv,
    /// One array of objects.
    Json,
    /// One object per line.
    Jsonl,
}

/// One value as the database holds it; text and blobs borrow from their row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'r> {
    Null,
    /// PostgreSQL's booleans (SQLite has none: its comparisons give 0 or 1).
    Bool(bool),
    Int(i64),
    Real(f64),
    Text(&'r str),
    /// Text that is not UTF-8 (SQLite does not check; pipecrawl writes none): CSV gets
    /// its bytes as stored, JSON and tables U+FFFD for the invalid ones, as `export` does.
    NotUtf8(&'r [u8]),
    Blob(&'r [u8]),
}

impl Cell<'_> {
    pub fn is_number(&self) -> bool {
        matches!(self, Self::Int(_) | Self::Real(_))
    }

    /// The value as plain text: empty for NULL, blobs in hex.
    pub fn write_plain(&self, out: &mut String) {
        use std::fmt::Write as _;
        // Writing into a String cannot fail.
        let _ = match self {
            Self::Null => Ok(()),
            Self::Bool(b) => write!(out, "{b}"),
            Self::Int(n) => write!(out, "{n}"),
            Self::Real(x) => write!(out, "{x}"),
            Self::Text(s) => out.write_str(s),
            Self::NotUtf8(bytes) => out.write_str(&String::from_utf8_lossy(bytes)),
            Self::Blob(bytes) => bytes.iter().try_for_each(|b| write!(out, "{b:02x}")),
        };
    }
}

/// Where rows go, whatever the format.
pub trait Sink {
    /// Called once, before any row.
    fn columns(&mut self, names: &[String]) -> io::Result<()>;
    fn row(&mut self, cells: &[Cell<'_>]) -> io::Result<()>;
    /// Called once, after the last row.
    fn finish(&mut self) -> io::Result<()>;
    /// Whether text that is not UTF-8 was written with U+FFFD for its invalid bytes.
    fn replaced_not_utf8(&self) -> bool {
        false
    }
}

/// What to tell the user when [`Sink::replaced_not_utf8`]: a value was changed.
pub const NOT_UTF8: &str = "some text in the database was not UTF-8, which JSON cannot hold: \
                            its invalid bytes are written as U+FFFD (CSV keeps them as stored)";

/// A sink writing `format` to `out`. `group`: in a table, how many leading columns are
/// printed only when they change, so rows read as groups (other formats repeat them).
pub fn sink<'w>(format: Format, out: &'w mut dyn Write, group: usize) -> Box<dyn Sink + 'w> {
    match format {
        Format::Table => Box::new(Table::new(out, group)),
        Format::Csv => Box::new(Csv {
            out,
            buf: Vec::new(),
            text: String::new(),
        }),
        Format::Json => Box::new(Json {
            out,
            keys: Vec::new(),
            lines: false,
            rows: 0,
            replaced: false,
        }),
        Format::Jsonl => Box::new(Json {
            out,
            keys: Vec::new(),
            lines: true,
            rows: 0,
            replaced: false,
        }),
    }
}

/// How many rows a question printed, and whether its limit cut off more.
#[derive(Debug, Default, Clone, Copy)]
pub struct Streamed {
    pub rows: u64,
    pub more: bool,
}

/// Which rows of a query's answer are shown: a test SQL cannot make the same way on both
/// databases (see [`super::fold`]).
pub type Keep<'k> = &'k dyn Fn(&[Cell<'_>]) -> bool;

/// Runs `query` and writes its rows to `sink`, at most `limit` of them (the query should
/// ask for one more, so that `more` can tell whether the limit cut the answer short).
pub async fn stream(
    reader: &mut Reader,
    query: &Statement,
    sink: &mut dyn Sink,
    limit: Option<u64>,
) -> Result<Streamed, QueryError> {
    stream_kept(reader, query, sink, limit, &|_| true).await
}

/// [`stream`] of the rows `keep` keeps: `limit` counts those, so a query read through it
/// asks for all its rows.
pub async fn stream_kept(
    reader: &mut Reader,
    query: &Statement,
    sink: &mut dyn Sink,
    limit: Option<u64>,
    keep: Keep<'_>,
) -> Result<Streamed, QueryError> {
    let mut streamed = Streamed::default();
    let mut started = false;
    reader
        .each_row(query, |names, cells| {
            if !started {
                sink.columns(names)?;
                started = true;
            }
            if !keep(cells) {
                return Ok(true);
            }
            if limit.is_some_and(|limit| streamed.rows >= limit) {
                streamed.more = true;
                return Ok(false);
            }
            sink.row(cells)?;
            streamed.rows += 1;
            Ok(true)
        })
        .await?;
    if !started {
        // No rows, but CSV still wants its header and a table its column names: preparing
        // the statement again names them (`describe` would too, at the cost of analysing
        // the whole query plan).
        sink.columns(&reader.column_names(query).await?)?;
    }
    sink.finish()?;
    Ok(streamed)
}

struct Csv<'w> {
    out: &'w mut dyn Write,
    /// The record being written: bytes, as text that is not UTF-8 is written as stored.
    buf: Vec<u8>,
    /// One value as text, before it joins the record.
    text: String,
}

impl Csv<'_> {
    fn record<'a>(&mut self, fields: impl ExactSizeIterator<Item = Field<'a>>) -> io::Result<()> {
        // A lone NULL left empty is an empty line, which Python's `csv.DictReader`, pandas
        // and the `csv` crate skip, losing the row: it is quoted as an empty text is, as
        // Python's `csv` writes it (PostgreSQL's COPY reads it back as empty text).
        let lone = fields.len() == 1;
        self.buf.clear();
        for (i, field) in fields.enumerate() {
            if i > 0 {
                self.buf.push(b',');
            }
            let start = self.buf.len();
            match field {
                Field::Name(name) => self.buf.extend_from_slice(name.as_bytes()),
                Field::Cell(Cell::NotUtf8(bytes)) => self.buf.extend_from_slice(bytes),
                Field::Cell(cell) => {
                    self.text.clear();
                    cell.write_plain(&mut self.text);
                    self.buf.extend_from_slice(self.text.as_bytes());
                }
            }
            // RFC 4180: quote a field holding a separator, quote or line break. An empty
            // text is quoted too, so that NULL (left empty) is told apart from it, as
            // PostgreSQL's COPY writes and reads them (the sqlite3 shell writes them so,
            // but its `.import` reads both as empty text). A `lone` NULL is quoted too
            // (see above).
            let null = matches!(field, Field::Cell(Cell::Null));
            let value = &self.buf[start..];
            if value
                .iter()
                .any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
                || (value.is_empty() && (!null || lone))
            {
                let mut quoted = Vec::with_capacity(value.len() + 2);
                quoted.push(b'"');
                for &b in value {
                    if b == b'"' {
                        quoted.push(b'"');
                    }
                    quoted.push(b);
                }
                quoted.push(b'"');
                self.buf.truncate(start);
                self.buf.extend_from_slice(&quoted);
            }
        }
        self.buf.extend_from_slice(b"\r\n");
        self.out.write_all(&self.buf)
    }
}

enum Field<'a> {
    Name(&'a str),
    Cell(&'a Cell<'a>),
}

impl Sink for Csv<'_> {
    fn columns(&mut self, names: &[String]) -> io::Result<()> {
        self.record(names.iter().map(|n| Field::Name(n)))
    }

    fn row(&mut self, cells: &[Cell<'_>]) -> io::Result<()> {
        self.record(cells.iter().map(Field::Cell))
    }

    fn finish(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// JSON: an array of objects, or (`lines`) JSON Lines; keys are the column names, values
/// keep their types (NULL is `null`, blobs are hex strings).
struct Json<'w> {
    out: &'w mut dyn Write,
    /// Each column's `"name":`, escaped once rather than on every row.
    keys: Vec<Vec<u8>>,
    lines: bool,
    rows: u64,
    /// See [`Sink::replaced_not_utf8`].
    replaced: bool,
}

impl Sink for Json<'_> {
    fn columns(&mut self, names: &[String]) -> io::Result<()> {
        self.keys = names
            .iter()
            .map(|name| {
                let mut key = Vec::new();
                write_json_text(&mut key, name)?;
                key.push(b':');
                Ok(key)
            })
            .collect::<io::Result<_>>()?;
        if !self.lines {
            self.out.write_all(b"[")?;
        }
        Ok(())
    }

    fn row(&mut self, cells: &[Cell<'_>]) -> io::Result<()> {
        let out = &mut *self.out;
        match (self.lines, self.rows) {
            (true, _) => {}
            (false, 0) => out.write_all(b"\n")?,
            (false, _) => out.write_all(b",\n")?,
        }
        out.write_all(b"{")?;
        for (i, (key, cell)) in self.keys.iter().zip(cells).enumerate() {
            if i > 0 {
                out.write_all(b",")?;
            }
            out.write_all(key)?;
            match cell {
                Cell::Null => out.write_all(b"null")?,
                Cell::Bool(b) => write!(out, "{b}")?,
                Cell::Int(n) => write!(out, "{n}")?,
                Cell::Real(x) => serde_json::to_writer(&mut *out, x)?,
                Cell::Text(s) => write_json_text(out, s)?,
                Cell::NotUtf8(bytes) => {
                    self.replaced = true;
                    write_json_text(out, &String::from_utf8_lossy(bytes))?;
                }
                Cell::Blob(_) => {
                    let mut hex = String::new();
                    cell.write_plain(&mut hex);
                    serde_json::to_writer(&mut *out, &hex)?;
                }
            }
        }
        out.write_all(b"}")?;
        if self.lines {
            out.write_all(b"\n")?;
        }
        self.rows += 1;
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        if !self.lines {
            self.out.write_all(b"\n]\n")?;
        }
        self.out.flush()
    }

    fn replaced_not_utf8(&self) -> bool {
        self.replaced
    }
}

/// Line breaks JSON leaves raw in a string, at which Python's `str.splitlines()` and
/// other readers following Unicode end a line.
const UNICODE_LINE_BREAKS: [(char, &str); 3] = [
    ('\u{85}', "\\u0085"),
    ('\u{2028}', "\\u2028"),
    ('\u{2029}', "\\u2029"),
];

/// `text` as a JSON string, its [`UNICODE_LINE_BREAKS`] escaped too: raw, one split a
/// JSON Lines object in two for such a reader, neither half JSON.
fn write_json_text(out: &mut dyn Write, text: &str) -> io::Result<()> {
    // Most text holds none: written straight out, as before the escape.
    if !holds_unicode_line_breaks(text) {
        return Ok(serde_json::to_writer(out, text)?);
    }
    let json = serde_json::to_string(text)?;
    out.write_all(escape_unicode_line_breaks(&json).as_bytes())
}

/// Whether `text` holds any of [`UNICODE_LINE_BREAKS`]. Each is looked for alone, which a
/// search for a single character does at memory speed.
fn holds_unicode_line_breaks(text: &str) -> bool {
    UNICODE_LINE_BREAKS.iter().any(|(c, _)| text.contains(*c))
}

/// `json` with its [`UNICODE_LINE_BREAKS`] escaped (borrowed as it was when it holds
/// none): JSON text has them only inside strings, where the escape stands for the
/// character.
pub(crate) fn escape_unicode_line_breaks(json: &str) -> Cow<'_, str> {
    if !holds_unicode_line_breaks(json) {
        return Cow::Borrowed(json);
    }
    let mut json = json.to_owned();
    for (c, escaped) in UNICODE_LINE_BREAKS {
        json = json.replace(c, escaped);
    }
    Cow::Owned(json)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(format: Format, rows: &[Vec<Cell<'_>>]) -> String {
        let mut out = Vec::new();
        {
            let mut sink = sink(format, &mut out, 0);
            sink.columns(&["name".to_owned(), "n".to_owned()])
                .expect("write to memory");
            for row in rows {
                sink.row(row).expect("write to memory");
            }
            sink.finish().expect("write to memory");
        }
        String::from_utf8(out).expect("UTF-8 output")
    }

    #[test]
    fn csv_quotes_fields_with_separators_quotes_and_line_breaks() {
        let text = render(
            Format::Csv,
            &[
                vec![Cell::Text("a, \"b\"\nc"), Cell::Int(1)],
                vec![Cell::Null, Cell::Real(0.5)],
            ],
        );
        assert_eq!(text, "name,n\r\n\"a, \"\"b\"\"\nc\",1\r\n,0.5\r\n");
    }

    #[test]
    fn csv_tells_an_empty_text_from_null_as_postgresql_does() {
        let text = render(Format::Csv, &[vec![Cell::Text(""), Cell::Null]]);
        assert_eq!(text, "name,n\r\n\"\",\r\n");
    }

    /// A one-column answer's NULL was an empty line, which Python's `csv.DictReader`,
    /// pandas and the `csv` crate skip: `query sql "SELECT title FROM pages"` read back
    /// short of every page without a title.
    #[test]
    fn csv_writes_a_lone_null_as_a_field_not_an_empty_line() {
        let mut out = Vec::new();
        {
            let mut sink = sink(Format::Csv, &mut out, 0);
            sink.columns(&["title".to_owned()])
                .expect("write to memory");
            for cell in [Cell::Text("a"), Cell::Null, Cell::Text("b")] {
                sink.row(&[cell]).expect("write to memory");
            }
            sink.finish().expect("write to memory");
        }
        let mut reader = ::csv::Reader::from_reader(out.as_slice());
        let titles: Vec<String> = reader
            .records()
            .map(|r| r.expect("a CSV record")[0].to_owned())
            .collect();
        assert_eq!(titles, ["a", "", "b"]);
    }

    #[test]
    fn json_keeps_types_and_an_empty_answer_is_an_empty_array() {
        let text = render(
            Format::Json,
            &[
                vec![Cell::Text("x\"y"), Cell::Null],
                vec![Cell::Blob(b"\x01\xff"), Cell::Int(-3)],
            ],
        );
        assert_eq!(
            text,
            "[\n{\"name\":\"x\\\"y\",\"n\":null},\n{\"name\":\"01ff\",\"n\":-3}\n]\n"
        );
        assert_eq!(render(Format::Json, &[]), "[\n]\n");
    }

    /// Python's `str.splitlines()` (and other readers that follow Unicode) also break
    /// lines at U+0085, U+2028 and U+2029, which JSON leaves raw in a string: a page title
    /// holding one split its JSON Lines object in two, neither of them JSON.
    #[test]
    fn jsonl_escapes_the_unicode_line_breaks_so_each_line_is_an_object() {
        let title = "a\u{2028}b\u{2029}c\u{85}d";
        let text = render(Format::Jsonl, &[vec![Cell::Text(title), Cell::Int(1)]]);
        let lines: Vec<&str> = text
            .split(['\n', '\u{85}', '\u{2028}', '\u{2029}'])
            .filter(|line| !line.is_empty())
            .collect();
        assert_eq!(lines.len(), 1, "{text:?}");
        let row: serde_json::Value = serde_json::from_str(lines[0]).expect("a JSON object");
        assert_eq!(row["name"], title);
    }

    #[test]
    fn jsonl_writes_one_object_per_line() {
        let text = render(Format::Jsonl, &[vec![Cell::Text("a"), Cell::Real(1.5)]]);
        assert_eq!(text, "{\"name\":\"a\",\"n\":1.5}\n");
    }
}
