//! What `crawl` writes on a terminal: colours and the progress display, as the terminal
//! and the user's environment (`NO_COLOR`, `TERM`) ask. `script` gives the crawl a
//! terminal and writes out what was drawn on it.
#![cfg(target_os = "linux")]

use std::process::Command;

use super::site::TestSite;
use super::Harness;

/// What a crawl of a two-page site wrote on its terminal's stderr (its stdout, the
/// summary, left out), logging at `info`, with `env` set.
async fn crawl_on_a_terminal(env: &[(&'static str, &'static str)]) -> String {
    let site = TestSite::one_host(&[("/", "<a href='/a'>a</a>"), ("/a", "<p>a")]).await;
    crawl_on_a_terminal_from(site.url(0, "/"), "", env).await
}

/// What a crawl from `seed`, `extra` in its config, wrote on its terminal's stderr, as
/// [`crawl_on_a_terminal`].
pub(super) async fn crawl_on_a_terminal_from(
    seed: String,
    extra: &str,
    env: &[(&'static str, &'static str)],
) -> String {
    let harness = Harness::default();
    let config = harness.write_config(&harness.test_config_text(&[seed], extra));
    let crawl = format!(
        "{} crawl --config {} 2>&1 >/dev/null",
        env!("CARGO_BIN_EXE_pipecrawl"),
        config.display()
    );
    let env = env.to_vec();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("script")
            .args(["-qec", &crawl, "/dev/null"])
            .env("RUST_LOG", "info")
            .env_remove("NO_COLOR")
            .envs(env)
            .output()
            .expect("run script")
    })
    .await
    .expect("the binary ran");
    let terminal = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{:?}: {terminal}", out.status);
    terminal
}

/// Whether `text` holds a colour or another graphic rendition (`ESC [ … m`).
fn coloured(text: &str) -> bool {
    text.split("\u{1b}[").skip(1).any(|after| {
        after
            .find(|c: char| !(c.is_ascii_digit() || c == ';'))
            .is_some_and(|end| after[end..].starts_with('m'))
    })
}

/// Log lines on a terminal were coloured whatever the user asked: `NO_COLOR` (which
/// no-color.org asks every program to honour, as users who cannot tell colours apart or
/// whose screen reader reads the codes set it) and a `dumb` terminal (Emacs' shell, an
/// editor's pane), which shows the codes as text, `^[[2m2026-…^[[0m ^[[32m INFO`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_are_not_coloured_under_no_color_nor_on_a_dumb_terminal() {
    let plain = crawl_on_a_terminal(&[("TERM", "xterm")]).await;
    assert!(coloured(&plain), "a terminal that takes colours: {plain:?}");
    for env in [
        [("TERM", "xterm"), ("NO_COLOR", "1")],
        [("TERM", "dumb"); 2],
    ] {
        let terminal = crawl_on_a_terminal(&env).await;
        assert!(terminal.contains("INFO"), "{env:?}: {terminal:?}");
        assert!(!coloured(&terminal), "{env:?}: {terminal:?}");
    }
}

/// On a `dumb` terminal (or one with no `TERM`), the progress bar was not drawn, and no
/// progress line written in its place: a crawl of hours said nothing until its end. It
/// writes the lines a file or a journal gets now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dumb_terminal_gets_progress_lines_in_place_of_the_bar() {
    // Slower than a progress line's 5 s, so that one is due while it is fetched.
    let site = TestSite::slow_home(std::time::Duration::from_secs(6), "<p>slow").await;
    let terminal = crawl_on_a_terminal_from(site.url(0, "/"), "", &[("TERM", "dumb")]).await;
    assert!(
        terminal.contains("pages/s") && terminal.contains("in_progress=1"),
        "{terminal:?}"
    );
}
