//! A broad crawl: thousands of small hosts, one seed each, as a research crawl of many
//! sites runs. Names under `localhost` all reach one server, which answers by `Host`.

use axum::extract::Request;
use axum::http::header;
use axum::response::Html;
use axum::Router;
use tokio::net::TcpListener;

use super::cli::crawl_under_ulimit;
use super::Harness;

/// Serves every `hN.localhost` the same small site: `/` links to `/a` and `/b`, which
/// link nowhere; robots.txt is not found. Returns the port.
async fn many_hosts() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback test listener");
    let port = listener.local_addr().expect("listener address").port();
    let app = Router::new().fallback(|request: Request| async move {
        let named = request.headers().contains_key(header::HOST);
        match request.uri().path() {
            "/" if named => Ok(Html(
                "<title>Home</title><a href='/a'>a</a><a href='/b'>b</a>",
            )),
            "/a" | "/b" => Ok(Html("<title>Leaf</title>")),
            _ => Err(axum::http::StatusCode::NOT_FOUND),
        }
    });
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("test server");
    });
    port
}

/// A seeds file of 1,500 hosts crawled by 80 fetchers under `ulimit -n 256`, which
/// `fetch.workers` fits (about two descriptors a worker). Each host's connection idled in
/// the pool for its next request, so the crawl held one to every host it asked lately,
/// not two per worker, and ran out: two thirds of the pages were `dns_temporary` rows
/// (the resolver could not open a socket), and a larger crawl stopped on SQLite's
/// "unable to open database file". Under such a limit connections are not kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broad_crawl_stays_within_the_open_file_limit() {
    const HOSTS: usize = 1_500;
    let port = many_hosts().await;
    let harness = Harness::default();
    let seeds: String = (1..=HOSTS)
        .map(|i| format!("http://h{i}.localhost:{port}/\n"))
        .collect();
    let seeds_file = harness.dir.path().join("seeds.txt");
    std::fs::write(&seeds_file, seeds).expect("write the seeds file");
    let config = harness.write_config(&format!(
        "seeds_file = {:?}\n[scope]\nhosts = [\"*.localhost\"]\n[network]\n\
         allow = [\"127.0.0.0/8\"]\n[fetch]\nworkers = 80\n[politeness]\ndelay_ms = 500\n\
         [retry]\nmax_attempts = 1\n[storage]\ndatabase = {:?}\n",
        seeds_file.display().to_string(),
        harness.db_path().display().to_string(),
    ));
    let out = crawl_under_ulimit("-n 256", config).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stderr.contains("connections are not kept for their host's next request"),
        "{stderr}"
    );
    let pages = HOSTS * 3;
    assert!(
        stdout.contains(&format!("crawled {pages} pages ({pages} 2xx)")),
        "every page stored, none failed for want of a descriptor:\n{stdout}\n{stderr}"
    );
}
