//! Stream framing (RFC 3261 §18.3, §7.5; RFC 5626 §3.5.1 keep-alives): find where the
//! next message ends in a TCP/TLS byte stream without parsing it.
//!
//! Two entry points: [`check`] (`Ok(None)` incomplete, `Ok(Some(len))` a message of
//! `len` octets — leading CRLFs included, [`crate::Message::parse`] skips them — or
//! `Err` = close the connection), and [`check_frame`] which reports keep-alive CRLFs
//! separately so the transport can answer a `CRLFCRLF` ping with a `CRLF` pong.
//!
//! ```
//! use ims_sip_core::framing::{check, check_frame, Frame};
//! let buf = b"\r\n\r\nOPTIONS sip:a SIP/2.0\r\nContent-Length: 2\r\n\r\nhi";
//! assert_eq!(check_frame(buf), Ok(Frame::KeepAlive(4)));
//! assert_eq!(check_frame(&buf[4..]), Ok(Frame::Message(buf.len() - 4)));
//! assert_eq!(check_frame(&buf[4..20]), Ok(Frame::Incomplete));
//! assert_eq!(check(buf), Ok(Some(buf.len())));
//! assert_eq!(check(&buf[..20]), Ok(None));
//! ```

use crate::header_name::HeaderName;
use crate::parser::memchr;

/// Largest header section accepted before the stream is declared broken.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Largest body accepted.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The result of looking at the start of a stream buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame {
    /// More octets are needed.
    Incomplete,
    /// The buffer starts with this many CRLF keep-alive octets (`CRLFCRLF` ping or a
    /// `CRLF` pong, RFC 5626 §3.5.1): consume them (and answer a double CRLF with CRLF).
    KeepAlive(usize),
    /// A whole message of this many octets is at the start of the buffer.
    Message(usize),
}

/// The stream cannot be resynchronised: close the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FramingError {
    /// Content-Length negative, not a number or duplicated with different values
    /// (RFC 4475 §3.1.2.3, §3.3.9).
    #[error("bad Content-Length: {0}")]
    BadContentLength(&'static str),
    /// Header section or body larger than the limits.
    #[error("message too large")]
    TooLarge,
}

/// Length of the message at the start of `buf`, leading keep-alive CRLFs included;
/// `Ok(None)` when incomplete (also for a buffer of CRLFs only). A missing
/// Content-Length counts as 0.
pub fn check(buf: &[u8]) -> Result<Option<usize>, FramingError> {
    let lead = buf.iter().take_while(|&&c| c == b'\r' || c == b'\n').count();
    Ok(match check_frame(&buf[lead..])? {
        Frame::Message(n) => Some(lead + n),
        _ => None,
    })
}

/// Looks at the start of `buf`. See [`Frame`]. A missing Content-Length counts as 0.
pub fn check_frame(buf: &[u8]) -> Result<Frame, FramingError> {
    let lead = buf.iter().take_while(|&&c| c == b'\r' || c == b'\n').count();
    if lead > 0 {
        return Ok(Frame::KeepAlive(lead));
    }
    // Find the empty line.
    let mut p = 0;
    let mut cl: Option<usize> = None;
    loop {
        let Some(nl) = memchr(b'\n', buf, p) else {
            if buf.len() > MAX_HEADER_BYTES {
                return Err(FramingError::TooLarge);
            }
            return Ok(Frame::Incomplete);
        };
        let le = if nl > p && buf[nl - 1] == b'\r' {
            nl - 1
        } else {
            nl
        };
        if le == p {
            let body_start = nl + 1;
            let len = body_start + cl.unwrap_or(0);
            return Ok(if buf.len() >= len {
                Frame::Message(len)
            } else {
                Frame::Incomplete
            });
        }
        if nl > MAX_HEADER_BYTES {
            return Err(FramingError::TooLarge);
        }
        let line = &buf[p..le];
        if let Some(colon) = line.iter().position(|&c| c == b':') {
            let name = line[..colon].trim_ascii_end();
            if HeaderName::from_bytes(name) == HeaderName::ContentLength {
                let v = line[colon + 1..].trim_ascii();
                let n = parse_len(v)?;
                if cl.is_some_and(|c| c != n) {
                    return Err(FramingError::BadContentLength("conflicting values"));
                }
                cl = Some(n);
            }
        }
        p = nl + 1;
    }
}

fn parse_len(v: &[u8]) -> Result<usize, FramingError> {
    if v.first() == Some(&b'-') {
        return Err(FramingError::BadContentLength("negative"));
    }
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return Err(FramingError::BadContentLength("not a number"));
    }
    let n = std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .ok_or(FramingError::TooLarge)?;
    if n > MAX_BODY_BYTES {
        return Err(FramingError::TooLarge);
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames() {
        let m = b"REGISTER sip:a SIP/2.0\r\nl: 3\r\n\r\nabcREGISTER";
        assert_eq!(check_frame(m), Ok(Frame::Message(m.len() - 8)));
        assert_eq!(check(m), Ok(Some(m.len() - 8)));
        assert_eq!(
            check_frame(b"REGISTER sip:a SIP/2.0\r\nl: 3\r\n\r\nab"),
            Ok(Frame::Incomplete)
        );
        assert_eq!(check_frame(b"REGISTER sip:a SIP/2.0\r\n"), Ok(Frame::Incomplete));
        assert_eq!(check_frame(b"\r\n"), Ok(Frame::KeepAlive(2)));
        assert_eq!(check(b"\r\n\r\n"), Ok(None));
        assert_eq!(check_frame(b""), Ok(Frame::Incomplete));
        assert!(matches!(
            check(b"A sip:a SIP/2.0\r\nContent-Length: -999\r\n\r\n"),
            Err(FramingError::BadContentLength(_))
        ));
        assert!(matches!(
            check(b"A sip:a SIP/2.0\r\nContent-Length: 13\r\nContent-Length : 5\r\n\r\n"),
            Err(FramingError::BadContentLength(_))
        ));
        // Folded header lines are skipped without confusion.
        let f = b"A sip:a SIP/2.0\r\nSubject: x\r\n y\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(check(f), Ok(Some(f.len())));
    }
}
