//! Test helpers shared by unit and integration tests: a scriptable fake HSS and
//! REGISTER builders. Public (not `cfg(test)`) so `tests/` and the lead's end-to-end
//! tests can use them; nothing here touches the network.

use crate::cx::{AuthScheme, AuthVector, Cx, CxError, MarRequest, SarAnswer, SarRequest};
use crate::digest::{ha1, ha2, request_digest, QopFields};
use bytes::Bytes;
use ims_sip_core::builder::ResponseBuilder;
use ims_sip_core::{Message, StatusCode};
use std::sync::Mutex;
use std::time::Duration;

/// TS 35.208 test set 1: RAND.
pub const SET1_RAND: &str = "23553cbe9637a89d218ae64dae47bf35";
/// TS 35.208 test set 1: AUTN = (SQN ⊕ AK) ‖ AMF ‖ MAC-A.
pub const SET1_AUTN: &str = "55f328b43577b9b94a9ffac354dfafb3";
/// TS 35.208 test set 1: RES (f2).
pub const SET1_RES: &str = "a54211d5e3ba50bf";
/// TS 35.208 test set 1: CK (f3).
pub const SET1_CK: &str = "b40ba9a3c58b2a05bbf0d987b21bf8cb";
/// TS 35.208 test set 1: IK (f4).
pub const SET1_IK: &str = "f769bcd751044604127672711c6d3441";

/// How the fake HSS behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FakeMode {
    /// AKA vectors (TS 35.208 set 1; RAND varied per MAR in its last byte).
    Aka,
    /// Password subscribers: AKA MAR → 5006, SIP Digest MAR → HA1 of this password.
    Password(String),
    /// Every request fails with this error.
    Fail(CxError),
    /// Never answers (the caller's timeout must fire).
    Hang,
}

/// A scriptable in-memory HSS.
#[derive(Debug)]
pub struct FakeHss {
    /// Behaviour.
    pub mode: Mutex<FakeMode>,
    /// Realm for SIP Digest HA1.
    pub realm: String,
    /// IMPUs of the implicit registration set returned in SAA User-Data.
    pub irs: Vec<String>,
    /// MARs received.
    pub mars: Mutex<Vec<MarRequest>>,
    /// SARs received.
    pub sars: Mutex<Vec<SarRequest>>,
    /// Delay before each SAA (to let concurrent requests interleave).
    pub sar_delay: Mutex<Duration>,
    /// Delay before each MAA (to let retransmissions arrive while a MAR is out).
    pub mar_delay: Mutex<Duration>,
}

impl FakeHss {
    /// An AKA HSS whose SAA lists `irs` as the implicit registration set.
    pub fn new(irs: &[&str]) -> FakeHss {
        FakeHss {
            mode: Mutex::new(FakeMode::Aka),
            realm: "ims.test".into(),
            irs: irs.iter().map(|s| s.to_string()).collect(),
            mars: Mutex::new(Vec::new()),
            sars: Mutex::new(Vec::new()),
            sar_delay: Mutex::new(Duration::ZERO),
            mar_delay: Mutex::new(Duration::ZERO),
        }
    }

    /// Delays every MAA by `d`.
    pub fn set_mar_delay(&self, d: Duration) {
        *self.mar_delay.lock().unwrap_or_else(|p| p.into_inner()) = d;
    }

    /// Switches behaviour.
    pub fn set_mode(&self, m: FakeMode) {
        *self.mode.lock().unwrap_or_else(|p| p.into_inner()) = m;
    }

    fn mode(&self) -> FakeMode {
        self.mode.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// SARs received so far.
    pub fn sar_log(&self) -> Vec<SarRequest> {
        self.sars.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// MARs received so far.
    pub fn mar_log(&self) -> Vec<MarRequest> {
        self.mars.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// User-Data XML for the IRS.
    pub fn user_data(&self) -> String {
        let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?><IMSSubscription><PrivateID>x</PrivateID><ServiceProfile>");
        for i in &self.irs {
            x.push_str(&format!(
                "<PublicIdentity><Identity>{i}</Identity></PublicIdentity>"
            ));
        }
        x.push_str("</ServiceProfile></IMSSubscription>");
        x
    }
}

#[async_trait::async_trait]
impl Cx for FakeHss {
    async fn mar(&self, req: MarRequest) -> Result<Vec<AuthVector>, CxError> {
        let n = {
            let mut l = self.mars.lock().unwrap_or_else(|p| p.into_inner());
            l.push(req.clone());
            l.len()
        };
        let delay = *self.mar_delay.lock().unwrap_or_else(|p| p.into_inner());
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        match self.mode() {
            FakeMode::Fail(e) => Err(e),
            FakeMode::Hang => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Err(CxError::Timeout)
            }
            FakeMode::Password(pw) => match req.scheme {
                AuthScheme::AkaV1Md5 => Err(CxError::Experimental(5006)),
                AuthScheme::SipDigest => Ok(vec![AuthVector::Digest {
                    ha1: ha1(&req.impi, &self.realm, pw.as_bytes()),
                }]),
            },
            FakeMode::Aka => {
                // RAND made unique per MAR (bytes 8..16 carry the MAR count).
                let mut rand = hex::decode(SET1_RAND).unwrap_or_default();
                if n > 1 {
                    for (b, x) in rand[8..].iter_mut().zip((n as u64).to_be_bytes()) {
                        *b ^= x;
                    }
                }
                let mut ra = rand;
                ra.extend(hex::decode(SET1_AUTN).unwrap_or_default());
                Ok(vec![AuthVector::Aka {
                    rand_autn: ra,
                    xres: hex::decode(SET1_RES).unwrap_or_default(),
                    ck: hex::decode(SET1_CK).unwrap_or_default(),
                    ik: hex::decode(SET1_IK).unwrap_or_default(),
                }])
            }
        }
    }

    async fn sar(&self, req: SarRequest) -> Result<SarAnswer, CxError> {
        self.sars
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(req);
        let delay = *self.sar_delay.lock().unwrap_or_else(|p| p.into_inner());
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        match self.mode() {
            FakeMode::Fail(e) => Err(e),
            FakeMode::Hang => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Err(CxError::Timeout)
            }
            _ => Ok(SarAnswer {
                user_data: Some(self.user_data()),
            }),
        }
    }
}

/// Parameters of a test REGISTER.
#[derive(Debug, Clone)]
pub struct RegisterSpec {
    /// IMPU (To/From).
    pub impu: String,
    /// IMPI (Authorization username).
    pub impi: String,
    /// Contact header values.
    pub contacts: Vec<String>,
    /// Expires header.
    pub expires: Option<u32>,
    /// Call-ID.
    pub call_id: String,
    /// CSeq.
    pub cseq: u32,
    /// Authorization value, if any.
    pub authorization: Option<String>,
    /// Via sent-by.
    pub via: String,
}

impl RegisterSpec {
    /// Alice from a UE at 10.0.0.9, via a P-CSCF `Path`.
    pub fn alice() -> RegisterSpec {
        RegisterSpec {
            impu: "sip:alice@ims.test".into(),
            impi: "alice@ims.test".into(),
            contacts: vec!["<sip:alice@10.0.0.9:5060>".into()],
            expires: Some(600),
            call_id: "reg-alice-1".into(),
            cseq: 1,
            authorization: None,
            via: "127.0.0.1:5070".into(),
        }
    }

    /// Renders the request. The Via branch is unique per Call-ID and CSeq (RFC 3261
    /// §8.1.1.7), so the same spec rendered twice is a retransmission.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "REGISTER sip:ims.test SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK{:x}x{}\r\nMax-Forwards: 70\r\nFrom: <{}>;tag=ue1\r\nTo: <{}>\r\nCall-ID: {}\r\nCSeq: {} REGISTER\r\nPath: <sip:term@pcscf.ims.test:5060;lr>\r\n",
            self.via, crate::model::fnv64(&[&self.call_id]), self.cseq, self.impu, self.impu, self.call_id, self.cseq
        );
        for c in &self.contacts {
            s.push_str(&format!("Contact: {c}\r\n"));
        }
        if let Some(e) = self.expires {
            s.push_str(&format!("Expires: {e}\r\n"));
        }
        if let Some(a) = &self.authorization {
            s.push_str(&format!("Authorization: {a}\r\n"));
        }
        s.push_str("Content-Length: 0\r\n\r\n");
        s
    }
}

/// The `nonce` of a WWW-Authenticate value.
pub fn nonce_of(www: &str) -> Option<String> {
    let i = www.find("nonce=\"")? + 7;
    let j = www[i..].find('"')? + i;
    Some(www[i..j].to_string())
}

/// An Authorization value answering `nonce` with `password` (qop=auth when `qop`).
pub fn answer(impi: &str, realm: &str, nonce: &str, password: &[u8], qop: bool, nc: u32) -> String {
    let h1 = ha1(impi, realm, password);
    let h2 = ha2("REGISTER", "sip:ims.test");
    let ncs = format!("{nc:08x}");
    if qop {
        let r = request_digest(
            &h1,
            nonce,
            Some(QopFields {
                qop: "auth",
                nc: &ncs,
                cnonce: "c0ffee",
            }),
            &h2,
        );
        format!("Digest username=\"{impi}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"sip:ims.test\", response=\"{r}\", algorithm=AKAv1-MD5, qop=auth, nc={ncs}, cnonce=\"c0ffee\"")
    } else {
        let r = request_digest(&h1, nonce, None, &h2);
        format!("Digest username=\"{impi}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"sip:ims.test\", response=\"{r}\", algorithm=AKAv1-MD5")
    }
}

/// Status code of a response (0 for a request).
pub fn code(m: &Message) -> u16 {
    m.status().map(StatusCode::as_u16).unwrap_or(0)
}

/// The `tag` of the To header.
pub fn to_tag(m: &Message) -> Option<String> {
    m.to_addr()?.ok()?.tag().map(str::to_string)
}

/// A `200 OK` to a received request (what a UE answers to a NOTIFY).
pub fn ok_to(req: &Message) -> Bytes {
    ResponseBuilder::new(req, StatusCode::OK).build()
}

/// Parses a received datagram (copying it out of the receive buffer).
pub fn parse(datagram: &[u8]) -> Result<Message, ims_sip_core::ParseError> {
    Message::parse(Bytes::copy_from_slice(datagram))
}
