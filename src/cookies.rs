//! Cookies, kept for the crawl as a browser keeps them (RFC 6265).
//!
//! Sites that check for a cookie (a consent wall, a bot check, a session a framework
//! insists on) set it and redirect: a crawler that sends none back is redirected on every
//! page, and crawls a site of loops. Scrapy, Colly and Heritrix keep cookies for this
//! reason. They live in memory, for one run of one node: a session cookie is worth no
//! more than the session, and a crawl resumed or spread over nodes gets its own.
//!
//! Memory is bounded by RFC 6265 §6.1's least limits, taken as the most kept: 4096
//! bytes a cookie, 50 a domain, 3000 in all. Past that, the domain whose cookies came
//! first loses them all (a broad crawl has long moved past it), and a new site's
//! cookies are kept.
//!
//! A `Domain` attribute naming a public suffix (`com`, `co.uk`, `github.io`, by the
//! public suffix list compiled in) is refused, so one site cannot set a cookie for
//! every site under it; from the suffix's own host, such a cookie is kept for that host
//! only (RFC 6265 §5.3 step 5).
//!
//! A response over http may neither set a `Secure` cookie nor one that would take the
//! place of a `Secure` cookie of its name (RFC 6265bis §5.7 steps 8 and 16, as every
//! browser has them): anyone on the way of a page over http could otherwise set what
//! only https requests carry, a session's cookie for one. The name prefixes `__Secure-`
//! and `__Host-` are held to what they promise (RFC 6265bis §4.1.3).

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use cookie::time::{Date, Month};
use cookie::Cookie;
use reqwest::header::{HeaderMap, HeaderValue, SET_COOKIE};
use url::{Host, Url};

/// Name and value: larger cookies are refused, as browsers refuse them.
const MAX_COOKIE_BYTES: usize = 4096;
/// An attribute value longer than this is ignored (RFC 6265bis §5.6), as browsers ignore
/// it: a `Path` is not counted in [`MAX_COOKIE_BYTES`], and a response's head may be
/// 64 KiB.
const MAX_ATTRIBUTE_BYTES: usize = 1024;
/// Cookies kept for one domain: past this, its oldest goes.
const MAX_PER_DOMAIN: usize = 50;
/// Cookies kept in all.
const MAX_COOKIES: usize = 3000;
/// A `Max-Age` or `Expires` further out than this is taken as this (RFC 6265bis caps
/// cookie lifetimes at 400 days); far dates would overflow `SystemTime`.
const MAX_LIFETIME: Duration = Duration::from_secs(400 * 24 * 3600);

/// The crawl's cookie jar, shared by every request of the one HTTP client.
#[derive(Debug, Default)]
pub struct Jar {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// By the domain a cookie applies to: a request looks up its host and the names
    /// above it, not every domain the crawl has met.
    domains: HashMap<String, Domain>,
    /// Domains in the order their first cookie came, each with the `born` mark of its
    /// entry in `domains`; an entry whose domain was dropped (or made again) since is
    /// skipped, and the queue is rebuilt when such entries outnumber the live ones.
    order: VecDeque<(u64, String)>,
    count: usize,
    /// Marks the order of domains and of cookies within one.
    clock: u64,
}

#[derive(Debug)]
struct Domain {
    born: u64,
    cookies: Vec<Stored>,
}

#[derive(Debug)]
struct Stored {
    name: String,
    value: String,
    path: String,
    /// Sent to the very host that set it only (no `Domain` attribute).
    host_only: bool,
    secure: bool,
    /// `None`: a session cookie, kept for the run.
    expires: Option<SystemTime>,
    set: u64,
    /// When the cookie took its value: set again with the same value, it keeps the time
    /// it was first set with it.
    changed_at: SystemTime,
}

impl Stored {
    fn is_expired(&self, now: SystemTime) -> bool {
        self.expires.is_some_and(|at| at <= now)
    }

    /// RFC 6265 §5.1.4: the cookie's path is the request's, or a prefix of it ending at
    /// a `/`.
    fn path_matches(&self, request_path: &str) -> bool {
        request_path.strip_prefix(&self.path).is_some_and(|rest| {
            rest.is_empty() || self.path.ends_with('/') || rest.starts_with('/')
        })
    }
}

/// What one `Set-Cookie` asks of the jar.
struct Change {
    domain: String,
    cookie: Stored,
    /// An expiry in the past: the cookie is to go.
    removes: bool,
    /// Set by a response that came over http.
    insecure: bool,
}

impl Jar {
    /// One `Set-Cookie` value from a response to `url`; one the jar must not take (too
    /// large, for another site, unreadable) is left out, as browsers leave it.
    fn set(&self, header: &HeaderValue, url: &Url, now: SystemTime) {
        let Some(change) = std::str::from_utf8(header.as_bytes())
            .ok()
            .and_then(|text| Some((Cookie::parse(text).ok()?, text)))
            .and_then(|(cookie, text)| change(&cookie, expires_attribute(text), url, now))
        else {
            return;
        };
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.apply(change);
    }

    /// The `Cookie` header for a request to `url`: longer paths first, then older
    /// cookies first (RFC 6265 §5.4).
    fn header(&self, url: &Url, now: SystemTime) -> Option<HeaderValue> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut sent = state.sent_to(url, now);
        if sent.is_empty() {
            return None;
        }
        sent.sort_by(|a, b| b.path.len().cmp(&a.path.len()).then(a.set.cmp(&b.set)));
        let value = sent
            .iter()
            .map(|c| format!("{}={}", c.name, c.value))
            .collect::<Vec<_>>()
            .join("; ");
        HeaderValue::from_bytes(value.as_bytes()).ok()
    }

    /// When the cookies a request to `url` would carry last changed: the latest time one
    /// of them took its value. `None` when it would carry none.
    pub fn changed_at(&self, url: &Url) -> Option<SystemTime> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let sent = state.sent_to(url, SystemTime::now());
        sent.iter().map(|c| c.changed_at).max()
    }

    /// The cookies `headers`, a response to `url`, set. Taken by the fetcher once it has
    /// accepted the response: one it refuses (a head over `fetch.max_header_bytes`) must
    /// leave no cookie, as it leaves nothing else.
    pub fn take(&self, headers: &HeaderMap, url: &Url) {
        let now = SystemTime::now();
        for header in headers.get_all(SET_COOKIE) {
            self.set(header, url, now);
        }
    }
}

impl reqwest::cookie::CookieStore for Jar {
    /// Nothing: reqwest hands a response's cookies over before the crawler has looked at
    /// its head, so the fetcher takes them itself ([`Jar::take`]).
    fn set_cookies(&self, _: &mut dyn Iterator<Item = &HeaderValue>, _: &Url) {}

    fn cookies(&self, url: &Url) -> Option<HeaderValue> {
        self.header(url, SystemTime::now())
    }
}

impl State {
    fn apply(&mut self, change: Change) {
        let Change {
            domain,
            mut cookie,
            removes,
            insecure,
        } = change;
        if insecure && self.shadows_secure(&domain, &cookie) {
            return;
        }
        if let Some(entry) = self.domains.get_mut(&domain) {
            let before = entry.cookies.len();
            entry.cookies.retain(|c| {
                let replaced = c.name == cookie.name && c.path == cookie.path;
                if replaced && c.value == cookie.value {
                    cookie.changed_at = c.changed_at;
                }
                !replaced
            });
            self.count -= before - entry.cookies.len();
        }
        if removes {
            if self
                .domains
                .get(&domain)
                .is_some_and(|e| e.cookies.is_empty())
            {
                self.domains.remove(&domain);
            }
            return;
        }
        self.clock += 1;
        cookie.set = self.clock;
        let entry = match self.domains.entry(domain) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                self.order.push_back((self.clock, entry.key().clone()));
                entry.insert(Domain {
                    born: self.clock,
                    cookies: Vec::new(),
                })
            }
        };
        entry.cookies.push(cookie);
        self.count += 1;
        if entry.cookies.len() > MAX_PER_DOMAIN {
            // Pushed in the order they came: the first is the oldest.
            entry.cookies.remove(0);
            self.count -= 1;
        }
        while self.count > MAX_COOKIES {
            let Some((born, oldest)) = self.order.pop_front() else {
                break;
            };
            if self.domains.get(&oldest).is_some_and(|e| e.born == born) {
                if let Some(dropped) = self.domains.remove(&oldest) {
                    self.count -= dropped.cookies.len();
                }
            }
        }
        if self.order.len() > 2 * self.domains.len() + 16 {
            let domains = &self.domains;
            self.order
                .retain(|(born, d)| domains.get(d).is_some_and(|e| e.born == *born));
        }
    }

    /// RFC 6265bis §5.7 step 16: whether `cookie`, for `domain`, would take the place of
    /// a Secure cookie of its name: one for a domain above or below `domain`, whose path
    /// `cookie`'s is under. Set over http, it is refused, as every browser refuses it.
    fn shadows_secure(&self, domain: &str, cookie: &Stored) -> bool {
        self.domains
            .iter()
            .filter(|(d, _)| domain_matches(d, domain) || domain_matches(domain, d))
            .flat_map(|(_, entry)| &entry.cookies)
            .any(|c| c.secure && c.name == cookie.name && c.path_matches(&cookie.path))
    }

    /// The cookies a request to `url` carries, the expired ones dropped.
    fn sent_to(&mut self, url: &Url, now: SystemTime) -> Vec<&Stored> {
        let Some(host) = url.host_str() else {
            return Vec::new();
        };
        let is_name = is_domain_name(url);
        let secure = is_secure(url);
        self.forget_expired(host, is_name, now);
        let mut sent = Vec::new();
        for domain in domains_above(host, is_name) {
            let Some(entry) = self.domains.get(domain) else {
                continue;
            };
            sent.extend(entry.cookies.iter().filter(|c| {
                (!c.host_only || domain == host)
                    && (secure || !c.secure)
                    && c.path_matches(url.path())
            }));
        }
        sent
    }

    /// Drops the expired cookies a request to `host` would have carried.
    fn forget_expired(&mut self, host: &str, is_name: bool, now: SystemTime) {
        let mut emptied = Vec::new();
        for domain in domains_above(host, is_name) {
            if let Some(entry) = self.domains.get_mut(domain) {
                let before = entry.cookies.len();
                entry.cookies.retain(|c| !c.is_expired(now));
                self.count -= before - entry.cookies.len();
                if entry.cookies.is_empty() {
                    emptied.push(domain.to_owned());
                }
            }
        }
        for domain in emptied {
            self.domains.remove(&domain);
        }
    }
}

/// What `cookie`, set by a response to `url` with the `Expires` date `expires`, does to
/// the jar; `None` when it is to be left out.
fn change(
    cookie: &Cookie<'_>,
    expires: Option<SystemTime>,
    url: &Url,
    now: SystemTime,
) -> Option<Change> {
    if cookie.name().len() + cookie.value().len() > MAX_COOKIE_BYTES || cookie.name().is_empty() {
        return None;
    }
    let secure = cookie.secure().unwrap_or(false);
    if secure && !is_secure(url) {
        return None;
    }
    let host = url.host_str()?.to_owned();
    let named = match cookie.domain().map(|d| d.trim_end_matches('.')) {
        None | Some("") => None,
        // RFC 6265bis §5.1.2: the name as a URL's host has it, lowercase and in punycode
        // (`bücher.example` is `xn--bcher-kva.example`); one no host can have is refused.
        Some(d) => Some(Host::parse(d).ok()?.to_string()),
    };
    let (domain, host_only) = match named {
        None => (host, true),
        // An address is its own domain, and so is a public suffix: `Domain` on a cookie
        // from one names only it.
        Some(d) if !is_domain_name(url) || is_public_suffix(&d) => {
            (d == host).then_some((host, true))?
        }
        Some(d) if domain_matches(&host, &d) => (d, false),
        Some(_) => return None,
    };
    let given_path = cookie.path().filter(|p| p.len() <= MAX_ATTRIBUTE_BYTES);
    if !prefix_allows(cookie.name(), secure, host_only, given_path) {
        return None;
    }
    let path = match given_path {
        Some(p) if p.starts_with('/') => p.to_owned(),
        _ => default_path(url.path()),
    };
    let expires = match (cookie.max_age(), expires) {
        (Some(age), _) => {
            let secs = u64::try_from(age.whole_seconds()).unwrap_or(0);
            Some(now + Duration::from_secs(secs).min(MAX_LIFETIME))
        }
        (None, Some(at)) => Some(at.min(now + MAX_LIFETIME)),
        (None, None) => None,
    };
    let removes = expires.is_some_and(|at| at <= now);
    Some(Change {
        domain,
        removes,
        insecure: !is_secure(url),
        cookie: Stored {
            name: cookie.name().to_owned(),
            value: cookie.value().to_owned(),
            path,
            host_only,
            secure,
            expires,
            set: 0,
            changed_at: now,
        },
    })
}

/// RFC 6265bis §4.1.3: a cookie whose name begins `__Secure-` (in any case) is kept only
/// `Secure`, and one whose name begins `__Host-` only `Secure`, for its host alone and
/// with `Path=/`: the site that reads such a cookie knows no other page, path or name
/// above its host set it.
fn prefix_allows(name: &str, secure: bool, host_only: bool, path: Option<&str>) -> bool {
    let prefixed = |prefix: &str| {
        name.get(..prefix.len())
            .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
    };
    if prefixed("__Host-") {
        secure && host_only && path == Some("/")
    } else {
        secure || !prefixed("__Secure-")
    }
}

/// Whether `domain` is a public suffix: one the list names (`co.uk`, `github.io`), or a
/// name of one label, which the list's default rule takes for one.
fn is_public_suffix(domain: &str) -> bool {
    psl::suffix_str(domain) == Some(domain)
}

/// Whether a request to `url` goes where only its host reads it: a page over http is
/// anyone's on the way.
fn is_secure(url: &Url) -> bool {
    url.scheme() == "https"
}

fn is_domain_name(url: &Url) -> bool {
    matches!(url.host(), Some(Host::Domain(_)))
}

/// `host` and, for a name, every name above it (`a.b.example.com`, `b.example.com`,
/// `example.com`, `com`): the domains whose cookies a request to it may carry.
fn domains_above(host: &str, is_name: bool) -> impl Iterator<Item = &str> {
    let mut next = Some(host);
    std::iter::from_fn(move || {
        let current = next?;
        next = if is_name {
            current.split_once('.').map(|(_, rest)| rest)
        } else {
            None
        };
        Some(current)
    })
}

/// The date of the last `Expires` attribute of the `Set-Cookie` line `line` that reads
/// as one (RFC 6265 §5.2.1, §5.3 step 3): one that does not is ignored.
fn expires_attribute(line: &str) -> Option<SystemTime> {
    line.split(';')
        .skip(1)
        .filter_map(|attribute| attribute.split_once('='))
        .filter(|(name, _)| name.trim().eq_ignore_ascii_case("expires"))
        .filter_map(|(_, value)| cookie_date(value))
        .last()
}

/// A date read as RFC 6265 §5.1.1 reads it, as browsers do: the first tokens that are a
/// time, a day, a month and a year, in whatever format and order (`Thu, 01-Jan-70`,
/// `Thu Jan 01 1970 00:00:00 GMT+0000`, `... UTC`), where the `cookie` crate takes only
/// three formats, and a cookie removed by a date in another was kept as a session's.
fn cookie_date(value: &str) -> Option<SystemTime> {
    let (mut time, mut day, mut month, mut year) = (None, None, None, None);
    for token in value.split(is_date_delimiter).filter(|t| !t.is_empty()) {
        if let Some(at) = time_of_day(token).filter(|_| time.is_none()) {
            time = Some(at);
        } else if let Some((n, _)) = leading_number(token, 1, 2).filter(|_| day.is_none()) {
            day = Some(n);
        } else if let Some(named) = month_of(token).filter(|_| month.is_none()) {
            month = Some(named);
        } else if year.is_none() {
            year = leading_number::<u16>(token, 2, 4).map(|(n, _)| n);
        }
    }
    let (hour, minute, second) = time?;
    let year = match year? {
        short @ 70..=99 => short + 1900,
        short @ 0..=69 => short + 2000,
        year => year,
    };
    if year < 1601 {
        return None;
    }
    let date = Date::from_calendar_date(i32::from(year), month?, day?).ok()?;
    let at = date.with_hms(hour, minute, second).ok()?.assume_utc();
    Some(SystemTime::from(at))
}

/// RFC 6265 §5.1.1's delimiters, between a date's tokens.
fn is_date_delimiter(c: char) -> bool {
    matches!(c, '\t' | ' '..='/' | ';'..='@' | '['..='`' | '{'..='~')
}

/// `hh:mm:ss`, one or two digits each, as a date token begins.
fn time_of_day(token: &str) -> Option<(u8, u8, u8)> {
    let (hour, rest) = leading_number(token, 1, 2)?;
    let (minute, rest) = leading_number(rest.strip_prefix(':')?, 1, 2)?;
    let (second, _) = leading_number(rest.strip_prefix(':')?, 1, 2)?;
    Some((hour, minute, second))
}

/// The number `token` begins with, of `min` to `max` digits, and what follows it.
fn leading_number<T: TryFrom<u16>>(token: &str, min: usize, max: usize) -> Option<(T, &str)> {
    let digits = token.bytes().take_while(u8::is_ascii_digit).count();
    if !(min..=max).contains(&digits) {
        return None;
    }
    let number: u16 = token[..digits].parse().ok()?;
    Some((T::try_from(number).ok()?, &token[digits..]))
}

/// The month a token's first three letters name.
fn month_of(token: &str) -> Option<Month> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let start = token.get(..3)?;
    let index = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(start))?;
    Month::try_from(u8::try_from(index + 1).ok()?).ok()
}

/// RFC 6265 §5.1.3: `host` is `domain` or a name under it.
fn domain_matches(host: &str, domain: &str) -> bool {
    host.strip_suffix(domain)
        .is_some_and(|rest| rest.is_empty() || rest.ends_with('.'))
}

/// RFC 6265 §5.1.4: the request path up to its last `/`, or `/`.
fn default_path(path: &str) -> String {
    match path.rfind('/') {
        Some(0) | None => "/".to_owned(),
        Some(last) => path[..last].to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).expect("test URL")
    }

    fn set(jar: &Jar, at: &str, cookie: &str) {
        jar.set(
            &HeaderValue::from_str(cookie).expect("header"),
            &url(at),
            SystemTime::now(),
        );
    }

    fn sent(jar: &Jar, to: &str) -> Option<String> {
        jar.header(&url(to), SystemTime::now())
            .map(|h| h.to_str().expect("ASCII").to_owned())
    }

    #[test]
    fn a_cookie_goes_back_to_its_host_and_path_only() {
        let jar = Jar::default();
        set(&jar, "http://example.com/shop/cart", "a=1");
        set(&jar, "http://example.com/", "b=2; Path=/");
        assert_eq!(
            sent(&jar, "http://example.com/shop/x").as_deref(),
            Some("a=1; b=2")
        );
        assert_eq!(
            sent(&jar, "http://example.com/shopping").as_deref(),
            Some("b=2")
        );
        assert_eq!(
            sent(&jar, "http://www.example.com/shop/x"),
            None,
            "host-only"
        );
        assert_eq!(sent(&jar, "http://example.org/shop/x"), None);
    }

    #[test]
    fn a_domain_cookie_goes_to_the_names_under_it_and_not_to_other_sites() {
        let jar = Jar::default();
        set(&jar, "http://www.example.com/", "s=1; Domain=.example.com");
        set(&jar, "http://www.example.com/", "t=1; Domain=com");
        set(&jar, "http://www.example.com/", "u=1; Domain=other.com");
        set(&jar, "http://www.example.com/", "v=1; Domain=ample.com");
        assert_eq!(
            sent(&jar, "http://shop.example.com/").as_deref(),
            Some("s=1")
        );
        assert_eq!(sent(&jar, "http://example.com/").as_deref(), Some("s=1"));
        assert_eq!(sent(&jar, "http://other.com/"), None);
        assert_eq!(sent(&jar, "http://ample.com/"), None);
    }

    /// A `Domain` is read as a host name (RFC 6265bis §5.1.2): a leading dot and case
    /// say nothing, and a name in Unicode is the punycode one its host has in a URL.
    #[test]
    fn a_domain_is_read_as_a_host_name() {
        let jar = Jar::default();
        set(&jar, "http://www.example.com/", "a=1; Domain=.Example.COM");
        set(
            &jar,
            "http://www.bücher.example/",
            "b=2; Domain=bücher.example",
        );
        set(
            &jar,
            "http://www.bücher.example/",
            "c=3; Domain=.BÜCHER.example",
        );
        set(
            &jar,
            "http://www.bücher.example/",
            "d=4; Domain=xn--bcher-kva.example",
        );
        set(
            &jar,
            "http://www.bücher.example/",
            "e=5; Domain=bucher.example",
        );
        assert_eq!(
            sent(&jar, "http://shop.example.com/").as_deref(),
            Some("a=1")
        );
        assert_eq!(
            sent(&jar, "http://shop.xn--bcher-kva.example/").as_deref(),
            Some("b=2; c=3; d=4")
        );
    }

    #[test]
    fn a_public_suffix_is_no_cookie_domain() {
        let jar = Jar::default();
        set(&jar, "http://shop.example.co.uk/", "a=1; Domain=co.uk");
        set(&jar, "http://me.github.io/", "b=2; Domain=github.io");
        set(
            &jar,
            "http://shop.example.co.uk/",
            "c=3; Domain=example.co.uk",
        );
        set(&jar, "http://github.io/", "d=4; Domain=github.io");
        assert_eq!(sent(&jar, "http://other.co.uk/"), None);
        assert_eq!(sent(&jar, "http://you.github.io/"), None);
        assert_eq!(
            sent(&jar, "http://www.example.co.uk/").as_deref(),
            Some("c=3"),
            "a domain under the suffix"
        );
        assert_eq!(
            sent(&jar, "http://github.io/").as_deref(),
            Some("d=4"),
            "the suffix's own host keeps it, host-only (RFC 6265 §5.3 step 5)"
        );
    }

    #[test]
    fn an_address_keeps_its_cookies_to_itself() {
        let jar = Jar::default();
        set(&jar, "http://127.0.0.1:8080/", "a=1; Domain=0.0.1");
        set(&jar, "http://127.0.0.1:8080/", "b=2; Domain=127.0.0.1");
        set(&jar, "http://[::1]/", "c=3");
        assert_eq!(sent(&jar, "http://127.0.0.1:9090/").as_deref(), Some("b=2"));
        assert_eq!(sent(&jar, "http://127.0.0.2/"), None);
        assert_eq!(sent(&jar, "http://[::1]/x").as_deref(), Some("c=3"));
    }

    #[test]
    fn secure_cookies_go_over_https_only_and_expired_ones_not_at_all() {
        let jar = Jar::default();
        set(&jar, "https://example.com/", "s=1; Secure");
        set(&jar, "https://example.com/", "gone=1; Max-Age=0");
        set(
            &jar,
            "https://example.com/",
            "old=1; Expires=Wed, 21 Oct 2015 07:28:00 GMT",
        );
        set(
            &jar,
            "https://example.com/",
            "far=1; Max-Age=99999999999999",
        );
        assert_eq!(
            sent(&jar, "https://example.com/").as_deref(),
            Some("s=1; far=1")
        );
        assert_eq!(sent(&jar, "http://example.com/").as_deref(), Some("far=1"));
        set(&jar, "https://example.com/", "far=; Max-Age=-1");
        assert_eq!(
            sent(&jar, "http://example.com/"),
            None,
            "removed by an expiry"
        );
    }

    /// RFC 6265bis §5.7 steps 8 and 16, as every browser has them: a page over http is
    /// anyone's on the way, and may neither make a cookie only https requests carry nor
    /// take the place of one.
    #[test]
    fn http_neither_sets_nor_shadows_a_secure_cookie() {
        let jar = Jar::default();
        set(&jar, "http://example.com/", "s=1; Secure");
        assert_eq!(sent(&jar, "https://example.com/"), None, "Secure over http");

        set(&jar, "https://example.com/", "id=1; Secure");
        set(&jar, "https://example.com/", "admin=1; Secure; Path=/admin");
        set(&jar, "http://example.com/", "id=2");
        set(&jar, "http://www.example.com/", "id=3; Domain=example.com");
        set(&jar, "http://example.com/shop/x", "id=4; Path=/shop");
        set(&jar, "http://example.com/", "id=; Max-Age=0");
        set(&jar, "http://example.com/", "admin=2; Path=/");
        set(&jar, "http://example.com/", "other=1");
        assert_eq!(
            sent(&jar, "https://example.com/shop/x").as_deref(),
            Some("id=1; admin=2; other=1"),
            "a path the Secure cookie's does not cover is another cookie's"
        );
        assert_eq!(
            sent(&jar, "http://www.example.com/").as_deref(),
            None,
            "nothing set in the Secure cookie's place"
        );
        set(&jar, "https://example.com/", "id=5");
        assert_eq!(
            sent(&jar, "http://example.com/shop/x").as_deref(),
            Some("admin=2; other=1; id=5"),
            "https may replace it"
        );
    }

    /// RFC 6265bis §4.1.3: a name's prefix vouches for how the cookie was set, to the
    /// site that reads it; one set otherwise is refused, as browsers refuse it.
    #[test]
    fn a_prefixed_name_is_kept_only_as_its_prefix_says() {
        let jar = Jar::default();
        for cookie in [
            "__Secure-a=1",
            "__Secure-b=1; Secure",
            "__secure-c=1; Domain=example.com",
            "__Host-d=1; Secure; Path=/",
            "__Host-f=1; Path=/",
            "__Host-g=1; Secure; Path=/x",
            "__HOST-h=1; Secure; Path=/; Domain=example.com",
            "__Hostile=1",
        ] {
            set(&jar, "https://example.com/", cookie);
        }
        set(&jar, "https://example.com/x/", "__Host-e=1; Secure");
        assert_eq!(
            sent(&jar, "https://example.com/x/y").as_deref(),
            Some("__Secure-b=1; __Host-d=1; __Hostile=1")
        );
    }

    /// RFC 6265 §5.1.1 reads a date as browsers do, whatever its format: a cookie removed
    /// by a date in one the `cookie` crate does not read was kept, empty, as a session's.
    #[test]
    fn an_expiry_in_any_format_browsers_read_is_read() {
        let jar = Jar::default();
        let past = [
            "Thu, 01 Jan 1970 00:00:00 GMT",
            "Thursday, 01-Jan-70 00:00:01 GMT",
            "Thu Jan  1 00:00:01 1970",
            "Thu, 01 Jan 1970 00:00:00 UTC",
            "Thursday, 01-Jan-1970 00:00:01 GMT",
            "Thu Jan 01 1970 00:00:00 GMT+0000 (Coordinated Universal Time)",
            "Thu, 1 Jan 1970 00:00:00 +0000",
            "1 jan 1970 0:0:0",
        ];
        for (i, date) in past.iter().enumerate() {
            set(&jar, "http://example.com/", &format!("c{i}=1"));
            set(
                &jar,
                "http://example.com/",
                &format!("c{i}=; Expires={date}"),
            );
        }
        for odd in [
            "Thu, 30 Feb 2099 00:00:00 GMT",
            "yesterday",
            "01 Jan 1600 00:00:00",
        ] {
            set(
                &jar,
                "http://example.com/",
                &format!("kept=1; Expires={odd}"),
            );
        }
        set(
            &jar,
            "http://example.com/",
            "later=1; Expires=Wed, 21 Oct 1970 07:28:00 GMT; Expires=Wed, 21 Oct 2099 07:28:00 GMT",
        );
        assert_eq!(
            sent(&jar, "http://example.com/").as_deref(),
            Some("kept=1; later=1"),
            "a date not read is no expiry; the last Expires counts"
        );
    }

    #[test]
    fn a_cookie_set_again_replaces_the_first() {
        let jar = Jar::default();
        set(&jar, "http://example.com/", "id=1");
        set(&jar, "http://example.com/", "id=2");
        assert_eq!(sent(&jar, "http://example.com/").as_deref(), Some("id=2"));
    }

    #[test]
    fn a_cookie_changes_when_its_value_does() {
        let jar = Jar::default();
        let page = url("http://example.com/a");
        assert_eq!(jar.changed_at(&page), None);
        let first = SystemTime::now();
        let header = |v: &str| HeaderValue::from_str(v).expect("header");
        jar.set(&header("consent=yes"), &page, first);
        assert_eq!(jar.changed_at(&page), Some(first));
        let later = first + Duration::from_secs(1);
        jar.set(&header("consent=yes; Max-Age=3600"), &page, later);
        assert_eq!(jar.changed_at(&page), Some(first), "set again as it was");
        jar.set(&header("consent=no"), &page, later);
        assert_eq!(jar.changed_at(&page), Some(later));
        assert_eq!(jar.changed_at(&url("http://example.org/a")), None);
    }

    #[test]
    fn the_jar_holds_no_more_than_its_bounds() {
        let jar = Jar::default();
        set(
            &jar,
            "http://example.com/",
            &format!("big={}", "x".repeat(MAX_COOKIE_BYTES)),
        );
        assert_eq!(
            sent(&jar, "http://example.com/"),
            None,
            "larger than 4096 bytes"
        );
        for i in 0..=MAX_PER_DOMAIN {
            set(&jar, "http://example.com/", &format!("c{i}=1"));
        }
        let kept = sent(&jar, "http://example.com/").expect("cookies");
        assert_eq!(kept.split("; ").count(), MAX_PER_DOMAIN);
        assert!(!kept.contains("c0="), "the oldest went: {kept}");
        for host in 0..MAX_COOKIES {
            set(&jar, &format!("http://h{host}.test/"), "a=1");
        }
        assert_eq!(
            sent(&jar, "http://example.com/"),
            None,
            "the first domain went"
        );
        assert!(sent(&jar, &format!("http://h{}.test/", MAX_COOKIES - 1)).is_some());
        let state = jar.state.lock().expect("lock");
        assert!(state.count <= MAX_COOKIES, "{}", state.count);
        assert!(state.order.len() <= 2 * state.domains.len() + 16);
    }

    /// A `Path` is no part of the 4096 bytes a cookie's name and value may take, and a
    /// response's head may be 64 KiB: 3,000 cookies of a 60 KiB path each held some
    /// 180 MB. Browsers ignore an attribute value over 1024 bytes (RFC 6265bis §5.6),
    /// and the cookie takes the path of the URL that set it.
    #[test]
    fn a_path_over_1024_bytes_is_ignored_as_browsers_ignore_it() {
        let jar = Jar::default();
        let long = format!("/{}", "p".repeat(60 * 1024));
        set(
            &jar,
            "http://example.com/shop/cart",
            &format!("a=1; Path={long}"),
        );
        set(
            &jar,
            "http://example.com/",
            &format!("b=2; Path=/{}", "q".repeat(1023)),
        );
        let state = jar.state.lock().expect("lock");
        let paths: Vec<usize> = state.domains["example.com"]
            .cookies
            .iter()
            .map(|c| c.path.len())
            .collect();
        assert_eq!(paths, [5, 1024], "the paths kept, in bytes");
        drop(state);
        assert_eq!(
            sent(&jar, "http://example.com/shop/x").as_deref(),
            Some("a=1")
        );
    }
}
