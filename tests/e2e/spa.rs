//! Sites a browser builds with JavaScript, which pipecrawl does not run: what the crawl
//! tells a user whose site is one.

use super::site::TestSite;
use super::Harness;

/// A single-page app's HTML: a title, an empty root element and the script that fills it.
const APP: &str = "<!doctype html><title>Shop</title><div id=root></div>\
                   <script src=/assets/app.js></script>";

/// A single-page app's crawl stores its one page and ends: without a word on why, it
/// reads as a site of one page, or as a crawler that stopped early.
#[tokio::test]
async fn a_crawl_whose_pages_have_no_links_says_that_javascript_is_not_run() {
    let site = TestSite::one_host(&[("/", APP)]).await;
    let h = Harness::default();
    let summary = h.crawl(&[site.url(0, "/")], "").await;
    assert_eq!(h.page_count().await, 1);
    let said = summary.to_string();
    assert!(said.contains("no links on the 1 HTML page read"), "{said}");
    assert!(said.contains("pipecrawl runs no JavaScript"), "{said}");
}

/// A site whose pages link on says nothing of it, though its last pages link nowhere.
#[tokio::test]
async fn a_crawl_that_found_links_says_nothing_of_javascript() {
    let site = TestSite::one_host(&[("/", "<a href=/end>end</a>"), ("/end", APP)]).await;
    let h = Harness::default();
    let summary = h.crawl(&[site.url(0, "/")], "").await;
    assert_eq!(h.page_count().await, 2);
    let said = summary.to_string();
    assert!(!said.contains("JavaScript"), "{said}");
}

/// A crawl of one page (here cut at it by `max_pages`, as a single-page app's is one page
/// anyway): its summary's nouns agree with their counts,
/// as every count a user reads does ("1 pages" reads as a slip, and makes the figure
/// beside it doubtful).
#[tokio::test]
async fn a_crawl_of_one_page_says_one_page() {
    let site = TestSite::one_host(&[("/", "<a href=/app>app</a>"), ("/app", APP)]).await;
    let h = Harness::default();
    let extra = "[scope]\nmax_pages = 1";
    let said = h.crawl(&[site.url(0, "/")], extra).await.to_string();
    assert!(said.contains("crawled 1 page (1 2xx), 1 link in"), "{said}");
}
