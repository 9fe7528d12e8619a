//! Taking a site out of a crawl's results as README's "Taking a site out" says: the scope
//! first, then its rows, with the crawl stopped.

use sqlx::Connection;

use super::site::{Resource, SiteBuilder, TestSite};
use super::Harness;

/// A home on host 0 linking to a page there and to host 1's two pages, which link back,
/// and to a page of host 0 that only host 1 links to (its `discovered_from`, a key).
async fn two_sites() -> TestSite {
    let mut b = SiteBuilder::bind(2).await;
    let (kept, gone) = (b.authority(0), b.authority(1));
    let home = format!(
        "<title>Kept</title><a href='/a'>a</a>\
         <a href='http://{gone}/'>gone</a><a href='http://{gone}/b'>gone b</a>"
    );
    b.add(&kept, "/", Resource::Html(home));
    let back = format!("<title>Kept a</title><a href='http://{gone}/b'>gone b</a>");
    b.add(&kept, "/a", Resource::Html(back));
    let gone_home = format!(
        "<title>Gone</title><a href='/b'>b</a>\
         <a href='http://{kept}/a'>a</a><a href='http://{kept}/c'>c</a>"
    );
    b.add(&gone, "/", Resource::Html(gone_home));
    b.add(
        &kept,
        "/c",
        Resource::Html("<title>Kept c</title>".to_owned()),
    );
    let gone_b = format!("<title>Gone b</title><a href='http://{kept}/'>home</a>");
    b.add(&gone, "/b", Resource::Html(gone_b));
    b.start()
}

/// [`two_sites`], crawled from both homes, which are the seeds returned.
async fn two_sites_crawled() -> (TestSite, Harness, [String; 2]) {
    let site = two_sites().await;
    let harness = Harness::default();
    let seeds = [site.url(0, "/"), site.url(1, "/")];
    harness.crawl(&seeds, "").await;
    (site, harness, seeds)
}

/// README's statements from the comment `-- {first}` to the one ending in `last`.
fn readme_statements(first: &str, last: &str) -> &'static str {
    let readme = include_str!("../../README.md");
    let start = readme
        .find(&format!("-- {first}"))
        .unwrap_or_else(|| panic!("README has no statements for \"{first}\""));
    let end = start + readme[start..].find(last).expect("the statements end");
    &readme[start..end + last.len()]
}

/// Runs `sql` on the harness's database, as `sqlite3` would with the crawl stopped.
async fn run(harness: &Harness, sql: &str) {
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(harness.db_path());
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .expect("open the database to write");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .expect("README's statements run");
    conn.close().await.expect("close it");
}

/// Runs README's statements for taking `host` out; returns them.
async fn take_out(harness: &Harness, host: &str) -> String {
    let sql = readme_statements("Taking a site out", "COMMIT;").replace("old.example", host);
    run(harness, &sql).await;
    sql
}

/// A host taken out by README's recipe (an `exclude`, its seed out of the config, its rows
/// deleted with the crawl stopped) leaves no row, is not asked again by the next run
/// though stored links lead to it, and leaves the link counts as `links` has them: the
/// counts of what its pages linked to drop with them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_taken_out_as_readme_says_leaves_no_row_and_counts_that_agree_with_links() {
    let (site, harness, _) = two_sites_crawled().await;
    let gone_host = site.authorities[1].clone();
    let gone = format!("http://{gone_host}");
    let asked = site.hits_for(&gone_host).len();
    assert_eq!(asked, 3, "robots.txt and two pages of the site to take out");

    let sql = take_out(&harness, &gone_host).await;
    // At once, before any run rebuilds the counts: `c` was linked from the site alone.
    let kept_c = site.url(0, "/c");
    let top = super::query::rows(&harness, &["top", "--limit", "0"]).await;
    let linked: Vec<&str> = top
        .iter()
        .map(|row| super::query::text(row, "url"))
        .collect();
    assert!(!linked.contains(&kept_c.as_str()), "{linked:?}");

    // The kept pages revisited, so that their links to the site are met under the
    // `exclude`, its host named in scope as a crawl of both sites names it: the exclude
    // alone keeps it out.
    let names: Vec<String> = [&site.url(0, "/"), &gone]
        .iter()
        .filter_map(|url| url::Url::parse(url).ok()?.host_str().map(str::to_owned))
        .collect();
    let exclude = format!(
        "[scope]\nhosts = {names:?}\nexclude = ['^{}/']\n[recrawl]\ninterval_s = 1\n",
        regex::escape(&gone)
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    harness.crawl(&[site.url(0, "/")], &exclude).await;
    assert_eq!(
        site.count(&site.url(0, "/")),
        2,
        "the kept home was revisited"
    );
    assert_eq!(
        site.hits_for(&gone_host).len(),
        asked,
        "the site was asked again"
    );
    let db = harness.db().await;
    let like = format!("'{gone}/%'");
    for (table, column) in [
        ("pages", "url"),
        ("frontier", "url"),
        ("page_changes", "url"),
    ] {
        let sql = format!("SELECT count(*) FROM {table} WHERE {column} LIKE {like}");
        assert_eq!(
            db.scalar(&sql).await,
            0,
            "{table} keeps rows of the site: {sql}"
        );
    }
    assert_eq!(
        db.wrong_link_counts().await,
        0,
        "counts disagree with links after {sql}"
    );
}

/// What a site taken out said in its links is not found by `query search` before the next
/// run counts anchors afresh: the kept home is linked as "home" from the gone site's page
/// alone. A right to be forgotten asks that its words be findable nowhere once its rows
/// are deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_anchor_texts_of_a_site_taken_out_are_not_found_by_search() {
    let (site, harness, _) = two_sites_crawled().await;
    let gone_host = site.authorities[1].clone();
    let found = super::query::rows(&harness, &["search", "home"]).await;
    assert_eq!(
        found.len(),
        1,
        "the gone site's link is searched: {found:?}"
    );

    take_out(&harness, &gone_host).await;
    let found = super::query::rows(&harness, &["search", "home"]).await;
    assert!(
        found.is_empty(),
        "a deleted link's text is found: {found:?}"
    );
}

/// Whether the database's files (its WAL too, if any) hold `word`, in any case: the bytes
/// of a row, deleted or not, or a full-text index's token.
fn files_hold(harness: &Harness, word: &str) -> bool {
    let word = word.to_ascii_lowercase();
    let mut wal = harness.db_path().into_os_string();
    wal.push("-wal");
    [harness.db_path(), wal.into()].iter().any(|path| {
        std::fs::read(path).is_ok_and(|bytes| {
            bytes
                .to_ascii_lowercase()
                .windows(word.len())
                .any(|w| w == word.as_bytes())
        })
    })
}

/// A site taken out, then README's statements for leaving nothing deleted in the file run,
/// leave none of its words in the database's bytes: not its title's, which `pages_fts`
/// kept in its segments after the row went, nor its link's anchor text, which `anchors`
/// and `anchors_fts` kept until the next run, nor the URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_taken_out_and_purged_as_readme_says_leaves_none_of_its_words_in_the_file() {
    let mut b = SiteBuilder::bind(2).await;
    let (kept, gone) = (b.authority(0), b.authority(1));
    let pages = [
        (
            &kept,
            "/",
            format!("<a href='http://{gone}/quokka'>elsewhere</a>"),
        ),
        (&kept, "/c", "<title>Kept c</title>".to_owned()),
        (
            &gone,
            "/quokka",
            format!("<title>Zanzibarian</title><a href='http://{kept}/c'>Xylophonist</a>"),
        ),
    ];
    for (host, path, html) in pages {
        b.add(host, path, Resource::Html(html));
    }
    let site = b.start();
    let harness = Harness::default();
    harness
        .crawl(&[site.url(0, "/"), site.url(1, "/quokka")], "")
        .await;
    let words = ["Zanzibarian", "Xylophonist", "quokka"];
    for word in words {
        assert!(files_hold(&harness, word), "the crawl stored no {word}");
    }

    take_out(&harness, &gone).await;
    let kept_links = format!("DELETE FROM links WHERE target_url LIKE 'http://{gone}/%';");
    run(&harness, &kept_links).await;
    run(
        &harness,
        readme_statements("Leaving nothing deleted", "VACUUM;"),
    )
    .await;
    for word in words {
        assert!(!files_hold(&harness, word), "the file still holds {word}");
    }
}

/// The next run after a site is taken out counts in-links and anchors afresh, and says why
/// as it was: rows deleted, the counts marked not kept. It said that the last run had
/// stopped abruptly, which sent an operator looking for a crash that never was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_after_a_site_is_taken_out_does_not_say_the_last_one_stopped_abruptly() {
    let (site, harness, seeds) = two_sites_crawled().await;
    take_out(&harness, &site.authorities[1]).await;

    let config = harness.write_config(&harness.test_config_text(&seeds[..1], ""));
    let stderr = super::cli::crawl_logging("info", &config).await;
    assert!(stderr.contains("counts rebuilt"), "{stderr}");
    assert!(!stderr.contains("stopped abruptly"), "{stderr}");
}

/// A page not fetched since README's date goes by its statements for keeping pages only
/// so long, with its links and no key left dangling; the next run counts the links as
/// `links` has them and does not ask for the page again, whose URL it still knows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_past_its_retention_goes_as_readme_says_and_is_not_asked_again() {
    let (site, harness, seeds) = two_sites_crawled().await;
    let old = site.url(1, "/b");
    let aged =
        format!("UPDATE pages SET fetched_at = '2025-06-01T00:00:00.000Z' WHERE url = '{old}'");
    run(&harness, &aged).await;
    run(
        &harness,
        readme_statements("Pages not fetched since", "COMMIT;"),
    )
    .await;

    let db = harness.db().await;
    assert!(db.page(&old).await.is_none(), "{old} is still stored");
    assert_eq!(harness.page_count().await, 4, "other pages went");
    let dangling = "SELECT count(*) FROM links WHERE source_id NOT IN (SELECT id FROM pages)";
    assert_eq!(db.scalar(dangling).await, 0, "links of no page");
    harness.crawl(&seeds, "").await;
    assert_eq!(site.count(&old), 1, "the expired page was asked again");
    assert_eq!(
        db.wrong_link_counts().await,
        0,
        "counts disagree with links"
    );
}
