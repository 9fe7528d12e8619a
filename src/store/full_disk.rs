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
/// store's steps wait one out (`outage`), saying where to make room.
pub(super) async fn named<T>(
    pool: &Pool<Sqlite>,
    step: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    step.await
        .map_err(|error| said_for(error, &pool.connect_options()))
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
/// the first of these that is a directory (it also skips one this user cannot write,
/// which std cannot tell).
pub(crate) fn sqlite_temp_dir() -> Option<PathBuf> {
    let named = ["SQLITE_TMPDIR", "TMPDIR"]
        .into_iter()
        .filter_map(std::env::var_os)
        .map(PathBuf::from);
    let usual = ["/var/tmp", "/usr/tmp", "/tmp"].map(PathBuf::from);
    named.chain(usual).find(|dir| dir.is_dir())
}
