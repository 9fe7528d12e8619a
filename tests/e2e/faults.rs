//! The fault matrix (issue 8): one crawl per hazard of the hostile web, each through the
//! binary as a user runs it. Every case checks the same four things: the crawl ends
//! (exit 0, within [`CPU_BOUND`] of CPU time), the site's ordinary pages are all stored,
//! the hazard has the row it should, and the crawler's peak memory stays under
//! [`MEMORY_BOUND_MIB`].
//!
//! Peak memory is the kernel's high-water mark of the crawler's resident set (`VmHWM` in
//! `/proc/<pid>/status`), read every [`SAMPLE_EVERY`] while it runs: being a high-water
//! mark, a sample misses only a peak reached in the process's last moments, after its
//! pages are stored. (`wait4`'s `ru_maxrss` would need no sampling, but Linux counts into
//! it the memory of the process that spawned the child, here the whole test binary.)

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::hostile::{calendar, deeper, sessions};
use super::raw::{Ending, RawReply, RawSite};
use super::site::{brotli, gzip, Resource, SiteBuilder, TestSite};
use super::{Db, Harness, PageRow};

/// The most resident memory a crawl of one hazard may take. A crawl of a small, harmless
/// site peaks near 30 MiB (a debug build); a hazard that got through — a bomb decoded in
/// memory, a document tree of 100,000 levels — would go far past this.
const MEMORY_BOUND_MIB: u64 = 96;

/// The most CPU time (user and system) a crawl of one hazard may take, a debug build:
/// work that grows with the hazard, like a quadratic parse, goes far past this. CPU time,
/// not the time on the clock, which a busy machine stretches several times over (the
/// 64 MiB sitemap of `&` took 39 s by the clock on two cores shared with other builds);
/// a crawl that waits instead is held to [`KILL_AFTER`], and each waiting hazard's row
/// says what cut it.
const CPU_BOUND: Duration = Duration::from_secs(30);

/// How often the crawler's memory high-water mark is read.
const SAMPLE_EVERY: Duration = Duration::from_millis(5);

/// A crawl (or other run) still running after this is killed and the test fails.
const KILL_AFTER: Duration = Duration::from_secs(90);

/// The ordinary pages every case's site has besides its hazard.
const ORDINARY: [&str; 3] = ["/page/1", "/page/2", "/page/3"];

/// `fetch.max_body_bytes` by default: where bombs and endless bodies are cut.
const BODY_CAP: i64 = 5 * 1024 * 1024;

/// A site of three ordinary pages and one hazard, and the harness that crawls it.
pub(super) struct Fault {
    harness: Harness,
    site: TestSite,
}

impl Fault {
    /// `hazard` adds its resources to the site (on host `authority`) and returns the
    /// hrefs the home page links to it by.
    pub(super) async fn new(hazard: impl FnOnce(&mut SiteBuilder, &str) -> Vec<String>) -> Self {
        let mut b = SiteBuilder::bind(1).await;
        let h = b.authority(0);
        let mut home = "<title>Home</title>".to_owned();
        for (i, path) in ORDINARY.iter().enumerate() {
            home.push_str(&format!("<a href='{path}'>page</a>"));
            b.add(
                &h,
                path,
                Resource::Html(format!("<title>Ordinary {i}</title><a href='/'>home</a>")),
            );
        }
        for href in hazard(&mut b, &h) {
            home.push_str(&format!("<a href='{href}'>hazard</a>"));
        }
        b.add(&h, "/", Resource::Html(home));
        Self {
            harness: Harness::default(),
            site: b.start(),
        }
    }

    pub(super) fn url(&self, path: &str) -> String {
        self.site.url(0, path)
    }

    /// Crawls through the binary with the test defaults and `extra`, checks what every
    /// case checks, and returns the database.
    pub(super) async fn crawl(&self, extra: &str) -> Db {
        self.crawl_within(extra, MEMORY_BOUND_MIB).await
    }

    /// [`Fault::crawl`] for a hazard the crawler may spend more memory on, by design:
    /// peak memory is held to `memory_bound_mib`.
    async fn crawl_within(&self, extra: &str, memory_bound_mib: u64) -> Db {
        let text = self.harness.test_config_text(&[self.url("/")], extra);
        let config = self.harness.write_config(&text);
        let log = self.harness.dir.path().join("crawl.log");
        let run = tokio::task::spawn_blocking(move || crawl_measured(&config, &log))
            .await
            .expect("the crawl ran");
        println!(
            "peak resident memory {} KiB, {:?} of CPU in {:?}",
            run.peak_rss_kib, run.cpu, run.elapsed
        );
        assert!(
            run.peak_rss_kib < memory_bound_mib * 1024,
            "the crawler's peak memory was {} KiB, over the bound of {memory_bound_mib} MiB",
            run.peak_rss_kib
        );
        assert!(
            run.cpu < CPU_BOUND,
            "the crawl used {:?} of CPU, over {CPU_BOUND:?}",
            run.cpu
        );
        let db = self.harness.db().await;
        for (i, path) in ORDINARY.iter().enumerate() {
            let title = format!("Ordinary {i}");
            assert_eq!(
                db.page(&self.url(path)).await.and_then(|p| p.title),
                Some(title),
                "{path} is stored as if the hazard were not there"
            );
        }
        db
    }
}

/// What a run of the binary cost.
pub(super) struct Run {
    pub(super) peak_rss_kib: u64,
    /// CPU time, as last sampled before the crawler exited.
    cpu: Duration,
    elapsed: Duration,
}

/// Runs `pipecrawl crawl --config config` to its end, logging to `log`, measured as
/// [`measured`] measures.
fn crawl_measured(config: &Path, log: &Path) -> Run {
    measured(
        &["crawl".as_ref(), "--config".as_ref(), config.as_os_str()],
        log,
    )
}

/// Runs the binary with `args` to its end, its stderr to `log`, and samples its `VmHWM`
/// and CPU time every few milliseconds; panics unless it exits 0 within [`KILL_AFTER`].
pub(super) fn measured(args: &[&std::ffi::OsStr], log: &Path) -> Run {
    let log_file = std::fs::File::create(log).expect("create the log");
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pipecrawl"))
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .expect("start the pipecrawl binary");
    let status_file = format!("/proc/{}/status", child.id());
    let stat_file = format!("/proc/{}/stat", child.id());
    let read_log = || std::fs::read_to_string(log).unwrap_or_default();
    let mut peak_rss_kib = 0;
    let mut cpu = Duration::ZERO;
    loop {
        // Until it is reaped below, the pid stays this child's; once it has exited its
        // status has no VmHWM line, and the last sample stands.
        if let Some(kib) = std::fs::read_to_string(&status_file)
            .ok()
            .as_deref()
            .and_then(vm_hwm_kib)
        {
            peak_rss_kib = peak_rss_kib.max(kib);
        }
        if let Some(used) = std::fs::read_to_string(&stat_file)
            .ok()
            .as_deref()
            .and_then(super::cpu_ticks)
        {
            // A tick is 10 ms. The largest sample: one taken as the process exits may
            // read less.
            cpu = cpu.max(Duration::from_millis(used * 10));
        }
        if let Some(status) = child.try_wait().expect("poll the run") {
            assert!(
                status.success(),
                "{args:?} failed ({status}):\n{}",
                read_log()
            );
            assert!(peak_rss_kib > 0, "no memory sample was taken");
            return Run {
                peak_rss_kib,
                cpu,
                elapsed: started.elapsed(),
            };
        }
        if started.elapsed() > KILL_AFTER {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{args:?} was still running after {KILL_AFTER:?}:\n{}",
                read_log()
            );
        }
        std::thread::sleep(SAMPLE_EVERY);
    }
}

/// The `VmHWM:  1234 kB` line of a `/proc/<pid>/status`.
fn vm_hwm_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The row of `url`, which must have one.
async fn row(db: &Db, url: &str) -> PageRow {
    db.page(url)
        .await
        .unwrap_or_else(|| panic!("{url} has a row"))
}

// ---- traps ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_calendar_trap() {
    let f = Fault::new(|b, h| {
        b.add_prefix(h, "/cal", Resource::Dynamic(calendar));
        vec!["/cal?month=1".into()]
    })
    .await;
    let db = f.crawl("").await;
    // Month 1 is at depth 1; traps.family_depth_span (50) levels on, the family is a trap.
    let trap = row(&db, &f.url("/cal?month=52")).await;
    assert_eq!(
        (trap.status, trap.error_kind.as_deref()),
        (None, Some("trap"))
    );
    assert_eq!(f.site.count(&f.url("/cal?month=52")), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_session_id_loop() {
    let f = Fault::new(|b, h| {
        b.add_prefix(h, "/shop", Resource::Dynamic(sessions));
        vec!["/shop;jsessionid=FIRST".into()]
    })
    .await;
    let db = f.crawl("").await;
    // Session ids are stripped before a URL is queued: the loop is the shop and its item.
    assert_eq!(
        db.scalar("SELECT count(*) FROM pages WHERE url LIKE '%/shop%'")
            .await,
        2
    );
    assert_eq!(f.site.count(&f.url("/shop")), 1);
    assert!(f
        .site
        .hits()
        .iter()
        .all(|hit| !hit.path.to_ascii_lowercase().contains("sessid")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_ever_deeper_paths() {
    let f = Fault::new(|b, h| {
        b.add_prefix(h, "/more/", Resource::Dynamic(deeper));
        vec!["/more/".into()]
    })
    .await;
    let db = f.crawl("").await;
    // traps.max_repeated_segment = 3: the fourth `more` is a trap.
    let trap = row(&db, &f.url("/more/more/more/more/")).await;
    assert_eq!(
        (trap.status, trap.error_kind.as_deref()),
        (None, Some("trap"))
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM pages WHERE url LIKE '%/more/%' AND status = 200")
            .await,
        3
    );
}

/// A file browser whose pages link one folder deeper in a query value (`?dir=docs/docs`,
/// a relative link written into the parameter): the path rule stops `/a/a/a/a/`, and the
/// same walk in a query value ran to the URL length limit, a thousand fetches of one page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_ever_deeper_folders_in_a_query() {
    let f = Fault::new(|b, h| {
        b.add_prefix(h, "/files", Resource::Dynamic(folder));
        vec!["/files?dir=docs".into()]
    })
    .await;
    let db = f.crawl("").await;
    // traps.max_repeated_segment = 3: the fourth `docs` in the value is a trap.
    let trap = row(&db, &f.url("/files?dir=docs/docs/docs/docs")).await;
    assert_eq!(
        (trap.status, trap.error_kind.as_deref()),
        (None, Some("trap")),
        "{:?}",
        trap.error
    );
    assert!(
        trap.error
            .as_deref()
            .is_some_and(|e| e.contains("\"dir\"") && e.contains("\"docs\"")),
        "{:?}",
        trap.error
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM pages WHERE url LIKE '%/files%' AND status = 200")
            .await,
        3
    );
}

/// A folder listing linking to the folder it names, again, inside it.
fn folder(path: &str) -> String {
    let dir = path.split_once("dir=").map_or("", |(_, dir)| dir);
    format!("<title>{dir}</title><a href='/files?dir={dir}/docs'>docs</a>")
}

// ---- redirects ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_redirect_loop() {
    let f = Fault::new(|b, h| {
        b.add(h, "/loop/a", Resource::Redirect(302, "/loop/b".into()));
        b.add(h, "/loop/b", Resource::Redirect(302, "/loop/a".into()));
        vec!["/loop/a".into()]
    })
    .await;
    let db = f.crawl("").await;
    // Each hop is a frontier URL like any other: fetched once, so the loop ends there,
    // and the hop that closes it says so.
    for hop in ["/loop/a", "/loop/b"] {
        assert_eq!(f.site.count(&f.url(hop)), 1, "{hop}");
    }
    let first = row(&db, &f.url("/loop/a")).await;
    assert_eq!(
        (first.status, first.error_kind.as_deref()),
        (Some(302), None)
    );
    let closing = row(&db, &f.url("/loop/b")).await;
    assert_eq!(
        (closing.status, closing.error_kind.as_deref()),
        (Some(302), Some("redirect"))
    );
    assert_eq!(
        closing.error,
        Some(format!("a redirect loop: back to {}", f.url("/loop/a")))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_redirect_chain_of_30_hops() {
    let f = Fault::new(|b, h| {
        for i in 0..30 {
            let next = format!("/hop/{}", i + 1);
            b.add(h, &format!("/hop/{i}"), Resource::Redirect(301, next));
        }
        b.add(h, "/hop/30", Resource::Html("<title>End</title>".into()));
        vec!["/hop/0".into()]
    })
    .await;
    let db = f.crawl("").await;
    // fetch.max_redirects = 10: hops 0–9 are followed, the eleventh is refused.
    let last = row(&db, &f.url("/hop/10")).await;
    assert_eq!(
        (last.status, last.error_kind.as_deref()),
        (Some(301), Some("redirect"))
    );
    assert_eq!(f.site.count(&f.url("/hop/11")), 0);
    assert_eq!(
        db.scalar("SELECT count(*) FROM pages WHERE url LIKE '%/hop/%'")
            .await,
        11
    );
}

// ---- bodies ----

/// A gzip stream that inflates to 1 GiB of zero bytes, in about 1 MiB: one 1 MiB block of
/// zeros deflated and byte-aligned by a full flush, repeated 1024 times (the copies are
/// identical, as nothing refers back across a full flush), then an empty final block and
/// the trailer. Built once, without ever holding the gigabyte.
fn gzip_bomb() -> &'static [u8] {
    static BOMB: OnceLock<Vec<u8>> = OnceLock::new();
    BOMB.get_or_init(|| gzip_repeated(b"", 0, 1024))
}

/// A gzip stream of `prefix`, then `mib` MiB of `byte`, built as [`gzip_bomb`] is.
fn gzip_repeated(prefix: &[u8], byte: u8, mib: u32) -> Vec<u8> {
    let deflated = |bytes: &[u8]| {
        let mut deflate = flate2::Compress::new(flate2::Compression::best(), false);
        let mut block = Vec::with_capacity(1 << 16);
        deflate
            .compress_vec(bytes, &mut block, flate2::FlushCompress::Full)
            .expect("deflate in memory");
        let mut crc = flate2::Crc::new();
        crc.update(bytes);
        (block, crc)
    };
    let same = vec![byte; 1 << 20];
    let (block, piece) = deflated(&same);
    let (start, mut crc) = deflated(prefix);
    let mut bomb = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    bomb.extend_from_slice(&start);
    for _ in 0..mib {
        bomb.extend_from_slice(&block);
        crc.combine(&piece);
    }
    bomb.extend_from_slice(&[0x01, 0x00, 0x00, 0xff, 0xff]);
    bomb.extend_from_slice(&crc.sum().to_le_bytes());
    bomb.extend_from_slice(&crc.amount().to_le_bytes());
    bomb
}

/// A brotli stream that decodes to a title and then 1 GiB of spaces, in under 4 KiB. The
/// encoder, flushed after every 4 MiB of spaces, settles into writing the same bytes for
/// each (checked below); so those bytes repeated 256 times, then an empty last
/// meta-block, are the whole stream, built without ever holding the gigabyte.
fn brotli_bomb() -> Vec<u8> {
    let spaces = vec![b' '; 4 << 20];
    let mut encoder = brotli::CompressorWriter::new(Vec::new(), 1 << 16, 5, 24);
    let mut pieces = Vec::new();
    let mut written = 0;
    encoder
        .write_all(b"<title>Brotli bomb</title>")
        .expect("brotli into memory");
    for _ in 0..3 {
        encoder.write_all(&spaces).expect("brotli into memory");
        encoder.flush().expect("brotli into memory");
        pieces.push(encoder.get_ref()[written..].to_vec());
        written = encoder.get_ref().len();
    }
    assert_eq!(pieces[1], pieces[2], "the encoder repeats itself");
    let mut bomb = pieces[0].clone();
    for _ in 1..256 {
        bomb.extend_from_slice(&pieces[1]);
    }
    bomb.push(0x03);
    bomb
}

fn encoded(coding: &str, body: Vec<u8>) -> Resource {
    Resource::WithHeaders(
        vec![("content-encoding".into(), coding.into())],
        Box::new(Resource::Typed("text/html", body)),
    )
}

/// Serves `bomb`, 1 GiB of zeros in `coding`, and checks that it was cut at
/// fetch.max_body_bytes and told binary: recorded by its declared (compressed) size, not
/// parsed. `truncated` says the cap was met: the first piece a loopback connection brings
/// decodes past it, before the binary check's first kilobyte and a half ends the read.
async fn zero_bomb_is_cut(coding: &'static str, bomb: Vec<u8>) {
    let declared = i64::try_from(bomb.len()).ok();
    let f = Fault::new(|b, h| {
        b.add(h, "/bomb", encoded(coding, bomb));
        vec!["/bomb".into()]
    })
    .await;
    let db = f.crawl("").await;
    let bomb = row(&db, &f.url("/bomb")).await;
    assert_eq!(
        (
            bomb.status,
            bomb.truncated,
            bomb.bytes,
            bomb.error_kind.as_deref()
        ),
        (Some(200), true, declared, Some("binary"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_gzip_bomb() {
    zero_bomb_is_cut("gzip", gzip_bomb().to_vec()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_brotli_bomb() {
    let f = Fault::new(|b, h| {
        b.add(h, "/bomb.br", encoded("br", brotli_bomb()));
        vec!["/bomb.br".into()]
    })
    .await;
    let db = f.crawl("").await;
    // Cut at fetch.max_body_bytes after decompression; what was read is parsed.
    let bomb = row(&db, &f.url("/bomb.br")).await;
    assert_eq!(
        (
            bomb.status,
            bomb.truncated,
            bomb.bytes,
            bomb.error_kind.as_deref()
        ),
        (Some(200), true, Some(BODY_CAP), None)
    );
    assert_eq!(bomb.title.as_deref(), Some("Brotli bomb"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_one_byte_per_second_drip() {
    let f = Fault::new(|b, h| {
        b.add(h, "/drip", Resource::Drip(Duration::from_secs(1), 600));
        vec!["/drip".into()]
    })
    .await;
    let db = f.crawl("").await;
    // fetch.min_bytes_per_sec (1024) after a 3 s start: cut off within seconds, not at
    // the end of fetch.timeout_ms.
    let drip = row(&db, &f.url("/drip")).await;
    let by_the_rate = drip
        .error
        .as_deref()
        .is_some_and(|e| e.contains("min_bytes_per_sec"));
    assert_eq!(
        (drip.status, drip.error_kind.as_deref(), by_the_rate),
        (Some(200), Some("timeout"), true),
        "{:?}",
        drip.error
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_endless_body() {
    let f = Fault::new(|b, h| {
        b.add(
            h,
            "/endless",
            Resource::Endless("<title>Endless</title><a href='/page/1'>one</a>".into()),
        );
        vec!["/endless".into()]
    })
    .await;
    let db = f.crawl("").await;
    let endless = row(&db, &f.url("/endless")).await;
    assert_eq!(
        (endless.status, endless.truncated, endless.bytes),
        (Some(200), true, Some(BODY_CAP))
    );
    assert_eq!(endless.title.as_deref(), Some("Endless"));
}

/// Serves `reply` (a body that breaks off) from a raw host and checks that the page was
/// cut off (`body`), which is transient, so requested once more.
async fn broken_body_is_cut_off_and_retried(reply: RawReply) {
    let raw = RawSite::start(vec![("/broken", reply)]).await;
    let broken = raw.url("/broken");
    let f = Fault::new(|_, _| vec![broken.clone()]).await;
    let db = f
        .crawl("[retry]\nmax_attempts = 2\nbase_delay_ms = 10\nmax_delay_ms = 10\n")
        .await;
    let row = row(&db, &broken).await;
    assert_eq!(
        (row.status, row.error_kind.as_deref(), row.title),
        (Some(200), Some("body"), None),
        "{:?}",
        row.error
    );
    assert_eq!(raw.count("/broken"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_content_length_lie_of_1_gb() {
    broken_body_is_cut_off_and_retried(RawReply::new(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 1073741824",
        "<title>A lie</title><a href='/elsewhere'>x</a>",
        Ending::Close,
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_connection_reset_mid_body() {
    broken_body_is_cut_off_and_retried(RawReply::new(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 100000",
        "<title>Reset</title><p>the rest never comes",
        Ending::Reset,
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_oversized_response_heads() {
    let filler = |n: usize, size: usize| -> String {
        (0..n)
            .map(|i| format!("\r\nX-Filler-{i}: {}", "f".repeat(size)))
            .collect()
    };
    let reply = |extra: String| html_with_headers("<title>x</title>", &extra);
    let raw = RawSite::start(vec![
        // 80 KiB of headers, over fetch.max_header_bytes (64 KiB).
        ("/big-head", reply(filler(40, 2048))),
        // 1,000 headers, over fetch.max_headers (100).
        ("/many-headers", reply(filler(1000, 4))),
        // A 1 MiB head: more than HTTP/1 reads at all.
        ("/huge-head", reply(filler(256, 4096))),
        ("/fine", reply(filler(20, 100))),
    ])
    .await;
    let paths = ["/big-head", "/many-headers", "/huge-head", "/fine"];
    let urls: Vec<String> = paths.iter().map(|p| raw.url(p)).collect();
    let f = Fault::new(|_, _| urls.clone()).await;
    let db = f.crawl("").await;
    for url in &urls[..3] {
        let r = row(&db, url).await;
        assert_eq!(
            (r.status, r.error_kind.as_deref()),
            (None, Some("headers")),
            "{url}: {:?}",
            r.error
        );
    }
    let fine = row(&db, &urls[3]).await;
    assert_eq!((fine.status, fine.title.as_deref()), (Some(200), Some("x")));
}

/// A 200 of HTML `body` with the header lines `extra` (each after a CRLF) added.
fn html_with_headers(body: &str, extra: &str) -> RawReply {
    RawReply::new(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}{extra}",
            body.len()
        ),
        body,
        Ending::Close,
    )
}

// ---- markup ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_invalid_utf8() {
    let f = Fault::new(|b, h| {
        let mut body = b"<title>Caf\xc3 \xff\xfe ok</title>\xed\xa0\x80".to_vec();
        body.extend_from_slice(b"<a href='/page/2'>on\xc0ward</a>");
        b.add(
            h,
            "/mojibake",
            Resource::Typed("text/html; charset=utf-8", body),
        );
        vec!["/mojibake".into()]
    })
    .await;
    let db = f.crawl("").await;
    // Decoded with replacement characters; the page is parsed like any other.
    let page = row(&db, &f.url("/mojibake")).await;
    assert_eq!(
        (
            page.status,
            page.error_kind.as_deref(),
            page.title.as_deref()
        ),
        (Some(200), None, Some("Caf\u{fffd} \u{fffd}\u{fffd} ok"))
    );
    assert!(db.links().await.contains(&(
        f.url("/mojibake"),
        f.url("/page/2"),
        "on\u{fffd}ward".into()
    )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_100k_nested_divs() {
    let n = 100_000;
    let f = Fault::new(|b, h| {
        let html = format!(
            "<title>Deep</title>{}<a href='/deep-target'>deep</a>{}",
            "<div>".repeat(n),
            "</div>".repeat(n)
        );
        b.add(h, "/deep", Resource::Html(html));
        b.add(
            h,
            "/deep-target",
            Resource::Html("<title>Found</title>".into()),
        );
        vec!["/deep".into()]
    })
    .await;
    let db = f.crawl("").await;
    // Parsed in time linear in its size, its link found and followed.
    let deep = row(&db, &f.url("/deep")).await;
    assert_eq!(
        (
            deep.status,
            deep.error_kind.as_deref(),
            deep.title.as_deref()
        ),
        (Some(200), None, Some("Deep"))
    );
    assert_eq!(
        row(&db, &f.url("/deep-target")).await.title.as_deref(),
        Some("Found")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_50k_links_on_one_page() {
    let f = Fault::new(|b, h| {
        let links: String = (0..50_000)
            .map(|i| format!("<a href='/l/{i}'>link {i}</a>\n"))
            .collect();
        b.add(
            h,
            "/links",
            Resource::Html(format!("<title>Links</title>{links}")),
        );
        vec!["/links".into()]
    })
    .await;
    // Depth 1 keeps the crawl to the page itself: the case is the page, not its targets.
    let db = f.crawl("[scope]\nmax_depth = 1\n").await;
    let page = row(&db, &f.url("/links")).await;
    assert_eq!(
        (
            page.status,
            page.error_kind.as_deref(),
            page.title.as_deref()
        ),
        (Some(200), None, Some("Links"))
    );
    // traps.max_links_per_page = 10,000: the first ten thousand are kept, the rest counted.
    assert_eq!(links_from(&db, &f.url("/links")).await, 10_000);
    let left_out = format!(
        "SELECT links_left_out FROM pages WHERE url = '{}'",
        f.url("/links")
    );
    assert_eq!(db.scalar(&left_out).await, 40_000);
}

/// Pages each larger than `channels.max_bytes` allows a queue to hold go through one at
/// a time: the queues between the stages are bounded in bytes as well as in pages, and a
/// value heavier than its queue's whole budget takes all of it rather than waiting for
/// room that never comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_pages_larger_than_the_queues_hold() {
    const PAGES: usize = 40;
    let filler = "x".repeat(1024 * 1024);
    let f = Fault::new(|b, h| {
        (0..PAGES)
            .map(|i| {
                let path = format!("/large/{i}");
                let links = "<a href='/'>home</a>".repeat(2000);
                let page = format!("<title>Large {i}</title>{links}<p>{filler}</p>");
                b.add(h, &path, Resource::Html(page));
                path
            })
            .collect()
    })
    .await;
    // 128 KiB for bodies, 128 KiB for parsed pages: less than one of either. Eight
    // bodies of 1 MiB are read at once, and the allocator keeps what pages freed for a
    // while: more than a small page's crawl takes.
    let db = f
        .crawl_within(
            "[politeness]\ndelay_ms = 0\nper_host_concurrency = 8\n\
             [channels]\nmax_bytes = 262144\n",
            128,
        )
        .await;
    for i in 0..PAGES {
        let url = f.url(&format!("/large/{i}"));
        assert_eq!(row(&db, &url).await.title, Some(format!("Large {i}")));
        assert_eq!(links_from(&db, &url).await, 1, "{url}");
    }
}

/// How many link rows the page at `url` has.
pub(super) async fn links_from(db: &Db, url: &str) -> i64 {
    db.scalar(&format!(
        "SELECT count(*) FROM links l JOIN pages p ON p.id = l.source_id WHERE p.url = '{url}'"
    ))
    .await
}

// ---- the address guard ----

/// Every host is in scope, so only the address guard stands between the crawl and them.
const ANY_HOST: &str = "[scope]\nhosts = [\"*\"]\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_redirect_to_cloud_metadata() {
    let metadata = "http://169.254.169.254/latest/meta-data/";
    let f = Fault::new(|b, h| {
        b.add(h, "/metadata", Resource::Redirect(302, metadata.into()));
        vec!["/metadata".into()]
    })
    .await;
    let db = f.crawl(ANY_HOST).await;
    let refused = row(&db, metadata).await;
    assert_eq!(
        (refused.status, refused.error_kind.as_deref()),
        (None, Some("address_refused"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_link_to_a_private_address() {
    let router = "http://10.0.0.1/admin";
    let f = Fault::new(|_, _| vec![router.into()]).await;
    let db = f.crawl(ANY_HOST).await;
    let refused = row(&db, router).await;
    assert_eq!(
        (refused.status, refused.error_kind.as_deref()),
        (None, Some("address_refused"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_host_name_resolving_to_loopback() {
    let mut by_name = String::new();
    let f = Fault::new(|b, h| {
        let port = h.rsplit(':').next().unwrap_or_default();
        by_name = format!("http://localhost:{port}/secret");
        b.add(h, "/secret", Resource::Html("<title>Secret</title>".into()));
        vec![by_name.clone()]
    })
    .await;
    let db = f.crawl(ANY_HOST).await;
    let refused = row(&db, &by_name).await;
    assert_eq!(
        (refused.status, refused.error_kind.as_deref()),
        (None, Some("address_refused"))
    );
    assert_eq!(f.site.count(&f.url("/secret")), 0, "nothing connected");
}

/// A URL family is a URL without its numbers (README): pages a site tells apart by the
/// words of a query value — a wiki's `doku.php?id=start`, `?id=syntax` — are different
/// families, so a family budget meant for calendars and pagers does not cut a wiki short.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_values_in_words_make_different_url_families() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    let names = [
        "syntax",
        "welcome",
        "plugins",
        "templates",
        "faq",
        "history",
    ];
    let links: String = names
        .iter()
        .map(|n| format!("<a href='/doku.php?id={n}'>{n}</a>"))
        .collect();
    b.add(&h, "/doku.php?id=start", Resource::Html(links));
    for n in names {
        b.add(
            &h,
            &format!("/doku.php?id={n}"),
            Resource::Html(format!("<title>{n}</title>")),
        );
    }
    let site = b.start();
    let harness = Harness::default();
    harness
        .crawl(
            &[site.url(0, "/doku.php?id=start")],
            "[traps]\nfamily_budget = 3\n",
        )
        .await;
    let db = harness.db().await;
    assert_eq!(
        db.scalar("SELECT count(*) FROM pages WHERE error_kind = 'trap'")
            .await,
        0
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM pages WHERE status = 200")
            .await,
        7
    );
}

/// A zlib stream (what `Content-Encoding: deflate` means) that inflates to 1 GiB of zeros:
/// the gzip bomb's deflate blocks between a zlib header and an Adler-32 trailer.
fn deflate_bomb() -> Vec<u8> {
    let gzip = gzip_bomb();
    let blocks = &gzip[10..gzip.len() - 8];
    let mut bomb = vec![0x78, 0xda];
    bomb.extend_from_slice(blocks);
    // Adler-32 of n zero bytes: a = 1, b = n mod 65521.
    let b = (1u32 << 30) % 65521;
    bomb.extend_from_slice(&((b << 16) | 1).to_be_bytes());
    bomb
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_deflate_bomb() {
    zero_bomb_is_cut("deflate", deflate_bomb()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_robots_txt_gzip_bomb() {
    let f = Fault::new(|b, h| {
        b.add(h, "/robots.txt", encoded("gzip", gzip_bomb().to_vec()));
        Vec::new()
    })
    .await;
    // robots.txt is read up to 500 KiB after decompression: no rules, so every page is
    // fetched (Fault::crawl checks them).
    f.crawl("").await;
}

/// A sitemap that is itself gzipped (`sitemap.xml.gz`), 1 GiB of zeros inside: read up
/// to the protocol's 50 MiB uncompressed (README), so the crawl may hold those 50 MiB
/// besides what any crawl holds, and no copy of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_gzipped_sitemap_bomb() {
    gzipped_sitemap_is_held_within(gzip_bomb().to_vec(), SITEMAP_MEMORY_BOUND_MIB).await;
}

/// The same of 64 MiB of bytes that are not UTF-8: each would become a three-byte U+FFFD,
/// 150 MiB of text from 50 MiB read, were the text not held to the 50 MiB as well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_gzipped_sitemap_of_invalid_utf8() {
    gzipped_sitemap_is_held_within(gzip_repeated(b"", 0xff, 64), SITEMAP_MEMORY_BOUND_MIB + 64)
        .await;
}

/// The same of an XML sitemap of 64 MiB of `&`: each would be read as `&amp;`, 250 MiB
/// of text from 50 MiB read, were the text not held to the 50 MiB as well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_gzipped_sitemap_of_bare_ampersands() {
    gzipped_sitemap_is_held_within(
        gzip_repeated(b"<urlset>", b'&', 64),
        SITEMAP_MEMORY_BOUND_MIB + 64,
    )
    .await;
}

/// Serves `gzipped` as the sitemap robots.txt names, and checks that the crawl held it
/// within `memory_bound_mib`.
async fn gzipped_sitemap_is_held_within(gzipped: Vec<u8>, memory_bound_mib: u64) {
    let f = Fault::new(|b, h| {
        b.add(
            h,
            "/robots.txt",
            Resource::Typed(
                "text/plain",
                format!("Sitemap: http://{h}/sitemap.xml.gz\n").into_bytes(),
            ),
        );
        b.add(
            h,
            "/sitemap.xml.gz",
            Resource::Typed("application/gzip", gzipped),
        );
        Vec::new()
    })
    .await;
    f.crawl_within("[scope]\nsitemaps = true\n", memory_bound_mib)
        .await;
    assert_eq!(f.site.count(&f.url("/sitemap.xml.gz")), 1);
}

/// What a crawl that reads one sitemap of the protocol's largest size may take: the
/// fault matrix's bound and 32 MiB, less than a second copy of those 50 MiB.
const SITEMAP_MEMORY_BOUND_MIB: u64 = MEMORY_BOUND_MIB + 32;

// ---- connections ----

/// A server whose kept-alive connections do not last: each connection's first request is
/// answered (a page titled by its path; robots.txt a 404) and the connection kept open,
/// and its second is read and the connection closed unanswered, as a server does whose
/// idle timeout ran out just as the request came.
async fn one_answer_per_connection() -> String {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the keep-alive listener");
    let authority = listener.local_addr().expect("its address").to_string();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Some(path) = read_request_path(&mut stream).await else {
                    return;
                };
                let reply = if path == "/robots.txt" {
                    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_owned()
                } else {
                    let body = format!("<title>{path}</title>");
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    )
                };
                if stream.write_all(reply.as_bytes()).await.is_ok() {
                    read_request_path(&mut stream).await;
                }
            });
        }
    });
    authority
}

/// The path of the next request head on `stream`; None when the client hung up.
async fn read_request_path(stream: &mut tokio::net::TcpStream) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 64 * 1024 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&request);
    text.split(' ').nth(1).map(str::to_owned)
}

/// A request on a kept-alive connection that the server closes instead of answering was
/// stored as a final `request` error: a page lost to the server's idle timeout, though
/// asked again on a new connection it answers. It is asked again at once, so even with
/// one attempt (the test default) every page is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_kept_alive_connection_closed_by_the_server() {
    let authority = one_answer_per_connection().await;
    let paths = ["/a", "/b", "/c"];
    let urls: Vec<String> = paths
        .iter()
        .map(|p| format!("http://{authority}{p}"))
        .collect();
    let f = Fault::new(|_, _| urls.clone()).await;
    let db = f
        .crawl("[politeness]\ndelay_ms = 0\nper_host_concurrency = 1\n")
        .await;
    stored_titled_by_their_paths(&db, &urls, paths).await;
}

/// Checks that each of `urls` is stored as a 200 without error, titled by its path.
async fn stored_titled_by_their_paths<'a>(
    db: &Db,
    urls: &[String],
    paths: impl IntoIterator<Item = &'a str>,
) {
    for (url, path) in urls.iter().zip(paths) {
        let r = row(db, url).await;
        assert_eq!(
            (r.status, r.title.as_deref(), r.error_kind.as_deref()),
            (Some(200), Some(path), None),
            "{url}: {:?}",
            r.error
        );
    }
}

/// A 200 HTML reply whose body is in Content-Encoding `coding`.
fn coded(coding: &str, body: &[u8]) -> RawReply {
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: {coding}\r\n\
         Content-Length: {}",
        body.len()
    );
    RawReply::new(head, body.to_vec(), Ending::Close)
}

/// `url`'s row, asserted stored 200 as `binary`, unread.
async fn stored_unread(db: &Db, url: &str) -> PageRow {
    let r = row(db, url).await;
    assert_eq!(
        (r.status, r.error_kind.as_deref(), r.title.as_deref()),
        (Some(200), Some("binary"), None),
        "{url}"
    );
    r
}

/// Header lines browsers read past: one folded onto a second line (obs-fold, which RFC
/// 9112 §5.2 has a user agent unfold), one whose value holds a control byte, one whose
/// name holds a space. Each lost its whole page as a final `request` error ("invalid
/// HTTP header parsed"), its title and links with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_malformed_header_lines() {
    let page =
        |title: &str, extra: &str| html_with_headers(&format!("<title>{title}</title>"), extra);
    let cases = [
        ("/folded", "\r\nX-Folded: first\r\n  second"),
        ("/control-byte", "\r\nX-Powered-By: PHP\x01"),
        ("/space-in-name", "\r\nX Frame Options: DENY"),
        ("/space-before-colon", "\r\nX-Cache : HIT"),
    ];
    each_page_is_read(&cases, page).await;
}

/// Serves the answer `reply` makes of each `(path, extra header lines)` of `cases` from
/// the raw-socket server, crawls them, and checks each is stored as a 200 titled by its
/// path.
async fn each_page_is_read(cases: &[(&str, &str)], reply: impl Fn(&str, &str) -> RawReply) {
    each_reply_is_read(
        cases
            .iter()
            .map(|(path, extra)| (*path, reply(path, extra)))
            .collect(),
    )
    .await;
}

/// Serves `routes` from the raw-socket server, crawls them, and checks each is stored as
/// a 200 titled by its path; returns the server, for what else a test asks of it.
async fn each_reply_is_read(routes: Vec<(&str, RawReply)>) -> RawSite {
    let paths: Vec<String> = routes.iter().map(|(path, _)| (*path).to_owned()).collect();
    let raw = RawSite::start(routes).await;
    let urls: Vec<String> = paths.iter().map(|path| raw.url(path)).collect();
    let f = Fault::new(|_, _| urls.clone()).await;
    let db = f.crawl("").await;
    stored_titled_by_their_paths(&db, &urls, paths.iter().map(String::as_str)).await;
    raw
}

/// A body whose `Content-Encoding` reqwest does not know by its spelling: `x-gzip` (RFC
/// 9110 reads it as `gzip`, Apache's stock config sends it) and `GZIP` (coding names know
/// no case) were passed on still compressed and stored as `binary`, their pages lost; a
/// coding the crawler cannot decode at all was read as if it were HTML, garbage and all;
/// a robots.txt in `x-gzip` was read as it came, its rules lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_content_encoding_spelled_otherwise_or_unknown() {
    let gzipped = |page: &str| {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(page.as_bytes()).expect("gzip in memory");
        gz.finish().expect("gzip in memory")
    };
    let raw = RawSite::start(vec![
        (
            "/x-gzip",
            coded("x-gzip", &gzipped("<title>/x-gzip</title>")),
        ),
        ("/GZIP", coded("GZIP", &gzipped("<title>/GZIP</title>"))),
        (
            "/compress",
            // LZW's magic, as `compress` output starts.
            coded("compress", b"\x1f\x9d\x90<title>Not decoded</title>"),
        ),
        (
            "/robots.txt",
            coded("x-gzip", &gzipped("User-agent: *\nDisallow: /hidden\n")),
        ),
    ])
    .await;
    let paths = ["/x-gzip", "/GZIP", "/compress", "/hidden"];
    let urls: Vec<String> = paths.iter().map(|p| raw.url(p)).collect();
    let f = Fault::new(|_, _| urls.clone()).await;
    let db = f.crawl("").await;
    stored_titled_by_their_paths(&db, &urls[..2], paths).await;
    let unknown = stored_unread(&db, &urls[2]).await;
    assert!(
        unknown
            .error
            .as_deref()
            .is_some_and(|e| e.contains("\"compress\"")),
        "{:?}",
        unknown.error
    );
    // robots.txt in x-gzip was read as it came: no rules, so everything was fetched.
    let hidden = row(&db, &urls[3]).await;
    assert_eq!(hidden.error_kind.as_deref(), Some("robots"));
    assert_eq!(raw.count("/hidden"), 0);
}

/// A page whose `Content-Type` comes twice (a framework's and a proxy's), or as a list,
/// is HTML to browsers when the last type named is (the Fetch standard's "extract a MIME
/// type"); the crawler took the first line, or the whole list as one type, and stored
/// such pages unread, their titles and links lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_content_type_twice_or_listed() {
    let cases = [
        (
            "/twice",
            "\r\nContent-Type: text/plain\r\nContent-Type: text/html",
        ),
        (
            "/listed",
            "\r\nContent-Type: text/plain, text/html; charset=utf-8",
        ),
        (
            "/any-last",
            "\r\nContent-Type: text/html\r\nContent-Type: */*",
        ),
    ];
    let reply = |path: &str, extra: &str| {
        let body = format!("<title>{path}</title>");
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}{extra}", body.len());
        RawReply::new(head, body, Ending::Close)
    };
    each_page_is_read(&cases, reply).await;
}

/// A server that takes its time and then hangs up unanswered, and never answers the
/// request sent again: the resend at once had a whole `fetch.timeout_ms` of its own, so
/// the answer took the time the server spent hanging up on top of the timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_slow_hang_up_then_silence_is_held_to_the_timeout() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the listener");
    let slow = format!(
        "http://{}/slow",
        listener.local_addr().expect("its address")
    );
    tokio::spawn(async move {
        let hung_up = std::sync::Arc::new(AtomicBool::new(false));
        while let Ok((mut stream, _)) = listener.accept().await {
            let hung_up = std::sync::Arc::clone(&hung_up);
            tokio::spawn(async move {
                if read_request_path(&mut stream).await.as_deref() == Some("/robots.txt") {
                    let not_found =
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
                    let _ = stream.write_all(not_found.as_bytes()).await;
                } else if !hung_up.swap(true, Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(1500)).await;
                } else {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                }
            });
        }
    });
    let f = Fault::new(|_, _| vec![slow.clone()]).await;
    let db = f.crawl("[fetch]\ntimeout_ms = 2000\n").await;
    let r = row(&db, &slow).await;
    assert_eq!(r.error_kind.as_deref(), Some("timeout"), "{:?}", r.error);
    let elapsed = db
        .scalar(&format!(
            "SELECT elapsed_ms FROM pages WHERE url = '{slow}'"
        ))
        .await;
    assert!(elapsed < 3000, "the answer took {elapsed} ms");
}

/// `Content-Encoding: deflate` is a zlib stream by RFC 9110, but some servers (old IIS,
/// hand-rolled handlers) send raw deflate under that name, and browsers read both. The
/// crawler stored a raw one as a `body` error and asked again at every attempt, for the
/// same answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_deflate_raw_or_zlib_is_read_as_browsers_read_it() {
    let compressed = |raw: bool, page: &str| {
        let level = flate2::Compression::fast();
        if raw {
            let mut w = flate2::write::DeflateEncoder::new(Vec::new(), level);
            w.write_all(page.as_bytes()).expect("deflate in memory");
            w.finish().expect("deflate in memory")
        } else {
            let mut w = flate2::write::ZlibEncoder::new(Vec::new(), level);
            w.write_all(page.as_bytes()).expect("deflate in memory");
            w.finish().expect("deflate in memory")
        }
    };
    let coded = |body: Vec<u8>| {
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: deflate\r\n\
             Content-Length: {}",
            body.len()
        );
        RawReply::new(head, body, Ending::Close)
    };
    let raw = each_reply_is_read(vec![
        ("/raw", coded(compressed(true, "<title>/raw</title>"))),
        ("/zlib", coded(compressed(false, "<title>/zlib</title>"))),
    ])
    .await;
    assert_eq!(raw.count("/raw"), 1, "asked again for the same answer");
}

/// A `Content-Encoding` that names no coding at all (`UTF-8`, a charset put in the wrong
/// header; `none`) is a misconfiguration browsers pass through, showing the body as it
/// came. Such pages were stored `binary`, unread, their titles and links lost; a body
/// in a real coding the crawler does not decode still is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_content_encoding_naming_no_coding_is_read_as_it_came() {
    let raw = RawSite::start(vec![
        (
            "/utf-8",
            coded("UTF-8", b"\n<!DOCTYPE html><title>/utf-8</title>"),
        ),
        (
            "/none",
            coded(
                "none",
                b"<?xml version=\"1.0\"?><html><title>/none</title></html>",
            ),
        ),
        (
            "/zstd",
            coded("zstd", b"\x28\xb5\x2f\xfd\x00<title>x</title>"),
        ),
    ])
    .await;
    let paths = ["/utf-8", "/none", "/zstd"];
    let urls: Vec<String> = paths.iter().map(|p| raw.url(p)).collect();
    let f = Fault::new(|_, _| urls.clone()).await;
    let db = f.crawl("").await;
    stored_titled_by_their_paths(&db, &urls[..2], paths).await;
    stored_unread(&db, &urls[2]).await;
}

/// A charset named on the first `Content-Type` line holds when a later line (a proxy's,
/// `add_header`'s) names the same type without one, as the Fetch standard's "extract a
/// MIME type" keeps it and browsers decode by it. Taking the last line alone lost it, and
/// a Shift_JIS page without a `<meta>` was stored as mojibake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_content_type_repeated_without_its_charset_keeps_it() {
    // `<title>日本語</title>` in Shift_JIS.
    let body = b"<title>\x93\xfa\x96\x7b\x8c\xea</title>".to_vec();
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=Shift_JIS\r\n\
         Content-Type: text/html\r\nContent-Length: {}",
        body.len()
    );
    let raw = RawSite::start(vec![("/sjis", RawReply::new(head, body, Ending::Close))]).await;
    let url = raw.url("/sjis");
    let f = Fault::new(|_, _| vec![url.clone()]).await;
    let db = f.crawl("").await;
    let r = row(&db, &url).await;
    assert_eq!(
        (r.status, r.title.as_deref(), r.error_kind.as_deref()),
        (Some(200), Some("日本語"), None)
    );
}

/// An empty body under `Content-Encoding: x-gzip` is an empty page, as one under
/// `gzip` is (the client decodes that one, and nothing is nothing): a page with no
/// content, and a robots.txt with no rules. Decoded by the crawler, it was a stream
/// cut short: the page a `body` error, retried and lost, the robots.txt unavailable and
/// its host's pages with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_an_empty_body_in_x_gzip_is_empty() {
    let raw = RawSite::start(vec![
        ("/robots.txt", coded("x-gzip", b"")),
        ("/empty", coded("x-gzip", b"")),
        ("/page", coded("identity", b"<title>/page</title>")),
    ])
    .await;
    let urls = vec![raw.url("/empty"), raw.url("/page")];
    let f = Fault::new(|_, _| urls.clone()).await;
    let db = f.crawl("").await;
    let empty = row(&db, &urls[0]).await;
    assert_eq!(
        (empty.status, empty.error_kind.as_deref()),
        (Some(200), None),
        "{:?}",
        empty.error
    );
    stored_titled_by_their_paths(&db, &urls[1..], ["/page"]).await;
}

/// A 200 of HTML `body` over HTTP/1.x `version`, whose end is the connection's close: no
/// `Content-Length`, no chunking.
fn ended_by_close(version: &str, content_type: &str, body: &str) -> RawReply {
    RawReply::new(
        format!("HTTP/{version} 200 OK\r\nContent-Type: {content_type}"),
        body,
        Ending::Close,
    )
}

/// An HTTPS answer whose end is the connection's close, from a server that closes without
/// a TLS `close_notify` (Python's `http.server` over TLS, embedded devices, old servers).
/// Browsers, curl and Go keep such a body: nothing of it is missing. It was a `body`
/// error, retried and lost; as robots.txt, unavailable, and every page of the host with it.
/// An HTTP/1.1 answer with no length has no end but the close (RFC 9112 §6.3), whatever
/// its `Connection` header says: one that did not say `close` stayed a `body` error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_https_body_ended_by_close_without_close_notify_is_kept() {
    let mut unsaid = ended_by_close("1.1", "text/html", "<title>/unsaid</title>");
    unsaid.head.extend_from_slice(b"\r\nConnection: keep-alive");
    let raw = RawSite::start_tls(vec![
        ("/unsaid", unsaid),
        (
            "/robots.txt",
            ended_by_close("1.1", "text/plain", "User-agent: *\nDisallow: /private\n"),
        ),
        (
            "/page",
            ended_by_close("1.1", "text/html", "<title>/page</title>"),
        ),
        (
            "/old",
            ended_by_close("1.0", "text/html", "<title>/old</title>"),
        ),
        (
            "/private",
            ended_by_close("1.1", "text/html", "<title>/private</title>"),
        ),
    ])
    .await;
    let urls = vec![
        raw.url("/page"),
        raw.url("/old"),
        raw.url("/unsaid"),
        raw.url("/private"),
    ];
    let f = Fault::new(|_, _| urls.clone()).await;
    let db = f.crawl("[fetch]\naccept_invalid_certs = true\n").await;
    stored_titled_by_their_paths(&db, &urls[..3], ["/page", "/old", "/unsaid"]).await;
    let private = row(&db, &urls[3]).await;
    assert_eq!(private.error_kind.as_deref(), Some("robots"));
    assert_eq!(raw.count("/private"), 0);
}

/// The same server's answers whose declared `Content-Length`, or chunking, was cut off
/// by the close: a body is missing, and it stays a `body` error, retried. So is a gzipped
/// one cut short of its length on a kept-alive connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_https_body_cut_off_without_close_notify_stays_an_error() {
    let page = format!("<title>/gzipped</title>{}", "<p>words</p>".repeat(20_000));
    let gzipped = gzip(page.as_bytes());
    let raw = RawSite::start_tls(vec![
        (
            "/length",
            RawReply::new(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 100000",
                "<title>/length</title>",
                Ending::Close,
            ),
        ),
        (
            "/chunked",
            RawReply::new(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked",
                "16\r\n<title>/chunked</title>\r\n100\r\nthe rest never",
                Ending::Close,
            ),
        ),
        (
            "/gzipped",
            RawReply::new(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\n\
                     Content-Length: {}\r\nConnection: keep-alive",
                    gzipped.len()
                ),
                &gzipped[..gzipped.len() / 2],
                Ending::Close,
            ),
        ),
    ])
    .await;
    let urls = vec![raw.url("/length"), raw.url("/chunked"), raw.url("/gzipped")];
    let f = Fault::new(|_, _| urls.clone()).await;
    let db = f.crawl(RETRIED_ONCE_OVER_TLS).await;
    each_cut_off_and_retried(&db, &raw, &urls, ["/length", "/chunked", "/gzipped"]).await;
}

/// A crawl of a self-signed HTTPS server, a failure retried once at once.
const RETRIED_ONCE_OVER_TLS: &str = "[fetch]\naccept_invalid_certs = true\n\
     [retry]\nmax_attempts = 2\nbase_delay_ms = 10\nmax_delay_ms = 10\n";

/// Checks each of `urls`, those of `raw`'s `paths`, is a 200 stored as a `body` error,
/// unread, and was asked twice.
async fn each_cut_off_and_retried<'a>(
    db: &Db,
    raw: &RawSite,
    urls: &[String],
    paths: impl IntoIterator<Item = &'a str>,
) {
    for (url, path) in urls.iter().zip(paths) {
        let r = row(db, url).await;
        assert_eq!(
            (r.status, r.error_kind.as_deref(), r.title),
            (Some(200), Some("body"), None),
            "{url}: {:?}",
            r.error
        );
        assert_eq!(raw.count(path), 2, "{path} is retried");
    }
}

/// A page saved with a UTF-8 byte order mark before its `<!DOCTYPE html>` (Windows
/// editors, ASP.NET) starts as markup all the same, and browsers show it: with a stray
/// NUL near its start, or under a `Content-Encoding` naming no coding (`UTF-8`). Both
/// were stored `binary`, unread, their titles and links lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_a_page_opening_with_a_utf8_bom_is_markup() {
    each_reply_is_read(vec![
        (
            "/stray-nul",
            RawReply::ok(
                "text/html",
                &b"\xef\xbb\xbf<!DOCTYPE html><meta name=x content='a\0b'><title>/stray-nul</title>"[..],
            ),
        ),
        (
            "/coded",
            coded("UTF-8", b"\xef\xbb\xbf<!DOCTYPE html><title>/coded</title>"),
        ),
    ])
    .await;
}

/// A body in `x-gzip` (or `GZIP`) with bytes after its gzip stream that start no member
/// of it (a newline a script printed after its compressed output, a server's zero
/// padding) is read as `gzip` reads it, and as browsers read it: those bytes ignored.
/// The crawler's own decoder took them for a stream cut short, and the page was a
/// `body` error, retried and lost, while the same bytes under `gzip` were read; a
/// robots.txt so sent was unavailable, and every page of its host with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_bytes_after_an_x_gzip_stream_are_ignored() {
    let gzipped = |text: &str, after: &[u8]| [gzip(text.as_bytes()), after.to_vec()].concat();
    let raw = RawSite::start(vec![
        (
            "/robots.txt",
            coded(
                "x-gzip",
                &gzipped("User-agent: *\nDisallow: /private\n", b"\n"),
            ),
        ),
        (
            "/newline",
            coded("x-gzip", &gzipped("<title>/newline</title>", b"\r\n")),
        ),
        (
            "/padding",
            coded("GZIP", &gzipped("<title>/padding</title>", &[0; 32])),
        ),
        (
            "/members",
            coded(
                "x-gzip",
                &[gzipped("<title>/mem", b""), gzipped("bers</title>", b"\n")].concat(),
            ),
        ),
        ("/private", coded("identity", b"<title>/private</title>")),
    ])
    .await;
    let paths = ["/newline", "/padding", "/members", "/private"];
    let urls: Vec<String> = paths.iter().map(|p| raw.url(p)).collect();
    let f = Fault::new(|_, _| urls.clone()).await;
    let db = f.crawl("").await;
    stored_titled_by_their_paths(&db, &urls[..3], paths).await;
    let private = row(&db, &urls[3]).await;
    assert_eq!(private.error_kind.as_deref(), Some("robots"));
    assert_eq!(raw.count("/private"), 0);
}

/// A page served whole in `coding` (made by `encode`), and the same page cut to half its
/// bytes, each over HTTP/1.x `version` and ended by the connection's close.
fn compressed_ended_by_close(
    version: &str,
    coding: &str,
    encode: fn(&[u8]) -> Vec<u8>,
    title: &str,
) -> [RawReply; 2] {
    let page = format!(
        "<title>{title}</title>{}",
        "<p><a href='/x'>x</a></p>".repeat(20_000)
    );
    let encoded = encode(page.as_bytes());
    let head =
        format!("HTTP/{version} 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: {coding}");
    let half = encoded[..encoded.len() / 2].to_vec();
    [
        RawReply::new(head.clone(), encoded, Ending::Close),
        RawReply::new(head, half, Ending::Close),
    ]
}

/// A gzip or brotli body whose end is the connection's close, from an HTTPS server that
/// closes without a TLS `close_notify`: kept whole when its stream ends, and a `body`
/// error, retried, when the close cuts it short of its stream's end (the gzip trailer,
/// brotli's last block), whatever the framing said. The client decompressed such a body
/// and dropped its `Content-Length`, so a cut one was stored as a 200 with half its links.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_https_compressed_body_cut_by_close_without_close_notify_is_an_error() {
    let [gzip_whole, gzip_cut] = compressed_ended_by_close("1.1", "gzip", gzip, "/gzip");
    let [br_whole, br_cut] = compressed_ended_by_close("1.1", "br", brotli, "/br");
    let [old_whole, old_cut] = compressed_ended_by_close("1.0", "gzip", gzip, "/old");
    let raw = RawSite::start_tls(vec![
        ("/gzip", gzip_whole),
        ("/br", br_whole),
        ("/old", old_whole),
        ("/gzip-cut", gzip_cut),
        ("/br-cut", br_cut),
        ("/old-cut", old_cut),
    ])
    .await;
    let whole = ["/gzip", "/br", "/old"];
    let cut = ["/gzip-cut", "/br-cut", "/old-cut"];
    let urls: Vec<String> = whole.iter().chain(&cut).map(|p| raw.url(p)).collect();
    let f = Fault::new(|_, _| urls.clone()).await;
    let db = f.crawl(RETRIED_ONCE_OVER_TLS).await;
    stored_titled_by_their_paths(&db, &urls[..3], whole).await;
    each_cut_off_and_retried(&db, &raw, &urls[3..], cut).await;
}

/// A body in `Content-Encoding: gzip` made of several gzip members (`cat a.gz b.gz`, a
/// server compressing its output in parts), which `gzip -d` and browsers read whole, is
/// read whole: the client read its first member only, and the page lost the rest (here
/// half its title). The crawler still asks for gzip and brotli.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_every_member_of_a_gzip_body_is_read() {
    let members = [gzip(b"<title>/mem"), gzip(b"bers</title>")].concat();
    let raw = each_reply_is_read(vec![("/members", coded("gzip", &members))]).await;
    let head = raw
        .head("/members")
        .expect("requested")
        .to_ascii_lowercase();
    assert!(head.contains("accept-encoding: gzip, br\r\n"), "{head}");
}

/// A page served as it is under `Content-Encoding: gzip` or `br` (a misconfigured
/// server, a script that sets the header and forgets to compress) is an error row, as
/// browsers show an error, saying what is wrong: the body is not the coding its header
/// names. Asked again in a second, it is the same, so it is not retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_a_plain_body_under_a_compressed_coding_says_so_and_is_not_retried() {
    let cases = [("/gzip", "gzip"), ("/br", "br"), ("/x-gzip", "x-gzip")];
    let raw = RawSite::start(
        cases
            .iter()
            .map(|(path, coding)| {
                let page = format!("<!DOCTYPE html><title>{path}</title><a href='/x'>x</a>");
                (*path, coded(coding, page.as_bytes()))
            })
            .collect(),
    )
    .await;
    let urls: Vec<String> = cases.iter().map(|(path, _)| raw.url(path)).collect();
    let f = Fault::new(|_, _| urls.clone()).await;
    let db = f
        .crawl("[retry]\nmax_attempts = 2\nbase_delay_ms = 10\nmax_delay_ms = 10\n")
        .await;
    for (url, (path, coding)) in urls.iter().zip(cases) {
        let r = stored_unread(&db, url).await;
        let error = r.error.unwrap_or_default();
        let says = format!("the body is not the {coding:?} named by its Content-Encoding");
        assert!(error.contains(&says), "{url}: {error}");
        assert_eq!(raw.count(path), 1, "{path} is not retried");
    }
}

/// A `Content-Encoding` list whose other entries are `identity` (a proxy or framework
/// that adds its own, a script that lists the codings it tried): one coding in all, which
/// browsers decode. It was a coding "not decoded", and the page was a `binary` row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_a_coding_listed_with_identity_is_decoded() {
    each_reply_is_read(vec![
        (
            "/gzip-identity",
            coded("gzip, identity", &gzip(b"<title>/gzip-identity</title>")),
        ),
        (
            "/identity-br",
            coded("identity,br", &brotli(b"<title>/identity-br</title>")),
        ),
    ])
    .await;
}

/// A body compressed twice, `Content-Encoding: gzip, gzip` (a server behind two
/// compressing proxies) or two codings one over the other (`gzip, br`: gzipped, then
/// brotli over it), is decoded last coding first, as browsers decode it; robots.txt so
/// sent is obeyed. It was a coding "not decoded": the page was a `binary` row, and
/// robots.txt was read as it came, its rules lost (a file long enough to compress: a
/// short one is stored in the clear, and its lines were read by chance).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_a_body_coded_twice_is_decoded() {
    let robots = format!(
        "User-agent: *\nDisallow: /private\n{}",
        "# the rules above are for every crawler\n".repeat(20)
    );
    let raw = RawSite::start(vec![
        (
            "/robots.txt",
            coded("gzip, gzip", &gzip(&gzip(robots.as_bytes()))),
        ),
        (
            "/gzip-gzip",
            coded("gzip, gzip", &gzip(&gzip(b"<title>/gzip-gzip</title>"))),
        ),
        (
            "/gzip-br",
            coded("x-gzip,BR", &brotli(&gzip(b"<title>/gzip-br</title>"))),
        ),
        ("/private", coded("identity", b"<title>/private</title>")),
    ])
    .await;
    let paths = ["/gzip-gzip", "/gzip-br", "/private"];
    let urls: Vec<String> = paths.iter().map(|p| raw.url(p)).collect();
    let f = Fault::new(|_, _| urls.clone()).await;
    let db = f.crawl("").await;
    stored_titled_by_their_paths(&db, &urls[..2], paths).await;
    assert_eq!(
        row(&db, &urls[2]).await.error_kind.as_deref(),
        Some("robots")
    );
    assert_eq!(raw.count("/private"), 0);
}

/// Codings named on two `Content-Encoding` lines (a compressing proxy that adds its own
/// line after the server's), which RFC 9110 §5.3 reads as one list in their order, as
/// browsers do: only the first line was read, so a body gzipped and then brotli'd was
/// "not the gzip named" (`binary`), and a gzipped body under `identity` then `gzip` was
/// taken as it came, its compressed bytes a `binary` page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_codings_named_on_two_content_encoding_lines_are_read_as_one_list() {
    each_reply_is_read(vec![
        (
            "/gzip-line-br-line",
            coded(
                "gzip\r\nContent-Encoding: br",
                &brotli(&gzip(b"<title>/gzip-line-br-line</title>")),
            ),
        ),
        (
            "/identity-line-gzip-line",
            coded(
                "identity\r\nContent-Encoding: gzip",
                &gzip(b"<title>/identity-line-gzip-line</title>"),
            ),
        ),
    ])
    .await;
}

/// `body` in the chunked framing, in chunks of at most 100 bytes.
fn chunked(body: &[u8]) -> Vec<u8> {
    let mut framed = Vec::new();
    for chunk in body.chunks(100) {
        framed.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        framed.extend_from_slice(chunk);
        framed.extend_from_slice(b"\r\n");
    }
    framed.extend_from_slice(b"0\r\n\r\n");
    framed
}

/// A body in a transfer coding besides chunked (`Transfer-Encoding: gzip, chunked`,
/// RFC 9112 §7, which curl's `--tr-encoding` reads): the HTTP client takes the chunks
/// apart and leaves the gzip stream, and the page was a `binary` row as if the server
/// had sent an image as HTML. It is decoded as a content coding is; one the crawler does
/// not decode is `binary`, its row naming the Transfer-Encoding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_a_body_in_a_transfer_coding_is_decoded() {
    let head = |codings: &str| {
        format!("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: {codings}")
    };
    let raw = RawSite::start(vec![
        (
            "/gzip",
            RawReply::new(
                head("gzip, chunked"),
                chunked(&gzip(b"<title>/gzip</title>")),
                Ending::Close,
            ),
        ),
        (
            "/compress",
            RawReply::new(
                head("compress, chunked"),
                chunked(b"\x1f\x9d\x90<title>x</title>"),
                Ending::Close,
            ),
        ),
    ])
    .await;
    let urls = vec![raw.url("/gzip"), raw.url("/compress")];
    let f = Fault::new(|_, _| urls.clone()).await;
    let db = f.crawl("").await;
    stored_titled_by_their_paths(&db, &urls[..1], ["/gzip"]).await;
    let error = stored_unread(&db, &urls[1]).await.error.unwrap_or_default();
    assert!(error.contains("Transfer-Encoding"), "{error}");
}

/// A gzip stream of `blocks` empty stored blocks (five bytes each) that decodes to
/// nothing at all: endless bytes that never reach a cap counted after decompression.
fn gzip_of_empty_blocks(blocks: usize) -> Vec<u8> {
    let mut gz = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    for _ in 0..blocks {
        gz.extend_from_slice(&[0, 0, 0, 0xff, 0xff]);
    }
    // The last block, fixed and empty; the CRC-32 and the length of nothing.
    gz.extend_from_slice(&[3, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    gz
}

/// A compressed body far larger than fetch.max_body_bytes that decodes to nothing:
/// the cap counted only decoded bytes, so all 16 MiB were downloaded and decompressed
/// (and an endless one was read to fetch.timeout_ms), and stored as a whole empty page.
/// The compressed bytes are held to the cap too: the page is cut there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_compressed_bytes_that_decode_to_nothing_are_cut_at_the_cap() {
    let f = Fault::new(|b, h| {
        b.add(
            h,
            "/nothing",
            encoded("gzip", gzip_of_empty_blocks((16 << 20) / 5)),
        );
        vec!["/nothing".into()]
    })
    .await;
    let db = f.crawl("[fetch]\nmax_body_bytes = 1048576\n").await;
    let nothing = row(&db, &f.url("/nothing")).await;
    assert_eq!(
        (
            nothing.status,
            nothing.truncated,
            nothing.error_kind.as_deref()
        ),
        (Some(200), true, None),
        "{:?}",
        nothing.error
    );
}

/// A robots.txt sent as plain text under `Content-Encoding: gzip` (a server that names
/// the coding for every file, a cache that stored the header without the compression):
/// its rules are there to read, and are obeyed. It did not decode, so robots.txt was
/// unavailable: no page of the host was fetched, and robots.txt was asked for again and
/// again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_a_plain_robots_txt_under_a_compressed_coding_is_obeyed() {
    let raw = RawSite::start(vec![
        (
            "/robots.txt",
            coded("gzip", b"User-agent: *\nDisallow: /private\n"),
        ),
        ("/public", coded("identity", b"<title>/public</title>")),
        ("/private", coded("identity", b"<title>/private</title>")),
    ])
    .await;
    let urls = vec![raw.url("/public"), raw.url("/private")];
    let f = Fault::new(|_, _| urls.clone()).await;
    let db = f.crawl("").await;
    stored_titled_by_their_paths(&db, &urls[..1], ["/public"]).await;
    assert_eq!(
        row(&db, &urls[1]).await.error_kind.as_deref(),
        Some("robots")
    );
    assert_eq!(raw.count("/private"), 0);
}

/// A `deflate` body that came whole to its `Content-Length` but stops short of its
/// stream's end is cut off (`body`, retried), as a gzip or brotli one is: a zlib stream
/// without its Adler-32 trailer, a raw one halfway, and one of a single byte, too short
/// to tell a zlib header by.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_a_deflate_body_cut_short_of_its_stream_is_cut_off() {
    let page = format!("<title>x</title>{}", "<p>words</p>".repeat(1000));
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    zlib.write_all(page.as_bytes()).expect("deflate in memory");
    let zlib = zlib.finish().expect("deflate in memory");
    let raw_deflate = &zlib[2..zlib.len() - 4];
    let paths = ["/no-trailer", "/half", "/one-byte"];
    let raw = RawSite::start(vec![
        (paths[0], coded("deflate", &zlib[..zlib.len() - 4])),
        (
            paths[1],
            coded("deflate", &raw_deflate[..raw_deflate.len() / 2]),
        ),
        (paths[2], coded("deflate", &zlib[..1])),
    ])
    .await;
    let urls: Vec<String> = paths.iter().map(|p| raw.url(p)).collect();
    let f = Fault::new(|_, _| urls.clone()).await;
    let db = f
        .crawl("[retry]\nmax_attempts = 2\nbase_delay_ms = 10\nmax_delay_ms = 10\n")
        .await;
    each_cut_off_and_retried(&db, &raw, &urls, paths).await;
}
