//! End-to-end tests: real crawls of an in-process loopback web, checked against the
//! database they leave behind. One test binary, so the crate links once.

mod broad;
mod cli;
mod cluster;
mod connection_limit;
mod counts;
mod crash;
mod crawl;
mod dead_robots;
mod facets;
mod faults;
mod from_colly;
mod from_nutch;
mod from_scrapy;
mod from_stormcrawler;
mod from_windows;
mod graph;
mod host_rules;
mod hostile;
mod http2;
mod intranet;
mod library;
mod max_pages;
mod polite;
mod postgres;
mod postgres_tls;
mod query;
mod query_postgres;
mod raw;
mod recrawl;
mod refused;
mod relay;
mod reload;
mod resume;
mod role_settings;
mod seeds_file;
mod service;
mod site;
mod site_owner;
mod socks;
mod spa;
mod start_failures;
mod suspend;
mod takedown;
mod terminal;
mod tls;
mod tuning;
mod unicode;
mod urls;

use std::path::{Path, PathBuf};

use pipecrawl::{Config, Summary};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Row, SqlitePool};
use tempfile::TempDir;

/// A crawl's working directory and database.
pub struct Harness {
    pub dir: TempDir,
}

impl Default for Harness {
    fn default() -> Self {
        Self {
            dir: tempfile::tempdir().expect("a temp dir"),
        }
    }
}

impl Harness {
    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("crawl.db")
    }

    /// A connection to the database holding a read transaction open, as a `sqlite3` shell
    /// after `BEGIN` or a notebook does: the WAL cannot be emptied past what it reads.
    pub async fn open_reader(&self) -> sqlx::SqliteConnection {
        use sqlx::{Connection, Executor};
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(self.db_path())
            .read_only(true);
        let mut reader = sqlx::SqliteConnection::connect_with(&options)
            .await
            .expect("open a reader");
        reader.execute("BEGIN").await.expect("begin");
        reader
            .execute("SELECT count(*) FROM pages")
            .await
            .expect("a read");
        reader
    }

    /// A config for `seeds` writing into this harness's database, fast for tests (no
    /// politeness delay), with `extra` TOML appended (sections other than `[storage]`).
    pub fn config_text(&self, seeds: &[String], extra: &str) -> String {
        let seeds: Vec<String> = seeds.iter().map(|s| format!("{s:?}")).collect();
        format!(
            "seeds = [{}]\n{extra}\n[storage]\ndatabase = {:?}\n",
            seeds.join(", "),
            self.db_path().display().to_string()
        )
    }

    pub fn write_config(&self, text: &str) -> PathBuf {
        let path = self.dir.path().join("crawl.toml");
        std::fs::write(&path, text).expect("write the test config");
        path
    }

    /// A config like [`Harness::config_text`] with the test defaults: unless `extra` sets
    /// them, there is no politeness delay and no retrying, so each URL is requested
    /// exactly once.
    pub fn test_config_text(&self, seeds: &[String], extra: &str) -> String {
        let mut extra = extra.to_owned();
        if !extra.contains("[politeness]") {
            extra.push_str("\n[politeness]\ndelay_ms = 0\n");
        }
        if !extra.contains("[retry]") {
            extra.push_str("\n[retry]\nmax_attempts = 1\n");
        }
        self.config_text(seeds, &extra)
    }

    /// Runs a crawl in-process with [`Harness::test_config_text`] and returns its summary.
    pub async fn crawl(&self, seeds: &[String], extra: &str) -> Summary {
        let config = Config::from_toml(&self.test_config_text(seeds, extra), "test config")
            .expect("a valid test config");
        pipecrawl::crawl(config, std::future::pending())
            .await
            .expect("the crawl succeeds")
    }

    pub async fn db(&self) -> Db {
        Db::open(&self.db_path()).await
    }

    pub async fn page_count(&self) -> i64 {
        self.db().await.scalar("SELECT count(*) FROM pages").await
    }
}

/// The lines `child` writes to its piped stderr, as they come: read on a thread of their
/// own, so that a test can wait for a log line while the process runs.
pub fn stderr_lines(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let stderr = child.stderr.take().expect("piped stderr");
    let (lines_tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

/// `RUST_LOG` for a service whose admin API a test asks: warnings, and the line saying
/// where the API listens, which [`admin_url`] reads.
pub const ADMIN_LOG: &str = "warn,pipecrawl::pipeline=info";

/// The admin config of a service on a port the system picks as it binds: one picked
/// beforehand (bound, closed, handed over) may be taken meanwhile by another program of
/// a busy machine, the service then refused or the test asking that program.
pub const ADMIN_ANY_PORT: &str = "[admin]\nlisten = \"127.0.0.1:0\"\n";

/// The base URL (`http://127.0.0.1:PORT`) of the admin API that `child`, a service
/// started with [`ADMIN_ANY_PORT`] and its stderr piped and filtered by [`ADMIN_LOG`] (or
/// at `info`), says it listens on. Its stderr is read on to its end meanwhile, so that it
/// never fills; a service that ends (or hangs) before it says so fails the test.
pub fn admin_url(child: &mut std::process::Child) -> String {
    let lines = stderr_lines(child);
    let (url_tx, url) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut url_tx = Some(url_tx);
        for line in lines {
            if let Some(base) = admin_url_in(&line) {
                if let Some(tx) = url_tx.take() {
                    let _ = tx.send(base);
                }
            }
        }
    });
    // It binds before it reads its database: a bound on a hang, not on a slow start.
    url.recv_timeout(std::time::Duration::from_secs(300))
        .expect("the service listened within 5 minutes, before it ended")
}

/// The admin API's base URL a service's log `line` gives, if it is the line saying where
/// the API listens.
pub fn admin_url_in(line: &str) -> Option<String> {
    const SAID: &str = "admin API on ";
    let at = line.find(SAID)? + SAID.len();
    Some(line[at..].trim_end().to_owned())
}

/// An address on loopback `ip` where connections are refused, and the socket that keeps
/// it so: bound there, not listening, it holds the port for as long as the test keeps it.
/// A port bound and closed at once (nothing listens on it, for now) may go to the next
/// program that binds one, another test's server say, which would then answer.
pub fn refusing_address(ip: [u8; 4]) -> (tokio::net::TcpSocket, std::net::SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket.bind((ip, 0).into()).expect("bind a loopback port");
    let address = socket.local_addr().expect("its address");
    (socket, address)
}

/// A SQLite database at `path` as an earlier pipecrawl left it: its schema at migration
/// `last` (this build's migrations up to it, applied as the crawl applies them), no rows.
pub async fn sqlite_at_migration(path: &Path, last: i64) -> sqlx::SqliteConnection {
    use sqlx::migrate::Migrate;
    use sqlx::Connection;
    static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .expect("create the database");
    conn.ensure_migrations_table("_sqlx_migrations")
        .await
        .expect("the migrations' table");
    for migration in MIGRATIONS.iter().filter(|m| m.version <= last) {
        conn.apply("_sqlx_migrations", migration)
            .await
            .expect("apply an earlier migration");
    }
    conn
}

/// The CPU time (user and system) in clock ticks that a `/proc/<pid>/stat` line gives.
pub fn cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of stat (utime, stime), counted after the name.
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// Read access to a crawl's results.
pub struct Db {
    pool: SqlitePool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PageRow {
    pub url: String,
    pub final_url: Option<String>,
    pub status: Option<i64>,
    pub content_type: Option<String>,
    pub title: Option<String>,
    pub depth: i64,
    pub error_kind: Option<String>,
    pub error: Option<String>,
    pub bytes: Option<i64>,
    pub truncated: bool,
}

impl Db {
    pub async fn open(path: &Path) -> Self {
        let options = SqliteConnectOptions::new().filename(path).read_only(true);
        Self {
            pool: SqlitePool::connect_with(options)
                .await
                .expect("open the crawl database"),
        }
    }

    pub async fn pages(&self) -> Vec<PageRow> {
        sqlx::query("SELECT url, final_url, status, content_type, title, depth, error_kind, error, bytes, truncated FROM pages ORDER BY url")
            .fetch_all(&self.pool)
            .await
            .expect("read pages")
            .into_iter()
            .map(|r| PageRow {
                url: r.get("url"),
                final_url: r.get("final_url"),
                status: r.get("status"),
                content_type: r.get("content_type"),
                title: r.get("title"),
                depth: r.get("depth"),
                error_kind: r.get("error_kind"),
                error: r.get("error"),
                bytes: r.get("bytes"),
                truncated: r.get("truncated"),
            })
            .collect()
    }

    pub async fn page(&self, url: &str) -> Option<PageRow> {
        self.pages().await.into_iter().find(|p| p.url == url)
    }

    /// (source url, target url, anchor text) for every link row.
    pub async fn links(&self) -> Vec<(String, String, String)> {
        sqlx::query(
            "SELECT p.url, l.target_url, l.anchor_text FROM links l JOIN pages p ON p.id = l.source_id",
        )
        .fetch_all(&self.pool)
        .await
        .expect("read links")
        .into_iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
    }

    /// Rows of `inlinks` and `anchors` that disagree with counting `links` afresh, in
    /// either direction: 0 when the writer's counts are exact.
    pub async fn wrong_link_counts(&self) -> i64 {
        self.scalar(
            "SELECT (SELECT count(*) FROM (
                 SELECT url, linking_pages, links FROM inlinks
                 EXCEPT SELECT target_url, count(DISTINCT source_id), count(*) FROM links
                        GROUP BY target_url))
             + (SELECT count(*) FROM (
                 SELECT target_url, count(DISTINCT source_id), count(*) FROM links
                 GROUP BY target_url
                 EXCEPT SELECT url, linking_pages, links FROM inlinks))
             + (SELECT count(*) FROM (
                 SELECT target_url, anchor_text, links FROM anchors
                 EXCEPT SELECT target_url, anchor_text, count(*) FROM links
                        GROUP BY target_url, anchor_text))
             + (SELECT count(*) FROM (
                 SELECT target_url, anchor_text, count(*) FROM links
                 GROUP BY target_url, anchor_text
                 EXCEPT SELECT target_url, anchor_text, links FROM anchors))",
        )
        .await
    }

    pub async fn scalar(&self, sql: &str) -> i64 {
        self.try_scalar(sql).await.expect("a scalar query")
    }

    /// [`Db::scalar`] for a database a crawl may be making at this moment: the file is
    /// there before its tables are.
    pub async fn try_scalar(&self, sql: &str) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&self.pool)
            .await
    }
}
