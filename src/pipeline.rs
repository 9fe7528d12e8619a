//! The crawl's wiring, in one place: channels, pools, and the order things stop in.
//!
//! Shutdown runs upstream first. The dispatcher stops handing out jobs and drops its
//! sender; fetchers finish what they hold and exit when the job channel is empty and
//! closed; parsers then drain theirs; the writer commits the last batch when its channel
//! closes. Nothing in flight is lost, and what was never handed out goes back to the queue.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::error::Error;
use crate::fetcher::{self, FetchContext, FetchPool};
use crate::frontier::dispatcher::{Dispatcher, Progress};
use crate::frontier::Frontier;
use crate::page::{Discovered, JobKind};
use crate::parser::ParsePool;
use crate::politeness::{HostGate, Politeness};
use crate::retry::RetryPolicy;
use crate::robots::RobotsCache;
use crate::scope::Scope;
use crate::store::writer::StoreWriter;
use crate::store::Store;
use crate::summary::{EndReason, Summary};
use crate::urlnorm;

/// How often a running crawl logs its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Crawls until the frontier is empty, `scope.max_pages` is reached, or `shutdown`
/// completes; then drains the pipeline and reports.
pub async fn crawl(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Summary, Error> {
    let started = Instant::now();
    let store = Store::open(&config.storage.database).await?;
    let recovered = store.recover_leases().await?;
    if recovered > 0 {
        tracing::info!(
            recovered,
            "resuming: URLs in flight when the last run stopped are queued again"
        );
    }
    let scope = Arc::new(Scope::new(&config));
    store.enqueue(&seeds(&config, &scope)).await?;
    let budget = match config.scope.max_pages {
        Some(max) => Some(max.saturating_sub(store.page_count().await?)),
        None => None,
    };

    let (jobs_tx, jobs_rx) = flume::bounded(config.channels.to_fetch);
    let (fetched_tx, fetched_rx) = flume::bounded(config.channels.to_parse);
    let (records_tx, records_rx) = flume::bounded(config.channels.to_store);
    let progress = Progress::default();
    let stop = CancellationToken::new();
    let done = CancellationToken::new();

    tokio::spawn({
        let stop = stop.clone();
        let done = done.clone();
        async move {
            tokio::select! {
                () = shutdown => stop.cancel(),
                () = done.cancelled() => {}
            }
        }
    });
    let reporter = tokio::spawn(report_progress(progress.clone(), done.clone()));

    let writer = tokio::spawn({
        let writer = StoreWriter::new(
            store.clone(),
            records_rx,
            (config.storage.batch_size, config.frontier.seen_cache),
            progress.clone(),
        );
        let stop = stop.clone();
        async move {
            let result = writer.run().await;
            if result.is_err() {
                stop.cancel();
            }
            result
        }
    });
    let parsers = ParsePool::spawn(
        config.parse.workers,
        fetched_rx,
        records_tx,
        Arc::clone(&scope),
    )
    .map_err(|e| Error::StageFailed(format!("cannot start parse threads: {e}")))?;
    let client = fetcher::client(&config)?;
    let gate = Arc::new(HostGate::default());
    let politeness = Politeness::new(&config.politeness);
    let retry = RetryPolicy::new(&config.retry);
    let robots = RobotsCache::new(
        client.clone(),
        store.clone(),
        Arc::clone(&gate),
        politeness.clone(),
        &config.fetch.user_agent,
        (config.politeness.robots_ttl, config.retry.base_delay),
    );
    let context = FetchContext {
        client,
        robots: Arc::new(robots),
        gate,
        politeness: politeness.clone(),
        retry,
        progress: progress.clone(),
        max_body_bytes: config.fetch.max_body_bytes,
        max_redirects: config.fetch.max_redirects,
        respect_robots_txt: config.politeness.respect_robots_txt,
        sitemaps: config.scope.sitemaps,
    };
    let abort = CancellationToken::new();
    let mut fetchers = FetchPool::spawn(
        config.fetch.workers,
        Arc::new(context),
        jobs_rx.clone(),
        fetched_tx,
        abort.clone(),
    );
    let frontier = Frontier::new(politeness);
    let dispatcher = Dispatcher::new(
        frontier,
        store.clone(),
        (jobs_tx, jobs_rx),
        progress.clone(),
        config.frontier.window,
        budget,
    );

    let ended = dispatcher.run(stop).await;
    let finish_fetches = async {
        while let Some(joined) = fetchers.join_next().await {
            joined.map_err(|e| Error::StageFailed(format!("a fetch worker panicked: {e}")))?;
        }
        Ok::<(), Error>(())
    };
    let grace = match ended {
        Ok(EndReason::Interrupted) => config.shutdown.grace_period,
        _ => Duration::MAX,
    };
    match tokio::time::timeout(grace, finish_fetches).await {
        Ok(finished) => finished?,
        Err(_) => {
            tracing::warn!("grace period over: fetches still running go back to the queue");
            abort.cancel();
            while fetchers.join_next().await.is_some() {}
        }
    }
    tokio::task::spawn_blocking(move || {
        parsers
            .into_iter()
            .map(|t| t.join())
            .collect::<Result<Vec<()>, _>>()
    })
    .await
    .map_err(|e| Error::StageFailed(format!("joining the parse pool: {e}")))?
    .map_err(|_| Error::StageFailed("a parse thread panicked".into()))?;
    let tally = writer
        .await
        .map_err(|e| Error::StageFailed(format!("the store writer panicked: {e}")))??;
    store.release(&progress.take_abandoned()).await?;
    done.cancel();
    reporter
        .await
        .map_err(|e| Error::StageFailed(format!("the progress reporter panicked: {e}")))?;

    Ok(Summary {
        tally,
        elapsed: started.elapsed(),
        ended: ended?,
    })
}

fn seeds(config: &Config, scope: &Scope) -> Vec<Discovered> {
    config
        .seeds
        .iter()
        .map(|url| Discovered {
            url: url.clone(),
            host: urlnorm::host_key(url),
            depth: 0,
            priority: scope.priority(url, 0),
            redirect_hops: 0,
            kind: JobKind::Page,
        })
        .collect()
}

async fn report_progress(progress: Progress, done: CancellationToken) {
    let started = Instant::now();
    let mut ticks = tokio::time::interval(PROGRESS_EVERY);
    ticks.tick().await;
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                let pages = progress.pages();
                let rate = pages as f64 / started.elapsed().as_secs_f64();
                tracing::info!(pages, links = progress.links(), in_flight = progress.outstanding(), "{rate:.0} pages/s");
            }
            () = done.cancelled() => return,
        }
    }
}
