//! Building a new message from a received one, as proxies do (RFC 3261 §16.6, §16.7):
//! every header line the element does not touch is copied byte for byte (name
//! spelling, compact form, folding and all), so unknown headers pass unchanged.
//!
//! ```
//! use ims_sip_core::Message;
//! let m = Message::parse(&b"REGISTER sip:ims.test SIP/2.0\r\nv: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n\
//! f: <sip:a@ims.test>;tag=1\r\nt: <sip:a@ims.test>\r\ni: x\r\nCSeq: 1 REGISTER\r\nMax-Forwards: 70\r\nl: 0\r\n\r\n"[..]).unwrap();
//! let mut e = m.edit();
//! e.prepend("Via", "SIP/2.0/UDP pcscf.ims.test;branch=z9hG4bKp");
//! e.decrement_max_forwards().unwrap();
//! e.prepend("Path", "<sip:term@pcscf.ims.test;lr>");
//! let out = e.finish_message().unwrap();
//! assert_eq!(out.vias().count(), 2);
//! assert_eq!(out.max_forwards(), Some(69));
//! ```

use std::fmt::Display;

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{EditError, ParseError};
use crate::header::{MaxForwards, TypedHeader};
use crate::header_name::HeaderName;
use crate::message::{Message, Wanted};
use crate::text::{is_lws, is_token_char, quoted_len, split_commas};

#[derive(Clone, Debug)]
enum Slot {
    Orig(usize),
    New {
        name: HeaderName,
        raw_name: String,
        value: String,
    },
}

/// A pending set of edits over a message; nothing is copied until [`Editor::finish`].
/// (`Debug` shows counts only: values may be secret.)
#[derive(Clone)]
pub struct Editor<'m> {
    msg: &'m Message,
    start_line: Option<String>,
    slots: Vec<Slot>,
    body: Option<Bytes>,
}

impl std::fmt::Debug for Editor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Editor")
            .field("message", self.msg)
            .field("header_lines", &self.slots.len())
            .field("new_start_line", &self.start_line.is_some())
            .field("new_body", &self.body.as_ref().map(|b| b.len()))
            .finish()
    }
}

impl<'m> Editor<'m> {
    pub(crate) fn new(msg: &'m Message) -> Self {
        Editor {
            msg,
            start_line: None,
            slots: (0..msg.headers.len()).map(Slot::Orig).collect(),
            body: None,
        }
    }

    fn slot_name<'s>(&'s self, s: &'s Slot) -> (HeaderName, &'s str) {
        match s {
            Slot::Orig(i) => {
                let h = &self.msg.headers[*i];
                (h.name, self.msg.str_at(h.name_span))
            }
            Slot::New { name, raw_name, .. } => (*name, raw_name.as_str()),
        }
    }

    fn slot_value<'s>(&'s self, s: &'s Slot) -> &'s str {
        match s {
            Slot::Orig(i) => self.msg.str_at(self.msg.headers[*i].value_span),
            Slot::New { value, .. } => value,
        }
    }

    fn matches(&self, s: &Slot, name: &Wanted<'_>) -> bool {
        let (known, raw) = self.slot_name(s);
        name.matches(known, raw)
    }

    fn position(&self, name: &str) -> Option<usize> {
        let w = Wanted::new(name);
        self.slots.iter().position(|s| self.matches(s, &w))
    }

    fn new_slot(name: &str, value: String) -> Slot {
        Slot::New {
            name: HeaderName::from_bytes(name.as_bytes()),
            raw_name: name.to_string(),
            value,
        }
    }

    /// Replaces the value of slot `i`, keeping the name as it was spelled.
    fn replace_value(&mut self, i: usize, value: String) {
        let (name, raw) = self.slot_name(&self.slots[i]);
        let raw_name = raw.to_string();
        self.slots[i] = Slot::New {
            name,
            raw_name,
            value,
        };
    }

    /// Current value of the first header with this name (after edits so far).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.position(name).map(|i| self.slot_value(&self.slots[i]))
    }

    /// Replaces the Request-URI (requests only).
    pub fn set_request_uri(&mut self, uri: &str) -> Result<(), EditError> {
        let m = self.msg.method().ok_or(EditError::WrongKind)?;
        self.start_line = Some(format!("{m} {uri} SIP/2.0"));
        Ok(())
    }

    /// Inserts a header line above all others (the way to add the topmost Via,
    /// Record-Route, Path or Route).
    pub fn prepend(&mut self, name: &str, value: impl Display) {
        self.slots.insert(0, Self::new_slot(name, value.to_string()));
    }

    /// Appends a header line after all others.
    pub fn append(&mut self, name: &str, value: impl Display) {
        self.slots.push(Self::new_slot(name, value.to_string()));
    }

    /// Inserts a header line just above the first line named `before` (or appends).
    pub fn insert_before(&mut self, before: &str, name: &str, value: impl Display) {
        let pos = self.position(before).unwrap_or(self.slots.len());
        self.slots.insert(pos, Self::new_slot(name, value.to_string()));
    }

    /// Sets a header: replaces the first line with this name in place, removes the
    /// others, appends if there was none.
    pub fn set(&mut self, name: &str, value: impl Display) {
        let value = value.to_string();
        let w = Wanted::new(name);
        match self.position(name) {
            Some(i) => {
                self.slots[i] = Self::new_slot(name, value);
                let mut j = i + 1;
                while j < self.slots.len() {
                    if self.matches(&self.slots[j], &w) {
                        self.slots.remove(j);
                    } else {
                        j += 1;
                    }
                }
            }
            None => self.append(name, value),
        }
    }

    /// Removes every line with this name; returns how many.
    pub fn remove(&mut self, name: &str) -> usize {
        let before = self.slots.len();
        let w = Wanted::new(name);
        let keep: Vec<bool> = self.slots.iter().map(|s| !self.matches(s, &w)).collect();
        let mut k = keep.iter();
        self.slots.retain(|_| *k.next().unwrap_or(&true));
        before - self.slots.len()
    }

    /// Removes the first comma-separated value of the first line with this name (the
    /// whole line if it held one value) and returns it.
    pub fn remove_first_value(&mut self, name: &str) -> Option<String> {
        let i = self.position(name)?;
        let value = self.slot_value(&self.slots[i]);
        let mut it = split_commas(value);
        let first = it.next()?.to_string();
        match it
            .remainder()
            .map(crate::text::trim_lws)
            .filter(|r| !r.is_empty())
        {
            Some(rest) => {
                let rest = rest.to_string();
                self.replace_value(i, rest);
            }
            None => {
                self.slots.remove(i);
            }
        }
        Some(first)
    }

    /// Replaces the first comma-separated value of the first line with this name (e.g.
    /// the top Via after setting `received`); the other values of that line are kept.
    /// Returns false when there is no such header.
    pub fn replace_first_value(&mut self, name: &str, value: impl Display) -> bool {
        let Some(i) = self.position(name) else {
            return false;
        };
        let current = self.slot_value(&self.slots[i]);
        let mut it = split_commas(current);
        it.next();
        let new = match it
            .remainder()
            .map(crate::text::trim_lws)
            .filter(|r| !r.is_empty())
        {
            Some(rest) => format!("{value}, {rest}"),
            None => value.to_string(),
        };
        self.replace_value(i, new);
        true
    }

    /// Stamps the top Via of a received request with the source address (RFC 3261
    /// §18.2.1 `received` when the sent-by host differs from the source IP; RFC 3581:
    /// with `rport` present, `rport=<port>` and `received` always). Returns whether the
    /// Via changed.
    pub fn stamp_via_received(&mut self, source: std::net::SocketAddr) -> Result<bool, EditError> {
        let Some(top) = self.get("Via").and_then(|v| split_commas(v).next()) else {
            return Ok(false);
        };
        let mut via = crate::header::Via::parse(top)?;
        let ip = source.ip();
        let rport = via.rport().is_some();
        let host_is_source = via.host.ip() == Some(ip);
        if host_is_source && !rport {
            return Ok(false);
        }
        via.params.set("received", Some(ip.to_string()));
        if rport {
            via.params.set("rport", Some(source.port().to_string()));
        }
        let text = via.to_string();
        self.replace_first_value("Via", text);
        Ok(true)
    }

    /// Removes the topmost Via value (a proxy forwarding a response, RFC 3261 §16.7 step 3).
    pub fn remove_top_via(&mut self) -> Option<String> {
        self.remove_first_value("Via")
    }

    /// Removes the topmost Route value (loose routing, RFC 3261 §16.4).
    pub fn pop_route(&mut self) -> Option<String> {
        self.remove_first_value("Route")
    }

    /// Decrements Max-Forwards (adds `Max-Forwards: 70` when absent, RFC 3261 §16.6 step 3);
    /// returns the new value. Fails with [`EditError::TooManyHops`] at 0.
    pub fn decrement_max_forwards(&mut self) -> Result<u32, EditError> {
        match self.position("Max-Forwards") {
            Some(i) => {
                let mf = MaxForwards::parse(self.slot_value(&self.slots[i]))?;
                if mf.0 == 0 {
                    return Err(EditError::TooManyHops);
                }
                self.replace_value(i, (mf.0 - 1).to_string());
                Ok(mf.0 - 1)
            }
            None => {
                self.append("Max-Forwards", 70);
                Ok(70)
            }
        }
    }

    /// Replaces the body; sets Content-Length, and Content-Type when given (removes
    /// Content-Type when the body is empty and no type is given).
    pub fn set_body(&mut self, content_type: Option<&str>, body: Bytes) {
        match content_type {
            Some(ct) => self.set("Content-Type", ct),
            None if body.is_empty() => {
                self.remove("Content-Type");
            }
            None => {}
        }
        self.set("Content-Length", body.len());
        self.body = Some(body);
    }

    /// Removes parameter `param` (`;param=…` or `, param=…` as in Digest) from every
    /// line named `header`; returns how many lines changed. E.g. the P-CSCF strips
    /// `ck`/`ik` from WWW-Authenticate (TS 24.229 §5.2.2.1).
    pub fn remove_param(&mut self, header: &str, param: &str) -> usize {
        let mut changed = 0;
        let w = Wanted::new(header);
        for i in 0..self.slots.len() {
            if !self.matches(&self.slots[i], &w) {
                continue;
            }
            if let Some(v) = remove_param_text(self.slot_value(&self.slots[i]), param) {
                self.replace_value(i, v);
                changed += 1;
            }
        }
        changed
    }

    /// Produces the new message octets.
    pub fn finish(self) -> Bytes {
        let m = self.msg;
        let body = self.body.clone().unwrap_or_else(|| m.body_bytes());
        let mut out = BytesMut::with_capacity(m.raw.len() + 256 + body.len());
        match &self.start_line {
            Some(l) => {
                out.put_slice(l.as_bytes());
                out.put_slice(b"\r\n");
            }
            None => out.put_slice(&m.raw[..m.start_line_end as usize]),
        }
        for s in &self.slots {
            match s {
                Slot::Orig(i) => out.put_slice(m.line_bytes(*i)),
                Slot::New { raw_name, value, .. } => {
                    out.put_slice(raw_name.as_bytes());
                    out.put_slice(b": ");
                    out.put_slice(value.as_bytes());
                    out.put_slice(b"\r\n");
                }
            }
        }
        out.put_slice(&m.raw[m.head_end as usize..m.body_start as usize]);
        out.put_slice(&body);
        out.freeze()
    }

    /// Produces and indexes the new message (no semantic validation).
    pub fn finish_message(self) -> Result<Message, ParseError> {
        Message::index(self.finish())
    }
}

/// Removes `param` from a header value; None when it was not there.
fn remove_param_text(v: &str, param: &str) -> Option<String> {
    let b = v.as_bytes();
    // Segment boundaries at top-level ',' or ';' (outside quotes and <>).
    let mut seps = Vec::new();
    let mut i = 0;
    let mut angle = false;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += quoted_len(&v[i..]).unwrap_or(b.len() - i);
                continue;
            }
            b'<' => angle = true,
            b'>' => angle = false,
            b',' | b';' if !angle => seps.push(i),
            _ => {}
        }
        i += 1;
    }
    let is_param = |seg: &str| -> bool {
        let seg = seg.trim_start_matches(|c: char| c.is_ascii_whitespace());
        seg.len() >= param.len()
            && seg.is_char_boundary(param.len())
            && seg[..param.len()].eq_ignore_ascii_case(param)
            && seg[param.len()..]
                .bytes()
                .next()
                .is_none_or(|c| c == b'=' || is_lws(c))
    };
    let mut starts = vec![0];
    starts.extend(seps.iter().map(|s| s + 1));
    for (k, &st) in starts.iter().enumerate() {
        let end = seps.get(k).copied().unwrap_or(b.len());
        let seg = &v[st..end];
        if k > 0 {
            if is_param(seg) {
                let sep = seps[k - 1];
                return Some(format!("{}{}", &v[..sep], &v[end..]));
            }
        } else {
            // First segment: `Digest ck=…` → look after the scheme token.
            let t = seg.bytes().take_while(|&c| is_token_char(c)).count();
            let after = &seg[t..];
            if after.bytes().next().is_some_and(is_lws) && is_param(after) {
                let ws = after.len() - after.trim_start().len();
                let cut_from = st + t + ws;
                let cut_to = seps.first().map(|s| s + 1).unwrap_or(b.len());
                let rest = v[cut_to..].trim_start();
                return Some(format!("{}{}", &v[..cut_from], rest));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_digest_params() {
        let v = r#"Digest realm="ims.test", nonce="abc=", algorithm=AKAv1-MD5, ck="00112233", ik="44556677", qop="auth""#;
        let v1 = remove_param_text(v, "ck").unwrap();
        let v2 = remove_param_text(&v1, "ik").unwrap();
        assert_eq!(
            v2,
            r#"Digest realm="ims.test", nonce="abc=", algorithm=AKAv1-MD5, qop="auth""#
        );
        assert_eq!(remove_param_text(v, "cnonce"), None);
        assert_eq!(
            remove_param_text(r#"Digest ck="1", realm="r""#, "ck").unwrap(),
            r#"Digest realm="r""#
        );
        assert_eq!(
            remove_param_text("<sip:a;lr>;ob;expires=5", "ob").unwrap(),
            "<sip:a;lr>;expires=5"
        );
        assert_eq!(remove_param_text("<sip:a;lr>;expires=5", "lr"), None);
        assert_eq!(remove_param_text(r#"Digest realm="a,ck=1""#, "ck"), None);
    }
}
