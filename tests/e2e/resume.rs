//! Crash safety and graceful shutdown, through the binary: kill -9 at several moments
//! and SIGTERM must both leave a database that a restart completes, equal to an
//! uninterrupted crawl.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::SqlitePool;

use super::cluster::run_to_the_end;
use super::graph::{self, Model, Rules};
use super::site::{Resource, SiteBuilder, TestSite};
use super::Harness;

/// Small channels and batches, so few pages are ever between fetch and commit: the
/// pages a kill can cost are bounded by these.
/// A window small beside the site, so the queue is longer than it and discovered URLs
/// wait in `frontier_staged` between merges.
const CONFIG: &str = "[fetch]\nworkers = 8\n[channels]\nto_fetch = 8\nto_parse = 8\nto_store = 8\n\
[politeness]\ndelay_ms = 0\nper_host_concurrency = 4\n[retry]\nmax_attempts = 1\n\
[frontier]\nwindow = 32\n";

/// A home page and six pages, every answer `delay` late.
async fn slow_site(delay: Duration) -> TestSite {
    let (mut b, h) = home_and_six_pages(|home| home).await;
    b.delay_host(&h, delay);
    b.start()
}

/// [`slow_site`]'s pages, the home page answered only once `gate` opens: a request out
/// for as long as the test needs, however slow the machine.
async fn held_site(gate: tokio::sync::watch::Receiver<bool>) -> TestSite {
    let (b, _) = home_and_six_pages(|home| Resource::Held(gate, Box::new(home))).await;
    b.start()
}

/// A host serving a home page, as `home` makes it of its HTML, that links to six pages.
async fn home_and_six_pages(home: impl FnOnce(Resource) -> Resource) -> (SiteBuilder, String) {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    let links: String = (0..6).map(|i| format!("<a href='/{i}'>{i}</a>")).collect();
    b.add(&h, "/", home(Resource::Html(links)));
    for i in 0..6 {
        b.add(
            &h,
            &format!("/{i}"),
            Resource::Html("<title>x</title>".into()),
        );
    }
    (b, h)
}

pub(super) async fn big_site() -> (TestSite, Model) {
    big_site_answering_in(Duration::from_millis(3)).await
}

/// [`big_site`], every answer `delay` late.
async fn big_site_answering_in(delay: Duration) -> (TestSite, Model) {
    let mut b = SiteBuilder::bind(3).await;
    let model = graph::generate(&mut b, 3, 700, 0xc0ffee);
    for h in 0..3 {
        let authority = b.authority(h);
        b.delay_host(&authority, delay);
    }
    (b.start(), model)
}

pub(super) fn expected(site: &TestSite, model: &Model) -> BTreeSet<String> {
    model
        .reachable(&Rules {
            hosts: &site.authorities,
            include: None,
            exclude: None,
            max_depth: None,
        })
        .into_keys()
        .collect()
}

fn start(harness: &Harness, seeds: &[String], extra: &str) -> Child {
    let text = harness.config_text(seeds, &format!("{CONFIG}{extra}"));
    spawn_crawl(&harness.write_config(&text))
}

/// `pipecrawl crawl --config config`, quiet.
fn spawn_crawl(config: &Path) -> Child {
    spawn("crawl", config)
}

/// `pipecrawl crawl --config config`, logging at `level` to its piped stderr.
fn spawn_crawl_piped(config: &Path, level: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_pipecrawl"))
        .args(["crawl", "--config"])
        .arg(config)
        .env("RUST_LOG", level)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pipecrawl")
}

/// `pipecrawl command --config config`, quiet.
pub(super) fn spawn(command: &str, config: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_pipecrawl"))
        .args([command, "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start pipecrawl")
}

/// Waits (up to 60 s) until the site has answered `n` page requests.
pub(super) async fn wait_for_requests(site: &TestSite, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while site.hits().len() < n {
        assert!(
            Instant::now() < deadline,
            "the crawl stalled before {n} requests"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until the site has heard no request for two seconds, and says how many it had
/// heard then: a crawl that cannot store fills its channels and stops asking. Draining
/// them took up to 0.6 s under load; a fixed wait before a fixed window would fail a
/// slower machine, so the deadline (a minute) is for fetching that never stops.
pub(super) async fn requests_once_quiet(site: &TestSite) -> usize {
    const QUIET: Duration = Duration::from_secs(2);
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut heard, mut since) = (site.hit_count(), Instant::now());
    while since.elapsed() < QUIET {
        assert!(
            Instant::now() < deadline,
            "fetching went on for a minute: {heard} requests"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = site.hit_count();
        if now != heard {
            (heard, since) = (now, Instant::now());
        }
    }
    heard
}

async fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("poll pipecrawl") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "pipecrawl did not exit within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// How many times each page URL (robots.txt aside) was requested.
pub(super) fn request_counts(site: &TestSite) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for url in site.requested_urls() {
        if !url.ends_with("/robots.txt") {
            *counts.entry(url).or_default() += 1;
        }
    }
    counts
}

pub(super) async fn assert_complete_and_single(harness: &Harness, want: &BTreeSet<String>) {
    let db = harness.db().await;
    let stored: BTreeSet<String> = db.pages().await.into_iter().map(|p| p.url).collect();
    assert_eq!(
        &stored, want,
        "the resumed crawl's pages differ from an uninterrupted one"
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM frontier WHERE state IN ('leased', 'queued')")
            .await,
        0
    );
    let duplicate_links = db
        .scalar("SELECT count(*) FROM (SELECT 1 FROM links GROUP BY source_id, target_url, anchor_text HAVING count(*) > 1)")
        .await;
    assert_eq!(duplicate_links, 0, "a page's links were stored twice");
    assert_eq!(
        db.wrong_link_counts().await,
        0,
        "in-link and anchor counts agree with the links"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_any_moment_loses_nothing_and_stores_nothing_twice() {
    let (site, model) = big_site().await;
    let want = expected(&site, &model);
    assert!(want.len() > 2000, "the site is {} pages", want.len());
    let harness = Harness::default();

    let kills = [150, 600, 1100, 1600];
    let (mut counts_behind, mut staged) = (0, 0);
    for at in kills {
        let mut child = start(&harness, &model.seeds, "");
        wait_for_requests(&site, at).await;
        child.kill().expect("kill -9 pipecrawl");
        child.wait().expect("reap pipecrawl");
        let db = harness.db().await;
        counts_behind += db
            .scalar("SELECT value FROM writer_state WHERE key = 'link_counts_behind'")
            .await;
        staged += db.scalar("SELECT count(*) FROM frontier_staged").await;
    }
    // The writer applies link counts every few seconds: a kill between two flushes
    // leaves them behind, and the next start must rebuild them.
    assert!(counts_behind > 0, "no kill caught the link counts behind");
    // New URLs wait in `frontier_staged` while the queue is longer than the window: a
    // kill leaves them there, and the next start must merge them.
    assert!(staged > 0, "no kill caught URLs staged");
    let mut child = start(&harness, &model.seeds, "");
    let status = wait_exit(&mut child, Duration::from_secs(120)).await;
    assert!(status.success(), "the final run failed: {status:?}");

    assert_complete_and_single(&harness, &want).await;
    let db = harness.db().await;
    assert_eq!(
        db.scalar(
            "SELECT count(*) FROM runs WHERE ended = 'killed' AND ended_at IS NULL
             AND id < (SELECT max(id) FROM runs)"
        )
        .await,
        i64::try_from(kills.len()).expect("a few kills"),
        "each killed run said so by the next, the last run's row left to it"
    );
    assert_eq!(
        db.scalar(
            "SELECT count(*) FROM sqlite_master WHERE
                (name = 'links_target' AND sql LIKE '%(target_url, anchor_text, source_id, rel)')
             OR (name = 'links_source' AND sql LIKE '%links (source_id)')"
        )
        .await,
        2,
        "the links' indexes, dropped during the crawl, are built at its end as the \
         migrations define them"
    );
    let counts = request_counts(&site);
    let refetched = counts.values().filter(|&&n| n > 1).count();
    let most = counts.values().max().copied().unwrap_or(0);
    eprintln!(
        "kill -9 × {}: {refetched} URLs were fetched again (in flight at a kill)",
        kills.len()
    );
    // In flight at a kill: at most the workers, the two channels and one batch.
    assert!(
        refetched <= kills.len() * (8 + 8 + 8 + 512),
        "{refetched} URLs fetched again"
    );
    assert!(most <= kills.len() + 1, "a URL was fetched {most} times");
    assert_eq!(counts.len(), want.len());
}

/// A run killed with a request out cannot leave its host's next turn, and a crash loop
/// must not turn into a flood: the next run waits a delay before asking that host again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_runs_hosts_wait_a_delay_before_the_next_run_asks_them() {
    const DELAY: Duration = Duration::from_millis(1500);
    let (site, _harness, config) = killed_with_a_request_out(DELAY).await;
    asked_again_no_sooner_than(&site, &config, DELAY).await;
}

/// A crawl of [`slow_site`] at `delay` between requests, killed once robots.txt is
/// asked for (the home page leased, the answer seconds away): the site, and the
/// harness and config to run it again.
async fn killed_with_a_request_out(delay: Duration) -> (TestSite, Harness, PathBuf) {
    let site = slow_site(Duration::from_secs(5)).await;
    let harness = Harness::default();
    let text = harness.config_text(
        &[site.url(0, "/")],
        &format!("[politeness]\ndelay_ms = {}\n", delay.as_millis()),
    );
    let config = harness.write_config(&text);
    let mut first = spawn_crawl(&config);
    wait_for_requests(&site, 1).await;
    first.kill().expect("kill -9");
    first.wait().expect("reap");
    (site, harness, config)
}

/// Runs `config` until it sends the site its second request, which must come `delay`
/// after the first at the soonest.
async fn asked_again_no_sooner_than(site: &TestSite, config: &Path, delay: Duration) {
    let mut next = spawn_crawl(config);
    wait_for_requests(site, 2).await;
    next.kill().expect("kill -9");
    next.wait().expect("reap");
    let hits = site.hits();
    let gap = hits[1].at.duration_since(hits[0].at);
    assert!(gap >= delay, "asked again {gap:?} later");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_pages_in_flight_and_a_restart_completes_the_crawl() {
    let (site, model) = big_site().await;
    let want = expected(&site, &model);
    let harness = Harness::default();

    let mut child = start(
        &harness,
        &model.seeds,
        "[shutdown]\ngrace_period_ms = 5000\n",
    );
    wait_for_requests(&site, 400).await;
    super::cli::send_signal(child.id(), "TERM");
    let status = wait_exit(&mut child, Duration::from_secs(120)).await;
    assert!(status.success(), "SIGTERM should exit 0, got {status:?}");
    let db = harness.db().await;
    assert_eq!(
        db.scalar("SELECT count(*) FROM frontier WHERE state = 'leased'")
            .await,
        0
    );
    let stored_after_stop = harness.page_count().await;
    // 400 requests, three of them robots.txt: every page requested before the stop is stored.
    assert!(stored_after_stop >= 397 && (stored_after_stop as usize) < want.len());

    let mut child = start(&harness, &model.seeds, "");
    assert!(wait_exit(&mut child, Duration::from_secs(120))
        .await
        .success());
    assert_complete_and_single(&harness, &want).await;
    let counts = request_counts(&site);
    assert!(
        counts.values().all(|&n| n == 1),
        "a graceful stop fetches nothing twice"
    );
}

/// The home page is held unanswered for the whole test, and the fetch timeout is an hour:
/// a crawl that exits at all after SIGTERM kept its grace period, however slow the
/// machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_whose_grace_period_runs_out_queues_the_unfinished_pages_again() {
    let (_never, gate) = tokio::sync::watch::channel(false);
    let site = held_site(gate).await;
    let harness = Harness::default();

    let config = CONFIG.replace("[fetch]\n", "[fetch]\ntimeout_ms = 3600000\n");
    let text = harness.config_text(
        &[site.url(0, "/")],
        &format!("{config}[shutdown]\ngrace_period_ms = 200\n"),
    );
    let mut child = spawn_crawl(&harness.write_config(&text));
    // robots.txt, then the home page: wait until a page request is under way.
    wait_for_requests(&site, 2).await;
    super::cli::send_signal(child.id(), "TERM");
    let status = wait_exit(&mut child, Duration::from_secs(60)).await;
    assert!(status.success(), "{status:?}");
    let db = harness.db().await;
    assert_eq!(
        db.scalar("SELECT count(*) FROM frontier WHERE state = 'leased'")
            .await,
        0
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM frontier WHERE state = 'queued'")
            .await,
        1
    );
    assert_eq!(harness.page_count().await, 0);
}

/// The home page is held unanswered until the restart, and the grace period is an hour:
/// a crawl that exits with 130 after two signals was ended by the second, however slow
/// the machine. The two are of different kinds (SIGTERM, then SIGINT): two of one kind
/// sent together may reach the process as one, as signals of a kind are not queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_stops_at_once_and_the_database_stays_sound() {
    let (open, gate) = tokio::sync::watch::channel(false);
    let site = held_site(gate).await;
    let harness = Harness::default();

    let mut child = start(
        &harness,
        &[site.url(0, "/")],
        "[shutdown]\ngrace_period_ms = 3600000\n",
    );
    wait_for_requests(&site, 2).await;
    for signal in ["TERM", "INT"] {
        super::cli::send_signal(child.id(), signal);
    }
    let status = wait_exit(&mut child, Duration::from_secs(60)).await;
    assert_eq!(
        status.code(),
        Some(130),
        "the second signal ends the process at once"
    );
    open.send_replace(true);

    let db = harness.db().await;
    assert_eq!(
        db.scalar("SELECT count(*) FROM pragma_integrity_check WHERE integrity_check <> 'ok'")
            .await,
        0
    );
    let mut child = start(&harness, &[site.url(0, "/")], "");
    assert!(wait_exit(&mut child, Duration::from_secs(60))
        .await
        .success());
    assert_eq!(harness.page_count().await, 7);
}

/// URLs a killed run had staged but not merged are crawled by the next run, even when
/// nothing else is left in the queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_a_killed_run_left_staged_are_crawled_by_the_next() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(&h, "/", Resource::Html("<a href='/0'>0</a>".into()));
    b.add(&h, "/0", Resource::Html("<title>0</title>".into()));
    b.add(
        &h,
        "/hidden",
        Resource::Html("<a href='/deep'>deep</a>".into()),
    );
    b.add(&h, "/deep", Resource::Html("<title>deep</title>".into()));
    let site = b.start();
    let harness = Harness::default();
    let seeds = [site.url(0, "/")];
    harness.crawl(&seeds, "").await;
    assert_eq!(harness.page_count().await, 2);

    // What a kill right after the commit that found `/hidden` on `/0` leaves behind.
    let hidden = site.url(0, "/hidden");
    let options = SqliteConnectOptions::new().filename(harness.db_path());
    let db = SqlitePool::connect_with(options)
        .await
        .expect("open the database");
    sqlx::query(
        "INSERT INTO frontier_staged (url, host, depth, priority, discovered_from, redirect_hops, kind)
         SELECT $1, host, depth + 1, priority - 1, id, 0, 'page' FROM frontier WHERE url = $2",
    )
    .bind(&hidden)
    .bind(site.url(0, "/0"))
    .execute(&db)
    .await
    .expect("stage a URL");
    db.close().await;

    harness.crawl(&seeds, "").await;
    let db = harness.db().await;
    let stored: BTreeSet<String> = db.pages().await.into_iter().map(|p| p.url).collect();
    assert!(stored.contains(&hidden), "{stored:?}");
    assert!(stored.contains(&site.url(0, "/deep")), "{stored:?}");
    assert_eq!(db.scalar("SELECT count(*) FROM frontier_staged").await, 0);
    assert_eq!(db.page(&hidden).await.map(|p| p.depth), Some(2));
}

/// A second crawl of the database a first still crawls (a cron job that overlaps, a
/// service and a manual run) must not take the first's URLs in flight back and fetch
/// them again, nor store their pages and links twice: it refuses to start, naming the run
/// that holds the database (its process id and command line).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_crawl_of_a_database_in_use_refuses_to_start() {
    second_crawl_beside_a_first_is_refused(|harness| harness.db_path()).await;
}

/// The exit status of a crawl refused beside another (sysexits' `EX_TEMPFAIL`): a cron
/// job's wrapper tells a night skipped because the last one still runs from a failure,
/// which exits 1 as the refusal did.
const IN_USE: i32 = 75;

/// The second crawl names the database by `name`, given the first's harness.
async fn second_crawl_beside_a_first_is_refused(name: impl FnOnce(&Harness) -> PathBuf) {
    let (open, gate) = tokio::sync::watch::channel(false);
    let site = held_site(gate).await;
    let harness = Harness::default();
    let seeds = [site.url(0, "/")];

    let mut first = start(&harness, &seeds, "");
    // robots.txt, then the home page: its row is leased, its answer held.
    wait_for_requests(&site, 2).await;
    let text = harness.config_text(&seeds, CONFIG).replace(
        &format!("{:?}", harness.db_path().display().to_string()),
        &format!("{:?}", name(&harness).display().to_string()),
    );
    let config = harness.dir.path().join("second.toml");
    std::fs::write(&config, text).expect("write the second config");
    // The first crawl runs until the second has ended (or, run beside it, asked for the
    // home page too), however slowly the second starts: with every answer 800 ms late,
    // the first ended 2.5 to 3.5 s after its home page was asked for, and a second
    // started later than that on a loaded machine ran after it and exited 0.
    let second = tokio::task::spawn_blocking(move || run_to_the_end("crawl", &config));
    while !second.is_finished() && site.count(&seeds[0]) < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    open.send_replace(true);
    let second = second.await.expect("the second crawl's thread");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(
        second.status.code(),
        Some(IN_USE),
        "the second crawl, beside the first: {stderr}"
    );
    assert!(stderr.contains("in use"), "{stderr}");
    // Which run holds it: with several teams' configs on one machine, "another crawl"
    // left the user to find which of them named this database.
    let holder = format!("process {} (", first.id());
    assert!(
        stderr.contains(&holder) && stderr.contains("crawl --config"),
        "the refusal does not name the run holding the database: {stderr}"
    );
    assert!(
        stderr.contains("did not start") && !stderr.contains("stopped"),
        "a refused run said as one that ran: {stderr}"
    );
    let status = wait_exit(&mut first, Duration::from_secs(30)).await;
    assert!(status.success(), "the first crawl failed: {status:?}");

    assert_eq!(harness.page_count().await, 7);
    let counts = request_counts(&site);
    assert!(
        counts.values().all(|&n| n == 1),
        "fetched twice: {counts:?}"
    );
    let db = harness.db().await;
    assert_eq!(
        db.scalar("SELECT count(*) FROM (SELECT 1 FROM links GROUP BY source_id, target_url, anchor_text HAVING count(*) > 1)")
            .await,
        0,
        "a page's links were stored twice"
    );
}

/// The database a crawl runs on, named through a symbolic link (`latest.db` pointing at
/// this month's file) by a second crawl, is the same database in use: SQLite follows the
/// link to one file and one WAL, so the second must refuse as it does for the same name,
/// not take the first's URLs in flight and fetch them again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_crawl_of_a_database_in_use_by_another_name_refuses_to_start() {
    second_crawl_beside_a_first_is_refused(|harness| {
        let link = harness.dir.path().join("latest.db");
        std::os::unix::fs::symlink(harness.db_path(), &link).expect("a link to the database");
        link
    })
    .await;
}

/// A backup put in the database's place while a crawl runs (`mv backup.db crawl.db`) left
/// the crawl storing its pages into the file it replaced, in no directory: it said
/// "stored in crawl.db" and exited 0, and every page since was gone. It stops, saying
/// so, and the backup, whole, is resumed by the next run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_restored_under_a_running_crawl_stops_it_saying_so_and_is_resumed() {
    let (open, gate) = tokio::sync::watch::channel(false);
    let site = held_site(gate).await;
    let harness = Harness::default();
    let seeds = [site.url(0, "/")];
    let config = harness.write_config(&harness.config_text(&seeds, CONFIG));
    let mut first = spawn_crawl_piped(&config, "warn");
    // robots.txt, then the home page: its row is leased, its answer held.
    wait_for_requests(&site, 2).await;
    let backup = harness.dir.path().join("backup.db");
    let db = SqlitePool::connect_with(SqliteConnectOptions::new().filename(harness.db_path()))
        .await
        .expect("open the database");
    sqlx::query("VACUUM INTO ?")
        .bind(backup.display().to_string())
        .execute(&db)
        .await
        .expect("back the database up");
    db.close().await;
    std::fs::rename(&backup, harness.db_path()).expect("restore the backup");
    open.send_replace(true);

    let status = wait_exit(&mut first, Duration::from_secs(60)).await;
    let mut stderr = String::new();
    std::io::Read::read_to_string(
        &mut first.stderr.take().expect("the crawl's stderr"),
        &mut stderr,
    )
    .expect("read the crawl's stderr");
    assert!(
        !status.success() && stderr.contains("was replaced"),
        "{status:?}: {stderr}"
    );
    // The WAL beside it was the replaced file's: folded into the backup, it damaged it.
    let wal = harness.dir.path().join("crawl.db-wal");
    assert!(
        std::fs::metadata(&wal).map_or(true, |wal| wal.len() == 0),
        "the replaced file's WAL stays beside the backup"
    );
    assert_eq!(harness.page_count().await, 0, "the backup holds no page");
    let again = run_to_the_end("crawl", &config);
    assert!(again.status.success(), "{again:?}");
    assert_eq!(harness.page_count().await, 7);
}

/// Runs the crawl of `config` as a user with no privileges (`nobody` when the tests run
/// as root, whom file modes do not stop), in the harness's directory: its exit status and
/// stderr.
fn crawl_unprivileged(harness: &Harness, config: &std::path::Path) -> (bool, String) {
    let mut command = if super::postgres::is_root() {
        for entry in std::fs::read_dir(harness.dir.path()).expect("list the directory") {
            let path = entry.expect("an entry").path();
            std::os::unix::fs::chown(&path, Some(65534), Some(65534)).expect("give it to nobody");
        }
        std::os::unix::fs::chown(harness.dir.path(), Some(65534), Some(65534))
            .expect("give the directory to nobody");
        let mut setpriv = Command::new("setpriv");
        setpriv.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
        setpriv.arg(env!("CARGO_BIN_EXE_pipecrawl"));
        setpriv
    } else {
        Command::new(env!("CARGO_BIN_EXE_pipecrawl"))
    };
    let out = command
        .args(["crawl", "--config"])
        .arg(config)
        .current_dir(harness.dir.path())
        .env("RUST_LOG", "warn")
        .output()
        .expect("run pipecrawl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A database made read-only (a backup script's `chmod`, a copy from a read-only share)
/// is refused saying so, and once writable again the next run crawls on: the refused
/// run left no read-only `crawl.db-shm` beside it that kept every later run failing with
/// "attempt to write a readonly database".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_made_read_only_is_refused_saying_so_and_crawls_on_once_writable() {
    use std::os::unix::fs::PermissionsExt;
    let site = slow_site(Duration::from_millis(1)).await;
    let harness = Harness::default();
    let seeds = [site.url(0, "/")];
    let config = harness
        .write_config(&harness.config_text(&seeds, &format!("{CONFIG}[scope]\nmax_pages = 3\n")));
    let (crawled, stderr) = crawl_unprivileged(&harness, &config);
    assert!(crawled, "{stderr}");
    std::fs::set_permissions(harness.dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("let the directory be entered");
    let db = harness.db_path();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o444)).expect("chmod 444");

    let (crawled, stderr) = crawl_unprivileged(&harness, &config);
    assert!(!crawled, "a crawl wrote to a read-only database");
    assert!(stderr.contains("read-only"), "{stderr}");

    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).expect("chmod 644");
    let config = harness.write_config(&harness.config_text(&seeds, CONFIG));
    let (crawled, stderr) = crawl_unprivileged(&harness, &config);
    assert!(crawled, "{stderr}");
    assert_eq!(harness.page_count().await, 7);
}

/// A database in a directory this user may not write (where SQLite keeps `-wal` and
/// `-shm`, and the crawl its `-lock`) is refused naming the directory, whether the file
/// is to be made or is there: SQLite said only "unable to open database file" for a new
/// one, and "attempt to write a readonly database" for one the user may write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_in_a_directory_not_writable_is_refused_naming_the_directory() {
    use std::os::unix::fs::PermissionsExt;
    let site = slow_site(Duration::from_millis(1)).await;
    let harness = Harness::default();
    let config = harness.write_config(&harness.config_text(&[site.url(0, "/")], CONFIG));
    let dir = harness.dir.path();
    let crawl_with_mode = |mode| {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
            .expect("chmod the directory");
        crawl_unprivileged(&harness, &config)
    };
    let refused = |(crawled, stderr): (bool, String)| {
        assert!(!crawled, "a crawl ran in a directory it cannot write");
        let says = format!("{} is not writable for this user", dir.display());
        assert!(stderr.contains(&says), "{stderr}");
    };
    let crawls = |(crawled, stderr): (bool, String)| assert!(crawled, "{stderr}");

    // No database yet, then the one the crawl between made.
    refused(crawl_with_mode(0o555));
    crawls(crawl_with_mode(0o755));
    refused(crawl_with_mode(0o555));
    crawls(crawl_with_mode(0o755));
    assert_eq!(harness.page_count().await, 7);
}

/// A database named by a relative path, in a working directory this user may not write
/// (a container's, `/` or its image's `WORKDIR`), is refused naming the directory where
/// it is: the error said ". is not writable for this user", which named none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relative_database_in_a_working_directory_not_writable_names_the_directory() {
    use std::os::unix::fs::PermissionsExt;
    let site = slow_site(Duration::from_millis(1)).await;
    let harness = Harness::default();
    let text = format!(
        "seeds = [{:?}]\n{CONFIG}\n[storage]\ndatabase = \"crawl.db\"\n",
        site.url(0, "/")
    );
    let config = harness.write_config(&text);
    let dir = harness.dir.path();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555))
        .expect("chmod the directory");
    let (crawled, stderr) = crawl_unprivileged(&harness, &config);
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .expect("chmod the directory");
    assert!(!crawled, "a crawl ran in a directory it cannot write");
    let says = format!("{} is not writable for this user", dir.display());
    assert!(stderr.contains(&says), "{stderr}");
}

/// A crawl whose database meets the file-size limit (`ulimit -f`, systemd's
/// `LimitFSIZE`) part way stops with an error naming the database, as on a full disk,
/// and the next run without the limit completes it. SIGXFSZ's default action killed the
/// crawl with no word and no exit code.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_past_the_file_size_limit_stops_saying_so_and_a_rerun_completes_it() {
    let (site, model) = big_site().await;
    let want = expected(&site, &model);
    let harness = Harness::default();
    let config = harness.write_config(&harness.config_text(&model.seeds, CONFIG));
    let args = ["crawl", "--config", &config.display().to_string()].map(String::from);
    let out = super::query::pipecrawl_with_file_size_limit(args.to_vec(), 1 << 20).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let database = harness.db_path().display().to_string();
    assert!(
        stderr.contains(&format!("the crawl into {database} stopped")),
        "{stderr}"
    );
    assert!(
        stderr.contains("may write no file larger than 1048576 bytes (`ulimit -f`"),
        "the limit is not named: {stderr}"
    );
    completed_from_part_way(&harness, &config, &want).await;
}

/// Asserts that the crawl of `config` stopped part way, and that a run of it now
/// completes it, each page once.
async fn completed_from_part_way(harness: &Harness, config: &Path, want: &BTreeSet<String>) {
    let stored = harness.page_count().await;
    assert!(
        stored > 0 && stored < i64::try_from(want.len()).expect("a count"),
        "the crawl did not stop part way: {stored} pages stored"
    );
    let out = run_to_the_end("crawl", config);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_complete_and_single(harness, want).await;
}

/// A crawl whose disk is full as it starts, with no room for its database or for the
/// `-shm` file beside it, stops saying which disk and that a run after room is made goes
/// on: it said only SQLite's "database or disk is full (SQLite code 13)". Made room, the
/// next run completes it, each page once. (A disk that fills part way is waited out:
/// `a_crawl_whose_disk_fills_waits_for_room_and_goes_on`.)
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_on_a_full_disk_says_where_and_a_rerun_after_room_completes_it() {
    let Some((_site, want, harness, disk, config, filler)) = a_big_crawl_on_a_full_disk().await
    else {
        return;
    };
    let says_where = |out: &std::process::Output| {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        let dir = harness.dir.path().display();
        assert!(
            stderr.contains(&format!("no room left on the disk holding {dir}"))
                && stderr.contains("make room there and run it again"),
            "{stderr}"
        );
    };
    says_where(&run_to_the_end("crawl", &config));
    // Room for a few pages of the database, not for the `-shm` file beside it: SQLite's
    // "disk I/O error" growing that.
    free_room(&filler, 16 << 10);
    says_where(&run_to_the_end("crawl", &config));
    std::fs::remove_file(filler).expect("free the disk");
    disk.grow();
    let out = run_to_the_end("crawl", &config);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_complete_and_single(&harness, &want).await;
}

/// A crawl whose disk fills part way waits for room, as for a PostgreSQL server gone
/// away, saying which disk is full (once, not at every try), rather than stopping: under
/// systemd's `Restart=on-failure` a stopped service started again every few seconds, and
/// each start asked the sites again for pages it could not store. Made room, the same
/// process completes the crawl, each page asked for and stored once.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_whose_disk_fills_waits_for_room_and_goes_on() {
    let Some((site, want, harness, disk, config, filler)) = a_big_crawl_on_a_full_disk().await
    else {
        return;
    };
    // Room for the database and a few batches, not the whole crawl.
    free_room(&filler, 1 << 20);
    let mut crawl = LoggedCrawl::start(&config);
    let warning = no_room_in(&harness);
    if let Some(status) = crawl.said_or_ended(&warning).await {
        panic!(
            "the crawl ended ({status}) rather than wait for room: {}",
            crawl.said()
        );
    }
    assert!(
        crawl.said().contains("make room there"),
        "the warning does not say what to do: {}",
        crawl.said()
    );
    // The channels fill and fetching stops, part way through the site.
    let asked = requests_once_quiet(&site).await;
    assert!(
        asked < want.len(),
        "fetching went on meanwhile: {asked} requests"
    );
    assert!(
        crawl.child.try_wait().expect("poll pipecrawl").is_none(),
        "{}",
        crawl.said()
    );

    std::fs::remove_file(filler).expect("free the disk");
    disk.grow();
    let status = wait_exit(&mut crawl.child, Duration::from_secs(60)).await;
    assert!(status.success(), "{status}: {}", crawl.said());
    // Said once a spell: a step may find room for a moment (a checkpoint frees the
    // log's space) and say so, the disk then filling again.
    let room = format!(
        "the disk holding {} has room again",
        harness.dir.path().display()
    );
    let said = crawl.said();
    let mut full = false;
    for line in said.lines() {
        if line.contains(&warning) {
            assert!(!full, "warned again while waiting for room: {said}");
            full = true;
        } else if line.contains(&room) {
            full = false;
        }
    }
    assert_complete_and_single(&harness, &want).await;
    let asked_twice: Vec<_> = request_counts(&site)
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .collect();
    assert!(asked_twice.is_empty(), "asked again: {asked_twice:?}");
}

/// A crash loop: a run killed while it starts, once it has queued again the URLs the
/// killed run before it had out, must leave their hosts waiting a delay all the same. A
/// large start (a merge of many staged URLs) stands for any: the run is killed within it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_while_it_starts_leaves_the_last_killed_runs_hosts_waiting() {
    const DELAY: Duration = Duration::from_secs(4);
    let (site, harness, config) = killed_with_a_request_out(DELAY).await;
    let options = SqliteConnectOptions::new().filename(harness.db_path());
    let db = SqlitePool::connect_with(options)
        .await
        .expect("open the database");
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300000)
         INSERT INTO frontier_staged (url, host, depth, priority, discovered_from, redirect_hops, kind)
         SELECT 'http://127.0.0.99:9/s/' || i, '127.0.0.99:9', 9, -1000, NULL, 0, 'page' FROM n",
    )
    .execute(&db)
    .await
    .expect("stage URLs");
    let count = |sql: &'static str| {
        let db = db.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&db)
                .await
                .expect(sql)
        }
    };
    let mut second = spawn_crawl(&config);
    let deadline = Instant::now() + Duration::from_secs(20);
    while count("SELECT count(*) FROM frontier WHERE state = 'leased'").await > 0 {
        assert!(Instant::now() < deadline, "the second run never started");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    second.kill().expect("kill -9");
    second.wait().expect("reap");
    assert_eq!(site.hits().len(), 1, "the second run sent a request");
    assert!(
        count("SELECT count(*) FROM frontier_staged").await > 0,
        "the second run was not killed while it started"
    );
    sqlx::query("DELETE FROM frontier_staged")
        .execute(&db)
        .await
        .expect("unstage the URLs");
    db.close().await;
    asked_again_no_sooner_than(&site, &config, DELAY).await;
}

/// A first run killed while it made its database (within milliseconds of its start, as
/// it turned the new file to WAL) can leave a hot rollback journal beside it: the next
/// run must roll it back and crawl, not fail at every start with "attempt to write a
/// readonly database" until someone deletes `crawl.db-journal` by hand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_a_killed_first_run_left_a_hot_journal_beside_is_crawled() {
    let site = slow_site(Duration::from_millis(1)).await;
    let harness = Harness::default();
    // The kill, caught on a copy: a new file's first writes, in a rollback journal that
    // has spilled some of them to the file.
    let scratch = tempfile::tempdir().expect("a temp dir");
    let made = scratch.path().join("crawl.db");
    let options = SqliteConnectOptions::new()
        .filename(&made)
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Delete)
        .pragma("cache_size", "10");
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect_with(&options)
        .await
        .expect("make a database");
    sqlx::raw_sql("CREATE TABLE t (x); DROP TABLE t; BEGIN; CREATE TABLE half (x);")
        .execute(&mut conn)
        .await
        .expect("begin the first writes");
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
         INSERT INTO half SELECT randomblob(1000) FROM n",
    )
    .execute(&mut conn)
    .await
    .expect("write past the page cache");
    for suffix in ["", "-journal"] {
        std::fs::copy(
            scratch.path().join(format!("crawl.db{suffix}")),
            harness.dir.path().join(format!("crawl.db{suffix}")),
        )
        .expect("copy the files as the kill left them");
    }
    sqlx::Connection::close(conn).await.expect("close");

    let config = harness.write_config(&harness.config_text(&[site.url(0, "/")], CONFIG));
    let out = run_to_the_end("crawl", &config);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(harness.page_count().await, 7);
    assert_eq!(
        harness
            .db()
            .await
            .scalar("SELECT count(*) FROM sqlite_master WHERE name = 'half'")
            .await,
        0,
        "the interrupted writes were rolled back"
    );
}

/// A crawl of [`big_site`] into a database on a [`SmallDisk`], filled: the site, the
/// pages a crawl stores, the harness, the disk, the config and the file filling the
/// disk. `None` where no disk can be mounted.
#[cfg(target_os = "linux")]
async fn a_big_crawl_on_a_full_disk() -> Option<(
    TestSite,
    BTreeSet<String>,
    Harness,
    SmallDisk,
    PathBuf,
    PathBuf,
)> {
    let (site, model) = big_site().await;
    let want = expected(&site, &model);
    let harness = Harness::default();
    let disk = SmallDisk::mount(harness.dir.path())?;
    let config = harness.write_config(&harness.config_text(&model.seeds, CONFIG));
    let filler = disk.fill();
    Some((site, want, harness, disk, config, filler))
}

/// Makes `bytes` of room on a disk `filler` fills.
#[cfg(target_os = "linux")]
pub(super) fn free_room(filler: &Path, bytes: u64) {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(filler)
        .expect("the filler file");
    let size = file.metadata().expect("its size").len();
    file.set_len(size - bytes).expect("free room");
}

/// A tmpfs of 8 MiB mounted on a directory until dropped: a disk to fill.
#[cfg(target_os = "linux")]
pub(super) struct SmallDisk(PathBuf);

#[cfg(target_os = "linux")]
impl SmallDisk {
    /// Mounts it on `dir`; `None`, said on stderr, where this user may not mount (CI
    /// runs as root).
    pub(super) fn mount(dir: &Path) -> Option<Self> {
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=8m", "pipecrawl-test"])
            .arg(dir)
            .status();
        if mounted.is_ok_and(|status| status.success()) {
            Some(Self(dir.to_owned()))
        } else {
            eprintln!("skipped: cannot mount a tmpfs (root can)");
            None
        }
    }

    /// Makes it 64 MiB, room for a crawl of [`big_site`].
    pub(super) fn grow(&self) {
        let grown = Command::new("mount")
            .args(["-o", "remount,size=64m"])
            .arg(&self.0)
            .status()
            .expect("run mount");
        assert!(grown.success(), "cannot grow the tmpfs");
    }

    /// Fills what is left of the disk; the file that fills it.
    pub(super) fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.0.join("filler");
        let mut file = std::fs::File::create(&path).expect("the filler file");
        while file.write_all(&[0u8; 4096]).is_ok() {}
        path
    }
}

#[cfg(target_os = "linux")]
impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("--lazy").arg(&self.0).status();
    }
}

#[cfg(target_os = "linux")]
/// Waits (up to 10 s) until the WAL of the database at `path` is copied into it to its
/// end: the commits that follow write it from its start, into room the disk gave it
/// already, so that they succeed on a disk filled meanwhile.
async fn wal_copied_whole(path: &Path) {
    use sqlx::Connection;
    let options = SqliteConnectOptions::new().filename(path);
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .expect("open the database");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, log, copied): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&mut conn)
            .await
            .expect("checkpoint");
        if log == copied {
            break;
        }
        assert!(Instant::now() < deadline, "the WAL was never copied whole");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    conn.close().await.expect("close it");
}

#[cfg(target_os = "linux")]
fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).expect("the database file").len()
}

/// A store on `disk` with 5,000 URLs queued and copied into the database, then the
/// disk filled, then 500 more committed into the WAL's room: the database file cannot
/// take them. Returns the store and the file that fills the disk.
#[cfg(target_os = "linux")]
async fn a_commit_in_the_wal_on_a_full_disk(
    disk: &SmallDisk,
    path: &Path,
) -> (pipecrawl::store::Store, PathBuf) {
    let urls = |range: std::ops::Range<u32>| -> Vec<pipecrawl::page::Discovered> {
        range
            .map(|i| pipecrawl::page::Discovered {
                url: url::Url::parse(&format!("http://h/{i}")).expect("a URL"),
                host: "h".to_owned(),
                depth: 0,
                priority: 0,
                redirect_hops: 0,
                kind: pipecrawl::page::JobKind::Page,
                trap: None,
                disallowed: false,
            })
            .collect()
    };
    let store = pipecrawl::store::Store::open(&path.display().to_string())
        .await
        .expect("open the store");
    store
        .enqueue(&urls(0..5_000))
        .await
        .expect("queue the URLs");
    wal_copied_whole(path).await;
    let filler = disk.fill();
    store
        .enqueue(&urls(5_000..5_500))
        .await
        .expect("commit into the WAL's room on a full disk");
    (store, filler)
}

/// A disk full as the store closes, after its last commit found room in the WAL:
/// copying the WAL into the database fails, and the WAL stays beside it with that
/// commit. Closing says so (the crawl exits 1 with it); it said nothing, and a
/// `cp crawl.db` after it lost the commit. Freed, the next open folds it in.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_full_as_the_store_closes_is_said_and_the_wal_kept() {
    let harness = Harness::default();
    let Some(disk) = SmallDisk::mount(harness.dir.path()) else {
        return;
    };
    let path = harness.db_path();
    let database = path.display().to_string();
    let (store, filler) = a_commit_in_the_wal_on_a_full_disk(&disk, &path).await;
    let error = store
        .close()
        .await
        .expect_err("the WAL cannot be copied into a full disk")
        .to_string();
    let wal = format!("{database}-wal");
    assert!(error.contains(&format!("{wal} keeps them")), "{error}");
    assert!(Path::new(&wal).exists(), "the WAL is gone: {error}");

    std::fs::remove_file(filler).expect("free the disk");
    let store = pipecrawl::store::Store::open(&database)
        .await
        .expect("open the store again");
    assert_eq!(store.queue_counts("").await.expect("count").queued, 5_500);
    store.close().await.expect("close the store");
    assert!(!Path::new(&wal).exists(), "the WAL was not folded in");
}

/// Checkpoints go on after one failed: a disk full for a moment (another program's
/// file, removed again) stopped them for the rest of the run, and the WAL grew
/// towards the writer's own checkpoint at some 400 MB.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_go_on_after_a_disk_was_full_for_a_moment() {
    let harness = Harness::default();
    let Some(disk) = SmallDisk::mount(harness.dir.path()) else {
        return;
    };
    let path = harness.db_path();
    let (store, filler) = a_commit_in_the_wal_on_a_full_disk(&disk, &path).await;
    let before = file_size(&path);
    // Checkpoints meanwhile fail: the database file cannot grow.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(file_size(&path), before, "checkpointed onto a full disk");

    std::fs::remove_file(filler).expect("free the disk");
    let deadline = Instant::now() + Duration::from_secs(10);
    while file_size(&path) == before {
        assert!(
            Instant::now() < deadline,
            "the database file is still {before} bytes: nothing was checkpointed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    store.close().await.expect("close the store");
}

/// A disk that fills while the crawl's last page is out: once the disk is freed the
/// crawl is complete. Whether the disk fails a last commit (when a reader held the WAL
/// as the commit began, so that it grew), which the crawl waits out saying so, or the
/// copy of the WAL into the database at the end (its last commits then in the WAL's
/// room, which stays beside the database), which stops it with exit 1 saying so and
/// leaves it to the next run, is the machine's timing. It exited 0 without a word in the
/// second case; the store's own test
/// (`a_disk_full_as_the_store_closes_is_said_and_the_wal_kept`) makes that case alone.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_full_at_the_crawls_end_is_said_and_a_rerun_completes_it() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(&h, "/", Resource::Html("<a href='/slow'>slow</a>".into()));
    let links: String = (0..300)
        .map(|i| format!("<a href='http://127.0.0.9:9/{i}'>elsewhere {i}</a>"))
        .collect();
    b.add(
        &h,
        "/slow",
        Resource::Slow(Duration::from_secs(3), Box::new(Resource::Html(links))),
    );
    let site = b.start();
    let Some((harness, disk, config, mut crawl)) = a_crawl_on_a_small_disk(&site) else {
        return;
    };
    // While the slow page is out.
    wait_for_requests(&site, 2).await;
    wal_copied_whole(&harness.db_path()).await;
    let filler = disk.fill();

    let ended = crawl.said_or_ended(&no_room_in(&harness)).await;
    let wal = format!("{}-wal", harness.db_path().display());
    std::fs::remove_file(filler).expect("free the disk");
    // A third way: its last writes fit in room the database file already had (pages it
    // freed), and it ends at once, exit 0, the WAL folded in as checked below.
    if let Some(status) = ended.filter(|status| status.code() != Some(0)) {
        let stderr = crawl.said();
        assert_eq!(status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(&format!("{wal} keeps them")), "{stderr}");
        let out = run_to_the_end("crawl", &config);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        let status = wait_exit(&mut crawl.child, Duration::from_secs(60)).await;
        assert!(status.success(), "{status}: {}", crawl.said());
    }
    assert!(!Path::new(&wal).exists(), "the WAL was not folded in");
    assert_eq!(harness.page_count().await, 2);
}

/// A crawl whose every page was stored, waiting at its end for room to index its links
/// on a full disk, stops at a signal, leaving them to the next run: it waited the ten
/// minutes a crawl waits for room, saying it waited "to store the pages in hand", of which
/// there were none. The disk keeps room for the slow page's commit, not for an index of
/// 10,000 long link targets and their in-link counts.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_while_the_links_wait_for_room_to_be_indexed_leaves_them_to_the_next_run() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(
        &h,
        "/",
        Resource::Html("<a href='/big'>big</a><a href='/slow'>slow</a>".into()),
    );
    let links: String = (0..10_000)
        .map(|i| format!("<a href='http://127.0.0.9:9/a/long/path/for/a/large/index/{i}'>{i}</a>"))
        .collect();
    b.add(&h, "/big", Resource::Html(links));
    b.add(
        &h,
        "/slow",
        Resource::Slow(
            Duration::from_secs(3),
            Box::new(Resource::Html("slow".into())),
        ),
    );
    let site = b.start();
    let Some((harness, disk, config, mut crawl)) = a_crawl_on_a_small_disk(&site) else {
        return;
    };
    // While the slow page is out, and once the big page's links have joined the queue:
    // on a loaded machine their merge could come after the disk filled, and wait for
    // room itself.
    wait_for_requests(&site, 3).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while harness.page_count().await < 2 || staged(&harness).await > 0 {
        assert!(
            Instant::now() < deadline,
            "the big page's links never joined the queue"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wal_copied_whole(&harness.db_path()).await;
    let filler = disk.fill();
    free_room(&filler, 192 * 1024);

    let ended = crawl.said_or_ended(&no_room_in(&harness)).await;
    assert_eq!(ended, None, "{}", crawl.said());
    assert_eq!(harness.page_count().await, 3, "the slow page found no room");
    super::cli::send_signal(crawl.child.id(), "INT");
    let left = "the next crawl or service start builds them";
    let stopped = crawl.said_or_ended(left).await;
    let said = crawl.said();
    assert!(said.contains(left), "{stopped:?}: {said}");
    assert!(!said.contains("store the pages in hand"), "{said}");
    // Said with the disk full. The build abandoned may still be running in SQLite on a
    // loaded machine, leaving no room for the run's record: that waits for room, as
    // README says a crawl does.
    std::fs::remove_file(filler).expect("free the disk");
    let status = wait_exit(&mut crawl.child, Duration::from_secs(60)).await;
    let said = crawl.said();
    assert!(
        status.code() == Some(0) || said.contains("keeps them"),
        "{status}: {said}"
    );

    let out = run_to_the_end("crawl", &config);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let db = harness.db().await;
    let indexed = "SELECT count(*) FROM sqlite_master WHERE name = 'links_target'";
    assert_eq!(db.scalar(indexed).await, 1);
}

/// URLs found and not yet merged into the queue.
async fn staged(harness: &Harness) -> i64 {
    harness
        .db()
        .await
        .scalar("SELECT count(*) FROM frontier_staged")
        .await
}

/// A crawl of `site` from its home page into a database on a [`SmallDisk`]: the harness,
/// the disk, the config and the crawl. `None` where no disk can be mounted.
#[cfg(target_os = "linux")]
fn a_crawl_on_a_small_disk(site: &TestSite) -> Option<(Harness, SmallDisk, PathBuf, LoggedCrawl)> {
    let harness = Harness::default();
    let disk = SmallDisk::mount(harness.dir.path())?;
    let config = harness.write_config(&harness.config_text(&[site.url(0, "/")], CONFIG));
    let crawl = LoggedCrawl::start(&config);
    Some((harness, disk, config, crawl))
}

/// The warning of a crawl whose disk, `harness`'s directory, is full.
#[cfg(target_os = "linux")]
fn no_room_in(harness: &Harness) -> String {
    format!(
        "no room left on the disk holding {}",
        harness.dir.path().display()
    )
}

/// `pipecrawl crawl`, logging warnings to a file off the disk it fills.
#[cfg(target_os = "linux")]
struct LoggedCrawl {
    child: Child,
    log: tempfile::NamedTempFile,
}

#[cfg(target_os = "linux")]
impl LoggedCrawl {
    fn start(config: &Path) -> Self {
        Self::run("crawl", config)
    }

    /// `pipecrawl command --config config`, logging as [`LoggedCrawl::start`] does.
    fn run(command: &str, config: &Path) -> Self {
        let log = tempfile::NamedTempFile::new().expect("a log file");
        let child = Command::new(env!("CARGO_BIN_EXE_pipecrawl"))
            .args([command, "--config"])
            .arg(config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log.reopen().expect("the log file"))
            .spawn()
            .expect("start pipecrawl");
        Self { child, log }
    }

    /// What it has said so far.
    fn said(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Waits (up to 60 s) until it says `warning` or exits: how it exited, if it did.
    async fn said_or_ended(&mut self, warning: &str) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.said().contains(warning) {
            if let Some(status) = self.child.try_wait().expect("poll pipecrawl") {
                return Some(status);
            }
            assert!(Instant::now() < deadline, "no warning: {}", self.said());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }
}

/// `pipecrawl crawl` of `seeds` into the PostgreSQL `database`, logging warnings to a
/// file: the child and its log's path.
fn crawl_on_postgres(harness: &Harness, seeds: &[String], database: &str) -> (Child, PathBuf) {
    let sqlite = format!("{:?}", harness.db_path().display().to_string());
    let text = harness
        .config_text(seeds, CONFIG)
        .replace(&sqlite, &format!("{database:?}"));
    let log_path = harness.db_path().with_extension("log");
    let log = std::fs::File::create(&log_path).expect("create the crawl's log");
    let child = Command::new(env!("CARGO_BIN_EXE_pipecrawl"))
        .args(["crawl", "--config"])
        .arg(harness.write_config(&text))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start pipecrawl");
    (child, log_path)
}

/// A throwaway PostgreSQL server for `test` and the URL of a new database `name` on it,
/// or `None` (the test skipped) on a machine without one.
async fn a_postgres(test: &str, name: &str) -> Option<(super::postgres::TestPostgres, String)> {
    let server = super::postgres::TestPostgres::start(test)?;
    let database = server.database(name).await;
    Some((server, database))
}

/// A crawl on PostgreSQL stopped by SIGTERM while the server is out of reach says that
/// its stop waits for the server: it said only "finishing pages in flight", and then
/// nothing for as long as the outage lasted (up to ten minutes), while `docker stop` or
/// systemd gave up on it and killed it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_during_a_postgresql_outage_says_it_waits_for_the_database() {
    use sqlx::Connection;
    let Some((server, database)) = a_postgres(
        "a_stop_during_a_postgresql_outage_says_it_waits_for_the_database",
        "outage",
    )
    .await
    else {
        return;
    };
    // Slow enough that the crawl is far from its end when the server stops.
    let (site, model) = big_site_answering_in(Duration::from_millis(50)).await;
    let harness = Harness::default();
    let (mut child, log_path) = crawl_on_postgres(&harness, &model.seeds, &database);
    wait_for_requests(&site, 100).await;
    // The server stops while a step waits on it (the writer, for a lock on `pages`), so
    // the crawl meets the outage at once, most times: with its connections idle, it
    // meets it only once the pool's wait for a connection runs out.
    let mut lock = sqlx::PgConnection::connect(&database)
        .await
        .expect("connect");
    sqlx::raw_sql("BEGIN; LOCK TABLE pages IN ACCESS EXCLUSIVE MODE")
        .execute(&mut lock)
        .await
        .expect("lock pages");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'",
        )
        .fetch_one(&mut lock)
        .await
        .expect("read pg_stat_activity");
        if waiting > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the crawl never waited for pages"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.stop();
    let said = |what: &str| std::fs::read_to_string(&log_path).is_ok_and(|log| log.contains(what));
    // Either way of meeting it: the fast stop may end the lock's session before the
    // waiting step's, and on a loaded machine that step can then finish before its own
    // session is ended, leaving every connection of the crawl idle.
    let met = || {
        said("lost the connection to the database") || said("no connection to the database within")
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !met() {
        assert!(
            Instant::now() < deadline,
            "the crawl never met the outage ({:?}): {}",
            child.try_wait(),
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    super::cli::send_signal(child.id(), "TERM");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !said("stopping waits for it") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let log = std::fs::read_to_string(&log_path).expect("read the crawl's log");
    assert!(
        said("stopping waits for it"),
        "nothing said the stop waits: {log}"
    );
    server.start_again();
    let status = wait_exit(&mut child, Duration::from_secs(120)).await;
    assert!(status.success(), "{status:?}: {log}");
}

/// A PostgreSQL server that goes away while every connection of a crawl's pool is idle is
/// an outage like any other: the next step waited inside the pool, which kept trying to
/// connect for its acquire timeout of ten minutes, saying nothing, and then stopped the
/// crawl with "pool timed out", never taken for a lost connection. Once over, it said
/// the database answered "after 0.4 s", leaving out the ten seconds the pool had waited,
/// and sqlx's own warning that a connection "exceeded slow threshold" came with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_outage_met_by_idle_connections_is_said_and_ridden_out() {
    use sqlx::Connection;
    let Some((server, database)) = a_postgres(
        "a_postgresql_outage_met_by_idle_connections_is_said_and_ridden_out",
        "idle_outage",
    )
    .await
    else {
        return;
    };
    // While its pages are out the crawl has nothing to store or lease.
    let site = slow_site(Duration::from_secs(5)).await;
    let harness = Harness::default();
    let (mut child, log_path) = crawl_on_postgres(&harness, &[site.url(0, "/")], &database);
    // robots.txt, the home page and the first of its links.
    wait_for_requests(&site, 3).await;
    let mut watcher = sqlx::PgConnection::connect(&database)
        .await
        .expect("connect");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let busy: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'",
        )
        .fetch_one(&mut watcher)
        .await
        .expect("read pg_stat_activity");
        if busy == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the crawl was never idle");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(watcher);
    server.stop();
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !log().contains("no connection to the database within") {
        assert!(
            Instant::now() < deadline,
            "a minute on, the crawl said nothing of the outage ({:?}): {}",
            child.try_wait(),
            log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.start_again();
    let status = wait_exit(&mut child, Duration::from_secs(120)).await;
    assert!(status.success(), "{status:?}: {}", log());
    // The step waited the pool's ten seconds before it said so: the figure counts them.
    let waited: f64 = log()
        .split("the database answers again after ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|secs| secs.parse().ok())
        .unwrap_or_else(|| panic!("no \"answers again after N s\": {}", log()));
    assert!(
        waited >= 10.0,
        "the outage said to last {waited} s: {}",
        log()
    );
    assert!(!log().contains("slow_acquire_threshold"), "{}", log());
    let db = sqlx::PgConnection::connect(&database).await;
    let pages: i64 = sqlx::query_scalar("SELECT count(*) FROM pages WHERE status = 200")
        .fetch_one(&mut db.expect("connect"))
        .await
        .expect("count the pages");
    assert_eq!(pages, 7, "{}", log());
}

/// A DBA looking at `pg_stat_activity` for the sessions of one node (to end them with
/// `pg_terminate_backend`, or to see whose lock a step waits for) found the nodes'
/// sessions with no `application_name`, told apart from each other and from any
/// program's only by their address. Each names pipecrawl and its node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nodes_sessions_name_it_to_the_dba() {
    use sqlx::Connection;
    let Some(mut held) =
        HeldNode::start("a_nodes_sessions_name_it_to_the_dba", "named_sessions").await
    else {
        return;
    };
    let mut dba = sqlx::PgConnection::connect(&held.database)
        .await
        .expect("connect");
    let node: String = sqlx::query_scalar("SELECT id FROM nodes")
        .fetch_one(&mut dba)
        .await
        .expect("read the node's id");
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT application_name FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()
           AND backend_type = 'client backend'",
    )
    .fetch_all(&mut dba)
    .await
    .expect("read pg_stat_activity");
    held.gate.send(true).expect("open the gate");
    held.ends_well().await;
    // PostgreSQL keeps 63 bytes: a generated id on a host with a long name keeps its end.
    let full = format!("pipecrawl node {node}");
    let named = if full.len() <= 63 {
        full
    } else {
        let end = node.get(node.len() - 45..).unwrap_or(&node);
        format!("pipecrawl node ...{end}")
    };
    assert_eq!(names, [named]);
}

/// A node crawling on a throwaway PostgreSQL a site whose home page is held until `gate`
/// opens: its sessions are open, and it has nothing to store meanwhile.
struct HeldNode {
    _server: super::postgres::TestPostgres,
    database: String,
    gate: tokio::sync::watch::Sender<bool>,
    _site: TestSite,
    _harness: Harness,
    child: Child,
    log_path: PathBuf,
}

impl HeldNode {
    /// None (the test skipped) on a machine without PostgreSQL.
    async fn start(test: &str, name: &str) -> Option<Self> {
        let (server, database) = a_postgres(test, name).await?;
        let (gate, shut) = tokio::sync::watch::channel(false);
        let site = held_site(shut).await;
        let harness = Harness::default();
        let (child, log_path) = crawl_on_postgres(&harness, &[site.url(0, "/")], &database);
        // robots.txt and the home page.
        wait_for_requests(&site, 2).await;
        Some(Self {
            _server: server,
            database,
            gate,
            _site: site,
            _harness: harness,
            child,
            log_path,
        })
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Waits for the node to exit, which it must do with success; its log.
    async fn ends_well(&mut self) -> String {
        let status = wait_exit(&mut self.child, Duration::from_secs(120)).await;
        let log = self.log();
        assert!(status.success(), "{status:?}: {log}");
        log
    }
}

/// A step waiting past its 30 s for a lock a DBA holds (`LOCK TABLE`, `VACUUM FULL`) was
/// said as "lost the connection to the database", sending the DBA to look for a network
/// fault while the node waited on their own lock. The log says either may be why, and
/// where to see a lock, and the crawl goes on once it is let go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_waiting_on_a_dbas_lock_is_not_said_as_a_lost_connection() {
    let Some(mut held) = HeldNode::start(
        "a_step_waiting_on_a_dbas_lock_is_not_said_as_a_lost_connection",
        "locked",
    )
    .await
    else {
        return;
    };
    let dba = sqlx::PgPool::connect(&held.database)
        .await
        .expect("connect");
    let lock = super::postgres::lock_table(&dba, "frontier").await;
    // The home page and its links, to be stored behind the lock.
    held.gate.send(true).expect("open the gate");
    let deadline = Instant::now() + Duration::from_secs(180);
    while !held.log().contains("no answer from the database within") {
        let ended = held.child.try_wait().expect("poll pipecrawl");
        assert!(
            ended.is_none() && Instant::now() < deadline,
            "the node never said it waited ({ended:?}): {}",
            held.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    lock.commit().await.expect("let the frontier go");
    let log = held.ends_well().await;
    assert!(!log.contains("lost the connection"), "{log}");
    assert!(log.contains("a lock another session holds"), "{log}");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM pages")
        .fetch_one(&dba)
        .await
        .expect("count the pages");
    assert_eq!(stored, 7, "{log}");
}

/// Kills `child` (kill -9) and runs the crawl of `config` again, to its end.
async fn kill_and_crawl_again(mut child: Child, config: PathBuf) -> std::process::Output {
    child.kill().expect("kill -9 pipecrawl");
    child.wait().expect("reap pipecrawl");
    tokio::task::spawn_blocking(move || run_to_the_end("crawl", &config))
        .await
        .expect("join the crawl")
}

/// A crawl killed once all but a page no server answers are stored (a link to a host
/// that is down, a page that never answers) exits as the crawl never killed would: 0,
/// its site answered. The run that resumed it tried only that page, and took the crawl
/// for one that reached no server: exit 4, "are the seeds' hosts up", and a
/// `crawl … && next-step` stopped there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_resumed_for_a_page_that_never_answers_exits_as_an_uninterrupted_one() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(&h, "/", Resource::Html("<a href='/never'>never</a>".into()));
    // The gate stays shut: the page is asked for and times out, in every run.
    let (_gate, shut) = tokio::sync::watch::channel(false);
    b.add(
        &h,
        "/never",
        Resource::Held(shut, Box::new(Resource::Html(String::new()))),
    );
    let site = b.start();
    let harness = Harness::default();
    let text = harness.test_config_text(&[site.url(0, "/")], "[fetch]\ntimeout_ms = 1000\n");
    let config = harness.write_config(&text);

    let child = spawn_crawl(&config);
    let never = site.url(0, "/never");
    let deadline = Instant::now() + Duration::from_secs(30);
    while site.count(&never) == 0 || harness.page_count().await == 0 {
        assert!(Instant::now() < deadline, "the home page was not stored");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let out = kill_and_crawl_again(child, config).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the resumed crawl: {:?}: {stderr}",
        out.status
    );
    let db = harness.db().await;
    assert_eq!(db.scalar("SELECT count(*) FROM pages").await, 2);
    assert_eq!(
        site.count(&never),
        2,
        "asked again once, in the resumed run"
    );

    // That crawl ended: the next, to a server that is down, reaches nothing of its own.
    let (_held, closed) = super::refusing_address([127, 0, 0, 1]);
    let config =
        harness.write_config(&harness.test_config_text(&[format!("http://{closed}/")], ""));
    let out = tokio::task::spawn_blocking(move || run_to_the_end("crawl", &config))
        .await
        .expect("join the crawl");
    assert_eq!(out.status.code(), Some(4), "{out:?}");
}

/// A 503 with `Retry-After` asks its whole host to wait, and the crawl holds the host's
/// other URLs for as long. A crawl killed while it waits, and started again, must wait
/// still: the pause lived in memory only, and the next run asked the host for its other
/// pages at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_killed_during_a_hosts_retry_after_waits_it_out_when_started_again() {
    let waiting = "SELECT count(*) FROM frontier WHERE attempts > 0 AND state = 'queued'";
    killed_during_a_retry_after_and_started_again(3, waiting).await;
}

/// As above, for a 503 whose attempts are spent: stored as final, it still asks its host
/// to wait. The pause lived in memory only, and the next run asked the host at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_killed_during_a_final_503s_retry_after_waits_it_out_when_started_again() {
    let stored = "SELECT count(*) FROM pages WHERE status = 503";
    killed_during_a_retry_after_and_started_again(1, stored).await;
}

/// Crawls a site whose `/busy` answers a 503 with a `Retry-After` of a few seconds (and
/// then a page), with `max_attempts`; kills the crawl once `sql` counts a row, runs it
/// again, and checks that the host was asked nothing within the `Retry-After`.
async fn killed_during_a_retry_after_and_started_again(max_attempts: u32, sql: &str) {
    let (site, wait) = busy_site().await;
    let harness = Harness::default();
    let extra = format!(
        "[retry]\nmax_attempts = {max_attempts}\n[fetch]\nworkers = 1\n\
         [politeness]\ndelay_ms = 0\nper_host_concurrency = 1\n"
    );
    let config = harness.write_config(&harness.test_config_text(&[site.url(0, "/")], &extra));

    let child = spawn_crawl(&config);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !harness.db_path().exists() || harness.db().await.try_scalar(sql).await.unwrap_or(0) == 0
    {
        assert!(Instant::now() < deadline, "/busy's 503 was not written");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let out = kill_and_crawl_again(child, config).await;
    assert!(out.status.success(), "{out:?}");
    assert_nothing_asked_within(&site, wait);
    assert_eq!(harness.page_count().await, 4);
}

/// On PostgreSQL, a node killed while its host waits out a 503's `Retry-After` longer
/// than the lease time: another node takes the host over once its lease runs out, and
/// must wait still. It waited one delay, the `Retry-After` kept in `hosts` unread, and
/// asked the host for its other pages within it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_taken_over_from_a_node_killed_during_its_retry_after_waits_it_out() {
    let Some(postgres) =
        super::postgres::TestPostgres::start("a_host_taken_over_during_retry_after")
    else {
        return;
    };
    let taken = TakenOver::start(&postgres, Duration::from_secs(4)).await;
    let out = kill_and_crawl_again(taken.first, taken.next).await;
    assert!(out.status.success(), "{out:?}");
    assert_nothing_asked_within(&taken.site, taken.wait);
}

/// As above, with the node taking the host over slow to claim it: what is left of the
/// `Retry-After` is read with the claim, but was counted from the start of the round
/// of lease steps the claim ends, so a round held up (here its look at the cluster's
/// share, by a lock on `crawl_state`) cut the pause short by as long, and the host was
/// asked within it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_taken_over_by_a_node_slow_to_claim_it_still_waits_out_its_retry_after() {
    use sqlx::Connection;
    let Some(postgres) = super::postgres::TestPostgres::start("a_host_claimed_slowly") else {
        return;
    };
    // Long enough to outlast the next node's start and the round held up.
    let taken = TakenOver::start(&postgres, Duration::from_secs(10)).await;
    let mut first = taken.first;
    first.kill().expect("kill -9 pipecrawl");
    first.wait().expect("reap pipecrawl");
    let mut lock = sqlx::PgConnection::connect(&taken.database)
        .await
        .expect("connect");
    // The dead node's lease of the host is made to run out in the round held up, not
    // before.
    let lease_until =
        |until: &str| format!("UPDATE hosts SET owner_expires = {until} WHERE owner = 'first'");
    sqlx::raw_sql(sqlx::AssertSqlSafe(lease_until("9000000000000")))
        .execute(&mut lock)
        .await
        .expect("extend the dead node's lease");
    let mut next = spawn_crawl(&taken.next);
    // Once it has joined (renewed its leases a first time) and finished its start,
    // which reads `crawl_state` too.
    let joined = "SELECT count(*) FROM nodes WHERE id = 'next' AND heartbeat > started_at";
    let deadline = Instant::now() + Duration::from_secs(30);
    while sqlx::query_scalar::<_, i64>(joined)
        .fetch_one(&mut lock)
        .await
        .expect("read nodes")
        == 0
    {
        assert!(Instant::now() < deadline, "the next node never joined");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Of the steps that read `crawl_state`, only the look at the share runs once a node
    // has started. (A statement waiting for its table still shows the one before it.)
    let blocked_share =
        "SELECT count(*) FROM pg_locks WHERE relation = 'crawl_state'::regclass AND NOT granted";
    let deadline = Instant::now() + Duration::from_secs(30);
    let held_since = 'held: loop {
        assert!(
            Instant::now() < deadline,
            "the next node never looked at the share"
        );
        sqlx::raw_sql("BEGIN; LOCK TABLE crawl_state IN ACCESS EXCLUSIVE MODE")
            .execute(&mut lock)
            .await
            .expect("lock crawl_state");
        // Let go now and then, should the node's start still read it.
        let until = Instant::now() + Duration::from_millis(1200);
        while Instant::now() < until {
            let blocked: i64 = sqlx::query_scalar(blocked_share)
                .fetch_one(&mut lock)
                .await
                .expect("read pg_locks");
            if blocked > 0 {
                break 'held Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        sqlx::raw_sql("ROLLBACK")
            .execute(&mut lock)
            .await
            .expect("unlock crawl_state");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    sqlx::raw_sql(sqlx::AssertSqlSafe(lease_until("0")))
        .execute(&mut lock)
        .await
        .expect("end the dead node's lease");
    tokio::time::sleep(Duration::from_secs(1).saturating_sub(held_since.elapsed())).await;
    sqlx::raw_sql("COMMIT")
        .execute(&mut lock)
        .await
        .expect("unlock crawl_state");
    let status = wait_exit(&mut next, Duration::from_secs(60)).await;
    assert!(status.success(), "{status:?}");
    assert_nothing_asked_within(&taken.site, taken.wait);
}

/// A node ("first") of a crawl on PostgreSQL whose host waits out `/busy`'s
/// `Retry-After` of `wait`, and the config of the node to take the host over ("next").
struct TakenOver {
    site: TestSite,
    wait: Duration,
    database: String,
    first: Child,
    next: PathBuf,
    _harness: Harness,
}

impl TakenOver {
    /// Starts "first" and waits until `/busy`'s 503 is written.
    async fn start(postgres: &super::postgres::TestPostgres, wait: Duration) -> Self {
        let database = postgres.database("taken_over").await;
        let site = busy_site_waiting(wait).await;
        let harness = Harness::default();
        let config = |node: &str| {
            let sqlite = format!("{:?}", harness.db_path().display().to_string());
            let extra = format!(
                "[retry]\nmax_attempts = 3\n[fetch]\nworkers = 1\n\
                 [politeness]\ndelay_ms = 0\nper_host_concurrency = 1\n\
                 [cluster]\nnode_id = {node:?}\nlease_ttl_ms = 1500\n"
            );
            let text = harness
                .test_config_text(&[site.url(0, "/")], &extra)
                .replace(&sqlite, &format!("{database:?}"));
            let path = harness.dir.path().join(format!("{node}.toml"));
            std::fs::write(&path, text).expect("write a node's config");
            path
        };
        let (first, next) = (config("first"), config("next"));
        let pool = sqlx::PgPool::connect(&database)
            .await
            .expect("connect to the test database");

        let child = spawn_crawl(&first);
        let deadline = Instant::now() + Duration::from_secs(30);
        let waiting = "SELECT count(*) FROM frontier WHERE attempts > 0 AND state = 'queued'";
        while sqlx::query_scalar::<_, i64>(waiting)
            .fetch_one(&pool)
            .await
            .unwrap_or(0)
            == 0
        {
            assert!(Instant::now() < deadline, "/busy's 503 was not written");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        pool.close().await;
        Self {
            site,
            wait,
            database,
            first: child,
            next,
            _harness: harness,
        }
    }
}

/// A site whose `/busy` answers a 503 with a `Retry-After` of some seconds (and then a
/// page), its home linking to it first and to two other pages: with the wait.
async fn busy_site() -> (TestSite, Duration) {
    const WAIT: Duration = Duration::from_secs(4);
    (busy_site_waiting(WAIT).await, WAIT)
}

/// [`busy_site`], its `Retry-After` `wait`.
async fn busy_site_waiting(wait: Duration) -> TestSite {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    // `/busy` first: the others wait behind its answer.
    let links = "<a href='/busy'>b</a><a href='/m'>m</a><a href='/n'>n</a>";
    b.add(&h, "/", Resource::Html(links.into()));
    b.add(&h, "/m", Resource::Html("<title>m</title>".into()));
    b.add(&h, "/n", Resource::Html("<title>n</title>".into()));
    let busy = Resource::WithHeaders(
        vec![("Retry-After".into(), wait.as_secs().to_string())],
        Box::new(Resource::Status(503, "busy".into())),
    );
    let fine = Resource::Html("<title>fine</title>".into());
    b.add(&h, "/busy", Resource::Sequence(vec![busy, fine]));
    b.start()
}

/// Nothing but robots.txt was asked of the site within `wait` of `/busy`'s answer.
fn assert_nothing_asked_within(site: &TestSite, wait: Duration) {
    let hits = site.hits();
    let answered = hits
        .iter()
        .find(|h| h.path == "/busy")
        .expect("/busy asked")
        .at;
    let early: Vec<_> = hits
        .iter()
        .filter(|h| h.path != "/robots.txt" && h.at > answered && h.at - answered < wait)
        .map(|h| (h.path.as_str(), h.at - answered))
        .collect();
    assert!(early.is_empty(), "asked within the Retry-After: {early:?}");
}

/// A start that names a host an earlier run cut at its domain's
/// `traps.max_hosts_per_domain` admits it, then queues its cut URLs again in a pass of
/// its own, which builds an index first: the disk filled between the two, and the pass
/// run again once there was room found the host admitted already and queued nothing.
/// Its URLs stayed trap rows for good, every later start finding it admitted too.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_hosts_cut_urls_are_queued_again_when_the_disk_fills_as_they_are() {
    const CUT: i64 = 20_000;
    let harness = Harness::default();
    let Some(disk) = SmallDisk::mount(harness.dir.path()) else {
        return;
    };
    disk.grow();
    let path = harness.db_path();
    let store = pipecrawl::store::Store::open(&path.display().to_string())
        .await
        .expect("open the store");
    let options = SqliteConnectOptions::new().filename(&path);
    let db = SqlitePool::connect_with(options)
        .await
        .expect("open the database");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {CUT})
         INSERT INTO frontier (url, host, depth, priority, state)
             SELECT 'http://a5.trap.test/' || i, 'a5.trap.test', 1, 0, 'failed' FROM n;
         INSERT INTO pages (id, url, final_url, depth, fetched_at, changed_at, error_kind, error)
             SELECT id, url, url, depth, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', 'trap',
                 'its domain trap.test has traps.max_hosts_per_domain = 3 host names crawled \
                  already, and its host a5.trap.test would be one more'
             FROM frontier;
         INSERT INTO host_budget (host, urls) VALUES ('a5.trap.test', 0);"
    )))
    .execute(&db)
    .await
    .expect("cut a host's URLs");
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&db)
        .await
        .expect("empty the WAL");
    // Room to admit the host, none for the index its pass builds.
    let filler = disk.fill();
    free_room(&filler, 64 << 10);
    let admitting = tokio::spawn(async move {
        store
            .admit_named_hosts(&["a5.trap.test".to_owned()], 0)
            .await
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    std::fs::remove_file(filler).expect("free the disk");
    let requeued = tokio::time::timeout(Duration::from_secs(30), admitting)
        .await
        .expect("the pass went on once there was room")
        .expect("the pass")
        .expect("admit the host");
    let queued: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM frontier WHERE host = 'a5.trap.test' AND state = 'queued'",
    )
    .fetch_one(&db)
    .await
    .expect("count the queued URLs");
    assert_eq!(
        (requeued, queued),
        (CUT as u64, CUT),
        "the host's cut URLs were not queued again"
    );
}

/// A service started on a disk with a little room left, which keeps link counts: the
/// first step to find no room (in a transaction SQLite then rolled back whole, so that
/// sqlx's rollback of it failed) left sqlx counting a transaction the connection no
/// longer had, and a later one rolled back only to a savepoint, leaving the connection
/// in a transaction: the service, having said it waited for room, stopped with "cannot
/// start a transaction within a transaction".
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_started_on_a_nearly_full_disk_waits_for_room_and_completes() {
    let (site, model) = big_site().await;
    let want = expected(&site, &model);
    let harness = Harness::default();
    let Some(disk) = SmallDisk::mount(harness.dir.path()) else {
        return;
    };
    disk.grow();
    let first = harness.config_text(&model.seeds, &format!("{CONFIG}[scope]\nmax_pages = 100\n"));
    let mut child = spawn_crawl(&harness.write_config(&first));
    let status = wait_exit(&mut child, Duration::from_secs(60)).await;
    assert!(status.success(), "the first run: {status}");
    let config = harness.write_config(
        &harness.config_text(&model.seeds, &format!("{CONFIG}{}", super::ADMIN_ANY_PORT)),
    );
    let filler = disk.fill();
    free_room(&filler, 64 << 10);
    let mut service = LoggedCrawl::run("serve", &config);
    if let Some(status) = service.said_or_ended(&no_room_in(&harness)).await {
        panic!(
            "the service ended ({status}) rather than wait for room: {}",
            service.said()
        );
    }
    // Long enough for several steps to find no room, each tried a few times.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert!(
        service.child.try_wait().expect("poll pipecrawl").is_none(),
        "the service stopped while it waited for room: {}",
        service.said()
    );
    std::fs::remove_file(filler).expect("free the disk");
    // Stuck once no page is stored for a minute: a loaded machine may take minutes over
    // the whole crawl, which a deadline for all of it failed.
    let (mut stored, mut deadline) = (0, Instant::now());
    loop {
        let count = harness.page_count().await;
        if count >= i64::try_from(want.len()).expect("a count") {
            break;
        }
        assert!(
            service.child.try_wait().expect("poll pipecrawl").is_none(),
            "the service stopped: {}",
            service.said()
        );
        if count > stored {
            (stored, deadline) = (count, Instant::now() + Duration::from_secs(60));
        }
        assert!(Instant::now() < deadline, "stuck: {}", service.said());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    super::cli::send_signal(service.child.id(), "TERM");
    let status = wait_exit(&mut service.child, Duration::from_secs(30)).await;
    assert!(status.success(), "{status}: {}", service.said());
    assert_complete_and_single(&harness, &want).await;
    assert_eq!(harness.db().await.wrong_link_counts().await, 0);
}

/// A crawl done with its pages waits up to 30 s, as it closes, for another program's
/// read transaction to end (to copy its last commits into the database file), and says
/// so; a SIGTERM or Ctrl-C then, as a supervisor sends (systemd's TimeoutStopSec=30),
/// cuts the wait to the 2 s a stopped run gets: the signal went unheard, its listener
/// gone with the pipeline, and the crawl was killed at the supervisor's timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_cuts_short_the_wait_for_a_reader_at_a_crawls_end() {
    use sqlx::Connection;
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(&h, "/", Resource::Html("<title>Home</title>".into()));
    b.add(&h, "/more", Resource::Html("<title>More</title>".into()));
    let site = b.start();
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;
    let reader = harness.open_reader().await;

    // A page more, committed after the reader's snapshot: the WAL cannot be emptied.
    let seeds = [site.url(0, "/"), site.url(0, "/more")];
    let config = harness.write_config(&harness.test_config_text(&seeds, ""));
    let mut child = spawn_crawl_piped(&config, "info");
    let lines = super::stderr_lines(&mut child);
    let waiting = lines
        .iter()
        .find(|l| l.contains("holds a read transaction open on the database: waiting up to"));
    assert!(
        waiting.is_some(),
        "the crawl never said it waits for the reader"
    );
    super::cli::send_signal(child.id(), "TERM");
    let status = wait_exit(&mut child, Duration::from_secs(120)).await;
    let said: Vec<String> = lines.try_iter().collect();
    reader.close().await.expect("close the reader");
    assert!(
        status.success(),
        "the crawl exited with {status:?}: {said:?}"
    );
    let kept = said
        .iter()
        .find(|l| l.contains("in vain"))
        .unwrap_or_else(|| panic!("no word of the WAL kept: {said:?}"));
    // "waited N s for it": the 30 s, before, however soon the signal came.
    let waited: f64 = kept
        .split("waited ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no time waited in {kept}"));
    assert!(waited < 25.0, "the wait went on after SIGTERM: {kept}");
    assert_eq!(harness.page_count().await, 2, "the page is stored");
}
