//! The crawler's own gaps: the process stopped (`kill -STOP`, Ctrl-Z) or its machine or VM
//! paused, and then going on. The monotonic clock the timeouts run on moves on through
//! such a gap, so every request in flight timed out the moment the crawler ran again,
//! its answer waiting in the socket: a URL stored as a `timeout` of its site, or spending
//! an attempt, for a wait that was the crawler's. A fetch cut so is asked again.
//!
//! A thread that sleeps [`TICK`] at a time notes when it last woke; waking later than
//! [`GAP`] past its tick means the process did not run meanwhile.

use std::sync::{Mutex, MutexGuard, Once, PoisonError};
use std::time::{Duration, Instant};

use crate::page::{ErrorKind, FetchError};

/// How long the watch sleeps between looks at the clock.
const TICK: Duration = Duration::from_millis(250);

/// How much later than its tick the watch wakes before that is a gap: a loaded machine
/// wakes a sleeping thread late by milliseconds, a stopped process by all of its stop.
const GAP: Duration = Duration::from_secs(2);

/// The watch's clock readings.
#[derive(Debug, Clone, Copy)]
struct Watch {
    /// When the watch last woke.
    ticked: Instant,
    /// When the last gap it saw ended.
    gap_ended: Option<Instant>,
}

impl Watch {
    fn new(now: Instant) -> Self {
        Self {
            ticked: now,
            gap_ended: None,
        }
    }

    /// The watch woke at `now`: how long the process did not run, if it was a gap.
    fn tick(&mut self, now: Instant) -> Option<Duration> {
        let slept = now.saturating_duration_since(self.ticked);
        self.ticked = now;
        (slept > TICK + GAP).then(|| {
            self.gap_ended = Some(now);
            slept - TICK
        })
    }

    /// Whether a gap ended after `since`, or one is ending at `now` that the watch has not
    /// woken to yet (a timeout's task can run before it).
    fn gap_since(&self, since: Instant, now: Instant) -> bool {
        self.gap_ended.is_some_and(|ended| ended > since)
            || now.saturating_duration_since(self.ticked) > TICK + GAP
    }
}

static WATCH: Mutex<Option<Watch>> = Mutex::new(None);

fn watch_lock() -> MutexGuard<'static, Option<Watch>> {
    WATCH.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Starts the watch, once per process; it runs as long as the process does.
pub fn watch() {
    static STARTED: Once = Once::new();
    STARTED.call_once(|| {
        // Set before the thread runs, so that its first tick reads it; taken back should
        // the thread not start, or every request would seem to span a gap.
        *watch_lock() = Some(Watch::new(Instant::now()));
        let watching = std::thread::Builder::new()
            .name("pipecrawl-gaps".to_owned())
            .spawn(|| loop {
                std::thread::sleep(TICK);
                let gap = watch_lock()
                    .as_mut()
                    .and_then(|watch| watch.tick(Instant::now()));
                if let Some(gap) = gap {
                    tracing::warn!(
                        gap_s = gap.as_secs_f64(),
                        "the crawler did not run for {:.1} s (the process was stopped, or \
                         its VM paused): requests that timed out meanwhile are \
                         asked again, spending no attempt",
                        gap.as_secs_f64()
                    );
                }
            });
        if let Err(e) = watching {
            *watch_lock() = None;
            tracing::warn!("gaps in the crawler's running go unnoticed: no thread for them: {e}");
        }
    });
}

/// Whether the crawler stopped running at some moment since `since`: a timeout over that
/// span may be the gap's, not the server's.
pub fn gap_since(since: Instant) -> bool {
    let now = Instant::now();
    watch_lock()
        .as_ref()
        .is_some_and(|watch| watch.gap_since(since, now))
}

/// Whether `error`, of a request sent at `sent`, is a timeout the crawler's own gap may
/// have fired: the request is asked again, as one never answered.
pub fn timed_out_over_gap(error: &FetchError, sent: Instant) -> bool {
    error.kind == ErrorKind::Timeout && gap_since(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ticks a little late are no gap; a stop of seconds is, for the requests sent before
    /// it and not for those sent after it.
    #[test]
    fn a_late_wake_is_a_gap_only_past_its_margin() {
        let start = Instant::now();
        let mut watch = Watch::new(start);
        let late = start + TICK + Duration::from_millis(300);
        assert_eq!(watch.tick(late), None);
        assert!(!watch.gap_since(start, late));
        let woke = late + TICK + Duration::from_secs(10);
        assert_eq!(watch.tick(woke), Some(Duration::from_secs(10)));
        assert!(watch.gap_since(late, woke));
        assert!(!watch.gap_since(woke, woke + TICK));
    }

    /// A timeout's task can run before the watch wakes from the same stop: the stop is
    /// read from the watch's tick being overdue.
    #[test]
    fn a_gap_the_watch_has_not_woken_to_yet_counts() {
        let start = Instant::now();
        let watch = Watch::new(start);
        assert!(watch.gap_since(start, start + Duration::from_secs(30)));
        assert!(!watch.gap_since(start, start + TICK));
    }
}
