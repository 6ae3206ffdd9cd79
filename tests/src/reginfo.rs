//! Validation of reg-event bodies (`application/reginfo+xml`, RFC 3680 §5.4) against the
//! RFC's XML schema, with `xmllint` from libxml2 — a validator nobody here wrote.
//!
//! The schema is `tests/testdata/reginfo.xsd` (transcribed from RFC 3680 §5.4, with the
//! `xml` namespace import pointing at a local copy so validation never needs the network).
//! `scripts/install-test-deps.sh` installs `xmllint` (Debian package `libxml2-utils`).

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};

/// Path of the RFC 3680 reginfo schema in the repository.
pub fn schema_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/reginfo.xsd")
}

/// Validates `body` against the reginfo schema; the error carries xmllint's reasons and
/// the document.
pub fn validate(body: &str) -> Result<()> {
    let mut file = tempfile::NamedTempFile::new().context("temp file for reginfo")?;
    file.write_all(body.as_bytes())?;
    file.flush()?;
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--nonet")
        .arg("--schema")
        .arg(schema_path())
        .arg(file.path())
        .output()
        .context("running xmllint (Debian package libxml2-utils; scripts/install-test-deps.sh installs it)")?;
    if !out.status.success() {
        bail!(
            "reginfo does not validate against RFC 3680 §5.4 ({}):\n{}\n--- document ---\n{body}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"<?xml version="1.0"?>
<reginfo xmlns="urn:ietf:params:xml:ns:reginfo" version="3" state="full">
  <registration aor="sip:+15550000001@ims.example.org" id="r1" state="active">
    <contact id="c1" state="active" event="registered" expires="600">
      <uri>sip:ue@127.0.0.10:5060</uri>
    </contact>
  </registration>
</reginfo>"#;

    #[test]
    fn a_valid_document_validates() {
        validate(GOOD).expect("valid reginfo");
    }

    #[test]
    fn missing_version_is_refused() {
        let bad = GOOD.replace(r#" version="3""#, "");
        let err = validate(&bad).expect_err("no version attribute");
        assert!(format!("{err:#}").contains("version"), "{err:#}");
    }

    #[test]
    fn unknown_contact_event_is_refused() {
        let bad = GOOD.replace(r#"event="registered""#, r#"event="logged-in""#);
        assert!(validate(&bad).is_err());
    }

    #[test]
    fn contact_without_uri_is_refused() {
        let bad = GOOD.replace("<uri>sip:ue@127.0.0.10:5060</uri>", "");
        assert!(validate(&bad).is_err());
    }
}
