//! Thin tokio TCP transport (to be filled).
