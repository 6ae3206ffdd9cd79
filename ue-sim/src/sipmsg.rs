//! The SIP requests a UE sends to register (TS 24.229 §5.1.1.2 initial registration,
//! §5.1.1.4 re-registration, §5.1.1.6 de-registration, §5.1.1.3 reg-event subscription,
//! RFC 3680) and the responses it sends to requests from the network (RFC 3261 §8.2.6).
//! Built with `ims-sip-core`'s [`RequestBuilder`] / [`ResponseBuilder`].

use bytes::Bytes;
use ims_sip_core::builder::{new_branch, RequestBuilder, ResponseBuilder};
use ims_sip_core::{Message, Method, StatusCode};

/// Transport named in Via and Contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// UDP.
    #[default]
    Udp,
    /// TCP.
    Tcp,
}

impl Transport {
    /// `UDP` / `TCP` as in Via.
    pub fn via_token(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }
}

impl std::str::FromStr for Transport {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "udp" => Ok(Transport::Udp),
            "tcp" => Ok(Transport::Tcp),
            _ => Err(format!("unknown transport `{s}` (udp, tcp)")),
        }
    }
}

/// Everything that varies between the REGISTERs of one UE.
#[derive(Debug, Clone)]
pub struct RegisterParams<'a> {
    /// Home domain (Request-URI `sip:<domain>`, realm).
    pub domain: &'a str,
    /// IMPU (From/To).
    pub impu: &'a str,
    /// Transport.
    pub transport: Transport,
    /// Via sent-by (`ip:port`).
    pub via_sent_by: &'a str,
    /// Contact address (`ip:port`).
    pub contact_hostport: &'a str,
    /// `+sip.instance` value (URN), if any.
    pub instance: Option<&'a str>,
    /// From tag (constant over the registration).
    pub from_tag: &'a str,
    /// Call-ID (constant over the registration).
    pub call_id: &'a str,
    /// CSeq.
    pub cseq: u32,
    /// Expires (0 de-registers).
    pub expires: u32,
    /// `Authorization` value.
    pub authorization: &'a str,
    /// `Security-Client` value (with sec-agree).
    pub security_client: Option<&'a str>,
    /// `Security-Verify` value (protected REGISTERs).
    pub security_verify: Option<&'a str>,
    /// Branch (None: a new one).
    pub branch: Option<&'a str>,
}

/// Formats an IPv6 address for `host:port` use.
pub fn hostport(addr: std::net::SocketAddr) -> String {
    addr.to_string()
}

/// Builds a REGISTER.
pub fn register(p: &RegisterParams<'_>) -> Bytes {
    let branch = p.branch.map(str::to_string).unwrap_or_else(new_branch);
    let impu = format!("<{}>", p.impu);
    let mut contact = format!("<sip:{}", p.contact_hostport);
    if p.transport == Transport::Tcp {
        contact.push_str(";transport=tcp");
    }
    contact.push('>');
    if let Some(i) = p.instance {
        contact.push_str(&format!(";+sip.instance=\"<{i}>\""));
    }
    contact.push_str(";+g.3gpp.icsi-ref=\"urn%3Aurn-7%3A3gpp-service.ims.icsi.mmtel\"");
    let mut b = RequestBuilder::new(Method::Register, format_args!("sip:{}", p.domain))
        .header(
            "Via",
            format_args!(
                "SIP/2.0/{} {};branch={branch};rport",
                p.transport.via_token(),
                p.via_sent_by
            ),
        )
        .max_forwards(70)
        .from(&impu, p.from_tag)
        .to(&impu)
        .call_id(p.call_id)
        .cseq(p.cseq)
        .header("Contact", contact)
        .header("Expires", p.expires)
        .header("Authorization", p.authorization);
    if let Some(sc) = p.security_client {
        b = b
            .header("Supported", "path,gruu,sec-agree")
            .header("Require", "sec-agree")
            .header("Proxy-Require", "sec-agree")
            .header("Security-Client", sc);
    } else {
        b = b.header("Supported", "path,gruu");
    }
    if let Some(sv) = p.security_verify {
        b = b.header("Security-Verify", sv);
    }
    b.header("User-Agent", "ims-ue-sim").build()
}

/// Parameters of a reg-event SUBSCRIBE (TS 24.229 §5.1.1.3, RFC 3680 §3).
#[derive(Debug, Clone)]
pub struct SubscribeParams<'a> {
    /// The IMPU subscribed to (Request-URI, From, To).
    pub impu: &'a str,
    /// Transport.
    pub transport: Transport,
    /// Via sent-by.
    pub via_sent_by: &'a str,
    /// Contact address (`ip:port`, the protected server port).
    pub contact_hostport: &'a str,
    /// `Route` values (the Service-Route of the 200 OK, preceded by the P-CSCF).
    pub routes: &'a [String],
    /// From tag.
    pub from_tag: &'a str,
    /// Call-ID.
    pub call_id: &'a str,
    /// CSeq.
    pub cseq: u32,
    /// Expires (0 ends the subscription).
    pub expires: u32,
    /// `Security-Verify`, as on every protected request (TS 24.229 §5.1.2A.1).
    pub security_verify: Option<&'a str>,
}

/// Builds a reg-event SUBSCRIBE.
pub fn subscribe(p: &SubscribeParams<'_>) -> Bytes {
    let impu = format!("<{}>", p.impu);
    let mut contact = format!("<sip:{}", p.contact_hostport);
    if p.transport == Transport::Tcp {
        contact.push_str(";transport=tcp");
    }
    contact.push('>');
    let mut b = RequestBuilder::new(Method::Subscribe, p.impu).header(
        "Via",
        format_args!(
            "SIP/2.0/{} {};branch={};rport",
            p.transport.via_token(),
            p.via_sent_by,
            new_branch()
        ),
    );
    for r in p.routes {
        b = b.header("Route", r);
    }
    b = b
        .max_forwards(70)
        .from(&impu, p.from_tag)
        .to(&impu)
        .call_id(p.call_id)
        .cseq(p.cseq)
        .header("Contact", contact)
        .header("Event", "reg")
        .header("Accept", "application/reginfo+xml")
        .header("Expires", p.expires)
        .header("P-Preferred-Identity", &impu);
    if let Some(sv) = p.security_verify {
        b = b
            .header("Require", "sec-agree")
            .header("Proxy-Require", "sec-agree")
            .header("Security-Verify", sv);
    }
    b.header("User-Agent", "ims-ue-sim").build()
}

/// The UE's answer to a request from the network: 200 OK to NOTIFY, MESSAGE, OPTIONS,
/// INFO; 405 to anything else. Adds a To tag where the request had none.
pub fn answer_request(req: &Message) -> Bytes {
    let status = match req.method() {
        Some(Method::Notify)
        | Some(Method::Message)
        | Some(Method::Options)
        | Some(Method::Info) => StatusCode::OK,
        _ => StatusCode::METHOD_NOT_ALLOWED,
    };
    let to_has_tag = req
        .header_str("To")
        .map(|t| t.to_ascii_lowercase().contains(";tag="))
        .unwrap_or(false);
    let mut b = ResponseBuilder::new(req, status);
    if !to_has_tag {
        b = b.to_tag(ims_sip_core::builder::new_tag());
    }
    if status == StatusCode::METHOD_NOT_ALLOWED {
        b = b.header("Allow", "NOTIFY, MESSAGE, OPTIONS, INFO");
    }
    b.build()
}

/// The values of every `name` header, split at top-level commas.
pub fn header_list(msg: &Message, name: &str) -> Vec<String> {
    msg.header_values_str(name)
        .flat_map(ims_sip_core::text::split_commas)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params<'a>() -> RegisterParams<'a> {
        RegisterParams {
            domain: "ims.mnc001.mcc001.3gppnetwork.org",
            impu: "sip:001010000000001@ims.mnc001.mcc001.3gppnetwork.org",
            transport: Transport::Udp,
            via_sent_by: "10.45.0.2:31800",
            contact_hostport: "10.45.0.2:31801",
            instance: Some("urn:gsma:imei:35000000-000001-0"),
            from_tag: "ft1",
            call_id: "cid1",
            cseq: 2,
            expires: 600000,
            authorization: "Digest username=\"x\"",
            security_client: Some(
                "ipsec-3gpp;alg=hmac-sha-1-96;spi-c=1;spi-s=2;port-c=31800;port-s=31801",
            ),
            security_verify: Some(
                "ipsec-3gpp;q=0.1;alg=hmac-sha-1-96;spi-c=3;spi-s=4;port-c=5100;port-s=6100",
            ),
            branch: Some("z9hG4bKtest"),
        }
    }

    #[test]
    fn protected_register_has_everything_sec_agree_needs() {
        let m = Message::parse(register(&params())).expect("our REGISTER parses");
        assert_eq!(m.method(), Some(&Method::Register));
        assert_eq!(
            m.request_uri_str(),
            Some("sip:ims.mnc001.mcc001.3gppnetwork.org")
        );
        assert_eq!(m.header_str("Require"), Some("sec-agree"));
        assert_eq!(m.header_str("Proxy-Require"), Some("sec-agree"));
        assert!(m
            .header_str("Security-Client")
            .unwrap()
            .contains("port-s=31801"));
        assert!(m
            .header_str("Security-Verify")
            .unwrap()
            .contains("port-s=6100"));
        assert!(m.header_str("Supported").unwrap().contains("sec-agree"));
        assert_eq!(m.header_str("Expires"), Some("600000"));
        assert_eq!(m.cseq().unwrap().unwrap().seq, 2);
        let via = m.header_str("Via").unwrap();
        assert_eq!(via, "SIP/2.0/UDP 10.45.0.2:31800;branch=z9hG4bKtest;rport");
        let contact = m.header_str("Contact").unwrap();
        assert!(
            contact.starts_with("<sip:10.45.0.2:31801>;+sip.instance="),
            "{contact}"
        );
    }

    #[test]
    fn plain_register_over_tcp_has_no_sec_agree() {
        let mut p = params();
        p.security_client = None;
        p.security_verify = None;
        p.transport = Transport::Tcp;
        let m = Message::parse(register(&p)).unwrap();
        assert!(m.header_str("Require").is_none());
        assert!(m.header_str("Security-Client").is_none());
        assert!(m.header_str("Via").unwrap().starts_with("SIP/2.0/TCP "));
        assert!(m.header_str("Contact").unwrap().contains(";transport=tcp>"));
    }

    #[test]
    fn subscribe_and_answers() {
        let routes = vec![
            "<sip:10.45.0.1:6100;lr>".to_string(),
            "<sip:orig@scscf;lr>".to_string(),
        ];
        let s = subscribe(&SubscribeParams {
            impu: "sip:a@ims.test",
            transport: Transport::Udp,
            via_sent_by: "10.45.0.2:31800",
            contact_hostport: "10.45.0.2:31801",
            routes: &routes,
            from_tag: "t",
            call_id: "c",
            cseq: 1,
            expires: 600000,
            security_verify: Some("ipsec-3gpp;alg=hmac-md5-96;spi-c=1;spi-s=2;port-c=1;port-s=2"),
        });
        let m = Message::parse(s).unwrap();
        assert_eq!(m.header_str("Event"), Some("reg"));
        assert_eq!(header_list(&m, "Route"), routes);
        let notify = Message::parse(Bytes::from_static(
            b"NOTIFY sip:10.45.0.2:31801 SIP/2.0\r\nVia: SIP/2.0/UDP 10.45.0.1:5100;branch=z9hG4bKn\r\nFrom: <sip:a@ims.test>;tag=s\r\nTo: <sip:a@ims.test>;tag=t\r\nCall-ID: c\r\nCSeq: 1 NOTIFY\r\nEvent: reg\r\nContent-Length: 0\r\n\r\n",
        ))
        .unwrap();
        let r = Message::parse(answer_request(&notify)).unwrap();
        assert_eq!(r.status(), Some(StatusCode::OK));
        assert_eq!(r.header_str("To"), Some("<sip:a@ims.test>;tag=t"));
        let invite = Message::parse(Bytes::from_static(
            b"INVITE sip:u@10.45.0.2:31801 SIP/2.0\r\nVia: SIP/2.0/UDP 10.45.0.1:5100;branch=z9hG4bKi\r\nFrom: <sip:b@ims.test>;tag=s\r\nTo: <sip:u@ims.test>\r\nCall-ID: c2\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
        ))
        .unwrap();
        let r = Message::parse(answer_request(&invite)).unwrap();
        assert_eq!(r.status().map(|s| s.as_u16()), Some(405));
        assert!(r.header_str("To").unwrap().contains(";tag="));
    }
}
