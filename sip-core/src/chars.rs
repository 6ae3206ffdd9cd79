//! Byte classes of RFC 3261 §25.1 as lookup tables (one load per byte instead of a
//! chain of comparisons in the hot parsing loops).

const fn table(extra: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric();
        c += 1;
    }
    let mut i = 0;
    while i < extra.len() {
        t[extra[i] as usize] = true;
        i += 1;
    }
    t
}

/// `token` characters.
pub(crate) static TOKEN: [bool; 256] = table(b"-.!%*_+`'~");
/// `user` characters: unreserved / escaped / user-unreserved.
pub(crate) static USER: [bool; 256] = table(b"-_.!~*'()%&=+$,;?/");
/// `paramchar`: param-unreserved / unreserved / escaped.
pub(crate) static PARAM: [bool; 256] = table(b"-_.!~*'()%[]/:&+$");
/// `hnv-unreserved` / unreserved / escaped (URI headers, including `=`, `&`, `?`).
pub(crate) static URI_HEADER: [bool; 256] = table(b"-_.!~*'()%[]/?:+$=&");
/// Host name characters (`_` tolerated).
pub(crate) static HOST: [bool; 256] = table(b"-._");
