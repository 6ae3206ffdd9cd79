//! Proxy routing helpers (RFC 3261 §16.6, §16.11, §18.2.2): the Via branch of forwarded
//! requests, where a URI or a Via points to, and the table that sends a response back on
//! the flow its request came from.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::net::{ConnId, Transport};
use crate::sip::{Message, Uri, Via};

/// RFC 3261 magic cookie.
pub const COOKIE: &str = "z9hG4bK";

/// Branch of the Via this node adds to a forwarded request: a function of the incoming
/// top Via branch (RFC 3261 §16.11), so retransmissions and the CANCEL of an INVITE get
/// the same branch. `tag` distinguishes nodes (and a second leg of one node).
pub fn branch(tag: &str, msg: &Message) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    tag.hash(&mut h);
    let top = msg
        .list("via")
        .first()
        .and_then(|v| Via::parse(v))
        .and_then(|v| v.param("branch"));
    match top {
        Some(b) if b.starts_with(COOKIE) && b.len() > COOKIE.len() => b.hash(&mut h),
        _ => {
            // RFC 2543 peer: hash what identifies the transaction.
            msg.get("call-id").hash(&mut h);
            msg.get("cseq")
                .and_then(|c| c.split_whitespace().next())
                .hash(&mut h);
            msg.uri().hash(&mut h);
            msg.get("from").hash(&mut h);
        }
    }
    format!("{COOKIE}{tag}{:016x}", h.finish())
}

/// Transport named by a URI's `transport` parameter (UDP when absent).
pub fn uri_transport(uri: &Uri) -> Transport {
    match uri.param("transport") {
        Some(t) if t.eq_ignore_ascii_case("tcp") => Transport::Tcp,
        _ => Transport::Udp,
    }
}

/// Resolves a SIP URI to a transport and socket address (IP literal or DNS A/AAAA; no
/// NAPTR/SRV: port 5060 when none is given).
pub async fn resolve(uri: &Uri) -> Option<(Transport, SocketAddr)> {
    let port = uri.port.unwrap_or(5060);
    let t = uri_transport(uri);
    if let Ok(ip) = uri.host.parse::<IpAddr>() {
        return Some((t, SocketAddr::new(ip, port)));
    }
    let mut addrs = tokio::net::lookup_host((uri.host.as_str(), port))
        .await
        .ok()?;
    addrs.next().map(|a| (t, a))
}

/// Where a response goes by its (next) Via: `received`/`rport` if present (RFC 3581).
pub fn via_target(v: &Via) -> Option<(Transport, SocketAddr)> {
    let host = v
        .param("received")
        .filter(|r| !r.is_empty())
        .unwrap_or(v.host.clone());
    let ip: IpAddr = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()?;
    let port = v
        .param("rport")
        .and_then(|p| p.parse().ok())
        .or(v.port)
        .unwrap_or(5060);
    let t = if v.transport == "TCP" {
        Transport::Tcp
    } else {
        Transport::Udp
    };
    Some((t, SocketAddr::new(ip, port)))
}

/// Adds `received`/`rport` to a request's top Via when the source differs (RFC 3261
/// §18.2.1, RFC 3581 §4).
pub fn stamp_received(msg: &mut Message, src: SocketAddr) {
    let Some(idx) = msg.headers.iter().position(|h| h.key == "via") else {
        return;
    };
    let values = crate::sip::split_list(&msg.headers[idx].value);
    let Some(first) = values.first() else { return };
    let Some(v) = Via::parse(first) else { return };
    let mut top = first.clone();
    let ip = src.ip().to_string();
    let mut changed = false;
    if v.host != ip && v.param("received").is_none() {
        top.push_str(&format!(";received={ip}"));
        changed = true;
    }
    if v.param("rport").is_some_and(|r| r.is_empty()) {
        // Replace the empty rport flag with the source port.
        let mut out = Vec::new();
        for part in top.split(';') {
            if part.trim().eq_ignore_ascii_case("rport") {
                out.push(format!("rport={}", src.port()));
            } else {
                out.push(part.to_string());
            }
        }
        top = out.join(";");
        changed = true;
    }
    if changed {
        let mut all = vec![top];
        all.extend(values.into_iter().skip(1));
        msg.edit(idx, all.join(", "));
    }
}

/// Where the request of a forwarded transaction came from.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Transport of the incoming request.
    pub transport: Transport,
    /// Its source address.
    pub peer: SocketAddr,
    /// Its TCP connection.
    pub conn: Option<ConnId>,
    /// Local address it arrived on (responses leave from there).
    pub local: SocketAddr,
}

/// Responses find their way back by our branch; entries live for Timer C-ish 3 minutes.
#[derive(Debug, Default)]
pub struct PendingTable {
    map: Mutex<HashMap<String, (Instant, Upstream)>>,
}

const PENDING_TTL: Duration = Duration::from_secs(180);

impl PendingTable {
    /// Remembers where the request with our `branch` came from.
    pub fn insert(&self, branch: String, up: Upstream) {
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() > 10_000 {
            let now = Instant::now();
            m.retain(|_, (t, _)| now.duration_since(*t) < PENDING_TTL);
        }
        m.insert(branch, (Instant::now(), up));
    }

    /// Where the response to `branch` goes.
    pub fn get(&self, branch: &str) -> Option<Upstream> {
        let m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        m.get(branch).map(|(_, u)| u.clone())
    }

    /// Drops expired entries.
    pub fn sweep(&self) {
        let now = Instant::now();
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        m.retain(|_, (t, _)| now.duration_since(*t) < PENDING_TTL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_is_stable_and_distinct() {
        let m = Message::parse(
            b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKabc\r\n\r\n",
            true,
        )
        .unwrap();
        assert_eq!(branch("I", &m), branch("I", &m));
        assert_ne!(branch("I", &m), branch("P", &m));
        assert!(branch("I", &m).starts_with("z9hG4bKI"));
    }

    #[test]
    fn via_target_uses_received_and_rport() {
        let v = Via::parse("SIP/2.0/UDP ue.test:5060;received=10.0.0.9;rport=4000").unwrap();
        assert_eq!(
            via_target(&v).unwrap(),
            (Transport::Udp, "10.0.0.9:4000".parse().unwrap())
        );
    }

    #[test]
    fn received_and_rport_are_stamped() {
        let mut m = Message::parse(
            b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP ue.test;branch=z9hG4bKabc;rport\r\nl: 0\r\n\r\n",
            true,
        )
        .unwrap();
        stamp_received(&mut m, "10.0.0.9:4000".parse().unwrap());
        let v = Via::parse(&m.list("via")[0]).unwrap();
        assert_eq!(v.param("received").unwrap(), "10.0.0.9");
        assert_eq!(v.param("rport").unwrap(), "4000");
    }
}
