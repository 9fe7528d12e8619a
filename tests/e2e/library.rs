//! The crawler as a library: what a program that calls [`pipecrawl::crawl`] sees of it
//! besides the crawl and its database.

use std::process::Command;

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
