//! Starts that fail part way: each must stop with one error line saying what failed,
//! exit 1 with no panic, and leave the crawl for the next start to go on.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sqlx::PgPool;

use super::cluster::{run_to_the_end, stops_with_error};
use super::connection_limit::a_role_allowed;
use super::postgres::TestPostgres;
#[cfg(target_os = "linux")]
use super::query::pipecrawl_under_limit;

/// The config, in `dir`, of a crawl into `database` from a seed nothing listens on, asked
/// once, with `extra` sections.
fn config_of(dir: &Path, database: &str, extra: &str) -> PathBuf {
    let config = dir.join("crawl.toml");
    std::fs::write(
        &config,
        format!(
            "seeds = [\"http://127.0.0.1:9/\"]\n[storage]\ndatabase = {database:?}\n\
             [retry]\nmax_attempts = 1\n{extra}"
        ),
    )
    .expect("write the config");
    config
}

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
    // The admin API on a free port.
    let node = node_id.map_or_else(String::new, |id| format!("[cluster]\nnode_id = {id:?}\n"));
    let config = config_of(
        dir,
        &database,
        &format!("[admin]\nlisten = \"127.0.0.1:0\"\n{node}"),
    );
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
    let mended = "DROP TRIGGER refuse ON hosts";
    stops_then_runs_once_mended(&config, "permission denied for table hosts", &db, mended).await;
}

/// Under an open-file limit too low for even one fetch worker (`ulimit -n` of 16, a
/// sandbox's or a unit's `LimitNOFILE=16`), SQLite cannot open its database, write-ahead
/// log or shared memory, and says only "unable to open database file", as of a path it
/// may not write: the error names the limit.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_under_too_low_an_open_file_limit_names_the_limit() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let database = dir.path().join("crawl.db").display().to_string();
    let config = config_of(dir.path(), &database, "");
    let args = || {
        ["crawl", "--config", &config.display().to_string()]
            .map(str::to_owned)
            .to_vec()
    };
    // At 14 and 16 files the database's open fails. At 18 it opens, and a later step of
    // the start fails or not by which of its tasks holds a file at that moment: some
    // runs get through to their fetch (refused by the seed's closed port: exit 4). Each
    // stop must name the limit, and runs at 18 are made until one stops (at most 20),
    // each on a new database: a run after one that got through would find its seed
    // tried, nothing left to fetch, and end at once (exit 0). Whether a run under `files`
    // stopped at its start, naming the limit; one that got through (exit 4) is taken only
    // at 18.
    let stops = |files: u64| {
        let args = args();
        async move {
            let out = pipecrawl_under_limit(args, rlimit::Resource::NOFILE, files).await;
            let stderr = String::from_utf8_lossy(&out.stderr);
            let error = stderr
                .lines()
                .find(|line| line.starts_with("error:"))
                .unwrap_or_default();
            if files == 18 && out.status.code() == Some(4) {
                assert!(error.contains("no page was fetched"), "{files}: {stderr}");
                return false;
            }
            assert_eq!(out.status.code(), Some(1), "{files}: {stderr}");
            let limit = format!("this process may open only {files} files (`ulimit -n`");
            assert!(error.contains(&limit), "{files}: {stderr}");
            true
        }
    };
    for files in [14, 16] {
        stops(files).await;
    }
    let mut stopped_at_18 = false;
    for _ in 0..20 {
        for file in ["", "-wal", "-shm"].map(|suffix| format!("{database}{suffix}")) {
            let _ = std::fs::remove_file(file);
        }
        stopped_at_18 = stops(18).await;
        if stopped_at_18 {
            break;
        }
    }
    assert!(stopped_at_18, "no run under 18 files stopped at its start");
    let again = run_to_the_end("crawl", &config);
    assert!(super::cli::ran_to_its_end(&again), "{again:?}");
}

/// A PostgreSQL role allowed one connection (`ALTER ROLE … CONNECTION LIMIT 1`, or a
/// server at its `max_connections` but for one) takes the node's first connection and
/// refuses the next: sqlx's pool retries a refused connection for its whole wait, and
/// the start said only "pool timed out while waiting for an open connection", 10 s on.
/// A node needs two (`store::conn_limit`): it stops at once, saying so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_allowed_too_few_connections_is_named_as_the_cause() {
    let Some((_postgres, admin, database)) =
        a_role_allowed("a_role_allowed_too_few_connections", 1).await
    else {
        return;
    };
    let dir = tempfile::tempdir().expect("a temp dir");
    let config = config_of(dir.path(), &database, "");
    let refused = "role \"crawler\" has CONNECTION LIMIT 1, and a node needs 2 connections";
    let mended = "ALTER ROLE crawler CONNECTION LIMIT -1";
    stops_then_runs_once_mended(&config, refused, &admin, mended).await;
}

/// A crawl of `config` stops with an error saying `says`; once `mend` has run on `db`,
/// the next runs to its end.
async fn stops_then_runs_once_mended(config: &Path, says: &str, db: &PgPool, mend: &str) {
    let stderr = stops_with_error("crawl", config);
    assert!(stderr.contains(says), "{stderr}");
    sqlx::query(sqlx::AssertSqlSafe(mend))
        .execute(db)
        .await
        .expect("mend the database");
    let again = run_to_the_end("crawl", config);
    assert!(super::cli::ran_to_its_end(&again), "{again:?}");
}
