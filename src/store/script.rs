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
    statements: Vec<QueryBuilder<DB>>,
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

    /// Starts the next statement with `sql` and returns the builder to finish it in.
    pub(super) fn statement(&mut self, sql: &str) -> &mut QueryBuilder<DB> {
        self.statements.push(QueryBuilder::new(sql));
        let last = self.statements.len() - 1;
        &mut self.statements[last]
    }

    /// Runs the statements for their effect.
    pub(super) async fn run(self, tx: &mut Conn<DB>) -> Result<(), Error> {
        for mut query in self.statements {
            query
                .build()
                .persistent(false)
                .execute(&mut *tx)
                .await
                .doing("storing a batch of pages")?;
        }
        Ok(())
    }
}
