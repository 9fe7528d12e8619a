//! A StormCrawler user's status index as README's "Coming from StormCrawler" maps it onto
//! `frontier` and `pages`: a crawl shows each status where the mapping says it is.

use super::from_scrapy::readme_maps;
use super::site::{Resource, SiteBuilder};
use super::Harness;

/// FETCHED, REDIRECTION and ERROR, and `max.fetch.errors` as `retry.max_attempts`: a
/// 500 whose retries ran out is `done` with its status, a URL that never got an answer
/// `failed`, and both were tried `max_attempts` times, the first failure counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_status_of_the_status_index_is_the_frontier_row_readme_names() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    let home = "<a href='/ok'>ok</a><a href='/moved'>moved</a><a href='/broken'>broken</a>\
                <a href='http://127.0.0.1:9/'>nobody</a>";
    b.add(&h, "/", Resource::Html(home.into()));
    b.add(&h, "/ok", Resource::Html("<title>OK</title>".into()));
    b.add(&h, "/moved", Resource::Redirect(301, "/ok".into()));
    b.add(&h, "/broken", Resource::Status(500, "oops".into()));
    let site = b.start();
    let harness = Harness::default();
    harness
        .crawl(
            &[site.url(0, "/"), "http://127.0.0.1:9/".to_owned()],
            "[retry]\nmax_attempts = 3\nbase_delay_ms = 10\nmax_delay_ms = 20\n\
             [politeness]\nrespect_robots_txt = false\n",
        )
        .await;
    let db = harness.db().await;
    // The URL's frontier row and page as "state attempts status-or-error_kind".
    let is = |url: String, want: &'static str| {
        let db = &db;
        async move {
            let found = db
                .scalar(&format!(
                    "SELECT count(*) FROM frontier f JOIN pages p ON p.id = f.id
                     WHERE f.url = '{url}' AND f.state || ' ' || f.attempts || ' '
                           || coalesce(CAST(p.status AS TEXT), p.error_kind) = '{want}'"
                ))
                .await;
            found == 1
        }
    };
    assert!(is(site.url(0, "/ok"), "done 1 200").await, "FETCHED");
    assert!(is(site.url(0, "/moved"), "done 1 301").await, "REDIRECTION");
    assert!(
        is(site.url(0, "/broken"), "done 3 500").await,
        "ERROR, answered"
    );
    assert!(
        is("http://127.0.0.1:9/".to_owned(), "failed 3 connect").await,
        "ERROR, unanswered"
    );
    for mapped in [
        "`FETCHED` | `state = 'done'`",
        "`REDIRECTION` | `state = 'done'`",
        "`ERROR` | given up: `state = 'failed'` when no answer came",
        "`max.fetch.errors = 3` | `retry.max_attempts = 3`",
    ] {
        assert!(readme_maps(mapped), "README maps {mapped}");
    }
}
