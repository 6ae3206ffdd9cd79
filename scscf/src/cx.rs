//! The S-CSCF's view of Cx (TS 29.228 §6.1.2 SAR, §6.3 MAR, §6.1.3 RTR): the two requests it
//! sends, their answers and failures, behind an object-safe trait so the core is tested
//! with a fake HSS. [`crate::hss`] adapts the workspace `ims-hss-client` to it.

use std::fmt;

/// SIP-Authentication-Scheme asked for in a MAR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthScheme {
    /// `Digest-AKAv1-MD5`.
    AkaV1Md5,
    /// `SIP Digest` (HA1 from the HSS).
    SipDigest,
}

/// Server-Assignment-Type (TS 29.229 §6.3.15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerAssignmentType {
    /// 1
    Registration,
    /// 2
    ReRegistration,
    /// 4
    TimeoutDeregistration,
    /// 5
    UserDeregistration,
    /// 8
    AdministrativeDeregistration,
}

/// A Multimedia-Auth-Request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarRequest {
    /// User-Name (IMPI).
    pub impi: String,
    /// Public-Identity (IMPU).
    pub impu: String,
    /// Requested scheme.
    pub scheme: AuthScheme,
    /// Server-Name (own SIP URI).
    pub server_name: String,
    /// RAND ‖ AUTS for re-synchronisation (SIP-Authorization), else `None`.
    pub resync: Option<Vec<u8>>,
}

/// One authentication vector from the MAA.
#[derive(Clone, PartialEq, Eq)]
pub enum AuthVector {
    /// AKA: SIP-Authenticate = RAND ‖ AUTN, SIP-Authorization = XRES, CK, IK.
    Aka {
        /// RAND ‖ AUTN (32 octets).
        rand_autn: Vec<u8>,
        /// XRES (4–16 octets).
        xres: Vec<u8>,
        /// CK.
        ck: Vec<u8>,
        /// IK.
        ik: Vec<u8>,
    },
    /// SIP Digest: HA1 (hex) from SIP-Digest-Authenticate.
    Digest {
        /// HA1 as lower-case hex.
        ha1: String,
    },
}

impl fmt::Debug for AuthVector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthVector::Aka { .. } => f.write_str("AuthVector::Aka{..}"),
            AuthVector::Digest { .. } => f.write_str("AuthVector::Digest{..}"),
        }
    }
}

/// A Server-Assignment-Request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SarRequest {
    /// User-Name (IMPI).
    pub impi: String,
    /// Public-Identity.
    pub impu: String,
    /// Server-Name.
    pub server_name: String,
    /// Server-Assignment-Type.
    pub assignment: ServerAssignmentType,
}

/// Server-Assignment-Answer content the S-CSCF uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SarAnswer {
    /// User-Data (IMSSubscription XML), if sent.
    pub user_data: Option<String>,
}

/// Why a Cx request did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CxError {
    /// No answer within the request timeout.
    #[error("HSS did not answer in time")]
    Timeout,
    /// No peer connection.
    #[error("HSS unreachable: {0}")]
    Unreachable(String),
    /// Experimental-Result-Code (vendor 10415) other than success.
    #[error("HSS experimental result {0}")]
    Experimental(u32),
    /// Result-Code other than success (e.g. 3004 DIAMETER_TOO_BUSY, 5xxx).
    #[error("HSS result code {0}")]
    ResultCode(u32),
    /// Answer was malformed or lacked a needed AVP.
    #[error("bad answer from HSS: {0}")]
    BadAnswer(String),
}

/// The Cx requests the S-CSCF sends.
#[async_trait::async_trait]
pub trait Cx: Send + Sync {
    /// MAR → vectors.
    async fn mar(&self, req: MarRequest) -> Result<Vec<AuthVector>, CxError>;
    /// SAR → user data.
    async fn sar(&self, req: SarRequest) -> Result<SarAnswer, CxError>;
}

/// Extracts the public identities of an IMSSubscription (TS 29.228 Annex E:
/// `ServiceProfile/PublicIdentity/Identity`), in document order, without duplicates.
pub fn identities_from_user_data(xml: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find("<PublicIdentity") {
        rest = &rest[i..];
        let end = rest.find("</PublicIdentity>").unwrap_or(rest.len());
        let block = &rest[..end];
        if let Some(s) = block.find("<Identity>") {
            let after = &block[s + "<Identity>".len()..];
            if let Some(e) = after.find("</Identity>") {
                let id = xml_unescape(after[..e].trim());
                if !id.is_empty() && !out.contains(&id) {
                    out.push(id);
                }
            }
        }
        rest = &rest[end.min(rest.len())..];
        if end == 0 {
            break;
        }
        if let Some(stripped) = rest.strip_prefix("</PublicIdentity>") {
            rest = stripped;
        }
    }
    out
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_data_identities() {
        let xml = r#"<?xml version="1.0"?><IMSSubscription><PrivateID>a@ims.test</PrivateID>
<ServiceProfile><PublicIdentity><BarringIndication>0</BarringIndication><Identity>sip:alice@ims.test</Identity></PublicIdentity>
<PublicIdentity><Identity>tel:+15551234</Identity><Extension><IdentityType>0</IdentityType></Extension></PublicIdentity>
<PublicIdentity><Identity>sip:alice@ims.test</Identity></PublicIdentity></ServiceProfile></IMSSubscription>"#;
        assert_eq!(
            identities_from_user_data(xml),
            vec!["sip:alice@ims.test", "tel:+15551234"]
        );
        assert!(identities_from_user_data("garbage<PublicIdentity>").is_empty());
    }
}
