//! The wildcard rules whose head says little of the paths they match, found by a piece
//! of their pattern past a wildcard, which any such path holds somewhere.
//!
//! `Disallow: /*x1` … `/*x27000` all begin with `/`, which every path begins with: filed
//! by their heads, each was a candidate for every verdict, ~1.3 ms a URL of the host
//! (release). Every literal piece between a pattern's wildcards lies somewhere in a path
//! it matches, and so does the piece's beginning: such a rule is filed under the first
//! [`KEY_MOST`] bytes of its longest piece, and a verdict looks up the path's runs of
//! bytes as long as the keys. (An Aho-Corasick automaton would find them in one pass,
//! but the `aho-corasick` crate takes time quadratic in its states to build one for a
//! file like that: two seconds for 27,000 rules.)

use foldhash::HashMap;

/// The longest key: a verdict looks up at most this many runs at each byte of a path.
const KEY_MOST: usize = 8;

/// Rules filed by the beginning of a piece of their pattern, found anywhere in a path.
#[derive(Debug, Default)]
pub(super) struct Pieces {
    /// Each key, and where its rules' ranks begin and end in `ranks`.
    keys: HashMap<Box<[u8]>, (u32, u32)>,
    /// Bit `n` is set when a key is `n` bytes long.
    lengths: u16,
    /// The ranks of the rules filed under each key, ascending in each.
    ranks: Box<[u32]>,
}

impl Pieces {
    /// `filed` (a piece and a rule's rank) indexed by the pieces' beginnings.
    pub(super) fn new(filed: Vec<(&str, u32)>) -> Self {
        let mut filed: Vec<(&[u8], u32)> = filed
            .into_iter()
            .map(|(piece, rank)| (&piece.as_bytes()[..piece.len().min(KEY_MOST)], rank))
            .collect();
        filed.sort_unstable();
        let mut pieces = Self::default();
        // The rules filed number fewer than a robots.txt has bytes.
        let at = |i: usize| u32::try_from(i).unwrap_or(u32::MAX);
        for (i, &(key, _)) in filed.iter().enumerate() {
            pieces
                .keys
                .entry(key.into())
                .and_modify(|(_, end)| *end = at(i + 1))
                .or_insert((at(i), at(i + 1)));
            pieces.lengths |= 1 << key.len();
        }
        pieces.ranks = filed.iter().map(|&(_, rank)| rank).collect();
        pieces
    }

    /// Bytes the index holds, which the cache counts against its bound.
    pub(super) fn held(&self) -> usize {
        let entry = std::mem::size_of::<(Box<[u8]>, (u32, u32))>() + 1;
        self.keys.capacity() * entry
            + self.keys.keys().map(|key| key.len()).sum::<usize>()
            + std::mem::size_of_val::<[u32]>(&self.ranks)
    }

    /// Calls `each` once with the ranks filed under every key `path` holds.
    pub(super) fn candidates(&self, path: &str, mut each: impl FnMut(&[u32])) {
        if self.keys.is_empty() {
            return;
        }
        let mut found: Vec<(u32, u32)> = (1..=KEY_MOST)
            .filter(|len| self.lengths & (1 << len) != 0)
            .flat_map(|len| path.as_bytes().windows(len))
            .filter_map(|run| self.keys.get(run).copied())
            .collect();
        found.sort_unstable();
        found.dedup();
        for (start, end) in found {
            each(&self.ranks[start as usize..end as usize]);
        }
    }
}
