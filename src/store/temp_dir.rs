//! Where SQLite puts the temporary files of the crawl's reads. The readers' questions
//! over the whole frontier (`/stats` groups it by host) sort in files, not memory; SQLite
//! puts those in the first of its usual directories this user may write, and with none
//! (a container's read-only root, `/tmp` with it) each such question failed with "disk
//! I/O error", `/stats` answering 503 for as long as the service ran.

use std::path::Path;

use sqlx::{Pool, Sqlite};

use super::full_disk::{sqlite_temp_dir, writable_dir};
use crate::error::{DbContext, Error};

/// Has SQLite put its temporary files in the directory of the database at `database`,
/// which the crawl writes already, when none of its usual directories may be written.
/// SQLite keeps the directory for the whole process, as there is one for all of its
/// connections: it is set here, before the store's readers exist, and only where no
/// temporary file could have been made before.
pub(super) async fn beside_database_when_none(
    pool: &Pool<Sqlite>,
    database: &Path,
) -> Result<(), Error> {
    if sqlite_temp_dir().is_some() || writable_dir(Path::new(".")) {
        return Ok(());
    }
    let Some(dir) = database.parent().filter(|dir| !dir.as_os_str().is_empty()) else {
        return Ok(());
    };
    let Some(text) = dir.to_str() else {
        return Ok(());
    };
    let pragma = format!(
        "PRAGMA temp_store_directory = '{}'",
        text.replace('\'', "''")
    );
    sqlx::query(sqlx::AssertSqlSafe(pragma))
        .execute(pool)
        .await
        .doing("naming SQLite's temporary directory")?;
    tracing::info!(
        "no directory SQLite may write its temporary files in ({}): they go to {}, beside \
         the database (SQLITE_TMPDIR names another)",
        super::sqlite_temp_dirs_tried(),
        dir.display()
    );
    Ok(())
}
