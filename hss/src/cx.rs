//! The Cx server (TS 29.229 §6.1): a [`RequestHandler`] for the `ims-diameter` server
//! that decodes UAR/SAR/LIR/MAR with the `ims-hss-client` typed messages, runs the
//! procedure in [`crate::service`], and encodes the answer; plus [`DiameterPush`],
//! which sends RTR/PPR to the S-CSCF connected with a given Origin-Host.
//!
//! Bad input changes nothing and gets the RFC 6733 answer: an undecodable request is
//! answered by the transport (5014, 5015, 3008 …); a decodable request with a missing
//! or malformed AVP gets 5005/5004/5014 with Failed-AVP, an unknown M-bit AVP 5001,
//! another application 3007, an unknown command 3001. The connection stays up.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use ims_diameter::codec::{Message, ResultCode};
use ims_diameter::transport::{PeerInfo, RequestHandler, ServerHandle};
use ims_hss_client::dictionary::{
    self as cxd, ExperimentalResultCode, ServerAssignmentType, SipAuthScheme,
    UserAuthorizationType, CX_APPLICATION_ID,
};
use ims_hss_client::messages::*;
use tracing::{debug, warn};

use crate::push::{CxPush, PprRequest, PushError, PushOutcome, RtrRequest};
use crate::service::{self, HssService};

/// Answers Cx requests from S-CSCFs and I-CSCFs.
pub struct CxHandler {
    svc: HssService,
    origin_host: String,
    origin_realm: String,
}

impl CxHandler {
    /// A handler answering as `origin_host`/`origin_realm`.
    pub fn new(svc: HssService, origin_host: &str, origin_realm: &str) -> Self {
        Self {
            svc,
            origin_host: origin_host.to_string(),
            origin_realm: origin_realm.to_string(),
        }
    }

    fn routing(&self, session_id: &str) -> AnswerRouting {
        AnswerRouting {
            session_id: session_id.to_string(),
            origin_host: self.origin_host.clone(),
            origin_realm: self.origin_realm.clone(),
        }
    }

    fn error_answer(&self, e: &CxDecodeError, request: &Message, peer: &PeerInfo) -> Message {
        warn!(
            peer = %peer.origin_host(),
            command = request.header.command_code,
            error = %e,
            result_code = e.result_code().code(),
            "Cx request refused"
        );
        e.to_answer(request, &self.origin_host, &self.origin_realm)
    }

    async fn uar(&self, request: &Message, peer: &PeerInfo) -> Message {
        let r = match UserAuthorizationRequest::from_message(request) {
            Ok(r) => r,
            Err(e) => return self.error_answer(&e, request, peer),
        };
        let input = service::UarInput {
            impi: r.user_name.clone(),
            impu: r.public_identity.clone(),
            authorization_type: match r.user_authorization_type {
                Some(UserAuthorizationType::DeRegistration) => {
                    service::AuthorizationType::DeRegistration
                }
                Some(UserAuthorizationType::RegistrationAndCapabilities) => {
                    service::AuthorizationType::RegistrationAndCapabilities
                }
                _ => service::AuthorizationType::Registration,
            },
        };
        let mut a = match self.svc.user_authorization(&input).await {
            Ok(service::UarOutcome::FirstRegistration(sel)) => {
                with_selection(ExperimentalResultCode::FirstRegistration.into(), sel)
            }
            Ok(service::UarOutcome::SubsequentRegistration(name)) => {
                let mut a = UserAuthorizationAnswer::new(
                    ExperimentalResultCode::SubsequentRegistration.into(),
                );
                a.server_name = Some(name);
                a
            }
            Ok(service::UarOutcome::Success(sel)) => with_selection(CxOutcome::Success, sel),
            Err(e) => UserAuthorizationAnswer::new(outcome(e)),
        };
        a.routing = self.routing(&r.routing.session_id);
        a.to_message(request)
    }

    async fn mar(&self, request: &Message, peer: &PeerInfo) -> Message {
        let r = match MultimediaAuthRequest::from_message(request) {
            Ok(r) => r,
            Err(e) => return self.error_answer(&e, request, peer),
        };
        let requested = r
            .sip_auth_data_item
            .scheme
            .clone()
            .unwrap_or(SipAuthScheme::Unknown);
        let scheme = match &requested {
            SipAuthScheme::DigestAkaV1Md5 => service::AuthScheme::AkaV1Md5,
            SipAuthScheme::SipDigest | SipAuthScheme::DigestMd5 | SipAuthScheme::Digest => {
                service::AuthScheme::SipDigest
            }
            SipAuthScheme::Unknown => service::AuthScheme::Unknown,
            other => service::AuthScheme::Other(other.as_str().to_string()),
        };
        let input = service::MarInput {
            impi: r.user_name.clone(),
            impu: r.public_identity.clone(),
            number_items: r.sip_number_auth_items,
            scheme,
            resync: r
                .sip_auth_data_item
                .authorization
                .as_ref()
                .map(|b| b.to_vec()),
            server_name: Some(r.server_name.clone()),
        };
        let mut a = match self.svc.multimedia_auth(&input).await {
            Ok(service::MarOutcome::Aka(items)) => {
                let mut a = MultimediaAuthAnswer::new(CxOutcome::Success);
                a.sip_auth_data_items = items
                    .into_iter()
                    .map(|it| SipAuthDataItem {
                        item_number: Some(it.item_number),
                        scheme: Some(SipAuthScheme::DigestAkaV1Md5),
                        authenticate: Some(Bytes::copy_from_slice(&it.sip_authenticate)),
                        authorization: Some(Bytes::copy_from_slice(&it.sip_authorization)),
                        confidentiality_key: Some(Bytes::copy_from_slice(it.ck.expose())),
                        integrity_key: Some(Bytes::copy_from_slice(it.ik.expose())),
                        ..Default::default()
                    })
                    .collect();
                a.sip_number_auth_items = Some(a.sip_auth_data_items.len() as u32);
                a
            }
            Ok(service::MarOutcome::Digest(d)) => {
                let scheme = match requested {
                    SipAuthScheme::Unknown => SipAuthScheme::SipDigest,
                    s => s,
                };
                let mut a = MultimediaAuthAnswer::new(CxOutcome::Success);
                // "Digest-MD5" (Kamailio/PyHSS) reads HA1 from SIP-Authorization; the
                // TS 29.229 "SIP Digest" reads SIP-Digest-Authenticate. Send both.
                let authorization = (scheme == SipAuthScheme::DigestMd5)
                    .then(|| Bytes::from(d.ha1.clone().into_bytes()));
                a.sip_auth_data_items = vec![SipAuthDataItem {
                    item_number: Some(1),
                    scheme: Some(scheme),
                    authorization,
                    digest: Some(SipDigestAuthenticate {
                        realm: d.realm,
                        algorithm: Some(d.algorithm),
                        qop: Some(d.qop),
                        ha1: d.ha1,
                    }),
                    ..Default::default()
                }];
                a.sip_number_auth_items = Some(1);
                a
            }
            Err(e) => MultimediaAuthAnswer::new(outcome(e)),
        };
        a.routing = self.routing(&r.routing.session_id);
        a.user_name = Some(r.user_name);
        a.public_identity = Some(r.public_identity);
        a.to_message(request)
    }

    async fn sar(&self, request: &Message, peer: &PeerInfo) -> Message {
        let r = match ServerAssignmentRequest::from_message(request) {
            Ok(r) => r,
            Err(e) => return self.error_answer(&e, request, peer),
        };
        let input = service::SarInput {
            impi: r.user_name.clone(),
            impus: r.public_identities.clone(),
            server_name: r.server_name.clone(),
            origin_host: r.routing.origin_host.clone(),
            assignment_type: service::AssignmentType::from_u32(
                u32::try_from(r.server_assignment_type.code()).unwrap_or(u32::MAX),
            ),
            user_data_already_available: r.user_data_already_available,
        };
        let _: ServerAssignmentType = r.server_assignment_type;
        let mut a = match self.svc.server_assignment(&input).await {
            Ok(o) => {
                let mut a = ServerAssignmentAnswer::new(CxOutcome::Success);
                a.user_name = Some(o.impi);
                a.user_data = o.user_data;
                a
            }
            Err(e) => ServerAssignmentAnswer::new(outcome(e)),
        };
        a.routing = self.routing(&r.routing.session_id);
        a.to_message(request)
    }

    async fn lir(&self, request: &Message, peer: &PeerInfo) -> Message {
        let r = match LocationInfoRequest::from_message(request) {
            Ok(r) => r,
            Err(e) => return self.error_answer(&e, request, peer),
        };
        let input = service::LirInput {
            impu: r.public_identity.clone(),
        };
        let mut a = match self.svc.location_info(&input).await {
            Ok(service::LirOutcome::Registered(name)) => {
                let mut a = LocationInfoAnswer::new(CxOutcome::Success);
                a.server_name = Some(name);
                a
            }
            Ok(service::LirOutcome::Unregistered(sel)) => {
                let mut a =
                    LocationInfoAnswer::new(ExperimentalResultCode::UnregisteredService.into());
                match sel {
                    service::ServerSelection::Name(n) => a.server_name = Some(n),
                    service::ServerSelection::Capabilities(c) => {
                        a.server_capabilities = Some(capabilities(c))
                    }
                }
                a
            }
            Err(e) => LocationInfoAnswer::new(outcome(e)),
        };
        a.routing = self.routing(&r.routing.session_id);
        a.to_message(request)
    }
}

fn capabilities(c: service::Capabilities) -> ServerCapabilities {
    ServerCapabilities {
        mandatory: c.mandatory,
        optional: c.optional,
        server_names: c.server_names,
    }
}

fn with_selection(o: CxOutcome, sel: service::ServerSelection) -> UserAuthorizationAnswer {
    let mut a = UserAuthorizationAnswer::new(o);
    match sel {
        service::ServerSelection::Name(n) => a.server_name = Some(n),
        service::ServerSelection::Capabilities(c) => a.server_capabilities = Some(capabilities(c)),
    }
    a
}

/// The Diameter outcome of a procedure error.
pub fn outcome(e: service::CxError) -> CxOutcome {
    match e.code() {
        (true, code) => CxOutcome::Experimental(ExperimentalResultCode::from(code)),
        (false, code) => CxOutcome::from(ResultCode::from(code)),
    }
}

#[async_trait]
impl RequestHandler for CxHandler {
    async fn handle(&self, request: Message, peer: &PeerInfo) -> Message {
        if request.header.application_id != CX_APPLICATION_ID {
            let e = CxDecodeError::UnexpectedApplication(request.header.application_id);
            return self.error_answer(&e, &request, peer);
        }
        debug!(peer = %peer.origin_host(), command = request.header.command_code, "Cx request");
        match request.header.command_code {
            cxd::CMD_USER_AUTHORIZATION => self.uar(&request, peer).await,
            cxd::CMD_MULTIMEDIA_AUTH => self.mar(&request, peer).await,
            cxd::CMD_SERVER_ASSIGNMENT => self.sar(&request, peer).await,
            cxd::CMD_LOCATION_INFO => self.lir(&request, peer).await,
            code => {
                let e = CxDecodeError::UnexpectedCommand {
                    expected: 0,
                    expected_request: true,
                    got: code,
                    got_request: request.is_request(),
                };
                self.error_answer(&e, &request, peer)
            }
        }
    }
}

/// Sends RTR/PPR over the Diameter server's connections.
pub struct DiameterPush {
    server: ServerHandle,
    origin_host: String,
    origin_realm: String,
    session_counter: AtomicU64,
}

impl DiameterPush {
    /// Pushes through `server`'s connected peers, as `origin_host`/`origin_realm`.
    pub fn new(server: ServerHandle, origin_host: &str, origin_realm: &str) -> Self {
        Self {
            server,
            origin_host: origin_host.to_string(),
            origin_realm: origin_realm.to_string(),
            session_counter: AtomicU64::new(1),
        }
    }

    fn routing(&self, host: &str, peer_realm: String) -> RequestRouting {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        RequestRouting {
            // RFC 6733 §8.8: <DiameterIdentity>;<high 32 bits>;<low 32 bits>
            session_id: format!(
                "{};{};{}",
                self.origin_host,
                secs,
                self.session_counter.fetch_add(1, Ordering::Relaxed)
            ),
            origin_host: self.origin_host.clone(),
            origin_realm: self.origin_realm.clone(),
            destination_host: Some(host.to_string()),
            destination_realm: if peer_realm.is_empty() {
                self.origin_realm.clone()
            } else {
                peer_realm
            },
        }
    }

    fn peer(&self, host: &str) -> Result<(ims_diameter::transport::PeerHandle, String), PushError> {
        let p = self
            .server
            .peer_by_host(host)
            .ok_or_else(|| PushError::NotConnected(host.to_string()))?;
        let realm = p
            .info()
            .map(|i| i.origin_realm().to_string())
            .unwrap_or_default();
        Ok((p, realm))
    }
}

fn push_outcome(o: CxOutcome) -> PushOutcome {
    match o {
        CxOutcome::Success => PushOutcome {
            code: 2001,
            experimental: false,
        },
        CxOutcome::Experimental(e) => PushOutcome {
            code: e.code(),
            experimental: true,
        },
        CxOutcome::Base(rc) => PushOutcome {
            code: rc.code(),
            experimental: false,
        },
    }
}

fn transport_error(host: &str, e: ims_diameter::transport::Error) -> PushError {
    match e {
        ims_diameter::transport::Error::NotConnected => PushError::NotConnected(host.to_string()),
        ims_diameter::transport::Error::Timeout(_) => PushError::Timeout(host.to_string()),
        other => PushError::Failed(other.to_string()),
    }
}

#[async_trait]
impl CxPush for DiameterPush {
    async fn registration_termination(&self, req: RtrRequest) -> Result<PushOutcome, PushError> {
        let (peer, realm) = self.peer(&req.destination_host)?;
        let rtr = RegistrationTerminationRequest {
            routing: self.routing(&req.destination_host, realm),
            user_name: req.impi.clone(),
            associated_identities: vec![],
            public_identities: req.impus.clone(),
            deregistration_reason: DeregistrationReason {
                reason_code: cxd::ReasonCode::from(req.reason.value() as i32),
                reason_info: Some(req.reason_info.clone()),
            },
        };
        let ans = peer
            .request(rtr.to_message())
            .await
            .map_err(|e| transport_error(&req.destination_host, e))?;
        let a = RegistrationTerminationAnswer::from_message(&ans)
            .map_err(|e| PushError::Failed(format!("bad RTA: {e}")))?;
        Ok(push_outcome(a.outcome))
    }

    async fn push_profile(&self, req: PprRequest) -> Result<PushOutcome, PushError> {
        let (peer, realm) = self.peer(&req.destination_host)?;
        let ppr = PushProfileRequest {
            routing: self.routing(&req.destination_host, realm),
            user_name: req.impi.clone(),
            user_data: Some(req.user_data.clone()),
            charging_information: None,
            sip_auth_data_item: None,
        };
        let ans = peer
            .request(ppr.to_message())
            .await
            .map_err(|e| transport_error(&req.destination_host, e))?;
        let a = PushProfileAnswer::from_message(&ans)
            .map_err(|e| PushError::Failed(format!("bad PPA: {e}")))?;
        Ok(push_outcome(a.outcome))
    }
}

/// Shared handle type for the push sender.
pub type SharedPush = Arc<dyn CxPush>;
