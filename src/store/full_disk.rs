//! Saying where a full disk is. SQLite's own words, "database or disk is full", name
//! neither the disk nor what to do, and a crawl's database, its WAL and SQLite's
//! temporary files may each be on another disk.

use std::future::Future;
use std::path::{Path, PathBuf};

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Pool, Sqlite};

use crate::error::Error;

/// `error`, naming the disk of `database`'s directory (and of SQLite's temporary
/// directory, when another) and what to do, when it is SQLite's full disk.
pub(crate) fn said_where(error: Error, database: &str) -> Error {
    match super::sqlite_options(database) {
        Ok(options) => said_for(error, &options),
        Err(_) => error,
    }
}

/// `step` on the database `pool` opens, its full disk named ([`said_where`]): the
/// store's steps wait one out (`outage`), saying where to make room. The connection is
/// left out of any transaction first ([`out_of_transactions`]), so that the step can
/// be run again.
pub(super) async fn named<T>(
    pool: &Pool<Sqlite>,
    step: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    match step.await {
        Err(error) if is_disk_full(&error) => {
            out_of_transactions(pool).await;
            Err(said_for(error, &pool.connect_options()))
        }
        done => done,
    }
}

/// Closes `pool`'s connection if SQLite or sqlx takes it for one in a transaction while
/// no step holds it; the pool opens another for the next step. A statement that finds
/// no room rolls back its whole transaction when it keeps no statement journal, and
/// sqlx's own rollback then fails: sqlx went on counting a transaction the connection
/// had not, began the next as a savepoint, and a rollback of that one (to the
/// savepoint) left the connection in a transaction, so that the next page batch found
/// "cannot start a transaction within a transaction" and the crawl stopped.
async fn out_of_transactions(pool: &Pool<Sqlite>) {
    let Ok(mut conn) = pool.acquire().await else {
        return;
    };
    // Locked after any rollback sqlx has queued, which its count then shows.
    let in_sqlite = match conn.lock_handle().await {
        // SAFETY: the handle is the open connection, locked while it is asked.
        Ok(mut handle) => unsafe {
            libsqlite3_sys::sqlite3_get_autocommit(handle.as_raw_handle().as_ptr()) == 0
        },
        Err(_) => true,
    };
    if in_sqlite || sqlx::Connection::is_in_transaction(&*conn) {
        tracing::debug!("a connection left in a transaction by a full disk is closed");
        let _ = conn.close().await;
    }
}

fn said_for(error: Error, options: &SqliteConnectOptions) -> Error {
    if !is_disk_full(&error) {
        return error;
    }
    let Some(dir) = options.get_filename().parent().map(Path::to_owned) else {
        return error;
    };
    let dir = if dir.as_os_str().is_empty() {
        std::env::current_dir().unwrap_or(dir)
    } else {
        dir
    };
    let temp = sqlite_temp_dir().filter(|temp| !same_disk(temp, &dir));
    Error::DiskFull {
        dir,
        temp,
        source: Box::new(error),
    }
}

/// SQLite found no room on the disk for the database, its WAL or a temporary file, or
/// for the `-shm` file beside the database, whose growing fails as a "disk I/O error".
fn is_disk_full(error: &Error) -> bool {
    use libsqlite3_sys::{SQLITE_FULL, SQLITE_IOERR_SHMSIZE};
    match error.sqlite_code() {
        Some(code) => {
            code & 0xff == SQLITE_FULL || (code == SQLITE_IOERR_SHMSIZE && !file_size_limited())
        }
        None => false,
    }
}

/// Whether the process may write no file larger than a limit (`ulimit -f`), past which
/// the `-shm` file's growing fails too: the binary names the limit then.
fn file_size_limited() -> bool {
    #[cfg(unix)]
    {
        rlimit::getrlimit(rlimit::Resource::FSIZE).is_ok_and(|(soft, _)| soft != rlimit::INFINITY)
    }
    #[cfg(not(unix))]
    false
}

#[cfg(unix)]
fn same_disk(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let device = |dir: &Path| std::fs::metadata(dir).ok().map(|m| m.dev());
    device(a) == device(b)
}

/// Elsewhere the temporary directory goes unnamed.
#[cfg(not(unix))]
fn same_disk(_: &Path, _: &Path) -> bool {
    true
}

/// The directory SQLite's Unix build puts temporary files in (sorts larger than memory):
/// the first of these that is a directory this user may write.
pub(crate) fn sqlite_temp_dir() -> Option<PathBuf> {
    sqlite_temp_dirs().find(|dir| writable_dir(dir))
}

/// Whether `dir` is a directory this user may make files in, as SQLite asks it.
pub(super) fn writable_dir(dir: &Path) -> bool {
    use rustix::fs::{access, Access};
    dir.is_dir() && access(dir, Access::WRITE_OK | Access::EXEC_OK).is_ok()
}

/// The directories SQLite's Unix build looks in for one to put temporary files in, in
/// its order, but for the current directory, which it tries last.
pub(super) fn sqlite_temp_dirs() -> impl Iterator<Item = PathBuf> {
    let named = ["SQLITE_TMPDIR", "TMPDIR"]
        .into_iter()
        .filter_map(std::env::var_os)
        .map(PathBuf::from);
    named.chain(["/var/tmp", "/usr/tmp", "/tmp"].map(PathBuf::from))
}

/// Where SQLite looked for a directory to put temporary files in, when it found none it
/// may write: said, as SQLite's own "disk I/O error" says nothing of it.
pub(crate) fn sqlite_temp_dirs_tried() -> String {
    let dirs: Vec<String> = sqlite_temp_dirs()
        .map(|dir| dir.display().to_string())
        .collect();
    let current = std::env::current_dir()
        .map(|dir| format!(" ({})", dir.display()))
        .unwrap_or_default();
    format!("{} and the current directory{current}", dirs.join(", "))
}
