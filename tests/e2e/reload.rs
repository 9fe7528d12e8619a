//! SIGHUP to `pipecrawl serve` through the binary, key by key: what a reload applies, and
//! what its log says of the keys it leaves as they were.
#![cfg(target_os = "linux")]

use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::cli::{send_signal, started_with_open};
use super::site::{Resource, SiteBuilder, TestSite};
use super::{Harness, ADMIN_ANY_PORT};

/// A service logging at `info`, its stderr read line by line, on a config whose seed is
/// the test site's home page and whose admin API listens on a port the system picks.
struct LoggedService {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl LoggedService {
    /// Starts the service on the config `extra` completes, and returns once the site
    /// has its first request.
    async fn start(harness: &Harness, site: &TestSite, extra: &str) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_pipecrawl"));
        command
            .args(["serve", "--config"])
            .arg(write_config(harness, site, extra))
            .env("RUST_LOG", "info");
        let mut child = started_with_open(command, &harness.db_path()).await;
        let lines = super::stderr_lines(&mut child);
        super::resume::wait_for_requests(site, 1).await;
        Self { child, lines }
    }

    /// Rewrites the config to what `extra` completes and sends SIGHUP.
    fn reload(&self, harness: &Harness, site: &TestSite, extra: &str) {
        write_config(harness, site, extra);
        send_signal(self.child.id(), "HUP");
    }

    /// The log's lines up to the reload's outcome: the line saying it was applied, or
    /// that the config was kept; all of them, should the service end first. The bound
    /// is on a hang: 10 s for each line (an idle service logs none) failed a reload that
    /// a loaded machine slowed.
    fn reload_log(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(300);
        let mut seen = Vec::new();
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            let done =
                line.contains("config reloaded") || line.contains("keeping the running config");
            seen.push(line);
            if done {
                break;
            }
        }
        seen.join("\n")
    }

    /// Stops the service with SIGTERM and checks that it exited 0.
    fn stop(mut self, log: &str) {
        send_signal(self.child.id(), "TERM");
        let status = self.child.wait().expect("the service ends");
        assert!(status.success(), "{status:?}\n{log}");
    }
}

fn write_config(harness: &Harness, site: &TestSite, extra: &str) -> PathBuf {
    harness.write_config(
        &harness.config_text(&[site.url(0, "/")], &format!("{ADMIN_ANY_PORT}{extra}")),
    )
}

/// What a service started on the config `before` completes logs of a reload to the one
/// `after` completes, up to the reload's outcome; the service is stopped after it.
async fn log_of_reload(before: &str, after: &str) -> String {
    let mut builder = SiteBuilder::bind(1).await;
    let host = builder.authority(0);
    builder.add(&host, "/", Resource::Html("<title>Home</title>".into()));
    let site = builder.start();
    let harness = Harness::default();
    let service = LoggedService::start(&harness, &site, before).await;
    service.reload(&harness, &site, after);
    let log = service.reload_log();
    service.stop(&log);
    log
}

/// Whether `log` has the warning naming `key` as one a reload leaves as it was.
fn names_kept_key(log: &str, key: &str) -> bool {
    log.contains(&format!(
        "SIGHUP: {key} changed, which a running service keeps as it started with: restart \
         it for the change"
    ))
}

/// A SIGHUP after editing a key the running service keeps (its politeness delay, after a
/// site asked for fewer requests) names the key: before, the log said only "config
/// reloaded: seeds and scope updated (other settings need a restart)", as it does after
/// any reload, and the old delay went on as if the new one held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_names_the_changed_keys_that_only_a_restart_applies() {
    let log = log_of_reload(
        "[politeness]\ndelay_ms = 0\n",
        "[politeness]\ndelay_ms = 5000\n",
    )
    .await;
    assert!(names_kept_key(&log, "politeness.delay_ms"), "{log}");
}

/// `cluster.node_id` set in the config and changed names it: a running node keeps the
/// name it took (its leases, its pause and its scope are kept under it), and the reload
/// said only "config reloaded", as if the node now ran under the new name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_changing_the_node_id_names_it() {
    let log = log_of_reload(
        "[cluster]\nnode_id = \"crawler-1\"\n",
        "[cluster]\nnode_id = \"crawler-2\"\n",
    )
    .await;
    assert!(names_kept_key(&log, "cluster.node_id"), "{log}");
}

/// A reload whose wider scope queued what the old one left out logged "the scope differs
/// from the last run's", as a restart's pass does, though no run had ended: what changed
/// is the config before the reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reloads_passes_say_they_compare_with_the_config_before_it() {
    let mut builder = SiteBuilder::bind(1).await;
    let host = builder.authority(0);
    builder.add(
        &host,
        "/",
        Resource::Html("<a href='/a'>A</a><a href='/b'>B</a>".into()),
    );
    for path in ["/a", "/b"] {
        builder.add(&host, path, Resource::Html("<title>Leaf</title>".into()));
    }
    let site = builder.start();
    let harness = Harness::default();
    let narrow = "[scope]\nexclude = ['/a$']\n";
    let service = LoggedService::start(&harness, &site, narrow).await;
    // robots.txt, `/` and `/b` asked: `/b` is leased only once the home page's links are
    // stored, `/a` among them, left out.
    super::resume::wait_for_requests(&site, 3).await;
    service.reload(&harness, &site, "");
    let log = service.reload_log();
    assert!(
        log.contains("the scope differs from the config before this reload"),
        "{log}"
    );
    assert!(!log.contains("the last run's"), "{log}");
    service.stop(&log);
}
