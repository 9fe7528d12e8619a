//! What can keep a question from being answered, each with what to do about it.

use std::path::PathBuf;

use super::dialect::Dialect;
use crate::error::sqlite_code_of;
use libsqlite3_sys::SQLITE_IOERR_GETTEMPPATH;

/// PostgreSQL's SQLSTATE for a write in a read-only transaction.
const PG_READ_ONLY: &str = "25006";

/// SQLite's primary result codes that change what we tell the user.
pub(super) const SQLITE_READONLY: i32 = 8;
const SQLITE_CORRUPT: i32 = 11;
const SQLITE_FULL: i32 = 13;
const SQLITE_NOTADB: i32 = 26;

/// The database's own words are kept as `message`s: they say what went wrong in the SQL
/// or the file, and `sqlx`'s wrapping would only repeat them. `database` is a SQLite
/// file's path or a PostgreSQL URL without its password.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(
        "there is no database at {database}{}: {}",
        looked_in(.looked_at.as_deref()),
        .foreign.as_deref().unwrap_or("give the file a crawl wrote (`storage.database` in its config)")
    )]
    Missing {
        database: String,
        /// The file looked for, when `database` is a relative path.
        looked_at: Option<PathBuf>,
        /// Why `database` names no file here, if it is a Windows path or holds a `~` or
        /// a variable (as `--config` is told): `--db 'C:\crawls\a.db'` was said missing,
        /// as if mistyped.
        foreign: Option<String>,
    },

    /// Worded as the config's check of `storage.database` words it.
    #[error(
        "`{database}` names no file: write the path after `sqlite://` (sqlite://crawl.db), \
         or the path alone"
    )]
    NoFileNamed { database: String },

    /// Worded as the config's check of `storage.database` words it.
    #[error("`{database}` is not a SQLite URL pipecrawl can read: {reason}")]
    NotSqliteUrl { database: String, reason: String },

    /// Not named: it may hold a password.
    #[error("the database given {}", crate::store::KEYWORD_VALUE)]
    KeywordValue,

    #[error(
        "`{database}` names an in-memory database, which is new and empty for each process \
         and so holds no crawl: name the crawl's file (storage.database)"
    )]
    InMemory { database: String },

    #[error("cannot read {database}")]
    Unreadable {
        database: String,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "cannot read {database}: its write-ahead log {} is beside it (a crawl is writing \
         it, or one ended without closing it), and reading it then takes {}, which this user \
         cannot make in that directory: ask as a user who may write there, or once a crawl \
         has closed the database",
        .wal.display(),
        .shm.display()
    )]
    NoSharedMemory {
        database: String,
        wal: PathBuf,
        shm: PathBuf,
    },

    #[error(
        "cannot read {database}: its write-ahead log {} is beside it (a crawl is writing \
         it, or one ended without closing it), and reading it then takes {}, for which the \
         disk has no room: make room there (32 KiB is enough)",
        .wal.display(),
        .shm.display()
    )]
    NoRoomForSharedMemory {
        database: String,
        wal: PathBuf,
        shm: PathBuf,
    },

    #[error(
        "{database} is not a SQLite database ({message}){}",
        config_named(database)
    )]
    NotSqlite { database: String, message: String },

    #[error("{database} is damaged ({message}): restore it from a copy")]
    Damaged { database: String, message: String },

    /// Questions and exports only read the database, so a full disk is the one SQLite
    /// spills large sorts to: its own "database or disk is full" sent users to the
    /// database's disk, or the export's.
    #[error(
        "no room for SQLite's temporary files{} ({message}: a sort larger than memory \
         spills there; the database is only read): free space there, or name a directory \
         with room in SQLITE_TMPDIR",
        temp_dir_named(.dir.as_deref())
    )]
    NoTempRoom {
        dir: Option<PathBuf>,
        message: String,
    },

    #[error(
        "no directory SQLite may write its temporary files in ({message}: a sort larger \
         than memory spills there; the database is only read): {tried} are each missing or \
         read-only (a container's root filesystem may be): name a writable directory in \
         SQLITE_TMPDIR"
    )]
    NoTempDir { tried: String, message: String },

    #[error(
        "{database} holds no crawl yet: it has none of pipecrawl's tables (a crawl starting \
         on it creates them first: ask again once it has started)"
    )]
    NoCrawlYet { database: String },

    #[error(
        "{database} has none of pipecrawl's tables in {}; schema {there:?} holds a crawl: \
         name it in the URL (?options=-csearch_path%3D{}) or first in the role's search_path",
        .here.as_ref().map_or_else(|| "the connection's schema (its search_path names none that exists)".to_owned(), |here| format!("schema {here:?}")),
        percent_encoding::utf8_percent_encode(.there, percent_encoding::NON_ALPHANUMERIC)
    )]
    CrawlInSchema {
        database: String,
        /// The connection's schema, if its search_path names one that exists.
        here: Option<String>,
        /// The schema that holds a crawl.
        there: String,
    },

    #[error("{database} is not a pipecrawl database: it has no `{table}` table")]
    NotPipecrawl {
        database: String,
        table: &'static str,
    },

    #[error(
        "{database} was written by an older pipecrawl and has no `{table}` table: run \
         `pipecrawl crawl` with its config once to bring the schema up to date (with nothing \
         left to crawl, it stops right after)"
    )]
    Outdated {
        database: String,
        table: &'static str,
    },

    #[error(
        "{database} was written by a newer pipecrawl (its {backend} schema is at migration \
         {version}, this one knows up to {known}): query it with a pipecrawl that knows \
         {backend} migration {version} (`pipecrawl --version` says which each build knows); \
         `pipecrawl export` writes its tables as they are"
    )]
    Newer {
        database: String,
        /// `SQLite` or `PostgreSQL`, whose migrations are numbered apart.
        backend: &'static str,
        version: i64,
        known: i64,
    },

    #[error(
        "{database} was written by an older pipecrawl, whose text columns sort by the \
         server's locale: run `pipecrawl crawl` with its config once to bring the schema up \
         to date (with nothing left to crawl, it stops right after)"
    )]
    OutdatedSchema { database: String },

    #[error(
        "`query sql` only reads: the statement would change the database, so it was refused \
         and nothing changed ({engine}: {message})"
    )]
    WriteRefused {
        engine: &'static str,
        message: String,
    },

    #[error("`query sql` runs one statement per call: run each on its own ({engine}: {message})")]
    ManyStatements {
        engine: &'static str,
        message: String,
    },

    /// JSON keeps one value per key (`jq` and Python's `json` the last): printed, the
    /// first column's values were lost without a word.
    #[error(
        "columns {first} and {second} are both named `{name}`, and a JSON object keeps one \
         value per name: name them apart with AS (`SELECT s.url AS page, t.url AS target`), \
         or ask for CSV or a table, which keep both"
    )]
    RepeatedColumn {
        name: String,
        first: usize,
        second: usize,
    },

    #[error(
        "the SQL holds a placeholder (`?`, `?1`, `:name` or `$1`), and `query sql` has no \
         values to give: write the values into it (`WHERE url = 'https://example.com/'`)"
    )]
    Parameters,

    #[error(
        "column `{column}` is of PostgreSQL type {type_name}, which `query` does not print: \
         cast it to text (`{column}::text`)"
    )]
    Unprintable { column: String, type_name: String },

    #[error("`query sql` reads this database only: ATTACH (and VACUUM INTO, which attaches its output) is not allowed")]
    AttachRefused,

    #[error("the SQL failed: {message}")]
    Sql { message: String },

    #[error(
        "{database} records no run to begin `--since last-run` at: none has run on it yet, or \
         it was last written before the `runs` table (a crawl on it brings it up to date); \
         give a time instead"
    )]
    NoRunRecorded { database: String },

    /// Named as the user gave it (`http://bücher.de/`), the stored form (`xn--bcher-kva.de`)
    /// beside it when that differs: alone, it read as another URL than theirs.
    #[error(
        "{given} was not crawled: no page in the database has that URL{}",
        stored_as(given, url)
    )]
    NotCrawled { given: String, url: String },

    /// A URL as a browser's address bar shows it: looked up as typed, it matched no row
    /// and the question answered nothing, or that the page was not crawled.
    #[error("`{given}` {why}")]
    NoScheme {
        given: String,
        why: crate::urlnorm::UrlError,
    },

    #[error("nothing to search for: give one or more words")]
    NoSearchWords,

    #[error(
        "nothing to search for: PostgreSQL's English search skips every word given (stop \
         words such as \"the\", \"and\", \"who\"; punctuation): give a word it keeps"
    )]
    OnlyStopWords,

    #[error("database error while {doing}: {message}")]
    Database {
        doing: &'static str,
        message: String,
    },

    #[error("cannot write the output")]
    Output(#[from] std::io::Error),

    #[error(
        "another `pipecrawl export` is writing into {dir}: wait for it to end, or give \
         another --out (two at once would write the same files, each over the other's)"
    )]
    ExportInProgress { dir: PathBuf },

    #[error(
        "cannot write {path}: {source}; the earlier export there ({earlier}: {size}) is kept \
         until this one is complete, so the disk needs room for both: remove it first, or \
         give another --out"
    )]
    NoRoomBesideEarlierExport {
        path: PathBuf,
        source: std::io::Error,
        /// The earlier export's files, by name.
        earlier: String,
        size: String,
    },

    #[error("cannot write {path}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl QueryError {
    /// [`QueryError::NotCrawled`] of `given`, as the user wrote it (trimmed, its password
    /// hidden), looked up as `url`.
    pub(crate) fn not_crawled(given: &str, url: String) -> Self {
        Self::NotCrawled {
            given: crate::urlnorm::hide_password(given.trim()),
            url,
        }
    }

    /// A failed statement of the user's, or one of ours fed by user input, on the
    /// database `database` names: a refused write is told apart from a mistake in the
    /// SQL, and damage met past the schema (which opening the file reads alone) is the
    /// file's, as at open.
    pub(crate) fn from_sql(dialect: Dialect, database: &str, error: sqlx::Error) -> Self {
        let message = message(&error);
        if dialect == Dialect::Sqlite {
            if primary_code(&error) == Some(SQLITE_CORRUPT) {
                return Self::Damaged {
                    database: database.to_owned(),
                    message,
                };
            }
            if let Some(trouble) = Self::temp_files(&error, &message) {
                return trouble;
            }
        }
        let refused = match dialect {
            Dialect::Sqlite => primary_code(&error) == Some(SQLITE_READONLY),
            Dialect::Postgres => error
                .as_database_error()
                .and_then(|e| e.code())
                .is_some_and(|code| code == PG_READ_ONLY),
        };
        if refused {
            Self::WriteRefused {
                engine: dialect.engine(),
                message,
            }
        } else if dialect == Dialect::Sqlite && message.starts_with("too many attached databases") {
            // The limit `open` sets to zero: this was an ATTACH.
            Self::AttachRefused
        } else if dialect == Dialect::Postgres
            && message.starts_with("cannot insert multiple commands")
        {
            // The server's refusal of SQL holding several statements, which SQLite's
            // reader refuses before running (`Reader::refuse_many_statements`).
            Self::ManyStatements {
                engine: dialect.engine(),
                message,
            }
        } else {
            Self::Sql { message }
        }
    }

    /// A failure reading a file as a SQLite database: "not a database" and "malformed"
    /// are the file's fault, the rest (locked) is reported as it is.
    pub(crate) fn from_file(database: String, doing: &'static str, error: sqlx::Error) -> Self {
        let message = message(&error);
        if let Some(trouble) = Self::temp_files(&error, &message) {
            return trouble;
        }
        match primary_code(&error) {
            Some(SQLITE_NOTADB) => Self::NotSqlite { database, message },
            Some(SQLITE_CORRUPT) => Self::Damaged { database, message },
            _ => Self::Database { doing, message },
        }
    }

    /// SQLite's trouble with its temporary files (a sort spilled past memory): no room
    /// for them, or no directory it may write them in.
    fn temp_files(error: &sqlx::Error, message: &str) -> Option<Self> {
        let message = message.to_owned();
        if primary_code(error) == Some(SQLITE_FULL) {
            return Some(Self::NoTempRoom {
                dir: crate::store::sqlite_temp_dir(),
                message,
            });
        }
        (sqlite_code_of(error) == Some(SQLITE_IOERR_GETTEMPPATH)).then(|| Self::NoTempDir {
            tried: crate::store::sqlite_temp_dirs_tried(),
            message,
        })
    }

    /// The reader went away (`pipecrawl query … | head`): not an error worth a message.
    pub(crate) fn is_closed_output(&self) -> bool {
        matches!(self, Self::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

/// Attaches what a question was doing to a `sqlx` error.
pub(crate) trait Doing<T> {
    fn doing(self, doing: &'static str) -> Result<T, QueryError>;
}

impl<T> Doing<T> for Result<T, sqlx::Error> {
    fn doing(self, doing: &'static str) -> Result<T, QueryError> {
        self.map_err(|error| QueryError::Database {
            doing,
            message: message(&error),
        })
    }
}

/// The database's message for a database error, else `sqlx`'s.
fn message(error: &sqlx::Error) -> String {
    error
        .as_database_error()
        .map_or_else(|| error.to_string(), |e| e.message().to_owned())
}

/// The primary code of a SQLite error, the low byte of its extended one.
pub(super) fn primary_code(error: &sqlx::Error) -> Option<i32> {
    sqlite_code_of(error).map(|c| c & 0xff)
}

/// What to write when `--db` named a crawl's config (`crawl.toml`, beside its database):
/// "not a SQLite database" alone did not point to `--config`.
fn config_named(database: &str) -> String {
    let toml = std::path::Path::new(database)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("toml"));
    if toml {
        format!(
            ": a crawl's config goes with --config (`--config {database}`), which reads the \
             database it names"
        )
    } else {
        String::new()
    }
}

fn temp_dir_named(dir: Option<&std::path::Path>) -> String {
    dir.map_or_else(String::new, |dir| format!(" in {}", dir.display()))
}

/// Where a relative path was looked for: a crawl reads it from the directory it runs in (a
/// service's WorkingDirectory), so `--config` from another directory looks elsewhere.
fn looked_in(looked_at: Option<&std::path::Path>) -> String {
    crate::config::looked_in(looked_at, ", as the crawl read it from its own")
}

/// ` (looked up as URL)`, when `url`, as the database would store it, is not spelled as
/// `given` was: none is stored, so "stored as" would say the opposite of the message.
fn stored_as(given: &str, url: &str) -> String {
    if given == url {
        String::new()
    } else {
        format!(" (looked up as {url})")
    }
}
