//! The fetch pool: tokio tasks sharing one `reqwest::Client` (one connection pool), each
//! taking a job, asking robots.txt, waiting its turn at the host's gate, making one
//! request and passing on whatever came back.
//!
//! Every outcome is a value: a 404, a refused connection or a timeout becomes a
//! [`Fetched`] with a status or an error, and the worker takes the next job. Redirects are
//! not followed here: the target goes back to the frontier like any discovered URL, so it
//! is scoped, checked against robots.txt, politely scheduled, and never fetched twice.

use std::borrow::Cow;
use std::error::Error as _;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{
    HeaderMap, HeaderName, HeaderValue, ACCEPT, ACCEPT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE,
    ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED, LOCATION, SET_COOKIE, TRANSFER_ENCODING,
};
use reqwest::{redirect, Client, Proxy, RequestBuilder, Response, StatusCode};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::coding::{self, Coding, Decoder};
use crate::config::{Config, PolitenessConfig};
use crate::cookies::Jar;
use crate::error::Error;
use crate::frontier::dispatcher::Progress;
use crate::frontier::hosts::HostLeases;
use crate::frontier::Release;
use crate::gaps;
use crate::host_headers::HostRules;
use crate::ipgate::{Busy, IpGate, IpTurn};
use crate::metrics;
use crate::net_outage::NetOutage;
use crate::netguard::{self, GuardedResolver, NetworkPolicy};
use crate::page::{CrawlJob, ErrorKind, FetchError, Fetched, JobKind};
use crate::politeness::{HostGate, HostLimits, Politeness, Turn};
use crate::queue;
use crate::retry::{self, Decision, RetryPolicy};
use crate::robots::{RobotsCache, Verdict};
use crate::scope::SharedScope;
use crate::stages::{Phase, Stage};
use crate::traps::Traps;
use crate::{sitemap, sniff, urlnorm};

/// The header of robots directives for one response (not in `reqwest::header`).
const X_ROBOTS_TAG: HeaderName = HeaderName::from_static("x-robots-tag");
/// A page's move, as browsers read it (not in `reqwest::header`).
const REFRESH: HeaderName = HeaderName::from_static("refresh");

/// How long a body may take to get going before its transfer rate is judged.
const RATE_GRACE: Duration = Duration::from_secs(3);

/// The sitemaps of `url`'s host: those its robots.txt names, else `/sitemap.xml`.
fn host_sitemaps<'a>(named: &'a [Url], url: &Url) -> Cow<'a, [Url]> {
    if named.is_empty() {
        Cow::Owned(url.join("/sitemap.xml").ok().into_iter().collect())
    } else {
        Cow::Borrowed(named)
    }
}

/// The sitemap protocol's own limit on an uncompressed sitemap.
const MAX_SITEMAP_BYTES: usize = 50 * 1024 * 1024;
/// Sitemaps read at once, by all the fetch workers: each may hold [`MAX_SITEMAP_BYTES`]
/// while it is read, ten pages' cap, and a crawl of many hosts' sitemaps held one per
/// worker (eight hosts' 45 MB sitemaps took 474 MB), past what `channels.max_bytes` and
/// `fetch.max_body_bytes` promise.
pub const SITEMAPS_READ_AT_ONCE: usize = 2;
/// The most a declared `Content-Length` reserves before the bytes arrive: 64 workers
/// each told "10 MB" by a server that then stalls must not hold 640 MB.
const PRESIZE_LIMIT: usize = 256 * 1024;

/// How long an idle connection outlives the longest configured delay between two
/// requests to a host.
const IDLE_MARGIN: Duration = Duration::from_secs(1);

/// How long an idle connection is kept. It is worth keeping for its host's next request,
/// which comes one delay after the last answer while the host has URLs waiting. Kept
/// longer, it is a socket and its buffers (up to some 400 KB, grown for a large body) for
/// a host the crawl has moved past: reqwest's default of 90 s, with no bound on hosts,
/// held one for every host of the last 90 s, and a broad crawl ran out of memory or of
/// file descriptors. Hosts with a longer robots.txt `Crawl-delay` connect again.
pub fn idle_connection_time(politeness: &PolitenessConfig) -> Duration {
    let longest = politeness
        .hosts
        .iter()
        .filter_map(|h| h.delay)
        .fold(politeness.delay, Duration::max);
    longest + IDLE_MARGIN
}

/// The one HTTP client every fetch worker shares (pages, robots.txt, sitemaps), with the
/// headers the config gives some hosts.
#[derive(Clone)]
pub struct HttpClient {
    client: Client,
    host_rules: Arc<HostRules>,
    /// Through an HTTP proxy or `socks5h`, the only name the crawler resolves is the
    /// proxy's own, so a name that does not resolve is the config's, not the page's.
    proxy_resolves: bool,
    /// Through an HTTP proxy, which forwards `http://` requests and answers for them.
    forwarded: bool,
    /// Through a proxy named `https://`, reached over TLS of its own: a handshake that
    /// fails may be the proxy's, not the site's.
    proxy_tls: bool,
    /// `fetch.cookies`: the client's jar, and a cookie check is answered.
    jar: Option<Arc<Jar>>,
    /// `politeness.per_ip_concurrency`, for every request the client makes.
    ips: Arc<IpGate>,
    /// Outages of `fetch.proxy`, or without one of the crawler's own network, waited out.
    outage: Arc<NetOutage>,
}

impl HttpClient {
    /// A GET of `url`, with the credentials a seed gave for its origin (as HTTP Basic
    /// authorization) and the headers of the first `[[fetch.host]]` rule matching its
    /// host (which may replace them), unless the rule is for https only and `url` is
    /// plain http (see [`HostRules`]; `fetch.headers` are the client's own).
    pub fn get(&self, url: &Url) -> RequestBuilder {
        let mut request = self.client.get(url.clone());
        if let Some((user, password)) = self.host_rules.credentials_for(url) {
            request = request.basic_auth(user, Some(password));
        }
        match self.host_rules.headers_for(url) {
            Some(headers) => request.headers(headers.clone()),
            None => request,
        }
    }

    /// [`Self::get`] asking for `types` whatever `Accept` the config gives pages:
    /// robots.txt and sitemaps are files the crawler reads itself, and a site that
    /// negotiates strictly answers an `Accept` naming only HTML for them with a 406.
    pub fn get_as(&self, url: &Url, types: HeaderValue) -> RequestBuilder {
        self.get(url)
            .headers(HeaderMap::from_iter([(ACCEPT, types)]))
    }

    /// The limit on requests in flight to one address, which every request takes a
    /// place under once its host's turn has come.
    pub fn ip_gate(&self) -> &IpGate {
        &self.ips
    }

    /// Outages of the way out, for a stop to see.
    pub fn outage(&self) -> &NetOutage {
        &self.outage
    }

    pub fn keeps_cookies(&self) -> bool {
        self.jar.is_some()
    }

    /// [`send`], through an outage of `fetch.proxy` or of the crawler's own network
    /// ([`NetOutage`]): a request that met one goes again once it is over. Returns how
    /// long it waited for it, which is no time of the site's.
    pub(crate) async fn send(
        &self,
        mut request: RequestBuilder,
        timeout: Duration,
    ) -> (reqwest::Result<Response>, Duration) {
        let outage = &self.outage;
        let mut waited = Duration::ZERO;
        loop {
            match send(request, timeout).await {
                (Ok(response), _) => {
                    outage.carried(response.url());
                    return (Ok(response), waited);
                }
                (Err(e), Some(again)) if outage.may_wait() && self.unreached(&e) => {
                    let tried = Instant::now();
                    let back = outage.suspects(e.url()) && outage.ride_out().await;
                    // Given up after OUTLAST too: the wait was no time of the site's.
                    waited += tried.elapsed();
                    if !back {
                        return (Err(e), waited);
                    }
                    request = again;
                }
                (sent, _) => return (sent, waited),
            }
        }
    }

    /// Whether a request failed to connect to the way out `outage` watches: `fetch.proxy`
    /// ([`Self::proxy_unreached`]), or without one, the site (refused, unreachable, not
    /// within `fetch.connect_timeout_ms`, its name not resolved for now).
    fn unreached(&self, e: &reqwest::Error) -> bool {
        let error = fetch_error(e);
        if self.outage.is_proxy() {
            return self.proxy_unreached(&error.message);
        }
        match error.kind {
            ErrorKind::Connect => error.message.contains(TCP_CONNECT_FAILED),
            ErrorKind::Timeout => error.message.ends_with(NO_CONNECTION_IN_TIME),
            ErrorKind::DnsTemporary => true,
            _ => false,
        }
    }

    /// Whether a request failed for `fetch.proxy` taking no connection (refused,
    /// unreachable): through an HTTP proxy the only TCP connection made is to the proxy;
    /// through a SOCKS one, hyper-util words the failure without its cause.
    fn proxy_unreached(&self, message: &str) -> bool {
        (self.forwarded
            && message.contains(TCP_CONNECT_FAILED)
            && !message.ends_with(NO_CONNECTION_IN_TIME))
            || message.contains(SOCKS_PROXY_UNREACHED)
    }

    /// The response `sent` brought, with its cookies kept; why there is none to use: no
    /// answer, the proxy's refusal ([`Self::proxy_refusal`]), or what `refuse` finds in
    /// it (their cookies left out too: reqwest hands them to the jar, which leaves them
    /// for this).
    pub fn accept(
        &self,
        sent: reqwest::Result<Response>,
        refuse: impl FnOnce(&Response) -> Option<FetchError>,
    ) -> Result<Response, FetchError> {
        let response = sent.map_err(|e| self.error(&e))?;
        if let Some(refused) = self.proxy_refusal(&response).or_else(|| refuse(&response)) {
            return Err(refused);
        }
        if let Some(jar) = &self.jar {
            jar.take(response.headers(), response.url());
        }
        Ok(response)
    }

    /// When the cookies a request to `url` would carry last changed (see
    /// [`Jar::changed_at`]); `None` without a jar.
    pub fn cookies_changed_at(&self, url: &Url) -> Option<SystemTime> {
        self.jar.as_ref()?.changed_at(url)
    }

    /// The proxy's refusal of a request it forwards: a `407 Proxy Authentication
    /// Required`, which no site sends (the credentials in `fetch.proxy` missing or wrong).
    /// It says nothing of the page: taken as its status it was kept as final, and as
    /// robots.txt's, as "no robots.txt" for `politeness.robots_ttl_s`. It is a failure
    /// for now, as is a 407 to the `CONNECT` that carries `https://`.
    fn proxy_refusal(&self, response: &Response) -> Option<FetchError> {
        (self.forwarded
            && response.url().scheme() == "http"
            && response.status() == StatusCode::PROXY_AUTHENTICATION_REQUIRED)
            .then(|| FetchError {
                kind: ErrorKind::Connect,
                message: PROXY_WANTS_CREDENTIALS.to_owned(),
            })
    }

    /// What became of a request that got no answer. A proxy whose name stopped resolving
    /// since the start (see [`check_proxy`]) would make every URL a final `dns` row,
    /// never asked again once its DNS is mended: it is a failure for now, retried, and
    /// says which name it was. Through an HTTP proxy the only TCP connection made is to
    /// the proxy, so one that fails is said to be the proxy's, not the site's; through a
    /// SOCKS proxy too, whose failure hyper-util words without its cause. A handshake a
    /// proxy named `https://` failed, an untrusted certificate an intercepting proxy
    /// signed, and a proxy slow to answer are said to be the proxy's for the same reason:
    /// each site in turn was blamed for them.
    pub fn error(&self, e: &reqwest::Error) -> FetchError {
        let mut error = fetch_error(e);
        if self.proxy_tls && error.kind == ErrorKind::Tls && proxy_handshake(e, &error.message) {
            error.kind = ErrorKind::Connect;
            // Only a proxy that answered in plain HTTP is told of `http://`: one whose
            // certificate is not trusted would send its credentials in the clear so.
            if error.message.contains(PLAIN_HTTP_ANSWER) {
                error.message.insert_str(0, PROXY_SPEAKS_PLAIN_HTTP);
            }
            error.message.insert_str(0, PROXY_TLS_FAILED);
        } else if self.forwarded && error.message.ends_with(UNKNOWN_ISSUER_MEANING) {
            error.message.push_str(INTERCEPTED);
        } else if self.forwarded && error.message.ends_with(NO_CONNECTION_IN_TIME) {
            error.message.push_str(PROXY_SLOW);
        } else if self.proxy_resolves && error.kind == ErrorKind::Dns {
            error.kind = ErrorKind::DnsTemporary;
            error
                .message
                .insert_str(0, "the name of fetch.proxy does not resolve: ");
        } else if self.proxy_unreached(&error.message) {
            error
                .message
                .insert_str(0, "fetch.proxy does not take connections: ");
        } else if let Some((_, meaning)) = TUNNEL_FAILURES
            .iter()
            .find(|(said, _)| self.forwarded && error.message.contains(said))
        {
            error.message.insert_str(0, &format!("{meaning}: "));
        }
        error
    }
}

/// Whether a failed handshake through a proxy named `https://` was the proxy's own: the
/// only one an `http://` URL takes, or the one before the tunnel an `https://` URL's
/// `CONNECT` goes through. Taken for the site's, every URL was a final `tls` row saying
/// the site's port was no HTTPS one, or its certificate not trusted.
fn proxy_handshake(e: &reqwest::Error, message: &str) -> bool {
    e.url().is_some_and(|url| url.scheme() == "http") || message.contains(TUNNEL_NOT_REACHED)
}

/// hyper-util's words for a tunnel whose connection to the proxy failed.
const TUNNEL_NOT_REACHED: &str = "tunnel error: failed to create underlying connection";

/// What a failed handshake with a proxy named `https://` means.
const PROXY_TLS_FAILED: &str = "fetch.proxy, named https://, failed its own TLS handshake: ";

/// rustls's words for a server that answered a handshake in plain HTTP.
const PLAIN_HTTP_ANSWER: &str = "received corrupt message of type InvalidContentType";

/// Said of a proxy named `https://` that answered [`PLAIN_HTTP_ANSWER`].
const PROXY_SPEAKS_PLAIN_HTTP: &str = "it answered in plain HTTP, as a proxy named http:// \
    does: ";

/// The usual cause of [`UNKNOWN_ISSUER_MEANING`] through an HTTP proxy: a corporate one
/// that intercepts TLS signs every site's certificate with its own CA. Without it, the
/// message blamed each site in turn.
const INTERCEPTED: &str = "; through fetch.proxy, most often a proxy that intercepts TLS, \
    signing every site's certificate with its own CA: trust that CA in the same way";

/// Whose connection [`NO_CONNECTION_IN_TIME`] is through an HTTP proxy: without it, the
/// message blamed the site for a proxy busy or slow to answer.
const PROXY_SLOW: &str = ": the connection is to fetch.proxy, which answers the CONNECT of an \
    https:// URL once it has reached the site";

/// What a `407 Proxy Authentication Required` from `fetch.proxy` means.
const PROXY_WANTS_CREDENTIALS: &str = "fetch.proxy answered 407 Proxy Authentication \
                                       Required: the credentials in its URL are missing or wrong";

/// hyper-util's words for an HTTP proxy's answer to the `CONNECT` of an `https://` URL
/// other than a 200, and what they mean. Its status is not kept: alone, they said
/// neither that the proxy answered nor what ("tunnel error: unsuccessful").
const TUNNEL_FAILURES: [(&str, &str); 3] = [
    (
        "tunnel error: proxy authorization required",
        PROXY_WANTS_CREDENTIALS,
    ),
    (
        "tunnel error: unsuccessful",
        "fetch.proxy did not open a tunnel to the site: it answered CONNECT with an error \
         (the site refused by its rules or out of its reach, or the proxy busy)",
    ),
    (
        "tunnel error: unexpected end of file",
        "fetch.proxy closed the connection without answering CONNECT",
    ),
];

/// Looks up `fetch.proxy`'s name once, before the crawl starts. A name that does not
/// exist (a typo) can carry no request, and a crawl through it would only fail every URL:
/// it is refused, naming the key. A resolver that cannot answer for now (the network not
/// up yet as a service starts) is no fault of the config: a warning, and the URLs fail
/// for now and are retried as it recovers.
pub async fn check_proxy(config: &Config) -> Result<(), Error> {
    let Some(url::Host::Domain(host)) = config.fetch.proxy.as_ref().and_then(Url::host) else {
        return Ok(());
    };
    let Err(e) = tokio::net::lookup_host((host, 0)).await else {
        return Ok(());
    };
    let reason = e.to_string();
    if dns_error_kind(&reason) == ErrorKind::Dns {
        return Err(Error::ProxyUnresolved {
            host: host.to_owned(),
            reason,
        });
    }
    tracing::warn!(
        "`fetch.proxy` names the host {host}, which cannot be resolved for now ({reason}): \
         URLs fail for now, and are retried"
    );
    Ok(())
}

/// Builds the one HTTP client every fetch worker shares; it connects only where `network`
/// allows, and sends `[[fetch.host]]` headers as `host_rules` says.
pub fn client(
    config: &Config,
    network: Arc<NetworkPolicy>,
    host_rules: Arc<HostRules>,
) -> Result<HttpClient, Error> {
    let per_host = match config.fetch.keep_alive {
        true => usize::try_from(config.politeness.per_host_concurrency).unwrap_or(usize::MAX),
        false => 0,
    };
    let builder = match &config.fetch.proxy {
        Some(proxy) => {
            // The proxy's name, which the user chose as they chose the seeds, is trusted
            // as the proxy's. Through an HTTP proxy or `socks5h` the names pages lead to
            // are the proxy's to resolve, and only URLs that name an address (or the
            // proxy's host) are checked here; through `socks5` the crawler resolves
            // them, and the guard checks each.
            network.trust_proxy(proxy);
            Client::builder().proxy(Proxy::all(proxy.as_str()).map_err(Error::HttpClient)?)
        }
        // reqwest otherwise takes a proxy from HTTP_PROXY and the like, unasked: the
        // guarded resolver would then see only the proxy's name, and the proxy would
        // connect to any address a page or a redirect names.
        None => Client::builder().no_proxy(),
    };
    let jar = config.fetch.cookies.then(|| Arc::new(Jar::default()));
    // Through an HTTP proxy or `socks5h` the proxy resolves the names, and the crawler
    // cannot tell which share an address.
    let resolves = config
        .fetch
        .proxy
        .as_ref()
        .is_none_or(|proxy| proxy.scheme() == "socks5");
    let ips = Arc::new(IpGate::new(
        config.politeness.per_ip_concurrency,
        resolves,
        config.fetch.connect_timeout,
    ));
    let builder = match &jar {
        Some(jar) => builder.cookie_provider(Arc::clone(jar)),
        None => builder,
    };
    let client = builder
        .dns_resolver(Arc::new(
            GuardedResolver::new(network).teaching(Arc::clone(&ips)),
        ))
        .user_agent(&config.fetch.user_agent)
        .connect_timeout(config.fetch.connect_timeout)
        .timeout(config.fetch.timeout)
        .redirect(redirect::Policy::none())
        // Bodies are decoded by src/coding.rs, under its caps. A crate built alongside
        // pipecrawl that turns on reqwest's decoders (bench/limits, `cargo build -p
        // pipecrawl -p …`, a program using the library) turns them on here too: reqwest
        // would then decode first, reading one gzip member only and failing a plain body
        // sent as gzip.
        .no_gzip()
        .no_brotli()
        .no_deflate()
        .no_zstd()
        // hyper refuses an HTTP/1 head with more headers than this, and HTTP/2 a header
        // list larger than this, before reqwest sees them; `oversized_head` checks the rest.
        .http1_max_headers(config.fetch.max_headers)
        // Header lines browsers read past: a value folded onto the next line (which RFC
        // 9112 §5.2 has a user agent unfold), a line with a control byte or a name with a
        // space in it (skipped), a space before the colon. Refused, one such line in a
        // header nobody reads cost the whole page, as a final `request` error.
        .http1_allow_obsolete_multiline_headers_in_responses(true)
        .http1_ignore_invalid_headers_in_responses(true)
        .http1_allow_spaces_after_header_name_in_responses(true)
        .http2_max_header_list_size(
            u32::try_from(config.fetch.max_header_bytes).unwrap_or(u32::MAX),
        )
        .tls_danger_accept_invalid_certs(config.fetch.accept_invalid_certs)
        .pool_max_idle_per_host(per_host)
        .pool_idle_timeout(idle_connection_time(&config.politeness))
        .tcp_nodelay(true)
        .default_headers(request_headers(config))
        .build()
        .map_err(build_failed)?;
    Ok(HttpClient {
        client,
        host_rules,
        proxy_resolves: !resolves,
        forwarded: config
            .fetch
            .proxy
            .as_ref()
            .is_some_and(|proxy| matches!(proxy.scheme(), "http" | "https")),
        proxy_tls: config
            .fetch
            .proxy
            .as_ref()
            .is_some_and(|proxy| proxy.scheme() == "https"),
        jar,
        ips,
        // A proxy with no host is refused by the config: there is no such run.
        outage: Arc::new(
            config
                .fetch
                .proxy
                .as_ref()
                .and_then(|proxy| NetOutage::proxy(proxy, config.fetch.connect_timeout))
                .unwrap_or_else(|| NetOutage::network(config.fetch.connect_timeout)),
        ),
    })
}

/// How rustls-platform-verifier says it found no CA certificate on the machine, which
/// reqwest passes on only as "unexpected error".
const NO_CA_CERTIFICATES: &str = "No CA certificates were loaded";

/// Names a machine without CA certificates as such, with what to do about it.
fn build_failed(e: reqwest::Error) -> Error {
    if causes(&e).any(|cause| cause.to_string().contains(NO_CA_CERTIFICATES)) {
        Error::NoCaCertificates
    } else {
        Error::HttpClient(e)
    }
}

/// What a request accepts unless `fetch.headers` says: what browsers (and Scrapy and
/// Nutch) ask for, HTML first. A site that negotiates (a web framework answering JSON to
/// a client that takes anything) then serves the crawler the pages it serves people.
const ACCEPTED_TYPES: HeaderValue =
    HeaderValue::from_static("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8");

/// The headers every request sends: `fetch.headers`, an `Accept` ([`ACCEPTED_TYPES`])
/// unless they name one, and the codings the crawler decodes (see [`Coding`]; the client
/// decodes none, its features left off).
fn request_headers(config: &Config) -> HeaderMap {
    let mut headers = config.fetch.headers.clone();
    headers.entry(ACCEPT).or_insert(ACCEPTED_TYPES);
    headers.insert(ACCEPT_ENCODING, coding::ACCEPTED);
    headers
}

/// What every fetch worker shares.
pub struct FetchContext {
    pub client: HttpClient,
    pub network: Arc<NetworkPolicy>,
    pub robots: Arc<RobotsCache>,
    pub gate: Arc<HostGate>,
    pub politeness: Politeness,
    pub retry: RetryPolicy,
    pub progress: Progress,
    pub max_body_bytes: usize,
    pub max_redirects: u32,
    pub min_rate: MinRate,
    /// `fetch.timeout_ms`: the longest a whole answer takes, a resend included.
    pub timeout: Duration,
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub respect_robots_txt: bool,
    /// For `scope.sitemaps`, which a SIGHUP may turn on or off.
    pub scope: SharedScope,
    /// On a database shared with other nodes: whose hosts and URLs this node still holds.
    pub leases: Option<HostLeases>,
    /// [`SITEMAPS_READ_AT_ONCE`]'s places.
    pub sitemap_reads: Semaphore,
}

pub struct FetchPool;

/// A job's wait for its host longer than this (its robots.txt's Crawl-delay, begun by
/// the robots.txt request itself; a `Retry-After` that came after it was handed out) is
/// spent in the frontier, not asleep on a fetch worker other hosts could use. Also the
/// longest a job handed back for a busy address waits to hear of a request there ending.
const HAND_BACK_AFTER: Duration = Duration::from_millis(250);

/// `release` of a job that sent no request to its host.
fn unrequested(release: Release) -> Release {
    Release {
        unrequested: true,
        ..release
    }
}

/// What became of a job.
enum Outcome {
    /// Requested, or refused or failed before: passed on to be stored.
    Done(Box<Fetched>),
    /// Not requested yet: its host may not be asked for a while, and the frontier holds
    /// it till then.
    Later(CrawlJob),
}

impl FetchPool {
    /// Starts `workers` workers. Each stops when the job channel closes, or when `abort`
    /// is cancelled (the grace period after a stop ran out): at once if it is fetching,
    /// handing its job back through [`Progress::abandon`], else once the page it holds,
    /// fetched in full, is passed on.
    pub fn spawn(
        workers: usize,
        context: Arc<FetchContext>,
        jobs: flume::Receiver<CrawlJob>,
        fetched: queue::Sender<Fetched>,
        abort: CancellationToken,
    ) -> JoinSet<()> {
        let mut set = JoinSet::new();
        for _ in 0..workers {
            let worker = FetchWorker {
                cx: Arc::clone(&context),
                jobs: jobs.clone(),
                fetched: fetched.clone(),
            };
            set.spawn(worker.run(abort.clone()));
        }
        set
    }
}

struct FetchWorker {
    cx: Arc<FetchContext>,
    jobs: flume::Receiver<CrawlJob>,
    fetched: queue::Sender<Fetched>,
}

impl FetchWorker {
    async fn run(self, abort: CancellationToken) {
        let mut timer = self.cx.progress.stages().timer(Stage::Fetch);
        loop {
            timer.enter(Phase::Waiting);
            let job = tokio::select! {
                job = self.jobs.recv_async() => match job {
                    Ok(job) => job,
                    Err(_) => break,
                },
                () = abort.cancelled() => break,
            };
            let id = job.id;
            timer.enter(Phase::Working);
            let host = Arc::clone(&job.host);
            let span = tracing::debug_span!("fetch", url = %job.url);
            let fetch = tracing::Instrument::instrument(self.process(job), span);
            let (outcome, mut release) = tokio::select! {
                // A fetch that ended as the grace period did is passed on.
                biased;
                fetched = fetch => fetched,
                () = abort.cancelled() => {
                    self.cx.progress.abandon(id);
                    break;
                }
            };
            // The frontier hands out the host's next job only when the gate will let it
            // go: a job it sent earlier would hold a worker asleep at the gate (a
            // Crawl-delay, a Retry-After, a slow answer) while other hosts wait.
            // One that sent no request leaves the host's turn to the next job, which the
            // gate still spaces should it send one.
            if !release.unrequested {
                let next_turn = self.cx.gate.next_turn(&host);
                release.pause_until = release
                    .pause_until
                    .max(next_turn.map(tokio::time::Instant::into_std));
            }
            match outcome {
                Outcome::Done(fetched) => {
                    fetched.log();
                    self.cx.progress.host_released(host, release);
                    timer.enter(Phase::Blocked);
                    // Not cut off by `abort`: the page is fetched, and the parsers take
                    // it however far behind they are; dropped, it would be asked of its
                    // server again at the next start.
                    let weight = fetched.weight();
                    if self.fetched.send_async(*fetched, weight).await.is_err() {
                        break;
                    }
                }
                Outcome::Later(job) => self.cx.progress.hand_back(job, release),
            }
        }
    }

    async fn process(&self, job: CrawlJob) -> (Outcome, Release) {
        let cx = &self.cx;
        let mut out = Fetched::new(job);
        let mut release = Release::default();

        if let Err(message) = cx.network.check_url(&out.job.url).await {
            out.error = Some(FetchError {
                kind: ErrorKind::AddressRefused,
                message,
            });
            return (Outcome::Done(Box::new(out)), unrequested(release));
        }
        let host_limit = || cx.politeness.limits(&out.job.host, None).concurrency;
        if let Some(address) = cx.client.ip_gate().busy(&out.job.url, host_limit) {
            // Its server is at `politeness.per_ip_concurrency` under other names: the
            // frontier holds the job, and the worker takes another host's.
            release.address_busy = Some((address, Instant::now() + HAND_BACK_AFTER));
            return (Outcome::Later(out.job), release);
        }
        let sitemaps = cx.scope.get().sitemaps;
        if cx.respect_robots_txt || sitemaps {
            if let Some(turn) = self.robots_turn_ahead(&out.job.host) {
                // robots.txt must be asked again, and its host not yet: the job waits for
                // that turn in the frontier, not asleep on this worker at the gate.
                release.pause_until = Some(turn);
                return (Outcome::Later(out.job), unrequested(release));
            }
            match cx.robots.lookup(&out.job.url, &out.job.host).await {
                Ok(lookup) => {
                    // Zero when robots.txt has none, which the frontier takes as such: a
                    // Crawl-delay robots.txt dropped when fetched again stops spacing the
                    // host (`None` is "not asked").
                    release.crawl_delay = Some(lookup.robots.crawl_delay.unwrap_or_default());
                    if sitemaps {
                        let named = host_sitemaps(&lookup.robots.sitemaps, &out.job.url);
                        // A page the host names as a sitemap (a seed, a link) is read as
                        // one: fetched as a page, its XML is not read, and the frontier
                        // holds the URL once, so the sitemap would never be.
                        if named.contains(&out.job.url) {
                            out.job.kind = JobKind::Sitemap;
                        }
                        if lookup.first {
                            out.sitemaps = named.into_owned();
                        }
                    }
                    // Not obeyed, robots.txt is read for its sitemaps only: one that does
                    // not answer costs them, not the page.
                    let obeyed = cx.respect_robots_txt;
                    if let Some(error) = lookup.robots.network_error().filter(|_| obeyed) {
                        // The host does not answer at all: say so, rather than "robots".
                        out.error = Some(FetchError {
                            kind: error.kind,
                            message: format!("fetching robots.txt: {}", error.message),
                        });
                        self.decide_robots_retry(&mut out, lookup.robots.asked_again_in());
                        return (Outcome::Done(Box::new(out)), unrequested(release));
                    }
                    let verdict = lookup.robots.verdict(&out.job.url);
                    if cx.respect_robots_txt && verdict != Verdict::Allowed {
                        let wait = lookup.robots.asked_again_in();
                        let answered = lookup.robots.failed_status();
                        self.robots_refusal(&mut out, (verdict, answered), wait);
                        return (Outcome::Done(Box::new(out)), unrequested(release));
                    }
                    out.robots = obeyed.then_some(lookup.robots);
                }
                Err(e) => {
                    let host = &out.job.host;
                    tracing::warn!(%host, "robots.txt cache unavailable: {e}");
                    self.robots_refusal(&mut out, (Verdict::Unavailable, None), None);
                    return (Outcome::Done(Box::new(out)), unrequested(release));
                }
            }
        }

        let host = Arc::clone(&out.job.host);
        let limits = cx.politeness.limits(&host, release.crawl_delay);
        let wait_ends = cx.gate.next_turn(&host).map(tokio::time::Instant::into_std);
        // A job that carries its host's sitemaps keeps them by going ahead.
        if out.sitemaps.is_empty() {
            let now = Instant::now();
            if wait_ends.is_some_and(|at| at > now + HAND_BACK_AFTER) {
                return (Outcome::Later(out.job), release);
            }
            if !limits.delay.is_zero() && cx.gate.awaits_answer(&host) {
                // The host has not answered a request yet, and the delay counts from that
                // answer, however long it takes: the frontier holds the job until a
                // request of the host's ends, or, with none of its own in flight (a
                // robots.txt another host redirected to it), asks again after a while.
                release.after_answer = true;
                release.pause_until = Some(now + limits.delay.max(HAND_BACK_AFTER));
                return (Outcome::Later(out.job), release);
            }
        }
        let _sitemap_read = if out.job.kind == JobKind::Sitemap {
            match cx.sitemap_reads.try_acquire() {
                Ok(place) => Some(place),
                Err(_) if out.sitemaps.is_empty() => {
                    // Other hosts' sitemaps are being read: the frontier holds this one.
                    release.pause_until = Some(Instant::now() + HAND_BACK_AFTER);
                    return (Outcome::Later(out.job), unrequested(release));
                }
                // Never closed: a place comes once a read ends.
                Err(_) => cx.sitemap_reads.acquire().await.ok(),
            }
        } else {
            None
        };
        let ips = cx.client.ip_gate();
        let ip_turn = match ips.try_take(&out.job.url, limits.concurrency).await {
            Ok(turn) => turn,
            Err(Busy(address)) if out.sitemaps.is_empty() => {
                release.address_busy = Some((address, Instant::now() + HAND_BACK_AFTER));
                return (Outcome::Later(out.job), release);
            }
            Err(Busy(_)) => ips.take(&out.job.url, limits.concurrency).await,
        };
        release.address_freed = ip_turn.as_ref().map(IpTurn::ip);
        if release.crawl_delay.is_some_and(|delay| !delay.is_zero()) {
            // When this request will go and the next may follow, as the gate books them;
            // told now, the frontier holds the host's next job rather than send it to
            // sleep on a worker at the gate (the frontier hears of a Crawl-delay from a
            // job's end otherwise, and of a new host's only after its first job).
            let start = wait_ends.unwrap_or_else(Instant::now);
            let learned = Release {
                crawl_delay: release.crawl_delay,
                pause_until: Some(start + limits.delay),
                ..Release::default()
            };
            cx.progress.host_learned(Arc::clone(&host), learned);
        }
        let Some(mut turn) = self.turn(&host, limits).await else {
            // Handed back, the row goes to the queue if it is still this node's.
            return (Outcome::Later(out.job), release);
        };
        out.fetched_at = SystemTime::now();
        let mut started = Instant::now();
        let mut retry_after = None;
        let validated = out.job.validated();
        let request = || {
            let mut request = match out.job.kind {
                JobKind::Page => cx.client.get(&out.job.url),
                JobKind::Sitemap => cx.client.get_as(&out.job.url, sitemap::ACCEPTED_TYPES),
            };
            if let Some(previous) = validated {
                if let Some(etag) = &previous.etag {
                    request = request.header(IF_NONE_MATCH, etag);
                }
                if let Some(date) = &previous.last_modified {
                    request = request.header(IF_MODIFIED_SINCE, date);
                }
            }
            request
        };
        let sent_at = Instant::now();
        let (sent, waited) = cx.client.send(request(), cx.timeout).await;
        // The wait for `fetch.proxy` is neither the site's answer time nor when it answered.
        started += waited;
        out.fetched_at += waited;
        let mut answer = self.accept(sent);
        if let Ok(response) = &answer {
            // A cookie check: the answer sets a cookie and sends the crawler back to the
            // URL it asked. Asked again through the frontier, the URL would be its own
            // redirect loop; asked again now, as a browser follows the redirect, it
            // carries the cookie the jar has just taken. Within what is left of
            // `fetch.timeout_ms`: the client's own timeout would give it a whole one.
            // It is a request to the host as any other, so it waits the host's delay
            // from this answer, a wait that is not the server's and spends none of it.
            let left = cx.timeout.saturating_sub(started.elapsed());
            if cx.client.keeps_cookies()
                && is_a_cookie_check(response, &out.job.url, &cx.scope.get().traps)
                && !left.is_zero()
            {
                turn.answered(limits.delay);
                drop(turn);
                let waiting = Instant::now();
                let Some(again) = self.turn(&host, limits).await else {
                    return (Outcome::Later(out.job), release);
                };
                turn = again;
                started += waiting.elapsed();
                let (sent, waited) = cx.client.send(request().timeout(left), left).await;
                started += waited;
                answer = self.accept(sent);
            }
        }
        turn.answered(limits.delay);
        match answer {
            Ok(response) => {
                retry_after = retry::retry_after(response.status().as_u16(), response.headers());
                self.read_response(response, &mut out).await;
            }
            Err(error) => out.error = Some(error),
        }
        // The body is read (or given up): the host, and its address, may take another
        // request.
        drop((turn, ip_turn));
        // A job carrying its host's sitemaps keeps them by going on, as a failure.
        let over_gap = |error| gaps::timed_out_over_gap(error, sent_at);
        if out.sitemaps.is_empty() && out.error.as_ref().is_some_and(over_gap) {
            tracing::info!(
                url = %out.job.url,
                "timed out while the crawler did not run: asked again"
            );
            return (Outcome::Later(out.job), release);
        }
        out.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        metrics::fetched(started.elapsed(), out.bytes);

        self.decide_retry(&mut out, retry_after);
        if retry::pauses_host(out.status) {
            // The server asked the whole host to slow down, not just this URL: for as long
            // as it said, else for as long as the URL waits (the next URLs would get the
            // same answer).
            let named = retry_after.filter(|wait| !wait.is_zero());
            let wait = named
                .or(out.retry_in)
                .unwrap_or_else(|| cx.retry.backoff(out.job.attempts + 1))
                .min(cx.retry.max_delay());
            cx.gate.pause(&host, tokio::time::Instant::now() + wait);
            // Kept past a kill when the URL waits too, or the server named the time; a
            // final answer's backoff is the crawl's guess, not worth a statement.
            if out.retry_in.is_some() || named.is_some() {
                out.host_pause = Some(wait);
            }
        }
        (Outcome::Done(Box::new(out)), release)
    }

    /// When `host` may next be asked, if that is a while off (a request's delay, a
    /// `Retry-After`) and its robots.txt is not held: the lookup would fetch robots.txt,
    /// and sleep at the gate till then. The gate first: on the throughput crawl's path a
    /// job comes when its host's turn does, and the robots cache is not asked.
    fn robots_turn_ahead(&self, host: &str) -> Option<Instant> {
        let turn = self.cx.gate.next_turn(host)?.into_std();
        (turn > Instant::now() + HAND_BACK_AFTER && self.cx.robots.held(host).is_none())
            .then_some(turn)
    }

    /// Waits for a turn at `host`'s gate. `None` when this node no longer holds the host
    /// (on a shared database, a stall outlasted its lease): the request must not go.
    async fn turn(&self, host: &str, limits: HostLimits) -> Option<Turn<'_>> {
        let turn = self.cx.gate.wait_turn(host, limits).await;
        let lost = self
            .cx
            .leases
            .as_ref()
            .is_some_and(|leases| !leases.may_fetch(host, Instant::now()));
        (!lost).then_some(turn)
    }

    /// The URL is not requested: disallowed (final), or robots.txt unavailable (retried
    /// like any transient failure, after `retry_after`: when robots.txt is asked again), with the
    /// status robots.txt `answered` if that is why.
    fn robots_refusal(
        &self,
        out: &mut Fetched,
        (verdict, answered): (Verdict, Option<u16>),
        retry_after: Option<Duration>,
    ) {
        let (kind, message) = match (verdict, answered) {
            (Verdict::Disallowed, _) => (ErrorKind::Robots, crate::robots::DISALLOWED.into()),
            (_, Some(status)) => (
                ErrorKind::RobotsUnavailable,
                format!(
                    "robots.txt answered {status}: its host's URLs wait until it answers otherwise"
                ),
            ),
            (_, None) => (
                ErrorKind::RobotsUnavailable,
                "robots.txt could not be fetched".to_owned(),
            ),
        };
        out.error = Some(FetchError { kind, message });
        self.decide_robots_retry(out, retry_after);
    }

    /// As [`Self::decide_retry`], for a URL that waits `recheck` for its host's robots.txt
    /// to be asked again, in place of its backoff. That wait is the crawl's own, at most
    /// `retry.max_delay_ms` and a millisecond: taken as a server's `Retry-After`, longer
    /// than that, it ended the URL's tries, with a fixed wait (`base_delay_ms =
    /// max_delay_ms`) at the first.
    fn decide_robots_retry(&self, out: &mut Fetched, recheck: Option<Duration>) {
        self.decide_retry(out, None);
        if let Some(recheck) = recheck.filter(|wait| !wait.is_zero()) {
            if out.retry_in.is_some() {
                out.retry_in = Some(recheck);
            }
        }
    }

    fn decide_retry(&self, out: &mut Fetched, retry_after: Option<std::time::Duration>) {
        let error = out.error.as_ref().map(|e| e.kind);
        let attempt = out.job.attempts + 1;
        if let Decision::RetryIn(wait) =
            self.cx
                .retry
                .decide(out.status, error, retry_after, attempt)
        {
            out.retry_in = Some(wait);
        }
    }

    async fn read_response(&self, mut response: Response, out: &mut Fetched) {
        let status = response.status();
        out.status = Some(status.as_u16());
        let headers = response.headers();
        out.content_type = content_type(headers);
        out.etag = header(headers, ETAG);
        out.last_modified = header(headers, LAST_MODIFIED);
        out.x_robots_tag = x_robots_tag(headers);
        out.canonical_link = crate::link_header::canonical(headers);
        out.refresh = url_header(headers, REFRESH);

        if status.is_redirection() {
            match url_header(headers, LOCATION) {
                Some(target) if follows_location(status) => self.redirect(out, &target),
                None if names_a_target(status) => {
                    out.error = Some(FetchError {
                        kind: ErrorKind::Redirect,
                        message: format!("{status} without a Location: the redirect leads nowhere"),
                    });
                }
                _ => {}
            }
        }

        // Only successful HTML (or a sitemap) is read: error pages' links are noise, and a
        // soft-404 template linking to itself is a classic trap. A page of no known type is
        // read far enough to tell whether it is HTML, as browsers tell, unless the server
        // forbids telling so.
        let mut sniffing = out.job.kind == JobKind::Page
            && sniff::type_unknown(out.content_type.as_deref())
            && !sniff::forbidden(headers);
        let cap = match out.job.kind {
            JobKind::Sitemap => MAX_SITEMAP_BYTES,
            JobKind::Page if out.is_html() || sniffing => self.cx.max_body_bytes,
            JobKind::Page => 0,
        };
        if !status.is_success() || cap == 0 {
            out.bytes = response.content_length();
            return;
        }
        let coding = Coding::left_on(response.headers());
        // A coding the crawler does not decode is read as far as it takes to tell a body
        // sent as it is under a header naming no coding (`UTF-8`, `none`), which browsers
        // show as it came, from one that is encoded.
        let undecoded = matches!(coding, Some(Coding::Unknown(_)));
        let name = coding.as_ref().map(Coding::name).unwrap_or_default();
        let named_by = Coding::named_by(response.headers());
        // Sized from the declared length when there is one, so a body is not copied as it
        // grows; a server's word is trusted only up to PRESIZE_LIMIT.
        let declared = response.content_length();
        let presize = usize::try_from(declared.unwrap_or(0)).unwrap_or(usize::MAX);
        // A coded body is decoded as it comes, held to the cap as it decodes.
        let mut reader = Decoder::of(coding.as_ref(), cap, presize.min(cap).min(PRESIZE_LIMIT));
        let started = Instant::now();
        let mut received = 0;
        // Whether the body came to its end: one cut short by the sniffing or the binary
        // check is no size.
        let mut whole = false;
        // A page served as HTML is binary or not by its head: one that is (an image, an
        // archive) is read no further. A sitemap is read whatever its type says (a gzipped
        // one is often served as HTML).
        let mut judging = out.job.kind == JobKind::Page && out.is_html();
        let mut binary = false;
        loop {
            let next = self
                .cx
                .min_rate
                .next_chunk(&mut response, started, received)
                .await;
            match next {
                Ok(Some(chunk)) => {
                    received += chunk.len();
                    if let Err(e) = reader.write(&chunk) {
                        // A server's mistake, as browsers show it: asked again, the same
                        // body comes.
                        out.error = Some(FetchError {
                            kind: ErrorKind::Binary,
                            message: format!(
                                "the body is not the {name:?} named by its {named_by} ({e}): \
                                 not read"
                            ),
                        });
                        out.bytes = declared;
                        return;
                    }
                    if reader.overflowed() {
                        out.truncated = true;
                        break;
                    }
                    let read = reader.decoded();
                    if undecoded
                        && read.len() >= sniff::SNIFF_BYTES
                        && !sniff::looks_like_markup(read)
                    {
                        break;
                    }
                    if judging && read.len() >= sniff::SNIFF_BYTES {
                        binary = sniff::looks_binary(read, out.content_type.as_deref());
                        judging = false;
                        if binary {
                            break;
                        }
                    }
                    if sniffing && !undecoded && read.len() >= sniff::SNIFF_BYTES {
                        if !sniff::looks_like_html(read) {
                            break;
                        }
                        sniffing = false;
                    }
                }
                Ok(None) => {
                    whole = true;
                    break;
                }
                Err(e) => {
                    out.error = Some(e);
                    break;
                }
            }
        }
        if undecoded && !sniff::looks_like_markup(reader.decoded()) {
            out.error = Some(FetchError {
                kind: ErrorKind::Binary,
                message: format!(
                    "the body is in {named_by} {name:?}, which the crawler does not decode: \
                     not read"
                ),
            });
            out.bytes = declared;
            return;
        }
        let (body, unfinished) = reader.finish();
        // A body already cut (at the cap, or by a broken transfer) ends its stream early,
        // which is no fault of the coding, and so does one read no further than it took to
        // tell what it is; one that came whole to its framing's end and stops short of its
        // stream's was cut all the same.
        if let Some(e) = unfinished.filter(|_| whole) {
            out.error = Some(FetchError {
                kind: ErrorKind::Body,
                message: format!(
                    "the body's {name:?} stream stops short of its end ({e}): cut off"
                ),
            });
        }
        let ct = out.content_type.as_deref();
        binary |= judging && out.error.is_none() && sniff::looks_binary(&body, ct);
        if binary {
            out.error = Some(FetchError {
                kind: ErrorKind::Binary,
                message: "the body is served as HTML but is binary".to_owned(),
            });
        }
        if binary || (sniffing && !sniff::looks_like_html(&body)) {
            // Not HTML after all: recorded as any other type, by its declared size, else
            // by what was read if that was all of it. The first bytes alone are as many
            // as the server's pieces made them, another count at each visit, which a
            // revisit would take for a new version (see `Previous::differs_from`).
            out.bytes = declared.or(whole.then_some(body.len() as u64));
            return;
        }
        out.bytes = Some(body.len() as u64);
        out.body = Some(body);
    }

    /// [`HttpClient::accept`], refusing a head [`Self::oversized_head`] refuses.
    fn accept(&self, sent: reqwest::Result<Response>) -> Result<Response, FetchError> {
        self.cx
            .client
            .accept(sent, |response| self.oversized_head(response.headers()))
    }

    /// Why a response's headers are refused, if they are: more than `fetch.max_headers`
    /// of them, or more than `fetch.max_header_bytes` in all. Nothing of such a response
    /// is used, its status included: a head that large is an attack or a broken server.
    fn oversized_head(&self, headers: &HeaderMap) -> Option<FetchError> {
        let bytes: usize = headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum();
        let message = if headers.len() > self.cx.max_headers {
            format!(
                "the response has {} headers, more than fetch.max_headers ({})",
                headers.len(),
                self.cx.max_headers
            )
        } else if bytes > self.cx.max_header_bytes {
            format!(
                "the response's headers take {bytes} bytes, more than fetch.max_header_bytes ({})",
                self.cx.max_header_bytes
            )
        } else {
            return None;
        };
        Some(FetchError {
            kind: ErrorKind::Headers,
            message,
        })
    }

    fn redirect(&self, out: &mut Fetched, location: &str) {
        match urlnorm::resolve(&out.job.url, location) {
            Ok(target) => {
                if out.job.redirect_hops >= self.cx.max_redirects {
                    out.error = Some(FetchError {
                        kind: ErrorKind::Redirect,
                        message: format!("more than {} redirects in a row", self.cx.max_redirects),
                    });
                }
                out.changed_location_cookies = self
                    .cx
                    .client
                    .cookies_changed_at(&target)
                    .is_some_and(|at| at >= out.fetched_at);
                out.location = Some(target);
            }
            Err(e) => {
                out.error = Some(FetchError {
                    kind: ErrorKind::Redirect,
                    message: format!("Location {} {e}", urlnorm::quoted(location)),
                });
            }
        }
    }
}

/// `fetch.min_bytes_per_sec` (0: none): a body slower than this on average after its first
/// [`RATE_GRACE`] is cut. Pages, sitemaps and robots.txt alike: a drip holds a fetch
/// worker, and a host's pages all wait on its robots.txt.
#[derive(Clone, Copy, Debug)]
pub struct MinRate(pub u64);

impl MinRate {
    /// The next chunk of `response`'s body, whose head came at `started` and of which
    /// `received` bytes came since; a `timeout` error if it comes too late to keep the
    /// rate.
    pub(crate) async fn next_chunk(
        self,
        response: &mut Response,
        started: Instant,
        received: usize,
    ) -> Result<Option<impl std::ops::Deref<Target = [u8]>>, FetchError> {
        let next = match self.deadline(started, received) {
            Some(deadline) => tokio::time::timeout_at(deadline.into(), response.chunk())
                .await
                .map_err(|_| FetchError {
                    kind: ErrorKind::Timeout,
                    message: format!(
                        "the body arrived slower than fetch.min_bytes_per_sec ({} B/s)",
                        self.0
                    ),
                })?,
            None => response.chunk().await,
        };
        match next {
            Err(e) if closed_without_close_notify(&e) && ended_by_close(response) => Ok(None),
            next => next.map_err(|e| fetch_error(&e)),
        }
    }

    /// When the next chunk must have arrived for the body to keep the rate: the first
    /// [`RATE_GRACE`] are free, then every byte so far must have come at the rate.
    fn deadline(self, started: Instant, received: usize) -> Option<Instant> {
        let rate = self.0;
        (rate > 0).then(|| {
            started + RATE_GRACE + Duration::from_secs_f64((received + 1) as f64 / rate as f64)
        })
    }
}

/// How rustls says a TLS peer closed the connection without a `close_notify` alert.
const NO_CLOSE_NOTIFY: &str = "without sending TLS close_notify";

/// Whether reading `e`'s body ended in a TLS connection closed without its
/// `close_notify`: many servers close so (Python's `http.server` over TLS, embedded
/// devices, old IIS-era ones), and browsers take it as the connection's end (curl too,
/// but for its builds on OpenSSL 3.2 and later).
fn closed_without_close_notify(e: &reqwest::Error) -> bool {
    causes(e).any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|io| {
            io.kind() == std::io::ErrorKind::UnexpectedEof
                && io.to_string().contains(NO_CLOSE_NOTIFY)
        })
    })
}

/// The errors `e` stands on, the nearest first: reqwest's own says little ("error
/// sending request"), and what happened lives several sources deep.
fn causes(e: &reqwest::Error) -> impl Iterator<Item = &(dyn std::error::Error + 'static)> {
    std::iter::successors(e.source(), |&cause| cause.source())
}

/// Whether `response`'s body ends where its connection does, so that a close is its whole
/// end and nothing of it is missing: HTTP/1, neither a `Content-Length` nor chunking (RFC
/// 9112 §6.3: such a body has no other end, whatever the `Connection` header says; one
/// asking to keep the connection alive is kept whole by browsers all the same). A body
/// with a declared length or chunks has its own end, which a close before it cuts off. A
/// compressed body's stream has its own end too, which [`Coding`]'s decoder checks: one
/// the close cut short is no whole body.
fn ended_by_close(response: &Response) -> bool {
    let headers = response.headers();
    let chunked = headers
        .get_all(TRANSFER_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .next_back()
        .is_some_and(|last| last.eq_ignore_ascii_case("chunked"));
    let http1 = matches!(
        response.version(),
        reqwest::Version::HTTP_10 | reqwest::Version::HTTP_11
    );
    http1 && !chunked && !headers.contains_key(CONTENT_LENGTH)
}

/// Whether a 3xx must say where to go: a 301, 302, 303, 307 or 308 without a `Location`
/// leads nowhere, so a link to it is broken (a 300 may list its choices in the body, and
/// a 304 is an answer of its own).
fn names_a_target(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// Whether a 3xx's `Location` is followed: a redirect's, and a 300's preferred choice. A
/// 304 answers a conditional request, a 305 names a proxy to go through (a use retired
/// for its risks) and 306 is unused: a `Location` on them names no page, and browsers
/// stay where they are.
pub(crate) fn follows_location(status: StatusCode) -> bool {
    status == StatusCode::MULTIPLE_CHOICES || names_a_target(status)
}

/// Whether `response` to `asked` sets a cookie and redirects to `asked` itself, as the
/// crawl spells the target: without its session ids. A servlet container's first answer
/// to a client without its session cookie sets it and redirects to the URL with the id
/// in it (`/shop;jsessionid=…`); stripped, that is `asked`, a loop unless asked again
/// at once with the cookie.
fn is_a_cookie_check(response: &Response, asked: &Url, traps: &Traps) -> bool {
    let headers = response.headers();
    follows_location(response.status())
        && headers.contains_key(SET_COOKIE)
        && url_header(headers, LOCATION)
            .and_then(|location| urlnorm::resolve(asked, &location).ok())
            .is_some_and(|mut target| {
                traps.strip_session_ids(&mut target);
                &target == asked
            })
}

/// A validator (`ETag`, `Last-Modified`) as the server sent it, to be named back at the
/// revisit. An entity tag may hold characters beyond ASCII (RFC 9110 §8.8.3), which
/// `HeaderValue::to_str` refuses: read so, the tag was dropped and every revisit came in
/// full. Bytes that are not UTF-8 cannot be stored as they came, nor sent back so; nor is
/// one longer than [`MAX_VALIDATOR_BYTES`] kept.
fn header(headers: &HeaderMap, name: impl reqwest::header::AsHeaderName) -> Option<String> {
    headers
        .get(name)
        .filter(|v| v.len() <= MAX_VALIDATOR_BYTES)
        .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
        .map(str::to_owned)
}

/// A validator is a short token (an entity tag of a hash, a date of 29 bytes); one of
/// kilobytes, from a broken or hostile server, would be stored in its page's row and sent
/// back at every revisit. Such a page is revisited in full instead.
const MAX_VALIDATOR_BYTES: usize = 1024;

/// A response's `Content-Type`, whatever bytes it holds: a value with one byte beyond
/// ASCII (`charset=“utf-8”`, typed in a word processor) still says `text/html`, and
/// `HeaderValue::to_str` would lose all of it, leaving the page unread with no error.
///
/// Sent twice (a framework's line and a proxy's) or as a list, it is what browsers make
/// of it (the Fetch standard's "extract a MIME type"): the last type it names, `*/*` and
/// what names none skipped, with the charset an earlier line of the same type named if
/// it names none (`text/html; charset=Shift_JIS`, then a proxy's `text/html`). A value
/// naming no type at all stays as the server sent it.
fn content_type(headers: &HeaderMap) -> Option<String> {
    let values: Vec<_> = headers
        .get_all(CONTENT_TYPE)
        .iter()
        .map(|value| String::from_utf8_lossy(value.as_bytes()))
        .collect();
    if values.is_empty() {
        return None;
    }
    // The last type named, and the charset it has, or inherits from the lines before it
    // of the same type.
    let mut last: Option<(&str, Option<&str>)> = None;
    for one in values
        .iter()
        .flat_map(|value| crate::link_header::split_unquoted(value, ','))
        .map(str::trim)
        .filter(|one| !sniff::type_unknown(Some(one)))
    {
        let same_type = |(before, _): &(&str, _)| {
            sniff::essence(before).eq_ignore_ascii_case(sniff::essence(one))
        };
        let inherited = last.filter(same_type).and_then(|(_, charset)| charset);
        last = Some((one, crate::charset::charset_label(one).or(inherited)));
    }
    Some(bounded_content_type(match last {
        None => values.join(", "),
        Some((one, Some(charset))) if crate::charset::charset_label(one).is_none() => {
            format!("{one}; charset={charset}")
        }
        Some((one, _)) => one.to_owned(),
    }))
}

/// The longest `Content-Type` kept, in bytes. PostgreSQL indexes `content_type` (and its
/// lower case) with B-trees, whose entries hold at most 2,704 bytes: a longer value
/// failed its whole batch there, stopping the crawl at the page on every run, while
/// SQLite kept it. Real ones are under 100 bytes; a header may be 64 KiB.
const MAX_CONTENT_TYPE_BYTES: usize = 1024;

/// `value`, or when it is longer than [`MAX_CONTENT_TYPE_BYTES`], what of it is read: its
/// type and charset (cut to the limit, should even they be longer).
fn bounded_content_type(value: String) -> String {
    if value.len() <= MAX_CONTENT_TYPE_BYTES {
        return value;
    }
    let essence = sniff::essence(&value);
    let mut kept = match crate::charset::charset_label(&value) {
        Some(charset) => format!("{essence}; charset={charset}"),
        None => essence.to_owned(),
    };
    kept.truncate(kept.floor_char_boundary(MAX_CONTENT_TYPE_BYTES));
    kept
}

/// Every `X-Robots-Tag` line, one per text line: servers send one line per crawler or per
/// directive, and a page's own `nofollow` may come after another crawler's line. They
/// stay apart because a crawler's name covers the rest of its own line only.
fn x_robots_tag(headers: &HeaderMap) -> Option<String> {
    let lines: Vec<_> = headers
        .get_all(X_ROBOTS_TAG)
        .iter()
        .map(|value| String::from_utf8_lossy(value.as_bytes()))
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

/// A response header that names a URL: `Location`, or `Refresh`, read as
/// [`urlnorm::header_url_text`] reads it (`HeaderValue::to_str` takes visible ASCII only
/// and would lose the move).
pub(crate) fn url_header(headers: &HeaderMap, name: HeaderName) -> Option<String> {
    let bytes = headers.get(name)?.as_bytes();
    Some(urlnorm::header_url_text(bytes).into_owned())
}

/// hyper's message for a TCP connection that could not be made (refused, unreachable,
/// timed out).
const TCP_CONNECT_FAILED: &str = "tcp connect error";

/// hyper-util's message for a SOCKS proxy it could not connect to (refused, unreachable,
/// or not within `fetch.connect_timeout_ms`), the cause left out.
const SOCKS_PROXY_UNREACHED: &str = "SOCKS error: failed to create underlying connection";

/// hyper's message for an HTTP/1 head with too many headers or too many bytes, or a
/// `Content-Length` past what it counts (a u64's last three values).
const HEAD_TOO_LARGE: &str = "message head is too large";

/// What [`HEAD_TOO_LARGE`] may mean, each cause of it named: hyper says not which, and
/// the limits alone sent a user raising them in vain for a `Content-Length` no server
/// can mean.
const HEAD_TOO_LARGE_MEANING: &str = " (more headers than fetch.max_headers, a head larger \
    than HTTP/1 allows, or a Content-Length of 18446744073709551614 or more, past what HTTP \
    counts)";

/// How rustls says a server's certificate did not verify (`invalid peer certificate:
/// UnknownIssuer`, `Expired`, `NotValidForName`, ...): asking again gets the same.
const CERTIFICATE_REFUSED: &str = "invalid peer certificate";

/// rustls's name for a certificate no trusted authority issued, the one of its refusals
/// it gives no words to (an expired certificate's, a wrong name's, it explains).
const UNKNOWN_ISSUER: &str = "UnknownIssuer";

/// What [`UNKNOWN_ISSUER`] means to a user, and the usual causes, one of them theirs to
/// mend (a private CA) and one the server's that browsers hide (they fetch a missing
/// intermediate certificate themselves).
const UNKNOWN_ISSUER_MEANING: &str = " (the certificate was not issued by an authority \
    this machine trusts: a self-signed certificate, a private CA's (add it to the system's \
    CA certificates, or to the file SSL_CERT_FILE names, then crawl with --retry-failed), or a \
    server that leaves out its intermediate certificate)";

/// How rustls says a handshake failed that fails again however often it is tried, and
/// what each means to a user: its words name the TLS record or alert, not the cause.
const HANDSHAKE_IMPOSSIBLE: [(&str, &str); 4] = [
    (
        PLAIN_HTTP_ANSWER,
        "the server answered in plain HTTP, not TLS: its port is no HTTPS one",
    ),
    (
        "received fatal alert: ProtocolVersion",
        "the server speaks no TLS version the crawler does (TLS 1.2 and 1.3)",
    ),
    (
        "received fatal alert: HandshakeFailure",
        "the server and the crawler share no TLS cipher, or it asks for a client certificate",
    ),
    (
        "peer is incompatible",
        "the server speaks no TLS version or cipher the crawler does",
    ),
];

/// What [`HANDSHAKE_IMPOSSIBLE`] says of the failure `message` tells, if it is one.
fn handshake_impossible(message: &str) -> Option<&'static str> {
    HANDSHAKE_IMPOSSIBLE
        .iter()
        .find(|(words, _)| message.contains(words))
        .map(|&(_, meaning)| meaning)
}

/// Sorts a reqwest error into a kind, keeping the whole cause chain as the message
/// ("connection refused" lives several sources deep).
fn fetch_error(e: &reqwest::Error) -> FetchError {
    let mut message = e.to_string();
    for cause in causes(e) {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
    }
    let kind = if message.contains(netguard::REFUSAL) {
        ErrorKind::AddressRefused
    } else if message.contains(HEAD_TOO_LARGE) {
        message.push_str(HEAD_TOO_LARGE_MEANING);
        ErrorKind::Headers
    } else if e.is_timeout() {
        // The client says only "operation timed out" or "deadline has elapsed", a body's
        // after "error decoding response body": which limit ran out is the user's to know.
        message.push_str(if e.is_connect() {
            NO_CONNECTION_IN_TIME
        } else {
            " (no whole answer within fetch.timeout_ms)"
        });
        ErrorKind::Timeout
    } else if e.is_connect()
        && (message.contains("dns error") || message.contains("failed to lookup address"))
    {
        dns_error_kind(&message)
    } else if e.is_connect() && message.contains(CERTIFICATE_REFUSED) {
        if message.contains(UNKNOWN_ISSUER) {
            message.push_str(UNKNOWN_ISSUER_MEANING);
        }
        ErrorKind::Tls
    } else if let Some(meaning) = handshake_impossible(&message).filter(|_| e.is_connect()) {
        message.push_str(&format!(" ({meaning})"));
        ErrorKind::Tls
    } else if e.is_connect() {
        ErrorKind::Connect
    } else if e.is_body() || e.is_decode() {
        ErrorKind::Body
    } else if hung_up(e) {
        message.push_str(" (the server closed the connection without answering)");
        ErrorKind::Connect
    } else if reset_unanswered(e) {
        message.push_str(" (the server reset the HTTP/2 stream without answering)");
        ErrorKind::Connect
    } else {
        ErrorKind::Request
    };
    FetchError { kind, message }
}

/// Sends `request`, and once more at once if the connection broke before an answer, as
/// browsers do: a kept-alive connection the server's idle timeout closed just as the
/// request went out on it has left the pool, so the request takes a new one, and the
/// server's timeout costs no attempt. One that hangs up again is retried later like a
/// refused connection. Both together take no longer than `timeout` (`fetch.timeout_ms`),
/// which bounds a whole answer. Returns, with what came, a copy of the request not sent
/// (for [`HttpClient::send`] to send after an outage): one copy a request, on every
/// page's path.
async fn send(
    request: RequestBuilder,
    timeout: Duration,
) -> (reqwest::Result<Response>, Option<RequestBuilder>) {
    let started = Instant::now();
    let spare = request.try_clone();
    match (request.send().await, spare) {
        (Err(e), Some(resend)) if hung_up(&e) => match timeout.checked_sub(started.elapsed()) {
            Some(left) if !left.is_zero() => {
                let spare = resend.try_clone();
                (resend.timeout(left).send().await, spare)
            }
            _ => (Err(e), Some(resend)),
        },
        sent => sent,
    }
}

/// What a timeout while connecting means, in the config's words.
const NO_CONNECTION_IN_TIME: &str = " (no connection within fetch.connect_timeout_ms)";

/// hyper's message for a connection that ended before the response's head did.
const CLOSED_UNANSWERED: &str = "connection closed before message completed";

/// hyper-util's message for a request handed a new connection that closed before the
/// request went out on it (an HTTP/2 server's GOAWAY after its last stream): never sent,
/// and not retried by the client, which calls it a connect error.
const CLOSED_BEFORE_SENT: &str = "checked out connection was closed";

/// Whether the connection broke, closed or reset, before the server answered: a server
/// overloaded, restarting, or whose idle timeout closed a kept-alive connection just as
/// the request went out on it. A new connection may well be answered, so it is not a
/// final `request` error. Over HTTPS most servers close without a TLS `close_notify`,
/// which rustls reports as an unexpected end of file, over HTTP/1 and HTTP/2 alike (a
/// body so ended is [`closed_without_close_notify`]'s, not this).
fn hung_up(e: &reqwest::Error) -> bool {
    if e.is_body() || e.is_decode() || e.is_timeout() {
        return false;
    }
    causes(e).any(|cause| {
        let broke = cause.downcast_ref::<std::io::Error>().is_some_and(|io| {
            matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof
            )
        });
        let said = cause.to_string();
        broke || said.contains(CLOSED_UNANSWERED) || said.contains(CLOSED_BEFORE_SENT)
    })
}

/// Whether the server turned the request away over HTTP/2 before answering it: a
/// stream reset (INTERNAL_ERROR from a proxy whose backend failed, ENHANCE_YOUR_CALM
/// from one that wants fewer requests) or a GOAWAY naming an error. It says nothing
/// final of the page, as a 500 does not, so it is retried like a connection closed
/// unanswered. (A REFUSED_STREAM, or a stream a graceful GOAWAY left out, was not
/// processed, and the client has asked again at once already.)
fn reset_unanswered(e: &reqwest::Error) -> bool {
    if e.is_body() || e.is_decode() || e.is_timeout() {
        return false;
    }
    causes(e).any(|cause| {
        cause
            .downcast_ref::<h2::Error>()
            .is_some_and(|h2| h2.is_remote() && (h2.is_reset() || h2.is_go_away()))
    })
}

/// A name that does not resolve is final; a resolver that could not answer for now is
/// not. getaddrinfo says which only in its words (`gai_strerror`, the same in glibc and
/// musl, untranslated: Rust programs run in the C locale). A lookup that failed in this
/// process (`EAI_SYSTEM`: no file descriptor left for the resolver's socket, no memory)
/// says nothing of the name: Rust reports it as the system error, `(os error N)`.
fn dns_error_kind(message: &str) -> ErrorKind {
    if message.contains("Temporary failure in name resolution") || message.contains("(os error ") {
        ErrorKind::DnsTemporary
    } else {
        ErrorKind::Dns
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn a_resolver_that_cannot_answer_for_now_is_told_from_a_name_that_does_not_exist() {
        let chain = "error sending request for url (http://a.example/): client error \
                     (Connect): dns error: failed to lookup address information";
        assert_eq!(
            dns_error_kind(&format!("{chain}: Temporary failure in name resolution")),
            ErrorKind::DnsTemporary
        );
        for final_answer in [
            "Name or service not known",
            "No address associated with hostname",
            "Non-recoverable failure in name resolution",
        ] {
            assert_eq!(
                dns_error_kind(&format!("{chain}: {final_answer}")),
                ErrorKind::Dns
            );
        }
    }

    /// getaddrinfo's `EAI_SYSTEM`: the lookup failed in the crawler's own process (out
    /// of file descriptors for the resolver's socket, or of memory), and Rust reports
    /// the system error alone. The name may well resolve: such a URL was failed for good.
    #[test]
    fn a_lookup_that_failed_for_a_system_error_is_retried() {
        let chain = "error sending request for url (http://a.example/): client error \
                     (Connect): dns error";
        for system in [
            "Too many open files (os error 24)",
            "Cannot allocate memory (os error 12)",
        ] {
            assert_eq!(
                dns_error_kind(&format!("{chain}: {system}")),
                ErrorKind::DnsTemporary,
                "{system}"
            );
        }
    }

    /// A proxy whose name stops resolving once the crawl has started (its name checked at
    /// start): each URL fails for now, saying it is the proxy's name, and is asked again
    /// once its DNS is mended, not left a final `dns` row.
    #[tokio::test]
    async fn a_proxy_whose_name_stops_resolving_fails_the_urls_for_now() {
        let config = Config::from_toml(
            "seeds = ['http://pipecrawl.invalid/']\n[fetch]\nproxy = 'http://proxy.invalid:3128'\n",
            "t",
        )
        .expect("config");
        let rules = Arc::new(HostRules::new(&[]));
        let client = client(&config, Arc::new(NetworkPolicy::default()), rules).expect("a client");
        let url = Url::parse("http://pipecrawl.invalid/").expect("a URL");
        let e = client.get(&url).send().await.expect_err("no proxy");
        let error = client.error(&e);
        assert_eq!(error.kind, ErrorKind::DnsTemporary, "{}", error.message);
        assert!(
            error
                .message
                .starts_with("the name of fetch.proxy does not resolve"),
            "{}",
            error.message
        );
    }

    fn with_location(bytes: &[u8]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(LOCATION, HeaderValue::from_bytes(bytes).unwrap());
        headers
    }

    #[test]
    fn idle_connections_outlive_a_hosts_delay_and_not_much_more() {
        let config = Config::from_toml(
            "seeds = ['http://h/']\n[politeness]\ndelay_ms = 500\n\
             [[politeness.host]]\npattern = 'slow.test'\ndelay_ms = 3000\n",
            "t",
        )
        .expect("config");
        let kept = idle_connection_time(&config.politeness);
        assert!(kept > Duration::from_millis(3000), "kept {kept:?}");
        assert!(kept <= Duration::from_secs(5), "kept {kept:?}");
    }

    #[test]
    fn a_content_type_sent_twice_or_listed_is_its_last_type() {
        let typed = |values: &[&str]| {
            let mut headers = HeaderMap::new();
            for value in values {
                headers.append(CONTENT_TYPE, HeaderValue::from_str(value).unwrap());
            }
            content_type(&headers)
        };
        assert_eq!(typed(&[]), None);
        assert_eq!(
            typed(&["text/html; charset=utf-8"]).as_deref(),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(
            typed(&["text/plain", "text/html"]).as_deref(),
            Some("text/html")
        );
        assert_eq!(
            typed(&["text/plain, text/html;charset=\"a,b\"", "*/*"]).as_deref(),
            Some("text/html;charset=\"a,b\"")
        );
        assert_eq!(
            typed(&["text/html; charset=Shift_JIS", "Text/HTML", "*/*"]).as_deref(),
            Some("Text/HTML; charset=Shift_JIS")
        );
        assert_eq!(
            typed(&["text/plain; charset=koi8-r", "text/html"]).as_deref(),
            Some("text/html")
        );
        assert_eq!(
            typed(&["charset=utf-8", ""]).as_deref(),
            Some("charset=utf-8, ")
        );
    }

    #[test]
    fn a_content_type_too_long_to_index_keeps_its_type_and_charset() {
        let typed = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_TYPE, HeaderValue::from_str(value).unwrap());
            content_type(&headers).unwrap()
        };
        let padding = "x".repeat(MAX_CONTENT_TYPE_BYTES);
        let whole = format!("text/html; q={}", &padding[..900]);
        assert_eq!(typed(&whole), whole);
        assert_eq!(
            typed(&format!("text/html; q={padding}; charset=Shift_JIS")),
            "text/html; charset=Shift_JIS"
        );
        assert_eq!(typed(&format!("text/plain; q={padding}")), "text/plain");
        let cut = bounded_content_type(format!("text/{}", "é".repeat(MAX_CONTENT_TYPE_BYTES)));
        assert_eq!(
            cut.len(),
            MAX_CONTENT_TYPE_BYTES - 1,
            "at a character's end"
        );
    }

    #[test]
    fn every_x_robots_tag_line_is_read() {
        let mut headers = HeaderMap::new();
        headers.append(X_ROBOTS_TAG, HeaderValue::from_static("googlebot: noindex"));
        headers.append(X_ROBOTS_TAG, HeaderValue::from_static("nofollow"));
        assert_eq!(
            x_robots_tag(&headers).as_deref(),
            Some("googlebot: noindex\nnofollow")
        );
        assert_eq!(x_robots_tag(&HeaderMap::new()), None);
    }

    /// A server that hangs up on every request gets no final `request` row: its pages
    /// are retried like those of a server that refuses connections.
    #[tokio::test]
    async fn a_connection_closed_unanswered_is_retried_as_a_connect_failure() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut head = [0u8; 1024];
                let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut head).await;
            }
        });
        let e = Client::new().get(url).send().await.unwrap_err();
        let error = fetch_error(&e);
        assert_eq!(error.kind, ErrorKind::Connect, "{}", error.message);
        assert!(
            error.message.contains("without answering"),
            "{}",
            error.message
        );
    }

    #[test]
    fn a_location_in_raw_utf8_is_read_as_written() {
        let headers = with_location("/café".as_bytes());
        assert_eq!(url_header(&headers, LOCATION).as_deref(), Some("/café"));
    }

    #[test]
    fn a_location_that_is_not_utf8_is_still_a_redirect() {
        let headers = with_location(b"/caf\xe9/d\xc3\xa9j\xe0");
        assert_eq!(
            url_header(&headers, LOCATION).as_deref(),
            Some("/caf%E9/déj%E0")
        );
    }
}
