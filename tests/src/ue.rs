//! A minimal, independent test UE: builds REGISTERs as text, sends them over UDP and
//! computes RFC 3310 AKAv1-MD5 responses with the `milenage` crate directly. It exists for
//! what SIPp cannot do (SIPp 3.6 never sends `auts`, and aborts on a MAC failure): SQN
//! re-synchronisation (TS 33.102 §6.3.3) and a UE whose K differs from the HSS's.
//! It does not use the project's SIP or Milenage code, so it checks them independently.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine;
use md5::{Digest, Md5};
use milenage::Milenage;

/// A received SIP response, reduced to what the tests look at.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub raw: String,
}

impl Response {
    /// Value of the first header named `name` (case-insensitive), without the name.
    pub fn header(&self, name: &str) -> Option<String> {
        self.raw.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }

    /// A parameter of the WWW-Authenticate header (quotes removed).
    pub fn www_auth_param(&self, param: &str) -> Option<String> {
        let h = self.header("WWW-Authenticate")?;
        let h = h.strip_prefix("Digest").unwrap_or(&h);
        for part in h.split(',') {
            let (k, v) = part.trim().split_once('=')?;
            if k.trim().eq_ignore_ascii_case(param) {
                return Some(v.trim().trim_matches('"').to_string());
            }
        }
        None
    }
}

/// The UE's SIM: K and OP, used with the `milenage` crate directly.
pub struct Sim {
    pub k: [u8; 16],
    pub op: [u8; 16],
    /// Highest SQN accepted so far (for the SQN check of TS 33.102 §6.3.3).
    pub sqn_ms: u64,
}

/// What the SIM concluded from a challenge.
pub enum Challenge {
    /// AUTN verified, SQN fresh: RES to use as the digest password.
    Res(Vec<u8>),
    /// AUTN verified but SQN not fresh: AUTS = (SQN_MS ⊕ AK*) ‖ MAC-S.
    SyncFailure { auts: Vec<u8> },
    /// MAC-A did not verify (wrong K/OP on one side).
    MacFailure,
}

impl Sim {
    /// Runs the USIM side of AKA (TS 33.102 §6.3.3) on `nonce` = base64(RAND ‖ AUTN).
    pub fn challenge(
        &mut self,
        nonce_b64: &str,
        amf_expected: Option<[u8; 2]>,
    ) -> Result<Challenge> {
        let nonce = base64::engine::general_purpose::STANDARD
            .decode(nonce_b64)
            .context("nonce is not base64")?;
        if nonce.len() < 32 {
            bail!("nonce has {} bytes, want 32", nonce.len());
        }
        let rand: [u8; 16] = nonce[..16].try_into()?;
        let autn = &nonce[16..32];
        let mut m = Milenage::new_with_op(self.k, self.op);
        let (res, _ck, _ik, ak) = m.f2345(&rand);
        let mut sqn = [0u8; 6];
        for i in 0..6 {
            sqn[i] = autn[i] ^ ak[i];
        }
        let amf: [u8; 2] = autn[6..8].try_into()?;
        if let Some(e) = amf_expected {
            if e != amf {
                bail!("AMF in AUTN {amf:02x?} differs from the provisioned {e:02x?}");
            }
        }
        let mac = m.f1(&rand, &sqn, &amf);
        if mac[..] != autn[8..16] {
            return Ok(Challenge::MacFailure);
        }
        let sqn_val = u64::from_be_bytes([0, 0, sqn[0], sqn[1], sqn[2], sqn[3], sqn[4], sqn[5]]);
        if sqn_val <= self.sqn_ms {
            let ak_star = m.f5star(&rand);
            let sqn_ms = self.sqn_ms.to_be_bytes();
            let sqn_ms: [u8; 6] = sqn_ms[2..8].try_into()?;
            let mut auts = Vec::with_capacity(14);
            for i in 0..6 {
                auts.push(sqn_ms[i] ^ ak_star[i]);
            }
            let mac_s = m.f1star(&rand, &sqn_ms, &[0, 0]);
            auts.extend_from_slice(&mac_s);
            return Ok(Challenge::SyncFailure { auts });
        }
        self.sqn_ms = sqn_val;
        Ok(Challenge::Res(res.to_vec()))
    }
}

/// RFC 2617 digest response with qop=auth, the password given as raw bytes (RFC 3310:
/// for AKAv1-MD5 the password is RES).
#[allow(clippy::too_many_arguments)]
pub fn digest_response(
    username: &str,
    realm: &str,
    password: &[u8],
    method: &str,
    uri: &str,
    nonce: &str,
    nc: &str,
    cnonce: &str,
) -> String {
    let mut h = Md5::new();
    h.update(username.as_bytes());
    h.update(b":");
    h.update(realm.as_bytes());
    h.update(b":");
    h.update(password);
    let ha1 = hex::encode(h.finalize());
    let ha2 = hex::encode(Md5::digest(format!("{method}:{uri}").as_bytes()));
    hex::encode(Md5::digest(
        format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}").as_bytes(),
    ))
}

/// A UE on one UDP socket, registering one IMPU through the P-CSCF.
pub struct TestUe {
    pub sock: UdpSocket,
    pub pcscf: SocketAddr,
    pub impu: String,
    pub impi: String,
    pub domain: String,
    pub call_id: String,
    pub cseq: u32,
    /// Requests received while waiting for responses (already answered 200).
    pub requests: Vec<String>,
}

impl TestUe {
    /// Binds `local_ip:0` and targets `pcscf`.
    pub fn new(
        local_ip: &str,
        pcscf: SocketAddr,
        impu: &str,
        impi: &str,
        domain: &str,
    ) -> Result<TestUe> {
        let sock = UdpSocket::bind((local_ip, 0))?;
        sock.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(TestUe {
            sock,
            pcscf,
            impu: impu.to_string(),
            impi: impi.to_string(),
            domain: domain.to_string(),
            call_id: format!("test-ue-{}", rand::random::<u64>()),
            cseq: 1,
            requests: Vec::new(),
        })
    }

    /// Sends a REGISTER with the given Authorization header value and Expires, and
    /// returns the first final response (1xx are skipped).
    pub fn register(&mut self, authorization: Option<&str>, expires: u32) -> Result<Response> {
        let local = self.sock.local_addr()?;
        let branch = format!("z9hG4bK{}", rand::random::<u64>());
        let auth = match authorization {
            Some(a) => format!("Authorization: {a}\r\n"),
            None => format!(
                "Authorization: Digest username=\"{}\", realm=\"{}\", nonce=\"\", uri=\"sip:{}\", response=\"\"\r\n",
                self.impi, self.domain, self.domain
            ),
        };
        let msg = format!(
            "REGISTER sip:{domain} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch={branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <{impu}>;tag=ue{tag}\r\n\
             To: <{impu}>\r\n\
             Call-ID: {cid}\r\n\
             CSeq: {cseq} REGISTER\r\n\
             Contact: <sip:ue@{local}>\r\n\
             Expires: {expires}\r\n\
             Supported: path\r\n\
             {auth}\
             Content-Length: 0\r\n\r\n",
            domain = self.domain,
            impu = self.impu,
            tag = self.cseq,
            cid = self.call_id,
            cseq = self.cseq,
        );
        self.cseq += 1;
        self.sock.send_to(msg.as_bytes(), self.pcscf)?;
        self.final_response("REGISTER")
    }

    /// Waits for the next final response; requests arriving meanwhile (NOTIFY) are
    /// answered 200 and queued in `self.requests`.
    pub fn final_response(&mut self, what: &str) -> Result<Response> {
        let mut buf = vec![0u8; 65535];
        loop {
            let (n, from) = self
                .sock
                .recv_from(&mut buf)
                .map_err(|e| anyhow!("no response to {what} from {}: {e}", self.pcscf))?;
            let raw = String::from_utf8_lossy(&buf[..n]).to_string();
            if !raw.starts_with("SIP/2.0") {
                self.answer_request(&raw, from)?;
                self.requests.push(raw);
                continue;
            }
            let status: u16 = raw
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| anyhow!("not a SIP response: {raw}"))?;
            if status >= 200 {
                return Ok(Response { status, raw });
            }
        }
    }

    /// Waits until a request whose start line begins with `method` has arrived (or is
    /// already queued) and returns it.
    pub fn wait_request(&mut self, method: &str, timeout: Duration) -> Result<String> {
        let deadline = std::time::Instant::now() + timeout;
        let mut buf = vec![0u8; 65535];
        loop {
            if let Some(i) = self.requests.iter().position(|r| r.starts_with(method)) {
                return Ok(self.requests.remove(i));
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                bail!("no {method} within {timeout:?}");
            }
            self.sock
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
            let r = self.sock.recv_from(&mut buf);
            self.sock.set_read_timeout(Some(Duration::from_secs(10)))?;
            let Ok((n, from)) = r else { continue };
            let raw = String::from_utf8_lossy(&buf[..n]).to_string();
            if !raw.starts_with("SIP/2.0") {
                self.answer_request(&raw, from)?;
                self.requests.push(raw);
            }
        }
    }

    /// Answers a request with 200 OK ([`ok_for`]).
    fn answer_request(&self, raw: &str, from: SocketAddr) -> Result<()> {
        self.sock.send_to(ok_for(raw).as_bytes(), from)?;
        Ok(())
    }

    /// Full IMS-AKA registration (two REGISTERs, or three after an AUTS
    /// re-synchronisation) with `expires`; returns the final response of the last one
    /// and whether a re-synchronisation happened.
    pub fn register_aka(&mut self, sim: &mut Sim, expires: u32) -> Result<(Response, bool)> {
        let mut r = self.register(None, expires)?;
        let mut resynced = false;
        for _ in 0..2 {
            if r.status != 401 {
                return Ok((r, resynced));
            }
            let nonce = r
                .www_auth_param("nonce")
                .ok_or_else(|| anyhow!("401 without nonce: {}", r.raw))?;
            match sim.challenge(&nonce, None)? {
                Challenge::Res(res) => {
                    let a = self.authorization(&r, &res, None)?;
                    return Ok((self.register(Some(&a), expires)?, resynced));
                }
                Challenge::SyncFailure { auts } => {
                    let a = self.authorization(&r, b"", Some(&auts))?;
                    resynced = true;
                    r = self.register(Some(&a), expires)?;
                }
                Challenge::MacFailure => {
                    let a = self.authorization(&r, b"", None)?;
                    return Ok((self.register(Some(&a), expires)?, resynced));
                }
            }
        }
        bail!("still challenged after re-synchronisation: {}", r.raw)
    }

    /// Sends a SUBSCRIBE to the reg event of our IMPU along `route` (the Service-Route)
    /// and returns the final response.
    pub fn subscribe_reg(&mut self, route: &str, expires: u32) -> Result<Response> {
        let local = self.sock.local_addr()?;
        let branch = format!("z9hG4bK{}", rand::random::<u64>());
        let msg = format!(
            "SUBSCRIBE {impu} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch={branch};rport\r\n\
             Max-Forwards: 70\r\n\
             Route: {route}\r\n\
             From: <{impu}>;tag=sub{tag}\r\n\
             To: <{impu}>\r\n\
             Call-ID: sub-{cid}\r\n\
             CSeq: {cseq} SUBSCRIBE\r\n\
             Contact: <sip:ue@{local}>\r\n\
             Event: reg\r\n\
             Accept: application/reginfo+xml\r\n\
             Expires: {expires}\r\n\
             Content-Length: 0\r\n\r\n",
            impu = self.impu,
            tag = self.cseq,
            cid = self.call_id,
            cseq = self.cseq,
        );
        self.cseq += 1;
        self.sock.send_to(msg.as_bytes(), self.pcscf)?;
        self.final_response("SUBSCRIBE")
    }

    /// The Authorization header value answering `challenge` with `password`
    /// (RES for AKA), optionally with `auts`.
    pub fn authorization(
        &self,
        challenge: &Response,
        password: &[u8],
        auts: Option<&[u8]>,
    ) -> Result<String> {
        let nonce = challenge
            .www_auth_param("nonce")
            .ok_or_else(|| anyhow!("401 without nonce: {}", challenge.raw))?;
        let realm = challenge
            .www_auth_param("realm")
            .unwrap_or_else(|| self.domain.clone());
        let uri = format!("sip:{}", self.domain);
        let cnonce = format!("{:016x}", rand::random::<u64>());
        let nc = "00000001";
        let response = digest_response(
            &self.impi, &realm, password, "REGISTER", &uri, &nonce, nc, &cnonce,
        );
        let mut a = format!(
            "Digest username=\"{}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm=AKAv1-MD5, qop=auth, nc={nc}, cnonce=\"{cnonce}\"",
            self.impi
        );
        if let Some(auts) = auts {
            a.push_str(&format!(
                ", auts=\"{}\"",
                base64::engine::general_purpose::STANDARD.encode(auts)
            ));
        }
        Ok(a)
    }
}

/// 200 OK to the request `raw`, copying Via, From, To, Call-ID and CSeq (RFC 3261
/// §8.2.6.2), without a body.
pub fn ok_for(raw: &str) -> String {
    let mut resp = String::from("SIP/2.0 200 OK\r\n");
    for line in raw.split("\r\n").take_while(|l| !l.is_empty()) {
        let name = line
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if ["via", "v", "from", "f", "to", "t", "call-id", "i", "cseq"].contains(&name.as_str()) {
            resp.push_str(line);
            resp.push_str("\r\n");
        }
    }
    resp.push_str("Content-Length: 0\r\n\r\n");
    resp
}
