//! One crawl at a time on a SQLite database.
//!
//! A crawl starting on a SQLite database takes every URL left leased for a killed run's
//! and queues it again. Started beside a crawl that still runs, it would take that
//! crawl's URLs in flight, fetch them a second time, and both would store their pages
//! and links. So a crawl holds an exclusive lock on a file beside the database
//! (`crawl.db-lock`, as SQLite keeps `crawl.db-wal` there) for as long as it runs. The
//! system drops the lock with the process, `kill -9` included: no stale lock is left for
//! anyone to remove. Readers (`pipecrawl query`, `sqlite3`) do not take it.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use crate::error::Error;

/// The lock, held until [`CrawlLock::release`] or the last clone of the store is dropped.
pub(super) struct CrawlLock(Mutex<Option<File>>);

impl CrawlLock {
    /// Takes the lock of the database at `database`, or says that another process holds it.
    ///
    /// The lock is beside the file the name resolves to, as SQLite's WAL is: a crawl that
    /// names the database through a symbolic link (`latest.db`) meets the lock of one
    /// that names it directly.
    pub(super) fn take(database: &Path) -> Result<Self, Error> {
        let file = std::fs::canonicalize(database).map_err(|source| Error::LockDatabase {
            path: database.to_owned(),
            source,
        })?;
        let mut name = file.into_os_string();
        name.push("-lock");
        let path = PathBuf::from(name);
        let failed = |source| Error::LockDatabase {
            path: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(failed)?;
        match file.try_lock() {
            Ok(()) => Ok(Self(Mutex::new(Some(file)))),
            Err(TryLockError::WouldBlock) => Err(Error::DatabaseInUse {
                path: database.to_owned(),
                lock: path,
            }),
            Err(TryLockError::Error(source)) => Err(failed(source)),
        }
    }

    /// Lets the next crawl start: once this one's connections are closed.
    pub(super) fn release(&self) {
        drop(self.0.lock().unwrap_or_else(PoisonError::into_inner).take());
    }
}
