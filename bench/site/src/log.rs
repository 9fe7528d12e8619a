//! The request log: one line per request, `unix_micros host path status`.
//!
//! Lines go over a channel to one writer thread, so request handlers never wait on
//! the disk and never contend for a file lock; the thread batches them through a
//! large buffer and flushes when the log goes quiet and at shutdown.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long the log may go without new lines before buffered ones are written out,
/// so someone tailing it during a run is not left a buffer behind.
const IDLE_FLUSH: Duration = Duration::from_secs(1);
const BUFFER_BYTES: usize = 256 * 1024;

enum Msg {
    Line(String),
    Stop,
}

pub struct RequestLog {
    tx: Sender<Msg>,
    writer: Mutex<Option<JoinHandle<io::Result<()>>>>,
}

impl RequestLog {
    /// Appends, so one log can collect several runs.
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let (tx, rx) = mpsc::channel();
        let writer = std::thread::Builder::new()
            .name("request-log".into())
            .spawn(move || write_lines(BufWriter::with_capacity(BUFFER_BYTES, file), rx))?;
        Ok(Self {
            tx,
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Lines recorded after [`RequestLog::finish`] are dropped.
    pub fn record(&self, host: &str, path: &str, status: u16) {
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros());
        let _ = self
            .tx
            .send(Msg::Line(format!("{micros} {host} {path} {status}\n")));
    }

    /// Writes out everything recorded so far and stops the writer. Takes `&self`
    /// because handlers of connections that outlive shutdown may still hold the log.
    pub fn finish(&self) -> io::Result<()> {
        let writer = match self.writer.lock() {
            Ok(mut guard) => guard.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        let Some(writer) = writer else {
            return Ok(());
        };
        let _ = self.tx.send(Msg::Stop);
        writer
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("request log writer panicked")))
    }
}

fn write_lines(mut out: BufWriter<File>, rx: mpsc::Receiver<Msg>) -> io::Result<()> {
    loop {
        match rx.recv_timeout(IDLE_FLUSH) {
            Ok(Msg::Line(line)) => out.write_all(line.as_bytes())?,
            Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                if !out.buffer().is_empty() {
                    out.flush()?;
                }
            }
        }
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_flushed_on_finish_and_appended() {
        let path = std::env::temp_dir().join(format!("bench-site-log-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        for status in [200, 404] {
            let log = RequestLog::open(&path).expect("open log");
            log.record("127.0.0.1:80", "/p/1", status);
            log.finish().expect("finish");
            log.record("127.0.0.1:80", "/late", 200);
            log.finish().expect("second finish is a no-op");
        }
        let text = std::fs::read_to_string(&path).expect("read log");
        let _ = std::fs::remove_file(&path);
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        let fields: Vec<_> = lines[1].split(' ').collect();
        assert!(fields[0].parse::<u128>().is_ok());
        assert_eq!(fields[1..], ["127.0.0.1:80", "/p/1", "404"]);
    }
}
