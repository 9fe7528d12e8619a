//! The crawl's wiring, in one place: channels, pools, and the order things stop in.
//!
//! Shutdown runs upstream first. The dispatcher stops handing out jobs and drops its
//! sender; fetchers finish what they hold (within the grace period) and exit when the
//! job channel is closed; parsers then drain theirs; the writer commits the last batch
//! when its channel closes. What was never handed out, or was cut off, goes back to the
//! queue.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_util::sync::{CancellationToken, DropGuard};
use url::Url;

use crate::admin::{self, Admin, AdminError};
use crate::config::Config;
use crate::credentialed_seeds;
use crate::error::Error;
use crate::fetcher::{self, FetchContext, FetchPool, MinRate};
use crate::frontier::dispatcher::{Dispatcher, PageLimit, Progress};
use crate::frontier::hosts::HostLeases;
use crate::frontier::readmit::{self, Against};
use crate::frontier::seen::{self, SeenUrls};
use crate::frontier::Frontier;
use crate::gaps;
use crate::host_headers::{self, HostRules};
use crate::metrics;
use crate::netguard::NetworkPolicy;
use crate::page::Discovered;
use crate::parser::{LinkRules, ParsePool};
use crate::plural::Count;
use crate::politeness::{HostGate, Politeness};
use crate::progress::{Reporter, Show};
use crate::queue;
use crate::recrawl::RecrawlPolicy;
use crate::resumption::CrawlBegan;
use crate::retry::RetryPolicy;
use crate::robots::{self, RobotsCache};
use crate::scope::{HostPattern, Scope, SharedScope};
use crate::stages::{Fill, Queues, Stages};
use crate::store::cluster::{self, Budget, Cluster};
use crate::store::writer::StoreWriter;
use crate::store::{from_unix_ms, unix_ms, RunEnd, RunStart, Store};
use crate::summary::{EndReason, Summary, UNREACHED};

/// Crawls until the frontier is empty, `scope.max_pages` is reached, or `shutdown`
/// completes; then drains the pipeline and reports. Its progress goes to `tracing` only:
/// the terminal is the calling program's (the `crawl` command's bar is [`crawl_showing`]'s).
///
/// What it leaves in the calling process beyond its database, so that a program embedding
/// the crawler knows: it installs no `tracing` subscriber, signal handler or metrics
/// recorder, and changes no resource limit (the binary does those); it starts one thread
/// that lives as long as the process, to see it stopped for a while ([`gaps`]); it records its
/// counters through the `metrics` facade, into the program's recorder if it has one (the
/// names in [`crate::metrics`]); on PostgreSQL over TLS it makes aws-lc-rs rustls'
/// process-wide `CryptoProvider` unless the program installed one first. Dropping the
/// future stops the crawl where it is (the database's lock is let go; leased URLs are
/// queued again at the next start), where `shutdown` drains it first.
pub async fn crawl(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Summary, Error> {
    crawl_showing(config, shutdown, Show::Log).await
}

/// [`crawl`], its progress shown as `show` says.
pub async fn crawl_showing(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
    show: Show,
) -> Result<Summary, Error> {
    let database = config.storage.database.clone();
    run(config, shutdown, None, show)
        .await
        .map_err(|e| crate::store::said_where_full(e, &database))
}

/// Runs as a service until `shutdown`: crawls, then waits for seeds (over the admin API)
/// and due recrawls, using no CPU while it waits. Each config sent on `reloads` replaces
/// the seeds and scope (SIGHUP).
///
/// Besides what [`crawl`] leaves in the process, the first call installs the Prometheus
/// recorder that `GET /metrics` reads as the process's one `metrics` recorder, for the
/// rest of the process's life: one that the program installed before makes it fail
/// ([`crate::admin::AdminError::Metrics`]).
pub async fn serve(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
    reloads: mpsc::Receiver<Config>,
) -> Result<Summary, Error> {
    let database = config.storage.database.clone();
    let addr = config.admin.listen;
    admin::check_exposure(addr, config.admin.token.as_deref())?;
    if config.admin.file_token_overridden {
        tracing::warn!(
            "{} is set and is not the config's admin.token: the admin API takes the \
             variable's token, and answers the config's with 401 (unset the variable for \
             this service, or make the two the same)",
            crate::config::ADMIN_TOKEN_ENV
        );
    }
    let listener = TcpListener::bind(addr).await.map_err(|source| {
        if source.kind() == std::io::ErrorKind::AddrInUse {
            AdminError::PortInUse { addr }
        } else {
            AdminError::Bind { addr, source }
        }
    })?;
    let metrics = metrics::install().map_err(AdminError::Metrics)?;
    let local = listener
        .local_addr()
        .map_err(|source| AdminError::Bind { addr, source })?;
    tracing::info!("admin API on http://{local}");
    // Answering from now on: the start below may take minutes.
    let (routers, api) = watch::channel(admin::starting(config.admin.token.clone()));
    let done = CancellationToken::new();
    tokio::spawn(admin::serve(listener, api, done.clone()));
    let summary = run(
        config,
        shutdown,
        Some(Service {
            routers,
            metrics,
            reloads,
            done: done.clone(),
        }),
        Show::Log,
    )
    .await;
    done.cancel();
    summary.map_err(|e| crate::store::said_where_full(e, &database))
}

/// Takes `config.cluster.node_id` among the nodes sharing PostgreSQL, once the node's
/// clock agrees with the server's.
async fn claim_name(cluster: &Cluster, config: &Config) -> Result<(), Error> {
    let (node, ttl) = (&config.cluster.node_id, config.cluster.lease_ttl);
    cluster.check_clock(node, cluster.clock(), ttl).await?;
    cluster.claim_name(node, ttl).await
}

/// Refuses a node whose scope or budgets differ from a live node's (each would cut the
/// others' crawl), before anything is written with them; a politeness that differs is
/// warned about.
async fn check_settings(cluster: &Cluster, config: &Config) -> Result<(), Error> {
    let (node, ttl) = (&config.cluster.node_id, config.cluster.lease_ttl);
    let keeps = Scope::new(config, &[]).keeps_fingerprint();
    cluster.check_scope(node, keeps, ttl).await?;
    cluster
        .check_url_spelling(node, url_spelling(config), ttl)
        .await?;
    // Before `readmit::after_budget_change`, which would cut the live nodes' hosts, and
    // before the run sets the crawl's limit of hosts per domain.
    let t = &config.traps;
    for (budget, value) in [
        (Budget::PagesPerHost, t.max_pages_per_host),
        (Budget::HostsPerDomain, t.max_hosts_per_domain),
    ] {
        let value = i64::try_from(value).unwrap_or(i64::MAX);
        cluster.check_budget(node, (budget, value), ttl).await?;
    }
    let politeness = shared_politeness(config);
    for (setting, other) in cluster.differing_politeness(node, politeness, ttl).await? {
        tracing::warn!(
            "node {node:?}: {setting} differs from live node {other:?}'s: each node's \
             hosts get its own delay, concurrency and robots.txt group, so a host's \
             crawl changes with its owner. Give every node the same"
        );
    }
    Ok(())
}

/// How a node spells the URLs it finds, as [`Cluster::check_url_spelling`] compares it:
/// `traps.session_params` (matched in any case, in any order) and `traps.sort_query`.
fn url_spelling(config: &Config) -> i64 {
    let mut session_params: Vec<String> = config
        .traps
        .session_params
        .iter()
        .map(|p| p.to_ascii_lowercase())
        .collect();
    session_params.sort_unstable();
    crate::store::fingerprint(&(session_params, config.traps.sort_query))
}

/// The settings nodes sharing PostgreSQL should share, as [`Cluster::differing_politeness`]
/// takes them: of `fetch.user_agent`, the product token robots.txt groups name.
fn shared_politeness(config: &Config) -> cluster::Politeness {
    let p = &config.politeness;
    let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    [
        crate::store::fingerprint(&robots::product_token(&config.fetch.user_agent)),
        ms(p.delay),
        i64::from(p.per_host_concurrency),
        i64::from(p.respect_robots_txt),
        ms(p.max_crawl_delay),
        crate::store::fingerprint(&p.hosts),
    ]
}

/// What `serve` adds to a crawl.
struct Service {
    /// Where the API takes its router from: [`admin::starting`]'s until the crawl runs.
    routers: watch::Sender<Router>,
    metrics: PrometheusHandle,
    reloads: mpsc::Receiver<Config>,
    /// Ends the API, with the run.
    done: CancellationToken,
}

/// What a run has made once its database is open.
struct Opened {
    started: Instant,
    network: Arc<NetworkPolicy>,
    host_rules: Arc<HostRules>,
    client: fetcher::HttpClient,
    store: Store,
    known_seeds: Vec<Url>,
    /// Ends the run's tasks (the renewal of a node's leases among them), and a service's
    /// API.
    done: CancellationToken,
    show: Show,
}

/// A node sharing PostgreSQL that stops on an error leaves the others at once, as one
/// that ends does: it is no crash, to keep its id for a lease time (a restart under it,
/// by hand or by systemd once the cause is mended, refused as a live node's) and its
/// share of the hosts.
async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
    service: Option<Service>,
    show: Show,
) -> Result<Summary, Error> {
    let started = Instant::now();
    gaps::watch();
    config.check_counts()?;
    fetcher::check_proxy(&config).await?;
    // Before the database is opened or a stage starts: a client that cannot be built
    // (no CA certificates on the machine) stops the run with nothing done.
    let network = Arc::new(NetworkPolicy::new(config.network_allow.clone()));
    let host_rules = Arc::new(HostRules::new(&config.fetch.host_headers));
    let client = fetcher::client(&config, Arc::clone(&network), Arc::clone(&host_rules))?;
    let store = Store::open_node(&config.storage.database, &config.cluster.node_id).await?;
    let known_seeds = store.seeds_by_host().await?;
    if config.seeds.is_empty() && known_seeds.is_empty() && service.is_none() {
        store.close().await?;
        return Err(Error::NoSeeds {
            database: crate::store::redacted(&config.storage.database),
            where_looked: match &config.seeds_file {
                Some(path) => format!("neither `seeds` nor `seeds_file` ({path:?}) names a URL"),
                None => "`seeds` names no URL".to_owned(),
            },
        });
    }
    let done = service
        .as_ref()
        .map_or_else(CancellationToken::new, |service| service.done.clone());
    let opened = Opened {
        started,
        network,
        host_rules,
        client,
        store: store.clone(),
        known_seeds,
        done: done.clone(),
        show,
    };
    let Some(cluster) = store.cluster() else {
        return run_opened(opened, config, shutdown, service).await;
    };
    claim_name(&cluster, &config).await?;
    let node = config.cluster.node_id.clone();
    let ran = run_opened(opened, config, shutdown, service).await;
    if ran.is_err() {
        done.cancel();
        if let Err(e) = cluster.leave(&node).await {
            tracing::warn!("node {node:?} stops without leaving the others: {e}");
        }
    }
    ran
}

/// The run, once its database is open and, on PostgreSQL, its node's id taken: recorded
/// in `runs` as it starts and as it ends, the database closed after.
async fn run_opened(
    opened: Opened,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
    service: Option<Service>,
) -> Result<Summary, Error> {
    let store = opened.store.clone();
    let serving = service.is_some();
    let command = if serving { "serve" } else { "crawl" };
    let run = store
        .begin_run(&RunStart {
            config: &config,
            command,
        })
        .await?;
    match run_stages(opened, config, shutdown, service).await {
        Ok((summary, closing)) => {
            let pages = i64::try_from(summary.tally.pages).unwrap_or(i64::MAX);
            let ended = (RunEnd::of(&summary, serving), Some(pages));
            // The crawl is done and stored whatever becomes of its record.
            if let Err(e) = store.end_run(run, ended).await {
                tracing::warn!("the run's end is not recorded in `runs`: {e}");
            }
            store.close_stoppable(&closing.stop).await?;
            Ok(summary)
        }
        Err(e) => {
            // The error may be the database's own: said, and the run left with no end.
            if let Err(record) = store.end_run(run, (RunEnd::Error, None)).await {
                tracing::warn!("the run's end is not recorded in `runs`: {record}");
            }
            // The WAL beside the database's name is the replaced file's: left there, the
            // next program to open the file now under the name folded it in and damaged
            // it. Closed, SQLite folds it into the file it belongs to and removes it.
            if matches!(e, Error::DatabaseReplaced { .. }) {
                if let Err(close) = store.close().await {
                    tracing::warn!("closing the replaced database: {close}");
                }
            }
            Err(e)
        }
    }
}

/// How a run's database is closed once its stages are done: stopped short by `stop`,
/// which a signal cancels for as long as `_listening` is held.
struct Closing {
    stop: CancellationToken,
    _listening: DropGuard,
}

/// The stages of a run, from the start's passes over the frontier to the summary, given
/// back with how to close the database.
async fn run_stages(
    opened: Opened,
    mut config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
    service: Option<Service>,
) -> Result<(Summary, Closing), Error> {
    let Opened {
        started,
        network,
        host_rules,
        client,
        store,
        known_seeds,
        done,
        show,
    } = opened;
    if let Some(cluster) = store.cluster() {
        check_settings(&cluster, &config).await?;
    }
    // A service's runs end by signals only: it has no crawl to end, nor exit status.
    let began = match service {
        Some(_) => None,
        None => Some(CrawlBegan::read(&store, &config.cluster.node_id).await?),
    };
    let politeness = Politeness::new(&config.politeness);
    // Nodes sharing PostgreSQL wait a delay for a host taken over from a node that is gone.
    if store.cluster().is_none() {
        keep_killed_runs_turns(&store, &politeness).await?;
    }
    let recovered = store.recover_leases(&config.cluster.node_id).await?;
    if recovered > 0 {
        tracing::info!(
            recovered,
            "resuming: URLs in flight when the last run stopped are queued again"
        );
    }
    // Before any URL is added, the merge below's included.
    store
        .limit_hosts_per_domain(config.traps.max_hosts_per_domain)
        .await?;
    admit_named_hosts(&store, &config, config.traps.max_pages_per_host).await?;
    // URLs a killed run found and had not merged yet join the queue before it is read.
    // The trap rows the start's passes store are this run's pages, counted once the
    // writer's counts begin.
    let trapped = store.merge_staged(config.traps.max_pages_per_host).await?;
    let trapped =
        trapped + readmit::after_budget_change(&store, config.traps.max_pages_per_host).await?;
    readmit::after_hosts_limit_change(
        &store,
        config.traps.max_hosts_per_domain,
        config.traps.max_pages_per_host,
    )
    .await?;
    readmit::after_robots_turned_off(
        &store,
        config.politeness.respect_robots_txt,
        config.traps.max_pages_per_host,
    )
    .await?;
    readmit::after_network_change(&store, &config.network_allow).await?;
    let last_run_end = store.previous_run_end().await?;
    undo_clock_step(&store, last_run_end).await?;
    store
        .bring_back_far_times(SystemTime::now(), config.retry.max_delay)
        .await?;
    let recrawl = RecrawlPolicy::new(&config.recrawl);
    // What the revisit intervals of the pages stored count from: a one-off crawl's start,
    // as it takes only the revisits due when it starts (one run by cron once an interval
    // found every page it visited after its own start not due yet, and revisited each
    // every other run); a service's, each page's store, as it takes each as it falls due.
    let revisits_from = service.is_none().then(|| {
        let now = SystemTime::now();
        now.checked_sub(started.elapsed()).unwrap_or(now)
    });
    reschedule_on_new_policy(&store, &recrawl).await?;
    let last_run_started = store
        .crawl_state(ONE_OFF_RUN_STARTED)
        .await?
        .map(from_unix_ms);
    let scheduled = store
        .schedule_unscheduled_recrawls(&recrawl, last_run_started)
        .await?;
    match revisits_from {
        Some(started) => {
            store
                .set_crawl_state(ONE_OFF_RUN_STARTED, unix_ms(started))
                .await?;
        }
        None => store.clear_crawl_state(ONE_OFF_RUN_STARTED).await?,
    }
    if scheduled > 0 {
        tracing::info!(
            scheduled,
            "pages visited with no revisit scheduled have one now"
        );
    }
    let due = store.requeue_due_recrawls(service.is_none()).await?;
    if due > 0 {
        tracing::info!(due, "pages due for a revisit are queued");
    }
    if config.retry.earlier_failures {
        let again = store.requeue_failures().await?;
        tracing::info!(
            again,
            "URLs that failed for now in earlier runs are queued again"
        );
    }
    host_headers::warn_of_tokens_for_every_host(&config.fetch.headers);
    network.trust(config.seeds.iter().chain(&known_seeds));
    host_rules.learn(config.seeds.iter().chain(&known_seeds));
    host_rules.learn_credentials(&config.seeds);
    let scope = SharedScope::new(Scope::new(&config, &store.in_scope(known_seeds).await?));
    enqueue_seeds(&store, &config, &scope.get(), None).await?;
    // Queued, trusted and in scope: a seeds file's million URLs need not stay for the crawl.
    config.seeds = Vec::new();
    // Fixed for the life of the process: a reload's passes over the frontier keep them.
    let budget = config.traps.max_pages_per_host;
    let sizes = (config.frontier.seen_cache, budget);
    let trapped = trapped
        + readmit::after_scope_change(&store, &scope.get(), sizes, Against::LastRun)
            .await?
            .unwrap_or(0)
        + readmit::after_boost_change(&store, &scope.get(), budget, Against::LastRun).await?
        + readmit::after_shape_limits_change(&store, &scope.get(), budget, Against::LastRun)
            .await?;
    // A service's database is queried while it runs; a one-off crawl's once it is done.
    let deferred = if service.is_some() {
        store.catch_up_derived().await?;
        false
    } else {
        store.defer_derived().await?
    };
    // `scope.max_pages` counts what the database holds; a reload may set it later.
    let stored = store.page_count().await?;

    let (jobs_tx, jobs_rx) = flume::bounded(config.channels.to_fetch);
    // Bodies waiting to be parsed get half the bytes, parsed pages waiting to be stored
    // the other half.
    let half = config.channels.max_bytes / 2;
    let (fetched_tx, fetched_rx) = queue::bounded(config.channels.to_parse, half);
    let (records_tx, records_rx) = queue::bounded(config.channels.to_store, half);
    let stages = Stages::new(Queues {
        to_fetch: depth(jobs_tx.downgrade()),
        to_parse: fill(fetched_tx.gauge()),
        to_store: fill(records_tx.gauge()),
        capacity: [
            config.channels.to_fetch,
            config.channels.to_parse,
            config.channels.to_store,
        ],
    });
    let progress = Progress::new(stages.clone());
    progress.trapped_apart(trapped);
    let stop = CancellationToken::new();
    // Listened for until the store is closed: a signal during the last checkpoint's wait
    // for another program's reader, at a crawl's natural end, cuts that wait short.
    let closed = CancellationToken::new();
    let close_ends_the_listening = closed.clone().drop_guard();
    // Cancelled once the writer has stored every page: a stop then has none in hand to
    // wait for.
    let ending = CancellationToken::new();
    tokio::spawn({
        let (stop, closed, ending) = (stop.clone(), closed.clone(), ending.clone());
        async move {
            tokio::select! {
                () = shutdown => {
                    stop.cancel();
                    // Else the stop seemed to wait for the pages in flight, within the
                    // grace period, and then for nothing said.
                    if crate::store::waiting_for_database() && !ending.is_cancelled() {
                        tracing::warn!(
                            "the database does not answer, or its disk is full: stopping \
                             waits for it to store the pages in hand (as long as a crawl \
                             waits for it); a second signal stops at once, and the next \
                             start asks again for them"
                        );
                    }
                }
                () = closed.cancelled() => {}
            }
        }
    });
    let serving = service.is_some();
    let reporter = Reporter::new(progress.clone(), stages.clone(), show);
    let seen = Arc::new(Mutex::new(SeenUrls::new(config.frontier.seen_cache)));
    let mut reloads = None;
    if let Some(service) = service {
        reloads = Some(service.reloads);
        let admin = Admin {
            store: store.clone(),
            progress: progress.clone(),
            scope: scope.clone(),
            network: Arc::clone(&network),
            host_rules: Arc::clone(&host_rules),
            stages: stages.clone(),
            metrics: service.metrics,
            token: config.admin.token.clone(),
            started,
            node: config.cluster.node_id.clone(),
            readmit: sizes,
            new_hosts: readmit::NewHosts::default(),
            seen: Arc::clone(&seen),
            busiest: admin::BusiestHosts::default(),
            stopping: stop.clone(),
            pausing: tokio::sync::Mutex::default(),
        };
        if store
            .crawl_state(&admin::paused_key(&store, &admin.node))
            .await?
            == Some(1)
        {
            progress.set_paused(true);
            tracing::warn!(
                "paused, as POST /pause left it before the restart: POST /resume to crawl"
            );
        }
        let admin = Arc::new(admin);
        tokio::spawn(admin::follow_new_hosts(Arc::clone(&admin)));
        let running = admin::router(admin);
        service.routers.send_modify(|router| *router = running);
    }
    let gate = Arc::new(HostGate::default());
    let robots = Arc::new(RobotsCache::new(
        (
            client.clone(),
            Arc::clone(&network),
            MinRate(config.fetch.min_bytes_per_sec),
            config.fetch.timeout,
        ),
        store.clone(),
        Arc::clone(&gate),
        politeness.clone(),
        &config.fetch.user_agent,
        (
            config.politeness.robots_ttl,
            config.retry.base_delay,
            config.retry.max_delay,
        ),
    ));
    // The longest any rule makes a host wait: a stored wait beyond it is a clock's error.
    let longest_wait = politeness.longest_delay().max(config.retry.max_delay);
    // On a database shared with other nodes: the hosts this node crawls, with leases a
    // background task renews until the pipeline has drained.
    let hosts = match store.cluster() {
        Some(cluster) => {
            let leases = HostLeases::join(
                cluster,
                &config.cluster.node_id,
                config.cluster.lease_ttl,
                Arc::clone(&gate),
                (politeness.clone(), longest_wait),
            )
            .await?;
            leases.keep_renewed(&done);
            // Said as it is: a node alone was told it crawled "with the other nodes".
            let node = &config.cluster.node_id;
            // A line of the log: a failure to count is said, not a reason not to start.
            match leases.others_alive().await {
                Err(e) => tracing::warn!("cannot count the other nodes on this database: {e}"),
                Ok(0) => tracing::info!(
                    %node,
                    "crawling alone on this database for now: nodes that join it take a share \
                     of its hosts"
                ),
                Ok(others) => tracing::info!(
                    %node,
                    others,
                    "crawling with {} on this database",
                    Count(others.unsigned_abs(), "other node")
                ),
            }
            Some(leases)
        }
        None => None,
    };
    let mut frontier = Frontier::new(politeness.clone());
    if hosts.is_none() {
        resume_host_turns(&store, &mut frontier, &gate, longest_wait, last_run_end).await?;
    }
    let reporter = tokio::spawn(reporter.run(done.clone()));

    // The stages start once every step that may fail has been taken, the parse threads
    // before the writer: a run that stopped with the writer started left it to finish
    // its work as the runtime shut down, where its timers panic.
    let parsers = ParsePool::spawn(
        config.parse.workers,
        fetched_rx,
        records_tx,
        LinkRules {
            scope: scope.clone(),
            recrawl: recrawl.clone(),
            seen: Arc::clone(&seen),
            agent: Arc::from(robots::product_token(&config.fetch.user_agent)),
            robots: config
                .politeness
                .respect_robots_txt
                .then(|| Arc::clone(&robots)),
            max_redirects: config.fetch.max_redirects,
        },
        &stages,
    )
    .map_err(|e| Error::StageFailed(format!("cannot start parse threads: {e}")))?;
    let writer = StoreWriter::new(
        store.clone(),
        records_rx,
        &config,
        (deferred, revisits_from),
        (progress.clone(), scope.clone(), Arc::clone(&seen)),
    )
    .spawn(stop.clone());
    let context = FetchContext {
        client,
        network: Arc::clone(&network),
        robots,
        gate,
        politeness: politeness.clone(),
        retry: RetryPolicy::new(&config.retry),
        progress: progress.clone(),
        max_body_bytes: config.fetch.max_body_bytes,
        max_redirects: config.fetch.max_redirects,
        min_rate: MinRate(config.fetch.min_bytes_per_sec),
        timeout: config.fetch.timeout,
        max_header_bytes: config.fetch.max_header_bytes,
        max_headers: config.fetch.max_headers,
        respect_robots_txt: config.politeness.respect_robots_txt,
        scope: scope.clone(),
        leases: hosts.clone(),
        sitemap_reads: Semaphore::new(fetcher::SITEMAPS_READ_AT_ONCE),
    };
    let context = Arc::new(context);
    let abort = CancellationToken::new();
    let mut fetchers = FetchPool::spawn(
        config.fetch.workers,
        Arc::clone(&context),
        jobs_rx.clone(),
        fetched_tx,
        abort.clone(),
    );
    if let Some(reloads) = reloads {
        let reload = Reload {
            store: store.clone(),
            scope: scope.clone(),
            network: Arc::clone(&network),
            host_rules,
            robots: Arc::clone(&context.robots),
            progress: progress.clone(),
            recrawl: recrawl.clone(),
            readmit: sizes,
            seen: Arc::clone(&seen),
            node: config.cluster.node_id.clone(),
        };
        tokio::spawn(reload.run(reloads));
    }
    let dispatcher = Dispatcher::new(
        frontier,
        store.clone(),
        (jobs_tx, jobs_rx),
        progress.clone(),
        config.frontier.window,
        (
            PageLimit {
                scope: scope.clone(),
                stored,
                asks_again: config.retry.earlier_failures,
            },
            recrawl.clone(),
        ),
        serving,
    )
    .node(
        &config.cluster.node_id,
        hosts.clone().map(|h| (h, config.cluster.lease_ttl)),
    )
    .host_budget(config.traps.max_pages_per_host)
    .longest_retry(config.retry.max_delay);

    let ended = dispatcher.run(stop.clone()).await;
    let finish_fetches = async {
        while let Some(joined) = fetchers.join_next().await {
            joined.map_err(|e| Error::StageFailed(format!("a fetch worker panicked: {e}")))?;
        }
        Ok::<(), Error>(())
    };
    let stopped = matches!(ended, Ok(EndReason::Interrupted));
    let grace = if stopped {
        config.shutdown.grace_period
    } else {
        Duration::MAX
    };
    let outage = context.client.outage();
    // Fetches waiting out an outage of the way out end with it, not within the grace
    // period: the stop hands them back as soon as one is under way.
    let outage_under_way = async {
        if stopped {
            outage.under_way().await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    let finished = tokio::select! {
        // Fetches all ended as an outage began handed nothing back.
        biased;
        finished = tokio::time::timeout(grace, finish_fetches) => {
            finished.map_err(|_| "grace period over: fetches still running go back to the queue")
        }
        () = outage_under_way => Err(outage.stop_words()),
    };
    match finished {
        Ok(finished) => finished?,
        Err(why) => {
            tracing::warn!("{why}");
            abort.cancel();
            while fetchers.join_next().await.is_some() {}
        }
    }
    tokio::task::spawn_blocking(move || {
        parsers
            .into_iter()
            .map(|t| t.join())
            .collect::<Result<Vec<()>, _>>()
    })
    .await
    .map_err(|e| Error::StageFailed(format!("joining the parse pool: {e}")))?
    .map_err(|_| Error::StageFailed("a parse thread panicked".into()))?;
    let tally = writer
        .await
        .map_err(|e| Error::StageFailed(format!("the store writer panicked: {e}")))??;
    // Every page stored: a wait from here on holds none in hand.
    ending.cancel();
    store
        .release(&config.cluster.node_id, &progress.take_abandoned())
        .await?;
    match &hosts {
        Some(hosts) => hosts.leave().await?,
        None => keep_host_turns(&store, &context.gate).await?,
    }
    done.cancel();
    reporter
        .await
        .map_err(|e| Error::StageFailed(format!("the progress reporter panicked: {e}")))?;
    // Also when nothing was deferred: a killed run may have left something out.
    let indexing = Instant::now();
    let built = build_derived_unless_stopped(&store, &stop).await?;
    let indexing = (deferred && built).then(|| indexing.elapsed());
    if let Some(took) = indexing {
        tracing::info!(
            "links indexed and counted by target in {:.1} s",
            took.as_secs_f64()
        );
    }
    let mut summary = Summary {
        tally,
        elapsed: started.elapsed(),
        indexing,
        ended: ended?,
        stages: stages.report(),
        answered_earlier: false,
        never_answered: false,
    };
    if let Some(began) = began {
        began.end(&store, &mut summary).await?;
        // Nodes sharing PostgreSQL: one that starts as the others end is no run again.
        if store.cluster().is_none() && summary.found_nothing_left(stored) {
            summary.never_answered = !store.answered_since(UNIX_EPOCH, &UNREACHED).await?;
            // With `[recrawl]` set, what the user waits for is its first revisit.
            let revisits = match store.next_recrawl().await? {
                Some(wait) => format!(
                    "no revisit is due yet (`[recrawl]`): the first falls due at {}",
                    humantime::format_rfc3339_seconds(SystemTime::now() + wait)
                ),
                None => "`[recrawl]` revisits pages".to_owned(),
            };
            tracing::info!(
                "nothing left to crawl: {} holds the {} of earlier runs, and every URL they \
                 found in scope was visited. To crawl again from the start, remove it (or \
                 name another `storage.database`); {revisits}, --retry-failed asks again \
                 for those that failed for now, and a wider `[scope]` goes on from the \
                 links stored",
                crate::store::located(&config.storage.database),
                Count(store.page_rows().await?, "page")
            );
        }
    }
    let closing = Closing {
        stop,
        _listening: close_ends_the_listening,
    };
    Ok((summary, closing))
}

/// Builds what a one-off crawl left to its end ([`Store::build_derived`]), unless it waits
/// for the database or for room on its disk once the crawl is asked to stop (`stop`,
/// before or during the build): every page is stored by then and the next run builds
/// them, so a stop need not wait the ten minutes a crawl waits out an outage or a full
/// disk. Returns whether they were built.
async fn build_derived_unless_stopped(
    store: &Store,
    stop: &CancellationToken,
) -> Result<bool, Error> {
    let stopped_waiting = async {
        stop.cancelled().await;
        while !crate::store::waiting_for_database() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::select! {
        built = store.build_derived() => built.map(|()| true),
        () = stopped_waiting => {
            tracing::warn!(
                "stopped before the links were indexed and counted by target, which waited \
                 for the database or for room on its disk: every page is stored, and the next \
                 crawl or service start builds them"
            );
            Ok(false)
        }
    }
}

/// A channel's depth, read through a weak handle so that reading it never keeps the
/// channel open past its stage's end. The jobs' channel has no byte budget.
fn depth<T: Send + 'static>(weak: flume::WeakSender<T>) -> Box<dyn Fn() -> Fill + Send + Sync> {
    Box::new(move || Fill {
        depth: weak.upgrade().map_or(0, |s| s.len()),
        short_of_bytes: false,
    })
}

/// A bounded queue's fill, in values and bytes.
fn fill<T: Send + 'static>(gauge: queue::Gauge<T>) -> Box<dyn Fn() -> Fill + Send + Sync> {
    Box::new(move || Fill {
        depth: gauge.depth(),
        short_of_bytes: gauge.short_of_bytes(),
    })
}

/// A crawl stopped and started again is still one visitor to each host: the hosts the
/// last run left within a wait (its delay, a Crawl-delay, a `Retry-After`, or
/// [`keep_killed_runs_turns`]'s) wait it out. A node sharing PostgreSQL does this as it
/// hands its hosts back and claims others. Each wait is what was left of it as the last
/// run ended, by the clock it ran on: one that has stepped back since (or ran ahead)
/// would add its step to every host's wait. No wait is longer than `longest`, the most
/// the rules ask, as a run killed leaves no end (`last_run_end`) to count from.
async fn resume_host_turns(
    store: &Store,
    frontier: &mut Frontier,
    gate: &HostGate,
    longest: Duration,
    last_run_end: Option<SystemTime>,
) -> Result<(), Error> {
    let (now, wall) = (Instant::now(), SystemTime::now());
    let left = last_run_end.map_or(wall, |end| end.max(wall));
    for (host, at) in store.host_turns(wall, left, longest).await? {
        let until = now + at.duration_since(wall).unwrap_or_default();
        gate.pause(&host, until.into());
        frontier.hold(&Arc::from(host), until, now);
    }
    Ok(())
}

/// Retries and revisits the last run left, on a clock that has stepped back since (or ran
/// ahead), wait the backoff or interval they had as it ended (`last_run_end`), not the
/// step on top of it (which `bring_back_far_times` would cut to `retry.max_delay_ms` or
/// the interval at most: an hour's step, with a longer one allowed, held them an hour).
/// On SQLite alone: on PostgreSQL their due times are the database server's.
async fn undo_clock_step(store: &Store, last_run_end: Option<SystemTime>) -> Result<(), Error> {
    if store.cluster().is_some() {
        return Ok(());
    }
    let now = SystemTime::now();
    // A step under a second (NTP correcting between back-to-back runs) is no news, and
    // not worth rewriting every revisit of a service's frontier for.
    let step = last_run_end
        .and_then(|end| end.duration_since(now).ok())
        .filter(|step| *step >= Duration::from_secs(1));
    if let Some(step) = step {
        let moved = store.undo_clock_step(now, step).await?;
        if moved > 0 {
            tracing::warn!(
                moved,
                "the clock is {} behind the last run's end: its retries and revisits wait what they had then",
                humantime::format_duration(Duration::from_secs(step.as_secs()))
            );
        }
    }
    Ok(())
}

/// The hosts a killed run had URLs out to, whose next turn it could not leave, wait
/// their delay (Crawl-delay included) from now. Kept in the database before their URLs
/// go back to the queue, which is what told them apart: a run killed in turn while it
/// starts, a crash loop, would otherwise leave the next one nothing to wait for.
async fn keep_killed_runs_turns(store: &Store, politeness: &Politeness) -> Result<(), Error> {
    let now = SystemTime::now();
    let turns: Vec<(String, SystemTime)> = store
        .leased_hosts()
        .await?
        .into_iter()
        .map(|(host, crawl_delay)| {
            let delay = politeness.limits(&host, crawl_delay).delay;
            (host, now + delay)
        })
        .collect();
    store.save_host_turns(&turns).await
}

/// Leaves the hosts still within a wait for the next run ([`resume_host_turns`]).
async fn keep_host_turns(store: &Store, gate: &HostGate) -> Result<(), Error> {
    let (now, wall) = (tokio::time::Instant::now(), SystemTime::now());
    let turns: Vec<(String, SystemTime)> = gate
        .waiting()
        .into_iter()
        .map(|(host, at)| (host, wall + at.saturating_duration_since(now)))
        .collect();
    store.save_host_turns(&turns).await
}

/// The `crawl_state` key of the `[recrawl]` hash.
const RECRAWL_FINGERPRINT: &str = "recrawl_fingerprint";

/// The `crawl_state` key of the last one-off crawl's start (unix ms), which its pages'
/// revisits count from: rescheduled by a changed `[recrawl]`, they count from it again,
/// or the next run by cron would find those that run reached late not due yet. A service
/// clears it: its pages count from their store.
const ONE_OFF_RUN_STARTED: &str = "one_off_run_started_ms";

/// Revisits an earlier run scheduled by another `[recrawl]` are scheduled again by this
/// run's, from their pages' last fetch: a lowered interval would otherwise wait out the
/// old one (a week, from a weekly config), and a rule added for `/news/` would reach
/// each page only after its next visit. Adaptive intervals start again from the config.
async fn reschedule_on_new_policy(store: &Store, recrawl: &RecrawlPolicy) -> Result<(), Error> {
    let fingerprint = recrawl.fingerprint();
    let known = store.crawl_state(RECRAWL_FINGERPRINT).await?;
    if known == Some(fingerprint) {
        return Ok(());
    }
    // Unknown: a new database, or one whose revisits were scheduled before this was kept.
    if known.is_some() {
        let dropped = store.unschedule_recrawls().await?;
        if dropped > 0 {
            tracing::info!(
                dropped,
                "[recrawl] differs from the last run's: revisits are scheduled again by it"
            );
        }
    }
    store
        .set_crawl_state(RECRAWL_FINGERPRINT, fingerprint)
        .await
}

/// Seeds queued in one transaction at most: a seeds file may hold a million, whose
/// frontier rows, held at once, weighed several times their URLs.
const SEEDS_AT_ONCE: usize = 10_000;

/// Queues the config's seeds, [`SEEDS_AT_ONCE`] at a time, noting each in `seen` when
/// the crawl runs; each seed on a host `scope.hosts` leaves out is named in a warning.
/// A seed an older pipecrawl stored with its user name and password is queued already,
/// so spelt ([`credentialed_seeds`]).
async fn enqueue_seeds(
    store: &Store,
    config: &Config,
    scope: &Scope,
    seen: Option<&Mutex<SeenUrls>>,
) -> Result<(), Error> {
    warn_of_seeds_left_out(config, scope);
    let queued = credentialed_seeds::stored_with_them(store, config).await?;
    for chunk in config.seeds.chunks(SEEDS_AT_ONCE) {
        let rows: Vec<Discovered> = chunk
            .iter()
            .filter(|url| queued.is_empty() || !queued.contains(*url))
            .map(|url| scope.seed(url))
            .collect();
        store.enqueue(&rows).await?;
        if let Some(seen) = seen {
            seen::note_found(seen, &rows);
        }
    }
    Ok(())
}

fn warn_of_seeds_left_out(config: &Config, scope: &Scope) {
    let left_out: Vec<usize> = scope
        .seeds_left_out(&config.seeds)
        .iter()
        .map(|&(i, _)| i)
        .collect();
    let says = |key: &str, seed: &str| {
        format!(
            "{key} ({seed}) is on a host `scope.hosts` leaves out: it is fetched, and of its \
             links only those to the hosts named there are followed"
        )
    };
    config.warn_of_seeds(&left_out, says, "on hosts `scope.hosts` leaves out");
}

/// Admits the hosts `scope.hosts` names without a wildcard, and the seeds': the user's,
/// never over `traps.max_hosts_per_domain`; those a lower limit cut have their URLs
/// queued again within `max_pages_per_host` (the running one).
async fn admit_named_hosts(
    store: &Store,
    config: &Config,
    max_pages_per_host: u64,
) -> Result<(), Error> {
    // A set: a seeds file names a host once a seed, a million times over.
    let named: BTreeSet<String> = config
        .scope
        .hosts
        .iter()
        .filter_map(HostPattern::exact_host)
        .map(str::to_owned)
        .chain(config.seeds.iter().map(crate::urlnorm::host_key))
        .collect();
    let named: Vec<String> = named.into_iter().collect();
    let requeued = store.admit_named_hosts(&named, max_pages_per_host).await?;
    if requeued > 0 {
        tracing::info!(
            requeued,
            "URLs of host names cut at their domain's traps.max_hosts_per_domain, now named \
             in scope.hosts or the seeds, are queued again"
        );
    }
    Ok(())
}

/// What a SIGHUP changes.
struct Reload {
    store: Store,
    scope: SharedScope,
    network: Arc<NetworkPolicy>,
    host_rules: Arc<HostRules>,
    robots: Arc<RobotsCache>,
    progress: Progress,
    /// The running `[recrawl]`, which a reload keeps.
    recrawl: RecrawlPolicy,
    /// The running `frontier.seen_cache` and `traps.max_pages_per_host`, which a reload
    /// keeps too: its passes spend the hosts' budgets the writer counts against.
    readmit: (usize, u64),
    /// The crawl's seen-URL cache, told of the reload's seeds.
    seen: Arc<Mutex<SeenUrls>>,
    /// `cluster.node_id`, under which a node sharing PostgreSQL records its new scope, for
    /// the nodes that start after it to match.
    node: String,
}

impl Reload {
    /// The new config's seeds are trusted and queued, and its scope (`[scope]`, with
    /// `max_pages` and `sitemaps`, and the link rules it carries) replaces the old.
    /// Politeness, pool sizes and the database are fixed for the life of the process.
    async fn run(self, mut reloads: mpsc::Receiver<Config>) {
        while let Some(config) = reloads.recv().await {
            match self.apply(&config).await {
                Ok(()) => {
                    self.progress.work_added();
                    metrics::config_reloaded(true);
                    tracing::info!(
                        "config reloaded: seeds and scope updated (other settings need a restart)"
                    );
                }
                Err(e) => {
                    metrics::config_reloaded(false);
                    tracing::error!("config reload failed, keeping the old one: {e}");
                }
            }
        }
    }

    /// The seeds are queued without the scope's lock: a seeds file of a million takes
    /// long (~24 s, debug build), and a seed sent over the API, or a seed's redirect the
    /// writer stores, waits on the lock. Their rows do not depend on the hosts in scope;
    /// the scope is built under the lock from the seeds stored by then, those just sent
    /// over the API among them.
    async fn apply(&self, config: &Config) -> Result<(), Error> {
        let rules = Scope::new(config, &[]);
        {
            // Under the lock, as a seed sent over the API that is not stored takes back
            // the trust it gave, which would otherwise take this one's.
            let _changing = self.scope.changing().await;
            self.network.trust(&config.seeds);
        }
        // Before the seeds, whose hosts would be admitted with them and not looked at.
        admit_named_hosts(&self.store, config, self.readmit.1).await?;
        self.host_rules.learn_credentials(&config.seeds);
        enqueue_seeds(&self.store, config, &rules, Some(&self.seen)).await?;
        self.host_rules.learn(&config.seeds);
        let changing = self.scope.changing().await;
        let known = self.store.seeds_in_scope().await?;
        let new_scope = rules.with_seeds(&known);
        if new_scope.sitemaps && !self.scope.get().sitemaps {
            self.robots.offer_sitemaps_again();
        }
        if let Some(cluster) = self.store.cluster() {
            cluster
                .record_scope(&self.node, new_scope.keeps_fingerprint())
                .await?;
            cluster
                .record_url_spelling(&self.node, url_spelling(config))
                .await?;
        }
        self.scope.set(new_scope);
        drop(changing);
        // Without the lock: the pass may read a large database, and seeds over the API
        // wait on it.
        let scope = self.scope.get();
        let (budget, reload) = (self.readmit.1, Against::Reload);
        let scope_pass =
            readmit::after_scope_change(&self.store, &scope, self.readmit, reload).await?;
        let boost_pass = readmit::after_boost_change(&self.store, &scope, budget, reload).await?;
        self.progress.trapped_apart(boost_pass);
        let shape_pass =
            readmit::after_shape_limits_change(&self.store, &scope, budget, reload).await?;
        self.progress.trapped_apart(shape_pass);
        if let Some(trapped) = scope_pass {
            self.progress.trapped_apart(trapped);
            // Pages the old scope left out had their revisits dropped as they came due;
            // those the new one keeps get theirs back, as at a restart.
            self.store
                .schedule_unscheduled_recrawls(&self.recrawl, None)
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use metrics_exporter_prometheus::PrometheusBuilder;

    use super::*;
    use crate::stages::Queues;

    /// A seed sent over the API while a SIGHUP reload waits for the database to queue its
    /// seeds: the request does not wait for the reload, and the reload's scope, built from
    /// the seeds stored, keeps the API's host whichever of the two stores first.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reload_keeps_the_hosts_of_seeds_added_while_it_runs() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let config = Config::from_toml(
            &format!(
                "seeds = ['http://a.test/']\n[storage]\ndatabase = {:?}\n",
                dir.path().join("crawl.db").display().to_string()
            ),
            "test",
        )
        .expect("config");
        let store = Store::open(&config.storage.database)
            .await
            .expect("open the store");
        let scope = SharedScope::new(Scope::new(&config, &[]));
        let network = Arc::new(NetworkPolicy::new(Vec::new()));
        let host_rules = Arc::new(HostRules::new(&config.fetch.host_headers));
        let stages = Stages::new(Queues::idle());
        let progress = Progress::new(stages.clone());
        let admin = Admin {
            store: store.clone(),
            progress: progress.clone(),
            scope: scope.clone(),
            network: Arc::clone(&network),
            host_rules: Arc::clone(&host_rules),
            stages,
            metrics: PrometheusBuilder::new().build_recorder().handle(),
            token: None,
            started: Instant::now(),
            node: "test".to_owned(),
            readmit: (1000, 0),
            new_hosts: readmit::NewHosts::default(),
            seen: Arc::new(Mutex::new(SeenUrls::new(1000))),
            busiest: admin::BusiestHosts::default(),
            stopping: CancellationToken::new(),
            pausing: tokio::sync::Mutex::default(),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let api = format!("http://{}", listener.local_addr().expect("its address"));
        let serving = axum::serve(listener, admin::router(Arc::new(admin)));
        tokio::spawn(async move { serving.await });
        let client = fetcher::client(&config, Arc::clone(&network), Arc::clone(&host_rules))
            .expect("a client");
        let robots = RobotsCache::new(
            (
                client,
                Arc::clone(&network),
                MinRate(config.fetch.min_bytes_per_sec),
                config.fetch.timeout,
            ),
            store.clone(),
            Arc::new(HostGate::default()),
            Politeness::new(&config.politeness),
            "test",
            (
                Duration::from_secs(60),
                Duration::from_secs(1),
                Duration::from_secs(60),
            ),
        );
        let reload = Reload {
            store: store.clone(),
            scope: scope.clone(),
            network,
            host_rules,
            robots: Arc::new(robots),
            progress,
            recrawl: RecrawlPolicy::new(&config.recrawl),
            readmit: (1000, 0),
            seen: Arc::new(Mutex::new(SeenUrls::new(1000))),
            node: config.cluster.node_id.clone(),
        };

        // The writing connection held, as a large batch of the writer's holds it.
        let writer = store.hold_the_writer().await;
        let reloading = tokio::spawn(async move { reload.apply(&config).await });
        // Time for the reload to come to its seeds, which wait for the database.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            tokio::time::timeout(Duration::ZERO, scope.changing())
                .await
                .is_ok(),
            "the reload holds the scope's lock while it waits to queue its seeds"
        );
        let adding = tokio::spawn(
            reqwest::Client::new()
                .post(format!("{api}/seeds"))
                .json(&["http://b.test/"])
                .send(),
        );
        // Time for the request to widen the scope and wait for the database in turn.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            !reloading.is_finished(),
            "the reload waits for the database"
        );
        drop(writer);
        let added = adding.await.expect("ran").expect("the API answers");
        assert_eq!(added.status(), 202);
        reloading.await.expect("ran").expect("the reload");
        let page = Url::parse("http://b.test/page").expect("a URL");
        assert!(
            scope.get().admits(&page, 1),
            "the API seed's host left the scope"
        );
    }
}
