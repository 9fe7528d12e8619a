//! Every count a user sees, checked against a count of the database's rows that says
//! what the figure's label says: the crawl's summary, `query stats`, and README's SQL.
//! One crawl mixes what the counts must tell apart: pages answered, 404s, redirects
//! ending at a 200 and at a 404, a URL robots.txt refuses, URLs cut at their host's page
//! budget and names cut at their domain's limit (trap rows, never requested), links out
//! of scope, and a server that keeps failing through its retries.

use std::collections::BTreeMap;

use super::query::{int, rows, text};
use super::raw::{Ending, RawReply, RawSite};
use super::site::{Resource, SiteBuilder, TestSite};
use super::Harness;

/// The names of the crawl, served through a proxy (`fetch.proxy`) that resolves none.
const HOME: &str = "http://www.site.test/";

fn status(code: u16, reason: &str) -> RawReply {
    let body = format!("<title>{code}</title>");
    RawReply::new(
        format!(
            "HTTP/1.1 {code} {reason}\r\nContent-Type: text/html\r\nContent-Length: {}",
            body.len()
        ),
        body,
        Ending::Close,
    )
}

/// The mixed site, and the config that crawls it.
async fn mixed_site() -> (RawSite, String) {
    let html = |body: &str| RawReply::ok("text/html", body.to_owned());
    let farm: String = (1..=4)
        .map(|i| format!("<a href='http://a{i}.farm.test/'>farm {i}</a>"))
        .collect();
    let budget: String = (1..=6)
        .map(|i| format!("<a href='/p{i}'>page {i}</a>"))
        .collect();
    let home = format!(
        "<title>Home</title><a href='/ok'>Fine</a> <a href='/gone'>Gone</a> \
         <a href='/moved'>Moved fine</a> <a href='/moved-gone'>Moved away</a> \
         <a href='/gone2'>Gone too</a> <a href='/a-private'>Secret</a> <a href='/flaky'>Flaky</a> \
         <a href='/loop'>Loop</a> \
         <a href='http://elsewhere.test/'>Outside</a> {farm} {budget}"
    );
    let mut routes = vec![
        (HOME, html(&home)),
        (
            "http://www.site.test/robots.txt",
            RawReply::ok("text/plain", "User-agent: *\nDisallow: /a-private\n"),
        ),
        (
            "http://www.site.test/ok",
            html("<title>Fine</title><a href='/'>Home</a>"),
        ),
        ("http://www.site.test/gone", status(404, "Not Found")),
        ("http://www.site.test/moved", RawReply::moved("/ok")),
        ("http://www.site.test/moved-gone", RawReply::moved("/gone2")),
        ("http://www.site.test/gone2", status(404, "Not Found")),
        (
            "http://www.site.test/flaky",
            status(503, "Service Unavailable"),
        ),
        ("http://www.site.test/loop", RawReply::moved("/loop")),
    ];
    let pages: Vec<String> = (1..=6)
        .map(|i| format!("http://www.site.test/p{i}"))
        .collect();
    let farm: Vec<String> = (1..=4).map(|i| format!("http://a{i}.farm.test/")).collect();
    let page = html("<title>Page</title>");
    routes.extend(
        pages
            .iter()
            .chain(&farm)
            .map(|u| (u.as_str(), page.clone())),
    );
    let site = RawSite::start(routes).await;
    let config = format!(
        "[scope]\nhosts = [\"www.site.test\", \"*.farm.test\"]\n\
         [fetch]\nproxy = \"http://{}\"\n\
         [retry]\nmax_attempts = 2\nbase_delay_ms = 10\nmax_delay_ms = 20\n\
         [traps]\nmax_hosts_per_domain = 2\nmax_pages_per_host = 11\n",
        site.authority
    );
    (site, config)
}

/// `(key, count)` rows of a grouping query, in key order.
async fn grouped(harness: &Harness, sql: &str) -> BTreeMap<String, i64> {
    let db = harness.db().await;
    let rows: Vec<(String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_all(&db.pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows.into_iter().collect()
}

/// The summary's figures and the database's counts of what their labels say.
/// Pages, links, pages by status class and errors by kind.
type Counts = (i64, i64, BTreeMap<String, i64>, BTreeMap<String, i64>);

async fn summary_and_database(summary: &pipecrawl::Summary, harness: &Harness) -> [Counts; 2] {
    let db = harness.db().await;
    let t = &summary.tally;
    let classes = grouped(
        harness,
        "SELECT CASE WHEN status IS NULL THEN 'error' ELSE (status / 100) || 'xx' END, count(*)
         FROM pages GROUP BY 1",
    )
    .await;
    let errors = grouped(
        harness,
        "SELECT error_kind, count(*) FROM pages WHERE error_kind IS NOT NULL GROUP BY 1",
    )
    .await;
    let said = |m: &BTreeMap<&'static str, u64>| -> BTreeMap<String, i64> {
        m.iter()
            .map(|(k, n)| ((*k).to_owned(), *n as i64))
            .collect()
    };
    [
        (
            t.pages as i64,
            t.links as i64,
            said(&t.by_class),
            said(&t.errors),
        ),
        (
            db.scalar("SELECT count(*) FROM pages").await,
            db.scalar("SELECT count(*) FROM links").await,
            classes,
            errors,
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_counts_what_the_database_holds() {
    let (_site, config) = mixed_site().await;
    let harness = Harness::default();
    let summary = harness.crawl(&[HOME.to_owned()], &config).await;
    let [said, held] = summary_and_database(&summary, &harness).await;
    assert_eq!(said, held, "{summary}");
}

/// Trap rows are pages stored, never fetched: a first crawl has no revisit among them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_crawl_cut_at_its_traps_says_no_revisits() {
    let (_site, config) = mixed_site().await;
    let harness = Harness::default();
    let summary = harness.crawl(&[HOME.to_owned()], &config).await;
    let traps = harness
        .db()
        .await
        .scalar("SELECT count(*) FROM pages WHERE error_kind = 'trap'")
        .await;
    assert!(traps > 0, "{summary}");
    assert!(!summary.to_string().contains("revisits"), "{summary}");
}

/// The summary's first line counts rows stored, among them rows of URLs never
/// requested (traps, robots.txt's refusals): a crawl that "crawled 24 pages" of which a
/// third were never fetched said so only in its error counts. A line says how many.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_says_how_many_of_the_pages_crawled_were_never_requested() {
    let (_site, config) = mixed_site().await;
    let harness = Harness::default();
    let summary = harness.crawl(&[HOME.to_owned()], &config).await;
    let unrequested = harness
        .db()
        .await
        .scalar(
            "SELECT count(*) FROM pages
             WHERE error_kind IN ('trap', 'robots', 'address_refused')",
        )
        .await;
    assert!(unrequested > 0, "{summary}");
    let said = format!(
        "\nnot requested: {unrequested} (of the pages crawled, rows of URLs never fetched: \
         traps, robots.txt's refusals, refused addresses)\n"
    );
    assert!(summary.to_string().contains(&said), "{said}\n{summary}");
}

/// Pages of one host, each linking to the next ten: a site far larger than its budget.
pub fn ladder(path: &str) -> String {
    let n: u32 = path.trim_start_matches("/l/").parse().unwrap_or(0);
    (n + 1..=n + 10)
        .map(|i| format!("<a href='/l/{i}'>{i}</a>"))
        .collect()
}

/// One host of [`ladder`] pages.
async fn ladder_site() -> TestSite {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add_prefix(&h, "/l/", Resource::Dynamic(ladder));
    b.start()
}

/// URLs found past a host's page budget are trap rows, stored as the staged URLs join the
/// frontier: by the writer, or by the dispatcher when a lease comes back short. Those
/// the dispatcher's merge cut were missing from the summary, by a few in most crawls
/// of a small window. In windows of several sizes, as the merges fall differently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_of_a_crawl_cut_at_its_page_budget_counts_every_trap_row() {
    let site = ladder_site().await;
    let mut wrong = Vec::new();
    for window in [1, 2, 5, 20, 1, 2, 5, 1, 2] {
        let harness = Harness::default();
        let config = format!(
            "[frontier]\nwindow = {window}\n[fetch]\nworkers = 4\n\
             [traps]\nmax_pages_per_host = 40\n"
        );
        let summary = harness.crawl(&[site.url(0, "/l/0")], &config).await;
        let [said, held] = summary_and_database(&summary, &harness).await;
        if said != held {
            wrong.push(format!("window {window}: said {said:?}, held {held:?}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// `query stats` as `(section, key) → value`.
async fn stats(harness: &Harness) -> BTreeMap<(String, String), i64> {
    let mut section = String::new();
    rows(harness, &["stats"])
        .await
        .iter()
        .filter_map(|r| {
            if !text(r, "section").is_empty() {
                section = text(r, "section").to_owned();
            }
            Some((
                (section.clone(), text(r, "key").to_owned()),
                int(r, "value")?,
            ))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_stats_counts_what_its_labels_say() {
    let (_site, config) = mixed_site().await;
    let harness = Harness::default();
    harness.crawl(&[HOME.to_owned()], &config).await;
    let got = stats(&harness).await;
    let db = harness.db().await;
    let mut want = BTreeMap::new();
    for (key, sql) in [
        ("pages", "SELECT count(*) FROM pages"),
        ("links", "SELECT count(*) FROM links"),
        (
            "linked URLs",
            "SELECT count(DISTINCT target_url) FROM links",
        ),
        ("bytes", "SELECT coalesce(sum(bytes), 0) FROM pages"),
        (
            "URLs queued",
            "SELECT count(*) FROM frontier WHERE state = 'queued'",
        ),
        (
            "URLs leased",
            "SELECT count(*) FROM frontier WHERE state = 'leased'",
        ),
        // Every state a URL's row may be in, as a status index's dashboard counts them.
        (
            "URLs done",
            "SELECT count(*) FROM frontier WHERE state = 'done'",
        ),
        (
            "URLs failed",
            "SELECT count(*) FROM frontier WHERE state = 'failed'",
        ),
    ] {
        want.insert(("total".to_owned(), key.to_owned()), db.scalar(sql).await);
    }
    // A host crawled: one with a page that is not a trap row (never requested).
    want.insert(
        ("total".to_owned(), "hosts".to_owned()),
        db.scalar(
            "SELECT count(DISTINCT substr(url, instr(url, '://') + 3,
                                    instr(substr(url, instr(url, '://') + 3), '/') - 1))
             FROM pages WHERE coalesce(error_kind, '') <> 'trap'",
        )
        .await,
    );
    for (section, sql) in [
        (
            "status",
            "SELECT coalesce(CAST(status AS TEXT), 'none'), count(*) FROM pages GROUP BY 1",
        ),
        (
            "status class",
            "SELECT CASE WHEN status IS NULL THEN 'error' ELSE (status / 100) || 'xx' END,
                    count(*) FROM pages GROUP BY 1",
        ),
        (
            "depth",
            "SELECT CAST(depth AS TEXT), count(*) FROM pages GROUP BY 1",
        ),
        (
            "error",
            "SELECT error_kind, count(*) FROM pages WHERE error_kind IS NOT NULL GROUP BY 1",
        ),
        // The `traps.KEY` each trap row's error names (here the domain's and the host's
        // budgets): "trap 5" told no one which rule to raise.
        (
            "trap rule",
            "SELECT substr(rest, 1, instr(rest, ' =') - 1), count(*)
             FROM (SELECT substr(error, instr(error, 'traps.')) AS rest
                   FROM pages WHERE error_kind = 'trap') AS named
             GROUP BY 1",
        ),
    ] {
        for (key, n) in grouped(&harness, sql).await {
            want.insert((section.to_owned(), key), n);
        }
    }
    let rules: Vec<&str> = want
        .keys()
        .filter(|(section, _)| section == "trap rule")
        .map(|(_, key)| key.as_str())
        .collect();
    assert_eq!(
        rules,
        ["traps.max_hosts_per_domain", "traps.max_pages_per_host"]
    );
    let hosts: Vec<&str> = got
        .keys()
        .filter(|(section, _)| section == "host")
        .map(|(_, key)| key.as_str())
        .collect();
    assert_eq!(hosts, ["a1.farm.test", "a2.farm.test", "www.site.test"]);
    let got: BTreeMap<_, _> = got
        .into_iter()
        .filter(|((section, key), _)| {
            [
                "total",
                "status",
                "status class",
                "depth",
                "error",
                "trap rule",
            ]
            .contains(&section.as_str())
                && key != "pages per second (average)"
        })
        .collect();
    assert_eq!(got, want);
}

/// README's "Broken links" question, as a user copies it into `query sql`.
fn readme_broken_links_sql() -> String {
    let readme = include_str!("../../README.md");
    let start = readme
        .find("-- Broken links")
        .expect("README asks for broken links");
    let end = start + readme[start..].find(';').expect("the question ends");
    readme[start..=end].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readmes_broken_links_sql_finds_the_links_query_broken_calls_broken() {
    let (_site, config) = mixed_site().await;
    let harness = Harness::default();
    harness.crawl(&[HOME.to_owned()], &config).await;
    let pairs = |rows: Vec<serde_json::Map<String, serde_json::Value>>, target: &str| {
        let mut pairs: Vec<(String, String)> = rows
            .iter()
            .filter(|r| ["", "broken"].contains(&text(r, "kind")))
            .map(|r| (text(r, "page").to_owned(), text(r, target).to_owned()))
            .collect();
        pairs.sort();
        pairs
    };
    let sql = readme_broken_links_sql();
    let readme = pairs(rows(&harness, &["sql", &sql]).await, "target_url");
    let broken = pairs(rows(&harness, &["broken"]).await, "target_url");
    assert!(!broken.is_empty());
    assert_eq!(readme, broken, "{sql}");
}

/// Runs the crawl of `seeds` again with `config`: what its summary says, and what the
/// database holds beyond `before`, the rows that run added.
async fn run_again(
    harness: &Harness,
    seeds: &[String],
    config: &str,
    before: &Counts,
) -> [Counts; 2] {
    let summary = harness.crawl(seeds, config).await;
    let [said, after] = summary_and_database(&summary, harness).await;
    let minus = |a: &BTreeMap<String, i64>, b: &BTreeMap<String, i64>| {
        a.iter()
            .map(|(k, n)| (k.clone(), n - b.get(k).copied().unwrap_or(0)))
            .filter(|&(_, n)| n != 0)
            .collect()
    };
    let held = (
        after.0 - before.0,
        after.1 - before.1,
        minus(&after.2, &before.2),
        minus(&after.3, &before.3),
    );
    [said, held]
}

/// A crawl resumed with a lower `traps.max_pages_per_host` cuts, as it starts, the URLs
/// its hosts have queued beyond it: trap rows that run stores, which its summary left
/// out (as it did those of the start's merge of what a killed run staged).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_of_a_run_resumed_with_a_lower_page_budget_counts_the_rows_it_cut() {
    let site = ladder_site().await;
    let harness = Harness::default();
    let seeds = [site.url(0, "/l/0")];
    let first = harness
        .crawl(&seeds, "[scope]\nmax_pages = 5\n[fetch]\nworkers = 1\n")
        .await;
    let [_, before] = summary_and_database(&first, &harness).await;
    let config = "[traps]\nmax_pages_per_host = 10\n";
    let [said, held] = run_again(&harness, &seeds, config, &before).await;
    assert!(held.3.get("trap").is_some_and(|&n| n > 0), "{held:?}");
    assert_eq!(said, held);
}

/// The URLs a killed run found and had not merged yet join the frontier as the next run
/// starts: those past their host's page budget are trap rows that run stores.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_of_a_run_after_a_kill_counts_the_trap_rows_of_what_was_staged() {
    let site = ladder_site().await;
    let harness = Harness::default();
    let seeds = [site.url(0, "/l/0")];
    let config = "[traps]\nmax_pages_per_host = 10\n";
    let first = harness.crawl(&seeds, config).await;
    let [_, before] = summary_and_database(&first, &harness).await;
    // What a kill right after a commit that found five more of the host's URLs leaves.
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(harness.db_path());
    let db = sqlx::SqlitePool::connect_with(options)
        .await
        .expect("open the database");
    sqlx::query(
        "INSERT INTO frontier_staged (url, host, depth, priority, discovered_from, redirect_hops, kind)
         SELECT url || '/more', host, depth + 1, priority - 1, id, 0, 'page' FROM frontier
         WHERE state = 'done' ORDER BY id LIMIT 5",
    )
    .execute(&db)
    .await
    .expect("stage URLs");
    db.close().await;
    let [said, held] = run_again(&harness, &seeds, config, &before).await;
    assert_eq!(held.3.get("trap"), Some(&5), "{held:?}");
    assert_eq!(said, held);
}

/// A crawl resumed with a wider scope queues the links the narrower one left out, within
/// their hosts' page budgets: those beyond are trap rows that run stores.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_of_a_run_resumed_with_a_wider_scope_counts_the_rows_it_cut() {
    let site = ladder_site().await;
    let harness = Harness::default();
    let seeds = [site.url(0, "/l/0")];
    let first = harness.crawl(&seeds, "[scope]\nmax_depth = 1\n").await;
    let [_, before] = summary_and_database(&first, &harness).await;
    let config = "[scope]\nmax_depth = 2\n[traps]\nmax_pages_per_host = 15\n";
    let [said, held] = run_again(&harness, &seeds, config, &before).await;
    assert!(held.3.get("trap").is_some_and(|&n| n > 0), "{held:?}");
    assert_eq!(said, held);
}

/// A crawl cut at its host's page budget stores its trap rows in one merge, never
/// requested: `fetched per …` counted them in the bucket of that merge, a spike of
/// 140,002 pages in one second of a crawl fetching 85 a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_stats_counts_the_pages_fetched_over_time_not_the_trap_rows() {
    let links: String = (0..60).map(|i| format!("<a href='/{i}'>{i}</a>")).collect();
    let site = TestSite::one_host(&[("/", links.as_str())]).await;
    let harness = Harness::default();
    harness
        .crawl(
            &[site.url(0, "/")],
            "[politeness]\ndelay_ms = 0\n[traps]\nmax_pages_per_host = 4\n",
        )
        .await;
    let got = stats(&harness).await;
    assert!(
        got[&("error".to_owned(), "trap".to_owned())] >= 50,
        "{got:#?}"
    );
    let over_time: i64 = got
        .iter()
        .filter(|((section, _), _)| section.starts_with("fetched per"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(over_time, 4, "{got:#?}");
}
