//! HTTP: one axum router per host, all sharing the generator, the log and the counter.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::log::RequestLog;
use crate::pages::{Route, Site, ROBOTS_TXT};

/// Everything the hosts share.
pub struct Shared {
    pub site: Site,
    /// Added before every response, to stand in for a slow server or a long network path.
    pub latency: Duration,
    pub log: Option<RequestLog>,
    pub requests: AtomicU64,
}

#[derive(Clone)]
struct HostState {
    shared: Arc<Shared>,
    host: usize,
    /// `127.0.0.N:PORT`, as written in the log.
    authority: Arc<str>,
}

/// A router for host `host` (0-based), listening at `authority`. Paths are matched by
/// [`Site::route`] rather than axum routes so which URLs exist is decided in one place.
pub fn router(shared: Arc<Shared>, host: usize, authority: &str) -> Router {
    Router::new().fallback(handle).with_state(HostState {
        shared,
        host,
        authority: authority.into(),
    })
}

async fn handle(State(st): State<HostState>, uri: Uri) -> Response {
    let shared = &st.shared;
    shared.requests.fetch_add(1, Ordering::Relaxed);
    if !shared.latency.is_zero() {
        tokio::time::sleep(shared.latency).await;
    }
    let path = uri.path();
    let (status, content_type, body) = match shared.site.route(st.host, path) {
        Route::Index => (StatusCode::OK, HTML, shared.site.render_index(st.host)),
        Route::Page(i) => (StatusCode::OK, HTML, shared.site.render_page(i)),
        Route::Robots => (StatusCode::OK, TEXT, ROBOTS_TXT.to_owned()),
        Route::NotFound => (StatusCode::NOT_FOUND, TEXT, "not found\n".to_owned()),
    };
    if let Some(log) = &shared.log {
        log.record(&st.authority, path, status.as_u16());
    }
    (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

const HTML: &str = "text/html; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";
