//! The crawl's TOML config: raw serde structs → one `validate()` → a [`Config`] the rest of
//! the code trusts.
//!
//! Unknown keys and wrong types are caught by serde (`deny_unknown_fields`), whose message
//! gets the key's path (serde_path_to_error) and is put in the config's terms. Values that
//! parse but make no sense (zero workers, a regex that does not compile) are collected all
//! at once, each with its key and line, so a user fixes a config in one round instead of
//! one error per run. Every key is documented in `config/example.toml`, which a test keeps
//! in step with these structs.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::Duration;

use regex::Regex;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use url::Url;

use crate::plural::Count;
use crate::scope::HostPattern;
use crate::urlnorm;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "cannot read the config file {path}{}: {source}{}",
        looked_in(looked_at.as_deref(), ""),
        foreign.as_deref().map_or_else(String::new, |why| format!("; {why}"))
    )]
    Read {
        path: PathBuf,
        /// The path as read, when `path` is relative: README's `--config
        /// config/example.toml`, typed outside the clone, was said not found with no
        /// word of where it was looked for.
        looked_at: Option<PathBuf>,
        /// Why a path not found names no file here, if it is a Windows path or holds a
        /// `~` or a variable ([`foreign_path`]): `--config 'C:\crawls\a.toml'` was
        /// said not found, as if mistyped.
        foreign: Option<String>,
        #[source]
        source: std::io::Error,
    },

    #[error("{origin}: {message}")]
    Parse { origin: String, message: String },

    #[error("{origin}: {} problem(s):\n{}", problems.len(), problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        origin: String,
        problems: Vec<Problem>,
    },
}

/// The file a relative `path` names, for [`looked_in`]; None for an absolute one.
pub(crate) fn looked_at(path: &Path) -> Option<PathBuf> {
    path.is_relative()
        .then(|| std::path::absolute(path).ok())
        .flatten()
}

/// Where a relative path was looked for, said after the error of a file not found there
/// (`also` adds to why): typed in another directory than the one meant, it names another
/// file.
pub(crate) fn looked_in(looked_at: Option<&Path>, also: &str) -> String {
    looked_at.map_or_else(String::new, |file| {
        format!(
            " ({}: a relative path is read from the current directory{also})",
            file.display()
        )
    })
}

/// One bad value: which key, where in the file, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub line: Option<usize>,
    pub message: String,
    /// Where in another file the config names the bad value is (`seeds.txt:12`), said
    /// instead of the key and its line: what the user opens to mend it.
    pub in_file: Option<String>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.in_file, self.line) {
            (Some(place), _) => write!(f, "{place}: {}", self.message),
            (None, Some(line)) => write!(f, "line {line}: `{}` {}", self.key, self.message),
            (None, None) => write!(f, "`{}` {}", self.key, self.message),
        }
    }
}

/// A validated crawl configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The `seeds` key's, then `seeds_file`'s.
    pub seeds: Vec<Url>,
    /// How many of `seeds` the `seeds` key gave, to name them as `seeds[i]`.
    pub listed_seeds: usize,
    /// The path `seeds_file` names, as written.
    pub seeds_file: Option<String>,
    pub scope: ScopeConfig,
    pub fetch: FetchConfig,
    pub parse: ParseConfig,
    pub politeness: PolitenessConfig,
    pub frontier: FrontierConfig,
    pub retry: RetryConfig,
    pub channels: ChannelConfig,
    pub storage: StorageConfig,
    pub shutdown: ShutdownConfig,
    pub admin: AdminConfig,
    pub recrawl: RecrawlConfig,
    /// Address ranges that hosts reached by discovery may have although not public.
    pub network_allow: Vec<ipnet::IpNet>,
    pub traps: TrapsConfig,
    pub cluster: ClusterConfig,
    /// The file the config was read from, which each run's row in `runs` names; `None`
    /// for one built in code.
    pub file: Option<ConfigFile>,
}

/// A config file as a run read it: named by its path and its bytes' hash (xxh3-128, as
/// `xxhsum -H2` prints it), not kept whole, as it may hold tokens and passwords and the
/// results database is there to be shared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFile {
    pub path: String,
    pub hash: String,
}

/// How this process works beside others on one PostgreSQL database (see
/// `src/frontier/hosts.rs`). Ignored on SQLite, which one process owns.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// This node's name in `frontier.lease_owner`, `hosts.owner` and `nodes`.
    pub node_id: String,
    /// Whether the config set `node_id`: a generated one differs at every load, so only
    /// a name the user wrote, or took out, is a change a reload can name.
    pub node_id_given: bool,
    /// How long a lease (of frontier rows, of a host) lasts unless renewed. A node renews
    /// every third of it; a node that dies holds its work this long at most.
    pub lease_ttl: Duration,
}

/// Limits that catch crawler traps (see `src/traps.rs`).
#[derive(Debug, Clone)]
pub struct TrapsConfig {
    pub max_url_length: usize,
    pub max_path_depth: usize,
    pub max_repeated_segment: usize,
    pub max_query_params: usize,
    pub session_params: Vec<String>,
    /// Whether a found URL's query parameters are put in order of name, so a shop's
    /// facets chosen in any order are one page.
    pub sort_query: bool,
    pub max_links_per_page: usize,
    /// New URLs per URL family (the URL with its numbers taken out); 0: no limit.
    pub family_budget: usize,
    /// How many link levels apart one family's URLs may be found; 0: no limit.
    pub family_depth_span: u32,
    /// URLs of one host that are fetched; 0: no limit. Counted in the database, so it
    /// holds across a resumed crawl and across the nodes sharing one.
    pub max_pages_per_host: u64,
    /// Host names of one registrable domain that are crawled; 0: no limit. Counted in
    /// the database, as `max_pages_per_host` is.
    pub max_hosts_per_domain: u64,
}

#[derive(Debug, Clone)]
pub struct ShutdownConfig {
    /// How long pages in flight may take to finish after SIGINT/SIGTERM.
    pub grace_period: Duration,
}

#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub listen: std::net::SocketAddr,
    /// Bearer token the API requires; mandatory when `listen` is not loopback.
    pub token: Option<String>,
    /// The config's `admin.token` is set, and `PIPECRAWL_ADMIN_TOKEN` to another token,
    /// which the API takes: `serve` says so, as each team's config with its own token
    /// beside the variable left set for all (a shared `EnvironmentFile`, an SRE's shell)
    /// had every team's token answered 401, unsaid why.
    pub file_token_overridden: bool,
}

/// When pages are fetched again (`serve` keeps them fresh; `crawl` revisits those due).
#[derive(Debug, Clone)]
pub struct RecrawlConfig {
    /// `None`: pages are never revisited.
    pub interval: Option<Duration>,
    pub rules: Vec<RecrawlRule>,
    /// Revisit pages that change sooner and unchanged ones later, within the bounds.
    pub adaptive: bool,
    pub min_interval: Duration,
    pub max_interval: Duration,
}

#[derive(Debug, Clone)]
pub struct RecrawlRule {
    pub pattern: Regex,
    pub interval: Option<Duration>,
}

/// A line of `scope.url_filter`: Nutch's `regex-urlfilter.txt` line, `+` or `-` and a
/// regular expression.
#[derive(Debug, Clone)]
pub struct UrlFilterRule {
    /// `+`: the URLs it matches are crawled; `-`: they are not.
    pub keep: bool,
    pub pattern: Regex,
}

#[derive(Debug, Clone)]
pub struct ScopeConfig {
    /// Hosts whose pages are crawled, when the config names them (else the seeds' hosts).
    pub hosts: Vec<HostPattern>,
    pub hosts_given: bool,
    pub include: Vec<Regex>,
    pub exclude: Vec<Regex>,
    /// `scope.url_filter`, in order.
    pub url_filter: Vec<UrlFilterRule>,
    pub max_depth: Option<u32>,
    pub max_pages: Option<u64>,
    /// Seed the frontier from sitemaps named in robots.txt (or `/sitemap.xml`).
    pub sitemaps: bool,
}

#[derive(Debug, Clone)]
pub struct FetchConfig {
    pub workers: usize,
    pub user_agent: String,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub max_body_bytes: usize,
    pub max_redirects: u32,
    /// A body arriving slower than this (after a short start) is cut off: slow-drip
    /// servers would otherwise hold a worker for the whole timeout.
    pub min_bytes_per_sec: u64,
    /// Response headers larger than this in all, or more of them, are refused: a server
    /// must not make a worker hold an unbounded head.
    pub max_header_bytes: usize,
    pub max_headers: usize,
    /// Fetch from HTTPS servers whose certificate does not verify (self-signed, expired,
    /// another name): an intranet's or a lab's sites, which a user means to crawl.
    pub accept_invalid_certs: bool,
    /// Keep the cookies sites set and send them back, as browsers do: a site that sets
    /// one and redirects (a consent wall, a cookie check) otherwise redirects every page.
    pub cookies: bool,
    /// `fetch.headers`: sent with every request (an `Accept-Language`, a `From` naming
    /// whom to write to, as crawler operators are asked to).
    pub headers: HeaderMap,
    /// `[[fetch.host]]`: headers for some hosts only (a token for an intranet), which
    /// must not go to every host a crawl reaches; the first matching rule's replace
    /// `headers` of the same name.
    pub host_headers: Vec<HostHeaders>,
    /// Every request goes through this HTTP(S) proxy: where it is the only way out of a
    /// network. Named in the config, never taken from the environment (see `fetcher`).
    pub proxy: Option<Url>,
    /// Keep a connection idle after its answer, for its host's next request. A broad
    /// crawl keeps one to every host it asked lately, more the faster servers answer:
    /// `fdlimit::fit` turns this off under an open-file limit too low for them, so that
    /// connections are no more than the requests in flight.
    pub keep_alive: bool,
}

/// Request headers for the hosts `pattern` matches.
#[derive(Debug, Clone)]
pub struct HostHeaders {
    pub pattern: HostPattern,
    pub headers: HeaderMap,
}

#[derive(Debug, Clone)]
pub struct ParseConfig {
    pub workers: usize,
}

#[derive(Debug, Clone)]
pub struct PolitenessConfig {
    pub per_host_concurrency: u32,
    /// Requests in flight to one IP address, across its host names; 0: no limit.
    pub per_ip_concurrency: u32,
    pub delay: Duration,
    pub hosts: Vec<HostPolitenessConfig>,
    /// robots.txt `Crawl-delay` is honoured up to this.
    pub max_crawl_delay: Duration,
    pub respect_robots_txt: bool,
    /// How long a fetched robots.txt is trusted before it is fetched again.
    pub robots_ttl: Duration,
    /// Honour `<meta name="robots">`, a `<meta>` naming this crawler, and `X-Robots-Tag`
    /// (noindex, nofollow).
    pub respect_meta_robots: bool,
    /// Follow links marked `rel="nofollow"` (they are stored either way).
    pub follow_nofollow_links: bool,
}

/// Limits for the hosts matching `pattern`; unset ones fall back to the global values.
#[derive(Debug, Clone)]
pub struct HostPolitenessConfig {
    pub pattern: HostPattern,
    pub per_host_concurrency: Option<u32>,
    pub delay: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct RetryConfig {
    /// Requests made for one URL at most, the first included.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// Set by `--retry-failed`, not a config key (in a config, every run would ask
    /// again): URLs that failed for now in earlier runs are queued again at the start.
    pub earlier_failures: bool,
}

#[derive(Debug, Clone)]
pub struct FrontierConfig {
    /// How many leased URLs memory holds at most; the rest wait in the `frontier` table.
    pub window: usize,
    /// URLs remembered as already in the table, to skip re-inserting them.
    pub seen_cache: usize,
    pub boosts: Vec<Boost>,
}

/// A priority rule: URLs matching `pattern` go ahead of others at the same depth.
#[derive(Debug, Clone)]
pub struct Boost {
    pub pattern: Regex,
    pub boost: i64,
}

#[derive(Debug, Clone)]
pub struct ChannelConfig {
    pub to_fetch: usize,
    pub to_parse: usize,
    pub to_store: usize,
    pub max_bytes: usize,
}

#[derive(Debug, Clone)]
pub struct StorageConfig {
    pub database: String,
    pub batch_size: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    /// Required, unless `seeds_file` is given.
    #[serde(default)]
    seeds: Option<Vec<String>>,
    #[serde(default)]
    seeds_file: Option<String>,
    #[serde(default)]
    scope: RawScope,
    #[serde(default)]
    fetch: RawFetch,
    #[serde(default)]
    parse: RawParse,
    #[serde(default)]
    politeness: RawPoliteness,
    #[serde(default)]
    frontier: RawFrontier,
    #[serde(default)]
    retry: RawRetry,
    #[serde(default)]
    channels: RawChannels,
    #[serde(default)]
    storage: RawStorage,
    #[serde(default)]
    shutdown: RawShutdown,
    #[serde(default)]
    admin: RawAdmin,
    #[serde(default)]
    recrawl: RawRecrawl,
    #[serde(default)]
    network: RawNetwork,
    #[serde(default)]
    traps: RawTraps,
    #[serde(default)]
    cluster: RawCluster,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawCluster {
    node_id: Option<String>,
    lease_ttl_ms: u64,
}

impl Default for RawCluster {
    fn default() -> Self {
        Self {
            node_id: None,
            lease_ttl_ms: 30_000,
        }
    }
}

/// `hostname-pid-random`: unique among the nodes of a crawl, and says where it runs.
fn generated_node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".to_owned());
    format!(
        "{host}-{}-{:06x}",
        std::process::id(),
        fastrand::u32(..0x0100_0000)
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawTraps {
    max_url_length: usize,
    max_path_depth: usize,
    max_repeated_segment: usize,
    max_query_params: usize,
    session_params: Vec<String>,
    sort_query: bool,
    max_links_per_page: usize,
    family_budget: usize,
    family_depth_span: u32,
    max_pages_per_host: u64,
    max_hosts_per_domain: u64,
}

impl Default for RawTraps {
    fn default() -> Self {
        Self {
            max_url_length: 2048,
            max_path_depth: 32,
            max_repeated_segment: 3,
            max_query_params: 16,
            session_params: [
                "jsessionid",
                "phpsessid",
                "aspsessionid",
                "sid",
                "sessionid",
                "session_id",
                "cfid",
                "cftoken",
            ]
            .map(String::from)
            .to_vec(),
            // Off: a server may read its parameters in order (`?a=1&b=2` and `?b=2&a=1`
            // as two pages), and URLs are kept apart where a server may tell them apart.
            sort_query: false,
            max_links_per_page: 10_000,
            family_budget: 0,
            family_depth_span: 50,
            // A backstop for endless URL spaces the other traps do not recognise (random
            // words, hashes): more than most sites have, and a bound on what one host
            // can take of a broad crawl. A crawl of one large site raises it or sets 0.
            max_pages_per_host: 100_000,
            // A server behind a wildcard DNS name (a spam farm, user-named subdomains)
            // is a host per name, each with its own politeness slot, robots.txt and page
            // budget. The largest real domains a crawl meets (a university, a news
            // site's sections, a blog host whose suffix the public suffix list does not
            // name) have hundreds of host names; a farm soon has thousands.
            max_hosts_per_domain: 1_000,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawNetwork {
    allow: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawShutdown {
    grace_period_ms: u64,
}

impl Default for RawShutdown {
    fn default() -> Self {
        Self {
            grace_period_ms: 10_000,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawAdmin {
    listen: String,
    token: String,
}

impl Default for RawAdmin {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:7878".to_owned(),
            token: String::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawRecrawl {
    interval_s: u64,
    adaptive: bool,
    min_interval_s: u64,
    max_interval_s: u64,
    rule: Vec<RawRecrawlRule>,
}

impl Default for RawRecrawl {
    fn default() -> Self {
        Self {
            interval_s: 0,
            adaptive: false,
            min_interval_s: 3600,
            max_interval_s: 30 * 24 * 3600,
            rule: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecrawlRule {
    pattern: String,
    interval_s: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScope {
    #[serde(default)]
    hosts: Vec<String>,
    #[serde(default)]
    include: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    url_filter: Vec<String>,
    max_depth: Option<u32>,
    max_pages: Option<u64>,
    #[serde(default)]
    sitemaps: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawFetch {
    workers: usize,
    user_agent: String,
    connect_timeout_ms: u64,
    timeout_ms: u64,
    max_body_bytes: usize,
    max_redirects: u32,
    min_bytes_per_sec: u64,
    max_header_bytes: usize,
    max_headers: usize,
    accept_invalid_certs: bool,
    cookies: bool,
    headers: BTreeMap<String, String>,
    host: Vec<RawFetchHost>,
    proxy: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFetchHost {
    pattern: String,
    headers: BTreeMap<String, String>,
}

impl Default for RawFetch {
    fn default() -> Self {
        Self {
            workers: 64,
            user_agent: concat!("pipecrawl/", env!("CARGO_PKG_VERSION")).to_owned(),
            connect_timeout_ms: 10_000,
            timeout_ms: 30_000,
            max_body_bytes: 5 * 1024 * 1024,
            min_bytes_per_sec: 1024,
            max_redirects: 10,
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            accept_invalid_certs: false,
            cookies: true,
            headers: BTreeMap::new(),
            host: Vec::new(),
            proxy: None,
        }
    }
}

/// `fetch.proxy` schemes: an HTTP(S) proxy, or SOCKS5 with names resolved by the crawler
/// (`socks5`) or by the proxy (`socks5h`, as Tor needs).
const PROXY_SCHEMES: [&str; 4] = ["http", "https", "socks5", "socks5h"];

/// SOCKS5 sends a user name and a password of at most 255 bytes each (RFC 1929), as the
/// proxy client reads them from the URL, escapes decoded; a longer one went out cut to
/// its length modulo 256, and the proxy refused every request, each retried.
fn socks5_credentials(url: &Url, p: &mut Problems) {
    if !url.scheme().starts_with("socks5") {
        return;
    }
    let password = url.password().unwrap_or_default();
    for (what, written) in [("user name", url.username()), ("password", password)] {
        let bytes = percent_encoding::percent_decode_str(written)
            .decode_utf8_lossy()
            .len();
        if bytes > 255 {
            p.add(
                "fetch.proxy",
                format!(
                    "has a {what} of {bytes} bytes (its escapes decoded), and SOCKS5 carries \
                     at most 255: the proxy could take no request"
                ),
            );
        }
    }
}

/// The most parse threads a config may ask for: far more than cores only costs memory,
/// and enough more makes the OS refuse a thread, which aborts the process.
const MAX_PARSE_WORKERS: usize = 256;

/// `fetch.workers` past any use: a slip (`1000000`) would start that many tasks.
const MAX_FETCH_WORKERS: usize = 65_536;

/// The longest time any key may give, in seconds (ten years): a longer one is a slip,
/// and adding it to the clock overflows (a `politeness.robots_ttl_s` of 2^64 − 1 made
/// every host's robots.txt fail).
const LONGEST_TIME_S: u64 = 10 * 365 * 24 * 3600;
const LONGEST_TIME_WHY: &str = "ten years; longer is a slip";

/// A `[channels]` size past any use: a full queue is what keeps memory bounded.
const MAX_CHANNEL: usize = 1_000_000;

/// `channels.max_bytes` at least: a page or two of the common web's.
const MIN_CHANNEL_BYTES: usize = 256 * 1024;
/// `channels.max_bytes` at most (1 TiB).
const MAX_CHANNEL_BYTES: usize = 1 << 40;

/// A `storage.batch_size` past any use: a batch is what waits in `channels.to_store`
/// when a commit ends, so one larger than the largest queue never fills.
const MAX_BATCH: usize = MAX_CHANNEL;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawParse {
    workers: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawPoliteness {
    per_host_concurrency: u32,
    per_ip_concurrency: u32,
    delay_ms: u64,
    max_crawl_delay_ms: u64,
    respect_robots_txt: bool,
    robots_ttl_s: u64,
    respect_meta_robots: bool,
    follow_nofollow_links: bool,
    host: Vec<RawHostPoliteness>,
}

impl Default for RawPoliteness {
    fn default() -> Self {
        Self {
            per_host_concurrency: 2,
            per_ip_concurrency: 0,
            delay_ms: 500,
            max_crawl_delay_ms: 30_000,
            respect_robots_txt: true,
            robots_ttl_s: 24 * 3600,
            respect_meta_robots: true,
            follow_nofollow_links: false,
            host: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHostPoliteness {
    pattern: String,
    per_host_concurrency: Option<u32>,
    delay_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawRetry {
    max_attempts: u32,
    base_delay_ms: u64,
    max_delay_ms: u64,
}

impl Default for RawRetry {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay_ms: 1_000,
            max_delay_ms: 60_000,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawFrontier {
    window: usize,
    seen_cache: usize,
    boost: Vec<RawBoost>,
}

impl Default for RawFrontier {
    fn default() -> Self {
        Self {
            window: 10_000,
            seen_cache: 500_000,
            boost: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBoost {
    pattern: String,
    boost: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawChannels {
    to_fetch: usize,
    to_parse: usize,
    to_store: usize,
    max_bytes: usize,
}

impl Default for RawChannels {
    fn default() -> Self {
        Self {
            to_fetch: 256,
            // A full queue holds a body (~20 KB) or a parsed page with its links (~10 KB)
            // per place. Whichever stage is slower keeps the queue before it full, so
            // its capacity is memory, not speed: the benchmark's crawls ran as fast at
            // 64 as at 256 and 1,024, and 256 each were 11 MB more peak memory. A queue
            // does not cover a stall either way: 64 pages are 20 ms of parsing.
            to_parse: 64,
            to_store: 64,
            // Bounds the queues when pages are large: 64 pages of the benchmark's site
            // weigh 1.3 MB waiting to be parsed and about as much parsed, and the writer's
            // batch a few more; half of this is 12 bodies of the largest
            // `fetch.max_body_bytes`, a quarter of a second of parsing.
            max_bytes: 128 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawStorage {
    database: String,
    batch_size: usize,
}

impl Default for RawStorage {
    fn default() -> Self {
        Self {
            database: "crawl.db".to_owned(),
            batch_size: 512,
        }
    }
}

/// Seeds named one by one in the warnings of a kind, at most: a seeds file may hold a
/// million, and a line for each buries the log.
pub const SEEDS_NAMED: usize = 20;

impl Config {
    /// How a message names seed `i` of [`Config::seeds`]: by its key when the `seeds` key
    /// gave it, else as one of `seeds_file`'s (whose lines a million seeds may fill).
    pub fn seed_key(&self, i: usize) -> String {
        if i < self.listed_seeds {
            format!("seeds[{i}]")
        } else {
            "A seed of seeds_file".to_owned()
        }
    }

    /// Warns of the seeds at `found` (places in [`Config::seeds`]), each in the words `says`
    /// gives its key and its URL (its password hidden), up to [`SEEDS_NAMED`], then of how
    /// many more there are `likewise`.
    pub fn warn_of_seeds(&self, found: &[usize], says: impl Fn(&str, &str) -> String, more: &str) {
        for &i in found.iter().take(SEEDS_NAMED) {
            let seed = self
                .seeds
                .get(i)
                .map(|seed| urlnorm::hide_password(seed.as_str()));
            tracing::warn!("{}", says(&self.seed_key(i), &seed.unwrap_or_default()));
        }
        if let Some(others) = found.len().checked_sub(SEEDS_NAMED).filter(|&n| n > 0) {
            let others = Count(others as u64, "seed");
            tracing::warn!("{others} more {more}, likewise");
        }
    }

    /// Refuses the counts with which a crawl would never end, as 0 workers: a program may
    /// set the fields of a validated config itself, past the checks that reading made.
    pub fn check_counts(&self) -> Result<(), ConfigError> {
        let mut p = Problems::new("");
        for (key, n) in [
            ("fetch.workers", self.fetch.workers),
            ("parse.workers", self.parse.workers),
            (
                "politeness.per_host_concurrency",
                self.politeness.per_host_concurrency as usize,
            ),
            ("frontier.window", self.frontier.window),
        ] {
            p.at_least(key, n as u64, 1);
        }
        if p.list.is_empty() {
            return Ok(());
        }
        Err(ConfigError::Invalid {
            origin: self
                .file
                .as_ref()
                .map_or_else(|| "the config".to_owned(), |file| file.path.clone()),
            problems: p.list,
        })
    }

    /// Reads and validates a config file, and the seeds file it names.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::load_with(path, SeedsFile::Read)
    }

    /// [`Config::load`] for a command that wants the config's settings, not its seeds
    /// (`query` and `export`, its database): a seeds file is not read, and may be gone
    /// since the crawl. Its seeds are none.
    pub fn load_settings(path: &Path) -> Result<Self, ConfigError> {
        Self::load_with(path, SeedsFile::Skip)
    }

    fn load_with(path: &Path, seeds_file: SeedsFile) -> Result<Self, ConfigError> {
        let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            looked_at: looked_at(path),
            foreign: (source.kind() == std::io::ErrorKind::NotFound)
                .then(|| foreign_path(&path.to_string_lossy()))
                .flatten(),
            source,
        })?;
        let origin = path.display().to_string();
        // A crawl's database beside its config, given in its place: "byte 0x8d is not
        // UTF-8 … save it so" was advice to re-save a file that is no text.
        if bytes.starts_with(b"SQLite format 3\0") {
            return Err(ConfigError::Parse {
                message: format!(
                    "is a SQLite database (a crawl's results), not a TOML config: give the \
                     config (`--config crawl.toml`); `pipecrawl query --db {origin}` asks \
                     the database"
                ),
                origin,
            });
        }
        // Else "line 1: byte 0xff is not UTF-8", of a byte no editor shows.
        if crate::seeds_file::is_utf16(&bytes) {
            return Err(ConfigError::Parse {
                message: crate::seeds_file::SAVED_AS_UTF16.to_owned(),
                origin,
            });
        }
        // Said with its line: a file saved in Latin-1 or windows-1252 (an accent in a
        // comment) is otherwise "stream did not contain valid UTF-8", somewhere.
        let text = String::from_utf8(bytes).map_err(|e| {
            let valid = e.utf8_error().valid_up_to();
            let bytes = e.as_bytes();
            ConfigError::Parse {
                message: format!(
                    "line {}: byte {:#04x} is not UTF-8 (TOML files are UTF-8: save it so)",
                    bytes[..valid].iter().filter(|&&b| b == b'\n').count() + 1,
                    bytes[valid],
                ),
                origin: origin.clone(),
            }
        })?;
        let mut config = Self::from_toml_with(&text, &origin, seeds_file)?;
        config.file = Some(ConfigFile {
            path: std::path::absolute(path).map_or(origin, |p| p.display().to_string()),
            hash: format!("{:032x}", xxhash_rust::xxh3::xxh3_128(text.as_bytes())),
        });
        Ok(config)
    }

    /// The keys whose values `new` changes but a running service keeps until it restarts
    /// (README, "Running as a service"): a reload names them, or a changed `delay_ms`
    /// would look applied. `cluster.node_id` counts when either config sets it: unset in
    /// both, each load makes a new one.
    pub fn fixed_until_restart(&self, new: &Config) -> Vec<&'static str> {
        fn differ<T: fmt::Debug>(a: &T, b: &T) -> bool {
            format!("{a:?}") != format!("{b:?}")
        }
        let (a, b) = (self, new);
        let (pa, pb) = (&a.politeness, &b.politeness);
        [
            ("[fetch]", differ(&a.fetch, &b.fetch)),
            ("parse.workers", a.parse.workers != b.parse.workers),
            (
                "politeness.per_host_concurrency",
                pa.per_host_concurrency != pb.per_host_concurrency,
            ),
            (
                "politeness.per_ip_concurrency",
                pa.per_ip_concurrency != pb.per_ip_concurrency,
            ),
            ("politeness.delay_ms", pa.delay != pb.delay),
            ("[[politeness.host]]", differ(&pa.hosts, &pb.hosts)),
            (
                "politeness.max_crawl_delay_ms",
                pa.max_crawl_delay != pb.max_crawl_delay,
            ),
            (
                "politeness.respect_robots_txt",
                pa.respect_robots_txt != pb.respect_robots_txt,
            ),
            ("politeness.robots_ttl_s", pa.robots_ttl != pb.robots_ttl),
            ("[retry]", differ(&a.retry, &b.retry)),
            ("frontier.window", a.frontier.window != b.frontier.window),
            (
                "frontier.seen_cache",
                a.frontier.seen_cache != b.frontier.seen_cache,
            ),
            ("[channels]", differ(&a.channels, &b.channels)),
            ("[storage]", differ(&a.storage, &b.storage)),
            ("[shutdown]", differ(&a.shutdown, &b.shutdown)),
            ("[admin]", differ(&a.admin, &b.admin)),
            ("[recrawl]", differ(&a.recrawl, &b.recrawl)),
            ("[network]", a.network_allow != b.network_allow),
            (
                "traps.max_pages_per_host",
                a.traps.max_pages_per_host != b.traps.max_pages_per_host,
            ),
            (
                "traps.max_hosts_per_domain",
                a.traps.max_hosts_per_domain != b.traps.max_hosts_per_domain,
            ),
            (
                "cluster.node_id",
                (a.cluster.node_id_given || b.cluster.node_id_given)
                    && a.cluster.node_id != b.cluster.node_id,
            ),
            (
                "cluster.lease_ttl_ms",
                a.cluster.lease_ttl != b.cluster.lease_ttl,
            ),
        ]
        .into_iter()
        .filter_map(|(key, changed)| changed.then_some(key))
        .collect()
    }

    /// Parses and validates config text; `origin` names it in error messages.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        Self::from_toml_with(text, origin, SeedsFile::Read)
    }

    fn from_toml_with(
        text: &str,
        origin: &str,
        seeds_file: SeedsFile,
    ) -> Result<Self, ConfigError> {
        let parse_error = |e: toml::de::Error, key: Option<String>| ConfigError::Parse {
            origin: origin.to_owned(),
            message: urlnorm::hide_passwords_in(&format!(
                "{}{}{}{}",
                key.map_or_else(|| e.to_string(), |key| said_of_key(&e, &key, text))
                    .trim_end(),
                rule_list_hint(text, &e),
                escape_hint(text, &e),
                lookalike_hint(text, &e)
            )),
        };
        // Said alone, a refused key is said as toml shows it: with the file's line, a caret
        // under it; but for headers, whose values are often tokens, which the terminal and
        // the journal would keep (the problem's line number names the line).
        let first_refused = |key: &str, error: &toml::de::Error| {
            let mut error = error.clone();
            if key.rsplit('.').next() != Some("headers") {
                error.set_input(Some(text));
            }
            parse_error(error, Some(key.to_owned()))
        };
        let document = toml::de::Deserializer::parse(text).map_err(|e| parse_error(e, None))?;
        let (raw, refused) = match serde_path_to_error::deserialize::<_, RawConfig>(document) {
            Ok(raw) => (Some(raw), Vec::new()),
            Err(_) => {
                set_aside_refused(toml::de::DeTable::parse(text).map_err(|e| parse_error(e, None))?)
            }
        };
        let mut problems = Problems::new(text);
        let config = raw.and_then(|raw| raw.validate(&mut problems, seeds_file));
        if let ([(key, error)], []) = (refused.as_slice(), problems.list.as_slice()) {
            return Err(first_refused(key, error));
        }
        for (key, error) in &refused {
            problems.add_serde(key, error);
        }
        if problems.list.is_empty() {
            if let Some(config) = config {
                return Ok(config);
            }
        }
        // In the file's order, as a user mends it from the top; those of no line (an
        // environment variable) after them.
        let mut list = problems.list;
        list.sort_by_key(|problem| problem.line.unwrap_or(usize::MAX));
        Err(ConfigError::Invalid {
            origin: origin.to_owned(),
            problems: list,
        })
    }
}

/// Whether a load reads the file `seeds_file` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SeedsFile {
    Read,
    Skip,
}

/// The tables that are lists of rules, each rule under its own `[[…]]` header.
const RULE_LISTS: [&str; 4] = [
    "politeness.host",
    "frontier.boost",
    "recrawl.rule",
    "fetch.host",
];

/// A value serde could not take, said with its key in the config's terms: serde's own words
/// name Rust's types (`invalid type: string "500", expected u64`, `expected struct
/// RawScope`), and the line it shows need not hold the key (an inline table, a list over
/// lines). `key` is serde_path_to_error's path to the value (`.` for the top level).
fn said_of_key(error: &toml::de::Error, key: &str, text: &str) -> String {
    let shown = error.to_string();
    // The file's line with a caret under the value, as toml shows it, before its message.
    let context = match error.span() {
        Some(_) => shown
            .trim_end()
            .strip_suffix(error.message().trim_end())
            .unwrap_or_default(),
        None => "",
    };
    format!("{context}{}", in_words(error, key, text))
}

/// What [`said_of_key`] says of the value, without the file's line toml shows.
fn in_words(error: &toml::de::Error, key: &str, text: &str) -> String {
    let value = error.span().and_then(|span| text.get(span));
    // A doubled header is read as a list where a table is wanted: a value of the wrong
    // type, never a key missing (a rule's, whose header the error points at).
    let doubled = missing_field(error.message())
        .is_none()
        .then(|| doubled_table(text, error))
        .flatten();
    match doubled {
        Some(table) => format!(
            "`{table}` is one table, not a list of rules: write its header in single \
             brackets, `[{table}]`"
        ),
        None => in_config_terms(key, error.message(), value),
    }
}

/// The table `error` points at when its header is written `[[table]]` though it is one
/// table, not a list of rules: serde reads the list's first table as the table's first
/// key, and said "`scope[0]` must be a list" of a `[[scope]]`. Known by the file reading
/// past that header once it has single brackets (a list of rules, or of strings, does
/// not).
fn doubled_table(text: &str, error: &toml::de::Error) -> Option<String> {
    let span = error.span()?;
    let header = text.get(span.clone())?.trim();
    let table = header.strip_prefix("[[")?.strip_suffix("]]")?.trim();
    let single = format!("{}[{table}]{}", &text[..span.start], &text[span.end..]);
    match toml::from_str::<RawConfig>(&single) {
        Err(e) if e.span().map(|s| s.start) == Some(span.start) => None,
        _ => Some(table.to_owned()),
    }
}

/// `value` is the value's text in the file, where the error points at one.
fn in_config_terms(key: &str, message: &str, value: Option<&str>) -> String {
    let wrong = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "))
        .and_then(|rest| rest.rsplit_once(", expected "));
    if let Some((got, expected)) = wrong {
        let got = what_it_got(got, value);
        let limit = matches!(expected, "u32" | "u64" | "usize");
        let how = match no_limit_of(key) {
            Some(how) if limit && says_no_limit(&got) => Some(how),
            how if limit && got == "-1" => Some(how.unwrap_or(
                "no key takes -1: a limit with none says so by 0 or by the key left out, as \
                 config/example.toml says of it, and one without wants the most you mean",
            )),
            _ => None,
        };
        let no_limit = if let Some(how) = how {
            format!(": {how}")
        } else {
            in_milliseconds(key, &got)
                .or_else(|| in_keys_unit(key, &got))
                .or_else(|| header_lines_as_table(key, value))
                .unwrap_or_default()
        };
        return format!(
            "`{key}` must be {} (got {got}{no_limit})",
            what_it_takes(key, expected),
        );
    }
    // An unknown key's path is the key's own; a missing one's, its table's.
    if let Some((name, after)) = message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split_once('`'))
    {
        let known = after
            .strip_prefix(", expected one of ")
            .or_else(|| after.strip_prefix(", expected "))
            .unwrap_or("nothing");
        let table = match key.rsplit_once('.') {
            None => "the top level".to_owned(),
            Some((table, _)) => match table.rsplit_once('[') {
                Some((list, _)) => format!("`[[{list}]]`"),
                None => format!("`[{table}]`"),
            },
        };
        let belongs = where_it_belongs(name, &table);
        // A key of another table is said so after; else another crawler's setting, or
        // the nearest key of this table, first, as a table may have more than a dozen.
        let nearest = Some(name)
            .filter(|_| belongs.is_empty())
            .and_then(|name| {
                other_crawlers_setting(name)
                    .map(|setting| format!(" ({setting})"))
                    .or_else(|| {
                        nearest_key(name, known).map(|near| format!(" (did you mean `{near}`?)"))
                    })
            })
            .unwrap_or_default();
        return format!("`{key}` is not a key of {table}{nearest}, which takes {known}{belongs}");
    }
    if let Some(name) = missing_field(message) {
        return format!("`{}` is missing: it has no default", key_of(key, name));
    }
    message.to_owned()
}

/// Settings of other crawlers a user coming from them writes in a config, each with the
/// key it is here (README's "Coming from" tables): by tool, its spelling and the key;
/// [`how_it_moves`] says how its value does (seconds for milliseconds, a meaning
/// inverted, the first try counted).
const OTHER_CRAWLERS_SETTINGS: &[(&str, &[(&str, &str)])] = &[
    (
        "Scrapy",
        &[
            ("start_urls", "seeds"),
            ("allowed_domains", "scope.hosts"),
            ("DEPTH_LIMIT", "scope.max_depth"),
            ("ROBOTSTXT_OBEY", "politeness.respect_robots_txt"),
            ("USER_AGENT", "fetch.user_agent"),
            ("DEFAULT_REQUEST_HEADERS", "fetch.headers"),
            ("DOWNLOAD_DELAY", "politeness.delay_ms"),
            ("CONCURRENT_REQUESTS", "fetch.workers"),
            (
                "CONCURRENT_REQUESTS_PER_DOMAIN",
                "politeness.per_host_concurrency",
            ),
            (
                "CONCURRENT_REQUESTS_PER_IP",
                "politeness.per_ip_concurrency",
            ),
            ("DOWNLOAD_TIMEOUT", "fetch.timeout_ms"),
            ("DOWNLOAD_MAXSIZE", "fetch.max_body_bytes"),
            ("RETRY_TIMES", "retry.max_attempts"),
            ("REDIRECT_MAX_TIMES", "fetch.max_redirects"),
            ("COOKIES_ENABLED", "fetch.cookies"),
            ("CLOSESPIDER_PAGECOUNT", "scope.max_pages"),
        ],
    ),
    (
        "wget",
        &[
            ("level", "scope.max_depth"),
            ("reclevel", "scope.max_depth"),
            ("wait", "politeness.delay_ms"),
            ("tries", "retry.max_attempts"),
            ("domains", "scope.hosts"),
            ("max_redirect", "fetch.max_redirects"),
            ("robots", "politeness.respect_robots_txt"),
            ("header", "fetch.headers"),
        ],
    ),
    (
        "Colly",
        &[
            ("MaxDepth", "scope.max_depth"),
            ("AllowedDomains", "scope.hosts"),
            ("UserAgent", "fetch.user_agent"),
            ("MaxBodySize", "fetch.max_body_bytes"),
            ("IgnoreRobotsTxt", "politeness.respect_robots_txt"),
            ("Parallelism", "politeness.per_host_concurrency"),
            ("MaxRequests", "scope.max_pages"),
        ],
    ),
    (
        "Heritrix",
        &[
            ("maxHops", "scope.max_depth"),
            ("maxRetries", "retry.max_attempts"),
            ("queueTotalBudget", "traps.max_pages_per_host"),
            (
                "respectCrawlDelayUpToSeconds",
                "politeness.max_crawl_delay_ms",
            ),
            ("minDelayMs", "politeness.delay_ms"),
        ],
    ),
];

/// How a value of the other crawler's setting `theirs` moves across where it is not as
/// written: copied as it was, it would load and crawl wrong (`DOWNLOAD_TIMEOUT = 180` as
/// `timeout_ms = 180`: every fetch timed out).
fn how_it_moves(theirs: &str) -> Option<&'static str> {
    Some(match theirs {
        "DEPTH_LIMIT" => "whose 0 (no limit there) is the key left out here",
        "DOWNLOAD_DELAY" => "in milliseconds: 0.5 s is `delay_ms = 500`",
        "DOWNLOAD_TIMEOUT" => "in milliseconds: 180 s is `timeout_ms = 180000`",
        "RETRY_TIMES" => "which counts the first try too: `RETRY_TIMES = 2` is `max_attempts = 3`",
        "wait" => "in milliseconds: 2 s is `delay_ms = 2000`",
        "robots" => "`robots = off` is `respect_robots_txt = false`",
        "MaxDepth" => {
            "where a seed is depth 0, Colly's start URL 1: `MaxDepth = 2` is `max_depth = 1`"
        }
        "IgnoreRobotsTxt" => {
            "its inverse: `IgnoreRobotsTxt = true` is `respect_robots_txt = false`"
        }
        "maxRetries" => "which counts the first try too: `maxRetries = 2` is `max_attempts = 3`",
        "respectCrawlDelayUpToSeconds" => "in milliseconds: 300 s is `max_crawl_delay_ms = 300000`",
        _ => return None,
    })
}

/// The other crawler's setting `name` is, as [`OTHER_CRAWLERS_SETTINGS`] has it: in any
/// case, `-` for `_` (wget's `--max-redirect` as a key), as a TOML file tends to write it.
fn other_crawlers_setting(name: &str) -> Option<String> {
    let name = name.replace('-', "_");
    OTHER_CRAWLERS_SETTINGS.iter().find_map(|(tool, settings)| {
        settings
            .iter()
            .find(|(theirs, _)| theirs.eq_ignore_ascii_case(&name))
            .map(|(theirs, ours)| {
                let how = how_it_moves(theirs).map_or_else(String::new, |how| format!(", {how}"));
                format!("{tool}'s `{theirs}` is `{ours}` here{how}")
            })
    })
}

/// The key of `known` (serde's list: `` `a`, `b` ``) nearest to `name`, if one is near
/// enough to be a misspelling of it: Jaro–Winkler similarity at 0.8 or more, and two
/// edits at most, or the one the start of the other (`delay` for `delay_ms`). By
/// similarity alone, keys sharing a prefix were near: `max_retries` drew `max_redirects`,
/// and `robots_txt` `robots_ttl_s`, which would change what was not meant. A key the name
/// starts is near only when one word (most often a unit) is all it adds (`delay_ms`): wgetrc's
/// `robots = off` drew `robots_ttl_s`.
fn nearest_key<'k>(name: &str, known: &'k str) -> Option<&'k str> {
    known
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|key| {
            let one_word_added = key
                .strip_prefix(name)
                .and_then(|rest| rest.strip_prefix('_'))
                .is_some_and(|unit| !unit.contains('_'));
            strsim::osa_distance(name, key) <= 2 || one_word_added || name.starts_with(key)
        })
        .map(|key| (strsim::jaro_winkler(name, key), key))
        .filter(|(near, _)| *near >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, key)| key)
}

/// Whether `got` (as [`what_it_got`] says it) is how other tools write "no limit": -1
/// (Nutch, Heritrix), `inf` (wget's `--level=inf`, TOML's own infinity), "unlimited".
fn says_no_limit(got: &str) -> bool {
    let word = got
        .strip_prefix("the string \"")
        .and_then(|word| word.strip_suffix('"'))
        .unwrap_or(got);
    [
        "-1",
        "inf",
        "infinite",
        "infinity",
        "unlimited",
        "none",
        "no limit",
    ]
    .iter()
    .any(|no_limit| word.trim().eq_ignore_ascii_case(no_limit))
}

/// How `key`, a limit, says "no limit", told of a -1 (or a word for none, [`says_no_limit`])
/// given it, or a 0 where the key's least is 1 or more: Nutch's and Heritrix's settings write it so (`http.content.limit`,
/// `db.max.outlinks.per.page`), Colly's and Scrapy's by 0, and a pointer to
/// config/example.toml left the keys that have no such value with nowhere to go. None for
/// a key that is no limit.
fn no_limit_of(key: &str) -> Option<&'static str> {
    Some(match key {
        "scope.max_depth" | "scope.max_pages" => "leave the key out for no limit",
        "politeness.per_ip_concurrency"
        | "fetch.min_bytes_per_sec"
        | "traps.family_depth_span"
        | "traps.family_budget"
        | "traps.max_pages_per_host"
        | "traps.max_hosts_per_domain" => "0 is no limit",
        // The limits Nutch writes -1 for (`http.content.limit`, `db.max.outlinks.per.page`),
        // and Colly 0 (`MaxBodySize`, `SetRequestTimeout`).
        "fetch.max_body_bytes"
        | "traps.max_links_per_page"
        | "fetch.timeout_ms"
        | "fetch.connect_timeout_ms" => {
            "the key has no value for no limit; write the most you mean, as \
             config/example.toml shows it"
        }
        _ => return None,
    })
}

/// What a list of header lines given `headers` (`fetch.headers`, a rule's) is as the table
/// it takes, as wget's `--header 'X-A: b'` and curl's `-H` write them: told only that a
/// table was wanted, the user was left to rewrite each line. None unless every item is
/// such a line, each name once (a table holds a key once). A credential's value is shown
/// as `"…"`: the message goes to the terminal and the journal.
fn header_lines_as_table(key: &str, value: Option<&str>) -> Option<String> {
    let name = key.rsplit('.').next().filter(|name| *name == "headers")?;
    let list: toml::Table = toml::from_str(&format!("v = {}", value?)).ok()?;
    let mut named = std::collections::HashSet::new();
    let pairs = list
        .get("v")?
        .as_array()?
        .iter()
        .map(|line| {
            let (header, said) = line.as_str()?.split_once(':')?;
            let header = header.trim();
            let bare = header
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
            let once = named.insert(header.to_ascii_lowercase());
            (!header.is_empty() && bare && once).then(|| {
                let said = match crate::host_headers::carries_credentials(header) {
                    true => "…".to_owned(),
                    false => said.trim().to_owned(),
                };
                format!("{header} = {}", toml::Value::String(said))
            })
        })
        .collect::<Option<Vec<_>>>()
        .filter(|pairs| !pairs.is_empty())?;
    Some(format!(": write `{name} = {{ {} }}`", pairs.join(", ")))
}

/// What a fraction given a key counting milliseconds stands for: seconds, as Scrapy
/// (`DOWNLOAD_DELAY = 0.5`), wget (`--wait=0.5`) and Colly write times, said in
/// milliseconds when it is a whole number of them. Only below a minute: `250.5` is more
/// likely milliseconds with a fraction than four minutes.
fn in_milliseconds(key: &str, got: &str) -> Option<String> {
    let name = key
        .rsplit('.')
        .next()
        .filter(|name| name.ends_with("_ms"))?;
    let seconds: f64 = got
        .parse()
        .ok()
        .filter(|s: &f64| s.fract() != 0.0 && *s < 60.0)?;
    let ms = seconds * 1000.0;
    ((ms.round() - ms).abs() < 1e-6 && ms > 0.0).then(|| {
        format!(
            ": it counts milliseconds; {got} seconds is `{name} = {}`",
            ms.round()
        )
    })
}

/// What a Go duration (`"1s"`, `"500ms"`, `"1h30m"`) given a key counting milliseconds
/// or seconds stands for, when a whole number of them: Colly's settings are Go's
/// `time.Duration`s, and Go configs write them so.
fn in_keys_unit(key: &str, got: &str) -> Option<String> {
    let name = key.rsplit('.').next()?;
    let (unit, per_second) = if name.ends_with("_ms") {
        ("milliseconds", 1000.0)
    } else if name.ends_with("_s") {
        ("seconds", 1.0)
    } else {
        return None;
    };
    let text = got.strip_prefix("the string \"")?.strip_suffix('"')?;
    let n = go_duration_seconds(text)? * per_second;
    ((n.round() - n).abs() < 1e-6)
        .then(|| format!(": it counts {unit}; {text:?} is `{name} = {}`", n.round()))
}

/// The seconds `text` stands for as Go's `time.ParseDuration` reads it (numbers each
/// with a unit, `ns` to `h`), unsigned; None when it is no such duration.
fn go_duration_seconds(text: &str) -> Option<f64> {
    let mut rest = text;
    let mut seconds = 0.0;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1e-9,
            // Go takes the micro sign and the Greek mu alike.
            "us" | "\u{b5}s" | "\u{3bc}s" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        seconds += number * scale;
        rest = &rest[unit_end..];
    }
    (!text.is_empty()).then_some(seconds)
}

/// Where a key found in the table `found_in` belongs instead, if it is another table's:
/// TOML reads every key after a header as that table's, so a top-level key written below
/// one (`seeds` after `[scope]`), or a key under the wrong header, was refused with the
/// keys of a table that has none of the one meant.
fn where_it_belongs(name: &str, found_in: &str) -> String {
    let top = accepted_fields("");
    if top.iter().any(|field| field == name) {
        return if accepted_fields(&format!("[{name}]")).is_empty() {
            format!("; `{name}` is a top-level key: write it above the first `[table]` header")
        } else {
            format!("; `{name}` is a table of its own, `[{name}]`")
        };
    }
    let tables = top.iter().map(|table| format!("[{table}]"));
    let rule_lists = RULE_LISTS.iter().map(|list| format!("[[{list}]]"));
    let homes: Vec<String> = tables
        .chain(rule_lists)
        .filter(|header| accepted_fields(header).iter().any(|field| field == name))
        .map(|header| format!("`{header}`"))
        .filter(|home| home != found_in)
        .collect();
    if homes.is_empty() {
        return String::new();
    }
    format!("; `{name}` is a key of {}", homes.join(", "))
}

/// The keys serde takes under a table header (`[fetch]`, `[[frontier.boost]]`, or none
/// for the top level), read from its unknown-field message so that they come from the
/// structs themselves; none for a header that is no table.
fn accepted_fields(header: &str) -> Vec<String> {
    let text = format!("seeds = []\n{header}\nzzz_probe = 1\n");
    let Err(e) = toml::from_str::<RawConfig>(&text) else {
        return Vec::new();
    };
    let message = e.message().to_owned();
    let Some((_, expected)) = message.split_once("expected") else {
        return Vec::new();
    };
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The least value `key` takes, as its check says it on a 0: a key that takes none
/// (`fetch.workers`, `retry.max_attempts`) was said to take "a whole number, 0 or more"
/// ("from 0 to …"), and then refused the 0.
/// 0 for a key of a list of rules (`[[politeness.host]]`): a rule's check needs the rule
/// around it, so its keys are not probed alone.
fn least_of(key: &str) -> u64 {
    let Some((table, name)) = key.rsplit_once('.').filter(|(t, _)| !t.contains('[')) else {
        return 0;
    };
    let text = format!("seeds = []\n[{table}]\n{name} = 0\n");
    let Err(ConfigError::Invalid { problems, .. }) =
        Config::from_toml_with(&text, "", SeedsFile::Skip)
    else {
        return 0;
    };
    problems
        .iter()
        .filter(|p| p.key == key)
        .find_map(|p| {
            let rest = p.message.strip_prefix("must be at least ")?;
            rest.split(' ').next()?.parse().ok()
        })
        .unwrap_or(0)
}

/// serde's name of an expected type, in TOML's terms.
fn what_it_takes(key: &str, expected: &str) -> String {
    match expected {
        // TOML's integers stop at i64's bounds, so only u32's upper one can be passed.
        "u32" => format!("a whole number from {} to {}", least_of(key), u32::MAX),
        "u64" | "usize" => format!("a whole number, {} or more", least_of(key)),
        "i64" => "a whole number".to_owned(),
        "a boolean" => "true or false".to_owned(),
        "a string" => "a string in quotes".to_owned(),
        "a sequence" => "a list, `[…]`".to_owned(),
        table if table == "a map" || table.starts_with("struct ") => {
            if key.contains('[') || key == "." {
                "a table".to_owned()
            } else {
                format!("a table, `[{key}]`")
            }
        }
        other => other.to_owned(),
    }
}

/// serde's description of the value it got (`string "500"`, ``integer `-1` ``, `map`).
fn what_it_got(got: &str, value: Option<&str>) -> String {
    let quoted = got.split('`').nth(1);
    // toml hands serde a date or time as a table of one private key; in the file it is the
    // one such table that starts with a digit.
    let written = value
        .map(str::trim)
        .filter(|v| v.starts_with(|c: char| c.is_ascii_digit()));
    match (got, written) {
        ("map", Some(date)) if date.contains('-') => format!("the date {date}"),
        ("map", Some(time)) => format!("the time {time}"),
        ("map", None) => "a table".to_owned(),
        ("sequence", _) => "a list".to_owned(),
        _ if got.starts_with("string ") => format!("the {got}"),
        _ => quoted.unwrap_or(got).to_owned(),
    }
}

/// Said after a parse error at `[frontier.boost]` and the like: serde calls it "invalid
/// type: map, expected a sequence", which does not say that a bracket is missing.
fn rule_list_hint(text: &str, error: &toml::de::Error) -> String {
    let header = error
        .span()
        .and_then(|span| text.get(span))
        .unwrap_or_default()
        .trim();
    RULE_LISTS
        .iter()
        .find(|table| header == format!("[{table}]"))
        .map(|table| {
            format!(
                "\n`{table}` is a list of rules: write `[[{table}]]`, in double brackets, \
                 above each rule"
            )
        })
        .unwrap_or_default()
}

/// Said after TOML's own words for a backslash it takes for an escape ("missing escaped
/// value, expected `b`, `e`, …"): a regular expression written in double quotes, as most
/// tools' configs take it (`exclude = ["\.pdf$"]`), is the usual cause, and those words
/// do not say that single quotes keep a backslash as written.
fn escape_hint(text: &str, error: &toml::de::Error) -> String {
    let after_backslash = error
        .span()
        .and_then(|span| text.get(..span.start))
        .is_some_and(|before| before.ends_with('\\'));
    if after_backslash && error.message().contains("escape") {
        "\nIn a string in double quotes a backslash starts an escape: for a regular \
         expression, write it in single quotes, `'\\.pdf$'`, where a backslash is itself, \
         as config/example.toml writes its patterns (a Windows path is written as Linux \
         sees it: on WSL, `C:\\crawls` is `/mnt/c/crawls`)"
            .to_owned()
    } else {
        String::new()
    }
}

/// What to type for a look-alike where `error` points, if one is there: Word, Outlook
/// and phone keyboards type `“x”` and `‘x’`, which TOML reads as no quotes at all
/// ("string values must be quoted", of a value the user sees quoted), and a no-break
/// space pasted from a web page or a document is no space to TOML, though it looks one.
fn lookalike_hint(text: &str, error: &toml::de::Error) -> String {
    let found = error
        .span()
        .and_then(|span| text.get(span.start..))
        .and_then(|rest| rest.chars().next());
    match found {
        Some(quote @ ('“' | '”' | '„' | '‘' | '’' | '‚' | '«' | '»')) => format!(
            "\n`{quote}` is a typographic (\"smart\") quote, which TOML does not read as one: \
             type straight quotes, `\"…\"` or `'…'` (an editor's auto-correct may have \
             changed them)"
        ),
        Some('\u{a0}' | '\u{202f}') => "\nWhere the caret points is a no-break space, \
             which looks like a space and is none to TOML: delete it and type a space"
            .to_owned(),
        _ => String::new(),
    }
}

/// Collects validation problems, finding each key's line in the source text.
struct Problems<'a> {
    text: &'a str,
    list: Vec<Problem>,
}

impl<'a> Problems<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text,
            list: Vec::new(),
        }
    }

    fn add(&mut self, key: &str, message: impl Into<String>) {
        self.list.push(Problem {
            key: key.to_owned(),
            line: line_of_key(self.text, key),
            message: message.into(),
            in_file: None,
        });
    }

    /// A value serde refused, at the line its error points at: said as [`said_of_key`]
    /// says it ([`in_words`]), without the file's line it shows, which the problem's line
    /// number names.
    fn add_serde(&mut self, key: &str, error: &toml::de::Error) {
        let said = format!(
            "{}{}{}",
            in_words(error, key, self.text),
            rule_list_hint(self.text, error),
            escape_hint(self.text, error)
        );
        let said = urlnorm::hide_passwords_in(&said);
        // A missing key is said of itself, not of its table.
        let key = missing_field(error.message())
            .map_or_else(|| key.to_owned(), |field| key_of(key, field));
        let message = said
            .strip_prefix(&format!("`{key}` "))
            .map_or_else(|| format!("is refused: {said}"), str::to_owned);
        let line = error
            .span()
            .and_then(|span| self.text.get(..span.start))
            .map(|before| before.matches('\n').count() + 1);
        self.list.push(Problem {
            key: key.to_owned(),
            line,
            message,
            in_file: None,
        });
    }

    /// A problem at `place` in the file `key` names, listed where `key` is set.
    fn add_in_file(&mut self, key: &str, place: String, message: impl Into<String>) {
        self.add(key, message);
        if let Some(problem) = self.list.last_mut() {
            problem.in_file = Some(place);
        }
    }

    fn at_least(&mut self, key: &str, value: u64, min: u64) {
        if value < min {
            // 0 is how Colly (`MaxBodySize`, `SetRequestTimeout`) and Scrapy
            // (`CLOSESPIDER_PAGECOUNT`) say no limit: the least allowed is not what was meant.
            let no_limit = no_limit_of(key)
                .filter(|_| value == 0)
                .map(|how| format!(": {how}"))
                .unwrap_or_default();
            self.add(
                key,
                format!("must be at least {min} (got {value}{no_limit})"),
            );
        }
    }

    fn at_most(&mut self, key: &str, value: u64, max: u64, why: &str) {
        if value > max {
            self.add(key, format!("must be at most {max} (got {value}): {why}"));
        }
    }

    /// A time key in milliseconds, at most [`LONGEST_TIME_S`].
    fn millis(&mut self, key: &str, value: u64) {
        self.at_most(key, value, LONGEST_TIME_S * 1000, LONGEST_TIME_WHY);
    }

    /// A time key in seconds, at most [`LONGEST_TIME_S`].
    fn seconds(&mut self, key: &str, value: u64) {
        self.at_most(key, value, LONGEST_TIME_S, LONGEST_TIME_WHY);
    }

    /// The patterns of the rules of `table` (`fetch.host`, `politeness.host`), as
    /// `written`, each parsed once; None for one that is a problem. The first rule
    /// matching a host wins, so one an earlier rule covers (`a.example.com` after
    /// `*.example.com`) would never apply, its delay or its headers left out for the very
    /// hosts it names, and is a problem naming both.
    fn host_rule_patterns<'w>(
        &mut self,
        table: &str,
        written: impl Iterator<Item = &'w str>,
    ) -> Vec<Option<HostPattern>> {
        let written: Vec<&str> = written.collect();
        // A rule covered is covered by the rule covering it too: the first rule covering
        // one is among those kept.
        let mut kept: Vec<Option<HostPattern>> = Vec::with_capacity(written.len());
        for (i, &text) in written.iter().enumerate() {
            let key = format!("{table}[{i}].pattern");
            let pattern = HostPattern::parse(text).map_err(|e| self.add(&key, e)).ok();
            let covering = pattern.as_ref().and_then(|pattern| {
                kept.iter()
                    .position(|before| before.as_ref().is_some_and(|b| b.covers(pattern)))
            });
            if let Some(j) = covering {
                let before = written[j];
                self.add(
                    &key,
                    format!(
                        "{text:?} is never used: `{table}[{j}]` ({before:?}) comes first and \
                         matches every host it does, and the first matching rule wins (put \
                         this rule first, or take it out)"
                    ),
                );
            }
            kept.push(pattern.filter(|_| covering.is_none()));
        }
        kept
    }

    /// `scope.include` or `scope.exclude` (`key`): patterns as [`Problems::regex`] takes
    /// them, where a line of Nutch's regex-urlfilter.txt pasted with its sign is a problem
    /// too, and a look-around's hint names `scope.url_filter`, which says what these
    /// cannot.
    fn scope_rules(&mut self, key: &str, patterns: &[String]) -> Vec<Regex> {
        patterns
            .iter()
            .enumerate()
            .filter_map(|(i, pattern)| {
                let field = key.trim_start_matches("scope.");
                let key = format!("{key}[{i}]");
                // Before Nutch's sign: Heritrix's files write a SURT prefix after a `+`.
                if let Some(why) = crate::surt::rule_problem(pattern)
                    .or_else(|| crate::scope::httrack_filter(pattern, field))
                    .or_else(|| crate::scope::nutch_filter_line(pattern))
                {
                    self.add(&key, why);
                    return None;
                }
                self.regex_hinting(&key, pattern, URL_FILTER_INSTEAD)
            })
            .collect()
    }

    /// `scope.url_filter`'s lines, each a sign and a pattern as [`Problems::regex`] takes
    /// one.
    fn url_filter(&mut self, lines: &[String]) -> Vec<UrlFilterRule> {
        let mut rules = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let key = format!("scope.url_filter[{i}]");
            // Only a line whose rule is no regular expression, a star first:
            // `-/wp-admin/*` is one, and matches what it says.
            let no_regex = line.get(1..).is_some_and(|rule| rule.starts_with('*'));
            if let Some(why) = no_regex
                .then(|| crate::scope::httrack_filter(line, "url_filter"))
                .flatten()
            {
                self.add(&key, why);
                continue;
            }
            let (keep, rule) = match line.split_at_checked(1) {
                Some(("+", rule)) => (true, rule),
                Some(("-", rule)) => (false, rule),
                // Nutch skips these, but inside the quotes a `#` is no TOML comment: told
                // apart from a rule missing its sign, they are to be moved out.
                _ if line.trim().is_empty() || line.trim_start().starts_with('#') => {
                    self.add(
                        &key,
                        format!(
                            "{line:?} is a comment or blank line of regex-urlfilter.txt: leave \
                             it out (a TOML comment goes outside the quotes)"
                        ),
                    );
                    continue;
                }
                _ => {
                    self.add(
                        &key,
                        format!(
                            "{line:?} has no sign: start it with `+` to crawl the URLs it \
                             matches or `-` to leave them out, as a line of Nutch's \
                             regex-urlfilter.txt"
                        ),
                    );
                    continue;
                }
            };
            if let Some(pattern) = self.regex(&key, rule) {
                rules.push(UrlFilterRule { keep, pattern });
            }
        }
        rules
    }

    /// A pattern matched against full URLs (`include`, `exclude`, a boost's, a recrawl
    /// rule's, a `url_filter` line's): one that does not compile, or can never match, is a
    /// problem.
    fn regex(&mut self, key: &str, pattern: &str) -> Option<Regex> {
        self.regex_hinting(key, pattern, "")
    }

    /// [`Problems::regex`], a look-around's hint ending with `instead`.
    fn regex_hinting(&mut self, key: &str, pattern: &str, instead: &str) -> Option<Regex> {
        if let Some(why) = crate::surt::rule_problem(pattern) {
            self.add(key, why);
            return None;
        }
        match Regex::new(&urlnorm::rule_escapes(pattern)) {
            Ok(re) => {
                if let Some(once) = backslashes_once(pattern) {
                    self.add(
                        key,
                        format!(
                            "'{pattern}' asks for a backslash in the URL at each `\\\\`, as \
                             Go's and Java's source strings write one `\\`: in single quotes \
                             write `'{once}'` (a backslash itself is `\\x5C`)"
                        ),
                    );
                    return None;
                }
                match crate::scope::never_matches_a_url(pattern)
                    .or_else(|| crate::scope::robots_txt_pattern(pattern))
                {
                    Some(why) => {
                        self.add(key, format!("{pattern:?} {why}"));
                        None
                    }
                    None => Some(re),
                }
            }
            Err(e) => {
                let globs = as_globs(pattern);
                let unquoted = unquoted(pattern);
                let braces = braces_escaped(pattern);
                let query_mark = query_mark_escaped(pattern);
                let hint = match as_glob(pattern) {
                    Some(regex) => format!(
                        "\n({pattern:?} reads as a glob: write `'{regex}'`; these are regular \
                         expressions, found anywhere in the URL)"
                    ),
                    None if !globs.is_empty() => format!(
                        "\n({pattern:?} reads as wget's list of globs: write `'{}'`, each a \
                         rule; these are regular expressions, found anywhere in the URL)",
                        globs.join("', '")
                    ),
                    None if query_mark.is_some() => format!(
                        "\n(a `?` there repeats nothing: the query's `?` is `\\?`, write \
                         `'{}'`)",
                        query_mark.unwrap_or_default()
                    ),
                    None if has_look_around(pattern) => format!(
                        "\n(these regular expressions have no look-around: write the URLs to \
                         leave out as `exclude` patterns, those to keep as `include` \
                         ones{instead})"
                    ),
                    None if braces.is_some() => format!(
                        "\n(Go's regexp reads a `{{` that starts no repetition as itself, and \
                         these do not: write `'{}'`)",
                        braces.unwrap_or_default()
                    ),
                    None if unquoted.is_some() => format!(
                        "\n({pattern:?} quotes text with `\\Q…\\E`, which these regular \
                         expressions do not: write `'{}'`)",
                        unquoted.unwrap_or_default()
                    ),
                    None if has_backreference(pattern) => "\n(these regular expressions have \
                        no backreferences: a URL whose path repeats a segment, which Nutch's \
                        `-.*(/[^/]+)/[^/]+\\1/[^/]+\\1/` drops, is a trap row here past \
                        `traps.max_repeated_segment`: leave the rule out)"
                        .to_owned(),
                    None => String::new(),
                };
                self.add(key, format!("is not a valid regular expression: {e}{hint}"));
                None
            }
        }
    }
}

/// The end of a look-around's hint for `include` and `exclude`: `url_filter` keeps part
/// of what a rule drops, which is what a look-ahead there is most often for.
const URL_FILTER_INSTEAD: &str = ", or the rules in order in `scope.url_filter`, `+` to \
    crawl and `-` not to, where the first that matches decides";

/// `pattern` with the `?`s that repeat nothing (at its start, after `^` or `|`) escaped,
/// when that makes it a regular expression: `?sort=` written as the URL's query writes
/// it, which a regular expression reads as repeating what comes before it.
fn query_mark_escaped(pattern: &str) -> Option<String> {
    let mut escaped = String::with_capacity(pattern.len() + 2);
    let mut before = None;
    for c in pattern.chars() {
        if c == '?' && matches!(before, None | Some('^' | '|')) {
            escaped.push('\\');
        }
        escaped.push(c);
        before = Some(c);
    }
    (escaped != pattern && Regex::new(&escaped).is_ok()).then_some(escaped)
}

/// Whether `pattern` asks for look-ahead or look-behind, as Java's and Python's regular
/// expressions (Nutch's, Heritrix's, Scrapy's) allow: the `regex` crate's "look-around
/// is not supported" said what was refused, not how a crawl's patterns do without it.
fn has_look_around(pattern: &str) -> bool {
    ["(?=", "(?!", "(?<=", "(?<!"]
        .iter()
        .any(|group| pattern.contains(group))
}

/// Whether `pattern` refers back to a group (`\1`), as Java's regular expressions allow:
/// Nutch's stock `regex-urlfilter.txt` has one, for paths that repeat a segment.
fn has_backreference(pattern: &str) -> bool {
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.next().is_some_and(|next| matches!(next, '1'..='9')) {
            return true;
        }
    }
    false
}

/// `pattern` with its backslashes written once, when every one of them is doubled, as a
/// regular expression is written in a Go or Java string (Colly's
/// `regexp.MustCompile("http://httpbin\\.org/")`) and pasted into TOML's single quotes,
/// where `\\` stays two characters and asks for a backslash that URLs do not hold.
fn backslashes_once(pattern: &str) -> Option<String> {
    let mut once = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    let mut doubled = false;
    while let Some(c) = chars.next() {
        if c == '\\' {
            if chars.next() != Some('\\') {
                return None;
            }
            doubled = true;
        }
        once.push(c);
    }
    (doubled && Regex::new(&once).is_ok()).then_some(once)
}

/// `pattern` with each `{` that starts no counted repetition (`{2}`, `{2,}`, `{2,5}`), and
/// each `}` that ends none, escaped, as Go's regexp (Colly's `URLFilters`) reads them:
/// `/users/{id}/` is a URL template there. None when it has none, or is still no regular
/// expression.
fn braces_escaped(pattern: &str) -> Option<String> {
    let mut out = String::with_capacity(pattern.len() + 4);
    let (mut class_depth, mut changed) = (0usize, false);
    let mut rest = pattern;
    while let Some(c) = rest.chars().next() {
        rest = &rest[c.len_utf8()..];
        match c {
            '\\' => {
                out.push(c);
                if let Some(next) = rest.chars().next() {
                    out.push(next);
                    rest = &rest[next.len_utf8()..];
                }
                continue;
            }
            '[' => class_depth += 1,
            ']' => class_depth = class_depth.saturating_sub(1),
            '{' if class_depth == 0 => {
                let counted = rest.split_once('}').filter(|(count, _)| {
                    let (min, max) = count.split_once(',').unwrap_or((count, "0"));
                    !min.is_empty() && min.bytes().chain(max.bytes()).all(|b| b.is_ascii_digit())
                });
                match counted {
                    Some((count, after)) => {
                        out.push_str(&format!("{{{count}}}"));
                        rest = after;
                    }
                    None => {
                        out.push_str("\\{");
                        changed = true;
                    }
                }
                continue;
            }
            '}' if class_depth == 0 => {
                out.push_str("\\}");
                changed = true;
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    (changed && Regex::new(&out).is_ok()).then_some(out)
}

/// `pattern` with the text it quotes between `\Q` and `\E` (or its end) escaped, as Go's
/// regular expressions (Colly's `URLFilters`), Perl's and Java's read it and the regex
/// crate does not; None when it quotes nothing or is no regular expression so either.
fn unquoted(pattern: &str) -> Option<String> {
    let (before, mut rest) = pattern.split_once("\\Q")?;
    let mut out = before.to_owned();
    loop {
        let (quoted, next) = rest.split_once("\\E").unwrap_or((rest, ""));
        out.push_str(&regex::escape(quoted));
        match next.split_once("\\Q") {
            Some((before, after)) => {
                out.push_str(before);
                rest = after;
            }
            None => {
                out.push_str(next);
                break;
            }
        }
    }
    Regex::new(&out).is_ok().then_some(out)
}

/// `pattern` as a regular expression, when it is a glob that none can be (`*.pdf`,
/// `*/private/*`: a leading `*` repeats nothing), as wget's `--reject` and shells write
/// URL patterns: the stars at its ends dropped, since a regular expression is found
/// anywhere, its end held by `$` where no star frees it (as HTTrack's filters are read).
/// One with a star inside is left to the user.
fn as_glob(pattern: &str) -> Option<String> {
    let inner = pattern.strip_prefix('*')?.trim_matches('*');
    if inner.contains('*') {
        return None;
    }
    crate::scope::glob_as_rule(pattern)
}

/// Each glob of a list written as wget's `--reject '*.jpg,*.png'` takes it, one a comma,
/// as [`as_glob`] writes it; empty unless every item is one.
fn as_globs(pattern: &str) -> Vec<String> {
    pattern
        .split(',')
        .map(|glob| as_glob(glob.trim()))
        .collect::<Option<Vec<_>>>()
        .filter(|globs| globs.len() > 1)
        .unwrap_or_default()
}

impl RawConfig {
    fn validate(self, p: &mut Problems<'_>, seeds_file: SeedsFile) -> Option<Config> {
        // None is for a service fed over its admin API, and for a crawl of a database
        // that holds its seeds: `pipeline` refuses a crawl with nowhere to start.
        let mut seeds = Vec::new();
        for (i, seed) in self.seeds.iter().flatten().enumerate() {
            if let Some(variable) = seed_environment_reference(seed) {
                p.add(
                    &format!("seeds[{i}]"),
                    format!(
                        "names `{variable}`, which is not expanded here (no environment \
                         variable is in a config): write the URL out, or have the job write \
                         the config from a template (`envsubst < crawl.toml.in > crawl.toml`)"
                    ),
                );
                continue;
            }
            if let Some(why) = crate::surt::seed_problem(seed) {
                p.add(&format!("seeds[{i}]"), why);
                continue;
            }
            match urlnorm::normalize_str(seed) {
                Ok(url) => seeds.push(url),
                Err(e) => p.add(
                    &format!("seeds[{i}]"),
                    format!("{e} ({:?})", urlnorm::hide_password(seed)),
                ),
            }
        }
        let listed_seeds = seeds.len();
        match &self.seeds_file {
            Some(path) if seeds_file == SeedsFile::Read => seeds_from_file(path, &mut seeds, p),
            Some(_) => {}
            None if self.seeds.is_none() => p.add(
                "seeds",
                "is missing: it has no default (`[]` for none), unless `seeds_file` names \
                 a file of seeds",
            ),
            None => {}
        }

        let mut hosts = Vec::new();
        for (i, host) in self.scope.hosts.iter().enumerate() {
            match HostPattern::parse(host) {
                Ok(h) => hosts.push(h),
                Err(e) => p.add(&format!("scope.hosts[{i}]"), e),
            }
        }
        let include = p.scope_rules("scope.include", &self.scope.include);
        let exclude = p.scope_rules("scope.exclude", &self.scope.exclude);
        let url_filter = p.url_filter(&self.scope.url_filter);
        if let Some(max_pages) = self.scope.max_pages {
            p.at_least("scope.max_pages", max_pages, 1);
        }

        if self
            .cluster
            .node_id
            .as_ref()
            .is_some_and(|id| id.trim().is_empty())
        {
            p.add(
                "cluster.node_id",
                "must not be empty: leave it out to have one generated",
            );
        }
        p.at_least("cluster.lease_ttl_ms", self.cluster.lease_ttl_ms, 300);
        p.at_most(
            "cluster.lease_ttl_ms",
            self.cluster.lease_ttl_ms,
            86_400_000,
            "a day: a node's URLs wait that long for it after it stops",
        );

        let f = &self.fetch;
        let headers = request_headers(p, "fetch.headers", &f.headers);
        let mut host_headers = Vec::new();
        let patterns =
            p.host_rule_patterns("fetch.host", f.host.iter().map(|r| r.pattern.as_str()));
        for ((i, rule), pattern) in f.host.iter().enumerate().zip(patterns) {
            let key = format!("fetch.host[{i}]");
            let headers = request_headers(p, &format!("{key}.headers"), &rule.headers);
            if let Some(pattern) = pattern {
                host_headers.push(HostHeaders { pattern, headers });
            }
        }
        p.at_least("fetch.workers", f.workers as u64, 1);
        p.at_most(
            "fetch.workers",
            f.workers as u64,
            MAX_FETCH_WORKERS as u64,
            "each is a task with its own connection, more than a process can open",
        );
        if f.user_agent.trim().is_empty() {
            p.add(
                "fetch.user_agent",
                "must not be empty: servers use it to tell who is crawling",
            );
        } else if let Some(c) = f
            .user_agent
            .chars()
            .find(|&c| c.is_ascii_control() && c != '\t')
        {
            // Else the HTTP client cannot be built, and the crawl stops after starting
            // without naming the key.
            p.add(
                "fetch.user_agent",
                format!("has {c:?}, which an HTTP header cannot carry: no request could be sent"),
            );
        }
        if let Some(proxy) = &f.proxy {
            // The message never repeats the URL: it may hold the proxy's password.
            match Url::parse(proxy) {
                Ok(url) if PROXY_SCHEMES.contains(&url.scheme()) && url.has_host() => {
                    socks5_credentials(&url, p);
                }
                Ok(url) => p.add(
                    "fetch.proxy",
                    format!(
                        "must be an http://, https://, socks5:// or socks5h:// URL with a \
                         host (got {}:)",
                        url.scheme()
                    ),
                ),
                Err(e) => p.add(
                    "fetch.proxy",
                    format!("is not a URL ({e}): write it as http://host:port"),
                ),
            }
        }
        p.at_least("fetch.connect_timeout_ms", f.connect_timeout_ms, 1);
        p.at_least("fetch.timeout_ms", f.timeout_ms, 1);
        p.at_least("fetch.max_body_bytes", f.max_body_bytes as u64, 1024);
        p.at_least("fetch.max_header_bytes", f.max_header_bytes as u64, 1024);
        if f.max_header_bytes > MAX_HEADER_BYTES_LIMIT {
            p.add(
                "fetch.max_header_bytes",
                format!(
                    "must be at most {MAX_HEADER_BYTES_LIMIT} (got {}): HTTP/1 responses cannot have larger heads",
                    f.max_header_bytes
                ),
            );
        }
        p.at_least("fetch.max_headers", f.max_headers as u64, 1);
        p.at_most(
            "fetch.max_headers",
            f.max_headers as u64,
            MAX_HEADERS_LIMIT as u64,
            "a head of at most 409600 bytes cannot hold more, and room for this many is set \
             aside for every response",
        );

        let pol = &self.politeness;
        p.at_least(
            "politeness.per_host_concurrency",
            pol.per_host_concurrency.into(),
            1,
        );
        p.at_least("politeness.robots_ttl_s", pol.robots_ttl_s, 1);
        let mut host_politeness = Vec::new();
        let patterns = p.host_rule_patterns(
            "politeness.host",
            pol.host.iter().map(|h| h.pattern.as_str()),
        );
        for ((i, h), pattern) in pol.host.iter().enumerate().zip(patterns) {
            let key = format!("politeness.host[{i}]");
            if let Some(n) = h.per_host_concurrency {
                p.at_least(&format!("{key}.per_host_concurrency"), n.into(), 1);
            }
            if let Some(ms) = h.delay_ms {
                p.millis(&format!("{key}.delay_ms"), ms);
            }
            if let Some(pattern) = pattern {
                host_politeness.push(HostPolitenessConfig {
                    pattern,
                    per_host_concurrency: h.per_host_concurrency,
                    delay: h.delay_ms.map(Duration::from_millis),
                });
            }
        }

        let retry = &self.retry;
        p.at_least("retry.max_attempts", retry.max_attempts.into(), 1);
        if retry.max_delay_ms < retry.base_delay_ms {
            p.add(
                "retry.max_delay_ms",
                format!(
                    "must not be below retry.base_delay_ms ({})",
                    retry.base_delay_ms
                ),
            );
        }

        p.at_least("frontier.window", self.frontier.window as u64, 1);
        let mut boosts = Vec::new();
        for (i, rule) in self.frontier.boost.iter().enumerate() {
            if let Some(pattern) = p.regex(&format!("frontier.boost[{i}].pattern"), &rule.pattern) {
                boosts.push(Boost {
                    pattern,
                    boost: rule.boost,
                });
            }
        }

        p.at_least("channels.to_fetch", self.channels.to_fetch as u64, 1);
        p.at_least("channels.to_parse", self.channels.to_parse as u64, 1);
        p.at_least("channels.to_store", self.channels.to_store as u64, 1);
        for (key, size) in [
            ("channels.to_fetch", self.channels.to_fetch),
            ("channels.to_parse", self.channels.to_parse),
            ("channels.to_store", self.channels.to_store),
        ] {
            p.at_most(
                key,
                size as u64,
                MAX_CHANNEL as u64,
                "a queue that long bounds no memory",
            );
        }
        p.at_least(
            "channels.max_bytes",
            self.channels.max_bytes as u64,
            MIN_CHANNEL_BYTES as u64,
        );
        p.at_most(
            "channels.max_bytes",
            self.channels.max_bytes as u64,
            MAX_CHANNEL_BYTES as u64,
            "more than any machine's memory bounds none",
        );

        let database = &self.storage.database;
        if database.trim().is_empty() {
            p.add("storage.database", "must name a SQLite file");
        } else if let Some(scheme) = foreign_scheme(database) {
            // Else it is a SQLite path, and the crawl goes into a file under `mysql:/`.
            // Only the scheme is said: the URL may carry a password.
            p.add(
                "storage.database",
                format!(
                    "names a `{scheme}://` database: pipecrawl writes to SQLite (a path, or \
                     sqlite://) or PostgreSQL (postgres://)"
                ),
            );
        } else if crate::store::is_keyword_value(database) {
            p.add("storage.database", crate::store::KEYWORD_VALUE);
        } else if let Some(why) = foreign_path(database) {
            // After the URLs of other databases, which it would say whole, passwords and
            // all. Its directory is made if missing: a literal `~` or `C:\…` beside the
            // crawl.
            p.add("storage.database", why);
        } else if let Some(why) = unreadable_sqlite_url(database) {
            // Else SQLite opens a private, empty database for each connection, and the
            // crawl stops at its first read, saying "no such table: frontier".
            p.add("storage.database", format!("{database:?} {why}"));
        } else if let Some(why) = unreadable_postgres_url(database) {
            // Else the crawl stops at opening it, naming neither the key nor the file.
            p.add(
                "storage.database",
                format!(
                    "is not a PostgreSQL URL pipecrawl can read ({why}): write it as \
                     postgres://user:password@host:5432/dbname"
                ),
            );
        } else if let Some(why) = unusable_postgres_tls(database) {
            p.add("storage.database", why);
        }
        p.at_least("storage.batch_size", self.storage.batch_size as u64, 1);
        p.at_most(
            "storage.batch_size",
            self.storage.batch_size as u64,
            MAX_BATCH as u64,
            "the writer sets aside room for a whole batch before it stores a page",
        );

        let listen = match self.admin.listen.parse::<std::net::SocketAddr>() {
            Ok(addr) => Some(addr),
            Err(_) => {
                p.add(
                    "admin.listen",
                    format!(
                        "{:?} is not an address:port like 127.0.0.1:7878",
                        self.admin.listen
                    ),
                );
                None
            }
        };
        let token = admin_token(&self.admin.token, p);
        let file_token_overridden = token.as_deref().is_some_and(|token| {
            !self.admin.token.trim().is_empty() && token != self.admin.token.trim()
        });

        let r = &self.recrawl;
        let seconds = |s: u64| (s > 0).then(|| Duration::from_secs(s));
        let mut recrawl_rules = Vec::new();
        for (i, rule) in r.rule.iter().enumerate() {
            p.seconds(&format!("recrawl.rule[{i}].interval_s"), rule.interval_s);
            if let Some(pattern) = p.regex(&format!("recrawl.rule[{i}].pattern"), &rule.pattern) {
                recrawl_rules.push(RecrawlRule {
                    pattern,
                    interval: seconds(rule.interval_s),
                });
            }
        }
        for (key, ms) in [
            ("fetch.connect_timeout_ms", f.connect_timeout_ms),
            ("fetch.timeout_ms", f.timeout_ms),
            ("politeness.delay_ms", pol.delay_ms),
            ("politeness.max_crawl_delay_ms", pol.max_crawl_delay_ms),
            ("retry.base_delay_ms", retry.base_delay_ms),
            ("retry.max_delay_ms", retry.max_delay_ms),
            ("shutdown.grace_period_ms", self.shutdown.grace_period_ms),
        ] {
            p.millis(key, ms);
        }
        for (key, s) in [
            ("politeness.robots_ttl_s", pol.robots_ttl_s),
            ("recrawl.interval_s", r.interval_s),
            ("recrawl.min_interval_s", r.min_interval_s),
            ("recrawl.max_interval_s", r.max_interval_s),
        ] {
            p.seconds(key, s);
        }
        if r.adaptive && r.min_interval_s == 0 {
            p.add(
                "recrawl.min_interval_s",
                "must be at least 1 with recrawl.adaptive: an interval halved to 0 never \
                 grows back, and its page is asked again as fast as politeness allows",
            );
        }
        if r.max_interval_s < r.min_interval_s {
            p.add(
                "recrawl.max_interval_s",
                format!(
                    "must not be below recrawl.min_interval_s ({})",
                    r.min_interval_s
                ),
            );
        }

        let mut network_allow = Vec::new();
        for (i, range) in self.network.allow.iter().enumerate() {
            // Spaces around an entry are no part of it, as around a seed.
            let range = range.trim();
            let parsed = range
                .parse::<ipnet::IpNet>()
                .or_else(|_| range.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
            match parsed {
                Ok(net) => network_allow.push(net),
                Err(_) => p.add(&format!("network.allow[{i}]"), not_a_range(range)),
            }
        }

        let t = &self.traps;
        p.at_least("traps.max_url_length", t.max_url_length as u64, 32);
        p.at_most(
            "traps.max_url_length",
            t.max_url_length as u64,
            urlnorm::MAX_URL_BYTES as u64,
            "longer URLs are never kept",
        );
        p.at_least("traps.max_path_depth", t.max_path_depth as u64, 1);
        p.at_least(
            "traps.max_repeated_segment",
            t.max_repeated_segment as u64,
            1,
        );
        p.at_least("traps.max_links_per_page", t.max_links_per_page as u64, 1);
        for (i, name) in t.session_params.iter().enumerate() {
            let star = name.find('*');
            if name.is_empty() || name == "*" || star.is_some_and(|at| at + 1 < name.len()) {
                p.add(
                    &format!("traps.session_params[{i}]"),
                    format!(
                        "{name:?} names no parameter: write a name (\"sid\"), or its start \
                         and a `*` that ends it (\"utm_*\")"
                    ),
                );
            }
        }

        p.at_most(
            "parse.workers",
            self.parse.workers as u64,
            MAX_PARSE_WORKERS as u64,
            "each is a thread, and parsing wants about one per core",
        );
        let parse_workers = match self.parse.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };

        Some(Config {
            seeds,
            listed_seeds,
            seeds_file: self.seeds_file,
            scope: ScopeConfig {
                hosts_given: !hosts.is_empty(),
                hosts,
                include,
                exclude,
                url_filter,
                max_depth: self.scope.max_depth,
                max_pages: self.scope.max_pages,
                sitemaps: self.scope.sitemaps,
            },
            fetch: FetchConfig {
                workers: f.workers,
                // Trimmed: a value written `" mybot/1"` would otherwise name no crawler
                // to robots.txt (its first word empty), and no group for it would apply.
                user_agent: f.user_agent.trim().to_owned(),
                connect_timeout: Duration::from_millis(f.connect_timeout_ms),
                timeout: Duration::from_millis(f.timeout_ms),
                max_body_bytes: f.max_body_bytes,
                min_bytes_per_sec: f.min_bytes_per_sec,
                max_redirects: f.max_redirects,
                max_header_bytes: f.max_header_bytes,
                max_headers: f.max_headers,
                accept_invalid_certs: f.accept_invalid_certs,
                keep_alive: true,
                cookies: f.cookies,
                headers,
                host_headers,
                proxy: f.proxy.as_deref().and_then(|p| Url::parse(p).ok()),
            },
            parse: ParseConfig {
                workers: parse_workers,
            },
            politeness: PolitenessConfig {
                per_host_concurrency: pol.per_host_concurrency,
                per_ip_concurrency: pol.per_ip_concurrency,
                delay: Duration::from_millis(pol.delay_ms),
                hosts: host_politeness,
                max_crawl_delay: Duration::from_millis(pol.max_crawl_delay_ms),
                respect_robots_txt: pol.respect_robots_txt,
                robots_ttl: Duration::from_secs(pol.robots_ttl_s),
                respect_meta_robots: pol.respect_meta_robots,
                follow_nofollow_links: pol.follow_nofollow_links,
            },
            retry: RetryConfig {
                max_attempts: retry.max_attempts,
                base_delay: Duration::from_millis(retry.base_delay_ms),
                max_delay: Duration::from_millis(retry.max_delay_ms),
                earlier_failures: false,
            },
            frontier: FrontierConfig {
                window: self.frontier.window,
                seen_cache: self.frontier.seen_cache,
                boosts,
            },
            channels: ChannelConfig {
                to_fetch: self.channels.to_fetch,
                to_parse: self.channels.to_parse,
                to_store: self.channels.to_store,
                max_bytes: self.channels.max_bytes,
            },
            storage: StorageConfig {
                database: self.storage.database,
                batch_size: self.storage.batch_size,
            },
            shutdown: ShutdownConfig {
                grace_period: Duration::from_millis(self.shutdown.grace_period_ms),
            },
            admin: AdminConfig {
                listen: listen?,
                token,
                file_token_overridden,
            },
            recrawl: RecrawlConfig {
                interval: seconds(r.interval_s),
                rules: recrawl_rules,
                adaptive: r.adaptive,
                min_interval: Duration::from_secs(r.min_interval_s),
                max_interval: Duration::from_secs(r.max_interval_s),
            },
            network_allow,
            cluster: ClusterConfig {
                node_id: self
                    .cluster
                    .node_id
                    .clone()
                    .unwrap_or_else(generated_node_id),
                node_id_given: self.cluster.node_id.is_some(),
                lease_ttl: Duration::from_millis(self.cluster.lease_ttl_ms),
            },
            file: None,
            traps: TrapsConfig {
                max_url_length: self.traps.max_url_length,
                max_path_depth: self.traps.max_path_depth,
                max_repeated_segment: self.traps.max_repeated_segment,
                max_query_params: self.traps.max_query_params,
                session_params: self.traps.session_params.clone(),
                sort_query: self.traps.sort_query,
                max_links_per_page: self.traps.max_links_per_page,
                family_budget: self.traps.family_budget,
                family_depth_span: self.traps.family_depth_span,
                max_pages_per_host: self.traps.max_pages_per_host,
                max_hosts_per_domain: self.traps.max_hosts_per_domain,
            },
        })
    }
}

/// Adds the seeds of the file `seeds_file` names to `seeds`, each line that is none a
/// problem naming the file and the line. A relative path is from the current directory,
/// as `storage.database`'s is.
fn seeds_from_file(path: &str, seeds: &mut Vec<Url>, p: &mut Problems<'_>) {
    const KEY: &str = "seeds_file";
    if let Some(why) = foreign_path(path) {
        p.add(KEY, why);
        return;
    }
    let lines = match crate::seeds_file::read(Path::new(path)) {
        Ok(lines) => lines,
        Err(e) => {
            // Where it was looked for, unless it was found.
            let found = matches!(e, crate::seeds_file::SeedsFileError::Utf16);
            let relative = match std::env::current_dir() {
                Ok(here) if Path::new(path).is_relative() && !found => format!(
                    " (a relative path is read from the current directory, {})",
                    here.display()
                ),
                _ => String::new(),
            };
            p.add(KEY, format!("{path:?} {e}{relative}"));
            return;
        }
    };
    for bad in &lines.bad {
        p.add_in_file(KEY, format!("{path}:{}", bad.number), bad.why.clone());
    }
    if lines.more_bad > 0 {
        p.add_in_file(
            KEY,
            path.to_owned(),
            format!(
                "{} after these {} no seeds either",
                Count(lines.more_bad, "more line"),
                if lines.more_bad == 1 { "is" } else { "are" }
            ),
        );
    }
    seeds.extend(lines.seeds);
}

/// Why `path` names no file where the user meant it to, if it does not: a `~` or an
/// environment variable, which a shell expands and a TOML string does not, or a Windows
/// path (`C:\crawls\a.db`, a `\\wsl$\` share), which Linux takes as a file of that name
/// in the current directory. A Windows path is said with what it is under WSL, where
/// drive C: is `/mnt/c`.
pub(crate) fn foreign_path(path: &str) -> Option<String> {
    if path == "~" || path.starts_with("~/") {
        return Some(format!(
            "{path:?}: `~` is not expanded here; write out the home directory"
        ));
    }
    let url = path.starts_with("sqlite:") || crate::store::is_postgres(path);
    if let Some(variable) = (!url).then(|| environment_reference(path)).flatten() {
        return Some(format!(
            "`{path}`: `{variable}` is not expanded here (no environment variable is): \
             write the path out"
        ));
    }
    let linux = match path.as_bytes() {
        [drive, b':', b'\\' | b'/', ..] if drive.is_ascii_alphabetic() => format!(
            "/mnt/{}/{}",
            char::from(drive.to_ascii_lowercase()),
            path[3..].replace('\\', "/")
        ),
        [b'\\', b'\\', ..] => {
            let mut parts = path[2..].split('\\');
            let server = parts.next().unwrap_or_default().to_ascii_lowercase();
            // `\\wsl$\Ubuntu\home` is how Windows sees this system's `/home`.
            if parts.next().is_none() || !matches!(server.as_str(), "wsl$" | "wsl.localhost") {
                return Some(format!(
                    "`{path}` is a Windows network path, which Linux cannot open: mount the \
                     share, and write the path it is mounted at"
                ));
            }
            format!("/{}", parts.collect::<Vec<_>>().join("/"))
        }
        _ => return None,
    };
    Some(format!(
        "`{path}` is a Windows path, which Linux reads as a file of that name in the \
         current directory: write it as WSL sees it, `{linux}`"
    ))
}

/// The first environment variable `path` refers to, as a `.bat` file (`%USERPROFILE%`) or
/// a shell (`$HOME`, `${HOME}`) writes one.
fn environment_reference(path: &str) -> Option<&str> {
    static REFERENCE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"%[A-Za-z_]\w*%|\$\{[A-Za-z_]\w*\}|\$[A-Za-z_]\w*").expect("a valid pattern")
    });
    REFERENCE.find(path).map(|found| found.as_str())
}

/// The environment variable a seed's scheme or host refers to (`$STAGING_URL`,
/// `https://${HOST}/`), which a shell would have expanded: its path and query are left
/// out, where `$` and `%..%` are a site's own characters, and so is an escape in a host
/// that reads as a `.bat` file's variable (`%E4%` of `%E4%B8%AD.example`).
fn seed_environment_reference(seed: &str) -> Option<&str> {
    let rest = seed.split_once("://").map_or(seed, |(_, rest)| rest);
    let authority_ends = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    // Credentials are the user's own characters (`bot:pa$word@intranet`), and not shown.
    let host_starts = rest[..authority_ends].rfind('@').map_or(0, |at| at + 1);
    let (scheme, host) = (
        &seed[..seed.len() - rest.len()],
        &rest[host_starts..authority_ends],
    );
    let escape = |v: &str| {
        let v = v.as_bytes();
        v.len() == 4 && v[0] == b'%' && v[1..3].iter().all(u8::is_ascii_hexdigit)
    };
    [scheme, host]
        .into_iter()
        .find_map(environment_reference)
        .filter(|variable| !escape(variable))
}

/// The scheme of a `storage.database` written as a URL of a kind no store reads
/// (`mysql://`, a misspelt `postgress://`), which would otherwise be a SQLite path.
fn foreign_scheme(database: &str) -> Option<&str> {
    let (scheme, _) = database.split_once("://")?;
    let is_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    (is_scheme && scheme != "sqlite" && !crate::store::is_postgres(database)).then_some(scheme)
}

/// Why `database`, a `sqlite:` URL, names no file the crawl could write to, if it does
/// not (`sqlite://`, `sqlite:?mode=rwc`, a parameter sqlx does not know).
fn unreadable_sqlite_url(database: &str) -> Option<String> {
    if !database.starts_with("sqlite:") {
        return None;
    }
    match crate::store::sqlite_options(database) {
        Err(e) => Some(format!("is not a SQLite URL pipecrawl can read: {e}")),
        Ok(options) if options.get_filename().as_os_str().is_empty() => Some(
            "names no file: write the path after `sqlite://` (sqlite://crawl.db), or the \
             path alone"
                .to_owned(),
        ),
        Ok(_) => None,
    }
}

/// Why sqlx cannot read `database` as a PostgreSQL URL, if it names one; said without
/// the URL, which may carry a password.
fn unreadable_postgres_url(database: &str) -> Option<String> {
    use std::str::FromStr;
    if !crate::store::is_postgres(database) {
        return None;
    }
    let error = sqlx::postgres::PgConnectOptions::from_str(database).err()?;
    Some(as_said(&error))
}

/// Why the TLS settings of `database`, a PostgreSQL URL sqlx reads, cannot work (a root
/// certificate file that cannot be read, `sslrootcert=system` with a weaker `sslmode`):
/// said before the crawl starts, as a config's problem.
fn unusable_postgres_tls(database: &str) -> Option<String> {
    if !crate::store::is_postgres(database) {
        return None;
    }
    let error = crate::store::pg_tls::connect_options(database).err()?;
    Some(as_said(&error))
}

/// sqlx's message for a URL it cannot use, without its "error with configuration" prefix.
fn as_said(error: &sqlx::Error) -> String {
    error
        .to_string()
        .trim_start_matches("error with configuration: ")
        .to_owned()
}

/// `PIPECRAWL_ADMIN_TOKEN`, else `admin.token`. Trimmed: a token read from a file often
/// ends in a newline, and a header's value cannot carry whitespace at either end, so
/// untrimmed it could never be presented. Nor can a character outside visible ASCII (the
/// API reads the header as text), so such a token, which would answer every request with
/// 401, is refused; as is a variable that is not UTF-8, which would otherwise be skipped
/// for the file's token without a word.
fn admin_token(in_file: &str, p: &mut Problems<'_>) -> Option<String> {
    let from_env = match std::env::var(ADMIN_TOKEN_ENV) {
        Ok(token) => Some(token),
        Err(std::env::VarError::NotPresent) => None,
        Err(std::env::VarError::NotUnicode(_)) => {
            p.add(
                ADMIN_TOKEN_ENV,
                "(an environment variable) is not UTF-8: a token is ASCII letters, digits and \
                 punctuation",
            );
            return None;
        }
    };
    let (key, token) = [
        (ADMIN_TOKEN_ENV, from_env),
        ("admin.token", Some(in_file.to_owned())),
    ]
    .into_iter()
    .filter_map(|(key, token)| Some((key, token?.trim().to_owned())))
    .find(|(_, token)| !token.is_empty())?;
    if let Some(c) = token
        .chars()
        .find(|&c| c != '\t' && !(' '..='~').contains(&c))
    {
        p.add(
            key,
            format!(
                "has {c:?}, which an HTTP header cannot carry as text: no request could \
                 present the token"
            ),
        );
    }
    Some(token)
}

/// The largest response head hyper reads over HTTP/1 (its read buffer, about 400 KiB); a
/// larger `fetch.max_header_bytes` could never take effect.
pub const MAX_HEADER_BYTES_LIMIT: usize = 400 * 1024;

/// The most headers a head within [`MAX_HEADER_BYTES_LIMIT`] can hold, each line at least
/// four bytes (`a:` and its line end). hyper reserves room for `fetch.max_headers` in
/// every response it reads, so a larger value bought nothing and could exhaust memory.
const MAX_HEADERS_LIMIT: usize = MAX_HEADER_BYTES_LIMIT / 4;

/// An environment variable that sets `admin.token` without writing it into a file.
pub const ADMIN_TOKEN_ENV: &str = "PIPECRAWL_ADMIN_TOKEN";

/// Request headers named in the config, each checked: a name the crawler sets itself is
/// refused with the reason, rather than sent twice or in conflict with its own.
fn request_headers(p: &mut Problems<'_>, key: &str, raw: &BTreeMap<String, String>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in raw {
        let key = format!("{key}.{name}");
        let Ok(header) = HeaderName::from_bytes(name.as_bytes()) else {
            p.add(&key, format!("{name:?} is not a header name"));
            continue;
        };
        if let Some(why) = set_by_the_crawler(&header) {
            p.add(&key, format!("cannot be set here: {why}"));
            continue;
        }
        match HeaderValue::from_str(value) {
            Ok(value) => {
                headers.insert(header, value);
            }
            Err(_) => p.add(
                &key,
                "holds a byte a header cannot (a line break or another control character)",
            ),
        }
    }
    headers
}

/// Why a request header is the crawler's own to set, if it is.
fn set_by_the_crawler(name: &HeaderName) -> Option<&'static str> {
    use reqwest::header;
    let framing = [
        header::HOST,
        header::CONTENT_LENGTH,
        header::TRANSFER_ENCODING,
        header::CONNECTION,
        header::TE,
        header::TRAILER,
        header::UPGRADE,
    ];
    if framing.contains(name) || name.as_str() == "keep-alive" {
        Some("the HTTP client sets it for each connection")
    } else if name == header::USER_AGENT {
        Some("use fetch.user_agent (robots.txt rules are matched on it)")
    } else if name == header::ACCEPT_ENCODING {
        Some("the crawler asks for the codings it decodes")
    } else if name == header::IF_NONE_MATCH || name == header::IF_MODIFIED_SINCE {
        Some("the crawler sends them to revalidate the pages it has stored")
    } else if name == header::PROXY_AUTHORIZATION {
        // A request header goes to the site: without a proxy, and through one inside
        // every `https://` tunnel, whose `CONNECT` alone the proxy reads.
        Some(
            "write the proxy's credentials in fetch.proxy's URL \
             (http://user:password@proxy:3128), which gives them to the proxy alone: \
             here they would go to the sites",
        )
    } else {
        None
    }
}

/// The 1-based line where a dotted key path (`fetch.workers`, `scope.include[1]`) is set,
/// or `None` when the key is absent (its default was used).
fn line_of_key(text: &str, key: &str) -> Option<usize> {
    use toml::de::{DeTable, DeValue};

    let root = DeTable::parse(text).ok()?;
    let mut span = root.span();
    let mut value: Option<&DeValue<'_>> = None;
    let mut table = Some(root.get_ref());
    for segment in key.split('.') {
        let (name, index) = path_segment(segment);
        let (k, v) = table?.iter().find(|(k, _)| k.get_ref().as_ref() == name)?;
        span = k.span();
        value = Some(v.get_ref());
        if let (Some(i), DeValue::Array(items)) = (index, v.get_ref()) {
            let item = items.get(i)?;
            span = item.span();
            value = Some(item.get_ref());
        }
        table = match value {
            Some(DeValue::Table(t)) => Some(t),
            _ => None,
        };
    }
    value?;
    Some(text[..span.start].matches('\n').count() + 1)
}

/// The config `root` holds, read with each key serde refuses (unknown, or of the wrong
/// type) set aside, and those keys with serde's words. serde stops at the first: each is
/// taken out and the file read again without it, so that two misspelt keys, or one and a
/// bad value, are said in one run, as the values' own problems are. None when what is
/// left cannot be read (past [`MAX_REFUSED_KEYS`], or a key missing that no list holds).
fn set_aside_refused(
    mut root: toml::Spanned<toml::de::DeTable<'_>>,
) -> (Option<RawConfig>, Vec<(String, toml::de::Error)>) {
    let mut refused = Vec::new();
    let raw = loop {
        let document = toml::de::Deserializer::from(root.clone());
        let (key, error) = match serde_path_to_error::deserialize::<_, RawConfig>(document) {
            Ok(raw) => break Some(raw),
            Err(e) => (e.path().to_string(), e.into_inner()),
        };
        if refused.len() < MAX_REFUSED_KEYS && remove_key(&mut root, &key) {
            refused.push((key, error));
            continue;
        }
        // A key without a default that is missing: one set aside above is said already.
        // A rule of a `[[list]]` cannot be read without it (`patern` for `pattern`): its
        // list is set aside, so the keys after it are read too.
        if let Some(field) = missing_field(error.message()) {
            let field = key_of(&key, field);
            let said = refused.iter().any(|(k, _)| *k == field);
            let list = key.rsplit_once('[').map(|(list, _)| list.to_owned());
            if !said {
                refused.push((key, error));
            }
            if let Some(list) = list.filter(|_| refused.len() < MAX_REFUSED_KEYS) {
                if remove_key(&mut root, &list) {
                    continue;
                }
            }
            break None;
        }
        refused.push((key, error));
        break None;
    };
    (raw, refused)
}

/// A segment of a key's path as serde_path_to_error writes it (`host[0]`): its name and
/// its index in a list, if any.
fn path_segment(segment: &str) -> (&str, Option<usize>) {
    match segment.split_once('[') {
        Some((name, rest)) => (name, rest.trim_end_matches(']').parse().ok()),
        None => (segment, None),
    }
}

/// The key of `field` in `table`, as serde_path_to_error names it (`.`: the top level).
fn key_of(table: &str, field: &str) -> String {
    match table {
        "." => field.to_owned(),
        table => format!("{table}.{field}"),
    }
}

/// The field serde's "missing field" message names.
fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")?
        .split_once('`')
        .map(|(field, _)| field)
}

/// Keys serde refuses said in one run before the rest are left to the next: a file of
/// another tool's keys is not listed whole.
const MAX_REFUSED_KEYS: usize = 20;

/// Takes the key serde_path_to_error names `key` (`fetch.host[0].patern`) out of `root`,
/// so that the file is read again without it; false when the path does not lead to it.
fn remove_key(root: &mut toml::Spanned<toml::de::DeTable<'_>>, key: &str) -> bool {
    use toml::de::{DeTable, DeValue};

    let mut segments: Vec<&str> = key.split('.').collect();
    let Some(last) = segments.pop() else {
        return false;
    };
    let mut table: &mut DeTable<'_> = root.get_mut();
    for segment in segments {
        let (name, index) = path_segment(segment);
        let Some(value) = table.get_mut(name) else {
            return false;
        };
        let value = match (index, value.get_mut()) {
            (Some(i), DeValue::Array(items)) => match items.get_mut(i) {
                Some(item) => item.get_mut(),
                None => return false,
            },
            (None, value) => value,
            (Some(_), _) => return false,
        };
        let DeValue::Table(inner) = value else {
            return false;
        };
        table = inner;
    }
    table.remove(last).is_some()
}

/// Why `range` is no `network.allow` entry. A host name is what an admin opening an
/// intranet to the crawl has at hand (`wiki`, `*.corp.local`), and the guard judges
/// addresses: they are told the two ways to reach such a host. An address WHATWG's
/// parser reads (`10.0.0` as 10.0.0.0) is no host name.
fn not_a_range(range: &str) -> String {
    let name = range.strip_prefix("*.").unwrap_or(range);
    let domain = matches!(url::Host::parse(name), Ok(url::Host::Domain(_)));
    if domain && range != "*" && HostPattern::parse(range).is_ok() {
        return format!(
            "{range:?} is a host name, and network.allow takes addresses: a seed's host may \
             be on any address, so name a seed on it; a host reached only by links or \
             redirects is allowed by the range of its addresses (\"10.0.0.0/8\")"
        );
    }
    format!("{range:?} is not an address range like \"10.0.0.0/8\" or an address")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A percent escape in a host (`%E4%B8%AD.example`, an IDN as some pages write it)
    /// is no `.bat` file's `%NAME%`; a `$` in a path is the site's own.
    #[test]
    fn a_seed_refers_to_a_variable_only_by_its_scheme_or_host() {
        assert_eq!(
            seed_environment_reference("https://%E4%B8%AD.example/"),
            None
        );
        assert_eq!(seed_environment_reference("https://h/a$b/%TEMP%"), None);
        assert_eq!(
            seed_environment_reference("https://%HOST%/"),
            Some("%HOST%")
        );
        assert_eq!(seed_environment_reference("${URL}"), Some("${URL}"));
        assert_eq!(seed_environment_reference("http://bot:pa$word@h/"), None);
        assert_eq!(seed_environment_reference("https://$CDN/"), Some("$CDN"));
        assert_eq!(
            seed_environment_reference("https://$Aé.example/"),
            Some("$Aé")
        );
    }

    #[test]
    fn a_config_of_only_seeds_gets_the_documented_defaults() {
        let config = Config::from_toml(r#"seeds = ["https://example.com/"]"#, "t").unwrap();
        assert_eq!(config.fetch.workers, 64);
        assert_eq!(config.politeness.per_host_concurrency, 2);
        assert_eq!(config.politeness.per_ip_concurrency, 0);
        assert_eq!(config.politeness.delay, Duration::from_millis(500));
        assert_eq!(config.storage.database, "crawl.db");
        assert!(config.scope.hosts.is_empty() && !config.scope.hosts_given);
        assert!(config.parse.workers >= 1);
    }

    #[test]
    fn every_bad_value_is_reported_with_its_key_and_line() {
        let text = "seeds = [\"https://example.com/\"]\n\n[fetch]\nworkers = 0\n\n[scope]\ninclude = [\"ok\", \"(\"]\n";
        let err = Config::from_toml(text, "t.toml").unwrap_err();
        let ConfigError::Invalid { problems, .. } = err else {
            panic!("expected validation problems, got {err}");
        };
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(problems[0].key, "fetch.workers");
        assert_eq!(problems[0].line, Some(4));
        assert_eq!(problems[1].key, "scope.include[1]");
        assert_eq!(problems[1].line, Some(7));
    }

    /// An admin opening an intranet to the crawl writes its host names in `network.allow`
    /// (`wiki`, `*.corp.local`), which takes addresses: told only that a name is not an
    /// address range, they were not told how to let the crawl reach the host.
    #[test]
    fn a_host_name_in_network_allow_is_told_how_to_allow_its_host() {
        let text = "seeds = ['http://wiki/']\n[network]\n\
                    allow = ['wiki', '*.corp.local', '10.0.0.0/33', '10.0.0', ' 10.0.0.1 ']\n";
        let err = Config::from_toml(text, "t.toml").unwrap_err();
        let ConfigError::Invalid { problems, .. } = err else {
            panic!("expected validation problems, got {err}");
        };
        let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
        let named = |name: &str| {
            format!(
                "{name:?} is a host name, and network.allow takes addresses: a seed's host \
                 may be on any address, so name a seed on it; a host reached only by links \
                 or redirects is allowed by the range of its addresses (\"10.0.0.0/8\")"
            )
        };
        assert_eq!(
            messages,
            [
                named("wiki").as_str(),
                named("*.corp.local").as_str(),
                "\"10.0.0.0/33\" is not an address range like \"10.0.0.0/8\" or an address",
                "\"10.0.0\" is not an address range like \"10.0.0.0/8\" or an address",
            ]
        );
    }

    #[test]
    fn hosts_per_domain_default_to_a_thousand_and_zero_is_no_limit() {
        let seeds = "seeds = [\"https://example.com/\"]\n";
        let config = Config::from_toml(seeds, "t.toml").unwrap();
        assert_eq!(config.traps.max_hosts_per_domain, 1_000);
        let text = format!("{seeds}[traps]\nmax_hosts_per_domain = 0\n");
        let config = Config::from_toml(&text, "t.toml").unwrap();
        assert_eq!(config.traps.max_hosts_per_domain, 0);
        let text = format!("{seeds}[traps]\nmax_hosts_per_domain = -1\n");
        let err = Config::from_toml(&text, "t.toml").unwrap_err().to_string();
        assert!(
            err.contains("max_hosts_per_domain") && err.contains("line 3"),
            "{err}"
        );
    }

    /// A shop's robots.txt leaves out `/*?*sort=`, and the rule pasted into `exclude`
    /// compiled: as a regular expression `/*` is any number of slashes and `=*` any
    /// number of `=`, so `/*?*color=*size=` matched no facet URL, with nothing said.
    #[test]
    fn a_robots_txt_pattern_in_a_url_rule_is_refused_with_the_regex_it_means() {
        let text = "seeds = [\"https://example.com/\"]\n[scope]\nexclude = ['/*?*color=*size=']\n";
        let err = Config::from_toml(text, "t.toml").unwrap_err();
        let ConfigError::Invalid { problems, .. } = err else {
            panic!("expected validation problems, got {err}");
        };
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].key, "scope.exclude[0]");
        assert!(
            problems[0]
                .message
                .contains(r"write `'^https?://[^/]+/.*\?.*color=.*size='`"),
            "{problems:?}"
        );
        for fine in [r"/\*", "^https?://[^/]+/c/", "a/*b", r"\?sort="] {
            let text =
                format!("seeds = [\"https://example.com/\"]\n[scope]\nexclude = ['{fine}']\n");
            assert!(Config::from_toml(&text, "t.toml").is_ok(), "{fine}");
        }
    }

    /// A Heritrix user's scope is a SURT prefix (`http://(org,example,)/docs/`): pasted into
    /// `include`, it compiled, matched no URL (a host has no commas) and the crawl fetched
    /// its seeds alone, with nothing said.
    #[test]
    fn a_heritrix_surt_prefix_in_a_url_rule_is_refused_with_the_regex_it_means() {
        for (rule, meant) in [
            (
                "http://(org,example,)/docs/",
                r"^https?://example\.org/docs/",
            ),
            (
                "+http://(org,example,www,)/",
                r"^https?://www\.example\.org/",
            ),
            (
                "http://(org,example,",
                r"^https?://([^/:]+\.)?example\.org[:/]",
            ),
            ("(org,example,:8080)/a", r"^https?://example\.org:8080/a"),
            ("^http://(org,example,)/a.b", r"^https?://example\.org/a\.b"),
        ] {
            let text =
                format!("seeds = [\"https://example.org/\"]\n[scope]\ninclude = ['{rule}']\n");
            let err = Config::from_toml(&text, "t.toml").unwrap_err().to_string();
            assert!(
                err.contains("SURT prefix") && err.contains(&format!("write `'{meant}'`")),
                "{rule}: {err}"
            );
        }
        let text = "seeds = [\"https://example.org/\"]\n[scope]\ninclude = ['/(a|b),c/']\n";
        assert!(Config::from_toml(text, "t.toml").is_ok());
    }

    /// A SURT prefix written as a seed parsed as a URL whose host is `(org,example,)`:
    /// the crawl's one page was a `dns` error, which said nothing of the seed's form.
    #[test]
    fn a_heritrix_surt_prefix_as_a_seed_is_refused_with_the_url_it_means() {
        let text = "seeds = [\"http://(org,example,www,)/docs/\"]\n";
        let err = Config::from_toml(text, "t.toml").unwrap_err().to_string();
        assert!(
            err.contains("SURT prefix") && err.contains("`http://www.example.org/docs/`"),
            "{err}"
        );
    }

    /// `?sort=`, the query's parameter as the URL writes it, is no regular expression: the
    /// error said "repetition operator missing expression", not how to write the `?`.
    #[test]
    fn a_bare_question_mark_is_refused_with_the_rule_escaping_it() {
        for (rule, meant) in [
            ("?sort=", r"\?sort="),
            ("(?i)&sort=|?sort=", r"(?i)&sort=|\?sort="),
        ] {
            let text =
                format!("seeds = [\"https://example.com/\"]\n[scope]\nexclude = ['{rule}']\n");
            let err = Config::from_toml(&text, "t.toml").unwrap_err().to_string();
            assert!(err.contains(&format!("write `'{meant}'`")), "{rule}: {err}");
        }
    }

    #[test]
    fn a_session_param_with_a_star_anywhere_but_its_end_is_refused() {
        for (name, refused) in [("utm_*", false), ("*_id", true), ("*", true), ("", true)] {
            let text = format!(
                "seeds = [\"https://example.com/\"]\n[traps]\nsession_params = [{name:?}]\n"
            );
            let problems = match Config::from_toml(&text, "t.toml") {
                Ok(_) => Vec::new(),
                Err(ConfigError::Invalid { problems, .. }) => problems,
                Err(err) => panic!("expected validation problems, got {err}"),
            };
            assert_eq!(
                problems.len(),
                usize::from(refused),
                "{name:?}: {problems:?}"
            );
            if refused {
                assert_eq!(problems[0].key, "traps.session_params[0]");
                assert!(problems[0].message.contains("\"utm_*\""), "{problems:?}");
            }
        }
    }

    #[test]
    fn values_past_what_the_crawler_can_use_are_refused() {
        let text = "seeds = [\"https://example.com/\"]\n[traps]\nmax_url_length = 10000\n";
        let err = Config::from_toml(text, "t.toml").unwrap_err();
        let ConfigError::Invalid { problems, .. } = err else {
            panic!("expected validation problems, got {err}");
        };
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].key, "traps.max_url_length");
        assert_eq!(problems[0].line, Some(3));
        assert!(problems[0].message.contains("at most 2560"), "{problems:?}");

        let text = "seeds = [\"https://example.com/\"]\n[parse]\nworkers = 100000\n";
        let err = Config::from_toml(text, "t.toml").unwrap_err();
        assert!(
            err.to_string()
                .contains("line 3: `parse.workers` must be at most 256"),
            "{err}"
        );

        let text =
            "seeds = [\"https://example.com/\"]\n[cluster]\nlease_ttl_ms = 100000000000000000\n";
        let err = Config::from_toml(text, "t.toml").unwrap_err();
        assert!(
            err.to_string()
                .contains("line 3: `cluster.lease_ttl_ms` must be at most 86400000"),
            "{err}"
        );
    }

    #[test]
    fn times_past_ten_years_are_refused_naming_each_key() {
        let text = "seeds = [\"https://example.com/\"]\n[politeness]\nrobots_ttl_s = 18446744073709551615\n\n[[politeness.host]]\npattern = \"a.example\"\ndelay_ms = 18446744073709551615\n[recrawl]\ninterval_s = 315360001\nmax_interval_s = 315360000\n";
        let err = Config::from_toml(text, "t.toml").unwrap_err();
        let ConfigError::Invalid { problems, .. } = err else {
            panic!("expected validation problems, got {err}");
        };
        let keys: Vec<(&str, Option<usize>)> =
            problems.iter().map(|p| (p.key.as_str(), p.line)).collect();
        assert_eq!(
            keys,
            [
                ("politeness.robots_ttl_s", Some(3)),
                ("politeness.host[0].delay_ms", Some(7)),
                ("recrawl.interval_s", Some(9)),
            ],
            "{problems:?}"
        );
        assert!(
            problems[0].message.ends_with(
                "at most 315360000 (got 18446744073709551615): ten years; longer is a slip"
            ),
            "{problems:?}"
        );
    }

    /// The lines of `text` from `header` up to the next table header.
    fn section<'a>(text: &'a str, header: &str) -> Option<&'a str> {
        let start = text.find(&format!("\n{header}\n"))? + 1;
        let rest = &text[start + header.len()..];
        let end = rest.find("\n[").map_or(rest.len(), |i| i + 1);
        Some(&rest[..end])
    }

    #[test]
    fn the_example_config_documents_every_key() {
        let example = include_str!("../config/example.toml");
        let documented = |text: &str, key: &str| {
            Regex::new(&format!(r"(?m)^#?\s*{key}\s*="))
                .unwrap()
                .is_match(text)
        };
        let top = accepted_fields("");
        assert!(top.contains(&"fetch".to_owned()), "probe failed: {top:?}");
        for table in top {
            let fields = accepted_fields(&format!("[{table}]"));
            if fields.is_empty() {
                assert!(
                    documented(example, &table),
                    "`{table}` is not in config/example.toml"
                );
                continue;
            }
            let body = section(example, &format!("[{table}]"))
                .unwrap_or_else(|| panic!("config/example.toml has no [{table}] section"));
            for field in fields {
                let nested = format!("[[{table}.{field}]]");
                let nested_fields = accepted_fields(&nested);
                if nested_fields.is_empty() {
                    assert!(
                        documented(body, &field),
                        "`{table}.{field}` is not in config/example.toml"
                    );
                    continue;
                }
                let nested_body = section(example, &nested)
                    .unwrap_or_else(|| panic!("config/example.toml has no {nested} section"));
                for f in nested_fields {
                    assert!(
                        documented(nested_body, &f),
                        "`{table}.{field}.{f}` is not in config/example.toml"
                    );
                }
            }
        }
    }

    /// The example's header says every key it sets is at its default but for a few, whose
    /// comments give the default: a user installs it as a service's config (the systemd
    /// unit's steps) and keeps what it says are the defaults. Each key set otherwise, and
    /// each list of rules (none by default), has "Default" or "Absent" in the comment
    /// above it.
    #[test]
    fn the_example_gives_the_default_of_every_key_it_sets_otherwise() {
        let example = include_str!("../config/example.toml");
        let raw = |text: &str| format!("{:?}", toml::from_str::<RawConfig>(text).unwrap());
        let default = raw("seeds = []");
        let says_default = |comment: &[&str]| {
            comment
                .iter()
                .any(|line| line.contains("Default") || line.contains("Absent"))
        };
        let (mut table, mut comment) = (String::new(), Vec::new());
        let mut unsaid = Vec::new();
        for line in example.lines() {
            if line.starts_with('#') {
                comment.push(line);
                continue;
            }
            if let Some(rules) = line.strip_prefix("[[") {
                if !says_default(&comment) {
                    unsaid.push(format!("[[{rules}"));
                }
                table = String::new();
            } else if let Some(header) = line.strip_prefix('[') {
                table = header.trim_end_matches(']').to_owned();
            } else if let Some((key, _)) = line.split_once(" = ") {
                let alone = format!("seeds = []\n[{table}]\n{line}\n");
                if !table.is_empty() && raw(&alone) != default && !says_default(&comment) {
                    unsaid.push(format!("{table}.{key}"));
                }
            }
            comment.clear();
        }
        assert!(
            unsaid.is_empty(),
            "set otherwise, with no default said: {unsaid:?}"
        );
    }

    /// Only keys a reload cannot apply are named: the same file, or one changing its
    /// scope, names none (a generated `cluster.node_id` differs at every load).
    #[test]
    fn a_reload_names_only_the_changed_keys_a_restart_applies() {
        let load = |extra: &str| {
            Config::from_toml(&format!("seeds = ['https://example.com/']\n{extra}"), "t").unwrap()
        };
        let running = load("[politeness]\ndelay_ms = 100\n");
        assert!(running
            .fixed_until_restart(&load("[politeness]\ndelay_ms = 100\n"))
            .is_empty());
        assert!(running
            .fixed_until_restart(&load(
                "[scope]\nmax_depth = 2\n[politeness]\ndelay_ms = 100\nfollow_nofollow_links = true\n"
            ))
            .is_empty());
        assert_eq!(
            running.fixed_until_restart(&load("[fetch]\nworkers = 8\n[storage]\nbatch_size = 9\n")),
            ["[fetch]", "politeness.delay_ms", "[storage]"]
        );
        assert_eq!(
            load("[cluster]\nnode_id = 'a'\n").fixed_until_restart(&load("")),
            ["cluster.node_id"]
        );
    }

    /// A list of rules written with one pair of brackets, as `[frontier.boost]`, said
    /// only "invalid type: map, expected a sequence": the fix is the second bracket.
    #[test]
    fn a_rule_table_with_single_brackets_says_to_double_them() {
        for table in ["politeness.host", "frontier.boost", "recrawl.rule"] {
            let text = format!("seeds = ['https://example.com/']\n[{table}]\npattern = 'a'\n");
            let message = Config::from_toml(&text, "t.toml").unwrap_err().to_string();
            assert!(message.contains("line 2"), "{message}");
            assert!(
                message.contains(&format!(
                    "write `[[{table}]]`, in double brackets, above each rule"
                )),
                "{message}"
            );
        }
    }

    /// A table written with the double brackets of a list of rules, as `[[scope]]`, was
    /// read as a list whose first table is the table's first key: "`scope[0]` must be a
    /// list", "`fetch[0]` must be a whole number", none of which the file says.
    #[test]
    fn a_table_in_double_brackets_says_to_write_it_in_single_ones() {
        for (table, key) in [
            ("scope", "max_depth = 1"),
            ("fetch", "workers = 2"),
            ("traps", ""),
        ] {
            let text = format!("seeds = ['https://example.com/']\n[[{table}]]\n{key}\n");
            let message = Config::from_toml(&text, "t.toml").unwrap_err().to_string();
            assert!(message.contains("line 2"), "{message}");
            assert!(
                message.contains(&format!(
                    "`{table}` is one table, not a list of rules: write its header in single \
                     brackets, `[{table}]`"
                )),
                "{message}"
            );
            assert!(!message.contains(&format!("`{table}[0]`")), "{message}");
        }
        let text = "seeds = ['https://example.com/']\n[[scope.hosts]]\n";
        let message = Config::from_toml(text, "t.toml").unwrap_err().to_string();
        assert!(
            message.contains("`scope.hosts[0]` must be a string in quotes (got a table)"),
            "a list of another kind is said as it was: {message}"
        );
    }

    /// A `sqlite:` URL that names no file opened a private, empty database for each
    /// connection: the crawl stopped at its first read, "no such table: frontier".
    #[test]
    fn a_sqlite_url_naming_no_file_is_refused() {
        for database in ["sqlite://", "sqlite:", "sqlite://?mode=rwc"] {
            let text =
                format!("seeds = ['https://example.com/']\n[storage]\ndatabase = '{database}'\n");
            let message = Config::from_toml(&text, "t.toml").unwrap_err().to_string();
            assert!(
                message.contains("storage.database") && message.contains("names no file"),
                "{database}: {message}"
            );
        }
        for database in [
            "sqlite://crawl.db",
            "sqlite:///var/crawl.db?mode=rwc",
            "crawl.db",
        ] {
            let text =
                format!("seeds = ['https://example.com/']\n[storage]\ndatabase = '{database}'\n");
            assert!(Config::from_toml(&text, "t.toml").is_ok(), "{database}");
        }
    }

    /// A user agent written with spaces around it is sent and matched against robots.txt
    /// without them: with a leading one, the crawler's name (its first word) was empty,
    /// so robots.txt's group for it never applied.
    #[test]
    fn the_user_agent_is_trimmed_so_robots_txt_knows_the_crawler() {
        let text =
            "seeds = ['https://example.com/']\n[fetch]\nuser_agent = ' mybot/1 (+https://x) '\n";
        let config = Config::from_toml(text, "t.toml").expect("a valid config");
        assert_eq!(config.fetch.user_agent, "mybot/1 (+https://x)");
        assert_eq!(
            crate::robots::product_token(&config.fetch.user_agent),
            "mybot"
        );
    }

    /// The user agent the example and README's politeness table give is the one sent
    /// when the key is left out, which is what a site owner sees in their logs.
    #[test]
    fn the_example_and_readme_give_the_default_user_agent() {
        let example = Config::from_toml(include_str!("../config/example.toml"), "example")
            .expect("the example loads");
        let default = Config::from_toml("seeds = ['https://example.com/']", "t").unwrap();
        assert_eq!(example.fetch.user_agent, default.fetch.user_agent);
        let row = format!("| user agent | `{}` |", default.fetch.user_agent);
        assert!(
            include_str!("../README.md").contains(&row),
            "README lacks {row}"
        );
    }

    /// serde stopped at the first key it refused, so a config with two misspelt keys, or
    /// one and a bad value, took a run for each. A value of the wrong type (`workers`,
    /// read before `workerz`) is one such key.
    #[test]
    fn unknown_keys_and_bad_values_are_said_in_one_run() {
        let text = "seeds = ['https://example.com/']\nmax_depth = 3\n[fetch]\nworkerz = 3\n\
                    timeout_ms = 0\nworkers = 'many'\n[[politeness.host]]\npattern = 'a.com'\n\
                    delya_ms = 5\n";
        let message = Config::from_toml(text, "t.toml").unwrap_err().to_string();
        for said in [
            "5 problem(s)",
            "line 2: `max_depth` is not a key of the top level",
            "`max_depth` is a key of `[scope]`",
            "line 4: `fetch.workerz` is not a key of `[fetch]` (did you mean `workers`?), which takes",
            "line 5: `fetch.timeout_ms` must be at least",
            "line 6: `fetch.workers` must be a whole number",
            "line 9: `politeness.host[0].delya_ms` is not a key of `[[politeness.host]]`",
        ] {
            assert!(message.contains(said), "{said:?} in {message}");
        }
    }

    /// A misspelt key was answered with every key of its table (fourteen in `[fetch]`)
    /// and left the reader to find the one meant; the nearest is named first, when one
    /// is near, and none is made up for a key like no other.
    #[test]
    fn a_misspelt_key_is_answered_with_the_nearest_one() {
        let cases = [
            ("[fetch]\nworkerz = 3", Some("`fetch.workerz` is not a key of `[fetch]` (did you mean `workers`?), which takes")),
            ("[politeness]\ndelay = 100", Some("`politeness.delay` is not a key of `[politeness]` (did you mean `delay_ms`?)")),
            ("seed = 'https://example.com/'", Some("`seed` is not a key of the top level (did you mean `seeds`?)")),
            ("[[politeness.host]]\npattern = 'a.com'\ndelya_ms = 5", Some("(did you mean `delay_ms`?)")),
            ("[fetch]\nquantum_flux = 1", None),
            // Near by their prefixes alone, these mean other keys (`retry.max_attempts`,
            // `respect_robots_txt`): followed, the suggestion would change what was not meant.
            ("[fetch]\nmax_retries = 3", None),
            ("[politeness]\nrobots_txt = false", None),
            // wgetrc's `robots = off` (wget's `-e robots=off`) means `respect_robots_txt`,
            // and drew `robots_ttl_s`, whose start it is: it is named as wget's.
            ("[politeness]\nrobots = false", None),
            ("max_depth = 3", None),
        ];
        // `robots` is answered as wget's setting before any nearest key is looked for.
        assert_eq!(nearest_key("robots", "`robots_ttl_s`, `delay_ms`"), None);
        assert_eq!(
            nearest_key("delay", "`robots_ttl_s`, `delay_ms`"),
            Some("delay_ms")
        );
        for (section, said) in cases {
            let text = format!("seeds = ['https://example.com/']\n{section}\n");
            let message = Config::from_toml(&text, "t.toml").unwrap_err().to_string();
            match said {
                Some(said) => assert!(message.contains(said), "{section}: {message}"),
                None => assert!(!message.contains("did you mean"), "{section}: {message}"),
            }
        }
    }

    /// A `url_filter` line whose rule ends in `/*` is a regular expression that does what
    /// it says (`/*`: any number of slashes), loaded before HTTrack's filters were told
    /// apart, and still is; one whose rule is no regular expression (a star first) is
    /// HTTrack's.
    #[test]
    fn url_filter_rules_ending_in_a_star_that_compile_are_kept() {
        let text = "seeds = ['https://example.com/']\n[scope]\n\
                    url_filter = ['-/wp-admin/*', '+/blog/*', '-.*/feed/*', '+.']\n";
        let config = Config::from_toml(text, "t.toml");
        assert!(config.is_ok(), "{:?}", config.err().map(|e| e.to_string()));
        refusals_say(&[(
            "[scope]\nurl_filter = ['-*/private/*', '+.']",
            "reads as an HTTrack filter: write `'-/private/'`, a regular expression found \
             anywhere in the URL, with the filters in reverse order",
        )]);
    }

    /// Another crawler's setting copied into the config (Scrapy's `DEPTH_LIMIT`, wgetrc's
    /// `level`, Colly's `MaxDepth`) was told only the keys of its table, none of them near
    /// it: the key it is here is named, as README's migration tables map it.
    #[test]
    fn another_crawlers_setting_is_answered_with_the_key_it_is_here() {
        let cases = [
            ("DEPTH_LIMIT = 2", "`DEPTH_LIMIT` is not a key of the top level (Scrapy's `DEPTH_LIMIT` is `scope.max_depth` here, whose 0 (no limit there) is the key left out here), which takes"),
            ("[scope]\nlevel = 3", "(wget's `level` is `scope.max_depth` here)"),
            ("[politeness]\nrobots = false", "(wget's `robots` is `politeness.respect_robots_txt` here, `robots = off` is `respect_robots_txt = false`)"),
            ("download_delay = 0.5", "(Scrapy's `DOWNLOAD_DELAY` is `politeness.delay_ms` here, in milliseconds: 0.5 s is `delay_ms = 500`)"),
            ("[fetch]\nMaxDepth = 2", "(Colly's `MaxDepth` is `scope.max_depth` here, where a seed is depth 0, Colly's start URL 1: `MaxDepth = 2` is `max_depth = 1`)"),
            ("maxRetries = 3", "(Heritrix's `maxRetries` is `retry.max_attempts` here, which counts the first try too: `maxRetries = 2` is `max_attempts = 3`)"),
            ("IgnoreRobotsTxt = false", "its inverse: `IgnoreRobotsTxt = true` is `respect_robots_txt = false`"),
        ];
        refusals_say(&cases);
    }

    /// wget's `--header 'X-A: b'` lines, copied as a list of strings, were told only that
    /// a table was wanted: the table they make is shown.
    #[test]
    fn wgets_header_lines_given_as_a_list_are_shown_as_the_table_they_make() {
        let text = "seeds = ['https://example.com/']\n[fetch]\n\
                    headers = ['X-A: b', \"From: me@example.com\"]\n";
        let message = Config::from_toml(text, "t.toml").unwrap_err().to_string();
        let said = "(got a list: write `headers = { X-A = \"b\", From = \"me@example.com\" }`)";
        assert!(message.contains(said), "{message}");
    }

    /// The table shown for wget's header lines held their values, an `Authorization`
    /// line's token too, into the terminal and the journal; and a name given twice made a
    /// table TOML refuses.
    #[test]
    fn header_lines_shown_as_a_table_keep_credentials_out_and_names_once() {
        let text = "seeds = ['https://example.com/']\n[fetch]\n\
                    headers = ['Authorization: Bearer SECRET123', 'X-Api-Token: SECRET456', 'X-A: b']\n";
        let message = Config::from_toml(text, "t.toml").unwrap_err().to_string();
        let said = r#"write `headers = { Authorization = "…", X-Api-Token = "…", X-A = "b" }`"#;
        assert!(message.contains(said), "{message}");
        assert!(!message.contains("SECRET"), "{message}");
        let twice =
            "seeds = ['https://example.com/']\n[fetch]\nheaders = ['Accept: a', 'Accept: b']\n";
        let message = Config::from_toml(twice, "t.toml").unwrap_err().to_string();
        assert!(!message.contains("write `headers ="), "{message}");
    }

    /// A misspelt key was shown with its line, value and all: a proxy's or a database's
    /// password with it.
    #[test]
    fn a_refused_keys_password_is_not_shown() {
        for text in [
            "seeds = ['https://example.com/']\n[fetch]\nproxxy = 'http://u:PROXYSECRET@p:3128'\n",
            // Said in a list, a value of the wrong type is quoted.
            "seeds = ['https://example.com/']\n[fetch]\nproxxy = 'http://u:PROXYSECRET@p:3128'\n\
             workers = 'http://u:PROXYSECRET@x'\n",
        ] {
            let message = Config::from_toml(text, "t.toml").unwrap_err().to_string();
            assert!(!message.contains("PROXYSECRET"), "{message}");
            assert!(message.contains("proxxy"), "{message}");
        }
    }

    /// A rule's key misspelt (`patern`) left the rule without its `pattern`, and the
    /// keys after it were left to the next run.
    #[test]
    fn a_rule_missing_its_pattern_does_not_hide_the_keys_after_it() {
        let text = "seeds = ['https://example.com/']\n[[politeness.host]]\npatern = 'a.com'\n\
                    [[frontier.boost]]\nboost = 3\n[fetch]\ntimeout_ms = 0\n";
        let message = Config::from_toml(text, "t.toml").unwrap_err().to_string();
        for said in [
            "4 problem(s)",
            "`politeness.host[0].patern` is not a key of `[[politeness.host]]`",
            "`politeness.host[0].pattern` is missing",
            "`frontier.boost[0].pattern` is missing",
            "line 7: `fetch.timeout_ms` must be at least",
        ] {
            assert!(message.contains(said), "{said:?} in {message}");
        }
    }

    #[test]
    fn an_unknown_key_is_named_with_its_line() {
        let text = "seeds = [\"https://example.com/\"]\n[fetch]\nworkerz = 3\n";
        let message = Config::from_toml(text, "t.toml").unwrap_err().to_string();
        assert!(message.contains("workerz"), "{message}");
        assert!(message.contains("line 3"), "{message}");
    }

    /// `[[fetch.host]]` (c20eb99) is a list of rules like the others, and written with
    /// one pair of brackets got serde's words alone, without the hint they get.
    #[test]
    fn a_fetch_host_rule_with_single_brackets_says_to_double_them() {
        let text = "seeds = ['https://example.com/']\n[fetch.host]\npattern = 'a'\n";
        let message = Config::from_toml(text, "t.toml").unwrap_err().to_string();
        assert!(
            message.contains("write `[[fetch.host]]`, in double brackets, above each rule"),
            "{message}"
        );
    }

    /// `Proxy-Authorization` among the headers went to the sites themselves: to every
    /// one without a proxy, and through one, inside each `https://` tunnel (the proxy
    /// reads only the `CONNECT`). It is refused, pointing at `fetch.proxy`'s URL.
    #[test]
    fn proxy_credentials_as_a_request_header_are_refused() {
        let text = "seeds = ['https://example.com/']\n\
                    [fetch.headers]\nProxy-Authorization = 'Basic cDpx'\n\
                    [[fetch.host]]\npattern = 'example.com'\n\
                    headers = { proxy-authorization = 'Basic cDpx' }\n";
        let message = Config::from_toml(text, "t.toml").unwrap_err().to_string();
        for key in [
            "`fetch.headers.Proxy-Authorization` cannot be set here",
            "`fetch.host[0].headers.proxy-authorization` cannot be set here",
        ] {
            assert!(message.contains(key), "{key:?} in {message}");
        }
        assert!(message.contains("in fetch.proxy's URL"), "{message}");
    }

    /// A value of the wrong type, or past what its type holds, got serde's words alone:
    /// `expected u32`, `expected struct RawScope`, `expected usize`, which name Rust's types
    /// rather than the key and what it takes (and in an inline table or a list spread over
    /// lines, the line shown need not hold the key).
    #[test]
    fn a_value_of_the_wrong_type_names_its_key_and_what_it_takes() {
        let cases = [
            ("[politeness]\ndelay_ms = '500'", "`politeness.delay_ms` must be a whole number, 0 or more (got the string \"500\")"),
            ("[scope]\nmax_depth = -1", "`scope.max_depth` must be a whole number from 0 to 4294967295 (got -1"),
            ("[fetch]\nmax_body_bytes = -1", "`fetch.max_body_bytes` must be a whole number, 1024 or more (got -1"),
            ("[fetch]\nworkers = '4'", "`fetch.workers` must be a whole number, 1 or more (got the string \"4\")"),
            ("[retry]\nmax_attempts = '3'", "`retry.max_attempts` must be a whole number from 1 to 4294967295 (got the string \"3\")"),
            ("scope = 3", "`scope` must be a table, `[scope]` (got 3)"),
            ("[fetch]\ncookies = 'yes'", "`fetch.cookies` must be true or false (got the string \"yes\")"),
            ("[scope]\nhosts = 'example.com'", "`scope.hosts` must be a list, `[…]` (got the string \"example.com\")"),
            ("[politeness]\ndelay_ms = 2024-01-01", "`politeness.delay_ms` must be a whole number, 0 or more (got the date 2024-01-01)"),
            ("[scope]\nhosts = 1979-05-27T07:32:00Z", "`scope.hosts` must be a list, `[…]` (got the date 1979-05-27T07:32:00Z)"),
            ("[fetch]\ntimeout_ms = 10:30:00", "`fetch.timeout_ms` must be a whole number, 1 or more (got the time 10:30:00)"),
            ("[[frontier.boost]]\npattern = '/a/'\nboost = 1.5", "`frontier.boost[0].boost` must be a whole number (got 1.5)"),
            ("[fetch]\nheaders = { From = 7 }", "`fetch.headers.From` must be a string in quotes (got 7)"),
            ("[politeness]\ndelay = 100", "`politeness.delay` is not a key of `[politeness]` (did you mean `delay_ms`?), which takes `per_host_concurrency`"),
            ("[[recrawl.rule]]\npattern = '/a/'", "`recrawl.rule[0].interval_s` is missing"),
        ];
        for (section, said) in cases {
            let text = format!("seeds = ['https://example.com/']\n{section}\n");
            let message = Config::from_toml(&text, "t.toml").unwrap_err().to_string();
            assert!(message.contains(said), "{section}: {message}");
            assert!(message.contains("line "), "{section}: {message}");
            for rust in ["u32", "u64", "usize", "i64", "struct", "Raw", "field"] {
                assert!(!message.contains(rust), "{section}: {message}");
            }
        }
    }

    /// Nutch writes "no limit" as -1 (`http.content.limit`, `db.max.outlinks.per.page`):
    /// the error sent the user to config/example.toml for how each key says it, which for
    /// some keys says nothing, as they have no such value.
    #[test]
    fn minus_one_for_no_limit_is_told_how_its_key_says_it() {
        let cases = [
            (
                "[scope]\nmax_depth = -1",
                "(got -1: leave the key out for no limit)",
            ),
            (
                "[scope]\nmax_pages = -1",
                "(got -1: leave the key out for no limit)",
            ),
            (
                "[traps]\nmax_pages_per_host = -1",
                "(got -1: 0 is no limit)",
            ),
            (
                "[politeness]\nper_ip_concurrency = -1",
                "(got -1: 0 is no limit)",
            ),
            (
                "[fetch]\nmax_body_bytes = -1",
                "(got -1: the key has no value for no limit; write the most you mean, \
                 as config/example.toml shows it)",
            ),
            (
                "[traps]\nmax_links_per_page = -1",
                "(got -1: the key has no value for no limit; write the most you mean",
            ),
        ];
        refusals_say(&cases);
        for other in ["[fetch]\nworkers = -1", "[fetch]\nmax_redirects = -1"] {
            let text = format!("seeds = ['https://example.com/']\n{other}\n");
            let said = Config::from_toml(&text, "t.toml").unwrap_err().to_string();
            assert!(
                said.contains("(got -1: no key takes -1: a limit with none says so by 0"),
                "{said}"
            );
        }
        // The keys told that 0 is no limit take 0.
        for (table, key) in [
            ("politeness", "per_ip_concurrency"),
            ("fetch", "min_bytes_per_sec"),
            ("traps", "family_depth_span"),
            ("traps", "family_budget"),
            ("traps", "max_pages_per_host"),
            ("traps", "max_hosts_per_domain"),
        ] {
            let text = format!("seeds = ['https://example.com/']\n[{table}]\n{key} = 0\n");
            assert!(Config::from_toml(&text, "t.toml").is_ok(), "{text}");
        }
    }

    /// wget writes "no limit" as `inf` (`--level=inf`, `--quota=inf`), others as
    /// "unlimited": told only "got the string "inf"", the user had no way on.
    #[test]
    fn a_word_for_no_limit_is_told_how_its_key_says_it() {
        let cases = [
            (
                "[scope]\nmax_depth = 'inf'",
                "(got the string \"inf\": leave the key out for no limit)",
            ),
            (
                "[scope]\nmax_depth = inf",
                "(got inf: leave the key out for no limit)",
            ),
            (
                "[scope]\nmax_pages = \"Unlimited\"",
                "(got the string \"Unlimited\": leave the key out for no limit)",
            ),
            (
                "[traps]\nmax_pages_per_host = 'none'",
                "(got the string \"none\": 0 is no limit)",
            ),
            (
                "[fetch]\nmax_body_bytes = 'infinite'",
                "(got the string \"infinite\": the key has no value for no limit",
            ),
        ];
        refusals_say(&cases);
        let text = "seeds = ['https://example.com/']\n[fetch]\nworkers = 'inf'\n";
        let said = Config::from_toml(text, "t.toml").unwrap_err().to_string();
        assert!(said.contains("(got the string \"inf\")"), "{said}");
    }

    /// Each config of a seed and `section` is refused, saying `said`.
    fn refusals_say(cases: &[(&str, &str)]) {
        for (section, said) in cases {
            let text = format!("seeds = ['https://example.com/']\n{section}\n");
            let message = Config::from_toml(&text, "t.toml").unwrap_err().to_string();
            assert!(message.contains(said), "{section}: {message}");
        }
    }

    /// Scrapy writes its times in seconds (`DOWNLOAD_DELAY = 0.5`, `DOWNLOAD_TIMEOUT = 180`),
    /// and so do wget's `--wait=0.5` and Colly's `Delay`: a fraction given a key that
    /// counts milliseconds was said to be no whole number, and not what it stands for.
    #[test]
    fn a_fraction_of_a_second_given_in_milliseconds_is_shown_as_milliseconds() {
        let cases = [
            (
                "[politeness]\ndelay_ms = 0.5",
                "(got 0.5: it counts milliseconds; 0.5 seconds is `delay_ms = 500`)",
            ),
            (
                "[fetch]\ntimeout_ms = 2.25",
                "(got 2.25: it counts milliseconds; 2.25 seconds is `timeout_ms = 2250`)",
            ),
            (
                "[[politeness.host]]\npattern = 'a.test'\ndelay_ms = 0.1",
                "(got 0.1: it counts milliseconds; 0.1 seconds is `delay_ms = 100`)",
            ),
            (
                "[[frontier.boost]]\npattern = '/a/'\nboost = 1.5",
                "must be a whole number (got 1.5)",
            ),
            ("[politeness]\ndelay_ms = 0.0001", "(got 0.0001)"),
            ("[politeness]\ndelay_ms = 250.5", "(got 250.5)"),
        ];
        refusals_say(&cases);
    }

    /// Colly's times are Go's `time.Duration`s, which Go configs write as strings ("1s",
    /// "500ms", "1h30m"): given a key counting milliseconds or seconds, one was said to be
    /// no whole number, and not what it stands for.
    #[test]
    fn a_go_duration_is_shown_in_the_keys_unit() {
        let cases = [
            (
                "[politeness]\ndelay_ms = '1s'",
                "(got the string \"1s\": it counts milliseconds; \"1s\" is `delay_ms = 1000`)",
            ),
            (
                "[fetch]\nconnect_timeout_ms = \"1m30s\"",
                "\"1m30s\" is `connect_timeout_ms = 90000`)",
            ),
            (
                "[recrawl]\ninterval_s = '24h'",
                "(got the string \"24h\": it counts seconds; \"24h\" is `interval_s = 86400`)",
            ),
            (
                "[politeness]\ndelay_ms = '1 second'",
                "(got the string \"1 second\")",
            ),
            (
                "[recrawl]\ninterval_s = '10ms'",
                "(got the string \"10ms\")",
            ),
        ];
        refusals_say(&cases);
    }

    /// Colly's `MaxBodySize = 0` and `SetRequestTimeout(0)`, and Scrapy's
    /// `CLOSESPIDER_PAGECOUNT = 0`, are no limit: given these keys, 0 was refused as "must
    /// be at least …" alone, which led to writing the least allowed, where the most was
    /// meant. It says how the key says no limit, or that it has no value for it.
    #[test]
    fn a_zero_meant_as_no_limit_is_refused_saying_how_the_key_says_it() {
        refusals_say(&[
            (
                "[fetch]\nmax_body_bytes = 0",
                "must be at least 1024 (got 0: the key has no value for no limit; write the \
                 most you mean, as config/example.toml shows it)",
            ),
            (
                "[fetch]\ntimeout_ms = 0",
                "must be at least 1 (got 0: the key has no value for no limit",
            ),
            (
                "[scope]\nmax_pages = 0",
                "must be at least 1 (got 0: leave the key out for no limit)",
            ),
            ("[fetch]\nworkers = 0", "must be at least 1 (got 0)"),
        ]);
    }
}
