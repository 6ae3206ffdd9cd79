//! Overload control by admission: a limit on the number of *new* requests a role
//! processes at once; past it, a new request is answered at once with
//! `503 Service Unavailable` and `Retry-After` (RFC 3261 §21.5.4: "The server is
//! temporarily unable to process the request due to a temporary overloading …
//! the server MAY indicate when the client should retry the request in a
//! Retry-After header field"; §20.33 Retry-After). A UE waits that long before it
//! tries again (TS 24.229 §5.1.1.2 for REGISTER; §5.1.2.2: an initial SUBSCRIBE
//! answered 503 is not retried before Retry-After), so load is shed at the edge
//! instead of queueing until every transaction times out.
//!
//! Only out-of-dialog new requests ([`is_new_request`]) count and can be refused:
//! responses, ACK, CANCEL and requests inside a dialog (a To tag) always pass —
//! refusing a BYE or a re-INVITE would leave state behind and add load.
//!
//! The counter is I/O-free: [`Admission::admit`] returns an RAII [`Admitted`] place
//! that the role holds while it processes the request (until its final response is
//! sent); dropping it frees the place. Refusals are counted; a role reports them at
//! most once per [`REPORT_INTERVAL`] with [`Admission::log_refusals`], so an overload
//! gives one WARN line per second, not one per refused request.
//!
//! A limit of 0 means no limit (every new request is admitted, the count is kept).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ims_config::SipConfig;
use ims_sip_core::{Message, Method};

/// How often a role should call [`Admission::log_refusals`].
pub const REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// Whether `msg` is a request that starts something new: not a response, not ACK or
/// CANCEL (they belong to an existing transaction), and no To tag (RFC 3261 §12.2:
/// a request within a dialog carries the remote tag in To).
pub fn is_new_request(msg: &Message) -> bool {
    match msg.method() {
        None | Some(Method::Ack) | Some(Method::Cancel) => false,
        Some(_) => !matches!(
            msg.to_addr(),
            Some(Ok(to)) if to.tag().is_some_and(|t| !t.is_empty())
        ),
    }
}

#[derive(Debug)]
struct Counter {
    limit: usize,
    retry_after_s: u32,
    pending: AtomicUsize,
    refused_total: AtomicU64,
    refused_unreported: AtomicU64,
}

/// The admission counter of one role (cheap to clone; clones share the count).
#[derive(Debug, Clone)]
pub struct Admission {
    inner: Arc<Counter>,
}

/// A place taken by an admitted request; dropping it frees the place.
#[derive(Debug)]
#[must_use = "the place is freed when this is dropped"]
pub struct Admitted {
    inner: Arc<Counter>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.inner.pending.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What to do with a message from the transaction layer.
#[derive(Debug)]
pub enum Admit {
    /// Not a new request (response, ACK, CANCEL, in-dialog): never refused, not
    /// counted.
    Exempt,
    /// A new request within the limit: process it while holding the place.
    Admitted(Admitted),
    /// A new request over the limit: answer `503` with
    /// `Retry-After: `[`Admission::retry_after_s`].
    Refused,
}

impl Admit {
    /// Runs the decision as a task: `handle(item)` (holding the place until it ends,
    /// when admitted) or `refuse(item)` (the role's 503) — the one dispatch step every
    /// role shares.
    pub fn spawn<T, H, R>(self, item: T, handle: impl FnOnce(T) -> H, refuse: impl FnOnce(T) -> R)
    where
        H: std::future::Future<Output = ()> + Send + 'static,
        R: std::future::Future<Output = ()> + Send + 'static,
    {
        match self {
            Admit::Exempt => {
                tokio::spawn(handle(item));
            }
            Admit::Admitted(place) => {
                let work = handle(item);
                tokio::spawn(async move {
                    work.await;
                    drop(place);
                });
            }
            Admit::Refused => {
                tokio::spawn(refuse(item));
            }
        }
    }
}

impl Admission {
    /// At most `limit` new requests at once (0: no limit); refusals carry
    /// `Retry-After: retry_after_s`.
    pub fn new(limit: usize, retry_after_s: u32) -> Self {
        Admission {
            inner: Arc::new(Counter {
                limit,
                retry_after_s,
                pending: AtomicUsize::new(0),
                refused_total: AtomicU64::new(0),
                refused_unreported: AtomicU64::new(0),
            }),
        }
    }

    /// From `[sip] max_pending_requests` and `overload_retry_after_s`.
    pub fn from_config(sip: &SipConfig) -> Self {
        Admission::new(sip.max_pending_requests, sip.overload_retry_after_s)
    }

    /// Takes a place if one is free (always with limit 0); `None` at the limit.
    /// Does not count a refusal (see [`Admission::admit`]).
    pub fn try_admit(&self) -> Option<Admitted> {
        let c = &self.inner;
        if c.limit == 0 {
            c.pending.fetch_add(1, Ordering::AcqRel);
        } else {
            c.pending
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < c.limit).then_some(n + 1)
                })
                .ok()?;
        }
        Some(Admitted {
            inner: self.inner.clone(),
        })
    }

    /// The decision for `msg`: exempt, admitted (a place taken) or refused (counted).
    pub fn admit(&self, msg: &Message) -> Admit {
        if !is_new_request(msg) {
            return Admit::Exempt;
        }
        match self.try_admit() {
            Some(place) => Admit::Admitted(place),
            None => {
                self.inner.refused_total.fetch_add(1, Ordering::Relaxed);
                self.inner
                    .refused_unreported
                    .fetch_add(1, Ordering::Relaxed);
                Admit::Refused
            }
        }
    }

    /// The configured limit (0: none).
    pub fn limit(&self) -> usize {
        self.inner.limit
    }

    /// `Retry-After` seconds of a refusal.
    pub fn retry_after_s(&self) -> u32 {
        self.inner.retry_after_s
    }

    /// New requests being processed now.
    pub fn pending(&self) -> usize {
        self.inner.pending.load(Ordering::Acquire)
    }

    /// Requests refused since the start.
    pub fn refused_total(&self) -> u64 {
        self.inner.refused_total.load(Ordering::Relaxed)
    }

    /// Requests refused since the last call (and resets that count).
    pub fn take_refused(&self) -> u64 {
        self.inner.refused_unreported.swap(0, Ordering::Relaxed)
    }

    /// One WARN line when requests were refused since the last call, naming the
    /// `role` (several roles share a process in the all-in-one binary); call it every
    /// [`REPORT_INTERVAL`]. Returns the number reported.
    pub fn log_refusals(&self, role: &str) -> u64 {
        let n = self.take_refused();
        if n > 0 {
            tracing::warn!(
                role,
                refused = n,
                limit = self.limit(),
                pending = self.pending(),
                refused_total = self.refused_total(),
                "{role} overloaded: {n} requests refused with 503 in the last second (limit {} pending)",
                self.limit()
            );
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, to_tag: Option<&str>) -> Message {
        let tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
        Message::parse(format!(
            "{method} sip:bob@ims.test SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx\r\n\
Max-Forwards: 70\r\n\
From: <sip:alice@ims.test>;tag=a\r\n\
To: <sip:bob@ims.test>{tag}\r\n\
Call-ID: c1\r\n\
CSeq: 1 {method}\r\n\
Content-Length: 0\r\n\r\n"
        ))
        .expect("test request parses")
    }

    #[test]
    fn limit_reached_gives_none_and_drop_frees_a_place() {
        let a = Admission::new(2, 5);
        let p1 = a.try_admit().expect("first place");
        let p2 = a.try_admit().expect("second place");
        assert_eq!(a.pending(), 2);
        assert!(a.try_admit().is_none(), "at the limit");
        drop(p1);
        assert_eq!(a.pending(), 1);
        let p3 = a.try_admit().expect("a place came back");
        assert!(a.try_admit().is_none());
        drop((p2, p3));
        assert_eq!(a.pending(), 0);
    }

    #[test]
    fn limit_zero_is_unlimited_but_counts() {
        let a = Admission::new(0, 5);
        let places: Vec<Admitted> = (0..1000).filter_map(|_| a.try_admit()).collect();
        assert_eq!(places.len(), 1000);
        assert_eq!(a.pending(), 1000);
        drop(places);
        assert_eq!(a.pending(), 0);
    }

    #[test]
    fn clones_share_the_count() {
        let a = Admission::new(1, 5);
        let b = a.clone();
        let _p = a.try_admit().expect("place");
        assert!(b.try_admit().is_none());
    }

    #[test]
    fn only_new_requests_are_counted_or_refused() {
        let a = Admission::new(1, 7);
        let Admit::Admitted(_place) = a.admit(&request("REGISTER", None)) else {
            panic!("first REGISTER admitted");
        };
        for m in ["REGISTER", "INVITE", "SUBSCRIBE", "MESSAGE", "OPTIONS"] {
            assert!(
                matches!(a.admit(&request(m, None)), Admit::Refused),
                "{m} without To tag refused at the limit"
            );
        }
        for (m, tag) in [
            ("BYE", Some("b")),
            ("INVITE", Some("b")),
            ("NOTIFY", Some("b")),
            ("ACK", None),
            ("CANCEL", None),
        ] {
            assert!(
                matches!(a.admit(&request(m, tag)), Admit::Exempt),
                "{m} (To tag {tag:?}) always passes"
            );
        }
        let resp = Message::parse(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx\r\n\
From: <sip:a@b>;tag=1\r\nTo: <sip:b@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\
Content-Length: 0\r\n\r\n",
        )
        .expect("response parses");
        assert!(matches!(a.admit(&resp), Admit::Exempt));
        assert_eq!(a.pending(), 1, "exempt messages take no place");
        assert_eq!(a.refused_total(), 5);
        assert_eq!(a.retry_after_s(), 7);
    }

    #[test]
    fn refusals_are_reported_once() {
        let a = Admission::new(1, 5);
        let _p = a.try_admit();
        for _ in 0..3 {
            assert!(matches!(a.admit(&request("MESSAGE", None)), Admit::Refused));
        }
        assert_eq!(a.log_refusals("test"), 3);
        assert_eq!(a.log_refusals("test"), 0, "nothing new to report");
        assert_eq!(a.refused_total(), 3);
    }

    #[test]
    fn admits_concurrently_up_to_the_limit() {
        let a = Admission::new(50, 5);
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let a = a.clone();
                std::thread::spawn(move || {
                    (0..100).filter_map(|_| a.try_admit()).collect::<Vec<_>>()
                })
            })
            .collect();
        let places: Vec<Admitted> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect();
        assert_eq!(places.len(), 50, "never more than the limit");
        drop(places);
        assert_eq!(a.pending(), 0);
    }
}
