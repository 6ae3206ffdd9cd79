//! P-Charging-Vector (RFC 7315 §4.6, TS 24.229 §7.2A.5): `icid-value`,
//! `icid-generated-at`, `orig-ioi`, `term-ioi` and others, `;`-separated.

use std::borrow::Cow;
use std::fmt;

use crate::error::HeaderError;
use crate::header::TypedHeader;
use crate::header_name::HeaderName;
use crate::params::Params;

/// P-Charging-Vector: the parameter list (order kept).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PChargingVector<'a> {
    /// All parameters; `icid-value` is mandatory on parse.
    pub params: Params<'a>,
}

impl<'a> PChargingVector<'a> {
    /// A vector with an `icid-value`.
    pub fn new(icid: impl Into<Cow<'a, str>>) -> Self {
        let mut params = Params::new();
        params.set("icid-value", Some(icid));
        PChargingVector { params }
    }

    /// `icid-value` (unquoted).
    pub fn icid(&self) -> Option<Cow<'_, str>> {
        self.params.get_unquoted("icid-value")
    }

    /// `icid-generated-at`.
    pub fn icid_generated_at(&self) -> Option<Cow<'_, str>> {
        self.params.get_unquoted("icid-generated-at")
    }

    /// `orig-ioi`.
    pub fn orig_ioi(&self) -> Option<Cow<'_, str>> {
        self.params.get_unquoted("orig-ioi")
    }

    /// `term-ioi`.
    pub fn term_ioi(&self) -> Option<Cow<'_, str>> {
        self.params.get_unquoted("term-ioi")
    }

    /// Detaches from the buffer.
    pub fn into_owned(self) -> PChargingVector<'static> {
        PChargingVector {
            params: self.params.into_owned(),
        }
    }
}

impl<'a> TypedHeader<'a> for PChargingVector<'a> {
    const NAME: HeaderName = HeaderName::PChargingVector;

    fn parse(value: &'a str) -> Result<Self, HeaderError> {
        let params = Params::parse_semi_list(value)?;
        if !params.contains("icid-value") {
            return Err(HeaderError::new("P-Charging-Vector", "missing icid-value"));
        }
        Ok(PChargingVector { params })
    }
}

impl fmt::Display for PChargingVector<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.params.fmt_semi_list(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_pcv() {
        let h = PChargingVector::parse("icid-value=\"AyretyU0dm+6O2IrT5tAFrbHLso=023551024\"; icid-generated-at=192.0.6.8; orig-ioi=home1.net; term-ioi=home2.net").unwrap();
        assert_eq!(h.icid().as_deref(), Some("AyretyU0dm+6O2IrT5tAFrbHLso=023551024"));
        assert_eq!(h.icid_generated_at().as_deref(), Some("192.0.6.8"));
        assert_eq!(h.orig_ioi().as_deref(), Some("home1.net"));
        assert_eq!(h.term_ioi().as_deref(), Some("home2.net"));
        assert!(PChargingVector::parse("orig-ioi=x").is_err());
    }

    #[test]
    fn print_pcv() {
        let mut h = PChargingVector::new("a1b2");
        h.params.set("orig-ioi", Some("ims.test"));
        assert_eq!(
            h.to_line(),
            "P-Charging-Vector: icid-value=a1b2;orig-ioi=ims.test\r\n"
        );
    }
}
