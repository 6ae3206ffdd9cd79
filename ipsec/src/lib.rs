//! Sec-agree (RFC 3329, TS 33.203) headers, SA planning and XFRM programming.
