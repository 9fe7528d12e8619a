//! Per-host limits, and the gate that makes every request to a host respect them.
//!
//! The frontier schedules a host's URLs at most `per_host_concurrency` at a time and one
//! `delay` apart, so fetchers rarely wait. But a dispatched job can start later than
//! planned (a busy pool, a robots.txt fetched first, a `Retry-After`), and a robots.txt
//! can redirect to another host, so each request also passes the [`HostGate`], which
//! spaces the actual requests to a host by its delay and keeps them within its
//! concurrency whatever the path that led there.
//!
//! The delay counts from the later of two moments: the previous request's start, and the
//! moment its answer began to arrive. The server has surely seen a request once it
//! answers, so however slow the network or a loaded machine, two requests never reach a
//! host closer than the delay. (With a delay, that also means one request at a time for
//! hosts that answer more slowly than the delay: a request due while the one before it
//! is unanswered waits for that answer.)

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::config::PolitenessConfig;
use crate::scope::HostPattern;
use crate::urlnorm;

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
            // Not obeyed, robots.txt is read for its sitemaps only (`scope.sitemaps`), and
            // its Crawl-delay is one of its rules: spacing a host by it then depended on
            // whether sitemaps were asked for.
            max_crawl_delay: if config.respect_robots_txt {
                config.max_crawl_delay
            } else {
                Duration::ZERO
            },
        }
    }

    /// The limits for `host` (`name[:port]`): the first matching override, else the
    /// defaults; a robots.txt `Crawl-delay` can lengthen the delay up to the cap.
    pub fn limits(&self, host: &str, crawl_delay: Option<Duration>) -> HostLimits {
        let name = urlnorm::host_name(host);
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

    /// The longest delay [`Self::limits`] can give a host: the longest configured, or a
    /// Crawl-delay at the cap.
    pub fn longest_delay(&self) -> Duration {
        self.overrides
            .iter()
            .map(|(_, l)| l.delay)
            .fold(self.default.delay.max(self.max_crawl_delay), Duration::max)
    }
}

/// When each host may next be sent a request, and how many requests it has in flight.
/// Entries whose time has passed and that have nothing in flight carry no information and
/// are swept out, so the map holds only hosts contacted within their delay: bounded by the
/// request rate, not by the number of hosts ever seen.
#[derive(Default)]
pub struct HostGate {
    hosts: Mutex<HashMap<String, HostSlot>>,
    /// Signalled whenever a request ends, for requests waiting for a host's limit.
    ended: Notify,
}

struct HostSlot {
    /// The next free turn: one delay after the last one booked.
    next: Instant,
    /// The earliest the host may be asked again, as the host itself made it: one delay
    /// after an answer or a late start, or a `Retry-After`. Unlike `next`, it is moved
    /// by what happens after a turn was booked, which a request already waiting for its
    /// turn must still heed.
    not_before: Instant,
    in_flight: u32,
    /// Requests sent and not answered yet, whose answer the next request (with a delay)
    /// must wait for: the delay counts from it.
    unanswered: u32,
}

impl HostSlot {
    fn new(now: Instant) -> Self {
        Self {
            next: now,
            not_before: now,
            in_flight: 0,
            unanswered: 0,
        }
    }
}

/// A request's place at a host, held until its answer is read. The frontier keeps a
/// host's jobs within its limit, but a robots.txt redirected from another host
/// (`example.com` to `www.example.com`) is a request the frontier never sees: counting
/// here holds the limit for it too.
pub struct Turn<'a> {
    gate: &'a HostGate,
    host: String,
    /// The request went and its answer has not come (nor has it been given up).
    unanswered: bool,
}

impl Turn<'_> {
    /// The host answered the request (or it failed): the next may start `delay` from now.
    /// Without a delay nothing waits for an answer, and nothing is to be done.
    pub fn answered(&mut self, delay: Duration) {
        self.settle();
        if !delay.is_zero() {
            self.gate.pause(&self.host, Instant::now() + delay);
            self.gate.ended.notify_waiters();
        }
    }

    /// No longer waited for: the request was answered, or is given up.
    fn settle(&mut self) {
        if std::mem::take(&mut self.unanswered) {
            if let Some(slot) = self.gate.lock().get_mut(&self.host) {
                slot.unanswered = slot.unanswered.saturating_sub(1);
            }
        }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.settle();
        if let Some(slot) = self.gate.lock().get_mut(&self.host) {
            slot.in_flight = slot.in_flight.saturating_sub(1);
        }
        self.gate.ended.notify_waiters();
    }
}

/// What a request waking for its booked turn is to do.
#[derive(Debug, PartialEq, Eq)]
enum Recheck {
    Go,
    /// Wait for this later turn, booked instead.
    At(Instant),
    /// Wait for the answer to a request sent before: the delay counts from it.
    Answer,
}

/// Sweep the map when it grows past this many hosts.
const SWEEP_AT: usize = 4096;

impl HostGate {
    /// Waits until a request to `host` may start — fewer than `limits.concurrency` in
    /// flight, its delay passed (with a delay, since the answer to the request before it)
    /// — and books the next slot a delay later. A pause or an answer that comes while it
    /// waits counts too (see [`Self::recheck`]). Tell the turn when the answer comes
    /// ([`Turn::answered`]).
    pub async fn wait_turn(&self, host: &str, limits: HostLimits) -> Turn<'_> {
        let start = loop {
            let ended = self.ended.notified();
            tokio::pin!(ended);
            // Registered before the count is read, so an end in between is not missed.
            ended.as_mut().enable();
            {
                let mut hosts = self.lock();
                let now = Instant::now();
                if hosts.len() >= SWEEP_AT {
                    hosts.retain(|_, slot| slot.next > now || slot.in_flight > 0);
                }
                let slot = hosts
                    .entry(host.to_owned())
                    .or_insert_with(|| HostSlot::new(now));
                if slot.in_flight < limits.concurrency {
                    let start = slot.next.max(now);
                    slot.next = start + limits.delay;
                    slot.in_flight += 1;
                    break start;
                }
            }
            ended.await;
        };
        let mut turn = Turn {
            gate: self,
            host: host.to_owned(),
            unanswered: false,
        };
        let mut start = start;
        loop {
            tokio::time::sleep_until(start).await;
            // Only with a delay may it wait for an answer: registered before the count
            // is read, so an answer in between is not missed.
            let answer = self.ended.notified();
            tokio::pin!(answer);
            if !limits.delay.is_zero() {
                answer.as_mut().enable();
            }
            match self.recheck(host, start, limits.delay) {
                Recheck::Go => break,
                Recheck::At(later) => start = later,
                Recheck::Answer => answer.await,
            }
        }
        turn.unanswered = !limits.delay.is_zero();
        turn
    }

    /// A request woke for the turn it booked at `start`. If the host asked for quiet
    /// since — another request's answer came after it booked, or a `Retry-After` — it
    /// books a new turn, returned; with a delay, it waits for the answer to a request
    /// still unanswered, which the delay counts from; else it goes (with a delay, counted
    /// unanswered), and if it woke late (a busy runtime), the host's next request books
    /// its turn one delay from now.
    ///
    /// A late start moves only the turns still to be booked, not `not_before`: requests
    /// already waiting were booked a delay apart from this one's planned start, and with
    /// no delay every wake is a little late, so each would send all the others waiting
    /// round again (the throughput benchmark's 64 requests to one host took 59 s instead
    /// of 10).
    fn recheck(&self, host: &str, start: Instant, delay: Duration) -> Recheck {
        let mut hosts = self.lock();
        let now = Instant::now();
        // Its own turn keeps the slot in the map.
        let Some(slot) = hosts.get_mut(host) else {
            return Recheck::Go;
        };
        if slot.not_before > start {
            let later = slot.next.max(now);
            slot.next = later + delay;
            return Recheck::At(later);
        }
        if !delay.is_zero() && slot.unanswered > 0 {
            return Recheck::Answer;
        }
        if now > start {
            slot.next = slot.next.max(now + delay);
        }
        slot.unanswered += u32::from(!delay.is_zero());
        Recheck::Go
    }

    /// Whether a request to `host` has gone and not been answered: with a delay, the
    /// next waits for its answer.
    pub fn awaits_answer(&self, host: &str) -> bool {
        self.lock()
            .get(host)
            .is_some_and(|slot| slot.unanswered > 0)
    }

    /// Keeps `host` quiet until `until` (a `Retry-After`).
    pub fn pause(&self, host: &str, until: Instant) {
        self.book(host, until);
    }

    /// When a request to `host` may start next, if not at once.
    pub fn next_turn(&self, host: &str) -> Option<Instant> {
        self.lock()
            .get(host)
            .map(|slot| slot.next)
            .filter(|at| *at > Instant::now())
    }

    /// The hosts that may not be sent a request yet, and from when they may.
    pub fn waiting(&self) -> Vec<(String, Instant)> {
        let now = Instant::now();
        self.lock()
            .iter()
            .filter(|(_, slot)| slot.next > now)
            .map(|(host, slot)| (host.clone(), slot.next))
            .collect()
    }

    /// Keeps `host` quiet until `at`, for requests still to book and for those waiting
    /// for a turn booked earlier.
    fn book(&self, host: &str, at: Instant) {
        let mut hosts = self.lock();
        let slot = hosts
            .entry(host.to_owned())
            .or_insert_with(|| HostSlot::new(at));
        slot.next = slot.next.max(at);
        slot.not_before = slot.not_before.max(at);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HostSlot>> {
        self.hosts
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

    /// With robots.txt not obeyed, a Crawl-delay read from it (for its sitemaps) does not
    /// space the host: it did whenever `scope.sitemaps` had robots.txt read.
    #[test]
    fn a_crawl_delay_is_not_obeyed_when_robots_txt_is_not() {
        let config = Config::from_toml(
            "seeds = ['http://a.test/']\n[scope]\nsitemaps = true\n\
             [politeness]\ndelay_ms = 100\nrespect_robots_txt = false\n",
            "t",
        )
        .unwrap();
        let p = Politeness::new(&config.politeness);
        let ms = Duration::from_millis;
        assert_eq!(p.limits("a.test", Some(ms(2000))).delay, ms(100));
        assert_eq!(p.longest_delay(), ms(100));
    }

    #[tokio::test(start_paused = true)]
    async fn the_gate_spaces_requests_to_a_host_and_honours_pauses() {
        let gate = HostGate::default();
        let t0 = Instant::now();
        let d = Duration::from_millis(500);
        let limits = HostLimits {
            concurrency: 2,
            delay: d,
        };
        gate.wait_turn("h", limits).await;
        gate.wait_turn("other", limits).await;
        assert_eq!(
            t0.elapsed(),
            Duration::ZERO,
            "different hosts do not wait for each other"
        );
        gate.wait_turn("h", limits).await;
        assert_eq!(t0.elapsed(), d);
        gate.pause("h", Instant::now() + Duration::from_secs(3));
        gate.wait_turn("h", limits).await;
        assert_eq!(t0.elapsed(), d + Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn the_gate_holds_a_hosts_concurrency_until_a_request_ends() {
        let gate = HostGate::default();
        let one = HostLimits {
            concurrency: 1,
            delay: Duration::ZERO,
        };
        let held = gate.wait_turn("h", one).await;
        gate.wait_turn("other", one).await;
        let waiting = gate.wait_turn("h", one);
        tokio::pin!(waiting);
        let second = tokio::time::timeout(Duration::from_secs(5), waiting.as_mut()).await;
        assert!(second.is_err(), "a second request waits for the first");
        drop(held);
        waiting.await;
    }

    /// With no delay every wake is a moment late. One that woke late must not send the
    /// others waiting at the host round again: each would then do the same to the rest
    /// (the benchmark's 64 requests to one host took six times as long).
    #[tokio::test(start_paused = true)]
    async fn a_late_wake_sends_no_other_request_round_again() {
        let gate = HostGate::default();
        let limits = HostLimits {
            concurrency: 3,
            delay: Duration::ZERO,
        };
        let first = gate.wait_turn("h", limits).await;
        let second = gate.wait_turn("h", limits).await;
        let booked = Instant::now();
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(
            gate.recheck("h", booked, limits.delay),
            Recheck::Go,
            "the late one goes"
        );
        assert_eq!(
            gate.recheck("h", booked, limits.delay),
            Recheck::Go,
            "so does the next"
        );
        drop((first, second));
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_waiting_for_its_turn_heeds_a_pause_and_an_answer_that_come_meanwhile() {
        let gate = std::sync::Arc::new(HostGate::default());
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let limits = HostLimits {
            concurrency: 2,
            delay: ms(1000),
        };
        let mut first = gate.wait_turn("h", limits).await;
        let waiting = std::sync::Arc::clone(&gate);
        let second = tokio::spawn(async move {
            let _turn = waiting.wait_turn("h", limits).await;
            t0.elapsed()
        });
        // The second is booked for 1 s; at 0.5 s the first is answered "come back in 5 s".
        tokio::time::sleep(ms(500)).await;
        first.answered(limits.delay);
        gate.pause("h", Instant::now() + ms(5000));
        drop(first);
        assert_eq!(second.await.ok(), Some(ms(5500)));

        // An answer alone: the next request waits one delay from it.
        let mut first = gate.wait_turn("g", limits).await;
        let waiting = std::sync::Arc::clone(&gate);
        let t1 = Instant::now();
        let second = tokio::spawn(async move {
            let _turn = waiting.wait_turn("g", limits).await;
            t1.elapsed()
        });
        tokio::time::sleep(ms(700)).await;
        first.answered(limits.delay);
        drop(first);
        assert!(second.await.ok() >= Some(ms(1700)));
    }
}
