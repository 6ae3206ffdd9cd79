//! SIP message model, parser and printer, transaction state machines (RFC 3261).
