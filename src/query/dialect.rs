//! Where SQLite's SQL and PostgreSQL's differ in the questions, in one place.
//!
//! Each question writes its SQL once and asks the [`Dialect`] for the few pieces that
//! cannot be written for both. Text compares the same way in both (PostgreSQL's text
//! columns use the "C" collation, byte order, as SQLite does: see
//! `migrations/postgres/0002_query.sql`), so sorting and URL ranges need nothing here.

use super::reader::Statement;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// What `search` looks in: page titles, or the anchor texts of links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchIn {
    Titles,
    Anchors,
}

impl Dialect {
    /// The name of the engine, for messages that quote it.
    pub fn engine(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
        }
    }

    /// Tables the questions read beyond the crawl's own: SQLite's full-text indexes are
    /// tables of their own, PostgreSQL's are indexes on `pages` and `anchors`; only
    /// SQLite stages new URLs (see [`Dialect::staged_urls`]).
    pub fn query_tables(self) -> &'static [&'static str] {
        match self {
            Self::Sqlite => &[
                "inlinks",
                "anchors",
                "anchors_fts",
                "pages_fts",
                "frontier_staged",
            ],
            Self::Postgres => &["inlinks", "anchors"],
        }
    }

    /// Now, in unix milliseconds as `frontier` writes its times (`not_before`,
    /// `recrawl_at`), by the database's clock.
    pub fn now_ms(self) -> &'static str {
        match self {
            Self::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)",
            Self::Postgres => "(extract(epoch FROM now()) * 1000)::bigint",
        }
    }

    /// The URLs found and not yet in `frontier`, as an SQL expression. SQLite's writer
    /// stages them in `frontier_staged` until the queue needs them (see
    /// `migrations/sqlite/0006_frontier_staged.sql`); every merge empties it and SQLite
    /// numbers rows from 1 again, so the largest rowid is the count, read without
    /// counting. A URL may be staged twice, or be known already: until the merge sorts
    /// that out, this is the most the queue will grow by. PostgreSQL's nodes add what
    /// they find to `frontier` at once (the store's `Backend::SHARED`).
    pub fn staged_urls(self) -> &'static str {
        match self {
            Self::Sqlite => "(SELECT coalesce(max(rowid), 0) FROM frontier_staged)",
            Self::Postgres => "0",
        }
    }

    /// `column` as a sort key that does not walk the column's index. SQLite's planner
    /// walks an index in order whenever one fits the ORDER BY, however few rows match
    /// the filters, unless the key is an expression (`+url`); PostgreSQL weighs both.
    pub fn unindexed(self, column: &str) -> String {
        match self {
            Self::Sqlite => format!("+{column}"),
            Self::Postgres => column.to_owned(),
        }
    }

    /// `LIKE` ignoring the case of ASCII letters (SQLite's `LIKE` does; PostgreSQL's
    /// `ILIKE`, with the C collation, does just that).
    pub fn like_any_case(self) -> &'static str {
        match self {
            Self::Sqlite => "LIKE",
            Self::Postgres => "ILIKE",
        }
    }

    /// An inner join the planner must do in the order written. In SQLite `CROSS JOIN`
    /// means that; PostgreSQL has no such hint (and no `ON` after `CROSS JOIN`), and
    /// its planner estimates the few dead targets well anyway.
    pub fn ordered_join(self) -> &'static str {
        match self {
            Self::Sqlite => "CROSS JOIN",
            Self::Postgres => "JOIN",
        }
    }

    /// The texts of `column` joined by `separator` (a literal), in their order.
    pub fn joined(self, column: &str, separator: &str) -> String {
        match self {
            Self::Sqlite => format!("group_concat({column}, '{separator}' ORDER BY {column})"),
            Self::Postgres => format!("string_agg({column}, '{separator}' ORDER BY {column})"),
        }
    }

    /// `expr` rounded to `places` decimals: SQLite's is a float, PostgreSQL's a NUMERIC
    /// (it rounds only those to places), which is read as a float (see
    /// [`super::reader`]). Not cast to a float: beside integers in a `UNION`, a float
    /// column would make them floats too, a NUMERIC keeps them whole.
    pub fn round(self, expr: &str, places: u32) -> String {
        match self {
            Self::Sqlite => format!("round({expr}, {places})"),
            Self::Postgres => format!("round(CAST({expr} AS numeric), {places})"),
        }
    }

    /// The sum of `column` (whole numbers, none negative) over `table`, as a scalar
    /// subquery: exact while it fits in 64 bits, else the nearest float.
    ///
    /// PostgreSQL's `sum()` of integers is a NUMERIC, which is read that way (see
    /// [`super::reader`]). SQLite's stops the whole statement with "integer overflow",
    /// and a server decides `pages.bytes` (a declared `Content-Length` of 2^63 - 1), so
    /// there the values are summed in halves of 32 bits, which cannot overflow, and put
    /// together only when the total fits.
    pub fn total(self, column: &str, table: &str) -> String {
        match self {
            Self::Sqlite => format!(
                "(SELECT CASE WHEN high < 2147483648 THEN (high << 32) + low
                              ELSE high * 4294967296.0 + low END
                  FROM (SELECT high + (low >> 32) AS high, low & 4294967295 AS low
                        FROM (SELECT coalesce(sum({column} >> 32), 0) AS high,
                                     coalesce(sum({column} & 4294967295), 0) AS low
                              FROM {table}) AS halves) AS carried)"
            ),
            Self::Postgres => format!("(SELECT coalesce(sum({column}), 0) FROM {table})"),
        }
    }

    /// Seconds since 1970 of an RFC 3339 text (`pages.fetched_at`), with fractions.
    pub fn epoch(self, text: &str) -> String {
        match self {
            Self::Sqlite => format!("unixepoch({text}, 'subsec')"),
            Self::Postgres => format!("extract(epoch FROM CAST({text} AS timestamptz))"),
        }
    }

    /// Whole seconds since 1970 of an RFC 3339 text, rounded down.
    pub fn whole_epoch(self, text: &str) -> String {
        match self {
            Self::Sqlite => format!("unixepoch({text})"),
            Self::Postgres => format!("CAST(floor({}) AS bigint)", self.epoch(text)),
        }
    }

    /// The RFC 3339 text of `seconds` since 1970, in UTC: `2025-01-31T12:00:00Z`, or with
    /// `millis`, `2025-01-31T12:00:00.000Z` (as `pages.fetched_at` is spelled).
    pub fn utc_text(self, seconds: &str, millis: bool) -> String {
        match (self, millis) {
            (Self::Sqlite, false) => format!("strftime('%Y-%m-%dT%H:%M:%SZ', {seconds}, 'unixepoch')"),
            (Self::Sqlite, true) => format!("strftime('%Y-%m-%dT%H:%M:%fZ', {seconds}, 'unixepoch')"),
            (Self::Postgres, false) => format!(
                "to_char(to_timestamp({seconds}) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
            ),
            (Self::Postgres, true) => format!(
                "to_char(to_timestamp({seconds}) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
            ),
        }
    }

    /// Where `needle` first occurs in `text`, counting from 1 (0: nowhere).
    pub fn position(self, needle: &str, text: &str) -> String {
        match self {
            Self::Sqlite => format!("instr({text}, {needle})"),
            Self::Postgres => format!("strpos({text}, {needle})"),
        }
    }

    /// `words` as a full-text query meaning "all of these", whatever characters they hold:
    /// each word is quoted, so query syntax in them is just text; a trailing `*` matches
    /// any ending. FTS5's syntax for SQLite, `to_tsquery`'s for PostgreSQL.
    pub fn text_query(self, words: &[String]) -> Option<String> {
        let terms: Vec<String> = words
            .iter()
            .flat_map(|w| w.split_whitespace())
            .filter_map(|word| {
                let (stem, prefix) = match word.strip_suffix('*') {
                    Some(stem) => (stem, true),
                    None => (word, false),
                };
                if stem.is_empty() {
                    return None;
                }
                Some(match self {
                    Self::Sqlite => {
                        let star = if prefix { "*" } else { "" };
                        format!("\"{}\"{star}", stem.replace('"', "\"\""))
                    }
                    Self::Postgres => {
                        let star = if prefix { ":*" } else { "" };
                        format!("'{}'{star}", stem.replace('\\', "\\\\").replace('\'', "''"))
                    }
                })
            })
            .collect();
        let and = match self {
            Self::Sqlite => " ",
            Self::Postgres => " & ",
        };
        (!terms.is_empty()).then(|| terms.join(and))
    }

    /// A statement counting what of `query` (from [`Dialect::text_query`]) the index can
    /// match, where the engine may skip words; `None` where none is skipped. PostgreSQL's
    /// English configuration drops stop words ("the", "who", "and") and a query left
    /// with none matches nothing, saying so only in a notice; FTS5 keeps every word.
    pub fn searched_terms(self, query: &str) -> Option<Statement> {
        match self {
            Self::Sqlite => None,
            Self::Postgres => {
                let mut q = Statement::new("SELECT numnode(to_tsquery('english', ");
                q.push_bind(query).push("))");
                Some(q)
            }
        }
    }

    /// The matches of `query` (from [`Dialect::text_query`]) in `within`, as `(id, rank)`,
    /// lowest rank best, ranking only the first `ranked` matches by id.
    ///
    /// SQLite ranks by BM25 in its FTS5 tables; PostgreSQL by `ts_rank` over the GIN
    /// indexes of `migrations/postgres/0001_init.sql` (the expressions here must be the
    /// indexed ones, or the index is not used), negated to sort the same way.
    pub fn push_ranked_hits(self, q: &mut Statement, within: SearchIn, query: &str, ranked: i64) {
        let (table, id, vector) = match (self, within) {
            (Self::Sqlite, SearchIn::Titles) => ("pages_fts", "rowid", ""),
            (Self::Sqlite, SearchIn::Anchors) => ("anchors_fts", "rowid", ""),
            (Self::Postgres, SearchIn::Titles) => {
                ("pages", "id", "to_tsvector('english', coalesce(title, ''))")
            }
            (Self::Postgres, SearchIn::Anchors) => {
                ("anchors", "id", "to_tsvector('english', anchor_text)")
            }
        };
        let push_match = |q: &mut Statement| match self {
            Self::Sqlite => {
                q.push(format_args!("{table} MATCH ")).push_bind(query);
            }
            Self::Postgres => {
                q.push(format_args!("{vector} @@ to_tsquery('english', "))
                    .push_bind(query)
                    .push(")");
            }
        };
        q.push(format_args!("SELECT {id} AS id, "));
        match self {
            Self::Sqlite => q.push("rank"),
            Self::Postgres => q
                .push(format_args!("-ts_rank({vector}, to_tsquery('english', "))
                .push_bind(query)
                .push("))"),
        };
        q.push(format_args!(" AS rank FROM {table} WHERE "));
        push_match(q);
        q.push(format_args!(
            " AND {id} <= coalesce((SELECT {id} FROM {table} WHERE "
        ));
        push_match(q);
        q.push(format_args!(" ORDER BY {id} LIMIT 1 OFFSET "))
            .push_bind(ranked - 1)
            .push("), 9223372036854775807)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn every_word_is_quoted_so_query_syntax_is_plain_text() {
        let input = words(&["broken links", "a\"b", "NEAR", "-x", "it's"]);
        assert_eq!(
            Dialect::Sqlite.text_query(&input).as_deref(),
            Some("\"broken\" \"links\" \"a\"\"b\" \"NEAR\" \"-x\" \"it's\"")
        );
        assert_eq!(
            Dialect::Postgres.text_query(&input).as_deref(),
            Some("'broken' & 'links' & 'a\"b' & 'NEAR' & '-x' & 'it''s'")
        );
    }

    #[test]
    fn a_trailing_star_matches_any_ending() {
        let input = words(&["crawl*"]);
        assert_eq!(
            Dialect::Sqlite.text_query(&input).as_deref(),
            Some("\"crawl\"*")
        );
        assert_eq!(
            Dialect::Postgres.text_query(&input).as_deref(),
            Some("'crawl':*")
        );
    }

    #[test]
    fn blank_input_is_no_query() {
        for dialect in [Dialect::Sqlite, Dialect::Postgres] {
            assert_eq!(dialect.text_query(&words(&["  ", "*"])), None);
        }
    }
}
