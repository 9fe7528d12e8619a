//! Settings a DBA puts on the crawl's role or database (`ALTER ROLE … SET`), which each
//! session of a node starts with.

use super::cluster::{run_to_the_end, stops_with_error};
use super::connection_limit::{a_role_allowed, as_superuser, crawl_config};
use super::site::{SiteBuilder, TestSite};

/// The pages the home page links to.
const PAGES: usize = 20;

/// A site of a home page and its [`PAGES`], and a directory for a config.
async fn a_site() -> (TestSite, tempfile::TempDir) {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add_home_and_pages(&h, PAGES);
    (b.start(), tempfile::tempdir().expect("a temp dir"))
}

/// Crawls `config` to its end, asserting it ran there; its stderr.
fn crawls(config: &std::path::Path) -> String {
    let out = run_to_the_end("crawl", config);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(super::cli::ran_to_its_end(&out), "{stderr}");
    stderr
}

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
    let (site, dir) = a_site().await;
    let config = crawl_config(dir.path(), "crawl", &site, &database);
    let stderr = crawls(&config);
    let crawl = as_superuser(&database).await;
    let pages: i64 = sqlx::query_scalar("SELECT count(*) FROM pages WHERE status = 200")
        .fetch_one(&crawl)
        .await
        .expect("count the pages");
    assert_eq!(pages, PAGES as i64 + 1, "{stderr}");
}

/// A `lock_timeout` on the role (a DBA's guard against sessions queueing behind a lock)
/// stopped a node whose step waited longer for a lock another session held: nodes
/// started together stopped "cannot bring the database schema up to date: … canceling
/// statement due to lock timeout", waiting for the first one's migration, and a running
/// node at a DBA's `LOCK TABLE frontier` or `VACUUM FULL`. The node's sessions wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_roles_lock_timeout_does_not_stop_a_crawl_at_a_held_lock() {
    let Some((_postgres, admin, database)) = a_role_allowed("role_lock_timeout", 20).await else {
        return;
    };
    let (site, dir) = a_site().await;
    let config = crawl_config(dir.path(), "crawl", &site, &database);
    crawls(&config);
    sqlx::query("ALTER ROLE crawler SET lock_timeout = '1ms'")
        .execute(&admin)
        .await
        .expect("set the role's lock_timeout");
    let crawl = as_superuser(&database).await;
    let dba = super::postgres::lock_table(&crawl, "frontier").await;
    let run = tokio::task::spawn_blocking(move || run_to_the_end("crawl", &config));
    // Held until the crawl waits for it, or stopped.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let waiting: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_locks WHERE NOT granted")
            .fetch_one(&crawl)
            .await
            .expect("read pg_locks");
        if waiting > 0 || run.is_finished() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the crawl never met the lock"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    dba.commit().await.expect("let the frontier go");
    let out = run.await.expect("join the crawl");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(super::cli::ran_to_its_end(&out), "{stderr}");
}

/// A role that may not create tables in its schema (PostgreSQL 15's `public` to all but
/// the database's owner) was told only "permission denied for schema public at line
/// 3655" (a line of PostgreSQL's own source), naming neither the role nor what to grant.
/// The error names both and the two ways out; the second, a schema of its own first in
/// its search_path, then crawls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_that_may_not_create_its_tables_is_told_what_to_grant() {
    let Some((_postgres, admin, owned)) = a_role_allowed("role_privileges", 20).await else {
        return;
    };
    for statement in [
        "CREATE DATABASE shared",
        "GRANT CONNECT ON DATABASE shared TO crawler",
    ] {
        sqlx::query(statement)
            .execute(&admin)
            .await
            .expect("make a database the role does not own");
    }
    let database = format!("{}shared", owned.trim_end_matches("crawl"));
    let shared = as_superuser(&database).await;
    // As PostgreSQL 15 has it from the start; 14 and older let every role create there.
    sqlx::query("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        .execute(&shared)
        .await
        .expect("keep the role out of public");
    let (site, dir) = a_site().await;
    let config = crawl_config(dir.path(), "crawl", &site, &database);
    let stderr = stops_with_error("crawl", &config);
    for said in [
        "as role \"crawler\" in schema \"public\": permission denied for schema public",
        "GRANT CREATE ON SCHEMA public TO crawler",
        "CREATE SCHEMA crawl AUTHORIZATION crawler",
        "ALTER ROLE crawler SET search_path = crawl",
    ] {
        assert!(stderr.contains(said), "{said:?} in {stderr}");
    }
    assert!(!stderr.contains(" at line "), "{stderr}");
    for statement in [
        "CREATE SCHEMA crawl AUTHORIZATION crawler",
        "ALTER ROLE crawler SET search_path = crawl",
    ] {
        sqlx::query(statement)
            .execute(&shared)
            .await
            .expect("give the role a schema of its own");
    }
    crawls(&config);
    let pages: i64 = sqlx::query_scalar("SELECT count(*) FROM crawl.pages WHERE status = 200")
        .fetch_one(&shared)
        .await
        .expect("count the pages");
    assert_eq!(pages, PAGES as i64 + 1);
}

/// A reader granted `SELECT ON ALL TABLES` before the crawl's first run (as a DBA
/// provisions the roles of a new database) was granted no table, the crawl's role making
/// them later: its questions got "permission denied for table _sqlx_migrations". README's
/// reader grants, made before the first run, let it ask them after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_granted_as_readme_says_before_the_first_run_can_ask_questions() {
    let Some((_postgres, admin, database)) = a_role_allowed("role_reader", 20).await else {
        return;
    };
    sqlx::query("CREATE ROLE reader LOGIN")
        .execute(&admin)
        .await
        .expect("make the reader");
    let crawl = as_superuser(&database).await;
    let readme = include_str!("../../README.md").replace('\n', " ");
    for grant in [
        "GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader",
        "ALTER DEFAULT PRIVILEGES FOR ROLE crawler IN SCHEMA public GRANT SELECT ON TABLES TO reader",
    ] {
        assert!(readme.contains(grant), "README does not say {grant:?}");
        sqlx::query(sqlx::AssertSqlSafe(grant))
            .execute(&crawl)
            .await
            .expect("grant the reader what README says");
    }
    let (site, dir) = a_site().await;
    let config = crawl_config(dir.path(), "crawl", &site, &database);
    crawls(&config);
    let reader = database.replace("crawler@", "reader@");
    let out = super::query::pipecrawl(
        ["query", "--db", &reader, "--format", "csv", "sql"]
            .into_iter()
            .chain(["SELECT count(*) FROM pages WHERE status = 200"])
            .map(String::from)
            .collect(),
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pages = (PAGES + 1).to_string();
    assert_eq!(stdout.lines().last(), Some(pages.as_str()), "{stdout}");
}
