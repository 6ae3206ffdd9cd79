//! JSON bodies of the provisioning API and their conversion to the store model.
//!
//! Keys are write-only: a subscriber is shown with `has_k`, `key_type` (`op`/`opc`) and
//! `has_password`, never with K, OP, OPc or the password.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::store::model::{
    aka_from_hex, parse_amf, parse_sqn, FieldError, Impu, NewSubscriber, Password, Subscriber,
    SubscriberUpdate,
};

/// An IMPU given as a plain URI string or as an object.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ImpuIn {
    /// `"sip:alice@ims.test"`: implicit registration set 0.
    Uri(String),
    /// `{"uri": "...", "irs": 1, "barred": false}`.
    Full(Impu),
}

impl From<ImpuIn> for Impu {
    fn from(i: ImpuIn) -> Self {
        match i {
            ImpuIn::Uri(uri) => Impu {
                uri,
                irs: 0,
                barred: false,
            },
            ImpuIn::Full(i) => i,
        }
    }
}

/// What GET returns for a subscriber.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SubscriberView {
    /// IMSI.
    pub imsi: String,
    /// IMPI.
    pub impi: String,
    /// IMPUs with their implicit registration set.
    pub impus: Vec<Impu>,
    /// Whether K is provisioned (K itself is never shown).
    pub has_k: bool,
    /// `"op"` or `"opc"`: which one was provisioned (neither is shown).
    pub key_type: Option<String>,
    /// AMF (hex).
    pub amf: String,
    /// Highest SQN reserved by the HSS (hex, 12 digits); every SQN sent so far is ≤ it.
    pub sqn: String,
    /// Whether a SIP Digest password is set.
    pub has_password: bool,
    /// Assigned S-CSCF.
    pub scscf_name: Option<String>,
    /// Diameter host of the assigned S-CSCF.
    pub scscf_host: Option<String>,
    /// iFC / ServiceProfile XML.
    pub ifc_xml: Option<String>,
}

impl From<&Subscriber> for SubscriberView {
    fn from(s: &Subscriber) -> Self {
        Self {
            imsi: s.imsi.clone(),
            impi: s.impi.clone(),
            impus: s.impus.clone(),
            has_k: s.aka.is_some(),
            key_type: s
                .aka
                .as_ref()
                .map(|a| if a.op.is_some() { "op" } else { "opc" }.to_string()),
            amf: hex::encode(s.amf),
            sqn: format!("{:012x}", s.sqn),
            has_password: s.password.is_some(),
            scscf_name: s.scscf_name.clone(),
            scscf_host: s.scscf_host.clone(),
            ifc_xml: s.ifc_xml.clone(),
        }
    }
}

const FIELDS: &[&str] = &[
    "imsi",
    "impi",
    "impus",
    "impu",
    "k",
    "op",
    "opc",
    "amf",
    "sqn",
    "password",
    "ifc_xml",
    "scscf_name",
];

fn str_field<'a>(
    m: &'a Map<String, Value>,
    f: &'static str,
) -> Result<Option<&'a str>, FieldError> {
    match m.get(f) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(FieldError::new(f, "must be a string")),
    }
}

fn impus_field(m: &Map<String, Value>) -> Result<Option<Vec<Impu>>, FieldError> {
    let (name, v) = match (m.get("impus"), m.get("impu")) {
        (Some(v), _) => ("impus", v),
        (None, Some(v)) => ("impu", v),
        (None, None) => return Ok(None),
    };
    let list: Vec<ImpuIn> = match v {
        Value::String(s) => s
            .split(',')
            .map(|u| ImpuIn::Uri(u.trim().to_string()))
            .collect(),
        other => serde_json::from_value(other.clone()).map_err(|_| {
            FieldError::new(
                if name == "impus" { "impus" } else { "impu" },
                "must be a list of URIs or of {uri, irs, barred}",
            )
        })?,
    };
    Ok(Some(list.into_iter().map(Impu::from).collect()))
}

fn sqn_field(m: &Map<String, Value>) -> Result<Option<u64>, FieldError> {
    match m.get("sqn") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => parse_sqn(s).map(Some),
        Some(Value::Number(n)) => n
            .as_u64()
            .filter(|v| *v <= crate::milenage::SQN_MAX)
            .map(Some)
            .ok_or_else(|| FieldError::new("sqn", "must be a 48-bit number or 12 hex digits")),
        Some(_) => Err(FieldError::new("sqn", "must be hex digits or a number")),
    }
}

fn check_unknown(m: &Map<String, Value>) -> Result<(), FieldError> {
    for k in m.keys() {
        if !FIELDS.contains(&k.as_str()) {
            let field = FIELDS.iter().copied().find(|f| *f == k).unwrap_or("body");
            return Err(FieldError::new(field, format!("unknown field {k:?}")));
        }
    }
    Ok(())
}

/// Parses a JSON object body.
pub fn object(body: &[u8]) -> Result<Map<String, Value>, FieldError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(FieldError::new("body", "must be a JSON object")),
        Err(e) => Err(FieldError::new("body", format!("invalid JSON: {e}"))),
    }
}

/// A creation body (POST, and PUT with the IMSI from the path).
pub fn new_subscriber(
    m: &Map<String, Value>,
    imsi: Option<&str>,
) -> Result<NewSubscriber, FieldError> {
    check_unknown(m)?;
    let imsi = match (str_field(m, "imsi")?, imsi) {
        (Some(b), Some(p)) if b != p => {
            return Err(FieldError::new("imsi", "differs from the IMSI in the path"))
        }
        (Some(b), _) => b.to_string(),
        (None, Some(p)) => p.to_string(),
        (None, None) => return Err(FieldError::new("imsi", "is required")),
    };
    let aka = match str_field(m, "k")? {
        Some(k) => Some(aka_from_hex(k, str_field(m, "op")?, str_field(m, "opc")?)?),
        None if str_field(m, "op")?.is_some() || str_field(m, "opc")?.is_some() => {
            return Err(FieldError::new("k", "is required with op/opc"))
        }
        None => None,
    };
    Ok(NewSubscriber {
        imsi,
        impi: str_field(m, "impi")?.map(str::to_string),
        impus: impus_field(m)?.unwrap_or_default(),
        aka,
        amf: str_field(m, "amf")?.map(parse_amf).transpose()?,
        sqn: sqn_field(m)?,
        password: str_field(m, "password")?.map(Password::new),
        ifc_xml: str_field(m, "ifc_xml")?.map(str::to_string),
        scscf_name: str_field(m, "scscf_name")?.map(str::to_string),
    })
}

/// A PATCH body: only the fields present change; `null` removes optional ones.
pub fn patch(m: &Map<String, Value>) -> Result<SubscriberUpdate, FieldError> {
    check_unknown(m)?;
    if m.contains_key("imsi") {
        return Err(FieldError::new("imsi", "cannot be changed"));
    }
    let mut up = SubscriberUpdate {
        impi: str_field(m, "impi")?.map(str::to_string),
        impus: impus_field(m)?,
        amf: str_field(m, "amf")?.map(parse_amf).transpose()?,
        sqn: sqn_field(m)?,
        ..Default::default()
    };
    match (m.get("k"), m.get("op"), m.get("opc")) {
        (Some(Value::Null), _, _) => up.aka = Some(None),
        (Some(_), _, _) => {
            let k = str_field(m, "k")?.unwrap_or_default();
            up.aka = Some(Some(aka_from_hex(
                k,
                str_field(m, "op")?,
                str_field(m, "opc")?,
            )?));
        }
        (None, None, None) => {}
        (None, _, _) => return Err(FieldError::new("k", "is required with op/opc")),
    }
    if let Some(v) = m.get("password") {
        up.password = Some(match v {
            Value::Null => None,
            Value::String(s) => Some(Password::new(s.clone())),
            _ => return Err(FieldError::new("password", "must be a string or null")),
        });
    }
    if m.contains_key("ifc_xml") {
        up.ifc_xml = Some(str_field(m, "ifc_xml")?.map(str::to_string));
    }
    if m.contains_key("scscf_name") {
        up.scscf_name = Some(str_field(m, "scscf_name")?.map(str::to_string));
    }
    Ok(up)
}

/// A PUT body becomes an update that sets every field (absent optional ones removed;
/// the SQN and the S-CSCF assignment are kept unless given).
pub fn put(m: &Map<String, Value>, imsi: &str) -> Result<SubscriberUpdate, FieldError> {
    let n = new_subscriber(m, Some(imsi))?;
    let n = n.validate()?;
    Ok(SubscriberUpdate {
        impi: n.impi.clone(),
        impus: Some(n.impus.clone()),
        aka: Some(n.aka.clone()),
        amf: Some(n.amf.unwrap_or([0x80, 0])),
        sqn: n.sqn,
        password: Some(n.password.clone()),
        ifc_xml: Some(n.ifc_xml.clone()),
        scscf_name: n.scscf_name.clone().map(Some),
    })
}
