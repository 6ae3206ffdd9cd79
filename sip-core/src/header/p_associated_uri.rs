//! P-Associated-URI (RFC 7315 §4.1: the registered IMPU's implicitly registered set (200 OK to REGISTER).)

addr_list_header!(
    /// P-Associated-URI: a list of name-addrs (`<uri>;params`).
    PAssociatedUri,
    crate::header_name::HeaderName::PAssociatedUri
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::TypedHeader;

    #[test]
    fn parse_list() {
        let h = PAssociatedUri::parse(
            "<sip:p1.ims.test;lr>,\r\n \"Two\" <sip:+15551234@ims.test;user=phone>;x=1, <tel:+15551234>",
        )
        .unwrap();
        assert_eq!(h.0.len(), 3);
        assert!(h.0[0].uri.as_sip().unwrap().lr());
        assert_eq!(h.0[1].display_name().as_deref(), Some("Two"));
        assert_eq!(h.0[1].params.get("x"), Some(Some("1")));
        assert_eq!(h.0[2].uri.to_string(), "tel:+15551234");
        assert!(PAssociatedUri::parse("<sip:a;lr>,,<sip:b>").is_err());
        assert!(PAssociatedUri::parse("").is_err());
    }

    #[test]
    fn print_list() {
        let h = PAssociatedUri::parse("<sip:p1.ims.test;lr>,<sip:s.ims.test;lr>").unwrap();
        assert_eq!(
            h.to_line(),
            "P-Associated-URI: <sip:p1.ims.test;lr>, <sip:s.ims.test;lr>\r\n"
        );
    }
}
