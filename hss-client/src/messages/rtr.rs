//! Registration-Termination-Request/Answer, command 304 (TS 29.229 §6.1.9,
//! §6.1.10; procedure TS 29.228 §6.5.3.1): HSS-initiated de-registration.

use ims_diameter::codec::{Avp, AvpSet, Message};
use ims_diameter::dictionary as base;

use super::common::*;
use super::types::DeregistrationReason;
use crate::dictionary::{self as cx, CMD_REGISTRATION_TERMINATION};

/// RTR: HSS → S-CSCF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationTerminationRequest {
    /// Routing AVPs (Destination-Host is the serving S-CSCF).
    pub routing: RequestRouting,
    /// User-Name: the IMPI.
    pub user_name: String,
    /// Associated-Identities: further IMPIs to de-register.
    pub associated_identities: Vec<String>,
    /// Public-Identity values (none: all IMPUs of the IMPI).
    pub public_identities: Vec<String>,
    /// Deregistration-Reason.
    pub deregistration_reason: DeregistrationReason,
}

impl RegistrationTerminationRequest {
    /// Encodes as a Diameter request.
    pub fn to_message(&self) -> Message {
        let mut m = new_request(CMD_REGISTRATION_TERMINATION, &self.routing);
        m.push(Avp::utf8(&base::USER_NAME, &self.user_name));
        if !self.associated_identities.is_empty() {
            let members: Vec<Avp> = self
                .associated_identities
                .iter()
                .map(|u| Avp::utf8(&base::USER_NAME, u))
                .collect();
            m.push(Avp::grouped(&cx::ASSOCIATED_IDENTITIES, &members));
        }
        for p in &self.public_identities {
            m.push(Avp::utf8(&cx::PUBLIC_IDENTITY, p));
        }
        m.push(self.deregistration_reason.to_avp());
        m
    }

    /// Decodes and validates a received RTR.
    pub fn from_message(m: &Message) -> Result<Self, CxDecodeError> {
        let routing = read_request(m, CMD_REGISTRATION_TERMINATION)?;
        let associated_identities = match m.get_grouped(&cx::ASSOCIATED_IDENTITIES)? {
            Some(g) => g.all_utf8(&base::USER_NAME)?,
            None => Vec::new(),
        };
        Ok(RegistrationTerminationRequest {
            routing,
            user_name: m.require_utf8(&base::USER_NAME)?,
            associated_identities,
            public_identities: m.all_utf8(&cx::PUBLIC_IDENTITY)?,
            deregistration_reason: DeregistrationReason::from_avps(
                &m.require_grouped(&cx::DEREGISTRATION_REASON)?,
            )?,
        })
    }
}

/// RTA: S-CSCF → HSS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationTerminationAnswer {
    /// Routing AVPs.
    pub routing: AnswerRouting,
    /// Result-Code / Experimental-Result.
    pub outcome: CxOutcome,
    /// Associated-Identities that were de-registered.
    pub associated_identities: Vec<String>,
}

impl RegistrationTerminationAnswer {
    /// An answer with only an outcome.
    pub fn new(outcome: CxOutcome) -> Self {
        RegistrationTerminationAnswer {
            routing: AnswerRouting::default(),
            outcome,
            associated_identities: Vec::new(),
        }
    }

    /// Encodes as the answer to `request`.
    pub fn to_message(&self, request: &Message) -> Message {
        let mut m = new_answer(request, &self.routing, self.outcome);
        if !self.associated_identities.is_empty() {
            let members: Vec<Avp> = self
                .associated_identities
                .iter()
                .map(|u| Avp::utf8(&base::USER_NAME, u))
                .collect();
            m.push(Avp::grouped(&cx::ASSOCIATED_IDENTITIES, &members));
        }
        m.finish_answer(request)
    }

    /// Decodes a received RTA.
    pub fn from_message(m: &Message) -> Result<Self, CxDecodeError> {
        let (routing, outcome) = read_answer(m, CMD_REGISTRATION_TERMINATION)?;
        let associated_identities = match m.get_grouped(&cx::ASSOCIATED_IDENTITIES)? {
            Some(g) => g.all_utf8(&base::USER_NAME)?,
            None => Vec::new(),
        };
        Ok(RegistrationTerminationAnswer {
            routing,
            outcome,
            associated_identities,
        })
    }
}
