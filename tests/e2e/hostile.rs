//! The hostile web: a crawler must never be turned against the network it runs in.

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::raw::{Ending, RawReply, RawSite};
use super::site::{Resource, SiteBuilder, TestSite};
use super::socks::SocksProxy;
use super::tls::TlsSite;
use super::{Db, Harness};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovered_hosts_on_private_addresses_are_refused_before_any_connection() {
    let mut local_name = String::new();
    let (site, harness) = crawl_past_the_guard(|port| {
        local_name = format!("http://localhost:{port}/secret");
        (
            format!("<a href='http://10.0.0.1/admin'>router</a><a href='{local_name}'>local</a>"),
            "http://169.254.169.254/latest/meta-data/".into(),
        )
    })
    .await;

    let db = harness.db().await;
    refused_all(
        &db,
        &[
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.1/admin",
            local_name.as_str(),
        ],
    )
    .await;
    assert_eq!(
        site.count(&site.url(0, "/secret")),
        0,
        "nothing reached the loopback service by name"
    );
    assert_eq!(
        db.page(&site.url(0, "/moved")).await.and_then(|p| p.status),
        Some(302)
    );
}

/// Crawls a site with every host in scope, so that only the address guard stands between
/// the crawl and what it links to: `page(port)` gives the home page's links besides
/// `/moved` and where `/moved` redirects. `/secret` answers, should anything get there.
async fn crawl_past_the_guard(page: impl FnOnce(&str) -> (String, String)) -> (TestSite, Harness) {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    let port = h.rsplit(':').next().unwrap_or_default().to_owned();
    let (links, moved_to) = page(&port);
    b.add(
        &h,
        "/",
        Resource::Html(format!("<a href='/moved'>m</a>{links}")),
    );
    b.add(&h, "/moved", Resource::Redirect(302, moved_to));
    b.add(
        &h,
        "/secret",
        Resource::Html("<title>Secret</title>".into()),
    );
    let site = b.start();
    let harness = Harness::default();
    harness
        .crawl(&[site.url(0, "/")], "[scope]\nhosts = [\"*\"]\n")
        .await;
    (site, harness)
}

/// Checks that each of `urls` has a row the address guard refused before any request.
async fn refused_all(db: &Db, urls: &[&str]) {
    for refused in urls {
        let row = db
            .page(refused)
            .await
            .unwrap_or_else(|| panic!("{refused} has a row"));
        assert_eq!(
            (row.status, row.error_kind.as_deref()),
            (None, Some("address_refused")),
            "{refused}: {:?}",
            row.error
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_in_the_environment_is_not_used_to_get_past_the_address_guard() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    let port = h.rsplit(':').next().unwrap_or_default().to_owned();
    let secret = format!("http://localhost:{port}/secret");
    let home = format!("<a href='{secret}'>local</a>");
    b.add(&h, "/", Resource::Html(home.clone()));
    b.add(
        &h,
        "/secret",
        Resource::Html("<title>Secret</title>".into()),
    );
    let site = b.start();
    // A proxy that would answer for both: a proxied request names its whole URL, and the
    // crawler resolves only the proxy's address.
    let seed = site.url(0, "/");
    let proxy = RawSite::start(vec![
        (seed.as_str(), RawReply::ok("text/html", home.as_str())),
        (
            secret.as_str(),
            RawReply::ok("text/html", "<title>Secret</title>"),
        ),
    ])
    .await;
    let harness = Harness::default();
    let config = harness.write_config(
        &harness.test_config_text(std::slice::from_ref(&seed), "[scope]\nhosts = [\"*\"]\n"),
    );
    let proxy_url = proxy.url("");
    let out = tokio::task::spawn_blocking(move || {
        // A child process of its own: the variables cannot leak into other tests.
        Command::new(env!("CARGO_BIN_EXE_pipecrawl"))
            .args(["crawl", "--config", config.to_str().unwrap_or_default()])
            .env("RUST_LOG", "warn")
            .env("HTTP_PROXY", &proxy_url)
            .env("http_proxy", &proxy_url)
            .env("ALL_PROXY", &proxy_url)
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .output()
            .expect("run the pipecrawl binary")
    })
    .await
    .expect("the binary ran");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let row = harness
        .db()
        .await
        .page(&secret)
        .await
        .expect("the local link has a row");
    assert_eq!(
        (row.status, row.error_kind.as_deref()),
        (None, Some("address_refused"))
    );
    assert_eq!(site.count(&seed), 1, "the seed was fetched directly");
    assert_eq!(
        (proxy.count(&seed), proxy.count(&secret)),
        (0, 0),
        "nothing went through the proxy"
    );
}

/// Where a proxy is the only way out, `fetch.proxy` carries every request, robots.txt
/// included, with the credentials its URL holds. The names pages lead to are the proxy's
/// to resolve (these resolve nowhere), and a URL naming a private address is still
/// refused before any request. The proxy is named by a name that resolves to loopback,
/// which the guard lets through as it does a seed's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_named_in_the_config_carries_every_request() {
    let seed = "http://pipecrawl.invalid/";
    let other = "http://elsewhere.invalid/b";
    let private = "http://10.0.0.1/admin";
    let home = format!("<title>Home</title><a href='{other}'>b</a><a href='{private}'>a</a>");
    let proxy = RawSite::start(vec![
        (seed, RawReply::ok("text/html", home.as_str())),
        (other, RawReply::ok("text/html", "<title>Elsewhere</title>")),
        (private, RawReply::ok("text/html", "<title>Admin</title>")),
    ])
    .await;
    let port = proxy.authority.rsplit(':').next().unwrap_or_default();
    let harness = Harness::default();
    harness
        .crawl(
            &[seed.to_owned()],
            &format!(
                "[scope]\nhosts = [\"*\"]\n[fetch]\nproxy = \"http://crawler:s%40cret@localhost:{port}\"\n"
            ),
        )
        .await;

    let db = harness.db().await;
    for (url, title) in [(seed, "Home"), (other, "Elsewhere")] {
        let row = db.page(url).await.expect("a row");
        assert_eq!(row.title.as_deref(), Some(title), "{url}: {:?}", row.error);
    }
    refused_all(&db, &[private]).await;
    assert_eq!(
        proxy.count(private),
        0,
        "the private address was not asked for"
    );
    assert_eq!(proxy.count("http://pipecrawl.invalid/robots.txt"), 1);
    let head = proxy.head(seed).expect("the seed went through the proxy");
    assert!(
        head.to_ascii_lowercase()
            .contains("proxy-authorization: basic y3jhd2xlcjpzqgnyzxq="),
        "{head}"
    );
}

/// HTTPS through `fetch.proxy` goes by CONNECT: the proxy is told the name and port and
/// carries the TLS connection to wherever the name leads (here, a test server that
/// serves any name). The name never resolves here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_site_is_reached_through_the_proxy_by_connect() {
    let site = TlsSite::self_signed(&[("/", "<title>Tunnelled</title>")]).await;
    let (port, asked) = tunnelling_to(site.url("").trim_start_matches("https://").to_owned()).await;
    let harness = Harness::default();
    let seed = "https://pipecrawl.invalid/";
    harness
        .crawl(
            &[seed.to_owned()],
            &format!("[fetch]\naccept_invalid_certs = true\nproxy = \"http://127.0.0.1:{port}\"\n"),
        )
        .await;

    let row = harness.db().await.page(seed).await.expect("a row");
    assert_eq!(row.title.as_deref(), Some("Tunnelled"), "{:?}", row.error);
    let asked = asked.lock().unwrap_or_else(PoisonError::into_inner).clone();
    assert!(
        !asked.is_empty()
            && asked
                .iter()
                .all(|line| line.starts_with("CONNECT pipecrawl.invalid:443 ")),
        "{asked:?}"
    );
}

/// An HTTP proxy on loopback that answers every `CONNECT` by tunnelling to `origin`,
/// whatever it names; its port, and the request lines it was sent.
async fn tunnelling_to(origin: String) -> (u16, Arc<Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the proxy");
    let port = proxy.local_addr().expect("its address").port();
    let asked = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&asked);
    tokio::spawn(async move {
        while let Ok((mut client, _)) = proxy.accept().await {
            let (origin, log) = (origin.clone(), Arc::clone(&log));
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
                    if client.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let line = String::from_utf8_lossy(&head)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_owned();
                log.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(line);
                let Ok(mut upstream) = tokio::net::TcpStream::connect(&origin).await else {
                    return;
                };
                if client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await
                    .is_ok()
                {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                }
            });
        }
    });
    (port, asked)
}

/// A proxy that intercepts TLS (a corporate one) answers each site with a certificate
/// its own CA signs, which the machine does not trust yet. The row said only "a
/// self-signed certificate, a private CA's, or a server that leaves out its intermediate
/// certificate": the site's fault, for every site. It names the proxy's CA too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_a_proxy_signs_untrusted_says_the_proxy_may_intercept() {
    let interceptor = TlsSite::self_signed(&[("/", "<title>Intercepted</title>")]).await;
    let origin = interceptor
        .url("")
        .trim_start_matches("https://")
        .to_owned();
    let (port, _) = tunnelling_to(origin).await;
    let (kind, error) = https_seed_through(port, "").await;
    assert_eq!(kind.as_deref(), Some("tls"), "{error}");
    assert!(error.contains("UnknownIssuer"), "{error}");
    assert!(error.contains("fetch.proxy"), "{error}");
}

/// Crawls `https://pipecrawl.invalid/` through the HTTP proxy on `port` with `fetch`
/// keys added; its row's error kind and message.
async fn https_seed_through(port: u16, fetch: &str) -> (Option<String>, String) {
    let harness = Harness::default();
    let seed = "https://pipecrawl.invalid/";
    let extra = format!("[fetch]\n{fetch}proxy = \"http://127.0.0.1:{port}\"\n");
    harness.crawl(&[seed.to_owned()], &extra).await;
    let row = harness.db().await.page(seed).await.expect("a row");
    (row.error_kind, row.error.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_allow_opens_a_range_to_discovered_hosts() {
    links_by_name_and_mapped_address_are_followed(r#"["127.0.0.0/8", "::1"]"#).await;
}

/// A range written in IPv6's spelling of IPv4 addresses (`::ffff:127.0.0.0/104`, as a
/// dual-stack server logs its IPv4 clients) names those IPv4 addresses, as an address in
/// it is judged by the IPv4 address it reaches: it allowed the mapped spelling only, and a
/// name resolving to an address in it was refused, though the message said to list it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_allow_written_as_ipv4_mapped_ipv6_opens_the_ipv4_range() {
    links_by_name_and_mapped_address_are_followed(r#"["::ffff:127.0.0.0/104"]"#).await;
}

/// An IPv6 address with an IPv4 one inside (NAT64, as a DNS64 resolver answers for an
/// intranet's IPv4 name on an IPv6-only network; 6to4; translated) is judged by that IPv4
/// address, and only its range in `network.allow` opens it. The refusal named the IPv6
/// address alone and said to add "their range": that range added, the crawl was refused
/// again, word for word. It names the IPv4 address, and its range opens the URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_ipv6_address_with_an_ipv4_one_inside_names_the_ipv4_address_to_allow() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    let port = h.rsplit(':').next().unwrap_or_default().to_owned();
    let inside: Vec<String> = ["64:ff9b::7f00:1", "2002:7f00:1::1", "::ffff:0:7f00:1"]
        .iter()
        .map(|ip| format!("http://[{ip}]:{port}/x"))
        .collect();
    let links: String = inside
        .iter()
        .map(|u| format!("<a href='{u}'>x</a>"))
        .collect();
    b.add(&h, "/", Resource::Html(links));
    let site = b.start();
    let harness = Harness::default();
    let seeds = [site.url(0, "/")];
    harness.crawl(&seeds, "[scope]\nhosts = [\"*\"]\n").await;
    let db = harness.db().await;
    let urls: Vec<&str> = inside.iter().map(String::as_str).collect();
    refused_all(&db, &urls).await;
    for url in &urls {
        let error = db.page(url).await.and_then(|row| row.error);
        assert!(
            error.as_deref().is_some_and(|e| e.contains("127.0.0.1")),
            "{url}: {error:?}"
        );
    }
    harness
        .crawl(
            &seeds,
            "[scope]\nhosts = [\"*\"]\n[network]\nallow = [\"127.0.0.0/8\"]\n",
        )
        .await;
    let db = harness.db().await;
    for url in urls {
        let row = db.page(url).await.expect("a row");
        assert_ne!(
            row.error_kind.as_deref(),
            Some("address_refused"),
            "{url}: {:?}",
            row.error
        );
    }
}

/// Crawls a loopback site with `network.allow = allow`, whose home page links to it by
/// name (`localhost`, not a seed's host) and by its IPv4-mapped address: both are
/// fetched. Judged by the IPv4 address it reaches, allowed ranges included (README).
async fn links_by_name_and_mapped_address_are_followed(allow: &str) {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    let port = h.rsplit(':').next().unwrap_or_default().to_owned();
    let by_name = format!("http://localhost:{port}/by-name");
    let mapped = format!("http://[::ffff:7f00:1]:{port}/by-name");
    b.add(
        &h,
        "/",
        Resource::Html(format!("<a href='{by_name}'>n</a><a href='{mapped}'>m</a>")),
    );
    b.add(
        &h,
        "/by-name",
        Resource::Html("<title>Reached</title>".into()),
    );
    let site = b.start();
    let harness = Harness::default();
    harness
        .crawl(
            &[site.url(0, "/")],
            &format!("[scope]\nhosts = [\"*\"]\n[network]\nallow = {allow}\n"),
        )
        .await;
    let db = harness.db().await;
    for reached in [&by_name, &mapped] {
        let row = db.page(reached).await.expect("a row");
        assert_eq!(
            row.title.as_deref(),
            Some("Reached"),
            "{reached}: {:?}",
            row.error
        );
    }
}

/// A calendar: every month links to the next, forever.
pub(super) fn calendar(path: &str) -> String {
    let month: u64 = path
        .rsplit('=')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    format!(
        "<title>Month {month}</title><a href='/cal?month={}'>next</a>",
        month + 1
    )
}

/// Relative links that go one directory deeper on every page.
pub(super) fn deeper(_path: &str) -> String {
    "<title>Deeper</title><a href='more/'>more</a>".to_owned()
}

/// Every visit mints a new session id.
pub(super) fn sessions(path: &str) -> String {
    let n = path.len();
    format!("<title>Shop</title><a href='/shop;jsessionid=S{n}'>again</a><a href='/shop?PHPSESSID={n}&item=1'>item</a>")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crawler_traps_end_with_a_row_that_says_why() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(
        &h,
        "/",
        Resource::Html(
            "<a href='/cal?month=1'>c</a><a href='/more/'>d</a><a href='/shop'>s</a>".into(),
        ),
    );
    b.add_prefix(&h, "/cal", Resource::Dynamic(calendar));
    b.add_prefix(&h, "/more/", Resource::Dynamic(deeper));
    b.add_prefix(&h, "/shop", Resource::Dynamic(sessions));
    let site = b.start();
    let harness = Harness::default();
    harness
        .crawl(
            &[site.url(0, "/")],
            "[traps]\nfamily_budget = 20\nmax_repeated_segment = 5\n",
        )
        .await;

    let db = harness.db().await;
    let calendar_pages = db
        .scalar("SELECT count(*) FROM pages WHERE url LIKE '%/cal?month=%' AND status = 200")
        .await;
    assert_eq!(
        calendar_pages, 20,
        "the calendar stops at its family's budget"
    );
    let trapped: Vec<(String, String)> = db
        .pages()
        .await
        .into_iter()
        .filter(|p| p.error_kind.as_deref() == Some("trap"))
        .map(|p| (p.url, p.status.map(|s| s.to_string()).unwrap_or_default()))
        .collect();
    assert!(
        trapped.iter().any(|(u, _)| u.ends_with("/cal?month=21")),
        "{trapped:?}"
    );
    assert!(
        trapped
            .iter()
            .any(|(u, _)| u.contains("/more/more/more/more/more/more/")),
        "{trapped:?}"
    );
    assert!(
        trapped.iter().all(|(_, status)| status.is_empty()),
        "trapped URLs are not fetched"
    );
    let deepest = db
        .scalar("SELECT max(length(url)) FROM pages WHERE url LIKE '%/more/%' AND status = 200")
        .await;
    assert!(deepest < 200, "ever-deeper paths stop after a few levels");
    // Session ids are stripped: the shop is one page plus its item.
    let shop: Vec<String> = db
        .pages()
        .await
        .into_iter()
        .map(|p| p.url)
        .filter(|u| u.contains("/shop"))
        .collect();
    assert_eq!(
        shop,
        vec![site.url(0, "/shop"), site.url(0, "/shop?item=1")]
    );
    assert!(site
        .requested_urls()
        .iter()
        .all(|u| !u.contains("jsessionid") && !u.contains("PHPSESSID")));
}

/// A relative link that adds an empty segment on every page (`.//` on `/e/` is `/e//`,
/// then `/e///`): a server that folds `//` into `/` answers each with the same page.
fn slashes(_path: &str) -> String {
    "<title>Slashes</title><a href='.//'>again</a>".to_owned()
}

/// Empty path segments are segments: a path growing by them (`/e//`, `/e///`, …) is cut
/// by `traps.max_repeated_segment` as one growing by a name is. They were not counted,
/// so nothing but `traps.max_url_length` stopped it, some 2,000 requests for one page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_growing_by_empty_segments_is_a_trap() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(&h, "/", Resource::Html("<a href='/e/'>e</a>".into()));
    b.add_prefix(&h, "/e/", Resource::Dynamic(slashes));
    let site = b.start();
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;
    let db = harness.db().await;
    assert_eq!(
        db.scalar("SELECT count(*) FROM pages WHERE url LIKE '%/e/%' AND status = 200")
            .await,
        4,
        "/e/ to /e////: the next repeats the empty segment a fourth time"
    );
    let trap = db
        .page(&site.url(0, "/e/////"))
        .await
        .expect("the fourth level has a row");
    assert_eq!(
        (trap.status, trap.error_kind.as_deref()),
        (None, Some("trap"))
    );
    assert!(
        trap.error
            .as_deref()
            .is_some_and(|e| e.contains("repeated")),
        "{:?}",
        trap.error
    );
}

/// A servlet container's first answer to a client without its session cookie: the
/// cookie, and a redirect to the URL with the session id in it (`encodeRedirectURL`).
/// That is the URL itself once the id is stripped, so it is a cookie check (README),
/// asked again at once with the cookie, which gets the page. It was a redirect loop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_adding_a_session_id_and_its_cookie_is_a_cookie_check() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(&h, "/", Resource::Html("<a href='/shop'>shop</a>".into()));
    let minted = Resource::WithHeaders(
        vec![("Set-Cookie".into(), "JSESSIONID=S1; Path=/".into())],
        Box::new(Resource::Redirect(302, "/shop;jsessionid=S1".into())),
    );
    let page = Resource::Html("<title>Shop</title>".into());
    b.add(&h, "/shop", Resource::Sequence(vec![minted, page]));
    let site = b.start();
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;
    let shop = site.url(0, "/shop");
    let row = harness.db().await.page(&shop).await.expect("a row");
    assert_eq!(
        (row.status, row.title.as_deref(), row.error_kind.as_deref()),
        (Some(200), Some("Shop"), None),
        "{:?}",
        row.error
    );
    assert_eq!(site.count(&shop), 2, "the check, then the page");
    assert!(site
        .requested_urls()
        .iter()
        .all(|u| !u.contains("jsessionid")));
}

/// A page that links to the next one: a host with as many pages as a crawl will take.
fn chain(path: &str) -> String {
    let n: u32 = path
        .rsplit('/')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    format!(
        "<title>Chain {n}</title><a href='/chain/{}'>next</a>",
        n + 1
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_beyond_its_page_budget_is_cut_there_across_a_resume() {
    const BUDGET: usize = 10;
    let mut b = SiteBuilder::bind(2).await;
    let (big, small) = (b.authority(0), b.authority(1));
    let mut small_home = "<title>Small</title>".to_owned();
    for i in 1..BUDGET - 1 {
        small_home.push_str(&format!("<a href='/s/{i}'>s</a>"));
        b.add(
            &small,
            &format!("/s/{i}"),
            Resource::Html("<title>S</title>".into()),
        );
    }
    b.add(&small, "/", Resource::Html(small_home));
    b.add(
        &big,
        "/",
        Resource::Html("<a href='/chain/0'>chain</a>".into()),
    );
    b.add_prefix(&big, "/chain/", Resource::Dynamic(chain));
    let site = b.start();
    let pages_requested = |authority: &str| {
        site.hits_for(authority)
            .iter()
            .filter(|h| h.path != "/robots.txt")
            .count()
    };
    let harness = Harness::default();
    let seeds = [site.url(0, "/"), site.url(1, "/")];
    let budget = format!("[traps]\nmax_pages_per_host = {BUDGET}\n");

    // The first run stops early; the second resumes and must count what the first did.
    harness
        .crawl(&seeds, &format!("{budget}[scope]\nmax_pages = 4\n"))
        .await;
    assert!(pages_requested(&big) < BUDGET, "the first run stops short");
    harness.crawl(&seeds, &budget).await;

    assert_eq!(pages_requested(&big), BUDGET, "{:?}", site.hits_for(&big));
    let db = harness.db().await;
    let cut = site.url(0, &format!("/chain/{}", BUDGET - 1));
    let trap = db
        .page(&cut)
        .await
        .unwrap_or_else(|| panic!("{cut} has a row"));
    assert_eq!(
        (trap.status, trap.error_kind.as_deref()),
        (None, Some("trap"))
    );
    assert!(
        trap.error
            .as_deref()
            .is_some_and(|e| e.contains(&format!("traps.max_pages_per_host = {BUDGET}"))),
        "{:?}",
        trap.error
    );
    assert_eq!(site.count(&cut), 0);
    assert_eq!(
        db.scalar("SELECT count(*) FROM pages WHERE error_kind = 'trap'")
            .await,
        1
    );
    // The other host has its own budget, and fewer pages than it.
    assert_eq!(pages_requested(&small), BUDGET - 1);
    assert_eq!(
        db.scalar(&format!(
            "SELECT count(*) FROM pages WHERE url LIKE 'http://{small}/%' AND status = 200"
        ))
        .await,
        i64::try_from(BUDGET - 1).expect("a small number")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_drip_is_cut_off_and_binary_served_as_html_is_not_parsed() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(
        &h,
        "/",
        Resource::Html("<a href='/drip'>d</a><a href='/steady'>s</a><a href='/binary'>b</a><a href='/fine'>f</a>".into()),
    );
    b.add(
        &h,
        "/drip",
        Resource::Drip(std::time::Duration::from_millis(200), 10_000),
    );
    // Just above fetch.min_bytes_per_sec, for longer than fetch.timeout_ms.
    b.add(
        &h,
        "/steady",
        Resource::Drip(std::time::Duration::from_millis(5), 1_000_000),
    );
    let mut png = vec![
        0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d,
    ];
    png.extend_from_slice(b"<title>not a title</title><a href='/never'>x</a>");
    b.add(&h, "/binary", Resource::Typed("text/html", png));
    b.add(&h, "/fine", Resource::Html("<title>Fine</title>".into()));
    let site = b.start();
    let harness = crawl_a_drip(&site, 5000).await;

    let db = harness.db().await;
    let drip = db
        .page(&site.url(0, "/drip"))
        .await
        .expect("the drip has a row");
    assert_eq!(
        (drip.status, drip.error_kind.as_deref()),
        (Some(200), Some("timeout"))
    );
    assert!(
        drip.error
            .as_deref()
            .is_some_and(|e| e.contains("min_bytes_per_sec")),
        "cut by the rate, not the response timeout: {:?}",
        drip.error
    );
    // Never too slow, so cut by the time for a whole response.
    let steady = db
        .page(&site.url(0, "/steady"))
        .await
        .expect("the steady drip has a row");
    assert_eq!(
        (
            steady.status,
            steady.error_kind.as_deref(),
            steady
                .error
                .is_some_and(|e| e.contains("min_bytes_per_sec"))
        ),
        (Some(200), Some("timeout"), false)
    );
    let binary = db
        .page(&site.url(0, "/binary"))
        .await
        .expect("the binary page has a row");
    assert_eq!(
        (binary.title, binary.error_kind.as_deref()),
        (None, Some("binary"))
    );
    assert_eq!(site.count(&site.url(0, "/never")), 0);
    assert_eq!(
        db.page(&site.url(0, "/fine"))
            .await
            .and_then(|p| p.title)
            .as_deref(),
        Some("Fine")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_a_calendar_ends_where_it_keeps_going_deeper() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(
        &h,
        "/",
        Resource::Html("<a href='/cal?month=1'>calendar</a>".into()),
    );
    b.add_prefix(&h, "/cal", Resource::Dynamic(calendar));
    let site = b.start();
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;
    let db = harness.db().await;
    // Month 1 sits at depth 1; 50 levels further (traps.family_depth_span) it is a trap.
    assert_eq!(
        db.scalar("SELECT count(*) FROM pages WHERE url LIKE '%/cal?%' AND status = 200")
            .await,
        51
    );
    let trap = db
        .page(&site.url(0, "/cal?month=52"))
        .await
        .expect("the next month has a row");
    assert_eq!(trap.error_kind.as_deref(), Some("trap"));
}

/// `n` incompressible URL-safe characters, the same every run: compression cannot bring
/// them under PostgreSQL's limits.
fn noise(n: usize) -> String {
    let mut rng = fastrand::Rng::with_seed(7);
    (0..n).map(|_| rng.alphanumeric()).collect()
}

/// Text that PostgreSQL refuses outright (index entries over 2,704 bytes, over 1 MB of
/// search words, NUL) must not stop a crawl there: what is kept is bounded the same way
/// on both backends, so both hold the same rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_postgresql_refuses_is_bounded_alike_on_both_backends() {
    let Some(server) = super::postgres::TestPostgres::start(
        "what_postgresql_refuses_is_bounded_alike_on_both_backends",
    ) else {
        return;
    };
    let words: Vec<String> = (0..150_000).map(|i| format!("w{i}{}", noise(4))).collect();
    let words = words.join(" ");
    let kept = format!("/kept?x={}", noise(2_400));
    let too_long = format!("/long?x={}", noise(4_000));
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(
        &h,
        "/robots.txt",
        Resource::Typed(
            "text/plain",
            b"User-agent: *\0\nDisallow: /private\n".to_vec(),
        ),
    );
    b.add(
        &h,
        "/",
        Resource::Html(format!(
            "<a href='/b'>{words}</a><a href='/c'>nul\0byte</a><a href='/typed'>typed</a><a href='{kept}'>kept</a>\
             <a href='{too_long}'>too long</a><a href='/private'>p</a><title>{words}"
        )),
    );
    b.add(&h, "/b", Resource::Html("<title>b</title>".into()));
    b.add(&h, "/c", Resource::Html("<title>c</title>".into()));
    // A type with parameters past a B-tree entry's limit: `content_type` is indexed.
    let parameters = format!("text/html; x={}; charset=windows-1252", noise(3_000));
    b.add(
        &h,
        "/typed",
        Resource::WithHeaders(
            vec![("content-type".into(), parameters)],
            Box::new(Resource::Typed(
                "text/html",
                b"<title>caf\xe9</title>".to_vec(),
            )),
        ),
    );
    let site = b.start();

    let harness = Harness::default();
    let sqlite = harness.db_path().display().to_string();
    let postgres = server.database("bounded").await;
    let text = harness.test_config_text(&[site.url(0, "/")], "");
    let pg_text = text.replace(&format!("{sqlite:?}"), &format!("{postgres:?}"));
    for text in [text, pg_text] {
        let config = pipecrawl::Config::from_toml(&text, "test").expect("a valid config");
        pipecrawl::crawl(config, std::future::pending())
            .await
            .expect("the crawl succeeds");
    }

    const PAGES: &str = "SELECT url, coalesce(error_kind, ''), \
                         CAST(length(coalesce(title, '')) AS BIGINT), \
                         coalesce(content_type, '') FROM pages";
    const LINKS: &str = "SELECT target_url, anchor_text FROM links";
    let sqlite = sqlx::SqlitePool::connect(&format!("sqlite://{sqlite}"))
        .await
        .expect("open the SQLite results");
    let postgres = sqlx::PgPool::connect(&postgres)
        .await
        .expect("open the PostgreSQL results");
    let mut pages: Vec<(String, String, i64, String)> = sqlx::query_as(PAGES)
        .fetch_all(&sqlite)
        .await
        .expect("pages");
    let mut pg_pages: Vec<(String, String, i64, String)> = sqlx::query_as(PAGES)
        .fetch_all(&postgres)
        .await
        .expect("pages");
    let mut links: Vec<(String, String)> = sqlx::query_as(LINKS)
        .fetch_all(&sqlite)
        .await
        .expect("links");
    let mut pg_links: Vec<(String, String)> = sqlx::query_as(LINKS)
        .fetch_all(&postgres)
        .await
        .expect("links");
    for rows in [&mut pages, &mut pg_pages] {
        rows.sort();
    }
    for rows in [&mut links, &mut pg_links] {
        rows.sort();
    }
    let short = |url: &str| url.chars().take(60).collect::<String>();
    assert!(
        pages == pg_pages,
        "pages: SQLite {:?}, PostgreSQL {:?}",
        pages
            .iter()
            .map(|p| (short(&p.0), &p.1, p.2, short(&p.3)))
            .collect::<Vec<_>>(),
        pg_pages
            .iter()
            .map(|p| (short(&p.0), &p.1, p.2, short(&p.3)))
            .collect::<Vec<_>>()
    );
    assert!(
        links == pg_links,
        "links: SQLite {:?}, PostgreSQL {:?}",
        links
            .iter()
            .map(|l| (short(&l.0), l.1.len()))
            .collect::<Vec<_>>(),
        pg_links
            .iter()
            .map(|l| (short(&l.0), l.1.len()))
            .collect::<Vec<_>>()
    );

    let url = |path: &str| site.url(0, path);
    let row = |path: &str| pages.iter().find(|p| p.0 == url(path)).cloned();
    let title = row("/").expect("the seed's page").2;
    assert!((4_000..=4_096).contains(&title), "title of {title} bytes");
    assert_eq!(row("/private").map(|p| p.1), Some("robots".into()));
    // Its type and charset, which the page was read in.
    assert_eq!(
        row("/typed").map(|p| p.3),
        Some("text/html; charset=windows-1252".into())
    );
    // Past `traps.max_url_length` (2048): a row that says so, indexed on both.
    assert_eq!(row(&kept).map(|p| p.1), Some("trap".into()));
    assert!(row(&too_long).is_none(), "a 4 KB URL is not kept at all");
    let targets: Vec<&str> = links.iter().map(|l| l.0.as_str()).collect();
    assert!(targets.contains(&url(&kept).as_str()));
    assert!(!targets.contains(&url(&too_long).as_str()));
    let anchor = |path: &str| links.iter().find(|l| l.0 == url(path)).map(|l| l.1.len());
    assert!(anchor("/b").is_some_and(|n| (4_000..=4_096).contains(&n)));
    assert_eq!(anchor("/c"), Some("nulbyte".len()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_without_a_location_is_a_redirect_error() {
    let (raw, _harness, db) = crawl_routes(vec![
        (
            "/nowhere",
            RawReply::new("HTTP/1.1 302 Found\r\nContent-Length: 0", "", Ending::Close),
        ),
        (
            "/not-modified",
            RawReply::new("HTTP/1.1 304 Not Modified", "", Ending::Close),
        ),
    ])
    .await;
    let nowhere = db.page(&raw.url("/nowhere")).await.expect("a row");
    assert_eq!(
        (nowhere.status, nowhere.error_kind.as_deref()),
        (Some(302), Some("redirect"))
    );
    assert!(
        nowhere
            .error
            .as_deref()
            .is_some_and(|e| e.contains("Location")),
        "{:?}",
        nowhere.error
    );
    let not_modified = db.page(&raw.url("/not-modified")).await.expect("a row");
    assert_eq!(
        (not_modified.status, not_modified.error_kind),
        (Some(304), None),
        "a 304 names no target"
    );
}

/// Serves `routes` on a raw host and crawls from each of their paths, seeds all.
async fn crawl_routes(routes: Vec<(&str, RawReply)>) -> (RawSite, Harness, Db) {
    let paths: Vec<String> = routes.iter().map(|(path, _)| (*path).to_owned()).collect();
    let raw = RawSite::start(routes).await;
    let seeds: Vec<String> = paths.iter().map(|path| raw.url(path)).collect();
    let harness = Harness::default();
    harness.crawl(&seeds, "").await;
    let db = harness.db().await;
    (raw, harness, db)
}

/// Crawls a raw host from `home`, served at `/`, which may link to `/next`, an ordinary
/// page titled "Next".
async fn crawl_home(home: RawReply) -> (RawSite, Harness, Db) {
    crawl_home_with(home, "").await
}

/// [`crawl_home`] with `extra` config.
async fn crawl_home_with(home: RawReply, extra: &str) -> (RawSite, Harness, Db) {
    let raw = RawSite::start(vec![
        ("/", home),
        ("/next", RawReply::ok("text/html", "<title>Next</title>")),
    ])
    .await;
    let harness = Harness::default();
    harness.crawl(&[raw.url("/")], extra).await;
    let db = harness.db().await;
    (raw, harness, db)
}

/// The title stored for `url`, if it was fetched and has one.
async fn title_of(db: &Db, url: &str) -> Option<String> {
    db.page(url).await.and_then(|p| p.title)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_content_type_with_a_byte_beyond_ascii_is_still_html() {
    let body = "<title>Quoted</title><a href='/next'>next</a>";
    let mut head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=\xe2\x80\x9cutf-8\xe2\x80\x9d\r\nContent-Length: ".to_vec();
    head.extend_from_slice(body.len().to_string().as_bytes());
    let (raw, _harness, db) = crawl_home(RawReply::new(head, body, Ending::Close)).await;
    let page = db.page(&raw.url("/")).await.expect("a row");
    assert_eq!(
        (page.status, page.title.as_deref(), page.error_kind),
        (Some(200), Some("Quoted"), None)
    );
    assert_eq!(
        page.content_type.as_deref(),
        Some("text/html; charset=\u{201c}utf-8\u{201d}")
    );
    assert_eq!(
        title_of(&db, &raw.url("/next")).await.as_deref(),
        Some("Next"),
        "its link was followed"
    );
}

/// A Latin-1 server's PDF names itself canonical in a `Link` header with its path's raw
/// bytes, as it sends them in a `Location`: each byte that is not UTF-8 is the URL's
/// `%XX` escape of it, so an audit's "canonical elsewhere" does not list the page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_header_canonical_in_latin1_names_the_page_it_means() {
    let path = "/r%E9sum%E9.pdf";
    let head = b"HTTP/1.1 200 OK\r\nContent-Type: application/pdf\r\n\
                 Link: </r\xe9sum\xe9.pdf>; rel=\"canonical\"\r\nContent-Length: 8";
    let reply = RawReply::new(head.to_vec(), b"%PDF-1.4".to_vec(), Ending::Close);
    let (raw, harness, _) = crawl_routes(vec![(path, reply)]).await;
    let rows = super::query::rows(&harness, &["sql", "SELECT canonical_url FROM pages"]).await;
    let canonical: Vec<&str> = rows
        .iter()
        .map(|r| super::query::text(r, "canonical_url"))
        .collect();
    assert_eq!(canonical, [raw.url(path)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn utf16_declared_by_the_header_without_a_bom_is_text() {
    let utf16le: Vec<u8> = "<title>Wide</title><a href='/next'>n\u{e9}xt</a>"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let (raw, _harness, db) =
        crawl_home(RawReply::ok("text/html; charset=utf-16le", utf16le)).await;
    let page = db.page(&raw.url("/")).await.expect("a row");
    assert_eq!(
        (page.title.as_deref(), page.error_kind.as_deref()),
        (Some("Wide"), None),
        "{:?}",
        page.error
    );
    assert!(db
        .links()
        .await
        .contains(&(raw.url("/"), raw.url("/next"), "n\u{e9}xt".into())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_served_without_a_content_type_is_sniffed_and_parsed() {
    let untyped = |body: &[u8]| {
        RawReply::new(
            format!("HTTP/1.1 200 OK\r\nContent-Length: {}", body.len()),
            body.to_vec(),
            Ending::Close,
        )
    };
    let page =
        b"\n  <!DOCTYPE html><title>Untyped</title><a href='/text'>t</a><a href='/image'>i</a>";
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    png.extend_from_slice(b"<a href='/never'>x</a>");
    let text = b"plain words <a href='/never'>x</a>";
    let raw = RawSite::start(vec![
        ("/", untyped(page)),
        ("/text", untyped(text)),
        ("/image", untyped(&png)),
    ])
    .await;
    let harness = Harness::default();
    harness.crawl(&[raw.url("/")], "").await;

    let db = harness.db().await;
    let home = db.page(&raw.url("/")).await.expect("a row");
    assert_eq!(
        (
            home.status,
            home.content_type,
            home.title.as_deref(),
            home.error_kind
        ),
        (Some(200), None, Some("Untyped"), None),
        "sniffed as HTML, as browsers do"
    );
    for (other, len) in [("/text", text.len()), ("/image", png.len())] {
        let row = db.page(&raw.url(other)).await.expect("a row");
        assert_eq!(
            (row.status, row.title, row.error_kind, row.bytes),
            (Some(200), None, None, i64::try_from(len).ok()),
            "{other} is not HTML: recorded, not parsed"
        );
    }
    assert_eq!(raw.count("/never"), 0);
}

/// A gzipped answer of no type that is not HTML is told so by its first bytes and read no
/// further: the rest of its stream, left unread, is no body cut off (it was stored as a
/// `body` error, asked again and again for the same answer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gzipped_answer_of_no_type_that_is_not_html_is_no_body_cut_off() {
    // Random text, which gzip leaves long, so that the stream comes in many pieces.
    let body = super::site::gzip(noise(1 << 20).as_bytes());
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}",
        body.len()
    );
    // Allowed a retry, which a body cut off is given.
    let retry = "[retry]\nmax_attempts = 2\nbase_delay_ms = 10\n";
    let reply = RawReply::new(head, body.clone(), Ending::Close);
    let (raw, _harness, db) = crawl_home_with(reply, retry).await;
    let home = db.page(&raw.url("/")).await.expect("a row");
    assert_eq!(
        (home.status, home.error_kind, home.title, home.bytes),
        (Some(200), None, None, i64::try_from(body.len()).ok()),
        "{:?}",
        home.error
    );
    assert_eq!(raw.count("/"), 1, "asked once");
}

/// An image or an archive served as `text/html` (a download script's default type) is told
/// binary by its first kilobyte and read no further: it was read up to
/// `fetch.max_body_bytes` (5 MiB of every such file) only to be left unparsed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_served_as_html_is_read_no_further_than_its_head() {
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    png.resize(6 << 20, 0);
    let (raw, _harness, db) = crawl_home(RawReply::ok("text/html", png.clone())).await;
    let home = db.page(&raw.url("/")).await.expect("a row");
    assert_eq!(
        (
            home.status,
            home.error_kind.as_deref(),
            home.truncated,
            home.bytes
        ),
        (
            Some(200),
            Some("binary"),
            false,
            i64::try_from(png.len()).ok()
        ),
        "told binary by its head, its size the one declared"
    );
}

/// `X-Content-Type-Options: nosniff` on an answer of no known type keeps browsers from
/// sniffing it as HTML (the MIME Sniffing standard then leaves out its HTML patterns):
/// they show its markup as text, whose links lead nowhere. Security middleware sends the
/// header on every answer, a script's forgotten type included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markup_of_no_type_under_nosniff_is_not_sniffed_as_html() {
    let page = "<!DOCTYPE html><title>Untyped</title><a href='/next'>next</a>";
    for content_type in ["", "Content-Type: */*\r\n"] {
        let head = format!(
            "HTTP/1.1 200 OK\r\n{content_type}X-Content-Type-Options: NoSniff\r\n\
             Content-Length: {}",
            page.len()
        );
        let (raw, _harness, db) = crawl_home(RawReply::new(head, page, Ending::Close)).await;
        let home = db.page(&raw.url("/")).await.expect("a row");
        assert_eq!(
            (home.status, home.title, home.error_kind, home.bytes),
            (Some(200), None, None, i64::try_from(page.len()).ok()),
            "{content_type:?}: recorded as text, not parsed"
        );
        assert_eq!(
            raw.count("/next"),
            0,
            "{content_type:?}: no link read from it"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_under_a_content_type_naming_no_type_is_sniffed_and_parsed() {
    let page = "<html><title>Typeless</title><a href='/next'>next</a>";
    let (raw, _harness, db) = crawl_home(RawReply::ok("charset=utf-8", page)).await;
    let home = db.page(&raw.url("/")).await.expect("a row");
    assert_eq!(
        (home.title.as_deref(), home.error_kind),
        (Some("Typeless"), None),
        "`charset=utf-8` names no type: sniffed, as browsers do"
    );
    assert_eq!(
        title_of(&db, &raw.url("/next")).await.as_deref(),
        Some("Next")
    );
    // A type in quotes, or holding a character no token holds, is no type at all to the
    // standard's MIME parser: browsers sniff the body, as for none.
    for unknown in [
        "*/*",
        "application/unknown",
        "",
        "\"text/html\"",
        "text/ht@ml",
    ] {
        let (raw, _harness, db) = crawl_home(RawReply::ok(unknown, page)).await;
        let home = db.page(&raw.url("/")).await.expect("a row");
        assert_eq!(home.title.as_deref(), Some("Typeless"), "{unknown:?}");
    }
}

/// A `Content-Type` missing the `;` before its charset (PHP's `header("Content-Type:
/// text/html charset=utf-8")`) names its type up to the space, as browsers read it: the
/// page is HTML, not an unknown type recorded unread with no error, its links lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_content_type_missing_the_semicolon_before_its_charset_is_still_html() {
    let page = "<html><title>Spaced</title><a href='/next'>next</a>";
    for spaced in [
        "text/html charset=utf-8",
        "text/html\tcharset=UTF-8",
        "text/html (v1)",
    ] {
        let (raw, _harness, db) = crawl_home(RawReply::ok(spaced, page)).await;
        let home = db.page(&raw.url("/")).await.expect("a row");
        assert_eq!(
            (
                home.title.as_deref(),
                home.error_kind,
                home.content_type.as_deref()
            ),
            (Some("Spaced"), None, Some(spaced)),
            "{spaced:?}"
        );
        assert_eq!(
            title_of(&db, &raw.url("/next")).await.as_deref(),
            Some("Next"),
            "{spaced:?}: its link was followed"
        );
    }
}

/// An HTTPS server that closes a connection before answering on it, without a TLS
/// `close_notify` (a server restarting, or ending an idle kept-alive connection as the
/// request went out, as most servers end one), is asked again at once on a new
/// connection, as a plain HTTP one is: it was a final `request` error, the page lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_connection_closed_before_its_answer_is_asked_again() {
    let mut home = RawReply::ok("text/html", "<title>Home</title><a href='/next'>next</a>");
    home.ending = Ending::HangUpFirst;
    let raw = RawSite::start_tls(vec![
        ("/", home),
        ("/next", RawReply::ok("text/html", "<title>Next</title>")),
    ])
    .await;
    let harness = Harness::default();
    harness
        .crawl(&[raw.url("/")], "[fetch]\naccept_invalid_certs = true\n")
        .await;
    let db = harness.db().await;
    let page = db.page(&raw.url("/")).await.expect("a row");
    assert_eq!(
        (
            page.status,
            page.title.as_deref(),
            page.error_kind.as_deref()
        ),
        (Some(200), Some("Home"), None),
        "{:?}",
        page.error
    );
    assert_eq!(
        raw.count("/"),
        2,
        "asked again at once, within its one attempt"
    );
    assert_eq!(
        title_of(&db, &raw.url("/next")).await.as_deref(),
        Some("Next")
    );
}

/// An HTTPS site whose certificate does not verify (here self-signed) is not crawled,
/// and says why: `tls`, once, not retried as a network fault would be (asking again gets
/// the same certificate). `fetch.accept_invalid_certs` crawls it, as one's own lab or
/// intranet sites are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_site_whose_certificate_does_not_verify_is_refused_unless_accepted() {
    let pages = [
        ("/", "<title>Home</title><a href='/a'>a</a>"),
        ("/a", "<title>A</title>"),
    ];
    let site = TlsSite::self_signed(&pages).await;
    let harness = Harness::default();
    let retries = "[retry]\nmax_attempts = 3\nbase_delay_ms = 10\nmax_delay_ms = 20\n";
    harness.crawl(&[site.url("/")], retries).await;
    let page = harness
        .db()
        .await
        .page(&site.url("/"))
        .await
        .expect("a row for the seed");
    assert_eq!(page.error_kind.as_deref(), Some("tls"), "{page:?}");
    assert!(
        page.error
            .as_deref()
            .is_some_and(|e| e.contains("certificate")),
        "{page:?}"
    );
    assert_eq!(site.handshakes(), 1, "the certificate was asked for again");

    let harness = Harness::default();
    harness
        .crawl(
            &[site.url("/")],
            &format!("{retries}[fetch]\naccept_invalid_certs = true\n"),
        )
        .await;
    let db = harness.db().await;
    let titles: Vec<Option<String>> = db.pages().await.into_iter().map(|p| p.title).collect();
    assert_eq!(titles, [Some("Home".to_owned()), Some("A".to_owned())]);
}

/// The IPv6 forms of an IPv4 address (mapped, NAT64, 6to4) reach that address, so they
/// are judged by it: a redirect or a link to them is refused, as a link to it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_forms_of_a_loopback_address_are_refused_as_it_is() {
    let mut refused = Vec::new();
    let (site, harness) = crawl_past_the_guard(|port| {
        refused = vec![
            format!("http://[::ffff:7f00:1]:{port}/secret"),
            format!("http://[64:ff9b::7f00:1]:{port}/secret"),
            format!("http://[2002:7f00:1::1]:{port}/secret"),
        ];
        (
            format!(
                "<a href='{}'>n</a><a href='{}'>s</a>",
                refused[1], refused[2]
            ),
            format!("http://[::ffff:127.0.0.1]:{port}/secret"),
        )
    })
    .await;
    let db = harness.db().await;
    let refused: Vec<&str> = refused.iter().map(String::as_str).collect();
    refused_all(&db, &refused).await;
    assert_eq!(site.count(&site.url(0, "/secret")), 0, "nothing connected");
}

/// robots.txt is a body like any other: one that drips is cut once it falls below
/// `fetch.min_bytes_per_sec` after its first 3 s, not held for the whole response
/// timeout while the host's pages wait on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_robots_txt_that_drips_is_cut_at_the_minimum_rate() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(&h, "/", Resource::Html("<title>Home</title>".into()));
    b.add(
        &h,
        "/robots.txt",
        Resource::Drip(std::time::Duration::from_millis(200), 10_000),
    );
    let site = b.start();
    let harness = crawl_a_drip(&site, 60_000).await;
    let home = harness
        .db()
        .await
        .page(&site.url(0, "/"))
        .await
        .expect("the home page has a row");
    assert_eq!(
        (
            home.error_kind.as_deref(),
            home.error
                .as_deref()
                .is_some_and(|e| e.contains("min_bytes_per_sec"))
        ),
        (Some("timeout"), true),
        "{:?}",
        home.error
    );
}

/// Crawls `site` with fetch.min_bytes_per_sec = 100 and fetch.timeout_ms = `timeout_ms`,
/// and checks that the crawl ended within 30 s, whatever dripped: a drip cut at the
/// minimum rate after its first 3 s, or a body held to a 5 s timeout and the crawl's
/// other pages, take up to 8 s on a loaded machine.
async fn crawl_a_drip(site: &TestSite, timeout_ms: u64) -> Harness {
    let harness = Harness::default();
    let started = std::time::Instant::now();
    harness
        .crawl(
            &[site.url(0, "/")],
            &format!("[fetch]\nmin_bytes_per_sec = 100\ntimeout_ms = {timeout_ms}\n"),
        )
        .await;
    let took = started.elapsed();
    assert!(
        took < std::time::Duration::from_secs(30),
        "the drip held the crawl {took:?}"
    );
    harness
}

/// README: a URL longer than 2,560 bytes is never kept, "so a redirect to one is a
/// `redirect` error"; one longer than `traps.max_url_length` (2048) but kept is a trap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_an_overlong_url_is_a_redirect_error_and_a_long_one_a_trap() {
    let too_long = format!("/long?x={}", noise(4_000));
    let long = format!("/mid?x={}", noise(2_300));
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(
        &h,
        "/",
        Resource::Html("<a href='/far'>f</a><a href='/near'>n</a>".into()),
    );
    b.add(&h, "/far", Resource::Redirect(301, too_long.clone()));
    b.add(&h, "/near", Resource::Redirect(301, long.clone()));
    let site = b.start();
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;
    let db = harness.db().await;
    let far = db.page(&site.url(0, "/far")).await.expect("a row");
    assert_eq!(
        (far.status, far.error_kind.as_deref()),
        (Some(301), Some("redirect")),
        "{:?}",
        far.error
    );
    assert!(db.page(&site.url(0, &too_long)).await.is_none());
    let trapped = db.page(&site.url(0, &long)).await.expect("a row");
    assert_eq!(
        (trapped.status, trapped.error_kind.as_deref()),
        (None, Some("trap")),
        "{:?}",
        trapped.error
    );
    assert_eq!(site.count(&site.url(0, &long)), 0, "a trap is not fetched");
}

/// A `Location` is quoted in its redirect error only as far as it says what is wrong: a
/// server's 10,000-character scheme, or a URL over the length limit, is a short message,
/// not one as long as the header (up to `fetch.max_header_bytes`) in every such row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_error_quotes_a_huge_location_in_part() {
    let scheme = format!("{}://x/", "a".repeat(10_000));
    let long = format!("/long?x={}", "b".repeat(10_000));
    let (raw, _harness, db) = crawl_routes(vec![
        ("/scheme", RawReply::moved(&scheme)),
        ("/long", RawReply::moved(&long)),
    ])
    .await;
    for (path, says) in [("/scheme", "only http and https"), ("/long", "bytes long")] {
        let row = db.page(&raw.url(path)).await.expect("a row");
        let error = row.error.unwrap_or_default();
        assert_eq!(row.error_kind.as_deref(), Some("redirect"), "{path}");
        assert!(
            error.contains(says) && error.len() < 1_000,
            "{path}: {} bytes: {}",
            error.len(),
            error.get(..300).unwrap_or(&error)
        );
    }
}

/// A server that sends its head too late, and one whose body keeps the minimum rate but
/// takes longer than `fetch.timeout_ms` in all, are cut at that deadline, and one whose
/// listen queue is full at `fetch.connect_timeout_ms`; each row says which limit cut
/// it: the HTTP client says only "operation timed out" (after "error decoding response
/// body", where nothing was decoded) or "deadline has elapsed".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_cut_at_fetch_timeout_ms_names_it() {
    let late = Box::new(Resource::Html("<title>Late</title>".into()));
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(&h, "/late", Resource::Slow(Duration::from_secs(20), late));
    let steady = Resource::Drip(Duration::from_millis(5), 1_000_000);
    b.add(&h, "/steady", steady);
    let site = b.start();
    // A listen queue of one, filled: the kernel drops further connections' SYNs.
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket
        .bind("127.0.0.1:0".parse().expect("an address"))
        .expect("bind");
    let full = socket.listen(0).expect("listen");
    let address = full.local_addr().expect("its address");
    let mut queued = Vec::new();
    for _ in 0..3 {
        let waiting = tokio::net::TcpStream::connect(address);
        if let Ok(Ok(stream)) = tokio::time::timeout(Duration::from_millis(200), waiting).await {
            queued.push(stream);
        }
    }
    let unanswered = format!("http://{address}/");
    let harness = Harness::default();
    harness
        .crawl(
            &[
                site.url(0, "/late"),
                site.url(0, "/steady"),
                unanswered.clone(),
            ],
            "[fetch]\ntimeout_ms = 1500\nconnect_timeout_ms = 500\n",
        )
        .await;
    let db = harness.db().await;
    for (url, limit) in [
        (site.url(0, "/late"), "fetch.timeout_ms"),
        (site.url(0, "/steady"), "fetch.timeout_ms"),
        (unanswered, "fetch.connect_timeout_ms"),
    ] {
        let row = db.page(&url).await.expect("a row");
        let error = row.error.unwrap_or_default();
        assert!(
            row.error_kind.as_deref() == Some("timeout") && error.contains(limit),
            "{url}: {:?} {error}",
            row.error_kind
        );
    }
}

/// README: raise `traps.max_pages_per_host` "to crawl one site larger than this". A crawl
/// run again with a higher budget goes on where the lower one cut the host, on either
/// backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_cut_at_its_page_budget_goes_on_when_a_later_run_raises_it() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(
        &h,
        "/",
        Resource::Html("<a href='/chain/0'>chain</a>".into()),
    );
    b.add_prefix(&h, "/chain/", Resource::Dynamic(chain));
    let site = b.start();
    let runs = [5, 8].map(|budget| format!("[traps]\nmax_pages_per_host = {budget}\n"));
    let outcome = crawled_on_both_backends(
        "a_host_cut_at_its_page_budget_goes_on_when_a_later_run_raises_it",
        &[site.url(0, "/")],
        &runs,
    )
    .await;
    for (database, fetched, trapped) in outcome {
        assert_eq!(
            (fetched, trapped),
            (8, vec![site.url(0, "/chain/7")]),
            "{database}"
        );
    }
}

/// Crawls `seeds` once for each of `runs` (a config's extra lines), one after the
/// other, into a SQLite database and, when this machine has the server, a PostgreSQL
/// one; says for each database the pages fetched and the URLs of the trap rows.
async fn crawled_on_both_backends(
    test: &str,
    seeds: &[String],
    runs: &[String],
) -> Vec<(String, usize, Vec<String>)> {
    let server = super::postgres::TestPostgres::start(test);
    let harness = Harness::default();
    let sqlite = harness.db_path().display().to_string();
    let databases =
        super::postgres::TestPostgres::with_sqlite(server.as_ref(), &sqlite, "runs").await;
    let mut outcome = Vec::new();
    for database in databases {
        for extra in runs {
            let text = harness
                .test_config_text(seeds, extra)
                .replace(&format!("{sqlite:?}"), &format!("{database:?}"));
            let config = pipecrawl::Config::from_toml(&text, "test").expect("a valid config");
            pipecrawl::crawl(config, std::future::pending())
                .await
                .expect("the crawl succeeds");
        }
        const PAGES: &str = "SELECT url, status, error_kind FROM pages ORDER BY id";
        let rows: Vec<(String, Option<i64>, Option<String>)> = if database == sqlite {
            let db = sqlx::SqlitePool::connect(&format!("sqlite://{sqlite}"))
                .await
                .expect("open the SQLite results");
            sqlx::query_as(PAGES).fetch_all(&db).await
        } else {
            let db = sqlx::PgPool::connect(&database)
                .await
                .expect("open the PostgreSQL results");
            sqlx::query_as(PAGES).fetch_all(&db).await
        }
        .expect("pages");
        let fetched = rows
            .iter()
            .filter(|(_, status, _)| status.is_some())
            .count();
        let trapped = rows
            .into_iter()
            .filter(|(_, _, kind)| kind.as_deref() == Some("trap"))
            .map(|(url, _, _)| url)
            .collect();
        outcome.push((database, fetched, trapped));
    }
    outcome
}

/// README: a SIGHUP replaces "the link rules the scope carries (`[traps]` but for
/// `max_pages_per_host`)". A family budget set by a reload holds for what the service
/// finds next, as it would from the start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_family_budget_set_by_a_reload_holds_for_what_is_found_next() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(&h, "/", Resource::Html("<title>Home</title>".into()));
    b.add_prefix(&h, "/cal", Resource::Dynamic(calendar));
    let site = b.start();
    let harness = Harness::default();
    let config = |seeds: &[String], traps: &str| {
        let text = harness.test_config_text(
            seeds,
            &format!("[admin]\nlisten = \"127.0.0.1:0\"\n{traps}"),
        );
        pipecrawl::Config::from_toml(&text, "test").expect("a valid config")
    };
    let (reload, reloads) = tokio::sync::mpsc::channel(1);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let service = pipecrawl::serve(
        config(&[site.url(0, "/")], ""),
        async move {
            let _ = stopped.await;
        },
        reloads,
    );
    let db = harness.db_path();
    let watch = async {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while site.count(&site.url(0, "/")) == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the seed was not fetched"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        reload
            .send(config(
                &[site.url(0, "/"), site.url(0, "/cal?month=1")],
                "[traps]\nfamily_budget = 3\n",
            ))
            .await
            .expect("the service takes the reload");
        // Whatever the budget, the calendar ends in a trap row: the first says where.
        let trap = loop {
            assert!(
                std::time::Instant::now() < deadline,
                "the calendar never ended"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            let trapped: Vec<String> = Db::open(&db)
                .await
                .pages()
                .await
                .into_iter()
                .filter(|p| p.error_kind.as_deref() == Some("trap"))
                .map(|p| p.url)
                .collect();
            if let Some(url) = trapped.into_iter().next() {
                break url;
            }
        };
        let _ = stop.send(());
        trap
    };
    let (served, trap) = tokio::join!(service, watch);
    served.expect("the service ends well");
    // The seed month, then three found: the fourth found is over the budget.
    assert_eq!(trap, site.url(0, "/cal?month=5"));
}

/// `traps.max_pages_per_host` lowered for a later run (one host took too much of the
/// last) holds for the URLs that host has queued already: they are cut to the new
/// budget, the deepest first, as they would have been when found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_lowered_for_a_later_run_cuts_what_the_host_has_queued() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    let mut home = "<title>Home</title>".to_owned();
    for i in 1..=10 {
        home.push_str(&format!("<a href='/p/{i}'>p</a>"));
        b.add(
            &h,
            &format!("/p/{i}"),
            Resource::Html("<title>P</title>".into()),
        );
    }
    b.add(&h, "/", Resource::Html(home));
    let site = b.start();
    let harness = Harness::default();
    let seeds = [site.url(0, "/")];
    harness.crawl(&seeds, "[scope]\nmax_pages = 3\n").await;
    harness
        .crawl(&seeds, "[traps]\nmax_pages_per_host = 5\n")
        .await;
    let requested = site
        .hits_for(&h)
        .iter()
        .filter(|hit| hit.path != "/robots.txt")
        .count();
    assert_eq!(requested, 5, "{:?}", site.hits_for(&h));
    let db = harness.db().await;
    assert_eq!(
        db.scalar("SELECT count(*) FROM pages WHERE error_kind = 'trap' AND error LIKE '%max_pages_per_host = 5%'")
            .await,
        6
    );
}

/// README: `host_budget` "counts each host's URLs queued to be fetched". URLs a later
/// run's scope leaves out are not fetched, so they give their share of the host's
/// budget back to the URLs it does take.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_a_narrower_scope_leaves_out_give_back_their_hosts_budget() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    let mut home = "<a href='/mid'>mid</a>".to_owned();
    for i in 1..=4 {
        home.push_str(&format!("<a href='/junk/{i}'>j</a>"));
    }
    b.add(&h, "/", Resource::Html(home));
    b.add(
        &h,
        "/mid",
        Resource::Html("<a href='/chain/1'>chain</a>".into()),
    );
    b.add_prefix(&h, "/chain/", Resource::Dynamic(chain));
    let site = b.start();
    let budget = "[traps]\nmax_pages_per_host = 6\n";
    // The third run takes the junk again: it counts again, and the budget is spent.
    let runs = [
        format!("{budget}[scope]\nmax_pages = 1\n"),
        format!("{budget}[scope]\nexclude = ['/junk/']\n"),
        budget.to_owned(),
    ];
    let outcome = crawled_on_both_backends(
        "urls_a_narrower_scope_leaves_out_give_back_their_hosts_budget",
        &[site.url(0, "/")],
        &runs,
    )
    .await;
    // `/`, `/mid` and four of the chain: the four junk URLs were never fetched.
    let mut cut = vec![site.url(0, "/chain/5")];
    cut.extend((1..=4).map(|i| site.url(0, &format!("/junk/{i}"))));
    for (database, fetched, mut trapped) in outcome {
        trapped.sort();
        assert_eq!((fetched, trapped), (6, cut.clone()), "{database}");
    }
}

/// A page as dense in links as HTML allows (`<a href=/N>`, some 330,000 in the 5 MiB
/// read) keeps `traps.max_links_per_page` of them: holding every one read, resolved, until
/// the last was found took 150 MiB for the one page, and as much again on each parse
/// thread given one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_dense_in_links_holds_no_more_memory_than_the_links_it_keeps() {
    let f = super::faults::Fault::new(|b, h| {
        let mut page = String::from("<title>Links</title>");
        let mut i = 0;
        while page.len() < 5 * 1024 * 1024 - 16 {
            page.push_str(&format!("<a href=/{i}>"));
            i += 1;
        }
        b.add(h, "/links", Resource::Html(page));
        vec!["/links".into()]
    })
    .await;
    // Depth 1 keeps the crawl to the page itself; the fault matrix's memory bound holds.
    let db = f.crawl("[scope]\nmax_depth = 1\n").await;
    assert_eq!(
        super::faults::links_from(&db, &f.url("/links")).await,
        10_000
    );
    let last = db
        .scalar(&format!(
            "SELECT count(*) FROM links WHERE target_url = '{}'",
            f.url("/9999")
        ))
        .await;
    assert_eq!(last, 1, "the first ten thousand are the ones kept");
}

/// A SOCKS proxy (`ssh -D`, Tor) as the way out. Through `socks5h://` the proxy
/// resolves the names pages lead to, as an HTTP proxy does, and a URL naming a private
/// address is still refused before any request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socks5h_proxy_carries_every_request_and_resolves_the_names() {
    let private = "http://10.0.0.1/admin";
    let home = format!("<title>Home</title><a href='/b'>b</a><a href='{private}'>a</a>");
    let site = RawSite::start(vec![
        ("/", RawReply::ok("text/html", home.as_str())),
        ("/b", RawReply::ok("text/html", "<title>B</title>")),
    ])
    .await;
    let address = site.authority.parse().expect("the site's address");
    let names = [("pipecrawl.invalid:80".to_owned(), address)].into();
    let proxy = SocksProxy::start(names).await;
    let seed = "http://pipecrawl.invalid/";
    let harness = Harness::default();
    let extra = format!(
        "[scope]\nhosts = [\"*\"]\n[fetch]\nproxy = \"socks5h://localhost:{}\"\n",
        proxy.port
    );
    harness.crawl(&[seed.to_owned()], &extra).await;

    let db = harness.db().await;
    for (url, title) in [(seed, "Home"), ("http://pipecrawl.invalid/b", "B")] {
        let row = db.page(url).await.expect("a row");
        assert_eq!(row.title.as_deref(), Some(title), "{url}: {:?}", row.error);
    }
    refused_all(&db, &[private]).await;
    let asked = proxy.asked();
    assert!(
        !asked.is_empty() && asked.iter().all(|a| a == "pipecrawl.invalid:80"),
        "only the site, by name: {asked:?}"
    );
    assert_eq!(site.count("/robots.txt"), 1);
}

/// Through `socks5://` the crawler resolves names itself, so the address guard checks
/// every name a page leads to: one resolving to loopback is refused, and the proxy is
/// never asked for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_a_socks5_proxy_the_guard_checks_the_names_pages_lead_to() {
    a_link_to_localhost_through_socks5_is_refused("127.0.0.1").await;
}

/// The proxy's host is trusted as the proxy, to be connected to, and not as a place a
/// page may send the crawler: through `socks5://localhost:PORT`, a link to another port
/// of `localhost` (an SSH server, a database, the crawler's own admin API) is checked
/// like any name, and refused. It went through, the proxy connecting to loopback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_port_of_a_socks5_proxys_host_is_checked_like_any_name() {
    a_link_to_localhost_through_socks5_is_refused("localhost").await;
}

/// Crawls a loopback site, the seed, through `socks5://PROXY_HOST:PORT`: its link to
/// itself by the name `localhost` is refused, and the proxy asked for the seed only.
async fn a_link_to_localhost_through_socks5_is_refused(proxy_host: &str) {
    let mut builder = SiteBuilder::bind(1).await;
    let host = builder.authority(0);
    let port = host.rsplit(':').next().unwrap_or_default().to_owned();
    let by_name = format!("http://localhost:{port}/secret");
    builder.add(
        &host,
        "/",
        Resource::Html(format!("<title>Home</title><a href='{by_name}'>s</a>")),
    );
    builder.add(
        &host,
        "/secret",
        Resource::Html("<title>Secret</title>".into()),
    );
    let site = builder.start();
    let proxy = SocksProxy::start(HashMap::new()).await;
    let harness = Harness::default();
    let extra = format!(
        "[scope]\nhosts = [\"*\"]\n[fetch]\nproxy = \"socks5://{proxy_host}:{}\"\n",
        proxy.port
    );
    let seed = site.url(0, "/");
    harness.crawl(std::slice::from_ref(&seed), &extra).await;

    let db = harness.db().await;
    let row = db.page(&seed).await.expect("a row");
    assert_eq!(row.title.as_deref(), Some("Home"), "{:?}", row.error);
    refused_all(&db, &[by_name.as_str()]).await;
    let asked = proxy.asked();
    assert!(
        !asked.is_empty() && asked.iter().all(|a| *a == host),
        "only the seed's address: {asked:?}"
    );
}

/// A URL naming an IPv6 address (a seed such as `http://[2001:db8::7]/`, which
/// `scope.hosts` takes) through `socks5://`: the crawler resolves the destination
/// itself, and an address needs no lookup. Passed to the resolver as written, in
/// brackets, it was looked up as a name, and the page failed as a final `dns` error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_a_socks5_proxy_a_url_naming_an_ipv6_address_is_fetched() {
    let listener = tokio::net::TcpListener::bind("[::1]:0")
        .await
        .expect("bind on IPv6 loopback");
    let seed = format!("http://{}/", listener.local_addr().expect("address"));
    let app = axum::Router::new().fallback(|| async {
        (
            [(axum::http::header::CONTENT_TYPE, "text/html")],
            "<title>Home</title>",
        )
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    let proxy = SocksProxy::start(HashMap::new()).await;
    let harness = Harness::default();
    let extra = format!(
        "[fetch]\nproxy = \"socks5://127.0.0.1:{}\"\n[retry]\nmax_attempts = 1\n",
        proxy.port
    );
    harness.crawl(std::slice::from_ref(&seed), &extra).await;

    let row = harness.db().await.page(&seed).await.expect("a row");
    assert_eq!(row.title.as_deref(), Some("Home"), "{:?}", row.error);
    let asked = proxy.asked();
    assert!(
        asked.iter().all(|a| seed.contains(a.as_str())),
        "the seed's address only: {asked:?}"
    );
}

/// An HTTP proxy named by its address: a URL naming that address on another port is
/// checked like any address, and refused before the proxy is asked for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_port_of_an_http_proxys_address_is_refused() {
    let seed = "http://pipecrawl.invalid/";
    let private = "http://127.0.0.1:22/";
    let home = format!("<title>Home</title><a href='{private}'>ssh</a>");
    let proxy = RawSite::start(vec![(seed, RawReply::ok("text/html", home.as_str()))]).await;
    let harness = Harness::default();
    harness
        .crawl(
            &[seed.to_owned()],
            &format!(
                "[scope]\nhosts = [\"*\"]\n[fetch]\nproxy = \"http://{}\"\n",
                proxy.authority
            ),
        )
        .await;

    let db = harness.db().await;
    let row = db.page(seed).await.expect("a row");
    assert_eq!(row.title.as_deref(), Some("Home"), "{:?}", row.error);
    refused_all(&db, &[private]).await;
    assert_eq!(proxy.count(private), 0, "the proxy was not asked for it");
}

/// `localhost` names the loopback of whichever machine resolves it (RFC 6761 §6.3), and
/// through an HTTP proxy or `socks5h://` that is the proxy: a link to
/// `http://localhost:22/` (or `admin.localhost`) had the proxy connect to its own SSH
/// server, admin page or cache manager, unchecked, though no lookup is needed to know
/// where the name leads. It is refused as loopback is, unless `network.allow` opens it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_an_http_proxy_a_link_to_localhost_is_refused() {
    let seed = "http://pipecrawl.invalid/";
    let locals = [
        "http://localhost:22/",
        "http://admin.localhost./",
        "http://LocalHost.:3128/squid-internal-mgr/info",
    ];
    let links: String = locals
        .iter()
        .map(|l| format!("<a href='{l}'>l</a>"))
        .collect();
    let home = format!("<title>Home</title>{links}");
    let local = RawReply::ok("text/html", "<title>Local</title>");
    let proxy = RawSite::start(vec![
        (seed, RawReply::ok("text/html", home.as_str())),
        ("http://localhost:22/", local.clone()),
        ("http://admin.localhost/", local.clone()),
        ("http://localhost:3128/squid-internal-mgr/info", local),
    ])
    .await;
    let config = |allow: &str| {
        format!(
            "[scope]\nhosts = [\"*\"]\n[fetch]\nproxy = \"http://{}\"\n[network]\nallow = [{allow}]\n",
            proxy.authority
        )
    };
    let harness = Harness::default();
    harness.crawl(&[seed.to_owned()], &config("")).await;

    let db = harness.db().await;
    let row = db.page(seed).await.expect("a row");
    assert_eq!(row.title.as_deref(), Some("Home"), "{:?}", row.error);
    let stored: Vec<String> = db.pages().await.into_iter().map(|r| r.url).collect();
    let refused: Vec<&str> = stored
        .iter()
        .map(String::as_str)
        .filter(|u| *u != seed)
        .collect();
    assert_eq!(refused.len(), locals.len(), "{stored:?}");
    refused_all(&db, &refused).await;
    let asked: usize = stored.iter().map(|u| proxy.count(u)).sum();
    assert_eq!(asked, 1, "the proxy was asked for the seed only");

    let allowed = Harness::default();
    allowed
        .crawl(&[seed.to_owned()], &config("\"127.0.0.0/8\""))
        .await;
    let db = allowed.db().await;
    let row = db.page("http://localhost:22/").await.expect("a row");
    assert_eq!(row.title.as_deref(), Some("Local"), "{:?}", row.error);
}

/// An HTTP proxy that will not open a tunnel for `https://` (its `CONNECT` answered 403
/// by its rules, 502 or 503 when it cannot reach the site or is busy, 407 for
/// credentials, or closed unanswered): each URL failed "tunnel error: unsuccessful",
/// saying neither that the proxy answered nor what. It is a `connect` failure for now,
/// as before, and its message says it is fetch.proxy's and what it did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_that_will_not_open_a_tunnel_says_so() {
    for (answer, said) in [
        (
            "HTTP/1.1 403 Forbidden\r\nContent-Length: 7\r\n\r\nblocked",
            "fetch.proxy did not open a tunnel to the site",
        ),
        (
            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 30\r\n\r\n",
            "fetch.proxy did not open a tunnel to the site",
        ),
        (
            "HTTP/1.1 407 Proxy Authentication Required\r\n\r\n",
            "fetch.proxy answered 407 Proxy Authentication Required",
        ),
        ("", "fetch.proxy closed the connection without answering"),
    ] {
        let port = connect_answered_with(answer).await;
        let (kind, error) = https_seed_through(port, "").await;
        assert_eq!(kind.as_deref(), Some("connect"), "{error}");
        assert!(error.contains(said), "{answer:?}: {error}");
    }
}

/// A proxy that takes the connection but does not answer the `CONNECT` in time (busy, or
/// slow to reach the site): the row said only "no connection within
/// fetch.connect_timeout_ms", as if the site were slow to take it. It names the proxy,
/// whose answer was awaited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_that_does_not_answer_connect_in_time_is_named_in_the_timeout() {
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the proxy");
    let port = proxy.local_addr().expect("its address").port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((client, _)) = proxy.accept().await {
            held.push(client);
        }
    });
    let (kind, error) = https_seed_through(port, "connect_timeout_ms = 100\n").await;
    assert_eq!(kind.as_deref(), Some("timeout"), "{error}");
    assert!(error.contains("fetch.connect_timeout_ms"), "{error}");
    assert!(error.contains("fetch.proxy"), "{error}");
}

/// A proxy on loopback that reads each request's head and writes `answer`, then
/// closes; its port.
async fn connect_answered_with(answer: &'static str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the proxy");
    let port = proxy.local_addr().expect("its address").port();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = proxy.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if client.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let _ = client.write_all(answer.as_bytes()).await;
                let _ = client.shutdown().await;
            });
        }
    });
    port
}

/// A 407 is the proxy's answer, never a site's: credentials missing or wrong in
/// `fetch.proxy`. It was stored as the page's status, final, and robots.txt's 407 read as
/// "no robots.txt" (a 4xx) and kept for `politeness.robots_ttl_ms`: with the credentials
/// mended and the failures asked again, pages the site's robots.txt disallows were
/// fetched. It is a connection failure for now, saying so, and robots.txt is asked again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_that_wants_credentials_fails_the_urls_for_now() {
    let seed = "http://pipecrawl.invalid/";
    let robots = "http://pipecrawl.invalid/robots.txt";
    let wants = RawReply::new(
        "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"p\"\r\n\
         Content-Length: 0",
        Vec::new(),
        Ending::Close,
    );
    let refusing = RawSite::start(vec![(seed, wants.clone()), (robots, wants)]).await;
    let mended = RawSite::start(vec![
        (seed, RawReply::ok("text/html", "<title>Home</title>")),
        (
            robots,
            RawReply::ok("text/plain", "User-agent: *\nDisallow: /\n"),
        ),
    ])
    .await;
    let harness = Harness::default();
    for (proxy, again) in [(&refusing, false), (&mended, true)] {
        let extra = format!("[fetch]\nproxy = \"http://{}\"\n", proxy.authority);
        let mut config = pipecrawl::Config::from_toml(
            &harness.test_config_text(&[seed.to_owned()], &extra),
            "t",
        )
        .expect("a valid test config");
        config.retry.earlier_failures = again;
        pipecrawl::crawl(config, std::future::pending())
            .await
            .expect("the crawl succeeds");
        if !again {
            let row = harness.db().await.page(seed).await.expect("a row");
            assert_eq!(
                (row.status, row.error_kind.as_deref()),
                (None, Some("connect")),
                "{row:?}"
            );
            assert!(
                row.error
                    .as_deref()
                    .is_some_and(|e| e.contains("fetch.proxy")),
                "{row:?}"
            );
        }
    }
    let row = harness.db().await.page(seed).await.expect("a row");
    assert_eq!(row.error_kind.as_deref(), Some("robots"), "{row:?}");
    assert_eq!(mended.count(robots), 1, "robots.txt was asked again");
    assert_eq!(mended.count(seed), 0, "the disallowed page was not fetched");

    // The page's own 407, robots.txt not asked.
    let harness = Harness::default();
    let extra = format!(
        "[fetch]\nproxy = \"http://{}\"\n[politeness]\ndelay_ms = 0\nrespect_robots_txt = false\n",
        refusing.authority
    );
    harness.crawl(&[seed.to_owned()], &extra).await;
    let row = harness.db().await.page(seed).await.expect("a row");
    assert_eq!(
        (row.status, row.error_kind.as_deref()),
        (None, Some("connect")),
        "{row:?}"
    );
    assert_eq!(refusing.count(seed), 1, "the page was asked for");
}

/// A proxy that is down: through an HTTP proxy every URL failed "tcp connect error:
/// Connection refused" under its own URL, as if the sites refused, and through a SOCKS
/// one "SOCKS error: failed to create underlying connection", which says neither that
/// the proxy was not reached nor why. The only connection the crawler makes is to the
/// proxy, and the error says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_that_refuses_connections_is_named_in_the_error() {
    let (_held, closed) = super::refusing_address([127, 0, 0, 1]);
    // Through `socks5` the crawler resolves the seed's name: an address needs no lookup.
    for (scheme, seed) in [
        ("http", "http://pipecrawl.invalid/"),
        ("socks5", "http://127.0.0.1:9/"),
        ("socks5h", "http://pipecrawl.invalid/"),
    ] {
        let harness = Harness::default();
        harness
            .crawl(
                &[seed.to_owned()],
                &format!("[fetch]\nproxy = \"{scheme}://{closed}\"\n"),
            )
            .await;
        let row = harness.db().await.page(seed).await.expect("a row");
        assert_eq!(row.error_kind.as_deref(), Some("connect"), "{row:?}");
        assert!(
            row.error
                .as_deref()
                .is_some_and(|e| e.contains("fetch.proxy does not take connections")),
            "{scheme}: {row:?}"
        );
    }
}

/// A server behind a wildcard DNS name answers for every name under its domain, and
/// each name is a host of its own: its own politeness slot, robots.txt and page budget.
/// `traps.max_hosts_per_domain` admits that many names of one registrable domain; the
/// URLs of the names after them are trap rows, their robots.txt never asked for. Seeds'
/// hosts and names `scope.hosts` writes without a wildcard are not counted, a known
/// host's new URLs pay nothing, and the count holds across a resumed crawl. The names
/// reach the test server through `fetch.proxy`, which resolves none of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_domain_of_ever_new_host_names_is_held_to_traps_max_hosts_per_domain() {
    let farm: Vec<String> = (1..=6).map(|i| format!("http://a{i}.trap.test/")).collect();
    let links = |urls: &[&str]| -> String {
        urls.iter()
            .map(|u| format!("<a href='{u}'>x</a>"))
            .collect::<String>()
    };
    let mut first: Vec<&str> = farm.iter().map(String::as_str).collect();
    first.push("http://named.trap.test/");
    let home = format!("<title>Home</title>{}", links(&first));
    let again = format!(
        "<title>Again</title>{}",
        links(&["http://a7.trap.test/", "http://a1.trap.test/more"])
    );
    let page = RawReply::ok("text/html", "<title>Farm</title>");
    let mut routes = vec![
        (
            "http://www.trap.test/",
            RawReply::ok("text/html", home.as_str()),
        ),
        (
            "http://b.trap.test/",
            RawReply::ok("text/html", again.as_str()),
        ),
        ("http://named.trap.test/", page.clone()),
        ("http://a7.trap.test/", page.clone()),
        ("http://a1.trap.test/more", page.clone()),
    ];
    routes.extend(farm.iter().map(|u| (u.as_str(), page.clone())));
    let proxy = RawSite::start(routes).await;
    let config = format!(
        "[scope]\nhosts = [\"*.trap.test\", \"named.trap.test\"]\n\
         [fetch]\nproxy = \"http://{}\"\n[traps]\nmax_hosts_per_domain = 3\n",
        proxy.authority
    );
    let harness = Harness::default();
    harness
        .crawl(&["http://www.trap.test/".to_owned()], &config)
        .await;
    // A later run, from a seed on another new name: the domain has its three already.
    harness
        .crawl(&["http://b.trap.test/".to_owned()], &config)
        .await;

    let db = harness.db().await;
    let fetched = [
        "http://www.trap.test/",
        "http://b.trap.test/",
        "http://named.trap.test/",
        "http://a1.trap.test/",
        "http://a2.trap.test/",
        "http://a3.trap.test/",
        "http://a1.trap.test/more",
    ];
    for url in fetched {
        let row = db
            .page(url)
            .await
            .unwrap_or_else(|| panic!("{url} has a row"));
        assert_eq!(row.status, Some(200), "{url}: {:?}", row.error);
    }
    for host in ["a4", "a5", "a6", "a7"] {
        let url = format!("http://{host}.trap.test/");
        let row = db
            .page(&url)
            .await
            .unwrap_or_else(|| panic!("{url} has a row"));
        assert_eq!(
            (row.status, row.error_kind.as_deref()),
            (None, Some("trap")),
            "{url}"
        );
        assert!(
            row.error.as_deref().is_some_and(
                |e| e.contains("trap.test") && e.contains("traps.max_hosts_per_domain = 3")
            ),
            "{url}: {:?}",
            row.error
        );
        let robots = format!("http://{host}.trap.test/robots.txt");
        assert_eq!((proxy.count(&url), proxy.count(&robots)), (0, 0), "{url}");
    }
    assert_eq!(
        db.scalar("SELECT count(*) FROM pages WHERE error_kind = 'trap'")
            .await,
        4
    );
}

/// As with `traps.max_pages_per_host`, a user who raises `traps.max_hosts_per_domain`
/// (or sets it to 0) expects the names a lower limit cut to be crawled: a later run takes
/// as many of them as the new limit has room for, on either backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_cut_at_their_domains_limit_are_crawled_when_a_later_run_raises_it() {
    let (farm, proxy) = farm_of_six().await;
    let runs = |limits: [u32; 2]| {
        limits.map(|limit| {
            format!(
                "[scope]\nhosts = [\"*.trap.test\"]\n[fetch]\nproxy = \"http://{}\"\n\
                 [traps]\nmax_hosts_per_domain = {limit}\n",
                proxy.authority
            )
        })
    };
    let seeds = ["http://www.trap.test/".to_owned()];
    for (limits, fetched, trapped) in [([3, 5], 6, vec![farm[5].clone()]), ([3, 0], 7, Vec::new())]
    {
        let test = format!(
            "names_cut_at_their_domains_limit_{}_{}",
            limits[0], limits[1]
        );
        for (database, got, cut) in crawled_on_both_backends(&test, &seeds, &runs(limits)).await {
            assert_eq!(
                (got, cut),
                (fetched, trapped.clone()),
                "{database}, limits {limits:?}"
            );
        }
    }
}

/// A name cut at its domain's `traps.max_hosts_per_domain` that a later run names in
/// `scope.hosts` (without a wildcard, as the user's own names are, never counted) is
/// crawled: its URLs were left trap rows, so naming it crawled nothing of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_cut_at_its_domains_limit_is_crawled_once_scope_hosts_names_it() {
    let (farm, proxy) = farm_of_six().await;
    let runs = [r#"["*.trap.test"]"#, r#"["*.trap.test", "a5.trap.test"]"#].map(|hosts| {
        format!(
            "[scope]\nhosts = {hosts}\n[fetch]\nproxy = \"http://{}\"\n\
             [traps]\nmax_hosts_per_domain = 3\n",
            proxy.authority
        )
    });
    let seeds = ["http://www.trap.test/".to_owned()];
    let test = "a_name_cut_at_its_domains_limit_is_named";
    for (database, fetched, trapped) in crawled_on_both_backends(test, &seeds, &runs).await {
        assert_eq!(
            (fetched, trapped),
            (5, vec![farm[3].clone(), farm[5].clone()]),
            "{database}"
        );
    }
}

/// A start that names a cut name admits it (uncounted) and queues its cut URLs again;
/// one stopped between the two (a kill -9, or here the database refusing the requeue)
/// had committed the admission alone, so the next start, naming it too, found nothing
/// new to admit and left its URLs trap rows for good. Its domain's count stays that of
/// the names crawled by discovery. On either backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_whose_requeue_a_start_left_unfinished_is_crawled_by_the_next() {
    let test = "a_name_whose_requeue_a_start_left_unfinished";
    let (_server, harness, sqlite, databases) =
        super::postgres::TestPostgres::beside_sqlite(test, "run").await;
    let seeds = ["http://www.trap.test/".to_owned()];
    for database in databases {
        let (farm, proxy) = farm_of_six().await;
        let run = |hosts: &str| {
            let extra = format!(
                "[scope]\nhosts = {hosts}\n[fetch]\nproxy = \"http://{}\"\n\
                 [traps]\nmax_hosts_per_domain = 3\n",
                proxy.authority
            );
            let text = harness
                .test_config_text(&seeds, &extra)
                .replace(&format!("{sqlite:?}"), &format!("{database:?}"));
            let config = pipecrawl::Config::from_toml(&text, "test").expect("a valid config");
            pipecrawl::crawl(config, std::future::pending())
        };
        let named = r#"["*.trap.test", "a5.trap.test"]"#;
        run(r#"["*.trap.test"]"#).await.expect("the first crawl");
        super::refused::refuse_requeues(&database, "a5.trap.test").await;
        assert!(
            run(named).await.is_err(),
            "{database}: the requeue was refused"
        );
        super::refused::allow_requeues(&database).await;
        run(named).await.expect("the crawl after");
        assert_eq!(proxy.count(&farm[4]), 1, "{database}: a5 is crawled");
        assert_eq!(proxy.count(&farm[3]), 0, "{database}: a4 is still cut");
        let counted: Vec<(i64,)> = super::recrawl::rows(
            &database,
            "SELECT hosts FROM domain_budget WHERE domain = 'trap.test'",
            None,
        )
        .await;
        assert_eq!(
            counted,
            [(3,)],
            "{database}: the names found, a5 not among them"
        );
    }
}

/// A name a raised `traps.max_hosts_per_domain` takes again has its cut URLs queued
/// within its page budget; those past it are cut at the budget now, and their rows say
/// so: they kept the domain's reason, which no longer held (the name is crawled), and a
/// later run raising `traps.max_pages_per_host` left them trap rows for good, since only
/// URLs cut at the budget are queued again when it is raised. On either backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_past_the_page_budget_of_a_name_taken_again_are_cut_at_the_budget() {
    let cut: Vec<String> = (0..4).map(|i| format!("http://a2.trap.test/{i}")).collect();
    let mut urls = vec!["http://a1.trap.test/".to_owned()];
    urls.extend(cut.iter().cloned());
    let proxy = farm_of(&urls).await;
    let run = |hosts: u32, pages: u32| {
        format!(
            "[scope]\nhosts = [\"*.trap.test\"]\n[fetch]\nproxy = \"http://{}\"\n\
             [traps]\nmax_hosts_per_domain = {hosts}\nmax_pages_per_host = {pages}\n",
            proxy.authority
        )
    };
    let seeds = ["http://www.trap.test/".to_owned()];

    let runs = [run(1, 0), run(0, 2), run(0, 0)];
    let test = "urls_past_the_page_budget_of_a_name_taken_again";
    for (database, fetched, trapped) in crawled_on_both_backends(test, &seeds, &runs).await {
        assert_eq!((fetched, trapped), (6, Vec::new()), "{database}");
    }

    let harness = Harness::default();
    harness.crawl(&seeds, &run(1, 0)).await;
    harness.crawl(&seeds, &run(0, 2)).await;
    let db = harness.db().await;
    for url in &cut[2..] {
        let row = db
            .page(url)
            .await
            .unwrap_or_else(|| panic!("{url} has a row"));
        assert!(
            row.error
                .as_deref()
                .is_some_and(|e| e.contains("a2.trap.test")
                    && e.contains("traps.max_pages_per_host = 2")
                    && !e.contains("max_hosts_per_domain")),
            "{url}: {:?}",
            row.error
        );
    }
}

/// `http://www.trap.test/`, linking to six names `a1.trap.test` … `a6.trap.test`, each a
/// page, through a proxy (which the crawl's `fetch.proxy` names): the names and the proxy.
pub(super) async fn farm_of_six() -> (Vec<String>, RawSite) {
    let farm: Vec<String> = (1..=6).map(|i| format!("http://a{i}.trap.test/")).collect();
    let proxy = farm_of(&farm).await;
    (farm, proxy)
}

/// A proxy serving `http://www.trap.test/`, linking to `urls`, and each of them a page.
async fn farm_of(urls: &[String]) -> RawSite {
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    linking("http://www.trap.test/", &urls).await
}

/// A proxy serving `home`, linking to `urls`, and each of them a page.
pub(super) async fn linking(home: &str, urls: &[&str]) -> RawSite {
    let links: String = urls
        .iter()
        .map(|u| format!("<a href='{u}'>x</a>"))
        .collect();
    let page = RawReply::ok("text/html", "<title>Farm</title>");
    let mut routes = vec![(home, RawReply::ok("text/html", links))];
    routes.extend(urls.iter().map(|u| (*u, page.clone())));
    RawSite::start(routes).await
}

/// A 429 whose rate limit resets at a unix time past any the clock can spell
/// (`X-RateLimit-Reset: 18446744073709551615`, a u64's last) panicked its fetch task,
/// which added it to 1970, and the crawl waited for the lost page for ever: it is a wait
/// longer than any, the URL's tries ended as by a `Retry-After` too long to wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_reset_past_any_time_ends_its_urls_tries_and_the_crawl_ends() {
    let head = "HTTP/1.1 429 Too Many Requests\r\nX-RateLimit-Reset: 18446744073709551615\r\n\
                Content-Length: 0";
    let raw = RawSite::start(vec![("/limited", RawReply::new(head, "", Ending::Close))]).await;
    let harness = Harness::default();
    // A bound on a hang, far past what the crawl of one page takes on a loaded machine.
    let bound = Duration::from_secs(300);
    tokio::time::timeout(bound, harness.crawl(&[raw.url("/limited")], ""))
        .await
        .expect("the crawl ends: its page is not lost to a panic");
    let limited = harness.db().await.page(&raw.url("/limited")).await;
    assert_eq!(limited.and_then(|page| page.status), Some(429));
}

/// A `Content-Length` past what hyper counts (a u64's last three values) is refused by
/// it as "message head is too large", and the error put it down to too many headers or
/// too large a head, which `fetch.max_headers` and `fetch.max_header_bytes` raised
/// would never mend: it names the `Content-Length` too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_content_length_past_what_http_counts_is_named_in_the_error() {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\
                Content-Length: 18446744073709551615";
    let reply = RawReply::new(head, "<title>Huge</title>", Ending::Close);
    let (raw, _harness, db) = crawl_routes(vec![("/huge", reply)]).await;
    let huge = db.page(&raw.url("/huge")).await.expect("a row");
    assert_eq!(huge.error_kind.as_deref(), Some("headers"));
    let error = huge.error.unwrap_or_default();
    assert!(error.contains("Content-Length"), "{error}");
}
