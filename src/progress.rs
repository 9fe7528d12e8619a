//! What a running crawl shows: a progress bar when a person is watching a terminal,
//! plain log lines every few seconds when output goes to a file or a journal.

use std::io::{self, Write};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;

use crate::frontier::dispatcher::Progress;
use crate::metrics;
use crate::stages::Stages;
use crate::terminal;

/// Samples are taken this often (for `/stats`' rate, queue depths and their gauges).
const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// A log line is written this often when there is no progress bar, while the crawl moves.
const LOG_EVERY: u32 = 5;
/// This often (in samples, seconds) when it stands still: a service idle between revisits.
const IDLE_LOG_EVERY: u32 = 300;

/// The progress bar on show, for log lines to be written around it.
static SHOWN: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Stderr for log lines (tracing's writer): each line is written with the progress bar
/// taken down and then drawn again under it. Written straight to the terminal, a line
/// went on the end of the bar's text, which stayed in front of it on screen.
pub struct LogWriter;

impl LogWriter {
    /// The bar on show, if any.
    fn bar() -> Option<ProgressBar> {
        SHOWN.lock().ok().and_then(|shown| shown.clone())
    }
}

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf).map(|()| buf.len())
    }

    /// The whole line with the bar down once: tracing writes a line in one call.
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match Self::bar() {
            Some(bar) => bar.suspend(|| io::stderr().write_all(buf)),
            None => io::stderr().write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

/// Puts `bar` on show for [`LogWriter`], or none.
fn show(bar: Option<&ProgressBar>) {
    if let Ok(mut shown) = SHOWN.lock() {
        *shown = bar.cloned();
    }
}

/// How a crawl shows its progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Show {
    /// A bar on stderr when it is a terminal that draws, log lines otherwise: the `crawl`
    /// command's.
    BarOnTerminal,
    /// Log lines only (through `tracing`): a service's, and a program's that embeds the
    /// crawler, whose terminal is its own to draw on.
    Log,
}

pub struct Reporter {
    progress: Progress,
    stages: Stages,
    bar: Option<ProgressBar>,
}

impl Reporter {
    pub fn new(progress: Progress, stages: Stages, shown: Show) -> Self {
        // On a `dumb` terminal `indicatif` draws nothing: the lines a file gets are written
        // there instead, or a long crawl said nothing until its end.
        let bar = (shown == Show::BarOnTerminal && terminal::stderr_draws()).then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar
        });
        if let Some(bar) = &bar {
            show(Some(bar));
        }
        Self {
            progress,
            stages,
            bar,
        }
    }

    pub async fn run(self, done: CancellationToken) {
        let mut ticks = tokio::time::interval(SAMPLE_EVERY);
        // A crawler stopped for a while (a laptop asleep, Ctrl-Z) finds every tick it
        // missed due at once: they are one, or a minute's stop wrote a dozen lines alike.
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut n: u32 = 0;
        let mut lines = Lines::default();
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = done.cancelled() => break,
            }
            n = n.wrapping_add(1);
            self.progress.sample();
            self.stages.sample_queues(self.progress.outstanding());
            let [to_fetch, to_parse, to_store] = self.stages.queue_depths();
            metrics::queue_depths(to_fetch, to_parse, to_store, self.progress.outstanding());
            for (stage, workers) in self.stages.workers_now() {
                metrics::stage_workers(stage, workers);
            }
            let tally = self.progress.tally();
            let errors: u64 = tally.errors.values().sum();
            // The last minute's, not the average since start: a service running for days
            // would otherwise show a figure that no longer moves.
            let rate = self.progress.rate_last_minute();
            match &self.bar {
                Some(bar) => bar.set_message(format!(
                    "{} pages, {}/s, {} links, {} in progress, {errors} errors",
                    tally.pages,
                    per_second(rate),
                    tally.links,
                    self.progress.outstanding()
                )),
                None if n.is_multiple_of(LOG_EVERY) => {
                    let line = Line {
                        pages: tally.pages,
                        links: tally.links,
                        in_progress: self.progress.outstanding(),
                        errors,
                        rate: per_second(rate),
                    };
                    if lines.due(&line, n) {
                        // The rate a field too, as the counts are: a pipeline alerting on
                        // a crawl that slows had to parse it out of the message.
                        tracing::info!(
                            pages = line.pages,
                            links = line.links,
                            in_progress = line.in_progress,
                            errors,
                            pages_per_sec = rate,
                            "{} pages/s",
                            line.rate
                        );
                    }
                }
                None => {}
            }
        }
        if let Some(bar) = self.bar {
            show(None);
            bar.finish_and_clear();
        }
    }
}

/// What a progress line says.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    pages: u64,
    links: u64,
    in_progress: usize,
    errors: u64,
    /// As shown: a rate falling to 0 over the minute after the last page is news.
    rate: String,
}

/// Which progress lines are written: every one while the crawl moves or has URLs in
/// progress, and one in [`IDLE_LOG_EVERY`] while it repeats the last. An idle service
/// wrote "0.0 pages/s" every 5 s for as long as it ran, 17,000 lines a day in its journal.
#[derive(Default)]
struct Lines {
    /// The last line written, and the sample it was written at.
    last: Option<(Line, u32)>,
}

impl Lines {
    /// Whether `line`, at sample `n`, is written (and if so, it is the last one).
    fn due(&mut self, line: &Line, n: u32) -> bool {
        let due = match &self.last {
            Some((last, at)) => {
                last != line || line.in_progress > 0 || n.wrapping_sub(*at) >= IDLE_LOG_EVERY
            }
            None => true,
        };
        if due {
            self.last = Some((line.clone(), n));
        }
        due
    }
}

/// A rate of pages per second as shown: to a tenth, as the end summary gives it. Rounded
/// to a whole number, a polite crawl (a host's `Crawl-delay`, a service's revisits) that
/// makes a page every few seconds was shown at "0 pages/s", as though it had stalled.
fn per_second(rate: f64) -> String {
    format!("{rate:.1}")
}

#[cfg(test)]
mod tests {
    use super::{per_second, Line, Lines, LOG_EVERY};

    /// A line as a crawl of `pages` with `in_progress` URLs out would say it.
    fn line(pages: u64, in_progress: usize) -> Line {
        Line {
            pages,
            links: pages * 10,
            in_progress,
            errors: 0,
            rate: per_second(0.0),
        }
    }

    /// An idle service says so every few minutes, not every few seconds; one that moves,
    /// or waits on URLs in progress, every time.
    #[test]
    fn an_idle_crawl_logs_a_line_every_few_minutes() {
        let mut lines = Lines::default();
        let written = |lines: &mut Lines, said: &Line, from: u32, to: u32| {
            (from..to)
                .step_by(LOG_EVERY as usize)
                .filter(|&n| lines.due(said, n))
                .count()
        };
        let idle = line(40, 0);
        assert_eq!(written(&mut lines, &idle, 0, 3_600), 12, "idle for an hour");
        assert!(lines.due(&line(41, 0), 3_600), "a page stored is news");
        let waiting = line(41, 3);
        assert_eq!(
            written(&mut lines, &waiting, 3_605, 3_705),
            20,
            "URLs in progress"
        );
    }

    /// A polite crawl of one host (a `Crawl-delay: 5`, a few pages a minute) makes well
    /// under a page a second: it must not be shown as 0, a crawl that seems stalled.
    #[test]
    fn a_slow_crawls_rate_is_not_shown_as_nothing() {
        assert_eq!(per_second(0.2), "0.2");
        assert_eq!(per_second(0.0), "0.0");
        assert_eq!(per_second(2504.26), "2504.3");
    }
}
