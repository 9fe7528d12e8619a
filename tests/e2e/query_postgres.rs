//! `pipecrawl query` and `pipecrawl export` on PostgreSQL answer as they do on SQLite:
//! one loopback site is crawled through the binary into a SQLite file and into a
//! throwaway PostgreSQL (see `postgres.rs`; the test is skipped, saying so, without the
//! server binaries), then every question and both export formats run on each.
//!
//! The answers must be the same but for what differs by nature: when a page was fetched
//! and how long it took, ids, and search scores (BM25 in SQLite, `ts_rank` in
//! PostgreSQL) with the order they give among the matches.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

use super::postgres::TestPostgres;
use super::query::{add_dead_ends, args, assert_exports, assert_fails, pipecrawl, read_export};
use super::raw::{Ending, RawReply, RawSite};
use super::recrawl::config_on;
use super::site::{Resource, SiteBuilder, TestSite};
use super::Harness;

/// Columns whose values depend on the run, not on the site.
const VOLATILE: [&str; 6] = [
    "id",
    "fetched_at",
    "changed_at",
    "elapsed_ms",
    "score",
    "source_id",
];

/// A site of two hosts with every kind of page and failure the questions tell apart. Every
/// page is as far from a seed by every path the crawl may take first, so both crawls
/// give it the same depth.
async fn site() -> TestSite {
    let mut b = SiteBuilder::bind(2).await;
    let (h0, h1) = (b.authority(0), b.authority(1));
    let html = |s: String| Resource::Html(s);
    add_dead_ends(&mut b, &h0, "/about");
    // `/about` linked twice with one anchor text, through a redirect first: the links to
    // it tie on page and anchor text, and the link stored first sorts last by target.
    b.add(
        &h0,
        "/",
        html(format!(
            "<title>Home of the Crawl Test</title><a href='/fine-redirect'>About us</a>\
             <a href='/about'>About us</a> <a href='/gone'>Gone page</a> \
             <a href='/down'>Server trouble</a> <a href='/hop'>Old link</a> \
             <a href='/private/x'>Secret</a> \
             <a href='http://127.0.0.1:1/'>Dead host</a> <a href='http://{h1}/'>Partner site</a> \
             <a href='http://127.0.0.9:9/outside'>Outside</a> <a href='/docs'>Documentation</a> \
             <a href='/Zoo'>Zoo</a> <a href='/gone'>bad link</a>"
        )),
    );
    // Upper and lower case, and a path in capitals: byte order and language order differ.
    b.add(
        &h0,
        "/Zoo",
        html("<title>apple pie at the zoo</title><a href='/'>home</a>".to_owned()),
    );
    b.add(
        &h0,
        "/about",
        html(
            "<title>About the crawling team</title><a href='/gone'>Gone page</a> \
             <a href='/hop'>Old link</a> <a href='/'>Home</a> <a href='/docs'>Read the docs</a>"
                .to_owned(),
        ),
    );
    b.add(
        &h0,
        "/docs",
        html(
            "<title>Documentation: linking and crawling</title>\
             <a href='/docs/install'>Install</a> <a href='/gone'>Gone again</a> \
             <a href='/'>Home</a>"
                .to_owned(),
        ),
    );
    b.add(
        &h0,
        "/docs/install",
        html(
            "<title>Installing the crawler</title><a href='/docs'>Documentation</a> \
             <a href='/manual.pdf'>Manual (PDF)</a>"
                .to_owned(),
        ),
    );
    b.add(
        &h0,
        "/manual.pdf",
        Resource::Typed("application/pdf", b"%PDF-1.4 not really".to_vec()),
    );
    b.add(
        &h1,
        "/",
        html(format!(
            "<title>Partner Site</title><a href='http://{h0}/docs'>Crawler documentation</a> \
             <a href='/news'>News</a>"
        )),
    );
    b.add(
        &h1,
        "/news",
        html(format!(
            "<title>News about broken links</title>\
             <a href='http://{h0}/docs/install'>Crawler install guide</a> \
             <a href='/old'>Old news</a> <a href='/'>Partner home</a>"
        )),
    );
    b.start()
}

/// The same crawl in both databases.
struct Both {
    site: TestSite,
    harness: Harness,
    sqlite: String,
    postgres: String,
    /// Declared last: the server stops after the test is done with it.
    server: TestPostgres,
}

impl Both {
    async fn crawl(test: &str) -> Option<Self> {
        let server = TestPostgres::start(test)?;
        let postgres = language_sorted_database(&server).await;
        let site = site().await;
        let harness = Harness::default();
        let sqlite = harness.db_path().display().to_string();
        let seeds = [
            site.url(0, "/"),
            site.url(1, "/"),
            "http://127.0.0.1:1/".to_owned(),
        ];
        let config = harness.test_config_text(&seeds, "[fetch]\nworkers = 4\n");
        let pg_config = config.replace(&format!("{sqlite:?}"), &format!("{postgres:?}"));
        assert_ne!(config, pg_config, "the PostgreSQL config names PostgreSQL");
        for (name, text) in [("sqlite.toml", config), ("postgres.toml", pg_config)] {
            let path = harness.dir.path().join(name);
            std::fs::write(&path, text).expect("write a config");
            let out = pipecrawl(args(&["crawl", "--config", &path.display().to_string()])).await;
            assert!(
                out.status.success(),
                "the crawl into {name} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Some(Self {
            site,
            harness,
            sqlite,
            postgres,
            server,
        })
    }

    /// stdout and stderr of the question `words` asked of `db` (which must succeed).
    async fn ask(db: &str, words: &[&str]) -> (String, String) {
        let mut all = vec!["query", "--db", db];
        all.extend_from_slice(words);
        let out = pipecrawl(args(&all)).await;
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{words:?} on {db}: {stderr}");
        (String::from_utf8(out.stdout).expect("UTF-8 output"), stderr)
    }

    /// The question's JSON rows from each database, without [`VOLATILE`] columns, and
    /// its notes: they must be equal. Returns how many rows there were.
    async fn assert_same(&self, words: &[&str], unordered: bool) -> usize {
        let mut json = vec!["--format", "json"];
        json.extend_from_slice(words);
        let mut answers = Vec::new();
        for db in [&self.sqlite, &self.postgres] {
            let (out, notes) = Self::ask(db, &json).await;
            let mut rows = stable_rows(&out);
            if unordered {
                rows.sort_by_key(|r| Value::Object(r.clone()).to_string());
            }
            answers.push((rows, notes));
        }
        assert_eq!(answers[0], answers[1], "{words:?}: SQLite, then PostgreSQL");
        answers[0].0.len()
    }

    /// The question's output in `format` from each database: it must be equal to the byte.
    async fn assert_same_text(&self, format: &str, words: &[&str]) {
        let mut all = vec!["--format", format];
        all.extend_from_slice(words);
        let sqlite = Self::ask(&self.sqlite, &all).await;
        let postgres = Self::ask(&self.postgres, &all).await;
        assert_eq!(sqlite, postgres, "{all:?}: SQLite, then PostgreSQL");
    }
}

/// A database whose text sorts by English rules (ICU's `en-US`, which ignores punctuation
/// at first), as many servers' do, unlike SQLite's byte order: the answers must not
/// depend on it. A server built without ICU gets a plain database, and says so.
async fn language_sorted_database(server: &TestPostgres) -> String {
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(&server.url("postgres"))
        .await
        .expect("connect to the test PostgreSQL");
    let icu = sqlx::query(
        "CREATE DATABASE crawl TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'",
    )
    .execute(&mut admin)
    .await;
    if let Err(e) = icu {
        eprintln!("*** no ICU collation on this server ({e}): the crawl database sorts as C ***");
        sqlx::query("CREATE DATABASE crawl")
            .execute(&mut admin)
            .await
            .expect("create the crawl database");
    }
    server.url("crawl")
}

/// JSON rows without the [`VOLATILE`] columns.
fn stable_rows(json: &str) -> Vec<Map<String, Value>> {
    let Ok(Value::Array(rows)) = serde_json::from_str(json) else {
        panic!("not a JSON array: {json}");
    };
    rows.into_iter()
        .map(|row| {
            let Value::Object(mut row) = row else {
                panic!("a row that is not an object: {row}");
            };
            for column in VOLATILE {
                row.remove(column);
            }
            row
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_question_and_export_answers_on_postgresql_as_on_sqlite() {
    let Some(both) =
        Both::crawl("every_question_and_export_answers_on_postgresql_as_on_sqlite").await
    else {
        return;
    };
    let u = |host: usize, path: &str| both.site.url(host, path);
    let (h0, h1) = (
        both.site.authorities[0].clone(),
        both.site.authorities[1].clone(),
    );
    let (home, about, gone) = (u(0, "/"), u(0, "/about"), u(0, "/gone"));

    let (pages, _) = Both::ask(&both.postgres, &["--format", "json", "pages"]).await;
    assert_eq!(
        stable_rows(&pages).len(),
        17,
        "every URL of the site has its page row in PostgreSQL: {pages}"
    );

    let (fine_redirect, hop) = (u(0, "/fine-redirect"), u(0, "/hop"));
    let ordered: [&[&str]; 28] = [
        &["pages", "--limit", "0"],
        &["pages", "--status", "4xx,5xx,error"],
        &["pages", "--host", &h1],
        &["pages", "--title", "CRAWL"],
        &["pages", "--content-type", "TEXT/"],
        &["pages", "--sort", "title", "--limit", "0"],
        &["pages", "--sort", "status", "--desc"],
        &["pages", "--sort", "bytes"],
        &["pages", "--max-depth", "1", "--sort", "depth"],
        &["pages", "--since", "2000-01-01", "--limit", "3"],
        &["links", "--from", &home],
        &["links", "--from", &fine_redirect],
        &["links", "--from", &hop],
        &["links", "--to", &about],
        &["links", "--to", &gone, "--limit", "2"],
        &["broken"],
        &["broken", "--unchecked"],
        &["broken", "--host", &h1],
        &["broken", "--limit", "2"],
        &["top"],
        &["top", "--host", &h0, "--limit", "3"],
        &["search", "no-such-word"],
        &[
            "sql",
            "SELECT status, count(*) AS n, sum(bytes) AS bytes FROM pages \
             GROUP BY status ORDER BY coalesce(status, 0)",
        ],
        &[
            "sql",
            "SELECT p.url, count(l.id) AS links FROM pages p \
             LEFT JOIN links l ON l.source_id = p.id GROUP BY p.url ORDER BY links DESC, p.url",
        ],
        &[
            "sql",
            "SELECT url FROM pages WHERE title IS NULL ORDER BY url",
        ],
        &["sql", "SELECT title FROM pages WHERE status = 404"],
        &["links", "--from", &u(1, "/news")],
        &["top", "--limit", "0"],
    ];
    for words in ordered {
        both.assert_same(words, false).await;
    }
    // Ranked differently; the same matches, titles, anchors and counts.
    for words in [
        &["search", "crawl*"][..],
        &["search", "documentation"],
        &["search", "broken", "links"],
        &["search", "--limit", "0", "home"],
    ] {
        assert!(
            both.assert_same(words, true).await > 0,
            "{words:?} finds pages"
        );
    }
    let (found, _) = Both::ask(&both.postgres, &["--format", "json", "search", "linking"]).await;
    assert!(
        found.contains("Documentation: linking and crawling") && found.contains("\"score\":"),
        "stemmed search on PostgreSQL: {found}"
    );

    // Every format, to the byte, where no column depends on the run.
    for format in ["table", "csv", "json", "jsonl"] {
        for words in [
            &["broken", "--unchecked"][..],
            &["top", "--limit", "0"],
            &["links", "--from", &home],
            &["pages", "--title", "no such title"],
        ] {
            both.assert_same_text(format, words).await;
        }
    }

    assert_same_stats(&both).await;
    assert_same_exports(&both).await;
    assert_postgres_refuses_writes(&both).await;

    // A database with no tables (the server's own) is refused, saying so.
    let other = both.server.url("postgres");
    assert_fails(
        &pipecrawl(args(&["query", "--db", &other, "stats"])).await,
        &["holds no crawl yet: it has none of pipecrawl's tables"],
    );

    // The database can come from the crawl's config, as the crawl itself takes it.
    let config = both.harness.dir.path().join("postgres.toml");
    let by_config = pipecrawl(args(&[
        "query",
        "--config",
        &config.display().to_string(),
        "top",
    ]))
    .await;
    assert!(by_config.status.success());
    let by_url = Both::ask(&both.postgres, &["top"]).await.0;
    assert_eq!(String::from_utf8_lossy(&by_config.stdout), by_url);
}

/// `stats` agrees in every section but the fetch rate over time, its hosts all listed
/// or one (`--hosts 1`, the others counted in a line).
async fn assert_same_stats(both: &Both) {
    for hosts in ["0", "1"] {
        let mut answers = Vec::new();
        for db in [&both.sqlite, &both.postgres] {
            let (out, _) = Both::ask(db, &["--format", "json", "stats", "--hosts", hosts]).await;
            let rows: Vec<Map<String, Value>> = stable_rows(&out)
                .into_iter()
                .filter(|r| {
                    let section = r["section"].as_str().unwrap_or_default();
                    !section.starts_with("fetched per") && r["key"] != "pages per second (average)"
                })
                .collect();
            answers.push(rows);
        }
        assert!(answers[0].len() > 20, "{:?}", answers[0]);
        assert_eq!(
            answers[0], answers[1],
            "stats --hosts {hosts}: SQLite, then PostgreSQL"
        );
        let others = answers[1].iter().any(|r| {
            r["key"]
                .as_str()
                .is_some_and(|k| k.ends_with(" other hosts)"))
        });
        assert_eq!(others, hosts == "1", "{:?}", answers[1]);
    }
}

/// Both exports hold the same columns, in the same order, and the same rows.
async fn assert_same_exports(both: &Both) {
    for format in ["csv", "jsonl"] {
        let mut exports = Vec::new();
        for (name, db) in [("sqlite", &both.sqlite), ("postgres", &both.postgres)] {
            let dir = both.harness.dir.path().join(format!("{name}-{format}"));
            let out = pipecrawl(args(&[
                "export",
                "--db",
                db,
                "--format",
                format,
                "--out",
                &dir.display().to_string(),
            ]))
            .await;
            assert!(
                out.status.success(),
                "export from {name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            exports.push((
                read_export(&dir, "pages", format),
                read_export(&dir, "links", format),
            ));
        }
        let [(sqlite_pages, sqlite_links), (pg_pages, pg_links)] =
            <[_; 2]>::try_from(exports).expect("two exports");
        assert_eq!(sqlite_pages.0, pg_pages.0, "{format}: the pages columns");
        assert_eq!(sqlite_links.0, pg_links.0, "{format}: the links columns");
        assert_eq!(
            comparable(&sqlite_pages.1, &sqlite_pages.1, false),
            comparable(&pg_pages.1, &pg_pages.1, false),
            "{format}: the pages"
        );
        let links = comparable(&sqlite_links.1, &sqlite_pages.1, true);
        assert_eq!(links.len(), 27, "{format}: the links");
        assert_eq!(
            links,
            comparable(&pg_links.1, &pg_pages.1, true),
            "{format}: the links"
        );
    }
}

/// Rows without the [`VOLATILE`] columns, sorted; with `by_page`, links name their page
/// by URL (ids differ between the two crawls).
fn comparable(
    rows: &[HashMap<String, String>],
    pages: &[HashMap<String, String>],
    by_page: bool,
) -> Vec<BTreeMap<String, String>> {
    let urls: HashMap<&str, &str> = pages
        .iter()
        .map(|p| (p["id"].as_str(), p["url"].as_str()))
        .collect();
    let mut out: Vec<BTreeMap<String, String>> = rows
        .iter()
        .map(|row| {
            let mut kept: BTreeMap<String, String> = row
                .iter()
                .filter(|(k, _)| !VOLATILE.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if by_page {
                kept.insert(
                    "page".to_owned(),
                    urls[row["source_id"].as_str()].to_owned(),
                );
            }
            kept
        })
        .collect();
    out.sort();
    out
}

/// `query sql` on PostgreSQL cannot change the database, whatever the statement.
async fn assert_postgres_refuses_writes(both: &Both) {
    let count = || async {
        Both::ask(
            &both.postgres,
            &["--format", "csv", "sql", "SELECT count(*) AS n FROM links"],
        )
        .await
        .0
    };
    let before = count().await;
    for (sql, says) in [
        ("DELETE FROM pages", "`query sql` only reads"),
        ("UPDATE pages SET title = 'x'", "`query sql` only reads"),
        ("DROP TABLE links", "`query sql` only reads"),
        ("CREATE TABLE t (x int)", "`query sql` only reads"),
        ("SELECT nextval('links_id_seq')", "`query sql` only reads"),
        ("SET TRANSACTION READ WRITE", "must be set before any query"),
        (
            "COMMIT; DELETE FROM links",
            "cannot insert multiple commands",
        ),
        ("SELECT now() AS t", "cast it to text (`t::text`)"),
    ] {
        let out = pipecrawl(args(&["query", "--db", &both.postgres, "sql", sql])).await;
        assert_fails(&out, &[says]);
    }
    assert_eq!(count().await, before, "nothing changed");
    let (typed, _) = Both::ask(
        &both.postgres,
        &[
            "--format",
            "jsonl",
            "sql",
            "SELECT 1 = 1 AS yes, 2.50 AS half, now()::text IS NOT NULL AS t",
        ],
    )
    .await;
    assert_eq!(typed, "{\"yes\":true,\"half\":2.5,\"t\":true}\n");
}

/// A one-page site crawled into a language-sorted database of a server started for
/// `test`: the server, the results and the node's id. `None` where no server runs here.
async fn one_page_crawled(test: &str) -> Option<(TestPostgres, sqlx::PgPool, String)> {
    let server = TestPostgres::start(test)?;
    let postgres = language_sorted_database(&server).await;
    let site = TestSite::one_host(&[("/", "<title>Home</title>")]).await;
    let harness = Harness::default();
    let config = config_on(&harness, &format!("{postgres:?}"), &site.url(0, "/"), "");
    let node = config.cluster.node_id.clone();
    pipecrawl::crawl(config, std::future::pending())
        .await
        .expect("the crawl succeeds");
    let db = sqlx::PgPool::connect(&postgres)
        .await
        .expect("open the PostgreSQL results");
    Some((server, db, node))
}

/// README: on PostgreSQL "text compares byte by byte, collation "C", as in SQLite,
/// whatever the server's locale". The columns later migrations added (a failed
/// revisit's) must too, or `ORDER BY revisit_error` sorts by language rules there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_text_column_users_query_compares_byte_by_byte() {
    let test = "every_text_column_users_query_compares_byte_by_byte";
    let Some((_server, db, _)) = one_page_crawled(test).await else {
        return;
    };
    let other: Vec<String> = sqlx::query_scalar(
        "SELECT table_name || '.' || column_name FROM information_schema.columns
         WHERE table_schema = 'public' AND data_type = 'text'
           AND table_name IN ('pages', 'links', 'anchors', 'inlinks', 'runs')
           AND collation_name IS DISTINCT FROM 'C'
         ORDER BY 1",
    )
    .fetch_all(&db)
    .await
    .expect("the columns' collations");
    assert_eq!(
        other,
        Vec::<String>::new(),
        "columns not compared byte by byte"
    );
}

/// Each node's run is a row of `runs` on PostgreSQL too, named by its `cluster.node_id`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nodes_run_is_recorded_in_runs() {
    let Some((_server, db, node)) = one_page_crawled("a_nodes_run_is_recorded_in_runs").await
    else {
        return;
    };
    // node_id, command, config_path, ended, pages
    type Run = (String, String, Option<String>, Option<String>, Option<i64>);
    let runs: Vec<Run> = sqlx::query_as(
        "SELECT node_id, command, config_path, ended, pages FROM runs
             WHERE ended_at >= started_at",
    )
    .fetch_all(&db)
    .await
    .expect("the runs");
    let built_in_code = None;
    assert_eq!(
        runs,
        [(
            node,
            "crawl".to_owned(),
            built_in_code,
            Some("finished".to_owned()),
            Some(1)
        )]
    );
}

/// `pages --sort fetched --desc` (the latest pages) on a PostgreSQL crawl of many pages:
/// the server walks `pages_fetched_at` backwards for the first rows rather than reading
/// every page and sorting them. Seen in the server's own counts of scans of `pages`,
/// which a session adds up when it ends.
#[tokio::test]
async fn the_latest_pages_on_postgresql_are_read_through_the_fetched_at_index() {
    use sqlx::Connection;
    let test = "the_latest_pages_on_postgresql_are_read_through_the_fetched_at_index";
    let Some(server) = TestPostgres::start(test) else {
        return;
    };
    let db = empty_crawl(&server, "latest").await;
    let mut conn = sqlx::PgConnection::connect(&db).await.expect("connect");
    sqlx::raw_sql(
        "INSERT INTO frontier (id, url, host, depth, priority, state)
             SELECT g, 'https://site.test/p/' || g, 'site.test', g % 7, 0, 'done'
             FROM generate_series(1, 100000) g;
         INSERT INTO pages (id, url, final_url, status, depth, fetched_at, changed_at)
             SELECT g, 'https://site.test/p/' || g, 'https://site.test/p/' || g, 200, g % 7,
                    to_char(timestamp '2025-01-01' + g * interval '50 ms',
                            'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),
                    '2025-01-01T00:00:00.000Z'
             FROM generate_series(1, 100000) g;
         ANALYZE pages;",
    )
    .execute(&mut conn)
    .await
    .expect("fill the crawl");
    let scans = "SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0), coalesce(seq_scan, 0)
                 FROM pg_stat_user_tables WHERE relname = 'pages'";
    let (before, seq_before): (i64, i64) = sqlx::query_as(scans)
        .fetch_one(&mut conn)
        .await
        .expect("count scans");

    let out = pipecrawl(args(&[
        "query", "--db", &db, "pages", "--sort", "fetched", "--desc", "--limit", "3",
    ]))
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("https://site.test/p/100000"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // The question's session reports its scans as it ends, a moment after the process.
    let mut after = (before, seq_before);
    for _ in 0..200 {
        after = sqlx::query_as(scans)
            .fetch_one(&mut conn)
            .await
            .expect("count scans");
        if after.0 > before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        after.0 > before,
        "the question's scan of pages was never counted"
    );
    assert_eq!(after.1, seq_before, "pages was read whole and sorted");
}

/// `bytes` holds what a server declared of a body left unread: one `Content-Length` of
/// 2^63 - 1 is a page's row, and the pages' total is past SQLite's integers. `stats`
/// gives it on both backends, as the nearest float where it does not fit (PostgreSQL's
/// sum is a NUMERIC), exact where it does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_total_the_bytes_servers_declare_past_sqlites_integers() {
    let home = "<title>Home</title><a href='/huge'>huge</a>";
    let raw = RawSite::start(vec![
        ("/", RawReply::ok("text/html", home)),
        (
            "/huge",
            RawReply::new(
                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\
                 Content-Length: 9223372036854775807",
                "",
                Ending::Close,
            ),
        ),
    ])
    .await;
    let harness = Harness::default();
    let sqlite = harness.db_path().display().to_string();
    let server = TestPostgres::start("stats_total_the_bytes_servers_declare_past_sqlites_integers");
    let mut databases = vec![sqlite.clone()];
    if let Some(server) = &server {
        databases.push(server.database("declared").await);
    }
    let mut totals = Vec::new();
    for db in &databases {
        let config = config_on(&harness, &format!("{db:?}"), &raw.url("/"), "");
        pipecrawl::crawl(config, std::future::pending())
            .await
            .expect("the crawl succeeds");
        let out = pipecrawl(args(&["query", "--db", db, "--format", "json", "stats"])).await;
        assert!(
            out.status.success(),
            "stats on {db}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let rows = stable_rows(&String::from_utf8_lossy(&out.stdout));
        let bytes = rows
            .into_iter()
            .find(|r| r["section"] == "total" && r["key"] == "bytes")
            .map(|r| r["value"].clone());
        totals.push(bytes);
    }
    let expected = 9_223_372_036_854_775_807_f64 + home.len() as f64;
    assert_eq!(totals[0], Some(Value::from(expected)), "SQLite");
    assert!(totals.iter().all(|t| *t == totals[0]), "{totals:?}");
}

/// A question stopped on the client (Ctrl-C, `timeout`, `docker stop`) stops on the
/// server too: PostgreSQL went on running the statement of a process that was gone for
/// as long as the statement took, holding a server process, a core and a snapshot that
/// keeps the crawl's dead rows from being vacuumed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_question_stopped_on_the_client_ends_on_the_server() {
    use sqlx::Connection;
    let test = "a_question_stopped_on_the_client_ends_on_the_server";
    let Some(server) = TestPostgres::start(test) else {
        return;
    };
    let db = empty_crawl(&server, "stopped").await;
    let mut conn = sqlx::PgConnection::connect(&db).await.expect("connect");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pipecrawl"))
        .args(["query", "--db", &db, "sql", "SELECT pg_sleep(600)"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the pipecrawl binary");
    assert_eq!(
        sleeps_within_10_s(&mut conn, 1).await,
        1,
        "the question never ran on the server"
    );

    super::cli::send_signal(child.id(), "TERM");
    let status = child.wait().expect("wait for the binary");
    assert!(
        !status.success(),
        "the question ended by itself: {status:?}"
    );
    assert_eq!(
        sleeps_within_10_s(&mut conn, 0).await,
        0,
        "the server still runs the question 10 s after its client went"
    );
}

/// How many sessions but `conn`'s run `pg_sleep(600)`, once that is `want` (within 10 s).
async fn sleeps_within_10_s(conn: &mut sqlx::PgConnection, want: i64) -> i64 {
    let mut seen = -1;
    for _ in 0..200 {
        seen = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE query LIKE '%pg_sleep(600)%' AND pid <> pg_backend_pid()",
        )
        .fetch_one(&mut *conn)
        .await
        .expect("read pg_stat_activity");
        if seen == want {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    seen
}

/// The URL of a new database `name` on `server` with a crawl's tables, empty.
async fn empty_crawl(server: &TestPostgres, name: &str) -> String {
    let db = server.database(name).await;
    pipecrawl::store::Store::open(&db)
        .await
        .expect("migrate the database")
        .close()
        .await
        .expect("close the store");
    db
}

/// PostgreSQL's English search skips stop words ("the", "who", "and"), and a query left
/// with no word at all matches nothing: `search the who` printed an empty table, as if
/// no page were titled "The Who", with the server's notice of why only in its own log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_of_words_postgresql_skips_says_so() {
    let test = "a_search_of_words_postgresql_skips_says_so";
    let Some(server) = TestPostgres::start(test) else {
        return;
    };
    let db = empty_crawl(&server, "skipped").await;
    for words in [&["the", "who"][..], &["and", "*"], &["The*"]] {
        let mut all = vec!["query", "--db", &db, "search"];
        all.extend_from_slice(words);
        assert_fails(
            &pipecrawl(args(&all)).await,
            &["PostgreSQL's English search skips every word given"],
        );
    }
    let searched = pipecrawl(args(&["query", "--db", &db, "search", "the", "crawler"])).await;
    assert!(
        searched.status.success(),
        "a stop word beside a word is skipped: {}",
        String::from_utf8_lossy(&searched.stderr)
    );
}

/// A database a newer pipecrawl migrated is refused by `query` on PostgreSQL too, saying
/// so, as by `crawl`; `export` writes its tables as they are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_from_a_newer_pipecrawl_is_refused_by_query_saying_so() {
    use sqlx::Connection;
    let test = "a_database_from_a_newer_pipecrawl_is_refused_by_query_saying_so";
    let Some(server) = TestPostgres::start(test) else {
        return;
    };
    let db = empty_crawl(&server, "newer").await;
    let mut conn = sqlx::PgConnection::connect(&db).await.expect("connect");
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (9999, 'a later version', true, '\\x00', 0)",
    )
    .execute(&mut conn)
    .await
    .expect("note a later migration");
    conn.close().await.expect("close");

    let redacted = pipecrawl::store::redacted(&db);
    assert_fails(
        &pipecrawl(args(&["query", "--db", &db, "stats"])).await,
        &[&format!(
            "{redacted} was written by a newer pipecrawl (its PostgreSQL schema is at migration 9999"
        )],
    );
    assert_exports(&db).await;
}

/// What `query sql` prints of `sql` as JSON Lines, asked of a new empty crawl on a
/// server started for `test` (None when there are no server binaries).
async fn sql_on_an_empty_crawl(test: &str, sql: &str) -> Option<std::process::Output> {
    let server = TestPostgres::start(test)?;
    let db = empty_crawl(&server, "empty").await;
    Some(
        pipecrawl(args(&[
            "query", "--db", &db, "--format", "jsonl", "sql", sql,
        ]))
        .await,
    )
}

/// What PostgreSQL's JSON functions build (`json_agg`, `row_to_json`,
/// `json_build_object`: a dataset's rows as nested JSON) is of type `json`, which
/// `query sql` failed on with sqlx's "mismatched types; Rust type `&str` …", where
/// `jsonb`'s were printed: both are JSON text, printed as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_built_by_sql_on_postgresql_is_printed_as_jsonb_is() {
    let Some(out) = sql_on_an_empty_crawl(
        "json_built_by_sql_on_postgresql_is_printed_as_jsonb_is",
        "SELECT json_build_object('pages', count(*)) AS j, \
                jsonb_build_object('pages', count(*)) AS jb FROM pages",
    )
    .await
    else {
        return;
    };
    assert!(
        out.status.success(),
        "json printed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "{\"j\":\"{\\\"pages\\\" : 0}\",\"jb\":\"{\\\"pages\\\": 0}\"}\n"
    );
}

/// A type sqlx looks up in the server's catalog (`tsvector`, which a user comparing the
/// title search with PostgreSQL's own asks for; `xml`, `regclass`) failed `query sql` with
/// "unnamed prepared statement does not exist", the lookup having replaced the
/// statement, where every other type that cannot be printed is refused with the advice
/// to cast it to text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_type_sqlx_looks_up_is_refused_with_the_advice_to_cast_it() {
    let Some(out) = sql_on_an_empty_crawl(
        "a_type_sqlx_looks_up_is_refused_with_the_advice_to_cast_it",
        "SELECT to_tsvector('english', 'broken links') AS v",
    )
    .await
    else {
        return;
    };
    assert_fails(&out, &["cast it to text (`v::text`)"]);
}

/// A crawl in a schema of its own (the crawl's role's `search_path`) asked through a
/// connection whose search_path is another was "holds no crawl yet … ask again once it
/// has started", of a crawl long done. The error names the schema that holds it and how
/// to name that schema in the URL, which then answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_in_another_schema_is_named_when_the_search_path_misses_it() {
    use sqlx::Connection;
    let test = "a_crawl_in_another_schema_is_named_when_the_search_path_misses_it";
    let Some(server) = TestPostgres::start(test) else {
        return;
    };
    let db = server.database("schemas").await;
    let mut admin = sqlx::PgConnection::connect(&db).await.expect("connect");
    sqlx::query("CREATE SCHEMA crawl")
        .execute(&mut admin)
        .await
        .expect("make the crawl's schema");
    let in_schema = format!("{db}?options=-csearch_path%3Dcrawl");
    pipecrawl::store::Store::open(&in_schema)
        .await
        .expect("migrate the schema")
        .close()
        .await
        .expect("close the store");
    assert_fails(
        &pipecrawl(args(&["query", "--db", &db, "stats"])).await,
        &[
            "has none of pipecrawl's tables in schema \"public\"; schema \"crawl\" holds a \
           crawl: name it in the URL (?options=-csearch_path%3Dcrawl)",
        ],
    );
    let asked = pipecrawl(args(&["query", "--db", &in_schema, "stats"])).await;
    assert!(
        asked.status.success(),
        "{}",
        String::from_utf8_lossy(&asked.stderr)
    );
}

/// With the link counts marked not kept (README's "Taking a site out"), `search` reads
/// which anchors `links` still says, and how many links say each, from `links`: the same
/// SQL on PostgreSQL, answering as SQLite does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_with_the_link_counts_not_kept_answers_on_postgresql_as_on_sqlite() {
    let test = "search_with_the_link_counts_not_kept_answers_on_postgresql_as_on_sqlite";
    let Some(both) = Both::crawl(test).await else {
        return;
    };
    let not_kept = "UPDATE writer_state SET value = 2 WHERE key = 'link_counts_behind'";
    super::query::change_database(&both.harness, &[not_kept.to_owned()]).await;
    let postgres = sqlx::PgPool::connect(&both.postgres).await;
    let pool = postgres.expect("open the PostgreSQL results");
    let marked = sqlx::query(not_kept).execute(&pool).await;
    marked.expect("mark the counts not kept on PostgreSQL");
    let found = both
        .assert_same(&["search", "--limit", "0", "home"], false)
        .await;
    assert!(found > 0, "nothing found");
}
