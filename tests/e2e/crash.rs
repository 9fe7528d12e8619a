//! kill -9 at many moments of one crawl, through the binary, compared row by row with an
//! uninterrupted crawl of the same site: what a resumed crawl stores must not depend on
//! where it was stopped.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Row, SqlitePool};

use super::cluster;
use super::graph;
use super::postgres::free_port;
use super::resume::{spawn, wait_for_requests};
use super::site::{Resource, SiteBuilder, TestSite};
use super::Harness;

/// One fetch and one parse at a time, so pages commit in the order they were handed out
/// and a page's depth is the same in every run; small channels and batches, so a kill
/// costs few pages; a window small beside the site, so found URLs wait in
/// `frontier_staged` between merges.
const CONFIG: &str = "[fetch]\nworkers = 1\n[parse]\nworkers = 1\n\
[channels]\nto_fetch = 4\nto_parse = 4\nto_store = 4\n\
[politeness]\ndelay_ms = 0\nper_host_concurrency = 1\n[retry]\nmax_attempts = 1\n\
[frontier]\nwindow = 16\n[scope]\nsitemaps = true\n[traps]\nmax_pages_per_host = 1000\n";

/// The pages a kill can cost, at most: those handed out and not yet committed.
const IN_FLIGHT: usize = 1 + 4 + 4 + 4 + 8;

/// Three hosts of generated pages (redirects, 404s, a 500, a PDF), each with a
/// robots.txt of Crawl-delay 0 naming a sitemap that lists its orphans.
async fn site() -> TestSite {
    let mut b = SiteBuilder::bind(3).await;
    graph::generate(&mut b, 3, 90, 0x5eed);
    for h in 0..3 {
        let authority = b.authority(h);
        let base = format!("http://{authority}");
        b.add(
            &authority,
            "/robots.txt",
            Resource::Typed(
                "text/plain",
                format!("User-agent: *\nCrawl-delay: 0\nSitemap: {base}/sitemap.xml\n")
                    .into_bytes(),
            ),
        );
        let urls: String = (0..3)
            .map(|k| format!("<url><loc>{base}/orphan/{k}</loc></url>"))
            .collect();
        b.add(
            &authority,
            "/sitemap.xml",
            Resource::Typed(
                "application/xml",
                format!("<urlset>{urls}</urlset>").into_bytes(),
            ),
        );
        b.delay_host(&authority, Duration::from_millis(2));
    }
    b.start()
}

/// `pipecrawl crawl --config config` to its end, which must be a success.
async fn run_to_the_end(config: &Path) {
    let config = config.to_owned();
    let out = tokio::task::spawn_blocking(move || cluster::run_to_the_end("crawl", &config))
        .await
        .expect("join the crawl");
    assert!(out.status.success(), "the crawl failed: {out:?}");
}

/// The config of a crawl of `site` into `harness`'s database, with `extra`.
fn config(harness: &Harness, site: &TestSite, extra: &str) -> PathBuf {
    let seeds: Vec<String> = (0..3).map(|i| site.url(i, "/")).collect();
    let text = harness.config_text(&seeds, &format!("{CONFIG}{extra}"));
    harness.write_config(&format!("{text}batch_size = 8\n"))
}

/// Everything a run leaves that must not depend on where it was stopped.
#[derive(Debug, PartialEq)]
struct Outcome {
    pages: BTreeSet<String>,
    links: BTreeSet<String>,
    frontier: BTreeSet<String>,
    /// Budgets, hosts, remembered settings, the schema.
    state: BTreeSet<String>,
    top: String,
    stats: String,
}

async fn rows(pool: &SqlitePool, sql: &str) -> BTreeSet<String> {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_all(pool)
        .await
        .expect("read the database")
        .into_iter()
        .map(|r| r.get::<String, _>(0))
        .collect()
}

fn query(db: &Path, words: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_pipecrawl"))
        .args(["query", "--db"])
        .arg(db)
        .args(words)
        .output()
        .expect("run pipecrawl query");
    assert!(out.status.success(), "query {words:?}: {out:?}");
    String::from_utf8(out.stdout).expect("UTF-8 answer")
}

async fn outcome(harness: &Harness) -> Outcome {
    let path = harness.db_path();
    let options = SqliteConnectOptions::new().filename(&path).read_only(true);
    let pool = SqlitePool::connect_with(options)
        .await
        .expect("open the database");
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&pool)
        .await
        .expect("check integrity");
    assert_eq!(integrity, "ok");
    // FTS5 checks its indexes only when it may write: on a copy.
    let copy = harness.dir.path().join("copy.db");
    std::fs::copy(&path, &copy).expect("copy the database");
    let rw = SqlitePool::connect_with(SqliteConnectOptions::new().filename(&copy))
        .await
        .expect("open the copy");
    for fts in ["pages_fts", "anchors_fts"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {fts} ({fts}) VALUES ('integrity-check')"
        )))
        .execute(&rw)
        .await
        .unwrap_or_else(|e| panic!("{fts}: {e}"));
    }
    rw.close().await;
    let outcome = Outcome {
        pages: rows(
            &pool,
            "SELECT json_array(url, status, title, depth, final_url, error_kind) FROM pages",
        )
        .await,
        links: rows(
            &pool,
            "SELECT json_array(p.url, l.target_url, l.anchor_text, l.rel)
             FROM links l JOIN pages p ON p.id = l.source_id",
        )
        .await,
        frontier: rows(
            &pool,
            "SELECT json_array(url, state, kind, depth, attempts) FROM frontier",
        )
        .await,
        state: rows(
            &pool,
            "SELECT json_array(host, urls) FROM host_budget
             UNION ALL SELECT json_array(host, robots_status, robots_txt, crawl_delay_ms) FROM hosts
             UNION ALL SELECT json_array(key, value) FROM crawl_state
             UNION ALL SELECT json_array(key, value) FROM writer_state
             UNION ALL SELECT json_array(name, sql) FROM sqlite_master",
        )
        .await,
        top: query(&path, &["top", "--limit", "50"]),
        stats: query(&path, &["--format", "csv", "stats"])
            .lines()
            .filter(|l| !l.starts_with("fetched per") && !l.contains("per second"))
            .collect::<Vec<_>>()
            .join("\n"),
    };
    pool.close().await;
    outcome
}

/// Kills the crawl (SIGKILL) once the database holds `pages` pages, or when it exits.
async fn kill_at(harness: &Harness, config: &Path, pages: i64) {
    let mut child = spawn("crawl", config);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().expect("poll pipecrawl").is_some() {
            return;
        }
        let stored = if harness.db_path().exists() {
            harness
                .db()
                .await
                .try_scalar("SELECT count(*) FROM pages")
                .await
                .unwrap_or(0)
        } else {
            0
        };
        if stored >= pages {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the crawl stalled at {stored} pages"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    child.kill().expect("kill -9 pipecrawl");
    child.wait().expect("reap pipecrawl");
}

/// `outcome` of a crawl of `from`'s site as if it had crawled `to`'s: the two sites
/// differ in their ports only.
fn as_on(outcome: Outcome, from: &TestSite, to: &TestSite) -> Outcome {
    let rename = |s: &str| {
        from.authorities
            .iter()
            .zip(&to.authorities)
            .fold(s.to_owned(), |s, (f, t)| s.replace(f, t))
    };
    let all = |set: BTreeSet<String>| set.iter().map(|s| rename(s)).collect();
    Outcome {
        pages: all(outcome.pages),
        links: all(outcome.links),
        frontier: all(outcome.frontier),
        state: all(outcome.state),
        top: rename(&outcome.top),
        stats: rename(&outcome.stats),
    }
}

/// The rows of `want` and `got` are the same set; else up to ten each way.
fn assert_same(name: &str, want: &BTreeSet<String>, got: &BTreeSet<String>) {
    let missing: Vec<_> = want.difference(got).take(10).collect();
    let extra: Vec<_> = got.difference(want).take(10).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{name}: missing after the kills {missing:#?}, extra {extra:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_killed_again_and_again_ends_as_an_uninterrupted_one() {
    let reference_site = site().await;
    let reference = Harness::default();
    run_to_the_end(&config(&reference, &reference_site, "")).await;
    let want = outcome(&reference).await;
    let total = i64::try_from(want.pages.len()).expect("a small site");
    assert!(total > 250, "the site is {total} pages");

    let site = site().await;
    let harness = Harness::default();
    let config = config(&harness, &site, "");
    // The last once all pages are stored: while the crawl merges, indexes and counts.
    let kills = [10, 40, 70, 90, 99, 100];
    for percent in kills {
        kill_at(&harness, &config, total * percent / 100).await;
    }
    run_to_the_end(&config).await;

    let got = as_on(outcome(&harness).await, &site, &reference_site);
    assert_same("pages", &want.pages, &got.pages);
    assert_same("links", &want.links, &got.links);
    assert_same("frontier", &want.frontier, &got.frontier);
    assert_same("state", &want.state, &got.state);
    assert_eq!(want.top, got.top, "query top");
    assert_eq!(want.stats, got.stats, "query stats");
    let mut counts: HashMap<String, usize> = HashMap::new();
    for url in site.requested_urls() {
        *counts.entry(url).or_default() += 1;
    }
    let again: BTreeMap<_, _> = counts.iter().filter(|(_, &n)| n > 1).collect();
    assert!(
        again.len() <= kills.len() * IN_FLIGHT,
        "{} URLs fetched again: {again:?}",
        again.len()
    );
}

/// A service killed while it revisits pages (their links replaced, their counts moved),
/// again and again, keeps the pages and links an uninterrupted crawl stores: the site
/// does not change, so neither may they.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_killed_while_it_revisits_keeps_what_an_uninterrupted_crawl_stores() {
    let reference_site = site().await;
    let reference = Harness::default();
    run_to_the_end(&config(&reference, &reference_site, "")).await;
    let want = outcome(&reference).await;

    let site = site().await;
    let harness = Harness::default();
    let admin = format!(
        "[recrawl]\ninterval_s = 1\n[admin]\nlisten = \"127.0.0.1:{}\"\n",
        free_port()
    );
    let config = config(&harness, &site, &admin);
    let total = want.pages.len();
    for round in 1..=4 {
        let mut child = spawn("serve", &config);
        // The first crawl, then revisits, each round some more.
        wait_for_requests(&site, total + round * total / 3).await;
        child.kill().expect("kill -9 pipecrawl serve");
        child.wait().expect("reap pipecrawl serve");
    }
    let mut child = spawn("serve", &config);
    // Every page stored, however many revisits a loaded machine made meanwhile (each
    // page falls due a second after it is stored): the rounds count requests, not pages.
    // Stuck only when no page is stored for a minute.
    let total_pages = i64::try_from(total).expect("a small site");
    let (mut stored, mut deadline) = (-1, Instant::now());
    loop {
        let count = harness.page_count().await;
        if count >= total_pages {
            break;
        }
        if count > stored {
            (stored, deadline) = (count, Instant::now() + Duration::from_secs(60));
        }
        assert!(
            Instant::now() < deadline,
            "{count} of {total_pages} pages stored, none for a minute"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_for_requests(&site, site.hit_count() + 50).await;
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("send SIGTERM");
    assert!(sent.success());
    let status = tokio::task::spawn_blocking(move || child.wait().expect("reap pipecrawl"))
        .await
        .expect("join the service");
    assert!(status.success(), "serve stopped by SIGTERM: {status:?}");

    let got = as_on(outcome(&harness).await, &site, &reference_site);
    assert_same("pages", &want.pages, &got.pages);
    assert_same("links", &want.links, &got.links);
    assert_eq!(want.top, got.top, "query top");
    let db = harness.db().await;
    assert_eq!(
        db.wrong_link_counts().await,
        0,
        "link counts agree with the links"
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM links").await,
        i64::try_from(want.links.len()).expect("a small site"),
        "a page's links were stored twice"
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM frontier WHERE state = 'leased'")
            .await,
        0
    );
}
