//! SQLite's page batches, stepped through prepared statements of the store's own.
//!
//! sqlx runs SQLite on a thread of its own, and every statement, `BEGIN` and `COMMIT`
//! is a hand-over to it and back; a batch took about a dozen. Here the writer locks the
//! connection once and steps the batch's statements itself, `BEGIN` to `COMMIT`, on its
//! own thread. Each statement is compiled once per batch and run once per row, binding
//! strings where they lie: as sqlx's multi-row `INSERT`s every batch's SQL was new, and
//! SQLite parsed and compiled thousands of `(?, ?, ?, ?)` each time (a quarter of its
//! thread's time when links went that way).
//!
//! In the benchmark's scale crawl, whose batches stage thousands of new URLs, the store
//! stage's time went from 10.7 to 9.9 s and the crawl's from 14.7 to 13.9 s (four
//! interleaved pairs, every pair faster). The throughput crawl ran no faster (seven
//! pairs): there the writer mostly waits for a core, which the parse threads keep busy,
//! not for SQLite's thread.
//!
//! What few batches need besides — trapped URLs, redirects, link counts due — follows
//! through sqlx in the same transaction; a merge of the staged URLs in its own.

use std::collections::BTreeSet;
use std::ffi::{c_char, c_int, CStr};
use std::ptr::{self, NonNull};
use std::time::SystemTime;

use libsqlite3_sys as ffi;
use sqlx::sqlite::SqliteConnection;
use sqlx::Sqlite;

use super::db::{
    failed_revisit_row, frontier_row, later_turn, page_row, report_loops, split_unqueued, Db,
    Sorted, Unqueued, Value, FAILED_REVISIT_ROW, FRONTIER_COLUMNS, FRONTIER_ROW, PAGE_COLUMNS,
    PAGE_ROW, PAGE_UPSERT, REVISIT_FAILURE_CLEARED,
};
use super::link_counts::LinkCounts;
use super::{rfc3339, unix_ms, Admission, Committed};
use crate::error::{DbContext, Error};
use crate::page::{Discovered, PageRecord};
use crate::retry;

/// Asks what [`merge_due`] decides on.
///
/// Every merge empties the staged table, after which SQLite numbers rows from 1 again:
/// the largest rowid is the count, read without counting. Retries waiting for later are
/// no help to a lease, so the queue's size, and the last URL of the next window leased,
/// count URLs due now (`?1`: now; `?2`: the window). The last is found by walking the
/// queue's priority index a window of entries in: with retries waiting, only the entries
/// due count, and each is looked up in the table for its `not_before` (the retries passed
/// on the way); with none waiting, as in most of a crawl, the index alone answers. Asked
/// on every batch, the walk that looks rows up took the benchmark's scale crawl from
/// 15.9 to 16.5 s (means of interleaved runs). The scans are skipped when nothing is
/// staged, as it is after every merge until the next batch finds a new URL.
const ASK_MERGE: &str = "SELECT staged,
        CASE WHEN staged > 0 THEN (SELECT max(priority) FROM frontier_staged) END,
        CASE WHEN staged > 0 THEN (SELECT count(*) FROM (
            SELECT 1 FROM frontier WHERE state = 'queued' AND not_before <= ?1 LIMIT ?2
        ) AS due) END,
        CASE WHEN staged = 0 THEN NULL
             WHEN EXISTS (SELECT 1 FROM frontier WHERE state = 'queued' AND not_before > ?1)
             THEN (SELECT priority FROM frontier INDEXED BY frontier_queued
                   WHERE state = 'queued' AND not_before <= ?1
                   ORDER BY priority DESC, id LIMIT 1 OFFSET ?2 - 1)
             ELSE (SELECT priority FROM frontier WHERE state = 'queued'
                   ORDER BY priority DESC, id LIMIT 1 OFFSET ?2 - 1) END
    FROM (SELECT coalesce(max(rowid), 0) AS staged FROM frontier_staged) AS s";

impl Db<Sqlite> {
    /// SQLite's [`Db::commit`]. New URLs are appended to `frontier_staged` rather than
    /// looked up in `frontier`, and merged into it when a lease needs them (see
    /// [`merge_due`]), after the batch, in a transaction of their own.
    ///
    /// A merge walks `frontier`'s URL index once, in URL order, so the more URLs it takes
    /// the less it costs each: in the benchmark's scale crawl, merging whenever an eighth
    /// of the frontier's size was staged (as this store did before) took the writer
    /// 2.8 s over the crawl in 35 merges of up to 0.4 s, each a dip that left the last
    /// tenth of the crawl at 72–98% of the first's pages/s from run to run (merging
    /// smaller shares was slower still); one merge at the crawl's end took 3.0 s, and the
    /// whole crawl 14.28 → 13.58 s (three interleaved pairs, every pair faster). The price
    /// of merging only when needed is a pause as long as what was staged since the last
    /// merge takes (about 2.6 µs a URL there), in a crawl whose queue runs short late.
    ///
    /// Returns what was committed, and whether the staged URLs are due a merge: the
    /// caller's to make, once the batch is stored (see `Store::commit`).
    pub(super) async fn commit_local(
        &self,
        batch: &mut [PageRecord],
        counts: &mut LinkCounts,
        admission: Admission,
    ) -> Result<(Committed, bool), Error> {
        let mut conn = self.pool.acquire().await.doing("starting a page batch")?;
        let (loops, unqueued, merge) = {
            let sorted = Sorted::of(batch);
            counts.adding(&sorted.pages);
            // The writer holds the one connection that writes: the links that revisits
            // replace read the same before the transaction begins as in it.
            counts
                .removing::<Sqlite>(&mut conn, &sorted.revisited)
                .await?;
            let (unqueued, fine) = split_unqueued(&sorted.discovered);
            let redirects = sorted.pages.iter().any(|p| Self::on_redirect_chains(p));
            let rest = !unqueued.is_empty() || redirects || counts.settles_in_database();
            let merge = {
                let mut handle = conn.lock_handle().await.doing("storing a page batch")?;
                let db = handle.as_raw_handle();
                // SAFETY: `db` is the open connection, locked by `handle` for as long as
                // the statements live; sqlx's thread waits for the lock meanwhile.
                unsafe { write(db, &sorted, &fine, admission, !rest) }?
            };
            let (loops, unqueued) = if rest {
                let rest = finish(&mut conn, &sorted, &unqueued, counts).await;
                if rest.is_err() {
                    // The error is the one to report; a failed rollback leaves the
                    // connection in the transaction, and the next batch says so.
                    let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                }
                rest?
            } else {
                (Vec::new(), Unqueued::default())
            };
            (loops, unqueued, merge)
        };
        report_loops(batch, loops);
        let committed = Committed {
            stored: batch.len(),
            unqueued,
        };
        Ok((committed, merge))
    }
}

/// The rest of a batch's transaction that [`write()`] left open, through sqlx: URLs
/// recorded rather than queued (before any merge, so that a URL staged too stays the
/// failed row it becomes here), link counts, redirects. Returns the redirects found to
/// close a loop, and the rows recorded.
async fn finish(
    conn: &mut SqliteConnection,
    sorted: &Sorted<'_>,
    unqueued: &[&(&Discovered, Option<i64>)],
    counts: &mut LinkCounts,
) -> Result<(Vec<(i64, String)>, Unqueued), Error> {
    let recorded = Db::<Sqlite>::insert_unqueued(conn, unqueued).await?;
    counts.settle::<Sqlite>(conn).await?;
    let loops = Db::<Sqlite>::follow_redirect_chains(conn, &sorted.pages).await?;
    sqlx::query("COMMIT")
        .execute(conn)
        .await
        .doing("committing a page batch")?;
    Ok((loops, recorded))
}

/// Begins the batch's transaction and writes all but what [`finish`] does, and commits
/// it when `may_commit`. Returns whether the staged URLs are to be merged.
///
/// # Safety
///
/// `db` must be an open connection that no other thread uses until this returns.
unsafe fn write(
    db: NonNull<ffi::sqlite3>,
    sorted: &Sorted<'_>,
    fine: &[&(&Discovered, Option<i64>)],
    admission: Admission,
    may_commit: bool,
) -> Result<bool, Error> {
    // SAFETY: as this function's, for each call below.
    unsafe { exec(db, "BEGIN IMMEDIATE", "starting a page batch") }?;
    let written = unsafe { statements(db, sorted, fine, admission) }.and_then(|merge| {
        if may_commit {
            unsafe { exec(db, "COMMIT", "committing a page batch") }?;
        }
        Ok(merge)
    });
    if written.is_err() {
        // The error is the one to report (see `commit_local`).
        let _ = unsafe { exec(db, "ROLLBACK", "rolling back a page batch") };
    }
    written
}

/// # Safety
///
/// As for [`write()`].
unsafe fn statements(
    db: NonNull<ffi::sqlite3>,
    sorted: &Sorted<'_>,
    fine: &[&(&Discovered, Option<i64>)],
    Admission {
        queue_floor,
        revisits_from,
        ..
    }: Admission,
) -> Result<bool, Error> {
    let placeholders = |n: usize| {
        (1..=n)
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    // SAFETY: as this function's, for each call below.
    unsafe {
        for_each_row(
            db,
            &format!(
                "INSERT INTO pages ({PAGE_ROW}) VALUES ({}){PAGE_UPSERT}",
                placeholders(PAGE_COLUMNS)
            ),
            "storing a batch of pages",
            &sorted.pages,
            |insert, p| {
                let fetched_at = rfc3339(p.fetched_at);
                insert.bind_row(&page_row(p, &fetched_at))?;
                insert.run()
            },
        )?;
        for_each_row(
            db,
            &format!(
                "INSERT INTO frontier_staged ({FRONTIER_ROW}) VALUES ({})",
                placeholders(FRONTIER_COLUMNS)
            ),
            "staging discovered URLs",
            fine,
            |stage, &&(d, from)| {
                stage.bind_row(&frontier_row(d, from))?;
                stage.run()
            },
        )?;
        // In host order, as the nodes of a shared database add them.
        let hosts: BTreeSet<&str> = sorted
            .discovered
            .iter()
            .map(|(d, _)| d.host.as_str())
            .collect();
        for_each_row(
            db,
            "INSERT INTO hosts (host) VALUES (?1) ON CONFLICT (host) DO NOTHING",
            "storing hosts",
            &hosts,
            |insert, host| {
                insert.bind_text(1, Some(host))?;
                insert.run()
            },
        )?;
        for_each_row(
            db,
            &format!(
                "UPDATE pages SET fetched_at = ?1, elapsed_ms = ?2, {REVISIT_FAILURE_CLEARED},
                     etag = coalesce(?4, etag), last_modified = coalesce(?5, last_modified)
                 WHERE id = ?3"
            ),
            "recording unchanged pages",
            &sorted.unchanged,
            |update, p| {
                let fetched_at = rfc3339(p.fetched_at);
                update.bind_text(1, Some(&fetched_at))?;
                update.bind_i64(2, i64::try_from(p.elapsed_ms).unwrap_or(i64::MAX))?;
                update.bind_i64(3, p.job.id)?;
                update.bind_text(4, p.etag.as_deref())?;
                update.bind_text(5, p.last_modified.as_deref())?;
                update.run()
            },
        )?;
        for_each_row(
            db,
            &format!("UPDATE pages SET ({FAILED_REVISIT_ROW}) = (?1, ?2, ?3, ?4) WHERE id = ?5"),
            "recording failed revisits",
            &sorted.failed_revisits,
            |update, p| {
                let failed_at = rfc3339(p.fetched_at);
                update.bind_row(&failed_revisit_row(p, &failed_at))?;
                update.bind_i64(5, p.job.id)?;
                update.run()
            },
        )?;
        let now = unix_ms(SystemTime::now());
        let from = revisits_from.map_or(now, unix_ms);
        for_each_row(
            db,
            "UPDATE frontier SET state = ?1, attempts = attempts + 1, lease_owner = NULL,
                 lease_expires = NULL, recrawl_at = ?2, recrawl_interval_ms = ?3 WHERE id = ?4",
            "finishing frontier rows",
            &sorted.visited,
            |update, p| {
                let state = if p.is_failure() { "failed" } else { "done" };
                let interval = p
                    .recrawl_in
                    .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2));
                update.bind_text(1, Some(state))?;
                update.bind(2, &Value::Int(interval.map(|i| from.saturating_add(i))))?;
                update.bind(3, &Value::Int(interval))?;
                update.bind_i64(4, p.job.id)?;
                update.run()
            },
        )?;
        for_each_row(
            db,
            "UPDATE frontier SET state = 'queued', attempts = attempts + 1, lease_owner = NULL,
                 lease_expires = NULL, not_before = ?1 WHERE id = ?2",
            "putting retries back in the queue",
            &sorted.retries,
            |update, p| {
                update.bind_i64(1, retry::due_at(now, p.retry_in))?;
                update.bind_i64(2, p.job.id)?;
                update.run()
            },
        )?;
        // A kill would otherwise lose the host's pause, and the next run ask it at once.
        for_each_row(
            db,
            concat!(
                "INSERT INTO hosts (host, next_allowed_at) VALUES (?1, ?2)
                 ON CONFLICT (host) DO UPDATE SET ",
                later_turn!()
            ),
            "keeping a host's pause for the next run",
            sorted.host_pauses(now),
            |upsert, (host, until)| {
                upsert.bind_text(1, Some(host))?;
                upsert.bind_i64(2, until)?;
                upsert.run()
            },
        )?;
        for_each_row(
            db,
            "DELETE FROM links WHERE source_id = ?1",
            "replacing a revisited page's links",
            &sorted.revisited,
            |delete, &source| {
                delete.bind_i64(1, source)?;
                delete.run()
            },
        )?;
        let links = sorted
            .pages
            .iter()
            .flat_map(|p| p.links.iter().map(move |l| (p.job.id, l)));
        for_each_row(
            db,
            "INSERT INTO links (source_id, target_url, anchor_text, rel) VALUES (?1, ?2, ?3, ?4)",
            "storing a batch of links",
            links,
            |insert, (source, link)| {
                insert.bind_i64(1, source)?;
                insert.bind_text(2, Some(link.target.as_str()))?;
                insert.bind_text(3, Some(&link.anchor_text))?;
                insert.bind_text(4, link.rel.as_deref())?;
                insert.run()
            },
        )?;
        let mut ask = Statement::prepare(db, ASK_MERGE, "sizing the staged URLs")?;
        ask.bind_i64(1, now)?;
        ask.bind_i64(2, i64::try_from(queue_floor).unwrap_or(i64::MAX))?;
        let [staged, best, due, last] = ask.row()?;
        Ok(merge_due(
            Staged {
                count: staged.unwrap_or(0),
                best,
                due: due.unwrap_or(0),
                last,
            },
            queue_floor,
        ))
    }
}

/// Compiles `sql` if there are `rows`, and has `row` bind and run it for each.
///
/// # Safety
///
/// As for [`write()`].
unsafe fn for_each_row<T>(
    db: NonNull<ffi::sqlite3>,
    sql: &str,
    doing: &'static str,
    rows: impl IntoIterator<Item = T>,
    mut row: impl FnMut(&mut Statement, T) -> Result<(), Error>,
) -> Result<(), Error> {
    let mut rows = rows.into_iter().peekable();
    if rows.peek().is_none() {
        return Ok(());
    }
    // SAFETY: as this function's.
    let mut statement = unsafe { Statement::prepare(db, sql, doing) }?;
    rows.try_for_each(|r| row(&mut statement, r))
}

/// Runs a statement that binds nothing and returns no rows.
///
/// # Safety
///
/// As for [`write()`].
unsafe fn exec(db: NonNull<ffi::sqlite3>, sql: &str, doing: &'static str) -> Result<(), Error> {
    // SAFETY: as this function's.
    unsafe { Statement::prepare(db, sql, doing) }?.run()
}

/// What the staged URLs are beside the queue ([`ASK_MERGE`]).
struct Staged {
    count: i64,
    /// The best priority among them.
    best: Option<i64>,
    /// Queued URLs due now, counted up to the window's size.
    due: i64,
    /// The priority of the last URL of the next window leased.
    last: Option<i64>,
}

/// Whether the staged URLs are to be merged now: when one of them would be among the
/// next `queue_floor` (the window's size) leased, which is also whenever fewer URLs than
/// that are due in the queue, so that the crawl's order is what it would be without
/// staging. A staged URL of the same priority as the last of those would come after
/// them anyway: it gets a larger id.
fn merge_due(staged: Staged, queue_floor: usize) -> bool {
    if staged.count == 0 {
        return false;
    }
    let outranks = match (staged.best, staged.last) {
        (Some(best), Some(last)) => best > last,
        _ => true,
    };
    staged.due < i64::try_from(queue_floor).unwrap_or(i64::MAX) || outranks
}

/// A prepared statement, finalized when dropped. Text is bound without a copy, so each
/// [`Statement::run`] must follow its binds while the bound strings still live:
/// [`for_each_row`]'s callers bind and run a row at a time.
struct Statement {
    db: NonNull<ffi::sqlite3>,
    stmt: NonNull<ffi::sqlite3_stmt>,
    /// What the statement is for, for its errors.
    doing: &'static str,
}

impl Statement {
    /// # Safety
    ///
    /// As for [`write()`], for as long as the statement lives.
    unsafe fn prepare(
        db: NonNull<ffi::sqlite3>,
        sql: &str,
        doing: &'static str,
    ) -> Result<Self, Error> {
        let mut stmt = ptr::null_mut();
        let len =
            c_int::try_from(sql.len()).map_err(|_| sqlite_error(db, ffi::SQLITE_TOOBIG, doing))?;
        // SAFETY: `sql` is valid for `len` bytes; the out-pointer is a local.
        let rc = unsafe {
            ffi::sqlite3_prepare_v2(
                db.as_ptr(),
                sql.as_ptr().cast::<c_char>(),
                len,
                &mut stmt,
                ptr::null_mut(),
            )
        };
        match NonNull::new(stmt) {
            Some(stmt) if rc == ffi::SQLITE_OK => Ok(Self { db, stmt, doing }),
            _ => Err(sqlite_error(db, rc, doing)),
        }
    }

    /// Binds `values` to the parameters `?1`, `?2` … by reference (see [`Statement::bind`]).
    fn bind_row(&mut self, values: &[Value<'_>]) -> Result<(), Error> {
        values
            .iter()
            .zip(1..)
            .try_for_each(|(value, index)| self.bind(index, value))
    }

    /// Binds `value`, NULL for `None`; text by reference: it must live until the next
    /// `run`.
    fn bind(&mut self, index: c_int, value: &Value<'_>) -> Result<(), Error> {
        match *value {
            Value::Int(Some(n)) => self.bind_i64(index, n),
            Value::Text(text) => self.bind_text(index, text),
            // NULL is NULL whatever the column's type.
            Value::Int(None) => self.bind_text(index, None),
        }
    }

    fn bind_i64(&mut self, index: c_int, value: i64) -> Result<(), Error> {
        // SAFETY: `stmt` is a live statement of this connection.
        let rc = unsafe { ffi::sqlite3_bind_int64(self.stmt.as_ptr(), index, value) };
        self.check(rc)
    }

    /// Binds `value` (NULL for `None`) by reference: it must live until the next `run`.
    fn bind_text(&mut self, index: c_int, value: Option<&str>) -> Result<(), Error> {
        let stmt = self.stmt.as_ptr();
        // SAFETY: `stmt` is live; with SQLITE_STATIC SQLite reads the bytes in place,
        // which the caller keeps alive until the row is run and the statement reset.
        let rc = unsafe {
            match value {
                Some(text) => ffi::sqlite3_bind_text64(
                    stmt,
                    index,
                    text.as_ptr().cast::<c_char>(),
                    text.len() as u64,
                    ffi::SQLITE_STATIC(),
                    ffi::SQLITE_UTF8 as u8,
                ),
                None => ffi::sqlite3_bind_null(stmt, index),
            }
        };
        self.check(rc)
    }

    /// Runs the statement to its end and resets it for the next binds.
    fn run(&mut self) -> Result<(), Error> {
        // SAFETY: `stmt` is live and every parameter of it is bound.
        let rc = unsafe { ffi::sqlite3_step(self.stmt.as_ptr()) };
        self.reset();
        if rc == ffi::SQLITE_DONE {
            Ok(())
        } else {
            Err(sqlite_error(self.db, rc, self.doing))
        }
    }

    /// Runs a query of one row of integers (NULL as `None`) and resets it.
    fn row<const N: usize>(&mut self) -> Result<[Option<i64>; N], Error> {
        // SAFETY: `stmt` is live and every parameter of it is bound.
        let rc = unsafe { ffi::sqlite3_step(self.stmt.as_ptr()) };
        if rc != ffi::SQLITE_ROW {
            self.reset();
            return Err(sqlite_error(self.db, rc, self.doing));
        }
        let row = std::array::from_fn(|column| {
            let column = c_int::try_from(column).unwrap_or(c_int::MAX);
            // SAFETY: the statement is on a row; a column past its last reads as NULL.
            unsafe {
                let stmt = self.stmt.as_ptr();
                (ffi::sqlite3_column_type(stmt, column) != ffi::SQLITE_NULL)
                    .then(|| ffi::sqlite3_column_int64(stmt, column))
            }
        });
        self.reset();
        Ok(row)
    }

    fn reset(&mut self) {
        // SAFETY: `stmt` is live; resetting keeps the bindings, which the next row
        // replaces.
        unsafe { ffi::sqlite3_reset(self.stmt.as_ptr()) };
    }

    fn check(&self, rc: c_int) -> Result<(), Error> {
        if rc == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(sqlite_error(self.db, rc, self.doing))
        }
    }
}

impl Drop for Statement {
    fn drop(&mut self) {
        // SAFETY: `stmt` is live and finalized only here.
        unsafe { ffi::sqlite3_finalize(self.stmt.as_ptr()) };
    }
}

/// The connection's message for its last error, or the code's own when the connection
/// has none (a failure found before calling SQLite).
fn sqlite_error(db: NonNull<ffi::sqlite3>, rc: c_int, doing: &'static str) -> Error {
    // SAFETY: `db` is open; SQLite returns NUL-terminated strings that live until the
    // next call on the connection, and they are copied before it.
    let message = unsafe {
        let text = if ffi::sqlite3_errcode(db.as_ptr()) == ffi::SQLITE_OK {
            ffi::sqlite3_errstr(rc)
        } else {
            ffi::sqlite3_errmsg(db.as_ptr())
        };
        CStr::from_ptr(text).to_string_lossy().into_owned()
    };
    Error::Sqlite {
        doing,
        code: rc,
        message,
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use url::Url;

    use super::*;
    use crate::page::{CrawlJob, JobKind, Link};
    use crate::store::{LeaseRows, QueueCounts, Store};

    const ADMISSION: Admission = Admission {
        max_pages_per_host: 0,
        queue_floor: 10,
        revisits_from: None,
    };

    /// A scope for the store's commits, which SQLite's does not ask.
    fn scope() -> crate::scope::Scope {
        let config = crate::Config::from_toml("seeds = [\"http://h/\"]", "test config").unwrap();
        crate::scope::Scope::new(&config, &[])
    }

    fn discovered(url: &str, trap: Option<&str>) -> Discovered {
        Discovered {
            url: Url::parse(url).unwrap(),
            host: "h".into(),
            depth: 1,
            priority: 0,
            redirect_hops: 0,
            kind: JobKind::Page,
            trap: trap.map(str::to_owned),
            disallowed: false,
        }
    }

    fn page(
        job: CrawlJob,
        links: &[(&str, &str, Option<&str>)],
        found: &[Discovered],
    ) -> PageRecord {
        PageRecord {
            job,
            status: Some(200),
            content_type: Some("text/html".into()),
            title: Some("T".into()),
            location: None,
            changed_location_cookies: false,
            bytes: Some(10),
            truncated: false,
            content_hash: None,
            etag: None,
            last_modified: None,
            fetched_at: SystemTime::now(),
            elapsed_ms: 5,
            error: None,
            canonical: None,
            noindex: false,
            nofollow: false,
            links: links
                .iter()
                .map(|(target, text, rel)| Link {
                    target: Url::parse(target).unwrap(),
                    anchor_text: (*text).to_owned(),
                    rel: rel.map(str::to_owned),
                    refresh: *rel == Some("refresh"),
                })
                .collect(),
            refreshed_to: None,
            links_left_out: Some(0),
            sitemap_urls: None,
            discovered: found.to_vec(),
            retry_in: None,
            host_pause: None,
            not_modified: false,
            changed: true,
            recrawl_in: None,
            failed_revisit: false,
        }
    }

    /// A fresh store and its one seed, leased.
    async fn open() -> (tempfile::TempDir, Store, Db<Sqlite>, CrawlJob) {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("crawl.db");
        let store = Store::open(path.to_str().unwrap()).await.unwrap();
        let db = match &store.0 {
            super::super::Backed::Sqlite(db) => db.clone(),
            super::super::Backed::Postgres(_) => unreachable!("a file is SQLite"),
        };
        store
            .enqueue(&[discovered("http://h/", None)])
            .await
            .unwrap();
        let mut jobs = store
            .lease("me", 10, Duration::from_secs(60), (None, LeaseRows::Any))
            .await
            .unwrap()
            .jobs;
        let seed = jobs.pop().expect("the seed, leased");
        (dir, store, db, seed)
    }

    async fn rows(db: &Db<Sqlite>, sql: &str) -> Vec<(String, String)> {
        sqlx::query_as(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_all(&db.pool)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_batch_stores_pages_links_and_found_urls_in_one_transaction() {
        let (_dir, store, db, seed) = open().await;
        let found = [
            discovered("http://h/a", None),
            discovered("http://h/b", None),
            discovered("http://h/trap/trap/trap", Some("a repeating path")),
        ];
        let mut batch = vec![page(
            seed.clone(),
            &[
                ("http://h/a", "A", None),
                ("http://h/b", "B b", Some("nofollow")),
            ],
            &found,
        )];
        let mut counts = LinkCounts::new();
        store
            .commit(&mut batch, &mut counts, ADMISSION, ("me", &scope()))
            .await
            .unwrap();

        assert_eq!(
            rows(&db, "SELECT url, title FROM pages WHERE error_kind IS NULL").await,
            [("http://h/".into(), "T".into())]
        );
        assert_eq!(
            rows(
                &db,
                "SELECT target_url, anchor_text || '|' || coalesce(rel, '') FROM links ORDER BY id"
            )
            .await,
            [
                ("http://h/a".into(), "A|".into()),
                ("http://h/b".into(), "B b|nofollow".into()),
            ]
        );
        // The queue was empty: the found URLs were merged at once, the trap as a failed
        // row with a page that says why.
        assert_eq!(
            rows(&db, "SELECT url, state FROM frontier ORDER BY url").await,
            [
                ("http://h/".into(), "done".into()),
                ("http://h/a".into(), "queued".into()),
                ("http://h/b".into(), "queued".into()),
                ("http://h/trap/trap/trap".into(), "failed".into()),
            ]
        );
        assert_eq!(
            rows(
                &db,
                "SELECT url, error FROM pages WHERE error_kind = 'trap'"
            )
            .await,
            [("http://h/trap/trap/trap".into(), "a repeating path".into())]
        );
        assert_eq!(
            rows(
                &db,
                "SELECT 'staged', CAST(count(*) AS TEXT) FROM frontier_staged"
            )
            .await,
            [("staged".into(), "0".into())]
        );
        store.close().await.expect("close the store");
    }

    #[tokio::test]
    async fn a_release_after_the_page_was_stored_leaves_it_done() {
        let (_dir, store, db, seed) = open().await;
        store
            .enqueue(&[discovered("http://h/next", None)])
            .await
            .unwrap();
        let mut leased = store
            .lease("me", 10, Duration::from_secs(60), (None, LeaseRows::Any))
            .await
            .unwrap()
            .jobs;
        let next = leased.pop().expect("the second URL, leased");
        let mut batch = vec![page(seed.clone(), &[], &[])];
        store
            .commit(
                &mut batch,
                &mut LinkCounts::new(),
                ADMISSION,
                ("me", &scope()),
            )
            .await
            .unwrap();
        // A stop cut both fetches off, but the seed's page had reached the writer.
        store.release("me", &[seed.id, next.id]).await.unwrap();
        assert_eq!(
            rows(&db, "SELECT url, state FROM frontier ORDER BY url").await,
            [
                ("http://h/".into(), "done".into()),
                ("http://h/next".into(), "queued".into()),
            ]
        );
        store.close().await.expect("close the store");
    }

    /// A node that wakes from a stall gives back the rows of the hosts it lost; those
    /// another node leased meanwhile (on a shared database) stay that node's.
    #[tokio::test]
    async fn a_release_leaves_another_owners_lease_alone() {
        let (_dir, store, db, seed) = open().await;
        store
            .enqueue(&[discovered("http://h/next", None)])
            .await
            .unwrap();
        let next = store
            .lease("other", 10, Duration::from_secs(60), (None, LeaseRows::Any))
            .await
            .unwrap()
            .jobs
            .pop()
            .expect("the second URL, leased by another owner");
        store.release("me", &[seed.id, next.id]).await.unwrap();
        assert_eq!(
            rows(
                &db,
                "SELECT url, state || ' ' || coalesce(lease_owner, '-') FROM frontier ORDER BY url"
            )
            .await,
            [
                ("http://h/".into(), "queued -".into()),
                ("http://h/next".into(), "leased other".into()),
            ]
        );
        store.close().await.expect("close the store");
    }

    #[tokio::test]
    async fn a_retried_page_still_brings_what_it_found() {
        let (_dir, store, db, seed) = open().await;
        let mut sitemap = discovered("http://h/sitemap.xml", None);
        sitemap.kind = JobKind::Sitemap;
        let mut retried = page(seed, &[], &[sitemap]);
        retried.retry_in = Some(Duration::from_secs(30));
        store
            .commit(
                &mut [retried],
                &mut LinkCounts::new(),
                ADMISSION,
                ("me", &scope()),
            )
            .await
            .unwrap();
        assert_eq!(
            rows(
                &db,
                "SELECT url, state || ' ' || kind FROM frontier ORDER BY url"
            )
            .await,
            [
                ("http://h/".into(), "queued page".into()),
                ("http://h/sitemap.xml".into(), "queued sitemap".into()),
            ]
        );
        store.close().await.expect("close the store");
    }

    #[tokio::test]
    async fn found_urls_wait_staged_while_the_queue_is_long_and_join_it_when_merged() {
        let (_dir, store, _db, seed) = open().await;
        let queued: Vec<Discovered> = (0..3)
            .map(|i| discovered(&format!("http://h/q{i}"), None))
            .collect();
        store.enqueue(&queued).await.unwrap();
        let found = [
            discovered("http://h/a", None),
            discovered("http://h/b", None),
        ];
        let mut batch = vec![page(seed, &[], &found)];
        let long_queue = Admission {
            max_pages_per_host: 0,
            queue_floor: 2,
            revisits_from: None,
        };
        store
            .commit(
                &mut batch,
                &mut LinkCounts::new(),
                long_queue,
                ("me", &scope()),
            )
            .await
            .unwrap();
        let counts = |queued, staged| QueueCounts {
            queued,
            staged,
            leased: 0,
        };
        assert_eq!(store.queue_counts("me").await.unwrap(), counts(3, 2));

        store.merge_staged(0).await.unwrap();
        assert_eq!(store.queue_counts("me").await.unwrap(), counts(5, 0));
        store.close().await.expect("close the store");
    }

    /// A record refused even as a failed fetch (here a page with no frontier row) stops
    /// the crawl with the error; the rest of its batch is stored.
    #[tokio::test]
    async fn a_record_refused_even_as_a_failed_fetch_stops_and_the_rest_is_stored() {
        let (_dir, store, db, seed) = open().await;
        let mut orphan = seed.clone();
        orphan.id = 99;
        orphan.url = Url::parse("http://h/nowhere").unwrap();
        let mut batch = vec![
            page(seed.clone(), &[("http://h/a", "A", None)], &[]),
            page(orphan, &[], &[]),
        ];
        let mut counts = LinkCounts::new();
        match store
            .commit(&mut batch, &mut counts, ADMISSION, ("me", &scope()))
            .await
        {
            Err(Error::Sqlite { message, .. }) => {
                assert!(message.contains("FOREIGN KEY"), "{message}")
            }
            other => panic!("expected SQLite's refusal, got {other:?}"),
        }
        assert_eq!(
            rows(&db, "SELECT url, title FROM pages").await,
            [("http://h/".into(), "T".into())]
        );
        assert_eq!(
            rows(&db, "SELECT target_url, anchor_text FROM links").await,
            [("http://h/a".into(), "A".into())]
        );
        store.close().await.expect("close the store");
    }

    /// A page the database refuses is left out of its batch as a failed fetch that says
    /// so, and the link counts the writer keeps are those of the links stored.
    #[tokio::test]
    async fn a_refused_page_is_a_failed_fetch_and_the_link_counts_stay_exact() {
        let (_dir, store, db, seed) = open().await;
        store
            .enqueue(&[discovered("http://h/poison", None)])
            .await
            .unwrap();
        let mut jobs = store
            .lease("me", 10, Duration::from_secs(60), (None, LeaseRows::Any))
            .await
            .unwrap()
            .jobs;
        let poison = jobs.pop().expect("the poisoned URL, leased");
        sqlx::raw_sql(
            "CREATE TRIGGER refuse BEFORE INSERT ON pages
                 WHEN NEW.url LIKE '%/poison' AND NEW.error_kind IS NULL
             BEGIN SELECT RAISE(ABORT, 'poison refused'); END",
        )
        .execute(&db.pool)
        .await
        .unwrap();
        let mut batch = vec![
            page(
                seed.clone(),
                &[("http://h/a", "A", None), ("http://h/poison", "P", None)],
                &[],
            ),
            page(poison, &[("http://h/a", "also A", None)], &[]),
        ];
        let mut counts = LinkCounts::new();
        let committed = store
            .commit(&mut batch, &mut counts, ADMISSION, ("me", &scope()))
            .await
            .expect("the batch is stored without the page");
        assert_eq!(committed.stored, 2);
        assert_eq!(
            rows(
                &db,
                "SELECT url, coalesce(error_kind, title) || ': ' || coalesce(error, '')
                 FROM pages ORDER BY url"
            )
            .await,
            [
                ("http://h/".into(), "T: ".into()),
                (
                    "http://h/poison".into(),
                    "database_refused: database error while storing a batch of pages: \
                     poison refused (SQLite code 1811)"
                        .into()
                ),
            ]
        );
        store.flush_link_counts(&mut counts).await.unwrap();
        assert_eq!(
            rows(
                &db,
                "SELECT url, linking_pages || ' ' || links FROM inlinks ORDER BY url"
            )
            .await,
            [
                ("http://h/a".into(), "1 1".into()),
                ("http://h/poison".into(), "1 1".into()),
            ]
        );
        store.close().await.expect("close the store");
    }

    /// A writer committing without a pause keeps the WAL within a quarter of the room
    /// left on its disk: the checkpoints beside it seldom find it copied to its end, the
    /// only point from which it starts over, and it grew towards the writer's own
    /// checkpoint at some 400 MB, filling a disk with less room for good (copying it
    /// into the database needs the database file to grow).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batches_without_a_pause_keep_the_wal_within_the_room_left() {
        use std::sync::atomic::{AtomicU64, Ordering};
        use std::sync::Arc;
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("crawl.db");
        let store = Store::open(path.to_str().unwrap())
            .await
            .unwrap()
            .with_room(|_| Some(32 << 20));
        let urls: Vec<Discovered> = (0..4_000)
            .map(|i| discovered(&format!("http://h/{i}"), None))
            .collect();
        store.enqueue(&urls).await.unwrap();
        let wal = dir.path().join("crawl.db-wal");
        let largest = Arc::new(AtomicU64::new(0));
        let sampling = tokio::spawn({
            let largest = Arc::clone(&largest);
            async move {
                loop {
                    let size = std::fs::metadata(&wal).map_or(0, |m| m.len());
                    largest.fetch_max(size, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        });
        let (mut counts, mut n) = (LinkCounts::new(), 0);
        // 200 batches of 20 pages, each with 40 links and 10 URLs found: some 40 MB of
        // WAL were it never to start over.
        for _ in 0..200 {
            let jobs = store
                .lease("me", 20, Duration::from_secs(60), (None, LeaseRows::Any))
                .await
                .unwrap()
                .jobs;
            let mut batch: Vec<PageRecord> = jobs
                .into_iter()
                .map(|job| {
                    n += 1;
                    let found: Vec<Discovered> = (0..10)
                        .map(|i| discovered(&format!("http://h/{n}/{i}"), None))
                        .collect();
                    let targets: Vec<String> =
                        (0..40).map(|i| format!("http://h/{n}/{i}")).collect();
                    let links: Vec<(&str, &str, Option<&str>)> = targets
                        .iter()
                        .map(|target| (target.as_str(), "a link", None))
                        .collect();
                    page(job, &links, &found)
                })
                .collect();
            store
                .commit(&mut batch, &mut counts, ADMISSION, ("me", &scope()))
                .await
                .unwrap();
        }
        sampling.abort();
        store.close().await.unwrap();
        let largest = largest.load(Ordering::Relaxed);
        assert!(
            largest < 16 << 20,
            "the WAL grew to {largest} bytes, half the 32 MiB of room"
        );
    }
}
