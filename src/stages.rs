//! Where each stage's time goes, and how full the queues between them run: the figures
//! that say which stage limits a crawl.
//!
//! Every worker of a stage (the dispatcher, each fetch task, each parse thread, the
//! writer) keeps a [`PhaseTimer`] and says when it moves between waiting for input,
//! working, and being blocked because the next stage's queue is full. A stage whose
//! workers are rarely waiting while the stage before it is often blocked is the one that
//! limits the crawl. Three clock reads and stage locks per page and stage, each held for
//! a few additions: far below the noise.

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The stages, in pipeline order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Dispatch,
    Fetch,
    Parse,
    Store,
}

impl Stage {
    const ALL: [Stage; 4] = [Stage::Dispatch, Stage::Fetch, Stage::Parse, Stage::Store];

    fn name(self) -> &'static str {
        match self {
            Stage::Dispatch => "dispatch",
            Stage::Fetch => "fetch",
            Stage::Parse => "parse",
            Stage::Store => "store",
        }
    }

    /// What "working" means for the stage, for the report.
    fn work(self) -> &'static str {
        match self {
            Stage::Dispatch => "leasing and ordering",
            Stage::Fetch => "politeness waits + network + body",
            Stage::Parse => "parsing",
            Stage::Store => "committing",
        }
    }
}

/// What a worker is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Nothing to do: its input queue is empty (or, for the dispatcher, no host is ready).
    Waiting,
    Working,
    /// Done with an item, but the next stage's queue is full.
    Blocked,
}

/// A queue's fill at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fill {
    /// Values queued.
    pub depth: usize,
    /// A sender waits for the queue's share of `channels.max_bytes`: the queue is full,
    /// whatever its depth (a page weighing that share fills it alone).
    pub short_of_bytes: bool,
}

/// The channels between the stages: how full they are, read without keeping them open.
pub struct Queues {
    pub to_fetch: Box<dyn Fn() -> Fill + Send + Sync>,
    pub to_parse: Box<dyn Fn() -> Fill + Send + Sync>,
    pub to_store: Box<dyn Fn() -> Fill + Send + Sync>,
    /// Their capacities, in the same order.
    pub capacity: [usize; 3],
}

impl Queues {
    pub const NAMES: [&'static str; 3] = ["to_fetch", "to_parse", "to_store"];

    pub fn fills(&self) -> [Fill; 3] {
        [(self.to_fetch)(), (self.to_parse)(), (self.to_store)()]
    }

    pub fn depths(&self) -> [usize; 3] {
        self.fills().map(|fill| fill.depth)
    }

    /// Queues that stay empty, of one place each: for the tests of what reads them.
    #[cfg(test)]
    pub(crate) fn idle() -> Self {
        Self {
            to_fetch: Box::new(Fill::default),
            to_parse: Box::new(Fill::default),
            to_store: Box::new(Fill::default),
            capacity: [1; 3],
        }
    }
}

/// Shared by every stage of one crawl.
#[derive(Clone)]
pub struct Stages {
    inner: Arc<Inner>,
}

struct Inner {
    clocks: [Clock; 4],
    queues: Queues,
    history: Mutex<History>,
    started: Instant,
    /// Nanoseconds the dispatcher held URLs none of whose hosts was due yet.
    host_turns: AtomicU64,
    /// Of `host_turns`, those with the window full and more URLs queued behind it.
    host_turns_window_full: AtomicU64,
}

#[derive(Default)]
struct Clock {
    workers: AtomicUsize,
    phases: Mutex<Phases>,
}

/// One stage's time per phase, in nanoseconds since the crawl started. Behind one lock,
/// as a report reads the three figures of a phase together: read apart while a worker
/// moved on, a phase under way looked as long as the whole crawl.
#[derive(Default)]
struct Phases {
    /// Summed over the stage's workers, up to their last change of phase.
    closed: [u64; 3],
    /// Workers in each phase now, and the sum of when each entered it: the time of
    /// phases still under way, which a service's workers idling for hours would
    /// otherwise leave out of `/stats`.
    open: [u64; 3],
    open_since: [u64; 3],
}

impl Clock {
    fn phases(&self) -> std::sync::MutexGuard<'_, Phases> {
        self.phases.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Seconds per phase, those under way counted up to `now`.
    fn seconds(&self, now: u64) -> [f64; 3] {
        let phases = self.phases();
        std::array::from_fn(|p| {
            let under_way = phases.open[p]
                .saturating_mul(now)
                .saturating_sub(phases.open_since[p]);
            phases.closed[p].saturating_add(under_way) as f64 / 1e9
        })
    }

    /// A worker leaves `from` (if it was in one, since `since`) for `to` (if any) at `now`.
    fn enter(&self, from: Option<(Phase, u64)>, to: Option<Phase>, now: u64) {
        let mut phases = self.phases();
        if let Some((phase, since)) = from {
            let p = phase as usize;
            phases.closed[p] = phases.closed[p].saturating_add(now.saturating_sub(since));
            phases.open_since[p] = phases.open_since[p].saturating_sub(since);
            phases.open[p] = phases.open[p].saturating_sub(1);
        }
        if let Some(phase) = to {
            let p = phase as usize;
            phases.open_since[p] = phases.open_since[p].saturating_add(now);
            phases.open[p] += 1;
        }
    }
}

impl Stages {
    pub fn new(queues: Queues) -> Self {
        Self {
            inner: Arc::new(Inner {
                clocks: Default::default(),
                queues,
                history: Mutex::new(History::default()),
                started: Instant::now(),
                host_turns: AtomicU64::new(0),
                host_turns_window_full: AtomicU64::new(0),
            }),
        }
    }

    /// A timer for one worker of `stage`, starting out waiting.
    pub fn timer(&self, stage: Stage) -> PhaseTimer {
        let clock = self.clock(stage);
        clock.workers.fetch_add(1, Ordering::Relaxed);
        let since = self.now();
        clock.enter(None, Some(Phase::Waiting), since);
        PhaseTimer {
            stages: self.clone(),
            stage,
            phase: Phase::Waiting,
            since,
        }
    }

    /// Nanoseconds since the crawl started.
    fn now(&self) -> u64 {
        u64::try_from(self.inner.started.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    pub fn queue_depths(&self) -> [usize; 3] {
        self.inner.queues.depths()
    }

    /// Records the queues' depths now; the reporter calls this about once a second.
    pub fn sample_queues(&self, in_flight: usize) {
        let fills = self.inner.queues.fills();
        let [to_fetch, to_parse, to_store] = fills.map(|fill| fill.depth);
        let at = self.inner.started.elapsed().as_secs_f64();
        let sample = Sample {
            at_s: at,
            to_fetch,
            to_parse,
            to_store,
            in_flight,
        };
        let short_of_bytes = fills.map(|fill| fill.short_of_bytes);
        self.history()
            .push(sample, short_of_bytes, self.inner.queues.capacity);
    }

    /// The dispatcher waited this long with URLs in hand, none of whose hosts was due
    /// (a delay, a Crawl-delay, a `Retry-After`): its stage reads that as waiting for
    /// input, as every other stage's does, though the crawl waited on politeness.
    /// `window_full` when the window was too full to be refilled and its last lease took
    /// all it asked for: URLs queued behind it, other hosts' perhaps, waited for room,
    /// not for their hosts.
    pub fn waited_for_hosts(&self, waited: Duration, window_full: bool) {
        let nanos = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
        self.inner.host_turns.fetch_add(nanos, Ordering::Relaxed);
        if window_full {
            self.inner
                .host_turns_window_full
                .fetch_add(nanos, Ordering::Relaxed);
        }
    }

    /// Each stage's workers in each phase now, as (stage, [waiting, working, blocked]).
    pub fn workers_now(&self) -> impl Iterator<Item = (&'static str, [u64; 3])> + '_ {
        Stage::ALL
            .iter()
            .map(|&stage| (stage.name(), self.clock(stage).phases().open))
    }

    /// The figures so far.
    pub fn report(&self) -> StageReport {
        let now = self.now();
        let stages = Stage::ALL
            .iter()
            .map(|&stage| {
                let clock = self.clock(stage);
                let [waiting, working, blocked] = clock.seconds(now);
                StageFigures {
                    stage: stage.name(),
                    work: stage.work(),
                    workers: clock.workers.load(Ordering::Relaxed),
                    working_s: working,
                    waiting_s: waiting,
                    blocked_s: blocked,
                }
            })
            .collect();
        let history = self.history();
        let queues = Queues::NAMES
            .iter()
            .enumerate()
            .map(|(i, &name)| history.figures(name, i, self.inner.queues.capacity[i]))
            .collect();
        StageReport {
            stages,
            queues,
            queue_samples: history.samples.clone(),
            sample_every_s: history.every,
            host_turns_s: self.inner.host_turns.load(Ordering::Relaxed) as f64 / 1e9,
            host_turns_window_full_s: self.inner.host_turns_window_full.load(Ordering::Relaxed)
                as f64
                / 1e9,
        }
    }

    fn clock(&self, stage: Stage) -> &Clock {
        &self.inner.clocks[stage as usize]
    }

    fn history(&self) -> std::sync::MutexGuard<'_, History> {
        self.inner
            .history
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// One worker's clock: time accrues to the phase it is in until it enters another.
pub struct PhaseTimer {
    stages: Stages,
    stage: Stage,
    phase: Phase,
    /// When it entered `phase`, in nanoseconds since the crawl started.
    since: u64,
}

impl PhaseTimer {
    pub fn enter(&mut self, phase: Phase) {
        if phase == self.phase {
            return;
        }
        let now = self.stages.now();
        self.stages
            .clock(self.stage)
            .enter(Some((self.phase, self.since)), Some(phase), now);
        self.phase = phase;
        self.since = now;
    }
}

impl Drop for PhaseTimer {
    fn drop(&mut self) {
        let now = self.stages.now();
        self.stages
            .clock(self.stage)
            .enter(Some((self.phase, self.since)), None, now);
    }
}

/// Queue depths over the whole crawl in bounded memory: when the samples fill up, pairs
/// are averaged and the interval doubles, so a week-long service keeps a coarse picture
/// of all of it rather than a fine one of the last minutes.
struct History {
    samples: Vec<Sample>,
    /// Seconds each sample covers.
    every: f64,
    /// Samples seen at the current interval since the last one kept, averaged into it.
    pending: Option<(Sample, u32)>,
    /// All samples ever taken, at one-second resolution: for means and how often full
    /// (by its depth or by its bytes), and how often full by its bytes.
    sums: [f64; 3],
    full: [u64; 3],
    short_of_bytes: [u64; 3],
    taken: u64,
}

/// At most this many samples are kept.
const HISTORY_LEN: usize = 120;

impl Default for History {
    fn default() -> Self {
        Self {
            samples: Vec::with_capacity(HISTORY_LEN),
            every: 1.0,
            pending: None,
            sums: [0.0; 3],
            full: [0; 3],
            short_of_bytes: [0; 3],
            taken: 0,
        }
    }
}

impl History {
    fn push(&mut self, sample: Sample, short_of_bytes: [bool; 3], capacity: [usize; 3]) {
        self.taken += 1;
        for (i, depth) in sample.depths().into_iter().enumerate() {
            self.sums[i] += depth as f64;
            if depth >= capacity[i] || short_of_bytes[i] {
                self.full[i] += 1;
            }
            self.short_of_bytes[i] += u64::from(short_of_bytes[i]);
        }
        let (mut acc, n) = match self.pending.take() {
            Some((acc, n)) => (acc.plus(&sample), n + 1),
            None => (sample, 1),
        };
        if f64::from(n) < self.every {
            self.pending = Some((acc, n));
            return;
        }
        acc.at_s = sample.at_s;
        self.samples.push(acc.divided(n));
        if self.samples.len() == HISTORY_LEN {
            self.samples = self
                .samples
                .chunks(2)
                .map(|pair| {
                    let n = u32::try_from(pair.len()).unwrap_or(1);
                    let mut merged = pair[1..]
                        .iter()
                        .fold(pair[0], |acc, s| acc.plus(s))
                        .divided(n);
                    merged.at_s = pair[pair.len() - 1].at_s;
                    merged
                })
                .collect();
            self.every *= 2.0;
        }
    }

    fn figures(&self, name: &'static str, i: usize, capacity: usize) -> QueueFigures {
        let taken = self.taken.max(1) as f64;
        QueueFigures {
            queue: name,
            capacity,
            mean_depth: self.sums[i] / taken,
            full_pct: 100.0 * self.full[i] as f64 / taken,
            short_of_bytes_pct: 100.0 * self.short_of_bytes[i] as f64 / taken,
        }
    }
}

/// Queue depths at one moment (or averaged over an interval, for older ones).
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Sample {
    /// Seconds since the crawl started.
    pub at_s: f64,
    pub to_fetch: usize,
    pub to_parse: usize,
    pub to_store: usize,
    /// Leased URLs not yet committed.
    pub in_flight: usize,
}

impl Sample {
    fn depths(&self) -> [usize; 3] {
        [self.to_fetch, self.to_parse, self.to_store]
    }

    fn plus(&self, o: &Sample) -> Sample {
        Sample {
            at_s: self.at_s,
            to_fetch: self.to_fetch + o.to_fetch,
            to_parse: self.to_parse + o.to_parse,
            to_store: self.to_store + o.to_store,
            in_flight: self.in_flight + o.in_flight,
        }
    }

    fn divided(&self, n: u32) -> Sample {
        let n = usize::try_from(n).unwrap_or(1).max(1);
        Sample {
            at_s: self.at_s,
            to_fetch: self.to_fetch / n,
            to_parse: self.to_parse / n,
            to_store: self.to_store / n,
            in_flight: self.in_flight / n,
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct StageFigures {
    pub stage: &'static str,
    pub work: &'static str,
    pub workers: usize,
    pub working_s: f64,
    pub waiting_s: f64,
    pub blocked_s: f64,
}

impl StageFigures {
    /// Shares of the stage's worker time: (working, waiting, blocked), in percent.
    pub fn shares(&self) -> (f64, f64, f64) {
        let total = self.working_s + self.waiting_s + self.blocked_s;
        if total <= 0.0 {
            return (0.0, 0.0, 0.0);
        }
        (
            100.0 * self.working_s / total,
            100.0 * self.waiting_s / total,
            100.0 * self.blocked_s / total,
        )
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct QueueFigures {
    pub queue: &'static str,
    pub capacity: usize,
    pub mean_depth: f64,
    /// Share of samples in which the queue was full: at its capacity, or with a sender
    /// waiting for its bytes.
    pub full_pct: f64,
    /// Share of samples in which a sender waited for its bytes (`channels.max_bytes`),
    /// which a larger capacity does not help.
    pub short_of_bytes_pct: f64,
}

/// Busy and blocked time per stage and queue depths: in the end summary and `/stats`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StageReport {
    pub stages: Vec<StageFigures>,
    pub queues: Vec<QueueFigures>,
    /// Depths over time, oldest first; each covers `sample_every_s` seconds.
    pub queue_samples: Vec<Sample>,
    pub sample_every_s: f64,
    /// Seconds URLs waited in the dispatcher's window for their hosts to be due, nothing
    /// else ready: the time a polite crawl of few hosts takes.
    pub host_turns_s: f64,
    /// Of `host_turns_s`, the seconds the window was full with more URLs queued behind
    /// it: those, whatever their host, waited for room (`frontier.window`), so "nothing
    /// else ready" held of the window only. One host's burst fills it so.
    pub host_turns_window_full_s: f64,
}

impl fmt::Display for StageReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "stages (share of worker time: working / waiting for input / blocked on a full queue):"
        )?;
        for s in &self.stages {
            let (working, waiting, blocked) = s.shares();
            writeln!(
                f,
                "  {:<8} {:>4} worker{} {working:>5.1}% / {waiting:>5.1}% / {blocked:>5.1}%  ({}: {:.1} s)",
                s.stage,
                s.workers,
                if s.workers == 1 { " " } else { "s" },
                s.work,
                s.working_s,
            )?;
        }
        let queues: Vec<String> = self
            .queues
            .iter()
            .map(|q| {
                let by_bytes = if q.short_of_bytes_pct > 0.0 {
                    format!(", {:.0}% by channels.max_bytes", q.short_of_bytes_pct)
                } else {
                    String::new()
                };
                format!(
                    "{} {:.0}/{} ({:.0}% of the time full{by_bytes})",
                    q.queue, q.mean_depth, q.capacity, q.full_pct
                )
            })
            .collect();
        writeln!(f, "queues (mean depth/capacity): {}", queues.join(", "))?;
        if self.host_turns_s >= 0.05 {
            writeln!(
                f,
                "hosts' turns: {:.1} s with URLs waiting for their host to be due, nothing \
                 else ready (politeness.delay_ms, a Crawl-delay or a Retry-After)",
                self.host_turns_s
            )?;
            if self.host_turns_window_full_s >= 0.05 {
                writeln!(
                    f,
                    "  of which {:.1} s with frontier.window full and more URLs queued behind \
                     it, whatever their host, waiting for room",
                    self.host_turns_window_full_s
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn stages() -> Stages {
        Stages::new(Queues::idle())
    }

    /// A service's fetch workers wait for seeds for hours on end, without a phase change:
    /// `/stats` must count that wait as it goes, not once the next job comes.
    #[test]
    fn a_phase_under_way_counts_in_the_report() {
        const NAP: Duration = Duration::from_millis(50);
        let stages = stages();
        let mut timer = stages.timer(Stage::Fetch);
        let began = Instant::now();
        timer.enter(Phase::Working);
        std::thread::sleep(NAP);
        timer.enter(Phase::Waiting);
        // The most the work took, however late a busy machine ended the nap; the wait
        // under way is made to outweigh it.
        let worked = began.elapsed();
        let waited = (NAP * 4).max(worked * 2);
        std::thread::sleep(waited);
        let fetch = &stages.report().stages[Stage::Fetch as usize];
        let (working, waiting, blocked) = fetch.shares();
        assert!(
            fetch.waiting_s >= waited.as_secs_f64(),
            "waiting {} s, working {} s",
            fetch.waiting_s,
            fetch.working_s
        );
        assert!(waiting > working, "{working}% / {waiting}% / {blocked}%");
        drop(timer);
        let fetch = &stages.report().stages[Stage::Fetch as usize];
        assert!(fetch.waiting_s >= waited.as_secs_f64(), "{fetch:?}");
        assert!(fetch.working_s <= worked.as_secs_f64(), "{fetch:?}");
    }
}
