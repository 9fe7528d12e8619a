//! Opening a results database so that nothing done through the connection can change it.
//!
//! Three locks, because each alone has a gap:
//!
//! - the file is opened read-only: SQLite refuses every write to it, whatever the SQL;
//! - `PRAGMA query_only` refuses writes anywhere else too (temporary tables, `VACUUM`);
//! - `ATTACH` is forbidden (no databases may be attached), because a statement can turn
//!   `query_only` off again and then `VACUUM INTO 'file'` would write a new file.

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::ConnectOptions;

use super::error::{Doing, QueryError};

/// Tables every pipecrawl database has; enough for `export`.
pub const CRAWL_TABLES: &[&str] = &["pages", "links", "frontier"];

/// Tables the questions read: the crawl's, and those migration 0002 adds.
pub const QUERY_TABLES: &[&str] = &[
    "pages",
    "links",
    "frontier",
    "inlinks",
    "anchors",
    "anchors_fts",
    "pages_fts",
];

/// Opens `path` read-only and checks that it holds the tables in `needs`.
pub async fn open(path: &Path, needs: &[&'static str]) -> Result<SqliteConnection, QueryError> {
    if !path.exists() {
        return Err(QueryError::Missing {
            path: path.to_owned(),
        });
    }
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .pragma("query_only", "ON")
        // Each question is a fresh process with an empty page cache: reading the file
        // through a memory map serves pages from the OS cache without a system call each,
        // several times faster for questions that look up thousands of rows.
        .pragma("mmap_size", "2147418112")
        // A slow question is the user's to judge; a log line about it is noise on stderr.
        .disable_statement_logging()
        // A crawl writing the same file holds its lock only while committing a batch.
        .busy_timeout(Duration::from_secs(10))
        .connect()
        .await
        .map_err(|source| QueryError::from_open(path.to_owned(), "opening the database", source))?;
    forbid_attach(&mut conn).await?;
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_schema WHERE type = 'table'")
            .fetch_all(&mut conn)
            .await
            .map_err(|source| {
                QueryError::from_open(path.to_owned(), "reading the database schema", source)
            })?;
    if let Some(&table) = needs.iter().find(|t| !tables.iter().any(|have| have == *t)) {
        return Err(if CRAWL_TABLES.contains(&table) {
            QueryError::NotPipecrawl {
                path: path.to_owned(),
                table,
            }
        } else {
            QueryError::Outdated {
                path: path.to_owned(),
                table,
            }
        });
    }
    Ok(conn)
}

/// Sets SQLite's limit on attached databases to zero, which also stops `VACUUM INTO` (it
/// attaches its output file). `sqlx` has no setting for this limit; it is one C call.
async fn forbid_attach(conn: &mut SqliteConnection) -> Result<(), QueryError> {
    let mut handle = conn
        .lock_handle()
        .await
        .doing("setting up the read-only connection")?;
    let db = handle.as_raw_handle().as_ptr();
    // SAFETY: `db` is the open connection's handle, locked by `handle` so that no other
    // thread uses it during the call; `sqlite3_limit` only sets a number on it.
    unsafe {
        libsqlite3_sys::sqlite3_limit(db, libsqlite3_sys::SQLITE_LIMIT_ATTACHED, 0);
    }
    Ok(())
}
