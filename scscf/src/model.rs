//! Registration state of the S-CSCF (TS 24.229 §5.4.1.2, RFC 3261 §10.3): one
//! [`Registration`] per implicit registration set with its shared contact bindings, and
//! reg-event subscription dialogs (RFC 6665 §4.1, RFC 3680).

/// Stable 64-bit FNV-1a hash, for ids that must not change across restarts.
pub fn fnv64(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.as_bytes().iter().chain(std::iter::once(&0u8)) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The reg-event `event` attribute of a contact (RFC 3680 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactEvent {
    /// First registration of the AOR.
    Registered,
    /// New contact added to an existing registration.
    Created,
    /// Re-registration.
    Refreshed,
    /// Expiry shortened.
    Shortened,
    /// Timed out.
    Expired,
    /// Removed by the network, may re-register.
    Deactivated,
    /// Removed by the user.
    Unregistered,
    /// Removed by the network, must not re-register.
    Rejected,
}

impl ContactEvent {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            ContactEvent::Registered => "registered",
            ContactEvent::Created => "created",
            ContactEvent::Refreshed => "refreshed",
            ContactEvent::Shortened => "shortened",
            ContactEvent::Expired => "expired",
            ContactEvent::Deactivated => "deactivated",
            ContactEvent::Unregistered => "unregistered",
            ContactEvent::Rejected => "rejected",
        }
    }

    /// Parses the attribute value (store round trip).
    pub fn parse(s: &str) -> ContactEvent {
        match s {
            "created" => ContactEvent::Created,
            "refreshed" => ContactEvent::Refreshed,
            "shortened" => ContactEvent::Shortened,
            "expired" => ContactEvent::Expired,
            "deactivated" => ContactEvent::Deactivated,
            "unregistered" => ContactEvent::Unregistered,
            "rejected" => ContactEvent::Rejected,
            _ => ContactEvent::Registered,
        }
    }

    /// `true` for events that end the contact.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            ContactEvent::Expired
                | ContactEvent::Deactivated
                | ContactEvent::Unregistered
                | ContactEvent::Rejected
        )
    }
}

/// One contact binding (RFC 3261 §10.3; RFC 5626 `+sip.instance`/`reg-id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// Binding key: `instance` + `reg-id` when given, else the URI.
    pub key: String,
    /// Contact URI.
    pub uri: String,
    /// Contact header parameters other than `expires`, as `;a=b` text, echoed in the 200.
    pub params: String,
    /// `+sip.instance` (unquoted).
    pub instance: Option<String>,
    /// `reg-id`.
    pub reg_id: Option<u32>,
    /// Expiry, UNIX seconds.
    pub expires_at: u64,
    /// `Path` of the REGISTER that made/refreshed it.
    pub path: Vec<String>,
    /// Call-ID of that REGISTER.
    pub call_id: String,
    /// CSeq of that REGISTER.
    pub cseq: u32,
    /// Last reg-event event for this contact.
    pub event: ContactEvent,
}

impl Contact {
    /// Seconds left at `now`.
    pub fn remaining(&self, now: u64) -> u64 {
        self.expires_at.saturating_sub(now)
    }
}

/// The registration of one implicit registration set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// Store key: the IMPU registered first.
    pub id: String,
    /// User-Name used with the HSS.
    pub impi: String,
    /// The IMPUs of the set, the registered one first (P-Associated-URI order).
    pub impus: Vec<String>,
    /// Shared bindings.
    pub contacts: Vec<Contact>,
}

/// A reg-event subscription dialog; the S-CSCF is the notifier (UAS of the SUBSCRIBE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// Store key: Call-ID + tags.
    pub id: String,
    /// The IMPU subscribed to.
    pub aor: String,
    /// Dialog Call-ID.
    pub call_id: String,
    /// Our tag (To tag of the SUBSCRIBE).
    pub local_tag: String,
    /// Subscriber's tag (From tag).
    pub remote_tag: String,
    /// To URI of the SUBSCRIBE (our From in NOTIFY), as name-addr without tag.
    pub local_uri: String,
    /// From URI of the SUBSCRIBE (our To in NOTIFY), without tag.
    pub remote_uri: String,
    /// Contact of the subscriber: the NOTIFY Request-URI.
    pub remote_target: String,
    /// Record-Route of the SUBSCRIBE in received order: the NOTIFY Route set.
    pub route_set: Vec<String>,
    /// Last CSeq we used in this dialog.
    pub local_cseq: u32,
    /// Next reginfo `version` (RFC 3680 §5.1: starts at 0, +1 per NOTIFY).
    pub version: u32,
    /// Expiry, UNIX seconds.
    pub expires_at: u64,
}

impl Subscription {
    /// Dialog key from Call-ID and tags.
    pub fn dialog_id(call_id: &str, local_tag: &str, remote_tag: &str) -> String {
        format!("{call_id};{local_tag};{remote_tag}")
    }
}
