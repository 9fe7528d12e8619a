//! Riding out an outage of the way out: `fetch.proxy` restarted or failed over, or,
//! without a proxy, the crawler's own network (Wi-Fi dropped, a VPN reconnecting, a VM's
//! NIC reset, the resolver restarting). Every request then fails at once, so every URL
//! spent its `retry.max_attempts` within seconds of backoff, and a crawl of hours ended
//! with its queue turned to failed rows, each blaming its site, for `--retry-failed` to
//! ask again.
//!
//! Once the way out has carried a request in this run, a request that meets its outage
//! waits until it is back and then goes again, spending none of its URL's attempts: for
//! up to [`OUTLAST`], the ten minutes a crawl waits out its database, said when the wait
//! begins, every [`SAID_EVERY`] and when it ends. One worker at a time probes the way
//! out; the others wait for its answer. A proxy that has carried nothing yet is more
//! likely named wrongly than down for a while: its URLs fail as before, and the run's
//! end names the proxy; so do the URLs of a run whose network never answered.
//!
//! The proxy's outage is plain: it takes no connection. The network's is read from its
//! hosts: [`HOSTS_FAILING`] hosts in a row failing to connect (refused, unreachable, not
//! within `fetch.connect_timeout_ms`, their names not resolved for now) with no answer
//! between them, while none of the hosts that answered last takes a connection either.
//! A site down alone leaves the others answering: its URLs fail as before.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex as SyncMutex, TryLockError};
use std::time::Duration;

use tokio::sync::{watch, Mutex};
use tokio::task::JoinSet;
use tokio::time::Instant;
use url::Url;

use crate::retry::doubling;
use crate::store::{FIRST_WAIT, LONGEST_WAIT, OUTLAST};

/// How often an outage that goes on is said again.
const SAID_EVERY: Duration = Duration::from_secs(60);

/// How many hosts in a row failing to connect, with no answer between them, may mean the
/// network is down: one alone is most often that site's own outage.
const HOSTS_FAILING: usize = 2;

/// How many of the hosts that answered last are probed for the network: one of them
/// may have gone down meanwhile on its own.
const HOSTS_PROBED: usize = 4;

/// How long a probe that found the network up holds: a crawl of many dead links would
/// otherwise connect to the hosts that answered last after every other dead one.
const UP_HOLDS: Duration = LONGEST_WAIT;

/// The way out as the fetch workers find it.
pub struct NetOutage {
    reach: Reach,
    connect_timeout: Duration,
    /// Whether the way out has carried a request since the start, or since the fetch
    /// last stopped waiting for it after [`OUTLAST`].
    carried: AtomicBool,
    /// The outage under way, held by the worker probing the way out.
    under_way: Mutex<Option<Outage>>,
    /// Outages over: a worker that waited sees the count move when another saw the end.
    ended: AtomicU64,
    /// Asks that found the way out up with no outage under way: workers whose requests
    /// failed together, queued on the lock, take the first one's answer rather than each
    /// ask again in turn.
    found_up: AtomicU64,
    /// Whether an outage is under way, for a stop: the fetches in flight then wait for
    /// the way out, and none ends within the grace period.
    waiting: watch::Sender<bool>,
}

/// What is probed, and how its outage is said.
enum Reach {
    Proxy { host: String, port: u16 },
    Network(SyncMutex<Hosts>),
}

/// The hosts that answered last, to probe, and those that failed to connect since: as
/// URLs write them (an IPv6 address in brackets), with the port.
#[derive(Default)]
struct Hosts {
    answered: VecDeque<(String, u16)>,
    failing: HashSet<String>,
    /// When a probe last found the network up.
    probed_up: Option<Instant>,
}

struct Outage {
    began: Instant,
    said: Instant,
    /// The way out asked so far in this outage, by any worker.
    asked: u32,
    /// When it is to be asked next: a worker that takes the lock sooner waits till then.
    next_ask: Instant,
}

impl NetOutage {
    /// For `proxy`, reached within `connect_timeout` when it is up; `None` for a URL
    /// with no host, which the config refuses.
    pub fn proxy(proxy: &Url, connect_timeout: Duration) -> Option<Self> {
        let host = proxy.host_str()?.to_owned();
        // SOCKS has no default port in `url`'s table; 1080 is SOCKS's own.
        let port = proxy.port_or_known_default().unwrap_or(1080);
        Some(Self::new(Reach::Proxy { host, port }, connect_timeout))
    }

    /// For the crawler's own network, its hosts reached within `connect_timeout`.
    pub fn network(connect_timeout: Duration) -> Self {
        Self::new(
            Reach::Network(SyncMutex::new(Hosts::default())),
            connect_timeout,
        )
    }

    fn new(reach: Reach, connect_timeout: Duration) -> Self {
        Self {
            reach,
            connect_timeout,
            carried: AtomicBool::new(false),
            under_way: Mutex::new(None),
            ended: AtomicU64::new(0),
            found_up: AtomicU64::new(0),
            waiting: watch::Sender::new(false),
        }
    }

    /// Returns once an outage is under way (at once if one is): a stop need not wait its
    /// grace period for fetches that wait for the way out, which hand their URLs back.
    pub async fn under_way(&self) {
        // The sender lives as long as `self`: the wait cannot fail for want of one.
        let _ = self.waiting.subscribe().wait_for(|waiting| *waiting).await;
    }

    /// What a stop during an outage says as it hands the fetches back.
    pub fn stop_words(&self) -> &'static str {
        self.words().stopped
    }

    /// Whether this is the proxy's.
    pub fn is_proxy(&self) -> bool {
        matches!(self.reach, Reach::Proxy { .. })
    }

    /// Whether a request may wait for the way out: it has carried one in this run. A
    /// request failing before then is not looked at further.
    pub fn may_wait(&self) -> bool {
        self.carried.load(Ordering::Relaxed)
    }

    /// A request to `url` was answered. On every page's path: nothing is allocated but
    /// for a host not among the last that answered, and no worker waits for the lock. An
    /// answer not noted because another worker holds it (noting its own) leaves at most a
    /// failing host counted, which costs one ask of the way out.
    pub fn carried(&self, url: &Url) {
        if !self.carried.load(Ordering::Relaxed) {
            self.carried.store(true, Ordering::Relaxed);
        }
        let (Reach::Network(hosts), Some(host)) = (&self.reach, url.host_str()) else {
            return;
        };
        let port = url.port_or_known_default().unwrap_or(80);
        let mut hosts = match hosts.try_lock() {
            Ok(hosts) => hosts,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        };
        if !hosts.failing.is_empty() {
            hosts.failing.clear();
        }
        if !hosts.answered.iter().any(|(h, p)| h == host && *p == port) {
            if hosts.answered.len() == HOSTS_PROBED {
                hosts.answered.pop_front();
            }
            hosts.answered.push_back((host.to_owned(), port));
        }
    }

    /// Whether a request to `url` that failed to connect (its host's or the proxy's, as
    /// the caller found) may have met an outage of the way out, for [`Self::ride_out`] to
    /// ask: the proxy's failing is one; the network's is [`HOSTS_FAILING`] hosts failing
    /// in a row, unless the way out was found up within [`UP_HOLDS`].
    pub fn suspects(&self, url: Option<&Url>) -> bool {
        if !self.carried.load(Ordering::Relaxed) {
            return false;
        }
        let Reach::Network(hosts) = &self.reach else {
            return true;
        };
        let Some(host) = url.and_then(Url::host_str) else {
            return false;
        };
        let mut hosts = lock(hosts);
        if hosts.failing.len() < HOSTS_FAILING && !hosts.failing.contains(host) {
            hosts.failing.insert(host.to_owned());
        }
        let up = hosts.probed_up.is_some_and(|at| at.elapsed() < UP_HOLDS);
        !up && hosts.failing.len() >= HOSTS_FAILING
    }

    /// Waits for the way out, after a request met its outage, to be back. Returns whether
    /// it is: `false` at once for one that has carried nothing, or that takes a connection
    /// at the first ask (a refusal of its own, for the request's retry to take up), and
    /// after [`OUTLAST`]. The way out is asked by one worker at a time, at the outage's
    /// pace (a wait that doubles up to [`LONGEST_WAIT`]), whatever the number waiting.
    pub async fn ride_out(&self) -> bool {
        let seen = self.ended.load(Ordering::SeqCst);
        let up_seen = self.found_up.load(Ordering::SeqCst);
        loop {
            let wait = {
                let mut under_way = self.under_way.lock().await;
                if self.ended.load(Ordering::SeqCst) != seen {
                    return true;
                }
                if under_way.is_none() && self.found_up.load(Ordering::SeqCst) != up_seen {
                    return false;
                }
                // Read under the lock: a worker that waited for it while another gave up
                // would otherwise begin an outage of its own, left behind with its start.
                if !self.carried.load(Ordering::Relaxed) {
                    return false;
                }
                let now = Instant::now();
                match under_way.as_mut() {
                    Some(outage) if now < outage.next_ask => outage.next_ask - now,
                    _ => match self.ask(&mut under_way).await {
                        Some(back) => return back,
                        None => continue,
                    },
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Asks the way out for a connection, for [`Self::ride_out`], with the outage under
    /// way (none before the first ask): `Some` ends the wait, saying whether it is back.
    async fn ask(&self, under_way: &mut Option<Outage>) -> Option<bool> {
        let reached = self.reached().await;
        let now = Instant::now();
        let Some(outage) = under_way.as_mut() else {
            if reached {
                if let Reach::Network(hosts) = &self.reach {
                    let mut hosts = lock(hosts);
                    hosts.failing.clear();
                    hosts.probed_up = Some(now);
                }
                self.found_up.fetch_add(1, Ordering::SeqCst);
                return Some(false);
            }
            tracing::warn!(
                "{}: the fetch waits for it (up to {} minutes), and the URLs that met it spend \
                 no attempt",
                self.words().down,
                OUTLAST.as_secs() / 60
            );
            *under_way = Some(Outage {
                began: now,
                said: now,
                asked: 1,
                next_ask: now + FIRST_WAIT,
            });
            self.waiting.send_replace(true);
            return None;
        };
        let lasted = outage.began.elapsed().as_secs();
        if reached {
            tracing::warn!("{} after {lasted} s: the fetch goes on", self.words().back);
            *under_way = None;
            self.waiting.send_replace(false);
            self.ended.fetch_add(1, Ordering::SeqCst);
            return Some(true);
        }
        if outage.began.elapsed() >= OUTLAST {
            tracing::warn!(
                "{} for {lasted} s: the fetch waits no longer, and URLs that meet it fail for \
                 now, spending attempts, until a request gets through again",
                self.words().still
            );
            *under_way = None;
            self.waiting.send_replace(false);
            self.carried.store(false, Ordering::Relaxed);
            return Some(false);
        }
        if outage.said.elapsed() >= SAID_EVERY {
            tracing::warn!(
                "{} for {lasted} s: the fetch still waits for it",
                self.words().still
            );
            outage.said = now;
        }
        outage.asked += 1;
        outage.next_ask = now + doubling(FIRST_WAIT, outage.asked, LONGEST_WAIT);
        None
    }

    fn words(&self) -> Words {
        match self.reach {
            Reach::Proxy { .. } => Words {
                down: "fetch.proxy takes no connections, after carrying this run's requests",
                back: "fetch.proxy takes connections again",
                still: "fetch.proxy has taken no connections",
                stopped: "fetch.proxy takes no connections: the stop does not wait for it, and \
                          the fetches waiting for it go back to the queue",
            },
            Reach::Network(_) => Words {
                down: "every host fails to connect, the hosts that answered this run's \
                       requests too: the crawler's own network looks down (no route, no \
                       resolver, a firewall), not the sites",
                back: "the network is back, a host that answered before taking a connection",
                still: "the network has been down, every host failing to connect,",
                stopped: "the network is down: the stop does not wait for it, and the fetches \
                          waiting for it go back to the queue",
            },
        }
    }

    /// Whether the way out takes a connection: the proxy, or one of the hosts that
    /// answered last, their names resolved anew.
    async fn reached(&self) -> bool {
        let targets = match &self.reach {
            Reach::Proxy { host, port } => vec![(host.clone(), *port)],
            Reach::Network(hosts) => lock(hosts).answered.iter().cloned().collect(),
        };
        let mut connects = JoinSet::new();
        for (host, port) in targets {
            let connect_timeout = self.connect_timeout;
            connects.spawn(async move {
                // An IPv6 address without the brackets a URL writes it in.
                let host = host.trim_start_matches('[').trim_end_matches(']');
                let connect = tokio::net::TcpStream::connect((host, port));
                matches!(
                    tokio::time::timeout(connect_timeout, connect).await,
                    Ok(Ok(_))
                )
            });
        }
        while let Some(connected) = connects.join_next().await {
            if connected.unwrap_or(false) {
                return true;
            }
        }
        false
    }
}

/// How an outage is said: when it begins, ends, and goes on.
struct Words {
    down: &'static str,
    back: &'static str,
    still: &'static str,
    stopped: &'static str,
}

/// The hosts, whose lock no holder panics under (it only moves a few names).
fn lock(hosts: &SyncMutex<Hosts>) -> std::sync::MutexGuard<'_, Hosts> {
    hosts
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A proxy that has carried nothing is not waited for: it is more likely named
    /// wrongly, and the run would wait ten minutes to say so.
    #[tokio::test]
    async fn a_proxy_that_has_carried_nothing_is_not_waited_for() {
        let proxy = Url::parse("http://127.0.0.1:9").expect("a URL");
        let outage = NetOutage::proxy(&proxy, Duration::from_secs(1)).expect("a host");
        assert!(!outage.ride_out().await);
    }

    /// A proxy taking a connection at the first ask had no outage to wait out (a refusal
    /// of its own, a proxy flapping): the request's failure stands, for its retry. The
    /// wait said an outage began and ended in the same second, and sent the request again
    /// at once, for as long as such refusals came.
    #[tokio::test]
    async fn a_proxy_up_at_the_first_ask_is_no_outage() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let address = listener.local_addr().expect("its address");
        let proxy = Url::parse(&format!("socks5://{address}")).expect("a URL");
        let outage = NetOutage::proxy(&proxy, Duration::from_secs(5)).expect("a host");
        outage.carried(&proxy);
        assert!(!outage.ride_out().await);
        assert_eq!(outage.ended.load(Ordering::SeqCst), 0);
    }

    /// Workers whose requests a proxy that is up refused together take the first one's
    /// ask: each asked again in turn, holding the lock, behind the others' connections.
    #[tokio::test]
    async fn workers_refused_together_by_a_proxy_up_ask_it_once() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let address = listener.local_addr().expect("its address");
        let proxy = Url::parse(&format!("socks5://{address}")).expect("a URL");
        let outage = NetOutage::proxy(&proxy, Duration::from_secs(5)).expect("a host");
        outage.carried(&proxy);
        let (a, b, c) = tokio::join!(outage.ride_out(), outage.ride_out(), outage.ride_out());
        assert!(!a && !b && !c);
        assert_eq!(
            outage.found_up.load(Ordering::SeqCst),
            1,
            "asks that found it up"
        );
    }

    /// A proxy down (its port bound, refusing) for the given time, then taking connections
    /// on the same port.
    async fn proxy_down_for(down: Duration) -> (NetOutage, tokio::task::JoinHandle<()>) {
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        socket.bind(([127, 0, 0, 1], 0).into()).expect("a port");
        let address = socket.local_addr().expect("its address");
        let proxy = Url::parse(&format!("socks5://{address}")).expect("a URL");
        let outage = NetOutage::proxy(&proxy, Duration::from_secs(1)).expect("a host");
        outage.carried(&proxy);
        let back = tokio::spawn(async move {
            tokio::time::sleep(down).await;
            let listener = socket.listen(16).expect("listen");
            std::future::pending::<()>().await;
            drop(listener);
        });
        (outage, back)
    }

    /// Workers waiting together for a proxy that comes back all go on; one asked it at the
    /// outage's pace, not each at its own.
    #[tokio::test(start_paused = true)]
    async fn workers_waiting_for_a_proxy_back_all_go_on() {
        let (outage, back) = proxy_down_for(Duration::from_secs(3)).await;
        let (a, b, c) = tokio::join!(outage.ride_out(), outage.ride_out(), outage.ride_out());
        assert!(a && b && c);
        assert_eq!(outage.ended.load(Ordering::SeqCst), 1);
        assert!(outage.under_way.lock().await.is_none());
        back.abort();
    }

    /// A proxy down past [`OUTLAST`] is given up on by every worker waiting for it, and
    /// leaves no outage behind: its next one, once it has carried a request again, is
    /// waited for afresh.
    #[tokio::test(start_paused = true)]
    async fn a_proxy_given_up_on_is_waited_for_afresh_at_its_next_outage() {
        let (outage, back) = proxy_down_for(OUTLAST + Duration::from_secs(60)).await;
        let (a, b) = tokio::join!(outage.ride_out(), outage.ride_out());
        assert!(!a && !b);
        assert!(
            outage.under_way.lock().await.is_none(),
            "an outage left behind"
        );
        assert!(
            !outage.ride_out().await,
            "not waited for until it carries again"
        );
        outage.carried(&Url::parse("http://example.com/").expect("a URL"));
        assert!(outage.ride_out().await, "waited for again, and back");
        back.abort();
    }

    /// A network that has answered a request to a host listening on loopback, and that URL.
    async fn answered_once() -> (tokio::net::TcpListener, Url, NetOutage) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let address = listener.local_addr().expect("an address");
        let up = Url::parse(&format!("http://{address}/")).expect("a URL");
        let outage = NetOutage::network(Duration::from_secs(5));
        outage.carried(&up);
        (listener, up, outage)
    }

    /// Sites that fail while a host that answered still takes connections are down on
    /// their own: no outage of the network, their URLs fail as before, and the next
    /// failures are not asked about for a while.
    #[tokio::test]
    async fn sites_down_while_another_answers_are_no_outage_of_the_network() {
        let (_listener, _, outage) = answered_once().await;
        let down = |url| Url::parse(url).expect("a URL");
        assert!(!outage.suspects(Some(&down("http://127.0.0.2:9/"))));
        assert!(outage.suspects(Some(&down("http://127.0.0.3:9/"))));
        assert!(
            !outage.ride_out().await,
            "a host that answered takes connections"
        );
        assert!(!outage.suspects(Some(&down("http://127.0.0.4:9/"))));
    }

    /// One host failing is that site's outage; a second in a row, with no host that
    /// answered taking a connection, is the network's, waited out until one does.
    #[tokio::test(start_paused = true)]
    async fn every_host_failing_is_an_outage_of_the_network() {
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        socket.bind(([127, 0, 0, 1], 0).into()).expect("a port");
        let address = socket.local_addr().expect("its address");
        let up = Url::parse(&format!("http://{address}/")).expect("a URL");
        let outage = NetOutage::network(Duration::from_secs(5));
        outage.carried(&up);
        let first = Url::parse("http://127.0.0.2:9/").expect("a URL");
        assert!(!outage.suspects(Some(&first)));
        assert!(outage.suspects(Some(&up)));
        let back = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            let listener = socket.listen(16).expect("listen");
            std::future::pending::<()>().await;
            drop(listener);
        });
        assert!(outage.ride_out().await);
        back.abort();
    }
}
