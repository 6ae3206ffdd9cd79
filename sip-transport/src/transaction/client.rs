//! Client transactions (RFC 3261 §17.1): one task per transaction drives the sans-I/O
//! machine (`ClientNonInvite` / `ClientInvite`) with tokio timers.

use std::sync::Arc;

use ims_sip_core::transaction::{
    Action, ClientInvite, ClientNonInvite, Transaction, TransactionKey,
};
use ims_sip_core::{Message, Method};
use tracing::{debug, warn};

use super::mailbox::{self, Receiver, Sender};
use super::TsxInner;
use crate::error::{Result, TransportError};
use crate::flow::{Target, Transport};
use crate::lock;

enum Machine {
    NonInvite(ClientNonInvite),
    Invite(ClientInvite),
}

impl Machine {
    fn tsx(&mut self) -> &mut dyn Transaction {
        match self {
            Machine::NonInvite(m) => m,
            Machine::Invite(m) => m,
        }
    }

    fn handle_response(&mut self, now: std::time::Instant, r: Message) {
        match self {
            Machine::NonInvite(m) => m.handle_response(now, r),
            Machine::Invite(m) => m.handle_response(now, r),
        }
    }
}

/// A running client transaction: the responses to one request.
#[derive(Debug)]
pub struct ClientTransaction {
    key: TransactionKey,
    rx: Receiver<Result<Message>>,
}

impl ClientTransaction {
    /// The transaction's key (branch + method).
    pub fn key(&self) -> &TransactionKey {
        &self.key
    }

    /// The next response (provisional or final), an error (Timer B/F timeout,
    /// transport failure), or None once the transaction is over. After an INVITE's
    /// 2xx, retransmitted 2xx keep coming until Timer M (RFC 6026).
    pub async fn next_response(&mut self) -> Option<Result<Message>> {
        self.rx.recv().await
    }

    /// Waits for the final response, skipping provisional ones.
    pub async fn final_response(mut self) -> Result<Message> {
        while let Some(r) = self.rx.recv().await {
            match r {
                Ok(m) if m.status().is_some_and(|s| s.is_provisional()) => continue,
                other => return other,
            }
        }
        Err(TransportError::Timeout)
    }
}

fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

pub(super) async fn start(
    inner: Arc<TsxInner>,
    request: Message,
    target: Target,
) -> Result<ClientTransaction> {
    let reliable = target.transport == Transport::Tcp;
    let machine = match request.method() {
        Some(Method::Ack) => {
            return Err(TransportError::BadRequest("ACK has no client transaction"))
        }
        Some(Method::Invite) => {
            ClientInvite::new(request, reliable, inner.timers, now()).map(Machine::Invite)
        }
        Some(_) => {
            ClientNonInvite::new(request, reliable, inner.timers, now()).map(Machine::NonInvite)
        }
        None => return Err(TransportError::BadRequest("not a request")),
    }
    .map_err(|_| TransportError::BadRequest("request has no Via branch"))?;
    let mut machine = machine;
    let key = machine.tsx().key().clone();
    let (resp_tx, resp_rx) = mailbox::mailbox();
    {
        let mut clients = lock(&inner.clients);
        if clients.contains_key(&key) {
            return Err(TransportError::BadRequest(
                "branch already in use by a client transaction",
            ));
        }
        clients.insert(key.clone(), resp_tx);
    }
    let (user_tx, user_rx) = mailbox::mailbox();
    tokio::spawn(run(inner, machine, key.clone(), target, resp_rx, user_tx));
    Ok(ClientTransaction { key, rx: user_rx })
}

async fn run(
    inner: Arc<TsxInner>,
    mut m: Machine,
    key: TransactionKey,
    mut target: Target,
    mut responses: Receiver<Message>,
    user: Sender<Result<Message>>,
) {
    let call_id: Box<str> = match &m {
        Machine::NonInvite(x) => x.request().call_id().unwrap_or("").into(),
        Machine::Invite(x) => x.request().call_id().unwrap_or("").into(),
    };
    let mut last_error: Option<TransportError> = None;
    let mut sent_once = false;
    loop {
        while let Some(action) = m.tsx().poll_action() {
            match action {
                Action::Transmit(bytes) => {
                    if sent_once {
                        debug!(call_id = &*call_id, remote = %target.remote, "retransmitting request");
                    }
                    match inner.transport.send_bytes(&target, bytes).await {
                        Ok(flow) => {
                            sent_once = true;
                            // Retransmissions and the ACK leave by the same way.
                            target.local = Some(flow.local);
                            target.connection = flow.connection;
                        }
                        Err(e) => {
                            warn!(call_id = &*call_id, remote = %target.remote, error = %e, "request not sent");
                            last_error = Some(e);
                            m.tsx().handle_transport_error(now());
                        }
                    }
                }
                Action::Deliver(r) => {
                    let _ = user.send(Ok(r));
                }
                Action::Timeout => {
                    debug!(call_id = &*call_id, remote = %target.remote, "client transaction timed out");
                    let _ = user.send(Err(TransportError::Timeout));
                }
                Action::TransportError => {
                    let e = last_error.take().unwrap_or(TransportError::Shutdown);
                    let _ = user.send(Err(e));
                }
                Action::Terminated => {
                    lock(&inner.clients).remove(&key);
                    user.close();
                    return;
                }
            }
        }
        let deadline = m.tsx().poll_timeout();
        tokio::select! {
            r = responses.recv() => match r {
                Some(resp) => m.handle_response(now(), resp),
                None => {
                    lock(&inner.clients).remove(&key);
                    user.close();
                    return;
                }
            },
            _ = sleep_until(deadline) => m.tsx().handle_timeout(now()),
        }
    }
}

async fn sleep_until(deadline: Option<std::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
        None => std::future::pending().await,
    }
}
