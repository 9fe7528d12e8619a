//! Per-host limits, and the gate that makes every request to a host respect them.
//!
//! The frontier schedules a host's URLs at most `per_host_concurrency` at a time and one
//! `delay` apart, so fetchers rarely wait. But a dispatched job can start later than
//! planned (a busy pool, a robots.txt fetched first, a `Retry-After`), so each request
//! also passes the [`HostGate`], which spaces the actual requests to a host by its delay
//! whatever the path that led there.
//!
//! The delay counts from the later of two moments: the previous request's start, and the
//! moment its answer began to arrive. The server has surely seen a request once it
//! answers, so however slow the network or a loaded machine, two requests never reach a
//! host closer than the delay. (With a delay, that also means one request at a time for
//! hosts that answer more slowly than the delay.)

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::PolitenessConfig;
use crate::scope::HostPattern;

/// The limits for one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostLimits {
    pub concurrency: u32,
    pub delay: Duration,
}

/// Global limits with per-host-pattern overrides, and the cap on robots.txt Crawl-delay.
#[derive(Debug, Clone)]
pub struct Politeness {
    default: HostLimits,
    overrides: Vec<(HostPattern, HostLimits)>,
    max_crawl_delay: Duration,
}

impl Politeness {
    pub fn new(config: &PolitenessConfig) -> Self {
        let default = HostLimits {
            concurrency: config.per_host_concurrency,
            delay: config.delay,
        };
        Self {
            default,
            overrides: config
                .hosts
                .iter()
                .map(|h| {
                    let limits = HostLimits {
                        concurrency: h.per_host_concurrency.unwrap_or(default.concurrency),
                        delay: h.delay.unwrap_or(default.delay),
                    };
                    (h.pattern.clone(), limits)
                })
                .collect(),
            max_crawl_delay: config.max_crawl_delay,
        }
    }

    /// The limits for `host` (`name[:port]`): the first matching override, else the
    /// defaults; a robots.txt `Crawl-delay` can lengthen the delay up to the cap.
    pub fn limits(&self, host: &str, crawl_delay: Option<Duration>) -> HostLimits {
        let name = host_name(host);
        let mut limits = self
            .overrides
            .iter()
            .find(|(p, _)| p.matches(name))
            .map_or(self.default, |(_, l)| *l);
        if let Some(asked) = crawl_delay {
            limits.delay = limits.delay.max(asked.min(self.max_crawl_delay));
        }
        limits
    }
}

/// `example.com:8080` → `example.com`; `[::1]:80` → `[::1]`.
fn host_name(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// When each host may next be sent a request. Entries whose time has passed carry no
/// information and are swept out, so the map holds only hosts contacted within their
/// delay: bounded by the request rate, not by the number of hosts ever seen.
#[derive(Default)]
pub struct HostGate {
    next: Mutex<HashMap<String, Instant>>,
}

/// Sweep the map when it grows past this many hosts.
const SWEEP_AT: usize = 4096;

impl HostGate {
    /// Waits until a request to `host` may start, and books the next slot `delay` later.
    /// The slot is booked again from the moment the wait really ends: a busy runtime can
    /// wake a task late, and spacing from the planned time would then let the next
    /// request follow too closely.
    pub async fn wait_turn(&self, host: &str, delay: Duration) {
        let start = {
            let mut next = self.lock();
            let now = Instant::now();
            if next.len() >= SWEEP_AT {
                next.retain(|_, at| *at > now);
            }
            let start = next.get(host).map_or(now, |at| (*at).max(now));
            next.insert(host.to_owned(), start + delay);
            start
        };
        tokio::time::sleep_until(start).await;
        let woke = Instant::now();
        if woke > start {
            let mut next = self.lock();
            let at = next.entry(host.to_owned()).or_insert(woke + delay);
            *at = (*at).max(woke + delay);
        }
    }

    /// The host answered a request: the next may start `delay` from now.
    pub fn answered(&self, host: &str, delay: Duration) {
        if !delay.is_zero() {
            self.pause(host, Instant::now() + delay);
        }
    }

    /// Keeps `host` quiet until `until` (a `Retry-After`).
    pub fn pause(&self, host: &str, until: Instant) {
        let mut next = self
            .next
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let at = next.entry(host.to_owned()).or_insert(until);
        *at = (*at).max(until);
    }

    /// When a request to `host` may start next, if not at once.
    pub fn next_turn(&self, host: &str) -> Option<Instant> {
        self.lock()
            .get(host)
            .copied()
            .filter(|at| *at > Instant::now())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.next
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn host_patterns_override_and_crawl_delay_lengthens_up_to_the_cap() {
        let config = Config::from_toml(
            r#"
            seeds = ["http://a.test/"]
            [politeness]
            per_host_concurrency = 4
            delay_ms = 100
            max_crawl_delay_ms = 5000
            [[politeness.host]]
            pattern = "*.slow.test"
            per_host_concurrency = 1
            delay_ms = 2000
            "#,
            "t",
        )
        .unwrap();
        let p = Politeness::new(&config.politeness);
        let ms = Duration::from_millis;
        assert_eq!(
            p.limits("a.test", None),
            HostLimits {
                concurrency: 4,
                delay: ms(100)
            }
        );
        assert_eq!(
            p.limits("www.slow.test:8080", None),
            HostLimits {
                concurrency: 1,
                delay: ms(2000)
            }
        );
        assert_eq!(p.limits("a.test", Some(ms(1000))).delay, ms(1000));
        assert_eq!(p.limits("a.test", Some(ms(60_000))).delay, ms(5000));
        assert_eq!(p.limits("x.slow.test", Some(ms(10))).delay, ms(2000));
    }

    #[tokio::test(start_paused = true)]
    async fn the_gate_spaces_requests_to_a_host_and_honours_pauses() {
        let gate = HostGate::default();
        let t0 = Instant::now();
        let d = Duration::from_millis(500);
        gate.wait_turn("h", d).await;
        gate.wait_turn("other", d).await;
        assert_eq!(
            t0.elapsed(),
            Duration::ZERO,
            "different hosts do not wait for each other"
        );
        gate.wait_turn("h", d).await;
        assert_eq!(t0.elapsed(), d);
        gate.pause("h", Instant::now() + Duration::from_secs(3));
        gate.wait_turn("h", d).await;
        assert_eq!(t0.elapsed(), d + Duration::from_secs(3));
    }
}
