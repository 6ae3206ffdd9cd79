//! Where a request goes (RFC 3261 §16.6 steps 6–7, §8.1.2; RFC 3263 reduced to
//! what an IMS core on fixed addresses needs): a SIP URI → [`Target`] (IP literal,
//! or an A/AAAA lookup of the host name; no NAPTR/SRV; port 5060 when absent;
//! `transport=tcp` or `sips:` select TCP), and whether a URI names one of this
//! node's sockets (RFC 3261 §16.4: a proxy removes Route entries naming itself).

use std::net::{IpAddr, SocketAddr};

use crate::flow::{Target, Transport};
use ims_sip_core::uri::{Host, SipUri};
use ims_sip_core::Uri;

/// Default SIP port (RFC 3261 §19.1.2).
pub const SIP_PORT: u16 = crate::via::DEFAULT_PORT;

/// The transport a URI asks for (`transport` parameter; UDP when absent).
pub fn uri_transport(uri: &SipUri<'_>) -> Transport {
    match uri.transport() {
        Some(t) if t.eq_ignore_ascii_case("tcp") => Transport::Tcp,
        _ if uri.secure => Transport::Tcp,
        _ => Transport::Udp,
    }
}

/// Resolves a URI (text) to a [`Target`]; `None` when it is not a SIP URI or the
/// host does not resolve.
pub async fn uri_target(uri: &str) -> Option<Target> {
    let parsed = Uri::parse(uri.trim()).ok()?;
    let sip = parsed.as_sip()?;
    let port = sip.port.unwrap_or(SIP_PORT);
    let transport = uri_transport(sip);
    let ip = match &sip.host {
        Host::V4(v4) => IpAddr::V4(*v4),
        Host::V6(v6) => IpAddr::V6(*v6),
        Host::Name(name) => {
            let mut addrs = tokio::net::lookup_host((name.as_ref(), port)).await.ok()?;
            addrs.next()?.ip()
        }
    };
    Some(Target::new(transport, SocketAddr::new(ip, port)))
}

/// Whether `uri` (a Route entry's URI) names this node: its host is one of the
/// local addresses or the advertised host, and its port (5060 when absent) is one
/// of the local ports.
pub fn is_local(uri: &SipUri<'_>, locals: &[(Transport, SocketAddr)], advertised: &str) -> bool {
    let port = uri.port.unwrap_or(SIP_PORT);
    let host_matches = |a: &SocketAddr| match &uri.host {
        Host::V4(v4) => a.ip() == IpAddr::V4(*v4),
        Host::V6(v6) => a.ip() == IpAddr::V6(*v6),
        Host::Name(name) => {
            let adv = advertised.trim_start_matches('[').trim_end_matches(']');
            !adv.is_empty() && name.eq_ignore_ascii_case(adv)
        }
    };
    let advertised_ip = advertised
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok();
    locals.iter().any(|(_, a)| {
        a.port() == port
            && (host_matches(a)
                || match (&uri.host, advertised_ip) {
                    (Host::V4(v4), Some(ip)) => ip == IpAddr::V4(*v4),
                    (Host::V6(v6), Some(ip)) => ip == IpAddr::V6(*v6),
                    _ => false,
                })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn resolves_literals_and_transport() {
        let t = uri_target("sip:127.0.0.1:5080;lr").await.unwrap();
        assert_eq!(t.transport, Transport::Udp);
        assert_eq!(t.remote, "127.0.0.1:5080".parse::<SocketAddr>().unwrap());
        let t = uri_target("sip:scscf@[::1];transport=TCP").await.unwrap();
        assert_eq!(t.transport, Transport::Tcp);
        assert_eq!(t.remote, "[::1]:5060".parse::<SocketAddr>().unwrap());
        assert!(uri_target("tel:+123").await.is_none());
        assert!(uri_target("not a uri").await.is_none());
    }

    #[test]
    fn local_by_address_or_advertised_name() {
        let locals = [(Transport::Udp, "127.0.0.2:5070".parse().unwrap())];
        let uri = |s: &'static str| SipUri::parse(s).unwrap();
        assert!(is_local(&uri("sip:127.0.0.2:5070;lr"), &locals, ""));
        assert!(!is_local(&uri("sip:127.0.0.2;lr"), &locals, ""));
        assert!(!is_local(&uri("sip:127.0.0.3:5070;lr"), &locals, ""));
        assert!(is_local(
            &uri("sip:icscf.ims.test:5070;lr"),
            &locals,
            "icscf.ims.test"
        ));
        assert!(!is_local(
            &uri("sip:other.test:5070;lr"),
            &locals,
            "icscf.ims.test"
        ));
    }
}
