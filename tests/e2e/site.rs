//! An in-process test web: one axum server per loopback address (127.0.0.1, 127.0.0.2, …
//! stand for different hosts), serving a fixed map of resources and logging every request
//! with its timing, so tests can check both what a crawl asked for and how politely.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Router;
use tokio::net::TcpListener;

/// What the site answers for one URL.
#[derive(Clone, Debug)]
pub enum Resource {
    /// A 200 page of UTF-8 HTML.
    Html(String),
    /// A status other than 200, with an HTML body.
    Status(u16, String),
    /// A redirect status and its `Location`.
    Redirect(u16, String),
    /// A body with its own content type: any bytes, e.g. Shift_JIS HTML.
    Typed(&'static str, Vec<u8>),
    /// The inner resource, answered only after a wait: for timeouts and concurrency.
    Slow(Duration, Box<Resource>),
    /// The n-th request to the path gets the n-th resource, later ones the last: for
    /// retries ("429, then 200").
    Sequence(Vec<Resource>),
    /// The inner resource with extra headers; a `Content-Type` here replaces its own.
    WithHeaders(Vec<(String, String)>, Box<Resource>),
    /// The inner resource with its body gzip-compressed, whatever the request accepts.
    Gzip(Box<Resource>),
    /// The inner resource with its body brotli-compressed, whatever the request accepts.
    Brotli(Box<Resource>),
    /// The inner resource with this `ETag`; a request whose `If-None-Match` names it
    /// gets an empty 304 instead.
    Validated(String, Box<Resource>),
    /// The inner resource to a request whose `Accept` names this type or `*/*`, else a
    /// 406, as a server that negotiates strictly answers.
    Negotiated(&'static str, Box<Resource>),
    /// HTML made from the request's path and query: endless URL spaces, for traps.
    Dynamic(fn(&str) -> String),
    /// An HTML body sent one byte every so often, `n` bytes in all: a slow-drip server.
    Drip(Duration, usize),
    /// An HTML body that does not end: this text, then filler for as long as the client
    /// reads (up to [`ENDLESS_LIMIT`], so the server stops by itself should a client never
    /// hang up).
    Endless(String),
    /// The inner resource, answered only once the test opens the gate (sends `true`): a
    /// request held unanswered for exactly as long as a test needs, with no timing.
    Held(tokio::sync::watch::Receiver<bool>, Box<Resource>),
    /// A 200 with neither `Content-Type` nor `Content-Length`, its body these pieces, a
    /// chunk each: a script streaming a file, cut as its writes fall.
    Streamed(Vec<Vec<u8>>),
}

/// Where an [`Resource::Endless`] body stops after all: far beyond any body cap.
pub const ENDLESS_LIMIT: usize = 1 << 30;

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Hit {
    pub host: String,
    pub path: String,
    /// When the request arrived, before any latency: what politeness is judged by.
    pub at: Instant,
    /// When the handler returned, or was dropped because the client went away; equal to
    /// `at` while the request is still being handled.
    pub done: Instant,
    /// The `User-Agent` header: tells apart crawlers sharing one site.
    pub agent: String,
    /// Whether the request carried an `Authorization` header.
    pub authorized: bool,
}

type Routes = HashMap<(String, String), Resource>;

/// Listeners bound up front, so pages can be written with the hosts' real authorities.
pub struct SiteBuilder {
    listeners: Vec<(String, TcpListener)>,
    routes: Routes,
    delays: HashMap<String, Duration>,
}

impl SiteBuilder {
    /// Binds one listener on each of 127.0.0.1 … 127.0.0.`hosts`.
    pub async fn bind(hosts: u8) -> Self {
        let mut listeners = Vec::new();
        for i in 1..=hosts {
            let listener = TcpListener::bind(("127.0.0.".to_owned() + &i.to_string(), 0))
                .await
                .expect("bind a loopback test listener");
            let addr = listener.local_addr().expect("listener address");
            listeners.push((addr.to_string(), listener));
        }
        Self {
            listeners,
            routes: HashMap::new(),
            delays: HashMap::new(),
        }
    }

    /// `host:port` of host `i` (0-based).
    pub fn authority(&self, i: usize) -> String {
        self.listeners[i].0.clone()
    }

    /// Serves `resource` at `path` (with its query, if any) on `authority`. Panics on a
    /// resource that cannot be sent, so the mistake shows in the test that made it.
    pub fn add(&mut self, authority: &str, path: &str, resource: Resource) {
        validate(&resource);
        self.routes
            .insert((authority.to_owned(), path.to_owned()), resource);
    }

    /// Serves on `authority` a home page `/` linking to `pages` pages, `/0`, `/1`, …, each
    /// linking back home.
    pub fn add_home_and_pages(&mut self, authority: &str, pages: usize) {
        let links: String = (0..pages)
            .map(|i| format!("<a href='/{i}'>{i}</a>"))
            .collect();
        let home = format!("<title>Home</title>{links}");
        self.add(authority, "/", Resource::Html(home));
        for i in 0..pages {
            let page = format!("<title>Page {i}</title><a href='/'>home</a>");
            self.add(authority, &format!("/{i}"), Resource::Html(page));
        }
    }

    /// Serves `resource` for every path that starts with `prefix` and has no route of
    /// its own.
    pub fn add_prefix(&mut self, authority: &str, prefix: &str, resource: Resource) {
        self.add(authority, &format!("{prefix}*"), resource);
    }

    /// Makes every response from `authority` wait `delay` first: a slow server, so that
    /// requests overlap and per-host concurrency limits can be seen.
    pub fn delay_host(&mut self, authority: &str, delay: Duration) {
        self.delays.insert(authority.to_owned(), delay);
    }

    pub fn start(self) -> TestSite {
        let routes = Arc::new(self.routes);
        let record = Shared::default();
        let mut authorities = Vec::new();
        for (authority, listener) in self.listeners {
            let state = Arc::new(HostState {
                authority: authority.clone(),
                routes: Arc::clone(&routes),
                record: Arc::clone(&record),
                delay: self.delays.get(&authority).copied().unwrap_or_default(),
            });
            let app = Router::new().fallback(serve).with_state(state);
            tokio::spawn(async move {
                axum::serve(listener, app).await.expect("test server");
            });
            authorities.push(authority);
        }
        TestSite {
            authorities,
            record,
        }
    }
}

/// A handle on the running site: clones share its servers and its log.
#[derive(Clone)]
pub struct TestSite {
    pub authorities: Vec<String>,
    record: Shared,
}

impl TestSite {
    /// A site on one host, 127.0.0.1: each path serves its HTML.
    pub async fn one_host(pages: &[(&str, &str)]) -> Self {
        let mut b = SiteBuilder::bind(1).await;
        let h = b.authority(0);
        for (path, html) in pages {
            b.add(&h, path, Resource::Html((*html).to_owned()));
        }
        b.start()
    }

    /// A site on one host whose `/` serves `html` after `wait`: a crawl that lasts.
    pub async fn slow_home(wait: std::time::Duration, html: &str) -> Self {
        let mut b = SiteBuilder::bind(1).await;
        let h = b.authority(0);
        b.add(
            &h,
            "/",
            Resource::Slow(wait, Box::new(Resource::Html(html.to_owned()))),
        );
        b.start()
    }

    pub fn url(&self, host: usize, path: &str) -> String {
        format!("http://{}{}", self.authorities[host], path)
    }

    /// How many requests have arrived so far, without copying their log.
    pub fn hit_count(&self) -> usize {
        lock(&self.record).hits.len()
    }

    /// Every request so far, in order of arrival.
    pub fn hits(&self) -> Vec<Hit> {
        lock(&self.record).hits.clone()
    }

    /// The requests to one `host:port`, in order of arrival.
    pub fn hits_for(&self, authority: &str) -> Vec<Hit> {
        lock(&self.record)
            .hits
            .iter()
            .filter(|h| h.host == authority)
            .cloned()
            .collect()
    }

    /// The requests for `path` as requested, its query included, on one `host:port`, in
    /// order of arrival.
    pub fn hits_at(&self, authority: &str, path: &str) -> Vec<Hit> {
        let mut hits = self.hits_for(authority);
        hits.retain(|h| h.path == path);
        hits
    }

    /// Every requested URL, as `http://host:port/path?query`.
    pub fn requested_urls(&self) -> Vec<String> {
        self.hits()
            .into_iter()
            .map(|h| format!("http://{}{}", h.host, h.path))
            .collect()
    }

    /// How many times `url` (`http://host:port/path?query`) was requested: for retries.
    pub fn count(&self, url: &str) -> usize {
        self.requested_urls().iter().filter(|u| *u == url).count()
    }

    /// The most requests to `authority` that were being handled at one moment: what a
    /// per-host concurrency limit must bound.
    pub fn max_in_flight(&self, authority: &str) -> usize {
        lock(&self.record)
            .in_flight
            .get(authority)
            .map_or(0, |count| count.max)
    }

    /// The shortest time between two consecutive arrivals at `authority`: what a
    /// politeness delay must bound. `None` with fewer than two requests.
    pub fn min_gap(&self, authority: &str) -> Option<Duration> {
        let mut arrivals: Vec<Instant> = self.hits_for(authority).iter().map(|h| h.at).collect();
        arrivals.sort_unstable();
        arrivals
            .windows(2)
            .map(|pair| pair[1].duration_since(pair[0]))
            .min()
    }
}

/// Everything the servers record, behind one lock so the log and the counts agree.
#[derive(Default)]
struct Record {
    hits: Vec<Hit>,
    /// Requests so far per (authority, path), to step through `Sequence`s.
    per_path: HashMap<(String, String), usize>,
    in_flight: HashMap<String, InFlight>,
}

/// Requests to one host being handled now, and the most there ever were.
#[derive(Default)]
struct InFlight {
    now: usize,
    max: usize,
}

type Shared = Arc<Mutex<Record>>;

/// The record, even after a panic elsewhere: one failing test must not hide the log from
/// the report, nor turn a guard's `drop` into an abort.
fn lock(record: &Mutex<Record>) -> MutexGuard<'_, Record> {
    record.lock().unwrap_or_else(PoisonError::into_inner)
}

struct HostState {
    authority: String,
    routes: Arc<Routes>,
    record: Shared,
    delay: Duration,
}

impl HostState {
    /// The path's own route, else the longest prefix route that covers it.
    fn route(&self, path: &str) -> Option<&Resource> {
        if let Some(exact) = self.routes.get(&(self.authority.clone(), path.to_owned())) {
            return Some(exact);
        }
        self.routes
            .iter()
            .filter(|((authority, key), _)| *authority == self.authority && key.ends_with('*'))
            .filter(|((_, key), _)| path.starts_with(key.trim_end_matches('*')))
            .max_by_key(|((_, key), _)| key.len())
            .map(|(_, resource)| resource)
    }

    /// Logs a request's arrival; returns the guard that marks it finished, and how many
    /// requests to the same path came before it.
    fn arrive(
        &self,
        path: &str,
        (agent, authorized): (&str, bool),
        at: Instant,
    ) -> (Handling, usize) {
        let mut record = lock(&self.record);
        let index = record.hits.len();
        record.hits.push(Hit {
            host: self.authority.clone(),
            path: path.to_owned(),
            at,
            done: at,
            agent: agent.to_owned(),
            authorized,
        });
        let seen = record
            .per_path
            .entry((self.authority.clone(), path.to_owned()))
            .or_default();
        let nth = *seen;
        *seen += 1;
        let count = record.in_flight.entry(self.authority.clone()).or_default();
        count.now += 1;
        count.max = count.max.max(count.now);
        let guard = Handling {
            record: Arc::clone(&self.record),
            authority: self.authority.clone(),
            index,
        };
        (guard, nth)
    }
}

/// Marks a request finished when dropped: when the handler returns, and also when the
/// client disconnects and the server drops the handler's future mid-wait.
struct Handling {
    record: Shared,
    authority: String,
    index: usize,
}

impl Drop for Handling {
    fn drop(&mut self) {
        let mut record = lock(&self.record);
        if let Some(hit) = record.hits.get_mut(self.index) {
            hit.done = Instant::now();
        }
        if let Some(count) = record.in_flight.get_mut(&self.authority) {
            count.now = count.now.saturating_sub(1);
        }
    }
}

async fn serve(State(host): State<Arc<HostState>>, request: Request) -> Response {
    let at = Instant::now();
    let path = request
        .uri()
        .path_and_query()
        .map_or("/".to_owned(), |p| p.as_str().to_owned());
    let agent = request
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let authorized = request.headers().contains_key(header::AUTHORIZATION);
    let (handling, nth) = host.arrive(&path, (&agent, authorized), at);
    let reply = host.route(&path).map_or_else(Reply::not_found, |resource| {
        Reply::render(resource, nth, request.headers(), &path)
    });
    if let Some(mut gate) = reply.held.clone() {
        // The sender dropped means the test is over: answer.
        let _ = gate.wait_for(|open| *open).await;
    }
    let wait = host.delay + reply.delay;
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
    let response = reply.into_response();
    drop(handling);
    response
}

/// A resource worked out for one request: what to send, and how long to wait first.
struct Reply {
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Vec<u8>,
    delay: Duration,
    /// Send the body a byte at a time with this pause between bytes.
    drip: Option<Duration>,
    /// Send this after the body, again and again: an endless body.
    filler: Option<&'static [u8]>,
    /// Send these in place of the body, a chunk each.
    pieces: Option<Vec<Vec<u8>>>,
    /// Answer only once this gate is open.
    held: Option<tokio::sync::watch::Receiver<bool>>,
}

impl Reply {
    fn new(status: StatusCode, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: vec![(header::CONTENT_TYPE, header_value(content_type))],
            body: body.into(),
            delay: Duration::ZERO,
            drip: None,
            filler: None,
            pieces: None,
            held: None,
        }
    }

    fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "text/html",
            "<title>Not found</title>",
        )
    }

    /// `nth` is how many requests to this path came before, to pick a `Sequence`'s step;
    /// `asked` are the request's headers, for `Validated` and `Negotiated`.
    fn render(resource: &Resource, nth: usize, asked: &HeaderMap, path: &str) -> Self {
        let if_none_match = asked
            .get(header::IF_NONE_MATCH)
            .and_then(|v| std::str::from_utf8(v.as_bytes()).ok());
        match resource {
            Resource::Html(body) => {
                Self::new(StatusCode::OK, "text/html; charset=utf-8", body.as_str())
            }
            Resource::Status(code, body) => Self::new(status(*code), "text/html", body.as_str()),
            Resource::Redirect(code, location) => Self {
                status: status(*code),
                headers: vec![(header::LOCATION, header_value(location))],
                body: Vec::new(),
                delay: Duration::ZERO,
                drip: None,
                filler: None,
                pieces: None,
                held: None,
            },
            Resource::Typed(content_type, body) => {
                Self::new(StatusCode::OK, content_type, body.as_slice())
            }
            Resource::Slow(delay, inner) => {
                let mut reply = Self::render(inner, nth, asked, path);
                reply.delay += *delay;
                reply
            }
            Resource::Held(gate, inner) => {
                let mut reply = Self::render(inner, nth, asked, path);
                reply.held = Some(gate.clone());
                reply
            }
            Resource::Sequence(steps) => steps
                .get(nth)
                .or(steps.last())
                .map_or_else(Self::not_found, |step| Self::render(step, nth, asked, path)),
            Resource::WithHeaders(extra, inner) => {
                let mut reply = Self::render(inner, nth, asked, path);
                for (name, value) in extra {
                    let name = header_name(name);
                    if name == header::CONTENT_TYPE {
                        reply.headers.retain(|(n, _)| *n != header::CONTENT_TYPE);
                    }
                    reply.headers.push((name, header_value(value)));
                }
                reply
            }
            Resource::Gzip(inner) => Self::render(inner, nth, asked, path).encoded("gzip", gzip),
            Resource::Brotli(inner) => Self::render(inner, nth, asked, path).encoded("br", brotli),
            Resource::Validated(etag, _) if if_none_match == Some(etag.as_str()) => Self {
                status: StatusCode::NOT_MODIFIED,
                headers: vec![(header::ETAG, header_value(etag))],
                body: Vec::new(),
                delay: Duration::ZERO,
                drip: None,
                filler: None,
                pieces: None,
                held: None,
            },
            Resource::Validated(etag, inner) => {
                let mut reply = Self::render(inner, nth, asked, path);
                reply.headers.push((header::ETAG, header_value(etag)));
                reply
            }
            Resource::Negotiated(wanted, inner) => {
                let accept = asked
                    .get(header::ACCEPT)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("*/*");
                if accept.contains(wanted) || accept.contains("*/*") {
                    Self::render(inner, nth, asked, path)
                } else {
                    Self::new(
                        StatusCode::NOT_ACCEPTABLE,
                        "text/plain",
                        "406 Not Acceptable",
                    )
                }
            }
            Resource::Dynamic(page) => {
                Self::new(StatusCode::OK, "text/html; charset=utf-8", page(path))
            }
            Resource::Drip(pause, n) => Self {
                drip: Some(*pause),
                ..Self::new(
                    StatusCode::OK,
                    "text/html",
                    "<title>drip</title>".repeat(n / 19 + 1).into_bytes()[..*n].to_vec(),
                )
            },
            Resource::Endless(start) => Self {
                filler: Some(&[b' '; 64 * 1024]),
                ..Self::new(StatusCode::OK, "text/html", start.as_str())
            },
            Resource::Streamed(pieces) => Self {
                headers: Vec::new(),
                pieces: Some(pieces.clone()),
                ..Self::new(StatusCode::OK, "", Vec::new())
            },
        }
    }

    /// The same reply with its body compressed by `encode` and labelled `coding`.
    fn encoded(mut self, coding: &'static str, encode: fn(&[u8]) -> Vec<u8>) -> Self {
        self.body = encode(&self.body);
        self.headers
            .push((header::CONTENT_ENCODING, HeaderValue::from_static(coding)));
        self
    }

    fn into_response(self) -> Response {
        let body = match (self.drip, self.filler) {
            (None, None) => match self.pieces {
                Some(pieces) => Body::from_stream(futures_util::stream::iter(
                    pieces.into_iter().map(Ok::<_, std::convert::Infallible>),
                )),
                None => Body::from(self.body),
            },
            (None, Some(filler)) => {
                let chunks = std::iter::once(self.body).chain(std::iter::repeat_n(
                    filler.to_vec(),
                    ENDLESS_LIMIT / filler.len(),
                ));
                Body::from_stream(futures_util::stream::iter(
                    chunks.map(Ok::<_, std::convert::Infallible>),
                ))
            }
            (Some(pause), _) => {
                let bytes = self.body.into_iter();
                Body::from_stream(futures_util::stream::unfold(
                    bytes,
                    move |mut bytes| async move {
                        let byte = bytes.next()?;
                        tokio::time::sleep(pause).await;
                        Some((Ok::<_, std::convert::Infallible>(vec![byte]), bytes))
                    },
                ))
            }
        };
        let mut response = Response::new(body);
        *response.status_mut() = self.status;
        for (name, value) in self.headers {
            response.headers_mut().append(name, value);
        }
        response
    }
}

pub(super) fn gzip(body: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(body).expect("gzip into memory");
    encoder.finish().expect("gzip into memory")
}

pub(super) fn brotli(body: &[u8]) -> Vec<u8> {
    // Quality 5 and a 4 MiB window (lgwin 22): fast, and what servers commonly use.
    let mut encoder = brotli::CompressorWriter::new(Vec::new(), 4096, 5, 22);
    encoder.write_all(body).expect("brotli into memory");
    encoder.into_inner()
}

// The conversions below panic with a message; `add` runs them all through `validate`
// first, so inside the server they cannot fail.

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).expect("a test resource's status code is 100..=999")
}

fn header_name(name: &str) -> HeaderName {
    HeaderName::try_from(name).expect("a test resource's header name is a valid token")
}

fn header_value(value: &str) -> HeaderValue {
    HeaderValue::from_bytes(value.as_bytes())
        .expect("a test resource's header value has no control character")
}

/// Panics on a resource the server could not send, so the test that wrote it fails at
/// `add` rather than with a dropped connection from inside a server task.
fn validate(resource: &Resource) {
    match resource {
        Resource::Html(_) => {}
        Resource::Status(code, _) => {
            status(*code);
        }
        Resource::Redirect(code, location) => {
            status(*code);
            header_value(location);
        }
        Resource::Typed(content_type, _) => {
            header_value(content_type);
        }
        Resource::Slow(_, inner)
        | Resource::Held(_, inner)
        | Resource::Gzip(inner)
        | Resource::Brotli(inner)
        | Resource::Negotiated(_, inner) => {
            validate(inner);
        }
        Resource::Validated(etag, inner) => {
            header_value(etag);
            validate(inner);
        }
        Resource::Dynamic(_)
        | Resource::Drip(..)
        | Resource::Endless(_)
        | Resource::Streamed(_) => {}
        Resource::Sequence(steps) => {
            assert!(!steps.is_empty(), "a Sequence needs at least one resource");
            steps.iter().for_each(validate);
        }
        Resource::WithHeaders(headers, inner) => {
            for (name, value) in headers {
                header_name(name);
                header_value(value);
            }
            validate(inner);
        }
    }
}

#[cfg(test)]
#[path = "site_tests.rs"]
mod tests;
