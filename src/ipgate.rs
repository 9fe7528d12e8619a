//! Requests in flight to one IP address, across every host name that resolves to it.
//!
//! Politeness is per host name, so the names of one server (a shared host, wildcard DNS,
//! a spam farm's `a1.example.com` … `a999.example.com`) would each take their own
//! `per_host_concurrency`, and the machine behind them as many requests as there are
//! fetch workers. `politeness.per_ip_concurrency` bounds them together, as Heritrix's
//! and Nutch's queues by IP do.
//!
//! The address a name is counted under is the first one it resolves to, which is the one
//! reqwest connects to first: learned by the guarded resolver whenever a connection is
//! made, and looked up here (once) for a name no connection has been made to yet, since
//! a pooled connection asks no resolver. Through an HTTP proxy or `socks5h` the crawler
//! resolves no names and this gate lets every request through.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use url::{Host, Url};

/// The names whose address is kept; past it, one is forgotten for each learned (and
/// looked up again when next asked for).
const MAX_NAMES: usize = 10_000;

/// The limit on requests in flight to one address, and what counts them.
pub struct IpGate {
    /// `politeness.per_ip_concurrency`; 0 when unlimited or the crawler resolves no names.
    limit: u32,
    /// The longest a look-up of a name no connection has been made to yet may take
    /// (`fetch.connect_timeout_ms`): past it, the request goes uncounted and fails or
    /// not as its own connection does.
    lookup_timeout: Duration,
    state: Mutex<State>,
    /// Signalled whenever a request ends, for those waiting for its address.
    ended: Notify,
}

#[derive(Default)]
struct State {
    /// The address each name was last resolved to.
    addresses: HashMap<String, IpAddr>,
    /// Requests in flight per address; an address with none has no entry.
    in_flight: HashMap<IpAddr, u32>,
}

/// The address is at its limit.
#[derive(Debug, PartialEq, Eq)]
pub struct Busy(pub IpAddr);

/// A request's place at its address, held until its answer is read or given up.
pub struct IpTurn<'a> {
    gate: &'a IpGate,
    ip: IpAddr,
}

impl IpTurn<'_> {
    /// The address the request counts under.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }
}

impl Drop for IpTurn<'_> {
    fn drop(&mut self) {
        let mut state = self.gate.lock();
        if let Some(count) = state.in_flight.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                state.in_flight.remove(&self.ip);
            }
        }
        drop(state);
        self.gate.ended.notify_waiters();
    }
}

impl IpGate {
    /// A gate allowing `limit` requests at once to one address (0: any number);
    /// `resolves` is false when a proxy resolves the names, and nothing is counted then.
    pub fn new(limit: u32, resolves: bool, lookup_timeout: Duration) -> Self {
        Self {
            limit: if resolves { limit } else { 0 },
            lookup_timeout,
            state: Mutex::default(),
            ended: Notify::new(),
        }
    }

    /// The resolver found `name` at `ip`, for a connection about to be made.
    pub fn learn(&self, name: &str, ip: IpAddr) {
        if self.limit == 0 || name.parse::<IpAddr>().is_ok() {
            return;
        }
        let mut state = self.lock();
        remember(&mut state.addresses, name, ip.to_canonical());
    }

    /// A place at `url`'s address if one is free now; `Ok(None)` when no limit applies
    /// (none set, a proxy resolves, the name does not resolve). A host allowed more
    /// requests at once than the limit (`host_limit`) may have that many at its address:
    /// one host is never held tighter than its own `per_host_concurrency`.
    pub async fn try_take(&self, url: &Url, host_limit: u32) -> Result<Option<IpTurn<'_>>, Busy> {
        if self.limit == 0 {
            return Ok(None);
        }
        let limit = self.limit.max(host_limit);
        let ip = match address(url) {
            Some(Ok(ip)) => ip,
            Some(Err(name)) => {
                // A name resolved before costs one lock, and its address's count no more.
                {
                    let mut state = self.lock();
                    if let Some(ip) = state.addresses.get(name).copied() {
                        return self.enter(&mut state, ip, limit).map(Some);
                    }
                }
                match self.look_up(name).await {
                    Some(ip) => ip,
                    None => return Ok(None),
                }
            }
            None => return Ok(None),
        };
        self.enter(&mut self.lock(), ip, limit).map(Some)
    }

    /// A place at `url`'s address, waiting for one to be free; `None` when no limit
    /// applies (see [`Self::try_take`]).
    pub async fn take(&self, url: &Url, host_limit: u32) -> Option<IpTurn<'_>> {
        loop {
            let ended = self.ended.notified();
            tokio::pin!(ended);
            // Registered before the count is read, so an end in between is not missed.
            ended.as_mut().enable();
            if let Ok(turn) = self.try_take(url, host_limit).await {
                return turn;
            }
            ended.await;
        }
    }

    /// `url`'s address, as last resolved, when it is at its limit: a job that would only
    /// wait for it (its robots.txt first) is better handed back. `host_limit` is asked
    /// only when a limit applies: without one this costs a page nothing.
    pub fn busy(&self, url: &Url, host_limit: impl FnOnce() -> u32) -> Option<IpAddr> {
        if self.limit == 0 {
            return None;
        }
        let state = self.lock();
        let ip = match address(url) {
            Some(Ok(ip)) => Some(ip),
            Some(Err(name)) => state.addresses.get(name).copied(),
            None => None,
        };
        ip.filter(|ip| {
            state
                .in_flight
                .get(ip)
                .is_some_and(|count| *count >= self.limit.max(host_limit()))
        })
    }

    fn enter<'a>(&'a self, state: &mut State, ip: IpAddr, limit: u32) -> Result<IpTurn<'a>, Busy> {
        let count = state.in_flight.entry(ip).or_default();
        if *count >= limit {
            return Err(Busy(ip));
        }
        *count += 1;
        Ok(IpTurn { gate: self, ip })
    }

    /// The first address of `name`, remembered; `None` when it does not resolve in time.
    async fn look_up(&self, name: &str) -> Option<IpAddr> {
        let lookup = tokio::net::lookup_host((name, 0));
        let ip = tokio::time::timeout(self.lookup_timeout, lookup)
            .await
            .ok()?
            .ok()?
            .next()?
            .ip()
            .to_canonical();
        remember(&mut self.lock().addresses, name, ip);
        Some(ip)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `url`'s address when it writes one (an IPv4-mapped IPv6 one as its IPv4), else its
/// host name.
fn address(url: &Url) -> Option<Result<IpAddr, &str>> {
    match url.host()? {
        Host::Ipv4(ip) => Some(Ok(IpAddr::V4(ip))),
        Host::Ipv6(ip) => Some(Ok(IpAddr::V6(ip).to_canonical())),
        Host::Domain(name) => Some(Err(name)),
    }
}

/// Keeps `name`'s address, forgetting another name's when [`MAX_NAMES`] are kept.
fn remember(addresses: &mut HashMap<String, IpAddr>, name: &str, ip: IpAddr) {
    if let Some(known) = addresses.get_mut(name) {
        *known = ip;
        return;
    }
    if addresses.len() >= MAX_NAMES {
        if let Some(old) = addresses.keys().next().cloned() {
            addresses.remove(&old);
        }
    }
    addresses.insert(name.to_owned(), ip);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[tokio::test]
    async fn names_of_one_address_share_its_limit_and_a_freed_place_is_taken_again() {
        let gate = IpGate::new(2, true, Duration::from_secs(5));
        gate.learn("a.test", "10.0.0.1".parse().unwrap());
        gate.learn("b.test", "::ffff:10.0.0.1".parse().unwrap());
        let first = gate.try_take(&url("http://a.test/"), 1).await;
        let second = gate.try_take(&url("http://b.test:8080/"), 1).await;
        assert!(matches!((&first, &second), (Ok(Some(_)), Ok(Some(_)))));
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(gate.busy(&url("http://10.0.0.1/"), || 1), Some(ip));
        assert!(matches!(
            gate.try_take(&url("http://10.0.0.1/"), 1).await,
            Err(Busy(busy)) if busy == ip
        ));
        let third = gate.try_take(&url("http://a.test/"), 3).await;
        assert!(
            matches!(third, Ok(Some(_))),
            "a host allowed three at once is"
        );
        drop((first, second));
        assert_eq!(gate.lock().in_flight.values().collect::<Vec<_>>(), [&1]);
        drop(third);
        assert!(
            gate.lock().in_flight.is_empty(),
            "addresses with none in flight go"
        );
    }

    #[tokio::test]
    async fn no_limit_or_a_proxy_counts_nothing() {
        for gate in [
            IpGate::new(0, true, Duration::from_secs(5)),
            IpGate::new(2, false, Duration::from_secs(5)),
        ] {
            for _ in 0..4 {
                assert!(matches!(
                    gate.try_take(&url("http://10.0.0.1/"), 1).await,
                    Ok(None)
                ));
            }
        }
    }

    #[test]
    fn the_names_kept_are_bounded() {
        let mut addresses = HashMap::new();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for i in 0..MAX_NAMES + 10 {
            remember(&mut addresses, &format!("a{i}.test"), ip);
        }
        assert_eq!(addresses.len(), MAX_NAMES);
    }
}
