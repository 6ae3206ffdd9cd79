//! The Diameter header (RFC 6733 §3), read through a checked buffer view.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |    Version    |                 Message Length                |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Command Flags |                  Command Code                 |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         Application-ID                        |
//! |                      Hop-by-Hop Identifier                    |
//! |                      End-to-End Identifier                    |
//! ```

use super::error::DecodeError;

/// Length of the fixed Diameter header.
pub const HEADER_LEN: usize = 20;

/// The only Diameter version (RFC 6733 §3: "This Version field MUST be set to 1").
pub const VERSION: u8 = 1;

/// Command flags (RFC 6733 §3): R, P, E, T and four reserved bits (kept as received).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CommandFlags(pub u8);

impl CommandFlags {
    /// 'R' — the message is a request.
    pub const REQUEST: u8 = 0x80;
    /// 'P' — the message may be proxied, relayed or redirected.
    pub const PROXIABLE: u8 = 0x40;
    /// 'E' — the message contains a protocol error (answers only).
    pub const ERROR: u8 = 0x20;
    /// 'T' — potentially retransmitted after a link failover.
    pub const RETRANSMIT: u8 = 0x10;

    /// Whether the R bit is set.
    pub fn is_request(self) -> bool {
        self.0 & Self::REQUEST != 0
    }
    /// Whether the P bit is set.
    pub fn is_proxiable(self) -> bool {
        self.0 & Self::PROXIABLE != 0
    }
    /// Whether the E bit is set.
    pub fn is_error(self) -> bool {
        self.0 & Self::ERROR != 0
    }
    /// Whether the T bit is set.
    pub fn is_retransmit(self) -> bool {
        self.0 & Self::RETRANSMIT != 0
    }
    /// Sets or clears bits.
    pub fn set(&mut self, bit: u8, on: bool) {
        if on {
            self.0 |= bit;
        } else {
            self.0 &= !bit;
        }
    }
}

/// A read-only view over the first [`HEADER_LEN`] bytes of a message.
///
/// [`HeaderBuffer::new_checked`] verifies the buffer holds a whole header before any
/// accessor runs, so accessors cannot go out of bounds.
#[derive(Debug, Clone, Copy)]
pub struct HeaderBuffer<'a> {
    buf: &'a [u8; HEADER_LEN],
}

impl<'a> HeaderBuffer<'a> {
    /// Wraps `buf` if it holds at least a full header.
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, DecodeError> {
        match buf
            .get(..HEADER_LEN)
            .and_then(|s| <&[u8; HEADER_LEN]>::try_from(s).ok())
        {
            Some(buf) => Ok(HeaderBuffer { buf }),
            None => Err(DecodeError::InvalidMessageLength {
                declared: None,
                available: buf.len(),
            }),
        }
    }

    /// Version field.
    pub fn version(&self) -> u8 {
        self.buf[0]
    }
    /// 24-bit Message Length, header included.
    pub fn length(&self) -> usize {
        u24(&self.buf[1..4])
    }
    /// Command flags.
    pub fn flags(&self) -> CommandFlags {
        CommandFlags(self.buf[4])
    }
    /// 24-bit Command Code.
    pub fn command_code(&self) -> u32 {
        u24(&self.buf[5..8]) as u32
    }
    /// Application-ID.
    pub fn application_id(&self) -> u32 {
        be32(&self.buf[8..12])
    }
    /// Hop-by-Hop Identifier.
    pub fn hop_by_hop(&self) -> u32 {
        be32(&self.buf[12..16])
    }
    /// End-to-End Identifier.
    pub fn end_to_end(&self) -> u32 {
        be32(&self.buf[16..20])
    }

    /// Owned copy of the header fields (the length is recomputed on encode).
    pub fn to_header(&self) -> Header {
        Header {
            flags: self.flags(),
            command_code: self.command_code(),
            application_id: self.application_id(),
            hop_by_hop: self.hop_by_hop(),
            end_to_end: self.end_to_end(),
        }
    }
}

/// Owned header fields of a [`super::Message`]. Version is always 1 and the length
/// is computed when encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Header {
    /// Command flags.
    pub flags: CommandFlags,
    /// Command Code (24 bits).
    pub command_code: u32,
    /// Application-ID.
    pub application_id: u32,
    /// Hop-by-Hop Identifier.
    pub hop_by_hop: u32,
    /// End-to-End Identifier.
    pub end_to_end: u32,
}

impl Header {
    /// Whether this is a request (R bit).
    pub fn is_request(&self) -> bool {
        self.flags.is_request()
    }

    /// Writes the header with the given total message length.
    pub(crate) fn write(&self, length: usize, out: &mut bytes::BytesMut) {
        use bytes::BufMut;
        out.put_u8(VERSION);
        put_u24(out, length as u32);
        out.put_u8(self.flags.0);
        put_u24(out, self.command_code);
        out.put_u32(self.application_id);
        out.put_u32(self.hop_by_hop);
        out.put_u32(self.end_to_end);
    }
}

pub(crate) fn u24(b: &[u8]) -> usize {
    ((b[0] as usize) << 16) | ((b[1] as usize) << 8) | b[2] as usize
}

pub(crate) fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

pub(crate) fn put_u24(out: &mut bytes::BytesMut, v: u32) {
    use bytes::BufMut;
    out.put_u8((v >> 16) as u8);
    out.put_u8((v >> 8) as u8);
    out.put_u8(v as u8);
}
