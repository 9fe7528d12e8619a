//! A good citizen of the web: robots.txt, per-host politeness, retries, encodings,
//! robots meta directives and sitemaps, each checked from the server's side.

use std::time::{Duration, Instant};

use super::raw::{Ending, RawReply, RawSite};
use super::site::{Resource, SiteBuilder, TestSite};
use super::Harness;

fn html(body: &str) -> Resource {
    Resource::Html(body.to_owned())
}

fn text(body: &str) -> Resource {
    Resource::Typed("text/plain", body.as_bytes().to_vec())
}

/// A page answered `wait` after its request arrives: a server slower than a short delay.
fn slow_page(wait: Duration) -> Resource {
    Resource::Slow(wait, Box::new(html("<title>x</title>")))
}

/// Adds to `host` a home page linking to `/0` … `/{pages - 1}`, each a [`slow_page`].
fn add_slow_pages(b: &mut SiteBuilder, host: &str, pages: i64, wait: Duration) {
    let links: String = (0..pages)
        .map(|i| format!("<a href='/{i}'>{i}</a>"))
        .collect();
    b.add(host, "/", html(&links));
    for i in 0..pages {
        b.add(host, &format!("/{i}"), slow_page(wait));
    }
}

/// Servers see request arrivals a little later or earlier than the crawler sent them
/// (more so on a loaded machine); gaps are checked to within this.
const JITTER: Duration = Duration::from_millis(30);

/// When `host`'s last answer was sent.
fn last_answer(site: &TestSite, host: &str) -> Instant {
    site.hits_for(host)
        .iter()
        .map(|h| h.done)
        .max()
        .expect("the host was crawled")
}

/// Asserts that `host`'s last answer came before `other`'s first page (robots.txt aside)
/// was asked for: "meanwhile", judged by the order the site saw, which a loaded machine
/// keeps, rather than by a time limit, which it overruns.
fn assert_done_before_first_page(site: &TestSite, host: &str, other: &str) {
    assert_done_before_page(site, host, other, 1);
}

/// Asserts that `host`'s last answer came before `other`'s `nth` page (robots.txt aside)
/// was asked for, as [`assert_done_before_first_page`] does for the first.
fn assert_done_before_page(site: &TestSite, host: &str, other: &str, nth: usize) {
    let done = last_answer(site, host);
    let mut other_pages: Vec<Instant> = site
        .hits_for(other)
        .iter()
        .filter(|h| h.path != "/robots.txt")
        .map(|h| h.at)
        .collect();
    other_pages.sort();
    let other_page = *other_pages
        .get(nth - 1)
        .unwrap_or_else(|| panic!("{other} had {} pages crawled", other_pages.len()));
    assert!(
        done < other_page,
        "{host} was still being crawled {:?} after {other}'s page {nth} was asked for",
        done.duration_since(other_page)
    );
}

/// The median time from an answer among `hits` (in order of arrival) to the next request,
/// and all of them, sorted: the slowest half may be late on a loaded machine, the quicker
/// half not.
fn gaps_after_answers(hits: &[super::site::Hit]) -> (Duration, Vec<Duration>) {
    let mut gaps: Vec<Duration> = hits
        .windows(2)
        .map(|pair| pair[1].at.saturating_duration_since(pair[0].done))
        .collect();
    gaps.sort_unstable();
    (gaps[gaps.len() / 2], gaps)
}

/// `noindex * 10 + nofollow` of the page rows of `paths` on the site's first host.
pub async fn robots_flags(harness: &Harness, site: &TestSite, paths: &[&str]) -> Vec<i64> {
    let db = harness.db().await;
    let mut flags = Vec::new();
    for path in paths {
        let sql = format!(
            "SELECT noindex * 10 + nofollow FROM pages WHERE url = '{}'",
            site.url(0, path)
        );
        flags.push(db.scalar(&sql).await);
    }
    flags
}

fn robots_requests(site: &TestSite, host: usize) -> usize {
    site.count(&site.url(host, "/robots.txt"))
}

/// Asserts that `host` heard nothing for `quiet` after answering its first page that is
/// neither robots.txt nor one of `not_pages` (one that asked it to slow down).
fn assert_quiet_after_first_page(site: &TestSite, host: &str, not_pages: &[&str], quiet: Duration) {
    let hits = site.hits_for(host);
    let told = hits
        .iter()
        .find(|x| x.path != "/robots.txt" && !not_pages.contains(&x.path.as_str()))
        .expect("a page was requested");
    for later in hits.iter().filter(|x| x.at > told.done) {
        let after = later.at.duration_since(told.done);
        assert!(
            after + JITTER >= quiet,
            "{} was requested {after:?} after {} asked for quiet",
            later.path,
            told.path
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn robots_disallowed_paths_are_never_requested() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(
        &h,
        "/robots.txt",
        text("User-agent: *\nDisallow: /\n\nUser-agent: pipecrawl\nDisallow: /private\nAllow: /private/open\n"),
    );
    b.add(
        &h,
        "/",
        html("<a href='/private/a'>a</a><a href='/private/open/b'>b</a><a href='/public'>c</a><a href='/go'>d</a>"),
    );
    b.add(&h, "/private/open/b", html("<title>B</title>"));
    b.add(&h, "/public", html("<title>Public</title>"));
    // A redirect into a disallowed path: the target is checked before it is fetched.
    b.add(&h, "/go", Resource::Redirect(301, "/private/c".into()));
    let site = b.start();
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;

    let requested = site.requested_urls();
    assert!(
        !requested
            .iter()
            .any(|u| u.contains("/private/a") || u.contains("/private/c")),
        "{requested:?}"
    );
    assert_eq!(
        robots_requests(&site, 0),
        1,
        "robots.txt is fetched once per host"
    );
    let db = harness.db().await;
    for blocked in ["/private/a", "/private/c"] {
        let row = db
            .page(&site.url(0, blocked))
            .await
            .expect("a blocked URL has a row");
        assert_eq!(
            (row.status, row.error_kind.as_deref()),
            (None, Some("robots")),
            "{blocked}"
        );
    }
    assert_eq!(
        db.page(&site.url(0, "/private/open/b"))
            .await
            .and_then(|p| p.title)
            .as_deref(),
        Some("B")
    );
    assert_eq!(
        db.page(&site.url(0, "/public"))
            .await
            .and_then(|p| p.status),
        Some(200)
    );
}

/// A rule written with a `\` for a `/` (`Disallow: /private\`) closes what it names: the
/// URL parser makes `/` of a `\` in a link's path, so the crawler never asks about a URL
/// holding one, and the rule, kept as written, closed nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_written_with_backslashes_closes_the_paths_it_names() {
    let seen = crawled_under_robots(
        "User-agent: *\nDisallow: /private\\\n",
        &["/private/a", "/private\\b", "/public"],
        &["/private/a", "/private/b", "/public"],
    )
    .await;
    assert_eq!(seen, [ROBOTS, ROBOTS, FETCHED]);
}

/// A `*` or `$` in a URL is one character: a wildcard rule's piece (`Disallow: /*A`, for
/// paths with a capital A) does not match inside the `%2A` the matcher spells it as.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wildcard_rule_does_not_match_inside_a_star_or_dollar() {
    let seen = crawled_under_robots(
        "User-agent: *\nDisallow: /*A\nDisallow: /*4$\n",
        &["/x*", "/price$", "/Apple"],
        &["/x*", "/price$", "/Apple"],
    )
    .await;
    assert_eq!(seen, [FETCHED, FETCHED, ROBOTS]);
}

/// A page row's status, and whether robots.txt kept it from being fetched.
type Outcome = (Option<i64>, bool);
const FETCHED: Outcome = (Some(200), false);
const ROBOTS: Outcome = (None, true);

/// Crawls a host whose robots.txt is `robots` and whose home page links to `links`, and
/// returns the outcome of each of `paths` (the links as the crawler spells them).
async fn crawled_under_robots(robots: &str, links: &[&str], paths: &[&str]) -> Vec<Outcome> {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(&h, "/robots.txt", text(robots));
    let links: String = links
        .iter()
        .map(|l| format!("<a href='{l}'>x</a>"))
        .collect();
    b.add(&h, "/", html(&links));
    b.add_prefix(&h, "/", html("<title>Leaf</title>"));
    let site = b.start();
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;
    let db = harness.db().await;
    let mut seen = Vec::new();
    for path in paths {
        let row = db.page(&site.url(0, path)).await.expect("a page row");
        seen.push((row.status, row.error_kind.as_deref() == Some("robots")));
    }
    seen
}

/// A URL refused because its host's robots.txt failed is tried again once robots.txt
/// is asked again, not before: its retry's backoff (`base_delay_ms` and less, by its
/// jitter) came before robots.txt's own recheck (`base_delay_ms`), so that attempt failed
/// at once without robots.txt being asked, and with `max_attempts = 2` a robots.txt that
/// failed once failed every URL of its host for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_robots_txt_that_fails_keeps_the_host_waiting_until_it_answers() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(
        &h,
        "/robots.txt",
        Resource::Sequence(vec![
            Resource::Status(503, "busy".into()),
            text("User-agent: *\nDisallow: /no\n"),
        ]),
    );
    b.add(
        &h,
        "/",
        html("<title>Home</title><a href='/no'>no</a><a href='/yes'>yes</a>"),
    );
    b.add(&h, "/yes", html("<title>Yes</title>"));
    let site = b.start();
    let harness = Harness::default();
    harness
        .crawl(
            &[site.url(0, "/")],
            "[retry]\nmax_attempts = 2\nbase_delay_ms = 1000\n",
        )
        .await;

    let hits = site.hits_for(&h);
    let robots: Vec<_> = hits.iter().filter(|x| x.path == "/robots.txt").collect();
    assert_eq!(robots.len(), 2, "robots.txt is asked again after the 503");
    let first_page = hits
        .iter()
        .find(|x| x.path != "/robots.txt")
        .expect("pages were fetched");
    assert!(
        first_page.at > robots[1].at,
        "no page was fetched while robots.txt was unavailable"
    );
    assert_eq!(site.count(&site.url(0, "/no")), 0);
    let db = harness.db().await;
    assert_eq!(
        db.page(&site.url(0, "/"))
            .await
            .and_then(|p| p.title)
            .as_deref(),
        Some("Home")
    );
    assert_eq!(
        db.page(&site.url(0, "/yes")).await.and_then(|p| p.status),
        Some(200)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_robots_txt_cut_off_mid_transfer_is_not_taken_for_the_whole_file() {
    // What arrived allows everything; the connection breaks before the rest.
    let raw = RawSite::start(vec![
        (
            "/robots.txt",
            RawReply::new(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100000",
                "User-agent: *\nAllow: /\n",
                Ending::Reset,
            ),
        ),
        ("/", RawReply::ok("text/html", "<title>Home</title>")),
    ])
    .await;
    let harness = Harness::default();
    harness.crawl(&[raw.url("/")], "").await;

    assert_eq!(raw.count("/robots.txt"), 1);
    assert_eq!(
        raw.count("/"),
        0,
        "nothing is fetched under half a robots.txt"
    );
    let home = harness
        .db()
        .await
        .page(&raw.url("/"))
        .await
        .expect("the seed has a row");
    assert_eq!(
        (home.status, home.error_kind.as_deref()),
        (None, Some("body")),
        "{:?}",
        home.error
    );
    assert!(
        home.error
            .as_deref()
            .unwrap_or_default()
            .contains("robots.txt"),
        "{:?}",
        home.error
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_location_in_raw_utf8_or_latin1_is_followed_for_pages_and_robots_txt() {
    let html = |body: &str| RawReply::ok("text/html", body);
    let raw = RawSite::start(vec![
        ("/robots.txt", RawReply::moved("/robots-café.txt")),
        (
            "/robots-caf%C3%A9.txt",
            RawReply::ok("text/plain", "User-agent: *\nDisallow: /private\n"),
        ),
        (
            "/",
            html("<a href='/old'>old</a><a href='/older'>older</a><a href='/private'>private</a>"),
        ),
        ("/old", RawReply::moved("/café")),
        ("/caf%C3%A9", html("<title>Café</title>")),
        // A Latin-1 server's Location: its bytes go back as they came, escaped.
        ("/older", RawReply::moved(b"/caf\xe9")),
        ("/caf%E9", html("<title>Caf\u{e9} in Latin-1</title>")),
        ("/private", html("<title>Private</title>")),
    ])
    .await;
    let harness = Harness::default();
    harness.crawl(&[raw.url("/")], "").await;

    assert_eq!(raw.count("/robots-caf%C3%A9.txt"), 1);
    assert_eq!(
        raw.count("/private"),
        0,
        "the redirected robots.txt applies"
    );
    let db = harness.db().await;
    let cafe = raw.url("/caf%C3%A9");
    let old = db
        .page(&raw.url("/old"))
        .await
        .expect("the redirect has a row");
    assert_eq!(
        (old.status, old.final_url.as_deref()),
        (Some(301), Some(cafe.as_str()))
    );
    assert_eq!(
        db.page(&cafe).await.and_then(|p| p.title).as_deref(),
        Some("Café")
    );
    let latin1 = db
        .page(&raw.url("/caf%E9"))
        .await
        .expect("the Latin-1 Location was followed");
    assert_eq!(latin1.title.as_deref(), Some("Café in Latin-1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_robots_txt_allows_everything() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(&h, "/", html("<a href='/a'>a</a>"));
    b.add(&h, "/a", html("<title>A</title>"));
    let site = b.start();
    let harness = Harness::default();
    let summary = harness.crawl(&[site.url(0, "/")], "").await;
    assert_eq!(summary.tally.pages, 2);
    assert_eq!(robots_requests(&site, 0), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crawl_delay_spaces_every_request_to_the_host() {
    assert_spaced_by_a_crawl_delay_of_300_ms("User-agent: *\nCrawl-delay: 0.3\n").await;
}

/// A `Crawl-delay` that is no number of seconds (`inf`, `1e400`, past what a float holds)
/// is no line: the group's next, valid one is the host's delay, not hidden by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_delay_of_infinity_does_not_hide_the_groups_valid_one() {
    assert_spaced_by_a_crawl_delay_of_300_ms(
        "User-agent: *\nCrawl-delay: inf\nCrawl-delay: 1e400\nCrawl-delay: 0.3\n",
    )
    .await;
}

/// Crawls a host of six pages whose robots.txt is `robots`, and asserts that the host's
/// requests were spaced by 300 ms and that its `hosts` row keeps that delay.
async fn assert_spaced_by_a_crawl_delay_of_300_ms(robots: &str) {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(&h, "/robots.txt", text(robots));
    let links: String = (0..5).map(|i| format!("<a href='/{i}'>{i}</a>")).collect();
    b.add(&h, "/", html(&links));
    for i in 0..5 {
        b.add(&h, &format!("/{i}"), html("<title>x</title>"));
    }
    let site = b.start();
    let harness = Harness::default();
    harness
        .crawl(
            &[site.url(0, "/")],
            "[politeness]\ndelay_ms = 0\nper_host_concurrency = 4\n",
        )
        .await;
    assert_eq!(site.hits_for(&h).len(), 7);
    let gap = site.min_gap(&h).expect("several requests");
    assert!(
        gap + JITTER >= Duration::from_millis(300),
        "requests {gap:?} apart"
    );
    let stored = harness
        .db()
        .await
        .scalar("SELECT coalesce(crawl_delay_ms, -1) FROM hosts")
        .await;
    assert_eq!(stored, 300, "the host's Crawl-delay in ms");
}

/// A crawl stopped and started again at once is still one visitor to the host: the
/// delay its last request began (here robots.txt's Crawl-delay) holds across the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_the_delay_its_last_request_began() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(&h, "/robots.txt", text("User-agent: *\nCrawl-delay: 1\n"));
    let links: String = (0..3).map(|i| format!("<a href='/{i}'>{i}</a>")).collect();
    b.add(&h, "/", html(&links));
    for i in 0..3 {
        b.add(&h, &format!("/{i}"), html("<title>x</title>"));
    }
    let site = b.start();
    let harness = Harness::default();
    let quick = "[politeness]\ndelay_ms = 0\n";
    harness
        .crawl(
            &[site.url(0, "/")],
            &format!("{quick}[scope]\nmax_pages = 1\n"),
        )
        .await;
    harness
        .crawl(
            &[site.url(0, "/")],
            &format!("{quick}[scope]\nmax_pages = 2\n"),
        )
        .await;
    assert_eq!(site.hits_for(&h).len(), 3, "robots.txt and two pages");
    let gap = site.min_gap(&h).expect("several requests");
    assert!(
        gap + JITTER >= Duration::from_secs(1),
        "requests {gap:?} apart"
    );
}

/// A host's Crawl-delay is its own: jobs waiting it out must not hold fetch workers, or
/// a few such hosts would stall every other host of the crawl.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_delay_host_does_not_hold_the_workers_the_others_need() {
    let mut b = SiteBuilder::bind(2).await;
    let (patient, quick) = (b.authority(0), b.authority(1));
    b.add(
        &patient,
        "/robots.txt",
        text("User-agent: *\nCrawl-delay: 1\n"),
    );
    for (h, pages) in [(&patient, 4), (&quick, 12)] {
        let links: String = (0..pages)
            .map(|i| format!("<a href='/{i}'>{i}</a>"))
            .collect();
        for i in 0..pages {
            b.add(h, &format!("/{i}"), html("<title>x</title>"));
        }
        // The quick host's pages turn up once the patient host's are waiting.
        let wait = if h == &quick { 1200 } else { 0 };
        b.add(
            h,
            "/",
            Resource::Slow(Duration::from_millis(wait), Box::new(html(&links))),
        );
    }
    let site = b.start();
    let harness = Harness::default();
    harness
        .crawl(
            &[site.url(0, "/"), site.url(1, "/")],
            "[politeness]\ndelay_ms = 0\nper_host_concurrency = 2\n[fetch]\nworkers = 2\n",
        )
        .await;

    // The patient host takes a second per request; the quick one needs none after its
    // slow home page, and is done before the patient host's third page (some three
    // seconds in). Were the patient host's jobs to hold both workers asleep at its gate,
    // the quick host's pages would trickle out one or two after each of its requests.
    assert_done_before_page(&site, &quick, &patient, 3);
    let gap = site.min_gap(&patient).expect("several requests");
    assert!(
        gap + JITTER >= Duration::from_secs(1),
        "{patient}: requests {gap:?} apart"
    );
    assert_eq!(harness.page_count().await, 5 + 13);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_host_delay_and_concurrency_limits_hold_at_the_server() {
    let mut b = SiteBuilder::bind(2).await;
    let (slow, busy) = (b.authority(0), b.authority(1));
    for h in [&slow, &busy] {
        add_slow_pages(&mut b, h, 12, Duration::from_millis(80));
    }
    let site = b.start();
    let harness = Harness::default();
    // The first host is spaced by an override; the second may take three at once.
    let config = format!(
        "[politeness]\ndelay_ms = 0\nper_host_concurrency = 3\n[[politeness.host]]\npattern = \"{}\"\ndelay_ms = 150\nper_host_concurrency = 1\n",
        slow.split(':').next().unwrap_or_default()
    );
    harness
        .crawl(&[site.url(0, "/"), site.url(1, "/")], &config)
        .await;

    let gap = site.min_gap(&slow).expect("several requests");
    assert!(
        gap + JITTER >= Duration::from_millis(150),
        "{slow}: requests {gap:?} apart"
    );
    assert_eq!(site.max_in_flight(&slow), 1);
    let busy_in_flight = site.max_in_flight(&busy);
    assert!(
        (2..=3).contains(&busy_in_flight),
        "{busy}: {busy_in_flight} in flight at once"
    );
}

/// A host slower to answer than its delay is asked one thing at a time, its next request
/// going a delay after each answer. With `per_host_concurrency` above 1 the frontier sends
/// the next job a delay after the last went, before the answer: it must wait for that
/// answer, not for a quarter of a second more, which made a crawl at a short delay three
/// times slower with the default concurrency of 2 than with 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_slower_than_its_delay_is_asked_again_a_delay_after_each_answer() {
    const PAGES: i64 = 12;
    let mut b = SiteBuilder::bind(1).await;
    let host = b.authority(0);
    add_slow_pages(&mut b, &host, PAGES, Duration::from_millis(60));
    let site = b.start();
    let harness = Harness::default();
    harness
        .crawl(
            &[site.url(0, "/")],
            "[politeness]\ndelay_ms = 20\nper_host_concurrency = 2\n",
        )
        .await;

    let mut hits: Vec<_> = site
        .hits_for(&host)
        .into_iter()
        .filter(|h| h.path != "/robots.txt" && h.path != "/")
        .collect();
    assert_eq!(i64::try_from(hits.len()), Ok(PAGES));
    hits.sort_by_key(|h| h.at);
    // How long after an answer ended the host heard the next request: a delay, and what a
    // loaded machine adds.
    let (median, after_answer) = gaps_after_answers(&hits);
    assert!(
        median < Duration::from_millis(120),
        "{host}: the next request came {median:?} after an answer (median; all: {after_answer:?})"
    );
    assert_eq!(site.max_in_flight(&host), 1);
    assert_eq!(harness.page_count().await, 1 + PAGES);
}

/// How long the slow host of [`a_slow_host_does_not_hold_up_the_fast_ones`] takes to
/// answer: the four fast hosts' 68 requests, 1.2 s on a loaded machine, fit well within.
const SLOW_ANSWER: Duration = Duration::from_secs(4);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_host_does_not_hold_up_the_fast_ones() {
    let mut b = SiteBuilder::bind(5).await;
    let hosts: Vec<String> = (0..5).map(|i| b.authority(i)).collect();
    for (n, h) in hosts.iter().enumerate() {
        let pages = if n == 0 { 2 } else { 15 };
        let links: String = (0..pages)
            .map(|i| format!("<a href='/{i}'>{i}</a>"))
            .collect();
        b.add(h, "/", html(&links));
        for i in 0..pages {
            b.add(h, &format!("/{i}"), html("<title>x</title>"));
        }
    }
    b.delay_host(&hosts[0], SLOW_ANSWER);
    let site = b.start();
    let harness = Harness::default();
    let seeds: Vec<String> = (0..5).map(|i| site.url(i, "/")).collect();
    harness
        .crawl(
            &seeds,
            "[politeness]\ndelay_ms = 0\nper_host_concurrency = 2\n[fetch]\nworkers = 8\n",
        )
        .await;

    let start = site
        .hits()
        .iter()
        .map(|h| h.at)
        .min()
        .expect("requests were made");
    let fast_done = hosts[1..]
        .iter()
        .flat_map(|h| site.hits_for(h))
        .map(|h| h.done)
        .max()
        .expect("fast hosts were crawled");
    // The slow host needs three rounds after its robots.txt; the fast ones finish in the
    // shadow of its first request.
    let fast = fast_done.duration_since(start);
    assert!(fast < SLOW_ANSWER, "the fast hosts took {fast:?}");
    assert_eq!(harness.page_count().await, 3 + 4 * 16);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_with_retry_after_is_stored_once_after_the_wait_and_pauses_the_host() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(
        &h,
        "/",
        html("<a href='/limited'>l</a><a href='/a'>a</a><a href='/b'>b</a><a href='/c'>c</a>"),
    );
    b.add(
        &h,
        "/limited",
        Resource::Sequence(vec![
            Resource::WithHeaders(
                vec![("Retry-After".into(), "1".into())],
                Box::new(Resource::Status(429, "slow down".into())),
            ),
            html("<title>Finally</title>"),
        ]),
    );
    for p in ["/a", "/b", "/c"] {
        b.add(&h, p, slow_page(Duration::from_millis(50)));
    }
    let site = b.start();
    let harness = Harness::default();
    harness
        .crawl(
            &[site.url(0, "/")],
            "[politeness]\ndelay_ms = 0\nper_host_concurrency = 1\n[retry]\nmax_attempts = 3\nbase_delay_ms = 10\n",
        )
        .await;

    let hits = site.hits_for(&h);
    let limited: Vec<_> = hits.iter().filter(|x| x.path == "/limited").collect();
    assert_eq!(limited.len(), 2);
    let told_at = limited[0].done;
    assert!(limited[1].at.duration_since(told_at) + JITTER >= Duration::from_secs(1));
    for later in hits.iter().filter(|x| x.at > told_at) {
        assert!(
            later.at.duration_since(told_at) + JITTER >= Duration::from_secs(1),
            "{} was requested during the host's pause",
            later.path
        );
    }
    let db = harness.db().await;
    assert_eq!(
        db.scalar("SELECT count(*) FROM pages WHERE url LIKE '%/limited'")
            .await,
        1
    );
    assert_eq!(
        db.page(&site.url(0, "/limited"))
            .await
            .and_then(|p| p.title)
            .as_deref(),
        Some("Finally")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_errors_are_retried_and_permanent_ones_are_not() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(
        &h,
        "/",
        html("<a href='/flaky'>f</a><a href='/gone'>g</a><a href='/down'>d</a>"),
    );
    let busy = || Resource::Status(503, "busy".into());
    b.add(
        &h,
        "/flaky",
        Resource::Sequence(vec![busy(), busy(), busy(), html("<title>Up</title>")]),
    );
    b.add(&h, "/gone", Resource::Status(404, "gone".into()));
    b.add(&h, "/down", Resource::Status(500, "down".into()));
    let site = b.start();
    let harness = Harness::default();
    let summary = harness
        .crawl(
            &[site.url(0, "/")],
            "[retry]\nmax_attempts = 4\nbase_delay_ms = 20\nmax_delay_ms = 100\n",
        )
        .await;

    assert_eq!(site.count(&site.url(0, "/flaky")), 4);
    assert_eq!(site.count(&site.url(0, "/gone")), 1, "a 404 is final");
    assert_eq!(
        site.count(&site.url(0, "/down")),
        4,
        "a 500 is retried until attempts run out"
    );
    assert_eq!(summary.tally.retries, 6);
    let db = harness.db().await;
    assert_eq!(
        db.scalar("SELECT count(*) FROM pages").await,
        4,
        "each URL is stored once"
    );
    assert_eq!(
        db.page(&site.url(0, "/flaky"))
            .await
            .and_then(|p| p.title)
            .as_deref(),
        Some("Up")
    );
    assert_eq!(
        db.page(&site.url(0, "/down")).await.and_then(|p| p.status),
        Some(500)
    );
    assert_eq!(
        db.scalar("SELECT attempts FROM frontier WHERE url LIKE '%/flaky'")
            .await,
        4
    );
}

/// `content_hash` and `bytes` are of the body as its `Content-Encoding` is undone and
/// before its charset is: the bytes `curl --compressed` saves, whose xxh3-128 anyone
/// can compute again (`xxhsum -H2`, Python's `xxhash.xxh3_128_hexdigest`). README said
/// only "of the body", which a gzipped Shift_JIS page leaves three ways to read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_hash_and_bytes_are_of_the_body_decoded_from_its_coding_not_its_charset() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    let (sjis, _, _) = encoding_rs::SHIFT_JIS.encode("<title>日本語のページ</title>");
    let sjis = sjis.into_owned();
    let page = Resource::Typed("text/html; charset=Shift_JIS", sjis.clone());
    b.add(&h, "/", Resource::Gzip(Box::new(page)));
    let site = b.start();
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;
    let (hash, bytes): (String, i64) =
        sqlx::query_as("SELECT content_hash, bytes FROM pages WHERE url = ?")
            .bind(site.url(0, "/"))
            .fetch_one(&mut harness.open_reader().await)
            .await
            .expect("the page's row");
    let expected = format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&sjis));
    assert_eq!(
        (hash, bytes),
        (expected, i64::try_from(sjis.len()).unwrap())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_charsets_and_compressed_bodies_come_out_as_utf8() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    let encode = |enc: &'static encoding_rs::Encoding, s: &str| enc.encode(s).0.into_owned();
    b.add(
        &h,
        "/",
        html("<a href='/sjis'>1</a><a href='/gbk'>2</a><a href='/latin'>3</a><a href='/gz'>4</a><a href='/br'>5</a>"),
    );
    let sjis = encode(
        encoding_rs::SHIFT_JIS,
        "<title>日本語のページ</title><a href='/'>ホーム</a>",
    );
    b.add(
        &h,
        "/sjis",
        Resource::Typed("text/html; charset=Shift_JIS", sjis),
    );
    let gbk = encode(
        encoding_rs::GBK,
        "<meta charset=\"gbk\"><title>中文网页</title>",
    );
    b.add(&h, "/gbk", Resource::Typed("text/html", gbk));
    let latin = encode(
        encoding_rs::WINDOWS_1252,
        "<title>Caf\u{e9} \u{201c}cr\u{e8}me\u{201d}</title>",
    );
    b.add(&h, "/latin", Resource::Typed("text/html", latin));
    b.add(
        &h,
        "/gz",
        Resource::Gzip(Box::new(html("<title>Zipped</title>"))),
    );
    b.add(
        &h,
        "/br",
        Resource::Brotli(Box::new(html("<title>Brotli</title>"))),
    );
    let site = b.start();
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;

    let db = harness.db().await;
    let title = |p: &'static str| {
        let url = site.url(0, p);
        let db = &db;
        async move { db.page(&url).await.and_then(|p| p.title) }
    };
    assert_eq!(title("/sjis").await.as_deref(), Some("日本語のページ"));
    assert_eq!(title("/gbk").await.as_deref(), Some("中文网页"));
    assert_eq!(
        title("/latin").await.as_deref(),
        Some("Café \u{201c}crème\u{201d}")
    );
    assert_eq!(title("/gz").await.as_deref(), Some("Zipped"));
    assert_eq!(title("/br").await.as_deref(), Some("Brotli"));
    let anchors = db.links().await;
    assert!(anchors.iter().any(|(_, _, a)| a == "ホーム"), "{anchors:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nofollow_noindex_and_canonical_are_honoured() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(
        &h,
        "/",
        html("<link rel='canonical' href='/home'><a href='/noindex'>1</a><a href='/nofollow'>2</a><a href='/header'>3</a><a href='/sponsored' rel='nofollow'>4</a>"),
    );
    b.add(
        &h,
        "/noindex",
        html("<meta name='robots' content='noindex'><title>Hidden</title><a href='/via-noindex'>x</a>"),
    );
    b.add(
        &h,
        "/nofollow",
        html("<meta name='robots' content='nofollow'><title>Shown</title><a href='/not-1'>x</a>"),
    );
    b.add(
        &h,
        "/header",
        // Two header lines: the second is ours; the first is for another crawler.
        Resource::WithHeaders(
            vec![
                ("X-Robots-Tag".into(), "googlebot: noindex".into()),
                ("X-Robots-Tag".into(), "nofollow".into()),
            ],
            Box::new(html("<title>Header</title><a href='/not-2'>x</a>")),
        ),
    );
    b.add(&h, "/via-noindex", html("<title>Reached</title>"));
    let site = b.start();
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;

    let requested = site.requested_urls();
    for never in ["/not-1", "/not-2", "/sponsored"] {
        assert!(
            !requested.contains(&site.url(0, never)),
            "{never} was followed"
        );
    }
    let db = harness.db().await;
    let hidden = db
        .page(&site.url(0, "/noindex"))
        .await
        .expect("a noindex page still has a row");
    assert_eq!(hidden.title, None, "noindex keeps the title out");
    assert_eq!(
        db.scalar("SELECT noindex FROM pages WHERE url LIKE '%/noindex'")
            .await,
        1
    );
    assert_eq!(
        db.page(&site.url(0, "/via-noindex"))
            .await
            .and_then(|p| p.title)
            .as_deref(),
        Some("Reached")
    );
    assert_eq!(
        db.page(&site.url(0, "/nofollow"))
            .await
            .and_then(|p| p.title)
            .as_deref(),
        Some("Shown")
    );
    assert_eq!(
        db.page(&site.url(0, "/header"))
            .await
            .and_then(|p| p.title)
            .as_deref(),
        Some("Header"),
        "another crawler's noindex is not ours"
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM links WHERE target_url LIKE '%/not-_'")
            .await,
        2,
        "nofollow links are still rows"
    );
    assert_eq!(
        db.scalar(
            "SELECT count(*) FROM links WHERE target_url LIKE '%/sponsored' AND rel = 'nofollow'"
        )
        .await,
        1
    );
    assert_eq!(db.scalar("SELECT sum(nofollow) FROM pages").await, 2);
    let canonical: i64 = db
        .scalar(&format!(
            "SELECT count(*) FROM pages WHERE canonical_url = '{}'",
            site.url(0, "/home")
        ))
        .await;
    assert_eq!(canonical, 1);
}

/// A PDF (or an image, or a page whose template cannot change its `<head>`) names its
/// canonical URL in a `Link: <…>; rel="canonical"` header (RFC 8288), which search
/// engines read as they read the `<link>` element: an SEO audit asks of those too. The
/// element wins where a page has both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canonical_named_by_a_link_header_is_stored() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(
        &h,
        "/",
        html("<a href='/report.pdf'>1</a><a href='/plain'>2</a><a href='/both'>3</a><a href='/other'>4</a>"),
    );
    let with_link = |link: &str, resource: Resource| {
        Resource::WithHeaders(vec![("Link".into(), link.into())], Box::new(resource))
    };
    b.add(
        &h,
        "/report.pdf",
        with_link(
            r#"</style.css>; rel=preload, </reports/2024.pdf#page=1>; rel="alternate canonical""#,
            Resource::Typed("application/pdf", b"%PDF-1.4".to_vec()),
        ),
    );
    b.add(
        &h,
        "/plain",
        with_link(
            "<https://example.com/plain?a=1>; rel=Canonical",
            html("<title>Plain</title>"),
        ),
    );
    b.add(
        &h,
        "/both",
        with_link(
            r#"</from-header>; rel="canonical""#,
            html("<link rel='canonical' href='/from-element'><title>Both</title>"),
        ),
    );
    b.add(
        &h,
        "/other",
        with_link(r#"</next>; rel="next""#, html("<title>Other</title>")),
    );
    let site = b.start();
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;

    // The audit's question: pages whose canonical points elsewhere.
    let sql = "SELECT url, canonical_url FROM pages \
               WHERE canonical_url IS NOT NULL AND canonical_url <> url ORDER BY url";
    let rows = super::query::rows(&harness, &["sql", sql]).await;
    let found: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| {
            let text = |key| super::query::text(r, key);
            (text("url"), text("canonical_url"))
        })
        .collect();
    let u = |path: &str| site.url(0, path);
    let expected = [
        (u("/both"), u("/from-element")),
        (u("/plain"), "https://example.com/plain?a=1".to_owned()),
        (u("/report.pdf"), u("/reports/2024.pdf")),
    ];
    let expected: Vec<(&str, &str)> = expected
        .iter()
        .map(|(url, canonical)| (url.as_str(), canonical.as_str()))
        .collect();
    assert_eq!(found, expected);
}

/// A `Link: <…>; rel="canonical"` header on an answer that is no page (a 404, a redirect,
/// a 500) names no canonical URL of it, as its `<link>` element, never read, names none:
/// search engines take a canonical from a page they can index alone, and an error page's
/// template sending the site's home as its canonical is no "canonical points elsewhere".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_header_on_an_answer_that_is_no_page_names_no_canonical() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(
        &h,
        "/",
        html("<a href='/gone'>1</a><a href='/moved'>2</a><a href='/broken'>3</a>"),
    );
    let with_link = |resource: Resource| {
        Resource::WithHeaders(
            vec![("Link".into(), r#"</>; rel="canonical""#.into())],
            Box::new(resource),
        )
    };
    let page = "<link rel='canonical' href='/from-element'><title>Error</title>";
    b.add(&h, "/gone", with_link(Resource::Status(404, page.into())));
    b.add(&h, "/broken", with_link(Resource::Status(500, page.into())));
    b.add(
        &h,
        "/moved",
        with_link(Resource::Redirect(301, "/target".into())),
    );
    b.add(&h, "/target", html("<title>Target</title>"));
    let site = b.start();
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;

    let db = harness.db().await;
    let statuses: Vec<(String, Option<i64>)> = db
        .pages()
        .await
        .into_iter()
        .map(|p| (p.url, p.status))
        .collect();
    let u = |path: &str| site.url(0, path);
    let expected = [
        ("/", 200),
        ("/broken", 500),
        ("/gone", 404),
        ("/moved", 301),
        ("/target", 200),
    ];
    let expected: Vec<(String, Option<i64>)> = expected
        .iter()
        .map(|(path, status)| (u(path), Some(*status)))
        .collect();
    assert_eq!(statuses, expected);
    let named = "SELECT count(*) FROM pages WHERE canonical_url IS NOT NULL";
    assert_eq!(db.scalar(named).await, 0);
}

/// A site whose home links to `/meta`, a page with the robots `<meta>` tags `meta`, and
/// to `/header`, a page sent with `X-Robots-Tag: tag`; each links to a page of its own,
/// `/from-meta` and `/from-header`, and is titled "Meta" or "Header".
async fn robots_directives_site(meta: &str, tag: &str) -> TestSite {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(
        &h,
        "/",
        html("<a href='/meta'>meta</a><a href='/header'>header</a>"),
    );
    b.add(
        &h,
        "/meta",
        html(&format!(
            "{meta}<title>Meta</title><a href='/from-meta'>x</a>"
        )),
    );
    b.add(
        &h,
        "/header",
        Resource::WithHeaders(
            vec![("X-Robots-Tag".into(), tag.into())],
            Box::new(html("<title>Header</title><a href='/from-header'>x</a>")),
        ),
    );
    for child in ["/from-meta", "/from-header"] {
        b.add(&h, child, html("<title>child</title>"));
    }
    b.start()
}

/// Requests of `/from-meta` and `/from-header` on a [`robots_directives_site`].
fn requests_from_meta_and_header(site: &TestSite) -> [usize; 2] {
    ["/from-meta", "/from-header"].map(|path| site.count(&site.url(0, path)))
}

/// With `politeness.respect_meta_robots = false` the crawl does not obey a page's robots
/// `<meta>` or `X-Robots-Tag`, but its row still says what they said: `noindex` and
/// `nofollow` are what the page declared (an audit of which pages are hidden is what a
/// crawl that ignores them is for), and the page keeps its title and links.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn robots_directives_not_obeyed_are_still_recorded() {
    let site = robots_directives_site(
        "<meta name='robots' content='noindex, nofollow'>",
        "noindex",
    )
    .await;
    let harness = Harness::default();
    let config = "[politeness]\ndelay_ms = 0\nrespect_meta_robots = false\n";
    harness.crawl(&[site.url(0, "/")], config).await;
    assert_eq!(
        requests_from_meta_and_header(&site),
        [1, 1],
        "links of pages whose directives are not obeyed are followed"
    );
    assert_eq!(
        robots_flags(&harness, &site, &["/meta", "/header"]).await,
        [11, 10],
        "noindex * 10 + nofollow of the two pages, as they declared them"
    );
    let db = harness.db().await;
    let mut titles = Vec::new();
    for path in ["/meta", "/header"] {
        titles.push(db.page(&site.url(0, path)).await.and_then(|p| p.title));
    }
    assert_eq!(titles, [Some("Meta".into()), Some("Header".into())]);
    assert_eq!(
        db.scalar("SELECT count(*) FROM links WHERE target_url LIKE '%/from-%'")
            .await,
        2,
        "their links are rows"
    );
}

/// `unavailable_after` takes a date in RFC 822's or RFC 850's form (Google's documented
/// ones), which has a comma and colons (`Sun, 06 Nov 2050 08:49:37 GMT`): the date's part
/// after the comma names no crawler, so the directives after it still bind this one, in
/// the same header line and in the next robots `<meta>`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dated_unavailable_after_hides_no_later_directive() {
    let site = robots_directives_site(
        "<meta name='robots' content='unavailable_after: Sun, 06 Nov 2050 08:49:37 GMT'>\
         <meta name='robots' content='noindex, nofollow'>",
        "unavailable_after: Sunday, 06-Nov-50 08:49:37 GMT, nofollow",
    )
    .await;
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;
    assert_eq!(
        requests_from_meta_and_header(&site),
        [0, 0],
        "requests of the two nofollow pages' links"
    );
    assert_eq!(
        robots_flags(&harness, &site, &["/meta", "/header"]).await,
        [11, 1],
        "noindex * 10 + nofollow of the two pages"
    );
}

/// `X-Robots-Tag` is how a document with no `<meta>` (a PDF, an image) says `noindex`:
/// its row says so too, though its body is never read, as an HTML page's does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_x_robots_tag_on_a_document_not_read_is_recorded() {
    let pdf = |tag: &str| {
        Resource::WithHeaders(
            vec![("X-Robots-Tag".into(), tag.into())],
            Box::new(Resource::Typed("application/pdf", b"%PDF-1.7\n".to_vec())),
        )
    };
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(
        &h,
        "/",
        html("<a href='/ours.pdf'>ours</a><a href='/theirs.pdf'>theirs</a>"),
    );
    b.add(&h, "/ours.pdf", pdf("noindex, nofollow"));
    b.add(&h, "/theirs.pdf", pdf("googlebot: noindex"));
    let site = b.start();
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;
    assert_eq!(
        robots_flags(&harness, &site, &["/ours.pdf", "/theirs.pdf"]).await,
        [11, 0],
        "noindex * 10 + nofollow of the two documents"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sitemaps_from_robots_txt_seed_pages_nothing_links_to() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    let base = format!("http://{h}");
    b.add(
        &h,
        "/robots.txt",
        text(&format!(
            "User-agent: *\nAllow: /\nSitemap: {base}/index.xml\n"
        )),
    );
    b.add(&h, "/", html("<title>Home</title>"));
    b.add(
        &h,
        "/index.xml",
        Resource::Typed(
            "application/xml",
            format!(
                "<sitemapindex><sitemap><loc>{base}/pages.xml.gz</loc></sitemap></sitemapindex>"
            )
            .into_bytes(),
        ),
    );
    let urlset = format!(
        "<urlset><url><loc>{base}/hidden-1</loc></url><url><loc>{base}/hidden-2?a=1&amp;b=2</loc></url><url><loc>http://127.0.0.9:9/out</loc></url></urlset>"
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, urlset.as_bytes()).expect("gzip in memory");
    b.add(
        &h,
        "/pages.xml.gz",
        Resource::Typed("application/gzip", gz.finish().expect("gzip in memory")),
    );
    b.add(&h, "/hidden-1", html("<title>Hidden one</title>"));
    b.add(&h, "/hidden-2?a=1&b=2", html("<title>Hidden two</title>"));
    let site = b.start();

    let without = Harness::default();
    without.crawl(&[site.url(0, "/")], "").await;
    assert_eq!(without.page_count().await, 1, "sitemaps are off by default");

    let harness = Harness::default();
    let summary = harness
        .crawl(&[site.url(0, "/")], "[scope]\nsitemaps = true\n")
        .await;
    // The sitemap files are among the pages crawled, and their URLs among no figure:
    // "crawled 5 pages, 0 links" left a user to guess what the sitemaps gave.
    let said = summary.to_string();
    assert!(
        said.starts_with("crawled 5 pages")
            && said.contains(
                "\nsitemaps: 2 (of the pages crawled, files read for the URLs they list), \
                 listing 2 URLs in scope\n"
            ),
        "the summary says apart what the sitemaps listed: {said}"
    );
    let db = harness.db().await;
    assert_eq!(
        db.page(&site.url(0, "/hidden-1"))
            .await
            .and_then(|p| p.title)
            .as_deref(),
        Some("Hidden one")
    );
    assert_eq!(
        db.page(&site.url(0, "/hidden-2?a=1&b=2"))
            .await
            .and_then(|p| p.title)
            .as_deref(),
        Some("Hidden two")
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM frontier WHERE kind = 'sitemap'")
            .await,
        2
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM pages WHERE url LIKE '%127.0.0.9%'")
            .await,
        0,
        "sitemap entries are scoped"
    );
}

/// With robots.txt not obeyed, it is read only for its sitemaps: one that does not
/// answer costs the sitemaps, not the pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_robots_txt_that_hangs_does_not_fail_pages_when_robots_are_not_obeyed() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(
        &h,
        "/robots.txt",
        Resource::Slow(Duration::from_secs(3), Box::new(text("User-agent: *\n"))),
    );
    b.add(&h, "/", html("<title>Home</title>"));
    let site = b.start();
    let harness = Harness::default();
    harness
        .crawl(
            &[site.url(0, "/")],
            "[fetch]\ntimeout_ms = 300\n[politeness]\nrespect_robots_txt = false\n\
             [scope]\nsitemaps = true\n",
        )
        .await;
    let home = harness.db().await.page(&site.url(0, "/")).await;
    assert_eq!(
        home.map(|p| (p.status, p.error_kind)),
        Some((Some(200), None))
    );
}

/// robots.txt is kept for a day, so a host's sitemaps cannot wait for its next fetch:
/// a run that finds robots.txt already stored (sitemaps turned on for a crawl under way,
/// or a restart after a kill before the first page's commit) reads them from there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sitemaps_turned_on_for_a_crawl_under_way_are_read_from_the_stored_robots_txt() {
    let site = host_with_a_sitemap("<a href=\"/next\">next</a>", |sitemap| sitemap).await;

    let harness = Harness::default();
    harness
        .crawl(&[site.url(0, "/")], "[scope]\nmax_pages = 1\n")
        .await;
    assert_eq!(harness.page_count().await, 1);
    harness
        .crawl(&[site.url(0, "/")], "[scope]\nsitemaps = true\n")
        .await;
    assert_eq!(
        robots_requests(&site, 0),
        1,
        "robots.txt came from the database"
    );
    assert_eq!(
        title_at(&harness, &site, "/hidden").await.as_deref(),
        Some("Hidden")
    );
}

/// A host whose robots.txt names `/sitemap.xml`, which lists `/hidden`, a page nothing
/// links to. `/` is titled Home and holds `links`; `/a` links to `/next`. The sitemap
/// is served as `dress` makes it.
async fn host_with_a_sitemap(links: &str, dress: fn(Resource) -> Resource) -> TestSite {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    let base = format!("http://{h}");
    b.add(
        &h,
        "/robots.txt",
        text(&format!("User-agent: *\nSitemap: {base}/sitemap.xml\n")),
    );
    b.add(&h, "/", html(&format!("<title>Home</title>{links}")));
    b.add(&h, "/a", html("<title>A</title><a href=\"/next\">next</a>"));
    b.add(&h, "/next", html("<title>Next</title>"));
    let urlset = format!("<urlset><url><loc>{base}/hidden</loc></url></urlset>");
    b.add(
        &h,
        "/sitemap.xml",
        dress(Resource::Typed("application/xml", urlset.into_bytes())),
    );
    b.add(&h, "/hidden", html("<title>Hidden</title>"));
    b.start()
}

/// The title stored for `path` on the site's first host: `/hidden`, the page
/// [`host_with_a_sitemap`]'s sitemap alone lists, or `/post`, [`host_naming_a_sitemap`]'s.
pub(super) async fn title_at(harness: &Harness, site: &TestSite, path: &str) -> Option<String> {
    let db = harness.db().await;
    db.page(&site.url(0, path)).await.and_then(|p| p.title)
}

/// A host's pause outlives its last URL only to keep it quiet should more URLs come: a
/// crawl with nothing left to fetch ends without sitting it out. The pause is a minute
/// (`retry.max_delay_ms`) and the crawl may take half of it: on a loaded machine even a
/// crawl of two pages takes seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_ends_when_its_work_does_not_when_a_host_pause_would() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(&h, "/", html("<a href='/busy'>busy</a>"));
    b.add(
        &h,
        "/busy",
        Resource::WithHeaders(
            vec![("Retry-After".into(), "60".into())],
            Box::new(Resource::Status(503, "busy".into())),
        ),
    );
    let site = b.start();
    let harness = Harness::default();
    let summary = harness.crawl(&[site.url(0, "/")], "").await;

    assert_eq!(
        site.count(&site.url(0, "/busy")),
        1,
        "one attempt is allowed"
    );
    assert_eq!(harness.page_count().await, 2);
    assert!(
        summary.elapsed < Duration::from_secs(30),
        "the crawl took {:?}",
        summary.elapsed
    );
}

/// A `Retry-After` already past (a server clock behind ours) or of 0 asks for no wait of
/// its own; the retries still back off rather than follow at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_in_the_past_still_backs_off() {
    let answers = ["Wed, 21 Oct 2015 07:28:00 GMT", "0"].map(|value| {
        Resource::WithHeaders(
            vec![("Retry-After".into(), value.into())],
            Box::new(Resource::Status(503, "busy".into())),
        )
    });
    let (site, _harness) = crawl_hosts_each_linking_to(
        "/busy",
        answers.to_vec(),
        "[retry]\nmax_attempts = 3\nbase_delay_ms = 400\nmax_delay_ms = 10000\n",
    )
    .await;

    for h in &site.authorities {
        let tries = site.hits_at(h, "/busy");
        assert_eq!(tries.len(), 3, "{h}: every attempt is made");
        for pair in tries.windows(2) {
            let gap = pair[1].at.duration_since(pair[0].done);
            // The first backoff is 400 ms less up to half for jitter.
            assert!(
                gap + JITTER >= Duration::from_millis(200),
                "{h}: retried {gap:?} after the answer"
            );
        }
    }
}

/// A page answered 503 with `headers` once, then titled `x`.
fn unavailable_once(headers: Vec<(String, String)>) -> Resource {
    Resource::Sequence(vec![
        Resource::WithHeaders(headers, Box::new(Resource::Status(503, "busy".into()))),
        html("<title>x</title>"),
    ])
}

/// A `Retry-After` date is the server's clock's: a server ten minutes behind ours that
/// asks for two seconds writes a date ten minutes before our now, which read against our
/// clock is no wait at all (and ten minutes ahead, a wait past `retry.max_delay_ms`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_date_is_counted_from_the_answers_own_date() {
    const ASKED: Duration = Duration::from_secs(2);
    let server_now = std::time::SystemTime::now() - Duration::from_secs(600);
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(&h, "/", html("<a href='/busy'>busy</a>"));
    b.add(
        &h,
        "/busy",
        unavailable_once(vec![
            ("Date".into(), httpdate::fmt_http_date(server_now)),
            (
                "Retry-After".into(),
                httpdate::fmt_http_date(server_now + ASKED),
            ),
        ]),
    );
    let site = b.start();
    let harness = Harness::default();
    harness
        .crawl(
            &[site.url(0, "/")],
            "[retry]\nmax_attempts = 2\nbase_delay_ms = 10\nmax_delay_ms = 10000\n",
        )
        .await;

    let tries = site.hits_at(&h, "/busy");
    assert_eq!(tries.len(), 2, "asked again once");
    let gap = tries[1].at.duration_since(tries[0].done);
    assert!(gap + JITTER >= ASKED, "retried {gap:?} after the answer");
    assert_eq!(
        title_at(&harness, &site, "/busy").await.as_deref(),
        Some("x")
    );
}

/// An API's 429 often says when its quota resets in `RateLimit-Reset` (seconds to wait,
/// or GitLab's unix time) or `X-RateLimit-Reset` (GitHub's unix time) and no
/// `Retry-After`. Read as no wait at all, the URL spent its attempts on the crawl's short
/// backoff within the quota's window, each answered with another 429, and was lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429s_rate_limit_reset_is_waited_for_as_a_retry_after() {
    const ASKED: Duration = Duration::from_secs(2);
    let reset_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
        + ASKED.as_secs()
        + 1;
    let headers = [
        ("RateLimit-Reset", ASKED.as_secs().to_string()),
        ("X-RateLimit-Reset", reset_at.to_string()),
    ];
    let answers = headers.iter().map(|(name, value)| {
        Resource::Sequence(vec![
            Resource::WithHeaders(
                vec![((*name).into(), value.clone())],
                Box::new(Resource::Status(429, "quota spent".into())),
            ),
            html("<title>x</title>"),
        ])
    });
    let (site, harness) = crawl_hosts_each_linking_to(
        "/quota",
        answers.collect(),
        "[retry]\nmax_attempts = 2\nbase_delay_ms = 10\nmax_delay_ms = 10000\n",
    )
    .await;

    let db = harness.db().await;
    for (i, (name, _)) in headers.iter().enumerate() {
        let tries = site.hits_at(&site.authorities[i], "/quota");
        assert_eq!(tries.len(), 2, "{name}: asked again once");
        let gap = tries[1].at.duration_since(tries[0].done);
        assert!(
            gap + JITTER >= ASKED,
            "{name}: retried {gap:?} after the 429"
        );
        let page = db.page(&site.url(i, "/quota")).await;
        assert_eq!(page.and_then(|p| p.title).as_deref(), Some("x"), "{name}");
    }
}

/// Crawls one host per answer, each with a home linking to `path` and `path` answering
/// its answer, with `config`.
async fn crawl_hosts_each_linking_to(
    path: &str,
    answers: Vec<Resource>,
    config: &str,
) -> (TestSite, Harness) {
    let count = u8::try_from(answers.len()).expect("a few hosts");
    let mut b = SiteBuilder::bind(count).await;
    let mut seeds = Vec::new();
    for (i, answer) in answers.into_iter().enumerate() {
        let h = b.authority(i);
        b.add(&h, "/", html(&format!("<a href='{path}'>it</a>")));
        b.add(&h, path, answer);
        seeds.push(format!("http://{h}/"));
    }
    let site = b.start();
    let harness = Harness::default();
    harness.crawl(&seeds, config).await;
    (site, harness)
}

/// A 429 speaks of the host's rate, not of one URL: without a `Retry-After` the host
/// still slows down, for as long as the URL waits for its retry, instead of taking the
/// next URLs at once and answering each with another 429.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_429_slows_the_whole_host() {
    assert_a_bare_answer_slows_the_whole_host(429).await;
}

/// A 502 or 504 comes from a gateway whose server behind it is down or overloaded: the
/// next URLs of the host would get the same answer, each asking the struggling server
/// again at the crawl's full pace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_502_or_504_slows_the_whole_host() {
    assert_a_bare_answer_slows_the_whole_host(502).await;
    assert_a_bare_answer_slows_the_whole_host(504).await;
}

async fn assert_a_bare_answer_slows_the_whole_host(status: u16) {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    let links: String = (0..4).map(|i| format!("<a href='/{i}'>{i}</a>")).collect();
    b.add(&h, "/", html(&links));
    for i in 0..4 {
        b.add(
            &h,
            &format!("/{i}"),
            Resource::Sequence(vec![
                Resource::Status(status, "not now".into()),
                html("<title>x</title>"),
            ]),
        );
    }
    let site = b.start();
    let harness = Harness::default();
    harness
        .crawl(
            &[site.url(0, "/")],
            "[politeness]\ndelay_ms = 0\nper_host_concurrency = 1\n[retry]\nmax_attempts = 2\nbase_delay_ms = 600\n",
        )
        .await;

    // The first retry waits 600 ms less up to half for jitter.
    assert_quiet_after_first_page(&site, &h, &["/"], Duration::from_millis(300));
    assert_eq!(
        harness
            .db()
            .await
            .scalar("SELECT count(*) FROM pages WHERE status = 200")
            .await,
        5,
        "every page came in its second try after a {status}"
    );
}

/// A robots.txt that redirects to another host (`example.com` to `www.example.com`) is a
/// request to that host like any other: it waits for the host's concurrency limit too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_robots_txt_redirect_to_another_host_keeps_that_hosts_limit() {
    let mut b = SiteBuilder::bind(2).await;
    let (alias, main) = (b.authority(0), b.authority(1));
    let slow = |r: Resource| Resource::Slow(Duration::from_millis(300), Box::new(r));
    b.add(
        &alias,
        "/robots.txt",
        Resource::Redirect(301, format!("http://{main}/robots.txt")),
    );
    b.add(&alias, "/", html("<title>alias</title>"));
    b.add(
        &main,
        "/robots.txt",
        slow(text("User-agent: *\nAllow: /\n")),
    );
    b.add(&main, "/", slow(html("<a href='/a'>a</a>")));
    b.add(&main, "/a", slow(html("<title>a</title>")));
    let site = b.start();
    let harness = Harness::default();
    harness
        .crawl(
            &[site.url(0, "/"), site.url(1, "/")],
            "[politeness]\ndelay_ms = 0\nper_host_concurrency = 1\n",
        )
        .await;

    assert_eq!(site.max_in_flight(&main), 1);
    assert_eq!(harness.page_count().await, 3);
}

/// A robots.txt answered with 503 and a `Retry-After` is asked for again when the server
/// said, not at once: the host's URLs wait for it rather than spend their attempts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_robots_txt_retry_after_is_obeyed() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(
        &h,
        "/robots.txt",
        Resource::Sequence(vec![
            Resource::WithHeaders(
                vec![("Retry-After".into(), "2".into())],
                Box::new(Resource::Status(503, "busy".into())),
            ),
            text("User-agent: *\nAllow: /\n"),
        ]),
    );
    b.add(&h, "/", html("<title>Home</title>"));
    let site = b.start();
    let harness = Harness::default();
    harness
        .crawl(
            &[site.url(0, "/")],
            "[retry]\nmax_attempts = 3\nbase_delay_ms = 100\nmax_delay_ms = 10000\n",
        )
        .await;

    let hits = site.hits_for(&h);
    let robots: Vec<_> = hits.iter().filter(|x| x.path == "/robots.txt").collect();
    assert_eq!(robots.len(), 2, "robots.txt is asked again once");
    let waited = robots[1].at.duration_since(robots[0].done);
    assert!(
        waited + JITTER >= Duration::from_secs(2),
        "robots.txt was asked again {waited:?} after the 503"
    );
    assert_eq!(
        harness
            .db()
            .await
            .page(&site.url(0, "/"))
            .await
            .and_then(|p| p.title)
            .as_deref(),
        Some("Home")
    );
}

/// A robots.txt that redirects to another host (`example.com` to `www.example.com`) whose
/// server answers 503 with a `Retry-After` pauses that server, which said so, not only
/// the host whose robots.txt it is: the other host's own robots.txt and pages were asked
/// at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_on_a_redirected_robots_txt_pauses_the_host_that_answered() {
    const WAIT: Duration = Duration::from_secs(2);
    let mut b = SiteBuilder::bind(2).await;
    let (alias, main) = (b.authority(0), b.authority(1));
    b.add(
        &alias,
        "/robots.txt",
        Resource::Redirect(301, format!("http://{main}/robots.txt")),
    );
    b.add(&alias, "/", html("<title>alias</title>"));
    let busy = Resource::WithHeaders(
        vec![("Retry-After".into(), WAIT.as_secs().to_string())],
        Box::new(Resource::Status(503, "busy".into())),
    );
    let allowed = text("User-agent: *\nAllow: /\n");
    b.add(
        &main,
        "/robots.txt",
        Resource::Sequence(vec![busy, allowed]),
    );
    b.add(&main, "/", html("<title>main</title>"));
    let site = b.start();
    let harness = Harness::default();
    harness
        .crawl(
            &[site.url(0, "/"), site.url(1, "/")],
            "[fetch]\nworkers = 1\n[retry]\nmax_attempts = 3\nmax_delay_ms = 10000\n",
        )
        .await;

    let first = site.hits().into_iter().next().expect("a request");
    assert_eq!(first.path, "/robots.txt", "the crawl began elsewhere");
    assert_eq!(first.host, alias, "the crawl began elsewhere");
    let hits = site.hits_for(&main);
    let (busy, later) = hits.split_first().expect("main asked");
    let early: Vec<_> = later
        .iter()
        .map(|h| (h.path.as_str(), h.at.duration_since(busy.done)))
        .filter(|(_, after)| *after + JITTER < WAIT)
        .collect();
    assert!(early.is_empty(), "asked within the Retry-After: {early:?}");
    assert_eq!(harness.page_count().await, 2);
}

/// A request already waiting its turn at the host when another's 503 says "come back in
/// 3 s" waits for that too: the server asked the host, not one URL, to be left alone.
/// Here robots.txt's Crawl-delay has the second page wait at the gate while the first is
/// answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_waiting_its_turn_obeys_a_retry_after_that_came_meanwhile() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(&h, "/robots.txt", text("User-agent: *\nCrawl-delay: 1\n"));
    for p in ["/a", "/b"] {
        b.add(
            &h,
            p,
            unavailable_once(vec![("Retry-After".into(), "3".into())]),
        );
    }
    let site = b.start();
    let harness = Harness::default();
    harness
        .crawl(
            &[site.url(0, "/a"), site.url(0, "/b")],
            "[politeness]\ndelay_ms = 100\nper_host_concurrency = 2\n[retry]\nmax_attempts = 2\n",
        )
        .await;

    assert_quiet_after_first_page(&site, &h, &[], Duration::from_secs(3));
    assert_eq!(
        harness
            .db()
            .await
            .scalar("SELECT count(*) FROM pages WHERE status = 200")
            .await,
        2
    );
}

/// The patient host's Crawl-delay: what the quick host's pages are crawled within, so
/// long that they are done well before it on a loaded machine too.
const PATIENT_DELAY: Duration = Duration::from_secs(5);

/// A site of two hosts: a patient one (`Crawl-delay` [`PATIENT_DELAY`]) serving
/// `patient_pages`, and a quick one whose home page links to four pages. Returns it with
/// the two authorities.
async fn patient_and_quick(patient_pages: &[&str]) -> (TestSite, String, String) {
    let mut b = SiteBuilder::bind(2).await;
    let (patient, quick) = (b.authority(0), b.authority(1));
    b.add(
        &patient,
        "/robots.txt",
        text(&format!(
            "User-agent: *\nCrawl-delay: {}\n",
            PATIENT_DELAY.as_secs()
        )),
    );
    for p in patient_pages {
        b.add(&patient, p, html("<title>x</title>"));
    }
    let links: String = (0..4).map(|i| format!("<a href='/{i}'>{i}</a>")).collect();
    b.add(&quick, "/", html(&links));
    for i in 0..4 {
        b.add(&quick, &format!("/{i}"), html("<title>x</title>"));
    }
    (b.start(), patient, quick)
}

/// A host met for the first time has its Crawl-delay learned from its first job's
/// robots.txt: the frontier must hear of it then, not when that job ends, or it hands
/// the host's next job to a worker that then sleeps at the host's gate for the delay
/// while other hosts' pages wait for a worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_delay_learned_by_a_hosts_first_job_holds_its_next_in_the_frontier() {
    let (site, patient, quick) = patient_and_quick(&["/a", "/b"]).await;
    let harness = Harness::default();
    harness
        .crawl(
            &[site.url(0, "/a"), site.url(0, "/b"), site.url(1, "/")],
            "[politeness]\ndelay_ms = 300\nper_host_concurrency = 2\n[fetch]\nworkers = 2\n",
        )
        .await;

    // The patient host's first page waits out the Crawl-delay its robots.txt began on
    // one worker; the other worker has the quick host's five pages, 300 ms apart,
    // meanwhile. Had the frontier handed out the patient host's second page, both
    // workers would sit at its gate and the quick host's pages would come after.
    assert_done_before_first_page(&site, &quick, &patient);
    assert_eq!(harness.page_count().await, 2 + 5);
}

/// A job whose host may not be asked for a while yet (here the Crawl-delay its own
/// robots.txt request began) goes back to the frontier rather than hold a fetch worker
/// asleep: with one worker, the other host's pages are fetched meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_must_wait_for_its_host_gives_its_worker_to_other_hosts() {
    let (site, patient, quick) = patient_and_quick(&["/"]).await;
    let harness = Harness::default();
    harness
        .crawl(
            &[site.url(0, "/"), site.url(1, "/")],
            "[politeness]\ndelay_ms = 0\n[fetch]\nworkers = 1\n",
        )
        .await;

    // The patient host's page waits out its Crawl-delay in the frontier; held on the
    // one worker instead, it would go before any of the quick host's pages waiting.
    assert_done_before_first_page(&site, &quick, &patient);
    let gap = site.min_gap(&patient).expect("robots.txt and the page");
    assert!(
        gap + JITTER >= PATIENT_DELAY,
        "{patient}: requests {gap:?} apart"
    );
    assert_eq!(harness.page_count().await, 1 + 5);
}

/// A host whose robots.txt answers `status`, and its authority.
async fn robots_txt_answering(status: u16) -> (TestSite, String) {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(&h, "/robots.txt", Resource::Status(status, "down".into()));
    (b.start(), h)
}

/// A host whose robots.txt keeps failing is asked for it less and less often, however
/// many of its URLs come due: each failure doubles the wait before the next request (up
/// to `retry.max_delay_ms`), and URLs due meanwhile fail at once, without a connection.
/// It was asked again every `retry.base_delay_ms` while any URL came due: a host down for
/// an hour heard from the crawler all hour, and a host that does not answer at all held
/// workers through a connect timeout for each of those requests. The URLs' rows say
/// what robots.txt answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_robots_txt_that_keeps_failing_is_asked_less_and_less_often() {
    let (site, h) = robots_txt_answering(500).await;
    let seeds: Vec<String> = (0..40).map(|i| site.url(0, &format!("/p{i}"))).collect();
    let harness = Harness::default();
    harness
        .crawl(
            &seeds,
            "[retry]\nmax_attempts = 4\nbase_delay_ms = 20\nmax_delay_ms = 60000\n",
        )
        .await;

    let asked: Vec<_> = site
        .hits_at(&h, "/robots.txt")
        .into_iter()
        .map(|x| x.at)
        .collect();
    assert!(asked.len() >= 3, "asked again: {}", asked.len());
    let waits: Vec<Duration> = asked.windows(2).map(|w| w[1] - w[0]).collect();
    for (n, wait) in waits.iter().enumerate() {
        assert!(
            *wait >= Duration::from_millis(20 << n),
            "the wait doubles with each failure: {waits:?}"
        );
    }
    assert_eq!(site.hits_for(&h).len(), asked.len(), "no page was fetched");
    let db = harness.db().await;
    assert_eq!(
        db.scalar("SELECT count(*) FROM pages WHERE error_kind = 'robots_unavailable'")
            .await,
        40
    );
    // And they say what robots.txt answered: they said "could not be fetched" alone, and
    // `hosts.robots_status` stays NULL (it keeps a robots.txt that applies), so the 500
    // of a server that runs was told nowhere.
    assert_eq!(
        db.scalar("SELECT count(*) FROM pages WHERE error LIKE 'robots.txt answered 500:%'")
            .await,
        40
    );
}

/// A URL whose host's robots.txt keeps failing is tried `retry.max_attempts` times, as
/// README says, with a fixed retry wait too (`base_delay_ms = max_delay_ms`, Heritrix's
/// `retryDelaySeconds`, StormCrawler's `fetchInterval.fetch.error`). The URL waits for
/// robots.txt's recheck, a millisecond after it, and a wait past `retry.max_delay_ms`
/// ends a URL's tries as a server's long `Retry-After` does: once robots.txt's wait
/// reached the cap, the URL was stored failed after one attempt, not four.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_waiting_on_a_failing_robots_txt_has_every_attempt_at_a_fixed_retry_wait() {
    let (site, h) = robots_txt_answering(503).await;
    let harness = Harness::default();
    harness
        .crawl(
            &[site.url(0, "/p")],
            "[retry]\nmax_attempts = 4\nbase_delay_ms = 50\nmax_delay_ms = 50\n",
        )
        .await;
    let db = harness.db().await;
    assert_eq!(
        db.scalar("SELECT attempts FROM frontier WHERE url LIKE '%/p'")
            .await,
        4,
        "the URL's attempts"
    );
    assert_eq!(site.hits_at(&h, "/robots.txt").len(), 4, "robots.txt asked");
    assert_eq!(
        db.scalar("SELECT count(*) FROM pages WHERE error_kind = 'robots_unavailable'")
            .await,
        1
    );
}

/// A site's footer often links to its sitemap. Crawled with sitemaps off, that link
/// made `/sitemap.xml` a page (XML, not read); with sitemaps turned on for the crawl
/// under way, the sitemap robots.txt names is that URL, and it must be read as a
/// sitemap all the same, though the server answers its ETag with a 304.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sitemap_known_as_a_linked_page_is_read_once_sitemaps_are_on() {
    let site = host_with_a_sitemap(
        "<a href=\"/sitemap.xml\">Sitemap</a><a href=\"/a\">a</a>",
        |sitemap| Resource::Validated("\"v1\"".into(), Box::new(sitemap)),
    )
    .await;
    let harness = Harness::default();
    harness
        .crawl(&[site.url(0, "/")], "[scope]\nmax_pages = 3\n")
        .await;
    let db = harness.db().await;
    assert!(
        db.page(&site.url(0, "/sitemap.xml")).await.is_some(),
        "the linked sitemap was stored as a page"
    );
    harness
        .crawl(&[site.url(0, "/")], "[scope]\nsitemaps = true\n")
        .await;
    assert_eq!(
        title_at(&harness, &site, "/hidden").await.as_deref(),
        Some("Hidden"),
        "the sitemap robots.txt names was not read"
    );
}

/// Sites that send every unknown URL home answer `/sitemap.xml` with a redirect to `/`:
/// that is no sitemap, and the home page stays the page it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sitemap_redirected_to_a_page_leaves_the_page_as_it_is() {
    let site = sitemap_redirected_to(
        "/",
        &[
            ("/", "<title>Home</title><a href=\"/a\">a</a>"),
            ("/a", "<title>A</title>"),
        ],
    )
    .await;
    let harness = Harness::default();
    harness
        .crawl(&[site.url(0, "/")], "[scope]\nsitemaps = true\n")
        .await;
    assert_eq!(
        title_and_error(&harness, &site.url(0, "/")).await,
        Some((Some("Home".to_owned()), None))
    );
    assert_eq!(site.count(&site.url(0, "/")), 1, "home is fetched once");
}

/// A crawl seeded with the sitemap robots.txt names, sitemaps on, reads it as the
/// sitemap it is: a seed is a page, but this one the site itself calls a sitemap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_robots_txt_names_as_a_sitemap_is_read_as_one() {
    let site = host_with_a_sitemap("", |sitemap| sitemap).await;
    let harness = Harness::default();
    harness
        .crawl(&[site.url(0, "/sitemap.xml")], "[scope]\nsitemaps = true\n")
        .await;
    assert_eq!(
        title_at(&harness, &site, "/hidden").await.as_deref(),
        Some("Hidden"),
        "the seeded sitemap was not read"
    );
}

/// A sitemap whose every answer breaks off part way (a proxy that cuts large responses,
/// a slow server past `fetch.timeout_ms`) is asked again like any page; once the
/// attempts are spent, the URLs before the break are read, as they are from a sitemap
/// whose XML breaks off, and its row keeps the error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sitemap_cut_off_on_every_attempt_yields_the_urls_before_the_cut() {
    let (raw, site, harness) = crawl_a_sitemap_cut_off(|listed| {
        format!("<urlset><url><loc>{listed}</loc></url><url><loc>")
    })
    .await;
    assert_eq!(raw.count("/sitemap.xml"), 2, "asked again once");
    let db = harness.db().await;
    let sitemap = db.page(&raw.url("/sitemap.xml")).await;
    assert_eq!(sitemap.and_then(|p| p.error_kind).as_deref(), Some("body"));
    assert_eq!(
        db.page(&site.url(0, "/listed"))
            .await
            .and_then(|p| p.title)
            .as_deref(),
        Some("Listed"),
        "the URL before the cut was not read"
    );
}

/// Crawls a site whose `/sitemap.xml` always breaks off after `body` (made from the
/// URL of a page only it lists), retried once.
async fn crawl_a_sitemap_cut_off(body: fn(&str) -> String) -> (RawSite, TestSite, Harness) {
    // The listed page is on a second seed's host: the raw site's answers are fixed
    // before its address is known.
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(&h, "/", html("<title>Other</title>"));
    b.add(&h, "/listed", html("<title>Listed</title>"));
    let site = b.start();
    let raw = RawSite::start(vec![
        ("/", RawReply::ok("text/html", "<title>Home</title>")),
        (
            "/sitemap.xml",
            RawReply::new(
                "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: 100000",
                body(&site.url(0, "/listed")),
                Ending::Reset,
            ),
        ),
    ])
    .await;
    let harness = Harness::default();
    harness
        .crawl(
            &[raw.url("/"), site.url(0, "/")],
            "[scope]\nsitemaps = true\n\
             [retry]\nmax_attempts = 2\nbase_delay_ms = 10\nmax_delay_ms = 10\n",
        )
        .await;
    (raw, site, harness)
}

/// A plain-text sitemap cut off mid-line: the line's start is no URL the site lists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_sitemap_cut_off_mid_line_does_not_queue_the_lines_start() {
    let (_raw, site, harness) =
        crawl_a_sitemap_cut_off(|listed| format!("{listed}\n{listed}-and-mo")).await;
    let db = harness.db().await;
    assert_eq!(
        db.page(&site.url(0, "/listed"))
            .await
            .and_then(|p| p.title)
            .as_deref(),
        Some("Listed")
    );
    assert!(
        db.page(&site.url(0, "/listed-and-mo")).await.is_none(),
        "half a URL was fetched"
    );
}

/// A site whose robots.txt names its RSS feed as its sitemap (as many blogs' do): the
/// feed's items are its pages, crawled though nothing links to them. Before, the feed's
/// row said "not a sitemap" and nothing more was found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_named_as_a_sitemap_is_read_for_its_items() {
    let site = host_naming_a_sitemap("{base}/feed", ("/feed", "application/rss+xml"), |base| {
        format!(
            "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><link>{base}/</link>\
             <item><title>Post</title><link>{base}/post</link></item></channel></rss>"
        )
    })
    .await;
    let harness = Harness::default();
    harness
        .crawl(&[site.url(0, "/")], "[scope]\nsitemaps = true\n")
        .await;
    assert_eq!(
        title_at(&harness, &site, "/post").await.as_deref(),
        Some("Post")
    );
    assert_eq!(
        harness
            .db()
            .await
            .page(&site.url(0, "/feed"))
            .await
            .and_then(|p| p.error),
        None
    );
}

/// A host whose robots.txt names `named` as its sitemap (`{base}` in it stands for the
/// host's URL), whose `path` answers as `kind` what `body` makes of that URL, and whose
/// `/` (Home) links nowhere and `/post` (Post) is linked from nothing.
async fn host_naming_a_sitemap(
    named: &str,
    (path, kind): (&str, &'static str),
    body: fn(&str) -> String,
) -> TestSite {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    let base = format!("http://{h}");
    let named = named.replace("{base}", &base);
    b.add(
        &h,
        "/robots.txt",
        text(&format!("User-agent: *\nSitemap: {named}\n")),
    );
    b.add(&h, "/", html("<title>Home</title>"));
    b.add(&h, path, Resource::Typed(kind, body(&base).into_bytes()));
    b.add(&h, "/post", html("<title>Post</title>"));
    b.start()
}

/// A feed's links may be relative: Atom resolves them against `xml:base`, else the
/// feed's URL, and feed readers take RSS's so too (`<link>/2024/post</link>`, as
/// site generators write them). Dropped, a blog naming its feed as its sitemap yielded
/// no page, and no error said why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feeds_relative_links_are_read_against_its_url() {
    let atom = host_naming_a_sitemap(
        "/feeds/atom",
        ("/feeds/atom", "application/atom+xml"),
        |_| {
            "<feed xmlns=\"http://www.w3.org/2005/Atom\" xml:base=\"/x/y/\">\
         <entry><link rel=\"alternate\" href=\"../../post\"/></entry></feed>"
                .to_owned()
        },
    )
    .await;
    let rss = host_naming_a_sitemap("/feeds/rss", ("/feeds/rss", "application/rss+xml"), |_| {
        "<rss version=\"2.0\"><channel><link>/</link>\
         <item><title>Post</title><link>../post</link></item></channel></rss>"
            .to_owned()
    })
    .await;
    for (site, feed) in [(atom, "/feeds/atom"), (rss, "/feeds/rss")] {
        let harness = Harness::default();
        harness
            .crawl(&[site.url(0, "/")], "[scope]\nsitemaps = true\n")
            .await;
        let error = harness
            .db()
            .await
            .page(&site.url(0, feed))
            .await
            .and_then(|p| p.error);
        assert_eq!(
            title_at(&harness, &site, "/post").await.as_deref(),
            Some("Post"),
            "{feed}'s relative link was not read: {error:?}"
        );
    }
}

/// A robots.txt may name a sitemap on another host (the protocol's "cross submission":
/// `Sitemap: https://cdn.example/sitemaps/index.xml`, a bucket, `www.` against the bare
/// domain), and search engines read it. It was dropped without a word, and, robots.txt
/// naming one, `/sitemap.xml` was not asked either: such a site yielded no sitemap page.
/// The file is read wherever it is, with its own host's robots.txt obeyed (a nested
/// sitemap it disallows is not asked); what it lists is scoped as ever, so its host's
/// pages are not crawled. Both with `scope.hosts` unset and naming the site's host only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sitemap_robots_txt_names_on_another_host_is_read_for_this_hosts_pages() {
    let site = site_with_a_sitemap_on_another_host().await;
    let loopback = "[network]\nallow = [\"127.0.0.0/8\"]\n[scope]\nsitemaps = true\n";
    for hosts in ["", "hosts = [\"127.0.0.1\"]\n"] {
        let harness = Harness::default();
        harness
            .crawl(&[site.url(0, "/")], &format!("{loopback}{hosts}"))
            .await;
        assert_eq!(
            title_at(&harness, &site, "/post").await.as_deref(),
            Some("Post"),
            "the sitemap on the other host was not read ({hosts:?})"
        );
        let db = harness.db().await;
        let nested = db.page(&site.url(1, "/maps/posts.xml")).await;
        assert_eq!(nested.map(|p| p.error_kind), Some(None), "{hosts:?}");
        let moved = db.page(&site.url(0, "/moved-post")).await;
        assert_eq!(
            moved.and_then(|p| p.title).as_deref(),
            Some("Moved"),
            "the sitemap moved to the other host was not read ({hosts:?})"
        );
    }
    assert!(
        robots_requests(&site, 1) > 0,
        "the other host's robots.txt was not asked"
    );
    for path in ["/private/more.xml", "/elsewhere"] {
        assert_eq!(site.count(&site.url(1, path)), 0, "{path} was asked");
    }
    assert_eq!(
        site.count(&site.url(2, "/far.xml")),
        0,
        "a sitemap on a third host, named by the index on the other host, was asked"
    );
}

/// Host 0 (Home at `/`, Post at `/post` and Moved at `/moved-post`, linked from
/// nothing) whose robots.txt names a sitemap index on host 1, `/maps/index.xml`, which
/// names `/maps/posts.xml` (listing host 0's `/post` and host 1's `/elsewhere`) and
/// `/private/more.xml`, which host 1's robots.txt disallows, and host 2's `/far.xml`,
/// which an index on a host out of scope cannot lead to; and its own `/old.xml`,
/// which has moved to host 1's `/maps/moved.xml`, listing `/moved-post`.
async fn site_with_a_sitemap_on_another_host() -> TestSite {
    let mut b = SiteBuilder::bind(3).await;
    let (h, cdn, far) = (b.authority(0), b.authority(1), b.authority(2));
    b.add(&far, "/far.xml", html(""));
    b.add(
        &h,
        "/robots.txt",
        text(&format!(
            "User-agent: *\nSitemap: http://{cdn}/maps/index.xml\nSitemap: http://{h}/old.xml\n"
        )),
    );
    b.add(&h, "/", html("<title>Home</title>"));
    b.add(&h, "/post", html("<title>Post</title>"));
    b.add(&h, "/moved-post", html("<title>Moved</title>"));
    let moved = format!("http://{cdn}/maps/moved.xml");
    b.add(&h, "/old.xml", Resource::Redirect(301, moved));
    b.add(
        &cdn,
        "/robots.txt",
        text("User-agent: *\nDisallow: /private/\n"),
    );
    let xml = |body: String| Resource::Typed("application/xml", body.into_bytes());
    b.add(
        &cdn,
        "/maps/index.xml",
        xml(format!(
            "<sitemapindex><sitemap><loc>http://{cdn}/maps/posts.xml</loc></sitemap>\
             <sitemap><loc>http://{cdn}/private/more.xml</loc></sitemap>\
             <sitemap><loc>http://{far}/far.xml</loc></sitemap></sitemapindex>"
        )),
    );
    b.add(
        &cdn,
        "/maps/posts.xml",
        xml(format!(
            "<urlset><url><loc>http://{h}/post</loc></url>\
             <url><loc>http://{cdn}/elsewhere</loc></url></urlset>"
        )),
    );
    b.add(
        &cdn,
        "/maps/moved.xml",
        xml(format!(
            "<urlset><url><loc>http://{h}/moved-post</loc></url></urlset>"
        )),
    );
    b.add(&cdn, "/private/more.xml", xml(String::new()));
    b.add(&cdn, "/elsewhere", html("<title>Elsewhere</title>"));
    b.start()
}

/// On PostgreSQL, where nodes own hosts, a sitemap on a host the crawl leaves out is
/// queued and its host taken as any row's: the sitemap another host's robots.txt names
/// is read, and the page it lists stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sitemap_on_another_host_is_read_by_a_node() {
    let Some(server) =
        super::postgres::TestPostgres::start("a_sitemap_on_another_host_is_read_by_a_node")
    else {
        return;
    };
    let database = server.database("sitemap_on_another_host").await;
    let site = site_with_a_sitemap_on_another_host().await;
    let harness = Harness::default();
    let config = super::recrawl::config_on(
        &harness,
        &format!("{database:?}"),
        &site.url(0, "/"),
        "[network]\nallow = [\"127.0.0.0/8\"]\n[scope]\nsitemaps = true\nhosts = [\"127.0.0.1\"]\n",
    );
    pipecrawl::crawl(config, std::future::pending())
        .await
        .expect("the crawl succeeds");
    let pool = sqlx::PgPool::connect(&database)
        .await
        .expect("connect to the test database");
    let titles: Vec<Option<String>> = sqlx::query_scalar("SELECT title FROM pages WHERE url = $1")
        .bind(site.url(0, "/post"))
        .fetch_all(&pool)
        .await
        .expect("read the page");
    assert_eq!(titles, [Some("Post".to_owned())]);
}

/// A sitemap another host's robots.txt names is a URL found as any other: on an address
/// `network` does not allow (here loopback), it is refused, and its row says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sitemap_on_another_host_at_a_refused_address_is_a_row_saying_so() {
    let site = site_with_a_sitemap_on_another_host().await;
    let harness = Harness::default();
    harness
        .crawl(&[site.url(0, "/")], "[scope]\nsitemaps = true\n")
        .await;
    let index = harness
        .db()
        .await
        .page(&site.url(1, "/maps/index.xml"))
        .await;
    assert_eq!(
        index.and_then(|p| p.error_kind).as_deref(),
        Some("address_refused")
    );
    assert_eq!(
        site.hits_for(&site.authorities[1]).len(),
        0,
        "the other host was asked"
    );
}

/// A site that sends `/sitemap.xml` to a page (`/en/`, a language's home) that the crawl
/// has queued but not fetched yet: that page is no sitemap, whichever row reaches it
/// first. Read as one, it was stored as "not a sitemap" and its links were never
/// followed. `scope.max_pages` stops each run where the race would be decided, so the
/// redirect lands while `/en/` waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sitemap_redirected_to_a_queued_page_leaves_it_a_page() {
    let site = sitemap_redirected_to(
        "/en/",
        &[
            ("/", "<title>Home</title><a href=\"/en/\">en</a>"),
            ("/en/", "<title>EN</title><a href=\"/en/b\">b</a>"),
            ("/en/b", "<title>B</title>"),
        ],
    )
    .await;
    let harness = Harness::default();
    harness
        .crawl(&[site.url(0, "/")], "[scope]\nmax_pages = 1\n")
        .await;
    harness
        .crawl(
            &[site.url(0, "/sitemap.xml")],
            "[scope]\nsitemaps = true\nmax_pages = 2\n",
        )
        .await;
    harness
        .crawl(&[site.url(0, "/")], "[scope]\nsitemaps = true\n")
        .await;
    assert_eq!(
        title_and_error(&harness, &site.url(0, "/en/")).await,
        Some((Some("EN".to_owned()), None))
    );
    assert!(
        harness
            .db()
            .await
            .page(&site.url(0, "/en/b"))
            .await
            .is_some(),
        "the page's links were not followed"
    );
}

/// A robots.txt that names its sitemap by path (`Sitemap: /maps/index.xml`), as many
/// small sites' do: the protocol wants an absolute URL, but the path can mean only the
/// file on the host robots.txt came from, and readers resolve it there (Scrapy's
/// `sitemap_urls_from_robots`). Dropped, the host's sitemaps were taken for none and
/// `/sitemap.xml` was asked instead, which such a site seldom has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sitemap_robots_txt_names_by_its_path_is_read() {
    let site = host_naming_a_sitemap(
        "/maps/index.xml",
        ("/maps/index.xml", "application/xml"),
        |base| format!("<urlset><url><loc>{base}/post</loc></url></urlset>"),
    )
    .await;
    let harness = Harness::default();
    harness
        .crawl(&[site.url(0, "/")], "[scope]\nsitemaps = true\n")
        .await;
    assert_eq!(
        title_at(&harness, &site, "/post").await.as_deref(),
        Some("Post"),
        "the sitemap named by its path was not read"
    );
}

/// `/sitemap.xml` answered 200 with a plain-text "Not Found" (a framework's catch-all
/// route): no line of it is a URL, so it is no sitemap, and its row says so as an HTML
/// page's does, rather than pass for a sitemap that lists nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_answer_that_lists_no_url_is_no_sitemap() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(&h, "/", html("<title>Home</title>"));
    b.add(
        &h,
        "/sitemap.xml",
        Resource::Typed("text/plain", b"Not Found\n".to_vec()),
    );
    let site = b.start();
    let harness = Harness::default();
    harness
        .crawl(&[site.url(0, "/")], "[scope]\nsitemaps = true\n")
        .await;
    let sitemap = harness.db().await.page(&site.url(0, "/sitemap.xml")).await;
    let (kind, error) = sitemap.map(|p| (p.error_kind, p.error)).unwrap_or_default();
    assert_eq!(kind.as_deref(), Some("parse"), "{error:?}");
    assert!(
        error.is_some_and(|e| e.contains("\"Not Found\"")),
        "the row does not show what the file holds"
    );
}

/// A host of these HTML pages whose `/sitemap.xml` redirects to `to`.
async fn sitemap_redirected_to(to: &str, pages: &[(&str, &str)]) -> TestSite {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    for (path, body) in pages {
        b.add(&h, path, html(body));
    }
    b.add(&h, "/sitemap.xml", Resource::Redirect(301, to.into()));
    b.start()
}

/// The title and error kind stored for `url`, if it was stored.
async fn title_and_error(harness: &Harness, url: &str) -> Option<(Option<String>, Option<String>)> {
    let page = harness.db().await.page(url).await;
    page.map(|p| (p.title, p.error_kind))
}

/// An XHTML page names its encoding in its XML declaration, which is all an XML parser
/// reads (it knows no `<meta charset>`), and which browsers read from a `text/html` page
/// too when no `<meta>` declares one (the HTML standard's "get an XML encoding").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_xml_declarations_encoding_decides_without_header_or_meta() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(&h, "/", html("<a href='/xhtml'>1</a><a href='/html'>2</a>"));
    let page = |title: &str| {
        let text = xhtml("Shift_JIS", title, "ホーム");
        encoding_rs::SHIFT_JIS.encode(&text).0.into_owned()
    };
    b.add(
        &h,
        "/xhtml",
        Resource::Typed("application/xhtml+xml", page("日本語のページ")),
    );
    b.add(&h, "/html", Resource::Typed("text/html", page("漢字")));
    let site = b.start();
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;

    let db = harness.db().await;
    for (path, title) in [("/xhtml", "日本語のページ"), ("/html", "漢字")] {
        let stored = db.page(&site.url(0, path)).await.and_then(|p| p.title);
        assert_eq!(stored.as_deref(), Some(title), "{path}");
    }
    let anchors = db.links().await;
    assert!(anchors.iter().any(|(_, _, a)| a == "ホーム"), "{anchors:?}");
}

/// A UTF-16 page without a byte-order mark or a header charset still says what it is
/// when it opens with an XML declaration: `<?x` in UTF-16, which the HTML standard's
/// prescan reads as UTF-16 of that byte order. It is text, not a binary file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_utf16_xml_declaration_without_a_bom_is_utf16() {
    let page = |title: &str, home: &str| xhtml("UTF-16", title, home);
    utf16_pages_are_read(page, ["application/xhtml+xml", "text/html"]).await;
}

/// A UTF-16 page with neither a byte-order mark nor a declaration (a Windows tool's
/// "Unicode" saved without its mark) has a zero beside every letter of its markup,
/// which Firefox tells UTF-16 by: such a page is text in that byte order, its title and
/// links read, not a binary file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn utf16_without_a_bom_or_declaration_is_told_by_its_zeros() {
    let page = |title: &str, home: &str| {
        format!(
            "<!DOCTYPE html><html><head><title>{title}</title></head>\
             <body><a href=\"/\">{home}</a></body></html>"
        )
    };
    utf16_pages_are_read(page, ["text/html", "text/html"]).await;
}

/// Crawls two pages without a byte-order mark or a header charset, made by `page` from
/// a title and the text of a link home, one in UTF-16LE and one in UTF-16BE, served as
/// `types`; both must be read: their titles stored, no error, their links followed.
async fn utf16_pages_are_read(page: impl Fn(&str, &str) -> String, types: [&'static str; 2]) {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(&h, "/", html("<a href='/le'>1</a><a href='/be'>2</a>"));
    let (le, be) = (
        page("Little \u{e9}ndian", "h\u{f4}me"),
        page("Big \u{e9}ndian", "h\u{f4}me"),
    );
    let le = le.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let be = be.encode_utf16().flat_map(u16::to_be_bytes).collect();
    b.add(&h, "/le", Resource::Typed(types[0], le));
    b.add(&h, "/be", Resource::Typed(types[1], be));
    let site = b.start();
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;

    for (path, title) in [("/le", "Little \u{e9}ndian"), ("/be", "Big \u{e9}ndian")] {
        assert_eq!(
            title_and_error(&harness, &site.url(0, path)).await,
            Some((Some(title.to_owned()), None)),
            "{path}"
        );
    }
    let anchors = harness.db().await.links().await;
    let home = anchors.iter().filter(|(_, _, a)| a == "h\u{f4}me").count();
    assert_eq!(home, 2, "{anchors:?}");
}

/// An XHTML page declaring `encoding`, titled `title`, with a link home reading `home`.
fn xhtml(encoding: &str, title: &str, home: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"{encoding}\"?>\n\
         <html xmlns=\"http://www.w3.org/1999/xhtml\"><head><title>{title}</title></head>\
         <body><a href=\"/\">{home}</a></body></html>"
    )
}

/// A browser reads a page served as `application/xhtml+xml` with its XML parser, which
/// knows no `<meta>`: the XML declaration names the encoding, and without one the page
/// is UTF-8, XML's default, whatever an XHTML template's stale `<meta>` says. Only a page
/// that is not UTF-8 either (which browsers refuse to show) is read by its `<meta>`, the
/// best guess left. Served as `text/html`, the `<meta>` decides first, as the HTML
/// standard's prescan has it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_xhtml_pages_encoding_is_its_xml_declarations_whatever_its_meta_says() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    let page = |declaration: &str, charset: &str, title: &[u8]| {
        let mut page = format!(
            "<?xml version=\"1.0\"{declaration}?>\n\
             <html xmlns=\"http://www.w3.org/1999/xhtml\"><head><meta \
             http-equiv=\"Content-Type\" content=\"text/html; charset={charset}\"/><title>"
        )
        .into_bytes();
        page.extend_from_slice(title);
        page.extend_from_slice(b"</title></head><body></body></html>");
        page
    };
    let latin2 = page(" encoding=\"iso-8859-2\"", "utf-8", b"\xb1");
    let stale = page("", "iso-8859-1", "caf\u{e9}".as_bytes());
    let legacy = page("", "Shift_JIS", &encoding_rs::SHIFT_JIS.encode("日本語").0);
    let xhtml = "application/xhtml+xml";
    let pages = [
        ("/latin2", xhtml, latin2.clone(), "\u{105}"),
        ("/stale", xhtml, stale, "caf\u{e9}"),
        ("/legacy", xhtml, legacy, "日本語"),
        ("/latin2.html", "text/html", latin2, "\u{fffd}"),
    ];
    let mut home = String::new();
    for (path, content_type, body, _) in &pages {
        b.add(&h, path, Resource::Typed(content_type, body.clone()));
        home.push_str(&format!("<a href='{path}'>{path}</a>"));
    }
    b.add(&h, "/", html(&home));
    let site = b.start();
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;

    for (path, _, _, title) in pages {
        assert_eq!(
            title_and_error(&harness, &site.url(0, path)).await,
            Some((Some(title.to_owned()), None)),
            "{path}"
        );
    }
}

/// A title and a link's text are stored as a browser shows them: runs of ASCII
/// whitespace collapse (`document.title`, CSS's white space), but a no-break space or an
/// ideographic space is a character of the text (`1&nbsp;000&nbsp;€`, a Japanese
/// title's full-width separator). A link whose only text is a no-break space is still
/// named by its image.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_break_and_ideographic_spaces_are_kept_as_written() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(
        &h,
        "/",
        html(
            "<title>\n ショップ\u{3000}｜\u{3000}ホーム  &nbsp;&nbsp;Page </title>\
             <a href='/price'> 1&nbsp;000&nbsp;\u{20ac} </a>\
             <a href='/logo'>&nbsp;<img alt='Logo'></a>",
        ),
    );
    let site = b.start();
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;

    assert_eq!(
        title_and_error(&harness, &site.url(0, "/")).await,
        Some((
            Some("ショップ\u{3000}｜\u{3000}ホーム \u{a0}\u{a0}Page".into()),
            None
        ))
    );
    let links = harness.db().await.links().await;
    let anchor = |path: &str| {
        let target = site.url(0, path);
        links
            .iter()
            .find(|(_, t, _)| *t == target)
            .map(|(_, _, a)| a.as_str())
    };
    assert_eq!(anchor("/price"), Some("1\u{a0}000\u{a0}\u{20ac}"));
    assert_eq!(anchor("/logo"), Some("Logo"));
}

/// A page served as `application/xhtml+xml` is XML to a browser, where `<script
/// src="…"/>` is an empty script, not the start of text running to the page's end, and
/// `<a href="…"/>` an empty link: its title and links are the ones it shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_xhtml_pages_empty_elements_end_where_they_start() {
    let page = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
        <html xmlns=\"http://www.w3.org/1999/xhtml\"><head>\
        <script type=\"text/javascript\" src=\"/app.js\"/><style type=\"text/css\"/>\
        <title>Served as XML</title></head>\
        <body><p><a href=\"/top\" id=\"top\"/>Words after it</p><a href=\"/next\">next</a></body></html>";
    let (site, harness) = crawl_home("application/xhtml+xml", page.into()).await;

    assert_eq!(
        title_and_error(&harness, &site.url(0, "/")).await,
        Some((Some("Served as XML".into()), None))
    );
    let mut links: Vec<(String, String)> = harness
        .db()
        .await
        .links()
        .await
        .into_iter()
        .map(|(_, target, anchor)| (target, anchor))
        .collect();
    links.sort();
    assert_eq!(
        links,
        [
            (site.url(0, "/next"), "next".to_owned()),
            (site.url(0, "/top"), String::new())
        ]
    );
}

/// A page with a stray NUL near its start (a corrupt database field in its `<meta>`) is
/// still a page: browsers drop the NUL and show the rest. Only a body that does not
/// start as HTML does, an image served as `text/html`, is binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_with_a_stray_nul_is_still_a_page() {
    let page = b"<!DOCTYPE html>\n<html><head><meta charset=utf-8>\
        <meta name=description content='Caf\xc3\xa9\0 menu'><title>Caf\xc3\xa9</title></head>\
        <body><a href='/menu'>Menu</a></body></html>";
    let (site, harness) = crawl_home("text/html; charset=utf-8", page.to_vec()).await;

    assert_eq!(
        title_and_error(&harness, &site.url(0, "/")).await,
        Some((Some("Caf\u{e9}".into()), None))
    );
    assert!(harness
        .db()
        .await
        .page(&site.url(0, "/menu"))
        .await
        .is_some());
}

/// A crawl of one host whose home page is `body`, served as `content_type`.
async fn crawl_home(content_type: &'static str, body: Vec<u8>) -> (TestSite, Harness) {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(&h, "/", Resource::Typed(content_type, body));
    let site = b.start();
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;
    (site, harness)
}

/// A page opening with an XML declaration (XHTML, and the many `text/html` pages of
/// XHTML-era templates) is as much a page with a stray NUL as one opening with
/// `<!DOCTYPE html>`: no image or archive starts with `<?xml` either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_xhtml_page_with_a_stray_nul_is_still_a_page() {
    let page = b"<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
        <html xmlns=\"http://www.w3.org/1999/xhtml\"><head>\
        <meta name=\"description\" content=\"Caf\xc3\xa9\0 menu\"/><title>Caf\xc3\xa9</title>\
        </head><body><a href=\"/menu\">Menu</a></body></html>";
    let (site, harness) = crawl_home("application/xhtml+xml", page.to_vec()).await;

    assert_eq!(
        title_and_error(&harness, &site.url(0, "/")).await,
        Some((Some("Caf\u{e9}".into()), None))
    );
}

/// The waits the rules may ask of a host kept short (the longest is
/// `retry.max_delay_ms`, 1 s), for the tests of waits a moved clock left.
const SHORT_WAITS: &str = "[politeness]\ndelay_ms = 0\nmax_crawl_delay_ms = 500\n\
                           [retry]\nmax_attempts = 1\nmax_delay_ms = 1000\n";

/// One host whose home page links to `/a`.
async fn home_linking_a() -> TestSite {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(&h, "/", html("<a href='/a'>a</a>"));
    b.add(&h, "/a", html("<title>a</title>"));
    b.start()
}

/// A host's next turn left by a run whose clock was ahead (or before an NTP step back) is
/// no wait the rules could ask for: a run that finds one waits at most the longest they
/// could (here `retry.max_delay_ms`), not until the stored time, a year away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hosts_next_turn_left_far_ahead_by_a_clock_that_moved_does_not_freeze_it() {
    let a_year_ahead = super::recrawl::a_year_ahead_ms();
    crawl_a_after_the_clock_moved(
        SHORT_WAITS,
        &[format!("UPDATE hosts SET next_allowed_at = {a_year_ahead}")],
        "the crawl does not wait a year for the host",
    )
    .await;
}

/// A clock stepped back a day between two runs (a VM restored, an RTC battery gone) had
/// the second wait for its host the longest a rule may ask (`retry.max_delay_ms`, here
/// a day), though the first left it one delay to wait: the stored turn is counted from
/// the clock as the first run ended, not from the clock now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_stepped_back_between_runs_leaves_each_host_the_turn_it_had() {
    crawl_a_after_the_clock_moved(
        "[politeness]\ndelay_ms = 200\n[retry]\nmax_delay_ms = 86400000\n",
        &[
            "UPDATE hosts SET next_allowed_at = next_allowed_at + 86400000".to_owned(),
            super::recrawl::runs_a_day_ahead(),
        ],
        "the crawl waits the host's delay, not the day the clock stepped back",
    )
    .await;
}

/// Crawls the home page of [`home_linking_a`] (`scope.max_pages = 1`), runs `moved` on
/// the database (what a clock that moved left), and crawls again, `extra` the config of
/// both: the second run fetches `/a`, and does not wait what `no_wait` says.
async fn crawl_a_after_the_clock_moved(extra: &str, moved: &[String], no_wait: &str) {
    let site = home_linking_a().await;
    let harness = Harness::default();
    let first = harness
        .crawl(
            &[site.url(0, "/")],
            &format!("{extra}[scope]\nmax_pages = 1\n"),
        )
        .await;
    assert_eq!(first.tally.pages, 1);
    super::query::change_database(&harness, moved).await;

    let second = tokio::time::timeout(
        Duration::from_secs(60),
        harness.crawl(&[site.url(0, "/")], extra),
    )
    .await
    .expect(no_wait);
    assert_eq!(second.tally.pages, 1, "{second}");
    assert_eq!(site.count(&site.url(0, "/a")), 1);
}

/// A robots.txt kept with a fetch time ahead of the clock (a clock that was fast, or has
/// stepped back since) was trusted for `robots_ttl_s` from that time: a year if the clock
/// was a year off, while the site changed its rules. It is asked for again instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_robots_txt_kept_with_a_fetch_time_ahead_of_the_clock_is_asked_again() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(
        &h,
        "/robots.txt",
        Resource::Sequence(vec![
            text("User-agent: *\nDisallow: /b\n"),
            text("User-agent: *\nAllow: /\n"),
        ]),
    );
    b.add(&h, "/", html("<title>home</title>"));
    b.add(&h, "/b", html("<title>b</title>"));
    let site = b.start();
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;
    assert_eq!(robots_requests(&site, 0), 1);
    super::recrawl::set_a_year_ahead(&harness, "UPDATE hosts SET robots_fetched_at = $1").await;

    harness.crawl(&[site.url(0, "/b")], "").await;
    assert_eq!(robots_requests(&site, 0), 2, "robots.txt is asked again");
    assert_eq!(site.count(&site.url(0, "/b")), 1, "as it now allows /b");
}

/// On PostgreSQL a node takes its hosts by claiming them, and waited out whatever
/// `next_allowed_at` a claimed host had: a year, when a clock a year fast left it. It
/// waits no longer than the rules (or a lease time) could ask.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claimed_hosts_next_turn_left_far_ahead_does_not_freeze_it() {
    let Some(server) = super::postgres::TestPostgres::start(
        "a_claimed_hosts_next_turn_left_far_ahead_does_not_freeze_it",
    ) else {
        return;
    };
    let database = server.database("claimed_far_ahead").await;
    let site = home_linking_a().await;
    let harness = Harness::default();
    let extra = format!("{SHORT_WAITS}[cluster]\nlease_ttl_ms = 1500\n");
    let crawl = |extra: String| {
        let config = super::recrawl::config_on(
            &harness,
            &format!("{database:?}"),
            &site.url(0, "/"),
            &extra,
        );
        async move { pipecrawl::crawl(config, std::future::pending()).await }
    };
    let first = crawl(format!("{extra}[scope]\nmax_pages = 1\n"))
        .await
        .expect("the first crawl succeeds");
    assert_eq!(first.tally.pages, 1);
    let pool = sqlx::PgPool::connect(&database)
        .await
        .expect("connect to the test database");
    sqlx::query("UPDATE hosts SET next_allowed_at = $1")
        .bind(super::recrawl::a_year_ahead_ms())
        .execute(&pool)
        .await
        .expect("move the host's turn a year ahead");
    pool.close().await;

    let second = tokio::time::timeout(Duration::from_secs(15), crawl(extra.clone()))
        .await
        .expect("the crawl does not wait a year for the host")
        .expect("the second crawl succeeds");
    assert_eq!(second.tally.pages, 1, "{second}");
    assert_eq!(site.count(&site.url(0, "/a")), 1);
}

/// RFC 9309 follows a robots.txt's redirects. A 304, 305 or 306 is none, whatever
/// `Location` it carries (a 305's names a proxy to go through, not a robots.txt): the
/// file is unavailable, as with a 3xx without a `Location`, and everything is allowed;
/// the page its `Location` names is not taken for the site's rules.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_robots_txt_answered_304_305_or_306_is_not_followed() {
    let mut b = SiteBuilder::bind(4).await;
    let mut seeds = Vec::new();
    for (i, answer) in [
        Resource::Redirect(304, "/rules".into()),
        Resource::Redirect(305, "/rules".into()),
        Resource::Redirect(306, "/rules".into()),
        Resource::Status(302, "nowhere".into()),
    ]
    .into_iter()
    .enumerate()
    {
        let h = b.authority(i);
        b.add(&h, "/robots.txt", answer);
        b.add(&h, "/rules", text("User-agent: *\nDisallow: /\n"));
        b.add(&h, "/", html("<title>Home</title>"));
        seeds.push(format!("http://{h}/"));
    }
    let site = b.start();
    let harness = Harness::default();
    harness.crawl(&seeds, "").await;

    let db = harness.db().await;
    for (i, seed) in seeds.iter().enumerate() {
        assert_eq!(site.count(&site.url(i, "/rules")), 0, "{seed}");
        let home = db.page(seed).await.expect("the home page has a row");
        assert_eq!(
            (home.status, home.error_kind.as_deref()),
            (Some(200), None),
            "{seed}"
        );
    }
}

/// A robots.txt that redirects in a loop is asked for six times (five redirects, RFC
/// 9309's least) and then taken as none, as a 4xx is; `hosts.robots_status` is what it
/// last answered, a 301. It said 404, an answer the site never gave.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_robots_txt_redirecting_in_a_loop_is_kept_with_the_status_it_answered() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(&h, "/robots.txt", Resource::Redirect(301, "/rules".into()));
    b.add(&h, "/rules", Resource::Redirect(301, "/robots.txt".into()));
    private_and_public(&mut b, &h);
    let site = b.start();
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;

    let asked = site.count(&site.url(0, "/robots.txt")) + site.count(&site.url(0, "/rules"));
    assert_eq!(asked, 6, "the first request and five redirects");
    assert_eq!(
        site.count(&site.url(0, "/private/a")),
        1,
        "everything is allowed"
    );
    let db = harness.db().await;
    let status = db
        .scalar("SELECT robots_status FROM hosts WHERE robots_status IS NOT NULL")
        .await;
    assert_eq!(status, 301);
}

/// A home page on `h` linking to `/private/a` and `/public`, which are served too.
fn private_and_public(b: &mut SiteBuilder, h: &str) {
    b.add(
        h,
        "/",
        html("<a href='/private/a'>a</a><a href='/public'>b</a>"),
    );
    b.add(h, "/private/a", html("<title>Private</title>"));
    b.add(h, "/public", html("<title>Public</title>"));
}

/// One host serving `robots` as its robots.txt and [`private_and_public`]'s pages.
async fn host_with_robots_txt(robots: Resource) -> (TestSite, String) {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(&h, "/robots.txt", robots);
    private_and_public(&mut b, &h);
    (b.start(), h)
}

/// A robots.txt saved as "Unicode" (Windows Notepad's UTF-16, with its byte order mark)
/// says what its owner meant: RFC 9309 asks for UTF-8, but read as UTF-8 its every
/// character is a line of its own and no rule is left, so the crawl would go where the
/// site asked it not to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_robots_txt_in_utf16_with_a_byte_order_mark_is_obeyed() {
    let rules = "User-agent: *\r\nDisallow: /private\r\n";
    let utf16 = |unit: fn(u16) -> [u8; 2]| -> Vec<u8> {
        let with_bom = std::iter::once(0xFEFF).chain(rules.encode_utf16());
        with_bom.flat_map(unit).collect()
    };
    let mut b = SiteBuilder::bind(2).await;
    let bodies = [utf16(u16::to_le_bytes), utf16(u16::to_be_bytes)];
    for (i, body) in bodies.into_iter().enumerate() {
        let h = b.authority(i);
        b.add(&h, "/robots.txt", Resource::Typed("text/plain", body));
        private_and_public(&mut b, &h);
    }
    let site = b.start();
    let harness = Harness::default();
    harness
        .crawl(&[site.url(0, "/"), site.url(1, "/")], "")
        .await;

    let db = harness.db().await;
    for host in 0..2 {
        assert_eq!(site.count(&site.url(host, "/private/a")), 0, "host {host}");
        let blocked = db.page(&site.url(host, "/private/a")).await;
        assert_eq!(
            blocked.and_then(|p| p.error_kind).as_deref(),
            Some("robots"),
            "host {host}"
        );
        assert_eq!(site.count(&site.url(host, "/public")), 1, "host {host}");
    }
}

/// Crawlers that want browsers' pages name themselves in a comment after a browser's
/// product, as Googlebot and bingbot do: with `fetch.user_agent = "Mozilla/5.0
/// (compatible; AcmeBot/1.0; +…)"` the crawler is AcmeBot, and robots.txt's `AcmeBot`
/// group is the one that applies, not the `*` one (nor a `Mozilla` one, every browser's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_like_user_agent_obeys_the_group_of_the_crawler_it_names() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(
        &h,
        "/robots.txt",
        text("User-agent: AcmeBot\nDisallow: /private\n\nUser-agent: Mozilla\nDisallow: /\n"),
    );
    private_and_public(&mut b, &h);
    let site = b.start();
    let harness = Harness::default();
    harness
        .crawl(
            &[site.url(0, "/")],
            "[fetch]\nuser_agent = \"Mozilla/5.0 (compatible; AcmeBot/1.0; +https://acme.test/bot)\"\n",
        )
        .await;

    let fetched = |path: &str| site.count(&site.url(0, path));
    assert_eq!(
        [fetched("/"), fetched("/public"), fetched("/private/a")],
        [1, 1, 0],
        "requests of /, /public and /private/a"
    );
}

/// Only the first 500 KiB of a robots.txt are read (RFC 9309 §2.5), and the limit may
/// fall inside a line: what is left of it (`Allow: /private/` of `Allow:
/// /private/open-day`) is no rule the site's owner wrote, and must not open more than
/// the lines before it left open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_cut_by_robots_txts_size_limit_is_not_obeyed() {
    const LIMIT: usize = 500 * 1024;
    let mut body = "User-agent: *\nDisallow: /private\n".to_owned();
    let cut_after = "Allow: /private/";
    let mut archive = 0;
    while body.len() + cut_after.len() + 40 < LIMIT {
        body.push_str(&format!("Disallow: /archive/{archive:07}\n"));
        archive += 1;
    }
    let padding = LIMIT - body.len() - cut_after.len() - 1;
    body.push_str(&format!("#{}\n", "-".repeat(padding - 1)));
    body.push_str(cut_after);
    assert_eq!(body.len(), LIMIT, "the limit falls after {cut_after:?}");
    body.push_str("open-day\n");

    let (site, _) = host_with_robots_txt(Resource::Typed("text/plain", body.into_bytes())).await;
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;

    let fetched = |path: &str| site.count(&site.url(0, path));
    assert_eq!(
        [fetched("/"), fetched("/public"), fetched("/private/a")],
        [1, 1, 0],
        "requests of /, /public and /private/a"
    );
}

/// A robots.txt longer than the 500 KiB read has its later lines ignored: the log says so,
/// naming the file, or an operator whose site keeps rules past the limit sees the crawl go
/// where they were meant to forbid with no word why. The bytes as they came are measured:
/// a UTF-16 file past the limit was not said (half as long in UTF-8), and one within it
/// but longer in UTF-8 (letters beyond ASCII) was said, and cut, though read whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_robots_txt_cut_at_its_size_limit_says_so_in_the_log() {
    let rules = |line: &str, bytes: usize, unit: usize| {
        let mut body = "User-agent: *\n".to_owned();
        while body.len() * unit < bytes {
            body.push_str(line);
        }
        body + "Disallow: /private\n"
    };
    let utf16 = |text: String| -> Vec<u8> {
        let with_bom = std::iter::once(0xFEFF).chain(text.encode_utf16());
        with_bom.flat_map(u16::to_le_bytes).collect()
    };
    let post = "Disallow: /archive/2026/01/01/post\n";
    // 24 bytes in UTF-16, 36 in UTF-8.
    let cjk = "# 東京都の記事一覧です\n";
    for (body, cut) in [
        (rules(post, 600 * 1024, 1).into_bytes(), true),
        (utf16(rules(post, 600 * 1024, 2)), true),
        (utf16(rules(cjk, 400 * 1024, 2)), false),
    ] {
        let (site, _) = host_with_robots_txt(Resource::Typed("text/plain", body)).await;
        let harness = Harness::default();
        let config = harness.write_config(&harness.test_config_text(&[site.url(0, "/")], ""));
        let out = super::cli::crawl_at_info(&config).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        let said = format!(
            "{} is longer than the 500 KiB read of it: its lines past that are not obeyed",
            site.url(0, "/robots.txt")
        );
        assert_eq!(stderr.contains(&said), cut, "{stderr}");
        let private = site.count(&site.url(0, "/private/a"));
        assert_eq!(private, usize::from(cut), "requests of /private/a");
    }
}

/// Groups naming one user agent are one group (RFC 9309 §2.2.1), and an empty
/// `Disallow:` in it disallows nothing: it must not outweigh the `Disallow: /` another
/// part of the file adds (a site closed for maintenance below its old "all welcome"), as
/// it does not for Google's parser.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_disallow_does_not_undo_a_disallow_of_everything() {
    let (site, h) = host_with_robots_txt(text(
        "User-agent: *\nDisallow:\n\n# Closed for maintenance\nUser-agent: *\nDisallow: /\n",
    ))
    .await;
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;

    let home = harness.db().await.page(&site.url(0, "/")).await;
    assert_eq!(home.and_then(|p| p.error_kind).as_deref(), Some("robots"));
    assert_eq!(site.hits_for(&h).len(), 1, "robots.txt alone is requested");
}

/// robots.txt is fetched again once its `politeness.robots_ttl_s` has passed (RFC 9309
/// §2.4), and what it says then holds: a Crawl-delay it no longer has no longer spaces
/// the host's requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_delay_robots_txt_drops_when_fetched_again_stops_spacing_the_host() {
    let delay = Duration::from_secs(3);
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(
        &h,
        "/robots.txt",
        Resource::Sequence(vec![
            text("User-agent: *\nCrawl-delay: 3\n"),
            text("User-agent: *\nDisallow: /private\n"),
        ]),
    );
    let links: String = (0..6).map(|i| format!("<a href='/{i}'>{i}</a>")).collect();
    b.add(&h, "/", html(&links));
    b.add_prefix(&h, "/", html("<title>Leaf</title>"));
    let site = b.start();
    let harness = Harness::default();
    harness
        .crawl(
            &[site.url(0, "/")],
            "[politeness]\ndelay_ms = 0\nper_host_concurrency = 4\nrobots_ttl_s = 1\n",
        )
        .await;

    let hits = site.hits_for(&h);
    assert!(hits.iter().filter(|x| x.path == "/robots.txt").count() >= 2);
    let mut leaves: Vec<_> = hits
        .iter()
        .filter(|x| x.path.len() == 2)
        .map(|x| x.at)
        .collect();
    leaves.sort();
    assert_eq!(leaves.len(), 6, "{hits:?}");
    // The first leaf or two go at turns booked under the old delay; the rest need not wait.
    let rest = leaves[5].duration_since(leaves[1]);
    assert!(rest < delay, "the last four leaves took {rest:?}");
}

/// A cookie check (a redirect to the URL itself that sets a cookie) is answered by asking
/// for the URL again with the cookie. That is a second request to the host: it went at
/// once, inside the first's turn, however long the host's delay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cookie_checks_second_request_waits_the_hosts_delay() {
    let delay = Duration::from_millis(800);
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    let check = Resource::WithHeaders(
        vec![("Set-Cookie".to_owned(), "consent=yes; Path=/".to_owned())],
        Box::new(Resource::Redirect(302, "/".to_owned())),
    );
    b.add(
        &h,
        "/",
        Resource::Sequence(vec![check, html("<title>Home</title>")]),
    );
    let site = b.start();
    let harness = Harness::default();
    harness
        .crawl(&[site.url(0, "/")], "[politeness]\ndelay_ms = 800\n")
        .await;

    let paths: Vec<String> = site.hits_for(&h).into_iter().map(|x| x.path).collect();
    assert_eq!(paths, ["/robots.txt", "/", "/"]);
    let gap = site.min_gap(&h).expect("several requests");
    assert!(gap + JITTER >= delay, "requests {gap:?} apart");
    let home = harness.db().await.page(&site.url(0, "/")).await;
    assert_eq!(home.and_then(|p| p.title).as_deref(), Some("Home"));
}

/// The delay counts from the later of a request's start and its answer (README), so a
/// host answering more slowly than its delay is asked one thing at a time: the next
/// request went one delay after the previous one's start, its answer still to come, and
/// a slow server had as many requests on it as `per_host_concurrency` allowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_answering_more_slowly_than_its_delay_is_asked_after_each_answer() {
    let delay = Duration::from_millis(400);
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    let links: String = (0..4).map(|i| format!("<a href='/{i}'>{i}</a>")).collect();
    b.add(&h, "/", html(&links));
    b.add(&h, "/robots.txt", text("User-agent: *\nAllow: /\n"));
    b.add_prefix(&h, "/", slow_page(Duration::from_millis(1200)));
    let site = b.start();
    let harness = Harness::default();
    harness
        .crawl(
            &[site.url(0, "/")],
            "[politeness]\ndelay_ms = 400\nper_host_concurrency = 2\n",
        )
        .await;

    let mut hits = site.hits_for(&h);
    assert_eq!(
        hits.len(),
        6,
        "robots.txt, the home page and its four links"
    );
    hits.sort_by_key(|x| x.at);
    for pair in hits.windows(2) {
        let (before, after) = (&pair[0], &pair[1]);
        assert!(
            after.at + JITTER >= before.done + delay,
            "{} was requested {:?} after {} was, which had not been answered yet",
            after.path,
            after.at.duration_since(before.at),
            before.path
        );
    }
    assert_eq!(site.max_in_flight(&h), 1);
}

/// Host names that reach one server, `127.0.0.1`: the address itself, its IPv4-mapped
/// IPv6 spelling and, where it resolves there first, `localhost`.
fn names_of_one_address(port: &str) -> Vec<String> {
    let mut names = vec![
        format!("127.0.0.1:{port}"),
        format!("[::ffff:127.0.0.1]:{port}"),
    ];
    let localhost_first = std::net::ToSocketAddrs::to_socket_addrs(&("localhost", 0))
        .ok()
        .and_then(|mut addrs| addrs.next())
        .map(|addr| addr.ip());
    if localhost_first == Some(std::net::Ipv4Addr::LOCALHOST.into()) {
        names.push(format!("localhost:{port}"));
    }
    names
}

/// A server answering every page `wait` after its request, its authority, and the
/// names that reach it ([`names_of_one_address`]).
async fn one_slow_address(wait: Duration) -> (TestSite, String, Vec<String>) {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add_prefix(&h, "/", html("<title>x</title>"));
    b.delay_host(&h, wait);
    let site = b.start();
    let names = names_of_one_address(h.rsplit(':').next().unwrap_or_default());
    (site, h, names)
}

/// Crawls six slow pages on each name of one server, each name allowed two requests at
/// once, with `politeness.per_ip_concurrency = limit`; the most the server had in flight.
async fn most_in_flight_at_one_address(limit: u32) -> usize {
    let (site, h, names) = one_slow_address(Duration::from_millis(150)).await;
    let seeds: Vec<String> = names
        .iter()
        .flat_map(|name| (0..6).map(move |i| format!("http://{name}/p{i}")))
        .collect();
    let harness = Harness::default();
    harness
        .crawl(
            &seeds,
            &format!(
                "[fetch]\nworkers = 16\n[politeness]\ndelay_ms = 0\nper_host_concurrency = 2\n\
                 per_ip_concurrency = {limit}\n"
            ),
        )
        .await;
    assert_eq!(
        harness.page_count().await,
        i64::try_from(seeds.len()).unwrap_or_default()
    );
    site.max_in_flight(&h)
}

/// Many names on one server (a shared host, wildcard DNS) each have their own
/// per-host slot; `politeness.per_ip_concurrency` bounds what the server gets at once,
/// robots.txt requests included, and 0 lifts the bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_to_one_address_under_many_names_stay_within_per_ip_concurrency() {
    let bounded = most_in_flight_at_one_address(2).await;
    assert!(bounded <= 2, "{bounded} requests in flight at one address");
    let unbounded = most_in_flight_at_one_address(0).await;
    assert!(
        unbounded > 2,
        "without a limit, {unbounded} in flight at most"
    );
}

/// A server at its `per_ip_concurrency` under some names does not take the fetch
/// workers another server's pages wait for: its jobs go back to the frontier for a
/// moment rather than wait for a place on a worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_address_leaves_the_fetch_workers_to_other_servers() {
    let mut b = SiteBuilder::bind(2).await;
    let (busy, other) = (b.authority(0), b.authority(1));
    b.add_prefix(&busy, "/p", html("<title>slow</title>"));
    b.delay_host(&busy, Duration::from_millis(400));
    b.add_prefix(&other, "/q", html("<title>quick</title>"));
    let site = b.start();
    let port = busy.rsplit(':').next().unwrap_or_default();
    let mut seeds: Vec<String> = names_of_one_address(port)
        .iter()
        .flat_map(|name| (0..4).map(move |i| format!("http://{name}/p{i}")))
        .collect();
    seeds.extend((0..6).map(|i| site.url(1, &format!("/q{i}"))));
    Harness::default()
        .crawl(
            &seeds,
            "[fetch]\nworkers = 2\n[politeness]\ndelay_ms = 0\nper_host_concurrency = 1\nrespect_robots_txt = false\n\
             per_ip_concurrency = 1\n",
        )
        .await;

    // The busy server's eight or twelve pages take 400 ms each, one at a time; the
    // other's six, on the worker it leaves free, are done while its first few are
    // answered. Judged by the order the site saw, which a loaded machine keeps: with
    // both workers waiting for the busy address, most of its pages came first.
    assert_eq!(site.max_in_flight(&busy), 1);
    let done = last_answer(&site, &other);
    let busy_before = site.hits_for(&busy).iter().filter(|h| h.at < done).count();
    assert!(
        busy_before <= 4,
        "the busy server was asked {busy_before} times before the other's pages were done"
    );
}

/// A name whose server is at its `per_ip_concurrency` goes when a request to that server
/// ends, not a guessed quarter of a second later. Two names of a server taking one
/// request at a time, each answered in 200 ms and asked again 200 ms after: each is due
/// as the other's answer comes, and the server is never idle for long. The name handed
/// back waited a guess, and a delay from when it was handed out, the server idle a
/// hundred milliseconds and more between any two requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_waiting_for_its_address_goes_when_a_request_there_ends() {
    const PAGES: usize = 5;
    let (site, h, names) = one_slow_address(Duration::from_millis(200)).await;
    let seeds: Vec<String> = (0..PAGES)
        .flat_map(|i| [0, 1].map(|n| format!("http://{}/{n}-{i}", names[n])))
        .collect();
    let harness = Harness::default();
    harness
        .crawl(
            &seeds,
            "[politeness]\ndelay_ms = 200\nper_host_concurrency = 1\nper_ip_concurrency = 1\n\
             respect_robots_txt = false\n",
        )
        .await;

    assert_eq!(site.max_in_flight(&h), 1);
    let hits = site.hits_for(&h);
    assert_eq!(hits.len(), 2 * PAGES);
    // How long the server sat idle after each answer while both names had pages left:
    // what a loaded machine adds.
    let last_of_first_done = [0, 1]
        .map(|n| {
            let prefix = format!("/{n}-");
            hits.iter()
                .rposition(|hit| hit.path.starts_with(&prefix))
                .unwrap_or_default()
        })
        .into_iter()
        .min()
        .unwrap_or_default();
    let (median, idle) = gaps_after_answers(&hits[..=last_of_first_done]);
    assert!(
        median < Duration::from_millis(75),
        "{} and {} shared their address idle {median:?} after an answer (median; all: {idle:?})",
        names[0],
        names[1]
    );
    assert_eq!(
        harness.page_count().await,
        i64::try_from(2 * PAGES).unwrap_or_default()
    );
}

/// A link check of a site of one's own, served on loopback, at the default 500 ms
/// between requests: nearly all of its time goes to waiting for the host's turn, while
/// every stage of the summary reads as waiting for input and the fetch stage's
/// "politeness waits" as nothing. The summary says how long URLs waited for their host
/// to be due, and which key sets that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_says_how_long_urls_waited_for_their_hosts_turn() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(&h, "/", html("<a href='/a'>A</a> <a href='/b'>B</a>"));
    b.add(&h, "/a", html("<title>A</title>"));
    b.add(&h, "/b", html("<title>B</title>"));
    let site = b.start();
    let harness = Harness::default();
    let summary = harness
        .crawl(&[site.url(0, "/")], "[politeness]\ndelay_ms = 1000\n")
        .await
        .to_string();
    assert!(
        summary
            .lines()
            .any(|line| line.starts_with("hosts' turns: ") && line.contains("politeness.delay_ms")),
        "{summary}"
    );

    let quick = Harness::default();
    let summary = quick.crawl(&[site.url(0, "/")], "").await.to_string();
    assert!(!summary.contains("hosts' turns"), "{summary}");
}

/// A host with more URLs than `frontier.window` holds fills it, and other hosts' URLs,
/// queued behind it in the table, wait for room however ready their hosts are. The
/// summary's "nothing else ready" said only what the window held: it says apart the
/// time the window was full with more URLs queued, and which key that is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_says_how_long_urls_waited_behind_a_full_window() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add_home_and_pages(&h, 40);
    let site = b.start();
    let harness = Harness::default();
    let summary = harness
        .crawl(
            &[site.url(0, "/")],
            "[politeness]\ndelay_ms = 20\nper_host_concurrency = 1\n[frontier]\nwindow = 8\n",
        )
        .await;

    let behind = window_full_s(&summary);
    assert!(
        behind > 0.0 && behind <= summary.stages.host_turns_s,
        "{behind} s of {} s",
        summary.stages.host_turns_s
    );
    let text = summary.to_string();
    assert!(
        text.lines()
            .any(|line| line.starts_with("  of which ") && line.contains("frontier.window full")),
        "{text}"
    );
    assert_eq!(harness.page_count().await, 41);

    // A window that holds every URL is never full with more queued.
    let roomy = Harness::default();
    let summary = roomy
        .crawl(&[site.url(0, "/")], "[politeness]\ndelay_ms = 20\n")
        .await;
    assert!(summary.stages.host_turns_s > 0.0, "{summary}");
    assert!(window_full_s(&summary) == 0.0, "{summary}");
    assert!(
        !summary.to_string().contains("frontier.window"),
        "{summary}"
    );
}

/// `host_turns_window_full_s` of the summary's `pipeline` figures, as JSON has it.
fn window_full_s(summary: &pipecrawl::Summary) -> f64 {
    let figures = serde_json::to_value(&summary.stages).expect("the figures serialize");
    figures["host_turns_window_full_s"]
        .as_f64()
        .unwrap_or_else(|| panic!("no host_turns_window_full_s in {figures}"))
}

/// A host's URLs found after another host's burst are leased after all of it (the table
/// leases best first, then in the order found): a window too small for the burst keeps
/// them out until the burst has all but gone out, one large enough lets them go
/// meanwhile. README had a smaller window shorten their wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_queued_behind_a_burst_wait_for_it_unless_the_window_holds_it() {
    let (site, big, small) = crawl_burst_then_small_host(8).await;
    let first_small = site
        .hits_for(&small)
        .iter()
        .map(|h| h.at)
        .min()
        .expect("the small host was crawled");
    let big_before = site
        .hits_for(&big)
        .iter()
        .filter(|h| h.at < first_small)
        .count();
    assert!(
        big_before > BURST_PAGES / 2,
        "{big_before} big pages before the small host's first"
    );

    let (site, big, small) = crawl_burst_then_small_host(100).await;
    assert_done_before_page(&site, &small, &big, BURST_PAGES / 2);
}

/// Crawls the site of [`burst_then_small_host`] with a window of `window` URLs, each
/// host asked once every 20 ms: the site, and the two hosts.
async fn crawl_burst_then_small_host(window: usize) -> (TestSite, String, String) {
    let (site, big, small) = burst_then_small_host().await;
    let harness = Harness::default();
    let config = format!(
        "[scope]\nhosts = [\"127.0.0.1\", \"127.0.0.2\"]\n[network]\nallow = [\"127.0.0.0/8\"]\n\
         [politeness]\ndelay_ms = 20\nper_host_concurrency = 1\n[frontier]\nwindow = {window}\n"
    );
    harness.crawl(&[site.url(0, "/")], &config).await;
    assert_eq!(
        usize::try_from(harness.page_count().await),
        Ok(1 + BURST_PAGES + 5)
    );
    (site, big, small)
}

const BURST_PAGES: usize = 40;

/// Host 127.0.0.1's home links to its [`BURST_PAGES`] pages, then to five pages of host
/// 127.0.0.2, found after them: the site, and the two hosts.
async fn burst_then_small_host() -> (TestSite, String, String) {
    let mut b = SiteBuilder::bind(2).await;
    let (big, small) = (b.authority(0), b.authority(1));
    let burst: String = (0..BURST_PAGES)
        .map(|i| format!("<a href='/{i}'>{i}</a>"))
        .collect();
    let after: String = (0..5)
        .map(|i| format!("<a href='http://{small}/{i}'>{i}</a>"))
        .collect();
    b.add(&big, "/", html(&format!("{burst}{after}")));
    for i in 0..BURST_PAGES {
        b.add(&big, &format!("/{i}"), html("<title>big</title>"));
    }
    for i in 0..5 {
        b.add(&small, &format!("/{i}"), html("<title>small</title>"));
    }
    (b.start(), big, small)
}

/// Each sitemap being read may hold 50 MiB, the protocol's limit, ten times a page's cap:
/// a crawl of many hosts read one per fetch worker at once (eight hosts' 45 MB sitemaps
/// took 474 MB), past the bound `channels.max_bytes` and `fetch.max_body_bytes` promise.
/// Two are read at once; the others wait in the frontier, and every one is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sitemaps_are_read_two_at_once_whatever_the_hosts() {
    const HOSTS: u8 = 4;
    let (open, gate) = tokio::sync::watch::channel(false);
    let mut b = SiteBuilder::bind(HOSTS).await;
    let hosts: Vec<String> = (0..usize::from(HOSTS)).map(|i| b.authority(i)).collect();
    for h in &hosts {
        b.add(
            h,
            "/robots.txt",
            text(&format!("User-agent: *\nSitemap: http://{h}/sitemap.xml\n")),
        );
        b.add(h, "/", html("<title>Home</title>"));
        let urlset = format!("<urlset><url><loc>http://{h}/hidden</loc></url></urlset>");
        let sitemap = Resource::Typed("application/xml", urlset.into_bytes());
        b.add(
            h,
            "/sitemap.xml",
            Resource::Held(gate.clone(), Box::new(sitemap)),
        );
        b.add(h, "/hidden", html("<title>Hidden</title>"));
    }
    let site = b.start();
    let harness = Harness::default();
    let seeds: Vec<String> = (0..usize::from(HOSTS)).map(|i| site.url(i, "/")).collect();
    let sitemaps_asked = || {
        hosts
            .iter()
            .filter(|h| !site.hits_at(h, "/sitemap.xml").is_empty())
            .count()
    };
    let held = async {
        while sitemaps_asked() < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Time for the other hosts' sitemaps to be asked, were they not held back.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let asked = sitemaps_asked();
        open.send_replace(true);
        asked
    };
    let (_, asked) = tokio::join!(harness.crawl(&seeds, "[scope]\nsitemaps = true\n"), held);
    assert_eq!(asked, 2, "sitemaps read at once");
    let db = harness.db().await;
    for i in 0..usize::from(HOSTS) {
        let hidden = db.page(&site.url(i, "/hidden")).await;
        assert_eq!(
            hidden.and_then(|p| p.title).as_deref(),
            Some("Hidden"),
            "host {i}"
        );
    }
}
