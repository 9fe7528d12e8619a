//! An HTTPS test server on loopback with a self-signed certificate: what the crawler does
//! with a certificate that does not verify.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::Html;
use axum::Router;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::crypto::aws_lc_rs;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use super::Harness;

pub struct TlsSite {
    authority: String,
    handshakes: Arc<AtomicUsize>,
}

impl TlsSite {
    /// Serves each path's HTML over HTTPS on 127.0.0.1, with a certificate issued to
    /// 127.0.0.1 by itself: every check but the issuer's passes.
    pub async fn self_signed(pages: &[(&str, &str)]) -> Self {
        let pages: Arc<Vec<(String, String)>> = Arc::new(
            pages
                .iter()
                .map(|(path, html)| ((*path).to_owned(), (*html).to_owned()))
                .collect(),
        );
        Self::serving(Router::new().fallback(serve).with_state(pages)).await
    }

    /// Serves `app` over HTTPS on 127.0.0.1, with the certificate `self_signed` has.
    pub async fn serving(app: Router) -> Self {
        let tcp = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let authority = tcp.local_addr().expect("its address").to_string();
        let handshakes = Arc::new(AtomicUsize::new(0));
        let listener = TlsListener {
            tcp,
            acceptor: TlsAcceptor::from(Arc::new(self_signed_config())),
            handshakes: Arc::clone(&handshakes),
        };
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            authority,
            handshakes,
        }
    }

    pub fn authority(&self) -> &str {
        &self.authority
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.authority)
    }

    /// TLS handshakes begun: one for each time the crawler tried to connect.
    pub fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }
}

/// A TLS server's config with a certificate issued to 127.0.0.1 by itself.
pub fn self_signed_config() -> ServerConfig {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])
        .expect("a self-signed certificate");
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let chain: Vec<CertificateDer<'static>> = vec![certified.cert.der().clone()];
    ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("the certificate and its key")
}

async fn serve(
    State(pages): State<Arc<Vec<(String, String)>>>,
    request: Request,
) -> Result<Html<String>, axum::http::StatusCode> {
    pages
        .iter()
        .find(|(path, _)| path == request.uri().path())
        .map(|(_, html)| Html(html.clone()))
        .ok_or(axum::http::StatusCode::NOT_FOUND)
}

struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    handshakes: Arc<AtomicUsize>,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    /// A client that refuses the certificate ends its handshake; the next is waited for.
    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            self.handshakes.fetch_add(1, Ordering::SeqCst);
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// Runs `pipecrawl crawl` of `seed` with the test defaults and `env` added to its
/// environment (`RUST_LOG` unset: the level a user's run has), and returns its output.
async fn crawl_by_binary(
    harness: &Harness,
    seed: &str,
    env: Vec<(&'static str, std::path::PathBuf)>,
) -> std::process::Output {
    let config = harness.write_config(&harness.test_config_text(&[seed.to_owned()], ""));
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_pipecrawl"))
            .args(["crawl", "--config", config.to_str().unwrap_or_default()])
            .env_remove("RUST_LOG")
            .envs(env)
            .output()
            .expect("run the pipecrawl binary")
    })
    .await
    .expect("the binary ran")
}

/// A machine with no CA certificates (a slim container image without `ca-certificates`,
/// or `SSL_CERT_FILE` pointing at a file that is not there) cannot verify any HTTPS
/// server. The crawl says so, and what to do, before it opens the database or starts a
/// stage: not after queueing the seeds, with a runtime's panic on stderr.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_machine_without_ca_certificates_is_told_so_before_the_crawl_starts() {
    let harness = Harness::default();
    let nowhere = harness.dir.path().join("no-such-ca");
    let env = vec![
        ("SSL_CERT_FILE", nowhere.clone()),
        ("SSL_CERT_DIR", nowhere),
    ];
    let out = crawl_by_binary(&harness, "https://127.0.0.1:9/", env).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("no CA certificates") && stderr.contains("SSL_CERT_FILE"),
        "{stderr}"
    );
    assert!(
        !harness.db_path().exists(),
        "the database was opened: {stderr}"
    );
}

/// A certificate that does not verify is a page's outcome, stored with the page and
/// counted in the summary, as a refused connection is: not an `ERROR` line on stderr
/// for each host (from the certificate verifier, naming no host), which a broad crawl
/// meeting thousands of lapsed certificates would fill the log and its alerts with.
/// The row says what rustls's `UnknownIssuer` means and its usual causes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_that_does_not_verify_is_stored_not_logged_as_an_error() {
    let site = TlsSite::self_signed(&[("/", "<title>Home</title>")]).await;
    let harness = Harness::default();
    let out = crawl_by_binary(&harness, &site.url("/"), Vec::new()).await;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(stdout.contains("errors by kind: tls 1"), "{stdout}");
    assert!(!stderr.contains("ERROR"), "{stderr}");
    let page = harness
        .db()
        .await
        .page(&site.url("/"))
        .await
        .expect("a row for the seed");
    assert_eq!(page.error_kind.as_deref(), Some("tls"), "{stderr}");
    assert!(
        page.error.as_deref().is_some_and(|e| e.contains(
            "UnknownIssuer (the certificate was not issued by an authority this machine \
             trusts: a self-signed certificate, a private CA's (add it to the system's \
             CA certificates, or to the file SSL_CERT_FILE names, then crawl with \
             --retry-failed), or a server that leaves out its intermediate certificate)"
        )),
        "{page:?}"
    );
}

/// A certificate refused for its issuer, once the admin trusts it (an intranet's CA added
/// to the system's certificates or to `SSL_CERT_FILE`, as the row's error says, or
/// `fetch.accept_invalid_certs` turned on), is fetched by a run with `--retry-failed`:
/// the `tls` row stayed for good, every later run saying "nothing left to crawl", and
/// only a new database crawled the site.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_trusted_since_is_fetched_by_a_run_retrying_failures() {
    let site = TlsSite::self_signed(&[("/", "<title>Home</title>")]).await;
    let harness = Harness::default();
    let seeds = [site.url("/")];
    let outcome = || async {
        let page = harness.db().await.page(&site.url("/")).await;
        page.map(|p| (p.status, p.error_kind))
    };
    harness.crawl(&seeds, "").await;
    assert_eq!(outcome().await, Some((None, Some("tls".into()))));

    let text = harness.test_config_text(&seeds, "[fetch]\naccept_invalid_certs = true\n");
    let mut config = pipecrawl::Config::from_toml(&text, "test config").expect("a config");
    config.retry.earlier_failures = true;
    pipecrawl::crawl(config, std::future::pending())
        .await
        .expect("the crawl succeeds");
    assert_eq!(outcome().await, Some((Some(200), None)));
}

/// A server on 127.0.0.1 that answers the first bytes of each connection (a TLS
/// ClientHello, here) with `reply`, and closes it; returns its authority and the count
/// of connections it took.
async fn answering(reply: &'static [u8]) -> (String, Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let tcp = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let authority = tcp.local_addr().expect("its address").to_string();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&connections);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = tcp.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            let mut hello = [0u8; 4096];
            if stream.read(&mut hello).await.is_ok() {
                let _ = stream.write_all(reply).await;
            }
        }
    });
    (authority, connections)
}

/// A handshake that cannot succeed however often it is tried: a port that answers in
/// plain HTTP (`https://` on a plain server's port), a server that knows no TLS version
/// the crawler speaks (TLS 1.0 only, answering with a `protocol_version` alert). Each is
/// `tls`, saying so in words a user can act on rather than rustls's ("received corrupt
/// message of type InvalidContentType"), and is not asked again, as a certificate that
/// does not verify is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_that_cannot_succeed_is_tls_saying_why_and_not_retried() {
    let cases: [(&'static [u8], &str); 2] = [
        (
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            "answered in plain HTTP",
        ),
        // A TLS record: alert (21), TLS 1.2, 2 bytes long: fatal (2), protocol_version (70).
        (&[21, 3, 3, 0, 2, 2, 70], "no TLS version"),
    ];
    for (reply, why) in cases {
        let (authority, connections) = answering(reply).await;
        let url = format!("https://{authority}/");
        let harness = Harness::default();
        let retries = "[retry]\nmax_attempts = 3\nbase_delay_ms = 10\nmax_delay_ms = 20\n";
        harness.crawl(std::slice::from_ref(&url), retries).await;
        let db = harness.db().await;
        let page = db.page(&url).await.expect("a row for the seed");
        assert_eq!(page.error_kind.as_deref(), Some("tls"), "{page:?}");
        assert!(
            page.error.as_deref().is_some_and(|e| e.contains(why)),
            "{page:?}"
        );
        assert_eq!(
            connections.load(Ordering::SeqCst),
            1,
            "asked again: {page:?}"
        );
    }
}

/// `fetch.proxy` named `https://` whose TLS fails: a plain HTTP proxy (the usual slip,
/// `HTTPS_PROXY=http://…` copied as `https://`), or one whose certificate does not
/// verify. Every URL was `tls`, final, blaming the site ("its port is no HTTPS one", of
/// an `http://` page too), and the crawl, which reached no site, exited 0. The error is
/// the proxy's, a `connect` failure for now, saying so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_named_https_whose_tls_fails_is_blamed_not_the_sites() {
    let (plain, _) =
        answering(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await;
    let unverified = TlsSite::self_signed(&[("/", "<title>Proxy</title>")]).await;
    // Only the plain proxy is told of `http://`: one whose certificate is not trusted
    // would send its credentials in the clear so.
    for (proxy, why, told_of_http) in [
        (plain, "answered in plain HTTP", true),
        (unverified.authority().to_owned(), "UnknownIssuer", false),
    ] {
        for seed in ["http://pipecrawl.invalid/", "https://pipecrawl.invalid/"] {
            let harness = Harness::default();
            let extra = format!("[fetch]\nproxy = \"https://{proxy}\"\n");
            harness.crawl(&[seed.to_owned()], &extra).await;
            let page = harness.db().await.page(seed).await.expect("a row");
            let error = page.error.unwrap_or_default();
            assert_eq!(
                page.error_kind.as_deref(),
                Some("connect"),
                "{seed}: {error}"
            );
            assert!(error.contains("fetch.proxy"), "{seed}: {error}");
            assert!(error.contains(why), "{seed}: {error}");
            let told = error.contains("a proxy named http://");
            assert_eq!(told, told_of_http, "{seed}: {error}");
        }
    }
}
