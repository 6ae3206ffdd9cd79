//! The Cx procedures as pure logic over the store (TS 29.228 §6.1–§6.3): user
//! authorization (UAR), multimedia authentication (MAR), server assignment (SAR) and
//! location info (LIR). No sockets: [`crate::cx`] maps Diameter messages to these calls.

pub mod types;
pub mod user_data;

use std::sync::Arc;

use md5::{Digest, Md5};
use tracing::{debug, info, warn};

use crate::milenage::{self, AuthVector};
use crate::store::{model::Subscriber, Store, StoreError};
pub use types::*;

/// Largest SIP-Number-Auth-Items honoured in one MAR.
pub const MAX_AUTH_ITEMS: u32 = 32;

/// How the HSS picks an S-CSCF for a user that has none (UAR, LIR).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerPolicy {
    /// S-CSCF SIP URIs to hand out as Server-Name (chosen by a hash of the IMPU, so a
    /// user keeps landing on the same one).
    pub scscf_pool: Vec<String>,
    /// When set, answer with Server-Capabilities instead of a Server-Name.
    pub capabilities: Option<Capabilities>,
}

impl ServerPolicy {
    /// A policy with a single S-CSCF.
    pub fn single(name: impl Into<String>) -> Self {
        Self {
            scscf_pool: vec![name.into()],
            capabilities: None,
        }
    }

    /// Whether the policy can ever answer (a pool entry or capabilities).
    pub fn is_usable(&self) -> bool {
        !self.scscf_pool.is_empty() || self.capabilities.is_some()
    }

    fn select(&self, key: &str) -> ServerSelection {
        if let Some(c) = &self.capabilities {
            return ServerSelection::Capabilities(c.clone());
        }
        if self.scscf_pool.is_empty() {
            // Unreachable for validated settings; still never answer without either.
            return ServerSelection::Capabilities(Capabilities::default());
        }
        let h = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        ServerSelection::Name(self.scscf_pool[(h % self.scscf_pool.len() as u64) as usize].clone())
    }

    fn capabilities_for_query(&self) -> ServerSelection {
        match &self.capabilities {
            Some(c) => ServerSelection::Capabilities(c.clone()),
            None => ServerSelection::Capabilities(Capabilities {
                server_names: self.scscf_pool.clone(),
                ..Default::default()
            }),
        }
    }
}

/// The HSS service: the Cx procedures over a [`Store`].
#[derive(Debug, Clone)]
pub struct HssService {
    store: Store,
    policy: Arc<ServerPolicy>,
}

fn store_err(e: StoreError) -> CxError {
    warn!(error = %e, "store failure while answering Cx");
    CxError::UnableToComply
}

impl HssService {
    /// A service over `store` with the S-CSCF selection `policy`.
    pub fn new(store: Store, policy: ServerPolicy) -> Self {
        Self {
            store,
            policy: Arc::new(policy),
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    async fn subscriber_by_impu(&self, impu: &str) -> Result<Arc<Subscriber>, CxError> {
        self.store
            .profile_by_impu(impu)
            .await
            .map_err(store_err)?
            .ok_or(CxError::UserUnknown)
    }

    /// UAR (TS 29.228 §6.1.1.1).
    pub async fn user_authorization(&self, req: &UarInput) -> Result<UarOutcome, CxError> {
        let s = self.subscriber_by_impu(&req.impu).await?;
        if s.impi != req.impi {
            return Err(CxError::IdentitiesDontMatch);
        }
        if s.impus
            .iter()
            .any(|i| i.barred && crate::store::model::uri_eq(&i.uri, &req.impu))
        {
            return Err(CxError::AuthorizationRejected);
        }
        let out = match req.authorization_type {
            AuthorizationType::DeRegistration => match s.scscf_name.clone() {
                Some(name) => UarOutcome::Success(ServerSelection::Name(name)),
                None => return Err(CxError::IdentityNotRegistered),
            },
            AuthorizationType::RegistrationAndCapabilities => {
                UarOutcome::Success(self.policy.capabilities_for_query())
            }
            AuthorizationType::Registration => match s.scscf_name.clone() {
                Some(name) => UarOutcome::SubsequentRegistration(name),
                None => UarOutcome::FirstRegistration(self.policy.select(&req.impu)),
            },
        };
        debug!(impi = %req.impi, impu = %req.impu, outcome = ?out, "UAR");
        Ok(out)
    }

    /// MAR (TS 29.228 §6.3.1, TS 33.203 §6.1): AKA vectors, SIP Digest HA1, or
    /// re-synchronisation followed by fresh vectors.
    pub async fn multimedia_auth(&self, req: &MarInput) -> Result<MarOutcome, CxError> {
        let entry = self
            .store
            .auth_entry(&req.impi)
            .await
            .map_err(store_err)?
            .ok_or(CxError::UserUnknown)?;
        if !entry.has_impu(&req.impu) {
            return Err(CxError::IdentitiesDontMatch);
        }
        let scheme = match (&req.scheme, entry.aka.is_some(), entry.password.is_some()) {
            (AuthScheme::AkaV1Md5, true, _) => AuthScheme::AkaV1Md5,
            (AuthScheme::SipDigest, _, true) => AuthScheme::SipDigest,
            (AuthScheme::Unknown, true, _) => AuthScheme::AkaV1Md5,
            (AuthScheme::Unknown, false, true) => AuthScheme::SipDigest,
            _ => return Err(CxError::AuthSchemeNotSupported),
        };
        if scheme == AuthScheme::SipDigest {
            let Some(pw) = entry.password.as_ref() else {
                return Err(CxError::AuthSchemeNotSupported);
            };
            let realm = entry
                .impi
                .split_once('@')
                .map(|(_, r)| r.to_string())
                .unwrap_or_default();
            let mut h = Md5::new();
            h.update(entry.impi.as_bytes());
            h.update(b":");
            h.update(realm.as_bytes());
            h.update(b":");
            h.update(pw.expose().as_bytes());
            info!(impi = %entry.impi, realm = %realm, "MAR: SIP Digest HA1 issued");
            return Ok(MarOutcome::Digest(DigestItem {
                realm,
                algorithm: "MD5".into(),
                qop: "auth".into(),
                ha1: hex::encode(h.finalize()),
            }));
        }
        let Some(aka) = entry.aka.as_ref() else {
            return Err(CxError::AuthSchemeNotSupported);
        };
        if let Some(sa) = &req.resync {
            // SIP-Authorization = RAND (16) ‖ AUTS (14), TS 29.229 §6.3.13.
            let (Ok(rand), Ok(auts)) = (
                <[u8; 16]>::try_from(sa.get(..16).unwrap_or(&[])),
                <[u8; 14]>::try_from(sa.get(16..).unwrap_or(&[])),
            ) else {
                warn!(impi = %entry.impi, len = sa.len(), "MAR: resync SIP-Authorization is not RAND‖AUTS");
                return Err(CxError::AuthenticationRejected);
            };
            match milenage::resync(&aka.k, &aka.opc, &rand, &auts) {
                Ok(sqn_ms) => {
                    let moved = self.store.resync(&entry, sqn_ms).await.map_err(store_err)?;
                    info!(impi = %entry.impi, sqn_ms, moved, "MAR: re-synchronisation, MAC-S verified");
                }
                Err(e) => {
                    warn!(impi = %entry.impi, error = %e, "MAR: re-synchronisation refused");
                    return Err(CxError::AuthenticationRejected);
                }
            }
        }
        let n = req.number_items.clamp(1, MAX_AUTH_ITEMS) as usize;
        let sqns = self
            .store
            .allocate_sqns(&entry, n)
            .await
            .map_err(store_err)?;
        let mut items = Vec::with_capacity(n);
        for (i, sqn) in sqns.into_iter().enumerate() {
            let v: AuthVector = milenage::generate_vector_random(&aka.k, &aka.opc, sqn, entry.amf);
            debug!(
                impi = %entry.impi,
                sqn,
                resync = req.resync.is_some(),
                item = i + 1,
                "MAR: AKA vector generated"
            );
            let mut sip_authenticate = [0u8; 32];
            sip_authenticate[..16].copy_from_slice(&v.rand);
            sip_authenticate[16..].copy_from_slice(&v.autn);
            items.push(AkaItem {
                item_number: i as u32 + 1,
                sip_authenticate,
                sip_authorization: v.xres,
                ck: v.ck.clone(),
                ik: v.ik.clone(),
            });
        }
        Ok(MarOutcome::Aka(items))
    }

    /// SAR (TS 29.228 §6.1.2.1).
    pub async fn server_assignment(&self, req: &SarInput) -> Result<SarOutcome, CxError> {
        let s = match req.impus.first() {
            Some(impu) => self.subscriber_by_impu(impu).await?,
            None => {
                let impi = req.impi.as_deref().ok_or(CxError::UserUnknown)?;
                self.store
                    .get(impi)
                    .await
                    .map_err(store_err)?
                    .filter(|s| s.impi == impi)
                    .map(Arc::new)
                    .ok_or(CxError::UserUnknown)?
            }
        };
        if let Some(impi) = &req.impi {
            if *impi != s.impi {
                return Err(CxError::IdentitiesDontMatch);
            }
        }
        if req.impus.iter().any(|i| !s.has_impu(i)) {
            return Err(CxError::IdentitiesDontMatch);
        }
        let impu = req.impus.first().map(String::as_str);
        let with_data = |send: bool| SarOutcome {
            impi: s.impi.clone(),
            user_data: send.then(|| user_data::ims_subscription(&s, impu)),
        };
        use AssignmentType::*;
        let out = match req.assignment_type {
            Registration | ReRegistration | UnregisteredUser => {
                self.store
                    .set_assignment(&s.imsi, Some(&req.server_name), Some(&req.origin_host))
                    .await
                    .map_err(store_err)?;
                with_data(!req.user_data_already_available)
            }
            NoAssignment => with_data(!req.user_data_already_available),
            TimeoutDeregistration
            | UserDeregistration
            | AdministrativeDeregistration
            | DeregistrationTooMuchData => {
                // Clear only if this S-CSCF is the one stored (another may have taken over).
                let ours = s.scscf_name.as_deref().is_none_or(|n| n == req.server_name);
                if ours {
                    self.store
                        .set_assignment(&s.imsi, None, None)
                        .await
                        .map_err(store_err)?;
                }
                with_data(false)
            }
            TimeoutDeregStoreServerName | UserDeregStoreServerName => {
                self.store
                    .set_assignment(&s.imsi, Some(&req.server_name), Some(&req.origin_host))
                    .await
                    .map_err(store_err)?;
                with_data(false)
            }
            AuthenticationFailure | AuthenticationTimeout => with_data(false),
            Other(_) => return Err(CxError::InAssignmentType),
        };
        // One line per change of assignment; re-registrations (the bulk) at debug.
        if req.assignment_type == ReRegistration {
            debug!(impi = %s.impi, server_name = %req.server_name, "SAR re-registration");
        } else {
            info!(
                impi = %s.impi,
                server_name = %req.server_name,
                assignment_type = ?req.assignment_type,
                user_data = out.user_data.is_some(),
                "SAR"
            );
        }
        Ok(out)
    }

    /// LIR (TS 29.228 §6.1.4.1).
    pub async fn location_info(&self, req: &LirInput) -> Result<LirOutcome, CxError> {
        let s = self.subscriber_by_impu(&req.impu).await?;
        let out = match s.scscf_name.clone() {
            Some(name) => LirOutcome::Registered(name),
            None => LirOutcome::Unregistered(self.policy.select(&req.impu)),
        };
        debug!(impu = %req.impu, outcome = ?out, "LIR");
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
