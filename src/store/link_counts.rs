//! `inlinks` and `anchors`: counts derived from `links`, kept by the writer.
//!
//! A page's links are written in one batch and replaced in one batch when it is
//! revisited, so the writer can work out every change to the counts exactly: it adds what
//! pages link to now and takes away what revisited ones linked to before. The changes are
//! netted in memory over several batches and applied every few seconds (or when many
//! are waiting, or the crawl ends) as one upsert per table: popular targets — menus,
//! footers — are counted once per flush instead of once per batch, which on a site with
//! 45 links per page took about a third of the writer's time.
//!
//! The cost is that the counts trail the links by up to [`FLUSH_EVERY`], and that a
//! crash loses the changes not yet applied. So the first batch after a flush marks the
//! counts as behind, in its own transaction, and the flush clears the mark in the same
//! transaction as the counts it applies: a database opened with the mark set was left by
//! a crash, and its counts are rebuilt from `links` ([`rebuild_if_behind`]).
//!
//! A one-off crawl with a large crawl ahead keeps no counts at all ([`LinkCounts::deferred`]):
//! when most links point to URLs never seen before, netting saves nothing, and upserting
//! a million new keys into two tables ordered by URL cost a third of the writer's time,
//! more the larger they grew. It marks the counts behind at its start and rebuilds them
//! at its end (two `GROUP BY`s over `links`, a few seconds per million links).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use sqlx::database::HasStatementCache;
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Pool, QueryBuilder, Row, Type};

use super::backend::Backend;
use super::db::{push_id_list, Conn};
use super::MAX_BINDS;
use crate::error::{DbContext, Error};
use crate::page::PageRecord;

/// How long changes may wait before they are applied.
pub(crate) const FLUSH_EVERY: Duration = Duration::from_secs(5);

/// Changes waiting (distinct targets plus distinct target/anchor pairs) that force a
/// flush, whatever the crawl's speed: about 15 MB of keys of a usual length.
const MAX_WAITING: usize = 100_000;

/// `writer_state.link_counts_behind`: the counts are exact.
const CURRENT: i64 = 0;

/// The counts trail `links` by the changes a writer holds in memory, up to
/// [`FLUSH_EVERY`] of them.
const TRAILING: i64 = 1;

/// The counts are not kept: a crawl counts them at its end ([`LinkCounts::deferred`]), and
/// until then, or if it is killed before, they are the last run's (none after a first
/// run). Readers that need them count from `links` meanwhile.
pub(crate) const NOT_KEPT: i64 = 2;

/// Bytes of those keys that force a flush. A key can be 2,560 bytes of URL and 4 KiB of
/// anchor text, so the count alone would let the keys take some 650 MB.
const MAX_WAITING_BYTES: usize = 16 * 1024 * 1024;

/// Net changes to the counts not yet applied.
pub(crate) struct LinkCounts {
    /// Per target URL: (distinct linking pages, link rows).
    inlinks: HashMap<String, (i64, i64)>,
    /// Per (target URL, anchor text): link rows.
    anchors: HashMap<(String, String), i64>,
    /// Bytes of the keys of `inlinks` and `anchors`.
    key_bytes: usize,
    /// The database says the counts are behind (set since the last flush).
    marked: bool,
    last_flush: Instant,
    /// Counts are rebuilt from `links` when the crawl ends instead.
    deferred: bool,
}

impl LinkCounts {
    pub(crate) fn new() -> Self {
        Self {
            inlinks: HashMap::new(),
            anchors: HashMap::new(),
            key_bytes: 0,
            marked: false,
            last_flush: Instant::now(),
            deferred: false,
        }
    }

    /// Keeps nothing: the database was marked behind ([`mark_behind`]) and is rebuilt at
    /// the crawl's end.
    pub(crate) fn deferred() -> Self {
        Self {
            deferred: true,
            ..Self::new()
        }
    }

    /// Counts the links the pages are about to store.
    pub(super) fn adding(&mut self, pages: &[&PageRecord]) {
        if self.deferred {
            return;
        }
        for page in pages {
            let mut targets = HashSet::new();
            for link in &page.links {
                let target = link.target.as_str();
                self.add(target, &link.anchor_text, targets.insert(target), 1);
            }
        }
    }

    /// Whether the counts are left to the crawl's end ([`LinkCounts::deferred`]).
    pub(super) fn is_deferred(&self) -> bool {
        self.deferred
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.inlinks.is_empty() && self.anchors.is_empty()
    }

    /// Whether [`LinkCounts::settle`] would write anything on SQLite, where most
    /// batches' statements go without sqlx (see `sqlite_batch`).
    pub(super) fn settles_in_database(&self) -> bool {
        if self.due() {
            self.marked || !self.is_empty()
        } else {
            !self.marked && !self.is_empty()
        }
    }

    fn due(&self) -> bool {
        self.inlinks.len() + self.anchors.len() >= MAX_WAITING
            || self.key_bytes >= MAX_WAITING_BYTES
            || self.last_flush.elapsed() >= FLUSH_EVERY
    }

    /// Takes away the links the revisited pages stored last time, before they are deleted.
    pub(super) async fn removing<DB: Backend + HasStatementCache>(
        &mut self,
        tx: &mut Conn<DB>,
        sources: &[i64],
    ) -> Result<(), Error>
    where
        for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
        DB::Arguments: IntoArguments<DB>,
        i64: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
        String: Type<DB> + for<'r> Decode<'r, DB>,
        for<'s> &'s str: Type<DB> + Encode<'s, DB>,
        usize: ColumnIndex<DB::Row>,
    {
        if self.deferred {
            return Ok(());
        }
        for chunk in sources.chunks(MAX_BINDS) {
            let mut q = QueryBuilder::<DB>::new(
                "SELECT source_id, target_url, anchor_text FROM links WHERE source_id IN ",
            );
            push_id_list(&mut q, chunk);
            let rows = q
                .build()
                .persistent(false)
                .fetch_all(&mut *tx)
                .await
                .doing("reading a revisited page's old links")?;
            let mut pairs = HashSet::new();
            for row in rows {
                let source: i64 = row.get(0);
                let target: String = row.get(1);
                let anchor: String = row.get(2);
                let first = pairs.insert((source, target.clone()));
                self.add(&target, &anchor, first, -1);
            }
        }
        Ok(())
    }

    fn add(&mut self, target: &str, anchor: &str, new_page: bool, sign: i64) {
        let key_bytes = &mut self.key_bytes;
        let entry = self.inlinks.entry(target.to_owned()).or_insert_with(|| {
            *key_bytes += target.len();
            (0, 0)
        });
        entry.0 += if new_page { sign } else { 0 };
        entry.1 += sign;
        *self
            .anchors
            .entry((target.to_owned(), anchor.to_owned()))
            .or_insert_with(|| {
                *key_bytes += target.len() + anchor.len();
                0
            }) += sign;
    }

    /// Applies the changes when they are due, or else makes sure the database says the
    /// counts are behind; either way in the batch's transaction. On a database several
    /// nodes share they are always due: one node's mark could not tell its own pending
    /// changes from another's, so the counts are kept exact batch by batch instead.
    pub(super) async fn settle<DB: Backend + HasStatementCache>(
        &mut self,
        tx: &mut Conn<DB>,
    ) -> Result<(), Error>
    where
        for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
        DB::Arguments: IntoArguments<DB>,
        i64: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
        String: Type<DB> + for<'r> Decode<'r, DB>,
        for<'s> &'s str: Type<DB> + Encode<'s, DB>,
        usize: ColumnIndex<DB::Row>,
    {
        if DB::SHARED || self.due() {
            self.flush(tx).await
        } else if !self.marked && !self.is_empty() {
            set_behind(tx, TRAILING).await?;
            self.marked = true;
            Ok(())
        } else {
            Ok(())
        }
    }

    /// Applies the net changes and clears the mark. A count that only goes down still goes
    /// through the upsert (its row exists, since the links it counts did), and rows left
    /// at zero are deleted.
    ///
    /// Rows are upserted in key order: menu links make some rows hot, and nodes that
    /// update them in the same order wait for each other instead of deadlocking.
    pub(super) async fn flush<DB: Backend + HasStatementCache>(
        &mut self,
        tx: &mut Conn<DB>,
    ) -> Result<(), Error>
    where
        for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
        DB::Arguments: IntoArguments<DB>,
        i64: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
        String: Type<DB> + for<'r> Decode<'r, DB>,
        for<'s> &'s str: Type<DB> + Encode<'s, DB>,
        usize: ColumnIndex<DB::Row>,
    {
        self.last_flush = Instant::now();
        self.key_bytes = 0;
        if self.marked {
            set_behind(tx, CURRENT).await?;
            self.marked = false;
        }
        let mut inlinks: Vec<_> = std::mem::take(&mut self.inlinks)
            .into_iter()
            .filter(|(_, delta)| *delta != (0, 0))
            .collect();
        inlinks.sort_unstable();
        let mut anchors: Vec<_> = std::mem::take(&mut self.anchors)
            .into_iter()
            .filter(|(_, delta)| *delta != 0)
            .collect();
        anchors.sort_unstable();
        for chunk in inlinks.chunks(MAX_BINDS / 3) {
            let mut q = QueryBuilder::<DB>::new("INSERT INTO inlinks (url, linking_pages, links) ");
            q.push_values(chunk, |mut b, (url, (pages, links))| {
                b.push_bind(url.as_str())
                    .push_bind(*pages)
                    .push_bind(*links);
            });
            q.push(
                " ON CONFLICT (url) DO UPDATE SET linking_pages = inlinks.linking_pages + excluded.linking_pages,
                     links = inlinks.links + excluded.links",
            );
            q.build()
                .persistent(false)
                .execute(&mut *tx)
                .await
                .doing("counting in-links")?;
        }
        for chunk in anchors.chunks(MAX_BINDS / 3) {
            let mut q =
                QueryBuilder::<DB>::new("INSERT INTO anchors (target_url, anchor_text, links) ");
            q.push_values(chunk, |mut b, ((target, anchor), links)| {
                b.push_bind(target.as_str())
                    .push_bind(anchor.as_str())
                    .push_bind(*links);
            });
            q.push(format_args!(
                " ON CONFLICT {} DO UPDATE SET links = anchors.links + excluded.links",
                DB::ANCHORS_KEY
            ));
            q.build()
                .persistent(false)
                .execute(&mut *tx)
                .await
                .doing("counting anchor texts")?;
        }
        let shrunk: Vec<&str> = inlinks
            .iter()
            .filter(|(_, (_, links))| *links < 0)
            .map(|(url, _)| url.as_str())
            .collect();
        for chunk in shrunk.chunks(MAX_BINDS) {
            let mut q =
                QueryBuilder::<DB>::new("DELETE FROM inlinks WHERE links <= 0 AND url IN (");
            let mut list = q.separated(", ");
            for url in chunk {
                list.push_bind(*url);
            }
            q.push(")");
            q.build()
                .persistent(false)
                .execute(&mut *tx)
                .await
                .doing("dropping in-link counts of unlinked URLs")?;
        }
        let gone: Vec<&(String, String)> = anchors
            .iter()
            .filter(|(_, links)| *links < 0)
            .map(|(key, _)| key)
            .collect();
        for chunk in gone.chunks(MAX_BINDS / 2) {
            let mut q = QueryBuilder::<DB>::new(
                "DELETE FROM anchors WHERE links <= 0 AND (target_url, anchor_text) IN (VALUES ",
            );
            let mut list = q.separated(", ");
            for (target, anchor) in chunk {
                list.push("(")
                    .push_bind_unseparated(target.as_str())
                    .push_unseparated(", ")
                    .push_bind_unseparated(anchor.as_str())
                    .push_unseparated(")");
            }
            q.push(")");
            q.build()
                .persistent(false)
                .execute(&mut *tx)
                .await
                .doing("dropping anchor texts no longer used")?;
        }
        Ok(())
    }
}

async fn set_behind<DB: Backend>(tx: &mut Conn<DB>, behind: i64) -> Result<(), Error>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    i64: Type<DB> + for<'q> Encode<'q, DB>,
{
    sqlx::query("UPDATE writer_state SET value = $1 WHERE key = 'link_counts_behind'")
        .bind(behind)
        .execute(&mut *tx)
        .await
        .doing("marking the link counts")?;
    Ok(())
}

/// Counts `inlinks` and `anchors` afresh from `links` and clears the mark: a file of its
/// own, because `bench/query-data.sql` runs it too, to leave its synthetic links counted
/// as a crawl leaves them.
const REBUILD: &str = include_str!("rebuild_link_counts.sql");

/// Marks the counts behind until [`rebuild_if_behind`], for a crawl that keeps none.
pub(super) async fn mark_behind<DB: Backend>(pool: &Pool<DB>) -> Result<(), Error>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    i64: Type<DB> + for<'q> Encode<'q, DB>,
{
    let mut tx = pool.begin().await.doing("marking the link counts")?;
    set_behind(&mut tx, NOT_KEPT).await?;
    tx.commit().await.doing("marking the link counts")
}

/// Rebuilds `inlinks` and `anchors` from `links` if a crash, or a crawl that kept none,
/// left them behind.
pub(super) async fn rebuild_if_behind<DB: Backend>(conn: &mut DB::Connection) -> Result<bool, Error>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    i64: Type<DB> + for<'r> Decode<'r, DB>,
    usize: ColumnIndex<DB::Row>,
{
    let behind: i64 =
        sqlx::query_scalar("SELECT value FROM writer_state WHERE key = 'link_counts_behind'")
            .fetch_one(&mut *conn)
            .await
            .doing("reading the link counts' state")?;
    if behind == CURRENT {
        return Ok(false);
    }
    // Grouping every link by target and anchor text sorts as much as `links` holds: on a
    // writer that sorts in memory, gigabytes after a large crawl.
    let (before, after) = DB::around_bulk_sort();
    run_unless_empty(conn, before, "preparing to rebuild link counts").await?;
    let mut tx = sqlx::Connection::begin(&mut *conn)
        .await
        .doing("starting to rebuild link counts")?;
    // Several statements in one: sqlx runs raw SQL without preparing it, statement by
    // statement on SQLite and as one simple query on PostgreSQL.
    sqlx::raw_sql(REBUILD)
        .execute(&mut *tx)
        .await
        .doing("rebuilding link counts")?;
    tx.commit().await.doing("rebuilding link counts")?;
    run_unless_empty(conn, after, "after rebuilding link counts").await?;
    Ok(true)
}

/// Runs `sql`, statements that set a connection up (none on PostgreSQL).
async fn run_unless_empty<DB: Backend>(
    conn: &mut DB::Connection,
    sql: String,
    doing: &'static str,
) -> Result<(), Error>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    if !sql.is_empty() {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut *conn)
            .await
            .doing(doing)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_keys_are_flushed_before_they_take_more_than_the_bytes_bound() {
        let mut counts = LinkCounts::new();
        let anchor = "word ".repeat(800);
        let mut added = 0;
        while added < MAX_WAITING_BYTES + 1_000_000 {
            let target = format!("http://h/{added:0>2500}");
            counts.add(&target, &anchor, true, 1);
            added += 2 * target.len() + anchor.len();
            if counts.due() {
                break;
            }
        }
        assert!(
            counts.due(),
            "{added} bytes of keys in {} changes are not due",
            counts.inlinks.len() + counts.anchors.len()
        );
        assert!(
            added < MAX_WAITING_BYTES + 10_000,
            "due only at {added} bytes"
        );
    }

    #[test]
    fn a_few_short_keys_wait() {
        let mut counts = LinkCounts::new();
        counts.add("http://h/a", "a", true, 1);
        counts.add("http://h/a", "b", false, 1);
        assert!(!counts.due());
        assert_eq!(counts.key_bytes, 10 + 11 + 11);
    }
}
