//! `query links`: what a page links to, or what links to a URL.

use std::io::Write;

use super::output::Format;
use super::reader::{Reader, Statement};
use super::{Answer, QueryError};

/// One of `--from` and `--to`, as a group: a requirement on `--from` alone was said as
/// "`--from` is required", which hid that `--to` would do.
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("url").args(["from", "to"]).required(true)))]
pub struct LinksArgs {
    /// The links on this page, each with its target's status (after redirects).
    #[arg(long, value_name = "URL")]
    pub from: Option<String>,
    /// The links to this URL, also through redirects that end there, each with the
    /// linking page.
    #[arg(long, value_name = "URL")]
    pub to: Option<String>,
    /// Rows at most; 0 for all.
    #[arg(long, default_value_t = 0)]
    pub limit: u64,
}

pub(super) async fn answer(
    conn: &mut Reader,
    args: &LinksArgs,
    format: Format,
    out: &mut dyn Write,
) -> Result<Answer, QueryError> {
    let limit = super::limit(args.limit);
    let mut q = match (&args.from, &args.to) {
        (Some(from), _) => from_page(conn, &super::normalize_url(from)?).await?,
        (None, Some(to)) => to_url(super::normalize_url(to)?),
        (None, None) => unreachable!("clap requires --from or --to"),
    };
    super::push_limit(&mut q, limit);
    super::print_rows(conn, &q, format, out, 0, limit).await
}

/// A target's status is where its redirects end, as a browser would see it; a target
/// that was not crawled (out of scope, or not reached yet) has neither status nor error.
async fn from_page(conn: &mut Reader, url: &str) -> Result<Statement, QueryError> {
    let mut find = Statement::new("SELECT id FROM pages WHERE url = ");
    find.push_bind(url);
    let Some(id) = conn.integer(&find).await? else {
        return Err(QueryError::NotCrawled {
            url: url.to_owned(),
        });
    };
    let mut q = Statement::new(
        "SELECT l.target_url, l.anchor_text, l.rel,
                CASE WHEN e.id IS NOT NULL THEN e.status ELSE t.status END AS status,
                CASE WHEN e.id IS NOT NULL THEN e.error_kind ELSE t.error_kind END AS error_kind,
                CASE WHEN t.location IS NOT NULL THEN t.final_url END AS redirects_to
         FROM links l
         LEFT JOIN pages t ON t.url = l.target_url
         LEFT JOIN pages e ON t.location IS NOT NULL AND t.error_kind IS NULL
                          AND e.url = t.final_url
         WHERE l.source_id = ",
    );
    q.push_bind(id).push(" ORDER BY l.id");
    Ok(q)
}

/// Links straight to `url`, and to redirects whose chain ends at it (`target_url` says
/// which). A page may link to both with one anchor text: the target orders those two, or
/// each backend lists them in its own order (and `--limit` keeps different rows).
fn to_url(url: String) -> Statement {
    let mut q = Statement::new(
        "SELECT s.url AS page, l.anchor_text, l.rel, s.status, l.target_url
         FROM links l JOIN pages s ON s.id = l.source_id
         WHERE l.target_url IN (SELECT ",
    );
    q.push_bind(url.as_str())
        .push(" UNION SELECT url FROM pages WHERE location IS NOT NULL AND final_url = ")
        .push_bind(url)
        .push(") ORDER BY s.url, l.anchor_text, l.target_url");
    q
}
