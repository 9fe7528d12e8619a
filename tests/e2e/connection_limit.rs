//! A PostgreSQL role (or database, or server) that lets a node open fewer connections
//! than its pool would: the crawl fits its pool to the limit instead of asking the server
//! again and again for a connection it refuses.

use std::path::{Path, PathBuf};
use std::time::Instant;

use sqlx::PgPool;

use super::cluster::run_to_the_end;
use super::postgres::TestPostgres;
use super::site::{SiteBuilder, TestSite};

/// The pages the home page links to.
const PAGES: usize = 40;

/// A server for `test` with a role `crawler` allowed `limit` connections, owning a
/// database `crawl`: a connection to the server as its superuser, and the database's URL
/// as `crawler`. `None` on a machine without PostgreSQL.
pub(super) async fn a_role_allowed(
    test: &str,
    limit: u32,
) -> Option<(TestPostgres, PgPool, String)> {
    let postgres = TestPostgres::start(test)?;
    let admin = PgPool::connect(&postgres.url("postgres"))
        .await
        .expect("connect");
    for statement in [
        format!("CREATE ROLE crawler LOGIN CONNECTION LIMIT {limit}"),
        "CREATE DATABASE crawl OWNER crawler".to_owned(),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&admin)
            .await
            .expect("make the role and its database");
    }
    let database = postgres.url("crawl").replace("postgres@", "crawler@");
    Some((postgres, admin, database))
}

/// A connection to `database` (a URL as `crawler`, as [`a_role_allowed`] gives) as the
/// server's superuser.
pub(super) async fn as_superuser(database: &str) -> PgPool {
    PgPool::connect(&database.replace("crawler@", "postgres@"))
        .await
        .expect("connect as the superuser")
}

/// Writes `{name}.toml` in `dir`: a crawl of `site`'s home and pages into `database`,
/// without delays or retries; its path.
pub(super) fn crawl_config(dir: &Path, name: &str, site: &TestSite, database: &str) -> PathBuf {
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            "seeds = [{:?}]\n[storage]\ndatabase = {database:?}\n[politeness]\n\
             delay_ms = 0\nper_host_concurrency = 4\n[retry]\nmax_attempts = 1\n",
            site.url(0, "/")
        ),
    )
    .expect("write the config");
    config
}

/// Under `ALTER ROLE crawler CONNECTION LIMIT 3` a node's pool of 8 asked for its fourth
/// connection, which the server refused as one too many: sqlx asked again for the pool's
/// whole wait (10 s) instead of taking a connection handed back meanwhile, and a crawl of
/// one URL took a minute, with a warning each time that the database was out of reach.
/// Under a limit of 2 the node's pool is as small as it can be: no step may wait for a
/// second connection while it holds the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_under_a_roles_connection_limit_runs_at_its_pace() {
    let Some((_postgres, admin, database)) = a_role_allowed("connection_limit", 3).await else {
        return;
    };
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add_home_and_pages(&h, PAGES);
    let site = b.start();
    let dir = tempfile::tempdir().expect("a temp dir");
    for limit in [3, 2] {
        let database = if limit == 3 {
            database.clone()
        } else {
            for statement in [
                format!("ALTER ROLE crawler CONNECTION LIMIT {limit}"),
                format!("CREATE DATABASE crawl{limit} OWNER crawler"),
            ] {
                sqlx::query(sqlx::AssertSqlSafe(statement))
                    .execute(&admin)
                    .await
                    .expect("lower the limit");
            }
            format!("{database}{limit}")
        };
        let config = crawl_config(dir.path(), &format!("crawl{limit}"), &site, &database);
        let started = Instant::now();
        let out = run_to_the_end("crawl", &config);
        let took = started.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(super::cli::ran_to_its_end(&out), "{stderr}");
        let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("WARN")).collect();
        let says = format!("role \"crawler\" has CONNECTION LIMIT {limit}");
        assert!(
            warnings.len() == 1 && warnings[0].contains(&says),
            "limit {limit}, {} warnings in {took:?}: {stderr}",
            warnings.len()
        );
        let crawl = as_superuser(&database).await;
        let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM pages")
            .fetch_one(&crawl)
            .await
            .expect("count the pages");
        assert_eq!(stored, i64::try_from(PAGES + 1).expect("a few pages"));
    }
}
