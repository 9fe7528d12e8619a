//! The robots.txt cache's map of hosts, bounded in hosts and in bytes.
//!
//! A count of hosts alone bounds nothing: a robots.txt may be 500 KiB, its rules and
//! sitemaps take more than that, and a crawl of many hosts (one domain's wildcard DNS is
//! enough) would hold thousands of them. So the bytes the cached rules and sitemaps hold
//! are counted too, and past either bound the hosts no request is using
//! are forgotten: they reload from the `hosts` table when next asked.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::Robots;

/// Hosts kept in memory before idle entries are dropped.
const MAX_HOSTS: usize = 10_000;
/// Bytes the rules and sitemaps kept in memory hold before idle entries are dropped.
/// Typical files are a few KiB, so the host count is the bound that usually acts; this
/// one holds for files near the 500 KiB read at most.
const MAX_BYTES: usize = 16 * 1024 * 1024;

/// A host's robots.txt in memory, and the round of sitemap offers it last took part in.
#[derive(Default)]
pub(super) struct Cached {
    robots: Option<Arc<Robots>>,
    pub(super) offered: u64,
}

impl Cached {
    pub(super) fn robots(&self) -> Option<&Arc<Robots>> {
        self.robots.as_ref()
    }
}

pub(super) type Slot = Arc<tokio::sync::Mutex<Cached>>;

#[derive(Default)]
pub(super) struct Slots {
    map: Mutex<Map>,
}

#[derive(Default)]
struct Map {
    hosts: HashMap<String, Slot>,
    /// Bytes the rules and sitemaps in `hosts` hold.
    bytes: usize,
}

impl Slots {
    /// `host`'s slot, made if it has none. Making one past a bound first forgets every
    /// slot no lookup holds (only the map does, and only under its lock can that change).
    pub(super) fn get(&self, host: &str) -> Slot {
        let mut map = self.lock();
        let full = map.hosts.len() >= MAX_HOSTS || map.bytes >= MAX_BYTES;
        if full && !map.hosts.contains_key(host) {
            let Map { hosts, bytes } = &mut *map;
            hosts.retain(|_, slot| {
                if Arc::strong_count(slot) > 1 {
                    return true;
                }
                match slot.try_lock() {
                    Ok(cached) => {
                        *bytes -= cached.robots.as_ref().map_or(0, |r| r.size);
                        false
                    }
                    Err(_) => true,
                }
            });
        }
        Arc::clone(map.hosts.entry(host.to_owned()).or_default())
    }

    /// `host`'s slot if it has one, made by no call: a look that must not add a host.
    pub(super) fn existing(&self, host: &str) -> Option<Slot> {
        self.lock().hosts.get(host).cloned()
    }

    /// Caches `robots` in `cached` (a locked slot from [`Self::get`]), counting its bytes
    /// in place of those of what it replaces.
    pub(super) fn keep(&self, cached: &mut Cached, robots: Arc<Robots>) {
        let mut map = self.lock();
        map.bytes += robots.size;
        if let Some(old) = cached.robots.replace(robots) {
            map.bytes -= old.size;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Map> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::page::held_by;

    /// A robots.txt as large as is read, of rules no crawl would mind.
    fn large() -> Arc<Robots> {
        as_large_as_is_read(|rule| format!("Disallow: /private/{rule:07}\n"))
    }

    /// A robots.txt as large as is read, of the lines `line` makes of their numbers.
    fn as_large_as_is_read(line: impl Fn(usize) -> String) -> Arc<Robots> {
        let mut body = b"User-agent: *\n".to_vec();
        let mut n = 0;
        while body.len() < super::super::MAX_ROBOTS_BYTES {
            body.extend_from_slice(line(n).as_bytes());
            n += 1;
        }
        let times = (Duration::from_secs(60), Duration::from_secs(1));
        let location = url::Url::parse("http://h/robots.txt").unwrap();
        Arc::new(Robots::from_response(
            Ok(200),
            (&super::super::as_read(&body), &location),
            "pipecrawl",
            times,
            tokio::time::Instant::now(),
        ))
    }

    #[test]
    fn large_files_of_many_hosts_stay_within_the_bytes_bound() {
        let slots = Slots::default();
        let robots = large();
        for i in 0..200 {
            let slot = slots.get(&format!("h{i}.test"));
            let mut cached = slot.try_lock().expect("no one else holds a new slot");
            slots.keep(&mut cached, Arc::clone(&robots));
        }
        let map = slots.lock();
        let held: usize = map
            .hosts
            .values()
            .filter_map(|slot| slot.try_lock().ok()?.robots.as_ref().map(|r| r.size))
            .sum();
        assert_eq!(held, map.bytes, "the count matches what is held");
        assert!(
            held <= MAX_BYTES + robots.size,
            "{} hosts hold {held} bytes of robots.txt",
            map.hosts.len()
        );
    }

    /// A robots.txt of short `Sitemap:` lines (`Sitemap: /7`) is some 33,000 URLs, each
    /// a parsed `Url` of a hundred bytes and more, and the parser's copy of its text
    /// beside: twelve times the file's bytes, which alone were counted, so the cache's
    /// 16 MiB held some 190 MB.
    #[test]
    fn the_sitemaps_of_many_hosts_stay_within_the_bytes_bound() {
        let robots = as_large_as_is_read(|n| format!("Sitemap: /{n}\n"));
        assert!(robots.sitemaps.len() > 30_000, "{}", robots.sitemaps.len());
        let slots = Slots::default();
        for i in 0..100 {
            let slot = slots.get(&format!("h{i}.test"));
            slots.keep(&mut slot.try_lock().expect("free"), Arc::clone(&robots));
            drop(slot);
            let map = slots.lock();
            let held: usize = map
                .hosts
                .values()
                .filter_map(|slot| slot.try_lock().ok()?.robots.clone())
                .map(|robots| held_by(&robots.sitemaps))
                .sum();
            assert!(
                held <= MAX_BYTES + held_by(&robots.sitemaps),
                "{} hosts hold {held} bytes of sitemap URLs",
                map.hosts.len()
            );
        }
    }

    #[test]
    fn slots_in_use_are_kept_and_replacing_counts_once() {
        let slots = Slots::default();
        let robots = large();
        let held = slots.get("busy.test");
        slots.keep(&mut held.try_lock().expect("free"), Arc::clone(&robots));
        slots.keep(&mut held.try_lock().expect("free"), Arc::clone(&robots));
        assert_eq!(slots.lock().bytes, robots.size);
        for i in 0..(MAX_BYTES / robots.size + 2) {
            let slot = slots.get(&format!("h{i}.test"));
            slots.keep(&mut slot.try_lock().expect("free"), Arc::clone(&robots));
        }
        assert!(Arc::ptr_eq(&held, &slots.get("busy.test")));
    }
}
