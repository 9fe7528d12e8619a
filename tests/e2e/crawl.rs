//! Crawls of the generated three-host site, checked against its model.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use pipecrawl::summary::EndReason;
use regex::Regex;
use sqlx::Row;

use super::cli::readme_sql_after;
use super::graph::{self, Model, Node, Rules, OUTSIDE};
use super::polite::robots_flags;
use super::recrawl::{both_backends, config_on};
use super::service::wait_for_requests;
use super::site::{Resource, SiteBuilder, TestSite};
use super::Harness;

const PAGES_PER_HOST: usize = 80;

async fn three_host_site() -> (TestSite, Model) {
    let mut builder = SiteBuilder::bind(3).await;
    let model = graph::generate(&mut builder, 3, PAGES_PER_HOST, 0x5eed);
    (builder.start(), model)
}

fn all_hosts(site: &TestSite) -> Vec<String> {
    site.authorities.clone()
}

/// Requests for pages: everything but robots.txt.
fn page_requests(site: &TestSite) -> Vec<String> {
    site.requested_urls()
        .into_iter()
        .filter(|u| !u.ends_with("/robots.txt"))
        .collect()
}

fn assert_no_url_requested_twice(site: &TestSite) {
    let mut seen = HashSet::new();
    for url in page_requests(site) {
        assert!(seen.insert(url.clone()), "{url} was requested twice");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_stores_exactly_the_reachable_pages_with_their_titles_and_links() {
    let (site, model) = three_host_site().await;
    let harness = Harness::default();
    let summary = harness.crawl(&model.seeds, "[fetch]\nworkers = 8\n").await;
    let hosts = all_hosts(&site);
    let expected = model.reachable(&Rules {
        hosts: &hosts,
        include: None,
        exclude: None,
        max_depth: None,
    });
    assert!(
        expected.len() > 200,
        "the site should be a few hundred pages, is {}",
        expected.len()
    );

    let db = harness.db().await;
    let pages = db.pages().await;
    let stored: BTreeSet<&str> = pages.iter().map(|p| p.url.as_str()).collect();
    let wanted: BTreeSet<&str> = expected.keys().map(String::as_str).collect();
    assert_eq!(stored, wanted, "stored pages differ from the reachable set");
    assert_eq!(summary.tally.pages as usize, expected.len());
    assert_eq!(summary.ended, EndReason::FrontierEmpty);

    assert_no_url_requested_twice(&site);
    let requested: BTreeSet<String> = page_requests(&site).into_iter().collect();
    let requested: BTreeSet<&str> = requested.iter().map(String::as_str).collect();
    assert_eq!(
        requested, wanted,
        "every stored page was requested, and nothing else"
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM pages WHERE url LIKE '%/secret%' OR url LIKE '%/orphan/%'")
            .await,
        0
    );
    // A fresh crawl keeps no counts while it runs and builds them at its end.
    assert_eq!(db.wrong_link_counts().await, 0, "in-link and anchor counts");
    assert_eq!(
        db.scalar("SELECT value FROM writer_state WHERE key = 'link_counts_behind'")
            .await,
        0
    );

    // Titles and (target, anchor text) pairs are exactly what the pages say.
    let mut links_by_page: HashMap<String, BTreeSet<(String, String)>> = HashMap::new();
    for (source, target, anchor) in db.links().await {
        assert!(
            links_by_page
                .entry(source.clone())
                .or_default()
                .insert((target.clone(), anchor.clone())),
            "duplicate link row {source} -> {target} {anchor:?}"
        );
    }
    for page in &pages {
        let node = &model.nodes[&page.url];
        let links = links_by_page.remove(&page.url).unwrap_or_default();
        match node {
            Node::Html { title, links: want } => {
                assert_eq!(page.status, Some(200), "{}", page.url);
                assert_eq!(page.title.as_deref(), Some(title.as_str()), "{}", page.url);
                assert_eq!(&links, want, "links of {}", page.url);
            }
            Node::Status(code) => {
                assert_eq!(page.status, Some(i64::from(*code)), "{}", page.url);
                assert!(
                    links.is_empty(),
                    "an error page's links are not followed: {}",
                    page.url
                );
            }
            Node::Redirect(_) => {
                assert!(matches!(page.status, Some(301 | 302)), "{}", page.url);
                assert_eq!(page.title, None);
            }
            Node::Other(content_type) => {
                assert_eq!(page.content_type.as_deref(), Some(*content_type));
                assert_eq!(page.title, None, "non-HTML is not parsed: {}", page.url);
                assert!(links.is_empty(), "non-HTML is not parsed: {}", page.url);
            }
        }
        assert!(
            page.depth >= i64::from(expected[&page.url]),
            "{} is shallower than possible",
            page.url
        );
    }
    for seed in &model.seeds {
        assert_eq!(db.page(seed).await.map(|p| p.depth), Some(0));
    }

    // Redirects end where their chain ends, and the target is a page of its own.
    let p1 = site.url(0, "/p/1");
    let moved = db
        .page(&site.url(0, "/moved"))
        .await
        .expect("the redirect is stored");
    assert_eq!(
        (moved.status, moved.final_url.as_deref()),
        (Some(301), Some(p1.as_str()))
    );
    let chain = db
        .page(&site.url(0, "/chain"))
        .await
        .expect("the redirect chain is stored");
    assert_eq!(
        (chain.status, chain.final_url.as_deref()),
        (Some(302), Some(p1.as_str()))
    );
    assert_eq!(db.page(&p1).await.and_then(|p| p.status), Some(200));

    // Links out of scope are rows, never requests.
    assert_eq!(
        db.scalar(&format!(
            "SELECT count(*) FROM links WHERE target_url = '{OUTSIDE}'"
        ))
        .await,
        3
    );
    assert_eq!(
        db.scalar(&format!(
            "SELECT count(*) FROM pages WHERE url = '{OUTSIDE}'"
        ))
        .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_depth_keeps_the_crawl_near_the_seeds() {
    let (site, model) = three_host_site().await;
    let harness = Harness::default();
    harness
        .crawl(&model.seeds, "[scope]\nmax_depth = 1\n")
        .await;
    let hosts = all_hosts(&site);
    let expected = model.reachable(&Rules {
        hosts: &hosts,
        include: None,
        exclude: None,
        max_depth: Some(1),
    });
    let stored: HashMap<String, u32> = harness
        .db()
        .await
        .pages()
        .await
        .into_iter()
        .map(|p| (p.url, u32::try_from(p.depth).unwrap_or(u32::MAX)))
        .collect();
    assert_eq!(stored, expected, "pages and depths with max_depth = 1");
    assert_no_url_requested_twice(&site);
}

/// A site of `hosts` hosts (more to be added) where a URL is found deep first and
/// nearer the seeds later. Host 0: `/` → `/a` → host 1's `/x`; host 1: `/` (slow) →
/// `/x` → `/y`. Host 1's `/x` is at depth 1, so with `max_depth = 2` `/y` is fetched.
/// `/x` answers slowly too, so that `/`, which found it nearer, is stored before it
/// however loaded the machine: the other way round the shorter path is found too late.
async fn shorter_path_found_late(hosts: u8) -> SiteBuilder {
    let mut b = SiteBuilder::bind(hosts).await;
    let (a, h) = (b.authority(0), b.authority(1));
    b.add(&a, "/", Resource::Html("<a href='/a'>a</a>".into()));
    b.add(
        &a,
        "/a",
        Resource::Html(format!("<a href='http://{h}/x'>x</a>")),
    );
    b.add(
        &h,
        "/",
        Resource::Slow(
            Duration::from_millis(1500),
            Box::new(Resource::Html("<a href='/x'>x</a>".into())),
        ),
    );
    b.add(
        &h,
        "/x",
        Resource::Slow(
            Duration::from_millis(500),
            Box::new(Resource::Html("<a href='/y'>y</a>".into())),
        ),
    );
    b.add(&h, "/y", Resource::Html("<title>y</title>".into()));
    b
}

/// The depth of each page the crawl stored, by URL.
async fn depths_by_url(harness: &Harness) -> HashMap<String, i64> {
    harness
        .db()
        .await
        .pages()
        .await
        .into_iter()
        .map(|p| (p.url, p.depth))
        .collect()
}

/// That host 1's `/x` was stored at depth 1, and `/y` fetched ([`shorter_path_found_late`]).
async fn assert_crawled_by_the_shorter_path(site: &TestSite, harness: &Harness) {
    let depths = depths_by_url(harness).await;
    assert_eq!(depths.get(&site.url(1, "/x")), Some(&1), "{depths:?}");
    assert!(depths.contains_key(&site.url(1, "/y")), "{depths:?}");
}

/// A URL first found deep, leased into the window while its host is busy, and then found
/// nearer the seeds kept the depth it was found at first: `max_depth` cut its links as
/// if the shorter path did not exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_found_nearer_the_seeds_while_in_the_window_is_crawled_at_the_lower_depth() {
    let site = shorter_path_found_late(2).await.start();
    let harness = Harness::default();
    harness
        .crawl(
            &[site.url(0, "/"), site.url(1, "/")],
            "[scope]\nmax_depth = 2\n[politeness]\ndelay_ms = 0\nper_host_concurrency = 1\n",
        )
        .await;
    assert_crawled_by_the_shorter_path(&site, &harness).await;
}

/// As above, on PostgreSQL: there the leased row is another node's to finish, and the
/// URL found nearer is noted beside it (`frontier_nearer`) for its owner to store the
/// page at that depth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_found_nearer_the_seeds_while_in_the_window_is_crawled_at_the_lower_depth_on_postgresql(
) {
    let test = "a_url_found_nearer_the_seeds_while_in_the_window_on_postgresql";
    let Some(server) = super::postgres::TestPostgres::start(test) else {
        return;
    };
    let database = server.database("found_nearer").await;
    let site = shorter_path_found_late(2).await.start();
    let seeds = [site.url(0, "/"), site.url(1, "/")];
    crawl_on_postgres(&seeds, &database)
        .await
        .expect("the crawl succeeds");
    assert_crawled_by_the_shorter_path_on_postgres(&site, &database).await;
}

/// As above, on PostgreSQL, with the page that found host 1's `/x` nearer and `/x`
/// itself stored in one batch: the batch's leases were read before the URLs it found
/// were added. The writer is held up (`pages` locked) while host 2's slow `/` is stored,
/// so that both pages wait for the next batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_found_nearer_the_seeds_in_the_batch_of_its_page_is_crawled_at_the_lower_depth_on_postgresql(
) {
    use sqlx::Connection;
    let test = "a_url_found_nearer_the_seeds_in_the_batch_of_its_page_on_postgresql";
    let Some(server) = super::postgres::TestPostgres::start(test) else {
        return;
    };
    let database = server.database("found_nearer_in_batch").await;
    let mut b = shorter_path_found_late(3).await;
    let decoy = b.authority(2);
    let page = Resource::Html("<title>decoy</title>".into());
    b.add(
        &decoy,
        "/",
        Resource::Slow(Duration::from_millis(1000), Box::new(page)),
    );
    let site = b.start();
    let seeds = [site.url(0, "/"), site.url(1, "/"), site.url(2, "/")];
    let x = site.url(1, "/x");
    let (crawled, ()) = tokio::join!(crawl_on_postgres(&seeds, &database), async {
        let mut lock = sqlx::PgConnection::connect(&database)
            .await
            .expect("connect");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let state: Option<String> =
                sqlx::query_scalar("SELECT state FROM frontier WHERE url = $1")
                    .bind(&x)
                    .fetch_optional(&mut lock)
                    .await
                    // No table before the crawl's migrations ran.
                    .unwrap_or_default();
            if state.as_deref() == Some("leased") {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "/x was never leased");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut tx = lock.begin().await.expect("begin");
        sqlx::query("LOCK TABLE pages IN SHARE MODE")
            .execute(&mut *tx)
            .await
            .expect("lock pages");
        while !site.requested_urls().contains(&x) {
            assert!(std::time::Instant::now() < deadline, "/x was never asked");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // `/x` answers in 500 ms, and is parsed soon after.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        tx.commit().await.expect("unlock pages");
    });
    crawled.expect("the crawl succeeds");
    assert_crawled_by_the_shorter_path_on_postgres(&site, &database).await;
}

/// Crawls from `seeds` into PostgreSQL's `database` with `max_depth = 2`, one request at
/// a time per host.
async fn crawl_on_postgres(
    seeds: &[String],
    database: &str,
) -> Result<pipecrawl::Summary, pipecrawl::Error> {
    let harness = Harness::default();
    let sqlite = format!("{:?}", harness.db_path().display().to_string());
    let text = harness
        .test_config_text(
            seeds,
            "[scope]\nmax_depth = 2\n[politeness]\ndelay_ms = 0\nper_host_concurrency = 1\n",
        )
        .replace(&sqlite, &format!("{database:?}"));
    let config = pipecrawl::Config::from_toml(&text, "test config").expect("a valid config");
    pipecrawl::crawl(config, std::future::pending()).await
}

/// [`assert_crawled_by_the_shorter_path`] on PostgreSQL's `database`, where host 1's
/// `/x`'s frontier row says depth 1 too.
async fn assert_crawled_by_the_shorter_path_on_postgres(site: &TestSite, database: &str) {
    let pool = sqlx::PgPool::connect(database)
        .await
        .expect("connect to the test database");
    let depths: HashMap<String, i64> = sqlx::query_as("SELECT url, depth FROM pages")
        .fetch_all(&pool)
        .await
        .expect("read the pages")
        .into_iter()
        .collect();
    assert_eq!(depths.get(&site.url(1, "/x")), Some(&1), "{depths:?}");
    assert!(depths.contains_key(&site.url(1, "/y")), "{depths:?}");
    let frontier: i64 = sqlx::query_scalar("SELECT depth FROM frontier WHERE url = $1")
        .bind(site.url(1, "/x"))
        .fetch_one(&pool)
        .await
        .expect("read the frontier row");
    assert_eq!(frontier, 1, "the frontier row moves with its page");
}

/// As above, but the shorter path is found while the queue is long: on SQLite the URL
/// found waits staged, not merged into the frontier, when its page (leased deep) is
/// stored. Host 2's boosted pages keep the queue long: a window's worth of them waits,
/// each better than the URL found, so nothing merges it until the queue runs short.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_found_nearer_the_seeds_while_staged_is_crawled_at_the_lower_depth() {
    let mut b = shorter_path_found_late(3).await;
    let c = b.authority(2);
    let pages: String = (0..16).map(|i| format!("<a href='/c{i}'>c</a>")).collect();
    b.add(
        &c,
        "/",
        Resource::Slow(Duration::from_millis(300), Box::new(Resource::Html(pages))),
    );
    for i in 0..16 {
        let page = Resource::Html("<title>c</title>".into());
        let slow = Resource::Slow(Duration::from_millis(400), Box::new(page));
        b.add(&c, &format!("/c{i}"), slow);
    }
    let site = b.start();
    let harness = Harness::default();
    harness
        .crawl(
            &[site.url(0, "/"), site.url(1, "/"), site.url(2, "/")],
            "[scope]\nmax_depth = 2\n[politeness]\ndelay_ms = 0\nper_host_concurrency = 1\n\
             [frontier]\nwindow = 4\n[[frontier.boost]]\npattern = '/c'\nboost = 10\n",
        )
        .await;
    assert_crawled_by_the_shorter_path(&site, &harness).await;
}

/// A page moved nearer the seeds while it was fetched moves its links with it: one of
/// them already leased deeper (found by a longer path) is stored a level below the page,
/// as a crawl with the pages answered in another order stores it. It kept the depth of
/// the longer path, so two crawls of one site gave it different depths. Seeds `/s1` and
/// `/s2`: `/s1` → `/q` → `/p`, `/r`; `/r` → `/x`. `/s2` (held until `/p` is requested)
/// → `/p`, `/z`; `/p` (held until `/z` and `/x` are) → `/x`, `/y`; `/x` is held until `/y`
/// is requested, when `/p` is stored at depth 1: `/x` is at depth 2, not 3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_of_a_page_moved_nearer_the_seeds_moves_with_it_though_already_leased() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    let (open_s2, s2) = tokio::sync::watch::channel(false);
    let (open_p, p) = tokio::sync::watch::channel(false);
    let (open_x, x) = tokio::sync::watch::channel(false);
    let html = |links: &[&str]| {
        let links: String = links
            .iter()
            .map(|l| format!("<a href='{l}'>{l}</a>"))
            .collect();
        Resource::Html(links)
    };
    let held = |gate, links: &[&str]| Resource::Held(gate, Box::new(html(links)));
    b.add(&h, "/s1", html(&["/q"]));
    b.add(&h, "/q", html(&["/p", "/r"]));
    b.add(&h, "/r", html(&["/x"]));
    b.add(&h, "/s2", held(s2, &["/p", "/z"]));
    b.add(&h, "/p", held(p, &["/x", "/y"]));
    b.add(&h, "/x", held(x, &[]));
    for path in ["/y", "/z"] {
        b.add(&h, path, html(&[]));
    }
    let site = b.start();
    let harness = Harness::default();
    let requested = |paths: &'static [&'static str]| {
        let urls: Vec<String> = paths.iter().map(|path| site.url(0, path)).collect();
        move |done: &[String]| urls.iter().all(|url| done.contains(url))
    };
    let gates = async {
        wait_for_requests(&site, requested(&["/p"])).await;
        open_s2.send_replace(true);
        wait_for_requests(&site, requested(&["/z", "/x"])).await;
        open_p.send_replace(true);
        wait_for_requests(&site, requested(&["/y"])).await;
        open_x.send_replace(true);
    };
    let seeds = [site.url(0, "/s1"), site.url(0, "/s2")];
    let config = "[politeness]\ndelay_ms = 0\nper_host_concurrency = 8\n";
    tokio::join!(harness.crawl(&seeds, config), gates);
    let depths = depths_by_url(&harness).await;
    assert_eq!(depths.get(&site.url(0, "/p")), Some(&1), "{depths:?}");
    assert_eq!(depths.get(&site.url(0, "/x")), Some(&2), "{depths:?}");
}

/// README's way to compare two crawls of one site: its statement over `links`, and the
/// pages by URL without ids, times and `discovered_from`, give the same rows for two
/// crawls whose fetches finish in other orders (one at a time, and eight at once),
/// whose ids differ.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_crawls_of_one_site_compare_equal_as_readme_says_to_compare_them() {
    let (_site, model) = three_host_site().await;
    let links_sql = readme_sql_after("**Two crawls of one site**");
    let pages_sql = "SELECT url, final_url, CAST(status AS TEXT), title, CAST(bytes AS TEXT), \
                     content_hash FROM pages ORDER BY url";
    let mut crawls = Vec::new();
    for concurrency in [1, 8] {
        let harness = Harness::default();
        let config = format!("[politeness]\ndelay_ms = 0\nper_host_concurrency = {concurrency}\n");
        harness.crawl(&model.seeds, &config).await;
        let mut reader = harness.open_reader().await;
        let mut rows = Vec::new();
        for sql in [links_sql, pages_sql] {
            let found = sqlx::query(sql).fetch_all(&mut reader).await.expect(sql);
            rows.push(found.iter().map(text_row).collect::<Vec<_>>());
        }
        crawls.push(rows);
    }
    assert!(!crawls[0][0].is_empty() && !crawls[0][1].is_empty());
    assert_eq!(crawls[0], crawls[1]);
}

/// A row of text columns (NULL among them) as one line, its cells joined by `|`.
fn text_row(row: &sqlx::sqlite::SqliteRow) -> String {
    (0..row.len())
        .map(|i| {
            let cell = row.try_get::<Option<String>, _>(i);
            format!("{:?}", cell.expect("a text column"))
        })
        .collect::<Vec<_>>()
        .join("|")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn include_and_exclude_rules_decide_what_is_crawled() {
    let (site, model) = three_host_site().await;
    let harness = Harness::default();
    let include = r"^http://127\.0\.0\.[12]:";
    let exclude = r"/p/1\d*$";
    harness
        .crawl(
            &model.seeds,
            &format!("[scope]\ninclude = [{include:?}]\nexclude = [{exclude:?}]\n"),
        )
        .await;
    let hosts = all_hosts(&site);
    let expected = model.reachable(&Rules {
        hosts: &hosts,
        include: Some(Regex::new(include).unwrap()),
        exclude: Some(Regex::new(exclude).unwrap()),
        max_depth: None,
    });
    let db = harness.db().await;
    let stored: BTreeSet<String> = db.pages().await.into_iter().map(|p| p.url).collect();
    let wanted: BTreeSet<String> = expected.into_keys().collect();
    assert_eq!(stored, wanted);
    // Host 3 is only its seed; excluded pages are linked to but never requested.
    assert!(site
        .requested_urls()
        .iter()
        .all(|u| !u.ends_with("/p/1") && !u.contains("/p/1?")));
    assert!(
        db.scalar("SELECT count(*) FROM links WHERE target_url LIKE '%/p/1'")
            .await
            > 0
    );
    assert_no_url_requested_twice(&site);
}

/// Nutch's `regex-urlfilter.txt` decides by the first line that matches, so a `+` line
/// before a `-` line keeps part of what the `-` line drops (an archive's 2024 pages, not
/// its older ones). `include` and `exclude` could not say that: an exclude wins over
/// every include, and the regex crate has no look-ahead to write "except" with.
/// `scope.url_filter` takes the file's lines, signs and all, in order: the first that
/// matches keeps or drops the URL, and a URL none matches is dropped, as in Nutch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_filter_rules_decide_by_the_first_that_matches_as_nutch_reads_them() {
    let (requested, wanted) = crawl_home_linking(
        &["/archive/2024/a", "/archive/2019/b", "/docs/x", "/tmp/y"],
        "[scope]\nurl_filter = ['+/archive/2024/', '-/archive/', '+/docs/']\n",
        &["/archive/2024/a", "/docs/x"],
    )
    .await;
    assert_eq!(
        requested, wanted,
        "the first rule matching decides; none: dropped"
    );
}

/// An `exclude` for a literal `-` may well start with a group (`-(?:print|amp)\.html$`
/// drops `article-print.html` and `article-amp.html`): only inline flags (`-(?i)`) or an
/// anchor after the `-` mark a line of Nutch's `regex-urlfilter.txt`, not any `(?`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exclude_for_a_dash_before_a_group_is_a_rule_not_a_nutch_line() {
    let (requested, wanted) = crawl_home_linking(
        &["/article-print.html", "/article-amp.html", "/article.html"],
        "[scope]\nexclude = ['-(?:print|amp)\\.html$']\n",
        &["/article.html"],
    )
    .await;
    assert_eq!(requested, wanted);
}

/// Crawls a one-host site whose home links to `paths` under `config`; returns the URLs
/// requested, and those a crawl of the home and `crawled` requests.
async fn crawl_home_linking(
    paths: &[&str],
    config: &str,
    crawled: &[&str],
) -> (BTreeSet<String>, BTreeSet<String>) {
    let links: String = paths
        .iter()
        .map(|p| format!("<a href='{p}'>{p}</a>"))
        .collect();
    let mut pages = vec![("/", format!("<title>Home</title>{links}"))];
    pages.extend(paths.iter().map(|p| (*p, format!("<title>{p}</title>"))));
    let pages: Vec<(&str, &str)> = pages.iter().map(|(p, h)| (*p, h.as_str())).collect();
    let site = TestSite::one_host(&pages).await;
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], config).await;
    let requested: BTreeSet<String> = site.requested_urls().into_iter().collect();
    let wanted: BTreeSet<String> = ["/robots.txt", "/"]
        .iter()
        .chain(crawled)
        .map(|p| site.url(0, p))
        .collect();
    (requested, wanted)
}

/// `scope.max_pages` counts pages stored: a request that failed and is to be tried again
/// stores nothing, so it leaves the limit to the pages after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_request_does_not_count_against_max_pages() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    let links: String = (0..8).map(|i| format!("<a href='/{i}'>{i}</a>")).collect();
    b.add(
        &h,
        "/",
        Resource::Html(format!("<title>Home</title>{links}")),
    );
    for i in 0..8 {
        let page = Resource::Html(format!("<title>Page {i}</title>"));
        let page = match i {
            // Busy twice, then answers.
            0 | 1 => Resource::Sequence(vec![
                Resource::Status(503, "busy".into()),
                Resource::Status(503, "busy".into()),
                page,
            ]),
            _ => page,
        };
        b.add(&h, &format!("/{i}"), page);
    }
    let site = b.start();
    let harness = Harness::default();
    let summary = harness
        .crawl(
            &[site.url(0, "/")],
            "[scope]\nmax_pages = 6\n[retry]\nmax_attempts = 3\nbase_delay_ms = 10\nmax_delay_ms = 20\n",
        )
        .await;
    assert_eq!(summary.ended, EndReason::PageLimit);
    assert_eq!(summary.tally.pages, 6);
    assert_eq!(harness.page_count().await, 6);
}

/// Rows for URLs refused as traps are never fetched, within a run or after it: a trap
/// page seen before the limit does not use up the next run's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trap_rows_do_not_count_against_max_pages_in_a_later_run() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    let pages: String = (0..6).map(|i| format!("<a href='/{i}'>{i}</a>")).collect();
    let traps: String = (0..10)
        .map(|i| format!("<a href='/t{i}?a=1&b=2&c=3'>trap {i}</a>"))
        .collect();
    b.add(&h, "/", Resource::Html(format!("{pages}{traps}")));
    for i in 0..6 {
        b.add(
            &h,
            &format!("/{i}"),
            Resource::Html(format!("<title>Page {i}</title>")),
        );
    }
    let site = b.start();
    let harness = Harness::default();
    let traps = "[traps]\nmax_query_params = 2\n";
    harness
        .crawl(
            &[site.url(0, "/")],
            &format!("{traps}[scope]\nmax_pages = 3\n"),
        )
        .await;
    let trapped = "SELECT count(*) FROM pages WHERE error_kind = 'trap'";
    assert_eq!(harness.db().await.scalar(trapped).await, 10);
    let summary = harness
        .crawl(
            &[site.url(0, "/")],
            &format!("{traps}[scope]\nmax_pages = 6\n"),
        )
        .await;
    assert_eq!(
        summary.tally.pages, 3,
        "the second run fetched up to the limit"
    );
    assert_eq!(page_requests(&site).len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_pages_stops_the_crawl_and_a_later_run_continues_where_it_stopped() {
    let (site, model) = three_host_site().await;
    let harness = Harness::default();
    let summary = harness
        .crawl(&model.seeds, "[scope]\nmax_pages = 25\n")
        .await;
    assert_eq!(summary.ended, EndReason::PageLimit);
    assert_eq!(summary.tally.pages, 25);
    assert_eq!(harness.page_count().await, 25);
    assert_eq!(page_requests(&site).len(), 25);
    assert_eq!(
        harness
            .db()
            .await
            .scalar("SELECT count(*) FROM frontier WHERE state = 'leased'")
            .await,
        0
    );

    let summary = harness
        .crawl(&model.seeds, "[scope]\nmax_pages = 60\n")
        .await;
    assert_eq!(summary.tally.pages, 35);
    assert_eq!(harness.page_count().await, 60);
    assert_eq!(page_requests(&site).len(), 60);
    assert_no_url_requested_twice(&site);

    let summary = harness.crawl(&model.seeds, "").await;
    assert_eq!(summary.ended, EndReason::FrontierEmpty);
    let hosts = all_hosts(&site);
    let expected = model.reachable(&Rules {
        hosts: &hosts,
        include: None,
        exclude: None,
        max_depth: None,
    });
    assert_eq!(harness.page_count().await as usize, expected.len());
    assert_no_url_requested_twice(&site);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_seed_becomes_an_error_row_and_the_crawl_goes_on() {
    let mut builder = SiteBuilder::bind(1).await;
    let home = format!("http://{}/", builder.authority(0));
    builder.add(
        &builder.authority(0),
        "/",
        Resource::Html("<title>Up</title><a href='/a'>A</a>".into()),
    );
    builder.add(
        &builder.authority(0),
        "/a",
        Resource::Html("<title>A</title>".into()),
    );
    let _site = builder.start();
    // Nothing listens on port 1: the connection is refused.
    let dead = "http://127.0.0.1:1/".to_owned();
    let harness = Harness::default();
    let summary = harness.crawl(&[home.clone(), dead.clone()], "").await;
    assert_eq!(summary.tally.pages, 3);
    assert_eq!(summary.tally.errors.get("connect"), Some(&1));
    let db = harness.db().await;
    let row = db.page(&dead).await.expect("the dead seed has a row");
    assert_eq!(
        (row.status, row.error_kind.as_deref()),
        (None, Some("connect"))
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM frontier WHERE state = 'failed'")
            .await,
        1
    );
    assert_eq!(
        db.page(&format!("{home}a"))
            .await
            .and_then(|p| p.title)
            .as_deref(),
        Some("A")
    );
}

/// `/` links to `/a0` … `/a39`; `/a{i}` links to `/b{i}`, and `/a0` also to `/urgent`.
/// `/a1` … `/a6` answer after 150 ms each: `/urgent` can be fetched next only once `/a0`
/// is parsed and stored, which on a loaded machine took longer than a few instant
/// fetches of the pages after it.
async fn long_queue_site() -> TestSite {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    let links: String = (0..40)
        .map(|i| format!("<a href='/a{i}'>a{i}</a>"))
        .collect();
    b.add(&h, "/", Resource::Html(links));
    for i in 0..40 {
        let urgent = if i == 0 {
            "<a href='/urgent'>urgent</a>"
        } else {
            ""
        };
        let page = Resource::Html(format!("<a href='/b{i}'>b{i}</a>{urgent}"));
        let page = if (1..=6).contains(&i) {
            Resource::Slow(Duration::from_millis(150), Box::new(page))
        } else {
            page
        };
        b.add(&h, &format!("/a{i}"), page);
        b.add(
            &h,
            &format!("/b{i}"),
            Resource::Html("<title>b</title>".into()),
        );
    }
    b.add(
        &h,
        "/urgent",
        Resource::Html("<title>urgent</title>".into()),
    );
    b.start()
}

/// One request at a time and a window of four, so the queue is long beside the window.
const LONG_QUEUE: &str = "[fetch]\nworkers = 1\n[politeness]\ndelay_ms = 0\n\
per_host_concurrency = 1\n[frontier]\nwindow = 4\n";

/// On SQLite new URLs wait in `frontier_staged` while the queue is long, but one that
/// outranks what the queue would hand out next joins it at once: a boosted URL found
/// early is fetched early, not once the queue has drained.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_boosted_url_found_while_the_queue_is_long_is_fetched_next() {
    let site = long_queue_site().await;
    let harness = Harness::default();
    let boost = "[[frontier.boost]]\npattern = \"/urgent$\"\nboost = 100\n";
    harness
        .crawl(&[site.url(0, "/")], &format!("{LONG_QUEUE}{boost}"))
        .await;
    let order = page_requests(&site);
    assert_eq!(order.len(), 82);
    let at = order
        .iter()
        .position(|u| u.ends_with("/urgent"))
        .expect("/urgent was fetched");
    // `/`, `/a0`, what the window held when `/a0` was stored, then `/urgent`.
    assert!(at <= 8, "/urgent was request {at} of {}", order.len());
    assert_no_url_requested_twice(&site);
}

/// A crawl stopped by `max_pages` leaves every URL it found in `frontier`, staged or not,
/// so that a query or the next run sees them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_stopped_early_leaves_every_url_it_found_in_the_frontier() {
    let site = long_queue_site().await;
    let harness = Harness::default();
    harness
        .crawl(
            &[site.url(0, "/")],
            &format!("{LONG_QUEUE}[scope]\nmax_pages = 4\n"),
        )
        .await;
    let db = harness.db().await;
    assert_eq!(db.scalar("SELECT count(*) FROM pages").await, 4);
    // `/`, the 40 it links to, and one `/b{i}` (and `/urgent`) per `/a{i}` fetched.
    let fetched_a: Vec<String> = page_requests(&site)
        .into_iter()
        .filter(|u| u.contains("/a"))
        .collect();
    assert_eq!(fetched_a.len(), 3, "{fetched_a:?}");
    let found = 1 + 40 + 3 + usize::from(fetched_a.iter().any(|u| u.ends_with("/a0")));
    assert_eq!(
        db.scalar("SELECT count(*) FROM frontier").await,
        i64::try_from(found).expect("a small count")
    );
    assert_eq!(db.scalar("SELECT count(*) FROM frontier_staged").await, 0);
}

/// A page may link to one place twice with the same words, once `rel="nofollow"` (a
/// sponsored box, a comment) and once plainly. It is one link row, but the plain link is
/// an invitation all the same: the target is crawled, and the row says it was followed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_repeated_with_and_without_nofollow_is_followed() {
    let site = TestSite::one_host(&[
        (
            "/",
            "<title>Home</title><aside><a href='/shop' rel='nofollow sponsored'>Shop</a></aside>\
             <nav><a href='/shop'>Shop</a></nav>",
        ),
        ("/shop", "<title>Shop</title>"),
    ])
    .await;

    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;
    assert_eq!(
        site.count(&site.url(0, "/shop")),
        1,
        "the plain link is followed"
    );
    let db = harness.db().await;
    assert_eq!(
        db.scalar("SELECT count(*) FROM links WHERE anchor_text = 'Shop' AND rel IS NULL")
            .await,
        1,
        "one row, with the followed link's rel"
    );
}

/// A pager's arrow (`<span aria-hidden="true">»</span>`) is decoration the page marks
/// as naming nothing: the link's row takes its `aria-label`, else its `title`, as a
/// screen reader says it, not the glyph.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_icon_links_anchor_text_is_its_label_not_its_hidden_glyph() {
    let site = TestSite::one_host(&[(
        "/",
        "<a href='/2' aria-label='Next page'><span aria-hidden='true'>&raquo;</span></a>\
         <a href='/menu' title='Menu'><i class='icon' aria-hidden='true'>&#9776;</i></a>",
    )])
    .await;
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;
    let mut links = harness.db().await.links().await;
    links.sort();
    assert_eq!(
        links,
        [
            (site.url(0, "/"), site.url(0, "/2"), "Next page".to_owned()),
            (site.url(0, "/"), site.url(0, "/menu"), "Menu".to_owned()),
        ]
    );
}

/// A link named only by `aria-labelledby` (an icon link, the page's heading or a card's
/// title naming it) is stored with the text of the elements those ids name, before or
/// after the link, joined by a space; a link with text of its own keeps it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_icon_links_anchor_text_is_what_its_aria_labelledby_names() {
    let texts = anchor_texts_of(
        "<h2 id='shoes'>Red <b>shoes</b></h2>\
         <a href='/next' aria-labelledby='more shoes' aria-label='Arrow'>\
         <svg aria-hidden='true'><path d='M0'/></svg></a>\
         <a href='/cart' aria-labelledby='cart-label'><i class='icon'></i></a>\
         <a href='/home' aria-labelledby='shoes'>Home</a>\
         <span id='more' hidden>See more</span><span id='cart-label'>Your cart</span>",
    )
    .await;
    let expected = [
        ("/cart", "Your cart"),
        ("/home", "Home"),
        ("/next", "See more Red shoes"),
    ];
    assert_eq!(texts, expected.map(|(p, t)| (p.to_owned(), t.to_owned())));
}

/// The anchor texts of the links a one-page site's page stores, by target path, in order.
async fn anchor_texts_of(page: &str) -> Vec<(String, String)> {
    let site = TestSite::one_host(&[("/", page)]).await;
    let harness = Harness::default();
    let home = site.url(0, "/");
    harness.crawl(std::slice::from_ref(&home), "").await;
    let mut texts = Vec::new();
    for (source, target, text) in harness.db().await.links().await {
        assert_eq!(source, home);
        let path = target
            .strip_prefix(home.trim_end_matches('/'))
            .unwrap_or(&target);
        texts.push((path.to_owned(), text));
    }
    texts.sort();
    texts
}

/// An icon drawn as an image by role (`<svg role="img" aria-label="Cart">`, an icon
/// font's `<i role="img" aria-label="…">`) names a link with no text as an image's alt
/// does, its label in place of its content (an SVG's `<title>`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_icon_links_anchor_text_is_its_icons_aria_label() {
    let texts = anchor_texts_of(
        "<a href='/cart'><svg role='img' aria-label='Cart'><title>cart-icon</title>\
         <path d='M0'/></svg></a>\
         <a href='/t'><i class='fa fa-twitter' role='img' aria-label='Twitter'></i></a>\
         <a href='/buy'><svg aria-label='Bag'></svg>Buy now</a>",
    )
    .await;
    let expected = [("/buy", "Buy now"), ("/cart", "Cart"), ("/t", "Twitter")];
    assert_eq!(texts, expected.map(|(p, t)| (p.to_owned(), t.to_owned())));
}

/// A video or audio thumbnail linked (`<a><video>…Your browser does not support the video
/// tag.</video></a>`) shows its player, never the fallback text inside it, which is for
/// browsers without one: that is not the link's anchor text; the text beside it, else
/// its label, is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_media_elements_fallback_text_is_not_a_links_anchor_text() {
    let texts = anchor_texts_of(
        "<a href='/clip' title='Launch video'><video autoplay muted><source src='v.mp4'>\
         Your browser does not support the video tag.<img src=p.jpg alt='poster'></video></a>\
         <a href='/song'><audio src='a.mp3'>No audio support</audio>Listen</a>",
    )
    .await;
    let expected = [("/clip", "Launch video"), ("/song", "Listen")];
    assert_eq!(texts, expected.map(|(p, t)| (p.to_owned(), t.to_owned())));
}

/// A link whose only text is an invisible character an editor left in it (a zero-width
/// space, a byte order mark as TinyMCE's caret placeholder, a soft hyphen) shows no text:
/// it is named by its image's alt, else its label, as a link with no text is; one with
/// text keeps it as written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invisible_character_alone_does_not_hide_an_image_links_alt_text() {
    let texts = anchor_texts_of(
        "<a href='/logo'><img src=logo.png alt='Logo'>&#xFEFF;</a>\
         <a href='/tip' title='Tip'>&#8203;</a><a href='/soft' aria-label='Soft'>&shy;</a>\
         <a href='/zw'>Real&#8203;text</a>",
    )
    .await;
    let expected = [
        ("/logo", "Logo"),
        ("/soft", "Soft"),
        ("/tip", "Tip"),
        ("/zw", "Real\u{200b}text"),
    ];
    assert_eq!(texts, expected.map(|(p, t)| (p.to_owned(), t.to_owned())));
}

/// An inline SVG written as an empty tag (`<svg aria-hidden="true" … />`, which HTML
/// reads as empty, as it does every SVG element's) hides nothing after it: the link's
/// text after the icon is its anchor text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_after_an_empty_hidden_svg_icon_is_the_links() {
    let texts = anchor_texts_of(
        "<a href='/next'><svg aria-hidden='true' class='icon'/>Next page</a>\
         <a href='/cart'><svg role='img' aria-label='Cart'/> Cart (2)</a>",
    )
    .await;
    let expected = [("/cart", "Cart (2)"), ("/next", "Next page")];
    assert_eq!(texts, expected.map(|(p, t)| (p.to_owned(), t.to_owned())));
}

/// An `<svg>` or `<math>` left open in a `<template>` (an icon whose `</svg>` was
/// forgotten) ends with the template, as the tree builder ends it: the page after it is
/// the page's, its title, canonical, robots `<meta>` and links.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_content_left_open_in_a_template_ends_with_it() {
    let site = TestSite::one_host(&[
        (
            "/",
            "<head><template id='icon'><svg viewBox='0 0 8 8'><path d='M0 0h8'></template>\
             <title>Home</title><link rel='canonical' href='/home'></head>\
             <body><a href='/next'>Next</a></body>",
        ),
        (
            "/next",
            "<template><math><mi>x</template>\
             <meta name='robots' content='noindex'><title>Next</title>",
        ),
    ])
    .await;
    let harness = Harness::default();
    let home = site.url(0, "/");
    harness.crawl(std::slice::from_ref(&home), "").await;
    let db = harness.db().await;
    let title = db.page(&home).await.and_then(|p| p.title);
    assert_eq!(title.as_deref(), Some("Home"));
    let canonical = format!(
        "SELECT count(*) FROM pages WHERE url = '{home}' AND canonical_url = '{}'",
        site.url(0, "/home")
    );
    assert_eq!(db.scalar(&canonical).await, 1, "the canonical after it");
    assert_eq!(
        db.links().await,
        [(home, site.url(0, "/next"), "Next".to_owned())]
    );
    let noindex = format!(
        "SELECT noindex FROM pages WHERE url = '{}'",
        site.url(0, "/next")
    );
    assert_eq!(db.scalar(&noindex).await, 1, "the robots <meta> after it");
}

/// The long-queue site crawled to `max_pages = 2`: `/` and `/a0` stored, the rest queued.
async fn long_queue_stopped_at_two_pages() -> (TestSite, Harness, [String; 1]) {
    let site = long_queue_site().await;
    let harness = Harness::default();
    let seeds = [site.url(0, "/")];
    harness
        .crawl(&seeds, &format!("{LONG_QUEUE}[scope]\nmax_pages = 2\n"))
        .await;
    (site, harness, seeds)
}

/// A crawl resumed with a narrower scope (a new `exclude`, a lower `max_depth`) does not
/// fetch the URLs the last run queued that the scope now leaves out: "a URL matching any
/// `exclude` is never crawled".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_resumed_with_a_narrower_scope_leaves_out_what_was_queued_before() {
    let (site, harness, seeds) = long_queue_stopped_at_two_pages().await;
    assert_eq!(
        site.count(&site.url(0, "/a0")),
        1,
        "the first run's second page"
    );
    let narrower = "[scope]\nexclude = ['/a[1-3]$']\nmax_depth = 1\n";
    harness
        .crawl(&seeds, &format!("{LONG_QUEUE}{narrower}"))
        .await;
    for path in ["/a1", "/a2", "/a3", "/b0", "/urgent"] {
        assert_eq!(site.count(&site.url(0, path)), 0, "{path} was fetched");
    }
    assert_eq!(site.count(&site.url(0, "/a4")), 1);
    assert_no_url_requested_twice(&site);
    let db = harness.db().await;
    assert_eq!(db.scalar("SELECT count(*) FROM pages").await, 1 + 40 - 3);
    // The five left out stay known, failed with no page, as if never admitted.
    assert_eq!(
        db.scalar(
            "SELECT count(*) FROM frontier f WHERE state = 'failed'
             AND NOT EXISTS (SELECT 1 FROM pages p WHERE p.id = f.id)"
        )
        .await,
        5
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM frontier WHERE state NOT IN ('done', 'failed')")
            .await,
        0
    );
}

/// Crawls `site` from its first host's `/` into `database` (one of [`both_backends`]);
/// returns the pages stored.
async fn pages_crawled(harness: &Harness, database: &str, site: &TestSite, extra: &str) -> u64 {
    let config = config_on(harness, database, &site.url(0, "/"), extra);
    let summary = pipecrawl::crawl(config, std::future::pending()).await;
    summary.expect("the crawl succeeds").tally.pages
}

/// A boost rule added for a resumed crawl raises the URLs it matches that the last run
/// queued, not only those found from now on: "a URL matching `pattern` goes ahead of
/// others at the same depth". `/a39` waited behind `/a1` … `/a38`; boosted, it is next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_boost_added_on_resume_raises_the_urls_queued_before() {
    let harness = Harness::default();
    let (_server, databases) = both_backends(
        &harness,
        "a_boost_added_on_resume (PostgreSQL half)",
        "boosted",
    )
    .await;
    for database in databases {
        let site = long_queue_site().await;
        assert_eq!(
            pages_crawled(
                &harness,
                &database,
                &site,
                &format!("{LONG_QUEUE}[scope]\nmax_pages = 2\n")
            )
            .await,
            2
        );
        let boost = "[[frontier.boost]]\npattern = \"/a39$\"\nboost = 5\n";
        let resumed = format!("{LONG_QUEUE}[scope]\nmax_pages = 3\n{boost}");
        assert_eq!(pages_crawled(&harness, &database, &site, &resumed).await, 1);
        let order = page_requests(&site);
        assert_eq!(
            order.last().map(String::as_str),
            Some(site.url(0, "/a39").as_str()),
            "{database}: the resumed run's one page, after {order:?}"
        );
    }
}

/// A crawl run again with a deeper `max_depth` goes deeper: the links the first run
/// stored and did not follow are followed now, at their pages' depth plus one, and
/// nothing fetched before is fetched again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_run_again_with_a_deeper_max_depth_fetches_what_the_first_left_out() {
    let harness = Harness::default();
    let (_server, databases) = both_backends(
        &harness,
        "a_crawl_run_again_with_a_deeper_max_depth (PostgreSQL half)",
        "deeper",
    )
    .await;
    for database in databases {
        let site = TestSite::one_host(&[
            ("/", "<a href='/a'>a</a>"),
            ("/a", "<a href='/b'>b</a>"),
            ("/b", "<a href='/c'>c</a><a href='/a'>back</a>"),
            ("/c", "<title>c</title>"),
        ])
        .await;
        assert_eq!(
            pages_crawled(&harness, &database, &site, "[scope]\nmax_depth = 1\n").await,
            2,
            "{database}: / and /a"
        );
        assert_eq!(
            pages_crawled(&harness, &database, &site, "[scope]\nmax_depth = 2\n").await,
            1,
            "{database}: /b"
        );
        assert_eq!(
            site.count(&site.url(0, "/c")),
            0,
            "{database}: /c is at depth 3"
        );
        assert_eq!(
            pages_crawled(&harness, &database, &site, "").await,
            1,
            "{database}: /c with no max_depth"
        );
        assert_no_url_requested_twice(&site);
    }
    let db = harness.db().await;
    assert_eq!(
        db.scalar(
            "SELECT count(*) FROM pages p JOIN frontier f ON f.id = p.id
             WHERE p.url LIKE '%/c' AND p.depth = 3 AND f.discovered_from =
                   (SELECT id FROM pages WHERE url LIKE '%/b')"
        )
        .await,
        1,
        "/c is stored at depth 3, found on /b"
    );
}

/// A crawl narrowed and then widened again (a resumed run, as here, or a reload) fetches
/// what the narrower scope left out: the URLs it had queued, and the links it found and
/// did not follow; a `rel="nofollow"` link stays unfollowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_widened_again_fetches_what_its_narrower_scope_left_out() {
    let (site, harness, seeds) = long_queue_stopped_at_two_pages().await;
    let narrower = "[scope]\nexclude = ['/a[1-3]$', '/b']\nmax_depth = 1\n";
    harness
        .crawl(&seeds, &format!("{LONG_QUEUE}{narrower}"))
        .await;
    for path in ["/a1", "/b0", "/b4", "/urgent"] {
        assert_eq!(site.count(&site.url(0, path)), 0, "{path} was fetched");
    }
    harness.crawl(&seeds, LONG_QUEUE).await;
    for path in ["/a1", "/a2", "/a3", "/b0", "/b4", "/b39", "/urgent"] {
        assert_eq!(site.count(&site.url(0, path)), 1, "{path} was not fetched");
    }
    assert_no_url_requested_twice(&site);
    let db = harness.db().await;
    assert_eq!(
        db.scalar("SELECT count(*) FROM pages").await,
        1 + 40 + 40 + 1
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM frontier WHERE state <> 'done'")
            .await,
        0
    );

    let site = TestSite::one_host(&[
        ("/", "<a href='/x'>x</a><a rel='nofollow' href='/n'>n</a>"),
        ("/x", "<title>x</title>"),
        ("/n", "<title>n</title>"),
    ])
    .await;
    let harness = Harness::default();
    let seeds = [site.url(0, "/")];
    harness.crawl(&seeds, "[scope]\nexclude = ['/x$']\n").await;
    harness.crawl(&seeds, "").await;
    assert_eq!(site.count(&site.url(0, "/x")), 1);
    assert_eq!(
        site.count(&site.url(0, "/n")),
        0,
        "a nofollow link was followed"
    );
}

/// Crawls, as `AcmeBot/2.0`, a home page linking to each of `pages` (a path, the page,
/// and the path of the one page it links to), which are served with their children.
async fn crawl_as_acmebot(pages: Vec<(&str, Resource, &str)>) -> (TestSite, Harness) {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    let home: String = pages
        .iter()
        .map(|(path, ..)| format!("<a href='{path}'>{path}</a>"))
        .collect();
    b.add(&h, "/", Resource::Html(home));
    for (path, page, child) in pages {
        b.add(&h, path, page);
        b.add(&h, child, Resource::Html("<title>child</title>".into()));
    }
    let site = b.start();
    let harness = Harness::default();
    harness
        .crawl(
            &[site.url(0, "/")],
            "[fetch]\nuser_agent = \"Mozilla/5.0 (compatible; AcmeBot/2.0; +https://acme.test/bot)\"\n",
        )
        .await;
    (site, harness)
}

/// An `X-Robots-Tag` line addressed to a crawler by name is for the crawler whose user
/// agent's product token it is: with `fetch.user_agent = "… AcmeBot/2.0 …"` that is
/// `acmebot:`, not `pipecrawl:`, which names another crawler now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_x_robots_tag_addressed_by_name_follows_the_configured_user_agent() {
    let tagged = |tag: &str, child: &str| {
        Resource::WithHeaders(
            vec![("X-Robots-Tag".into(), tag.into())],
            Box::new(Resource::Html(format!("<a href='{child}'>child</a>"))),
        )
    };
    let (site, _harness) = crawl_as_acmebot(vec![
        (
            "/ours",
            tagged("acmebot: nofollow", "/ours-child"),
            "/ours-child",
        ),
        (
            "/theirs",
            tagged("pipecrawl: nofollow", "/theirs-child"),
            "/theirs-child",
        ),
    ])
    .await;
    let fetched = |path: &str| site.count(&site.url(0, path));
    let counts = [fetched("/ours-child"), fetched("/theirs-child")];
    // Ours obeyed, another crawler's not.
    assert_eq!(counts, [0, 1], "requests of the two nofollow pages' links");
}

/// A robots `<meta>` may name one crawler instead of all (`<meta name="googlebot">`, as
/// Google documents it): one naming the user agent's product token binds this crawler as
/// `<meta name="robots">` does, and one naming another crawler does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_robots_meta_naming_the_crawler_is_obeyed() {
    let page = |name: &str, content: &str, child: &str| {
        Resource::Html(format!(
            "<meta name='{name}' content='{content}'><title>{child}</title>\
             <a href='{child}'>child</a>"
        ))
    };
    let (site, harness) = crawl_as_acmebot(vec![
        (
            "/ours",
            page("AcmeBot", "nofollow", "/ours-child"),
            "/ours-child",
        ),
        (
            "/theirs",
            page("googlebot", "nofollow", "/theirs-child"),
            "/theirs-child",
        ),
        (
            "/hidden",
            page(" acmebot ", "noindex", "/hidden-child"),
            "/hidden-child",
        ),
    ])
    .await;
    let fetched = |path: &str| site.count(&site.url(0, path));
    let counts = [
        fetched("/ours-child"),
        fetched("/theirs-child"),
        fetched("/hidden-child"),
    ];
    assert_eq!(counts, [0, 1, 1], "requests of the three pages' links");
    assert_eq!(
        robots_flags(&harness, &site, &["/ours", "/theirs", "/hidden"]).await,
        [1, 0, 10],
        "noindex * 10 + nofollow of the three pages"
    );
    let hidden = harness
        .db()
        .await
        .page(&site.url(0, "/hidden"))
        .await
        .expect("a row");
    assert_eq!(hidden.title, None, "a noindex page keeps no title");
}

/// Runs the binary with `args`, which must succeed; returns its stdout.
fn pipecrawl_succeeds(args: &[&std::ffi::OsStr]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pipecrawl"))
        .args(args)
        .output()
        .expect("run pipecrawl");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A crawl of a two-page site through the binary into `storage.database` =
/// `name` in a new harness's directory, checked by `pipecrawl query` asked of that name
/// and by the file itself: the harness and the file's path.
async fn crawl_two_pages_into(name: &str) -> (Harness, std::path::PathBuf) {
    let site = TestSite::one_host(&[("/", "<a href='/a'>a</a>"), ("/a", "<title>a</title>")]).await;
    let harness = Harness::default();
    let path = harness.dir.path().join(name);
    let text = harness.test_config_text(&[site.url(0, "/")], "").replace(
        &format!("{:?}", harness.db_path().display().to_string()),
        &format!("{:?}", path.display().to_string()),
    );
    let config = harness.write_config(&text);
    pipecrawl_succeeds(&["crawl".as_ref(), "--config".as_ref(), config.as_os_str()]);
    let answer = pipecrawl_succeeds(&[
        "query".as_ref(),
        "--db".as_ref(),
        path.as_os_str(),
        "sql".as_ref(),
        "SELECT count(*) AS n FROM pages".as_ref(),
    ]);
    assert!(answer.contains('2'), "{answer}");
    let db = super::Db::open(&path).await;
    assert_eq!(db.scalar("SELECT count(*) FROM pages").await, 2);
    (harness, path)
}

/// A file name is a file name: `%41` and `?` are characters of it, as `sqlite3` and the
/// shell take them, not a URL's escape and query (which crawled into `crawlA.db`, or
/// refused `crawl?.db` as a bad connection URL).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_path_with_percent_and_question_marks_is_the_file_it_names() {
    let (harness, _) = crawl_two_pages_into("results 100%41 #1?.db").await;
    let names: Vec<_> = std::fs::read_dir(harness.dir.path())
        .expect("list the directory")
        .map(|e| e.expect("an entry").file_name())
        .collect();
    assert!(
        !names
            .iter()
            .any(|n| n.to_string_lossy().starts_with("results 100A")),
        "{names:?}"
    );
}

/// `storage.database` in a directory not made yet (`results/2026-12/crawl.db` on a fresh
/// checkout) gets it made, as the file itself is created and `export --out` makes its
/// directory; SQLite alone said only "unable to open database file".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_in_a_missing_directory_is_created_with_it() {
    crawl_two_pages_into("results/2026-12/crawl.db").await;
}

/// The shell expands `~`, a TOML string does not: since a missing directory is made,
/// `database = "~/crawls/crawl.db"` would crawl into a directory named `~` where the
/// crawl runs (one `rm -r ~` away from the user's home). It is refused, naming the key.
#[test]
fn a_database_path_starting_with_a_tilde_is_refused_naming_the_key() {
    let text = "seeds = [\"http://127.0.0.1:1/\"]\n[storage]\ndatabase = \"~/crawls/crawl.db\"\n";
    let refused = pipecrawl::Config::from_toml(text, "crawl.toml")
        .err()
        .map(|e| e.to_string())
        .expect("a database in `~` was taken");
    assert!(
        refused.contains("line 3") && refused.contains("storage.database") && refused.contains('~'),
        "{refused}"
    );
}

/// A crawl resumed with a new `exclude` over more queued URLs than the window holds:
/// the page it fetches first finds a link while those URLs still fill the queue, so
/// on SQLite the link waits staged. The excluded rows are then leased and left out,
/// with no page committed after them; the link must still be fetched in this run, not
/// left queued by a crawl that says its frontier is empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_found_beside_a_queue_of_newly_excluded_urls_is_still_fetched() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    let old: String = (0..2000)
        .map(|i| format!("<a href='/old/{i}'>{i}</a>"))
        .collect();
    b.add(&h, "/", Resource::Html(format!("<a href='/a'>a</a>{old}")));
    b.add(&h, "/a", Resource::Html("<a href='/b'>b</a>".into()));
    b.add(&h, "/b", Resource::Html("<title>b</title>".into()));
    let site = b.start();
    let harness = Harness::default();
    let seeds = [site.url(0, "/")];
    harness
        .crawl(&seeds, &format!("{LONG_QUEUE}[scope]\nmax_pages = 1\n"))
        .await;
    let summary = harness
        .crawl(
            &seeds,
            &format!("{LONG_QUEUE}[scope]\nexclude = ['/old/']\n"),
        )
        .await;
    assert_eq!(summary.ended, EndReason::FrontierEmpty);
    assert_eq!(site.count(&site.url(0, "/b")), 1, "/b was not fetched");
    assert_eq!(summary.tally.pages, 2);
    assert_eq!(
        harness
            .db()
            .await
            .scalar("SELECT count(*) FROM frontier WHERE state = 'queued'")
            .await,
        0
    );
}

/// On SQLite a found URL waits staged unless it would be among the next window leased.
/// URLs waiting for a retry are not leased until they are due, so they must not count
/// among those: here four boosted URLs failed and wait, while `/s`, found on the first
/// of thirty due pages it outranks, must go ahead of most of those thirty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_found_url_outranking_the_due_queue_goes_ahead_of_it_while_retries_wait() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    let retried: String = (0..4).map(|i| format!("<a href='/r{i}'>r</a>")).collect();
    let due: String = (0..30).map(|i| format!("<a href='/d{i}'>d</a>")).collect();
    b.add(&h, "/", Resource::Html(format!("{retried}{due}")));
    for i in 0..4 {
        let fails_once = Resource::Sequence(vec![
            Resource::Status(500, "broken".into()),
            Resource::Html("<title>r</title>".into()),
        ]);
        b.add(&h, &format!("/r{i}"), fails_once);
    }
    b.add(&h, "/d0", Resource::Html("<a href='/s'>s</a>".into()));
    // Slow enough that `/d0` is parsed and stored, `/s` with it, while the next few are
    // fetched: answered at once, on a loaded machine the one fetch worker ran through
    // ten of them before the store wrote `/s` (seen 3 times in 26 runs beside builds).
    for i in 1..30 {
        let page = Resource::Html("<title>d</title>".into());
        b.add(
            &h,
            &format!("/d{i}"),
            Resource::Slow(Duration::from_millis(100), Box::new(page)),
        );
    }
    b.add(&h, "/s", Resource::Html("<title>s</title>".into()));
    let site = b.start();
    let harness = Harness::default();
    let priorities = "[[frontier.boost]]\npattern = '/r'\nboost = 10\n\
        [[frontier.boost]]\npattern = '/d'\nboost = -4\n";
    let retry = "[retry]\nmax_attempts = 2\nbase_delay_ms = 2000\nmax_delay_ms = 2000\n";
    harness
        .crawl(
            &[site.url(0, "/")],
            &format!("{LONG_QUEUE}{priorities}{retry}"),
        )
        .await;
    let order = page_requests(&site);
    let at = |path: &str| {
        order
            .iter()
            .position(|u| u.ends_with(path))
            .unwrap_or_else(|| panic!("{path} was not requested: {order:?}"))
    };
    // What the window held when `/d0` was stored, then `/s`; not the thirty `/d`s.
    assert!(
        at("/s") <= at("/d0") + 6,
        "/s was request {} of {}, /d0 {}: {order:?}",
        at("/s"),
        order.len(),
        at("/d0")
    );
}

/// A site built of frames: the home page is a frameset and nothing else, and its content
/// and navigation are the frames' documents. They are crawled as linked pages, with link
/// rows `rel = 'frame'` (an iframe's too); before, the home page was stored with no links
/// and the crawl ended there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_built_of_frames_is_crawled_through_them() {
    let site = TestSite::one_host(&[
        (
            "/",
            "<html><head><title>Home</title></head><frameset cols='20%,*'>\
             <frame src='/menu' title='Menu'><frame src='/main'></frameset></html>",
        ),
        ("/menu", "<title>Menu</title><a href='/about'>About us</a>"),
        ("/main", "<title>Main</title><iframe src='/map'></iframe>"),
        ("/about", "<title>About</title>"),
        ("/map", "<title>Map</title>"),
    ])
    .await;

    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;
    let db = harness.db().await;
    for (path, title) in [
        ("/menu", "Menu"),
        ("/main", "Main"),
        ("/about", "About"),
        ("/map", "Map"),
    ] {
        let row = db.page(&site.url(0, path)).await.expect("a row");
        assert_eq!(row.title.as_deref(), Some(title), "{path}");
    }
    assert_eq!(
        db.scalar(
            "SELECT count(*) FROM links WHERE rel = 'frame' \
             AND ((target_url LIKE '%/menu' AND anchor_text = 'Menu') \
                  OR (target_url LIKE '%/main' AND anchor_text = '') \
                  OR target_url LIKE '%/map')"
        )
        .await,
        3
    );
}

/// A rule is written as people read URLs: `/wiki/Café`, `/über-uns`, as a browser's
/// address bar shows them. Stored URLs spell those characters as UTF-8 escapes
/// (`/wiki/Caf%C3%A9`); matched only against that spelling, an `include` of the page
/// crawled nothing and an `exclude` kept nothing out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn include_and_exclude_rules_match_urls_with_non_ascii_characters_as_written() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(
        &h,
        "/",
        Resource::Html(
            "<a href='/wiki/Café'>café</a><a href='/wiki/Bär?q=grün'>bear</a>\
             <a href='/wiki/Über'>about</a><a href='/wiki/Plain'>plain</a>"
                .into(),
        ),
    );
    for (path, title) in [
        ("/wiki/Caf%C3%A9", "Café"),
        ("/wiki/B%C3%A4r?q=gr%C3%BCn", "Bear"),
        ("/wiki/%C3%9Cber", "About"),
        ("/wiki/Plain", "Plain"),
    ] {
        b.add(&h, path, Resource::Html(format!("<title>{title}</title>")));
    }
    let site = b.start();
    let harness = Harness::default();
    let rules = "[scope]\ninclude = ['/wiki/Café$', 'Bär\\?q=grün', '/wiki/(Über|Plain)']\n\
                 exclude = ['/Über']\n";
    harness.crawl(&[site.url(0, "/")], rules).await;
    let db = harness.db().await;
    let titles: BTreeSet<String> = db
        .pages()
        .await
        .into_iter()
        .filter_map(|p| p.title)
        .collect();
    assert_eq!(
        titles,
        BTreeSet::from(["Café".to_owned(), "Bear".to_owned(), "Plain".to_owned()])
    );
    assert_eq!(site.count(&site.url(0, "/wiki/%C3%9Cber")), 0);
}

/// A rule may write an escape as a page or a tool wrote it: in lower case (`caf%c3%a9`,
/// as .NET's `HttpUtility.UrlEncode` spells it), or of a character that needs none
/// (`%7e` for `~`). Stored URLs spell those `caf%C3%A9` and `~`, so such a rule matched
/// no URL: the excluded pages were crawled, and an `include` crawled nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_match_urls_whatever_the_case_of_their_escapes() {
    const PATHS: [&str; 4] = [
        "/wiki/caf%C3%A9",
        "/~anna/",
        "/shop/gr%C3%BCn",
        "/shop/plain",
    ];
    let home = "<a href='/wiki/caf%c3%a9'>café</a><a href='/~anna/'>anna</a>\
                <a href='/shop/gr%C3%BCn'>green</a><a href='/shop/plain'>plain</a>";
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    for (path, html) in std::iter::once(("/", home.to_owned()))
        .chain(PATHS.map(|path| (path, format!("<title>{path}</title>"))))
    {
        b.add(&h, path, Resource::Html(html));
    }
    let site = b.start();
    let rules = "[scope]\ninclude = ['/wiki/', '/%7eanna/', '/shop/gr%c3%bcn$']\n\
                 exclude = ['/wiki/caf%c3%a9$']\n";
    Harness::default().crawl(&[site.url(0, "/")], rules).await;
    let fetched: BTreeSet<&str> = PATHS
        .into_iter()
        .filter(|path| site.count(&site.url(0, path)) > 0)
        .collect();
    assert_eq!(fetched, BTreeSet::from(["/~anna/", "/shop/gr%C3%BCn"]));
}

/// A site on the user's machine whose parts are subdomains (`docs.localhost:3000`, as
/// web frameworks' dev servers name them), crawled with `scope.hosts = ["*.localhost"]`:
/// names under `localhost` are loopback (RFC 6761), which browsers and curl answer
/// without asking DNS. The crawler asked the system resolver, which has no such names
/// without systemd-resolved, and every subdomain's page was a `dns` error row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subdomains_of_localhost_are_crawled_as_browsers_reach_them() {
    let mut builder = SiteBuilder::bind(1).await;
    let authority = builder.authority(0);
    let port = authority
        .rsplit_once(':')
        .map(|(_, p)| p.to_owned())
        .unwrap_or_default();
    let docs = format!("http://docs.localhost:{port}/docs");
    let blog = format!("http://blog.app.localhost:{port}/blog");
    let elsewhere = format!("http://127.0.0.1:{port}/elsewhere");
    for (path, html) in [
        (
            "/",
            format!("<title>Home</title><a href='{docs}'>Docs</a><a href='{elsewhere}'>IP</a>"),
        ),
        (
            "/docs",
            format!("<title>Docs</title><a href='{blog}'>Blog</a>"),
        ),
        ("/blog", "<title>Blog</title>".to_owned()),
        ("/elsewhere", "<title>IP</title>".to_owned()),
    ] {
        builder.add(&authority, path, Resource::Html(html));
    }
    let site = builder.start();
    let harness = Harness::default();
    harness
        .crawl(
            &[format!("http://localhost:{port}/")],
            "[scope]\nhosts = [\"*.localhost\"]\n[network]\nallow = [\"127.0.0.0/8\"]\n",
        )
        .await;
    let db = harness.db().await;
    let crawled: Vec<(String, Option<i64>, Option<String>)> = db
        .pages()
        .await
        .into_iter()
        .map(|p| (p.url, p.status, p.error_kind))
        .collect();
    assert_eq!(
        crawled,
        vec![
            (blog, Some(200), None),
            (docs, Some(200), None),
            (format!("http://localhost:{port}/"), Some(200), None),
        ]
    );
    assert_eq!(site.count(&site.url(0, "/elsewhere")), 0, "out of scope");
}

/// README: a trapped URL's row names the key that cut it, "raise that key to crawl such
/// URLs". A run on the same database with the key raised fetches it; one with the key
/// as before leaves it a trap row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_trapped_by_its_shape_is_crawled_once_its_key_is_raised() {
    let site = TestSite::one_host(&[
        (
            "/",
            "<a href='/a/b/c/d'>deep</a><a href='/e?p=1&q=2&r=3'>many</a>",
        ),
        ("/a/b/c/d", "<title>deep</title>"),
        ("/e", "<title>many</title>"),
    ])
    .await;
    let harness = Harness::default();
    let seeds = [site.url(0, "/")];
    let low = "[traps]\nmax_path_depth = 3\nmax_query_params = 2\n";
    harness.crawl(&seeds, low).await;
    let db = harness.db().await;
    // A trap row queued again and cut again is stored anew, at another time.
    let trap_rows = || {
        sqlx::query_scalar::<_, String>(
            "SELECT group_concat(id || ' ' || fetched_at, ', ') FROM pages
             WHERE error_kind = 'trap'",
        )
        .fetch_one(&db.pool)
    };
    let first = trap_rows().await.expect("the trap rows");
    harness.crawl(&seeds, low).await;
    let second = trap_rows().await.expect("the trap rows");
    assert_eq!(second, first, "a run with the limits as before");
    assert_eq!(site.count(&site.url(0, "/a/b/c/d")), 0);
    let traps = "SELECT count(*) FROM pages WHERE error_kind = 'trap'";
    assert_eq!(db.scalar(traps).await, 2);

    harness.crawl(&seeds, "").await;
    assert_eq!(site.count(&site.url(0, "/a/b/c/d")), 1, "the deep URL");
    assert_eq!(
        site.count(&site.url(0, "/e?p=1&q=2&r=3")),
        1,
        "the long query"
    );
    assert_eq!(db.scalar(traps).await, 0);
    assert_eq!(
        db.scalar("SELECT count(*) FROM frontier WHERE state <> 'done'")
            .await,
        0
    );
}
