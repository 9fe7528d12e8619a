//! Riding out an outage of `fetch.proxy`: a restart, a failover, a network blip. Every
//! request goes through the proxy, so while it took no connection every URL failed, each
//! spending its `retry.max_attempts` within seconds of backoff, and a crawl of hours
//! ended with its queue turned to failed rows for `--retry-failed` to ask again.
//!
//! Once the proxy has carried a request in this run, a request it takes no connection
//! for waits until it takes one again and then goes again, spending none of its URL's
//! attempts: for up to [`OUTLAST`], the ten minutes a crawl waits out its database, said
//! when the wait begins, every [`SAID_EVERY`] and when it ends. One worker at a time asks
//! the proxy for a connection; the others wait for its answer. A proxy that has carried
//! nothing yet is more likely named wrongly than down for a while: its URLs fail as
//! before, and the run's end names the proxy.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Mutex;
use url::{Host, Url};

use crate::retry::doubling;
use crate::store::OUTLAST;

const FIRST_WAIT: Duration = Duration::from_millis(100);
const LONGEST_WAIT: Duration = Duration::from_secs(5);

/// How often an outage that goes on is said again.
const SAID_EVERY: Duration = Duration::from_secs(60);

/// `fetch.proxy`'s state as the fetch workers find it.
pub struct ProxyOutage {
    host: String,
    port: u16,
    connect_timeout: Duration,
    /// Whether the proxy has carried a request since the start, or since the fetch last
    /// stopped waiting for it after [`OUTLAST`].
    carried: AtomicBool,
    /// The outage under way, held by the worker asking the proxy for a connection.
    under_way: Mutex<Option<Outage>>,
    /// Outages over: a worker that waited sees the count move when another saw the end.
    ended: AtomicU64,
}

struct Outage {
    began: Instant,
    said: Instant,
}

impl ProxyOutage {
    /// For `proxy`, reached within `connect_timeout` when it is up; `None` for a URL
    /// with no host, which the config refuses.
    pub fn new(proxy: &Url, connect_timeout: Duration) -> Option<Self> {
        let host = match proxy.host()? {
            Host::Domain(name) => name.to_owned(),
            Host::Ipv4(address) => address.to_string(),
            Host::Ipv6(address) => address.to_string(),
        };
        Some(Self {
            host,
            // SOCKS has no default port in `url`'s table; 1080 is SOCKS's own.
            port: proxy.port_or_known_default().unwrap_or(1080),
            connect_timeout,
            carried: AtomicBool::new(false),
            under_way: Mutex::new(None),
            ended: AtomicU64::new(0),
        })
    }

    /// The proxy answered a request.
    pub fn carried(&self) {
        self.carried.store(true, Ordering::Relaxed);
    }

    /// Waits for a proxy that took no connection to take one again. Returns whether it
    /// did: `false` at once for a proxy that has carried nothing, and after [`OUTLAST`].
    pub async fn ride_out(&self) -> bool {
        let seen = self.ended.load(Ordering::SeqCst);
        let mut tries = 0;
        loop {
            if !self.carried.load(Ordering::Relaxed) {
                return false;
            }
            {
                let mut under_way = self.under_way.lock().await;
                if self.ended.load(Ordering::SeqCst) != seen {
                    return true;
                }
                let now = Instant::now();
                let outage = under_way.get_or_insert_with(|| {
                    tracing::warn!(
                        "fetch.proxy takes no connections, after carrying this run's requests: \
                         the fetch waits for it (up to {} minutes), and the URLs that met it \
                         spend no attempt",
                        OUTLAST.as_secs() / 60
                    );
                    Outage {
                        began: now,
                        said: now,
                    }
                });
                let lasted = outage.began.elapsed().as_secs();
                if self.takes_a_connection().await {
                    tracing::warn!(
                        "fetch.proxy takes connections again after {lasted} s: the fetch goes on"
                    );
                    *under_way = None;
                    self.ended.fetch_add(1, Ordering::SeqCst);
                    return true;
                }
                if outage.began.elapsed() >= OUTLAST {
                    tracing::warn!(
                        "fetch.proxy has taken no connections for {lasted} s: the fetch waits \
                         no longer, and URLs that meet it fail for now, spending attempts, \
                         until it carries a request again"
                    );
                    *under_way = None;
                    self.carried.store(false, Ordering::Relaxed);
                    return false;
                }
                if outage.said.elapsed() >= SAID_EVERY {
                    tracing::warn!(
                        "fetch.proxy has taken no connections for {lasted} s: the fetch still \
                         waits for it"
                    );
                    outage.said = Instant::now();
                }
            }
            tries += 1;
            tokio::time::sleep(doubling(FIRST_WAIT, tries, LONGEST_WAIT)).await;
        }
    }

    async fn takes_a_connection(&self) -> bool {
        let connect = tokio::net::TcpStream::connect((self.host.as_str(), self.port));
        matches!(
            tokio::time::timeout(self.connect_timeout, connect).await,
            Ok(Ok(_))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A proxy that has carried nothing is not waited for: it is more likely named
    /// wrongly, and the run would wait ten minutes to say so.
    #[tokio::test]
    async fn a_proxy_that_has_carried_nothing_is_not_waited_for() {
        let proxy = Url::parse("http://127.0.0.1:9").expect("a URL");
        let outage = ProxyOutage::new(&proxy, Duration::from_secs(1)).expect("a host");
        assert!(!outage.ride_out().await);
    }

    /// Once it has carried a request, a proxy that takes a connection again ends the wait.
    #[tokio::test]
    async fn a_proxy_back_ends_the_wait() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let address = listener.local_addr().expect("its address");
        let proxy = Url::parse(&format!("socks5://{address}")).expect("a URL");
        let outage = ProxyOutage::new(&proxy, Duration::from_secs(5)).expect("a host");
        outage.carried();
        assert!(outage.ride_out().await);
        assert_eq!(outage.ended.load(Ordering::SeqCst), 1);
    }
}
