//! Path (RFC 3327: the proxies between the UE and the registrar (the P-CSCF adds itself on REGISTER).)

addr_list_header!(
    /// Path: a list of name-addrs (`<uri>;params`).
    Path,
    crate::header_name::HeaderName::Path
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::TypedHeader;

    #[test]
    fn parse_list() {
        let h = Path::parse(
            "<sip:p1.ims.test;lr>,\r\n \"Two\" <sip:+15551234@ims.test;user=phone>;x=1, <tel:+15551234>",
        )
        .unwrap();
        assert_eq!(h.0.len(), 3);
        assert!(h.0[0].uri.as_sip().unwrap().lr());
        assert_eq!(h.0[1].display_name().as_deref(), Some("Two"));
        assert_eq!(h.0[1].params.get("x"), Some(Some("1")));
        assert_eq!(h.0[2].uri.to_string(), "tel:+15551234");
        assert!(Path::parse("<sip:a;lr>,,<sip:b>").is_err());
        assert!(Path::parse("").is_err());
    }

    #[test]
    fn print_list() {
        let h = Path::parse("<sip:p1.ims.test;lr>,<sip:s.ims.test;lr>").unwrap();
        assert_eq!(h.to_line(), "Path: <sip:p1.ims.test;lr>, <sip:s.ims.test;lr>\r\n");
    }
}
