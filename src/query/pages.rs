//! `query pages`: the pages crawled, filtered and sorted.

use std::io::Write;
use std::str::FromStr;
use std::time::SystemTime;

use super::dialect::Dialect;
use super::fold::TitleMatch;
use super::output::{Cell, Format};
use super::reader::{Reader, Statement};
use super::{Answer, QueryError};
use crate::page::ErrorKind;

#[derive(Debug, Clone, clap::Args)]
pub struct PagesArgs {
    /// Only pages on this host: `example.com` (any port), or `example.com:8080` (that port only).
    #[arg(long, value_parser = super::host_parser())]
    pub host: Option<String>,
    /// Only these statuses, comma-separated: codes (`404`), classes (`4xx`), or `error`
    /// for no response (network errors, robots.txt). One naming redirects (`3xx`, `301`)
    /// shows each one's `location` too.
    #[arg(long, value_delimiter = ',')]
    pub status: Vec<StatusFilter>,
    /// Only pages that failed so, comma-separated (`timeout,dns`): the kinds `error_kind`
    /// holds. Each page's message is in its `error` column (`query sql`).
    #[arg(long, value_delimiter = ',', value_parser = error_kinds())]
    pub error_kind: Vec<String>,
    /// Only pages this many links from a seed.
    #[arg(long)]
    pub depth: Option<u32>,
    /// Only pages at most this many links from a seed.
    #[arg(long, conflicts_with = "depth")]
    pub max_depth: Option<u32>,
    /// Only this content type (`text/html`), or those starting so (`image/`).
    #[arg(long)]
    pub content_type: Option<String>,
    /// Only pages whose title contains this, in any case and Unicode form.
    #[arg(long, value_parser = TitleText)]
    pub title: Option<String>,
    /// Only pages fetched since a time (`2025-01-31`, `2025-01-31T12:00:00Z`, UTC unless
    /// an offset says otherwise: `2025-01-31T13:00:00+01:00`), a time ago (`90min`, `2h`,
    /// `3days`), or the start of the last run (`last-run`).
    #[arg(long)]
    pub since: Option<Since>,
    /// Order of the rows; `bytes` and `elapsed` show their figure too.
    #[arg(long, value_enum, default_value_t = PageOrder::Url)]
    pub sort: PageOrder,
    /// Largest (or latest, or last) first.
    #[arg(long)]
    pub desc: bool,
    /// Rows at most; 0 for all.
    #[arg(long, default_value_t = 100, value_parser = super::rows, allow_negative_numbers = true)]
    pub limit: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PageOrder {
    Url,
    Status,
    Depth,
    Title,
    /// When fetched.
    Fetched,
    /// Body size.
    Bytes,
    /// Time the request took.
    Elapsed,
}

impl PageOrder {
    fn column(self) -> &'static str {
        match self {
            Self::Url => "url",
            Self::Status => "status",
            Self::Depth => "depth",
            Self::Title => "title",
            Self::Fetched => "fetched_at",
            Self::Bytes => "bytes",
            Self::Elapsed => "elapsed_ms",
        }
    }

    /// The column to show besides the usual ones: the figure the rows are sorted by,
    /// which "the largest pages" or "the slowest" is asked for, not only their order.
    fn shown(self) -> &'static str {
        match self {
            Self::Bytes => ", bytes",
            Self::Elapsed => ", elapsed_ms",
            Self::Url | Self::Status | Self::Depth | Self::Title | Self::Fetched => "",
        }
    }

    /// Whether pages may lack the value: `NULLS LAST` keeps those last, but PostgreSQL
    /// walks an index backwards only in its own order (`DESC NULLS FIRST`), so the
    /// columns every page has go without it.
    fn nullable(self) -> bool {
        !matches!(self, Self::Url | Self::Depth | Self::Fetched)
    }
}

/// `--error-kind`'s values: a kind no row can hold (a slip, `timout`) is refused with
/// the kinds there are, where it would have matched nothing.
fn error_kinds() -> clap::builder::PossibleValuesParser {
    let kinds = ErrorKind::ALL.map(ErrorKind::as_str);
    clap::builder::PossibleValuesParser::new(kinds.into_iter().chain([crate::summary::TRAP]))
}

/// One `--status` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    Code(u16),
    /// `4xx`: the hundreds digit.
    Class(u16),
    /// No response at all.
    Error,
}

impl StatusFilter {
    /// Whether the filter takes redirects' rows (3xx).
    fn takes_redirects(self) -> bool {
        match self {
            Self::Code(code) => (300..400).contains(&code),
            Self::Class(digit) => digit == 3,
            Self::Error => false,
        }
    }
}

impl FromStr for StatusFilter {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().to_ascii_lowercase();
        let wrong =
            || format!("`{s}` is not a status: give a code (404), a class (4xx) or `error`");
        if s == "error" {
            return Ok(Self::Error);
        }
        if let Some(digit) = s.strip_suffix("xx") {
            return match digit.parse::<u16>() {
                Ok(d @ 1..=5) => Ok(Self::Class(d)),
                _ => Err(wrong()),
            };
        }
        match s.parse::<u16>() {
            Ok(code @ 100..=999) => Ok(Self::Code(code)),
            _ => Err(wrong()),
        }
    }
}

/// `--title`'s text, refused when longer than any title stored: it could match none
/// (but, typed decomposed, a shorter title stored composed, which a slip that long does
/// not mean). A text that long is a slip (a file or a page pasted), which an empty answer
/// would hide. Refused as clap
/// refuses a wrong argument (exit 2), in words that do not repeat the text.
#[derive(Debug, Clone, Copy)]
struct TitleText;

impl clap::builder::TypedValueParser for TitleText {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        let text = clap::builder::StringValueParser::new().parse_ref(cmd, arg, value)?;
        let longest = crate::parser::MAX_TEXT_BYTES;
        if text.len() > longest {
            let message = format!(
                "--title is {} bytes long, and no stored title is longer than {longest} bytes \
                 (a crawl cuts a longer one there): search for a part of it\n",
                text.len()
            );
            return Err(
                clap::Error::raw(clap::error::ErrorKind::ValueValidation, message).with_cmd(cmd),
            );
        }
        Ok(text)
    }
}

/// A `--since` bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Since {
    /// A time, spelled like `pages.fetched_at` so the two compare as text.
    At(String),
    /// When the run that started last began (`last-run`): what a nightly job's next step
    /// asks of the crawl that just ran, whose start it does not know. The last by `id`,
    /// not the latest `started_at`: after a run on a clock that was ahead, the latest is
    /// that run's, and the runs since would be left out.
    LastRun,
}

impl Since {
    /// The time it names, spelled like `pages.fetched_at`. A database that records no
    /// run (none yet, or last written before `runs`) has no last run to begin at: an
    /// empty answer would read as "nothing changed".
    pub(super) async fn time(&self, conn: &mut Reader) -> Result<String, QueryError> {
        match self {
            Self::At(time) => Ok(time.clone()),
            Self::LastRun => {
                let mut started = None;
                if conn.has_table("runs") {
                    let last =
                        Statement::new("SELECT started_at FROM runs ORDER BY id DESC LIMIT 1");
                    conn.each_row(&last, |_, cells| {
                        if let Some(Cell::Text(time)) = cells.first() {
                            started = Some((*time).to_owned());
                        }
                        Ok(false)
                    })
                    .await?;
                }
                started.ok_or_else(|| QueryError::NoRunRecorded {
                    database: conn.database().to_owned(),
                })
            }
        }
    }
}

impl FromStr for Since {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        use std::fmt::Write as _;
        let s = s.trim();
        if s.eq_ignore_ascii_case("last-run") {
            return Ok(Self::LastRun);
        }
        let bad = || {
            format!(
                "`{s}` is neither a time (2025-01-31, 2025-01-31T12:00:00Z, \
                 2025-01-31T13:00:00+01:00), a time ago (2h, 3days) nor `last-run`"
            )
        };
        let at = if let Ok(ago) = humantime::parse_duration(s) {
            SystemTime::now()
                .checked_sub(ago)
                .unwrap_or(SystemTime::UNIX_EPOCH)
        } else {
            let (time, east) = split_offset(s);
            let full = in_full(time);
            let local = match parse_time(&full) {
                Some(local) => local,
                None if past_year_9999(&full) => return Err(too_late(s)),
                None => return Err(bad()),
            };
            crate::zone::to_utc(local, east).ok_or_else(bad)?
        };
        // No page was fetched before 1970 (`--since 100years`, `--since 1969-12-31` ask
        // for all), and humantime spells no time before it, nor one after 9999: it
        // panicked on both.
        let at = at.max(SystemTime::UNIX_EPOCH);
        let mut spelled = String::new();
        // With milliseconds, as in fetched_at: without them a page fetched in the very
        // second given would sort before the bound.
        // humantime spells no time after 9999.
        write!(spelled, "{}", humantime::format_rfc3339_millis(at)).map_err(|_| too_late(s))?;
        Ok(Self::At(spelled))
    }
}

/// What a `--since` after the year 9999 is told: it was "neither a time … nor a time
/// ago", of a time.
fn too_late(s: &str) -> String {
    format!(
        "`{s}` is after the year 9999, which pages.fetched_at cannot spell: no page is that new"
    )
}

/// Whether `text` starts with a year of five digits or more: a time humantime reads none of.
fn past_year_9999(text: &str) -> bool {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    digits > 4 && text.as_bytes().get(digits) == Some(&b'-') && !text.starts_with('0')
}

/// Seconds in the Gregorian calendar's cycle of 400 years, after which its leap years
/// repeat.
const CYCLE_SECS: u64 = 146_097 * 86_400;

/// The instant of `text` (RFC 3339, read as UTC), before 1970 too, where humantime reads
/// none ("1969-12-31" was said to be "neither a time … nor a time ago"): such a year is
/// read some cycles of 400 years later, the calendar being the same then, and the instant
/// moved back by as many.
fn parse_time(text: &str) -> Option<SystemTime> {
    if let Ok(at) = humantime::parse_rfc3339_weak(text) {
        return Some(at);
    }
    let (year, rest) = text.split_at_checked(4)?;
    if !year.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: u32 = year.parse().ok()?;
    let cycles = 1970_u32.checked_sub(year)?.div_ceil(400);
    let later = humantime::parse_rfc3339_weak(&format!("{}{rest}", year + 400 * cycles)).ok()?;
    later.checked_sub(std::time::Duration::from_secs(
        u64::from(cycles) * CYCLE_SECS,
    ))
}

/// `time`, its offset split off, spelled as humantime reads it: a day is its midnight, a
/// time of hours or minutes alone (GNU `date -Ihours`, `-Iminutes`) their first second,
/// a comma before a fraction (`date -Ins`) a point, and RFC 3339's lower-case `t` and
/// `z` capitals.
fn in_full(time: &str) -> String {
    let time = time.to_ascii_uppercase().replace(',', ".");
    let bare = time.strip_suffix('Z').unwrap_or(&time);
    let rest = match bare.len() {
        10 => "T00:00:00",
        13 => ":00:00",
        16 => ":00",
        _ => "",
    };
    format!("{bare}{rest}Z")
}

/// `2025-01-31T13:30:00+01:00` → (`2025-01-31T13:30:00`, 3600 seconds east of UTC); a
/// time with no offset (or `Z`) is in UTC.
fn split_offset(s: &str) -> (&str, i64) {
    for len in [6, 5] {
        let Some(at) = s.len().checked_sub(len).filter(|at| *at > 10) else {
            continue;
        };
        if let Some(east) = s.get(at..).and_then(crate::zone::offset_secs) {
            return (&s[..at], east);
        }
    }
    (s, 0)
}

pub(super) async fn answer(
    conn: &mut Reader,
    args: &PagesArgs,
    format: Format,
    out: &mut dyn Write,
) -> Result<Answer, QueryError> {
    let since = match &args.since {
        Some(since) => Some(since.time(conn).await?),
        None => None,
    };
    let title = args.title.as_deref().map(TitleMatch::new);
    let q = statement(conn.dialect(), args, since, title.as_ref());
    let limit = super::limit(args.limit);
    let Some(title) = title else {
        return super::print_rows(conn, &q, format, out, 0, limit).await;
    };
    let keep = |cells: &[Cell<'_>]| match cells.get(TITLE) {
        Some(Cell::Text(text)) => title.is_in(text),
        Some(Cell::NotUtf8(bytes)) => title.is_in(&String::from_utf8_lossy(bytes)),
        _ => false,
    };
    let sink = super::output::sink(format, out, 0);
    super::print_kept(conn, &q, sink, limit, &keep).await
}

/// The title's place among the columns [`statement`] selects.
const TITLE: usize = 5;

/// The SQL of a `pages` question, `since` the time its `--since` names and `title` its
/// `--title`, folded.
fn statement(
    dialect: Dialect,
    args: &PagesArgs,
    since: Option<String>,
    title: Option<&TitleMatch>,
) -> Statement {
    // Redirects asked for are asked for where they go (a site migration's audit), a column
    // after the usual ones, which scripts read by place.
    let location = if args.status.iter().any(|status| status.takes_redirects()) {
        ", location"
    } else {
        ""
    };
    let mut q = Statement::new(format!(
        "SELECT url, status, error_kind, content_type, depth, title, fetched_at{location}{}
         FROM pages WHERE 1 = 1",
        args.sort.shown()
    ));
    if let Some(host) = &args.host {
        super::push_host_filter(&mut q, "url", host);
    }
    push_status_filter(&mut q, &args.status);
    if !args.error_kind.is_empty() {
        q.push(" AND error_kind IN (");
        for (i, kind) in args.error_kind.iter().enumerate() {
            if i > 0 {
                q.push(", ");
            }
            q.push_bind(kind.clone());
        }
        q.push(")");
    }
    if let Some(depth) = args.depth {
        q.push(" AND depth = ").push_bind(i64::from(depth));
    }
    if let Some(depth) = args.max_depth {
        q.push(" AND depth <= ").push_bind(i64::from(depth));
    }
    if let Some(content_type) = &args.content_type {
        // A prefix in any case of ASCII letters, as a range of the index of the folded
        // type (migration `0011_content_type_folded.sql`), where `LIKE` reads every page.
        let (from, to) = prefix_range(&content_type.trim().to_ascii_lowercase());
        q.push(" AND lower(content_type) >= ").push_bind(from);
        if let Some(to) = to {
            q.push(" AND lower(content_type) < ").push_bind(to);
        }
    }
    if let Some(title) = title {
        // Titles are matched as their rows stream by (`answer`); SQL keeps those that can
        // match: any title not in ASCII, and those in ASCII holding the text.
        q.push(" AND (octet_length(title) <> length(title)");
        if let Some(ascii) = title.ascii() {
            q.push(format_args!(" OR title {} ", dialect.like_any_case()))
                .push_bind(format!("%{}%", super::like_escape(ascii)))
                .push(" ESCAPE '\\'");
        }
        q.push(")");
    }
    if let Some(since) = since {
        q.push(" AND fetched_at >= ").push_bind(since);
    }
    let direction = if args.desc { "DESC" } else { "ASC" };
    let filtered = !args.status.is_empty()
        || !args.error_kind.is_empty()
        || args.depth.is_some()
        || args.max_depth.is_some()
        || args.content_type.is_some()
        || title.is_some()
        || args.since.is_some();
    // Walking a column's index in order costs a row lookup per page, however few match;
    // with a filter, sorting the matches is cheaper. Without one, the index serves the
    // first rows at once where a sort would read every page.
    let key = |column: &str, filtered: bool| {
        if filtered {
            dialect.unindexed(column)
        } else {
            column.to_owned()
        }
    };
    match args.sort {
        // A host filter is itself a range of the url index, so that one stays.
        PageOrder::Url => q.push(format_args!(
            " ORDER BY {} {direction}",
            key("url", filtered && args.host.is_none())
        )),
        // Rows without the value (no status, no title) last either way: they say least.
        // `NULLS LAST` rather than a `column IS NULL` key, which no index serves.
        order => q.push(format_args!(
            " ORDER BY {} {direction}{}, url",
            key(order.column(), filtered || args.host.is_some()),
            if order.nullable() { " NULLS LAST" } else { "" }
        )),
    };
    if title.is_none() {
        super::push_limit(&mut q, super::limit(args.limit));
    }
    q
}

/// The text that starts with `prefix` as a range: from `prefix` to the first text past
/// all of them, its last character's successor in place of it (text compares as UTF-8
/// bytes, which keep the order of characters); no end when every character is the last.
fn prefix_range(prefix: &str) -> (String, Option<String>) {
    let mut to = prefix.to_owned();
    while let Some(last) = to.pop() {
        let next = (u32::from(last) + 1..=u32::from(char::MAX)).find_map(char::from_u32);
        if let Some(next) = next {
            to.push(next);
            return (prefix.to_owned(), Some(to));
        }
    }
    (prefix.to_owned(), None)
}

fn push_status_filter(q: &mut Statement, filters: &[StatusFilter]) {
    if filters.is_empty() {
        return;
    }
    q.push(" AND (");
    for (i, filter) in filters.iter().enumerate() {
        if i > 0 {
            q.push(" OR ");
        }
        match *filter {
            StatusFilter::Code(code) => {
                q.push("status = ").push_bind(i64::from(code));
            }
            StatusFilter::Class(digit) => {
                q.push("status BETWEEN ")
                    .push_bind(i64::from(digit) * 100)
                    .push(" AND ")
                    .push_bind(i64::from(digit) * 100 + 99);
            }
            StatusFilter::Error => {
                q.push("status IS NULL");
            }
        }
    }
    q.push(")");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_codes_classes_or_error() {
        assert_eq!("404".parse(), Ok(StatusFilter::Code(404)));
        assert_eq!("5XX".parse(), Ok(StatusFilter::Class(5)));
        assert_eq!("error".parse(), Ok(StatusFilter::Error));
        for bad in ["6xx", "42", "four", "xx"] {
            assert!(bad.parse::<StatusFilter>().is_err(), "{bad}");
        }
    }

    #[test]
    fn since_takes_dates_times_and_durations_and_spells_them_like_fetched_at() {
        assert_eq!(
            "2025-01-31".parse(),
            Ok(Since::At("2025-01-31T00:00:00.000Z".to_owned()))
        );
        assert_eq!(
            "2025-01-31T12:30:00Z".parse(),
            Ok(Since::At("2025-01-31T12:30:00.000Z".to_owned()))
        );
        let recent = "2h".parse().expect("a duration");
        assert!(
            matches!(&recent, Since::At(t) if t.ends_with('Z') && t.len() == 24),
            "{recent:?}"
        );
        assert!("yesterday-ish".parse::<Since>().is_err());
        assert_eq!("Last-Run".parse(), Ok(Since::LastRun));
    }

    /// `pages --sort fetched --desc` (the latest pages), `--sort depth` and `--sort
    /// status` on a whole crawl: each column has its index, which serves the first
    /// rows in order, rather than every page read and sorted.
    #[tokio::test]
    async fn a_sort_with_no_filter_walks_the_columns_index() {
        assert_sorted_through_indexes(&[PageOrder::Fetched, PageOrder::Depth, PageOrder::Status])
            .await;
    }

    #[test]
    fn a_prefix_range_ends_at_the_first_text_past_the_prefix() {
        let range = |p: &str| prefix_range(p);
        assert_eq!(
            range("image/"),
            ("image/".to_owned(), Some("image0".to_owned()))
        );
        assert_eq!(
            range("x\u{d7ff}"),
            ("x\u{d7ff}".to_owned(), Some("x\u{e000}".to_owned()))
        );
        assert_eq!(
            range("a\u{10ffff}"),
            ("a\u{10ffff}".to_owned(), Some("b".to_owned()))
        );
        assert_eq!(range(""), (String::new(), None));
    }

    /// `pages --sort bytes --desc` (the heaviest pages) and `--sort elapsed --desc` (the
    /// slowest) on a whole crawl: the first rows from an index, not every page sorted.
    #[tokio::test]
    async fn the_heaviest_and_slowest_pages_come_from_an_index() {
        assert_sorted_through_indexes(&[PageOrder::Bytes, PageOrder::Elapsed]).await;
    }

    /// Each of `sorts`, either way, with no filter: the first rows from an index.
    async fn assert_sorted_through_indexes(sorts: &[PageOrder]) {
        let (_dir, mut reader) = crate::query::plan::reader().await;
        for &sort in sorts {
            for desc in [false, true] {
                let args = PagesArgs {
                    sort,
                    desc,
                    ..unfiltered()
                };
                let q = statement(Dialect::Sqlite, &args, None, None);
                crate::query::plan::assert_indexed(&mut reader, &q, "pages", true).await;
            }
        }
    }

    fn unfiltered() -> PagesArgs {
        PagesArgs {
            host: None,
            status: Vec::new(),
            error_kind: Vec::new(),
            depth: None,
            max_depth: None,
            content_type: None,
            title: None,
            since: None,
            sort: PageOrder::Url,
            desc: false,
            limit: 100,
        }
    }

    /// `pages --content-type image/` on a crawl of a million pages, a few thousand of
    /// them images: the pages of that type are found through an index, in any case
    /// (`Image/PNG` too), rather than by reading every page.
    #[tokio::test]
    async fn a_content_type_is_found_through_an_index() {
        let (_dir, mut reader) = crate::query::plan::reader().await;
        for sort in [PageOrder::Url, PageOrder::Fetched] {
            let args = PagesArgs {
                content_type: Some("image/".to_owned()),
                sort,
                ..unfiltered()
            };
            let q = statement(Dialect::Sqlite, &args, None, None);
            crate::query::plan::assert_indexed(&mut reader, &q, "pages", false).await;
        }
    }

    /// `date -Iseconds` on a machine east or west of UTC spells its offset
    /// (`2025-01-31T13:30:00+01:00`); such a time was refused as "neither a time nor a
    /// time ago". It is the instant it names, compared in UTC.
    #[test]
    fn since_takes_a_time_with_a_utc_offset_as_the_instant_it_names() {
        let utc = Ok(Since::At("2025-01-31T12:30:00.000Z".to_owned()));
        for spelled in [
            "2025-01-31T13:30:00+01:00",
            "2025-01-31T07:00:00-05:30",
            "2025-01-31T12:30:00+00:00",
            "2025-01-31T13:30:00+0100",
        ] {
            assert_eq!(spelled.parse(), utc, "{spelled}");
        }
        assert_eq!(
            "2025-02-01T00:30:00.250+12:00".parse(),
            Ok(Since::At("2025-01-31T12:30:00.250Z".to_owned()))
        );
        for bad in ["2025-01-31T13:30:00+25:00", "2025-01-31T13:30:00+1:00"] {
            assert!(bad.parse::<Since>().is_err(), "{bad}");
        }
    }

    /// GNU `date`'s other ISO 8601 forms, `-Ihours` (`2025-01-31T13+01:00`), `-Iminutes`
    /// (`2025-01-31T13:30+01:00`) and `-Ins` (a comma before the fraction), and RFC
    /// 3339's lower-case `t` and `z`, were refused as "neither a time … nor a time ago".
    #[test]
    fn since_takes_the_times_gnu_date_and_rfc_3339_write() {
        let half_past = Ok(Since::At("2025-01-31T12:30:00.000Z".to_owned()));
        for spelled in [
            "2025-01-31T13:30+01:00",
            "2025-01-31T12:30Z",
            "2025-01-31 12:30",
            "2025-01-31t12:30:00z",
            "2025-01-31T13:30:00,000000000+01:00",
        ] {
            assert_eq!(spelled.parse(), half_past, "{spelled}");
        }
        assert_eq!(
            "2025-01-31T13+01:00".parse(),
            Ok(Since::At("2025-01-31T12:00:00.000Z".to_owned()))
        );
        assert_eq!(
            "2025-01-31T12:30:00,25Z".parse(),
            Ok(Since::At("2025-01-31T12:30:00.250Z".to_owned()))
        );
    }

    /// `--since 100years` ("everything") and `--since 1970-01-01T00:30:00+01:00` name
    /// times before 1970, and a time written west of UTC on the last day of 9999 one
    /// after it: all three panicked, as the time could not be spelled. Before 1970 is
    /// every page; after 9999 is refused as 10000-01-01 is.
    #[test]
    fn since_before_1970_is_every_page_and_after_9999_is_refused() {
        let epoch = Ok(Since::At("1970-01-01T00:00:00.000Z".to_owned()));
        assert_eq!("100years".parse(), epoch);
        assert_eq!("1970-01-01T00:30:00+01:00".parse(), epoch);
        assert_eq!("1969-12-31".parse(), epoch);
        assert_eq!("1968-02-29T12:00:00Z".parse(), epoch);
        assert_eq!(
            "1969-12-31T23:00:00-02:00".parse(),
            Ok(Since::At("1970-01-01T01:00:00.000Z".to_owned()))
        );
        for not_a_day in ["1969-02-29", "1969-13-01", "1900-02-29", "+969-01-01"] {
            assert!(not_a_day.parse::<Since>().is_err(), "{not_a_day}");
        }
        for too_late in [
            "9999-12-31T23:59:59-14:00",
            "10000-01-01",
            "12345-06-07T08:00:00Z",
        ] {
            let said = too_late.parse::<Since>().expect_err(too_late);
            assert!(said.contains("is after the year 9999"), "{said}");
        }
        assert!("00001-01-01".parse::<Since>().is_err());
    }
}
