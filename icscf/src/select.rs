//! S-CSCF selection (TS 29.228 §6.3.4 / Annex A, TS 24.229 §5.3.1.2): by Server-Name when
//! the HSS gives one, else by Server-Capabilities against the configured S-CSCFs (every
//! mandatory capability required, most optional ones preferred, Server-Names listed in the
//! capabilities first), else the configured fallback — never "Empty list of S-CSCFs"
//! (FIELD-LESSONS item 10). [`candidates`] gives the whole ordered list the I-CSCF
//! fails over along (TS 24.229 §5.3.1.3).

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

/// Picks the S-CSCF URI for an assignment (the first of [`candidates`]); `None` only
/// when nothing at all is configured and the HSS named none.
pub fn select(
    assignment: &Assignment,
    configured: &[ScscfEntry],
    fallback: &[String],
) -> Option<(String, Selected)> {
    candidates(assignment, configured, fallback)
        .into_iter()
        .next()
}

/// Every S-CSCF that may serve an assignment, best first (TS 24.229 §5.3.1.3: when
/// the chosen S-CSCF does not answer, the I-CSCF may select another one):
/// - Server-Name: that one only (the HSS assigned it).
/// - Server-Capabilities: the Server-Names listed in the capabilities, then every
///   configured S-CSCF that has all mandatory capabilities, most optional ones first
///   (configuration order breaks ties); the fallback list when none matches.
/// - Neither: the fallback list in order, else the configured S-CSCFs in order.
pub fn candidates(
    assignment: &Assignment,
    configured: &[ScscfEntry],
    fallback: &[String],
) -> Vec<(String, Selected)> {
    match assignment {
        Assignment::ServerName(name) if !name.is_empty() => {
            vec![(name.clone(), Selected::ServerName)]
        }
        Assignment::Capabilities(caps) => {
            let by_caps = by_capabilities(caps, configured);
            if by_caps.is_empty() {
                fallback_of(configured, fallback)
            } else {
                by_caps
                    .into_iter()
                    .map(|u| (u, Selected::Capabilities))
                    .collect()
            }
        }
        _ => fallback_of(configured, fallback),
    }
}

fn fallback_of(configured: &[ScscfEntry], fallback: &[String]) -> Vec<(String, Selected)> {
    let list: Vec<String> = if fallback.is_empty() {
        configured.iter().map(|e| e.uri.clone()).collect()
    } else {
        fallback.to_vec()
    };
    list.into_iter().map(|u| (u, Selected::Fallback)).collect()
}

fn by_capabilities(caps: &ServerCapabilities, configured: &[ScscfEntry]) -> Vec<String> {
    let mut out: Vec<String> = caps.server_names.clone();
    let mut capable: Vec<(usize, usize, &ScscfEntry)> = configured
        .iter()
        .enumerate()
        .filter(|(_, e)| caps.mandatory.iter().all(|m| e.capabilities.contains(m)))
        .map(|(i, e)| {
            let score = caps
                .optional
                .iter()
                .filter(|o| e.capabilities.contains(o))
                .count();
            (score, i, e)
        })
        .collect();
    // Most optional capabilities first; configuration order breaks ties.
    capable.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, _, e) in capable {
        if !out.contains(&e.uri) {
            out.push(e.uri.clone());
        }
    }
    out
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

    #[test]
    fn candidates_in_failover_order() {
        let caps = ServerCapabilities {
            mandatory: vec![1],
            optional: vec![3],
            server_names: vec!["sip:listed".into()],
        };
        let c: Vec<String> = candidates(&Assignment::Capabilities(caps), &entries(), &[])
            .into_iter()
            .map(|c| c.0)
            .collect();
        assert_eq!(
            c,
            ["sip:listed", "sip:s2.test", "sip:s3.test", "sip:s1.test"]
        );
        let c = candidates(
            &Assignment::ServerName("sip:one".into()),
            &entries(),
            &["sip:fb".into()],
        );
        assert_eq!(c, vec![("sip:one".to_string(), Selected::ServerName)]);
        let c = candidates(
            &Assignment::Nothing,
            &entries(),
            &["sip:fb1".into(), "sip:fb2".into()],
        );
        assert_eq!(c.len(), 2);
        assert_eq!(c[1].0, "sip:fb2");
    }
}
