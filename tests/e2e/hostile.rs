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
