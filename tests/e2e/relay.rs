//! A TCP relay on loopback that can be taken down and brought back on the same port, as
//! a proxy is restarted: down, its port refuses connections and those it had open are
//! closed.

use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

pub struct Relay {
    pub port: u16,
    ip: String,
    to: String,
    serving: Option<JoinHandle<()>>,
}

impl Relay {
    /// Relays 127.0.0.1:`port` to `to` (`host:port`).
    pub async fn start(to: &str) -> Self {
        Self::start_on("127.0.0.1", to).await
    }

    /// Relays `ip`:`port` to `to`: relays on several loopback addresses stand for several
    /// sites, all reached through the crawler's one network.
    pub async fn start_on(ip: &str, to: &str) -> Self {
        let listener = TcpListener::bind((ip, 0)).await.expect("bind the relay");
        let port = listener.local_addr().expect("the relay's address").port();
        let to = to.to_owned();
        let serving = Some(tokio::spawn(relay(listener, to.clone())));
        Self {
            port,
            ip: ip.to_owned(),
            to,
            serving,
        }
    }

    /// `ip:port` of the relay.
    pub fn authority(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    /// Stops listening and closes every connection the relay holds.
    pub async fn down(&mut self) {
        if let Some(serving) = self.serving.take() {
            serving.abort();
            let _ = serving.await;
        }
    }

    /// Listens on its port again.
    pub async fn up(&mut self) {
        let listener = TcpListener::bind((self.ip.as_str(), self.port))
            .await
            .expect("bind the relay's port again");
        self.serving = Some(tokio::spawn(relay(listener, self.to.clone())));
    }
}

/// Owns the connections: aborted, it closes them all.
async fn relay(listener: TcpListener, to: String) {
    let mut connections = JoinSet::new();
    while let Ok((mut client, _)) = listener.accept().await {
        let to = to.clone();
        connections.spawn(async move {
            if let Ok(mut server) = TcpStream::connect(&to).await {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            }
        });
    }
}
