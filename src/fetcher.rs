//! The fetch pool: tokio tasks sharing one `reqwest::Client` (one connection pool), each
//! taking a job, making one request and passing on whatever came back.
//!
//! Every outcome is a value: a 404, a refused connection or a timeout becomes a
//! [`Fetched`] with a status or an error, and the worker takes the next job. Redirects are
//! not followed here: the target goes back to the frontier like any discovered URL, so it
//! is scoped, deduplicated and politely scheduled, and never fetched twice.

use std::error::Error as _;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use reqwest::header::{HeaderMap, CONTENT_TYPE, ETAG, LAST_MODIFIED, LOCATION};
use reqwest::{redirect, Client, Response};

use crate::config::{Config, FetchConfig};
use crate::error::Error;
use crate::frontier::dispatcher::Progress;
use crate::page::{CrawlJob, ErrorKind, FetchError, Fetched};
use crate::urlnorm;

/// Builds the one HTTP client every fetch worker shares.
pub fn client(config: &Config) -> Result<Client, Error> {
    let per_host = usize::try_from(config.politeness.per_host_concurrency).unwrap_or(usize::MAX);
    Client::builder()
        .user_agent(&config.fetch.user_agent)
        .connect_timeout(config.fetch.connect_timeout)
        .timeout(config.fetch.timeout)
        .redirect(redirect::Policy::none())
        .pool_max_idle_per_host(per_host)
        .tcp_nodelay(true)
        .gzip(true)
        .brotli(true)
        .deflate(true)
        .build()
        .map_err(Error::HttpClient)
}

pub struct FetchPool;

impl FetchPool {
    /// Starts `config.workers` workers; each stops when the job channel closes.
    pub fn spawn(
        config: &FetchConfig,
        client: Client,
        jobs: flume::Receiver<CrawlJob>,
        fetched: flume::Sender<Fetched>,
        progress: Progress,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        (0..config.workers)
            .map(|_| {
                let worker = FetchWorker {
                    client: client.clone(),
                    jobs: jobs.clone(),
                    fetched: fetched.clone(),
                    progress: progress.clone(),
                    max_body_bytes: config.max_body_bytes,
                    max_redirects: config.max_redirects,
                };
                tokio::spawn(worker.run())
            })
            .collect()
    }
}

struct FetchWorker {
    client: Client,
    jobs: flume::Receiver<CrawlJob>,
    fetched: flume::Sender<Fetched>,
    progress: Progress,
    max_body_bytes: usize,
    max_redirects: u32,
}

impl FetchWorker {
    async fn run(self) {
        while let Ok(job) = self.jobs.recv_async().await {
            let host = Arc::clone(&job.host);
            let span = tracing::debug_span!("fetch", url = %job.url);
            let fetched = tracing::Instrument::instrument(self.fetch(job), span).await;
            self.progress.host_released(host);
            if self.fetched.send_async(fetched).await.is_err() {
                break;
            }
        }
    }

    async fn fetch(&self, job: CrawlJob) -> Fetched {
        let fetched_at = SystemTime::now();
        let started = Instant::now();
        let mut out = Fetched {
            job,
            status: None,
            content_type: None,
            etag: None,
            last_modified: None,
            location: None,
            body: None,
            bytes: None,
            truncated: false,
            fetched_at,
            elapsed_ms: 0,
            error: None,
        };
        match self.client.get(out.job.url.clone()).send().await {
            Ok(response) => self.read_response(response, &mut out).await,
            Err(e) => out.error = Some(fetch_error(&e)),
        }
        out.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::debug!(status = out.status, error = ?out.error, "fetched");
        out
    }

    async fn read_response(&self, mut response: Response, out: &mut Fetched) {
        let status = response.status();
        out.status = Some(status.as_u16());
        let headers = response.headers();
        out.content_type = header(headers, CONTENT_TYPE);
        out.etag = header(headers, ETAG);
        out.last_modified = header(headers, LAST_MODIFIED);

        if status.is_redirection() {
            if let Some(location) = header(headers, LOCATION) {
                match urlnorm::resolve(&out.job.url, &location) {
                    Ok(target) => {
                        if out.job.redirect_hops >= self.max_redirects {
                            out.error = Some(FetchError {
                                kind: ErrorKind::Redirect,
                                message: format!(
                                    "more than {} redirects in a row",
                                    self.max_redirects
                                ),
                            });
                        }
                        out.location = Some(target);
                    }
                    Err(e) => {
                        out.error = Some(FetchError {
                            kind: ErrorKind::Redirect,
                            message: format!("Location {location:?} {e}"),
                        });
                    }
                }
            }
        }

        // Only successful HTML is parsed: error pages' links are noise, and a soft-404
        // template linking to itself is a classic trap.
        if !status.is_success() || !out.is_html() {
            out.bytes = response.content_length();
            return;
        }
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = self.max_body_bytes - body.len();
                    if chunk.len() > room {
                        body.extend_from_slice(&chunk[..room]);
                        out.truncated = true;
                        break;
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => {
                    out.error = Some(fetch_error(&e));
                    break;
                }
            }
        }
        out.bytes = Some(body.len() as u64);
        out.body = Some(body);
    }
}

fn header(headers: &HeaderMap, name: reqwest::header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Sorts a reqwest error into a kind, keeping the whole cause chain as the message
/// ("connection refused" lives several sources deep).
fn fetch_error(e: &reqwest::Error) -> FetchError {
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else if e.is_connect() {
        ErrorKind::Connect
    } else if e.is_body() || e.is_decode() {
        ErrorKind::Body
    } else {
        ErrorKind::Request
    };
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    FetchError { kind, message }
}
