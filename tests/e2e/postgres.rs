//! A throwaway PostgreSQL server for the tests that need one: `initdb` and `pg_ctl` in a
//! temporary directory, listening on a free loopback port, stopped when the guard drops.
//!
//! The server binaries are found on `PATH` or in Debian's `/usr/lib/postgresql/*/bin`
//! (`.ci/run` installs them). Without them [`TestPostgres::start`] says loudly that the
//! test is skipped and returns `None`. PostgreSQL refuses to run as root, so as root the
//! server runs as the `postgres` user in a directory that user owns.
//!
//! A test that panics still drops the guard; a test process that is killed outright
//! cannot, so a watchdog process stops the server (and removes its directory) once the
//! test process is gone.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

pub struct TestPostgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    /// `Some(name)` when the server runs as that user (because the tests run as root).
    user: Option<String>,
    /// The lock on `port` of [`reserved_port`], held for the server's life.
    _port_lock: Option<std::fs::File>,
}

impl TestPostgres {
    /// Starts a server, or returns `None` (after saying why on stderr) when this machine
    /// has no PostgreSQL server binaries.
    pub fn start(test: &str) -> Option<Self> {
        let Some(bin) = server_binaries() else {
            eprintln!(
                "\n*** SKIPPED {test}: no PostgreSQL server binaries (initdb, pg_ctl) on PATH \
                 or in /usr/lib/postgresql/*/bin; install Debian's `postgresql` package to \
                 run it ***\n"
            );
            return None;
        };
        let user = is_root().then(|| "postgres".to_owned());
        let dir = std::env::temp_dir().join(format!(
            "pipecrawl-pg-{}-{:08x}",
            std::process::id(),
            fastrand::u32(..)
        ));
        std::fs::create_dir(&dir).expect("create the PostgreSQL temp dir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .expect("restrict the PostgreSQL temp dir");
        if let Some(user) = &user {
            let chown = Command::new("chown")
                .arg(format!("{user}:"))
                .arg(&dir)
                .status()
                .expect("run chown");
            assert!(
                chown.success(),
                "chown of {} to {user} failed",
                dir.display()
            );
        }
        let server = Self {
            bin,
            dir,
            port: 0,
            user,
            _port_lock: None,
        };
        server.watch_for_the_end_of_this_process();
        let data = server.dir.join("data");
        server.run(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-U".as_ref(),
                "postgres".as_ref(),
                "--auth=trust".as_ref(),
                "--no-sync".as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
            ],
        );
        let mut server = server;
        for _ in 0..5 {
            let (port, lock) = reserved_port();
            (server.port, server._port_lock) = (port, Some(lock));
            if server.try_start() {
                return Some(server);
            }
        }
        panic!(
            "PostgreSQL did not start; its log: {}",
            std::fs::read_to_string(server.dir.join("log")).unwrap_or_default()
        );
    }

    /// A new empty database on the server, as a `postgres://` URL.
    pub async fn database(&self, name: &str) -> String {
        use sqlx::Connection;
        let mut admin = sqlx::PgConnection::connect(&self.url("postgres"))
            .await
            .expect("connect to the test PostgreSQL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create a test database");
        self.url(name)
    }

    /// `sqlite`, then a database `name` of `server` when this machine has one: what a
    /// test run on both backends crawls into, one after the other.
    pub async fn with_sqlite(server: Option<&Self>, sqlite: &str, name: &str) -> Vec<String> {
        let mut databases = vec![sqlite.to_owned()];
        if let Some(server) = server {
            databases.push(server.database(name).await);
        }
        databases
    }

    /// A server for `test` (when this machine has one), a harness, its SQLite file's path,
    /// and the databases of [`TestPostgres::with_sqlite`]: a test run on both backends.
    pub async fn beside_sqlite(
        test: &str,
        name: &str,
    ) -> (Option<Self>, super::Harness, String, Vec<String>) {
        let server = Self::start(test);
        let harness = super::Harness::default();
        let sqlite = harness.db_path().display().to_string();
        let databases = Self::with_sqlite(server.as_ref(), &sqlite, name).await;
        (server, harness, sqlite, databases)
    }

    /// Stops the server (`-m fast`: sessions are ended, as an administrator's restart or a
    /// failover ends them) and starts it again on the same port, with the same options.
    pub fn restart(&self) {
        let data = self.dir.join("data");
        let log = self.dir.join("log");
        self.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-l".as_ref(),
                log.as_os_str(),
                "-m".as_ref(),
                "fast".as_ref(),
                "-w".as_ref(),
                "restart".as_ref(),
            ],
        );
    }

    /// Starts the server in its directory on `self.port`; whether it started.
    fn try_start(&self) -> bool {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories={} \
             -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
             -c max_connections=100",
            self.port,
            self.dir.display()
        );
        let data = self.dir.join("data");
        let log = self.dir.join("log");
        self.try_run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-l".as_ref(),
                log.as_os_str(),
                "-o".as_ref(),
                options.as_ref(),
                "-w".as_ref(),
                "start".as_ref(),
            ],
        )
    }

    /// Restarts the server taking connections over TCP only with TLS (`ssl = on`, its
    /// pg_hba.conf's one TCP line a `hostssl` one), with the certificate and key given
    /// (PEM); over its Unix socket, without.
    pub fn only_tls(&self, certificate: &str, key: &str) {
        let data = self.dir.join("data");
        let files = [
            ("server.crt", certificate),
            ("server.key", key),
            (
                "pg_hba.conf",
                "local all all trust\nhostssl all all 127.0.0.1/32 trust\n",
            ),
        ];
        for (name, text) in files {
            let path = data.join(name);
            std::fs::write(&path, text).expect("write a PostgreSQL TLS file");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .expect("restrict a PostgreSQL TLS file");
            if let Some(user) = &self.user {
                let chown = Command::new("chown")
                    .arg(format!("{user}:"))
                    .arg(&path)
                    .status()
                    .expect("run chown");
                assert!(chown.success(), "chown of {} failed", path.display());
            }
        }
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .expect("open postgresql.conf");
        std::io::Write::write_all(&mut conf, b"ssl = on\n").expect("turn ssl on");
        self.restart();
    }

    /// Stops the server (`-m fast`) until [`TestPostgres::start_again`]: an outage.
    pub fn stop(&self) {
        let data = self.dir.join("data");
        self.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-m".as_ref(),
                "fast".as_ref(),
                "-w".as_ref(),
                "stop".as_ref(),
            ],
        );
    }

    /// Starts a server [`TestPostgres::stop`] stopped, on its port.
    pub fn start_again(&self) {
        assert!(self.try_start(), "PostgreSQL did not start again");
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    fn run(&self, tool: &str, args: &[&std::ffi::OsStr]) {
        assert!(self.try_run(tool, args), "{tool} failed");
    }

    fn try_run(&self, tool: &str, args: &[&std::ffi::OsStr]) -> bool {
        let program = self.bin.join(tool);
        let mut command = match &self.user {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&program);
                c
            }
            None => Command::new(&program),
        };
        command
            .args(args)
            .current_dir(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Starts a shell that waits for this test process to end, then stops the server
    /// and removes its directory: the safeguard for a test process killed outright.
    fn watch_for_the_end_of_this_process(&self) {
        let as_user = self
            .user
            .as_ref()
            .map(|u| format!("runuser -u {u} -- "))
            .unwrap_or_default();
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             if [ -d '{dir}/data' ]; then {as_user}'{pg_ctl}' -D '{dir}/data' -m immediate stop; fi; \
             rm -rf '{dir}'",
            pid = std::process::id(),
            dir = self.dir.display(),
            pg_ctl = self.bin.join("pg_ctl").display(),
        );
        // `setsid -f` forks the shell off in a session of its own and returns at once.
        let started = Command::new("setsid")
            .args(["-f", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("start the PostgreSQL watchdog");
        assert!(started.success(), "the PostgreSQL watchdog did not start");
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        self.try_run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-m".as_ref(),
                "immediate".as_ref(),
                "stop".as_ref(),
            ],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The directory holding `initdb` and `pg_ctl`: `PATH` first, then the newest Debian one.
fn server_binaries() -> Option<PathBuf> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(path) = std::env::var_os("PATH") {
        if let Some(dir) = std::env::split_paths(&path).find(|d| has_both(d)) {
            return Some(dir);
        }
    }
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, bin)| has_both(bin))
        .collect();
    debian.sort();
    debian.pop().map(|(_, bin)| bin)
}

pub(super) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// The least port of the range the system hands out for `bind` to port 0 and for outgoing
/// connections (`ip_local_port_range`).
fn least_handed_out_port() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768)
}

/// The directory of the lock files of [`reserved_port`], one per port.
fn port_locks() -> PathBuf {
    std::env::temp_dir().join("pipecrawl-pg-ports")
}

/// A port for a server that must get it back after a restart or an outage, with the lock
/// that holds it. A port `bind` chose for port 0 was free again while the server was
/// stopped, for any program's `bind` to port 0 or outgoing connection to take (then the
/// server did not start again, and its test failed): this one is below the range those
/// are handed (no program takes it but by number), and a lock file held by this process
/// keeps the servers of other test processes off it.
fn reserved_port() -> (u16, std::fs::File) {
    let dir = port_locks();
    std::fs::create_dir_all(&dir).expect("create the PostgreSQL ports' lock dir");
    let least = least_handed_out_port();
    for _ in 0..1000 {
        let port = fastrand::u16(least / 2..least);
        let lock = std::fs::File::create(dir.join(port.to_string()))
            .expect("create a PostgreSQL port's lock file");
        if lock.try_lock().is_ok() {
            return (port, lock);
        }
    }
    panic!(
        "the ports from {} to {least} are held by other tests' PostgreSQL servers",
        least / 2
    );
}

/// A DBA's `LOCK TABLE table IN ACCESS EXCLUSIVE MODE` on `pool`, held until the
/// transaction returned ends.
pub(super) async fn lock_table(
    pool: &sqlx::PgPool,
    table: &str,
) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut lock = pool.begin().await.expect("begin");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"
    )))
    .execute(&mut *lock)
    .await
    .unwrap_or_else(|e| panic!("lock {table}: {e}"));
    lock
}

/// A TCP proxy on loopback between a node and the test's PostgreSQL, which can cut the
/// connections open now as a network does (a firewall dropping packets, a failover behind
/// a virtual IP): no byte goes through them any more, either way, yet neither socket is
/// closed, so a query sent or in flight waits for an answer that never comes. Connections
/// made after the cut go through. Dropped, it closes every connection.
pub struct CutProxy {
    /// One flag per connection made: once set, the connection forwards nothing more.
    cuts: Arc<Mutex<Vec<Arc<AtomicBool>>>>,
    release: Release,
    accepting: tokio::task::JoinHandle<()>,
}

/// PostgreSQL's Sync message, alone: what sqlx's `ping` sends.
const PING: [u8; 5] = [b'S', 0, 0, 0, 4];

impl CutProxy {
    /// Starts a proxy to the server of `database` (a `postgres://` URL); returns it with
    /// `database` as reached through it.
    pub async fn start(database: &str) -> (Self, String) {
        let authority = database
            .split_once('@')
            .and_then(|(_, rest)| rest.split('/').next())
            .expect("a postgres:// URL with a host")
            .to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let port = listener.local_addr().expect("the proxy's address").port();
        let cuts: Arc<Mutex<Vec<Arc<AtomicBool>>>> = Arc::default();
        let made = cuts.clone();
        let release = Release::default();
        let releases = release.clone();
        let upstream = authority.clone();
        let accepting = tokio::spawn(async move {
            // Owned here: aborting this task closes every connection.
            let mut pumps = tokio::task::JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                    continue;
                };
                let cut = Arc::new(AtomicBool::new(false));
                made.lock()
                    .expect("the proxy's connections")
                    .push(cut.clone());
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                let watch = Some(releases.clone());
                pumps.spawn(pump(client_read, server_write, cut.clone(), watch));
                pumps.spawn(pump(server_read, client_write, cut, None));
            }
        });
        let through = database.replacen(&authority, &format!("127.0.0.1:{port}"), 1);
        let proxy = Self {
            cuts,
            release,
            accepting,
        };
        (proxy, through)
    }

    /// Cuts the next connection handed back to sqlx's pool at the second of the two
    /// pings that follow each other then (the pool's `after_release` test, then sqlx's
    /// own): the cut that falls between them.
    pub fn cut_a_release(&self) {
        self.release.armed.store(true, Ordering::SeqCst);
    }

    /// Whether [`Self::cut_a_release`] has cut a connection yet.
    pub fn cut_at_release(&self) -> bool {
        self.release.cut.load(Ordering::SeqCst)
    }

    /// Cuts every connection open now.
    pub fn cut(&self) {
        for cut in self.cuts.lock().expect("the proxy's connections").iter() {
            cut.store(true, Ordering::SeqCst);
        }
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

/// [`CutProxy::cut_a_release`]'s flags, shared by the connections.
#[derive(Clone, Default)]
struct Release {
    /// Set, the next connection handed back to sqlx's pool is cut.
    armed: Arc<AtomicBool>,
    /// Set once a connection was cut so.
    cut: Arc<AtomicBool>,
}

/// Copies `from` to `to` until either closes, or, once `cut`, holds both open and
/// forwards nothing: what it reads then is lost, as a cut network loses it. With
/// `release`, `from` is a client, cut at its second ping in a row while armed.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    cut: Arc<AtomicBool>,
    release: Option<Release>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0; 64 * 1024];
    // Pings in a row: a connection handed back sends two, then one when taken again.
    let mut pings = 0;
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        pings = if buf[..n] == PING { pings + 1 } else { 0 };
        if let Some(release) = &release {
            if pings == 2 && release.armed.swap(false, Ordering::SeqCst) {
                cut.store(true, Ordering::SeqCst);
                release.cut.store(true, Ordering::SeqCst);
            }
        }
        if cut.load(Ordering::SeqCst) {
            // Reads on, so that the sender's writes never block: all of it is lost.
            while matches!(from.read(&mut buf).await, Ok(n) if n > 0) {}
            std::future::pending::<()>().await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// A server stopped and started again ([`TestPostgres::restart`], an outage) needs its
/// port back: a port the system hands out (`bind` to port 0, outgoing connections) may be
/// another program's by then, and the server did not start again.
#[test]
fn a_test_servers_port_is_not_one_the_system_hands_out() {
    let Some(server) = TestPostgres::start("a_test_servers_port_is_not_one_the_system_hands_out")
    else {
        return;
    };
    let least = least_handed_out_port();
    assert!(
        server.port < least,
        "port {} is in the range the system hands out, from {least}",
        server.port
    );
    let lock = std::fs::File::open(port_locks().join(server.port.to_string()))
        .expect("the port's lock file");
    assert!(lock.try_lock().is_err(), "port {} is not held", server.port);
    server.restart();
}
