//! A batch's statements, sent together: every one but the last is run for its effect.
//!
//! Each statement sent to SQLite is a round trip between the writer's task and sqlx's
//! SQLite thread, and on two cores shared with the parse threads each side of it waits
//! for a core to be woken on. A batch of pages took eight of them; in the throughput
//! benchmark the store stage (the one at 100%) spent about a third of its time between
//! statements, with SQLite's thread under half busy. SQLite runs `;`-separated
//! statements in one query, binding each from the same argument list in turn, so a
//! script goes as one. PostgreSQL's extended protocol takes one statement per query:
//! there they run one by one.

use sqlx::database::HasStatementCache;
use sqlx::{Executor, IntoArguments, QueryBuilder};

use super::backend::Backend;
use super::db::Conn;
use crate::error::{DbContext, Error};

pub(super) struct Script<DB: Backend> {
    /// Queries complete already (PostgreSQL: one statement each).
    sent_alone: Vec<QueryBuilder<DB>>,
    current: QueryBuilder<DB>,
}

impl<DB: Backend + HasStatementCache> Script<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
{
    pub(super) fn new() -> Self {
        Self {
            sent_alone: Vec::new(),
            current: QueryBuilder::new(""),
        }
    }

    fn is_empty(&self) -> bool {
        self.current.sql().as_str().is_empty()
    }

    /// Starts the next statement with `sql` and returns the builder to finish it in.
    pub(super) fn statement(&mut self, sql: &str) -> &mut QueryBuilder<DB> {
        if !self.is_empty() {
            if DB::MULTI_STATEMENT {
                self.current.push(";\n");
            } else {
                let done = std::mem::replace(&mut self.current, QueryBuilder::new(""));
                self.sent_alone.push(done);
            }
        }
        self.current.push(sql);
        &mut self.current
    }

    /// Runs the statements, returning the rows of the last query (on SQLite, of every
    /// statement: only one that ends the script may return any).
    pub(super) async fn run(self, tx: &mut Conn<DB>) -> Result<Vec<DB::Row>, Error> {
        let last = (!self.is_empty()).then_some(self.current);
        let mut rows = Vec::new();
        for mut query in self.sent_alone.into_iter().chain(last) {
            rows = query
                .build()
                .persistent(false)
                .fetch_all(&mut *tx)
                .await
                .doing("storing a batch of pages")?;
        }
        Ok(rows)
    }
}
