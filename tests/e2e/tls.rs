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
    let page = harness.db().await.page(&site.url("/")).await;
    assert_eq!(
        page.and_then(|p| p.error_kind).as_deref(),
        Some("tls"),
        "{stderr}"
    );
}
