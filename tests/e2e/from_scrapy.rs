//! A Scrapy project's settings as README's "Coming from Scrapy" maps them: where the
//! mapping says pipecrawl behaves otherwise than Scrapy, a crawl shows it does.

use super::site::{Resource, SiteBuilder, TestSite};
use super::Harness;

/// Whether README's mapping has a row starting so.
pub(super) fn readme_maps(row: &str) -> bool {
    include_str!("../../README.md").contains(&format!("\n| {row}"))
}

/// A site whose home links one page deeper, to one query in two orders, to a fragment of
/// a page it links already, and to a page that is down for good.
async fn site() -> TestSite {
    let pages = [
        (
            "/",
            "<a href='/a'>A</a><a href='/a#top'>A's top</a><a href='/q?b=2&a=1'>Q</a>\
             <a href='/q?a=1&b=2'>Q sorted</a><a href='/down'>Down</a>",
        ),
        ("/a", "<a href='/a/deeper'>Deeper</a>"),
        ("/a/deeper", "<title>Deeper</title>"),
        ("/q?b=2&a=1", "<title>Q</title>"),
        ("/q?a=1&b=2", "<title>Q</title>"),
    ];
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    for (path, html) in pages {
        b.add(&h, path, Resource::Html(html.into()));
    }
    b.add(&h, "/down", Resource::Status(503, "down".into()));
    b.start()
}

/// Scrapy's `DEPTH_LIMIT = 0` means no limit; `scope.max_depth = 0` crawls the seeds
/// alone, and no limit is the key left out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_depth_zero_is_the_seeds_alone_where_depth_limit_zero_is_no_limit() {
    let site = site().await;
    let harness = Harness::default();
    harness
        .crawl(&[site.url(0, "/")], "[scope]\nmax_depth = 0\n")
        .await;
    assert_eq!(harness.page_count().await, 1);
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;
    let db = harness.db().await;
    assert!(db.page(&site.url(0, "/a/deeper")).await.is_some());
    assert!(readme_maps(
        "`DEPTH_LIMIT` | `scope.max_depth`; `DEPTH_LIMIT = 0` is no limit there, and \
         `max_depth = 0` the seeds alone here"
    ));
}

/// `RETRY_TIMES = 2` is two retries after the first try: `retry.max_attempts = 3`, which
/// counts the first. The dupefilter's canonical URL sorts the query; here the query's
/// order is the server's to tell apart, so both spellings are fetched, while a fragment
/// is dropped as Scrapy drops it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_attempts_counts_the_first_try_and_the_query_order_is_kept() {
    let site = site().await;
    let harness = Harness::default();
    let retries = "[retry]\nmax_attempts = 3\nbase_delay_ms = 10\nmax_delay_ms = 20\n";
    harness.crawl(&[site.url(0, "/")], retries).await;
    assert_eq!(site.count(&site.url(0, "/down")), 3);
    assert_eq!(site.count(&site.url(0, "/q?b=2&a=1")), 1);
    assert_eq!(site.count(&site.url(0, "/q?a=1&b=2")), 1);
    assert_eq!(site.count(&site.url(0, "/a")), 1);
    let db = harness.db().await;
    assert_eq!(
        db.scalar("SELECT count(*) FROM pages WHERE url LIKE '%/q?%'")
            .await,
        2
    );
    assert!(readme_maps(
        "`RETRY_TIMES = 2` | `retry.max_attempts = 3`: it counts the first try"
    ));
    assert!(readme_maps(
        "the dupefilter, `canonicalize=True` | one request a normalised URL"
    ));
}

/// The `exclude` README gives for what `deny_extensions` skips leaves out links to such
/// files in either letter case, with a query or not, and keeps a page whose name only
/// holds one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readmes_exclude_for_deny_extensions_leaves_out_those_files_only() {
    let line = "`exclude = ['(?i)\\.(pdf|jpe?g|png|gif|zip)(\\?|$)']`";
    let readme = include_str!("../../README.md");
    assert!(readme.contains(line), "README gives {line}");
    let home = "<a href='/a.pdf'>A</a><a href='/b.PDF?v=2'>B</a><a href='/c.jpeg'>C</a>\
                <a href='/pdf-guide.html'>Guide</a><a href='/report.pdf.html'>Report</a>";
    let page = "<title>Page</title>";
    let site = TestSite::one_host(&[
        ("/", home),
        ("/pdf-guide.html", page),
        ("/report.pdf.html", page),
    ])
    .await;
    let harness = Harness::default();
    let exclude = line.trim_matches('`');
    harness
        .crawl(&[site.url(0, "/")], &format!("[scope]\n{exclude}\n"))
        .await;
    for (path, asked) in [
        ("/a.pdf", 0),
        ("/b.PDF?v=2", 0),
        ("/c.jpeg", 0),
        ("/pdf-guide.html", 1),
        ("/report.pdf.html", 1),
    ] {
        assert_eq!(site.count(&site.url(0, path)), asked, "{path}");
    }
}
