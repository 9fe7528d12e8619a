//! limit-fetch: the CPU cost of a bare fetch. Downloads pages 0..N of the bench site with
//! many requests in flight, reads each body whole and drops it, and prints the process's
//! CPU time: everything a crawler's fetch stage cannot avoid, and nothing else.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use pipecrawl_bench_limits::{report, Cpu, SiteArgs};

#[derive(Parser, Debug)]
#[command(name = "limit-fetch", version)]
struct Cli {
    #[command(flatten)]
    site: SiteArgs,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    concurrency: u64,
    /// Runtime worker threads; 0 means one per core, as a crawler would run.
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if cli.threads > 0 {
        builder.worker_threads(cli.threads);
    }
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("limit-fetch: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("limit-fetch: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let concurrency = cli.concurrency as usize;
    // Configured like the crawler's client: no redirects followed, a pool as wide as the
    // concurrency, Nagle off.
    let client = reqwest::Client::builder()
        .user_agent("pipecrawl-limit-fetch/0.1")
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(concurrency)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| format!("building the HTTP client: {e}"))?;
    let site = Arc::new(cli.site);
    let next = Arc::new(AtomicU64::new(0));
    let pages = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));

    let cpu_before = Cpu::process();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (client, site, next) = (client.clone(), Arc::clone(&site), Arc::clone(&next));
        let (pages, bytes, errors) = (Arc::clone(&pages), Arc::clone(&bytes), Arc::clone(&errors));
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= site.pages {
                    break;
                }
                let body = match client.get(site.page_url(i)).send().await {
                    Ok(resp) if resp.status().is_success() => resp.bytes().await,
                    Ok(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    Err(e) => Err(e),
                };
                match body {
                    Ok(body) => {
                        pages.fetch_add(1, Ordering::Relaxed);
                        bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
                    }
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.map_err(|e| format!("a fetch task failed: {e}"))?;
    }
    let wall = started.elapsed();
    let cpu = Cpu::process().since(cpu_before);

    let pages = pages.load(Ordering::Relaxed);
    let errors = errors.load(Ordering::Relaxed);
    report(
        "limit-fetch",
        pages,
        errors,
        wall,
        cpu,
        &format!("bytes={}", bytes.load(Ordering::Relaxed)),
    )
}
