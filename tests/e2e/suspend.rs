//! A crawler that stops running for a while and goes on: a laptop's lid closed and opened,
//! a VM paused and resumed, `kill -STOP` and `kill -CONT` (Ctrl-Z and `fg`). The gap is
//! the crawler's, not its sites'.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::cli::send_signal;
use super::site::{Resource, SiteBuilder, TestSite};
use super::Harness;

/// A `crawl` of `config` started, once it has asked `site` for `url`.
async fn crawl_once_asked(config: &Path, site: &TestSite, url: &str) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pipecrawl"))
        .args(["crawl", "--config", config.to_str().unwrap_or_default()])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the pipecrawl binary");
    let deadline = Instant::now() + Duration::from_secs(120);
    while site.count(url) == 0 {
        let ended = child.try_wait().expect("poll pipecrawl");
        assert!(
            ended.is_none() && Instant::now() < deadline,
            "{url} was never asked ({ended:?})"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child
}

/// A one-host site whose home page links to `path`, which is `resource`.
async fn home_linking_to(path: &str, resource: Resource) -> TestSite {
    let mut builder = SiteBuilder::bind(1).await;
    let host = builder.authority(0);
    let home = format!(r#"<a href="{path}">{path}</a>"#);
    builder.add(&host, "/", Resource::Html(home));
    builder.add(&host, path, resource);
    builder.start()
}

/// The stderr of the crawl `child`, once it has ended, as it must, with success.
async fn succeeded(child: Child) -> String {
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("wait for the crawl")
        .expect("the crawl's output");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    stderr
}

/// A request in flight while the crawler was stopped for longer than `fetch.timeout_ms`
/// had its answer waiting when it went on; its timeout fired on the time the stop took,
/// and the URL was stored as a `timeout` that no retry was left to mend.
#[tokio::test(flavor = "multi_thread")]
async fn a_fetch_in_flight_while_the_crawler_is_stopped_does_not_time_out() {
    let answer = Resource::Html("<title>slow</title>".to_owned());
    let site = home_linking_to(
        "/slow",
        Resource::Slow(Duration::from_millis(500), Box::new(answer)),
    )
    .await;
    let slow = site.url(0, "/slow");
    let harness = Harness::default();
    let config = harness.write_config(
        &harness.test_config_text(&[site.url(0, "/")], "[fetch]\ntimeout_ms = 2000\n"),
    );
    let child = crawl_once_asked(&config, &site, &slow).await;
    send_signal(child.id(), "STOP");
    tokio::time::sleep(Duration::from_secs(4)).await;
    send_signal(child.id(), "CONT");
    let stderr = succeeded(child).await;
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

/// The seconds of the day a log line's timestamp (`2026-12-07T23:23:35.226704Z`) gives.
fn logged_at(line: &str) -> Option<f64> {
    let time = line.get(11..26)?;
    let mut parts = time.split(':');
    let hours: f64 = parts.next()?.parse().ok()?;
    let minutes: f64 = parts.next()?.parse().ok()?;
    let seconds: f64 = parts.next()?.parse().ok()?;
    Some(hours * 3600.0 + minutes * 60.0 + seconds)
}

/// The progress lines are written every 5 s; a crawler stopped for a while wrote, the
/// moment it went on, one for every 5 s it was stopped, all alike, a minute's stop a
/// dozen lines in a few milliseconds.
#[tokio::test(flavor = "multi_thread")]
async fn a_crawler_stopped_for_a_while_writes_no_burst_of_progress_lines() {
    let (open, held) = tokio::sync::watch::channel(false);
    let answer = Resource::Html("<title>held</title>".to_owned());
    let site = home_linking_to("/held", Resource::Held(held, Box::new(answer))).await;
    let url = site.url(0, "/held");
    let harness = Harness::default();
    let config = harness.write_config(&harness.test_config_text(&[site.url(0, "/")], ""));
    let child = crawl_once_asked(&config, &site, &url).await;
    send_signal(child.id(), "STOP");
    tokio::time::sleep(Duration::from_secs(16)).await;
    send_signal(child.id(), "CONT");
    tokio::time::sleep(Duration::from_secs(2)).await;
    open.send_replace(true);
    let stderr = succeeded(child).await;
    let times: Vec<f64> = stderr
        .lines()
        .filter(|line| line.contains("pipecrawl::progress"))
        .filter_map(logged_at)
        .collect();
    assert!(
        times
            .windows(2)
            .all(|pair| !(0.0..1.0).contains(&(pair[1] - pair[0]))),
        "progress lines less than a second apart: {stderr}"
    );
}
