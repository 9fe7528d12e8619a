//! A SOCKS5 proxy on loopback (RFC 1928: no authentication, CONNECT only) that logs the
//! destination each connection asks for, as the client named it (a name or an address),
//! and connects there; a name in `names` goes to the address it maps to instead.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct SocksProxy {
    pub port: u16,
    asked: Arc<Mutex<Vec<String>>>,
}

impl SocksProxy {
    /// Serves on 127.0.0.1 until the test ends.
    pub async fn start(names: HashMap<String, SocketAddr>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the SOCKS listener");
        let port = listener.local_addr().expect("SOCKS address").port();
        let asked = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&asked);
        let names = Arc::new(names);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (log, names) = (Arc::clone(&log), Arc::clone(&names));
                tokio::spawn(async move {
                    // A client that breaks off mid-handshake ends only its connection.
                    let _ = relay(stream, &log, &names).await;
                });
            }
        });
        Self { port, asked }
    }

    /// The destinations asked for, `host:port`, in order.
    pub fn asked(&self) -> Vec<String> {
        self.asked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

async fn relay(
    mut client: TcpStream,
    log: &Mutex<Vec<String>>,
    names: &HashMap<String, SocketAddr>,
) -> std::io::Result<()> {
    let mut head = [0u8; 2];
    client.read_exact(&mut head).await?;
    let mut methods = vec![0u8; usize::from(head[1])];
    client.read_exact(&mut methods).await?;
    client.write_all(&[5, 0]).await?;
    let mut request = [0u8; 4];
    client.read_exact(&mut request).await?;
    let host = match request[3] {
        1 => {
            let mut ip = [0u8; 4];
            client.read_exact(&mut ip).await?;
            std::net::Ipv4Addr::from(ip).to_string()
        }
        3 => {
            let mut len = [0u8; 1];
            client.read_exact(&mut len).await?;
            let mut name = vec![0u8; usize::from(len[0])];
            client.read_exact(&mut name).await?;
            String::from_utf8_lossy(&name).into_owned()
        }
        _ => {
            let mut ip = [0u8; 16];
            client.read_exact(&mut ip).await?;
            format!("[{}]", std::net::Ipv6Addr::from(ip))
        }
    };
    let mut port = [0u8; 2];
    client.read_exact(&mut port).await?;
    let destination = format!("{host}:{}", u16::from_be_bytes(port));
    log.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(destination.clone());
    let target = match names.get(&destination) {
        Some(address) => TcpStream::connect(address).await,
        None => TcpStream::connect(destination.as_str()).await,
    };
    let Ok(mut target) = target else {
        // Connection refused (RFC 1928 §6, reply 5).
        return client.write_all(&[5, 5, 0, 1, 0, 0, 0, 0, 0, 0]).await;
    };
    client.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
    tokio::io::copy_bidirectional(&mut client, &mut target).await?;
    Ok(())
}
