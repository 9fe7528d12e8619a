//! `runs`: a row for each run of `crawl` or `serve` on the database, so that whoever reads
//! its rows can say which build stored them, as whom, with which config file, when, and
//! how each run ended. Times are `pages.fetched_at`'s RFC 3339, so on SQLite (a run at a
//! time) a page's run is the one whose span holds its `fetched_at`.

use sqlx::database::HasStatementCache;
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Type};

use super::backend::Backend;
use super::db::Db;
use crate::config::Config;
use crate::error::{DbContext, Error};
use crate::summary::{EndReason, Summary};

/// A run as it starts.
pub struct RunStart<'a> {
    pub config: &'a Config,
    /// `crawl` or `serve`.
    pub command: &'static str,
}

/// How a run ended, as `runs.ended` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    Ended(EndReason),
    /// A crawl in which not one URL got an answer, or that found one finished that none
    /// ever got, which exits 4: a night of a cron job whose sites or network were down
    /// is told from those that reached them.
    Unreached,
    /// The run stopped on an error: its exit status and log say which.
    Error,
}

impl RunEnd {
    /// How `summary`'s run ended; a service's (`service`), which exits 0 whatever its
    /// pages got, is never [`RunEnd::Unreached`].
    pub fn of(summary: &Summary, service: bool) -> Self {
        if !service && summary.unreached() {
            Self::Unreached
        } else {
            Self::Ended(summary.ended)
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ended(EndReason::FrontierEmpty) => "finished",
            Self::Ended(EndReason::PageLimit) => "page_limit",
            Self::Ended(EndReason::Interrupted) => "signal",
            Self::Unreached => "unreached",
            Self::Error => "error",
        }
    }
}

/// `runs.ended` of a run found with no end by a later one, which knows it is no longer
/// going: killed (`kill -9`, a power cut, the OOM killer) or crashed. Its `ended_at` and
/// `pages` stay unknown.
const KILLED: &str = "killed";

impl<DB: Backend + HasStatementCache> Db<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    i64: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
    Option<i64>: Type<DB> + for<'q> Encode<'q, DB>,
    for<'s> &'s str: Type<DB> + Encode<'s, DB>,
    for<'s> Option<&'s str>: Type<DB> + Encode<'s, DB>,
    usize: ColumnIndex<DB::Row>,
{
    /// The new run's row, begun `at`: its id. The runs with no end that are over are
    /// marked `killed` first, so that a reader tells them from runs going on: on SQLite
    /// every one, as a crawl holds the database alone; on PostgreSQL those of this node's
    /// id (a live process under it is refused) and of nodes with no heartbeat within
    /// `lease_ttl_ms`.
    pub(super) async fn begin_run(
        &self,
        start: &RunStart<'_>,
        at: &str,
        lease_ttl_ms: u64,
    ) -> Result<i64, Error> {
        let config = start.config;
        let file = config.file.as_ref();
        let killed = format!("UPDATE runs SET ended = '{KILLED}' WHERE ended IS NULL");
        let killed = if DB::SHARED {
            // `lease_ttl_ms` is a number of ours: no value from a user or a server.
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "{killed} AND (node_id = $1 OR NOT EXISTS (SELECT 1 FROM nodes
                     WHERE nodes.id = runs.node_id
                       AND nodes.heartbeat >= {} - {lease_ttl_ms}))",
                super::cluster::server_ms!()
            )))
            .bind(config.cluster.node_id.as_str())
        } else {
            sqlx::query(sqlx::AssertSqlSafe(killed))
        };
        killed
            .execute(&self.pool)
            .await
            .doing("marking the runs killed before this one")?;
        sqlx::query_scalar(
            "INSERT INTO runs (node_id, command, version, user_agent, config_path,
                               config_hash, started_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(config.cluster.node_id.as_str())
        .bind(start.command)
        .bind(env!("CARGO_PKG_VERSION"))
        .bind(config.fetch.user_agent.as_str())
        .bind(file.map(|f| f.path.as_str()))
        .bind(file.map(|f| f.hash.as_str()))
        .bind(at)
        .fetch_one(&self.pool)
        .await
        .doing("recording the run's start")
    }

    /// Ends run `id` `at`, having stored `pages` (unknown for one that stopped on an
    /// error).
    pub(super) async fn end_run(
        &self,
        id: i64,
        (ended, pages): (RunEnd, Option<i64>),
        at: &str,
    ) -> Result<(), Error> {
        sqlx::query("UPDATE runs SET ended_at = $1, ended = $2, pages = $3 WHERE id = $4")
            .bind(at)
            .bind(ended.as_str())
            .bind(pages)
            .bind(id)
            .execute(&self.pool)
            .await
            .doing("recording the run's end")?;
        Ok(())
    }
}
