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
