//! Request validation a proxy does before forwarding (RFC 3261 §16.3): Request-URI
//! scheme (416), Max-Forwards (483), Proxy-Require (420 with Unsupported).

use crate::sip::Message;

/// A refusal: status, reason and extra header fields for the response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Status code.
    pub code: u16,
    /// Reason phrase.
    pub reason: String,
    /// Extra (name, value) header fields.
    pub headers: Vec<(String, String)>,
}

/// Runs the RFC 3261 §16.3 checks; `supported` lists the option tags this proxy
/// understands in Proxy-Require.
pub fn proxy_checks(msg: &Message, supported: &[&str]) -> Result<(), Refusal> {
    let method = msg.method().unwrap_or("");
    let uri = msg.uri().unwrap_or("");
    let scheme = uri.split(':').next().unwrap_or("").to_ascii_lowercase();
    if !matches!(scheme.as_str(), "sip" | "sips" | "tel") {
        return Err(Refusal {
            code: 416,
            reason: "Unsupported URI Scheme".into(),
            headers: vec![],
        });
    }
    if let Some(mf) = msg.get("max-forwards") {
        if mf.trim().parse::<u32>().ok() == Some(0) && method != "ACK" {
            return Err(Refusal {
                code: 483,
                reason: "Too Many Hops".into(),
                headers: vec![],
            });
        }
    }
    let unsupported: Vec<String> = msg
        .list("proxy-require")
        .into_iter()
        .filter(|t| !supported.iter().any(|s| s.eq_ignore_ascii_case(t)))
        .collect();
    if !unsupported.is_empty() && method != "ACK" && method != "CANCEL" {
        return Err(Refusal {
            code: 420,
            reason: "Bad Extension".into(),
            headers: vec![("Unsupported".into(), unsupported.join(", "))],
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(extra: &str, uri: &str) -> Message {
        let s = format!(
            "OPTIONS {uri} SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n{extra}l: 0\r\n\r\n"
        );
        Message::parse(s.as_bytes(), true).unwrap()
    }

    #[test]
    fn codes() {
        assert_eq!(
            proxy_checks(&req("", "soap.beep://x"), &[])
                .unwrap_err()
                .code,
            416
        );
        assert_eq!(
            proxy_checks(&req("Max-Forwards: 0\r\n", "sip:x"), &[])
                .unwrap_err()
                .code,
            483
        );
        let r = proxy_checks(
            &req("Proxy-Require: noodles, sec-agree\r\n", "sip:x"),
            &["sec-agree"],
        )
        .unwrap_err();
        assert_eq!(r.code, 420);
        assert_eq!(r.headers[0].1, "noodles");
        assert!(proxy_checks(&req("Max-Forwards: 5\r\n", "tel:+1"), &[]).is_ok());
    }
}
