//! Crawler traps: URL spaces that never end (calendars, ever-deeper relative links,
//! session ids minted per request) caught before they are fetched.
//!
//! A trapped URL is not fetched; it gets a page row with `error_kind = 'trap'` and the
//! reason, so a user sees what was cut and why. Every limit is in `[traps]`.

use std::collections::{HashMap, HashSet};

use url::Url;
use xxhash_rust::xxh3::xxh3_64;

use crate::config::TrapsConfig;
use crate::urlnorm;

/// The `[traps]` keys that cut URLs, each named in the `error` of the trap rows it made
/// (`… traps.max_path_depth = 32 …`), by which `query stats` counts them. The first four
/// are [`SHAPE_RULES`], whose values [`Traps::shape_fingerprint`] hashes: a shape rule
/// goes among them, and into the hash.
pub const RULES: [&str; 8] = [
    "max_url_length",
    "max_path_depth",
    "max_repeated_segment",
    "max_query_params",
    "family_budget",
    "family_depth_span",
    "max_pages_per_host",
    "max_hosts_per_domain",
];

/// The keys of [`RULES`] that [`Traps::check`] holds a URL's shape to: a run with other
/// values than the last run's looks again at the rows they cut.
pub const SHAPE_RULES: &[&str] = RULES.split_at(4).0;

#[derive(Debug, Clone)]
pub struct Traps {
    config: TrapsConfig,
}

impl Traps {
    pub fn new(config: &TrapsConfig) -> Self {
        Self {
            config: config.clone(),
        }
    }

    pub fn max_links_per_page(&self) -> usize {
        self.config.max_links_per_page
    }

    /// Removes session-id query parameters and `;jsessionid=`-style path parameters, which
    /// make one page look like endless different URLs. Says whether it removed any, so
    /// callers re-check what they knew about the URL only when it changed.
    pub fn strip_session_ids(&self, url: &mut Url) -> bool {
        let names = &self.config.session_params;
        if names.is_empty() {
            return false;
        }
        let is_session = |key: &str| names.iter().any(|name| names_param(name, key));
        // A segment's parameters follow its name, each after a `;`.
        let session_param = |param: &str| is_session(param_name(param));
        let session_segment = |segment: &str| segment.split(';').skip(1).any(session_param);
        let mut changed = false;
        if url.path().split('/').any(session_segment) {
            let path: Vec<String> = url
                .path()
                .split('/')
                .map(|segment| {
                    let mut parts = segment.split(';');
                    let name = parts.next().unwrap_or_default();
                    let kept: Vec<&str> = std::iter::once(name)
                        .chain(parts.filter(|param| !session_param(param)))
                        .collect();
                    kept.join(";")
                })
                .collect();
            let path = path.join("/");
            url.set_path(&path);
            changed = true;
        }
        // The other parameters keep their spelling: re-encoding them would write `~` as
        // `%7E` and a space as `+`, a second spelling of a URL the frontier may have.
        let session_pair = |pair: &&str| {
            url::form_urlencoded::parse(pair.as_bytes())
                .next()
                .is_some_and(|(key, _)| is_session(&key))
        };
        if let Some(query) = url
            .query()
            .filter(|q| q.split('&').any(|p| session_pair(&p)))
        {
            let kept: Vec<&str> = query.split('&').filter(|p| !session_pair(p)).collect();
            let kept = kept.join("&");
            url.set_query((!kept.is_empty()).then_some(kept.as_str()));
            changed = true;
        }
        changed
    }

    /// Puts the query parameters of `url` in order of their names, under
    /// `traps.sort_query`: a shop's facet links name the same filters in the order each
    /// was clicked, and would be as many pages as orders. A name given twice keeps its
    /// values in their order (`?tag=b&tag=a`, which a server may read as a list), and
    /// each parameter keeps its spelling, as [`Traps::strip_session_ids`] keeps it.
    pub fn sort_query(&self, url: &mut Url) {
        if !self.config.sort_query {
            return;
        }
        let Some(query) = url.query() else {
            return;
        };
        let mut pairs: Vec<&str> = query.split('&').collect();
        if pairs.is_sorted_by(|a, b| param_name(a) <= param_name(b)) {
            return;
        }
        // A stable sort: the values of a name given twice stay in their order.
        pairs.sort_by(|a, b| param_name(a).cmp(param_name(b)));
        let sorted = pairs.join("&");
        url.set_query(Some(&sorted));
    }

    /// A hash of the limits of [`SHAPE_RULES`], which [`Traps::check`] holds URLs to.
    pub fn shape_fingerprint(&self) -> i64 {
        let c = &self.config;
        crate::store::fingerprint(&(
            c.max_url_length,
            c.max_path_depth,
            c.max_repeated_segment,
            c.max_query_params,
        ))
    }

    /// Why `url` looks like a trap, if it does.
    pub fn check(&self, url: &Url) -> Result<(), String> {
        let c = &self.config;
        if url.as_str().len() > c.max_url_length {
            return Err(format!(
                "URL longer than traps.max_url_length = {} characters",
                c.max_url_length
            ));
        }
        let mut segments: Vec<&str> = url.path_segments().map_or_else(Vec::new, Iterator::collect);
        // A trailing `/` leaves an empty last segment, which is no level. The others are
        // levels: a relative `.//` makes `/e//`, `/e///`, … as `more/` makes `/more/more/`.
        if segments.last() == Some(&"") {
            segments.pop();
        }
        if segments.len() > c.max_path_depth {
            return Err(format!(
                "path deeper than traps.max_path_depth = {} segments",
                c.max_path_depth
            ));
        }
        if let Some(segment) = repeated(segments, c.max_repeated_segment) {
            return Err(format!(
                "path segment {segment:?} repeated more than traps.max_repeated_segment = {} times",
                c.max_repeated_segment
            ));
        }
        let mut params = 0;
        for (key, value) in url.query_pairs() {
            params += 1;
            // A folder walked in a parameter (`?dir=docs/docs/…`) is the same trap as
            // `/docs/docs/…`. Empty parts are left out: a URL in a value has `//`.
            if !value.contains('/') {
                continue;
            }
            let parts = value.split('/').filter(|part| !part.is_empty());
            if let Some(part) = repeated(parts, c.max_repeated_segment) {
                return Err(format!(
                    "query parameter {key:?} repeats {part:?} more than \
                     traps.max_repeated_segment = {} times",
                    c.max_repeated_segment
                ));
            }
        }
        if params > c.max_query_params {
            return Err(format!(
                "more than traps.max_query_params = {} query parameters",
                c.max_query_params
            ));
        }
        Ok(())
    }
}

/// The name of a query parameter as written: what comes before its `=`.
fn param_name(pair: &str) -> &str {
    pair.split('=').next().unwrap_or_default()
}

/// Whether `name`, an entry of `traps.session_params`, names the parameter `key`: the
/// same word in any case, or, for one ending in `*` (`utm_*`), any that begins with what
/// comes before it, so the family of tracking parameters a campaign tool mints needs one
/// entry, not a list that misses the next one it adds.
fn names_param(name: &str, key: &str) -> bool {
    match name.strip_suffix('*') {
        Some(prefix) => key
            .get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix)),
        None => name.eq_ignore_ascii_case(key),
    }
}

/// The registrable domain `host` is a name under (eTLD+1 by the public suffix list),
/// whose host names `traps.max_hosts_per_domain` counts: `a1.example.co.uk` →
/// `example.co.uk`, `me.github.io` → `me.github.io` (`github.io` is a suffix, so each
/// site under it is a domain of its own). A host that is no domain name (an IP
/// address), a single label (`localhost`) or a suffix itself is its own domain: it
/// shares its count with no other name. `host` is a host key: its port, if any, is
/// no part of the domain (the list read `127.0.0.1:8080` as a name under `0.1:8080`).
pub fn domain_of(host: &str) -> &str {
    let name = urlnorm::host_name(host);
    if name.starts_with('[') || name.parse::<std::net::Ipv4Addr>().is_ok() {
        return name;
    }
    psl::domain_str(name).unwrap_or(name)
}

/// The first of `parts` to come more than `max` times.
fn repeated<'p>(parts: impl IntoIterator<Item = &'p str>, max: usize) -> Option<&'p str> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    parts.into_iter().find(|part| {
        let n = counts.entry(part).or_default();
        *n += 1;
        *n > max
    })
}

/// The shape of a URL with its numbers taken out: `/cal?month=7` and `/cal?month=8` are one
/// family, and a family that keeps growing is a calendar or a pager without end. Words
/// stay, in the query as in the path: `doku.php?id=start` and `?id=faq` are two pages of
/// a wiki, not two steps of one endless walk.
pub fn family(url: &Url) -> u64 {
    let mut shape = String::with_capacity(url.as_str().len());
    shape.push_str(url.host_str().unwrap_or_default());
    shape.push_str(&without_numbers(url.path()));
    let mut pairs: Vec<String> = url
        .query_pairs()
        .map(|(k, v)| format!("{k}={}", without_numbers(&v)))
        .collect();
    pairs.sort();
    shape.push('?');
    shape.push_str(&pairs.join("&"));
    xxh3_64(shape.as_bytes())
}

/// `2024-05/page7` → `#-#/page#`.
fn without_numbers(text: &str) -> String {
    let mut shape = String::with_capacity(text.len());
    let mut in_digits = false;
    for c in text.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                shape.push('#');
            }
            in_digits = true;
        } else {
            shape.push(c);
            in_digits = false;
        }
    }
    shape
}

/// Counts new URLs per family and the link depths they were found at, bounded: when full
/// it forgets the families that show nothing yet (see [`FamilyBudget::make_room`]), which
/// can only let a trap run a little longer, never stop a legitimate URL early.
pub struct FamilyBudget {
    families: HashMap<u64, Family>,
    /// The URLs the families hold in all.
    counted: usize,
    budget: usize,
    depth_span: u32,
}

struct Family {
    /// A hash of each URL counted, at most `budget` of them. A URL found again, which the
    /// seen cache let through (it forgot the URL, is off, or the URL is nearer the seeds
    /// now), is the same URL: counted again, it made a trap of the family's next new URL
    /// before the family had `budget` of them.
    members: HashSet<u64>,
    shallowest: u32,
    deepest: u32,
}

/// Families remembered at most.
const MAX_FAMILIES: usize = 100_000;

/// URLs remembered, in all families, at most: about 16 MB.
const MAX_COUNTED: usize = 1_000_000;

impl FamilyBudget {
    pub fn new(budget: usize, depth_span: u32) -> Self {
        Self {
            families: HashMap::new(),
            counted: 0,
            budget,
            depth_span,
        }
    }

    /// Families counted afresh, within the limits of `traps`.
    pub fn within(traps: &Traps) -> Self {
        let mut budget = Self::new(0, 0);
        budget.limit_to(traps);
        budget
    }

    /// Holds the families to the limits of `traps` from now on (a SIGHUP's), keeping
    /// what they counted: a raised budget lets a family grow to it, not as much again.
    pub fn limit_to(&mut self, traps: &Traps) {
        self.budget = traps.config.family_budget;
        self.depth_span = traps.config.family_depth_span;
    }

    /// Counts `url`, found at `depth`, in its family, once however often it is found; why
    /// it is a trap once the family has used its budget or keeps going deeper.
    pub fn admit(&mut self, url: &Url, depth: u32) -> Result<(), String> {
        if self.budget == 0 && self.depth_span == 0 {
            return Ok(());
        }
        if self.families.len() >= MAX_FAMILIES || self.counted >= MAX_COUNTED {
            self.make_room();
        }
        let family = self.families.entry(family(url)).or_insert(Family {
            members: HashSet::new(),
            shallowest: depth,
            deepest: depth,
        });
        family.shallowest = family.shallowest.min(depth);
        family.deepest = family.deepest.max(depth);
        if self.budget > 0 {
            let member = xxh3_64(url.as_str().as_bytes());
            if !family.members.contains(&member) {
                if family.members.len() >= self.budget {
                    return Err(format!(
                        "its URL family (the URL without its numbers) has more than traps.family_budget = {} URLs",
                        self.budget
                    ));
                }
                family.members.insert(member);
                self.counted += 1;
            }
        }
        if self.depth_span > 0 && depth - family.shallowest > self.depth_span {
            return Err(format!(
                "its URL family keeps being found deeper, over traps.family_depth_span = {} levels",
                self.depth_span
            ));
        }
        Ok(())
    }

    /// Forgets the families of one URL found at one depth: most of a broad crawl's (a
    /// page named by words is a family of its own), and they tell nothing yet. Forgetting
    /// every family, as it did, started a calendar's `family_depth_span` over each time
    /// the crawl met [`MAX_FAMILIES`] more: in a large crawl it went on as long as the
    /// crawl. Only when the others fill half the room are they forgotten too.
    fn make_room(&mut self) {
        self.families
            .retain(|_, f| f.deepest > f.shallowest || f.members.len() > 1);
        self.counted = self.families.values().map(|f| f.members.len()).sum();
        if self.families.len() >= MAX_FAMILIES / 2 || self.counted >= MAX_COUNTED / 2 {
            self.families.clear();
            self.counted = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    fn traps(extra: &str) -> Traps {
        let config =
            Config::from_toml(&format!("seeds = ['http://h/']\n[traps]\n{extra}"), "t").unwrap();
        Traps::new(&config.traps)
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn a_query_is_sorted_by_name_keeping_each_parameters_spelling() {
        let t = traps("sort_query = true");
        let mut u = url("http://h/c?size=m&q=a+b%20c&color=red&tag=b&tag=a&flag");
        t.sort_query(&mut u);
        assert_eq!(
            u.as_str(),
            "http://h/c?color=red&flag&q=a+b%20c&size=m&tag=b&tag=a"
        );
        let mut u = url("http://h/c?size=m&color=red");
        traps("").sort_query(&mut u);
        assert_eq!(u.as_str(), "http://h/c?size=m&color=red");
    }

    #[test]
    fn session_ids_are_removed_from_queries_and_paths() {
        let t = traps("");
        let mut u = url("http://h/a;jsessionid=ABC123/b?PHPSESSID=9&x=1&sid=2");
        assert!(t.strip_session_ids(&mut u));
        assert_eq!(u.as_str(), "http://h/a/b?x=1");
        let mut u = url("http://h/p?jsessionid=1");
        assert!(t.strip_session_ids(&mut u));
        assert_eq!(u.as_str(), "http://h/p");
        let mut u = url("http://h/a;v=2/b?x=%C3%A9&y");
        assert!(!t.strip_session_ids(&mut u));
        assert_eq!(u.as_str(), "http://h/a;v=2/b?x=%C3%A9&y");
        let mut u = url("http://h/s?q=a%20b&sid=1&home=~u&to=/x");
        assert!(t.strip_session_ids(&mut u));
        assert_eq!(u.as_str(), "http://h/s?q=a%20b&home=~u&to=/x");
    }

    /// A servlet container appends `;jsessionid=` after the path parameters a segment
    /// has already (`/a;v=2`), and a segment may carry more after it: the id goes, and
    /// they stay, as they name the resource.
    #[test]
    fn a_session_id_among_other_path_parameters_is_removed_alone() {
        let t = traps("");
        let mut u = url("http://h/a;v=2;jsessionid=ABC/b");
        assert!(t.strip_session_ids(&mut u));
        assert_eq!(u.as_str(), "http://h/a;v=2/b");
        let mut u = url("http://h/a;JSESSIONID=ABC;v=2?x=1");
        assert!(t.strip_session_ids(&mut u));
        assert_eq!(u.as_str(), "http://h/a;v=2?x=1");
    }

    /// A trap row's `error` said "path deeper than 5 segments" without the key, which left
    /// a user who wanted those pages searching README for which one to raise.
    #[test]
    fn a_trap_names_the_key_that_cut_it() {
        let t = traps("max_url_length = 60\nmax_path_depth = 5\nmax_repeated_segment = 2\nmax_query_params = 3\n");
        for (u, key) in [
            (
                format!("http://h/{}", "x".repeat(80)),
                "traps.max_url_length = 60",
            ),
            (
                "http://h/1/2/3/4/5/6".to_owned(),
                "traps.max_path_depth = 5",
            ),
            (
                "http://h/a/b/a/c/a".to_owned(),
                "traps.max_repeated_segment = 2",
            ),
            (
                "http://h/?d=a/b/a/c/a".to_owned(),
                "traps.max_repeated_segment = 2",
            ),
            (
                "http://h/?a=1&b=2&c=3&d=4".to_owned(),
                "traps.max_query_params = 3",
            ),
        ] {
            let why = t.check(&url(&u)).expect_err(&u);
            assert!(why.contains(key), "{u}: {why}");
            assert_counted(&why);
        }
        let mut families = FamilyBudget::new(1, 1);
        assert!(families.admit(&url("http://h/p/1"), 1).is_ok());
        assert_counted(
            &families
                .admit(&url("http://h/p/2"), 1)
                .expect_err("over its budget"),
        );
        assert_counted(
            &families
                .admit(&url("http://h/p/1"), 3)
                .expect_err("too deep"),
        );
    }

    /// `why` names one of the [`RULES`] `query stats` counts trap rows by.
    fn assert_counted(why: &str) {
        let counted = RULES.iter().any(|r| why.contains(&format!("traps.{r} =")));
        assert!(counted, "`query stats` counts no rule of {why:?}");
    }

    #[test]
    fn long_deep_repetitive_and_parameter_heavy_urls_are_traps() {
        let t = traps("max_url_length = 60\nmax_path_depth = 5\nmax_repeated_segment = 2\nmax_query_params = 3\n");
        assert!(t.check(&url("http://h/a/b/c?x=1")).is_ok());
        assert!(t
            .check(&url(&format!("http://h/{}", "x".repeat(80))))
            .is_err());
        assert!(t.check(&url("http://h/1/2/3/4/5/6")).is_err());
        assert!(t.check(&url("http://h/a/b/a/c/a")).is_err());
        assert!(
            t.check(&url("http://h/a/b/c/d/e/")).is_ok(),
            "a trailing / is no level"
        );
        assert!(t.check(&url("http://h/a///")).is_ok());
        assert!(
            t.check(&url("http://h/a////")).is_err(),
            "empty segments repeat too"
        );
        assert!(t.check(&url("http://h/?a=1&b=2&c=3&d=4")).is_err());
        assert!(t.check(&url("http://h/?d=a/b/a/c/a")).is_err());
        assert!(
            t.check(&url("http://h/?d=a%2Fa%2Fa")).is_err(),
            "an escaped / parts a value too"
        );
        assert!(
            t.check(&url("http://h/?u=http://x//a///b")).is_ok(),
            "empty parts of a value do not count"
        );
        assert!(
            t.check(&url("http://h/?a=x&b=x&c=x")).is_ok(),
            "values are counted apart"
        );
    }

    #[test]
    fn a_family_runs_out_of_budget_or_of_depth() {
        let mut budget = FamilyBudget::new(3, 0);
        let admitted = (1..=5)
            .filter(|m| {
                budget
                    .admit(&url(&format!("http://h/cal?month={m}")), 1)
                    .is_ok()
            })
            .count();
        assert_eq!(admitted, 3);
        assert!(
            budget.admit(&url("http://h/cal?month=2"), 1).is_ok(),
            "a URL found again is no new URL of its family"
        );
        let other = budget.admit(&url("http://h/other?month=1"), 1);
        assert!(other.is_ok(), "other families are not affected");
        assert_eq!(
            family(&url("http://h/p/12?b=1&a=2")),
            family(&url("http://h/p/7?a=5&b=9"))
        );
        assert_eq!(
            family(&url("http://h/cal?d=2024-05-01")),
            family(&url("http://h/cal?d=2025-12-31"))
        );
        assert_ne!(
            family(&url("http://h/doku.php?id=start")),
            family(&url("http://h/doku.php?id=faq"))
        );

        let mut span = FamilyBudget::new(0, 10);
        let calendar = (1..=20)
            .take_while(|m| span.admit(&url(&format!("http://h/cal?m={m}")), *m).is_ok())
            .count();
        assert_eq!(
            calendar, 11,
            "a month per level: trapped 10 levels below the first"
        );
        let catalogue = (1..=5000)
            .filter(|i| {
                span.admit(&url(&format!("http://h/product/{i}")), 2 + i % 3)
                    .is_ok()
            })
            .count();
        assert_eq!(catalogue, 5000, "many URLs at a few depths are fine");
    }

    #[test]
    fn a_host_counts_under_its_registrable_domain() {
        for (host, domain) in [
            ("a1.trap.test", "trap.test"),
            ("trap.test", "trap.test"),
            ("x.y.example.co.uk", "example.co.uk"),
            ("me.github.io", "me.github.io"),
            ("a.me.blogspot.com", "me.blogspot.com"),
            ("github.io", "github.io"),
            ("localhost", "localhost"),
            ("intranet", "intranet"),
            ("admin.localhost", "admin.localhost"),
            ("127.0.0.1", "127.0.0.1"),
            ("10.1.2.3", "10.1.2.3"),
            ("[::1]", "[::1]"),
            ("[2001:db8::1]", "[2001:db8::1]"),
            // IDNs as URLs spell them: `bücher.de`, a host under `中国`.
            ("www.xn--bcher-kva.de", "xn--bcher-kva.de"),
            ("a.b.xn--fiqs8s", "b.xn--fiqs8s"),
            // Host keys with a port: the port is the server's, not the domain's.
            ("127.0.0.1:8080", "127.0.0.1"),
            ("10.0.0.1:8080", "10.0.0.1"),
            ("a1.example.com:8080", "example.com"),
            ("[::1]:8080", "[::1]"),
            ("localhost:3000", "localhost"),
        ] {
            assert_eq!(domain_of(host), domain, "{host}");
        }
    }

    /// A broad crawl meets more families than are remembered, most of them one page
    /// named by words; a calendar among them keeps its count.
    #[test]
    fn a_calendar_is_remembered_when_pages_named_by_words_fill_the_room() {
        let mut span = FamilyBudget::new(0, 10);
        let month = |span: &mut FamilyBudget, m: u32| {
            span.admit(&url(&format!("http://h/cal?m={m}")), m).is_ok()
        };
        assert!((1..=5).all(|m| month(&mut span, m)));
        for i in 0..MAX_FAMILIES {
            // `i` in letters: a name with no numbers, a family of its own.
            let (mut name, mut n) = (String::new(), i);
            loop {
                name.push(char::from(b'a' + (n % 26) as u8));
                n /= 26;
                if n == 0 {
                    break;
                }
            }
            assert!(span
                .admit(&url(&format!("http://h/wiki/{name}")), 3)
                .is_ok());
        }
        let calendar = (6..=30).take_while(|m| month(&mut span, *m)).count();
        assert_eq!(calendar, 6, "months 6 to 11: 10 levels below the first");
    }
}
