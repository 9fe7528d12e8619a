//! A loopback server that writes HTTP/1.1 by hand, for what a well-behaved server library
//! will not send: a `Content-Length` that lies, a connection reset mid-body, a raw UTF-8
//! `Location`, a head of a megabyte. Every answer closes its connection, so each request
//! is a connection of its own and a hostile answer cannot leak into the next.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How an answer ends once its bytes are written.
#[derive(Clone, Copy, Debug)]
pub enum Ending {
    /// An orderly close (FIN).
    Close,
    /// A reset (RST, through `SO_LINGER` 0), a moment after the bytes went out so that the
    /// client has read them first: the connection breaks mid-body, not before the head.
    Reset,
}

/// One answer, byte for byte.
#[derive(Clone, Debug)]
pub struct RawReply {
    /// The status line and headers, without the blank line that ends them: bytes, since
    /// servers send header values that are not UTF-8.
    pub head: Vec<u8>,
    pub body: Vec<u8>,
    pub ending: Ending,
}

impl RawReply {
    pub fn new(head: impl Into<Vec<u8>>, body: impl Into<Vec<u8>>, ending: Ending) -> Self {
        Self {
            head: head.into(),
            body: body.into(),
            ending,
        }
    }

    /// A 200 of `body`, closed in order.
    pub fn ok(content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        let body = body.into();
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}",
            body.len()
        );
        Self::new(head, body, Ending::Close)
    }

    /// A 301 to `location`, written byte for byte: raw UTF-8 or Latin-1 too, which
    /// servers send and a server library refuses.
    pub fn moved(location: impl AsRef<[u8]>) -> Self {
        let mut head = b"HTTP/1.1 301 Moved Permanently\r\nLocation: ".to_vec();
        head.extend_from_slice(location.as_ref());
        head.extend_from_slice(b"\r\nContent-Length: 0");
        Self::new(head, Vec::new(), Ending::Close)
    }
}

pub struct RawSite {
    pub authority: String,
    /// Each request's target and its head as sent.
    hits: Arc<Mutex<Vec<(String, String)>>>,
}

impl RawSite {
    /// Serves `routes` (path → answer) on 127.0.0.1; other paths, robots.txt included,
    /// get an empty 404.
    pub async fn start(routes: Vec<(&str, RawReply)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the raw test listener");
        let authority = listener
            .local_addr()
            .expect("raw listener address")
            .to_string();
        let routes: Arc<HashMap<String, RawReply>> = Arc::new(
            routes
                .into_iter()
                .map(|(path, reply)| (path.to_owned(), reply))
                .collect(),
        );
        let hits = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&hits);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(answer(stream, Arc::clone(&routes), Arc::clone(&log)));
            }
        });
        Self { authority, hits }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.authority)
    }

    /// How many times `path` was requested.
    pub fn count(&self, path: &str) -> usize {
        self.hits
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(p, _)| p == path)
            .count()
    }

    /// The head of the first request for `path`: request line and headers.
    pub fn head(&self, path: &str) -> Option<String> {
        self.hits
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, head)| head.clone())
    }
}

/// Reads one request head (at most 64 KiB) and writes the answer for its path. Write
/// errors are expected (a client that refuses a huge head hangs up) and ignored.
async fn answer(
    mut stream: TcpStream,
    routes: Arc<HashMap<String, RawReply>>,
    hits: Arc<Mutex<Vec<(String, String)>>>,
) {
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 64 * 1024 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&request);
    let path = text.split(' ').nth(1).unwrap_or("/").to_owned();
    hits.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push((path.clone(), text.into_owned()));
    let reply = routes.get(&path).cloned().unwrap_or_else(|| {
        RawReply::new(
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0",
            Vec::new(),
            Ending::Close,
        )
    });
    let mut bytes = reply.head.clone();
    bytes.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
    bytes.extend_from_slice(&reply.body);
    if stream.write_all(&bytes).await.is_err() {
        return;
    }
    match reply.ending {
        Ending::Close => {
            let _ = stream.shutdown().await;
        }
        Ending::Reset => {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            let _ = stream.set_zero_linger();
        }
    }
}
