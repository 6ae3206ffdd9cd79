//! User-Authorization-Request/Answer, command 300 (TS 29.229 §6.1.1, §6.1.2;
//! procedure TS 29.228 §6.1.1).

use ims_diameter::codec::{Avp, AvpSet, Message};
use ims_diameter::dictionary as base;

use super::common::*;
use super::types::ServerCapabilities;
use crate::dictionary::{self as cx, UserAuthorizationType, CMD_USER_AUTHORIZATION};

/// UAR: I-CSCF → HSS on REGISTER.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserAuthorizationRequest {
    /// Routing AVPs.
    pub routing: RequestRouting,
    /// User-Name: the IMPI.
    pub user_name: String,
    /// Public-Identity: the IMPU being registered.
    pub public_identity: String,
    /// Visited-Network-Identifier (from P-Visited-Network-ID).
    pub visited_network_identifier: String,
    /// User-Authorization-Type (absent means REGISTRATION).
    pub user_authorization_type: Option<UserAuthorizationType>,
    /// UAR-Flags (bit 0: IMS emergency registration).
    pub uar_flags: Option<u32>,
}

impl UserAuthorizationRequest {
    /// Encodes as a Diameter request (identifiers left to the transport).
    pub fn to_message(&self) -> Message {
        let mut m = new_request(CMD_USER_AUTHORIZATION, &self.routing);
        m.push(Avp::utf8(&base::USER_NAME, &self.user_name));
        m.push(Avp::utf8(&cx::PUBLIC_IDENTITY, &self.public_identity));
        m.push(Avp::utf8(
            &cx::VISITED_NETWORK_IDENTIFIER,
            &self.visited_network_identifier,
        ));
        if let Some(t) = self.user_authorization_type {
            m.push(Avp::integer32(&cx::USER_AUTHORIZATION_TYPE, t.code()));
        }
        if let Some(f) = self.uar_flags {
            m.push(Avp::unsigned32(&cx::UAR_FLAGS, f));
        }
        m
    }

    /// Decodes and validates a received UAR.
    pub fn from_message(m: &Message) -> Result<Self, CxDecodeError> {
        let routing = read_request(m, CMD_USER_AUTHORIZATION)?;
        Ok(UserAuthorizationRequest {
            routing,
            user_name: m.require_utf8(&base::USER_NAME)?,
            public_identity: m.require_utf8(&cx::PUBLIC_IDENTITY)?,
            visited_network_identifier: m.require_utf8(&cx::VISITED_NETWORK_IDENTIFIER)?,
            user_authorization_type: get_enum(m, &cx::USER_AUTHORIZATION_TYPE)?,
            uar_flags: m.get_u32(&cx::UAR_FLAGS)?,
        })
    }
}

/// UAA: HSS → I-CSCF. Outcome e.g. Experimental 2001 FIRST_REGISTRATION (with
/// Server-Capabilities or Server-Name) or 2002 SUBSEQUENT_REGISTRATION (with
/// Server-Name), 5001 USER_UNKNOWN, 5004 ROAMING_NOT_ALLOWED.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserAuthorizationAnswer {
    /// Routing AVPs.
    pub routing: AnswerRouting,
    /// Result-Code / Experimental-Result.
    pub outcome: CxOutcome,
    /// Server-Name of the assigned S-CSCF.
    pub server_name: Option<String>,
    /// Server-Capabilities for S-CSCF selection.
    pub server_capabilities: Option<ServerCapabilities>,
}

impl UserAuthorizationAnswer {
    /// An answer with only an outcome.
    pub fn new(outcome: CxOutcome) -> Self {
        UserAuthorizationAnswer {
            routing: AnswerRouting::default(),
            outcome,
            server_name: None,
            server_capabilities: None,
        }
    }

    /// Encodes as the answer to `request`.
    pub fn to_message(&self, request: &Message) -> Message {
        let mut m = new_answer(request, &self.routing, self.outcome);
        if let Some(s) = &self.server_name {
            m.push(Avp::utf8(&cx::SERVER_NAME, s));
        }
        if let Some(c) = &self.server_capabilities {
            m.push(c.to_avp());
        }
        m.finish_answer(request)
    }

    /// Decodes a received UAA.
    pub fn from_message(m: &Message) -> Result<Self, CxDecodeError> {
        let (routing, outcome) = read_answer(m, CMD_USER_AUTHORIZATION)?;
        Ok(UserAuthorizationAnswer {
            routing,
            outcome,
            server_name: m.get_utf8(&cx::SERVER_NAME)?,
            server_capabilities: m
                .get_grouped(&cx::SERVER_CAPABILITIES)?
                .map(|g| ServerCapabilities::from_avps(&g))
                .transpose()?,
        })
    }
}
