//! Owned Diameter message: decode from bytes, encode, request and answer builders
//! (RFC 6733 §3, §6.2), error answers (§7.2).

use bytes::{Bytes, BytesMut};

use super::avp::Avp;
use super::avp_set::AvpSet;
use super::error::{DecodeError, EncodeError};
use super::header::{CommandFlags, Header, HeaderBuffer, HEADER_LEN, VERSION};
use super::result_code::ResultCode;
use crate::dictionary as d;

const MAX_LEN: usize = 0x00ff_ffff;

/// A Diameter message: header fields and AVPs in wire order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Header fields.
    pub header: Header,
    /// AVPs in the order received or to send.
    pub avps: Vec<Avp>,
}

impl AvpSet for Message {
    fn avp_slice(&self) -> &[Avp] {
        &self.avps
    }
}

impl Message {
    /// Decodes exactly one message from `buf` (copied once; AVP data are slices of
    /// that copy). `buf` must hold the whole message and nothing else, as the
    /// [`super::check`] framer delivers it.
    pub fn decode(buf: &[u8]) -> Result<Message, DecodeError> {
        Self::decode_bytes(Bytes::copy_from_slice(buf))
    }

    /// Decodes exactly one message without copying.
    ///
    /// Checks, in order: a whole header is present (5015); Version is 1 (5011);
    /// Message Length equals the bytes given and is a multiple of 4 (5015); R and E
    /// are not both set (3008); every AVP length is within bounds (5014).
    pub fn decode_bytes(buf: Bytes) -> Result<Message, DecodeError> {
        let view = HeaderBuffer::new_checked(&buf)?;
        if view.version() != VERSION {
            return Err(DecodeError::UnsupportedVersion(view.version()));
        }
        let length = view.length();
        if length != buf.len() || length % 4 != 0 || length < HEADER_LEN {
            return Err(DecodeError::InvalidMessageLength {
                declared: Some(length),
                available: buf.len(),
            });
        }
        let flags = view.flags();
        if flags.is_request() && flags.is_error() {
            return Err(DecodeError::InvalidHdrBits { flags: flags.0 });
        }
        let header = view.to_header();
        let avps = Avp::decode_all(&buf.slice(HEADER_LEN..))?;
        Ok(Message { header, avps })
    }

    /// Bytes this message takes on the wire.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.avps.iter().map(Avp::padded_len).sum::<usize>()
    }

    /// Appends the encoded message to `out`.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        for a in &self.avps {
            a.check_len()?;
        }
        let len = self.encoded_len();
        if len > MAX_LEN {
            return Err(EncodeError::TooLong {
                what: "message",
                length: len,
            });
        }
        out.reserve(len);
        self.header.write(len, out);
        for a in &self.avps {
            a.write(out);
        }
        Ok(())
    }

    /// The encoded message as one buffer.
    pub fn to_bytes(&self) -> Result<Bytes, EncodeError> {
        let mut out = BytesMut::with_capacity(self.encoded_len());
        self.encode(&mut out)?;
        Ok(out.freeze())
    }

    /// A new request (R and P bits set); identifiers are 0 until the transport
    /// assigns them.
    pub fn request(command_code: u32, application_id: u32) -> Message {
        Message {
            header: Header {
                flags: CommandFlags(CommandFlags::REQUEST | CommandFlags::PROXIABLE),
                command_code,
                application_id,
                hop_by_hop: 0,
                end_to_end: 0,
            },
            avps: Vec::with_capacity(16),
        }
    }

    /// The skeleton answer to `req` (RFC 6733 §6.2): same Command Code,
    /// Application-ID, Hop-by-Hop and End-to-End identifiers and P bit, R cleared;
    /// Session-Id copied first; Proxy-Info AVPs copied in order (§6.2 item 4) —
    /// they are appended by [`Message::finish_answer`] so they end up last.
    pub fn answer_to(req: &Message) -> Message {
        let mut flags = CommandFlags(0);
        flags.set(CommandFlags::PROXIABLE, req.header.flags.is_proxiable());
        let mut avps = Vec::with_capacity(16);
        if let Some(sid) = req.find(&d::SESSION_ID) {
            avps.push(sid.clone());
        }
        Message {
            header: Header {
                flags,
                command_code: req.header.command_code,
                application_id: req.header.application_id,
                hop_by_hop: req.header.hop_by_hop,
                end_to_end: req.header.end_to_end,
            },
            avps,
        }
    }

    /// Appends the request's Proxy-Info AVPs to this answer (RFC 6733 §6.2).
    pub fn finish_answer(mut self, req: &Message) -> Message {
        self.avps.extend(req.find_all(&d::PROXY_INFO).cloned());
        self
    }

    /// An answer to `req` carrying only a Result-Code (and Failed-AVP if given),
    /// with the E bit set for protocol errors (3xxx, RFC 6733 §7.2).
    pub fn error_answer(
        req: &Message,
        result: ResultCode,
        origin_host: &str,
        origin_realm: &str,
        failed_avp: Option<&Avp>,
        error_message: Option<&str>,
    ) -> Message {
        let mut ans = Message::answer_to(req);
        ans.fill_error(result, origin_host, origin_realm, failed_avp, error_message);
        ans.finish_answer(req)
    }

    fn fill_error(
        &mut self,
        result: ResultCode,
        origin_host: &str,
        origin_realm: &str,
        failed_avp: Option<&Avp>,
        error_message: Option<&str>,
    ) {
        self.header
            .flags
            .set(CommandFlags::ERROR, result.is_protocol_error());
        self.push(Avp::utf8(&d::ORIGIN_HOST, origin_host));
        self.push(Avp::utf8(&d::ORIGIN_REALM, origin_realm));
        self.push(Avp::unsigned32(&d::RESULT_CODE, result.code()));
        if let Some(m) = error_message {
            self.push(Avp::utf8(&d::ERROR_MESSAGE, m));
        }
        if let Some(f) = failed_avp {
            self.push(Avp::grouped(&d::FAILED_AVP, std::slice::from_ref(f)));
        }
    }

    /// Adds an AVP (builder style).
    pub fn with(mut self, avp: Avp) -> Message {
        self.avps.push(avp);
        self
    }

    /// Adds an AVP.
    pub fn push(&mut self, avp: Avp) -> &mut Message {
        self.avps.push(avp);
        self
    }

    /// R bit.
    pub fn is_request(&self) -> bool {
        self.header.flags.is_request()
    }

    /// Session-Id value, if present and UTF-8.
    pub fn session_id(&self) -> Option<&str> {
        self.find(&d::SESSION_ID).and_then(|a| a.as_utf8().ok())
    }

    /// Origin-Host value, if present and UTF-8.
    pub fn origin_host(&self) -> Option<&str> {
        self.find(&d::ORIGIN_HOST).and_then(|a| a.as_utf8().ok())
    }

    /// Result-Code, if present and well-formed.
    pub fn result_code(&self) -> Option<ResultCode> {
        self.find(&d::RESULT_CODE)
            .and_then(|a| a.as_u32().ok())
            .map(ResultCode::from)
    }
}

/// The answer to a request whose bytes `raw` failed to decode with `err`
/// (RFC 6733 §7.2 for 3xxx with the E bit, §7.1.5 for 5xxx), or `None` when `raw`
/// is not a request or has no readable header (nothing can be answered then).
///
/// The Session-Id is salvaged when the first AVP is a readable Session-Id.
pub fn error_answer_for_raw(
    raw: &[u8],
    err: &DecodeError,
    origin_host: &str,
    origin_realm: &str,
) -> Option<Message> {
    let view = HeaderBuffer::new_checked(raw).ok()?;
    let flags = view.flags();
    if !flags.is_request() {
        return None;
    }
    let mut ans_flags = CommandFlags(0);
    ans_flags.set(CommandFlags::PROXIABLE, flags.is_proxiable());
    let mut ans = Message {
        header: Header {
            flags: ans_flags,
            command_code: view.command_code(),
            application_id: view.application_id(),
            hop_by_hop: view.hop_by_hop(),
            end_to_end: view.end_to_end(),
        },
        avps: Vec::with_capacity(6),
    };
    let body = &raw[HEADER_LEN.min(raw.len())..];
    if let Ok((first, _)) = Avp::decode(&Bytes::copy_from_slice(body)) {
        if d::SESSION_ID.matches(&first) && first.as_utf8().is_ok() {
            ans.avps.push(first);
        }
    }
    ans.fill_error(
        err.result_code(),
        origin_host,
        origin_realm,
        err.failed_avp(),
        Some(&err.to_string()),
    );
    Some(ans)
}
