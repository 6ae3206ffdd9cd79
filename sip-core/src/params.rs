//! Generic parameter lists: `;name=value` after header values (RFC 3261 §25.1
//! `generic-param`) and the comma-separated `name=value` lists of HTTP Digest
//! (RFC 2617 §3.2). Values are kept raw (quotes included) so a list prints back as
//! received; [`Params::get_unquoted`] gives the unquoted text.
//!
//! Public so other header parsers (e.g. `Security-Client`, RFC 3329) reuse them.

use std::borrow::Cow;
use std::fmt;

use crate::error::HeaderError;
use crate::text::{is_lws, is_token_char, quoted_len, trim_lws_start, unquote};

/// One parameter: a token name and an optional raw value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Param<'a> {
    /// Name as received (compare with `eq_ignore_ascii_case`).
    pub name: Cow<'a, str>,
    /// Raw value (a quoted value keeps its quotes); `None` for a flag like `lr`.
    pub value: Option<Cow<'a, str>>,
}

impl<'a> Param<'a> {
    /// A parameter with a value (give quoted values with their quotes).
    pub fn new(name: impl Into<Cow<'a, str>>, value: Option<impl Into<Cow<'a, str>>>) -> Self {
        Param {
            name: name.into(),
            value: value.map(Into::into),
        }
    }

    /// Detaches from the buffer.
    pub fn into_owned(self) -> Param<'static> {
        Param {
            name: Cow::Owned(self.name.into_owned()),
            value: self.value.map(|v| Cow::Owned(v.into_owned())),
        }
    }
}

/// An ordered parameter list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params<'a>(pub Vec<Param<'a>>);

impl<'a> Params<'a> {
    /// An empty list.
    pub fn new() -> Self {
        Params(Vec::new())
    }

    /// Parses `*( SEMI generic-param )`: the input must be empty/LWS or start (after
    /// LWS) with `;`. Empty parameters (`;;`) are an error (RFC 4475 §3.1.2.1).
    pub fn parse_semi(input: &'a str) -> Result<Params<'a>, HeaderError> {
        let mut out = Params::new();
        let mut rest = trim_lws_start(input);
        while !rest.is_empty() {
            let Some(r) = rest.strip_prefix(';') else {
                return Err(HeaderError::new("parameter", "expected ';'"));
            };
            let (p, r) = parse_one(trim_lws_start(r), b';')?;
            out.0.push(p);
            rest = trim_lws_start(r);
        }
        Ok(out)
    }

    /// Parses `param *( SEMI param )` without a leading `;` (P-Charging-Vector,
    /// the parameters after a mechanism name in Security-Client, …).
    pub fn parse_semi_list(input: &'a str) -> Result<Params<'a>, HeaderError> {
        let rest = trim_lws_start(input);
        if rest.is_empty() {
            return Ok(Params::new());
        }
        let (p, r) = parse_one(rest, b';')?;
        let mut out = Params::parse_semi(r)?;
        out.0.insert(0, p);
        Ok(out)
    }

    /// Sets a parameter to a quoted string value (`name="value"`, escaping as needed).
    pub fn set_quoted(&mut self, name: impl Into<Cow<'a, str>>, value: &str) {
        self.set(name, Some(crate::text::quote(value)));
    }

    /// Writes the list `;`-separated without a leading `;` (`a=1;b`).
    pub fn fmt_semi_list(&self, f: &mut impl fmt::Write) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_char(';')?;
            }
            fmt_param(p, f)?;
        }
        Ok(())
    }

    /// Parses a comma-separated `name=value` list (Digest `auth-param`s, RFC 2617 §3.2.1).
    pub fn parse_comma(input: &'a str) -> Result<Params<'a>, HeaderError> {
        let mut out = Params::new();
        let mut rest = trim_lws_start(input);
        if rest.is_empty() {
            return Ok(out);
        }
        loop {
            let (p, r) = parse_one(rest, b',')?;
            out.0.push(p);
            let r = trim_lws_start(r);
            if r.is_empty() {
                return Ok(out);
            }
            let Some(r) = r.strip_prefix(',') else {
                return Err(HeaderError::new("parameter", "expected ','"));
            };
            rest = trim_lws_start(r);
        }
    }

    /// First parameter with this name (case-insensitive): `Some(None)` for a flag.
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.0
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .map(|p| p.value.as_deref())
    }

    /// Value with quotes removed and quoted-pairs resolved.
    pub fn get_unquoted(&self, name: &str) -> Option<Cow<'_, str>> {
        self.get(name).flatten().map(unquote)
    }

    /// True when the parameter is present (flag or valued).
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Sets (replaces the first, or appends) a parameter.
    pub fn set(&mut self, name: impl Into<Cow<'a, str>>, value: Option<impl Into<Cow<'a, str>>>) {
        let name = name.into();
        let value = value.map(Into::into);
        if let Some(p) = self.0.iter_mut().find(|p| p.name.eq_ignore_ascii_case(&name)) {
            p.value = value;
        } else {
            self.0.push(Param { name, value });
        }
    }

    /// Removes every parameter with this name; returns whether any was removed.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.0.len();
        self.0.retain(|p| !p.name.eq_ignore_ascii_case(name));
        before != self.0.len()
    }

    /// Iterates in order.
    pub fn iter(&self) -> impl Iterator<Item = &Param<'a>> {
        self.0.iter()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Detaches from the buffer.
    pub fn into_owned(self) -> Params<'static> {
        Params(self.0.into_iter().map(Param::into_owned).collect())
    }

    /// Writes the list comma-separated (`a=1, b="x"`), as Digest does.
    pub fn fmt_comma(&self, f: &mut impl fmt::Write) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            fmt_param(p, f)?;
        }
        Ok(())
    }
}

fn fmt_param(p: &Param<'_>, f: &mut impl fmt::Write) -> fmt::Result {
    f.write_str(&p.name)?;
    if let Some(v) = &p.value {
        f.write_char('=')?;
        f.write_str(v)?;
    }
    Ok(())
}

/// Prints `;a=1;b` (each parameter preceded by `;`).
impl fmt::Display for Params<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.0 {
            f.write_str(";")?;
            fmt_param(p, f)?;
        }
        Ok(())
    }
}

/// Parses `token [ LWS "=" LWS (quoted-string / value-chars) ]` at the start of `s`.
fn parse_one(s: &str, sep: u8) -> Result<(Param<'_>, &str), HeaderError> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && is_token_char(b[i]) {
        i += 1;
    }
    if i == 0 {
        return Err(HeaderError::new("parameter", "empty or invalid name"));
    }
    let name = &s[..i];
    let after = trim_lws_start(&s[i..]);
    let Some(v) = after.strip_prefix('=') else {
        return Ok((
            Param {
                name: Cow::Borrowed(name),
                value: None,
            },
            after,
        ));
    };
    let v = trim_lws_start(v);
    if v.starts_with('"') {
        let n = quoted_len(v).ok_or(HeaderError::new("parameter", "unterminated quoted string"))?;
        return Ok((
            Param {
                name: Cow::Borrowed(name),
                value: Some(Cow::Borrowed(&v[..n])),
            },
            &v[n..],
        ));
    }
    let vb = v.as_bytes();
    let mut j = 0;
    while j < vb.len() && !is_lws(vb[j]) && vb[j] != sep && vb[j] != b';' && vb[j] != b',' {
        if matches!(vb[j], b'"' | b'<' | b'>') {
            return Err(HeaderError::new("parameter", "invalid character in value"));
        }
        j += 1;
    }
    if j == 0 {
        return Err(HeaderError::new("parameter", "empty value"));
    }
    Ok((
        Param {
            name: Cow::Borrowed(name),
            value: Some(Cow::Borrowed(&v[..j])),
        },
        &v[j..],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semi_params_with_lws() {
        let p = Params::parse_semi(" ;\r\n  tag = 98asjd8 ; lr;q=0.33;x=\"a;b\"").unwrap();
        assert_eq!(p.get("TAG"), Some(Some("98asjd8")));
        assert_eq!(p.get("lr"), Some(None));
        assert_eq!(p.get_unquoted("x").as_deref(), Some("a;b"));
        assert_eq!(p.to_string(), ";tag=98asjd8;lr;q=0.33;x=\"a;b\"");
        assert!(Params::parse_semi(";;").is_err());
        assert!(Params::parse_semi(";a;").is_err());
        assert!(Params::parse_semi("x").is_err());
        assert!(Params::parse_semi(";a=\"open").is_err());
    }

    #[test]
    fn semi_list() {
        let p = Params::parse_semi_list(
            "icid-value=\"AyretyU0dm+6O2IrT5tAFrbHLso=023551024\"; orig-ioi=home1.net",
        )
        .unwrap();
        assert_eq!(p.get("orig-ioi"), Some(Some("home1.net")));
        let mut s = String::new();
        p.fmt_semi_list(&mut s).unwrap();
        assert_eq!(
            s,
            "icid-value=\"AyretyU0dm+6O2IrT5tAFrbHLso=023551024\";orig-ioi=home1.net"
        );
        assert!(Params::parse_semi_list("a=1;;b").is_err());
    }

    #[test]
    fn comma_params() {
        let p =
            Params::parse_comma("username=\"a@b\", nonce=\"\",response=\"\", algorithm=AKAv1-MD5").unwrap();
        assert_eq!(p.get_unquoted("nonce").as_deref(), Some(""));
        assert_eq!(p.get("algorithm"), Some(Some("AKAv1-MD5")));
        let mut s = String::new();
        p.fmt_comma(&mut s).unwrap();
        assert_eq!(
            s,
            "username=\"a@b\", nonce=\"\", response=\"\", algorithm=AKAv1-MD5"
        );
        let mut p = p;
        assert!(p.remove("nonce"));
        p.set("qop", Some("auth"));
        assert_eq!(p.0.len(), 4);
    }
}
