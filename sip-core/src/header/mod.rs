//! Typed headers the CSCFs act on, one file each (RFC 3261 §20 and the IMS extensions
//! of RFC 3325, 3327, 3455, 3608, 7315, 3329, 6665).
//!
//! Every type parses from a `&str` value slice of the message ([`TypedHeader::parse`])
//! and borrows from it (`Cow<'a, str>` fields, `into_owned()` detaches). `Display`
//! prints the value; [`TypedHeader::to_line`] prints `Name: value\r\n`.

use std::fmt;

use crate::error::HeaderError;
use crate::header_name::HeaderName;

mod cseq;
mod max_forwards;
pub(crate) mod via;

pub use cseq::CSeq;
pub use max_forwards::MaxForwards;
pub use via::Via;

/// A header with a typed value.
pub trait TypedHeader<'a>: Sized + fmt::Display {
    /// The header's name (the first header line with this name is parsed by
    /// [`crate::Message::typed`]).
    const NAME: HeaderName;

    /// Parses one header value (a raw slice of the message).
    fn parse(value: &'a str) -> Result<Self, HeaderError>;

    /// `Name: value\r\n`.
    fn to_line(&self) -> String {
        format!("{}: {}\r\n", Self::NAME.as_str(), self)
    }
}
