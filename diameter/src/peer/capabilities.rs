//! Capabilities exchange content (RFC 6733 §5.3): the local node's identity and
//! applications, building CER/CEA and reading the peer's, and the common
//! application check (§5.3 "no common application" → 5010).

use std::net::IpAddr;

use crate::codec::{Avp, AvpSet, CommandFlags, DecodeError, Message, ResultCode};
use crate::dictionary as d;

/// An application a node supports, as advertised in CER/CEA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApplicationId {
    /// Auth-Application-Id.
    Auth(u32),
    /// Acct-Application-Id.
    Acct(u32),
    /// Vendor-Specific-Application-Id {Vendor-Id, Auth-Application-Id}.
    VendorAuth {
        /// Vendor-Id.
        vendor_id: u32,
        /// Auth-Application-Id.
        application_id: u32,
    },
    /// Vendor-Specific-Application-Id {Vendor-Id, Acct-Application-Id}.
    VendorAcct {
        /// Vendor-Id.
        vendor_id: u32,
        /// Acct-Application-Id.
        application_id: u32,
    },
}

impl ApplicationId {
    /// The Application-ID as it appears in message headers.
    pub fn id(self) -> u32 {
        match self {
            ApplicationId::Auth(a) | ApplicationId::Acct(a) => a,
            ApplicationId::VendorAuth { application_id, .. }
            | ApplicationId::VendorAcct { application_id, .. } => application_id,
        }
    }

    fn to_avp(self) -> Avp {
        match self {
            ApplicationId::Auth(a) => Avp::unsigned32(&d::AUTH_APPLICATION_ID, a),
            ApplicationId::Acct(a) => Avp::unsigned32(&d::ACCT_APPLICATION_ID, a),
            ApplicationId::VendorAuth {
                vendor_id,
                application_id,
            } => Avp::grouped(
                &d::VENDOR_SPECIFIC_APPLICATION_ID,
                &[
                    Avp::unsigned32(&d::VENDOR_ID, vendor_id),
                    Avp::unsigned32(&d::AUTH_APPLICATION_ID, application_id),
                ],
            ),
            ApplicationId::VendorAcct {
                vendor_id,
                application_id,
            } => Avp::grouped(
                &d::VENDOR_SPECIFIC_APPLICATION_ID,
                &[
                    Avp::unsigned32(&d::VENDOR_ID, vendor_id),
                    Avp::unsigned32(&d::ACCT_APPLICATION_ID, application_id),
                ],
            ),
        }
    }
}

/// What this node says about itself in CER/CEA/DWR/DPR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalNode {
    /// Origin-Host (DiameterIdentity, FQDN).
    pub origin_host: String,
    /// Origin-Realm.
    pub origin_realm: String,
    /// Host-IP-Address values (at least one, RFC 6733 §5.3.1).
    pub host_ip_addresses: Vec<IpAddr>,
    /// Vendor-Id of this implementation (0 if none).
    pub vendor_id: u32,
    /// Product-Name.
    pub product_name: String,
    /// Firmware-Revision.
    pub firmware_revision: Option<u32>,
    /// Origin-State-Id (incremented on every restart, if used).
    pub origin_state_id: Option<u32>,
    /// Supported-Vendor-Id values.
    pub supported_vendor_ids: Vec<u32>,
    /// Applications supported.
    pub applications: Vec<ApplicationId>,
}

impl LocalNode {
    /// A node with the Cx application (Vendor-Specific-Application-Id {10415,
    /// 16777216}) and Supported-Vendor-Id 10415, as the IMS nodes use it.
    pub fn cx(origin_host: &str, origin_realm: &str, host_ip_address: IpAddr) -> LocalNode {
        LocalNode {
            origin_host: origin_host.to_owned(),
            origin_realm: origin_realm.to_owned(),
            host_ip_addresses: vec![host_ip_address],
            vendor_id: d::VENDOR_3GPP,
            product_name: "ims-core".to_owned(),
            firmware_revision: None,
            origin_state_id: None,
            supported_vendor_ids: vec![d::VENDOR_3GPP],
            applications: vec![ApplicationId::VendorAuth {
                vendor_id: d::VENDOR_3GPP,
                application_id: 16_777_216,
            }],
        }
    }

    fn push_identity(&self, m: &mut Message) {
        m.push(Avp::utf8(&d::ORIGIN_HOST, &self.origin_host));
        m.push(Avp::utf8(&d::ORIGIN_REALM, &self.origin_realm));
    }

    fn push_capabilities(&self, m: &mut Message) {
        self.push_identity(m);
        for ip in &self.host_ip_addresses {
            m.push(Avp::address(&d::HOST_IP_ADDRESS, *ip));
        }
        m.push(Avp::unsigned32(&d::VENDOR_ID, self.vendor_id));
        m.push(Avp::utf8(&d::PRODUCT_NAME, &self.product_name));
        if let Some(s) = self.origin_state_id {
            m.push(Avp::unsigned32(&d::ORIGIN_STATE_ID, s));
        }
        for v in &self.supported_vendor_ids {
            m.push(Avp::unsigned32(&d::SUPPORTED_VENDOR_ID, *v));
        }
        for a in &self.applications {
            m.push(a.to_avp());
        }
        if let Some(f) = self.firmware_revision {
            m.push(Avp::unsigned32(&d::FIRMWARE_REVISION, f));
        }
    }

    /// CER (RFC 6733 §5.3.1).
    pub fn cer(&self) -> Message {
        let mut m = base_request(d::CMD_CAPABILITIES_EXCHANGE);
        self.push_capabilities(&mut m);
        m
    }

    /// CEA (§5.3.2) answering `cer` with `result`.
    pub fn cea(&self, cer: &Message, result: ResultCode) -> Message {
        let mut m = Message::answer_to(cer);
        m.header
            .flags
            .set(CommandFlags::ERROR, result.is_protocol_error());
        m.push(Avp::unsigned32(&d::RESULT_CODE, result.code()));
        self.push_capabilities(&mut m);
        m
    }

    /// DWR (§5.5.1).
    pub fn dwr(&self) -> Message {
        let mut m = base_request(d::CMD_DEVICE_WATCHDOG);
        self.push_identity(&mut m);
        if let Some(s) = self.origin_state_id {
            m.push(Avp::unsigned32(&d::ORIGIN_STATE_ID, s));
        }
        m
    }

    /// DWA (§5.5.2).
    pub fn dwa(&self, dwr: &Message) -> Message {
        let mut m = Message::answer_to(dwr);
        m.push(Avp::unsigned32(&d::RESULT_CODE, ResultCode::Success.code()));
        self.push_identity(&mut m);
        if let Some(s) = self.origin_state_id {
            m.push(Avp::unsigned32(&d::ORIGIN_STATE_ID, s));
        }
        m
    }

    /// DPR (§5.4.1).
    pub fn dpr(&self, cause: d::DisconnectCause) -> Message {
        let mut m = base_request(d::CMD_DISCONNECT_PEER);
        self.push_identity(&mut m);
        m.push(Avp::integer32(&d::DISCONNECT_CAUSE, cause.code()));
        m
    }

    /// DPA (§5.4.2).
    pub fn dpa(&self, dpr: &Message) -> Message {
        let mut m = Message::answer_to(dpr);
        m.push(Avp::unsigned32(&d::RESULT_CODE, ResultCode::Success.code()));
        self.push_identity(&mut m);
        m
    }

    /// Applications both sides support (§5.3: the relay id 0xffffffff matches all).
    pub fn common_applications(&self, remote: &[ApplicationId]) -> Vec<ApplicationId> {
        let remote_relay = remote.iter().any(|a| a.id() == d::APP_RELAY);
        self.applications
            .iter()
            .filter(|a| {
                a.id() == d::APP_RELAY || remote_relay || remote.iter().any(|r| r.id() == a.id())
            })
            .copied()
            .collect()
    }
}

/// Base protocol requests are not proxiable (RFC 6733 §5.3.1, §5.4.1, §5.5.1).
fn base_request(code: u32) -> Message {
    let mut m = Message::request(code, d::APP_COMMON);
    m.header.flags.set(CommandFlags::PROXIABLE, false);
    m
}

/// What the peer said about itself in its CER or CEA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteCapabilities {
    /// Origin-Host.
    pub origin_host: String,
    /// Origin-Realm.
    pub origin_realm: String,
    /// Host-IP-Address values.
    pub host_ip_addresses: Vec<IpAddr>,
    /// Vendor-Id.
    pub vendor_id: u32,
    /// Product-Name.
    pub product_name: String,
    /// Origin-State-Id.
    pub origin_state_id: Option<u32>,
    /// Applications advertised.
    pub applications: Vec<ApplicationId>,
    /// Applications both sides support.
    pub common_applications: Vec<ApplicationId>,
}

impl RemoteCapabilities {
    /// Reads a CER or CEA. Origin-Host and Origin-Realm are required (5005);
    /// the other AVPs are read leniently (peers differ in what they send).
    pub fn read(m: &Message, local: &LocalNode) -> Result<RemoteCapabilities, DecodeError> {
        let mut applications = Vec::new();
        for a in &m.avps {
            if d::AUTH_APPLICATION_ID.matches(a) {
                applications.push(ApplicationId::Auth(a.as_u32()?));
            } else if d::ACCT_APPLICATION_ID.matches(a) {
                applications.push(ApplicationId::Acct(a.as_u32()?));
            } else if d::VENDOR_SPECIFIC_APPLICATION_ID.matches(a) {
                let g = a.as_grouped()?;
                // RFC 6733 §6.11: one Vendor-Id; some peers send several, take the first.
                let vendor_id = g
                    .find(&d::VENDOR_ID)
                    .map(Avp::as_u32)
                    .transpose()?
                    .unwrap_or(0);
                if let Some(id) = g.get_u32(&d::AUTH_APPLICATION_ID)? {
                    applications.push(ApplicationId::VendorAuth {
                        vendor_id,
                        application_id: id,
                    });
                }
                if let Some(id) = g.get_u32(&d::ACCT_APPLICATION_ID)? {
                    applications.push(ApplicationId::VendorAcct {
                        vendor_id,
                        application_id: id,
                    });
                }
            }
        }
        let host_ip_addresses = m
            .find_all(&d::HOST_IP_ADDRESS)
            .filter_map(|a| a.as_address().ok())
            .collect();
        let common_applications = local.common_applications(&applications);
        Ok(RemoteCapabilities {
            origin_host: m.require_utf8(&d::ORIGIN_HOST)?,
            origin_realm: m.require_utf8(&d::ORIGIN_REALM)?,
            host_ip_addresses,
            vendor_id: m
                .find(&d::VENDOR_ID)
                .and_then(|a| a.as_u32().ok())
                .unwrap_or(0),
            product_name: m
                .find(&d::PRODUCT_NAME)
                .and_then(|a| a.as_utf8().ok())
                .unwrap_or_default()
                .to_owned(),
            origin_state_id: m.find(&d::ORIGIN_STATE_ID).and_then(|a| a.as_u32().ok()),
            applications,
            common_applications,
        })
    }

    /// Whether requests of `application_id` may be exchanged with this peer.
    pub fn supports(&self, application_id: u32) -> bool {
        application_id == d::APP_COMMON
            || self
                .common_applications
                .iter()
                .any(|a| a.id() == application_id || a.id() == d::APP_RELAY)
    }
}
