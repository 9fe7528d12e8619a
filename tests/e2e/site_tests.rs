//! The test site checked on its own, with a plain HTTP client, so a failing crawl test
//! can trust what the site says it served.

use std::io::Read;
use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER};
use reqwest::Client;

use super::{Resource, SiteBuilder};

/// A client that sees bytes as sent: no proxy, no automatic decompression.
fn raw_client() -> Client {
    Client::builder()
        .no_proxy()
        .no_gzip()
        .no_brotli()
        .build()
        .expect("a test HTTP client")
}

async fn get(client: &Client, url: &str) -> reqwest::Response {
    client.get(url).send().await.expect("the test site answers")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequences_headers_and_raw_bytes_are_served_as_given() {
    let mut builder = SiteBuilder::bind(1).await;
    let host = builder.authority(0);
    let throttled = Resource::WithHeaders(
        vec![("Retry-After".into(), "1".into())],
        Box::new(Resource::Status(429, "slow down".into())),
    );
    builder.add(
        &host,
        "/retry?x=1",
        Resource::Sequence(vec![
            throttled,
            Resource::Status(503, "busy".into()),
            Resource::Html("<title>Fine</title>".into()),
        ]),
    );
    builder.add(
        &host,
        "/tagged",
        Resource::WithHeaders(
            vec![
                ("X-Robots-Tag".into(), "nofollow".into()),
                ("Content-Type".into(), "text/plain".into()),
            ],
            Box::new(Resource::Html("plain".into())),
        ),
    );
    // "日本" in Shift_JIS, then bytes that are not UTF-8 at all.
    let sjis = vec![0x93, 0xfa, 0x96, 0x7b, 0xff, 0x80, 0x00];
    builder.add(
        &host,
        "/sjis",
        Resource::Typed("text/html; charset=Shift_JIS", sjis.clone()),
    );
    let site = builder.start();
    let client = raw_client();

    let retry = site.url(0, "/retry?x=1");
    let first = get(&client, &retry).await;
    assert_eq!(first.status(), 429);
    assert_eq!(first.headers()[RETRY_AFTER], "1");
    let mut later = Vec::new();
    for _ in 0..3 {
        later.push(get(&client, &retry).await.status().as_u16());
    }
    assert_eq!(later, [503, 200, 200], "the last step repeats");
    assert_eq!(site.count(&retry), 4);
    assert_eq!(
        site.count(&site.url(0, "/retry")),
        0,
        "the query is part of the URL"
    );

    let tagged = get(&client, &site.url(0, "/tagged")).await;
    assert_eq!(tagged.headers()["x-robots-tag"], "nofollow");
    let types: Vec<_> = tagged.headers().get_all(CONTENT_TYPE).iter().collect();
    assert_eq!(
        types,
        ["text/plain"],
        "the given Content-Type replaces the default"
    );

    let raw = get(&client, &site.url(0, "/sjis")).await;
    assert_eq!(raw.headers()[CONTENT_TYPE], "text/html; charset=Shift_JIS");
    assert_eq!(
        raw.bytes().await.expect("the body").as_ref(),
        sjis.as_slice()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_bodies_are_labelled_and_decode_to_the_page() {
    let page = "<title>Squeezed</title>".repeat(50);
    let mut builder = SiteBuilder::bind(1).await;
    let host = builder.authority(0);
    builder.add(
        &host,
        "/gz",
        Resource::Gzip(Box::new(Resource::Html(page.clone()))),
    );
    builder.add(
        &host,
        "/br",
        Resource::Brotli(Box::new(Resource::Html(page.clone()))),
    );
    let site = builder.start();
    let client = raw_client();

    let gz = get(&client, &site.url(0, "/gz")).await;
    assert_eq!(gz.headers()[CONTENT_ENCODING], "gzip");
    assert_eq!(gz.headers()[CONTENT_TYPE], "text/html; charset=utf-8");
    let bytes = gz.bytes().await.expect("the gzip body");
    assert!(bytes.len() < page.len(), "the body is compressed");
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes.as_ref())
        .read_to_string(&mut text)
        .expect("valid gzip");
    assert_eq!(text, page);

    let br = get(&client, &site.url(0, "/br")).await;
    assert_eq!(br.headers()[CONTENT_ENCODING], "br");
    let bytes = br.bytes().await.expect("the brotli body");
    let mut text = String::new();
    brotli::Decompressor::new(bytes.as_ref(), 4096)
        .read_to_string(&mut text)
        .expect("valid brotli");
    assert_eq!(text, page);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_in_flight_counts_and_gaps_are_measured() {
    let mut builder = SiteBuilder::bind(3).await;
    let (slow_host, calm_host, gone_host) = (
        builder.authority(0),
        builder.authority(1),
        builder.authority(2),
    );
    builder.delay_host(&slow_host, Duration::from_millis(200));
    let page = || Resource::Html("<title>Hi</title>".into());
    builder.add(&slow_host, "/", page());
    builder.add(&calm_host, "/", page());
    builder.add(
        &calm_host,
        "/slow",
        Resource::Slow(Duration::from_millis(100), Box::new(page())),
    );
    let (open, gate) = tokio::sync::watch::channel(false);
    builder.add(&gone_host, "/", Resource::Held(gate, Box::new(page())));
    let site = builder.start();
    let client = raw_client();

    // Three requests at once to the delayed host all overlap.
    let url = site.url(0, "/");
    let (a, b, c) = tokio::join!(get(&client, &url), get(&client, &url), get(&client, &url));
    assert!([a, b, c].iter().all(|r| r.status() == 200));
    assert_eq!(site.max_in_flight(&slow_host), 3);
    let hits = site.hits_for(&slow_host);
    assert_eq!(hits.len(), 3);
    assert!(hits
        .iter()
        .all(|h| h.done - h.at >= Duration::from_millis(200)));
    let gap = site.min_gap(&slow_host).expect("three arrivals");
    assert!(
        gap < Duration::from_millis(200),
        "arrivals came together: {gap:?}"
    );

    // Requests one after another, spaced out, never overlap.
    assert_eq!(site.min_gap(&calm_host), None);
    for path in ["/", "/slow", "/"] {
        get(&client, &site.url(1, path)).await;
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    assert_eq!(site.max_in_flight(&calm_host), 1);
    let gap = site.min_gap(&calm_host).expect("three arrivals");
    assert!(gap >= Duration::from_millis(60), "spaced arrivals: {gap:?}");
    let slow = &site.hits_for(&calm_host)[1];
    assert_eq!(slow.path, "/slow");
    assert!(slow.done - slow.at >= Duration::from_millis(100));

    // A client that gives up no longer counts as in flight once it has gone. Its request
    // is held until the gate opens, so only the hang-up can mark it done: a client timing
    // out by the clock gave up before a loaded machine's server had seen the request.
    let url = site.url(2, "/");
    let asking = tokio::spawn(client.get(&url).send());
    until("the held request arrives", || {
        !site.hits_for(&gone_host).is_empty()
    })
    .await;
    asking.abort();
    until("the dropped request is marked done", || {
        site.hits_for(&gone_host)
            .first()
            .is_some_and(|gone| gone.done > gone.at)
    })
    .await;
    open.send_replace(true);
    get(&client, &url).await;
    assert_eq!(site.max_in_flight(&gone_host), 1);
    assert_eq!(site.count(&url), 2);
    assert_eq!(site.max_in_flight("127.0.0.9:9"), 0);
}

/// Waits (up to 20 s) until `done` holds: for what the site does after the client's
/// part, which a loaded machine delays.
async fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
