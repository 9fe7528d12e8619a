//! TLS to PostgreSQL, as a managed service (or a `hostssl` line) insists on it: the URL's
//! `sslmode` and `sslrootcert` are honoured as libpq honours them, and a connection
//! refused over TLS, or for want of it, says why.

use std::path::{Path, PathBuf};
use std::process::Output;

use sqlx::Connection;

use super::cluster::run_to_the_end;
use super::connection_limit::crawl_config;
use super::postgres::TestPostgres;
use super::site::TestSite;
use super::Harness;

/// A certificate authority's certificate (PEM) written to `dir/name.crt`, and a server
/// certificate it signed for 127.0.0.1 with its key (PEM).
struct Certificates {
    ca: PathBuf,
    server: String,
    server_key: String,
}

fn certificates(dir: &Path, name: &str) -> Certificates {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("{name} test CA"));
    let ca_key = rcgen::KeyPair::generate().expect("a CA key");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("a CA certificate");
    let server_key = rcgen::KeyPair::generate().expect("a server key");
    let server = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .expect("server params")
        .signed_by(&server_key, &ca)
        .expect("a server certificate");
    let path = dir.join(format!("{name}.crt"));
    std::fs::write(&path, ca.pem()).expect("write the CA certificate");
    Certificates {
        ca: path,
        server: server.pem(),
        server_key: server_key.serialize_pem(),
    }
}

/// `pipecrawl crawl` of `site` into `database`.
fn crawl_into(harness: &Harness, site: &TestSite, database: &str) -> Output {
    run_to_the_end(
        "crawl",
        &crawl_config(harness.dir.path(), "crawl", site, database),
    )
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A server that takes TCP connections only over TLS, its certificate signed by a CA of
/// the test's: a crawl whose URL checks it (`verify-full`, the CA in `sslrootcert`) stores
/// its pages there, as do `verify-ca` and `require`; one that trusts another CA is
/// refused, even with `require`, and so is one that asks for no TLS (`sslmode=disable`),
/// each saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_stores_its_pages_in_a_postgresql_that_takes_only_tls() {
    let Some(postgres) =
        TestPostgres::start("a_crawl_stores_its_pages_in_a_postgresql_that_takes_only_tls")
    else {
        return;
    };
    let database = postgres.database("tls_crawl").await;
    let harness = Harness::default();
    let ours = certificates(harness.dir.path(), "ours");
    let other = certificates(harness.dir.path(), "other");
    postgres.only_tls(&ours.server, &ours.server_key);
    let site = TestSite::one_host(&[
        ("/", "<title>Home</title><a href='/a'>A</a>"),
        ("/a", "<title>A</title>"),
    ])
    .await;

    let verified = format!(
        "{database}?sslmode=verify-full&sslrootcert={}",
        ours.ca.display()
    );
    let out = crawl_into(&harness, &site, &verified);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut conn = sqlx::PgConnection::connect(&verified)
        .await
        .expect("connect over TLS");
    let pages: i64 = sqlx::query_scalar("SELECT count(*) FROM pages")
        .fetch_one(&mut conn)
        .await
        .expect("count the pages");
    assert_eq!(pages, 2);

    // libpq's reading: `require` with a root certificate checks the certificate against
    // it (as `verify-ca` does, which has rustls ask for the process's CryptoProvider).
    for (mode, root, stores) in [
        ("verify-ca", &ours.ca, true),
        ("require", &ours.ca, true),
        ("require", &other.ca, false),
    ] {
        let url = format!("{database}?sslmode={mode}&sslrootcert={}", root.display());
        let out = crawl_into(&harness, &site, &url);
        assert_eq!(out.status.success(), stores, "{url}: {}", stderr(&out));
    }

    let wrong_root = format!(
        "{database}?sslmode=verify-full&sslrootcert={}",
        other.ca.display()
    );
    let out = crawl_into(&harness, &site, &wrong_root);
    assert!(!out.status.success());
    let said = stderr(&out);
    assert!(
        said.contains(
            "the TLS handshake with PostgreSQL at 127.0.0.1 failed: the server's \
                       certificate was signed by no authority this connection trusts"
        ),
        "{said}"
    );

    let out = crawl_into(&harness, &site, &format!("{database}?sslmode=disable"));
    assert!(!out.status.success());
    let said = stderr(&out);
    assert!(
        said.contains("the server at 127.0.0.1 takes this connection only over TLS"),
        "{said}"
    );
}
