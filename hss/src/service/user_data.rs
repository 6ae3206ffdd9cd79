//! User-Data: the IMSSubscription XML document of TS 29.228 Annex E (CxDataType.xsd),
//! built from the subscriber model for SAA and PPR.
//!
//! ```xml
//! <IMSSubscription>
//!   <PrivateID>…IMPI…</PrivateID>
//!   <ServiceProfile>
//!     <PublicIdentity><Identity>sip:…</Identity></PublicIdentity>   (the implicit set)
//!     <InitialFilterCriteria>…</InitialFilterCriteria>              (provisioned iFC)
//!   </ServiceProfile>
//! </IMSSubscription>
//! ```
//!
//! A provisioned `ifc_xml` that is a whole `<ServiceProfile>` is used as the service
//! profile verbatim; otherwise it is inserted after the `PublicIdentity` elements.

use crate::store::model::{Impu, Subscriber};

/// Escapes text for XML element content.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

fn public_identity(out: &mut String, i: &Impu) {
    out.push_str("<PublicIdentity>");
    if i.barred {
        out.push_str("<BarringIndication>1</BarringIndication>");
    }
    out.push_str("<Identity>");
    out.push_str(&xml_escape(&i.uri));
    out.push_str("</Identity>");
    // IdentityType 0 = PUBLIC_USER_IDENTITY (TS 29.228 Table E.x, tIdentityType).
    out.push_str("<Extension><IdentityType>0</IdentityType></Extension>");
    out.push_str("</PublicIdentity>");
}

/// The IMSSubscription for `s`, with the implicit registration set of `impu` (all IMPUs
/// when `impu` is `None` or not found).
pub fn ims_subscription(s: &Subscriber, impu: Option<&str>) -> String {
    let set: Vec<&Impu> = impu
        .and_then(|i| s.implicit_set(i))
        .unwrap_or_else(|| s.impus.iter().collect());
    let mut out = String::with_capacity(512);
    out.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    out.push_str("<IMSSubscription><PrivateID>");
    out.push_str(&xml_escape(&s.impi));
    out.push_str("</PrivateID>");
    let ifc = s.ifc_xml.as_deref().map(str::trim).unwrap_or("");
    if ifc.starts_with("<ServiceProfile") {
        out.push_str(ifc);
    } else {
        out.push_str("<ServiceProfile>");
        for i in set {
            public_identity(&mut out, i);
        }
        out.push_str(ifc);
        out.push_str("</ServiceProfile>");
    }
    out.push_str("</IMSSubscription>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(ifc: Option<&str>) -> Subscriber {
        Subscriber {
            imsi: "001010000000001".into(),
            impi: "001010000000001@ims.test".into(),
            impus: vec![
                Impu {
                    uri: "sip:alice@ims.test".into(),
                    irs: 0,
                    barred: false,
                },
                Impu {
                    uri: "tel:+1555&1".into(),
                    irs: 0,
                    barred: true,
                },
                Impu {
                    uri: "sip:work@ims.test".into(),
                    irs: 1,
                    barred: false,
                },
            ],
            aka: None,
            amf: [0x80, 0],
            sqn: 0,
            password: None,
            scscf_name: None,
            scscf_host: None,
            ifc_xml: ifc.map(str::to_string),
        }
    }

    #[test]
    fn implicit_set_and_ifc() {
        let ifc = "<InitialFilterCriteria><Priority>0</Priority></InitialFilterCriteria>";
        let x = ims_subscription(&sub(Some(ifc)), Some("sip:alice@ims.test"));
        assert!(x.starts_with("<?xml"));
        assert!(x.contains("<PrivateID>001010000000001@ims.test</PrivateID>"));
        assert!(x.contains("<Identity>sip:alice@ims.test</Identity>"));
        assert!(x.contains(
            "<PublicIdentity><BarringIndication>1</BarringIndication><Identity>tel:+1555&amp;1</Identity>"
        ));
        assert!(
            !x.contains("sip:work@ims.test"),
            "other implicit set left out"
        );
        assert!(x.contains(&format!("{ifc}</ServiceProfile></IMSSubscription>")));
    }

    #[test]
    fn whole_service_profile_used_verbatim() {
        let sp = "<ServiceProfile><PublicIdentity><Identity>sip:x@y</Identity></PublicIdentity></ServiceProfile>";
        let x = ims_subscription(&sub(Some(sp)), None);
        assert_eq!(x.matches("<ServiceProfile>").count(), 1);
        assert!(x.contains(sp));
    }
}
