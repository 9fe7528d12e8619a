//! Naming what the crawl's PostgreSQL role lacks when the server refuses it the schema:
//! the server says only "permission denied for schema public", and sqlx adds "at line
//! 3655", a line of the server's own source.

use std::path::PathBuf;

use sqlx::postgres::PgDatabaseError;
use sqlx::PgPool;

use super::redacted;
use crate::error::Error;

/// SQLSTATEs of a role refused a privilege (42501) and of a `search_path` that names no
/// schema there is to create in (3F000).
const REFUSED: [&str; 2] = ["42501", "3F000"];

/// `error`, from bringing the schema of `database` up to date through `pool`, as
/// [`Error::SchemaRefused`] when the server refused the role what that needs; else as it
/// was.
pub(super) async fn named(pool: &PgPool, database: &str, error: Error) -> Error {
    let Some(message) = refusal(&error) else {
        return error;
    };
    let who: Result<(String, Option<String>), _> =
        sqlx::query_as("SELECT session_user::text, current_schema()::text")
            .fetch_one(pool)
            .await;
    match who {
        Ok((role, schema)) => {
            let advice = advice(&identifier(&role), schema.as_deref().map(identifier));
            Error::SchemaRefused {
                path: PathBuf::from(redacted(database)),
                role,
                schema,
                message,
                advice,
            }
        }
        Err(_) => error,
    }
}

/// What lets `role` in, both as SQL writes them: the right to create in `schema`, or a
/// schema of its own.
fn advice(role: &str, schema: Option<String>) -> String {
    let own = format!(
        "give it a schema of its own (CREATE SCHEMA crawl AUTHORIZATION {role}) and put that \
         first in its search_path (ALTER ROLE {role} SET search_path = crawl, or \
         ?options=-csearch_path%3Dcrawl in the URL)"
    );
    match schema {
        Some(schema) => format!("GRANT CREATE ON SCHEMA {schema} TO {role}, or {own}"),
        None => own,
    }
}

/// The server's own words when `error` is a refusal of [`REFUSED`].
fn refusal(error: &Error) -> Option<String> {
    use sqlx::migrate::MigrateError;
    let source = match error {
        Error::Database { source, .. }
        | Error::Migrate(
            MigrateError::Execute(source) | MigrateError::ExecuteMigration(source, _),
        ) => source,
        _ => return None,
    };
    let refused = source
        .as_database_error()?
        .try_downcast_ref::<PgDatabaseError>()?;
    // A 42501 about a table ("must be owner of table pages": tables another role made)
    // is no schema's, which a GRANT on the schema would not mend: left as the server said.
    let about_schema = refused.code() == "3F000" || refused.message().contains("schema");
    (REFUSED.contains(&refused.code()) && about_schema).then(|| refused.message().to_owned())
}

/// `name` as SQL writes it: bare when PostgreSQL reads it so, else in double quotes.
fn identifier(name: &str) -> String {
    let bare = name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if bare {
        name.to_owned()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

#[cfg(test)]
mod tests {
    use super::identifier;

    #[test]
    fn identifiers_are_quoted_where_postgres_would_fold_or_refuse_them() {
        assert_eq!(identifier("crawler"), "crawler");
        assert_eq!(identifier("Crawler"), "\"Crawler\"");
        assert_eq!(identifier("crawl-er"), "\"crawl-er\"");
        assert_eq!(identifier("a\"b"), "\"a\"\"b\"");
    }
}
