//! A crawler that stops running for a while and goes on: a laptop's lid closed and opened,
//! a VM paused and resumed, `kill -STOP` and `kill -CONT` (Ctrl-Z and `fg`). The gap is
//! the crawler's, not its sites'.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::cli::send_signal;
use super::site::{Resource, SiteBuilder};
use super::Harness;

/// A request in flight while the crawler was stopped for longer than `fetch.timeout_ms`
/// had its answer waiting when it went on; its timeout fired on the time the stop took,
/// and the URL was stored as a `timeout` that no retry was left to mend.
#[tokio::test(flavor = "multi_thread")]
async fn a_fetch_in_flight_while_the_crawler_is_stopped_does_not_time_out() {
    let mut builder = SiteBuilder::bind(1).await;
    let host = builder.authority(0);
    builder.add(
        &host,
        "/",
        Resource::Html(r#"<a href="/slow">slow</a>"#.to_owned()),
    );
    let answer = Resource::Html("<title>slow</title>".to_owned());
    builder.add(
        &host,
        "/slow",
        Resource::Slow(Duration::from_millis(500), Box::new(answer)),
    );
    let site = builder.start();
    let slow = site.url(0, "/slow");
    let harness = Harness::default();
    let config = harness.write_config(
        &harness.test_config_text(&[site.url(0, "/")], "[fetch]\ntimeout_ms = 2000\n"),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_pipecrawl"))
        .args(["crawl", "--config", config.to_str().unwrap_or_default()])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the pipecrawl binary");
    let deadline = Instant::now() + Duration::from_secs(120);
    while site.count(&slow) == 0 {
        let ended = child.try_wait().expect("poll pipecrawl");
        assert!(
            ended.is_none() && Instant::now() < deadline,
            "/slow was never asked ({ended:?})"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    send_signal(child.id(), "STOP");
    tokio::time::sleep(Duration::from_secs(4)).await;
    send_signal(child.id(), "CONT");
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("wait for the crawl")
        .expect("the crawl's output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let row = harness
        .db()
        .await
        .page(&slow)
        .await
        .expect("a row for /slow");
    assert_eq!(row.status, Some(200), "{row:?}\n{stderr}");
    assert!(
        stderr.contains("did not run for"),
        "the gap is said: {stderr}"
    );
}
