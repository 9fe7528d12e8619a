//! `pipecrawl query`: read-only questions of a crawl's database, so that people learn what
//! a crawl found without learning the schema.
//!
//! # Layout
//!
//! - [`open`]: opens the SQLite file or PostgreSQL database so nothing can change it,
//!   and refuses databases that are not pipecrawl's with a message saying why.
//! - One module per question ([`pages`], [`links`], [`search`], [`broken`], [`top`],
//!   [`stats`], [`changes`], [`sql`]), each building one SQL query, written once for both
//!   databases.
//! - [`dialect`]: the pieces of SQL that differ between SQLite and PostgreSQL.
//! - [`reader`]: runs a question's SQL on either and reads the rows as cells.
//! - [`output`]: streams the rows to a table, CSV, JSON or JSON Lines.
//!
//! The schema serves the questions: full-text indexes of titles and anchor texts
//! (`migrations/sqlite/0002_search.sql`, `migrations/postgres/0001_init.sql`) and in-link
//! counts kept by the writer, so no built-in question reads every link.

pub mod broken;
pub mod changes;
pub mod dialect;
mod error;
mod fold;
pub mod links;
pub mod open;
pub mod output;
pub mod pages;
pub mod reader;
pub mod search;
pub mod sql;
pub mod stats;
mod table;
pub mod top;

use std::io::Write;

use crate::plural::Count;
pub use error::QueryError;
pub use output::Format;
use reader::{Reader, Statement};

#[derive(Debug, Clone, clap::Subcommand)]
pub enum Question {
    /// Pages crawled, filtered and sorted.
    Pages(pages::PagesArgs),
    /// The links on a page (--from), or the links to a URL (--to), with anchor texts.
    Links(links::LinksArgs),
    /// Full-text search over page titles and the anchor texts of links, best first.
    Search(search::SearchArgs),
    /// Links whose target failed, grouped by target: a link checker's report.
    Broken(broken::BrokenArgs),
    /// URLs by the number of distinct pages linking to them.
    Top(top::TopArgs),
    /// Totals, and counts by status, host, content type, depth, time and error.
    Stats(stats::StatsArgs),
    /// Pages a revisit found changed, newest first, with what they said before.
    Changes(changes::ChangesArgs),
    /// Any read-only SQL; statements that would change the database are refused.
    Sql(sql::SqlArgs),
}

/// What was printed, for the caller to report; notes are for people (stderr), not data.
#[derive(Debug, Default)]
pub struct Answer {
    pub rows: u64,
    pub notes: Vec<String>,
    /// Links found broken (`broken` only), so a link check can fail a CI job: all of
    /// them, counted apart when `--limit` cut the rows short.
    pub broken_links: u64,
    /// Seeds that failed and that no link leads to (`broken` only): a site whose root the
    /// server does not serve has no broken link, yet fails a link check all the same.
    pub failed_seeds: u64,
}

/// Answers `question` from `database` (a SQLite file's path or a `postgres://` URL),
/// writing rows to `out` in `format`.
pub async fn ask(
    database: &str,
    question: &Question,
    format: Format,
    out: &mut dyn Write,
) -> Result<Answer, QueryError> {
    let needs = match question {
        Question::Changes(_) => open::Needs::Changes,
        _ => open::Needs::Questions,
    };
    let mut conn = open::open(database, needs).await?;
    let answered = match question {
        Question::Pages(args) => pages::answer(&mut conn, args, format, out).await,
        Question::Links(args) => links::answer(&mut conn, args, format, out).await,
        Question::Search(args) => search::answer(&mut conn, args, format, out).await,
        Question::Broken(args) => broken::answer(&mut conn, args, format, out).await,
        Question::Top(args) => top::answer(&mut conn, args, format, out).await,
        Question::Stats(args) => stats::answer(&mut conn, args, format, out).await,
        Question::Changes(args) => changes::answer(&mut conn, args, format, out).await,
        Question::Sql(args) => sql::answer(&mut conn, args, format, out).await,
    };
    conn.close().await;
    match answered {
        Err(e) if e.is_closed_output() => Ok(Answer::default()),
        other => other,
    }
}

/// Prints the rows of `q` (at most `limit`); `group` as for [`output::sink`].
async fn print_rows(
    conn: &mut Reader,
    q: &Statement,
    format: Format,
    out: &mut dyn Write,
    group: usize,
    limit: Option<u64>,
) -> Result<Answer, QueryError> {
    let sink = output::sink(format, out, group);
    print_kept(conn, q, sink, limit, &|_| true).await
}

/// [`print_rows`] of the rows `keep` keeps (see [`output::stream_kept`]) to `sink`.
async fn print_kept(
    conn: &mut Reader,
    q: &Statement,
    mut sink: Box<dyn output::Sink + '_>,
    limit: Option<u64>,
    keep: output::Keep<'_>,
) -> Result<Answer, QueryError> {
    let streamed = output::stream_kept(conn, q, sink.as_mut(), limit, keep).await?;
    let not_utf8 = sink
        .replaced_not_utf8()
        .then(|| output::NOT_UTF8.to_owned());
    Ok(Answer {
        rows: streamed.rows,
        notes: streamed
            .more
            .then(|| more_note(streamed.rows))
            .into_iter()
            .chain(not_utf8)
            .collect(),
        broken_links: 0,
        failed_seeds: 0,
    })
}

/// The note for an answer that `--limit` cut short.
fn more_note(rows: u64) -> String {
    format!("(the first {}; --limit 0 shows all)", Count(rows, "row"))
}

/// The in-link counts per link target (`url`, `linking_pages`, `links`), as a table to read
/// from: `inlinks`, or the same counted from `links` when the crawl's writer keeps none
/// (see `NOT_KEPT` in `src/store/link_counts.rs`). A one-off crawl counts them at its
/// end, so while it runs, and after a `kill -9` until the next run, the table holds the
/// last run's counts, or none: `top` listed nothing and `stats` said 0 links.
async fn inlinks(conn: &mut Reader) -> Result<&'static str, QueryError> {
    Ok(if link_counts_kept(conn).await? {
        "inlinks"
    } else {
        "(SELECT target_url AS url, count(DISTINCT source_id) AS linking_pages,
                 count(*) AS links
          FROM links GROUP BY target_url)"
    })
}

/// Whether the writer keeps `inlinks` and `anchors` as it stores links (up to a few
/// seconds behind), rather than counting them when its crawl ends (or the next run, after
/// rows were deleted and the counts marked not kept).
async fn link_counts_kept(conn: &mut Reader) -> Result<bool, QueryError> {
    let state = conn
        .integer(&Statement::new(
            "SELECT value FROM writer_state WHERE key = 'link_counts_behind'",
        ))
        .await?;
    Ok(state != Some(crate::store::link_counts::NOT_KEPT))
}

/// `Some(limit)`, or `None` for 0 (no limit).
fn limit(limit: u64) -> Option<u64> {
    (limit > 0).then_some(limit)
}

/// What reads `--limit` (and `stats --hosts`): a number of rows, 0 for all. SQL writes no
/// limit as `LIMIT -1`, and so did users; clap said "unexpected argument '-1' found" (or,
/// as `--limit=-1`, "invalid digit found in string"), neither what it takes nor that 0
/// shows all. Its args allow negative numbers, so that `-1` reaches this.
pub(crate) fn rows(given: &str) -> Result<u64, String> {
    given.parse().map_err(|e: std::num::ParseIntError| {
        let why = match e.kind() {
            std::num::IntErrorKind::PosOverflow => "is more than a limit can be",
            _ => "is not a number of rows",
        };
        format!("`{given}` {why}: give a whole number, 0 for all")
    })
}

/// Appends `LIMIT n + 1` (one more than shown, to tell whether there were more).
fn push_limit(q: &mut Statement, limit: Option<u64>) {
    if let Some(limit) = limit {
        q.push(" LIMIT ")
            .push_bind(i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX));
    }
}

/// What reads `--host`: an empty value is one missing (`--host "$HOST"`, the variable
/// unset), said so, as clap says it; then [`host_arg`].
pub(crate) fn host_parser() -> impl clap::builder::TypedValueParser<Value = String> {
    use clap::builder::TypedValueParser;
    clap::builder::NonEmptyStringValueParser::new().try_map(host_arg)
}

/// `--host`'s value ([`host_parser`]): a host, or a URL naming one. A pattern as
/// `scope.hosts` writes one (`*.example.com`) is refused: it matched no stored URL, and
/// the answer came back empty as if the crawl had no page there.
fn host_arg(given: String) -> Result<String, String> {
    if given.contains('*') {
        let host = given.trim().trim_start_matches(['*', '.']);
        // A star left inside (`example.*`), or nothing but stars, names no host to offer.
        let named = if host.is_empty() || host.contains('*') {
            String::new()
        } else {
            format!(" (`--host {host}`)")
        };
        return Err(format!(
            "{given:?} is a pattern, and --host names one host, on any port{named}: each \
             subdomain is a host of its own, which `query stats --hosts N` lists"
        ));
    }
    Ok(given)
}

/// Restricts `column` (a URL) to URLs on `host`: `example.com` on any port, or
/// `example.com:8080` on that one. URLs on a host sort between `scheme://host/` and
/// `scheme://host0` (`0` follows `/`), those on its other ports between `scheme://host:`
/// and `scheme://host;`, so this is a few range scans of a URL index rather than a look at
/// every row.
fn push_host_filter(q: &mut Statement, column: &str, host: &str) {
    let ranges = crate::urlnorm::host_ranges(host);
    q.push(" AND (");
    for (i, (from, to)) in ranges.into_iter().enumerate() {
        if i > 0 {
            q.push(" OR ");
        }
        q.push(format_args!("({column} >= "))
            .push_bind(from)
            .push(format_args!(" AND {column} < "))
            .push_bind(to)
            .push(")");
    }
    q.push(")");
}

/// `input` as the crawler spells URLs, so `http://Example.com` finds `http://example.com/`,
/// and a seed written with its credentials (`http://user:pw@host/`) the row stored
/// without them; input that is no crawlable URL is looked up as typed (a `mailto:` link's
/// target), but for one missing only its scheme, which no stored URL lacks.
fn normalize_url(input: &str) -> Result<String, QueryError> {
    match crate::urlnorm::normalize_str(input) {
        Ok(mut url) => {
            crate::urlnorm::drop_userinfo(&mut url);
            Ok(url.into())
        }
        Err(why @ crate::urlnorm::UrlError::NoScheme(_)) => Err(QueryError::NoScheme {
            given: input.trim().to_owned(),
            why,
        }),
        Err(_) => Ok(input.trim().to_owned()),
    }
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern.
fn like_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
pub(crate) mod plan {
    //! How SQLite plans a question's SQL on a freshly migrated database: the tests that
    //! a slice of a big table is read through an index rather than by a scan or a sort.

    use super::host_arg;
    use super::output::Cell;
    use super::reader::{Reader, Statement};

    /// A migrated, empty crawl database, open as `query` opens one.
    pub(crate) async fn reader() -> (tempfile::TempDir, Reader) {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("crawl.db").display().to_string();
        crate::store::Store::open(&path)
            .await
            .expect("create the database")
            .close()
            .await
            .expect("close the store");
        let reader = super::open::open(&path, super::open::Needs::Questions)
            .await
            .expect("open it to read");
        (dir, reader)
    }

    /// The lines of SQLite's query plan for `st`.
    pub(crate) async fn lines(reader: &mut Reader, st: &Statement) -> Vec<String> {
        let mut lines = Vec::new();
        reader
            .each_row(&st.explained(), |_, cells| {
                if let Some(Cell::Text(detail)) = cells.last() {
                    lines.push((*detail).to_owned());
                }
                Ok(true)
            })
            .await
            .expect("explain the statement");
        lines
    }

    /// Fails unless `st` reads `table` only through an index and, with `sorted`, needs
    /// no sort of all it reads (a sort of the rows that tie on an index's order is fine:
    /// `RIGHT PART`). Without, the rows the index picks may be sorted: they are a slice.
    pub(crate) async fn assert_indexed(
        reader: &mut Reader,
        st: &Statement,
        table: &str,
        sorted: bool,
    ) {
        let lines = lines(reader, st).await;
        let scan = format!("SCAN {table}");
        let whole = lines.iter().any(|l| {
            (l.starts_with(&scan) && !l.contains("USING"))
                || (sorted && l.ends_with("TEMP B-TREE FOR ORDER BY"))
        });
        assert!(!whole, "{}\n{lines:#?}", st.sql());
    }

    /// A pattern's refusal offers the host it names, and none when what is left is no
    /// host (`example.*`, `*`), which would be refused in turn.
    #[test]
    fn a_host_pattern_is_refused_offering_a_host_only_when_it_names_one() {
        let refused = |given: &str| host_arg(given.to_owned()).unwrap_err();
        assert!(refused("*.example.com").contains("(`--host example.com`)"));
        for nameless in ["example.*", "*", "*.*"] {
            assert!(!refused(nameless).contains("`--host"), "{nameless}");
        }
    }
}
