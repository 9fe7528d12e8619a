//! An intranet crawl: hosts on private addresses, opened by `network.allow`.

use super::site::{Resource, SiteBuilder};
use super::Harness;

/// A seed redirecting to another intranet host (a private address, refused) is crawled
/// there by a run with the range added to `network.allow`, as its row's error says to
/// do: the row stayed `address_refused` for good, the run having nothing to do
/// ("nothing left to crawl"), and an admin had to start a new database. On both backends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_address_is_crawled_by_a_run_whose_network_allow_takes_it() {
    let harness = Harness::default();
    let (_server, databases) = super::recrawl::both_backends(
        &harness,
        "a_refused_address_is_crawled_by_a_run_whose_network_allow_takes_it (PostgreSQL half)",
        "refused_address",
    )
    .await;
    for database in databases {
        let mut b = SiteBuilder::bind(2).await;
        let (home, wiki) = (b.authority(0), b.authority(1));
        b.add(
            &home,
            "/",
            Resource::Redirect(302, format!("http://{wiki}/")),
        );
        b.add(&wiki, "/", Resource::Html("<title>Wiki</title>".into()));
        let site = b.start();
        let seed = site.url(0, "/");
        let crawl = |extra: &str| {
            let config = super::recrawl::config_on(&harness, &database, &seed, extra);
            pipecrawl::crawl(config, std::future::pending())
        };
        let wiki_home = site.url(1, "/");
        let landed = || {
            super::recrawl::rows::<(Option<i64>, Option<String>)>(
                &database,
                "SELECT status, error_kind FROM pages WHERE url = $1",
                Some(&wiki_home),
            )
        };

        crawl("").await.expect("the first crawl succeeds");
        assert_eq!(landed().await, [(None, Some("address_refused".into()))]);
        crawl("[network]\nallow = ['127.0.0.0/8']\n")
            .await
            .expect("the second crawl succeeds");
        assert_eq!(landed().await, [(Some(200), None)], "{database}");
        let asked: Vec<String> = site.hits_for(&wiki).into_iter().map(|h| h.path).collect();
        assert_eq!(asked, ["/robots.txt", "/"], "{database}");
    }
}

/// A token written in `fetch.headers` (`Authorization`, a session `Cookie`, an API key)
/// goes to every host the crawl reaches, a host a seed redirects to included: an
/// intranet sending its visitors to an outside single sign-on page was sent the token
/// there, with nothing said. The run says so as it starts, and where the token goes
/// instead; a header that is no credential (`From`) is not named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_for_every_host_is_warned_of_as_the_crawl_starts() {
    let site = super::site::TestSite::one_host(&[("/", "<title>Home</title>")]).await;
    let harness = Harness::default();
    let extra = "[fetch]\nheaders = { Authorization = 'Bearer t', X-Api-Key = 'k', \
                 From = 'it@corp.example' }\n";
    let text = harness.test_config_text(&[site.url(0, "/")], extra);
    let out = super::cluster::run_to_the_end("crawl", &harness.write_config(&text));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(
            "fetch.headers sends Authorization, X-Api-Key to every host the crawl reaches, \
             those a seed redirects to included: a token for some hosts goes in a \
             [[fetch.host]] rule naming them"
        ),
        "{said}"
    );
    assert!(
        !said.contains("From,") && !said.contains(", From"),
        "{said}"
    );
}
