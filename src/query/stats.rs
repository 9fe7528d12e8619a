//! `query stats`: the crawl in numbers.
//!
//! One row per number, as (`section`, `key`, `value`), so that every output format can
//! hold every section: totals (the frontier's URLs in each state among them); when the
//! URLs waiting are due ([`DUE`]); pages by status, status class, host (the hosts the crawl
//! tried, see [`NOT_TRAP`]), content type and depth; errors by kind; trap rows by the
//! rule that cut them; and pages fetched per time bucket (the fetch rate over time).

use std::io::Write;

use super::dialect::Dialect;
use super::output::Format;
use super::reader::{Reader, Statement};
use super::{Answer, QueryError};
use crate::store::REQUESTED_PAGES;

#[derive(Debug, Clone, clap::Args)]
pub struct StatsArgs {
    /// Hosts listed, most pages first, the rest counted in one line; 0 for all.
    #[arg(long, default_value_t = 0, value_parser = super::rows, allow_negative_numbers = true)]
    pub hosts: u64,
}

/// Bucket widths for the fetch rate, in seconds, with their names; the narrowest that
/// gives at most [`MAX_BUCKETS`] buckets is used.
const BUCKETS: [(i64, &str); 9] = [
    (1, "second"),
    (10, "10 seconds"),
    (60, "minute"),
    (600, "10 minutes"),
    (3600, "hour"),
    (6 * 3600, "6 hours"),
    (86400, "day"),
    (7 * 86400, "week"),
    (30 * 86400, "30 days"),
];
const MAX_BUCKETS: i64 = 60;

/// How soon the URLs waiting are due, in milliseconds from now, with their names: a
/// queued URL's `not_before` (0, or a retry's backoff) and a stored page's `recrawl_at`
/// (its revisit), what a StormCrawler status index's `nextFetchDate` says of each URL.
/// Past the last, `later`.
const DUE: [(i64, &str); 4] = [
    (0, "now"),
    (3_600_000, "within an hour"),
    (86_400_000, "within a day"),
    (7 * 86_400_000, "within a week"),
];

/// Pages that are not `trap` rows: a host whose pages are all trap rows (a name cut at
/// `traps.max_hosts_per_domain`) was never asked anything, and counting it among the
/// hosts made a farm of names cut to a few look crawled in full. (A host whose URLs
/// robots.txt refused was asked for its robots.txt.)
const NOT_TRAP: &str = "coalesce(error_kind, '') <> 'trap'";

/// The pages of `hosts.host` on `scheme`, as a `FROM … WHERE` to go on from: a host's URLs
/// are adjacent in the `url` index.
fn host_pages(scheme: &str) -> String {
    format!(
        "FROM pages \
         WHERE url >= '{scheme}://' || host || '/' AND url < '{scheme}://' || host || '0'"
    )
}

/// Every section counts from an index or a small grouped table, not by sorting every page
/// once more: hosts by URL range (a host's URLs are adjacent in the `url` index), time
/// buckets by `fetched_at` range (each row of it read for its `error_kind`, as the rates
/// count the pages fetched: some 20 ms more on 100,000 pages).
///
/// While a crawl runs, the URLs it found wait in the frontier queued or staged (see
/// [`Dialect::staged_urls`]): both are counted as queued. Leased URLs are being fetched
/// (or were, by a crawl that was killed, until the next run queues them again), and are
/// due at no time: they wait for nothing.
fn sections(d: Dialect, inlinks: &str, hosts: u64) -> String {
    // A broad crawl's thousands of hosts, listed by `--hosts`, the rest in one line.
    let by_host = match hosts {
        0 => "SELECT 3, -n, 'host', host, n FROM by_host".to_owned(),
        listed => format!(
            "SELECT 3, -n, 'host', host, n FROM ranked WHERE r <= {listed}
             UNION ALL SELECT 3, 1, 'host',
                       CASE WHEN count(*) = 1 THEN '(1 other host)'
                            ELSE '(' || CAST(count(*) AS TEXT) || ' other hosts)' END,
                       sum(n)
                  FROM ranked WHERE r > {listed} HAVING count(*) > 0"
        ),
    };
    format!(
        "
    WITH by_status AS MATERIALIZED (
        SELECT status, error_kind, count(*) AS n FROM pages GROUP BY status, error_kind
    ), stored AS (
        SELECT coalesce(sum(n), 0) AS pages FROM by_status
    ), fetched AS (
        SELECT (SELECT coalesce(sum(n), 0) FROM by_status WHERE {REQUESTED_PAGES}) AS pages,
               (SELECT {first} FROM pages WHERE {REQUESTED_PAGES}) AS first,
               (SELECT {last} FROM pages WHERE {REQUESTED_PAGES}) AS last
    ), targets AS (
        SELECT coalesce(sum(links), 0) AS links, count(*) AS urls FROM {inlinks} AS counted
    ), by_host AS MATERIALIZED (
        SELECT host, n FROM (
            SELECT host,
                   (SELECT count(*) {http}) + (SELECT count(*) {https}) AS n,
                   EXISTS (SELECT 1 {http} AND {NOT_TRAP})
                   OR EXISTS (SELECT 1 {https} AND {NOT_TRAP}) AS tried
            FROM hosts) AS counted
        WHERE tried
    ), finished AS (
        SELECT count(*) FILTER (WHERE state = 'done') AS done,
               count(*) FILTER (WHERE state = 'failed') AS failed
        FROM frontier
    ), upto AS (
        SELECT column1 AS b, column3 AS name,
               (SELECT count(*) FROM frontier
                WHERE state = 'queued' AND not_before <= now + column2)
               + (SELECT count(*) FROM frontier WHERE state IN ('done', 'failed')
                  AND recrawl_at IS NOT NULL AND recrawl_at <= now + column2) AS n
        FROM (SELECT {now} AS now) AS clock, (VALUES {due_bounds}) AS bounds
        UNION ALL
        SELECT {later}, 'later', (SELECT count(*) FROM frontier WHERE state = 'queued')
               + (SELECT count(*) FROM frontier WHERE state IN ('done', 'failed')
                  AND recrawl_at IS NOT NULL)
    ), due AS (
        SELECT b, name, n - coalesce(lag(n) OVER (ORDER BY b), 0)
                  + CASE WHEN b = 0 THEN {staged} ELSE 0 END AS n
        FROM upto
    ), ranked AS (
        SELECT host, n, row_number() OVER (ORDER BY n DESC, host) AS r FROM by_host
    )
    SELECT section, key, value FROM (
        SELECT 0 AS s, 0 AS k, 'total' AS section, 'pages' AS key, pages AS value FROM stored
        UNION ALL SELECT 0, 1, 'total', 'links', links FROM targets
        UNION ALL SELECT 0, 2, 'total', 'linked URLs', urls FROM targets
        UNION ALL SELECT 0, 3, 'total', 'hosts', count(*) FROM by_host
        UNION ALL SELECT 0, 4, 'total', 'bytes', {bytes}
        UNION ALL SELECT 0, 5, 'total', 'URLs queued', count(*) + {staged} FROM frontier
                  WHERE state = 'queued'
        UNION ALL SELECT 0, 6, 'total', 'URLs leased', count(*) FROM frontier
                  WHERE state = 'leased'
        UNION ALL SELECT 0, 7, 'total', 'URLs done', done FROM finished
        UNION ALL SELECT 0, 8, 'total', 'URLs failed', failed FROM finished
        UNION ALL SELECT 0, 9, 'total', 'pages per second (average)',
                  {per_second} FROM fetched WHERE pages > 1
        UNION ALL SELECT 0, 10 + b, 'due', name, n FROM due
                  WHERE n > 0
        UNION ALL SELECT 1, coalesce(status, 1000), 'status',
                  coalesce(CAST(status AS TEXT), 'none'), sum(n)
                  FROM by_status GROUP BY status
        UNION ALL SELECT 2, class, 'status class',
                  CASE WHEN class = 0 THEN 'error' ELSE CAST(class AS TEXT) || 'xx' END, sum(n)
                  FROM (SELECT coalesce(status / 100, 0) AS class, n FROM by_status) AS classes
                  GROUP BY class
        UNION ALL {by_host}
        UNION ALL SELECT 4, -sum(n), 'content type', mime, sum(n)
                  FROM (SELECT coalesce(nullif(lower(trim(substr(content_type, 1,
                                  {type_end} - 1))), ''), 'none') AS mime,
                               count(*) AS n
                        FROM pages GROUP BY content_type) AS types
                  GROUP BY mime
        UNION ALL SELECT 5, depth, 'depth', CAST(depth AS TEXT), count(*) FROM pages
                  GROUP BY depth
        UNION ALL SELECT 6, -sum(n), 'error', error_kind, sum(n) FROM by_status
                  WHERE error_kind IS NOT NULL GROUP BY error_kind
        UNION ALL SELECT 7, -count(*), 'trap rule', rule, count(*)
                  FROM (SELECT CASE {trap_rules} ELSE 'unnamed' END AS rule FROM pages
                        WHERE status IS NULL AND error_kind = 'trap') AS trapped
                  GROUP BY rule",
        trap_rules = trap_rules(),
        due_bounds = due_bounds(),
        later = DUE.len(),
        now = d.now_ms(),
        http = host_pages("http"),
        https = host_pages("https"),
        staged = d.staged_urls(),
        bytes = d.total("bytes", "pages"),
        first = d.epoch("min(fetched_at)"),
        last = d.epoch("max(fetched_at)"),
        per_second = d.round(
            "pages / (CASE WHEN last - first > 1 THEN last - first ELSE 1 END)",
            1
        ),
        // A type ends where browsers end it (`sniff::essence`): at a `;`, a space, a tab or
        // a `(`, so `text/html charset=utf-8`, read as HTML, is counted as HTML; one that
        // names no type (`; charset=utf-8`) is sniffed as no header is, and counted so.
        type_end = d.position(
            "';'",
            "replace(replace(replace(content_type, ' ', ';'), '\t', ';'), '(', ';') || ';'"
        ),
    )
}

/// The `[traps]` key a trap row's `error` names, as `WHEN … THEN 'traps.KEY'` for each
/// of [`crate::traps::RULES`]: "trap 5,000" said nothing of which rule to raise. Rows a
/// pipecrawl stored before its errors named their keys are `unnamed`.
fn trap_rules() -> String {
    crate::traps::RULES
        .iter()
        .map(|rule| format!("WHEN error LIKE '%traps.{rule} =%' THEN 'traps.{rule}' "))
        .collect()
}

/// `(i, MS, 'NAME')` for each of [`DUE`], a `VALUES` list: the URLs due within each bound are
/// counted from the due-time indexes (`frontier_due`, `frontier_recrawl`), a range each,
/// and each bucket is what its bound adds to the one before. Bucketing every waiting
/// row in a scan took four times as long on a service's frontier of revisits.
fn due_bounds() -> String {
    let bounds: Vec<String> = DUE
        .iter()
        .enumerate()
        .map(|(i, (ms, name))| format!("({i}, {ms}, '{name}')"))
        .collect();
    bounds.join(", ")
}

pub(super) async fn answer(
    conn: &mut Reader,
    args: &StatsArgs,
    format: Format,
    out: &mut dyn Write,
) -> Result<Answer, QueryError> {
    let d = conn.dialect();
    let first = conn
        .integer(&Statement::new(format!(
            "SELECT {} FROM pages WHERE {REQUESTED_PAGES}",
            d.whole_epoch("min(fetched_at)")
        )))
        .await?;
    let last = conn
        .integer(&Statement::new(format!(
            "SELECT {} FROM pages WHERE {REQUESTED_PAGES}",
            d.whole_epoch("max(fetched_at)")
        )))
        .await?;

    let inlinks = super::inlinks(conn).await?;
    let mut q = Statement::new(sections(d, inlinks, args.hosts));
    if let (Some(first), Some(last)) = (first, last) {
        let (width, unit) = bucket(last - first);
        q.push(" UNION ALL SELECT 8, t, ")
            .push_bind(format!("fetched per {unit}"))
            .push(format_args!(
                ", {label},
                   (SELECT count(*) FROM pages
                    WHERE fetched_at >= {from} AND fetched_at < {to} AND {REQUESTED_PAGES})
                 FROM (WITH RECURSIVE buckets (t, w) AS (SELECT ",
                label = d.utc_text("t", false),
                from = d.utc_text("t", true),
                to = d.utc_text("t + w", true),
            ))
            .push_bind(first - first.rem_euclid(width))
            .push(", ")
            .push_bind(width)
            .push(" UNION ALL SELECT t + w, w FROM buckets WHERE t + w <= ")
            .push_bind(last)
            .push(") SELECT t, w FROM buckets) AS bucket_times");
    }
    q.push(") AS answer ORDER BY s, k, key");
    super::print_rows(conn, &q, format, out, 1, None).await
}

/// The narrowest bucket that splits `span` seconds into at most [`MAX_BUCKETS`].
fn bucket(span: i64) -> (i64, &'static str) {
    BUCKETS
        .iter()
        .copied()
        .find(|(width, _)| span / width < MAX_BUCKETS)
        .unwrap_or(BUCKETS[BUCKETS.len() - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fetch_rate_has_at_most_sixty_buckets_of_a_round_width() {
        assert_eq!(bucket(0), (1, "second"));
        assert_eq!(bucket(59), (1, "second"));
        assert_eq!(bucket(60), (10, "10 seconds"));
        assert_eq!(bucket(3000), (60, "minute"));
        assert_eq!(bucket(5 * 86400), (6 * 3600, "6 hours"));
        assert_eq!(bucket(100 * 365 * 86400), (30 * 86400, "30 days"));
    }
}
