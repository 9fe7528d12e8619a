//! SQLite's links, written through prepared statements of the store's own.
//!
//! Links are nearly all of what a crawl writes: 45 rows a page on the benchmark site, 2.3 M
//! in its throughput crawl. As multi-row `INSERT`s through sqlx, every batch's statement
//! was new SQL, so SQLite parsed and compiled thousands of `(?, ?, ?, ?)` each time: a
//! quarter of its thread's time in that crawl went to `sqlite3_prepare`. sqlx caches a
//! statement only by its whole text, and binds by copying each value. Here one
//! single-row `INSERT` is compiled once per batch and stepped once per link, binding the
//! strings where they lie, on the writer's own thread while it holds the connection.

use std::ffi::{c_char, c_int, CStr};
use std::ptr::{self, NonNull};

use libsqlite3_sys as ffi;
use sqlx::sqlite::SqliteConnection;

use crate::error::{DbContext, Error};
use crate::page::PageRecord;

/// Deletes the links of `revisited` pages and inserts those of `pages`, in the transaction
/// `conn` is in. The page rows must be there already (links reference them).
pub(super) async fn replace(
    conn: &mut SqliteConnection,
    revisited: &[i64],
    pages: &[&PageRecord],
) -> Result<(), Error> {
    let links = pages.iter().map(|p| p.links.len()).sum::<usize>();
    if revisited.is_empty() && links == 0 {
        return Ok(());
    }
    let mut handle = conn.lock_handle().await.doing("storing a batch of links")?;
    let db = handle.as_raw_handle();
    // SAFETY: `db` is the open connection, locked by `handle` for as long as the
    // statements below live; sqlx's thread waits for the lock meanwhile.
    unsafe { write(db, revisited, pages) }
}

/// # Safety
///
/// `db` must be an open connection that no other thread uses until this returns.
unsafe fn write(
    db: NonNull<ffi::sqlite3>,
    revisited: &[i64],
    pages: &[&PageRecord],
) -> Result<(), Error> {
    if !revisited.is_empty() {
        // SAFETY: as this function's.
        let mut delete =
            unsafe { Statement::prepare(db, "DELETE FROM links WHERE source_id = ?1") }?;
        for &source in revisited {
            delete.bind_i64(1, source)?;
            delete.run()?;
        }
    }
    // SAFETY: as this function's.
    let mut insert = unsafe {
        Statement::prepare(
            db,
            "INSERT INTO links (source_id, target_url, anchor_text, rel) VALUES (?1, ?2, ?3, ?4)",
        )
    }?;
    for page in pages {
        for link in &page.links {
            insert.bind_i64(1, page.job.id)?;
            insert.bind_text(2, Some(link.target.as_str()))?;
            insert.bind_text(3, Some(&link.anchor_text))?;
            insert.bind_text(4, link.rel.as_deref())?;
            insert.run()?;
        }
    }
    Ok(())
}

/// A prepared statement, finalized when dropped. Text is bound without a copy, so each
/// [`Statement::run`] must follow its binds while the bound strings still live: `write`
/// binds and runs a row at a time.
struct Statement {
    db: NonNull<ffi::sqlite3>,
    stmt: NonNull<ffi::sqlite3_stmt>,
}

impl Statement {
    /// # Safety
    ///
    /// As for [`write`], for as long as the statement lives.
    unsafe fn prepare(db: NonNull<ffi::sqlite3>, sql: &str) -> Result<Self, Error> {
        let mut stmt = ptr::null_mut();
        let len = c_int::try_from(sql.len()).map_err(|_| sqlite_error(db, ffi::SQLITE_TOOBIG))?;
        // SAFETY: `sql` is valid for `len` bytes; the out-pointer is a local.
        let rc = unsafe {
            ffi::sqlite3_prepare_v2(
                db.as_ptr(),
                sql.as_ptr().cast::<c_char>(),
                len,
                &mut stmt,
                ptr::null_mut(),
            )
        };
        match NonNull::new(stmt) {
            Some(stmt) if rc == ffi::SQLITE_OK => Ok(Self { db, stmt }),
            _ => Err(sqlite_error(db, rc)),
        }
    }

    fn bind_i64(&mut self, index: c_int, value: i64) -> Result<(), Error> {
        // SAFETY: `stmt` is a live statement of this connection.
        let rc = unsafe { ffi::sqlite3_bind_int64(self.stmt.as_ptr(), index, value) };
        self.check(rc)
    }

    /// Binds `value` (NULL for `None`) by reference: it must live until the next `run`.
    fn bind_text(&mut self, index: c_int, value: Option<&str>) -> Result<(), Error> {
        let stmt = self.stmt.as_ptr();
        // SAFETY: `stmt` is live; with SQLITE_STATIC SQLite reads the bytes in place,
        // which `write` keeps alive until the row is run and the statement reset.
        let rc = unsafe {
            match value {
                Some(text) => ffi::sqlite3_bind_text64(
                    stmt,
                    index,
                    text.as_ptr().cast::<c_char>(),
                    text.len() as u64,
                    ffi::SQLITE_STATIC(),
                    ffi::SQLITE_UTF8 as u8,
                ),
                None => ffi::sqlite3_bind_null(stmt, index),
            }
        };
        self.check(rc)
    }

    /// Runs the statement to its end and resets it for the next binds.
    fn run(&mut self) -> Result<(), Error> {
        // SAFETY: `stmt` is live and every parameter of it is bound.
        let rc = unsafe { ffi::sqlite3_step(self.stmt.as_ptr()) };
        // SAFETY: as above; resetting keeps the bindings, which the next row replaces.
        unsafe { ffi::sqlite3_reset(self.stmt.as_ptr()) };
        if rc == ffi::SQLITE_DONE {
            Ok(())
        } else {
            Err(sqlite_error(self.db, rc))
        }
    }

    fn check(&self, rc: c_int) -> Result<(), Error> {
        if rc == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(sqlite_error(self.db, rc))
        }
    }
}

impl Drop for Statement {
    fn drop(&mut self) {
        // SAFETY: `stmt` is live and finalized only here.
        unsafe { ffi::sqlite3_finalize(self.stmt.as_ptr()) };
    }
}

/// The connection's message for its last error, or the code's own when the connection
/// has none (a failure found before calling SQLite).
fn sqlite_error(db: NonNull<ffi::sqlite3>, rc: c_int) -> Error {
    // SAFETY: `db` is open; SQLite returns NUL-terminated strings that live until the
    // next call on the connection, and they are copied before it.
    let message = unsafe {
        let text = if ffi::sqlite3_errcode(db.as_ptr()) == ffi::SQLITE_OK {
            ffi::sqlite3_errstr(rc)
        } else {
            ffi::sqlite3_errmsg(db.as_ptr())
        };
        CStr::from_ptr(text).to_string_lossy().into_owned()
    };
    Error::Sqlite {
        doing: "storing a batch of links",
        code: rc,
        message,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::SystemTime;

    use sqlx::{Connection, Sqlite};
    use url::Url;

    use super::*;
    use crate::page::{CrawlJob, JobKind, Link};
    use crate::store::backend::Backend;

    fn page(id: i64, links: &[(&str, &str, Option<&str>)]) -> PageRecord {
        PageRecord {
            job: CrawlJob {
                id,
                url: Url::parse(&format!("http://h/{id}")).unwrap(),
                host: Arc::from("h"),
                depth: 0,
                priority: 0,
                redirect_hops: 0,
                attempts: 0,
                kind: JobKind::Page,
                previous: None,
            },
            status: Some(200),
            content_type: None,
            title: None,
            location: None,
            bytes: None,
            truncated: false,
            content_hash: None,
            etag: None,
            last_modified: None,
            fetched_at: SystemTime::now(),
            elapsed_ms: 0,
            error: None,
            canonical: None,
            noindex: false,
            nofollow: false,
            links: links
                .iter()
                .map(|(target, text, rel)| Link {
                    target: Url::parse(target).unwrap(),
                    anchor_text: (*text).to_owned(),
                    rel: rel.map(str::to_owned),
                })
                .collect(),
            discovered: Vec::new(),
            retry_in: None,
            not_modified: false,
            changed: true,
            recrawl_in: None,
        }
    }

    async fn links(conn: &mut SqliteConnection) -> Vec<(i64, String, String, Option<String>)> {
        sqlx::query_as("SELECT source_id, target_url, anchor_text, rel FROM links ORDER BY id")
            .fetch_all(conn)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn links_are_replaced_and_a_refused_row_says_why() {
        let mut conn = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        Sqlite::migrator().run(&mut conn).await.unwrap();
        sqlx::query(
            "INSERT INTO frontier (id, url, host, depth, priority) VALUES (1, 'http://h/1', 'h', 0, 0);
             INSERT INTO pages (id, url, depth, fetched_at, changed_at) VALUES (1, 'http://h/1', 0, '', '')",
        )
        .execute(&mut conn)
        .await
        .unwrap();

        let first = page(
            1,
            &[
                ("http://h/a", "A", None),
                ("http://h/b", "B b", Some("nofollow")),
            ],
        );
        replace(&mut conn, &[], &[&first]).await.unwrap();
        assert_eq!(
            links(&mut conn).await,
            [
                (1, "http://h/a".into(), "A".into(), None),
                (
                    1,
                    "http://h/b".into(),
                    "B b".into(),
                    Some("nofollow".into())
                ),
            ]
        );

        let revisit = page(1, &[("http://h/c", "C", None)]);
        replace(&mut conn, &[1], &[&revisit]).await.unwrap();
        assert_eq!(
            links(&mut conn).await,
            [(1, "http://h/c".into(), "C".into(), None)]
        );

        // Page 2 has no row: the link's reference to it is refused.
        let orphan = page(2, &[("http://h/d", "D", None)]);
        match replace(&mut conn, &[], &[&orphan]).await {
            Err(Error::Sqlite { message, .. }) => {
                assert!(message.contains("FOREIGN KEY"), "{message}")
            }
            other => panic!("expected SQLite's refusal, got {other:?}"),
        }
    }
}
