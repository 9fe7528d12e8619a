//! Host leases: on a database several nodes share, which hosts this node crawls.
//!
//! A node sends requests only to hosts it owns (`hosts.owner`), and leases frontier rows
//! only of those. One owner at a time means the frontier's per-host delay and concurrency
//! — and the fetch gate behind it — hold for the cluster as they do for one process, and
//! robots.txt is fetched by the owner once and cached in `hosts` for the next.
//!
//! Why no host ever sees two nodes closer than its delay:
//!
//! - **Handing a host back** happens only once this node has nothing of it in flight, and
//!   leaves in `next_allowed_at` when the next request may go; the next owner waits for it.
//! - **A node that dies** stops renewing. Its host leases run out `lease_ttl` after its
//!   last renewal, and it sent requests only within two thirds of that ([`may_dispatch`]),
//!   so by the time another node can take the host, at least a third of `lease_ttl` has
//!   passed since the dead node's last request; the new owner then waits one full delay
//!   more before its first request, since it cannot know when that request was, or
//!   longer, until the end of a pause a 429, 502, 503 or 504 put on it that the dead node
//!   stored.
//! - **A node cut off from the database** (it cannot renew) stops dispatching once two
//!   thirds of its lease time have passed since its last renewal, and claims no host
//!   until a renewal goes through.
//!
//! Sharing: every node holds at most ⌈busy hosts / live nodes⌉ hosts. A node over that
//! share (another joined) hands the excess back; one under it (it just started, another
//! left or died) claims free hosts that have URLs due. A host with no URLs left is handed
//! back so that it does not count against the share. This runs once a second, and a
//! background task renews the leases every third of `lease_ttl`.
//!
//! [`may_dispatch`]: HostLeases::may_dispatch

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::Frontier;
use crate::error::Error;
use crate::politeness::{HostGate, Politeness};
use crate::store::cluster::Cluster;
use crate::store::Store;

/// How often the node looks at the share of hosts, at most.
const REBALANCE_EVERY: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct HostLeases {
    inner: Arc<Inner>,
}

struct Inner {
    cluster: Cluster,
    node: String,
    ttl: Duration,
    /// The longest a claimed host waits for the `next_allowed_at` it was left with: the
    /// longest the rules ask, or a lease time (a dead run's hosts wait out its lease). A
    /// later time was left by the server's clock before it stepped back.
    longest_wait: Duration,
    gate: Arc<HostGate>,
    politeness: Politeness,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    owned: HashSet<Arc<str>>,
    /// Owned hosts being handed back: no more of their rows are leased, and each goes
    /// once its requests in flight have finished.
    releasing: HashSet<Arc<str>>,
    /// Hosts whose lease was found taken by another node, for the dispatcher to drop.
    lost: Vec<Arc<str>>,
    /// Requests may start until then: two thirds of a lease time after the last renewal.
    valid_until: Option<Instant>,
    /// The task renewing the leases ([`HostLeases::keep_renewed`]), and what stops it.
    renewer: Option<(CancellationToken, JoinHandle<()>)>,
}

impl State {
    /// Whether requests may still start under the leases at `now`.
    fn fresh(&self, now: Instant) -> bool {
        self.valid_until.is_some_and(|until| now < until)
    }
}

/// What a rebalance changed.
#[derive(Debug, Default)]
pub struct Rebalanced {
    /// Rows taken out of the window and returned to the queue (hosts handed back).
    pub returned: usize,
    /// Hosts newly owned: their rows can be leased now.
    pub claimed: usize,
}

impl HostLeases {
    /// Joins the cluster as `node`: says it is alive, lets go of what a previous run
    /// under the same name held, and takes the first lease time.
    pub async fn join(
        cluster: Cluster,
        node: &str,
        ttl: Duration,
        gate: Arc<HostGate>,
        (politeness, longest_wait): (Politeness, Duration),
    ) -> Result<Self, Error> {
        cluster.disown_previous_run(node).await?;
        let leases = Self {
            inner: Arc::new(Inner {
                cluster,
                node: node.to_owned(),
                ttl,
                longest_wait: longest_wait.max(ttl),
                gate,
                politeness,
                state: Mutex::default(),
            }),
        };
        leases.renew().await?;
        Ok(leases)
    }

    /// How many other nodes crawl on this database now.
    pub async fn others_alive(&self) -> Result<i64, Error> {
        let i = &self.inner;
        i.cluster.others_alive(&i.node, i.ttl).await
    }

    /// How long the dispatcher may go without calling [`Self::rebalance`].
    pub fn rebalance_every(&self) -> Duration {
        REBALANCE_EVERY.min(self.inner.ttl / 3)
    }

    /// Whether this node's leases are fresh enough to start requests under them, and no
    /// host lost to another node still has URLs in the window: the renewal that finds a
    /// host lost (typically on waking from a stall) also makes the leases fresh again,
    /// and until [`Self::rebalance`] takes the host's URLs out, they would be fetched
    /// beside the host's new owner.
    pub fn may_dispatch(&self, now: Instant) -> bool {
        let state = self.state();
        state.lost.is_empty() && state.fresh(now)
    }

    /// Whether a request to `host` may go now: this node still owns it and its leases
    /// are fresh. Asked by a fetch worker just before its request, as jobs handed to the
    /// fetch pool before a stall (a GC pause, a stopped VM) outlast the checks of
    /// [`Self::may_dispatch`]: their host and URL may since have gone to another node,
    /// which fetches them.
    pub fn may_fetch(&self, host: &str, now: Instant) -> bool {
        let state = self.state();
        state.owned.contains(host) && state.fresh(now)
    }

    /// Renews the leases every third of the lease time, in a task of its own, until
    /// `done` or [`Self::leave`]; a failed renewal is logged and tried again at the next
    /// turn (dispatching stops if they keep failing).
    pub fn keep_renewed(&self, done: &CancellationToken) {
        let stop = done.child_token();
        let task = tokio::spawn(self.clone().renewing(stop.clone()));
        self.state().renewer = Some((stop, task));
    }

    /// The turns keep their pace: counted from the end of the last renewal, a slow one
    /// (a loaded server, a busy node) pushed the next later, and under load renewals
    /// came within a fraction of a second of the leases running out.
    async fn renewing(self, stop: CancellationToken) {
        let every = self.inner.ttl / 3;
        let mut turns = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        turns.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = turns.tick() => {}
                () = stop.cancelled() => return,
            }
            if let Err(e) = self.renew().await {
                tracing::warn!("cannot renew this node's leases: {e}");
            }
        }
    }

    async fn renew(&self) -> Result<(), Error> {
        let i = &self.inner;
        // Gone off since the start (a clock stepped, or drifting with no NTP): the
        // leases are the server's times and stay right, but the times this node still
        // writes for the others (when a page was fetched) are off by as much, so the user
        // is told.
        match i
            .cluster
            .check_clock(&i.node, i.cluster.clock(), i.ttl)
            .await
        {
            Err(e @ Error::ClockOff { .. }) => tracing::warn!("{e}"),
            checked => checked?,
        }
        // The leases are counted from the time written with them, not from before the
        // check: a check slow to answer (a busy pool, a cut connection waited out) would
        // have left them stale as soon as renewed, and the node dispatching nothing. The
        // server takes its time when the statement reaches it, after this.
        let sent = Instant::now();
        i.cluster.heartbeat(&i.node, i.ttl).await?;
        // Its own leases first, which run out, and the other nodes' lapsed ones after.
        // Hosts claimed while the renewal runs are not in its answer, yet not lost.
        let before: HashSet<Arc<str>> = self.state().owned.clone();
        let still: HashSet<String> = i.cluster.renew(&i.node, i.ttl).await?.into_iter().collect();
        {
            let mut state = self.state();
            let lost: Vec<Arc<str>> = state
                .owned
                .iter()
                .filter(|h| before.contains(*h) && !still.contains(&***h))
                .cloned()
                .collect();
            for host in lost {
                tracing::warn!(%host, "another node took this host: its lease ran out");
                state.owned.remove(&host);
                state.releasing.remove(&host);
                state.lost.push(host);
            }
            state.valid_until = Some(sent + i.ttl * 2 / 3);
        }
        let reclaimed = i.cluster.reclaim_expired(i.ttl).await?;
        if reclaimed > 0 {
            tracing::info!(
                reclaimed,
                "URLs leased by a node that went silent are queued again"
            );
        }
        Ok(())
    }

    /// Brings the hosts this node owns to its share: drops hosts lost to another node,
    /// hands back idle and excess hosts whose requests have finished, and claims free
    /// hosts while under the share and its own leases are fresh. Rows of hosts handed
    /// back go back to the queue (through `store`) before the hosts do. A `paused` node's
    /// share is none: its hosts would otherwise wait for its resume while the others
    /// could crawl them.
    pub async fn rebalance(
        &self,
        store: &Store,
        frontier: &mut Frontier,
        (now, paused): (Instant, bool),
    ) -> Result<Rebalanced, Error> {
        let i = &self.inner;
        let mut returned = Vec::new();
        for host in std::mem::take(&mut self.state().lost) {
            returned.extend(frontier.take_host(&host, now).into_iter().map(|j| j.id));
        }

        let share = i.cluster.share(i.ttl).await?;
        let quota = if paused {
            0
        } else {
            usize::try_from(
                share
                    .busy_hosts
                    .max(0)
                    .unsigned_abs()
                    .div_ceil(share.live_nodes.max(1).unsigned_abs()),
            )
            .unwrap_or(0)
        };
        let with_work: HashSet<String> = i
            .cluster
            .hosts_with_queued_urls(&i.node)
            .await?
            .into_iter()
            .collect();
        let (idle, mut active): (Vec<Arc<str>>, Vec<Arc<str>>) = {
            let state = self.state();
            state
                .owned
                .iter()
                .filter(|h| !state.releasing.contains(*h))
                .cloned()
                .partition(|h| !with_work.contains(&**h) && !frontier.is_busy(h))
        };
        active.sort();
        let excess = active.len().saturating_sub(quota);
        let mut leaving = idle;
        if excess > 0 && paused {
            tracing::info!(excess, "paused: handing this node's hosts to the others");
        } else if excess > 0 {
            tracing::info!(
                excess,
                quota,
                "handing hosts back: more nodes share the crawl"
            );
        }
        leaving.extend(active.drain(active.len() - excess..));
        for host in leaving {
            i.cluster.start_release(&i.node, &host).await?;
            self.state().releasing.insert(host);
        }

        let releasing: Vec<Arc<str>> = self.state().releasing.iter().cloned().collect();
        for host in &releasing {
            returned.extend(frontier.take_host(host, now).into_iter().map(|j| j.id));
        }
        store.release(&i.node, &returned).await?;
        for host in releasing.iter().filter(|h| !frontier.is_busy(h)) {
            let wait = [frontier.next_allowed(host), self.gate_next_turn(host)]
                .into_iter()
                .flatten()
                .max()
                .map_or(Duration::ZERO, |at| at.saturating_duration_since(now));
            // Forgotten first: a renewal meanwhile would take it for lost.
            {
                let mut state = self.state();
                state.owned.remove(host);
                state.releasing.remove(host);
            }
            i.cluster.release(&i.node, host, wait).await?;
        }

        // Not while this node's own leases are stale (its renewals failing): it could
        // not send a request to a host it took, which would wait a lease time for
        // nothing, and others could have crawled it.
        let mut claimed = 0;
        if active.len() < quota && self.state().fresh(now) {
            let want = i64::try_from(quota - active.len()).unwrap_or(0);
            let claims = i.cluster.claim(&i.node, want, i.ttl).await?;
            // The claim reads what is left of each host's wait as it runs, after the steps
            // above: counted from `now`, read before them, the wait (a `Retry-After` too)
            // ended early by as long as they took, on a busy server a second or more.
            let now = Instant::now();
            for host in claims {
                let name: Arc<str> = Arc::from(host.host.as_str());
                // Taken over, its last request's time died with its owner, but a 429's or
                // 503's pause, kept with the answer, did not.
                let left = host.wait.min(i.longest_wait);
                let wait = if host.taken_over {
                    let crawl_delay = host.crawl_delay_ms.and_then(|d| u64::try_from(d).ok());
                    i.politeness
                        .limits(&name, crawl_delay.map(Duration::from_millis))
                        .delay
                        .max(left)
                } else {
                    left
                };
                if !wait.is_zero() {
                    frontier.hold(&name, now + wait, now);
                    i.gate
                        .pause(&name, tokio::time::Instant::from_std(now + wait));
                }
                tracing::debug!(host = %name, taken_over = host.taken_over, "claimed a host");
                self.state().owned.insert(name);
                claimed += 1;
            }
        }
        Ok(Rebalanced {
            returned: returned.len(),
            claimed,
        })
    }

    /// Whether no URL is queued or leased anywhere in the cluster.
    pub async fn all_done(&self) -> Result<bool, Error> {
        self.inner.cluster.all_done().await
    }

    /// Hands every host back, each with when its next request may go, and leaves. Called
    /// when this node's requests have all finished.
    pub async fn leave(&self) -> Result<(), Error> {
        // A renewal running now would write this node's heartbeat again after it left:
        // the others would count it alive for a lease time, and refuse a restart under
        // its name as long.
        let renewer = self.state().renewer.take();
        if let Some((stop, task)) = renewer {
            stop.cancel();
            task.await
                .map_err(|e| Error::StageFailed(format!("the lease renewer panicked: {e}")))?;
        }
        let i = &self.inner;
        let now = Instant::now();
        let owned: Vec<Arc<str>> = self.state().owned.drain().collect();
        for host in owned {
            let wait = self
                .gate_next_turn(&host)
                .map_or(Duration::ZERO, |at| at.saturating_duration_since(now));
            i.cluster.release(&i.node, &host, wait).await?;
        }
        i.cluster.leave(&i.node).await
    }

    fn gate_next_turn(&self, host: &str) -> Option<Instant> {
        self.inner
            .gate
            .next_turn(host)
            .map(tokio::time::Instant::into_std)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
