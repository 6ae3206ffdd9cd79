//! HSS-initiated requests (RTR, TS 29.228 §6.5.3.1; PPR, §6.5.2.1) delivered to
//! the application through [`CxEventHandler`].

use std::sync::Arc;

use ims_diameter::codec::{Message, ResultCode};
use ims_diameter::transport::{PeerInfo, RequestHandler};

use crate::dictionary::{CMD_PUSH_PROFILE, CMD_REGISTRATION_TERMINATION};
use crate::messages::*;

/// Receives the requests an HSS sends to an S-CSCF.
#[async_trait::async_trait]
pub trait CxEventHandler: Send + Sync + 'static {
    /// RTR: de-register the identities; answer with the outcome.
    async fn on_registration_termination(
        &self,
        req: RegistrationTerminationRequest,
    ) -> RegistrationTerminationAnswer;
    /// PPR: new user profile or charging information.
    async fn on_push_profile(&self, req: PushProfileRequest) -> PushProfileAnswer;
}

pub(crate) struct EventAdapter {
    inner: Arc<dyn CxEventHandler>,
    origin_host: String,
    origin_realm: String,
}

impl EventAdapter {
    pub(crate) fn new(
        inner: Arc<dyn CxEventHandler>,
        origin_host: &str,
        origin_realm: &str,
    ) -> Self {
        EventAdapter {
            inner,
            origin_host: origin_host.to_owned(),
            origin_realm: origin_realm.to_owned(),
        }
    }

    fn fill(&self, r: &mut AnswerRouting) {
        if r.origin_host.is_empty() {
            r.origin_host = self.origin_host.clone();
        }
        if r.origin_realm.is_empty() {
            r.origin_realm = self.origin_realm.clone();
        }
    }
}

#[async_trait::async_trait]
impl RequestHandler for EventAdapter {
    async fn handle(&self, request: Message, _peer: &PeerInfo) -> Message {
        match request.header.command_code {
            CMD_REGISTRATION_TERMINATION => {
                match RegistrationTerminationRequest::from_message(&request) {
                    Ok(rtr) => {
                        let mut a = self.inner.on_registration_termination(rtr).await;
                        self.fill(&mut a.routing);
                        a.to_message(&request)
                    }
                    Err(e) => e.to_answer(&request, &self.origin_host, &self.origin_realm),
                }
            }
            CMD_PUSH_PROFILE => match PushProfileRequest::from_message(&request) {
                Ok(ppr) => {
                    let mut a = self.inner.on_push_profile(ppr).await;
                    self.fill(&mut a.routing);
                    a.to_message(&request)
                }
                Err(e) => e.to_answer(&request, &self.origin_host, &self.origin_realm),
            },
            _ => Message::error_answer(
                &request,
                ResultCode::CommandUnsupported,
                &self.origin_host,
                &self.origin_realm,
                None,
                None,
            ),
        }
    }
}
