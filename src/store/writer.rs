//! The single writer: pages arrive from the parse pool and are committed in batches.
//!
//! A batch is whatever is waiting when the previous commit finishes, up to
//! `storage.batch_size`: under load transactions grow and their cost is shared by many
//! pages; when the crawl is slow each page is committed almost at once. The channel closing
//! is the signal to flush and stop.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::config::Config;
use crate::error::Error;
use crate::frontier::dispatcher::Progress;
use crate::frontier::seen::{self, SeenUrls};
use crate::metrics;
use crate::page::{JobKind, PageRecord};
use crate::scope::SharedScope;
use crate::stages::{Phase, Stage};
use crate::store::link_counts::{LinkCounts, FLUSH_EVERY};
use crate::store::{Admission, Store};
use crate::summary::Tally;
use crate::traps::FamilyBudget;
use crate::{parser, queue};

pub struct StoreWriter {
    store: Store,
    records: queue::Receiver<PageRecord>,
    batch_size: usize,
    progress: Progress,
    families: FamilyBudget,
    /// Link counts are left to the crawl's end ([`crate::store::Store::defer_derived`]).
    deferred_counts: bool,
    admission: Admission,
    /// This node's name on its leases: only pages whose rows it still holds are stored.
    owner: String,
    /// Widened by the hosts seeds redirect to, with the pages that say so.
    scope: SharedScope,
    /// The parse pool's: how near the seeds each URL was found.
    seen: Arc<Mutex<SeenUrls>>,
}

impl StoreWriter {
    pub fn new(
        store: Store,
        records: queue::Receiver<PageRecord>,
        config: &Config,
        (deferred_counts, revisits_from): (bool, Option<std::time::SystemTime>),
        (progress, scope, seen): (Progress, SharedScope, Arc<Mutex<SeenUrls>>),
    ) -> Self {
        let traps = &config.traps;
        Self {
            store,
            records,
            batch_size: config.storage.batch_size,
            progress,
            families: FamilyBudget::new(traps.family_budget, traps.family_depth_span),
            deferred_counts,
            admission: Admission {
                max_pages_per_host: traps.max_pages_per_host,
                queue_floor: config.frontier.window,
                revisits_from,
            },
            owner: config.cluster.node_id.clone(),
            scope,
            seen,
        }
    }

    /// Starts the writer; `stop` is cancelled if it fails, so the crawl stops with it.
    ///
    /// The writer is polled on a thread of its own, in the crawl's runtime (which does
    /// its I/O, timers and the tasks it spawns). On SQLite the one connection is a thread
    /// of sqlx's that works only as fast as the writer hands it statements, and as a task
    /// among the fetch tasks the writer waited for a turn on the runtime's two workers to
    /// build each one. In the benchmark's scale crawl the SQLite thread stood idle 24% of
    /// a 5-second sample (19% with the writer on its own thread), and the crawl took
    /// 30.5 s instead of 33.2 s (means of 4 and 8 interleaved runs, each ±10%).
    pub fn spawn(self, stop: CancellationToken) -> JoinHandle<Result<Tally, Error>> {
        let runtime = Handle::current();
        tokio::task::spawn_blocking(move || {
            runtime.block_on(async move {
                let result = self.run().await;
                if result.is_err() {
                    stop.cancel();
                }
                result
            })
        })
    }

    async fn run(mut self) -> Result<Tally, Error> {
        let mut tally = Tally::default();
        let mut batch = Vec::with_capacity(self.batch_size);
        // The batch's share of `channels.max_bytes`, given back once it is committed.
        let mut held = Vec::with_capacity(self.batch_size);
        let mut timer = self.progress.stages().timer(Stage::Store);
        let mut counts = if self.deferred_counts {
            LinkCounts::deferred()
        } else {
            LinkCounts::new()
        };
        loop {
            let first = if counts.is_empty() {
                self.records.recv_async().await
            } else {
                match tokio::time::timeout(FLUSH_EVERY, self.records.recv_async()).await {
                    Ok(received) => received,
                    Err(_idle) => {
                        timer.enter(Phase::Working);
                        self.store.flush_link_counts(&mut counts).await?;
                        timer.enter(Phase::Waiting);
                        continue;
                    }
                }
            };
            let Ok((first, its_bytes)) = first else {
                break;
            };
            timer.enter(Phase::Working);
            batch.push(first);
            held.push(its_bytes);
            while batch.len() < self.batch_size {
                match self.records.try_recv() {
                    Ok((record, its_bytes)) => {
                        batch.push(record);
                        held.push(its_bytes);
                    }
                    Err(_) => break,
                }
            }
            let mut later = self.found_nearer_meanwhile(&mut batch);
            self.store_batch(&mut batch, &mut counts, &mut tally, false)
                .await?;
            if !later.is_empty() {
                let trapped = self
                    .store
                    .merge_staged(self.admission.max_pages_per_host)
                    .await?;
                tally.add_trapped(trapped);
                self.store_batch(&mut later, &mut counts, &mut tally, true)
                    .await?;
            }
            batch.clear();
            held.clear();
            timer.enter(Phase::Waiting);
        }
        timer.enter(Phase::Working);
        self.store.flush_link_counts(&mut counts).await?;
        let trapped = self
            .store
            .merge_staged(self.admission.max_pages_per_host)
            .await?;
        tally.add_trapped(trapped);
        tally.count_trapped(self.progress.take_trapped_apart());
        Ok(tally)
    }

    /// Takes out of `batch` the pages whose URLs the crawl found nearer the seeds than
    /// they were leased at, as the seen cache remembers: the URL found may be in this very
    /// batch, or on SQLite wait staged, and the page is stored once the rest of the batch
    /// is, and on SQLite the staged URLs merged (see [`StoreWriter::store_batch`]; on
    /// PostgreSQL the rest's commit notes the nearer depth for it). Revisits stay: a page
    /// stored before, found nearer since, is not moved.
    fn found_nearer_meanwhile(&self, batch: &mut Vec<PageRecord>) -> Vec<PageRecord> {
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        batch
            .extract_if(.., |page| {
                let job = &page.job;
                page.retry_in.is_none()
                    && job.kind == JobKind::Page
                    && job.previous.is_none()
                    && seen.depth(&job.url).is_some_and(|depth| depth < job.depth)
            })
            .collect()
    }

    /// Stores `batch` and counts it in `tally`. With `found_nearer`, the pages held back
    /// for it: one whose row moved nearer the seeds since it was leased is moved with it
    /// first ([`parser::found_nearer`]), and its links noted in the seen cache at their
    /// new depths, so that one already leased by a longer path is held back and moved
    /// in turn when its page comes (a link level between two crawls of one site, and
    /// one followed or not at `max_depth`). Other batches skip that statement: their rows
    /// moved only if the seen cache forgot the URL found nearer (it is cleared when full),
    /// and the statement costs every batch of a crawl.
    async fn store_batch(
        &mut self,
        batch: &mut [PageRecord],
        counts: &mut LinkCounts,
        tally: &mut Tally,
        found_nearer: bool,
    ) -> Result<(), Error> {
        if found_nearer {
            let leased_at = batch
                .iter()
                .filter(|p| p.retry_in.is_none())
                .map(|p| (p.job.id, p.job.depth))
                .collect();
            let nearer = self.store.nearer_depths(&leased_at).await?;
            let scope = self.scope.get();
            for page in batch.iter_mut() {
                if let Some(&depth) = nearer.get(&page.job.id) {
                    parser::found_nearer(page, depth, &scope);
                    seen::note_found(&self.seen, &page.discovered);
                }
            }
        }
        // A reload may have changed the budget since the last batch.
        self.families.limit_to(&self.scope.get().traps);
        for page in batch.iter_mut() {
            for url in page.discovered.iter_mut().filter(|u| u.trap.is_none()) {
                if let Err(reason) = self.families.admit(&url.url, url.depth) {
                    url.trap = Some(reason);
                }
            }
        }
        let started = std::time::Instant::now();
        // A seed's new host joins the scope before the redirect to it is stored, so
        // that its pages' links are judged with it, and under the lock a reload takes
        // to rebuild the scope from the seeds and redirects stored.
        let moved = self.seeds_moved(batch);
        let changing = if moved.is_empty() {
            None
        } else {
            let changing = self.scope.changing().await;
            self.scope.set(self.scope.get().with_seeds(&moved));
            Some(changing)
        };
        let scope = self.scope.get();
        let committed = self
            .store
            .commit(batch, counts, self.admission, (&self.owner, &scope))
            .await?;
        drop(changing);
        metrics::stored_batch(started.elapsed());
        // Those not stored are another node's to count.
        for page in batch.iter().take(committed.stored) {
            tally.add(page);
        }
        tally.add_trapped(committed.unqueued.trapped);
        tally.add_disallowed(committed.unqueued.disallowed);
        tally.count_trapped(self.progress.take_trapped_apart());
        let revisit_retries = batch.iter().filter(|page| page.job.is_revisit());
        if let Some(wait) = revisit_retries.filter_map(|page| page.retry_in).min() {
            self.progress
                .revisits_retried(std::time::Instant::now() + wait);
        }
        self.progress.committed(batch.len(), tally);
        Ok(())
    }

    /// Where the batch's seeds moved to (by a 3xx or a refresh), on hosts not yet in
    /// scope; not where a redirect refused (one too many) would have led, which is never
    /// fetched.
    fn seeds_moved(&self, batch: &[PageRecord]) -> Vec<Url> {
        let scope = self.scope.get();
        batch
            .iter()
            .filter(|page| page.job.is_seed_or_its_redirect())
            .filter_map(PageRecord::moved_to)
            .filter(|target| scope.widened_by_seed(target))
            .cloned()
            .collect()
    }
}
