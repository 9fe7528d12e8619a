//! Keeps the crawler from being turned against the network it runs in (SSRF).
//!
//! A page can link anywhere, and a redirect can point at `169.254.169.254` or a router's
//! admin page. So every address a host resolves to is checked when the connection is
//! made — a resolver hook in reqwest, so a DNS answer that changes between a check and
//! the connect (rebinding) cannot slip through — and URLs that name an IP address
//! directly are checked before any request. Loopback, private, link-local, shared
//! (CGNAT), multicast, documentation and unspecified addresses are refused unless
//! `network.allow` names their range.
//!
//! Seeds are trusted: the hosts a user names as seeds may be anywhere (that is how an
//! intranet or a local site gets crawled). Only hosts reached by discovery are checked.
//! `fetch.proxy`'s host is trusted as the proxy, to be connected to, and not as a place
//! pages may lead: a link to another of its ports (its SSH server, a database beside it)
//! is checked like any other.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, PoisonError, RwLock};

use ipnet::{IpNet, Ipv4Net};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

use crate::ipgate::IpGate;

/// Marks a refusal in error messages, so the fetcher can tell it from other connect
/// errors once reqwest has wrapped it.
pub const REFUSAL: &str = "refused to connect";

/// Which addresses the crawler may connect to.
#[derive(Debug, Default)]
pub struct NetworkPolicy {
    /// Hosts named by seeds: any address.
    trusted: RwLock<HashSet<String>>,
    /// `fetch.proxy`'s host, when it is a name: resolved to any address, for the
    /// connection to the proxy.
    proxy: RwLock<Option<String>>,
    /// Ranges allowed although not public.
    allow: Vec<IpNet>,
}

impl NetworkPolicy {
    pub fn new(allow: Vec<IpNet>) -> Self {
        Self {
            trusted: RwLock::default(),
            proxy: RwLock::default(),
            allow: allow.into_iter().map(ipv4_range).collect(),
        }
    }

    /// Trusts `proxy`'s host as the proxy: the resolver gives its addresses, whatever
    /// they are, for the connection to it. A proxy named by an address needs no lookup,
    /// and no trust.
    pub fn trust_proxy(&self, proxy: &Url) {
        let name = match proxy.host() {
            Some(Host::Domain(name)) => Some(name.to_ascii_lowercase()),
            _ => None,
        };
        *self.proxy.write().unwrap_or_else(PoisonError::into_inner) = name;
    }

    fn is_proxy(&self, host: &str) -> bool {
        self.proxy
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_deref()
            .is_some_and(|proxy| proxy.eq_ignore_ascii_case(host))
    }

    /// Trusts the hosts of these seeds. Returns those it did not trust already, for
    /// [`NetworkPolicy::distrust`] should the seeds not be stored after all.
    pub fn trust<'a>(&self, seeds: impl IntoIterator<Item = &'a Url>) -> Vec<String> {
        let mut trusted = self.trusted.write().unwrap_or_else(PoisonError::into_inner);
        seeds
            .into_iter()
            .filter_map(|u| u.host_str())
            .map(str::to_ascii_lowercase)
            .filter(|host| trusted.insert(host.clone()))
            .collect()
    }

    /// Takes back the trust [`NetworkPolicy::trust`] gave these hosts.
    pub fn distrust(&self, hosts: &[String]) {
        let mut trusted = self.trusted.write().unwrap_or_else(PoisonError::into_inner);
        for host in hosts {
            trusted.remove(host);
        }
    }

    fn is_trusted(&self, host: &str) -> bool {
        self.trusted
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&host.to_ascii_lowercase())
    }

    /// Whether an address may be connected to for an untrusted host. An IPv6 address
    /// with an IPv4 one inside is judged by the IPv4 address it reaches, by the allowed
    /// ranges too: `10.0.0.0/8` allowed, `::ffff:10.0.0.1` is; and only so, for the
    /// IPv6 range holding it (a NAT64 prefix allowed, or `::/0`) would let a page through
    /// it to loopback or the cloud metadata address.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let reached = match ip {
            IpAddr::V6(v6) => embedded_v4(v6).map_or(ip, IpAddr::V4),
            IpAddr::V4(_) => ip,
        };
        is_public(ip) || self.allow.iter().any(|net| net.contains(&reached))
    }

    /// Checks a URL before any request: one whose host is an IP address (those never
    /// reach the resolver); one named `localhost` or under it, which leads to loopback
    /// without a lookup, and through an HTTP proxy or `socks5h` reaches no resolver of
    /// the crawler's; and one on the proxy's host, whose addresses the resolver gives
    /// unchecked, for it cannot tell a lookup for the connection to the proxy from one
    /// for a page on that host (through `socks5`) or the proxy's own (through an HTTP
    /// proxy).
    /// Any other name passes here, without a lock or a lookup: this runs for every URL.
    pub async fn check_url(&self, url: &Url) -> Result<(), String> {
        let host = url.host_str().unwrap_or_default();
        let ip = match url.host() {
            Some(Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(Host::Ipv6(ip)) => IpAddr::V6(ip),
            Some(Host::Domain(name)) if names_loopback(name) && !self.is_trusted(host) => {
                return self.check_loopback_name(name)
            }
            Some(Host::Domain(name)) if self.is_proxy(name) && !self.is_trusted(host) => {
                return self.check_proxy_host(name).await
            }
            _ => return Ok(()),
        };
        if self.is_trusted(host) || self.allows(ip) {
            Ok(())
        } else {
            Err(refusal(host, &[ip]))
        }
    }

    /// A `localhost` name passes when `network.allow` opens loopback. Through an HTTP
    /// proxy or `socks5h` the proxy resolves it, to itself: a page would have it connect
    /// to its own SSH server, admin page or cache manager. The refusal asks for both
    /// loopback ranges: `localhost` resolves to `127.0.0.1`, `::1` or both, as the
    /// machine says, and the resolver then connects to those allowed alone.
    fn check_loopback_name(&self, name: &str) -> Result<(), String> {
        if self.allows(IpAddr::V4(Ipv4Addr::LOCALHOST))
            || self.allows(IpAddr::V6(Ipv6Addr::LOCALHOST))
        {
            return Ok(());
        }
        Err(format!(
            "{REFUSAL}: {name} names loopback (RFC 6761), the machine that resolves it, \
             through fetch.proxy the proxy itself; add 127.0.0.0/8 and ::1 to network.allow \
             to crawl it (it may resolve to either)"
        ))
    }

    /// A page on the proxy's host passes when every address of it is allowed: the one
    /// the connection goes to is not chosen here. A name that does not resolve is left
    /// to the request, which fails as the proxy's connection does.
    async fn check_proxy_host(&self, name: &str) -> Result<(), String> {
        let Ok(resolved) = tokio::net::lookup_host((name, 0)).await else {
            return Ok(());
        };
        let refused: Vec<IpAddr> = resolved
            .map(|a| a.ip())
            .filter(|ip| !self.allows(*ip))
            .collect();
        if refused.is_empty() {
            return Ok(());
        }
        Err(format!(
            "{REFUSAL}: {name} is fetch.proxy's host, trusted as the proxy only, and resolves \
             to addresses that are not public ({}); name a seed on it, or add their range \
             to network.allow, to crawl it",
            listed(&refused)
        ))
    }
}

/// Whether `name` is `localhost` or a name under it, which resolvers answer with
/// loopback wherever they run (RFC 6761 §6.3).
pub(crate) fn names_loopback(name: &str) -> bool {
    const LOCALHOST: &str = "localhost";
    let name = name.strip_suffix('.').unwrap_or(name);
    let Some(start) = name.len().checked_sub(LOCALHOST.len()) else {
        return false;
    };
    name.get(start..)
        .is_some_and(|last| last.eq_ignore_ascii_case(LOCALHOST))
        && (start == 0 || name.as_bytes()[start - 1] == b'.')
}

fn refusal(host: &str, ips: &[IpAddr]) -> String {
    format!(
        "{REFUSAL}: {host} resolves only to addresses that are not public ({}); \
         add their range to network.allow to crawl them",
        listed(ips)
    )
}

/// Refused addresses as a message lists them, each IPv6 one with an IPv4 address inside
/// (NAT64, 6to4, translated) with that address: it is judged by it, and only its range
/// in `network.allow` opens it; the IPv6 address alone, added as the message says,
/// opened nothing. An IPv4-mapped one is written with it already (`::ffff:10.0.0.1`),
/// and allowed as written.
fn listed(ips: &[IpAddr]) -> String {
    let listed: Vec<String> = ips
        .iter()
        .map(|ip| match ip {
            IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => match embedded_v4(*v6) {
                Some(v4) => format!("{v6} judged as {v4}"),
                None => v6.to_string(),
            },
            _ => ip.to_string(),
        })
        .collect();
    listed.join(", ")
}

/// Whether an address is on the public internet.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_unspecified()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && v4.octets()[2] == 0)
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_v4(v6) {
                return is_public(IpAddr::V4(v4));
            }
            let [first, second, third, fourth, ..] = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first & 0xffc0) == 0xfec0
                // Documentation: 2001:db8::/32, 3fff::/20.
                || (first == 0x2001 && second == 0x0db8)
                || (first & 0xfff0) == 0x3ff0
                // IETF protocol assignments, 2001::/23: Teredo (2001::/32) tunnels to
                // an IPv4 host behind a NAT, benchmarking, ORCHID.
                || (first == 0x2001 && second < 0x0200)
                // Local-use NAT64 (64:ff9b:1::/48), which translates to a network's own
                // IPv4 addresses; discard-only (100::/64).
                || (first == 0x64 && second == 0xff9b && third == 1)
                || (first == 0x100 && second == 0 && third == 0 && fourth == 0)
                // SRv6 segment identifiers (5f00::/16, RFC 9602): a network's own routing
                // functions, never reachable from the internet.
                || first == 0x5f00)
        }
    }
}

/// The IPv4 address an IPv6 one leads to: mapped (`::ffff:a.b.c.d`), compatible
/// (`::a.b.c.d`), translated (SIIT, `::ffff:0:a.b.c.d`), NAT64 (`64:ff9b::a.b.c.d`) and
/// 6to4 (`2002:aabb:ccdd::`) addresses reach the IPv4 host inside them, so they are as
/// public as it is. `::` and `::1` are IPv6's own (RFC 4291 leaves them out of the
/// compatible range): read as `0.0.0.1`, `::1` allowed opened nothing.
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let last = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match s {
        [0, 0, 0, 0, 0, 0, 0, 0 | 1] => None,
        [0, 0, 0, 0, 0, 0xffff | 0, ..] | [0, 0, 0, 0, 0xffff, 0, ..] => Some(last(s[6], s[7])),
        [0x64, 0xff9b, 0, 0, 0, 0, ..] => Some(last(s[6], s[7])),
        [0x2002, hi, lo, ..] => Some(last(hi, lo)),
        _ => None,
    }
}

/// An allowed range in IPv6's spelling of IPv4 addresses (`::ffff:10.0.0.0/104`, as a
/// dual-stack server logs its IPv4 clients) as the IPv4 range it names (`10.0.0.0/8`).
/// Kept as written, it held only the mapped spelling, and a name resolving to an IPv4
/// address in it was refused, though the address is the one [`NetworkPolicy::allows`]
/// judges that spelling by.
fn ipv4_range(net: IpNet) -> IpNet {
    let IpNet::V6(v6) = net else {
        return net;
    };
    match (
        v6.network().to_ipv4_mapped(),
        v6.prefix_len().checked_sub(96),
    ) {
        (Some(v4), Some(len)) => Ipv4Net::new(v4, len).map_or(net, IpNet::V4),
        _ => net,
    }
}

/// The resolver reqwest connects through: the system's, then the policy.
pub struct GuardedResolver {
    policy: Arc<NetworkPolicy>,
    /// Told the address each connection to a name goes to first, which it counts the
    /// name's requests under.
    ips: Option<Arc<IpGate>>,
}

impl GuardedResolver {
    pub fn new(policy: Arc<NetworkPolicy>) -> Self {
        Self { policy, ips: None }
    }

    /// Tells `ips` where names resolve to.
    pub fn teaching(self, ips: Arc<IpGate>) -> Self {
        Self {
            ips: Some(ips),
            ..self
        }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.policy);
        let ips = self.ips.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            // reqwest's `socks5` connector asks for an IPv6 address as the URL writes it,
            // in brackets, which getaddrinfo takes for a name that does not resolve.
            let bare = host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(&host);
            // A name under `localhost` (`docs.localhost`, a dev server's subdomain) is
            // loopback (RFC 6761 §6.3), as browsers and curl reach it: resolved as
            // `localhost` is, for the system resolver without systemd-resolved knows no
            // such name.
            let lookup = if names_loopback(bare) {
                "localhost"
            } else {
                bare
            };
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((lookup, 0)).await?.collect();
            let allowed: Vec<SocketAddr> = if policy.is_trusted(&host) || policy.is_proxy(&host) {
                resolved
            } else {
                let allowed: Vec<SocketAddr> = resolved
                    .iter()
                    .copied()
                    .filter(|a| policy.allows(a.ip()))
                    .collect();
                if allowed.is_empty() {
                    let ips: Vec<IpAddr> = resolved.iter().map(SocketAddr::ip).collect();
                    return Err(refusal(&host, &ips).into());
                }
                allowed
            };
            if let (Some(ips), Some(first)) = (ips, allowed.first()) {
                ips.learn(bare, first.ip());
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_public_addresses_pass_by_default() {
        let policy = NetworkPolicy::default();
        for private in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:10.0.0.1",
            "::",
            "::10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:c0a8:101::1",
            "fec0::1",
            "192.0.0.170",
            "::ffff:0:7f00:1",
            "::ffff:0:a9fe:a9fe",
            "64:ff9b:1::a00:1",
            "64:ff9b:1:a00:1::",
            "2001:0:4136:e378:8000:63bf:f5ff:fffe",
            "2001:2::1",
            "3fff::1",
            "100::1",
            "5f00::1",
        ] {
            assert!(!policy.allows(ip(private)), "{private}");
        }
        for public in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700::1111",
            "64:ff9b::101:101",
            "2002:101:101::1",
            "::ffff:0:101:101",
            "2001:4860:4860::8888",
            "2a00:1450:4001::1",
        ] {
            assert!(policy.allows(ip(public)), "{public}");
        }
    }

    /// An IPv6 range allowed (a network's NAT64 prefix, `64:ff9b::/96`, or `::/0` for
    /// its IPv6 hosts) holds the IPv4 addresses inside it to the IPv4 ranges, as README
    /// says an address with one inside is judged: allowed whole, they let a page reach
    /// loopback and the cloud metadata address through the prefix.
    #[test]
    fn an_ipv6_range_allowed_opens_no_ipv4_address_inside_it() {
        for range in ["64:ff9b::/96", "::/0", "2002::/16"] {
            let policy = NetworkPolicy::new(vec![range.parse().unwrap()]);
            for inside in [
                "64:ff9b::7f00:1",
                "64:ff9b::a9fe:a9fe",
                "::ffff:10.1.2.3",
                "2002:7f00:1::1",
            ] {
                assert!(!policy.allows(ip(inside)), "{range} allowed {inside}");
            }
            assert!(
                policy.allows(ip("64:ff9b::808:808")),
                "{range}: public inside"
            );
        }
        let v6 = NetworkPolicy::new(vec!["fd00::/8".parse().unwrap()]);
        assert!(v6.allows(ip("fd12::1")));
        // IPv6's own loopback is no IPv4 address: `::1` allowed opens it (a dev server
        // listening on `[::1]` only), as README's advice for `localhost` says.
        let loopback = NetworkPolicy::new(vec!["::1/128".parse().unwrap()]);
        assert!(loopback.allows(ip("::1")));
        assert!(!loopback.allows(ip("127.0.0.1")));
        assert!(!NetworkPolicy::new(Vec::new()).allows(ip("::1")));
    }

    #[tokio::test]
    async fn allowed_ranges_and_trusted_seeds_pass() {
        let policy = NetworkPolicy::new(vec!["10.0.0.0/8".parse().unwrap()]);
        assert!(policy.allows(ip("10.1.2.3")));
        assert!(!policy.allows(ip("192.168.1.1")));
        for inside in ["::ffff:10.1.2.3", "64:ff9b::a01:203", "2002:a01:203::1"] {
            assert!(policy.allows(ip(inside)), "{inside}");
        }
        assert!(!policy.allows(ip("::ffff:192.168.1.1")));
        let mapped = NetworkPolicy::new(vec!["::ffff:10.0.0.0/104".parse().unwrap()]);
        for inside in ["10.1.2.3", "::ffff:10.1.2.3", "64:ff9b::a01:203"] {
            assert!(mapped.allows(ip(inside)), "{inside}");
        }
        assert!(!mapped.allows(ip("192.168.1.1")) && !mapped.allows(ip("::ffff:192.168.1.1")));
        let u = |s: &str| Url::parse(s).unwrap();
        assert!(policy
            .check_url(&u("http://169.254.169.254/latest/meta-data/"))
            .await
            .is_err());
        assert!(policy.check_url(&u("http://10.0.0.1/")).await.is_ok());
        policy.trust([&u("http://192.168.1.1:8080/")]);
        assert!(policy.check_url(&u("http://192.168.1.1/x")).await.is_ok());
        assert!(
            policy.check_url(&u("http://example.com/")).await.is_ok(),
            "names are checked when resolved"
        );
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_refused_unless_trusted() {
        let policy = Arc::new(NetworkPolicy::default());
        let resolver = GuardedResolver::new(Arc::clone(&policy));
        let name = |s: &str| s.parse::<Name>().unwrap();
        let err = resolver
            .resolve(name("localhost"))
            .await
            .err()
            .expect("refused");
        assert!(err.to_string().starts_with(REFUSAL), "{err}");
        policy.trust([&Url::parse("http://localhost:1234/").unwrap()]);
        assert!(resolver.resolve(name("localhost")).await.is_ok());
    }

    #[test]
    fn localhost_and_the_names_under_it_name_loopback() {
        for name in [
            "localhost",
            "localhost.",
            "admin.localhost",
            "a.b.LOCALHOST.",
        ] {
            assert!(names_loopback(name), "{name}");
        }
        for name in [
            "notlocalhost",
            "localhost.example",
            "localhost..",
            "ocalhost",
            "",
        ] {
            assert!(!names_loopback(name), "{name}");
        }
    }

    /// `localhost` resolves to `127.0.0.1`, `::1` or both, as the machine's `/etc/hosts`
    /// says, and the resolver connects only to the addresses allowed: the refusal said
    /// to add `127.0.0.0/8` *or* `::1`, and a crawl on a machine whose `localhost` is
    /// IPv4 alone, given `::1`, was refused again.
    #[tokio::test]
    async fn a_refused_localhost_asks_for_both_loopback_ranges() {
        let policy = NetworkPolicy::default();
        let url = Url::parse("http://localhost:3000/").unwrap();
        let err = policy.check_url(&url).await.expect_err("refused");
        assert!(
            err.contains("add 127.0.0.0/8 and ::1 to network.allow"),
            "{err}"
        );
    }

    /// The proxy's name resolves to any address for the connection to the proxy, but a
    /// page on its host, another port of it or its own, is checked like any other.
    #[tokio::test]
    async fn the_proxys_host_is_trusted_as_the_proxy_only() {
        let policy = Arc::new(NetworkPolicy::default());
        let resolver = GuardedResolver::new(Arc::clone(&policy));
        let u = |s: &str| Url::parse(s).unwrap();
        policy.trust_proxy(&u("socks5://LocalHost:1080"));
        let name = "localhost".parse::<Name>().unwrap();
        assert!(resolver.resolve(name).await.is_ok());
        for page in ["http://localhost:22/", "http://localhost:1080/"] {
            let err = policy.check_url(&u(page)).await.expect_err(page);
            assert!(err.starts_with(REFUSAL), "{err}");
        }
        policy.trust_proxy(&u("http://127.0.0.1:3128"));
        assert!(policy.check_url(&u("http://127.0.0.1:22/")).await.is_err());
    }
}
