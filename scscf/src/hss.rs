//! Binding of the core's [`Cx`] view to the workspace Cx client (`ims-hss-client`,
//! TS 29.229): MAR/SAR translation and outcome mapping, and the HSS-initiated RTR/PPR
//! handler (TS 29.228 §6.1.3, §6.1.4) that feeds [`ScscfHandle`].

use crate::cx::{
    AuthScheme, AuthVector, Cx, CxError, MarRequest, SarAnswer, SarRequest, ServerAssignmentType,
};
use crate::notifier::RtrReason;
use crate::service::ScscfHandle;
use ims_diameter::codec::ResultCode;
use ims_hss_client as hc;
use std::sync::{Arc, OnceLock};
use tracing::warn;

/// Adapts any `ims_hss_client::HssClient` (the real `CxClient` or a fake) to [`Cx`].
#[derive(Clone)]
pub struct HssAdapter {
    inner: Arc<dyn hc::HssClient>,
}

impl HssAdapter {
    /// Wraps a client.
    pub fn new(inner: Arc<dyn hc::HssClient>) -> HssAdapter {
        HssAdapter { inner }
    }
}

fn map_client_error(e: hc::CxError) -> CxError {
    if e.is_unavailable() {
        CxError::Unreachable(e.to_string())
    } else {
        CxError::BadAnswer(e.to_string())
    }
}

fn check(outcome: hc::CxOutcome) -> Result<(), CxError> {
    if outcome.is_success() {
        return Ok(());
    }
    Err(match outcome {
        hc::CxOutcome::Experimental(x) => CxError::Experimental(x.code()),
        hc::CxOutcome::Base(rc) => CxError::ResultCode(rc.code()),
        hc::CxOutcome::Success => CxError::ResultCode(2001),
    })
}

fn sat(t: ServerAssignmentType) -> hc::ServerAssignmentType {
    match t {
        ServerAssignmentType::Registration => hc::ServerAssignmentType::Registration,
        ServerAssignmentType::ReRegistration => hc::ServerAssignmentType::ReRegistration,
        ServerAssignmentType::TimeoutDeregistration => {
            hc::ServerAssignmentType::TimeoutDeregistration
        }
        ServerAssignmentType::UserDeregistration => hc::ServerAssignmentType::UserDeregistration,
        ServerAssignmentType::AdministrativeDeregistration => {
            hc::ServerAssignmentType::AdministrativeDeregistration
        }
    }
}

/// One SIP-Auth-Data-Item as a vector the core can use.
fn vector(item: &hc::SipAuthDataItem) -> Option<AuthVector> {
    if let Some(d) = &item.digest {
        return Some(AuthVector::Digest { ha1: d.ha1.clone() });
    }
    let ra = item.authenticate.as_ref()?;
    let xres = item.authorization.as_ref()?;
    Some(AuthVector::Aka {
        rand_autn: ra.to_vec(),
        xres: xres.to_vec(),
        ck: item
            .confidentiality_key
            .as_ref()
            .map(|b| b.to_vec())
            .unwrap_or_default(),
        ik: item
            .integrity_key
            .as_ref()
            .map(|b| b.to_vec())
            .unwrap_or_default(),
    })
}

#[async_trait::async_trait]
impl Cx for HssAdapter {
    async fn mar(&self, req: MarRequest) -> Result<Vec<AuthVector>, CxError> {
        let scheme = match req.scheme {
            AuthScheme::AkaV1Md5 => hc::SipAuthScheme::DigestAkaV1Md5,
            AuthScheme::SipDigest => hc::SipAuthScheme::SipDigest,
        };
        let mut m =
            hc::MultimediaAuthRequest::new(&req.impi, &req.impu, &req.server_name, scheme, 1);
        if let Some(r) = &req.resync {
            let (rand, auts) = r.split_at(r.len().min(16));
            m = m.with_resync(rand, auts);
        }
        let ans = self.inner.mar(m).await.map_err(map_client_error)?;
        check(ans.outcome)?;
        let v: Vec<AuthVector> = ans.sip_auth_data_items.iter().filter_map(vector).collect();
        if v.is_empty() {
            return Err(CxError::BadAnswer(
                "MAA without a usable SIP-Auth-Data-Item".into(),
            ));
        }
        Ok(v)
    }

    async fn sar(&self, req: SarRequest) -> Result<SarAnswer, CxError> {
        let m = hc::ServerAssignmentRequest::new(
            Some(&req.impi),
            &req.impu,
            &req.server_name,
            sat(req.assignment),
        );
        let ans = self.inner.sar(m).await.map_err(map_client_error)?;
        check(ans.outcome)?;
        Ok(SarAnswer {
            user_data: ans.user_data,
        })
    }
}

/// Receives RTR/PPR from the HSS and applies them to a running S-CSCF. Created before
/// the `CxClient` (which needs it at start) and attached to the node afterwards; until
/// then RTRs are answered DIAMETER_UNABLE_TO_COMPLY.
#[derive(Default)]
pub struct ScscfCxEvents {
    handle: OnceLock<ScscfHandle>,
}

impl ScscfCxEvents {
    /// A handler not yet attached.
    pub fn new() -> Arc<ScscfCxEvents> {
        Arc::new(ScscfCxEvents::default())
    }

    /// Attaches the node (once; later calls are ignored).
    pub fn attach(&self, handle: ScscfHandle) {
        let _ = self.handle.set(handle);
    }
}

#[async_trait::async_trait]
impl hc::CxEventHandler for ScscfCxEvents {
    async fn on_registration_termination(
        &self,
        req: hc::RegistrationTerminationRequest,
    ) -> hc::RegistrationTerminationAnswer {
        let Some(h) = self.handle.get() else {
            warn!("RTR before the S-CSCF is running");
            return hc::RegistrationTerminationAnswer::new(hc::CxOutcome::Base(
                ResultCode::UnableToComply,
            ));
        };
        let reason = match req.deregistration_reason.reason_code {
            hc::ReasonCode::PermanentTermination => RtrReason::PermanentTermination,
            _ => RtrReason::Reregister,
        };
        h.registration_termination(&req.user_name, &req.public_identities, reason)
            .await;
        for impi in &req.associated_identities {
            h.registration_termination(impi, &[], reason).await;
        }
        hc::RegistrationTerminationAnswer::new(hc::CxOutcome::Success)
    }

    async fn on_push_profile(&self, _req: hc::PushProfileRequest) -> hc::PushProfileAnswer {
        // The user profile is not cached beyond the implicit registration set yet.
        hc::PushProfileAnswer::new(hc::CxOutcome::Success)
    }
}
