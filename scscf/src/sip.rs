//! A small owned SIP message model for the S-CSCF's UAS side (RFC 3261 §7, §20):
//! request/response parsing with header unfolding, compact forms (§7.3.3),
//! comma-separated header values, name-addr with parameters, and a printer.
//!
//! The workspace parser lives in `ims-sip-core`; this module covers exactly what the
//! registrar and the reg-event notifier read and write, so the S-CSCF does not hold
//! up on the shared crate. Every header is kept verbatim and in order.

use std::fmt::Write as _;

/// Errors while reading a SIP message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SipError {
    /// The start line is not a SIP request or status line.
    #[error("bad start line")]
    StartLine,
    /// A header line has no colon.
    #[error("bad header line")]
    HeaderLine,
    /// The message is not UTF-8 in its header part.
    #[error("header part is not UTF-8")]
    Encoding,
    /// The body is shorter than Content-Length.
    #[error("body shorter than Content-Length")]
    Truncated,
    /// A required header is absent or malformed.
    #[error("missing or bad header {0}")]
    Header(&'static str),
}

/// One header field, name in canonical (long) form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Canonical name (`Call-ID`, `Via`, …).
    pub name: String,
    /// Value with folding removed and outer whitespace trimmed.
    pub value: String,
}

/// Start line of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    /// `METHOD uri SIP/2.0`
    Request {
        /// Method token.
        method: String,
        /// Request-URI text.
        uri: String,
    },
    /// `SIP/2.0 code reason`
    Response {
        /// Status code.
        code: u16,
        /// Reason phrase.
        reason: String,
    },
}

/// A SIP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Request or status line.
    pub start: StartLine,
    /// Headers in received order.
    pub headers: Vec<Header>,
    /// Body (exactly Content-Length bytes when given).
    pub body: Vec<u8>,
}

/// Expands compact header names (RFC 3261 §7.3.3, RFC 3265 `o`/`u`).
pub fn canonical_name(name: &str) -> String {
    let long = match name.to_ascii_lowercase().as_str() {
        "i" | "call-id" => "Call-ID",
        "m" | "contact" => "Contact",
        "e" | "content-encoding" => "Content-Encoding",
        "l" | "content-length" => "Content-Length",
        "c" | "content-type" => "Content-Type",
        "f" | "from" => "From",
        "s" | "subject" => "Subject",
        "k" | "supported" => "Supported",
        "t" | "to" => "To",
        "v" | "via" => "Via",
        "o" | "event" => "Event",
        "u" | "allow-events" => "Allow-Events",
        "cseq" => "CSeq",
        "www-authenticate" => "WWW-Authenticate",
        _ => return name.to_string(),
    };
    long.to_string()
}

impl Message {
    /// Parses one message from a datagram (RFC 3261 §7, §18.3 framing by Content-Length).
    pub fn parse(buf: &[u8]) -> Result<Message, SipError> {
        let (head, rest) = match find(buf, b"\r\n\r\n") {
            Some(i) => (&buf[..i], &buf[i + 4..]),
            None => match find(buf, b"\n\n") {
                Some(i) => (&buf[..i], &buf[i + 2..]),
                None => (buf, &[][..]),
            },
        };
        let head = std::str::from_utf8(head).map_err(|_| SipError::Encoding)?;
        let mut lines: Vec<String> = Vec::new();
        for raw in head.split('\n') {
            let l = raw.strip_suffix('\r').unwrap_or(raw);
            if (l.starts_with(' ') || l.starts_with('\t')) && !lines.is_empty() {
                if let Some(last) = lines.last_mut() {
                    last.push(' ');
                    last.push_str(l.trim());
                }
            } else {
                lines.push(l.to_string());
            }
        }
        let mut it = lines.into_iter().skip_while(|l| l.trim().is_empty());
        let first = it.next().ok_or(SipError::StartLine)?;
        let start = parse_start(&first)?;
        let mut headers = Vec::new();
        for l in it {
            if l.trim().is_empty() {
                continue;
            }
            let (n, v) = l.split_once(':').ok_or(SipError::HeaderLine)?;
            let n = n.trim();
            if n.is_empty() || n.contains(' ') {
                return Err(SipError::HeaderLine);
            }
            headers.push(Header {
                name: canonical_name(n),
                value: v.trim().to_string(),
            });
        }
        let mut msg = Message {
            start,
            headers,
            body: Vec::new(),
        };
        let body = match msg.header("Content-Length") {
            Some(v) => {
                let n: usize = v
                    .trim()
                    .parse()
                    .map_err(|_| SipError::Header("Content-Length"))?;
                rest.get(..n).ok_or(SipError::Truncated)?
            }
            None => rest,
        };
        msg.body = body.to_vec();
        Ok(msg)
    }

    /// Method of a request.
    pub fn method(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// First value of header `name` (canonical name, case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// All header lines with this name.
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// All comma-separated values of a list header (Via, Contact, Route, Path …).
    pub fn header_values(&self, name: &str) -> Vec<String> {
        self.headers_named(name).flat_map(split_list).collect()
    }

    /// Appends a header.
    pub fn push(&mut self, name: &str, value: impl Into<String>) {
        self.headers.push(Header {
            name: name.to_string(),
            value: value.into(),
        });
    }

    /// Call-ID (for logs).
    pub fn call_id(&self) -> &str {
        self.header("Call-ID").unwrap_or("-")
    }

    /// CSeq number and method.
    pub fn cseq(&self) -> Option<(u32, String)> {
        let v = self.header("CSeq")?;
        let mut p = v.split_whitespace();
        let n = p.next()?.parse().ok()?;
        let m = p.next()?.to_string();
        Some((n, m))
    }

    /// Serialises with a correct Content-Length.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut s = String::with_capacity(512 + self.body.len());
        match &self.start {
            StartLine::Request { method, uri } => {
                let _ = write!(s, "{method} {uri} SIP/2.0\r\n");
            }
            StartLine::Response { code, reason } => {
                let _ = write!(s, "SIP/2.0 {code} {reason}\r\n");
            }
        }
        for h in &self.headers {
            if h.name.eq_ignore_ascii_case("Content-Length") {
                continue;
            }
            let _ = write!(s, "{}: {}\r\n", h.name, h.value);
        }
        let _ = write!(s, "Content-Length: {}\r\n\r\n", self.body.len());
        let mut out = s.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }

    /// Builds a response to this request (RFC 3261 §8.2.6.2): Via, From, To, Call-ID and
    /// CSeq copied; a To tag added when `to_tag` is given and the To has none.
    pub fn response(&self, code: u16, reason: &str, to_tag: Option<&str>) -> Message {
        let mut r = Message {
            start: StartLine::Response {
                code,
                reason: reason.to_string(),
            },
            headers: Vec::new(),
            body: Vec::new(),
        };
        for h in &self.headers {
            match h.name.as_str() {
                "Via" | "From" | "Call-ID" | "CSeq" => r.headers.push(h.clone()),
                "To" => {
                    let mut v = h.value.clone();
                    if let Some(tag) = to_tag {
                        if param_of(&v, "tag").is_none() {
                            v.push_str(";tag=");
                            v.push_str(tag);
                        }
                    }
                    r.headers.push(Header {
                        name: "To".into(),
                        value: v,
                    });
                }
                _ => {}
            }
        }
        r
    }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

fn parse_start(l: &str) -> Result<StartLine, SipError> {
    let l = l.trim();
    if let Some(rest) = l.strip_prefix("SIP/2.0 ") {
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        let code: u16 = code.parse().map_err(|_| SipError::StartLine)?;
        if !(100..700).contains(&code) {
            return Err(SipError::StartLine);
        }
        return Ok(StartLine::Response {
            code,
            reason: reason.to_string(),
        });
    }
    let mut p = l.split(' ').filter(|s| !s.is_empty());
    let (Some(m), Some(u), Some(v), None) = (p.next(), p.next(), p.next(), p.next()) else {
        return Err(SipError::StartLine);
    };
    if !v.eq_ignore_ascii_case("SIP/2.0") || !m.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(SipError::StartLine);
    }
    Ok(StartLine::Request {
        method: m.to_string(),
        uri: u.to_string(),
    })
}

/// Splits a header value at commas that are outside quotes and angle brackets.
pub fn split_list(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut q, mut a, mut cur) = (false, false, String::new());
    let mut esc = false;
    for c in v.chars() {
        if esc {
            esc = false;
            cur.push(c);
            continue;
        }
        match c {
            '\\' if q => esc = true,
            '"' => q = !q,
            '<' if !q => a = true,
            '>' if !q => a = false,
            ',' if !q && !a => {
                if !cur.trim().is_empty() {
                    out.push(cur.trim().to_string());
                }
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// A `name-addr` / `addr-spec` with header parameters (RFC 3261 §25.1 `contact-param`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Display name, if any (quotes kept).
    pub display: Option<String>,
    /// The URI text (without angle brackets).
    pub uri: String,
    /// Header parameters after the URI, names lower-cased, values verbatim.
    pub params: Vec<(String, Option<String>)>,
}

impl NameAddr {
    /// Parses `"Name" <uri>;p=v` or `uri;p=v`.
    pub fn parse(v: &str) -> Option<NameAddr> {
        let v = v.trim();
        let (display, uri, rest) = if let Some(lt) = find_unquoted(v, '<') {
            let gt = v[lt..].find('>')? + lt;
            let d = v[..lt].trim();
            (
                (!d.is_empty()).then(|| d.to_string()),
                v[lt + 1..gt].trim().to_string(),
                &v[gt + 1..],
            )
        } else {
            match v.find(';') {
                Some(i) => (None, v[..i].trim().to_string(), &v[i..]),
                None => (None, v.to_string(), ""),
            }
        };
        if uri.is_empty() {
            return None;
        }
        Some(NameAddr {
            display,
            uri,
            params: parse_params(rest),
        })
    }

    /// Value of a parameter (`None` if absent; `Some("")` for a flag).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref().unwrap_or(""))
    }
}

fn find_unquoted(v: &str, ch: char) -> Option<usize> {
    let mut q = false;
    for (i, c) in v.char_indices() {
        if c == '"' {
            q = !q;
        } else if c == ch && !q {
            return Some(i);
        }
    }
    None
}

/// Parses `;a=b;c;d="e"` into pairs (names lower-cased).
pub fn parse_params(s: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut q = false;
    let mut cur = String::new();
    let mut parts = Vec::new();
    for c in s.chars() {
        match c {
            '"' => {
                q = !q;
                cur.push(c)
            }
            ';' if !q => parts.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    parts.push(cur);
    for p in parts {
        let p = p.trim();
        if p.is_empty() {
            continue;
        }
        match p.split_once('=') {
            Some((n, v)) => out.push((n.trim().to_ascii_lowercase(), Some(v.trim().to_string()))),
            None => out.push((p.to_ascii_lowercase(), None)),
        }
    }
    out
}

/// Value of header parameter `name` in a name-addr header value (e.g. the To tag).
pub fn param_of(v: &str, name: &str) -> Option<String> {
    NameAddr::parse(v).and_then(|n| n.param(name).map(str::to_string))
}

/// Strips surrounding double quotes and unescapes.
pub fn unquote(v: &str) -> String {
    let v = v.trim();
    match v.strip_prefix('"').and_then(|x| x.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut esc = false;
            for c in inner.chars() {
                if esc {
                    out.push(c);
                    esc = false;
                } else if c == '\\' {
                    esc = true;
                } else {
                    out.push(c);
                }
            }
            out
        }
        None => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REG: &str = "REGISTER sip:ims.test SIP/2.0\r\n\
v: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1,SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK2\r\n\
f: <sip:alice@ims.test>;tag=a\r\n\
t: <sip:alice@ims.test>\r\n\
i: abc@1\r\n\
CSeq: 1 REGISTER\r\n\
m: <sip:alice@10.0.0.9:5060;transport=udp>;expires=600;+sip.instance=\"<urn:gsma:imei:1-2-3>\";reg-id=1,\r\n \
<sip:alice@10.0.0.9:5070>\r\n\
Authorization: Digest username=\"alice@ims.test\", realm=\"ims.test\", nonce=\"\", uri=\"sip:ims.test\", response=\"\"\r\n\
l: 4\r\n\r\nabcdEXTRA";

    #[test]
    fn parses_compact_folded_and_body() {
        let m = Message::parse(REG.as_bytes()).unwrap();
        assert_eq!(m.method(), Some("REGISTER"));
        assert_eq!(m.call_id(), "abc@1");
        assert_eq!(m.header_values("Via").len(), 2);
        let c = m.header_values("Contact");
        assert_eq!(c.len(), 2);
        let na = NameAddr::parse(&c[0]).unwrap();
        assert_eq!(na.uri, "sip:alice@10.0.0.9:5060;transport=udp");
        assert_eq!(na.param("expires"), Some("600"));
        assert_eq!(na.param("reg-id"), Some("1"));
        assert_eq!(
            unquote(na.param("+sip.instance").unwrap()),
            "<urn:gsma:imei:1-2-3>"
        );
        assert_eq!(m.body, b"abcd");
        assert_eq!(m.cseq(), Some((1, "REGISTER".into())));
    }

    #[test]
    fn response_copies_and_tags() {
        let m = Message::parse(REG.as_bytes()).unwrap();
        let r = m.response(401, "Unauthorized", Some("xyz"));
        let bytes = r.to_bytes();
        let r2 = Message::parse(&bytes).unwrap();
        assert_eq!(
            r2.start,
            StartLine::Response {
                code: 401,
                reason: "Unauthorized".into()
            }
        );
        assert_eq!(
            param_of(r2.header("To").unwrap(), "tag").as_deref(),
            Some("xyz")
        );
        assert_eq!(r2.header_values("Via").len(), 2);
        assert_eq!(r2.header("Content-Length"), Some("0"));
    }

    #[test]
    fn rejects_garbage() {
        assert!(Message::parse(b"hello\r\n\r\n").is_err());
        assert!(Message::parse(b"").is_err());
        assert!(Message::parse(b"REGISTER sip:x SIP/2.0\r\nnocolon\r\n\r\n").is_err());
        assert_eq!(
            Message::parse(b"REGISTER sip:x SIP/2.0\r\nContent-Length: 10\r\n\r\nab"),
            Err(SipError::Truncated)
        );
    }

    #[test]
    fn addr_spec_params_are_header_params() {
        let n = NameAddr::parse("sip:a@b;expires=0").unwrap();
        assert_eq!(n.uri, "sip:a@b");
        assert_eq!(n.param("expires"), Some("0"));
    }
}
