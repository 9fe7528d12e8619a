//! An in-process test web: one axum server per loopback address (127.0.0.1, 127.0.0.2, …
//! stand for different hosts), serving a fixed map of resources and logging every request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::Router;
use tokio::net::TcpListener;

/// What the site answers for one URL.
#[derive(Clone, Debug)]
pub enum Resource {
    Html(String),
    /// A status other than 200, with an HTML body.
    Status(u16, String),
    Redirect(u16, String),
    /// A body with its own content type.
    Typed(&'static str, Vec<u8>),
}

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Hit {
    pub host: String,
    pub path: String,
}

type Routes = HashMap<(String, String), Resource>;

/// Listeners bound up front, so pages can be written with the hosts' real authorities.
pub struct SiteBuilder {
    listeners: Vec<(String, TcpListener)>,
    routes: Routes,
}

impl SiteBuilder {
    /// Binds one listener on each of 127.0.0.1 … 127.0.0.`hosts`.
    pub async fn bind(hosts: u8) -> Self {
        let mut listeners = Vec::new();
        for i in 1..=hosts {
            let listener = TcpListener::bind(("127.0.0.".to_owned() + &i.to_string(), 0))
                .await
                .expect("bind a loopback test listener");
            let addr = listener.local_addr().expect("listener address");
            listeners.push((addr.to_string(), listener));
        }
        Self {
            listeners,
            routes: HashMap::new(),
        }
    }

    /// `host:port` of host `i` (0-based).
    pub fn authority(&self, i: usize) -> String {
        self.listeners[i].0.clone()
    }

    pub fn add(&mut self, authority: &str, path: &str, resource: Resource) {
        self.routes
            .insert((authority.to_owned(), path.to_owned()), resource);
    }

    pub fn start(self) -> TestSite {
        let routes = Arc::new(self.routes);
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut authorities = Vec::new();
        for (authority, listener) in self.listeners {
            let state = Arc::new(HostState {
                authority: authority.clone(),
                routes: Arc::clone(&routes),
                log: Arc::clone(&log),
            });
            let app = Router::new().fallback(serve).with_state(state);
            tokio::spawn(async move {
                axum::serve(listener, app).await.expect("test server");
            });
            authorities.push(authority);
        }
        TestSite { authorities, log }
    }
}

pub struct TestSite {
    pub authorities: Vec<String>,
    log: Arc<Mutex<Vec<Hit>>>,
}

impl TestSite {
    pub fn url(&self, host: usize, path: &str) -> String {
        format!("http://{}{}", self.authorities[host], path)
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.log.lock().expect("request log").clone()
    }

    /// Every requested URL, as `http://host:port/path?query`.
    pub fn requested_urls(&self) -> Vec<String> {
        self.hits()
            .into_iter()
            .map(|h| format!("http://{}{}", h.host, h.path))
            .collect()
    }
}

struct HostState {
    authority: String,
    routes: Arc<Routes>,
    log: Arc<Mutex<Vec<Hit>>>,
}

async fn serve(State(host): State<Arc<HostState>>, request: Request) -> Response {
    let path = request
        .uri()
        .path_and_query()
        .map_or("/".to_owned(), |p| p.as_str().to_owned());
    host.log.lock().expect("request log").push(Hit {
        host: host.authority.clone(),
        path: path.clone(),
    });
    let resource = host.routes.get(&(host.authority.clone(), path)).cloned();
    let response = Response::builder();
    let built = match resource {
        Some(Resource::Html(body)) => response
            .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
            .body(Body::from(body)),
        Some(Resource::Status(code, body)) => response
            .status(code)
            .header(header::CONTENT_TYPE, "text/html")
            .body(Body::from(body)),
        Some(Resource::Redirect(code, location)) => response
            .status(code)
            .header(header::LOCATION, location)
            .body(Body::empty()),
        Some(Resource::Typed(content_type, body)) => response
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body)),
        None => response
            .status(StatusCode::NOT_FOUND)
            .header(header::CONTENT_TYPE, "text/html")
            .body(Body::from("<title>Not found</title>")),
    };
    built.expect("a valid test response")
}
