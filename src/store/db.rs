//! The store's SQL, written once for both databases (see [`super::backend`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::TryStreamExt;
use sqlx::database::HasStatementCache;
use sqlx::pool::PoolConnection;
use sqlx::query_builder::Separated;
use sqlx::{
    ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, QueryBuilder, Row, Type,
};
use url::Url;

use super::backend::{Backend, DeferredIndex};
use super::checkpoints::{Checkpoints, ReadersWait};
use super::cluster::server_ms;
use super::crawl_lock::CrawlLock;
use super::domain_budget::{self, DomainBudget};
use super::link_counts::{self, LinkCounts};
use super::script::Script;
use super::{
    from_unix_ms, rfc3339, unix_ms, Admission, Committed, HostCounts, QueueCounts, RobotsRow,
    MAX_BINDS,
};
use crate::error::{DbContext, Error};
use crate::page::{CrawlJob, Discovered, ErrorKind, FetchError, JobKind, PageRecord, Previous};
use crate::recrawl::RecrawlPolicy;
use crate::retry::{self, is_transient};
use crate::scope::Scope;
use crate::traps::domain_of;
use crate::{parser, urlnorm};

/// A connection in a transaction: the store's statements run on it, begun by sqlx's
/// `Transaction` (which it derefs to) or, on SQLite, by `sqlite_batch`.
pub(super) type Conn<DB> = <DB as Database>::Connection;

/// Columns of a discovered URL's row ([`frontier_row`]).
pub(super) const FRONTIER_COLUMNS: usize = 7;

/// The columns [`frontier_row`] gives values for, in its order.
pub(super) const FRONTIER_ROW: &str =
    "url, host, depth, priority, discovered_from, redirect_hops, kind";

/// Columns of a page's row ([`page_row`]).
pub(super) const PAGE_COLUMNS: usize = 22;

/// The columns [`page_row`] gives values for, in its order.
pub(super) const PAGE_ROW: &str = "id, url, final_url, status, content_type, title, depth,
    fetched_at, changed_at, elapsed_ms, bytes, truncated, content_hash, etag, last_modified,
    location, canonical_url, noindex, nofollow, error_kind, error, links_left_out";

/// The assignments that clear what a failed revisit recorded: any visit answered since
/// (a 304 too) says the page is as stored. A macro, so that [`PAGE_UPSERT`] can hold it.
macro_rules! revisit_failure_cleared {
    () => {
        "revisit_failed_at = NULL, revisit_status = NULL, revisit_error_kind = NULL,
         revisit_error = NULL"
    };
}
pub(super) const REVISIT_FAILURE_CLEARED: &str = revisit_failure_cleared!();

/// The state of a frontier row finished as its last visit left it: `failed` when that had
/// no response. A macro, so that statements can hold it.
macro_rules! finished_as_last_left {
    () => {
        "CASE WHEN EXISTS (SELECT 1 FROM pages p
                           WHERE p.id = frontier.id AND p.status IS NOT NULL)
              THEN 'done' ELSE 'failed' END"
    };
}

/// How a revisited page's row is replaced; `changed_at` moves only when the page answers
/// otherwise, as [`crate::page::Previous::differs_from`] tells it.
pub(super) const PAGE_UPSERT: &str = concat!(
    " ON CONFLICT (id) DO UPDATE SET final_url = excluded.final_url,
    status = excluded.status, content_type = excluded.content_type, title = excluded.title,
    depth = excluded.depth, fetched_at = excluded.fetched_at,
    changed_at = CASE WHEN pages.status IS NOT DISTINCT FROM excluded.status
                       AND pages.location IS NOT DISTINCT FROM excluded.location
                       AND pages.content_hash IS NOT DISTINCT FROM excluded.content_hash
                       AND (excluded.content_hash IS NOT NULL
                            OR (pages.etag IS NOT DISTINCT FROM excluded.etag
                                AND pages.last_modified IS NOT DISTINCT FROM excluded.last_modified
                                AND (coalesce(excluded.status, 0) NOT BETWEEN 200 AND 299
                                     OR pages.bytes IS NOT DISTINCT FROM excluded.bytes)))
                      THEN pages.changed_at ELSE excluded.changed_at END,
    elapsed_ms = excluded.elapsed_ms, bytes = excluded.bytes, truncated = excluded.truncated,
    content_hash = excluded.content_hash, etag = excluded.etag,
    last_modified = excluded.last_modified, location = excluded.location,
    canonical_url = excluded.canonical_url, noindex = excluded.noindex,
    nofollow = excluded.nofollow, error_kind = excluded.error_kind, error = excluded.error,
    links_left_out = excluded.links_left_out, ",
    revisit_failure_cleared!()
);

/// What a revisit that failed for now records beside the page it leaves as stored.
pub(super) const FAILED_REVISIT_ROW: &str =
    "revisit_failed_at, revisit_status, revisit_error_kind, revisit_error";

/// A failed revisit's values, in the order of [`FAILED_REVISIT_ROW`].
pub(super) fn failed_revisit_row<'a>(p: &'a PageRecord, failed_at: &'a str) -> [Value<'a>; 4] {
    [
        Value::Text(Some(failed_at)),
        Value::Int(p.status.map(i64::from)),
        Value::Text(p.error.as_ref().map(|e| e.kind.as_str())),
        Value::Text(p.error.as_ref().map(|e| e.message.as_str())),
    ]
}

/// A value for a statement, typed even when NULL: PostgreSQL takes a parameter's type
/// from what is bound to it.
pub(super) enum Value<'a> {
    Int(Option<i64>),
    Text(Option<&'a str>),
}

/// A page's row, in the order of [`PAGE_ROW`]; `fetched_at` is its time as stored (the
/// first `changed_at` too).
pub(super) fn page_row<'a>(p: &'a PageRecord, fetched_at: &'a str) -> [Value<'a>; PAGE_COLUMNS] {
    use Value::{Int, Text};
    let final_url = p.followed_location().unwrap_or(&p.job.url);
    [
        Int(Some(p.job.id)),
        Text(Some(p.job.url.as_str())),
        Text(Some(final_url.as_str())),
        Int(p.status.map(i64::from)),
        Text(p.content_type.as_deref()),
        Text(p.title.as_deref()),
        Int(Some(i64::from(p.job.depth))),
        Text(Some(fetched_at)),
        Text(Some(fetched_at)),
        Int(Some(i64::try_from(p.elapsed_ms).unwrap_or(i64::MAX))),
        Int(p.bytes.and_then(|b| i64::try_from(b).ok())),
        Int(Some(i64::from(p.truncated))),
        Text(p.content_hash.as_deref()),
        Text(p.etag.as_deref()),
        Text(p.last_modified.as_deref()),
        Text(p.location.as_ref().map(Url::as_str)),
        Text(p.canonical.as_ref().map(Url::as_str)),
        Int(Some(i64::from(p.noindex))),
        Int(Some(i64::from(p.nofollow))),
        Text(p.error.as_ref().map(|e| e.kind.as_str())),
        Text(p.error.as_ref().map(|e| e.message.as_str())),
        Int(p.links_left_out.and_then(|n| i64::try_from(n).ok())),
    ]
}

/// A discovered URL's row, in the order of [`FRONTIER_ROW`], with the page it was found
/// on (none for seeds).
pub(super) fn frontier_row(d: &Discovered, from: Option<i64>) -> [Value<'_>; FRONTIER_COLUMNS] {
    use Value::{Int, Text};
    [
        Text(Some(d.url.as_str())),
        Text(Some(d.host.as_str())),
        Int(Some(i64::from(d.depth))),
        Int(Some(d.priority)),
        Int(from),
        Int(Some(i64::from(d.redirect_hops))),
        Text(Some(d.kind.as_str())),
    ]
}

/// A discovered URL with the page it was found on (none for seeds).
type Found<'a> = (&'a Discovered, Option<i64>);

/// A frontier row a transaction holds: id, depth, priority.
type HeldRow = (i64, i64, i64);

/// The ids of the first `n` of `rows` (none when `n` is not above 0), in the order `key`
/// gives them.
fn first_of<K: Ord>(mut rows: Vec<HeldRow>, n: i64, key: impl FnMut(&HeldRow) -> K) -> Vec<i64> {
    rows.sort_by_key(key);
    let n = usize::try_from(n).unwrap_or(0);
    rows.into_iter().take(n).map(|(id, _, _)| id).collect()
}

/// A batch of records by what each asks of the database.
pub(super) struct Sorted<'b> {
    /// Fetches to be tried again later: their rows only go back to the queue.
    pub retries: Vec<&'b PageRecord>,
    /// Every other record, whose frontier row is finished.
    pub visited: Vec<&'b PageRecord>,
    /// Revisits answered 304: only the visit is recorded.
    pub unchanged: Vec<&'b PageRecord>,
    /// Revisits that failed for now: the page stays, the failure is recorded beside it.
    pub failed_revisits: Vec<&'b PageRecord>,
    /// Pages whose rows and links are stored.
    pub pages: Vec<&'b PageRecord>,
    /// Those of `pages` stored before, whose old links go.
    pub revisited: Vec<i64>,
    /// What the batch found, each with the page it was found on: mostly `pages`' links,
    /// but a retried or unchanged page may bring its host's sitemaps too.
    pub discovered: Vec<(&'b Discovered, Option<i64>)>,
}

impl<'b> Sorted<'b> {
    pub(super) fn of(batch: &'b [PageRecord]) -> Self {
        let (retries, visited): (Vec<&PageRecord>, Vec<&PageRecord>) =
            batch.iter().partition(|p| p.retry_in.is_some());
        let (unchanged, stored): (Vec<&PageRecord>, Vec<&PageRecord>) =
            visited.iter().partition(|p| p.not_modified);
        let (failed_revisits, pages): (Vec<&PageRecord>, Vec<&PageRecord>) =
            stored.into_iter().partition(|p| p.failed_revisit);
        let revisited = pages
            .iter()
            .filter(|p| p.job.previous.is_some())
            .map(|p| p.job.id)
            .collect();
        let discovered = batch
            .iter()
            .flat_map(|p| p.discovered.iter().map(|d| (d, Some(p.job.id))))
            .collect();
        Self {
            retries,
            visited,
            unchanged,
            failed_revisits,
            pages,
            revisited,
            discovered,
        }
    }

    /// The hosts whose servers asked them to wait (see [`PageRecord::host_pause`]), each
    /// with when it may be asked again, a wait from `now` (unix ms).
    pub(super) fn host_pauses(&self, now: i64) -> impl Iterator<Item = (&'b str, i64)> + '_ {
        self.retries
            .iter()
            .chain(&self.visited)
            .filter_map(move |p| {
                Some((p.job.host.as_ref(), retry::due_at(now, Some(p.host_pause?))))
            })
    }
}

/// Gives the redirects found to close a loop (by frontier id) the errors they were
/// stored with.
pub(super) fn report_loops(batch: &mut [PageRecord], loops: Vec<(i64, String)>) {
    for (id, message) in loops {
        if let Some(page) = batch.iter_mut().find(|p| p.job.id == id) {
            page.error = Some(FetchError {
                kind: ErrorKind::Redirect,
                message,
            });
        }
    }
}

/// A host's next turn on `INSERT INTO hosts … ON CONFLICT`: the later of the time kept
/// and the one inserted, so that no wait a run recorded is cut short.
macro_rules! later_turn {
    () => {
        "next_allowed_at = CASE WHEN hosts.next_allowed_at > excluded.next_allowed_at
             THEN hosts.next_allowed_at ELSE excluded.next_allowed_at END"
    };
}
pub(super) use later_turn;

/// A page row found again as a sitemap robots.txt names: [`MOVE_UP`] turns it into one.
/// Moving up alone (a sitemap that redirects to a page waiting at a greater depth) is
/// not the site's word, and leaves the page a page.
macro_rules! named_sitemap {
    () => {
        "excluded.kind = 'sitemap' AND excluded.depth = 0 AND excluded.redirect_hops = 0
         AND frontier.kind = 'page' AND frontier.depth > 0"
    };
}

/// How a URL found again moves up: nearer the seeds, while it still waits. A page found
/// again as a sitemap robots.txt names (depth 0, no redirect) becomes one, queued again
/// if it was fetched as a page, which read nothing of it: a footer's link to
/// `/sitemap.xml`, crawled before sitemaps were turned on, would otherwise keep that
/// sitemap from ever being read. Seeds stay pages, and so does a page a sitemap
/// redirects to (`/sitemap.xml` sent home, as sites send every unknown URL) or an index
/// lists: those are not the site's word that the page is a sitemap.
/// The assignments, of the known row `frontier` from the URL found again `excluded`; a
/// macro, so that [`MOVE_UP`] and [`Db::move_up_known`] can hold it.
macro_rules! move_up_set {
    () => {
        concat!(
            " depth = CASE WHEN excluded.depth < frontier.depth
                  THEN excluded.depth ELSE frontier.depth END,
     priority = CASE WHEN excluded.depth < frontier.depth
                     THEN excluded.priority ELSE frontier.priority END,
     discovered_from = CASE WHEN excluded.depth < frontier.depth
                            THEN excluded.discovered_from ELSE frontier.discovered_from END,
     kind = CASE WHEN ",
            named_sitemap!(),
            " THEN excluded.kind ELSE frontier.kind END,
     not_before = CASE WHEN frontier.state = 'done' THEN 0 ELSE frontier.not_before END,
     attempts = CASE WHEN frontier.state = 'done' THEN 0 ELSE frontier.attempts END,
     recrawl_at = CASE WHEN frontier.state = 'done' THEN NULL ELSE frontier.recrawl_at END,
     recrawl_interval_ms = CASE WHEN frontier.state = 'done'
                                THEN NULL ELSE frontier.recrawl_interval_ms END,
     state = CASE WHEN frontier.state = 'leased' THEN 'leased' ELSE 'queued' END"
        )
    };
}

/// Which known rows [`move_up_set!`] changes; the others are left as they are.
macro_rules! move_up_when {
    () => {
        concat!(
            " (excluded.depth < frontier.depth AND frontier.state = 'queued')
    OR (",
            named_sitemap!(),
            " AND frontier.state IN ('queued', 'done'))"
        )
    };
}

/// The conflict clause of every insert into `frontier` but the traps', on SQLite, whose
/// one writer locks the whole database anyway: see [`Db::move_up_known`] for PostgreSQL.
///
/// A leased page found again nearer the seeds as a page moves up too, staying leased:
/// stored later, it takes its depth from the row ([`Db::nearer_depths`]), so that
/// `max_depth` counts the shorter path. Not on PostgreSQL, where the row may be another
/// node's to finish, and locking it to move it deadlocks with that node's batch: there
/// the depth is noted beside the row instead ([`Db::move_up_known`]).
const MOVE_UP: &str = concat!(
    " ON CONFLICT (url) DO UPDATE SET",
    move_up_set!(),
    " WHERE",
    move_up_when!(),
    " OR (excluded.depth < frontier.depth AND frontier.state = 'leased'
          AND frontier.kind = 'page' AND excluded.kind = 'page')"
);

/// A depth nearer the seeds noted for a leased row in `frontier_nearer`, with the priority
/// and the page it was found at there (see [`Db::move_up_known`]).
pub(super) struct Nearer {
    id: i64,
    depth: u32,
    priority: i64,
    discovered_from: Option<i64>,
}

impl Nearer {
    /// Moves each page of `batch` noted nearer than it was leased at to that depth, as
    /// [`parser::found_nearer`] does: not a retry, which goes back to the queue, nor a
    /// revisit, a page stored before (as on SQLite).
    fn move_pages(nearer: &[Self], batch: &mut [PageRecord], scope: &Scope) {
        for note in nearer {
            let page = batch.iter_mut().find(|p| p.job.id == note.id);
            if let Some(page) = page.filter(|p| p.retry_in.is_none() && p.job.previous.is_none()) {
                parser::found_nearer(page, note.depth, scope);
            }
        }
    }
}

/// A row of the batch [`Db::hold_leases`] holds: its id, and the depth, priority and page
/// noted nearest for it in `frontier_nearer`, if any.
type HeldLease = (i64, Option<i64>, Option<i64>, Option<i64>);

/// What adding URLs to the frontier did.
#[derive(Default)]
pub(super) struct Added {
    /// Rows new to the frontier, those never queued included.
    pub new: u64,
    /// Of those, the rows never queued.
    pub unqueued: Unqueued,
}

/// Rows stored for URLs never queued, each failed with a page row that says why: trap
/// rows, and rows of URLs robots.txt disallows ([`Discovered::disallowed`]), recorded as
/// the fetcher records them.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Unqueued {
    pub trapped: u64,
    pub disallowed: u64,
}

impl std::ops::AddAssign for Unqueued {
    fn add_assign(&mut self, other: Self) {
        self.trapped += other.trapped;
        self.disallowed += other.disallowed;
    }
}

/// Whether a found URL is recorded rather than queued: it looks like a trap, or its
/// host's robots.txt disallows it.
fn unqueued(d: &Discovered) -> bool {
    d.trap.is_some() || d.disallowed
}

/// `urls` split into those recorded rather than queued, and those queued. A URL also
/// found fine (where it is no trap, or on another host's page, whose robots.txt was not
/// held) is queued, on either backend. A set of the few unqueued, not of every queued URL.
pub(super) fn split_unqueued<'u, 'a>(
    urls: &'u [Found<'a>],
) -> (Vec<&'u Found<'a>>, Vec<&'u Found<'a>>) {
    let (mut unqueued, fine): (Vec<&Found<'a>>, Vec<&Found<'a>>) =
        urls.iter().partition(|(d, _)| unqueued(d));
    if !unqueued.is_empty() {
        let mut alone: BTreeSet<&str> = unqueued.iter().map(|(d, _)| d.url.as_str()).collect();
        for (d, _) in &fine {
            alone.remove(d.url.as_str());
        }
        unqueued.retain(|(d, _)| alone.contains(d.url.as_str()));
    }
    (unqueued, fine)
}

/// What a lease took.
pub struct Lease {
    pub jobs: Vec<CrawlJob>,
    /// `scope.max_pages` is reached: the pages stored come to it. Rows leased, this
    /// node's or others', hold leases back, but end no node: they may go back to the
    /// queue, or be URLs robots.txt disallows, which are stored uncounted.
    pub page_limit_reached: bool,
}

/// Which queued rows a lease may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LeaseRows {
    #[default]
    Any,
    /// All but revisits: a service leases those apart, as they fall due, so that new
    /// URLs and revisits each have their room in the window.
    New,
    /// Only revisits of pages stored already: at `scope.max_pages` a new URL would be a
    /// page too many, but a revisit replaces its page, so a database at its limit is
    /// still kept fresh.
    Revisits,
    /// Revisits, and URLs asked again by `--retry-failed`: those have their pages stored
    /// already too (with no interval: the requeue cleared it), and replace them.
    Stored,
}

impl LeaseRows {
    /// The condition, after a `WHERE`'s others, that picks these rows: a row put back in
    /// the queue for a revisit keeps the interval that scheduled it; a URL never fetched
    /// has none.
    pub(super) fn condition(self) -> &'static str {
        match self {
            Self::Any => "",
            Self::New => " AND recrawl_interval_ms IS NULL",
            Self::Revisits => " AND recrawl_interval_ms IS NOT NULL",
            Self::Stored => {
                " AND (recrawl_interval_ms IS NOT NULL
                       OR EXISTS (SELECT 1 FROM pages WHERE pages.id = frontier.id))"
            }
        }
    }

    /// Whether these are rows of pages stored already, as a crawl at its page limit
    /// leases: revisits, and a `--retry-failed` run's URLs with them.
    pub fn of_stored_pages(self) -> bool {
        matches!(self, Self::Revisits | Self::Stored)
    }

    /// The order a lease takes these rows in: revisits longest overdue first (their
    /// `recrawl_at`, kept while queued), so that revisits due faster than the crawl can
    /// make them fall behind evenly; the rest best first.
    pub(super) fn order(self) -> &'static str {
        match self {
            Self::Revisits => "recrawl_at, priority DESC, id",
            Self::Any | Self::New | Self::Stored => "priority DESC, id",
        }
    }

    /// The earliest time a queued row of these may be leased ([`Db::next_due`]).
    pub(super) fn next_due_sql(self) -> String {
        format!(
            "SELECT min(not_before) FROM frontier WHERE state = 'queued'{}",
            self.condition()
        )
    }
}

/// The pages requested: all but the rows of URLs refused as traps, disallowed by
/// robots.txt or on an address the guard refuses, which are never requested
/// ([`ErrorKind::requested`]). A macro, for [`COUNTED_PAGES`] to be a constant too.
macro_rules! requested_pages {
    () => {
        "coalesce(error_kind, '') NOT IN ('trap', 'robots', 'address_refused')"
    };
}

/// [`requested_pages`] as a condition on `pages`: what `query stats`' rates count.
pub const REQUESTED_PAGES: &str = requested_pages!();

/// The pages `scope.max_pages` counts: those requested (as the running count,
/// [`crate::summary::Tally::requested_pages`]).
const COUNTED_PAGES: &str = concat!("SELECT count(*) FROM pages WHERE ", requested_pages!());

/// URLs found and waiting in SQLite's `frontier_staged`: every merge empties the table
/// and SQLite numbers its rows from 1 again, so the largest rowid is the count.
const STAGED_COUNT: &str = "SELECT coalesce(max(rowid), 0) FROM frontier_staged";

/// What a trap row cut at its host's budget says after the host's name.
const OVER_BUDGET: &str = "has used its page budget";

/// The reason of a URL of `host` cut at its page budget, `traps.max_pages_per_host`.
fn over_budget(host: &str, budget: impl std::fmt::Display) -> String {
    format!("its host {host} {OVER_BUDGET}: traps.max_pages_per_host = {budget}")
}

/// Seeds `urls` as URLs to add: found on no page.
fn as_seeds(urls: &[Discovered]) -> Vec<Found<'_>> {
    urls.iter().map(|d| (d, None)).collect()
}

/// The trap rows of URLs cut at their hosts' budgets (`$1`: the cut's reason as a `LIKE`
/// pattern), for a query to pick columns of `f` (the frontier) from.
const CUT_AT_BUDGETS: &str = "FROM frontier f JOIN pages p ON p.id = f.id
     WHERE f.state = 'failed' AND p.error_kind = 'trap' AND p.error LIKE $1";

/// Failed rows that a run with other settings than the last one's may queue again.
#[derive(Debug, Clone, Copy)]
pub enum Cut {
    /// Left out by a narrower scope (see [`Db::drop_out_of_scope`]): no page.
    LeftOut,
    /// Trap rows cut by their URLs' shape, at the limits of [`crate::traps::SHAPE_RULES`].
    ByShape,
}

impl Cut {
    /// The SQL condition on a frontier row `f` that picks them.
    fn condition(self) -> String {
        match self {
            Self::LeftOut => "NOT EXISTS (SELECT 1 FROM pages p WHERE p.id = f.id)".to_owned(),
            Self::ByShape => {
                let rules: Vec<String> = crate::traps::SHAPE_RULES
                    .iter()
                    .map(|rule| format!("p.error LIKE '%traps.{rule} = %'"))
                    .collect();
                format!(
                    "EXISTS (SELECT 1 FROM pages p WHERE p.id = f.id AND p.error_kind = 'trap'
                     AND ({}))",
                    rules.join(" OR ")
                )
            }
        }
    }
}

/// The index a requeue within budgets reads a host's cut rows by, in its order, on
/// SQLite ([`Db::with_host_index`]): `(name, table and columns)`.
pub(super) const CUT_BY_HOST: (&str, &str) = (
    "frontier_cut_by_host",
    "frontier (host, depth, priority DESC, id) WHERE state = 'failed'",
);

/// The index a cut to budgets reads a host's queued rows by, in its order, on SQLite
/// ([`Db::with_host_index`]): `(name, table and columns)`.
pub(super) const QUEUED_BY_HOST: (&str, &str) = (
    "frontier_queued_by_host",
    "frontier (host, depth DESC, priority, id DESC) WHERE state = 'queued' AND depth > 0",
);

/// Rows read at a time by the passes over every row of a kind (pages with no revisit
/// scheduled, URLs a narrower scope left out): memory holds one batch of them, however
/// many the crawl has. Few in tests, so that a small database takes several.
#[cfg(not(test))]
pub(super) const PASS_BATCH: i64 = 1_000;
#[cfg(test)]
pub(super) const PASS_BATCH: i64 = 100;

/// URLs added per transaction when a wider scope takes links an earlier one dropped.
const READMIT_BATCH: usize = 1_000;

/// A stored link, as [`Db::readmit_links`] offers it.
pub struct FoundLink<'a> {
    pub target: &'a str,
    /// The linking page's depth.
    pub depth: u32,
    pub rel: Option<&'a str>,
    /// The linking page asked that its links not be followed.
    pub page_nofollow: bool,
}

/// What [`Db::readmit_links`] has done so far, kept across its runs.
#[derive(Default)]
pub(super) struct Readmitted {
    /// Links read.
    pub(super) read: u64,
    /// URLs added to the frontier.
    pub(super) added: u64,
    /// Of those, trap rows: past their hosts' budgets.
    pub(super) trapped: u64,
    /// URLs admitted and not added yet, each with the page that links to it.
    admitted: Vec<(Discovered, i64)>,
}

/// The frontier rows a batch added, for the hosts' page budgets.
enum NewRows<'u> {
    /// Each new row and the URL it holds (PostgreSQL: other nodes insert too, so only
    /// the insert's `RETURNING` tells this transaction's rows from theirs).
    Listed(Vec<(i64, &'u Discovered)>),
    /// The rows above this id (SQLite: the transaction is the only writer).
    Above(i64),
}

/// The store on one database: a pool that writes and a pool for questions asked while
/// the crawl writes (on SQLite a read-only one; PostgreSQL needs no second pool).
pub struct Db<DB: Database> {
    pub(super) pool: Pool<DB>,
    pub(super) readers: Pool<DB>,
    /// SQLite's WAL checkpoints beside the writer; PostgreSQL has none.
    pub(super) checkpoints: Option<Arc<Checkpoints>>,
    /// One crawl at a time on SQLite; nodes share PostgreSQL.
    pub(super) crawl_lock: Option<Arc<CrawlLock>>,
    /// The node's wall clock: a test's is set off from the others'
    /// ([`super::Store::with_clock`]).
    pub(super) clock: fn() -> SystemTime,
}

impl<DB: Database> Db<DB> {
    /// The crawl's lock goes last: another crawl may open the database once it is gone.
    /// Closed all the same when the WAL could not be copied into the database, which is
    /// the error. Another program's reader, which keeps the WAL, is waited for up to
    /// `readers_wait`.
    pub(super) async fn close(&self, readers_wait: ReadersWait) -> Result<(), Error> {
        let copied = match &self.checkpoints {
            Some(checkpoints) => checkpoints.stop(readers_wait).await,
            None => Ok(()),
        };
        self.readers.close().await;
        self.pool.close().await;
        if let Some(lock) = &self.crawl_lock {
            lock.release();
        }
        copied
    }
}

impl<DB: Database> Clone for Db<DB> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            readers: self.readers.clone(),
            checkpoints: self.checkpoints.clone(),
            crawl_lock: self.crawl_lock.clone(),
            clock: self.clock,
        }
    }
}

impl<DB: Backend + HasStatementCache> Db<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    i64: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
    String: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
    Option<i64>: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
    Option<String>: Type<DB> + for<'r> Decode<'r, DB>,
    for<'s> &'s str: Type<DB> + Encode<'s, DB> + Decode<'s, DB> + ColumnIndex<DB::Row>,
    for<'s> Option<&'s str>: Type<DB> + Encode<'s, DB>,
    usize: ColumnIndex<DB::Row>,
{
    /// Drops the indexes built at a crawl's end, and marks the link counts to be rebuilt
    /// then, when the crawl ahead is large beside what is stored (at least a tenth as
    /// many URLs queued as pages stored): the rebuild costs in proportion to what is
    /// stored, keeping them current in proportion to what is new. Returns whether it did.
    ///
    /// An index that revisits need (see [`DeferredIndex::finds_old_links`]) stays while
    /// any are queued, and is built now if a killed crawl left it out. One a budget pass
    /// killed midway left ([`Db::with_host_index`]) goes: every insert would keep it.
    pub async fn defer_derived(&self) -> Result<bool, Error> {
        if DB::DEFERRED_INDEXES.is_empty() {
            return Ok(false);
        }
        self.drop_host_indexes([CUT_BY_HOST.0, QUEUED_BY_HOST.0])
            .await?;
        let (queued, stored, revisits): (i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM frontier WHERE state = 'queued'),
                    (SELECT count(*) FROM pages),
                    EXISTS (SELECT 1 FROM frontier f JOIN pages p ON p.id = f.id
                            WHERE f.state = 'queued')",
        )
        .fetch_one(&self.pool)
        .await
        .doing("sizing the crawl ahead")?;
        if queued.saturating_mul(10) < stored {
            // This run's writer keeps the counts from here on, so they are made exact
            // first (a killed crawl left them behind), with every index left out (the
            // one they are counted through, those revisits need). A run deferring them
            // again counts them once, at its end.
            self.catch_up_derived().await?;
            return Ok(false);
        }
        let revisits = revisits != 0;
        let (deferred, kept): (Vec<&DeferredIndex>, Vec<&DeferredIndex>) = DB::DEFERRED_INDEXES
            .iter()
            .partition(|index| !(revisits && index.finds_old_links));
        if revisits {
            self.build_indexes(kept.into_iter().map(|index| (index.name, index.on)))
                .await?;
        }
        for index in deferred {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP INDEX IF EXISTS {}",
                index.name
            )))
            .execute(&self.pool)
            .await
            .doing("dropping an index to build it at the end")?;
        }
        link_counts::mark_behind(&self.pool).await?;
        Ok(true)
    }

    /// Builds the deferred indexes that are missing and the link counts if they are
    /// behind (after a crawl, or one that was killed). The counts come after the index:
    /// counting in-links reads `links` in target order from it. One a budget pass killed
    /// midway left ([`Db::with_host_index`]) goes: every insert would keep it. Returns
    /// whether the counts were behind.
    pub async fn build_derived(&self) -> Result<bool, Error> {
        if DB::DEFERRED_INDEXES.is_empty() {
            return Ok(false);
        }
        self.drop_host_indexes([CUT_BY_HOST.0, QUEUED_BY_HOST.0])
            .await?;
        let mut conn = self
            .build_indexes(
                DB::DEFERRED_INDEXES
                    .iter()
                    .map(|index| (index.name, index.on)),
            )
            .await?;
        link_counts::rebuild_if_behind::<DB>(&mut conn).await
    }

    /// [`Db::build_derived`] before a run that keeps the link counts, which a run that
    /// stopped abruptly left behind, or an operator who deleted rows marked not kept
    /// (README's "Taking a site out"): the log says either, not a crash that never was.
    pub async fn catch_up_derived(&self) -> Result<(), Error> {
        if self.build_derived().await? {
            tracing::info!(
                "in-link and anchor counts rebuilt from links: the last run stopped before \
                 it counted them, or rows were deleted and the counts marked not kept"
            );
        }
        Ok(())
    }

    /// Builds those of `indexes` (name, then table and columns as `CREATE INDEX … ON`
    /// takes them) that are missing; returns the connection it used.
    async fn build_indexes<'i>(
        &self,
        indexes: impl IntoIterator<Item = (&'i str, &'i str)>,
    ) -> Result<PoolConnection<DB>, Error> {
        let (before, after) = DB::around_bulk_sort();
        let mut conn = self.pool.acquire().await.doing("building an index")?;
        sqlx::query(sqlx::AssertSqlSafe(before))
            .execute(&mut *conn)
            .await
            .doing("preparing to build an index")?;
        for (name, on) in indexes {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "CREATE INDEX IF NOT EXISTS {name} ON {on}"
            )))
            .execute(&mut *conn)
            .await
            .doing("building an index")?;
        }
        sqlx::query(sqlx::AssertSqlSafe(after))
            .execute(&mut *conn)
            .await
            .doing("after building an index")?;
        Ok(conn)
    }

    /// URLs queued (retries included), staged ([`Db::staged_count`]) and leased to
    /// `owner`, in one statement: one snapshot of the table. Read one after another, a
    /// URL could move on between two reads (a lease, a merge, a page stored with the URLs
    /// it found) and be in none of the counts.
    ///
    /// On PostgreSQL the URLs other nodes hold leased count as queued: they are in no
    /// count of `owner`'s, and a node with nothing in hand (one of more nodes than hosts
    /// with work, or one just started) said by three 0s that the crawl had nothing left
    /// while the others fetched its last URLs.
    pub async fn queue_counts(&self, owner: &str) -> Result<QueueCounts, Error> {
        // A bare 0 is an `integer` to PostgreSQL, not the `bigint` read.
        let (staged, queued) = if DB::SHARED {
            (
                "SELECT CAST(0 AS BIGINT)",
                "state = 'queued' OR (state = 'leased' AND lease_owner <> $1)",
            )
        } else {
            (STAGED_COUNT, "state = 'queued'")
        };
        let (queued, staged, leased) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT (SELECT count(*) FROM frontier WHERE {queued}), ({staged}),
                    (SELECT count(*) FROM frontier WHERE state = 'leased' AND lease_owner = $1)"
        )))
        .bind(owner)
        .fetch_one(&self.readers)
        .await
        .doing("counting queued URLs")?;
        Ok(QueueCounts {
            queued,
            staged,
            leased,
        })
    }

    /// URLs found and waiting in SQLite's `frontier_staged` to join the frontier (0 on
    /// PostgreSQL, whose nodes add them at once).
    pub async fn staged_count(&self) -> Result<i64, Error> {
        if DB::SHARED {
            return Ok(0);
        }
        sqlx::query_scalar(STAGED_COUNT)
            .fetch_one(&self.readers)
            .await
            .doing("counting staged URLs")
    }

    /// The `limit` hosts with the most known URLs, by state.
    pub async fn host_counts(&self, limit: i64) -> Result<Vec<HostCounts>, Error> {
        let rows = sqlx::query(
            "SELECT host, sum(CASE WHEN state IN ('queued', 'leased') THEN 1 ELSE 0 END) AS queued,
                    sum(CASE WHEN state = 'done' THEN 1 ELSE 0 END) AS done,
                    sum(CASE WHEN state = 'failed' THEN 1 ELSE 0 END) AS failed
             FROM frontier GROUP BY host ORDER BY count(*) DESC, host LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.readers)
        .await
        .doing("counting URLs per host")?;
        Ok(rows
            .into_iter()
            .map(|r| HostCounts {
                host: r.get("host"),
                queued: r.get("queued"),
                done: r.get("done"),
                failed: r.get("failed"),
            })
            .collect())
    }

    /// A seed of each host and scheme given so far (by config or over the API): frontier
    /// rows no page led to. What the start and a reload take of them is their hosts
    /// (scope, trust) and schemes (`fetch.host_headers`), and a seeds file leaves a
    /// million on a few hosts.
    pub async fn seeds_by_host(&self) -> Result<Vec<Url>, Error> {
        let urls: Vec<String> = sqlx::query_scalar(
            "SELECT min(url) FROM frontier
             WHERE discovered_from IS NULL AND kind = 'page' AND depth = 0
             GROUP BY host, url LIKE 'https:%'",
        )
        .fetch_all(&self.readers)
        .await
        .doing("reading the seeds")?;
        Ok(urls.iter().filter_map(|u| Url::parse(u).ok()).collect())
    }

    /// Where seeds redirected to, one URL a host (their hosts are what is taken):
    /// depth 0 is a seed's, and a redirect keeps its depth.
    pub async fn seed_redirects(&self) -> Result<Vec<Url>, Error> {
        let urls: Vec<String> = sqlx::query_scalar(
            "SELECT min(url) FROM frontier
             WHERE discovered_from IS NOT NULL AND kind = 'page' AND depth = 0
               AND redirect_hops > 0
             GROUP BY host",
        )
        .fetch_all(&self.readers)
        .await
        .doing("reading where the seeds redirected")?;
        Ok(urls.iter().filter_map(|u| Url::parse(u).ok()).collect())
    }

    /// Puts rows leased by a process that is gone back in the queue. One process owns a
    /// SQLite database, so there every lease is stale. On a shared database, those of
    /// `owner` (a node restarted under its old name): other nodes' expired leases go back
    /// when this node joins the cluster, as they do while it runs
    /// ([`crate::store::cluster::Cluster::reclaim_expired`]).
    pub async fn recover_leases(&self, owner: &str) -> Result<u64, Error> {
        let done = if DB::SHARED {
            sqlx::query(
                "UPDATE frontier SET state = 'queued', lease_owner = NULL, lease_expires = NULL
                 WHERE state = 'leased' AND (lease_owner = $1 OR lease_expires IS NULL)",
            )
            .bind(owner)
            .execute(&self.pool)
            .await
        } else {
            sqlx::query(
                "UPDATE frontier SET state = 'queued', lease_owner = NULL, lease_expires = NULL
                 WHERE state = 'leased'",
            )
            .execute(&self.pool)
            .await
        };
        let done = done.doing("returning stale leases to the queue")?;
        Ok(DB::rows_affected(&done))
    }

    /// Adds URLs to the frontier; those already known are left as they are. Returns how
    /// many were new.
    /// All or none: when the database refuses them, the error names the URL it refuses,
    /// if one alone is ([`Db::refused_url`]).
    pub async fn enqueue(&self, urls: &[Discovered]) -> Result<u64, Error> {
        self.admit_hosts_of(urls).await?;
        self.insert_seeds(urls).await
    }

    /// Adds seeds sent to a running crawl, as [`Db::enqueue`] does, and queues again,
    /// within `max_pages_per_host`, the URLs of their hosts an earlier run cut at their
    /// domain's limit, as a start naming them does: the user asked for those hosts. All
    /// in one transaction ([`Db::name_hosts`]), so that a seed refused queues nothing.
    /// Returns how many seeds are queued that were not: new ones, and those cut and
    /// queued again.
    pub async fn enqueue_seeds(
        &self,
        urls: &[Discovered],
        max_pages_per_host: u64,
    ) -> Result<u64, Error> {
        let hosts: Vec<&str> = urls.iter().map(|d| d.host.as_str()).collect();
        let (added, requeued) = self.name_hosts(&hosts, urls, max_pages_per_host).await?;
        if requeued.is_empty() {
            return Ok(added);
        }
        let requeued: BTreeSet<i64> = requeued.into_iter().collect();
        let seeds: Vec<&str> = urls.iter().map(|d| d.url.as_str()).collect();
        let mut conn = self
            .pool
            .acquire()
            .await
            .doing("finding the seeds queued again")?;
        let ids: Vec<i64> = select_on_list(
            &mut conn,
            "SELECT id FROM frontier WHERE url IN ",
            &seeds,
            "finding the seeds queued again",
        )
        .await?;
        let again = ids.iter().filter(|id| requeued.contains(id)).count();
        Ok(added + u64::try_from(again).unwrap_or(u64::MAX))
    }

    /// Which of `urls` the frontier holds, spelt as given.
    pub async fn known_urls(&self, urls: &[&str]) -> Result<Vec<String>, Error> {
        let mut conn = self.pool.acquire().await.doing("finding URLs known")?;
        select_on_list(
            &mut conn,
            "SELECT url FROM frontier WHERE url IN ",
            urls,
            "finding URLs known",
        )
        .await
    }

    /// Admits the hosts of seeds `urls` uncounted ([`Db::admit_named_hosts`]).
    async fn admit_hosts_of(&self, urls: &[Discovered]) -> Result<Vec<String>, Error> {
        let hosts: Vec<&str> = urls.iter().map(|d| d.host.as_str()).collect();
        self.admit_named_hosts(&hosts).await
    }

    /// Adds seeds `urls`, their hosts admitted: see [`Db::enqueue`].
    async fn insert_seeds(&self, urls: &[Discovered]) -> Result<u64, Error> {
        let urls_from = as_seeds(urls);
        // Seeds count against their hosts' budgets, and are never over one.
        match self.insert_committed(&urls_from, 0).await {
            Err(e) => Err(self.refused_seed(&urls_from, e).await),
            Ok(added) => Ok(added.new),
        }
    }

    /// Admits `hosts`, the user's names (the seeds', those `scope.hosts` writes without
    /// a wildcard), uncounted: never over `traps.max_hosts_per_domain`; queues again,
    /// within `max_pages_per_host`, the URLs an earlier run cut at their domain's limit
    /// of those not admitted yet; and adds seeds `urls` (none for a start's or a
    /// reload's names: their seeds are added after, their hosts admitted). Returns how
    /// many seeds were new, and the rows queued again.
    ///
    /// In one transaction: only a name new to `known_hosts` has its cut URLs looked for,
    /// so a name admitted apart from them (a kill, an outage or a refusal between the
    /// two) kept them trap rows for good, and a seed among them was answered `known`
    /// when sent again. A cut name is admitted with its rows and budget held, in a page
    /// batch's lock order; on SQLite the index its rows are read by is built before.
    pub async fn name_hosts(
        &self,
        hosts: &[&str],
        urls: &[Discovered],
        max_pages_per_host: u64,
    ) -> Result<(u64, Vec<i64>), Error> {
        let mut hosts = hosts.to_vec();
        hosts.sort_unstable();
        hosts.dedup();
        let doing = "admitting named hosts";
        let mut conn = self.pool.acquire().await.doing(doing)?;
        let cut = !Self::cut_named(&mut conn, &hosts).await?.is_empty();
        drop(conn);
        let urls_from = as_seeds(urls);
        let named = async {
            let mut tx = self.pool.begin().await.doing(doing)?;
            let requeued = Self::requeue_named(&mut tx, &hosts, max_pages_per_host).await?;
            DomainBudget::admit(&mut tx, &hosts).await?;
            // Seeds count against their hosts' budgets, and are never over one.
            let added = Self::insert_on(&mut tx, &urls_from, 0).await?.new;
            tx.commit().await.doing(doing)?;
            Ok((added, requeued))
        };
        let named = if cut {
            self.with_host_index(CUT_BY_HOST, named).await
        } else {
            named.await
        };
        match named {
            Err(e) => Err(self.refused_seed(&urls_from, e).await),
            named => named,
        }
    }

    /// `error`, met adding seeds `urls_from`: a refusal names the URL refused, if one
    /// alone is ([`Db::refused_url`]).
    async fn refused_seed(&self, urls_from: &[Found<'_>], error: Error) -> Error {
        if error.is_refusal() && !urls_from.is_empty() {
            self.refused_url(urls_from, error).await
        } else {
            error
        }
    }

    /// Adds URLs found on stored pages, in a transaction of their own, as the writer adds
    /// those of the pages it commits.
    async fn insert_committed(
        &self,
        urls_from: &[(&Discovered, Option<i64>)],
        max_pages_per_host: u64,
    ) -> Result<Added, Error> {
        let (tx, added) = self
            .insert_uncommitted(urls_from, max_pages_per_host)
            .await?;
        tx.commit().await.doing("adding URLs")?;
        Ok(added)
    }

    /// [`Db::insert_committed`] up to the commit, which is the caller's: dropped, the
    /// transaction is rolled back.
    async fn insert_uncommitted(
        &self,
        urls_from: &[(&Discovered, Option<i64>)],
        max_pages_per_host: u64,
    ) -> Result<(sqlx::Transaction<'static, DB>, Added), Error> {
        let mut tx = self.pool.begin().await.doing("starting to add URLs")?;
        let added = Self::insert_on(&mut tx, urls_from, max_pages_per_host).await?;
        Ok((tx, added))
    }

    /// Adds URLs found on stored pages (or seeds) in `tx`, their hosts with them.
    /// Returns how many were new, and of those how many are trap rows.
    async fn insert_on(
        tx: &mut Conn<DB>,
        urls_from: &[(&Discovered, Option<i64>)],
        max_pages_per_host: u64,
    ) -> Result<Added, Error> {
        if urls_from.is_empty() {
            return Ok(Added::default());
        }
        let added = Self::insert_frontier(tx, urls_from, max_pages_per_host).await?;
        let mut script = Script::new();
        Self::insert_hosts(&mut script, urls_from.iter().map(|(d, _)| d.host.as_str()));
        script.run(tx).await?;
        Ok(added)
    }

    /// `refusal`, of `urls_from` together, as the refusal of the one URL the database
    /// refuses alone, for whoever sent them to mend it: halves are tried in transactions
    /// rolled back, so nothing is stored, and only after a refusal (some 2 log2 n
    /// tries). URLs refused only together, or a try that fails otherwise, leave the
    /// refusal as it was.
    async fn refused_url(&self, urls_from: &[Found<'_>], mut refusal: Error) -> Error {
        let mut part = urls_from;
        'halving: while part.len() > 1 {
            let (low, high) = part.split_at(part.len() / 2);
            for half in [low, high] {
                match self.insert_uncommitted(half, 0).await {
                    Err(refused) if refused.is_refusal() => {
                        (part, refusal) = (half, refused);
                        continue 'halving;
                    }
                    Err(_) => return refusal,
                    Ok(_) => {}
                }
            }
            return refusal;
        }
        match part {
            [(url, _)] => Error::RefusedUrl {
                url: url.url.to_string(),
                source: Box::new(refusal),
            },
            _ => refusal,
        }
    }

    /// A value the crawl keeps between runs (`crawl_state`), if set.
    pub async fn crawl_state(&self, key: &str) -> Result<Option<i64>, Error> {
        sqlx::query_scalar("SELECT value FROM crawl_state WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .doing("reading the crawl's state")
    }

    pub async fn set_crawl_state(&self, key: &str, value: i64) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO crawl_state (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await
        .doing("saving the crawl's state")?;
        Ok(())
    }

    pub async fn clear_crawl_state(&self, key: &str) -> Result<(), Error> {
        let deleted = sqlx::query("DELETE FROM crawl_state WHERE key = $1")
            .bind(key)
            .execute(&self.pool)
            .await;
        deleted.doing("clearing the crawl's state").map(drop)
    }

    /// Whether a page fetched at `since` or later got an answer from its server: a
    /// status, or an error other than `unreached`'s (ours, or the server's refusal).
    pub async fn answered_since(
        &self,
        since: SystemTime,
        unreached: &[ErrorKind],
    ) -> Result<bool, Error> {
        let kinds: Vec<String> = unreached
            .iter()
            .map(|k| format!("'{}'", k.as_str()))
            .collect();
        // The kinds are our own constants.
        let answered: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM (SELECT 1 FROM pages WHERE fetched_at >= $1
                 AND (status IS NOT NULL OR error_kind NOT IN ({})) LIMIT 1) answered",
            kinds.join(", ")
        )))
        .bind(rfc3339(since))
        .fetch_one(&self.readers)
        .await
        .doing("reading whether earlier runs got answers")?;
        Ok(answered > 0)
    }

    /// Sets every row's priority to what `priority` makes of its URL and depth, where
    /// that differs: a boost rule added, changed or taken out reaches the URLs queued
    /// before it as it does those found after. Returns how many rows changed.
    pub async fn reprioritize(
        &self,
        mut priority: impl FnMut(&Url, u32) -> i64,
    ) -> Result<u64, Error> {
        let (mut after, mut changed) = (0_i64, 0);
        loop {
            let rows = sqlx::query(
                "SELECT id, url, depth, priority FROM frontier WHERE id > $1 ORDER BY id LIMIT $2",
            )
            .bind(after)
            .bind(PASS_BATCH)
            .fetch_all(&self.readers)
            .await
            .doing("reading URLs to prioritize again")?;
            let Some(last) = rows.last() else {
                return Ok(changed);
            };
            after = last.get("id");
            let new: Vec<(i64, i64)> = rows
                .iter()
                .filter_map(|row| {
                    let url = Url::parse(row.get::<&str, _>("url")).ok()?;
                    let depth = u32::try_from(row.get::<i64, _>("depth")).unwrap_or(u32::MAX);
                    let now = priority(&url, depth);
                    (now != row.get::<i64, _>("priority")).then(|| (row.get("id"), now))
                })
                .collect();
            if new.is_empty() {
                continue;
            }
            let mut q = QueryBuilder::<DB>::new("UPDATE frontier SET priority = CASE id");
            for &(id, priority) in &new {
                q.push(" WHEN ")
                    .push_bind(id)
                    .push(" THEN ")
                    .push_bind(priority);
            }
            q.push(" ELSE priority END WHERE id IN ");
            let ids: Vec<i64> = new.iter().map(|&(id, _)| id).collect();
            push_id_list(&mut q, &ids);
            q.build()
                .persistent(false)
                .execute(&self.pool)
                .await
                .doing("prioritizing URLs again")?;
            changed += new.len() as u64;
        }
    }

    /// Queues again the `which` rows that `keep` now takes, counted against their
    /// hosts' budgets (`max_pages_per_host`, 0: no limit): those a narrower scope left
    /// out gave theirs back then, and trap rows never spent any. Those beyond become
    /// trap rows. Returns how many are queued, and how many are trap rows.
    pub async fn requeue_left_out(
        &self,
        which: Cut,
        mut keep: impl FnMut(&Url, u32, JobKind) -> bool,
        max_pages_per_host: u64,
    ) -> Result<(u64, u64), Error> {
        let (mut after, mut queued, mut trapped) = (0_i64, 0, 0);
        let select = format!(
            "SELECT id, url, host, depth, priority, redirect_hops, kind FROM frontier f
             WHERE id > $1 AND state = 'failed' AND {}
             ORDER BY id LIMIT $2",
            which.condition()
        );
        loop {
            let rows = sqlx::query(sqlx::AssertSqlSafe(select.as_str()))
                .bind(after)
                .bind(PASS_BATCH)
                .fetch_all(&self.readers)
                .await
                .doing("reading URLs left out")?;
            let Some(last) = rows.last() else {
                return Ok((queued, trapped));
            };
            after = last.get("id");
            let taken: BTreeMap<i64, Discovered> = rows
                .iter()
                .filter_map(|row| {
                    let url = Url::parse(row.get::<&str, _>("url")).ok()?;
                    let depth = u32::try_from(row.get::<i64, _>("depth")).unwrap_or(u32::MAX);
                    let kind = JobKind::from_stored(row.get("kind"));
                    keep(&url, depth, kind).then(|| {
                        let found = Discovered {
                            url,
                            host: row.get("host"),
                            depth,
                            priority: row.get("priority"),
                            redirect_hops: u32::try_from(row.get::<i64, _>("redirect_hops"))
                                .unwrap_or(u32::MAX),
                            kind,
                            trap: None,
                            disallowed: false,
                        };
                        (row.get("id"), found)
                    })
                })
                .collect();
            if !taken.is_empty() {
                let spent = self
                    .requeue_taken(which, &taken, max_pages_per_host)
                    .await?;
                queued += spent.new - spent.unqueued.trapped;
                trapped += spent.unqueued.trapped;
            }
        }
    }

    /// Queues again the rows of `taken` (by id, `which` rows) still failed, in a
    /// transaction, within their hosts' budgets; returns how many it took, and how many of
    /// those are trapped.
    async fn requeue_taken(
        &self,
        which: Cut,
        taken: &BTreeMap<i64, Discovered>,
        max_pages_per_host: u64,
    ) -> Result<Added, Error> {
        let mut tx = self.pool.begin().await.doing("queuing URLs left out")?;
        let mut q = QueryBuilder::<DB>::new(
            "UPDATE frontier SET state = 'queued' WHERE state = 'failed' AND id IN ",
        );
        let ids: Vec<i64> = taken.keys().copied().collect();
        push_id_list(&mut q, &ids);
        q.push(" RETURNING id");
        let requeued: Vec<i64> = q
            .build_query_scalar()
            .persistent(false)
            .fetch_all(&mut *tx)
            .await
            .doing("queuing URLs left out")?;
        // A trap row's page goes; a row left out has none.
        if let Cut::ByShape = which {
            execute_on_list(
                &mut tx,
                "DELETE FROM pages WHERE id IN ",
                &requeued,
                "queuing URLs left out",
            )
            .await?;
        }
        let rows = requeued
            .iter()
            .filter_map(|id| taken.get(id).map(|found| (*id, found)))
            .collect();
        let spent =
            Self::spend_host_budgets(&mut tx, NewRows::Listed(rows), max_pages_per_host).await?;
        tx.commit().await.doing("queuing URLs left out")?;
        Ok(spent)
    }

    /// Offers `admit` every stored link whose target the frontier does not know (those a
    /// narrower scope dropped when they were found), and adds the URLs it returns, as
    /// found on the link's page, within the hosts' budgets. Returns the links read and
    /// the URLs added, in `done`.
    ///
    /// Run again after an outage (see `outage`) with the same `admit` and `done`: the
    /// URLs `admit` took that no transaction added yet wait in `done`, and go first.
    /// `admit` offers a URL once (the crawl's seen-URL cache), so a run begun afresh
    /// lost those; the URLs added before are in the frontier, and not offered again.
    /// Links read again are counted again.
    ///
    /// `to_hosts` narrows it to the links whose target is on one of these hosts (any
    /// scheme and port): ranges of the `links_target` index, where a new seed's host
    /// would otherwise cost a pass over every link.
    pub async fn readmit_links(
        &self,
        to_hosts: Option<&[String]>,
        mut admit: impl FnMut(FoundLink<'_>) -> Option<Discovered>,
        max_pages_per_host: u64,
        done: &mut Readmitted,
    ) -> Result<(), Error> {
        const LEFT_OUT: &str = "SELECT l.source_id, l.target_url, l.rel, p.depth, p.nofollow
             FROM links l JOIN pages p ON p.id = l.source_id
             WHERE NOT EXISTS (SELECT 1 FROM frontier f WHERE f.url = l.target_url)";
        self.add_admitted(done, max_pages_per_host).await?;
        let ranges: Vec<Option<(String, String)>> = match to_hosts {
            None => vec![None],
            Some(hosts) => hosts
                .iter()
                .flat_map(|host| urlnorm::host_ranges(host))
                .map(Some)
                .collect(),
        };
        let in_range = format!("{LEFT_OUT} AND l.target_url >= $1 AND l.target_url < $2");
        for range in ranges {
            let query = match range {
                Some((from, to)) => sqlx::query(sqlx::AssertSqlSafe(in_range.as_str()))
                    .bind(from)
                    .bind(to),
                None => sqlx::query(LEFT_OUT),
            };
            let mut rows = query.fetch(&self.readers);
            while let Some(row) = rows.try_next().await.doing("reading links left out")? {
                done.read += 1;
                let rel: Option<String> = row.get("rel");
                let found = FoundLink {
                    target: row.get("target_url"),
                    depth: u32::try_from(row.get::<i64, _>("depth")).unwrap_or(u32::MAX),
                    rel: rel.as_deref(),
                    page_nofollow: row.get::<i64, _>("nofollow") != 0,
                };
                if let Some(url) = admit(found) {
                    done.admitted.push((url, row.get("source_id")));
                }
                if done.admitted.len() >= READMIT_BATCH {
                    self.add_admitted(done, max_pages_per_host).await?;
                }
            }
        }
        self.add_admitted(done, max_pages_per_host).await
    }

    /// Adds the URLs `done` admitted and has not added yet, in a transaction.
    async fn add_admitted(
        &self,
        done: &mut Readmitted,
        max_pages_per_host: u64,
    ) -> Result<(), Error> {
        if done.admitted.is_empty() {
            return Ok(());
        }
        let urls_from: Vec<(&Discovered, Option<i64>)> = done
            .admitted
            .iter()
            .map(|(d, from)| (d, Some(*from)))
            .collect();
        let added = self
            .insert_committed(&urls_from, max_pages_per_host)
            .await?;
        done.added += added.new;
        done.trapped += added.unqueued.trapped;
        done.admitted.clear();
        Ok(())
    }

    /// Pages stored so far that count against `max_pages` (a resumed crawl counts them).
    pub async fn page_count(&self) -> Result<u64, Error> {
        self.count_pages(COUNTED_PAGES).await
    }

    /// Every page row, those of URLs never requested (traps, robots.txt's) included: what
    /// `query stats` and `SELECT count(*) FROM pages` count, for a figure a user checks.
    pub async fn page_rows(&self) -> Result<u64, Error> {
        self.count_pages("SELECT count(*) FROM pages").await
    }

    async fn count_pages(&self, sql: &'static str) -> Result<u64, Error> {
        let n: i64 = sqlx::query_scalar(sql)
            .fetch_one(&self.pool)
            .await
            .doing("counting pages")?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The depths the frontier rows `leased_at` (id → depth leased at) have moved up to
    /// since they were leased, by id: each URL found nearer the seeds while its page was
    /// on its way (see [`MOVE_UP`]). One statement for a batch, not one per page.
    pub async fn nearer_depths(
        &self,
        leased_at: &HashMap<i64, u32>,
    ) -> Result<HashMap<i64, u32>, Error> {
        let ids: Vec<i64> = leased_at.keys().copied().collect();
        let mut nearer = HashMap::new();
        for chunk in ids.chunks(MAX_BINDS) {
            let mut q = QueryBuilder::<DB>::new("SELECT id, depth FROM frontier WHERE id IN ");
            push_id_list(&mut q, chunk);
            let rows: Vec<(i64, i64)> = q
                .build_query_as()
                .persistent(false)
                .fetch_all(&self.pool)
                .await
                .doing("reading the depths of the batch's URLs")?;
            nearer.extend(rows.into_iter().filter_map(|(id, depth)| {
                let depth = u32::try_from(depth).ok()?;
                (depth < *leased_at.get(&id)?).then_some((id, depth))
            }));
        }
        Ok(nearer)
    }

    /// Leases up to `limit` queued rows, best priority first.
    ///
    /// On a shared database, `max_pages` (`scope.max_pages`) counts what every node
    /// stored and holds leased: each node counting only its own would let every node
    /// store that many. Nodes lease one at a time, holding the row of `page_limit`, so
    /// two leases cannot both take the last of it. Its `bound` is never below that
    /// count (see the migration): a lease it shows to be far from the limit (more than
    /// `limit` rows short) counts nothing; one nearer counts, and sets it.
    pub async fn lease(
        &self,
        owner: &str,
        limit: usize,
        lease_for: Duration,
        (max_pages, rows): (Option<u64>, LeaseRows),
    ) -> Result<Lease, Error> {
        let now = unix_ms((self.clock)());
        let lease_for = i64::try_from(lease_for.as_millis()).unwrap_or(i64::MAX / 2);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let lease = |limit: i64| {
            sqlx::query(sqlx::AssertSqlSafe(DB::lease_sql(rows)))
                .bind(owner)
                .bind(lease_for)
                .bind(now)
                .bind(limit)
        };
        let mut page_limit_reached = false;
        let rows = match max_pages.filter(|_| DB::SHARED) {
            None => lease(limit)
                .fetch_all(&self.pool)
                .await
                .doing("leasing frontier rows")?,
            Some(max) => {
                let mut tx = self.pool.begin().await.doing("leasing frontier rows")?;
                // Made again if someone deleted it, with its bound not known.
                let bound: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO page_limit (id, bound) VALUES (0, NULL)
                     ON CONFLICT (id) DO UPDATE SET bound = page_limit.bound
                     RETURNING bound",
                )
                .fetch_one(&mut *tx)
                .await
                .doing("waiting for other nodes' leases")?;
                let max = i64::try_from(max).unwrap_or(i64::MAX);
                let far = bound.is_some_and(|bound| bound.saturating_add(limit) < max);
                let rows = if far {
                    lease(limit)
                        .fetch_all(&mut *tx)
                        .await
                        .doing("leasing frontier rows")?
                } else {
                    let (stored, leased): (i64, i64) =
                        sqlx::query_as(sqlx::AssertSqlSafe(format!(
                            "SELECT ({COUNTED_PAGES}),
                                    (SELECT count(*) FROM frontier WHERE state = 'leased')"
                        )))
                        .fetch_one(&mut *tx)
                        .await
                        .doing("counting pages against scope.max_pages")?;
                    // The lease adds what it takes.
                    sqlx::query("UPDATE page_limit SET bound = $1")
                        .bind(stored.saturating_add(leased))
                        .execute(&mut *tx)
                        .await
                        .doing("counting pages against scope.max_pages")?;
                    let left = max.saturating_sub(stored).saturating_sub(leased).max(0);
                    let rows = lease(limit.min(left))
                        .fetch_all(&mut *tx)
                        .await
                        .doing("leasing frontier rows")?;
                    // Reached once the pages stored come to the limit, not while rows
                    // leased would: another node's may yet go back to the queue (that
                    // node killed, or stopped), and any may be a URL robots.txt
                    // disallows, stored uncounted; the node stays to take what they
                    // leave. Far from the limit, it is not: the pages are fewer than
                    // `bound + limit`.
                    page_limit_reached = stored >= max;
                    rows
                };
                tx.commit().await.doing("leasing frontier rows")?;
                rows
            }
        };

        let mut jobs = Vec::with_capacity(rows.len());
        for row in rows {
            let url: String = row.get("url");
            let Ok(parsed) = Url::parse(&url) else {
                self.finish_unparsable(row.get("id")).await?;
                continue;
            };
            let host: String = row.get("host");
            jobs.push(CrawlJob {
                id: row.get("id"),
                url: parsed,
                host: Arc::from(host),
                depth: u32::try_from(row.get::<i64, _>("depth")).unwrap_or(0),
                priority: row.get("priority"),
                redirect_hops: u32::try_from(row.get::<i64, _>("redirect_hops")).unwrap_or(0),
                attempts: u32::try_from(row.get::<i64, _>("attempts")).unwrap_or(0),
                kind: JobKind::from_stored(row.get("kind")),
                previous: row.get::<Option<i64>, _>("recrawl_interval_ms").map(|ms| {
                    Box::new(Previous {
                        interval: u64::try_from(ms).ok().map(Duration::from_millis),
                        due_at: row.get("recrawl_at"),
                        ..Previous::default()
                    })
                }),
            });
        }
        self.previous_visits(&mut jobs).await?;
        Ok(Lease {
            jobs,
            page_limit_reached,
        })
    }

    /// Fills in what the last visit stored, for the jobs that are revisits.
    async fn previous_visits(&self, jobs: &mut [CrawlJob]) -> Result<(), Error> {
        let mut by_id: std::collections::HashMap<i64, &mut CrawlJob> =
            jobs.iter_mut().map(|j| (j.id, j)).collect();
        let ids: Vec<i64> = by_id.keys().copied().collect();
        for chunk in ids.chunks(MAX_BINDS) {
            let mut q = QueryBuilder::<DB>::new(
                "SELECT id, etag, last_modified, content_hash, bytes, final_url, location,
                        status, error_kind, links_left_out
                 FROM pages WHERE id IN ",
            );
            push_id_list(&mut q, chunk);
            let rows = q
                .build()
                .persistent(false)
                .fetch_all(&self.pool)
                .await
                .doing("reading previous visits")?;
            for row in rows {
                if let Some(job) = by_id.get_mut(&row.get::<i64, _>("id")) {
                    let previous = job.previous.get_or_insert_with(Box::default);
                    previous.etag = row.get("etag");
                    previous.last_modified = row.get("last_modified");
                    previous.content_hash = row.get("content_hash");
                    let bytes: Option<i64> = row.get("bytes");
                    previous.bytes = bytes.and_then(|b| u64::try_from(b).ok());
                    previous.final_url = row.get("final_url");
                    let left_out: Option<i64> = row.get("links_left_out");
                    previous.links_left_out = left_out.and_then(|n| u64::try_from(n).ok());
                    previous.location = row.get("location");
                    let status: Option<i64> = row.get("status");
                    let status = status.and_then(|s| u16::try_from(s).ok());
                    let error = row
                        .get::<Option<&str>, _>("error_kind")
                        .and_then(ErrorKind::from_stored);
                    previous.answered = status.is_some() && !is_transient(status, error);
                    previous.requested = error.is_none_or(ErrorKind::requested);
                    previous.status = status;
                }
            }
        }
        Ok(())
    }

    /// Applies link count changes still waiting: when the crawl is idle or ending.
    pub(crate) async fn flush_link_counts(&self, counts: &mut LinkCounts) -> Result<(), Error> {
        let mut tx = self
            .pool
            .begin()
            .await
            .doing("starting to apply link counts")?;
        counts.flush(&mut tx).await?;
        tx.commit().await.doing("applying link counts")
    }

    /// Puts URLs whose last outcome was a failure for now back in the queue, with their
    /// attempts renewed (see [`crate::retry::transient_condition`]), and those whose
    /// certificate did not verify: never retried within a run, but the trust is the
    /// admin's to mend (an intranet's CA added, as their error says), after which only
    /// this asks for them again.
    pub async fn requeue_failures(&self) -> Result<u64, Error> {
        let failed = crate::retry::transient_condition();
        // The condition is made of our own constants.
        let again = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE frontier SET state = 'queued', not_before = 0, attempts = 0,
                    recrawl_at = NULL, recrawl_interval_ms = NULL
             WHERE state IN ('done', 'failed')
               AND id IN (SELECT id FROM pages
                          WHERE {failed} OR error_kind = 'tls'
                             OR revisit_failed_at IS NOT NULL)"
        )))
        .execute(&self.pool)
        .await
        .doing("queueing earlier failures again")?;
        // And the URLs a stopped run left waiting out a retry's backoff: asked again now,
        // with their attempts renewed, as those whose retries ran out are.
        let waiting = sqlx::query(
            "UPDATE frontier SET not_before = 0, attempts = 0
             WHERE state = 'queued' AND attempts > 0",
        )
        .execute(&self.pool)
        .await
        .doing("renewing the retries of queued URLs")?;
        Ok(DB::rows_affected(&again) + DB::rows_affected(&waiting))
    }

    /// Moves the queued rows due after `now` (retries, and URLs waiting out a
    /// `Retry-After` or their host's robots.txt) and the revisits due after it back by
    /// `step`, as far as the clock has stepped back since the last run set them: each
    /// waits what it had then, not the step on top of it. For SQLite, whose times are this
    /// machine's. Returns how many.
    pub async fn undo_clock_step(&self, now: SystemTime, step: Duration) -> Result<u64, Error> {
        let step = i64::try_from(step.as_millis()).unwrap_or(i64::MAX);
        // One transaction: run again after a full disk, a step half done would move the
        // retries back twice.
        let mut tx = self
            .pool
            .begin()
            .await
            .doing("starting to bring back what a clock stepped back left")?;
        let moved = sqlx::query(
            "UPDATE frontier SET not_before = CASE WHEN not_before - $1 > $2 THEN not_before - $1
                                                   ELSE $2 END
             WHERE state = 'queued' AND not_before > $2",
        )
        .bind(step)
        .bind(unix_ms(now))
        .execute(&mut *tx)
        .await
        .doing("bringing back retries a clock stepped back left")?;
        let revisits = sqlx::query(
            "UPDATE frontier SET recrawl_at = CASE WHEN recrawl_at - $1 > $2 THEN recrawl_at - $1
                                                   ELSE $2 END
             WHERE state IN ('done', 'failed') AND recrawl_at IS NOT NULL AND recrawl_at > $2",
        )
        .bind(step)
        .bind(unix_ms(now))
        .execute(&mut *tx)
        .await
        .doing("bringing back revisits a clock stepped back left")?;
        tx.commit()
            .await
            .doing("bringing back what a clock stepped back left")?;
        Ok(DB::rows_affected(&moved) + DB::rows_affected(&revisits))
    }

    /// Brings back retries and revisits due further off than any rule asks (a retry's
    /// `longest_retry` from `now`, a revisit's interval): times a clock left that was fast,
    /// or has stepped back since, which would hold their URLs for as long as it was off.
    /// Returns how many.
    pub async fn bring_back_far_times(
        &self,
        now: SystemTime,
        longest_retry: Duration,
    ) -> Result<u64, Error> {
        let longest_retry = i64::try_from(longest_retry.as_millis()).unwrap_or(0);
        // A retry's due time is the server's on a shared database (`Db::requeue`).
        let (latest_retry, from) = if DB::SHARED {
            (longest_retry, concat!(server_ms!(), " + $1"))
        } else {
            (unix_ms(now).saturating_add(longest_retry), "$1")
        };
        let retries = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE frontier SET not_before = {from} WHERE state = 'queued' AND not_before > {from}"
        )))
        .bind(latest_retry)
        .execute(&self.pool)
        .await
        .doing("bringing back retries a moved clock left")?;
        // As the due revisits are read (`frontier_recrawl`, a range of it): a full
        // scan of the frontier at every start otherwise. A revisit's due time is the
        // server's on a shared database (`Db::finish_frontier_rows`).
        let (now, bound) = now_in_sql::<DB>(now);
        let mut revisits = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE frontier SET recrawl_at = {now} + recrawl_interval_ms
             WHERE state IN ('done', 'failed') AND recrawl_at IS NOT NULL AND recrawl_at > {now}
               AND recrawl_interval_ms IS NOT NULL AND recrawl_at > {now} + recrawl_interval_ms"
        )));
        if let Some(now) = bound {
            revisits = revisits.bind(now);
        }
        let revisits = revisits
            .execute(&self.pool)
            .await
            .doing("bringing back revisits a moved clock left")?;
        Ok(DB::rows_affected(&retries) + DB::rows_affected(&revisits))
    }

    /// Puts finished URLs whose revisit is due back in the queue: due by the server's
    /// clock on a shared database, as a revisit's due time is written there
    /// (`Db::finish_frontier_rows`). `early`: those due within a tenth (1 /
    /// [`EARLY_DIVISOR`]) of their interval too.
    pub async fn requeue_due_recrawls(&self, early: bool) -> Result<u64, Error> {
        let (now, bound) = now_in_sql::<DB>((self.clock)());
        let ahead = if early {
            format!(" + COALESCE(recrawl_interval_ms, 0) / {EARLY_DIVISOR}")
        } else {
            String::new()
        };
        let mut due = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE frontier SET state = 'queued', not_before = 0, attempts = 0
             WHERE state IN ('done', 'failed') AND recrawl_at IS NOT NULL
               AND recrawl_at <= ({now}){ahead}"
        )));
        if let Some(now) = bound {
            due = due.bind(now);
        }
        let done = due
            .execute(&self.pool)
            .await
            .doing("queueing due revisits")?;
        Ok(DB::rows_affected(&done))
    }

    /// Gives visited pages that have no revisit scheduled one by `policy`, due an interval
    /// after their last fetch. A database crawled before a `[recrawl]` was configured
    /// holds only such rows, and the queries above only see scheduled ones. Rules are
    /// regexes, so the interval is found here row by row, a batch at a time in id order
    /// to keep memory bounded. Rows scheduled once are not read again; those the policy
    /// never revisits are, at every start, since the next config may. Trap rows were
    /// never fetched and stay so.
    pub async fn schedule_unscheduled_recrawls(
        &self,
        policy: &RecrawlPolicy,
        last_run_started: Option<SystemTime>,
    ) -> Result<u64, Error> {
        if !policy.enabled() {
            return Ok(0);
        }
        let now = unix_ms((self.clock)());
        let last_run_started = last_run_started.map(unix_ms);
        // On a shared database a revisit's due time is the server's
        // (`Db::finish_frontier_rows`): what is left of the interval, from its now.
        let (from, set) = if DB::SHARED {
            (
                now,
                concat!(
                    "UPDATE frontier SET recrawl_at = ",
                    server_ms!(),
                    " + v.column2, "
                ),
            )
        } else {
            (0, "UPDATE frontier SET recrawl_at = v.column2, ")
        };
        let (mut after, mut scheduled) = (0_i64, 0);
        loop {
            let rows = sqlx::query(
                "SELECT f.id, f.url, p.fetched_at FROM frontier f JOIN pages p ON p.id = f.id
                 WHERE f.id > $1 AND f.state IN ('done', 'failed') AND f.recrawl_at IS NULL
                   AND p.error_kind IS DISTINCT FROM 'trap'
                 ORDER BY f.id LIMIT $2",
            )
            .bind(after)
            .bind(PASS_BATCH)
            .fetch_all(&self.pool)
            .await
            .doing("finding pages with no revisit scheduled")?;
            let Some(last) = rows.last() else {
                return Ok(scheduled);
            };
            after = last.get("id");
            let due: Vec<(i64, i64, i64)> = rows
                .iter()
                .filter_map(|row| {
                    let url = Url::parse(row.get("url")).ok()?;
                    let interval = policy.next(&url, None, None)?;
                    let interval = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX / 2);
                    // A fetch "later" than now was timed by a clock that has moved back
                    // since (or ran fast): counted from then, the revisit would be late
                    // by as long as the clock was off.
                    let fetched = humantime::parse_rfc3339_weak(row.get("fetched_at"))
                        .map_or(now, unix_ms)
                        .min(now);
                    let counted_from = last_run_started.filter(|&start| start <= fetched);
                    let due = counted_from
                        .unwrap_or(fetched)
                        .saturating_add(interval)
                        .saturating_sub(from);
                    Some((row.get("id"), due, interval))
                })
                .collect();
            if due.is_empty() {
                continue;
            }
            // VALUES names its columns column1, column2… on both databases.
            let mut q = QueryBuilder::<DB>::new(set);
            q.push("recrawl_interval_ms = v.column3 FROM (");
            q.push_values(&due, |mut b, &(id, at, interval)| {
                b.push_bind(id).push_bind(at).push_bind(interval);
            });
            q.push(") AS v WHERE frontier.id = v.column1 AND frontier.recrawl_at IS NULL");
            let done = q
                .build()
                .persistent(false)
                .execute(&self.pool)
                .await
                .doing("scheduling revisits")?;
            scheduled += DB::rows_affected(&done);
        }
    }

    /// Drops every revisit scheduled, with the intervals that scheduled them, so that
    /// [`Db::schedule_unscheduled_recrawls`] schedules them again from their pages' last
    /// fetch. Those queued already (a run stopped before it fetched them) were due by the
    /// old config, not necessarily by the new: they are finished again, as their last
    /// visit left them. Returns how many.
    pub async fn unschedule_recrawls(&self) -> Result<u64, Error> {
        let done = sqlx::query(concat!(
            "UPDATE frontier SET recrawl_at = NULL, recrawl_interval_ms = NULL,
                    state = CASE WHEN state = 'queued' THEN ",
            finished_as_last_left!(),
            " ELSE state END
             WHERE (state IN ('done', 'failed') AND recrawl_at IS NOT NULL)
                OR (state = 'queued' AND recrawl_interval_ms IS NOT NULL)",
        ))
        .execute(&self.pool)
        .await
        .doing("dropping the revisits an earlier [recrawl] scheduled")?;
        Ok(DB::rows_affected(&done))
    }

    /// How long until the next revisit is due.
    pub async fn next_recrawl(&self) -> Result<Option<Duration>, Error> {
        self.wait_until(
            "SELECT min(recrawl_at) FROM frontier
             WHERE state IN ('done', 'failed') AND recrawl_at IS NOT NULL",
            "finding the next revisit due",
        )
        .await
    }

    /// How long until the earliest queued row of `rows` that is waiting (a retry) comes
    /// due.
    pub async fn next_due(&self, rows: LeaseRows) -> Result<Option<Duration>, Error> {
        self.wait_until(&rows.next_due_sql(), "finding the next retry due")
            .await
    }

    /// How long until `at`, a query of one time (or none), comes. On a shared database
    /// retries' and revisits' due times are the server's (`Db::requeue`,
    /// `Db::finish_frontier_rows`), and so is the now they are counted from: the node
    /// waits them out on its monotonic clock.
    async fn wait_until(&self, at: &str, doing: &'static str) -> Result<Option<Duration>, Error> {
        let (at, now) = if DB::SHARED {
            (format!(concat!("SELECT ({}) - ", server_ms!()), at), 0)
        } else {
            (at.to_owned(), unix_ms((self.clock)()))
        };
        let due: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(at))
            .fetch_one(&self.pool)
            .await
            .doing(doing)?;
        Ok(due.map(|at| Duration::from_millis(u64::try_from(at - now).unwrap_or(0))))
    }

    pub async fn load_robots(&self, host: &str) -> Result<Option<RobotsRow>, Error> {
        let row = sqlx::query(
            "SELECT robots_status, robots_txt, robots_fetched_at, crawl_delay_ms FROM hosts
             WHERE host = $1 AND robots_fetched_at IS NOT NULL AND robots_status IS NOT NULL",
        )
        .bind(host)
        .fetch_optional(&self.pool)
        .await
        .doing("reading a cached robots.txt")?;
        Ok(row.map(|r| RobotsRow {
            status: u16::try_from(r.get::<i64, _>(0)).unwrap_or(404),
            body: r.get::<Option<String>, _>(1).unwrap_or_default(),
            fetched_at: from_unix_ms(r.get(2)),
            crawl_delay: r
                .get::<Option<i64>, _>(3)
                .and_then(|ms| u64::try_from(ms).ok())
                .map(Duration::from_millis),
        }))
    }

    pub async fn save_robots(&self, host: &str, robots: &RobotsRow) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO hosts (host, robots_status, robots_txt, robots_fetched_at, crawl_delay_ms)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (host) DO UPDATE SET robots_status = $2, robots_txt = $3,
                 robots_fetched_at = $4, crawl_delay_ms = $5",
        )
        .bind(host)
        .bind(i64::from(robots.status))
        .bind(&robots.body)
        .bind(unix_ms(robots.fetched_at))
        .bind(
            robots
                .crawl_delay
                .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        )
        .execute(&self.pool)
        .await
        .doing("caching a robots.txt")?;
        Ok(())
    }

    /// The hosts of rows still leased, with their Crawl-delay: on SQLite, the hosts a
    /// killed run had URLs out to.
    pub async fn leased_hosts(&self) -> Result<Vec<(String, Option<Duration>)>, Error> {
        let rows: Vec<(String, Option<i64>)> = sqlx::query_as(
            "SELECT DISTINCT f.host, h.crawl_delay_ms
             FROM frontier f LEFT JOIN hosts h ON h.host = f.host
             WHERE f.state = 'leased'",
        )
        .fetch_all(&self.pool)
        .await
        .doing("reading the hosts a stopped run was crawling")?;
        Ok(rows
            .into_iter()
            .map(|(host, delay)| {
                let delay = delay.and_then(|ms| u64::try_from(ms).ok());
                (host, delay.map(Duration::from_millis))
            })
            .collect())
    }

    /// Records when each host may next be sent a request (unix ms), for the next run; a
    /// later time kept before stays (a `Retry-After` a stopped run left, which a run
    /// killed since loaded and could not leave again).
    pub async fn save_host_turns(&self, turns: &[(String, SystemTime)]) -> Result<(), Error> {
        let mut tx = self.pool.begin().await.doing("keeping the hosts' delays")?;
        for (host, at) in turns {
            sqlx::query(concat!(
                "INSERT INTO hosts (host, next_allowed_at) VALUES ($1, $2)
                     ON CONFLICT (host) DO UPDATE SET ",
                later_turn!()
            ))
            .bind(host)
            .bind(unix_ms(*at))
            .execute(&mut *tx)
            .await
            .doing("keeping the hosts' delays")?;
        }
        tx.commit().await.doing("keeping the hosts' delays")?;
        Ok(())
    }

    /// The hosts a previous run left waiting past `left`, the clock as it left them (now,
    /// or later when the clock has stepped back since), each until `now` plus what was
    /// left of its wait then, at most `longest`: in the table too, as
    /// [`Db::save_host_turns`] keeps the later of two times, so a time left further off
    /// would hold its host at every start.
    pub async fn host_turns(
        &self,
        now: SystemTime,
        left: SystemTime,
        longest: Duration,
    ) -> Result<Vec<(String, SystemTime)>, Error> {
        let now = unix_ms(now);
        let step = unix_ms(left).saturating_sub(now).max(0);
        let latest = now.saturating_add(i64::try_from(longest.as_millis()).unwrap_or(i64::MAX));
        sqlx::query(
            "UPDATE hosts SET next_allowed_at = CASE WHEN next_allowed_at - $1 > $2 THEN $2
                                                     ELSE next_allowed_at - $1 END
             WHERE next_allowed_at > $3 AND (next_allowed_at - $1 > $2 OR $1 > 0)",
        )
        .bind(step)
        .bind(latest)
        .bind(now)
        .execute(&self.pool)
        .await
        .doing("bringing back the hosts' delays a moved clock left")?;
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT host, next_allowed_at FROM hosts WHERE next_allowed_at > $1")
                .bind(now)
                .fetch_all(&self.pool)
                .await
                .doing("reading the hosts' delays")?;
        Ok(rows
            .into_iter()
            .map(|(host, ms)| (host, from_unix_ms(ms)))
            .collect())
    }

    /// When the run before the one that started last (this one) ended, by the clock it
    /// ran on: the clock the hosts' turns it left were counted on. `None` when it recorded
    /// no end (killed) or there was none.
    pub async fn previous_run_end(&self) -> Result<Option<SystemTime>, Error> {
        let ended: Option<Option<String>> = sqlx::query_scalar(
            "SELECT ended_at FROM runs WHERE id < (SELECT max(id) FROM runs)
             ORDER BY id DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await
        .doing("reading when the last run ended")?;
        Ok(ended
            .flatten()
            .and_then(|at| humantime::parse_rfc3339_weak(&at).ok()))
    }

    /// Hands rows `owner` leased back to the queue untouched (shutdown, or a page budget
    /// reached). Only rows it still holds: a fetch cut off by the shutdown may have handed
    /// its page on already, and that page's row, stored `done`, must stay done; and a row
    /// taken back while the node was silent may be another node's lease now, in flight
    /// there, which queued again would be leased and fetched a second time.
    pub async fn release(&self, owner: &str, ids: &[i64]) -> Result<(), Error> {
        self.end_leases(owner, ids, "state = 'queued'").await
    }

    /// Ends the leases `owner` holds on rows whose URLs the scope now leaves out (it was
    /// narrowed since they were queued): failed, with no page, never fetched, as a row
    /// whose URL does not parse.
    pub async fn drop_out_of_scope(&self, owner: &str, ids: &[i64]) -> Result<(), Error> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await.doing("leaving out URLs")?;
        let mut dropped: BTreeMap<String, i64> = BTreeMap::new();
        for host in Self::end_leases_in(&mut tx, owner, ids, "state = 'failed'").await? {
            *dropped.entry(host).or_default() += 1;
        }
        // Not fetched, so not counted against the host's budget: README's `host_budget`
        // counts the URLs queued to be fetched.
        for (host, n) in dropped {
            Self::give_back_budget(&mut tx, &host, n).await?;
        }
        tx.commit().await.doing("leaving out URLs")
    }

    /// Ends the leases `owner` holds on revisits the config no longer makes: each row is
    /// finished as its last visit left it (`failed` when that had no response) and has no
    /// revisit scheduled, so a later config that revisits schedules it anew from when it
    /// was fetched.
    pub async fn drop_revisits(&self, owner: &str, ids: &[i64]) -> Result<(), Error> {
        let finished = concat!(
            "state = ",
            finished_as_last_left!(),
            ", recrawl_at = NULL, recrawl_interval_ms = NULL"
        );
        self.end_leases(owner, ids, finished).await
    }

    /// Sets rows `owner` still holds leased as `set` says (an SQL assignment list).
    async fn end_leases(&self, owner: &str, ids: &[i64], set: &str) -> Result<(), Error> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await.doing("ending frontier leases")?;
        Self::end_leases_in(&mut tx, owner, ids, set).await?;
        tx.commit().await.doing("ending frontier leases")
    }

    /// [`Db::end_leases`] in `tx`; the host of each row it ended.
    async fn end_leases_in(
        tx: &mut Conn<DB>,
        owner: &str,
        ids: &[i64],
        set: &str,
    ) -> Result<Vec<String>, Error> {
        let mut hosts = Vec::new();
        for chunk in ids.chunks(MAX_BINDS - 1) {
            let mut q = QueryBuilder::<DB>::new("UPDATE frontier SET ");
            q.push(set).push(
                ", lease_owner = NULL, lease_expires = NULL \
                 WHERE state = 'leased' AND lease_owner = ",
            );
            q.push_bind(owner).push(" AND id IN ");
            push_id_list(&mut q, chunk);
            q.push(" RETURNING host");
            let ended: Vec<String> = q
                .build_query_scalar()
                .persistent(false)
                .fetch_all(&mut *tx)
                .await
                .doing("ending frontier leases")?;
            hosts.extend(ended);
        }
        Ok(hosts)
    }

    /// A row whose URL no longer parses (edited by hand?) is failed, not retried forever.
    async fn finish_unparsable(&self, id: i64) -> Result<(), Error> {
        // With its revisit: a service would otherwise lease it again at every wake.
        sqlx::query(
            "UPDATE frontier SET state = 'failed', lease_owner = NULL, recrawl_at = NULL
             WHERE id = $1",
        )
        .bind(id)
        .execute(&self.pool)
        .await
        .doing("failing an unparsable frontier row")?;
        Ok(())
    }

    /// Commits a batch of pages: rows, links, discovered URLs and frontier states together,
    /// as the nodes of a shared database do (SQLite's one writer has its own way, in
    /// `sqlite_batch`). Records whose URL is to be retried only go back to the queue, due
    /// later; a revisit answered 304 only records the visit.
    ///
    /// Only records whose rows `owner` still holds leased are stored (see
    /// [`Db::hold_leases`], which moves them to the front); of the others only the URLs
    /// they found join the frontier.
    pub(crate) async fn commit(
        &self,
        batch: &mut [PageRecord],
        counts: &mut LinkCounts,
        admission: Admission,
        owner: &str,
        scope: &Scope,
    ) -> Result<Committed, Error> {
        let mut tx = self.pool.begin().await.doing("starting a page batch")?;
        let (held, nearer) = Self::hold_leases(&mut tx, batch, owner).await?;
        Nearer::move_pages(&nearer, &mut batch[..held], scope);
        let (loops, unqueued) =
            Self::commit_in(&mut tx, batch.split_at(held), counts, admission, &nearer).await?;
        tx.commit().await.doing("committing a page batch")?;
        report_loops(batch, loops);
        Ok(Committed {
            stored: held,
            unqueued,
        })
    }

    /// Moves the records whose frontier rows `owner` still holds leased to the front of
    /// `batch`, and returns how many there are. Their rows are locked until the
    /// transaction ends, so no other node can take them meanwhile.
    ///
    /// A node silent for a lease time (stalled, or cut off from the database) has its
    /// URLs taken back and leased by others; when it wakes, pages it fetched before are
    /// still on their way to its writer. Stored, they would be stored a second time, or
    /// their rows finished under the node that now holds them. They are dropped (their
    /// URLs are the other node's now), but for the URLs they found: this node's parse
    /// marked those as seen, and would drop them from its own next fetch of the page.
    ///
    /// `FOR KEY SHARE` is the lock a page row's reference to its frontier row takes
    /// anyway: it keeps out `FOR UPDATE` (the other nodes' leases and reclaims, which skip
    /// locked rows) and not the other nodes' batches moving a URL up. PostgreSQL only,
    /// as is [`Db::commit`].
    ///
    /// The same statement takes the held rows' notes of a depth nearer the seeds (see
    /// [`Db::move_up_known`]), the nearest of each: a batch with none costs no statement
    /// more. Taken in the transaction that stores their pages, a note and its use commit
    /// together or not at all. Only the node holding a row deletes its notes, and adding
    /// one locks nothing another holds, so this waits for no other node.
    async fn hold_leases(
        tx: &mut Conn<DB>,
        batch: &mut [PageRecord],
        owner: &str,
    ) -> Result<(usize, Vec<Nearer>), Error> {
        let ids: Vec<i64> = batch.iter().map(|p| p.job.id).collect();
        let mut held = std::collections::HashSet::new();
        let mut nearer = Vec::new();
        for chunk in ids.chunks(MAX_BINDS - 1) {
            let mut q = QueryBuilder::<DB>::new(
                "WITH held AS (SELECT id FROM frontier WHERE state = 'leased' AND lease_owner = ",
            );
            q.push_bind(owner).push(" AND id IN ");
            push_id_list(&mut q, chunk);
            q.push(
                " ORDER BY id FOR KEY SHARE),
                 noted AS (DELETE FROM frontier_nearer USING held
                           WHERE frontier_nearer.id = held.id
                           RETURNING frontier_nearer.*)
                 SELECT held.id, nearest.depth, nearest.priority, nearest.discovered_from
                 FROM held LEFT JOIN (SELECT DISTINCT ON (id) * FROM noted ORDER BY id, depth)
                      AS nearest ON nearest.id = held.id",
            );
            let rows: Vec<HeldLease> = q
                .build_query_as()
                .persistent(false)
                .fetch_all(&mut *tx)
                .await
                .doing("checking the batch's leases")?;
            for (id, depth, priority, discovered_from) in rows {
                held.insert(id);
                if let (Some(depth), Some(priority)) = (depth, priority) {
                    nearer.push(Nearer {
                        id,
                        depth: u32::try_from(depth).unwrap_or(u32::MAX),
                        priority,
                        discovered_from,
                    });
                }
            }
        }
        let mut kept = 0;
        for i in 0..batch.len() {
            if held.contains(&batch[i].job.id) {
                batch.swap(kept, i);
                kept += 1;
            }
        }
        if kept < batch.len() {
            tracing::warn!(
                dropped = batch.len() - kept,
                "pages not stored: their URLs went to another node while this one was silent"
            );
        }
        Ok((kept, nearer))
    }

    /// The statements of [`Db::commit`] for the records `held` and the URLs found by
    /// those `taken` by another node, returning the redirects found to close a loop and
    /// the trap rows stored.
    ///
    /// Every node's transactions take their locks in this order (pages, links, counts,
    /// frontier rows found, their hosts' budgets, hosts, redirects, the batch's own
    /// frontier rows), so that they wait for each other rather than deadlock; on
    /// PostgreSQL each statement is a round trip anyway. The other steps that take rows
    /// of more than one of frontier, `host_budget` and `hosts` take them in that order.
    async fn commit_in(
        tx: &mut Conn<DB>,
        (held, taken): (&[PageRecord], &[PageRecord]),
        counts: &mut LinkCounts,
        admission: Admission,
        nearer: &[Nearer],
    ) -> Result<(Vec<(i64, String)>, Unqueued), Error> {
        let mut sorted = Sorted::of(held);
        sorted.discovered.extend(
            taken
                .iter()
                .flat_map(|p| p.discovered.iter().map(|d| (d, Some(p.job.id)))),
        );
        counts.adding(&sorted.pages);
        // Reads the links deleted below.
        counts.removing(tx, &sorted.revisited).await?;
        let mut script = Script::new();
        Self::insert_pages(&mut script, &sorted.pages);
        script.run(tx).await?;
        Self::replace_links(tx, &sorted.revisited, &sorted.pages).await?;
        counts.settle(tx).await?;
        let added =
            Self::insert_frontier(tx, &sorted.discovered, admission.max_pages_per_host).await?;
        let mut script = Script::new();
        Self::insert_hosts(
            &mut script,
            sorted.discovered.iter().map(|(d, _)| d.host.as_str()),
        );
        Self::keep_host_pauses(&mut script, &sorted);
        script.run(tx).await?;
        let loops = Self::follow_redirect_chains(tx, &sorted.pages).await?;
        let mut script = Script::new();
        Self::record_visits(&mut script, &sorted.unchanged);
        Self::record_failed_revisits(&mut script, &sorted.failed_revisits);
        Self::move_up_noted(&mut script, nearer);
        Self::finish_frontier_rows(&mut script, &sorted.visited, admission.revisits_from);
        Self::requeue(&mut script, &sorted.retries);
        script.run(tx).await?;
        Ok((loops, added.unqueued))
    }

    /// Inserts pages, or replaces a revisited page's row.
    fn insert_pages(script: &mut Script<DB>, batch: &[&PageRecord]) {
        for chunk in batch.chunks(MAX_BINDS / PAGE_COLUMNS) {
            let q = script.statement(
                "storing a batch of pages",
                &format!("INSERT INTO pages ({PAGE_ROW}) "),
            );
            q.push_values(chunk, |mut b, p| {
                let fetched_at = rfc3339(p.fetched_at);
                for value in page_row(p, &fetched_at) {
                    Self::bind(&mut b, value);
                }
            });
            q.push(PAGE_UPSERT);
        }
    }

    fn bind(b: &mut Separated<'_, DB, &'static str>, value: Value<'_>) {
        match value {
            Value::Int(n) => b.push_bind(n),
            Value::Text(text) => b.push_bind(text),
        };
    }

    /// Deletes the links of `revisited` pages and inserts those of `pages`, whose rows
    /// are stored already.
    async fn replace_links(
        tx: &mut Conn<DB>,
        revisited: &[i64],
        pages: &[&PageRecord],
    ) -> Result<(), Error> {
        let mut script = Script::new();
        Self::delete_links(&mut script, revisited);
        Self::insert_links(&mut script, pages);
        script.run(tx).await
    }

    /// A revisited page's links are replaced by what it links to now.
    fn delete_links(script: &mut Script<DB>, sources: &[i64]) {
        for chunk in sources.chunks(MAX_BINDS) {
            push_id_list(
                script.statement(
                    "replacing a revisited page's links",
                    "DELETE FROM links WHERE source_id IN ",
                ),
                chunk,
            );
        }
    }

    /// A 304: the page is as it was; when it was last checked changes, and validators
    /// the 304 sends replace the stored ones (RFC 9111 §4.3.4), which the next revisit
    /// names.
    fn record_visits(script: &mut Script<DB>, unchanged: &[&PageRecord]) {
        for page in unchanged {
            let q = script.statement(
                "recording unchanged pages",
                "UPDATE pages SET fetched_at = ",
            );
            q.push_bind(rfc3339(page.fetched_at))
                .push(", elapsed_ms = ")
                .push_bind(i64::try_from(page.elapsed_ms).unwrap_or(i64::MAX))
                .push(", etag = coalesce(")
                .push_bind(page.etag.as_deref())
                .push(", etag), last_modified = coalesce(")
                .push_bind(page.last_modified.as_deref())
                .push(", last_modified), ")
                .push(REVISIT_FAILURE_CLEARED)
                .push(" WHERE id = ")
                .push_bind(page.job.id);
        }
    }

    /// A revisit that failed for now: the page as stored stays, and says so.
    fn record_failed_revisits(script: &mut Script<DB>, failed: &[&PageRecord]) {
        for page in failed {
            let failed_at = rfc3339(page.fetched_at);
            let q = script.statement(
                "recording failed revisits",
                &format!("UPDATE pages SET ({FAILED_REVISIT_ROW}) = ("),
            );
            let mut values = q.separated(", ");
            for value in failed_revisit_row(page, &failed_at) {
                Self::bind(&mut values, value);
            }
            values.push_unseparated(") WHERE id = ");
            values.push_bind_unseparated(page.job.id);
        }
    }

    fn insert_links(script: &mut Script<DB>, batch: &[&PageRecord]) {
        const COLUMNS: usize = 4;
        let all: Vec<_> = batch
            .iter()
            .flat_map(|p| p.links.iter().map(move |l| (p.job.id, l)))
            .collect();
        for chunk in all.chunks(MAX_BINDS / COLUMNS) {
            let q = script.statement(
                "storing a batch of links",
                "INSERT INTO links (source_id, target_url, anchor_text, rel) ",
            );
            q.push_values(chunk, |mut b, (source, link)| {
                b.push_bind(*source)
                    .push_bind(link.target.as_str())
                    .push_bind(link.anchor_text.as_str())
                    .push_bind(link.rel.as_deref());
            });
        }
    }

    /// Adds discovered URLs: those that look like traps, and those robots.txt disallows, as
    /// failed rows, each with a page row that says why; the others queued, as far as their
    /// hosts' budgets go (`max_pages_per_host`, 0: no limit).
    /// Each URL comes with the page it was found on (none for seeds). Says how many rows
    /// are new (URLs known already, or given twice, are not) and how many are trap rows.
    ///
    /// Every frontier row is taken before any host's budget, as the budget cuts and
    /// requeues take them ([`Db::trap_over_budgets`]): trap rows inserted after the
    /// budgets waited, holding one, for a row a requeue held on its way to that budget.
    /// A URL also found fine is queued, not trapped.
    async fn insert_frontier(
        tx: &mut Conn<DB>,
        urls: &[(&Discovered, Option<i64>)],
        max_pages_per_host: u64,
    ) -> Result<Added, Error> {
        let (unqueued, fine) = split_unqueued(urls);
        let recorded = Self::insert_unqueued(tx, &unqueued).await?;
        let new = Self::insert_queued(tx, &fine).await?;
        let queued = Self::spend_host_budgets(tx, new, max_pages_per_host).await?;
        Ok(Added {
            new: queued.new + recorded.trapped + recorded.disallowed,
            unqueued: Unqueued {
                trapped: queued.unqueued.trapped + recorded.trapped,
                disallowed: recorded.disallowed,
            },
        })
    }

    /// Merges the staged URLs (see [`Db::merge_staged_on`]).
    pub async fn merge_staged(&self, max_pages_per_host: u64) -> Result<u64, Error> {
        if DB::SHARED {
            return Ok(0);
        }
        let mut conn = self
            .pool
            .acquire()
            .await
            .doing("starting to merge staged URLs")?;
        Self::merge_staged_on(&mut conn, max_pages_per_host).await
    }

    /// Merges the staged URLs on `conn`, in a transaction of its own, sorting them as the
    /// deferred index builds sort ([`Backend::around_bulk_sort`]): a merge may take
    /// millions. Returns the trap rows stored (URLs over their hosts' budgets).
    pub(super) async fn merge_staged_on(
        conn: &mut Conn<DB>,
        max_pages_per_host: u64,
    ) -> Result<u64, Error> {
        let (before, after) = DB::around_bulk_sort();
        sqlx::query(sqlx::AssertSqlSafe(before))
            .execute(&mut *conn)
            .await
            .doing("preparing to merge staged URLs")?;
        let mut tx = sqlx::Connection::begin(&mut *conn)
            .await
            .doing("starting to merge staged URLs")?;
        let trapped = Self::merge_staged_in(&mut tx, max_pages_per_host).await?;
        tx.commit().await.doing("merging staged URLs")?;
        sqlx::query(sqlx::AssertSqlSafe(after))
            .execute(&mut *conn)
            .await
            .doing("after merging staged URLs")?;
        Ok(trapped)
    }

    /// Moves the staged URLs into `frontier` in URL order, so that the URL index is
    /// walked once from end to end instead of at random; the shallowest of a URL's
    /// sightings comes first, and a URL known already moves up as [`MOVE_UP`] says.
    /// The rows above the largest id before are the new ones, for the hosts' budgets.
    /// URLs the database refuses are left out ([`Db::merge_staged_apart`]).
    async fn merge_staged_in(tx: &mut Conn<DB>, max_pages_per_host: u64) -> Result<u64, Error> {
        let above: i64 = sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM frontier")
            .fetch_one(&mut *tx)
            .await
            .doing("merging staged URLs")?;
        match Self::merge_staged_where(tx, "true").await {
            Err(refusal) if refusal.is_refusal() => Self::merge_staged_apart(tx, refusal).await?,
            merged => merged?,
        }
        sqlx::query("DELETE FROM frontier_staged")
            .execute(&mut *tx)
            .await
            .doing("merging staged URLs")?;
        let added = Self::spend_host_budgets(tx, NewRows::Above(above), max_pages_per_host).await?;
        Ok(added.unqueued.trapped)
    }

    /// Moves the staged rows `filter` picks into `frontier` (see [`Db::merge_staged_in`]).
    async fn merge_staged_where(tx: &mut Conn<DB>, filter: &str) -> Result<(), Error> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO frontier (url, host, depth, priority, discovered_from, redirect_hops, kind)
             SELECT url, host, depth, priority, discovered_from, redirect_hops, kind
             FROM frontier_staged WHERE {filter} ORDER BY url, depth{MOVE_UP}"
        )))
        .execute(&mut *tx)
        .await
        .doing("merging staged URLs")?;
        Ok(())
    }

    /// Merges the staged URLs after the database refused them together (with `refusal`):
    /// a trigger or CHECK a user put on `frontier`. Otherwise that one URL stopped the
    /// crawl, and every start after it, each merging first. The staged rows are merged
    /// in halves by rowid, each under a savepoint, and those halves in halves while they
    /// are refused, until each refused row is alone: its URL is left out, with a warning
    /// that names it, and deleted with the rest once merged. Only a refusal comes here;
    /// the usual merge stays one statement. SQLite only, as staging is.
    async fn merge_staged_apart(tx: &mut Conn<DB>, refusal: Error) -> Result<(), Error> {
        let (first, last): (i64, i64) = sqlx::query_as(
            "SELECT coalesce(min(rowid), 1), coalesce(max(rowid), 0) FROM frontier_staged",
        )
        .fetch_one(&mut *tx)
        .await
        .doing("merging staged URLs")?;
        let mut parts = vec![(first, last, Some(refusal))];
        while let Some((low, high, refused)) = parts.pop() {
            let outcome = match refused {
                Some(refusal) => Err(refusal),
                None => {
                    let mut part = sqlx::Connection::begin(&mut *tx)
                        .await
                        .doing("merging staged URLs")?;
                    let filter = format!("rowid BETWEEN {low} AND {high}");
                    match Self::merge_staged_where(&mut part, &filter).await {
                        Ok(()) => part.commit().await.doing("merging staged URLs"),
                        // Dropped, the part is rolled back to its savepoint.
                        refused => refused,
                    }
                }
            };
            match outcome {
                Err(refusal) if refusal.is_refusal() && low < high => {
                    let half = low + (high - low) / 2;
                    parts.push((half + 1, high, None));
                    parts.push((low, half, None));
                }
                Err(refusal) if refusal.is_refusal() => {
                    let url: Option<String> =
                        sqlx::query_scalar("SELECT url FROM frontier_staged WHERE rowid = $1")
                            .bind(low)
                            .fetch_optional(&mut *tx)
                            .await
                            .doing("merging staged URLs")?;
                    tracing::warn!(
                        url = url.as_deref().unwrap_or_default(),
                        "the database refused to add the URL to the frontier: {refusal}; it \
                         is left out of the crawl"
                    );
                }
                outcome => outcome?,
            }
        }
        Ok(())
    }

    /// Records URLs that are not to be queued ([`unqueued`]) as failed rows, each with a
    /// page row that says why: a trap row, or the row the fetcher would store for a URL
    /// robots.txt disallows (`robots`, never requested). A URL known already is left as
    /// it is. Returns how many rows of each are new.
    ///
    /// A statement for many rows, not two for each: a page of 10,000 links that all look
    /// like traps (an ever-deeper path under a long `<base>`) held the writer for seconds.
    /// One row per URL, the first given, in URL order, as [`Db::insert_queued`] inserts:
    /// nodes recording the same traps then wait for each other instead of deadlocking.
    pub(super) async fn insert_unqueued(
        tx: &mut Conn<DB>,
        unqueued: &[&(&Discovered, Option<i64>)],
    ) -> Result<Unqueued, Error> {
        let mut by_url: BTreeMap<&str, Found<'_>> = BTreeMap::new();
        for &&(d, from) in unqueued {
            by_url.entry(d.url.as_str()).or_insert((d, from));
        }
        let urls: Vec<Found<'_>> = by_url.values().copied().collect();
        let now = rfc3339(SystemTime::now());
        let mut new = Unqueued::default();
        // A page row binds as many values as a frontier row (seven), so the pages of a
        // chunk's new rows fit one statement too.
        for chunk in urls.chunks(MAX_BINDS / FRONTIER_COLUMNS) {
            let mut q = QueryBuilder::new("");
            q.push(format_args!(
                "INSERT INTO frontier ({FRONTIER_ROW}, state) "
            ));
            q.push_values(chunk, |mut b, (d, from)| {
                for value in frontier_row(d, *from) {
                    Self::bind(&mut b, value);
                }
                b.push("'failed'");
            });
            let rows = Self::insert_new_urls(tx, q, "recording URLs not to be fetched").await?;
            let added: Vec<(i64, &Discovered)> = rows
                .into_iter()
                .filter_map(|(id, url)| by_url.get(url.as_str()).map(|&(d, _)| (id, d)))
                .collect();
            if added.is_empty() {
                continue;
            }
            let mut q = QueryBuilder::new(
                "INSERT INTO pages (id, url, final_url, depth, fetched_at, changed_at, error_kind, error) ",
            );
            q.push_values(&added, |mut b, (id, d)| {
                b.push_bind(*id)
                    .push_bind(d.url.as_str())
                    .push_bind(d.url.as_str())
                    .push_bind(i64::from(d.depth))
                    .push_bind(now.as_str())
                    .push_bind(now.as_str())
                    .push(if d.trap.is_some() {
                        "'trap'"
                    } else {
                        "'robots'"
                    })
                    .push_bind(d.trap.as_deref().unwrap_or(crate::robots::DISALLOWED));
            });
            q.build()
                .persistent(false)
                .execute(&mut *tx)
                .await
                .doing("recording URLs not to be fetched")?;
            let trapped = added.iter().filter(|(_, d)| d.trap.is_some()).count() as u64;
            new += Unqueued {
                trapped,
                disallowed: added.len() as u64 - trapped,
            };
        }
        Ok(new)
    }

    /// One row per URL, the one found nearest the seeds, in URL order: PostgreSQL refuses
    /// to upsert a row twice in one statement, and nodes that insert the same URLs in the
    /// same order wait for each other instead of deadlocking. A URL known already moves
    /// up when found nearer the seeds while it still waits, so depth limits and
    /// breadth-first order follow the shortest path the crawl has seen. Returns the rows
    /// that are new, which count against their hosts' budgets.
    async fn insert_queued<'u>(
        tx: &mut Conn<DB>,
        urls: &[&(&'u Discovered, Option<i64>)],
    ) -> Result<NewRows<'u>, Error> {
        let mut nearest: BTreeMap<&str, (&'u Discovered, Option<i64>)> = BTreeMap::new();
        for &&(d, from) in urls {
            let entry = nearest.entry(d.url.as_str()).or_insert((d, from));
            if d.depth < entry.0.depth {
                *entry = (d, from);
            }
        }
        let all: Vec<(&'u Discovered, Option<i64>)> = nearest.values().copied().collect();
        if !DB::SHARED {
            // The only writer: the new rows are the ones above the largest id so far,
            // and one upsert both adds them and moves known URLs up. Returning each new
            // row instead cost a tenth of a crawl finding mostly new URLs.
            let above: i64 = sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM frontier")
                .fetch_one(&mut *tx)
                .await
                .doing("adding URLs to the frontier")?;
            Self::write_frontier(tx, &all, Self::upsert).await?;
            return Ok(NewRows::Above(above));
        }
        // Other nodes insert too: only RETURNING tells this transaction's new rows.
        let mut new = Vec::new();
        for chunk in all.chunks(MAX_BINDS / FRONTIER_COLUMNS) {
            let mut q = QueryBuilder::new("");
            Self::frontier_values(&mut q, "frontier", chunk);
            let rows = Self::insert_new_urls(tx, q, "adding URLs to the frontier").await?;
            for (id, url) in rows {
                if let Some((d, _)) = nearest.remove(url.as_str()) {
                    new.push((id, d));
                }
            }
        }
        // What is left was known already.
        let known: Vec<(&Discovered, Option<i64>)> = nearest.into_values().collect();
        Self::write_frontier(tx, &known, Self::move_up_known).await?;
        Ok(NewRows::Listed(new))
    }

    /// Runs `insert`, an `INSERT INTO frontier … VALUES …`, for the URLs not known yet,
    /// and returns their new rows' ids and URLs: where other nodes insert too, only
    /// `RETURNING` tells which rows this transaction added.
    async fn insert_new_urls(
        tx: &mut Conn<DB>,
        mut insert: QueryBuilder<DB>,
        doing: &'static str,
    ) -> Result<Vec<(i64, String)>, Error> {
        insert.push(" ON CONFLICT (url) DO NOTHING RETURNING id, url");
        let rows = insert
            .build()
            .persistent(false)
            .fetch_all(&mut *tx)
            .await
            .doing(doing)?;
        Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
    }

    /// Runs `statement` for `urls`, a chunk at a time: [`Db::upsert`] or
    /// [`Db::move_up_known`].
    async fn write_frontier(
        tx: &mut Conn<DB>,
        urls: &[(&Discovered, Option<i64>)],
        statement: fn(&mut QueryBuilder<DB>, &[Found<'_>]),
    ) -> Result<(), Error> {
        for chunk in urls.chunks(MAX_BINDS / FRONTIER_COLUMNS) {
            let mut q = QueryBuilder::new("");
            statement(&mut q, chunk);
            q.build()
                .persistent(false)
                .execute(&mut *tx)
                .await
                .doing("adding URLs to the frontier")?;
        }
        Ok(())
    }

    /// Adds the URLs that are new and moves known ones up when found nearer the seeds
    /// while they still wait.
    fn upsert(q: &mut QueryBuilder<DB>, urls: &[(&Discovered, Option<i64>)]) {
        Self::frontier_values(q, "frontier", urls);
        q.push(MOVE_UP);
    }

    /// Moves known URLs up as [`MOVE_UP`] does, locking only the rows it changes, in URL
    /// order. PostgreSQL's upsert locks every row it meets, those its `WHERE` leaves as
    /// they are too: among them a row another node holds leased, which that node's page
    /// batch finishes after counting its new URLs against their hosts' budgets, while
    /// this transaction, holding the row, waits to count its own against one of those.
    /// PostgreSQL only, as is the `FOR NO KEY UPDATE`.
    ///
    /// A leased page found again nearer the seeds as a page is not locked but noted in
    /// `frontier_nearer`, in the same statement, for its owner to store it at that depth
    /// ([`Db::hold_leases`]): `max_depth` counts the shorter path on PostgreSQL too.
    fn move_up_known(q: &mut QueryBuilder<DB>, urls: &[(&Discovered, Option<i64>)]) {
        q.push(
            "WITH known AS MATERIALIZED (
                 SELECT frontier.id AS known_id, frontier.state AS known_state,
                        frontier.depth AS known_depth, frontier.kind AS known_kind, excluded.*
                 FROM frontier JOIN (",
        );
        Self::push_frontier_rows(q, urls);
        q.push(format_args!(
            ") AS excluded ({FRONTIER_ROW}) ON frontier.url = excluded.url
             WHERE excluded.depth < frontier.depth OR ({named})),
             nearer AS (
                 INSERT INTO frontier_nearer (id, depth, priority, discovered_from)
                 SELECT known_id, depth, priority, discovered_from FROM known
                 WHERE known_state = 'leased' AND known_kind = 'page' AND kind = 'page'
                       AND depth < known_depth)
             UPDATE frontier SET",
            named = named_sitemap!()
        ));
        q.push(concat!(
            move_up_set!(),
            " FROM (SELECT frontier.id, excluded.* FROM frontier
                    JOIN known AS excluded ON frontier.id = excluded.known_id WHERE",
            move_up_when!(),
            " ORDER BY frontier.url FOR NO KEY UPDATE OF frontier) AS excluded
             WHERE frontier.id = excluded.id"
        ));
    }

    /// Writes `INSERT INTO {table} (...) VALUES ...` for discovered URLs, each with the
    /// page it was found on; the caller adds any conflict clause.
    fn frontier_values(q: &mut QueryBuilder<DB>, table: &str, urls: &[(&Discovered, Option<i64>)]) {
        q.push(format_args!("INSERT INTO {table} ({FRONTIER_ROW}) "));
        Self::push_frontier_rows(q, urls);
    }

    /// Writes `VALUES ...` for discovered URLs, in the order of [`FRONTIER_ROW`].
    fn push_frontier_rows(q: &mut QueryBuilder<DB>, urls: &[(&Discovered, Option<i64>)]) {
        q.push_values(urls, |mut b, (d, from)| {
            for value in frontier_row(d, *from) {
                Self::bind(&mut b, value);
            }
        });
    }

    /// Counts new frontier rows against their hosts' budgets in `host_budget`, where every
    /// run and every node of the crawl counts. A host's rows beyond `max_pages_per_host`
    /// (0: no limit) become trap rows before any node can lease them, as this transaction
    /// has not committed; the shallowest rows are the ones kept. Hosts are counted in
    /// order, so writers of several nodes wait for each other rather than deadlock.
    /// Says how many rows are new, those now trapped included, and how many are trapped.
    async fn spend_host_budgets(
        tx: &mut Conn<DB>,
        new: NewRows<'_>,
        max_pages_per_host: u64,
    ) -> Result<Added, Error> {
        let mut by_host: BTreeMap<String, Vec<(i64, &Discovered)>> = BTreeMap::new();
        let (added, counted) = match &new {
            NewRows::Listed(rows) => {
                for &(id, d) in rows {
                    by_host.entry(d.host.clone()).or_default().push((id, d));
                }
                let hosts: Vec<(String, i64)> = by_host
                    .iter()
                    .map(|(host, rows)| {
                        (host.clone(), i64::try_from(rows.len()).unwrap_or(i64::MAX))
                    })
                    .collect();
                Self::count_listed(tx, hosts).await?
            }
            NewRows::Above(above) => Self::count_above(tx, *above, max_pages_per_host).await?,
        };
        // Hosts whose budgets counted nothing before these rows are new to the crawl;
        // the rows above an id find theirs in SQL ([`Db::limit_new_hosts_above`]).
        let fresh: Vec<String> = match &new {
            NewRows::Listed(_) => counted
                .iter()
                .filter(|(_, added, total)| added == total)
                .map(|(host, _, _)| host.clone())
                .collect(),
            NewRows::Above(_) => Vec::new(),
        };
        let mut spent = Added {
            new: added,
            ..Added::default()
        };
        if let Ok(budget @ 1..) = i64::try_from(max_pages_per_host) {
            for (host, added, total) in counted {
                let room = (budget - (total - added)).clamp(0, added);
                if room == added {
                    continue;
                }
                Self::give_back_budget(tx, &host, added - room).await?;
                let over: Vec<i64> = match &new {
                    NewRows::Listed(_) => {
                        let mut rows = by_host.remove(&host).unwrap_or_default();
                        rows.sort_by_key(|(id, d)| (d.depth, std::cmp::Reverse(d.priority), *id));
                        rows.iter()
                            .skip(usize::try_from(room).unwrap_or(usize::MAX))
                            .map(|(id, _)| *id)
                            .collect()
                    }
                    NewRows::Above(above) => sqlx::query_scalar(
                        "SELECT id FROM frontier WHERE id > $1 AND host = $2
                         ORDER BY depth, priority DESC, id LIMIT $3 OFFSET $4",
                    )
                    .bind(*above)
                    .bind(host.as_str())
                    .bind(added - room)
                    .bind(room)
                    .fetch_all(&mut *tx)
                    .await
                    .doing("finding URLs over their host's budget")?,
                };
                Self::trap_queued(tx, &over, &over_budget(&host, budget)).await?;
                spent.unqueued.trapped += u64::try_from(over.len()).unwrap_or(u64::MAX);
            }
        }
        spent.unqueued.trapped += match &new {
            NewRows::Listed(_) => Self::limit_hosts_per_domain(tx, &new, &fresh).await?,
            NewRows::Above(above) => Self::limit_new_hosts_above(tx, *above).await?,
        };
        Ok(spent)
    }

    /// [`Db::limit_hosts_per_domain`] for the hosts new to the crawl among the rows above
    /// id `above`, a chunk of hosts at a time: a merge of staged URLs may bring a hundred
    /// thousand hosts, which memory would otherwise hold at once.
    async fn limit_new_hosts_above(tx: &mut Conn<DB>, above: i64) -> Result<u64, Error> {
        const CHUNK: i64 = 1000;
        let (mut after, mut trapped) = (String::new(), 0);
        loop {
            let fresh: Vec<String> = sqlx::query_scalar(
                "SELECT n.host
                 FROM (SELECT host, count(*) AS added FROM frontier
                       WHERE id > $1 AND host > $2 GROUP BY host) AS n
                      JOIN host_budget b ON b.host = n.host
                 WHERE b.urls = n.added ORDER BY n.host LIMIT $3",
            )
            .bind(above)
            .bind(after.as_str())
            .bind(CHUNK)
            .fetch_all(&mut *tx)
            .await
            .doing("finding hosts new to the crawl")?;
            let Some(last) = fresh.last() else {
                return Ok(trapped);
            };
            after = last.clone();
            trapped += Self::limit_hosts_per_domain(tx, &NewRows::Above(above), &fresh).await?;
        }
    }

    /// Counts the hosts of `fresh` (sorted), whose budgets counted nothing before `new`,
    /// against their domains' `traps.max_hosts_per_domain` (see `domain_budget`): those
    /// new to `known_hosts` too. The rows `new` queued for a host past its domain's limit
    /// become trap rows, and its budget is given back. Returns the trap rows.
    async fn limit_hosts_per_domain(
        tx: &mut Conn<DB>,
        new: &NewRows<'_>,
        fresh: &[String],
    ) -> Result<u64, Error> {
        if fresh.is_empty() {
            return Ok(0);
        }
        let candidates: Vec<&str> = fresh.iter().map(String::as_str).collect();
        let admitted = DomainBudget::admit(tx, &candidates).await?;
        if admitted.is_empty() {
            return Ok(0);
        }
        let domains = domain_budget::by_domain(&admitted);
        let totals = DomainBudget::count(tx, &domains).await?;
        let limit = DomainBudget::limit(tx).await?;
        if limit <= 0 {
            return Ok(0);
        }
        let mut trapped = 0;
        for (domain, hosts) in &domains {
            let total = totals.get(*domain).copied().unwrap_or_default();
            let n = i64::try_from(hosts.len()).unwrap_or(i64::MAX);
            let room = usize::try_from((limit - (total - n)).clamp(0, n)).unwrap_or(0);
            let Some(over) = hosts.get(room..).filter(|over| !over.is_empty()) else {
                continue;
            };
            DomainBudget::refuse(tx, domain, over).await?;
            for host in over {
                let queued = Self::queued_of_host(tx, new, host).await?;
                Self::trap_queued(tx, &queued, &domain_budget::reason(host, domain, limit)).await?;
                let n = i64::try_from(queued.len()).unwrap_or(i64::MAX);
                Self::give_back_budget(tx, host, n).await?;
                trapped += u64::try_from(n).unwrap_or(0);
            }
        }
        Ok(trapped)
    }

    /// The rows of `new` on `host` still queued (not cut at its page budget).
    async fn queued_of_host(
        tx: &mut Conn<DB>,
        new: &NewRows<'_>,
        host: &str,
    ) -> Result<Vec<i64>, Error> {
        let doing = "finding the URLs of a host over its domain's limit";
        match new {
            NewRows::Listed(rows) => {
                let ids: Vec<i64> = rows
                    .iter()
                    .filter(|(_, d)| d.host == host)
                    .map(|(id, _)| *id)
                    .collect();
                select_on_list(
                    tx,
                    "SELECT id FROM frontier WHERE state = 'queued' AND id IN ",
                    &ids,
                    doing,
                )
                .await
            }
            NewRows::Above(above) => sqlx::query_scalar(
                "SELECT id FROM frontier WHERE id > $1 AND host = $2 AND state = 'queued'",
            )
            .bind(*above)
            .bind(host)
            .fetch_all(&mut *tx)
            .await
            .doing(doing),
        }
    }

    /// Admits `hosts` uncounted: the seeds', and the names `scope.hosts` writes without a
    /// wildcard, are the user's, never over `traps.max_hosts_per_domain`.
    async fn admit_named_hosts(&self, hosts: &[&str]) -> Result<Vec<String>, Error> {
        let mut hosts = hosts.to_vec();
        hosts.sort_unstable();
        hosts.dedup();
        let mut tx = self.pool.begin().await.doing("admitting named hosts")?;
        let admitted = DomainBudget::admit(&mut tx, &hosts).await?;
        tx.commit().await.doing("admitting named hosts")?;
        Ok(admitted)
    }

    /// Those of `hosts` (the user's names) that may have URLs cut at their domain's
    /// limit: found before (each cut host keeps its `host_budget` row) and not admitted;
    /// none when no URL is cut at all. Look-ups by key, and the pass over the cut rows
    /// only for such hosts: seeds sent over the API in a loop, each of a host new to the
    /// crawl or admitted, cost no such pass.
    async fn cut_named(conn: &mut Conn<DB>, hosts: &[&str]) -> Result<Vec<String>, Error> {
        let found: Vec<String> = select_on_list(
            conn,
            "SELECT host FROM host_budget b
             WHERE NOT EXISTS (SELECT 1 FROM known_hosts k WHERE k.host = b.host)
               AND b.host IN ",
            hosts,
            "finding which named hosts were found before",
        )
        .await?;
        if found.is_empty() {
            return Ok(found);
        }
        let any_cut: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT f.id {CUT_AT_BUDGETS} LIMIT 1"
        )))
        .bind(domain_budget::CUT)
        .fetch_optional(&mut *conn)
        .await
        .doing("looking for hosts cut at their domains' limits")?;
        Ok(if any_cut.is_some() { found } else { Vec::new() })
    }

    /// Queues again in `tx`, within `max_pages_per_host` (0: no limit), the URLs an
    /// earlier run cut at their domain's limit of `hosts`, which the user has just named,
    /// admitting each uncounted with them. Says which URLs are queued.
    async fn requeue_named(
        tx: &mut Conn<DB>,
        hosts: &[&str],
        max_pages_per_host: u64,
    ) -> Result<Vec<i64>, Error> {
        let limits = domain_budget::Limits {
            hosts: None,
            pages: i64::try_from(max_pages_per_host).unwrap_or(i64::MAX),
        };
        let mut queued = Vec::new();
        for host in Self::cut_named(tx, hosts).await? {
            let requeued = Self::requeue_cut_host_on(tx, &host, domain_of(&host), limits).await?;
            queued.extend(requeued.unwrap_or_default());
        }
        Ok(queued)
    }

    /// Counts `hosts`' new rows (host, rows) against their budgets: how many rows there
    /// are, and each host with its rows and its budget's total now.
    async fn count_listed(
        tx: &mut Conn<DB>,
        hosts: Vec<(String, i64)>,
    ) -> Result<(u64, Vec<(String, i64, i64)>), Error> {
        let added = hosts
            .iter()
            .map(|(_, n)| u64::try_from(*n).unwrap_or(0))
            .sum();
        let mut totals: BTreeMap<String, i64> = BTreeMap::new();
        for chunk in hosts.chunks(MAX_BINDS / 2) {
            let mut q = QueryBuilder::<DB>::new("INSERT INTO host_budget (host, urls) ");
            q.push_values(chunk, |mut b, (host, n)| {
                b.push_bind(host.as_str()).push_bind(*n);
            });
            q.push(
                " ON CONFLICT (host) DO UPDATE SET urls = host_budget.urls + excluded.urls
                 RETURNING host, urls",
            );
            let rows = q
                .build()
                .persistent(false)
                .fetch_all(&mut *tx)
                .await
                .doing("counting URLs against their hosts' budgets")?;
            totals.extend(
                rows.iter()
                    .map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1))),
            );
        }
        let counted = hosts
            .into_iter()
            .map(|(host, n)| {
                let total = totals.get(&host).copied().unwrap_or_default();
                (host, n, total)
            })
            .collect();
        Ok((added, counted))
    }

    /// Counts the rows above id `above` against their hosts' budgets, in SQL: a merge
    /// of staged URLs may bring millions on as many hosts, which memory would otherwise
    /// hold twice over. Returns how many rows there are, and the hosts they take beyond
    /// `max_pages_per_host` (0: no limit), each with its rows and its budget's total now.
    async fn count_above(
        tx: &mut Conn<DB>,
        above: i64,
        max_pages_per_host: u64,
    ) -> Result<(u64, Vec<(String, i64, i64)>), Error> {
        let doing = "counting URLs against their hosts' budgets";
        let added: i64 = sqlx::query_scalar("SELECT count(*) FROM frontier WHERE id > $1")
            .bind(above)
            .fetch_one(&mut *tx)
            .await
            .doing(doing)?;
        sqlx::query(
            "INSERT INTO host_budget (host, urls)
             SELECT host, count(*) FROM frontier WHERE id > $1 GROUP BY host ORDER BY host
             ON CONFLICT (host) DO UPDATE SET urls = host_budget.urls + excluded.urls",
        )
        .bind(above)
        .execute(&mut *tx)
        .await
        .doing(doing)?;
        let over = match i64::try_from(max_pages_per_host) {
            Ok(budget @ 1..) => sqlx::query_as(
                "SELECT n.host, n.added, b.urls
                 FROM (SELECT host, count(*) AS added FROM frontier WHERE id > $1 GROUP BY host)
                      AS n JOIN host_budget b ON b.host = n.host
                 WHERE b.urls > $2 ORDER BY n.host",
            )
            .bind(above)
            .bind(budget)
            .fetch_all(&mut *tx)
            .await
            .doing(doing)?,
            _ => Vec::new(),
        };
        Ok((u64::try_from(added).unwrap_or(0), over))
    }

    /// Queues again, within `max_pages_per_host` (0: no limit), the URLs an earlier run
    /// cut at a lower budget, shallowest first: a run with the budget raised goes on
    /// where the last one stopped. Their trap rows go. Says how many are queued.
    ///
    /// A host at a time, its rows before its budget ([`Db::rows_in_url_order`]), read
    /// by [`CUT_BY_HOST`].
    pub async fn requeue_within_budgets(&self, max_pages_per_host: u64) -> Result<u64, Error> {
        let over_budget = format!("its host % {OVER_BUDGET}: %");
        let hosts: Vec<(String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT h.host, coalesce(b.urls, 0)
             FROM (SELECT DISTINCT f.host {CUT_AT_BUDGETS}) AS h
                  LEFT JOIN host_budget b ON b.host = h.host
             ORDER BY h.host"
        )))
        .bind(over_budget.as_str())
        .fetch_all(&self.pool)
        .await
        .doing("reading the hosts cut at their budgets")?;
        let budget = i64::try_from(max_pages_per_host).unwrap_or(i64::MAX);
        let room = |spent: i64| {
            if budget == 0 {
                i64::MAX
            } else {
                budget - spent
            }
        };
        let hosts: Vec<(String, i64)> = hosts
            .into_iter()
            .filter(|&(_, spent)| room(spent) > 0)
            .collect();
        if hosts.is_empty() {
            return Ok(0);
        }
        tracing::info!(
            hosts = hosts.len(),
            "traps.max_pages_per_host is above what hosts were cut at: queueing their cut \
             URLs again, a host at a time"
        );
        self.with_host_index(CUT_BY_HOST, async {
            let mut queued = 0;
            for (host, spent) in hosts {
                let mut tx = self
                    .pool
                    .begin()
                    .await
                    .doing("queueing URLs within budgets")?;
                let rows: Vec<HeldRow> =
                    sqlx::query_as(sqlx::AssertSqlSafe(Self::cut_rows_of_host()))
                        .bind(over_budget.as_str())
                        .bind(host.as_str())
                        .bind(room(spent))
                        .fetch_all(&mut *tx)
                        .await
                        .doing("queueing URLs within budgets")?;
                let spent = Self::hold_host_budget(&mut tx, &host).await?;
                let ids = first_of(rows, room(spent), |&(id, depth, priority)| {
                    (depth, std::cmp::Reverse(priority), id)
                });
                if ids.is_empty() {
                    continue;
                }
                Self::requeue_cut(&mut tx, &host, &ids).await?;
                tx.commit().await.doing("queueing URLs within budgets")?;
                queued += u64::try_from(ids.len()).unwrap_or(u64::MAX);
            }
            Ok(queued)
        })
        .await
    }

    /// Queues again `host`'s trap rows `ids`, which `tx` holds, counting them against
    /// its budget: their `pages` rows go.
    async fn requeue_cut(tx: &mut Conn<DB>, host: &str, ids: &[i64]) -> Result<(), Error> {
        let doing = "queueing cut URLs again";
        Self::requeue_rows(tx, ids, doing).await?;
        sqlx::query(
            "INSERT INTO host_budget (host, urls) VALUES ($1, $2)
             ON CONFLICT (host) DO UPDATE SET urls = host_budget.urls + excluded.urls",
        )
        .bind(host)
        .bind(i64::try_from(ids.len()).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await
        .doing(doing)?;
        Ok(())
    }

    /// Queues again the failed rows `ids`, which `tx` holds: their `pages` rows go.
    async fn requeue_rows(
        tx: &mut Conn<DB>,
        ids: &[i64],
        doing: &'static str,
    ) -> Result<(), Error> {
        for statement in [
            "DELETE FROM pages WHERE id IN ",
            "UPDATE frontier SET state = 'queued' WHERE id IN ",
        ] {
            execute_on_list(tx, statement, ids, doing).await?;
        }
        Ok(())
    }

    /// Queues again the URLs earlier runs stored as refused by the address guard
    /// (`address_refused` rows), for a run whose `network.allow` differs: their `pages`
    /// rows go, and their attempts start again. They were queued, and counted against
    /// their hosts' budgets, before they were refused, so the budgets stand. Says how many
    /// are queued.
    pub async fn requeue_refused_addresses(&self) -> Result<u64, Error> {
        let doing = "queueing URLs whose address was refused again";
        // Two statements over the rows, as `requeue_failures`' one: no budget to spend,
        // so no id needs to come back to this process.
        let mut tx = self.pool.begin().await.doing(doing)?;
        let queued = sqlx::query(
            "UPDATE frontier SET state = 'queued', attempts = 0, not_before = 0
             WHERE state = 'failed'
               AND id IN (SELECT id FROM pages WHERE error_kind = 'address_refused')",
        )
        .execute(&mut *tx)
        .await
        .doing(doing)?;
        sqlx::query(
            "DELETE FROM pages WHERE error_kind = 'address_refused'
               AND id IN (SELECT id FROM frontier WHERE state = 'queued')",
        )
        .execute(&mut *tx)
        .await
        .doing(doing)?;
        tx.commit().await.doing(doing)?;
        Ok(DB::rows_affected(&queued))
    }

    /// Queues again the URLs earlier runs stored as disallowed by robots.txt (`robots`
    /// rows), a host at a time, for a run that no longer obeys it: their `pages` rows go,
    /// and their attempts start again. Those the fetcher refused were queued, and counted
    /// against their host's `traps.max_pages_per_host`, before; those stored as they were
    /// found (never tried) were not, and are queued as far as the budget has room, in
    /// the order a cut keeps; the rest are cut at the budget as URLs found beyond it are,
    /// `trap` rows that a run with the budget raised queues: left `robots` rows, no later
    /// run queued them, this pass made. Says how many are queued.
    ///
    /// A host's rows are read by [`CUT_BY_HOST`] on SQLite, and held in URL order before
    /// its budget, as [`Db::requeue_within_budgets`] reads and holds them.
    pub async fn requeue_disallowed(&self, max_pages_per_host: u64) -> Result<u64, Error> {
        const DISALLOWED: &str = "FROM frontier f JOIN pages p ON p.id = f.id
             WHERE f.state = 'failed' AND p.error_kind = 'robots'";
        let hosts: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT DISTINCT f.host {DISALLOWED} ORDER BY f.host"
        )))
        .fetch_all(&self.pool)
        .await
        .doing("reading the hosts of URLs robots.txt disallowed")?;
        if hosts.is_empty() {
            return Ok(0);
        }
        let budget = i64::try_from(max_pages_per_host).unwrap_or(i64::MAX);
        let doing = "queueing URLs robots.txt disallowed again";
        // Tried (refused as leased: counted when queued) or not (stored as found).
        let of_host = |tried: &str| {
            Self::rows_in_url_order(
                &format!("SELECT f.id {DISALLOWED} AND f.host = $1 AND f.attempts {tried}"),
                "state = 'failed'",
            )
        };
        let (tried_rows, untried_rows) = (of_host("> 0"), of_host("= 0"));
        self.with_host_index(CUT_BY_HOST, async {
            let mut queued = 0;
            for host in hosts {
                let mut tx = self.pool.begin().await.doing(doing)?;
                let read = |sql: &str| {
                    sqlx::query_as::<_, HeldRow>(sqlx::AssertSqlSafe(sql.to_owned()))
                        .bind(host.clone())
                };
                let tried: Vec<i64> = read(&tried_rows)
                    .fetch_all(&mut *tx)
                    .await
                    .doing(doing)?
                    .into_iter()
                    .map(|(id, ..)| id)
                    .collect();
                let untried: Vec<HeldRow> =
                    read(&untried_rows).fetch_all(&mut *tx).await.doing(doing)?;
                let spent = Self::hold_host_budget(&mut tx, &host).await?;
                let room = if budget == 0 {
                    i64::MAX
                } else {
                    budget - spent
                };
                let all: Vec<i64> = untried.iter().map(|&(id, ..)| id).collect();
                let taken = first_of(untried, room, |&(id, depth, priority)| {
                    (depth, std::cmp::Reverse(priority), id)
                });
                Self::requeue_rows(&mut tx, &tried, doing).await?;
                if !taken.is_empty() {
                    Self::requeue_cut(&mut tx, &host, &taken).await?;
                }
                let again: Vec<i64> = tried.iter().chain(&taken).copied().collect();
                execute_on_list(
                    &mut tx,
                    "UPDATE frontier SET attempts = 0, not_before = 0 WHERE id IN ",
                    &again,
                    doing,
                )
                .await?;
                let taken: BTreeSet<i64> = taken.into_iter().collect();
                let cut: Vec<i64> = all.into_iter().filter(|id| !taken.contains(id)).collect();
                let reason = over_budget(&host, max_pages_per_host);
                for chunk in cut.chunks(MAX_BINDS - 1) {
                    let mut q =
                        QueryBuilder::<DB>::new("UPDATE pages SET error_kind = 'trap', error = ");
                    q.push_bind(reason.as_str()).push(" WHERE id IN ");
                    push_id_list(&mut q, chunk);
                    q.build()
                        .persistent(false)
                        .execute(&mut *tx)
                        .await
                        .doing(doing)?;
                }
                tx.commit().await.doing(doing)?;
                queued += u64::try_from(again.len()).unwrap_or(u64::MAX);
            }
            Ok(queued)
        })
        .await
    }

    /// Queues again, within `max_hosts_per_domain` and `max_pages_per_host` (each 0: no
    /// limit), the URLs of the host names an earlier run cut at a lower
    /// `traps.max_hosts_per_domain`: a run with the limit raised crawls the names it now
    /// has room for, in host order, as it would have admitted them. Says how many URLs
    /// are queued.
    ///
    /// A chunk of cut hosts at a time (a farm may have had a hundred thousand names
    /// cut), then a host at a time, as [`Db::requeue_within_budgets`] takes them; a
    /// domain found full is not asked again.
    pub async fn requeue_within_domains(
        &self,
        max_hosts_per_domain: u64,
        max_pages_per_host: u64,
    ) -> Result<u64, Error> {
        const CHUNK: i64 = 1000;
        let limits = domain_budget::Limits {
            hosts: Some(i64::try_from(max_hosts_per_domain).unwrap_or(i64::MAX)),
            pages: i64::try_from(max_pages_per_host).unwrap_or(i64::MAX),
        };
        let cut_hosts = |after: String| async move {
            sqlx::query_scalar::<DB, String>(sqlx::AssertSqlSafe(format!(
                "SELECT DISTINCT f.host {CUT_AT_BUDGETS} AND f.host > $2
                 ORDER BY f.host LIMIT $3"
            )))
            .bind(domain_budget::CUT)
            .bind(after)
            .bind(CHUNK)
            .fetch_all(&self.pool)
            .await
            .doing("reading the hosts cut at their domains' limits")
        };
        let mut hosts = cut_hosts(String::new()).await?;
        if hosts.is_empty() {
            return Ok(0);
        }
        tracing::info!(
            "traps.max_hosts_per_domain is above what host names were cut at: queueing \
             the URLs of those it takes again, a host at a time"
        );
        self.with_host_index(CUT_BY_HOST, async {
            let (mut full, mut queued) = (BTreeSet::new(), 0);
            while let Some(last) = hosts.last().cloned() {
                for host in &hosts {
                    let domain = domain_of(host);
                    if full.contains(domain) {
                        continue;
                    }
                    match self.requeue_cut_host(host, domain, limits).await? {
                        Some(ids) => queued += u64::try_from(ids.len()).unwrap_or(u64::MAX),
                        None => {
                            full.insert(domain.to_owned());
                        }
                    }
                }
                hosts = cut_hosts(last).await?;
            }
            Ok(queued)
        })
        .await
    }

    /// [`Db::requeue_cut_host_on`] in a transaction of its own, rolled back when the
    /// domain has no room for the host.
    async fn requeue_cut_host(
        &self,
        host: &str,
        domain: &str,
        limits: domain_budget::Limits,
    ) -> Result<Option<Vec<i64>>, Error> {
        let doing = "queueing URLs within their domains' limits";
        let mut tx = self.pool.begin().await.doing(doing)?;
        let requeued = Self::requeue_cut_host_on(&mut tx, host, domain, limits).await?;
        if requeued.is_some() {
            tx.commit().await.doing(doing)?;
        }
        Ok(requeued)
    }

    /// Queues again in `tx` `host`'s URLs cut at `domain`'s limit, within `limits`,
    /// admitting the host if it is new to `known_hosts` (and counting it, unless it is
    /// the user's): which, or `None` when the domain has no room for it. In the lock
    /// order of a page batch: the host's rows, its budget, then its domain's.
    async fn requeue_cut_host_on(
        tx: &mut Conn<DB>,
        host: &str,
        domain: &str,
        limits: domain_budget::Limits,
    ) -> Result<Option<Vec<i64>>, Error> {
        let doing = "queueing URLs within their domains' limits";
        let spent: Option<i64> = sqlx::query_scalar("SELECT urls FROM host_budget WHERE host = $1")
            .bind(host)
            .fetch_optional(&mut *tx)
            .await
            .doing(doing)?;
        let left = limits.pages_left(spent.unwrap_or(0));
        if left <= 0 {
            return Ok(Some(Vec::new()));
        }
        let rows: Vec<HeldRow> = sqlx::query_as(sqlx::AssertSqlSafe(Self::cut_rows_of_host()))
            .bind(domain_budget::CUT)
            .bind(host)
            .bind(left)
            .fetch_all(&mut *tx)
            .await
            .doing(doing)?;
        let room = limits.pages_left(Self::hold_host_budget(tx, host).await?);
        let ids = first_of(rows, room, |&(id, depth, priority)| {
            (depth, std::cmp::Reverse(priority), id)
        });
        if ids.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let admitted = !DomainBudget::admit(tx, &[host]).await?.is_empty();
        if admitted && limits.hosts.is_some() {
            let counted = BTreeMap::from([(domain, vec![host])]);
            let total = DomainBudget::count(tx, &counted).await?;
            if total.get(domain).is_some_and(|&n| !limits.admits(n)) {
                return Ok(None);
            }
        }
        Self::requeue_cut(tx, host, &ids).await?;
        let taken = i64::try_from(ids.len()).unwrap_or(i64::MAX);
        if room <= taken {
            // The rest wait for a higher page budget, not for room in the domain: said
            // so, a run with the budget raised takes them.
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE pages SET error = $3 WHERE id IN (SELECT f.id {CUT_AT_BUDGETS} AND f.host = $2)"
            )))
            .bind(domain_budget::CUT)
            .bind(host)
            .bind(over_budget(host, limits.pages))
            .execute(&mut *tx)
            .await
            .doing(doing)?;
        }
        Ok(Some(ids))
    }

    /// Cuts each host's queued URLs to `max_pages_per_host` (0: no limit), the deepest
    /// first, as they would have been cut when found: a run with a lower budget than
    /// the one that queued them holds the host to it. Seeds, where they redirected and
    /// pages queued for a revisit stay queued. Says how many are cut.
    ///
    /// A host at a time, its rows before its budget ([`Db::rows_in_url_order`]), read
    /// by [`QUEUED_BY_HOST`].
    pub async fn trap_over_budgets(&self, max_pages_per_host: u64) -> Result<u64, Error> {
        let Ok(budget @ 1..) = i64::try_from(max_pages_per_host) else {
            return Ok(0);
        };
        let hosts: Vec<(String, i64)> =
            sqlx::query_as("SELECT host, urls FROM host_budget WHERE urls > $1 ORDER BY host")
                .bind(budget)
                .fetch_all(&self.pool)
                .await
                .doing("reading the hosts over their budgets")?;
        if hosts.is_empty() {
            return Ok(0);
        }
        tracing::info!(
            hosts = hosts.len(),
            "hosts have more URLs than traps.max_pages_per_host: cutting what they have \
             queued beyond it, a host at a time"
        );
        self.with_host_index(QUEUED_BY_HOST, async {
            let mut cut = 0;
            for (host, spent) in hosts {
                let mut tx = self
                    .pool
                    .begin()
                    .await
                    .doing("cutting hosts to their budgets")?;
                let rows: Vec<HeldRow> =
                    sqlx::query_as(sqlx::AssertSqlSafe(Self::queued_rows_of_host()))
                        .bind(host.as_str())
                        .bind(spent - budget)
                        .fetch_all(&mut *tx)
                        .await
                        .doing("cutting hosts to their budgets")?;
                let over = Self::hold_host_budget(&mut tx, &host).await? - budget;
                let ids = first_of(rows, over, |&(id, depth, priority)| {
                    (std::cmp::Reverse(depth), priority, std::cmp::Reverse(id))
                });
                if ids.is_empty() {
                    continue;
                }
                Self::trap_queued(&mut tx, &ids, &over_budget(&host, budget)).await?;
                let n = i64::try_from(ids.len()).unwrap_or(i64::MAX);
                Self::give_back_budget(&mut tx, &host, n).await?;
                tx.commit().await.doing("cutting hosts to their budgets")?;
                cut += u64::try_from(n).unwrap_or(0);
            }
            Ok(cut)
        })
        .await
    }

    /// Host `$2`'s URLs cut at its budget (`$1`: the cut's reason as a `LIKE` pattern),
    /// the first `$3` of them a requeue takes, as [`HeldRow`]s.
    pub(super) fn cut_rows_of_host() -> String {
        Self::rows_in_url_order(
            &format!(
                "SELECT f.id {CUT_AT_BUDGETS} AND f.host = $2
                 ORDER BY f.depth, f.priority DESC, f.id LIMIT $3"
            ),
            "state = 'failed'",
        )
    }

    /// Host `$1`'s queued URLs, the first `$2` of them a cut takes, as [`HeldRow`]s.
    pub(super) fn queued_rows_of_host() -> String {
        Self::rows_in_url_order(
            "SELECT id FROM frontier f
             WHERE host = $1 AND state = 'queued' AND depth > 0
               AND NOT EXISTS (SELECT 1 FROM pages p WHERE p.id = f.id)
             ORDER BY depth DESC, priority, id DESC LIMIT $2",
            "state = 'queued' AND depth > 0",
        )
    }

    /// Runs `pass`, which reads the frontier a host at a time, with `index` built for it
    /// and dropped after, whatever the pass returns. SQLite's frontier has no index by
    /// host: kept current, one made a crawl's inserts of 100,000 URLs 25% slower, and
    /// without one every host's rows were read from the whole frontier (a million rows:
    /// 0.1 s a host, minutes for the thousand hosts a budget change may touch, before
    /// the crawl starts). Built for the pass, the index is one sort of the rows it holds
    /// (a million queued URLs: 0.9 s). PostgreSQL's nodes share the table, and its
    /// `frontier_queued` leads with the host: it builds none. A pass stopped by a kill
    /// leaves its index to [`Db::drop_host_indexes`] at the next start.
    pub(super) async fn with_host_index<T>(
        &self,
        (name, on): (&str, &str),
        pass: impl std::future::Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        if DB::SHARED {
            return pass.await;
        }
        drop(self.build_indexes([(name, on)]).await?);
        let done = pass.await;
        self.drop_host_indexes([name]).await?;
        done
    }

    /// Drops those of the indexes a pass over hosts builds ([`Db::with_host_index`])
    /// that are there, on SQLite.
    async fn drop_host_indexes<'n>(
        &self,
        names: impl IntoIterator<Item = &'n str>,
    ) -> Result<(), Error> {
        if DB::SHARED {
            return Ok(());
        }
        for name in names {
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP INDEX IF EXISTS {name}")))
                .execute(&self.pool)
                .await
                .doing("dropping an index a pass over hosts built")?;
        }
        Ok(())
    }

    /// A query of the frontier rows `candidates` (a query of ids) picks for which `still`
    /// (a condition on the row) holds once they are locked: a [`HeldRow`] each. On
    /// PostgreSQL they are locked in URL order, until the transaction ends.
    ///
    /// The budget cuts and requeues take a host's rows this way before its budget, as a
    /// page batch takes the rows it adds or moves up (in URL order) before the budgets
    /// of their hosts: every transaction that takes both takes frontier rows first, so
    /// nodes wait for each other rather than deadlock. The number of rows is read before
    /// the budget is held, so a caller takes as many of them as the held budget allows
    /// ([`first_of`]). `FOR NO KEY UPDATE`, as the update of the rows would lock them:
    /// it leaves a batch's `FOR KEY SHARE` on its own leased rows alone.
    fn rows_in_url_order(candidates: &str, still: &str) -> String {
        let lock = if DB::SHARED { " FOR NO KEY UPDATE" } else { "" };
        format!(
            "SELECT id, depth, priority FROM frontier WHERE id IN ({candidates}) AND {still}
             ORDER BY url{lock}"
        )
    }

    /// Takes `n` URLs off what `host` has spent of its budget: URLs counted that will not
    /// be fetched after all (trapped, or left out by the scope).
    async fn give_back_budget(tx: &mut Conn<DB>, host: &str, n: i64) -> Result<(), Error> {
        sqlx::query("UPDATE host_budget SET urls = urls - $1 WHERE host = $2")
            .bind(n)
            .bind(host)
            .execute(&mut *tx)
            .await
            .doing("giving back a host's budget")?;
        Ok(())
    }

    /// The URLs `host` has spent of its budget, its `host_budget` row held until `tx`
    /// ends, so that nodes starting together do not both change its rows.
    async fn hold_host_budget(tx: &mut Conn<DB>, host: &str) -> Result<i64, Error> {
        Ok(
            sqlx::query_scalar("UPDATE host_budget SET urls = urls WHERE host = $1 RETURNING urls")
                .bind(host)
                .fetch_optional(&mut *tx)
                .await
                .doing("reading a host's budget")?
                .unwrap_or(0),
        )
    }

    /// Turns frontier rows this transaction queued into trap rows: failed, with a page row
    /// that says why.
    async fn trap_queued(tx: &mut Conn<DB>, ids: &[i64], reason: &str) -> Result<(), Error> {
        let now = rfc3339(SystemTime::now());
        for chunk in ids.chunks(MAX_BINDS - 2) {
            let mut q =
                QueryBuilder::<DB>::new("UPDATE frontier SET state = 'failed' WHERE id IN ");
            push_id_list(&mut q, chunk);
            q.build()
                .persistent(false)
                .execute(&mut *tx)
                .await
                .doing("recording trapped URLs")?;
            let mut q = QueryBuilder::<DB>::new(
                "INSERT INTO pages (id, url, final_url, depth, fetched_at, changed_at, error_kind, error)
                 SELECT id, url, url, depth, ",
            );
            q.push_bind(now.as_str())
                .push(", ")
                .push_bind(now.as_str())
                .push(", 'trap', ")
                .push_bind(reason)
                .push(" FROM frontier WHERE id IN ");
            push_id_list(&mut q, chunk);
            q.build()
                .persistent(false)
                .execute(&mut *tx)
                .await
                .doing("recording trapped URLs")?;
        }
        Ok(())
    }

    /// In host order, so that nodes adding the same hosts wait for each other.
    fn insert_hosts<'h>(script: &mut Script<DB>, hosts: impl Iterator<Item = &'h str>) {
        let hosts: BTreeSet<&str> = hosts.collect();
        let hosts: Vec<&str> = hosts.into_iter().collect();
        for chunk in hosts.chunks(MAX_BINDS) {
            let q = script.statement("storing hosts", "INSERT INTO hosts (host) ");
            q.push_values(chunk, |mut b, host| {
                b.push_bind(*host);
            });
            q.push(" ON CONFLICT (host) DO NOTHING");
        }
    }

    /// Whether storing `page` may change where redirect chains end: it is a redirect, or
    /// was one at its last visit.
    pub(super) fn on_redirect_chains(page: &PageRecord) -> bool {
        page.location.is_some()
            || page
                .job
                .previous
                .as_ref()
                .and_then(|p| p.final_url.as_deref())
                .is_some_and(|ended_at| ended_at != page.job.url.as_str())
    }

    /// Keeps `final_url` of every redirect pointing at where its chain ends, whichever hop
    /// is stored first: a redirect takes its target's `final_url` if the target is stored,
    /// then passes its own back to the redirects that ended at it. A page that is not a
    /// redirect, or a redirect refused (one too many in a row), ends its chains at itself,
    /// which is what those redirects already say.
    /// A revisit may change where a hop leads (it stopped redirecting, or redirects
    /// elsewhere now): the redirects that led through it then end where it does.
    ///
    /// A redirect whose chain ends at itself closes a loop (`/a` → `/b` → `/a`, or `/a` →
    /// `/a`): every hop is a URL already known, so nothing is fetched again, and this hop
    /// is stored as a `redirect` error naming the URL it loops back to. Returns those
    /// hops, by frontier id, with their messages.
    pub(super) async fn follow_redirect_chains(
        tx: &mut Conn<DB>,
        batch: &[&PageRecord],
    ) -> Result<Vec<(i64, String)>, Error> {
        let mut loops = Vec::new();
        for page in batch.iter().filter(|p| Self::on_redirect_chains(p)) {
            let ends_at = match page.followed_location() {
                Some(location) => Self::follow_redirect(tx, page, location, &mut loops).await?,
                None => page.job.url.to_string(),
            };
            let ended_at = page
                .job
                .previous
                .as_ref()
                .and_then(|p| p.final_url.as_deref());
            if let Some(ended_at) = ended_at.filter(|&old| old != ends_at) {
                Self::retarget_chains_through(tx, &page.job.url, ended_at, &ends_at).await?;
            }
        }
        Ok(loops)
    }

    /// Sets the `final_url` of `page`, a redirect to `location`, and of the redirects
    /// that ended at it; returns it. A loop is recorded in `loops`.
    async fn follow_redirect(
        tx: &mut Conn<DB>,
        page: &PageRecord,
        location: &Url,
        loops: &mut Vec<(i64, String)>,
    ) -> Result<String, Error> {
        let final_url: String = sqlx::query_scalar(
            "UPDATE pages SET final_url = coalesce((SELECT final_url FROM pages WHERE url = $1), $1)
             WHERE id = $2 RETURNING final_url",
        )
        .bind(location.as_str())
        .bind(page.job.id)
        .fetch_one(&mut *tx)
        .await
        .doing("following a redirect chain")?;
        if final_url == page.job.url.as_str() && page.error.is_none() {
            if Self::ask_again_with_cookies(tx, page, location).await? {
                return Ok(location.to_string());
            }
            let message = format!("a redirect loop: back to {location}");
            sqlx::query("UPDATE pages SET error_kind = $1, error = $2 WHERE id = $3")
                .bind(ErrorKind::Redirect.as_str())
                .bind(message.as_str())
                .bind(page.job.id)
                .execute(&mut *tx)
                .await
                .doing("recording a redirect loop")?;
            loops.push((page.job.id, message));
            return Ok(final_url);
        }
        sqlx::query(
            "UPDATE pages SET final_url = $1
             WHERE location IS NOT NULL AND final_url = $2 AND id <> $3",
        )
        .bind(&final_url)
        .bind(page.job.url.as_str())
        .bind(page.job.id)
        .execute(&mut *tx)
        .await
        .doing("following a redirect chain")?;
        Ok(final_url)
    }

    /// A redirect back into its own chain is no loop when the cookies a request to
    /// `location` carries changed while `page` was asked: a cookie check on another URL
    /// (`/a` → `/check`, which sets the cookie, → `/a`), which browsers pass. `location`,
    /// visited before, is queued again to be asked with them, and `page`'s chain ends
    /// there. A redirect to itself is left out: the fetcher asked it again already. The
    /// target's `redirect_hops` is raised to the chain's, so a site whose cookies change
    /// at every answer is asked no more than `fetch.max_redirects` in a row. Returns
    /// whether `location` is queued again.
    async fn ask_again_with_cookies(
        tx: &mut Conn<DB>,
        page: &PageRecord,
        location: &Url,
    ) -> Result<bool, Error> {
        if !page.changed_location_cookies || location == &page.job.url {
            return Ok(false);
        }
        let hops = i64::from(page.job.redirect_hops.saturating_add(1));
        let queued = sqlx::query(
            "UPDATE frontier SET state = 'queued', not_before = 0, lease_owner = NULL,
                 lease_expires = NULL,
                 redirect_hops = CASE WHEN redirect_hops < $2 THEN $2 ELSE redirect_hops END
             WHERE url = $1 AND state = 'done'",
        )
        .bind(location.as_str())
        .bind(hops)
        .execute(&mut *tx)
        .await
        .doing("queueing a redirect's target again with its cookies")?;
        if DB::rows_affected(&queued) == 0 {
            return Ok(false);
        }
        sqlx::query("UPDATE pages SET final_url = $1 WHERE id = $2")
            .bind(location.as_str())
            .bind(page.job.id)
            .execute(&mut *tx)
            .await
            .doing("following a redirect chain")?;
        Ok(true)
    }

    /// Redirects whose chains led through `hop` to `ended_at` end at `ends_at` now. They
    /// are found among those ending at `ended_at` (an index), walking back from `hop`.
    async fn retarget_chains_through(
        tx: &mut Conn<DB>,
        hop: &Url,
        ended_at: &str,
        ends_at: &str,
    ) -> Result<(), Error> {
        sqlx::query(
            "WITH RECURSIVE through (url) AS (
                 SELECT url FROM pages WHERE url = $1
                 UNION
                 SELECT p.url FROM pages p JOIN through t ON p.location = t.url
                 WHERE p.location IS NOT NULL AND p.final_url = $2
             )
             UPDATE pages SET final_url = $3
             WHERE location IS NOT NULL AND final_url = $2 AND url IN (SELECT url FROM through)",
        )
        .bind(hop.as_str())
        .bind(ended_at)
        .bind(ends_at)
        .execute(&mut *tx)
        .await
        .doing("following redirect chains through a revisited page")?;
        Ok(())
    }

    /// Finishes the batch's frontier rows, those revisited due again after their interval:
    /// counted on the server's clock, which the node revisiting them (this one or another)
    /// reads it by ([`crate::store::cluster`]), not on this node's, which may be off. The
    /// nodes' commit only: SQLite's writer has its own (`sqlite_batch`).
    fn finish_frontier_rows(
        script: &mut Script<DB>,
        batch: &[&PageRecord],
        revisits_from: Option<SystemTime>,
    ) {
        let (revisited, once): (Vec<&PageRecord>, Vec<&PageRecord>) =
            batch.iter().partition(|p| p.recrawl_in.is_some());
        for (state, failed) in [("done", false), ("failed", true)] {
            let ids: Vec<i64> = once
                .iter()
                .filter(|p| p.is_failure() == failed)
                .map(|p| p.job.id)
                .collect();
            for chunk in ids.chunks(MAX_BINDS) {
                let q = script.statement("finishing frontier rows", "UPDATE frontier SET state = ");
                q.push_bind(state);
                q.push(
                    ", attempts = attempts + 1, lease_owner = NULL, lease_expires = NULL,
                       recrawl_at = NULL, recrawl_interval_ms = NULL WHERE id IN ",
                );
                push_id_list(q, chunk);
            }
        }
        // Counted on the server's clock, less what has passed of it on this node's.
        let past = revisits_from.map_or(0, |from| {
            let past = SystemTime::now().duration_since(from).unwrap_or_default();
            i64::try_from(past.as_millis()).unwrap_or(i64::MAX / 2)
        });
        for page in revisited {
            let interval = page
                .recrawl_in
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2));
            let q = script.statement("finishing frontier rows", "UPDATE frontier SET state = ");
            q.push_bind(if page.is_failure() { "failed" } else { "done" })
                .push(concat!(
                    ", attempts = attempts + 1, lease_owner = NULL, lease_expires = NULL, ",
                    "recrawl_at = ",
                    server_ms!(),
                    " + "
                ))
                .push_bind(interval - past)
                .push(", recrawl_interval_ms = ")
                .push_bind(interval)
                .push(" WHERE id = ")
                .push_bind(page.job.id);
        }
    }

    /// Moves the rows noted nearer up as [`MOVE_UP`] moves a queued one: a page's row
    /// says the depth it was stored at, a retry waits at it.
    fn move_up_noted(script: &mut Script<DB>, nearer: &[Nearer]) {
        for note in nearer {
            let q = script.statement(
                "moving up the batch's URLs found nearer the seeds",
                "UPDATE frontier SET depth = ",
            );
            q.push_bind(i64::from(note.depth))
                .push(", priority = ")
                .push_bind(note.priority)
                .push(", discovered_from = ")
                .push_bind(note.discovered_from)
                .push(" WHERE id = ")
                .push_bind(note.id)
                .push(" AND depth > ")
                .push_bind(i64::from(note.depth));
        }
    }

    /// Puts URLs to be retried back in the queue, due after their wait: counted on the
    /// server's clock, which the node retrying them (this one or another) reads it by
    /// ([`crate::store::cluster`]), not on this node's, which may be off. The nodes' commit
    /// only: SQLite's writer has its own (`sqlite_batch`).
    fn requeue(script: &mut Script<DB>, retries: &[&PageRecord]) {
        for page in retries {
            let q = script.statement(
                "putting retries back in the queue",
                concat!(
                    "UPDATE frontier SET state = 'queued', attempts = attempts + 1, \
                     lease_owner = NULL, lease_expires = NULL, not_before = ",
                    server_ms!(),
                    " + "
                ),
            );
            q.push_bind(retry::due_at(0, page.retry_in))
                .push(" WHERE id = ")
                .push_bind(page.job.id);
        }
    }

    /// Keeps the pause a 429, 502, 503 or 504 put on its host for a run after a kill, which would
    /// otherwise lose it and ask the host at once. It ends on the server's clock, as every
    /// host's next turn on a shared database ([`crate::store::cluster`]): the node taking
    /// the host next reads it by that clock, not by this node's. The nodes' commit only:
    /// SQLite's writer has its own (`sqlite_batch`).
    fn keep_host_pauses(script: &mut Script<DB>, sorted: &Sorted<'_>) {
        for (host, pause) in sorted.host_pauses(0) {
            let q = script.statement(
                "keeping a host's pause for the next run",
                "INSERT INTO hosts (host, next_allowed_at) VALUES (",
            );
            q.push_bind(host.to_owned())
                .push(concat!(", ", server_ms!(), " + "))
                .push_bind(pause)
                .push(concat!(
                    ") ON CONFLICT (host) DO UPDATE SET ",
                    later_turn!()
                ));
        }
    }
}

/// `now` as a statement reads it: `$1`, and what to bind to it; on a shared database,
/// whose due times are the server's ([`crate::store::cluster`]), the server's now, and
/// nothing to bind.
fn now_in_sql<DB: Backend>(now: SystemTime) -> (&'static str, Option<i64>) {
    if DB::SHARED {
        (server_ms!(), None)
    } else {
        ("$1", Some(unix_ms(now)))
    }
}

/// A one-off crawl takes the revisits due within a tenth (1 / this) of their interval
/// after its start: run by cron or a timer once an interval, it starts a little earlier
/// or later each time, and would leave a page that last run fetched, due a moment after
/// this one started, a whole interval more.
const EARLY_DIVISOR: i64 = 10;

/// Runs `statement`, which ends in `IN `, on `ids` (or host names), a chunk at a time.
pub(super) async fn execute_on_list<'t, DB: Backend + HasStatementCache, T>(
    tx: &mut Conn<DB>,
    statement: &str,
    ids: &[T],
    doing: &'static str,
) -> Result<(), Error>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    T: Copy + Type<DB> + Encode<'t, DB>,
{
    for chunk in ids.chunks(MAX_BINDS) {
        let mut q = QueryBuilder::<DB>::new(statement);
        push_id_list(&mut q, chunk);
        q.build()
            .persistent(false)
            .execute(&mut *tx)
            .await
            .doing(doing)?;
    }
    Ok(())
}

/// The values `statement`, which selects one column and ends in `IN `, finds for `ids`
/// (or host names), a chunk at a time.
pub(super) async fn select_on_list<'t, DB: Backend + HasStatementCache, T, O>(
    conn: &mut Conn<DB>,
    statement: &str,
    ids: &[T],
    doing: &'static str,
) -> Result<Vec<O>, Error>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    T: Copy + Type<DB> + Encode<'t, DB>,
    O: Send + Unpin + Type<DB> + for<'r> Decode<'r, DB>,
    (O,): for<'r> sqlx::FromRow<'r, DB::Row>,
{
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(MAX_BINDS) {
        let mut q = QueryBuilder::<DB>::new(statement);
        push_id_list(&mut q, chunk);
        found.extend(
            q.build_query_scalar::<O>()
                .persistent(false)
                .fetch_all(&mut *conn)
                .await
                .doing(doing)?,
        );
    }
    Ok(found)
}

/// Appends `($1, $2, …)` binding each id (or host name), for `WHERE id IN`.
pub(super) fn push_id_list<'t, DB: Database, T>(q: &mut QueryBuilder<DB>, ids: &[T])
where
    T: Copy + Type<DB> + Encode<'t, DB>,
{
    q.push("(");
    let mut list = q.separated(", ");
    for id in ids {
        list.push_bind(*id);
    }
    q.push(")");
}

#[cfg(test)]
mod tests {
    use super::COUNTED_PAGES;
    use crate::page::ErrorKind;

    /// `scope.max_pages` counts the same pages in SQL (a start's count, PostgreSQL's
    /// limit) as in the running tally, which asks [`ErrorKind::requested`]: a kind added
    /// to one list and not the other would count a crawl's pages two ways.
    #[test]
    fn the_pages_counted_in_sql_are_those_the_tally_counts_as_requested() {
        for kind in ErrorKind::ALL {
            let left_out = COUNTED_PAGES.contains(&format!("'{}'", kind.as_str()));
            assert_eq!(left_out, !kind.requested(), "{kind:?}");
        }
    }
}
