//! `seeds_file`: seeds one per line in a text file, as Nutch's, Heritrix's and
//! StormCrawler's seed lists are, beside or instead of the config's `seeds`.

use std::path::Path;
use std::process::{Command, Output};

use super::site::{Resource, SiteBuilder, TestSite};
use super::Harness;

/// Two hosts, each a home page linking to `/a`.
async fn two_homes() -> TestSite {
    let mut builder = SiteBuilder::bind(2).await;
    for i in 0..2 {
        let host = builder.authority(i);
        builder.add(&host, "/", Resource::Html("<a href='/a'>a</a>".into()));
        builder.add(&host, "/a", Resource::Html("<title>A</title>".into()));
    }
    builder.start()
}

/// Crawls from the seeds file `seeds` in the harness's directory, `config_with` no more,
/// and checks that the database holds the two homes of `site` and their `/a` pages, no
/// other.
async fn crawl_stores_both_homes(site: &TestSite, harness: &Harness, seeds: impl AsRef<[u8]>) {
    let dir = harness.dir.path();
    std::fs::write(dir.join("seeds.txt"), seeds).expect("write the seeds file");
    std::fs::write(dir.join("crawl.toml"), config_with(harness, "")).expect("write the config");
    let out = pipecrawl_in(dir, &["crawl", "--config", "crawl.toml"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let db = harness.db().await;
    let mut stored: Vec<String> = db.pages().await.into_iter().map(|p| p.url).collect();
    stored.sort();
    let mut expected = vec![
        site.url(0, "/"),
        site.url(0, "/a"),
        site.url(1, "/"),
        site.url(1, "/a"),
    ];
    expected.sort();
    assert_eq!(stored, expected, "{}", text(&out.stderr));
}

/// The config `crawl.toml` in the harness's directory: `seeds_file` and `extra`, the
/// test defaults (no delay, no retries), and the harness's database.
fn config_with(harness: &Harness, extra: &str) -> String {
    format!(
        "seeds_file = \"seeds.txt\"\n{extra}\n[politeness]\ndelay_ms = 0\n[retry]\n\
         max_attempts = 1\n[storage]\ndatabase = {:?}\n",
        harness.db_path().display().to_string()
    )
}

/// `pipecrawl ARGS` run in `dir`, where a relative `seeds_file` is read from.
fn pipecrawl_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pipecrawl"))
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run the pipecrawl binary")
}

/// The stderr of `pipecrawl crawl --config crawl.toml` run in `dir`, which must have
/// been refused (exit 78: its config).
fn refused_crawl(dir: &Path) -> String {
    let out = pipecrawl_in(dir, &["crawl", "--config", "crawl.toml"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    stderr
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A crawl seeded from a file alone (no `seeds` key): its seeds are fetched on their
/// loopback hosts (trusted, as config seeds are), their hosts are in scope, and the
/// database keeps them as seeds, which `query` reads. The file's byte order mark,
/// comments, blank lines, the spaces around a URL and Nutch's tab-separated metadata
/// after it are no part of any seed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_seeded_from_a_file_crawls_and_keeps_its_seeds() {
    let site = two_homes().await;
    let harness = Harness::default();
    let dir = harness.dir.path();
    let seeds = format!(
        "\u{feff}# seeds for the test site\n\n  {}  \r\n{}\tnutch.score=10\n",
        site.url(0, "/"),
        site.url(1, "/")
    );
    crawl_stores_both_homes(&site, &harness, &seeds).await;
    let db = harness.db().await;
    let seeds = db
        .scalar(
            "SELECT count(*) FROM frontier WHERE discovered_from IS NULL AND depth = 0 \
             AND kind = 'page'",
        )
        .await;
    assert_eq!(seeds, 2, "both stored as seeds");

    let query = pipecrawl_in(dir, &["query", "--config", "crawl.toml", "pages"]);
    let listed = text(&query.stdout);
    assert!(query.status.success(), "{}", text(&query.stderr));
    assert!(
        listed.contains(&site.url(1, "/a")),
        "query reads the database the config names: {listed}"
    );
}

/// Each line that is no seed is named by the file and its line number, with what a
/// `seeds` entry would be told, among the config's other problems, all at once; a file
/// that is not there is named by its path. Nothing is crawled or created.
#[test]
fn a_bad_line_of_the_seeds_file_is_named_by_its_line() {
    let harness = Harness::default();
    let dir = harness.dir.path();
    std::fs::write(
        dir.join("seeds.txt"),
        "# seeds\nhttp://127.0.0.1:9/\nexample.com\n\nftp://files.example/\n",
    )
    .expect("write the seeds file");
    std::fs::write(
        dir.join("crawl.toml"),
        config_with(&harness, "[fetch]\nworkers = 0\n"),
    )
    .expect("write the config");
    let stderr = refused_crawl(dir);
    for says in [
        "seeds.txt:3: \"example.com\" has no scheme: write `https://example.com/`",
        "seeds.txt:5: \"ftp://files.example/\" has scheme \"ftp\"; only http and https",
        "`fetch.workers` must be at least 1",
    ] {
        assert!(stderr.contains(says), "{says:?} not in {stderr}");
    }
    assert!(!stderr.contains("seeds.txt:2"), "{stderr}");

    std::fs::remove_file(dir.join("seeds.txt")).expect("remove the seeds file");
    let stderr = refused_crawl(dir);
    assert!(
        stderr.contains("`seeds_file` \"seeds.txt\" cannot be read"),
        "{stderr}"
    );
    assert!(!harness.db_path().exists(), "nothing was started");
}

/// `query --config` and `export --config` take the database from the config, not the
/// seeds: a seeds file gone since the crawl (a list in /tmp, a file of the last
/// campaign's) stopped them with "`seeds_file` … cannot be read", and a file of a
/// million lines was read through before each query.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_reads_a_database_whose_config_names_a_seeds_file_that_is_gone() {
    let site = TestSite::one_host(&[("/", "<title>Home</title>")]).await;
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;
    let dir = harness.dir.path();
    std::fs::write(dir.join("crawl.toml"), config_with(&harness, "")).expect("write the config");
    let out = pipecrawl_in(dir, &["query", "--config", "crawl.toml", "pages"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&site.url(0, "/")));
    let export = dir.join("out");
    let out = pipecrawl_in(
        dir,
        &[
            "export",
            "--config",
            "crawl.toml",
            "--out",
            export.to_str().unwrap_or_default(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// A seeds file of comments alone (a list not filled in yet), with no `seeds`: the crawl
/// has nowhere to start, and says where it looked. It said "`seeds` names no URL", of a
/// key the config does not have, leaving out the file it was given.
#[test]
fn a_seeds_file_with_no_url_is_named_when_the_crawl_has_none() {
    let harness = Harness::default();
    let dir = harness.dir.path();
    std::fs::write(dir.join("seeds.txt"), "# one URL a line\n\n").expect("write the seeds file");
    std::fs::write(dir.join("crawl.toml"), config_with(&harness, "")).expect("write the config");
    let stderr = refused_crawl(dir);
    assert!(
        stderr.contains("neither `seeds` nor `seeds_file` (\"seeds.txt\") names a URL, and "),
        "{stderr}"
    );
}

/// A comment after a URL on its line, as lists are annotated (`https://a.example/  #
/// the home page`), is no part of the URL: the URL parser took the spaces into the path
/// and the comment as a fragment, and the crawl fetched `/%20%20`, a page not asked for,
/// unsaid. Text after a space that is no comment (a URL with a space in it, a file with
/// old Mac line ends) is refused, naming the line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_comment_after_a_url_is_no_part_of_it() {
    let site = two_homes().await;
    let harness = Harness::default();
    let dir = harness.dir.path();
    let seeds = format!(
        "{}  # the first home\n{} #\n",
        site.url(0, "/"),
        site.url(1, "/")
    );
    crawl_stores_both_homes(&site, &harness, &seeds).await;

    std::fs::write(
        dir.join("seeds.txt"),
        "https://a.example/my page\nhttps://a.example/1\rhttps://a.example/2\r\n",
    )
    .expect("write the seeds file");
    let stderr = refused_crawl(dir);
    for says in [
        "seeds.txt:1: \"https://a.example/my\" is followed by \" page\"",
        "seeds.txt:2: \"https://a.example/1\" is followed by \"\\rhttps://a.example/2\"",
    ] {
        assert!(stderr.contains(says), "{says:?} not in {stderr}");
    }
}

/// A gzipped seed list (`seeds.txt.gz`, as Nutch and Heritrix users keep theirs) is
/// read as the list it holds, known by its content whatever its name: it was refused as
/// "not UTF-8" line by line, 20 lines of it named and the rest counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gzipped_seeds_file_is_read_as_the_list_it_holds() {
    use std::io::Write;
    let site = two_homes().await;
    let harness = Harness::default();
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    write!(
        gzip,
        "# gzipped\n{}\n{}\n",
        site.url(0, "/"),
        site.url(1, "/")
    )
    .expect("compress the seeds");
    let seeds = gzip.finish().expect("compress the seeds");
    crawl_stores_both_homes(&site, &harness, seeds).await;
}

/// A list saved as UTF-16 (Windows Notepad's "Unicode", before Windows 10's UTF-8
/// default) is refused once, saying so and how to save it: each line was refused as
/// "not UTF-8" or as a URL of NULs (`"\0h\0t\0t\0p…"`), 20 of them named.
#[test]
fn a_utf16_seeds_file_is_refused_once_saying_so() {
    let harness = Harness::default();
    let dir = harness.dir.path();
    let mut bytes = vec![0xff, 0xfe];
    for unit in "https://a.example/\r\nhttps://b.example/\r\n".encode_utf16() {
        bytes.extend_from_slice(&unit.to_le_bytes());
    }
    std::fs::write(dir.join("seeds.txt"), bytes).expect("write the seeds file");
    std::fs::write(dir.join("crawl.toml"), config_with(&harness, "")).expect("write the config");
    let stderr = refused_crawl(dir);
    assert!(
        stderr.contains("`seeds_file` \"seeds.txt\" is UTF-16"),
        "{stderr}"
    );
    assert!(!stderr.contains("seeds.txt:"), "no line named: {stderr}");
    assert!(
        !stderr.contains("current directory"),
        "it was found: {stderr}"
    );
}

/// A list pasted from Excel and saved by Notepad: CRLF line ends, blank and `#` lines,
/// no last line end, a cell's text after a tab, and cells in double quotes, as Excel
/// copies a cell holding a quote, a tab or a line break (and some exports quote each).
/// A quoted URL was refused as "relative URL without a base", its quotes shown escaped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_list_pasted_from_excel_is_read_quotes_and_all() {
    let site = two_homes().await;
    let harness = Harness::default();
    let seeds = format!(
        "\"{}\"\t\"Home, first\"\r\n\r\n# from the sheet\r\n\"{}\"",
        site.url(0, "/"),
        site.url(1, "/")
    );
    crawl_stores_both_homes(&site, &harness, &seeds).await;
}
