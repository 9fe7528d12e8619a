//! What a running crawl shows: a progress bar when a person is watching a terminal,
//! plain log lines every few seconds when output goes to a file or a journal.

use std::io::IsTerminal;
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
                    "{} pages, {rate:.0}/s, {} links, {} in progress, {errors} errors",
                    tally.pages,
                    tally.links,
                    self.progress.outstanding()
                )),
                None if n.is_multiple_of(LOG_EVERY) => tracing::info!(
                    pages = tally.pages,
                    links = tally.links,
                    in_progress = self.progress.outstanding(),
                    errors,
                    "{rate:.0} pages/s"
                ),
                None => {}
            }
        }
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
