//! `inlinks` and `anchors`: counts derived from `links`, kept current once per batch.
//!
//! A page's links are written in one batch and replaced in one batch when it is
//! revisited, so the writer can work out every change to the counts exactly: it adds what
//! the batch's pages link to now and takes away what the revisited ones linked to before,
//! netted per target, as one upsert per table. Rows whose count falls to zero go.

use std::collections::{HashMap, HashSet};

use sqlx::{QueryBuilder, Row, Sqlite};

use super::{push_id_list, Tx, MAX_BINDS};
use crate::error::{DbContext, Error};
use crate::page::PageRecord;

/// Net changes to the counts of one batch.
#[derive(Default)]
pub(super) struct LinkCounts {
    /// Per target URL: (distinct linking pages, link rows).
    inlinks: HashMap<String, (i64, i64)>,
    /// Per (target URL, anchor text): link rows.
    anchors: HashMap<(String, String), i64>,
}

impl LinkCounts {
    /// Counts the links the batch's pages are about to store.
    pub(super) fn adding(pages: &[&PageRecord]) -> Self {
        let mut counts = Self::default();
        for page in pages {
            let mut targets = HashSet::new();
            for link in &page.links {
                let target = link.target.as_str();
                counts.add(target, &link.anchor_text, targets.insert(target), 1);
            }
        }
        counts
    }

    /// Takes away the links the revisited pages stored last time, before they are deleted.
    pub(super) async fn removing(&mut self, tx: &mut Tx<'_>, sources: &[i64]) -> Result<(), Error> {
        for chunk in sources.chunks(MAX_BINDS) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "SELECT source_id, target_url, anchor_text FROM links WHERE source_id IN ",
            );
            push_id_list(&mut q, chunk);
            let rows = q
                .build()
                .persistent(false)
                .fetch_all(&mut **tx)
                .await
                .doing("reading a revisited page's old links")?;
            let mut pairs = HashSet::new();
            for row in rows {
                let source: i64 = row.get(0);
                let target: String = row.get(1);
                let anchor: String = row.get(2);
                let first = pairs.insert((source, target.clone()));
                self.add(&target, &anchor, first, -1);
            }
        }
        Ok(())
    }

    fn add(&mut self, target: &str, anchor: &str, new_page: bool, sign: i64) {
        let entry = self.inlinks.entry(target.to_owned()).or_default();
        entry.0 += if new_page { sign } else { 0 };
        entry.1 += sign;
        *self
            .anchors
            .entry((target.to_owned(), anchor.to_owned()))
            .or_default() += sign;
    }

    /// Applies the net changes. A count that only goes down still goes through the upsert
    /// (its row exists, since the links it counts did), and rows left at zero are deleted.
    pub(super) async fn apply(self, tx: &mut Tx<'_>) -> Result<(), Error> {
        let inlinks: Vec<_> = self
            .inlinks
            .into_iter()
            .filter(|(_, delta)| *delta != (0, 0))
            .collect();
        let anchors: Vec<_> = self
            .anchors
            .into_iter()
            .filter(|(_, delta)| *delta != 0)
            .collect();
        for chunk in inlinks.chunks(MAX_BINDS / 3) {
            let mut q =
                QueryBuilder::<Sqlite>::new("INSERT INTO inlinks (url, linking_pages, links) ");
            q.push_values(chunk, |mut b, (url, (pages, links))| {
                b.push_bind(url.as_str())
                    .push_bind(*pages)
                    .push_bind(*links);
            });
            q.push(
                " ON CONFLICT (url) DO UPDATE SET linking_pages = linking_pages + excluded.linking_pages,
                     links = links + excluded.links",
            );
            q.build()
                .persistent(false)
                .execute(&mut **tx)
                .await
                .doing("counting in-links")?;
        }
        for chunk in anchors.chunks(MAX_BINDS / 3) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO anchors (target_url, anchor_text, links) ",
            );
            q.push_values(chunk, |mut b, ((target, anchor), links)| {
                b.push_bind(target.as_str())
                    .push_bind(anchor.as_str())
                    .push_bind(*links);
            });
            q.push(
                " ON CONFLICT (target_url, anchor_text) DO UPDATE SET links = links + excluded.links",
            );
            q.build()
                .persistent(false)
                .execute(&mut **tx)
                .await
                .doing("counting anchor texts")?;
        }
        let shrunk: Vec<&str> = inlinks
            .iter()
            .filter(|(_, (_, links))| *links < 0)
            .map(|(url, _)| url.as_str())
            .collect();
        for chunk in shrunk.chunks(MAX_BINDS) {
            let mut q =
                QueryBuilder::<Sqlite>::new("DELETE FROM inlinks WHERE links <= 0 AND url IN (");
            let mut list = q.separated(", ");
            for url in chunk {
                list.push_bind(*url);
            }
            q.push(")");
            q.build()
                .persistent(false)
                .execute(&mut **tx)
                .await
                .doing("dropping in-link counts of unlinked URLs")?;
        }
        let gone: Vec<&(String, String)> = anchors
            .iter()
            .filter(|(_, links)| *links < 0)
            .map(|(key, _)| key)
            .collect();
        for chunk in gone.chunks(MAX_BINDS / 2) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "DELETE FROM anchors WHERE links <= 0 AND (target_url, anchor_text) IN (VALUES ",
            );
            let mut list = q.separated(", ");
            for (target, anchor) in chunk {
                list.push("(")
                    .push_bind_unseparated(target.as_str())
                    .push_unseparated(", ")
                    .push_bind_unseparated(anchor.as_str())
                    .push_unseparated(")");
            }
            q.push(")");
            q.build()
                .persistent(false)
                .execute(&mut **tx)
                .await
                .doing("dropping anchor texts no longer used")?;
        }
        Ok(())
    }
}
