//! Server transactions (RFC 3261 §17.2): created per new request, kept in a map by
//! key; retransmissions are absorbed and answered with the last response; a timer
//! task runs only while a timer (G, H, I, J, L) is set.

use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;
use ims_sip_core::transaction::{
    Action, ServerInvite, ServerNonInvite, Transaction, TransactionKey,
};
use ims_sip_core::{Message, Method, StatusCode};
use tracing::{debug, warn};

use super::{is_ack, ResponseRouting, TsxInner};
use crate::error::{Result, TransportError};
use crate::flow::{Flow, Incoming, Target, Transport};
use crate::lock;
use crate::via::{response_destination, DEFAULT_PORT};

enum Machine {
    NonInvite(ServerNonInvite),
    Invite(ServerInvite),
}

impl Machine {
    fn tsx(&mut self) -> &mut dyn Transaction {
        match self {
            Machine::NonInvite(m) => m,
            Machine::Invite(m) => m,
        }
    }

    fn poll_timeout(&self) -> Option<std::time::Instant> {
        match self {
            Machine::NonInvite(m) => m.poll_timeout(),
            Machine::Invite(m) => m.poll_timeout(),
        }
    }

    fn handle_request(&mut self, now: std::time::Instant, r: &Message) {
        match self {
            Machine::NonInvite(m) => m.handle_request(now, r),
            Machine::Invite(m) => m.handle_request(now, r),
        }
    }

    fn send_response(&mut self, now: std::time::Instant, s: StatusCode, b: Bytes) {
        match self {
            Machine::NonInvite(m) => m.send_response(now, s, b),
            Machine::Invite(m) => m.send_response(now, s, b),
        }
    }
}

pub(crate) struct Entry {
    machine: Machine,
    dest: Target,
    call_id: Box<str>,
    timer_running: bool,
}

pub(crate) type Shared = Arc<Mutex<Entry>>;

fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

fn drain(e: &mut Entry) -> Vec<Action> {
    let mut v = Vec::new();
    while let Some(a) = e.machine.tsx().poll_action() {
        v.push(a);
    }
    v
}

/// Where responses to `incoming` go.
fn response_target(routing: ResponseRouting, incoming: &Incoming) -> Target {
    let flow = incoming.flow();
    match (routing, incoming.transport) {
        (ResponseRouting::Source, _) => Target::from(flow),
        (ResponseRouting::Via, Transport::Udp) => Target {
            transport: Transport::Udp,
            remote: response_destination(&incoming.message, flow.remote),
            local: Some(flow.local),
            connection: None,
        },
        (ResponseRouting::Via, Transport::Tcp) => {
            // The connection while it lasts; else received + sent-by port (§18.2.2).
            let mut remote = response_destination(&incoming.message, flow.remote);
            if let Some(Ok(via)) = incoming.message.top_via() {
                remote.set_port(via.port.unwrap_or(DEFAULT_PORT));
            }
            Target {
                transport: Transport::Tcp,
                remote,
                local: None,
                connection: flow.connection,
            }
        }
    }
}

/// A request from the transport.
pub(crate) fn on_request(inner: &Arc<TsxInner>, mut incoming: Incoming) {
    let Ok(key) = TransactionKey::server(&incoming.message) else {
        inner.deliver_up(incoming);
        return;
    };
    incoming.server_key = Some(key.clone());
    let msg = &incoming.message;
    let existing = lock(&inner.servers).get(&key).cloned();
    if let Some(entry) = existing {
        let (dest, actions) = {
            let mut e = lock(&entry);
            e.machine.handle_request(now(), msg);
            (e.dest, drain(&mut e))
        };
        debug!(
            call_id = msg.call_id().unwrap_or(""),
            method = msg.method().map(Method::as_str).unwrap_or(""),
            "request matched a server transaction: absorbed"
        );
        spawn_actions(inner, key, entry, dest, actions);
        return;
    }
    if is_ack(msg) {
        // ACK for a 2xx (its own branch) or for a transaction already gone.
        inner.deliver_up(incoming);
        return;
    }
    let reliable = incoming.transport == Transport::Tcp;
    let machine = match msg.method() {
        Some(Method::Invite) => ServerInvite::new(
            msg,
            reliable,
            inner.timers,
            now(),
            inner.options.auto_trying,
        )
        .map(Machine::Invite),
        _ => ServerNonInvite::new(msg, reliable, inner.timers, now()).map(Machine::NonInvite),
    };
    let Ok(machine) = machine else {
        inner.deliver_up(incoming);
        return;
    };
    let dest = response_target(inner.options.response_routing, &incoming);
    let entry = Arc::new(Mutex::new(Entry {
        machine,
        dest,
        call_id: msg.call_id().unwrap_or("").into(),
        timer_running: false,
    }));
    lock(&inner.servers).insert(key.clone(), entry.clone());
    let actions = drain(&mut lock(&entry));
    spawn_actions(inner, key, entry, dest, actions);
    inner.deliver_up(incoming);
}

/// Carries out actions from a synchronous context.
fn spawn_actions(
    inner: &Arc<TsxInner>,
    key: TransactionKey,
    entry: Shared,
    dest: Target,
    actions: Vec<Action>,
) {
    if actions.is_empty() {
        maybe_start_timer(inner, &key, &entry);
        return;
    }
    let inner = inner.clone();
    tokio::spawn(async move {
        let _ = perform(&inner, &key, &entry, dest, actions).await;
        maybe_start_timer(&inner, &key, &entry);
    });
}

/// Sends, removes on termination; returns the result of the last send.
async fn perform(
    inner: &Arc<TsxInner>,
    key: &TransactionKey,
    entry: &Shared,
    dest: Target,
    actions: Vec<Action>,
) -> Option<Result<Flow>> {
    let mut result = None;
    let mut queue = std::collections::VecDeque::from(actions);
    while let Some(a) = queue.pop_front() {
        match a {
            Action::Transmit(bytes) => {
                let r = inner.transport.send_bytes(&dest, bytes).await;
                if let Err(e) = &r {
                    let mut g = lock(entry);
                    warn!(call_id = &*g.call_id, remote = %dest.remote, error = %e, "response not sent");
                    g.machine.tsx().handle_transport_error(now());
                    queue.extend(drain(&mut g));
                }
                result = Some(r);
            }
            Action::Terminated => remove(inner, key, entry),
            Action::Timeout => {
                debug!(
                    call_id = &*lock(entry).call_id,
                    "server transaction timed out (no ACK)"
                )
            }
            Action::TransportError | Action::Deliver(_) => {}
        }
    }
    result
}

fn remove(inner: &TsxInner, key: &TransactionKey, entry: &Shared) {
    let mut map = lock(&inner.servers);
    if map.get(key).is_some_and(|e| Arc::ptr_eq(e, entry)) {
        map.remove(key);
    }
}

fn maybe_start_timer(inner: &Arc<TsxInner>, key: &TransactionKey, entry: &Shared) {
    let fifo = {
        let mut g = lock(entry);
        let Some(deadline) = g.machine.poll_timeout() else {
            return;
        };
        if g.timer_running {
            return;
        }
        g.timer_running = true;
        // A non-INVITE server transaction's only timer is J, always 64·T1 after the
        // final response: deadlines arrive in order, so one queue and one task serve
        // them all (no task per transaction for the 32 s of Timer J).
        matches!(g.machine, Machine::NonInvite(_)).then_some(deadline)
    };
    match fifo {
        Some(deadline) => inner
            .timer_j
            .push(inner, deadline, key.clone(), Arc::downgrade(entry)),
        None => {
            tokio::spawn(timer_task(
                Arc::downgrade(inner),
                key.clone(),
                entry.clone(),
            ));
        }
    }
}

/// Deadline, key and entry of one transaction waiting for Timer J.
type JItem = (std::time::Instant, TransactionKey, Weak<Mutex<Entry>>);

/// The Timer J queue of non-INVITE server transactions (see `maybe_start_timer`).
#[derive(Default)]
pub(crate) struct TimerJQueue {
    queue: Mutex<std::collections::VecDeque<JItem>>,
    wake: tokio::sync::Notify,
    started: std::sync::atomic::AtomicBool,
}

impl TimerJQueue {
    fn push(
        &self,
        inner: &Arc<TsxInner>,
        at: std::time::Instant,
        key: TransactionKey,
        entry: Weak<Mutex<Entry>>,
    ) {
        let was_empty = {
            let mut q = lock(&self.queue);
            q.push_back((at, key, entry));
            q.len() == 1
        };
        if !self.started.swap(true, std::sync::atomic::Ordering::AcqRel) {
            tokio::spawn(timer_j_task(Arc::downgrade(inner)));
        }
        if was_empty {
            self.wake.notify_one();
        }
    }
}

async fn timer_j_task(inner: Weak<TsxInner>) {
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let front = lock(&strong.timer_j.queue).front().map(|x| x.0);
        match front {
            None => {
                // Re-check every second so that a dropped layer ends this task.
                let notified = strong.timer_j.wake.notified();
                let _ = tokio::time::timeout(std::time::Duration::from_secs(1), notified).await;
                continue;
            }
            Some(at) => {
                drop(strong);
                tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
            }
        }
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let now = now();
        loop {
            let item = {
                let mut q = lock(&strong.timer_j.queue);
                match q.front() {
                    Some((at, _, _)) if *at <= now => q.pop_front(),
                    _ => None,
                }
            };
            let Some((_, key, entry)) = item else { break };
            let Some(entry) = entry.upgrade() else {
                continue;
            };
            let terminated = {
                let mut g = lock(&entry);
                g.machine.tsx().handle_timeout(now);
                drain(&mut g);
                g.machine.tsx().is_terminated()
            };
            if terminated {
                remove(&strong, &key, &entry);
            }
        }
    }
}

async fn timer_task(inner: Weak<TsxInner>, key: TransactionKey, entry: Shared) {
    loop {
        let deadline = {
            let mut g = lock(&entry);
            match g.machine.poll_timeout() {
                Some(d) if !g.machine.tsx().is_terminated() => d,
                _ => {
                    g.timer_running = false;
                    return;
                }
            }
        };
        tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)).await;
        let (dest, actions) = {
            let mut g = lock(&entry);
            g.machine.tsx().handle_timeout(now());
            (g.dest, drain(&mut g))
        };
        let Some(inner) = inner.upgrade() else {
            return;
        };
        perform(&inner, &key, &entry, dest, actions).await;
    }
}

/// The upper layer's response to `request`.
pub(crate) async fn respond(
    inner: &Arc<TsxInner>,
    request: &Incoming,
    response: &Message,
) -> Result<Flow> {
    let status = response
        .status()
        .ok_or(TransportError::BadRequest("respond() takes a response"))?;
    let key = match &request.server_key {
        Some(k) => Some(k.clone()),
        None => TransactionKey::server(&request.message).ok(),
    };
    let entry = key
        .as_ref()
        .and_then(|k| lock(&inner.servers).get(k).cloned());
    let (Some(key), Some(entry)) = (key, entry) else {
        // No transaction (ACK, or already terminated): stateless.
        let dest = response_target(inner.options.response_routing, request);
        debug!(
            call_id = response.call_id().unwrap_or(""),
            status = status.as_u16(),
            "responding without a transaction"
        );
        return inner.transport.send(&dest, response).await;
    };
    let (dest, actions) = {
        let mut g = lock(&entry);
        g.machine
            .send_response(now(), status, response.as_bytes().clone());
        (g.dest, drain(&mut g))
    };
    debug!(
        call_id = response.call_id().unwrap_or(""),
        status = status.as_u16(),
        remote = %dest.remote,
        "response in server transaction"
    );
    let r = perform(inner, &key, &entry, dest, actions).await;
    maybe_start_timer(inner, &key, &entry);
    r.unwrap_or(Err(TransportError::BadRequest(
        "the transaction already sent its final response",
    )))
}
