//! Semantic checks after a file has been read: every problem is collected with its
//! dotted key, nothing stops at the first one (as linkerd's env parsing defers errors).

use crate::types::{PortRange, SipUri};

/// Collects (key, reason) problems; keys are prefixed when a role config is checked
/// inside the all-in-one file.
#[derive(Debug, Default)]
pub struct Issues {
    prefix: String,
    pub(crate) list: Vec<(String, String)>,
}

impl Issues {
    /// A collector whose keys start with `prefix` (e.g. `pcscf.`).
    pub fn with_prefix(prefix: &str) -> Self {
        Issues {
            prefix: prefix.to_owned(),
            list: Vec::new(),
        }
    }

    /// Record a problem with `key` (relative to the prefix).
    pub fn add(&mut self, key: impl AsRef<str>, reason: impl Into<String>) {
        self.list
            .push((format!("{}{}", self.prefix, key.as_ref()), reason.into()));
    }

    /// Move every problem of `other` into `self`.
    pub fn extend(&mut self, other: Issues) {
        self.list.extend(other.list);
    }

    /// Problems so far.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// True when no problem was found.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// `value` must not be empty.
    pub fn non_empty(&mut self, key: &str, value: &str) {
        if value.trim().is_empty() {
            self.add(key, "must not be empty");
        }
    }

    /// A Diameter identity (RFC 6733 §4.3.1 DiameterIdentity: an FQDN).
    pub fn diameter_identity(&mut self, key: &str, value: &str) {
        if value.is_empty() {
            self.add(key, "must not be empty");
        } else if !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
            || value.starts_with('.')
            || value.ends_with('.')
        {
            self.add(
                key,
                format!("{value:?} is not a Diameter identity (FQDN of letters, digits, '-', '.')"),
            );
        }
    }

    /// An inclusive port range with `first <= last` and no port 0.
    pub fn port_range(&mut self, key: &str, r: &PortRange) {
        if r.first == 0 {
            self.add(key, "port 0 is not a usable port");
        }
        if r.first > r.last {
            self.add(
                key,
                format!("first ({}) is greater than last ({})", r.first, r.last),
            );
        }
    }

    /// An optional SIP URI written as a string ("" = unset).
    pub fn optional_sip_uri(&mut self, key: &str, value: &str) {
        if !value.is_empty() {
            if let Err(e) = value.parse::<SipUri>() {
                self.add(key, e);
            }
        }
    }

    /// `database.url` must name a backend sqlx can open.
    pub fn database_url(&mut self, key: &str, url: &str) {
        let ok = ["sqlite:", "postgres://", "postgresql://"]
            .iter()
            .any(|p| url.starts_with(p));
        if !ok {
            self.add(
                key,
                format!("{url:?} is not a database URL (expected sqlite://<file> or postgres://…)"),
            );
        } else if url == "sqlite:" || url == "sqlite://" {
            self.add(key, "sqlite URL names no file");
        }
    }
}
