//! A crawl resumed (or reloaded) with a wider scope takes what the old one left out.
//!
//! Scope is applied when a link is found, and a queued URL a narrower scope no longer
//! keeps is failed when leased; so raising `max_depth`, dropping an `exclude` or naming
//! another host would otherwise add nothing to a crawl already run: the links it
//! dropped are stored in `links`, but no longer on their way to being found again. The
//! scope each run starts with is remembered as a hash; a run whose scope differs looks
//! once at the URLs left out, in one pass over `links`, and queues those it takes as
//! the writer would have, with their pages' depth, within the hosts' and the URL
//! families' budgets. Likewise a run with a higher host budget takes what a lower one
//! cut.

use std::collections::BTreeSet;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use url::Url;

use crate::error::Error;
use crate::frontier::seen::SeenUrls;
use crate::page::{Discovered, JobKind};
use crate::scope::Scope;
use crate::store::{Cut, FoundLink, Store};
use crate::traps::FamilyBudget;

/// The `crawl_state` key of the scope's hash.
const FINGERPRINT: &str = "scope_fingerprint";

/// The `crawl_state` key of the last run's `traps.max_pages_per_host`.
const HOST_BUDGET: &str = "max_pages_per_host";

/// The `crawl_state` key of the `traps.max_hosts_per_domain` the last run queued again
/// what a lower one cut within.
const HOSTS_LIMIT: &str = "max_hosts_per_domain_requeued";

/// The `crawl_state` key of the last run's `politeness.respect_robots_txt` (1 or 0).
const ROBOTS_OBEYED: &str = "respect_robots_txt";

/// The `crawl_state` key of the hash of the last run's `network.allow`.
const NETWORK_ALLOW: &str = "network_allow_fingerprint";

/// The `crawl_state` key of the hash of the last run's limits on URLs' shape.
const SHAPE_LIMITS: &str = "trap_shape_fingerprint";

/// The `crawl_state` key of the boost rules' hash.
const BOOSTS: &str = "boost_fingerprint";

/// What a pass's change is from, as its log line says it: a reload's passes compare
/// with the config before it, not with a run that ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Against {
    /// A run starting: what the last run ran with.
    LastRun,
    /// A SIGHUP's reload: the config the service ran with until now.
    Reload,
}

impl std::fmt::Display for Against {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::LastRun => "the last run's",
            Self::Reload => "the config before this reload",
        })
    }
}

/// Holds what earlier runs queued to this run's `traps.max_pages_per_host`, when it
/// differs from the last run's: a higher one (or 0, no limit) queues again the URLs a
/// lower one cut (README's way to crawl a site larger than the budget is to raise it),
/// and a lower one cuts what the hosts have queued beyond it (one host took too much
/// of the last run). Unknown (a new database, or one from before the budget was
/// remembered) counts as another: the look at an empty database is free. Returns the
/// trap rows it stored, which are this run's pages as the writer's are.
pub async fn after_budget_change(store: &Store, max_pages_per_host: u64) -> Result<u64, Error> {
    let budget = i64::try_from(max_pages_per_host).unwrap_or(i64::MAX);
    if store.crawl_state(HOST_BUDGET).await? == Some(budget) {
        return Ok(0);
    }
    let requeued = store.requeue_within_budgets(max_pages_per_host).await?;
    let cut = store.trap_over_budgets(max_pages_per_host).await?;
    if requeued + cut > 0 {
        tracing::info!(
            requeued,
            cut,
            "traps.max_pages_per_host differs from the last run's: URLs it cut and it takes \
             are queued again, URLs queued beyond it are cut"
        );
    }
    store.set_crawl_state(HOST_BUDGET, budget).await?;
    Ok(cut)
}

/// Queues again, in a run that does not obey robots.txt when the last one did (or is not
/// known to have: a database from before this was remembered), the URLs earlier runs
/// stored as disallowed: turned off for a staging site closed by `Disallow: /`, or for
/// one's own site, the setting otherwise left them `robots` rows for good, the run
/// having nothing to do.
pub async fn after_robots_turned_off(
    store: &Store,
    respect_robots_txt: bool,
    max_pages_per_host: u64,
) -> Result<(), Error> {
    let obeyed = i64::from(respect_robots_txt);
    if store.crawl_state(ROBOTS_OBEYED).await? == Some(obeyed) {
        return Ok(());
    }
    if !respect_robots_txt {
        let requeued = store.requeue_disallowed(max_pages_per_host).await?;
        if requeued > 0 {
            tracing::info!(
                requeued,
                "politeness.respect_robots_txt is off: URLs robots.txt disallowed in earlier \
                 runs are queued again"
            );
        }
    }
    store.set_crawl_state(ROBOTS_OBEYED, obeyed).await
}

/// Queues again, in a run whose `network.allow` differs from the last run's (or is not
/// known: a database from before this was remembered), the URLs earlier runs stored as
/// refused by the address guard: their error says to add their range to
/// `network.allow`, and they otherwise stayed `address_refused` rows for good, the run
/// having nothing to do. Those the new ranges still leave out are refused again, with
/// no request made.
pub async fn after_network_change(store: &Store, allow: &[ipnet::IpNet]) -> Result<(), Error> {
    let fingerprint = crate::store::fingerprint(&allow);
    if store.crawl_state(NETWORK_ALLOW).await? == Some(fingerprint) {
        return Ok(());
    }
    let requeued = store.requeue_refused_addresses().await?;
    if requeued > 0 {
        tracing::info!(
            requeued,
            "network.allow differs from the last run's: URLs whose address was refused \
             are queued again"
        );
    }
    store.set_crawl_state(NETWORK_ALLOW, fingerprint).await
}

/// Queues again the URLs of the host names a lower `traps.max_hosts_per_domain` cut,
/// when this run's is higher than the last run's (or 0, no limit): as many names of
/// each domain as the new limit has room for, within their page budgets. A lower one
/// cuts no host admitted already: its pages are crawled, or being crawled, and no name
/// of a domain at the limit is admitted again. Unknown (a new database, or one from
/// before this pass) counts as a raise: the look at an empty database is free.
pub async fn after_hosts_limit_change(
    store: &Store,
    max_hosts_per_domain: u64,
    max_pages_per_host: u64,
) -> Result<(), Error> {
    let limit = i64::try_from(max_hosts_per_domain).unwrap_or(i64::MAX);
    let last = store.crawl_state(HOSTS_LIMIT).await?;
    let raised = match last {
        Some(last) => last != 0 && (limit == 0 || limit > last),
        None => true,
    };
    if raised {
        let requeued = store
            .requeue_within_domains(max_hosts_per_domain, max_pages_per_host)
            .await?;
        if requeued > 0 {
            tracing::info!(
                requeued,
                "traps.max_hosts_per_domain is above the last run's: URLs of host names it \
                 cut and this one takes are queued again"
            );
        }
    }
    if last != Some(limit) {
        store.set_crawl_state(HOSTS_LIMIT, limit).await?;
    }
    Ok(())
}

/// Queues again, in a run (or after a reload) whose limits on URLs' shape differ from
/// the last run's, the trap rows those cut that this run's take: README's way to crawl
/// such URLs is to raise the key a row names, and they otherwise stayed trap rows for
/// good, the run having nothing to do. Unknown (a new database, or one from before the
/// limits were remembered) counts as other limits: the URLs the limits still cut stay.
/// Returns the trap rows it stored (URLs past their hosts' budgets).
pub async fn after_shape_limits_change(
    store: &Store,
    scope: &Scope,
    max_pages_per_host: u64,
    against: Against,
) -> Result<u64, Error> {
    let fingerprint = scope.traps.shape_fingerprint();
    if store.crawl_state(SHAPE_LIMITS).await? == Some(fingerprint) {
        return Ok(0);
    }
    let (requeued, cut) = store
        .requeue_left_out(
            Cut::ByShape,
            |url, depth, kind| {
                scope.traps.check(url).is_ok() && scope.keeps_queued(url, depth, kind)
            },
            max_pages_per_host,
        )
        .await?;
    if requeued + cut > 0 {
        tracing::info!(
            requeued,
            cut,
            "the limits on URLs' shape in [traps] differ from {against}: URLs they cut that \
             the new limits take are queued again"
        );
    }
    store.set_crawl_state(SHAPE_LIMITS, fingerprint).await?;
    Ok(cut)
}

/// Sets the priorities of the URLs known already by `scope`'s boost rules, when they
/// differ from the last run's (or the last reload's): a rule added for `/learn/` would
/// otherwise raise only the `/learn/` URLs found from now on, while those queued before
/// waited their turn behind every shallower URL. Staged URLs are merged first, so that
/// they are set too. Unknown (a new database, or one from before the rules were
/// remembered) counts as other rules: the pass over an empty database is free. Returns
/// the trap rows the merge stored (URLs past their host's page budget).
pub async fn after_boost_change(
    store: &Store,
    scope: &Scope,
    max_pages_per_host: u64,
    against: Against,
) -> Result<u64, Error> {
    let fingerprint = scope.boost_fingerprint();
    if store.crawl_state(BOOSTS).await? == Some(fingerprint) {
        return Ok(0);
    }
    let trapped = store.merge_staged(max_pages_per_host).await?;
    let changed = store
        .reprioritize(|url, depth| scope.priority(url, depth))
        .await?;
    if changed > 0 {
        tracing::info!(
            changed,
            "[[frontier.boost]] differs from {against}: the URLs known are prioritized by it"
        );
    }
    store.set_crawl_state(BOOSTS, fingerprint).await?;
    Ok(trapped)
}

/// Queues what an earlier scope left out and `scope` takes, unless the database was
/// last crawled with this scope. Unknown (a new database, or one from before the scope
/// was remembered) counts as another scope: the pass over an empty database is free.
/// `frontier.seen_cache` and `traps.max_pages_per_host` are the running process's: a
/// reload changes neither (the hosts' budgets are those the writer spends). Returns,
/// when the scope was another, the trap rows the pass stored (URLs past their hosts'
/// budgets): pages of this run, as the writer's are.
pub async fn after_scope_change(
    store: &Store,
    scope: &Scope,
    (seen_cache, max_pages_per_host): (usize, u64),
    against: Against,
) -> Result<Option<u64>, Error> {
    let fingerprint = scope.fingerprint();
    if store.crawl_state(FINGERPRINT).await? == Some(fingerprint) {
        return Ok(None);
    }
    let started = Instant::now();
    let (requeued, cut) = store
        .requeue_left_out(
            Cut::LeftOut,
            |url, depth, kind| scope.keeps_queued(url, depth, kind),
            max_pages_per_host,
        )
        .await?;
    let mut seen = SeenUrls::new(seen_cache);
    let mut families = FamilyBudget::within(&scope.traps);
    let (read, added, trapped) = store
        .readmit_links(
            None,
            |link| admit(scope, (&mut seen, &mut families), &link),
            max_pages_per_host,
        )
        .await?;
    store.set_crawl_state(FINGERPRINT, fingerprint).await?;
    // Said when it found something, or took long enough for a user to wonder.
    if requeued + added > 0 || started.elapsed() >= Duration::from_secs(1) {
        tracing::info!(
            requeued,
            added,
            links_read = read,
            elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "the scope differs from {against}: URLs it left out that this one takes are queued"
        );
    }
    Ok(Some(cut + trapped))
}

/// Queues what stored links lead to on `hosts`, just taken into `scope` by seeds sent over
/// the admin API: links to a site found before it was a seed's were left out, and would
/// be queued only by the pass a restart or a reload makes over every link. Returns the
/// URLs added, and of those the trap rows (past their hosts' budgets).
pub async fn links_to_new_hosts(
    store: &Store,
    scope: &Scope,
    hosts: &[String],
    (seen_cache, max_pages_per_host): (usize, u64),
) -> Result<(u64, u64), Error> {
    let mut seen = SeenUrls::new(seen_cache);
    let mut families = FamilyBudget::within(&scope.traps);
    let (_, added, trapped) = store
        .readmit_links(
            Some(hosts),
            |link| admit(scope, (&mut seen, &mut families), &link),
            max_pages_per_host,
        )
        .await?;
    Ok((added, trapped))
}

/// Hosts that seeds sent over the admin API took into the scope, waiting for
/// [`links_to_new_hosts`]: one task takes all those waiting in one pass, then those that
/// came meanwhile. A pass per request, all at once, held a database reader each (SQLite
/// has two, which `/stats` needs too) and a seen-URL cache each, however many requests a
/// script sent. The set holds only hosts the scope holds already.
///
/// Only a window on the database: the seeds are stored before their request is
/// answered, and a start on a scope other than the last run's follows every link that
/// scope left out, so a host still waiting here at a crash is followed at the restart.
#[derive(Default)]
pub struct NewHosts {
    waiting: Mutex<BTreeSet<String>>,
    more: Notify,
}

impl NewHosts {
    pub fn add(&self, hosts: impl IntoIterator<Item = String>) {
        self.waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(hosts);
        self.more.notify_one();
    }

    /// Every host waiting, once there is one.
    pub async fn next(&self) -> Vec<String> {
        loop {
            let waiting =
                std::mem::take(&mut *self.waiting.lock().unwrap_or_else(PoisonError::into_inner));
            if !waiting.is_empty() {
                return waiting.into_iter().collect();
            }
            self.more.notified().await;
        }
    }
}

/// The frontier row for a stored link's target, when the scope follows the link now: as
/// the parser judges a link when it finds it.
fn admit(
    scope: &Scope,
    (seen, families): (&mut SeenUrls, &mut FamilyBudget),
    link: &FoundLink<'_>,
) -> Option<Discovered> {
    if scope.obeys(link.page_nofollow) || !scope.follows(link.rel) {
        return None;
    }
    let url = Url::parse(link.target).ok()?;
    let depth = link.depth.saturating_add(1);
    if !scope.admits(&url, depth) || !seen.admit(&url, depth) {
        return None;
    }
    let mut found = scope.candidate(&url, depth, 0, JobKind::Page);
    if found.trap.is_none() {
        found.trap = families.admit(&url, depth).err();
    }
    Some(found)
}
