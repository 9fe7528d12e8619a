//! The binary as a user runs it: exit codes, what it prints, what a bad config says.

use std::process::{Command, Output};

use super::postgres::TestPostgres;
use super::raw::{RawReply, RawSite};
use super::site::{Resource, SiteBuilder, TestSite};
use super::Harness;

fn pipecrawl(args: &[&str]) -> Output {
    pipecrawl_logging("warn", args)
}

/// [`pipecrawl`] logging at `info`, as a user's run does by default.
fn pipecrawl_at_info(args: &[&str]) -> Output {
    pipecrawl_logging("info", args)
}

fn pipecrawl_logging(level: &str, args: &[&str]) -> Output {
    pipecrawl_in(std::path::Path::new("."), level, args)
}

/// [`pipecrawl_logging`] in `dir`, as a user runs it from a directory of their own.
fn pipecrawl_in(dir: &std::path::Path, level: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pipecrawl"))
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", level)
        .output()
        .expect("run the pipecrawl binary")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `crawl` on `config` with `--log-format json`, logging at `info`.
async fn crawl_logging_json(config: std::path::PathBuf) -> Output {
    tokio::task::spawn_blocking(move || {
        pipecrawl_at_info(&[
            "--log-format",
            "json",
            "crawl",
            "--config",
            config.to_str().unwrap_or_default(),
        ])
    })
    .await
    .expect("the binary ran")
}

/// Each line of `stream` as the JSON object it must be under `--log-format json`.
fn json_records(stream: &str) -> Vec<serde_json::Value> {
    stream
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}\n{stream}")))
        .collect()
}

/// Whether a crawl ran to its end, whether or not its seeds answered (exit code 4 when
/// none did): what tests of a crawl from a seed nothing listens on ask.
pub(super) fn ran_to_its_end(out: &Output) -> bool {
    matches!(out.status.code(), Some(0 | NOTHING_ANSWERED))
}

/// `crawl`'s exit code when not one URL it tried got an answer.
const NOTHING_ANSWERED: i32 = 4;

/// Each run leaves a row in `runs` saying which pipecrawl ran, as whom, with which config
/// file (its absolute path and xxh3-128, as `xxhsum -H2` prints it), when, how it ended
/// and how many pages it stored: what a dataset's reader asks of the rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_run_is_recorded_with_its_build_config_and_end() {
    let site = TestSite::one_host(&[
        (
            "/",
            "<title>Home</title><a href='/a'>A</a><a href='/b'>B</a>",
        ),
        ("/a", "<title>A</title>"),
        ("/b", "<title>B</title>"),
    ])
    .await;
    let harness = Harness::default();
    let seeds = [site.url(0, "/")];
    let mut runs = Vec::new();
    for extra in ["[scope]\nmax_pages = 2\n", ""] {
        let config = harness.write_config(&harness.test_config_text(&seeds, extra));
        let out = pipecrawl(&["crawl", "--config", config.to_str().unwrap_or_default()]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let bytes = std::fs::read(&config).expect("the config");
        let hash = format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&bytes));
        runs.push((config.display().to_string(), hash));
    }
    let mut reader = harness.open_reader().await;
    let rows: Vec<[String; 6]> =
        sqlx::query_as::<_, (String, String, String, String, String, String)>(
            "SELECT command, version, user_agent, config_path, config_hash, ended FROM runs
         ORDER BY id",
        )
        .fetch_all(&mut reader)
        .await
        .expect("the runs")
        .into_iter()
        .map(|(a, b, c, d, e, f)| [a, b, c, d, e, f])
        .collect();
    let version = env!("CARGO_PKG_VERSION");
    let agent = format!("pipecrawl/{version}");
    let wanted: Vec<[String; 6]> = runs
        .iter()
        .zip(["page_limit", "finished"])
        .map(|((path, hash), ended)| {
            ["crawl", version, &agent, path, hash, ended].map(str::to_owned)
        })
        .collect();
    assert_eq!(rows, wanted);
    let db = harness.db().await;
    let counted = db
        .scalar(
            "SELECT count(*) FROM runs WHERE started_at <= ended_at
             AND pages = (SELECT count(*) FROM pages p
                          WHERE p.fetched_at BETWEEN runs.started_at AND runs.ended_at)",
        )
        .await;
    assert_eq!(
        counted, 2,
        "each run's span holds the pages it says it stored"
    );
    let outside = db
        .scalar(
            "SELECT count(*) FROM pages p WHERE NOT EXISTS (SELECT 1 FROM runs r
             WHERE p.fetched_at BETWEEN r.started_at AND r.ended_at)",
        )
        .await;
    assert_eq!(outside, 0, "a page stored outside every run's span");
}

/// A night on which not one URL got an answer (the sites down, the network gone) exits 4,
/// and its row in `runs` says so: it said `finished`, as the night before whose pages all
/// answered, so that `runs` could not tell a cron job's failed nights from the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_in_which_no_url_got_an_answer_is_told_apart_in_runs() {
    let site = TestSite::one_host(&[("/", "<title>Home</title>")]).await;
    let (_held, closed) = super::refusing_address([127, 0, 0, 1]);
    let harness = Harness::default();
    let nights = [
        (site.url(0, "/"), 0),
        (format!("http://{closed}/"), NOTHING_ANSWERED),
    ];
    for (seed, code) in nights {
        let config = harness.write_config(&harness.test_config_text(&[seed], ""));
        let out = tokio::task::spawn_blocking(move || {
            pipecrawl(&["crawl", "--config", config.to_str().unwrap_or_default()])
        })
        .await
        .expect("the binary ran");
        assert_eq!(out.status.code(), Some(code), "{}", text(&out.stderr));
    }
    let mut reader = harness.open_reader().await;
    let ended: Vec<(String, i64)> = sqlx::query_as("SELECT ended, pages FROM runs ORDER BY id")
        .fetch_all(&mut reader)
        .await
        .expect("the runs");
    assert_eq!(
        ended,
        [("finished".to_owned(), 1), ("unreached".to_owned(), 1)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crawl_through_the_binary_fills_the_database_and_prints_a_summary() {
    let mut builder = SiteBuilder::bind(1).await;
    let host = builder.authority(0);
    builder.add(
        &host,
        "/",
        Resource::Html("<title>Home</title><a href='/a'>A</a> <a href='/b'>B</a>".into()),
    );
    builder.add(
        &host,
        "/a",
        Resource::Html("<title>Page A</title><a href='/'>Home</a>".into()),
    );
    builder.add(&host, "/b", Resource::Status(500, "down".into()));
    let site = builder.start();
    let harness = Harness::default();
    let config = harness
        .write_config(&harness.config_text(&[site.url(0, "/")], "[politeness]\ndelay_ms = 0\n"));

    let out = tokio::task::spawn_blocking(move || {
        pipecrawl(&["crawl", "--config", config.to_str().unwrap_or_default()])
    })
    .await
    .expect("the binary ran");
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {stdout}\nstderr: {}",
        out.status,
        text(&out.stderr)
    );
    assert!(
        stdout.contains("crawled 3 pages (2 2xx, 1 5xx), 3 links"),
        "{stdout}"
    );
    assert!(stdout.contains("pages/s (frontier empty)"), "{stdout}");

    let db = harness.db().await;
    assert_eq!(
        db.page(&site.url(0, "/a"))
            .await
            .and_then(|p| p.title)
            .as_deref(),
        Some("Page A")
    );
    assert_eq!(
        db.page(&site.url(0, "/b")).await.and_then(|p| p.status),
        Some(500)
    );
}

#[test]
fn an_unknown_key_is_refused_naming_the_key_and_its_line() {
    let harness = Harness::default();
    let config = harness
        .write_config("seeds = [\"http://127.0.0.1:1/\"]\n\n[fetch]\nworkers = 4\nworkerz = 8\n");
    let out = pipecrawl(&["crawl", "--config", config.to_str().unwrap_or_default()]);
    let stderr = refused(&out);
    assert!(stderr.contains("workerz"), "{stderr}");
    assert!(stderr.contains("line 5"), "{stderr}");

    // Each, in one run: serde stopped at the first.
    let config = harness.write_config(
        "seeds = [\"http://127.0.0.1:1/\"]\n[fetch]\nworkerz = 8\n[scope]\nmax_dept = 2\n",
    );
    let out = pipecrawl(&["crawl", "--config", config.to_str().unwrap_or_default()]);
    let stderr = refused(&out);
    assert!(
        stderr.contains("line 3: `fetch.workerz` is not a key of `[fetch]`")
            && stderr.contains("line 5: `scope.max_dept` is not a key of `[scope]`"),
        "{stderr}"
    );
    assert!(
        !harness.db_path().exists(),
        "nothing is created for a bad config"
    );
}

/// A key written under the wrong header was refused with the keys of the table it landed
/// in, none of which is the one meant, and without the table it belongs to: `seeds` below
/// `[scope]` (TOML reads every key after a header as that table's) was "`scope.seeds` is
/// not a key of `[scope]`", which leaves the user looking for a `scope.seeds`.
#[test]
fn a_key_under_the_wrong_header_is_said_to_belong_elsewhere() {
    let harness = Harness::default();
    let cases = [
        (
            "[scope]\nmax_depth = 2\nseeds = [\"http://127.0.0.1:9/\"]\n",
            "line 3",
            "`seeds` is a top-level key: write it above the first `[table]` header",
        ),
        (
            "seeds = [\"http://127.0.0.1:9/\"]\n[fetch]\nmax_depth = 3\n",
            "line 3",
            "`max_depth` is a key of `[scope]`",
        ),
        (
            "seeds = [\"http://127.0.0.1:9/\"]\n[politeness]\npattern = \"a.example\"\n",
            "line 3",
            "`pattern` is a key of `[[politeness.host]]`, `[[frontier.boost]]`, \
             `[[recrawl.rule]]`, `[[fetch.host]]`",
        ),
    ];
    for (config_text, line, said) in cases {
        let config = harness.write_config(config_text);
        let out = pipecrawl(&["crawl", "--config", config.to_str().unwrap_or_default()]);
        let stderr = refused(&out);
        assert!(stderr.contains(line), "{stderr}");
        assert!(stderr.contains(said), "{stderr}");
    }
}

#[test]
fn bad_values_are_all_reported_at_once_with_their_lines() {
    let harness = Harness::default();
    let config = harness.write_config(
        "seeds = [\"http://127.0.0.1:1/\", \"ftp://example.com/\"]\n[politeness]\nper_host_concurrency = 0\n[scope]\nexclude = [\"[unclosed\"]\n",
    );
    let out = pipecrawl(&["crawl", "--config", config.to_str().unwrap_or_default()]);
    let stderr = refused(&out);
    assert!(stderr.contains("3 problem(s)"), "{stderr}");
    assert!(stderr.contains("line 1: `seeds[1]`"), "{stderr}");
    assert!(
        stderr.contains("line 3: `politeness.per_host_concurrency` must be at least 1"),
        "{stderr}"
    );
    assert!(
        stderr.contains("line 5: `scope.exclude[0]` is not a valid regular expression"),
        "{stderr}"
    );
}

#[test]
fn a_missing_config_file_is_named() {
    let out = pipecrawl(&["crawl", "--config", "/nonexistent/pipecrawl.toml"]);
    let stderr = refused(&out);
    assert!(
        stderr.contains("cannot read the config file /nonexistent/pipecrawl.toml"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "the cause, once: {stderr}"
    );
}

/// A supervisor restarting what failed (systemd's `Restart=on-failure`) tells a config
/// that cannot run (78) from an outage (1), whichever command read it.
#[test]
fn a_bad_config_exits_78_for_every_command_that_reads_one() {
    let harness = Harness::default();
    let config = harness.write_config("seeds = [\"http://127.0.0.1:9/\"]\nmax_pages = 5\n");
    let config = config.to_str().unwrap_or_default();
    let out_dir = harness.dir.path().join("export");
    let out_dir = out_dir.to_str().unwrap_or_default();
    for args in [
        vec!["crawl", "--config", config],
        vec!["serve", "--config", config],
        vec!["query", "--config", config, "stats"],
        vec!["export", "--config", config, "--out", out_dir],
    ] {
        let stderr = refused(&pipecrawl(&args));
        assert!(stderr.contains("`max_pages`"), "{args:?}: {stderr}");
    }
    assert!(!harness.db_path().exists(), "nothing was started");
    // No seeds in the config nor in a new database: as much the config's to mend.
    let seedless = harness.write_config(&harness.test_config_text(&[], ""));
    let stderr = refused(&pipecrawl(&[
        "crawl",
        "--config",
        seedless.to_str().unwrap_or_default(),
    ]));
    assert!(stderr.contains("`seeds` names no URL"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_programs_database_is_refused_and_left_as_it_was() {
    let harness = Harness::default();
    let db = harness.db_path();
    {
        use sqlx::Connection;
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&db)
            .create_if_missing(true);
        let mut conn = sqlx::SqliteConnection::connect_with(&options)
            .await
            .expect("create the other program's database");
        sqlx::raw_sql("CREATE TABLE pages (id INTEGER PRIMARY KEY, hits INTEGER); CREATE TABLE users (name TEXT);")
            .execute(&mut conn)
            .await
            .expect("its tables");
        conn.close().await.expect("close it");
    }
    let before = std::fs::read(&db).expect("read the database");
    let config = harness.write_config(&harness.config_text(&["http://127.0.0.1:9/".into()], ""));
    let out = pipecrawl(&["crawl", "--config", config.to_str().unwrap_or_default()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("is not a pipecrawl database (it holds the tables pages, users)"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(&db).expect("read it again"),
        before,
        "untouched"
    );
}

#[test]
fn a_database_path_that_is_a_directory_is_named_as_one() {
    let harness = Harness::default();
    std::fs::create_dir(harness.db_path()).expect("a directory where the file would be");
    let config = harness.write_config(&harness.config_text(&["http://127.0.0.1:9/".into()], ""));
    let out = pipecrawl(&["crawl", "--config", config.to_str().unwrap_or_default()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("crawl.db is a directory: `storage.database` names the database file"),
        "{stderr}"
    );
}

/// A database an earlier pipecrawl wrote is brought up to date before anything else, and
/// on a large one that takes minutes (a 2 M-link database from before migration 2: over a
/// minute), in which the crawl said nothing at all: a user upgrading took it for hung,
/// and a kill lost the step it was in. The log says what it does as it starts, and when
/// it is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bringing_an_earlier_pipecrawls_database_up_to_date_is_said() {
    use sqlx::Connection;
    let harness = Harness::default();
    let config = harness.write_config(&harness.config_text(
        &["http://127.0.0.1:9/".into()],
        "[retry]\nmax_attempts = 1\n",
    ));
    let config = config.to_str().unwrap_or_default().to_owned();
    let first = pipecrawl(&["crawl", "--config", &config]);
    assert!(ran_to_its_end(&first), "{}", text(&first.stderr));
    // As a pipecrawl from before migrations 15 (an index's columns), 16, 17 and 18 left it.
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(harness.db_path());
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .expect("open the database");
    sqlx::raw_sql(
        "DELETE FROM _sqlx_migrations WHERE version IN (15, 16, 17, 18);
         DROP TABLE runs;
         DROP TRIGGER page_changes_kept;
         DROP TABLE page_changes;
         DROP TABLE known_hosts;
         DROP TABLE domain_budget;
         DROP INDEX frontier_revisits;
         CREATE INDEX frontier_revisits ON frontier (priority DESC, id)
             WHERE state = 'queued' AND recrawl_interval_ms IS NOT NULL;",
    )
    .execute(&mut conn)
    .await
    .expect("take the last migration back");

    let out = pipecrawl_at_info(&["crawl", "--config", &config]);
    let stderr = text(&out.stderr);
    assert!(
        ran_to_its_end(&out),
        "{:?} {stderr}{}",
        out.status,
        text(&out.stdout)
    );
    assert!(
        stderr.contains("the database's schema is at migration 14, this pipecrawl's at 18"),
        "{stderr}"
    );
    assert!(
        stderr.contains("the database's schema is up to date (migration 18)"),
        "{stderr}"
    );
    let first_column: String = sqlx::query_scalar(
        "SELECT name FROM pragma_index_info('frontier_revisits') WHERE seqno = 0",
    )
    .fetch_one(&mut conn)
    .await
    .expect("look for the index");
    assert_eq!(first_column, "recrawl_at");
}

#[test]
fn an_unreachable_postgresql_is_named_at_once() {
    let harness = Harness::default();
    let text_config = harness.config_text(&["http://127.0.0.1:9/".into()], "");
    let sqlite = format!("{:?}", harness.db_path().display().to_string());
    let config = harness
        .write_config(&text_config.replace(&sqlite, "\"postgres://nobody@127.0.0.1:1/crawl\""));
    let mut child = Command::new(env!("CARGO_BIN_EXE_pipecrawl"))
        .args(["crawl", "--config"])
        .arg(config)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the pipecrawl binary");
    // The pool's own retrying went on for ten minutes; a minute is plenty for an answer.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().expect("poll the binary").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("no answer in a minute about a server that refuses connections");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("its output");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Connection refused"), "{stderr}");
}

/// A PostgreSQL URL that does not parse (a port that is no number) was named with its
/// password in clear, in the crawl's error and in `export`'s, and was not said to be the
/// config's `storage.database`: the password went to the terminal or the journal.
#[test]
fn a_malformed_postgresql_url_is_named_as_the_key_without_its_password() {
    let harness = Harness::default();
    let url = "postgres://crawler:hunter2secret@127.0.0.1:notaport/crawl";
    let config = harness.write_config(&format!(
        "seeds = [\"http://127.0.0.1:9/\"]\n[storage]\ndatabase = {url:?}\n"
    ));
    let out = pipecrawl(&["crawl", "--config", config.to_str().unwrap_or_default()]);
    let stderr = refused(&out);
    assert!(!stderr.contains("hunter2secret"), "{stderr}");
    assert!(
        stderr.contains("line 3: `storage.database` is not a PostgreSQL URL"),
        "{stderr}"
    );
    let out_dir = harness.dir.path().join("export");
    let out_dir = out_dir.to_str().unwrap_or_default();
    let export = pipecrawl(&["export", "--db", url, "--format", "csv", "--out", out_dir]);
    let stderr = text(&export.stderr);
    assert_eq!(export.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("hunter2secret"), "{stderr}");
    assert!(stderr.contains("invalid port number"), "{stderr}");
}

#[test]
fn the_example_config_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/example.toml");
    pipecrawl::Config::load(std::path::Path::new(path)).expect("config/example.toml loads");
}

/// Runs `crawl` with `config` to a successful end, and returns what it printed.
async fn crawl_to_the_end(config: std::path::PathBuf) -> String {
    let out = crawl_by_binary(config).await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    stdout
}

/// Runs `pipecrawl crawl` with `config` to its end, which reached no site (exit code 4),
/// and returns its stderr.
async fn crawl_unanswered(config: std::path::PathBuf) -> String {
    let out = crawl_by_binary(config).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(NOTHING_ANSWERED), "{stderr}");
    stderr
}

/// Runs `pipecrawl crawl` with `config` to its end.
async fn crawl_by_binary(config: std::path::PathBuf) -> Output {
    tokio::task::spawn_blocking(move || {
        pipecrawl(&["crawl", "--config", config.to_str().unwrap_or_default()])
    })
    .await
    .expect("the binary ran")
}

/// The (working, waiting, blocked) percentages the summary prints for a stage.
fn stage_shares(stdout: &str, stage: &str) -> Vec<f64> {
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{stage} ")))
        .unwrap_or_else(|| panic!("no line for stage {stage}:\n{stdout}"));
    line.split('%')
        .filter_map(|part| part.rsplit([' ', '/']).next()?.parse().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_shows_which_stage_limits_the_crawl() {
    let mut builder = SiteBuilder::bind(1).await;
    let host = builder.authority(0);
    let links: String = (0..10).map(|i| format!("<a href='/{i}'>{i}</a>")).collect();
    builder.add(&host, "/", Resource::Html(links));
    for i in 0..10 {
        builder.add(
            &host,
            &format!("/{i}"),
            Resource::Slow(
                std::time::Duration::from_millis(150),
                Box::new(Resource::Html(format!("<title>{i}</title>"))),
            ),
        );
    }
    let site = builder.start();
    let harness = Harness::default();
    // Two fetchers on a slow site: fetching limits, parsing and storing wait for work.
    let config = harness.write_config(&harness.config_text(
        &[site.url(0, "/")],
        "[fetch]\nworkers = 2\n[politeness]\ndelay_ms = 0\nper_host_concurrency = 2\n",
    ));
    let stdout = crawl_to_the_end(config).await;

    let fetch = stage_shares(&stdout, "fetch");
    let parse = stage_shares(&stdout, "parse");
    let store = stage_shares(&stdout, "store");
    assert_eq!(fetch.len(), 3, "{stdout}");
    assert!(fetch[0] > 60.0, "fetchers mostly fetch:\n{stdout}");
    assert!(parse[1] > 80.0, "parsers mostly wait:\n{stdout}");
    assert!(store[1] > 80.0, "the writer mostly waits:\n{stdout}");
    assert!(stdout.contains("  fetch       2 workers"), "{stdout}");
    assert!(
        stdout.contains("queues (mean depth/capacity): to_fetch "),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_to_a_pipe_are_plain_text_or_one_json_object_per_line() {
    let mut builder = SiteBuilder::bind(1).await;
    let host = builder.authority(0);
    builder.add(&host, "/", Resource::Html("<title>Home</title>".into()));
    let site = builder.start();
    let harness = Harness::default();
    let config = harness.write_config(&harness.config_text(&[site.url(0, "/")], ""));
    for format in ["text", "json"] {
        let config = config.clone();
        let out = tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_pipecrawl"))
                .args(["--log-format", format, "crawl", "--config"])
                .arg(config)
                .env("RUST_LOG", "debug")
                .output()
                .expect("run the pipecrawl binary")
        })
        .await
        .expect("the binary ran");
        assert!(out.status.success());
        let stderr = text(&out.stderr);
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(!lines.is_empty(), "debug logging says something");
        assert!(
            !stderr.contains('\u{1b}'),
            "no terminal colour codes in a pipe: {stderr}"
        );
        if format == "json" {
            for value in json_records(&stderr) {
                assert!(
                    value["level"].is_string() && value["fields"].is_object(),
                    "{value}"
                );
            }
        }
    }
}

/// With `--log-format json` the end summary is one JSON record too, with its figures as
/// fields: it was a dozen lines of text on stdout, which a container's log shipper
/// (reading stdout and stderr alike) could not parse, and whose counts a pipeline could
/// not alert on without scraping prose.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_json_logs_the_end_summary_is_one_json_record_with_its_figures() {
    let mut builder = SiteBuilder::bind(1).await;
    let host = builder.authority(0);
    builder.add(
        &host,
        "/",
        Resource::Html("<a href='/gone'>Gone</a>".into()),
    );
    let site = builder.start();
    let harness = Harness::default();
    let config = harness.write_config(&harness.config_text(&[site.url(0, "/")], ""));
    let out = crawl_logging_json(config).await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    json_records(&stderr);
    let summary = json_records(&stdout);
    assert_eq!(summary.len(), 1, "{stdout}");
    assert_eq!(summary[0]["level"], "INFO", "{stdout}");
    let fields = &summary[0]["fields"];
    assert_eq!(fields["ended"], "finished", "{stdout}");
    assert_eq!(fields["pages"], 2, "{stdout}");
    assert_eq!(fields["links"], 1, "{stdout}");
    assert_eq!(fields["pages_by_class"]["2xx"], 1, "{stdout}");
    assert_eq!(fields["pages_by_class"]["4xx"], 1, "{stdout}");
    assert!(fields["pages_per_sec"].is_number(), "{stdout}");
    assert!(
        fields["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("crawled 2 pages")),
        "{stdout}"
    );
    let database = harness.db_path().display().to_string();
    assert_eq!(fields["database"], database.as_str(), "{stdout}");
}

/// A crawl cut at its host's page budget stores a trap row for each URL past it, never
/// requested: its pages/s counted them as pages crawled, so a shop whose facet links ran
/// past the budget said thousands of pages a second where the progress lines said 80.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summarys_rate_counts_the_pages_requested_not_the_trap_rows() {
    let links: String = (0..60).map(|i| format!("<a href='/{i}'>{i}</a>")).collect();
    let site = TestSite::one_host(&[("/", links.as_str())]).await;
    let harness = Harness::default();
    let config = harness.write_config(&harness.config_text(
        &[site.url(0, "/")],
        "[politeness]\ndelay_ms = 0\n[traps]\nmax_pages_per_host = 4\n",
    ));
    let out = crawl_logging_json(config).await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = json_records(&stdout);
    let fields = &summary[0]["fields"];
    let count = |name: &str| fields[name].as_f64().unwrap_or_default();
    assert!(count("not_requested") >= 50.0, "{stdout}");
    let requested = count("pages") - count("not_requested");
    let rate_over_run = count("pages_per_sec") * count("elapsed_s");
    assert!(
        (rate_over_run - requested).abs() < 0.5,
        "the rate counts {rate_over_run:.1} pages, {requested} requested: {stdout}"
    );
}

/// With `--log-format json` a progress line gives the rate as a number, as it gives the
/// counts: it was only in the message ("14.2 pages/s"), which a pipeline alerting on a
/// crawl that slows down had to parse out of the text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_json_logs_progress_lines_give_the_rate_as_a_field() {
    let mut builder = SiteBuilder::bind(1).await;
    let host = builder.authority(0);
    builder.add(
        &host,
        "/",
        Resource::Html("<a href='/a'>A</a><a href='/b'>B</a><a href='/c'>C</a>".into()),
    );
    for path in ["/a", "/b", "/c"] {
        builder.add(&host, path, Resource::Html("<title>Leaf</title>".into()));
    }
    let site = builder.start();
    let harness = Harness::default();
    // Four pages 2.5 s apart: the crawl outlasts the first progress line, 5 s in.
    let polite = "[politeness]\ndelay_ms = 2500\n";
    let config = harness.write_config(&harness.config_text(&[site.url(0, "/")], polite));
    let out = crawl_logging_json(config).await;
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let progress: Vec<serde_json::Value> = json_records(&stderr)
        .into_iter()
        .filter(|record| record["target"] == "pipecrawl::progress")
        .collect();
    assert!(!progress.is_empty(), "{stderr}");
    for line in progress {
        let fields = &line["fields"];
        assert!(fields["pages"].is_u64(), "{line}");
        assert!(fields["pages_per_sec"].is_f64(), "{line}");
    }
}

/// At debug level each fetch says how it ended in one `fetched` record, its figures typed
/// fields: one refused at the connection (its robots.txt's too) wrote none, and the others
/// wrote their error and retry as Rust's debug text (`Some(982.7ms)`) with no URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_json_logs_each_fetch_is_one_typed_record_at_debug() {
    let site = TestSite::one_host(&[("/", "<title>Home</title>")]).await;
    let (_held, refused) = super::refusing_address([127, 0, 0, 3]);
    let refused = format!("http://{refused}/");
    let harness = Harness::default();
    let seeds = [site.url(0, "/"), refused.clone()];
    let extra = "[retry]\nmax_attempts = 1\n";
    let config = harness.write_config(&harness.config_text(&seeds, extra));
    let config = config.to_str().unwrap_or_default().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        let args = ["--log-format", "json", "crawl", "--config", &config];
        pipecrawl_logging("pipecrawl=debug", &args)
    })
    .await
    .expect("the binary ran");
    let stderr = text(&out.stderr);
    assert!(ran_to_its_end(&out), "{stderr}");
    let fetched: Vec<serde_json::Value> = json_records(&stderr)
        .into_iter()
        .filter(|record| record["fields"]["message"] == "fetched")
        .map(|record| record["fields"].clone())
        .collect();
    let home = fetched.iter().find(|f| f["url"] == site.url(0, "/"));
    assert!(
        home.is_some_and(|f| f["status"] == 200 && f["elapsed_ms"].is_u64()),
        "{home:?} in {stderr}"
    );
    let gone = fetched.iter().find(|f| f["url"] == refused);
    assert!(
        gone.is_some_and(|f| f["error_kind"] == "connect" && f.get("status").is_none()),
        "{gone:?} in {stderr}"
    );
}

/// The binary run with its stderr (and `stdout_too`, its stdout) a socket nobody reads
/// any more: a write gets the broken pipe of `pipecrawl … 2>&1 | head -1` once `head`
/// has its line.
#[cfg(unix)]
fn with_closed_stderr(args: &[&str], stdout_too: bool) -> std::process::ExitStatus {
    use std::os::fd::OwnedFd;
    use std::os::unix::net::UnixStream;
    use std::process::Stdio;

    let (writer, reader) = UnixStream::pair().expect("a socket pair");
    drop(reader);
    let stdout = if stdout_too {
        Stdio::from(OwnedFd::from(writer.try_clone().expect("a second end")))
    } else {
        Stdio::null()
    };
    Command::new(env!("CARGO_BIN_EXE_pipecrawl"))
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(stdout)
        .stderr(Stdio::from(OwnedFd::from(writer)))
        .status()
        .expect("run the pipecrawl binary")
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stderr_changes_no_exit_code() {
    let harness = Harness::default();
    let missing = harness.dir.path().join("missing.db");
    let status = with_closed_stderr(
        &[
            "query",
            "--db",
            missing.to_str().unwrap_or_default(),
            "stats",
        ],
        true,
    );
    assert_eq!(status.code(), Some(1), "an error it could not print");

    let db = harness.db_path();
    let db = db.to_str().unwrap_or_default();
    pipecrawl::store::Store::open(db)
        .await
        .expect("an empty crawl's database");
    let out = harness.dir.path().join("export");
    let status = with_closed_stderr(
        &[
            "export",
            "--db",
            db,
            "--out",
            out.to_str().unwrap_or_default(),
        ],
        false,
    );
    assert_eq!(status.code(), Some(0), "what it wrote, unsaid");
    assert!(out.join("links.csv").exists());

    // A crawl's log lines and summary.
    let mut builder = SiteBuilder::bind(1).await;
    let host = builder.authority(0);
    builder.add(&host, "/", Resource::Html("<title>Home</title>".into()));
    let site = builder.start();
    let crawl = Harness::default();
    let config = crawl.write_config(&crawl.config_text(&[site.url(0, "/")], ""));
    let status = tokio::task::spawn_blocking(move || {
        with_closed_stderr(
            &["crawl", "--config", config.to_str().unwrap_or_default()],
            true,
        )
    })
    .await
    .expect("the binary ran");
    assert_eq!(status.code(), Some(0), "a crawl whose output nobody read");
    assert_eq!(crawl.page_count().await, 1);
}

/// Runs `pipecrawl crawl --config config` under `ulimit {limits}` (bash's builtin: std
/// sets no limits for a child), logging warnings.
pub async fn crawl_under_ulimit(limits: &str, config: std::path::PathBuf) -> Output {
    let script = format!("ulimit {limits} && exec \"$0\" crawl --config \"$1\"");
    tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .args(["-c", &script, env!("CARGO_BIN_EXE_pipecrawl")])
            .arg(config)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run the pipecrawl binary under bash")
    })
    .await
    .expect("the binary ran")
}

/// Crawls, with 300 fetch workers, a host of 300 pages that each take 300 ms (up to 300
/// connections at once, ~180 here), through `pipecrawl crawl` started under
/// `ulimit {limits}` (bash's builtin: std sets no limits for a child). Checks that every
/// page was stored without a request failing for want of a descriptor, and returns the
/// site and what the binary wrote to stderr.
async fn crawl_three_hundred_slow_pages_under_ulimit(limits: &str) -> (TestSite, String) {
    let mut builder = SiteBuilder::bind(1).await;
    let host = builder.authority(0);
    let links: String = (0..300)
        .map(|i| format!("<a href='/{i}'>{i}</a>"))
        .collect();
    builder.add(&host, "/", Resource::Html(links));
    builder.add_prefix(
        &host,
        "/",
        Resource::Slow(
            std::time::Duration::from_millis(300),
            Box::new(Resource::Html("<title>slow</title>".into())),
        ),
    );
    let site = builder.start();
    let harness = Harness::default();
    let config = harness.write_config(&harness.config_text(
        &[site.url(0, "/")],
        "[fetch]\nworkers = 300\n[politeness]\ndelay_ms = 0\nper_host_concurrency = 300\n",
    ));
    let out = crawl_under_ulimit(limits, config).await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("crawled 301 pages (301 2xx)"), "{stdout}");
    assert!(
        !stdout.contains("retries:"),
        "no request failed for want of a descriptor:\n{stdout}"
    );
    (site, stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_low_soft_open_file_limit_does_not_stop_a_crawl_with_many_fetchers() {
    // The hard limit is left as it is.
    crawl_three_hundred_slow_pages_under_ulimit("-Sn 100").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetchers_beyond_the_hard_open_file_limit_are_lowered_and_said_so() {
    let (site, stderr) = crawl_three_hundred_slow_pages_under_ulimit("-n 160").await;
    assert!(
        stderr.contains("fetch.workers = 300 lowered to 40: this process may open only 160 files"),
        "{stderr}"
    );
    assert!(site.max_in_flight(&site.authorities[0]) <= 40);
}

/// A slip of the keyboard (`workers = 1000000`) is refused with the key, not run as a
/// million tasks and their memory; so are channels that would never bound anything.
#[test]
fn pool_and_channel_sizes_past_any_use_are_refused_naming_the_key() {
    let harness = Harness::default();
    let config_text = harness.test_config_text(
        &["http://127.0.0.1:1/".to_owned()],
        "[fetch]\nworkers = 1000000\n[channels]\nto_fetch = 100000000\n",
    );
    let config = harness.write_config(&config_text);
    let out = pipecrawl(&["crawl", "--config", config.to_str().unwrap_or_default()]);
    let stderr = refused(&out);
    assert!(
        stderr.contains("line 3: `fetch.workers` must be at most"),
        "{stderr}"
    );
    assert!(
        stderr.contains("line 5: `channels.to_fetch` must be at most"),
        "{stderr}"
    );
    assert!(!harness.db_path().exists(), "nothing was started");
}

/// Sends `signal` (`INT`, `TERM`) to the process `pid`.
pub fn send_signal(pid: u32, signal: &str) {
    let sent = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .expect("run kill");
    assert!(sent.success(), "kill -{signal} {pid}");
}

/// Whether process `pid` has the file `path` open.
fn has_open(pid: u32, path: &std::path::Path) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
        fds.flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == path))
    })
}

/// `command` started with its output piped, once it has `path` open. The bound is on a
/// hang, or on a process that ended first: 10 s failed a start that a loaded machine
/// slowed.
pub(super) async fn started_with_open(
    mut command: Command,
    path: &std::path::Path,
) -> std::process::Child {
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the pipecrawl binary");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !has_open(child.id(), path) {
        let ended = child.try_wait().expect("poll pipecrawl");
        assert!(
            ended.is_none() && std::time::Instant::now() < deadline,
            "{command:?} did not open {path:?} ({ended:?})"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    child
}

/// Starts a crawl with `command` (the binary, or a shell that runs it) while another
/// program holds its database locked, so that it waits at its start; sends it `signal`,
/// lets it go on, checks that it exits 0 and returns its stdout and stderr.
#[cfg(target_os = "linux")]
async fn a_crawl_signalled_at_its_start(mut command: Command, signal: &str) -> (String, String) {
    use sqlx::Connection;

    let mut builder = SiteBuilder::bind(1).await;
    let host = builder.authority(0);
    builder.add(&host, "/", Resource::Html("<title>Home</title>".into()));
    let site = builder.start();
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;
    let config = harness.write_config(&harness.test_config_text(&[site.url(0, "/")], ""));

    let mut lock =
        sqlx::SqliteConnection::connect(&format!("sqlite://{}", harness.db_path().display()))
            .await
            .expect("open the database");
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut lock)
        .await
        .expect("lock the database");
    command
        .args(["crawl", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info");
    let child = started_with_open(command, &harness.db_path()).await;
    send_signal(child.id(), signal);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    sqlx::query("ROLLBACK")
        .execute(&mut lock)
        .await
        .expect("unlock the database");
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("the binary ran")
        .expect("wait for the binary");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{:?}\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
    (stdout, stderr)
}

/// The binary started with `signal` ignored: SIGHUP as under `nohup`, SIGINT as a
/// shell script's background job.
#[cfg(target_os = "linux")]
fn started_ignoring(signal: &str) -> Command {
    let mut shell = Command::new("sh");
    shell.args([
        "-c",
        &format!("trap '' {signal}; exec \"$@\""),
        "sh",
        env!("CARGO_BIN_EXE_pipecrawl"),
    ]);
    shell
}

/// Ctrl-C is heard for the whole life of the process, not only while pages are fetched:
/// before, a signal while the crawl started up (here: waiting for a database another
/// program holds locked) killed the process outright, and one during the index build at
/// a crawl's end (a minute for millions of links) was swallowed, twice and SIGTERM too.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_while_the_crawl_starts_stops_it_gracefully() {
    let crawl = Command::new(env!("CARGO_BIN_EXE_pipecrawl"));
    let (stdout, _) = a_crawl_signalled_at_its_start(crawl, "INT").await;
    assert!(stdout.contains("(interrupted)"), "{stdout}");
}

/// An admin token no request could present (a byte an HTTP header cannot carry as text:
/// every request would get 401), or a `PIPECRAWL_ADMIN_TOKEN` that is not UTF-8 (it was
/// skipped, leaving the file's token in force unsaid) is refused, naming where it came
/// from.
#[cfg(unix)]
#[test]
fn an_admin_token_no_request_could_present_is_refused_naming_its_source() {
    use std::os::unix::ffi::OsStrExt;

    let harness = Harness::default();
    let run = |token: &str, env: Option<&[u8]>| {
        let config = harness.write_config(&harness.test_config_text(
            &["http://127.0.0.1:1/".to_owned()],
            &format!("[admin]\ntoken = {token:?}\n"),
        ));
        let mut command = Command::new(env!("CARGO_BIN_EXE_pipecrawl"));
        command
            .args(["crawl", "--config"])
            .arg(config)
            .env("RUST_LOG", "warn")
            .env_remove("PIPECRAWL_ADMIN_TOKEN");
        if let Some(value) = env {
            command.env("PIPECRAWL_ADMIN_TOKEN", std::ffi::OsStr::from_bytes(value));
        }
        let out = command.output().expect("run the pipecrawl binary");
        (out.status.code(), text(&out.stderr))
    };

    let (code, stderr) = run("from-the-file", Some(b"tok\xffen"));
    assert_eq!(code, Some(78), "{stderr}");
    assert!(
        stderr.contains("`PIPECRAWL_ADMIN_TOKEN` (an environment variable) is not UTF-8"),
        "{stderr}"
    );

    let (code, stderr) = run("tök en", None);
    assert_eq!(code, Some(78), "{stderr}");
    assert!(
        stderr.contains("line 3: `admin.token` has 'ö', which an HTTP header cannot carry"),
        "{stderr}"
    );

    let (code, stderr) = run("from-the-file", Some("tab\tand space ok".as_bytes()));
    assert_eq!(code, Some(NOTHING_ANSWERED), "{stderr}");
}

/// With `--log-format json` the error that ends the process is a JSON line too: a log
/// shipper parsing stderr line by line got the one message that mattered as plain text,
/// a config's problems as several lines that were not JSON.
#[test]
fn with_json_logs_the_error_that_ends_the_process_is_one_json_object() {
    let harness = Harness::default();
    let config = harness
        .write_config("seeds = [\"ftp://example.com/\"]\n[politeness]\nper_host_concurrency = 0\n");
    let out = Command::new(env!("CARGO_BIN_EXE_pipecrawl"))
        .args(["--log-format", "json", "crawl", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run the pipecrawl binary");
    let stderr = refused(&out);
    let lines = json_records(&stderr);
    assert_eq!(lines.len(), 1, "{stderr}");
    assert_eq!(lines[0]["level"], "ERROR", "{stderr}");
    let message = lines[0]["fields"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("2 problem(s)"), "{message}");
    assert!(
        message.contains("line 3: `politeness.per_host_concurrency` must be at least 1"),
        "{message}"
    );
}

/// With `--log-format json` a command line the binary cannot read is said in one JSON
/// line too, with clap's exit code: it was clap's several plain lines (the error, the
/// usage, a hint), which a log shipper reading stderr line by line could not parse, from
/// a unit file whose option an upgrade had renamed, say. Help stays text, on stdout.
#[test]
fn with_json_logs_a_command_line_it_cannot_read_is_one_json_object() {
    for (words, says) in [
        (&["--log-format", "json", "crawl"][..], "--config <CONFIG>"),
        (
            &[
                "serve",
                "--log-format=json",
                "--config",
                "x.toml",
                "--retry",
            ],
            "unexpected argument '--retry'",
        ),
        (
            &["--log-format", "json", "query", "pages", "--limit", "-1"],
            "`-1` is not a number of rows",
        ),
    ] {
        let out = pipecrawl(words);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{words:?}: {stderr}");
        let lines = json_records(&stderr);
        assert_eq!(lines.len(), 1, "{words:?}: {stderr}");
        assert_eq!(lines[0]["level"], "ERROR", "{stderr}");
        let message = lines[0]["fields"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{words:?}: {message}");
    }
    let help = pipecrawl(&["--log-format", "json", "crawl", "--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(
        text(&help.stdout).starts_with("Crawl until"),
        "{}",
        text(&help.stdout)
    );
}

/// A config saved in Latin-1 (an accent in a comment) names the line of the first byte
/// that is not UTF-8: the error said only "stream did not contain valid UTF-8".
#[test]
fn a_config_that_is_not_utf8_names_the_line() {
    let harness = Harness::default();
    let config = harness.dir.path().join("latin1.toml");
    std::fs::write(
        &config,
        b"seeds = [\"http://127.0.0.1:1/\"]\n\n# Caf\xe9 pages\n[fetch]\nworkers = 2\n",
    )
    .expect("write the config");
    let out = pipecrawl(&["crawl", "--config", config.to_str().unwrap_or_default()]);
    let stderr = refused(&out);
    assert!(stderr.contains("latin1.toml"), "{stderr}");
    assert!(
        stderr.contains("line 3: byte 0xe9 is not UTF-8"),
        "{stderr}"
    );
}

/// A `RUST_LOG` that is not a filter (a level misspelt: `sqlx=verbose`) is said to be
/// ignored: it fell back to the default level without a word, so the user looked for
/// debug lines that never came.
#[test]
fn a_rust_log_that_is_not_a_filter_is_said_to_be_ignored() {
    let out = Command::new(env!("CARGO_BIN_EXE_pipecrawl"))
        .args(["crawl", "--config", "/nonexistent/pipecrawl.toml"])
        .env("RUST_LOG", "debug,sqlx=verbose")
        .output()
        .expect("run the pipecrawl binary");
    let stderr = refused(&out);
    assert!(
        stderr.contains("RUST_LOG=\"debug,sqlx=verbose\" is not a log filter"),
        "{stderr}"
    );
}

/// Starts `command` (the binary, or a shell that runs it) with `export` of a database of
/// over a megabyte of pages into a directory holding an earlier export, once it is held
/// mid-file: its partial file is a FIFO opened for reading and never read. Returns the
/// process, the output directory and the FIFO's reader, to join once the export ends.
#[cfg(target_os = "linux")]
async fn an_export_held_mid_file(
    harness: &Harness,
    mut command: Command,
) -> (
    std::process::Child,
    std::path::PathBuf,
    std::thread::JoinHandle<std::io::Result<std::fs::File>>,
) {
    let db = harness.db_path();
    pipecrawl::store::Store::open(&db.display().to_string())
        .await
        .expect("a crawl's database");
    // Over a megabyte of lines: more than a pipe holds, so the export blocks writing.
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&db);
    let pool = sqlx::SqlitePool::connect_with(options)
        .await
        .expect("open the database");
    for sql in [
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
         INSERT INTO frontier (id, url, host, depth, priority)
         SELECT i, 'http://a/' || i, 'a', 0, 0 FROM n",
        "INSERT INTO pages (id, url, depth, fetched_at, changed_at, status, title)
         SELECT id, url, 0, '2025-01-01T00:00:00.000Z', '2025-01-01T00:00:00.000Z', 200,
                printf('%.600c', 'x')
         FROM frontier",
    ] {
        sqlx::query(sql).execute(&pool).await.expect(sql);
    }
    pool.close().await;

    let out_dir = harness.dir.path().join("export");
    std::fs::create_dir(&out_dir).expect("the output directory");
    super::query::write_an_earlier_export(&out_dir);
    let partial = out_dir.join(".pages.csv.part");
    let made = Command::new("mkfifo")
        .arg(&partial)
        .status()
        .expect("run mkfifo");
    assert!(made.success(), "mkfifo");
    // Opened for reading (so the export's open does not block) and never read.
    let reader = std::thread::spawn({
        let partial = partial.clone();
        move || std::fs::File::open(partial)
    });
    command
        .args(["export", "--db"])
        .arg(&db)
        .arg("--out")
        .arg(&out_dir)
        .env("RUST_LOG", "warn");
    let child = started_with_open(command, &partial).await;
    (child, out_dir, reader)
}

/// How the export [`an_export_held_mid_file`] started ended, and its stderr.
#[cfg(target_os = "linux")]
async fn the_held_exports_end(
    child: std::process::Child,
    reader: std::thread::JoinHandle<std::io::Result<std::fs::File>>,
) -> (std::process::ExitStatus, String) {
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("the binary ran")
        .expect("wait for the binary");
    drop(reader.join());
    (out.status, text(&out.stderr))
}

/// Ctrl-C, SIGTERM or SIGHUP during `export` stops it, removes its hidden partial file (which may
/// be gigabytes) and leaves an earlier export in the directory as it was: the default
/// action killed the process and left the partial file behind. The export is held
/// mid-file deterministically by making its partial file a FIFO that nobody reads.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_during_export_removes_its_partial_file_and_keeps_the_last_export() {
    // SIGHUP: the terminal or the ssh session that started the export went away.
    for (signal, code) in [("INT", 130), ("TERM", 143), ("HUP", 129)] {
        let harness = Harness::default();
        let export = Command::new(env!("CARGO_BIN_EXE_pipecrawl"));
        let (child, out_dir, reader) = an_export_held_mid_file(&harness, export).await;
        send_signal(child.id(), signal);
        let (status, stderr) = the_held_exports_end(child, reader).await;
        assert_eq!(status.code(), Some(code), "{status:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains("interrupted"), "{stderr}");
        super::query::assert_only_the_earlier_export(&out_dir);
    }
}

/// A crawl's URLs that failed for now (a 503, a host that refused every connection) stay
/// failed once their retries are spent, and running the crawl again fetches nothing;
/// `--retry-failed` asks for them again after the outage, and for nothing that answered
/// (a 404 is an answer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_failed_asks_again_for_what_failed_for_now_in_earlier_runs() {
    let mut builder = SiteBuilder::bind(1).await;
    let host = builder.authority(0);
    builder.add(
        &host,
        "/",
        Resource::Html("<a href='/flaky'>f</a><a href='/gone'>g</a>".into()),
    );
    let flaky = vec![
        Resource::Status(503, "down".into()),
        Resource::Html("<title>Back</title>".into()),
    ];
    builder.add(&host, "/flaky", Resource::Sequence(flaky));
    builder.add(&host, "/gone", Resource::Status(404, "gone".into()));
    let site = builder.start();
    let (_held, refused) = super::refusing_address([127, 0, 0, 9]);
    let refused = format!("http://{refused}/");
    let harness = Harness::default();
    let seeds = [site.url(0, "/"), refused.clone()];
    let config = harness.write_config(&harness.test_config_text(&seeds, ""));
    let config = config.to_str().unwrap_or_default().to_owned();
    let run = |extra: &'static [&'static str]| {
        let config = config.clone();
        async move {
            let out = tokio::task::spawn_blocking(move || {
                let mut args = vec!["crawl", "--config", &config];
                args.extend(extra);
                pipecrawl(&args)
            })
            .await
            .expect("the binary ran");
            assert!(out.status.success(), "{}", text(&out.stderr));
            text(&out.stdout)
        }
    };

    let first = run(&[]).await;
    assert!(first.contains("crawled 4 pages"), "{first}");
    let again = run(&[]).await;
    assert!(again.contains("crawled 0 pages"), "{again}");
    let retried = run(&["--retry-failed"]).await;
    assert!(retried.contains("crawled 2 pages"), "{retried}");

    let db = harness.db().await;
    let flaky = db
        .page(&site.url(0, "/flaky"))
        .await
        .expect("/flaky stored");
    assert_eq!(
        (flaky.status, flaky.title.as_deref()),
        (Some(200), Some("Back"))
    );
    assert_eq!(
        site.count(&site.url(0, "/gone")),
        1,
        "a 404 is not asked again"
    );
    let dead = db.page(&refused).await.expect("the refusing seed stored");
    assert_eq!(dead.error_kind.as_deref(), Some("connect"), "still refused");
}

/// A host that throttles (a 429 whose `Retry-After` is a day, past `retry.max_delay_ms`)
/// or stays down through every retry (a 503) leaves its URLs failed for now, stored with
/// their answer: the summary counted them among the answered `4xx` and `5xx` pages, as it
/// does a 404, and said nothing of `--retry-failed`, which asks them again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_says_how_many_urls_failed_for_now_and_what_asks_them_again() {
    let mut builder = SiteBuilder::bind(1).await;
    let host = builder.authority(0);
    builder.add(
        &host,
        "/",
        Resource::Html("<a href='/quota'>q</a><a href='/down'>d</a><a href='/gone'>g</a>".into()),
    );
    let a_day = vec![("Retry-After".into(), "86400".into())];
    let throttled = Resource::Status(429, "come back tomorrow".into());
    builder.add(
        &host,
        "/quota",
        Resource::WithHeaders(a_day, Box::new(throttled)),
    );
    builder.add(&host, "/down", Resource::Status(503, "down".into()));
    builder.add(&host, "/gone", Resource::Status(404, "gone".into()));
    let site = builder.start();
    let harness = Harness::default();
    let retry = "[retry]\nmax_attempts = 2\nbase_delay_ms = 10\nmax_delay_ms = 1000\n";
    let config = harness.write_config(&harness.test_config_text(&[site.url(0, "/")], retry));
    let stdout = crawl_to_the_end(config).await;
    assert!(stdout.contains("crawled 4 pages"), "{stdout}");
    assert!(
        stdout.contains("failed for now: 2 ") && stdout.contains("--retry-failed"),
        "{stdout}"
    );
}

/// The summary's figures are the database's: a URL that looks like a trap is not fetched
/// but gets a page row (`error_kind = 'trap'`), as one robots.txt disallows does, and is
/// counted as one: by the rules on links (an endless calendar) and by a host's budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_counts_trap_rows_as_the_database_holds_them() {
    let mut builder = SiteBuilder::bind(2).await;
    let (calendar, big) = (builder.authority(0), builder.authority(1));
    builder.add(
        &calendar,
        "/",
        Resource::Html(format!(
            "<a href='/cal?month=1'>c</a><a href='http://{big}/'>big</a>"
        )),
    );
    builder.add_prefix(
        &calendar,
        "/cal",
        Resource::Dynamic(super::hostile::calendar),
    );
    let links: String = (0..8).map(|i| format!("<a href='/{i}'>{i}</a>")).collect();
    builder.add(&big, "/", Resource::Html(links));
    builder.add_prefix(&big, "/", Resource::Html("<title>Leaf</title>".into()));
    let site = builder.start();
    let harness = Harness::default();
    let config = harness.write_config(&harness.config_text(
        &[site.url(0, "/"), site.url(1, "/")],
        "[politeness]\ndelay_ms = 0\n[traps]\nfamily_budget = 3\nmax_pages_per_host = 5\n",
    ));
    let stdout = crawl_to_the_end(config).await;

    let db = harness.db().await;
    let trapped = db
        .scalar("SELECT count(*) FROM pages WHERE error_kind = 'trap'")
        .await;
    assert!(trapped >= 2, "both kinds of trap: {trapped}");
    let pages = db.scalar("SELECT count(*) FROM pages").await;
    let no_answer = db
        .scalar("SELECT count(*) FROM pages WHERE status IS NULL")
        .await;
    assert!(
        stdout.contains(&format!("crawled {pages} pages (")),
        "{pages} pages stored: {stdout}"
    );
    assert!(stdout.contains(&format!(" {no_answer} error)")), "{stdout}");
    assert!(
        stdout.contains(&format!("errors by kind: trap {trapped}\n")),
        "{trapped} trap rows: {stdout}"
    );
}

/// With `--log-format json` everything on stderr is one JSON object per line, so that a
/// log shipper reading it line by line takes each whole: `query`'s notes and what
/// `export` wrote too, not only the crawl's log records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_json_logs_query_notes_and_export_lines_are_json_objects() {
    let mut builder = SiteBuilder::bind(1).await;
    let host = builder.authority(0);
    builder.add(
        &host,
        "/",
        Resource::Html("<a href='/a'>A</a><a href='/b'>B</a>".into()),
    );
    let site = builder.start();
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;
    let db = harness.db_path();
    let out = harness.dir.path().join("export");
    let runs: [&[&str]; 2] = [
        &["query", "pages", "--limit", "1"],
        &["export", "--out", out.to_str().unwrap_or_default()],
    ];
    for args in runs {
        let run = Command::new(env!("CARGO_BIN_EXE_pipecrawl"))
            .args(["--log-format", "json"])
            .args(args)
            .arg("--db")
            .arg(&db)
            .output()
            .expect("run the pipecrawl binary");
        let stderr = text(&run.stderr);
        assert!(run.status.success(), "{args:?}: {stderr}");
        assert!(!stderr.is_empty(), "{args:?} says what it did");
        for value in json_records(&stderr) {
            assert_eq!(value["level"], "INFO", "{args:?}: {value}");
            assert!(value["fields"]["message"].is_string(), "{args:?}: {value}");
        }
    }
}

/// `storage.batch_size` past any use (a slip, `1000000000000`) is refused naming the key,
/// like the pool and channel sizes: the writer set aside room for a batch that large
/// and the process died of it ("memory allocation of … bytes failed") before any page.
#[test]
fn a_batch_size_past_any_use_is_refused_naming_the_key() {
    let harness = Harness::default();
    let config = harness.write_config(&format!(
        "seeds = [\"http://127.0.0.1:1/\"]\n\n[storage]\ndatabase = {:?}\nbatch_size = 1000000000000\n",
        harness.db_path().display().to_string()
    ));
    let out = pipecrawl(&["crawl", "--config", config.to_str().unwrap_or_default()]);
    let stderr = refused(&out);
    assert!(
        stderr.contains("line 5: `storage.batch_size` must be at most 1000000"),
        "{stderr}"
    );
}

/// `fetch.max_headers` past what any head can hold is refused naming the key: hyper sets
/// aside room for that many headers in every response, so `1000000000000000000` failed
/// every page (error_kind 'request', "capacity overflow" on stderr) and `100000000000`
/// had the process killed for its memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_count_past_what_a_head_can_hold_is_refused_naming_the_key() {
    let mut builder = SiteBuilder::bind(1).await;
    let host = builder.authority(0);
    builder.add(&host, "/", Resource::Html("<title>Home</title>".into()));
    let site = builder.start();
    let harness = Harness::default();
    let config = harness.write_config(&harness.test_config_text(
        &[site.url(0, "/")],
        "[fetch]\nmax_headers = 1000000000000000000\n",
    ));
    let out = tokio::task::spawn_blocking(move || {
        pipecrawl(&["crawl", "--config", config.to_str().unwrap_or_default()])
    })
    .await
    .expect("the binary ran");
    let stderr = refused(&out);
    assert!(
        stderr.contains("line 3: `fetch.max_headers` must be at most 102400"),
        "{stderr}"
    );
    assert!(site.hits().is_empty(), "nothing was fetched");
}

/// A user agent no request can carry (a line end from a multi-line TOML string, a
/// control character) is refused naming the key, before anything starts: it was "cannot
/// build the HTTP client: builder error: failed to parse header value", after the
/// database was created, with a tokio panic on stderr.
#[test]
fn a_user_agent_no_request_could_carry_is_refused_naming_the_key() {
    let harness = Harness::default();
    let config = harness.write_config(&harness.test_config_text(
        &["http://127.0.0.1:1/".to_owned()],
        "[fetch]\nuser_agent = \"\"\"\nacmebot/1.0\n\"\"\"\n",
    ));
    let out = pipecrawl(&["crawl", "--config", config.to_str().unwrap_or_default()]);
    let stderr = refused(&out);
    assert!(
        stderr.contains("line 3: `fetch.user_agent` has '\\n'"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!harness.db_path().exists(), "nothing was started");
}

/// The stderr of a run whose config must have been refused (exit 78, sysexits'
/// `EX_CONFIG`), its stdout shown if not.
fn refused(out: &Output) -> String {
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(78),
        "{}\n{stderr}",
        text(&out.stdout)
    );
    stderr
}

/// A database URL of a kind pipecrawl does not write to (`mysql://`, a misspelt
/// `postgress://`) is refused naming the key: it was taken for a SQLite path, and the
/// crawl went into a file under a new directory `mysql:` beside it, exiting 0.
#[test]
fn a_database_url_of_another_kind_is_refused_naming_the_key() {
    let harness = Harness::default();
    let config = harness.write_config(
        "seeds = [\"http://127.0.0.1:1/\"]\n[retry]\nmax_attempts = 1\n\n[storage]\ndatabase = \"mysql://crawler@db.example/crawl\"\n",
    );
    let dir = config.parent().expect("the config's directory").to_owned();
    let out = Command::new(env!("CARGO_BIN_EXE_pipecrawl"))
        .args(["crawl", "--config"])
        .arg(&config)
        .current_dir(&dir)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run the pipecrawl binary");
    let stderr = refused(&out);
    assert!(
        stderr.contains("line 6: `storage.database` names a `mysql://` database"),
        "{stderr}"
    );
    assert!(!dir.join("mysql:").exists(), "nothing was created");
}

/// A PostgreSQL connection string in libpq's keyword/value form, as `psql` and other
/// programs take it, is refused naming the key, by `crawl` and by `query`, without the
/// password it holds: it was taken for a SQLite path, and the crawl went into a new file
/// named after it, password and all, beside the config, exiting 0.
#[test]
fn a_postgres_keyword_value_string_is_refused_without_its_password() {
    let harness = Harness::default();
    let database = "host=127.0.0.1 port=1 dbname=crawl user=crawler password=hunter2";
    let config = harness.write_config(&format!(
        "seeds = [\"http://127.0.0.1:1/\"]\n[retry]\nmax_attempts = 1\n\n[storage]\n\
         database = {database:?}\n"
    ));
    let dir = config.parent().expect("the config's directory").to_owned();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_pipecrawl"))
            .args(args)
            .current_dir(&dir)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run the pipecrawl binary")
    };
    let crawl = refused(&run(&[
        "crawl",
        "--config",
        config.to_str().unwrap_or_default(),
    ]));
    assert!(
        crawl.contains(
            "line 6: `storage.database` is a PostgreSQL connection string in keyword/value form"
        ),
        "{crawl}"
    );
    // `--db` is no config: refused as a database is.
    let query = run(&["query", "--db", database, "top"]);
    assert_eq!(query.status.code(), Some(1));
    let query = text(&query.stderr);
    assert!(
        query.contains("is a PostgreSQL connection string in keyword/value form"),
        "{query}"
    );
    for stderr in [&crawl, &query] {
        assert!(stderr.contains("postgres://"), "{stderr}");
        assert!(!stderr.contains("hunter2"), "{stderr}");
    }
    let made: Vec<_> = std::fs::read_dir(&dir)
        .expect("read the config's directory")
        .filter_map(Result::ok)
        .map(|entry| entry.file_name())
        .filter(|name| name.to_string_lossy().contains("dbname"))
        .collect();
    assert!(made.is_empty(), "nothing was created: {made:?}");
}

/// A proxy the crawler cannot use (SOCKS4, or no URL at all) is refused naming the key,
/// and the message does not repeat the URL, which may hold the proxy's password.
#[test]
fn a_proxy_the_crawler_cannot_use_is_refused_naming_the_key() {
    for (proxy, said) in [
        (
            "socks4://crawler:hunter2@127.0.0.1:1080",
            "`fetch.proxy` must be an http://, https://, socks5:// or socks5h:// URL with a \
             host (got socks4:)",
        ),
        ("hunter2@proxy:3128", "`fetch.proxy` is not a URL"),
    ] {
        let harness = Harness::default();
        let config = harness.write_config(&harness.test_config_text(
            &["http://127.0.0.1:1/".to_owned()],
            &format!("[fetch]\nproxy = {proxy:?}\n"),
        ));
        let out = pipecrawl(&["crawl", "--config", config.to_str().unwrap_or_default()]);
        let stderr = refused(&out);
        assert!(stderr.contains(said), "{stderr}");
        assert!(!stderr.contains("hunter2"), "{stderr}");
        assert!(!harness.db_path().exists(), "nothing was started");
    }
}

/// SOCKS5 carries a user name and a password of at most 255 bytes each (RFC 1929), as
/// they are once their percent-escapes are read. A longer one was sent cut to its length
/// modulo 256, so every URL failed at the proxy, each retried; it is refused naming the
/// key and saying why, without the secret. One of 255 bytes, escaped past that, is fine.
#[test]
fn socks5_credentials_longer_than_socks5_carries_are_refused() {
    let long = "u".repeat(256);
    let escaped = "%41".repeat(255);
    for (proxy, said) in [
        (
            format!("socks5://{long}:hunter2@127.0.0.1:1080"),
            Some("`fetch.proxy` has a user name of 256 bytes"),
        ),
        (
            format!(
                "socks5h://crawler:hunter2{}@127.0.0.1:1080",
                "%C3%A9".repeat(125)
            ),
            Some("`fetch.proxy` has a password of 257 bytes"),
        ),
        (format!("socks5h://crawler:{escaped}@127.0.0.1:1"), None),
        (format!("http://{long}:hunter2@127.0.0.1:1"), None),
    ] {
        let harness = Harness::default();
        let config = harness.write_config(&harness.test_config_text(
            &["http://127.0.0.1:1/".to_owned()],
            &format!("[fetch]\nproxy = {proxy:?}\n"),
        ));
        let out = pipecrawl(&["crawl", "--config", config.to_str().unwrap_or_default()]);
        let Some(said) = said else {
            let stderr = text(&out.stderr);
            assert!(!stderr.contains("`fetch.proxy`"), "{proxy}: {stderr}");
            continue;
        };
        let stderr = refused(&out);
        assert!(stderr.contains(said), "{stderr}");
        assert!(stderr.contains("SOCKS5 carries at most 255"), "{stderr}");
        assert!(!stderr.contains("hunter2"), "{stderr}");
        assert!(!harness.db_path().exists(), "nothing was started");
    }
}

/// A proxy whose name does not exist (a typo) can carry no request: the crawl is refused
/// at start naming the key and the name, before the database is made. It ran, and every
/// URL became a failed row saying so. The proxy's password is not repeated.
#[test]
fn a_proxy_whose_name_does_not_exist_is_refused_at_start() {
    let harness = Harness::default();
    let config = harness.write_config(&harness.test_config_text(
        &["http://pipecrawl.invalid/".to_owned()],
        "[fetch]\nproxy = \"http://crawler:hunter2@proxy.invalid:3128\"\n",
    ));
    let out = pipecrawl(&["crawl", "--config", config.to_str().unwrap_or_default()]);
    let stderr = text(&out.stderr);
    // A name that does not resolve may be the resolver's outage: no config error's 78.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("`fetch.proxy`")
            && stderr.contains("proxy.invalid, which does not resolve"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
    assert!(!harness.db_path().exists(), "nothing was started");
}

/// README's first block of SQL after `heading`.
pub(super) fn readme_sql_after(heading: &str) -> &'static str {
    let readme = include_str!("../../README.md");
    let (_, rest) = readme
        .split_once(heading)
        .unwrap_or_else(|| panic!("README has {heading}"));
    let (_, rest) = rest.split_once("```sql\n").expect("a SQL block");
    let (block, _) = rest.split_once("```").expect("the SQL block ends");
    block
}

/// `pipecrawl query --db DB --format csv sql SQL`, off the test's runtime.
async fn query_sql(db: &str, sql: &str) -> Output {
    let (db, sql) = (db.to_owned(), sql.to_owned());
    tokio::task::spawn_blocking(move || {
        pipecrawl(&["query", "--db", &db, "--format", "csv", "sql", &sql])
    })
    .await
    .expect("the binary ran")
}

/// The statements of README's "Example questions", each with the comment above it.
fn readme_sql_examples() -> Vec<(String, String)> {
    readme_sql_after("### Example questions")
        .split(";\n")
        .filter(|s| !s.trim().is_empty())
        .map(|statement| {
            let (comments, sql): (Vec<&str>, Vec<&str>) =
                statement.lines().partition(|l| l.starts_with("--"));
            (comments.join(" "), sql.join("\n"))
        })
        .collect()
}

/// Crawls five pages (two of one title, one with none, one noindex), a 404 and a redirect
/// to it, a page only the sitemap lists, and one the sitemap lists that the orphan links
/// to through a redirect, into `database` (this harness's SQLite file when `None`), then
/// runs README's example SQL on it through the binary: each statement must run, the
/// status classes read as their alias says, the broken links are those `query broken`
/// reports, the link to the redirect among them, and the audit's questions (links to
/// redirects, missing and duplicate titles, orphans) find what the site has: a page with
/// no title, not a noindex one, which keeps none, nor a redirect, a 404 or a sitemap; an
/// orphan, not a page found first in the sitemap that a link reaches through a redirect.
async fn assert_the_readme_sql_answers(database: Option<&str>) {
    let mut b = SiteBuilder::bind(1).await;
    let host = b.authority(0);
    b.add(
        &host,
        "/",
        Resource::Html(
            "<title>Home</title><a href='/a'>A</a> <a href='/gone'>Gone</a> \
             <a href='/moved'>Moved</a> <a href='/private'>Private</a> <a href='/b'>B</a> \
             <a href='/untitled'>Untitled</a> <a href='/hidden'>Hidden</a>"
                .into(),
        ),
    );
    b.add(
        &host,
        "/robots.txt",
        Resource::Typed(
            "text/plain",
            b"User-agent: *\nDisallow: /private\n".to_vec(),
        ),
    );
    b.add(
        &host,
        "/a",
        Resource::Html("<title>A</title><a href='/'>Home</a>".into()),
    );
    b.add(&host, "/moved", Resource::Redirect(301, "/gone".into()));
    b.add(&host, "/b", Resource::Html("<title>A</title>".into()));
    b.add(&host, "/untitled", Resource::Html("<p>No title</p>".into()));
    let hidden = "<meta name='robots' content='noindex'><title>Hidden</title>";
    b.add(&host, "/hidden", Resource::Html(hidden.into()));
    let sitemap = format!(
        "<urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>\
         <url><loc>http://{host}/orphan</loc></url><url><loc>http://{host}/a</loc></url>\
         <url><loc>http://{host}/found</loc></url><url><loc>http://{host}/docs</loc></url>\
         </urlset>"
    );
    b.add(
        &host,
        "/sitemap.xml",
        Resource::Typed("application/xml", sitemap.into_bytes()),
    );
    b.add(
        &host,
        "/orphan",
        Resource::Html(
            "<title>Orphan</title><a href='/orphan-old'>Self</a><a href='/found-old'>Found</a>"
                .into(),
        ),
    );
    for (old, new) in [
        ("/found-old", "/found"),
        ("/orphan-old", "/orphan"),
        ("/docs", "/docs/"),
    ] {
        b.add(&host, old, Resource::Redirect(301, new.into()));
    }
    let docs = "<title>Docs</title><a href='/docs'>Docs</a>";
    b.add(&host, "/docs/", Resource::Html(docs.into()));
    b.add(
        &host,
        "/found",
        Resource::Html("<title>Found</title>".into()),
    );
    let site = b.start();
    let harness = Harness::default();
    let sqlite = harness.db_path().display().to_string();
    let db = database.unwrap_or(&sqlite).to_owned();
    let config = harness
        .test_config_text(&[site.url(0, "/")], "[scope]\nsitemaps = true\n")
        .replace(&format!("{sqlite:?}"), &format!("{db:?}"));
    let config = pipecrawl::Config::from_toml(&config, "test config").expect("a valid config");
    pipecrawl::crawl(config, std::future::pending())
        .await
        .expect("the crawl succeeds");

    let examples = readme_sql_examples();
    assert_eq!(examples.len(), 9, "{examples:?}");
    let home = site.url(0, "/");
    let gone = site.url(0, "/gone");
    let mut checked = 0;
    for (comment, sql) in examples {
        let out = query_sql(&db, &sql).await;
        let stdout = text(&out.stdout);
        assert!(
            out.status.success(),
            "{comment}\n{sql}\n{}",
            text(&out.stderr)
        );
        let mut rows: Vec<&str> = stdout.lines().skip(1).collect();
        rows.sort_unstable();
        if comment.contains("status class") {
            checked += 1;
            assert_eq!(
                rows,
                ["2xx,9", "3xx,4", "4xx,1", "error,1"],
                "{sql}\n{stdout}"
            );
        }
        if comment.contains("Broken links") {
            checked += 1;
            let linked = |text: &str, target: &str| format!("{home},{text},{target},404,");
            assert_eq!(
                rows,
                [
                    linked("Gone", &gone),
                    linked("Moved", &site.url(0, "/moved"))
                ],
                "{sql}\n{stdout}"
            );
        }
        if comment.contains("Links to redirects") {
            checked += 1;
            let moved = site.url(0, "/moved");
            let (old, found) = (site.url(0, "/found-old"), site.url(0, "/found"));
            let orphan = site.url(0, "/orphan");
            let docs = site.url(0, "/docs");
            assert_eq!(
                rows,
                [
                    format!("{home},Moved,{moved},301,{gone}"),
                    format!("{docs}/,Docs,{docs},301,{docs}/"),
                    format!("{orphan},Found,{old},301,{found}"),
                    format!("{orphan},Self,{orphan}-old,301,{orphan}"),
                ],
                "{sql}\n{stdout}"
            );
        }
        if comment.contains("Missing titles") {
            checked += 1;
            let untitled = site.url(0, "/untitled");
            assert_eq!(rows, [format!("{untitled},200")], "{sql}\n{stdout}");
        }
        if comment.contains("Duplicate titles") {
            checked += 1;
            assert_eq!(rows, ["A,2"], "{sql}\n{stdout}");
        }
        if comment.contains("Orphans") {
            checked += 1;
            let (orphan, docs) = (site.url(0, "/orphan"), site.url(0, "/docs"));
            // The sitemap's `/docs` moves to `/docs/`, reached by its own link alone.
            assert_eq!(
                rows,
                [format!("{docs},301,"), format!("{orphan},200,Orphan")],
                "{sql}\n{stdout}"
            );
        }
    }
    assert_eq!(
        checked, 6,
        "a README example's comment no longer names its question"
    );
}

/// README's example SQL runs on a crawled database as written, and answers what its
/// comment says: "Pages by status class" gave `2`, `4` for `2xx`, `4xx`, since `||`
/// binds tighter than `/` in SQLite, and later a class of NULL for rows with no answer,
/// which `query stats` calls `error`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_sql_examples_answer_what_they_say() {
    assert_the_readme_sql_answers(None).await;
}

/// README's example SQL about links (broken links, links to redirects, orphans) finds
/// the few URLs it is about first and their links through an index: as written before,
/// SQLite read every link (on a crawl of 400,000 pages and 9 million links: broken links
/// 37 s, links to redirects 66 s, and orphans one pass over `links` per page, hours).
/// The most linked-to pages count every link, whichever way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_sql_examples_read_links_through_an_index() {
    let site = TestSite::one_host(&[("/", "<title>Home</title>")]).await;
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;
    let db = harness.db_path().display().to_string();
    for (comment, sql) in readme_sql_examples() {
        if comment.contains("most linked-to") {
            continue;
        }
        let out = query_sql(&db, &format!("EXPLAIN QUERY PLAN {sql}")).await;
        assert!(out.status.success(), "{sql}\n{}", text(&out.stderr));
        let plan = text(&out.stdout);
        // A pass over every link, through the table or a covering index of it.
        let whole = plan.lines().any(|l| {
            ["SCAN l", "SCAN links"].iter().any(|scan| {
                l.split_once(&format!(",{scan}"))
                    .is_some_and(|(_, rest)| rest.is_empty() || rest.starts_with(' '))
            })
        });
        assert!(!whole, "{comment}\n{sql}\n{plan}");
    }
}

/// The setup steps at the top of `config/pipecrawl.service`, run as written but under a
/// scratch root, without `sudo` and without taking ownership (which needs root): the
/// config was installed into `/etc/pipecrawl/`, which nothing made, so `install`
/// failed; and the directory was handed to a user `pipecrawl` that no step made.
#[test]
fn the_service_units_setup_steps_run_as_written() {
    let unit = include_str!("../../config/pipecrawl.service");
    let root = tempfile::tempdir().expect("a scratch root");
    for system_dir in ["usr/local/bin", "etc", "var/lib"] {
        std::fs::create_dir_all(root.path().join(system_dir)).expect("a system directory");
    }
    let steps: Vec<&str> = unit
        .lines()
        .filter_map(|line| line.strip_prefix("#   sudo "))
        .map(|step| step.split_once("  #").map_or(step, |(step, _)| step).trim())
        .collect();
    let user_made = steps
        .iter()
        .position(|step| step.starts_with("useradd ") && step.ends_with(" pipecrawl"));
    for (i, step) in steps.iter().enumerate() {
        let words: Vec<&str> = step.split_whitespace().collect();
        if words.first() != Some(&"install") {
            continue;
        }
        let mut args = Vec::new();
        let mut words = words[1..].iter();
        while let Some(&word) = words.next() {
            if word == "-o" {
                let owner = words.next();
                assert!(
                    owner == Some(&"pipecrawl") && user_made.is_some_and(|made| made < i),
                    "`{step}` hands the directory to a user no earlier step makes"
                );
                continue;
            }
            if word == "-m" {
                args.push(word.to_owned());
                args.extend(words.next().map(|mode| (*mode).to_owned()));
                continue;
            }
            args.push(match word {
                "target/release/pipecrawl" => env!("CARGO_BIN_EXE_pipecrawl").to_owned(),
                w if w.starts_with('/') => format!("{}{w}", root.path().display()),
                w if w.starts_with('-') => w.to_owned(),
                w => format!("{}/{w}", env!("CARGO_MANIFEST_DIR")),
            });
        }
        let out = Command::new("install")
            .args(&args)
            .output()
            .expect("run install");
        assert!(out.status.success(), "`{step}`: {}", text(&out.stderr));
    }
    assert!(root.path().join("etc/pipecrawl/crawl.toml").is_file());
    assert!(root.path().join("var/lib/pipecrawl").is_dir());
    // What `systemctl help pipecrawl` opens.
    for line in unit.lines() {
        if let Some(doc) = line.strip_prefix("Documentation=file://") {
            let installed = root.path().join(doc.trim_start_matches('/'));
            assert!(installed.is_file(), "no step installs {doc}");
        }
    }
}

/// A config's problems are listed in the order of their lines, as README shows them, so
/// that a user mends the file from the top: they came in the order of the checks, so a
/// bad `scope.exclude` on line 5 was said before a bad value on line 3.
#[test]
fn a_configs_problems_are_listed_in_the_order_of_their_lines() {
    let harness = Harness::default();
    let config = harness.write_config(
        "seeds = [\"http://127.0.0.1:1/\"]\n[politeness]\nper_host_concurrency = 0\n[scope]\nexclude = [\"[unclosed\"]\n[fetch]\nworkers = 0\n",
    );
    let stderr = refused(&pipecrawl(&[
        "crawl",
        "--config",
        config.to_str().unwrap_or_default(),
    ]));
    let lines: Vec<&str> = stderr
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("line "))
        .filter_map(|rest| rest.split_once(':').map(|(n, _)| n))
        .collect();
    assert_eq!(lines, ["3", "5", "7"], "{stderr}");
}

/// A regular expression written in double quotes, as Nutch's and most tools' configs
/// take it (`exclude = ["\.pdf$"]`), is a TOML escape: it was refused in TOML's words
/// alone ("missing escaped value, expected `b`, `e`, …"), which say nothing of the
/// single quotes `config/example.toml` writes its patterns in.
#[test]
fn a_pattern_in_double_quotes_is_refused_saying_to_write_it_in_single_quotes() {
    let harness = Harness::default();
    for rule in [
        "[scope]\nexclude = [\"\\.(gif|jpg)$\"]",
        "[scope]\ninclude = [\"/p/\\d+$\"]",
        "[[frontier.boost]]\npattern = \"/docs\\/\"\nboost = 1",
    ] {
        let config = harness.write_config(&format!("seeds = [\"http://127.0.0.1:1/\"]\n{rule}\n"));
        let stderr = refused(&pipecrawl(&[
            "crawl",
            "--config",
            config.to_str().unwrap_or_default(),
        ]));
        assert!(
            stderr.contains("write it in single quotes"),
            "{rule}\n{stderr}"
        );
    }
}

/// What a config of the seeds alone and `[section] key = value` loads to, as text.
fn loaded_with(section: Option<(&str, &str, &toml::Value)>) -> String {
    let mut table = toml::Table::new();
    table.insert("seeds".into(), vec!["https://example.com/"].into());
    // Pinned, or each load generates another.
    let mut cluster = toml::Table::new();
    cluster.insert("node_id".into(), "node".into());
    table.insert("cluster".into(), cluster.into());
    if let Some((name, key, value)) = section {
        let section = table
            .entry(name)
            .or_insert_with(|| toml::Table::new().into());
        if let toml::Value::Table(section) = section {
            section.insert(key.into(), value.clone());
        }
    }
    let text = toml::to_string(&table).expect("a config as TOML");
    format!(
        "{:?}",
        pipecrawl::Config::from_toml(&text, "probe").expect("a valid config")
    )
}

/// The comment lines right above `key = ` in `[section]` of the example.
fn comment_above(example: &str, section: &str, key: &str) -> String {
    let lines: Vec<&str> = example.lines().collect();
    let start = lines
        .iter()
        .position(|line| *line == format!("[{section}]"))
        .unwrap_or_default();
    let at = lines[start..]
        .iter()
        .position(|line| line.starts_with(&format!("{key} = ")))
        .map_or(0, |i| start + i);
    let above = lines[..at]
        .iter()
        .rev()
        .take_while(|line| line.starts_with('#'))
        .copied()
        .collect::<Vec<_>>();
    above.into_iter().rev().collect::<Vec<_>>().join("\n")
}

/// config/example.toml says it shows every key with its default. A key it sets to
/// something else must say so, and what the default is: `scope.exclude` skipped
/// archives there with no word that a config without it skips none.
#[test]
fn the_example_config_shows_each_keys_default_or_says_it_differs() {
    let example = include_str!("../../config/example.toml");
    let table: toml::Table = example.parse().expect("the example is TOML");
    let default = loaded_with(None);
    let mut differing = Vec::new();
    for (name, section) in &table {
        let toml::Value::Table(section) = section else {
            continue;
        };
        for (key, value) in section {
            let rules = matches!(value, toml::Value::Array(items)
                if items.iter().all(toml::Value::is_table) && !items.is_empty());
            if rules || loaded_with(Some((name, key, value))) == default {
                continue;
            }
            let comment = comment_above(example, name, key);
            assert!(
                comment.contains("Absent:") || comment.contains("Default:"),
                "`{name}.{key}` is set to {value} in config/example.toml, which is not its \
                 default, and its comment does not say what is:\n{comment}"
            );
            differing.push(format!("{name}.{key}"));
        }
    }
    assert_eq!(
        differing,
        ["scope.exclude", "scope.max_depth", "scope.max_pages"]
    );
}

/// The column names README's table for `table` names (its first cells, in backticks).
fn readme_columns(table: &str) -> Vec<String> {
    let readme = include_str!("../../README.md");
    let heading = format!("\n**`{table}`**");
    let start = readme
        .find(&heading)
        .unwrap_or_else(|| panic!("README describes `{table}`"));
    let rest = &readme[start..];
    let table_start = rest
        .find("\n| column |")
        .unwrap_or_else(|| panic!("README has a table of `{table}`'s columns"));
    rest[table_start..]
        .lines()
        .skip(3)
        .take_while(|line| line.starts_with('|'))
        .flat_map(|line| {
            let cell = line.split('|').nth(1).unwrap_or_default();
            cell.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// README's tables of the `pages` and `links` columns, the stable contract that
/// `export` writes in full, and of the other tables README's questions read, name every
/// column a crawl's database has: `links.id` was missing, and `frontier` and `hosts`
/// had no table (their times, unix ms where `pages` has RFC 3339, went unsaid).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_names_every_column_of_the_tables_users_query() {
    let site = TestSite::one_host(&[("/", "<title>Home</title><a href='/'>Home</a>")]).await;
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;
    let db = harness.db_path().display().to_string();
    for table in [
        "pages",
        "links",
        "page_changes",
        "frontier",
        "hosts",
        "runs",
    ] {
        let sql = format!("SELECT name FROM pragma_table_info('{table}') ORDER BY name");
        let out = query_sql(&db, &sql).await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        let mut in_database: Vec<String> = text(&out.stdout)
            .lines()
            .skip(1)
            .map(str::to_owned)
            .collect();
        in_database.sort_unstable();
        let mut in_readme = readme_columns(table);
        in_readme.sort_unstable();
        assert_eq!(in_readme, in_database, "README's columns of `{table}`");
    }
}

/// `query links` asked without a URL names both ways of asking: it said only that
/// `--from` was required, and its usage line showed no `--to`.
#[test]
fn links_without_a_url_names_from_and_to() {
    let out = pipecrawl(&["query", "links"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--from <URL>|--to <URL>"), "{stderr}");
}

/// A command line the binary cannot read (an unknown option, a value missing or out of
/// range) ends with clap's exit code 2, before anything runs; README's exit status
/// said that every error that stops a command exits 1, so a script telling a mistyped
/// command from a failed crawl looked for the wrong code.
#[test]
fn the_readme_names_the_exit_code_of_a_command_line_it_cannot_read() {
    let paragraph = readme_paragraph("**Exit status.**")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for words in [
        &["crawl"][..],
        &["crawl", "--config", "crawl.toml", "--no-such-option"],
        &["query", "pages", "--limit", "-1"],
        &[
            "export", "--db", "crawl.db", "--out", "out", "--format", "xml",
        ],
    ] {
        let out = pipecrawl(words);
        let code = out.status.code().expect("an exit code");
        assert!(
            paragraph.contains(&format!(
                "command line it cannot read (an unknown option, a value missing or out of \
                 range) exits {code}"
            )),
            "{words:?} exits {code}, which README's exit status does not say of a \
             command line it cannot read:\n{paragraph}"
        );
    }
}

/// `--db ""` (a script's `--db "$DB"` with the variable unset) is a value missing, said
/// so: it was looked for as a file named nothing ("there is no database at  (/cwd/: …").
/// So is `--host ""`, which selected nothing without a word.
#[test]
fn an_empty_database_or_host_name_is_a_value_missing() {
    for (words, flag) in [
        (&["query", "--db", "", "stats"][..], "--db <DB>"),
        (&["export", "--db", "", "--out", "out"], "--db <DB>"),
        (&["query", "pages", "--host", ""], "--host <HOST>"),
        (&["query", "broken", "--host", ""], "--host <HOST>"),
        (&["query", "top", "--host", ""], "--host <HOST>"),
    ] {
        let out = pipecrawl(words);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{words:?}: {stderr}");
        assert!(
            stderr.contains(&format!("a value is required for '{flag}'")),
            "{words:?}: {stderr}"
        );
    }
}

/// README says its SQL works on PostgreSQL as on SQLite: "The most linked-to pages"
/// selected `p.title` without grouping by it, which PostgreSQL refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_sql_examples_run_on_postgresql() {
    let Some(server) = TestPostgres::start("cli::the_readme_sql_examples_run_on_postgresql") else {
        return;
    };
    let database = server.database("readme_sql").await;
    assert_the_readme_sql_answers(Some(&database)).await;
}

/// README's text from `opening` to the end of its paragraph.
fn readme_paragraph(opening: &str) -> &'static str {
    let readme = include_str!("../../README.md");
    let start = readme
        .find(opening)
        .unwrap_or_else(|| panic!("README says {opening}"));
    let rest = &readme[start..];
    &rest[..rest.find("\n\n").unwrap_or(rest.len())]
}

/// README's paragraph on SIGHUP names every key a reload leaves as it was (those a
/// reload's warning names): it said "the rest of `[politeness]`, pool and channel sizes
/// and the database", so a changed `[recrawl]`, `[retry]`, `[admin]`, `[network]` or
/// `fetch.user_agent` looked as if a reload would apply it.
#[test]
fn the_readme_names_every_key_a_reload_keeps() {
    let paragraph = readme_paragraph("`SIGHUP` (`systemctl reload`)");
    let load = |text: &str| {
        pipecrawl::Config::from_toml(
            &format!("seeds = ['https://example.com/']\n{text}"),
            "t.toml",
        )
        .expect("a valid config")
    };
    let changed = load(
        "[fetch]\nuser_agent = 'other'\n[parse]\nworkers = 3\n\
         [politeness]\nper_host_concurrency = 3\ndelay_ms = 1\nmax_crawl_delay_ms = 1\n\
         respect_robots_txt = false\nrobots_ttl_s = 1\n\
         [[politeness.host]]\npattern = 'a.example'\n\
         [retry]\nmax_attempts = 1\n[frontier]\nwindow = 1\nseen_cache = 1\n\
         [channels]\nto_fetch = 1\n[storage]\nbatch_size = 1\n[shutdown]\ngrace_period_ms = 1\n\
         [admin]\nlisten = '127.0.0.1:1'\n[recrawl]\ninterval_s = 1\n\
         [network]\nallow = ['10.0.0.0/8']\n[traps]\nmax_pages_per_host = 1\n\
         [cluster]\nnode_id = 'n'\nlease_ttl_ms = 1000\n",
    );
    let kept = load("").fixed_until_restart(&changed);
    assert!(kept.len() > 15, "{kept:?}");
    let missing: Vec<&str> = kept
        .into_iter()
        .filter(|key| !paragraph.contains(&format!("`{key}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "README's SIGHUP paragraph does not name {missing:?}"
    );
}

/// The files a crawl leaves beside its database are ignored by git: README's first
/// command crawls into `./crawl.db` of the clone, and `crawl.db-lock` then showed as
/// an untracked file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_files_a_crawl_leaves_in_a_clone_are_ignored_by_git() {
    let site = TestSite::one_host(&[("/", "<title>Home</title>")]).await;
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;
    let ignored: Vec<&str> = include_str!("../../.gitignore")
        .lines()
        .filter_map(|line| line.strip_prefix('*'))
        .collect();
    let left = super::query::beside_database(&harness);
    assert!(left.contains("crawl.db"), "{left:?}");
    let tracked: Vec<&String> = left
        .iter()
        .filter(|name| !ignored.iter().any(|suffix| name.ends_with(suffix)))
        .collect();
    assert!(tracked.is_empty(), "not in .gitignore: {tracked:?}");
}

/// The long options of `pipecrawl ARGS --help` under each heading, in order; `-h`'s help
/// is `--help` under its heading.
fn help_sections(args: &[&str]) -> Vec<(String, Vec<String>)> {
    let mut all = args.to_vec();
    all.push("-h");
    let help = text(&pipecrawl(&all).stdout);
    let mut sections: Vec<(String, Vec<String>)> = Vec::new();
    for line in help.lines() {
        if let Some(heading) = line.strip_suffix(':').filter(|_| !line.starts_with(' ')) {
            sections.push((heading.to_owned(), Vec::new()));
        } else if let Some((_, options)) = sections.last_mut() {
            let option = line.trim_start();
            // `-c, --config <CONFIG>`: the long name.
            let option = option
                .split_once(", ")
                .filter(|(short, _)| short.len() == 2 && short.starts_with('-'))
                .map_or(option, |(_, long)| long);
            if option.starts_with("--") {
                options.extend(option.split(' ').next().map(str::to_owned));
            }
        }
    }
    sections
}

/// The long options of `pipecrawl ARGS --help` under `heading`.
fn options_under(args: &[&str], heading: &str) -> Vec<String> {
    help_sections(args)
        .into_iter()
        .find(|(h, _)| h == heading)
        .map(|(_, options)| options)
        .unwrap_or_default()
}

/// The long options of `pipecrawl ARGS --help`, but for those every question shares.
fn own_options(args: &[&str]) -> Vec<String> {
    options_under(args, "Options")
        .into_iter()
        .filter(|name| name != "--help")
        .collect()
}

/// `--help` of a command listed the options every command takes (`--log-format`), and
/// those every question of `query` takes (`--db`, `--config`, `--format`), among the
/// command's own, in no order a reader could follow: `query pages -h` went `--db`,
/// `--host`, `--log-format`, `--config`, `--status`. Each kind has its heading.
#[test]
fn help_lists_the_options_a_command_shares_under_their_own_headings() {
    let global = vec!["--log-format".to_owned()];
    let question = ["--db", "--config", "--format"].map(str::to_owned).to_vec();
    for args in [
        &["crawl"][..],
        &["serve"],
        &["export"],
        &["query"],
        &["query", "pages"],
    ] {
        let sections = help_sections(args);
        let named = |heading: &str| {
            sections
                .iter()
                .find(|(h, _)| h == heading)
                .map(|(_, options)| options.clone())
                .unwrap_or_default()
        };
        assert_eq!(named("Global options"), global, "{args:?}: {sections:?}");
        let own = named("Options");
        assert!(own.contains(&"--help".to_owned()), "{args:?}: {sections:?}");
        assert!(!own.contains(&global[0]), "{args:?}: {sections:?}");
        if args[0] == "query" {
            assert_eq!(named("Query options"), question, "{args:?}: {sections:?}");
            assert!(
                own.iter().all(|o| !question.contains(o)),
                "{args:?}: {sections:?}"
            );
        }
    }
    assert!(own_options(&["query", "pages"]).contains(&"--limit".to_owned()));
    assert!(own_options(&["export"]).contains(&"--db".to_owned()));
}

/// README's paragraph on each `query` question names each of its options: `links` and
/// `broken` take `--limit`, which README did not mention for them.
#[test]
fn the_readme_names_every_option_of_each_question() {
    let readme = include_str!("../../README.md");
    let (_, section) = readme
        .split_once("\n## Query and export")
        .expect("README's Query and export");
    for (question, heading) in [
        ("pages", "**`pages`**"),
        ("links", "**`links --from URL`**"),
        ("search", "**`search WORDS`**"),
        ("broken", "**`broken`**"),
        ("top", "**`top`**"),
        ("stats", "**`stats`**"),
        ("changes", "**`changes`**"),
        ("sql", "**`sql \"SELECT …\"`**"),
    ] {
        let start = section
            .find(heading)
            .unwrap_or_else(|| panic!("README has {heading}"));
        let paragraph = &section[start..];
        let paragraph = &paragraph[..paragraph.find("\n```").unwrap_or(paragraph.len())];
        let options = own_options(&["query", question]);
        let missing: Vec<&String> = options
            .iter()
            .filter(|option| {
                !regex::Regex::new(&format!(r"{}\b", regex::escape(option)))
                    .is_ok_and(|named| named.is_match(paragraph))
            })
            .collect();
        assert!(
            missing.is_empty(),
            "README's paragraph on `query {question}` does not name {missing:?}"
        );
    }
}

/// The address ranges README and config/example.toml name, each with an address in it.
const REFUSED_RANGES: [(&str, &str); 16] = [
    ("10/8", "10.1.2.3"),
    ("172.16/12", "172.20.0.1"),
    ("192.168/16", "192.168.1.1"),
    ("fc00::/7", "fd12:3456::1"),
    ("169.254/16", "169.254.169.254"),
    ("fe80::/10", "fe80::1"),
    ("fec0::/10", "fec0::1"),
    ("100.64/10", "100.100.0.1"),
    ("198.18/15", "198.19.0.1"),
    ("0/8", "0.1.2.3"),
    ("240/4", "240.0.0.1"),
    ("192.0.0/24", "192.0.0.170"),
    ("2001::/23", "2001:2::1"),
    ("64:ff9b:1::/48", "64:ff9b:1::a00:1"),
    ("100::/64", "100::1"),
    // SRv6 segment identifiers (RFC 9602): a network's own routers, not globally reachable.
    ("5f00::/16", "5f00:1:2::3"),
];

/// Each range the address guard refuses by default is named where README and the
/// example's `[network]` say what is refused, so a user knows what `network.allow` must
/// list: an intranet on IPv6 unique local addresses (fd00::/8) or a lab on the
/// benchmarking range (198.18/15) was refused, though neither list named it.
#[test]
fn the_refused_address_ranges_are_named_in_readme_and_the_example() {
    let guard = readme_paragraph("**The address guard (SSRF).**");
    let example = include_str!("../../config/example.toml");
    let start = example
        .find("\n[network]")
        .expect("the example's [network]");
    let network = &example[start..start + example[start..].find("\nallow").unwrap_or(0)];
    // Whole: `0/8` is not named by `10/8`.
    let names = |text: &str, range: &str| {
        regex::Regex::new(&format!(
            r"(?:^|[^0-9a-f.:]){}(?:[^0-9]|$)",
            regex::escape(range)
        ))
        .is_ok_and(|named| named.is_match(text))
    };
    let policy = pipecrawl::netguard::NetworkPolicy::default();
    for (range, address) in REFUSED_RANGES {
        let ip: std::net::IpAddr = address.parse().expect("an address");
        assert!(!policy.allows(ip), "{address} ({range}) is refused");
        assert!(
            names(guard, range),
            "README's address guard does not name {range}"
        );
        assert!(
            names(network, range),
            "config/example.toml's [network] does not name {range}"
        );
    }
}

/// `seeds = []`: a crawl of a new database has nowhere to start and says so, naming the
/// key; a crawl of a database that holds its seeds from an earlier run continues it (as
/// a second node of a cluster would, with the shared database's seeds). Before, every
/// command refused the config, `serve` and `query` too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_without_seeds_needs_a_database_that_has_them() {
    let site = TestSite::one_host(&[
        ("/", "<title>Home</title><a href='/a'>a</a>"),
        ("/a", "<title>A</title>"),
    ])
    .await;
    let harness = Harness::default();
    let crawl = |seeds: &[String], extra: &str| {
        let config = harness.write_config(&harness.test_config_text(seeds, extra));
        tokio::task::spawn_blocking(move || {
            pipecrawl(&["crawl", "--config", config.to_str().unwrap_or_default()])
        })
    };
    let out = crawl(&[], "").await.expect("the binary ran");
    let stderr = refused(&out);
    assert!(
        stderr.contains("`seeds` names no URL, and ")
            && stderr.contains("holds none from an earlier run"),
        "{stderr}"
    );

    for (seeds, extra) in [
        (vec![site.url(0, "/")], "[scope]\nmax_pages = 1\n"),
        (vec![], ""),
    ] {
        let out = crawl(&seeds, extra).await.expect("the binary ran");
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let db = harness.db().await;
    assert_eq!(
        db.page(&site.url(0, "/a"))
            .await
            .and_then(|p| p.title)
            .as_deref(),
        Some("A"),
        "the second run went on from the first"
    );
}

/// What a crawl whose config has `scope` as its `[scope]` section (from line 3) says
/// as it is refused, with two problems in it.
fn scope_refused(scope: &str) -> String {
    let harness = Harness::default();
    let config = harness.write_config(&format!(
        "seeds = [\"http://127.0.0.1:9/\"]\n[scope]\n{scope}"
    ));
    let stderr = refused(&pipecrawl(&[
        "crawl",
        "--config",
        config.to_str().unwrap_or_default(),
    ]));
    assert!(stderr.contains("2 problem(s)"), "{stderr}");
    stderr
}

/// A pattern with look-ahead, as Nutch's and Scrapy's (Java's, Python's) regular
/// expressions allow to keep all but some URLs (`^(?!.*\.pdf$)`), was refused in the
/// regex crate's words alone: it says how include and exclude do without one.
#[test]
fn a_pattern_with_look_around_is_refused_saying_how_to_do_without() {
    let stderr = scope_refused("include = ['^(?!.*\\.pdf$)']\nexclude = ['(?<!/docs)/print/']\n");
    for line in ["line 3: `scope.include[0]`", "line 4: `scope.exclude[0]`"] {
        assert!(stderr.contains(line), "{line}\n{stderr}");
    }
    assert_eq!(
        stderr
            .matches(
                "(these regular expressions have no look-around: write the URLs to leave out \
                 as `exclude` patterns, those to keep as `include` ones, or the rules in \
                 order in `scope.url_filter`"
            )
            .count(),
        2,
        "{stderr}"
    );
}

/// `.example.com` is how cookies and `no_proxy` say "example.com and its subdomains", and
/// `example..com` is a slip of the keyboard: no URL has such a host, so either entry
/// would keep the crawl on its seeds alone, with nothing said. Both are refused, naming
/// the entry and what to write.
#[test]
fn a_host_entry_with_an_empty_label_is_refused_naming_it() {
    let stderr = scope_refused(
        "hosts = [\n  \"docs.example.com\",\n  \".example.com\",\n  \"example..org\",\n]\n",
    );
    assert!(
        stderr.contains("line 5: `scope.hosts[1]` \".example.com\"")
            && stderr.contains("`*.example.com`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("line 6: `scope.hosts[2]` \"example..org\""),
        "{stderr}"
    );
}

/// `include` and `exclude` match the full URL, so a rule anchored to its path
/// (`^/docs/`, as path-based tools write it) or its host (`^www\.`) can never match: every
/// URL starts with its scheme. Such an `include` crawled the seeds alone and such an
/// `exclude` kept nothing out, with nothing said. They are refused, naming the rule and
/// how to write it.
#[test]
fn an_include_or_exclude_anchored_past_the_scheme_is_refused_naming_it() {
    let stderr = scope_refused(
        "include = ['^https?://[^/]+/docs/', '^/docs/', '/blog/']\nexclude = ['(?i)^www\\.', '^/*http://a/|^/x']\n",
    );
    assert!(
        stderr.contains("line 3: `scope.include[1]` \"^/docs/\" can never match")
            && stderr.contains("^https?://[^/]+/docs/"),
        "{stderr}"
    );
    assert!(
        stderr.contains("line 4: `scope.exclude[0]` \"(?i)^www\\\\.\" can never match"),
        "{stderr}"
    );
}

/// A line of Nutch's `regex-urlfilter.txt` keeps its sign, `+` to keep URLs or `-` to
/// drop them, before the regular expression. Copied into `include` or `exclude` with it,
/// a `+` line was refused in the regex crate's words alone ("repetition operator missing
/// expression"), and a `-` line was taken as a rule for a literal `-`: `-^(?:ftp|mailto):`
/// can never match, `-(?i)\.(?:gif|jpg)$` drops only URLs with a `-.gif`, and the crawl
/// fetched what it was meant to leave out, with nothing said. Both are refused, saying
/// where each kind of line goes and that an exclude wins where Nutch's first match does.
#[test]
fn a_nutch_url_filter_line_with_its_sign_is_refused_saying_where_it_goes() {
    let first = scope_refused(
        "include = ['+^https?://([a-z0-9]*\\.)*example\\.com/', '-print\\.html$']\n\
         exclude = ['-^(?:file|ftp|mailto):']\n",
    );
    assert!(
        !first.contains("scope.include[1]"),
        "a rule for a literal `-` that is no Nutch line stands: {first}"
    );
    let second = scope_refused("exclude = ['-(?i)\\.(?:gif|jpg)$', '+.']\n");
    let said = [
        (&first, "line 3: `scope.include[0]` \"+^https?://([a-z0-9]*\\\\.)*example\\\\.com/\" reads as a line of Nutch's regex-urlfilter.txt"),
        (&first, "write `'^https?://([a-z0-9]*\\.)*example\\.com/'` in `scope.include`"),
        (&first, "line 4: `scope.exclude[0]` \"-^(?:file|ftp|mailto):\" reads as a line of"),
        (&first, "write `'^(?:file|ftp|mailto):'` in `scope.exclude`"),
        (&first, "a URL matching any `scope.exclude` is left out, whatever `scope.include` says"),
        (&second, "line 3: `scope.exclude[0]` \"-(?i)\\\\.(?:gif|jpg)$\" reads as a line of"),
        (&second, "write `'(?i)\\.(?:gif|jpg)$'` in `scope.exclude`"),
        (&second, "line 3: `scope.exclude[1]` \"+.\" reads as a line of"),
        (&second, "write `'.'` in `scope.include`"),
        (&second, "or the file's lines in order, signs and all, in `scope.url_filter`"),
    ];
    let missing: Vec<&str> = said
        .iter()
        .filter(|(stderr, s)| !stderr.contains(s))
        .map(|(_, s)| *s)
        .collect();
    assert!(
        missing.is_empty(),
        "{missing:?} not said in\n{first}\n{second}"
    );
}

/// `scope.url_filter` takes the lines of Nutch's `regex-urlfilter.txt`, each with its
/// sign: one without (a rule copied from `exclude`) is refused naming the line, as is a
/// bad pattern after the sign. An `exclude` written with look-ahead, the way to say
/// "except" in Java's regular expressions, is refused in the regex crate's words, and
/// now with where rules that keep part of what an exclude drops are written.
#[test]
fn a_url_filter_line_needs_its_sign_and_an_exclude_with_look_ahead_names_url_filter() {
    let stderr = scope_refused("url_filter = ['\\.pdf$', '-[unclosed']\n");
    assert!(
        stderr
            .contains("line 3: `scope.url_filter[0]` \"\\\\.pdf$\" has no sign: start it with `+`")
            && stderr.contains("line 3: `scope.url_filter[1]` is not a valid regular expression"),
        "{stderr}"
    );
    let stderr = scope_refused("exclude = ['/archive/(?!2024/)', '(']\n");
    assert!(
        stderr.contains("look-around")
            && stderr.contains(
                "or the rules in order in `scope.url_filter`, `+` to crawl and `-` not to, \
                 where the first that matches decides)"
            ),
        "{stderr}"
    );
}

/// regex-urlfilter.txt's comment and blank lines, pasted into `scope.url_filter` with
/// its rules, were told to start with `+` or `-`: advice to make a rule of a comment.
#[test]
fn a_url_filter_comment_line_is_told_to_be_left_out() {
    // A blank line, and an indented comment, which Nutch skips as well.
    let pasted = [
        "['# skip file: ftp: and mailto: urls', '', '+.']",
        "['  # x', '  ', '+.']",
    ];
    for (lines, told) in pasted
        .iter()
        .zip([["# skip file: ftp: and mailto: urls", ""], ["  # x", "  "]])
    {
        let stderr = scope_refused(&format!("url_filter = {lines}\n"));
        for (i, line) in told.iter().enumerate() {
            let said = format!(
                "`scope.url_filter[{i}]` {line:?} is a comment or blank line of \
                 regex-urlfilter.txt: leave it out"
            );
            assert!(stderr.contains(&said), "{said}\n{stderr}");
        }
    }
}

/// Nutch's stock `regex-urlfilter.txt` drops URLs whose path repeats a segment with a
/// backreference (`-.*(/[^/]+)/[^/]+\1/[^/]+\1/`), which the regex crate has not:
/// pasted into `scope.url_filter`, as README has the file's lines pasted, the line was
/// refused in the crate's words alone. It names the trap rule that does its work.
#[test]
fn a_nutch_loop_line_with_a_backreference_is_refused_naming_the_trap_rule_for_it() {
    let stderr = scope_refused("url_filter = ['-.*(/[^/]+)/[^/]+\\1/[^/]+\\1/', '(']\n");
    assert!(
        stderr.contains("line 3: `scope.url_filter[0]` is not a valid regular expression")
            && stderr.contains("`traps.max_repeated_segment`"),
        "{stderr}"
    );
}

/// `[[frontier.boost]]` and `[[recrawl.rule]]` patterns match the full URL as `include`
/// does, but one anchored to the path (`^/news/`) was taken without a word: the pages it
/// was written for were never boosted, or never revisited at the rule's interval.
#[test]
fn a_boost_or_recrawl_pattern_anchored_past_the_scheme_is_refused_naming_it() {
    let harness = Harness::default();
    let config = harness.write_config(&harness.config_text(
        &["http://127.0.0.1:9/".into()],
        "[[frontier.boost]]\npattern = '^/learn/'\nboost = 1\n\n[[recrawl.rule]]\npattern = '^/news/'\ninterval_s = 3600\n",
    ));
    let stderr = refused(&pipecrawl(&[
        "crawl",
        "--config",
        config.to_str().unwrap_or_default(),
    ]));
    assert!(
        stderr.contains("line 3: `frontier.boost[0].pattern` \"^/learn/\" can never match")
            && stderr.contains("^https?://[^/]+/learn/"),
        "{stderr}"
    );
    assert!(
        stderr.contains("line 7: `recrawl.rule[0].pattern` \"^/news/\" can never match"),
        "{stderr}"
    );
    assert!(
        !harness.db_path().exists(),
        "nothing is created for a bad config"
    );
}

/// `[[politeness.host]]` and `[[fetch.host]]` take the first rule matching a host: a
/// rule after one whose pattern covers it (`a.example.com` after `*.example.com`, a
/// pattern written twice, anything after `*`) never applies, and was taken without a
/// word, its delay or its token silently left out for the very hosts it names.
#[test]
fn a_host_rule_an_earlier_rule_covers_is_refused_naming_both() {
    let harness = Harness::default();
    let config = harness.write_config(&harness.config_text(
        &["http://127.0.0.1:9/".into()],
        "[[politeness.host]]\npattern = '*.Example.com'\ndelay_ms = 100\n\
         [[politeness.host]]\npattern = 'www.example.com'\ndelay_ms = 5000\n\
         [[politeness.host]]\npattern = 'example.com'\ndelay_ms = 9\n\
         [[fetch.host]]\npattern = 'corp.test'\nheaders = { A = 'a' }\n\
         [[fetch.host]]\npattern = '*.corp.test'\nheaders = { B = 'b' }\n\
         [[fetch.host]]\npattern = 'corp.test.'\nheaders = { C = 'c' }\n",
    ));
    let stderr = refused(&pipecrawl(&[
        "crawl",
        "--config",
        config.to_str().unwrap_or_default(),
    ]));
    for said in [
        "line 6: `politeness.host[1].pattern` \"www.example.com\" is never used: \
         `politeness.host[0]` (\"*.Example.com\") comes first and matches every host it does",
        "line 9: `politeness.host[2].pattern` \"example.com\" is never used: \
         `politeness.host[0]` (\"*.Example.com\")",
        "line 18: `fetch.host[2].pattern` \"corp.test.\" is never used: \
         `fetch.host[0]` (\"corp.test\")",
    ] {
        assert!(stderr.contains(said), "{said}\n{stderr}");
    }
    assert!(stderr.contains("3 problem(s)"), "{stderr}");
}

/// A seed as a browser's address bar takes it, without a scheme, was refused as "relative
/// URL without a base" (`example.com`), or as having the scheme `localhost`
/// (`localhost:8080`): the error says to write the scheme, and shows the URL with it.
#[test]
fn a_seed_without_a_scheme_is_refused_showing_it_with_one() {
    let harness = Harness::default();
    let seeds = [
        "example.com",
        "localhost:8080/docs",
        "//Example.org",
        "mailto:a@b.c",
    ];
    let config = harness.write_config(&harness.test_config_text(&seeds.map(String::from), ""));
    let out = pipecrawl(&["crawl", "--config", config.to_str().unwrap_or_default()]);
    let stderr = refused(&out);
    for (i, with_scheme) in [
        "https://example.com/",
        "https://localhost:8080/docs",
        "https://example.org/",
    ]
    .iter()
    .enumerate()
    {
        assert!(
            stderr.contains(&format!(
                "`seeds[{i}]` has no scheme: write `{with_scheme}`"
            )),
            "{stderr}"
        );
    }
    assert!(
        stderr.contains("`seeds[3]` has scheme \"mailto\"; only http and https"),
        "{stderr}"
    );
}

/// With `scope.hosts` set, a seed's host is in scope only if it is named there: a seed on
/// another host is fetched, and its links to its own host are not followed. Written
/// `hosts = ["example.com"]` beside the seed `https://www.example.com/`, the crawl
/// stopped after one page with nothing said; the seed is named in a warning.
#[test]
fn a_seed_on_a_host_scope_hosts_leaves_out_is_named_in_a_warning() {
    let harness = Harness::default();
    let config = harness.write_config(&harness.test_config_text(
        &["http://127.0.0.2:9/".into(), "http://127.0.0.1:9/".into()],
        "[scope]\nhosts = [\"127.0.0.2\"]\n",
    ));
    let out = pipecrawl(&["crawl", "--config", config.to_str().unwrap_or_default()]);
    let stderr = text(&out.stderr);
    assert!(ran_to_its_end(&out), "{stderr}");
    assert!(
        stderr.contains("seeds[1] (http://127.0.0.1:9/) is on a host `scope.hosts` leaves out"),
        "{stderr}"
    );
    assert!(!stderr.contains("seeds[0]"), "{stderr}");
}

/// A seed's password (`http://me:pw@host/`) is the user's to keep: it was printed in the
/// warning of a seed `scope.hosts` leaves out, and in the error of a seed that is no URL,
/// in the config or a seeds file, for logs and terminals others read. Each names the seed
/// with its password hidden, as a PostgreSQL URL's is.
#[test]
fn a_seeds_password_is_never_printed() {
    let harness = Harness::default();
    let config = harness.write_config(&harness.test_config_text(
        &["http://me:s3cret@127.0.0.1:9/".into()],
        "[scope]\nhosts = [\"127.0.0.2\"]\n",
    ));
    let out = pipecrawl(&["crawl", "--config", config.to_str().unwrap_or_default()]);
    let stderr = text(&out.stderr);
    assert!(ran_to_its_end(&out), "{stderr}");
    assert!(
        stderr.contains("seeds[0] (http://me:***@127.0.0.1:9/) is on a host"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");

    let file = harness.dir.path().join("seeds.txt");
    std::fs::write(&file, "http://me:s3cret@127.0.0.1:99999/\n").expect("write the seeds");
    let config = harness.write_config(&harness.config_text(
        &["http://me:s3cret@127.0.0.1:99999/".into()],
        &format!("seeds_file = {:?}\n", file.display().to_string()),
    ));
    let out = pipecrawl(&["crawl", "--config", config.to_str().unwrap_or_default()]);
    let stderr = refused(&out);
    for named in ["seeds[0]", "seeds.txt:1", "http://me:***@127.0.0.1:99999/"] {
        assert!(stderr.contains(named), "{named} in {stderr}");
    }
    assert!(!stderr.contains("s3cret"), "{stderr}");
}
/// Named hosts are not widened by where a seed redirects: with `scope.hosts` naming
/// the apex, a seed on it that moved to `www.` (or to https on another name) ends the
/// crawl at its redirect. That stopped the crawl after one row with nothing said; the
/// redirect left unfollowed is named in a warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeds_redirect_off_the_named_hosts_is_named_in_a_warning() {
    let site = seed_moved_off_the_named_hosts().await;
    let harness = Harness::default();
    let config = harness.write_config(
        &harness.test_config_text(&[site.url(0, "/")], "[scope]\nhosts = [\"127.0.0.1\"]\n"),
    );
    let stderr = crawl_warnings(&config).await;
    assert_eq!(site.count(&site.url(1, "/home")), 0);
    assert_eq!(redirect_warnings(&site, &stderr), 1, "{stderr}");
}

/// A seed's redirect off the named hosts is news once: each revisit of the seed (a
/// service's every `recrawl.interval_s`, a cron job's every run) found it redirecting
/// there still, and said so again, a warning a day per seed at a daily interval, 24 at
/// an hourly one, for as long as the service ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeds_redirect_off_the_named_hosts_is_not_warned_of_again_at_each_revisit() {
    let site = seed_moved_off_the_named_hosts().await;
    let harness = Harness::default();
    let config = harness.write_config(&harness.test_config_text(
        &[site.url(0, "/")],
        "[scope]\nhosts = [\"127.0.0.1\"]\n[recrawl]\ninterval_s = 1\n",
    ));
    let first = crawl_warnings(&config).await;
    assert_eq!(redirect_warnings(&site, &first), 1, "{first}");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let revisit = crawl_warnings(&config).await;
    assert_eq!(site.count(&site.url(0, "/")), 2, "the seed was revisited");
    assert_eq!(redirect_warnings(&site, &revisit), 0, "{revisit}");
    // As if the last visit had found it redirecting elsewhere: where it goes now is news.
    let elsewhere = format!(
        "UPDATE pages SET location = 'http://elsewhere.invalid/' WHERE url = '{}'",
        site.url(0, "/")
    );
    super::query::change_database(&harness, &[elsewhere]).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let moved = crawl_warnings(&config).await;
    assert_eq!(site.count(&site.url(0, "/")), 3, "the seed was revisited");
    assert_eq!(redirect_warnings(&site, &moved), 1, "{moved}");
}

/// A seed on the first host that redirects (301) to `/home` on the second.
async fn seed_moved_off_the_named_hosts() -> TestSite {
    let mut b = SiteBuilder::bind(2).await;
    let (old, new) = (b.authority(0), b.authority(1));
    b.add(
        &old,
        "/",
        Resource::Redirect(301, format!("http://{new}/home")),
    );
    b.add(&new, "/home", Resource::Html("<title>Home</title>".into()));
    b.start()
}

/// `crawl` on `config`, which succeeds: its stderr, logging warnings.
async fn crawl_warnings(config: &std::path::Path) -> String {
    crawl_logging("warn", config).await
}

/// `crawl` on `config`, which succeeds: its stderr, logging at `level`.
pub(super) async fn crawl_logging(level: &'static str, config: &std::path::Path) -> String {
    let config = config.to_owned();
    let out = tokio::task::spawn_blocking(move || {
        pipecrawl_logging(
            level,
            &["crawl", "--config", config.to_str().unwrap_or_default()],
        )
    })
    .await
    .expect("the binary ran");
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    stderr
}

/// A page with more links than `traps.max_links_per_page` is named at `info` once: each
/// revisit that found it as it was (a server sending no validators answers a revisit in
/// full, and the page is read again) named it again, a line per page at every
/// `recrawl.interval_s` of a service, and so did one finding another body with as many
/// left out (a listing generated afresh at each visit); an unchanged page past a cap a
/// restart lowered was not named. It is named when the count left out moves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_past_the_links_cap_is_named_once_not_at_each_revisit() {
    let links = "<a href='/a'>A</a> <a href='/b'>B</a> <a href='/c'>C</a>";
    let site = TestSite::one_host(&[("/", links)]).await;
    let harness = Harness::default();
    let config_with_cap = |cap: u32| {
        harness.write_config(&harness.test_config_text(
            &[site.url(0, "/")],
            &format!("[traps]\nmax_links_per_page = {cap}\n[recrawl]\ninterval_s = 1\n"),
        ))
    };
    let named = |left: &str, cap: u32| {
        format!(
            "{} has {left} more than traps.max_links_per_page ({cap}) keeps",
            site.url(0, "/")
        )
    };
    let config = config_with_cap(2);
    let first = crawl_logging("info", &config).await;
    assert_eq!(first.matches(&named("1 link", 2)).count(), 1, "{first}");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let revisit = crawl_logging("info", &config).await;
    assert_eq!(site.count(&site.url(0, "/")), 2, "the page was revisited");
    assert_eq!(revisit.matches(&named("1 link", 2)).count(), 0, "{revisit}");
    // As if the last visit had found another body, as many left out: no news.
    let other = format!(
        "UPDATE pages SET content_hash = '{}' WHERE url = '{}'",
        "0".repeat(32),
        site.url(0, "/")
    );
    super::query::change_database(&harness, &[other]).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let changed = crawl_logging("info", &config).await;
    assert_eq!(site.count(&site.url(0, "/")), 3, "the page was revisited");
    assert_eq!(changed.matches(&named("1 link", 2)).count(), 0, "{changed}");
    // The same page under a lower cap leaves more out: it is named again.
    let config = config_with_cap(1);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let lowered = crawl_logging("info", &config).await;
    assert_eq!(site.count(&site.url(0, "/")), 4, "the page was revisited");
    assert_eq!(
        lowered.matches(&named("2 links", 1)).count(),
        1,
        "{lowered}"
    );
}

/// The warnings in `stderr` that the seed of [`seed_moved_off_the_named_hosts`]'s `site`
/// redirects off the named hosts.
fn redirect_warnings(site: &TestSite, stderr: &str) -> usize {
    let target = site.url(1, "/home");
    stderr
        .matches(&format!(
            "redirects to {target}, on a host `scope.hosts` leaves out"
        ))
        .count()
}

/// A request header the crawler sets itself (`User-Agent`, which robots.txt rules are
/// matched on; the connection's framing; its revalidation), a name that is not one and
/// a value with a line break are refused, each named with its line.
#[test]
fn request_headers_the_crawler_sets_or_cannot_send_are_refused_naming_them() {
    let harness = Harness::default();
    let config = harness.write_config(
        "seeds = [\"http://127.0.0.1:9/\"]\n\
         [fetch.headers]\n\
         From = \"ops@example.com\"\n\
         User-Agent = \"Mozilla/5.0\"\n\
         \"Bad Name\" = \"x\"\n\
         [[fetch.host]]\n\
         pattern = \"intranet.example.com\"\n\
         headers = { Authorization = \"Bearer t\\n\", Host = \"elsewhere\" }\n",
    );
    let stderr = refused(&pipecrawl(&[
        "crawl",
        "--config",
        config.to_str().unwrap_or_default(),
    ]));
    assert!(stderr.contains("4 problem(s)"), "{stderr}");
    for expected in [
        "line 4: `fetch.headers.User-Agent` cannot be set here: use fetch.user_agent",
        "line 5: `fetch.headers.Bad Name` \"Bad Name\" is not a header name",
        "`fetch.host[0].headers.Authorization` holds a byte a header cannot",
        "`fetch.host[0].headers.Host` cannot be set here",
    ] {
        assert!(stderr.contains(expected), "{expected:?} in {stderr}");
    }
}

/// `nohup pipecrawl export … &` starts the export with SIGHUP ignored, so that it outlives
/// the ssh session that started it. Before, the export listened for SIGHUP all the same
/// and stopped at the logout, its files removed; a signal ignored from the start now
/// stays ignored, and Ctrl-C still stops it.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_started_under_nohup_outlives_the_hangup() {
    let harness = Harness::default();
    let (mut child, out_dir, reader) =
        an_export_held_mid_file(&harness, started_ignoring("HUP")).await;
    send_signal(child.id(), "HUP");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let after_hangup = child.try_wait().expect("the export's state");
    if after_hangup.is_none() {
        send_signal(child.id(), "INT");
    }
    let (status, stderr) = the_held_exports_end(child, reader).await;
    assert_eq!(after_hangup, None, "stopped by SIGHUP: {stderr}");
    assert_eq!(status.code(), Some(130), "{status:?}: {stderr}");
    assert!(stderr.contains("interrupted by SIGINT"), "{stderr}");
    super::query::assert_only_the_earlier_export(&out_dir);
}

/// A crawl run from a terminal or an ssh session that goes away gets SIGHUP. It was
/// killed by it outright, exiting without its summary, its link counts left behind
/// and the WAL not folded in; it now stops as on Ctrl-C, exit 0, and says why. Under `nohup` the
/// hang-up stays ignored and the crawl goes on to its end.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hangup_stops_a_crawl_gracefully_unless_started_under_nohup() {
    let crawl = Command::new(env!("CARGO_BIN_EXE_pipecrawl"));
    let (stdout, stderr) = a_crawl_signalled_at_its_start(crawl, "HUP").await;
    assert!(stdout.contains("(interrupted)"), "{stdout}");
    assert!(stderr.contains("SIGHUP: stopping"), "{stderr}");

    let (stdout, _) = a_crawl_signalled_at_its_start(started_ignoring("HUP"), "HUP").await;
    assert!(!stdout.contains("(interrupted)"), "{stdout}");

    // Unlike SIGHUP, SIGINT is heard however the process started: `kill -INT $!` is how
    // a script stops the background job it started, whose SIGINT the shell ignores.
    let (stdout, _) = a_crawl_signalled_at_its_start(started_ignoring("INT"), "INT").await;
    assert!(stdout.contains("(interrupted)"), "{stdout}");
}

/// On a terminal, a log line written while the progress bar showed was glued to the
/// bar's text (`⠁ 00:00:01 0 pages, … 0 errors  2026-… INFO … scope.max_pages
/// reached`), which stayed on screen in front of it. The bar is now taken down while a
/// line is written, and drawn again under it. `script` gives the crawl a terminal.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_on_a_terminal_are_not_written_into_the_progress_bar() {
    // Slow, so that the bar is up when the limit's line is logged.
    let site =
        TestSite::slow_home(std::time::Duration::from_millis(1500), "<a href='/a'>a</a>").await;
    // A terminal that draws the bar, whatever runs the tests.
    let terminal = super::terminal::crawl_on_a_terminal_from(
        site.url(0, "/"),
        "[scope]\nmax_pages = 1\n",
        &[("TERM", "xterm")],
    )
    .await;
    assert!(terminal.contains("in progress"), "no bar: {terminal:?}");
    let logged = terminal
        .lines()
        .find(|line| line.contains("scope.max_pages reached"))
        .unwrap_or_else(|| panic!("the limit's line: {terminal:?}"));
    // What stays on screen: the text after the line's last carriage return and erase.
    let shown = logged.rsplit("\r\u{1b}[2K").next().unwrap_or(logged);
    assert!(
        !shown.contains("in progress"),
        "the line and the bar: {logged:?}"
    );
}

/// Every start of a node on PostgreSQL logged the server's notice `relation
/// "_sqlx_migrations" already exists, skipping` twice, at INFO, as if something were
/// amiss with the schema: the migrator's `CREATE TABLE IF NOT EXISTS`, which is how an
/// up-to-date database always answers. The server's notices are not the node's news.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_on_postgresql_logs_no_server_notices() {
    let Some(server) = TestPostgres::start("cli::a_node_on_postgresql_logs_no_server_notices")
    else {
        return;
    };
    let database = server.database("notices").await;
    let harness = Harness::default();
    let config = harness.write_config(&format!(
        "seeds = [\"http://127.0.0.1:9/\"]\n[retry]\nmax_attempts = 1\n\
         [storage]\ndatabase = {database:?}\n"
    ));
    let config = config.to_str().unwrap_or_default().to_owned();
    for run in ["first", "second"] {
        let out = pipecrawl_at_info(&["crawl", "--config", &config]);
        let stderr = text(&out.stderr);
        assert!(ran_to_its_end(&out), "{run}: {stderr}");
        assert!(!stderr.contains("notice"), "{run}: {stderr}");
    }
}

/// What the binary says on stderr of a count of one has its noun in the singular: it was
/// "1 links to 1 URLs broken", "(the first 1 rows; …)", "wrote 1 rows", "1 broken links
/// (--fail)", "has 1 links more than traps.max_links_per_page" and "none of the 1 URLs
/// this run tried got an answer".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_of_one_are_said_in_the_singular() {
    let mut builder = SiteBuilder::bind(1).await;
    let host = builder.authority(0);
    builder.add(
        &host,
        "/",
        Resource::Html("<a href='/gone'>Gone</a> <a href='/left-out'>Left out</a>".into()),
    );
    let site = builder.start();
    let harness = Harness::default();
    let config = harness.write_config(
        &harness.test_config_text(&[site.url(0, "/")], "[traps]\nmax_links_per_page = 1\n"),
    );
    let db = harness.db_path().display().to_string();
    let export = harness.dir.path().join("export");
    let links_csv = export.join("links.csv");
    let export = export.display().to_string();
    // A seed on a port nothing listens on.
    let (_held, closed) = super::refusing_address([127, 0, 0, 1]);
    let unanswered = Harness::default();
    let unanswered_config =
        unanswered.write_config(&unanswered.test_config_text(&[format!("http://{closed}/")], ""));
    let runs: [(&[&str], String); 6] = [
        (
            &["crawl", "--config", config.to_str().unwrap_or_default()],
            format!(
                "{} has 1 link more than traps.max_links_per_page (1) keeps",
                site.url(0, "/")
            ),
        ),
        (
            &["query", "--db", &db, "broken"],
            "1 link to 1 URL broken".to_owned(),
        ),
        (
            &["query", "--db", &db, "broken", "--fail"],
            "error: 1 broken link (--fail)".to_owned(),
        ),
        (
            &["query", "--db", &db, "pages", "--limit", "1"],
            "(the first 1 row; --limit 0 shows all)".to_owned(),
        ),
        (
            &["export", "--db", &db, "--out", &export],
            format!("wrote 1 row to {}", links_csv.display()),
        ),
        (
            &[
                "crawl",
                "--config",
                unanswered_config.to_str().unwrap_or_default(),
            ],
            "error: no page was fetched: the 1 URL this run tried got no answer".to_owned(),
        ),
    ];
    let mut unsaid = Vec::new();
    for (args, says) in runs {
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let out = tokio::task::spawn_blocking(move || {
            pipecrawl_at_info(&args.iter().map(String::as_str).collect::<Vec<_>>())
        })
        .await
        .expect("the binary ran");
        let stderr = text(&out.stderr);
        if !stderr.contains(&says) {
            unsaid.push(format!("{says:?} in:\n{stderr}"));
        }
    }
    assert!(unsaid.is_empty(), "{}", unsaid.join("\n"));
}

/// A crawl through `fetch.proxy` in which not one URL got an answer (the proxy down, or
/// refusing every tunnel) ended asking "are the seeds' hosts up, and reachable from
/// here?": the sites were never asked, and a user went looking at servers that run. The
/// last line names the proxy, which carries every request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_no_url_of_which_got_through_the_proxy_names_the_proxy_at_its_end() {
    let (_held, closed) = super::refusing_address([127, 0, 0, 1]);
    let harness = Harness::default();
    let extra = format!("[fetch]\nproxy = \"http://{closed}\"\n");
    let config = harness
        .write_config(&harness.test_config_text(&["http://pipecrawl.invalid/".to_owned()], &extra));
    let stderr = crawl_unanswered(config).await;
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.contains("no page was fetched"), "{stderr}");
    assert!(last.contains("fetch.proxy"), "{last}");
    assert!(!last.contains("reachable from here"), "{last}");
}

/// The seed of [`proxied_home_and_pages`].
const PROXIED_HOME: &str = "http://pipecrawl.invalid/";

/// The pages [`PROXIED_HOME`] links to.
fn proxied_pages() -> Vec<String> {
    (1..=3).map(|i| format!("{PROXIED_HOME}{i}")).collect()
}

/// A proxy serving [`PROXIED_HOME`], titled "Home", and [`proxied_pages`], each titled
/// "P", and a relay to it that a test takes down and brings back.
async fn proxied_home_and_pages() -> (RawSite, super::relay::Relay) {
    let pages = proxied_pages();
    let links: String = pages
        .iter()
        .map(|p| format!("<a href='{p}'>p</a>"))
        .collect();
    let home = format!("<title>Home</title>{links}");
    let mut routes = vec![(PROXIED_HOME, RawReply::ok("text/html", home.as_str()))];
    routes.extend(
        pages
            .iter()
            .map(|p| (p.as_str(), RawReply::ok("text/html", "<title>P</title>"))),
    );
    let proxy = RawSite::start(routes).await;
    let relay = super::relay::Relay::start(&proxy.authority).await;
    (proxy, relay)
}

/// Takes `relay` down once the seed's answer has passed it, before its links are asked
/// (the host's delay leaves time): the proxy counts a request before it answers, and a
/// relay taken down then cut the seed's answer off.
async fn proxy_down_after_the_seed(proxy: &RawSite, relay: &mut super::relay::Relay) {
    while proxy.count(PROXIED_HOME) == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    relay.down().await;
}

/// Asserts that [`proxied_pages`] are stored with their titles, after a crawl that said
/// `stderr`; returns the database.
async fn proxied_pages_crawled(harness: &Harness, stderr: &str) -> super::Db {
    let db = harness.db().await;
    for page in &proxied_pages() {
        let row = db.page(page).await.expect("a row");
        assert_eq!(
            row.title.as_deref(),
            Some("P"),
            "{page}: {:?}\n{stderr}",
            row.error
        );
    }
    db
}

/// A proxy restarted mid-crawl, down for a few seconds: every URL that met it failed,
/// spending its attempts within its backoff's seconds, and was left a failed row for
/// `--retry-failed`. Once the proxy has carried a request, the fetch waits for it to take
/// connections again, saying so, and the URLs spend no attempt (here they have one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_down_for_a_while_is_waited_for_and_its_urls_spend_no_attempt() {
    let (proxy, mut relay) = proxied_home_and_pages().await;
    let seed = PROXIED_HOME;
    let harness = Harness::default();
    // The host's delay leaves time to take the proxy down between the seed and its links.
    let extra = format!(
        "[fetch]\nproxy = \"http://127.0.0.1:{}\"\n[politeness]\ndelay_ms = 1500\n",
        relay.port
    );
    let config = harness.write_config(&harness.test_config_text(&[seed.to_owned()], &extra));
    let crawl = tokio::spawn(crawl_by_binary(config));
    proxy_down_after_the_seed(&proxy, &mut relay).await;
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    relay.up().await;
    let out = crawl.await.expect("the crawl ran");
    let stderr = text(&out.stderr);

    let db = proxied_pages_crawled(&harness, &stderr).await;
    assert!(
        stderr.contains("fetch.proxy takes no connections")
            && stderr.contains("fetch.proxy takes connections again"),
        "{stderr}"
    );
    let slowest = db.scalar("SELECT max(elapsed_ms) FROM pages").await;
    assert!(
        slowest < 4000,
        "the wait for the proxy counted as the site's: {slowest} ms"
    );
}

/// A stop (Ctrl-C, `systemctl stop`) while the fetches waited out an outage of
/// `fetch.proxy` waited the whole `shutdown.grace_period_ms` for them, though none could
/// end before the proxy was back: the stop hands their URLs back to the queue at once,
/// saying why, and the next start crawls them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_during_an_outage_of_the_proxy_hands_its_urls_back_at_once() {
    let (proxy, mut relay) = proxied_home_and_pages().await;
    let (seed, pages) = (PROXIED_HOME, proxied_pages());
    let harness = Harness::default();
    let extra = format!(
        "[fetch]\nproxy = \"http://127.0.0.1:{}\"\n[politeness]\ndelay_ms = 1500\n\
         [shutdown]\ngrace_period_ms = 120000\n",
        relay.port
    );
    let config = harness.write_config(&harness.test_config_text(&[seed.to_owned()], &extra));
    let child = Command::new(env!("CARGO_BIN_EXE_pipecrawl"))
        .args(["crawl", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the pipecrawl binary");
    proxy_down_after_the_seed(&proxy, &mut relay).await;
    // Past the host's delay, the links have met the proxy down.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    send_signal(child.id(), "TERM");
    let signalled = std::time::Instant::now();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("the binary ran")
        .expect("wait for the binary");
    let stopped_in = signalled.elapsed();
    let stderr = text(&out.stderr);
    assert!(
        stopped_in < std::time::Duration::from_secs(60),
        "the stop took {stopped_in:?}\n{stderr}"
    );
    assert!(
        stderr.contains(
            "fetch.proxy takes no connections: the stop does not wait for it, and the fetches \
             waiting for it go back to the queue"
        ),
        "{stderr}"
    );

    relay.up().await;
    let again = harness.write_config(&harness.test_config_text(&[seed.to_owned()], &extra));
    let out = crawl_by_binary(again).await;
    proxied_pages_crawled(&harness, &text(&out.stderr)).await;
    assert_eq!(
        proxy.count(&pages[0]),
        1,
        "a URL handed back was asked once"
    );
}

/// The crawler's own network gone for a few seconds (Wi-Fi dropped, a VPN reconnecting):
/// every site refused connections at once, each URL spent its attempts within its
/// backoff's seconds, and the crawl's queue became failed rows blaming each site. Once the
/// network has carried a request, every host failing to connect is read as the network's
/// outage: the fetch waits for it, saying so, and the URLs spend no attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_of_the_crawlers_own_network_is_waited_for_and_its_urls_spend_no_attempt() {
    let mut builder = SiteBuilder::bind(3).await;
    let authorities: Vec<String> = (0..3).map(|i| builder.authority(i)).collect();
    for authority in &authorities {
        builder.add_home_and_pages(authority, 2);
    }
    let site = builder.start();
    let mut relays = Vec::new();
    for (i, authority) in authorities.iter().enumerate() {
        relays.push(super::relay::Relay::start_on(&format!("127.0.0.{}", 11 + i), authority).await);
    }
    let seeds: Vec<String> = relays
        .iter()
        .map(|relay| format!("http://{}/", relay.authority()))
        .collect();
    let harness = Harness::default();
    // The hosts' delay leaves time to take the network down between the seeds and their
    // links; each URL has two attempts, spent within a second of backoff.
    let extra = "[politeness]\ndelay_ms = 1500\n\
                 [retry]\nmax_attempts = 2\nbase_delay_ms = 100\nmax_delay_ms = 200\n";
    let config = harness.write_config(&harness.test_config_text(&seeds, extra));
    let crawl = tokio::spawn(crawl_by_binary(config));
    while authorities
        .iter()
        .any(|authority| site.hits_at(authority, "/").is_empty())
    {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    for relay in &mut relays {
        relay.down().await;
    }
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    for relay in &mut relays {
        relay.up().await;
    }
    let out = crawl.await.expect("the crawl ran");
    let stderr = text(&out.stderr);

    let db = harness.db().await;
    for seed in &seeds {
        for page in ["0", "1"] {
            let url = format!("{seed}{page}");
            let row = db.page(&url).await.expect("a row");
            assert_eq!(
                row.title.as_deref(),
                Some(format!("Page {page}").as_str()),
                "{url}: {:?}\n{stderr}",
                row.error
            );
        }
    }
    assert!(
        stderr.contains("every host fails to connect") && stderr.contains("the network is back"),
        "{stderr}"
    );
}

/// A crawl in which not one URL got an answer (every seed's server down, a firewall, no
/// network) stored nothing but error rows: it ends with exit code 4 and a last line
/// that says so, so that `pipecrawl crawl … && next-step` in cron or CI stops there. A
/// crawl in which some URLs failed (a 5xx, one host down) still exits 0. It exited 0,
/// with nothing fetched, like a crawl that succeeded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_in_which_no_url_got_an_answer_exits_4_saying_so() {
    // A port nothing listens on: connecting is refused.
    let (_held, closed) = super::refusing_address([127, 0, 0, 1]);
    let seeds = [
        format!("http://{closed}/"),
        format!("http://{closed}/other"),
    ];
    let harness = Harness::default();
    let config = harness.write_config(&harness.test_config_text(&seeds, ""));
    let out = tokio::task::spawn_blocking(move || {
        pipecrawl(&["crawl", "--config", config.to_str().unwrap_or_default()])
    })
    .await
    .expect("the binary ran");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(NOTHING_ANSWERED),
        "{stdout}{stderr}"
    );
    assert!(stdout.contains("crawled 2 pages (2 error)"), "{stdout}");
    assert!(
        stderr.contains(
            "error: no page was fetched: none of the 2 URLs this run tried got an answer"
        ),
        "{stderr}"
    );
    assert_eq!(harness.page_count().await, 2);

    // Run again (a cron job's next night), it finds nothing left and reached no site
    // all the same: it exited 0, "nothing left to crawl", and `&& next-step` ran.
    let stderr =
        crawl_unanswered(harness.write_config(&harness.test_config_text(&seeds, ""))).await;
    assert!(
        stderr.contains("error: no page of this crawl ever got an answer from its server"),
        "{stderr}"
    );

    // One answer, even a 404, is a crawl that reached its site.
    let mut builder = SiteBuilder::bind(1).await;
    let host = builder.authority(0);
    builder.add(&host, "/", Resource::Status(404, "gone".into()));
    let site = builder.start();
    let harness = Harness::default();
    let seeds = [site.url(0, "/"), format!("http://{closed}/")];
    let stdout =
        crawl_to_the_end(harness.write_config(&harness.test_config_text(&seeds, ""))).await;
    assert!(
        stdout.contains("crawled 2 pages (1 4xx, 1 error)"),
        "{stdout}"
    );

    // A site whose robots.txt closes it answered: its rows say why nothing was fetched.
    let mut builder = SiteBuilder::bind(1).await;
    let host = builder.authority(0);
    builder.add(
        &host,
        "/robots.txt",
        Resource::Typed("text/plain", b"User-agent: *\nDisallow: /\n".to_vec()),
    );
    let site = builder.start();
    let harness = Harness::default();
    crawl_to_the_end(harness.write_config(&harness.test_config_text(&[site.url(0, "/")], "")))
        .await;
    let page = harness.db().await.page(&site.url(0, "/")).await;
    assert_eq!(
        page.and_then(|p| p.error_kind).as_deref(),
        Some("robots"),
        "the seed's row says robots.txt closed it"
    );

    // One whose robots.txt fails answered too, though none of its URLs was asked: said
    // so, not only "is it up?", which sent users looking at a server that runs.
    let mut builder = SiteBuilder::bind(1).await;
    let host = builder.authority(0);
    builder.add(&host, "/robots.txt", Resource::Status(500, "down".into()));
    let site = builder.start();
    let harness = Harness::default();
    let config = harness.write_config(&harness.test_config_text(&[site.url(0, "/")], ""));
    let out = tokio::task::spawn_blocking(move || {
        pipecrawl(&["crawl", "--config", config.to_str().unwrap_or_default()])
    })
    .await
    .expect("the binary ran");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(NOTHING_ANSWERED), "{stderr}");
    assert!(
        stderr.contains("its host's robots.txt failing: a 5xx, a 429 or no answer"),
        "{stderr}"
    );
}

/// A page with more distinct (target, anchor text) links than `traps.max_links_per_page`
/// keeps the first ones; the ones left out are counted, distinct as rows are, in its
/// row, a log line naming it and the summary, so that a big index page is not taken for
/// whole. A page that kept all its links says 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_past_its_link_cap_says_how_many_links_it_left_out() {
    let site = TestSite::one_host(&[
        ("/index", &capped_index()),
        ("/small", "<a href='/a'>A</a><a href='/b'>B</a>"),
    ])
    .await;
    let (index, small) = (site.url(0, "/index"), site.url(0, "/small"));
    let harness = Harness::default();
    let config = harness.write_config(&harness.test_config_text(
        &[index.clone(), small.clone()],
        "[scope]\nmax_depth = 0\n[traps]\nmax_links_per_page = 10\n",
    ));
    let out = crawl_at_info(&config).await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");

    let db = harness.db().await;
    let left_out =
        |url: &str| format!("SELECT coalesce(links_left_out, -1) FROM pages WHERE url = '{url}'");
    assert_eq!(db.scalar(&left_out(&index)).await, CAPPED_LEFT_OUT);
    assert_eq!(db.scalar(&left_out(&small)).await, 0);
    assert_eq!(
        db.scalar(&format!(
            "SELECT count(*) FROM links l JOIN pages p ON p.id = l.source_id \
             WHERE p.url = '{index}'"
        ))
        .await,
        10
    );
    let logged: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("traps.max_links_per_page"))
        .collect();
    assert_eq!(logged.len(), 1, "one line, for the one page: {stderr}");
    assert!(
        logged[0].contains(&index) && logged[0].contains(&format!("{CAPPED_LEFT_OUT} links")),
        "{stderr}"
    );
    assert!(
        stdout.contains(&format!(
            "links left out (traps.max_links_per_page): {CAPPED_LEFT_OUT}, on 1 page"
        )),
        "{stdout}"
    );
}

/// A body cut at `fetch.max_body_bytes` is stored and parsed as far as read, its row saying
/// `truncated = 1`; the summary counts such pages, as it counts links left out, so that an
/// archive's run whose captures were cut is not taken for one that captured them whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_that_cut_bodies_says_how_many_in_its_summary() {
    let big = format!("<title>Big</title>{}", "x".repeat(4096));
    let site = TestSite::one_host(&[("/big", &big), ("/small", "<title>Small</title>")]).await;
    let (big, small) = (site.url(0, "/big"), site.url(0, "/small"));
    let harness = Harness::default();
    let config = harness.write_config(&harness.test_config_text(
        &[big.clone(), small],
        "[scope]\nmax_depth = 0\n[fetch]\nmax_body_bytes = 1024\n",
    ));
    let out = crawl_at_info(&config).await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");

    let db = harness.db().await;
    let cut = format!("SELECT truncated FROM pages WHERE url = '{big}'");
    assert_eq!(db.scalar(&cut).await, 1);
    assert!(
        stdout.contains("bodies cut at fetch.max_body_bytes: 1 (of the pages crawled"),
        "{stdout}"
    );
}

/// The links [`capped_index`] has beyond a cap of 10.
pub(super) const CAPPED_LEFT_OUT: i64 = 16;

/// An index page of 25 targets, each linked twice alike, and the first also by other
/// text: 26 distinct (target, anchor text) pairs, the repeats none.
pub(super) fn capped_index() -> String {
    let mut page = String::from("<title>Index</title>");
    for _ in 0..2 {
        for i in 0..25 {
            page.push_str(&format!("<a href='/l/{i}'>item {i}</a>\n"));
        }
    }
    page + "<a href='/l/0'>the first again</a>"
}

/// An inline icon whose `</svg>` was forgotten ends with the link around it, as the tree
/// builder ends it: a script after it is a script, and the link in its string is not
/// stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_in_a_script_after_an_unclosed_svg_is_not_stored() {
    let mut builder = SiteBuilder::bind(1).await;
    let host = builder.authority(0);
    builder.add(
        &host,
        "/",
        Resource::Html(
            "<title>Home</title><a href='/cart'><svg class='icon'><use href='#cart'></a>\
             <section><script>menu.innerHTML = \"<a href='/fake'>x</a>\";</script></section>"
                .into(),
        ),
    );
    let site = builder.start();
    let harness = Harness::default();
    let home = site.url(0, "/");
    let config = harness.write_config(
        &harness.config_text(std::slice::from_ref(&home), "[politeness]\ndelay_ms = 0\n"),
    );
    let out = tokio::task::spawn_blocking(move || {
        pipecrawl(&["crawl", "--config", config.to_str().unwrap_or_default()])
    })
    .await
    .expect("the binary ran");
    assert!(ran_to_its_end(&out), "stderr: {}", text(&out.stderr));
    let targets: Vec<String> = harness
        .db()
        .await
        .links()
        .await
        .into_iter()
        .map(|(_, target, _)| target)
        .collect();
    assert_eq!(targets, [site.url(0, "/cart")]);
}

/// `pipecrawl crawl --config config` at `info`, off the test's runtime threads.
pub(super) async fn crawl_at_info(config: &std::path::Path) -> Output {
    let config = config.to_owned();
    tokio::task::spawn_blocking(move || {
        pipecrawl_at_info(&["crawl", "--config", config.to_str().unwrap_or_default()])
    })
    .await
    .expect("the binary ran")
}

/// Run again, a crawl that finished fetches nothing: Colly's and Scrapy's runs start
/// over, pipecrawl's go on from the database. The second run said only "crawled 0 pages
/// (none) … (frontier empty)", which reads as a site that did not answer; it says that
/// the database holds a finished crawl and how to start over, and leaves out the stages'
/// table, whose shares were of workers with nothing to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_crawl_run_again_says_there_is_nothing_left_and_how_to_start_over() {
    let site = TestSite::one_host(&[
        ("/", "<title>Home</title><a href='/a'>A</a>"),
        ("/a", "<title>Page A</title>"),
    ])
    .await;
    let harness = Harness::default();
    let config = harness.write_config(&harness.test_config_text(&[site.url(0, "/")], ""));
    let said = format!(
        "nothing left to crawl: {} holds the 2 pages of earlier runs",
        harness.db_path().display()
    );
    let first = crawl_at_info(&config).await;
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(
        !text(&first.stderr).contains(&said),
        "{}",
        text(&first.stderr)
    );
    let again = crawl_at_info(&config).await;
    let stderr = text(&again.stderr);
    assert!(again.status.success(), "{stderr}");
    let summary = text(&again.stdout);
    assert!(summary.contains("crawled 0 pages"), "{summary}");
    // The stages' shares of a run that fetched nothing are of idle workers: noise.
    assert!(!summary.contains("stages ("), "{summary}");
    assert!(summary.contains("stored in "), "{summary}");
    assert!(stderr.contains(&said), "{stderr}");
    assert!(
        stderr.contains("To crawl again from the start, remove it"),
        "{stderr}"
    );
    assert_eq!(site.count(&site.url(0, "/a")), 1);
}

/// A finished crawl run again (as one killed once it had stored its last page is) finds
/// nothing left: its line counted only the pages requested ("holds the 2 pages of earlier runs") where
/// `query stats` and `SELECT count(*) FROM pages` count the row of a URL robots.txt
/// disallows too (3), a figure a user checking the database after a kill could not match.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_crawl_run_again_counts_the_pages_the_database_holds() {
    let site = TestSite::one_host(&[
        ("/robots.txt", "User-agent: *\nDisallow: /private\n"),
        (
            "/",
            "<title>Home</title><a href='/a'>A</a><a href='/private'>P</a>",
        ),
        ("/a", "<title>Page A</title>"),
    ])
    .await;
    let harness = Harness::default();
    let config = harness.write_config(&harness.test_config_text(&[site.url(0, "/")], ""));
    let first = crawl_at_info(&config).await;
    assert!(first.status.success(), "{}", text(&first.stderr));
    let rows = harness.page_count().await;
    assert_eq!(rows, 3);
    let again = crawl_at_info(&config).await;
    let stderr = text(&again.stderr);
    assert!(again.status.success(), "{stderr}");
    let said = format!(
        "nothing left to crawl: {} holds the {rows} pages of earlier runs",
        harness.db_path().display()
    );
    assert!(stderr.contains(&said), "{stderr}");
}

/// README runs the crawler as `cargo run --release -- crawl …`, then calls it
/// `pipecrawl` in every example after (`pipecrawl query pages …`), which a shell without
/// it on `PATH` answers "command not found": the text before the first such command says
/// where the binary is, and that it runs on its own.
#[test]
fn the_readme_says_where_the_binary_it_calls_pipecrawl_is_before_calling_it() {
    let readme = include_str!("../../README.md");
    let mut in_code = false;
    let first_call = readme
        .lines()
        .position(|line| {
            if line.starts_with("```") {
                in_code = !in_code;
            }
            let command = line.trim_start().trim_start_matches("$ ");
            in_code && command.starts_with("pipecrawl ")
        })
        .expect("README calls the binary `pipecrawl`");
    let before = readme
        .lines()
        .take(first_call)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        before.contains("target/release/pipecrawl") && before.contains("PATH"),
        "README calls `pipecrawl` at its line {} without saying where it is",
        first_call + 1
    );
}

/// The config file, or a URL as other crawlers' command lines take one (`scrapy
/// fetch URL`, spider-rs's `--url`), written where `--config FILE` goes: clap's
/// "unexpected argument 'crawl.toml' found" said neither that `--config` was missing
/// before it nor where a URL goes. Both say what to write, and still exit 2.
#[test]
fn a_config_or_a_url_given_without_config_says_what_to_write() {
    for command in ["crawl", "serve"] {
        for (given, says) in [
            (
                "crawl.toml".to_owned(),
                format!("write `pipecrawl {command} --config crawl.toml`"),
            ),
            (
                "https://example.com/".to_owned(),
                format!(
                    "a crawl's seeds are written in its config, `seeds = [\"https://example.com/\"]` \
                     (see config/example.toml), given as `pipecrawl {command} --config crawl.toml`"
                ),
            ),
        ] {
            let out = pipecrawl(&[command, &given]);
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{stderr}");
            assert!(stderr.contains(&says), "{command} {given}: {stderr}");
        }
    }
}

/// A URL given beside `--config`, as `scrapy crawl` and wget take a start URL on the
/// command line, got clap's "unexpected argument" alone: it says where the config keeps
/// its seeds.
#[test]
fn a_url_given_beside_a_config_says_to_add_it_to_the_configs_seeds() {
    for command in ["crawl", "serve"] {
        let out = pipecrawl(&[command, "--config", "mine.toml", "https://example.com/"]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(
                "unexpected argument 'https://example.com/': a crawl's seeds are written in \
                 its config: add it to `seeds` in mine.toml"
            ),
            "{command}: {stderr}"
        );
    }
}

/// A URL pattern written as a glob, as wget's `--reject` and shells take one (`*.pdf`,
/// `*/private/*`), was refused in the regex crate's words alone ("repetition operator
/// missing expression"): it says these are regular expressions, found anywhere in the
/// URL, and what the glob is as one.
#[test]
fn a_pattern_written_as_a_glob_is_refused_showing_it_as_a_regular_expression() {
    let stderr = scope_refused("exclude = ['*.pdf', '*/private/*']\n");
    for said in [
        r#""*.pdf" reads as a glob: write `'\.pdf$'`"#,
        r#""*/private/*" reads as a glob: write `'/private/'`"#,
    ] {
        assert!(stderr.contains(said), "{said}\n{stderr}");
    }
}

/// wget's `--reject '*.jpg,*.png'` is a list of globs, one a comma: copied as one pattern
/// it was refused in the regex crate's words alone, as the glob hint took single globs.
#[test]
fn a_wget_list_of_globs_is_refused_showing_each_as_a_regular_expression() {
    let stderr = scope_refused("exclude = ['*.jpg,*.png', '*.gif, *.zip']\n");
    for said in [
        r#""*.jpg,*.png" reads as wget's list of globs: write `'\.jpg$', '\.png$'`"#,
        r#""*.gif, *.zip" reads as wget's list of globs: write `'\.gif$', '\.zip$'`"#,
    ] {
        assert!(stderr.contains(said), "{said}\n{stderr}");
    }
}

/// Go's regular expressions (Colly's `URLFilters`), like Perl's and Java's, quote text
/// between `\Q` and `\E` (to its end without one); the regex crate has no such quoting,
/// and refused a pattern so written in its words alone ("unrecognized escape sequence"):
/// it says what the quoted text is escaped.
#[test]
fn a_pattern_quoting_text_with_q_and_e_is_refused_showing_it_escaped() {
    let stderr =
        scope_refused("include = ['^https://\\Qexample.com\\E/']\nexclude = ['\\Q?print=1']\n");
    for said in [
        r#""^https://\\Qexample.com\\E/" quotes text with `\Q…\E`, which these regular expressions do not: write `'^https://example\.com/'`"#,
        r#""\\Q?print=1" quotes text with `\Q…\E`, which these regular expressions do not: write `'\?print=1'`"#,
    ] {
        assert!(stderr.contains(said), "{said}\n{stderr}");
    }
}

/// Colly's `LimitRule` matches hosts by a glob (`DomainGlob: "*example.com"`,
/// `"*httpbin.*"`), and spider-rs's `with_tld` crawls a name under every top-level
/// domain: written in `scope.hosts` (or a `pattern`), such an entry got "write
/// `example.com` or `*.example.com`" alone. It says what its star can stand for here.
#[test]
fn a_host_written_as_a_glob_is_refused_saying_what_a_star_stands_for() {
    let stderr = scope_refused("hosts = ['*example.com', 'example.*']\n");
    for said in [
        r#""*example.com" is not a host name (write `*.example.com` for example.com and its subdomains)"#,
        r#""example.*" is not a host name (a `*` stands for subdomains alone, as `*.example.com`: write each other name in full, `example.org` beside `example.com`)"#,
    ] {
        assert!(stderr.contains(said), "{said}\n{stderr}");
    }
}

/// Go source writes a regular expression in a string that doubles its backslashes
/// (Colly's own example: `regexp.MustCompile("http://httpbin\\.org/(|e.+)$")`): pasted
/// into the single quotes README advises, each `\\` asks for a backslash in the URL, and
/// the rule was taken, to match nothing, so an `exclude` left in what it was to leave out.
/// It is refused, showing it with its backslashes written once.
#[test]
fn a_pattern_with_its_backslashes_doubled_as_in_go_source_is_refused_showing_them_once() {
    let stderr = scope_refused(
        "include = ['^http://httpbin\\\\.org/(|e.+)$']\nexclude = ['(?i)\\\\.pdf$']\n",
    );
    for said in [
        r"`scope.include[0]` '^http://httpbin\\.org/(|e.+)$' asks for a backslash in the URL at each `\\`, as Go's and Java's source strings write one `\`: in single quotes write `'^http://httpbin\.org/(|e.+)$'`",
        r"'(?i)\\.pdf$' asks for a backslash in the URL at each `\\`",
    ] {
        assert!(stderr.contains(said), "{said}\n{stderr}");
    }
}

/// Go's regular expressions (Colly's `URLFilters`) read a `{` that starts no repetition
/// as itself (`/users/{id}/`, `/a{`); the regex crate refuses it, and said so in its words
/// alone ("repetition quantifier expects a valid decimal"): it shows the braces escaped.
#[test]
fn a_brace_that_starts_no_repetition_is_refused_showing_it_escaped() {
    let stderr = scope_refused("include = ['/users/{id}/']\nexclude = ['^https://x\\.com/a{']\n");
    for said in [
        r"Go's regexp reads a `{` that starts no repetition as itself, and these do not: write `'/users/\{id\}/'`",
        r"write `'^https://x\.com/a\{'`",
    ] {
        assert!(stderr.contains(said), "{said}\n{stderr}");
    }
}

/// A crawl with `[recrawl]` run again before any revisit is due (by hand after the
/// night's run, or a timer that fired twice) said "nothing left to crawl … `[recrawl]`
/// revisits pages", as if no revisit were configured: it says when the first falls due.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_before_any_revisit_is_due_says_when_the_first_is() {
    let site = TestSite::one_host(&[("/", "<title>Home</title>")]).await;
    let harness = Harness::default();
    let config = harness.write_config(
        &harness.test_config_text(&[site.url(0, "/")], "[recrawl]\ninterval_s = 86400\n"),
    );
    let mut stderr = String::new();
    for _ in 0..2 {
        let config = config.clone();
        let out = tokio::task::spawn_blocking(move || {
            pipecrawl_at_info(&["crawl", "--config", config.to_str().unwrap_or_default()])
        })
        .await
        .expect("the binary ran");
        stderr = text(&out.stderr);
        assert!(out.status.success(), "{stderr}");
    }
    assert!(
        stderr.contains("no revisit is due yet (`[recrawl]`): the first falls due at 20"),
        "{stderr}"
    );
}

/// A database a newer pipecrawl migrated is refused with "crawl or query it with that
/// version or a later one", and every build says `pipecrawl 0.1.0`: an operator with an
/// old and a new binary side by side could not tell which one the database needs. Each
/// build names the last migration it knows of either database, and the refusal says
/// where to read it, and of which: `--version` gives two numbers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_version_names_the_schema_a_refused_database_asks_for() {
    let newest = |backend: &str| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(backend);
        std::fs::read_dir(dir).expect("the migrations").count()
    };
    let version = pipecrawl(&["--version"]);
    assert_eq!(
        text(&version.stdout).trim(),
        format!(
            "pipecrawl {} (schema: SQLite migration {}, PostgreSQL migration {})",
            env!("CARGO_PKG_VERSION"),
            newest("sqlite"),
            newest("postgres")
        )
    );

    let site = TestSite::one_host(&[("/", "<title>Home</title>")]).await;
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;
    super::query::change_database(
        &harness,
        &["INSERT INTO _sqlx_migrations
               (version, description, installed_on, success, checksum, execution_time)
           VALUES (9999, 'a later version', CURRENT_TIMESTAMP, 1, X'00', 0)"
            .to_owned()],
    )
    .await;
    let config = harness.write_config(&harness.test_config_text(&[site.url(0, "/")], ""));
    let db = harness.db_path().display().to_string();
    for words in [
        &["crawl", "--config", &config.display().to_string()][..],
        &["query", "--db", &db, "stats"],
    ] {
        let said = text(&pipecrawl(words).stderr);
        let known = newest("sqlite");
        assert!(
            said.contains(&format!(
                "its SQLite schema is at migration 9999, this one knows up to {known}): {} \
                 with a pipecrawl that knows SQLite migration 9999 (`pipecrawl --version` says \
                 which each build knows)",
                if words[0] == "crawl" {
                    "crawl or query it"
                } else {
                    "query it"
                }
            )),
            "{said}"
        );
        // The night never began: "stopped" sent its reader looking for what it had done.
        if words[0] == "crawl" {
            assert!(
                said.contains(&format!("the crawl into {db} did not start")),
                "{said}"
            );
        }
    }
}

/// `--config config/example.toml`, as README's first command writes it, typed in another
/// directory than the clone's: "cannot read the config file config/example.toml: No such
/// file or directory" did not say where it had looked, nor that it looks from there.
#[test]
fn a_relative_config_not_found_says_where_it_was_looked_for() {
    let elsewhere = tempfile::tempdir().expect("a temp dir");
    let out = pipecrawl_in(
        elsewhere.path(),
        "warn",
        &["crawl", "--config", "config/example.toml"],
    );
    let stderr = refused(&out);
    let looked_at = elsewhere.path().join("config/example.toml");
    let says = format!(
        "cannot read the config file config/example.toml ({}: a relative path is read from \
         the current directory)",
        looked_at.display()
    );
    assert!(stderr.contains(&says), "{says}: {stderr}");
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "the cause, once: {stderr}"
    );
}

/// README's first steps crawl `https://www.rust-lang.org/`, and said nothing of a crawl
/// without a network, or of a newcomer's own site first: its config for a folder served
/// on loopback, written as README gives it beside README's server command, crawls that
/// site into `./crawl.db`, as README says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readmes_config_for_a_site_of_ones_own_crawls_it() {
    let readme = include_str!("../../README.md");
    let start = readme.split("\n## ").next().unwrap_or_default();
    assert!(
        start.contains("python3 -m http.server 8080 --bind 127.0.0.1"),
        "README's first steps serve a folder on 127.0.0.1:8080: {start}"
    );
    let block = start
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .unwrap_or_else(|| panic!("a config in README's first steps: {start}"));
    let site = TestSite::one_host(&[
        ("/", "<title>Home</title><a href='/a'>A</a>"),
        ("/a", "<title>A</title>"),
    ])
    .await;
    let harness = Harness::default();
    std::fs::write(
        harness.dir.path().join("mine.toml"),
        block.replace("127.0.0.1:8080", &site.authorities[0]),
    )
    .expect("write mine.toml");
    let dir = harness.dir.path().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        pipecrawl_in(&dir, "warn", &["crawl", "--config", "mine.toml"])
    })
    .await
    .expect("the binary ran");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("crawled 2 pages (2 2xx)"), "{stdout}");
    assert!(harness.db_path().exists(), "into ./crawl.db");
    // Run from another directory, a crawl leaves its database there: the summary says
    // where, as a path that holds from anywhere.
    // The binary makes the path absolute from its working directory, as the system has
    // it: a temporary directory reached through a symbolic link is named without it.
    let dir = harness
        .dir
        .path()
        .canonicalize()
        .expect("the harness's directory");
    let stored = format!("stored in {}", dir.join("crawl.db").display());
    assert!(
        stdout.lines().any(|line| line.starts_with(&stored)),
        "{stdout}"
    );
}

/// The end summary's lines, as a first crawl prints them, each named in README with what
/// its figures are: it had the JSON record's fields, but no line of the text, nor what
/// the seconds after each stage add up (its workers' time, 64 fetch workers' far more
/// than the crawl's), nor what `retries` counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_names_every_line_of_a_first_crawls_summary() {
    let site = TestSite::one_host(&[("/", "<title>Home</title><a href='/gone'>Gone</a>")]).await;
    let harness = Harness::default();
    let config = harness.write_config(&harness.config_text(&[site.url(0, "/")], ""));
    let stdout = crawl_to_the_end(config).await;
    let readme = include_str!("../../README.md");
    let prose = readme.replace('\n', " ");
    for line in stdout.lines() {
        // What a line says, up to its first figure or path: `crawled`, `  fetch`,
        // `hosts' turns:`, `stored in`.
        let label = line
            .trim_start()
            .split(|c: char| c.is_ascii_digit() || c == '/')
            .next()
            .unwrap_or_default()
            .trim_end();
        assert!(
            readme.contains(&format!("\n{label}")) || readme.contains(&format!("\n  {label}")),
            "README shows no line `{label}` of the summary:\n{stdout}"
        );
    }
    for says in [
        "(politeness waits + network + body: ",
        "workers' working time added up",
        "`retries` counts",
    ] {
        assert!(prose.contains(says), "README: {says}");
    }
}

/// A crawl's database given as its config (`--config crawl.db`, the two files side by
/// side) was "line 1: byte 0x8d is not UTF-8 (TOML files are UTF-8: save it so)":
/// advice to re-save a file that is no text at all.
#[test]
fn a_database_given_as_the_config_is_said_to_be_one() {
    let harness = Harness::default();
    let mut header = b"SQLite format 3\0".to_vec();
    header.extend([0x10, 0x00, 0x02, 0x02, 0x00, 0x40, 0x20, 0x20, 0x8d]);
    header.resize(4096, 0);
    std::fs::write(harness.db_path(), header).expect("write a database header");
    let db = harness.db_path();
    let db = db.to_str().unwrap_or_default();
    for args in [
        vec!["crawl", "--config", db],
        vec!["query", "--config", db, "stats"],
    ] {
        let stderr = refused(&pipecrawl(&args));
        assert!(
            stderr.contains("is a SQLite database (a crawl's results), not a TOML config")
                && stderr.contains(&format!("`pipecrawl query --db {db}`")),
            "{args:?}: {stderr}"
        );
    }
}

/// HTTrack's filters are a sign and a glob (`+www.example.com/*`, `-*/private/*`), and the
/// last one that matches decides. Copied into `include` one was read as a Nutch line and
/// its glob offered as the rule (`www.example.com/*`, asking for any number of `/`), or
/// refused in the regex crate's words alone (`+*.example.com/*`); into `url_filter` the
/// hint dropped the sign, and the rule written as it said was refused for having none.
#[test]
fn an_httrack_filter_is_refused_showing_its_rule_sign_and_order() {
    let stderr = scope_refused("include = ['+www.example.com/*']\nurl_filter = ['-*/private/*']\n");
    for said in [
        r#""+www.example.com/*" reads as an HTTrack filter: write `'^https?://www\.example\.com/'` in `scope.include`"#,
        r#""-*/private/*" reads as an HTTrack filter: write `'-/private/'`"#,
        "HTTrack's last filter that matches decides, and here the first rule does",
    ] {
        assert!(stderr.contains(said), "{said}\n{stderr}");
    }
    // A path is found anywhere in the URL, not held to its start.
    let stderr = scope_refused("include = ['+/blog/*']\nexclude = ['-/private/*']\n");
    for said in [
        r#""+/blog/*" reads as an HTTrack filter: write `'/blog/'` in `scope.include`"#,
        r#""-/private/*" reads as an HTTrack filter: write `'/private/'` in `scope.exclude`"#,
    ] {
        assert!(stderr.contains(said), "{said}\n{stderr}");
    }
}

/// A seed naming an environment variable, as a CI job's config pointing at
/// `$STAGING_URL` writes it, is refused saying that none is expanded: one for the whole
/// URL was told to write `https://$staging_url/`, and one for the host
/// (`https://$STAGING_HOST/`) was crawled as a host of that name, exiting 4 to ask
/// whether the site was up.
#[test]
fn a_seed_naming_an_environment_variable_is_refused_saying_none_is_expanded() {
    let harness = Harness::default();
    for seed in [
        "$STAGING_URL",
        "${STAGING_URL}/docs/",
        "https://$STAGING_HOST:8080/",
    ] {
        let config = harness.write_config(&format!(
            "seeds = [\"http://127.0.0.1:1/\", {seed:?}]\n[retry]\nmax_attempts = 1\n\
             [storage]\ndatabase = {:?}\n",
            harness.db_path()
        ));
        let out = Command::new(env!("CARGO_BIN_EXE_pipecrawl"))
            .args(["crawl", "--config", config.to_str().unwrap_or_default()])
            .env("RUST_LOG", "warn")
            .env("STAGING_URL", "http://127.0.0.1:1/")
            .output()
            .expect("run the pipecrawl binary");
        let stderr = refused(&out);
        let variable = seed
            .split(['/', ':'])
            .find(|part| part.starts_with('$'))
            .unwrap_or_default();
        assert!(
            stderr.contains(&format!(
                "line 1: `seeds[1]` names `{variable}`, which is not expanded here"
            )),
            "{stderr}"
        );
        assert!(!stderr.contains("staging_url"), "{stderr}");
        assert!(!harness.db_path().exists(), "nothing was started");
    }
}
