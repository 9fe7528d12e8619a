//! Sites written in other languages than English, queried as their teams would query
//! them: words typed in the case and the form a keyboard gives.

use std::collections::BTreeSet;

use super::query::{rows_on, text};
use super::recrawl::{both_backends, config_on};
use super::site::TestSite;
use super::Harness;

/// `--title` matched ASCII letters only in any case, and text only in the form it was
/// stored: `über` missed "Über uns", `istanbul` "İSTANBUL", `straße` "STRASSE", and
/// "Café" typed (NFC, as keyboards give it) a title stored decomposed (NFD).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_title_is_found_in_any_case_and_either_unicode_form() {
    let home = "<title>Start</title><a href=/de>de</a> <a href=/tr>tr</a> <a href=/ss>ss</a> \
                <a href=/nfd>nfd</a> <a href=/ja>ja</a>";
    let site = TestSite::one_host(&[
        ("/", home),
        ("/de", "<meta charset=utf-8><title>Über uns</title>"),
        ("/tr", "<meta charset=utf-8><title>İSTANBUL Rehberi</title>"),
        ("/ss", "<meta charset=utf-8><title>HAUPTSTRASSE 5</title>"),
        (
            "/nfd",
            "<meta charset=utf-8><title>Cafe\u{301} Mu\u{308}ller</title>",
        ),
        ("/ja", "<meta charset=utf-8><title>ＳＡＬＥ 東京</title>"),
    ])
    .await;
    let harness = Harness::default();
    let test = "a_title_is_found_in_any_case_and_either_unicode_form (PostgreSQL half)";
    let (_server, databases) = both_backends(&harness, test, "titles").await;
    for database in databases {
        let config = config_on(&harness, &database, &site.url(0, "/"), "");
        let crawled = pipecrawl::crawl(config, std::future::pending()).await;
        crawled.expect("the crawl succeeds");
        assert_titles_found(&database, &site).await;
    }
}

/// Each title is found by what a user types for it, in `database`.
async fn assert_titles_found(database: &str, site: &TestSite) {
    for (typed, path) in [
        ("über", "/de"),
        ("ÜBER UNS", "/de"),
        ("istanbul", "/tr"),
        ("İstanbul", "/tr"),
        ("hauptstraße", "/ss"),
        ("Café", "/nfd"),
        ("müller", "/nfd"),
        ("sale 東京", "/ja"),
    ] {
        let found = rows_on(database.trim_matches('"'), &["pages", "--title", typed]).await;
        let urls: BTreeSet<&str> = found.iter().map(|r| text(r, "url")).collect();
        assert_eq!(
            urls,
            BTreeSet::from([site.url(0, path).as_str()]),
            "--title {typed} in {database}"
        );
    }
}
