//! What an operator tuning a crawl for speed reads: the end summary's stage shares and
//! queue figures must point at the setting that limits the crawl.

use std::time::Duration;

use super::site::{Resource, SiteBuilder};
use super::Harness;

/// A page of about `bytes` bytes of text: slow enough to parse, in a debug build, that
/// the fetchers finish theirs first.
fn heavy_page(i: usize, bytes: usize) -> String {
    let filler = "<p>words to parse and a <b>little</b> markup to tokenize</p>\n";
    let body = filler.repeat(bytes / filler.len());
    format!("<title>Heavy {i}</title><a href='/'>home</a>{body}")
}

/// Pages heavier than the parse queue's half of `channels.max_bytes` go through it one at
/// a time, so the fetchers wait on its bytes with one page in it of its 64 places: the
/// summary said they were blocked on a full queue, and the queue was never full. The
/// operator raised `channels.to_parse`, which changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_full_of_bytes_is_said_to_be_full() {
    const PAGES: usize = 24;
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    let links: String = (0..PAGES)
        .map(|i| format!("<a href='/heavy/{i}'>{i}</a>"))
        .collect();
    b.add(
        &h,
        "/",
        Resource::Html(format!("<title>Home</title>{links}")),
    );
    for i in 0..PAGES {
        b.add(
            &h,
            &format!("/heavy/{i}"),
            Resource::Html(heavy_page(i, 1 << 20)),
        );
    }
    let site = b.start();
    let harness = Harness::default();
    let summary = harness
        .crawl(
            &[site.url(0, "/")],
            "[fetch]\nworkers = 4\n[parse]\nworkers = 1\n\
             [politeness]\nper_host_concurrency = 4\ndelay_ms = 0\n\
             [channels]\nmax_bytes = 262144\n",
        )
        .await;
    assert_eq!(summary.tally.pages, 1 + PAGES as u64, "{summary}");
    let report = &summary.stages;
    let fetch = report
        .stages
        .iter()
        .find(|s| s.stage == "fetch")
        .expect("fetch");
    // What makes the test mean something: the fetchers waited on the queue.
    assert!(fetch.blocked_s > 0.0, "{summary}");
    let to_parse = report
        .queues
        .iter()
        .find(|q| q.queue == "to_parse")
        .expect("to_parse");
    assert!(to_parse.full_pct > 0.0, "{summary}");
    let text = summary.to_string();
    assert!(text.contains("by channels.max_bytes"), "{text}");
}

/// With `frontier.window` below `fetch.workers` the window, refilled a lease at a time,
/// holds the crawl: every fetcher waits for the next URL while the dispatcher waits for
/// the database to lease it. The summary counted that lease as the dispatcher "waiting
/// for input", so every stage looked idle and none looked like the limit; its work is
/// said to be "leasing and ordering".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_too_small_for_the_workers_shows_the_dispatcher_leasing() {
    const PAGES: usize = 300;
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add_home_and_pages(&h, PAGES);
    let site = b.start();
    let harness = Harness::default();
    let summary = harness
        .crawl(
            &[site.url(0, "/")],
            "[fetch]\nworkers = 16\n[frontier]\nwindow = 1\n\
             [politeness]\nper_host_concurrency = 16\ndelay_ms = 0\n",
        )
        .await;
    assert_eq!(summary.tally.pages, 1 + PAGES as u64, "{summary}");
    let dispatch = &summary.stages.stages[0];
    assert_eq!(dispatch.stage, "dispatch");
    let (working, waiting, _) = dispatch.shares();
    assert!(working > waiting, "{summary}");
}

/// A one-off crawl indexes its links at its end, seconds on a big crawl (3.9 of 11.4 on
/// the benchmark's 20,000 pages), in which no page is fetched: the summary's one rate,
/// over all of it, said 1,753 pages/s where the progress lines had said 2,392. It says
/// apart how long the indexing took and the rate of the crawl before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_gives_the_rate_before_the_links_are_indexed() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add_home_and_pages(&h, 50);
    let site = b.start();
    let harness = Harness::default();
    let summary = harness.crawl(&[site.url(0, "/")], "").await;
    let text = summary.to_string();
    let indexed = summary
        .indexing
        .expect("a one-off crawl indexes its links at its end");
    assert!(
        indexed > Duration::ZERO && indexed < summary.elapsed,
        "{indexed:?} of {:?}",
        summary.elapsed
    );
    let crawling = summary.elapsed - indexed;
    let rate = summary.tally.pages as f64 / crawling.as_secs_f64();
    let said = format!(
        "indexing links at the end: {:.1} s; before it, {rate:.1} pages/s",
        indexed.as_secs_f64()
    );
    assert!(text.contains(&said), "{said:?} not in\n{text}");
}
