//! A loopback server that writes HTTP/1.1 by hand, for what a well-behaved server library
//! will not send: a `Content-Length` that lies, a connection reset mid-body, a raw UTF-8
//! `Location`, a head of a megabyte. Every answer closes its connection, so each request
//! is a connection of its own and a hostile answer cannot leak into the next. Over TLS
//! too, closing as many servers do: without a `close_notify`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use super::tls::self_signed_config;

/// How an answer ends once its bytes are written.
#[derive(Clone, Copy, Debug)]
pub enum Ending {
    /// An orderly close (FIN).
    Close,
    /// A reset (RST, through `SO_LINGER` 0), a moment after the bytes went out so that the
    /// client has read them first: the connection breaks mid-body, not before the head.
    Reset,
    /// The first request for the path is closed unanswered (a FIN with no byte written;
    /// over TLS, no `close_notify`), as a server restarting or ending an idle kept-alive
    /// connection closes it; later ones get the answer, closed in order.
    HangUpFirst,
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
    scheme: &'static str,
    /// Each request's target and its head as sent.
    hits: Arc<Mutex<Vec<(String, String)>>>,
}

impl RawSite {
    /// Serves `routes` (path → answer) on 127.0.0.1; other paths, robots.txt included,
    /// get an empty 404.
    pub async fn start(routes: Vec<(&str, RawReply)>) -> Self {
        Self::serve(routes, None).await
    }

    /// [`RawSite::start`] over HTTPS, with a certificate issued to 127.0.0.1 by itself. An
    /// answer's connection is closed without a TLS `close_notify`, as Python's
    /// `http.server` behind `ssl.wrap_socket`, embedded devices and old servers close it:
    /// the TCP connection ends (or is reset) right after the answer's last record.
    pub async fn start_tls(routes: Vec<(&str, RawReply)>) -> Self {
        let acceptor = TlsAcceptor::from(Arc::new(self_signed_config()));
        Self::serve(routes, Some(acceptor)).await
    }

    async fn serve(routes: Vec<(&str, RawReply)>, tls: Option<TlsAcceptor>) -> Self {
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
        let scheme = if tls.is_some() { "https" } else { "http" };
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (routes, log) = (Arc::clone(&routes), Arc::clone(&log));
                match tls.clone() {
                    None => tokio::spawn(answer(stream, routes, log)),
                    Some(acceptor) => tokio::spawn(answer_tls(acceptor, stream, routes, log)),
                };
            }
        });
        Self {
            authority,
            scheme,
            hits,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.authority)
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

/// Answers one request on `stream` and ends the connection as its answer says.
async fn answer(
    mut stream: TcpStream,
    routes: Arc<HashMap<String, RawReply>>,
    hits: Arc<Mutex<Vec<(String, String)>>>,
) {
    if let Some(ending) = write_answer(&mut stream, &routes, &hits).await {
        end(stream, ending).await;
    }
}

/// [`answer`] over TLS: the TCP connection ends as the answer says, and no `close_notify`
/// is sent (the records written are flushed first).
async fn answer_tls(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    routes: Arc<HashMap<String, RawReply>>,
    hits: Arc<Mutex<Vec<(String, String)>>>,
) {
    let Ok(mut tls) = acceptor.accept(stream).await else {
        return;
    };
    if let Some(ending) = write_answer(&mut tls, &routes, &hits).await {
        if tls.flush().await.is_ok() {
            end(tls.into_inner().0, ending).await;
        }
    }
}

async fn end(mut stream: TcpStream, ending: Ending) {
    match ending {
        Ending::Close | Ending::HangUpFirst => {
            let _ = stream.shutdown().await;
        }
        Ending::Reset => {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            let _ = stream.set_zero_linger();
        }
    }
}

/// Reads one request head (at most 64 KiB), writes the answer for its path and says how
/// it ends. Write errors are expected (a client that refuses a huge head hangs up): the
/// connection is then left as it is.
async fn write_answer(
    stream: &mut (impl AsyncRead + AsyncWrite + Unpin),
    routes: &HashMap<String, RawReply>,
    hits: &Mutex<Vec<(String, String)>>,
) -> Option<Ending> {
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 64 * 1024 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&request);
    let path = text.split(' ').nth(1).unwrap_or("/").to_owned();
    let first = {
        let mut hits = hits.lock().unwrap_or_else(PoisonError::into_inner);
        hits.push((path.clone(), text.into_owned()));
        hits.iter().filter(|(p, _)| *p == path).count() == 1
    };
    let reply = routes.get(&path).cloned().unwrap_or_else(|| {
        RawReply::new(
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0",
            Vec::new(),
            Ending::Close,
        )
    });
    if first && matches!(reply.ending, Ending::HangUpFirst) {
        return Some(Ending::Close);
    }
    let mut bytes = reply.head.clone();
    let says_connection = String::from_utf8_lossy(&reply.head)
        .lines()
        .any(|line| line.to_ascii_lowercase().starts_with("connection:"));
    if !says_connection {
        bytes.extend_from_slice(b"\r\nConnection: close");
    }
    bytes.extend_from_slice(b"\r\n\r\n");
    bytes.extend_from_slice(&reply.body);
    stream.write_all(&bytes).await.ok()?;
    Some(reply.ending)
}
