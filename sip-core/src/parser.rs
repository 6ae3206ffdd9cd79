//! Indexing a message (RFC 3261 §7, §7.3.1 folding, §7.5 leading CRLF, §18.3 framing).
//!
//! One pass over the header section: the start line, then per line the name/value/line
//! ranges. Lines end in CRLF (a bare LF is tolerated); a line starting with SP/HT
//! continues the previous header; white space around the colon is allowed.

use bytes::Bytes;

use crate::error::{ParseError, ParseErrorKind as K};
use crate::header_name::{is_token_char, HeaderName};
use crate::message::{HeaderField, Message, Span, StartLine};
use crate::method::Method;
use crate::status::StatusCode;

/// Indexes one message out of a datagram (or an exactly framed stream message).
pub(crate) fn index(buf: Bytes) -> Result<Message, ParseError> {
    let b = &buf[..];
    let mut pos = 0;
    while pos < b.len() && (b[pos] == b'\r' || b[pos] == b'\n') {
        pos += 1;
    }
    if pos == b.len() {
        return Err(ParseError::new(K::Empty, false));
    }
    let raw = buf.slice(pos..);
    let b = &raw[..];
    let is_request = !(b.len() >= 4 && b[..4].eq_ignore_ascii_case(b"SIP/"));

    let Some(nl) = memchr(b'\n', b, 0) else {
        return Err(ParseError::new(K::Truncated, is_request));
    };
    let line_end = if nl > 0 && b[nl - 1] == b'\r' { nl - 1 } else { nl };
    let start_res = parse_start_line(b, line_end, is_request);
    let start_line_end = nl + 1;

    // Header lines.
    let mut headers: Vec<HeaderField> = Vec::with_capacity(16);
    let mut p = start_line_end;
    let head_end;
    let body_start;
    loop {
        let Some(nl) = memchr(b'\n', b, p) else {
            return Err(ParseError::new(K::Truncated, is_request));
        };
        let le = if nl > p && b[nl - 1] == b'\r' { nl - 1 } else { nl };
        if le == p {
            head_end = p;
            body_start = nl + 1;
            break;
        }
        if b[p] == b' ' || b[p] == b'\t' {
            // Continuation of the previous header (folding).
            let Some(h) = headers.last_mut() else {
                return Err(ParseError::new(K::BadHeaderLine, is_request));
            };
            let content = trim_end(b, p, le);
            if content > p {
                if h.value_span.start >= h.value_span.end {
                    let mut s = p;
                    while s < content && (b[s] == b' ' || b[s] == b'\t') {
                        s += 1;
                    }
                    h.value_span = Span::new(s, content);
                } else {
                    h.value_span.end = content as u32;
                }
            }
            h.line_span.end = (nl + 1) as u32;
        } else {
            let Some(colon) = memchr(b':', &b[..le], p) else {
                return Err(ParseError::new(K::BadHeaderLine, is_request));
            };
            let name_end = trim_end(b, p, colon);
            let name = &b[p..name_end];
            if name.is_empty() || !name.iter().all(|&c| is_token_char(c)) {
                return Err(ParseError::new(K::BadHeaderLine, is_request));
            }
            let mut vs = colon + 1;
            while vs < le && (b[vs] == b' ' || b[vs] == b'\t') {
                vs += 1;
            }
            let ve = trim_end(b, vs, le);
            headers.push(HeaderField {
                name: HeaderName::from_bytes(name),
                name_span: Span::new(p, name_end),
                value_span: Span::new(vs, ve.max(vs)),
                line_span: Span::new(p, nl + 1),
            });
        }
        p = nl + 1;
    }

    if std::str::from_utf8(&b[..head_end]).is_err() {
        return Err(ParseError::new(K::InvalidUtf8, is_request));
    }

    // Content-Length (RFC 3261 §20.14, §18.3).
    let mut content_length: Option<usize> = None;
    let mut cl_error = None;
    for h in headers.iter().filter(|h| h.name == HeaderName::ContentLength) {
        match parse_content_length(&b[h.value_span.range()]) {
            Ok(v) => {
                if content_length.is_some_and(|c| c != v) {
                    cl_error = Some("conflicting values");
                }
                content_length = Some(v);
            }
            Err(e) => cl_error = Some(e),
        }
    }
    let available = b.len() - body_start;
    if cl_error.is_none() && content_length.is_some_and(|c| c > available) {
        cl_error = Some("larger than the message");
    }

    let start = match start_res {
        Ok(s) => Ok(s),
        Err((kind, placeholder)) => Err((kind, placeholder)),
    };
    let (start, start_err) = match start {
        Ok(s) => (s, None),
        Err((kind, placeholder)) => (placeholder, Some(kind)),
    };

    let end = match (cl_error, content_length) {
        (None, Some(c)) => body_start + c,
        (None, None) => b.len(),
        (Some(_), _) => body_start,
    };
    let msg = Message {
        raw: raw.slice(..end),
        start,
        start_line_end: start_line_end as u32,
        headers,
        head_end: head_end as u32,
        body_start: body_start as u32,
    };
    if let Some(kind) = start_err {
        return Err(ParseError::new(kind, is_request).with_message(msg));
    }
    if let Some(e) = cl_error {
        return Err(ParseError::new(K::BadContentLength(e), is_request).with_message(msg));
    }
    Ok(msg)
}

fn parse_content_length(v: &[u8]) -> Result<usize, &'static str> {
    if v.first() == Some(&b'-') {
        return Err("negative");
    }
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return Err("not a number");
    }
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|&n| n <= u32::MAX as usize)
        .ok_or("too large")
}

/// Parses the start line in `b[..end]`. On error returns the kind and a placeholder
/// start line so the header index can still be handed out.
fn parse_start_line(b: &[u8], end: usize, is_request: bool) -> Result<StartLine, (K, StartLine)> {
    let line = &b[..end];
    if !is_request {
        let bad = |r| {
            (
                K::BadStatusLine(r),
                StartLine::Response {
                    status: StatusCode::BAD_REQUEST,
                    reason: Span::default(),
                },
            )
        };
        // SIP-Version SP Status-Code SP Reason-Phrase
        let sp = memchr(b' ', line, 0).ok_or_else(|| bad("no status code"))?;
        if !line[..sp].eq_ignore_ascii_case(b"SIP/2.0") {
            return Err(bad("unsupported version"));
        }
        let cs = sp + 1;
        let ce = memchr(b' ', line, cs).unwrap_or(end);
        let code = &line[cs..ce];
        if code.len() != 3 || !code.iter().all(u8::is_ascii_digit) {
            return Err(bad("status code is not 3 digits"));
        }
        let n = (code[0] - b'0') as u16 * 100 + (code[1] - b'0') as u16 * 10 + (code[2] - b'0') as u16;
        let status = StatusCode::new(n).ok_or_else(|| bad("status code out of range"))?;
        let rs = (ce + 1).min(end);
        return Ok(StartLine::Response {
            status,
            reason: Span::new(rs, end),
        });
    }
    let placeholder = |m: &[u8]| StartLine::Request {
        method: Method::from_token(std::str::from_utf8(m).unwrap_or("")),
        uri: Span::default(),
    };
    let Some(sp1) = memchr(b' ', line, 0) else {
        return Err((K::BadRequestLine("no Request-URI"), placeholder(b"")));
    };
    let method = &line[..sp1];
    if method.is_empty() || !method.iter().all(|&c| is_token_char(c)) {
        return Err((K::BadRequestLine("method is not a token"), placeholder(b"")));
    }
    let ph = || placeholder(method);
    let Some(sp2) = line.iter().rposition(|&c| c == b' ') else {
        return Err((K::BadRequestLine("no SIP-Version"), ph()));
    };
    if sp2 == sp1 {
        return Err((K::BadRequestLine("no SIP-Version"), ph()));
    }
    let uri = &line[sp1 + 1..sp2];
    let version = &line[sp2 + 1..];
    if version.is_empty() {
        return Err((K::BadRequestLine("white space after SIP-Version"), ph()));
    }
    if uri.is_empty() || uri.contains(&b' ') || uri.contains(&b'\t') {
        return Err((K::BadRequestLine("extra white space"), ph()));
    }
    if !version.eq_ignore_ascii_case(b"SIP/2.0") {
        if version.len() > 4 && version[..4].eq_ignore_ascii_case(b"SIP/") {
            return Err((K::VersionNotSupported, ph()));
        }
        return Err((K::BadRequestLine("invalid SIP-Version"), ph()));
    }
    let Ok(m) = std::str::from_utf8(method) else {
        return Err((K::BadRequestLine("method is not a token"), ph()));
    };
    if std::str::from_utf8(uri).is_err() {
        return Err((K::InvalidUtf8, ph()));
    }
    Ok(StartLine::Request {
        method: Method::from_token(m),
        uri: Span::new(sp1 + 1, sp2),
    })
}

fn trim_end(b: &[u8], start: usize, mut end: usize) -> usize {
    while end > start && (b[end - 1] == b' ' || b[end - 1] == b'\t') {
        end -= 1;
    }
    end
}

#[inline]
pub(crate) fn memchr(needle: u8, hay: &[u8], from: usize) -> Option<usize> {
    memchr::memchr(needle, hay.get(from..)?).map(|i| i + from)
}
