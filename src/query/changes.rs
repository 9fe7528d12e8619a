//! `query changes`: what revisits found changed, newest first, each with the answer it
//! replaced (`page_changes`), so that someone watching sites reads the news without SQL.

use std::io::Write;

use super::output::Format;
use super::pages::Since;
use super::reader::{Reader, Statement};
use super::{Answer, QueryError};

#[derive(Debug, Clone, clap::Args)]
pub struct ChangesArgs {
    /// Only this page's changes: its history.
    #[arg(long, value_name = "URL", conflicts_with = "host")]
    pub url: Option<String>,
    /// Only pages on this host: `example.com` (any port), or `example.com:8080` (that port only).
    #[arg(long, value_parser = super::host_parser())]
    pub host: Option<String>,
    /// Only changes seen since a time (`2025-01-31`, `2025-01-31T12:00:00Z`), a time ago
    /// (`90min`, `2h`, `3days`), or the start of the last run (`last-run`), as `pages
    /// --since` reads it.
    #[arg(long)]
    pub since: Option<Since>,
    /// Rows at most; 0 for all.
    #[arg(long, default_value_t = 100, value_parser = super::rows, allow_negative_numbers = true)]
    pub limit: u64,
}

/// What a change changed, as the store's rule (`changed_at` in `store::db::PAGE_UPSERT`)
/// tells one: `status`, `location` (a redirect's target), `title`, `body` (its hash, under
/// the same status), `size` (of a document not downloaded), or else `validators`, which
/// `page_changes` does not keep. By status and title alone a redirect leading elsewhere
/// now, a PDF grown, or a page's text changed under its title read "301 301" or
/// "200 200", the same before and after.
const WHAT_CHANGED: &str = "coalesce(nullif(substr(
             CASE WHEN old_status IS DISTINCT FROM new_status THEN ', status' ELSE '' END
             || CASE WHEN old_location IS DISTINCT FROM new_location THEN ', location' ELSE '' END
             || CASE WHEN old_title IS DISTINCT FROM new_title THEN ', title' ELSE '' END
             || CASE WHEN old_status IS NOT DISTINCT FROM new_status
                      AND old_content_hash IS DISTINCT FROM new_content_hash
                     THEN ', body' ELSE '' END
             || CASE WHEN old_status IS NOT DISTINCT FROM new_status
                      AND old_content_hash IS NULL AND new_content_hash IS NULL
                      AND new_status BETWEEN 200 AND 299
                      AND old_bytes IS DISTINCT FROM new_bytes
                     THEN ', size' ELSE '' END,
             3), ''), 'validators')";

/// Newest first, in the order of `page_changes_time`, so that the first rows come at
/// once however long the history; the row id orders changes stored at one time.
pub(super) async fn answer(
    conn: &mut Reader,
    args: &ChangesArgs,
    format: Format,
    out: &mut dyn Write,
) -> Result<Answer, QueryError> {
    let limit = super::limit(args.limit);
    let mut q = Statement::new(format!(
        "SELECT changed_at, url, {WHAT_CHANGED} AS changed, old_status, new_status,
                old_title, new_title
         FROM page_changes WHERE 1 = 1"
    ));
    if let Some(given) = &args.url {
        let url = super::normalize_url(given)?;
        if !watched(conn, &url).await? {
            return Err(QueryError::not_crawled(given, url));
        }
        q.push(" AND url = ").push_bind(url);
    }
    if let Some(host) = &args.host {
        super::push_host_filter(&mut q, "url", host);
    }
    if let Some(since) = &args.since {
        let since = since.time(conn).await?;
        q.push(" AND changed_at >= ").push_bind(since);
    }
    q.push(" ORDER BY changed_at DESC, id DESC");
    super::push_limit(&mut q, limit);
    super::print_rows(conn, &q, format, out, 0, limit).await
}

/// Whether the crawl stored `url`, or keeps changes of it: an empty history of a URL it
/// never stored read as "no change" to someone who mistyped it, or asked `https://` of a
/// site crawled over `http://`.
async fn watched(conn: &mut Reader, url: &str) -> Result<bool, QueryError> {
    let mut q = Statement::new("SELECT 1 WHERE EXISTS (SELECT 1 FROM pages WHERE url = ");
    q.push_bind(url)
        .push(") OR EXISTS (SELECT 1 FROM page_changes WHERE url = ")
        .push_bind(url)
        .push(")");
    Ok(conn.integer(&q).await?.is_some())
}
