//! The crate's error type: what can stop a crawl as a whole.
//!
//! Trouble with a single page is never an `Error`: it becomes a page row with an error
//! kind (see [`crate::page::FetchError`]). These are the failures a user must act on.

use std::path::PathBuf;

use crate::config::ConfigError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),

    #[error(transparent)]
    Admin(#[from] crate::admin::AdminError),

    #[error("cannot open the database {path}: {source}")]
    OpenDatabase {
        path: PathBuf,
        #[source]
        source: sqlx::Error,
    },

    #[error(
        "cannot open the database {path}: {limit}, and a node needs {needs} connections: \
         raise the limit, or end the sessions that hold them"
    )]
    TooFewConnections {
        path: PathBuf,
        limit: String,
        needs: u32,
    },

    #[error(
        "{path} is not a pipecrawl database (it holds the tables {tables}): give a new file \
         or PostgreSQL database, or one a crawl wrote"
    )]
    NotPipecrawl { path: PathBuf, tables: String },

    #[error(
        "{path} was written by a newer pipecrawl (its {backend} schema is at migration \
         {version}, this one knows up to {known}): crawl or query it with a pipecrawl that \
         knows {backend} migration {version} (`pipecrawl --version` says which each build \
         knows), on every node when nodes share the database, or give a new {fresh}"
    )]
    NewerDatabase {
        path: PathBuf,
        /// `SQLite` or `PostgreSQL`, whose migrations are numbered apart.
        backend: &'static str,
        version: i64,
        known: i64,
        /// What to give instead: a `file` for SQLite, a `database` on PostgreSQL.
        fresh: &'static str,
    },

    #[error(
        "{path} is a directory: `storage.database` names the database file, such as \
         {path}/crawl.db"
    )]
    DatabaseIsDirectory { path: PathBuf },

    #[error(
        "{path} is read-only for this user ({source}): a crawl writes to it; make it \
         writable, or read it with `pipecrawl query`"
    )]
    DatabaseReadOnly {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "{dir} is not writable for this user ({source}): a crawl keeps files beside its \
         database there (`-wal`, `-shm`, `-lock`); make the directory writable, or give a \
         database in one that is"
    )]
    DatabaseDirectoryReadOnly {
        dir: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    #[error("cannot make the directory {dir} for the database: {source}")]
    DatabaseDirectory {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "{where_looked}, and {database} holds none from an earlier run: a crawl \
         needs one to start from (`pipecrawl serve` may start without, and take seeds over \
         its admin API)"
    )]
    NoSeeds {
        database: String,
        /// The keys that give seeds, as the config has them: "`seeds` names no URL".
        where_looked: String,
    },

    #[error(
        "{path} is in use by another pipecrawl crawl or service{}, which holds {lock}: \
         wait for it to end, or stop it; or, if this run is not to share its database, give \
         it its own storage.database",
        holder.as_ref().map(|h| format!(", {h}")).unwrap_or_default()
    )]
    DatabaseInUse {
        path: PathBuf,
        /// Who holds it, as the holder wrote it into `lock`.
        holder: Option<String>,
        lock: PathBuf,
    },

    #[error(
        "{path} was replaced or removed while this run wrote it (a backup restored over \
         it?), so the run stopped: what it stored since went to the file it had open, \
         which is gone if it was removed, or still there under the name it was moved to \
         (`mv crawl.db crawl.old`). Stop a crawl or service before you put a backup in its \
         database's place; started again, it resumes from what the backup holds"
    )]
    DatabaseReplaced { path: PathBuf },

    #[error(
        "cluster.node_id {node:?} is in use by a live node (its last heartbeat {seen_ms} ms \
         ago): give each node its own id, or leave it out to have one generated; after a \
         crash, start again once cluster.lease_ttl_ms has passed"
    )]
    NodeIdInUse { node: String, seen_ms: i64 },

    #[error(
        "node {node:?} has another scope than live node {other:?} (scope.hosts, include, \
         exclude, max_depth or sitemaps): each node fails as out of scope the URLs its own \
         scope leaves out, whichever node found them. Give every node the same [scope], or \
         stop the live nodes (or reload them with it: SIGHUP to `serve`) first"
    )]
    NodeScopeDiffers { node: String, other: String },

    #[error(
        "node {node:?} spells the URLs it finds otherwise than live node {other:?} \
         (traps.session_params, traps.sort_query): the two would store one page under two \
         URLs, fetched twice. Give every node the same, or stop the live nodes first"
    )]
    NodeUrlSpellingDiffers { node: String, other: String },

    #[error(
        "node {node:?}: {} = {ours} differs from live node {other:?}'s ({theirs}): {}. Give \
         every node the same, or stop the live nodes first",
        .budget.setting(),
        .budget.why()
    )]
    NodeBudgetDiffers {
        node: String,
        other: String,
        budget: crate::store::cluster::Budget,
        ours: i64,
        theirs: i64,
    },

    #[error(
        "the clock of node {node:?} is {how} the database server's by {by_ms} ms, more than \
         cluster.lease_ttl_ms / 3 = {bound_ms} ms: the times it writes for the other nodes \
         (when a page was fetched) would be off by as much. Set \
         its clock right (NTP)"
    )]
    ClockOff {
        node: String,
        how: &'static str,
        by_ms: i64,
        bound_ms: i64,
    },

    #[error("cannot lock the database for this crawl through {path}: {source}")]
    LockDatabase {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "the last commits are in {wal}, and copying them into {database} failed ({source}): \
         nothing is lost, {wal} keeps them and SQLite reads them from there with the \
         database; keep the two together (`sqlite3 {database} .backup copy.db` copies \
         both as one), and once there is room the next crawl copies them in"
    )]
    WalKept {
        database: PathBuf,
        wal: PathBuf,
        #[source]
        source: sqlx::Error,
    },

    /// What to do about SQLite's "database or disk is full": stopped, the crawl leaves
    /// its last commit, which the next run goes on from.
    #[error(
        "{source}: no room left on the disk holding {}{}: make room there and run it again; \
         it goes on from its last commit, and fetches again the pages it had not stored",
        .dir.display(),
        temp_dir_note(.temp.as_deref())
    )]
    DiskFull {
        dir: PathBuf,
        temp: Option<PathBuf>,
        #[source]
        source: Box<Error>,
    },

    #[error(
        "cannot bring the schema of {path} up to date as role {role:?} in schema {}: \
         {message}. The crawl's role creates its tables in the first schema of its \
         search_path, and owns them: {advice}",
        .schema.as_deref().map_or("(none: no schema of its search_path exists)".to_owned(), |s| format!("{s:?}"))
    )]
    SchemaRefused {
        path: PathBuf,
        role: String,
        schema: Option<String>,
        /// The server's own words.
        message: String,
        /// The statements that would let the role in.
        advice: String,
    },

    #[error("cannot bring the database schema up to date: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),

    /// A URL whose `frontier` row the database refuses (see [`Error::is_refusal`]), named
    /// for whoever gave it: a seed.
    #[error("the database refused to queue {url}: {source}")]
    RefusedUrl {
        url: String,
        #[source]
        source: Box<Error>,
    },

    #[error("database error while {doing}: {source}")]
    Database {
        doing: &'static str,
        #[source]
        source: sqlx::Error,
    },

    /// From SQLite's C API, which the store calls itself where sqlx is slow (see
    /// `store::sqlite_batch`).
    #[error("database error while {doing}: {message} (SQLite code {code})")]
    Sqlite {
        doing: &'static str,
        code: i32,
        message: String,
    },

    #[error(
        "`fetch.proxy` names the host {host}, which does not resolve ({reason}): no request \
         could go out through it; mend the name, or name the proxy by its address"
    )]
    ProxyUnresolved { host: String, reason: String },

    #[error("cannot build the HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),

    #[error(
        "no CA certificates found to verify HTTPS servers with: install the system's CA \
         certificates (the ca-certificates package), or point SSL_CERT_FILE or SSL_CERT_DIR at them"
    )]
    NoCaCertificates,

    #[error("a pipeline stage stopped unexpectedly: {0}")]
    StageFailed(String),
}

impl Error {
    /// The config cannot run as written, however long one waits: its file (through
    /// [`ConfigError`]), no seeds anywhere, an admin API open to all. Not a conflict with
    /// another node's config, which ends when that node stops.
    pub fn is_bad_config(&self) -> bool {
        matches!(
            self,
            Self::Config(_)
                | Self::NoSeeds { .. }
                | Self::Admin(crate::admin::AdminError::Unprotected(_))
        )
    }

    /// The run was refused before it began: a config that cannot run, a database held by
    /// another run, one it cannot open, lock, write or bring up to date, a node that does
    /// not fit those running, an admin API that cannot listen. Nothing was fetched.
    pub fn refused_at_start(&self) -> bool {
        self.is_bad_config()
            || self.is_in_use()
            || matches!(
                self,
                Self::OpenDatabase { .. }
                    | Self::TooFewConnections { .. }
                    | Self::NotPipecrawl { .. }
                    | Self::NewerDatabase { .. }
                    | Self::DatabaseIsDirectory { .. }
                    | Self::DatabaseReadOnly { .. }
                    | Self::DatabaseDirectoryReadOnly { .. }
                    | Self::DatabaseDirectory { .. }
                    | Self::SchemaRefused { .. }
                    | Self::LockDatabase { .. }
                    | Self::Migrate(_)
                    | Self::HttpClient(_)
                    | Self::NodeScopeDiffers { .. }
                    | Self::NodeUrlSpellingDiffers { .. }
                    | Self::NodeBudgetDiffers { .. }
                    | Self::ClockOff { .. }
                    | Self::ProxyUnresolved { .. }
                    | Self::NoCaCertificates
                    | Self::Admin(_)
            )
    }

    /// Another live pipecrawl holds the database (SQLite) or the node's id (PostgreSQL):
    /// this run may start once that one ends, as a cron job's next night does.
    pub fn is_in_use(&self) -> bool {
        matches!(self, Self::DatabaseInUse { .. } | Self::NodeIdInUse { .. })
    }

    /// A PostgreSQL deadlock or serialization failure: the transaction was rolled back and
    /// may simply be run again.
    pub(crate) fn is_transient_conflict(&self) -> bool {
        matches!(
            self,
            Self::Database { source: sqlx::Error::Database(e), .. }
                if matches!(e.code().as_deref(), Some("40P01" | "40001"))
        )
    }

    /// The database refused what a statement asked it to store, and would refuse it again
    /// however long it was waited for: on PostgreSQL a data exception (SQLSTATE class 22:
    /// a value out of range, a bad encoding, a trigger's check), an integrity violation
    /// (23) or a program limit (54: an index entry too large); on SQLite a constraint, a
    /// value too large or of a mismatched type. Not an outage: lost connections, full
    /// disks, locks and conflicts are none of these.
    pub(crate) fn is_refusal(&self) -> bool {
        let refused_by_sqlite = |code: i32| {
            matches!(
                code & 0xff,
                libsqlite3_sys::SQLITE_CONSTRAINT
                    | libsqlite3_sys::SQLITE_TOOBIG
                    | libsqlite3_sys::SQLITE_MISMATCH
            )
        };
        match self {
            Self::RefusedUrl { .. } => true,
            Self::Sqlite { code, .. } => refused_by_sqlite(*code),
            Self::Database {
                source: sqlx::Error::Database(e),
                ..
            } => match e.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                Some(e) => matches!(e.code().get(..2), Some("22" | "23" | "54")),
                None => e
                    .code()
                    .and_then(|code| code.parse().ok())
                    .is_some_and(refused_by_sqlite),
            },
            _ => false,
        }
    }

    /// SQLite's extended result code, when SQLite failed the step.
    pub(crate) fn sqlite_code(&self) -> Option<i32> {
        match self {
            Self::Sqlite { code, .. } => Some(*code),
            Self::OpenDatabase { source, .. }
            | Self::Database { source, .. }
            | Self::Migrate(sqlx::migrate::MigrateError::Execute(source)) => sqlite_code_of(source),
            Self::RefusedUrl { source, .. } => source.sqlite_code(),
            _ => None,
        }
    }

    /// SQLite found no room on the disk, and the store named it (`store::full_disk`):
    /// the step may work once room is made (see `store::outage`).
    pub(crate) fn is_disk_full(&self) -> bool {
        matches!(self, Self::DiskFull { .. })
    }

    /// The pool gave no connection within its acquire timeout.
    pub(crate) fn is_pool_timeout(&self) -> bool {
        matches!(
            self,
            Self::Database {
                source: sqlx::Error::PoolTimedOut,
                ..
            }
        )
    }

    /// The connection to PostgreSQL broke, or the server is shutting down or starting, or
    /// the pool gave no connection in time (the server went away while every connection
    /// was idle, or all are busy): the step may work once the server answers again (see
    /// `store::outage`).
    pub(crate) fn is_connection_lost(&self) -> bool {
        let Self::Database { source, .. } = self else {
            return false;
        };
        match source {
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut => true,
            // Class 08 is "connection exception"; 57P01–57P03 are the server's
            // administrator or crash shutdown and "cannot connect now" (starting up).
            sqlx::Error::Database(e) => e
                .code()
                .is_some_and(|c| c.starts_with("08") || matches!(&*c, "57P01" | "57P02" | "57P03")),
            _ => false,
        }
    }
}

/// SQLite's extended result code (e.g. 264 for a read-only WAL; the low byte is the
/// primary code), when SQLite failed the step: a PostgreSQL SQLSTATE (`23505`) reads as
/// a number too.
pub(crate) fn sqlite_code_of(error: &sqlx::Error) -> Option<i32> {
    error
        .as_database_error()
        .filter(|e| e.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some())
        .and_then(|e| e.code())
        .and_then(|code| code.parse().ok())
}

/// What a full disk's error adds when SQLite's temporary directory, which a sort larger
/// than memory fills, is on another disk than the database's.
pub(crate) fn temp_dir_note(temp: Option<&std::path::Path>) -> String {
    temp.map_or_else(String::new, |temp| {
        format!(
            " (or, for a sort larger than memory, on the one holding SQLite's temporary \
             directory {}: SQLITE_TMPDIR names another)",
            temp.display()
        )
    })
}

/// Attaches what the store was doing to a `sqlx` error, so a failure names its step.
pub(crate) trait DbContext<T> {
    fn doing(self, doing: &'static str) -> Result<T, Error>;
}

impl<T> DbContext<T> for Result<T, sqlx::Error> {
    fn doing(self, doing: &'static str) -> Result<T, Error> {
        self.map_err(|source| Error::Database { doing, source })
    }
}

#[cfg(test)]
mod tests {
    use super::Error;

    fn sqlite(code: i32) -> Error {
        Error::Sqlite {
            doing: "storing a batch of pages",
            code,
            message: String::new(),
        }
    }

    #[test]
    fn sqlite_refuses_values_and_an_outage_is_no_refusal() {
        use libsqlite3_sys as ffi;
        for refused in [
            ffi::SQLITE_CONSTRAINT_TRIGGER,
            ffi::SQLITE_CONSTRAINT_CHECK,
            ffi::SQLITE_CONSTRAINT_NOTNULL,
            ffi::SQLITE_TOOBIG,
            ffi::SQLITE_MISMATCH,
        ] {
            assert!(sqlite(refused).is_refusal(), "{refused}");
        }
        for outage in [
            ffi::SQLITE_FULL,
            ffi::SQLITE_BUSY,
            ffi::SQLITE_BUSY_SNAPSHOT,
            ffi::SQLITE_LOCKED,
            ffi::SQLITE_IOERR_WRITE,
            ffi::SQLITE_NOMEM,
            ffi::SQLITE_READONLY,
            ffi::SQLITE_CORRUPT,
        ] {
            assert!(!sqlite(outage).is_refusal(), "{outage}");
        }
    }
}
