//! What `scope.max_pages` and `traps.max_pages_per_host` count: the pages requested, as
//! Heritrix's and Scrapy's page limits do. Rows of URLs never requested (disallowed by robots.txt, on an address the
//! guard refuses, cut as traps) are stored all the same but leave the budget to the pages
//! the user asked for.

use super::postgres::TestPostgres;
use super::site::{Resource, SiteBuilder, TestSite};
use super::Harness;

/// Disallowed URLs each page links to, ahead of its links to pages.
const CARTS_PER_PAGE: usize = 40;
/// Pages the site has besides its home.
const PAGES: usize = 30;

/// A shop whose every page links first to many "add to cart" URLs its robots.txt
/// disallows, then to its pages.
async fn shop() -> TestSite {
    shop_linking(|from, item| format!("/cart?from={from}&item={item}")).await
}

/// A shop whose every page links first to many URLs that `refused(page, item)` makes,
/// which are never requested, then to its pages. Its robots.txt disallows `/cart`.
async fn shop_linking(refused: impl Fn(usize, usize) -> String) -> TestSite {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    disallow(&mut b, &h, "/cart");
    let page = |from: usize| {
        let carts: String = (0..CARTS_PER_PAGE)
            .map(|i| format!("<a href='{}'>Add</a>", refused(from, i)))
            .collect();
        let pages: String = (1..=PAGES)
            .map(|p| format!("<a href='/p{p}'>Page {p}</a>"))
            .collect();
        Resource::Html(format!("<title>Page {from}</title>{carts}{pages}"))
    };
    b.add(&h, "/", page(0));
    for p in 1..=PAGES {
        b.add(&h, &format!("/p{p}"), page(p));
    }
    b.start()
}

/// Has `authority`'s robots.txt disallow every path under `path` to every crawler.
fn disallow(b: &mut SiteBuilder, authority: &str, path: &str) {
    let rules = format!("User-agent: *\nDisallow: {path}\n");
    b.add(
        authority,
        "/robots.txt",
        Resource::Typed("text/plain", rules.into_bytes()),
    );
}

/// A crawl of `seeds` with `harness`'s test config and `extra`, into `database` (the
/// harness's SQLite database, `sqlite`, or PostgreSQL's in its place).
fn crawl(
    harness: &Harness,
    (sqlite, database): (&str, &str),
    seeds: &[String],
    extra: String,
) -> impl std::future::Future<Output = Result<pipecrawl::Summary, pipecrawl::Error>> {
    let text = harness
        .test_config_text(seeds, &extra)
        .replace(&format!("{sqlite:?}"), &format!("{database:?}"));
    let config = pipecrawl::Config::from_toml(&text, "test").expect("a valid config");
    pipecrawl::crawl(config, std::future::pending())
}

/// The pages requested of `site`, robots.txt aside.
fn pages_requested(site: &TestSite) -> usize {
    site.hits()
        .iter()
        .filter(|h| h.path != "/robots.txt")
        .count()
}

/// A site whose pages all link to URLs robots.txt disallows gets `max_pages` pages
/// requested, on either backend, and a run resumed with a higher limit goes on to it:
/// the disallowed URLs' rows, never requested, had used up the budget, so a crawl with
/// `max_pages = 10` requested its home page alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_robots_txt_disallows_leave_max_pages_to_pages_requested() {
    let test = "urls_robots_txt_disallows_leave_max_pages";
    let max_pages = |n| format!("[scope]\nmax_pages = {n}\n");
    shop_crawled_in_runs(test, "shop", max_pages, &[10, 20]).await;
}

/// Crawls [`shop`] on either backend in runs, each with the config `extra(n)` makes of
/// its `n` in `runs`: each run must leave `n` pages requested in all, and the last as
/// many pages stored.
async fn shop_crawled_in_runs(
    test: &str,
    name: &str,
    extra: impl Fn(usize) -> String,
    runs: &[usize],
) {
    let (_server, harness, sqlite, databases) = TestPostgres::beside_sqlite(test, name).await;
    for database in databases {
        let site = shop().await;
        let seeds = [site.url(0, "/")];
        for (run, &n) in runs.iter().enumerate() {
            crawl(&harness, (&sqlite, &database), &seeds, extra(n))
                .await
                .expect("the crawl");
            assert_eq!(pages_requested(&site), n, "{database}: run {}", run + 1);
        }
        let stored: Vec<(i64,)> = super::recrawl::rows(
            &database,
            "SELECT count(*) FROM pages WHERE error_kind IS NULL",
            None,
        )
        .await;
        let last = runs.last().map(|&n| i64::try_from(n).unwrap_or(i64::MAX));
        assert_eq!(
            stored.first().map(|r| r.0),
            last,
            "{database}: the pages stored"
        );
    }
}

/// A site whose pages all link to URLs on an address the guard refuses (a router's
/// `10.0.0.1`, with every host in scope) gets `max_pages` pages requested: those rows,
/// no request made, had used up the budget as a URL robots.txt disallows once did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_the_address_guard_refuses_leave_max_pages_to_pages_requested() {
    let test = "urls_the_address_guard_refuses_leave_max_pages";
    let (_server, harness, sqlite, databases) = TestPostgres::beside_sqlite(test, "router").await;
    for database in databases {
        let site =
            shop_linking(|from, item| format!("http://10.0.0.1/admin?from={from}&item={item}"))
                .await;
        let seeds = [site.url(0, "/")];
        let extra = "[scope]\nhosts = [\"*\"]\nmax_pages = 10\n".to_owned();
        crawl(&harness, (&sqlite, &database), &seeds, extra)
            .await
            .expect("the crawl");
        assert_eq!(
            pages_requested(&site),
            10,
            "{database}: the pages requested"
        );
        let refused: Vec<(i64,)> = super::recrawl::rows(
            &database,
            "SELECT count(*) FROM pages WHERE error_kind = 'address_refused'",
            None,
        )
        .await;
        // PostgreSQL's nodes may come to the limit before they lease the refused URLs.
        if !database.starts_with("postgres") {
            assert!(
                refused[0].0 > 0,
                "{database}: refused rows are stored: {refused:?}"
            );
        }
    }
}

/// A host whose pages all link to URLs its robots.txt disallows, ahead of its pages, gets
/// `traps.max_pages_per_host` pages requested, on either backend, run again it requests
/// no more, and a run resumed with a higher budget goes on to it: the disallowed URLs,
/// never requested, had spent the budget as they were queued, and the pages past them
/// were cut as trap rows, so a crawl with a budget of 20 requested the home page alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_robots_txt_disallows_leave_the_host_budget_to_pages_requested() {
    let test = "urls_robots_txt_disallows_leave_the_host_budget";
    let budget = |n| format!("[traps]\nmax_pages_per_host = {n}\n");
    shop_crawled_in_runs(test, "budget", budget, &[20, 20, 25]).await;
}

/// A shop (host 2) whose "add to cart" URLs, which its robots.txt disallows, are linked
/// from a blog on another host (host 1), ahead of the shop's pages, gets
/// `traps.max_pages_per_host` of its pages requested, on either backend: the shop's
/// robots.txt was at hand (its home, the seed, is fetched before the blog is found),
/// yet the carts were queued as the blog's page was parsed and spent the shop's budget,
/// so a crawl with a budget of 20 requested its home alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_another_hosts_robots_txt_disallows_leave_its_budget_to_pages_requested() {
    let test = "urls_another_hosts_robots_txt_disallows";
    let (_server, harness, sqlite, databases) = TestPostgres::beside_sqlite(test, "blog").await;
    for database in databases {
        let mut b = SiteBuilder::bind(2).await;
        let (blog, shop) = (b.authority(0), b.authority(1));
        disallow(&mut b, &shop, "/cart");
        b.add(
            &shop,
            "/",
            Resource::Html(format!(
                "<title>Shop</title><a href='http://{blog}/'>Blog</a>"
            )),
        );
        for p in 1..=PAGES {
            b.add(
                &shop,
                &format!("/p{p}"),
                Resource::Html(format!("<title>Item {p}</title>")),
            );
        }
        let carts: String = (0..CARTS_PER_PAGE)
            .map(|i| format!("<a href='http://{shop}/cart?item={i}'>Add</a>"))
            .collect();
        let items: String = (1..=PAGES)
            .map(|p| format!("<a href='http://{shop}/p{p}'>Item {p}</a>"))
            .collect();
        b.add(
            &blog,
            "/",
            Resource::Html(format!("<title>Blog</title>{carts}{items}")),
        );
        let site = b.start();
        let seeds = [site.url(1, "/")];
        let extra = "[scope]\nhosts = [\"127.0.0.1\", \"127.0.0.2\"]\n\
                     [network]\nallow = [\"127.0.0.0/8\"]\n\
                     [traps]\nmax_pages_per_host = 20\n"
            .to_owned();
        crawl(&harness, (&sqlite, &database), &seeds, extra)
            .await
            .expect("the crawl");
        let requested = site
            .hits_for(&shop)
            .iter()
            .filter(|h| h.path != "/robots.txt")
            .count();
        assert_eq!(requested, 20, "{database}: the shop's pages requested");
        let carts: Vec<(i64,)> = super::recrawl::rows(
            &database,
            "SELECT count(*) FROM pages WHERE error_kind = 'robots'",
            None,
        )
        .await;
        assert_eq!(
            carts.first().map(|r| r.0),
            Some(CARTS_PER_PAGE as i64),
            "{database}: the carts' rows"
        );
    }
}

/// A staging site behind `Disallow: /private`: its home links to `/private/a` and
/// `/private/b`, stored as `robots` rows as they are found; `/private/c`, the second of
/// the seeds it is crawled from, is refused as it is leased.
async fn staging() -> (TestSite, [String; 2]) {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    disallow(&mut b, &h, "/private");
    b.add(
        &h,
        "/",
        Resource::Html(
            "<title>Home</title><a href='/private/a'>A</a><a href='/private/b'>B</a>".into(),
        ),
    );
    for page in ["a", "b", "c"] {
        b.add(
            &h,
            &format!("/private/{page}"),
            Resource::Html(format!("<title>Private {page}</title>")),
        );
    }
    let site = b.start();
    let seeds = [site.url(0, "/"), site.url(0, "/private/c")];
    (site, seeds)
}

/// Crawls of `seeds` into `database`, one after another, each with
/// `traps.max_pages_per_host` and `politeness.respect_robots_txt` as `runs` gives them.
async fn crawls(
    harness: &Harness,
    databases: (&str, &str),
    seeds: &[String],
    runs: &[(usize, bool)],
) {
    for (n, obeyed) in runs {
        let extra = format!(
            "[traps]\nmax_pages_per_host = {n}\n\
             [politeness]\ndelay_ms = 0\nrespect_robots_txt = {obeyed}\n"
        );
        crawl(harness, databases, seeds, extra)
            .await
            .expect("a crawl");
    }
}

/// Each page's title, or its `error_kind` when it has none, by URL.
async fn titles(database: &str) -> Vec<String> {
    let titles: Vec<(String,)> = super::recrawl::rows(
        database,
        "SELECT coalesce(title, error_kind) FROM pages ORDER BY url",
        None,
    )
    .await;
    titles.into_iter().map(|t| t.0).collect()
}

/// A crawl run again with `politeness.respect_robots_txt = false` fetches the URLs an
/// earlier run stored as disallowed (a staging site's `Disallow: /private`, a crawl of
/// one's own site), on either backend, within the host's budget and counting each once:
/// they stayed `robots` rows for good, the run having nothing to do, and a user had to
/// start a new database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_no_longer_obeys_robots_txt_fetches_what_it_disallowed() {
    let test = "a_run_that_no_longer_obeys_robots_txt";
    let (_server, harness, sqlite, databases) = TestPostgres::beside_sqlite(test, "staging").await;
    for database in databases {
        let (site, seeds) = staging().await;
        let databases = (sqlite.as_str(), database.as_str());
        crawls(&harness, databases, &seeds, &[(3, true)]).await;
        assert_eq!(pages_requested(&site), 1, "{database}: the first run");
        crawls(&harness, databases, &seeds, &[(3, false)]).await;
        // Within the budget of 3: the home page and the seed counted in the first run,
        // `/a` (found first, by URL) in this one; `/b` is cut at the budget, as a URL
        // found beyond it is.
        assert_eq!(
            titles(&database).await,
            ["Home", "Private a", "trap", "Private c"],
            "{database}: the pages after the second run"
        );
        assert_eq!(pages_requested(&site), 3, "{database}: the pages requested");
    }
}

/// A disallowed URL the budget had no room for when robots.txt was turned off is fetched
/// by a later run with the budget raised, on either backend, as the URLs a lower budget
/// cut are: it stayed a `robots` row, which neither that run (robots.txt still off, the
/// pass made) nor a raised budget ever queued again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disallowed_url_past_the_budget_is_fetched_once_the_budget_is_raised() {
    let test = "a_disallowed_url_past_the_budget";
    let (_server, harness, sqlite, databases) = TestPostgres::beside_sqlite(test, "staging").await;
    for database in databases {
        let (site, seeds) = staging().await;
        let runs = [(3, true), (3, false), (4, false)];
        crawls(
            &harness,
            (sqlite.as_str(), database.as_str()),
            &seeds,
            &runs,
        )
        .await;
        assert_eq!(
            titles(&database).await,
            ["Home", "Private a", "Private b", "Private c"],
            "{database}: the pages after the budget was raised"
        );
        assert_eq!(pages_requested(&site), 4, "{database}: the pages requested");
    }
}
