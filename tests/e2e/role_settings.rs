//! Settings a DBA puts on the crawl's role or database (`ALTER ROLE … SET`), which each
//! session of a node starts with.

use super::cluster::run_to_the_end;
use super::connection_limit::{a_role_allowed, crawl_config};
use super::site::SiteBuilder;

/// The pages the home page links to.
const PAGES: usize = 20;

/// A `statement_timeout` on the role (a DBA's guard against runaway queries) cancelled
/// whichever step of the crawl ran past it, a migration or a lease, and the node stopped
/// with "canceling statement due to statement timeout", though README says the steps
/// that go over the whole frontier are waited for however long they take. The node's own
/// sessions wait; its steps have their own limits (`store::outage`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_roles_statement_timeout_does_not_stop_a_crawl() {
    let Some((_postgres, admin, database)) = a_role_allowed("role_settings", 20).await else {
        return;
    };
    sqlx::query("ALTER ROLE crawler SET statement_timeout = '1ms'")
        .execute(&admin)
        .await
        .expect("set the role's statement_timeout");
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add_home_and_pages(&h, PAGES);
    let site = b.start();
    let dir = tempfile::tempdir().expect("a temp dir");
    let config = crawl_config(dir.path(), "crawl", &site, &database);
    let out = run_to_the_end("crawl", &config);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(super::cli::ran_to_its_end(&out), "{stderr}");
    let crawl = sqlx::PgPool::connect(&database.replace("crawler@", "postgres@"))
        .await
        .expect("connect to the crawl's database");
    let pages: i64 = sqlx::query_scalar("SELECT count(*) FROM pages WHERE status = 200")
        .fetch_one(&crawl)
        .await
        .expect("count the pages");
    assert_eq!(pages, PAGES as i64 + 1, "{stderr}");
}
