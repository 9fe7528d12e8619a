//! `query search`: full-text search over page titles and the anchor texts of links.
//!
//! A URL is found by its own title and by what links to it say (as search engines use
//! anchor text). Titles and anchors are ranked in their full-text indexes (SQLite: BM25
//! in FTS5; PostgreSQL: `ts_rank`, see [`super::dialect::Dialect::push_ranked_hits`]); a
//! URL's score adds its best title match and its best anchor match, so a page both titled
//! and linked with the words comes first.

use std::io::Write;

use super::dialect::SearchIn;
use super::output::Format;
use super::reader::{Reader, Statement};
use super::{Answer, QueryError};

#[derive(Debug, Clone, clap::Args)]
pub struct SearchArgs {
    /// Words that must all appear (any case, any word form: "linking" finds "links"); a
    /// trailing `*` matches any ending (`crawl*`).
    #[arg(required = true, num_args = 1..)]
    pub words: Vec<String>,
    /// Rows at most; 0 for all.
    #[arg(long, default_value_t = 20, value_parser = super::rows, allow_negative_numbers = true)]
    pub limit: u64,
}

/// Matches ranked at most per index. Ranking costs a look at every match; for words in
/// more documents than this (a site's name in every title), BM25 says little anyway, and
/// the first matches stored — the pages nearest the seeds, as the crawl is breadth-first —
/// are ranked instead of all of them.
const RANKED_MATCHES: i64 = 20_000;

/// The anchor hits' texts that `links` still says, and how many link rows say each, for
/// when `anchors` is not kept (`NOT_KEPT` in `src/store/link_counts.rs`): until the next
/// run counts it afresh it holds the anchors of links deleted since (a site taken out, a
/// page forgotten), which were found, and their counts. One pass over `links` (or its
/// index, when there is one) for all the hits, as `top` counts from it then.
const SAID: &str = "said (target_url, anchor_text, links) AS (
                 SELECT target_url, anchor_text, count(*) FROM links
                 WHERE (target_url, anchor_text) IN (
                     SELECT a.target_url, a.anchor_text
                     FROM anchor_hits h JOIN anchors a ON a.id = h.id)
                 GROUP BY target_url, anchor_text
             ), ";

pub(super) async fn answer(
    conn: &mut Reader,
    args: &SearchArgs,
    format: Format,
    out: &mut dyn Write,
) -> Result<Answer, QueryError> {
    let dialect = conn.dialect();
    let query = dialect
        .text_query(&args.words)
        .ok_or(QueryError::NoSearchWords)?;
    if let Some(terms) = dialect.searched_terms(&query) {
        if conn.integer(&terms).await? == Some(0) {
            return Err(QueryError::OnlyStopWords);
        }
    }
    let limit = super::limit(args.limit);
    let counts_kept = super::link_counts_kept(conn).await?;
    let (said, links, said_join) = if counts_kept {
        ("", "a.links", "")
    } else {
        (
            SAID,
            "s.links",
            " JOIN said s ON s.target_url = a.target_url AND s.anchor_text = a.anchor_text",
        )
    };
    // Every match ranked (up to RANKED_MATCHES per index) is gathered by URL: a URL's
    // score adds its matches in both indexes, so cutting either before would show some
    // URLs without the match that puts them first, and which depended on `--limit`.
    let mut q = Statement::new("WITH title_hits AS (");
    dialect.push_ranked_hits(&mut q, SearchIn::Titles, &query, RANKED_MATCHES);
    q.push("), anchor_hits AS (");
    dialect.push_ranked_hits(&mut q, SearchIn::Anchors, &query, RANKED_MATCHES);
    q.push(format_args!(
        "), {said}hits (url, title_rank, anchor_rank, anchor_text, links) AS (
                 SELECT p.url, t.rank, NULL, NULL, 0
                 FROM title_hits t JOIN pages p ON p.id = t.id
                 UNION ALL
                 SELECT a.target_url, NULL, h.rank, a.anchor_text, {links}
                 FROM anchor_hits h JOIN anchors a ON a.id = h.id{said_join}
             ), ranked AS (
                 SELECT url,
                        coalesce(min(title_rank), 0) + coalesce(min(anchor_rank), 0) AS rank,
                        min(title_rank) IS NOT NULL AS in_title,
                        {anchor_texts} AS anchor_texts,
                        sum(links) AS anchor_links
                 FROM hits GROUP BY url
             )
             SELECT r.url, p.title, p.status, {score} AS score,
                    CASE WHEN r.in_title AND r.anchor_texts IS NOT NULL THEN 'title, anchor'
                         WHEN r.in_title THEN 'title' ELSE 'anchor' END AS matched,
                    r.anchor_texts, r.anchor_links
             FROM ranked r LEFT JOIN pages p ON p.url = r.url
             ORDER BY r.rank, r.url",
        anchor_texts = dialect.joined("anchor_text", " | "),
        score = dialect.round("-r.rank", 3),
    ));
    super::push_limit(&mut q, limit);
    let mut answer = super::print_rows(conn, &q, format, out, 0, limit).await?;
    if !counts_kept {
        answer.notes.push(
            "the anchor texts of links are indexed when the crawl ends: those stored since \
             the last count (by the crawl running now, one killed before its end, or since \
             rows were deleted, until the next run counts them) are not searched, titles are"
                .to_owned(),
        );
    }
    Ok(answer)
}
