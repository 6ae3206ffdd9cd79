//! Export of SAs in the format of Wireshark's ESP SA table (the `esp_sa` UAT file in
//! a Wireshark profile; Preferences → Protocols → ESP → ESP SAs), so a lab can decrypt
//! Gm captures.
//!
//! Format, from Wireshark's `epan/dissectors/packet-ipsec.c` (`esp_uat_flds`,
//! `esp_proto_type_vals`, `esp_encryption_type_vals`, `esp_authentication_type_vals`):
//! one SA per line, eight quoted, comma-separated fields — protocol (`IPv4`/`IPv6`),
//! source IP, destination IP, SPI (`0x` hex), encryption algorithm (e.g.
//! `AES-CBC [RFC3602]`), encryption key (`0x` hex, empty for NULL), authentication
//! algorithm (e.g. `HMAC-SHA-1-96 [RFC2404]`), authentication key (`0x` hex):
//!
//! ```text
//! "IPv4","10.45.0.2","10.45.0.1","0x00001001","AES-CBC [RFC3602]","0x0011…","HMAC-SHA-1-96 [RFC2404]","0xffee…00000000"
//! ```
//!
//! The lines contain keys: writing them is a deliberate, off-by-default choice of the
//! operator (the P-CSCF's config switch); the file is created mode 0600.

use std::io::Write;
use std::path::Path;

use zeroize::Zeroizing;

use crate::plan::SaPlan;

/// The four `esp_sa` lines of a plan (no trailing newline).
pub fn esp_sa_lines(plan: &SaPlan) -> Vec<Zeroizing<String>> {
    let enc_key = if plan.keys.enc.key.is_empty() {
        Zeroizing::new(String::new())
    } else {
        plan.keys.enc.hex()
    };
    let auth_key = plan.keys.auth.hex();
    plan.sas
        .iter()
        .map(|sa| {
            let proto = if sa.src.is_ipv4() { "IPv4" } else { "IPv6" };
            Zeroizing::new(format!(
                "\"{proto}\",\"{}\",\"{}\",\"0x{:08x}\",\"{}\",\"{}\",\"{}\",\"{}\"",
                sa.src.ip(),
                sa.dst.ip(),
                sa.spi,
                plan.ealg.wireshark_name(),
                &*enc_key,
                plan.alg.wireshark_name(),
                &*auth_key,
            ))
        })
        .collect()
}

/// Appends a plan's lines to `path` (created with mode 0600 if absent).
pub fn append_esp_sa_file(path: &Path, plan: &SaPlan) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    let mut buf = Zeroizing::new(String::new());
    for l in esp_sa_lines(plan) {
        buf.push_str(&l);
        buf.push('\n');
    }
    f.write_all(buf.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alg::{AlgPair, EncryptionAlg, IntegrityAlg};
    use crate::keys::{Ck, Ik};
    use crate::plan::{plan_sa_set, PlanOptions, SecEndpoint, Side};

    fn plan(pair: AlgPair, v6: bool) -> SaPlan {
        let (ua, pa) = if v6 {
            ("fd00::2", "fd00::1")
        } else {
            ("10.45.0.2", "10.45.0.1")
        };
        let ue = SecEndpoint {
            addr: ua.parse().unwrap(),
            spi_c: 0xdead_beef,
            spi_s: 2,
            port_c: 50000,
            port_s: 50001,
        };
        let p = SecEndpoint {
            addr: pa.parse().unwrap(),
            spi_c: 0x1000,
            spi_s: 0x1001,
            port_c: 5100,
            port_s: 6100,
        };
        let ck = Ck::from_hex("00112233445566778899aabbccddeeff").unwrap();
        let ik = Ik::from_hex("ffeeddccbbaa99887766554433221100").unwrap();
        plan_sa_set(
            Side::Pcscf,
            &ue,
            &p,
            pair,
            &ck,
            &ik,
            &PlanOptions::default(),
        )
        .unwrap()
    }

    #[test]
    fn aes_sha1_lines() {
        let l = esp_sa_lines(&plan(
            AlgPair::new(IntegrityAlg::HmacSha1_96, EncryptionAlg::AesCbc),
            false,
        ));
        assert_eq!(l.len(), 4);
        assert_eq!(
            &*l[0],
            "\"IPv4\",\"10.45.0.2\",\"10.45.0.1\",\"0x00001001\",\"AES-CBC [RFC3602]\",\"0x00112233445566778899aabbccddeeff\",\"HMAC-SHA-1-96 [RFC2404]\",\"0xffeeddccbbaa9988776655443322110000000000\""
        );
        assert!(l[2].contains("\"0xdeadbeef\""));
    }

    #[test]
    fn null_md5_ipv6_lines() {
        let l = esp_sa_lines(&plan(
            AlgPair::new(IntegrityAlg::HmacMd5_96, EncryptionAlg::Null),
            true,
        ));
        assert_eq!(
            &*l[1],
            "\"IPv6\",\"fd00::1\",\"fd00::2\",\"0x00000002\",\"NULL\",\"\",\"HMAC-MD5-96 [RFC2403]\",\"0xffeeddccbbaa99887766554433221100\""
        );
    }

    #[test]
    fn des3_name_and_file_mode() {
        use std::os::unix::fs::PermissionsExt;
        let p = plan(
            AlgPair::new(IntegrityAlg::HmacMd5_96, EncryptionAlg::DesEde3Cbc),
            false,
        );
        assert!(esp_sa_lines(&p)[0].contains(
            "\"TripleDES-CBC [RFC2451]\",\"0x00112233445566778899aabbccddeeff0011223344556677\""
        ));
        let dir = std::env::temp_dir().join(format!("ims-ipsec-ws-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("esp_sa");
        let _ = std::fs::remove_file(&f);
        append_esp_sa_file(&f, &p).unwrap();
        append_esp_sa_file(&f, &p).unwrap();
        let text = std::fs::read_to_string(&f).unwrap();
        assert_eq!(text.lines().count(), 8);
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
