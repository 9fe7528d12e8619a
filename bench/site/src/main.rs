//! bench-site: a deterministic generated web site on loopback, for crawler benchmarks.
//!
//! Host H of the site is `127.0.0.H`, all hosts on one port, so a crawler sees several
//! real hosts (politeness, per-host queues) without any DNS or network set-up.

mod log;
mod pages;
mod server;

use std::error::Error;
use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::log::RequestLog;
use crate::pages::{Site, SiteConfig};
use crate::server::Shared;

type Result<T, E = Box<dyn Error + Send + Sync>> = std::result::Result<T, E>;

/// How long in-flight requests get to finish after SIGINT/SIGTERM before we exit anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Tries at a free port for `--port 0`: the first is chosen on 127.0.0.1 and may be
/// taken on another loopback address.
const PORT_TRIES: usize = 20;

/// Serve a deterministic generated site for crawler benchmarks.
#[derive(Parser, Debug)]
#[command(name = "bench-site", version)]
struct Cli {
    /// Pages in the site; page i is /p/{i} on host i % hosts.
    #[arg(long, default_value_t = 50_000, value_parser = clap::value_parser!(u64).range(1..))]
    pages: u64,
    /// Hosts 127.0.0.1 ..= 127.0.0.H, each with its own listener.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=254))]
    hosts: u8,
    /// Port shared by all hosts; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Delay before every response, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Fewest links on a page.
    #[arg(long, default_value_t = 30)]
    links_min: u32,
    /// Most links on a page.
    #[arg(long, default_value_t = 60)]
    links_max: u32,
    /// Approximate size of a page's HTML, in bytes.
    #[arg(long, default_value_t = 20_000)]
    page_bytes: usize,
    /// Links per page to URLs no other page has (/u/{page}/{k}, all 404).
    #[arg(long, default_value_t = 0)]
    unique_links: u32,
    /// Append one line per request, `unix_micros host path status`, to this file.
    #[arg(long)]
    log: Option<PathBuf>,
    /// Once listening, write the hosts' base URLs here, one per line (atomically).
    #[arg(long)]
    ready_file: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench-site: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli));
    // Connections still open after the grace period are dropped here, not waited for.
    runtime.shutdown_timeout(Duration::from_millis(100));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-site: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    if cli.links_min > cli.links_max {
        return Err(format!(
            "--links-min ({}) is more than --links-max ({})",
            cli.links_min, cli.links_max
        )
        .into());
    }
    let hosts = usize::from(cli.hosts);
    let (port, listeners) = bind_all(hosts, cli.port).await?;
    let authorities: Vec<String> = (0..hosts)
        .map(|h| format!("{}:{port}", host_ip(h)))
        .collect();
    let bases: Vec<String> = authorities.iter().map(|a| format!("http://{a}")).collect();

    let log = match &cli.log {
        Some(path) => {
            Some(RequestLog::open(path).map_err(|e| format!("opening {}: {e}", path.display()))?)
        }
        None => None,
    };
    let site = Site::new(
        SiteConfig {
            pages: cli.pages,
            hosts,
            links_min: cli.links_min,
            links_max: cli.links_max,
            page_bytes: cli.page_bytes,
            unique_links: cli.unique_links,
        },
        bases.clone(),
    );
    let shared = Arc::new(Shared {
        site,
        latency: Duration::from_millis(cli.latency_ms),
        log,
        requests: AtomicU64::new(0),
    });

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut servers = JoinSet::new();
    for (host, listener) in listeners.into_iter().enumerate() {
        let app = server::router(Arc::clone(&shared), host, &authorities[host]);
        let mut stop = stop_rx.clone();
        servers.spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|&stop| stop).await;
                })
                .await
        });
    }

    if let Some(path) = &cli.ready_file {
        write_ready_file(path, &bases).map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    let c = shared.site.config();
    eprintln!(
        "bench-site: {} pages on {} host(s) at {} (latency {} ms)",
        c.pages,
        c.hosts,
        bases.join(" "),
        cli.latency_ms
    );

    let served = tokio::select! {
        signal = shutdown_signal() => { signal?; Ok(()) }
        // A server only ends early if accepting fails for good.
        Some(ended) = servers.join_next() => Err(match ended {
            Ok(Ok(())) => "a listener stopped unexpectedly".to_owned(),
            Ok(Err(e)) => format!("serving: {e}"),
            Err(e) => format!("server task: {e}"),
        }),
    };
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while servers.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        eprintln!("bench-site: connections still busy after {SHUTDOWN_GRACE:?}, exiting anyway");
    }
    if let Some(log) = &shared.log {
        log.finish()
            .map_err(|e| format!("writing the request log: {e}"))?;
    }
    report_usage(shared.requests.load(Ordering::Relaxed));
    served.map_err(Into::into)
}

fn host_ip(host: usize) -> Ipv4Addr {
    // `--hosts` is at most 254, so this stays within 127.0.0.1 ..= 127.0.0.254.
    Ipv4Addr::new(127, 0, 0, (host + 1) as u8)
}

/// Binds every host on one port, returning that port.
async fn bind_all(hosts: usize, port: u16) -> Result<(u16, Vec<TcpListener>)> {
    let tries = if port == 0 { PORT_TRIES } else { 1 };
    let mut last_err = None;
    for _ in 0..tries {
        match try_bind_all(hosts, port).await {
            Ok(bound) => return Ok(bound),
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.map_or_else(|| "no port tried".into(), Into::into))
}

async fn try_bind_all(hosts: usize, port: u16) -> Result<(u16, Vec<TcpListener>), String> {
    let mut listeners = Vec::with_capacity(hosts);
    let mut port = port;
    for host in 0..hosts {
        let addr = SocketAddr::V4(SocketAddrV4::new(host_ip(host), port));
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| format!("binding {addr}: {e}"))?;
        if host == 0 {
            port = listener
                .local_addr()
                .map_err(|e| format!("address of {addr}: {e}"))?
                .port();
        }
        listeners.push(listener);
    }
    Ok((port, listeners))
}

/// Written beside the target and renamed, so a script polling for the file never
/// reads half of it.
fn write_ready_file(path: &Path, bases: &[String]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut file = std::fs::File::create(&tmp)?;
    for base in bases {
        writeln!(file, "{base}/")?;
    }
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

async fn shutdown_signal() -> io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

/// Printed so a benchmark can show the site was not what limited the crawler.
fn report_usage(requests: u64) {
    match cpu_times() {
        Some((user, sys)) => {
            eprintln!("bench-site: served {requests} requests, CPU user {user:.3} s sys {sys:.3} s")
        }
        None => eprintln!("bench-site: served {requests} requests, CPU user ? s sys ? s"),
    }
}

fn cpu_times() -> Option<(f64, f64)> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage only writes into the struct we own; on success it is initialised.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: rc == 0, so getrusage filled it (and zeroed() already made it valid).
    let usage = unsafe { usage.assume_init() };
    let secs = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    Some((secs(usage.ru_utime), secs(usage.ru_stime)))
}
