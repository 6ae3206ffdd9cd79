//! A small single-consumer queue for transaction events. tokio's mpsc channels
//! allocate a 32-slot block each; a client transaction lives for Timer K after its
//! final response, so thousands of them are alive at once and two channels each
//! showed up as most of the memory in the loopback benchmark.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::lock;

struct Inner<T> {
    state: Mutex<(VecDeque<T>, bool)>,
    notify: Notify,
}

/// Sending side (cheap to clone).
pub(crate) struct Sender<T>(Arc<Inner<T>>);

/// Receiving side (one consumer).
pub(crate) struct Receiver<T>(Arc<Inner<T>>);

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Sender(self.0.clone())
    }
}

pub(crate) fn mailbox<T>() -> (Sender<T>, Receiver<T>) {
    let inner = Arc::new(Inner {
        state: Mutex::new((VecDeque::new(), false)),
        notify: Notify::new(),
    });
    (Sender(inner.clone()), Receiver(inner))
}

impl<T> Sender<T> {
    /// Queues `item`; gives it back when the receiver is gone.
    pub(crate) fn send(&self, item: T) -> Result<(), T> {
        {
            let mut s = lock(&self.0.state);
            if s.1 {
                return Err(item);
            }
            s.0.push_back(item);
        }
        self.0.notify.notify_one();
        Ok(())
    }

    /// Marks the end: the receiver gets None once the queue is empty.
    pub(crate) fn close(&self) {
        lock(&self.0.state).1 = true;
        self.0.notify.notify_one();
    }
}

impl<T> Receiver<T> {
    /// The next item, or None when closed and empty.
    pub(crate) async fn recv(&mut self) -> Option<T> {
        loop {
            {
                let mut s = lock(&self.0.state);
                if let Some(x) = s.0.pop_front() {
                    return Some(x);
                }
                if s.1 {
                    return None;
                }
            }
            self.0.notify.notified().await;
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut s = lock(&self.0.state);
        s.1 = true;
        s.0.clear();
    }
}

impl<T> std::fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("mailbox::Receiver")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn order_and_close() {
        let (tx, mut rx) = mailbox();
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        assert_eq!(rx.recv().await, Some(1));
        let t = tokio::spawn(async move {
            let a = rx.recv().await;
            let b = rx.recv().await;
            let c = rx.recv().await;
            (a, b, c)
        });
        tokio::task::yield_now().await;
        tx.send(3).unwrap();
        tx.close();
        assert_eq!(t.await.unwrap(), (Some(2), Some(3), None));
        assert_eq!(tx.send(4), Err(4), "receiver gone");
    }
}
