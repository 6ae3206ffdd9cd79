//! Contact (RFC 3261 §20.10) with the registration parameters of RFC 3261 §10.2.1
//! (`expires`, `q`), RFC 5626 (`+sip.instance`, `reg-id`) and the feature tags of
//! RFC 3840 / TS 24.229 (`+g.3gpp.icsi-ref`, `+g.3gpp.smsip`, `audio`, …). Unknown
//! parameters are kept in order.

use std::borrow::Cow;
use std::fmt;

use crate::error::HeaderError;
use crate::header::TypedHeader;
use crate::header_name::HeaderName;
use crate::nameaddr::NameAddr;
use crate::params::Param;
use crate::text::{split_commas, trim_lws};

/// One Contact header line: `*` or a list of addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Contact<'a> {
    /// `Contact: *` (remove all bindings, RFC 3261 §10.2.2).
    Star,
    /// The addresses.
    Addrs(Vec<NameAddr<'a>>),
}

impl<'a> Contact<'a> {
    /// The addresses (empty for `*`).
    pub fn addrs(&self) -> &[NameAddr<'a>] {
        match self {
            Contact::Star => &[],
            Contact::Addrs(v) => v,
        }
    }

    /// Detaches from the buffer.
    pub fn into_owned(self) -> Contact<'static> {
        match self {
            Contact::Star => Contact::Star,
            Contact::Addrs(v) => Contact::Addrs(v.into_iter().map(NameAddr::into_owned).collect()),
        }
    }
}

/// Feature tags that are not `+`-prefixed (RFC 3840 §9 base tags).
const BASE_TAGS: &[&str] = &[
    "audio",
    "video",
    "text",
    "data",
    "control",
    "application",
    "automata",
    "class",
    "duplex",
    "mobility",
    "description",
    "events",
    "priority",
    "methods",
    "schemes",
    "extensions",
    "isfocus",
    "actor",
];

/// Registration accessors on a Contact address.
impl NameAddr<'_> {
    /// `expires` parameter in seconds (saturating).
    pub fn expires(&self) -> Option<u32> {
        let v = self.params.get("expires")??;
        v.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| v.parse::<u64>().unwrap_or(u64::MAX).min(u32::MAX as u64) as u32)
    }

    /// `q` parameter (0.0–1.0).
    pub fn q(&self) -> Option<f32> {
        self.params
            .get("q")??
            .parse()
            .ok()
            .filter(|q: &f32| (0.0..=1.0).contains(q))
    }

    /// `+sip.instance` without quotes (e.g. `<urn:gsma:imei:…>`).
    pub fn sip_instance(&self) -> Option<Cow<'_, str>> {
        self.params.get_unquoted("+sip.instance")
    }

    /// `reg-id` (RFC 5626).
    pub fn reg_id(&self) -> Option<u32> {
        self.params.get("reg-id")??.parse().ok()
    }

    /// Feature tags (`+g.3gpp.*`, `+sip.*` other than instance, and the RFC 3840 base tags).
    pub fn feature_tags(&self) -> impl Iterator<Item = &Param<'_>> + '_ {
        self.params.iter().filter(|p| {
            (p.name.starts_with('+') && !p.name.eq_ignore_ascii_case("+sip.instance"))
                || BASE_TAGS.iter().any(|t| p.name.eq_ignore_ascii_case(t))
        })
    }
}

impl<'a> TypedHeader<'a> for Contact<'a> {
    const NAME: HeaderName = HeaderName::Contact;

    fn parse(value: &'a str) -> Result<Self, HeaderError> {
        if trim_lws(value) == "*" {
            return Ok(Contact::Star);
        }
        split_commas(value)
            .map(|e| {
                if e.is_empty() {
                    Err(HeaderError::new("Contact", "empty value"))
                } else {
                    NameAddr::parse(e)
                }
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Contact::Addrs)
    }
}

impl fmt::Display for Contact<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Contact::Star => f.write_str("*"),
            Contact::Addrs(v) => {
                for (i, a) in v.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{a}")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_contact() {
        let c = Contact::parse("<sip:001010000000001@10.45.0.2:5060>;+sip.instance=\"<urn:gsma:imei:35622010-000001-0>\";+g.3gpp.icsi-ref=\"urn%3Aurn-7%3A3gpp-service.ims.icsi.mmtel\";+g.3gpp.smsip;audio;expires=600000;q=0.5;reg-id=1;unknown=x").unwrap();
        let a = &c.addrs()[0];
        assert_eq!(a.expires(), Some(600000));
        assert_eq!(a.q(), Some(0.5));
        assert_eq!(a.reg_id(), Some(1));
        assert_eq!(
            a.sip_instance().as_deref(),
            Some("<urn:gsma:imei:35622010-000001-0>")
        );
        let tags: Vec<_> = a.feature_tags().map(|p| p.name.as_ref()).collect();
        assert_eq!(tags, vec!["+g.3gpp.icsi-ref", "+g.3gpp.smsip", "audio"]);
        assert_eq!(a.params.get("unknown"), Some(Some("x")));
        assert_eq!(Contact::parse(" * ").unwrap(), Contact::Star);
        let two = Contact::parse("<sip:a@1.2.3.4>;expires=0, \"B\" <sip:b@1.2.3.4>").unwrap();
        assert_eq!(two.addrs().len(), 2);
        assert_eq!(two.addrs()[0].expires(), Some(0));
        assert!(Contact::parse("\"Joe\" <sip:joe@example.org>;;;;").is_err());
        assert!(Contact::parse("<sip:10.45.0.4:5060>").unwrap().addrs()[0]
            .uri
            .as_sip()
            .unwrap()
            .user
            .is_none());
    }

    #[test]
    fn print_contact() {
        let c = Contact::parse("<sip:a@10.0.0.1:5060>;expires=600;+sip.instance=\"<urn:uuid:1>\"").unwrap();
        assert_eq!(
            c.to_line(),
            "Contact: <sip:a@10.0.0.1:5060>;expires=600;+sip.instance=\"<urn:uuid:1>\"\r\n"
        );
        assert_eq!(Contact::Star.to_line(), "Contact: *\r\n");
    }
}
