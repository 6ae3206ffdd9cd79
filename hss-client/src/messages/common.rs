//! Parts shared by all Cx messages: routing AVPs, outcome, decode errors.

use ims_diameter::codec::{Avp, AvpSet, DecodeError, Message, ResultCode};
use ims_diameter::dictionary as base;

use crate::dictionary::{self as cx, ExperimentalResultCode, CX_APPLICATION_ID, VENDOR_3GPP};

/// Auth-Session-State NO_STATE_MAINTAINED (RFC 6733 §8.11), used on Cx.
pub const NO_STATE_MAINTAINED: i32 = 1;

/// Why a Diameter message is not the expected Cx message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CxDecodeError {
    /// An AVP is missing, repeated, malformed or unsupported.
    #[error(transparent)]
    Avp(#[from] DecodeError),
    /// Another command code or direction than the type expects.
    #[error("expected command {expected} ({}), got {got} ({})",
        if *.expected_request { "request" } else { "answer" },
        if *.got_request { "request" } else { "answer" })]
    UnexpectedCommand {
        /// Command code the type decodes.
        expected: u32,
        /// Whether a request was expected.
        expected_request: bool,
        /// Command code received.
        got: u32,
        /// Whether a request was received.
        got_request: bool,
    },
    /// Application-ID other than Cx (16777216).
    #[error("application {0} is not Cx (16777216)")]
    UnexpectedApplication(u32),
}

impl CxDecodeError {
    /// Result-Code to answer a request with (RFC 6733 §7.1).
    pub fn result_code(&self) -> ResultCode {
        match self {
            CxDecodeError::Avp(e) => e.result_code(),
            CxDecodeError::UnexpectedCommand { .. } => ResultCode::CommandUnsupported,
            CxDecodeError::UnexpectedApplication(_) => ResultCode::ApplicationUnsupported,
        }
    }
    /// Failed-AVP to report, if any (RFC 6733 §7.5).
    pub fn failed_avp(&self) -> Option<&Avp> {
        match self {
            CxDecodeError::Avp(e) => e.failed_avp(),
            _ => None,
        }
    }
    /// The error answer for `request` (E bit for 3xxx), as the HSS should send it.
    pub fn to_answer(&self, request: &Message, origin_host: &str, origin_realm: &str) -> Message {
        let mut ans = Message::answer_to(request);
        ans.header.flags.set(
            ims_diameter::CommandFlags::ERROR,
            self.result_code().is_protocol_error(),
        );
        push_common_answer(&mut ans, origin_host, origin_realm);
        ans.push(Avp::unsigned32(
            &base::RESULT_CODE,
            self.result_code().code(),
        ));
        ans.push(Avp::utf8(&base::ERROR_MESSAGE, &self.to_string()));
        if let Some(f) = self.failed_avp() {
            ans.push(Avp::grouped(&base::FAILED_AVP, std::slice::from_ref(f)));
        }
        ans.finish_answer(request)
    }
}

/// Routing AVPs of a Cx request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestRouting {
    /// Session-Id (RFC 6733 §8.8); the client fills it when empty.
    pub session_id: String,
    /// Origin-Host; the client fills it when empty.
    pub origin_host: String,
    /// Origin-Realm; the client fills it when empty.
    pub origin_realm: String,
    /// Destination-Host.
    pub destination_host: Option<String>,
    /// Destination-Realm; the client fills it when empty.
    pub destination_realm: String,
}

/// Routing AVPs of a Cx answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AnswerRouting {
    /// Session-Id as received (copied from the request when encoding).
    pub session_id: String,
    /// Origin-Host of the answering node.
    pub origin_host: String,
    /// Origin-Realm of the answering node.
    pub origin_realm: String,
}

/// The outcome of a Cx answer (TS 29.229 §6.2, RFC 6733 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CxOutcome {
    /// Result-Code 2001 DIAMETER_SUCCESS.
    Success,
    /// Experimental-Result with a Cx code (vendor 10415), e.g. 2001
    /// DIAMETER_FIRST_REGISTRATION or 5001 DIAMETER_ERROR_USER_UNKNOWN.
    Experimental(ExperimentalResultCode),
    /// Any other Result-Code (e.g. 5012 UNABLE_TO_COMPLY, 3002, 2002).
    Base(ResultCode),
}

impl CxOutcome {
    /// Whether the request succeeded (2xxx in either AVP).
    pub fn is_success(self) -> bool {
        match self {
            CxOutcome::Success => true,
            CxOutcome::Experimental(e) => e.is_success(),
            CxOutcome::Base(rc) => rc.is_success(),
        }
    }

    /// Adds Result-Code or Experimental-Result; sets E for 3xxx base errors.
    pub(crate) fn write(self, msg: &mut Message) {
        match self {
            CxOutcome::Success => {
                msg.push(Avp::unsigned32(
                    &base::RESULT_CODE,
                    ResultCode::Success.code(),
                ));
            }
            CxOutcome::Base(rc) => {
                msg.header
                    .flags
                    .set(ims_diameter::CommandFlags::ERROR, rc.is_protocol_error());
                msg.push(Avp::unsigned32(&base::RESULT_CODE, rc.code()));
            }
            CxOutcome::Experimental(e) => {
                msg.push(Avp::grouped(
                    &base::EXPERIMENTAL_RESULT,
                    &[
                        Avp::unsigned32(&base::VENDOR_ID, VENDOR_3GPP),
                        Avp::unsigned32(&base::EXPERIMENTAL_RESULT_CODE, e.code()),
                    ],
                ));
            }
        }
    }

    /// Reads Result-Code, else Experimental-Result (5005 Result-Code if neither).
    pub(crate) fn read(msg: &Message) -> Result<CxOutcome, DecodeError> {
        if let Some(rc) = msg.get_u32(&base::RESULT_CODE)? {
            return Ok(match ResultCode::from(rc) {
                ResultCode::Success => CxOutcome::Success,
                other => CxOutcome::Base(other),
            });
        }
        if let Some(er) = msg.get_grouped(&base::EXPERIMENTAL_RESULT)? {
            let code = er.require_u32(&base::EXPERIMENTAL_RESULT_CODE)?;
            return Ok(CxOutcome::Experimental(ExperimentalResultCode::from(code)));
        }
        Err(base::RESULT_CODE.missing())
    }
}

impl From<ExperimentalResultCode> for CxOutcome {
    fn from(e: ExperimentalResultCode) -> Self {
        CxOutcome::Experimental(e)
    }
}

impl From<ResultCode> for CxOutcome {
    fn from(rc: ResultCode) -> Self {
        match rc {
            ResultCode::Success => CxOutcome::Success,
            rc => CxOutcome::Base(rc),
        }
    }
}

/// Vendor-Specific-Application-Id {Vendor-Id 10415, Auth-Application-Id 16777216}.
pub fn vendor_specific_application_id() -> Avp {
    Avp::grouped(
        &base::VENDOR_SPECIFIC_APPLICATION_ID,
        &[
            Avp::unsigned32(&base::VENDOR_ID, VENDOR_3GPP),
            Avp::unsigned32(&base::AUTH_APPLICATION_ID, CX_APPLICATION_ID),
        ],
    )
}

/// A request with the common leading AVPs of TS 29.229 §6.1.
pub(crate) fn new_request(command_code: u32, r: &RequestRouting) -> Message {
    let mut m = Message::request(command_code, CX_APPLICATION_ID);
    m.push(Avp::utf8(&base::SESSION_ID, &r.session_id));
    m.push(vendor_specific_application_id());
    m.push(Avp::integer32(
        &base::AUTH_SESSION_STATE,
        NO_STATE_MAINTAINED,
    ));
    m.push(Avp::utf8(&base::ORIGIN_HOST, &r.origin_host));
    m.push(Avp::utf8(&base::ORIGIN_REALM, &r.origin_realm));
    if let Some(h) = &r.destination_host {
        m.push(Avp::utf8(&base::DESTINATION_HOST, h));
    }
    m.push(Avp::utf8(&base::DESTINATION_REALM, &r.destination_realm));
    m
}

fn push_common_answer(m: &mut Message, origin_host: &str, origin_realm: &str) {
    m.push(vendor_specific_application_id());
    m.push(Avp::integer32(
        &base::AUTH_SESSION_STATE,
        NO_STATE_MAINTAINED,
    ));
    m.push(Avp::utf8(&base::ORIGIN_HOST, origin_host));
    m.push(Avp::utf8(&base::ORIGIN_REALM, origin_realm));
}

/// An answer to `request` with the common AVPs and the outcome.
pub(crate) fn new_answer(request: &Message, r: &AnswerRouting, outcome: CxOutcome) -> Message {
    let mut m = Message::answer_to(request);
    if m.session_id().is_none() && !r.session_id.is_empty() {
        m.push(Avp::utf8(&base::SESSION_ID, &r.session_id));
    }
    push_common_answer(&mut m, &r.origin_host, &r.origin_realm);
    outcome.write(&mut m);
    m
}

/// Checks command code, direction and application before decoding.
pub(crate) fn check_command(msg: &Message, code: u32, request: bool) -> Result<(), CxDecodeError> {
    if msg.header.command_code != code || msg.is_request() != request {
        return Err(CxDecodeError::UnexpectedCommand {
            expected: code,
            expected_request: request,
            got: msg.header.command_code,
            got_request: msg.is_request(),
        });
    }
    if msg.header.application_id != CX_APPLICATION_ID {
        return Err(CxDecodeError::UnexpectedApplication(
            msg.header.application_id,
        ));
    }
    Ok(())
}

/// Reads the routing AVPs of a request and rejects unknown mandatory AVPs.
pub(crate) fn read_request(msg: &Message, code: u32) -> Result<RequestRouting, CxDecodeError> {
    check_command(msg, code, true)?;
    msg.check_mandatory(&cx::is_known)?;
    Ok(RequestRouting {
        session_id: msg.require_utf8(&base::SESSION_ID)?,
        origin_host: msg.require_utf8(&base::ORIGIN_HOST)?,
        origin_realm: msg.require_utf8(&base::ORIGIN_REALM)?,
        destination_host: msg.get_utf8(&base::DESTINATION_HOST)?,
        destination_realm: msg.require_utf8(&base::DESTINATION_REALM)?,
    })
}

/// Reads the routing AVPs and outcome of an answer (leniently).
pub(crate) fn read_answer(
    msg: &Message,
    code: u32,
) -> Result<(AnswerRouting, CxOutcome), CxDecodeError> {
    check_command(msg, code, false)?;
    let routing = AnswerRouting {
        session_id: msg.get_utf8(&base::SESSION_ID)?.unwrap_or_default(),
        origin_host: msg.get_utf8(&base::ORIGIN_HOST)?.unwrap_or_default(),
        origin_realm: msg.get_utf8(&base::ORIGIN_REALM)?.unwrap_or_default(),
    };
    Ok((routing, CxOutcome::read(msg)?))
}

/// Optional UTF-8 OctetString-typed AVP (Visited-Network-Identifier, User-Data).
pub(crate) fn get_text(
    set: &(impl AvpSet + ?Sized),
    def: &ims_diameter::AvpDef,
) -> Result<Option<String>, DecodeError> {
    set.get_utf8(def)
}

/// Required Enumerated into a typed enum.
pub(crate) fn require_enum<T: From<i32>>(
    set: &(impl AvpSet + ?Sized),
    def: &ims_diameter::AvpDef,
) -> Result<T, DecodeError> {
    set.require_i32(def).map(T::from)
}

/// Optional Enumerated into a typed enum.
pub(crate) fn get_enum<T: From<i32>>(
    set: &(impl AvpSet + ?Sized),
    def: &ims_diameter::AvpDef,
) -> Result<Option<T>, DecodeError> {
    Ok(set.get_i32(def)?.map(T::from))
}
