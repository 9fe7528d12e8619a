//! Many nodes, one PostgreSQL: several `pipecrawl crawl` processes share one crawl of a
//! site over twelve loopback hosts. Checked against the site's request log: every page
//! stored once, every URL requested once (but for what a killed node had in flight),
//! robots.txt once per host, and per-host delay and concurrency kept across the nodes.
//!
//! Each test starts its own throwaway PostgreSQL (see `postgres.rs`) and is skipped,
//! saying so, on a machine without the server binaries.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pipecrawl::frontier::dispatcher::Progress;
use pipecrawl::frontier::hosts::HostLeases;
use pipecrawl::frontier::seen::SeenUrls;
use pipecrawl::frontier::Frontier;
use pipecrawl::page::{Discovered, Fetched, JobKind};
use pipecrawl::parser::LinkRules;
use pipecrawl::politeness::HostGate;
use pipecrawl::recrawl::RecrawlPolicy;
use pipecrawl::scope::{Scope, SharedScope};
use pipecrawl::stages::{Fill, Queues, Stages};
use pipecrawl::store::writer::StoreWriter;
use pipecrawl::store::{LeaseRows, Store};
use sqlx::{Connection, PgPool};

use super::graph::{self, Rules};
use super::postgres::{CutProxy, TestPostgres};
use super::site::{Resource, SiteBuilder, TestSite};

const HOSTS: u8 = 12;
const PAGES_PER_HOST: usize = 250;
const DELAY_MS: u64 = 50;
/// The nodes' `cluster.lease_ttl_ms`: short, so that a dead node's work moves on soon.
const TTL_MS: i64 = 3000;
/// The lease time of tests in which every node lives to the end and each URL is asked
/// once (the default). A niced node of a loaded two-core machine was measured renewing
/// 2.7 s apart (a renewal every third of the lease time, each taking up to 1.6 s) and
/// its host leases 0.3 s after they ran out: past 3 s, it looks silent, and the pages
/// it fetched and has yet to store go to the others, which ask them again. That is a
/// stalled node's lot, and the stall tests' to check.
const LIVE_TTL_MS: i64 = 30_000;
/// One request at a time per host: then each request waits for the answer to the one
/// before, which the server has surely seen, and two nodes on one host would show as two
/// requests at once.
const CONCURRENCY: usize = 1;
/// Arrivals at the server can be closer than the crawler spaced the requests by the
/// scheduling noise of a loaded two-core machine.
const JITTER: Duration = Duration::from_millis(20);
/// Small pools, channels and batches, so that the pages a kill can cost are few: at most
/// the workers, the two channels and one batch.
const PER_NODE_IN_FLIGHT: usize = FETCH_WORKERS + 8 + 8 + 64;
/// A node's `fetch.workers`, unless a test says otherwise.
const FETCH_WORKERS: usize = 8;

struct Cluster {
    site: TestSite,
    want: BTreeSet<String>,
    seeds: Vec<String>,
    database: String,
    /// The nodes' `cluster.lease_ttl_ms`.
    ttl_ms: i64,
    dir: tempfile::TempDir,
    /// Declared last: the server stops after the nodes are gone.
    postgres: TestPostgres,
}

impl Cluster {
    async fn start(test: &str) -> Option<Self> {
        Self::start_with(test, Duration::ZERO).await
    }

    /// Starts a cluster whose site makes every answer wait `slow`.
    async fn start_with(test: &str, slow: Duration) -> Option<Self> {
        let postgres = TestPostgres::start(test)?;
        let database = postgres.database("crawl").await;
        let mut b = SiteBuilder::bind(HOSTS).await;
        let model = graph::generate(&mut b, usize::from(HOSTS), PAGES_PER_HOST, 0x5eed);
        if !slow.is_zero() {
            for i in 0..usize::from(HOSTS) {
                let authority = b.authority(i);
                b.delay_host(&authority, slow);
            }
        }
        let site = b.start();
        let want: BTreeSet<String> = model
            .reachable(&Rules {
                hosts: &site.authorities,
                include: None,
                exclude: None,
                max_depth: None,
            })
            .into_keys()
            .collect();
        assert!(want.len() >= 3000, "the site is {} pages", want.len());
        Some(Self {
            site,
            want,
            seeds: model.seeds,
            database,
            ttl_ms: TTL_MS,
            dir: tempfile::tempdir().expect("a temp dir"),
            postgres,
        })
    }

    /// The cluster with a lease time no node outlasts: see [`LIVE_TTL_MS`].
    fn living(mut self) -> Self {
        self.ttl_ms = LIVE_TTL_MS;
        self
    }

    /// Starts node `name` (its user agent names it too, so the site's log tells the
    /// nodes apart).
    fn node(&self, name: &str) -> Node {
        self.node_with(name, "")
    }

    /// Starts node `name` with `extra` config sections.
    fn node_with(&self, name: &str, extra: &str) -> Node {
        self.start_node(name, "crawl", extra)
    }

    /// Starts node `name` running `command` (`crawl` or `serve`).
    fn start_node(&self, name: &str, command: &str, extra: &str) -> Node {
        self.start_node_with_workers(name, command, FETCH_WORKERS, extra)
    }

    /// Starts node `name` running `command` with `workers` fetch workers.
    fn start_node_with_workers(
        &self,
        name: &str,
        command: &str,
        workers: usize,
        extra: &str,
    ) -> Node {
        let path = self.config(name, workers, extra);
        let log = self.dir.path().join(format!("{name}.log"));
        // Niced, so that the test's web server, which timestamps the requests, gets the
        // CPU first: on a busy machine a stalled server would see requests bunched up.
        let child = Command::new("nice")
            .args(["-n", "10"])
            .arg(env!("CARGO_BIN_EXE_pipecrawl"))
            .args([command, "--config"])
            .arg(&path)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("create a node's log"))
            .spawn()
            .expect("start pipecrawl");
        Node {
            name: name.to_owned(),
            child,
            log,
            site: self.site.clone(),
        }
    }

    /// Writes the config of node `name`, with `workers` fetch workers and `extra` config
    /// sections: its path.
    fn config(&self, name: &str, workers: usize, extra: &str) -> PathBuf {
        let seeds: Vec<String> = self.seeds.iter().map(|s| format!("{s:?}")).collect();
        let config = format!(
            "seeds = [{seeds}]\n\
             [storage]\ndatabase = {db:?}\nbatch_size = 64\n\
             [cluster]\nnode_id = {name:?}\nlease_ttl_ms = {ttl}\n\
             [fetch]\nworkers = {workers}\nuser_agent = \"pipecrawl-{name}/0.1\"\n\
             [channels]\nto_fetch = 8\nto_parse = 8\nto_store = 8\n\
             [politeness]\ndelay_ms = {DELAY_MS}\nper_host_concurrency = {CONCURRENCY}\n\
             [retry]\nmax_attempts = 1\n{extra}",
            seeds = seeds.join(", "),
            db = self.database,
            ttl = self.ttl_ms,
        );
        let path = self.dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, config).expect("write a node's config");
        path
    }

    /// Waits until the site has answered `n` requests.
    async fn wait_for_requests(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.site.hits().len() < n {
            assert!(
                Instant::now() < deadline,
                "the crawl stalled before {n} requests"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn pool(&self) -> PgPool {
        PgPool::connect(&self.database)
            .await
            .expect("connect to the crawl database")
    }

    /// Every page stored exactly once, and nothing left queued or leased.
    async fn assert_complete(&self) {
        let db = self.pool().await;
        let stored: Vec<String> = sqlx::query_scalar("SELECT url FROM pages")
            .fetch_all(&db)
            .await
            .expect("read pages");
        let unique: BTreeSet<String> = stored.iter().cloned().collect();
        assert_eq!(unique.len(), stored.len(), "a page was stored twice");
        let missing: Vec<&String> = self.want.difference(&unique).take(5).collect();
        let extra: Vec<&String> = unique.difference(&self.want).take(5).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "the stored pages differ from the site: missing {missing:?}, extra {extra:?}"
        );
        assert_nothing_left(&db).await;
        let duplicate_links: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT 1 FROM links
             GROUP BY source_id, target_url, anchor_text HAVING count(*) > 1) d",
        )
        .fetch_one(&db)
        .await
        .expect("count duplicate links");
        assert_eq!(duplicate_links, 0, "a page's links were stored twice");
    }

    /// No host saw two requests closer than the delay, nor more at once than allowed,
    /// and robots.txt was asked for once per host for the whole cluster.
    fn assert_polite(&self) {
        for host in &self.site.authorities {
            let mut hits = self.site.hits_for(host);
            hits.sort_by_key(|h| h.at);
            let closest = hits
                .windows(2)
                .min_by_key(|pair| pair[1].at.duration_since(pair[0].at))
                .expect("several requests per host");
            let gap = closest[1].at.duration_since(closest[0].at);
            assert!(
                gap + JITTER >= Duration::from_millis(DELAY_MS),
                "{host}: two requests {gap:?} apart: {:?}",
                closest
                    .iter()
                    .map(|h| (&h.path, &h.agent))
                    .collect::<Vec<_>>()
            );
            let most = self.site.max_in_flight(host);
            assert!(most <= CONCURRENCY, "{host}: {most} requests at once");
            let robots = self
                .site
                .hits_for(host)
                .iter()
                .filter(|h| h.path == "/robots.txt")
                .count();
            assert_eq!(robots, 1, "{host}: robots.txt was fetched {robots} times");
        }
    }

    /// After `event` (a kill, a stall, a database restart), only what a node had in flight
    /// was requested again.
    fn assert_only_in_flight_asked_again(&self, event: &str) {
        let twice = self.requested_twice();
        eprintln!("{event}: {} URLs requested again", twice.len());
        assert!(
            twice.len() <= PER_NODE_IN_FLIGHT,
            "{} URLs requested twice: {twice:?}",
            twice.len()
        );
    }

    /// URLs requested more than once.
    fn requested_twice(&self) -> Vec<String> {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for url in self.site.requested_urls() {
            *counts.entry(url).or_default() += 1;
        }
        counts
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(url, _)| url)
            .collect()
    }

    /// Requests per node, by user agent.
    fn requests_by_node(&self) -> HashMap<String, usize> {
        let mut by = HashMap::new();
        for hit in self.site.hits() {
            *by.entry(hit.agent).or_default() += 1;
        }
        by
    }
}

async fn assert_nothing_left(db: &PgPool) {
    let left: i64 =
        sqlx::query_scalar("SELECT count(*) FROM frontier WHERE state IN ('queued', 'leased')")
            .fetch_one(db)
            .await
            .expect("count unfinished rows");
    assert_eq!(left, 0, "URLs were left queued or leased");
}

struct Node {
    name: String,
    child: Child,
    log: PathBuf,
    /// The site the cluster crawls: its requests tell a crawl at work from a stuck one.
    site: TestSite,
}

impl Node {
    /// Waits for the node to exit 0. A busy machine stretches a crawl several times over
    /// (a niced node most of all), so what fails the test is the site hearing nothing
    /// from any node for `quiet`, or the node running ten times that.
    async fn finishes(&mut self, quiet: Duration) {
        let started = Instant::now();
        let (mut heard, mut heard_at) = (self.site.hit_count(), started);
        loop {
            if let Some(status) = self.child.try_wait().expect("poll pipecrawl") {
                assert!(
                    status.success(),
                    "node {} failed ({status:?}); its log:\n{}",
                    self.name,
                    tail(&self.log)
                );
                return;
            }
            let hits = self.site.hit_count();
            if hits != heard {
                (heard, heard_at) = (hits, Instant::now());
            }
            assert!(
                heard_at.elapsed() < quiet && started.elapsed() < quiet * 10,
                "node {} did not finish: the site heard nothing for {:?}, {:?} after the \
                 wait began; its log:\n{}",
                self.name,
                heard_at.elapsed(),
                started.elapsed(),
                tail(&self.log)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The base URL (`http://127.0.0.1:PORT`) of the admin API of the node, a service
    /// started with `ADMIN_ANY_PORT`, once its log says where it listens. It binds before
    /// it reads the database: 5 minutes bound a hang, not a slow start.
    async fn admin_url(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            if let Some(base) = log.lines().find_map(super::admin_url_in) {
                return base;
            }
            let ended = self.child.try_wait().expect("poll pipecrawl");
            assert!(
                ended.is_none() && Instant::now() < deadline,
                "node {} never said where its admin API listens ({ended:?}); its log:\n{}",
                self.name,
                tail(&self.log)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The node's log says what it met (`met`: "lost the connection to the database" as
    /// a restart ends it, "no answer from the database within 30 s" through a cut), and
    /// that the database answered again.
    fn assert_waited_for_the_database(&self, met: &str) {
        let log = std::fs::read_to_string(&self.log).expect("read the node's log");
        assert!(
            log.contains(met) && log.contains("the database answers again"),
            "the node did not say it waited for the database; its log:\n{}",
            tail(&self.log)
        );
    }

    /// Sends the node `SIG{name}`.
    fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -{name} of node {}", self.name);
    }

    /// The node's log says `said`.
    fn assert_said(&self, said: &str) {
        let log = std::fs::read_to_string(&self.log).expect("read the node's log");
        assert!(
            log.contains(said),
            "node {} never said {said:?}; its log:\n{}",
            self.name,
            tail(&self.log)
        );
    }

    fn kill_9(&mut self) {
        self.child.kill().expect("kill -9 a node");
        self.child.wait().expect("reap a node");
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_crawl_one_site_together_each_url_once_and_politely() {
    let Some(cluster) = Cluster::start("three_nodes_crawl_one_site_together")
        .await
        .map(Cluster::living)
    else {
        return;
    };
    let mut nodes: Vec<Node> = ["a", "b", "c"].iter().map(|n| cluster.node(n)).collect();
    for node in &mut nodes {
        node.finishes(Duration::from_secs(60)).await;
    }
    cluster.assert_complete().await;
    let twice = cluster.requested_twice();
    assert!(twice.is_empty(), "requested more than once: {twice:?}");
    cluster.assert_polite();
    let by_node = cluster.requests_by_node();
    eprintln!("three nodes: requests per node {by_node:?}");
    assert_eq!(by_node.len(), 3, "every node crawled: {by_node:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_loses_nothing_and_the_others_finish_its_work() {
    let Some(cluster) = Cluster::start("a_killed_node_loses_nothing").await else {
        return;
    };
    let mut nodes: Vec<Node> = ["a", "b", "c"].iter().map(|n| cluster.node(n)).collect();
    cluster.wait_for_requests(1000).await;
    nodes[1].kill_9();
    let killed_at = cluster.site.hits().len();
    for (i, node) in nodes.iter_mut().enumerate() {
        if i != 1 {
            node.finishes(Duration::from_secs(60)).await;
        }
    }
    cluster.assert_complete().await;
    cluster.assert_polite();
    cluster.assert_only_in_flight_asked_again(&format!(
        "kill -9 of one node of three after {killed_at} requests (in flight at the kill)"
    ));
    let again: HashMap<String, usize> = cluster.requests_by_node();
    assert!(again.len() == 3, "{again:?}");

    // A node started after it finds the killed node's run with no end, and says it is
    // over: its node has no heartbeat. Nor is it counted a node crawling beside it.
    let mut alone = cluster.node("d");
    alone.finishes(Duration::from_secs(60)).await;
    alone.assert_said("crawling alone on this database for now");
    let runs: Vec<(String, Option<String>, bool)> =
        sqlx::query_as("SELECT node_id, ended, ended_at IS NULL FROM runs ORDER BY node_id")
            .fetch_all(&cluster.pool().await)
            .await
            .expect("the runs");
    let ended = |node: &str, how: &str, open: bool| (node.to_owned(), Some(how.to_owned()), open);
    assert_eq!(
        runs,
        [
            ended("a", "finished", false),
            ended("b", "killed", true),
            ended("c", "finished", false),
            ended("d", "finished", false),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_joining_mid_crawl_takes_a_share_of_the_work() {
    let Some(cluster) = Cluster::start("a_node_joining_mid_crawl")
        .await
        .map(Cluster::living)
    else {
        return;
    };
    let mut nodes: Vec<Node> = ["a", "b"].iter().map(|n| cluster.node(n)).collect();
    cluster.wait_for_requests(800).await;
    let joined_at = cluster.site.hits().len();
    nodes.push(cluster.node("late"));
    for node in &mut nodes {
        node.finishes(Duration::from_secs(60)).await;
    }
    nodes[2].assert_said("crawling with 2 other nodes on this database");
    cluster.assert_complete().await;
    let twice = cluster.requested_twice();
    assert!(twice.is_empty(), "requested more than once: {twice:?}");
    cluster.assert_polite();
    let by_node = cluster.requests_by_node();
    let late = by_node.get("pipecrawl-late/0.1").copied().unwrap_or(0);
    let after_join = cluster.site.hits().len() - joined_at;
    eprintln!(
        "a node joined after {joined_at} requests and made {late} of the {after_join} after \
         it: {by_node:?}"
    );
    assert!(
        late * 6 >= after_join,
        "the late node made {late} of the {after_join} requests after it joined"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_each_hosts_page_budget() {
    const BUDGET: usize = 40;
    let Some(cluster) = Cluster::start("two_nodes_share_each_hosts_page_budget")
        .await
        .map(Cluster::living)
    else {
        return;
    };
    let budget = format!("[traps]\nmax_pages_per_host = {BUDGET}\n");
    let mut nodes: Vec<Node> = ["a", "b"]
        .iter()
        .map(|n| cluster.node_with(n, &budget))
        .collect();
    for node in &mut nodes {
        node.finishes(Duration::from_secs(60)).await;
    }
    assert!(cluster.requested_twice().is_empty());
    // Both nodes find links to every host: counted per node, a host could get a budget
    // from each of them.
    let trapped: Vec<String> = sqlx::query_scalar(
        "SELECT url FROM pages WHERE error_kind = 'trap' AND error LIKE '%max_pages_per_host%'",
    )
    .fetch_all(&cluster.pool().await)
    .await
    .expect("read trap rows");
    let mut cut = 0;
    for authority in &cluster.site.authorities {
        let requested = cluster
            .site
            .hits_for(authority)
            .iter()
            .filter(|h| h.path != "/robots.txt")
            .count();
        let prefix = format!("http://{authority}/");
        if trapped.iter().any(|u| u.starts_with(&prefix)) {
            assert_eq!(requested, BUDGET, "{authority} used its budget");
            cut += 1;
        } else {
            assert!(requested <= BUDGET, "{authority}: {requested} pages");
        }
    }
    assert!(cut > 0, "no host reached its budget");
}

/// A node's URLs go back to the queue when their lease has run out and the node has been
/// silent for a lease time, not before: a live node's renewal can skip a row that another
/// node's transaction holds, and that row is still in the node's window or in flight.
/// Taken back early, it would be leased and counted a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_silent_nodes_expired_urls_go_back_to_the_queue() {
    const LIVE_FOR_MS: i64 = 6000;
    let Some(cluster) = Cluster::start("only_a_silent_nodes_expired_urls").await else {
        return;
    };
    cluster.node("a").finishes(Duration::from_secs(60)).await;

    // Two URLs whose leases ran out: one of a node that says it is alive for a while
    // yet, one of a node gone.
    let host = &cluster.site.authorities[0];
    let (kept, taken) = ("/p/leased-by-a-live-node", "/p/leased-by-a-gone-node");
    let db = cluster.pool().await;
    let now_ms = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("a clock after 1970")
            .as_millis(),
    )
    .expect("a time in range");
    // The node counts as live until a lease time after its last heartbeat.
    let silent_at = Instant::now()
        + Duration::from_millis(u64::try_from(LIVE_FOR_MS + TTL_MS).expect("a positive time"));
    sqlx::query("INSERT INTO nodes (id, started_at, heartbeat) VALUES ('live', $1, $2)")
        .bind(now_ms)
        .bind(now_ms + LIVE_FOR_MS)
        .execute(&db)
        .await
        .expect("add a live node");
    for (path, owner) in [(kept, "live"), (taken, "gone")] {
        sqlx::query(
            "INSERT INTO frontier (url, host, depth, priority, state, lease_owner, lease_expires)
             VALUES ($1, $2, 1, 0, 'leased', $3, $4)",
        )
        .bind(format!("http://{host}{path}"))
        .bind(host)
        .bind(owner)
        .bind(now_ms - 1)
        .execute(&db)
        .await
        .expect("add a leased URL");
    }

    cluster.node("b").finishes(Duration::from_secs(60)).await;
    let when = |path: &str| {
        let hits: Vec<Instant> = cluster
            .site
            .hits_for(host)
            .iter()
            .filter(|h| h.path == path)
            .map(|h| h.at)
            .collect();
        assert_eq!(hits.len(), 1, "{path} was requested {} times", hits.len());
        hits[0]
    };
    let (kept_at, taken_at) = (when(kept), when(taken));
    assert!(
        taken_at < kept_at,
        "the gone node's URL was not crawled before the live node's"
    );
    assert!(
        kept_at >= silent_at,
        "the live node's URL was taken {:?} before that node went silent",
        silent_at.duration_since(kept_at)
    );
    let stored: Vec<(String, Option<i64>)> = sqlx::query_as(
        "SELECT url, status FROM pages WHERE url LIKE '%/p/leased-by-%' ORDER BY url",
    )
    .fetch_all(&db)
    .await
    .expect("read the two pages");
    assert_eq!(
        stored,
        [
            (format!("http://{host}{taken}"), Some(404)),
            (format!("http://{host}{kept}"), Some(404)),
        ]
    );
    assert_nothing_left(&db).await;
}

/// `scope.max_pages` is the pages stored in the database: nodes sharing one crawl share
/// it, rather than each storing that many.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_the_crawls_page_limit() {
    const MAX_PAGES: i64 = 120;
    let Some(cluster) = Cluster::start("two_nodes_share_the_crawls_page_limit")
        .await
        .map(Cluster::living)
    else {
        return;
    };
    let limit = format!("[scope]\nmax_pages = {MAX_PAGES}\n");
    let mut nodes: Vec<Node> = ["a", "b"]
        .iter()
        .map(|n| cluster.node_with(n, &limit))
        .collect();
    for node in &mut nodes {
        node.finishes(Duration::from_secs(60)).await;
    }
    let db = cluster.pool().await;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM pages")
        .fetch_one(&db)
        .await
        .expect("count pages");
    let requested = cluster
        .site
        .hits()
        .iter()
        .filter(|h| h.path != "/robots.txt")
        .count();
    eprintln!("two nodes, max_pages = {MAX_PAGES}: {stored} pages, {requested} requests");
    assert!(stored <= MAX_PAGES, "{stored} pages stored");
    assert!(
        requested <= usize::try_from(MAX_PAGES).expect("a small number"),
        "{requested} pages requested"
    );
    assert!(stored >= MAX_PAGES / 2, "only {stored} pages stored");
    assert!(cluster.requested_twice().is_empty());
    let leased: i64 = sqlx::query_scalar("SELECT count(*) FROM frontier WHERE state = 'leased'")
        .fetch_one(&db)
        .await
        .expect("count leased rows");
    assert_eq!(leased, 0, "rows were left leased");
}

/// A node stalled past its lease time (here stopped with SIGSTOP) loses its hosts and
/// URLs to the others. When it wakes it still holds pages it fetched before: they are
/// not stored over what the others stored meanwhile, and the rows it had leased, now
/// another node's, stay that node's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_node_that_wakes_stores_nothing_the_others_took() {
    let Some(cluster) = Cluster::start("a_stalled_node_that_wakes").await else {
        return;
    };
    let mut nodes: Vec<Node> = ["a", "b"].iter().map(|n| cluster.node(n)).collect();
    cluster.wait_for_requests(600).await;
    nodes[0].signal("STOP");
    // Silent for more than two lease times: its hosts and URLs have gone to b.
    tokio::time::sleep(Duration::from_millis(
        u64::try_from(3 * TTL_MS).expect("positive"),
    ))
    .await;
    nodes[0].signal("CONT");
    for node in &mut nodes {
        node.finishes(Duration::from_secs(90)).await;
    }
    cluster.assert_complete().await;
    // Only what the stalled node had in flight: the others' leases are theirs.
    cluster.assert_only_in_flight_asked_again("a node stalled and woke");
}

/// A node stalled past its lease time wakes with jobs it had handed to its fetch pool
/// and not yet requested: their hosts and URLs went to the other node meanwhile, which
/// fetched them. Requested now, they would be asked twice, and of hosts another node
/// crawls. Each fetch worker may have had one request about to go out when the stall
/// came; nothing more of the lost leases is requested.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_node_that_wakes_requests_nothing_of_the_leases_it_lost() {
    // One fetch worker and slow answers: jobs wait for it in the fetch pool's channel.
    const WORKERS: usize = 1;
    let Some(cluster) =
        Cluster::start_with("a_stalled_node_requests_nothing", Duration::from_millis(20)).await
    else {
        return;
    };
    let mut a = cluster.start_node_with_workers("a", "crawl", WORKERS, "");
    let mut b = cluster.node("b");
    cluster.wait_for_requests(300).await;
    a.signal("STOP");
    tokio::time::sleep(Duration::from_millis(
        u64::try_from(3 * TTL_MS).expect("positive"),
    ))
    .await;
    a.signal("CONT");
    let woke = Instant::now();
    for node in [&mut a, &mut b] {
        node.finishes(Duration::from_secs(90)).await;
    }
    cluster.assert_complete().await;
    let hits = cluster.site.hits();
    let asked_by = |agent: &str| -> HashSet<String> {
        hits.iter()
            .filter(|h| h.agent == agent)
            .map(|h| format!("http://{}{}", h.host, h.path))
            .collect()
    };
    let by_b = asked_by("pipecrawl-b/0.1");
    let again: Vec<String> = hits
        .iter()
        .filter(|h| h.agent == "pipecrawl-a/0.1" && h.at >= woke)
        .map(|h| format!("http://{}{}", h.host, h.path))
        .filter(|url| by_b.contains(url))
        .collect();
    assert!(
        again.len() <= WORKERS,
        "the woken node asked {} URLs b had taken: {again:?}",
        again.len()
    );
}

/// `scope.max_pages` counts the URLs every node holds leased, but a node ends at the
/// limit only once the pages stored and its own leases come to it: another node's leases
/// may yet go back to the queue. Here that node is killed holding leases: the node left
/// must not end short of the limit, leaving those URLs leased, but take them over once
/// they are reclaimed and store the crawl's `max_pages` pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_nodes_leases_do_not_end_the_others_short_of_the_page_limit() {
    const MAX_PAGES: i64 = 150;
    let Some(cluster) = Cluster::start("a_killed_nodes_leases_do_not_end_the_others").await else {
        return;
    };
    let limit = format!("[scope]\nmax_pages = {MAX_PAGES}\n");
    let mut b = cluster.node_with("b", &limit);
    let db = cluster.pool().await;
    let count = |sql: &'static str| {
        let db = db.clone();
        async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(&db).await }
    };
    // Killed crawling, with pages stored and URLs leased.
    let deadline = Instant::now() + Duration::from_secs(60);
    // Until b has made the schema, the question fails.
    while count("SELECT count(*) FROM pages").await.unwrap_or(0) < 10 {
        assert!(Instant::now() < deadline, "node b stored no pages");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    b.kill_9();
    let leased = count("SELECT count(*) FROM frontier WHERE state = 'leased'").await;
    assert!(leased.expect("count leased rows") > 0);
    let mut a = cluster.node_with("a", &limit);
    a.finishes(Duration::from_secs(60)).await;

    let stored = count("SELECT count(*) FROM pages").await;
    let leased = count("SELECT count(*) FROM frontier WHERE state = 'leased'").await;
    assert_eq!(
        (
            stored.expect("count pages"),
            leased.expect("count leased rows")
        ),
        (MAX_PAGES, 0),
        "(pages stored, rows left leased)"
    );
    assert!(cluster.requested_twice().len() <= PER_NODE_IN_FLIGHT);
}

/// Two processes given one `cluster.node_id` (a config copied with it set) would each
/// take the other's leases for their own, and the second's start would put the first's
/// URLs in flight back in the queue. The second is refused while the first is alive,
/// with the exit status of a run to try again later (75, sysexits' `EX_TEMPFAIL`), as a
/// crawl beside another on a SQLite database is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_node_with_a_live_nodes_id_is_refused() {
    let Some((cluster, refused)) =
        beside_a_live_node("a_second_node_with_a_live_nodes_id", |cluster| {
            cluster.dir.path().join("a.toml")
        })
        .await
    else {
        return;
    };
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(75), "{stderr}");
    assert!(
        stderr.contains("cluster.node_id \"a\" is in use by a live node"),
        "{stderr}"
    );
    let twice = cluster.requested_twice();
    assert!(twice.is_empty(), "requested more than once: {twice:?}");
}

/// A node whose scope leaves out what another's keeps would fail, as out of scope, every
/// URL of the other's it leased: the crawl would lose them for every node, without a word.
/// It is refused at its start, naming the node it differs from, and the crawl goes on whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_another_scope_than_a_live_nodes_is_refused() {
    refused_beside_a_live_node(
        "a_node_with_another_scope_than_a_live_nodes",
        |cluster| cluster.config("narrower", FETCH_WORKERS, "[scope]\nmax_depth = 1\n"),
        "another scope than live node \"a\"",
    )
    .await;
}

/// A node started with a lower `traps.max_pages_per_host` would cut, as traps, what every
/// host had queued beyond its budget, for the whole crawl, while the live nodes crawl on
/// to theirs and never take those URLs back. It is refused at its start, naming the
/// setting and the node it differs from, and the crawl goes on whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_another_host_budget_than_a_live_nodes_is_refused() {
    refused_beside_a_live_node(
        "a_node_with_another_host_budget_than_a_live_nodes",
        |cluster| {
            cluster.config(
                "thrifty",
                FETCH_WORKERS,
                "[traps]\nmax_pages_per_host = 20\n",
            )
        },
        "traps.max_pages_per_host = 20 differs from live node \"a\"'s (100000)",
    )
    .await;
}

/// A node that sorts the queries of the URLs it finds (`traps.sort_query`), or strips
/// other parameters, beside one that does not would store one page under two URLs, each
/// node fetching its own: refused at its start, naming the node it differs from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_spelling_urls_otherwise_than_a_live_node_is_refused() {
    refused_beside_a_live_node(
        "a_node_spelling_urls_otherwise",
        |cluster| cluster.config("sorting", FETCH_WORKERS, "[traps]\nsort_query = true\n"),
        "spells the URLs it finds otherwise than live node \"a\"",
    )
    .await;
}

/// A node with another `traps.max_hosts_per_domain` than a live node's set the limit for
/// every node (it is the crawl's, kept in the database), from its start on: refused, as
/// another `traps.max_pages_per_host` is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_another_hosts_per_domain_limit_than_a_live_nodes_is_refused() {
    refused_beside_a_live_node(
        "a_node_with_another_hosts_per_domain_limit",
        |cluster| {
            cluster.config(
                "narrow",
                FETCH_WORKERS,
                "[traps]\nmax_hosts_per_domain = 2\n",
            )
        },
        "traps.max_hosts_per_domain = 2 differs from live node \"a\"'s (1000)",
    )
    .await;
}

/// A node with another `politeness.delay_ms` than a live node's gives the hosts it owns its
/// own delay, so a host's pace changes with its owner. It crawls on (politeness is not
/// reloadable, and a refusal would leave no rolling restart to change it), but says so,
/// naming the setting and the node it differs from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_another_delay_than_a_live_nodes_says_so() {
    let hasty = |cluster: &Cluster| {
        let config = cluster.config("hasty", FETCH_WORKERS, "");
        let text = std::fs::read_to_string(&config).expect("read the config");
        let hasty = text.replace(&format!("delay_ms = {DELAY_MS}\n"), "delay_ms = 10\n");
        assert_ne!(hasty, text, "the delay is set");
        std::fs::write(&config, hasty).expect("write the config");
        config
    };
    let Some((_, other)) =
        beside_a_live_node("a_node_with_another_delay_than_a_live_nodes", hasty).await
    else {
        return;
    };
    let stderr = String::from_utf8_lossy(&other.stderr);
    assert_eq!(other.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("politeness.delay_ms differs from live node \"a\"'s"),
        "{stderr}"
    );
}

/// Starts node "a" of a cluster for `test` and, once it is at work, runs beside it the
/// node `config` writes the config of, which must stop with an error saying `refusal`.
/// Node "a" must then crawl the whole site. The cluster, unless skipped.
async fn refused_beside_a_live_node(
    test: &str,
    config: impl FnOnce(&Cluster) -> PathBuf,
    refusal: &str,
) -> Option<Cluster> {
    let (cluster, refused) = beside_a_live_node(test, config).await?;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(refusal), "{stderr}");
    Some(cluster)
}

/// Starts node "a" of a cluster for `test` and, once it is at work, runs to its end
/// beside it the node `config` writes the config of. Node "a" must then crawl the whole
/// site. The cluster and how the other node ran, unless skipped.
async fn beside_a_live_node(
    test: &str,
    config: impl FnOnce(&Cluster) -> PathBuf,
) -> Option<(Cluster, std::process::Output)> {
    let cluster = Cluster::start(test).await.map(Cluster::living)?;
    let mut a = cluster.node("a");
    cluster.wait_for_requests(30).await;
    let config = config(&cluster);
    let other = tokio::task::spawn_blocking(move || run_to_the_end("crawl", &config))
        .await
        .expect("the other node ran");
    a.finishes(Duration::from_secs(60)).await;
    cluster.assert_complete().await;
    Some((cluster, other))
}

/// Runs `pipecrawl {command} --config {config}` until it exits.
pub(super) fn run_to_the_end(command: &str, config: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pipecrawl"))
        .args([command, "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run pipecrawl")
}

/// Runs `pipecrawl {command} --config {config}`, which must stop with an error: its
/// stderr.
pub(super) fn stops_with_error(command: &str, config: &Path) -> String {
    let out = run_to_the_end(command, config);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{command}: {stderr}");
    stderr
}

/// Writes the config of a node crawling `database` from a seed that refuses at once.
fn quick_config(dir: &Path, name: &str, database: &str) -> PathBuf {
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!("seeds = [\"http://127.0.0.1:9/\"]\n[storage]\ndatabase = {database:?}\n"),
    )
    .expect("write the config");
    config
}

/// The database URL carries the password of the crawl's PostgreSQL user, in its user
/// info or as a `password` parameter (libpq's spelling, which sqlx takes too); what a node
/// says when it stops goes to terminals, logs and CI output, so it names the URL without
/// it.
#[test]
fn a_node_that_cannot_reach_postgresql_keeps_the_password_out_of_its_error() {
    const PASSWORD: &str = "s3cret-pw";
    let dir = tempfile::tempdir().expect("a temp dir");
    // A port nothing listens on: the node is refused at once.
    let (_held, refused) = super::refusing_address([127, 0, 0, 1]);
    let server = format!("{refused}/crawl");
    for (database, shown) in [
        (
            format!("postgres://crawler:{PASSWORD}@{server}"),
            format!("postgres://crawler:***@{server}"),
        ),
        (
            format!("postgres://crawler@{server}?sslmode=disable&password={PASSWORD}"),
            format!("postgres://crawler@{server}?sslmode=disable&password=***"),
        ),
    ] {
        let config = dir.path().join("node.toml");
        std::fs::write(
            &config,
            format!(
                "seeds = [\"http://127.0.0.1:9/\"]\n\
                 [storage]\ndatabase = {database:?}\n\
                 [admin]\nlisten = \"127.0.0.1:0\"\n"
            ),
        )
        .expect("write the config");
        for command in ["crawl", "serve"] {
            let stderr = stops_with_error(command, &config);
            assert!(stderr.contains("Connection refused"), "{command}: {stderr}");
            assert!(
                !stderr.contains(PASSWORD),
                "{command} printed the password: {stderr}"
            );
            assert!(stderr.contains(&shown), "{command}: {stderr}");
        }
    }
}

/// `storage.database` pointed by mistake at another program's PostgreSQL database (the
/// URL of an application's own database, copied from its config): the node must refuse
/// it, as it refuses another program's SQLite file, and leave it as it was, rather than
/// add the crawl's tables to it or fail halfway on a name both use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_refuses_another_programs_database_and_leaves_it_untouched() {
    let Some(postgres) = TestPostgres::start("a_node_refuses_another_programs_database") else {
        return;
    };
    let dir = tempfile::tempdir().expect("a temp dir");
    for (name, tables) in [("shop", "orders, users"), ("blog", "pages, users")] {
        let database = postgres.database(name).await;
        let db = PgPool::connect(&database).await.expect("connect");
        for table in tables.split(", ") {
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE TABLE {table} (x int)")))
                .execute(&db)
                .await
                .expect("make the other program's table");
        }
        let stderr = stops_with_error("crawl", &quick_config(dir.path(), name, &database));
        assert!(
            stderr.contains(&format!(
                "is not a pipecrawl database (it holds the tables {tables})"
            )),
            "{name}: {stderr}"
        );
        let after: Vec<String> = sqlx::query_scalar(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
        )
        .fetch_all(&db)
        .await
        .expect("list the tables");
        assert_eq!(after.join(", "), tables, "{name}: the database was changed");
    }
}

/// A database with PostGIS, whose `spatial_ref_sys` sits in the public schema, is no
/// other program's: a crawl was refused naming that table. Here a table made a member of
/// an extension (as PostGIS's is) stands for it; the crawl uses the database and leaves
/// the extension's table alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_an_extension_made_does_not_make_the_database_another_programs() {
    let Some(postgres) = TestPostgres::start("a_table_an_extension_made") else {
        return;
    };
    let db = crawl_a_database_made_with(
        &postgres,
        "gis",
        &[
            "CREATE TABLE spatial_ref_sys (srid int PRIMARY KEY)",
            "INSERT INTO spatial_ref_sys VALUES (4326)",
            "ALTER EXTENSION plpgsql ADD TABLE spatial_ref_sys",
        ],
    )
    .await;
    let srid: i32 = sqlx::query_scalar("SELECT srid FROM spatial_ref_sys")
        .fetch_one(&db)
        .await
        .expect("the extension's table is as it was");
    assert_eq!(srid, 4326);
}

/// Nodes upgraded one at a time: the first of a newer pipecrawl brings the shared schema
/// to a version the others do not know. A node of the older one started then must say
/// that this is what stops it, and what to do, not sqlx's account of its migrations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_older_than_the_databases_schema_says_so() {
    let Some(postgres) = TestPostgres::start("a_node_older_than_the_databases_schema") else {
        return;
    };
    let database = postgres.database("crawl").await;
    let dir = tempfile::tempdir().expect("a temp dir");
    let config = quick_config(dir.path(), "node", &database);
    let first = run_to_the_end("crawl", &config);
    assert!(super::cli::ran_to_its_end(&first), "{first:?}");
    // What a newer pipecrawl's next two migrations leave: the message names the schema's
    // last, as on SQLite, not the first this node does not know.
    let db = PgPool::connect(&database).await.expect("connect");
    let newer: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         SELECT m.last + n, 'from a newer pipecrawl', true, '\\x00', 1
         FROM (SELECT max(version) AS last FROM _sqlx_migrations) m, generate_series(1, 2) n
         RETURNING version",
    )
    .fetch_all(&db)
    .await
    .expect("record newer migrations");
    let newer = newer.into_iter().max().unwrap_or_default();

    let stderr = stops_with_error("crawl", &config);
    assert!(
        stderr.contains(&format!(
            "written by a newer pipecrawl (its PostgreSQL schema is at migration {newer}, this \
             one knows up to {})",
            newer - 2
        )),
        "{stderr}"
    );
    // A database URL is no file.
    assert!(stderr.contains("or give a new database"), "{stderr}");
}

/// A database address that takes the connection and never answers (a firewall that drops
/// packets, a hung server, the port of another service): a node, and the query CLI, must
/// give up with an error that says so, not wait for ever, deaf to SIGTERM while it waits.
#[test]
fn a_server_that_never_answers_is_an_error_not_a_hang() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let port = silent.local_addr().expect("its address").port();
    // Takes connections and holds them open, saying nothing.
    std::thread::spawn(move || {
        let held: Vec<_> = silent.incoming().collect();
        drop(held);
    });
    let database = format!("postgres://crawler@127.0.0.1:{port}/crawl");
    let dir = tempfile::tempdir().expect("a temp dir");
    let config = quick_config(dir.path(), "node", &database);
    let within = Duration::from_secs(40);
    for args in [
        vec!["crawl", "--config", config.to_str().unwrap_or_default()],
        vec!["query", "--db", &database, "top"],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pipecrawl"))
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start pipecrawl");
        let deadline = Instant::now() + within;
        let status = loop {
            if let Some(status) = child.try_wait().expect("poll pipecrawl") {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut stderr = String::new();
        if let Some(mut err) = child.stderr.take() {
            std::io::Read::read_to_string(&mut err, &mut stderr).expect("read its stderr");
        }
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(1),
            "{}: still waiting after {within:?}: {stderr}",
            args[0]
        );
        assert!(
            stderr.contains("no answer from the server within"),
            "{}: {stderr}",
            args[0]
        );
    }
}

/// A crawl kept in a schema of its own whose name is not a lowercase identifier (made
/// as `"Crawl"`, the database's search_path set to it): the crawl used it as it uses
/// `public`, until the check for another program's tables read the schema's name as an
/// identifier, folded it to `crawl`, and stopped every start with "schema \"crawl\" does
/// not exist".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_in_a_schema_named_in_capitals_starts() {
    let Some(postgres) = TestPostgres::start("a_crawl_in_a_schema_named_in_capitals") else {
        return;
    };
    let db = crawl_a_database_made_with(
        &postgres,
        "schemas",
        &[
            "CREATE SCHEMA \"Crawl\"",
            "ALTER DATABASE schemas SET search_path = \"Crawl\"",
        ],
    )
    .await;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE tablename = 'pages' ORDER BY schemaname",
    )
    .fetch_all(&db)
    .await
    .expect("list the tables");
    assert_eq!(
        tables.len(),
        1,
        "the crawl's tables are in its schema alone"
    );
}

/// Makes the database `name` with `statements`, crawls it to the end, which must
/// succeed and store the seed's row, and returns a pool on it.
async fn crawl_a_database_made_with(
    postgres: &TestPostgres,
    name: &str,
    statements: &[&str],
) -> PgPool {
    let database = postgres.database(name).await;
    let db = PgPool::connect(&database).await.expect("connect");
    for statement in statements {
        sqlx::query(sqlx::AssertSqlSafe(*statement))
            .execute(&db)
            .await
            .expect("prepare the database");
    }
    let dir = tempfile::tempdir().expect("a temp dir");
    let out = run_to_the_end("crawl", &quick_config(dir.path(), name, &database));
    assert!(
        super::cli::ran_to_its_end(&out),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Connected anew: the database's own settings (its search_path) hold from here.
    let db = PgPool::connect(&database).await.expect("connect");
    let pages: i64 = sqlx::query_scalar("SELECT count(*) FROM pages")
        .fetch_one(&db)
        .await
        .expect("the crawl's tables are there");
    assert_eq!(pages, 1, "the seed's row");
    db
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_rides_out_a_restart_of_postgresql() {
    let Some(cluster) = Cluster::start("a_node_rides_out_a_restart_of_postgresql").await else {
        return;
    };
    let mut node = cluster.node("a");
    cluster.wait_for_requests(600).await;
    // A restart that finds every connection idle costs nothing (the pool tests them
    // before use): first a connection is ended mid-step, as a restart ends the busy ones.
    let admin = cluster.pool().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ended: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()
               AND state IN ('active', 'idle in transaction')) t",
        )
        .fetch_one(&admin)
        .await
        .expect("end the node's busy connections");
        if ended > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the node never had a step running"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    admin.close().await;
    cluster.postgres.restart();
    let restarted_at = cluster.site.hits().len();
    node.finishes(Duration::from_secs(90)).await;
    node.assert_waited_for_the_database("lost the connection to the database");
    cluster.assert_complete().await;
    cluster.assert_only_in_flight_asked_again(&format!(
        "PostgreSQL restarted after {restarted_at} requests"
    ));
}

/// A network cut between a node and PostgreSQL (a failover behind a virtual IP, a
/// firewall dropping packets): the connections open then stay open but nothing comes
/// back, and a step in flight, or sent on one of them, waited for an answer for ever, so
/// the crawl stood still, saying nothing. It is taken for a lost connection and run again
/// on a new one, and the crawl goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_rides_out_a_network_cut_between_it_and_postgresql() {
    let Some(cluster) = Cluster::start("a_node_rides_out_a_network_cut_to_postgresql").await else {
        return;
    };
    let mut cluster = cluster.living();
    let direct = cluster.database.clone();
    let (proxy, through) = CutProxy::start(&direct).await;
    cluster.database = through;
    let mut node = cluster.node("a");
    cluster.wait_for_requests(600).await;
    // Cut while the node has a step running, as a cut finds a busy node: its writer held
    // on a lock on `pages` until the cut, so that its answer comes after it. (A step seen
    // active a moment before the cut could finish first, and the cut hit idle
    // connections only, which the pool replaces without a word.)
    let mut admin = sqlx::PgConnection::connect(&direct).await.expect("connect");
    sqlx::raw_sql("BEGIN; LOCK TABLE pages IN ACCESS EXCLUSIVE MODE")
        .execute(&mut admin)
        .await
        .expect("lock pages");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks WHERE relation = 'pages'::regclass AND NOT granted",
        )
        .fetch_one(&mut admin)
        .await
        .expect("look for the node's step waiting on pages");
        if waiting > 0 {
            proxy.cut();
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the node never had a step waiting on pages"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut admin)
        .await
        .expect("unlock pages");
    let cut_at = cluster.site.hits().len();
    // The steps cut wait out their half-minute for an answer; the connections left idle
    // in the pool cost the next step two seconds between them.
    node.finishes(Duration::from_secs(120)).await;
    node.assert_waited_for_the_database("no answer from the database within 30 s");
    cluster.database = direct;
    cluster.assert_complete().await;
    cluster.assert_only_in_flight_asked_again(&format!(
        "the network to PostgreSQL was cut after {cut_at} requests"
    ));
}

/// After a network cut every connection idle in a node's pool is one that never answers:
/// sqlx tried each before a step took it, for as long as the step may wait for a
/// connection (10 s), so a step met them one after another, over a minute with a full
/// pool, before it got a new connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_after_a_network_cut_does_not_wait_out_each_idle_connection() {
    let Some(postgres) = TestPostgres::start("a_step_after_a_network_cut_waits_once") else {
        return;
    };
    let direct = postgres.database("crawl").await;
    let (proxy, through) = CutProxy::start(&direct).await;
    let store = Store::open(&through).await.expect("open the store");
    let db = PgPool::connect(&direct)
        .await
        .expect("connect to the crawl database");
    // Steps waiting together for a lock fill the pool; let go, each connection is idle.
    let lock = holding(&db, "LOCK TABLE pages IN ACCESS EXCLUSIVE MODE").await;
    let counts: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.page_count().await })
        })
        .collect();
    waits_for_locks(&db, 8).await;
    lock.rollback().await.expect("let the steps go");
    for count in counts {
        count
            .await
            .expect("a step's task")
            .expect("count pages before the cut");
    }
    // The pool tries each connection handed back (two pings, milliseconds) before it
    // is idle there.
    tokio::time::sleep(Duration::from_secs(1)).await;
    proxy.cut();
    let started = Instant::now();
    store.page_count().await.expect("count pages after the cut");
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(30),
        "a step after the cut took {took:?} to get a connection"
    );
}

/// A connection handed back to the pool is tried twice, by the store's test (within ten
/// seconds) and then by sqlx's own ping (for ever): cut between the two, it held its
/// place in the pool for good, and the node, its crawl done, waited for it to close the
/// pool, saying nothing, never to exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_as_it_hands_a_connection_back_still_exits() {
    let Some(cluster) = Cluster::start("a_node_cut_off_as_it_hands_a_connection_back").await else {
        return;
    };
    let mut cluster = cluster.living();
    let (proxy, through) = CutProxy::start(&cluster.database).await;
    let direct = std::mem::replace(&mut cluster.database, through);
    let mut node = cluster.node("a");
    cluster.wait_for_requests(300).await;
    proxy.cut_a_release();
    node.finishes(Duration::from_secs(60)).await;
    assert!(proxy.cut_at_release(), "no connection was handed back");
    let log = std::fs::read_to_string(&node.log).expect("read the node's log");
    assert!(
        log.contains("did not answer within 10 s as the node closed it"),
        "the node did not say what it left: {log}"
    );
    cluster.database = direct;
    cluster.assert_complete().await;
}

/// A service's `/stats` during a PostgreSQL outage answers 503 saying why: it waited with
/// the crawl for the server, up to ten minutes, holding one of the admin API's sixteen
/// connections, so that a dashboard polling it soon held them all, `/healthz` too. A
/// `POST /pause` pauses at once and answers so too, saying the pause is not saved: it
/// waited to save it, and a script's request went unanswered. Both answers are JSON, as
/// `POST /seeds`' 503 is: they were text, which a script's `jq .state` could not read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_services_stats_during_a_postgresql_outage_say_the_database_is_out_of_reach() {
    let test = "a_services_stats_during_a_postgresql_outage_say_the_database_is_out_of_reach";
    let Some((cluster, api, client, _node)) = a_service_in_an_outage(test).await else {
        return;
    };
    for (request, what, says) in [
        (client.get(format!("{api}/stats")), "/stats", ""),
        (
            client.post(format!("{api}/pause")),
            "POST /pause",
            "paused until the service restarts",
        ),
    ] {
        let answer = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{what} answers while the database is out of reach: {e}"));
        let (status, body) = super::service::json_body(answer, what).await;
        assert_eq!(status, reqwest::StatusCode::SERVICE_UNAVAILABLE);
        let error = body["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("database error") && error.contains(says),
            "{what}: {body}"
        );
        if what == "POST /pause" {
            assert_eq!(body["paused"], true, "paused all the same: {body}");
        }
    }
    cluster.postgres.start_again();
}

/// A `POST /pause` whose save waits on a lock a DBA holds (`LOCK TABLE crawl_state`, a
/// `VACUUM FULL`) went unanswered for as long as the lock was held, and a `/resume`
/// after it waited behind it: the save gives up as a crawl step does, and the answer is
/// the 503 of a pause not saved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_whose_save_waits_on_a_lock_is_answered() {
    let test = "a_pause_whose_save_waits_on_a_lock_is_answered";
    let Some((cluster, api, client, node)) = a_crawling_service(test).await else {
        return;
    };
    let dba = sqlx::PgPool::connect(&cluster.database)
        .await
        .expect("connect");
    let lock = super::postgres::lock_table(&dba, "crawl_state").await;
    let answer = client
        .post(format!("{api}/pause"))
        .send()
        .await
        .expect("POST /pause answers while its save waits on a lock");
    lock.rollback().await.expect("let crawl_state go");
    assert_eq!(answer.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = answer.json().await.expect("a JSON answer");
    assert_eq!(body["paused"], true, "paused all the same: {body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(error.contains("not saved"), "{body}");
    node.signal("TERM");
}

/// A `POST /seeds` during a PostgreSQL outage answers 503 saying why, with nothing stored:
/// it waited with the crawl for the server, up to ten minutes, holding one of the admin
/// API's connections, where a client wants to know within seconds to send it again later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeds_sent_during_a_postgresql_outage_are_a_503_and_not_stored() {
    let test = "seeds_sent_during_a_postgresql_outage_are_a_503_and_not_stored";
    let Some((cluster, api, client, _node)) = a_service_in_an_outage(test).await else {
        return;
    };
    let send = || {
        client
            .post(format!("{api}/seeds"))
            .json(&["http://127.0.0.9:9/new"])
            .send()
    };
    let answer = send()
        .await
        .expect("POST /seeds answers while the database is out of reach");
    assert_eq!(answer.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = answer.json().await.expect("a JSON answer");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(error.contains("database error"), "{body}");
    cluster.postgres.start_again();
    let deadline = Instant::now() + Duration::from_secs(30);
    let added = loop {
        let answer = send().await.expect("POST /seeds answers");
        if answer.status() == reqwest::StatusCode::ACCEPTED {
            break answer.json::<serde_json::Value>().await.expect("JSON");
        }
        assert!(Instant::now() < deadline, "never stored: {answer:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(added["added"], 1, "not stored during the outage: {added}");
}

/// [`a_crawling_service`], once the PostgreSQL server is stopped.
async fn a_service_in_an_outage(test: &str) -> Option<(Cluster, String, reqwest::Client, Node)> {
    let service = a_crawling_service(test).await?;
    service.0.postgres.stop();
    Some(service)
}

/// A cluster whose one node is a service, crawling, its API at the address returned, and
/// a client that waits a minute and a half for an answer (a hang, not a slow one).
async fn a_crawling_service(test: &str) -> Option<(Cluster, String, reqwest::Client, Node)> {
    let cluster = Cluster::start(test).await?;
    let mut node = cluster.start_node("service", "serve", super::ADMIN_ANY_PORT);
    let base = node.admin_url().await;
    cluster.wait_for_requests(100).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(90))
        .build()
        .expect("an HTTP client");
    Some((cluster, base, client, node))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_node_hands_its_hosts_to_the_others() {
    let Some(cluster) = Cluster::start("a_paused_node_hands_its_hosts_to_the_others").await else {
        return;
    };
    let mut paused = cluster.start_node("paused", "serve", super::ADMIN_ANY_PORT);
    let base = paused.admin_url().await;
    let mut other = cluster.node("other");
    cluster.wait_for_requests(300).await;
    let answer = reqwest::Client::new()
        .post(format!("{base}/pause"))
        .send()
        .await
        .expect("the paused node's admin API answers");
    assert!(
        answer.status().is_success(),
        "POST /pause: {}",
        answer.status()
    );
    let paused_at = cluster
        .requests_by_node()
        .get("pipecrawl-paused/0.1")
        .copied();
    // The other node ends only once nothing is queued or leased anywhere: the paused
    // node's hosts must have come to it.
    other.finishes(Duration::from_secs(60)).await;
    cluster.assert_complete().await;
    let by_node = cluster.requests_by_node();
    let after = by_node.get("pipecrawl-paused/0.1").copied().unwrap_or(0) - paused_at.unwrap_or(0);
    assert!(
        after <= PER_NODE_IN_FLIGHT,
        "the paused node sent {after} requests after the pause"
    );
    paused.signal("TERM");
    paused.finishes(Duration::from_secs(30)).await;
}

/// A node with nothing in hand (more nodes than hosts with work, or one just started or
/// woken) while another live node holds the crawl's last URLs leased: its `/stats` must not
/// say, by `in_flight`, `queued` and `staged` all at 0, that the crawl has nothing left,
/// as a script waiting for the crawl's end reads it on any node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nodes_stats_count_the_urls_another_node_holds_leased() {
    let Some(cluster) = Cluster::start("a_nodes_stats_count_the_urls_another_node_holds").await
    else {
        return;
    };
    let mut watcher = cluster.start_node("watcher", "serve", super::ADMIN_ANY_PORT);
    let base = watcher.admin_url().await;
    let client = reqwest::Client::new();
    let left = || async {
        let stats: serde_json::Value = client
            .get(format!("{base}/stats"))
            .send()
            .await
            .expect("/stats answers")
            .json()
            .await
            .expect("/stats is JSON");
        // None while the service starts (a 503 saying so).
        let count = |key: &str| stats[key].as_i64();
        let sum = [count("in_flight"), count("queued"), count("staged")]
            .into_iter()
            .sum::<Option<i64>>();
        (sum, stats)
    };
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let (sum, stats) = left().await;
        if sum == Some(0) {
            break;
        }
        assert!(Instant::now() < deadline, "the crawl never ended: {stats}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Another node, alive, holding a URL leased: the crawl is not over.
    let db = cluster.pool().await;
    sqlx::query("INSERT INTO nodes (id, started_at, heartbeat) VALUES ('other', 0, 9e15)")
        .execute(&db)
        .await
        .expect("a live node");
    let host = &cluster.site.authorities[0];
    sqlx::query(
        "INSERT INTO frontier (url, host, depth, priority, state, lease_owner, lease_expires)
         VALUES ($1, $2, 1, 0, 'leased', 'other', 9e15)",
    )
    .bind(format!("http://{host}/held-by-another-node"))
    .bind(host)
    .execute(&db)
    .await
    .expect("a URL the other node holds leased");
    let (count, stats) = left().await;
    assert_eq!(
        count,
        Some(1),
        "the other node's URL is not counted: {stats}"
    );
    watcher.signal("TERM");
    watcher.finishes(Duration::from_secs(30)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_leased_to_a_node_that_never_got_it_is_crawled_all_the_same() {
    let Some(cluster) = Cluster::start("a_row_leased_to_a_node_that_never_got_it").await else {
        return;
    };
    // A small window leaves most rows queued.
    let mut node = cluster.node_with("a", "[frontier]\nwindow = 64\n");
    cluster.wait_for_requests(300).await;
    // What a lease whose answer a cut connection lost leaves: a queued row marked as
    // the node's, which the node does not know of (and renews with the rest).
    let stranded: i64 = sqlx::query_scalar(
        "UPDATE frontier SET state = 'leased', lease_owner = 'a', lease_expires = 9e15
         WHERE id = (SELECT id FROM frontier WHERE state = 'queued' ORDER BY id DESC LIMIT 1)
         RETURNING id",
    )
    .fetch_one(&cluster.pool().await)
    .await
    .expect("mark a queued row as leased to the node");
    node.finishes(Duration::from_secs(60)).await;
    cluster.assert_complete().await;
    let log = std::fs::read_to_string(&node.log).expect("read the node's log");
    assert!(
        log.contains("never handed out"),
        "row {stranded} was not said to be queued again; the node's log:\n{}",
        tail(&node.log)
    );
}

/// A node's leases take the queued URLs due of the hosts it owns (and is not handing
/// back), best priority first across its hosts, ties in the order found, skipping rows
/// another transaction holds: lease after lease, the same rows as ordering them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nodes_leases_take_its_hosts_best_urls_first_across_hosts() {
    let Some(postgres) = TestPostgres::start("a_nodes_leases_take_its_hosts_best_urls") else {
        return;
    };
    // Priorities mixed across hosts and out of the order found; `releasing.test` is being
    // handed back and `theirs.test` is another node's.
    let hosts = ["a.test", "b.test", "theirs.test", "releasing.test"];
    let urls: Vec<Discovered> = (0..10_i64)
        .flat_map(|i| {
            hosts.iter().zip(0_i64..).map(move |(host, h)| Discovered {
                url: format!("http://{host}/{i}").parse().expect("a test URL"),
                host: (*host).to_owned(),
                depth: 1,
                priority: (i * 7 + h * 3) % 5 - 2,
                redirect_hops: 0,
                kind: JobKind::Page,
                trap: None,
                disallowed: false,
            })
        })
        .collect();
    let (store, db) = queued(&postgres, &urls).await;
    for (host, owner, releasing) in [
        ("a.test", "me", 0),
        ("b.test", "me", 0),
        ("theirs.test", "other", 0),
        ("releasing.test", "me", 1),
    ] {
        sqlx::query(
            "INSERT INTO hosts (host, owner, owner_expires, releasing) VALUES ($1, $2, 9e15, $3)
             ON CONFLICT (host) DO UPDATE
             SET owner = excluded.owner, owner_expires = excluded.owner_expires,
                 releasing = excluded.releasing",
        )
        .bind(host)
        .bind(owner)
        .bind(releasing)
        .execute(&db)
        .await
        .expect("give the host its owner");
    }
    // The best URL of a.test waits out a retry: not due.
    let waiting: i64 = sqlx::query_scalar(
        "UPDATE frontier SET not_before = 9e15
         WHERE id = (SELECT id FROM frontier WHERE host = 'a.test'
                     ORDER BY priority DESC, id LIMIT 1)
         RETURNING id",
    )
    .fetch_one(&db)
    .await
    .expect("hold a URL back");
    let rows: Vec<(i64, String, i64)> =
        sqlx::query_as("SELECT id, host, priority FROM frontier ORDER BY id")
            .fetch_all(&db)
            .await
            .expect("read the frontier");
    let mut due: Vec<(i64, i64)> = rows
        .iter()
        .filter(|(id, host, _)| (host == "a.test" || host == "b.test") && *id != waiting)
        .map(|&(id, _, priority)| (priority, id))
        .collect();
    due.sort_by_key(|&(priority, id)| (std::cmp::Reverse(priority), id));
    let mut order: Vec<i64> = due.into_iter().map(|(_, id)| id).collect();
    let lease = || async {
        let mut ids: Vec<i64> = store
            .lease("me", 5, Duration::from_secs(600), (None, LeaseRows::Any))
            .await
            .expect("lease")
            .jobs
            .iter()
            .map(|job| job.id)
            .collect();
        ids.sort_unstable();
        ids
    };
    // The best row due is held by another transaction (a batch moving it up): the first
    // lease takes the next five instead, and a later one takes it.
    let mut other = db.begin().await.expect("begin another transaction");
    sqlx::query("SELECT 1 FROM frontier WHERE id = $1 FOR UPDATE")
        .bind(order[0])
        .execute(&mut *other)
        .await
        .expect("lock the best row");
    let mut first: Vec<i64> = order[1..6].to_vec();
    first.sort_unstable();
    assert_eq!(
        lease().await,
        first,
        "the first lease, in the order {order:?}"
    );
    other.rollback().await.expect("let the row go");
    order.retain(|id| !first.contains(id));
    while !order.is_empty() {
        let mut next: Vec<i64> = order.drain(..order.len().min(5)).collect();
        next.sort_unstable();
        assert_eq!(lease().await, next, "a later lease");
    }
    assert_eq!(
        lease().await,
        Vec::<i64>::new(),
        "nothing left for this node"
    );
}

/// `scope.max_pages` is counted only near the limit: further off, a bound that every
/// lease adds to shows there is room. Leases of a node with no limit add to it too, and
/// URLs leased and given back leave it above the count until the next count: whatever
/// the mix, the pages stored and the URLs leased come to the limit exactly, no more; the
/// limit is reached once the pages stored come to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_of_a_node_with_no_page_limit_count_against_anothers_limit() {
    const MAX_PAGES: u64 = 60;
    let Some(postgres) = TestPostgres::start("leases_of_a_node_with_no_page_limit") else {
        return;
    };
    let (store, db) = queued(&postgres, &on_one_host(100)).await;
    sqlx::query("UPDATE hosts SET owner = 'me', owner_expires = 9e15 WHERE host = 'h.test'")
        .execute(&db)
        .await
        .expect("give the host its owner");
    let lease = |want: usize, max_pages: Option<u64>| {
        let store = &store;
        async move {
            store
                .lease(
                    "me",
                    want,
                    Duration::from_secs(600),
                    (max_pages, LeaseRows::Any),
                )
                .await
                .expect("lease")
        }
    };
    let in_use = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT (SELECT count(*) FROM pages)
                    + (SELECT count(*) FROM frontier WHERE state = 'leased')",
        )
        .fetch_one(&db)
        .await
        .expect("count pages and leases")
    };
    assert_eq!(lease(5, Some(MAX_PAGES)).await.jobs.len(), 5);
    sqlx::raw_sql(
        "UPDATE frontier SET state = 'done', lease_owner = NULL, lease_expires = NULL
         WHERE state = 'leased';
         INSERT INTO pages (id, url, depth, fetched_at, changed_at)
         SELECT id, url, depth, '2026-12-05T00:00:00Z', '2026-12-05T00:00:00Z'
         FROM frontier WHERE state = 'done'",
    )
    .execute(&db)
    .await
    .expect("store the pages leased");
    // A node with no limit leases 40, and gives 10 of them back.
    assert_eq!(lease(40, None).await.jobs.len(), 40);
    sqlx::query(
        "UPDATE frontier SET state = 'queued', lease_owner = NULL, lease_expires = NULL
         WHERE id IN (SELECT id FROM frontier WHERE state = 'leased' ORDER BY id LIMIT 10)",
    )
    .execute(&db)
    .await
    .expect("give leases back");
    assert_eq!(in_use().await, 35);
    for _ in 0..30 {
        let leased = lease(5, Some(MAX_PAGES)).await;
        assert!(
            in_use().await <= 60,
            "{} pages and leases, over scope.max_pages",
            in_use().await
        );
        assert!(
            !leased.page_limit_reached,
            "reached with URLs leased, which may yet be given back or not requested"
        );
        if leased.jobs.is_empty() {
            break;
        }
    }
    assert_eq!(in_use().await, 60, "the limit is the pages and leases");
    sqlx::raw_sql(
        "INSERT INTO pages (id, url, depth, fetched_at, changed_at)
         SELECT id, url, depth, '2026-12-05T00:00:00Z', '2026-12-05T00:00:00Z'
         FROM frontier WHERE state = 'leased';
         UPDATE frontier SET state = 'done', lease_owner = NULL, lease_expires = NULL
         WHERE state = 'leased'",
    )
    .execute(&db)
    .await
    .expect("store the pages leased");
    let leased = lease(5, Some(MAX_PAGES)).await;
    assert!(leased.jobs.is_empty() && leased.page_limit_reached);
}

/// A URL known already that a node adds again (a link found again, a seed given again)
/// while another node holds it leased: that node's page batch has counted its new URLs
/// against their host's budget, and goes on to finish the row. A node moving known URLs
/// up locked every row it met, this one too, and then waited for the host's budget: a
/// deadlock, which the server broke by failing one of the two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_a_url_another_node_holds_leased_does_not_deadlock_with_its_batch() {
    let Some(postgres) = TestPostgres::start("adding_a_url_another_node_holds_leased") else {
        return;
    };
    let (store, db) = queued(
        &postgres,
        &[
            found("http://h.test/leased", 1),
            found("http://h.test/queued", 3),
        ],
    )
    .await;
    let id: i64 = sqlx::query_scalar(
        "UPDATE frontier SET state = 'leased', lease_owner = 'b', lease_expires = 9e15
         WHERE url = 'http://h.test/leased' RETURNING id",
    )
    .fetch_one(&db)
    .await
    .expect("lease a URL to node b");
    // Node b's page batch, in the order `Db::commit` takes its locks. The server breaks
    // a deadlock in the session whose wait first outlasts its `deadlock_timeout`: here b's.
    let mut batch = other_node(&db, "10ms").await;
    sqlx::query(
        "INSERT INTO host_budget (host, urls) VALUES ('h.test', 1)
         ON CONFLICT (host) DO UPDATE SET urls = host_budget.urls + excluded.urls",
    )
    .execute(&mut *batch)
    .await
    .expect("count node b's new URLs against the host's budget");
    let again = [
        found("http://h.test/leased", 0),
        found("http://h.test/queued", 1),
        found("http://h.test/new", 1),
    ];
    let (added, finished) = tokio::join!(store.enqueue(&again), async {
        waits_for_a_lock(&db).await;
        let finished = sqlx::query(
            "UPDATE frontier SET state = 'done', lease_owner = NULL, lease_expires = NULL
             WHERE id = $1",
        )
        .bind(id)
        .execute(&mut *batch)
        .await;
        match finished {
            Ok(_) => batch.commit().await,
            Err(e) => Err(e),
        }
    });
    assert!(
        finished.is_ok(),
        "node b's batch could not finish its row: {finished:?}"
    );
    assert_eq!(added.expect("add the URLs again"), 1, "one URL is new");
    let state: String = sqlx::query_scalar("SELECT state FROM frontier WHERE id = $1")
        .bind(id)
        .fetch_one(&db)
        .await
        .expect("read the row's state");
    assert_eq!(state, "done", "the row node b finished is done");
    let noted: Vec<i64> = sqlx::query_scalar("SELECT depth FROM frontier_nearer WHERE id = $1")
        .bind(id)
        .fetch_all(&db)
        .await
        .expect("read the depths noted for node b's row");
    assert_eq!(noted, [0], "the depth found nearer is noted for node b");
    let depth: i64 =
        sqlx::query_scalar("SELECT depth FROM frontier WHERE url = 'http://h.test/queued'")
            .fetch_one(&db)
            .await
            .expect("read a queued row's depth");
    assert_eq!(depth, 1, "a queued URL found nearer the seeds moves up");
}

/// A deadlock this node's step loses is tried again, as a page batch is: here adding a
/// URL nearer the seeds (its row locked to move it up) beside a new one on its host,
/// against a transaction that holds the host's budget while it cuts the host's queued
/// rows, as `Store::trap_over_budgets` of builds before the one lock order did (a node
/// of an older build may still share the crawl).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_urls_is_tried_again_after_losing_a_deadlock() {
    let Some(postgres) = TestPostgres::start("adding_urls_is_tried_again") else {
        return;
    };
    let (store, db) = queued(&postgres, &[found("http://h.test/deep", 3)]).await;
    // The other node's cut, in its lock order. The server breaks a deadlock in the
    // session whose wait first outlasts its `deadlock_timeout`: here this node's.
    let mut cut = other_node(&db, "20s").await;
    sqlx::query("UPDATE host_budget SET urls = urls WHERE host = 'h.test'")
        .execute(&mut *cut)
        .await
        .expect("hold the host's budget");
    let again = [
        found("http://h.test/deep", 1),
        found("http://h.test/new", 1),
    ];
    let (added, cut) = tokio::join!(store.enqueue(&again), async {
        waits_for_a_lock(&db).await;
        sqlx::query("UPDATE frontier SET state = 'failed' WHERE url = 'http://h.test/deep'")
            .execute(&mut *cut)
            .await?;
        cut.commit().await
    });
    cut.expect("the other node's cut commits");
    assert_eq!(
        added.expect("adding the URLs is tried again"),
        1,
        "one URL is new"
    );
}

/// Another node starting with a lower `traps.max_pages_per_host` cuts each host's queued
/// URLs to it (`Store::trap_over_budgets`), while this node's page batch, which found a
/// queued URL of the host again nearer the seeds (its row locked to move it up), goes on
/// to count its new URLs against the host's budget. The cut held the host's budget and
/// then waited for that row: a deadlock, which the server broke by failing the batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cutting_a_host_to_a_lower_budget_does_not_deadlock_with_a_batch() {
    let Some(postgres) = TestPostgres::start("cutting_a_host_to_a_lower_budget") else {
        return;
    };
    let (store, db) = queued(&postgres, &on_one_host(3)).await;
    let batch = holding(
        &db,
        "UPDATE frontier SET depth = 1 WHERE url = 'http://h.test/3'",
    )
    .await;
    let cut = beside_a_batch(&db, batch, store.trap_over_budgets(1)).await;
    assert_eq!(cut.expect("cut the host to its budget"), 2, "two URLs cut");
    let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM frontier WHERE state = 'queued'")
        .fetch_one(&db)
        .await
        .expect("count the queued URLs");
    assert_eq!(queued, 1, "the host keeps one URL queued");
}

/// A node starting with a higher `traps.max_pages_per_host` queues again what a lower one
/// cut (`Store::requeue_within_budgets`), while another transaction holds one of those
/// rows and goes on to the host's budget, in the order every page batch takes them
/// (frontier rows, then budgets). The requeue held the host's budget first, then waited
/// for the row: a deadlock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requeueing_within_a_higher_budget_takes_rows_in_the_batches_order() {
    let Some(postgres) = TestPostgres::start("requeueing_within_a_higher_budget") else {
        return;
    };
    let (store, db) = queued(&postgres, &on_one_host(3)).await;
    assert_eq!(store.trap_over_budgets(1).await.expect("cut the host"), 2);
    let other = holding(
        &db,
        "SELECT id FROM frontier WHERE url = 'http://h.test/3' FOR NO KEY UPDATE",
    )
    .await;
    let requeued = beside_a_batch(&db, other, store.requeue_within_budgets(0)).await;
    assert_eq!(requeued.expect("queue the cut URLs again"), 2);
}

/// A URL that looks like a trap added beside a new URL of its host, while another node
/// queues that URL again (`Store::requeue_within_budgets`: its row, then the host's
/// budget). Trap rows were inserted after the budgets were counted, so the adding node
/// held the host's budget and waited for the row: a deadlock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_a_trap_url_another_node_requeues_does_not_deadlock() {
    let Some(postgres) = TestPostgres::start("adding_a_trap_url_another_node_requeues") else {
        return;
    };
    let (store, db) = queued(&postgres, &on_one_host(2)).await;
    assert_eq!(store.trap_over_budgets(1).await.expect("cut the host"), 1);
    let requeue = holding(
        &db,
        "UPDATE frontier SET state = 'queued' WHERE url = 'http://h.test/2'",
    )
    .await;
    let mut trap = found("http://h.test/2", 2);
    trap.trap = Some("a trap".to_owned());
    let again = [trap, found("http://h.test/new", 1)];
    let added = beside_a_batch(&db, requeue, store.enqueue(&again)).await;
    assert_eq!(added.expect("add the URLs"), 1, "one URL is new");
}

/// A wider scope readmits the links an earlier one dropped, a thousand URLs to a
/// transaction (`Store::readmit_links`), and a lost connection is outlasted. The whole
/// pass was run again, with the callback that had admitted the URLs of the batch the
/// connection took with it: it admits a URL once (the crawl's seen-URL cache), so
/// those were never added, with nothing said.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readmitting_links_across_a_lost_connection_adds_every_one() {
    const LINKS: usize = 10_000;
    /// The link at which the connections are cut: past the first batch's commit.
    const CUT_AT: usize = 1_500;
    let Some(postgres) = TestPostgres::start("readmitting_links_across_a_lost_connection") else {
        return;
    };
    let (store, db) = queued(&postgres, &[found("http://h.test/", 0)]).await;
    // Long targets, so that what is left of the read is more than the sockets buffer.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "INSERT INTO pages (id, url, depth, fetched_at, changed_at)
             SELECT id, url, 0, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z' FROM frontier;
         INSERT INTO links (source_id, target_url, anchor_text)
             SELECT 1, 'http://h.test/' || lpad(i::text, 2000, '0'), 'a'
             FROM generate_series(1, {LINKS}) AS i;"
    )))
    .execute(&db)
    .await
    .expect("store a page's links");
    let crawl = postgres.url("crawl");
    let (mut offered, mut admitted) = (0, HashSet::new());
    let (_, added, _) = store
        .readmit_links(
            None,
            |link| {
                offered += 1;
                if offered == CUT_AT {
                    cut_connections(&crawl);
                }
                admitted
                    .insert(link.target.to_owned())
                    .then(|| found(link.target, link.depth + 1))
            },
            0,
        )
        .await
        .expect("readmit the links");
    let in_frontier: i64 = sqlx::query_scalar("SELECT count(*) FROM frontier WHERE depth = 1")
        .fetch_one(&db)
        .await
        .expect("count the URLs readmitted");
    assert_eq!(in_frontier, LINKS as i64, "every link's target is queued");
    assert_eq!(added, LINKS as u64, "every URL added is counted");
}

/// Two nodes finding new host names of one domain at once: another node's page batch
/// has admitted and counted `a2.farm.test` and not committed when this node adds a URL
/// of `a1.farm.test`. With `traps.max_hosts_per_domain = 1`, the domain has room for
/// one of them: had this node read the count before the other's commit, both would be
/// crawled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_two_nodes_count_at_once_do_not_take_a_domain_past_its_limit() {
    let Some(postgres) = TestPostgres::start("names_two_nodes_count_at_once") else {
        return;
    };
    let (store, db) = queued(&postgres, &[found("http://h.test/", 0)]).await;
    store
        .limit_hosts_per_domain(1)
        .await
        .expect("set traps.max_hosts_per_domain");
    sqlx::raw_sql(
        "INSERT INTO pages (id, url, depth, fetched_at, changed_at)
             SELECT id, url, 0, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z' FROM frontier;
         INSERT INTO links (source_id, target_url, anchor_text)
             SELECT id, 'http://a1.farm.test/', 'a' FROM frontier;",
    )
    .execute(&db)
    .await
    .expect("store the seed's link to a new name");
    let other = holding(
        &db,
        "WITH admitted AS (INSERT INTO known_hosts (host) VALUES ('a2.farm.test'))
         INSERT INTO domain_budget (domain, hosts) VALUES ('farm.test', 1)
         ON CONFLICT (domain) DO UPDATE SET hosts = domain_budget.hosts + excluded.hosts",
    )
    .await;
    let (readmitted, committed) = tokio::join!(
        store.readmit_links(
            None,
            |link| {
                let mut d = found(link.target, link.depth + 1);
                d.host = "a1.farm.test".to_owned();
                Some(d)
            },
            0,
        ),
        async {
            waits_for_a_lock(&db).await;
            other.commit().await
        }
    );
    committed.expect("the other node's batch commits");
    readmitted.expect("add the URL of the new name");
    let row: (Option<String>, Option<String>) =
        sqlx::query_as("SELECT error_kind, error FROM pages WHERE url = 'http://a1.farm.test/'")
            .fetch_one(&db)
            .await
            .expect("a row for the name's URL");
    assert_eq!(row.0.as_deref(), Some("trap"), "{row:?}");
    let counted: i64 =
        sqlx::query_scalar("SELECT hosts FROM domain_budget WHERE domain = 'farm.test'")
            .fetch_one(&db)
            .await
            .expect("the domain's count");
    assert_eq!(counted, 1, "the domain has one name crawled");
}

/// Ends every other session of the database at `url`, from a thread of its own: as a
/// restart of the server or a failover would.
fn cut_connections(url: &str) {
    let url = url.to_owned();
    std::thread::spawn(move || {
        tokio::runtime::Runtime::new()
            .expect("a runtime")
            .block_on(async {
                let mut conn = sqlx::PgConnection::connect(&url)
                    .await
                    .expect("connect to the crawl database");
                sqlx::query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                     WHERE datname = current_database() AND pid <> pg_backend_pid()",
                )
                .execute(&mut conn)
                .await
                .expect("end the other sessions");
            });
    })
    .join()
    .expect("cut the connections");
}

/// `http://h.test/1` to `/{urls}`, each found at the depth its name says.
fn on_one_host(urls: u32) -> Vec<Discovered> {
    (1..=urls)
        .map(|depth| found(&format!("http://h.test/{depth}"), depth))
        .collect()
}

/// A transaction of another node that has run `statement`; it loses any deadlock.
async fn holding(db: &PgPool, statement: &str) -> sqlx::Transaction<'static, sqlx::Postgres> {
    // The server breaks a deadlock in the session whose wait first outlasts its
    // `deadlock_timeout`: here the other node's.
    let mut tx = other_node(db, "10ms").await;
    sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
        .execute(&mut *tx)
        .await
        .expect("run the other node's first statement");
    tx
}

/// Runs `step` while `other`, once `step` waits for what it holds, ends as a page batch
/// ends (a new URL counted against the host's budget, then commit), which must not fail.
async fn beside_a_batch<T>(
    db: &PgPool,
    mut other: sqlx::Transaction<'static, sqlx::Postgres>,
    step: impl std::future::Future<Output = T>,
) -> T {
    let (done, counted) = tokio::join!(step, async {
        waits_for_a_lock(db).await;
        sqlx::query(
            "INSERT INTO host_budget (host, urls) VALUES ('h.test', 1)
             ON CONFLICT (host) DO UPDATE SET urls = host_budget.urls + excluded.urls",
        )
        .execute(&mut *other)
        .await?;
        other.commit().await
    });
    assert!(
        counted.is_ok(),
        "the other node's transaction could not count its URL: {counted:?}"
    );
    done
}

/// A store on a new database of `postgres` with `urls` queued, and a pool on that
/// database for another node's statements.
async fn queued(postgres: &TestPostgres, urls: &[Discovered]) -> (Store, PgPool) {
    let database = postgres.database("crawl").await;
    let store = Store::open(&database).await.expect("open the store");
    store.enqueue(urls).await.expect("queue URLs");
    let db = PgPool::connect(&database)
        .await
        .expect("connect to the crawl database");
    (store, db)
}

/// A transaction of another node, whose waits for a lock become deadlocks after
/// `deadlock_timeout`.
async fn other_node(
    db: &PgPool,
    deadlock_timeout: &str,
) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut tx = db.begin().await.expect("begin another node's transaction");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SET LOCAL deadlock_timeout = '{deadlock_timeout}'"
    )))
    .execute(&mut *tx)
    .await
    .expect("set the other node's deadlock_timeout");
    tx
}

/// A page on the loopback host `h.test`, found at `depth`.
fn found(url: &str, depth: u32) -> Discovered {
    Discovered {
        url: url.parse().expect("a test URL"),
        host: "h.test".to_owned(),
        depth,
        priority: 0,
        redirect_hops: 0,
        kind: JobKind::Page,
        trap: None,
        disallowed: false,
    }
}

/// Returns once a session of the database waits for a row lock another holds.
async fn waits_for_a_lock(db: &PgPool) {
    waits_for_locks(db, 1).await;
}

/// Returns once `sessions` sessions of the database wait for locks others hold.
async fn waits_for_locks(db: &PgPool, sessions: i64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(db)
        .await
        .expect("read the sessions' waits");
        if waiting >= sessions {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{waiting} sessions waited for a lock, not {sessions}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Leases and heartbeats are this node's wall-clock times: a node 2 minutes slow looks
/// dead to the others (its hosts and URLs taken while it fetches them), one 2 minutes fast
/// takes back live nodes' leases. Its clock is compared with the database server's, the
/// round trip allowed: off by more than a third of the lease time, it is refused, saying
/// by how much; within it, it is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_clock_is_off_from_the_servers_is_refused() {
    let Some(postgres) = TestPostgres::start("a_node_whose_clock_is_off") else {
        return;
    };
    let database = postgres.database("crawl").await;
    let store = Store::open(&database).await.expect("open the store");
    let cluster = store.cluster().expect("a PostgreSQL store");
    let ttl = Duration::from_millis(30_000);
    let shifted = |by: Duration, ahead: bool| {
        move || {
            let now = SystemTime::now();
            if ahead {
                now + by
            } else {
                now - by
            }
        }
    };
    let two_minutes = Duration::from_secs(120);
    for (clock, said) in [
        (shifted(two_minutes, false), "behind"),
        (shifted(two_minutes, true), "ahead of"),
    ] {
        let refused = cluster.check_clock("slow", clock, ttl).await;
        let message = refused
            .expect_err("a clock 2 minutes off is refused")
            .to_string();
        let by = format!("the clock of node \"slow\" is {said} the database server's by ");
        let off: Option<u64> = message
            .split_once(&by)
            .and_then(|(_, rest)| rest.split_once(" ms"))
            .and_then(|(ms, _)| ms.parse().ok());
        assert!(
            off.is_some_and(|ms| (119_000..=121_000).contains(&ms)),
            "{message}"
        );
        assert!(
            message.contains("cluster.lease_ttl_ms / 3 = 10000 ms"),
            "{message}"
        );
    }
    cluster
        .check_clock("slow", shifted(Duration::from_secs(5), false), ttl)
        .await
        .expect("a clock 5 s off is within a third of 30 s");
    cluster
        .check_clock("slow", SystemTime::now, ttl)
        .await
        .expect("this machine's clock is the server's");
}

/// Leases and heartbeats are the database server's times, whatever a node's clock says:
/// a node whose clock stepped 2 minutes ahead between two checks of it (NTP, a VM
/// resumed) does not take a live node's host for one whose lease ran out, and the lease
/// it takes of a free host runs out a lease time from now by the server's clock, not 2
/// minutes later, for the others to wait out if it dies. A claim reads no node's clock
/// (a URL is due by the server's too), so the step is in none of its arguments.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_clock_stepped_takes_no_live_lease_and_writes_the_servers_time() {
    let Some(postgres) = TestPostgres::start("a_node_whose_clock_stepped") else {
        return;
    };
    let on = |host: &str| Discovered {
        host: host.to_owned(),
        ..found(&format!("http://{host}/"), 0)
    };
    let (store, db) = queued(&postgres, &[on("kept.test")]).await;
    let cluster = store.cluster().expect("a PostgreSQL store");
    let ttl = Duration::from_secs(30);
    cluster
        .claim_name("live", ttl)
        .await
        .expect("name node live");
    let taken = cluster
        .claim("live", 10, ttl)
        .await
        .expect("node live claims its host");
    assert_eq!(taken.len(), 1, "node live took {taken:?}");

    store
        .enqueue(&[on("free.test")])
        .await
        .expect("queue a URL on a free host");
    cluster
        .claim_name("fast", ttl)
        .await
        .expect("name node fast");
    let taken: Vec<String> = cluster
        .claim("fast", 10, ttl)
        .await
        .expect("node fast claims hosts")
        .into_iter()
        .map(|h| h.host)
        .collect();
    assert_eq!(
        taken,
        ["free.test"],
        "the node whose clock stepped ahead took these"
    );
    let (owner, left): (String, i64) = sqlx::query_as(
        "SELECT owner, owner_expires - (extract(epoch FROM clock_timestamp()) * 1000)::bigint
         FROM hosts WHERE host = 'free.test'",
    )
    .fetch_one(&db)
    .await
    .expect("read the free host's lease");
    assert_eq!(owner, "fast");
    assert!(
        (25_000..=30_000).contains(&left),
        "the lease runs out in {left} ms by the server's clock, not the lease time of 30000"
    );
}
/// A node that leaves is gone for the others at once: a renewal of its leases still
/// running when it left wrote its heartbeat again after, so the others counted it alive
/// for a lease time more (their share of hosts smaller) and a restart under its name was
/// refused as long. Renewals run every few milliseconds here, so that one is in flight
/// at most of the twenty leaves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_left_is_not_brought_back_by_its_last_renewal() {
    let Some(postgres) = TestPostgres::start("a_node_that_left_is_not_brought_back") else {
        return;
    };
    let (store, db) = queued(&postgres, &[found("http://h.test/", 0)]).await;
    let config = pipecrawl::Config::from_toml("seeds = [\"http://h.test/\"]\n", "test config")
        .expect("a valid config");
    let politeness = pipecrawl::politeness::Politeness::new(&config.politeness);
    let ttl = Duration::from_millis(30);
    for _ in 0..20 {
        let cluster = store.cluster().expect("a PostgreSQL store");
        let leases = HostLeases::join(cluster, "a", ttl, Arc::default(), (politeness.clone(), ttl))
            .await
            .expect("join the cluster");
        let done = tokio_util::sync::CancellationToken::new();
        leases.keep_renewed(&done);
        tokio::time::sleep(Duration::from_millis(25)).await;
        // As the pipeline ends: leave, then stop the background tasks.
        leases.leave().await.expect("leave");
        done.cancel();
        tokio::time::sleep(Duration::from_millis(30)).await;
        let alive: i64 = sqlx::query_scalar("SELECT count(*) FROM nodes WHERE id = 'a'")
            .fetch_one(&db)
            .await
            .expect("read the nodes");
        assert_eq!(alive, 0, "the node is alive again after it left");
    }
}

/// A node's wall clock.
type Clock = fn() -> SystemTime;

/// Node `node` joins `store`'s cluster (its wall clock the store's) with the host gate
/// `gate` and a lease time of 30 s: a 3 s offset is within the third the start checks.
async fn joined(
    store: &Store,
    node: &str,
    gate: Arc<HostGate>,
    politeness: &pipecrawl::politeness::Politeness,
) -> HostLeases {
    let (cluster, ttl) = (
        store.cluster().expect("a PostgreSQL store"),
        Duration::from_secs(30),
    );
    HostLeases::join(cluster, node, ttl, gate, (politeness.clone(), ttl))
        .await
        .expect("join the cluster")
}

/// How many hosts `leases` claims in a rebalance now.
async fn claimed(
    leases: &HostLeases,
    store: &Store,
    politeness: &pipecrawl::politeness::Politeness,
) -> usize {
    leases
        .rebalance(
            store,
            &mut Frontier::new(politeness.clone()),
            (Instant::now(), false),
        )
        .await
        .expect("rebalance")
        .claimed
}

/// A `Retry-After` a host answered, as a test's node is paused for it: longer than a
/// test's steps take on a loaded machine, so that it is still running when they end, and
/// shorter than the lease time (30 s), the longest a claimed host is held.
const RETRY_AFTER: Duration = Duration::from_secs(20);

/// A node's clock 3 s behind the database server's: within the third of a lease time
/// the start's check lets through.
fn three_seconds_behind() -> SystemTime {
    SystemTime::now() - Duration::from_secs(3)
}

/// A node's clock 3 s ahead of the database server's.
fn three_seconds_ahead() -> SystemTime {
    SystemTime::now() + Duration::from_secs(3)
}

/// When a test's next owner may first ask a host, counted from the `Retry-After` it was
/// answered, beside the bounds a right reading keeps to on any machine.
struct TurnAfterAnswer {
    taken: Duration,
    /// [`RETRY_AFTER`], less what of it the claim's steps had run before the server read
    /// its clock: the next owner counts the wait from the claim's start.
    earliest: Duration,
    /// [`RETRY_AFTER`], and what the leave's steps took before the server read its clock:
    /// the node leaving counts the wait from the leave's start.
    latest: Duration,
}

impl TurnAfterAnswer {
    /// What the two readings of a clock round off (to the millisecond) either way.
    const ROUNDING: Duration = Duration::from_millis(10);

    fn assert_not_before(&self) {
        assert!(
            self.taken + Self::ROUNDING >= self.earliest,
            "the next owner asks the host {:?} after the answer, before the Retry-After of \
             {RETRY_AFTER:?} is up (the earliest a right reading of it allows: {:?})",
            self.taken,
            self.earliest
        );
    }

    fn assert_not_after(&self) {
        assert!(
            self.taken <= self.latest + Self::ROUNDING,
            "the next owner holds the host {:?} from the answer, longer than the Retry-After \
             of {RETRY_AFTER:?} (the latest a right reading of it allows: {:?})",
            self.taken,
            self.latest
        );
    }
}

/// A node whose wall clock is `clock` takes `h.test` (in database `name` of `postgres`),
/// is told to leave it alone for [`RETRY_AFTER`] (a 429), and leaves; a node whose clock
/// is right takes it next: when its first request there may go. Judged from the
/// `Retry-After`'s answer with the time the leave and the claim took (a dozen statements
/// take seconds on a loaded machine): judged from the claim's end, a node 3 s ahead
/// passed once the steps between took 3 s.
async fn wait_left_by_a_node_with(
    postgres: &TestPostgres,
    name: &str,
    clock: Clock,
) -> TurnAfterAnswer {
    let store = Store::open(&postgres.database(name).await)
        .await
        .expect("open the store");
    store
        .enqueue(&[found("http://h.test/", 0)])
        .await
        .expect("queue a URL");
    let config = pipecrawl::Config::from_toml("seeds = [\"http://h.test/\"]\n", "test config")
        .expect("a valid config");
    let politeness = pipecrawl::politeness::Politeness::new(&config.politeness);
    let gate = Arc::new(HostGate::default());
    let off_store = store.clone().with_clock(clock);
    let off = joined(&off_store, "off", Arc::clone(&gate), &politeness).await;
    assert_eq!(
        claimed(&off, &off_store, &politeness).await,
        1,
        "the first node took no host"
    );
    let answered = tokio::time::Instant::now();
    gate.pause("h.test", answered + RETRY_AFTER);
    off.leave().await.expect("leave");
    let leave_took = answered.elapsed();

    let gate = Arc::new(HostGate::default());
    let right = joined(&store, "right", Arc::clone(&gate), &politeness).await;
    let claiming = tokio::time::Instant::now();
    assert_eq!(
        claimed(&right, &store, &politeness).await,
        1,
        "the second node took no host"
    );
    let now = tokio::time::Instant::now();
    let turn = gate
        .next_turn("h.test")
        .expect("the next owner holds the host for the Retry-After");
    TurnAfterAnswer {
        taken: turn - answered,
        earliest: RETRY_AFTER.saturating_sub(now - claiming),
        latest: RETRY_AFTER + leave_took,
    }
}

/// A node hands a host back with when its next request may go: the end of a 429's
/// `Retry-After`, of its delay. Written in its own clock's time, the next owner read it
/// in its own: a node 3 s behind the next (within the bound the start checks) had it ask
/// the host 3 s before the `Retry-After` was up (or with no delay at all), one 3 s ahead
/// had the host wait 3 s longer than asked, its URLs idle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_handed_back_by_a_node_whose_clock_is_off_waits_what_it_was_asked() {
    let Some(postgres) = TestPostgres::start("a_host_handed_back_by_a_node_whose_clock_is_off")
    else {
        return;
    };
    wait_left_by_a_node_with(&postgres, "behind", three_seconds_behind)
        .await
        .assert_not_before();
    wait_left_by_a_node_with(&postgres, "ahead", three_seconds_ahead)
        .await
        .assert_not_after();
}

/// The backoff a test's node puts a URL that failed for now back in the queue with.
const BACKOFF: Duration = Duration::from_secs(5);

/// How long a test's node waits for a URL to come due again, as a retry or a revisit.
const DUE_IN: Duration = BACKOFF;

/// What node "first" does with `h.test/`, and how node "next" starts.
struct Across {
    /// The nodes' config after the seeds.
    config: &'static str,
    /// The fetch's outcome.
    outcome: fn(&mut Fetched),
    /// Whether node "next" starts as a node does: bringing back far times, and
    /// scheduling a revisit by [`REVISITED`] for pages with none.
    starting: bool,
}

/// When node "next" leased `h.test/` again, on the database server's clock (unix ms),
/// beside the bounds of its due time: [`DUE_IN`] after node "first" began storing it, and
/// after the store (and a start's scheduling) ended. Judged by that clock, which due
/// times are counted on, a loaded machine makes neither bound fail.
struct LeasedAgain {
    due: std::ops::RangeInclusive<i64>,
    /// When the lease that took it ended; or when a lease begun past `due` found nothing.
    taken: Result<i64, i64>,
}

impl LeasedAgain {
    /// Asserts that node "next" took `what` neither before it could be due nor in a lease
    /// begun once it was due at the latest.
    fn assert_on_time(&self, what: &str) {
        let (earliest, latest) = (*self.due.start(), *self.due.end());
        match self.taken {
            Ok(at) => assert!(
                at >= earliest,
                "{what} was leased again {} ms before its {DUE_IN:?} were up",
                earliest - at
            ),
            Err(missed_at) => panic!(
                "{what} was not leased again by a lease begun {} ms after its {DUE_IN:?} were \
                 up",
                missed_at - latest
            ),
        }
    }
}

/// The database server's clock, unix ms, as the store reads it for due times.
async fn server_ms(db: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT (extract(epoch FROM statement_timestamp()) * 1000)::bigint")
        .fetch_one(db)
        .await
        .expect("read the server's clock")
}

/// Node "first", whose wall clock is `writer`, takes `h.test/` (in database `name` of
/// `postgres`), fetches it with `across.outcome`, due again in [`DUE_IN`], and stores
/// it, its writer as a crawl's; it leaves, and node "next", whose wall clock is
/// `reader`, takes the host over and leases rows until it takes the URL again, or a
/// lease begun once it was due at the latest finds nothing.
async fn leased_again_across(
    postgres: &TestPostgres,
    name: &str,
    (writer, reader): (Clock, Clock),
    across: Across,
) -> LeasedAgain {
    let database = postgres.database(name).await;
    let db = PgPool::connect(&database)
        .await
        .expect("connect to the crawl database");
    let open = |clock: Clock| {
        let database = database.clone();
        async move {
            Store::open(&database)
                .await
                .expect("open the store")
                .with_clock(clock)
        }
    };
    let first = open(writer).await;
    first
        .enqueue(&[found("http://h.test/", 0)])
        .await
        .expect("queue a URL");
    let config = pipecrawl::Config::from_toml(
        &format!(
            "seeds = [\"http://h.test/\"]\n{}\n[cluster]\nnode_id = \"first\"\n",
            across.config
        ),
        "test config",
    )
    .expect("a valid config");
    let politeness = pipecrawl::politeness::Politeness::new(&config.politeness);
    let lease = |store: &Store, node: &'static str| {
        let store = store.clone();
        async move {
            store
                .lease(node, 1, Duration::from_secs(60), (None, LeaseRows::Any))
                .await
                .expect("lease rows")
                .jobs
        }
    };

    let leases = joined(&first, "first", Arc::default(), &politeness).await;
    claimed(&leases, &first, &politeness).await;
    let job = lease(&first, "first")
        .await
        .pop()
        .expect("the first node leased no row");
    let mut fetched = Fetched::new(job);
    (across.outcome)(&mut fetched);
    let due_in = i64::try_from(DUE_IN.as_millis()).expect("a short wait");
    let earliest = server_ms(&db).await + due_in;
    store_as_a_crawl(&first, &config, fetched).await;
    leases.leave().await.expect("leave");

    let next = open(reader).await;
    if across.starting {
        next.bring_back_far_times(reader(), config.retry.max_delay)
            .await
            .expect("bring back far times");
        let revisited = pipecrawl::Config::from_toml(
            &format!("seeds = [\"http://h.test/\"]\n{REVISITED}\n"),
            "test config",
        )
        .expect("a valid config");
        next.schedule_unscheduled_recrawls(&RecrawlPolicy::new(&revisited.recrawl), None)
            .await
            .expect("schedule revisits");
    }
    let due = earliest..=server_ms(&db).await + due_in;
    let leases = joined(&next, "next", Arc::default(), &politeness).await;
    loop {
        let began = server_ms(&db).await;
        next.requeue_due_recrawls(false)
            .await
            .expect("queue due revisits");
        claimed(&leases, &next, &politeness).await;
        if !lease(&next, "next").await.is_empty() {
            let taken = Ok(server_ms(&db).await);
            return LeasedAgain { due, taken };
        }
        if began > *due.end() {
            return LeasedAgain {
                due,
                taken: Err(began),
            };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A 500, to be tried again in [`BACKOFF`].
fn failed_for_now(fetched: &mut Fetched) {
    fetched.status = Some(500);
    fetched.retry_in = Some(BACKOFF);
}

/// A page, due a revisit in [`DUE_IN`] by the config [`REVISITED`].
fn a_page(fetched: &mut Fetched) {
    fetched.status = Some(200);
    fetched.content_type = Some("text/html".to_owned());
    fetched.body = Some(b"<html><title>h</title></html>".to_vec());
}

/// A config that revisits every page [`DUE_IN`] after its fetch.
const REVISITED: &str = "[recrawl]\ninterval_s = 5";

/// Stores `fetched` as node `config.cluster.node_id`'s crawl does: parsed, then committed
/// by a writer of its own.
async fn store_as_a_crawl(store: &Store, config: &pipecrawl::Config, fetched: Fetched) {
    let scope = SharedScope::new(Scope::new(config, &[]));
    let seen = Arc::new(Mutex::new(SeenUrls::new(16)));
    let record = pipecrawl::parser::to_record(
        fetched,
        &LinkRules {
            scope: scope.clone(),
            recrawl: RecrawlPolicy::new(&config.recrawl),
            seen: Arc::clone(&seen),
            agent: Arc::from("pipecrawl"),
            robots: None,
            max_redirects: config.fetch.max_redirects,
        },
    );
    let (records, received) = pipecrawl::queue::bounded(1, usize::MAX);
    let stages = Stages::new(Queues {
        to_fetch: Box::new(Fill::default),
        to_parse: Box::new(Fill::default),
        to_store: Box::new(Fill::default),
        capacity: [1; 3],
    });
    let writer = StoreWriter::new(
        store.clone(),
        received,
        config,
        (false, None),
        (Progress::new(stages), scope, seen),
    )
    .spawn(tokio_util::sync::CancellationToken::new());
    let weight = record.weight();
    records
        .send(record, weight)
        .expect("hand the writer a record");
    drop(records);
    writer
        .await
        .expect("the writer's task")
        .expect("store the record");
}

/// A URL that failed for now goes back to the queue due after its backoff. Written as
/// the failing node's clock's time and compared with the leasing node's, it was retried
/// by another node (the host handed back, or taken over from a node killed) early or
/// late by as much as their clocks differ, within the bound the start checks: 3 s behind
/// the next, the failing node had it asked 6 s early (at once); 3 s ahead, 6 s late.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_left_by_a_node_whose_clock_is_off_waits_its_backoff() {
    let Some(postgres) = TestPostgres::start("a_retry_left_by_a_node_whose_clock_is_off") else {
        return;
    };
    let clocks = (three_seconds_behind as Clock, three_seconds_ahead as Clock);
    let retried = |name: &'static str, clocks: (Clock, Clock)| {
        let postgres = &postgres;
        async move {
            let across = Across {
                config: "",
                outcome: failed_for_now,
                starting: false,
            };
            leased_again_across(postgres, name, clocks, across).await
        }
    };
    retried("behind", clocks).await.assert_on_time("the retry");
    retried("ahead", (clocks.1, clocks.0))
        .await
        .assert_on_time("the retry");
}

/// A page is due a revisit its interval after it was fetched. Written as the fetching
/// node's clock's time and compared with the revisiting node's, it was revisited by
/// another node early or late by as much as their clocks differ, within the bound the
/// start checks: 3 s behind the next, the fetching node had it asked 6 s early (at
/// once); 3 s ahead, 6 s late. A node starting brings back revisits due further off
/// than their interval from its now, and schedules those of pages fetched with none:
/// were either its own clock's now, it would have one asked early by as much as its
/// clock is behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revisit_scheduled_by_a_node_whose_clock_is_off_waits_its_interval() {
    let Some(postgres) = TestPostgres::start("a_revisit_scheduled_by_a_node_whose_clock_is_off")
    else {
        return;
    };
    let revisited = |name: &'static str, clocks: (Clock, Clock), config, starting| {
        let postgres = &postgres;
        async move {
            let across = Across {
                config,
                outcome: a_page,
                starting,
            };
            leased_again_across(postgres, name, clocks, across).await
        }
    };
    let (behind, ahead, right) = (
        three_seconds_behind as Clock,
        three_seconds_ahead as Clock,
        SystemTime::now as Clock,
    );
    for (name, clocks, config, starting) in [
        ("behind", (behind, ahead), REVISITED, false),
        ("ahead", (ahead, behind), REVISITED, false),
        ("starting", (right, behind), REVISITED, true),
        ("scheduling", (right, behind), "", true),
    ] {
        revisited(name, clocks, config, starting)
            .await
            .assert_on_time(&format!("the revisit ({name})"));
    }
}

/// A node whose leases have gone stale (its renewals failing: a database that answers
/// some statements and not others, a node stalled) sends no request under them, so it
/// takes no new host either: one taken then would wait unfetched for the node's next
/// renewal, and were the renewals to go on failing, for a lease time that another node
/// could have spent crawling it. Once fresh, it takes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_leases_are_stale_claims_no_host() {
    let Some(postgres) = TestPostgres::start("a_node_whose_leases_are_stale") else {
        return;
    };
    let (store, db) = queued(&postgres, &[found("http://h.test/", 0)]).await;
    let config = pipecrawl::Config::from_toml("seeds = [\"http://h.test/\"]\n", "test config")
        .expect("a valid config");
    let politeness = pipecrawl::politeness::Politeness::new(&config.politeness);
    let ttl = Duration::from_millis(900);
    let join = |node: &'static str, ttl: Duration| {
        let (cluster, politeness) = (
            store.cluster().expect("a PostgreSQL store"),
            politeness.clone(),
        );
        async move {
            HostLeases::join(cluster, node, ttl, Arc::default(), (politeness, ttl))
                .await
                .expect("join the cluster")
        }
    };
    let stale = join("stale", ttl).await;
    // No renewal since the join: past two thirds of the lease time, the leases are stale.
    tokio::time::sleep(ttl * 3 / 4).await;
    assert!(
        !stale.may_dispatch(Instant::now()),
        "the leases are still fresh"
    );
    let rebalanced = stale
        .rebalance(
            &store,
            &mut Frontier::new(politeness.clone()),
            (Instant::now(), false),
        )
        .await
        .expect("rebalance");
    let owner: Option<String> = sqlx::query_scalar("SELECT owner FROM hosts WHERE host = 'h.test'")
        .fetch_one(&db)
        .await
        .expect("read the host's owner");
    assert_eq!(
        (rebalanced.claimed, owner.as_deref()),
        (0, None),
        "a node whose leases are stale claimed a host"
    );

    // Fresh for two thirds of a minute: a loaded machine may take longer than two thirds
    // of the stale node's 900 ms between the join and the rebalance.
    let fresh = join("fresh", Duration::from_secs(60)).await;
    let rebalanced = fresh
        .rebalance(
            &store,
            &mut Frontier::new(politeness),
            (Instant::now(), false),
        )
        .await
        .expect("rebalance");
    assert_eq!(rebalanced.claimed, 1, "a node just joined claimed no host");
}

/// A seed's page moves to another host (by a refresh here; a 3xx alike): the node that
/// fetched it took the new host into its scope, but the other, already running, did not,
/// and dropped as out of scope the links on every page of the new host it parsed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_moving_to_another_host_widens_every_nodes_scope() {
    let Some(postgres) = TestPostgres::start("a_seed_moving_to_another_host") else {
        return;
    };
    let mut b = SiteBuilder::bind(2).await;
    let (old, new) = (b.authority(0), b.authority(1));
    let home = format!("<meta http-equiv=refresh content='0; url=http://{new}/'>");
    b.add(&old, "/", Resource::Html(home));
    let sections: String = (0..40)
        .map(|i| format!("<a href='/s{i}'>{i}</a>"))
        .collect();
    b.add(&new, "/", Resource::Html(sections));
    for i in 0..40 {
        let page = format!("<a href='/s{i}/page'>page</a>");
        b.add(&new, &format!("/s{i}"), Resource::Html(page));
        b.add(&new, &format!("/s{i}/page"), Resource::Html(String::new()));
    }
    let site = b.start();
    let paths = std::iter::once("/".to_owned())
        .chain((0..40).flat_map(|i| [format!("/s{i}"), format!("/s{i}/page")]));
    let want = std::iter::once(site.url(0, "/"))
        .chain(paths.map(|p| site.url(1, &p)))
        .collect();
    let cluster = Cluster {
        seeds: vec![site.url(0, "/")],
        site,
        want,
        database: postgres.database("crawl").await,
        ttl_ms: LIVE_TTL_MS,
        dir: tempfile::tempdir().expect("a temp dir"),
        postgres,
    };
    // The new host is on loopback, which the crawl trusts only for the seeds' hosts.
    let loopback = "[network]\nallow = ['127.0.0.0/8']\n";
    let mut nodes: Vec<Node> = ["a", "b"]
        .iter()
        .map(|n| cluster.node_with(n, loopback))
        .collect();
    for node in &mut nodes {
        node.finishes(Duration::from_secs(60)).await;
    }
    cluster.assert_complete().await;
}
