//! Typed headers the CSCFs act on, one file each (RFC 3261 §20 and the IMS extensions
//! of RFC 3325, 3327, 3455, 3608, 7315, 6665, 2617/3310).
//!
//! Every type parses from a `&str` value slice of the message ([`TypedHeader::parse`])
//! and borrows from it (`Cow<'a, str>` fields; `into_owned()` detaches). `Display`
//! prints the value; [`TypedHeader::to_line`] prints `Name: value\r\n`. A header line
//! may hold several comma-separated values: list types (Route, Contact, …) parse one
//! line; [`crate::Message::typed_all`] walks every line.

use std::fmt;

use crate::error::HeaderError;
use crate::header_name::HeaderName;

/// Defines a header whose value is a comma-separated list of name-addrs.
macro_rules! addr_list_header {
    ($(#[$doc:meta])* $ty:ident, $name:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Default)]
        pub struct $ty<'a>(pub Vec<crate::nameaddr::NameAddr<'a>>);

        impl<'a> $ty<'a> {
            /// Detaches from the buffer.
            pub fn into_owned(self) -> $ty<'static> {
                $ty(self.0.into_iter().map(|a| a.into_owned()).collect())
            }
        }

        impl<'a> crate::header::TypedHeader<'a> for $ty<'a> {
            const NAME: crate::header_name::HeaderName = $name;

            fn parse(value: &'a str) -> Result<Self, crate::error::HeaderError> {
                crate::nameaddr::parse_list(value).map($ty)
            }
        }

        impl std::fmt::Display for $ty<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                for (i, a) in self.0.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{a}")?;
                }
                Ok(())
            }
        }
    };
}

mod allow;
mod auth;
mod call_id;
mod contact;
mod content_length;
mod content_type;
mod cseq;
mod event;
mod expires;
mod from;
mod max_forwards;
mod option_tags;
mod p_access_network_info;
mod p_asserted_identity;
mod p_associated_uri;
mod p_charging_vector;
mod p_preferred_identity;
mod p_visited_network_id;
mod path;
mod record_route;
mod retry_after;
mod route;
mod service_route;
mod subscription_state;
mod to;
pub(crate) mod via;
mod warning;

pub use allow::Allow;
pub use auth::{Authorization, Credentials, ProxyAuthenticate, ProxyAuthorization, WwwAuthenticate};
pub use call_id::CallId;
pub use contact::Contact;
pub use content_length::ContentLength;
pub use content_type::ContentType;
pub use cseq::CSeq;
pub use event::Event;
pub use expires::Expires;
pub use from::From;
pub use max_forwards::MaxForwards;
pub use option_tags::{OptionTags, ProxyRequire, Require, Supported, Unsupported};
pub use p_access_network_info::PAccessNetworkInfo;
pub use p_asserted_identity::PAssertedIdentity;
pub use p_associated_uri::PAssociatedUri;
pub use p_charging_vector::PChargingVector;
pub use p_preferred_identity::PPreferredIdentity;
pub use p_visited_network_id::PVisitedNetworkId;
pub use path::Path;
pub use record_route::RecordRoute;
pub use retry_after::RetryAfter;
pub use route::Route;
pub use service_route::ServiceRoute;
pub use subscription_state::SubscriptionState;
pub use to::To;
pub use via::{Via, MAGIC_COOKIE};
pub use warning::Warning;

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
