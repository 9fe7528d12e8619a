//! Rows the database refuses: a value it will not take (SQLSTATE classes 22, 23 and 54 on
//! PostgreSQL, a constraint on SQLite) is no outage. A trigger stands in for such a value:
//! the page it refuses must not stop the crawl, nor every crawl after it.

use std::time::Duration;

use super::recrawl::{both_backends, config_on, rows};
use super::site::{Resource, SiteBuilder, TestSite};
use super::Harness;

/// A page's row as these tests read it, on either backend: url, status, title,
/// error_kind, error, revisit_error_kind.
type Row = (
    String,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

const PAGES: &str = "SELECT url, status, title, error_kind, error, revisit_error_kind
                     FROM pages ORDER BY url";

/// `database` as `both_backends` quotes it for the config.
fn unquoted(database: &str) -> &str {
    database.trim_matches('"')
}

fn is_postgres(database: &str) -> bool {
    unquoted(database).starts_with("postgres")
}

/// Makes `database` (migrated first) refuse to insert rows of `table` for which
/// `condition` (on `NEW`) holds, as it would a value it cannot store.
pub(super) async fn refuse(database: &str, table: &str, condition: &str) {
    let store = pipecrawl::store::Store::open(unquoted(database))
        .await
        .expect("a crawl's database");
    store.close().await.expect("close the store");
    drop(store);
    let sql = if is_postgres(database) {
        format!(
            "CREATE FUNCTION refuse_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF {condition} THEN
                     RAISE EXCEPTION 'poison refused' USING ERRCODE = '22023';
                 END IF;
                 RETURN NEW;
             END $$;
             CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table}
                 FOR EACH ROW EXECUTE FUNCTION refuse_{table}();"
        )
    } else {
        format!(
            "CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} WHEN {condition}
             BEGIN SELECT RAISE(ABORT, 'poison refused'); END"
        )
    };
    execute(database, &sql, "install the trigger").await;
}

/// Makes `database` refuse to queue again the failed frontier rows of `host`: a requeue
/// stopped part way, as a kill or an outage would stop it, with what it committed before.
pub(super) async fn refuse_requeues(database: &str, host: &str) {
    let condition =
        format!("OLD.state = 'failed' AND NEW.state = 'queued' AND NEW.host = '{host}'");
    let sql = if is_postgres(database) {
        format!(
            "CREATE FUNCTION refuse_requeue() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF {condition} THEN
                     RAISE EXCEPTION 'requeue refused' USING ERRCODE = '22023';
                 END IF;
                 RETURN NEW;
             END $$;
             CREATE TRIGGER refuse_requeue BEFORE UPDATE ON frontier
                 FOR EACH ROW EXECUTE FUNCTION refuse_requeue();"
        )
    } else {
        format!(
            "CREATE TRIGGER refuse_requeue BEFORE UPDATE ON frontier WHEN {condition}
             BEGIN SELECT RAISE(ABORT, 'requeue refused'); END"
        )
    };
    execute(database, &sql, "install the trigger").await;
}

/// Takes [`refuse_requeues`]' trigger away again.
pub(super) async fn allow_requeues(database: &str) {
    let sql = if is_postgres(database) {
        "DROP TRIGGER refuse_requeue ON frontier; DROP FUNCTION refuse_requeue();"
    } else {
        "DROP TRIGGER refuse_requeue"
    };
    execute(database, sql, "drop the trigger").await;
}

/// Runs `sql` on `database` (either backend), as `doing` says.
async fn execute(database: &str, sql: &str, doing: &str) {
    if is_postgres(database) {
        let pool = sqlx::PgPool::connect(unquoted(database))
            .await
            .expect("open PostgreSQL");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&pool)
            .await
            .expect(doing);
        pool.close().await;
    } else {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", unquoted(database)))
            .await
            .expect("open SQLite");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&pool)
            .await
            .expect(doing);
        pool.close().await;
    }
}

async fn pages(database: &str) -> Vec<Row> {
    rows(database, PAGES, None).await
}

async fn link_count(database: &str) -> i64 {
    let counted: Vec<(i64,)> = rows(database, "SELECT count(*) FROM links", None).await;
    counted[0].0
}

/// A home page linking to `/a`, `/poison` and `/b`.
async fn site_with_poison() -> TestSite {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(
        &h,
        "/",
        Resource::Html(
            "<title>Home</title><a href='/a'>a</a><a href='/poison'>p</a><a href='/b'>b</a>".into(),
        ),
    );
    b.add(&h, "/a", Resource::Html("<title>A</title>".into()));
    b.add(
        &h,
        "/poison",
        Resource::Html("<title>Poison</title><a href='/a'>a</a>".into()),
    );
    b.add(&h, "/b", Resource::Html("<title>B</title>".into()));
    b.start()
}

fn is_refusal(row: &Row) -> bool {
    row.3.as_deref() == Some("database_refused")
        && row
            .4
            .as_deref()
            .is_some_and(|e| e.contains("poison refused"))
}

/// A page whose row the database refuses is stored as a failed fetch that says so; the
/// rest of its batch is stored, the crawl goes on, and a rerun does not ask for it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_the_database_refuses_is_a_failed_fetch_and_the_crawl_goes_on() {
    let harness = Harness::default();
    let (_server, databases) = both_backends(
        &harness,
        "a_page_the_database_refuses_is_a_failed_fetch_and_the_crawl_goes_on (PostgreSQL half)",
        "refused_page",
    )
    .await;
    for database in databases {
        let site = site_with_poison().await;
        let poison = site.url(0, "/poison");
        refuse(
            &database,
            "pages",
            "NEW.url LIKE '%/poison' AND NEW.error_kind IS NULL",
        )
        .await;
        let config = || config_on(&harness, &database, &site.url(0, "/"), "");
        let summary = pipecrawl::crawl(config(), std::future::pending())
            .await
            .unwrap_or_else(|e| panic!("{database}: the crawl goes on past the page: {e}"));
        let rows = pages(&database).await;
        let urls: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(
            urls,
            [
                site.url(0, "/"),
                site.url(0, "/a"),
                site.url(0, "/b"),
                poison.clone()
            ],
            "{database}: {rows:?}"
        );
        for row in rows.iter().filter(|r| r.0 != poison) {
            assert_eq!(row.1, Some(200), "{database}: {row:?}");
        }
        let refused = rows.iter().find(|r| r.0 == poison).expect("the row");
        assert!(is_refusal(refused), "{database}: {refused:?}");
        assert_eq!(refused.1, None, "{database}: no status: {refused:?}");
        assert_eq!(
            link_count(&database).await,
            3,
            "{database}: the home page's links"
        );
        assert_eq!(summary.tally.pages, 4, "{database}: {summary}");
        let out = super::query::pipecrawl(super::query::args(&[
            "query",
            "--db",
            unquoted(&database),
            "broken",
            "--format",
            "csv",
        ]))
        .await;
        let broken = String::from_utf8_lossy(&out.stdout);
        assert!(
            broken.contains(&format!("{poison},,database_refused")),
            "{database}: `query broken` names it: {broken}"
        );

        let again = pipecrawl::crawl(config(), std::future::pending())
            .await
            .unwrap_or_else(|e| panic!("{database}: the rerun succeeds: {e}"));
        assert_eq!(
            site.count(&poison),
            1,
            "{database}: not asked again: {again}"
        );
    }
}

/// Crawls `site` from its home page into `database`, which refuses `/poison`'s row (its
/// failure's is taken), and returns the pages stored.
async fn crawl_refusing_poison(harness: &Harness, database: &str, site: &TestSite) -> Vec<Row> {
    refuse(
        database,
        "pages",
        "NEW.url LIKE '%/poison' AND NEW.error_kind IS NULL",
    )
    .await;
    let config = config_on(harness, database, &site.url(0, "/"), "");
    pipecrawl::crawl(config, std::future::pending())
        .await
        .unwrap_or_else(|e| panic!("{database}: the crawl goes on past the page: {e}"));
    pages(database).await
}

/// The URLs a refused page found are marked seen when it is parsed, before the database
/// refuses it: dropped with its values, they were never queued, and the seen cache
/// skipped the same link on every page read after it. `/c`, linked from the refused
/// `/poison` and from `/b`, read later, was never fetched (nor by the next run, which
/// reads stored links again only when the scope changes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_a_refused_page_found_is_still_crawled() {
    let harness = Harness::default();
    let (_server, databases) = both_backends(
        &harness,
        "a_url_a_refused_page_found_is_still_crawled (PostgreSQL half)",
        "refused_found",
    )
    .await;
    for database in databases {
        let site = TestSite::one_host(&[
            ("/", "<a href='/poison'>p</a><a href='/a'>a</a>"),
            ("/poison", "<title>Poison</title><a href='/c'>c</a>"),
            ("/a", "<a href='/b'>b</a>"),
            ("/b", "<a href='/c'>c</a>"),
            ("/c", "<title>C</title>"),
        ])
        .await;
        let rows = crawl_refusing_poison(&harness, &database, &site).await;
        let statuses: Vec<(&str, Option<i64>)> = rows
            .iter()
            .map(|r| (r.0.rsplit('/').next().unwrap_or_default(), r.1))
            .collect();
        assert_eq!(
            statuses,
            [
                ("", Some(200)),
                ("a", Some(200)),
                ("b", Some(200)),
                ("c", Some(200)),
                ("poison", None)
            ],
            "{database}: {rows:?}"
        );
    }
}

/// A refused page whose found URLs the database refuses too is stored without them, and
/// the crawl goes on: `/evil`'s frontier row is refused (where found URLs are first
/// written: `frontier_staged` on SQLite).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_page_is_stored_without_the_urls_the_database_refuses() {
    let harness = Harness::default();
    let (_server, databases) = both_backends(
        &harness,
        "a_refused_page_is_stored_without_the_urls_the_database_refuses (PostgreSQL half)",
        "refused_found_too",
    )
    .await;
    for database in databases {
        let site = TestSite::one_host(&[
            ("/", "<a href='/poison'>p</a><a href='/a'>a</a>"),
            ("/poison", "<title>Poison</title><a href='/evil'>e</a>"),
            ("/a", "<title>A</title>"),
        ])
        .await;
        let found = if is_postgres(&database) {
            "frontier"
        } else {
            "frontier_staged"
        };
        refuse(&database, found, "NEW.url LIKE '%/evil'").await;
        let rows = crawl_refusing_poison(&harness, &database, &site).await;
        let urls: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(
            urls,
            [site.url(0, "/"), site.url(0, "/a"), site.url(0, "/poison")],
            "{database}: {rows:?}"
        );
        assert!(is_refusal(&rows[2]), "{database}: {rows:?}");
        assert_eq!(site.count(&site.url(0, "/evil")), 0, "{database}");
    }
}

/// A revisit the database refuses leaves the page as the last visit stored it, with the
/// failure recorded beside it, as a revisit that failed for now does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revisit_the_database_refuses_leaves_the_page_as_stored() {
    let harness = Harness::default();
    let (_server, databases) = both_backends(
        &harness,
        "a_revisit_the_database_refuses_leaves_the_page_as_stored (PostgreSQL half)",
        "refused_revisit",
    )
    .await;
    for database in databases {
        let site = site_with_poison().await;
        let poison = site.url(0, "/poison");
        let every_second = "[recrawl]\ninterval_s = 1\n";
        let crawl = || {
            let config = config_on(&harness, &database, &site.url(0, "/"), every_second);
            pipecrawl::crawl(config, std::future::pending())
        };
        crawl().await.expect("the first crawl succeeds");
        refuse(&database, "pages", "NEW.url LIKE '%/poison'").await;
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let summary = crawl()
            .await
            .unwrap_or_else(|e| panic!("{database}: the revisits go on past the page: {e}"));
        assert_eq!(site.count(&poison), 2, "{database}: revisited: {summary}");
        let rows = pages(&database).await;
        let row = rows.iter().find(|r| r.0 == poison).expect("the row");
        assert_eq!(
            (row.1, row.2.as_deref(), row.3.as_deref()),
            (Some(200), Some("Poison"), None),
            "{database}: the page as stored: {row:?}"
        );
        assert_eq!(
            row.5.as_deref(),
            Some("database_refused"),
            "{database}: {row:?}"
        );
        assert_eq!(link_count(&database).await, 4, "{database}: links kept");
    }
}

/// A URL whose frontier row SQLite refuses (a user's trigger or CHECK on `frontier`) is
/// left out when the staged URLs are merged, and the crawl, and the next, go on without
/// it. PostgreSQL adds found URLs in the page batch, which the tests above cover.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_sqlite_refuses_to_queue_is_left_out_and_the_crawl_goes_on() {
    let harness = Harness::default();
    let database = format!("{:?}", harness.db_path().display().to_string());
    let site = site_with_poison().await;
    let poison = site.url(0, "/poison");
    refuse(&database, "frontier", "NEW.url LIKE '%/poison'").await;
    let config = || config_on(&harness, &database, &site.url(0, "/"), "");
    let summary = pipecrawl::crawl(config(), std::future::pending())
        .await
        .unwrap_or_else(|e| panic!("the crawl goes on past the URL: {e}"));
    let stored = pages(&database).await;
    let urls: Vec<&str> = stored.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(
        urls,
        [site.url(0, "/"), site.url(0, "/a"), site.url(0, "/b")],
        "{stored:?}"
    );
    assert!(stored.iter().all(|r| r.1 == Some(200)), "{stored:?}");
    assert_eq!(link_count(&database).await, 3, "the home page's links");
    assert_eq!(summary.tally.pages, 3, "{summary}");
    let staged: Vec<(i64,)> = rows(&database, "SELECT count(*) FROM frontier_staged", None).await;
    assert_eq!(staged, [(0,)], "the refused URL is not left staged");

    // A crawl killed before its merge leaves the URL staged, and the next start merges
    // first.
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", unquoted(&database)))
        .await
        .expect("open SQLite");
    sqlx::query(
        "INSERT INTO frontier_staged (url, host, depth, priority, redirect_hops, kind)
         VALUES ($1, '127.0.0.1', 1, 0, 0, 'page')",
    )
    .bind(&poison)
    .execute(&pool)
    .await
    .expect("stage the URL again");
    pool.close().await;
    let file = harness.write_config(&harness.test_config_text(&[site.url(0, "/")], ""));
    let out = super::query::pipecrawl(super::query::args(&[
        "crawl",
        "--config",
        file.to_str().unwrap_or_default(),
    ]))
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "the rerun succeeds: {stderr}");
    assert!(
        stderr.contains(&poison) && stderr.contains("poison refused"),
        "the warning names the URL and why: {stderr}"
    );
    assert_eq!(site.count(&poison), 0, "never fetched");
}

/// A refused row's error names the statement that stored it, on both backends: here a
/// link, whose page is stored as the failed fetch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_row_says_which_rows_were_being_stored() {
    let harness = Harness::default();
    let (_server, databases) = both_backends(
        &harness,
        "a_refused_row_says_which_rows_were_being_stored (PostgreSQL half)",
        "refused_link",
    )
    .await;
    for database in databases {
        let site = site_with_poison().await;
        refuse(&database, "links", "NEW.target_url LIKE '%/poison'").await;
        let config = config_on(&harness, &database, &site.url(0, "/"), "");
        pipecrawl::crawl(config, std::future::pending())
            .await
            .unwrap_or_else(|e| panic!("{database}: the crawl goes on past the link: {e}"));
        let rows = pages(&database).await;
        let refused = rows
            .iter()
            .find(|r| is_refusal(r))
            .expect("the refused page");
        assert_eq!(refused.0, site.url(0, "/"), "{database}: {rows:?}");
        let error = refused.4.as_deref().unwrap_or_default();
        assert!(
            error.contains("while storing a batch of links"),
            "{database}: {error}"
        );
    }
}

/// Seeds the database refuses one of are stored none of, on both backends, and the error
/// names that one, found by halves among many (a refusal is no outage, which PostgreSQL
/// would wait out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeds_the_database_refuses_one_of_are_refused_naming_it() {
    let harness = Harness::default();
    let (_server, databases) = both_backends(
        &harness,
        "seeds_the_database_refuses_one_of_are_refused_naming_it (PostgreSQL half)",
        "refused_seed",
    )
    .await;
    let urls: Vec<String> = (0..9)
        .map(|i| format!("http://{i}.test/"))
        .chain(["http://5.test/poison".to_owned()])
        .collect();
    for database in databases {
        refuse(&database, "frontier", "NEW.url LIKE '%/poison'").await;
        let config = config_on(&harness, &database, "http://0.test/", "");
        let scope = pipecrawl::scope::Scope::new(&config, &[]);
        let seeds: Vec<_> = urls
            .iter()
            .map(|u| scope.seed(&url::Url::parse(u).expect("a URL")))
            .collect();
        let store = pipecrawl::store::Store::open(unquoted(&database))
            .await
            .expect("open the store");
        match store.enqueue(&seeds).await {
            Err(pipecrawl::Error::RefusedUrl { url, source }) => {
                assert_eq!(url, "http://5.test/poison", "{database}");
                assert!(
                    source.to_string().contains("poison refused"),
                    "{database}: {source}"
                );
            }
            other => panic!("{database}: {other:?}"),
        }
        store.close().await.expect("close the store");
        let queued: Vec<(i64,)> = rows(&database, "SELECT count(*) FROM frontier", None).await;
        assert_eq!(queued, [(0,)], "{database}: none stored");
    }
}
