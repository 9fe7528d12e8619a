//! Prometheus metrics: the names in one place, and the process-wide recorder `serve`
//! installs for `GET /metrics`.
//!
//! The `metrics` macros cost next to nothing when no recorder is installed, so `crawl`
//! records the same numbers without exporting them.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::page::ErrorKind;
use crate::summary;

pub const PAGES: &str = "pipecrawl_pages_total";
pub const LINKS: &str = "pipecrawl_links_total";
pub const ERRORS: &str = "pipecrawl_errors_total";
pub const RETRIES: &str = "pipecrawl_retries_total";
pub const FETCH_SECONDS: &str = "pipecrawl_fetch_seconds";
pub const RESPONSE_BYTES: &str = "pipecrawl_response_bytes";
pub const PARSE_SECONDS: &str = "pipecrawl_parse_seconds";
pub const STORE_BATCH_SECONDS: &str = "pipecrawl_store_batch_seconds";
pub const QUEUE_DEPTH: &str = "pipecrawl_queue_depth";
pub const IN_FLIGHT: &str = "pipecrawl_in_flight";

const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
const BYTES_BUCKETS: &[f64] = &[1e3, 4e3, 16e3, 64e3, 256e3, 1e6, 4e6, 16e6];

/// Installs the Prometheus recorder once per process and returns its handle.
pub fn install() -> Result<PrometheusHandle, String> {
    static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Suffix("_bytes".into()), BYTES_BUCKETS)
                })
                .and_then(|b| b.install_recorder())
                .inspect(|_| zero_counters())
                .map_err(|e| e.to_string())
        })
        .clone()
}

/// Every counter's series from the start, at 0: a series that appears only with its first
/// event cannot be alerted on (`increase()` sees nothing, `absent()` fires on a healthy
/// crawl).
fn zero_counters() {
    counter!(LINKS).absolute(0);
    counter!(RETRIES).absolute(0);
    for class in summary::STATUS_CLASSES {
        counter!(PAGES, "class" => class).absolute(0);
    }
    for kind in ErrorKind::ALL {
        counter!(ERRORS, "kind" => kind.as_str()).absolute(0);
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

pub fn page(class: &'static str, links: usize, error: Option<&'static str>) {
    counter!(PAGES, "class" => class).increment(1);
    counter!(LINKS).increment(links as u64);
    if let Some(kind) = error {
        counter!(ERRORS, "kind" => kind).increment(1);
    }
}

pub fn retry() {
    counter!(RETRIES).increment(1);
}

pub fn queue_depths(to_fetch: usize, to_parse: usize, to_store: usize, in_flight: usize) {
    gauge!(QUEUE_DEPTH, "queue" => "to_fetch").set(to_fetch as f64);
    gauge!(QUEUE_DEPTH, "queue" => "to_parse").set(to_parse as f64);
    gauge!(QUEUE_DEPTH, "queue" => "to_store").set(to_store as f64);
    gauge!(IN_FLIGHT).set(in_flight as f64);
}
