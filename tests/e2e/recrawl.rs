//! Revisits: a page that changed is seen changed; one that did not answers 304 to a
//! conditional GET and is neither re-parsed nor rewritten.

use std::time::{Duration, Instant};

use pipecrawl::{Config, Summary};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::SqlitePool;

use super::site::{Resource, SiteBuilder, TestSite};
use super::Harness;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_page_is_seen_changed_and_an_unchanged_one_answers_304() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(
        &h,
        "/",
        Resource::Html("<title>Home</title><a href='/news'>n</a><a href='/about'>a</a>".into()),
    );
    b.add(
        &h,
        "/news",
        Resource::Sequence(vec![
            Resource::Html(
                "<title>Old news</title><a href='/old'>old</a><a href='/about'>about us</a>".into(),
            ),
            Resource::Html(
                "<title>Fresh news</title><a href='/fresh'>fresh</a><a href='/about'>a</a>".into(),
            ),
        ]),
    );
    b.add(
        &h,
        "/about",
        Resource::Validated(
            "\"v1\"".into(),
            Box::new(Resource::Html(
                "<title>About</title><a href='/team'>team</a>".into(),
            )),
        ),
    );
    for p in ["/old", "/fresh", "/team"] {
        b.add(&h, p, Resource::Html("<title>Leaf</title>".into()));
    }
    let site = b.start();
    let harness = Harness::default();
    // The first pass stores everything; a second pass a second later revisits.
    let config = "[recrawl]\ninterval_s = 1\n[[recrawl.rule]]\npattern = '/(old|fresh|team)$'\ninterval_s = 0\n";
    harness.crawl(&[site.url(0, "/")], config).await;
    let db = harness.db().await;
    let first_news = db.page(&site.url(0, "/news")).await.expect("news stored");
    assert_eq!(first_news.title.as_deref(), Some("Old news"));

    let deadline = Instant::now() + Duration::from_secs(10);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let summary = harness.crawl(&[site.url(0, "/")], config).await;
    assert!(Instant::now() < deadline);
    assert_eq!(
        summary.tally.pages, 4,
        "home, news and about were due again; /fresh is new"
    );
    let said = summary.to_string();
    assert!(
        said.contains(
            "\nrevisits: 3 (of the pages crawled, those stored before): 1 changed, 2 unchanged\n"
        ),
        "a night's summary says what its revisits found, the 304 among the unchanged: {said}"
    );
    assert!(said.starts_with("crawled 4 pages (3 2xx, 1 3xx)"), "{said}");

    let news = db.page(&site.url(0, "/news")).await.expect("news stored");
    assert_eq!(news.title.as_deref(), Some("Fresh news"));
    let changed: i64 = db
        .scalar("SELECT count(*) FROM pages WHERE url LIKE '%/news' AND changed_at = fetched_at")
        .await;
    assert_eq!(changed, 1, "the news page records when it changed");
    let news_links: i64 = db
        .scalar("SELECT count(*) FROM links l JOIN pages p ON p.id = l.source_id WHERE p.url LIKE '%/news'")
        .await;
    assert_eq!(
        news_links, 2,
        "a revisited page's links are what it links to now"
    );
    let stale_counts = db.wrong_link_counts().await;
    assert_eq!(
        stale_counts, 0,
        "in-link and anchor counts follow the links a revisit replaced"
    );
    assert_eq!(
        db.page(&site.url(0, "/fresh")).await.and_then(|p| p.status),
        Some(200)
    );

    assert_eq!(site.count(&site.url(0, "/about")), 2);
    let about = db.page(&site.url(0, "/about")).await.expect("about stored");
    assert_eq!(
        (about.status, about.title.as_deref()),
        (Some(200), Some("About")),
        "a 304 keeps the page"
    );
    let unchanged: i64 = db
        .scalar("SELECT count(*) FROM pages WHERE url LIKE '%/about' AND changed_at < fetched_at")
        .await;
    assert_eq!(unchanged, 1, "a 304 moves fetched_at, not changed_at");
    let about_links: i64 = db
        .scalar("SELECT count(*) FROM links l JOIN pages p ON p.id = l.source_id WHERE p.url LIKE '%/about'")
        .await;
    assert_eq!(about_links, 1, "an unchanged page's links stay");
    assert_eq!(
        site.count(&site.url(0, "/team")),
        1,
        "leaves with interval 0 are not revisited"
    );
}

/// A one-off crawl with much ahead builds the links' indexes at its end, but a revisit
/// deletes its page's old links by `links_source`: a crawl with revisits due keeps that
/// index, and first builds it if a killed crawl left it out, or every revisit would read
/// every link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_with_revisits_due_keeps_the_index_that_finds_old_links() {
    const PAGES: usize = 20;
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add_home_and_pages(&h, PAGES);
    // Slow enough that the second crawl can be looked at while it runs.
    b.delay_host(&h, Duration::from_millis(50));
    let site = b.start();
    let harness = Harness::default();
    let config =
        "[recrawl]\ninterval_s = 1\n[politeness]\ndelay_ms = 0\nper_host_concurrency = 1\n";
    harness.crawl(&[site.url(0, "/")], config).await;
    let first_links = harness.db().await.links().await.len();
    assert_eq!(first_links, 2 * PAGES);

    // What a crawl killed before its end leaves: the deferred indexes missing.
    let writer = SqlitePool::connect_with(SqliteConnectOptions::new().filename(harness.db_path()))
        .await
        .expect("open the crawl database");
    for index in ["links_source", "links_target"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP INDEX {index}")))
            .execute(&writer)
            .await
            .expect("drop an index");
    }
    writer.close().await;

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let requested = site.hits().len();
    let config = Config::from_toml(
        &harness.test_config_text(&[site.url(0, "/")], config),
        "test config",
    )
    .expect("a valid config");
    let db = harness.db().await;
    let index = |name: &str| format!("SELECT count(*) FROM sqlite_master WHERE name = '{name}'");
    // The indexes as they are once the revisits have begun.
    let during = async {
        let deadline = Instant::now() + Duration::from_secs(30);
        while site.hits().len() < requested + 3 {
            assert!(Instant::now() < deadline, "the revisits did not start");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        (
            db.scalar(&index("links_source")).await,
            db.scalar(&index("links_target")).await,
        )
    };
    let (summary, (source, target)) =
        tokio::join!(pipecrawl::crawl(config, std::future::pending()), during);
    assert_eq!(
        source, 1,
        "revisiting without the index that finds a page's old links"
    );
    assert_eq!(
        target, 0,
        "the target index is still left to the crawl's end"
    );
    let summary = summary.expect("the crawl succeeds");
    assert_eq!(
        summary.tally.pages,
        1 + PAGES as u64,
        "every page revisited"
    );
    assert_eq!(db.scalar(&index("links_target")).await, 1);
    assert_eq!(
        db.links().await.len(),
        first_links,
        "links replaced, not added"
    );
    assert_eq!(db.wrong_link_counts().await, 0);
}

/// A database crawled before any `[recrawl]` was configured holds pages with no revisit
/// scheduled: a crawl that starts with one schedules them from when they were fetched,
/// so pages already older than the interval are revisited at once, and a rule's
/// "never" still holds. On both backends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_crawled_before_recrawl_was_configured_are_revisited() {
    let harness = Harness::default();
    let (_server, databases) = both_backends(
        &harness,
        "pages_crawled_before_recrawl_was_configured_are_revisited (PostgreSQL half)",
        "before_recrawl",
    )
    .await;
    for database in databases {
        let site = home_a_b().await;
        let crawl = |extra: &str| {
            let config = config_on(&harness, &database, &site.url(0, "/"), extra);
            pipecrawl::crawl(config, std::future::pending())
        };
        let first = crawl("").await.expect("the first crawl succeeds");
        assert_eq!(first.tally.pages, 3, "{database}");

        tokio::time::sleep(Duration::from_millis(1100)).await;
        let config =
            "[recrawl]\ninterval_s = 1\n[[recrawl.rule]]\npattern = '/b$'\ninterval_s = 0\n";
        let second = crawl(config).await.expect("the second crawl succeeds");
        assert_eq!(
            second.tally.pages, 2,
            "{database}: home and /a were fetched over a second ago, /b is never revisited"
        );
        assert_eq!(site.count(&site.url(0, "/a")), 2, "{database}");
        assert_eq!(site.count(&site.url(0, "/b")), 1, "{database}");
    }
}

/// `scope.max_pages` bounds the pages a database holds; a revisit adds none, so a
/// database at its limit still has its pages revisited when they come due.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_at_its_page_limit_still_revisits_its_pages() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    let links: String = (0..6).map(|i| format!("<a href='/{i}'>{i}</a>")).collect();
    b.add(
        &h,
        "/",
        Resource::Html(format!("<title>Home</title>{links}")),
    );
    b.add_prefix(&h, "/", Resource::Html("<title>Leaf</title>".into()));
    let site = b.start();
    let harness = Harness::default();
    let config = "[scope]\nmax_pages = 3\n[recrawl]\ninterval_s = 1\n";
    harness.crawl(&[site.url(0, "/")], config).await;
    assert_eq!(harness.page_count().await, 3);

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let summary = harness.crawl(&[site.url(0, "/")], config).await;
    assert_eq!(
        site.count(&site.url(0, "/")),
        2,
        "the home page was revisited: {summary}"
    );
    assert_eq!(summary.tally.pages, 3, "the three pages were due again");
    assert_eq!(harness.page_count().await, 3, "and no new page was stored");
    assert_eq!(
        site.hits().len(),
        7,
        "robots.txt, three pages, three revisits"
    );
}

/// `recrawl.interval_s = 0` means never, and so does a rule's: a crawl whose config no
/// longer revisits pages (or no longer revisits some) does not fetch them again because
/// an earlier config scheduled it; with revisits configured again, they are scheduled
/// anew from when the pages were fetched. On both backends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revisits_turned_off_in_the_config_are_not_made() {
    let harness = Harness::default();
    let (_server, databases) = both_backends(
        &harness,
        "revisits_turned_off_in_the_config_are_not_made (PostgreSQL half)",
        "revisits_off",
    )
    .await;
    for database in databases {
        let site = home_a_b().await;
        let crawl = |extra: &str| {
            let config = config_on(&harness, &database, &site.url(0, "/"), extra);
            async move {
                let summary = pipecrawl::crawl(config, std::future::pending()).await;
                summary.expect("the crawl succeeds").tally.pages
            }
        };
        let every_second = "[recrawl]\ninterval_s = 1\n";
        assert_eq!(crawl(every_second).await, 3, "{database}");
        tokio::time::sleep(Duration::from_millis(1100)).await;

        let never_b =
            "[recrawl]\ninterval_s = 1\n[[recrawl.rule]]\npattern = '/b$'\ninterval_s = 0\n";
        assert_eq!(
            crawl(never_b).await,
            2,
            "{database}: home and /a were due; /b never is"
        );
        assert_eq!(site.count(&site.url(0, "/b")), 1, "{database}");

        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(crawl("").await, 0, "{database}: no revisit is configured");
        assert_eq!(site.count(&site.url(0, "/")), 2, "{database}");

        assert_eq!(
            crawl(every_second).await,
            3,
            "{database}: revisits configured again are made"
        );
    }
}

/// The databases a test crawls into, as a config quotes them: the harness's SQLite file,
/// and a PostgreSQL database `name` when the server's binaries are here (it runs as long
/// as the handle returned lives).
pub(super) async fn both_backends(
    harness: &Harness,
    test: &str,
    name: &str,
) -> (Option<super::postgres::TestPostgres>, Vec<String>) {
    let server = super::postgres::TestPostgres::start(test);
    let mut databases = vec![format!("{:?}", harness.db_path().display().to_string())];
    if let Some(server) = &server {
        databases.push(format!("{:?}", server.database(name).await));
    }
    (server, databases)
}

/// The harness's config for a crawl from `seed` into `database` (one of [`both_backends`]).
pub(super) fn config_on(harness: &Harness, database: &str, seed: &str, extra: &str) -> Config {
    let sqlite = format!("{:?}", harness.db_path().display().to_string());
    let text = harness
        .test_config_text(&[seed.to_owned()], extra)
        .replace(&sqlite, database);
    Config::from_toml(&text, "test config").expect("a valid config")
}

/// A home page linking to `/a` and `/b`.
pub(super) async fn home_a_b() -> super::site::TestSite {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(
        &h,
        "/",
        Resource::Html("<title>Home</title><a href='/a'>a</a><a href='/b'>b</a>".into()),
    );
    b.add(&h, "/a", Resource::Html("<title>A</title>".into()));
    b.add(&h, "/b", Resource::Html("<title>B</title>".into()));
    b.start()
}

/// "A URL matching any `exclude` is never crawled": a page stored before its URL was
/// excluded is not revisited either (a user who finds the crawl in `/private/` and
/// excludes it wants no more requests there); its row stays as the last visit left it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_excluded_since_it_was_stored_is_not_revisited() {
    let site = home_a_b().await;
    let harness = Harness::default();
    let every_second = "[recrawl]\ninterval_s = 1\n";
    harness.crawl(&[site.url(0, "/")], every_second).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let excluded = format!("{every_second}[scope]\nexclude = ['/b$']\n");
    let summary = harness.crawl(&[site.url(0, "/")], &excluded).await;
    assert_eq!(summary.tally.pages, 2, "home and /a revisited: {summary}");
    assert_eq!(site.count(&site.url(0, "/b")), 1, "/b is excluded now");
    let db = harness.db().await;
    let b = db.page(&site.url(0, "/b")).await.expect("/b stays stored");
    assert_eq!((b.status, b.title.as_deref()), (Some(200), Some("B")));
}

/// `final_url` says where a redirect chain ends, and the chain can change at a revisit of
/// any hop: a hop that stops redirecting ends the chains through it, and one that
/// redirects elsewhere leads them there. The redirects before it, not revisited, follow.
/// On both backends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_before_a_revisited_hop_end_where_it_now_leads() {
    let harness = Harness::default();
    let (_server, databases) = both_backends(
        &harness,
        "redirects_before_a_revisited_hop_end_where_it_now_leads (PostgreSQL half)",
        "revisited_hop",
    )
    .await;
    for database in databases {
        let site = changing_chains().await;
        let config =
            "[recrawl]\ninterval_s = 1\n[[recrawl.rule]]\npattern = '/[xytu]$'\ninterval_s = 0\n";
        let crawl = || {
            let config = config_on(&harness, &database, &site.url(0, "/"), config);
            pipecrawl::crawl(config, std::future::pending())
        };
        crawl().await.expect("the first crawl succeeds");
        tokio::time::sleep(Duration::from_millis(1100)).await;
        crawl().await.expect("the second crawl succeeds");

        for (redirect, end) in [("/x", "/r"), ("/y", "/u"), ("/s", "/u"), ("/r", "/r")] {
            let final_url = final_url(&database, &site.url(0, redirect)).await;
            assert_eq!(
                final_url,
                Some(site.url(0, end)),
                "{database}: {redirect} now ends at {end}"
            );
        }
        assert_eq!(site.count(&site.url(0, "/x")), 1, "/x is not revisited");
    }
}

/// `/x` → `/r` → `/t` and `/y` → `/s` → `/t`, where `/r` is a page at its second visit
/// and `/s` redirects to `/u`.
async fn changing_chains() -> super::site::TestSite {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(
        &h,
        "/",
        Resource::Html("<title>Home</title><a href='/x'>x</a><a href='/y'>y</a>".into()),
    );
    b.add(&h, "/x", Resource::Redirect(301, "/r".into()));
    b.add(&h, "/y", Resource::Redirect(301, "/s".into()));
    let to_t = || Resource::Redirect(301, "/t".into());
    let page_r = Resource::Html("<title>R</title>".into());
    b.add(&h, "/r", Resource::Sequence(vec![to_t(), page_r]));
    let to_u = Resource::Redirect(301, "/u".into());
    b.add(&h, "/s", Resource::Sequence(vec![to_t(), to_u]));
    for p in ["/t", "/u"] {
        b.add(&h, p, Resource::Html("<title>End</title>".into()));
    }
    b.start()
}

/// `final_url` of the page at `url` in `database` (one of [`both_backends`]).
async fn final_url(database: &str, url: &str) -> Option<String> {
    let (final_url,): (Option<String>,) =
        one_row(database, "SELECT final_url FROM pages WHERE url = $1", url).await;
    final_url
}

/// The one row `sql` finds for `url` (its `$1`) in `database` (one of [`both_backends`]).
async fn one_row<T>(database: &str, sql: &'static str, url: &str) -> T
where
    T: Send
        + Unpin
        + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
        + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>,
{
    rows(database, sql, Some(url))
        .await
        .into_iter()
        .next()
        .expect("a page row")
}

/// Every row `sql` finds in `database` (one of [`both_backends`]), read-only, with `url`
/// as its `$1` when given.
pub(super) async fn rows<T>(database: &str, sql: &'static str, url: Option<&str>) -> Vec<T>
where
    T: Send
        + Unpin
        + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
        + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>,
{
    // The same on both pools, whose types differ.
    macro_rules! fetch_all {
        ($pool:expr) => {{
            let pool = $pool;
            let query = sqlx::query_as(sql);
            let rows = match url {
                Some(url) => query.bind(url),
                None => query,
            }
            .fetch_all(&pool)
            .await;
            pool.close().await;
            rows
        }};
    }
    let database = database.trim_matches('"');
    if database.starts_with("postgres") {
        fetch_all!(sqlx::PgPool::connect(database)
            .await
            .expect("open PostgreSQL"))
    } else {
        let options = SqliteConnectOptions::new()
            .filename(database)
            .read_only(true);
        fetch_all!(SqlitePool::connect_with(options)
            .await
            .expect("open SQLite"))
    }
    .expect("rows")
}

/// A crawl run with a shorter `[recrawl]` interval than the last revisits by it: pages
/// scheduled an hour out by the last config are due a second after their fetch now, as
/// README says ("due again that long after it was fetched"), not once the hour is out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shorter_recrawl_interval_holds_for_revisits_scheduled_before() {
    let site = home_a_b().await;
    let harness = Harness::default();
    let hourly = harness
        .crawl(&[site.url(0, "/")], "[recrawl]\ninterval_s = 3600\n")
        .await;
    assert_eq!(hourly.tally.pages, 3);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let summary = harness
        .crawl(&[site.url(0, "/")], "[recrawl]\ninterval_s = 1\n")
        .await;
    assert_eq!(
        summary.tally.pages, 3,
        "each page is a second old: {summary}"
    );
    assert_eq!(site.count(&site.url(0, "/b")), 2);
}

/// A revisit that fails for now — a 503, a timeout — of a page stored with an answer
/// leaves the page as stored (a site down for an hour must not wipe its titles and links
/// from the results) and records the failure beside it; the next revisit answered replaces
/// the page and clears the failure. A 404 is an answer, and replaces the page. On both
/// backends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revisit_that_fails_for_now_keeps_the_page_as_stored() {
    let harness = Harness::default();
    let (_server, databases) = both_backends(
        &harness,
        "a_revisit_that_fails_for_now_keeps_the_page_as_stored (PostgreSQL half)",
        "failed_revisit",
    )
    .await;
    for database in databases {
        let site = failing_for_a_visit().await;
        let crawl = || revisit_each_second(&harness, &database, &site);
        crawl().await;
        let failing = crawl().await;
        // Kept as stored, they are not among the pages `--retry-failed` asks again.
        assert_eq!(
            (failing.tally.revisits_failed, failing.tally.failed_for_now),
            (2, 0),
            "{database}: {failing}"
        );
        for (path, status, kind) in [("/a", Some(503), None), ("/b", None, Some("timeout"))] {
            let title = format!("first {path}");
            let (stored, failure) = page_state(&database, &site.url(0, path)).await;
            assert_eq!(
                stored,
                (Some(200), Some(title), 1),
                "{database}: {path} stays as its first visit stored it"
            );
            assert_eq!(
                (failure.0, failure.1.as_deref(), failure.2.is_some()),
                (status, kind, true),
                "{database}: {path}'s failed revisit is recorded"
            );
        }
        let (gone, failure) = page_state(&database, &site.url(0, "/gone")).await;
        assert_eq!(gone, (Some(404), None, 0), "{database}: a 404 is an answer");
        assert_eq!(failure, (None, None, None));

        crawl().await;
        for path in ["/a", "/b"] {
            let (stored, failure) = page_state(&database, &site.url(0, path)).await;
            assert_eq!(
                (stored, failure),
                (
                    (Some(200), Some(format!("third {path}")), 0),
                    (None, None, None)
                ),
                "{database}: {path} answered again"
            );
        }
    }
}

/// Crawls `site` into `database` (one of [`both_backends`]) with every page due a second
/// after, and requests answered within 400 ms, then waits out the second.
async fn revisit_each_second(harness: &Harness, database: &str, site: &TestSite) -> Summary {
    let config = "[recrawl]\ninterval_s = 1\n[fetch]\ntimeout_ms = 400\n";
    let config = config_on(harness, database, &site.url(0, "/"), config);
    let summary = pipecrawl::crawl(config, std::future::pending())
        .await
        .expect("the crawl succeeds");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    summary
}

/// `/a`, `/b` and `/gone` each link to `/leaf` at their first visit; at the second `/a`
/// answers 503, `/b` too late and `/gone` 404; at the third `/a` and `/b` answer again.
async fn failing_for_a_visit() -> super::site::TestSite {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(
        &h,
        "/",
        Resource::Html("<a href='/a'>a</a><a href='/b'>b</a><a href='/gone'>g</a>".into()),
    );
    let page = |title: &str| Resource::Html(format!("<title>{title}</title><a href='/leaf'>l</a>"));
    let third = |path: &str| Resource::Html(format!("<title>third {path}</title>"));
    let down = Resource::Status(503, "down".into());
    b.add(
        &h,
        "/a",
        Resource::Sequence(vec![page("first /a"), down, third("/a")]),
    );
    let late = Resource::Slow(Duration::from_secs(2), Box::new(page("late")));
    b.add(
        &h,
        "/b",
        Resource::Sequence(vec![page("first /b"), late, third("/b")]),
    );
    let gone = Resource::Status(404, "gone".into());
    b.add(&h, "/gone", Resource::Sequence(vec![page("first"), gone]));
    b.add(&h, "/leaf", Resource::Html("<title>Leaf</title>".into()));
    b.start()
}

/// The page at `url` in `database`: its status, title and links counted, then its last
/// failed revisit's status, error kind and time.
async fn page_state(
    database: &str,
    url: &str,
) -> (
    (Option<i64>, Option<String>, i64),
    (Option<i64>, Option<String>, Option<String>),
) {
    let (status, title, links, revisit_status, revisit_kind, revisit_at) = one_row(
        database,
        "SELECT status, title, (SELECT count(*) FROM links WHERE source_id = pages.id),
                revisit_status, revisit_error_kind, revisit_failed_at
         FROM pages WHERE url = $1",
        url,
    )
    .await;
    (
        (status, title, links),
        (revisit_status, revisit_kind, revisit_at),
    )
}

/// `--retry-failed` (`retry.earlier_failures` to the library) on both backends: a page
/// that answered 503 once its retries ran out is asked again, and one that answered 404
/// is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_from_earlier_runs_are_asked_again_when_told() {
    let harness = Harness::default();
    let (_server, databases) = both_backends(
        &harness,
        "failures_from_earlier_runs_are_asked_again_when_told (PostgreSQL half)",
        "earlier_failures",
    )
    .await;
    for database in databases {
        let site = down_once_and_gone().await;
        let config = || config_on(&harness, &database, &site.url(0, "/"), "");
        pipecrawl::crawl(config(), std::future::pending())
            .await
            .expect("the first crawl succeeds");
        let mut again = config();
        again.retry.earlier_failures = true;
        let summary = pipecrawl::crawl(again, std::future::pending())
            .await
            .expect("the second crawl succeeds");
        assert_eq!(summary.tally.pages, 1, "{database}: /a only: {summary}");
        let (status, title): (Option<i64>, Option<String>) = one_row(
            &database,
            "SELECT status, title FROM pages WHERE url = $1",
            &site.url(0, "/a"),
        )
        .await;
        assert_eq!((status, title.as_deref()), (Some(200), Some("Back")));
        assert_eq!(
            site.count(&site.url(0, "/b")),
            1,
            "{database}: a 404 is an answer"
        );
    }
}

/// A site on one host whose home page links to `/a` and `/b`, and the host's authority.
async fn home_linking_a_and_b() -> (SiteBuilder, String) {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(
        &h,
        "/",
        Resource::Html("<a href='/a'>a</a><a href='/b'>b</a>".into()),
    );
    (b, h)
}

/// A home page linking to `/a`, which answers 503 and then "Back", and `/b`, gone (404).
async fn down_once_and_gone() -> super::site::TestSite {
    let (mut b, h) = home_linking_a_and_b().await;
    let down = Resource::Status(503, "down".into());
    let back = Resource::Html("<title>Back</title>".into());
    b.add(&h, "/a", Resource::Sequence(vec![down, back]));
    b.add(&h, "/b", Resource::Status(404, "gone".into()));
    b.start()
}

/// `--retry-failed` on a database at its `scope.max_pages`: a URL asked again has its page
/// already, and replaces it as a revisit does, so the limit does not hold it back. (A
/// node sharing a PostgreSQL database ends at the limit, revisits and all.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_asked_again_in_a_database_at_its_page_limit() {
    let site = down_once_and_gone().await;
    let harness = Harness::default();
    let limit = "[scope]\nmax_pages = 3\n";
    harness.crawl(&[site.url(0, "/")], limit).await;
    assert_eq!(harness.page_count().await, 3);

    let text = harness.test_config_text(&[site.url(0, "/")], limit);
    let mut again = Config::from_toml(&text, "test config").expect("a valid config");
    again.retry.earlier_failures = true;
    let summary = pipecrawl::crawl(again, std::future::pending())
        .await
        .expect("the second crawl succeeds");
    assert_eq!(summary.tally.pages, 1, "/a again: {summary}");
    let a = harness.db().await.page(&site.url(0, "/a")).await;
    let a = a.expect("/a's page");
    assert_eq!((a.status, a.title.as_deref()), (Some(200), Some("Back")));
    assert_eq!(harness.page_count().await, 3, "and no new page was stored");
}

/// `recrawl.adaptive` halves the interval of a page that changed; a revisit that failed
/// for now keeps it (README), a 429 or a 408 as much as a 503: a site that asks the
/// crawler to slow down must not be asked twice as often.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adaptive_interval_is_kept_by_a_revisit_answered_429() {
    let (mut b, h) = home_linking_a_and_b().await;
    let page = || Resource::Html("<title>Page</title>".into());
    for (path, status) in [("/a", 429), ("/b", 503)] {
        let failing = Resource::Status(status, "later".into());
        b.add(&h, path, Resource::Sequence(vec![page(), failing]));
    }
    let site = b.start();
    let harness = Harness::default();
    let config = "[recrawl]\ninterval_s = 2\nadaptive = true\nmin_interval_s = 1\n";
    harness.crawl(&[site.url(0, "/")], config).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    harness.crawl(&[site.url(0, "/")], config).await;
    for path in ["/a", "/b"] {
        let url = site.url(0, path);
        assert_eq!(site.count(&url), 2, "{path} was revisited");
        let interval = harness
            .db()
            .await
            .scalar(&format!(
                "SELECT recrawl_interval_ms FROM frontier WHERE url = '{url}'"
            ))
            .await;
        assert_eq!(interval, 2000, "{path}'s failed revisit keeps its interval");
    }
}

/// `scope.sitemaps` off reads no sitemap, not even one that failed while it was on and that
/// `--retry-failed` asks again; turned on again, it is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_sitemap_is_not_asked_again_with_sitemaps_off() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    let base = format!("http://{h}");
    b.add(&h, "/", Resource::Html("<title>Home</title>".into()));
    let listing =
        |path: &str| Resource::Typed("text/plain", format!("{base}{path}\n").into_bytes());
    let down = Resource::Status(503, "down".into());
    b.add(
        &h,
        "/sitemap.xml",
        Resource::Sequence(vec![down, listing("/x")]),
    );
    b.add(&h, "/x", Resource::Html("<title>X</title>".into()));
    let site = b.start();
    let harness = Harness::default();
    let crawl = |sitemaps: bool| {
        let extra = format!("[scope]\nsitemaps = {sitemaps}\n");
        let text = harness.test_config_text(&[site.url(0, "/")], &extra);
        let mut config = Config::from_toml(&text, "test config").expect("a valid config");
        config.retry.earlier_failures = true;
        async move {
            pipecrawl::crawl(config, std::future::pending())
                .await
                .expect("the crawl succeeds")
        }
    };
    crawl(true).await;
    assert_eq!(site.count(&site.url(0, "/sitemap.xml")), 1);
    let summary = crawl(false).await;
    assert_eq!(
        site.count(&site.url(0, "/sitemap.xml")),
        1,
        "sitemaps are off: {summary}"
    );
    assert_eq!(site.count(&site.url(0, "/x")), 0);
    crawl(true).await;
    assert_eq!(site.count(&site.url(0, "/x")), 1, "sitemaps are on again");
}

/// A revisit whose answer has no body to hash — a redirect, an error page, a document not
/// downloaded — changed when what is stored of it did: a redirect leading elsewhere now,
/// one gone 404, a PDF with a new `ETag`, one grown without any. `changed_at` moves, and
/// an adaptive interval halves, as for a changed HTML page (one whose text changed under
/// the same title); one that answers as before is unchanged. On both backends.
///
/// `query changes` showed each change by its status and title alone: all but the 404
/// read "301 301" or "200 200" with the same titles, a change of nothing the user could
/// see. Its `changed` column names what did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revisit_with_no_body_that_answers_otherwise_is_a_change() {
    let harness = Harness::default();
    let (_server, databases) = both_backends(
        &harness,
        "a_revisit_with_no_body_that_answers_otherwise_is_a_change (PostgreSQL half)",
        "bodiless_change",
    )
    .await;
    for database in databases {
        let mut b = SiteBuilder::bind(1).await;
        let h = b.authority(0);
        let links: String = ["/moved", "/gone", "/doc", "/same", "/grown", "/text"]
            .map(|p| format!("<a href='{p}'>{p}</a>"))
            .concat();
        b.add(&h, "/", Resource::Html(links));
        let twice = |first: Resource, then: Resource| Resource::Sequence(vec![first, then]);
        let redirect = |to: &str| Resource::Redirect(301, format!("http://{h}{to}"));
        let pdf = |etag: &str| {
            Resource::WithHeaders(
                vec![("ETag".into(), etag.into())],
                Box::new(Resource::Typed("application/pdf", b"%PDF-1.7".to_vec())),
            )
        };
        b.add(&h, "/moved", twice(redirect("/x"), redirect("/y")));
        b.add(
            &h,
            "/gone",
            twice(redirect("/x"), Resource::Status(404, "no".into())),
        );
        b.add(&h, "/doc", twice(pdf("\"d1\""), pdf("\"d2\"")));
        b.add(&h, "/same", pdf("\"s1\""));
        let untagged = |body: &[u8]| Resource::Typed("application/pdf", body.to_vec());
        b.add(
            &h,
            "/grown",
            twice(untagged(b"%PDF"), untagged(b"%PDF-1.7")),
        );
        let text = |text: &str| Resource::Html(format!("<title>T</title>{text}"));
        b.add(&h, "/text", twice(text("before"), text("after")));
        for p in ["/x", "/y"] {
            b.add(&h, p, Resource::Html("<title>Leaf</title>".into()));
        }
        let site = b.start();
        let config = "[recrawl]\ninterval_s = 2\nadaptive = true\nmin_interval_s = 1\n\
                      [[recrawl.rule]]\npattern = '/[xy]$'\ninterval_s = 0\n";
        for _ in 0..2 {
            let config = config_on(&harness, &database, &site.url(0, "/"), config);
            pipecrawl::crawl(config, std::future::pending())
                .await
                .expect("the crawl succeeds");
            tokio::time::sleep(Duration::from_millis(2100)).await;
        }
        for (path, changed) in [
            ("/moved", true),
            ("/gone", true),
            ("/doc", true),
            ("/same", false),
            ("/grown", true),
            ("/text", true),
        ] {
            let url = site.url(0, path);
            assert_eq!(site.count(&url), 2, "{database}: {path} was revisited");
            let (seen_changed, interval): (bool, Option<i64>) = one_row(
                &database,
                "SELECT p.changed_at = p.fetched_at, f.recrawl_interval_ms
                 FROM pages p JOIN frontier f ON f.id = p.id WHERE p.url = $1",
                &url,
            )
            .await;
            let halved_or_stretched = if changed { 1000 } else { 3000 };
            assert_eq!(
                (seen_changed, interval),
                (changed, Some(halved_or_stretched)),
                "{database}: {path} changed: {changed}"
            );
        }
        let rows = super::query::rows_on(database.trim_matches('"'), &["changes"]).await;
        let origin = site.url(0, "");
        let mut changed: Vec<(String, &str)> = rows
            .iter()
            .map(|r| {
                let url = super::query::text(r, "url").replace(&origin, "");
                (url, super::query::text(r, "changed"))
            })
            .collect();
        changed.sort();
        let expected = [
            ("/doc", "validators"),
            ("/gone", "status, location"),
            ("/grown", "size"),
            ("/moved", "location"),
            ("/text", "body"),
        ];
        assert_eq!(
            changed,
            expected.map(|(p, c)| (p.to_owned(), c)),
            "{database}"
        );
    }
}

/// A run with a longer `[recrawl]` interval than the last schedules every page by it,
/// those the last run had queued for a revisit and not fetched too (a service stopped
/// with revisits waiting, as `requeue_due_recrawls` leaves them: the UPDATE below): a
/// user who lengthens the interval to spare a site is not served the old one's backlog.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_longer_recrawl_interval_holds_for_revisits_queued_before() {
    let site = home_a_b().await;
    let harness = Harness::default();
    let every_second = harness
        .crawl(&[site.url(0, "/")], "[recrawl]\ninterval_s = 1\n")
        .await;
    assert_eq!(every_second.tally.pages, 3);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let options = SqliteConnectOptions::new().filename(harness.db_path());
    let pool = SqlitePool::connect_with(options)
        .await
        .expect("open SQLite");
    let queued = sqlx::query(
        "UPDATE frontier SET state = 'queued', not_before = 0, attempts = 0
         WHERE state IN ('done', 'failed') AND recrawl_at IS NOT NULL",
    )
    .execute(&pool)
    .await
    .expect("queue the revisits due");
    assert_eq!(queued.rows_affected(), 3);
    pool.close().await;

    let hourly = harness
        .crawl(&[site.url(0, "/")], "[recrawl]\ninterval_s = 3600\n")
        .await;
    assert_eq!(hourly.tally.pages, 0, "each page is a second old: {hourly}");
    assert_eq!(site.count(&site.url(0, "/b")), 1);
    let scheduled: i64 = harness
        .db()
        .await
        .scalar(
            "SELECT count(*) FROM frontier WHERE state = 'done' AND recrawl_interval_ms = 3600000",
        )
        .await;
    assert_eq!(scheduled, 3, "each page is due an hour after its fetch");
}

/// A page excluded since it was stored is not revisited; a SIGHUP that takes the
/// `exclude` out brings it back into its revisits, as a restart does ("[scope] is
/// replaced, without losing any state"): the service does not wait for a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_takes_an_exclude_out_revisits_its_pages_again() {
    let site = home_a_b().await;
    let harness = Harness::default();
    let every_second = "[recrawl]\ninterval_s = 1\n[admin]\nlisten = '127.0.0.1:0'\n";
    harness.crawl(&[site.url(0, "/")], every_second).await;
    let config = |extra: &str| {
        let text = harness.test_config_text(&[site.url(0, "/")], &format!("{every_second}{extra}"));
        Config::from_toml(&text, "test config").expect("a valid config")
    };
    let (reload, reloads) = tokio::sync::mpsc::channel(1);
    let stop = std::sync::Arc::new(tokio::sync::Notify::new());
    let stopped = std::sync::Arc::clone(&stop);
    let serving = pipecrawl::serve(
        config("[scope]\nexclude = ['/b$']\n"),
        async move { stopped.notified().await },
        reloads,
    );
    let b = site.url(0, "/b");
    let checks = async {
        let deadline = Instant::now() + Duration::from_secs(10);
        let db = harness.db().await;
        let dropped =
            format!("SELECT count(*) FROM frontier WHERE url = '{b}' AND recrawl_at IS NULL");
        while db.scalar(&dropped).await == 0 {
            assert!(Instant::now() < deadline, "/b's revisit was never dropped");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(site.count(&b), 1, "/b is excluded");

        reload
            .send(config(""))
            .await
            .expect("the service reads reloads");
        let deadline = Instant::now() + Duration::from_secs(10);
        while site.count(&b) < 2 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop.notify_one();
    };
    let (served, ()) = tokio::join!(serving, checks);
    served.expect("the service stops cleanly");
    assert!(
        site.count(&b) >= 2,
        "/b is revisited once the exclude is gone"
    );
}

/// A frontier row whose URL no longer parses (edited by hand, or kept from a build whose
/// URL parser was laxer) is failed when leased, and its revisit goes with it: it kept its
/// `recrawl_at`, so a service queued and leased it again at every wake, for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_whose_url_no_longer_parses_is_not_revisited_again() {
    let harness = Harness::default();
    let site = home_a_b().await;
    let recrawl = "[recrawl]\ninterval_s = 1\n";
    harness.crawl(&[site.url(0, "/")], recrawl).await;
    let bad = "http://[::1/b";
    let options = SqliteConnectOptions::new().filename(harness.db_path());
    let pool = SqlitePool::connect_with(options)
        .await
        .expect("open SQLite");
    for table in ["frontier", "pages"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {table} SET url = $1 WHERE url = $2"
        )))
        .bind(bad)
        .bind(site.url(0, "/b"))
        .execute(&pool)
        .await
        .expect("break the URL");
    }
    pool.close().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    harness.crawl(&[site.url(0, "/")], recrawl).await;
    assert_eq!(
        harness
            .db()
            .await
            .scalar(&format!(
                "SELECT count(*) FROM frontier WHERE url = '{bad}' \
             AND state = 'failed' AND recrawl_at IS NULL"
            ))
            .await,
        1
    );
}

/// A revisit that finds the site's certificate no longer verifying (expired, or replaced
/// by a self-signed one) got no answer from the site, as a revisit the site was down for
/// got none: the page stays as stored, the failure beside it. Before, the `tls` error
/// row replaced it, its title and links gone. A name that no longer resolves (`dns`) is
/// the same case.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revisit_whose_certificate_fails_keeps_the_page_as_stored() {
    let site = super::tls::TlsSite::self_signed(&[
        ("/", "<title>Home</title><a href='/a'>a</a>"),
        ("/a", "<title>A</title>"),
    ])
    .await;
    let harness = Harness::default();
    let database = format!("{:?}", harness.db_path().display().to_string());
    let crawl = |extra: &str| {
        let extra = format!("[recrawl]\ninterval_s = 1\n{extra}");
        let config = config_on(&harness, &database, &site.url("/"), &extra);
        pipecrawl::crawl(config, std::future::pending())
    };
    crawl("[fetch]\naccept_invalid_certs = true\n")
        .await
        .expect("the first crawl succeeds");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    crawl("").await.expect("the revisit succeeds");

    let (stored, failure) = page_state(&database, &site.url("/")).await;
    assert_eq!(stored, (Some(200), Some("Home".to_owned()), 1));
    assert_eq!(
        (failure.1.as_deref(), failure.2.is_some()),
        (Some("tls"), true),
        "the failed revisit is recorded"
    );
}

/// `--retry-failed` after a run stopped while a URL waited out its backoff (a page that
/// timed out when the operator gave up and stopped the crawl): that URL is asked again
/// at once, with its attempts renewed, like the URLs whose retries ran out. It waited
/// for its old backoff, here a minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_stopped_in_its_backoff_is_asked_again_at_once_when_told() {
    let (mut b, h) = home_linking_a_and_b().await;
    let late = Resource::Slow(
        Duration::from_secs(2),
        Box::new(Resource::Html("<title>Late</title>".into())),
    );
    let back = Resource::Html("<title>Back</title>".into());
    b.add(&h, "/a", Resource::Sequence(vec![late, back]));
    let site = b.start();
    let harness = Harness::default();
    let slow_retries = "[retry]\nmax_attempts = 4\nbase_delay_ms = 60000\nmax_delay_ms = 60000\n\
                        [fetch]\ntimeout_ms = 300\n";
    let text = harness.test_config_text(&[site.url(0, "/")], slow_retries);
    let config = || Config::from_toml(&text, "test config").expect("a valid config");
    let stop_soon = || tokio::time::sleep(Duration::from_secs(2));
    pipecrawl::crawl(config(), stop_soon())
        .await
        .expect("the first crawl stops");
    assert_eq!(site.count(&site.url(0, "/a")), 1, "/a waits for its retry");

    let mut again = config();
    again.retry.earlier_failures = true;
    pipecrawl::crawl(again, stop_soon())
        .await
        .expect("the second crawl stops");
    let db = harness.db().await;
    assert_eq!(
        db.page(&site.url(0, "/a"))
            .await
            .and_then(|p| p.title)
            .as_deref(),
        Some("Back")
    );
}

/// A page whose answer broke off (here slower than `fetch.timeout_ms`) is stored with
/// its `ETag` and nothing read of its body. Its revisit named that `ETag`, the server
/// said 304, and the page stayed unread, without title or links, for as long as it did
/// not change; so did the rest of a sitemap read only up to its break. A visit whose
/// answer was not read whole is no version to validate: the revisit asks for all of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revisit_of_a_page_whose_answer_broke_off_reads_it_whole() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(&h, "/", Resource::Html("<a href='/slow'>slow</a>".into()));
    b.add(
        &h,
        "/slow",
        Resource::Validated(
            "\"v1\"".into(),
            Box::new(Resource::Sequence(vec![
                Resource::Drip(Duration::from_millis(100), 1000),
                Resource::Html("<title>Slow</title>".into()),
            ])),
        ),
    );
    let site = b.start();
    let harness = Harness::default();
    let config = "[recrawl]\ninterval_s = 1\n[fetch]\ntimeout_ms = 400\n";
    let slow = || async {
        let page = harness.db().await.page(&site.url(0, "/slow")).await;
        page.map(|p| (p.title, p.error_kind))
    };
    harness.crawl(&[site.url(0, "/")], config).await;
    assert_eq!(slow().await, Some((None, Some("timeout".to_owned()))));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    harness.crawl(&[site.url(0, "/")], config).await;
    assert_eq!(slow().await, Some((Some("Slow".to_owned()), None)));
}

/// A 304 may carry validators newer than those stored (RFC 9111 §4.3.4: the stored
/// response takes the 304's headers), as a server that rotates its ETags sends; the next
/// revisit must name them, or the server answers it in full. The stored ETag stayed the
/// first visit's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_304_with_new_validators_updates_the_stored_ones() {
    let harness = Harness::default();
    let (_server, databases) = both_backends(
        &harness,
        "a_304_with_new_validators_updates_the_stored_ones (PostgreSQL half)",
        "validators",
    )
    .await;
    for database in databases {
        let mut b = SiteBuilder::bind(1).await;
        let h = b.authority(0);
        let first = Resource::WithHeaders(
            vec![(
                "Last-Modified".into(),
                "Mon, 01 Dec 2026 10:00:00 GMT".into(),
            )],
            Box::new(Resource::Validated(
                "\"v1\"".into(),
                Box::new(Resource::Html("<title>Home</title>".into())),
            )),
        );
        let not_modified = Resource::WithHeaders(
            vec![("ETag".into(), "\"v2\"".into())],
            Box::new(Resource::Status(304, String::new())),
        );
        b.add(&h, "/", Resource::Sequence(vec![first, not_modified]));
        let site = b.start();
        revisit_each_second(&harness, &database, &site).await;
        revisit_each_second(&harness, &database, &site).await;

        assert_eq!(site.count(&site.url(0, "/")), 2, "{database}");
        let (kept,): (i64,) = one_row(
            &database,
            "SELECT count(*) FROM pages WHERE url = $1 AND title = 'Home' AND etag = '\"v2\"'
               AND last_modified = 'Mon, 01 Dec 2026 10:00:00 GMT'",
            &site.url(0, "/"),
        )
        .await;
        assert_eq!(kept, 1, "{database}: the 304's ETag, the kept date");
    }
}

/// An `ETag` with a character beyond ASCII in its quotes (RFC 9110 §8.8.3 allows them:
/// a file name, a version label) is a validator like any other. It was read as visible
/// ASCII only and dropped, so the revisit named no version and the server sent the page
/// in full every time; here, where the server says the version is current (304), the
/// page's new body came instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_etag_beyond_ascii_is_named_by_the_revisit() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(
        &h,
        "/",
        Resource::Validated(
            "W/\"été-1\"".into(),
            Box::new(Resource::Sequence(vec![
                Resource::Html("<title>Home</title>".into()),
                Resource::Html("<title>Sent in full again</title>".into()),
            ])),
        ),
    );
    let site = b.start();
    let harness = Harness::default();
    let config = "[recrawl]\ninterval_s = 1\n";
    let home = || async {
        let page = harness.db().await.page(&site.url(0, "/")).await;
        page.map(|p| (p.status, p.title))
    };
    harness.crawl(&[site.url(0, "/")], config).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    harness.crawl(&[site.url(0, "/")], config).await;
    assert_eq!(site.count(&site.url(0, "/")), 2, "a revisit was made");
    assert_eq!(home().await, Some((Some(200), Some("Home".to_owned()))));
}

/// A validator is a short token (an ETag of a hash, a date): one of kilobytes, as a
/// hostile or broken server sends, was stored in every revisit's row and sent back at
/// each, its page's row growing by up to `fetch.max_header_bytes` twice. Such a page is
/// kept without it (its revisits come in full); a usual one is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validator_of_kilobytes_is_not_kept() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(
        &h,
        "/",
        Resource::Validated(
            "\"v1\"".into(),
            Box::new(Resource::Html(
                "<title>Home</title><a href='/huge'>h</a>".into(),
            )),
        ),
    );
    let huge = "x".repeat(20_000);
    b.add(
        &h,
        "/huge",
        Resource::WithHeaders(
            vec![
                ("ETag".into(), format!("\"{huge}\"")),
                ("Last-Modified".into(), format!("Tue, 01 Dec 2026 {huge}")),
            ],
            Box::new(Resource::Html("<title>Huge</title>".into())),
        ),
    );
    let site = b.start();
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;
    let kept: Vec<(String, Option<i64>, Option<i64>)> = rows(
        &harness.db_path().display().to_string(),
        "SELECT title, length(etag), length(last_modified) FROM pages ORDER BY url",
        None,
    )
    .await;
    assert_eq!(
        kept,
        [
            ("Home".to_owned(), Some(4), None),
            ("Huge".to_owned(), None, None)
        ]
    );
}

/// A 304 says the stored version is current, which is only so of a stored answer: the
/// request named no version when the last visit failed (a 503 after its retries), and a
/// server's 304 then was taken for "the 503 is still current", so the row said 503 as of
/// a visit the server answered. It is stored as the answer it is. A stored answer that
/// had no validators to send is still the one a 304 without any stands for (RFC 9111
/// §4.3.3), and stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_304_to_a_revisit_of_a_failed_visit_is_stored_as_its_answer() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(
        &h,
        "/",
        Resource::Html("<title>Home</title><a href='/down'>d</a><a href='/plain'>p</a>".into()),
    );
    let not_modified = || Resource::Status(304, String::new());
    b.add(
        &h,
        "/down",
        Resource::Sequence(vec![Resource::Status(503, "down".into()), not_modified()]),
    );
    b.add(
        &h,
        "/plain",
        Resource::Sequence(vec![
            Resource::Html("<title>Plain</title>".into()),
            not_modified(),
        ]),
    );
    let site = b.start();
    let harness = Harness::default();
    let config = "[recrawl]\ninterval_s = 1\n";
    harness.crawl(&[site.url(0, "/")], config).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    harness.crawl(&[site.url(0, "/")], config).await;

    assert_eq!(site.count(&site.url(0, "/down")), 2);
    let db = harness.db().await;
    let down = db
        .page(&site.url(0, "/down"))
        .await
        .expect("a row for /down");
    assert_eq!(
        down.status,
        Some(304),
        "the last visit was answered 304, not 503"
    );
    let plain = db
        .page(&site.url(0, "/plain"))
        .await
        .expect("a row for /plain");
    assert_eq!(
        (plain.status, plain.title.as_deref()),
        (Some(200), Some("Plain")),
        "a stored answer stays"
    );
}

/// A `[[recrawl.rule]]` written as a URL reads (`/actualités/`, as a browser's address
/// bar shows it) matched only the stored spelling (`/actualit%C3%A9s/`), where
/// `scope.include`, `exclude` and `[[frontier.boost]]` match either: a non-English
/// site's news rule revisited nothing, and said nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recrawl_rule_matches_a_url_as_it_reads() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(
        &h,
        "/",
        Resource::Html("<title>Accueil</title><a href='/actualités/1'>une</a>".into()),
    );
    b.add(
        &h,
        "/actualit%C3%A9s/1",
        Resource::Html("<title>Une</title>".into()),
    );
    let site = b.start();
    let harness = Harness::default();
    let config = "[recrawl]\n[[recrawl.rule]]\npattern = '/actualités/'\ninterval_s = 1\n";
    harness.crawl(&[site.url(0, "/")], config).await;
    let news = site.url(0, "/actualit%C3%A9s/1");
    assert_eq!(site.count(&news), 1, "the news page is crawled");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    harness.crawl(&[site.url(0, "/")], config).await;
    assert_eq!(site.count(&news), 2, "the rule's page is revisited");
    assert_eq!(
        site.count(&site.url(0, "/")),
        1,
        "the home page has no rule"
    );
}

/// A year from now in unix ms, as the crawler stores times.
pub(super) fn a_year_ahead_ms() -> i64 {
    now_ms() + 365 * 86_400_000
}

/// Now in unix ms, as the crawler stores times.
fn now_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis();
    i64::try_from(now).expect("in range")
}

/// Runs `update` with `$1` a year from now in unix ms, as a clock a year fast (or an NTP
/// step back since) would have left a time.
pub(super) async fn set_a_year_ahead(harness: &Harness, update: &str) {
    set_time(harness, update, a_year_ahead_ms()).await;
}

/// Moves the times of `runs` a day ahead, as a run on a clock a day fast would have
/// written them.
pub(super) fn runs_a_day_ahead() -> String {
    let later = |column: &str| format!("strftime('%Y-%m-%dT%H:%M:%fZ', {column}, '+1 day')");
    format!(
        "UPDATE runs SET started_at = {}, ended_at = {}",
        later("started_at"),
        later("ended_at")
    )
}

/// Runs `update` on the harness's database with `$1` the time `unix_ms`, as the crawler
/// stores times; it must change a row.
async fn set_time(harness: &Harness, update: &str, unix_ms: i64) {
    let options = SqliteConnectOptions::new().filename(harness.db_path());
    let pool = SqlitePool::connect_with(options)
        .await
        .expect("open SQLite");
    let moved = sqlx::query(sqlx::AssertSqlSafe(update.to_owned()))
        .bind(unix_ms)
        .execute(&pool)
        .await
        .expect("set the times");
    assert!(moved.rows_affected() > 0, "{update}");
    pool.close().await;
}

/// A revisit scheduled by a clock a year fast is no revisit `[recrawl]` asks for: it
/// comes up within its interval of the run that finds it, not a year later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revisit_scheduled_far_ahead_by_a_clock_that_moved_comes_up_within_its_interval() {
    let site = home_a_b().await;
    let harness = Harness::default();
    let every_second = "[recrawl]\ninterval_s = 1\n";
    harness.crawl(&[site.url(0, "/")], every_second).await;
    set_a_year_ahead(
        &harness,
        "UPDATE frontier SET recrawl_at = $1 WHERE recrawl_at IS NOT NULL",
    )
    .await;
    harness.crawl(&[site.url(0, "/")], every_second).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let later = harness.crawl(&[site.url(0, "/")], every_second).await;
    assert_eq!(later.tally.pages, 3, "every page is revisited: {later}");
}

/// A retry's backoff left by a clock a year fast is no wait `[retry]` asks for: the URL
/// is asked within `retry.max_delay_ms`, not a year later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_due_far_ahead_by_a_clock_that_moved_is_asked_within_the_longest_backoff() {
    resume_retries_after_the_clock_moved(
        "[retry]\nmax_attempts = 3\nmax_delay_ms = 1000\n",
        &[retries_due_at(a_year_ahead_ms())],
        "the crawl does not wait a year for its retries",
    )
    .await;
}

/// A clock stepped back a day between two runs had a retry the first left a second to
/// wait held for `retry.max_delay_ms` (here a day): its backoff is counted from the
/// clock as the first run ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_stepped_back_between_runs_leaves_each_retry_the_backoff_it_had() {
    resume_retries_after_the_clock_moved(
        "[retry]\nmax_attempts = 3\nmax_delay_ms = 86400000\n",
        &[
            runs_a_day_ahead(),
            retries_due_at(now_ms() + 86_400_000 + 1000),
        ],
        "the crawl waits the retries' backoff, not the day the clock stepped back",
    )
    .await;
}

/// A clock stepped back a day between two runs left each revisit the first scheduled a
/// day later than its interval asks (two days here, so not past the interval either):
/// it is moved back by the step, as a retry is, and a one-off crawl's start takes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_stepped_back_between_runs_leaves_each_revisit_the_interval_it_had() {
    let site = home_a_b().await;
    let harness = Harness::default();
    let every_two_days = "[recrawl]\ninterval_s = 172800\n";
    let first = harness.crawl(&[site.url(0, "/")], every_two_days).await;
    assert_eq!(first.tally.pages, 3, "{first}");
    super::query::change_database(
        &harness,
        &[
            runs_a_day_ahead(),
            format!(
                "UPDATE frontier SET recrawl_at = {} WHERE recrawl_at IS NOT NULL",
                now_ms() + 86_400_000 + 1000
            ),
        ],
    )
    .await;
    let again = harness.crawl(&[site.url(0, "/")], every_two_days).await;
    assert_eq!(
        again.tally.pages, 3,
        "the revisits due a second after the last run ended are taken: {again}"
    );
}

/// Sets the URLs queued as retries due at `unix_ms`.
fn retries_due_at(unix_ms: i64) -> String {
    format!("UPDATE frontier SET attempts = 1, not_before = {unix_ms} WHERE state = 'queued'")
}

/// Crawls the home page of [`home_a_b`] (`scope.max_pages = 1`), runs `moved` on the
/// database (what a clock that moved left), and crawls again, `extra` the config of
/// both: the second run fetches the two URLs left, and does not wait what `no_wait` says.
async fn resume_retries_after_the_clock_moved(extra: &str, moved: &[String], no_wait: &str) {
    let site = home_a_b().await;
    let harness = Harness::default();
    harness
        .crawl(
            &[site.url(0, "/")],
            &format!("{extra}[scope]\nmax_pages = 1\n"),
        )
        .await;
    super::query::change_database(&harness, moved).await;
    let resumed = tokio::time::timeout(
        Duration::from_secs(60),
        harness.crawl(&[site.url(0, "/")], extra),
    )
    .await
    .expect(no_wait);
    assert_eq!(resumed.tally.pages, 2, "{resumed}");
}

/// A page fetched "in the future" (by a clock a year fast) had its revisit scheduled
/// from that fetch when `[recrawl]` changed: a year and an interval away, a year late.
/// It is due an interval after the run that schedules it at the latest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_fetched_by_a_clock_a_year_fast_is_rescheduled_within_its_interval() {
    let site = home_a_b().await;
    let harness = Harness::default();
    harness
        .crawl(&[site.url(0, "/")], "[recrawl]\ninterval_s = 1\n")
        .await;
    set_a_year_ahead(
        &harness,
        "UPDATE pages SET fetched_at = strftime('%Y-%m-%dT%H:%M:%fZ', $1 / 1000.0, 'unixepoch')",
    )
    .await;
    let every_two = "[recrawl]\ninterval_s = 2\n";
    let rescheduled = harness.crawl(&[site.url(0, "/")], every_two).await;
    assert_eq!(rescheduled.tally.pages, 0, "{rescheduled}");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let later = harness.crawl(&[site.url(0, "/")], every_two).await;
    assert_eq!(later.tally.pages, 3, "every page is revisited: {later}");
}

/// The clock stepping back (NTP) while a crawl waits for a retry leaves the retry due
/// that much later by the new clock: a year's step kept the crawl waiting a year. A
/// wait longer than `retry.max_delay_ms` is no backoff, and is cut to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_stepping_back_while_a_retry_waits_does_not_hold_the_crawl() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(&h, "/", Resource::Html("<a href='/busy'>busy</a>".into()));
    b.add(&h, "/busy", Resource::Status(503, "busy".into()));
    let site = b.start();
    let harness = Harness::default();
    let extra = "[retry]\nmax_attempts = 2\nbase_delay_ms = 3000\nmax_delay_ms = 3000\n";
    let step_back = async {
        let busy = site.url(0, "/busy");
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if harness.db_path().exists() {
                let waiting = harness
                    .db()
                    .await
                    .try_scalar(&format!(
                        "SELECT count(*) FROM frontier WHERE url = '{busy}' AND attempts = 1 AND state = 'queued'"
                    ))
                    .await;
                if waiting.is_ok_and(|n| n == 1) {
                    set_a_year_ahead(
                        &harness,
                        "UPDATE frontier SET not_before = $1 WHERE attempts = 1 AND state = 'queued'",
                    )
                    .await;
                    return;
                }
            }
        }
        panic!("the retry was never queued");
    };
    let seeds = [site.url(0, "/")];
    let crawl = tokio::time::timeout(Duration::from_secs(60), harness.crawl(&seeds, extra));
    let (crawled, ()) = tokio::join!(crawl, step_back);
    crawled.expect("the crawl does not wait a year for its retry");
    assert_eq!(
        site.count(&site.url(0, "/busy")),
        2,
        "both attempts are made"
    );
}

/// Makes every scheduled revisit in the harness's database due now, as the clock reaching
/// it would: a test of what a revisit stores need not wait out an interval.
async fn make_revisits_due(harness: &Harness) {
    let due = "UPDATE frontier SET recrawl_at = $1 WHERE recrawl_at IS NOT NULL";
    set_time(harness, due, 0).await;
}

/// Crawls from `seed` under an adaptive hourly `[recrawl]`, then again with every page
/// due: what the revisits found is in the harness's database.
async fn crawl_and_revisit(seed: &str) -> Harness {
    let harness = Harness::default();
    let config = "[recrawl]\ninterval_s = 3600\nadaptive = true\nmin_interval_s = 60\n";
    harness.crawl(&[seed.to_owned()], config).await;
    make_revisits_due(&harness).await;
    harness.crawl(&[seed.to_owned()], config).await;
    harness
}

/// Whether `url`'s last visit in `harness`'s database moved its `changed_at` (1) or not
/// (0), and its interval now.
async fn change_and_interval(harness: &Harness, url: &str) -> (i64, i64) {
    let database = harness.db_path().display().to_string();
    let seen: Vec<(i64, i64)> = rows(
        &database,
        "SELECT CASE WHEN p.changed_at = p.fetched_at THEN 1 ELSE 0 END, f.recrawl_interval_ms
         FROM pages p JOIN frontier f ON f.id = p.id WHERE p.url = $1",
        Some(url),
    )
    .await;
    seen.first().copied().unwrap_or((-1, -1))
}

/// A document the crawl does not download (a price list's PDF), served without `ETag` or
/// `Last-Modified` as a script that makes it serves it, tells a new version only by its
/// size: a revisit that found it four times as long left `changed_at` at the first visit,
/// and an adaptive interval stretched as for a page that never changes. Its size and type
/// are what is stored of it, and they count; one served as before is unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_not_downloaded_that_grew_is_a_change() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(
        &h,
        "/",
        Resource::Html("<a href='/prices.pdf'>p</a><a href='/terms.pdf'>t</a>".into()),
    );
    let pdf = |body: &[u8]| Resource::Typed("application/pdf", body.to_vec());
    b.add(
        &h,
        "/prices.pdf",
        Resource::Sequence(vec![
            pdf(b"%PDF-1.7 v1"),
            pdf(b"%PDF-1.7 v2, with this year's prices and more"),
        ]),
    );
    b.add(&h, "/terms.pdf", pdf(b"%PDF-1.7 terms"));
    let site = b.start();
    let harness = crawl_and_revisit(&site.url(0, "/")).await;
    for (path, changed, interval) in [("/prices.pdf", 1, 1_800_000), ("/terms.pdf", 0, 5_400_000)] {
        let url = site.url(0, path);
        assert_eq!(site.count(&url), 2, "{path} was revisited");
        assert_eq!(
            change_and_interval(&harness, &url).await,
            (changed, interval),
            "{path}: changed_at moved (1) or not (0), and the adaptive interval"
        );
    }
}

/// A watcher's cron job runs `pipecrawl crawl` once a day with `interval_s = 86400`. Each
/// page was due a day after its own visit, which came after the run started (the last a
/// whole run later), so the next day's run, started a day after the first, found none of
/// them due yet, said "nothing left to crawl", and every page was revisited every other
/// day. A one-off crawl's revisits are due an interval after the run that made them
/// started. Here the next run starts one interval after the first page was fetched (the
/// schedule moved back by what is left of the interval, as a clock that waited would
/// find it); `/slow` was stored more than a second after that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_run_once_an_interval_revisits_every_page() {
    let site = site_with_a_slow_page().await;
    let harness = Harness::default();
    let daily = "[recrawl]\ninterval_s = 86400\n";
    harness.crawl(&[site.url(0, "/")], daily).await;
    let left = 86_400_000 - (now_ms() - first_fetch_ms(&harness).await);
    set_time(
        &harness,
        "UPDATE frontier SET recrawl_at = recrawl_at - $1 WHERE recrawl_at IS NOT NULL",
        left,
    )
    .await;
    let next_day = harness.crawl(&[site.url(0, "/")], daily).await;
    assert_each_revisited(&site, &next_day);
}

/// The same cron job, its `[recrawl]` changed between two runs (a weekly interval made
/// daily): the revisits were scheduled again from each page's fetch, so the run a day
/// after the last found `/late`, requested two seconds after that run's start, not due
/// yet, and revisited it only a day later. They count from the last run's start again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_run_once_an_interval_after_its_recrawl_changed_revisits_every_page() {
    let site = site_with_a_slow_page().await;
    let harness = Harness::default();
    harness
        .crawl(&[site.url(0, "/")], "[recrawl]\ninterval_s = 604800\n")
        .await;
    // The first run's times moved back as a day's wait would leave them: its start, as
    // the crawl keeps it, and its pages' fetches.
    let back = 86_400_000 - (now_ms() - first_fetch_ms(&harness).await);
    set_time(
        &harness,
        "UPDATE pages SET fetched_at =
             strftime('%Y-%m-%dT%H:%M:%fZ', fetched_at, printf('-%.3f seconds', $1 / 1000.0))",
        back,
    )
    .await;
    set_time(
        &harness,
        "UPDATE crawl_state SET value = value - $1 WHERE key = 'one_off_run_started_ms'",
        back,
    )
    .await;
    let next_day = harness
        .crawl(&[site.url(0, "/")], "[recrawl]\ninterval_s = 86400\n")
        .await;
    assert_each_revisited(&site, &next_day);
}

/// A site whose `/slow` answers after 2 s, so that it is stored, and `/late` it links to
/// requested, well after its crawl's start.
async fn site_with_a_slow_page() -> TestSite {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    let slow = Box::new(Resource::Html(
        "<title>Slow</title><a href='/late'>l</a>".into(),
    ));
    for (path, page) in [
        (
            "/",
            "<title>Home</title><a href='/slow'>s</a><a href='/a'>a</a>",
        ),
        ("/a", "<title>A</title>"),
        ("/late", "<title>Late</title>"),
    ] {
        b.add(&h, path, Resource::Html(page.into()));
    }
    b.add(&h, "/slow", Resource::Slow(Duration::from_secs(2), slow));
    b.start()
}

/// The first page's `fetched_at` in unix ms, as `recrawl_at` counts, once the site's four
/// pages are stored.
async fn first_fetch_ms(harness: &Harness) -> i64 {
    let db = harness.db().await;
    assert_eq!(db.scalar("SELECT count(*) FROM pages").await, 4);
    db.scalar(
        "SELECT strftime('%s', min(fetched_at)) * 1000 + substr(min(fetched_at), 21, 3)
         FROM pages",
    )
    .await
}

fn assert_each_revisited(site: &TestSite, next_day: &Summary) {
    for path in ["/", "/slow", "/a", "/late"] {
        assert_eq!(
            site.count(&site.url(0, path)),
            2,
            "{path} is revisited by the run a day after the last: {next_day}"
        );
    }
}

/// A revisit that robots.txt now refuses (the site added a `Disallow:` since) leaves the
/// page as its last answer stored it, the refusal recorded beside it, as a revisit that
/// gets no answer does: the page was not asked, and a user watching the site saw it wiped
/// (no status, no title, no links) as though it had been removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revisit_robots_txt_now_refuses_keeps_the_page_as_stored() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    let rules = |text: &str| Resource::Typed("text/plain", text.as_bytes().to_vec());
    b.add(
        &h,
        "/robots.txt",
        Resource::Sequence(vec![
            rules("User-agent: *\nDisallow:\n"),
            rules("User-agent: *\nDisallow: /a\n"),
        ]),
    );
    b.add(&h, "/", Resource::Html("<a href='/a'>a</a>".into()));
    b.add(
        &h,
        "/a",
        Resource::Html("<title>Prices</title><a href='/'>home</a>".into()),
    );
    let site = b.start();
    let harness = Harness::default();
    let config = "[recrawl]\ninterval_s = 1\n[politeness]\ndelay_ms = 0\nrobots_ttl_s = 1\n";
    for _ in 0..2 {
        harness.crawl(&[site.url(0, "/")], config).await;
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    assert_eq!(
        site.count(&site.url(0, "/a")),
        1,
        "asked once, then refused"
    );
    let (stored, failure) =
        page_state(&harness.db_path().display().to_string(), &site.url(0, "/a")).await;
    assert_eq!(
        (stored, failure.1.as_deref(), failure.2.is_some()),
        (
            (Some(200), Some("Prices".to_owned()), 1),
            Some("robots"),
            true
        ),
        "the page as its last answer stored it, the refusal beside it"
    );
}

/// A file of no declared type streamed with no `Content-Length` is read only as far as
/// telling it is not HTML, and as many bytes as the server's pieces brought by then were
/// stored as its size: another count at each visit of the same file, which a revisit took
/// for a new version (changed_at moved, an adaptive interval halved). Its size is unknown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_streamed_without_a_size_is_not_changed_by_how_it_was_cut() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(&h, "/", Resource::Html("<a href='/export'>e</a>".into()));
    let file: Vec<u8> = b"%PDF-1.7\n".iter().chain(&[b'7'; 6000]).copied().collect();
    let cut = |at: usize| Resource::Streamed(vec![file[..at].to_vec(), file[at..].to_vec()]);
    b.add(
        &h,
        "/export",
        Resource::Sequence(vec![cut(1500), cut(3000)]),
    );
    let site = b.start();
    let harness = crawl_and_revisit(&site.url(0, "/")).await;
    let url = site.url(0, "/export");
    assert_eq!(site.count(&url), 2, "revisited");
    let db = harness.db().await;
    let (changed, interval) = change_and_interval(&harness, &url).await;
    let bytes = db.page(&url).await.and_then(|p| p.bytes);
    assert_eq!(
        (changed, interval, bytes),
        (0, 5_400_000, None),
        "changed_at moved (1) or not (0), the adaptive interval, and the size stored"
    );
}

/// A user watching sites asks what a page said before it changed: `pages` holds only the
/// last answer. Each visit that changed a stored page (a new title, a page now gone) adds
/// a `page_changes` row with both answers; a first visit and an unchanged revisit add
/// none. On both backends, through `query sql`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_change_a_revisit_finds_is_kept_with_the_answer_before_it() {
    let harness = Harness::default();
    let (_server, databases) = both_backends(
        &harness,
        "each_change_a_revisit_finds_is_kept_with_the_answer_before_it (PostgreSQL half)",
        "page_changes",
    )
    .await;
    for database in databases {
        let mut b = SiteBuilder::bind(1).await;
        let h = b.authority(0);
        b.add(
            &h,
            "/",
            Resource::Html("<title>Home</title><a href='/news'>n</a><a href='/sale'>s</a>".into()),
        );
        let news = |title: &str| Resource::Html(format!("<title>{title}</title>"));
        b.add(
            &h,
            "/news",
            Resource::Sequence(vec![news("Monday"), news("Tuesday"), news("Tuesday")]),
        );
        b.add(
            &h,
            "/sale",
            Resource::Sequence(vec![
                news("Sale"),
                news("Sale"),
                Resource::Status(404, "gone".into()),
            ]),
        );
        let site = b.start();
        for _ in 0..3 {
            revisit_each_second(&harness, &database, &site).await;
        }
        assert_eq!(site.count(&site.url(0, "/sale")), 3, "{database}");
        let sql = "SELECT url, old_status, new_status, old_title, new_title,
                          CASE WHEN old_changed_at < changed_at THEN 1 ELSE 0 END AS later
                   FROM page_changes ORDER BY id";
        let (db, origin) = (database.trim_matches('"'), site.url(0, ""));
        let ask = |words: &[&str]| {
            let mut args = vec!["query", "--db", db, "--format", "csv"];
            args.extend(words);
            let (args, origin) = (super::query::args(&args), origin.clone());
            async move {
                let out = super::query::pipecrawl(args).await;
                assert!(out.status.success(), "{out:?}");
                String::from_utf8_lossy(&out.stdout).replace(&origin, "")
            }
        };
        assert_eq!(
            ask(&["sql", sql]).await,
            "url,old_status,new_status,old_title,new_title,later\r\n\
             /news,200,200,Monday,Tuesday,1\r\n\
             /sale,200,404,Sale,,1\r\n",
            "{database}"
        );
        // `query changes`, newest first; `changed_at` left out, a time of the run's.
        let changes = |text: String| -> Vec<String> {
            text.lines()
                .map(|line| line.split_once(',').map_or("", |(_, rest)| rest).to_owned())
                .collect()
        };
        assert_eq!(
            changes(ask(&["changes"]).await),
            [
                "url,changed,old_status,new_status,old_title,new_title",
                "/sale,\"status, title\",200,404,Sale,",
                "/news,\"title, body\",200,200,Monday,Tuesday",
            ],
            "{database}"
        );
        let news = site.url(0, "/news");
        assert_eq!(
            changes(ask(&["changes", "--url", &news]).await),
            [
                "url,changed,old_status,new_status,old_title,new_title",
                "/news,\"title, body\",200,200,Monday,Tuesday",
            ],
            "{database}"
        );
        assert_eq!(
            changes(ask(&["changes", "--since", "1min", "--limit", "1"]).await).len(),
            2,
            "{database}: the header and the newest change"
        );
        // What the last run found, as a nightly job's next step asks: the third's change.
        assert_eq!(
            changes(ask(&["changes", "--since", "last-run"]).await),
            [
                "url,changed,old_status,new_status,old_title,new_title",
                "/sale,\"status, title\",200,404,Sale,",
            ],
            "{database}"
        );
    }
}

/// A page whose first visit failed for now (a 503 once its retries ran out) and whose
/// revisit fails again, otherwise (no answer in time), has its row replaced, and its
/// `changed_at` moves with the status: that added a `page_changes` row "503 → nothing",
/// one more at each flip of a site that stays down, which a user watching it read as
/// changes of the page. A failure replacing a failure adds none; the answer that ends
/// them adds one. On both backends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_page_that_fails_again_otherwise_adds_no_change() {
    let harness = Harness::default();
    let (_server, databases) = both_backends(
        &harness,
        "a_failed_page_that_fails_again_otherwise_adds_no_change (PostgreSQL half)",
        "failed_again",
    )
    .await;
    for database in databases {
        let mut b = SiteBuilder::bind(1).await;
        let h = b.authority(0);
        b.add(&h, "/", Resource::Html("<a href='/down'>d</a>".into()));
        let late = Resource::Slow(Duration::from_secs(2), Box::new(Resource::Html("x".into())));
        let back = Resource::Html("<title>Back</title>".into());
        b.add(
            &h,
            "/down",
            Resource::Sequence(vec![Resource::Status(503, "down".into()), late, back]),
        );
        let site = b.start();
        let crawl = || revisit_each_second(&harness, &database, &site);
        let changes = || {
            rows::<(Option<i64>, Option<String>, Option<i64>, Option<String>)>(
                &database,
                "SELECT old_status, old_error_kind, new_status, new_title
                 FROM page_changes ORDER BY id",
                None,
            )
        };
        crawl().await;
        crawl().await;
        assert_eq!(
            site.count(&site.url(0, "/down")),
            2,
            "{database}: revisited"
        );
        assert_eq!(changes().await, [], "{database}: down, then still down");
        crawl().await;
        assert_eq!(
            changes().await,
            [(None, Some("timeout".into()), Some(200), Some("Back".into()))],
            "{database}: the answer that ends the failures is a change"
        );
    }
}

/// The PostgreSQL trigger keeping `page_changes` calls a visit failed as
/// `retry::is_transient` does (or when it had no answer), in its own words
/// (`page_failed_for_now`, migration 15), which the SQLite unit test of the trigger does
/// not read: every status, and every error kind on either side of an answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgresql_trigger_calls_failures_as_retries_do() {
    use pipecrawl::page::ErrorKind;
    let Some(server) = super::postgres::TestPostgres::start("page_failed_for_now") else {
        return;
    };
    let url = server.database("page_failed").await;
    pipecrawl::store::Store::open(&url)
        .await
        .expect("migrate the database");
    let pool = sqlx::PgPool::connect(&url).await.expect("open PostgreSQL");
    let mut outcomes: Vec<(Option<i64>, Option<&str>)> =
        (100..=599).map(|s| (Some(s), None)).collect();
    outcomes.push((None, None));
    for kind in ErrorKind::ALL {
        for status in [None, Some(200), Some(503)] {
            outcomes.push((status, Some(kind.as_str())));
        }
    }
    for (status, kind) in outcomes {
        let said: bool = sqlx::query_scalar("SELECT page_failed_for_now($1, $2)")
            .bind(status)
            .bind(kind)
            .fetch_one(&pool)
            .await
            .expect("ask the function");
        let wanted = status.is_none()
            || pipecrawl::retry::is_transient(
                status.and_then(|s| u16::try_from(s).ok()),
                kind.and_then(ErrorKind::from_stored),
            );
        assert_eq!(said, wanted, "{status:?} {kind:?}");
    }
    pool.close().await;
}

/// A crawl run once an interval by cron or a systemd timer starts a little earlier or
/// later each time (cron's second, a timer's `RandomizedDelaySec`, a busy machine): a run
/// that started a minute earlier in the day than the last found every page that last run
/// fetched not due yet, revisited none, and left them a whole interval more. A one-off
/// crawl takes the revisits due within a tenth of their interval of its start; one due
/// further off waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nightly_run_that_starts_a_little_early_still_revisits_the_pages() {
    let site = home_a_b().await;
    let harness = Harness::default();
    let config = "[recrawl]\ninterval_s = 86400\n";
    harness.crawl(&[site.url(0, "/")], config).await;
    // The night before began a minute later in the day than this one; `/b`'s revisit is
    // half its interval away.
    set_time(
        &harness,
        "UPDATE frontier SET recrawl_at = $1 + CASE WHEN url LIKE '%/b' THEN 43200000 ELSE 60000 END",
        now_ms(),
    )
    .await;
    let summary = harness.crawl(&[site.url(0, "/")], config).await;
    assert_eq!(
        (summary.tally.revisits(), site.count(&site.url(0, "/b"))),
        (2, 1),
        "(pages revisited, requests for /b)"
    );
}
