//! `query top`: the most linked-to URLs, by distinct linking pages.

use std::io::Write;

use super::output::Format;
use super::reader::{Reader, Statement};
use super::{Answer, QueryError};

#[derive(Debug, Clone, clap::Args)]
pub struct TopArgs {
    /// Only URLs on this host: `example.com` (any port), or `example.com:8080` (that port only).
    #[arg(long, value_parser = super::host_parser())]
    pub host: Option<String>,
    /// Rows at most; 0 for all.
    #[arg(long, default_value_t = 20, value_parser = super::rows, allow_negative_numbers = true)]
    pub limit: u64,
}

/// Counts come from `inlinks`, which the writer keeps as links are stored: counting distinct
/// linking pages here would read every link (as it does while the writer keeps none).
pub(super) async fn answer(
    conn: &mut Reader,
    args: &TopArgs,
    format: Format,
    out: &mut dyn Write,
) -> Result<Answer, QueryError> {
    let limit = super::limit(args.limit);
    let mut q = Statement::new(format!(
        "SELECT i.url, i.linking_pages, i.links, p.status, p.title
         FROM (SELECT url, linking_pages, links FROM {} AS counted WHERE 1 = 1",
        super::inlinks(conn).await?
    ));
    if let Some(host) = &args.host {
        super::push_host_filter(&mut q, "url", host);
    }
    // The limit goes inside, so only the rows shown are joined with their pages.
    q.push(" ORDER BY linking_pages DESC, url");
    super::push_limit(&mut q, limit);
    q.push(
        ") AS i LEFT JOIN pages p ON p.url = i.url
         ORDER BY i.linking_pages DESC, i.url",
    );
    super::print_rows(conn, &q, format, out, 0, limit).await
}
