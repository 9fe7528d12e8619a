//! Bringing a database's schema up to date with sqlx's migrator, and what it cannot
//! tell on its own.

use std::path::PathBuf;

use sqlx::migrate::{Migrate, MigrateError};
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Pool, Type};

use super::backend::Backend;
use super::redacted;
use crate::error::{DbContext, Error};

/// The table where sqlx records the migrations applied.
const APPLIED: &str = "_sqlx_migrations";

/// The last migration this build applies.
pub(super) fn newest_migration<DB: Backend>() -> i64 {
    DB::migrator().iter().map(|m| m.version).max().unwrap_or(0)
}

/// The error for a database at migration `version`, newer than this build's.
pub(super) fn newer_database<DB: Backend>(database: &str, version: i64) -> Error {
    Error::NewerDatabase {
        path: PathBuf::from(redacted(database)),
        version,
        known: newest_migration::<DB>(),
    }
}

/// Brings the schema up to date; a database that has migrations this build does not
/// know (sqlx: "previously applied but is missing") was migrated by a newer pipecrawl.
///
/// sqlx also refuses a database whose applied migration's checksum, of the file's whole
/// text, is not the file's now. For the earlier texts in [`Backend::RECOMMENTED`], whose
/// statements are today's and only the comments differ, the database is first told
/// today's checksum: what it ran is what this build would run.
pub(super) async fn migrate<DB: Backend>(pool: &Pool<DB>, database: &str) -> Result<(), Error>
where
    DB::Connection: Migrate,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    i64: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
    Vec<u8>: Type<DB> + for<'q> Encode<'q, DB>,
    usize: ColumnIndex<DB::Row>,
{
    let mut conn = pool
        .acquire()
        .await
        .doing("reading the migrations applied")?;
    // Under the migrator's lock, as sqlx takes it (on PostgreSQL a session's lock, which
    // goes with the session if anything below fails: the connection is not reused).
    conn.close_on_drop();
    conn.lock().await?;
    conn.ensure_migrations_table(APPLIED).await?;
    for &(version, earlier) in DB::RECOMMENTED {
        let Some(now) = DB::migrator().iter().find(|m| m.version == version) else {
            continue;
        };
        // Asked first: the update would take the write lock even to change nothing, and
        // fail on a database this user may only read, before the migrator says why.
        let stale: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {APPLIED} WHERE version = $1 AND checksum = $2"
        )))
        .bind(version)
        .bind(bytes_of_hex(earlier))
        .fetch_one(&mut *conn)
        .await
        .doing("reading the migrations applied")?;
        if stale > 0 {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE {APPLIED} SET checksum = $1 WHERE version = $2"
            )))
            .bind(now.checksum.to_vec())
            .bind(version)
            .execute(&mut *conn)
            .await
            .doing("accepting a migration whose comments changed")?;
        }
    }
    conn.unlock().await?;
    drop(conn);
    match DB::migrator().run(pool).await {
        Err(MigrateError::VersionMissing(version)) => Err(newer_database::<DB>(database, version)),
        done => Ok(done?),
    }
}

/// The bytes `hex` spells (the constants of [`Backend::RECOMMENTED`]).
fn bytes_of_hex(hex: &str) -> Vec<u8> {
    hex.as_bytes()
        .chunks(2)
        .filter_map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect()
}
