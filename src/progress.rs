//! What a running crawl shows: a progress bar when a person is watching a terminal,
//! plain log lines every few seconds when output goes to a file or a journal.

use std::io::{self, IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;

use crate::frontier::dispatcher::Progress;
use crate::metrics;
use crate::stages::Stages;

/// Samples are taken this often (for `/stats`' rate, queue depths and their gauges).
const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// A log line is written this often when there is no progress bar.
const LOG_EVERY: u32 = 5;

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

pub struct Reporter {
    progress: Progress,
    stages: Stages,
    bar: Option<ProgressBar>,
}

impl Reporter {
    /// A bar only for an interactive `crawl`; a service logs.
    pub fn new(progress: Progress, stages: Stages, interactive: bool) -> Self {
        let bar = (interactive && std::io::stderr().is_terminal()).then(|| {
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
        let mut n: u32 = 0;
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
                None if n.is_multiple_of(LOG_EVERY) => tracing::info!(
                    pages = tally.pages,
                    links = tally.links,
                    in_progress = self.progress.outstanding(),
                    errors,
                    "{} pages/s",
                    per_second(rate)
                ),
                None => {}
            }
        }
        if let Some(bar) = self.bar {
            show(None);
            bar.finish_and_clear();
        }
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
    use super::per_second;

    /// A polite crawl of one host (a `Crawl-delay: 5`, a few pages a minute) makes well
    /// under a page a second: it must not be shown as 0, a crawl that seems stalled.
    #[test]
    fn a_slow_crawls_rate_is_not_shown_as_nothing() {
        assert_eq!(per_second(0.2), "0.2");
        assert_eq!(per_second(0.0), "0.0");
        assert_eq!(per_second(2504.26), "2504.3");
    }
}
