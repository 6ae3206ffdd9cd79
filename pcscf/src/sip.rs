//! Minimal SIP message view for the proxy (RFC 3261 §7, §20, §25): start line, headers
//! kept with their original bytes (forwarded byte for byte unless this node edits them),
//! body framed on Content-Length, and the syntax checks a proxy needs to refuse malformed
//! requests (RFC 4475 §3.1.2) with 400/505 instead of forwarding them.
//!
//! Local stand-in kept deliberately small; the workspace's `ims-sip-core` is the place for
//! the full model. Values are unfolded (RFC 3261 §7.3.1) and read as UTF-8 (lossy) for the
//! typed look-ups; untouched headers keep their raw bytes.

use bytes::{Bytes, BytesMut};
use std::fmt::Write as _;

/// Why a message could not be accepted, with the response a request gets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {reason}")]
pub struct ParseError {
    /// Status code to answer a request with (400 or 505).
    pub status: u16,
    /// Human-readable reason (goes into the reason phrase / Warning text).
    pub reason: String,
    /// Whether the bytes looked like a response (never answered, only dropped).
    pub is_response: bool,
}

fn bad(reason: impl Into<String>) -> ParseError {
    ParseError {
        status: 400,
        reason: reason.into(),
        is_response: false,
    }
}

/// Start line of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    /// `Method SP Request-URI SP SIP/2.0`.
    Request {
        /// Method token, case-sensitive (RFC 3261 §7.1).
        method: String,
        /// Request-URI as written.
        uri: String,
    },
    /// `SIP/2.0 SP code SP reason`.
    Response {
        /// Status code 100–699.
        code: u16,
        /// Reason phrase (lossy UTF-8).
        reason: String,
    },
}

/// One header field.
#[derive(Debug, Clone)]
pub struct Header {
    /// Canonical lower-case long name (compact forms expanded).
    pub key: String,
    /// Name as it should be printed when the header is (re)written.
    pub name: String,
    /// Unfolded, trimmed value.
    pub value: String,
    /// The original bytes of the field including its CRLF, `None` once edited or new.
    raw: Option<Bytes>,
}

/// A parsed SIP message.
#[derive(Debug, Clone)]
pub struct Message {
    /// Request or status line.
    pub start: StartLine,
    /// Header fields in order.
    pub headers: Vec<Header>,
    /// Message body (exactly Content-Length octets).
    pub body: Bytes,
}

/// Expands a compact header name (RFC 3261 §7.3.3, RFC 3265, RFC 3515, RFC 4028 …).
pub fn canonical(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    let long = match lower.as_str() {
        "i" => "call-id",
        "m" => "contact",
        "e" => "content-encoding",
        "l" => "content-length",
        "c" => "content-type",
        "f" => "from",
        "s" => "subject",
        "k" => "supported",
        "t" => "to",
        "v" => "via",
        "o" => "event",
        "r" => "refer-to",
        "u" => "allow-events",
        "b" => "referred-by",
        "x" => "session-expires",
        "a" => "accept-contact",
        "j" => "reject-contact",
        "d" => "request-disposition",
        "y" => "identity",
        "n" => "identity-info",
        _ => return lower,
    };
    long.to_string()
}

fn is_token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&c)
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Headers that may appear at most once in a request (RFC 3261 §7.3.1, §20).
const SINGLE: [&str; 5] = ["to", "from", "call-id", "cseq", "max-forwards"];

impl Message {
    /// Parses one message. `datagram`: the bytes are a whole UDP datagram (RFC 3261 §18.3:
    /// a Content-Length beyond the datagram is an error, octets after the body are dropped).
    pub fn parse(data: &[u8], datagram: bool) -> Result<Message, ParseError> {
        let lead = data
            .iter()
            .take_while(|b| **b == b'\r' || **b == b'\n')
            .count();
        let data = &data[lead..];
        let is_response = data.starts_with(b"SIP/");
        let fail = |mut e: ParseError| {
            e.is_response = is_response;
            e
        };
        let (head_end, body_start) = match find(data, b"\r\n\r\n") {
            Some(p) => (p, p + 4),
            None => match find(data, b"\n\n") {
                Some(p) => (p, p + 2),
                None => return Err(fail(bad("no end of header fields"))),
            },
        };
        let head = &data[..head_end];
        // Line spans (start, end-without-CR, end-with-LF) over `data`.
        let mut lines: Vec<(usize, usize, usize)> = Vec::new();
        let mut pos = 0;
        while pos < head.len() {
            let nl = head[pos..]
                .iter()
                .position(|b| *b == b'\n')
                .map_or(head.len(), |p| pos + p);
            let end = if nl > pos && head[nl - 1] == b'\r' {
                nl - 1
            } else {
                nl
            };
            // The last line's line break belongs to the blank line that ends the head.
            let next = if nl >= head.len() { end } else { nl + 1 };
            lines.push((pos, end, next));
            pos = nl + 1;
        }
        let Some(&(s0, e0, _)) = lines.first() else {
            return Err(fail(bad("empty message")));
        };
        let start = parse_start(&data[s0..e0]).map_err(fail)?;
        let mut headers: Vec<Header> = Vec::new();
        let mut i = 1;
        while i < lines.len() {
            let (s, e, mut n) = lines[i];
            let mut value_text = String::from_utf8_lossy(&data[s..e]).into_owned();
            i += 1;
            while i < lines.len() && matches!(data[lines[i].0..].first(), Some(b' ' | b'\t')) {
                value_text.push(' ');
                value_text.push_str(String::from_utf8_lossy(&data[lines[i].0..lines[i].1]).trim());
                n = lines[i].2;
                i += 1;
            }
            if value_text.trim().is_empty() {
                continue;
            }
            let Some((name, value)) = value_text.split_once(':') else {
                return Err(fail(bad("header field without colon")));
            };
            let name = name.trim();
            if !is_token(name) {
                return Err(fail(bad("bad header field name")));
            }
            // The last line of the head has no CRLF of its own inside `head`; the raw copy
            // always ends in CRLF.
            let mut raw = BytesMut::from(&data[s..n.min(data.len())]);
            if !raw.ends_with(b"\n") {
                raw.extend_from_slice(b"\r\n");
            }
            headers.push(Header {
                key: canonical(name),
                name: name.to_string(),
                value: value.trim().to_string(),
                raw: Some(raw.freeze()),
            });
        }
        let mut length: Option<usize> = None;
        for h in headers.iter().filter(|h| h.key == "content-length") {
            let n: usize = h
                .value
                .parse()
                .map_err(|_| fail(bad("bad Content-Length")))?;
            if length.is_some_and(|l| l != n) {
                return Err(fail(bad("conflicting Content-Length values")));
            }
            length = Some(n);
        }
        let rest = &data[body_start.min(data.len())..];
        let body = match length {
            Some(n) if n > rest.len() => {
                if datagram {
                    return Err(fail(bad("Content-Length larger than the message")));
                }
                return Err(fail(bad("truncated body")));
            }
            Some(n) => Bytes::copy_from_slice(&rest[..n]),
            None => Bytes::copy_from_slice(rest),
        };
        Ok(Message {
            start,
            headers,
            body,
        })
    }

    /// The method of a request.
    pub fn method(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// Request-URI of a request.
    pub fn uri(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    /// Status code of a response.
    pub fn code(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { code, .. } => Some(*code),
            StartLine::Request { .. } => None,
        }
    }

    /// First value of a header (by canonical lower-case name).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.key == key)
            .map(|h| h.value.as_str())
    }

    /// All header fields with this name, in order.
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |h| h.key == key)
            .map(|h| h.value.as_str())
    }

    /// All comma-separated values of a list header (RFC 3261 §7.3.1), in order.
    pub fn list(&self, key: &str) -> Vec<String> {
        self.all(key)
            .flat_map(split_list)
            .filter(|v| !v.is_empty())
            .collect()
    }

    /// Whether a header is present.
    pub fn has(&self, key: &str) -> bool {
        self.headers.iter().any(|h| h.key == key)
    }

    /// Removes every field with this name.
    pub fn remove(&mut self, key: &str) {
        self.headers.retain(|h| h.key != key);
    }

    /// Inserts a new field before all others (used for Via, Record-Route).
    pub fn push_front(&mut self, name: &str, value: impl Into<String>) {
        self.headers.insert(0, new_header(name, value.into()));
    }

    /// Inserts a new field before the first field named `key` (or at the top if none; or
    /// at the end if `key` is absent and `at_end`).
    pub fn insert_before(&mut self, key: &str, name: &str, value: impl Into<String>) {
        let at = self.headers.iter().position(|h| h.key == key).unwrap_or(0);
        self.headers.insert(at, new_header(name, value.into()));
    }

    /// Appends a new field after the last field (before the body).
    pub fn push_back(&mut self, name: &str, value: impl Into<String>) {
        let at = self
            .headers
            .iter()
            .rposition(|h| h.key == "content-length")
            .unwrap_or(self.headers.len());
        self.headers.insert(at, new_header(name, value.into()));
    }

    /// Replaces every field named `key` by one field with `value` (at the first one's place).
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let key = canonical(name);
        let at = self.headers.iter().position(|h| h.key == key);
        self.headers.retain(|h| h.key != key);
        let h = new_header(name, value.into());
        match at {
            Some(a) => self.headers.insert(a.min(self.headers.len()), h),
            None => self.push_back(name, h.value),
        }
    }

    /// Removes the first value of a list header (e.g. the top Via or Route); returns it.
    pub fn pop_first(&mut self, key: &str) -> Option<String> {
        let idx = self.headers.iter().position(|h| h.key == key)?;
        let mut values = split_list(&self.headers[idx].value);
        let first = if values.is_empty() {
            None
        } else {
            Some(values.remove(0))
        };
        if values.is_empty() {
            self.headers.remove(idx);
        } else {
            let h = &mut self.headers[idx];
            h.value = values.join(", ");
            h.raw = None;
        }
        first
    }

    /// Edits the value of the header at `idx` in place.
    pub fn edit(&mut self, idx: usize, value: String) {
        if let Some(h) = self.headers.get_mut(idx) {
            h.value = value;
            h.raw = None;
        }
    }

    /// Changes the Request-URI.
    pub fn set_uri(&mut self, new_uri: String) {
        if let StartLine::Request { uri, .. } = &mut self.start {
            *uri = new_uri;
        }
    }

    /// Serialises the message; untouched headers are copied byte for byte, and a
    /// Content-Length is added if the message had none.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(512 + self.body.len());
        match &self.start {
            StartLine::Request { method, uri } => {
                out.extend_from_slice(format!("{method} {uri} SIP/2.0\r\n").as_bytes())
            }
            StartLine::Response { code, reason } => {
                out.extend_from_slice(format!("SIP/2.0 {code} {reason}\r\n").as_bytes())
            }
        }
        for h in &self.headers {
            match &h.raw {
                Some(raw) => out.extend_from_slice(raw),
                None => out.extend_from_slice(format!("{}: {}\r\n", h.name, h.value).as_bytes()),
            }
        }
        if !self.has("content-length") {
            out.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out.freeze()
    }

    /// Builds a response to this request (RFC 3261 §8.2.6): Via, From, To (with `to_tag`
    /// added when it has none and the code is above 100), Call-ID, CSeq copied.
    pub fn response(&self, code: u16, reason: &str, to_tag: &str) -> Message {
        let mut headers = Vec::new();
        for h in &self.headers {
            match h.key.as_str() {
                "via" | "from" | "call-id" | "cseq" => {
                    headers.push(new_header(&display_name(&h.key), h.value.clone()))
                }
                "to" => {
                    let mut v = h.value.clone();
                    if code > 100 && param_of(header_params(&v), "tag").is_none() {
                        let _ = write!(v, ";tag={to_tag}");
                    }
                    headers.push(new_header("To", v));
                }
                _ => {}
            }
        }
        Message {
            start: StartLine::Response {
                code,
                reason: reason.to_string(),
            },
            headers,
            body: Bytes::new(),
        }
    }

    /// Checks a parsed request the way a proxy must before acting on it (RFC 3261 §16.3
    /// item 1, RFC 4475 §3.1.2/§3.3): mandatory single headers, CSeq, Via, name-addrs.
    pub fn check_request(&self) -> Result<(), ParseError> {
        let Some(method) = self.method() else {
            return Ok(());
        };
        for key in SINGLE {
            let n = self.all(key).count();
            if n > 1 {
                return Err(bad(format!("more than one {key}")));
            }
            if n == 0 && key != "max-forwards" {
                return Err(bad(format!("missing {key}")));
            }
        }
        let vias = self.list("via");
        if vias.is_empty() {
            return Err(bad("missing Via"));
        }
        for h in self.all("via") {
            for v in split_list(h) {
                Via::parse(&v).ok_or_else(|| bad("malformed Via"))?;
            }
        }
        let cseq = self.get("cseq").unwrap_or("");
        let mut it = cseq.split_whitespace();
        let num = it.next().and_then(|n| n.parse::<u32>().ok());
        let cmethod = it.next();
        match (num, cmethod, it.next()) {
            (Some(n), Some(m), None) if n < (1 << 31) => {
                if m != method {
                    return Err(bad("CSeq method does not match the request"));
                }
            }
            _ => return Err(bad("malformed CSeq")),
        }
        if let Some(mf) = self.get("max-forwards") {
            if mf.parse::<u32>().map_or(true, |v| v > 255) {
                return Err(bad("malformed Max-Forwards"));
            }
        }
        for key in ["to", "from"] {
            let v = self.get(key).unwrap_or("");
            NameAddr::parse(v).ok_or_else(|| bad(format!("malformed {key}")))?;
        }
        for v in self.list("contact") {
            if v.trim() == "*" {
                continue;
            }
            NameAddr::parse(&v).ok_or_else(|| bad("malformed Contact"))?;
        }
        for key in ["route", "record-route", "path"] {
            for v in self.list(key) {
                NameAddr::parse(&v).ok_or_else(|| bad(format!("malformed {key}")))?;
            }
        }
        if let Some(date) = self.get("date") {
            if !date.trim_end().ends_with("GMT") {
                return Err(bad("Date not in GMT"));
            }
        }
        Ok(())
    }
}

fn display_name(key: &str) -> String {
    match key {
        "via" => "Via".into(),
        "from" => "From".into(),
        "to" => "To".into(),
        "call-id" => "Call-ID".into(),
        "cseq" => "CSeq".into(),
        other => other.to_string(),
    }
}

fn new_header(name: &str, value: String) -> Header {
    Header {
        key: canonical(name),
        name: name.to_string(),
        value,
        raw: None,
    }
}

fn parse_start(line: &[u8]) -> Result<StartLine, ParseError> {
    let text = String::from_utf8_lossy(line);
    if let Some(rest) = text.strip_prefix("SIP/") {
        let resp_err = |r: &str| ParseError {
            status: 400,
            reason: r.into(),
            is_response: true,
        };
        let mut parts = rest.splitn(3, ' ');
        let version = parts.next().unwrap_or("");
        if version != "2.0" {
            return Err(resp_err("unknown SIP version"));
        }
        let code = parts.next().unwrap_or("");
        let code: u16 = match code.parse() {
            Ok(c) if code.len() == 3 && (100..=699).contains(&c) => c,
            _ => return Err(resp_err("bad status code")),
        };
        let reason = parts.next().unwrap_or("").to_string();
        return Ok(StartLine::Response { code, reason });
    }
    let parts: Vec<&str> = text.split(' ').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
        return Err(bad("malformed Request-Line"));
    }
    let (method, uri, version) = (parts[0], parts[1], parts[2]);
    if !is_token(method) {
        return Err(bad("bad method"));
    }
    if !version.eq_ignore_ascii_case("SIP/2.0") {
        if version.to_ascii_uppercase().starts_with("SIP/") {
            return Err(ParseError {
                status: 505,
                reason: "Version Not Supported".into(),
                is_response: false,
            });
        }
        return Err(bad("bad SIP version"));
    }
    let scheme_ok = uri.split_once(':').is_some_and(|(s, _)| {
        s.bytes().next().is_some_and(|c| c.is_ascii_alphabetic())
            && s.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"+-.".contains(&c))
    });
    if !scheme_ok || uri.contains(['<', '>', '\t']) {
        return Err(bad("malformed Request-URI"));
    }
    let u = Uri::parse(uri);
    if u.is_sip() && u.has_headers {
        return Err(bad("escaped headers in the Request-URI"));
    }
    Ok(StartLine::Request {
        method: method.to_string(),
        uri: uri.to_string(),
    })
}

/// Splits a header value on commas outside quotes and angle brackets.
pub fn split_list(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut angle, mut esc) = (false, false, false);
    for c in v.chars() {
        if esc {
            esc = false;
            cur.push(c);
            continue;
        }
        match c {
            '\\' if quoted => esc = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                out.push(cur.trim().to_string());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur.trim().to_string());
    out
}

/// Splits `;`-separated parameters (outside quotes) into (name, value) pairs, LWS trimmed.
/// `None` if a parameter is empty (`;;`).
pub fn parse_params(s: &str) -> Option<Vec<(String, Option<String>)>> {
    let mut out = Vec::new();
    if s.trim().is_empty() {
        return Some(out);
    }
    let mut parts = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut esc) = (false, false);
    for c in s.chars() {
        if esc {
            esc = false;
            cur.push(c);
            continue;
        }
        match c {
            '\\' if quoted => esc = true,
            '"' => quoted = !quoted,
            ';' if !quoted => {
                parts.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if quoted {
        return None;
    }
    parts.push(cur);
    for p in parts {
        let p = p.trim();
        if p.is_empty() {
            return None;
        }
        match p.split_once('=') {
            Some((n, v)) => {
                let n = n.trim();
                if !is_token(n) {
                    return None;
                }
                out.push((n.to_ascii_lowercase(), Some(v.trim().to_string())))
            }
            None => {
                if !is_token(p) {
                    return None;
                }
                out.push((p.to_ascii_lowercase(), None))
            }
        }
    }
    Some(out)
}

/// Value of parameter `name` in a parsed list (`Some("")` for a flag without value).
pub fn param_of(params: Option<Vec<(String, Option<String>)>>, name: &str) -> Option<String> {
    params?
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.unwrap_or_default())
}

fn header_params(v: &str) -> Option<Vec<(String, Option<String>)>> {
    NameAddr::parse(v).map(|na| na.params)
}

/// A `name-addr` or `addr-spec` with header parameters (RFC 3261 §20.10, §25.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Display name as written (quotes kept), may be empty.
    pub display: String,
    /// The URI.
    pub uri: String,
    /// Header parameters after the URI (lower-case names).
    pub params: Vec<(String, Option<String>)>,
}

impl NameAddr {
    /// Parses one value; `None` if malformed.
    pub fn parse(v: &str) -> Option<NameAddr> {
        let v = v.trim();
        if v.is_empty() {
            return None;
        }
        let (display, after_display) = if v.starts_with('"') {
            let mut esc = false;
            let mut end = None;
            for (i, c) in v.char_indices().skip(1) {
                if esc {
                    esc = false;
                } else if c == '\\' {
                    esc = true;
                } else if c == '"' {
                    end = Some(i);
                    break;
                }
            }
            let end = end?;
            (v[..=end].to_string(), v[end + 1..].trim_start())
        } else if let Some(lt) = v.find('<') {
            let d = v[..lt].trim();
            // Unquoted display name: tokens separated by LWS (RFC 3261 §25.1).
            if !d.split_whitespace().all(is_token) {
                return None;
            }
            (d.to_string(), &v[lt..])
        } else {
            (String::new(), v)
        };
        if let Some(rest) = after_display.strip_prefix('<') {
            let gt = rest.find('>')?;
            let uri = &rest[..gt];
            if uri.is_empty() || uri.trim() != uri || uri.contains(char::is_whitespace) {
                return None;
            }
            let after = rest[gt + 1..].trim_start();
            let params = match after.strip_prefix(';') {
                Some(p) => parse_params(p)?,
                None if after.is_empty() => Vec::new(),
                None => return None,
            };
            Some(NameAddr {
                display,
                uri: uri.to_string(),
                params,
            })
        } else {
            if !display.is_empty() {
                return None;
            }
            // addr-spec: the URI ends at the first ';' (what follows are header params).
            let (uri, params) = match after_display.split_once(';') {
                Some((u, p)) => (u.trim(), parse_params(p)?),
                None => (after_display.trim(), Vec::new()),
            };
            if uri.is_empty() || uri.contains(char::is_whitespace) || !uri.contains(':') {
                return None;
            }
            let u = Uri::parse(uri);
            if u.is_sip() && u.has_headers {
                // Escaped headers need the <> form (RFC 3261 §20.10, RFC 4475 §3.1.2.13).
                return None;
            }
            Some(NameAddr {
                display,
                uri: uri.to_string(),
                params,
            })
        }
    }

    /// Value of a header parameter.
    pub fn param(&self, name: &str) -> Option<String> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone().unwrap_or_default())
    }
}

/// The parts of a SIP/SIPS/tel URI the proxy routes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri {
    /// Lower-case scheme.
    pub scheme: String,
    /// User part (may be empty).
    pub user: String,
    /// Host (IPv6 without brackets).
    pub host: String,
    /// Port if given.
    pub port: Option<u16>,
    /// URI parameters (lower-case names).
    pub params: Vec<(String, Option<String>)>,
    /// Whether `?headers` follow the host part.
    pub has_headers: bool,
}

impl Uri {
    /// Parses leniently (never fails; missing parts are empty).
    pub fn parse(s: &str) -> Uri {
        let s = s.trim().trim_start_matches('<').trim_end_matches('>');
        let (scheme, rest) = s.split_once(':').unwrap_or(("", s));
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "sip" && scheme != "sips" {
            return Uri {
                scheme,
                user: rest.split(';').next().unwrap_or("").to_string(),
                host: String::new(),
                port: None,
                params: Vec::new(),
                has_headers: false,
            };
        }
        let (user, hostpart) = match rest.rfind('@') {
            Some(at) => (&rest[..at], &rest[at + 1..]),
            None => ("", rest),
        };
        let (hostpart, has_headers) = match hostpart.split_once('?') {
            Some((h, _)) => (h, true),
            None => (hostpart, false),
        };
        let (hp, params) = match hostpart.split_once(';') {
            Some((h, p)) => (h, parse_params(p).unwrap_or_default()),
            None => (hostpart, Vec::new()),
        };
        let (host, port) = if let Some(v6) = hp.strip_prefix('[') {
            match v6.split_once(']') {
                Some((h, after)) => (h, after.strip_prefix(':').and_then(|p| p.parse().ok())),
                None => (v6, None),
            }
        } else {
            match hp.rsplit_once(':') {
                Some((h, p)) => (h, p.parse().ok()),
                None => (hp, None),
            }
        };
        Uri {
            scheme,
            user: user.to_string(),
            host: host.to_ascii_lowercase(),
            port,
            params,
            has_headers,
        }
    }

    /// `sip:` or `sips:`.
    pub fn is_sip(&self) -> bool {
        self.scheme == "sip" || self.scheme == "sips"
    }

    /// A URI parameter.
    pub fn param(&self, name: &str) -> Option<String> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone().unwrap_or_default())
    }

    /// The address-of-record form `scheme:user@host` (or `tel:number`) used as a key.
    pub fn aor(&self) -> String {
        if !self.is_sip() {
            return format!("{}:{}", self.scheme, self.user);
        }
        if self.user.is_empty() {
            format!("sip:{}", self.host)
        } else {
            // Strip user parameters like ";phone-context" only if no user-part semicolons
            // matter for identity: keep the user as written.
            format!("sip:{}@{}", self.user, self.host)
        }
    }
}

/// A parsed Via value (RFC 3261 §20.42), tolerant of LWS around `/`, `;` and `=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Transport token, upper-case (UDP, TCP, …).
    pub transport: String,
    /// sent-by host (IPv6 without brackets).
    pub host: String,
    /// sent-by port.
    pub port: Option<u16>,
    /// Parameters (lower-case names).
    pub params: Vec<(String, Option<String>)>,
}

impl Via {
    /// Parses one Via value; `None` if malformed.
    pub fn parse(v: &str) -> Option<Via> {
        let (proto, rest) = {
            // sent-protocol: name LWS? "/" LWS? version LWS? "/" LWS? transport
            let mut parts = v.splitn(3, '/');
            let name = parts.next()?.trim();
            let version = parts.next()?.trim();
            let rest = parts.next()?.trim_start();
            if !name.eq_ignore_ascii_case("SIP") || version != "2.0" {
                return None;
            }
            let tend = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
            (&rest[..tend], rest[tend..].trim_start())
        };
        if !is_token(proto) || rest.is_empty() {
            return None;
        }
        let (sent_by, params) = match rest.split_once(';') {
            Some((s, p)) => (s.trim(), parse_params(p)?),
            None => (rest.trim(), Vec::new()),
        };
        if sent_by.is_empty() || sent_by.contains(char::is_whitespace) {
            return None;
        }
        let (host, port) = if let Some(v6) = sent_by.strip_prefix('[') {
            let (h, after) = v6.split_once(']')?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p.parse().ok()?),
                None if after.is_empty() => None,
                None => return None,
            };
            (h.to_string(), port)
        } else {
            match sent_by.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p.parse().ok()?)),
                None => (sent_by.to_string(), None),
            }
        };
        if host.is_empty() {
            return None;
        }
        Some(Via {
            transport: proto.to_ascii_uppercase(),
            host,
            port,
            params,
        })
    }

    /// A Via parameter (`Some("")` for flags like `rport`).
    pub fn param(&self, name: &str) -> Option<String> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone().unwrap_or_default())
    }
}

/// For a request too broken to parse: a response built from whatever Via, From, To,
/// Call-ID and CSeq lines can be found (RFC 3261 §8.2.6 needs them); `None` without a Via
/// (then nobody can be answered and the message is dropped).
pub fn fallback_response(data: &[u8], code: u16, reason: &str) -> Option<Bytes> {
    let text = String::from_utf8_lossy(data);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    if head.starts_with("SIP/") {
        return None;
    }
    let mut out = format!("SIP/2.0 {code} {reason}\r\n");
    let mut has_via = false;
    for line in head.split('\n').skip(1) {
        let line = line.trim_end_matches('\r');
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let key = canonical(name.trim());
        if matches!(key.as_str(), "via" | "from" | "to" | "call-id" | "cseq") {
            has_via |= key == "via";
            out.push_str(&format!("{}: {}\r\n", display_name(&key), value.trim()));
        }
    }
    if !has_via {
        return None;
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    Some(Bytes::from(out))
}

/// A parameter of a credentials/challenge header (`Digest username="x", realm=…`,
/// RFC 3261 §25.1 / RFC 2617), unquoted.
pub fn auth_param(value: &str, name: &str) -> Option<String> {
    let rest = value.trim_start();
    let rest = rest.find(char::is_whitespace).map_or("", |i| &rest[i..]);
    for part in split_list(rest) {
        if let Some((n, v)) = part.split_once('=') {
            if n.trim().eq_ignore_ascii_case(name) {
                let v = v.trim();
                let v = v
                    .strip_prefix('"')
                    .and_then(|x| x.strip_suffix('"'))
                    .unwrap_or(v);
                return Some(v.to_string());
            }
        }
    }
    None
}

/// Removes the parameters named in `names` from a challenge (`WWW-Authenticate: Digest
/// …, ck="…", ik="…"`), keeping the others in order; returns the new value and the
/// removed (name, value) pairs.
pub fn strip_auth_params(value: &str, names: &[&str]) -> (String, Vec<(String, String)>) {
    let v = value.trim_start();
    let (scheme, rest) = match v.find(char::is_whitespace) {
        Some(i) => (&v[..i], &v[i..]),
        None => (v, ""),
    };
    let mut kept = Vec::new();
    let mut removed = Vec::new();
    for part in split_list(rest) {
        if part.is_empty() {
            continue;
        }
        let name = part.split_once('=').map_or(part.as_str(), |x| x.0).trim();
        if names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            let val = part.split_once('=').map_or("", |x| x.1).trim();
            let val = val
                .strip_prefix('"')
                .and_then(|x| x.strip_suffix('"'))
                .unwrap_or(val);
            removed.push((name.to_ascii_lowercase(), val.to_string()));
        } else {
            kept.push(part);
        }
    }
    (format!("{scheme} {}", kept.join(", ")), removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REG: &str = "REGISTER sip:ims.test SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1;rport\r\n\
Max-Forwards: 70\r\n\
From: <sip:alice@ims.test>;tag=1\r\n\
To: <sip:alice@ims.test>\r\n\
Call-ID: c1\r\n\
CSeq: 1 REGISTER\r\n\
X-Odd :  keep   me \r\n\
Contact: <sip:alice@127.0.0.1:5070>;expires=600\r\n\
l: 0\r\n\r\n";

    #[test]
    fn untouched_headers_are_forwarded_byte_for_byte() {
        let m = Message::parse(REG.as_bytes(), true).unwrap();
        assert_eq!(m.check_request(), Ok(()));
        let out = m.to_bytes();
        assert_eq!(out, REG.as_bytes());
        let mut m = m;
        m.push_front("Via", "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKx");
        let s = String::from_utf8(m.to_bytes().to_vec()).unwrap();
        assert!(s.contains("X-Odd :  keep   me \r\n"));
        assert!(s.starts_with("REGISTER sip:ims.test SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1"));
        assert_eq!(
            m.pop_first("via").unwrap(),
            "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKx"
        );
    }

    #[test]
    fn via_with_lws_everywhere() {
        let v =
            Via::parse("SIP  / 2.0  / TCP     spindle.example.com   ; branch  =   z9hG4bK9ikj8")
                .unwrap();
        assert_eq!(v.transport, "TCP");
        assert_eq!(v.host, "spindle.example.com");
        assert_eq!(v.param("branch").unwrap(), "z9hG4bK9ikj8");
        assert!(Via::parse("SIP/2.0/UDP 192.0.2.15;;").is_none());
        let v = Via::parse("SIP/2.0/UDP [::1]:5060;rport").unwrap();
        assert_eq!((v.host.as_str(), v.port), ("::1", Some(5060)));
    }

    #[test]
    fn name_addr_forms() {
        let n = NameAddr::parse("\"A \\\"b\\\"\" <sip:a@b.c;lr>;tag=1").unwrap();
        assert_eq!(n.uri, "sip:a@b.c;lr");
        assert_eq!(n.param("tag").unwrap(), "1");
        let n = NameAddr::parse("sip:a@b.c ; tag = 9").unwrap();
        assert_eq!(n.uri, "sip:a@b.c");
        assert!(NameAddr::parse("Watson, Thomas <sip:t@x>").is_none());
        assert!(NameAddr::parse("\"W\" < sip:t@x >").is_none());
        assert!(NameAddr::parse("\"Mr. J. User <sip:j@x>").is_none());
        assert!(NameAddr::parse("sip:user@example.com?Route=%3Csip:x%3E").is_none());
        assert!(NameAddr::parse("<sip:user@example.com?Route=%3Csip:x%3E>").is_some());
    }

    #[test]
    fn request_line_checks() {
        let e = Message::parse(b"INVITE sip:a@b SIP/7.0\r\nl: 0\r\n\r\n", true).unwrap_err();
        assert_eq!(e.status, 505);
        let e = Message::parse(b"INVITE  sip:a@b SIP/2.0\r\nl: 0\r\n\r\n", true).unwrap_err();
        assert_eq!(e.status, 400);
        let e = Message::parse(b"INVITE <sip:a@b> SIP/2.0\r\nl: 0\r\n\r\n", true).unwrap_err();
        assert_eq!(e.status, 400);
    }
    #[test]
    fn ck_ik_are_stripped_others_kept() {
        let v = "Digest realm=\"ims.test\", nonce=\"abc=\", algorithm=AKAv1-MD5, ck=\"00112233445566778899aabbccddeeff\", ik=\"ffeeddccbbaa99887766554433221100\", qop=\"auth\"";
        let (out, removed) = strip_auth_params(v, &["ck", "ik"]);
        assert_eq!(
            out,
            "Digest realm=\"ims.test\", nonce=\"abc=\", algorithm=AKAv1-MD5, qop=\"auth\""
        );
        assert_eq!(removed.len(), 2);
        assert_eq!(removed[0].1, "00112233445566778899aabbccddeeff");
        assert_eq!(auth_param(v, "nonce").unwrap(), "abc=");
        assert_eq!(
            auth_param("Digest username=\"u@ims.test\",realm=\"r\"", "username").unwrap(),
            "u@ims.test"
        );
    }

    #[test]
    fn fallback_response_needs_a_via() {
        let r = fallback_response(
            b"INVITE sip:a SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\ni: x\r\n\r\n",
            400,
            "Bad Request",
        )
        .unwrap();
        assert!(r.starts_with(
            b"SIP/2.0 400 Bad Request\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCall-ID: x\r\n"
        ));
        assert!(fallback_response(b"INVITE sip:a SIP/2.0\r\ni: x\r\n\r\n", 400, "B").is_none());
    }
}
