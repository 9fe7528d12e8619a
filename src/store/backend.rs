//! What differs between the two databases, in one place.
//!
//! The store's SQL is written once, with `$1`-style parameters (PostgreSQL's, which
//! SQLite reads too) and `IS NOT DISTINCT FROM` (both have it), and run through generic
//! code over `sqlx`'s [`Database`]. sqlx's `Any` driver would spare the generics, but its
//! `QueryBuilder` writes `?` placeholders, which PostgreSQL rejects. What cannot be
//! written once is here: the migrations, and how a lease picks its rows.

use sqlx::migrate::Migrator;
use sqlx::{Database, Postgres, Sqlite};

use super::cluster::server_ms;
use super::db::LeaseRows;

static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");

/// Helper threads SQLite's sorter may use for the deferred index builds, whatever the
/// cores: each adds a page cache's worth of memory.
const MAX_SORT_HELPERS: usize = 3;

/// An index a one-off crawl may drop at its start and build at its end.
pub struct DeferredIndex {
    pub name: &'static str,
    /// The table and columns, as `CREATE INDEX … ON` takes them.
    pub on: &'static str,
    /// Replacing a revisited page's links finds the old ones by it: a crawl with revisits
    /// queued keeps it, or each revisit would read every link.
    pub finds_old_links: bool,
}

pub trait Backend: Database {
    /// Whether several nodes may share the database. SQLite is one process's file: every
    /// lease in it is that process's. On PostgreSQL nodes lease hosts and rows, and a
    /// lease only expires.
    const SHARED: bool;

    /// The conflict target that keeps `anchors` one row per (target, anchor text).
    /// PostgreSQL's index holds a hash of the text: a B-tree entry has a size limit that
    /// anchor texts do not.
    const ANCHORS_KEY: &'static str;

    /// Indexes a one-off `crawl` builds once at its end rather than entry by entry.
    /// SQLite's `links_target` orders links by target URL, so a batch's links land all
    /// over it; on the benchmark site keeping it current doubled the writer's time (every
    /// batch rewrote most of its pages into the WAL), while building it afterwards sorts a
    /// million links in about two seconds. `links_source` takes each link in order, yet
    /// keeping it cost the benchmark's throughput crawl 7% of its wall time (three
    /// interleaved pairs; the threads where the writer steps the link inserts did 0.9 of
    /// their 4.0 CPU s less without it), and its build is a sort of integers already
    /// nearly in order. PostgreSQL's nodes share one database and keep
    /// their indexes.
    const DEFERRED_INDEXES: &'static [DeferredIndex];

    /// Settings around a sort of millions of rows, and back: the deferred indexes' and
    /// counts' builds, and a merge of the staged URLs. SQLite keeps temporary data in
    /// memory while crawling (statement journals, one statement's worth), but sorts an
    /// index's million keys on disk (its sorter spills once it holds as much as the page
    /// cache), or the sort would add a third to the process's memory at the crawl's end
    /// (a merge of 1.15 M staged URLs: 17 MB more).
    ///
    /// The build comes after the last page, when the fetch and parse threads are idle, so
    /// SQLite's sorter may sort with helper threads on the other cores (at most
    /// [`MAX_SORT_HELPERS`], each holding up to a page cache's worth of keys). On two
    /// cores one helper took the benchmark's throughput crawl's end from 2.83 to 2.50 s
    /// (the crawl's own "indexed and counted" figure, means of six interleaved pairs,
    /// every pair faster; wall 10.54 → 10.16 s) at the same peak RSS. A page cache four
    /// times larger for the sort was slower (3.2 s) and added 17 MB.
    fn around_bulk_sort() -> (String, String);

    fn migrator() -> &'static Migrator;

    /// Earlier texts of migrations, as (version, SHA-384 in hex), that differ from
    /// today's file in their comments only: a database migrated by a build that had one
    /// is up to date (see `migrate::migrate`). A migration's statements never
    /// change once released; its comments must not either, or this list grows.
    const RECOMMENTED: &'static [(i64, &'static str)];

    /// Rows a statement changed (each driver has its own result type).
    fn rows_affected(result: &Self::QueryResult) -> u64;

    /// Leases up to `$4` queued rows due by `$3` for node `$1` for `$2` ms, best first,
    /// returning what a job needs. On a shared database only rows of hosts the node owns
    /// (and is not handing back) are taken, rows another node's transaction holds are
    /// skipped rather than waited for, and the lease runs out in the server's time, as
    /// the others judge it (see [`crate::store::cluster`]), as rows fall due in it (a
    /// retry's due time is written in it: `$3` goes unread); on SQLite the node's clock is
    /// the database's. PostgreSQL reads the rows in the lease's order
    /// from `frontier_by_priority` and stops at `$4` (see its migration).
    ///
    /// PostgreSQL takes the rows picked as an array, so that they are found by their
    /// ids whatever the plan: as `id IN (…)`, the plan it makes once for every lease
    /// (a prepared statement's generic plan, used from about the sixth lease on a
    /// connection) knows no `$4` and joined the picked rows to the whole frontier, read
    /// through to find them (a million queued URLs: 0.2 s more a lease).
    ///
    /// On PostgreSQL every lease, whatever its node's `scope.max_pages`, adds the rows it
    /// took to `page_limit.bound` (see its migration), in the same transaction: a lease
    /// that left it out would let the nodes counting against a limit skip a count they
    /// need. With nothing taken the row is not written.
    fn lease_sql(rows: LeaseRows) -> String {
        let (of_owned_hosts, lock, (picked, picked_end), clock) = if Self::SHARED {
            (
                " AND host IN (SELECT host FROM hosts WHERE owner = $1 AND releasing = 0)",
                " FOR UPDATE SKIP LOCKED",
                ("= ANY (ARRAY(", "))"),
                server_ms!(),
            )
        } else {
            ("", "", ("IN (", ")"), "$3")
        };
        let (revisits, order) = (rows.condition(), rows.order());
        let lease = format!(
            "UPDATE frontier SET state = 'leased', lease_owner = $1, lease_expires = {clock} + $2
             WHERE id {picked}SELECT id FROM frontier
                          WHERE state = 'queued' AND not_before <= {clock}{revisits}{of_owned_hosts}
                          ORDER BY {order} LIMIT $4{lock}{picked_end}
             RETURNING id, url, host, depth, priority, redirect_hops, attempts, kind,
                       recrawl_interval_ms, recrawl_at"
        );
        if !Self::SHARED {
            return lease;
        }
        format!(
            "WITH taken AS ({lease}),
                  bounded AS (UPDATE page_limit SET bound = bound + (SELECT count(*) FROM taken)
                              WHERE EXISTS (SELECT 1 FROM taken))
             SELECT * FROM taken"
        )
    }
}

impl Backend for Sqlite {
    const SHARED: bool = false;
    const ANCHORS_KEY: &'static str = "(target_url, anchor_text)";
    const DEFERRED_INDEXES: &'static [DeferredIndex] = &[
        DeferredIndex {
            name: "links_target",
            on: "links (target_url, anchor_text, source_id, rel)",
            finds_old_links: false,
        },
        DeferredIndex {
            name: "links_source",
            on: "links (source_id)",
            finds_old_links: true,
        },
    ];
    /// 0009_crawl_state.sql as of 60a83a8 and of 0a442aa (2026-12-03).
    const RECOMMENTED: &'static [(i64, &'static str)] = &[
        (9, "839b246cd36b3778e15e7df090e316ea750227fe06c51029f56436a66e011cd68f871dec354845a4f96e4cf025792c21"),
        (9, "53595b0214042a5c35c9565d1a390654d4b1b5dbededfa7726e72ef8b5e3b5a060dc97171ae0c9fa94faaa9bf94592b8"),
    ];
    fn around_bulk_sort() -> (String, String) {
        let helpers = std::thread::available_parallelism()
            .map_or(0, |cores| cores.get() - 1)
            .min(MAX_SORT_HELPERS);
        (
            format!("PRAGMA temp_store = FILE; PRAGMA threads = {helpers}"),
            "PRAGMA temp_store = MEMORY; PRAGMA threads = 0".to_owned(),
        )
    }

    fn migrator() -> &'static Migrator {
        &SQLITE
    }

    fn rows_affected(result: &Self::QueryResult) -> u64 {
        result.rows_affected()
    }
}

impl Backend for Postgres {
    const SHARED: bool = true;
    const ANCHORS_KEY: &'static str = "(target_url, md5(anchor_text))";
    const DEFERRED_INDEXES: &'static [DeferredIndex] = &[];
    /// 0004_crawl_state.sql as of 60a83a8 and of 0a442aa (2026-12-03).
    const RECOMMENTED: &'static [(i64, &'static str)] = &[
        (4, "3bfd6ee05abf39d95e3b66c185ba2a166dae05d2029c957477fffa7a8c20b4ef632f134b29ef7ff6b5a20a96c7a967ca"),
        (4, "f1d1c59cb91a717b37e3e3d4c877dbb6d2c73f759732d674308d5d55fbeef4abce0b728d2b4782319321cbb682ea02fe"),
    ];
    fn around_bulk_sort() -> (String, String) {
        (String::new(), String::new())
    }

    fn migrator() -> &'static Migrator {
        &POSTGRES
    }

    fn rows_affected(result: &Self::QueryResult) -> u64 {
        result.rows_affected()
    }
}
