//! Location-Info-Request/Answer, command 302 (TS 29.229 §6.1.5, §6.1.6;
//! procedure TS 29.228 §6.2.1).

use ims_diameter::codec::{Avp, AvpSet, Message};

use super::common::*;
use super::types::ServerCapabilities;
use crate::dictionary::{self as cx, OriginatingRequest, UserAuthorizationType, CMD_LOCATION_INFO};

/// LIR: I-CSCF → HSS to find the S-CSCF serving a public identity.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LocationInfoRequest {
    /// Routing AVPs.
    pub routing: RequestRouting,
    /// Public-Identity to locate.
    pub public_identity: String,
    /// Originating-Request.
    pub originating_request: Option<OriginatingRequest>,
    /// User-Authorization-Type (only REGISTRATION_AND_CAPABILITIES is meaningful).
    pub user_authorization_type: Option<UserAuthorizationType>,
}

impl LocationInfoRequest {
    /// Encodes as a Diameter request.
    pub fn to_message(&self) -> Message {
        let mut m = new_request(CMD_LOCATION_INFO, &self.routing);
        if let Some(o) = self.originating_request {
            m.push(Avp::integer32(&cx::ORIGINATING_REQUEST, o.code()));
        }
        m.push(Avp::utf8(&cx::PUBLIC_IDENTITY, &self.public_identity));
        if let Some(t) = self.user_authorization_type {
            m.push(Avp::integer32(&cx::USER_AUTHORIZATION_TYPE, t.code()));
        }
        m
    }

    /// Decodes and validates a received LIR.
    pub fn from_message(m: &Message) -> Result<Self, CxDecodeError> {
        let routing = read_request(m, CMD_LOCATION_INFO)?;
        Ok(LocationInfoRequest {
            routing,
            public_identity: m.require_utf8(&cx::PUBLIC_IDENTITY)?,
            originating_request: get_enum(m, &cx::ORIGINATING_REQUEST)?,
            user_authorization_type: get_enum(m, &cx::USER_AUTHORIZATION_TYPE)?,
        })
    }
}

/// LIA: Server-Name of the serving S-CSCF, or Server-Capabilities (2003
/// UNREGISTERED_SERVICE), or an error such as 5001/5003.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationInfoAnswer {
    /// Routing AVPs.
    pub routing: AnswerRouting,
    /// Result-Code / Experimental-Result.
    pub outcome: CxOutcome,
    /// Server-Name.
    pub server_name: Option<String>,
    /// Server-Capabilities.
    pub server_capabilities: Option<ServerCapabilities>,
    /// Wildcarded-PSI.
    pub wildcarded_psi: Option<String>,
    /// Wildcarded-IMPU.
    pub wildcarded_impu: Option<String>,
}

impl LocationInfoAnswer {
    /// An answer with only an outcome.
    pub fn new(outcome: CxOutcome) -> Self {
        LocationInfoAnswer {
            routing: AnswerRouting::default(),
            outcome,
            server_name: None,
            server_capabilities: None,
            wildcarded_psi: None,
            wildcarded_impu: None,
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
        if let Some(w) = &self.wildcarded_psi {
            m.push(Avp::utf8(&cx::WILDCARDED_PSI, w));
        }
        if let Some(w) = &self.wildcarded_impu {
            m.push(Avp::utf8(&cx::WILDCARDED_IMPU, w));
        }
        m.finish_answer(request)
    }

    /// Decodes a received LIA.
    pub fn from_message(m: &Message) -> Result<Self, CxDecodeError> {
        let (routing, outcome) = read_answer(m, CMD_LOCATION_INFO)?;
        Ok(LocationInfoAnswer {
            routing,
            outcome,
            server_name: m.get_utf8(&cx::SERVER_NAME)?,
            server_capabilities: m
                .get_grouped(&cx::SERVER_CAPABILITIES)?
                .map(|g| ServerCapabilities::from_avps(&g))
                .transpose()?,
            wildcarded_psi: m.get_utf8(&cx::WILDCARDED_PSI)?,
            wildcarded_impu: m.get_utf8(&cx::WILDCARDED_IMPU)?,
        })
    }
}
