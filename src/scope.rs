//! Which discovered URLs become frontier rows, and at what priority.
//!
//! Scope is decided in the parse pool, where CPU is spent anyway, so the single writer only
//! inserts rows. Links out of scope are still stored as `links` rows; they are just never
//! fetched.

use std::collections::HashSet;
use std::sync::{Arc, PoisonError, RwLock};

use url::Url;

use crate::config::{Boost, Config, UrlFilterRule};
use crate::page::{CrawlJob, Discovered, JobKind};
use crate::traps::Traps;
use crate::urlnorm;

/// A host the crawl may enter: `example.com`, or `*.example.com` for it and its subdomains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    host: String,
    subdomains: bool,
}

impl HostPattern {
    /// `example.com`, `*.example.com`, or `*` for every host (a broad crawl, which the
    /// address guard keeps on the public internet).
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let p = pattern.trim().to_ascii_lowercase();
        if p == "*" {
            return Ok(Self {
                host: String::new(),
                subdomains: true,
            });
        }
        let (host, subdomains) = match p.strip_prefix("*.") {
            Some(rest) => (rest, true),
            None => (p.as_str(), false),
        };
        // Spelled as stored URLs spell hosts (punycode, dotted-decimal IPv4, IPv6 in
        // brackets, no trailing dot), or no URL would ever match `bücher.de` or `::1`.
        let host = match host.parse::<std::net::Ipv6Addr>() {
            Ok(ip) => url::Host::<String>::Ipv6(ip).to_string(),
            Err(_) => url::Host::parse(host)
                .map(|h| h.to_string().trim_end_matches('.').to_owned())
                .unwrap_or_default(),
        };
        let valid = !host.is_empty()
            && host.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '[' | ']' | ':')
            });
        if !valid {
            // `localhost:8080` and `https://example.com/` are the usual slips: say what
            // to write for them. An IPv6 address's own colons are inside its brackets
            // (`[::1]:8080`).
            let port = p.rsplit_once(':').filter(|(name, port)| {
                let address = name.starts_with('[') && name.ends_with(']');
                (address || !name.contains(':'))
                    && !port.is_empty()
                    && port.bytes().all(|b| b.is_ascii_digit())
            });
            let hint = match port {
                Some((name, _)) => {
                    format!("a host is matched by its name, on every port: write `{name}`")
                }
                None if p.contains('/') => {
                    "write the host alone, without a scheme or a path: `example.com`".to_owned()
                }
                // Colly's `DomainGlob` (`*example.com`, `*httpbin.*`) and spider-rs's
                // `with_tld` put a star anywhere; here it is a first label alone.
                None if p.contains('*') => match p.trim_start_matches('*') {
                    rest if !rest.is_empty() && !rest.contains('*') && !rest.starts_with('.') => {
                        format!("write `*.{rest}` for {rest} and its subdomains")
                    }
                    _ => "a `*` stands for subdomains alone, as `*.example.com`: write each \
                          other name in full, `example.org` beside `example.com`"
                        .to_owned(),
                },
                None => "write `example.com` or `*.example.com`".to_owned(),
            };
            return Err(format!("{pattern:?} is not a host name ({hint})"));
        }
        // No URL's host has an empty label, so such an entry would match nothing and
        // leave the crawl on its seeds without a word: `.example.com` is how cookies and
        // `no_proxy` say "and its subdomains", `example..com` a slip.
        if host.split('.').any(str::is_empty) {
            let hint = match host.trim_start_matches('.') {
                rest if rest.len() < host.len() && !rest.split('.').any(str::is_empty) => {
                    format!("write `*.{rest}` for {rest} and its subdomains")
                }
                _ => "a name has no empty label between its dots".to_owned(),
            };
            return Err(format!("{pattern:?} is not a host name ({hint})"));
        }
        Ok(Self { host, subdomains })
    }

    /// The pattern matching exactly the host of `url`.
    pub fn of_url(url: &Url) -> Option<Self> {
        url.host_str().map(|h| Self {
            host: h.to_owned(),
            subdomains: false,
        })
    }

    /// The host this names alone, if it is no wildcard.
    pub fn exact_host(&self) -> Option<&str> {
        (!self.subdomains).then_some(self.host.as_str())
    }

    /// Whether every host `other` matches, this matches too: a rule with `other` after
    /// one with this, where the first matching rule wins, never applies.
    pub fn covers(&self, other: &Self) -> bool {
        self.matches(&other.host) && (self.subdomains || !other.subdomains)
    }

    pub fn matches(&self, host: &str) -> bool {
        (self.subdomains && self.host.is_empty())
            || host == self.host
            || (self.subdomains
                && host.len() > self.host.len()
                && host.ends_with(&self.host)
                && host.as_bytes()[host.len() - self.host.len() - 1] == b'.')
    }
}

/// The hosts in scope. Exact names are looked up, not compared one by one: a crawl
/// seeded with tens of thousands of sites checks each link against all of them.
#[derive(Debug, Clone, Default)]
struct Hosts {
    exact: Names,
    /// `*.example.com` and `*`.
    wider: Vec<HostPattern>,
}

impl Hosts {
    fn insert(&mut self, pattern: HostPattern) {
        if !pattern.subdomains {
            self.exact.insert(pattern.host);
        } else if !self.wider.contains(&pattern) {
            self.wider.push(pattern);
        }
    }

    fn matches(&self, host: &str) -> bool {
        self.exact.contains(host) || self.wider.iter().any(|h| h.matches(host))
    }
}

/// Host names, in shared sets each more than twice the size of the next (merged as a
/// binary counter carries). The scope is copied to be widened, for every batch holding
/// a seed's redirect to a new host: as one set, each copy copied every host, so 10,000
/// seeds moving to `www.` took 125 s where 10,000 pages took 18. A copy now shares all
/// but the small sets a new name merges, and a name costs a look-up per set, of which
/// `n` names widened one by one make at most about log₂ `n`.
#[derive(Debug, Clone, Default)]
struct Names {
    /// Largest first.
    sets: Vec<Arc<HashSet<String>>>,
}

impl Names {
    fn insert(&mut self, name: String) {
        if self.contains(&name) {
            return;
        }
        let mut merged = HashSet::from([name]);
        while let Some(last) = self.sets.pop_if(|last| last.len() <= 2 * merged.len()) {
            merged.extend(last.iter().cloned());
        }
        self.sets.push(Arc::new(merged));
    }

    fn contains(&self, name: &str) -> bool {
        self.sets.iter().any(|set| set.contains(name))
    }

    fn iter(&self) -> impl Iterator<Item = &str> {
        self.sets
            .iter()
            .flat_map(|set| set.iter().map(String::as_str))
    }
}

impl FromIterator<HostPattern> for Hosts {
    fn from_iter<I: IntoIterator<Item = HostPattern>>(patterns: I) -> Self {
        let mut exact = HashSet::new();
        let mut hosts = Self::default();
        for pattern in patterns {
            if pattern.subdomains {
                hosts.insert(pattern);
            } else {
                exact.insert(pattern.host);
            }
        }
        // One set, not a name at a time: a config of 100,000 seeds is 100,000 names.
        if !exact.is_empty() {
            hosts.exact.sets.push(Arc::new(exact));
        }
        hosts
    }
}

/// Why an `include` or `exclude` rule (or a boost's or a recrawl rule's pattern, which
/// match as they do) can never match: it is anchored (`^`, `\A`) to what
/// follows the scheme (`^/docs/` as path-based tools write it, `^www\.`), and every URL
/// starts with `http`. Such a rule would crawl only the seeds, or keep nothing out, with
/// nothing said. Read from the pattern's text, so only the plain forms are caught: one
/// whose first letter may be skipped (`^/*http`), or with a `|` outside any group (another
/// branch may match), is let be.
pub fn never_matches_a_url(pattern: &str) -> Option<String> {
    let mut rest = pattern;
    // Inline flags first: `(?i)`, `(?m-x)`.
    while let Some((flags, after)) = rest
        .strip_prefix("(?")
        .and_then(|group| group.split_once(')'))
    {
        if !flags.chars().all(|c| c.is_ascii_alphabetic() || c == '-') {
            break;
        }
        rest = after;
    }
    let flags = &pattern[..pattern.len() - rest.len()];
    let anchored = rest
        .strip_prefix('^')
        .or_else(|| rest.strip_prefix("\\A"))?;
    let mut chars = anchored.chars();
    let first = chars.next()?;
    let literal = first.is_ascii_alphanumeric() || first == '/';
    if !literal
        || first.eq_ignore_ascii_case(&'h')
        || matches!(chars.next(), Some('?' | '*' | '{'))
        || has_top_level_alternation(pattern)
    {
        return None;
    }
    let host = if first == '/' { "[^/]+" } else { "" };
    Some(format!(
        "can never match: a rule matches the full URL, which starts with its scheme \
         (write `{flags}^https?://{host}{anchored}`)"
    ))
}

/// Why a rule over full URLs reads as a robots.txt pattern (`/*?*sort=`, as a shop's
/// robots.txt leaves its sorted listings out), where `*` is any text: as a regular
/// expression, its leading `/*` is any number of slashes and each later `*` repeats the
/// character before it, so `/*?*color=*size=` matches no facet URL, with nothing said.
/// Only a rule starting with `/*` is taken for one, which no regular expression means
/// (found anywhere in the URL, any number of slashes there is none); the regular
/// expression it stands for is given: its pieces literal, each `*` as `.*`, anchored at
/// the path as robots.txt reads it.
pub fn robots_txt_pattern(pattern: &str) -> Option<String> {
    if !pattern.starts_with("/*") {
        return None;
    }
    let (body, end) = match pattern.strip_suffix('$') {
        Some(body) => (body, "$"),
        None => (pattern, ""),
    };
    let pieces: Vec<String> = body.split('*').map(regex::escape).collect();
    Some(format!(
        "reads as a robots.txt pattern, whose `*` is any text, where a regular expression's \
         repeats what comes before it (write `'^https?://[^/]+{}{end}'`)",
        pieces.join(".*")
    ))
}

/// What the HTTrack filter `line` (a sign and a glob: `+*.example.com/*`, `-*/private/*`,
/// `+www.example.com/*`) is in `key` (`include`, `exclude`, or `url_filter` for a line
/// kept whole): copied as written, one was refused in the regex crate's words, read as a
/// Nutch line offering its glob as the rule, or, in `url_filter`, hinted without the sign
/// it needs there. HTTrack's last filter that matches decides, where `url_filter`'s first
/// rule does. None for a line that is no such filter.
pub fn httrack_filter(line: &str, key: &str) -> Option<String> {
    let sign = line.get(..1).filter(|sign| matches!(*sign, "+" | "-"))?;
    let rule = glob_as_rule(&line[1..])?;
    let order = "HTTrack's last filter that matches decides, and here the first rule does";
    Some(match key {
        "url_filter" => format!(
            "{line:?} reads as an HTTrack filter: write `'{sign}{rule}'`, a regular \
             expression found anywhere in the URL, with the filters in reverse order: {order}"
        ),
        _ => {
            let key = if sign == "+" { "include" } else { "exclude" };
            format!(
                "{line:?} reads as an HTTrack filter: write `'{rule}'` in `scope.{key}`, a \
                 regular expression found anywhere in the URL (an exclude wins over every \
                 include), or the filters, signs and all, in reverse order in \
                 `scope.url_filter`: {order}"
            )
        }
    })
}

/// `glob` (HTTrack's, whose `*` is any text, `/` too) as a regular expression found
/// anywhere in a URL: the stars at its ends dropped, its end held by `$` where no star
/// frees it, and its start by the scheme where it names a host, as HTTrack matches a glob
/// against the URL from its host on (`www.example.com/*` is no match for another site's
/// `?ref=www.example.com/`); a path (`/blog/*`) is found anywhere. None unless it is
/// plainly a glob: a star first or after a `/`, which no regular expression for a URL
/// writes, and no character only a regular expression has (`.*` among them).
pub(crate) fn glob_as_rule(glob: &str) -> Option<String> {
    let starred = glob.starts_with('*') || glob.contains("/*");
    let regex_only = glob.contains(['\\', '^', '$', '(', ')', '[', ']', '{', '}', '|']);
    if !starred || regex_only || glob.contains(".*") {
        return None;
    }
    let inner = glob.trim_start_matches('*');
    let start = if glob.starts_with(['*', '/']) {
        ""
    } else {
        "^https?://"
    };
    let (inner, end) = match inner.trim_end_matches('*') {
        trimmed if trimmed.len() < inner.len() => (trimmed, ""),
        whole => (whole, "$"),
    };
    let pieces: Vec<String> = inner.split('*').map(regex::escape).collect();
    (!inner.is_empty()).then(|| format!("{start}{}{end}", pieces.join(".*")))
}

/// Why a `scope.include` or `scope.exclude` rule reads as a line of Nutch's
/// `regex-urlfilter.txt` copied with its sign (`+` keeps, `-` drops), and where it goes.
/// A `+` line is no regular expression; a `-` line is one for a literal `-`, so that
/// `-^(?:ftp|mailto):` never matches and `-(?i)\.gif$` only a `-.gif`: the crawl would
/// fetch what the line was to leave out. Only a `-` before an anchor or inline flags,
/// which no rule for a `-` has, is taken for a sign (`-print\.html$` may mean its `-`,
/// and `-(?:print|amp)\.html$`, a group after it, too).
pub fn nutch_filter_line(pattern: &str) -> Option<String> {
    let (key, rule) = match pattern.strip_prefix('+') {
        Some(rule) => ("include", rule),
        None => {
            let rule = pattern.strip_prefix('-')?;
            let signed = ["^", "\\A"].iter().any(|p| rule.starts_with(p)) || sets_flags(rule);
            (signed.then_some("exclude")?, rule)
        }
    };
    (!rule.is_empty() && regex::Regex::new(rule).is_ok()).then(|| {
        format!(
            "{pattern:?} reads as a line of Nutch's regex-urlfilter.txt, its sign and all: \
             write `'{rule}'` in `scope.{key}` (a URL matching any `scope.exclude` is left \
             out, whatever `scope.include` says, not kept or dropped by the first rule \
             that matches), or the file's lines in order, signs and all, in \
             `scope.url_filter`, where the first that matches decides"
        )
    })
}

/// Whether `pattern` starts with inline flags (`(?i)`, `(?i:…)`, `(?-u)`), not with a
/// group that sets none (`(?:…)`, `(?P<name>…)`).
fn sets_flags(pattern: &str) -> bool {
    let Some(rest) = pattern.strip_prefix("(?") else {
        return false;
    };
    let flags = rest.len() - rest.trim_start_matches(|c| "imsxuUR-".contains(c)).len();
    flags > 0 && matches!(rest[flags..].chars().next(), Some(')' | ':'))
}

/// Whether `pattern` has a `|` outside any group and character class.
fn has_top_level_alternation(pattern: &str) -> bool {
    let mut chars = pattern.chars().peekable();
    let (mut groups, mut classes) = (0_usize, 0_usize);
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '[' => {
                classes += 1;
                // `[]a]` and `[^]a]` hold a `]`.
                chars.next_if_eq(&'^');
                chars.next_if_eq(&']');
            }
            ']' if classes > 0 => classes -= 1,
            _ if classes > 0 => {}
            '(' => groups += 1,
            ')' => groups = groups.saturating_sub(1),
            '|' if groups == 0 => return true,
            _ => {}
        }
    }
    false
}

/// `include`, `exclude` and `url_filter` for a scope's hashes: without `url_filter`, as
/// builds before it hashed the two others, so that a crawl going on under a config
/// that sets none sees no change of scope (which would look again at every link).
struct UrlRules(Vec<String>, Vec<String>, Vec<String>);

impl std::fmt::Debug for UrlRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.2.is_empty() {
            (&self.0, &self.1).fmt(f)
        } else {
            (&self.0, &self.1, &self.2).fmt(f)
        }
    }
}

/// Whether a link's `rel` attribute asks crawlers not to follow it.
pub fn rel_is_nofollow(rel: &str) -> bool {
    rel_names(rel, "nofollow")
}

/// Whether a `rel` attribute or parameter (`next alternate`) names the relation `word`:
/// relations are space-separated and compared ignoring ASCII case.
pub fn rel_names(rel: &str, word: &str) -> bool {
    rel.split_ascii_whitespace()
        .any(|r| r.eq_ignore_ascii_case(word))
}

/// A URL as the rules over it (`include`, `exclude`, boosts, recrawl rules) read it: as
/// stored, or as people write it (`/wiki/Café` for the stored `/wiki/Caf%C3%A9`), either
/// matching. A rule copied from a browser's address bar would else never match a page
/// whose URL has a letter beyond ASCII.
///
/// The read spellings are made only when a rule misses the stored one: every link found
/// passes here, and most crawls have no rules or URLs they match as stored. Those are
/// the URL all read, and half read ([`urlnorm::as_half_read`]): a rule may write its host
/// as the crawler prints it and its path as it reads, or the other way round.
pub(crate) struct Spellings<'a> {
    url: &'a Url,
    read: std::cell::OnceCell<Vec<String>>,
}

impl<'a> Spellings<'a> {
    pub(crate) fn of(url: &'a Url) -> Self {
        Self {
            url,
            read: std::cell::OnceCell::new(),
        }
    }

    pub(crate) fn matched_by(&self, re: &regex::Regex) -> bool {
        re.is_match(self.url.as_str())
            || self
                .read
                .get_or_init(|| {
                    let mut read: Vec<String> = urlnorm::as_read(self.url).into_iter().collect();
                    read.extend(urlnorm::as_half_read(self.url));
                    read
                })
                .iter()
                .any(|s| re.is_match(s))
    }
}

/// The crawl's boundaries and priority rules, shared read-only by the parse threads.
#[derive(Debug, Clone)]
pub struct Scope {
    hosts: Hosts,
    /// The config names the hosts; seeds do not widen them.
    hosts_given: bool,
    include: Vec<regex::Regex>,
    exclude: Vec<regex::Regex>,
    url_filter: Vec<UrlFilterRule>,
    max_depth: Option<u32>,
    boosts: Vec<Boost>,
    /// Follow `rel="nofollow"` links.
    follow_nofollow_links: bool,
    /// Honour `<meta name="robots">` and `X-Robots-Tag` ([`Scope::obeys`]).
    respect_meta_robots: bool,
    pub traps: Traps,
    /// Pages the database may hold (`scope.max_pages`).
    pub max_pages: Option<u64>,
    /// Crawl what the hosts' sitemaps list.
    pub sitemaps: bool,
}

/// The scope the parse threads read, replaceable while they run (seeds added over the
/// API widen it; SIGHUP reloads it).
#[derive(Clone)]
pub struct SharedScope {
    current: Arc<RwLock<Arc<Scope>>>,
    changes: Arc<tokio::sync::Mutex<()>>,
}

impl SharedScope {
    pub fn new(scope: Scope) -> Self {
        Self {
            current: Arc::new(RwLock::new(Arc::new(scope))),
            changes: Arc::default(),
        }
    }

    pub fn get(&self) -> Arc<Scope> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn set(&self, scope: Scope) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(scope);
    }

    /// Held by whoever changes the scope, from reading what it builds on (the scope, or
    /// the seeds stored) until its scope is set and what it builds on stored: a SIGHUP
    /// reload reads the stored seeds and redirects under it, so a seed added over the
    /// API, or a seed's redirect the writer stores, is among them or builds on the
    /// reload's scope, never dropped by it. Held briefly: a reload queues its seeds
    /// (a seeds file of a million) before it takes it.
    pub async fn changing(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.changes.lock().await
    }
}

impl Scope {
    /// The config's scope. When it names no hosts, the hosts of `seeds` are in scope:
    /// the config's seeds and those added earlier over the API, which the database keeps.
    pub fn new(config: &Config, seeds: &[Url]) -> Self {
        let hosts = if config.scope.hosts_given {
            config.scope.hosts.iter().cloned().collect()
        } else {
            config
                .seeds
                .iter()
                .chain(seeds)
                .filter_map(HostPattern::of_url)
                .collect()
        };
        Self {
            hosts,
            hosts_given: config.scope.hosts_given,
            include: config.scope.include.clone(),
            exclude: config.scope.exclude.clone(),
            url_filter: config.scope.url_filter.clone(),
            max_depth: config.scope.max_depth,
            boosts: config.frontier.boosts.clone(),
            follow_nofollow_links: config.politeness.follow_nofollow_links,
            respect_meta_robots: config.politeness.respect_meta_robots,
            traps: Traps::new(&config.traps),
            max_pages: config.scope.max_pages,
            sitemaps: config.scope.sitemaps,
        }
    }

    /// Puts the hosts of more seeds in scope (those stored, or added while running), when
    /// the config names none.
    pub fn with_seeds(&self, seeds: &[Url]) -> Self {
        let mut scope = self.clone();
        if !self.hosts_given {
            for pattern in seeds.iter().filter_map(HostPattern::of_url) {
                scope.hosts.insert(pattern);
            }
        }
        scope
    }

    /// Whether a seed's redirect to `url` is followed. Sites move (`http://example.com/`
    /// to `https://www.example.com/`), so the host a seed lands on is in scope as the
    /// seed's is, unless the config names the hosts. Where a seed lands is the page the
    /// user named, moved: like the seed, it is crawled whatever `include` and `exclude`
    /// say (as [`Scope::keeps`] keeps it), or a section crawl (`include = ['/docs/']`)
    /// seeded with a home page that moved (`/` to `/en/`) would crawl nothing.
    pub fn admits_seed_redirect(&self, url: &Url) -> bool {
        !self.hosts_given || self.host_in_scope(url)
    }

    /// Whether `url`, a seed or where one moved (or a page another node found there),
    /// brings its host into the scope: a host not in it yet, when the config names none.
    pub fn widened_by_seed(&self, url: &Url) -> bool {
        !self.hosts_given && !self.host_in_scope(url)
    }

    /// A seed's frontier row: depth 0, trusted, never a trap; without the user name and
    /// password its URL may write, which the client keeps for its origin
    /// ([`crate::host_headers::HostRules::learn_credentials`]): its priority is that of
    /// the URL stored, which `[[frontier.boost]]` patterns are written for.
    pub fn seed(&self, url: &Url) -> Discovered {
        let mut url = url.clone();
        urlnorm::drop_userinfo(&mut url);
        Discovered {
            host: urlnorm::host_key(&url),
            depth: 0,
            priority: self.priority(&url, 0),
            url,
            redirect_hops: 0,
            kind: JobKind::Page,
            trap: None,
            disallowed: false,
        }
    }

    /// Whether a page's robots directive (its `noindex` or `nofollow`) binds the crawl: a
    /// row records what the page declared either way, and the crawl obeys it only with
    /// `politeness.respect_meta_robots`.
    pub fn obeys(&self, directive: bool) -> bool {
        directive && self.respect_meta_robots
    }

    /// Whether a link with this `rel` is followed: a `nofollow` one only with
    /// `politeness.follow_nofollow_links`.
    pub fn follows(&self, rel: Option<&str>) -> bool {
        self.follow_nofollow_links || !rel.is_some_and(rel_is_nofollow)
    }

    /// Whether a URL found at `depth` should be crawled.
    pub fn admits(&self, url: &Url, depth: u32) -> bool {
        self.host_in_scope(url) && self.rules_admit(url, depth)
    }

    /// `max_depth`, `include`, `exclude` and `url_filter`.
    fn rules_admit(&self, url: &Url, depth: u32) -> bool {
        if self.max_depth.is_some_and(|max| depth > max) {
            return false;
        }
        let url = Spellings::of(url);
        (self.include.is_empty() || self.include.iter().any(|re| url.matched_by(re)))
            && !self.exclude.iter().any(|re| url.matched_by(re))
            && (self.url_filter.is_empty()
                || self
                    .url_filter
                    .iter()
                    .find(|rule| url.matched_by(&rule.pattern))
                    .is_some_and(|rule| rule.keep))
    }

    /// Whether a sitemap file at `url`, which the robots.txt of `named_by`'s host names,
    /// is read: when either host is in scope. A site may keep its sitemaps on another
    /// host (a CDN, a bucket, `www.` for the bare domain): the protocol's "cross
    /// submission", where the robots.txt of an in-scope host vouches for them, and search
    /// engines read them. Only the file is read there; the pages it lists are scoped as
    /// any. `include` and `exclude` are written for pages, and hold for the pages a
    /// sitemap lists; a sitemap's own URL seldom matches an `include` (`/blog/` does not
    /// name `/sitemap.xml`) and may match an `exclude` of archives (`\.gz$`), which
    /// would silently leave `scope.sitemaps` reading nothing.
    pub fn admits_sitemap(&self, url: &Url, named_by: &Url) -> bool {
        self.host_in_scope(url) || self.host_in_scope(named_by)
    }

    /// Whether a queued job is still to be fetched: the scope may have been narrowed (a
    /// resumed crawl's config, a reload) since its URL was admitted, or since its page
    /// was stored, for a revisit. Seeds are kept. Its host is asked about only when the
    /// config names the hosts: else they come from seeds and their redirects, which
    /// nodes sharing a database learn of at different times.
    pub fn keeps(&self, job: &CrawlJob) -> bool {
        self.keeps_queued(&job.url, job.depth, job.kind)
    }

    /// Whether a URL queued at `depth` is to be fetched, as [`Scope::keeps`] asks of a
    /// job; also asked of the rows an earlier, narrower scope left out, when it widens.
    pub fn keeps_queued(&self, url: &Url, depth: u32, kind: JobKind) -> bool {
        match kind {
            JobKind::Page if depth == 0 => true,
            // Off, `scope.sitemaps` reads none: not one queued while it was on, for a
            // revisit or asked again after a failure. On, one is read on whatever host it
            // was found (see [`Scope::admits_sitemap`]): what it lists is scoped.
            JobKind::Sitemap => self.sitemaps,
            JobKind::Page => {
                (!self.hosts_given || self.host_in_scope(url)) && self.rules_admit(url, depth)
            }
        }
    }

    /// A frontier row for a URL found at `depth`, admitted already: marked as a trap when
    /// it looks like one.
    pub fn candidate(
        &self,
        url: &Url,
        depth: u32,
        redirect_hops: u32,
        kind: JobKind,
    ) -> Discovered {
        Discovered {
            trap: self.traps.check(url).err(),
            disallowed: false,
            host: urlnorm::host_key(url),
            priority: self.priority(url, depth),
            url: url.clone(),
            depth,
            redirect_hops,
            kind,
        }
    }

    /// A hash of what decides which found URLs are crawled: the hosts, `include`,
    /// `exclude`, `url_filter`, `max_depth`, the robots rules for links and `sitemaps` (sitemaps left
    /// out while it was off are read once it is on). A run that finds another
    /// than the last run's looks again at what that one left out.
    pub fn fingerprint(&self) -> i64 {
        let (exact, wider) = self.host_names();
        crate::store::fingerprint(&(
            (self.hosts_given, exact, wider),
            self.url_rules(),
            (
                self.max_depth,
                self.follow_nofollow_links,
                self.respect_meta_robots,
            ),
            self.sitemaps,
        ))
    }

    /// A hash of what decides which queued URLs [`Scope::keeps`]: the hosts when the
    /// config names them, `include`, `exclude`, `url_filter`, `max_depth` and `sitemaps`. Nodes
    /// sharing PostgreSQL lease one another's URLs and fail as out of scope those their
    /// own scope does not keep, so nodes whose hashes differ would each cut part of the
    /// others' crawl. Seeds' hosts are left out: nodes learn of seeds at different times.
    pub fn keeps_fingerprint(&self) -> i64 {
        let hosts = self.hosts_given.then(|| self.host_names());
        crate::store::fingerprint(&(hosts, self.url_rules(), self.max_depth, self.sitemaps))
    }

    /// The hosts in scope and the domains whose subdomains are, each sorted.
    fn host_names(&self) -> (Vec<&str>, Vec<String>) {
        let mut exact: Vec<&str> = self.hosts.exact.iter().collect();
        exact.sort_unstable();
        let mut wider: Vec<String> = self
            .hosts
            .wider
            .iter()
            .map(|p| format!("*.{}", p.host))
            .collect();
        wider.sort_unstable();
        (exact, wider)
    }

    /// `include`, `exclude` and `url_filter`, as written.
    fn url_rules(&self) -> UrlRules {
        let rules = |res: &[regex::Regex]| -> Vec<String> {
            res.iter().map(|re| re.as_str().to_owned()).collect()
        };
        let filter = self
            .url_filter
            .iter()
            .map(|rule| format!("{}{}", if rule.keep { '+' } else { '-' }, rule.pattern))
            .collect();
        UrlRules(rules(&self.include), rules(&self.exclude), filter)
    }

    /// A hash of the boost rules, which set the priority every URL is queued at: a run
    /// (or a reload) with other rules than the last sets the known URLs' priorities again.
    pub fn boost_fingerprint(&self) -> i64 {
        let rules: Vec<(&str, i64)> = self
            .boosts
            .iter()
            .map(|b| (b.pattern.as_str(), b.boost))
            .collect();
        crate::store::fingerprint(&rules)
    }

    /// The seeds on hosts `scope.hosts` leaves out, with their places in `seeds`. Each is
    /// fetched, and only its links to the hosts named are followed: seldom what was meant
    /// (`example.com` named, `https://www.example.com/` seeded), as the crawl stops at the
    /// seed without a word.
    pub fn seeds_left_out<'a>(&self, seeds: &'a [Url]) -> Vec<(usize, &'a Url)> {
        if !self.hosts_given {
            return Vec::new();
        }
        seeds
            .iter()
            .enumerate()
            .filter(|(_, seed)| !self.host_in_scope(seed))
            .collect()
    }

    /// Whether the host of `url` is one the crawl may enter, whatever the URL.
    pub fn host_in_scope(&self, url: &Url) -> bool {
        url.host_str().is_some_and(|host| self.hosts.matches(host))
    }

    /// Higher goes first. Depth counts down so the crawl is breadth-first; matching boost
    /// rules add up, so a boosted URL overtakes shallower ones by its boost. Sums stop
    /// at the ends of `i64`: a rule may say `i64::MAX` for "always first", and wrapping
    /// would put such a URL last.
    pub fn priority(&self, url: &Url, depth: u32) -> i64 {
        let url = Spellings::of(url);
        self.boosts
            .iter()
            .filter(|b| url.matched_by(&b.pattern))
            .fold(0_i64, |sum, b| sum.saturating_add(b.boost))
            .saturating_sub(i64::from(depth))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A port or a whole URL where a host goes was refused with the hint for names only.
    #[test]
    fn a_host_entry_with_a_port_or_a_scheme_is_refused_saying_what_to_write() {
        let said = |p: &str| HostPattern::parse(p).err().unwrap_or_default();
        assert!(
            said("localhost:8080").contains("on every port: write `localhost`"),
            "{}",
            said("localhost:8080")
        );
        assert!(said("*.example.com:443").contains("write `*.example.com`"));
        assert!(
            said("[::1]:8080").contains("on every port: write `[::1]`"),
            "{}",
            said("[::1]:8080")
        );
        assert!(said("https://example.com/").contains("without a scheme or a path"));
        assert!(
            HostPattern::parse("::1").is_ok(),
            "an IPv6 address is no port"
        );
    }

    #[test]
    fn wildcard_hosts_match_subdomains_but_not_lookalikes() {
        let p = HostPattern::parse("*.Example.com").unwrap();
        assert!(p.matches("example.com"));
        assert!(p.matches("www.example.com"));
        assert!(!p.matches("badexample.com"));
        assert!(HostPattern::parse("*").unwrap().matches("anything.test"));
        let exact = HostPattern::parse("example.com").unwrap();
        assert!(!exact.matches("www.example.com"));
        assert!(HostPattern::parse("exa mple.com").is_err());
        for empty_label in [".example.com", "*..example.com", "example..com", "..x"] {
            assert!(HostPattern::parse(empty_label).is_err(), "{empty_label}");
        }
    }

    #[test]
    fn rules_anchored_past_the_scheme_are_told_apart() {
        for never in [
            "^/docs/",
            "\\A/docs",
            "(?i)^www\\.",
            "(?i)(?m)^example",
            "^/(a|b)/",
        ] {
            assert!(never_matches_a_url(never).is_some(), "{never}");
        }
        let hint = never_matches_a_url("(?i)^/docs/").unwrap_or_default();
        assert!(hint.contains("`(?i)^https?://[^/]+/docs/`"), "{hint}");
        for may in [
            "^https?://",
            "^HTTP",
            "/docs/",
            "^/*http",
            "^w?http",
            "^/x|http",
            "^[/]x",
            "^/[|]x|http",
            "(?x)^ /docs",
            "",
            "^",
        ] {
            assert_eq!(never_matches_a_url(may), None, "{may}");
        }
        assert!(has_top_level_alternation("a|b"));
        assert!(!has_top_level_alternation("(a|b)[|]\\|[]|]"));
    }

    /// URLs are stored with hosts in punycode and without a trailing dot; a host
    /// written as people write it must match them.
    #[test]
    fn hosts_are_matched_as_urls_spell_them() {
        let idn = HostPattern::parse("Bücher.de.").unwrap();
        assert!(idn.matches("xn--bcher-kva.de"));
        let subdomains = HostPattern::parse("*.bücher.de").unwrap();
        assert!(subdomains.matches("www.xn--bcher-kva.de"));
        assert!(HostPattern::parse("0x7f.1").unwrap().matches("127.0.0.1"));
    }

    /// An IPv6 address is written bare almost everywhere (`ip addr`, `network.allow`);
    /// as a host it was refused as "not a host name", with a hint for names only.
    #[test]
    fn an_ipv6_address_is_a_host_with_or_without_brackets() {
        for written in ["::1", "[::1]", "0:0::1", "[0:0::1]"] {
            let pattern = HostPattern::parse(written).unwrap_or_else(|e| panic!("{e}"));
            assert!(pattern.matches("[::1]"), "{written}");
        }
        let mapped = HostPattern::parse("::FFFF:127.0.0.1").unwrap();
        assert!(mapped.matches("[::ffff:7f00:1]"));
    }

    #[test]
    fn without_configured_hosts_the_seeds_hosts_are_in_scope() {
        let config = Config::from_toml(r#"seeds = ["http://a.test/"]"#, "t").unwrap();
        let u = |s: &str| Url::parse(s).unwrap();
        let scope = Scope::new(&config, &[u("http://b.test/start")]);
        assert!(scope.admits(&u("http://a.test/x"), 1));
        assert!(scope.admits(&u("http://b.test/x"), 1));
        assert!(!scope.admits(&u("http://c.test/x"), 1));
        assert!(scope
            .with_seeds(&[u("http://c.test/")])
            .admits(&u("http://c.test/x"), 1));

        let config = Config::from_toml(
            "seeds = [\"http://a.test/\"]\n[scope]\nhosts = [\"a.test\"]",
            "t",
        )
        .unwrap();
        let scope = Scope::new(&config, &[]).with_seeds(&[u("http://c.test/")]);
        assert!(
            !scope.admits(&u("http://c.test/x"), 1),
            "configured hosts are not widened"
        );
    }

    /// The scope is copied to be widened for each batch holding a seed's redirect to a
    /// new host; each copy copied every host, so a crawl of many seeds moving to `www.`
    /// took time in the square of their number (10,000 seeds: 125 s; 10,000 pages: 18).
    #[test]
    fn a_scope_widened_by_seed_redirects_shares_the_hosts_it_held() {
        let u = |s: &str| Url::parse(s).unwrap();
        let seeds: Vec<Url> = (0..10_000)
            .map(|i| u(&format!("http://s{i}.test/")))
            .collect();
        let config = Config::from_toml("seeds = []", "t").unwrap();
        let mut scope = Scope::new(&config, &seeds);
        let seeds_hosts = Arc::clone(&scope.hosts.exact.sets[0]);
        for i in 0..1_000 {
            let moved = u(&format!("http://www.s{i}.test/"));
            assert!(scope.admits_seed_redirect(&moved));
            scope = scope.with_seeds(&[moved]);
        }
        assert!(
            Arc::ptr_eq(&seeds_hosts, &scope.hosts.exact.sets[0]),
            "the seeds' hosts were copied"
        );
        assert!(scope.hosts.exact.sets.len() <= 11, "one set per name added");
        for in_scope in [
            "http://s9999.test/x",
            "http://www.s0.test/x",
            "http://www.s999.test/",
        ] {
            assert!(scope.admits(&u(in_scope), 1), "{in_scope}");
        }
        assert!(!scope.admits(&u("http://www.s1000.test/"), 1));
        assert_eq!(scope.hosts.exact.iter().count(), 11_000);
    }

    /// A crawl's stored scope hash is what its next run compares with: a config that
    /// sets no `url_filter` hashes as builds before the key did, or every crawl going on
    /// after an upgrade would look again at all its links.
    #[test]
    fn rules_without_a_url_filter_hash_as_before_it() {
        let (include, exclude) = (vec!["/docs/".to_owned()], vec!["\\.pdf$".to_owned()]);
        let before = format!("{:?}", (include.clone(), exclude.clone()));
        assert_eq!(
            format!("{:?}", UrlRules(include, exclude, Vec::new())),
            before
        );
    }

    #[test]
    fn scope_applies_depth_hosts_include_and_exclude() {
        let config = Config::from_toml(
            r#"
            seeds = ["http://a.test/"]
            [scope]
            include = ["/docs/"]
            exclude = ["\\.pdf$"]
            max_depth = 2
            [[frontier.boost]]
            pattern = "/docs/important"
            boost = 5
            "#,
            "t",
        )
        .unwrap();
        let scope = Scope::new(&config, &[]);
        let u = |s: &str| Url::parse(s).unwrap();
        assert!(scope.admits(&u("http://a.test/docs/x"), 2));
        assert!(!scope.admits(&u("http://a.test/docs/x"), 3));
        assert!(!scope.admits(&u("http://b.test/docs/x"), 1));
        assert!(!scope.admits(&u("http://a.test/blog/x"), 1));
        assert!(!scope.admits(&u("http://a.test/docs/x.pdf"), 1));
        assert_eq!(scope.priority(&u("http://a.test/docs/x"), 2), -2);
        assert_eq!(scope.priority(&u("http://a.test/docs/important"), 2), 3);

        let config = Config::from_toml(
            "seeds = ['http://a.test/']\n[scope]\nexclude = ['/über']\n\
             [[frontier.boost]]\npattern = '/café'\nboost = 5\n",
            "t",
        )
        .unwrap();
        let scope = Scope::new(&config, &[]);
        assert!(!scope.admits(&u("http://a.test/über/x"), 1));
        assert!(scope.admits(&u("http://a.test/uber/x"), 1));
        assert_eq!(scope.priority(&u("http://a.test/café"), 1), 4);
    }

    /// A rule may write a letter beyond ASCII as it reads, in the host too: a browser's
    /// address bar shows `bücher.test`, which is stored as `xn--bcher-kva.test`, and an
    /// `include` copied from it matched no URL, so nothing past the seeds was crawled.
    /// It may also write the host as the crawler prints it and the path as it reads, or
    /// the other way round (`query pages` shows `xn--bcher-kva.test`, a user adds
    /// `/café/` by hand): matched against the URL all stored or all read, such a rule
    /// matched no URL.
    #[test]
    fn a_rule_may_write_an_international_host_as_it_reads() {
        let config = Config::from_toml(
            "seeds = ['https://bücher.test/']\n[scope]\ninclude = ['^https://bücher\\.test/shop/', \
             '^https://xn--bcher-kva\\.test/café/', '^https://bücher\\.test/%C3%BCber/']\n",
            "t",
        )
        .unwrap();
        let scope = Scope::new(&config, &[]);
        let u = |s: &str| urlnorm::normalize_str(s).unwrap();
        assert!(scope.admits(&u("https://Bücher.test/shop/1"), 1));
        assert!(scope.admits(&u("https://xn--bcher-kva.test/shop/Caf%C3%A9"), 1));
        assert!(!scope.admits(&u("https://bücher.test/blog/1"), 1));
        assert!(scope.admits(&u("https://bücher.test/café/1"), 1));
        assert!(scope.admits(&u("https://bücher.test/über/2"), 1));
    }

    /// A queued URL meets the scope again when it is leased; its host only when the
    /// config names the hosts, as the seeds' hosts differ from node to node for a while.
    #[test]
    fn a_queued_url_is_kept_by_the_rules_and_by_named_hosts_only() {
        let job = |url: &str, depth: u32| CrawlJob {
            id: 1,
            url: Url::parse(url).unwrap(),
            host: "h".into(),
            depth,
            priority: 0,
            redirect_hops: 0,
            attempts: 0,
            kind: JobKind::Page,
            previous: None,
        };
        let config = Config::from_toml(
            "seeds = ['http://a.test/']\n[scope]\nexclude = ['/x$']\nmax_depth = 2\n",
            "t",
        )
        .unwrap();
        let scope = Scope::new(&config, &[]);
        assert!(scope.keeps(&job("http://other.test/y", 1)));
        assert!(!scope.keeps(&job("http://a.test/x", 1)));
        assert!(!scope.keeps(&job("http://a.test/y", 3)));
        assert!(scope.keeps(&job("http://a.test/x", 0)), "a seed");
        let revisit = CrawlJob {
            previous: Some(Box::default()),
            ..job("http://a.test/x", 1)
        };
        assert!(!scope.keeps(&revisit), "a revisit of a page excluded since");
        let config = Config::from_toml(
            "seeds = ['http://a.test/']\n[scope]\nhosts = ['a.test']\n",
            "t",
        )
        .unwrap();
        assert!(!Scope::new(&config, &[]).keeps(&job("http://other.test/y", 1)));
    }

    /// Boosts as large as a rule can say ("always first", "always last") keep their
    /// order when rules add up or meet the depth, rather than wrapping around to the
    /// other end of the queue.
    #[test]
    fn the_largest_boosts_add_up_without_wrapping_around() {
        let config = Config::from_toml(
            r#"
            seeds = ["http://a.test/"]
            [[frontier.boost]]
            pattern = "/first"
            boost = 9223372036854775807
            [[frontier.boost]]
            pattern = "/first/too"
            boost = 9223372036854775807
            [[frontier.boost]]
            pattern = "/last"
            boost = -9223372036854775808
            "#,
            "t",
        )
        .unwrap();
        let scope = Scope::new(&config, &[]);
        let u = |s: &str| Url::parse(s).unwrap();
        let plain = scope.priority(&u("http://a.test/x"), 1);
        assert!(scope.priority(&u("http://a.test/first/too"), 1) > plain);
        assert!(scope.priority(&u("http://a.test/first"), 1) > plain);
        assert!(scope.priority(&u("http://a.test/last"), 1) < plain);
    }
}
