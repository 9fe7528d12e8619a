//! Crawling HTTP/2 servers. Most of the web answers over HTTP/2, where a server ends a
//! connection or turns a request away in ways HTTP/1 has no words for: a GOAWAY after so
//! many requests on a connection (nginx's `keepalive_requests`, 1,000 by default, so any
//! crawl of more pages than that on one host meets it), or a stream refused with
//! REFUSED_STREAM, which RFC 9113 §8.7 says the server did not process. The test server
//! is built on the `h2` crate rather than axum so that it can do both.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use h2::server::SendResponse;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use super::tls::self_signed_config;
use super::Harness;

/// What the server does besides answering.
#[derive(Clone, Copy, Default)]
struct Behaviour {
    /// Close each connection by a graceful GOAWAY once it has carried this many streams.
    streams_per_connection: Option<usize>,
    /// Refuse the first request for each page (robots.txt aside) with REFUSED_STREAM.
    refuse_first: bool,
    /// Drop the whole connection, unanswered and with no GOAWAY, at the first request for
    /// each page (robots.txt aside): a server restarting, or a load balancer cutting it.
    hang_up_first: bool,
    /// Reset the first request for each page (robots.txt aside) with INTERNAL_ERROR.
    reset_first: bool,
}

/// An HTTPS server on 127.0.0.1 that speaks HTTP/2 only (ALPN `h2`, no HTTP/1 to fall
/// back on), with a self-signed certificate.
struct H2Site {
    authority: String,
    state: Arc<State>,
}

struct State {
    pages: Vec<(String, String)>,
    behaviour: Behaviour,
    asked: Mutex<HashSet<String>>,
    requests: AtomicUsize,
    connections: AtomicUsize,
}

impl H2Site {
    async fn serve(pages: Vec<(String, String)>, behaviour: Behaviour) -> Self {
        let mut config = self_signed_config();
        config.alpn_protocols = vec![b"h2".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let tcp = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let authority = tcp.local_addr().expect("its address").to_string();
        let state = Arc::new(State {
            pages,
            behaviour,
            asked: Mutex::default(),
            requests: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
        });
        let serving = Arc::clone(&state);
        tokio::spawn(async move {
            while let Ok((stream, _)) = tcp.accept().await {
                let acceptor = acceptor.clone();
                let state = Arc::clone(&serving);
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(stream).await {
                        state.connections.fetch_add(1, Ordering::SeqCst);
                        serve_connection(tls, state).await;
                    }
                });
            }
        });
        Self { authority, state }
    }

    fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.authority)
    }

    fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }
}

async fn serve_connection(tls: tokio_rustls::server::TlsStream<TcpStream>, state: Arc<State>) {
    let Ok(mut connection) = h2::server::handshake(tls).await else {
        return;
    };
    let mut streams = 0;
    // Accepting drives the connection, so it goes on after a GOAWAY until the client has
    // the answers to the streams the server took and closes it.
    while let Some(Ok((request, respond))) = connection.accept().await {
        let path = request.uri().path();
        if state.behaviour.hang_up_first && path != "/robots.txt" && first_time(path, &state) {
            state.requests.fetch_add(1, Ordering::SeqCst);
            return;
        }
        streams += 1;
        if state.behaviour.streams_per_connection == Some(streams) {
            connection.graceful_shutdown();
        }
        answer(request.uri().path(), respond, &state);
    }
}

/// Whether `path` is asked for the first time.
fn first_time(path: &str, state: &State) -> bool {
    state
        .asked
        .lock()
        .expect("the request log")
        .insert(path.to_owned())
}

fn answer(path: &str, mut respond: SendResponse<Bytes>, state: &State) {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let first = first_time(path, state);
    if state.behaviour.refuse_first && first && path != "/robots.txt" {
        respond.send_reset(h2::Reason::REFUSED_STREAM);
        return;
    }
    if state.behaviour.reset_first && first && path != "/robots.txt" {
        respond.send_reset(h2::Reason::INTERNAL_ERROR);
        return;
    }
    let page = state.pages.iter().find(|(p, _)| p == path);
    let response = http::Response::builder()
        .status(if page.is_some() { 200 } else { 404 })
        .header("content-type", "text/html; charset=utf-8")
        .body(())
        .expect("a response head");
    let body = page.map(|(_, html)| html.clone()).unwrap_or_default();
    if let Ok(mut stream) = respond.send_response(response, false) {
        // The client may have gone; the test looks at what it stored.
        let _ = stream.send_data(Bytes::from(body), true);
    }
}

/// A home page linking to `n` pages, each linking back.
fn hub(n: usize) -> Vec<(String, String)> {
    let links: String = (0..n).map(|i| format!("<a href='/p{i}'>{i}</a>")).collect();
    let mut pages = vec![("/".to_owned(), format!("<title>Home</title>{links}"))];
    pages.extend((0..n).map(|i| {
        (
            format!("/p{i}"),
            format!("<title>Page {i}</title><a href='/'>home</a>"),
        )
    }));
    pages
}

/// Crawls `site` from its home page with `per_host_concurrency` streams at once on its
/// host and no retrying (the harness's default), returning the harness.
async fn crawl(site: &H2Site, per_host_concurrency: u32) -> Harness {
    let harness = Harness::default();
    harness
        .crawl(
            &[site.url("/")],
            &format!(
                "[fetch]\naccept_invalid_certs = true\n\
                 [politeness]\ndelay_ms = 0\nper_host_concurrency = {per_host_concurrency}\n"
            ),
        )
        .await;
    harness
}

/// Every page of `site`'s hub of `n` is stored with its title, none failed.
async fn assert_all_stored(harness: &Harness, site: &H2Site, n: usize) {
    let pages = harness.db().await.pages().await;
    let failed: Vec<_> = pages.iter().filter(|p| p.status != Some(200)).collect();
    assert!(failed.is_empty(), "{failed:#?}");
    assert_eq!(pages.len(), n + 1, "{pages:#?}");
    let page = harness
        .db()
        .await
        .page(&site.url("/p7"))
        .await
        .expect("a row for /p7");
    assert_eq!(page.title.as_deref(), Some("Page 7"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_that_speaks_only_http2_is_crawled() {
    let site = H2Site::serve(hub(40), Behaviour::default()).await;
    let harness = crawl(&site, 8).await;
    assert_all_stored(&harness, &site, 40).await;
    let links = harness.db().await.links().await;
    assert_eq!(links.len(), 80, "{links:?}");
}

/// nginx and most HTTP/2 servers close a connection after so many requests by a GOAWAY
/// that names the last stream they took; the requests sent on it after that were not
/// processed, so they are asked again on a new connection, not failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_closing_connections_by_goaway_loses_no_page() {
    let behaviour = Behaviour {
        streams_per_connection: Some(5),
        ..Behaviour::default()
    };
    let site = H2Site::serve(hub(60), behaviour).await;
    let harness = crawl(&site, 8).await;
    assert_all_stored(&harness, &site, 60).await;
    assert!(
        site.connections() >= 62 / 5,
        "{} connections for {} requests: the server did not close them",
        site.connections(),
        site.requests()
    );
}

/// A stream refused with REFUSED_STREAM was not processed (RFC 9113 §8.7), so it is
/// asked again at once, as a request on a connection that closed before its answer is,
/// and costs no attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_stream_is_asked_again() {
    let behaviour = Behaviour {
        refuse_first: true,
        ..Behaviour::default()
    };
    each_page_asked_twice(behaviour, 20, 8).await;
}

/// Crawls a hub of `n` pages, `per_host_concurrency` at once, from a server that turns
/// each page's first request away as `behaviour` says, and checks that every page is
/// stored, asked twice (robots.txt once).
async fn each_page_asked_twice(behaviour: Behaviour, n: usize, per_host_concurrency: u32) {
    let site = H2Site::serve(hub(n), behaviour).await;
    let harness = crawl(&site, per_host_concurrency).await;
    assert_all_stored(&harness, &site, n).await;
    assert_eq!(site.requests(), 1 + 2 * (n + 1));
}

/// A connection that breaks before its answer, with no GOAWAY to say which streams the
/// server took (a server restarting, a load balancer cutting it), is over HTTP/2 what
/// it is over HTTP/1: the request is asked again at once on a new connection, costing
/// no attempt, not kept as a final `request` error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_before_its_answer_is_asked_again() {
    let behaviour = Behaviour {
        hang_up_first: true,
        ..Behaviour::default()
    };
    // One request at a time: the dropped connection carries no other page's.
    each_page_asked_twice(behaviour, 8, 1).await;
}

/// A stream the server resets before answering (INTERNAL_ERROR: its backend failed, as
/// Envoy and nginx reset it) says nothing final of the page, as a 500 does not: it is
/// retried, not kept at its first attempt as a final `request` error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_reset_before_its_answer_is_retried() {
    let behaviour = Behaviour {
        reset_first: true,
        ..Behaviour::default()
    };
    let site = H2Site::serve(hub(8), behaviour).await;
    let harness = Harness::default();
    harness
        .crawl(
            &[site.url("/")],
            "[fetch]\naccept_invalid_certs = true\n\
             [politeness]\ndelay_ms = 0\nper_host_concurrency = 8\n\
             [retry]\nmax_attempts = 2\nbase_delay_ms = 10\nmax_delay_ms = 10\n",
        )
        .await;
    assert_all_stored(&harness, &site, 8).await;
    assert_eq!(
        site.requests(),
        1 + 2 * 9,
        "robots.txt once, every page twice"
    );
}
