//! The rules that can match a path, found without trying every rule of the file.
//!
//! Trying each rule, longest first, until one matched cost a verdict time linear in the
//! file: a hostile robots.txt of 27,000 rules, as many as the cache reads, cost every URL
//! of its host a millisecond on the fetch path. A pattern's literal head (up to its first
//! `*`) must begin any path it matches, and the tail of one anchored by `$` (after its
//! last `*`) must end it; so the rules are filed by one of those, and a verdict tries
//! only the rules filed under the path's own beginnings (or endings): a few, for the
//! files sites write.

/// Rules filed by a literal key their pattern holds at one end, each key read from that
/// end: a head from its first byte, a tail from its last.
#[derive(Debug, Default)]
pub(super) struct Index {
    /// The distinct keys, in the order of their bytes read from their end (a key that
    /// begins another sorting first), so that the keys a path begins with (or ends with)
    /// are found by narrowing one range byte by byte.
    keys: Box<[Key]>,
    /// The ranks of the rules filed under each key, key after key, ascending in each.
    ranks: Box<[u32]>,
    /// Keys are tails, read from their last byte, and matched against a path's end.
    from_end: bool,
}

/// A key: bytes of the patterns' text, and where its rules' ranks end in `ranks`.
#[derive(Debug, Clone, Copy)]
struct Key {
    start: u32,
    len: u32,
    ranks_end: u32,
}

/// A rule to file: its key (`start` and `len` in the patterns' text) and its rank.
#[derive(Debug, Clone, Copy)]
pub(super) struct Filed {
    pub(super) start: u32,
    pub(super) len: u32,
    pub(super) rank: u32,
}

impl Index {
    /// `filed` indexed by their keys in `text`, read from their last byte if `from_end`.
    pub(super) fn new(text: &str, mut filed: Vec<Filed>, from_end: bool) -> Self {
        let bytes = |start: u32, len: u32| &text.as_bytes()[start as usize..][..len as usize];
        let key = |f: &Filed| bytes(f.start, f.len);
        if from_end {
            filed.sort_by(|a, b| {
                let (a_key, b_key) = (key(a).iter().rev(), key(b).iter().rev());
                a_key.cmp(b_key).then(a.rank.cmp(&b.rank))
            });
        } else {
            filed.sort_by(|a, b| key(a).cmp(key(b)).then(a.rank.cmp(&b.rank)));
        }
        let mut keys: Vec<Key> = Vec::new();
        for (i, f) in filed.iter().enumerate() {
            // The rules filed number fewer than the patterns' text has bytes.
            let ranks_end = u32::try_from(i + 1).unwrap_or(u32::MAX);
            match keys.last_mut() {
                Some(last) if bytes(last.start, last.len) == key(f) => last.ranks_end = ranks_end,
                _ => keys.push(Key {
                    start: f.start,
                    len: f.len,
                    ranks_end,
                }),
            }
        }
        Self {
            keys: keys.into_boxed_slice(),
            ranks: filed.iter().map(|f| f.rank).collect(),
            from_end,
        }
    }

    /// Bytes the index holds, which the cache counts against its bound.
    pub(super) fn held(&self) -> usize {
        std::mem::size_of_val::<[Key]>(&self.keys) + std::mem::size_of_val::<[u32]>(&self.ranks)
    }

    /// Calls `each` with the ranks filed under every key `path` begins with (ends with,
    /// for tails), shortest key first. The keys holding the path's first `depth` bytes
    /// are one range of `keys`; the one of just that length, if any, sorts first in it.
    pub(super) fn candidates(&self, text: &str, path: &str, mut each: impl FnMut(&[u32])) {
        let (text, path) = (text.as_bytes(), path.as_bytes());
        let at = |bytes: &[u8], len: usize, depth: usize| match self.from_end {
            true => bytes[len - 1 - depth],
            false => bytes[depth],
        };
        let key_at = |key: &Key, depth: usize| {
            let key = &text[key.start as usize..][..key.len as usize];
            (depth < key.len()).then(|| at(key, key.len(), depth))
        };
        let (mut lo, mut hi) = (0, self.keys.len());
        for depth in 0..=path.len() {
            if lo == hi {
                return;
            }
            if self.keys[lo].len as usize == depth {
                each(self.ranks_of(lo));
                lo += 1;
            }
            let Some(byte) = (depth < path.len()).then(|| at(path, path.len(), depth)) else {
                return;
            };
            let range = &self.keys[lo..hi];
            let first = range.partition_point(|key| key_at(key, depth) < Some(byte));
            let end = range.partition_point(|key| key_at(key, depth) <= Some(byte));
            (lo, hi) = (lo + first, lo + end);
        }
    }

    fn ranks_of(&self, key: usize) -> &[u32] {
        let start = key
            .checked_sub(1)
            .map_or(0, |before| self.keys[before].ranks_end as usize);
        &self.ranks[start..self.keys[key].ranks_end as usize]
    }
}
