//! Delivery of received messages to the layer above (the transaction layer or a role).

use tokio::sync::mpsc;
use tracing::warn;

use crate::flow::{Flow, Incoming};

/// Receives every parsed message. Called from the socket tasks: it must not block
/// (hand the message to a channel or spawn).
pub trait IncomingHandler: Send + Sync + 'static {
    /// One message.
    fn handle(&self, incoming: Incoming);

    /// A TCP connection closed (by the peer, an error, the idle timeout or us): the
    /// flow is gone (RFC 5626 §4.4.1 flow failure); requests to it need a new one.
    fn connection_closed(&self, _flow: Flow) {}
}

/// An [`IncomingHandler`] that forwards into a bounded channel; when the channel is
/// full the message is dropped and logged (UDP senders retransmit; over TCP the
/// sender's transaction times out).
#[derive(Clone, Debug)]
pub struct ChannelHandler(pub mpsc::Sender<Incoming>);

/// A channel handler and its receiver.
pub fn channel(capacity: usize) -> (ChannelHandler, mpsc::Receiver<Incoming>) {
    let (tx, rx) = mpsc::channel(capacity);
    (ChannelHandler(tx), rx)
}

impl IncomingHandler for ChannelHandler {
    fn handle(&self, incoming: Incoming) {
        if let Err(e) = self.0.try_send(incoming) {
            let inc = match &e {
                mpsc::error::TrySendError::Full(i) | mpsc::error::TrySendError::Closed(i) => i,
            };
            warn!(call_id = inc.call_id(), source = %inc.source, "upper layer busy or gone: message dropped");
        }
    }
}

impl<F: Fn(Incoming) + Send + Sync + 'static> IncomingHandler for F {
    fn handle(&self, incoming: Incoming) {
        self(incoming)
    }
}
