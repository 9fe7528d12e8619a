//! `pipecrawl query` and `pipecrawl export` on databases made by crawling the test web:
//! every answer is checked against what the site is known to contain.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use clap::Parser;
use pipecrawl::query::{self, Answer, Format, Question};
use serde_json::Value;

use super::graph::{self, Model, Node, Rules, OUTSIDE};
use super::site::{Resource, SiteBuilder, TestSite};
use super::Harness;

/// `Question` parsed from words, as the binary parses them.
#[derive(Parser)]
struct Words {
    #[command(subcommand)]
    question: Question,
}

/// Asks the crawl's database through the library, as `pipecrawl query` does.
async fn ask(harness: &Harness, format: Format, words: &[&str]) -> (String, Answer) {
    ask_on(&harness.db_path().display().to_string(), format, words).await
}

/// [`ask`] of `database`, a SQLite file or a `postgres://` URL.
async fn ask_on(database: &str, format: Format, words: &[&str]) -> (String, Answer) {
    let question = Words::try_parse_from(std::iter::once("query").chain(words.iter().copied()))
        .expect("valid question words")
        .question;
    let mut out = Vec::new();
    let answer = query::ask(database, &question, format, &mut out)
        .await
        .unwrap_or_else(|e| panic!("{words:?}: {e}"));
    (String::from_utf8(out).expect("UTF-8 output"), answer)
}

/// The answer as JSON objects.
pub(super) async fn rows(harness: &Harness, words: &[&str]) -> Vec<serde_json::Map<String, Value>> {
    rows_on(&harness.db_path().display().to_string(), words).await
}

/// [`rows`] of `database`, a SQLite file or a `postgres://` URL.
pub(super) async fn rows_on(database: &str, words: &[&str]) -> Vec<serde_json::Map<String, Value>> {
    let (text, _) = ask_on(database, Format::Json, words).await;
    match serde_json::from_str(&text) {
        Ok(Value::Array(rows)) => rows
            .into_iter()
            .map(|row| match row {
                Value::Object(object) => object,
                other => panic!("a row that is not an object: {other}"),
            })
            .collect(),
        other => panic!("not a JSON array: {other:?}\n{text}"),
    }
}

pub(super) fn text<'a>(row: &'a serde_json::Map<String, Value>, key: &str) -> &'a str {
    row.get(key).and_then(Value::as_str).unwrap_or_default()
}

pub(super) fn int(row: &serde_json::Map<String, Value>, key: &str) -> Option<i64> {
    row.get(key).and_then(Value::as_i64)
}

/// Runs the binary on a blocking thread, so that the test's own servers keep serving.
pub(super) async fn pipecrawl(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_pipecrawl"))
            .args(args)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run the pipecrawl binary")
    })
    .await
    .expect("the binary ran")
}

pub(super) fn args(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

/// Asserts that the binary failed (exit code 1) saying one of `says`.
pub(super) fn assert_fails(out: &Output, says: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(says.iter().any(|s| stderr.contains(s)), "{stderr}");
}

/// Asserts that the binary succeeded (`what` names the run in a failure); returns its
/// stdout.
fn answered(out: &Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{what}: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `statements` on the crawl's database as another program would: the test's way
/// to set up what a crawl rarely leaves.
pub(super) async fn change_database(harness: &Harness, statements: &[String]) {
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(harness.db_path());
    let pool = sqlx::SqlitePool::connect_with(options)
        .await
        .expect("open the crawl database");
    for sql in statements {
        sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .execute(&pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    pool.close().await;
}

/// The generated three-host site, crawled in full.
async fn crawled_graph() -> (TestSite, Model, Harness, HashMap<String, u32>) {
    let mut builder = SiteBuilder::bind(3).await;
    let model = graph::generate(&mut builder, 3, 40, 0x9e7);
    let site = builder.start();
    let harness = Harness::default();
    harness.crawl(&model.seeds, "[fetch]\nworkers = 8\n").await;
    let reachable = model.reachable(&Rules {
        hosts: &site.authorities,
        include: None,
        exclude: None,
        max_depth: None,
    });
    (site, model, harness, reachable)
}

/// (source, target, anchor text) of every link on a crawled page of the model.
fn model_links<'m>(
    model: &'m Model,
    reachable: &HashMap<String, u32>,
) -> Vec<(&'m str, &'m str, &'m str)> {
    let mut links = Vec::new();
    for source in reachable.keys() {
        if let Some((source, Node::Html { links: out, .. })) = model.nodes.get_key_value(source) {
            for (target, anchor) in out {
                links.push((source.as_str(), target.as_str(), anchor.as_str()));
            }
        }
    }
    links
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_counts_distinct_linking_pages_exactly_as_the_generated_graph_has_them() {
    let (_site, model, harness, reachable) = crawled_graph().await;
    let mut expected: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (source, target, _) in model_links(&model, &reachable) {
        expected.entry(target).or_default().insert(source);
    }
    let expected: BTreeMap<&str, i64> = expected
        .into_iter()
        .map(|(target, sources)| (target, sources.len() as i64))
        .collect();

    let top = rows(&harness, &["top", "--limit", "0"]).await;
    let counted: BTreeMap<&str, i64> = top
        .iter()
        .map(|r| (text(r, "url"), int(r, "linking_pages").unwrap_or(-1)))
        .collect();
    assert_eq!(counted, expected);
    let order: Vec<i64> = top.iter().filter_map(|r| int(r, "linking_pages")).collect();
    assert!(order.windows(2).all(|w| w[0] >= w[1]), "most linked first");

    // Within a host: only its URLs, in the same order.
    let host = harness_host(&model, 1);
    let on_host = rows(&harness, &["top", "--host", &host, "--limit", "5"]).await;
    assert_eq!(on_host.len(), 5);
    for row in &on_host {
        assert!(text(row, "url").starts_with(&format!("http://{host}/")));
        assert_eq!(int(row, "linking_pages"), Some(expected[text(row, "url")]));
    }
}

/// `host:port` of the model's host `i`, from its seed.
fn harness_host(model: &Model, i: usize) -> String {
    model.seeds[i]
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_lists_exactly_the_failed_targets_with_every_linking_page_and_anchor() {
    let (_site, model, harness, reachable) = crawled_graph().await;
    let status_of = |url: &str| match model.nodes.get(url) {
        Some(Node::Status(code)) if *code >= 400 => Some(i64::from(*code)),
        _ => None,
    };
    let expected: BTreeSet<(String, Option<i64>, String, String)> = model_links(&model, &reachable)
        .into_iter()
        .filter(|(_, target, _)| reachable.contains_key(*target) && status_of(target).is_some())
        .map(|(source, target, anchor)| {
            (
                target.to_owned(),
                status_of(target),
                source.to_owned(),
                anchor.to_owned(),
            )
        })
        .collect();
    assert!(
        expected.iter().any(|(t, ..)| t.ends_with("/error"))
            && expected.iter().any(|(t, ..)| t.ends_with("/nowhere")),
        "the site has 500s and 404s"
    );

    let (_, answer) = ask(&harness, Format::Csv, &["broken"]).await;
    let broken = rows(&harness, &["broken"]).await;
    let found: BTreeSet<(String, Option<i64>, String, String)> = broken
        .iter()
        .map(|r| {
            assert_eq!(text(r, "kind"), "broken");
            (
                text(r, "target_url").to_owned(),
                int(r, "status"),
                text(r, "page").to_owned(),
                text(r, "anchor_text").to_owned(),
            )
        })
        .collect();
    assert_eq!(found, expected);
    assert_eq!(found.len(), broken.len(), "no link is listed twice");
    assert_eq!(answer.broken_links, expected.len() as u64);
    assert!(
        answer
            .notes
            .iter()
            .any(|n| n.starts_with("links to URLs out of the crawl's scope")),
        "{:?}",
        answer.notes
    );

    // Redirects that end at a 200 are not broken; the out-of-scope link is listed only
    // when asked for, as unchecked.
    assert!(!broken
        .iter()
        .any(|r| text(r, "target_url").ends_with("/moved")));
    let with_unchecked = rows(&harness, &["broken", "--unchecked"]).await;
    let unchecked: BTreeSet<&str> = with_unchecked
        .iter()
        .filter(|r| text(r, "kind") == "unchecked")
        .map(|r| text(r, "target_url"))
        .collect();
    assert_eq!(unchecked, BTreeSet::from([OUTSIDE]));
    assert_eq!(with_unchecked.len(), broken.len() + model.seeds.len());
}

/// The dead ends a link checker must tell apart, on `host`: robots.txt disallowing
/// `/private`, `/gone` (404), `/down` (500), a chain of two redirects from `/hop` that ends
/// at a page that is not there (`/missing`), and `/fine-redirect` to `fine`.
pub(super) fn add_dead_ends(b: &mut SiteBuilder, host: &str, fine: &str) {
    b.add(
        host,
        "/robots.txt",
        Resource::Typed(
            "text/plain",
            b"User-agent: *\nDisallow: /private\n".to_vec(),
        ),
    );
    b.add(host, "/gone", Resource::Status(404, "gone".into()));
    b.add(host, "/down", Resource::Status(500, "down".into()));
    b.add(host, "/hop", Resource::Redirect(301, "/hop2".into()));
    b.add(host, "/hop2", Resource::Redirect(302, "/missing".into()));
    b.add(host, "/fine-redirect", Resource::Redirect(301, fine.into()));
}

/// A site built to hold every kind of failure a link checker must report.
async fn link_check_site() -> (TestSite, Harness) {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    let html = |s: &str| Resource::Html(s.to_owned());
    add_dead_ends(&mut b, &h, "/ok");
    b.add(
        &h,
        "/",
        html(
            "<title>Home</title>\
             <a href='/ok'>Fine page</a> <a href='/gone'>Gone page</a> \
             <a href='/down'>Server trouble</a> <a href='/hop'>Old link</a> \
             <a href='/fine-redirect'>Moved fine</a> <a href='/private/x'>Secret</a> \
             <a href='/slow'>Slow page</a> <a href='http://127.0.0.1:1/'>Dead host</a> \
             <a href='http://127.0.0.9:9/outside'>Outside</a> <a href='/about'>About</a>",
        ),
    );
    b.add(
        &h,
        "/ok",
        html("<title>Fine</title><a href='/gone'>Gone again</a> <a href='/'>Home</a>"),
    );
    b.add(
        &h,
        "/about",
        html("<title>About us</title><a href='/gone'>Gone page</a> <a href='/hop'>Old link</a>"),
    );
    b.add(
        &h,
        "/slow",
        Resource::Slow(
            Duration::from_secs(3),
            Box::new(html("<title>Late</title>")),
        ),
    );
    let site = b.start();
    let harness = Harness::default();
    harness
        .crawl(
            &[site.url(0, "/"), "http://127.0.0.1:1/".to_owned()],
            "[fetch]\ntimeout_ms = 300\n",
        )
        .await;
    (site, harness)
}

/// `pages --error-kind` picks the pages that failed so: "what failed and why", which took
/// SQL before. A kind `error_kind` never holds (a slip) is refused, saying which there
/// are, rather than answering with no rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_by_error_kind_are_those_that_failed_so() {
    let (site, harness) = link_check_site().await;
    let failed = |rows: Vec<serde_json::Map<String, Value>>| -> BTreeSet<(String, String)> {
        rows.iter()
            .map(|r| (text(r, "url").to_owned(), text(r, "error_kind").to_owned()))
            .collect()
    };
    let words = ["pages", "--error-kind", "timeout,robots", "--limit", "0"];
    assert_eq!(
        failed(rows(&harness, &words).await),
        BTreeSet::from([
            (site.url(0, "/slow"), "timeout".to_owned()),
            (site.url(0, "/private/x"), "robots".to_owned()),
        ])
    );
    let words = ["pages", "--error-kind", "connect", "--status", "error"];
    assert_eq!(
        failed(rows(&harness, &words).await),
        BTreeSet::from([("http://127.0.0.1:1/".to_owned(), "connect".to_owned())])
    );
    let db = harness.db_path().display().to_string();
    let out = pipecrawl(args(&[
        "query",
        "--db",
        &db,
        "pages",
        "--error-kind",
        "timout",
    ]))
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("timout") && stderr.contains("timeout, connect, dns"),
        "{stderr}"
    );
}

/// kind, target_url, status, error_kind, final_url, page, anchor_text
type BrokenRow<'a> = (
    &'a str,
    &'a str,
    Option<i64>,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_follows_redirect_chains_and_lists_robots_blocked_links_apart() {
    let (site, harness) = link_check_site().await;
    let u = |path: &str| site.url(0, path);
    let broken = rows(&harness, &["broken"]).await;
    let found: Vec<BrokenRow<'_>> = broken
        .iter()
        .map(|r| {
            (
                text(r, "kind"),
                text(r, "target_url"),
                int(r, "status"),
                text(r, "error_kind"),
                text(r, "final_url"),
                text(r, "page"),
                text(r, "anchor_text"),
            )
        })
        .collect();
    let (home, ok, about) = (u("/"), u("/ok"), u("/about"));
    let (gone, down, hop, missing, slow, private) = (
        u("/gone"),
        u("/down"),
        u("/hop"),
        u("/missing"),
        u("/slow"),
        u("/private/x"),
    );
    // Sorted by target, then linking page ("…/" sorts before "…/about").
    let expected: Vec<BrokenRow<'_>> = vec![
        (
            "broken",
            "http://127.0.0.1:1/",
            None,
            "connect",
            "",
            &home,
            "Dead host",
        ),
        ("broken", &down, Some(500), "", "", &home, "Server trouble"),
        ("broken", &gone, Some(404), "", "", &home, "Gone page"),
        ("broken", &gone, Some(404), "", "", &about, "Gone page"),
        ("broken", &gone, Some(404), "", "", &ok, "Gone again"),
        ("broken", &hop, Some(404), "", &missing, &home, "Old link"),
        ("broken", &hop, Some(404), "", &missing, &about, "Old link"),
        ("broken", &slow, None, "timeout", "", &home, "Slow page"),
        ("robots", &private, None, "robots", "", &home, "Secret"),
    ];
    assert_eq!(found, expected);

    // The table shows each target once, above the pages that link to it.
    let (table, answer) = ask(&harness, Format::Table, &["broken"]).await;
    assert_eq!(table.matches(gone.as_str()).count(), 1, "{table}");
    assert_eq!(answer.broken_links, 8);
    assert!(
        answer
            .notes
            .contains(&"8 links to 5 URLs broken".to_owned())
            && answer
                .notes
                .contains(&"1 link to 1 URL blocked by robots.txt (not requested)".to_owned()),
        "{:?}",
        answer.notes
    );

    // The status of the other end of each link, after redirects.
    let from_home = rows(&harness, &["links", "--from", &home]).await;
    let by_target: HashMap<&str, (Option<i64>, &str, &str)> =
        from_home.iter().map(link_end).collect();
    assert_eq!(from_home.len(), 10);
    assert_eq!(by_target[ok.as_str()], (Some(200), "", ""));
    assert_eq!(
        by_target[u("/fine-redirect").as_str()],
        (Some(200), "", ok.as_str())
    );
    assert_eq!(by_target[hop.as_str()], (Some(404), "", missing.as_str()));
    assert_eq!(by_target[slow.as_str()], (None, "timeout", ""));
    assert_eq!(by_target["http://127.0.0.9:9/outside"], (None, "", ""));

    // A link check in CI: the binary fails when links are broken.
    let db = harness.db_path().display().to_string();
    let out = pipecrawl(args(&["query", "--db", &db, "broken", "--fail"])).await;
    assert_fails(&out, &["error: 8 broken links (--fail)"]);

    // Rows cut short by --limit are not the total: every broken link is counted.
    let (_, limited) = ask(&harness, Format::Csv, &["broken", "--limit", "3"]).await;
    assert_eq!((limited.rows, limited.broken_links), (3, 8));
    let out = pipecrawl(args(&[
        "query", "--db", &db, "broken", "--fail", "--limit", "3",
    ]))
    .await;
    assert_fails(&out, &["error: 8 broken links (--fail)"]);

    // `broken --fail | head -1`: a reader that went away does not hide broken links.
    let question = Words::try_parse_from(["query", "broken", "--fail"])
        .expect("valid question words")
        .question;
    for format in [Format::Table, Format::Csv, Format::Jsonl] {
        let answer = query::ask(&db, &question, format, &mut Gone)
            .await
            .expect("a closed output is no error");
        assert_eq!(answer.broken_links, 8, "{format:?}");
    }
}

/// A `noindex, follow` page (a tag archive, page 2 of a blog) is not for search results,
/// but its links are the site's: the crawl follows them, so a link checker must see them.
/// They were not rows, so a 404 linked from there was fetched and stored yet missing
/// from `broken` (and `--fail` passed), and the pages it alone links to had no in-links.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_links_on_a_noindex_page_are_reported() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    let html = |s: &str| Resource::Html(s.to_owned());
    b.add(&h, "/", html("<title>Home</title><a href='/tag'>Tag</a>"));
    b.add(
        &h,
        "/tag",
        html(
            "<meta name='robots' content='noindex, follow'><title>Tag archive</title>\
             <a href='/gone'>An old post</a> <a href='/post'>A post</a>",
        ),
    );
    b.add(&h, "/post", html("<title>A post</title>"));
    b.add(&h, "/gone", Resource::Status(404, "gone".to_owned()));
    let site = b.start();
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;
    let (tag, gone) = (site.url(0, "/tag"), site.url(0, "/gone"));

    assert_link_check_fails(
        &harness,
        &format!("broken,{gone},404,,,{tag},An old post"),
        "error: 1 broken link (--fail)",
    )
    .await;
    let to_post = rows(&harness, &["links", "--to", &site.url(0, "/post")]).await;
    assert_eq!(
        to_post.iter().map(|r| text(r, "page")).collect::<Vec<_>>(),
        [tag.as_str()]
    );
    let page = harness
        .db()
        .await
        .page(&tag)
        .await
        .expect("the tag page's row");
    assert_eq!(page.title, None, "noindex keeps the page's own title out");
}

/// A docs build whose root a CI server does not serve (a seed's `/docs` redirecting to a
/// `/docs/` that answers 404): the crawl got an answer, so it exits 0, and no page links
/// to the seed, so no link was broken either: `--fail` passed a site with no page at all.
/// A failed seed no link leads to is listed (`kind` = `seed`) and fails the check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_fail_fails_when_a_seed_no_link_leads_to_failed() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(&h, "/docs", Resource::Redirect(301, "/docs/".to_owned()));
    b.add(&h, "/docs/", Resource::Status(404, "not here".to_owned()));
    let site = b.start();
    let harness = Harness::default();
    let (seed, end) = (site.url(0, "/docs"), site.url(0, "/docs/"));
    harness.crawl(std::slice::from_ref(&seed), "").await;

    assert_link_check_fails(
        &harness,
        &format!("seed,{seed},404,,{end},,"),
        "error: 1 failed seed (--fail)",
    )
    .await;
}

/// A site whose robots.txt keeps the crawler out (`Disallow: /` on a staging server, or a
/// robots.txt that answers 500) had nothing fetched, no link read: `--fail` passed it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_fail_fails_when_robots_txt_kept_the_crawler_from_a_seed() {
    for (robots, kind) in [
        (
            Resource::Typed("text/plain", b"User-agent: *\nDisallow: /\n".to_vec()),
            "robots",
        ),
        (
            Resource::Status(500, "down".to_owned()),
            "robots_unavailable",
        ),
    ] {
        let mut b = SiteBuilder::bind(1).await;
        let h = b.authority(0);
        b.add(&h, "/robots.txt", robots);
        b.add(&h, "/", Resource::Html("<a href='/a'>A</a>".to_owned()));
        let site = b.start();
        let harness = Harness::default();
        let seed = site.url(0, "/");
        harness.crawl(std::slice::from_ref(&seed), "").await;
        assert_link_check_fails(
            &harness,
            &format!("seed,{seed},,{kind},,,"),
            "error: 1 failed seed (--fail)",
        )
        .await;
    }
}

/// With `--host`, only the links on that host's pages are listed: a failed seed of the
/// host linked from another host's page alone was left out as linked, and `broken --host
/// a --fail` passed a host with nothing fetched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_fail_on_a_host_fails_on_its_seed_linked_from_another_host() {
    let mut b = SiteBuilder::bind(2).await;
    let (a, other) = (b.authority(0), b.authority(1));
    b.add(&a, "/docs", Resource::Status(404, "not here".to_owned()));
    b.add(
        &other,
        "/",
        Resource::Html(format!("<a href='http://{a}/docs'>Docs</a>")),
    );
    let site = b.start();
    let harness = Harness::default();
    let seed = site.url(0, "/docs");
    let home = site.url(1, "/");
    harness.crawl(&[seed.clone(), home], "").await;
    let db = harness.db_path().display().to_string();
    let out = pipecrawl(args(&[
        "query", "--db", &db, "--format", "csv", "broken", "--host", &a, "--fail",
    ]))
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .lines()
            .any(|line| line == format!("seed,{seed},404,,,,")),
        "{stdout}"
    );
    assert_fails(&out, &["error: 1 failed seed (--fail)"]);
}

/// Asserts that `query broken --fail`, in CSV, prints the line `row` and fails saying
/// `says`: a CI job's link check.
async fn assert_link_check_fails(harness: &Harness, row: &str, says: &str) {
    let db = harness.db_path().display().to_string();
    let out = pipecrawl(args(&[
        "query", "--db", &db, "--format", "csv", "broken", "--fail",
    ]))
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.lines().any(|line| line == row), "{stdout}");
    assert_fails(&out, &[says]);
}

/// A `rel="nofollow"` link (a sponsored or user-written one) is not followed by default,
/// so its target, in scope, is never asked: `broken` names a nofollow among the reasons
/// links go unchecked, and the keys that decide it, rather than only the crawl's scope or
/// its not being crawled yet, which would send an auditor looking at the scope. The note
/// is README's sample output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_names_a_nofollow_among_the_reasons_links_go_unchecked() {
    let home = "<title>Home</title><a href='/partner' rel='nofollow sponsored'>Partner</a>";
    let site = TestSite::one_host(&[("/", home)]).await;
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;

    let (_, answer) = ask(&harness, Format::Csv, &["broken"]).await;
    let note = answer
        .notes
        .iter()
        .find(|n| n.starts_with("links to URLs out of the crawl's scope"))
        .expect("a note of unchecked links");
    assert!(
        note.contains("(politeness.follow_nofollow_links, or politeness.respect_meta_robots")
            && include_str!("../../README.md").contains(&format!("\n{note}\n")),
        "{note}"
    );
    let unchecked = rows(&harness, &["broken", "--unchecked"]).await;
    assert_eq!(
        unchecked
            .iter()
            .map(|r| text(r, "target_url"))
            .collect::<Vec<_>>(),
        [site.url(0, "/partner")]
    );
}

/// `links --from` shows a target's status where its redirects end; a redirect whose end
/// was not crawled (out of scope) shows its own 3xx and where it leads, and a target not
/// crawled at all shows neither status nor error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_from_a_page_show_a_redirect_out_of_the_crawl_by_its_own_status() {
    let outside = "http://127.0.0.9:9/elsewhere";
    let (site, harness) = super::urls::crawled_redirects(
        format!("<a href='/out'>Out</a><a href='/in'>In</a><a href='{outside}'>Outside</a>"),
        &[("/out", outside), ("/in", "/")],
    )
    .await;
    let home = site.url(0, "/");

    let from_home = rows(&harness, &["links", "--from", &home]).await;
    let by_target: HashMap<&str, (Option<i64>, &str, &str)> =
        from_home.iter().map(link_end).collect();
    assert_eq!(
        by_target[site.url(0, "/out").as_str()],
        (Some(301), "", outside)
    );
    assert_eq!(
        by_target[site.url(0, "/in").as_str()],
        (Some(200), "", home.as_str())
    );
    assert_eq!(by_target[outside], (None, "", ""));
}

/// `links --from` a redirect (the `www.` home that moves to the bare domain, an old URL)
/// has no rows, as a redirect's body is not read for links: the answer says so and names
/// where its chain ends, whose links the user was after, rather than leave an empty table
/// that reads as a page linking nowhere. Of a chain that loops (`/a` → `/b` → `/a`) it
/// said only where the first hop leads, as of a chain going on somewhere: it names the
/// hop the chain stops at and why, the loop a migration audit looks for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_from_a_redirect_say_it_is_one_and_where_it_ends() {
    let (site, harness) = super::urls::crawled_redirects(
        "<title>Home</title><a href='/old'>Old home</a><a href='/a'>A</a>".to_owned(),
        &[("/old", "/"), ("/a", "/b"), ("/b", "/a")],
    )
    .await;
    let (old, home) = (site.url(0, "/old"), site.url(0, "/"));
    let (a, b) = (site.url(0, "/a"), site.url(0, "/b"));

    for (redirect, note) in [
        (
            &old,
            format!(
                "{old} is a redirect (301) to {home}, and a redirect has no links: \
                 `links --from {home}` lists those where it ends"
            ),
        ),
        (
            &a,
            format!(
                "{a} is a redirect (301) to {b}, and a redirect has no links: \
                 its chain stops at {b}: a redirect loop: back to {a}"
            ),
        ),
    ] {
        let (_, answer) = ask(&harness, Format::Csv, &["links", "--from", redirect]).await;
        assert_eq!((answer.rows, answer.notes), (0, vec![note]));
    }
    let (_, answer) = ask(&harness, Format::Csv, &["links", "--from", &home]).await;
    assert_eq!((answer.rows, answer.notes), (2, Vec::new()));
}

/// A 3xx without a `Location` (its row a `redirect` error) got an empty answer and no
/// note from `links --from`, which reads as a page linking nowhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_from_a_redirect_without_a_location_say_it_leads_nowhere() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(&h, "/", Resource::Html("<a href='/moved'>Moved</a>".into()));
    b.add(&h, "/moved", Resource::Status(301, "moved".into()));
    let site = b.start();
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;
    let moved = site.url(0, "/moved");
    let (_, answer) = ask(&harness, Format::Csv, &["links", "--from", &moved]).await;
    assert_eq!(answer.rows, 0);
    assert!(
        answer.notes.len() == 1
            && answer.notes[0]
                .starts_with(&format!("{moved} is a redirect (301) that leads nowhere ("))
            && answer.notes[0].ends_with("), and a redirect has no links"),
        "{:?}",
        answer.notes
    );
}

/// A row of `links --from`: its target, and the status, error and redirect it ends in.
fn link_end(r: &serde_json::Map<String, Value>) -> (&str, (Option<i64>, &str, &str)) {
    (
        text(r, "target_url"),
        (
            int(r, "status"),
            text(r, "error_kind"),
            text(r, "redirects_to"),
        ),
    )
}

/// Output whose reader has gone, as a pipe's once `head` has its lines.
struct Gone;

impl std::io::Write for Gone {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        Err(std::io::ErrorKind::BrokenPipe.into())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Err(std::io::ErrorKind::BrokenPipe.into())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_filters_select_what_the_site_has() {
    let (_site, model, harness, reachable) = crawled_graph().await;
    let urls = |rows: &[serde_json::Map<String, Value>]| -> BTreeSet<String> {
        rows.iter().map(|r| text(r, "url").to_owned()).collect()
    };
    let crawled = |keep: &dyn Fn(&str, &Node) -> bool| -> BTreeSet<String> {
        reachable
            .keys()
            .filter(|url| keep(url, &model.nodes[*url]))
            .cloned()
            .collect()
    };

    let all = rows(&harness, &["pages", "--limit", "0"]).await;
    assert_eq!(urls(&all), crawled(&|_, _| true));
    let sorted: Vec<&str> = all.iter().map(|r| text(r, "url")).collect();
    assert!(sorted.windows(2).all(|w| w[0] < w[1]), "sorted by URL");

    let failed = rows(&harness, &["pages", "--status", "4xx,500", "--limit", "0"]).await;
    assert_eq!(
        urls(&failed),
        crawled(&|_, node| matches!(node, Node::Status(_)))
    );
    // Redirects asked for show where they go: a site migration's audit lists them.
    let redirects = rows(&harness, &["pages", "--status", "3xx", "--limit", "0"]).await;
    let said: BTreeSet<(String, String)> = redirects
        .iter()
        .map(|r| (text(r, "url").to_owned(), text(r, "location").to_owned()))
        .collect();
    let model_redirects: BTreeSet<(String, String)> = reachable
        .keys()
        .filter_map(|url| match &model.nodes[url] {
            Node::Redirect(to) => Some((url.clone(), to.clone())),
            _ => None,
        })
        .collect();
    assert!(!model_redirects.is_empty());
    assert_eq!(said, model_redirects);
    // Not asked for, no such column: the usual ones stay as scripts read them.
    assert!(
        !failed.iter().any(|r| r.contains_key("location")),
        "{failed:?}"
    );

    let host = harness_host(&model, 2);
    let pdfs = rows(
        &harness,
        &["pages", "--host", &host, "--content-type", "application/"],
    )
    .await;
    assert_eq!(
        urls(&pdfs),
        BTreeSet::from([format!("http://{host}/doc.pdf")])
    );
    // A host named without its port is on any port; with another port, on none.
    let (name, port) = host
        .rsplit_once(':')
        .expect("the test site's hosts have ports");
    let on_any_port = rows(&harness, &["pages", "--host", name, "--limit", "0"]).await;
    assert_eq!(
        urls(&on_any_port),
        crawled(&|url, _| url.starts_with(&format!("http://{host}/")))
    );
    let other_port = format!(
        "{name}:{}",
        u32::from(port.parse::<u16>().expect("a port")) + 1
    );
    let none = rows(&harness, &["pages", "--host", &other_port]).await;
    assert!(none.is_empty(), "{none:?}");

    let seeds = rows(&harness, &["pages", "--depth", "0"]).await;
    assert_eq!(urls(&seeds), model.seeds.iter().cloned().collect());

    let titled = rows(
        &harness,
        &["pages", "--title", "OF HOST 1 &", "--limit", "0"],
    )
    .await;
    assert_eq!(
        urls(&titled),
        crawled(
            &|_, node| matches!(node, Node::Html { title, .. } if title.contains("of host 1 &"))
        )
    );

    let deepest = rows(
        &harness,
        &["pages", "--sort", "depth", "--desc", "--limit", "3"],
    )
    .await;
    let max_depth = i64::from(reachable.values().copied().max().unwrap_or(0));
    assert_eq!(deepest.len(), 3);
    assert!(int(&deepest[0], "depth") >= Some(max_depth));

    let (_, answer) = ask(&harness, Format::Csv, &["pages", "--limit", "10"]).await;
    assert_eq!(answer.rows, 10);
    assert_eq!(
        answer.notes,
        ["(the first 10 rows; --limit 0 shows all)".to_owned()]
    );
    let recent = rows(&harness, &["pages", "--since", "1h", "--limit", "0"]).await;
    assert_eq!(
        recent.len(),
        all.len(),
        "everything was fetched in the last hour"
    );
    let future = rows(&harness, &["pages", "--since", "2999-01-01"]).await;
    assert!(future.is_empty());
}

/// "Which pages are the largest, and the slowest?": `pages --sort bytes` and `--sort
/// elapsed` answer with the figure they sort by, each row's as stored, so the order is
/// not all the user sees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_sorted_by_size_or_time_show_the_figure_they_are_sorted_by() {
    let large = format!("<title>Large</title><p>{}</p>", "x".repeat(50_000));
    let home = "<title>Home</title><a href='/large'>Large</a> <a href='/gone'>Gone</a>";
    let site = TestSite::one_host(&[("/", home), ("/large", &large)]).await;
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;

    let stored = rows(
        &harness,
        &["sql", "SELECT url, bytes, elapsed_ms FROM pages"],
    )
    .await;
    for (sort, column) in [("bytes", "bytes"), ("elapsed", "elapsed_ms")] {
        let sorted = rows(&harness, &["pages", "--sort", sort, "--desc"]).await;
        let shown: BTreeMap<&str, Option<i64>> = sorted
            .iter()
            .map(|r| (text(r, "url"), int(r, column)))
            .collect();
        let expected: BTreeMap<&str, Option<i64>> = stored
            .iter()
            .map(|r| (text(r, "url"), int(r, column)))
            .collect();
        assert_eq!(shown, expected, "--sort {sort} shows {column}: {sorted:?}");
    }
    let largest = rows(
        &harness,
        &["pages", "--sort", "bytes", "--desc", "--limit", "1"],
    )
    .await;
    assert_eq!(text(&largest[0], "url"), site.url(0, "/large"));
    assert_eq!(int(&largest[0], "bytes"), i64::try_from(large.len()).ok());
    let by_url = rows(&harness, &["pages"]).await;
    assert!(
        by_url
            .iter()
            .all(|r| !r.contains_key("bytes") && !r.contains_key("elapsed_ms")),
        "other orders keep their columns: {by_url:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_to_a_url_include_the_redirects_that_end_there() {
    let (site, model, harness, reachable) = crawled_graph().await;
    let p1 = site.url(0, "/p/1");
    let into: BTreeSet<(String, String, String)> = rows(&harness, &["links", "--to", &p1])
        .await
        .iter()
        .map(|r| {
            (
                text(r, "page").to_owned(),
                text(r, "anchor_text").to_owned(),
                text(r, "target_url").to_owned(),
            )
        })
        .collect();
    // Straight links, and links to /moved and /chain, which redirect to /p/1.
    let leads_here = [p1.clone(), site.url(0, "/moved"), site.url(0, "/chain")];
    let expected: BTreeSet<(String, String, String)> = model_links(&model, &reachable)
        .into_iter()
        .filter(|(_, target, _)| leads_here.iter().any(|t| t == target))
        .map(|(s, t, a)| (s.to_owned(), a.to_owned(), t.to_owned()))
        .collect();
    assert!(expected.iter().any(|(_, a, _)| a == "Older address"));
    assert_eq!(into, expected);

    let missing = site.url(0, "/orphan/0");
    let question = Words::try_parse_from(["query", "links", "--from", &missing])
        .expect("valid words")
        .question;
    let error = query::ask(
        &harness.db_path().display().to_string(),
        &question,
        Format::Table,
        &mut Vec::new(),
    )
    .await
    .expect_err("an uncrawled page has no links to list");
    assert!(error.to_string().contains("was not crawled"), "{error}");
}

/// A URL given as a browser's address bar shows it, without its scheme
/// (`127.0.0.1:8080/a`), is said to need one, as a seed is: `links --to` printed an
/// empty table and exited 0, and `links --from` said the page "was not crawled", though
/// the crawl had stored it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_without_its_scheme_is_refused_showing_it_with_one() {
    let site = TestSite::one_host(&[
        ("/", "<title>Home</title><a href='/a'>A</a>"),
        ("/a", "<title>Page A</title><a href='/'>Home</a>"),
    ])
    .await;
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;
    let db = harness.db_path().display().to_string();
    let authority = &site.authorities[0];
    for (side, path) in [("--to", "/a"), ("--from", "/")] {
        let typed = format!("{authority}{path}");
        let out = pipecrawl(args(&["query", "--db", &db, "links", side, &typed])).await;
        assert_fails(
            &out,
            &[&format!(
                "`{typed}` has no scheme: write `https://{authority}{path}` (or http:// for a \
                 site without TLS)"
            )],
        );
        let with_it = format!("http://{typed}");
        let answered = answered(
            &pipecrawl(args(&["query", "--db", &db, "links", side, &with_it])).await,
            &with_it,
        );
        assert!(
            answered.contains(&site.url(0, "/a")),
            "{side} {with_it}: {answered}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_pages_by_their_titles_and_by_what_links_to_them_say() {
    let (site, _model, harness, _) = crawled_graph().await;
    let hits = rows(&harness, &["search", "broken", "server"]).await;
    let found: BTreeSet<(&str, &str, Option<i64>)> = hits
        .iter()
        .map(|r| (text(r, "url"), text(r, "matched"), int(r, "status")))
        .collect();
    let expected: BTreeSet<(String, &str, Option<i64>)> = (0..3)
        .map(|h| (site.url(h, "/error"), "anchor", Some(500)))
        .collect();
    let expected: BTreeSet<(&str, &str, Option<i64>)> = expected
        .iter()
        .map(|(u, m, s)| (u.as_str(), *m, *s))
        .collect();
    assert_eq!(found, expected);

    // A URL whose title and anchors both match ranks above one matched by either alone.
    let both = rows(&harness, &["search", "page", "1", "host", "0"]).await;
    let first: BTreeSet<&str> = both[..2].iter().map(|r| text(r, "url")).collect();
    let (p1, p0) = (site.url(0, "/p/1"), site.url(1, "/p/0"));
    assert_eq!(
        first,
        BTreeSet::from([p1.as_str(), p0.as_str()]),
        "{both:?}"
    );
    assert!(both[..2]
        .iter()
        .all(|r| text(r, "matched") == "title, anchor"));
    assert!(both[2..]
        .iter()
        .all(|r| text(r, "matched") != "title, anchor"));

    // Word forms match: "addresses" finds "address".
    let older = rows(&harness, &["search", "older", "addresses"]).await;
    let urls: BTreeSet<&str> = older.iter().map(|r| text(r, "url")).collect();
    let chains: Vec<String> = (0..3).map(|h| site.url(h, "/chain")).collect();
    assert_eq!(urls, chains.iter().map(String::as_str).collect());
    assert!(older
        .iter()
        .all(|r| text(r, "anchor_texts") == "Older address"));

    let titled = rows(&harness, &["search", "friends", "--limit", "7"]).await;
    assert_eq!(titled.len(), 7);
    assert!(titled
        .iter()
        .all(|r| text(r, "title").ends_with("& friends")));
    assert!(rows(&harness, &["search", "zebra*"]).await.is_empty());
}

/// A URL's score and what it matched must not depend on `--limit`: each index's best
/// matches were cut before URLs were merged, so a page titled with the word, and also
/// linked with it in words that rank below 200 shorter anchors, was shown as matched by
/// its title alone, with its title's score, under the default limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_scores_each_url_shown_by_its_title_and_all_its_anchors_at_any_limit() {
    let mut b = SiteBuilder::bind(1).await;
    let host = b.authority(0);
    // Other anchors and titles, so that "market" is rare enough for BM25 to score it.
    let outside: String = (0..600)
        .map(|i| {
            let text = if i < 250 { "Market" } else { "Stall" };
            format!("<a href='http://127.0.0.9:9/stall/{i}'>{text}</a> ")
        })
        .collect();
    let pages: String = (0..4)
        .map(|i| format!("<a href='/p/{i}'>Page {i}</a> "))
        .collect();
    b.add(
        &host,
        "/",
        Resource::Html(format!(
            "<title>Home</title>{outside}{pages}\
             <a href='/square'>the old market on the square by the river and the bridge</a>"
        )),
    );
    for i in 0..4 {
        b.add(
            &host,
            &format!("/p/{i}"),
            Resource::Html(format!("<title>Page {i}</title>")),
        );
    }
    b.add(
        &host,
        "/square",
        Resource::Html("<title>Market square</title>".to_owned()),
    );
    let site = b.start();
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;

    let square = site.url(0, "/square");
    let all = rows(&harness, &["search", "market", "--limit", "0"]).await;
    assert_eq!(all.len(), 251, "{all:?}");
    let whole = all
        .iter()
        .find(|r| text(r, "url") == square)
        .expect("found");
    assert_eq!(text(whole, "matched"), "title, anchor", "{whole:?}");
    for limit in ["1", "20"] {
        let shown = rows(&harness, &["search", "market", "--limit", limit]).await;
        assert_eq!(shown[..], all[..shown.len()], "--limit {limit}");
    }
}

/// `stats` counts a page by the type its `Content-Type` names, which ends where browsers
/// end it: a value missing the `;` before its charset (PHP's `text/html charset=utf-8`)
/// is HTML, read as HTML, and was counted as a type of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_a_content_type_by_the_type_it_names() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    let types = [
        "text/html charset=utf-8",
        "Text/HTML\tcharset=UTF-8",
        "text/html(v1)",
        "image/png;q=1",
        "image/png (scaled)",
        "; charset=utf-8",
    ];
    let home: String = (0..types.len())
        .map(|i| format!("<a href='/{i}'>{i}</a>"))
        .collect();
    b.add(
        &h,
        "/",
        Resource::Html(format!("<title>Home</title>{home}")),
    );
    for (i, content_type) in types.into_iter().enumerate() {
        let body = b"<title>Typed</title>".to_vec();
        b.add(&h, &format!("/{i}"), Resource::Typed(content_type, body));
    }
    let site = b.start();
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;
    let counted: BTreeMap<String, i64> = rows(&harness, &["stats"])
        .await
        .iter()
        .filter(|r| text(r, "section") == "content type")
        .map(|r| (text(r, "key").to_owned(), int(r, "value").unwrap_or(0)))
        .collect();
    assert_eq!(
        counted,
        BTreeMap::from([
            ("image/png".to_owned(), 2),
            ("none".to_owned(), 1),
            ("text/html".to_owned(), 4)
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_what_the_crawl_stored() {
    let (_site, model, harness, reachable) = crawled_graph().await;
    let stats = rows(&harness, &["stats"]).await;
    let value = |section: &str, key: &str| {
        stats
            .iter()
            .find(|r| text(r, "section") == section && text(r, "key") == key)
            .and_then(|r| int(r, "value"))
    };
    let links = model_links(&model, &reachable).len() as i64;
    assert_eq!(value("total", "pages"), Some(reachable.len() as i64));
    assert_eq!(value("total", "links"), Some(links));
    assert_eq!(value("total", "hosts"), Some(3));
    let count =
        |f: &dyn Fn(&Node) -> bool| reachable.keys().filter(|u| f(&model.nodes[*u])).count() as i64;
    assert_eq!(
        value("status", "404"),
        Some(count(&|n| matches!(n, Node::Status(404))))
    );
    assert_eq!(value("status", "500"), Some(3));
    assert_eq!(value("status class", "3xx"), Some(6));
    assert_eq!(value("content type", "application/pdf"), Some(3));
    assert_eq!(value("depth", "0"), Some(3));
    let per_host: i64 = stats
        .iter()
        .filter(|r| text(r, "section") == "host")
        .filter_map(|r| int(r, "value"))
        .sum();
    assert_eq!(per_host, reachable.len() as i64);
    let fetched: i64 = stats
        .iter()
        .filter(|r| text(r, "section").starts_with("fetched per "))
        .filter_map(|r| int(r, "value"))
        .sum();
    assert_eq!(
        fetched,
        reachable.len() as i64,
        "every page is in a time bucket"
    );
}

/// `stats --hosts N` lists the N hosts with the most pages and counts the rest in one
/// line: a broad crawl's thousands of hosts, one line each, buried the sections after them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_list_as_many_hosts_as_asked_and_count_the_rest() {
    let (_site, _model, harness, _) = crawled_graph().await;
    let hosts = |stats: Vec<serde_json::Map<String, Value>>| -> Vec<(String, i64)> {
        stats
            .iter()
            .filter(|r| text(r, "section") == "host")
            .map(|r| (text(r, "key").to_owned(), int(r, "value").unwrap_or(-1)))
            .collect()
    };
    let all = hosts(rows(&harness, &["stats"]).await);
    assert_eq!(all.len(), 3, "{all:?}");
    let others: i64 = all[1..].iter().map(|(_, n)| n).sum();
    assert_eq!(
        hosts(rows(&harness, &["stats", "--hosts", "1"]).await),
        [all[0].clone(), ("(2 other hosts)".to_owned(), others)],
    );
    assert_eq!(hosts(rows(&harness, &["stats", "--hosts", "3"]).await), all);
    assert_eq!(hosts(rows(&harness, &["stats", "--hosts", "0"]).await), all);
}

/// When the URLs waiting are due, as a StormCrawler status index's `nextFetchDate`
/// told it: a queued URL's `not_before` (a retry's backoff), a stored page's `recrawl_at`
/// (its revisit), and a staged URL at once. Counted by how soon, so that "the crawl has
/// nothing to do for a day" is one question, not SQL over unix milliseconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_say_how_soon_the_urls_waiting_are_due() {
    let (_site, _model, harness, _) = crawled_graph().await;
    let due = |stats: Vec<serde_json::Map<String, Value>>| -> Vec<(String, i64)> {
        let mut section = String::new();
        stats
            .iter()
            .filter_map(|r| {
                if !text(r, "section").is_empty() {
                    section = text(r, "section").to_owned();
                }
                (section == "due")
                    .then(|| (text(r, "key").to_owned(), int(r, "value").unwrap_or(-1)))
            })
            .collect()
    };
    assert_eq!(due(rows(&harness, &["stats"]).await), []);

    let now = super::service::NOW_MS;
    let hour = 3_600_000;
    let statements = [
        // A retry due at once, one waiting out two hours of backoff.
        "UPDATE frontier SET state = 'queued', not_before = 0 WHERE id = 1".to_owned(),
        format!(
            "UPDATE frontier SET state = 'queued', not_before = {now} + 2 * {hour} WHERE id = 2"
        ),
        // Revisits: one overdue, one in half an hour, one in three days, one in a month.
        format!("UPDATE frontier SET recrawl_at = {now} - {hour} WHERE id = 3"),
        format!("UPDATE frontier SET recrawl_at = {now} + {hour} / 2 WHERE id = 4"),
        format!("UPDATE frontier SET recrawl_at = {now} + 72 * {hour} WHERE id = 5"),
        format!("UPDATE frontier SET recrawl_at = {now} + 720 * {hour} WHERE id = 6"),
        // Being fetched: not waiting, whatever its times say.
        "UPDATE frontier SET state = 'leased', not_before = 0 WHERE id = 7".to_owned(),
        "INSERT INTO frontier_staged (url, host, depth, priority, redirect_hops, kind)
         VALUES ('http://127.0.0.1:1/new/1', '127.0.0.1:1', 1, 0, 0, 'page'),
                ('http://127.0.0.1:1/new/2', '127.0.0.1:1', 1, 0, 0, 'page')"
            .to_owned(),
    ];
    change_database(&harness, &statements).await;
    assert_eq!(
        due(rows(&harness, &["stats"]).await),
        [
            ("now".to_owned(), 4),
            ("within an hour".to_owned(), 1),
            ("within a day".to_owned(), 1),
            ("within a week".to_owned(), 1),
            ("later".to_owned(), 1),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_staged_urls_as_queued_and_leased_urls_apart() {
    let (_site, _model, harness, _) = crawled_graph().await;
    let totals = |stats: Vec<serde_json::Map<String, Value>>| -> (Option<i64>, Option<i64>) {
        let value = |key: &str| {
            stats
                .iter()
                .find(|r| text(r, "section") == "total" && text(r, "key") == key)
                .and_then(|r| int(r, "value"))
        };
        (value("URLs queued"), value("URLs leased"))
    };
    assert_eq!(totals(rows(&harness, &["stats"]).await), (Some(0), Some(0)));

    // The tables as a running crawl leaves them between batches: a URL being fetched,
    // two retries waiting in the frontier, and three new URLs staged for the next merge.
    let statements = [
        "UPDATE frontier SET state = 'leased', lease_owner = 'test', lease_expires = 0
         WHERE id = (SELECT min(id) FROM frontier)",
        "UPDATE frontier SET state = 'queued'
         WHERE id IN (SELECT id FROM frontier ORDER BY id DESC LIMIT 2)",
        "INSERT INTO frontier_staged (url, host, depth, priority, redirect_hops, kind)
         VALUES ('http://127.0.0.1:1/new/1', '127.0.0.1:1', 1, 0, 0, 'page'),
                ('http://127.0.0.1:1/new/2', '127.0.0.1:1', 1, 0, 0, 'page'),
                ('http://127.0.0.1:1/new/3', '127.0.0.1:1', 1, 0, 0, 'page')",
    ];
    change_database(&harness, &statements.map(String::from)).await;
    assert_eq!(totals(rows(&harness, &["stats"]).await), (Some(5), Some(1)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_format_parses_back_to_the_same_rows() {
    let (_site, _model, harness, reachable) = crawled_graph().await;
    let words = ["pages", "--limit", "0"];
    let json = rows(&harness, &words).await;
    assert_eq!(json.len(), reachable.len());
    // As text, the way CSV and a table show every value.
    let as_text = |v: &Value| match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let (csv_text, _) = ask(&harness, Format::Csv, &words).await;
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let columns: Vec<String> = reader
        .headers()
        .expect("a CSV header")
        .iter()
        .map(str::to_owned)
        .collect();
    let keys: BTreeSet<&String> = json[0].keys().collect();
    assert_eq!(keys, columns.iter().collect(), "the same columns");
    let expected: Vec<Vec<String>> = json
        .iter()
        .map(|r| columns.iter().map(|c| as_text(&r[c])).collect())
        .collect();
    let csv_rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.expect("a CSV record").iter().map(str::to_owned).collect())
        .collect();
    assert_eq!(csv_rows, expected);

    let (jsonl_text, _) = ask(&harness, Format::Jsonl, &words).await;
    let jsonl: Vec<Value> = jsonl_text
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON object per line"))
        .collect();
    let json_values: Vec<Value> = json.iter().cloned().map(Value::Object).collect();
    assert_eq!(jsonl, json_values);

    let (table, _) = ask(&harness, Format::Table, &words).await;
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines.len(),
        reachable.len() + 2,
        "header, rule, one line per row"
    );
    assert!(lines[0].starts_with("url ") && lines[1].starts_with("---"));

    // An empty answer is still well-formed.
    let none = ["pages", "--title", "no such title"];
    assert_eq!(ask(&harness, Format::Json, &none).await.0, "[\n]\n");
    assert!(ask(&harness, Format::Csv, &none)
        .await
        .0
        .starts_with("url,status,"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_through_sql_is_refused_and_the_database_is_unchanged() {
    let (_site, _model, harness, reachable) = crawled_graph().await;
    let db = harness.db_path();
    let copy = harness.dir.path().join("copy.db");
    let attached = harness.dir.path().join("attached.db");
    let attempts = [
        "DELETE FROM pages".to_owned(),
        "UPDATE pages SET title = 'x'".to_owned(),
        "DROP TABLE links".to_owned(),
        format!("VACUUM INTO '{}'", copy.display()),
        format!("ATTACH '{}' AS other", attached.display()),
    ];
    // Statements that would undo a lock for the next are refused before any runs.
    let sequences = [
        "PRAGMA query_only = 0; DELETE FROM links".to_owned(),
        format!("PRAGMA query_only = 0; VACUUM INTO '{}'", copy.display()),
        format!(
            "ATTACH '{}' AS other; CREATE TABLE other.t (x)",
            attached.display()
        ),
    ];
    let before = std::fs::read(&db).expect("read the database file");
    let db_arg = db.display().to_string();
    for sql in attempts {
        let out = pipecrawl(args(&["query", "--db", &db_arg, "sql", &sql])).await;
        assert_fails(
            &out,
            &[
                "`query sql` only reads",
                "`query sql` reads this database only",
            ],
        );
    }
    for sql in sequences {
        let out = pipecrawl(args(&["query", "--db", &db_arg, "sql", &sql])).await;
        assert_fails(&out, &["`query sql` runs one statement per call"]);
    }
    assert!(!copy.exists() && !attached.exists(), "no file was written");
    assert_eq!(std::fs::read(&db).expect("read the database file"), before);
    assert_eq!(harness.page_count().await, reachable.len() as i64);

    // Reading works, with the SQL's own column names.
    let counted = rows(
        &harness,
        &["sql", "SELECT count(*) AS n FROM links WHERE rel IS NULL"],
    )
    .await;
    assert!(int(&counted[0], "n") > Some(0));
}

/// Runs `query` with `options` (`--db` …) and `sql SQL` for each of `statements`: each is
/// refused saying `said`, and prints nothing.
async fn sql_refused(options: &[&str], statements: &[&str], said: &str) {
    for sql in statements {
        let mut words = options.to_vec();
        words.extend(["sql", sql]);
        let out = pipecrawl(args(&words)).await;
        assert_fails(&out, &[said]);
        assert!(out.stdout.is_empty(), "{sql}: nothing was printed");
    }
}

/// A placeholder in `query sql` (`?`, `?2`, `:name`, as SQL pasted from a program holds
/// them) was bound as NULL on SQLite: `WHERE url <> ?` answered 0, as if no page
/// matched, and `:name` failed with sqlx's "unsupported SQL parameter format". Refused,
/// saying to write the values in; a question mark in a string is no placeholder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_with_a_placeholder_is_refused_saying_to_write_the_values_in() {
    let (_site, _model, harness, _) = crawled_graph().await;
    let db = harness.db_path().display().to_string();
    sql_refused(
        &["query", "--db", &db],
        &[
            "SELECT count(*) AS n FROM pages WHERE url <> ?",
            "SELECT :name AS x",
            "SELECT ?2 AS x",
        ],
        "`query sql` has no values to give: write the values into it",
    )
    .await;
    let asked = rows(
        &harness,
        &["sql", "SELECT count(*) AS n FROM pages WHERE url <> '?'"],
    )
    .await;
    assert_eq!(int(&asked[0], "n"), Some(harness.page_count().await));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_of_several_statements_is_refused_before_any_runs() {
    let (_site, _model, harness, _) = crawled_graph().await;
    let db = harness.db_path().display().to_string();
    sql_refused(
        &["query", "--db", &db, "--format", "json"],
        &[
            "SELECT 'x' AS b, 'y' AS c; SELECT 1 AS a",
            "SELECT 1 AS a;\n  /* the same columns */ SELECT 2 AS a",
            "SELECT 1 AS a; no such statement",
        ],
        "`query sql` runs one statement per call: run each on its own (SQLite: ",
    )
    .await;

    // A trailing semicolon or comment is no second statement.
    let one = rows(
        &harness,
        &["sql", "SELECT count(*) AS n FROM pages; -- every page\n;"],
    )
    .await;
    assert_eq!(one.len(), 1);
    assert!(int(&one[0], "n") > Some(0));
}

/// SQL opening with a `--` comment, as README's example questions do, is a statement:
/// `query sql "-- Broken links …"` was refused as an "unexpected argument", the comment
/// read as an option. The options around it are still options.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_opening_with_a_comment_runs() {
    let (_harness, db) = empty_crawl().await;
    let sql = "-- Pages stored.\nSELECT count(*) AS n FROM pages";
    for words in [
        ["query", "--db", &db, "sql", sql, "--format", "csv"],
        ["query", "sql", "--format", "csv", sql, "--db", &db],
    ] {
        let out = pipecrawl(args(&words)).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{words:?}: {stderr}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "n\r\n0\r\n",
            "{words:?}"
        );
    }
}

/// `pipecrawl query --db DB --format FORMAT sql SQL`.
async fn sql_as(db: &str, format: &str, sql: &str) -> Output {
    pipecrawl(args(&["query", "--db", db, "--format", format, "sql", sql])).await
}

/// [`sql_as`] in JSON and in JSON Lines, each with its format.
async fn sql_as_json(db: &str, sql: &str) -> Vec<(&'static str, Output)> {
    let mut outs = Vec::new();
    for format in ["json", "jsonl"] {
        outs.push((format, sql_as(db, format, sql).await));
    }
    outs
}

/// Two columns of one name (`SELECT s.url, t.url`, or `*` over a join) made a JSON object
/// holding the key twice, of which `jq` and Python's `json` keep the last: the first
/// column's values were lost without a word. As JSON it is refused, naming both; CSV and
/// a table keep both columns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_with_two_columns_of_one_name_is_refused_as_json_rather_than_losing_one() {
    let (_harness, db) = empty_crawl().await;
    let sql = "SELECT 'a' AS url, 1 AS n, 'b' AS url";
    for (format, out) in sql_as_json(&db, sql).await {
        assert_fails(&out, &["columns 1 and 3 are both named `url`"]);
        assert!(out.stdout.is_empty(), "{format}: nothing was printed");
    }
    let out = sql_as(&db, "csv", sql).await;
    assert_eq!(answered(&out, "csv"), "url,n,url\r\na,1,b\r\n");
}

/// Text that is not UTF-8 reaches JSON with U+FFFD for its invalid bytes: `export` says
/// so on stderr, and README says a question prints it as `export` writes it, but the
/// question changed the value without a word.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_of_text_that_is_not_utf8_says_its_invalid_bytes_were_replaced() {
    let (_harness, db) = empty_crawl().await;
    let sql = "SELECT CAST(x'61ff62' AS TEXT) AS t";
    for (format, out) in sql_as_json(&db, sql).await {
        assert!(answered(&out, format).contains("a\u{fffd}b"), "{format}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("not UTF-8"), "{format}: {stderr}");
    }
    let out = sql_as(&db, "csv", sql).await;
    assert_eq!(out.stdout, b"t\r\na\xffb\r\n", "CSV keeps the bytes");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_foreign_file_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let missing = dir.path().join("nothing.db");
    let text_file = dir.path().join("notes.txt");
    std::fs::write(
        &text_file,
        "not a database, just some text that is long enough ".repeat(20),
    )
    .expect("write a text file");
    let cases: [(&Path, &str); 3] = [
        (&missing, "there is no database at"),
        (&text_file, "is not a SQLite database"),
        (dir.path(), "is not a SQLite database (it is a directory)"),
    ];
    for (path, says) in cases {
        let db = path.display().to_string();
        assert_fails(
            &pipecrawl(args(&["query", "--db", &db, "stats"])).await,
            &[says],
        );
    }
    assert!(!missing.exists(), "querying does not create a database");

    // A SQLite database of something else.
    let other_db = dir.path().join("other.db");
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&other_db)
        .create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options)
        .await
        .expect("create a database");
    sqlx::query("CREATE TABLE pages (x)")
        .execute(&pool)
        .await
        .expect("a table");
    pool.close().await;
    let (db, out) = (
        other_db.display().to_string(),
        dir.path().display().to_string(),
    );
    assert_fails(
        &pipecrawl(args(&["export", "--db", &db, "--out", &out])).await,
        &["is not a pipecrawl database: it has no `links` table"],
    );
}

/// A crawl starting on a new database creates the file, then sqlx's table of
/// migrations, then the tables, each a moment apart: `query stats` run in a loop beside
/// `pipecrawl crawl` said "crawl.db is not a pipecrawl database: it has no `pages`
/// table" of the database that crawl went on to fill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_a_crawl_has_only_begun_to_create_is_said_to_hold_no_crawl_yet() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, "").expect("an empty file");
    let begun = dir.path().join("begun.db");
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&begun)
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
    let pool = sqlx::SqlitePool::connect_with(options)
        .await
        .expect("create a database");
    // sqlx's migrator makes its table before the first migration's transaction.
    sqlx::query("CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY)")
        .execute(&pool)
        .await
        .expect("the migrations' table");
    let out = dir.path().join("export").display().to_string();
    for db in [&empty, &begun] {
        let db = db.display().to_string();
        for question in [
            args(&["query", "--db", &db, "stats"]),
            args(&["export", "--db", &db, "--out", &out]),
        ] {
            assert_fails(
                &pipecrawl(question).await,
                &[&format!("{db} holds no crawl yet")],
            );
        }
    }
    pool.close().await;
}

/// A relative `storage.database` (the example's `crawl.db`) is read from the current
/// directory, as the crawl wrote it from its own (a service's WorkingDirectory): asked
/// with `--config /etc/pipecrawl/crawl.toml` from elsewhere, the answer was "there is no
/// database at crawl.db", with no word of where it looked.
#[test]
fn a_relative_database_not_found_says_where_it_was_looked_for() {
    let config_dir = tempfile::tempdir().expect("a temp dir");
    let elsewhere = tempfile::tempdir().expect("a temp dir");
    let config = config_dir.path().join("crawl.toml");
    std::fs::write(&config, "seeds = []\n[storage]\ndatabase = \"crawl.db\"\n")
        .expect("write the config");
    let out = Command::new(env!("CARGO_BIN_EXE_pipecrawl"))
        .args(["query", "--config"])
        .arg(&config)
        .arg("stats")
        .current_dir(elsewhere.path())
        .output()
        .expect("run the pipecrawl binary");
    let looked_at = elsewhere.path().join("crawl.db");
    for says in [
        format!(
            "there is no database at crawl.db ({}: ",
            looked_at.display()
        ),
        "a relative path is read from the current directory".to_owned(),
    ] {
        assert_fails(&out, &[&says]);
    }
}

/// `--db` and `--config` name the database two ways, so together they are refused, as
/// clap refuses them on one side of the question: one before it and the other after
/// (`query --config crawl.toml stats --db other.db`) answered from `--db`, the config
/// unheard, with exit code 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_and_config_on_either_side_of_the_question_are_refused() {
    let (harness, db) = empty_crawl().await;
    let config = harness
        .write_config(&harness.config_text(&[], ""))
        .display()
        .to_string();
    for words in [
        ["query", "--config", &config, "stats", "--db", &db],
        ["query", "--db", &db, "stats", "--config", &config],
        ["query", "--db", &db, "--config", &config, "stats"],
    ] {
        let out = pipecrawl(args(&words)).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{words:?}: {stderr}");
        assert!(
            stderr.contains("'--db <DB>' cannot be used with '--config <CONFIG>'")
                || stderr.contains("'--config <CONFIG>' cannot be used with '--db <DB>'"),
            "{words:?}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{words:?}: nothing was answered");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_named_by_a_sqlite_url_is_read_where_the_crawl_wrote_it() {
    let site = TestSite::one_host(&[
        ("/", "<title>Home</title><a href='/a'>A</a>"),
        ("/a", "<title>Page A</title>"),
    ])
    .await;
    let harness = Harness::default();
    let path = harness.db_path().display().to_string();
    let url = format!("sqlite://{path}");
    assert!(url.starts_with("sqlite:///"), "an absolute path: {url}");
    let config = harness
        .test_config_text(&[site.url(0, "/")], "")
        .replace(&format!("{path:?}"), &format!("{url:?}"));
    let config = harness.write_config(&config).display().to_string();
    let crawled = pipecrawl(args(&["crawl", "--config", &config])).await;
    assert!(
        crawled.status.success(),
        "{}",
        String::from_utf8_lossy(&crawled.stderr)
    );

    let pages = "SELECT count(*) AS pages FROM pages";
    for named in [["--config", &config], ["--db", &url]] {
        let mut words = vec!["query"];
        words.extend(named);
        words.extend(["--format", "csv", "sql", pages]);
        let out = pipecrawl(args(&words)).await;
        assert!(
            out.status.success(),
            "{words:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .collect::<Vec<_>>(),
            ["pages", "2"],
            "{words:?}"
        );
    }
    let stats = pipecrawl(args(&["query", "--config", &config, "stats"])).await;
    assert!(
        stats.status.success(),
        "{}",
        String::from_utf8_lossy(&stats.stderr)
    );

    let out_dir = harness.dir.path().join("export");
    let dir = out_dir.display().to_string();
    let exported = pipecrawl(args(&["export", "--config", &config, "--out", &dir])).await;
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    assert_eq!(read_export(&out_dir, "pages", "csv").1.len(), 2);
}

/// Two exports into one directory at once (a cron job's and one by hand) wrote the same
/// partial files: one said "wrote 3001 rows to two/pages.csv" and exited 0, the other
/// failed with "cannot write two/pages.csv: No such file or directory", and the files
/// held 12,001 pages, the other database's. The second is now refused while the first
/// writes, and the first's files stay as they are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_export_into_a_directory_being_exported_to_is_refused() {
    let (harness, db) = empty_crawl().await;
    let out_dir = harness.dir.path().join("export");
    std::fs::create_dir(&out_dir).expect("the output directory");
    write_an_earlier_export(&out_dir);
    // What an export in progress holds while it writes.
    let writing = std::fs::File::open(&out_dir).expect("open the directory");
    writing.lock().expect("lock it as an export does");
    let out = out_dir.display().to_string();
    assert_fails(
        &pipecrawl(args(&["export", "--db", &db, "--out", &out])).await,
        &[&format!(
            "another `pipecrawl export` is writing into {out}: wait for it to end"
        )],
    );
    assert_only_the_earlier_export(&out_dir);
    drop(writing);
    let exported = pipecrawl(args(&["export", "--db", &db, "--out", &out])).await;
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
}

/// An export killed (SIGKILL, the OOM killer, a power cut) leaves its hidden partial
/// files, as large as what it had written; the next export in the other format never
/// touched them, and they stayed for good. An export that completes removes those of
/// any format, under the directory's lock, which no other export then holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_removes_the_partial_files_a_killed_export_left() {
    let (harness, db) = empty_crawl().await;
    let out_dir = harness.dir.path().join("export");
    std::fs::create_dir(&out_dir).expect("the output directory");
    let left = [".pages.csv.part", ".links.csv.part", ".pages.jsonl.part"];
    for name in left {
        std::fs::write(out_dir.join(name), "id,url\n1,http://half").expect("a partial file");
    }
    let out = out_dir.display().to_string();
    let exported = pipecrawl(args(&[
        "export", "--db", &db, "--format", "jsonl", "--out", &out,
    ]))
    .await;
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    let mut names: Vec<String> = std::fs::read_dir(&out_dir)
        .expect("the output directory")
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["links.jsonl", "pages.jsonl"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_writes_every_page_and_link_in_csv_and_json_lines() {
    let (_site, model, harness, reachable) = crawled_graph().await;
    let db = harness.db_path();
    let expected_links: HashSet<(String, String)> = model_links(&model, &reachable)
        .into_iter()
        .map(|(_, t, a)| (t.to_owned(), a.to_owned()))
        .collect();
    for format in ["csv", "jsonl"] {
        let out_dir = harness.dir.path().join(format!("export-{format}"));
        let (path, dir) = (db.display().to_string(), out_dir.display().to_string());
        let out = pipecrawl(args(&[
            "export", "--db", &path, "--format", format, "--out", &dir,
        ]))
        .await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );

        let records = |table: &str| read_export(&out_dir, table, format).1;
        let pages = records("pages");
        let page_urls: BTreeSet<&str> = pages.iter().map(|p| p["url"].as_str()).collect();
        assert_eq!(page_urls, reachable.keys().map(String::as_str).collect());
        assert!(pages
            .iter()
            .all(|p| p.contains_key("content_hash") && p.contains_key("fetched_at")));
        let links = records("links");
        let exported: HashSet<(String, String)> = links
            .iter()
            .map(|l| (l["target_url"].clone(), l["anchor_text"].clone()))
            .collect();
        assert_eq!(links.len(), model_links(&model, &reachable).len());
        assert_eq!(exported, expected_links);
        assert!(
            !out_dir.join(".pages.csv.part").exists(),
            "no partial file is left"
        );
    }
}

/// An exported file: its column names (in the file's order for CSV, sorted for JSON Lines)
/// and its rows, every value as text (NULL as "").
pub(super) fn read_export(
    dir: &Path,
    table: &str,
    format: &str,
) -> (Vec<String>, Vec<HashMap<String, String>>) {
    let body =
        std::fs::read_to_string(dir.join(format!("{table}.{format}"))).expect("an exported file");
    if format == "csv" {
        let mut reader = csv::Reader::from_reader(body.as_bytes());
        let header: Vec<String> = reader
            .headers()
            .expect("a header")
            .iter()
            .map(str::to_owned)
            .collect();
        let rows = reader
            .records()
            .map(|r| {
                let r = r.expect("a CSV record");
                header
                    .iter()
                    .cloned()
                    .zip(r.iter().map(str::to_owned))
                    .collect()
            })
            .collect();
        return (header, rows);
    }
    let mut header = Vec::new();
    let rows = body
        .lines()
        .map(|line| {
            let Ok(Value::Object(o)) = serde_json::from_str::<Value>(line) else {
                panic!("not a JSON object: {line}");
            };
            header = o.keys().cloned().collect();
            o.into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) => s,
                        Value::Null => String::new(),
                        other => other.to_string(),
                    };
                    (k, v)
                })
                .collect()
        })
        .collect();
    (header, rows)
}

/// A harness holding an empty crawl's database, closed (all of it in the file, none in
/// a write-ahead log), and the database's path.
pub(super) async fn empty_crawl() -> (Harness, String) {
    let harness = Harness::default();
    let db = harness.db_path().display().to_string();
    pipecrawl::store::Store::open(&db)
        .await
        .expect("an empty crawl's database")
        .close()
        .await
        .expect("close the store");
    (harness, db)
}

/// `pipecrawl export` of an empty crawl's database into a directory where the partial
/// file `partial` is on a full disk, and (`earlier`) an earlier export is there; returns
/// what it said, the directory, and the harness holding both.
#[cfg(target_os = "linux")]
async fn export_onto_a_full_disk(
    partial: &str,
    earlier: bool,
) -> (Output, std::path::PathBuf, Harness) {
    let (harness, db) = empty_crawl().await;
    let out_dir = harness.dir.path().join("export");
    std::fs::create_dir(&out_dir).expect("the output directory");
    if earlier {
        write_an_earlier_export(&out_dir);
    }
    // Every write to /dev/full fails as on a full disk.
    std::os::unix::fs::symlink("/dev/full", out_dir.join(partial)).expect("a file on a full disk");
    let dir = out_dir.display().to_string();
    let out = pipecrawl(args(&["export", "--db", &db, "--out", &dir])).await;
    (out, out_dir, harness)
}

/// Asserts that an export failed into `dir` left nothing there.
#[cfg(target_os = "linux")]
fn assert_empty(dir: &Path) {
    let left: Vec<_> = std::fs::read_dir(dir)
        .expect("read the output directory")
        .map(|e| e.expect("an entry").file_name())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// Writes a stand-in for an earlier CSV export into `dir`.
pub(super) fn write_an_earlier_export(dir: &Path) {
    for table in ["pages", "links"] {
        std::fs::write(dir.join(format!("{table}.csv")), "the last export\r\n")
            .expect("an earlier export");
    }
}

/// Asserts that `dir` holds the export [`write_an_earlier_export`] wrote, as it was, and
/// nothing else.
pub(super) fn assert_only_the_earlier_export(dir: &Path) {
    let mut left: Vec<_> = std::fs::read_dir(dir)
        .expect("read the output directory")
        .map(|e| e.expect("an entry").file_name())
        .collect();
    left.sort();
    assert_eq!(left, ["links.csv", "pages.csv"], "nothing else is left");
    for table in ["pages", "links"] {
        assert_eq!(
            std::fs::read_to_string(dir.join(format!("{table}.csv"))).expect("the earlier export"),
            "the last export\r\n",
            "{table}.csv"
        );
    }
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_to_a_full_disk_names_the_file_and_leaves_no_partial_file() {
    let (out, out_dir, _harness) = export_onto_a_full_disk(".pages.csv.part", false).await;
    assert_fails(&out, &[".pages.csv.part: No space left on device"]);
    assert_empty(&out_dir);
}

/// Runs the binary with `args` under a file-size limit of `bytes` (`ulimit -f`, systemd's
/// `LimitFSIZE`): what it said, and how it ended.
#[cfg(target_os = "linux")]
pub(super) async fn pipecrawl_with_file_size_limit(args: Vec<String>, bytes: u64) -> Output {
    pipecrawl_under_limit(args, rlimit::Resource::FSIZE, bytes).await
}

/// Runs the binary with `args` under a limit of `value` (soft and hard) on `resource`:
/// what it said, and how it ended.
#[cfg(target_os = "linux")]
pub(super) async fn pipecrawl_under_limit(
    args: Vec<String>,
    resource: rlimit::Resource,
    value: u64,
) -> Output {
    use std::os::unix::process::CommandExt;
    tokio::task::spawn_blocking(move || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_pipecrawl"));
        command.args(args).env("RUST_LOG", "warn");
        // SAFETY: the closure runs in the child between fork and exec, and makes only
        // setrlimit, which is async-signal-safe.
        unsafe {
            command.pre_exec(move || rlimit::setrlimit(resource, value, value));
        }
        command.output().expect("run the pipecrawl binary")
    })
    .await
    .expect("the binary ran")
}

/// A crawl's database of `pages` pages answered 200, each titled by the SQL expression
/// `title`.
#[cfg(target_os = "linux")]
async fn crawl_of_pages(pages: u32, title: &str) -> (Harness, String) {
    let (harness, db) = empty_crawl().await;
    let statements = [
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {pages})
             INSERT INTO frontier (id, url, host, depth, priority, state)
             SELECT i, 'http://127.0.0.1:1/a/rather/long/path/to/page/' || i, '127.0.0.1:1',
                    1, 0, 'done' FROM n"
        ),
        format!(
            "INSERT INTO pages (id, url, status, title, depth, fetched_at, changed_at)
             SELECT id, url, 200, {title}, depth, '2026-12-04T00:00:00Z',
                    '2026-12-04T00:00:00Z' FROM frontier"
        ),
    ];
    change_database(&harness, &statements).await;
    (harness, db)
}

/// An export that meets the file-size limit fails as on a full disk: it says which file
/// and why, and removes what it was writing. SIGXFSZ's default action killed it with no
/// word, leaving `.pages.csv.part` behind, as large as the limit.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_past_the_file_size_limit_names_the_file_and_leaves_no_partial_file() {
    let (harness, db) = crawl_of_pages(3000, "'A title long enough to make the file grow'").await;
    let out_dir = harness.dir.path().join("export");
    std::fs::create_dir(&out_dir).expect("the output directory");
    let dir = out_dir.display().to_string();
    let out =
        pipecrawl_with_file_size_limit(args(&["export", "--db", &db, "--out", &dir]), 128 << 10)
            .await;
    assert_fails(&out, &[".pages.csv.part: File too large"]);
    assert_empty(&out_dir);
}

/// An export's peak memory while it writes rows as wide as a hostile page makes them:
/// a debug build exports a small crawl in about 30 MiB, and chunks of at most 4 MB of
/// lines leave room for a few copies of one.
#[cfg(target_os = "linux")]
const EXPORT_MEMORY_BOUND_MIB: u64 = 96;

/// A hostile page's rows are far wider than the usual: 2,000 titles of 4,096 control
/// characters are 49 MB of JSON Lines, which SQLite formatted as one chunk of up to
/// 10,000 rows, held at once by SQLite, sqlx and the export: about 230 MiB of memory
/// (10,000 such rows, 1 GB). A chunk now takes fewer rows where theirs could pass a few
/// MB, so memory stays near what any export takes, whatever the rows hold.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_of_wide_rows_holds_a_few_mb_of_them_not_ten_thousand() {
    let (harness, db) = crawl_of_pages(2000, "replace(hex(zeroblob(4096)), '00', char(1))").await;
    let out_dir = harness.dir.path().join("export");
    let log = harness.dir.path().join("export.log");
    let dir = out_dir.clone();
    let run = tokio::task::spawn_blocking(move || {
        let words = ["export", "--db", &db, "--format", "jsonl", "--out"];
        let mut args: Vec<&std::ffi::OsStr> = words.iter().map(|w| w.as_ref()).collect();
        args.push(dir.as_os_str());
        super::faults::measured(&args, &log)
    })
    .await
    .expect("the export ran");
    assert!(
        run.peak_rss_kib < EXPORT_MEMORY_BOUND_MIB * 1024,
        "the export's peak memory was {} KiB, over the bound of {EXPORT_MEMORY_BOUND_MIB} MiB",
        run.peak_rss_kib
    );
    let pages = read_export(&out_dir, "pages", "jsonl").1;
    assert_eq!(pages.len(), 2000);
    let title = "\u{1}".repeat(4096);
    assert!(
        pages.iter().all(|p| p["title"] == title),
        "every title whole"
    );
}

/// Runs the binary with `words`, SQLite's temporary directory (SQLITE_TMPDIR) a full
/// disk in `harness`'s directory: what it said, and the directory; `None` where no disk
/// can be mounted.
#[cfg(target_os = "linux")]
async fn with_no_temp_room(harness: &Harness, words: Vec<String>) -> Option<(Output, PathBuf)> {
    let temp = harness.dir.path().join("tmp");
    std::fs::create_dir(&temp).expect("the temporary directory");
    let disk = super::resume::SmallDisk::mount(&temp)?;
    disk.fill();
    let dir = temp.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_pipecrawl"))
            .args(words)
            .env("SQLITE_TMPDIR", dir)
            .output()
            .expect("run the pipecrawl binary")
    })
    .await
    .expect("the binary ran");
    Some((out, temp))
}

/// A question whose sort outgrows memory spills to SQLite's temporary directory; with
/// no room there it said "the SQL failed: database or disk is full", which sent the
/// user to the disk of the database, which it only reads. It names the directory and
/// SQLITE_TMPDIR.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sort_with_no_room_in_the_temporary_directory_names_it() {
    let (harness, db) = crawl_of_pages(20_000, "hex(randomblob(200))").await;
    let words = args(&[
        "query", "--db", &db, "pages", "--sort", "title", "--limit", "0",
    ]);
    let Some((out, temp)) = with_no_temp_room(&harness, words).await else {
        return;
    };
    assert_fails(
        &out,
        &[&format!(
            "no room for SQLite's temporary files in {}",
            temp.display()
        )],
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("SQLITE_TMPDIR"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A question whose sort outgrows memory where SQLite finds no directory it may write
/// for its temporary files (a container's read-only root, `/tmp` and `/var/tmp` with
/// it, its working directory too) said "the SQL failed: disk I/O error", which named
/// neither the directories nor SQLITE_TMPDIR. It names both.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sort_with_no_writable_temporary_directory_names_where_it_looked() {
    let (harness, db) = crawl_of_pages(20_000, "hex(randomblob(200))").await;
    let words = args(&[
        "query", "--db", &db, "pages", "--sort", "title", "--limit", "0",
    ]);
    let mut read_only: Vec<PathBuf> = ["/tmp", "/var/tmp", "/usr/tmp"]
        .into_iter()
        .map(PathBuf::from)
        .filter(|dir| dir.is_dir())
        .collect();
    read_only.push(harness.dir.path().to_owned());
    let dir = harness.dir.path().to_owned();
    let Some(out) = pipecrawl_on_read_only_mounts(read_only, dir, words).await else {
        return;
    };
    assert_fails(
        &out,
        &["no directory SQLite may write its temporary files in"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    for named in ["SQLITE_TMPDIR", "/var/tmp", "/tmp", "the current directory"] {
        assert!(stderr.contains(named), "{named}: {stderr}");
    }
}

/// An export sorts nothing larger than the chunk of rows it holds, yet wrote each
/// chunk's ordering to SQLite's temporary directory: with no room there it failed,
/// though its own disk had room.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_needs_no_room_in_the_temporary_directory() {
    let (harness, db) = crawl_of_pages(20_000, "hex(randomblob(200))").await;
    let out_dir = harness.dir.path().join("export");
    let dir = out_dir.display().to_string();
    let words = args(&["export", "--db", &db, "--out", &dir]);
    let Some((out, _)) = with_no_temp_room(&harness, words).await else {
        return;
    };
    answered(&out, "export");
    let pages = std::fs::read_to_string(out_dir.join("pages.csv")).expect("pages.csv");
    assert_eq!(pages.lines().count(), 20_001, "a header and every page");
}

/// A finished crawl of two pages, its `crawl.db` moved into the directory `name` of the
/// harness's: the harness and that directory.
async fn finished_crawl_in(name: &str) -> (Harness, PathBuf) {
    let site = TestSite::one_host(&[
        ("/", "<title>Home</title><a href='/a'>A</a>"),
        ("/a", "<title>Page A</title>"),
    ])
    .await;
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;
    let dir = harness.dir.path().join(name);
    std::fs::create_dir(&dir).expect("a directory");
    std::fs::rename(harness.db_path(), dir.join("crawl.db")).expect("move the finished crawl");
    (harness, dir)
}

/// A crawl's database in a directory the reader cannot write (a read-only mount, another
/// user's crawl) is read: SQLite cannot make the shared-memory file a WAL database's
/// readers use there.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_crawl_in_a_directory_the_reader_cannot_write_is_read() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::os::unix::process::CommandExt;

    let (harness, shelf) = finished_crawl_in("read-only").await;
    let db = shelf.join("crawl.db");
    let mode = |path: &Path, mode| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .expect("set permissions");
    };
    mode(harness.dir.path(), 0o755);
    mode(&db, 0o644);
    mode(&shelf, 0o555);
    let mut command = Command::new(env!("CARGO_BIN_EXE_pipecrawl"));
    let root = std::fs::metadata(&db).expect("the database").uid() == 0;
    if root {
        // Root writes any directory: read as nobody, as a user without the right would.
        command.uid(65534).gid(65534);
    }
    let out = command
        .args(["query", "--db"])
        .arg(&db)
        .args(["--format", "csv", "sql", "SELECT count(*) AS n FROM pages"])
        .env("RUST_LOG", "warn")
        .output()
        .expect("run the pipecrawl binary");
    mode(&shelf, 0o755);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "n\r\n2\r\n");
}

/// Whether this user may make mount namespaces and mount in them; said on stderr when
/// not (CI runs as root).
#[cfg(target_os = "linux")]
pub(super) fn may_make_mount_namespaces() -> bool {
    let may = Command::new("unshare")
        .args(["--mount", "true"])
        .status()
        .is_ok_and(|status| status.success());
    if !may {
        eprintln!("skipped: cannot make a mount namespace (root can)");
    }
    may
}

/// Runs the binary with `words` in `dir`, in a mount namespace of its own where each of
/// `read_only` is a read-only mount, as a container's read-only root and volumes are:
/// what it said; `None`, said on stderr, where this user may not make one (CI runs as
/// root). The mounts go with the namespace when the binary exits; `dir` is entered again
/// once they are made, so that a mount on it is the binary's working directory.
#[cfg(target_os = "linux")]
pub(super) async fn pipecrawl_on_read_only_mounts(
    read_only: Vec<PathBuf>,
    dir: PathBuf,
    words: Vec<String>,
) -> Option<Output> {
    if !may_make_mount_namespaces() {
        return None;
    }
    let script = "mount --make-rprivate / || exit 99
        n=$1; shift
        while [ \"$n\" -gt 0 ]; do
            mount --bind \"$1\" \"$1\" && mount -o remount,ro,bind \"$1\" || exit 99
            shift; n=$((n - 1))
        done
        cd \"$(pwd)\" || exit 99
        exec \"$@\"";
    let out = tokio::task::spawn_blocking(move || {
        Command::new("unshare")
            .args(["--mount", "sh", "-c", script, "sh"])
            .arg(read_only.len().to_string())
            .args(read_only)
            .arg(env!("CARGO_BIN_EXE_pipecrawl"))
            .args(words)
            .current_dir(dir)
            .env("RUST_LOG", "warn")
            .env_remove("SQLITE_TMPDIR")
            .env_remove("TMPDIR")
            .output()
            .expect("run unshare")
    })
    .await
    .expect("the binary ran");
    assert_ne!(
        out.status.code(),
        Some(99),
        "cannot mount read-only: {out:?}"
    );
    Some(out)
}

/// A finished crawl's database on a read-only mount (a container's volume mounted
/// `readOnly`, a snapshot) is read and exported, as README says: SQLite cannot make the
/// `-shm` file there as it cannot in a directory the user may not write, but says so as
/// "unable to open database file", which the reader did not take for that, and failed.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_crawl_on_a_read_only_mount_is_read_and_exported() {
    let (harness, volume) = finished_crawl_in("volume").await;
    let db = volume.join("crawl.db").display().to_string();
    let out_dir = harness.dir.path().join("export").display().to_string();
    let asked = [
        args(&[
            "query",
            "--db",
            &db,
            "--format",
            "csv",
            "sql",
            "SELECT count(*) AS n FROM pages",
        ]),
        args(&["export", "--db", &db, "--out", &out_dir]),
    ];
    for words in asked {
        let Some(out) =
            pipecrawl_on_read_only_mounts(vec![volume.clone()], volume.clone(), words.clone())
                .await
        else {
            return;
        };
        let stdout = answered(&out, &words.join(" "));
        if words[0] == "query" {
            assert_eq!(stdout, "n\r\n2\r\n");
        }
    }
    let pages = read_export(&harness.dir.path().join("export"), "pages", "csv").1;
    assert_eq!(pages.len(), 2);
}

/// The names of the files beside the crawl's database that are SQLite's or the crawl's.
pub(super) fn beside_database(harness: &Harness) -> BTreeSet<String> {
    std::fs::read_dir(harness.dir.path())
        .expect("the crawl's directory")
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("crawl.db"))
        .collect()
}

/// A question or an export of a finished crawl's database left an empty `crawl.db-wal`
/// and `crawl.db-shm` beside it, where README says a finished crawl leaves no `-wal`: a
/// read-only connection cannot remove the log SQLite opens for it, as the last
/// connection to close does. Each leaves the directory as it found it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_or_an_export_leaves_no_files_beside_a_finished_crawl() {
    let site = TestSite::one_host(&[("/", "<title>Home</title>")]).await;
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;
    let before = beside_database(&harness);
    assert!(!before.contains("crawl.db-wal"), "{before:?}");
    let db = harness.db_path().display().to_string();
    let out = harness.dir.path().join("export").display().to_string();
    for words in [
        vec!["query", "--db", &db, "stats"],
        vec!["query", "--db", &db, "sql", "SELECT count(*) FROM pages"],
        vec!["export", "--db", &db, "--out", &out],
    ] {
        answered(&pipecrawl(args(&words)).await, &words.join(" "));
        assert_eq!(beside_database(&harness), before, "after {words:?}");
    }
}

/// The log a question opened is left while another connection holds the database (a
/// crawl started during the question, a sqlite3 shell): removed under it, that
/// connection's next commits would go to a file no later reader reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_leaves_the_log_a_connection_opened_meanwhile_holds() {
    let (harness, db) = empty_crawl().await;
    let reader = query::open::open(&db, query::open::Needs::Questions)
        .await
        .expect("open the database to read");
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(harness.db_path());
    let pool = sqlx::SqlitePool::connect_with(options)
        .await
        .expect("open the crawl database");
    sqlx::query("SELECT count(*) FROM pages")
        .execute(&pool)
        .await
        .expect("a read, through the log");
    let held = beside_database(&harness);
    assert!(held.contains("crawl.db-wal"), "{held:?}");
    reader.close().await;
    assert_eq!(beside_database(&harness), held);
    sqlx::query(
        "INSERT INTO frontier (url, host, depth, priority) VALUES ('http://a/', 'a', 0, 0)",
    )
    .execute(&pool)
    .await
    .expect("a commit, into the log");
    let rows = rows(&harness, &["sql", "SELECT url FROM frontier"]).await;
    pool.close().await;
    assert_eq!(rows.len(), 1, "{rows:?}");
}

/// Sets the permission bits of `path`.
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("set permissions");
}

/// What `query stats` and `export` of `db` (made in `harness`) say, run by a user who
/// may not read or write what `owned` (a file or directory beside it) forbids: as nobody
/// when the tests run as root, whom file modes do not stop.
fn query_and_export_without_rights(harness: &Harness, db: &str, owned: &Path) -> Vec<Output> {
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::process::CommandExt;

    set_mode(harness.dir.path(), 0o755);
    let root = std::fs::metadata(owned).expect("the file").uid() == 0;
    let out_dir = harness.dir.path().join("export").display().to_string();
    [
        vec!["query", "--db", db, "stats"],
        vec!["export", "--db", db, "--out", &out_dir],
    ]
    .into_iter()
    .map(|words| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_pipecrawl"));
        if root {
            command.uid(65534).gid(65534);
        }
        command
            .args(&words)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run the pipecrawl binary")
    })
    .collect()
}

/// A database file the user may not read (another user's crawl, mode 0600) was "database
/// error while opening the database: unable to open database file": SQLite's words,
/// naming neither the file nor why, where a missing file is named and explained.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_file_the_reader_may_not_read_is_named_with_the_reason() {
    let (harness, db) = empty_crawl().await;
    let file = harness.db_path();
    set_mode(&file, 0o000);
    for out in query_and_export_without_rights(&harness, &db, &file) {
        assert_fails(
            &out,
            &[&format!(
                "cannot read {db}: Permission denied (os error 13)"
            )],
        );
    }
}

/// Copies `harness`'s crawl into `dir` with a commit in its write-ahead log, and no
/// `-shm` file: a crawl writing it, or one killed, copied.
async fn copy_with_its_log(harness: &Harness, dir: &Path) {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(harness.db_path())
        .pragma("wal_autocheckpoint", "0");
    let pool = sqlx::SqlitePool::connect_with(options)
        .await
        .expect("open the crawl database");
    sqlx::query(
        "INSERT INTO frontier (url, host, depth, priority) VALUES ('http://a/', 'a', 0, 0)",
    )
    .execute(&pool)
    .await
    .expect("a commit, kept in the log");
    for name in ["crawl.db", "crawl.db-wal"] {
        std::fs::copy(harness.dir.path().join(name), dir.join(name)).expect("copy the file");
    }
    pool.close().await;
}

/// The same on a full disk, where SQLite cannot grow the `-shm` file it makes: it was
/// "database error while reading the database schema: disk I/O error", naming no file
/// and reading like a failing drive.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_whose_log_needs_a_shm_file_on_a_full_disk_says_so() {
    let (harness, _) = empty_crawl().await;
    let shelf = harness.dir.path().join("copy");
    std::fs::create_dir(&shelf).expect("a directory");
    let Some(disk) = super::resume::SmallDisk::mount(&shelf) else {
        return;
    };
    copy_with_its_log(&harness, &shelf).await;
    disk.fill();
    let db = shelf.join("crawl.db").display().to_string();
    let out_dir = harness.dir.path().join("export").display().to_string();
    for words in [
        args(&["query", "--db", &db, "stats"]),
        args(&["export", "--db", &db, "--out", &out_dir]),
    ] {
        let out = pipecrawl(words).await;
        assert_fails(
            &out,
            &[&format!(
                "cannot read {db}: its write-ahead log {db}-wal is beside it"
            )],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("takes {db}-shm, for which the disk has no room")),
            "{stderr}"
        );
    }
}

/// A database with its write-ahead log beside it (a crawl writing, or one killed) in a
/// directory the reader may not write, with no `-shm` file there yet (a copy of the two
/// files), was "database error while reading the database schema: unable to open
/// database file": SQLite cannot make the `-shm` it needs, and says nothing of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_whose_log_cannot_be_read_without_a_shm_file_says_so() {
    let (harness, _) = empty_crawl().await;
    let shelf = harness.dir.path().join("copy");
    std::fs::create_dir(&shelf).expect("a directory");
    copy_with_its_log(&harness, &shelf).await;
    let db = shelf.join("crawl.db").display().to_string();
    set_mode(&shelf, 0o555);
    for out in query_and_export_without_rights(&harness, &db, &shelf) {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_fails(
            &out,
            &[&format!(
                "cannot read {db}: its write-ahead log {db}-wal is beside it"
            )],
        );
        assert!(stderr.contains(&format!("{db}-shm")), "{stderr}");
    }
    set_mode(&shelf, 0o755);
}

/// A damaged database file (a copy cut short, a disk's bad block) was "database error
/// while reading the database schema: database disk image is malformed": `query` named
/// no file, and nothing said what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_database_file_is_named_as_damaged() {
    use std::io::{Seek, SeekFrom, Write};

    let (harness, db) = empty_crawl().await;
    // Past the file's header, the first page: the b-tree of the schema itself.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(harness.db_path())
        .expect("open the database file");
    file.seek(SeekFrom::Start(100)).expect("seek");
    file.write_all(&[0xff; 200])
        .expect("damage the schema page");
    drop(file);
    let out_dir = harness.dir.path().join("export").display().to_string();
    said_damaged(
        &db,
        [
            vec!["query", "--db", &db, "stats"],
            vec!["export", "--db", &db, "--out", &out_dir],
        ],
    )
    .await;
}

/// That each of `commands` fails naming `db` as damaged.
async fn said_damaged<const N: usize>(db: &str, commands: [Vec<&str>; N]) {
    for words in commands {
        assert_fails(
            &pipecrawl(args(&words)).await,
            &[&format!(
                "{db} is damaged (database disk image is malformed): restore it from a copy"
            )],
        );
    }
}

/// `--host` given a pattern as `scope.hosts` writes one (`*.bücher.example`, for a host and
/// its subdomains) matched no stored URL and printed an empty answer, as if the crawl had
/// no page there; it is refused, saying what `--host` takes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_pattern_is_refused_rather_than_answered_with_nothing() {
    let harness = Harness::default();
    let db = harness.db_path().display().to_string();
    pipecrawl::store::Store::open(&db)
        .await
        .expect("an empty crawl's database");
    for question in ["pages", "top", "broken", "changes"] {
        let out = pipecrawl(args(&[
            "query",
            "--db",
            &db,
            question,
            "--host",
            "*.bücher.example",
        ]))
        .await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{question}: {stderr}");
        assert!(
            stderr.contains("is a pattern") && stderr.contains("--host bücher.example"),
            "{question}: {stderr}"
        );
    }
}

/// `--host` pasted as a URL (`http://example.com:8080/`, as a browser's address bar or a
/// log line gives it) is that URL's host, on every question that takes one; it used to
/// match nothing and print an empty answer, as if the host had no pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_given_as_a_url_is_that_urls_host() {
    let site = TestSite::one_host(&[
        (
            "/",
            "<title>Home</title><a href='/a'>A</a><a href='/gone'>Gone</a>",
        ),
        ("/a", "<title>Page A</title><a href='/'>Home</a>"),
    ])
    .await;
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;
    let authority = &site.authorities[0];
    for host in [
        authority.clone(),
        site.url(0, "/"),
        site.url(0, "/a?x=1#top"),
        format!("HTTP://{}", authority.to_uppercase()),
    ] {
        let pages = rows(&harness, &["pages", "--host", &host]).await;
        assert_eq!(pages.len(), 3, "pages --host {host}");
        let top = rows(&harness, &["top", "--host", &host]).await;
        assert_eq!(top.len(), 3, "top --host {host}");
        let broken = rows(&harness, &["broken", "--host", &host]).await;
        assert_eq!(broken.len(), 1, "broken --host {host}");
    }
    // The URL's own port, not any port.
    let (name, port) = authority.rsplit_once(':').expect("a port");
    let other = format!(
        "http://{name}:{}/",
        port.parse::<u16>().expect("a port") ^ 1
    );
    assert!(rows(&harness, &["pages", "--host", &other])
        .await
        .is_empty());
}

/// The most heap memory a running process has held, in KiB: the high-water mark of its
/// resident set (`VmHWM` in `/proc/<pid>/status`) less the files it maps now, the
/// database SQLite maps into memory above all (its pages stay resident once read).
#[cfg(target_os = "linux")]
fn peak_heap_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("its status");
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} line"))
    };
    field("VmHWM:").saturating_sub(field("RssFile:") + field("RssShmem:"))
}

/// A broken link in a site's footer is linked from every page. `broken` used to gather
/// all of a target's links into one value before printing the first of them (about 1 KB
/// of memory per link: gigabytes for a million-page site); they now stream like any
/// other answer. The process is caught with its output pipe full, early in the answer,
/// when the old way held every link of the target in memory.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_streams_the_links_to_a_target_linked_from_every_page() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::Stdio;

    const PAGES: i64 = 100_000;
    let site = TestSite::one_host(&[("/", "<title>Home</title><a href='/gone'>Gone</a>")]).await;
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;
    let gone = site.url(0, "/gone");
    let home = site.url(0, "/");
    let pages = format!(
        "WITH RECURSIVE n (i) AS (SELECT 1000 UNION ALL SELECT i + 1 FROM n WHERE i < {})",
        999 + PAGES
    );
    let statements = [
        format!(
            "{pages} INSERT INTO frontier (id, url, host, depth, priority, state)
             SELECT i, '{home}page/' || i, 'h', 1, 0, 'done' FROM n"
        ),
        format!(
            "{pages} INSERT INTO pages (id, url, depth, fetched_at, changed_at, status, title)
             SELECT i, '{home}page/' || i, 1, '2026-01-01T00:00:00.000Z',
                    '2026-01-01T00:00:00.000Z', 200, 'Page ' || i FROM n"
        ),
        format!(
            "INSERT INTO links (source_id, target_url, anchor_text)
             SELECT id, '{gone}', 'A footer link to a page that is no longer there'
             FROM pages WHERE id >= 1000"
        ),
    ];
    change_database(&harness, &statements).await;

    let db = harness.db_path().display().to_string();
    let (held_kib, lines) = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pipecrawl"))
            .args(["query", "--db", &db, "--format", "jsonl", "broken"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run the pipecrawl binary");
        let mut out = BufReader::new(child.stdout.take().expect("its stdout"));
        let mut first = String::new();
        out.read_line(&mut first).expect("the first row");
        // Printing now waits for this reader: what it holds, it holds while printing.
        std::thread::sleep(Duration::from_millis(100));
        let held_kib = peak_heap_kib(child.id());
        let mut rest = String::new();
        out.read_to_string(&mut rest).expect("the other rows");
        assert!(child.wait().expect("the query ends").success());
        (held_kib, 1 + rest.lines().count())
    })
    .await
    .expect("the query ran");
    assert_eq!(lines, 1 + PAGES as usize, "every link to the target");
    assert!(
        held_kib < 32 * 1024,
        "{held_kib} KiB of memory held while printing the links to one target"
    );
}

/// Text that is not UTF-8 (pipecrawl writes none; SQLite stores whatever another program
/// gives it) is printed as `export` writes it: CSV byte for byte, JSON and tables with
/// U+FFFD for the invalid bytes. It used to come out as the hex of its bytes, which reads
/// as a different, valid text (`Café` in Latin-1 as the title `436166e9`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_that_is_not_utf8_is_printed_as_export_writes_it() {
    let site = TestSite::one_host(&[("/", "<title>Home</title>")]).await;
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;
    // Another program's write: SQLite stores whatever bytes it is given as TEXT.
    change_database(
        &harness,
        &["UPDATE pages SET title = CAST(X'436166E92C2078' AS TEXT)".to_owned()],
    )
    .await;

    let json = rows(&harness, &["pages"]).await;
    assert_eq!(text(&json[0], "title"), "Caf\u{fffd}, x");
    let (table, _) = ask(&harness, Format::Table, &["pages"]).await;
    assert!(table.contains("Caf\u{fffd}, x"), "{table}");

    let question = Words::try_parse_from(["query", "pages"])
        .expect("valid question words")
        .question;
    let mut csv = Vec::new();
    query::ask(
        &harness.db_path().display().to_string(),
        &question,
        Format::Csv,
        &mut csv,
    )
    .await
    .expect("the answer as CSV");
    let stored = b"\"Caf\xe9, x\"";
    assert!(
        csv.windows(stored.len()).any(|w| w == stored),
        "the bytes as stored, quoted: {}",
        String::from_utf8_lossy(&csv)
    );
}

/// An export that fails part way (here: `links.csv` on a full disk) leaves the earlier
/// export in the directory whole: before, `pages.csv` had already been replaced, so the
/// directory held this export's pages beside the last one's links, a pair that agree
/// with no database.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_that_fails_part_way_leaves_the_earlier_export_whole() {
    let (out, out_dir, _harness) = export_onto_a_full_disk(".links.csv.part", true).await;
    assert_fails(&out, &[".links.csv.part: No space left on device"]);
    assert_only_the_earlier_export(&out_dir);
}

/// On a disk with too little room for two exports, a nightly export into the same
/// directory failed from its second night: the earlier export stays until this one is
/// complete, and the error said only "No space left on device", with the disk showing
/// room again once the partial files were removed. It says what holds the room, and what
/// to do.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_out_of_room_beside_an_earlier_export_says_both_need_room() {
    let (out, out_dir, _harness) = export_onto_a_full_disk(".links.csv.part", true).await;
    assert_fails(
        &out,
        &[
            "No space left on device (os error 28); the earlier export there \
           (pages.csv, links.csv: 34 bytes) is kept until this one is complete, so the disk \
           needs room for both: remove it first, or give another --out",
        ],
    );
    assert_only_the_earlier_export(&out_dir);
}

/// `--out` naming a file (a slip: `--out pages.csv`) says so, and leaves the file alone:
/// it said "File exists", which reads as a refusal to overwrite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_into_a_file_says_it_is_not_a_directory() {
    let (harness, db) = empty_crawl().await;
    let file = harness.dir.path().join("pages.csv");
    std::fs::write(&file, "kept\n").expect("a file");
    let out = file.display().to_string();
    assert_fails(
        &pipecrawl(args(&["export", "--db", &db, "--out", &out])).await,
        &["pages.csv: it is a file, not a directory"],
    );
    assert_eq!(std::fs::read_to_string(&file).expect("the file"), "kept\n");
}

/// `--out -`, as a user of Unix tools writes for stdout (`| jq`), made a directory named
/// `-` in the current directory and wrote both files there, saying "wrote 0 rows to
/// -/pages.csv": two tables cannot share stdout, and `query sql` puts one there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_to_stdout_is_refused_naming_the_question_that_prints_a_table() {
    let (harness, db) = empty_crawl().await;
    let out = tokio::task::spawn_blocking({
        let dir = harness.dir.path().to_owned();
        move || {
            Command::new(env!("CARGO_BIN_EXE_pipecrawl"))
                .args(["export", "--db", &db, "--format", "jsonl", "--out", "-"])
                .current_dir(dir)
                .output()
                .expect("run the pipecrawl binary")
        }
    })
    .await
    .expect("the binary ran");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("pipecrawl query sql \"SELECT * FROM pages\" --format jsonl"),
        "{stderr}"
    );
    assert!(!harness.dir.path().join("-").exists(), "no directory `-`");
}

/// A database a newer pipecrawl migrated (past the last migration this build knows) is
/// refused by `crawl` saying so, and its words send the user to "crawl or query it with
/// that version". `query` went ahead and, where the newer schema had changed what a
/// question reads, failed with "the SQL failed: no such column: title"; it says what
/// `crawl` says. `export` writes every column, whatever they are, so it goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_from_a_newer_pipecrawl_is_refused_by_query_saying_so() {
    let site = TestSite::one_host(&[("/", "<title>Home</title>")]).await;
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;
    change_database(
        &harness,
        &[
            "INSERT INTO _sqlx_migrations
                 (version, description, installed_on, success, checksum, execution_time)
             VALUES (9999, 'a later version', CURRENT_TIMESTAMP, 1, X'00', 0)"
                .to_owned(),
            "ALTER TABLE pages RENAME COLUMN title TO page_title".to_owned(),
        ],
    )
    .await;
    let db = harness.db_path().display().to_string();

    for question in [&["pages"][..], &["stats"], &["search", "home"]] {
        let words = [&["query", "--db", &db][..], question].concat();
        assert_fails(
            &pipecrawl(args(&words)).await,
            &[&format!(
                "{db} was written by a newer pipecrawl (its SQLite schema is at migration 9999"
            )],
        );
    }
    let dir = assert_exports(&db).await;
    let pages = std::fs::read_to_string(dir.path().join("pages.csv")).expect("pages.csv");
    assert!(pages.contains(",Home,"), "{pages}");
}

/// Runs `pipecrawl export` of `db` into a new directory, which it returns, and asserts
/// that it succeeded.
pub(super) async fn assert_exports(db: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temp dir");
    let out = dir.path().display().to_string();
    let exported = pipecrawl(args(&["export", "--db", db, "--out", &out])).await;
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    dir
}

/// A chain longer than `fetch.max_redirects` fails at the hop whose redirect is refused.
/// That hop's `final_url` named the URL it was refused, which is never fetched: a link
/// into the chain was shown as a clean 301 leading to it, and `broken --unchecked` listed
/// it as both broken and never checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_past_the_redirect_limit_ends_at_the_hop_refused() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(
        &h,
        "/",
        Resource::Html("<a href='/old'>Old page</a>".into()),
    );
    b.add(&h, "/old", Resource::Redirect(301, "/old/1".into()));
    b.add(&h, "/old/1", Resource::Redirect(301, "/old/2".into()));
    b.add(&h, "/old/2", Resource::Redirect(301, "/old/3".into()));
    b.add(
        &h,
        "/old/3",
        Resource::Html("<title>Never reached</title>".into()),
    );
    let site = b.start();
    let harness = Harness::default();
    let home = site.url(0, "/");
    harness
        .crawl(std::slice::from_ref(&home), "[fetch]\nmax_redirects = 2\n")
        .await;
    let (old, refused) = (site.url(0, "/old"), site.url(0, "/old/2"));
    assert_eq!(site.count(&site.url(0, "/old/3")), 0);

    let from_home = rows(&harness, &["links", "--from", &home]).await;
    let shown: Vec<_> = from_home.iter().map(link_end).collect();
    assert_eq!(
        shown,
        [(old.as_str(), (Some(301), "redirect", refused.as_str()))]
    );

    let targets: Vec<(String, String)> = rows(&harness, &["broken", "--unchecked"])
        .await
        .iter()
        .map(|r| (text(r, "kind").to_owned(), text(r, "target_url").to_owned()))
        .collect();
    assert_eq!(targets, [("broken".to_owned(), old)]);
}

/// A one-off crawl keeps no in-link counts while it runs and counts them at its end, so
/// one killed (`kill -9`, the OOM killer, a power cut) left `inlinks` empty: `top` listed
/// nothing, `stats` said 0 links of the hundreds stored and `broken --unchecked` checked
/// no link at all, until a next run counted them. Asked before that run, they count from
/// `links`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_killed_before_its_end_is_counted_from_its_links() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    let html = |s: &str| Resource::Html(s.to_owned());
    b.add(
        &h,
        "/",
        html(
            "<a href='/a'>A</a> <a href='/b'>B</a> <a href='/gone'>Gone</a> \
             <a href='/hang'>Never answers</a> <a href='http://127.0.0.9:9/out'>Out</a>",
        ),
    );
    b.add(
        &h,
        "/a",
        html("<a href='/b'>B</a> <a href='/b'>Bee</a> <a href='/'>Home</a> <a href='/gone'>G</a>"),
    );
    b.add(&h, "/b", html("<a href='/a'>A</a> <a href='/'>Home</a>"));
    b.add(&h, "/gone", Resource::Status(404, "gone".into()));
    b.add(
        &h,
        "/hang",
        Resource::Slow(Duration::from_secs(600), Box::new(html("late"))),
    );
    let site = b.start();
    let harness = Harness::default();
    let config = harness.test_config_text(&[site.url(0, "/")], "[fetch]\ntimeout_ms = 600000\n");
    let mut crawl = Command::new(env!("CARGO_BIN_EXE_pipecrawl"))
        .args(["crawl", "--config"])
        .arg(harness.write_config(&config))
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start pipecrawl");
    // Every page but the one that never answers stored, that one still in flight.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let stored = if harness.db_path().exists() {
            let db = harness.db().await;
            db.try_scalar("SELECT count(*) FROM pages")
                .await
                .unwrap_or(0)
        } else {
            0
        };
        if stored == 4 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{stored} pages stored"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    crawl.kill().expect("kill -9 pipecrawl");
    crawl.wait().expect("reap pipecrawl");

    let links = harness.db().await.links().await;
    assert_eq!(links.len(), 11, "{links:?}");
    let mut by_target: BTreeMap<String, (BTreeSet<String>, i64)> = BTreeMap::new();
    for (source, target, _) in &links {
        let entry = by_target.entry(target.clone()).or_default();
        entry.0.insert(source.clone());
        entry.1 += 1;
    }
    let expected: BTreeMap<String, (i64, i64)> = by_target
        .into_iter()
        .map(|(target, (sources, links))| (target, (sources.len() as i64, links)))
        .collect();
    let top = rows(&harness, &["top", "--limit", "0"]).await;
    let counted: BTreeMap<String, (i64, i64)> = top
        .iter()
        .map(|r| {
            let counts = (
                int(r, "linking_pages").unwrap_or(-1),
                int(r, "links").unwrap_or(-1),
            );
            (text(r, "url").to_owned(), counts)
        })
        .collect();
    assert_eq!(counted, expected);

    let stats = rows(&harness, &["stats"]).await;
    let total = |key: &str| {
        stats
            .iter()
            .find(|r| text(r, "section") == "total" && text(r, "key") == key)
            .and_then(|r| int(r, "value"))
    };
    assert_eq!(
        (total("links"), total("linked URLs")),
        (Some(11), Some(expected.len() as i64))
    );

    let notes = ask(&harness, Format::Csv, &["broken"]).await.1.notes;
    let unchecked_note = "links to URLs out of the crawl's scope";
    assert!(
        notes.iter().any(|n| n.starts_with(unchecked_note)),
        "{notes:?}"
    );
    let unchecked: BTreeSet<String> = rows(&harness, &["broken", "--unchecked"])
        .await
        .iter()
        .filter(|r| text(r, "kind") == "unchecked")
        .map(|r| text(r, "target_url").to_owned())
        .collect();
    assert_eq!(
        unchecked,
        BTreeSet::from([site.url(0, "/hang"), "http://127.0.0.9:9/out".to_owned()])
    );

    // Anchor texts are indexed at the end too: a search says it could not look at them.
    let notes = ask(&harness, Format::Csv, &["search", "Bee"]).await.1.notes;
    let anchors_note = "the anchor texts of links are indexed when the crawl ends";
    assert!(
        notes.iter().any(|n| n.starts_with(anchors_note)),
        "{notes:?}"
    );
}

/// URLs past `traps.max_pages_per_host` are stored as `trap` rows and never requested, as
/// out-of-scope ones are not: `broken` reported every link to them as broken (a crawl of
/// a large site with a budget, a link check of hundreds of fine pages). They are unchecked,
/// and so is a redirect that ends at one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_to_urls_past_the_page_budget_are_unchecked_not_broken() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    let page = |title: &str| Resource::Html(format!("<title>{title}</title>"));
    b.add(
        &h,
        "/",
        Resource::Html(
            "<a href='/0-gone'>Gone</a> <a href='/a'>A</a> <a href='/b'>B</a> \
             <a href='/c'>C</a> <a href='/d'>D</a> <a href='/1-moved'>Moved</a>"
                .to_owned(),
        ),
    );
    b.add(&h, "/0-gone", Resource::Status(404, "gone".into()));
    for path in ["/a", "/b", "/c", "/d"] {
        b.add(&h, path, page(path));
    }
    b.add(&h, "/1-moved", Resource::Redirect(301, "/e".into()));
    b.add(&h, "/e", page("E"));
    let site = b.start();
    let harness = Harness::default();
    harness
        .crawl(&[site.url(0, "/")], "[traps]\nmax_pages_per_host = 3\n")
        .await;
    let db = harness.db().await;
    let trapped = db
        .scalar("SELECT count(*) FROM pages WHERE error_kind = 'trap'")
        .await;
    assert!(trapped >= 3, "{trapped} URLs past the budget");

    let pages = db.pages().await;
    let row_of = |url: &str| pages.iter().find(|p| p.url == url);
    // Where a link target's redirects end, if that was stored.
    let end_of = |url: &str| row_of(row_of(url)?.final_url.as_deref().unwrap_or(url));
    let (mut expected_broken, mut expected_unchecked) = (BTreeSet::new(), BTreeSet::new());
    for (_, target, _) in db.links().await {
        match end_of(&target) {
            None => expected_unchecked.insert(target),
            Some(end) if end.error_kind.as_deref() == Some("trap") => {
                expected_unchecked.insert(target)
            }
            Some(end) if end.status != Some(200) => expected_broken.insert(target),
            Some(_) => false,
        };
    }
    // The budget goes in URL order: to the 404 and the redirect, not to its target.
    assert_eq!(expected_broken, BTreeSet::from([site.url(0, "/0-gone")]));
    assert!(expected_unchecked.contains(&site.url(0, "/1-moved")));
    let (mut unchecked, mut shown_broken) = (BTreeSet::new(), BTreeSet::new());
    for r in &rows(&harness, &["broken", "--unchecked"]).await {
        let target = text(r, "target_url").to_owned();
        // `final_url` names where a redirect ends, as for broken links; none otherwise.
        let redirect = target.ends_with("/1-moved");
        assert_eq!(text(r, "final_url").is_empty(), !redirect, "{r:?}");
        match text(r, "kind") {
            "unchecked" => unchecked.insert(target),
            "broken" => shown_broken.insert(target),
            other => panic!("{other}: {r:?}"),
        };
    }
    assert_eq!(shown_broken, expected_broken);
    assert_eq!(unchecked, expected_unchecked);
}

/// `broken --host` keeps the links on that host's pages; its note that some links were
/// not checked counted every host's, so it was said of a host whose pages link to no
/// such URL, where `--unchecked` then listed none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unchecked_note_of_broken_on_one_host_is_about_that_hosts_links() {
    let mut b = SiteBuilder::bind(2).await;
    let (h0, h1) = (b.authority(0), b.authority(1));
    b.add(
        &h0,
        "/",
        Resource::Html("<a href='http://127.0.0.9:9/out'>Out</a>".to_owned()),
    );
    b.add(
        &h1,
        "/",
        Resource::Html("<a href='/gone'>Gone</a>".to_owned()),
    );
    b.add(&h1, "/gone", Resource::Status(404, "gone".into()));
    let site = b.start();
    let harness = Harness::default();
    harness
        .crawl(&[site.url(0, "/"), site.url(1, "/")], "")
        .await;
    let note = "links to URLs out of the crawl's scope";
    for (host, unchecked) in [(&h0, true), (&h1, false)] {
        let notes = ask(&harness, Format::Csv, &["broken", "--host", host])
            .await
            .1
            .notes;
        assert_eq!(
            notes.iter().any(|n| n.starts_with(note)),
            unchecked,
            "{host}: {notes:?}"
        );
        let listed = rows(&harness, &["broken", "--host", host, "--unchecked"]).await;
        let listed = listed.iter().any(|r| text(r, "kind") == "unchecked");
        assert_eq!(listed, unchecked, "{host}");
    }
}

/// Overwrites the b-tree root page of `table` in the (closed, checkpointed) database at
/// `db`: the file opens, its schema reads, and the first read of that table finds the
/// damage, as a bad block or a copy cut short leaves it.
async fn damage_table(db: &Path, table: &str) {
    use std::io::{Seek, SeekFrom, Write};

    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(db);
    let pool = sqlx::SqlitePool::connect_with(options)
        .await
        .expect("open the crawl database");
    let (root, page_size): (i64, i64) = sqlx::query_as(
        "SELECT rootpage, (SELECT page_size FROM pragma_page_size) FROM sqlite_schema
         WHERE type = 'table' AND name = ?",
    )
    .bind(table)
    .fetch_one(&pool)
    .await
    .expect("the table's root page");
    pool.close().await;
    let page = usize::try_from(page_size).expect("a page size");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(db)
        .expect("open the database file");
    file.seek(SeekFrom::Start(
        u64::try_from((root - 1) * page_size).expect("an offset"),
    ))
    .expect("seek");
    file.write_all(&vec![0xff; page])
        .expect("damage the table's page");
}

/// A database damaged past its schema (a bad block in a table) opens, and the damage
/// shows only when a question reads that table: it said "the SQL failed: database disk
/// image is malformed" (or "database error while reading rows to export: …"), naming no
/// file and reading like a fault of pipecrawl's, where damage found at open names the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_damaged_past_the_schema_is_named_as_damaged_when_read() {
    let (harness, db) = empty_crawl().await;
    damage_table(&harness.db_path(), "pages").await;
    let out_dir = harness.dir.path().join("export").display().to_string();
    said_damaged(
        &db,
        [
            vec!["query", "--db", &db, "pages", "--title", "x"],
            vec!["query", "--db", &db, "sql", "SELECT title FROM pages"],
            vec!["export", "--db", &db, "--out", &out_dir],
        ],
    )
    .await;
}

/// `--title` longer than any stored title (4,096 bytes at most) failed on SQLite past
/// its LIKE pattern limit with "the SQL failed: LIKE or GLOB pattern too complex", where
/// PostgreSQL answered no rows: it is refused on both, before any database is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_title_longer_than_any_stored_title_is_refused_saying_so() {
    let (_harness, db) = empty_crawl().await;
    let longest = "x".repeat(4096);
    let out = pipecrawl(args(&["query", "--db", &db, "pages", "--title", &longest])).await;
    answered(&out, "4096 bytes");
    for length in [4097, 60_000] {
        let title = "x".repeat(length);
        let out = pipecrawl(args(&["query", "--db", &db, "pages", "--title", &title])).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{length}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "--title is {length} bytes long, and no stored title is longer than 4096"
            )),
            "{length}: {stderr}"
        );
    }
}

/// A time before 1970 is read as the instant it names (every page, bar an offset past
/// midnight), as `--since 100years` is every page: it said "`1969-12-31` is
/// neither a time (…) nor a time ago", of a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn since_a_time_before_1970_is_the_instant_it_names() {
    let (harness, db) = empty_crawl().await;
    // A page fetched half an hour after the epoch.
    change_database(
        &harness,
        &[
            "INSERT INTO frontier (id, url, host, depth, priority) VALUES (1, 'http://a/', 'a', 0, 0)",
            "INSERT INTO pages (id, url, depth, fetched_at, changed_at)
             VALUES (1, 'http://a/', 0, '1970-01-01T00:30:00.000Z', '1970-01-01T00:30:00.000Z')",
        ]
        .map(str::to_owned),
    )
    .await;
    // The last is 1970-01-01T01:00:00Z, after the page.
    for (since, pages) in [
        ("1969-12-31", 1),
        ("1900-02-28T12:00:00Z", 1),
        ("1969-12-31T23:00:00-02:00", 0),
    ] {
        let words = [
            "query", "--db", &db, "--format", "csv", "pages", "--since", since,
        ];
        let csv = answered(&pipecrawl(args(&words)).await, since);
        assert_eq!(
            csv.lines().count(),
            1 + pages,
            "{since}: the header and the pages"
        );
    }
    let out = pipecrawl(args(&[
        "query",
        "--db",
        &db,
        "pages",
        "--since",
        "1969-02-30",
    ]))
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("`1969-02-30` is neither a time"),
        "{stderr}"
    );
}

/// `--db sqlite://` (a URL with its path left out, `sqlite://$DB` with the variable
/// unset) said "there is no database at sqlite:// (/current/directory/: …)", as if a
/// file had been looked for there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_url_naming_no_file_says_so() {
    refused_by_query_and_export(
        &["sqlite://", "sqlite:", "sqlite://?mode=ro"],
        |db| format!("`{db}` names no file"),
        "there is no database",
    )
    .await;
}

/// A `sqlite:` URL with a parameter sqlx does not take (`?bogus=1`, a typo of `mode`) is
/// refused as the config's check refuses it in `storage.database`, naming the URL, where
/// it said "database error while reading the SQLite file's name: error with
/// configuration …", naming neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_url_with_a_parameter_sqlx_does_not_take_says_so() {
    refused_by_query_and_export(
        &["sqlite://crawl.db?bogus=1", "sqlite:crawl.db?mode=readonly"],
        |db| format!("`{db}` is not a SQLite URL pipecrawl can read: "),
        "database error",
    )
    .await;
}

/// That `query stats` and `export` of each of `dbs` fail saying what `says` makes of it,
/// and not `not`, writing nothing.
async fn refused_by_query_and_export(dbs: &[&str], says: fn(&str) -> String, not: &str) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let out_dir = dir.path().join("export").display().to_string();
    for &db in dbs {
        for words in [
            vec!["query", "--db", db, "stats"],
            vec!["export", "--db", db, "--out", &out_dir],
        ] {
            let out = pipecrawl(args(&words)).await;
            assert_fails(&out, &[&says(db)]);
            assert!(
                !String::from_utf8_lossy(&out.stderr).contains(not),
                "{words:?}"
            );
        }
    }
    assert!(!dir.path().join("export").exists(), "nothing was written");
}

/// `--db sqlite::memory:` (or `:memory:`) said "there is no database at sqlite::memory:
/// (/current/dir/file:sqlx-in-memory-0 …)", naming sqlx's own name for it: it names a
/// database of its own, empty, which holds no crawl.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_memory_database_is_said_to_hold_no_crawl() {
    refused_by_query_and_export(
        &["sqlite::memory:", ":memory:", "sqlite://:memory:"],
        |db| format!("`{db}` names an in-memory database"),
        "sqlx-in-memory",
    )
    .await;
}

/// A relative path starting `file:` is a file of that name, as for `sqlite3` and the
/// shell: SQLite read it as a URI, so `file:crawl.db` opened `crawl.db`, and
/// `file:crawl.db?vfs=…` handed the user's text to SQLite as its open parameters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relative_path_starting_file_colon_is_that_file_not_a_uri() {
    let (harness, db) = empty_crawl().await;
    let dir = harness.dir.path();
    for name in ["file:crawl.db", "file:crawl.db?vfs=nowhere&mode=rwc"] {
        std::fs::copy(&db, dir.join(name)).expect("copy the database");
    }
    // The plain `crawl.db` holds a URL, the copies none: an answer of 0 is theirs.
    change_database(
        &harness,
        &[
            "INSERT INTO frontier (url, host, depth, priority) VALUES ('http://a/', 'a', 0, 0)"
                .to_owned(),
        ],
    )
    .await;
    for db in [
        "file:crawl.db",
        "file:crawl.db?vfs=nowhere&mode=rwc",
        "sqlite://file:crawl.db",
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_pipecrawl"))
            .args(["query", "--db", db, "--format", "csv"])
            .args(["sql", "SELECT count(*) AS urls FROM frontier"])
            .current_dir(dir)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run the pipecrawl binary");
        assert_eq!(answered(&out, db), "urls\r\n0\r\n", "{db}");
    }
}

/// An export that fails at a table (here: `links` damaged, after `pages` was written;
/// on PostgreSQL, a user who may read `pages` but not `links`) removed its files but left
/// the `--out` directories it had made, empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_that_fails_leaves_no_directory_it_made() {
    let (harness, db) = empty_crawl().await;
    damage_table(&harness.db_path(), "links").await;
    let made = harness.dir.path().join("made");
    let out = made.join("export").display().to_string();
    assert_fails(
        &pipecrawl(args(&["export", "--db", &db, "--out", &out])).await,
        &["database disk image is malformed"],
    );
    assert!(!made.exists(), "left behind: {}", made.display());
}

/// A database last written before `page_changes` (migration 17) answers every question
/// but `changes`, which says how to bring it up to date, and does once a crawl has run on
/// it (with nothing left to crawl).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_of_a_database_from_before_page_changes_say_how_to_update_it() {
    let (_site, model, harness, _) = crawled_graph().await;
    let db = harness.db_path().display().to_string();
    let undo = [
        "DROP TRIGGER page_changes_kept",
        "DROP TABLE page_changes",
        "DELETE FROM _sqlx_migrations WHERE version = 17",
    ];
    change_database(&harness, &undo.map(str::to_owned)).await;
    let changes = || pipecrawl(args(&["query", "--db", &db, "changes"]));
    assert_fails(
        &changes().await,
        &["has no `page_changes` table: run `pipecrawl crawl` with its config once"],
    );
    let pages = pipecrawl(args(&["query", "--db", &db, "pages", "--limit", "1"])).await;
    answered(&pages, "query pages");

    harness.crawl(&model.seeds, "[fetch]\nworkers = 8\n").await;
    let out = changes().await;
    assert_eq!(
        answered(&out, "query changes after a crawl")
            .lines()
            .count(),
        2,
        "the header and its rule alone: no change is known from before the table"
    );
}

/// Two crawls of a site, `between` run on the database after the first: the first
/// fetches `/` and `/a`, the second `/b` alone, the first's pages done.
async fn two_runs(between: &[String]) -> (TestSite, Harness) {
    let site = TestSite::one_host(&[
        ("/", "<title>Home</title><a href='/a'>A</a>"),
        ("/b", "<title>B</title>"),
    ])
    .await;
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;
    change_database(&harness, between).await;
    harness
        .crawl(&[site.url(0, "/"), site.url(0, "/b")], "")
        .await;
    (site, harness)
}

/// `--since last-run` of a database that records no run (its `runs` rows gone, as in a
/// database last written before the table) has no time to begin at: it says so, rather
/// than answer nothing, which reads as "nothing changed". With a run it bounds `pages`
/// by that run's start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn since_last_run_without_a_run_recorded_says_so() {
    let (site, harness) = two_runs(&[]).await;
    let db = harness.db_path().display().to_string();
    let since_last_run = |question: &'static str| {
        pipecrawl(args(&[
            "query", "--db", &db, question, "--since", "last-run",
        ]))
    };
    let out = answered(&since_last_run("pages").await, "pages since the last run");
    let pages: Vec<&str> = out.lines().skip(2).collect();
    assert_eq!(pages.len(), 1, "the header, its rule and /b: {out}");
    assert!(pages[0].starts_with(&site.url(0, "/b")), "{out}");
    change_database(&harness, &["DELETE FROM runs".to_owned()]).await;
    for question in ["pages", "changes"] {
        assert_fails(
            &since_last_run(question).await,
            &["records no run to begin `--since last-run` at"],
        );
    }
}

/// `--since last-run` began at the latest `runs.started_at`, not at the start of the run
/// that started last: after a run on a clock a year ahead (set back by NTP since), the
/// next run's pages were not in its answer, which named the earlier run's alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn since_last_run_begins_at_the_last_run_after_a_clock_that_was_ahead() {
    let a_year_ahead = |table: &str, columns: &[&str]| {
        let set: Vec<String> = columns
            .iter()
            .map(|c| format!("{c} = strftime('%Y-%m-%dT%H:%M:%fZ', {c}, '+1 year')"))
            .collect();
        format!("UPDATE {table} SET {}", set.join(", "))
    };
    let (site, harness) = two_runs(&[
        a_year_ahead("runs", &["started_at", "ended_at"]),
        a_year_ahead("pages", &["fetched_at", "changed_at"]),
    ])
    .await;
    let db = harness.db_path().display().to_string();
    let out = pipecrawl(args(&[
        "query", "--db", &db, "pages", "--since", "last-run",
    ]))
    .await;
    let out = answered(&out, "pages since the last run");
    let b = site.url(0, "/b");
    assert!(
        out.lines().any(|line| line.starts_with(&format!("{b} "))),
        "the last run's page: {out}"
    );
}

/// `changes --url` of a URL the crawl never stored (a typo, `https://` for a site crawled
/// over `http://`) printed an empty table and exited 0: "no change", to a user asking
/// after a page the crawl does not watch at all. It says the page was not crawled, as
/// `links --from` does; a crawled page spelled otherwise (`HTTP://`, its host in capitals)
/// is that page, with no change yet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_of_a_url_not_crawled_say_so() {
    let (site, _harness, db) = crawled_home("<title>Home</title><a href='/a'>A</a>").await;
    let changes = |url: String| pipecrawl(args(&["query", "--db", &db, "changes", "--url", &url]));
    let missing = site.url(0, "/nope");
    assert_fails(
        &changes(missing.clone()).await,
        &[&format!("{missing} was not crawled")],
    );
    let spelled = format!("HTTP://{}/a", site.authorities[0].to_uppercase());
    let out = answered(&changes(spelled).await, "changes of /a");
    assert_eq!(out.lines().count(), 2, "the header and its rule: {out}");
}

/// A site whose `/` serves `html`, crawled; its harness (which holds the database) and
/// the database's path.
async fn crawled_home(html: &str) -> (TestSite, Harness, String) {
    let site = TestSite::one_host(&[("/", html)]).await;
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;
    let db = harness.db_path().display().to_string();
    (site, harness, db)
}

/// A URL not crawled was named in the form it is stored in, `http://xn--bcher-kva.de/`
/// for the `http://bücher.de/` the user typed, which reads as another URL than theirs. It
/// is named as given now, the stored form beside it when that differs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_not_crawled_is_named_as_the_user_wrote_it() {
    let (_site, _harness, db) = crawled_home("<title>Home</title>").await;
    let typed = "http://bücher.example/Caf%C3%A9";
    for question in ["links --from", "changes --url"] {
        let mut words = vec!["query", "--db", &db];
        words.extend(question.split(' '));
        // Pasted with a blank after it, which is no part of the URL.
        let pasted = format!("{typed} ");
        words.push(&pasted);
        assert_fails(
            &pipecrawl(args(&words)).await,
            &[&format!(
                "{typed} was not crawled: no page in the database has that URL \
                 (looked up as http://xn--bcher-kva.example/Caf%C3%A9)"
            )],
        );
    }
}

/// `pages --since` takes `last-run` as `changes --since` does (README, "Query and
/// export"), but its help named only times and times ago, so `query pages --help` hid
/// what a cron job's step after its crawl asks.
#[test]
fn pages_help_names_every_since_it_takes() {
    let out = Command::new(env!("CARGO_BIN_EXE_pipecrawl"))
        .args(["query", "pages", "--help"])
        .output()
        .expect("run the pipecrawl binary");
    let help = answered(&out, "query pages --help");
    let since = help
        .split("--since <SINCE>")
        .nth(1)
        .and_then(|rest| rest.split("\n      --").next())
        .unwrap_or_default();
    assert!(since.contains("`last-run`"), "{since}");
}

/// SQL writes "no limit" as `LIMIT -1`, and so did a newcomer's `--limit -1`: clap
/// answered "unexpected argument '-1' found" (or, as `--limit=-1`, "invalid digit found
/// in string"), saying neither what a limit takes nor that 0 shows all.
#[test]
fn a_limit_that_is_no_count_of_rows_says_that_0_shows_all() {
    for (words, given) in [
        (&["query", "pages", "--limit", "-1"][..], "-1"),
        (&["query", "top", "--limit=-1", "--db=x.db"], "-1"),
        (&["query", "broken", "--limit", "all"], "all"),
        (&["query", "stats", "--hosts", "-5"], "-5"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_pipecrawl"))
            .args(words)
            .output()
            .expect("run the pipecrawl binary");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{words:?}: {stderr}");
        let says = format!("`{given}` is not a number of rows: give a whole number, 0 for all");
        assert!(stderr.contains(&says), "{words:?}: {stderr}");
    }
}

/// A crawl's config given as its database (`--db crawl.toml`, the two files side by side)
/// was "crawl.toml is not a SQLite database (file is not a database)", with no word of
/// `--config`, which reads the database a config names.
#[test]
fn a_config_given_as_the_database_is_said_to_go_with_config() {
    let harness = Harness::default();
    let config = harness.write_config("seeds = []\n");
    let config = config.to_str().unwrap_or_default();
    let out = Command::new(env!("CARGO_BIN_EXE_pipecrawl"))
        .args(["query", "--db", config, "stats"])
        .output()
        .expect("run the pipecrawl binary");
    assert_fails(
        &out,
        &[&format!(
            "is not a SQLite database (file is not a database): a crawl's config goes with \
             --config (`--config {config}`), which reads the database it names"
        )],
    );
}

/// A crawl cut short (a CI job's time limit, a signal, `scope.max_pages`) left URLs
/// queued whose links nobody checked: `broken --fail` passed it saying only that links
/// "not crawled yet" exist, as it says of every crawl with a link out of scope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_says_when_the_crawl_left_urls_not_crawled() {
    let site = TestSite::one_host(&[
        (
            "/",
            "<title>Home</title><a href='/a'>A</a><a href='/b'>B</a>",
        ),
        ("/a", "<title>A</title><a href='/gone'>gone</a>"),
        ("/b", "<title>B</title>"),
    ])
    .await;
    let harness = Harness::default();
    harness
        .crawl(&[site.url(0, "/")], "[scope]\nmax_pages = 1\n")
        .await;
    let (_, answer) = ask(&harness, Format::Csv, &["broken"]).await;
    assert_eq!(answer.broken_links, 0);
    assert!(
        answer.notes.contains(
            &"the crawl is not finished: 2 URLs left to crawl (a run still going, or the last \
              stopped early: scope.max_pages, a signal, a kill), their links not checked: run \
              the crawl again to go on, raising scope.max_pages if it stopped there"
                .to_owned()
        ),
        "{:?}",
        answer.notes
    );

    harness
        .crawl(&[site.url(0, "/")], "[scope]\nmax_pages = 10\n")
        .await;
    let (_, answer) = ask(&harness, Format::Csv, &["broken"]).await;
    assert_eq!(answer.broken_links, 1);
    assert!(
        !answer.notes.iter().any(|n| n.contains("not finished")),
        "{:?}",
        answer.notes
    );
}
