//! `query sql`: any read-only SQL, for everything the built-in questions do not ask.

use std::io::Write;

use super::output::Format;
use super::reader::{Reader, Statement};
use super::{Answer, QueryError};

#[derive(Debug, Clone, clap::Args)]
pub struct SqlArgs {
    /// The statement, e.g. "SELECT url, title FROM pages WHERE status = 200".
    // SQL may open with a `--` comment, as README's example questions do: read as an
    // option, it was refused as an "unexpected argument".
    #[arg(allow_hyphen_values = true)]
    pub statement: String,
}

/// The connection is read-only (see [`super::open`]): the database itself refuses writes,
/// and the refusal is reported as such. One statement per call, on either database: an
/// answer has one set of columns; with its values written in, as there is nowhere to
/// give them.
pub(super) async fn answer(
    conn: &mut Reader,
    args: &SqlArgs,
    format: Format,
    out: &mut dyn Write,
) -> Result<Answer, QueryError> {
    let q = Statement::new(args.statement.as_str());
    conn.refuse_many_statements(&q).await?;
    let shape = conn.shape(&q).await?;
    if shape.has_parameters {
        // SQLite binds a placeholder left unbound as NULL: `WHERE url = ?` answered no
        // row, as if none matched.
        return Err(QueryError::Parameters);
    }
    if matches!(format, Format::Json | Format::Jsonl) {
        refuse_repeated_names(&shape.columns)?;
    }
    super::print_rows(conn, &q, format, out, 0, None).await
}

/// Refuses columns of one name, which a JSON object cannot hold apart (the built-in
/// questions name theirs apart; SQL over a join, `s.url, t.url`, easily does not).
fn refuse_repeated_names(names: &[String]) -> Result<(), QueryError> {
    for (second, name) in names.iter().enumerate() {
        if let Some(first) = names[..second].iter().position(|n| n == name) {
            return Err(QueryError::RepeatedColumn {
                name: name.clone(),
                first: first + 1,
                second: second + 1,
            });
        }
    }
    Ok(())
}
