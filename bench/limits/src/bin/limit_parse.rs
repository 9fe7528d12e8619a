//! limit-parse: the CPU cost of a bare parse. Downloads pages 0..N of the bench site a
//! batch at a time, then parses the batch with scraper on one thread (title and hrefs
//! only), timing that thread's CPU over the parse alone, so the download never counts.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use pipecrawl_bench_limits::{report, BareParser, Cpu, Extracted, SiteArgs};

/// Pages downloaded, then parsed, at a time: about 20 MB of HTML.
const BATCH: u64 = 1000;
/// Requests in flight while a batch downloads.
const IN_FLIGHT: u64 = 16;

#[derive(Parser, Debug)]
#[command(name = "limit-parse", version)]
struct Cli {
    #[command(flatten)]
    site: SiteArgs,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("limit-parse: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    let client = reqwest::Client::builder()
        .user_agent("pipecrawl-limit-parse/0.1")
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| format!("building the HTTP client: {e}"))?;
    let site = Arc::new(cli.site);

    let parser = BareParser::default();
    let mut cpu = Cpu::default();
    let mut found = Extracted::default();
    let (mut pages, mut errors) = (0u64, 0u64);
    let mut parsing = Duration::ZERO;
    let mut first = 0;
    while first < site.pages {
        let last = (first + BATCH).min(site.pages);
        let (bodies, failed) = runtime.block_on(download(&client, &site, first..last))?;
        errors += failed;
        // Nothing else of ours runs while this batch is parsed, and a batch takes long
        // enough that the thread's CPU clock ticks many times over it.
        let (before, started) = (Cpu::thread(), Instant::now());
        for body in &bodies {
            found.add(std::hint::black_box(parser.extract(body)));
        }
        parsing += started.elapsed();
        cpu.add(Cpu::thread().since(before));
        pages += bodies.len() as u64;
        first = last;
    }

    report(
        "limit-parse",
        pages,
        errors,
        parsing,
        cpu,
        &format!(
            "titles={} hrefs={} href_bytes={}",
            found.titles, found.hrefs, found.href_bytes
        ),
    )
}

/// Pages `range`, fetched with a few requests in flight; returns the bodies (in no
/// particular order) and how many failed.
async fn download(
    client: &reqwest::Client,
    site: &Arc<SiteArgs>,
    range: std::ops::Range<u64>,
) -> Result<(Vec<Vec<u8>>, u64), String> {
    let next = Arc::new(AtomicU64::new(range.start));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..IN_FLIGHT {
        let (client, site, next) = (client.clone(), Arc::clone(site), Arc::clone(&next));
        let end = range.end;
        tasks.spawn(async move {
            let (mut bodies, mut failed) = (Vec::new(), 0u64);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= end {
                    break;
                }
                let body = match client.get(site.page_url(i)).send().await {
                    Ok(resp) if resp.status().is_success() => resp.bytes().await.ok(),
                    _ => None,
                };
                match body {
                    Some(body) => bodies.push(body.to_vec()),
                    None => failed += 1,
                }
            }
            (bodies, failed)
        });
    }
    let (mut bodies, mut failed) = (Vec::new(), 0);
    while let Some(done) = tasks.join_next().await {
        let (b, f) = done.map_err(|e| format!("a download task failed: {e}"))?;
        bodies.extend(b);
        failed += f;
    }
    Ok((bodies, failed))
}
