//! A crawl as the owner of the site reads it in their access log: who is asking, and
//! how to reach whoever runs the crawler.

use super::site::{Resource, SiteBuilder};
use super::Harness;

/// The user agent README advises: the crawler's name, its version, and a page where a
/// site's owner can reach whoever runs it (the default names no one to write to).
const ADVISED_AGENT: &str = "AcmeBot/1.0 (+https://acme.example/bot)";

/// README's advice for `fetch.user_agent` is sent as written with every request,
/// robots.txt included, and its name is what robots.txt groups address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_user_agent_readme_advises_names_a_contact_and_gets_its_robots_group() {
    let readme = include_str!("../../README.md").replace("\n  ", " ");
    let advice = format!("`fetch.user_agent = \"{ADVISED_AGENT}\"`");
    assert!(
        readme.contains(&advice),
        "README does not advise a user agent naming a contact: {advice}"
    );
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    let robots = "User-agent: *\nAllow: /\n\nUser-agent: acmebot\nDisallow: /private\n";
    b.add(
        &h,
        "/robots.txt",
        Resource::Typed("text/plain", robots.into()),
    );
    for (path, html) in [
        (
            "/",
            "<a href='/open'>open</a><a href='/private'>private</a>",
        ),
        ("/open", "<title>Open</title>"),
        ("/private", "<title>Private</title>"),
    ] {
        b.add(&h, path, Resource::Html(html.into()));
    }
    let site = b.start();
    let harness = Harness::default();
    let extra = format!("[fetch]\nuser_agent = {ADVISED_AGENT:?}\n");
    harness.crawl(&[site.url(0, "/")], &extra).await;
    let agents: Vec<String> = site.hits().into_iter().map(|hit| hit.agent).collect();
    assert_eq!(agents.len(), 3, "robots.txt, / and /open: {agents:?}");
    assert!(
        agents.iter().all(|agent| agent == ADVISED_AGENT),
        "{agents:?}"
    );
    assert_eq!(site.count(&site.url(0, "/private")), 0);
    assert_eq!(site.count(&site.url(0, "/open")), 1);
}
