//! The crawler as a library: what a program that calls [`pipecrawl::crawl`] sees of it
//! besides the crawl and its database.

use std::process::Command;
use std::time::Duration;

use pipecrawl::config::ConfigError;
use pipecrawl::{Config, Error};

use super::site::TestSite;
use super::Harness;

/// Set in the copy of this test binary that [`a_crawl_a_program_runs_draws_nothing_on_its_terminal`]
/// runs on a terminal: that copy is the program embedding the crawler.
const EMBEDDED: &str = "PIPECRAWL_TEST_EMBEDDED";

/// A program that calls `crawl` owns its terminal: it may draw its own progress, or a
/// text interface. `crawl` drew its spinner there (`⠁ 00:00:00 0 pages, 0.0/s, …`),
/// taken for the `crawl` command's, whenever the program's stderr was a terminal; two
/// crawls at once drew two, over each other. The bar is the command's alone now. This
/// test runs a copy of itself, the embedding program, under `script`, which gives it a
/// terminal and writes out what was drawn on it.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_a_program_runs_draws_nothing_on_its_terminal() {
    if std::env::var_os(EMBEDDED).is_some() {
        let site = TestSite::one_host(&[("/", "<a href='/a'>a</a>"), ("/a", "<p>a")]).await;
        let summary = Harness::default().crawl(&[site.url(0, "/")], "").await;
        assert_eq!(summary.tally.pages, 2, "{summary:?}");
        return;
    }
    let program = format!(
        "{} library::a_crawl_a_program_runs_draws_nothing_on_its_terminal --exact 2>&1 >/dev/null",
        std::env::current_exe().expect("this test binary").display()
    );
    let out = tokio::task::spawn_blocking(move || {
        Command::new("script")
            .args(["-qec", &program, "/dev/null"])
            .env(EMBEDDED, "1")
            // A terminal the bar would be drawn on, whatever runs the tests.
            .env("TERM", "xterm")
            .output()
            .expect("run script")
    })
    .await
    .expect("the program ran");
    let terminal = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{:?}: {terminal}", out.status);
    assert!(
        !terminal.contains("pages"),
        "drawn on the program's terminal: {terminal:?}"
    );
}

/// A program may set a config's fields itself, after `Config::from_toml` checked them.
/// One that set `fetch.workers` (or `parse.workers`) to 0 started a crawl that waited
/// for ever, saying nothing; it is refused now, as the same value in a file is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_set_in_code_to_no_workers_is_refused_not_left_waiting() {
    let site = TestSite::one_host(&[("/", "<p>home")]).await;
    let harness = Harness::default();
    let text = harness.test_config_text(&[site.url(0, "/")], "");
    for key in ["fetch.workers", "parse.workers"] {
        let mut config = Config::from_toml(&text, "test config").expect("a valid config");
        match key {
            "fetch.workers" => config.fetch.workers = 0,
            _ => config.parse.workers = 0,
        }
        // Bounds the test on a crawl that never ends: no judge of speed.
        let ended = tokio::time::timeout(
            Duration::from_secs(60),
            pipecrawl::crawl(config, std::future::pending()),
        )
        .await
        .unwrap_or_else(|_| panic!("{key} = 0: the crawl did not end"));
        match ended {
            Err(Error::Config(ConfigError::Invalid { problems, .. })) => {
                assert_eq!(problems.len(), 1, "{problems:?}");
                assert_eq!(problems[0].key, key, "{problems:?}");
            }
            other => panic!("{key} = 0: {other:?}"),
        }
    }
}
