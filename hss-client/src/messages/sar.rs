//! Server-Assignment-Request/Answer, command 301 (TS 29.229 §6.1.3, §6.1.4;
//! procedure TS 29.228 §6.1.2).

use ims_diameter::codec::{Avp, AvpSet, Message};
use ims_diameter::dictionary as base;

use super::common::*;
use super::types::ChargingInformation;
use crate::dictionary::{self as cx, ServerAssignmentType, CMD_SERVER_ASSIGNMENT};

/// SAR: S-CSCF → HSS on registration, re-registration, de-registration, or for an
/// unregistered user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAssignmentRequest {
    /// Routing AVPs.
    pub routing: RequestRouting,
    /// User-Name: the IMPI (optional for UNREGISTERED_USER).
    pub user_name: Option<String>,
    /// Public-Identity values.
    pub public_identities: Vec<String>,
    /// Server-Name of the S-CSCF.
    pub server_name: String,
    /// Server-Assignment-Type.
    pub server_assignment_type: ServerAssignmentType,
    /// User-Data-Already-Available (true = USER_DATA_ALREADY_AVAILABLE).
    pub user_data_already_available: bool,
}

impl ServerAssignmentRequest {
    /// A SAR of `kind` for one IMPU.
    pub fn new(
        user_name: Option<&str>,
        public_identity: &str,
        server_name: &str,
        kind: ServerAssignmentType,
    ) -> Self {
        ServerAssignmentRequest {
            routing: RequestRouting::default(),
            user_name: user_name.map(str::to_owned),
            public_identities: vec![public_identity.to_owned()],
            server_name: server_name.to_owned(),
            server_assignment_type: kind,
            user_data_already_available: false,
        }
    }

    /// Encodes as a Diameter request.
    pub fn to_message(&self) -> Message {
        let mut m = new_request(CMD_SERVER_ASSIGNMENT, &self.routing);
        if let Some(u) = &self.user_name {
            m.push(Avp::utf8(&base::USER_NAME, u));
        }
        for p in &self.public_identities {
            m.push(Avp::utf8(&cx::PUBLIC_IDENTITY, p));
        }
        m.push(Avp::utf8(&cx::SERVER_NAME, &self.server_name));
        m.push(Avp::integer32(
            &cx::SERVER_ASSIGNMENT_TYPE,
            self.server_assignment_type.code(),
        ));
        m.push(Avp::integer32(
            &cx::USER_DATA_ALREADY_AVAILABLE,
            self.user_data_already_available as i32,
        ));
        m
    }

    /// Decodes and validates a received SAR.
    pub fn from_message(m: &Message) -> Result<Self, CxDecodeError> {
        let routing = read_request(m, CMD_SERVER_ASSIGNMENT)?;
        let udaa = m.required(&cx::USER_DATA_ALREADY_AVAILABLE)?;
        let user_data_already_available = match udaa.as_i32()? {
            0 => false,
            1 => true,
            _ => {
                return Err(udaa
                    .invalid_value("User-Data-Already-Available must be 0 or 1")
                    .into())
            }
        };
        Ok(ServerAssignmentRequest {
            routing,
            user_name: m.get_utf8(&base::USER_NAME)?,
            public_identities: m.all_utf8(&cx::PUBLIC_IDENTITY)?,
            server_name: m.require_utf8(&cx::SERVER_NAME)?,
            server_assignment_type: require_enum(m, &cx::SERVER_ASSIGNMENT_TYPE)?,
            user_data_already_available,
        })
    }
}

/// SAA: HSS → S-CSCF, with the user profile (User-Data) on registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAssignmentAnswer {
    /// Routing AVPs.
    pub routing: AnswerRouting,
    /// Result-Code / Experimental-Result.
    pub outcome: CxOutcome,
    /// User-Name.
    pub user_name: Option<String>,
    /// User-Data: IMSSubscription XML (TS 29.228 annex E).
    pub user_data: Option<String>,
    /// Charging-Information.
    pub charging_information: Option<ChargingInformation>,
    /// Associated-Identities: other IMPIs sharing the IMPUs (User-Name members).
    pub associated_identities: Vec<String>,
    /// Server-Name (when the HSS reports the stored one).
    pub server_name: Option<String>,
}

impl ServerAssignmentAnswer {
    /// An answer with only an outcome.
    pub fn new(outcome: CxOutcome) -> Self {
        ServerAssignmentAnswer {
            routing: AnswerRouting::default(),
            outcome,
            user_name: None,
            user_data: None,
            charging_information: None,
            associated_identities: Vec::new(),
            server_name: None,
        }
    }

    /// Encodes as the answer to `request`.
    pub fn to_message(&self, request: &Message) -> Message {
        let mut m = new_answer(request, &self.routing, self.outcome);
        if let Some(u) = &self.user_name {
            m.push(Avp::utf8(&base::USER_NAME, u));
        }
        if let Some(d) = &self.user_data {
            m.push(Avp::utf8(&cx::USER_DATA, d));
        }
        if let Some(c) = &self.charging_information {
            m.push(c.to_avp());
        }
        if !self.associated_identities.is_empty() {
            let members: Vec<Avp> = self
                .associated_identities
                .iter()
                .map(|u| Avp::utf8(&base::USER_NAME, u))
                .collect();
            m.push(Avp::grouped(&cx::ASSOCIATED_IDENTITIES, &members));
        }
        if let Some(s) = &self.server_name {
            m.push(Avp::utf8(&cx::SERVER_NAME, s));
        }
        m.finish_answer(request)
    }

    /// Decodes a received SAA.
    pub fn from_message(m: &Message) -> Result<Self, CxDecodeError> {
        let (routing, outcome) = read_answer(m, CMD_SERVER_ASSIGNMENT)?;
        let associated_identities = match m.get_grouped(&cx::ASSOCIATED_IDENTITIES)? {
            Some(g) => g.all_utf8(&base::USER_NAME)?,
            None => Vec::new(),
        };
        Ok(ServerAssignmentAnswer {
            routing,
            outcome,
            user_name: m.get_utf8(&base::USER_NAME)?,
            user_data: get_text(m, &cx::USER_DATA)?,
            charging_information: m
                .get_grouped(&cx::CHARGING_INFORMATION)?
                .map(|g| ChargingInformation::from_avps(&g))
                .transpose()?,
            associated_identities,
            server_name: m.get_utf8(&cx::SERVER_NAME)?,
        })
    }
}
