//! Opening a results database so that nothing done through the connection can change it.
//!
//! PostgreSQL (a `postgres://` URL): every statement runs in one `READ ONLY` transaction
//! (`REPEATABLE READ`, so that all of an answer, and both files of an export, see the same
//! moment of a crawl that writes on), and the session's default is read-only too, so a
//! statement that ends the transaction cannot begin a writable one. sqlx sends each
//! statement on its own (the extended protocol), so `COMMIT; DELETE …` is one error.
//!
//! A SQLite file, three locks, because each alone has a gap:
//!
//! - the file is opened read-only: SQLite refuses every write to it, whatever the SQL;
//! - `PRAGMA query_only` refuses writes anywhere else too (temporary tables, `VACUUM`);
//! - `ATTACH` is forbidden (no databases may be attached), because a statement can turn
//!   `query_only` off again and then `VACUUM INTO 'file'` would write a new file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::ConnectOptions;

use super::dialect::Dialect;
use super::error::{primary_code, Doing, QueryError, SQLITE_READONLY};
use super::reader::{Connection, Reader, Statement};
use crate::error::sqlite_code_of;
use crate::store;

/// Tables every pipecrawl database has; enough for `export`.
pub const CRAWL_TABLES: &[&str] = &["pages", "links", "frontier"];

/// What a caller needs of the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// The crawl's tables (`export`).
    Crawl,
    /// Those and the tables the questions read (see [`Dialect::query_tables`]).
    Questions,
    /// Those and `page_changes` (`query changes`), which a database last written before
    /// it (migration 17, PostgreSQL's 15) lacks, though it answers the other questions.
    Changes,
}

/// Opens `database` (a SQLite file's path or `sqlite:` URL, or a `postgres://` URL, as a
/// crawl takes them) read-only and checks that it holds the tables the caller `needs`.
pub async fn open(database: &str, needs: Needs) -> Result<Reader, QueryError> {
    if store::is_keyword_value(database) {
        return Err(QueryError::KeywordValue);
    }
    let (mut reader, tables, name) = if store::is_postgres(database) {
        let (reader, tables) = open_postgres(database).await?;
        (reader, tables, store::redacted(database))
    } else {
        let options = store::sqlite_options(database).map_err(|e| QueryError::NotSqliteUrl {
            database: database.to_owned(),
            reason: e.to_string(),
        })?;
        let (reader, tables) = open_sqlite(options, database).await?;
        (reader, tables, database.to_owned())
    };
    let extra = match needs {
        Needs::Crawl => &[][..],
        Needs::Questions | Needs::Changes => reader.dialect().query_tables(),
    };
    let changes: &[&str] = if needs == Needs::Changes {
        &["page_changes"]
    } else {
        &[]
    };
    let missing = CRAWL_TABLES
        .iter()
        .chain(extra)
        .chain(changes)
        .find(|t| !tables.iter().any(|have| have == *t));
    if let Some(&table) = missing {
        // An empty file, or one whose migrations have not yet made a table, is what a
        // crawl starting on a new database shows a reader for a moment.
        let no_crawl_yet = tables.iter().all(|t| t == "_sqlx_migrations");
        // Also when the connection's schema holds another program's tables: a reader's
        // role whose search_path misses the crawl's schema on a shared database.
        // (With none yet, the first missing is a crawl's table too.)
        let crawl_table = CRAWL_TABLES.contains(&table);
        let elsewhere = if crawl_table && reader.dialect() == Dialect::Postgres {
            crawl_elsewhere(&mut reader).await?
        } else {
            None
        };
        return Err(if let Some((here, there)) = elsewhere {
            QueryError::CrawlInSchema {
                database: name,
                here,
                there,
            }
        } else if no_crawl_yet {
            QueryError::NoCrawlYet { database: name }
        } else if crawl_table {
            QueryError::NotPipecrawl {
                database: name,
                table,
            }
        } else {
            QueryError::Outdated {
                database: name,
                table,
            }
        });
    }
    if needs != Needs::Crawl && tables.iter().any(|t| t == "_sqlx_migrations") {
        check_not_newer(&mut reader, database, &name).await?;
    }
    if reader.dialect() == Dialect::Postgres {
        check_byte_order(&mut reader, name).await?;
    }
    reader.found_tables(tables);
    Ok(reader)
}

/// Refuses to answer questions of a database a newer pipecrawl migrated, as `crawl`
/// refuses to write it: the questions' SQL is this build's, and read a schema it does
/// not know they failed on whatever it had changed ("no such column: title") or
/// misread it. `export` reads every column as it is, so it goes on.
async fn check_not_newer(
    reader: &mut Reader,
    database: &str,
    name: &str,
) -> Result<(), QueryError> {
    let (backend, known) = store::newest_schema(database);
    let version = reader
        .integer(&Statement::new("SELECT max(version) FROM _sqlx_migrations"))
        .await?;
    match version {
        Some(version) if version > known => Err(QueryError::Newer {
            database: name.to_owned(),
            backend,
            version,
            known,
        }),
        _ => Ok(()),
    }
}

/// Connects to PostgreSQL read-only; returns the tables of the connection's schema.
async fn open_postgres(url: &str) -> Result<(Reader, Vec<String>), QueryError> {
    let options = store::pg_tls::connect_options(url)
        .doing("reading the PostgreSQL URL")?
        .options([
            ("default_transaction_read_only", "on"),
            // A full-text query of stop words only is a NOTICE, not news for stderr.
            ("client_min_messages", "warning"),
        ])
        .application_name("pipecrawl query")
        .disable_statement_logging();
    let conn = store::connect_postgres(&options)
        .await
        .doing("connecting to PostgreSQL")?;
    let mut reader = Reader::new(Connection::Postgres(conn), store::redacted(url));
    // A question stopped on this side (Ctrl-C, `timeout`, a kill) went on running on the
    // server, unasked, for as long as it took, holding a core and a snapshot that keeps
    // the crawl's dead rows from vacuum: the server checks every second that the client
    // is still there. Servers before 14 and some systems have no such check; the
    // question runs there all the same, hence no error.
    let _ = reader
        .execute("SET client_connection_check_interval = '1s'")
        .await;
    reader
        .execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await?;
    let mut tables = Vec::new();
    reader
        .each_row(
            &Statement::new(
                "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema()",
            ),
            |_, cells| {
                if let Some(super::output::Cell::Text(name)) = cells.first() {
                    tables.push((*name).to_owned());
                }
                Ok(true)
            },
        )
        .await?;
    Ok((reader, tables))
}

/// The connection's schema (its search_path's first that exists, if one does) and another
/// that holds a crawl's tables, if one does: a crawl in a schema of its own, which this
/// connection's search_path misses.
async fn crawl_elsewhere(
    reader: &mut Reader,
) -> Result<Option<(Option<String>, String)>, QueryError> {
    let mut found = None;
    reader
        .each_row(
            &Statement::new(
                "SELECT current_schema()::text, f.schemaname::text
                 FROM pg_tables f JOIN pg_tables p ON p.schemaname = f.schemaname
                 WHERE f.tablename = 'frontier' AND p.tablename = 'pages'
                   AND f.schemaname IS DISTINCT FROM current_schema()
                 ORDER BY 2 LIMIT 1",
            ),
            |_, cells| {
                use super::output::Cell;
                if let [here, Cell::Text(there)] = cells {
                    let here = match here {
                        Cell::Text(here) => Some((*here).to_owned()),
                        _ => None,
                    };
                    found = Some((here, (*there).to_owned()));
                }
                Ok(true)
            },
        )
        .await?;
    Ok(found)
}

/// Refuses a PostgreSQL database made before `migrations/postgres/0002_query.sql`,
/// whose text columns sort by the server's locale: the questions' order, and their
/// URL ranges for a host, rely on byte order.
async fn check_byte_order(reader: &mut Reader, database: String) -> Result<(), QueryError> {
    let byte_order = reader
        .integer(&Statement::new(
            "SELECT count(*) FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = 'pages'
               AND column_name = 'url' AND collation_name = 'C'",
        ))
        .await?;
    if byte_order != Some(1) {
        return Err(QueryError::OutdatedSchema { database });
    }
    Ok(())
}

/// Opens the SQLite file `options` name (`name` as the user spelled it) read-only;
/// returns its tables.
async fn open_sqlite(
    options: SqliteConnectOptions,
    name: &str,
) -> Result<(Reader, Vec<String>), QueryError> {
    let name = name.to_owned();
    let path = options.get_filename().to_owned();
    // `sqlite://` with its path left out (`sqlite://$DB`, the variable unset): an empty
    // path, which was "no database at" the current directory.
    if path.as_os_str().is_empty() {
        return Err(QueryError::NoFileNamed { database: name });
    }
    // sqlx names its in-memory database as a file, which is nowhere: "no database at
    // /current/dir/file:sqlx-in-memory-0" named neither what was asked nor why.
    if crate::store::in_memory(&name) {
        return Err(QueryError::InMemory { database: name });
    }
    if !path.exists() {
        let looked_at = crate::config::looked_at(&path);
        return Err(QueryError::Missing {
            foreign: crate::config::foreign_path(&name),
            database: name,
            looked_at,
        });
    }
    // SQLite opens a directory and fails at the first read with "disk I/O error".
    if path.is_dir() {
        return Err(QueryError::NotSqlite {
            database: name,
            message: "it is a directory".to_owned(),
        });
    }
    let options = options
        .read_only(true)
        .pragma("query_only", "ON")
        // Each question is a fresh process with an empty page cache: reading the file
        // through a memory map serves pages from the OS cache without a system call each,
        // several times faster for questions that look up thousands of rows.
        .pragma("mmap_size", "2147418112")
        // A slow question is the user's to judge; a log line about it is noise on stderr.
        .disable_statement_logging()
        // A crawl writing the same file holds its lock only while committing a batch.
        .busy_timeout(Duration::from_secs(10));
    let no_log_before = !wal_file(&path).exists();
    let mut conn = connect(&options, &name).await?;
    let tables = match tables(&mut conn).await {
        // Readers of a WAL database share memory through `crawl.db-shm`, which cannot be
        // made in a directory this user cannot write (a read-only mount, another user's
        // crawl). With no `crawl.db-wal` beside it, no crawl is writing and every commit
        // is in the file itself, so the file is read as it is, without that memory. On a
        // read-only mount SQLite says "unable to open database file" instead.
        Err(e)
            if matches!(
                primary_code(&e),
                Some(SQLITE_READONLY | libsqlite3_sys::SQLITE_CANTOPEN)
            ) && !wal_file(&path).exists() =>
        {
            conn = connect(&options.clone().immutable(true), &name).await?;
            tables(&mut conn).await
        }
        // Not so with the log there: SQLite needs the `-shm` then, and cannot make it.
        Err(e)
            if primary_code(&e) == Some(libsqlite3_sys::SQLITE_CANTOPEN)
                && wal_file(&path).exists()
                && !beside(&path, "-shm").exists() =>
        {
            return Err(QueryError::NoSharedMemory {
                database: name,
                wal: wal_file(&path),
                shm: beside(&path, "-shm"),
            });
        }
        // On a full disk SQLite makes the `-shm` file but cannot grow it.
        Err(e)
            if sqlite_code_of(&e) == Some(libsqlite3_sys::SQLITE_IOERR_SHMSIZE)
                && wal_file(&path).exists() =>
        {
            return Err(QueryError::NoRoomForSharedMemory {
                database: name,
                wal: wal_file(&path),
                shm: beside(&path, "-shm"),
            });
        }
        read => read,
    }
    .map_err(|source| QueryError::from_file(name.clone(), "reading the database schema", source))?;
    let reader = Reader::new(Connection::Sqlite(conn), name);
    let reader = if no_log_before {
        reader.opened_without_log(path)
    } else {
        reader
    };
    Ok((reader, tables))
}

/// Removes the empty write-ahead log and shared-memory file beside the SQLite file at
/// `path` once the reader that made them has closed, as SQLite removes them when the
/// last connection to a WAL database closes: but for a read-only connection, which
/// leaves them, so that each question left `crawl.db-wal` and `crawl.db-shm` beside a
/// finished crawl's database. A writable connection that reads the schema, and nothing
/// else, is opened and closed to have SQLite do it under its own locks: with another
/// connection open (a crawl started meanwhile) it is not the last, and leaves them. A
/// log with commits in it is no reader's and stays for its writer to fold in. Nothing
/// is removed where this user may not write the database.
pub(super) async fn remove_log_made(path: &Path) {
    if !std::fs::metadata(wal_file(path)).is_ok_and(|log| log.len() == 0) {
        return;
    }
    let options = SqliteConnectOptions::new()
        .filename(path)
        .disable_statement_logging()
        // Tidying is worth no wait behind a writer.
        .busy_timeout(Duration::ZERO);
    let Ok(mut conn) = options.connect().await else {
        return;
    };
    // Closing removes the log only once the connection has read through it.
    let _ = tables(&mut conn).await;
    let _ = sqlx::Connection::close(conn).await;
}

/// A read-only connection with ATTACH forbidden.
async fn connect(
    options: &SqliteConnectOptions,
    name: &str,
) -> Result<SqliteConnection, QueryError> {
    let mut conn = options
        .connect()
        .await
        .map_err(|source| cannot_open(options.get_filename(), name, source))?;
    forbid_attach(&mut conn).await?;
    Ok(conn)
}

/// `source`, SQLite's failure to open the file at `path`, with the system's reason where
/// SQLite gives none: of a file the user may not read it says "unable to open database
/// file", which names neither the file nor why.
fn cannot_open(path: &Path, name: &str, source: sqlx::Error) -> QueryError {
    if primary_code(&source) == Some(libsqlite3_sys::SQLITE_CANTOPEN) {
        if let Err(reason) = std::fs::File::open(path) {
            return QueryError::Unreadable {
                database: name.to_owned(),
                source: reason,
            };
        }
    }
    QueryError::from_file(name.to_owned(), "opening the database", source)
}

async fn tables(conn: &mut SqliteConnection) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT name FROM sqlite_schema WHERE type = 'table'")
        .fetch_all(conn)
        .await
}

/// The write-ahead log SQLite keeps beside the database at `path`.
fn wal_file(path: &Path) -> PathBuf {
    beside(path, "-wal")
}

/// The file SQLite keeps beside the database at `path`, its name ending in `suffix`.
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut file = path.as_os_str().to_owned();
    file.push(suffix);
    PathBuf::from(file)
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
