//! AVPs (RFC 6733 §4): header view, owned AVP, typed data (§4.2, §4.3).
//!
//! ```text
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                           AVP Code                            |
//! |V M P r r r r r|                  AVP Length                   |
//! |                        Vendor-ID (opt)                        |
//! |    Data ...
//! ```
//! AVP Length covers header and data but not the padding to a 4-byte boundary.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, Bytes, BytesMut};

use super::error::{DecodeError, EncodeError};
use super::header::{be32, put_u24, u24};

/// AVP header length without Vendor-ID.
pub const AVP_HEADER_LEN: usize = 8;
/// AVP header length with Vendor-ID (V bit set).
pub const AVP_VENDOR_HEADER_LEN: usize = 12;
const MAX_LEN: usize = 0x00ff_ffff;

/// AVP flags (RFC 6733 §4.1): V, M, P and five reserved bits (kept as received).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AvpFlags(pub u8);

impl AvpFlags {
    /// 'V' — Vendor-ID field present.
    pub const VENDOR: u8 = 0x80;
    /// 'M' — mandatory: a receiver that does not know the AVP must reject the message.
    pub const MANDATORY: u8 = 0x40;
    /// 'P' — reserved for end-to-end security (RFC 6733 §4.1), sent as 0.
    pub const PROTECTED: u8 = 0x20;
    /// No flags.
    pub const NONE: AvpFlags = AvpFlags(0);
    /// M only.
    pub const M: AvpFlags = AvpFlags(Self::MANDATORY);
    /// V and M.
    pub const VM: AvpFlags = AvpFlags(Self::VENDOR | Self::MANDATORY);
    /// V only.
    pub const V: AvpFlags = AvpFlags(Self::VENDOR);

    /// Whether the V bit is set.
    pub fn is_vendor(self) -> bool {
        self.0 & Self::VENDOR != 0
    }
    /// Whether the M bit is set.
    pub fn is_mandatory(self) -> bool {
        self.0 & Self::MANDATORY != 0
    }
    /// Whether the P bit is set.
    pub fn is_protected(self) -> bool {
        self.0 & Self::PROTECTED != 0
    }
}

/// Basic AVP data formats (RFC 6733 §4.2) and the derived ones used here (§4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AvpType {
    /// OctetString
    OctetString,
    /// Integer32
    Integer32,
    /// Integer64
    Integer64,
    /// Unsigned32
    Unsigned32,
    /// Unsigned64
    Unsigned64,
    /// Float32
    Float32,
    /// Float64
    Float64,
    /// Grouped
    Grouped,
    /// Address (§4.3.1)
    Address,
    /// Time (§4.3.1), NTP seconds
    Time,
    /// UTF8String
    Utf8String,
    /// DiameterIdentity (FQDN)
    DiameterIdentity,
    /// DiameterURI
    DiameterUri,
    /// Enumerated (Integer32)
    Enumerated,
}

impl AvpType {
    /// Fixed data length of the type, if it has one.
    pub fn fixed_len(self) -> Option<usize> {
        match self {
            AvpType::Integer32
            | AvpType::Unsigned32
            | AvpType::Float32
            | AvpType::Time
            | AvpType::Enumerated => Some(4),
            AvpType::Integer64 | AvpType::Unsigned64 | AvpType::Float64 => Some(8),
            _ => None,
        }
    }
    /// Minimum data length (zero-filled value of a Failed-AVP example, §7.5).
    pub fn min_len(self) -> usize {
        match self {
            AvpType::Address => 6,
            t => t.fixed_len().unwrap_or(0),
        }
    }
}

/// A dictionary entry: how an AVP is identified and which flags to send it with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AvpDef {
    /// Name as in the defining spec.
    pub name: &'static str,
    /// AVP Code.
    pub code: u32,
    /// Vendor-ID (`None` for IETF AVPs).
    pub vendor_id: Option<u32>,
    /// Whether the M bit is sent.
    pub mandatory: bool,
    /// Data format.
    pub kind: AvpType,
}

impl AvpDef {
    /// An IETF (vendor 0) AVP.
    pub const fn ietf(name: &'static str, code: u32, mandatory: bool, kind: AvpType) -> Self {
        AvpDef {
            name,
            code,
            vendor_id: None,
            mandatory,
            kind,
        }
    }
    /// A vendor-specific AVP.
    pub const fn vendor(
        name: &'static str,
        code: u32,
        vendor_id: u32,
        mandatory: bool,
        kind: AvpType,
    ) -> Self {
        AvpDef {
            name,
            code,
            vendor_id: Some(vendor_id),
            mandatory,
            kind,
        }
    }
    /// Flags to send this AVP with.
    pub fn flags(&self) -> AvpFlags {
        let mut f = 0;
        if self.vendor_id.is_some() {
            f |= AvpFlags::VENDOR;
        }
        if self.mandatory {
            f |= AvpFlags::MANDATORY;
        }
        AvpFlags(f)
    }
    /// Whether `avp` is an instance of this definition (code and vendor).
    pub fn matches(&self, avp: &Avp) -> bool {
        avp.code == self.code && avp.vendor_id.unwrap_or(0) == self.vendor_id.unwrap_or(0)
    }
    /// The Failed-AVP example for a missing AVP: zero-filled minimum value (§7.5).
    pub fn example(&self) -> Avp {
        Avp::new(self, Bytes::from(vec![0u8; self.kind.min_len()]))
    }
    /// The error for this AVP being absent (5005).
    pub fn missing(&self) -> DecodeError {
        DecodeError::MissingAvp {
            name: self.name,
            failed_avp: self.example(),
        }
    }
}

/// Read-only view over one AVP at the start of a buffer, lengths checked on creation.
#[derive(Debug, Clone, Copy)]
pub struct AvpBuffer<'a> {
    buf: &'a [u8],
    length: usize,
    header_len: usize,
}

impl<'a> AvpBuffer<'a> {
    /// Checks that `buf` starts with a whole AVP: header present, AVP Length at least
    /// the header size and not past the end of `buf`. Errors carry the Failed-AVP
    /// RFC 6733 §7.1.5 asks for (the header, zero-padded where it was cut).
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, DecodeError> {
        if buf.len() < AVP_HEADER_LEN {
            let mut hdr = [0u8; AVP_HEADER_LEN];
            hdr[..buf.len()].copy_from_slice(buf);
            let flags = AvpFlags(hdr[4] & !AvpFlags::VENDOR);
            return Err(DecodeError::InvalidAvpLength {
                length: u24(&hdr[5..8]),
                failed_avp: Avp::raw(be32(&hdr[0..4]), flags, None, Bytes::new()),
            });
        }
        let code = be32(&buf[0..4]);
        let flags = AvpFlags(buf[4]);
        let length = u24(&buf[5..8]);
        let header_len = if flags.is_vendor() {
            AVP_VENDOR_HEADER_LEN
        } else {
            AVP_HEADER_LEN
        };
        let vendor_id = if flags.is_vendor() {
            buf.get(8..12).map(be32).or(Some(0))
        } else {
            None
        };
        if buf.len() < header_len || length < header_len || length > buf.len() {
            return Err(DecodeError::InvalidAvpLength {
                length,
                failed_avp: Avp::raw(code, flags, vendor_id, Bytes::new()),
            });
        }
        Ok(AvpBuffer {
            buf,
            length,
            header_len,
        })
    }
    /// AVP Code.
    pub fn code(&self) -> u32 {
        be32(&self.buf[0..4])
    }
    /// Flags.
    pub fn flags(&self) -> AvpFlags {
        AvpFlags(self.buf[4])
    }
    /// AVP Length (header + data, no padding).
    pub fn length(&self) -> usize {
        self.length
    }
    /// Vendor-ID if the V bit is set.
    pub fn vendor_id(&self) -> Option<u32> {
        self.flags().is_vendor().then(|| be32(&self.buf[8..12]))
    }
    /// Offset of the data from the start of the AVP.
    pub fn header_len(&self) -> usize {
        self.header_len
    }
    /// Length including padding, capped at the bytes available (the last AVP of a
    /// grouped value may come without its padding).
    pub fn padded_len(&self) -> usize {
        ((self.length + 3) & !3).min(self.buf.len())
    }
    /// The data bytes.
    pub fn data(&self) -> &'a [u8] {
        &self.buf[self.header_len..self.length]
    }
}

/// One AVP, owned. `data` is the raw value; typed getters interpret it.
///
/// `vendor_id` is `Some` exactly when the V flag is set, so decoding then encoding
/// reproduces the original bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Avp {
    /// AVP Code.
    pub code: u32,
    /// Flags as received or to send (V is kept consistent with `vendor_id` on encode).
    pub flags: AvpFlags,
    /// Vendor-ID.
    pub vendor_id: Option<u32>,
    /// Raw data without padding.
    pub data: Bytes,
}

impl Avp {
    /// An AVP from its parts.
    pub fn raw(code: u32, flags: AvpFlags, vendor_id: Option<u32>, data: Bytes) -> Avp {
        let mut flags = flags;
        if vendor_id.is_some() {
            flags.0 |= AvpFlags::VENDOR;
        } else {
            flags.0 &= !AvpFlags::VENDOR;
        }
        Avp {
            code,
            flags,
            vendor_id,
            data,
        }
    }
    /// An AVP of a dictionary definition with raw data.
    pub fn new(def: &AvpDef, data: impl Into<Bytes>) -> Avp {
        Avp {
            code: def.code,
            flags: def.flags(),
            vendor_id: def.vendor_id,
            data: data.into(),
        }
    }
    /// Unsigned32 / Enumerated-as-unsigned value.
    pub fn unsigned32(def: &AvpDef, v: u32) -> Avp {
        Avp::new(def, Bytes::copy_from_slice(&v.to_be_bytes()))
    }
    /// Unsigned64 value.
    pub fn unsigned64(def: &AvpDef, v: u64) -> Avp {
        Avp::new(def, Bytes::copy_from_slice(&v.to_be_bytes()))
    }
    /// Integer32 / Enumerated value.
    pub fn integer32(def: &AvpDef, v: i32) -> Avp {
        Avp::new(def, Bytes::copy_from_slice(&v.to_be_bytes()))
    }
    /// Integer64 value.
    pub fn integer64(def: &AvpDef, v: i64) -> Avp {
        Avp::new(def, Bytes::copy_from_slice(&v.to_be_bytes()))
    }
    /// UTF8String, DiameterIdentity or DiameterURI value.
    pub fn utf8(def: &AvpDef, v: &str) -> Avp {
        Avp::new(def, Bytes::copy_from_slice(v.as_bytes()))
    }
    /// OctetString value.
    pub fn octets(def: &AvpDef, v: impl Into<Bytes>) -> Avp {
        Avp::new(def, v)
    }
    /// Address value (§4.3.1: AddressType 1 IPv4, 2 IPv6, then the address).
    pub fn address(def: &AvpDef, ip: IpAddr) -> Avp {
        let mut b = BytesMut::with_capacity(18);
        match ip {
            IpAddr::V4(a) => {
                b.put_u16(1);
                b.put_slice(&a.octets());
            }
            IpAddr::V6(a) => {
                b.put_u16(2);
                b.put_slice(&a.octets());
            }
        }
        Avp::new(def, b.freeze())
    }
    /// Grouped value (§4.4) from its member AVPs.
    pub fn grouped(def: &AvpDef, members: &[Avp]) -> Avp {
        let len = members.iter().map(Avp::padded_len).sum();
        let mut b = BytesMut::with_capacity(len);
        for m in members {
            m.write(&mut b);
        }
        Avp::new(def, b.freeze())
    }

    /// Length on the wire without padding.
    pub fn len(&self) -> usize {
        self.header_len() + self.data.len()
    }
    /// Whether the data is empty.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    fn header_len(&self) -> usize {
        if self.vendor_id.is_some() {
            AVP_VENDOR_HEADER_LEN
        } else {
            AVP_HEADER_LEN
        }
    }
    /// Length on the wire with padding.
    pub fn padded_len(&self) -> usize {
        (self.len() + 3) & !3
    }

    /// Checks the encoded length fits 24 bits, recursively not needed: members were
    /// already encoded into `data`.
    pub(crate) fn check_len(&self) -> Result<(), EncodeError> {
        if self.len() > MAX_LEN {
            return Err(EncodeError::TooLong {
                what: "AVP",
                length: self.len(),
            });
        }
        Ok(())
    }

    /// Appends the AVP with zero padding. Callers check [`Avp::len`] first.
    pub(crate) fn write(&self, out: &mut BytesMut) {
        out.put_u32(self.code);
        let mut flags = self.flags.0 & !AvpFlags::VENDOR;
        if self.vendor_id.is_some() {
            flags |= AvpFlags::VENDOR;
        }
        out.put_u8(flags);
        put_u24(out, self.len() as u32);
        if let Some(v) = self.vendor_id {
            out.put_u32(v);
        }
        out.put_slice(&self.data);
        let pad = self.padded_len() - self.len();
        out.put_bytes(0, pad);
    }

    /// Encodes this AVP alone (with padding).
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        self.check_len()?;
        out.reserve(self.padded_len());
        self.write(out);
        Ok(())
    }

    /// Decodes one AVP from the start of `buf` (a slice of a shared buffer).
    /// Returns the AVP and the bytes consumed including padding.
    pub fn decode(buf: &Bytes) -> Result<(Avp, usize), DecodeError> {
        let view = AvpBuffer::new_checked(buf)?;
        let avp = Avp {
            code: view.code(),
            flags: view.flags(),
            vendor_id: view.vendor_id(),
            data: buf.slice(view.header_len()..view.length()),
        };
        Ok((avp, view.padded_len()))
    }

    /// Decodes a sequence of AVPs filling `buf` (message body or grouped data).
    pub fn decode_all(buf: &Bytes) -> Result<Vec<Avp>, DecodeError> {
        let mut out = Vec::with_capacity(buf.len() / 16 + 1);
        let mut off = 0;
        while off < buf.len() {
            let rest = buf.slice(off..);
            let (avp, used) = Avp::decode(&rest)?;
            out.push(avp);
            off += used;
        }
        Ok(out)
    }

    fn wrong_len(&self) -> DecodeError {
        DecodeError::InvalidAvpLength {
            length: self.len(),
            failed_avp: self.clone(),
        }
    }
    fn fixed<const N: usize>(&self) -> Result<[u8; N], DecodeError> {
        <[u8; N]>::try_from(&self.data[..]).map_err(|_| self.wrong_len())
    }
    /// The error for a value this AVP may not take (5004).
    pub fn invalid_value(&self, reason: &'static str) -> DecodeError {
        DecodeError::InvalidAvpValue {
            failed_avp: self.clone(),
            reason,
        }
    }

    /// Unsigned32 data (5014 if not 4 bytes).
    pub fn as_u32(&self) -> Result<u32, DecodeError> {
        self.fixed::<4>().map(u32::from_be_bytes)
    }
    /// Unsigned64 data.
    pub fn as_u64(&self) -> Result<u64, DecodeError> {
        self.fixed::<8>().map(u64::from_be_bytes)
    }
    /// Integer32 / Enumerated data.
    pub fn as_i32(&self) -> Result<i32, DecodeError> {
        self.fixed::<4>().map(i32::from_be_bytes)
    }
    /// Integer64 data.
    pub fn as_i64(&self) -> Result<i64, DecodeError> {
        self.fixed::<8>().map(i64::from_be_bytes)
    }
    /// OctetString data.
    pub fn as_octets(&self) -> &Bytes {
        &self.data
    }
    /// UTF8String / DiameterIdentity / DiameterURI data (5004 if not UTF-8).
    pub fn as_utf8(&self) -> Result<&str, DecodeError> {
        std::str::from_utf8(&self.data).map_err(|_| self.invalid_value("not UTF-8"))
    }
    /// Address data: IPv4 or IPv6 (5004 for other families or sizes).
    pub fn as_address(&self) -> Result<IpAddr, DecodeError> {
        let d = &self.data[..];
        match (d.first(), d.get(1), d.len()) {
            (Some(0), Some(1), 6) => Ok(IpAddr::V4(Ipv4Addr::new(d[2], d[3], d[4], d[5]))),
            (Some(0), Some(2), 18) => {
                let mut a = [0u8; 16];
                a.copy_from_slice(&d[2..18]);
                Ok(IpAddr::V6(Ipv6Addr::from(a)))
            }
            _ => Err(self.invalid_value("unsupported address family or length")),
        }
    }
    /// Grouped data: the member AVPs (lengths checked like a message body).
    pub fn as_grouped(&self) -> Result<Vec<Avp>, DecodeError> {
        Avp::decode_all(&self.data)
    }
}
