//! A Colly collector's options and a spider-rs `Website`'s builder calls as README's
//! "Coming from Colly or spider-rs" maps them: where the mapping says pipecrawl counts,
//! reads or extracts otherwise, a crawl shows it does.

use std::collections::BTreeSet;

use super::from_nutch::requested;
use super::from_scrapy::readme_maps;
use super::site::{Resource, SiteBuilder, TestSite};
use super::Harness;

/// A site whose home links a page one level deeper than itself, a page robots.txt
/// disallows, a page the config's `exclude` leaves out, and a 404 whose body links on.
async fn site() -> TestSite {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    let pages = [
        (
            "/",
            "<a href='/a'>A</a><a href='/private/p'>P</a><a href='/gone'>Gone</a>",
        ),
        ("/a", "<a href='/a/b'>B</a>"),
        ("/a/b", "<title>B</title>"),
        ("/private/p", "<title>P</title>"),
        ("/after-404", "<title>After</title>"),
    ];
    for (path, html) in pages {
        b.add(&h, path, Resource::Html(html.into()));
    }
    b.add(
        &h,
        "/gone",
        Resource::Status(404, "<a href='/after-404'>Home</a>".into()),
    );
    b.add(
        &h,
        "/robots.txt",
        Resource::Typed(
            "text/plain",
            b"User-agent: *\nDisallow: /private/\n".to_vec(),
        ),
    );
    b.start()
}

/// Colly's `MaxDepth = 2` counts the start URL as depth 1, so it reaches the start
/// page's links: `max_depth = 1`, the seed being depth 0. Colly ignores robots.txt
/// unless told otherwise, as spider-rs does; here it is obeyed unless
/// `respect_robots_txt = false`. A 404's links are not read, where Colly's
/// `ParseHTTPErrorResponse` would read them; a seed the `exclude` matches (Colly's
/// `DisallowedURLFilters` refuses it) is crawled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_depth_counts_from_zero_robots_txt_is_obeyed_and_a_404s_links_are_not_read() {
    let site = site().await;
    let harness = Harness::default();
    let scope = "[scope]\nmax_depth = 1\nexclude = ['/$']\n";
    harness.crawl(&[site.url(0, "/")], scope).await;
    let got = requested(&site);
    let want = ["/", "/a", "/gone"].map(str::to_owned);
    assert_eq!(got, BTreeSet::from(want), "{got:?}");
    let db = harness.db().await;
    let gone_links = "SELECT count(*) FROM links JOIN pages ON pages.id = links.source_id \
                      WHERE pages.url LIKE '%/gone'";
    assert_eq!(db.scalar(gone_links).await, 0);
    let harness = Harness::default();
    let no_robots =
        "[scope]\nmax_depth = 1\n[politeness]\ndelay_ms = 0\nrespect_robots_txt = false\n";
    harness.crawl(&[site.url(0, "/")], no_robots).await;
    assert_eq!(site.count(&site.url(0, "/private/p")), 1);
    for row in [
        "`MaxDepth = 2` | `scope.max_depth = 1`",
        "`IgnoreRobotsTxt`",
        "`ParseHTTPErrorResponse` | none",
        "`URLFilters`, `DisallowedURLFilters`",
    ] {
        assert!(readme_maps(row), "{row}");
    }
}

/// Colly's `OnHTML("a[href]")` visits `<a>` links alone; here an image map's `<area>`
/// and a frame's `src` are links too (`rel` = `frame`), resolved against `<base href>`
/// as Colly's `AbsoluteURL` resolves them, and a `<link>` element or a form's `action`
/// is no link row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn areas_and_frames_are_links_beside_anchors_and_link_elements_are_not() {
    let home = "<base href='/docs/'><link rel='stylesheet' href='/s.css'>\
                <link rel='next' href='/page2'><a href='a'>A</a>\
                <map name='m'><area href='area' alt='Area'></map>\
                <iframe src='frame'></iframe><form action='/search'><input name='q'></form>";
    let page = "<title>Page</title>";
    let site = TestSite::one_host(&[
        ("/", home),
        ("/docs/a", page),
        ("/docs/area", page),
        ("/docs/frame", page),
    ])
    .await;
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;
    let db = harness.db().await;
    for (link, rows) in [
        ("target_url LIKE '%/docs/frame' AND rel = 'frame'", 1),
        ("target_url LIKE '%/docs/area' AND anchor_text = 'Area'", 1),
        ("target_url LIKE '%/s.css' OR target_url LIKE '%/page2'", 0),
        ("target_url LIKE '%/search%'", 0),
    ] {
        let sql = format!("SELECT count(*) FROM links WHERE {link}");
        assert_eq!(db.scalar(&sql).await, rows, "{link}");
    }
    let got = requested(&site);
    let want = ["/", "/docs/a", "/docs/area", "/docs/frame"].map(str::to_owned);
    assert_eq!(got, BTreeSet::from(want), "{got:?}");
    assert!(readme_maps("`OnHTML(\"a[href]\")`"));
}

/// Colly's empty `AllowedDomains` lets every host in: `scope.hosts = ["*"]`; its
/// `DisallowedDomains` has no key of its own, and the `exclude` README gives for it
/// leaves out that host, on its port, and no other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_host_but_an_excluded_domain_is_crawled_as_collys_disallowed_domains() {
    let mut b = SiteBuilder::bind(3).await;
    let [h1, h2, h3] = [0, 1, 2].map(|i| b.authority(i));
    let home = format!("<a href='http://{h2}/'>Two</a><a href='http://{h3}/'>Three</a>");
    b.add(&h1, "/", Resource::Html(home));
    for h in [&h2, &h3] {
        b.add(h, "/", Resource::Html("<title>Home</title>".into()));
    }
    let site = b.start();
    let row =
        "`DisallowedDomains` | `scope.exclude = ['^https?://(www\\.)?bad\\.example(:\\d+)?/']`";
    assert!(readme_maps(row), "{row}");
    let exclude = r"^https?://(www\.)?127\.0\.0\.2(:\d+)?/";
    let config = format!(
        "[scope]\nhosts = [\"*\"]\nexclude = ['{exclude}']\n[network]\nallow = [\"127.0.0.0/8\"]\n"
    );
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], &config).await;
    assert_eq!(site.count(&site.url(1, "/")), 0);
    assert_eq!(site.count(&site.url(2, "/")), 1);
}
