//! `query broken`: every link whose target failed, grouped by target, with the pages that
//! link to it and their anchor texts — a link checker's report from the crawl's database.
//!
//! A target failed when it answered 4xx or 5xx, gave no answer (timeout, refused
//! connection, unknown host, …), or was a redirect that went wrong. A redirect is followed
//! to where its chain ends, so a link to a 301 that ends at a 200 is fine and one whose
//! chain ends at a 404 is broken. Targets robots.txt kept the crawler from are listed
//! apart (`kind` = `robots`): nobody knows whether they work. Targets outside the crawl's
//! scope, those only `nofollow` links lead to (not followed by default), and those it left
//! as traps (past a host's page budget, or looking like a crawler trap), were never
//! requested, so they are neither broken nor fine: `--unchecked` lists them (`kind` =
//! `unchecked`). A seed that failed, which no link leads to, is listed too (`kind` =
//! `seed`): a CI check of a site whose root the server does not serve has no broken link
//! to fail on, yet checked nothing.

use std::io::{self, Write};

use super::dialect::Dialect;
use super::output::{self, Cell, Format};
use super::reader::{Reader, Statement};
use super::{Answer, QueryError};
use crate::plural::Count;

#[derive(Debug, Clone, clap::Args)]
pub struct BrokenArgs {
    /// Only links on pages of this host: `example.com` (any port), or `example.com:8080`.
    #[arg(long, value_parser = super::host_parser())]
    pub host: Option<String>,
    /// Also list links to URLs that were never checked (out of scope, `nofollow` and not
    /// followed, or not crawled yet).
    #[arg(long)]
    pub unchecked: bool,
    /// Exit with an error when any link is broken or a seed failed, for CI.
    #[arg(long)]
    pub fail: bool,
    /// Rows at most; 0 for all.
    #[arg(long, default_value_t = 0, value_parser = super::rows, allow_negative_numbers = true)]
    pub limit: u64,
}

/// Pages whose URL is a dead end: a failed response, no response, or a redirect that
/// failed (not a `trap` row, which was never requested). Each URL leading to one —
/// itself, and redirects whose chain ends at it (they share its `final_url`) — is a
/// broken target. The join order is fixed (see [`Dialect::ordered_join`]): from the few
/// dead targets to their links, never from every link to the dead targets, which
/// SQLite's planner may otherwise pick.
fn dead_links(dialect: Dialect) -> String {
    let join = dialect.ordered_join();
    format!(
        "
    WITH failed AS (
        SELECT id, url, final_url, status, error_kind FROM pages
        WHERE (status >= 400 OR status IS NULL OR error_kind = 'redirect')
              AND {NOT_TRAPPED}
    ), dead (target, final_url, status, error_kind) AS (
        SELECT url, NULL, status, error_kind FROM failed
        UNION
        SELECT r.url, f.url, f.status, f.error_kind
        FROM failed f JOIN pages r ON r.final_url = f.final_url AND r.location IS NOT NULL
        WHERE r.id <> f.id AND r.error_kind IS NULL
    )
    SELECT CASE WHEN d.error_kind IN ('robots', 'robots_unavailable') THEN 'robots'
                ELSE 'broken' END AS kind,
           d.target AS target_url, d.status, d.error_kind, d.final_url,
           s.url AS page, l.anchor_text
    FROM dead d {join} links l ON l.target_url = d.target
         {join} pages s ON s.id = l.source_id
    WHERE 1 = 1"
    )
}

/// Dead seeds (`d`, of [`dead_links`]): a root the server does not serve, a host that is
/// down, a robots.txt that keeps the crawler out (`Disallow: /` on a staging server, or
/// one answering 500): each leaves a check with nothing fetched. [`push_dead`] keeps
/// those no link listed leads to.
const FAILED_SEEDS: &str = "
    SELECT 'seed', d.target, d.status, d.error_kind, d.final_url, NULL, NULL
    FROM dead d JOIN frontier f ON f.url = d.target
    WHERE f.discovered_from IS NULL AND f.kind = 'page' AND f.depth = 0";

/// Link targets (`i`) with no page row (`t`) or a `trap` one, or redirects to such:
/// never requested.
const UNCHECKED: &str = "
    (t.id IS NULL OR t.error_kind = 'trap'
     OR (t.location IS NOT NULL AND t.error_kind IS NULL
         AND NOT EXISTS (SELECT 1 FROM pages e
                         WHERE e.url = t.final_url AND coalesce(e.error_kind, '') <> 'trap')))";

/// Pages that are not `trap` rows: the URLs past `traps.max_pages_per_host`, or looking
/// like a crawler trap, stored so and never requested.
const NOT_TRAPPED: &str = "coalesce(error_kind, '') <> 'trap'";

/// The answer's columns; the first [`GROUP_COLUMNS`] describe the target, one group each.
const COLUMNS: [&str; 7] = [
    "kind",
    "target_url",
    "status",
    "error_kind",
    "final_url",
    "page",
    "anchor_text",
];
const GROUP_COLUMNS: usize = 5;

/// The kinds of target, in the order listed.
const KINDS: [(&str, &str); 4] = [
    ("broken", "broken"),
    ("robots", "blocked by robots.txt (not requested)"),
    ("seed", "seed"),
    ("unchecked", "not checked"),
];

/// Where [`KINDS`] has failed seeds, which are counted as seeds, not as links.
const SEED: usize = 2;

/// The answer's rows: the broken and robots links and the failed seeds no link leads to,
/// and with `--unchecked` the links to targets never requested, read from `inlinks` (the
/// table, or its count from `links`). One row per link, a target's links together: a
/// target in every page's footer has as many links as the site has pages, so they
/// stream rather than being gathered.
fn statement(dialect: Dialect, inlinks: &str, args: &BrokenArgs, limit: Option<u64>) -> Statement {
    let mut q = Statement::new(format!("SELECT {} FROM (", COLUMNS.join(", ")));
    push_dead(&mut q, dialect, args.host.as_deref());
    if args.unchecked {
        q.push(
            " UNION ALL
             SELECT 'unchecked', i.url, t.status, NULL,
                    CASE WHEN t.location IS NOT NULL THEN t.final_url END, s.url, l.anchor_text",
        );
        push_unchecked_links(&mut q, dialect, inlinks, args.host.as_deref());
    }
    // NULLs sort first in SQLite and last in PostgreSQL: spelled out, both agree.
    q.push(
        ") AS targets ORDER BY kind, target_url, coalesce(status, 0),
                               coalesce(error_kind, ''), coalesce(final_url, ''),
                               page, anchor_text",
    );
    super::push_limit(&mut q, limit);
    q
}

/// `FROM … WHERE …` of the links (`l`, on page `s`) to targets never requested (`i`, with
/// its page `t`, if any), on `host`'s pages if given. From those targets (a few, or none,
/// of a crawl's link targets) to their links, never from every link to its target's
/// page, which SQLite's planner otherwise picks: a scan of all of `links` (52 s for 9
/// million), or with `host` of every link on its pages (82 s).
fn push_unchecked_links(q: &mut Statement, dialect: Dialect, inlinks: &str, host: Option<&str>) {
    let join = dialect.ordered_join();
    q.push(format_args!(
        " FROM {inlinks} AS i LEFT JOIN pages t ON t.url = i.url
         {join} links l ON l.target_url = i.url {join} pages s ON s.id = l.source_id
         WHERE {UNCHECKED}"
    ));
    if let Some(host) = host {
        super::push_host_filter(q, "s.url", host);
    }
}

/// Whether any link (on `host`'s pages, if given) leads to a target never requested, as
/// `--unchecked` would list them: 1 or 0.
fn any_unchecked(dialect: Dialect, inlinks: &str, host: Option<&str>) -> Statement {
    let mut q = Statement::new("SELECT count(*) FROM (SELECT 1");
    push_unchecked_links(&mut q, dialect, inlinks, host);
    q.push(" LIMIT 1) AS any_unchecked");
    q
}

pub(super) async fn answer(
    conn: &mut Reader,
    args: &BrokenArgs,
    format: Format,
    out: &mut dyn Write,
) -> Result<Answer, QueryError> {
    let inlinks = super::inlinks(conn).await?;
    let limit = super::limit(args.limit);
    let q = statement(conn.dialect(), inlinks, args, limit);

    let mut sink = output::sink(format, out, GROUP_COLUMNS);
    let mut gone = reader_gone(sink.columns(&COLUMNS.map(String::from)))?;
    let mut links = [0_u64; KINDS.len()];
    let mut targets = [0_u64; KINDS.len()];
    let (mut target, mut previous) = (String::new(), String::new());
    let mut more = false;
    conn.each_row(&q, |_, cells| {
        if limit.is_some_and(|limit| links.iter().sum::<u64>() >= limit) {
            more = true;
            return Ok(false);
        }
        let kind = KINDS
            .iter()
            .position(|(k, _)| matches!(cells.first(), Some(Cell::Text(kind)) if kind == k))
            .unwrap_or(0);
        target.clear();
        for cell in cells.iter().take(GROUP_COLUMNS) {
            cell.write_plain(&mut target);
            target.push('\0');
        }
        if target != previous {
            targets[kind] += 1;
            std::mem::swap(&mut target, &mut previous);
        }
        gone = reader_gone(sink.row(cells))?;
        if gone {
            return Ok(false);
        }
        links[kind] += 1;
        Ok(true)
    })
    .await?;
    if !gone {
        gone = reader_gone(sink.finish())?;
    }

    let rows = links.iter().sum();
    let (broken_links, failed_seeds) = if more || gone {
        count_broken(conn, args.host.as_deref()).await?
    } else {
        (links[0], links[SEED])
    };
    if gone {
        // Notes on what was shown would be about rows nobody read.
        return Ok(Answer {
            rows,
            notes: Vec::new(),
            broken_links,
            failed_seeds,
        });
    }
    // Counts of what was shown would read as totals: only give them for a whole answer.
    let mut notes = if more {
        vec![super::more_note(rows)]
    } else {
        KINDS
            .iter()
            .enumerate()
            .filter(|(i, _)| *i == 0 || links[*i] > 0)
            .map(|(i, (_, what))| match i {
                SEED => format!("{} failed (no page links there)", Count(targets[i], what)),
                _ => format!(
                    "{} to {} {what}",
                    Count(links[i], "link"),
                    Count(targets[i], "URL")
                ),
            })
            .collect()
    };
    if sink.replaced_not_utf8() {
        notes.push(output::NOT_UTF8.to_owned());
    }
    if !args.unchecked {
        // Whether, not how many: counting would look up every link target. With `--host`,
        // of the links on that host's pages, as `--unchecked` would list them.
        let q = any_unchecked(conn.dialect(), inlinks, args.host.as_deref());
        let unchecked = conn.integer(&q).await?;
        if unchecked > Some(0) {
            notes.push(
                "links to URLs out of the crawl's scope, not followed for a nofollow \
                 (politeness.follow_nofollow_links, or politeness.respect_meta_robots for a \
                 nofollow page) or not crawled yet were not checked: --unchecked lists them"
                    .to_owned(),
            );
        }
    }
    // Counted as `stats` counts `URLs queued` and `URLs leased`.
    let waiting = conn
        .integer(&Statement::new(format!(
            "SELECT count(*) + {} FROM frontier WHERE state IN ('queued', 'leased')",
            conn.dialect().staged_urls()
        )))
        .await?;
    if let Some(waiting) = waiting
        .and_then(|n| u64::try_from(n).ok())
        .filter(|n| *n > 0)
    {
        // A gate on `--fail` would otherwise pass a crawl its job's time limit cut short.
        notes.push(format!(
            "the crawl is not finished: {} left to crawl (a run still going, or the last \
             stopped early: scope.max_pages, a signal, a kill), their links not checked: run \
             the crawl again to go on, raising scope.max_pages if it stopped there",
            Count(waiting, "URL")
        ));
    }
    Ok(Answer {
        rows,
        notes,
        broken_links,
        failed_seeds,
    })
}

/// Whether `written` failed because the reader went away (`broken --fail | head -1`):
/// printing stops there, but `--fail` still needs every broken link counted.
fn reader_gone(written: io::Result<()>) -> Result<bool, QueryError> {
    match written {
        Ok(()) => Ok(false),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(true),
        Err(e) => Err(e.into()),
    }
}

/// The dead links on pages of `host` (or all), and the failed seeds of that host that no
/// link leads to.
fn push_dead(q: &mut Statement, dialect: Dialect, host: Option<&str>) {
    q.push(dead_links(dialect));
    if let Some(host) = host {
        super::push_host_filter(q, "s.url", host);
    }
    q.push(format_args!(" UNION ALL {FAILED_SEEDS}"));
    // A seed a link listed leads to is a target listed already; with `host`, only the
    // links on its pages are listed, so a seed linked from elsewhere alone is one too.
    match host {
        None => q.push(" AND NOT EXISTS (SELECT 1 FROM links l WHERE l.target_url = d.target)"),
        Some(host) => {
            super::push_host_filter(q, "d.target", host);
            q.push(
                " AND NOT EXISTS (SELECT 1 FROM links l JOIN pages s ON s.id = l.source_id
                                  WHERE l.target_url = d.target",
            );
            super::push_host_filter(q, "s.url", host);
            q.push(")")
        }
    };
}

/// Every broken link on pages of `host` (or all), and every failed seed, for an answer
/// `--limit` cut short: the rows shown are then only some of them, and `--fail` must say
/// how many there are.
async fn count_broken(conn: &mut Reader, host: Option<&str>) -> Result<(u64, u64), QueryError> {
    let mut q = Statement::new(
        "SELECT sum(CASE WHEN kind = 'broken' THEN 1 ELSE 0 END),
                sum(CASE WHEN kind = 'seed' THEN 1 ELSE 0 END) FROM (",
    );
    push_dead(&mut q, conn.dialect(), host);
    q.push(") AS dead");
    let mut counts = [0_u64; 2];
    conn.each_row(&q, |_, cells| {
        for (count, cell) in counts.iter_mut().zip(cells) {
            if let Cell::Int(n) = cell {
                *count = u64::try_from(*n).unwrap_or(0);
            }
        }
        Ok(false)
    })
    .await?;
    Ok((counts[0], counts[1]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `broken --unchecked` of a crawl of 400,000 pages and 9 million links, every target
    /// crawled: the links to the targets never requested are found through the index of
    /// link targets, not by reading every link and looking up its target (18 s, as long
    /// with no target to list as with many).
    #[tokio::test]
    async fn unchecked_links_are_found_from_their_targets_through_an_index() {
        let (_dir, mut reader) = crate::query::plan::reader().await;
        for host in [None, Some("example.com".to_owned())] {
            let args = BrokenArgs {
                host,
                unchecked: true,
                fail: false,
                limit: 0,
            };
            let q = statement(Dialect::Sqlite, "inlinks", &args, None);
            crate::query::plan::assert_indexed(&mut reader, &q, "l", false).await;
        }
    }

    /// `broken --host` of a crawl of 400,000 pages and 9 million links, every target
    /// crawled: whether any link on the host's pages went unchecked (the note that
    /// `--unchecked` lists them) is asked from the targets never requested, through the
    /// index of link targets, not by looking up the target of every link on the host's
    /// pages (27 s of the answer's 28; 0.9 s without `--host`).
    #[tokio::test]
    async fn whether_a_hosts_links_went_unchecked_is_asked_of_the_targets_never_requested() {
        let (_dir, mut reader) = crate::query::plan::reader().await;
        let q = any_unchecked(Dialect::Sqlite, "inlinks", Some("example.com"));
        let plan = crate::query::plan::lines(&mut reader, &q).await;
        let from_targets = "SEARCH l USING COVERING INDEX links_target";
        assert!(
            plan.iter().any(|l| l.starts_with(from_targets)),
            "{}\n{plan:#?}",
            q.sql()
        );
    }
}
