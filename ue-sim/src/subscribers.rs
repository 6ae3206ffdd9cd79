//! Where the simulated subscribers come from: a CSV file, or a generated range of
//! IMSIs with K/OP(c) from a pattern (`{imsi}` replaced by the IMSI digits).
//!
//! CSV: `imsi,k,op,opc[,impu]` per line (hex keys; exactly one of `op`/`opc` set; a
//! header line starting with `imsi` and lines starting with `#` are skipped).

use crate::aka::SimKeys;
use crate::ue::Subscriber;

/// Bad subscriber input, with the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscriberError {
    /// A CSV line is malformed.
    #[error("line {line}: {reason}")]
    Csv {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The generated range is invalid.
    #[error("{0}")]
    Range(String),
}

/// The IMPI and IMPU of an IMSI in `domain` (TS 23.003 §13.3, §13.4B style: digits @ domain).
pub fn identities(imsi: &str, domain: &str) -> (String, String) {
    (format!("{imsi}@{domain}"), format!("sip:{imsi}@{domain}"))
}

/// Expands `{imsi}` in a key pattern and checks it is 32 hex digits.
pub fn expand_key(pattern: &str, imsi: &str) -> String {
    pattern.replace("{imsi}", imsi)
}

/// Which operator key a pattern is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// OP.
    Op,
    /// OPc.
    Opc,
}

/// `count` subscribers from `imsi_start` upwards.
pub fn generate(
    imsi_start: &str,
    count: usize,
    k_pattern: &str,
    op_pattern: &str,
    kind: OpKind,
    domain: &str,
) -> Result<Vec<Subscriber>, SubscriberError> {
    if imsi_start.is_empty()
        || imsi_start.len() > 15
        || !imsi_start.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(SubscriberError::Range(format!(
            "IMSI start `{imsi_start}` must be 1 to 15 digits"
        )));
    }
    let width = imsi_start.len();
    let start: u64 = imsi_start.parse().map_err(|_| {
        SubscriberError::Range(format!("IMSI start `{imsi_start}` is not a number"))
    })?;
    let mut out = Vec::with_capacity(count);
    for i in 0..count as u64 {
        let imsi = format!("{:0width$}", start + i, width = width);
        if imsi.len() > width {
            return Err(SubscriberError::Range(format!(
                "IMSI range overflows {width} digits"
            )));
        }
        let k = expand_key(k_pattern, &imsi);
        let op = expand_key(op_pattern, &imsi);
        let keys = match kind {
            OpKind::Op => SimKeys::from_hex_op(&k, &op),
            OpKind::Opc => SimKeys::from_hex_opc(&k, &op),
        }
        .map_err(|e| {
            SubscriberError::Range(format!("IMSI {imsi}: {e} (after expanding the pattern)"))
        })?;
        let (impi, impu) = identities(&imsi, domain);
        out.push(Subscriber {
            imsi,
            impi,
            impu,
            keys,
        });
    }
    Ok(out)
}

/// Parses the CSV text.
pub fn parse_csv(text: &str, domain: &str) -> Result<Vec<Subscriber>, SubscriberError> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.to_ascii_lowercase().starts_with("imsi")
        {
            continue;
        }
        let err = |reason: String| SubscriberError::Csv {
            line: n + 1,
            reason,
        };
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        if f.len() < 4 {
            return Err(err(format!(
                "want imsi,k,op,opc[,impu], got {} fields",
                f.len()
            )));
        }
        let imsi = f[0];
        if imsi.is_empty() || !imsi.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err(format!("IMSI `{imsi}` is not digits")));
        }
        let keys = match (f[2].is_empty(), f[3].is_empty()) {
            (false, true) => SimKeys::from_hex_op(f[1], f[2]),
            (true, false) => SimKeys::from_hex_opc(f[1], f[3]),
            _ => return Err(err("exactly one of op and opc must be set".into())),
        }
        .map_err(|e| err(e.to_string()))?;
        let (impi, mut impu) = identities(imsi, domain);
        if let Some(u) = f.get(4).filter(|u| !u.is_empty()) {
            impu = u.to_string();
        }
        out.push(Subscriber {
            imsi: imsi.to_string(),
            impi,
            impu,
            keys,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: &str = "465b5ce8b199b49faa5f0a2ee238a6bc";
    const OP: &str = "cdc202d5123e20f62b6d676ac72cb318";

    #[test]
    fn generated_range_keeps_width_and_expands_patterns() {
        let subs = generate(
            "001010000000098",
            3,
            "00000000000000000{imsi}",
            OP,
            OpKind::Op,
            "ims.test",
        )
        .unwrap();
        let imsis: Vec<_> = subs.iter().map(|s| s.imsi.as_str()).collect();
        assert_eq!(
            imsis,
            ["001010000000098", "001010000000099", "001010000000100"]
        );
        assert_eq!(subs[0].impi, "001010000000098@ims.test");
        assert_eq!(subs[2].impu, "sip:001010000000100@ims.test");
        assert!(
            generate("99", 2, K, OP, OpKind::Op, "d").is_err(),
            "overflow of 2 digits"
        );
        let e = generate("1", 1, "zz{imsi}", OP, OpKind::Op, "d").unwrap_err();
        assert!(e.to_string().contains("K must be 32 hex"), "{e}");
    }

    #[test]
    fn csv_with_header_comments_op_and_opc() {
        let text = format!(
            "imsi,k,op,opc\n# a comment\n001010000000001,{K},{OP},\n001010000000002,{K},,cd63cb71954a9f4e48a5994e37a02baf,sip:+15550002@ims.test\n"
        );
        let subs = parse_csv(&text, "ims.test").unwrap();
        assert_eq!(subs.len(), 2);
        assert_eq!(
            subs[0].keys.opc(),
            subs[1].keys.opc(),
            "OP and its OPc give the same OPc"
        );
        assert_eq!(subs[1].impu, "sip:+15550002@ims.test");
        let bad = parse_csv(&format!("001,{K},{OP},{OP}\n"), "d").unwrap_err();
        assert_eq!(
            bad,
            SubscriberError::Csv {
                line: 1,
                reason: "exactly one of op and opc must be set".into()
            }
        );
        assert!(matches!(
            parse_csv("x1,a,b,c", "d"),
            Err(SubscriberError::Csv { line: 1, .. })
        ));
    }
}
