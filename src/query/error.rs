//! What can keep a question from being answered, each with what to do about it.

use std::path::PathBuf;

/// SQLite's primary result codes that change what we tell the user.
const SQLITE_READONLY: i32 = 8;
const SQLITE_NOTADB: i32 = 26;

/// SQLite's own words are kept as `message`s: they say what went wrong in the SQL or the
/// file, and `sqlx`'s wrapping would only repeat them.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("there is no database at {path}: give the file a crawl wrote (`storage.database` in its config)")]
    Missing { path: PathBuf },

    #[error("{path} is not a SQLite database ({message})")]
    NotSqlite { path: PathBuf, message: String },

    #[error("{path} is not a pipecrawl database: it has no `{table}` table")]
    NotPipecrawl { path: PathBuf, table: &'static str },

    #[error(
        "{path} was written by an older pipecrawl and has no `{table}` table: run \
         `pipecrawl crawl` with its config once to bring the schema up to date (with nothing \
         left to crawl, it stops right after)"
    )]
    Outdated { path: PathBuf, table: &'static str },

    #[error(
        "`query sql` only reads: the statement would change the database, so it was refused \
         and nothing changed (SQLite: {message})"
    )]
    WriteRefused { message: String },

    #[error("`query sql` reads this database only: ATTACH (and VACUUM INTO, which attaches its output) is not allowed")]
    AttachRefused,

    #[error("the SQL failed: {message}")]
    Sql { message: String },

    #[error("{url} was not crawled: no page in the database has that URL")]
    NotCrawled { url: String },

    #[error("nothing to search for: give one or more words")]
    NoSearchWords,

    #[error("database error while {doing}: {message}")]
    Database {
        doing: &'static str,
        message: String,
    },

    #[error("cannot write the output")]
    Output(#[from] std::io::Error),

    #[error("cannot write {path}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl QueryError {
    /// A failed statement of the user's, or one of ours fed by user input: a refused
    /// write is told apart from a mistake in the SQL.
    pub(crate) fn from_sql(error: sqlx::Error) -> Self {
        let message = message(&error);
        if primary_code(&error) == Some(SQLITE_READONLY) {
            Self::WriteRefused { message }
        } else if message.starts_with("too many attached databases") {
            // The limit `open` sets to zero: this was an ATTACH.
            Self::AttachRefused
        } else {
            Self::Sql { message }
        }
    }

    /// A failure reading a file as a database: "not a database" is the file's fault, the
    /// rest (locked, unreadable) is reported as it is.
    pub(crate) fn from_open(path: PathBuf, doing: &'static str, error: sqlx::Error) -> Self {
        let message = message(&error);
        if primary_code(&error) == Some(SQLITE_NOTADB) {
            Self::NotSqlite { path, message }
        } else {
            Self::Database { doing, message }
        }
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

/// SQLite's message for a database error, else `sqlx`'s.
fn message(error: &sqlx::Error) -> String {
    error
        .as_database_error()
        .map_or_else(|| error.to_string(), |e| e.message().to_owned())
}

/// SQLite reports extended codes (e.g. 264 for a read-only WAL); the low byte is the
/// primary code.
fn primary_code(error: &sqlx::Error) -> Option<i32> {
    let code = error.as_database_error()?.code()?;
    code.parse::<i32>().ok().map(|c| c & 0xff)
}
