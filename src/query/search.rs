//! `query search`: full-text search over page titles and the anchor texts of links.
//!
//! A URL is found by its own title and by what links to it say (as search engines use
//! anchor text). Titles and anchors are ranked by BM25 in their FTS5 indexes; a URL's
//! score adds its best title match and its best anchor match, so a page both titled and
//! linked with the words comes first.

use std::io::Write;

use sqlx::sqlite::SqliteConnection;
use sqlx::{QueryBuilder, Sqlite};

use super::output::Format;
use super::{Answer, QueryError};

#[derive(Debug, Clone, clap::Args)]
pub struct SearchArgs {
    /// Words that must all appear (any case, any word form: "linking" finds "links"); a
    /// trailing `*` matches any ending (`crawl*`).
    #[arg(required = true, num_args = 1..)]
    pub words: Vec<String>,
    /// Rows at most; 0 for all.
    #[arg(long, default_value_t = 20)]
    pub limit: u64,
}

/// Matches ranked from each index before URLs are merged: enough that the URLs shown are
/// the best, without ranking every match of a common word twice.
const HITS_PER_RESULT: u64 = 10;
const MIN_HITS: u64 = 200;

/// Matches ranked at most per index. Ranking costs a look at every match; for words in
/// more documents than this (a site's name in every title), BM25 says little anyway, and
/// the first matches stored — the pages nearest the seeds, as the crawl is breadth-first —
/// are ranked instead of all of them.
const RANKED_MATCHES: i64 = 20_000;

pub(super) async fn answer(
    conn: &mut SqliteConnection,
    args: &SearchArgs,
    format: Format,
    out: &mut dyn Write,
) -> Result<Answer, QueryError> {
    let query = fts_query(&args.words).ok_or(QueryError::NoSearchWords)?;
    let limit = super::limit(args.limit);
    let hits = limit.map_or(i64::MAX, |l| {
        i64::try_from(l.saturating_mul(HITS_PER_RESULT).max(MIN_HITS)).unwrap_or(i64::MAX)
    });
    let mut q = QueryBuilder::<Sqlite>::new("WITH title_hits AS (");
    push_ranked_hits(&mut q, "pages_fts", &query, hits);
    q.push("), anchor_hits AS (");
    push_ranked_hits(&mut q, "anchors_fts", &query, hits);
    q.push(
        "), hits (url, title_rank, anchor_rank, anchor_text, links) AS (
                 SELECT p.url, t.rank, NULL, NULL, 0
                 FROM title_hits t JOIN pages p ON p.id = t.id
                 UNION ALL
                 SELECT a.target_url, NULL, h.rank, a.anchor_text, a.links
                 FROM anchor_hits h JOIN anchors a ON a.id = h.id
             ), ranked AS (
                 SELECT url,
                        coalesce(min(title_rank), 0) + coalesce(min(anchor_rank), 0) AS rank,
                        min(title_rank) IS NOT NULL AS in_title,
                        group_concat(anchor_text, ' | ') AS anchor_texts,
                        sum(links) AS anchor_links
                 FROM hits GROUP BY url
             )
             SELECT r.url, p.title, p.status, round(-r.rank, 3) AS score,
                    CASE WHEN r.in_title AND r.anchor_texts IS NOT NULL THEN 'title, anchor'
                         WHEN r.in_title THEN 'title' ELSE 'anchor' END AS matched,
                    r.anchor_texts, r.anchor_links
             FROM ranked r LEFT JOIN pages p ON p.url = r.url
             ORDER BY r.rank, r.url",
    );
    super::push_limit(&mut q, limit);
    super::print_rows(conn, &mut q, format, out, 0, limit).await
}

/// The best `hits` matches of `query` in the FTS5 table `fts`, as `(id, rank)`, ranking
/// only the first [`RANKED_MATCHES`].
fn push_ranked_hits(q: &mut QueryBuilder<Sqlite>, fts: &str, query: &str, hits: i64) {
    q.push(format_args!(
        "SELECT rowid AS id, rank FROM {fts} WHERE {fts} MATCH "
    ))
    .push_bind(query.to_owned())
    .push(format_args!(
        " AND rowid <= coalesce((SELECT rowid FROM {fts} WHERE {fts} MATCH "
    ))
    .push_bind(query.to_owned())
    .push(" ORDER BY rowid LIMIT 1 OFFSET ")
    .push_bind(RANKED_MATCHES - 1)
    .push("), 9223372036854775807) ORDER BY rank LIMIT ")
    .push_bind(hits);
}

/// The words as an FTS5 query that means "all of these", whatever characters they hold:
/// each is quoted, so FTS5 syntax (`-`, `:`, `NEAR`) in them is just text.
fn fts_query(words: &[String]) -> Option<String> {
    let terms: Vec<String> = words
        .iter()
        .flat_map(|w| w.split_whitespace())
        .filter_map(|word| {
            let (stem, prefix) = match word.strip_suffix('*') {
                Some(stem) => (stem, "*"),
                None => (word, ""),
            };
            (!stem.is_empty()).then(|| format!("\"{}\"{prefix}", stem.replace('"', "\"\"")))
        })
        .collect();
    (!terms.is_empty()).then(|| terms.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn every_word_is_quoted_so_fts_syntax_is_plain_text() {
        assert_eq!(
            fts_query(&words(&["broken links", "a\"b", "NEAR", "-x"])).as_deref(),
            Some("\"broken\" \"links\" \"a\"\"b\" \"NEAR\" \"-x\"")
        );
    }

    #[test]
    fn a_trailing_star_matches_any_ending() {
        assert_eq!(
            fts_query(&words(&["crawl*"])).as_deref(),
            Some("\"crawl\"*")
        );
    }

    #[test]
    fn blank_input_is_no_query() {
        assert_eq!(fts_query(&words(&["  ", "*"])), None);
    }
}
