//! One crawl at a time on a SQLite database.
//!
//! A crawl starting on a SQLite database takes every URL left leased for a killed run's
//! and queues it again. Started beside a crawl that still runs, it would take that
//! crawl's URLs in flight, fetch them a second time, and both would store their pages
//! and links. So a crawl holds an exclusive lock on a file beside the database
//! (`crawl.db-lock`, as SQLite keeps `crawl.db-wal` there) for as long as it runs. The
//! system drops the lock with the process, `kill -9` included: no stale lock is left for
//! anyone to remove. Readers (`pipecrawl query`, `sqlite3`) do not take it.
//!
//! The holder writes who it is into the file (its process id, command line and working
//! directory), so that a run refused names it: on a machine where several teams' configs
//! run, "in use by another crawl" left the user to find which of them named the database.
//!
//! The lock also knows which file it was taken for. A backup put in the database's place
//! while a crawl runs (`mv backup.db crawl.db`, or the file removed) leaves the crawl
//! writing to the file it replaced, in no directory (every page it stored after was lost
//! with it) or under the name it was moved to, and readers of the backup met the crawl's
//! WAL beside it and found it damaged. So the writer asks [`CrawlLock::database_still_there`] before each
//! batch and stops the run, saying so.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use crate::error::Error;

/// The lock, held until [`CrawlLock::release`] or the last clone of the store is dropped.
pub(super) struct CrawlLock {
    file: Mutex<Option<File>>,
    /// The database as named (for messages), and the file it names (links followed).
    database: PathBuf,
    resolved: PathBuf,
    /// The resolved file's identity when the lock was taken.
    identity: Option<Identity>,
}

impl CrawlLock {
    /// Takes the lock of the database at `database`, or says that another process holds it.
    ///
    /// The lock is beside the file the name resolves to, as SQLite's WAL is: a crawl that
    /// names the database through a symbolic link (`latest.db`) meets the lock of one
    /// that names it directly.
    pub(super) fn take(database: &Path) -> Result<Self, Error> {
        let resolved = std::fs::canonicalize(database).map_err(|source| Error::LockDatabase {
            path: database.to_owned(),
            source,
        })?;
        let identity = identity(&resolved);
        let mut name = resolved.clone().into_os_string();
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
            Ok(()) => {
                // Who holds it is a courtesy to the runs refused: not writing it stops nothing.
                let _ = write_holder(&file);
                Ok(Self {
                    file: Mutex::new(Some(file)),
                    database: database.to_owned(),
                    resolved,
                    identity,
                })
            }
            Err(TryLockError::WouldBlock) => Err(Error::DatabaseInUse {
                path: database.to_owned(),
                holder: holder(&path),
                lock: path,
            }),
            Err(TryLockError::Error(source)) => Err(failed(source)),
        }
    }

    /// Lets the next crawl start: once this one's connections are closed.
    pub(super) fn release(&self) {
        drop(
            self.file
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
    }

    /// Fails when the database's name no longer leads to the file this run opened: it
    /// was replaced (a backup restored over it) or removed while the run wrote it.
    pub(super) fn database_still_there(&self) -> Result<(), Error> {
        match (self.identity, identity(&self.resolved)) {
            (Some(opened), now) if now != Some(opened) => Err(Error::DatabaseReplaced {
                path: self.database.clone(),
            }),
            _ => Ok(()),
        }
    }
}

/// Puts this process in the lock file, in place of the last holder.
fn write_holder(mut file: &File) -> std::io::Result<()> {
    let command: Vec<String> = std::env::args_os()
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect();
    let dir = std::env::current_dir()
        .map(|dir| format!(", in {}", dir.display()))
        .unwrap_or_default();
    file.set_len(0)?;
    write!(
        file,
        "process {} ({}{dir})",
        std::process::id(),
        command.join(" ")
    )
}

/// Longest holder read from a lock file: a command line, not a file's worth of output.
const HOLDER_MAX_CHARS: usize = 1000;

/// Who holds the lock at `path`, as its holder wrote it: `None` from a pipecrawl that
/// wrote none, or before the holder has written it.
fn holder(path: &Path) -> Option<String> {
    let mut text = String::new();
    File::open(path)
        .ok()?
        .take(4 * HOLDER_MAX_CHARS as u64)
        .read_to_string(&mut text)
        .ok()?;
    let holder: String = text
        .chars()
        .filter(|c| !c.is_control())
        .take(HOLDER_MAX_CHARS)
        .collect();
    Some(holder).filter(|h| !h.trim().is_empty())
}

/// A file's device and inode, which a file put in its place under its name does not share.
type Identity = (u64, u64);

#[cfg(unix)]
fn identity(path: &Path) -> Option<Identity> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Elsewhere a replaced database goes unnoticed.
#[cfg(not(unix))]
fn identity(_: &Path) -> Option<Identity> {
    None
}
