//! Lexical helpers shared by the typed parsers (RFC 3261 §25.1): linear white space,
//! quoted strings, tokens and comma-separated header values that respect quotes and `<>`.
//!
//! Header values handed to typed parsers are raw slices of the received message; a
//! folded value still contains its CRLF + SP/HT, so every helper here treats CR and LF
//! as white space.

use std::borrow::Cow;

pub use crate::header_name::is_token_char;

/// SP, HT, CR or LF (folding is linear white space inside a header value).
pub fn is_lws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

/// Strips linear white space at both ends.
pub fn trim_lws(s: &str) -> &str {
    s.trim_matches([' ', '\t', '\r', '\n'])
}

/// Strips linear white space at the start.
pub fn trim_lws_start(s: &str) -> &str {
    s.trim_start_matches([' ', '\t', '\r', '\n'])
}

/// True when `s` is a non-empty RFC 3261 token.
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

/// Length of the quoted string at the start of `s` (including both quotes), honouring
/// `\` quoted-pairs; `None` when `s` does not start with `"` or the quote is unterminated.
pub fn quoted_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    if b.first() != Some(&b'"') {
        return None;
    }
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// Removes surrounding quotes and resolves quoted-pairs; other values are returned as is.
pub fn unquote(s: &str) -> Cow<'_, str> {
    let b = s.as_bytes();
    if b.len() >= 2 && b[0] == b'"' && b[b.len() - 1] == b'"' {
        let inner = &s[1..s.len() - 1];
        if !inner.contains('\\') {
            return Cow::Borrowed(inner);
        }
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            } else {
                out.push(c);
            }
        }
        Cow::Owned(out)
    } else {
        Cow::Borrowed(s)
    }
}

/// Wraps `s` in quotes, escaping `"` and `\`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Splits a header value at top-level commas (not inside quotes or `<>`), trimming LWS.
/// Empty elements are yielded as empty strings so callers can reject `a,,b`.
pub fn split_commas(s: &str) -> SplitCommas<'_> {
    SplitCommas { rest: Some(s) }
}

/// Iterator returned by [`split_commas`].
#[derive(Clone, Debug)]
pub struct SplitCommas<'a> {
    rest: Option<&'a str>,
}

impl<'a> SplitCommas<'a> {
    /// The unsplit text after the last element returned (None when exhausted).
    pub fn remainder(&self) -> Option<&'a str> {
        self.rest
    }
}

impl<'a> Iterator for SplitCommas<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let s = self.rest?;
        let b = s.as_bytes();
        let mut i = 0;
        let mut in_angle = false;
        while i < b.len() {
            match b[i] {
                b'"' => match quoted_len(&s[i..]) {
                    Some(n) => {
                        i += n;
                        continue;
                    }
                    None => break, // unterminated: the rest is one element
                },
                b'<' => in_angle = true,
                b'>' => in_angle = false,
                b',' if !in_angle => {
                    self.rest = Some(&s[i + 1..]);
                    return Some(trim_lws(&s[..i]));
                }
                _ => {}
            }
            i += 1;
        }
        self.rest = None;
        Some(trim_lws(s))
    }
}

/// Splits at the first byte `sep` outside quotes; returns (before, after-without-sep).
pub fn split_once_unquoted(s: &str, sep: u8) -> Option<(&str, &str)> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'"' {
            i += quoted_len(&s[i..])?;
            continue;
        }
        if b[i] == sep {
            return Some((&s[..i], &s[i + 1..]));
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commas_respect_quotes_and_angles() {
        let v: Vec<_> = split_commas(r#""a,b" <sip:x@y;p=1,2>;q=1 , <sip:z>,"c\",d" <sip:w>"#).collect();
        assert_eq!(
            v,
            vec![r#""a,b" <sip:x@y;p=1,2>;q=1"#, "<sip:z>", r#""c\",d" <sip:w>"#]
        );
        let v: Vec<_> = split_commas("a,,b").collect();
        assert_eq!(v, vec!["a", "", "b"]);
    }

    #[test]
    fn quoting() {
        assert_eq!(quoted_len(r#""a\"b" rest"#), Some(6));
        assert_eq!(quoted_len(r#""abc"#), None);
        assert_eq!(unquote(r#""a\"b""#), "a\"b");
        assert_eq!(unquote("plain"), "plain");
        assert_eq!(quote("a\"b"), r#""a\"b""#);
        assert_eq!(trim_lws("\r\n  x \t"), "x");
    }
}
