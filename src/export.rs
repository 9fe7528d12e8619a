//! `pipecrawl export`: the `pages` and `links` tables in full, as CSV or JSON Lines files,
//! for tools that do not read SQLite.
//!
//! Rows stream from the database through a buffered file writer, so memory stays flat
//! however large the database. Both files are read in one transaction, so they agree
//! with each other even while a crawl writes; each is written under a temporary name and
//! renamed when complete, so a file with the final name is never half written.

use std::fs::{self, File};
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use sqlx::{QueryBuilder, Sqlite};

use crate::query::open::{self, CRAWL_TABLES};
use crate::query::output::{self, Format};
use crate::query::{Doing, QueryError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// RFC 4180 with a header row: `pages.csv`, `links.csv`.
    Csv,
    /// One JSON object per line: `pages.jsonl`, `links.jsonl`.
    Jsonl,
}

impl ExportFormat {
    fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Jsonl => "jsonl",
        }
    }

    fn format(self) -> Format {
        match self {
            Self::Csv => Format::Csv,
            Self::Jsonl => Format::Jsonl,
        }
    }
}

/// A file written and how many rows it holds.
#[derive(Debug, Clone)]
pub struct Exported {
    pub path: PathBuf,
    pub rows: u64,
}

/// The tables exported, in the order written, each in full and in id order.
const TABLES: [&str; 2] = ["pages", "links"];

/// Writes every row of `pages` and `links` in `db` to files in `dir` (created if needed).
pub async fn export(
    db: &Path,
    format: ExportFormat,
    dir: &Path,
) -> Result<Vec<Exported>, QueryError> {
    let mut conn = open::open(db, CRAWL_TABLES).await?;
    fs::create_dir_all(dir).map_err(|source| QueryError::File {
        path: dir.to_owned(),
        source,
    })?;
    // Reading in order needs no memory map, and without one the process's resident
    // memory shows what it really holds: a row and a write buffer.
    sqlx::query("PRAGMA mmap_size = 0")
        .execute(&mut conn)
        .await
        .doing("setting up the export")?;
    let mut exported = Vec::new();
    sqlx::query("BEGIN")
        .execute(&mut conn)
        .await
        .doing("starting a consistent read")?;
    for table in TABLES {
        let path = dir.join(format!("{table}.{}", format.extension()));
        let partial = dir.join(format!(".{table}.{}.part", format.extension()));
        let file_error = |source| QueryError::File {
            path: partial.clone(),
            source,
        };
        let file = File::create(&partial).map_err(file_error)?;
        let mut writer = BufWriter::with_capacity(1 << 20, file);
        let mut q = QueryBuilder::<Sqlite>::new(format!("SELECT * FROM {table} ORDER BY id"));
        let streamed = {
            let mut sink = output::sink(format.format(), &mut writer, 0);
            output::stream(&mut conn, &mut q, sink.as_mut(), None)
                .await
                .map_err(|e| match e {
                    QueryError::Output(source) => file_error(source),
                    other => other,
                })?
        };
        writer
            .into_inner()
            .map_err(|e| file_error(e.into_error()))?
            .sync_all()
            .map_err(file_error)?;
        fs::rename(&partial, &path).map_err(|source| QueryError::File {
            path: path.clone(),
            source,
        })?;
        exported.push(Exported {
            path,
            rows: streamed.rows,
        });
    }
    Ok(exported)
}
