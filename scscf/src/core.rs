//! The sans-I/O heart of the S-CSCF: shared registration state, pending challenges and
//! subscriptions, with the Cx calls injected through [`Cx`]. Sockets, timers and the
//! store writer live in [`crate::service`]; this module only takes parsed requests
//! (`ims_sip_core::Message`) and `now` (UNIX seconds), and returns the response and the
//! [`Notify`]s to send.

use crate::cx::{Cx, CxError, SarAnswer, SarRequest};
use crate::model::{Registration, Subscription};
use crate::notifier::Notify;
use crate::settings::Settings;
use crate::store::StoreOp;
use ims_sip_core::builder::ResponseBuilder;
use ims_sip_core::{Message, StatusCode};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// The secret a pending challenge is checked against.
#[derive(Clone)]
pub(crate) enum Secret {
    /// XRES of an AKA vector (RFC 3310: the digest password).
    Xres(Vec<u8>),
    /// HA1 hex from the HSS (SIP Digest).
    Ha1(String),
}

/// One issued nonce (TS 33.203 §6.1: bound to the IMPI that asked).
#[derive(Clone)]
pub(crate) struct Pending {
    pub impi: String,
    pub realm: String,
    pub secret: Secret,
    pub expires: Instant,
    /// Highest `nc` seen after a successful check (replay protection with qop).
    pub last_nc: Option<u32>,
    /// Set once a response without qop was accepted (one-time use).
    pub used_without_qop: bool,
}

/// Ids by the time they fall due, so the periodic tick touches only what expires
/// instead of scanning every registration. Entries go stale when a registration is
/// refreshed or removed: whoever pops them checks the real expiry (lazy deletion), and
/// every change of an expiry pushes a new entry.
#[derive(Default)]
pub(crate) struct ExpiryQueue(BinaryHeap<Reverse<(u64, String)>>);

impl ExpiryQueue {
    /// `id` is due at `at` (UNIX seconds).
    pub(crate) fn push(&mut self, at: u64, id: &str) {
        self.0.push(Reverse((at, id.to_string())));
    }

    /// The ids with an entry due at or before `now`, each once.
    pub(crate) fn pop_due(&mut self, now: u64) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        while self.0.peek().is_some_and(|Reverse((at, _))| *at <= now) {
            if let Some(Reverse((_, id))) = self.0.pop() {
                out.push(id);
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// Mutable state behind one lock, never held across an `.await`.
#[derive(Default)]
pub(crate) struct State {
    pub regs: HashMap<String, Registration>,
    pub by_impu: HashMap<String, String>,
    pub challenges: HashMap<String, Pending>,
    pub subs: HashMap<String, Subscription>,
    /// Subscription ids per subscribed IMPU.
    pub subs_by_aor: HashMap<String, Vec<String>>,
    /// When registrations next have a contact expiring.
    pub reg_expiry: ExpiryQueue,
    /// When subscriptions expire.
    pub sub_expiry: ExpiryQueue,
}

impl State {
    /// Stores `reg` and schedules its earliest contact expiry.
    pub(crate) fn put_reg(&mut self, reg: Registration) {
        if let Some(at) = reg.contacts.iter().map(|c| c.expires_at).min() {
            self.reg_expiry.push(at, &reg.id);
        }
        self.regs.insert(reg.id.clone(), reg);
    }

    /// Schedules the expiry of subscription `id` (after its `expires_at` changed).
    pub(crate) fn sub_expires(&mut self, id: &str, at: u64) {
        self.sub_expiry.push(at, id);
    }

    pub(crate) fn add_sub(&mut self, s: Subscription) {
        self.sub_expiry.push(s.expires_at, &s.id);
        let ids = self.subs_by_aor.entry(s.aor.clone()).or_default();
        if !ids.contains(&s.id) {
            ids.push(s.id.clone());
        }
        self.subs.insert(s.id.clone(), s);
    }

    pub(crate) fn remove_sub(&mut self, id: &str) -> Option<Subscription> {
        let s = self.subs.remove(id)?;
        if let Some(ids) = self.subs_by_aor.get_mut(&s.aor) {
            ids.retain(|i| i != id);
            if ids.is_empty() {
                self.subs_by_aor.remove(&s.aor);
            }
        }
        Some(s)
    }
}

/// Result of handling one request: the final response and NOTIFYs to send after it.
#[derive(Debug)]
pub struct Outcome {
    /// Final response to the request.
    pub response: Message,
    /// In-dialog NOTIFYs (the transport side adds the Via).
    pub notifies: Vec<Notify>,
}

impl Outcome {
    /// The response alone.
    pub fn response(response: Message) -> Outcome {
        Outcome {
            response,
            notifies: Vec::new(),
        }
    }

    /// Status code of the response (0 if it is not a response).
    pub fn code(&self) -> u16 {
        self.response.status().map(StatusCode::as_u16).unwrap_or(0)
    }
}

/// Finishes a response to `req`. The builder copies lines of a request that parsed and
/// adds values the core wrote, so indexing it cannot fail in practice; if it does, a
/// bare 500 goes out instead (and in the impossible worst case the request itself,
/// which the transaction layer refuses to send, so nothing malformed leaves).
pub(crate) fn respond(b: ResponseBuilder<'_>, req: &Message) -> Message {
    match b.build_message() {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(call_id = req.call_id().unwrap_or("-"), error = %e, "response does not index: 500 instead");
            ResponseBuilder::new(req, StatusCode::SERVER_INTERNAL_ERROR)
                .build_message()
                .unwrap_or_else(|_| req.clone())
        }
    }
}

/// The registrar / authenticator / notifier core.
pub struct Core {
    pub(crate) settings: Settings,
    pub(crate) cx: Arc<dyn Cx>,
    pub(crate) state: Mutex<State>,
    pub(crate) store_tx: Option<tokio::sync::mpsc::Sender<StoreOp>>,
    /// Striped per-IMPU locks serialising binding updates (SAR included), so concurrent
    /// REGISTER / de-REGISTER for one IMPU apply one after the other.
    stripes: Vec<tokio::sync::Mutex<()>>,
}

impl Core {
    /// A core with empty state.
    pub fn new(
        settings: Settings,
        cx: Arc<dyn Cx>,
        store_tx: Option<tokio::sync::mpsc::Sender<StoreOp>>,
    ) -> Core {
        Core {
            settings,
            cx,
            state: Mutex::new(State::default()),
            store_tx,
            stripes: (0..256).map(|_| tokio::sync::Mutex::new(())).collect(),
        }
    }

    /// The update lock of one IMPU.
    pub(crate) async fn lock_impu(&self, impu: &str) -> tokio::sync::MutexGuard<'_, ()> {
        let i = (crate::model::fnv64(&[impu]) % self.stripes.len() as u64) as usize;
        self.stripes[i].lock().await
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Loads persisted registrations and subscriptions (after a restart).
    pub fn restore(&self, regs: Vec<Registration>, subs: Vec<Subscription>) {
        let mut st = self.lock();
        for r in regs {
            for i in &r.impus {
                st.by_impu.insert(i.clone(), r.id.clone());
            }
            st.put_reg(r);
        }
        for s in subs {
            st.add_sub(s);
        }
    }

    /// The registration serving `impu`, if registered (a copy).
    pub fn registration(&self, impu: &str) -> Option<Registration> {
        let st = self.lock();
        st.by_impu.get(impu).and_then(|id| st.regs.get(id)).cloned()
    }

    /// Number of registrations (implicit registration sets) held.
    pub fn registration_count(&self) -> usize {
        self.lock().regs.len()
    }

    /// The active reg-event subscriptions (copies).
    pub fn subscriptions(&self) -> Vec<Subscription> {
        self.lock().subs.values().cloned().collect()
    }

    /// Enqueues store writes (bounded queue: waits when the writer is behind).
    pub(crate) async fn persist(&self, ops: Vec<StoreOp>) {
        if let Some(tx) = &self.store_tx {
            for op in ops {
                if tx.send(op).await.is_err() {
                    tracing::error!("store writer has stopped; registration state not persisted");
                    return;
                }
            }
        }
    }

    pub(crate) async fn cx_sar(&self, req: SarRequest) -> Result<SarAnswer, CxError> {
        match tokio::time::timeout(self.settings.hss_timeout, self.cx.sar(req)).await {
            Ok(r) => r,
            Err(_) => Err(CxError::Timeout),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ExpiryQueue;

    #[test]
    fn expiry_queue_pops_due_ids_once_in_time_order() {
        let mut q = ExpiryQueue::default();
        q.push(20, "b");
        q.push(10, "a");
        q.push(15, "a");
        q.push(30, "c");
        assert!(q.pop_due(9).is_empty());
        assert_eq!(q.pop_due(20), vec!["a".to_string(), "b".to_string()]);
        assert!(q.pop_due(29).is_empty());
        assert_eq!(q.pop_due(100), vec!["c".to_string()]);
        assert!(q.pop_due(u64::MAX).is_empty());
    }
}
