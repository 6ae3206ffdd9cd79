//! Diameter base protocol (RFC 6733): codec, peer state machine, tokio transport.
