//! UDP and TCP SIP transports on tokio (RFC 3261 §18).
