//! S-CSCF selection (TS 29.228 §6.3.4 / Annex A, TS 24.229 §5.3.1.2): by Server-Name when
//! the HSS gives one, else by Server-Capabilities against the configured S-CSCFs (every
//! mandatory capability required, most optional ones preferred, Server-Names listed in the
//! capabilities first), else the configured fallback — never "Empty list of S-CSCFs"
//! (FIELD-LESSONS item 10).

use crate::cx::{Assignment, ServerCapabilities};

/// One configured S-CSCF and its capabilities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScscfEntry {
    /// SIP URI of the S-CSCF.
    pub uri: String,
    /// Capability values it has.
    pub capabilities: Vec<u32>,
}

/// Where a selection came from (logged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selected {
    /// The HSS named it (Server-Name).
    ServerName,
    /// Matched on Server-Capabilities.
    Capabilities,
    /// The configured fallback.
    Fallback,
}

/// Picks the S-CSCF URI for an assignment; `None` only when nothing at all is
/// configured and the HSS named none.
pub fn select(
    assignment: &Assignment,
    configured: &[ScscfEntry],
    fallback: &[String],
) -> Option<(String, Selected)> {
    match assignment {
        Assignment::ServerName(name) if !name.is_empty() => {
            Some((name.clone(), Selected::ServerName))
        }
        Assignment::Capabilities(caps) => by_capabilities(caps, configured)
            .map(|u| (u, Selected::Capabilities))
            .or_else(|| fallback_of(configured, fallback)),
        _ => fallback_of(configured, fallback),
    }
}

fn fallback_of(configured: &[ScscfEntry], fallback: &[String]) -> Option<(String, Selected)> {
    fallback
        .first()
        .cloned()
        .or_else(|| configured.first().map(|e| e.uri.clone()))
        .map(|u| (u, Selected::Fallback))
}

fn by_capabilities(caps: &ServerCapabilities, configured: &[ScscfEntry]) -> Option<String> {
    if let Some(name) = caps.server_names.first() {
        return Some(name.clone());
    }
    configured
        .iter()
        .enumerate()
        .filter(|(_, e)| caps.mandatory.iter().all(|m| e.capabilities.contains(m)))
        // Most optional capabilities first; configuration order breaks ties.
        .max_by_key(|(i, e)| {
            let score = caps
                .optional
                .iter()
                .filter(|o| e.capabilities.contains(o))
                .count();
            (score, std::cmp::Reverse(*i))
        })
        .map(|(_, e)| e.uri.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries() -> Vec<ScscfEntry> {
        vec![
            ScscfEntry {
                uri: "sip:s1.test".into(),
                capabilities: vec![1],
            },
            ScscfEntry {
                uri: "sip:s2.test".into(),
                capabilities: vec![1, 2, 3],
            },
            ScscfEntry {
                uri: "sip:s3.test".into(),
                capabilities: vec![1, 3],
            },
        ]
    }

    #[test]
    fn server_name_wins() {
        let (u, s) = select(
            &Assignment::ServerName("sip:hss-chosen".into()),
            &entries(),
            &["sip:fb".into()],
        )
        .unwrap();
        assert_eq!((u.as_str(), s), ("sip:hss-chosen", Selected::ServerName));
    }

    #[test]
    fn capabilities_mandatory_then_most_optional() {
        let caps = ServerCapabilities {
            mandatory: vec![1],
            optional: vec![2, 3],
            server_names: vec![],
        };
        let (u, s) = select(&Assignment::Capabilities(caps), &entries(), &[]).unwrap();
        assert_eq!((u.as_str(), s), ("sip:s2.test", Selected::Capabilities));
        let caps = ServerCapabilities {
            mandatory: vec![3],
            optional: vec![],
            server_names: vec![],
        };
        let (u, _) = select(&Assignment::Capabilities(caps), &entries(), &[]).unwrap();
        assert_eq!(u, "sip:s2.test", "first configured among equals");
    }

    #[test]
    fn no_match_or_nothing_uses_fallback() {
        let caps = ServerCapabilities {
            mandatory: vec![9],
            optional: vec![],
            server_names: vec![],
        };
        let (u, s) = select(
            &Assignment::Capabilities(caps),
            &entries(),
            &["sip:fb".into()],
        )
        .unwrap();
        assert_eq!((u.as_str(), s), ("sip:fb", Selected::Fallback));
        let (u, _) = select(&Assignment::Nothing, &entries(), &[]).unwrap();
        assert_eq!(u, "sip:s1.test");
        assert!(select(&Assignment::Nothing, &[], &[]).is_none());
    }
}
