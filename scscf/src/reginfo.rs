//! The `application/reginfo+xml` document of the reg event package (RFC 3680 §5.3,
//! TS 24.229 §5.4.2.1.2): always a full-state document listing every IMPU of the
//! implicit registration set, each with the set's shared contacts.

use crate::model::{fnv64, Contact, ContactEvent};
use std::fmt::Write as _;

/// Content-Type of the NOTIFY body.
pub const CONTENT_TYPE: &str = "application/reginfo+xml";

/// A contact as it appears in one document.
#[derive(Debug, Clone)]
pub struct ContactView<'a> {
    /// The binding.
    pub contact: &'a Contact,
    /// Event to report (for removed contacts: the terminal event).
    pub event: ContactEvent,
}

/// Escapes text for XML attributes and content.
pub fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            _ => o.push(c),
        }
    }
    o
}

/// The `id` of a `<registration>` (stable across restarts).
pub fn registration_id(aor: &str) -> String {
    format!("a{:016x}", fnv64(&["reg", aor]))
}

/// The `id` of a `<contact>` (stable across restarts, unique per AOR and binding).
pub fn contact_id(aor: &str, key: &str) -> String {
    format!("c{:016x}", fnv64(&["contact", aor, key]))
}

/// Renders a full-state reginfo document.
pub fn render(version: u32, impus: &[String], contacts: &[ContactView<'_>], now: u64) -> String {
    let mut x = String::with_capacity(256 + 200 * impus.len() * (contacts.len() + 1));
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<reginfo xmlns=\"urn:ietf:params:xml:ns:reginfo\" version=\"{version}\" state=\"full\">"
    );
    let active = contacts.iter().any(|c| !c.event.is_terminal());
    for aor in impus {
        let _ = writeln!(
            x,
            "  <registration aor=\"{}\" id=\"{}\" state=\"{}\">",
            xml_escape(aor),
            registration_id(aor),
            if active { "active" } else { "terminated" }
        );
        for c in contacts {
            let terminal = c.event.is_terminal();
            let _ = writeln!(
                x,
                "    <contact id=\"{}\" state=\"{}\" event=\"{}\" expires=\"{}\">",
                contact_id(aor, &c.contact.key),
                if terminal { "terminated" } else { "active" },
                c.event.as_str(),
                if terminal {
                    0
                } else {
                    c.contact.remaining(now)
                }
            );
            let _ = writeln!(x, "      <uri>{}</uri>", xml_escape(&c.contact.uri));
            if let Some(inst) = &c.contact.instance {
                let _ = writeln!(
                    x,
                    "      <unknown-param name=\"+sip.instance\">{}</unknown-param>",
                    xml_escape(inst)
                );
            }
            x.push_str("    </contact>\n");
        }
        x.push_str("  </registration>\n");
    }
    x.push_str("</reginfo>\n");
    x
}
