//! The parse pool: OS threads turning fetched HTML into a title, links and the new URLs
//! worth crawling.
//!
//! Parsing is the crawl's CPU work, so it runs on plain threads, as many as the cores
//! ([`html`] reads a page). Scope and priority are decided here too, and links to URLs the
//! frontier already has are dropped here (see [`SeenUrls`]), keeping the single writer's
//! work to inserting rows.

use encoding_rs::Encoding;
use foldhash::{HashMap, HashSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use url::Url;
use xxhash_rust::xxh3::{xxh3_128, Xxh3};

use crate::frontier::seen::SeenUrls;
use crate::invisible;
use crate::metrics;
use crate::page::{
    CrawlJob, Discovered, ErrorKind, FetchError, Fetched, JobKind, Link, PageRecord,
};
use crate::plural::Count;
use crate::queue;
use crate::recrawl::RecrawlPolicy;
use crate::robots::{Robots, RobotsCache, Verdict};
use crate::scope::{self, Scope, SharedScope};
use crate::stages::{Phase, Stage, Stages};
use crate::traps::Traps;
use crate::{charset, html, sitemap, urlnorm};

/// Sitemap index levels followed below the sitemaps robots.txt names.
const MAX_SITEMAP_NESTING: u32 = 2;
/// The depth of a page a sitemap lists.
const SITEMAP_PAGE_DEPTH: u32 = 1;

pub struct ParsePool;

impl ParsePool {
    /// Starts `workers` threads; each stops when its input closes or its output is gone.
    pub fn spawn(
        workers: usize,
        fetched: queue::Receiver<Fetched>,
        records: queue::Sender<PageRecord>,
        rules: LinkRules,
        stages: &Stages,
    ) -> std::io::Result<Vec<std::thread::JoinHandle<()>>> {
        (0..workers)
            .map(|i| {
                let worker = ParseWorker {
                    fetched: fetched.clone(),
                    records: records.clone(),
                    rules: rules.clone(),
                    stages: stages.clone(),
                };
                std::thread::Builder::new()
                    .name(format!("parse-{i}"))
                    .spawn(move || worker.run())
            })
            .collect()
    }
}

/// What decides which URLs a page adds to the frontier, shared by the pool's threads.
#[derive(Clone)]
pub struct LinkRules {
    pub scope: SharedScope,
    pub recrawl: RecrawlPolicy,
    /// URLs already offered to the frontier. Checked here, before a link becomes a
    /// candidate (a URL copy, a host key, trap checks, a priority), because most links
    /// on most pages lead to URLs found before: 2.3 M links and 50,000 URLs in the
    /// benchmark's throughput crawl. Every URL it admits is in a record on its way to
    /// the writer, which commits all records before it stops.
    pub seen: Arc<Mutex<SeenUrls>>,
    /// The product token of `fetch.user_agent`: the name an `X-Robots-Tag` line
    /// addresses this crawler by (`acmebot: noindex`).
    pub agent: Arc<str>,
    /// The fetchers' robots.txt cache, when the crawl obeys robots.txt: a URL found on
    /// another host than its page's is checked against that host's rules if they are held.
    pub robots: Option<Arc<RobotsCache>>,
    /// `fetch.max_redirects`: a page's refresh is followed as its redirect for as many
    /// hops in a row (see [`Offer::refresh`]).
    pub max_redirects: u32,
}

struct ParseWorker {
    fetched: queue::Receiver<Fetched>,
    records: queue::Sender<PageRecord>,
    rules: LinkRules,
    stages: Stages,
}

impl ParseWorker {
    fn run(self) {
        let mut timer = self.stages.timer(Stage::Parse);
        while let Ok((fetched, its_bytes)) = self.fetched.recv() {
            timer.enter(Phase::Working);
            let started = Instant::now();
            let record = to_record(fetched, &self.rules);
            drop(its_bytes);
            metrics::parsed(started.elapsed());
            timer.enter(Phase::Blocked);
            let weight = record.weight();
            if self.records.send(record, weight).is_err() {
                break;
            }
            timer.enter(Phase::Waiting);
        }
    }
}

/// Builds the page's row: parses HTML bodies and sitemaps, and turns links, sitemap
/// entries and a redirect target into frontier candidates that are in scope.
pub fn to_record(f: Fetched, rules: &LinkRules) -> PageRecord {
    let scope = &rules.scope.get();
    let offer = Offer {
        scope,
        seen: &rules.seen,
        max_redirects: rules.max_redirects,
    };
    let content_hash = f.body.as_deref().map(|b| format!("{:032x}", xxh3_128(b)));
    let mut record = PageRecord {
        status: f.status,
        content_type: f.content_type,
        title: None,
        location: None,
        changed_location_cookies: f.changed_location_cookies,
        bytes: f.bytes,
        truncated: f.truncated,
        content_hash,
        etag: f.etag,
        last_modified: f.last_modified,
        fetched_at: f.fetched_at,
        elapsed_ms: f.elapsed_ms,
        error: f.error,
        canonical: None,
        noindex: false,
        nofollow: false,
        links: Vec::new(),
        refreshed_to: None,
        links_left_out: None,
        sitemap_urls: None,
        discovered: Vec::new(),
        retry_in: f.retry_in,
        host_pause: f.host_pause,
        not_modified: false,
        changed: true,
        recrawl_in: None,
        failed_revisit: false,
        job: f.job,
    };
    // robots.txt's sitemaps come with the first job of its host, whatever that job's
    // fate: robots.txt is not read again for a day, so a retried first page must not
    // take them down with it.
    for sitemap in &f.sitemaps {
        if scope.admits_sitemap(sitemap, &record.job.url) {
            record.discovered.extend(offer.stripping(
                sitemap,
                &record.job.url,
                0,
                0,
                JobKind::Sitemap,
            ));
        }
    }
    if record.retry_in.is_some() {
        return record;
    }
    record.not_modified = record.status == Some(304) && record.job.validated().is_some();
    if record.not_modified {
        record.changed = false;
        schedule_revisit(&mut record, &rules.recrawl);
        return record;
    }
    // The header is how a document with no `<meta>` (a PDF, an image) says `noindex`: it
    // binds what is never read too. The row says what the page declared whether or not
    // the crawl obeys it (`politeness.respect_meta_robots`).
    if let (JobKind::Page, Some(tag)) = (record.job.kind, f.x_robots_tag.as_deref()) {
        (record.noindex, record.nofollow) = robots_directives(tag, &rules.agent);
    }
    // The fetcher reads a body only for successful HTML and for sitemaps. A sitemap
    // that broke off on its last attempt (cut, or slower than the timeout) yields the
    // URLs before the break, as one whose XML breaks off does, and its row keeps what
    // broke it; a page is not parsed from a part.
    let broke_off = record.job.kind == JobKind::Sitemap
        && record
            .error
            .as_ref()
            .is_some_and(|e| matches!(e.kind, ErrorKind::Body | ErrorKind::Timeout));
    if let (true, Some(body)) = (record.error.is_none() || broke_off, &f.body) {
        match record.job.kind {
            JobKind::Page => parse_page(
                &mut record,
                body,
                f.refresh.as_deref(),
                (&offer, &rules.agent),
            ),
            JobKind::Sitemap => {
                let fetch_error = record.error.take();
                let cut = fetch_error.is_some() || record.truncated;
                parse_sitemap(&mut record, body, cut, &offer);
                record.error = fetch_error.or(record.error.take());
            }
        }
    }
    // A document with no `<head>` (a PDF) names its canonical URL in a `Link` header. A
    // page with the `<link>` element too is read by the element, its own word. Only a
    // page answered as one, as the element is read only from one: a 404's, a redirect's
    // or a 500's header (an error template's) names no canonical URL of the page.
    let answered = record.error.is_none() && record.status.is_some_and(|s| (200..300).contains(&s));
    let by_header = record.job.kind == JobKind::Page && record.canonical.is_none() && answered;
    if let Some(href) = f.canonical_link.as_deref().filter(|_| by_header) {
        let page = &record.job.url;
        record.canonical = urlnorm::resolve(page, href).ok().map(|mut url| {
            strip_found(&mut url, page, &scope.traps);
            url
        });
    }
    // Browsers act on a `Refresh` header whatever the document: a tracker answering 200
    // with `Refresh: 0; url=…` and no body, or a PDF moved so, leads on as a 302 does.
    // A page read took its header already.
    let unread = record.job.kind == JobKind::Page && answered && f.body.is_none();
    if let (true, Some(refresh)) = (unread, f.refresh.as_deref()) {
        follow_refresh_header(&mut record, refresh, &offer);
    }
    // The location is stored as the crawl follows it, without session ids: the URL
    // fetched next, so the redirect's `final_url` names the page stored there.
    let mut location = f.location;
    if let Some(target) = &mut location {
        strip_moved(target, &record.job.url, &scope.traps);
    }
    if let (None, Some(target)) = (&record.error, &location) {
        let job = &record.job;
        let admitted = match job.kind {
            // The file moved (to `www.`, to a CDN): read where it is, as it was admitted.
            JobKind::Sitemap => true,
            JobKind::Page => {
                let told = job
                    .previous
                    .as_ref()
                    .is_some_and(|p| p.location.as_deref() == Some(target.as_str()));
                admits_move(scope, job, target, told)
            }
        };
        if admitted {
            record.discovered.extend(offer.stripped(
                target,
                job.depth,
                job.redirect_hops + 1,
                job.kind,
            ));
        }
    }
    record.location = location;
    if let Some(robots) = &f.robots {
        mark_disallowed(&mut record, robots, rules);
    }
    // Judged on the record as stored: where a redirect leads is known only now.
    record.changed = record
        .job
        .previous
        .as_ref()
        .is_none_or(|p| p.differs_from(&record));
    schedule_revisit(&mut record, &rules.recrawl);
    record
}

/// Marks the URLs `record` found that their host's robots.txt disallows: the fetcher
/// would refuse them as surely, and queued, they spent the host's
/// `traps.max_pages_per_host` on URLs never requested (a shop's `/cart?item=…` on every
/// page, or a blog's links to it, cut its pages past them). On the page's own host by
/// `robots`, its robots.txt as the page's request obeyed it; on another by its rules if
/// the cache holds them ([`RobotsCache::held`]): a host not yet asked has its URLs
/// queued, and refused when leased. Not those `[recrawl]` revisits: refused when leased,
/// their rows come due again and ask robots.txt anew, so that a path the site opens later
/// is crawled.
fn mark_disallowed(record: &mut PageRecord, robots: &Robots, rules: &LinkRules) {
    let host: &str = &record.job.host;
    // The rules of hosts other than the page's, looked up once a page: few on most.
    let mut others: HashMap<String, Option<Arc<Robots>>> = HashMap::default();
    for found in &mut record.discovered {
        let disallows = |r: &Robots| r.verdict(&found.url) == Verdict::Disallowed;
        let disallowed = if found.host == host {
            disallows(robots)
        } else if let Some(cache) = &rules.robots {
            if !others.contains_key(&found.host) {
                others.insert(found.host.clone(), cache.held(&found.host));
            }
            others
                .get(&found.host)
                .and_then(Option::as_deref)
                .is_some_and(disallows)
        } else {
            false
        };
        found.disallowed = disallowed && !rules.recrawl.revisits(&found.url);
    }
}

/// When the page is due again, and whether a failed revisit leaves it as stored.
fn schedule_revisit(record: &mut PageRecord, recrawl: &RecrawlPolicy) {
    // A 429 or a 408 failed as much as a 503: taken for a change, it would halve an
    // adaptive interval, asking a site that asked to be left alone twice as often.
    let transient =
        crate::retry::is_transient(record.status, record.error.as_ref().map(|e| e.kind));
    let failed = transient || record.status.is_none_or(|s| s >= 500);
    let previous = record.job.previous.as_ref();
    // The site gave no answer, for now or for good: its name no longer resolving, its
    // certificate no longer verifying, its address now refused say nothing of the page,
    // which stays as the last answer left it. Nor does robots.txt refusing it now: the
    // page was not asked, and wiped it would look removed.
    let unanswered = record.status.is_none()
        && record.error.as_ref().is_some_and(|e| {
            matches!(
                e.kind,
                ErrorKind::Dns
                    | ErrorKind::Tls
                    | ErrorKind::AddressRefused
                    | ErrorKind::Request
                    | ErrorKind::Robots
            )
        });
    record.failed_revisit = previous.is_some_and(|p| p.answered) && (transient || unanswered);
    record.recrawl_in = recrawl.next(
        &record.job.url,
        previous.and_then(|p| p.interval),
        (!failed).then_some(record.changed),
    );
}

/// Reads a page's title and links, `refresh` being its `Refresh` header, and `agent` the
/// name its robots `<meta>` tags address this crawler by; its `X-Robots-Tag` is read
/// already.
fn parse_page(
    record: &mut PageRecord,
    body: &[u8],
    refresh: Option<&str>,
    (offer, agent): (&Offer<'_>, &str),
) {
    let scope = offer.scope;
    let page = charset::decode(body, record.content_type.as_deref());
    let extracted = match catch_unwind(AssertUnwindSafe(|| {
        let syntax = html::Syntax::of(record.content_type.as_deref());
        extract(
            &page.text,
            &record.job.url,
            (page.encoding, syntax),
            (refresh, &scope.traps),
            agent,
        )
    })) {
        Ok(extracted) => extracted,
        Err(_) => {
            record.error = Some(FetchError {
                kind: ErrorKind::Parse,
                message: "the HTML parser failed on this page".to_owned(),
            });
            return;
        }
    };
    if let Some(meta) = &extracted.meta_robots {
        let (noindex, nofollow) = robots_directives(meta, agent);
        record.noindex |= noindex;
        record.nofollow |= nofollow;
    }
    let links = extracted.links;
    record.links_left_out = Some(extracted.links_left_out);
    let said = record.job.previous.as_ref().and_then(|p| p.links_left_out);
    if extracted.links_left_out > 0 && said != Some(extracted.links_left_out) {
        // At info, once a page: pages past the cap are few, and each is worth knowing of;
        // not again at each revisit that finds as many left out, which is no news (a
        // listing generated afresh at each visit is another body each time), but again
        // when the count moves (the page grew, or a reload lowered the cap).
        tracing::info!(
            "{} has {} more than traps.max_links_per_page ({}) keeps: they are not \
             rows and are not followed from it",
            record.job.url,
            Count(extracted.links_left_out, "link"),
            scope.traps.max_links_per_page()
        );
    }
    let depth = record.job.depth + 1;
    // extract stripped the session ids already. The refresh first: nearer the seeds than
    // a link to the same URL, it is the one the seen cache keeps. Not a link but where
    // the page moves, it is followed on a `nofollow` page, as a 3xx's location is (but
    // past `fetch.max_redirects`, where it is a link).
    let nofollow = scope.obeys(record.nofollow);
    // The same body as the last visit's refreshes to the same place.
    let unchanged = record
        .job
        .previous
        .as_ref()
        .is_some_and(|p| p.content_hash.is_some() && p.content_hash == record.content_hash);
    if let Some((moved, found)) = offer.refresh(&record.job, &links, nofollow, unchanged) {
        record.refreshed_to = moved;
        record.discovered.extend(found);
    }
    if !nofollow {
        record
            .discovered
            .extend(offer.pages(&followed(scope, &links, depth), depth));
    }
    record.canonical = extracted.canonical;
    // noindex keeps the page itself out of the results, not what it links to: its links
    // are followed (unless nofollow), so they are rows, or a link checker would miss a
    // 404 found through a `noindex, follow` archive page.
    if !scope.obeys(record.noindex) {
        record.title = extracted.title;
    }
    record.links = links;
}

/// Follows the `Refresh` header of a document not read (not HTML, or no body): its URL
/// is the document's one link, `rel` = `refresh`, followed as a read page's is.
fn follow_refresh_header(record: &mut PageRecord, refresh: &str, offer: &Offer<'_>) {
    let read = (encoding_rs::UTF_8, html::Syntax::Html);
    let links = extract(
        "",
        &record.job.url,
        read,
        (Some(refresh), &offer.scope.traps),
        "",
    )
    .links;
    let nofollow = offer.scope.obeys(record.nofollow);
    // The same document as the last visit's refreshes to the same place.
    let unchanged = record
        .job
        .previous
        .as_ref()
        .is_some_and(|p| !p.differs_from(record));
    if let Some((moved, found)) = offer.refresh(&record.job, &links, nofollow, unchanged) {
        record.refreshed_to = moved;
        record.discovered.extend(found);
    }
    record.links = links;
}

/// The targets of `links` the crawl follows when found at `depth`, each once; the
/// page's refresh is not one of them ([`Offer::refresh`]).
fn followed<'l>(scope: &Scope, links: &'l [Link], depth: u32) -> Vec<&'l Url> {
    let mut seen = HashSet::default();
    links
        .iter()
        .filter(|link| {
            !link.refresh
                && scope.follows(link.rel.as_deref())
                && seen.insert(link.target.as_str())
                && scope.admits(&link.target, depth)
        })
        .map(|link| &link.target)
        .collect()
}

/// Whether the crawl follows `job`'s page to `target` where it moves (by a 3xx or a
/// refresh): at the page's depth, and a seed's (or where one moved) whatever `include`
/// and `exclude` say. Only named hosts refuse where a seed moves, and the crawl then ends
/// there: most often the apex named and `www.` moved to, which a warning says, once:
/// not again when a revisit finds the seed moving there still (`told`), which at every
/// `recrawl.interval_s` of a service running for weeks said nothing new.
fn admits_move(scope: &Scope, job: &CrawlJob, target: &Url, told: bool) -> bool {
    if !job.is_seed_or_its_redirect() {
        return scope.admits(target, job.depth);
    }
    let admitted = scope.admits_seed_redirect(target);
    if !admitted && !told {
        tracing::warn!(
            "{} (a seed, or where one redirects) redirects to {target}, on a host \
             `scope.hosts` leaves out: not followed",
            job.url
        );
    }
    admitted
}

/// Moves a page to `depth`, nearer the seeds than it was leased at: its URL was found
/// there while the page was on its way, and `max_depth` counts the shortest path. What
/// it found moves with it: its links to one step from it (those `max_depth` left out at
/// the old depth too, as the links stored tell them), where it redirects to its depth.
/// Links found again are not asked of the seen cache: at worst an upsert too many.
pub fn found_nearer(record: &mut PageRecord, depth: u32, scope: &Scope) {
    let old = record.job.depth;
    if depth >= old || record.job.kind != JobKind::Page {
        return;
    }
    record.job.depth = depth;
    for found in &mut record.discovered {
        // A link is a level deeper (a refresh past `fetch.max_redirects` too, its hops
        // still counted); a redirect's target, a refresh's, at the page's depth.
        let moved = match found.redirect_hops {
            _ if found.kind == JobKind::Page && found.depth == old + 1 => depth + 1,
            0 => continue,
            _ if found.depth == old => depth,
            _ => continue,
        };
        found.depth = moved;
        found.priority = scope.priority(&found.url, moved);
    }
    if scope.obeys(record.nofollow) {
        return;
    }
    let left_out: Vec<Discovered> = {
        let known: HashSet<&str> = record.discovered.iter().map(|d| d.url.as_str()).collect();
        followed(scope, &record.links, depth + 1)
            .into_iter()
            .filter(|url| !known.contains(url.as_str()))
            .map(|url| scope.candidate(url, depth + 1, 0, JobKind::Page))
            .collect()
    };
    record.discovered.extend(left_out);
}

/// Reads a sitemap's URLs; `cut`: the body is the part before its answer broke off or
/// was cut at the limit.
fn parse_sitemap(record: &mut PageRecord, body: &[u8], cut: bool, offer: &Offer<'_>) {
    let scope = offer.scope;
    let at = &record.job.url;
    let sitemap = if cut {
        sitemap::parse_part(body, at)
    } else {
        sitemap::parse(body, at)
    };
    record.error = sitemap.error.map(|message| FetchError {
        kind: ErrorKind::Parse,
        message,
    });
    // The site names its pages here: each is one step from it, as a seed's links are,
    // however deep the index that led to this sitemap (`max_depth = 1` dropped a nested
    // sitemap's pages and kept a flat one's).
    let mut listed = 0;
    for url in sitemap
        .pages
        .iter()
        .filter(|u| scope.admits(u, SITEMAP_PAGE_DEPTH))
    {
        listed += 1;
        record.discovered.extend(offer.stripping(
            url,
            &record.job.url,
            SITEMAP_PAGE_DEPTH,
            0,
            JobKind::Page,
        ));
    }
    record.sitemap_urls = Some(listed);
    // Sitemap indexes nest, counted by the sitemaps' depth; two levels below robots.txt
    // is as deep as real sites go. An index lists sitemaps on its own host (the protocol
    // allows no other), or, read on an in-scope host, wherever that site keeps them, as
    // its robots.txt may: an index on another host cannot lead the crawl further afield.
    if record.job.depth >= MAX_SITEMAP_NESTING {
        // A site's deeper sitemaps would otherwise be missing from the crawl with no row,
        // log or count to say why; one listed by a shallower index too is read from there.
        if let (None, false) = (&record.error, sitemap.sitemaps.is_empty()) {
            record.error = Some(FetchError {
                kind: ErrorKind::Parse,
                message: nested_too_deep(sitemap.sitemaps.len()),
            });
        }
        return;
    }
    let depth = record.job.depth + 1;
    let index = &record.job.url;
    let named = |url: &&Url| url.host_str() == index.host_str() || scope.admits_sitemap(url, index);
    for url in sitemap.sitemaps.iter().filter(named) {
        record
            .discovered
            .extend(offer.stripping(url, &record.job.url, depth, 0, JobKind::Sitemap));
    }
}

/// Why an index as deep as sitemaps are read leaves the `listed` sitemaps it names unread.
fn nested_too_deep(listed: usize) -> String {
    let listed = crate::plural::Count(u64::try_from(listed).unwrap_or(u64::MAX), "sitemap");
    format!(
        "the sitemap index is {MAX_SITEMAP_NESTING} levels below one robots.txt names (or \
         /sitemap.xml), the deepest read: the {listed} it lists are not read from here"
    )
}

/// `noindex` / `nofollow` in a robots meta tag or header (`none` is both). A header
/// addressed to one crawler (`googlebot: noindex, nofollow`) is for that crawler only, up
/// to the next crawler's name or the end of its line (header lines come joined by `\n`):
/// the directives after a name are all its own. This crawler's name is `agent`. A name
/// is one word: `06 Nov 2050 08`, the part of an `unavailable_after` date
/// (`Sun, 06 Nov 2050 08:49:37 GMT`) after its comma up to a colon, names no crawler.
fn robots_directives(value: &str, agent: &str) -> (bool, bool) {
    let (mut noindex, mut nofollow) = (false, false);
    for line in value.lines() {
        let mut ours = true;
        for part in line.split(',') {
            let part = part.trim();
            let directive = match part.split_once(':') {
                Some((name, rest)) if is_crawler_name(name.trim()) => {
                    ours = name.trim().eq_ignore_ascii_case(agent);
                    rest.trim()
                }
                _ => part,
            };
            if !ours {
                continue;
            }
            for word in directive.split_ascii_whitespace() {
                match word.to_ascii_lowercase().as_str() {
                    "noindex" => noindex = true,
                    "nofollow" => nofollow = true,
                    "none" => (noindex, nofollow) = (true, true),
                    _ => {}
                }
            }
        }
    }
    (noindex, nofollow)
}

/// Whether `name`, before a colon in a robots directive, names a crawler: one word, and
/// not a directive written `name: value`.
fn is_crawler_name(name: &str) -> bool {
    /// Directives written `name: value`, which name no crawler.
    const VALUED: [&str; 4] = [
        "max-snippet",
        "max-image-preview",
        "max-video-preview",
        "unavailable_after",
    ];
    !name.contains(|c: char| c.is_ascii_whitespace())
        && !VALUED.iter().any(|v| name.eq_ignore_ascii_case(v))
}

/// What a URL found on `page` (a link, a sitemap's entry) loses before it is stored or
/// queued: what [`strip_moved`] strips, and its query put in order, under
/// `traps.sort_query`.
fn strip_found(url: &mut Url, page: &Url, traps: &Traps) {
    strip_moved(url, page, traps);
    traps.sort_query(url);
}

/// What a redirect's target loses: the credentials `page` wrote in it and its session
/// ids. Its query stays in the server's order: a server redirecting to its own order of
/// parameters would else be sent back to the URL that moved, a loop.
fn strip_moved(url: &mut Url, page: &Url, traps: &Traps) {
    urlnorm::strip_foreign_userinfo(url, page);
    traps.strip_session_ids(url);
}

/// Turns URLs a page leads to into frontier candidates: in scope already, and new to the
/// seen cache.
struct Offer<'a> {
    scope: &'a Scope,
    seen: &'a Mutex<SeenUrls>,
    max_redirects: u32,
}

impl Offer<'_> {
    /// A candidate for `url`, found on `from`, once its session ids and the credentials
    /// `from` wrote in it are stripped.
    fn stripping(
        &self,
        url: &Url,
        from: &Url,
        depth: u32,
        redirect_hops: u32,
        kind: JobKind,
    ) -> Option<Discovered> {
        let mut url = url.clone();
        strip_found(&mut url, from, &self.scope.traps);
        self.stripped(&url, depth, redirect_hops, kind)
    }

    /// A candidate for `url`, stripped of session ids already, unless the seen cache
    /// says the frontier has it at this depth or nearer the seeds.
    fn stripped(
        &self,
        url: &Url,
        depth: u32,
        redirect_hops: u32,
        kind: JobKind,
    ) -> Option<Discovered> {
        let new = self.seen().admit(url, depth);
        new.then(|| self.candidate(url, depth, redirect_hops, kind))
    }

    /// Candidates for a page's links (stripped of session ids already), all found at
    /// `depth`. The seen cache is asked about them under one lock: taken once a link, the
    /// lock moved between the two parse threads' cores 45 times a page on the benchmark
    /// site, and the function taking it had the most samples of the parse threads' own
    /// code (6% of theirs, `perf record` of the throughput crawl). Once a page: their
    /// CPU 5.95 → 5.78 s (means of six interleaved pairs of that crawl).
    fn pages(&self, urls: &[&Url], depth: u32) -> Vec<Discovered> {
        let new: Vec<bool> = {
            let mut seen = self.seen();
            urls.iter().map(|url| seen.admit(url, depth)).collect()
        };
        urls.iter()
            .zip(new)
            .filter(|&(_, new)| new)
            .map(|(url, _)| self.candidate(url, depth, 0, JobKind::Page))
            .collect()
    }

    /// Where `job`'s page refreshes to, among its `links`, if it is followed: the URL it
    /// moves to when followed as its redirect, and the candidate (none for a URL seen
    /// already). A refresh moves the page, as browsers act on it and Scrapy follows it:
    /// like a 3xx's target, it is at the page's depth, one hop further along its chain,
    /// and a seed's is crawled whatever `include` and `exclude` say, on any host unless
    /// `scope.hosts` names them (its host then joins the scope, [`PageRecord::moved_to`]).
    /// Past `fetch.max_redirects` hops in a row it is a link, a level deeper, the moves
    /// in a row still counted: its page's refresh is a link too, and a 3xx from it one
    /// redirect too many, so that a chain with no end (a page reloading itself with a new
    /// query) costs a page a level and ends at `max_depth` or the trap rules as a path of
    /// links does; a link then, it is not followed on a page whose `nofollow` binds.
    /// `unchanged`: the page is the last visit's, whose refresh was told of then.
    fn refresh(
        &self,
        job: &CrawlJob,
        links: &[Link],
        nofollow: bool,
        unchanged: bool,
    ) -> Option<(Option<Url>, Option<Discovered>)> {
        let target = &links.iter().find(|link| link.refresh)?.target;
        if job.redirect_hops >= self.max_redirects {
            let depth = job.depth + 1;
            return (!nofollow && self.scope.admits(target, depth)).then(|| {
                let found = self.stripped(target, depth, job.redirect_hops, JobKind::Page);
                (None, found)
            });
        }
        admits_move(self.scope, job, target, unchanged).then(|| {
            let hops = job.redirect_hops + 1;
            let found = self.stripped(target, job.depth, hops, JobKind::Page);
            (Some(target.clone()), found)
        })
    }

    /// The cache stays usable if a thread panicked while holding it: at worst it forgets
    /// a URL, which costs one more upsert.
    fn seen(&self) -> MutexGuard<'_, SeenUrls> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn candidate(&self, url: &Url, depth: u32, redirect_hops: u32, kind: JobKind) -> Discovered {
        self.scope.candidate(url, depth, redirect_hops, kind)
    }
}

/// What a page says about itself and where it points.
#[derive(Debug, Default)]
pub struct Extracted {
    pub title: Option<String>,
    pub links: Vec<Link>,
    /// The content of `<meta name="robots">` and of those naming this crawler.
    pub meta_robots: Option<String>,
    pub canonical: Option<Url>,
    /// Distinct (target, anchor text) pairs past `traps.max_links_per_page`: not in `links`.
    pub links_left_out: u64,
}

/// The title (whitespace collapsed) and the first `traps.max_links_per_page` links of
/// distinct (target, anchor text), resolved against `<base href>` or the page URL, their
/// query strings spelled in the page's `encoding` and their session ids stripped, the
/// markup read in `syntax`. Links to the page itself, to schemes other than http(s) and
/// holding a template's placeholder ([`is_placeholder`]) are left out; a link without text
/// is named by its images' alt texts, else by the elements its `aria-labelledby` names (a
/// page that has such links is read twice more: once for their labels, which may come
/// after them, and once for its links knowing them), else by its `aria-label` or `title`.
/// `agent` is the name robots `<meta>` tags address this crawler by.
pub fn extract(
    html: &str,
    page_url: &Url,
    (encoding, syntax): (&'static Encoding, html::Syntax),
    (refresh_header, traps): (Option<&str>, &Traps),
    agent: &str,
) -> Extracted {
    let mut links = Links::new(page_url, encoding, traps, (None, None));
    let reading = (syntax, agent);
    // What a browser asks of a refresh's URL before it acts on it: that it parses (the
    // page's encoding spells a query's bytes, and fails no URL).
    let parses = |href: &str, base_href: Option<&str>| {
        page_base(page_url, base_href, encoding).join(href).is_ok()
    };
    let refresh = (refresh_header, &parses as &html::UrlParses<'_>);
    let mut page = html::read_page_with(html, reading, refresh, &mut |anchor, base| {
        links.take(anchor, base);
    });
    let base = page_base(page_url, page.base_href.as_deref(), encoding);
    let labels_wanted = !links.wanted.is_empty();
    if (links.read_before_base && base != *page_url) || labels_wanted {
        // Rare: a `<base>` after links, which it governs too, or links named by elements
        // (`aria-labelledby`), which may come after them. Read again knowing both.
        let labels = labels_wanted.then(|| html::read_labels(html, syntax, &links.wanted));
        links = Links::new(page_url, encoding, traps, (Some(base.clone()), labels));
        links.label_budget = html.len();
        page = html::read_page_with(html, reading, refresh, &mut |anchor, _| {
            links.take(anchor, None);
        });
    }
    let title = page.title.and_then(|t| shown_text(&t));
    // One line each, as header lines are: a `name: value` one names a crawler up to its
    // end (see `robots_directives`), not through the metas after it.
    let meta_robots = (!page.meta_robots.is_empty()).then(|| page.meta_robots.join("\n"));
    // A found URL like a link's, stored and exported, so stripped as a link is.
    let canonical = page.canonical_href.and_then(|href| {
        let mut url = urlnorm::resolve_in(&base, &href, encoding).ok()?;
        strip_found(&mut url, page_url, traps);
        Some(url)
    });
    Extracted {
        title,
        links: links.kept,
        meta_robots,
        canonical,
        links_left_out: links.left_out.len() as u64,
    }
}

/// As the HTML standard has it: a base that does not parse, or is `data:` or
/// `javascript:`, leaves the page's own URL the base; a query in it is spelled in the
/// page's `encoding`, as the standard parses it with the document's.
fn page_base(page_url: &Url, href: Option<&str>, encoding: &'static Encoding) -> Url {
    href.and_then(|href| urlnorm::join_in(page_url, href, encoding).ok())
        .filter(|base| !matches!(base.scheme(), "data" | "javascript"))
        .unwrap_or_else(|| page_url.clone())
}

/// A page's links as they are read: the first `traps.max_links_per_page` of each distinct
/// (target, anchor text) are kept, and only they, however many the page has; the others
/// are counted.
struct Links<'a> {
    page_url: &'a Url,
    encoding: &'static Encoding,
    traps: &'a Traps,
    /// The base links resolve against, once known.
    base: Option<Url>,
    /// Whether a link was read before any `<base>`, which governs it too.
    read_before_base: bool,
    kept: Vec<Link>,
    /// A hash of each kept link's (target, anchor text), to its index in `kept`.
    index: HashMap<u128, usize>,
    /// A hash of each distinct (target, anchor text) past the cap, so that the row can say
    /// how many links its page has that are not rows. Half of [`link_key`] (a collision
    /// among a page's links is some 10^-9 likely): 8 bytes each, at most some 500,000 of
    /// them in the most `fetch.max_body_bytes` holds of `<a href=N>`, gone with the page.
    left_out: HashSet<u64>,
    /// The ids whose elements name links with nothing to read (`aria-labelledby`), at
    /// most [`MAX_LABEL_IDS`]: noted on the first read, when the labels are not known.
    wanted: HashSet<String>,
    /// The labels of those ids, once read.
    labels: Option<HashMap<String, String>>,
    /// The bytes of labels links may still be given. One element may name every link on
    /// the page: without it, a page of 20,000 links named by one 4 KiB paragraph gave 80 MB
    /// of anchor text from 1.7 MB; with it, labels add no more than the page holds, as
    /// text, alt texts and attributes, read once each, cannot either.
    label_budget: usize,
}

/// The ids a page's links are named by that are read ([`html::read_labels`]): each label
/// read may be [`MAX_TEXT_BYTES`] long.
const MAX_LABEL_IDS: usize = 1024;

impl<'a> Links<'a> {
    fn new(
        page_url: &'a Url,
        encoding: &'static Encoding,
        traps: &'a Traps,
        (base, labels): (Option<Url>, Option<HashMap<String, String>>),
    ) -> Self {
        Self {
            page_url,
            encoding,
            traps,
            base,
            read_before_base: false,
            kept: Vec::new(),
            index: HashMap::default(),
            left_out: HashSet::default(),
            wanted: HashSet::default(),
            labels,
            label_budget: 0,
        }
    }

    /// Keeps `anchor`'s link unless it is a repeat (a `nofollow` link kept then takes the
    /// `rel` of a repeat that is followed: the row stands for both, and the page does
    /// invite a crawler there; any link kept takes a refresh's, as the page moves there,
    /// which [`Offer::refresh`] reads from it) or the page has given enough. `base_href`:
    /// the page's `<base href>` as read so far.
    fn take(&mut self, anchor: html::Anchor, base_href: Option<&str>) {
        if let (None, Some(href)) = (&self.base, base_href) {
            self.base = Some(page_base(self.page_url, Some(href), self.encoding));
        }
        if is_placeholder(&anchor.href) {
            return;
        }
        let own_base;
        let base = match &anchor.base {
            html::Base::Page => {
                self.read_before_base |= self.base.is_none();
                self.base.as_ref().unwrap_or(self.page_url)
            }
            html::Base::ReadBefore(href) => {
                own_base = page_base(self.page_url, href.as_deref(), self.encoding);
                &own_base
            }
        };
        let Ok(mut target) = urlnorm::resolve_in(base, &anchor.href, self.encoding) else {
            return;
        };
        if target == *self.page_url {
            return;
        }
        strip_found(&mut target, self.page_url, self.traps);
        if target == *self.page_url {
            return;
        }
        let rel = anchor
            .rel
            .map(|r| stored_text(&r))
            .filter(|r| !r.is_empty());
        let anchor_text = [&anchor.text, &anchor.image_alts]
            .into_iter()
            .find_map(|text| shown_text(text))
            .or_else(|| self.labelled_by(anchor.labelled_by.as_deref()?))
            .or_else(|| shown_text(&anchor.label))
            .unwrap_or_default();
        let link = Link {
            target,
            anchor_text,
            rel,
            refresh: anchor.refresh,
        };
        let key = link_key(&link);
        match self.index.get(&key).map(|&i| &mut self.kept[i]) {
            Some(kept) if kept.target == link.target && kept.anchor_text == link.anchor_text => {
                if link.refresh || (is_nofollow(kept) && !is_nofollow(&link)) {
                    kept.rel = link.rel;
                    kept.refresh |= link.refresh;
                }
            }
            // Another link of the same hash (never seen in practice) is kept unindexed.
            Some(_) => self.keep(link, key, false),
            None => self.keep(link, key, true),
        }
    }

    /// The label the elements of `ids` (`aria-labelledby`) give a link with nothing to
    /// read, their labels joined by a space, while the page's budget for them lasts;
    /// before they are read, `None`, and the ids are noted.
    fn labelled_by(&mut self, ids: &str) -> Option<String> {
        let Some(labels) = &self.labels else {
            for id in ids.split_ascii_whitespace() {
                if self.wanted.len() >= MAX_LABEL_IDS {
                    break;
                }
                if !self.wanted.contains(id) {
                    self.wanted.insert(id.to_owned());
                }
            }
            return None;
        };
        if self.label_budget == 0 {
            return None;
        }
        let mut joined = String::new();
        for label in ids.split_ascii_whitespace().filter_map(|id| labels.get(id)) {
            if joined.len() > MAX_TEXT_BYTES {
                break;
            }
            joined.push(' ');
            joined.push_str(label);
        }
        let label = shown_text(&joined)?;
        // Spent once a label does not fit: the links after it are not read for labels.
        let left = self.label_budget.checked_sub(label.len());
        self.label_budget = left.unwrap_or(0);
        left.map(|_| label)
    }

    /// Keeps `link`, whose [`link_key`] is `key` (`indexed`: looked up by it later), or
    /// counts it as left out past the cap.
    fn keep(&mut self, link: Link, key: u128, indexed: bool) {
        if self.kept.len() >= self.traps.max_links_per_page() {
            // Truncated on purpose: the low half of a good 128-bit hash.
            self.left_out.insert(key as u64);
            return;
        }
        if indexed {
            self.index.insert(key, self.kept.len());
        }
        self.kept.push(link);
    }
}

/// Whether `href` holds a template's placeholder left unfilled: `${…}` (a JavaScript
/// template literal) or `{{…}}` (Mustache, Handlebars, AngularJS, Vue, Jinja). The page's
/// scripts fill it in before a browser follows the link, so as written it names no page,
/// and fetched it is a 404 the site does not have for its readers.
fn is_placeholder(href: &str) -> bool {
    [("${", "}"), ("{{", "}}")]
        .into_iter()
        .any(|(open, close)| {
            href.split_once(open)
                .is_some_and(|(_, rest)| rest.contains(close))
        })
}

/// (target, anchor text) hashed; a byte UTF-8 never holds keeps the two apart.
fn link_key(link: &Link) -> u128 {
    let mut hasher = Xxh3::new();
    hasher.update(link.target.as_str().as_bytes());
    hasher.update(&[0xff]);
    hasher.update(link.anchor_text.as_bytes());
    hasher.digest128()
}

fn is_nofollow(link: &Link) -> bool {
    link.rel.as_deref().is_some_and(scope::rel_is_nofollow)
}

/// The longest title, anchor text or `rel` kept, in bytes. An unclosed `<title>` or `<a>`
/// makes the rest of the page its text: megabytes, which PostgreSQL's search index
/// refuses (a row's words must fit in 1 MB) and no reader wants. Real ones are far shorter.
pub const MAX_TEXT_BYTES: usize = 4096;

/// [`stored_text`], unless it shows nothing: blank but for no-break spaces and the like,
/// or invisible characters an editor leaves (a zero-width space, TinyMCE's byte order
/// mark), which name no page and leave a link to be named by its image.
fn shown_text(text: &str) -> Option<String> {
    let text = stored_text(text);
    text.contains(|c: char| !c.is_whitespace() && !invisible::is(c))
        .then_some(text)
}

/// Runs of ASCII whitespace as single spaces, trimmed, and cut to [`MAX_TEXT_BYTES`] at a
/// word's end (mid-word, at a character's end, when one word alone is longer). Inline
/// markup puts nothing between its pieces of text (`Java<b>Script</b>` is one word); the
/// edges of blocks put a space. Only ASCII whitespace, as `document.title` and CSS collapse
/// it: a no-break space (`1&nbsp;000&nbsp;€`) or an ideographic one (a Japanese title's
/// full-width separator) is a character the page shows.
fn stored_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_TEXT_BYTES));
    for word in text.split_ascii_whitespace() {
        let room = MAX_TEXT_BYTES - out.len();
        let needed = word.len() + usize::from(!out.is_empty());
        if needed > room {
            if out.is_empty() {
                let mut end = room;
                while !word.is_char_boundary(end) {
                    end -= 1;
                }
                out.push_str(&word[..end]);
            }
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traps() -> Traps {
        Traps::new(
            &crate::Config::from_toml("seeds = ['http://h/']", "t")
                .unwrap()
                .traps,
        )
    }

    fn extract(html: &str, url: &str) -> Extracted {
        super::extract(
            html,
            &Url::parse(url).unwrap(),
            (encoding_rs::UTF_8, html::Syntax::Html),
            (None, &traps()),
            "pipecrawl",
        )
    }

    /// Links past the cap are counted as rows are: each distinct (target, anchor text)
    /// once, a repeat of a kept one or of one left out not at all, and a page read again
    /// for its labels counted once.
    #[test]
    fn links_past_the_cap_are_counted_once_each() {
        let config = "seeds = ['http://h/']\n[traps]\nmax_links_per_page = 2";
        let traps = Traps::new(&crate::Config::from_toml(config, "t").unwrap().traps);
        let read = |html: &str| {
            super::extract(
                html,
                &Url::parse("http://h/").unwrap(),
                (encoding_rs::UTF_8, html::Syntax::Html),
                (None, &traps),
                "pipecrawl",
            )
        };
        let links = "<a href=/a>A</a><a href=/b>B</a><a href=/c>C</a><a href=/c>C</a>\
                     <a href=/a>A</a><a href=/c>other</a><a href=/d>D</a>";
        let e = read(links);
        assert_eq!((e.links.len(), e.links_left_out), (2, 3));
        let labelled = format!("{links}<a href=/e aria-labelledby=l></a><p id=l>E</p>");
        let e = read(&labelled);
        assert_eq!((e.links.len(), e.links_left_out), (2, 4));
        assert_eq!(read("<a href=/a>A</a><a href=/a>A</a>").links_left_out, 0);
    }

    fn pairs(e: &Extracted) -> Vec<(String, String)> {
        e.links
            .iter()
            .map(|l| (l.target.to_string(), l.anchor_text.clone()))
            .collect()
    }

    #[test]
    fn title_and_anchor_texts_have_whitespace_collapsed() {
        let e = extract(
            "<title>\n  A   <b>page</b> </title><a href='/x'> one\n <em>two</em> </a>",
            "http://h/",
        );
        assert_eq!(e.title.as_deref(), Some("A <b>page</b>"));
        assert_eq!(pairs(&e), vec![("http://h/x".into(), "one two".into())]);
    }

    #[test]
    fn no_break_spaces_are_text_but_name_nothing_alone() {
        let e = extract(
            "<title>&nbsp;A\u{3000}B \t C&nbsp;&nbsp;</title><a href='/x'>1&nbsp;000</a>\
             <a href='/y'> &nbsp; <img alt='Logo'></a><title>&nbsp;</title>",
            "http://h/",
        );
        assert_eq!(e.title.as_deref(), Some("\u{a0}A\u{3000}B C\u{a0}\u{a0}"));
        assert_eq!(
            pairs(&e),
            vec![
                ("http://h/x".into(), "1\u{a0}000".into()),
                ("http://h/y".into(), "Logo".into()),
            ]
        );
        assert_eq!(extract("<title>&nbsp;</title>", "http://h/").title, None);
    }

    #[test]
    fn an_unclosed_title_or_link_keeps_a_bounded_text() {
        let words = "mot ".repeat(5_000);
        let e = extract(&format!("<a href='/x'>{words}<title>{words}"), "http://h/");
        let title = e.title.expect("a title");
        assert_eq!(title.len(), MAX_TEXT_BYTES - 1, "whole words only");
        assert!(title.starts_with("mot mot") && title.ends_with(" mot"));
        assert_eq!(e.links[0].anchor_text, title);

        let word = "é".repeat(MAX_TEXT_BYTES);
        let e = extract(&format!("<title>{word}</title>"), "http://h/");
        let title = e.title.expect("a title");
        assert_eq!(
            title.len(),
            MAX_TEXT_BYTES,
            "one long word, cut between characters"
        );
        assert!(title.chars().all(|c| c == 'é'));
    }

    #[test]
    fn a_legacy_pages_link_asks_in_the_pages_encoding() {
        let mut body = b"<meta charset=shift_jis><a href='/search?q=".to_vec();
        body.extend_from_slice(&encoding_rs::SHIFT_JIS.encode("日本").0);
        body.extend_from_slice(b"'>search</a>");
        let page = crate::charset::decode(&body, Some("text/html"));
        let e = super::extract(
            &page.text,
            &Url::parse("http://h/").unwrap(),
            (page.encoding, html::Syntax::Html),
            (None, &traps()),
            "pipecrawl",
        );
        assert_eq!(e.links[0].target.as_str(), "http://h/search?q=%93%FA%96{");
    }

    #[test]
    fn text_split_by_inline_markup_is_not_given_spaces_it_lacks() {
        let e = extract(
            "<a href='/x'>Java<b>Script</b>, 2<sup>nd</sup>\n<i> ed.</i></a><a href='/y'><img alt='A'><img alt='B'></a>",
            "http://h/",
        );
        assert_eq!(
            pairs(&e),
            vec![
                ("http://h/x".into(), "JavaScript, 2nd ed.".into()),
                ("http://h/y".into(), "A B".into()),
            ]
        );
    }

    #[test]
    fn links_resolve_against_base_href() {
        let e = extract(
            "<head><base href='/docs/'></head><a href='a.html'>A</a><a href='../b'>B</a><a href='//o.test/c'>C</a>",
            "http://h/index.html",
        );
        assert_eq!(
            pairs(&e),
            vec![
                ("http://h/docs/a.html".into(), "A".into()),
                ("http://h/b".into(), "B".into()),
                ("http://o.test/c".into(), "C".into()),
            ]
        );
    }

    /// Links are handed over as they are read, so a `<base>` after them, which governs
    /// them too, has the page read again.
    #[test]
    fn a_base_after_the_links_governs_them_too() {
        let links = "<a href='a'>A</a><a href='/b'>B</a>";
        let before = extract(&format!("<base href='/docs/'>{links}"), "http://h/x/");
        let after = extract(&format!("{links}<base href='/docs/'>"), "http://h/x/");
        assert_eq!(pairs(&after), pairs(&before));
        assert_eq!(pairs(&after)[0].0, "http://h/docs/a");
    }

    /// Past the cap, repeats still count: a `nofollow` link kept takes the `rel` of a
    /// followed repeat found after the page gave enough links.
    #[test]
    fn a_page_keeps_its_first_links_up_to_the_cap_and_repeats_still_merge() {
        let mut html = "<a href='/0' rel=nofollow>0</a>".to_owned();
        for i in 1..20_000 {
            html.push_str(&format!("<a href='/{i}'>{i}</a>"));
        }
        html.push_str("<a href='/0'>0</a>");
        let e = extract(&html, "http://h/");
        assert_eq!(e.links.len(), 10_000);
        assert_eq!(e.links[9_999].target.as_str(), "http://h/9999");
        assert_eq!(e.links[0].rel, None);
    }

    /// A browser takes the first HTML `<base>` with an href; one inside `<svg>` is SVG's
    /// own element, which moves no link.
    #[test]
    fn a_base_inside_svg_is_not_the_pages_base() {
        let e = extract(
            "<svg><base href='http://o.test/x/'></svg><base href='/docs/'><a href='a'>A</a>",
            "http://h/index.html",
        );
        assert_eq!(pairs(&e), vec![("http://h/docs/a".into(), "A".into())]);
    }

    /// The HTML standard ignores a `data:` or `javascript:` base, as browsers do: the
    /// page's links still resolve against the page.
    #[test]
    fn a_data_or_javascript_base_leaves_links_on_the_page_url() {
        for base in ["javascript:void(0)", "data:text/html,x"] {
            let e = extract(
                &format!("<base href='{base}'><a href='a'>A</a>"),
                "http://h/dir/page",
            );
            assert_eq!(
                pairs(&e),
                vec![("http://h/dir/a".into(), "A".into())],
                "{base}"
            );
        }
    }

    #[test]
    fn self_links_other_schemes_and_repeats_are_not_links() {
        let e = extract(
            "<a href='#top'>top</a><a href='mailto:x@y'>m</a><a href='javascript:go()'>j</a>\
             <a href='/p#s'>P</a><a href='/p'>P</a><a href='/p'>again</a><a href='/p'><img alt='pic'></a>",
            "http://h/",
        );
        assert_eq!(
            pairs(&e),
            vec![
                ("http://h/p".into(), "P".into()),
                ("http://h/p".into(), "again".into()),
                ("http://h/p".into(), "pic".into()),
            ]
        );
    }

    /// A page rendered on the server with a placeholder left unfilled (AngularJS's
    /// `href="{{url}}"` before it runs, a JavaScript template literal's `${id}` copied
    /// into the markup) names no page: a browser running the page's scripts fills it in
    /// first. Each was fetched and stored as a 404 (`/item/$%7Bid%7D`).
    #[test]
    fn template_placeholders_are_not_links() {
        let e = extract(
            "<a href='/item/${id}'>a</a><a href='{{url}}'>b</a><a href='/p/{{ item.slug }}'>c</a>\
             <iframe src='/embed/${frame}'></iframe><a href='/price/$5'>d</a><a href='/x{y}'>e</a>\
             <a href='/real'>f</a>",
            "http://h/",
        );
        assert_eq!(
            pairs(&e),
            vec![
                ("http://h/price/$5".into(), "d".into()),
                ("http://h/x%7By%7D".into(), "e".into()),
                ("http://h/real".into(), "f".into()),
            ]
        );
    }

    /// An image map's `<area>` has no text; its `alt` is its label (the HTML standard
    /// requires one on every area with an href), as an image's is an image link's. One
    /// without is named as a link is, and so is a frame.
    #[test]
    fn an_image_maps_areas_are_named_by_their_alt_text() {
        let e = extract(
            "<img src='plan.png' usemap='#plan'><map name='plan'>\
             <area shape='rect' coords='0,0,9,9' href='/north' alt=' North  wing '>\
             <area shape='rect' coords='9,9,19,19' href='/south'>\
             <area href='/east' aria-label='East wing' title='Tip'>\
             <area href='/west' title='West wing'>\
             <area href='/up' aria-labelledby='up'></map><p id='up'>Upstairs</p>\
             <iframe src='/map' aria-label='Floor map' title='Tip'></iframe>",
            "http://h/",
        );
        assert_eq!(
            pairs(&e),
            vec![
                ("http://h/north".into(), "North wing".into()),
                ("http://h/south".into(), String::new()),
                ("http://h/east".into(), "East wing".into()),
                ("http://h/west".into(), "West wing".into()),
                ("http://h/up".into(), "Upstairs".into()),
                ("http://h/map".into(), "Floor map".into()),
            ]
        );
    }

    /// An icon link (`<a aria-label="Twitter"><i class="icon"></i></a>`) has no text
    /// and no image: its `aria-label`, what a screen reader says for it, names it. Text
    /// or an image's alt, what a reader sees, comes first.
    #[test]
    fn a_link_with_nothing_to_read_is_named_by_its_aria_label() {
        let e = extract(
            "<a href='/t' aria-label=' Follow us  on Twitter '><i class='icon-t'></i></a>\
             <a href='/x' aria-label='Label'>Text</a>\
             <a href='/y' aria-label='Label'><img src='y.png' alt='Alt'></a>\
             <a href='/z' aria-label=''></a>",
            "http://h/",
        );
        assert_eq!(
            pairs(&e),
            vec![
                ("http://h/t".into(), "Follow us on Twitter".into()),
                ("http://h/x".into(), "Text".into()),
                ("http://h/y".into(), "Alt".into()),
                ("http://h/z".into(), String::new()),
            ]
        );
    }

    /// What a page marks `aria-hidden="true"` in a link is decoration (an icon font's
    /// glyph, an arrow, an icon's SVG with its tooltip), and what it marks `hidden` is
    /// not shown: neither names the link, which its `aria-label`, else its `title`,
    /// names instead, as a screen reader does.
    #[test]
    fn a_links_hidden_content_leaves_it_to_its_label() {
        let e = extract(
            "<a href='/next' aria-label='Next'><span aria-hidden='true'>&raquo;</span></a>\
             <a href='/close' title='Close'><span aria-hidden=TRUE><span>&times;</span>x</span>\
             <svg aria-hidden='true'><title>icon-x</title></svg><img alt='x' aria-hidden=true></a>\
             <a href='/buy'>Buy<span hidden>Secret</span> now<span aria-hidden='false'>!</span></a>\
             <a href='/t' aria-label=' ' title='Tip'><i aria-hidden=true></i></a>\
             <a href='/open' aria-label='Open'><b aria-hidden=true>&#9776;</a><a href='/after'>after</a>",
            "http://h/",
        );
        assert_eq!(
            pairs(&e),
            vec![
                ("http://h/next".into(), "Next".into()),
                ("http://h/close".into(), "Close".into()),
                ("http://h/buy".into(), "Buy now!".into()),
                ("http://h/t".into(), "Tip".into()),
                ("http://h/open".into(), "Open".into()),
                ("http://h/after".into(), "after".into()),
            ]
        );
    }

    /// A link with nothing to read that `aria-labelledby` names is named by the elements
    /// of those ids, before the link or after it, their labels joined by a space, before
    /// its `aria-label`; a link with text or an image's alt keeps it. A labelling element
    /// hidden as a whole (a label for screen readers only) still names it; what is hidden
    /// inside one does not; its `aria-label` or an image's alt is its label; the first
    /// element of an id is the one named, and one in a `<template>` is not on the page.
    #[test]
    fn a_link_with_nothing_to_read_is_named_by_what_aria_labelledby_names() {
        let e = extract(
            "<h2 id='title'>Red\n <b>shoes</b><script>x()</script></h2>\
             <template><span id='late'>template</span></template>\
             <a href='/a' aria-labelledby=' title  late ' aria-label='Label'><i></i></a>\
             <a href='/b' aria-labelledby='title'>Own text</a>\
             <a href='/c' aria-labelledby='title'><img alt='Alt'></a>\
             <a href='/d' aria-labelledby='missing' aria-label='Label'></a>\
             <a href='/e' aria-labelledby='hidden'><span aria-hidden=true>&raquo;</span></a>\
             <a href='/f' aria-labelledby='named img'></a>\
             <a href='/g' aria-labelledby='in'><span id='in' hidden>Inside</span></a>\
             <span id='late'>More<div>than</div>this</span><span id='late'>second</span>\
             <span id='hidden' hidden>Next <i aria-hidden=true>&raquo;</i>page</span>\
             <p id='named' aria-label='Own label'>text</p><img id='img' alt='Photo'>",
            "http://h/",
        );
        assert_eq!(
            pairs(&e),
            vec![
                ("http://h/a".into(), "Red shoes More than this".into()),
                ("http://h/b".into(), "Own text".into()),
                ("http://h/c".into(), "Alt".into()),
                ("http://h/d".into(), "Label".into()),
                ("http://h/e".into(), "Next page".into()),
                ("http://h/f".into(), "Own label Photo".into()),
                ("http://h/g".into(), "Inside".into()),
            ]
        );
    }

    /// What names a link may hold it (the link itself, a card around it) or hold the
    /// whole page, or a page may name thousands of ids on elements nested in one another:
    /// a label is cut at a word's end as anchor text is, all labels together are no longer
    /// than the page, and the work stays bounded (see also `html`'s
    /// `labels_read_at_once_are_bounded`).
    #[test]
    fn a_labelling_element_that_holds_the_link_or_the_page_is_bounded() {
        let words = "word ".repeat(2 * MAX_TEXT_BYTES);
        let ids: Vec<String> = (0..3 * MAX_LABEL_IDS).map(|i| format!("n{i}")).collect();
        let nested: String = ids.iter().map(|id| format!("<b id='{id}'>{id} ")).collect();
        let e = extract(
            &format!(
                "<div id='card'><a href='/card' aria-labelledby='card'><i></i></a>\
                 <h3>Blue hat</h3></div>\
                 <a href='/self' id='self' aria-labelledby='self' title='Menu'>\
                 <i aria-hidden=true>&#9776;</i></a>\
                 <a href='/big' aria-labelledby='big'></a><p id='big'>{words}<p>after\
                 <a href='/many' aria-labelledby='{}'></a>{nested}",
                ids.join(" ")
            ),
            "http://h/",
        );
        let texts: Vec<&str> = e.links.iter().map(|l| l.anchor_text.as_str()).collect();
        assert_eq!(texts[..2], ["Blue hat", "Menu"]);
        assert!(texts[2].len() <= MAX_TEXT_BYTES && texts[2].len() > MAX_TEXT_BYTES - 5);
        assert!(texts[2].starts_with("word word") && texts[2].ends_with("word"));
        assert!(texts[3].starts_with("n0 n1 n2 n3"));
        assert!(texts[3].len() <= MAX_TEXT_BYTES);
        // One element naming every link gives them no more text than the page holds; the
        // links past that are named as if it named none.
        let links: String = (0..2_000)
            .map(|i| format!("<a href='/l{i}' aria-labelledby='big' title='Tip'></a>"))
            .collect();
        let page = format!("{links}<p id='big'>{words}");
        let e = extract(&page, "http://h/");
        let labelled: Vec<usize> = e.links.iter().map(|l| l.anchor_text.len()).collect();
        assert!(labelled[0] > MAX_TEXT_BYTES - 5);
        assert!(labelled.iter().filter(|&&n| n > 3).sum::<usize>() <= page.len());
        assert_eq!(e.links[1_999].anchor_text, "Tip");
    }

    /// An image with no alt (or a blank one) and an `aria-label` names a link by the
    /// label, as it names the image for a screen reader; an alt comes first.
    #[test]
    fn an_images_aria_label_names_it_when_it_has_no_alt() {
        let e = extract(
            "<a href='/logo'><img src='l.png' aria-label='Home'></a>\
             <a href='/blank'><img alt=' ' aria-label='Blank alt'></a>\
             <a href='/both'><img alt='Alt' aria-label='Label'></a>\
             <a href='/none'><img src='n.png'></a>",
            "http://h/",
        );
        assert_eq!(
            pairs(&e),
            vec![
                ("http://h/logo".into(), "Home".into()),
                ("http://h/blank".into(), "Blank alt".into()),
                ("http://h/both".into(), "Alt".into()),
                ("http://h/none".into(), "".into()),
            ]
        );
    }

    /// An icon drawn as an image (an inline `<svg>`, an element of role `img`) is named
    /// by its `aria-label` in place of what it holds, as an image is by its alt: it names
    /// a link with no text, and a label that holds it. A generic element's `aria-label`
    /// is not a name (ARIA prohibits it there): its text stays the link's. An `<svg>` or
    /// `<math>` written as an empty tag, hidden or named, hides nothing after it.
    #[test]
    fn an_icons_aria_label_is_its_alt_text() {
        let e = extract(
            "<a href='/cart'><svg role='img' aria-label='Cart'><title>icon</title></svg></a>\
             <a href='/t'><i class='fa' role='IMG presentation' aria-label=' Twitter '>\
             &#xf099;</i></a>\
             <a href='/buy'>Buy <svg aria-label='Bag'></svg>now</a>\
             <a href='/svg'><svg><title>Plain</title></svg></a>\
             <a href='/span'><span aria-label='Ignored'>Text</span></a>\
             <a href='/by' aria-labelledby='l'></a><h2 id='l'><svg aria-label='Home'/>page</h2>\
             <a href='/m' aria-label='Go'><math aria-hidden=true/>Math</a>",
            "http://h/",
        );
        assert_eq!(
            pairs(&e),
            vec![
                ("http://h/cart".into(), "Cart".into()),
                ("http://h/t".into(), "Twitter".into()),
                ("http://h/buy".into(), "Buy now".into()),
                ("http://h/svg".into(), "Plain".into()),
                ("http://h/span".into(), "Text".into()),
                ("http://h/by".into(), "Home page".into()),
                ("http://h/m".into(), "Math".into()),
            ]
        );
    }

    /// HTML's `<p>` holds no block: another `<p>`, or a block's start tag, ends a `<p>`
    /// left open, as the tree builder closes it. A hidden one ends there too, and the
    /// text after it is the link's again.
    #[test]
    fn a_hidden_paragraph_left_open_ends_where_html_ends_it() {
        let e = extract(
            "<a href='/next' aria-label='Go'><p aria-hidden=true>&raquo;<p>Next page</a>\
             <a href='/more' aria-label='Go'><p hidden>icon<div>More</div></a>\
             <a href='/both' aria-label='Go'><p hidden>a<p aria-hidden=true>b<h2>Both</h2></a>\
             <a href='/in' aria-label='Go'><p hidden>x<b>y</b><span>z</span></p>Shown</a>",
            "http://h/",
        );
        assert_eq!(
            pairs(&e),
            vec![
                ("http://h/next".into(), "Next page".into()),
                ("http://h/more".into(), "More".into()),
                ("http://h/both".into(), "Both".into()),
                ("http://h/in".into(), "Shown".into()),
            ]
        );
    }

    #[test]
    fn robots_meta_and_canonical_are_read() {
        let e = extract(
            "<head><meta name='ROBOTS' content='noindex'><link rel='canonical' href='/main'></head>",
            "http://h/page?session=1",
        );
        assert_eq!(e.meta_robots.as_deref(), Some("noindex"));
        assert_eq!(
            e.canonical.map(String::from).as_deref(),
            Some("http://h/main")
        );
    }

    /// Each robots `<meta>` is read on its own: a `name: value` word in one (a misspelt
    /// directive, `nosnippet: yes`) was taken for a crawler's name whose directives ran on
    /// into the next `<meta>`, whose `nofollow` was then not this crawler's.
    #[test]
    fn each_robots_meta_is_read_on_its_own() {
        let e = extract(
            "<meta name=robots content='nosnippet: yes'><meta name=robots content='nofollow'>",
            "http://h/",
        );
        let meta = e.meta_robots.expect("the metas");
        assert_eq!(directives(&meta), (false, true), "{meta:?}");
    }

    fn directives(value: &str) -> (bool, bool) {
        robots_directives(value, "pipecrawl")
    }

    #[test]
    fn robots_directives_are_understood() {
        assert_eq!(directives("noindex, follow"), (true, false));
        assert_eq!(directives("NONE"), (true, true));
        assert_eq!(directives("googlebot: nofollow"), (false, false));
        assert_eq!(directives("pipecrawl: nofollow"), (false, true));
        assert_eq!(
            directives("unavailable_after: 25 Jun 2010 15:00:00 PST"),
            (false, false)
        );
        assert_eq!(directives("otherbot: noindex, nofollow"), (false, false));
        assert_eq!(directives("noindex, otherbot: nofollow"), (true, false));
        assert_eq!(
            directives("otherbot: nofollow, pipecrawl: noindex"),
            (true, false)
        );
        assert_eq!(directives("max-snippet: 20, nofollow"), (false, true));
        assert_eq!(directives("googlebot: noindex\nnofollow"), (false, true));
        assert_eq!(
            directives("unavailable_after: Sun, 06 Nov 2050 08:49:37 GMT, noindex"),
            (true, false)
        );
    }

    fn rules() -> LinkRules {
        let config = crate::Config::from_toml(r#"seeds = ["http://h/"]"#, "t").unwrap();
        LinkRules {
            scope: SharedScope::new(Scope::new(&config, &[])),
            recrawl: RecrawlPolicy::new(&config.recrawl),
            seen: Arc::new(Mutex::new(SeenUrls::new(1000))),
            agent: Arc::from("pipecrawl"),
            robots: None,
            max_redirects: config.fetch.max_redirects,
        }
    }

    /// A page job for `http://h/`, a revisit when there is a `previous` visit.
    fn home_job(previous: Option<crate::page::Previous>) -> crate::page::CrawlJob {
        crate::page::CrawlJob {
            id: 1,
            url: Url::parse("http://h/").unwrap(),
            host: Arc::from("h"),
            depth: 0,
            priority: 0,
            redirect_hops: 0,
            attempts: 0,
            kind: JobKind::Page,
            previous: previous.map(Box::new),
        }
    }

    #[test]
    fn a_hosts_sitemaps_outlive_a_retry_of_its_first_page() {
        let fetched = Fetched {
            status: Some(503),
            content_type: Some("text/html".into()),
            sitemaps: vec![Url::parse("http://h/sitemap.xml").unwrap()],
            retry_in: Some(std::time::Duration::from_secs(1)),
            ..Fetched::new(home_job(None))
        };
        let record = to_record(fetched, &rules());
        let found: Vec<(&str, JobKind)> = record
            .discovered
            .iter()
            .map(|d| (d.url.as_str(), d.kind))
            .collect();
        assert_eq!(found, [("http://h/sitemap.xml", JobKind::Sitemap)]);
    }

    /// A revisit that got no answer, or a server error, learnt nothing about whether the
    /// page changed: an adaptive interval stays as it was rather than halving.
    #[test]
    fn a_failed_revisit_keeps_its_adaptive_interval() {
        let config = crate::Config::from_toml(
            "seeds = ['http://h/']\n[recrawl]\ninterval_s = 3600\nadaptive = true\n\
             min_interval_s = 60\nmax_interval_s = 86400\n",
            "t",
        )
        .unwrap();
        let rules = LinkRules {
            recrawl: RecrawlPolicy::new(&config.recrawl),
            ..rules()
        };
        let interval = std::time::Duration::from_secs(3600);
        for (status, error) in [
            (
                None,
                Some(FetchError {
                    kind: ErrorKind::Timeout,
                    message: "timed out".into(),
                }),
            ),
            (Some(503), None),
        ] {
            let previous = crate::page::Previous {
                content_hash: Some("0123".into()),
                interval: Some(interval),
                ..Default::default()
            };
            let fetched = Fetched {
                status,
                error,
                ..Fetched::new(home_job(Some(previous)))
            };
            let record = to_record(fetched, &rules);
            assert_eq!(record.recrawl_in, Some(interval), "{status:?}");
        }
    }

    #[test]
    fn rel_is_kept() {
        let e = extract("<a href='/n' rel=' nofollow  ugc'>n</a>", "http://h/");
        assert_eq!(e.links[0].rel.as_deref(), Some("nofollow ugc"));
    }

    #[test]
    fn malformed_html_still_yields_what_it_can() {
        let e = extract(
            "<title>T<a href='/a'>A<div><a href='/b'>B</p></table>",
            "http://h/",
        );
        assert_eq!(
            e.title.as_deref(),
            Some("T<a href='/a'>A<div><a href='/b'>B</p></table>")
        );
        let e = extract(
            "<html><title>T</title><a href='/a'>A<div><a href='/b'>B</p></table>",
            "http://h/",
        );
        assert_eq!(e.title.as_deref(), Some("T"));
        let targets: std::collections::HashSet<&str> =
            e.links.iter().map(|l| l.target.as_str()).collect();
        assert_eq!(
            targets,
            std::collections::HashSet::from(["http://h/a", "http://h/b"])
        );
    }

    /// A sitemap that breaks off into bad XML (a stray end tag, a truncated gzip stream)
    /// still listed the URLs before the break: they are crawled, and the page row says
    /// what was wrong with the rest.
    #[test]
    fn a_sitemap_broken_part_way_keeps_the_urls_before_the_break() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, b"<urlset><url><loc>http://h/1</loc></url>").unwrap();
        let mut truncated = gz.finish().unwrap();
        truncated.truncate(truncated.len() - 4);
        for body in [
            b"<urlset><url><loc>http://h/1</loc></url></url><url><loc>http://h/2</loc></url></urlset>".to_vec(),
            truncated,
        ] {
            let fetched = Fetched {
                status: Some(200),
                body: Some(body),
                ..Fetched::new(crate::page::CrawlJob {
                    kind: JobKind::Sitemap,
                    ..home_job(None)
                })
            };
            let record = to_record(fetched, &rules());
            let found: Vec<&str> = record.discovered.iter().map(|d| d.url.as_str()).collect();
            assert_eq!(found, ["http://h/1"]);
            assert_eq!(record.error.map(|e| e.kind), Some(ErrorKind::Parse));
        }
    }

    /// A page listed in a sitemap is one step from the site, however deep the index
    /// that leads to it: with `max_depth = 1` a nested sitemap's pages were dropped
    /// while a flat one's were crawled.
    #[test]
    fn a_nested_sitemaps_pages_are_as_near_as_a_flat_ones() {
        for nesting in 0..=MAX_SITEMAP_NESTING {
            let fetched = Fetched {
                status: Some(200),
                body: Some(b"<urlset><url><loc>http://h/1</loc></url></urlset>".to_vec()),
                ..Fetched::new(crate::page::CrawlJob {
                    kind: JobKind::Sitemap,
                    depth: nesting,
                    ..home_job(None)
                })
            };
            let record = to_record(fetched, &rules());
            let found: Vec<(&str, u32)> = record
                .discovered
                .iter()
                .map(|d| (d.url.as_str(), d.depth))
                .collect();
            assert_eq!(found, [("http://h/1", 1)], "a sitemap {nesting} deep");
        }
    }

    /// An index nested as deep as sitemaps are read (robots.txt's names one, which names
    /// another, which names this) has its own sitemaps left unread: its row says so. They
    /// went without a word, a site's third level of sitemaps missing from the crawl with
    /// no row, log or count to tell why.
    #[test]
    fn an_index_nested_past_the_limit_says_its_sitemaps_are_not_read() {
        let fetched = Fetched {
            status: Some(200),
            body: Some(
                b"<sitemapindex><sitemap><loc>http://h/a.xml</loc></sitemap>\
                  <sitemap><loc>http://h/b.xml</loc></sitemap></sitemapindex>"
                    .to_vec(),
            ),
            ..Fetched::new(crate::page::CrawlJob {
                kind: JobKind::Sitemap,
                depth: MAX_SITEMAP_NESTING,
                ..home_job(None)
            })
        };
        let record = to_record(fetched, &rules());
        assert!(record.discovered.is_empty());
        let error = record
            .error
            .expect("the row says why its sitemaps are not read");
        assert_eq!(error.kind, ErrorKind::Parse);
        assert!(
            error.message.contains("2 sitemaps") && error.message.contains("not read"),
            "{}",
            error.message
        );
    }
}
