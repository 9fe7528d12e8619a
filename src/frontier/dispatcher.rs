//! The dispatcher: keeps the frontier window filled from the `frontier` table, hands ready
//! jobs to the fetch pool, and decides when the crawl is over.
//!
//! Parsing feeds the frontier (through the store), so closing channels can never end a
//! crawl by itself. The crawl is over when the window is empty, no leased URL is still on
//! its way to being committed, and the table had nothing queued after the last commit.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::hosts::HostLeases;
use super::{Frontier, Pop, Release};
use crate::error::Error;
use crate::page::CrawlJob;
use crate::stages::{Phase, Stage, Stages};
use crate::store::Store;
use crate::summary::{EndReason, Tally};

/// The span `rate_last_minute` averages over.
const RATE_WINDOW: Duration = Duration::from_secs(60);

/// How long a lease lasts before another process may take the row, where leases are not
/// renewed (SQLite: one process owns the file, and takes every lease back at start).
const LEASE_FOR: Duration = Duration::from_secs(600);

/// What the other stages report back to the dispatcher, and live counts for progress.
#[derive(Clone)]
pub struct Progress {
    shared: Arc<Shared>,
    stages: Stages,
}

#[derive(Default)]
struct Shared {
    /// Hosts whose request finished since the dispatcher last looked. At most one entry
    /// per request in flight, so bounded by the fetch pool's size.
    released: Mutex<Vec<(Arc<str>, Release)>>,
    /// Leased rows not yet committed: in the window, fetching, parsing or being written.
    outstanding: AtomicUsize,
    /// Jobs dropped mid-fetch when a stop's grace period ran out, to go back to the queue.
    abandoned: Mutex<Vec<i64>>,
    /// Bumped by every commit, so the dispatcher knows when new rows may be queued.
    commits: AtomicU64,
    pages: AtomicU64,
    links: AtomicU64,
    /// The writer's counts as of its last commit, for `/stats`.
    tally: Mutex<Tally>,
    /// Set by `POST /pause`: nothing new is handed out until `POST /resume`.
    paused: AtomicBool,
    /// (when, pages stored) about once a second over the last minute.
    samples: Mutex<VecDeque<(Instant, u64)>>,
    wake: Notify,
}

impl Progress {
    pub fn new(stages: Stages) -> Self {
        Self {
            shared: Arc::default(),
            stages,
        }
    }

    /// Where each stage's time goes.
    pub fn stages(&self) -> &Stages {
        &self.stages
    }

    /// A fetch to `host` finished: the host may take its next request.
    pub fn host_released(&self, host: Arc<str>, release: Release) {
        self.shared
            .released
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((host, release));
        self.shared.wake.notify_one();
    }

    /// The writer finished `rows` leased rows (stored, or queued for a retry); `tally`
    /// holds its running totals.
    pub fn committed(&self, rows: usize, tally: &Tally) {
        self.shared.outstanding.fetch_sub(rows, Ordering::SeqCst);
        self.shared.pages.store(tally.pages, Ordering::Relaxed);
        self.shared.links.store(tally.links, Ordering::Relaxed);
        tally.clone_into(
            &mut self
                .shared
                .tally
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        self.shared.commits.fetch_add(1, Ordering::SeqCst);
        self.shared.wake.notify_one();
    }

    /// A fetch was cut short by the end of a stop's grace period.
    pub fn abandon(&self, id: i64) {
        self.shared
            .abandoned
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(id);
        self.shared.outstanding.fetch_sub(1, Ordering::SeqCst);
    }

    /// The jobs abandoned so far.
    pub fn take_abandoned(&self) -> Vec<i64> {
        std::mem::take(
            &mut *self
                .shared
                .abandoned
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// New URLs were queued from outside the pipeline (seeds over the API): look again.
    pub fn work_added(&self) {
        self.shared.commits.fetch_add(1, Ordering::SeqCst);
        self.shared.wake.notify_one();
    }

    pub fn set_paused(&self, paused: bool) {
        self.shared.paused.store(paused, Ordering::SeqCst);
        self.shared.wake.notify_one();
    }

    pub fn paused(&self) -> bool {
        self.shared.paused.load(Ordering::SeqCst)
    }

    /// The writer's counts as of its last commit.
    pub fn tally(&self) -> Tally {
        self.shared
            .tally
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Records the page count now; called about once a second.
    pub fn sample(&self) {
        let now = Instant::now();
        let mut samples = self
            .shared
            .samples
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        samples.push_back((now, self.pages()));
        while samples
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > RATE_WINDOW)
        {
            samples.pop_front();
        }
    }

    /// Pages stored per second over the last minute (or since the start, if sooner).
    pub fn rate_last_minute(&self) -> f64 {
        let samples = self
            .shared
            .samples
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match (samples.front(), samples.back()) {
            (Some((t0, p0)), Some((t1, p1))) if t1 > t0 => {
                (p1 - p0) as f64 / t1.duration_since(*t0).as_secs_f64()
            }
            _ => 0.0,
        }
    }

    pub fn pages(&self) -> u64 {
        self.shared.pages.load(Ordering::Relaxed)
    }

    pub fn links(&self) -> u64 {
        self.shared.links.load(Ordering::Relaxed)
    }

    /// URLs leased and not yet committed.
    pub fn outstanding(&self) -> usize {
        self.shared.outstanding.load(Ordering::SeqCst)
    }

    fn commits(&self) -> u64 {
        self.shared.commits.load(Ordering::SeqCst)
    }

    fn take_released(&self) -> Vec<(Arc<str>, Release)> {
        std::mem::take(
            &mut *self
                .shared
                .released
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }
}

pub struct Dispatcher {
    frontier: Frontier,
    store: Store,
    jobs: flume::Sender<CrawlJob>,
    /// The fetchers' end of `jobs`, to take back what they have not started on a stop.
    unstarted: flume::Receiver<CrawlJob>,
    progress: Progress,
    window: usize,
    /// Pages this run may still hand out (`scope.max_pages` less what is stored).
    budget: Option<u64>,
    /// Keep running when the frontier is empty, waiting for seeds or recrawls.
    serve: bool,
    /// This node's name on its leases.
    owner: String,
    lease_for: Duration,
    /// On a database shared by several nodes: the hosts this node may crawl.
    hosts: Option<HostLeases>,
}

impl Dispatcher {
    pub fn new(
        frontier: Frontier,
        store: Store,
        (jobs, unstarted): (flume::Sender<CrawlJob>, flume::Receiver<CrawlJob>),
        progress: Progress,
        window: usize,
        budget: Option<u64>,
        serve: bool,
    ) -> Self {
        Self {
            serve,
            frontier,
            store,
            jobs,
            unstarted,
            progress,
            window,
            budget,
            owner: format!("pid-{}", std::process::id()),
            lease_for: LEASE_FOR,
            hosts: None,
        }
    }

    /// Leases as `owner`; with `hosts`, only rows of the hosts this node owns, for
    /// `lease_for` at a time (the leases' renewer extends them while the node lives).
    pub fn node(mut self, owner: &str, hosts: Option<(HostLeases, Duration)>) -> Self {
        owner.clone_into(&mut self.owner);
        if let Some((hosts, lease_for)) = hosts {
            self.hosts = Some(hosts);
            self.lease_for = lease_for;
        }
        self
    }

    /// Runs until the crawl is over, the page budget is spent, or `stop` is cancelled.
    /// Requests already started are finished by the stages downstream; rows still in the
    /// window — and on a stop, jobs no fetcher has started — go back to the queue.
    pub async fn run(mut self, stop: CancellationToken) -> Result<EndReason, Error> {
        let ended = self.dispatch(&stop).await;
        let mut unsent: Vec<i64> = self.frontier.drain().into_iter().map(|j| j.id).collect();
        if matches!(ended, Ok(EndReason::Interrupted) | Err(_)) {
            unsent.extend(self.unstarted.drain().map(|j| j.id));
        }
        self.progress
            .shared
            .outstanding
            .fetch_sub(unsent.len(), Ordering::SeqCst);
        self.store.release(&unsent).await?;
        ended
    }

    /// The window is refilled from the table once it is half empty, in one lease.
    fn wants_more(&self) -> bool {
        self.frontier.len() < self.window.div_ceil(2)
    }

    /// When the next queued row (a retry) comes due; a service also wakes for revisits.
    async fn next_due(&self) -> Result<Option<Duration>, Error> {
        let retry = self.store.next_due().await?;
        if !self.serve {
            return Ok(retry);
        }
        let revisit = self.store.next_recrawl().await?;
        Ok(match (retry, revisit) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    async fn dispatch(&mut self, stop: &CancellationToken) -> Result<EndReason, Error> {
        let mut timer = self.progress.stages.timer(Stage::Dispatch);
        let mut dispatched: u64 = 0;
        // The commit count at which the table last had nothing ready to lease, and when
        // its next delayed row (a retry) comes due.
        let mut drained_at: Option<u64> = None;
        let mut next_due: Option<Instant> = None;
        let mut next_rebalance = Instant::now();
        loop {
            if stop.is_cancelled() {
                return Ok(EndReason::Interrupted);
            }
            timer.enter(Phase::Working);
            let now = Instant::now();
            for (host, release) in self.progress.take_released() {
                self.frontier.release(&host, release, now);
            }
            if let Some(hosts) = self.hosts.as_ref().filter(|_| next_rebalance <= now) {
                let rebalanced = hosts
                    .rebalance(&self.store, &mut self.frontier, now)
                    .await?;
                self.progress
                    .shared
                    .outstanding
                    .fetch_sub(rebalanced.returned, Ordering::SeqCst);
                // Other nodes' commits do not bump ours: look at the table again.
                drained_at = None;
                next_rebalance = now + hosts.rebalance_every();
            }
            let budget_left = self.budget.map(|b| b.saturating_sub(dispatched));
            if budget_left == Some(0) {
                return Ok(EndReason::PageLimit);
            }

            let commits = self.progress.commits();
            let stale = drained_at != Some(commits) || next_due.is_some_and(|due| due <= now);
            if self.wants_more() && stale {
                let room = self.window - self.frontier.len();
                let want = budget_left.map_or(room, |left| {
                    let left = usize::try_from(left).unwrap_or(usize::MAX);
                    room.min(left.saturating_sub(self.frontier.len()))
                });
                if want > 0 {
                    if self.serve {
                        self.store.requeue_due_recrawls().await?;
                    }
                    let jobs = self.store.lease(&self.owner, want, self.lease_for).await?;
                    // A full lease says nothing about retries; the window's next refill
                    // looks again.
                    next_due = None;
                    if jobs.len() < want {
                        drained_at = Some(commits);
                        next_due = match &self.hosts {
                            // Other nodes' hosts are not this node's to wait for: it looks
                            // again at the next rebalance.
                            Some(_) => Some(next_rebalance),
                            None => self.next_due().await?.map(|wait| now + wait),
                        };
                    }
                    self.progress
                        .shared
                        .outstanding
                        .fetch_add(jobs.len(), Ordering::SeqCst);
                    for job in jobs {
                        self.frontier.push(job, now);
                    }
                }
            }

            let popped = if self.progress.paused()
                || self.hosts.as_ref().is_some_and(|h| !h.may_dispatch(now))
            {
                Pop::Idle
            } else {
                self.frontier.pop(now)
            };
            // A retry coming due matters only when the window has room to lease it;
            // waking for it otherwise would spin until the window drains.
            let due = next_due.filter(|_| self.wants_more());
            let wake_at = match popped {
                Pop::Job(job) => {
                    dispatched += 1;
                    let id = job.id;
                    timer.enter(Phase::Blocked);
                    tokio::select! {
                        sent = self.jobs.send_async(job) => {
                            if sent.is_err() {
                                return Err(Error::StageFailed("the fetch pool stopped".into()));
                            }
                        }
                        () = stop.cancelled() => {
                            self.progress.shared.outstanding.fetch_sub(1, Ordering::SeqCst);
                            self.store.release(&[id]).await?;
                            return Ok(EndReason::Interrupted);
                        }
                    }
                    continue;
                }
                Pop::WaitUntil(at) => Some(due.map_or(at, |due| due.min(at))),
                Pop::Idle => {
                    let idle = self.frontier.is_empty() && self.progress.outstanding() == 0;
                    let drained = idle && drained_at == Some(self.progress.commits());
                    let finished = match &self.hosts {
                        None => drained && next_due.is_none(),
                        // Over when no node has anything left: another may still find URLs.
                        Some(hosts) => drained && hosts.all_done().await?,
                    };
                    if finished && !self.serve {
                        return Ok(EndReason::FrontierEmpty);
                    }
                    if idle && drained_at != Some(self.progress.commits()) {
                        continue;
                    }
                    due
                }
            };
            timer.enter(Phase::Waiting);
            let wake_at = match (&self.hosts, wake_at) {
                (Some(_), Some(at)) => Some(at.min(next_rebalance)),
                (Some(_), None) => Some(next_rebalance),
                (None, at) => at,
            };
            let sleep = async {
                match wake_at {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = sleep => {}
                () = self.progress.shared.wake.notified() => {}
                () = stop.cancelled() => {}
            }
        }
    }
}
