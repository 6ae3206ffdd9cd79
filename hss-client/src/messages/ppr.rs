//! Push-Profile-Request/Answer, command 305 (TS 29.229 §6.1.11, §6.1.12;
//! procedure TS 29.228 §6.5.2.1): HSS-initiated profile update.

use ims_diameter::codec::{Avp, AvpSet, Message};
use ims_diameter::dictionary as base;

use super::common::*;
use super::types::{ChargingInformation, SipAuthDataItem};
use crate::dictionary::{self as cx, CMD_PUSH_PROFILE};

/// PPR: HSS → S-CSCF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushProfileRequest {
    /// Routing AVPs (Destination-Host is the serving S-CSCF).
    pub routing: RequestRouting,
    /// User-Name: the IMPI.
    pub user_name: String,
    /// User-Data: the new IMSSubscription XML.
    pub user_data: Option<String>,
    /// Charging-Information.
    pub charging_information: Option<ChargingInformation>,
    /// SIP-Auth-Data-Item (e.g. new digest credentials).
    pub sip_auth_data_item: Option<SipAuthDataItem>,
}

impl PushProfileRequest {
    /// Encodes as a Diameter request.
    pub fn to_message(&self) -> Message {
        let mut m = new_request(CMD_PUSH_PROFILE, &self.routing);
        m.push(Avp::utf8(&base::USER_NAME, &self.user_name));
        if let Some(d) = &self.user_data {
            m.push(Avp::utf8(&cx::USER_DATA, d));
        }
        if let Some(c) = &self.charging_information {
            m.push(c.to_avp());
        }
        if let Some(i) = &self.sip_auth_data_item {
            m.push(i.to_avp());
        }
        m
    }

    /// Decodes and validates a received PPR.
    pub fn from_message(m: &Message) -> Result<Self, CxDecodeError> {
        let routing = read_request(m, CMD_PUSH_PROFILE)?;
        Ok(PushProfileRequest {
            routing,
            user_name: m.require_utf8(&base::USER_NAME)?,
            user_data: get_text(m, &cx::USER_DATA)?,
            charging_information: m
                .get_grouped(&cx::CHARGING_INFORMATION)?
                .map(|g| ChargingInformation::from_avps(&g))
                .transpose()?,
            sip_auth_data_item: m
                .get_grouped(&cx::SIP_AUTH_DATA_ITEM)?
                .map(|g| SipAuthDataItem::from_avps(&g))
                .transpose()?,
        })
    }
}

/// PPA: S-CSCF → HSS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushProfileAnswer {
    /// Routing AVPs.
    pub routing: AnswerRouting,
    /// Result-Code / Experimental-Result.
    pub outcome: CxOutcome,
}

impl PushProfileAnswer {
    /// An answer with only an outcome.
    pub fn new(outcome: CxOutcome) -> Self {
        PushProfileAnswer {
            routing: AnswerRouting::default(),
            outcome,
        }
    }

    /// Encodes as the answer to `request`.
    pub fn to_message(&self, request: &Message) -> Message {
        new_answer(request, &self.routing, self.outcome).finish_answer(request)
    }

    /// Decodes a received PPA.
    pub fn from_message(m: &Message) -> Result<Self, CxDecodeError> {
        let (routing, outcome) = read_answer(m, CMD_PUSH_PROFILE)?;
        Ok(PushProfileAnswer { routing, outcome })
    }
}
