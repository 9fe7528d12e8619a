//! `query sql`: any read-only SQL, for everything the built-in questions do not ask.

use std::io::Write;

use sqlx::sqlite::SqliteConnection;
use sqlx::QueryBuilder;

use super::output::Format;
use super::{Answer, QueryError};

#[derive(Debug, Clone, clap::Args)]
pub struct SqlArgs {
    /// The statement, e.g. "SELECT url, title FROM pages WHERE status = 200".
    pub statement: String,
}

/// The connection is read-only (see [`super::open`]): SQLite itself refuses writes, and
/// the refusal is reported as such.
pub(super) async fn answer(
    conn: &mut SqliteConnection,
    args: &SqlArgs,
    format: Format,
    out: &mut dyn Write,
) -> Result<Answer, QueryError> {
    let mut q = QueryBuilder::new(args.statement.as_str());
    super::print_rows(conn, &mut q, format, out, 0, None).await
}
