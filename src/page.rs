//! The values that flow down the pipeline: a [`CrawlJob`] to fetch, a [`Fetched`] response
//! to parse, a [`PageRecord`] to store.

use std::fmt;
use std::sync::Arc;

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
}

/// Why a fetch produced no usable response. Stored as `pages.error_kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKind {
    Timeout,
    Connect,
    Body,
    Request,
    Redirect,
    Parse,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Connect => "connect",
            Self::Body => "body",
            Self::Request => "request",
            Self::Redirect => "redirect",
            Self::Parse => "parse",
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
    /// The body, read only for successful HTML and cut at `fetch.max_body_bytes`.
    pub body: Option<Vec<u8>>,
    /// Bytes transferred: the body read, or the declared length of a body left unread.
    pub bytes: Option<u64>,
    pub truncated: bool,
    pub fetched_at: std::time::SystemTime,
    pub elapsed_ms: u64,
    pub error: Option<FetchError>,
}

impl Fetched {
    pub fn is_html(&self) -> bool {
        self.content_type.as_deref().is_some_and(is_html_type)
    }
}

/// Whether a `Content-Type` value names HTML.
fn is_html_type(content_type: &str) -> bool {
    let mime = content_type.split(';').next().unwrap_or("").trim();
    mime.eq_ignore_ascii_case("text/html") || mime.eq_ignore_ascii_case("application/xhtml+xml")
}

/// A link as stored: one per distinct (target, anchor text) on a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub target: Url,
    pub anchor_text: String,
    pub rel: Option<String>,
}

/// A URL to add to the frontier, already scoped and prioritised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    pub url: Url,
    pub host: String,
    pub depth: u32,
    pub priority: i64,
    pub redirect_hops: u32,
}

/// Everything the writer commits for one page, in one transaction.
#[derive(Debug)]
pub struct PageRecord {
    pub job: CrawlJob,
    pub status: Option<u16>,
    pub content_type: Option<String>,
    pub title: Option<String>,
    pub location: Option<Url>,
    pub bytes: Option<u64>,
    pub truncated: bool,
    pub content_hash: Option<String>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub fetched_at: std::time::SystemTime,
    pub elapsed_ms: u64,
    pub error: Option<FetchError>,
    pub links: Vec<Link>,
    pub discovered: Vec<Discovered>,
}
