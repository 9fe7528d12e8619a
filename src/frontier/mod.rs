//! The frontier window: leased URLs waiting per host, handed out by priority as hosts
//! become ready (Mercator's idea).
//!
//! A host is ready when its delay since the last request has passed and it has fewer
//! requests in flight than its limit. Among ready hosts the best head URL goes first —
//! highest priority, then lowest frontier id (discovery order), so ties break the same way
//! every run. A host that must wait sits in a timer heap and never blocks the others.
//! Within a host, revisits and new URLs take turns (see `HostQueue::revisits_turn`).
//!
//! This type is pure: time comes in as an argument, so tests drive it without sleeping.
//! [`dispatcher`] owns one and connects it to the store and the fetchers.

pub mod dispatcher;
pub mod hosts;
pub mod readmit;
pub mod seen;

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::page::CrawlJob;
use crate::politeness::{HostLimits, Politeness};

/// What a finished request taught about its host.
#[derive(Debug, Clone, Copy, Default)]
pub struct Release {
    /// The host's robots.txt `Crawl-delay` (zero if it has none) when the request read
    /// robots.txt: one it dropped, fetched again, stops spacing the host.
    pub crawl_delay: Option<Duration>,
    /// Send nothing to the host before this: its next turn at the fetch gate (its delay
    /// or Crawl-delay from the last request, a `Retry-After`).
    pub pause_until: Option<Instant>,
    /// Handed back unrequested because a request sent to the host before has had no
    /// answer, which its delay counts from: the host waits for a request of its in flight
    /// to end (and bring its next turn), `pause_until` only when none is.
    pub after_answer: bool,
    /// Handed back unrequested because this address was at `per_ip_concurrency`: the host
    /// waits for a request there to end, or till the instant at the latest (one the
    /// frontier does not hear of ends there: a robots.txt); its next turn is then
    /// `pause_until`, as the host's gate has it.
    pub address_busy: Option<(IpAddr, Instant)>,
    /// The request went to this address, where it no longer counts.
    pub address_freed: Option<IpAddr>,
    /// No request went to the host: the job was refused before one (robots.txt
    /// unavailable or disallowing it, its address refused), or handed back to wait for
    /// robots.txt's turn. The turn its hand-out booked is not spent: the host's next job
    /// may go at `pause_until`, at once without one. Spent, a dead host's URLs each took
    /// a whole delay to fail, holding a broad crawl's end for hours.
    pub unrequested: bool,
}

/// What [`Frontier::pop`] found.
#[derive(Debug)]
pub enum Pop {
    Job(CrawlJob),
    /// Nothing is ready now; a host becomes ready at this instant.
    WaitUntil(Instant),
    /// Nothing is ready, and only a finished request or new URLs can change that.
    Idle,
}

/// A job ordered for a max-heap: a revisit that fell due earlier first, then higher
/// priority, then lower id. New URLs have no due time, so priority orders them; revisits
/// due faster than their host may be asked fall behind evenly rather than the pages of
/// highest priority, due again as soon as they were fetched, taking every turn.
struct Queued(CrawlJob);

impl Queued {
    fn key(&self) -> (Reverse<Option<i64>>, i64, Reverse<i64>) {
        let due = self.0.previous.as_ref().and_then(|p| p.due_at);
        (Reverse(due), self.0.priority, Reverse(self.0.id))
    }

    /// How the host this job heads ranks among the ready ones: by priority, then id.
    fn rank(&self) -> (i64, Reverse<i64>) {
        (self.0.priority, Reverse(self.0.id))
    }
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Queued {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

struct HostQueue {
    /// URLs to fetch for the first time (or asked again).
    urls: BinaryHeap<Queued>,
    /// Revisits of stored pages, which take turns with `urls`.
    revisits: BinaryHeap<Queued>,
    /// The host's last turn went to a revisit.
    revisited_last: bool,
    limits: HostLimits,
    in_flight: u32,
    next_allowed: Option<Instant>,
    /// A job came back waiting for the answer to a request in flight: none goes until a
    /// request ends.
    awaits_end: bool,
    /// A job came back because its address was busy: none goes before this, unless a
    /// request to that address ends first.
    awaits_address: Option<Instant>,
    /// The token of this host's one live heap entry; older entries are stale and skipped.
    token: u64,
}

impl HostQueue {
    /// Whether the host's next turn goes to a revisit: revisits go ahead of new URLs,
    /// but never take two turns in a row while new URLs wait, so neither kind can take
    /// every turn from the other.
    fn revisits_turn(&self) -> bool {
        !self.revisits.is_empty() && (self.urls.is_empty() || !self.revisited_last)
    }

    /// The URL whose turn is next.
    fn head(&self) -> Option<&Queued> {
        if self.revisits_turn() {
            self.revisits.peek()
        } else {
            self.urls.peek()
        }
    }

    fn pop(&mut self) -> Option<CrawlJob> {
        let revisit = self.revisits_turn();
        let Queued(job) = if revisit {
            self.revisits.pop()
        } else {
            self.urls.pop()
        }?;
        self.revisited_last = revisit;
        Some(job)
    }

    fn is_empty(&self) -> bool {
        self.urls.is_empty() && self.revisits.is_empty()
    }

    fn drain(&mut self) -> impl Iterator<Item = CrawlJob> + '_ {
        self.urls
            .drain()
            .chain(self.revisits.drain())
            .map(|Queued(job)| job)
    }
}

pub struct Frontier {
    politeness: Politeness,
    hosts: HashMap<Arc<str>, HostQueue>,
    /// Hosts ready now, keyed by their best URL.
    ready: BinaryHeap<(i64, Reverse<i64>, u64, Arc<str>)>,
    /// Hosts waiting for their delay to pass, earliest first.
    timers: BinaryHeap<Reverse<(Instant, u64, Arc<str>)>>,
    ids: HashSet<i64>,
    /// How many of the URLs waiting are revisits, which a service leases apart.
    revisits: usize,
    /// The hosts waiting for a request to each address to end.
    address_waiters: HashMap<IpAddr, HashSet<Arc<str>>>,
    next_token: u64,
}

impl Frontier {
    pub fn new(politeness: Politeness) -> Self {
        Self {
            politeness,
            hosts: HashMap::new(),
            ready: BinaryHeap::new(),
            timers: BinaryHeap::new(),
            ids: HashSet::new(),
            revisits: 0,
            address_waiters: HashMap::new(),
            next_token: 0,
        }
    }

    /// URLs waiting in the window (not those handed out).
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Revisits waiting in the window.
    pub fn revisits(&self) -> usize {
        self.revisits
    }

    /// Adds a job; returns whether it was new to the window.
    pub fn push(&mut self, job: CrawlJob, now: Instant) -> bool {
        if !self.ids.insert(job.id) {
            return false;
        }
        self.revisits += usize::from(job.is_revisit());
        let host = job.host.clone();
        let queue = self.queue(&host);
        let head = queue.head().map(Queued::key);
        if job.is_revisit() {
            queue.revisits.push(Queued(job));
        } else {
            queue.urls.push(Queued(job));
        }
        if queue.head().map(Queued::key) != head {
            self.schedule(&host, now);
        }
        true
    }

    /// Hands out the best job among ready hosts, counting it in flight for its host.
    pub fn pop(&mut self, now: Instant) -> Pop {
        while let Some(Reverse((at, token, host))) = self.timers.peek().cloned() {
            if at > now {
                break;
            }
            self.timers.pop();
            if self.is_live(&host, token) {
                self.schedule(&host, now);
            }
        }
        while let Some((_, _, token, host)) = self.ready.pop() {
            if !self.is_live(&host, token) {
                continue;
            }
            let Some(queue) = self.hosts.get_mut(&host) else {
                continue;
            };
            let Some(job) = queue.pop() else {
                continue;
            };
            queue.in_flight += 1;
            queue.awaits_end = false;
            queue.awaits_address = None;
            queue.next_allowed = Some(now + queue.limits.delay);
            self.ids.remove(&job.id);
            self.revisits -= usize::from(job.is_revisit());
            self.schedule(&host, now);
            return Pop::Job(job);
        }
        // With no URL in the window, the timers left are idle hosts' pauses, kept only to
        // space URLs that may come: nothing becomes ready when they run out.
        if self.ids.is_empty() {
            return Pop::Idle;
        }
        loop {
            match self.timers.peek() {
                Some(Reverse((_, token, host))) if !self.is_live(host, *token) => {
                    self.timers.pop();
                }
                Some(Reverse((at, _, _))) => return Pop::WaitUntil(*at),
                None => return Pop::Idle,
            }
        }
    }

    /// A request to `host` finished: it may take another, within what the request taught.
    pub fn release(&mut self, host: &Arc<str>, release: Release, now: Instant) {
        self.learn(host, release, now, 1);
    }

    /// A request to `host` still under way learned its limits (its robots.txt's
    /// Crawl-delay) and when it will go: the host's next job waits for them here, not
    /// asleep on a fetch worker at the host's gate.
    pub fn learned(&mut self, host: &Arc<str>, learned: Release, now: Instant) {
        self.learn(host, learned, now, 0);
    }

    fn learn(&mut self, host: &Arc<str>, release: Release, now: Instant, ended: u32) {
        if let Some(address) = release.address_freed {
            self.address_freed(address, now);
        }
        let Some(queue) = self.hosts.get_mut(host) else {
            return;
        };
        queue.in_flight = queue.in_flight.saturating_sub(ended);
        if release.crawl_delay.is_some() {
            queue.limits = self.politeness.limits(host, release.crawl_delay);
        }
        // A pause guessed for an answer still to come would outlast it (a fast host at a
        // short delay asked every quarter second): the request's end says when it came.
        if release.after_answer && queue.in_flight > 0 {
            queue.awaits_end = true;
        } else {
            queue.awaits_end &= ended == 0;
            if let Some(until) = release.pause_until {
                queue.next_allowed = Some(queue.next_allowed.map_or(until, |t| t.max(until)));
            }
        }
        if release.unrequested || release.address_busy.is_some() {
            // Not requested, the job leaves its host's next turn where the release puts it,
            // not a delay after it went out: a busy address's, from the host's gate; a
            // refusal's, none (the next job may go, and the gate spaces a request it
            // sends) or robots.txt's turn, for a job waiting to fetch it.
            queue.next_allowed = release.pause_until;
        }
        if let Some((address, until)) = release.address_busy {
            queue.awaits_address = Some(until);
            self.address_waiters
                .entry(address)
                .or_default()
                .insert(Arc::clone(host));
        }
        self.schedule(host, now);
    }

    /// A request to `address` ended: the hosts waiting for a place there may go, within
    /// their own limits, rather than at a guessed time.
    fn address_freed(&mut self, address: IpAddr, now: Instant) {
        let Some(waiting) = self.address_waiters.remove(&address) else {
            return;
        };
        for host in waiting {
            if let Some(queue) = self.hosts.get_mut(&host) {
                if queue.awaits_address.take().is_some() {
                    self.schedule(&host, now);
                }
            }
        }
    }

    /// Takes `host`'s waiting jobs out of the window (the host is being handed to another
    /// node). Its requests in flight still count until released.
    pub fn take_host(&mut self, host: &Arc<str>, now: Instant) -> Vec<CrawlJob> {
        let Some(queue) = self.hosts.get_mut(host) else {
            return Vec::new();
        };
        let jobs: Vec<CrawlJob> = queue.drain().collect();
        for job in &jobs {
            self.ids.remove(&job.id);
            self.revisits -= usize::from(job.is_revisit());
        }
        self.schedule(host, now);
        jobs
    }

    /// Takes out of the window the jobs `keep` refuses (a reload narrowed the scope since
    /// they were leased). Their hosts keep their turns, limits and requests in flight.
    pub fn take_unless(&mut self, keep: impl Fn(&CrawlJob) -> bool, now: Instant) -> Vec<CrawlJob> {
        let mut taken = Vec::new();
        self.rework_heaps(now, |heap| {
            let (kept, refused): (Vec<Queued>, Vec<Queued>) =
                heap.drain().partition(|queued| keep(&queued.0));
            *heap = BinaryHeap::from(kept);
            taken.extend(refused.into_iter().map(|Queued(job)| job));
        });
        for job in &taken {
            self.ids.remove(&job.id);
            self.revisits -= usize::from(job.is_revisit());
        }
        taken
    }

    /// Sets each waiting job's priority by `priority` (a reload changed the boost rules,
    /// which set the database's rows afresh): the window would otherwise hand out its URLs
    /// in the old rules' order until it ran low.
    pub fn reprioritize(&mut self, priority: impl Fn(&CrawlJob) -> i64, now: Instant) {
        self.rework_heaps(now, |heap| {
            let mut jobs = std::mem::take(heap).into_vec();
            for Queued(job) in &mut jobs {
                job.priority = priority(job);
            }
            *heap = BinaryHeap::from(jobs);
        });
    }

    /// Applies `rework` to each host's two heaps, then schedules anew the hosts whose next
    /// URL it changed (an emptied host is forgotten there, or waits out its delay).
    fn rework_heaps(&mut self, now: Instant, mut rework: impl FnMut(&mut BinaryHeap<Queued>)) {
        let mut changed = Vec::new();
        for (host, queue) in &mut self.hosts {
            let head = queue.head().map(Queued::key);
            rework(&mut queue.urls);
            rework(&mut queue.revisits);
            if queue.head().map(Queued::key) != head {
                changed.push(Arc::clone(host));
            }
        }
        for host in changed {
            self.schedule(&host, now);
        }
    }

    /// Takes out of the window the `n` new URLs (not revisits) that would go last.
    pub fn take_last_new(&mut self, n: usize, now: Instant) -> Vec<CrawlJob> {
        let mut keys: Vec<(i64, Reverse<i64>)> = self
            .hosts
            .values()
            .flat_map(|queue| queue.urls.iter().map(Queued::rank))
            .collect();
        keys.sort_unstable();
        let Some(&last) = keys.iter().take(n).next_back() else {
            return Vec::new();
        };
        self.take_unless(
            |job| job.is_revisit() || (job.priority, Reverse(job.id)) > last,
            now,
        )
    }

    /// Whether `host` has jobs waiting or requests in flight.
    pub fn is_busy(&self, host: &str) -> bool {
        self.hosts
            .get(host)
            .is_some_and(|q| q.in_flight > 0 || !q.is_empty())
    }

    /// When `host` may next be sent a request, if it must wait.
    pub fn next_allowed(&self, host: &str) -> Option<Instant> {
        self.hosts.get(host).and_then(|q| q.next_allowed)
    }

    /// Sends `host` nothing before `until`: its previous owner's delay still runs.
    pub fn hold(&mut self, host: &Arc<str>, until: Instant, now: Instant) {
        let queue = self.queue(host);
        queue.next_allowed = Some(queue.next_allowed.map_or(until, |t| t.max(until)));
        self.schedule(host, now);
    }

    /// Empties the window, returning the jobs that were never handed out.
    pub fn drain(&mut self) -> Vec<CrawlJob> {
        self.ready.clear();
        self.timers.clear();
        self.ids.clear();
        self.revisits = 0;
        self.address_waiters.clear();
        let mut jobs = Vec::new();
        for queue in self.hosts.values_mut() {
            jobs.extend(queue.drain());
        }
        self.hosts.retain(|_, q| q.in_flight > 0);
        jobs
    }

    /// `host`'s queue, made with its limits if it has none.
    fn queue(&mut self, host: &Arc<str>) -> &mut HostQueue {
        let politeness = &self.politeness;
        self.hosts.entry(host.clone()).or_insert_with(|| HostQueue {
            urls: BinaryHeap::new(),
            revisits: BinaryHeap::new(),
            revisited_last: false,
            limits: politeness.limits(host, None),
            in_flight: 0,
            next_allowed: None,
            awaits_end: false,
            awaits_address: None,
            token: 0,
        })
    }

    fn is_live(&self, host: &str, token: u64) -> bool {
        self.hosts.get(host).is_some_and(|q| q.token == token)
    }

    /// Gives `host` one fresh heap entry reflecting its state now. A host with nothing
    /// queued or in flight is forgotten once its delay has passed, so the map holds only
    /// hosts that matter for politeness.
    fn schedule(&mut self, host: &Arc<str>, now: Instant) {
        self.next_token += 1;
        let token = self.next_token;
        let Some(queue) = self.hosts.get_mut(host) else {
            return;
        };
        queue.token = token;
        let next_allowed = queue.next_allowed.max(queue.awaits_address);
        let Some(head) = queue.head() else {
            if queue.in_flight == 0 {
                match next_allowed {
                    Some(at) if at > now => self.timers.push(Reverse((at, token, host.clone()))),
                    _ => {
                        self.hosts.remove(host);
                    }
                }
            }
            return;
        };
        if queue.in_flight >= queue.limits.concurrency || (queue.awaits_end && queue.in_flight > 0)
        {
            return;
        }
        match next_allowed {
            Some(at) if at > now => self.timers.push(Reverse((at, token, host.clone()))),
            _ => {
                let (priority, id) = head.rank();
                self.ready.push((priority, id, token, host.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use url::Url;

    fn job(id: i64, host: &str, priority: i64) -> CrawlJob {
        CrawlJob {
            id,
            url: Url::parse(&format!("http://{host}/{id}")).unwrap(),
            host: Arc::from(host),
            depth: 0,
            priority,
            redirect_hops: 0,
            attempts: 0,
            kind: crate::page::JobKind::Page,
            previous: None,
        }
    }

    fn frontier(per_host: u32, delay_ms: u64) -> Frontier {
        let config = crate::Config::from_toml(
            &format!(
                "seeds = ['http://h/']\n[politeness]\nper_host_concurrency = {per_host}\ndelay_ms = {delay_ms}\n"
            ),
            "t",
        )
        .unwrap();
        Frontier::new(Politeness::new(&config.politeness))
    }

    fn popped_id(p: Pop) -> i64 {
        match p {
            Pop::Job(j) => j.id,
            other => panic!("expected a job, got {other:?}"),
        }
    }

    #[test]
    fn push_reports_whether_the_url_was_new() {
        let mut f = frontier(1, 0);
        let now = Instant::now();
        assert!(f.push(job(1, "a", 0), now));
        assert!(!f.push(job(1, "a", 0), now));
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn highest_priority_goes_first_and_ties_break_by_id() {
        let mut f = frontier(10, 0);
        let now = Instant::now();
        for (id, host, prio) in [(5, "a", -1), (3, "b", -1), (9, "c", 2), (1, "a", -2)] {
            f.push(job(id, host, prio), now);
        }
        let order: Vec<i64> = (0..4).map(|_| popped_id(f.pop(now))).collect();
        assert_eq!(order, vec![9, 3, 5, 1]);
        assert!(matches!(f.pop(now), Pop::Idle));
    }

    #[test]
    fn a_host_waits_its_delay_while_others_go_ahead() {
        let mut f = frontier(5, 500);
        let t0 = Instant::now();
        f.push(job(1, "slow", 10), t0);
        f.push(job(2, "slow", 9), t0);
        f.push(job(3, "fast", 0), t0);
        assert_eq!(popped_id(f.pop(t0)), 1);
        // "slow" has a better URL left but must wait; "fast" is not blocked behind it.
        assert_eq!(popped_id(f.pop(t0)), 3);
        match f.pop(t0) {
            Pop::WaitUntil(at) => assert_eq!(at, t0 + Duration::from_millis(500)),
            other => panic!("expected a wait, got {other:?}"),
        }
        assert_eq!(popped_id(f.pop(t0 + Duration::from_millis(500))), 2);
    }

    /// URLs a reload's scope leaves out leave the window; their host still waits its
    /// delay from its last request before the next URL it keeps.
    #[test]
    fn urls_taken_out_leave_their_hosts_turns_as_they_were() {
        let mut f = frontier(5, 500);
        let t0 = Instant::now();
        for (id, prio) in [(1, 3), (2, 2), (3, 1)] {
            f.push(job(id, "h", prio), t0);
        }
        assert_eq!(popped_id(f.pop(t0)), 1);
        let taken: Vec<i64> = f
            .take_unless(|job| job.id != 2, t0)
            .iter()
            .map(|job| job.id)
            .collect();
        assert_eq!(taken, vec![2]);
        assert_eq!(f.len(), 1);
        match f.pop(t0) {
            Pop::WaitUntil(at) => assert_eq!(at, t0 + Duration::from_millis(500)),
            other => panic!("expected a wait, got {other:?}"),
        }
        assert_eq!(popped_id(f.pop(t0 + Duration::from_millis(500))), 3);
        assert!(matches!(f.pop(t0 + Duration::from_secs(1)), Pop::Idle));
    }

    #[test]
    fn urls_prioritized_again_go_in_the_new_order_across_hosts() {
        let mut f = frontier(5, 0);
        let now = Instant::now();
        for (id, host, prio) in [(1, "a", 5), (2, "a", 4), (3, "b", 3), (4, "b", 2)] {
            f.push(job(id, host, prio), now);
        }
        f.reprioritize(|job| job.id, now);
        let order: Vec<i64> = (0..4).map(|_| popped_id(f.pop(now))).collect();
        assert_eq!(order, vec![4, 3, 2, 1]);
    }

    #[test]
    fn the_new_urls_taken_back_are_those_that_would_go_last() {
        let mut f = frontier(5, 0);
        let now = Instant::now();
        for (id, host, prio) in [(1, "a", 0), (2, "a", 5), (3, "b", 1), (4, "b", 0)] {
            f.push(job(id, host, prio), now);
        }
        let mut revisit = job(5, "a", -9);
        revisit.previous = Some(Box::new(crate::page::Previous {
            interval: Some(Duration::from_secs(60)),
            ..crate::page::Previous::default()
        }));
        f.push(revisit, now);
        let mut taken: Vec<i64> = f.take_last_new(2, now).iter().map(|j| j.id).collect();
        taken.sort_unstable();
        assert_eq!(taken, vec![1, 4]);
        assert_eq!(f.len(), 3);
        assert_eq!(f.take_last_new(9, now).len(), 2, "revisits stay");
        assert_eq!(f.revisits(), 1);
    }

    #[test]
    fn a_host_never_has_more_in_flight_than_its_limit() {
        let mut f = frontier(2, 0);
        let now = Instant::now();
        for id in 1..=4 {
            f.push(job(id, "h", 0), now);
        }
        assert_eq!(popped_id(f.pop(now)), 1);
        assert_eq!(popped_id(f.pop(now)), 2);
        assert!(matches!(f.pop(now), Pop::Idle));
        f.release(&Arc::from("h"), Release::default(), now);
        assert_eq!(popped_id(f.pop(now)), 3);
        assert!(matches!(f.pop(now), Pop::Idle));
    }

    #[test]
    fn retry_after_pauses_a_host_and_crawl_delay_spaces_it() {
        let mut f = frontier(2, 100);
        let t0 = Instant::now();
        let h: Arc<str> = Arc::from("h");
        for id in 1..=3 {
            f.push(job(id, "h", 0), t0);
        }
        assert_eq!(popped_id(f.pop(t0)), 1);
        let pause = Release {
            crawl_delay: Some(Duration::from_secs(2)),
            pause_until: Some(t0 + Duration::from_secs(5)),
            ..Release::default()
        };
        f.release(&h, pause, t0);
        match f.pop(t0) {
            Pop::WaitUntil(at) => assert_eq!(at, t0 + Duration::from_secs(5)),
            other => panic!("expected the host to be paused, got {other:?}"),
        }
        let t5 = t0 + Duration::from_secs(5);
        assert_eq!(popped_id(f.pop(t5)), 2);
        match f.pop(t5) {
            Pop::WaitUntil(at) => assert_eq!(at, t5 + Duration::from_secs(2)),
            other => panic!("expected the crawl delay, got {other:?}"),
        }
    }

    #[test]
    fn a_host_taken_out_keeps_its_requests_in_flight_and_a_held_host_waits() {
        let mut f = frontier(2, 100);
        let t0 = Instant::now();
        let h: Arc<str> = Arc::from("h");
        for id in 1..=3 {
            f.push(job(id, "h", 0), t0);
        }
        f.push(job(4, "g", 0), t0);
        assert_eq!(popped_id(f.pop(t0)), 1);
        let mut taken: Vec<i64> = f.take_host(&h, t0).into_iter().map(|j| j.id).collect();
        taken.sort();
        assert_eq!(taken, vec![2, 3]);
        assert!(f.is_busy("h"), "its request is still in flight");
        f.release(&h, Release::default(), t0);
        assert!(!f.is_busy("h"));
        assert_eq!(f.next_allowed("h"), Some(t0 + Duration::from_millis(100)));

        let g: Arc<str> = Arc::from("g");
        f.hold(&g, t0 + Duration::from_secs(1), t0);
        match f.pop(t0 + Duration::from_millis(100)) {
            Pop::WaitUntil(at) => assert_eq!(at, t0 + Duration::from_secs(1)),
            other => panic!("expected the held host to wait, got {other:?}"),
        }
        assert_eq!(popped_id(f.pop(t0 + Duration::from_secs(1))), 4);
    }

    #[test]
    fn a_delay_learned_mid_request_holds_the_hosts_next_job_and_counts_no_end() {
        let mut f = frontier(2, 0);
        let t0 = Instant::now();
        let h: Arc<str> = Arc::from("h");
        for id in 1..=3 {
            f.push(job(id, "h", 0), t0);
        }
        assert_eq!(popped_id(f.pop(t0)), 1);
        let learned = Release {
            crawl_delay: Some(Duration::from_secs(2)),
            pause_until: Some(t0 + Duration::from_secs(3)),
            ..Release::default()
        };
        f.learned(&h, learned, t0);
        match f.pop(t0) {
            Pop::WaitUntil(at) => assert_eq!(at, t0 + Duration::from_secs(3)),
            other => panic!("expected the host to wait, got {other:?}"),
        }
        let t3 = t0 + Duration::from_secs(3);
        assert_eq!(popped_id(f.pop(t3)), 2);
        assert!(
            matches!(f.pop(t3 + Duration::from_secs(2)), Pop::Idle),
            "two requests are still in flight"
        );
    }

    /// Revisits due faster than their host can take them took every turn from its new
    /// URLs: the two take turns, a revisit first.
    #[test]
    fn a_hosts_revisits_and_new_urls_take_turns() {
        let mut f = frontier(10, 0);
        let now = Instant::now();
        for id in 1..=3 {
            f.push(job(id, "h", 0), now);
        }
        for id in 4..=7 {
            let mut revisit = job(id, "h", -5);
            revisit.previous = Some(Box::new(crate::page::Previous {
                interval: Some(Duration::from_secs(60)),
                ..crate::page::Previous::default()
            }));
            f.push(revisit, now);
        }
        assert_eq!(f.revisits(), 4);
        let order: Vec<i64> = (0..7).map(|_| popped_id(f.pop(now))).collect();
        assert_eq!(order, vec![4, 1, 5, 2, 6, 3, 7]);
        assert_eq!(f.revisits(), 0);
    }

    /// A host's revisits went by priority: due faster than the host may be asked, the
    /// pages nearest the seeds, due again as soon as they were fetched, took every turn.
    /// The longest overdue goes first, whatever its priority.
    #[test]
    fn a_hosts_longest_overdue_revisit_goes_first() {
        let mut f = frontier(10, 0);
        let now = Instant::now();
        for (id, priority, due_at) in [(1, 9, 3000), (2, 0, 1000), (3, 5, 2000), (4, 5, 1000)] {
            let mut revisit = job(id, "h", priority);
            revisit.previous = Some(Box::new(crate::page::Previous {
                interval: Some(Duration::from_secs(60)),
                due_at: Some(due_at),
                ..crate::page::Previous::default()
            }));
            f.push(revisit, now);
        }
        let order: Vec<i64> = (0..4).map(|_| popped_id(f.pop(now))).collect();
        assert_eq!(order, vec![4, 2, 3, 1]);
    }

    #[test]
    fn drain_returns_what_was_never_handed_out() {
        let mut f = frontier(1, 0);
        let now = Instant::now();
        for id in 1..=3 {
            f.push(job(id, "h", 0), now);
        }
        assert_eq!(popped_id(f.pop(now)), 1);
        let mut left: Vec<i64> = f.drain().into_iter().map(|j| j.id).collect();
        left.sort();
        assert_eq!(left, vec![2, 3]);
        assert!(f.is_empty());
    }
}
