//! A shop's faceted navigation: one listing under many query strings, products linked with
//! tracking parameters, as a team crawling a large e-commerce site configures the crawl.

use super::polite::title_at;
use super::site::{Resource, SiteBuilder, TestSite};
use super::Harness;

/// The URLs of the pages stored, in order (as `Db::pages` reads them).
async fn stored_urls(harness: &Harness) -> Vec<String> {
    let pages = harness.db().await.pages().await;
    pages.into_iter().map(|p| p.url).collect()
}

/// A campaign tool mints a family of tracking parameters (`utm_source`, `utm_medium`, …):
/// one `utm_*` names them all, so a product linked with any of them is one page.
#[tokio::test]
async fn a_session_param_ending_in_a_star_removes_every_parameter_it_begins() {
    let site = TestSite::one_host(&[
        (
            "/",
            r#"<a href="/p/1?utm_source=home&utm_medium=nav&color=red">one</a>
               <a href="/p/1?color=red&utm_campaign=sale">one again</a>
               <a href="/p/2?gclid=abc">two</a>"#,
        ),
        ("/p/1?color=red", "<title>one</title>"),
        ("/p/2", "<title>two</title>"),
    ])
    .await;
    let harness = Harness::default();
    harness
        .crawl(
            &[site.url(0, "/")],
            "[traps]\nsession_params = [\"jsessionid\", \"utm_*\", \"gclid\"]\n",
        )
        .await;
    assert_eq!(
        stored_urls(&harness).await,
        [
            site.url(0, "/"),
            site.url(0, "/p/1?color=red"),
            site.url(0, "/p/2"),
        ]
    );
    assert_eq!(site.count(&site.url(0, "/p/1?color=red")), 1);
}

/// A listing's facet links name the same filters in the order each was clicked: under
/// `traps.sort_query` they are one page, fetched once.
#[tokio::test]
async fn with_sort_query_the_same_facets_in_any_order_are_one_page() {
    let site = TestSite::one_host(&[
        (
            "/",
            r#"<a href="/c?size=m&color=red">m red</a>
               <a href="/c?color=red&size=m">red m</a>
               <a href="/c?size=m&tag=b&color=red&tag=a">tags</a>"#,
        ),
        ("/c?color=red&size=m", "<title>listing</title>"),
        ("/c?color=red&size=m&tag=b&tag=a", "<title>tagged</title>"),
    ])
    .await;
    let harness = Harness::default();
    harness
        .crawl(&[site.url(0, "/")], "[traps]\nsort_query = true\n")
        .await;
    // Sorted by name, a name given twice keeping its values' order (`tag=b&tag=a`).
    assert_eq!(
        stored_urls(&harness).await,
        [
            site.url(0, "/"),
            site.url(0, "/c?color=red&size=m"),
            site.url(0, "/c?color=red&size=m&tag=b&tag=a"),
        ]
    );
    assert_eq!(site.count(&site.url(0, "/c?color=red&size=m")), 1);
}

/// A server that redirects a query to its own order of parameters is followed there
/// under `traps.sort_query`: the target is the server's word, not sorted back into the
/// URL that moved, which made a redirect loop of the page and never fetched it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_sort_query_a_redirect_to_the_servers_own_order_is_followed() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(
        &h,
        "/",
        Resource::Html("<a href='/c?size=m&color=red'>m red</a>".into()),
    );
    b.add(
        &h,
        "/c?color=red&size=m",
        Resource::Redirect(301, "/c?size=m&color=red".into()),
    );
    b.add(
        &h,
        "/c?size=m&color=red",
        Resource::Html("<title>listing</title>".into()),
    );
    let site = b.start();
    let harness = Harness::default();
    harness
        .crawl(&[site.url(0, "/")], "[traps]\nsort_query = true\n")
        .await;
    let title = title_at(&harness, &site, "/c?size=m&color=red").await;
    assert_eq!(title.as_deref(), Some("listing"));
}
