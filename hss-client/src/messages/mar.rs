//! Multimedia-Auth-Request/Answer, command 303 (TS 29.229 §6.1.7, §6.1.8;
//! procedure TS 29.228 §6.3, re-synchronisation §6.3.3).

use bytes::Bytes;
use ims_diameter::codec::{Avp, AvpSet, Message};
use ims_diameter::dictionary as base;

use super::common::*;
use super::types::SipAuthDataItem;
use crate::dictionary::{self as cx, SipAuthScheme, CMD_MULTIMEDIA_AUTH};

/// MAR: S-CSCF → HSS for authentication vectors.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultimediaAuthRequest {
    /// Routing AVPs.
    pub routing: RequestRouting,
    /// User-Name: the IMPI.
    pub user_name: String,
    /// Public-Identity: the IMPU.
    pub public_identity: String,
    /// SIP-Number-Auth-Items: how many vectors are wanted.
    pub sip_number_auth_items: u32,
    /// SIP-Auth-Data-Item: the scheme, and RAND‖AUTS for re-synchronisation.
    pub sip_auth_data_item: SipAuthDataItem,
    /// Server-Name of the requesting S-CSCF.
    pub server_name: String,
}

impl MultimediaAuthRequest {
    /// A MAR for `n` vectors of `scheme`.
    pub fn new(
        user_name: &str,
        public_identity: &str,
        server_name: &str,
        scheme: SipAuthScheme,
        n: u32,
    ) -> Self {
        MultimediaAuthRequest {
            routing: RequestRouting::default(),
            user_name: user_name.to_owned(),
            public_identity: public_identity.to_owned(),
            sip_number_auth_items: n,
            sip_auth_data_item: SipAuthDataItem {
                scheme: Some(scheme),
                ..Default::default()
            },
            server_name: server_name.to_owned(),
        }
    }

    /// Adds RAND‖AUTS for AKA re-synchronisation (TS 29.228 §6.3.3).
    pub fn with_resync(mut self, rand: &[u8], auts: &[u8]) -> Self {
        let mut v = Vec::with_capacity(rand.len() + auts.len());
        v.extend_from_slice(rand);
        v.extend_from_slice(auts);
        self.sip_auth_data_item.authorization = Some(Bytes::from(v));
        self
    }

    /// Encodes as a Diameter request.
    pub fn to_message(&self) -> Message {
        let mut m = new_request(CMD_MULTIMEDIA_AUTH, &self.routing);
        m.push(Avp::utf8(&base::USER_NAME, &self.user_name));
        m.push(Avp::utf8(&cx::PUBLIC_IDENTITY, &self.public_identity));
        // TS 29.229 §6.1.7 order: SIP-Auth-Data-Item, then SIP-Number-Auth-Items.
        m.push(self.sip_auth_data_item.to_avp());
        m.push(Avp::unsigned32(
            &cx::SIP_NUMBER_AUTH_ITEMS,
            self.sip_number_auth_items,
        ));
        m.push(Avp::utf8(&cx::SERVER_NAME, &self.server_name));
        m
    }

    /// Decodes and validates a received MAR.
    pub fn from_message(m: &Message) -> Result<Self, CxDecodeError> {
        let routing = read_request(m, CMD_MULTIMEDIA_AUTH)?;
        Ok(MultimediaAuthRequest {
            routing,
            user_name: m.require_utf8(&base::USER_NAME)?,
            public_identity: m.require_utf8(&cx::PUBLIC_IDENTITY)?,
            sip_number_auth_items: m.require_u32(&cx::SIP_NUMBER_AUTH_ITEMS)?,
            sip_auth_data_item: SipAuthDataItem::from_avps(
                &m.require_grouped(&cx::SIP_AUTH_DATA_ITEM)?,
            )?,
            server_name: m.require_utf8(&cx::SERVER_NAME)?,
        })
    }
}

/// MAA: HSS → S-CSCF with the vectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultimediaAuthAnswer {
    /// Routing AVPs.
    pub routing: AnswerRouting,
    /// Result-Code / Experimental-Result (e.g. 5001 USER_UNKNOWN, 5006
    /// AUTH_SCHEME_NOT_SUPPORTED).
    pub outcome: CxOutcome,
    /// User-Name.
    pub user_name: Option<String>,
    /// Public-Identity.
    pub public_identity: Option<String>,
    /// SIP-Number-Auth-Items: vectors returned.
    pub sip_number_auth_items: Option<u32>,
    /// SIP-Auth-Data-Item, one per vector.
    pub sip_auth_data_items: Vec<SipAuthDataItem>,
}

impl MultimediaAuthAnswer {
    /// An answer with only an outcome.
    pub fn new(outcome: CxOutcome) -> Self {
        MultimediaAuthAnswer {
            routing: AnswerRouting::default(),
            outcome,
            user_name: None,
            public_identity: None,
            sip_number_auth_items: None,
            sip_auth_data_items: Vec::new(),
        }
    }

    /// Encodes as the answer to `request`.
    pub fn to_message(&self, request: &Message) -> Message {
        let mut m = new_answer(request, &self.routing, self.outcome);
        if let Some(u) = &self.user_name {
            m.push(Avp::utf8(&base::USER_NAME, u));
        }
        if let Some(p) = &self.public_identity {
            m.push(Avp::utf8(&cx::PUBLIC_IDENTITY, p));
        }
        if let Some(n) = self.sip_number_auth_items {
            m.push(Avp::unsigned32(&cx::SIP_NUMBER_AUTH_ITEMS, n));
        }
        for i in &self.sip_auth_data_items {
            m.push(i.to_avp());
        }
        m.finish_answer(request)
    }

    /// Decodes a received MAA.
    pub fn from_message(m: &Message) -> Result<Self, CxDecodeError> {
        let (routing, outcome) = read_answer(m, CMD_MULTIMEDIA_AUTH)?;
        let items = m
            .find_all(&cx::SIP_AUTH_DATA_ITEM)
            .map(|a| a.as_grouped().and_then(|g| SipAuthDataItem::from_avps(&g)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(MultimediaAuthAnswer {
            routing,
            outcome,
            user_name: m.get_utf8(&base::USER_NAME)?,
            public_identity: m.get_utf8(&cx::PUBLIC_IDENTITY)?,
            sip_number_auth_items: m.get_u32(&cx::SIP_NUMBER_AUTH_ITEMS)?,
            sip_auth_data_items: items,
        })
    }
}
