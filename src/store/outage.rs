//! Riding out a PostgreSQL server that goes away for a while: a restart, a failover, a
//! network blip. Without this, the first statement to meet the closed connection stopped
//! the node, and every node of a cluster with it.
//!
//! A step that lost its connection is run again once the server answers: each is one
//! statement or one transaction, which the server rolled back when the connection went,
//! and the writer's batches store only rows their node still holds, so what a step did
//! before the cut is not done twice. A server that went away while every connection was
//! idle is met in the pool instead, which tries to connect until its acquire timeout
//! ([`CONNECT_TIMEOUT`]) and then says it has no connection: that, too, is waited out,
//! though a pool whose every connection is busy says the same. The wait between tries
//! doubles, and an outage longer than [`OUTLAST`] stops the crawl with the error, as
//! before.
//!
//! A network cut (a firewall dropping packets, a failover behind a virtual IP) closes
//! nothing: a connection open then waits for an answer that never comes, without
//! keepalive for ever (sqlx sets none). A crawl step ([`brief`]: storing a batch, leasing
//! URLs, renewing leases) not answered within [`ANSWER_WITHIN`] is taken for one whose
//! connection went, and run again on another. The steps that go over the whole frontier
//! (building indexes, budgets, re-admitting links) may rightly take longer, and wait.
//!
//! A full disk under SQLite's database is waited out the same way, for the same
//! [`OUTLAST`], with a warning that names the disk when it fills and again every
//! [`DISK_WARNING_EVERY`] (each try would be one too many). SQLite rolls back the
//! statement that found no room, and at times the whole transaction; the store rolls
//! back the rest, so a step is run again from its start in a transaction of its own.
//!
//! A step PostgreSQL rolled back to break a deadlock (or a serialization failure) with
//! another node's is run again too, as soon as a short random pause has let that one
//! pass: on a busy cluster some always happen, and each stopped the node or a batch.

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::CONNECT_TIMEOUT;
use crate::error::{temp_dir_note, Error};
use crate::retry::doubling;

/// How long a node waits for its database before it gives up.
pub(crate) const OUTLAST: Duration = Duration::from_secs(600);

/// How long a crawl step may wait for the server's answer. Each takes milliseconds, a
/// batch of pages under load a few seconds; one not answered for a lease time (by
/// default) lost its connection, or the node's leases lapse meanwhile all the same.
pub(crate) const ANSWER_WITHIN: Duration = Duration::from_secs(30);

pub(crate) const FIRST_WAIT: Duration = Duration::from_millis(100);
pub(crate) const LONGEST_WAIT: Duration = Duration::from_secs(5);

/// Times a step is tried when PostgreSQL rolls it back to break a deadlock.
const CONFLICT_ATTEMPTS: u32 = 5;

/// How often a disk that stays full is said again, whichever steps wait for it.
const DISK_WARNING_EVERY: Duration = Duration::from_secs(60);

/// Steps of this process waiting for the database now: [`waiting`].
static WAITING: AtomicUsize = AtomicUsize::new(0);

/// Of [`WAITING`], the steps waiting for room on the disk.
static WAITING_FOR_ROOM: AtomicUsize = AtomicUsize::new(0);

/// When a full disk was last said, by any step; none since the disk last had room.
static DISK_WARNED: Mutex<Option<Instant>> = Mutex::new(None);

/// Whether a step is waiting for the database to answer again, or for room on its disk:
/// a crawl asked to stop then waits for it too (up to [`OUTLAST`]), not only for the
/// pages in flight.
pub(crate) fn waiting() -> bool {
    WAITING.load(Ordering::Relaxed) > 0
}

/// One step's tries through an outage.
pub(crate) struct Outage {
    /// When the step's try under way began: one that failed only after waiting (the
    /// pool's [`CONNECT_TIMEOUT`], a [`brief`] step's [`ANSWER_WITHIN`]) had met the
    /// outage that long before, and the time said when it is over counts from there,
    /// never from before the try (a step that ran ten minutes and then lost its
    /// connection has met an outage just begun).
    try_began: Instant,
    began: Option<Instant>,
    tries: u32,
    /// Of the tries, those after a deadlock.
    conflicts: u32,
    /// The disk holding the database, when what is waited out is its having no room.
    full_disk: Option<PathBuf>,
}

impl Outage {
    /// A step about to be tried for the first time.
    pub(crate) fn starting() -> Self {
        Self {
            try_began: Instant::now(),
            began: None,
            tries: 0,
            conflicts: 0,
            full_disk: None,
        }
    }

    /// Whether `error` is a lost connection that the step may outlast, or a deadlock it
    /// has not met [`CONFLICT_ATTEMPTS`] times: then it has waited its turn and the step
    /// should be run again.
    pub(crate) async fn waits_out(&mut self, error: &Error) -> bool {
        if error.is_transient_conflict() && self.conflicts + 1 < CONFLICT_ATTEMPTS {
            self.conflicts += 1;
            tracing::debug!(
                attempt = self.conflicts,
                "a step met another node's transaction: trying again"
            );
            tokio::time::sleep(Duration::from_millis(fastrand::u64(5..50))).await;
            self.try_began = Instant::now();
            return true;
        }
        if let Error::DiskFull { dir, temp, source } = error {
            if self.began.is_none() {
                self.full_disk = Some(dir.clone());
                WAITING_FOR_ROOM.fetch_add(1, Ordering::Relaxed);
            }
            let began = *self.began.get_or_insert_with(|| {
                WAITING.fetch_add(1, Ordering::Relaxed);
                Instant::now()
            });
            if disk_warning_due() {
                let so_far = match began.elapsed().as_secs() {
                    0 => String::new(),
                    waited => format!(" (it has for {waited} s)"),
                };
                tracing::warn!(
                    "{source}: no room left on the disk holding {}{}: make room there; the \
                     crawl waits for it{so_far}, trying again for up to {} minutes, and goes \
                     on by itself",
                    dir.display(),
                    temp_dir_note(temp.as_deref()),
                    OUTLAST.as_secs() / 60
                );
            }
            return self.waited(began).await;
        }
        if !error.is_connection_lost() {
            return false;
        }
        let met = Instant::now()
            .checked_sub(waited_before_failing(error))
            .map_or(self.try_began, |met| met.max(self.try_began));
        let began = *self.began.get_or_insert_with(|| {
            let minutes = OUTLAST.as_secs() / 60;
            if is_unanswered(error) {
                tracing::warn!(
                    "no answer from the database within {} s to a step of the crawl: its \
                     connection was lost (a network cut), or the step waits for a lock another \
                     session holds (a `LOCK TABLE`, a `VACUUM FULL`: `pg_locks` shows it); \
                     trying again on a new connection for up to {minutes} minutes",
                    ANSWER_WITHIN.as_secs()
                );
            } else if error.is_pool_timeout() {
                tracing::warn!(
                    "no connection to the database within {} s ({error}; the server is out \
                     of reach, or every connection of this node is busy): trying again for up \
                     to {minutes} minutes",
                    CONNECT_TIMEOUT.as_secs()
                );
            } else {
                tracing::warn!(
                    "lost the connection to the database ({error}): trying again for up to \
                     {minutes} minutes"
                );
            }
            WAITING.fetch_add(1, Ordering::Relaxed);
            met
        });
        self.waited(began).await
    }

    /// Waits before the next try of a step waiting since `began`, unless it has waited
    /// [`OUTLAST`].
    async fn waited(&mut self, began: Instant) -> bool {
        if began.elapsed() >= OUTLAST {
            return false;
        }
        self.tries += 1;
        tokio::time::sleep(doubling(FIRST_WAIT, self.tries, LONGEST_WAIT)).await;
        self.try_began = Instant::now();
        true
    }

    /// Says that the database answered again, or its disk had room, if it had not.
    pub(crate) fn over(&self) {
        let Some(began) = self.began else {
            return;
        };
        let waited = began.elapsed().as_secs_f64();
        match &self.full_disk {
            // A step that found room while others still wait (a small write between two
            // large ones) says nothing: the disk is full still, and saying it again at
            // once, each time one fits, would fill the log.
            Some(_) if WAITING_FOR_ROOM.load(Ordering::Relaxed) > 1 => {}
            Some(dir) => {
                *DISK_WARNED.lock().unwrap_or_else(PoisonError::into_inner) = None;
                tracing::warn!(
                    "the disk holding {} has room again after {waited:.1} s: the crawl goes on",
                    dir.display()
                );
            }
            None => tracing::warn!("the database answers again after {waited:.1} s"),
        }
    }
}

/// Whether a full disk is to be said now: the first time, or [`DISK_WARNING_EVERY`]
/// after the last time; notes that it is.
fn disk_warning_due() -> bool {
    let mut warned = DISK_WARNED.lock().unwrap_or_else(PoisonError::into_inner);
    let due = warned.is_none_or(|at| at.elapsed() >= DISK_WARNING_EVERY);
    if due {
        *warned = Some(Instant::now());
    }
    due
}

impl Drop for Outage {
    fn drop(&mut self) {
        if self.began.is_some() {
            WAITING.fetch_sub(1, Ordering::Relaxed);
        }
        if self.full_disk.is_some() {
            WAITING_FOR_ROOM.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// How long a try waited for the server before it failed with `error`: the pool's
/// [`CONNECT_TIMEOUT`] for a connection, a [`brief`] step's [`ANSWER_WITHIN`] for an
/// answer; none that is known for a connection that broke.
fn waited_before_failing(error: &Error) -> Duration {
    if error.is_pool_timeout() {
        CONNECT_TIMEOUT
    } else if is_unanswered(error) {
        ANSWER_WITHIN
    } else {
        Duration::ZERO
    }
}

/// Whether `error` is a [`brief`] step's not answered in time.
fn is_unanswered(error: &Error) -> bool {
    matches!(
        error,
        Error::Database {
            doing: UNANSWERED,
            ..
        }
    )
}

/// What a [`brief`] step not answered in time was doing.
const UNANSWERED: &str = "waiting for the server's answer";

/// `step`, failing as a lost connection once the server has not answered it within
/// [`ANSWER_WITHIN`]. The connection it held is dropped mid-step: the pool does not take
/// it back unless it answers (`store::Store::open`), and the server rolls back what the
/// step had begun when it finds it gone.
pub(crate) async fn brief<T>(step: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
    tokio::time::timeout(ANSWER_WITHIN, step)
        .await
        .unwrap_or_else(|_| {
            Err(Error::Database {
                doing: UNANSWERED,
                source: sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("none within {} s", ANSWER_WITHIN.as_secs()),
                )),
            })
        })
}

/// Runs `$step` (an expression whose value is a future of `Result<_, Error>`) again while
/// it fails for a lost connection, a full disk or a deadlock, as [`Outage`] allows; `brief`, each try
/// not answered within [`ANSWER_WITHIN`] is one that lost its connection.
macro_rules! outlasting {
    (brief $step:expr) => {
        $crate::store::outage::outlasting!($crate::store::outage::brief($step))
    };
    ($step:expr) => {{
        let mut outage = $crate::store::outage::Outage::starting();
        loop {
            match $step.await {
                Err(e) if outage.waits_out(&e).await => {}
                done => {
                    outage.over();
                    break done;
                }
            }
        }
    }};
}
pub(crate) use outlasting;

#[cfg(test)]
mod tests {
    use super::*;

    fn lost(source: sqlx::Error) -> Error {
        Error::Database {
            doing: "a step",
            source,
        }
    }

    /// A step ([`Outage::starting`]) whose try under way began `ago`.
    fn tried(ago: Duration) -> Outage {
        let mut outage = Outage::starting();
        outage.try_began = Instant::now() - ago;
        outage
    }

    /// A step that ran past [`OUTLAST`] (an index build over a large frontier, waited for
    /// however long it takes) and then lost its connection has met an outage just begun:
    /// counted from the step's start, it had used up its ten minutes and the node stopped
    /// at the first failover.
    #[tokio::test]
    async fn a_long_step_that_loses_its_connection_waits_the_outage_out() {
        let mut outage = tried(OUTLAST + Duration::from_secs(60));
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(outage.waits_out(&lost(sqlx::Error::Io(reset))).await);
        let began = outage.began.map(|began| began.elapsed());
        assert!(began < Some(Duration::from_secs(60)), "{began:?}");
    }

    /// A try that failed after the pool's wait for a connection met the outage that long
    /// before: "answers again after N s" counts it.
    #[tokio::test]
    async fn a_wait_for_a_connection_counts_in_the_outage() {
        let mut outage = tried(Duration::from_secs(3600));
        assert!(outage.waits_out(&lost(sqlx::Error::PoolTimedOut)).await);
        let began = outage.began.map(|began| began.elapsed());
        assert!(began >= Some(CONNECT_TIMEOUT), "{began:?}");
        assert!(began < Some(CONNECT_TIMEOUT * 6), "{began:?}");
    }
}
