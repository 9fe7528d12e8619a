//! Host leases and node heartbeats: how nodes share one PostgreSQL crawl.
//!
//! A node crawls only hosts it owns (`hosts.owner`), so the per-host delay and
//! concurrency that its frontier enforces hold for the whole cluster. Ownership is a
//! lease: the owner renews `owner_expires` while it lives, and a host whose lease ran
//! out is free for any node. A node hands a host back (when it has too many, or the host
//! has no work left) only once its requests there have finished, leaving in
//! `next_allowed_at` when the next request may go. The policy (how many hosts, which to
//! hand back) is in `src/frontier/hosts.rs`; this is its SQL.
//!
//! Leases, heartbeats, hosts' next turns and retries' and revisits' due times
//! (`frontier.not_before`, `frontier.recrawl_at`) are written and compared in the
//! database server's time ([`server_ms!`]), never a node's: one node's clock stepping
//! (NTP, a VM resumed) would otherwise have it write leases the others read as expired,
//! or take back theirs, and a node whose clock is behind the next owner's had it ask a
//! host before its delay or `Retry-After` was up, or retry a URL before its backoff was,
//! or revisit a page before its interval was. A node's own clock only measures how long
//! its leases and waits last (an `Instant`).

use std::time::{Duration, SystemTime};

use sqlx::{PgPool, Row};

use crate::error::{DbContext, Error};
use crate::store::outage::outlasting;
use crate::store::unix_ms;

/// The database server's time in unix ms, as of the statement's start: every lease,
/// heartbeat and expiry is this one clock's. The statement's start, not the moment a
/// row is written: stable, so it can be compared through an index, and never later than
/// the moment a node sent the statement counts its lease from.
macro_rules! server_ms {
    () => {
        "(extract(epoch FROM statement_timestamp()) * 1000)::bigint"
    };
}
pub(crate) use server_ms;

/// A host a node just took.
#[derive(Debug, Clone)]
pub struct ClaimedHost {
    pub host: String,
    /// How long from now it must not be sent a request, as its last owner left it.
    pub wait: Duration,
    /// The last owner's lease ran out instead of being handed back: it may have died
    /// mid-request, so its last request's time is unknown.
    pub taken_over: bool,
    /// The host's robots.txt `Crawl-delay`, as cached.
    pub crawl_delay_ms: Option<i64>,
}

/// How the work is shared now.
#[derive(Debug, Clone, Copy)]
pub struct Share {
    /// Nodes with a heartbeat within the lease time, and not paused.
    pub live_nodes: i64,
    /// Hosts with URLs queued, or owned by a live node.
    pub busy_hosts: i64,
}

/// The `crawl_state` key of a node's pause, before its id (`Store::node_key` of
/// `paused`): a paused node is not counted among those sharing the hosts, so the others
/// take its share.
pub const PAUSED_NODE: &str = "paused:";

/// The `crawl_state` key of a node's scope ([`crate::scope::Scope::keeps_fingerprint`]),
/// before its id: a node starting with another scope than a live node's is refused.
const NODE_SCOPE: &str = "scope:";

/// The `crawl_state` key of how a node spells the URLs it finds
/// (`traps.session_params`, `traps.sort_query`), before its id: a node starting with
/// another spelling than a live node's is refused.
const NODE_URL_SPELLING: &str = "url_spelling:";

/// The budgets that are the crawl's, kept in the database for every node: a node
/// starting with another than a live node's is refused ([`Cluster::check_budget`]).
#[derive(Debug, Clone, Copy)]
pub enum Budget {
    /// `traps.max_pages_per_host`
    PagesPerHost,
    /// `traps.max_hosts_per_domain`
    HostsPerDomain,
}

impl Budget {
    /// The `crawl_state` key of a node's value, before its id.
    const fn key(self) -> &'static str {
        match self {
            Self::PagesPerHost => "host_budget:",
            Self::HostsPerDomain => "hosts_per_domain:",
        }
    }

    pub fn setting(self) -> &'static str {
        match self {
            Self::PagesPerHost => "traps.max_pages_per_host",
            Self::HostsPerDomain => "traps.max_hosts_per_domain",
        }
    }

    /// What two values would do to the crawl.
    pub fn why(self) -> &'static str {
        match self {
            Self::PagesPerHost => {
                "a lower budget cuts what every host has queued beyond it for the whole \
                 crawl, a higher one queues what the others cut"
            }
            Self::HostsPerDomain => {
                "the limit is the crawl's, and a node starting would set its own for every \
                 node"
            }
        }
    }
}

/// The `crawl_state` keys of what each node records of its settings, before its id: they
/// go when it leaves.
const NODE_SETTINGS: [&str; 10] = [
    NODE_SCOPE,
    NODE_URL_SPELLING,
    Budget::PagesPerHost.key(),
    Budget::HostsPerDomain.key(),
    "fetch.user_agent:",
    "politeness.delay_ms:",
    "politeness.per_host_concurrency:",
    "politeness.respect_robots_txt:",
    "politeness.max_crawl_delay_ms:",
    "[[politeness.host]]:",
];

/// The settings nodes should share, though one with others crawls on (each node's hosts
/// get its own): a node's values, in [`NODE_SETTINGS`]' order after the scope, the URL
/// spelling and the budgets.
pub type Politeness = [i64; NODE_SETTINGS.len() - POLITENESS_FROM];

/// Where the politeness settings begin in [`NODE_SETTINGS`].
const POLITENESS_FROM: usize = 4;

#[derive(Clone)]
pub struct Cluster {
    pool: PgPool,
    /// The node's wall clock, its store's ([`super::Store::with_clock`]).
    clock: fn() -> SystemTime,
}

impl Cluster {
    pub(super) fn new(pool: PgPool, clock: fn() -> SystemTime) -> Self {
        Self { pool, clock }
    }

    /// The node's wall clock, which [`Cluster::check_clock`] holds against the server's.
    pub fn clock(&self) -> fn() -> SystemTime {
        self.clock
    }

    /// Takes the name `node` for this process: refused while a node of that name is
    /// alive (its heartbeat within `ttl`). Two processes under one name (a config copied
    /// with `cluster.node_id` set) would each take the other's leases for their own, and
    /// the second's start would queue again the first's URLs in flight.
    pub async fn claim_name(&self, node: &str, ttl: Duration) -> Result<(), Error> {
        outlasting!(brief async {
            let claimed: Option<String> = sqlx::query_scalar(concat!(
                "INSERT INTO nodes (id, started_at, heartbeat) VALUES ($1, ", server_ms!(), ", ", server_ms!(), ")
                 ON CONFLICT (id) DO UPDATE SET started_at = excluded.started_at, heartbeat = excluded.heartbeat
                 WHERE nodes.heartbeat < ", server_ms!(), " - $2
                 RETURNING id",
            ))
            .bind(node)
            .bind(ms(ttl))
            .fetch_optional(&self.pool)
            .await
            .doing("taking this node's id")?;
            if claimed.is_some() {
                return Ok(());
            }
            let seen: Option<i64> = sqlx::query_scalar(concat!(
                "SELECT ", server_ms!(), " - heartbeat FROM nodes WHERE id = $1"
            ))
            .bind(node)
            .fetch_optional(&self.pool)
            .await
            .doing("reading the heartbeat of the node with this id")?;
            Err(Error::NodeIdInUse {
                node: node.to_owned(),
                seen_ms: seen.unwrap_or(0),
            })
        })
    }

    /// Records `scope`, the hash of what `node` keeps of the queued URLs, and refuses it
    /// when a live node (its heartbeat within `ttl`) keeps others: every node
    /// fails as out of scope the URLs it leases and its own scope leaves out, whichever
    /// node found them, so two scopes would each cut the other's crawl, without a word.
    /// Called once `node`'s name is claimed: of two nodes starting at once with
    /// different scopes, each sees the other's. A refused node leaves, as its records go.
    pub async fn check_scope(&self, node: &str, scope: i64, ttl: Duration) -> Result<(), Error> {
        let refused = |node, other| Error::NodeScopeDiffers { node, other };
        self.refuse_differing(node, (NODE_SCOPE, scope), ttl, refused)
            .await
    }

    /// Records how `node` spells the URLs it finds (a fingerprint of
    /// `traps.session_params` and `traps.sort_query`), and refuses it when a live node
    /// spells them otherwise: the two would store one page under two URLs.
    pub async fn check_url_spelling(
        &self,
        node: &str,
        spelling: i64,
        ttl: Duration,
    ) -> Result<(), Error> {
        let refused = |node, other| Error::NodeUrlSpellingDiffers { node, other };
        self.refuse_differing(node, (NODE_URL_SPELLING, spelling), ttl, refused)
            .await
    }

    /// Records `value` as `node`'s setting under `key`, and when a live node has
    /// another, has `node` leave and says so by `refused(node, other)`.
    async fn refuse_differing(
        &self,
        node: &str,
        (key, value): (&str, i64),
        ttl: Duration,
        refused: impl FnOnce(String, String) -> Error,
    ) -> Result<(), Error> {
        let Some((other, _)) = self.differing(node, key, value, ttl).await? else {
            return Ok(());
        };
        self.leave(node).await?;
        Err(refused(node.to_owned(), other))
    }

    /// Records `value` as `node`'s `budget`, and refuses it when a live node (its
    /// heartbeat within `ttl`) has another: the budgets are the crawl's.
    pub async fn check_budget(
        &self,
        node: &str,
        (budget, value): (Budget, i64),
        ttl: Duration,
    ) -> Result<(), Error> {
        let Some((other, theirs)) = self.differing(node, budget.key(), value, ttl).await? else {
            return Ok(());
        };
        self.leave(node).await?;
        Err(Error::NodeBudgetDiffers {
            node: node.to_owned(),
            other,
            budget,
            ours: value,
            theirs,
        })
    }

    /// Records `node`'s politeness settings, and returns those a live node (its heartbeat
    /// within `ttl`) has others of, each with the first such node: the
    /// hosts each owns get its own delay, concurrency and robots.txt group.
    pub async fn differing_politeness(
        &self,
        node: &str,
        values: Politeness,
        ttl: Duration,
    ) -> Result<Vec<(&'static str, String)>, Error> {
        let mut differing = Vec::new();
        for (key, value) in NODE_SETTINGS[POLITENESS_FROM..].iter().zip(values) {
            if let Some((other, _)) = self.differing(node, key, value, ttl).await? {
                differing.push((key.trim_end_matches(':'), other));
            }
        }
        Ok(differing)
    }

    /// Records how `node` spells the URLs it finds now: a reload changes it.
    pub async fn record_url_spelling(&self, node: &str, spelling: i64) -> Result<(), Error> {
        self.record(node, NODE_URL_SPELLING, spelling).await
    }

    /// Records the scope `node` crawls with now: a reload changes it.
    pub async fn record_scope(&self, node: &str, scope: i64) -> Result<(), Error> {
        self.record(node, NODE_SCOPE, scope).await
    }

    /// Records `value` as `node`'s setting under `key` (one of [`NODE_SETTINGS`]), and
    /// returns a live node (its heartbeat within `ttl`) that has another,
    /// with its value. Recorded first, so of two nodes starting at once each sees the
    /// other's; the values of nodes long gone are forgotten.
    async fn differing(
        &self,
        node: &str,
        key: &str,
        value: i64,
        ttl: Duration,
    ) -> Result<Option<(String, i64)>, Error> {
        self.record(node, key, value).await?;
        outlasting!(brief async {
            sqlx::query(
                "DELETE FROM crawl_state c WHERE left(c.key, length($1)) = $1
                   AND NOT EXISTS (SELECT 1 FROM nodes n WHERE c.key = $1 || n.id)",
            )
            .bind(key)
            .execute(&self.pool)
            .await
            .doing("forgetting the settings of nodes long gone")?;
            let other = sqlx::query(concat!(
                "SELECT n.id, c.value FROM nodes n JOIN crawl_state c ON c.key = $1 || n.id
                 WHERE n.id <> $2 AND n.heartbeat >= ", server_ms!(), " - $3 AND c.value <> $4
                 ORDER BY n.id LIMIT 1",
            ))
            .bind(key)
            .bind(node)
            .bind(ms(ttl))
            .bind(value)
            .fetch_optional(&self.pool)
            .await
            .doing("comparing this node's settings with the live nodes'")?;
            Ok(other.map(|r| (r.get("id"), r.get("value"))))
        })
    }

    /// Records `value` as `node`'s setting under `key`.
    async fn record(&self, node: &str, key: &str, value: i64) -> Result<(), Error> {
        outlasting!(brief async {
            sqlx::query(
                "INSERT INTO crawl_state (key, value) VALUES ($1 || $2, $3)
                 ON CONFLICT (key) DO UPDATE SET value = $3",
            )
            .bind(key)
            .bind(node)
            .bind(value)
            .execute(&self.pool)
            .await
            .doing("recording this node's settings")?;
            Ok(())
        })
    }

    /// Refuses `node` when `clock`, its wall clock, is off from the database server's by
    /// more than a third of `ttl`, beyond the round trip. Leases, heartbeats, when a host
    /// may next be sent a request (`next_allowed_at`), when a retry is due (`not_before`)
    /// and when a revisit is (`recrawl_at`) are the server's times and hold whatever the
    /// node's clock, but when a page was fetched (`pages.fetched_at`) is the node's own,
    /// read by the others (a revisit a new `[recrawl]` schedules counts from it). The
    /// bound is a third of a lease time, the step the nodes' sharing is timed in (a
    /// renewal every third).
    pub async fn check_clock(
        &self,
        node: &str,
        clock: impl Fn() -> SystemTime,
        ttl: Duration,
    ) -> Result<(), Error> {
        let (before, server, after) = outlasting!(brief async {
            let before = unix_ms(clock());
            let server: i64 = sqlx::query_scalar(
                "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint",
            )
            .fetch_one(&self.pool)
            .await
            .doing("reading the database server's clock")?;
            Ok((before, server, unix_ms(clock())))
        })?;
        let ahead = before.saturating_sub(server).max(0);
        let behind = server.saturating_sub(after).max(0);
        let bound = ms(ttl) / 3;
        if ahead.max(behind) <= bound {
            return Ok(());
        }
        Err(Error::ClockOff {
            node: node.to_owned(),
            how: if ahead > 0 { "ahead of" } else { "behind" },
            by_ms: ahead.max(behind),
            bound_ms: bound,
        })
    }

    /// Says `node` is alive, and forgets nodes silent for ten lease times. A node
    /// forgotten itself (silent as long) is back as started now.
    pub async fn heartbeat(&self, node: &str, ttl: Duration) -> Result<(), Error> {
        outlasting!(brief async {
            sqlx::query(concat!(
                "INSERT INTO nodes (id, started_at, heartbeat) VALUES ($1, ", server_ms!(), ", ", server_ms!(), ")
                 ON CONFLICT (id) DO UPDATE SET heartbeat = excluded.heartbeat",
            ))
            .bind(node)
            .execute(&self.pool)
            .await
            .doing("recording this node's heartbeat")?;
            sqlx::query(concat!("DELETE FROM nodes WHERE heartbeat < ", server_ms!(), " - $1"))
                .bind(10 * ms(ttl))
                .execute(&self.pool)
                .await
                .doing("forgetting nodes long gone")?;
            Ok(())
        })
    }

    /// How many nodes but `node` have a heartbeat within `ttl`, paused ones included:
    /// the others crawling on this database.
    pub async fn others_alive(&self, node: &str, ttl: Duration) -> Result<i64, Error> {
        outlasting!(brief async {
            sqlx::query_scalar(concat!(
                "SELECT count(*) FROM nodes WHERE id <> $1 AND heartbeat >= ", server_ms!(), " - $2",
            ))
            .bind(node)
            .bind(ms(ttl))
            .fetch_one(&self.pool)
            .await
            .doing("counting the other live nodes")
        })
    }

    /// Extends `node`'s leases of frontier rows and hosts to `ttl` from now; returns the hosts
    /// it still owns (one whose lease ran out and went to another node is not among them).
    ///
    /// Rows locked by a transaction are skipped, not waited for: most are this node's
    /// own page batch finishing them, and waiting would deadlock with it. One locked by
    /// another node's batch (which found its URL again) is renewed at the next turn.
    pub async fn renew(&self, node: &str, ttl: Duration) -> Result<Vec<String>, Error> {
        outlasting!(brief async {
            sqlx::query(concat!(
                "UPDATE frontier SET lease_expires = ", server_ms!(), " + $2
                 WHERE id IN (SELECT id FROM frontier WHERE state = 'leased' AND lease_owner = $1
                              FOR UPDATE SKIP LOCKED)",
            ))
            .bind(node)
            .bind(ms(ttl))
            .execute(&self.pool)
            .await
            .doing("renewing leases of frontier rows")?;
            sqlx::query_scalar(concat!(
                "UPDATE hosts SET owner_expires = ", server_ms!(), " + $2 WHERE owner = $1 RETURNING host",
            ))
            .bind(node)
            .bind(ms(ttl))
            .fetch_all(&self.pool)
            .await
            .doing("renewing host leases")
        })
    }

    /// Puts rows whose lease ran out back in the queue, when their node has gone silent
    /// (died, stalled, or cut off from the database) for a lease time.
    ///
    /// A live node's rows stay its own even past their lease: a renewal skips rows that
    /// another node's transaction holds, and under load a few renewals in a row can. The
    /// node still has such a row in its window or in flight; queued again, it would be
    /// leased a second time, by the node itself while it owns the host.
    pub async fn reclaim_expired(&self, ttl: Duration) -> Result<u64, Error> {
        outlasting!(brief async {
            let done = sqlx::query(concat!(
                "UPDATE frontier SET state = 'queued', lease_owner = NULL, lease_expires = NULL
                 WHERE id IN (SELECT id FROM frontier f WHERE state = 'leased' AND lease_expires < ", server_ms!(), "
                                AND NOT EXISTS (SELECT 1 FROM nodes n
                                                WHERE n.id = f.lease_owner AND n.heartbeat >= ", server_ms!(), " - $1)
                              FOR UPDATE SKIP LOCKED)",
            ))
            .bind(ms(ttl))
            .execute(&self.pool)
            .await
            .doing("taking back expired leases")?;
            Ok(done.rows_affected())
        })
    }

    pub async fn share(&self, ttl: Duration) -> Result<Share, Error> {
        outlasting!(brief async {
            let row = sqlx::query(concat!(
                "SELECT (SELECT count(*) FROM nodes n WHERE heartbeat >= ", server_ms!(), " - $1
                       AND NOT EXISTS (SELECT 1 FROM crawl_state c
                                       WHERE c.key = $2 || n.id AND c.value = 1))
                        AS live_nodes,
                        (SELECT count(*) FROM hosts h
                         WHERE (h.owner IS NOT NULL AND h.owner_expires >= ", server_ms!(), ")
                            OR EXISTS (SELECT 1 FROM frontier f
                                       WHERE f.host = h.host AND f.state = 'queued')) AS busy_hosts",
            ))
            .bind(ms(ttl))
            .bind(PAUSED_NODE)
            .fetch_one(&self.pool)
            .await
            .doing("counting live nodes and busy hosts")?;
            Ok(Share {
                live_nodes: row.get("live_nodes"),
                busy_hosts: row.get("busy_hosts"),
            })
        })
    }

    /// Takes up to `n` hosts that have URLs due (by the server's clock, as a retry's due
    /// time is written) and no live owner, for `ttl`.
    pub async fn claim(
        &self,
        node: &str,
        n: i64,
        ttl: Duration,
    ) -> Result<Vec<ClaimedHost>, Error> {
        outlasting!(brief async {
            let rows = sqlx::query(concat!(
                "WITH free AS (
                     SELECT host, owner, next_allowed_at, crawl_delay_ms FROM hosts h
                     WHERE (owner IS NULL OR owner_expires < ", server_ms!(), ")
                       AND EXISTS (SELECT 1 FROM frontier f
                                   WHERE f.host = h.host AND f.state = 'queued'
                                     AND f.not_before <= ", server_ms!(), ")
                     LIMIT $2
                     FOR UPDATE SKIP LOCKED)
                 UPDATE hosts h SET owner = $1, owner_expires = ", server_ms!(), " + $3, releasing = 0
                 FROM free WHERE h.host = free.host
                 RETURNING h.host, free.crawl_delay_ms, free.owner IS NOT NULL AS taken_over,
                           greatest(free.next_allowed_at - ", server_ms!(), ", 0) AS wait_ms",
            ))
            .bind(node)
            .bind(n)
            .bind(ms(ttl))
            .fetch_all(&self.pool)
            .await
            .doing("claiming hosts")?;
            Ok(rows
                .into_iter()
                .map(|r| ClaimedHost {
                    host: r.get("host"),
                    wait: Duration::from_millis(
                        r.get::<Option<i64>, _>("wait_ms")
                            .map_or(0, i64::unsigned_abs),
                    ),
                    taken_over: r.get("taken_over"),
                    crawl_delay_ms: r.get("crawl_delay_ms"),
                })
                .collect())
        })
    }

    /// Of the hosts `node` owns, those with URLs queued in the table.
    pub async fn hosts_with_queued_urls(&self, node: &str) -> Result<Vec<String>, Error> {
        outlasting!(brief async {
            sqlx::query_scalar(
                "SELECT host FROM hosts h WHERE owner = $1
                   AND EXISTS (SELECT 1 FROM frontier f WHERE f.host = h.host AND f.state = 'queued')",
            )
            .bind(node)
            .fetch_all(&self.pool)
            .await
            .doing("finding which owned hosts have work")
        })
    }

    /// Marks a host as being handed back: `node` leases no more of its rows.
    pub async fn start_release(&self, node: &str, host: &str) -> Result<(), Error> {
        outlasting!(brief async {
            sqlx::query("UPDATE hosts SET releasing = 1 WHERE host = $2 AND owner = $1")
                .bind(node)
                .bind(host)
                .execute(&self.pool)
                .await
                .doing("handing a host back")?;
            Ok(())
        })
    }

    /// Hands a host back, its next request to go `wait` from now: counted on the server's
    /// clock, which the next owner reads it by, not on this node's, which may be off.
    pub async fn release(&self, node: &str, host: &str, wait: Duration) -> Result<(), Error> {
        outlasting!(brief async {
            sqlx::query(concat!(
                "UPDATE hosts SET owner = NULL, owner_expires = NULL, releasing = 0,
                     next_allowed_at = ", server_ms!(), " + $3
                 WHERE host = $2 AND owner = $1",
            ))
            .bind(node)
            .bind(host)
            .bind(ms(wait))
            .execute(&self.pool)
            .await
            .doing("handing a host back")?;
            Ok(())
        })
    }

    /// Hosts still owned under `node`'s name when it starts are a previous run's: they are
    /// let go, and the next owner waits until that run's lease would have run out.
    pub async fn disown_previous_run(&self, node: &str) -> Result<(), Error> {
        outlasting!(brief async {
            sqlx::query(
                "UPDATE hosts SET owner = NULL, releasing = 0, owner_expires = NULL,
                     next_allowed_at = greatest(next_allowed_at, owner_expires)
                 WHERE owner = $1",
            )
            .bind(node)
            .execute(&self.pool)
            .await
            .doing("letting go of a previous run's hosts")?;
            Ok(())
        })
    }

    /// Whether no URL is queued or leased anywhere: the crawl is over for every node.
    pub async fn all_done(&self) -> Result<bool, Error> {
        outlasting!(brief async {
            sqlx::query_scalar(
                "SELECT NOT EXISTS (SELECT 1 FROM frontier WHERE state IN ('queued', 'leased'))",
            )
            .fetch_one(&self.pool)
            .await
            .doing("checking whether the crawl is over")
        })
    }

    /// `node` stops: its heartbeat row goes, so the others share its hosts at once, and
    /// its settings with it.
    pub async fn leave(&self, node: &str) -> Result<(), Error> {
        outlasting!(brief async {
            sqlx::query("DELETE FROM nodes WHERE id = $1")
                .bind(node)
                .execute(&self.pool)
                .await
                .doing("leaving the cluster")?;
            let keys: Vec<String> = NODE_SETTINGS.iter().map(|k| format!("{k}{node}")).collect();
            sqlx::query("DELETE FROM crawl_state WHERE key = ANY($1)")
                .bind(&keys)
                .execute(&self.pool)
                .await
                .doing("leaving the cluster")?;
            Ok(())
        })
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}
