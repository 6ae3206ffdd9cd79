//! Lookup of AVPs by dictionary entry in a message body or a grouped value, with the
//! presence rules of a command's ABNF (RFC 6733 §3.2): a `{ AVP }` that is absent is
//! 5005 DIAMETER_MISSING_AVP, a single-valued AVP present twice is 5009
//! DIAMETER_AVP_OCCURS_TOO_MANY_TIMES.

use std::net::IpAddr;

use bytes::Bytes;

use super::avp::{Avp, AvpDef};
use super::error::DecodeError;

/// Typed access to a list of AVPs.
pub trait AvpSet {
    /// The AVPs, in order.
    fn avp_slice(&self) -> &[Avp];

    /// First AVP matching `def`.
    fn find(&self, def: &AvpDef) -> Option<&Avp> {
        self.avp_slice().iter().find(|a| def.matches(a))
    }
    /// All AVPs matching `def`, in order.
    fn find_all<'a>(&'a self, def: &'a AvpDef) -> impl Iterator<Item = &'a Avp> + 'a {
        self.avp_slice().iter().filter(move |a| def.matches(a))
    }
    /// At most one AVP matching `def` (5009 if more).
    fn single(&self, def: &AvpDef) -> Result<Option<&Avp>, DecodeError> {
        let mut it = self.avp_slice().iter().filter(|a| def.matches(a));
        let first = it.next();
        if let Some(extra) = it.next() {
            return Err(DecodeError::AvpOccursTooManyTimes {
                failed_avp: extra.clone(),
            });
        }
        Ok(first)
    }
    /// Exactly one AVP matching `def` (5005 if absent, 5009 if repeated).
    fn required(&self, def: &AvpDef) -> Result<&Avp, DecodeError> {
        self.single(def)?.ok_or_else(|| def.missing())
    }

    /// Optional Unsigned32.
    fn get_u32(&self, def: &AvpDef) -> Result<Option<u32>, DecodeError> {
        self.single(def)?.map(Avp::as_u32).transpose()
    }
    /// Required Unsigned32.
    fn require_u32(&self, def: &AvpDef) -> Result<u32, DecodeError> {
        self.required(def)?.as_u32()
    }
    /// Optional Unsigned64.
    fn get_u64(&self, def: &AvpDef) -> Result<Option<u64>, DecodeError> {
        self.single(def)?.map(Avp::as_u64).transpose()
    }
    /// Optional Integer32 / Enumerated.
    fn get_i32(&self, def: &AvpDef) -> Result<Option<i32>, DecodeError> {
        self.single(def)?.map(Avp::as_i32).transpose()
    }
    /// Required Integer32 / Enumerated.
    fn require_i32(&self, def: &AvpDef) -> Result<i32, DecodeError> {
        self.required(def)?.as_i32()
    }
    /// Optional UTF8String / DiameterIdentity.
    fn get_utf8(&self, def: &AvpDef) -> Result<Option<String>, DecodeError> {
        self.single(def)?
            .map(|a| a.as_utf8().map(str::to_owned))
            .transpose()
    }
    /// Required UTF8String / DiameterIdentity.
    fn require_utf8(&self, def: &AvpDef) -> Result<String, DecodeError> {
        self.required(def)?.as_utf8().map(str::to_owned)
    }
    /// All values of a repeated UTF8String AVP.
    fn all_utf8(&self, def: &AvpDef) -> Result<Vec<String>, DecodeError> {
        self.find_all(def)
            .map(|a| a.as_utf8().map(str::to_owned))
            .collect()
    }
    /// All values of a repeated Unsigned32 AVP.
    fn all_u32(&self, def: &AvpDef) -> Result<Vec<u32>, DecodeError> {
        self.find_all(def).map(Avp::as_u32).collect()
    }
    /// Optional OctetString.
    fn get_octets(&self, def: &AvpDef) -> Result<Option<Bytes>, DecodeError> {
        Ok(self.single(def)?.map(|a| a.data.clone()))
    }
    /// Required OctetString.
    fn require_octets(&self, def: &AvpDef) -> Result<Bytes, DecodeError> {
        Ok(self.required(def)?.data.clone())
    }
    /// Optional Address.
    fn get_address(&self, def: &AvpDef) -> Result<Option<IpAddr>, DecodeError> {
        self.single(def)?.map(Avp::as_address).transpose()
    }
    /// Optional Grouped: the members.
    fn get_grouped(&self, def: &AvpDef) -> Result<Option<Vec<Avp>>, DecodeError> {
        self.single(def)?.map(Avp::as_grouped).transpose()
    }
    /// Required Grouped: the members.
    fn require_grouped(&self, def: &AvpDef) -> Result<Vec<Avp>, DecodeError> {
        self.required(def)?.as_grouped()
    }

    /// The first AVP with the M bit set for which `known(code, vendor_id)` is false:
    /// 5001 DIAMETER_AVP_UNSUPPORTED (RFC 6733 §4.1). AVPs without the M bit that
    /// are unknown are fine and stay in the list.
    fn check_mandatory(&self, known: &dyn Fn(u32, Option<u32>) -> bool) -> Result<(), DecodeError> {
        match self
            .avp_slice()
            .iter()
            .find(|a| a.flags.is_mandatory() && !known(a.code, a.vendor_id))
        {
            Some(a) => Err(DecodeError::AvpUnsupported {
                failed_avp: a.clone(),
            }),
            None => Ok(()),
        }
    }
}

impl AvpSet for [Avp] {
    fn avp_slice(&self) -> &[Avp] {
        self
    }
}

impl AvpSet for Vec<Avp> {
    fn avp_slice(&self) -> &[Avp] {
        self
    }
}
