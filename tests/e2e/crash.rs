//! kill -9 at many moments of one crawl, through the binary, compared row by row with an
//! uninterrupted crawl of the same site: what a resumed crawl stores must not depend on
//! where it was stopped.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{PgPool, Row, SqlitePool};

use super::cluster;
use super::graph;
use super::postgres::TestPostgres;
use super::resume::{spawn, wait_for_requests};
use super::site::{Resource, SiteBuilder, TestSite};
use super::{Harness, ADMIN_ANY_PORT};

/// One fetch and one parse at a time, so pages commit in the order they were handed out
/// and a page's depth is the same in every run; small channels and batches, so a kill
/// costs few pages; a window small beside the site, so found URLs wait in
/// `frontier_staged` between merges.
const CONFIG: &str = "[fetch]\nworkers = 1\n[parse]\nworkers = 1\n\
[channels]\nto_fetch = 4\nto_parse = 4\nto_store = 4\n\
[politeness]\ndelay_ms = 0\nper_host_concurrency = 1\n[retry]\nmax_attempts = 1\n\
[frontier]\nwindow = 16\n";

/// The pages a kill can cost, at most: those handed out and not yet committed.
const IN_FLIGHT: usize = 1 + 4 + 4 + 4 + 8;

/// Three hosts of generated pages (redirects, 404s, a 500, a PDF), each with a
/// robots.txt of Crawl-delay 0 naming a sitemap that lists its orphans.
async fn site() -> TestSite {
    site_with("", &[]).await
}

/// [`site`] whose robots.txt disallows `/p/2`, `/p/20`…`/p/29` (linked from their own
/// host's pages and the others'), whose sitemaps list one of those too, and where
/// `/hop` redirects to the next host's disallowed `/p/21`, `/leap` to its `/p/5`.
async fn fenced_site() -> TestSite {
    site_with("Disallow: /p/2\n", &["/p/25", "/hop", "/leap"]).await
}

/// [`site`] with `rules` in robots.txt and `listed` paths in the sitemaps besides the
/// orphans, and on every host `/hop` and `/leap` redirecting to the next host.
async fn site_with(rules: &str, listed: &[&str]) -> TestSite {
    let mut b = SiteBuilder::bind(3).await;
    graph::generate(&mut b, 3, 90, 0x5eed);
    for h in 0..3 {
        let authority = b.authority(h);
        let base = format!("http://{authority}");
        let next = format!("http://{}", b.authority((h + 1) % 3));
        b.add(
            &authority,
            "/robots.txt",
            Resource::Typed(
                "text/plain",
                format!("User-agent: *\nCrawl-delay: 0\n{rules}Sitemap: {base}/sitemap.xml\n")
                    .into_bytes(),
            ),
        );
        b.add(
            &authority,
            "/hop",
            Resource::Redirect(301, format!("{next}/p/21")),
        );
        b.add(
            &authority,
            "/leap",
            Resource::Redirect(302, format!("{next}/p/5")),
        );
        let urls: String = (0..3)
            .map(|k| format!("/orphan/{k}"))
            .chain(listed.iter().map(|&path| path.to_owned()))
            .map(|path| format!("<url><loc>{base}{path}</loc></url>"))
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

/// `pipecrawl crawl --config config` to its end, which must be a success: what it
/// printed.
async fn run_to_the_end(config: &Path) -> String {
    let config = config.to_owned();
    let out = tokio::task::spawn_blocking(move || cluster::run_to_the_end("crawl", &config))
        .await
        .expect("join the crawl");
    assert!(out.status.success(), "the crawl failed: {out:?}");
    String::from_utf8(out.stdout).expect("a UTF-8 summary")
}

/// The config of a crawl of `site` into `harness`'s database, with `extra`.
fn config(harness: &Harness, site: &TestSite, extra: &str) -> PathBuf {
    config_in(harness, site, ("", "max_pages_per_host = 1000\n"), extra)
}

/// [`config`] with `scope` lines in `[scope]` and `traps` lines in `[traps]`.
fn config_in(
    harness: &Harness,
    site: &TestSite,
    (scope, traps): (&str, &str),
    extra: &str,
) -> PathBuf {
    let seeds: Vec<String> = (0..3).map(|i| site.url(i, "/")).collect();
    let settings = format!("{CONFIG}[scope]\nsitemaps = true\n{scope}[traps]\n{traps}{extra}");
    let text = harness.config_text(&seeds, &settings);
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

async fn rows<'p, E: sqlx::Executor<'p>>(pool: E, sql: &str) -> BTreeSet<String>
where
    for<'r> String: sqlx::Decode<'r, E::Database> + sqlx::Type<E::Database>,
    usize: sqlx::ColumnIndex<<E::Database as sqlx::Database>::Row>,
    <E::Database as sqlx::Database>::Arguments: sqlx::IntoArguments<E::Database>,
{
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
                       WHERE key <> 'one_off_run_started_ms' -- a time, each run's own
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
    let stored = || async {
        if !harness.db_path().exists() {
            return 0;
        }
        let db = harness.db().await;
        db.try_scalar("SELECT count(*) FROM pages")
            .await
            .unwrap_or(0)
    };
    kill_once_stored(spawn("crawl", config), pages, stored).await;
}

/// Kills `child` (SIGKILL) once `stored` counts `pages` pages, or returns when it exits
/// first. It kills it and fails once no page has been stored for a minute: a loaded
/// machine stretches a run (a PostgreSQL run waits out the killed one's leases before its
/// first page), a stalled one stores nothing.
async fn kill_once_stored<F: std::future::Future<Output = i64>>(
    mut child: Child,
    pages: i64,
    stored: impl Fn() -> F,
) {
    let (mut seen, mut deadline) = (-1, Instant::now());
    while child.try_wait().expect("poll pipecrawl").is_none() {
        let now = stored().await;
        if now > seen {
            (seen, deadline) = (now, Instant::now() + Duration::from_secs(60));
        }
        if now >= pages || Instant::now() >= deadline {
            child.kill().expect("kill -9 pipecrawl");
            child.wait().expect("reap pipecrawl");
            assert!(now >= pages, "the crawl stalled at {now} pages");
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
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
    let settings = ("", "max_pages_per_host = 1000\n");
    let kills = [10, 40, 70, 90, 99, 100];
    let total = killed_again_and_again(site, settings, &kills, Compare::Everything).await;
    assert!(total > 250, "the site is {total} pages");
}

/// Pages linking to URLs robots.txt disallows on their own host and on others, a
/// sitemap listing one, redirects across hosts into a disallowed path and out of one,
/// `scope.url_filter` rules: the rows stored at parse time (`robots`, never queued)
/// and those refused at fetch must be the same whatever the kills cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_of_disallowed_and_filtered_urls_killed_again_and_again_ends_as_an_uninterrupted_one(
) {
    let scope = "url_filter = ['-/p/3[0-4]$', '-/p/6', '+.']\n";
    let settings = (scope, "max_pages_per_host = 1000\n");
    let kills = [5, 15, 30, 50, 70, 85];
    killed_again_and_again(fenced_site, settings, &kills, Compare::PagesAndLinks).await;
}

/// A crawl of [`fenced_site`] cut by its host budgets and by `scope.max_pages`, killed
/// as those come near: the budgets hold across the runs as they hold in one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_killed_as_its_budgets_run_out_ends_as_an_uninterrupted_one() {
    let scope = "url_filter = ['-/p/3[0-4]$', '+.']\nmax_pages = 170\n";
    let settings = (scope, "max_pages_per_host = 70\n");
    let kills = [30, 60, 80, 90, 95];
    let within = Budgets {
        pages: 170,
        per_host: 70,
    };
    killed_again_and_again(fenced_site, settings, &kills, Compare::Within(within)).await;
}

/// [`fenced_site`]'s crawl on PostgreSQL, killed again and again, ends with the pages
/// and links of an uninterrupted crawl on SQLite, but for the pages' depths: a run
/// started after a kill crawls on while the killed run's leased hosts wait out their
/// lease, and a page stored before a shorter path to it is found keeps the longer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_of_disallowed_urls_on_postgresql_killed_again_and_again_ends_as_an_uninterrupted_one(
) {
    let test = "a_crawl_of_disallowed_urls_on_postgresql_killed_again_and_again";
    let Some(server) = TestPostgres::start(test) else {
        return;
    };
    let scope = "url_filter = ['-/p/3[0-4]$', '-/p/6', '+.']\n";
    let settings = (scope, "max_pages_per_host = 1000\n");
    let reference_site = fenced_site().await;
    let reference = Harness::default();
    run_to_the_end(&config_in(&reference, &reference_site, settings, "")).await;
    let sqlite = SqlitePool::connect_with(
        SqliteConnectOptions::new()
            .filename(reference.db_path())
            .read_only(true),
    )
    .await
    .expect("open the database");
    let want = (
        rows(&sqlite, PAGE_ROWS).await,
        rows(&sqlite, LINK_ROWS).await,
    );
    let total = i64::try_from(want.0.len()).expect("a small site");

    let site = fenced_site().await;
    let harness = Harness::default();
    let database = server.database("fenced").await;
    // A run starts once the killed run's leases ran out.
    let config = config_in(
        &harness,
        &site,
        settings,
        "[cluster]\nlease_ttl_ms = 1000\n",
    );
    let text = std::fs::read_to_string(&config).expect("read the config");
    let sqlite_path = format!("{:?}", harness.db_path().display().to_string());
    std::fs::write(
        &config,
        text.replace(&sqlite_path, &format!("{database:?}")),
    )
    .expect("write the config");
    let pg = PgPool::connect(&database).await.expect("connect");
    let stored = || async {
        sqlx::query_scalar("SELECT count(*) FROM pages")
            .fetch_one(&pg)
            .await
            .unwrap_or(0)
    };
    for percent in [5, 15, 30, 50, 70, 85] {
        kill_once_stored(spawn("crawl", &config), total * percent / 100, stored).await;
    }
    let before = stored_by_kind(&database).await;
    let said = run_to_the_end(&config).await;
    assert_summary_counts(&said, &before, &stored_by_kind(&database).await);
    let rename = |set: BTreeSet<String>| -> BTreeSet<String> {
        set.iter()
            .map(|row| {
                site.authorities
                    .iter()
                    .zip(&reference_site.authorities)
                    .fold(row.clone(), |row, (from, to)| row.replace(from, to))
            })
            .collect()
    };
    let got = (
        rename(rows(&pg, PAGE_ROWS).await),
        rename(rows(&pg, LINK_ROWS).await),
    );
    assert_same("pages", &want.0, &got.0);
    assert_same("links", &want.1, &got.1);
}

/// A page row as one text, the same on SQLite and PostgreSQL, its depth left out.
const PAGE_ROWS: &str = "SELECT url || ' ' || coalesce(CAST(status AS TEXT), '-') || ' ' \
    || coalesce(title, '-') || ' ' || coalesce(final_url, '-') \
    || ' ' || coalesce(error_kind, '-') FROM pages";

/// A link row as one text, the same on SQLite and PostgreSQL.
const LINK_ROWS: &str = "SELECT p.url || ' ' || l.target_url || ' ' || l.anchor_text || ' ' \
    || coalesce(l.rel, '-') FROM links l JOIN pages p ON p.id = l.source_id";

/// What a crawl killed again and again must have as an uninterrupted one has.
#[derive(Clone, Copy)]
enum Compare {
    /// Every row, the frontier's and the state's too.
    Everything,
    /// The pages but for their depths ([`depths_left_out`]), links and what queries say
    /// of them. Not the frontier: a URL robots.txt
    /// disallows, found first on its own host's page, is a row never tried (attempts 0),
    /// found first on another host's, one refused as it was tried (attempts 1), and
    /// a kill changes which page commits first.
    PagesAndLinks,
    /// The pages requested, within these budgets.
    Within(Budgets),
}

/// The budgets a crawl was cut by: which pages fill them depends on timing (hosts
/// ready at once, what a batch of the writer holds), in an uninterrupted crawl too.
#[derive(Clone, Copy)]
struct Budgets {
    pages: usize,
    per_host: usize,
}

/// Of an outcome's pages, those requested: `url → row`.
fn requested(outcome: &Outcome) -> BTreeMap<String, String> {
    outcome
        .pages
        .iter()
        .filter_map(|row| {
            let fields: Vec<serde_json::Value> = serde_json::from_str(row).ok()?;
            let kind = fields.get(5)?.as_str().unwrap_or_default();
            let unrequested = ["trap", "robots", "address_refused"].contains(&kind);
            (!unrequested).then(|| Some((fields.first()?.as_str()?.to_owned(), row.clone())))?
        })
        .collect()
}

/// `want` and `got` requested as many pages, within `budgets`, stored alike the pages
/// both requested, with the same links.
fn assert_alike_within(budgets: Budgets, want: &Outcome, got: &Outcome) {
    let (w, g) = (requested(want), requested(got));
    assert_eq!(
        w.len(),
        budgets.pages,
        "the uninterrupted crawl's pages requested"
    );
    assert_eq!(
        g.len(),
        budgets.pages,
        "the pages requested after the kills"
    );
    let mut per_host: HashMap<&str, usize> = HashMap::new();
    for url in g.keys() {
        *per_host
            .entry(url.split('/').nth(2).unwrap_or_default())
            .or_default() += 1;
    }
    assert!(
        per_host.values().all(|&n| n <= budgets.per_host),
        "pages requested per host: {per_host:?}"
    );
    let both: BTreeSet<&String> = w.keys().filter(|url| g.contains_key(*url)).collect();
    let rows = |m: &BTreeMap<String, String>| -> BTreeSet<String> {
        both.iter().map(|url| m[*url].clone()).collect()
    };
    assert_same("pages requested by both", &rows(&w), &rows(&g));
    let links = |o: &Outcome| -> BTreeSet<String> {
        o.links
            .iter()
            .filter(|row| {
                serde_json::from_str::<Vec<serde_json::Value>>(row)
                    .ok()
                    .and_then(|f| f.first()?.as_str().map(str::to_owned))
                    .is_some_and(|source| both.contains(&source))
            })
            .cloned()
            .collect()
    };
    assert_same(
        "links of the pages both requested",
        &links(want),
        &links(got),
    );
}

/// Crawls a `make_site` to its end with `settings` (`[scope]` and `[traps]` lines),
/// then another killed at each of `percents` of the pages the first stored and run to
/// its end; the two must end alike (as `compare` says), and the last
/// run's summary must count what it stored. Returns the pages the uninterrupted crawl
/// stored.
async fn killed_again_and_again<F: std::future::Future<Output = TestSite>>(
    make_site: fn() -> F,
    settings: (&str, &str),
    percents: &[i64],
    compare: Compare,
) -> i64 {
    let reference_site = make_site().await;
    let reference = Harness::default();
    run_to_the_end(&config_in(&reference, &reference_site, settings, "")).await;
    let want = outcome(&reference).await;
    let total = i64::try_from(want.pages.len()).expect("a small site");

    let site = make_site().await;
    let harness = Harness::default();
    let config = config_in(&harness, &site, settings, "");
    // The last once all pages are stored: while the crawl merges, indexes and counts.
    for percent in percents {
        kill_at(&harness, &config, total * percent / 100).await;
    }
    let sqlite = harness.db_path().display().to_string();
    let before = stored_by_kind(&sqlite).await;
    let said = run_to_the_end(&config).await;
    assert_summary_counts(&said, &before, &stored_by_kind(&sqlite).await);

    let got = as_on(outcome(&harness).await, &site, &reference_site);
    let (want, got) = match compare {
        Compare::PagesAndLinks => (depths_left_out(want), depths_left_out(got)),
        Compare::Everything | Compare::Within(_) => (want, got),
    };
    match compare {
        Compare::Everything | Compare::PagesAndLinks => {
            assert_same("pages", &want.pages, &got.pages);
            assert_same("links", &want.links, &got.links);
            assert_eq!(want.top, got.top, "query top");
            assert_eq!(want.stats, got.stats, "query stats");
        }
        Compare::Within(budgets) => assert_alike_within(budgets, &want, &got),
    }
    if let Compare::Everything = compare {
        assert_same("frontier", &want.frontier, &got.frontier);
        assert_same("state", &want.state, &got.state);
    }
    let mut counts: HashMap<String, usize> = HashMap::new();
    for url in site.requested_urls() {
        *counts.entry(url).or_default() += 1;
    }
    let again: BTreeMap<_, _> = counts.iter().filter(|(_, &n)| n > 1).collect();
    assert!(
        again.len() <= percents.len() * IN_FLIGHT,
        "{} URLs fetched again: {again:?}",
        again.len()
    );
    total
}

/// `outcome` without its pages' depths, in its rows and in its stats. A page keeps the
/// depth of the shortest path found before it was stored, and on [`fenced_site`] which
/// path comes first is the hosts' timing, in an uninterrupted crawl too: a `robots` row
/// is stored as a page linking to it is parsed, one on its own host or one nearer the
/// seeds on another, and `/leap` in a sitemap each run reads again leads to the next
/// host's `/p/5` at depth 1 while the pages' links lead there deeper.
fn depths_left_out(outcome: Outcome) -> Outcome {
    let pages = outcome
        .pages
        .into_iter()
        .map(|row| {
            let mut fields: Vec<serde_json::Value> =
                serde_json::from_str(&row).expect("a page row");
            if let Some(depth) = fields.get_mut(3) {
                *depth = serde_json::Value::Null;
            }
            serde_json::Value::from(fields).to_string()
        })
        .collect();
    let stats = outcome
        .stats
        .lines()
        .filter(|line| !line.starts_with("depth,"))
        .collect::<Vec<_>>()
        .join("\n");
    Outcome {
        pages,
        stats,
        ..outcome
    }
}

/// Pages stored in `database` (SQLite's path, or PostgreSQL's URL), by `error_kind`
/// (`""` for none, `"*"` for all); none before the database is made.
async fn stored_by_kind(database: &str) -> BTreeMap<String, i64> {
    let mut by_kind = BTreeMap::new();
    if !database.starts_with("postgres") && !Path::new(database).exists() {
        return by_kind;
    }
    for kind in BY_KIND {
        let n: Vec<(i64,)> = super::recrawl::rows(database, STORED_OF_KIND, Some(kind)).await;
        by_kind.insert(kind.to_owned(), n.first().map_or(0, |n| n.0));
    }
    by_kind
}

/// The kinds [`stored_by_kind`] counts.
const BY_KIND: [&str; 5] = ["*", "", "trap", "robots", "address_refused"];

/// The pages of the kind `$1`, of [`BY_KIND`].
const STORED_OF_KIND: &str =
    "SELECT count(*) FROM pages WHERE $1 IN ('*', coalesce(error_kind, ''))";

/// The summary `said` of a run that found `before` and left `after` (no revisits):
/// "crawled N pages" counts the rows it added, "not requested: M" those of URLs never
/// fetched, "robots K" among the errors the robots rows.
fn assert_summary_counts(
    said: &str,
    before: &BTreeMap<String, i64>,
    after: &BTreeMap<String, i64>,
) {
    let added = |kinds: &[&str]| -> i64 {
        kinds
            .iter()
            .map(|&k| after.get(k).copied().unwrap_or(0) - before.get(k).copied().unwrap_or(0))
            .sum()
    };
    let number_after = |label: &str| -> i64 {
        said.split(label)
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    assert_eq!(
        number_after("crawled "),
        added(&["*"]),
        "pages crawled: {said}"
    );
    assert_eq!(
        number_after("not requested: "),
        added(&["trap", "robots", "address_refused"]),
        "not requested: {before:?} → {after:?}: {said}"
    );
    assert_eq!(
        number_after(" robots "),
        added(&["robots"]),
        "robots rows: {said}"
    );
    assert_eq!(
        number_after(" trap "),
        added(&["trap"]),
        "trap rows: {said}"
    );
    assert!(!said.contains("revisits"), "{said}");
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
    let admin = format!("[recrawl]\ninterval_s = 1\n{ADMIN_ANY_PORT}");
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
