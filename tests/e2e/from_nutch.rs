//! A Nutch, Heritrix or wget crawl's settings as README's "Coming from Nutch, Heritrix or
//! wget" maps them: where the mapping says how pipecrawl counts or reads one, a crawl
//! shows it does.

use std::collections::BTreeSet;

use super::from_scrapy::readme_maps;
use super::site::TestSite;
use super::Harness;

/// A site whose home links a chain three levels deep, a GIF, a query, a `mailto:` and a
/// page under `/docs/`, and embeds an image.
async fn site() -> TestSite {
    TestSite::one_host(&[
        (
            "/",
            "<a href='/a'>A</a><a href='/x.gif'>GIF</a><a href='/q?x=1'>Q</a>\
             <a href='mailto:me@example.com'>Mail</a><a href='/docs/'>Docs</a>\
             <img src='/y.png'>",
        ),
        ("/a", "<a href='/a/b'>B</a>"),
        ("/a/b", "<a href='/a/b/c'>C</a>"),
        ("/a/b/c", "<title>C</title>"),
        ("/x.gif", "GIF89a"),
        ("/q?x=1", "<title>Q</title>"),
        ("/docs/", "<a href='/docs/d'>D</a><a href='/'>Up</a>"),
        ("/docs/d", "<title>D</title>"),
        ("/y.png", "PNG"),
    ])
    .await
}

/// The paths of the pages requested, robots.txt left out.
pub(super) fn requested(site: &TestSite) -> BTreeSet<String> {
    site.hits()
        .into_iter()
        .map(|hit| hit.path)
        .filter(|path| path != "/robots.txt")
        .collect()
}

/// Nutch's `bin/crawl … 3` runs three rounds, the first fetching the seeds, so it
/// reaches two links from them: `max_depth = 2`. wget's `--level` counts as `max_depth`
/// does. An `<img>` (Heritrix's embeds) is neither requested nor a link row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nutch_rounds_are_max_depth_two_and_embeds_are_not_fetched() {
    let site = site().await;
    let harness = Harness::default();
    harness
        .crawl(&[site.url(0, "/")], "[scope]\nmax_depth = 2\n")
        .await;
    let got = requested(&site);
    assert!(got.contains("/a/b") && !got.contains("/a/b/c"), "{got:?}");
    assert!(!got.contains("/y.png"), "{got:?}");
    let db = harness.db().await;
    assert_eq!(
        db.scalar("SELECT count(*) FROM links WHERE target_url LIKE '%/y.png'")
            .await,
        0
    );
    assert!(readme_maps(
        "`bin/crawl … 3` (`-depth 3`: three rounds) | `scope.max_depth = 2`"
    ));
    assert!(readme_maps(
        "`TransclusionDecideRule` (embeds) | none: `<img>`, scripts and stylesheets are \
         not fetched and are no link rows"
    ));
}

/// The stock `regex-urlfilter.txt`'s lines, its loop line left out, keep out what Nutch
/// keeps out (a `mailto:`, a GIF, a query) and crawl the rest; wget's `--no-parent` from
/// `/docs/` is an `include` of it, which the seed's link up to `/` stays out of.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nutchs_stock_url_filter_and_wgets_no_parent_crawl_what_they_do_there() {
    let site = site().await;
    let harness = Harness::default();
    let stock = "[scope]\nurl_filter = [\n'-^(?:file|ftp|mailto):',\n'-.{2049,}',\n\
        '-(?i)\\.(?:gif|jpg|png|ico|css|sit|eps|wmf|zip|ppt|mpg|xls|gz|rpm|tgz|mov|exe|\
        jpeg|bmp|js)$',\n'-[?*!@=]',\n'+.',\n]\n";
    harness.crawl(&[site.url(0, "/")], stock).await;
    let all = ["/", "/a", "/a/b", "/a/b/c", "/docs/", "/docs/d"];
    assert_eq!(requested(&site), all.map(str::to_owned).into());
    assert!(readme_maps("`regex-urlfilter.txt` | `scope.url_filter`"));

    let site = self::site().await;
    let harness = Harness::default();
    let docs = site.url(0, "/docs/").replace('.', "\\.");
    let no_parent = format!("[scope]\ninclude = ['^{docs}']\n");
    harness.crawl(&[site.url(0, "/docs/")], &no_parent).await;
    let docs_only = ["/docs/", "/docs/d"];
    assert_eq!(requested(&site), docs_only.map(str::to_owned).into());
    assert!(readme_maps(
        "wget `--no-parent` from `/docs/` | `scope.include = ['^https://example\\.com/docs/']`"
    ));
}

/// A Heritrix job's trap rules, as README's rows map them: `TooManyPathSegmentsDecideRule`
/// is `traps.max_path_depth`, `PathologicalPathDecideRule` `traps.max_repeated_segment`
/// (a segment counted in a row or not), and an `<iframe>` (transcluded there) is a link
/// one level deeper, held to `max_depth`. README's table named none of the trap rules, nor
/// `queueTotalBudget`, `retryDelaySeconds`, checkpoints or Heritrix's reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heritrix_jobs_trap_rules_hold_as_readme_maps_them() {
    let site = TestSite::one_host(&[
        (
            "/",
            "<a href='/ok/a/b'>OK</a><a href='/r/x/r/r'>Loop</a>\
             <a href='/d1/d2/d3/d4/d5'>Deep</a><iframe src='/f'></iframe>",
        ),
        ("/ok/a/b", "<title>OK</title>"),
        ("/f", "<a href='/g'>G</a>"),
        ("/g", "<title>G</title>"),
    ])
    .await;
    let harness = Harness::default();
    harness
        .crawl(
            &[site.url(0, "/")],
            "[scope]\nmax_depth = 1\n[traps]\nmax_path_depth = 4\nmax_repeated_segment = 2\n",
        )
        .await;
    let got = requested(&site);
    let want: BTreeSet<String> = ["/", "/ok/a/b", "/f"].map(String::from).into();
    assert_eq!(got, want);
    let db = harness.db().await;
    for (path, key) in [
        ("/r/x/r/r", "traps.max_repeated_segment = 2"),
        ("/d1/d2/d3/d4/d5", "traps.max_path_depth = 4"),
    ] {
        let sql = format!(
            "SELECT count(*) FROM pages WHERE url LIKE '%{path}' AND error_kind = 'trap' \
             AND error LIKE '%{key}%'"
        );
        assert_eq!(db.scalar(&sql).await, 1, "{path}");
    }
    for row in [
        "`TooManyPathSegmentsDecideRule` (`maxPathDepth = 20`) | `traps.max_path_depth = 20`",
        "`PathologicalPathDecideRule` (`maxRepetitions = 2`) | `traps.max_repeated_segment = 2`",
        "`queueTotalBudget` | `traps.max_pages_per_host`",
        "`retryDelaySeconds = 900` | `retry.base_delay_ms = 900000`",
        "checkpoints, pause and resume | none needed",
        "`crawl-report.txt`, `hosts-report.txt`",
    ] {
        assert!(readme_maps(row), "{row}");
    }
}

/// wget's `--accept html,htm` skips a link by its suffix, which an `exclude` of the
/// suffixes wget would skip does here: the GIF is not requested, its link still a row.
/// README's table named neither it nor wget's `--reject-regex`, `--header`,
/// `--load-cookies`, `--timeout`, `--max-redirect` or `--quota`, nor HTTrack's filters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wgets_accept_list_is_an_exclude_of_what_it_skips_and_readme_maps_wgets_flags() {
    let site = site().await;
    let harness = Harness::default();
    // README's rule, its `\|` (a `|` in a table's cell) read as `|`.
    let readme = include_str!("../../README.md");
    let rule = readme
        .lines()
        .find(|line| line.starts_with("| wget `--accept html,htm`"))
        .and_then(|row| row.split("`scope.exclude = ['").nth(1))
        .and_then(|rest| rest.split("']`").next())
        .expect("README's row for wget's --accept gives an exclude")
        .replace("\\|", "|");
    let accept = format!("[scope]\nexclude = ['{rule}']\n");
    harness.crawl(&[site.url(0, "/")], &accept).await;
    let got = requested(&site);
    assert!(got.contains("/a/b/c") && !got.contains("/x.gif"), "{got:?}");
    let db = harness.db().await;
    assert_eq!(
        db.scalar("SELECT count(*) FROM links WHERE target_url LIKE '%/x.gif'")
            .await,
        1
    );
    for row in [
        "wget `--accept html,htm` | none by suffix",
        "wget `--reject-regex`, `--accept-regex` | `scope.exclude`, `scope.include`",
        "wget `--user-agent=…`, `--header 'X-A: b'` | `fetch.user_agent`",
        "wget `--load-cookies cookies.txt` | none: a session goes in a `[[fetch.host]]` rule",
        "wget `--timeout=10` | `fetch.timeout_ms = 10000`",
        "wget `--max-redirect=20` | `fetch.max_redirects = 20`",
        "wget `--quota=100m` | none in bytes: `scope.max_pages`",
        "HTTrack `+*.example.com/*`, `-*/private/*` | `scope.include = ['\\.example\\.com/']`",
    ] {
        assert!(readme_maps(row), "{row}");
    }
}
