//! Prometheus metrics: the names in one place, and the process-wide recorder `serve`
//! installs for `GET /metrics`.
//!
//! The `metrics` macros cost next to nothing when no recorder is installed, so `crawl`
//! records the same numbers without exporting them.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::page::ErrorKind;
use crate::summary;

pub const PAGES: &str = "pipecrawl_pages_total";
pub const LINKS: &str = "pipecrawl_links_total";
/// Distinct links past `traps.max_links_per_page`, which pages had and were not stored.
pub const LINKS_LEFT_OUT: &str = "pipecrawl_links_left_out_total";
pub const ERRORS: &str = "pipecrawl_errors_total";
pub const RETRIES: &str = "pipecrawl_retries_total";
pub const FETCH_SECONDS: &str = "pipecrawl_fetch_seconds";
pub const RESPONSE_BYTES: &str = "pipecrawl_response_bytes";
pub const PARSE_SECONDS: &str = "pipecrawl_parse_seconds";
pub const STORE_BATCH_SECONDS: &str = "pipecrawl_store_batch_seconds";
pub const QUEUE_DEPTH: &str = "pipecrawl_queue_depth";
pub const IN_FLIGHT: &str = "pipecrawl_in_flight";
pub const STAGE_WORKERS: &str = "pipecrawl_stage_workers";
pub const FRONTIER_URLS: &str = "pipecrawl_frontier_urls";
pub const STATE: &str = "pipecrawl_state";
pub const REVISIT_LATE_SECONDS: &str = "pipecrawl_revisit_late_seconds";
pub const BUILD_INFO: &str = "pipecrawl_build_info";
/// The name Prometheus' client libraries give it, so that dashboards and alerts written
/// for any service (uptime, restarts: `changes(process_start_time_seconds[1h])`) work.
pub const START_TIME_SECONDS: &str = "process_start_time_seconds";
pub const RELOAD_SUCCESSFUL: &str = "pipecrawl_config_last_reload_successful";

const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
const BYTES_BUCKETS: &[f64] = &[1e3, 4e3, 16e3, 64e3, 256e3, 1e6, 4e6, 16e6];

/// How often recorded histogram samples are counted into their buckets.
const UPKEEP_EVERY: Duration = Duration::from_secs(1);

/// Installs the Prometheus recorder once per process and returns its handle.
pub fn install() -> Result<PrometheusHandle, String> {
    static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Suffix("_bytes".into()), BYTES_BUCKETS)
                })
                .and_then(|b| b.install_recorder())
                .map_err(|e| e.to_string())?;
            describe();
            zero_counters();
            started();
            keep_up(handle.clone()).map_err(|e| format!("cannot start metrics upkeep: {e}"))?;
            Ok(handle)
        })
        .clone()
}

/// Counts recorded histogram samples into their buckets every [`UPKEEP_EVERY`], for the
/// life of the process (as long as the recorder). A histogram holds every sample until
/// this or a scrape drains it, some 16 bytes each and a few each page: a service nobody
/// scrapes would grow by that for as long as it ran. The exporter leaves this to whoever
/// installs it without its own HTTP listener, as `serve` does.
fn keep_up(handle: PrometheusHandle) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || loop {
            std::thread::sleep(UPKEEP_EVERY);
            handle.run_upkeep();
        })
        .map(drop)
}

/// Each metric's HELP line, which Prometheus' and Grafana's metric browsers show beside
/// its name: without them an operator had README to read for what each one counts.
fn describe() {
    describe_counter!(
        PAGES,
        "Pages stored by this process, by status class (error: no response)"
    );
    describe_counter!(LINKS, "Links stored by this process");
    describe_counter!(
        LINKS_LEFT_OUT,
        "Distinct links past traps.max_links_per_page, counted and not stored"
    );
    describe_counter!(
        ERRORS,
        "Pages stored by this process without a usable response, by error kind"
    );
    describe_counter!(RETRIES, "Fetches that failed for now and were retried");
    describe_histogram!(
        FETCH_SECONDS,
        "Time each fetch took, as pages.elapsed_ms, in seconds"
    );
    describe_histogram!(
        RESPONSE_BYTES,
        "Body bytes of each response, read or (when not read) declared, as pages.bytes"
    );
    describe_histogram!(PARSE_SECONDS, "Time parsing a page took, in seconds");
    describe_histogram!(
        STORE_BATCH_SECONDS,
        "Time committing a batch of pages took, in seconds"
    );
    describe_gauge!(
        QUEUE_DEPTH,
        "Items waiting in a pipeline channel: to_fetch, to_parse, to_store"
    );
    describe_gauge!(
        IN_FLIGHT,
        "URLs handed out and not yet stored (waiting for their host, fetched, parsed or written)"
    );
    describe_gauge!(
        STAGE_WORKERS,
        "Workers of each pipeline stage (dispatch, fetch, parse, store) in each state now: \
         working, waiting for input, or blocked on the next stage's full queue (sampled each \
         second); a stage whose workers all work while the one before it is blocked limits \
         the crawl (/stats' pipeline has the shares since the start)"
    );
    describe_gauge!(
        FRONTIER_URLS,
        "URLs not yet handed out, as last counted for a scrape: queued (retries waiting \
         included; on PostgreSQL, with those other nodes hold leased), and staged (found, \
         waiting to join the queue); those this node handed out and waiting for their host \
         are in pipecrawl_in_flight"
    );
    describe_gauge!(
        STATE,
        "1 for the state the service is in (as /stats' state), 0 for the others: \
         running, paused, page_limit or stopping"
    );
    describe_gauge!(
        BUILD_INFO,
        "1, labelled with the version of pipecrawl serving these metrics"
    );
    describe_gauge!(
        START_TIME_SECONDS,
        "When the process started, in seconds since the Unix epoch"
    );
    describe_gauge!(
        RELOAD_SUCCESSFUL,
        "1 when the last SIGHUP's config was taken (and before any), 0 when it was \
         refused and the running config kept (the log says why)"
    );
    describe_gauge!(
        REVISIT_LATE_SECONDS,
        "How long after it fell due the last revisit stored was made (as /stats' \
         revisit_late_s): one that keeps growing says revisits fall behind [recrawl]"
    );
}

/// When the process started, as [`note_process_start`] noted it.
static PROCESS_START: OnceLock<std::time::SystemTime> = OnceLock::new();

/// Notes now as the process's start, for `process_start_time_seconds`: called first in
/// `main`, before the config and a seeds file (seconds, for a million seeds) are read and
/// the recorder installed.
pub fn note_process_start() {
    PROCESS_START.get_or_init(std::time::SystemTime::now);
}

/// What a scrape tells of the process from its start: its build, when it started, and
/// that its config (as started) loaded.
fn started() {
    gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    let since_epoch = PROCESS_START
        .get_or_init(std::time::SystemTime::now)
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    gauge!(START_TIME_SECONDS).set(since_epoch.as_secs_f64());
    config_reloaded(true);
}

/// Whether the last SIGHUP's config was taken (1; also before any), or kept the running
/// one (0): a reload that fails is a line in the log alone, and a service goes on with
/// the old config, seemingly fine, until the next restart refuses the file.
pub fn config_reloaded(taken: bool) {
    gauge!(RELOAD_SUCCESSFUL).set(f64::from(u8::from(taken)));
}

/// Every counter's series from the start, at 0: a series that appears only with its first
/// event cannot be alerted on (`increase()` sees nothing, `absent()` fires on a healthy
/// crawl).
fn zero_counters() {
    counter!(LINKS).absolute(0);
    counter!(LINKS_LEFT_OUT).absolute(0);
    counter!(RETRIES).absolute(0);
    for class in summary::STATUS_CLASSES {
        counter!(PAGES, "class" => class).absolute(0);
    }
    for kind in ErrorKind::ALL
        .map(ErrorKind::as_str)
        .into_iter()
        .chain([summary::TRAP])
    {
        counter!(ERRORS, "kind" => kind).absolute(0);
    }
}

pub fn fetched(elapsed: Duration, bytes: Option<u64>) {
    histogram!(FETCH_SECONDS).record(elapsed.as_secs_f64());
    if let Some(bytes) = bytes {
        histogram!(RESPONSE_BYTES).record(bytes as f64);
    }
}

pub fn parsed(elapsed: Duration) {
    histogram!(PARSE_SECONDS).record(elapsed.as_secs_f64());
}

pub fn stored_batch(elapsed: Duration) {
    histogram!(STORE_BATCH_SECONDS).record(elapsed.as_secs_f64());
}

pub fn page(class: &'static str, links: usize, left_out: u64, error: Option<&'static str>) {
    counter!(PAGES, "class" => class).increment(1);
    counter!(LINKS).increment(links as u64);
    counter!(LINKS_LEFT_OUT).increment(left_out);
    if let Some(kind) = error {
        counter!(ERRORS, "kind" => kind).increment(1);
    }
}

/// `rows` trap rows stored: pages with no response, of the error kind `trap`.
pub fn trapped(rows: u64) {
    unfetched(rows, summary::TRAP);
}

/// Rows of URLs never requested, stored with the error `kind`.
pub fn unfetched(rows: u64, kind: &'static str) {
    if rows == 0 {
        return;
    }
    counter!(PAGES, "class" => summary::status_class(None)).increment(rows);
    counter!(ERRORS, "kind" => kind).increment(rows);
}

/// A revisit was stored `late` after it fell due. No series before the first: there is
/// no lateness to give, as `/stats` gives null.
pub fn revisit_late(late: Duration) {
    gauge!(REVISIT_LATE_SECONDS).set(late.as_secs_f64());
}

pub fn retry() {
    counter!(RETRIES).increment(1);
}

pub fn queue_depths(to_fetch: usize, to_parse: usize, to_store: usize, in_flight: usize) {
    gauge!(QUEUE_DEPTH, "queue" => "to_fetch").set(to_fetch as f64);
    gauge!(QUEUE_DEPTH, "queue" => "to_parse").set(to_parse as f64);
    gauge!(QUEUE_DEPTH, "queue" => "to_store").set(to_store as f64);
    self::in_flight(in_flight);
}

/// The URLs in progress, as `/stats` counts them when scraped.
pub fn in_flight(in_flight: usize) {
    gauge!(IN_FLIGHT).set(in_flight as f64);
}

/// A `stage`'s workers in each phase now: [waiting, working, blocked].
pub fn stage_workers(stage: &'static str, [waiting, working, blocked]: [u64; 3]) {
    for (state, workers) in [
        ("waiting", waiting),
        ("working", working),
        ("blocked", blocked),
    ] {
        gauge!(STAGE_WORKERS, "stage" => stage, "state" => state).set(workers as f64);
    }
}

/// The frontier's waiting URLs, counted in the database as a scrape asks (as `/stats`
/// counts them): the work left is what a dashboard of a long crawl watches.
pub fn frontier_urls(queued: i64, staged: i64) {
    gauge!(FRONTIER_URLS, "state" => "queued").set(queued as f64);
    gauge!(FRONTIER_URLS, "state" => "staged").set(staged as f64);
}

/// The service's state, `current` of `all`: one series a state, so that an alert on a
/// crawl that stopped moving can leave out one paused, at its page limit or stopping.
pub fn state(all: &[&'static str], current: &str) {
    for &state in all {
        gauge!(STATE, "state" => state).set(f64::from(u8::from(state == current)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resident memory, in bytes.
    fn resident() -> u64 {
        let statm = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
        let pages: u64 = statm
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .expect("resident pages");
        pages * 4096
    }

    /// Histograms keep every sample until something drains them. A scrape does, but a
    /// service nobody scrapes must not hold every fetch time since it started. Samples
    /// take some 16 bytes each until drained, and memory drained is used again.
    #[test]
    fn samples_are_drained_without_a_scrape() {
        const SAMPLES: usize = 8_000_000;
        install().expect("the recorder");
        let parse_seconds = histogram!(PARSE_SECONDS);
        let record = || {
            let before = resident();
            for _ in 0..SAMPLES {
                parse_seconds.record(0.001);
            }
            resident().saturating_sub(before)
        };
        let first = record();
        // Draining millions of samples takes a while on a busy machine, and the other
        // tests of this process allocate meanwhile: one batch that fits in the memory
        // drained shows the upkeep runs; without it every batch grows by `first`.
        let mut later = Vec::new();
        while later.len() < 5 && later.last().is_none_or(|&grew| grew >= 64 << 20) {
            std::thread::sleep(UPKEEP_EVERY * 2);
            later.push(record());
        }
        assert!(
            later.last().is_some_and(|&grew| grew < 64 << 20),
            "{SAMPLES} samples took {first} bytes, each {SAMPLES} after: {later:?} more"
        );
    }
}
