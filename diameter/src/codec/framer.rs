//! Stream framing on the 24-bit Message Length (RFC 6733 §3) for TCP/SCTP.
//!
//! Like `mini-redis`'s `Frame::check`: look at the buffered bytes and say whether a
//! whole message is there, without decoding it.

use super::error::DecodeError;
use super::header::{u24, HEADER_LEN, VERSION};

/// Largest message accepted by default (1 MiB): a bound on what one peer can make
/// us buffer. Cx messages with User-Data are a few kB.
pub const DEFAULT_MAX_MESSAGE_LEN: usize = 1 << 20;

/// What the start of a stream buffer holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// Not enough bytes yet.
    Incomplete,
    /// A whole message of this many bytes is at the start of the buffer.
    Complete(usize),
    /// The stream cannot be framed (bad version, length below a header, or over the
    /// limit): the connection must be closed.
    Invalid(DecodeError),
}

/// Frames with [`DEFAULT_MAX_MESSAGE_LEN`].
pub fn check(buf: &[u8]) -> Frame {
    check_with_limit(buf, DEFAULT_MAX_MESSAGE_LEN)
}

/// Frames with an explicit size limit.
///
/// A length that is not a multiple of 4 still frames (the message is delivered and
/// rejected by decode with 5015, the stream stays usable).
pub fn check_with_limit(buf: &[u8], max: usize) -> Frame {
    if buf.len() < 4 {
        return Frame::Incomplete;
    }
    if buf[0] != VERSION {
        return Frame::Invalid(DecodeError::UnsupportedVersion(buf[0]));
    }
    let length = u24(&buf[1..4]);
    if length < HEADER_LEN {
        return Frame::Invalid(DecodeError::InvalidMessageLength {
            declared: Some(length),
            available: buf.len(),
        });
    }
    if length > max {
        return Frame::Invalid(DecodeError::MessageTooLarge { length, max });
    }
    if buf.len() < length {
        Frame::Incomplete
    } else {
        Frame::Complete(length)
    }
}
