//! The results database: schema, leasing frontier rows, and committing pages.
//!
//! SQLite by default: one connection writes (SQLite allows one writer at a time anyway,
//! and a single connection never sees "database is locked"): the [`writer::StoreWriter`]
//! commits pages through it and the dispatcher leases through it. WAL mode lets readers —
//! the query CLI, `sqlite3` — read while a crawl writes. With a `postgres://` URL the same
//! store lives in PostgreSQL, which several nodes can share ([`cluster`]).
//!
//! [`Store`] chooses the backend once, at open; everything else is the generic code of
//! [`db`], with what differs between the two in [`backend`].

mod backend;
mod checkpoints;
pub mod cluster;
mod conn_limit;
mod crawl_lock;
mod db;
mod domain_budget;
mod full_disk;
mod idle_check;
pub(crate) mod link_counts;
mod migrate;
mod outage;
pub mod pg_tls;
mod privilege;
mod runs;
mod script;
mod sqlite_batch;
mod temp_dir;
pub mod writer;

use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio_util::sync::CancellationToken;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{
    ConnectOptions, Connection, Database, PgConnection, Postgres, Sqlite, SqliteConnection,
};
use url::Url;

use crate::error::{sqlite_code_of, DbContext, Error};
use crate::page::{Discovered, ErrorKind, JobKind, PageRecord};
use crate::recrawl::RecrawlPolicy;
use crate::scope::Scope;
use checkpoints::{Checkpoints, ReadersWait};
use cluster::Cluster;
use crawl_lock::CrawlLock;
pub use db::{Cut, FoundLink, Lease, LeaseRows, REQUESTED_PAGES};
use db::{Db, Readmitted, Unqueued};
pub(crate) use full_disk::{
    said_where as said_where_full, sqlite_temp_dir, sqlite_temp_dirs_tried,
};
use link_counts::LinkCounts;
use migrate::{migrate, newer_database, newest_migration};
use outage::outlasting;
pub(crate) use outage::waiting as waiting_for_database;
pub(crate) use outage::{FIRST_WAIT, LONGEST_WAIT, OUTLAST};
pub use runs::{RunEnd, RunStart};

/// SQLite's limit on bound parameters in one statement is 32766 (PostgreSQL's 65535);
/// stay well below.
pub(super) const MAX_BINDS: usize = 30_000;

/// How the URLs a batch discovered join the frontier.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Admission {
    /// A host's URLs beyond this many are stored as trap rows (0: no limit).
    pub max_pages_per_host: u64,
    /// On SQLite new URLs wait in `frontier_staged` until a merge (see
    /// `migrations/sqlite/0006_frontier_staged.sql`); a batch merges them at once when
    /// fewer URLs than this are due in the queue, so that a refill of the frontier
    /// window never comes back short while URLs wait there. The window's size.
    pub queue_floor: usize,
    /// What the revisit intervals of the batch's pages count from: a one-off crawl's
    /// start; None, their store (see the pipeline's `revisits_from`).
    pub revisits_from: Option<std::time::SystemTime>,
}

/// What the commit of a page batch stored.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Committed {
    /// The batch's first `stored` records; on PostgreSQL the others' URLs went to
    /// another node while this one was silent, and their pages are that node's to store.
    pub stored: usize,
    /// Rows of URLs never queued, each with a page row that says why: trap rows, and
    /// rows of URLs robots.txt disallows.
    pub unqueued: Unqueued,
}

/// A host's robots.txt as last fetched.
#[derive(Debug, Clone)]
pub struct RobotsRow {
    pub status: u16,
    pub body: String,
    pub fetched_at: SystemTime,
    pub crawl_delay: Option<Duration>,
}

/// The frontier's URLs still to be crawled, by state, as of one moment: for `/stats`, all
/// 0 when the crawl has nothing left to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueCounts {
    pub queued: i64,
    /// Found, waiting in SQLite's `frontier_staged` to join the queue.
    pub staged: i64,
    /// Taken from the queue by this node, not yet stored.
    pub leased: i64,
}

/// A host's URLs by state, for `/stats`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HostCounts {
    pub host: String,
    pub queued: i64,
    pub done: i64,
    pub failed: i64,
}

#[derive(Clone)]
pub struct Store(Backed);

#[derive(Clone)]
enum Backed {
    Sqlite(Db<Sqlite>),
    Postgres(Db<Postgres>),
}

/// Runs `$body` with `$db` bound to the store's backend, whichever it is, and again while
/// PostgreSQL is out of reach or SQLite's disk is full ([`outage`]), unless asked `once`;
/// asked `brief` (a step of the crawl's own, short), again too when PostgreSQL does not
/// answer it in time.
macro_rules! on_backend {
    (once $store:expr, $db:ident => $body:expr) => {
        match &$store.0 {
            Backed::Sqlite($db) => $body,
            Backed::Postgres($db) => $body,
        }
    };
    (brief $store:expr, $db:ident => $body:expr) => {
        match &$store.0 {
            Backed::Sqlite($db) => outlasting!(full_disk::named(&$db.pool, async { $body })),
            Backed::Postgres($db) => outlasting!(brief async { $body }),
        }
    };
    ($store:expr, $db:ident => $body:expr) => {
        match &$store.0 {
            Backed::Sqlite($db) => outlasting!(full_disk::named(&$db.pool, async { $body })),
            Backed::Postgres($db) => outlasting!(async { $body }),
        }
    };
}

/// Whether `database` names a PostgreSQL database rather than a SQLite file.
pub fn is_postgres(database: &str) -> bool {
    database.starts_with("postgres://") || database.starts_with("postgresql://")
}

/// The connection keywords of libpq (PostgreSQL's client library), which a connection
/// string in its keyword/value form (`host=db dbname=crawl`) starts with.
const LIBPQ_KEYWORDS: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "passfile",
    "require_auth",
    "channel_binding",
    "connect_timeout",
    "client_encoding",
    "options",
    "application_name",
    "fallback_application_name",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "replication",
    "gssencmode",
    "sslmode",
    "requiressl",
    "sslcompression",
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslcertmode",
    "sslrootcert",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "requirepeer",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "krbsrvname",
    "gsslib",
    "gssdelegation",
    "service",
    "target_session_attrs",
    "load_balance_hosts",
];

/// What `storage.database` and `query --db` say of a keyword/value connection string,
/// after naming it (not repeating it: it may hold a password).
pub const KEYWORD_VALUE: &str = "is a PostgreSQL connection string in keyword/value form, \
    which pipecrawl does not read: write it as a URL, \
    postgres://user:password@host:5432/dbname (a Unix socket's directory: \
    postgres:///dbname?host=/run/postgresql)";

/// Whether `database` is a PostgreSQL connection string in libpq's keyword/value form,
/// which sqlx does not read. Taken for a SQLite path, it had a crawl write a new file
/// named after it, password and all.
pub fn is_keyword_value(database: &str) -> bool {
    database
        .trim_start()
        .split_once('=')
        .is_some_and(|(key, _)| LIBPQ_KEYWORDS.contains(&key.trim_end()))
}

/// The SQLite database `database` names: a file's path, or a `sqlite:` URL
/// (`sqlite:///var/crawl.db`, `sqlite://crawl.db`, with SQLite's URI parameters such as
/// `?mode=`). The crawl and the query CLI read the name the same way, so a config that
/// one takes the other does too. Only a URL is read as one: in a path, `%41` and `?` are
/// characters of the file's name, as `sqlite3` and the shell take them (`:memory:` stays
/// sqlx's one database shared by the writer and the readers).
pub fn sqlite_options(database: &str) -> Result<SqliteConnectOptions, sqlx::Error> {
    let options = if database.starts_with("sqlite:") || database == ":memory:" {
        SqliteConnectOptions::from_str(database)?
    } else {
        SqliteConnectOptions::new().filename(database)
    };
    // sqlx opens every file with SQLITE_OPEN_URI, so SQLite read a relative name starting
    // `file:` as a URI: `file:crawl.db` opened `crawl.db`, and `file:x.db?vfs=…&mode=…`
    // (or `sqlite://file:x.db%3Fvfs%3D…`) handed the rest to SQLite as its parameters.
    // `./` before it makes it the file's path. sqlx names its in-memory database so.
    let filename = options.get_filename();
    if filename
        .as_os_str()
        .as_encoded_bytes()
        .starts_with(b"file:")
        && !in_memory(database)
    {
        let path = std::path::Path::new(".").join(filename);
        return Ok(options.filename(path));
    }
    Ok(options)
}

/// Whether `database` is what sqlx makes its in-memory database of: `:memory:`, as a path
/// or in a `sqlite:` URL.
pub(crate) fn in_memory(database: &str) -> bool {
    let rest = database
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    rest.split('?').next() == Some(":memory:")
}

/// How long a PostgreSQL server may take to accept a new connection and log it in, and
/// a step may wait for a connection from the pool.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the store's SQLite connections wait for a lock another holds: the last
/// checkpoint as the store closes at a crawl's end waits this long for another
/// program's reader.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the last checkpoint of a run stopped by a signal waits for another program's
/// reader: a supervisor kills a stop that takes 30 s (systemd's `TimeoutStopSec` in
/// config/pipecrawl.service, Kubernetes' grace period), which the pages in flight may
/// have had 10 s of. The WAL a reader keeps loses nothing.
const STOPPED_READERS_WAIT: Duration = Duration::from_secs(2);

/// Connects to PostgreSQL, giving up once the server has not answered within
/// [`CONNECT_TIMEOUT`]. sqlx waits for ever on an address that takes the connection and
/// never speaks (a firewall dropping packets, a hung server, another service's port),
/// and a node or a query waiting there says nothing and ignores SIGTERM.
pub async fn connect_postgres(options: &PgConnectOptions) -> Result<PgConnection, sqlx::Error> {
    tokio::time::timeout(CONNECT_TIMEOUT, options.connect())
        .await
        .unwrap_or_else(|_| {
            Err(sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "no answer from the server within {} s",
                    CONNECT_TIMEOUT.as_secs()
                ),
            )))
        })
        .map_err(|e| pg_tls::explained(options, e))
}

/// Why a pool found no connection: sqlx's retries one the server refuses as one too many
/// (the role's or the database's `CONNECTION LIMIT`, the server's `max_connections`) for
/// its whole wait, then says only "pool timed out while waiting for an open connection".
/// One more connection, tried at once, says what the server says.
async fn why_no_connection(options: &PgConnectOptions, error: sqlx::Error) -> sqlx::Error {
    if !matches!(error, sqlx::Error::PoolTimedOut) {
        return error;
    }
    match connect_postgres(options).await {
        Ok(spare) => {
            // It was let in: the timeout was the pool's own, and the spare goes at once.
            let _closed = spare.close().await;
            error
        }
        Err(refused) => refused,
    }
}

/// The last migration this build knows of a SQLite database and of a PostgreSQL one, which
/// `pipecrawl --version` names: a database migrated past them needs a build that knows it.
pub fn newest_schemas() -> [(&'static str, i64); 2] {
    [
        (Sqlite::NAME, newest_migration::<Sqlite>()),
        (Postgres::NAME, newest_migration::<Postgres>()),
    ]
}

/// The backend of the database `database` names, and the last of its migrations this
/// build knows: one migrated past it was written by a newer pipecrawl.
pub(crate) fn newest_schema(database: &str) -> (&'static str, i64) {
    newest_schemas()[usize::from(is_postgres(database))]
}

/// A `crawl_state` value that changes when `settings` (a config's part, as `Debug` spells
/// it) do: a run that finds another than the last run's knows they changed.
pub fn fingerprint(settings: &impl std::fmt::Debug) -> i64 {
    let text = format!("{settings:?}");
    i64::from_ne_bytes(xxhash_rust::xxh3::xxh3_64(text.as_bytes()).to_ne_bytes())
}

/// Where the database `database` names is, for a user told where a run stored its pages:
/// a SQLite file's path made absolute (a relative one is the current directory's, and a
/// crawl run from another directory than its user looks in left it there), PostgreSQL's
/// URL without its password.
pub fn located(database: &str) -> String {
    if is_postgres(database) || in_memory(database) {
        return redacted(database);
    }
    sqlite_options(database)
        .ok()
        .and_then(|options| std::path::absolute(options.get_filename()).ok())
        .map_or_else(|| database.to_owned(), |path| path.display().to_string())
}

/// `database` with any password replaced, for messages: the user info's, and a
/// `password` parameter's (libpq's spelling, which sqlx takes as well).
pub fn redacted(database: &str) -> String {
    if !is_postgres(database) {
        return database.to_owned();
    }
    let (address, query) = match database.split_once('?') {
        Some((address, query)) => (address, Some(query)),
        None => (database, None),
    };
    let address = crate::urlnorm::hide_password(address);
    match query {
        Some(query) => {
            let parameters: Vec<String> = query
                .split('&')
                .map(|parameter| {
                    // The name as sqlx reads it, percent-decoded.
                    let name = url::form_urlencoded::parse(parameter.as_bytes()).next();
                    match name {
                        Some((name, _)) if name == "password" => "password=***".to_owned(),
                        _ => parameter.to_owned(),
                    }
                })
                .collect();
            format!("{address}?{}", parameters.join("&"))
        }
        None => address,
    }
}

/// Refuses a database this user may not write, or whose `-wal` or `-shm` beside it they
/// may not. SQLite opens such a file read-only without a word and fails at the first
/// write, after making `-wal` and `-shm` with the file's mode: read-only too, and left
/// behind, so that the run after the file is made writable again failed as well.
fn refuse_read_only(database: &std::path::Path) -> Result<(), Error> {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = database.as_os_str().to_owned();
        name.push(suffix);
        let path = PathBuf::from(name);
        // Opened to write, neither created nor truncated: only asked whether it may be.
        match std::fs::OpenOptions::new().write(true).open(&path) {
            Err(source)
                if matches!(
                    source.kind(),
                    std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
                ) =>
            {
                return Err(Error::DatabaseReadOnly { path, source });
            }
            _ => {}
        }
    }
    Ok(())
}

/// What a SQLite file holds that this pipecrawl must not migrate, if anything.
enum Foreign {
    /// Some tables but no pipecrawl schema: migrating it would add tables to another
    /// program's database (and fail halfway if a name clashes). Another program may
    /// migrate with sqlx too: its `_sqlx_migrations` alone is no pipecrawl schema.
    Tables(String),
    /// A schema migrated past the last migration this build knows: what a newer
    /// pipecrawl wrote, which this one would misread.
    NewerSchema(i64),
}

/// Looks at an existing SQLite file before anything is written to it or beside it, so a
/// file this pipecrawl must not migrate ([`Foreign`]) is left exactly as it was (but for
/// the rollback of a transaction a killed process left open, which any opener makes).
async fn foreign(options: &SqliteConnectOptions) -> Result<Option<Foreign>, sqlx::Error> {
    if !options.get_filename().exists() {
        return Ok(None);
    }
    // Not `options`: their journal mode would be set on connecting, a write.
    let plain = SqliteConnectOptions::new().filename(options.get_filename());
    let mut conn = SqliteConnection::connect_with(&plain.clone().read_only(true)).await?;
    let tables = match tables_of(&mut conn).await {
        // A hot journal: a process killed in a write transaction (a first run killed
        // as it turned the new file to WAL) left it, and only a writer may roll it back,
        // as any opener of the file would. Read-only, every run failed here.
        Err(e) if needs_rollback(&e) => {
            conn.close().await?;
            conn = SqliteConnection::connect_with(&plain).await?;
            tables_of(&mut conn).await?
        }
        read => read?,
    };
    let found = match another_programs(&tables) {
        Some(tables) => Some(Foreign::Tables(tables)),
        None if tables.is_empty() => None,
        None => {
            let applied: Option<i64> =
                sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations")
                    .fetch_one(&mut conn)
                    .await?;
            applied
                .filter(|&v| v > newest_migration::<Sqlite>())
                .map(Foreign::NewerSchema)
        }
    };
    conn.close().await?;
    Ok(found)
}

/// SQLite's "attempt to write a readonly database" of a reader that met a hot journal.
fn needs_rollback(error: &sqlx::Error) -> bool {
    sqlite_code_of(error) == Some(libsqlite3_sys::SQLITE_READONLY_ROLLBACK)
}

/// `error`, opening the database at `database` to write, as the fault of its directory
/// when that is what it is: SQLite cannot make files there. It says "unable to open
/// database file" for a new database, found out here by making the file as SQLite
/// would; for an existing one, "attempt to write a readonly database" (of a file the
/// user may write) when it cannot make the `-wal`.
fn directory_refused(database: &std::path::Path, error: sqlx::Error) -> Result<Error, sqlx::Error> {
    // From the root: "." (a relative name in a container's working directory) named
    // no directory.
    let dir = || {
        let dir = match database.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => std::path::Path::new("."),
        };
        std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned())
    };
    match sqlite_code_of(&error) {
        Some(libsqlite3_sys::SQLITE_READONLY_DIRECTORY) => Ok(Error::DatabaseDirectoryReadOnly {
            dir: dir(),
            source: error.into(),
        }),
        Some(libsqlite3_sys::SQLITE_CANTOPEN) if !database.exists() => {
            match std::fs::File::create_new(database) {
                Err(source)
                    if matches!(
                        source.kind(),
                        std::io::ErrorKind::PermissionDenied
                            | std::io::ErrorKind::ReadOnlyFilesystem
                    ) =>
                {
                    Ok(Error::DatabaseDirectoryReadOnly {
                        dir: dir(),
                        source: source.into(),
                    })
                }
                made => {
                    if made.is_ok() {
                        let _ = std::fs::remove_file(database);
                    }
                    Err(error)
                }
            }
        }
        _ => Err(error),
    }
}

/// The tables of a SQLite database, but SQLite's own.
async fn tables_of(conn: &mut SqliteConnection) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         ORDER BY name",
    )
    .fetch_all(conn)
    .await
}

/// The tables in the crawl's PostgreSQL schema but those an extension made: PostGIS puts
/// `spatial_ref_sys` into every schema it is installed in, public by default, and a
/// database with PostGIS is no other program's. The schema is matched by its name, not
/// cast to `regnamespace`, which would read `Crawl` as an identifier and fold it to
/// `crawl`.
const OWN_TABLES: &str = "
    SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
      AND NOT EXISTS (
          SELECT 1 FROM pg_depend d
          WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
    ORDER BY 1";

/// The tables of a database (SQLite's or PostgreSQL's), listed, when they are some but
/// not pipecrawl's. Another program may migrate with sqlx too: its `_sqlx_migrations`
/// alone is no pipecrawl schema. Migrations make `_sqlx_migrations` before any other
/// table, so a database holding only that is new (a first run stopped before its first
/// migration, or a node migrating it right now).
fn another_programs(tables: &[String]) -> Option<String> {
    let has = |name: &str| tables.iter().any(|t| t == name);
    let ours = tables.iter().all(|t| t == "_sqlx_migrations")
        || (has("_sqlx_migrations") && has("pages") && has("frontier"));
    (!ours).then(|| tables.join(", "))
}

/// `pipecrawl node {node}`, as PostgreSQL will show it. It keeps 63 bytes of an
/// `application_name`, each byte outside printable ASCII written as a 4-byte `\xHH`
/// (PostgreSQL 16): an id longer than that keeps its end, where a generated id's process
/// id and random part tell two nodes apart, as the start (a long host name) may not.
fn node_session_name(node: &str) -> String {
    const KEPT: usize = 63;
    const PREFIX: &str = "pipecrawl node ";
    const CUT: &str = "...";
    let shown = |c: char| {
        if c == ' ' || c.is_ascii_graphic() {
            1
        } else {
            4 * c.len_utf8()
        }
    };
    if PREFIX.len() + node.chars().map(shown).sum::<usize>() <= KEPT {
        return format!("{PREFIX}{node}");
    }
    let mut room = KEPT - PREFIX.len() - CUT.len();
    let mut start = node.len();
    for (at, c) in node.char_indices().rev() {
        let Some(left) = room.checked_sub(shown(c)) else {
            break;
        };
        room = left;
        start = at;
    }
    format!("{PREFIX}{CUT}{}", &node[start..])
}

impl Store {
    /// Opens (creating if needed) the database and brings its schema up to date.
    pub async fn open(database: &str) -> Result<Self, Error> {
        Self::open_as(database, "pipecrawl").await
    }

    /// [`Store::open`] for node `node` of a crawl: on PostgreSQL its sessions are
    /// `pipecrawl node {node}` in `pg_stat_activity`, so that a DBA tells the nodes'
    /// sessions apart (to end one's, or to see whose lock a step waits for).
    pub async fn open_node(database: &str, node: &str) -> Result<Self, Error> {
        Self::open_as(database, &node_session_name(node)).await
    }

    /// [`Store::open`], PostgreSQL's sessions named `application` unless the URL names
    /// them.
    async fn open_as(database: &str, application: &str) -> Result<Self, Error> {
        let failed = |source| Error::OpenDatabase {
            path: PathBuf::from(redacted(database)),
            source,
        };
        if is_postgres(database) {
            // The pool below retries a refused connection for as long as its acquire
            // timeout, minutes, saying nothing: one connection first says at once why
            // the server cannot be reached. It also looks for another program's tables:
            // a database URL copied from an application's config would get the crawl's
            // tables, or fail halfway through the first migration on a name both use.
            // The server's notices are no news for the node's log: sqlx logs each at INFO,
            // and the migrator's `CREATE TABLE IF NOT EXISTS` drew `relation
            // "_sqlx_migrations" already exists, skipping` at every start.
            // A transaction whose node stopped talking (a network cut: the node gave the
            // step up, `outage::brief`, and the server heard of it no more) is ended by
            // the server after as long: it held its rows locked, and the step run again
            // on a new connection waited for them until the node gave up for good.
            // A `statement_timeout` the role or the database sets (a DBA's guard against
            // runaway queries) cancelled the first step that ran past it, a migration or
            // a lease, and the node stopped: its brief steps have their own limit, and
            // the steps over the whole frontier are waited for however long they take.
            // So with a `lock_timeout`: a node starting beside another waits for its
            // migration's lock, and every node for a DBA's `LOCK TABLE` or `VACUUM FULL`.
            let options = pg_tls::connect_options(database).map_err(failed)?.options([
                ("client_min_messages", "warning".to_owned()),
                (
                    "idle_in_transaction_session_timeout",
                    format!("{}s", outage::ANSWER_WITHIN.as_secs()),
                ),
                ("statement_timeout", "0".to_owned()),
                ("lock_timeout", "0".to_owned()),
            ]);
            let options = match options.get_application_name() {
                Some(_) => options,
                None => options.application_name(application),
            };
            let mut first = connect_postgres(&options).await.map_err(failed)?;
            let tables: Vec<String> = sqlx::query_scalar(OWN_TABLES)
                .fetch_all(&mut first)
                .await
                .map_err(failed)?;
            // A server that cannot say (a pooler in front of it) gets the full pool.
            let fewer = conn_limit::fewer(&mut first).await.unwrap_or_else(|e| {
                tracing::debug!("the database's connection limits went unread: {e}");
                None
            });
            first.close().await.map_err(failed)?;
            if let Some(tables) = another_programs(&tables) {
                return Err(Error::NotPipecrawl {
                    path: PathBuf::from(redacted(database)),
                    tables,
                });
            }
            let size = match fewer {
                None => conn_limit::POOL_SIZE,
                Some(fewer) if fewer.room < conn_limit::FEWEST => {
                    return Err(Error::TooFewConnections {
                        path: PathBuf::from(redacted(database)),
                        limit: fewer.to_string(),
                        needs: conn_limit::FEWEST,
                    })
                }
                Some(fewer) => {
                    tracing::warn!(
                        "{fewer}: this node opens {} connections to the database, not {}, \
                         and its steps take turns on them",
                        fewer.room,
                        conn_limit::POOL_SIZE
                    );
                    fewer.room
                }
            };
            let idle = idle_check::IdleCheck::default();
            // The writer, the dispatcher, the lease renewer, robots.txt lookups and the
            // admin API each hold at most one connection at a time (re-admitting stored
            // links two: `conn_limit::FEWEST`), so a pool fitted to the server's limits
            // has them take turns. A step waits for a connection no longer than a new
            // one may take: when the server went away while every connection was idle,
            // the pool's wait is where a step meets the outage, and `store::outage` says
            // so and rides it out.
            // A connection handed back is tried (sqlx sends it a sync and waits for the
            // answer) before it is taken back; one a step gave up on because the network
            // was cut (`outage::brief`) never answers, and held its place in the pool for
            // ever: each cut cost a connection, until the node had none. Tried here first
            // within [`CONNECT_TIMEOUT`], one that does not answer is closed.
            let pool = PgPoolOptions::new()
                .max_connections(size)
                .acquire_timeout(CONNECT_TIMEOUT)
                // sqlx warned of each step that waited over 2 s for a connection ("time to
                // acquire exceeded slow threshold"), once `store::outage` had said why in
                // words a DBA reads: no wait for a connection reaches this threshold.
                .acquire_slow_threshold(CONNECT_TIMEOUT)
                // An idle connection is tried before a step takes it, briefly: after a
                // network cut none answers ([`idle_check`]).
                .test_before_acquire(false)
                .before_acquire(move |connection, meta| {
                    let idle = idle.clone();
                    Box::pin(async move { Ok(idle.answers(connection, meta.idle_for).await) })
                })
                .after_release(|connection, _| {
                    Box::pin(async move {
                        let answer = tokio::time::timeout(CONNECT_TIMEOUT, connection.ping());
                        Ok(matches!(answer.await, Ok(Ok(()))))
                    })
                })
                .connect_with(options.clone())
                .await;
            let pool = match pool {
                Ok(pool) => pool,
                Err(e) => return Err(failed(why_no_connection(&options, e).await)),
            };
            // sqlx takes an advisory lock around migrations: nodes starting together
            // migrate once.
            if let Err(e) = migrate(&pool, database).await {
                return Err(privilege::named(&pool, database, e).await);
            }
            // Nodes keep the counts exact batch by batch, so they are never behind there;
            // asked all the same, for a database a future version leaves marked.
            let mut conn = match pool.acquire().await {
                Ok(conn) => conn,
                Err(e) => return Err(failed(why_no_connection(&options, e).await)),
            };
            link_counts::rebuild_if_behind::<Postgres>(&mut conn).await?;
            drop(conn);
            return Ok(Self(Backed::Postgres(Db {
                readers: pool.clone(),
                pool,
                checkpoints: None,
                crawl_lock: None,
                clock: SystemTime::now,
            })));
        }
        let options = sqlite_options(database)
            .map_err(failed)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            // 4 MiB holds the indexes' upper levels (those of a 1.2 M-URL frontier take
            // under 1 MiB); the leaves the writer touches come back from the OS's cache
            // for a read() each. In the benchmark's crawls 16 and 64 MiB ran no faster
            // and added their size to the peak memory, a fifth of it at 16 MiB. The
            // index build's sorter also spills at this size.
            .pragma("cache_size", "-4096")
            // A multi-row insert inside a transaction keeps a statement journal (to undo
            // just that statement); in a file that cost a tenth of the writer's time in
            // write() calls. It lives as long as one statement, so memory is the place.
            .pragma("temp_store", "memory")
            // The writer's own checkpoints are the backstop: `checkpoints` copies the
            // WAL into the database beside it.
            .pragma(
                "wal_autocheckpoint",
                checkpoints::WRITER_CHECKPOINT_PAGES.to_string(),
            )
            // SQLite reuses a WAL's file as it starts over rather than shrink it: a
            // service's WAL stayed at its peak for as long as it ran.
            .pragma("journal_size_limit", WAL_KEPT_BYTES.to_string())
            .busy_timeout(BUSY_TIMEOUT);
        // SQLite opens a directory and fails at the first read with "disk I/O error".
        if options.get_filename().is_dir() {
            return Err(Error::DatabaseIsDirectory {
                path: options.get_filename().to_owned(),
            });
        }
        // SQLite creates the file but not its directory, and says only "unable to open
        // database file"; `export --out` makes its directory too.
        if let Some(dir) = options
            .get_filename()
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).map_err(|source| Error::DatabaseDirectory {
                dir: dir.to_owned(),
                source,
            })?;
        }
        refuse_read_only(options.get_filename())?;
        let refused = |e| directory_refused(options.get_filename(), e).unwrap_or_else(failed);
        match foreign(&options).await.map_err(refused)? {
            Some(Foreign::Tables(tables)) => {
                return Err(Error::NotPipecrawl {
                    path: PathBuf::from(database),
                    tables,
                })
            }
            Some(Foreign::NewerSchema(version)) => {
                return Err(newer_database::<Sqlite>(database, version))
            }
            None => {}
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            // The pool's check before each acquire is a round trip to sqlx's SQLite
            // thread, on every batch and lease; a file opened in this process does not
            // go away as a server connection can.
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(600))
            .connect_with(options.clone())
            .await
            .map_err(refused)?;
        // Taken once the file exists: an in-memory database has none, nor a second user.
        let crawl_lock = if options.get_filename().is_file() {
            Some(Arc::new(CrawlLock::take(options.get_filename())?))
        } else {
            None
        };
        // Counts a crash left behind are rebuilt once the run knows whether it keeps them
        // ([`Store::defer_derived`], [`Store::build_derived`]): a crawl leaving them to its
        // end counted them twice.
        migrate(&pool, database).await?;
        let checkpoints = Checkpoints::start(&options).await.map_err(failed)?;
        temp_dir::beside_database_when_none(&pool, options.get_filename()).await?;
        // Questions over the whole frontier (/stats groups it by host) build temporary
        // b-trees and sorts as large as their answers before the LIMIT: in a file, they
        // take SQLite's page cache of memory, not some 135 bytes per host.
        let readers = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(options.read_only(true).pragma("temp_store", "file"))
            .await
            .map_err(failed)?;
        Ok(Self(Backed::Sqlite(Db {
            pool,
            readers,
            checkpoints: Some(Arc::new(checkpoints)),
            crawl_lock,
            clock: SystemTime::now,
        })))
    }

    /// The `crawl_state` key of `name` for this node: on SQLite, the one process's; nodes
    /// sharing PostgreSQL keep theirs apart by `cluster.node_id` (`name:node`, which only
    /// a config keeps the same from one start to the next).
    pub fn node_key(&self, name: &str, node: &str) -> String {
        match self.0 {
            Backed::Sqlite(_) => name.to_owned(),
            Backed::Postgres(_) => format!("{name}:{node}"),
        }
    }

    /// The store of a node whose wall clock is `clock` ([`Store::open`]'s is
    /// `SystemTime::now`): what a node whose clock is off from the others' does to them
    /// is seen through it.
    pub fn with_clock(mut self, clock: fn() -> SystemTime) -> Self {
        match &mut self.0 {
            Backed::Sqlite(db) => db.clock = clock,
            Backed::Postgres(db) => db.clock = clock,
        }
        self
    }

    /// The host leases of a database shared by several nodes; `None` on SQLite.
    pub fn cluster(&self) -> Option<Cluster> {
        match &self.0 {
            Backed::Sqlite(_) => None,
            Backed::Postgres(db) => Some(Cluster::new(db.pool.clone(), db.clock)),
        }
    }

    /// Closes the connections and waits until they are closed: on SQLite the last one to
    /// close checkpoints the WAL into the database file, which should be complete and
    /// quiet once a crawl has returned, not some moments later. An error when it could
    /// not (a full disk): the WAL stays beside the database with the last commits.
    ///
    /// On PostgreSQL it waits for the connections still being handed back no longer than
    /// their test takes ([`CONNECT_TIMEOUT`], `Store::open`). sqlx pings each after that
    /// test, with no deadline, and its pool's close waits for every connection: one the
    /// network cut between the two never came back, and the node, its crawl done and
    /// stored, waited for it in silence for ever. Nothing is left to write by then; the
    /// connection goes with the process.
    pub async fn close(&self) -> Result<(), Error> {
        self.close_waiting(ReadersWait::at_most(BUSY_TIMEOUT)).await
    }

    /// As [`Store::close`], for a run a signal may stop, whose supervisor times the stop:
    /// once `stopping` fires (before the close, or during its wait), another program's
    /// reader is waited for [`STOPPED_READERS_WAIT`] more at most.
    pub async fn close_stoppable(&self, stopping: &CancellationToken) -> Result<(), Error> {
        self.close_waiting(ReadersWait {
            longest: BUSY_TIMEOUT,
            stopping: Some((stopping.clone(), STOPPED_READERS_WAIT)),
        })
        .await
    }

    async fn close_waiting(&self, readers_wait: ReadersWait) -> Result<(), Error> {
        match &self.0 {
            Backed::Sqlite(db) => db.close(readers_wait).await,
            Backed::Postgres(db) => {
                let closed = tokio::time::timeout(CONNECT_TIMEOUT, db.close(readers_wait)).await;
                closed.unwrap_or_else(|_| {
                    tracing::warn!(
                        "a connection to the database did not answer within {} s as the node \
                         closed it (the network to the server was cut?): left unclosed",
                        CONNECT_TIMEOUT.as_secs()
                    );
                    Ok(())
                })
            }
        }
    }

    /// Before a one-off crawl: when the crawl ahead is large, drops indexes cheaper to
    /// build once at the end (see [`backend::Backend::DEFERRED_INDEXES`]) and leaves `inlinks`
    /// and `anchors` to be rebuilt then (the writer is to use [`LinkCounts::deferred`]).
    /// Returns whether it did.
    pub async fn defer_derived(&self) -> Result<bool, Error> {
        on_backend!(self, db => db.defer_derived().await)
    }

    /// Builds what [`Store::defer_derived`] left out, at a crawl's end.
    pub async fn build_derived(&self) -> Result<(), Error> {
        on_backend!(self, db => db.build_derived().await.map(drop))
    }

    /// Builds what a crawl killed before its end left out, as a service starts.
    pub async fn catch_up_derived(&self) -> Result<(), Error> {
        on_backend!(self, db => db.catch_up_derived().await)
    }

    /// URLs waiting to be fetched (retries included), those staged
    /// ([`Store::staged_count`]) and those leased to `owner`, for the admin API, all as of
    /// one moment: asked once, so that while the database is out of reach `/stats` says
    /// so at once, rather than holding its request, and one of the API's few connections,
    /// through the outage.
    pub async fn queue_counts(&self, owner: &str) -> Result<QueueCounts, Error> {
        on_backend!(once self, db => db.queue_counts(owner).await)
    }

    /// URLs found and not yet in the frontier: on SQLite they wait in `frontier_staged`
    /// until the queue needs them (a URL may be there more than once, or be known
    /// already).
    pub async fn staged_count(&self) -> Result<i64, Error> {
        on_backend!(self, db => db.staged_count().await)
    }

    /// The `limit` hosts with the most known URLs, by state: asked once, as
    /// [`Store::queue_counts`].
    pub async fn host_counts(&self, limit: i64) -> Result<Vec<HostCounts>, Error> {
        on_backend!(once self, db => db.host_counts(limit).await)
    }

    /// `seeds` and where the stored seeds redirected: whose hosts are in scope when the
    /// config names none. Only the seeds are trusted.
    pub async fn in_scope(&self, mut seeds: Vec<Url>) -> Result<Vec<Url>, Error> {
        seeds.extend(self.seed_redirects().await?);
        Ok(seeds)
    }

    /// The seeds stored (a seed of each host and scheme) and where they redirected:
    /// whose hosts a reload or a node finding a host its scope lacks takes into scope.
    pub async fn seeds_in_scope(&self) -> Result<Vec<Url>, Error> {
        self.in_scope(self.seeds_by_host().await?).await
    }

    /// Where seeds redirected to, one URL a host, whose hosts are in scope as the
    /// seeds' are.
    pub async fn seed_redirects(&self) -> Result<Vec<Url>, Error> {
        on_backend!(self, db => db.seed_redirects().await)
    }

    /// A seed of each host and scheme given so far (by config or over the API): frontier
    /// rows no page led to.
    pub async fn seeds_by_host(&self) -> Result<Vec<Url>, Error> {
        on_backend!(self, db => db.seeds_by_host().await)
    }

    /// Puts rows leased by a process that is gone back in the queue: on SQLite all of
    /// them, on PostgreSQL those of `owner` (the others' go when it joins the cluster).
    pub async fn recover_leases(&self, owner: &str) -> Result<u64, Error> {
        on_backend!(brief self, db => db.recover_leases(owner).await)
    }

    /// Adds URLs to the frontier; those already known are left as they are. Returns how
    /// many were new: a URL known already, or given twice, is not queued again.
    pub async fn enqueue(&self, urls: &[Discovered]) -> Result<u64, Error> {
        on_backend!(self, db => db.enqueue(urls).await)
    }

    /// [`Store::enqueue`] asked once, for the admin API's `POST /seeds`, as
    /// [`Store::queue_counts`]: while the database is out of reach its client is told so
    /// within seconds, nothing stored, rather than waiting with the crawl through the
    /// outage (up to ten minutes) and holding one of the API's few connections. The
    /// seeds name their hosts, as a start's do: the URLs of those an earlier run cut at
    /// their domain's limit are queued again, within `max_pages_per_host`, and a seed
    /// among them counts as new.
    pub async fn enqueue_seeds_once(
        &self,
        urls: &[Discovered],
        max_pages_per_host: u64,
    ) -> Result<u64, Error> {
        on_backend!(once self, db => db.enqueue_seeds(urls, max_pages_per_host).await)
    }

    /// The depths the rows `leased_at` (id → depth leased at), found nearer the seeds
    /// while leased, have moved up to (see `Db::nearer_depths`), by frontier id. On SQLite
    /// only: on PostgreSQL a leased row is left as it is, being another node's to finish,
    /// and the depth it was found at is noted beside it for the commit that stores its
    /// page (`Db::hold_leases`).
    pub(crate) async fn nearer_depths(
        &self,
        leased_at: &HashMap<i64, u32>,
    ) -> Result<HashMap<i64, u32>, Error> {
        match &self.0 {
            Backed::Sqlite(db) => db.nearer_depths(leased_at).await,
            Backed::Postgres(_) => Ok(HashMap::new()),
        }
    }

    /// Which of `urls` the frontier holds, spelt as given.
    pub async fn known_urls(&self, urls: &[&str]) -> Result<Vec<String>, Error> {
        on_backend!(self, db => db.known_urls(urls).await)
    }

    /// Pages stored so far (a resumed crawl counts them against `max_pages`).
    pub async fn page_count(&self) -> Result<u64, Error> {
        on_backend!(self, db => db.page_count().await)
    }

    /// Every page row (`Db::page_rows`), as `query stats` counts them.
    pub async fn page_rows(&self) -> Result<u64, Error> {
        on_backend!(self, db => db.page_rows().await)
    }

    /// Leases up to `limit` queued rows (on PostgreSQL, of hosts `owner` owns), best
    /// priority first; on PostgreSQL no more than `max_pages` less what every node has
    /// stored and holds leased.
    pub async fn lease(
        &self,
        owner: &str,
        limit: usize,
        lease_for: Duration,
        limits: (Option<u64>, LeaseRows),
    ) -> Result<Lease, Error> {
        on_backend!(brief self, db => db.lease(owner, limit, lease_for, limits).await)
    }

    /// Schedules a revisit, by `policy`, of visited pages that have none: a database
    /// crawled before a `[recrawl]` was configured, or under another. Returns how many
    /// were scheduled. A page fetched by a one-off crawl that started at
    /// `last_run_started` counts its interval from that start, as that run would have
    /// (see the pipeline's `revisits_from`); any other from its fetch.
    pub async fn schedule_unscheduled_recrawls(
        &self,
        policy: &RecrawlPolicy,
        last_run_started: Option<SystemTime>,
    ) -> Result<u64, Error> {
        on_backend!(self, db => db.schedule_unscheduled_recrawls(policy, last_run_started).await)
    }

    /// Puts URLs whose last outcome was a failure for now (what a retry would have asked
    /// again, a failed revisit too) back in the queue with their attempts renewed.
    pub async fn requeue_failures(&self) -> Result<u64, Error> {
        on_backend!(self, db => db.requeue_failures().await)
    }

    /// Brings back retries and revisits due further off than any rule asks, which a
    /// clock that moved left, and says so.
    pub async fn bring_back_far_times(
        &self,
        now: SystemTime,
        longest_retry: Duration,
    ) -> Result<u64, Error> {
        let far = on_backend!(self, db => db.bring_back_far_times(now, longest_retry).await)?;
        if far > 0 {
            tracing::warn!(
                far,
                "URLs were due further off than the config asks (a clock that was fast, \
                 or stepped back): they are due within their backoff or revisit interval"
            );
        }
        Ok(far)
    }

    /// Puts finished URLs whose revisit is due back in the queue; `early`, a one-off
    /// crawl's start, those due within a tenth of their interval too.
    pub async fn requeue_due_recrawls(&self, early: bool) -> Result<u64, Error> {
        on_backend!(self, db => db.requeue_due_recrawls(early).await)
    }

    /// How long until the next revisit is due.
    pub async fn next_recrawl(&self) -> Result<Option<Duration>, Error> {
        on_backend!(self, db => db.next_recrawl().await)
    }

    /// How long until the earliest queued row of `rows` that is waiting (a retry) comes
    /// due.
    pub async fn next_due(&self, rows: LeaseRows) -> Result<Option<Duration>, Error> {
        on_backend!(brief self, db => db.next_due(rows).await)
    }

    pub async fn load_robots(&self, host: &str) -> Result<Option<RobotsRow>, Error> {
        on_backend!(brief self, db => db.load_robots(host).await)
    }

    pub async fn save_robots(&self, host: &str, robots: &RobotsRow) -> Result<(), Error> {
        on_backend!(brief self, db => db.save_robots(host, robots).await)
    }

    /// The hosts of rows still leased, with their Crawl-delay: on SQLite, before
    /// [`Store::recover_leases`], the hosts a killed run had URLs out to.
    pub async fn leased_hosts(&self) -> Result<Vec<(String, Option<Duration>)>, Error> {
        on_backend!(brief self, db => db.leased_hosts().await)
    }

    /// Leaves for the next run when each of `turns`' hosts may next be sent a request: a
    /// crawl stopped and started again within a host's delay is still one visitor to it.
    pub async fn save_host_turns(&self, turns: &[(String, SystemTime)]) -> Result<(), Error> {
        on_backend!(brief self, db => db.save_host_turns(turns).await)
    }

    /// The hosts the last run left waiting past `left` (the clock as it left them), and
    /// until when: `now` plus what was left of each wait then, `longest` at the most.
    pub async fn host_turns(
        &self,
        now: SystemTime,
        left: SystemTime,
        longest: Duration,
    ) -> Result<Vec<(String, SystemTime)>, Error> {
        on_backend!(brief self, db => db.host_turns(now, left, longest).await)
    }

    /// Moves the queued rows due after `now` (retries and other waits) and the revisits
    /// due after it back by `step`, the clock's step back since the last run set them.
    pub async fn undo_clock_step(&self, now: SystemTime, step: Duration) -> Result<u64, Error> {
        on_backend!(brief self, db => db.undo_clock_step(now, step).await)
    }

    /// When the run before this one ended, by the clock it ran on; `None` when it
    /// recorded no end.
    pub async fn previous_run_end(&self) -> Result<Option<SystemTime>, Error> {
        on_backend!(brief self, db => db.previous_run_end().await)
    }

    /// Hands rows `owner` holds leased back to the queue untouched (shutdown, a page
    /// budget reached, a host handed to another node).
    pub async fn release(&self, owner: &str, ids: &[i64]) -> Result<(), Error> {
        on_backend!(brief self, db => db.release(owner, ids).await)
    }

    /// Drops the revisits scheduled, to be scheduled again by another `[recrawl]`.
    pub async fn unschedule_recrawls(&self) -> Result<u64, Error> {
        on_backend!(self, db => db.unschedule_recrawls().await)
    }

    /// Records a run's start in `runs`: its id, to end it with.
    pub async fn begin_run(&self, start: &RunStart<'_>) -> Result<i64, Error> {
        let at = rfc3339(SystemTime::now());
        let ttl_ms = u64::try_from(start.config.cluster.lease_ttl.as_millis()).unwrap_or(u64::MAX);
        on_backend!(brief self, db => db.begin_run(start, &at, ttl_ms).await)
    }

    /// Records how run `id` ended, and the pages it stored.
    pub async fn end_run(&self, id: i64, end: (RunEnd, Option<i64>)) -> Result<(), Error> {
        let at = rfc3339(SystemTime::now());
        on_backend!(brief self, db => db.end_run(id, end, &at).await)
    }

    /// A value the crawl keeps between runs, if set.
    pub async fn crawl_state(&self, key: &str) -> Result<Option<i64>, Error> {
        on_backend!(brief self, db => db.crawl_state(key).await)
    }

    /// Holds the hosts new to the crawl, from now on, to `max_hosts_per_domain` host
    /// names of one registrable domain (0: no limit), on every path that adds URLs.
    pub async fn limit_hosts_per_domain(&self, max_hosts_per_domain: u64) -> Result<(), Error> {
        let limit = i64::try_from(max_hosts_per_domain).unwrap_or(i64::MAX);
        self.set_crawl_state(domain_budget::LIMIT, limit).await
    }

    /// Admits `hosts` (the names `scope.hosts` writes without a wildcard, the seeds'
    /// hosts) uncounted: never over `traps.max_hosts_per_domain`. Those an earlier run
    /// cut at their domain's limit have their URLs queued again, within
    /// `max_pages_per_host`: the user has named them. Says how many URLs are queued. In
    /// one transaction ([`Db::name_hosts`]): a try stopped part way, by a kill or an
    /// outage, leaves the names to the next.
    pub async fn admit_named_hosts(
        &self,
        hosts: &[String],
        max_pages_per_host: u64,
    ) -> Result<u64, Error> {
        let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
        on_backend!(self, db => {
            let (_, requeued) = db.name_hosts(&hosts, &[], max_pages_per_host).await?;
            Ok(u64::try_from(requeued.len()).unwrap_or(u64::MAX))
        })
    }

    pub async fn set_crawl_state(&self, key: &str, value: i64) -> Result<(), Error> {
        on_backend!(brief self, db => db.set_crawl_state(key, value).await)
    }

    /// As [`Store::set_crawl_state`], asked once, for the admin API: while the database
    /// is out of reach its client is told so within seconds, as [`Store::queue_counts`]'s
    /// is, rather than waiting through the outage on one of the API's few connections.
    /// Not answered within [`outage::ANSWER_WITHIN`] (a lock a DBA holds: PostgreSQL's
    /// sessions wait for one as long as it is held), it is given up as a crawl step is.
    pub async fn set_crawl_state_once(&self, key: &str, value: i64) -> Result<(), Error> {
        on_backend!(once self, db => outage::brief(db.set_crawl_state(key, value)).await)
    }

    pub async fn clear_crawl_state(&self, key: &str) -> Result<(), Error> {
        on_backend!(brief self, db => db.clear_crawl_state(key).await)
    }

    /// Whether a page fetched at `since` or later got an answer from its server: a
    /// status, or an error other than `unreached`'s.
    pub async fn answered_since(
        &self,
        since: SystemTime,
        unreached: &[ErrorKind],
    ) -> Result<bool, Error> {
        on_backend!(self, db => db.answered_since(since, unreached).await)
    }

    /// Queues again, within both limits, the URLs of the host names an earlier run cut
    /// at a lower `traps.max_hosts_per_domain`.
    pub async fn requeue_within_domains(
        &self,
        max_hosts_per_domain: u64,
        max_pages_per_host: u64,
    ) -> Result<u64, Error> {
        on_backend!(self, db => db.requeue_within_domains(max_hosts_per_domain, max_pages_per_host).await)
    }

    /// Queues again what an earlier run cut at a lower `traps.max_pages_per_host`.
    pub async fn requeue_within_budgets(&self, max_pages_per_host: u64) -> Result<u64, Error> {
        on_backend!(self, db => db.requeue_within_budgets(max_pages_per_host).await)
    }

    /// Queues again what earlier runs stored as refused by the address guard, for a run
    /// whose `network.allow` differs.
    pub async fn requeue_refused_addresses(&self) -> Result<u64, Error> {
        on_backend!(self, db => db.requeue_refused_addresses().await)
    }

    /// Queues again what earlier runs stored as disallowed by robots.txt, for a run that
    /// no longer obeys it.
    pub async fn requeue_disallowed(&self, max_pages_per_host: u64) -> Result<u64, Error> {
        on_backend!(self, db => db.requeue_disallowed(max_pages_per_host).await)
    }

    /// Cuts what hosts have queued to a `traps.max_pages_per_host` lower than an earlier
    /// run's.
    pub async fn trap_over_budgets(&self, max_pages_per_host: u64) -> Result<u64, Error> {
        on_backend!(self, db => db.trap_over_budgets(max_pages_per_host).await)
    }

    /// Sets every row's priority to what `priority` makes of its URL and depth (the
    /// boost rules changed); returns how many rows changed.
    pub async fn reprioritize(
        &self,
        mut priority: impl FnMut(&Url, u32) -> i64,
    ) -> Result<u64, Error> {
        on_backend!(self, db => db.reprioritize(&mut priority).await)
    }

    /// Queues again the `which` URLs (a narrower scope left out, or traps cut by their
    /// shape) that `keep` now takes, within their hosts' budgets: (queued, trap rows
    /// stored).
    pub async fn requeue_left_out(
        &self,
        which: Cut,
        mut keep: impl FnMut(&Url, u32, JobKind) -> bool,
        max_pages_per_host: u64,
    ) -> Result<(u64, u64), Error> {
        on_backend!(self, db => db.requeue_left_out(which, &mut keep, max_pages_per_host).await)
    }

    /// Adds the targets of stored links the frontier does not know that `admit` takes:
    /// (links read, URLs added, of those the trap rows). `admit` is asked once a link:
    /// what it took is kept across the tries of an outage.
    pub async fn readmit_links(
        &self,
        to_hosts: Option<&[String]>,
        mut admit: impl FnMut(FoundLink<'_>) -> Option<Discovered>,
        max_pages_per_host: u64,
    ) -> Result<(u64, u64, u64), Error> {
        let mut done = Readmitted::default();
        on_backend!(self, db => {
            db.readmit_links(to_hosts, &mut admit, max_pages_per_host, &mut done).await
        })?;
        Ok((done.read, done.added, done.trapped))
    }

    /// Fails rows `owner` holds leased whose URLs the scope, narrowed since they were
    /// queued, now leaves out: they are never fetched.
    pub async fn drop_out_of_scope(&self, owner: &str, ids: &[i64]) -> Result<(), Error> {
        on_backend!(brief self, db => db.drop_out_of_scope(owner, ids).await)
    }

    /// Finishes rows `owner` holds leased for revisits the config no longer makes: they
    /// are not fetched, and stay as their last visit left them.
    pub async fn drop_revisits(&self, owner: &str, ids: &[i64]) -> Result<(), Error> {
        on_backend!(brief self, db => db.drop_revisits(owner, ids).await)
    }

    /// Commits a batch of pages: rows, links, discovered URLs and frontier states together.
    /// Link counts change in `counts` and reach the database when due (on PostgreSQL with
    /// the batch, so `counts` stays empty there). A batch PostgreSQL aborted to break a
    /// deadlock with another node's is tried again, as every step is (see `outage`): it
    /// was rolled back whole, link counts included, so nothing of it is stored twice.
    ///
    /// Discovered URLs join the frontier as `admission` says; a redirect found to close a
    /// loop gets its error here, as stored. On PostgreSQL, records whose rows `owner` no
    /// longer holds leased (another node took them while it was silent) are not stored,
    /// and a page whose URL a node found nearer the seeds while it was leased moves there
    /// as `scope` says (see `Db::hold_leases`); on SQLite the writer has moved it.
    ///
    /// A batch the database refuses for what it holds ([`Error::is_refusal`]) is stored
    /// without the records it refuses, each of which becomes a failed fetch that says so
    /// ([`Store::commit_apart`]): otherwise one page's value stopped the crawl, and every
    /// crawl after it (and on PostgreSQL every node that took its host over) fetched it
    /// again and stopped there too.
    ///
    /// A batch SQLite found no room for is stored the same way once there is room
    /// ([`outage`]): rolled back, it took with it the link counts it applied, and the
    /// writer's counts had counted it. Lest the WAL be what fills the disk, it is kept
    /// within the room left there ([`Checkpoints::keep_within_room`]).
    ///
    /// A SQLite database replaced under the run (a backup put in its place) stops it
    /// before the batch goes to the file that is gone ([`CrawlLock::database_still_there`]).
    pub(crate) async fn commit(
        &self,
        batch: &mut [PageRecord],
        counts: &mut LinkCounts,
        admission: Admission,
        (owner, scope): (&str, &Scope),
    ) -> Result<Committed, Error> {
        if let Backed::Sqlite(Db {
            crawl_lock: Some(lock),
            ..
        }) = &self.0
        {
            lock.database_still_there()?;
        }
        let holder = (owner, scope);
        let (mut committed, merge) = match self.commit_once(batch, counts, admission, holder).await
        {
            Err(refusal) if refusal.is_refusal() => {
                self.commit_apart(batch, counts, admission, holder, Some(refusal))
                    .await?
            }
            Err(full) if full.is_disk_full() => {
                self.commit_apart(batch, counts, admission, holder, None)
                    .await?
            }
            done => done?,
        };
        if let Backed::Sqlite(db) = &self.0 {
            if merge {
                committed.unqueued.trapped +=
                    self.merge_staged(admission.max_pages_per_host).await?;
            }
            if let Some(checkpoints) = &db.checkpoints {
                checkpoints.keep_within_room(&db.pool).await;
            }
        }
        Ok(committed)
    }

    /// One transaction of [`Store::commit`], tried once on SQLite; on SQLite, says whether
    /// the staged URLs are due a merge.
    async fn commit_once(
        &self,
        batch: &mut [PageRecord],
        counts: &mut LinkCounts,
        admission: Admission,
        (owner, scope): (&str, &Scope),
    ) -> Result<(Committed, bool), Error> {
        match &self.0 {
            Backed::Sqlite(db) => {
                full_disk::named(&db.pool, db.commit_local(batch, counts, admission)).await
            }
            Backed::Postgres(db) => outlasting!(brief db.commit(
                batch,
                &mut LinkCounts::new(),
                admission,
                owner,
                scope
            ))
            .map(|committed| (committed, false)),
        }
    }

    /// Commits a batch the database refused (with `refused`, or to be tried whole again
    /// when none) in halves, and those halves in halves while it refuses them, until each
    /// record it refuses is alone: that one is stored as a failed fetch saying why
    /// ([`PageRecord::refused_by_database`]), with the URLs it found, else without them;
    /// refused even so, the crawl stops. A batch of `n` with one such record takes about
    /// 2·log₂ `n` transactions; a batch the database takes, the usual one. Each waits
    /// while SQLite's disk is full ([`Store::commit_waiting`]).
    ///
    /// On SQLite the writer's link counts had counted the batch, or applied in the
    /// transaction rolled back what earlier batches counted: they are counted afresh from
    /// `links` once the parts are stored, unless the crawl counts them at its end anyway.
    /// Until then the database says they are behind, as after a crash.
    async fn commit_apart(
        &self,
        batch: &mut [PageRecord],
        counts: &mut LinkCounts,
        admission: Admission,
        holder: (&str, &Scope),
        refused: Option<Error>,
    ) -> Result<(Committed, bool), Error> {
        let recount = match &self.0 {
            Backed::Sqlite(db) if !counts.is_deferred() => {
                mark_counts_behind(db).await?;
                Some(db)
            }
            _ => None,
        };
        let mut uncounted = LinkCounts::deferred();
        let mut stored = vec![false; batch.len()];
        let (mut unqueued, mut merge) = (Unqueued::default(), false);
        let mut parts = vec![(0..batch.len(), refused)];
        while let Some((part, refused)) = parts.pop() {
            let outcome = match refused {
                Some(refusal) => Err(refusal),
                None => {
                    let records = &mut batch[part.clone()];
                    self.commit_waiting(records, &mut uncounted, admission, holder)
                        .await
                }
            };
            let (committed, due) = match outcome {
                Err(refusal) if refusal.is_refusal() && part.len() > 1 => {
                    let half = part.start + part.len() / 2;
                    parts.push((half..part.end, None));
                    parts.push((part.start..half, None));
                    continue;
                }
                Err(refusal) if refusal.is_refusal() => {
                    let page = &mut batch[part.start];
                    tracing::warn!(
                        url = %page.job.url,
                        "the database refused to store the page: {refusal}; it is stored as a \
                         failed fetch"
                    );
                    page.refused_by_database(refusal.to_string());
                    let records = &mut batch[part.clone()];
                    match self
                        .commit_once(records, &mut uncounted, admission, holder)
                        .await
                    {
                        // A URL it found is what the database refuses: the page goes
                        // without them, and they stay in the seen cache, so pages linking
                        // to one do not bring it to the database again.
                        Err(again) if again.is_refusal() && !records[0].discovered.is_empty() => {
                            records[0].discovered.clear();
                            self.commit_waiting(records, &mut uncounted, admission, holder)
                                .await?
                        }
                        outcome => outcome?,
                    }
                }
                outcome => outcome?,
            };
            stored[part.start..part.start + committed.stored].fill(true);
            unqueued += committed.unqueued;
            merge |= due;
        }
        // Those stored first, as `Committed::stored` says.
        let mut kept = 0;
        for (i, _) in stored.iter().enumerate().filter(|(_, stored)| **stored) {
            batch.swap(kept, i);
            kept += 1;
        }
        if let Some(db) = recount {
            count_afresh(db, counts).await?;
        }
        let committed = Committed {
            stored: kept,
            unqueued,
        };
        Ok((committed, merge))
    }

    /// [`Store::commit_once`], on SQLite again while the disk is full: a batch whose link
    /// counts are left to a recount, which a try rolled back whole.
    async fn commit_waiting(
        &self,
        batch: &mut [PageRecord],
        counts: &mut LinkCounts,
        admission: Admission,
        holder: (&str, &Scope),
    ) -> Result<(Committed, bool), Error> {
        match &self.0 {
            Backed::Sqlite(_) => outlasting!(self.commit_once(batch, counts, admission, holder)),
            Backed::Postgres(_) => self.commit_once(batch, counts, admission, holder).await,
        }
    }

    /// Merges the URLs waiting in SQLite's `frontier_staged` into the frontier: when a
    /// crawl starts (one that was killed may have left some) and when it ends, so that the
    /// table it leaves holds every URL it found. Nothing to do on PostgreSQL. Returns the
    /// trap rows stored (URLs over their hosts' budgets).
    pub async fn merge_staged(&self, max_pages_per_host: u64) -> Result<u64, Error> {
        on_backend!(self, db => db.merge_staged(max_pages_per_host).await)
    }

    /// Applies link count changes still waiting: when the crawl is idle or ending. On
    /// SQLite a full disk rolls back the changes it took out of `counts`: they are
    /// counted afresh from `links` once there is room.
    pub(crate) async fn flush_link_counts(&self, counts: &mut LinkCounts) -> Result<(), Error> {
        match &self.0 {
            Backed::Sqlite(db) => {
                match full_disk::named(&db.pool, db.flush_link_counts(counts)).await {
                    Err(full) if full.is_disk_full() => {
                        mark_counts_behind(db).await?;
                        count_afresh(db, counts).await
                    }
                    flushed => flushed,
                }
            }
            Backed::Postgres(db) => outlasting!(brief db.flush_link_counts(counts)),
        }
    }
}

/// The size a WAL that grew past it is cut back to once folded into the database and
/// started over (`journal_size_limit`).
const WAL_KEPT_BYTES: u64 = 32 << 20;

/// Says in the database that its in-link and anchor counts are behind `links`, so that
/// they are counted afresh ([`count_afresh`], or the next start after a crash), waiting
/// while the disk is full.
async fn mark_counts_behind(db: &Db<Sqlite>) -> Result<(), Error> {
    outlasting!(full_disk::named(
        &db.pool,
        link_counts::mark_behind(&db.pool)
    ))
}

/// Counts in-links and anchor texts afresh from `links`, the database marked behind,
/// waiting while the disk is full; `counts`, whose changes that covers, start over.
async fn count_afresh(db: &Db<Sqlite>, counts: &mut LinkCounts) -> Result<(), Error> {
    outlasting!(full_disk::named(&db.pool, async {
        let mut conn = db.pool.acquire().await.doing("counting links afresh")?;
        link_counts::rebuild_if_behind::<Sqlite>(&mut conn).await
    }))?;
    *counts = LinkCounts::new();
    Ok(())
}

pub(crate) fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The time `unix_ms` gave `ms` for (a time before 1970 as 1970).
pub(crate) fn from_unix_ms(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

#[cfg(test)]
impl Store {
    /// The store of a database on a disk with `room` bytes left whatever is written.
    pub(crate) fn with_room(mut self, room: fn(&std::path::Path) -> Option<u64>) -> Self {
        let Backed::Sqlite(db) = &mut self.0 else {
            panic!("the test's store is on SQLite");
        };
        let checkpoints = db.checkpoints.as_mut().and_then(Arc::get_mut);
        checkpoints.expect("a store just opened").room = room;
        self
    }

    /// The one connection SQLite's store writes on, held until dropped: the store's writes
    /// wait for it as they do behind a long batch of the writer's, for as long as a test
    /// needs.
    pub(crate) async fn hold_the_writer(&self) -> sqlx::pool::PoolConnection<Sqlite> {
        let Backed::Sqlite(db) = &self.0 else {
            panic!("the test's store is on SQLite");
        };
        db.pool.acquire().await.expect("the writing connection")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{in_a_process_of_its_own, peak_kib, reset_peak};
    use backend::Backend;

    /// PostgreSQL keeps the first 63 bytes of an `application_name`: a node on a host
    /// with a long name (a Kubernetes pod's) lost the process id and random part of its
    /// generated id, which alone told two nodes of one deployment apart.
    #[test]
    fn a_long_node_id_keeps_its_end_in_the_session_name() {
        let host = "pipecrawl-worker-statefulset-production-eu-west-1";
        let node = format!("{host}-4242-a1b2c3");
        let name = node_session_name(&node);
        assert!(name.len() <= 63, "{name}");
        assert!(name.starts_with("pipecrawl node ..."), "{name}");
        assert!(name.ends_with("-4242-a1b2c3"), "{name}");
        assert_eq!(node_session_name("n1"), "pipecrawl node n1");
        // Each byte of an `é` is shown as `\xHH`: four of the 45 bytes left take 32.
        let wide = format!("{}-1-abcdef", "é".repeat(40));
        assert_eq!(node_session_name(&wide), "pipecrawl node ...éééé-1-abcdef");
    }

    /// A password in the user info or in a `password` parameter, however the URL is
    /// spelled, is not shown; the rest of it is, as written.
    #[test]
    fn redacted_hides_every_spelling_of_a_password() {
        for (database, shown) in [
            ("postgres://u:pw@h/db", "postgres://u:***@h/db"),
            (
                "postgres://u:pw@h/db?sslmode=disable",
                "postgres://u:***@h/db?sslmode=disable",
            ),
            (
                "postgresql://u@h/db?password=pw",
                "postgresql://u@h/db?password=***",
            ),
            (
                "postgres://u@h/db?pass%77ord=pw&x=1",
                "postgres://u@h/db?password=***&x=1",
            ),
            ("postgres://u:pw@h:port/db", "postgres://u:***@h:port/db"),
            (
                "postgres://u@h:port/db?password=pw",
                "postgres://u@h:port/db?password=***",
            ),
            (
                "postgres://u@h/db?application_name=pw",
                "postgres://u@h/db?application_name=pw",
            ),
            ("crawl.db", "crawl.db"),
        ] {
            assert_eq!(redacted(database), shown);
        }
    }

    #[tokio::test]
    async fn questions_asked_beside_the_crawl_sort_in_a_file() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("crawl.db");
        let store = Store::open(&path.display().to_string())
            .await
            .expect("open the store");
        let Backed::Sqlite(db) = &store.0 else {
            panic!("a SQLite store");
        };
        let temp_store: i64 = sqlx::query_scalar("PRAGMA temp_store")
            .fetch_one(&db.readers)
            .await
            .expect("ask the readers");
        assert_eq!(temp_store, 1, "temp_store = FILE");
    }

    /// The counts a crawl kept none of are rebuilt at its end by grouping every link row
    /// by target and anchor text: a sort as large as `links`. The writer sorts in memory
    /// (its batches' sorts are small), so the rebuild must not: 100,000 links of 1 KB
    /// targets took the process 100 MB more, and a large crawl's links gigabytes.
    #[tokio::test]
    async fn link_counts_are_rebuilt_sorting_in_a_file() {
        if !in_a_process_of_its_own("store::tests::link_counts_are_rebuilt_sorting_in_a_file") {
            return;
        }
        let (_dir, store, db) = sqlite_store().await;
        let db = &db;
        one_page_linking(db, 100_000, "'a'").await;
        sqlx::query("UPDATE writer_state SET value = 1 WHERE key = 'link_counts_behind'")
            .execute(&db.pool)
            .await
            .expect("mark the counts behind");
        reset_peak();
        let before = peak_kib();
        store.build_derived().await.expect("rebuild the counts");
        let grew = peak_kib().saturating_sub(before);
        let anchors: i64 = sqlx::query_scalar("SELECT count(*) FROM anchors")
            .fetch_one(&db.pool)
            .await
            .expect("count the anchors");
        assert_eq!(anchors, 100_000);
        assert!(grew < 40 * 1024, "the rebuild took {grew} KiB more");
    }

    /// A crawl killed with its link counts left to its end was counted at the next run's
    /// opening (a sort as large as `links`, the index it reads them through dropped), and
    /// counted again at its end when that run left them to it too. They wait for the run's
    /// choice: left to the end of one that defers them again, counted before a writer
    /// that keeps them goes on from them.
    #[tokio::test]
    async fn counts_a_killed_crawl_left_behind_wait_for_the_next_runs_choice() {
        let (dir, store, db) = sqlite_store().await;
        sqlx::raw_sql(
            "INSERT INTO frontier (id, url, host, depth, priority, state)
                 VALUES (1, 'http://h/', 'h', 0, 0, 'done'),
                        (2, 'http://h/a', 'h', 1, 0, 'queued');
             INSERT INTO pages (id, url, depth, fetched_at, changed_at)
                 VALUES (1, 'http://h/', 0, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z');
             INSERT INTO links (source_id, target_url, anchor_text)
                 VALUES (1, 'http://h/a', 'A'), (1, 'http://h/a', 'A again');
             UPDATE writer_state SET value = 2 WHERE key = 'link_counts_behind';",
        )
        .execute(&db.pool)
        .await
        .expect("leave a killed crawl's rows");
        store.close().await.expect("close the store");
        let path = dir.path().join("crawl.db").display().to_string();
        let state = |db: Db<Sqlite>| async move {
            let behind: i64 = sqlx::query_scalar(
                "SELECT value FROM writer_state WHERE key = 'link_counts_behind'",
            )
            .fetch_one(&db.pool)
            .await
            .expect("read the counts' state");
            let anchors: i64 = sqlx::query_scalar("SELECT count(*) FROM anchors")
                .fetch_one(&db.pool)
                .await
                .expect("count the anchors");
            (behind, anchors)
        };
        let sqlite = |store: &Store| match &store.0 {
            Backed::Sqlite(db) => db.clone(),
            Backed::Postgres(_) => panic!("a SQLite store"),
        };

        let again = Store::open(&path).await.expect("open it again");
        assert_eq!(state(sqlite(&again)).await, (2, 0), "counted as it opened");
        assert!(again.defer_derived().await.expect("size the crawl ahead"));
        assert_eq!(state(sqlite(&again)).await, (2, 0), "left to the end");
        again.close().await.expect("close the store");

        let last = Store::open(&path).await.expect("open it again");
        sqlx::query("UPDATE frontier SET state = 'done' WHERE id = 2")
            .execute(&sqlite(&last).pool)
            .await
            .expect("nothing ahead");
        assert!(!last.defer_derived().await.expect("size the crawl ahead"));
        assert_eq!(
            state(sqlite(&last)).await,
            (0, 2),
            "counted for the writer to keep"
        );
    }

    /// SQLite reuses its WAL file rather than shrink it, so a service kept the WAL at the
    /// largest it ever grew to (96–234 MB beside a 16 MB database in a soak test): once
    /// folded in and started over, it is cut back to [`WAL_KEPT_BYTES`].
    #[tokio::test]
    async fn a_wal_that_grew_is_cut_back_once_it_starts_over() {
        let (dir, _store, db) = sqlite_store().await;
        one_page_linking(&db, 30_000, "printf('%01000d', i)").await;
        let wal = dir.path().join("crawl.db-wal");
        let size = || std::fs::metadata(&wal).map_or(0, |m| m.len());
        let grown = size();
        assert!(grown > 2 * WAL_KEPT_BYTES, "the WAL grew to {grown} bytes");
        // What the store's checkpoints do beside the writer: fold the WAL in, so that the
        // next commit starts it over.
        sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&db.pool)
            .await
            .expect("fold the WAL in");
        sqlx::query("UPDATE pages SET title = 'again' WHERE id = 1")
            .execute(&db.pool)
            .await
            .expect("commit once more");
        assert!(
            size() <= WAL_KEPT_BYTES,
            "the WAL stayed at {} bytes after growing to {grown}",
            size()
        );
    }

    /// One page linking to `links` targets of 1 KB URLs, the `i`th one's anchor text
    /// `anchor` (SQL of `i`).
    async fn one_page_linking(db: &Db<Sqlite>, links: u32, anchor: &str) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "INSERT INTO frontier (id, url, host, depth, priority, state)
                 VALUES (1, 'http://h/', 'h', 0, 0, 'done');
             INSERT INTO pages (id, url, depth, fetched_at, changed_at)
                 VALUES (1, 'http://h/', 0, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z');
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {links})
             INSERT INTO links (source_id, target_url, anchor_text)
                 SELECT 1, printf('http://h/%01000d', i), {anchor} FROM n;"
        )))
        .execute(&db.pool)
        .await
        .expect("store the links");
    }

    /// SQLite's plan for `sql`, its four parameters bound, one line per step.
    async fn plan(db: &Db<Sqlite>, sql: &str) -> Vec<String> {
        let mut query = sqlx::query_as::<_, (i64, i64, i64, String)>(sqlx::AssertSqlSafe(format!(
            "EXPLAIN QUERY PLAN {sql}"
        )));
        for _ in 0..sql.matches('$').count().min(4) {
            query = query.bind(0_i64);
        }
        let steps = query.fetch_all(&db.pool).await.expect("explain the query");
        steps.into_iter().map(|(.., detail)| detail).collect()
    }

    /// A service leases its revisits apart from new URLs, when one falls due, and asks
    /// when the next one waiting out a retry is due; with no index to tell revisits from
    /// the rest of the queue, each read the queued frontier through (a million queued
    /// URLs: 0.43 s a lease). Both are read from the revisits' own indexes.
    #[tokio::test]
    async fn queued_revisits_are_read_from_an_index_of_their_own() {
        let (_dir, _store, db) = sqlite_store().await;
        for (sql, index) in [
            (Sqlite::lease_sql(LeaseRows::Revisits), "frontier_revisits"),
            (LeaseRows::Revisits.next_due_sql(), "frontier_revisits_due"),
        ] {
            let steps = plan(&db, &sql).await;
            let reads = steps
                .iter()
                .filter(|step| step.contains("frontier USING") && !step.contains("PRIMARY KEY"))
                .collect::<Vec<_>>();
            let by_index = |step: &&String| step.split_whitespace().any(|word| word == index);
            assert!(
                !reads.is_empty() && reads.iter().all(by_index),
                "{sql}\n{steps:#?}"
            );
        }
    }

    /// A service's lease of revisits took the best by priority: with more due than the
    /// window takes, the pages nearest the seeds, due again as soon as they were fetched,
    /// went in every lease and the others waited for as long as that lasted. A lease
    /// takes the longest overdue first, read in that order from the revisits' index.
    #[tokio::test]
    async fn a_lease_of_revisits_takes_the_longest_overdue_first() {
        let (_dir, store, db) = sqlite_store().await;
        sqlx::raw_sql(
            "INSERT INTO frontier (url, host, depth, priority, state, recrawl_at,
                                   recrawl_interval_ms)
             VALUES ('http://h/', 'h', 0, 10, 'queued', 3000, 1000),
                    ('http://h/a', 'h', 1, 5, 'queued', 2000, 1000),
                    ('http://h/b', 'h', 1, 5, 'queued', 1000, 1000),
                    ('http://h/new', 'h', 1, 5, 'queued', NULL, NULL);",
        )
        .execute(&db.pool)
        .await
        .expect("queue revisits");
        let leased = store
            .lease(
                "me",
                2,
                Duration::from_secs(60),
                (None, LeaseRows::Revisits),
            )
            .await
            .expect("lease the revisits due");
        let mut taken: Vec<(&str, Option<i64>)> = leased
            .jobs
            .iter()
            .map(|j| (j.url.path(), j.previous.as_ref().and_then(|p| p.due_at)))
            .collect();
        taken.sort_unstable();
        assert_eq!(taken, [("/a", Some(2000)), ("/b", Some(1000))]);
        let steps = plan(&db, &Sqlite::lease_sql(LeaseRows::Revisits)).await;
        assert!(
            !steps.iter().any(|step| step.contains("TEMP B-TREE")),
            "a lease sorts every revisit queued: {steps:#?}"
        );
    }

    /// A run with `traps.max_pages_per_host` changed cuts, or queues again, each host's
    /// rows a host at a time; with no index of the frontier by host, SQLite read every
    /// host's from the whole frontier (a million rows: 0.1 s a host, minutes for a
    /// thousand hosts before the crawl started). Each pass reads them from an index in
    /// their order, built for the pass and gone after it.
    #[tokio::test]
    async fn budget_passes_read_a_host_from_an_index_built_for_them() {
        let (_dir, _store, db) = sqlite_store().await;
        for (sql, index) in [
            (Db::<Sqlite>::queued_rows_of_host(), db::QUEUED_BY_HOST),
            (Db::<Sqlite>::cut_rows_of_host(), db::CUT_BY_HOST),
        ] {
            let steps = db
                .with_host_index(index, async { Ok(plan(&db, &sql).await) })
                .await
                .expect("a pass over hosts");
            let reads = steps
                .iter()
                .filter(|step| step.contains(" f ") || step.starts_with("SCAN"))
                .collect::<Vec<_>>();
            let by_index = |step: &&String| {
                step.starts_with("SEARCH") && step.split_whitespace().any(|word| word == index.0)
            };
            assert!(
                !reads.is_empty() && reads.iter().all(by_index),
                "{sql}\n{steps:#?}"
            );
            let left: i64 =
                sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE name = $1")
                    .bind(index.0)
                    .fetch_one(&db.pool)
                    .await
                    .expect("look for the index");
            assert_eq!(left, 0, "{} is left after the pass", index.0);
        }
    }

    /// A new SQLite store in a temporary directory, and its database.
    async fn sqlite_store() -> (tempfile::TempDir, Store, Db<Sqlite>) {
        let dir = tempfile::tempdir().expect("a temp dir");
        let store = Store::open(&dir.path().join("crawl.db").display().to_string())
            .await
            .expect("open the store");
        let Backed::Sqlite(db) = &store.0 else {
            panic!("a SQLite store");
        };
        let db = db.clone();
        (dir, store, db)
    }

    /// `n` URLs of `len` bytes' path on hosts `h0` and `h1`, at depth 1, as a narrower
    /// scope leaves them out: failed, with no page, their budgets given back.
    async fn left_out(db: &Db<Sqlite>, n: u32, len: usize) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n})
             INSERT INTO frontier (url, host, depth, priority, state)
                 SELECT printf('http://h%d/%0{len}d', i % 2, i), 'h' || (i % 2), 1, 0, 'failed'
                 FROM n;
             INSERT INTO host_budget (host, urls) VALUES ('h0', 0), ('h1', 0);"
        )))
        .execute(&db.pool)
        .await
        .expect("store the URLs left out");
    }

    /// A scope narrowed on a crawl with millions of queued URLs leaves them all out; the
    /// pass that queues them again when it widens read every one into memory before it
    /// queued any. 30,000 URLs of 2 KB took the process 150 MB more.
    #[tokio::test]
    async fn urls_left_out_are_queued_again_a_batch_at_a_time() {
        if !in_a_process_of_its_own(
            "store::tests::urls_left_out_are_queued_again_a_batch_at_a_time",
        ) {
            return;
        }
        let (_dir, store, db) = sqlite_store().await;
        let db = &db;
        left_out(db, 30_000, 2_000).await;
        reset_peak();
        let before = peak_kib();
        let (queued, _) = store
            .requeue_left_out(Cut::LeftOut, |_, _, _| true, 0)
            .await
            .expect("queue them again");
        let grew = peak_kib().saturating_sub(before);
        assert_eq!(queued, 30_000);
        assert!(grew < 40 * 1024, "the pass took {grew} KiB more");
    }

    /// Over several of the pass's batches, what `keep` takes is queued and what it
    /// leaves stays failed, within the hosts' budgets: the shallowest first, and those
    /// beyond become trap rows.
    #[tokio::test]
    async fn urls_left_out_over_several_batches_are_queued_within_budgets() {
        let (_dir, store, db) = sqlite_store().await;
        let db = &db;
        let rows = u32::try_from(db::PASS_BATCH * 5 / 2).expect("a few hundred");
        left_out(db, rows, 3).await;
        // Every third URL is kept; h0 may take 20 more, h1 all of its own.
        sqlx::query("UPDATE host_budget SET urls = 80 WHERE host = 'h0'")
            .execute(&db.pool)
            .await
            .expect("spend some of h0's budget");
        let keep = |url: &Url, _: u32, _: JobKind| {
            let n: u32 = url.path()[1..].parse().expect("a number");
            n.is_multiple_of(3)
        };
        let (queued, _) = store
            .requeue_left_out(Cut::LeftOut, keep, 100)
            .await
            .expect("queue them again");
        let count = |sql: &'static str| async move {
            sqlx::query_as::<_, (String, i64)>(sql)
                .fetch_all(&db.pool)
                .await
                .expect("count")
        };
        let kept = (1..=rows).filter(|i| i % 3 == 0);
        let kept_on = |host: u32| i64::try_from(kept.clone().filter(|i| i % 2 == host).count());
        let (h0, h1) = (kept_on(0).expect("a count"), kept_on(1).expect("a count"));
        assert_eq!(queued, u64::try_from(20 + h1).expect("a count"));
        assert_eq!(
            count("SELECT host, count(*) FROM frontier WHERE state = 'queued' GROUP BY host").await,
            [("h0".to_owned(), 20), ("h1".to_owned(), h1)]
        );
        assert_eq!(
            count(
                "SELECT f.host, count(*) FROM frontier f JOIN pages p ON p.id = f.id
                 WHERE f.state = 'failed' AND p.error_kind = 'trap' GROUP BY f.host"
            )
            .await,
            [("h0".to_owned(), h0 - 20)]
        );
        assert_eq!(
            count("SELECT host, urls FROM host_budget ORDER BY host").await,
            [("h0".to_owned(), 100), ("h1".to_owned(), h1)]
        );
    }

    /// A broad crawl's staged URLs are on as many hosts as URLs, near enough; the merge
    /// that brings them into the frontier counted them against their hosts' budgets
    /// with every host in memory, twice. 100,000 hosts of 200 bytes took the process
    /// 70 MB more. A host beyond its budget is still cut to it.
    #[tokio::test]
    async fn staged_urls_on_many_hosts_are_counted_against_budgets_in_the_database() {
        if !in_a_process_of_its_own(
            "store::tests::staged_urls_on_many_hosts_are_counted_against_budgets_in_the_database",
        ) {
            return;
        }
        let (_dir, store, db) = sqlite_store().await;
        sqlx::raw_sql(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
             INSERT INTO frontier_staged (url, host, depth, priority, redirect_hops, kind)
                 SELECT printf('http://%0200d/', i), printf('%0200d', i), 1, 0, 0, 'page'
                 FROM n;
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5)
             INSERT INTO frontier_staged (url, host, depth, priority, redirect_hops, kind)
                 SELECT 'http://big/' || i, 'big', i, 0, 0, 'page' FROM n;
             INSERT INTO host_budget (host, urls) VALUES ('big', 1);",
        )
        .execute(&db.pool)
        .await
        .expect("stage the URLs");
        reset_peak();
        let before = peak_kib();
        let trapped = store.merge_staged(3).await.expect("merge them");
        let grew = peak_kib().saturating_sub(before);
        assert_eq!(trapped, 3);
        let queued: Vec<(String, i64)> = sqlx::query_as(
            "SELECT host, count(*) FROM frontier WHERE state = 'queued'
             GROUP BY host = 'big' ORDER BY host = 'big'",
        )
        .fetch_all(&db.pool)
        .await
        .expect("count the queued URLs");
        assert_eq!(
            queued.iter().map(|(_, n)| *n).collect::<Vec<_>>(),
            [100_000, 2]
        );
        let big: Vec<(String, i64)> = sqlx::query_as(
            "SELECT url, depth FROM frontier WHERE host = 'big' AND state = 'queued'",
        )
        .fetch_all(&db.pool)
        .await
        .expect("read the host's URLs");
        assert_eq!(
            big,
            [("http://big/1".into(), 1), ("http://big/2".into(), 2)]
        );
        let budgets: (i64, i64) = sqlx::query_as("SELECT count(*), sum(urls) FROM host_budget")
            .fetch_one(&db.pool)
            .await
            .expect("read the budgets");
        assert_eq!(budgets, (100_001, 100_003));
        assert!(grew < 40 * 1024, "the merge took {grew} KiB more");
    }

    /// A new database, closed, then changed by `sql` as another build would have left
    /// it, with no crawl's lock beside it: its directory and name.
    async fn database_changed_by(sql: &'static str) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("crawl.db");
        let database = path.display().to_string();
        Store::open(&database)
            .await
            .expect("open the store")
            .close()
            .await
            .expect("close the store");
        let mut conn = SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(&path))
            .await
            .expect("open the file");
        sqlx::query(sql)
            .execute(&mut conn)
            .await
            .expect("change the database");
        conn.close().await.expect("close the file");
        std::fs::remove_file(format!("{database}-lock")).expect("no lock left");
        (dir, database)
    }

    /// A database a later pipecrawl migrated past what this one knows is refused before
    /// the crawl opens it to write, saying which: not sqlx's "migration 10000 was
    /// previously applied but is missing in the resolved migrations".
    #[tokio::test]
    async fn a_database_from_a_newer_version_is_refused_saying_so_and_left_alone() {
        let (dir, database) = database_changed_by(
            "INSERT INTO _sqlx_migrations SELECT 10000, 'from the future', installed_on, 1, \
             checksum, 0 FROM _sqlx_migrations WHERE version = 1",
        )
        .await;
        let before = std::fs::read(&database).expect("read the file");

        let refused = Store::open(&database).await.err().map(|e| e.to_string());
        let refused = refused.expect("the newer database was opened");
        assert!(refused.contains("newer pipecrawl"), "{refused}");
        assert!(refused.contains("10000"), "{refused}");
        assert_eq!(std::fs::read(&database).expect("read the file"), before);
        assert!(
            !dir.path().join("crawl.db-lock").exists(),
            "refused after taking the crawl's lock"
        );
    }

    /// Migration 9's comments were added to on 2026-12-03 (the statements unchanged),
    /// and sqlx checks a checksum of the whole file: a database that a build of the hour
    /// before had migrated was refused by every later one with "migration 9 was
    /// previously applied but has been modified". It opens, and crawls on.
    #[tokio::test]
    async fn a_database_migrated_before_a_migrations_comments_changed_opens() {
        // The SHA-384 of 0009_crawl_state.sql as of 60a83a8, which such databases hold.
        let (_dir, database) = database_changed_by(
            "UPDATE _sqlx_migrations SET checksum = x'839b246cd36b3778e15e7df090e316ea750227fe06c\
             51029f56436a66e011cd68f871dec354845a4f96e4cf025792c21' WHERE version = 9",
        )
        .await;
        let store = Store::open(&database).await.map_err(|e| e.to_string());
        let store = store.expect("a database of an hour ago opens");
        assert_eq!(store.page_count().await.expect("count pages"), 0);
        store.close().await.expect("close the store");
    }

    /// Another program's database is refused and left as it was even when that program
    /// also migrates with sqlx (an application's own SQLite file, named by mistake): its
    /// `_sqlx_migrations` does not make it a pipecrawl database.
    #[tokio::test]
    async fn another_sqlx_programs_database_is_refused_and_left_as_it_was() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("app.db");
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true);
        let mut conn = SqliteConnection::connect_with(&options)
            .await
            .expect("create the other program's database");
        sqlx::raw_sql(
            "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL,
                 installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
                 success BOOLEAN NOT NULL, checksum BLOB NOT NULL, execution_time BIGINT NOT NULL);
             INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
                 VALUES (1, 'users', 1, x'00', 0);
             CREATE TABLE users (name TEXT);",
        )
        .execute(&mut conn)
        .await
        .expect("its tables");
        conn.close().await.expect("close it");
        let before = std::fs::read(&path).expect("read the database");

        let refused = Store::open(&path.display().to_string())
            .await
            .err()
            .map(|e| e.to_string())
            .expect("another program's database was opened");
        assert!(refused.contains("is not a pipecrawl database"), "{refused}");
        assert!(refused.contains("users"), "{refused}");
        assert_eq!(std::fs::read(&path).expect("read it again"), before);
    }
}
