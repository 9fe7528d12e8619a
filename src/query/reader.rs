//! Running the questions' SQL on either database, and reading each row as [`Cell`]s.
//!
//! The questions build their SQL once, as a [`Statement`] with `$1`-style parameters
//! (PostgreSQL's, which SQLite reads too), and a [`Reader`] runs it on the connection
//! [`super::open`] made. Rows reach the caller as cells of the few kinds the output
//! formats know, whatever the column types of the database were.

use std::ffi::c_int;
use std::fmt::Display;
use std::path::PathBuf;
use std::ptr;

use futures_util::TryStreamExt;
use libsqlite3_sys as ffi;
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::sqlite::{SqliteConnection, SqliteRow};
use sqlx::{
    Column, Connection as _, Database, Encode, Row, Statement as _, Type, TypeInfo, ValueRef,
};

use super::dialect::Dialect;
use super::error::{Doing, QueryError};
use super::output::Cell;

/// SQL and the values bound to its parameters.
#[derive(Debug, Clone, Default)]
pub struct Statement {
    sql: String,
    binds: Vec<Bind>,
}

/// A value bound to a parameter.
#[derive(Debug, Clone)]
pub enum Bind {
    Int(i64),
    Text(String),
}

impl From<i64> for Bind {
    fn from(value: i64) -> Self {
        Self::Int(value)
    }
}

impl From<String> for Bind {
    fn from(value: String) -> Self {
        Self::Text(value)
    }
}

impl From<&str> for Bind {
    fn from(value: &str) -> Self {
        Self::Text(value.to_owned())
    }
}

impl Statement {
    pub fn new(sql: impl Into<String>) -> Self {
        Self {
            sql: sql.into(),
            binds: Vec::new(),
        }
    }

    pub fn push(&mut self, sql: impl Display) -> &mut Self {
        use std::fmt::Write as _;
        // Writing into a String cannot fail.
        let _ = write!(self.sql, "{sql}");
        self
    }

    /// Appends a parameter (`$n`) bound to `value`.
    pub fn push_bind(&mut self, value: impl Into<Bind>) -> &mut Self {
        self.binds.push(value.into());
        let n = self.binds.len();
        self.push(format_args!("${n}"))
    }

    pub fn sql(&self) -> &str {
        &self.sql
    }
}

#[cfg(test)]
impl Statement {
    /// This statement under `EXPLAIN QUERY PLAN`, for tests of how SQLite reads it.
    pub fn explained(&self) -> Self {
        Self {
            sql: format!("EXPLAIN QUERY PLAN {}", self.sql),
            binds: self.binds.clone(),
        }
    }
}

/// The statement as an sqlx query for database `DB`, its values bound. On PostgreSQL it
/// is a named statement: sqlx runs queries of its own on the connection to look up a
/// column type it does not know (`tsvector`, `xml`), which would close an unnamed one
/// before it ran.
fn bound<DB>(st: &Statement, dialect: Dialect) -> sqlx::query::Query<'static, DB, DB::Arguments>
where
    DB: Database + sqlx::database::HasStatementCache,
    i64: for<'t> Encode<'t, DB> + Type<DB>,
    String: for<'t> Encode<'t, DB> + Type<DB>,
{
    let mut query =
        sqlx::query(sqlx::AssertSqlSafe(st.sql.clone())).persistent(dialect == Dialect::Postgres);
    for bind in &st.binds {
        query = match bind {
            Bind::Int(n) => query.bind(*n),
            Bind::Text(s) => query.bind(s.clone()),
        };
    }
    query
}

/// A read-only connection to a crawl's database (see [`super::open`]).
pub struct Reader {
    conn: Connection,
    /// The database as the user named it (a PostgreSQL URL without its password): damage
    /// a question runs into past the schema is the file's fault, named as at open.
    database: String,
    /// The crawl schema's tables, as opened.
    tables: Vec<String>,
    /// The SQLite file beside which no write-ahead log was when the connection opened,
    /// so that one there at [`Reader::close`] may be this connection's to remove.
    no_log_before: Option<PathBuf>,
}

/// The connection of a [`Reader`].
pub enum Connection {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

/// A statement's columns and parameters: [`Reader::shape`].
pub struct Shape {
    /// Their names, in order.
    pub columns: Vec<String>,
    /// Whether it holds a placeholder (`?`, `?1`, `:name`, `$1`), which a statement run as
    /// given cannot fill.
    pub has_parameters: bool,
}

/// Runs `$body` with `$conn` bound to the reader's connection and `$cells` to the
/// function reading its rows, whichever the database.
macro_rules! on_reader {
    ($reader:expr, $conn:ident, $cells:ident => $body:expr) => {
        match &mut $reader.conn {
            Connection::Sqlite($conn) => {
                let $cells = sqlite_cells;
                $body
            }
            Connection::Postgres($conn) => {
                let $cells = postgres_cells;
                $body
            }
        }
    };
}

impl Reader {
    pub(super) fn new(conn: Connection, database: String) -> Self {
        Self {
            conn,
            database,
            tables: Vec::new(),
            no_log_before: None,
        }
    }

    /// Notes that the SQLite file at `path` had no write-ahead log beside it before this
    /// connection opened it.
    pub(super) fn opened_without_log(mut self, path: PathBuf) -> Self {
        self.no_log_before = Some(path);
        self
    }

    /// Closes the connection and leaves the database's directory as it was found (see
    /// [`super::open::remove_log_made`]). Failures are not the answer's: it is out.
    pub async fn close(self) {
        let closed = match self.conn {
            Connection::Sqlite(conn) => conn.close().await,
            Connection::Postgres(conn) => conn.close().await,
        };
        if let (Ok(()), Some(path)) = (closed, self.no_log_before) {
            super::open::remove_log_made(&path).await;
        }
    }

    pub fn dialect(&self) -> Dialect {
        match self.conn {
            Connection::Sqlite(_) => Dialect::Sqlite,
            Connection::Postgres(_) => Dialect::Postgres,
        }
    }

    /// The SQLite connection, for what SQLite does best itself (`export`'s lines).
    pub(crate) fn sqlite(&mut self) -> Option<&mut SqliteConnection> {
        match &mut self.conn {
            Connection::Sqlite(conn) => Some(conn),
            Connection::Postgres(_) => None,
        }
    }

    /// Runs `st` and calls `each` with the column names and the cells of every row, in
    /// order, until it returns `false`. Returns whether there was any row.
    pub async fn each_row<F>(&mut self, st: &Statement, mut each: F) -> Result<bool, QueryError>
    where
        F: FnMut(&[String], &[Cell<'_>]) -> Result<bool, QueryError>,
    {
        let dialect = self.dialect();
        let database = &self.database;
        let failed = |e| QueryError::from_sql(dialect, database, e);
        on_reader!(self, conn, cells => {
            let mut rows = bound(st, dialect).fetch(&mut *conn);
            let mut names: Option<Vec<String>> = None;
            while let Some(row) = rows.try_next().await.map_err(failed)? {
                let names = names.get_or_insert_with(|| {
                    row.columns().iter().map(|c| c.name().to_owned()).collect()
                });
                if !each(names, &cells(&row, database)?)? {
                    break;
                }
            }
            Ok(names.is_some())
        })
    }

    /// Refuses SQL of more than one statement before any of it runs. PostgreSQL's server
    /// does so itself (sqlx sends the SQL as one prepared statement); SQLite would run
    /// the statements one after another and hand over all their rows as one answer,
    /// under the first statement's column names.
    pub async fn refuse_many_statements(&mut self, st: &Statement) -> Result<(), QueryError> {
        let Some(conn) = self.sqlite() else {
            return Ok(());
        };
        let mut handle = conn.lock_handle().await.doing("reading the statement")?;
        let db = handle.as_raw_handle().as_ptr();
        // SAFETY: `db` is the open connection's handle, locked by `handle` so that no
        // other thread uses it during the call.
        if unsafe { more_than_one_statement(db, st.sql()) } {
            return Err(QueryError::ManyStatements {
                engine: Dialect::Sqlite.engine(),
                message: "more SQL follows the first statement".to_owned(),
            });
        }
        Ok(())
    }

    /// The names of the columns `st` would answer with, without running it.
    pub async fn column_names(&mut self, st: &Statement) -> Result<Vec<String>, QueryError> {
        Ok(self.shape(st).await?.columns)
    }

    /// What `st` would answer with, and what it would need, without running it.
    pub async fn shape(&mut self, st: &Statement) -> Result<Shape, QueryError> {
        let dialect = self.dialect();
        let database = &self.database;
        on_reader!(self, conn, _cells => {
            let prepared = sqlx::Executor::prepare(&mut *conn, sqlx::SqlSafeStr::into_sql_str(sqlx::AssertSqlSafe(st.sql.clone())))
                .await
                .map_err(|e| QueryError::from_sql(dialect, database, e))?;
            Ok(Shape {
                columns: prepared.columns().iter().map(|c| c.name().to_owned()).collect(),
                has_parameters: match prepared.parameters() {
                    Some(sqlx::Either::Left(types)) => !types.is_empty(),
                    Some(sqlx::Either::Right(count)) => count > 0,
                    None => false,
                },
            })
        })
    }

    /// The first column of the first row as an integer (`None` for NULL or no row).
    pub async fn integer(&mut self, st: &Statement) -> Result<Option<i64>, QueryError> {
        let mut value = None;
        self.each_row(st, |_, cells| {
            value = match cells.first() {
                Some(Cell::Int(n)) => Some(*n),
                _ => None,
            };
            Ok(false)
        })
        .await?;
        Ok(value)
    }

    /// The database as the user named it.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// Whether the crawl's schema held the table `name` when [`super::open`] read its
    /// tables: one a later migration made is missing from a database last written before it.
    pub fn has_table(&self, name: &str) -> bool {
        self.tables.iter().any(|t| t == name)
    }

    /// Notes the tables [`super::open`] found in the crawl's schema.
    pub(super) fn found_tables(&mut self, tables: Vec<String>) {
        self.tables = tables;
    }

    /// Runs a statement that returns nothing of interest (settings, `BEGIN`).
    pub async fn execute(&mut self, sql: &'static str) -> Result<(), QueryError> {
        let dialect = self.dialect();
        let database = &self.database;
        on_reader!(self, conn, _cells => {
            sqlx::query(sql)
                .execute(&mut *conn)
                .await
                .map(drop)
                .map_err(|e| QueryError::from_sql(dialect, database, e))
        })
    }
}

/// Whether SQLite reads more than one statement in `sql`: each is compiled, never run.
/// Comments and empty statements (`;;`) are none. SQL whose first statement does not
/// compile is left for running it to report; text after a first statement that does not
/// compile is another statement all the same.
///
/// # Safety
///
/// `db` is an open connection that no other thread uses during the call.
unsafe fn more_than_one_statement(db: *mut ffi::sqlite3, sql: &str) -> bool {
    let mut rest = sql.as_bytes();
    let mut statements = 0;
    while !rest.is_empty() && statements < 2 {
        let Ok(len) = c_int::try_from(rest.len()) else {
            return false;
        };
        let (mut stmt, mut tail) = (ptr::null_mut(), ptr::null());
        // SAFETY: `rest` is valid for `len` bytes; the out-pointers are locals.
        let rc =
            unsafe { ffi::sqlite3_prepare_v2(db, rest.as_ptr().cast(), len, &mut stmt, &mut tail) };
        if !stmt.is_null() {
            statements += 1;
            // SAFETY: `stmt` was compiled just now and is finalized once, never run.
            unsafe { ffi::sqlite3_finalize(stmt) };
        }
        if rc != ffi::SQLITE_OK {
            return statements > 0;
        }
        // SQLite points `tail` past the statement it compiled, within `rest`.
        let read = (tail as usize).saturating_sub(rest.as_ptr() as usize);
        match rest.get(read..) {
            Some(after) if read > 0 => rest = after,
            _ => break,
        }
    }
    statements > 1
}

/// The row's values with the types SQLite stored them as (a column may hold several).
fn sqlite_cells<'r>(row: &'r SqliteRow, database: &str) -> Result<Vec<Cell<'r>>, QueryError> {
    let cell = |i: usize| -> Result<Cell<'_>, sqlx::Error> {
        let raw = row.try_get_raw(i)?;
        if raw.is_null() {
            return Ok(Cell::Null);
        }
        Ok(match raw.type_info().name() {
            "INTEGER" => Cell::Int(row.try_get(i)?),
            "REAL" => Cell::Real(row.try_get(i)?),
            "BLOB" => Cell::Blob(row.try_get_unchecked(i)?),
            // SQLite does not check that text is UTF-8.
            _ => match row.try_get::<&str, _>(i) {
                Ok(text) => Cell::Text(text),
                Err(_) => Cell::NotUtf8(row.try_get_unchecked(i)?),
            },
        })
    };
    (0..row.len())
        .map(|i| cell(i).map_err(|e| QueryError::from_sql(Dialect::Sqlite, database, e)))
        .collect()
}

/// The row's values by their PostgreSQL types. Types a table, CSV or JSON cannot show
/// as they are (times, arrays, …) are refused with the advice to cast them to text.
fn postgres_cells<'r>(row: &'r PgRow, database: &str) -> Result<Vec<Cell<'r>>, QueryError> {
    let failed = |e| QueryError::from_sql(Dialect::Postgres, database, e);
    row.columns()
        .iter()
        .enumerate()
        .map(|(i, column)| {
            let raw = row.try_get_raw(i).map_err(failed)?;
            if raw.is_null() {
                return Ok(Cell::Null);
            }
            let type_name = raw.type_info().name().to_owned();
            // Values arrive in PostgreSQL's binary format.
            let bytes = || raw.as_bytes().map_err(sqlx::Error::Decode).map_err(failed);
            Ok(match type_name.as_str() {
                "INT2" => Cell::Int(row.try_get::<i16, _>(i).map_err(failed)?.into()),
                "INT4" => Cell::Int(row.try_get::<i32, _>(i).map_err(failed)?.into()),
                "INT8" => Cell::Int(row.try_get(i).map_err(failed)?),
                "OID" => Cell::Int(
                    row.try_get::<sqlx::postgres::types::Oid, _>(i)
                        .map_err(failed)?
                        .0
                        .into(),
                ),
                "FLOAT4" => Cell::Real(row.try_get::<f32, _>(i).map_err(failed)?.into()),
                "FLOAT8" => Cell::Real(row.try_get(i).map_err(failed)?),
                "NUMERIC" => numeric(bytes()?).ok_or_else(|| QueryError::Database {
                    doing: "reading a NUMERIC value",
                    message: format!(
                        "column `{}` holds a value that is not a number",
                        column.name()
                    ),
                })?,
                "BOOL" => Cell::Bool(row.try_get(i).map_err(failed)?),
                "TEXT" | "VARCHAR" | "CHAR" | "NAME" | "UNKNOWN" => {
                    Cell::Text(row.try_get(i).map_err(failed)?)
                }
                // Binary JSON is the JSON text, which sqlx decodes only into its own
                // JSON types; binary JSONB is a version byte (1), then the text.
                "JSON" => json_text(bytes()?)?,
                "JSONB" => match bytes()?.split_first() {
                    Some((1, text)) => json_text(text)?,
                    _ => return Err(unprintable(column.name(), &type_name)),
                },
                "BYTEA" => Cell::Blob(bytes()?),
                _ => return Err(unprintable(column.name(), &type_name)),
            })
        })
        .collect()
}

/// A JSON or JSONB value's text as a cell.
fn json_text(text: &[u8]) -> Result<Cell<'_>, QueryError> {
    std::str::from_utf8(text)
        .map(Cell::Text)
        .map_err(|e| QueryError::Database {
            doing: "reading a JSON value",
            message: e.to_string(),
        })
}

fn unprintable(column: &str, type_name: &str) -> QueryError {
    QueryError::Unprintable {
        column: column.to_owned(),
        type_name: type_name.to_owned(),
    }
}

/// A NUMERIC in PostgreSQL's binary format as a cell: an integer when it has no decimal
/// places and fits, else the nearest float. `sum()` of integers is NUMERIC in
/// PostgreSQL (an integer in SQLite), so whole numbers stay integers.
///
/// The format: the count of base-10000 digits, the weight of the first (its power of
/// 10000), the sign, the decimal places to show, then the digits.
fn numeric(bytes: &[u8]) -> Option<Cell<'static>> {
    let word = |i: usize| -> Option<u16> {
        let pair = bytes.get(i * 2..i * 2 + 2)?;
        Some(u16::from_be_bytes([pair[0], pair[1]]))
    };
    let count = usize::from(word(0)?);
    let weight = i64::from(word(1)? as i16);
    let sign = word(2)?;
    let places = usize::from(word(3)?);
    let digit = |power: i64| -> Option<u16> {
        // The digit with this power of 10000, zero where none is stored.
        let index = weight - power;
        if index < 0 || index >= count as i64 {
            return Some(0);
        }
        let index = usize::try_from(index).ok()?;
        word(4 + index).filter(|d| *d < 10_000)
    };
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Some(Cell::Real(f64::NAN)),
        0xD000 => return Some(Cell::Real(f64::INFINITY)),
        0xF000 => return Some(Cell::Real(f64::NEG_INFINITY)),
        _ => return None,
    }
    let mut text = String::new();
    if sign == 0x4000 {
        text.push('-');
    }
    if weight < 0 {
        text.push('0');
    }
    for power in (0..=weight).rev() {
        let d = digit(power)?;
        if power == weight {
            text.push_str(&d.to_string());
        } else {
            text.push_str(&format!("{d:04}"));
        }
    }
    if places > 0 {
        text.push('.');
        let mut fraction = String::new();
        let mut power = -1;
        while fraction.len() < places {
            fraction.push_str(&format!("{:04}", digit(power)?));
            power -= 1;
        }
        fraction.truncate(places);
        text.push_str(&fraction);
    }
    if places == 0 {
        if let Ok(n) = text.parse::<i64>() {
            return Some(Cell::Int(n));
        }
    }
    text.parse::<f64>().ok().map(Cell::Real)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PostgreSQL's binary NUMERIC from its parts.
    fn encoded(weight: i16, negative: bool, places: u16, digits: &[u16]) -> Vec<u8> {
        let mut bytes = Vec::new();
        let count = u16::try_from(digits.len()).expect("few digits");
        let sign: u16 = if negative { 0x4000 } else { 0 };
        for word in [count, weight as u16, sign, places] {
            bytes.extend(word.to_be_bytes());
        }
        for d in digits {
            bytes.extend(d.to_be_bytes());
        }
        bytes
    }

    #[test]
    fn whole_numerics_are_integers_and_the_rest_floats() {
        assert_eq!(
            numeric(&encoded(0, false, 0, &[1380])),
            Some(Cell::Int(1380))
        );
        assert_eq!(
            numeric(&encoded(1, true, 0, &[1234, 5678])),
            Some(Cell::Int(-12_345_678))
        );
        // 100000000 is stored as one digit of weight 2.
        assert_eq!(
            numeric(&encoded(2, false, 0, &[1])),
            Some(Cell::Int(100_000_000))
        );
        assert_eq!(
            numeric(&encoded(0, false, 1, &[3, 6000])),
            Some(Cell::Real(3.6))
        );
        assert_eq!(
            numeric(&encoded(-1, false, 3, &[610])),
            Some(Cell::Real(0.061))
        );
        assert_eq!(numeric(&encoded(0, false, 0, &[])), Some(Cell::Int(0)));
        // Beyond i64: a float.
        assert_eq!(numeric(&encoded(5, false, 0, &[1])), Some(Cell::Real(1e20)));
    }

    #[test]
    fn a_malformed_numeric_is_no_number() {
        assert_eq!(numeric(&[0, 1]), None);
        assert_eq!(numeric(&encoded(0, false, 0, &[10_000])), None);
    }

    #[test]
    fn parameters_are_numbered_in_order() {
        let mut st = Statement::new("SELECT ");
        st.push_bind(1).push(" + ").push_bind("x");
        assert_eq!(st.sql(), "SELECT $1 + $2");
        assert_eq!(st.binds.len(), 2);
    }
}
