//! Trying a PostgreSQL pool's idle connections before a step takes one.
//!
//! sqlx pings an idle connection before handing it out, and waits for the answer as long
//! as the step may wait for a connection at all
//! ([`CONNECT_TIMEOUT`](super::CONNECT_TIMEOUT)). After a network cut (a firewall
//! dropping packets, a failover behind a virtual IP) every connection idle in the pool is
//! one that never answers: each cost a step those ten seconds and a failed try, one after
//! another, a minute and more with a full pool before a step got a new connection, while
//! the crawl stood still. Here an idle connection answers
//! within [`PING_WITHIN`] or is closed (a new one is opened in its place, within the
//! same wait), and once one has not answered, those idle since before it was asked are
//! taken to be cut too and closed without a try: the cut costs the node one short wait,
//! not one per connection.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};

/// How long an idle connection may take to answer a ping. A server answers in under a
/// millisecond; one too busy to answer within this costs a new connection, no more.
pub(super) const PING_WITHIN: Duration = Duration::from_secs(2);

/// When a ping last went unanswered, shared by the pool's checks.
#[derive(Clone, Default)]
pub(super) struct IdleCheck {
    silent_since: Arc<Mutex<Option<Instant>>>,
}

impl IdleCheck {
    /// Whether `connection`, idle for `idle_for`, may be handed to a step.
    pub(super) async fn answers(&self, connection: &mut PgConnection, idle_for: Duration) -> bool {
        let asked = Instant::now();
        let idle_since = asked.checked_sub(idle_for);
        if let (Some(since), Some(silent)) = (idle_since, self.silent_since()) {
            if since < silent {
                return false;
            }
        }
        match tokio::time::timeout(PING_WITHIN, connection.ping()).await {
            Ok(answer) => answer.is_ok(),
            Err(_) => {
                tracing::debug!(
                    "an idle connection to the database did not answer within {} s: closing \
                     it and those idle since before",
                    PING_WITHIN.as_secs()
                );
                let mut silent = self.lock();
                *silent = Some(silent.map_or(asked, |s| s.max(asked)));
                false
            }
        }
    }

    fn silent_since(&self) -> Option<Instant> {
        *self.lock()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        // An `Option<Instant>` is never left half-written: a panic elsewhere leaves it
        // as it was.
        self.silent_since
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
