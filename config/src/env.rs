//! Environment overrides, applied after the file.
//!
//! # Scheme
//!
//! `IMS_<ROLE>__<SECTION>__<KEY>=<value>`: the role (`HSS`, `PCSCF`, `ICSCF`, `SCSCF`),
//! then the dotted key path with `.` written as `__`, in any case (keys are matched in
//! lower case; single `_` stays part of the key name). Examples:
//!
//! ```text
//! IMS_PCSCF__SIP__LISTEN='["udp:10.0.0.1:5060", "tcp:10.0.0.1:5060"]'
//! IMS_PCSCF__IPSEC__ENABLED=true
//! IMS_HSS__DIAMETER__LISTEN=0.0.0.0:3868
//! IMS_SCSCF__REGISTRATION__MAX_EXPIRES=7200
//! IMS_ICSCF__DOMAIN=ims.example.org
//! ```
//!
//! A role's variables apply to that role's own file and to its section of the
//! all-in-one file; the all-in-one file's own top-level keys use the role name `CORE`
//! (`IMS_CORE__LOG__LEVEL=debug`, `IMS_CORE__DOMAIN=…`).
//!
//! The value is taken as a string when the key's default is a string; otherwise it is
//! read as a TOML value (`true`, `7200`, `["a", "b"]`, `{ first = 1, last = 2 }`), and
//! as a string if that fails. Values that do not fit are reported like file errors,
//! naming the variable instead of the file. Variables of other roles are ignored.
//!
//! The environment is an [`EnvSource`] so tests pass their own variables instead of
//! touching the process environment (as linkerd's `trait Strings` / `TestEnv`).

use std::collections::HashMap;

/// Prefix of every variable this crate reads.
pub const ENV_PREFIX: &str = "IMS_";

/// Where environment overrides come from.
pub trait EnvSource {
    /// All `(name, value)` pairs whose name starts with [`ENV_PREFIX`] (others may be
    /// returned; they are ignored).
    fn vars(&self) -> Vec<(String, String)>;
}

/// The real process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn vars(&self) -> Vec<(String, String)> {
        std::env::vars_os()
            .filter_map(|(k, v)| {
                let k = k.into_string().ok()?;
                if !k.starts_with(ENV_PREFIX) {
                    return None;
                }
                Some((k, v.to_string_lossy().into_owned()))
            })
            .collect()
    }
}

/// No overrides at all.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEnv;

impl EnvSource for NoEnv {
    fn vars(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}

impl EnvSource for HashMap<String, String> {
    fn vars(&self) -> Vec<(String, String)> {
        self.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

impl EnvSource for Vec<(String, String)> {
    fn vars(&self) -> Vec<(String, String)> {
        self.clone()
    }
}

impl EnvSource for [(&str, &str)] {
    fn vars(&self) -> Vec<(String, String)> {
        self.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }
}

impl<const N: usize> EnvSource for [(&str, &str); N] {
    fn vars(&self) -> Vec<(String, String)> {
        self.as_slice().vars()
    }
}

/// Split `IMS_PCSCF__SIP__LISTEN` into (`pcscf`, [`sip`, `listen`]).
pub(crate) fn split_var(name: &str) -> Option<(String, Vec<String>)> {
    let rest = name.strip_prefix(ENV_PREFIX)?;
    let mut parts = rest.split("__");
    let role = parts.next()?.to_ascii_lowercase();
    let path: Vec<String> = parts.map(|p| p.to_ascii_lowercase()).collect();
    if role.is_empty() || path.is_empty() || path.iter().any(|p| p.is_empty()) {
        return None;
    }
    Some((role, path))
}

/// Turn the raw text of a variable into a TOML value, guided by the default's type.
pub(crate) fn env_value(raw: &str, default: Option<&toml::Value>) -> toml::Value {
    if let Some(toml::Value::String(_)) = default {
        return toml::Value::String(raw.to_owned());
    }
    let doc = format!("v = {raw}");
    match toml::from_str::<toml::Table>(&doc) {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.to_owned())),
        Err(_) => toml::Value::String(raw.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_names() {
        assert_eq!(
            split_var("IMS_PCSCF__SIP__LISTEN"),
            Some(("pcscf".into(), vec!["sip".into(), "listen".into()]))
        );
        assert_eq!(
            split_var("IMS_SCSCF__REGISTRATION__MAX_EXPIRES").map(|x| x.1),
            Some(vec!["registration".into(), "max_expires".into()])
        );
        assert_eq!(split_var("IMS_PCSCF"), None);
        assert_eq!(split_var("IMS_PCSCF____X"), None);
        assert_eq!(split_var("HOME"), None);
    }

    #[test]
    fn values_follow_default_type() {
        let s = toml::Value::String(String::new());
        assert_eq!(
            env_value("123", Some(&s)),
            toml::Value::String("123".into())
        );
        assert_eq!(env_value("123", None), toml::Value::Integer(123));
        assert_eq!(env_value("true", None), toml::Value::Boolean(true));
        assert_eq!(
            env_value("0.0.0.0:3868", None),
            toml::Value::String("0.0.0.0:3868".into())
        );
        assert!(matches!(env_value("[\"a\", \"b\"]", None), toml::Value::Array(a) if a.len() == 2));
    }
}
