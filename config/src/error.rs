//! Configuration errors: every problem found while loading one file, each naming
//! where it came from (file and line, or environment variable), the dotted key and
//! the reason.

use std::fmt;

/// One problem in a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file the value came from, or `environment variable IMS_…` for overrides,
    /// or `<string>` for [`from_toml_str`](crate::HssConfig::from_toml_str).
    pub source: String,
    /// 1-based line in `source`, when known.
    pub line: Option<usize>,
    /// Dotted key path, e.g. `ipsec.port_s` or `sip.listen[1]`; empty for TOML
    /// syntax errors that are not tied to a key.
    pub key: String,
    /// What is wrong, in words an operator can act on.
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// Every problem found in one configuration (never empty when returned as an error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// The individual problems.
    pub fn iter(&self) -> impl Iterator<Item = &ConfigError> {
        self.0.iter()
    }

    /// Number of problems.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there is no problem (never the case for a returned error).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The first problem about `key` (exact dotted path), for tests and tools.
    pub fn for_key(&self, key: &str) -> Option<&ConfigError> {
        self.0.iter().find(|e| e.key == key)
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Exit code used when the configuration is invalid (as `EX_USAGE`-style tools do, the
/// issue asks for 2).
pub const EXIT_CODE_BAD_CONFIG: i32 = 2;

/// For binaries: print every problem to stderr and exit with code 2.
///
/// ```no_run
/// let cfg = ims_config::PcscfConfig::load("pcscf.toml")
///     .unwrap_or_else(|e| ims_config::exit_on_error(e));
/// ```
pub fn exit_on_error(errors: ConfigErrors) -> ! {
    eprintln!(
        "invalid configuration ({} problem{}):",
        errors.len(),
        if errors.len() == 1 { "" } else { "s" }
    );
    for e in errors.iter() {
        eprintln!("  {e}");
    }
    std::process::exit(EXIT_CODE_BAD_CONFIG)
}
