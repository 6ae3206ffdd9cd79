//! Errors: [`ParseError`] for whole messages (with the status a proxy should answer,
//! RFC 3261 §16.3, §8.2.2 and RFC 4475), [`HeaderError`] for one header value.

use std::fmt;

use crate::header_name::HeaderName;
use crate::message::Message;
use crate::status::StatusCode;

/// A typed header value could not be parsed. Static strings: no allocation.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {reason}")]
pub struct HeaderError {
    /// What was being parsed (`"Via"`, `"URI"`, `"parameter"` …).
    pub what: &'static str,
    /// Why it failed.
    pub reason: &'static str,
}

impl HeaderError {
    /// A new error.
    pub const fn new(what: &'static str, reason: &'static str) -> Self {
        HeaderError { what, reason }
    }
}

/// What was wrong with a message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// No octets (besides keep-alive CRLFs).
    Empty,
    /// The Request-Line does not follow `Method SP Request-URI SP SIP-Version CRLF`.
    BadRequestLine(&'static str),
    /// The Status-Line is malformed (status code outside 100–699, …).
    BadStatusLine(&'static str),
    /// A version other than SIP/2.0 (→ 505).
    VersionNotSupported,
    /// The Request-URI does not parse (or carries headers, RFC 3261 §19.1.1).
    BadRequestUri(&'static str),
    /// A header line without a colon or with a name that is not a token.
    BadHeaderLine,
    /// No empty line ends the header section.
    Truncated,
    /// The start line or a header is not UTF-8.
    InvalidUtf8,
    /// Content-Length negative, not a number, duplicated with conflicting values, or larger
    /// than the octets received.
    BadContentLength(&'static str),
    /// A mandatory header is missing.
    MissingHeader(HeaderName),
    /// A header that must appear once appears several times.
    DuplicateHeader(HeaderName),
    /// A header value does not parse.
    InvalidHeader(HeaderName, HeaderError),
    /// CSeq method differs from the Request-Line method (RFC 3261 §8.1.1.5).
    CSeqMethodMismatch,
}

/// A message that could not be accepted.
///
/// [`ParseError::response_status`] says what a proxy or UAS answers; when the header
/// section could be indexed, [`ParseError::message`] holds it so that the answer can be
/// built (Via, From, To, Call-ID, CSeq copied from it). Its start line may be a
/// placeholder when the Request-Line itself was bad.
#[derive(Clone, Debug)]
pub struct ParseError {
    /// What was wrong.
    pub kind: ParseErrorKind,
    /// True when the input was (or looked like) a request.
    pub is_request: bool,
    pub(crate) message: Option<Box<Message>>,
}

impl ParseError {
    pub(crate) fn new(kind: ParseErrorKind, is_request: bool) -> Self {
        ParseError {
            kind,
            is_request,
            message: None,
        }
    }

    pub(crate) fn with_message(mut self, m: Message) -> Self {
        self.message = Some(Box::new(m));
        self
    }

    /// The status to answer with: 505 for a bad version, 400 for everything else in a
    /// request, `None` for responses and empty input (responses are never answered).
    pub fn response_status(&self) -> Option<StatusCode> {
        if !self.is_request {
            return None;
        }
        match self.kind {
            ParseErrorKind::Empty => None,
            ParseErrorKind::VersionNotSupported => Some(StatusCode::VERSION_NOT_SUPPORTED),
            _ => Some(StatusCode::BAD_REQUEST),
        }
    }

    /// A reason phrase naming what was wrong, e.g. `Bad Request (Via: expected ';')`.
    pub fn reason_phrase(&self) -> String {
        match &self.kind {
            ParseErrorKind::VersionNotSupported => "Version Not Supported".to_string(),
            k => format!("Bad Request ({})", KindDisplay(k)),
        }
    }

    /// The message as far as it could be indexed (to build the error response).
    pub fn message(&self) -> Option<&Message> {
        self.message.as_deref()
    }
}

struct KindDisplay<'a>(&'a ParseErrorKind);

impl fmt::Display for KindDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            ParseErrorKind::Empty => f.write_str("empty message"),
            ParseErrorKind::BadRequestLine(r) => write!(f, "Request-Line: {r}"),
            ParseErrorKind::BadStatusLine(r) => write!(f, "Status-Line: {r}"),
            ParseErrorKind::VersionNotSupported => f.write_str("SIP version not supported"),
            ParseErrorKind::BadRequestUri(r) => write!(f, "Request-URI: {r}"),
            ParseErrorKind::BadHeaderLine => f.write_str("malformed header line"),
            ParseErrorKind::Truncated => f.write_str("header section not terminated"),
            ParseErrorKind::InvalidUtf8 => f.write_str("header section not UTF-8"),
            ParseErrorKind::BadContentLength(r) => write!(f, "Content-Length: {r}"),
            ParseErrorKind::MissingHeader(h) => write!(f, "missing {h}"),
            ParseErrorKind::DuplicateHeader(h) => write!(f, "multiple {h}"),
            ParseErrorKind::InvalidHeader(h, e) => write!(f, "{h}: {}", e.reason),
            ParseErrorKind::CSeqMethodMismatch => f.write_str("CSeq method mismatch"),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid SIP {}: {}",
            if self.is_request { "request" } else { "message" },
            KindDisplay(&self.kind)
        )
    }
}

impl std::error::Error for ParseError {}

/// An edit could not be applied (see [`crate::edit::Editor`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EditError {
    /// Max-Forwards is already 0 (the proxy answers 483, RFC 3261 §16.3 step 3).
    #[error("Max-Forwards is 0")]
    TooManyHops,
    /// A header to edit does not parse.
    #[error("header to edit does not parse: {0}")]
    Header(#[from] HeaderError),
    /// The edit applies to requests (or responses) only.
    #[error("edit not applicable to this kind of message")]
    WrongKind,
}
