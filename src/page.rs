//! The values that flow down the pipeline: a [`CrawlJob`] to fetch, a [`Fetched`] response
//! to parse, a [`PageRecord`] to store.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

/// One leased frontier row, on its way to a fetcher.
#[derive(Debug, Clone)]
pub struct CrawlJob {
    /// The `frontier.id` this job completes.
    pub id: i64,
    pub url: Url,
    pub host: Arc<str>,
    pub depth: u32,
    pub priority: i64,
    /// How many redirects led here; caps redirect chains across jobs.
    pub redirect_hops: u32,
    /// Requests already made for this URL (retries counted).
    pub attempts: u32,
    pub kind: JobKind,
    /// What the last visit stored, when this is a revisit.
    pub previous: Option<Box<Previous>>,
}

impl CrawlJob {
    /// A visit the recrawl schedule made: its row keeps the interval that scheduled it. A
    /// URL asked again after a failure (`--retry-failed`) has a page, and is not one.
    pub fn is_revisit(&self) -> bool {
        self.previous.as_ref().is_some_and(|p| p.interval.is_some())
    }

    /// The stored visit a 304 can say is current, whose validators a revisit sends: an
    /// answer, read whole. One not read whole is asked for whole: an answer that broke off
    /// (cut, slower than the timeout), and a sitemap none of whose bodies is stored (a URL
    /// fetched as a page before a sitemap named it); either would otherwise stay unread
    /// while the server's copy is unchanged. A failure (a 503, a timeout) is no version of
    /// the page at all: a 304 then answers a request that asked nothing, and is stored as
    /// the answer it is.
    pub fn validated(&self) -> Option<&Previous> {
        self.previous
            .as_deref()
            .filter(|p| p.answered && (self.kind == JobKind::Page || p.content_hash.is_some()))
    }

    /// Depth 0 is a seed's, and a redirect keeps its depth: a seed, or where one
    /// redirected.
    pub fn is_seed_or_its_redirect(&self) -> bool {
        self.depth == 0 && self.kind == JobKind::Page
    }
}

/// A page's last visit: validators for a conditional GET, what decides whether it
/// changed and when it is due again, and where its redirect chain ended.
#[derive(Debug, Clone, Default)]
pub struct Previous {
    pub status: Option<u16>,
    /// `pages.location`: where the page redirected.
    pub location: Option<String>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub content_hash: Option<String>,
    /// `pages.bytes`: a document not downloaded, served with no validators, tells a new
    /// version by its size alone.
    pub bytes: Option<u64>,
    /// `pages.final_url`: the redirects that led through this page ended there too.
    pub final_url: Option<String>,
    /// `pages.links_left_out`: a page past `traps.max_links_per_page` by as many links
    /// was named then.
    pub links_left_out: Option<u64>,
    /// The recrawl interval that made this visit due.
    pub interval: Option<Duration>,
    /// When this revisit fell due (`frontier.recrawl_at`, unix ms): the longest overdue
    /// of a host's revisits goes first.
    pub due_at: Option<i64>,
    /// The stored page is an answer (a response not worth asking again for): a revisit
    /// that fails for now leaves it as it is rather than replace it with the failure.
    pub answered: bool,
    /// The stored row records a request (see [`ErrorKind::requested`]): requested again,
    /// the URL adds no page to what `scope.max_pages` counts.
    pub requested: bool,
}

impl Previous {
    /// Whether `now`, this URL's record from a later visit, answers otherwise: another
    /// status or redirect target, another body (by its hash), or, for an answer with no
    /// body hashed (a redirect, an error page, a document not downloaded), other
    /// validators, and for a document (a 2xx) another size too: a script's PDF comes with
    /// no validators at all. An error page's size is not compared: it may carry the
    /// request's time or id, and says nothing of the page. The `changed_at` clause of
    /// `store::db::PAGE_UPSERT` says the same in SQL.
    pub fn differs_from(&self, now: &PageRecord) -> bool {
        let document = now.status.is_some_and(|s| (200..300).contains(&s));
        let same = self.status == now.status
            && self.location.as_deref() == now.location.as_ref().map(Url::as_str)
            && self.content_hash == now.content_hash
            && (now.content_hash.is_some()
                || (self.etag == now.etag
                    && self.last_modified == now.last_modified
                    && (!document || self.bytes == now.bytes)));
        !same
    }
}

/// What a URL is expected to be: a page to parse as HTML, or a sitemap listing URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    Page,
    Sitemap,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Page => "page",
            Self::Sitemap => "sitemap",
        }
    }

    /// The kind a frontier row's `kind` names; a page but for `sitemap`.
    pub fn from_stored(kind: &str) -> Self {
        match kind {
            "sitemap" => Self::Sitemap,
            _ => Self::Page,
        }
    }
}

/// Why a fetch produced no usable response. Stored as `pages.error_kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKind {
    Timeout,
    Connect,
    /// The host name does not resolve.
    Dns,
    /// The resolver could not answer for now (`EAI_AGAIN`: no DNS server reached, a
    /// SERVFAIL): the name may well exist, so the URL is tried again.
    DnsTemporary,
    Body,
    Request,
    Redirect,
    Parse,
    /// robots.txt disallows the URL; it was not requested.
    Robots,
    /// robots.txt could not be fetched (5xx, no answer), so nothing on the host may be.
    RobotsUnavailable,
    /// The host's address is not public and not allowed (SSRF guard); nothing connected.
    AddressRefused,
    /// A body served as HTML that is binary; it is not parsed.
    Binary,
    /// The response's headers were too large or too many (`fetch.max_header_bytes`,
    /// `fetch.max_headers`); nothing of it is used.
    Headers,
    /// The HTTPS server's certificate did not verify (`fetch.accept_invalid_certs`), or
    /// its handshake cannot succeed (plain HTTP on the port, no TLS version in common).
    Tls,
    /// The database refused to store what the fetch brought (a value it cannot hold, not
    /// an outage): the row keeps only the URL and why (see `store::Store::commit`).
    DatabaseRefused,
}

impl ErrorKind {
    pub const ALL: [Self; 15] = [
        Self::Timeout,
        Self::Connect,
        Self::Dns,
        Self::DnsTemporary,
        Self::Body,
        Self::Request,
        Self::Redirect,
        Self::Parse,
        Self::Robots,
        Self::RobotsUnavailable,
        Self::AddressRefused,
        Self::Binary,
        Self::Headers,
        Self::Tls,
        Self::DatabaseRefused,
    ];

    /// Whether a row of this kind records a request: a URL robots.txt disallows, and one
    /// on an address the guard refuses, are refused before any (a redirect is a row of
    /// its own, so a refused target was never asked either). `scope.max_pages` counts
    /// the pages requested, as Heritrix's and Scrapy's limits do, so that links to such
    /// URLs (a shop's `/cart?item=…` on every page, an intranet's links to `10.0.0.1`)
    /// do not use it up (`store::db::COUNTED_PAGES` says the same in SQL).
    pub fn requested(self) -> bool {
        !matches!(self, Self::Robots | Self::AddressRefused)
    }

    /// The kind stored as `text` (`pages.error_kind`).
    pub fn from_stored(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Connect => "connect",
            Self::Dns => "dns",
            Self::DnsTemporary => "dns_temporary",
            Self::Body => "body",
            Self::Request => "request",
            Self::Redirect => "redirect",
            Self::Parse => "parse",
            Self::Robots => "robots",
            Self::RobotsUnavailable => "robots_unavailable",
            Self::AddressRefused => "address_refused",
            Self::Binary => "binary",
            Self::Headers => "headers",
            Self::Tls => "tls",
            Self::DatabaseRefused => "database_refused",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct FetchError {
    pub kind: ErrorKind,
    pub message: String,
}

/// What the fetcher got for a job: a response (of any status) and/or an error.
#[derive(Debug)]
pub struct Fetched {
    pub job: CrawlJob,
    pub status: Option<u16>,
    pub content_type: Option<String>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// The redirect target, resolved and normalised, for a 3xx with a usable `Location`.
    pub location: Option<Url>,
    /// The cookies a request to `location` carries changed while this URL was asked (its
    /// answer set one, most often).
    pub changed_location_cookies: bool,
    /// The body, read only for successful HTML and cut at `fetch.max_body_bytes`.
    pub body: Option<Vec<u8>>,
    /// Bytes transferred: the body read, or the declared length of a body left unread.
    pub bytes: Option<u64>,
    pub truncated: bool,
    pub fetched_at: std::time::SystemTime,
    pub elapsed_ms: u64,
    pub error: Option<FetchError>,
    /// `X-Robots-Tag`, for the parser to honour with `<meta name="robots">`.
    pub x_robots_tag: Option<String>,
    /// The target a `Link: <…>; rel="canonical"` header names, as written: a document
    /// with no `<head>` (a PDF) names its canonical URL so.
    pub canonical_link: Option<String>,
    /// The `Refresh` header: browsers move the page as a `<meta http-equiv="refresh">`
    /// would, and before it.
    pub refresh: Option<String>,
    /// Sitemaps named by a robots.txt fetched for this job, to be crawled.
    pub sitemaps: Vec<Url>,
    /// Set when the outcome is transient: the URL goes back to the queue for this long
    /// instead of being stored.
    pub retry_in: Option<Duration>,
    /// How long the server asked the whole host to wait (a 429, 502, 503 or 504 the crawl waits
    /// for: a retry's wait, or the `Retry-After` of one kept as final), to be kept in
    /// `hosts.next_allowed_at` so that a kill does not lose it. None for every other
    /// answer, which costs the writer no statement.
    pub host_pause: Option<Duration>,
    /// The host's robots.txt as obeyed for this request (none when not obeyed), for the
    /// parser to tell which of the host's links it disallows.
    pub robots: Option<Arc<crate::robots::Robots>>,
}

impl Fetched {
    /// Says at debug level how the fetch ended, every way it can (a host that refused its
    /// robots.txt's connection too), each figure a field of its own type: a log pipeline
    /// reads `status` as a number and `error_kind` as `pages.error_kind` has it.
    pub fn log(&self) {
        let error = self.error.as_ref();
        let retry_in_ms = self
            .retry_in
            .map(|wait| u64::try_from(wait.as_millis()).unwrap_or(u64::MAX));
        tracing::debug!(
            url = %self.job.url,
            status = self.status,
            error_kind = error.map(|e| e.kind.as_str()),
            error = error.map(|e| e.message.as_str()),
            retry_in_ms,
            elapsed_ms = self.elapsed_ms,
            "fetched"
        );
    }

    /// `job` before its request: no response, nothing read, fetched now.
    pub fn new(job: CrawlJob) -> Self {
        Self {
            job,
            status: None,
            content_type: None,
            etag: None,
            last_modified: None,
            location: None,
            changed_location_cookies: false,
            body: None,
            bytes: None,
            truncated: false,
            fetched_at: std::time::SystemTime::now(),
            elapsed_ms: 0,
            error: None,
            x_robots_tag: None,
            canonical_link: None,
            refresh: None,
            sitemaps: Vec::new(),
            retry_in: None,
            host_pause: None,
            robots: None,
        }
    }

    pub fn is_html(&self) -> bool {
        self.content_type.as_deref().is_some_and(is_html_type)
    }

    /// Roughly the memory this response holds, its body above all: its share of
    /// `channels.max_bytes` while it waits for a parse thread. The sitemaps a host's
    /// first job carries count too: a robots.txt may name some 33,000 (3 MB of URLs).
    pub fn weight(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.body.as_ref().map_or(0, Vec::capacity)
            + held_by(&self.sitemaps)
    }
}

/// Bytes `urls` hold: a parsed `Url` each, and its text.
pub fn held_by(urls: &[Url]) -> usize {
    urls.iter()
        .map(|url| std::mem::size_of::<Url>() + url.as_str().len())
        .sum()
}

/// Whether a `Content-Type` value names HTML.
fn is_html_type(content_type: &str) -> bool {
    let mime = crate::sniff::essence(content_type);
    mime.eq_ignore_ascii_case("text/html") || mime.eq_ignore_ascii_case("application/xhtml+xml")
}

/// A link as stored: one per distinct (target, anchor text) on a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub target: Url,
    pub anchor_text: String,
    pub rel: Option<String>,
    /// Where the page's refresh moves it ([`crate::html::Anchor::refresh`]).
    pub refresh: bool,
}

/// A URL to add to the frontier, already scoped and prioritised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    pub url: Url,
    pub host: String,
    pub depth: u32,
    pub priority: i64,
    pub redirect_hops: u32,
    pub kind: JobKind,
    /// Why this URL looks like a crawler trap: it is recorded, not fetched.
    pub trap: Option<String>,
    /// Its host's robots.txt, as read for the page it was found on or held from an
    /// earlier request (another host's), disallows it: it is recorded as the fetcher
    /// would record it (`robots`), not queued, so it spends none of the host's
    /// `traps.max_pages_per_host`.
    pub disallowed: bool,
}

/// Everything the writer commits for one page, in one transaction.
#[derive(Debug)]
pub struct PageRecord {
    pub job: CrawlJob,
    pub status: Option<u16>,
    pub content_type: Option<String>,
    pub title: Option<String>,
    pub location: Option<Url>,
    /// The cookies a request to `location` carries changed while this URL was asked: a
    /// redirect back to a URL visited before is no loop, and the URL is asked again.
    pub changed_location_cookies: bool,
    pub bytes: Option<u64>,
    pub truncated: bool,
    pub content_hash: Option<String>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub fetched_at: std::time::SystemTime,
    pub elapsed_ms: u64,
    pub error: Option<FetchError>,
    pub canonical: Option<Url>,
    pub noindex: bool,
    pub nofollow: bool,
    pub links: Vec<Link>,
    /// Where the page's refresh moves it, when that is followed as its redirect (in scope,
    /// and within `fetch.max_redirects` in a row): a seed's takes its host into the scope,
    /// as a 3xx's does.
    pub refreshed_to: Option<Url>,
    /// How many distinct (target, anchor text) links past `traps.max_links_per_page` the
    /// page has, which are not in `links`; None when the page was not parsed.
    pub links_left_out: Option<u64>,
    /// Of a sitemap read for its URLs, the pages in scope it lists (each entry, known to
    /// the crawl or not); None for a page. The summary counts them, or a crawl that
    /// sitemaps fed told nothing of what they gave.
    pub sitemap_urls: Option<u64>,
    pub discovered: Vec<Discovered>,
    /// The URL is to be tried again after this long; nothing else is stored.
    pub retry_in: Option<Duration>,
    /// See [`Fetched::host_pause`]: whatever becomes of the record, the server asked it.
    pub host_pause: Option<Duration>,
    /// A revisit answered 304: only the visit's time is recorded.
    pub not_modified: bool,
    /// The content differs from the last visit's (always true on a first visit).
    pub changed: bool,
    /// When the page is due again; None: never.
    pub recrawl_in: Option<Duration>,
    /// A revisit of an answered page that failed for now (no answer, a 5xx, a 429): the
    /// page stays as stored, with only the failure recorded beside it, so that a site down
    /// for an hour does not wipe its titles and links from the results.
    pub failed_revisit: bool,
}

impl PageRecord {
    /// Where the crawl went on from this redirect: its `location`, unless the redirect
    /// was refused (one too many in a row), which ends its chain here. A refused target
    /// is never fetched; named as where the chain ends, it made every hop before look
    /// like a working redirect to a page not crawled yet.
    pub fn followed_location(&self) -> Option<&Url> {
        self.location.as_ref().filter(|_| self.error.is_none())
    }

    /// Where the crawl went on from this page as its redirect: a 3xx's followed
    /// `location`, or where its refresh moves it.
    pub fn moved_to(&self) -> Option<&Url> {
        self.followed_location().or(self.refreshed_to.as_ref())
    }

    /// Whether the URL's frontier row ends `failed` rather than `done`: it has no page
    /// with a response.
    pub fn is_failure(&self) -> bool {
        self.status.is_none() && !self.failed_revisit
    }

    /// Makes this the record of a fetch whose outcome the database refused to store
    /// (`message` says why): a failed fetch with none of the values or links it brought,
    /// whose row says so; or, for a revisit of a page stored with an answer, a revisit
    /// that failed, which leaves that page as it was. The URLs it found stay: the seen
    /// cache has them as offered already, so dropped here, they were skipped on every page
    /// linking to them after this one. [`crate::store::Store`] drops them when the
    /// database refuses them too.
    pub fn refused_by_database(&mut self, message: String) {
        let answered = self.job.previous.as_ref().is_some_and(|p| p.answered);
        // Every field is named, so that a new one is thought of here too.
        let Self {
            job: _,
            status,
            content_type,
            title,
            location,
            changed_location_cookies,
            bytes,
            truncated,
            content_hash,
            etag,
            last_modified,
            fetched_at: _,
            elapsed_ms: _,
            error,
            canonical,
            noindex,
            nofollow,
            links,
            refreshed_to,
            links_left_out,
            // Its entries stay queued with the URLs it found.
            sitemap_urls: _,
            discovered: _,
            retry_in,
            host_pause: _,
            not_modified,
            changed: _,
            recrawl_in: _,
            failed_revisit,
        } = self;
        if !answered {
            *status = None;
        }
        *content_type = None;
        *title = None;
        *location = None;
        *changed_location_cookies = false;
        *bytes = None;
        *truncated = false;
        *content_hash = None;
        *etag = None;
        *last_modified = None;
        *error = Some(FetchError {
            kind: ErrorKind::DatabaseRefused,
            message,
        });
        *canonical = None;
        *noindex = false;
        *nofollow = false;
        *links = Vec::new();
        *refreshed_to = None;
        *links_left_out = None;
        *retry_in = None;
        *not_modified = false;
        *failed_revisit = answered;
    }

    /// Roughly the memory this record holds, its links and new URLs above all: its share
    /// of `channels.max_bytes` until the writer has committed it.
    pub fn weight(&self) -> usize {
        let text = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        let links: usize = self
            .links
            .iter()
            .map(|l| {
                std::mem::size_of::<Link>()
                    + l.target.as_str().len()
                    + l.anchor_text.len()
                    + text(&l.rel)
            })
            .sum();
        let discovered: usize = self
            .discovered
            .iter()
            .map(|d| {
                std::mem::size_of::<Discovered>()
                    + d.url.as_str().len()
                    + d.host.len()
                    + text(&d.trap)
            })
            .sum();
        std::mem::size_of::<Self>() + text(&self.title) + links + discovered
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorKind;

    /// A robots.txt's sitemaps ride with its host's first job to the parse pool, whose
    /// queue is bounded in bytes by what its responses weigh: they weighed nothing, so
    /// 64 first jobs of a link farm's hosts held some 200 MB beyond `channels.max_bytes`.
    #[test]
    fn a_response_weighs_the_sitemaps_it_carries() {
        let job = super::CrawlJob {
            id: 1,
            url: url::Url::parse("http://h/").unwrap(),
            host: "h".into(),
            depth: 0,
            priority: 0,
            redirect_hops: 0,
            attempts: 0,
            kind: super::JobKind::Page,
            previous: None,
        };
        let mut fetched = super::Fetched::new(job);
        let alone = fetched.weight();
        fetched.sitemaps = (0..30_000)
            .map(|n| url::Url::parse(&format!("http://h/{n}")).unwrap())
            .collect();
        let carried = fetched.weight() - alone;
        assert!(
            carried >= 30_000 * std::mem::size_of::<url::Url>(),
            "30,000 sitemap URLs weigh {carried} bytes"
        );
    }

    #[test]
    fn every_error_kind_is_listed_once() {
        for (i, kind) in ErrorKind::ALL.into_iter().enumerate() {
            // A new kind makes this match fail to compile: list it in `ALL` too.
            let position = match kind {
                ErrorKind::Timeout => 0,
                ErrorKind::Connect => 1,
                ErrorKind::Dns => 2,
                ErrorKind::DnsTemporary => 3,
                ErrorKind::Body => 4,
                ErrorKind::Request => 5,
                ErrorKind::Redirect => 6,
                ErrorKind::Parse => 7,
                ErrorKind::Robots => 8,
                ErrorKind::RobotsUnavailable => 9,
                ErrorKind::AddressRefused => 10,
                ErrorKind::Binary => 11,
                ErrorKind::Headers => 12,
                ErrorKind::Tls => 13,
                ErrorKind::DatabaseRefused => 14,
            };
            assert_eq!(position, i, "{}", kind.as_str());
        }
    }
}
