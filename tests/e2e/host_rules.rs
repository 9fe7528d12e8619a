//! The rules a user writes for hosts (`scope.hosts`, `[[fetch.host]]`,
//! `[[politeness.host]]`) hold for the hosts URLs name on any port. The names reach the
//! test server through `fetch.proxy`, which resolves none of them.

use super::hostile::linking;
use super::Harness;

/// The names `scope.hosts` writes without a wildcard are the user's, never counted
/// against `traps.max_hosts_per_domain`, and a host is a name on every port: reached on
/// `:8080`, each was counted as a new name all the same, and those past the limit were
/// trap rows. The names only the wildcard takes are still held to the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_scope_hosts_writes_are_not_counted_on_any_port() {
    let home = "http://www.trap.test:8080/";
    let named = ["http://n1.trap.test:8080/", "http://n2.trap.test:8080/"];
    let found = ["http://a1.trap.test:8080/", "http://a2.trap.test:8080/"];
    let proxy = linking(home, &[named, found].concat()).await;
    let config = format!(
        "[scope]\nhosts = [\"*.trap.test\", \"n1.trap.test\", \"n2.trap.test\"]\n\
         [fetch]\nproxy = \"http://{}\"\n[traps]\nmax_hosts_per_domain = 1\n",
        proxy.authority
    );
    let harness = Harness::default();
    harness.crawl(&[home.to_owned()], &config).await;

    let db = harness.db().await;
    let mut outcome = Vec::new();
    for url in named.iter().chain(&found) {
        let row = db.page(url).await;
        let kind = row.as_ref().and_then(|r| r.error_kind.clone());
        outcome.push((*url, proxy.count(url), kind));
    }
    let trap = Some("trap".to_owned());
    assert_eq!(
        outcome,
        [
            (named[0], 1, None),
            (named[1], 1, None),
            (found[0], 1, None),
            (found[1], 0, trap),
        ]
    );
}

/// A name found on two ports in one batch (`a1.trap.test` and `a1.trap.test:8080` on one
/// page) is one name of its domain: counted twice, it took the place of the next name,
/// which was cut as a trap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_found_on_two_ports_at_once_is_counted_once() {
    let home = "http://www.trap.test/";
    let found = [
        "http://a1.trap.test/",
        "http://a1.trap.test:8080/",
        "http://a2.trap.test/",
    ];
    let proxy = linking(home, &found).await;
    let config = format!(
        "[scope]\nhosts = [\"*.trap.test\"]\n[fetch]\nproxy = \"http://{}\"\n\
         [traps]\nmax_hosts_per_domain = 2\n",
        proxy.authority
    );
    let harness = Harness::default();
    harness.crawl(&[home.to_owned()], &config).await;
    let fetched: Vec<usize> = found.iter().map(|url| proxy.count(url)).collect();
    assert_eq!(fetched, [1, 1, 1], "{found:?}");
}
