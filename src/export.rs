//! `pipecrawl export`: the `pages` and `links` tables in full, as CSV or JSON Lines files,
//! for tools that do not read SQLite or PostgreSQL.
//!
//! SQLite writes the lines itself (`json_object`, or CSV quoting in SQL) and hands them
//! over in chunks of [`CHUNK_ROWS`], fewer where their lines could pass [`CHUNK_BYTES`]:
//! rows cross from sqlx's SQLite thread one chunk at a time instead of one row at a time,
//! which is what made a row-by-row export slow.
//! PostgreSQL's rows arrive over the network without that thread, so they are written
//! one at a time by the query CLI's own CSV and JSON Lines writers, which spell every
//! value as SQLite's SQL does. Memory stays flat however large the database: one chunk
//! (or row) and a write buffer. Both files are read in one transaction, so they agree
//! with each other even while a crawl writes; each is written under a temporary name and
//! both are renamed when both are complete, so a file with the final name is never half
//! written and never paired with an earlier export's; a signal that ends the process
//! removes the temporary files through [`Partials`]. One export at a time writes into a
//! directory (see [`lock_dir`]).

use std::borrow::Cow;
use std::fs::{self, File, TryLockError};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use sqlx::sqlite::SqliteConnection;

use crate::plural::Count;
use crate::query::dialect::Dialect;
use crate::query::open::{self, Needs};
use crate::query::output::{self, Format};
use crate::query::reader::{Reader, Statement};
use crate::query::QueryError;

/// The most rows SQLite formats and hands over at once.
const CHUNK_ROWS: i64 = 10_000;

/// The most text a chunk's lines may come to, in bytes. A hostile page's rows are far
/// wider than the usual: a title or anchor text of 4,096 control characters is a JSON
/// line of 24 KB, and 10,000 such links made one chunk of 246 MB, which SQLite, sqlx and
/// the export each held a copy of (1 GB of memory). A chunk takes fewer rows where
/// theirs could pass this, so an export needs a few times this whatever its rows hold
/// (or one row's worth, where a single row is wider).
const CHUNK_BYTES: i64 = 4 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// RFC 4180 with a header row: `pages.csv`, `links.csv`. NULL is an empty field, an
    /// empty text `""`.
    Csv,
    /// One JSON object per line: `pages.jsonl`, `links.jsonl`.
    Jsonl,
}

impl ExportFormat {
    fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Jsonl => "jsonl",
        }
    }

    /// The query CLI's format that writes the same lines.
    fn output(self) -> Format {
        match self {
            Self::Csv => Format::Csv,
            Self::Jsonl => Format::Jsonl,
        }
    }

    /// What ends a line: RFC 4180 asks CRLF of CSV.
    fn newline(self) -> &'static str {
        match self {
            Self::Csv => "\r\n",
            Self::Jsonl => "\n",
        }
    }

    /// The most bytes one stored byte of text can become in a line: JSON writes a
    /// control character as `\u0001`, CSV a quote as two.
    fn widening(self) -> i64 {
        match self {
            Self::Csv => 2,
            Self::Jsonl => 6,
        }
    }

    /// An SQL expression making one row of `columns` into one line of the format.
    fn line(self, columns: &[Column]) -> String {
        match self {
            Self::Csv => columns
                .iter()
                .map(|column| {
                    let c = identifier(&column.name);
                    // RFC 4180: quote a field holding a separator, quote or line break;
                    // and an empty text, told apart from NULL as the query CLI does.
                    let text = format!(
                        "CASE WHEN {c} IS NULL THEN ''
                              WHEN {c} = '' THEN '\"\"'
                              WHEN instr({c}, ',') OR instr({c}, '\"') OR instr({c}, char(10))
                                   OR instr({c}, char(13))
                              THEN '\"' || replace({c}, '\"', '\"\"') || '\"'
                              ELSE {c} END"
                    );
                    if column.integer {
                        // Digits and a sign never need quoting: skip the checks. Only for
                        // what is stored as an integer: SQLite keeps another program's
                        // text in an INTEGER column as it was given, and written bare a
                        // comma in it shifted every later field of its line.
                        return format!("CASE typeof({c}) WHEN 'integer' THEN {c} ELSE {text} END");
                    }
                    text
                })
                .collect::<Vec<_>>()
                .join(" || ',' || "),
            Self::Jsonl => format!(
                "json_object({})",
                columns
                    .iter()
                    .map(|column| {
                        let c = identifier(&column.name);
                        let name = column.name.replace('\'', "''");
                        if column.integer {
                            return format!("'{name}', {c}");
                        }
                        // JSON cannot hold a BLOB, which another program may have stored
                        // in a text column (Python's sqlite3 binds `bytes` as one), and
                        // one refused the whole export: its bytes are written as text,
                        // as CSV writes them. On text the cast changes nothing.
                        format!("'{name}', CAST({c} AS TEXT)")
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// A column of an exported table.
struct Column {
    name: String,
    /// Declared INTEGER: its values are numbers or NULL (as the writer stores them).
    integer: bool,
}

/// An SQL expression for the bytes of one row of `columns` that its line may widen
/// ([`ExportFormat::widening`]): its text and blobs, whose lengths SQLite finds in the
/// row's header without reading them. Integers are counted in [`line_overhead`].
fn stored_size(columns: &[Column]) -> String {
    columns
        .iter()
        .map(|column| {
            let c = identifier(&column.name);
            if column.integer {
                format!("iif(typeof({c}) = 'integer', 0, coalesce(octet_length({c}), 0))")
            } else {
                format!("coalesce(octet_length({c}), 0)")
            }
        })
        .collect::<Vec<_>>()
        .join(" + ")
}

/// The most bytes a line of `columns` holds besides its text: names, quotes, separators,
/// integers of up to 20 characters.
fn line_overhead(columns: &[Column]) -> i64 {
    columns
        .iter()
        .map(|column| i64::try_from(column.name.len()).unwrap_or(i64::MAX / 2) + 24)
        .fold(2, i64::saturating_add)
}

/// `name` quoted as an SQL identifier.
fn identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A file written and how many rows it holds.
#[derive(Debug, Clone)]
pub struct Exported {
    pub path: PathBuf,
    pub rows: u64,
    /// Some text was not UTF-8 (pipecrawl writes none, another program may have), which
    /// JSON cannot hold: its invalid bytes were written as U+FFFD. CSV keeps them as
    /// stored.
    pub not_utf8: bool,
}

/// What writing one file came to.
struct Written {
    rows: u64,
    not_utf8: bool,
}

/// The hidden files an export is writing, and the directories it made for them, shared
/// with whatever ends the process early (a signal handler): only the export knows their
/// names, and a partial file may be gigabytes that nobody would look for. The writer may
/// be blocked in a write (a slow or full disk), so the remover cannot wait for it to
/// stop; instead creating, renaming and removing a partial file all take one lock, and
/// the remover keeps it until the process has ended, so no file appears or is renamed
/// after it has looked.
#[derive(Debug, Clone, Default)]
pub struct Partials(Arc<Mutex<Made>>);

/// What an export made and has not finished.
#[derive(Debug, Default)]
struct Made {
    files: Vec<PathBuf>,
    /// Deepest first. Removed only while empty: one a finished export wrote into holds
    /// its files, and is kept.
    dirs: Vec<PathBuf>,
}

/// The lock on [`Partials`] after they were removed: the process is to end holding it.
#[must_use = "held until the process ends, it keeps an export from making more files"]
pub struct Abandoned<'a> {
    _held: MutexGuard<'a, Made>,
}

impl Partials {
    fn lock(&self) -> MutexGuard<'_, Made> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Notes `dirs` (deepest first), which the export made, for removal.
    fn made_dirs(&self, dirs: Vec<PathBuf>) {
        self.lock().dirs = dirs;
    }

    /// A new partial file at `path`, noted for removal.
    fn create(&self, path: &Path) -> Result<BufWriter<File>, QueryError> {
        let mut made = self.lock();
        let writer = create(path)?;
        made.files.push(path.to_owned());
        Ok(writer)
    }

    /// Gives the complete partial file `from` its final name `to`.
    fn finish(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        let mut made = self.lock();
        fs::rename(from, to)?;
        made.files.retain(|f| f != from);
        Ok(())
    }

    /// Removes every partial file, then the directories made for them if empty; returns
    /// the lock, held.
    fn remove_all(&self) -> MutexGuard<'_, Made> {
        let mut made = self.lock();
        for file in made.files.drain(..) {
            let _ = fs::remove_file(file);
        }
        remove_dirs(&made.dirs);
        made.dirs.clear();
        made
    }

    /// Removes every partial file, of no use to anyone after a failure.
    fn discard_all(&self) {
        drop(self.remove_all());
    }

    /// Removes every partial file, and keeps the export from making or renaming any
    /// while what it returns is held.
    pub fn abandon(&self) -> Abandoned<'_> {
        Abandoned {
            _held: self.remove_all(),
        }
    }
}

/// Removes `dirs` (deepest first) where empty.
fn remove_dirs(dirs: &[PathBuf]) {
    for dir in dirs {
        let _ = fs::remove_dir(dir);
    }
}

/// The tables exported, in the order written, each in full and in id order.
const TABLES: [&str; 2] = ["pages", "links"];

/// Writes every row of `pages` and `links` in `database` (a SQLite file's path or a
/// `postgres://` URL) to files in `dir` (created if needed), noting the files it is
/// writing in `partials`. One that fails leaves nothing it made, files or directories.
pub async fn export(
    database: &str,
    format: ExportFormat,
    dir: &Path,
    partials: &Partials,
) -> Result<Vec<Exported>, QueryError> {
    let mut reader = open::open(database, Needs::Crawl).await?;
    let exported = async {
        let made = make_dirs(dir)?;
        // Another export's lock: the directories are that one's now, made at once by both.
        let _only_export = lock_dir(dir)?;
        partials.made_dirs(made);
        let exported = write_all(&mut reader, database, format, dir, partials).await;
        match exported {
            Ok(_) => remove_stale_partials(dir),
            // Half an export is of no use to anyone, and on a full disk it holds the space
            // the user needs back.
            Err(_) => partials.discard_all(),
        }
        exported.map_err(|error| out_of_room(error, dir, format))
    }
    .await;
    reader.close().await;
    exported
}

/// `error`, naming what holds the room where it is a full disk and `dir` holds an earlier
/// export in `format`: that export stays until this one is complete, so the disk needs
/// room for both, and once this one's partial files are removed the disk shows room
/// again, which "No space left on device" alone leaves a puzzle.
fn out_of_room(error: QueryError, dir: &Path, format: ExportFormat) -> QueryError {
    let QueryError::File { path, source } = error else {
        return error;
    };
    if source.kind() != std::io::ErrorKind::StorageFull {
        return QueryError::File { path, source };
    }
    let earlier: Vec<(String, u64)> = TABLES
        .iter()
        .filter_map(|table| {
            let earlier = final_path(dir, table, format);
            let size = fs::metadata(&earlier).ok()?.len();
            Some((earlier.file_name()?.to_string_lossy().into_owned(), size))
        })
        .collect();
    if earlier.is_empty() {
        return QueryError::File { path, source };
    }
    let (names, sizes): (Vec<String>, Vec<u64>) = earlier.into_iter().unzip();
    QueryError::NoRoomBesideEarlierExport {
        path,
        source,
        earlier: names.join(", "),
        size: Count(sizes.iter().sum(), "byte").to_string(),
    }
}

/// Makes `dir` and those of its parents that are missing; returns those it made, deepest
/// first, so that a failed export removes them and nothing that was there before.
fn make_dirs(dir: &Path) -> Result<Vec<PathBuf>, QueryError> {
    let failed = |source| QueryError::File {
        path: dir.to_owned(),
        source,
    };
    let missing: Vec<&Path> = dir
        .ancestors()
        .take_while(|path| !path.as_os_str().is_empty() && !path.exists())
        .collect();
    let mut made = Vec::new();
    for path in missing.into_iter().rev() {
        match fs::create_dir(path) {
            Ok(()) => made.insert(0, path.to_owned()),
            // Made meanwhile by another export: not this one's.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && path.is_dir() => {}
            Err(source) => {
                remove_dirs(&made);
                return Err(failed(source));
            }
        }
    }
    if !dir.is_dir() {
        // "File exists" would read as a refusal to overwrite.
        return Err(failed(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            "it is a file, not a directory",
        )));
    }
    Ok(made)
}

/// Writes both tables to their partial files in `dir`, and gives them their names once
/// both are complete.
async fn write_all(
    reader: &mut Reader,
    database: &str,
    format: ExportFormat,
    dir: &Path,
    partials: &Partials,
) -> Result<Vec<Exported>, QueryError> {
    if reader.dialect() == Dialect::Sqlite {
        // Reading in order needs no memory map, and without one the process's resident
        // memory shows what it really holds: a row and a write buffer.
        reader.execute("PRAGMA mmap_size = 0").await?;
        // Each chunk's lines are ordered in a table of SQLite's (`write_table`), no
        // larger than the chunk this process holds anyway: in a temporary file it was
        // written to disk for nothing, and an export to a disk with room failed when
        // the temporary directory had none.
        reader.execute("PRAGMA temp_store = MEMORY").await?;
        // PostgreSQL's connection is in a read-only transaction from the start.
        reader.execute("BEGIN").await?;
    }
    let tables = write_tables(reader, database, format, dir, partials).await?;
    // Only now, both tables complete, does either replace an earlier export's file:
    // renaming each as it was done left a failure on the second (a full disk, a signal)
    // with this export's pages beside the last one's links.
    tables
        .into_iter()
        .map(
            |(partial, exported)| match partials.finish(&partial, &exported.path) {
                Ok(()) => Ok(exported),
                Err(source) => Err(file_error(&exported.path)(source)),
            },
        )
        .collect()
}

/// Keeps any other export out of `dir` until what it returns is dropped. Two at once
/// wrote the same partial files, each over the other's, and renamed them in turn: one
/// said it wrote its rows, the other failed, and the files held a third thing, the rows
/// of both. The lock is on the directory itself, so none is left behind in it, and the
/// system drops it with the process, however it ends.
fn lock_dir(dir: &Path) -> Result<File, QueryError> {
    let failed = |source| QueryError::File {
        path: dir.to_owned(),
        source,
    };
    let handle = File::open(dir).map_err(failed)?;
    match handle.try_lock() {
        Ok(()) => Ok(handle),
        Err(TryLockError::WouldBlock) => Err(QueryError::ExportInProgress {
            dir: dir.to_owned(),
        }),
        Err(TryLockError::Error(source)) => Err(failed(source)),
    }
}

/// Removes the partial files an export killed in `dir` left (SIGKILL, the OOM killer, a
/// power cut), of any format, once an export there is complete: hidden and as large as
/// what it had written, they were replaced only by an export in the same format. Under
/// [`lock_dir`]'s lock, no other export is writing them. One that cannot be removed is
/// left, as the user left it.
fn remove_stale_partials(dir: &Path) {
    use clap::ValueEnum;
    for format in ExportFormat::value_variants() {
        for table in TABLES {
            let _ = fs::remove_file(partial_path(dir, table, *format));
        }
    }
}

/// Where `table` is written in `format` until the export is complete.
fn partial_path(dir: &Path, table: &str, format: ExportFormat) -> PathBuf {
    dir.join(format!(".{table}.{}.part", format.extension()))
}

/// Where `table` is exported in `format`, once complete.
fn final_path(dir: &Path, table: &str, format: ExportFormat) -> PathBuf {
    dir.join(format!("{table}.{}", format.extension()))
}

/// Writes every table of `database` (read through `reader`) to its partial file in `dir`;
/// returns each partial file's path and what it holds under its final name.
async fn write_tables(
    reader: &mut Reader,
    database: &str,
    format: ExportFormat,
    dir: &Path,
    partials: &Partials,
) -> Result<Vec<(PathBuf, Exported)>, QueryError> {
    let mut tables = Vec::new();
    for table in TABLES {
        let path = final_path(dir, table, format);
        let partial = partial_path(dir, table, format);
        let writer = partials.create(&partial)?;
        let Written { rows, not_utf8 } = match reader.sqlite() {
            Some(conn) => write_table(conn, database, table, format, writer, &partial).await?,
            None => stream_table(reader, table, format, writer, &partial).await?,
        };
        tables.push((
            partial,
            Exported {
                path,
                rows,
                not_utf8,
            },
        ));
    }
    Ok(tables)
}

/// Writes every row of `table`, in id order, to `writer` (the file at `path`) one row at
/// a time; returns how many. PostgreSQL's text is always UTF-8.
async fn stream_table(
    reader: &mut Reader,
    table: &str,
    format: ExportFormat,
    mut writer: BufWriter<File>,
    path: &Path,
) -> Result<Written, QueryError> {
    let all = Statement::new(format!("SELECT * FROM {} ORDER BY id", identifier(table)));
    let streamed = {
        let mut sink = output::sink(format.output(), &mut writer, 0);
        output::stream(reader, &all, sink.as_mut(), None)
            .await
            .map_err(|e| match e {
                QueryError::Output(source) => file_error(path)(source),
                other => other,
            })?
    };
    close(writer, path)?;
    Ok(Written {
        rows: streamed.rows,
        not_utf8: false,
    })
}

/// Writes every row of `table` in the SQLite file `database`, in id order, to `writer`
/// (the file at `path`); returns how many. Lines are read as bytes: SQLite does not check
/// that TEXT is UTF-8, and one value that is not must not stop an export.
async fn write_table(
    conn: &mut SqliteConnection,
    database: &str,
    table: &str,
    format: ExportFormat,
    mut writer: BufWriter<File>,
    path: &Path,
) -> Result<Written, QueryError> {
    let file_error = file_error(path);
    let read_error =
        |doing| move |source| QueryError::from_file(database.to_owned(), doing, source);
    // Every column, whatever later migrations add.
    let columns: Vec<Column> = sqlx::query_as::<_, (String, String)>(
        "SELECT name, type FROM pragma_table_info(?) ORDER BY cid",
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await
    .map_err(read_error("reading the table's columns"))?
    .into_iter()
    .map(|(name, declared)| Column {
        name,
        integer: declared.eq_ignore_ascii_case("INTEGER"),
    })
    .collect();
    let newline = format.newline();
    let chunk = format!(
        "SELECT max(id), count(*), group_concat(line, '{newline}' ORDER BY id)
         FROM (SELECT id, {} AS line FROM {} WHERE id > ? ORDER BY id LIMIT ?)",
        format.line(&columns),
        identifier(table),
    );
    let mut sizes = Sizes {
        sql: format!(
            "SELECT count(*), coalesce(sum(size), 0)
             FROM (SELECT {} AS size FROM {} WHERE id > ? ORDER BY id LIMIT ?)",
            stored_size(&columns),
            identifier(table),
        ),
        widening: format.widening(),
        overhead: line_overhead(&columns),
        rows: CHUNK_ROWS,
    };
    if format == ExportFormat::Csv {
        let header: Vec<String> = columns.iter().map(|c| csv_field(&c.name)).collect();
        write!(writer, "{}{newline}", header.join(",")).map_err(file_error)?;
    }
    let mut rows = 0;
    let mut not_utf8 = false;
    let mut after = i64::MIN;
    loop {
        let take = sizes
            .rows_after(conn, after)
            .await
            .map_err(read_error("measuring rows to export"))?;
        if take == 0 {
            break;
        }
        let (last, count, lines): (Option<i64>, i64, Option<Vec<u8>>) =
            sqlx::query_as(sqlx::AssertSqlSafe(chunk.as_str()))
                .bind(after)
                .bind(take)
                .fetch_one(&mut *conn)
                .await
                .map_err(read_error("reading rows to export"))?;
        let (Some(last), Some(lines)) = (last, lines) else {
            break;
        };
        if format == ExportFormat::Jsonl {
            // SQLite's JSON leaves Unicode's line breaks raw, as serde's does (see `output`).
            let text = String::from_utf8_lossy(&lines);
            not_utf8 |= matches!(text, Cow::Owned(_));
            let text = output::escape_unicode_line_breaks(&text);
            writer.write_all(text.as_bytes()).map_err(file_error)?;
        } else {
            writer.write_all(&lines).map_err(file_error)?;
        }
        writer.write_all(newline.as_bytes()).map_err(file_error)?;
        rows += u64::try_from(count).unwrap_or(0);
        after = last;
    }
    close(writer, path)?;
    Ok(Written { rows, not_utf8 })
}

/// What sizes a table's chunks to [`CHUNK_BYTES`].
struct Sizes {
    /// The count and [`stored_size`] of the rows after an id, at most as many as asked.
    sql: String,
    widening: i64,
    overhead: i64,
    /// How many rows the next chunk tries first: as many as the last one took, since
    /// neighbouring rows tend to be alike, and each try reads every row it counts.
    rows: i64,
}

impl Sizes {
    /// How many of the rows after `after` the next chunk takes: at most [`CHUNK_ROWS`],
    /// as many as keep their lines within [`CHUNK_BYTES`], one at least; 0 when none are
    /// left. The export's transaction keeps the rows as measured until they are read.
    async fn rows_after(&mut self, conn: &mut SqliteConnection, after: i64) -> sqlx::Result<i64> {
        loop {
            let (count, stored): (i64, i64) =
                sqlx::query_as(sqlx::AssertSqlSafe(self.sql.as_str()))
                    .bind(after)
                    .bind(self.rows)
                    .fetch_one(&mut *conn)
                    .await?;
            let most = stored
                .saturating_mul(self.widening)
                .saturating_add(count.saturating_mul(self.overhead));
            if most <= CHUNK_BYTES || count <= 1 {
                if most <= CHUNK_BYTES / 2 && count == self.rows {
                    self.rows = (self.rows * 2).min(CHUNK_ROWS);
                }
                return Ok(count);
            }
            // As many as would fit were the rows alike, and at most half as many as
            // before, so that a few tries find the number however the sizes vary.
            self.rows = (count.saturating_mul(CHUNK_BYTES) / most)
                .min(count / 2)
                .max(1);
        }
    }
}

/// What turns an I/O error into a failure to write `path`.
fn file_error(path: &Path) -> impl Fn(std::io::Error) -> QueryError + Copy + '_ {
    move |source| QueryError::File {
        path: path.to_owned(),
        source,
    }
}

/// A new file at `path`, with a buffer that makes many short lines few writes.
fn create(path: &Path) -> Result<BufWriter<File>, QueryError> {
    let file = File::create(path).map_err(file_error(path))?;
    Ok(BufWriter::with_capacity(1 << 20, file))
}

/// Flushes the file at `path` and waits until it is on disk, so that renaming it names a
/// complete file.
fn close(writer: BufWriter<File>, path: &Path) -> Result<(), QueryError> {
    let file_error = file_error(path);
    writer
        .into_inner()
        .map_err(|e| file_error(e.into_error()))?
        .sync_all()
        .map_err(file_error)
}

/// A column name as a CSV header field.
fn csv_field(name: &str) -> String {
    if name.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", name.replace('"', "\"\""))
    } else {
        name.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const TITLE: &str = "a, \"b\"\nc\r\nd, é";
    const ANCHOR: &str = "one, \"two\"";

    /// A database made by the store (so with every migration), holding one page and one
    /// link whose texts need quoting in both formats.
    async fn awkward_database(dir: &Path) -> PathBuf {
        let db = dir.join("crawl.db");
        let database = db.display().to_string();
        crate::store::Store::open(&database)
            .await
            .expect("create the database");
        let pool = open(&db).await;
        let rows = [
            (
                "INSERT INTO frontier (id, url, host, depth, priority)
                 VALUES (1, 'http://a/', ?, 0, 0)",
                "a",
            ),
            (
                "INSERT INTO pages (id, url, depth, fetched_at, changed_at, status, title)
                 VALUES (1, 'http://a/', 0, '2025-01-01T00:00:00.000Z',
                         '2025-01-01T00:00:00.000Z', 200, ?)",
                TITLE,
            ),
            (
                "INSERT INTO links (source_id, target_url, anchor_text)
                 VALUES (1, 'http://a/\"q\"', ?)",
                ANCHOR,
            ),
        ];
        for (sql, value) in rows {
            sqlx::query(sql)
                .bind(value)
                .execute(&pool)
                .await
                .expect("insert a row");
        }
        pool.close().await;
        db
    }

    async fn open(db: &Path) -> sqlx::SqlitePool {
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(db);
        sqlx::SqlitePool::connect_with(options)
            .await
            .expect("open the database")
    }

    /// Runs `sql` on the database at `db`, as another program would.
    async fn change(db: &Path, sql: &'static str) {
        let pool = open(db).await;
        sqlx::query(sql).execute(&pool).await.expect(sql);
        pool.close().await;
    }

    /// An awkward database changed by `sql`, as another program would, exported as
    /// `format`: the temp dir holding both, the export's directory and what it wrote.
    async fn export_changed(
        sql: &'static str,
        format: ExportFormat,
    ) -> (tempfile::TempDir, PathBuf, Vec<Exported>) {
        let dir = tempfile::tempdir().expect("a temp dir");
        let db = awkward_database(dir.path()).await;
        change(&db, sql).await;
        let out = dir.path().join("out");
        let files = export_to(&db.display().to_string(), format, &out)
            .await
            .expect("export");
        (dir, out, files)
    }

    /// [`export`], with nothing watching its partial files.
    async fn export_to(
        database: &str,
        format: ExportFormat,
        dir: &Path,
    ) -> Result<Vec<Exported>, QueryError> {
        export(database, format, dir, &Partials::default()).await
    }

    fn csv_rows(path: &Path) -> Vec<HashMap<String, String>> {
        let mut reader = csv::Reader::from_path(path).expect("open the CSV");
        let header = reader.headers().expect("a header").clone();
        reader
            .records()
            .map(|r| {
                let r = r.expect("a CSV record");
                header
                    .iter()
                    .map(str::to_owned)
                    .zip(r.iter().map(str::to_owned))
                    .collect()
            })
            .collect()
    }

    fn json_rows(path: &Path) -> Vec<serde_json::Value> {
        fs::read_to_string(path)
            .expect("read the JSON Lines")
            .lines()
            .map(|line| serde_json::from_str(line).expect("a JSON object"))
            .collect()
    }

    #[tokio::test]
    async fn separators_quotes_and_line_breaks_survive_both_formats() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let db = awkward_database(dir.path()).await;

        let csv_dir = dir.path().join("csv");
        let files = export_to(&db.display().to_string(), ExportFormat::Csv, &csv_dir)
            .await
            .expect("export");
        assert_eq!(files.iter().map(|f| f.rows).collect::<Vec<_>>(), [1, 1]);
        let pages = csv_rows(&csv_dir.join("pages.csv"));
        assert_eq!(pages[0]["title"], TITLE);
        assert_eq!(pages[0]["status"], "200");
        assert_eq!(pages[0]["etag"], "", "NULL is an empty field");
        let links = csv_rows(&csv_dir.join("links.csv"));
        assert_eq!(links[0]["anchor_text"], ANCHOR);
        assert_eq!(links[0]["target_url"], "http://a/\"q\"");

        let json_dir = dir.path().join("jsonl");
        export_to(&db.display().to_string(), ExportFormat::Jsonl, &json_dir)
            .await
            .expect("export");
        let pages = json_rows(&json_dir.join("pages.jsonl"));
        assert_eq!(pages[0]["title"], TITLE);
        assert_eq!(pages[0]["status"], 200);
        assert!(pages[0]["etag"].is_null());
        let links = json_rows(&json_dir.join("links.jsonl"));
        assert_eq!(links[0]["anchor_text"], ANCHOR);
        assert!(!json_dir.join(".links.jsonl.part").exists());
    }

    #[tokio::test]
    async fn csv_tells_an_empty_text_from_null() {
        // An image link without alt text: its anchor text is empty, its rel NULL.
        let (_dir, csv_dir, _) = export_changed(
            "INSERT INTO links (id, source_id, target_url, anchor_text) VALUES (2, 1, 'http://a/i', '')",
            ExportFormat::Csv,
        )
        .await;
        let links = fs::read_to_string(csv_dir.join("links.csv")).expect("read the CSV");
        assert!(
            links.contains("\r\n2,1,http://a/i,\"\",\r\n"),
            "an empty text quoted, NULL left empty: {links:?}"
        );
    }

    #[tokio::test]
    async fn text_that_is_not_utf8_is_exported_not_refused() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let db = awkward_database(dir.path()).await;
        // Another program's write: SQLite stores whatever bytes it is given as TEXT.
        change(&db, "UPDATE pages SET title = CAST(X'41FF2C42' AS TEXT)").await;
        let database = db.display().to_string();

        let csv_dir = dir.path().join("csv");
        let files = export_to(&database, ExportFormat::Csv, &csv_dir)
            .await
            .expect("export CSV");
        assert_eq!(files[0].rows, 1);
        assert!(!files[0].not_utf8, "CSV keeps the bytes");
        let csv = fs::read(csv_dir.join("pages.csv")).expect("read the CSV");
        assert!(
            csv.windows(6).any(|w| w == b"\"A\xff,B\""),
            "the bytes as stored, quoted"
        );

        let json_dir = dir.path().join("jsonl");
        let files = export_to(&database, ExportFormat::Jsonl, &json_dir)
            .await
            .expect("export JSON Lines");
        assert!(files[0].not_utf8, "the replacement is reported");
        assert!(!files[1].not_utf8);
        let pages = json_rows(&json_dir.join("pages.jsonl"));
        assert_eq!(pages[0]["title"], "A\u{fffd},B");
        assert_eq!(pages[0]["status"], 200);
    }

    /// SQLite's JSON leaves U+0085, U+2028 and U+2029 raw, at which Python's
    /// `splitlines()` ends a line: a title holding one split its JSON Lines object in two.
    #[tokio::test]
    async fn json_lines_escape_the_unicode_line_breaks_so_each_line_is_an_object() {
        let title = "a\u{2028}b\u{2029}c\u{85}d";
        let (_dir, json_dir, _) = export_changed(
            "UPDATE pages SET title = 'a' || char(8232) || 'b' || char(8233) || 'c' || char(133) || 'd'",
            ExportFormat::Jsonl,
        )
        .await;
        let text = fs::read_to_string(json_dir.join("pages.jsonl")).expect("read the file");
        let lines: Vec<&str> = text
            .split(['\n', '\u{85}', '\u{2028}', '\u{2029}'])
            .filter(|line| !line.is_empty())
            .collect();
        assert_eq!(lines.len(), 1, "{text:?}");
        assert_eq!(json_rows(&json_dir.join("pages.jsonl"))[0]["title"], title);
    }

    #[tokio::test]
    async fn a_blob_in_a_text_column_is_exported_to_json_lines_not_refused() {
        // Another program's write: Python's sqlite3 binds `bytes` as a BLOB.
        let (_dir, json_dir, files) = export_changed(
            "UPDATE pages SET etag = X'412C42', content_hash = X'00FF'",
            ExportFormat::Jsonl,
        )
        .await;
        assert_eq!(files[0].rows, 1);
        assert!(files[0].not_utf8, "the replacement is reported");
        let pages = json_rows(&json_dir.join("pages.jsonl"));
        assert_eq!(pages[0]["etag"], "A,B", "its bytes, as text");
        assert_eq!(pages[0]["content_hash"], "\u{0}\u{fffd}");
        assert_eq!(pages[0]["title"], TITLE);
        assert_eq!(pages[0]["status"], 200);
    }

    #[tokio::test]
    async fn text_in_an_integer_column_is_quoted_in_csv_as_other_text_is() {
        // Another program's write: SQLite keeps text in an INTEGER column as text.
        let (_dir, csv_dir, _) = export_changed(
            "UPDATE pages SET status = 'n/a, \"gone\"'",
            ExportFormat::Csv,
        )
        .await;
        let pages = csv_rows(&csv_dir.join("pages.csv"));
        assert_eq!(pages[0]["status"], "n/a, \"gone\"");
        assert_eq!(
            pages[0]["title"], TITLE,
            "the fields after it in their places"
        );
        assert_eq!(pages[0]["depth"], "0");
    }
}
