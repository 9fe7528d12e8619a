//! A shop's faceted navigation: one listing under many query strings, products linked with
//! tracking parameters, as a team crawling a large e-commerce site configures the crawl.

use super::site::TestSite;
use super::Harness;

/// The URLs of the pages stored, sorted.
async fn stored_urls(harness: &Harness) -> Vec<String> {
    let mut urls: Vec<String> = harness
        .db()
        .await
        .pages()
        .await
        .into_iter()
        .map(|p| p.url)
        .collect();
    urls.sort();
    urls
}

#[tokio::test]
async fn a_session_param_ending_in_a_star_removes_every_parameter_it_begins() {
    let site = TestSite::one_host(&[
        (
            "/",
            r#"<a href="/p/1?utm_source=home&utm_medium=nav&color=red">one</a>
               <a href="/p/1?color=red&utm_campaign=sale">one again</a>
               <a href="/p/2?gclid=abc">two</a>"#,
        ),
        ("/p/1", "<title>one</title>"),
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

#[tokio::test]
async fn with_sort_query_the_same_facets_in_any_order_are_one_page() {
    let site = TestSite::one_host(&[
        (
            "/",
            r#"<a href="/c?size=m&color=red">m red</a>
               <a href="/c?color=red&size=m">red m</a>
               <a href="/c?size=m&tag=b&color=red&tag=a">tags</a>"#,
        ),
        ("/c", "<title>listing</title>"),
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
