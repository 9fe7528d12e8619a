//! Starts that fail part way, on PostgreSQL: each must stop with one error line saying
//! what failed, exit 1 with no panic, and leave the crawl for the next start to go on.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sqlx::PgPool;

use super::cluster::{run_to_the_end, stops_with_error};
use super::postgres::TestPostgres;

/// A node's config for `database`, seeded with a URL nothing listens on (asked once) and
/// with the admin API on a free port, under `node_id` when one is given.
fn node_config(dir: &Path, database: &str, node_id: Option<&str>) -> PathBuf {
    let config = dir.join("node.toml");
    let node = node_id.map_or_else(String::new, |id| format!("[cluster]\nnode_id = {id:?}\n"));
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
    config
}

/// A connection to `database` once a first crawl with `config` has made its tables.
async fn a_crawled_database(config: &Path, database: &str) -> PgPool {
    let first = run_to_the_end("crawl", config);
    assert!(super::cli::ran_to_its_end(&first), "{first:?}");
    PgPool::connect(database).await.expect("connect")
}

/// What a role granted SELECT, INSERT and UPDATE on `nodes` but not DELETE meets, which
/// a node first asks for as its host leases start: its heartbeat forgets long-gone nodes.
async fn refuse_forgetting_nodes(db: &PgPool) {
    for statement in [
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
         $$ BEGIN RAISE EXCEPTION 'permission denied for table nodes'; END $$",
        "CREATE TRIGGER refuse BEFORE DELETE ON nodes EXECUTE FUNCTION refuse()",
    ] {
        sqlx::query(statement)
            .execute(db)
            .await
            .expect("refuse deleting nodes");
    }
}

/// The host leases start after the database is made ready, once the run is about to
/// spawn its stages. A failure there ended the run with the parse threads and the store
/// writer started: the writer, left to finish as the runtime shut down, panicked on
/// stderr ("A Tokio 1.x context was found, but it is being shutdown"), with a warning of
/// a lost connection, in most runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_refused_as_its_host_leases_start_says_so_without_a_panic() {
    let Some(postgres) = TestPostgres::start("a_start_refused_as_its_host_leases_start") else {
        return;
    };
    let database = postgres.database("crawl").await;
    let dir = tempfile::tempdir().expect("a temp dir");
    let config = node_config(dir.path(), &database, None);
    let db = a_crawled_database(&config, &database).await;
    refuse_forgetting_nodes(&db).await;
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
