//! A batch's statements, built together and then run one per query, in turn.
//!
//! This is the shared database's path (`Db::commit`) and that of seeds: SQLite's page
//! batches are stepped by the writer itself (`sqlite_batch`). PostgreSQL's extended
//! protocol takes one statement per query, so each is a round trip of its own.

use sqlx::database::HasStatementCache;
use sqlx::{Executor, IntoArguments, QueryBuilder};

use super::backend::Backend;
use super::db::Conn;
use crate::error::{DbContext, Error};

pub(super) struct Script<DB: Backend> {
    /// Each statement with what it does, for its error: a batch's statements store
    /// pages, links, hosts and frontier rows, and a refused row's message names which.
    statements: Vec<(&'static str, QueryBuilder<DB>)>,
}

impl<DB: Backend + HasStatementCache> Script<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
{
    pub(super) fn new() -> Self {
        Self {
            statements: Vec::new(),
        }
    }

    /// Starts the next statement, `doing` what it is for (as errors say: "storing hosts"),
    /// with `sql`, and returns the builder to finish it in.
    pub(super) fn statement(&mut self, doing: &'static str, sql: &str) -> &mut QueryBuilder<DB> {
        self.statements.push((doing, QueryBuilder::new(sql)));
        let last = self.statements.len() - 1;
        &mut self.statements[last].1
    }

    /// Runs the statements for their effect.
    pub(super) async fn run(self, tx: &mut Conn<DB>) -> Result<(), Error> {
        for (doing, mut query) in self.statements {
            query
                .build()
                .persistent(false)
                .execute(&mut *tx)
                .await
                .doing(doing)?;
        }
        Ok(())
    }
}
