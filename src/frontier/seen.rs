//! A bounded memory of URLs already offered to the `frontier` table (committed, or in a
//! record on its way to the writer), so the parse pool drops links it has seen before —
//! most links on most pages — and the writer skips their upserts.
//!
//! It is only a cache: the table's unique index stays the truth. An entry remembers the
//! shallowest depth the URL was offered at, because a URL found again nearer the seeds
//! must still reach the table (its queued row moves up). When full it is cleared, which
//! costs some repeated upserts and never a wrong answer.

use std::sync::{Mutex, PoisonError};

use foldhash::HashMap;

use url::Url;
use xxhash_rust::xxh3::xxh3_128;

use crate::page::Discovered;

pub struct SeenUrls {
    depths: HashMap<u128, u32>,
    capacity: usize,
}

impl SeenUrls {
    pub fn new(capacity: usize) -> Self {
        Self {
            depths: HashMap::default(),
            capacity,
        }
    }

    /// The shallowest depth `url` was offered at, if it is remembered.
    pub fn depth(&self, url: &Url) -> Option<u32> {
        self.depths.get(&xxh3_128(url.as_str().as_bytes())).copied()
    }

    /// Whether `url`, found at `depth`, must go to the table: unseen, or seen only deeper.
    pub fn admit(&mut self, url: &Url, depth: u32) -> bool {
        if self.capacity == 0 {
            return true;
        }
        let key = xxh3_128(url.as_str().as_bytes());
        match self.depths.get_mut(&key) {
            Some(known) if *known <= depth => false,
            Some(known) => {
                *known = depth;
                true
            }
            None => {
                if self.depths.len() >= self.capacity {
                    self.depths.clear();
                }
                self.depths.insert(key, depth);
                true
            }
        }
    }
}

/// Notes `found`, queued at depths the parse pool did not offer them at, in the
/// crawl's cache: seeds (depth 0) over the admin API or by a reload, and the links of a
/// page moved nearer the seeds as it was stored. A page of one leased deeper before is
/// then stored at the depth noted, its links followed from there (the writer asks the
/// table about the pages whose URLs this says moved up), as a crawl that found the
/// shorter path first stores it.
pub fn note_found(seen: &Mutex<SeenUrls>, found: &[Discovered]) {
    let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
    for url in found {
        seen.admit(&url.url, url.depth);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(url: &str) -> Url {
        Url::parse(url).unwrap()
    }

    #[test]
    fn a_url_passes_once_unless_found_nearer_the_seeds() {
        let mut seen = SeenUrls::new(10);
        assert!(seen.admit(&at("http://h/a"), 3));
        assert!(!seen.admit(&at("http://h/a"), 3));
        assert!(!seen.admit(&at("http://h/a"), 5));
        assert!(seen.admit(&at("http://h/a"), 1));
        assert!(!seen.admit(&at("http://h/a"), 2));
        assert_eq!(seen.depth(&at("http://h/a")), Some(1));
        assert_eq!(seen.depth(&at("http://h/b")), None);
    }

    #[test]
    fn it_never_holds_more_than_its_capacity() {
        let mut seen = SeenUrls::new(2);
        for i in 0..5 {
            assert!(seen.admit(&at(&format!("http://h/{i}")), 0));
            assert!(seen.depths.len() <= 2);
        }
    }
}
