//! Subscriber key material usable by SIPp 3.6.1, which takes `aka_K`, `aka_OP` and
//! `aka_AMF` as raw bytes: every byte is printable ASCII without `[ ] " \ %` or `;`,
//! and the HSS gets the hex of the same bytes.

/// One test subscriber.
#[derive(Clone, Debug)]
pub struct Subscriber {
    /// IMSI (15 digits).
    pub imsi: String,
    /// IMPI, `<imsi>@<domain>`.
    pub impi: String,
    /// User part of the IMPU `sip:<user>@<domain>`.
    pub impu_user: String,
    /// K as the 16 raw bytes SIPp gets.
    pub k_raw: String,
    /// OP as the 16 raw bytes SIPp gets.
    pub op_raw: String,
    /// AMF as the 2 raw bytes SIPp gets.
    pub amf_raw: String,
}

/// Home domain used by the tests.
pub const DOMAIN: &str = "ims.mnc001.mcc001.3gppnetwork.org";

impl Subscriber {
    /// The `n`-th test subscriber: IMSI 00101 + 10 digits, K unique per subscriber.
    pub fn nth(n: u32) -> Subscriber {
        let imsi = format!("00101{n:010}");
        Subscriber {
            impi: format!("{imsi}@{DOMAIN}"),
            impu_user: format!("+1555{n:07}"),
            k_raw: format!("Kk{n:014}"),
            op_raw: "OPc-test-OP-0123".to_string(),
            amf_raw: "AA".to_string(),
            imsi,
        }
    }

    /// K in hex, as provisioned in the HSS.
    pub fn k_hex(&self) -> String {
        hex::encode(self.k_raw.as_bytes())
    }
    /// OP in hex.
    pub fn op_hex(&self) -> String {
        hex::encode(self.op_raw.as_bytes())
    }
    /// AMF in hex.
    pub fn amf_hex(&self) -> String {
        hex::encode(self.amf_raw.as_bytes())
    }
    /// The IMPU as a SIP URI.
    pub fn impu(&self) -> String {
        format!("sip:{}@{DOMAIN}", self.impu_user)
    }
    /// A line of a SIPp injection file: `impu_user;impi;domain;K;OP;AMF`.
    pub fn sipp_csv_line(&self) -> String {
        format!(
            "{};{};{};{};{};{}",
            self.impu_user, self.impi, DOMAIN, self.k_raw, self.op_raw, self.amf_raw
        )
    }
}

/// A SIPp injection file for `subs`, read sequentially.
pub fn sipp_csv(subs: &[Subscriber]) -> String {
    let mut s = String::from("SEQUENTIAL\n");
    for sub in subs {
        s.push_str(&sub.sipp_csv_line());
        s.push('\n');
    }
    s
}
