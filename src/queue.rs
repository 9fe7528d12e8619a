//! The queues between the fetch pool, the parse pool and the writer: bounded in values
//! (`channels.to_parse`, `channels.to_store`) and in bytes (`channels.max_bytes`).
//!
//! A bound in values alone bounds no memory when one value can weigh anything up to
//! `fetch.max_body_bytes`, or, parsed, `traps.max_links_per_page` URLs of up to
//! `traps.max_url_length` each: ten thousand short hrefs resolved against a 2,000-byte
//! `<base>` are 20 MB from a 150 KB page, so 64 queued such pages, and the writer's batch
//! of `storage.batch_size` more, were gigabytes. Here a sender first takes its value's
//! weight from the queue's byte budget, and the [`Held`] that comes out with the value
//! gives it back once the next stage is done with it (the writer: once it is committed).

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

/// Budgets count kibibytes, so that one can be larger than a `u32` of bytes.
const UNIT: usize = 1024;

/// A bounded queue of `capacity` values weighing `max_bytes` in all. A value weighing
/// more than the whole budget takes all of it, and so goes through alone rather than
/// never.
pub fn bounded<T>(capacity: usize, max_bytes: usize) -> (Sender<T>, Receiver<T>) {
    let units = u32::try_from(max_bytes / UNIT).unwrap_or(u32::MAX).max(1);
    let budget = Arc::new(Semaphore::new(units as usize));
    let (tx, rx) = flume::bounded(capacity);
    let sender = Sender {
        values: tx,
        budget: Arc::clone(&budget),
        units,
        short_of_bytes: Arc::default(),
    };
    let receiver = Receiver {
        values: rx,
        gone: Arc::new(CloseOnDrop(budget)),
    };
    (sender, receiver)
}

/// A value's share of its queue's byte budget, given back when dropped.
#[must_use = "the bytes are given back when this is dropped"]
pub struct Held {
    _bytes: OwnedSemaphorePermit,
}

/// The receiving stage is gone: nothing more will be taken off the queue.
#[derive(Debug)]
pub struct Disconnected;

pub struct Sender<T> {
    values: flume::Sender<(T, Held)>,
    budget: Arc<Semaphore>,
    units: u32,
    /// Senders waiting for bytes now: the queue is full by its budget, which its depth in
    /// values does not show (one page weighing the whole budget fills it alone).
    short_of_bytes: Arc<AtomicUsize>,
}

// Not derived: a derived `Clone` would ask it of the values.
impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Self {
            values: self.values.clone(),
            budget: Arc::clone(&self.budget),
            units: self.units,
            short_of_bytes: Arc::clone(&self.short_of_bytes),
        }
    }
}

impl<T> Sender<T> {
    /// Waits for room for `value` (a place, and `bytes` of the budget), then queues it.
    pub async fn send_async(&self, value: T, bytes: usize) -> Result<(), Disconnected> {
        let held = self.take(bytes).await?;
        self.values
            .send_async((value, Held { _bytes: held }))
            .await
            .map_err(|_| Disconnected)
    }

    /// [`Self::send_async`] for a thread outside the runtime (a parse thread).
    pub fn send(&self, value: T, bytes: usize) -> Result<(), Disconnected> {
        let held = wait_blocking(self.take(bytes))?;
        self.values
            .send((value, Held { _bytes: held }))
            .map_err(|_| Disconnected)
    }

    /// `bytes` of the budget: at once if they are free (a sender waiting before this one
    /// has them first), else once given back, counted meanwhile as a sender short of
    /// bytes.
    async fn take(&self, bytes: usize) -> Result<OwnedSemaphorePermit, Disconnected> {
        let units = self.units_for(bytes);
        match Arc::clone(&self.budget).try_acquire_many_owned(units) {
            Ok(held) => return Ok(held),
            Err(TryAcquireError::Closed) => return Err(Disconnected),
            Err(TryAcquireError::NoPermits) => {}
        }
        let _counted = ShortOfBytes::count(&self.short_of_bytes);
        Arc::clone(&self.budget)
            .acquire_many_owned(units)
            .await
            .map_err(|_closed| Disconnected)
    }

    /// For the depth `/stats` and the progress line show, without keeping the queue open.
    pub fn gauge(&self) -> Gauge<T> {
        Gauge {
            values: self.values.downgrade(),
            short_of_bytes: Arc::clone(&self.short_of_bytes),
        }
    }

    fn units_for(&self, bytes: usize) -> u32 {
        u32::try_from(bytes.div_ceil(UNIT))
            .unwrap_or(u32::MAX)
            .clamp(1, self.units)
    }
}

pub struct Receiver<T> {
    values: flume::Receiver<(T, Held)>,
    /// Shared by the receiver's clones: the last one dropped closes the budget, so that a
    /// sender waiting for bytes that queued values hold learns that no one will take them.
    gone: Arc<CloseOnDrop>,
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        Self {
            values: self.values.clone(),
            gone: Arc::clone(&self.gone),
        }
    }
}

impl<T> Receiver<T> {
    pub fn recv(&self) -> Result<(T, Held), flume::RecvError> {
        self.values.recv()
    }

    pub async fn recv_async(&self) -> Result<(T, Held), flume::RecvError> {
        self.values.recv_async().await
    }

    pub fn try_recv(&self) -> Result<(T, Held), flume::TryRecvError> {
        self.values.try_recv()
    }
}

/// Drives `future` on this thread, parked between its wake-ups: a parse thread has no
/// runtime to wait in, and waits for nothing else.
fn wait_blocking<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

/// A queue's fill, read without keeping it open.
pub struct Gauge<T> {
    values: flume::WeakSender<(T, Held)>,
    short_of_bytes: Arc<AtomicUsize>,
}

impl<T> Gauge<T> {
    /// Values queued now.
    pub fn depth(&self) -> usize {
        self.values.upgrade().map_or(0, |s| s.len())
    }

    /// Whether a sender waits for bytes now: the queue is full by `channels.max_bytes`.
    pub fn short_of_bytes(&self) -> bool {
        self.short_of_bytes.load(Ordering::Relaxed) > 0
    }
}

/// One sender counted among those waiting for bytes, for as long as it waits (its wait
/// may be dropped, with the fetch that sent it).
struct ShortOfBytes<'a>(&'a AtomicUsize);

impl<'a> ShortOfBytes<'a> {
    fn count(waiting: &'a AtomicUsize) -> Self {
        waiting.fetch_add(1, Ordering::Relaxed);
        Self(waiting)
    }
}

impl Drop for ShortOfBytes<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

struct CloseOnDrop(Arc<Semaphore>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const MIB: usize = 1024 * 1024;

    #[tokio::test]
    async fn a_sender_waits_for_bytes_until_the_next_stage_is_done_with_a_value() {
        let (tx, rx) = bounded::<&str>(64, 4 * MIB);
        tx.send_async("first", 3 * MIB).await.expect("room for it");
        let (value, held) = rx.try_recv().expect("queued");
        assert_eq!(value, "first");
        let second = tokio::spawn({
            let tx = tx.clone();
            async move { tx.send_async("second", 2 * MIB).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            rx.try_recv().is_err(),
            "sent while the first value held 3 of the 4 MiB"
        );
        let gauge = tx.gauge();
        assert_eq!(gauge.depth(), 0);
        assert!(
            gauge.short_of_bytes(),
            "full by its bytes, with no value in it"
        );
        drop(held);
        second
            .await
            .expect("ran")
            .expect("sent once the bytes were back");
        assert_eq!(rx.try_recv().map(|(v, _)| v).ok(), Some("second"));
        assert!(!gauge.short_of_bytes());
    }

    #[test]
    fn a_value_heavier_than_the_whole_budget_goes_through_alone() {
        let (tx, rx) = bounded::<u8>(64, MIB);
        tx.send(1, 100 * MIB).expect("the whole budget is its");
        let (_, held) = rx.recv().expect("queued");
        drop(held);
        tx.send(2, 1).expect("room again");
        assert_eq!(rx.recv().map(|(v, _)| v).ok(), Some(2));
    }

    #[test]
    fn a_sender_waiting_for_bytes_hears_that_the_receiver_is_gone() {
        let (tx, rx) = bounded::<u8>(64, MIB);
        tx.send(1, MIB).expect("room for it");
        let gauge = tx.gauge();
        let (result_tx, result) = std::sync::mpsc::channel();
        std::thread::spawn(move || result_tx.send(tx.send(2, MIB)));
        // The first value, queued, still holds the whole budget: the second's sender
        // waits for bytes before the receiver goes, not after (which fails it at once).
        let waited = (0..3_000).any(|_| {
            std::thread::sleep(Duration::from_millis(10));
            gauge.short_of_bytes()
        });
        assert!(waited, "the sender never waited for bytes");
        drop(rx);
        let sent = result
            .recv_timeout(Duration::from_secs(30))
            .expect("a sender waited on for bytes no one will give back");
        assert!(sent.is_err(), "sent to a queue no one takes from");
    }
}
