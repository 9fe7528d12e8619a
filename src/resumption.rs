//! A crawl is judged whole, not run by run: a run that resumes one a kill or a signal
//! stopped before its end is one part of it. Its exit status says whether the crawl
//! reached its sites, as the crawl's would had it never stopped, not whether the few
//! URLs left to this run did (a page that never answers, a host gone down).

use std::time::SystemTime;

use crate::error::Error;
use crate::store::{from_unix_ms, unix_ms, Store};
use crate::summary::{EndReason, Summary, UNREACHED};

/// The `crawl_state` key of when the crawl under way began (unix ms), set by its first
/// run and cleared by the run that ends it; on PostgreSQL one per `cluster.node_id`.
const BEGAN: &str = "crawl_began";

/// When the crawl this run belongs to began.
pub struct CrawlBegan {
    key: String,
    at: SystemTime,
}

impl CrawlBegan {
    /// Now, unless an earlier run began a crawl that none has ended since.
    pub async fn read(store: &Store, node: &str) -> Result<Self, Error> {
        let key = store.node_key(BEGAN, node);
        let at = match store.crawl_state(&key).await? {
            Some(ms) => from_unix_ms(ms),
            None => {
                let now = SystemTime::now();
                store.set_crawl_state(&key, unix_ms(now)).await?;
                now
            }
        };
        Ok(Self { key, at })
    }

    /// Notes in `summary` whether earlier runs of the crawl got answers, when this run got
    /// none, and ends the crawl unless a signal stopped the run.
    pub async fn end(self, store: &Store, summary: &mut Summary) -> Result<(), Error> {
        if summary.nothing_answered().is_some() {
            summary.answered_earlier = store.answered_since(self.at, &UNREACHED).await?;
        }
        if summary.ended != EndReason::Interrupted {
            store.clear_crawl_state(&self.key).await?;
        }
        Ok(())
    }
}
