//! Creating messages: responses to a received request (RFC 3261 §8.2.6, §16.7) and
//! new requests from a UAC (§8.1.1), plus branch/tag/Call-ID generation (§8.1.1.7,
//! §19.3).
//!
//! ```
//! use ims_sip_core::{Message, StatusCode, builder::ResponseBuilder};
//! let req = Message::parse(&b"OPTIONS sip:p.ims.test SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n\
//! From: <sip:a@ims.test>;tag=1\r\nTo: <sip:p.ims.test>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"[..]).unwrap();
//! let resp = ResponseBuilder::new(&req, StatusCode::OK).to_tag("t1").header("Allow", "OPTIONS").build_message().unwrap();
//! assert_eq!(resp.status(), Some(StatusCode::OK));
//! assert_eq!(resp.to_addr().unwrap().unwrap().tag(), Some("t1"));
//! ```

use std::fmt::Display;

use bytes::{BufMut, Bytes, BytesMut};
use rand::Rng;

use crate::error::ParseError;
use crate::header_name::HeaderName;
use crate::message::Message;
use crate::method::Method;
use crate::nameaddr::NameAddr;
use crate::status::StatusCode;

/// A response to a received request: Via (all lines), From, To, Call-ID and CSeq are
/// copied byte for byte (To gains the tag if it had none), then the added headers,
/// then Content-Length and the body. (`Debug` shows names only: values may be secret.)
#[derive(Clone)]
pub struct ResponseBuilder<'m> {
    req: &'m Message,
    status: StatusCode,
    reason: Option<String>,
    to_tag: Option<String>,
    extra: Vec<(String, String)>,
    body: Option<(String, Bytes)>,
}

impl std::fmt::Debug for ResponseBuilder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBuilder")
            .field("status", &self.status)
            .field(
                "headers",
                &self.extra.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl<'m> ResponseBuilder<'m> {
    /// Starts a response with the canonical reason phrase.
    pub fn new(req: &'m Message, status: StatusCode) -> Self {
        ResponseBuilder {
            req,
            status,
            reason: None,
            to_tag: None,
            extra: Vec::new(),
            body: None,
        }
    }

    /// Sets the reason phrase.
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// Adds `;tag=` to To unless it already has one (RFC 3261 §8.2.6.2).
    pub fn to_tag(mut self, tag: impl Into<String>) -> Self {
        self.to_tag = Some(tag.into());
        self
    }

    /// Adds a header line.
    pub fn header(mut self, name: &str, value: impl Display) -> Self {
        self.extra.push((name.to_string(), value.to_string()));
        self
    }

    /// Copies every line with this name from the request (e.g. Record-Route, Path).
    pub fn copy_header(mut self, name: &str) -> Self {
        for v in self.req.header_values_str(name) {
            self.extra.push((name.to_string(), v.to_string()));
        }
        self
    }

    /// Sets the body and its Content-Type.
    pub fn body(mut self, content_type: &str, body: Bytes) -> Self {
        self.body = Some((content_type.to_string(), body));
        self
    }

    /// The response octets.
    pub fn build(self) -> Bytes {
        let mut out = BytesMut::with_capacity(512 + self.req.len() / 2);
        let reason = self.reason.as_deref().unwrap_or(self.status.canonical_reason());
        out.put_slice(format!("SIP/2.0 {} {}\r\n", self.status, reason).as_bytes());
        let copy = |n: HeaderName| {
            matches!(
                n,
                HeaderName::Via | HeaderName::From | HeaderName::CallId | HeaderName::CSeq
            )
        };
        for (i, h) in self.req.headers.iter().enumerate() {
            if copy(h.name) || (h.name == HeaderName::Timestamp && self.status == StatusCode::TRYING) {
                out.put_slice(self.req.line_bytes(i));
            } else if h.name == HeaderName::To {
                let value = self.req.str_at(h.value_span);
                let has_tag = NameAddr::parse(value).map(|a| a.tag().is_some()).unwrap_or(true);
                match &self.to_tag {
                    Some(tag) if !has_tag => {
                        out.put_slice(format!("To: {value};tag={tag}\r\n").as_bytes());
                    }
                    _ => out.put_slice(self.req.line_bytes(i)),
                }
            }
        }
        for (n, v) in &self.extra {
            put_header(&mut out, n, v);
        }
        let body = match &self.body {
            Some((ct, b)) => {
                put_header(&mut out, "Content-Type", ct);
                b.clone()
            }
            None => Bytes::new(),
        };
        put_header(&mut out, "Content-Length", &body.len().to_string());
        out.put_slice(b"\r\n");
        out.put_slice(&body);
        out.freeze()
    }

    /// The response, indexed.
    pub fn build_message(self) -> Result<Message, ParseError> {
        Message::index(self.build())
    }
}

fn put_header(out: &mut BytesMut, name: &str, value: &str) {
    out.put_slice(name.as_bytes());
    out.put_slice(b": ");
    out.put_slice(value.as_bytes());
    out.put_slice(b"\r\n");
}

/// A new request (UAC): headers in the order they are added, Content-Length last.
///
/// ```
/// use ims_sip_core::{Method, builder::{RequestBuilder, new_branch}};
/// let b = RequestBuilder::new(Method::Register, "sip:ims.test")
///     .via("UDP", "10.0.0.1:5060", &new_branch())
///     .max_forwards(70)
///     .from("<sip:alice@ims.test>", "abc")
///     .to("<sip:alice@ims.test>")
///     .call_id("c1")
///     .cseq(1)
///     .header("Contact", "<sip:alice@10.0.0.1:5060>")
///     .header("Expires", 600)
///     .build_message().unwrap();
/// assert_eq!(b.cseq().unwrap().unwrap().seq, 1);
/// ```
#[derive(Clone)]
pub struct RequestBuilder {
    method: Method,
    head: BytesMut,
    body: Option<(String, Bytes)>,
}

impl std::fmt::Debug for RequestBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestBuilder")
            .field("method", &self.method)
            .field("head_len", &self.head.len())
            .finish()
    }
}

impl RequestBuilder {
    /// Starts `METHOD uri SIP/2.0`.
    pub fn new(method: Method, uri: impl Display) -> Self {
        let mut head = BytesMut::with_capacity(768);
        head.put_slice(format!("{method} {uri} SIP/2.0\r\n").as_bytes());
        RequestBuilder {
            method,
            head,
            body: None,
        }
    }

    /// Adds any header line.
    pub fn header(mut self, name: &str, value: impl Display) -> Self {
        put_header(&mut self.head, name, &value.to_string());
        self
    }

    /// `Via: SIP/2.0/<transport> <sent_by>;branch=<branch>`.
    pub fn via(self, transport: &str, sent_by: &str, branch: &str) -> Self {
        self.header(
            "Via",
            format_args!("SIP/2.0/{transport} {sent_by};branch={branch}"),
        )
    }

    /// `Max-Forwards`.
    pub fn max_forwards(self, n: u32) -> Self {
        self.header("Max-Forwards", n)
    }

    /// `From: <addr>;tag=<tag>` (`addr` is a name-addr such as `<sip:a@b>`).
    pub fn from(self, addr: &str, tag: &str) -> Self {
        self.header("From", format_args!("{addr};tag={tag}"))
    }

    /// `To: <addr>`.
    pub fn to(self, addr: &str) -> Self {
        self.header("To", addr)
    }

    /// `Call-ID`.
    pub fn call_id(self, id: &str) -> Self {
        self.header("Call-ID", id)
    }

    /// `CSeq: <n> <method>`.
    pub fn cseq(self, n: u32) -> Self {
        let m = self.method.clone();
        self.header("CSeq", format_args!("{n} {m}"))
    }

    /// Sets the body and its Content-Type.
    pub fn body(mut self, content_type: &str, body: Bytes) -> Self {
        self.body = Some((content_type.to_string(), body));
        self
    }

    /// The request octets.
    pub fn build(self) -> Bytes {
        let mut out = self.head;
        let body = match self.body {
            Some((ct, b)) => {
                put_header(&mut out, "Content-Type", &ct);
                b
            }
            None => Bytes::new(),
        };
        put_header(&mut out, "Content-Length", &body.len().to_string());
        out.put_slice(b"\r\n");
        out.put_slice(&body);
        out.freeze()
    }

    /// The request, indexed.
    pub fn build_message(self) -> Result<Message, ParseError> {
        Message::index(self.build())
    }
}

const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// `n` random alphanumeric characters.
pub fn random_token(n: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| ALNUM[rng.gen_range(0..ALNUM.len())] as char)
        .collect()
}

/// A new RFC 3261 branch: `z9hG4bK` + 16 random characters.
pub fn new_branch() -> String {
    format!("{}{}", crate::header::via::MAGIC_COOKIE, random_token(16))
}

/// A new From/To tag (§19.3: at least 32 bits of randomness; here ~59).
pub fn new_tag() -> String {
    random_token(10)
}

/// A new Call-ID, `<random>@<host>` (or just random when `host` is empty).
pub fn new_call_id(host: &str) -> String {
    if host.is_empty() {
        random_token(24)
    } else {
        format!("{}@{host}", random_token(24))
    }
}
