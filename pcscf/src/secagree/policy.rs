//! The sec-agree decision and checks (TS 33.203 §7.2, §7.4; RFC 3329 §2.3.1; TS 24.229
//! §5.2.2): on an unprotected REGISTER, the first configured (alg, ealg) pair the UE's
//! `Security-Client` offers (or the policy for a UE without one: register unprotected
//! or 421); on a protected REGISTER, its `Security-Verify` must echo the
//! `Security-Server` of the set it came through, and when it answers that set's
//! challenge its `Security-Client` must be unchanged (downgrade protection).

use ims_ipsec::{
    check_security_client_unchanged, check_security_verify, choose_offer, format_security_header,
    parse_offers, parse_security_header, KernelSupport, SecMechanism, VerifyError,
};

use super::{GmSecurity, SaSet};

/// What an unprotected REGISTER gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Initial {
    /// No sec-agree (UE sent no Security-Client and the policy allows it).
    Unprotected,
    /// Go on; build SAs on the 401 for this offer.
    Offer {
        /// Chosen offer.
        offer: ims_ipsec::IpsecOffer,
        /// The whole Security-Client, kept for the downgrade check.
        client: Vec<SecMechanism>,
    },
    /// Refuse with this status and reason.
    Refuse(u16, String),
}

impl GmSecurity {
    /// The decision on an unprotected REGISTER (TS 33.203 §7.2, RFC 3329 §2.3.1).
    pub fn initial(&self, security_client: Option<&str>, ue: &str) -> Initial {
        let Some(value) = security_client.filter(|v| !v.trim().is_empty()) else {
            return if self.allow_unprotected {
                tracing::info!(%ue, "no Security-Client: registering without IPsec (allowed by policy)");
                Initial::Unprotected
            } else {
                Initial::Refuse(
                    421,
                    "Extension Required (sec-agree: Security-Client missing)".into(),
                )
            };
        };
        let offers = match parse_offers(value) {
            Ok(o) => o,
            Err(e) => return Initial::Refuse(400, format!("Bad Request (Security-Client: {e})")),
        };
        match choose_offer(&offers, &self.policy, &KernelSupport::all()) {
            Ok(choice) => {
                tracing::info!(%ue, choice = %choice, "sec-agree offer chosen");
                Initial::Offer {
                    offer: choice.offer,
                    client: offers.into_iter().filter_map(Result::ok).collect(),
                }
            }
            Err(e) => {
                tracing::info!(%ue, error = %e, "no acceptable sec-agree offer");
                Initial::Refuse(
                    494,
                    "Security Agreement Required (no acceptable offer)".into(),
                )
            }
        }
    }

    /// `Security-Server` value for a set.
    pub fn security_server(set: &SaSet) -> String {
        format_security_header(&set.server)
    }

    /// The check of a protected REGISTER that arrived through `set` (TS 33.203 §7.2,
    /// §7.4, RFC 3329 §2.3.1): `Security-Verify` echoes the `Security-Server` sent for
    /// that set. When the REGISTER answers the challenge that created the set
    /// (`answers_challenge`), its `Security-Client` must also be the one of the
    /// REGISTER that set was built for; a REGISTER over the set in use may carry a new
    /// `Security-Client` (new SPIs: the UE starts a new set, §7.4).
    pub fn verify(
        set: &SaSet,
        verify: Option<&str>,
        client: Option<&str>,
        answers_challenge: bool,
    ) -> Result<(), String> {
        let v = verify.ok_or("Security-Verify missing")?;
        let v = parse_security_header(v).map_err(|e| format!("Security-Verify: {e}"))?;
        check_security_verify(&set.server, &v).map_err(|e: VerifyError| e.to_string())?;
        if let (Some(c), false, true) = (client, set.client.is_empty(), answers_challenge) {
            let c = parse_security_header(c).map_err(|e| format!("Security-Client: {e}"))?;
            check_security_client_unchanged(&set.client, &c).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Whether `client` (a Security-Client value) is the one `set` was built for.
    pub fn same_client(set: &SaSet, client: &str) -> bool {
        match parse_security_header(client) {
            Ok(c) => check_security_client_unchanged(&set.client, &c).is_ok(),
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::sec;
    use super::*;

    #[test]
    fn policy_for_missing_security_client() {
        assert_eq!(sec(true).0.initial(None, "ue"), Initial::Unprotected);
        match sec(false).0.initial(None, "ue") {
            Initial::Refuse(421, r) => assert!(r.contains("Security-Client missing")),
            other => panic!("{other:?}"),
        }
    }
}
