//! The admin HTTP API of `pipecrawl serve`: health, stats, Prometheus metrics, new
//! seeds, pause and resume.
//!
//! It binds to loopback unless told otherwise, and anywhere else only with a bearer
//! token: a crawler's API can point it at any URL, which is not something to leave open
//! to a network.

use std::collections::{BTreeMap, BTreeSet};
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{header, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use hyper::server::conn::http1;
use hyper::service::{service_fn, Service as _};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::frontier::dispatcher::Progress;
use crate::frontier::readmit;
use crate::frontier::seen::{self, SeenUrls};
use crate::host_headers::HostRules;
use crate::netguard::NetworkPolicy;
use crate::page::Discovered;
use crate::scope::{Scope, SharedScope};
use crate::stages::{Queues, StageReport, Stages};
use crate::store::{HostCounts, Store};
use crate::urlnorm;
use slow_readers::WriteTimeout;

mod slow_readers;
mod web_pages;

/// Connections the API holds at once. More wait in the listen queue, where they hold
/// none of the process's files: a client that opens thousands and says nothing cannot
/// take the descriptors the crawl needs to fetch and to store (`src/fdlimit.rs` counts
/// these). A few scripts and a scraper need a handful.
pub const MAX_CONNECTIONS: usize = 16;

/// How long a connection may take to send a request's headers, kept-alive ones waiting
/// for their next request too: past it the connection is closed and its place given to
/// the next. Without it, a client that sent half a request held its place for good.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// The most a request's body may hold (axum's default, named so that the answer to a
/// larger one can say it): with [`MAX_CONNECTIONS`], what clients may make the API hold.
/// Some 50,000 seeds of a site's home page each.
const MAX_BODY_BYTES: usize = 2 << 20;

/// The most of a body declared over [`MAX_BODY_BYTES`] that is read, and thrown away,
/// before its 413 is sent: a client that sends its whole body before it reads the
/// answer (Python's `urllib`, many scripts' first client) otherwise had the connection
/// closed under it, a "broken pipe" and no word of the limit. A larger body is answered
/// at once, and its connection closed, as before.
const DRAINED_AT_MOST: u64 = 64 << 20;

/// How long a request's body may take to arrive, once its headers have: a client that
/// sent `Content-Length` and then trickled the body, or none of it, held its connection's
/// place for good (the headers have [`HEADER_TIMEOUT`], the body had nothing), and
/// [`MAX_CONNECTIONS`] of them shut everyone else out. [`MAX_BODY_BYTES`] in this time is
/// some 100 KB/s.
const BODY_TIMEOUT: Duration = Duration::from_secs(20);

/// Serves on `listener` until `done`, within [`MAX_CONNECTIONS`], [`HEADER_TIMEOUT`] and
/// [`slow_readers::WRITE_TIMEOUT`] (`axum::serve` has none of them). Each request goes to
/// the router `routers` holds as it comes, [`starting`]'s until the service runs: a
/// connection kept alive from then on gets the full API as soon as there is one.
pub async fn serve(
    listener: TcpListener,
    routers: watch::Receiver<Router>,
    done: CancellationToken,
) {
    let places = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            () = done.cancelled() => return,
            accepted = accept(&listener, &places) => accepted,
        };
        let Some((stream, place)) = accepted else {
            continue;
        };
        let routers = routers.clone();
        let service = service_fn(move |request| {
            TowerToHyperService::new(routers.borrow().clone()).call(request)
        });
        tokio::spawn(async move {
            let served = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(WriteTimeout::new(stream)), service)
                .await;
            if let Err(e) = served {
                tracing::debug!("an admin API connection ended: {e}");
            }
            drop(place);
        });
    }
}

/// The next connection, once there is a place for it. An error with one connection
/// (reset before it was taken) is none; any other (no file left) is said, and waited
/// out for a second rather than retried at once.
async fn accept(
    listener: &TcpListener,
    places: &Arc<Semaphore>,
) -> Option<(TcpStream, OwnedSemaphorePermit)> {
    let place = Arc::clone(places).acquire_owned().await.ok()?;
    match listener.accept().await {
        Ok((stream, _)) => Some((stream, place)),
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
            ) =>
        {
            None
        }
        Err(e) => {
            tracing::warn!("the admin API cannot take a connection: {e}");
            tokio::time::sleep(Duration::from_secs(1)).await;
            None
        }
    }
}

/// Everything the handlers share.
pub struct Admin {
    pub store: Store,
    pub progress: Progress,
    pub scope: SharedScope,
    pub network: Arc<NetworkPolicy>,
    /// Learns the seeds once stored, for the schemes their tokens go over.
    pub host_rules: Arc<HostRules>,
    pub stages: Stages,
    pub metrics: PrometheusHandle,
    pub token: Option<String>,
    pub started: Instant,
    /// `cluster.node_id`, whose pause is kept in the database.
    pub node: String,
    /// `frontier.seen_cache` and `traps.max_pages_per_host`, for the links that seeds of
    /// new hosts bring back (see [`readmit::links_to_new_hosts`]).
    pub readmit: (usize, u64),
    /// The hosts whose stored links [`follow_new_hosts`] is to follow.
    pub new_hosts: readmit::NewHosts,
    /// The crawl's seen-URL cache, told of the seeds sent.
    pub seen: Arc<Mutex<SeenUrls>>,
    pub busiest: BusiestHosts,
    /// Cancelled by SIGINT or SIGTERM: the service finishes the pages in flight and
    /// stops, and `/stats` says so, for a supervisor or a load balancer to see.
    pub stopping: CancellationToken,
    /// Held by a pause or a resume from setting the state to saving it: two at once
    /// could otherwise save in the other order, and a restart undo the last.
    pub pausing: tokio::sync::Mutex<()>,
}

/// `/stats`' busiest hosts, as last counted. The count reads the whole frontier (a
/// fraction of a second for a million rows), so a dashboard polling `/stats` every few
/// seconds kept a core busy on a big crawl, however many pollers: a count is given
/// again until it is [`REUSE_FOR`] times as old as it took to make, and pollers wait
/// for the one count being made.
#[derive(Default)]
pub struct BusiestHosts {
    last: tokio::sync::Mutex<Option<Counted>>,
}

struct Counted {
    hosts: Vec<HostCounts>,
    at: Instant,
    took: Duration,
}

/// How many times its own cost a host count is reused for: the count then takes at
/// most a tenth of a core, and on a small crawl (a millisecond) is never seen stale.
const REUSE_FOR: u32 = 10;

impl BusiestHosts {
    async fn get(&self, store: &Store) -> Result<Vec<HostCounts>, crate::Error> {
        let mut last = self.last.lock().await;
        if let Some(counted) = last
            .as_ref()
            .filter(|c| c.at.elapsed() <= c.took * REUSE_FOR)
        {
            return Ok(counted.hosts.clone());
        }
        let started = Instant::now();
        let hosts = store.host_counts(STATS_HOSTS).await?;
        *last = Some(Counted {
            hosts: hosts.clone(),
            at: Instant::now(),
            took: started.elapsed(),
        });
        Ok(hosts)
    }
}

/// Why the API will not start.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(
        "admin.listen = {0} is not a loopback address, and no token is set: set admin.token \
         or the environment variable {env} so that only those who hold it can use the API",
        env = crate::config::ADMIN_TOKEN_ENV
    )]
    Unprotected(SocketAddr),
    #[error(
        "cannot listen on {addr} for the admin API: another program listens there (another \
         pipecrawl serve?): give each service its own admin.listen, or port 0 for one the \
         system picks, which the log names"
    )]
    PortInUse { addr: SocketAddr },
    #[error("cannot listen on {addr} for the admin API: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot set up metrics: {0}")]
    Metrics(String),
}

/// Refuses a non-loopback address without a token. An IPv4 address in IPv6's spelling
/// (`[::ffff:127.0.0.1]`) is judged as the IPv4 address the socket binds.
pub fn check_exposure(listen: SocketAddr, token: Option<&str>) -> Result<(), AdminError> {
    if listen.ip().to_canonical().is_loopback() || token.is_some() {
        Ok(())
    } else {
        Err(AdminError::Unprotected(listen))
    }
}

/// What the API answers while the service starts: bringing the database up to date
/// (minutes, on a large one an earlier pipecrawl wrote), putting back what a stopped run
/// left. Every request gets a 503 saying so at once, so that a health check is not left
/// waiting, as it was on a listening socket no one read; a request without `token` (when
/// set) is refused as it will be. `/healthz` says it in text, as it says `ok`; the other
/// endpoints in JSON, as they will answer.
pub fn starting(token: Option<String>) -> Router {
    Router::new()
        .route(
            "/healthz",
            any(|| async { (StatusCode::SERVICE_UNAVAILABLE, format!("{STARTING}\n")) }),
        )
        .fallback(|| async { json_error(StatusCode::SERVICE_UNAVAILABLE, STARTING.to_owned()) })
        .layer(middleware::from_fn_with_state(token, guard))
}

/// [`starting`]'s answer.
const STARTING: &str = "starting: bringing the database up to date and resuming the crawl; \
                        the API answers once the service runs";

pub fn router(admin: Arc<Admin>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/stats", get(stats))
        .route("/metrics", get(metrics))
        .route("/seeds", post(add_seeds))
        .route("/pause", post(pause))
        .route("/resume", post(resume))
        .fallback(|uri: Uri| async move { not_here(StatusCode::NOT_FOUND, &uri) })
        .method_not_allowed_fallback(|method: Method, uri: Uri| async move {
            not_here(StatusCode::METHOD_NOT_ALLOWED, &format!("{method} {uri}"))
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(admin.token.clone(), guard))
        .with_state(admin)
}

/// The endpoints [`router`] serves, for an answer to a request it has none for.
const ENDPOINTS: &str = "GET /healthz, GET /stats, GET /metrics, POST /seeds, POST /pause, \
                         POST /resume";

/// The answer to a path the API lacks (`/stats/`, `/reload`) or a method an endpoint does
/// not take (axum adds `Allow`): JSON, as the endpoints' own refusals, where axum's had an
/// empty body and a script nothing to read or show.
fn not_here(status: StatusCode, asked: &dyn std::fmt::Display) -> Response {
    json_error(
        status,
        format!("there is no {asked} in the admin API, which has {ENDPOINTS}"),
    )
}

/// With a token, a request must carry it; without one, the API is loopback's, and a
/// request a web page sent is refused ([`web_pages`]).
async fn guard(State(token): State<Option<String>>, request: Request, next: Next) -> Response {
    match &token {
        Some(token) => {
            let sent = request.headers().get(header::AUTHORIZATION);
            let presented = sent.and_then(|v| v.to_str().ok()).and_then(bearer_token);
            if !presented.is_some_and(|p| constant_time_eq(p.as_bytes(), token.as_bytes())) {
                // Closed: kept alive, a client without the token could hold one of the
                // API's places for good with a request every few seconds, and sixteen
                // shut out those who hold it. One that connects again waits its turn.
                let challenge = [
                    (header::WWW_AUTHENTICATE, "Bearer"),
                    (header::CONNECTION, "close"),
                ];
                let refusal = unauthorized(sent.is_some(), presented.is_some());
                return (challenge, json_error(StatusCode::UNAUTHORIZED, refusal)).into_response();
            }
        }
        None => {
            if let Some(why) = web_pages::sent_by_a_page(request.headers()) {
                let refusal = format!(
                    "refused: {why}. Without admin.token the API takes requests from the \
                     programs of this machine (curl, scripts, a browser's address bar), not \
                     from web pages; to reach it from a page or by another name, set \
                     admin.token and send it as a bearer token"
                );
                // Closed, as a 401 is: pages of many names rebound to 127.0.0.1 could
                // otherwise hold the API's places, six a name in a browser.
                let refused = json_error(StatusCode::FORBIDDEN, refusal);
                return ([(header::CONNECTION, "close")], refused).into_response();
            }
        }
    }
    next.run(request).await
}

/// Why a request was refused its token: none sent, one not sent as a bearer token (the
/// token alone, a slip scripts make), or a token that is not the service's. One answer
/// for all three left a script's author to guess which to mend; none tells a guesser
/// more than that the guess was wrong.
fn unauthorized(header_sent: bool, bearer_sent: bool) -> String {
    let env = crate::config::ADMIN_TOKEN_ENV;
    if bearer_sent {
        format!("the bearer token sent is not the service's token (admin.token, or {env})")
    } else if header_sent {
        "a valid bearer token is required: the `Authorization` header is to be \
         `Bearer <token>`, the word Bearer, a space and the token"
            .to_owned()
    } else {
        format!(
            "a valid bearer token is required, and the request has no `Authorization` header: \
             send `Authorization: Bearer <token>` with admin.token's (or {env}'s) value"
        )
    }
}

/// The token of `Bearer <token>`; the scheme's name is case-insensitive (RFC 9110, 11.1),
/// and some clients send it in lower case.
fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("Bearer")
        .then(|| token.trim_start_matches(' '))
}

/// Compares a `presented` token with the `token` without leaking, through timing, how
/// much of a guess was right, nor the token's length: the time taken depends on what was
/// presented alone (an early return on lengths that differ told the length).
fn constant_time_eq(presented: &[u8], token: &[u8]) -> bool {
    let differs = presented.iter().zip(token.iter().cycle()).fold(
        u8::from(presented.len() != token.len() || token.is_empty()),
        |acc, (x, y)| acc | (x ^ y),
    );
    differs == 0
}

#[derive(Serialize)]
struct Stats {
    state: &'static str,
    uptime_s: f64,
    pages: u64,
    links: u64,
    /// Distinct links past `traps.max_links_per_page`, not stored.
    links_left_out: u64,
    retries: u64,
    pages_by_class: BTreeMap<&'static str, u64>,
    errors_by_kind: BTreeMap<&'static str, u64>,
    in_flight: usize,
    queued: i64,
    /// URLs found and waiting to join the queue (SQLite's `frontier_staged`).
    staged: i64,
    /// How long after it fell due the last revisit stored was made (see
    /// [`crate::summary::Tally::revisit_late_ms`]).
    revisit_late_s: Option<f64>,
    queues: BTreeMap<&'static str, usize>,
    pages_per_sec_last_minute: f64,
    hosts: Vec<HostCounts>,
    /// Busy and blocked time per stage, queue depths over time.
    pipeline: StageReport,
}

/// How many hosts `/stats` lists, busiest first.
const STATS_HOSTS: i64 = 20;

async fn stats(State(admin): State<Arc<Admin>>) -> Response {
    // The writer's counts first: whatever they include is committed by the time the
    // table is read, so the queue's counts are never behind the totals (the busiest
    // hosts may be, by a tenth of the time since they were counted).
    let tally = admin.progress.tally();
    let in_flight_now = admin.progress.outstanding();
    let counts = async {
        let counts = admin.store.queue_counts(&admin.node).await?;
        Ok::<_, crate::Error>((counts, admin.busiest.get(&admin.store).await?))
    };
    let (counts, hosts) = match counts.await {
        Ok(counts) => counts,
        Err(e) => return json_error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    let queues = Queues::NAMES
        .into_iter()
        .zip(admin.stages.queue_depths())
        .collect();
    Json(Stats {
        state: state(&admin),
        uptime_s: admin.started.elapsed().as_secs_f64(),
        pages: tally.pages,
        links: tally.links,
        links_left_out: tally.links_left_out,
        retries: tally.retries,
        pages_by_class: tally.by_class,
        errors_by_kind: tally.errors,
        in_flight: in_flight(in_flight_now, &counts),
        queued: counts.queued,
        staged: counts.staged,
        revisit_late_s: tally.revisit_late_ms.map(|ms| ms as f64 / 1000.0),
        queues,
        pages_per_sec_last_minute: admin.progress.rate_last_minute(),
        hosts,
        pipeline: admin.stages.report(),
    })
    .into_response()
}

/// The states `/stats` and `/metrics` name.
const STATES: [&str; 4] = ["running", "paused", "page_limit", "stopping"];

/// What the service does now, of [`STATES`]. At its limit a service fetches nothing
/// whether paused or not; stopping, it fetches nothing new whatever else holds.
fn state(admin: &Admin) -> &'static str {
    if admin.stopping.is_cancelled() {
        "stopping"
    } else if admin.progress.at_page_limit() {
        "page_limit"
    } else if admin.progress.paused() {
        "paused"
    } else {
        "running"
    }
}

/// The URLs in flight, given the dispatcher's count and the queue's `counts` read after
/// it. Rows a lease took are the dispatcher's a moment later, and a page's row is done a
/// moment before the dispatcher hears of it: the larger count is in flight. The
/// dispatcher's alone said, for that moment, that a crawl with nothing queued or staged
/// had nothing left, as a script waiting for its end reads it.
fn in_flight(dispatched: usize, counts: &crate::store::QueueCounts) -> usize {
    dispatched.max(usize::try_from(counts.leased).unwrap_or(0))
}

async fn metrics(State(admin): State<Arc<Admin>>) -> Response {
    // Counted for each scrape, as `/stats` counts them; a database out of reach leaves
    // the last count, and the other series are given all the same.
    let dispatched = admin.progress.outstanding();
    if let Ok(counts) = admin.store.queue_counts(&admin.node).await {
        crate::metrics::frontier_urls(counts.queued, counts.staged);
        crate::metrics::in_flight(in_flight(dispatched, &counts));
    }
    crate::metrics::state(&STATES, state(&admin));
    let content_type = [(header::CONTENT_TYPE, "text/plain; version=0.0.4")];
    (content_type, admin.metrics.render()).into_response()
}

#[derive(Serialize)]
struct SeedsAdded {
    /// URLs new to the frontier: these will be fetched.
    added: u64,
    /// URLs known already, or given more than once: not queued again, so a caller does
    /// not wait for a fetch that will not come.
    known: u64,
    /// The first [`REJECTED_LISTED`] bad URLs, with why.
    rejected: Vec<Rejected>,
    /// All the bad URLs, listed or not.
    rejected_total: u64,
    /// The hosts of seeds taken that `scope.hosts` leaves out (the first
    /// [`REJECTED_LISTED`]): each seed is fetched, but no link into its host is followed,
    /// seldom what a caller meant, and said as the config's seeds are in a warning.
    hosts_left_out: Vec<String>,
}

/// Bad URLs an answer lists at most. Listed all, 2 MiB of `""` made an answer of 44 MB
/// (some 140 MB of memory while made, times [`MAX_CONNECTIONS`]); a caller that sent
/// that many has one mistake to mend, which the first show.
const REJECTED_LISTED: usize = 100;

#[derive(Serialize)]
struct Rejected {
    url: String,
    error: String,
}

/// Adds seeds: trusted like the config's, so their hosts join the scope when the
/// config names no hosts. All or nothing: one bad URL and none is added.
async fn add_seeds(State(admin): State<Arc<Admin>>, request: Request) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(declared) = declared.filter(|&n| n > MAX_BODY_BYTES as u64) {
        if declared <= DRAINED_AT_MOST {
            let mut body = request.into_body().into_data_stream();
            let drained = async { while let Some(Ok(_)) = body.next().await {} };
            let _ = tokio::time::timeout(BODY_TIMEOUT, drained).await;
        }
        return too_large();
    }
    let body = tokio::time::timeout(BODY_TIMEOUT, Json::from_request(request, &())).await;
    let Ok(body): Result<Result<Json<Vec<String>>, JsonRejection>, _> = body else {
        let message = format!(
            "the body did not arrive within {} s of the headers",
            BODY_TIMEOUT.as_secs()
        );
        return json_error(StatusCode::REQUEST_TIMEOUT, message);
    };
    let urls = match body {
        Ok(Json(urls)) => urls,
        Err(refused) if refused.status() == StatusCode::PAYLOAD_TOO_LARGE => return too_large(),
        // `curl -d` sends a form. Refused all the same: a web page in a browser on this
        // machine may send a form (or text) to the API unasked, but JSON only with the
        // API's leave, which it never gives, so the type is what keeps pages from adding
        // seeds (trusted, loopback and private hosts included).
        Err(JsonRejection::MissingJsonContentType(_)) => {
            let message = "expected a JSON list of URLs sent as `content-type: \
                           application/json`, as `curl --json '[…]'` or `curl -H \
                           'content-type: application/json' -d '[…]'` send it (no other type \
                           is taken: a web page in a browser may send those unasked)"
                .to_owned();
            return json_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, message);
        }
        Err(refused) => {
            let message = format!("expected a JSON list of URLs: {}", refused.body_text());
            return json_error(refused.status(), message);
        }
    };
    let mut seeds = Vec::new();
    let mut rejected = Vec::new();
    let mut rejected_total = 0;
    for url in urls {
        // A SURT prefix parses as a URL whose host is `(org,example,)`: refused as the
        // config's seeds refuse it.
        let parsed = match crate::surt::seed_problem(&url) {
            Some(why) => Err(why),
            None => urlnorm::normalize_str(&url).map_err(|e| e.to_string()),
        };
        match parsed {
            Ok(parsed) => seeds.push(parsed),
            Err(error) => {
                rejected_total += 1;
                if rejected.len() < REJECTED_LISTED {
                    rejected.push(Rejected { url, error });
                }
            }
        }
    }
    if rejected_total > 0 {
        let body = SeedsAdded {
            added: 0,
            known: 0,
            rejected,
            rejected_total,
            hosts_left_out: Vec::new(),
        };
        return (StatusCode::BAD_REQUEST, Json(body)).into_response();
    }
    // Trust and scope change under the guard, as a reload's do, so that what this
    // request changed is what is put back should its rows not be stored.
    let changing = admin.scope.changing().await;
    let trusted = admin.network.trust(&seeds);
    let before = admin.scope.get();
    let scope = before.with_seeds(&seeds);
    // A host the config's `hosts` leave out stays out: no link into it is followed.
    let new_hosts: Vec<String> = seeds
        .iter()
        .filter(|url| !before.host_in_scope(url) && scope.host_in_scope(url))
        .filter_map(|url| url.host_str().map(str::to_owned))
        .collect();
    let rows: Vec<Discovered> = seeds.iter().map(|url| scope.seed(url)).collect();
    let left_out = hosts_left_out(&scope, &seeds);
    admin.host_rules.learn_credentials(&seeds);
    admin.scope.set(scope);
    let added = match admin.store.enqueue_seeds_once(&rows, admin.readmit.1).await {
        Ok(added) => added,
        Err(e) => {
            // Nothing was stored: no seed asks for the scope or the trust now.
            admin.scope.set(Scope::clone(&before));
            admin.network.distrust(&trusted);
            return not_stored(&e);
        }
    };
    admin.host_rules.learn(&seeds);
    seen::note_found(&admin.seen, &rows);
    drop(changing);
    admin.progress.work_added();
    if !new_hosts.is_empty() {
        admin.new_hosts.add(new_hosts);
    }
    let hosts = left_out.len();
    let left_out: Vec<String> = left_out.into_iter().take(REJECTED_LISTED).collect();
    if !left_out.is_empty() {
        tracing::warn!(
            hosts,
            "seeds sent over the admin API on hosts `scope.hosts` leaves out ({}): they are \
             fetched, and of their links only those to the hosts named there are followed",
            left_out.join(", ")
        );
    }
    let body = SeedsAdded {
        added,
        known: u64::try_from(rows.len())
            .unwrap_or(u64::MAX)
            .saturating_sub(added),
        rejected,
        rejected_total,
        hosts_left_out: left_out,
    };
    (StatusCode::ACCEPTED, Json(body)).into_response()
}

/// The answer to a body over [`MAX_BODY_BYTES`]: it may well be a list of URLs, a long one.
fn too_large() -> Response {
    let message = format!(
        "the body is over the {} MiB a request may hold: send the seeds in several requests",
        MAX_BODY_BYTES >> 20
    );
    json_error(StatusCode::PAYLOAD_TOO_LARGE, message)
}

/// The names of the hosts of `seeds` that `scope.hosts` leaves out, each once: said in a
/// warning and the answer, as the config's seeds are.
fn hosts_left_out(scope: &Scope, seeds: &[url::Url]) -> BTreeSet<String> {
    scope
        .seeds_left_out(seeds)
        .into_iter()
        .filter_map(|(_, url)| url.host_str().map(str::to_owned))
        .collect()
}

/// Runs until the service stops: a site's pages may have been linked from pages stored
/// before a seed put it in scope, and those links are followed after the seed's request
/// is answered (an index range per host, not a pass over every link), one pass at a time
/// for all the hosts waiting (see [`readmit::NewHosts`]).
pub async fn follow_new_hosts(admin: Arc<Admin>) {
    let following = async {
        loop {
            let hosts = admin.new_hosts.next().await;
            links_to_new_hosts(&admin, &hosts).await;
        }
    };
    tokio::select! {
        () = admin.stopping.cancelled() => {}
        () = following => {}
    }
}

async fn links_to_new_hosts(admin: &Admin, hosts: &[String]) {
    let scope = admin.scope.get();
    match readmit::links_to_new_hosts(&admin.store, &scope, hosts, admin.readmit).await {
        Ok((0, _)) => {}
        Ok((added, trapped)) => {
            admin.progress.trapped_apart(trapped);
            tracing::info!(
                added,
                hosts = hosts.len(),
                "links stored before the seeds' hosts were in scope are followed"
            );
            admin.progress.work_added();
        }
        Err(e) => tracing::warn!("following stored links to the new seeds' hosts: {e}"),
    }
}

/// A request the API could not do, said in JSON as its other answers are: a script reads
/// them as JSON (`jq .state`, `jq .added`), and axum's own refusals are plain text.
fn json_error(status: StatusCode, message: String) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

/// Why seeds were not stored. A refusal of their rows (a user's trigger or `CHECK` on
/// `frontier`) is the request's: 422, with the URL refused when one alone is, as the same
/// request would be refused again. Anything else (the database out of reach) is a 503:
/// the same request may be stored later.
fn not_stored(error: &crate::Error) -> Response {
    if !error.is_refusal() {
        return json_error(StatusCode::SERVICE_UNAVAILABLE, error.to_string());
    }
    let mut body = serde_json::json!({ "error": error.to_string() });
    if let crate::Error::RefusedUrl { url, .. } = error {
        body["url"] = url.as_str().into();
    }
    (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
}

async fn pause(State(admin): State<Arc<Admin>>) -> Response {
    set_paused(&admin, true).await
}

async fn resume(State(admin): State<Arc<Admin>>) -> Response {
    set_paused(&admin, false).await
}

/// Takes effect at once, and is kept in the database for this node: an operator who
/// paused a service does not expect a restart (an upgrade, a reboot) to set it crawling.
/// With the database out of reach, the answer says at once that it is not kept.
async fn set_paused(admin: &Admin, paused: bool) -> Response {
    let pausing = admin.pausing.lock().await;
    admin.progress.set_paused(paused);
    let kept = admin
        .store
        .set_crawl_state_once(&paused_key(&admin.store, &admin.node), i64::from(paused))
        .await;
    drop(pausing);
    let Err(e) = kept else {
        return Json(serde_json::json!({ "paused": paused })).into_response();
    };
    // Done all the same: `paused` says what holds now, for a script to go on from.
    let done = if paused { "paused" } else { "resumed" };
    let error = format!("{done} until the service restarts, but not saved for a restart: {e}");
    let body = serde_json::json!({ "paused": paused, "error": error });
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

/// The `crawl_state` key that says whether the service is paused: nodes sharing
/// PostgreSQL are paused one by one (as [`crate::store::cluster::PAUSED_NODE`] reads them).
pub fn paused_key(store: &Store, node: &str) -> String {
    store.node_key("paused", node)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_may_go_without_a_token() {
        let local: SocketAddr = "127.0.0.1:7878".parse().unwrap();
        let open: SocketAddr = "0.0.0.0:7878".parse().unwrap();
        assert!(check_exposure(local, None).is_ok());
        assert!(check_exposure("[::1]:7878".parse().unwrap(), None).is_ok());
        assert!(check_exposure("[::ffff:127.0.0.1]:7878".parse().unwrap(), None).is_ok());
        assert!(check_exposure("[::ffff:0.0.0.0]:7878".parse().unwrap(), None).is_err());
        assert!(matches!(
            check_exposure(open, None),
            Err(AdminError::Unprotected(_))
        ));
        assert!(check_exposure(open, Some("s3cret")).is_ok());
    }

    /// A host count is given again while it is younger than ten times its cost, and
    /// made again after: what a poller sees is never older than that.
    #[tokio::test]
    async fn the_busiest_hosts_are_counted_again_once_the_count_is_old() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let store = Store::open(&dir.path().join("crawl.db").display().to_string())
            .await
            .expect("open the store");
        let config = crate::Config::from_toml("seeds = []", "t").expect("a config");
        let scope = crate::scope::Scope::new(&config, &[]);
        let seed = |u: &str| scope.seed(&url::Url::parse(u).expect("a URL"));
        store
            .enqueue(&[seed("http://a.test/")])
            .await
            .expect("a seed");
        let busiest = BusiestHosts::default();
        let hosts = |counted: Vec<HostCounts>| -> Vec<String> {
            counted.into_iter().map(|h| h.host).collect()
        };
        assert_eq!(hosts(busiest.get(&store).await.expect("count")), ["a.test"]);
        store
            .enqueue(&[seed("http://b.test/")])
            .await
            .expect("a seed");
        let hour = Duration::from_secs(3600);
        if let Some(counted) = busiest.last.lock().await.as_mut() {
            counted.took = hour;
        }
        assert_eq!(
            hosts(busiest.get(&store).await.expect("count")),
            ["a.test"],
            "reused: an hour's count is fresh for ten"
        );
        if let Some(counted) = busiest.last.lock().await.as_mut() {
            counted.took = Duration::ZERO;
        }
        let mut now = hosts(busiest.get(&store).await.expect("count"));
        now.sort();
        assert_eq!(now, ["a.test", "b.test"], "counted again");
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"abcabc", b"abc"));
        assert!(!constant_time_eq(b"", b"abc"));
        assert!(!constant_time_eq(b"", b""));
    }
}
