//! robots.txt per RFC 9309: fetched once per host, cached in memory and in the `hosts`
//! table, and asked before every request.
//!
//! Parsing and matching are [`rules`]'. This module does what the RFC leaves to the
//! crawler: a 2xx means the rules that parse apply; a 4xx means everything is allowed; a
//! 5xx or no answer means nothing is allowed until a later fetch succeeds; up to five
//! redirects are followed (a 3xx that leads nowhere, or a sixth, is taken as a 4xx); only
//! the first 500 KiB count, less the line the limit cuts; and a file in UTF-16 with a
//! byte order mark is read as the UTF-8 it would be.

mod rules;
mod slots;

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use encoding_rs::{Encoding, UTF_8};
use reqwest::header::{HeaderValue, LOCATION};
use reqwest::Response;
use url::{Position, Url};

use crate::coding::{Coding, Decoder};
use crate::error::Error;
use crate::fetcher::{self, url_header, HttpClient, MinRate};
use crate::gaps;
use crate::netguard::NetworkPolicy;
use crate::page::{held_by, ErrorKind, FetchError};
use crate::politeness::{HostGate, Politeness};
use crate::retry;
use crate::store::{RobotsRow, Store};
use crate::urlnorm;
use rules::RuleSet;
use slots::Slots;

/// Bytes of a robots.txt that are read; the RFC asks for at least 500 KiB.
const MAX_ROBOTS_BYTES: usize = 500 * 1024;

/// What robots.txt is asked for as: RFC 9309's `text/plain`, then anything, as a server
/// may label it otherwise.
const ACCEPTED_TYPES: HeaderValue = HeaderValue::from_static("text/plain,*/*;q=0.8");
/// Redirects followed to reach a robots.txt (RFC 9309 §2.3.1.2).
const MAX_ROBOTS_REDIRECTS: usize = 5;
/// The error of a row of a URL robots.txt disallows (`robots`), whoever stores it.
pub const DISALLOWED: &str = "disallowed by robots.txt";

/// What a host's robots.txt says.
#[derive(Debug)]
pub struct Robots {
    rules: Rules,
    /// When this answer stops being trusted and robots.txt is fetched again: by the
    /// monotonic clock, which NTP or a resumed VM does not step, so a wall clock set back
    /// does not keep the rules (or an unavailable robots.txt) for as long as it was off.
    expires: tokio::time::Instant,
    pub crawl_delay: Option<Duration>,
    pub sitemaps: Vec<Url>,
    /// Fetches in a row that found robots.txt unavailable, this one included: each
    /// doubles the wait before the next, so a host that is down or does not answer
    /// hears from the crawler less and less often, however many of its URLs come due.
    failures: u32,
    /// Bytes the rules and the sitemaps hold, which the cache counts against its bound.
    size: usize,
}

#[derive(Debug)]
enum Rules {
    Apply(RuleSet),
    AllowAll,
    /// 5xx or unreachable: nothing may be fetched until a later fetch
    /// succeeds.
    Unavailable(Failure),
}

/// Why robots.txt is unavailable, which the rows of the URLs it keeps unasked say: the
/// `hosts` table keeps only a robots.txt that applies.
#[derive(Debug)]
enum Failure {
    /// Nothing answered: the network error.
    Unanswered(FetchError),
    /// The server answered this status (a 5xx, a 429).
    Answered(u16),
    /// The body came but the parser failed on it.
    Unread,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    Disallowed,
    /// robots.txt could not be had; try the URL again later.
    Unavailable,
}

impl Robots {
    pub fn verdict(&self, url: &Url) -> Verdict {
        match &self.rules {
            Rules::Apply(rules)
                if !rules.allows(&url[Position::BeforePath..Position::AfterQuery]) =>
            {
                Verdict::Disallowed
            }
            Rules::Apply(_) | Rules::AllowAll => Verdict::Allowed,
            Rules::Unavailable(_) => Verdict::Unavailable,
        }
    }

    /// How long until an unavailable robots.txt is asked again (after the crawl's
    /// doubling wait, or the server's `Retry-After`): the host's URLs wait for it too,
    /// rather than spend their attempts before robots.txt is asked again. Rounded up, and
    /// a millisecond more: a retry's due time is kept in whole milliseconds, and a URL
    /// leased a moment before robots.txt's recheck met the old answer and lost an attempt.
    pub fn asked_again_in(&self) -> Option<Duration> {
        matches!(self.rules, Rules::Unavailable(_)).then(|| {
            let left = self
                .expires
                .saturating_duration_since(tokio::time::Instant::now());
            let ms = u64::try_from(left.as_micros().div_ceil(1000)).unwrap_or(u64::MAX);
            Duration::from_millis(ms.saturating_add(1))
        })
    }

    /// Why robots.txt is unavailable, when the host did not answer at all.
    pub fn network_error(&self) -> Option<&FetchError> {
        match &self.rules {
            Rules::Unavailable(Failure::Unanswered(error)) => Some(error),
            _ => None,
        }
    }

    /// The status robots.txt answered, when that made it unavailable (a 5xx, a 429).
    pub fn failed_status(&self) -> Option<u16> {
        match self.rules {
            Rules::Unavailable(Failure::Answered(status)) => Some(status),
            _ => None,
        }
    }

    fn unavailable(failure: Failure, expires: tokio::time::Instant) -> Self {
        Self {
            rules: Rules::Unavailable(failure),
            expires,
            crawl_delay: None,
            sitemaps: Vec::new(),
            failures: 0,
            size: 0,
        }
    }

    /// Interprets a robots.txt response (`Err`: no response at all) from `location`, its
    /// body cut to [`MAX_ROBOTS_BYTES`] already.
    /// Rules are trusted for `ttl`; an unavailable robots.txt is asked for again after
    /// `recheck`. A `Sitemap:` the file names by its path (`Sitemap: /sitemap_index.xml`,
    /// as many small sites write it, though the protocol wants a URL) can mean only the
    /// file beside robots.txt, and is read there, as Scrapy reads it: dropped, the host
    /// seemed to name no sitemap and `/sitemap.xml`, which such a site seldom has, was
    /// asked instead.
    fn from_response(
        response: Result<u16, FetchError>,
        (body, location): (&[u8], &Url),
        agent: &str,
        (ttl, recheck): (Duration, Duration),
        fetched: tokio::time::Instant,
    ) -> Self {
        let allow_all = |expires| Self {
            rules: Rules::AllowAll,
            expires,
            crawl_delay: None,
            sitemaps: Vec::new(),
            failures: 0,
            size: 0,
        };
        let unavailable = |error| Self::unavailable(error, fetched + recheck);
        let status = match response {
            Ok(status) => status,
            Err(error) => return unavailable(Failure::Unanswered(error)),
        };
        match status {
            200..=299 => Self::from_body(body, location, agent, fetched + ttl),
            300..=399 => allow_all(fetched + ttl),
            400..=499 if status != 429 => allow_all(fetched + ttl),
            _ => unavailable(Failure::Answered(status)),
        }
    }

    /// What `body`, a robots.txt served with a 2xx from `location`, says to `agent` (a
    /// product token), trusted until `expires`. Public for the fuzz target.
    pub fn from_body(
        body: &[u8],
        location: &Url,
        agent: &str,
        expires: tokio::time::Instant,
    ) -> Self {
        let parsed = rules::parse(agent, body);
        let sitemaps: Vec<Url> = parsed
            .sitemaps
            .iter()
            .filter_map(|s| urlnorm::resolve(location, s.trim()).ok())
            .collect();
        Self {
            crawl_delay: parsed
                .delay
                .filter(|d| d.is_finite() && *d >= 0.0)
                .map(|d| Duration::from_secs_f32(d.min(86_400.0))),
            // Short `Sitemap:` lines (`Sitemap: /7`) parsed hold twelve times their
            // text: the file's bytes alone, the cache held some 190 MB.
            size: parsed.rules.held() + held_by(&sitemaps),
            sitemaps,
            rules: Rules::Apply(parsed.rules),
            expires,
            failures: 0,
        }
    }
}

/// The robots.txt text the database keeps, to be parsed again on a resume, and read
/// now. PostgreSQL's text refuses NUL, which a UTF-16 file without a byte order mark is
/// full of; the parser reads one as a line's end, so a newline in its place keeps the
/// rules as they were. A byte that is no UTF-8 (a file in Latin-1) is kept as its escape,
/// which a rule reads as the byte (`/caf%E9` for `/caf\xe9`); as U+FFFD it was another
/// rule on a resume.
fn stored_text(body: &[u8]) -> String {
    let mut text = String::with_capacity(body.len());
    for chunk in body.utf8_chunks() {
        text.push_str(chunk.valid());
        for byte in chunk.invalid() {
            // Writing to a String cannot fail.
            let _ = write!(text, "%{byte:02X}");
        }
    }
    text.replace('\0', "\n")
}

/// The part of a robots.txt that is read, as UTF-8 ([`utf8`]): all of it, or when more
/// came than [`MAX_ROBOTS_BYTES`] (`cut`), what came before without the line the limit
/// cuts, which is said, naming the file at `url`: an owner whose rules lie past it sees
/// the crawl go where they forbid. What is left of that line is no rule the site's owner
/// wrote, and may open what the lines before it close (`Allow: /private/` of `Allow:
/// /private/open-day`). Told by the bytes as they came, not as read: a UTF-16 file is
/// half as long in UTF-8, or longer, for letters beyond ASCII.
fn rules_read(body: Vec<u8>, cut: bool, url: &Url) -> Vec<u8> {
    let mut body = utf8(body);
    if cut {
        tracing::warn!(
            "{url} is longer than the {} KiB read of it: its lines past that are not obeyed \
             (RFC 9309 §2.5 lets a crawler stop there)",
            MAX_ROBOTS_BYTES / 1024
        );
        body.truncate(without_cut_line(&body).len());
    }
    body
}

/// `body` as [`RobotsCache::fetch`] reads it, its first [`MAX_ROBOTS_BYTES`], for tests.
#[cfg(test)]
fn as_read(body: &[u8]) -> Vec<u8> {
    let read = &body[..body.len().min(MAX_ROBOTS_BYTES)];
    let location = Url::parse("http://h/robots.txt").expect("a valid URL");
    rules_read(read.to_vec(), read.len() < body.len(), &location)
}

/// `read` without its last line, which a limit cut.
fn without_cut_line(read: &[u8]) -> &[u8] {
    // The line endings the parser knows, and NUL, which it reads as one.
    read.iter()
        .rposition(|b| matches!(b, b'\n' | b'\r' | b'\0'))
        .map_or(&[][..], |end| &read[..=end])
}

/// A host's robots.txt as found for a request.
pub struct Lookup {
    pub robots: Arc<Robots>,
    /// True when this job is to carry the host's sitemaps: on the first lookup since this
    /// process took robots.txt in (from the network or the database) or since sitemaps
    /// were turned on. robots.txt is kept for a day, so sitemaps turned on for a crawl
    /// under way, or lost with a killed run's first page, do not wait for its next
    /// fetch; the frontier drops the sitemaps it already knows.
    pub first: bool,
}

/// robots.txt for every host, fetched at most once at a time per host.
pub struct RobotsCache {
    client: HttpClient,
    network: Arc<NetworkPolicy>,
    min_rate: MinRate,
    /// `fetch.timeout_ms`, for [`HttpClient::send`]'s resend.
    timeout: Duration,
    store: Store,
    gate: Arc<HostGate>,
    politeness: Politeness,
    agent: String,
    ttl: Duration,
    /// How long an unavailable robots.txt waits to be asked again after a first failure
    /// (doubling with each one in a row, see [`retry::doubling`]).
    recheck: Duration,
    /// The longest a server's `Retry-After`, or that doubling, keeps robots.txt from
    /// being asked again.
    max_wait: Duration,
    slots: Slots,
    /// Bumped when sitemaps are turned on: every host's next lookup offers them again.
    offers: AtomicU64,
}

impl RobotsCache {
    pub fn new(
        (client, network, min_rate, timeout): (HttpClient, Arc<NetworkPolicy>, MinRate, Duration),
        store: Store,
        gate: Arc<HostGate>,
        politeness: Politeness,
        user_agent: &str,
        (ttl, recheck, max_wait): (Duration, Duration, Duration),
    ) -> Self {
        Self {
            client,
            network,
            min_rate,
            timeout,
            store,
            gate,
            politeness,
            agent: product_token(user_agent).to_owned(),
            ttl,
            recheck,
            max_wait,
            slots: Slots::default(),
            offers: AtomicU64::new(1),
        }
    }

    /// Every host's next lookup carries its sitemaps again (a reload turned them on).
    pub fn offer_sitemaps_again(&self) {
        self.offers.fetch_add(1, Ordering::SeqCst);
    }

    /// `host`'s robots.txt if this process holds it, still trusted, and no lookup is
    /// fetching it now: what the parser checks a link to another host against, on its
    /// own threads, where waiting for a lock or a fetch would hold pages up. A host not
    /// held has its URLs queued, and refused when leased.
    pub fn held(&self, host: &str) -> Option<Arc<Robots>> {
        let slot = self.slots.existing(host)?;
        let cached = slot.try_lock().ok()?;
        let now = tokio::time::Instant::now();
        cached.robots().filter(|r| r.expires > now).cloned()
    }

    /// The robots.txt governing `url` on `host`: from memory, else from the database,
    /// else fetched (politely, through the gate). Concurrent lookups for one host wait
    /// for a single fetch.
    pub async fn lookup(&self, url: &Url, host: &str) -> Result<Lookup, Error> {
        let slot = self.slots.get(host);
        let mut cached = slot.lock().await;
        let round = self.offers.load(Ordering::SeqCst);
        let first = std::mem::replace(&mut cached.offered, round) != round;
        let now = tokio::time::Instant::now();
        if let Some(robots) = cached.robots().filter(|r| r.expires > now) {
            return Ok(Lookup {
                robots: Arc::clone(robots),
                first,
            });
        }
        // Where robots.txt is, which a `Sitemap:` path is read against.
        let location = url.join("/robots.txt").unwrap_or_else(|_| url.clone());
        if cached.robots().is_none() {
            // One fetched "later" than now was kept by a clock that has moved back since
            // (or ran fast): trusted for `ttl` from then, it could stand for as long as
            // the clock was off. Fetched again, it is kept with this clock's time.
            let stored = self.store.load_robots(host).await?;
            let aged = stored.and_then(|row| {
                let age = SystemTime::now().duration_since(row.fetched_at).ok()?;
                (age < self.ttl).then_some((row, age))
            });
            if let Some((row, age)) = aged {
                let robots = self
                    .interpret(
                        Ok(row.status),
                        (row.body.into_bytes(), location.clone()),
                        age,
                    )
                    .await;
                if robots.expires > now {
                    let robots = Arc::new(robots);
                    self.slots.keep(&mut cached, Arc::clone(&robots));
                    return Ok(Lookup { robots, first });
                }
            }
        }
        let failed_before = cached.robots().map_or(0, |r| r.failures);
        let (response, body, retry_after) = self.fetch(url).await;
        let (fetched_at, answered) = (SystemTime::now(), tokio::time::Instant::now());
        // Read as the database keeps it, so that a resumed crawl reads the same rules.
        let text = stored_text(&body);
        let mut robots = self
            .interpret(
                response.clone(),
                (text.clone().into_bytes(), location),
                Duration::ZERO,
            )
            .await;
        if let Rules::Unavailable(_) = robots.rules {
            robots.failures = failed_before.saturating_add(1);
            robots.expires =
                answered + retry::doubling(self.recheck, robots.failures, self.max_wait);
        }
        if let (Rules::Unavailable(_), Some((server, wait))) = (&robots.rules, retry_after) {
            // An answer that pauses its host and says when to come back: robots.txt is not
            // asked before, and the server that said so (the host a redirect led to, it may
            // be) hears nothing else meanwhile.
            let wait = wait.min(self.max_wait);
            robots.expires = robots.expires.max(answered + wait);
            self.gate.pause(&server, answered + wait);
        }
        if let (Ok(status), false) = (response, matches!(robots.rules, Rules::Unavailable(_))) {
            self.store
                .save_robots(
                    host,
                    &RobotsRow {
                        status,
                        body: text,
                        fetched_at,
                        crawl_delay: robots.crawl_delay,
                    },
                )
                .await?;
        }
        if robots.crawl_delay.is_some() {
            // The robots.txt request itself counts: the next one waits the asked delay.
            let delay = self.politeness.limits(host, robots.crawl_delay).delay;
            self.gate.pause(host, tokio::time::Instant::now() + delay);
        }
        let robots = Arc::new(robots);
        self.slots.keep(&mut cached, Arc::clone(&robots));
        // A fresh robots.txt may name new sitemaps.
        Ok(Lookup {
            robots,
            first: true,
        })
    }

    /// [`Robots::from_response`] off the async threads, which carry every fetch: a
    /// robots.txt of 500 KiB takes milliseconds to parse. A parser that panics leaves the
    /// host's robots.txt unavailable.
    /// `location`: where robots.txt is. `age`: how long ago the response came (a stored
    /// one's, by the wall clock, the only clock the table can keep), which its trust has
    /// already spent.
    async fn interpret(
        &self,
        response: Result<u16, FetchError>,
        (body, location): (Vec<u8>, Url),
        age: Duration,
    ) -> Robots {
        let agent = self.agent.clone();
        let times = (
            self.ttl.saturating_sub(age),
            self.recheck.saturating_sub(age),
        );
        let now = tokio::time::Instant::now();
        tokio::task::spawn_blocking(move || {
            Robots::from_response(response, (&body, &location), &agent, times, now)
        })
        .await
        .unwrap_or_else(|_| Robots::unavailable(Failure::Unread, now + times.1))
    }

    /// Fetches `/robots.txt` of `url`'s origin, following up to five redirects; the
    /// final status (or why nothing answered, or why the body broke off), at most
    /// 500 KiB of body, and the `Retry-After` of an answer that pauses its host (a 429, a
    /// 503, [`retry::pauses_host`]) with the host that sent it, which a redirect may have
    /// led to.
    async fn fetch(
        &self,
        url: &Url,
    ) -> (Result<u16, FetchError>, Vec<u8>, Option<(String, Duration)>) {
        let Ok(mut target) = url.join("/robots.txt") else {
            let error = FetchError {
                kind: ErrorKind::Request,
                message: format!("{url} has no robots.txt address"),
            };
            return (Err(error), Vec::new(), None);
        };
        let mut redirects = 0;
        // Asked again once for a gap in the crawler's running: a crawler stopped over and
        // over would otherwise hold its worker on a host that never answers.
        let mut gap_forgiven = false;
        loop {
            if let Err(message) = self.network.check_url(&target).await {
                let error = FetchError {
                    kind: ErrorKind::AddressRefused,
                    message,
                };
                return (Err(error), Vec::new(), None);
            }
            let host = urlnorm::host_key(&target);
            let limits = self.politeness.limits(&host, None);
            let mut turn = self.gate.wait_turn(&host, limits).await;
            // Held until the body is read, as a page's place is: the fetch worker waits
            // for it, the job having been handed back before when the address was busy.
            let _ip_turn = self
                .client
                .ip_gate()
                .take(&target, limits.concurrency)
                .await;
            let sent_at = Instant::now();
            let (sent, _) = self
                .client
                .send(self.client.get_as(&target, ACCEPTED_TYPES), self.timeout)
                .await;
            turn.answered(limits.delay);
            let mut response = match self.client.accept(sent, |_| None) {
                Ok(response) => response,
                Err(error) if !gap_forgiven && gaps::timed_out_over_gap(&error, sent_at) => {
                    gap_forgiven = true;
                    continue;
                }
                Err(error) => return (Err(error), Vec::new(), None),
            };
            let status = response.status();
            if status.is_redirection() {
                // A 304, 305 or 306 redirects nowhere, whatever `Location` it carries:
                // like a redirect without one, or a sixth (RFC 9309 lets a crawler stop
                // there), it is taken as no robots.txt (all allowed), as a 4xx is, kept
                // with the 3xx it answered.
                let next = url_header(response.headers(), LOCATION)
                    .filter(|_| fetcher::follows_location(status))
                    .filter(|_| redirects < MAX_ROBOTS_REDIRECTS)
                    .and_then(|loc| urlnorm::resolve(&target, &loc).ok());
                match next {
                    Some(mut next) => {
                        // The credentials a redirect writes are not the crawl's to send.
                        urlnorm::strip_foreign_userinfo(&mut next, &target);
                        target = next;
                        redirects += 1;
                        continue;
                    }
                    None => return (Ok(status.as_u16()), Vec::new(), None),
                }
            }
            if !status.is_success() {
                let retry_after = retry::pauses_host(Some(status.as_u16()))
                    .then(|| retry::retry_after(status.as_u16(), response.headers()))
                    .flatten()
                    .filter(|wait| !wait.is_zero())
                    .map(|wait| (host, wait));
                return (Ok(status.as_u16()), Vec::new(), retry_after);
            }
            return match read_body(&mut response, self.min_rate).await {
                Ok((body, cut)) => (Ok(status.as_u16()), rules_read(body, cut, &target), None),
                Err(e) if !gap_forgiven && gaps::timed_out_over_gap(&e, sent_at) => {
                    gap_forgiven = true;
                    continue;
                }
                Err(e) => (Err(e), Vec::new(), None),
            };
        }
    }
}

/// At most [`MAX_ROBOTS_BYTES`] of a robots.txt body, decoded from the coding it came in
/// (read as it came, its rules would be lost), and whether more came. A transfer that
/// breaks off, or a stream that does not decode or stops short of its end, is an error,
/// not an end: the rules that never arrived may be the ones that disallow.
///
/// But for a body that is plain text after all (a server that names a coding for every
/// file, a cache that kept the header and not the compression): its rules are there,
/// as their owner wrote them, and are obeyed. Browsers show an error for such a page,
/// and a page is stored so (`binary`), but robots.txt is no page: unavailable, it kept
/// the whole host from being crawled while it was asked for again and again, and taken
/// as none, it would let the crawler where its owner said not to go.
async fn read_body(
    response: &mut Response,
    min_rate: MinRate,
) -> Result<(Vec<u8>, bool), FetchError> {
    let coding = Coding::left_on(response.headers());
    let undecodable = |e: std::io::Error| FetchError {
        kind: ErrorKind::Body,
        message: format!(
            "robots.txt in {:?} does not decode: {e}",
            coding.as_ref().map(Coding::name).unwrap_or_default()
        ),
    };
    let mut body = Ok(Decoder::of(coding.as_ref(), MAX_ROBOTS_BYTES, 0));
    // The bytes as they came, while the body may yet be plain text.
    let decoded = !matches!(coding, None | Some(Coding::Unknown(_)));
    let mut plain = decoded.then(|| Decoder::of(None, MAX_ROBOTS_BYTES, 0));
    let (started, mut received) = (Instant::now(), 0);
    while let Some(chunk) = min_rate.next_chunk(response, started, received).await? {
        received += chunk.len();
        if let Some(plain) = &mut plain {
            plain.write(&chunk).map_err(undecodable)?;
        }
        if let Ok(decoder) = &mut body {
            if let Err(e) = decoder.write(&chunk) {
                body = Err(e);
            }
        }
        let full = match (&mut body, &mut plain) {
            (Ok(decoder), _) => decoder.overflowed(),
            (Err(_), Some(plain)) => plain.overflowed(),
            (Err(_), None) => true,
        };
        if full {
            break;
        }
    }
    let failed = match body {
        Ok(mut decoder) => {
            let cut = decoder.overflowed();
            match decoder.finish() {
                (_, Some(e)) if !cut => e,
                (text, _) => return Ok((text, cut)),
            }
        }
        Err(e) => e,
    };
    match plain.map(|mut plain| (plain.overflowed(), plain.finish())) {
        Some((cut, (text, _))) if is_plain_text(&text) => {
            tracing::warn!(
                url = %response.url(),
                "robots.txt is plain text under a coding it is not in ({failed}): read as it came"
            );
            Ok((text, cut))
        }
        _ => Err(undecodable(failed)),
    }
}

/// Whether `bytes` are text, UTF-8 with no control characters but line breaks and
/// spaces (a last character cut off by the cap aside): no compressed stream is, past
/// its first few bytes.
fn is_plain_text(bytes: &[u8]) -> bool {
    let valid = match std::str::from_utf8(bytes) {
        Ok(_) => bytes.len(),
        Err(e) if e.error_len().is_none() => e.valid_up_to(),
        Err(_) => return false,
    };
    !String::from_utf8_lossy(&bytes[..valid])
        .chars()
        .any(|c| c.is_control() && !c.is_ascii_whitespace())
}

/// A robots.txt in UTF-16, told by its byte order mark (Windows Notepad's "Unicode"), as
/// UTF-8. RFC 9309 asks for UTF-8, but read as that, each of its characters is a line of
/// its own (the matcher ends a line at a NUL) and no rule is left: the crawl would go
/// where the site's owner closed it. Any other body is left as it came (the matcher
/// skips a UTF-8 byte order mark itself).
fn utf8(body: Vec<u8>) -> Vec<u8> {
    match Encoding::for_bom(&body) {
        Some((encoding, bom)) if encoding != UTF_8 => encoding
            .decode_without_bom_handling(&body[bom..])
            .0
            .into_owned()
            .into_bytes(),
        _ => body,
    }
}

/// `pipecrawl/0.1 (+https://…)` → `pipecrawl`: robots.txt groups and `X-Robots-Tag`
/// lines name the product token. A crawler that takes a browser's product to be served
/// browsers' pages names itself in a comment, as Googlebot and bingbot do:
/// `Mozilla/5.0 (compatible; AcmeBot/1.0; +https://…)` → `AcmeBot`, not `Mozilla`, the
/// name of every browser.
pub(crate) fn product_token(user_agent: &str) -> &str {
    let first = first_token(user_agent).unwrap_or(user_agent);
    if !first.eq_ignore_ascii_case("mozilla") {
        return first;
    }
    user_agent
        .split_once('(')
        .and_then(|(_, comment)| {
            let comment = comment.trim_start();
            comment
                .get(.."compatible".len())
                .filter(|word| word.eq_ignore_ascii_case("compatible"))?;
            let rest = comment["compatible".len()..]
                .trim_start()
                .strip_prefix(';')?;
            first_token(rest.trim_start())
        })
        .unwrap_or(first)
}

/// The name `text` starts with, up to a `/`, a space, or a `;` or `)` ending a comment's
/// entry. `None` if empty.
fn first_token(text: &str) -> Option<&str> {
    text.split(|c: char| matches!(c, '/' | ';' | ')') || c.is_whitespace())
        .next()
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_told_from_a_compressed_stream() {
        assert!(is_plain_text(
            b"User-agent: *\r\n\tDisallow: /caf\xc3\xa9\n"
        ));
        assert!(
            is_plain_text(b"Disallow: /caf\xc3"),
            "a character cut at the cap"
        );
        assert!(!is_plain_text(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"));
        assert!(!is_plain_text(b"Disallow: /\x00"));
        assert!(!is_plain_text(b"Disallow: /caf\xe9/"), "not UTF-8");
    }

    fn robots(status: Option<u16>, body: &str) -> Robots {
        robots_of(status, body.as_bytes())
    }

    fn robots_of(status: Option<u16>, body: &[u8]) -> Robots {
        let status = status.ok_or(FetchError {
            kind: ErrorKind::Connect,
            message: "refused".into(),
        });
        let times = (Duration::from_secs(60), Duration::from_secs(1));
        let location = Url::parse("http://h/robots.txt").unwrap();
        Robots::from_response(
            status,
            (&as_read(body), &location),
            "pipecrawl",
            times,
            tokio::time::Instant::now(),
        )
    }

    fn verdict(r: &Robots, path: &str) -> Verdict {
        r.verdict(&Url::parse(&format!("http://h{path}")).unwrap())
    }

    #[test]
    fn the_stored_text_holds_no_nul_and_the_same_rules() {
        let body = "User-agent: *\0Disallow: /private\0Allow: /private/open";
        let stored = stored_text(body.as_bytes());
        assert!(!stored.contains('\0'));
        for r in [robots(Some(200), body), robots(Some(200), &stored)] {
            assert_eq!(verdict(&r, "/private/x"), Verdict::Disallowed);
            assert_eq!(verdict(&r, "/private/open"), Verdict::Allowed);
            assert_eq!(verdict(&r, "/public"), Verdict::Allowed);
        }
    }

    /// A robots.txt not in the UTF-8 RFC 9309 asks for (Latin-1 here) is read again from
    /// the database as it was first read: kept with U+FFFD for its `é`, a resumed crawl's
    /// rules no longer closed `/caf%E9`, and it fetched the paths they close.
    #[test]
    fn the_stored_text_of_a_file_not_in_utf8_keeps_its_rules() {
        let body = b"User-agent: *\nDisallow: /caf\xe9\n";
        let stored = stored_text(body);
        for r in [
            robots_of(Some(200), body),
            robots_of(Some(200), stored.as_bytes()),
        ] {
            assert_eq!(verdict(&r, "/caf%E9x"), Verdict::Disallowed);
            assert_eq!(verdict(&r, "/cafe"), Verdict::Allowed);
        }
    }

    #[test]
    fn our_group_wins_and_the_longest_match_decides() {
        let r = robots(
            Some(200),
            "User-agent: *\nDisallow: /\n\nUser-agent: pipecrawl\nDisallow: /private\nAllow: /private/open\nCrawl-delay: 2\nSitemap: http://h/sitemap.xml\n",
        );
        assert_eq!(verdict(&r, "/public"), Verdict::Allowed);
        assert_eq!(verdict(&r, "/private/x"), Verdict::Disallowed);
        assert_eq!(verdict(&r, "/private/open/x"), Verdict::Allowed);
        assert_eq!(r.crawl_delay, Some(Duration::from_secs(2)));
        assert_eq!(
            r.sitemaps,
            vec![Url::parse("http://h/sitemap.xml").unwrap()]
        );
    }

    #[test]
    fn client_errors_allow_everything_and_server_errors_nothing() {
        assert_eq!(verdict(&robots(Some(404), ""), "/x"), Verdict::Allowed);
        assert_eq!(verdict(&robots(Some(403), ""), "/x"), Verdict::Allowed);
        assert_eq!(verdict(&robots(Some(503), ""), "/x"), Verdict::Unavailable);
        assert_eq!(verdict(&robots(Some(429), ""), "/x"), Verdict::Unavailable);
        assert_eq!(verdict(&robots(None, ""), "/x"), Verdict::Unavailable);
    }

    #[test]
    fn one_rule_too_large_to_compile_does_not_void_the_file() {
        // A regex matcher refused the whole file when one `$` rule's regex was over its
        // size limit: a long literal, or many wildcards.
        for rule in [
            format!("/{}$", "a".repeat(2_000)),
            format!("/{}$", "a*".repeat(50)),
        ] {
            let r = robots(
                Some(200),
                &format!("User-agent: *\nDisallow: /private\nDisallow: {rule}\nAllow: /private/open\nCrawl-delay: 2\n"),
            );
            assert_eq!(verdict(&r, "/private/x"), Verdict::Disallowed, "{rule}");
            assert_eq!(verdict(&r, "/private/open"), Verdict::Allowed, "{rule}");
            assert_eq!(verdict(&r, "/public"), Verdict::Allowed, "{rule}");
            assert_eq!(r.crawl_delay, Some(Duration::from_secs(2)), "{rule}");
        }
    }

    #[test]
    fn the_line_the_size_limit_cuts_is_left_out() {
        let head = "User-agent: *\nDisallow: /private\n";
        let filler = "#".repeat(MAX_ROBOTS_BYTES - head.len() - "Allow: /private/".len() - 1);
        let body = format!("{head}{filler}\nAllow: /private/open-day\n");
        let r = robots(Some(200), &body);
        assert_eq!(verdict(&r, "/private/x"), Verdict::Disallowed);
        assert_eq!(verdict(&r, "/public"), Verdict::Allowed);
        assert_eq!(
            stored_text(&as_read(body.as_bytes())).len(),
            head.len() + filler.len() + 1
        );
    }

    /// An empty `Disallow:` disallows nothing and weighs nothing, and still ends its
    /// group's `User-agent` lines.
    #[test]
    fn an_empty_disallow_weighs_nothing_and_ends_its_group() {
        for (body, closed) in [
            (
                "User-agent: *\nDisallow:\n\nUser-agent: *\nDisallow: /\n",
                true,
            ),
            ("User-agent: *\nDisallow: /\ndisallow :  # open\n", true),
            (
                "User-agent: pipecrawl\nDisallow:\n\nUser-agent: *\nDisallow: /\n",
                false,
            ),
            ("User-agent: *\nDisallow:\n", false),
        ] {
            let expected = if closed {
                Verdict::Disallowed
            } else {
                Verdict::Allowed
            };
            assert_eq!(
                verdict(&robots(Some(200), body), "/x"),
                expected,
                "{body:?}"
            );
        }
    }

    /// RFC 9309 §2.2.2: a rule and a URL that spell one path differently (an unreserved
    /// character escaped, hex digits in lower case) match. The crawler asks about URLs
    /// spelled its one way, so the rules must be spelled that way too.
    #[test]
    fn rules_match_urls_whatever_their_percent_escapes() {
        assert_verdicts(
            "User-agent: *\nDisallow: /%7Ejoe/\nDisallow: /caf%c3%a9\nDisallow: /foo/bar/%62%61%7A\nDisallow: /a%2fb\nAllow: /%7ejoe/public\n",
            &[
                "http://h/~joe/x",
                "http://h/%7Ejoe/x",
                "http://h/café",
                "http://h/caf%C3%A9",
                "http://h/foo/bar/baz",
                "http://h/a%2Fb",
            ],
            &["http://h/~joe/public", "http://h/a/b"],
        );
    }

    /// That `body` disallows the URLs `blocked` and allows those `open`, each asked
    /// about as the crawler spells it.
    fn assert_verdicts(body: &str, blocked: &[&str], open: &[&str]) {
        let r = robots(Some(200), body);
        let ask = |url: &str| r.verdict(&urlnorm::normalize_str(url).unwrap());
        for url in blocked {
            assert_eq!(ask(url), Verdict::Disallowed, "{url}");
        }
        for url in open {
            assert_eq!(ask(url), Verdict::Allowed, "{url}");
        }
    }

    /// A hostile robots.txt, as large as is read, of rules with wildcards: each was
    /// compiled to a regex, and the file grew the process by some 377 MB while the cache
    /// counted its 500 KiB. What its rules hold must be about their text, and counted.
    #[test]
    fn a_file_of_wildcard_rules_is_held_in_about_its_size_and_counted() {
        if !crate::testing::in_a_process_of_its_own(
            "robots::tests::a_file_of_wildcard_rules_is_held_in_about_its_size_and_counted",
        ) {
            return;
        }
        let mut body = String::from("User-agent: *\n");
        let mut n = 0;
        while body.len() < MAX_ROBOTS_BYTES - 20 {
            body.push_str(&format!("Disallow: /*{n}$\n"));
            n += 1;
        }
        let resident = || {
            std::fs::read_to_string("/proc/self/status")
                .expect("read /proc/self/status")
                .lines()
                .find_map(|line| line.strip_prefix("RssAnon:"))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<usize>()
                        .ok()
                })
                .expect("a RssAnon line")
                * 1024
        };
        // The code that parses is paged in by a first, small file, and is not counted.
        robots(Some(200), "User-agent: *\nDisallow: /*1$\n");
        crate::testing::reset_peak();
        let (peak, before) = (crate::testing::peak_kib(), resident());
        let r = robots(Some(200), &body);
        let held = resident().saturating_sub(before);
        let grew = crate::testing::peak_kib().saturating_sub(peak);
        assert_eq!(verdict(&r, "/x/17"), Verdict::Disallowed);
        assert_eq!(verdict(&r, "/x/17/"), Verdict::Allowed);
        assert!(grew < 8 * 1024, "parsing took {grew} KiB more");
        assert!(
            held <= r.size + 1024 * 1024,
            "the rules hold {held} bytes, counted as {}",
            r.size
        );
    }

    /// RFC 9309 §2.2.3: a rule names a literal `*` or `$` as `%2A` or `%24`, and it
    /// matches the character in a URL, however the URL spells it.
    #[test]
    fn an_escaped_star_or_dollar_in_a_rule_is_that_character() {
        assert_verdicts(
            "User-agent: *\nDisallow: /file-with-a-%2A.html\nDisallow: /price%24\nDisallow: /a%2a$\n",
            &[
                "http://h/file-with-a-*.html",
                "http://h/file-with-a-%2A.html",
                "http://h/price$",
                "http://h/price%24/x",
                "http://h/a*",
            ],
            &[
                "http://h/file-with-a-b.html",
                "http://h/price",
                "http://h/ab",
                "http://h/a*b",
            ],
        );
    }

    /// A URL's `*` and `$` are asked about as the rules write them (`%2A`, `%24`), but they
    /// are one character each: a wildcard's piece (`A`, `4`) must not match half of that
    /// escape, as it did not for Google's parser, which asks about the `*` as it is. In
    /// the escape of a character past ASCII a piece does match: RFC 9309 and Google's
    /// parser compare the escaped forms, and a site's owner checks rules against theirs.
    #[test]
    fn a_wildcards_piece_does_not_match_inside_a_star_or_dollar() {
        assert_verdicts(
            "User-agent: *\nDisallow: /*A\nDisallow: /*4$\nDisallow: /*%2A2\n",
            &[
                "http://h/Apple",
                "http://h/x4",
                "http://h/x*2",
                "http://h/x%2A2",
                "http://h/caf%C3%A9",
            ],
            &[
                "http://h/x*",
                "http://h/x%2A",
                "http://h/price$",
                "http://h/price%24",
            ],
        );
    }

    /// A rule written with a character a URL cannot hold bare (`{` in a path, `'` in a
    /// query) names the URLs a browser or the crawler sends with it escaped.
    #[test]
    fn a_rule_matches_urls_that_escape_what_it_writes_bare() {
        assert_verdicts(
            "User-agent: *\nDisallow: /tpl/{id}\nDisallow: /search?q='\nDisallow: /*.php?v={\n",
            &[
                "http://h/tpl/{id}",
                "http://h/tpl/%7Bid%7D/x",
                "http://h/search?q='x'",
                "http://h/search?q=%27x%27",
                "http://h/a.php?v={1}",
            ],
            &[
                "http://h/tpl/id",
                "http://h/search?q=x",
                "http://h/a.php?v=1",
            ],
        );
    }

    /// A `\` in a path is a `/` to the URL parser (http(s) only, as browsers read it), so
    /// the crawler asks about `/a/b` for `/a\b`: a rule writing one names those URLs. In a
    /// query the parser keeps it, and so does the rule.
    #[test]
    fn a_backslash_in_a_rules_path_is_the_slash_a_url_makes_of_it() {
        assert_verdicts(
            "User-agent: *\nDisallow: /a\\b\\\nDisallow: /*.cgi?q=\\x\n",
            &["http://h/a/b/", "http://h/a\\b\\c", "http://h/s.cgi?q=\\x"],
            &["http://h/a/b", "http://h/s.cgi?q=/x"],
        );
    }

    /// A `Sitemap:` line left empty (a template's, a CMS's with none set) names no
    /// sitemap: read as a URL, it was robots.txt itself, fetched again as a sitemap, and
    /// the host seemed to name one, so `/sitemap.xml` was never asked.
    #[test]
    fn an_empty_sitemap_line_names_no_sitemap() {
        let r = robots(
            Some(200),
            "User-agent: *\nDisallow: /private\nSitemap:\nSitemap:   # none yet\n",
        );
        assert_eq!(r.sitemaps, Vec::<Url>::new());
    }

    /// A site owner copies the user agent from the logs: `User-agent: pipecrawl/0.1`
    /// names us as Google's reference parser reads it (the name up to the first character
    /// a product token cannot hold), while a longer name (`pipecrawl-images`) is another
    /// crawler's.
    #[test]
    fn a_group_naming_our_user_agent_with_its_version_is_ours() {
        for (line, ours) in [
            ("User-agent: PipeCrawl/0.1 (+https://x)", true),
            ("user agent pipecrawl 0.1", true),
            ("User-agent: pipecrawl # us", true),
            ("User-agent: pipecrawl/0.1\r", true),
            ("User-agent: pipecrawl-images", false),
            ("User-agent: pipecrawlers", false),
        ] {
            let r = robots(
                Some(200),
                &format!("User-agent: *\nDisallow: /\n\n{line}\nDisallow: /private\n"),
            );
            let expected = if ours {
                Verdict::Allowed
            } else {
                Verdict::Disallowed
            };
            assert_eq!(verdict(&r, "/public"), expected, "{line}");
            assert_eq!(verdict(&r, "/private"), Verdict::Disallowed, "{line}");
        }
    }

    #[test]
    fn a_name_with_digits_and_dots_is_matched_whole() {
        for agent in ["MJ12bot", "my.bot"] {
            let body = format!("User-agent: *\nDisallow: /\n\nUser-agent: {agent}\nDisallow: /x\n");
            let rules = rules::parse(agent, body.as_bytes()).rules;
            assert!(rules.allows("/public"), "{agent}");
            assert!(!rules.allows("/x"), "{agent}");
        }
    }

    #[test]
    fn the_product_token_is_matched() {
        assert_eq!(product_token("pipecrawl/0.1 (+https://x)"), "pipecrawl");
        assert_eq!(product_token("MyBot"), "MyBot");
        for (agent, token) in [
            (
                "Mozilla/5.0 (compatible; AcmeBot/1.0; +https://x)",
                "AcmeBot",
            ),
            ("Mozilla/5.0 (Compatible;AcmeBot)", "AcmeBot"),
            ("Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0", "Mozilla"),
            ("Mozilla/5.0 (compatible; )", "Mozilla"),
            ("Mozilla", "Mozilla"),
        ] {
            assert_eq!(product_token(agent), token, "{agent}");
        }
    }

    /// A loopback server answering `/robots.txt` with `body`, and how many times it was
    /// asked.
    async fn serve_robots(body: &'static str) -> (Url, Arc<AtomicU64>) {
        let asked = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&asked);
        let app = axum::Router::new().route(
            "/robots.txt",
            axum::routing::get(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                async move { body }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let url = format!("http://{}/", listener.local_addr().expect("its address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (Url::parse(&url).expect("a URL"), asked)
    }

    /// A cache that trusts robots.txt for `ttl`, over a database in `dir`.
    async fn cache(dir: &std::path::Path, ttl: Duration) -> RobotsCache {
        let config = crate::Config::from_toml(
            &format!(
                "seeds = ['http://127.0.0.1/']\n[politeness]\ndelay_ms = 0\n[storage]\ndatabase = {:?}\n",
                dir.join("crawl.db").display().to_string()
            ),
            "test",
        )
        .expect("config");
        let store = Store::open(&config.storage.database)
            .await
            .expect("open the store");
        let loopback = "127.0.0.0/8".parse().expect("a range");
        let network = Arc::new(NetworkPolicy::new(vec![loopback]));
        let rules = Arc::new(crate::host_headers::HostRules::new(
            &config.fetch.host_headers,
        ));
        let client = fetcher::client(&config, Arc::clone(&network), rules).expect("a client");
        RobotsCache::new(
            (
                client,
                network,
                MinRate(config.fetch.min_bytes_per_sec),
                config.fetch.timeout,
            ),
            store,
            Arc::new(HostGate::default()),
            Politeness::new(&config.politeness),
            "test",
            (ttl, Duration::from_secs(1), Duration::from_secs(60)),
        )
    }

    /// The rules expire by the monotonic clock: a wall clock stepped back (NTP, a VM
    /// resumed) must not keep them for as long as it was off, nor one stepped forward
    /// have them fetched again before their time. Tokio's paused clock moves only the
    /// monotonic one, as a clock stepped back by as much would.
    #[tokio::test]
    async fn rules_expire_by_the_monotonic_clock_not_the_wall_clock() {
        let (url, asked) = serve_robots("User-agent: *\nDisallow: /private\n").await;
        let dir = tempfile::tempdir().expect("a temp dir");
        let ttl = Duration::from_secs(60);
        let cache = cache(dir.path(), ttl).await;
        let host = urlnorm::host_key(&url);
        for _ in 0..2 {
            cache.lookup(&url, &host).await.expect("a lookup");
        }
        assert_eq!(
            asked.load(Ordering::SeqCst),
            1,
            "fetched once within its TTL"
        );

        tokio::time::pause();
        tokio::time::advance(ttl + Duration::from_secs(1)).await;
        tokio::time::resume();
        cache.lookup(&url, &host).await.expect("a lookup");
        assert_eq!(
            asked.load(Ordering::SeqCst),
            2,
            "fetched again once its TTL has passed"
        );
    }
}
