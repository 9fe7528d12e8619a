//! A host whose robots.txt cannot be had (a 5xx, a port that refuses) among others, in a
//! crawl with a politeness delay: its URLs end, or wait for their retries, without a
//! request, so they must not take the host's turns, which only requests need.

use std::process::Command;
use std::time::{Duration, Instant};

use super::postgres::TestPostgres;
use super::site::{Resource, SiteBuilder};
use super::Harness;

/// How long a crawl may go without storing a row before it counts as stalled.
const STALL: Duration = Duration::from_secs(30);

/// The URLs of the host that cannot be asked.
const DEAD_URLS: usize = 50;

/// Rows in `pages` of `database` (a SQLite path or a `postgres://` URL); 0 until it
/// can be read.
async fn stored(database: &str) -> i64 {
    let sql = "SELECT count(*) FROM pages";
    if database.starts_with("postgres") {
        let Ok(pool) = sqlx::PgPool::connect(database).await else {
            return 0;
        };
        let n = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap_or(0);
        pool.close().await;
        return n;
    }
    if !std::path::Path::new(database).exists() {
        return 0;
    }
    super::Db::open(std::path::Path::new(database))
        .await
        .try_scalar(sql)
        .await
        .unwrap_or(0)
}

/// Runs `config` into `database`, failing once no row has been stored for [`STALL`]: the
/// test is judged by what the crawl does, not by how long a loaded machine takes.
async fn crawl_unless_stalled(config: pipecrawl::Config, database: &str) -> pipecrawl::Summary {
    // A task of its own, so that its reads never keep the crawl from being polled.
    let watched = database.to_owned();
    let mut stalled = tokio::spawn(async move {
        let (mut seen, mut deadline) = (-1, Instant::now() + STALL);
        while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let now = stored(&watched).await;
            if now > seen {
                (seen, deadline) = (now, Instant::now() + STALL);
            }
        }
        seen
    });
    tokio::select! {
        ended = pipecrawl::crawl(config, std::future::pending()) => {
            stalled.abort();
            ended.expect("the crawl")
        }
        seen = &mut stalled => panic!("{database}: no row stored for {STALL:?}, {seen:?} in all"),
    }
}

/// `pipecrawl query stats` of `database`.
fn stats(database: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_pipecrawl"))
        .args(["query", "--db", database, "stats"])
        .output()
        .expect("run pipecrawl query");
    assert!(out.status.success(), "query stats: {out:?}");
    String::from_utf8(out.stdout).expect("UTF-8 answer")
}

/// With `delay_ms = 60000`, a host whose robots.txt answers 503 (or whose port refuses)
/// has its 50 URLs all end as rows while the delay would allow one request, on either
/// backend, and another host (with no delay of its own) is crawled meanwhile. Each of
/// those URLs, though nothing was sent, took a full turn of the host's delay: a broad
/// crawl's dead hosts went at one URL a turn, and held the crawl's end that long.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_refused_for_want_of_robots_txt_take_no_politeness_turn() {
    let test = "urls_refused_for_want_of_robots_txt";
    let server = TestPostgres::start(test);
    for refusing in [false, true] {
        let harness = Harness::default();
        let sqlite = harness.db_path().display().to_string();
        let name = format!("dead{}", u8::from(refusing));
        for database in TestPostgres::with_sqlite(server.as_ref(), &sqlite, &name).await {
            let mut b = SiteBuilder::bind(2).await;
            let (down, live) = (b.authority(0), b.authority(1));
            b.add(&down, "/robots.txt", Resource::Status(503, "down".into()));
            b.add_home_and_pages(&live, 5);
            let site = b.start();
            let (_held, refused) = super::refusing_address([127, 0, 0, 3]);
            let dead = if refusing { refused.to_string() } else { down };
            let mut seeds: Vec<String> = (0..DEAD_URLS)
                .map(|i| format!("http://{dead}/p{i}"))
                .collect();
            seeds.push(site.url(1, "/"));
            let extra = format!(
                "[retry]\nmax_attempts = 1\nbase_delay_ms = 60000\nmax_delay_ms = 60000\n\
                 [politeness]\ndelay_ms = 60000\n\
                 [[politeness.host]]\npattern = {:?}\ndelay_ms = 0\n",
                live.split(':').next().unwrap_or_default()
            );
            let text = harness
                .test_config_text(&seeds, &extra)
                .replace(&format!("{sqlite:?}"), &format!("{database:?}"));
            let config = pipecrawl::Config::from_toml(&text, "test").expect("a valid config");
            let summary = crawl_unless_stalled(config, &database).await;

            let case = format!("{database}, refusing: {refusing}");
            let dead_rows = summary.tally.errors.values().sum::<u64>();
            assert_eq!(dead_rows, DEAD_URLS as u64, "{case}: {:?}", summary.tally);
            assert_eq!(summary.tally.pages, DEAD_URLS as u64 + 6, "{case}");
            let dead_hits = site
                .hits()
                .iter()
                .filter(|h| h.path != "/robots.txt" && h.host == dead)
                .count();
            assert_eq!(dead_hits, 0, "{case}: no page of the dead host was asked");
            let said = stats(&database);
            let kind = if refusing {
                "connect"
            } else {
                "robots_unavailable"
            };
            assert!(
                said.lines()
                    .any(|l| l.contains(kind) && l.contains(&DEAD_URLS.to_string())),
                "{case}: query stats: {said}"
            );
        }
    }
}
