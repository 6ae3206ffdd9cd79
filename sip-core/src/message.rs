//! The message model (RFC 3261 §7): a zero-copy index over the received bytes.
//!
//! A [`Message`] holds the octets of exactly one message (`bytes::Bytes`, shared, never
//! copied), the parsed start line and, per header line, the byte ranges of its name,
//! value and whole line. Header values are handed out as `&str` slices of the buffer;
//! typed parsers (see [`crate::header`]) work on those slices. Printing an unmodified
//! message gives back the received octets; [`crate::edit`] builds new messages that copy
//! every header they do not touch byte for byte.

use std::ops::Range;

use bytes::Bytes;

use crate::error::{HeaderError, ParseError};
use crate::header::{CSeq, TypedHeader, Via};
use crate::header_name::HeaderName;
use crate::method::Method;
use crate::nameaddr::NameAddr;
use crate::status::StatusCode;
use crate::uri::Uri;

/// A byte range in the message buffer (u32 keeps the index small).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) struct Span {
    pub(crate) start: u32,
    pub(crate) end: u32,
}

impl Span {
    pub(crate) fn new(start: usize, end: usize) -> Span {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    pub(crate) fn range(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// The parsed start line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StartLine {
    Request { method: Method, uri: Span },
    Response { status: StatusCode, reason: Span },
}

/// One header line in the index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HeaderField {
    pub(crate) name: HeaderName,
    pub(crate) name_span: Span,
    pub(crate) value_span: Span,
    /// The whole line(s), folding and terminating CRLF included.
    pub(crate) line_span: Span,
}

/// A header line as seen through [`Message::headers`].
#[derive(Clone, Copy, Debug)]
pub struct HeaderRef<'m> {
    /// Known name (compact forms mapped) or [`HeaderName::Other`].
    pub name: HeaderName,
    /// The name exactly as received (`v`, `MaX-fOrWaRdS`, …).
    pub raw_name: &'m str,
    /// The value: leading/trailing white space removed; a folded value keeps its
    /// inner CRLF + white space (typed parsers treat it as LWS).
    pub value: &'m str,
    /// Position of this line among the message's header lines.
    pub index: usize,
}

impl HeaderRef<'_> {
    /// True when this header has the given name (case-insensitive; compact forms and
    /// long forms of known headers match each other).
    pub fn is(&self, name: &str) -> bool {
        Wanted::new(name).matches(self.name, self.raw_name)
    }
}

/// A header name to look for, classified once.
#[derive(Clone, Copy)]
pub(crate) struct Wanted<'n> {
    known: HeaderName,
    text: &'n str,
}

impl<'n> Wanted<'n> {
    pub(crate) fn new(text: &'n str) -> Self {
        Wanted {
            known: HeaderName::from_bytes(text.as_bytes()),
            text,
        }
    }

    pub(crate) fn matches(&self, known: HeaderName, raw: &str) -> bool {
        if self.known != HeaderName::Other {
            known == self.known
        } else {
            known == HeaderName::Other && raw.eq_ignore_ascii_case(self.text)
        }
    }
}

/// A parsed SIP request or response over a shared buffer.
///
/// `Debug` shows the start line, Call-ID, CSeq and sizes only: header values can carry
/// secrets (`ck`/`ik` in a 401 between S-CSCF and P-CSCF) and must not reach logs.
#[derive(Clone)]
pub struct Message {
    pub(crate) raw: Bytes,
    pub(crate) start: StartLine,
    /// End of the start line including its line terminator.
    pub(crate) start_line_end: u32,
    pub(crate) headers: Vec<HeaderField>,
    /// Offset of the empty line ending the header section.
    pub(crate) head_end: u32,
    /// Offset of the body.
    pub(crate) body_start: u32,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("start_line", &self.start_line())
            .field("call_id", &self.call_id())
            .field("cseq", &self.header(HeaderName::CSeq))
            .field("headers", &self.headers.len())
            .field("body_len", &self.body().len())
            .finish()
    }
}

impl Message {
    /// Parses one message received as a datagram (RFC 3261 §18.3): octets beyond
    /// Content-Length are discarded, a Content-Length larger than the datagram is an error,
    /// a missing Content-Length means "the rest of the datagram". Validates everything a
    /// proxy needs (see [`crate::validate`]). For a stream, call [`crate::framing::check`]
    /// first and pass exactly the message's octets.
    pub fn parse(buf: impl Into<Bytes>) -> Result<Message, ParseError> {
        let m = crate::parser::index(buf.into())?;
        match crate::validate::validate(&m) {
            Ok(()) => Ok(m),
            Err(e) => Err(e.with_message(m)),
        }
    }

    /// Indexes the message without the semantic checks of [`crate::validate`]
    /// (start line, header lines, Content-Length framing only).
    pub fn index(buf: impl Into<Bytes>) -> Result<Message, ParseError> {
        crate::parser::index(buf.into())
    }

    /// The message octets (exactly what was received, trailing datagram octets cut).
    pub fn as_bytes(&self) -> &Bytes {
        &self.raw
    }

    /// Total length in octets.
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// Never true for a parsed message (kept for clippy's `len_without_is_empty`).
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    pub(crate) fn str_at(&self, s: Span) -> &str {
        // The head was checked to be UTF-8 at parse time and spans end on ASCII
        // delimiters, so this never fails; "" is a safe fallback.
        std::str::from_utf8(&self.raw[s.range()]).unwrap_or("")
    }

    /// True for a request.
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    /// True for a response.
    pub fn is_response(&self) -> bool {
        !self.is_request()
    }

    /// The request method (None for responses).
    pub fn method(&self) -> Option<&Method> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// The Request-URI text (None for responses).
    pub fn request_uri_str(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(self.str_at(*uri)),
            StartLine::Response { .. } => None,
        }
    }

    /// The parsed Request-URI (None for responses).
    pub fn request_uri(&self) -> Option<Result<Uri<'_>, HeaderError>> {
        self.request_uri_str().map(Uri::parse)
    }

    /// The status code (None for requests).
    pub fn status(&self) -> Option<StatusCode> {
        match &self.start {
            StartLine::Response { status, .. } => Some(*status),
            StartLine::Request { .. } => None,
        }
    }

    /// The reason phrase (may be empty; None for requests).
    pub fn reason(&self) -> Option<&str> {
        match &self.start {
            StartLine::Response { reason, .. } => Some(self.str_at(*reason)),
            StartLine::Request { .. } => None,
        }
    }

    /// The start line without its line terminator.
    pub fn start_line(&self) -> &str {
        let end = self.start_line_end as usize;
        let text = std::str::from_utf8(&self.raw[..end]).unwrap_or("");
        text.trim_end_matches(['\r', '\n'])
    }

    /// All header lines in order.
    pub fn headers(&self) -> impl Iterator<Item = HeaderRef<'_>> + '_ {
        self.headers
            .iter()
            .enumerate()
            .map(|(index, h)| self.header_ref(index, h))
    }

    fn header_ref(&self, index: usize, h: &HeaderField) -> HeaderRef<'_> {
        HeaderRef {
            name: h.name,
            raw_name: self.str_at(h.name_span),
            value: self.str_at(h.value_span),
            index,
        }
    }

    /// Number of header lines.
    pub fn header_count(&self) -> usize {
        self.headers.len()
    }

    /// The value of the first header line with this known name.
    pub fn header(&self, name: HeaderName) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name == name)
            .map(|h| self.str_at(h.value_span))
    }

    /// The values of every header line with this known name, in order.
    pub fn header_values(&self, name: HeaderName) -> impl Iterator<Item = &str> + '_ {
        self.headers
            .iter()
            .filter(move |h| h.name == name)
            .map(|h| self.str_at(h.value_span))
    }

    /// The first header whose name matches `name` (any spelling, compact forms included,
    /// works for unknown headers too).
    pub fn header_str(&self, name: &str) -> Option<&str> {
        let w = Wanted::new(name);
        self.headers()
            .find(|h| w.matches(h.name, h.raw_name))
            .map(|h| h.value)
    }

    /// Every value of the headers whose name matches `name`, in order.
    pub fn header_values_str<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        let w = Wanted::new(name);
        self.headers()
            .filter(move |h| w.matches(h.name, h.raw_name))
            .map(|h| h.value)
    }

    /// Each comma-separated element of every header line with this name, in order
    /// (e.g. all Via values, all Route entries).
    pub fn header_elements(&self, name: HeaderName) -> impl Iterator<Item = &str> + '_ {
        self.header_values(name).flat_map(crate::text::split_commas)
    }

    /// The body octets.
    pub fn body(&self) -> &[u8] {
        &self.raw[self.body_start as usize..]
    }

    /// The body as a shared buffer slice (no copy).
    pub fn body_bytes(&self) -> Bytes {
        self.raw.slice(self.body_start as usize..)
    }

    /// Call-ID value.
    pub fn call_id(&self) -> Option<&str> {
        self.header(HeaderName::CallId)
    }

    /// Parsed CSeq.
    pub fn cseq(&self) -> Option<Result<CSeq<'_>, HeaderError>> {
        self.header(HeaderName::CSeq).map(CSeq::parse)
    }

    /// The topmost Via value.
    pub fn top_via(&self) -> Option<Result<Via<'_>, HeaderError>> {
        self.header_elements(HeaderName::Via).next().map(Via::parse)
    }

    /// Every Via value, top first.
    pub fn vias(&self) -> impl Iterator<Item = Result<Via<'_>, HeaderError>> + '_ {
        self.header_elements(HeaderName::Via).map(Via::parse)
    }

    /// Parsed From.
    pub fn from_addr(&self) -> Option<Result<NameAddr<'_>, HeaderError>> {
        self.header(HeaderName::From).map(NameAddr::parse)
    }

    /// Parsed To.
    pub fn to_addr(&self) -> Option<Result<NameAddr<'_>, HeaderError>> {
        self.header(HeaderName::To).map(NameAddr::parse)
    }

    /// Max-Forwards (values above 255 are clamped to 255; unparsable → None).
    pub fn max_forwards(&self) -> Option<u32> {
        self.header(HeaderName::MaxForwards)
            .and_then(|v| crate::header::MaxForwards::parse(v).ok())
            .map(|m| m.0)
    }

    /// Parses a header value with a typed parser: the first line with `H::NAME`.
    pub fn typed<'m, H: crate::header::TypedHeader<'m>>(&'m self) -> Option<Result<H, HeaderError>> {
        self.header(H::NAME).map(H::parse)
    }

    /// Parses every header line with `H::NAME` (e.g. all Route lines), in order.
    pub fn typed_all<'m, H: crate::header::TypedHeader<'m> + 'm>(
        &'m self,
    ) -> impl Iterator<Item = Result<H, HeaderError>> + 'm {
        self.header_values(H::NAME).map(H::parse)
    }

    /// Starts an edit: see [`crate::edit::Editor`].
    pub fn edit(&self) -> crate::edit::Editor<'_> {
        crate::edit::Editor::new(self)
    }

    pub(crate) fn line_bytes(&self, index: usize) -> &[u8] {
        &self.raw[self.headers[index].line_span.range()]
    }
}
