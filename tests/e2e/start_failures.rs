//! Starts that fail part way: each must stop with one error line saying what failed,
//! exit 1 with no panic, and leave the crawl for the next start to go on.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sqlx::PgPool;

use super::cluster::{run_to_the_end, stops_with_error};
use super::postgres::TestPostgres;
#[cfg(target_os = "linux")]
use super::query::pipecrawl_under_limit;

/// A crawl's PostgreSQL with its tables made by a first crawl of a node's config (under
/// `node_id` when one is given), the config (in `dir`), and a connection to the database;
/// `None` on a machine without PostgreSQL.
async fn a_crawled_database(
    test: &str,
    dir: &Path,
    node_id: Option<&str>,
) -> Option<(TestPostgres, PathBuf, PgPool)> {
    let postgres = TestPostgres::start(test)?;
    let database = postgres.database("crawl").await;
    let config = dir.join("node.toml");
    let node = node_id.map_or_else(String::new, |id| format!("[cluster]\nnode_id = {id:?}\n"));
    // A seed nothing listens on, asked once, and the admin API on a free port.
    std::fs::write(
        &config,
        format!(
            "seeds = [\"http://127.0.0.1:9/\"]\n\
             [storage]\ndatabase = {database:?}\n\
             [admin]\nlisten = \"127.0.0.1:0\"\n\
             [retry]\nmax_attempts = 1\n{node}"
        ),
    )
    .expect("write the config");
    let first = run_to_the_end("crawl", &config);
    assert!(super::cli::ran_to_its_end(&first), "{first:?}");
    let db = PgPool::connect(&database).await.expect("connect");
    Some((postgres, config, db))
}

/// What a role granted every privilege on `table` but `privilege` meets.
async fn refuse(db: &PgPool, privilege: &str, table: &str) {
    for statement in [
        format!(
            "CREATE FUNCTION refuse_{table}() RETURNS trigger LANGUAGE plpgsql AS
             $$ BEGIN RAISE EXCEPTION 'permission denied for table {table}'; END $$"
        ),
        format!(
            "CREATE TRIGGER refuse BEFORE {privilege} ON {table} EXECUTE FUNCTION refuse_{table}()"
        ),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(db)
            .await
            .expect("refuse the privilege");
    }
}

/// The host leases start after the database is made ready, once the run is about to
/// spawn its stages. A failure there ended the run with the parse threads and the store
/// writer started: the writer, left to finish as the runtime shut down, panicked on
/// stderr ("A Tokio 1.x context was found, but it is being shutdown"), with a warning of
/// a lost connection, in most runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_refused_as_its_host_leases_start_says_so_without_a_panic() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let Some((_postgres, config, db)) =
        a_crawled_database("a_start_refused_as_its_host_leases_start", dir.path(), None).await
    else {
        return;
    };
    // A node's heartbeat, which its host leases start with, forgets nodes long gone.
    refuse(&db, "DELETE", "nodes").await;
    for command in ["crawl", "serve", "crawl", "serve", "crawl", "serve"] {
        let began = Instant::now();
        let stderr = stops_with_error(command, &config);
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "{command}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{command}: {stderr}");
        assert!(
            !stderr.contains("lost the connection"),
            "{command}: {stderr}"
        );
        assert!(
            stderr.contains("forgetting nodes long gone")
                && stderr.contains("permission denied for table nodes"),
            "{command}: {stderr}"
        );
        let errors = stderr.lines().filter(|l| l.starts_with("error:")).count();
        assert_eq!(errors, 1, "{command}: {stderr}");
    }
}

/// A node that stopped on an error after taking its `cluster.node_id` kept it for a
/// lease time (30 s by default): restarted at once, by hand or by systemd once the cause
/// was mended, it was refused as a live node of that id. It stopped; it is no crash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_start_failed_can_start_again_at_once_under_its_id() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let Some((_postgres, config, db)) = a_crawled_database(
        "a_node_whose_start_failed_can_start_again",
        dir.path(),
        Some("a"),
    )
    .await
    else {
        return;
    };
    // Its host leases start by handing back the hosts its last run held.
    refuse(&db, "UPDATE", "hosts").await;
    let stderr = stops_with_error("crawl", &config);
    assert!(
        stderr.contains("permission denied for table hosts"),
        "{stderr}"
    );
    sqlx::query("DROP TRIGGER refuse ON hosts")
        .execute(&db)
        .await
        .expect("grant the privilege");
    let again = run_to_the_end("crawl", &config);
    assert!(super::cli::ran_to_its_end(&again), "{again:?}");
}

/// Under an open-file limit too low for even one fetch worker (`ulimit -n` of 16, a
/// sandbox's or a unit's `LimitNOFILE=16`), SQLite cannot open its database, write-ahead
/// log or shared memory, and says only "unable to open database file", as of a path it
/// may not write: the error names the limit.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_under_too_low_an_open_file_limit_names_the_limit() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let config = dir.path().join("crawl.toml");
    let database = dir.path().join("crawl.db");
    std::fs::write(
        &config,
        format!(
            "seeds = [\"http://127.0.0.1:9/\"]\n[storage]\ndatabase = {:?}\n\
             [retry]\nmax_attempts = 1\n",
            database.display().to_string()
        ),
    )
    .expect("write the config");
    let args = || {
        ["crawl", "--config", &config.display().to_string()]
            .map(str::to_owned)
            .to_vec()
    };
    for files in [14, 16, 18] {
        let out = pipecrawl_under_limit(args(), rlimit::Resource::NOFILE, files).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{files}: {stderr}");
        let error = stderr
            .lines()
            .find(|line| line.starts_with("error:"))
            .unwrap_or_default();
        assert!(
            error.contains(&format!(
                "this process may open only {files} files (`ulimit -n`"
            )),
            "{files}: {stderr}"
        );
    }
    let again = run_to_the_end("crawl", &config);
    assert!(super::cli::ran_to_its_end(&again), "{again:?}");
}
