//! The dispatcher: keeps the frontier window filled from the `frontier` table, hands ready
//! jobs to the fetch pool, and decides when the crawl is over.
//!
//! Parsing feeds the frontier (through the store), so closing channels can never end a
//! crawl by itself. The crawl is over when the window is empty, no leased URL is still on
//! its way to being committed, and the table had nothing queued after the last commit.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::Notify;
use tokio::task::{JoinError, JoinHandle};
use tokio_util::sync::CancellationToken;

use super::hosts::HostLeases;
use super::{Frontier, Pop, Release};
use crate::error::Error;
use crate::metrics;
use crate::page::{CrawlJob, JobKind};
use crate::recrawl::RecrawlPolicy;
use crate::scope::{Scope, SharedScope};
use crate::stages::{Phase, Stage, Stages};
use crate::store::{LeaseRows, Store};
use crate::summary::{EndReason, Tally};

/// The span `rate_last_minute` averages over.
const RATE_WINDOW: Duration = Duration::from_secs(60);

/// How long a lease lasts before another process may take the row, where leases are not
/// renewed (SQLite: one process owns the file, and takes every lease back at start).
const LEASE_FOR: Duration = Duration::from_secs(600);

/// How long a service sleeps at most for a revisit before it reads the wall clock again.
const WALL_RECHECK: Duration = Duration::from_secs(60);

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
    /// What requests still under way learned of their hosts; as bounded.
    learned: Mutex<Vec<(Arc<str>, Release)>>,
    /// Jobs handed back unrequested, their hosts not to be asked for a while; as bounded.
    later: Mutex<Vec<(CrawlJob, Release)>>,
    /// Leased rows not yet committed: in the window, fetching, parsing or being written.
    outstanding: AtomicUsize,
    /// Jobs dropped mid-fetch when a stop's grace period ran out, to go back to the queue.
    abandoned: Mutex<Vec<i64>>,
    /// Bumped by every commit, so the dispatcher knows when new rows may be queued.
    commits: AtomicU64,
    /// When the first of the revisits committed back to the queue to wait out a retry is
    /// due, since the dispatcher last looked: a service leases revisits apart, at their
    /// time, and would not know of it otherwise.
    revisit_retry: Mutex<Option<Instant>>,
    /// Pages fetched ([`Tally::fetched`]), which the rate counts: not trap rows.
    fetched: AtomicU64,
    /// Pages requested for the first time, which `scope.max_pages` counts.
    requested_pages: AtomicU64,
    links: AtomicU64,
    /// The writer's counts as of its last commit, for `/stats`.
    tally: Mutex<Tally>,
    /// Trap rows stored by a merge of staged URLs the dispatcher made, not yet in the
    /// writer's counts.
    trapped_apart: AtomicU64,
    /// Set by `POST /pause`: nothing new is handed out until `POST /resume`.
    paused: AtomicBool,
    /// Set when a service has handed out `scope.max_pages`: it stays up, fetching
    /// nothing more, and `/stats` must not look like a service at work.
    page_limit: AtomicBool,
    /// (when, pages stored) about once a second over the last minute.
    samples: Mutex<VecDeque<(Instant, u64)>>,
    wake: Notify,
}

impl Shared {
    /// `rows` leases ended. Never below zero: a send cut off by a stop may have handed its
    /// job or page on already, which is then counted as both given back and finished.
    fn settle(&self, rows: usize) {
        let _ = self
            .outstanding
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                Some(n.saturating_sub(rows))
            });
    }
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
        self.tell(&self.shared.released, (host, release));
    }

    /// A fetch to `host` learned, before its request, what spaces the host's requests.
    pub fn host_learned(&self, host: Arc<str>, learned: Release) {
        self.tell(&self.shared.learned, (host, learned));
    }

    /// Adds `news` to `list` and wakes the dispatcher to read it.
    fn tell<T>(&self, list: &Mutex<Vec<T>>, news: T) {
        list.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(news);
        self.shared.wake.notify_one();
    }

    /// A fetcher gives `job` back unrequested: its host may not be asked before
    /// `release.pause_until`, and the window holds it till then.
    pub fn hand_back(&self, job: CrawlJob, release: Release) {
        self.tell(&self.shared.later, (job, release));
    }

    /// The writer finished `rows` leased rows (stored, or queued for a retry); `tally`
    /// holds its running totals.
    pub fn committed(&self, rows: usize, tally: &Tally) {
        // Before the rows settle, so that they never look free of the page limit.
        self.shared
            .requested_pages
            .store(tally.requested_pages, Ordering::SeqCst);
        self.shared.settle(rows);
        self.shared
            .fetched
            .store(tally.fetched(), Ordering::Relaxed);
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

    /// Something other than the writer stored `rows` trap rows (a merge of staged URLs the
    /// dispatcher made; a start's merge, its cut to a lower page budget or a wider scope's
    /// pass): the writer counts them with its next commit, or at its end, and
    /// [`Progress::tally`] meanwhile (an idle service may not commit again); the metrics
    /// count them now. Uncounted, the summary of a crawl cut at its page budgets said fewer
    /// pages and traps than the database held, by those the last merges cut, and a run
    /// resumed with a lower budget none of those it cut.
    pub fn trapped_apart(&self, rows: u64) {
        self.shared.trapped_apart.fetch_add(rows, Ordering::Relaxed);
        metrics::trapped(rows);
    }

    /// The trap rows stored apart from the writer, since it last asked.
    pub fn take_trapped_apart(&self) -> u64 {
        self.shared.trapped_apart.swap(0, Ordering::Relaxed)
    }

    /// The writer put revisits back in the queue to wait out a retry, the first due at
    /// `due`. Told before [`Progress::committed`], which wakes the dispatcher.
    pub fn revisits_retried(&self, due: Instant) {
        let mut first = self
            .shared
            .revisit_retry
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *first = Some(first.map_or(due, |at| at.min(due)));
    }

    /// A fetch was cut short by the end of a stop's grace period.
    pub fn abandon(&self, id: i64) {
        self.shared
            .abandoned
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(id);
        self.shared.settle(1);
    }

    /// The jobs abandoned so far, and those handed back that the dispatcher, gone, did
    /// not take.
    pub fn take_abandoned(&self) -> Vec<i64> {
        let mut ids = take(&self.shared.abandoned);
        ids.extend(take(&self.shared.later).into_iter().map(|(job, _)| job.id));
        ids
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

    /// Whether `scope.max_pages` is reached and nothing more will be fetched.
    pub fn at_page_limit(&self) -> bool {
        self.shared.page_limit.load(Ordering::SeqCst)
    }

    /// The writer's counts as of its last commit, with the trap rows stored apart from it
    /// since.
    pub fn tally(&self) -> Tally {
        let mut tally = self
            .shared
            .tally
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        tally.count_trapped(self.shared.trapped_apart.load(Ordering::Relaxed));
        tally
    }

    /// Records the page count now; called about once a second.
    pub fn sample(&self) {
        self.sample_at(Instant::now());
    }

    fn sample_at(&self, now: Instant) {
        let mut samples = self
            .shared
            .samples
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        samples.push_back((now, self.shared.fetched.load(Ordering::Relaxed)));
        while samples
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > RATE_WINDOW)
        {
            samples.pop_front();
        }
    }

    /// Pages fetched per second over the last minute (or since the start, if sooner).
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

    pub fn links(&self) -> u64 {
        self.shared.links.load(Ordering::Relaxed)
    }

    fn requested_pages(&self) -> u64 {
        self.shared.requested_pages.load(Ordering::SeqCst)
    }

    /// URLs leased and not yet committed.
    pub fn outstanding(&self) -> usize {
        self.shared.outstanding.load(Ordering::SeqCst)
    }

    fn commits(&self) -> u64 {
        self.shared.commits.load(Ordering::SeqCst)
    }

    fn take_released(&self) -> Vec<(Arc<str>, Release)> {
        take(&self.shared.released)
    }

    fn take_learned(&self) -> Vec<(Arc<str>, Release)> {
        take(&self.shared.learned)
    }

    fn take_revisit_retry(&self) -> Option<Instant> {
        self.shared
            .revisit_retry
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

fn take<T>(list: &Mutex<Vec<T>>) -> Vec<T> {
    std::mem::take(&mut *list.lock().unwrap_or_else(PoisonError::into_inner))
}

pub struct Dispatcher {
    frontier: Frontier,
    store: Store,
    jobs: flume::Sender<CrawlJob>,
    /// The fetchers' end of `jobs`, to take back what they have not started on a stop.
    unstarted: flume::Receiver<CrawlJob>,
    progress: Progress,
    window: usize,
    limit: PageLimit,
    /// Which revisits are still made: a row queued for one that the config no longer
    /// makes is not fetched.
    recrawl: RecrawlPolicy,
    /// Keep running when the frontier is empty, waiting for seeds or recrawls.
    serve: bool,
    /// This node's name on its leases.
    owner: String,
    lease_for: Duration,
    /// On a database shared by several nodes: the hosts this node may crawl.
    hosts: Option<HostLeases>,
    /// The last lease was held back by `scope.max_pages`, which on a database shared by
    /// several nodes leases count against what every node stored and holds leased.
    page_limit_reached: bool,
    /// The lease refilling the window, while it runs.
    refill: Option<Refill>,
    /// `traps.max_pages_per_host`, which a merge of the staged URLs spends.
    max_pages_per_host: u64,
    /// `retry.max_delay_ms`: no retry waits longer (see [`next_due`]).
    longest_retry: Duration,
    /// When a service next leases the revisits due, apart from the window's refills: a
    /// revisit falls due at its time, not when the window next runs low. None in a
    /// one-off crawl, or with no revisits configured.
    next_revisit: Option<Instant>,
    /// The scope every URL in the window was checked against; None when a lease pushed
    /// URLs checked against another.
    scoped: Option<Arc<Scope>>,
}

/// `scope.max_pages`, read from the scope a SIGHUP may replace, against the pages the
/// database held when this run began and those it requested since. Requests to be tried
/// again and revisits store no new page, and a URL robots.txt disallows is not
/// requested, so they leave the limit alone.
pub struct PageLimit {
    pub scope: SharedScope,
    pub stored: u64,
    /// URLs asked again (`--retry-failed`) store no new page either: at the limit they
    /// are leased beside revisits.
    pub asks_again: bool,
}

impl PageLimit {
    fn max(&self) -> Option<u64> {
        self.scope.get().max_pages
    }

    /// Whether the database holds `scope.max_pages` pages requested.
    fn reached(&self, progress: &Progress) -> bool {
        self.max()
            .is_some_and(|max| self.stored.saturating_add(progress.requested_pages()) >= max)
    }

    /// Rows that may still be leased: every leased row not yet committed may become a
    /// new page.
    fn left(&self, progress: &Progress) -> Option<u64> {
        self.max()
            .map(|max| max.saturating_sub(Self::pages_to_be(self.stored, progress)))
    }

    /// Rows leased beyond the limit, which a reload lowered below what they may make.
    fn over(&self, progress: &Progress) -> usize {
        self.max().map_or(0, |max| {
            let over = Self::pages_to_be(self.stored, progress).saturating_sub(max);
            usize::try_from(over).unwrap_or(usize::MAX)
        })
    }

    /// The pages stored, and those the rows leased may yet become.
    fn pages_to_be(stored: u64, progress: &Progress) -> u64 {
        // Outstanding rows, then new pages: a commit adds its new pages before it settles
        // its rows, so one between the two reads is counted twice, never not at all.
        let outstanding = progress.outstanding() as u64;
        stored
            .saturating_add(progress.requested_pages())
            .saturating_add(outstanding)
    }
}

/// A lease running beside dispatching. On SQLite it waits for the one connection behind
/// the writer's commit, which can take a good part of a second under load; were the
/// dispatcher to wait with it, the window's jobs would stop going out, requests in flight
/// would dwindle and the cores would sit idle when the slow responses came back.
struct Refill {
    task: JoinHandle<Result<Leased, Error>>,
    asked: Asked,
}

/// What a lease asked for, which reading its answer needs.
#[derive(Clone, Copy)]
struct Asked {
    want: usize,
    /// The commit count when the lease started: what a short lease says about the table
    /// holds as of then.
    commits: u64,
    /// The rows the window is refilled from.
    rows: LeaseRows,
    /// A lease of the revisits due, beside the window's refills.
    revisits: bool,
}

struct Leased {
    /// The rows leased that the scope still keeps.
    jobs: Vec<CrawlJob>,
    /// The rows leased, kept or not: fewer than asked for means the table ran short.
    taken: usize,
    /// The crawl's page limit held the lease back (a database shared by several nodes).
    page_limit_reached: bool,
    /// When the table's next delayed row (a retry) comes due; asked only when the lease
    /// came back short, and only where this node owns the whole table.
    next_due: Option<Instant>,
    /// In a service with revisits: when the next revisit is due, or the wall clock is to
    /// be read again, whichever is sooner.
    next_revisit: Option<Instant>,
    /// The scope `jobs` were checked against.
    scope: Arc<Scope>,
    /// Trap rows stored by the merge of staged URLs a short lease made.
    trapped: u64,
}

/// What the last lease that came back short said about the table.
#[derive(Default)]
struct Drained {
    /// The commit count as of which the table had nothing ready to lease.
    at: Option<u64>,
    /// When its next delayed row comes due.
    next_due: Option<Instant>,
    /// The rows it looked for: at the page limit, revisits only. A limit raised since
    /// leaves the rest of the table unasked.
    rows: LeaseRows,
    /// The window's last lease took all it asked for: more may wait behind the window.
    more: bool,
}

/// How soon after its last rebalance a node with nothing to lease looks for hosts again,
/// when its own commits since may have queued URLs on hosts no node holds.
const CLAIM_SOON: Duration = Duration::from_millis(20);

/// When a node sharing the database next rebalances: at its `turn`, or [`CLAIM_SOON`]
/// after the `last` one (its time and the commit count then) when its window is `empty`
/// and the table had nothing to lease as of its latest commit (`drained_at`), which came
/// after that rebalance. The URLs its pages found on hosts no node holds waited a turn (a
/// second) each to be claimed: a crawl going from host to host (a crawl's first pages, a
/// site whose every page is on another host) ran at a page a second.
fn rebalance_at(
    turn: Instant,
    (last, last_commits): (Instant, u64),
    (commits, drained_at): (u64, Option<u64>),
    empty: bool,
) -> Instant {
    if empty && drained_at == Some(commits) && commits != last_commits {
        turn.min(last + CLAIM_SOON)
    } else {
        turn
    }
}

impl Dispatcher {
    pub fn new(
        frontier: Frontier,
        store: Store,
        (jobs, unstarted): (flume::Sender<CrawlJob>, flume::Receiver<CrawlJob>),
        progress: Progress,
        window: usize,
        (limit, recrawl): (PageLimit, RecrawlPolicy),
        serve: bool,
    ) -> Self {
        Self {
            scoped: Some(limit.scope.get()),
            serve,
            frontier,
            store,
            jobs,
            unstarted,
            progress,
            window,
            limit,
            recrawl,
            owner: format!("pid-{}", std::process::id()),
            lease_for: LEASE_FOR,
            hosts: None,
            page_limit_reached: false,
            refill: None,
            max_pages_per_host: 0,
            longest_retry: Duration::MAX,
            next_revisit: None,
        }
    }

    /// Merges the staged URLs within `max_pages_per_host` when a lease needs them.
    pub fn host_budget(mut self, max_pages_per_host: u64) -> Self {
        self.max_pages_per_host = max_pages_per_host;
        self
    }

    /// Waits for no retry longer than `longest` (`retry.max_delay_ms`) from now.
    pub fn longest_retry(mut self, longest: Duration) -> Self {
        self.longest_retry = longest;
        self
    }

    /// Leases as `owner`; with `hosts`, only rows of the hosts this node owns, for
    /// `lease_for` at a time (the leases' renewer extends them while the node lives),
    /// and no more than `scope.max_pages` for all the nodes together.
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
        // A lease still running leases rows all the same; they were never counted.
        if let Some(refill) = self.refill.take() {
            if let Ok(Ok(leased)) = refill.task.await {
                unsent.extend(leased.jobs.iter().map(|j| j.id));
            }
        }
        self.store.release(&self.owner, &unsent).await?;
        ended
    }

    /// Puts jobs handed back unrequested in the window again, behind their hosts'
    /// pauses, if the scope in force keeps them: one a fetch worker held while a reload
    /// checked the window (waiting for its host's robots.txt) was checked against the
    /// scope before, and is left out as the window's were. Where hosts are shared with
    /// other nodes, the host may have been handed to another meanwhile: the row goes
    /// back to the queue instead, for its owner, whose lease judges it.
    async fn take_back(&mut self, now: Instant) -> Result<(), Error> {
        let later = take(&self.progress.shared.later);
        if later.is_empty() {
            return Ok(());
        }
        let scope = self.limit.scope.get();
        let mut queued = Vec::new();
        let mut refused = Vec::new();
        for (job, release) in later {
            let host = Arc::clone(&job.host);
            self.frontier.release(&host, release, now);
            if self.hosts.is_some() {
                queued.push(job.id);
            } else if scope.keeps(&job) {
                self.frontier.push(job, now);
            } else {
                refused.push(job);
            }
        }
        self.leave_out_refused(refused, &scope, now).await?;
        if !queued.is_empty() {
            self.progress.shared.settle(queued.len());
            self.store.release(&self.owner, &queued).await?;
        }
        Ok(())
    }

    /// Puts the jobs no fetcher has started back in the window.
    fn take_back_unstarted(&mut self, now: Instant) {
        for job in self.unstarted.drain() {
            let host = Arc::clone(&job.host);
            self.frontier.release(&host, Release::default(), now);
            self.frontier.push(job, now);
        }
    }

    /// Leaves out the URLs in the window (and those no fetcher has started) that the
    /// scope, replaced since they were leased, no longer keeps, as a lease leaves them
    /// out: a reload excluding what the crawl is busy with (a calendar trap) had up to
    /// `frontier.window` of them fetched all the same. New URLs past a `max_pages` the
    /// reload lowered go back to the queue, the best kept, as a lease would not have
    /// taken them.
    async fn rescope(&mut self, now: Instant) -> Result<(), Error> {
        let scope = self.limit.scope.get();
        if self
            .scoped
            .as_ref()
            .is_some_and(|scoped| Arc::ptr_eq(scoped, &scope))
        {
            return Ok(());
        }
        self.scoped = Some(Arc::clone(&scope));
        self.take_back_unstarted(now);
        let refused = self.frontier.take_unless(|job| scope.keeps(job), now);
        self.leave_out_refused(refused, &scope, now).await?;
        self.frontier
            .reprioritize(|job| scope.priority(&job.url, job.depth), now);
        let held: Vec<i64> = self
            .frontier
            .take_last_new(self.limit.over(&self.progress), now)
            .iter()
            .map(|job| job.id)
            .collect();
        self.progress.shared.settle(held.len());
        self.store.release(&self.owner, &held).await
    }

    /// Ends the leases of the jobs `scope` refuses, as a lease does, but for those whose
    /// rows moved up to a depth it keeps, which go back in the window.
    async fn leave_out_refused(
        &mut self,
        refused: Vec<CrawlJob>,
        scope: &Scope,
        now: Instant,
    ) -> Result<(), Error> {
        let left_out = self.moved_up(refused, scope, now).await?;
        self.progress.shared.settle(left_out.len());
        leave_out(&self.store, &self.owner, left_out).await
    }

    /// Puts back in the window the jobs of `refused` that `scope` keeps at the depth
    /// their rows moved up to since they were leased (on SQLite a URL found nearer the
    /// seeds moves up leased: a seed a reload names is at depth 0, which no scope leaves
    /// out); returns the others.
    async fn moved_up(
        &mut self,
        refused: Vec<CrawlJob>,
        scope: &Scope,
        now: Instant,
    ) -> Result<Vec<CrawlJob>, Error> {
        let leased_at = refused.iter().map(|job| (job.id, job.depth)).collect();
        let nearer = self.store.nearer_depths(&leased_at).await?;
        let mut left_out = Vec::new();
        for mut job in refused {
            if let Some(&depth) = nearer.get(&job.id) {
                job.depth = depth;
                if scope.keeps(&job) {
                    self.frontier.push(job, now);
                    continue;
                }
            }
            left_out.push(job);
        }
        Ok(left_out)
    }

    /// The URLs in the window that count against it: where revisits are leased apart
    /// (`rows` new URLs), not those.
    fn in_window(&self, rows: LeaseRows) -> usize {
        match rows {
            LeaseRows::New => self.frontier.len() - self.frontier.revisits(),
            _ => self.frontier.len(),
        }
    }

    /// The window is refilled from the table once it is half empty, in one lease.
    fn wants_more(&self, rows: LeaseRows) -> bool {
        self.in_window(rows) < self.window.div_ceil(2)
    }

    /// Whether the window takes the revisits due now. Revisits have a window's worth of
    /// room of their own, beside the window's URLs, and are leased once half of it is
    /// free, as the window is.
    fn wants_revisits(&self) -> bool {
        self.frontier.revisits() < self.window.div_ceil(2)
    }

    /// When to lease the revisits due next, if the window would take them. Not while
    /// paused: none would be fetched, and leased they counted as in progress, climbing
    /// through a pause to every revisit due; they wait in the queue for the resume (whose
    /// wake brings them).
    fn revisits_due(&self, rows: LeaseRows) -> Option<Instant> {
        self.next_revisit.filter(|_| {
            rows == LeaseRows::New
                && self.refill.is_none()
                && self.wants_revisits()
                && !self.progress.paused()
        })
    }

    /// Starts leasing up to `want` of `rows`; with `revisits`, the revisits due, beside
    /// the window's refills.
    fn start_refill(&mut self, asked: Asked) {
        let Asked {
            want,
            rows,
            revisits,
            ..
        } = asked;
        let store = self.store.clone();
        let owner = self.owner.clone();
        let (lease_for, serve) = (self.lease_for, self.serve);
        let whole_table = self
            .hosts
            .is_none()
            .then_some((self.max_pages_per_host, self.longest_retry))
            .filter(|_| !revisits);
        let leased_rows = if revisits { LeaseRows::Revisits } else { rows };
        // A revisit replaces its page: it is never held back by the page limit.
        let max_pages = self
            .hosts
            .as_ref()
            .and(self.limit.max())
            .filter(|_| !revisits);
        let (scope, recrawl) = (self.limit.scope.clone(), self.recrawl.clone());
        let task = tokio::spawn(async move {
            lease(
                &store,
                (&owner, &scope, &recrawl),
                (want, max_pages, leased_rows),
                lease_for,
                serve,
                whole_table,
            )
            .await
        });
        self.refill = Some(Refill { task, asked });
    }

    /// Waits for the running lease, if any, and takes its jobs.
    async fn settle_refill(
        &mut self,
        drained: &mut Drained,
        next_rebalance: Instant,
    ) -> Result<(), Error> {
        let Some(refill) = self.refill.take() else {
            return Ok(());
        };
        let leased = refill.task.await;
        self.take_refill(refill.asked, leased, drained, next_rebalance)
    }

    /// Puts a finished lease's jobs in the window and notes what it said about the table.
    fn take_refill(
        &mut self,
        asked: Asked,
        leased: Result<Result<Leased, Error>, JoinError>,
        drained: &mut Drained,
        next_rebalance: Instant,
    ) -> Result<(), Error> {
        let leased = leased
            .map_err(|e| Error::StageFailed(format!("the frontier lease stopped: {e}")))??;
        self.progress.trapped_apart(leased.trapped);
        let Asked {
            want,
            commits,
            rows,
            revisits,
        } = asked;
        let now = Instant::now();
        if !self
            .scoped
            .as_ref()
            .is_some_and(|scoped| Arc::ptr_eq(scoped, &leased.scope))
        {
            self.scoped = None;
        }
        // Revisits still queued after a full lease of them are leased once there is room.
        self.next_revisit = match leased.next_revisit {
            _ if revisits && leased.taken == want => Some(now),
            Some(at) if !revisits => self.next_revisit.map(|due| due.min(at)),
            next => next,
        };
        if revisits {
            // The revisits due tell nothing of the window's other rows.
            self.push_leased(leased.jobs, now);
            return Ok(());
        }
        // A full lease says nothing about retries; the window's next refill looks again.
        drained.next_due = None;
        drained.more = leased.taken == want;
        self.page_limit_reached = leased.page_limit_reached;
        if leased.taken < want {
            drained.at = Some(commits);
            drained.rows = rows;
            drained.next_due = match &self.hosts {
                // Other nodes' hosts are not this node's to wait for: it looks again at
                // the next rebalance.
                Some(_) => Some(next_rebalance),
                None => leased.next_due,
            };
        }
        self.push_leased(leased.jobs, now);
        Ok(())
    }

    /// When this node next rebalances ([`rebalance_at`]): at its `turn`, or soon after
    /// the `last` when its window is empty after its own commits.
    fn rebalance_due(&self, drained: &Drained, (turn, last): (Instant, (Instant, u64))) -> Instant {
        rebalance_at(
            turn,
            last,
            (self.progress.commits(), drained.at),
            self.frontier.is_empty() && self.refill.is_none(),
        )
    }

    /// Puts leased jobs in the window.
    fn push_leased(&mut self, jobs: Vec<CrawlJob>, now: Instant) {
        // A row already in the window can come back if its lease ran out meanwhile: it is
        // this node's again, and counted once.
        let mut new = 0;
        for job in jobs {
            new += usize::from(self.frontier.push(job, now));
        }
        self.progress
            .shared
            .outstanding
            .fetch_add(new, Ordering::SeqCst);
    }

    async fn dispatch(&mut self, stop: &CancellationToken) -> Result<EndReason, Error> {
        let mut timer = self.progress.stages.timer(Stage::Dispatch);
        let mut drained = Drained::default();
        let mut next_rebalance = Instant::now();
        let mut last_rebalance = (next_rebalance, self.progress.commits());
        // The revisits queued at the start are due now.
        if self.serve && self.recrawl.enabled() {
            self.next_revisit = Some(next_rebalance);
        }
        loop {
            if stop.is_cancelled() {
                return Ok(EndReason::Interrupted);
            }
            timer.enter(Phase::Working);
            let now = Instant::now();
            for (host, learned) in self.progress.take_learned() {
                self.frontier.learned(&host, learned, now);
            }
            // Jobs handed back before the releases that came with them: one waiting for a
            // request to end (an answer, a place at its address) hears of it here, rather
            // than find it gone and wait out a guess.
            self.take_back(now).await?;
            for (host, release) in self.progress.take_released() {
                self.frontier.release(&host, release, now);
            }
            if self.refill.as_ref().is_some_and(|r| r.task.is_finished())
                // A lease running now may return rows of a host about to be handed away.
                || (self.hosts.is_some()
                    && self.rebalance_due(&drained, (next_rebalance, last_rebalance)) <= now)
            {
                self.settle_refill(&mut drained, next_rebalance).await?;
            }
            // Not while a lease runs: a lease of revisits says when the next is due as of
            // its start, which may be before this retry was queued.
            if self.refill.is_none() {
                if let Some(at) = self.progress.take_revisit_retry() {
                    self.next_revisit = self.next_revisit.map(|due| due.min(at));
                }
            }
            self.rescope(now).await?;
            let due = self.rebalance_due(&drained, (next_rebalance, last_rebalance));
            if let Some(hosts) = self.hosts.as_ref().filter(|_| due <= now) {
                let rebalanced = hosts
                    .rebalance(
                        &self.store,
                        &mut self.frontier,
                        (now, self.progress.paused()),
                    )
                    .await?;
                self.progress
                    .shared
                    .outstanding
                    .fetch_sub(rebalanced.returned, Ordering::SeqCst);
                // Other nodes' commits do not bump ours: look at the table again.
                drained.at = None;
                next_rebalance = now + hosts.rebalance_every();
                last_rebalance = (now, self.progress.commits());
            }
            // Other nodes' pages count too: once the pages stored come to the limit,
            // this node ends when its window is empty, as at its own limit.
            let at_limit = self.limit.reached(&self.progress)
                || (self.page_limit_reached && self.frontier.is_empty());
            // A node sharing the database ends, handing its hosts to the others.
            if at_limit && self.hosts.is_some() {
                return Ok(EndReason::PageLimit);
            }
            if self
                .progress
                .shared
                .page_limit
                .swap(at_limit, Ordering::SeqCst)
                != at_limit
            {
                if at_limit {
                    tracing::info!("scope.max_pages reached: only revisits are fetched");
                } else {
                    tracing::info!("scope.max_pages raised: fetching again");
                }
            }
            // Leases never outrun the limit: with no new page left in it, only revisits
            // (which replace their pages) are leased, until a reload raises it. A crawl
            // then ends when none is due; a service keeps its API up and waits for them.
            // Below it a service leases its revisits apart, as they fall due.
            let left = self.limit.left(&self.progress);
            let rows = match left {
                Some(0) if self.limit.asks_again => LeaseRows::Stored,
                Some(0) => LeaseRows::Revisits,
                _ if self.next_revisit.is_some() => LeaseRows::New,
                _ => LeaseRows::Any,
            };
            let commits = self.progress.commits();
            let stale = drained.at != Some(commits)
                || drained.rows != rows
                || drained.next_due.is_some_and(|due| due <= now);
            if stale && rows == LeaseRows::Revisits && !self.recrawl.enabled() {
                // At the limit with no revisits configured the table has nothing to
                // lease; asking it read every queued row, once a commit, on the writer's
                // connection, through the crawl's last pages.
                drained = Drained {
                    at: Some(commits),
                    next_due: None,
                    rows,
                    more: false,
                };
            } else if self.refill.is_none()
                && self.wants_more(rows)
                && stale
                && !(rows.of_stored_pages() && self.progress.paused())
            {
                // (Not while paused at the page limit, where the window takes only stored
                // pages' rows: they wait in the queue then, as `revisits_due`'s do.)
                let room = self.window - self.in_window(rows);
                let want = match left {
                    Some(left) if left > 0 => room.min(usize::try_from(left).unwrap_or(usize::MAX)),
                    _ => room,
                };
                self.start_refill(Asked {
                    want,
                    commits,
                    rows,
                    revisits: false,
                });
            } else if self.revisits_due(rows).is_some_and(|at| at <= now) {
                let want = self.window - self.frontier.revisits();
                self.start_refill(Asked {
                    want,
                    commits,
                    rows,
                    revisits: true,
                });
            }

            let paused = self.progress.paused();
            if paused {
                // Jobs queued for the fetch pool have not started: they wait in the
                // window for the resume, or a pause would let up to a channel's worth
                // of requests (`channels.to_fetch`) go out after it.
                self.take_back_unstarted(now);
            }
            let popped = if paused || self.hosts.as_ref().is_some_and(|h| !h.may_dispatch(now)) {
                Pop::Idle
            } else {
                self.frontier.pop(now)
            };
            // A retry coming due matters only when the window has room to lease it;
            // waking for it otherwise would spin until the window drains.
            let due = drained.next_due.filter(|_| self.wants_more(rows));
            let due = match (due, self.revisits_due(rows)) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let waiting_for_hosts = matches!(popped, Pop::WaitUntil(_));
            // Too full to refill, the window keeps what is queued behind it waiting.
            let window_full = drained.more && !self.wants_more(rows);
            let wake_at = match popped {
                Pop::Job(job) => {
                    let id = job.id;
                    timer.enter(Phase::Blocked);
                    tokio::select! {
                        sent = self.jobs.send_async(job) => {
                            if sent.is_err() {
                                return Err(Error::StageFailed("the fetch pool stopped".into()));
                            }
                        }
                        () = stop.cancelled() => {
                            self.progress.shared.settle(1);
                            self.store.release(&self.owner, &[id]).await?;
                            return Ok(EndReason::Interrupted);
                        }
                    }
                    continue;
                }
                Pop::WaitUntil(at) => Some(due.map_or(at, |due| due.min(at))),
                Pop::Idle => {
                    let idle = self.frontier.is_empty()
                        && self.progress.outstanding() == 0
                        && self.refill.is_none();
                    let empty =
                        idle && drained.at == Some(self.progress.commits()) && drained.rows == rows;
                    let finished = match &self.hosts {
                        None => empty && drained.next_due.is_none(),
                        Some(hosts) if empty => {
                            // Rows leased to this node while it holds none come from a
                            // lease whose answer a lost connection took (the step was run
                            // again, see `store::outage`): renewed as this node's for as
                            // long as it lives, they would keep every node waiting.
                            let stranded = self.store.recover_leases(&self.owner).await?;
                            if stranded > 0 {
                                tracing::warn!(
                                    stranded,
                                    "URLs leased to this node but never handed out: queued again"
                                );
                                drained.at = None;
                                continue;
                            }
                            // Over when no node has anything left: another may still find
                            // URLs.
                            hosts.all_done().await?
                        }
                        Some(_) => false,
                    };
                    if finished && !self.serve {
                        return Ok(match rows {
                            LeaseRows::Any | LeaseRows::New => EndReason::FrontierEmpty,
                            LeaseRows::Revisits | LeaseRows::Stored => EndReason::PageLimit,
                        });
                    }
                    if idle && (drained.at != Some(self.progress.commits()) || drained.rows != rows)
                    {
                        continue;
                    }
                    due
                }
            };
            // With the window empty, the crawl waits on the lease running: the dispatcher's
            // own work. Counted as waiting, a window too small for the fetch pool (refilled
            // a few URLs a lease) left every stage looking idle and none the limit.
            let leasing = self.refill.is_some() && self.frontier.is_empty();
            timer.enter(if leasing {
                Phase::Working
            } else {
                Phase::Waiting
            });
            let rebalance = self.rebalance_due(&drained, (next_rebalance, last_rebalance));
            let wake_at = match (&self.hosts, wake_at) {
                (Some(_), Some(at)) => Some(at.min(rebalance)),
                (Some(_), None) => Some(rebalance),
                (None, at) => at,
            };
            let sleep = async {
                match wake_at {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            let refill = self.refill.as_mut().map(|r| (&mut r.task, r.asked));
            let refilled = async {
                match refill {
                    Some((task, started)) => (task.await, started),
                    None => std::future::pending().await,
                }
            };
            let waited_from = Instant::now();
            let refilled = tokio::select! {
                () = sleep => None,
                () = self.progress.shared.wake.notified() => None,
                () = stop.cancelled() => None,
                done = refilled => Some(done),
            };
            if waiting_for_hosts {
                self.progress
                    .stages
                    .waited_for_hosts(waited_from.elapsed(), window_full);
            }
            if let Some((leased, started)) = refilled {
                self.refill = None;
                self.take_refill(started, leased, &mut drained, next_rebalance)?;
            }
        }
    }
}

/// Leases up to `want` rows, within `max_pages` on a shared database (a service first
/// queues the revisits that are due, where `rows` are revisits or it makes none: with
/// revisits, a lease of them apart does); when the table has fewer ready, also asks when
/// its next delayed row comes due. `whole_table` is `traps.max_pages_per_host` and
/// `retry.max_delay_ms` where this node owns the whole table (SQLite). A service with
/// revisits also learns when the next is due.
///
/// The scope may have narrowed since the rows were queued (a resumed crawl's config, a
/// reload): those it now leaves out are never fetched, their rows failed with no page;
/// a URL with a page it leaves out (a revisit, a failure asked again), or a revisit the
/// config no longer makes, is not fetched, its page left as stored. Done here, beside
/// the lease, as the write may wait for the writer's commit.
async fn lease(
    store: &Store,
    (owner, scope, recrawl): (&str, &SharedScope, &RecrawlPolicy),
    (want, max_pages, rows): (usize, Option<u64>, LeaseRows),
    lease_for: Duration,
    serve: bool,
    whole_table: Option<(u64, Duration)>,
) -> Result<Leased, Error> {
    let requeue = serve && matches!(rows, LeaseRows::Revisits | LeaseRows::Stored);
    if requeue {
        store.requeue_due_recrawls(false).await?;
    }
    let next_revisit = if serve && recrawl.enabled() {
        let wait = store.next_recrawl().await?;
        Some(Instant::now() + wait.map_or(WALL_RECHECK, |wait| wait.min(WALL_RECHECK)))
    } else {
        None
    };
    let mut lease = store
        .lease(owner, want, lease_for, (max_pages, rows))
        .await?;
    // The writer leaves found URLs staged while it counts a window of URLs due; those it
    // counted may since have been leased and left out (a scope narrowed since they were
    // queued), with no commit after them to merge: a short lease merges, or the crawl
    // would end with them waiting.
    let short = lease.jobs.len() < want && matches!(rows, LeaseRows::Any | LeaseRows::New);
    let mut trapped = 0;
    if let Some((max_pages_per_host, _)) = whole_table.filter(|_| short) {
        if store.staged_count().await? > 0 {
            trapped = store.merge_staged(max_pages_per_host).await?;
            let more = want - lease.jobs.len();
            let more = store
                .lease(owner, more, lease_for, (max_pages, rows))
                .await?;
            lease.jobs.extend(more.jobs);
        }
    }
    if whole_table.is_none() {
        widen_to_other_nodes_seeds(store, scope, &lease.jobs).await?;
    }
    let taken = lease.jobs.len();
    let scope = scope.get();
    let (jobs, left_out): (Vec<CrawlJob>, Vec<CrawlJob>) = lease
        .jobs
        .into_iter()
        .partition(|job| scope.keeps(job) && (!job.is_revisit() || recrawl.revisits(&job.url)));
    leave_out(store, owner, left_out).await?;
    let next_due = match whole_table.filter(|_| taken < want) {
        Some((_, longest_retry)) => next_due(store, requeue, rows, longest_retry)
            .await?
            .map(|wait| Instant::now() + wait),
        None => None,
    };
    Ok(Leased {
        jobs,
        taken,
        page_limit_reached: lease.page_limit_reached,
        next_due,
        next_revisit,
        scope,
        trapped,
    })
}

/// Puts in scope the hosts other nodes took into theirs while this one runs (where a seed
/// moved, by a 3xx or a refresh; a seed added over their API), once it leases a page on
/// one: its own scope, read when it started, lacked them, and it dropped the links on
/// those pages as out of scope. The stored seeds and their redirects are read again, as
/// a reload reads them.
async fn widen_to_other_nodes_seeds(
    store: &Store,
    scope: &SharedScope,
    jobs: &[CrawlJob],
) -> Result<(), Error> {
    let lacking = |scope: &Scope| {
        jobs.iter()
            .any(|job| job.kind == JobKind::Page && scope.widened_by_seed(&job.url))
    };
    if !lacking(&scope.get()) {
        return Ok(());
    }
    // Under the lock a reload or the writer takes, so that neither drops the hosts.
    let _changing = scope.changing().await;
    let seeds = store.seeds_in_scope().await?;
    let widened = scope.get().with_seeds(&seeds);
    scope.set(widened);
    Ok(())
}

/// Ends the leases of `left_out`, jobs the scope or the config's revisits leave out
/// since they were queued: a URL never fetched is failed with no page, a revisit leaves
/// its page as stored.
async fn leave_out(store: &Store, owner: &str, left_out: Vec<CrawlJob>) -> Result<(), Error> {
    let (revisits, never_fetched): (Vec<CrawlJob>, Vec<CrawlJob>) =
        left_out.into_iter().partition(|job| job.previous.is_some());
    let ids = |jobs: Vec<CrawlJob>| -> Vec<i64> { jobs.iter().map(|job| job.id).collect() };
    store.drop_out_of_scope(owner, &ids(never_fetched)).await?;
    store.drop_revisits(owner, &ids(revisits)).await
}

/// When the next queued row of `rows` (a retry) comes due; a service also wakes for
/// revisits, at least every [`WALL_RECHECK`] while one is scheduled. A retry due later
/// than `longest_retry` from now, which no backoff asks for, was queued before the clock
/// stepped back: it and any others so far off are brought back to `longest_retry`, or
/// the crawl would wait as long as the step.
async fn next_due(
    store: &Store,
    serve: bool,
    rows: LeaseRows,
    longest_retry: Duration,
) -> Result<Option<Duration>, Error> {
    let mut retry = store.next_due(rows).await?;
    if retry.is_some_and(|wait| wait > longest_retry) {
        store
            .bring_back_far_times(SystemTime::now(), longest_retry)
            .await?;
        retry = store.next_due(rows).await?;
    }
    if !serve {
        return Ok(retry);
    }
    // Due by the wall clock, waited for on the monotonic one: a suspend or a step forward
    // would make the revisit late by as much, had the wall clock not been read again.
    let revisit = store
        .next_recrawl()
        .await?
        .map(|wait| wait.min(WALL_RECHECK));
    Ok(match (retry, revisit) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    })
}

#[cfg(test)]
mod tests {
    use sqlx::{Connection, SqliteConnection};

    use super::*;
    use crate::politeness::Politeness;
    use crate::scope::Scope;
    use crate::stages::Queues;

    const PATIENCE: Duration = Duration::from_secs(5);

    /// A node with its window empty after its own commit, the table having nothing to
    /// lease, claims the hosts those pages found soon, not at its next turn; otherwise
    /// it keeps its turn.
    #[test]
    fn an_idle_node_after_its_own_commit_rebalances_soon() {
        let last = Instant::now();
        let turn = last + Duration::from_secs(1);
        let soon = last + CLAIM_SOON;
        // (commits, drained at, window empty) → when.
        let cases = [
            ((4, Some(4), true), soon),
            ((4, Some(4), false), turn),
            ((4, Some(3), true), turn),
            ((4, None, true), turn),
            ((3, Some(3), true), turn),
        ];
        for ((commits, drained_at, empty), due) in cases {
            assert_eq!(
                rebalance_at(turn, (last, 3), (commits, drained_at), empty),
                due,
                "{commits} commits, drained at {drained_at:?}, window empty: {empty}"
            );
        }
    }

    async fn next_job(jobs: &flume::Receiver<CrawlJob>) -> Option<i64> {
        tokio::time::timeout(PATIENCE, jobs.recv_async())
            .await
            .ok()
            .and_then(Result::ok)
            .map(|job| job.id)
    }

    /// A store in `dir`, and a second connection to its database.
    async fn store_and_connection(dir: &tempfile::TempDir) -> (Store, SqliteConnection) {
        let path = dir.path().join("crawl.db");
        let store = Store::open(&path.display().to_string())
            .await
            .expect("open the store");
        let other = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .expect("a second connection");
        (store, other)
    }

    /// A refill waiting for the database — here for another connection's write lock, as
    /// it waits behind the writer's commit in a crawl — must not hold up the jobs that
    /// are in the window already.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_window_keeps_draining_while_a_lease_waits_for_the_database() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let (store, mut other) = store_and_connection(&dir).await;
        for i in 1..=8 {
            sqlx::query("INSERT INTO frontier (url, host, depth, priority) VALUES (?, 'h', 0, 0)")
                .bind(format!("http://h/{i}"))
                .execute(&mut other)
                .await
                .expect("queue a URL");
        }
        let config = crate::Config::from_toml(
            "seeds = ['http://h/']\n[politeness]\nper_host_concurrency = 100\ndelay_ms = 0\n",
            "test",
        )
        .expect("config");
        let progress = Progress::new(Stages::new(Queues::idle()));
        let (jobs_tx, jobs) = flume::bounded(1);
        let dispatcher = Dispatcher::new(
            Frontier::new(Politeness::new(&config.politeness)),
            store,
            (jobs_tx, jobs.clone()),
            progress,
            4,
            (
                PageLimit {
                    scope: SharedScope::new(Scope::new(&config, &[])),
                    stored: 0,
                    asks_again: false,
                },
                RecrawlPolicy::new(&config.recrawl),
            ),
            false,
        );
        let stop = CancellationToken::new();
        let running = tokio::spawn(dispatcher.run(stop.clone()));

        // The first lease filled the window with rows 1-4; now the database is locked.
        assert_eq!(next_job(&jobs).await, Some(1));
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut other)
            .await
            .expect("take the write lock");
        // The window runs low after job 3 and the next lease waits for the lock.
        for id in 2..=4 {
            assert_eq!(
                next_job(&jobs).await,
                Some(id),
                "job {id} while the lease waits"
            );
        }
        assert_eq!(next_job(&jobs).await, None, "rows 5-8 are behind the lock");
        sqlx::query("ROLLBACK")
            .execute(&mut other)
            .await
            .expect("release the lock");
        for id in 5..=8 {
            assert_eq!(
                next_job(&jobs).await,
                Some(id),
                "job {id} once the lease is done"
            );
        }
        stop.cancel();
        running
            .await
            .expect("the dispatcher ran")
            .expect("and stopped cleanly");
    }

    /// The progress line and `/stats` show the pace of the last minute: a crawl that
    /// stored its pages early and then stalled reads 0, not its average since the start.
    #[test]
    fn the_rate_is_the_last_minutes() {
        let progress = Progress::new(Stages::new(Queues::idle()));
        let start = Instant::now();
        progress.sample_at(start);
        progress.shared.fetched.store(600, Ordering::Relaxed);
        progress.sample_at(start + Duration::from_secs(30));
        assert!((progress.rate_last_minute() - 20.0).abs() < 1e-9);
        progress.sample_at(start + Duration::from_secs(60));
        progress.sample_at(start + Duration::from_secs(95));
        assert!(progress.rate_last_minute().abs() < 1e-9);
    }

    /// A service sleeps until its next revisit on the monotonic clock, which stands still
    /// while the machine is suspended and ignores the wall clock stepping forward: a
    /// revisit an hour off was asked for an hour of sleep later, however late by the wall
    /// clock it then was. The wall clock is looked at again at least every minute.
    #[tokio::test]
    async fn a_service_looks_at_the_wall_clock_again_while_a_revisit_is_far_off() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let (store, mut other) = store_and_connection(&dir).await;
        let in_an_hour = crate::store::unix_ms(SystemTime::now() + Duration::from_secs(3600));
        sqlx::query(
            "INSERT INTO frontier (url, host, depth, priority, state, recrawl_at)
             VALUES ('http://h/', 'h', 0, 0, 'done', ?)",
        )
        .bind(in_an_hour)
        .execute(&mut other)
        .await
        .expect("a page due for a revisit in an hour");
        let wait = next_due(&store, true, LeaseRows::Any, Duration::from_secs(60))
            .await
            .expect("read when the next row is due");
        assert!(
            wait.is_some_and(|w| w <= WALL_RECHECK),
            "the service sleeps {wait:?}"
        );
    }
}
