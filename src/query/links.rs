//! `query links`: what a page links to, or what links to a URL.

use std::io::Write;

use super::output::{Cell, Format};
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
    #[arg(long, default_value_t = 0, value_parser = super::rows, allow_negative_numbers = true)]
    pub limit: u64,
}

pub(super) async fn answer(
    conn: &mut Reader,
    args: &LinksArgs,
    format: Format,
    out: &mut dyn Write,
) -> Result<Answer, QueryError> {
    let limit = super::limit(args.limit);
    let (mut q, note) = match (&args.from, &args.to) {
        (Some(from), _) => from_page(conn, from, &super::normalize_url(from)?).await?,
        (None, Some(to)) => (to_url(super::normalize_url(to)?), None),
        (None, None) => unreachable!("clap requires --from or --to"),
    };
    super::push_limit(&mut q, limit);
    let mut answer = super::print_rows(conn, &q, format, out, 0, limit).await?;
    answer.notes.extend(note);
    Ok(answer)
}

/// The page `links --from` asks about: its id, and what it redirects to, if anything.
#[derive(Default)]
struct Source {
    id: Option<i64>,
    status: Option<i64>,
    location: Option<String>,
    /// Where its chain ends, when that page was read for links (not a 404, nor the
    /// redirect a loop ends at).
    ends_at: Option<String>,
    /// The hop its chain stops at as a `redirect` error (a loop closing there, one
    /// redirect too many, no `Location`), and the error's message.
    stops_at: Option<(String, String)>,
    /// Its own `redirect` error, when it has no `location` to go on to (none given, or
    /// none a URL).
    leads_nowhere: Option<String>,
}

/// A target's status is where its redirects end, as a browser would see it; a target
/// that was not crawled (out of scope, or not reached yet) has neither status nor error.
/// A redirect has no links of its own (its body is not read): the note says so, and
/// where its chain ends (or the hop it stops at, a loop's), rather than leave an empty
/// answer that reads as a page linking nowhere. `given` is `url` as the user wrote it.
async fn from_page(
    conn: &mut Reader,
    given: &str,
    url: &str,
) -> Result<(Statement, Option<String>), QueryError> {
    let mut find = Statement::new(
        "SELECT p.id, p.status, p.location, e.url, f.url, f.error,
                CASE WHEN p.error_kind = 'redirect' THEN p.error END
         FROM pages p
         LEFT JOIN pages e ON e.url = p.final_url AND e.links_left_out IS NOT NULL
         LEFT JOIN pages f ON f.url = p.final_url AND f.error_kind = 'redirect'
         WHERE p.url = ",
    );
    find.push_bind(url);
    let mut source = Source::default();
    conn.each_row(&find, |_, cells| {
        let text = |i: usize| match cells.get(i) {
            Some(Cell::Text(text)) => Some((*text).to_owned()),
            _ => None,
        };
        let int = |i: usize| match cells.get(i) {
            Some(Cell::Int(n)) => Some(*n),
            _ => None,
        };
        source = Source {
            id: int(0),
            status: int(1),
            location: text(2),
            ends_at: text(3),
            stops_at: text(4).zip(text(5)),
            leads_nowhere: text(6),
        };
        Ok(false)
    })
    .await?;
    let Some(id) = source.id else {
        return Err(QueryError::not_crawled(given, url.to_owned()));
    };
    let status = source.status.map_or(String::new(), |s| format!(" ({s})"));
    let note = match (source.location, source.leads_nowhere) {
        (Some(location), _) => {
            let mut note =
                format!("{url} is a redirect{status} to {location}, and a redirect has no links");
            if let Some(end) = source.ends_at {
                note.push_str(&format!(": `links --from {end}` lists those where it ends"));
            } else if let Some((hop, error)) = source.stops_at {
                note.push_str(&format!(": its chain stops at {hop}: {error}"));
            }
            Some(note)
        }
        (None, Some(error)) => Some(format!(
            "{url} is a redirect{status} that leads nowhere ({error}), and a redirect has no \
             links"
        )),
        (None, None) => None,
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
    Ok((q, note))
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
