//! Checkpoints of SQLite's write-ahead log, taken beside the writer rather than by it.
//!
//! A commit appends the pages it changed to the WAL; a checkpoint copies them into the
//! database file and syncs it. SQLite checkpoints on the committing connection once the
//! WAL holds `wal_autocheckpoint` pages: on the store's one writing connection, which the
//! whole crawl waits on. In `perf record` of the benchmark's scale crawl, checkpoints and
//! their syncs took a fifth of that connection's thread. Here a connection of its own
//! takes a passive checkpoint every [`EVERY`], copying what is committed without waiting
//! for the writer or making it wait.
//!
//! The writer still checkpoints at [`WRITER_CHECKPOINT_PAGES`]: only a WAL copied to its
//! end starts over from its beginning, and while commits keep coming a passive checkpoint
//! seldom finds it so. That bounds the WAL (100,000 pages of 4 KiB), and keeps it so if
//! this connection fails. Set as low as the 10,000 pages it was before, the writer's own
//! checkpoints synced what the passive ones had copied, and the crawl was no faster.
//! Measured on the benchmark's crawls (interleaved pairs, each against the writer alone
//! checkpointing at 10,000 pages): scale 19.7 → 18.2 s (twelve pairs, eleven faster),
//! throughput 10.13 → 9.74 s (five pairs, all faster). The cost is disk: the scale
//! crawl's WAL peaked at 540–600 MB instead of 270 MB (the index build at its end, one
//! transaction, is most of either).
//!
//! That disk is not always there: a WAL that outgrew the room left on its disk filled
//! it, and then stayed full, since copying the WAL into the database needs the database
//! file to grow. So the writer also checkpoints, and empties the WAL, once it holds more
//! than a quarter of the room left ([`Checkpoints::keep_within_room`]): on a disk with
//! room to spare, never.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{Connection, Pool, Sqlite};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::Error;

/// How often the passive checkpoint runs: a few batches' worth of commits.
const EVERY: Duration = Duration::from_millis(200);

/// The writer connection's `wal_autocheckpoint`.
pub(super) const WRITER_CHECKPOINT_PAGES: u32 = 100_000;

/// The WAL may hold up to this share of the room left on its disk (1/4), and what its
/// checkpoints copy into the database file as it grows.
const WAL_SHARE_OF_ROOM: u64 = 4;

/// A WAL smaller than this is left alone whatever the room: a few batches.
const LEAST_WAL_BOUND: u64 = 256 << 10;

/// How long the writer's own checkpoint waits for readers to move on: a short wait,
/// since the crawl waits with it; one that does not get its way copies what it can.
const WRITER_CHECKPOINT_WAIT: Duration = Duration::from_millis(50);

/// How long each try of the last checkpoint waits for another program's reader before
/// the wait's end and a stop are looked at again.
const READER_WAIT_SLICE: Duration = Duration::from_millis(250);

/// How long the last checkpoint, as the store closes, waits for another program's read
/// transaction to end before it leaves the WAL as it is.
#[derive(Clone)]
pub(crate) struct ReadersWait {
    /// At most this long,
    pub longest: Duration,
    /// and no longer than `after_stop` once `stopping` fires (a signal asking the run to
    /// stop, which a supervisor times), however long the run had waited by then.
    pub stopping: Option<(CancellationToken, Duration)>,
}

impl ReadersWait {
    /// As long as `longest`, whatever comes.
    pub fn at_most(longest: Duration) -> Self {
        Self {
            longest,
            stopping: None,
        }
    }
}

/// What the last checkpoint, as the store closes, did with the WAL.
enum Folded {
    /// Copied into the database and emptied.
    Whole,
    /// Kept, after `waited` for another program's read transaction to end.
    HeldByReader { waited: Duration },
}

/// The checkpointing task; it stops when this is dropped (with the last clone of the
/// store) or [`Checkpoints::stop`]ped.
pub(super) struct Checkpoints {
    stop: CancellationToken,
    /// How long the last checkpoint waits for another program's reader, set as it is
    /// [`Checkpoints::stop`]ped.
    readers_wait: Arc<Mutex<Option<ReadersWait>>>,
    /// Ends with the last checkpoint's outcome.
    task: Mutex<Option<JoinHandle<Result<Folded, sqlx::Error>>>>,
    database: PathBuf,
    /// The room left on a directory's disk, in bytes (a test's is set).
    pub(super) room: fn(&Path) -> Option<u64>,
}

impl Checkpoints {
    pub(super) async fn start(options: &SqliteConnectOptions) -> Result<Self, sqlx::Error> {
        let mut conn = SqliteConnection::connect_with(options).await?;
        let stop = CancellationToken::new();
        let readers_wait: Arc<Mutex<Option<ReadersWait>>> = Arc::default();
        let task = tokio::spawn({
            let stop = stop.clone();
            let readers_wait = Arc::clone(&readers_wait);
            async move {
                // A failure is said once, not every [`EVERY`], and checkpointing goes on:
                // a disk full for a moment stopped it for the rest of the run, and the
                // WAL grew to the writer's bound.
                let mut failing = false;
                loop {
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = tokio::time::sleep(EVERY) => {}
                    }
                    let checkpoint = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                        .execute(&mut conn)
                        .await;
                    match (checkpoint, failing) {
                        (Ok(_), true) => {
                            failing = false;
                            tracing::info!("checkpointing the write-ahead log works again");
                        }
                        (Err(error), false) => {
                            failing = true;
                            tracing::warn!(
                                %error,
                                "checkpointing the write-ahead log failed; tried again every \
                                 {} ms (the writer's own checkpoints go on)",
                                EVERY.as_millis()
                            );
                        }
                        _ => {}
                    }
                }
                // All of it, the WAL emptied: SQLite's own checkpoint as the last
                // connection closes fails without a word (a full disk), leaving the WAL.
                // Another program's read transaction keeps it too: SQLite then answers
                // "busy" (1) in the first column, once the busy timeout has passed.
                let waited = Instant::now();
                let wait = readers_wait
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take()
                    .unwrap_or_else(|| ReadersWait::at_most(Duration::ZERO));
                let last = fold_waiting(&mut conn, &wait).await;
                if let Err(error) = conn.close().await {
                    tracing::debug!(%error, "closing the checkpointing connection");
                }
                last.map(|busy| {
                    if busy == 0 {
                        Folded::Whole
                    } else {
                        Folded::HeldByReader {
                            waited: waited.elapsed(),
                        }
                    }
                })
            }
        });
        Ok(Self {
            stop,
            readers_wait,
            task: Mutex::new(Some(task)),
            database: options.get_filename().to_owned(),
            room: room_left,
        })
    }

    /// Checkpoints the WAL on the writer's connection (`pool`'s one), emptying it, once
    /// it holds more than [`WAL_SHARE_OF_ROOM`] of the room left on its disk; run after
    /// each page batch. Copying on that connection, between its commits, gets to the
    /// WAL's end, which the checkpoints beside it seldom do while the writer commits
    /// without a pause. It fails quietly: the batch is stored, and the next tries again.
    pub(super) async fn keep_within_room(&self, pool: &Pool<Sqlite>) {
        let wal = std::fs::metadata(self.wal()).map_or(0, |m| m.len());
        if wal <= LEAST_WAL_BOUND {
            return;
        }
        let dir = self.database.parent().unwrap_or(Path::new("."));
        let Some(room) = (self.room)(dir) else {
            return;
        };
        if wal <= room / WAL_SHARE_OF_ROOM {
            return;
        }
        let wait = |timeout: Duration| format!("PRAGMA busy_timeout = {}", timeout.as_millis());
        let emptied = async {
            let mut conn = pool.acquire().await?;
            sqlx::raw_sql(sqlx::AssertSqlSafe(wait(WRITER_CHECKPOINT_WAIT)))
                .execute(&mut *conn)
                .await?;
            let checkpoint = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&mut *conn)
                .await;
            sqlx::raw_sql(sqlx::AssertSqlSafe(wait(super::BUSY_TIMEOUT)))
                .execute(&mut *conn)
                .await?;
            checkpoint
        };
        if let Err(error) = emptied.await {
            tracing::debug!(%error, wal, room, "emptying the write-ahead log to keep room");
        }
    }

    /// Stops checkpointing, copies what the WAL holds into the database and closes the
    /// connection: before the store's other connections close, the last of which
    /// removes the WAL. An error when the WAL could not be copied: it stays, and holds
    /// commits the database file alone lacks. Another program reading the database
    /// keeps it too, which is no failure of the crawl but is said, since the database
    /// file alone then lacks the crawl's last commits (all of them, when that program
    /// began reading before the crawl's first). That program is waited for as
    /// `readers_wait` says.
    pub(super) async fn stop(&self, readers_wait: ReadersWait) -> Result<(), Error> {
        *self
            .readers_wait
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(readers_wait);
        self.stop.cancel();
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(task) = task else {
            return Ok(());
        };
        match task.await {
            Ok(Ok(Folded::HeldByReader { waited })) => {
                let wal = self.wal();
                let bytes = std::fs::metadata(&wal).map_or(0, |m| m.len());
                tracing::warn!(
                    "another program holds a read transaction open on {} (a sqlite3 shell \
                     after BEGIN, a notebook, Datasette, a database browser): waited {:.0} s \
                     for it, in vain, so the crawl's last commits stay in {} ({bytes} bytes) \
                     beside it, which SQLite reads from there; the next crawl copies them \
                     in, as does the last program to close the database if it may write \
                     it; until then copy the database with `sqlite3 {} .backup copy.db`, \
                     not as a file",
                    self.database.display(),
                    waited.as_secs_f64(),
                    wal.display(),
                    self.database.display(),
                );
                Ok(())
            }
            Ok(last) => last.map(drop).map_err(|source| Error::WalKept {
                database: self.database.clone(),
                wal: self.wal(),
                source,
            }),
            // It is never aborted, so it panicked: a fault of ours, said where an operator
            // looks, though nothing is lost (the commits wait in the WAL, which the next
            // start copies in).
            Err(error) => {
                tracing::error!(
                    %error,
                    "the checkpointing task ended abnormally; the crawl's last commits may \
                     stay in {} beside the database until the next start copies them in",
                    self.wal().display()
                );
                Ok(())
            }
        }
    }

    /// The write-ahead log beside the database.
    fn wal(&self) -> PathBuf {
        let mut wal = self.database.clone().into_os_string();
        wal.push("-wal");
        wal.into()
    }
}

/// The room on `dir`'s disk this user may write into.
fn room_left(dir: &Path) -> Option<u64> {
    #[cfg(unix)]
    {
        rustix::fs::statvfs(dir)
            .ok()
            .map(|disk| disk.f_bavail.saturating_mul(disk.f_frsize))
    }
    #[cfg(not(unix))]
    None
}

impl Drop for Checkpoints {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Copies the whole WAL into the database and empties it, trying again for as long as
/// `wait` allows while another program's read transaction keeps it (SQLite then answers
/// "busy", 1, in the first column, once the busy timeout has passed). Says so once a
/// try has been kept, so that a crawl done with its pages does not seem to hang.
async fn fold_waiting(conn: &mut SqliteConnection, wait: &ReadersWait) -> Result<i64, sqlx::Error> {
    let started = Instant::now();
    let slice = READER_WAIT_SLICE.min(wait.longest);
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "PRAGMA busy_timeout = {}",
        slice.as_millis()
    )))
    .execute(&mut *conn)
    .await?;
    let mut deadline = started + wait.longest;
    let mut said = false;
    loop {
        let busy = sqlx::query_scalar::<_, i64>("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(&mut *conn)
            .await?;
        let now = Instant::now();
        if let Some((stopping, after_stop)) = &wait.stopping {
            if stopping.is_cancelled() {
                deadline = deadline.min(now + *after_stop);
            }
        }
        if busy == 0 || now >= deadline {
            return Ok(busy);
        }
        if !said {
            said = true;
            tracing::info!(
                "another program holds a read transaction open on the database: waiting up \
                 to {:.0} s for it to end, to copy the crawl's last commits into the \
                 database file (a signal cuts the wait short; nothing is lost either way)",
                deadline.saturating_duration_since(started).as_secs_f64()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex, PoisonError};
    use std::time::{Duration, Instant};

    use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode};
    use sqlx::Connection;
    use url::Url;

    use super::{Checkpoints, ReadersWait};

    use crate::page::{Discovered, JobKind};
    use crate::store::Store;

    /// What is committed reaches the database file while the store is open, long before
    /// the WAL would grow to the writer's own checkpoint.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn commits_reach_the_database_file_while_the_store_is_open() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("crawl.db");
        let store = Store::open(&path.display().to_string())
            .await
            .expect("open the store");
        let size = || std::fs::metadata(&path).expect("the database file").len();
        let before = size();
        let urls: Vec<Discovered> = (0..5_000)
            .map(|i| Discovered {
                url: Url::parse(&format!("http://h/{i}")).expect("a URL"),
                host: "h".to_owned(),
                depth: 0,
                priority: 0,
                redirect_hops: 0,
                kind: JobKind::Page,
                trap: None,
                disallowed: false,
            })
            .collect();
        store.enqueue(&urls).await.expect("queue the URLs");
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        while size() == before {
            assert!(
                Instant::now() < deadline,
                "the database file is still {before} bytes: nothing was checkpointed"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        store.close().await.expect("close the store");
    }

    /// What is logged, kept for a test to read.
    #[derive(Clone, Default)]
    struct Logged(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Logged {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Another program reading the database (a notebook's connection after `BEGIN`)
    /// keeps the WAL from being emptied as the store closes; the crawl says so rather
    /// than leave the database file without its last commits unannounced.
    #[tokio::test(flavor = "current_thread")]
    async fn a_wal_kept_by_another_programs_reader_is_said() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("crawl.db");
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal);
        let mut writer = SqliteConnection::connect_with(&options)
            .await
            .expect("open the database");
        sqlx::query("CREATE TABLE t (x INTEGER)")
            .execute(&mut writer)
            .await
            .expect("create a table");
        let mut reader = SqliteConnection::connect_with(&options)
            .await
            .expect("open a reader");
        sqlx::query("BEGIN")
            .execute(&mut reader)
            .await
            .expect("begin reading");
        sqlx::query("SELECT count(*) FROM t")
            .execute(&mut reader)
            .await
            .expect("read");
        sqlx::query("INSERT INTO t VALUES (1)")
            .execute(&mut writer)
            .await
            .expect("commit a row after the reader began");

        let logged = Logged::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer({
                let logged = logged.clone();
                move || logged.clone()
            })
            .with_ansi(false)
            .finish();
        let _logging = tracing::subscriber::set_default(subscriber);
        let checkpoints = Checkpoints::start(&options)
            .await
            .expect("start checkpointing");
        // The store waits 2 or 30 s for readers; the outcome after is the same.
        checkpoints
            .stop(ReadersWait::at_most(Duration::from_millis(100)))
            .await
            .expect("a reader is no failure to copy the WAL");

        let wal = dir.path().join("crawl.db-wal");
        assert!(wal.exists(), "the reader keeps the WAL");
        let logged =
            String::from_utf8_lossy(&logged.0.lock().unwrap_or_else(PoisonError::into_inner))
                .into_owned();
        assert!(
            logged.contains("WARN")
                && logged.contains("another program holds a read transaction open")
                && logged.contains(&wal.display().to_string()),
            "nothing said of the WAL kept: {logged:?}"
        );
    }
}
