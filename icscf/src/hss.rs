//! [`Cx`] over `ims_hss_client::HssClient` (the real Diameter client `CxClient`, or any
//! other implementation): builds UAR/LIR (TS 29.229 §6.1.1, §6.1.5) and turns the
//! answers' Result-Code / Experimental-Result into [`Assignment`] or [`CxFailure`].

use std::sync::Arc;

use ims_hss_client::{
    CxError, CxOutcome, ExperimentalResultCode, HssClient, LocationInfoRequest,
    UserAuthorizationRequest,
};

use crate::cx::{
    Assignment, Cx, CxFailure, CxFuture, ServerCapabilities, Uar, UserAuthorizationType,
};

/// The I-CSCF's Cx queries over an [`HssClient`].
pub struct HssCx {
    hss: Arc<dyn HssClient>,
}

impl HssCx {
    /// Wraps a client.
    pub fn new(hss: Arc<dyn HssClient>) -> Self {
        HssCx { hss }
    }
}

fn failure_of(outcome: CxOutcome) -> CxFailure {
    match outcome {
        CxOutcome::Experimental(e) => match e {
            ExperimentalResultCode::UserUnknown => CxFailure::UserUnknown,
            ExperimentalResultCode::IdentitiesDontMatch => CxFailure::IdentitiesDontMatch,
            ExperimentalResultCode::IdentityNotRegistered => CxFailure::IdentityNotRegistered,
            ExperimentalResultCode::RoamingNotAllowed => CxFailure::RoamingNotAllowed,
            other => CxFailure::Other(other.code()),
        },
        CxOutcome::Base(rc) => match rc.code() {
            // DIAMETER_AUTHORIZATION_REJECTED
            5003 => CxFailure::AuthorizationRejected,
            // DIAMETER_UNABLE_TO_DELIVER, DIAMETER_TOO_BUSY
            3002 | 3004 => CxFailure::Unavailable(format!("HSS result code {}", rc.code())),
            c => CxFailure::Other(c),
        },
        CxOutcome::Success => CxFailure::Other(2001),
    }
}

fn error_of(e: CxError) -> CxFailure {
    if e.is_unavailable() {
        CxFailure::Unavailable(e.to_string())
    } else {
        CxFailure::Other(0)
    }
}

fn assignment(
    server_name: Option<String>,
    caps: Option<ims_hss_client::ServerCapabilities>,
) -> Assignment {
    match (server_name.filter(|s| !s.is_empty()), caps) {
        (Some(name), _) => Assignment::ServerName(name),
        (None, Some(c)) => Assignment::Capabilities(ServerCapabilities {
            mandatory: c.mandatory,
            optional: c.optional,
            server_names: c.server_names,
        }),
        (None, None) => Assignment::Nothing,
    }
}

impl Cx for HssCx {
    fn uar(&self, req: Uar) -> CxFuture<'_, Assignment> {
        Box::pin(async move {
            let uat = match req.authorization_type {
                UserAuthorizationType::Registration => {
                    ims_hss_client::UserAuthorizationType::Registration
                }
                UserAuthorizationType::DeRegistration => {
                    ims_hss_client::UserAuthorizationType::DeRegistration
                }
                UserAuthorizationType::RegistrationAndCapabilities => {
                    ims_hss_client::UserAuthorizationType::RegistrationAndCapabilities
                }
            };
            let uar = UserAuthorizationRequest {
                user_name: req.user_name,
                public_identity: req.public_identity,
                visited_network_identifier: req.visited_network,
                user_authorization_type: Some(uat),
                ..Default::default()
            };
            let uaa = self.hss.uar(uar).await.map_err(error_of)?;
            if !uaa.outcome.is_success() {
                return Err(failure_of(uaa.outcome));
            }
            Ok(assignment(uaa.server_name, uaa.server_capabilities))
        })
    }

    fn lir(&self, public_identity: String) -> CxFuture<'_, Assignment> {
        Box::pin(async move {
            let lir = LocationInfoRequest {
                public_identity,
                ..Default::default()
            };
            let lia = self.hss.lir(lir).await.map_err(error_of)?;
            if !lia.outcome.is_success() {
                return Err(failure_of(lia.outcome));
            }
            Ok(assignment(lia.server_name, lia.server_capabilities))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ims_hss_client::{
        LocationInfoAnswer, MultimediaAuthAnswer, MultimediaAuthRequest, ServerAssignmentAnswer,
        ServerAssignmentRequest, UserAuthorizationAnswer,
    };
    use std::sync::Mutex;

    /// A fake HSS answering every UAR/LIR with a fixed outcome.
    struct FakeHss {
        outcome: CxOutcome,
        server_name: Option<String>,
        seen: Mutex<Vec<UserAuthorizationRequest>>,
    }

    #[async_trait::async_trait]
    impl HssClient for FakeHss {
        async fn uar(
            &self,
            req: UserAuthorizationRequest,
        ) -> Result<UserAuthorizationAnswer, CxError> {
            self.seen.lock().unwrap().push(req);
            let mut a = UserAuthorizationAnswer::new(self.outcome);
            a.server_name = self.server_name.clone();
            Ok(a)
        }
        async fn mar(&self, _: MultimediaAuthRequest) -> Result<MultimediaAuthAnswer, CxError> {
            Err(CxError::NoPeers)
        }
        async fn sar(&self, _: ServerAssignmentRequest) -> Result<ServerAssignmentAnswer, CxError> {
            Err(CxError::NoPeers)
        }
        async fn lir(&self, _: LocationInfoRequest) -> Result<LocationInfoAnswer, CxError> {
            let mut a = LocationInfoAnswer::new(self.outcome);
            a.server_name = self.server_name.clone();
            Ok(a)
        }
    }

    fn uar() -> Uar {
        Uar {
            user_name: "alice@ims.test".into(),
            public_identity: "sip:alice@ims.test".into(),
            visited_network: "ims.test".into(),
            authorization_type: UserAuthorizationType::DeRegistration,
        }
    }

    fn cx(outcome: CxOutcome, name: Option<&str>) -> (HssCx, Arc<FakeHss>) {
        let f = Arc::new(FakeHss {
            outcome,
            server_name: name.map(str::to_string),
            seen: Mutex::new(Vec::new()),
        });
        (HssCx::new(f.clone()), f)
    }

    #[tokio::test]
    async fn uaa_outcomes_map_to_assignments_and_failures() {
        let (c, f) = cx(
            CxOutcome::Experimental(ExperimentalResultCode::SubsequentRegistration),
            Some("sip:scscf.ims.test"),
        );
        assert_eq!(
            c.uar(uar()).await.unwrap(),
            Assignment::ServerName("sip:scscf.ims.test".into())
        );
        let seen = f.seen.lock().unwrap()[0].clone();
        assert_eq!(
            seen.user_authorization_type,
            Some(ims_hss_client::UserAuthorizationType::DeRegistration)
        );
        assert_eq!(seen.visited_network_identifier, "ims.test");

        let (c, _) = cx(
            CxOutcome::Experimental(ExperimentalResultCode::FirstRegistration),
            None,
        );
        assert_eq!(c.uar(uar()).await.unwrap(), Assignment::Nothing);

        for (code, want) in [
            (ExperimentalResultCode::UserUnknown, CxFailure::UserUnknown),
            (
                ExperimentalResultCode::IdentitiesDontMatch,
                CxFailure::IdentitiesDontMatch,
            ),
            (
                ExperimentalResultCode::RoamingNotAllowed,
                CxFailure::RoamingNotAllowed,
            ),
            (
                ExperimentalResultCode::IdentityNotRegistered,
                CxFailure::IdentityNotRegistered,
            ),
        ] {
            let (c, _) = cx(CxOutcome::Experimental(code), None);
            let got = c.uar(uar()).await.unwrap_err();
            assert_eq!(got, want);
            assert_eq!(got.to_sip(crate::cx::Procedure::Registration).code, 403);
        }
        let (c, _) = cx(
            CxOutcome::Experimental(ExperimentalResultCode::UserUnknown),
            None,
        );
        let got = c.lir("sip:bob@ims.test".into()).await.unwrap_err();
        assert_eq!(got.to_sip(crate::cx::Procedure::Terminating).code, 404);
    }

    #[tokio::test]
    async fn unreachable_hss_is_unavailable() {
        struct Down;
        #[async_trait::async_trait]
        impl HssClient for Down {
            async fn uar(
                &self,
                _: UserAuthorizationRequest,
            ) -> Result<UserAuthorizationAnswer, CxError> {
                Err(CxError::NoPeers)
            }
            async fn mar(&self, _: MultimediaAuthRequest) -> Result<MultimediaAuthAnswer, CxError> {
                Err(CxError::NoPeers)
            }
            async fn sar(
                &self,
                _: ServerAssignmentRequest,
            ) -> Result<ServerAssignmentAnswer, CxError> {
                Err(CxError::NoPeers)
            }
            async fn lir(&self, _: LocationInfoRequest) -> Result<LocationInfoAnswer, CxError> {
                Err(CxError::NoPeers)
            }
        }
        let c = HssCx::new(Arc::new(Down));
        let f = c.uar(uar()).await.unwrap_err();
        assert!(matches!(f, CxFailure::Unavailable(_)));
        let a = f.to_sip(crate::cx::Procedure::Registration);
        assert_eq!((a.code, a.retry_after.is_some()), (500, true));
    }
}
