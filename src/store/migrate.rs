//! Bringing a database's schema up to date with sqlx's migrator, and what it cannot
//! tell on its own.

use std::path::PathBuf;
use std::time::Instant;

use sqlx::migrate::{AppliedMigration, Migrate, MigrateError};
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Pool, Type};

use super::backend::Backend;
use super::{is_postgres, redacted};
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
        backend: <DB as sqlx::Database>::NAME,
        version,
        known: newest_migration::<DB>(),
        fresh: if is_postgres(database) {
            "database"
        } else {
            "file"
        },
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
    let applied = conn.list_applied_migrations(APPLIED).await?;
    let behind = earlier_schema::<DB>(&applied);
    conn.unlock().await?;
    drop(conn);
    let started = Instant::now();
    if let Some(applied) = behind {
        tracing::info!(
            "the database's schema is at migration {applied}, this pipecrawl's at {}: \
             bringing it up to date, which on a large database takes minutes (stopped \
             meanwhile, the next start begins the step again)",
            newest_migration::<DB>()
        );
    }
    match DB::migrator().run(pool).await {
        // sqlx names the first migration it does not know; the schema is at the last.
        Err(MigrateError::VersionMissing(version)) => {
            let last = applied.iter().map(|m| m.version).fold(version, i64::max);
            Err(newer_database::<DB>(database, last))
        }
        Err(e) => Err(e.into()),
        Ok(()) => {
            if behind.is_some() {
                tracing::info!(
                    "the database's schema is up to date (migration {}), in {:.1} s",
                    newest_migration::<DB>(),
                    started.elapsed().as_secs_f64()
                );
            }
            Ok(())
        }
    }
}

/// The last of the migrations `applied` to a database an earlier pipecrawl wrote, which
/// has some of this build's still to run; `None` for a new database (its migrations are quick) or
/// one that is up to date or newer. Migrating a large one takes minutes, which the log
/// says, or the crawl would seem to hang at its start.
fn earlier_schema<DB: Backend>(applied: &[AppliedMigration]) -> Option<i64> {
    let known = |version| DB::migrator().iter().any(|m| m.version == version);
    if applied.is_empty() || applied.iter().any(|m| !known(m.version)) {
        return None;
    }
    let pending = DB::migrator()
        .iter()
        .any(|m| !applied.iter().any(|a| a.version == m.version));
    pending
        .then(|| applied.iter().map(|m| m.version).max())
        .flatten()
}

/// The bytes `hex` spells (the constants of [`Backend::RECOMMENTED`]).
fn bytes_of_hex(hex: &str) -> Vec<u8> {
    hex.as_bytes()
        .chunks(2)
        .filter_map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use sqlx::{Postgres, Sqlite};

    use super::Backend;

    /// Every migration as released: (version, SHA-384 of the file in hex, which sqlx
    /// records and checks at every start). A released migration must not change, not
    /// even in a comment, or the databases it made are refused ("previously applied but
    /// has been modified"); a change that cannot be helped is listed in
    /// [`Backend::RECOMMENTED`] too. A new migration is added here.
    fn released<DB: Backend>() -> Vec<(i64, String)> {
        DB::migrator()
            .iter()
            .map(|m| {
                let hex = m.checksum.iter().map(|b| format!("{b:02x}")).collect();
                (m.version, hex)
            })
            .collect()
    }

    #[test]
    fn released_migrations_are_as_they_were_released() {
        let pinned = |rows: &[(i64, &str)]| -> Vec<(i64, String)> {
            rows.iter().map(|&(v, h)| (v, h.to_owned())).collect()
        };
        let sqlite = [
            (1, "165be274d2e76b9d579c2535db964b126c700479bee16d8b545d6c224bec5ded30d5538d5fcf7d17c833f17a6c3cb819"),
            (2, "3618acfa00936b53e9887b0a92a05fd39df4dfd51c22d3e75bfde1d2562fb0d222f4dfa1b50c51e56c09134e73876fb7"),
            (3, "d223bf186150c0a1a428db833b4d96f288c0f60fed58742f20f15f48a69aa0f10902ccf7adb1298186d07fc0907d4f32"),
            (4, "a5875b93d9056eb3ff735e0e54fdb3c668078e7c7760046cdd57c99500f66b6367bce0e4dc2c10fbbfe65d90fa983285"),
            (5, "d1b9fb61107bd40d2b2fd0dd1bb8b6cb1f04c921a62387560c5684041ed6154445f15a6269ba3880774b86ecedb1baaa"),
            (6, "973e1f6f9b819e8c46ef205217fef82d55aa6ce97958baca2eaec6b6779a7aa26438b3bce0b276e660a4823e9f895176"),
            (7, "017b606e4b7f3e1def233abe817286902cb740ef272ed57be33ab1c9eec4eec55b3df450ab4214128a364ba1bbd3edc1"),
            (8, "c31bc35755b2d317c823e07d5ca586440a7d86dba150662333d7bd067f4ea414039afdce05143905a9a127eaec6d429d"),
            (9, "6aba9257772d6102a40d9bfbd53f02891c1f8612599ecf35ae5ff467bb8ef85c4720f6822ec67a8f653a1b5e407d36fb"),
            (10, "61122a1f2f814f703c5c4a4ebc4773c4f3ba97fbd13bc99a81d98cd327b473b552dff176525fb17bba0a6b8144e06818"),
            (11, "bae1496fb35bde02a5cbe5e6997e15c8224b3e4d682a319904ca90dc4f43c82bc2dbc51a85708d141372bcd596982efa"),
            (12, "619e2a249051d48bbc15eaa9d4c2acc056c331a3ac146d804927152bca6bf46e67ea3e8e05a65fef81977466e1943f26"),
            (13, "20dbdeee082923aaccf2c5e6e442e558fadbaf0844e73bb2bbb0c423744f4d9225a12835457b54aca7f38f611ce8c2b7"),
            (14, "8d3ed7466c4d957f39ebf74b6b56e55b716c9f3ea298f74a3f4ebda422e8e75f5419109133532f15b27a6276eda8bdd9"),
            (15, "7a87504712c1286aedd57667d04ba0c7463cf6fbf0170889d96981787c8dde7b3e9c8d1f7400d4395e31efe9be679456"),
            (16, "31c6bcde84cc32376f795fb0478cbc62d4d7eb12229a36ed47b1dc3fd16ed29220f70004bc7a616a6e58c3a144b676be"),
            (17, "65a01f884c3089089bf65d0d159d368e1fdd1f743b80cad7ef97164b6d26a25cd886534d97000fe34f1da2988550948d"),
            (18, "0ab20808d94f36d1ba906a93a6a21f3690ff3f71f358e2100d861bed98d0d7f56b8bec2b600d3f104f48a9dd00083ec1"),
        ];
        assert_eq!(released::<Sqlite>(), pinned(&sqlite), "migrations/sqlite");
        let postgres = [
            (1, "89d761c613d21637c56803e61e1ddf3eb543ddf29495d33264a7bf31007c3d307e317b6fd8b451a8a0788b68a3eee7a9"),
            (2, "f08bf1345412b37c837b6272cf5ffeda3d84caa6383e2c9cb0eeed0f4edeb6ab248e95e1c5e0104b24fcaa59733971de"),
            (3, "2354b0821ad35c9fa18a92c556c9d305143c87cad237167a676d19735976591c73a0a3669878f663b78f4c792be39dcc"),
            (4, "78b61dd3c92dca413deb987c1e6c6379840afb7f444ee4b8a3b264da81d614203b77f324a5dfab2932b695cdd55c7f2d"),
            (5, "c197c1faf202998b2417d2820b573b8919b5174b735db78f65feb86e92de18b5c9b02b8cd67a2c4c0553b6b9eaa875b1"),
            (6, "0d3848d3c88b03d479c10100b73fe12ea32b2dda42a7093e67b87f10fb3db578c7f61fb91b3020dc757f5b545d267370"),
            (7, "4bc6e33ca191a185181e3902c55662526dcef03435e824778c2bad7b2d700cffe06619829351190a729c383f90ddefd7"),
            (8, "203e17023e9cfcd748dde375c772c1e5c44adccc7b5ba69bc931873330229e9f388e405746aa24291494c18736f1146a"),
            (9, "030b6bf27e81e67c82d83f436a92d892c488166fa6f4627c016bdb58acc2e3391331cec79c1afffd07b4def085c00168"),
            (10, "e7099466d133fd6e286cd438bb44e1efd7eee1a55c280ea9349e3a5431d00a77ca06a89d21a6e5ca2b00aeba35021765"),
            (11, "5182a64d712c2b9faa901274ade651beecf6e41b15deb83368a26147d49f93a22ad0624e82f74e1077804a19d023ce1a"),
            (12, "2904fe4f3cf4b46ab4e5b9020a96547fe95ad6653678bd99007e83ca3eed28775ccc11f2e6b33bc6165b4ac628376a27"),
            (13, "66800244632977a9c69faca59df12ff32d4cd352631c79d7acc4a031b879ee2c72b71ce593ed1d52906e4321ace497e3"),
            (14, "4cbbd888492e89643954750c4df22511819ebc0011c6301a011d25341d8d2fae023d52eba52644d4b084241e2054c77b"),
            (15, "831440e0a6c7352c468cfa9ee999e04efcf0bc926b8cac684c7373bd34d9fa71dae000f9eb675f26defef1964e6092a5"),
            (16, "30cbc0065d584cbca71fe4ae9227e0239458ed038ebd8d85fcc84eee8a6e1a5e67034995b00ba51ecf488b6dc5f13db2"),
        ];
        assert_eq!(
            released::<Postgres>(),
            pinned(&postgres),
            "migrations/postgres"
        );
    }

    /// The trigger that keeps `page_changes` (migration 17, PostgreSQL's 15, in the same
    /// words) calls a visit failed as [`crate::retry::is_transient`] does, or when it had
    /// no answer: a failure replacing a failure adds no row, and any change to or from an
    /// answer does. Every status, and every error kind, on either side.
    #[tokio::test]
    async fn the_page_changes_trigger_calls_failures_as_retries_do() {
        use std::str::FromStr;

        use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

        use crate::page::ErrorKind;
        use crate::retry::is_transient;

        let options = SqliteConnectOptions::from_str("sqlite::memory:")
            .expect("an in-memory database")
            .foreign_keys(false);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .expect("open it");
        Sqlite::migrator().run(&pool).await.expect("migrate");
        let mut outcomes: Vec<(Option<i64>, Option<&str>)> =
            (100..=599).map(|s| (Some(s), None)).collect();
        outcomes.push((None, None));
        for kind in ErrorKind::ALL {
            for status in [None, Some(200), Some(503)] {
                outcomes.push((status, Some(kind.as_str())));
            }
        }
        let failed = |(status, kind): (Option<i64>, Option<&str>)| {
            let status = status.and_then(|s| u16::try_from(s).ok());
            status.is_none() || is_transient(status, kind.and_then(ErrorKind::from_stored))
        };
        let no_answer = (None, Some(ErrorKind::Connect.as_str()));
        for (id, outcome) in (0_i64..).zip(&outcomes) {
            for (old, new) in [(*outcome, no_answer), (no_answer, *outcome)] {
                let visit = "UPDATE pages SET status = ?, error_kind = ?, changed_at = ?
                             WHERE id = ?";
                sqlx::query(
                    "INSERT INTO pages (id, url, depth, fetched_at, changed_at)
                     VALUES (?, ?, 0, 'a', 'a')",
                )
                .bind(id)
                .bind(format!("http://example.com/{id}"))
                .execute(&pool)
                .await
                .expect("a page");
                for (at, (status, kind)) in [("a", old), ("b", new)] {
                    sqlx::query(visit)
                        .bind(status)
                        .bind(kind)
                        .bind(at)
                        .bind(id)
                        .execute(&pool)
                        .await
                        .expect("a visit");
                }
                let kept: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM page_changes WHERE page_id = ? AND changed_at = 'b'",
                )
                .bind(id)
                .fetch_one(&pool)
                .await
                .expect("count");
                let expected = i64::from(!(failed(old) && failed(new)));
                assert_eq!(kept, expected, "{old:?} then {new:?}");
                sqlx::raw_sql("DELETE FROM pages; DELETE FROM page_changes")
                    .execute(&pool)
                    .await
                    .expect("gone");
            }
        }
    }
}
