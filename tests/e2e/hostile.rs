//! The hostile web: a crawler must never be turned against the network it runs in.

use super::site::{Resource, SiteBuilder};
use super::Harness;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovered_hosts_on_private_addresses_are_refused_before_any_connection() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    let port = h.rsplit(':').next().unwrap_or_default().to_owned();
    let local_name = format!("http://localhost:{port}/secret");
    b.add(
        &h,
        "/",
        Resource::Html(format!(
            "<a href='/metadata'>m</a><a href='http://10.0.0.1/admin'>router</a><a href='{local_name}'>local</a>"
        )),
    );
    b.add(
        &h,
        "/metadata",
        Resource::Redirect(302, "http://169.254.169.254/latest/meta-data/".into()),
    );
    b.add(
        &h,
        "/secret",
        Resource::Html("<title>Secret</title>".into()),
    );
    let site = b.start();
    let harness = Harness::default();
    // Every host is in scope: only the address guard stands between the crawl and them.
    harness
        .crawl(&[site.url(0, "/")], "[scope]\nhosts = [\"*\"]\n")
        .await;

    let db = harness.db().await;
    for refused in [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/admin",
        local_name.as_str(),
    ] {
        let row = db
            .page(refused)
            .await
            .unwrap_or_else(|| panic!("{refused} has a row"));
        assert_eq!(
            (row.status, row.error_kind.as_deref()),
            (None, Some("address_refused")),
            "{refused}"
        );
    }
    assert_eq!(
        site.count(&site.url(0, "/secret")),
        0,
        "nothing reached the loopback service by name"
    );
    assert_eq!(
        db.page(&site.url(0, "/metadata"))
            .await
            .and_then(|p| p.status),
        Some(302)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_allow_opens_a_range_to_discovered_hosts() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    let port = h.rsplit(':').next().unwrap_or_default().to_owned();
    let by_name = format!("http://localhost:{port}/by-name");
    b.add(
        &h,
        "/",
        Resource::Html(format!("<a href='{by_name}'>n</a>")),
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
            "[scope]\nhosts = [\"*\"]\n[network]\nallow = [\"127.0.0.0/8\", \"::1\"]\n",
        )
        .await;
    let db = harness.db().await;
    assert_eq!(
        db.page(&by_name).await.and_then(|p| p.title).as_deref(),
        Some("Reached")
    );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_drip_is_cut_off_and_binary_served_as_html_is_not_parsed() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(
        &h,
        "/",
        Resource::Html("<a href='/drip'>d</a><a href='/binary'>b</a><a href='/fine'>f</a>".into()),
    );
    b.add(
        &h,
        "/drip",
        Resource::Drip(std::time::Duration::from_millis(200), 10_000),
    );
    let mut png = vec![
        0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d,
    ];
    png.extend_from_slice(b"<title>not a title</title><a href='/never'>x</a>");
    b.add(&h, "/binary", Resource::Typed("text/html", png));
    b.add(&h, "/fine", Resource::Html("<title>Fine</title>".into()));
    let site = b.start();
    let harness = Harness::default();
    let started = std::time::Instant::now();
    harness
        .crawl(&[site.url(0, "/")], "[fetch]\nmin_bytes_per_sec = 100\n")
        .await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "the drip held the crawl"
    );

    let db = harness.db().await;
    let drip = db
        .page(&site.url(0, "/drip"))
        .await
        .expect("the drip has a row");
    assert_eq!(
        (drip.status, drip.error_kind.as_deref()),
        (Some(200), Some("timeout"))
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
