//! The loading pipeline shared by every role: parse the TOML, lay it over the defaults,
//! apply environment overrides, deserialize while collecting every bad key (each bad
//! key is reported and dropped, then deserialization is tried again), fill derived
//! defaults, validate, and name the line of each problem.

use crate::env::{env_value, split_var, EnvSource};
use crate::error::{ConfigError, ConfigErrors};
use crate::validate::Issues;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

/// Implemented by each top-level configuration (`HssConfig`, `PcscfConfig`, …).
pub trait RoleConfig: Serialize + DeserializeOwned + Default {
    /// Map an environment variable (split as role + lower-case path) to a key path of
    /// this file, or `None` when the variable is not for this file.
    fn env_path(role: &str, path: &[String]) -> Option<Vec<String>>;

    /// Adjust the raw table before defaults are laid under it (all-in-one: copy the
    /// top-level `domain` into each role section).
    fn prepare(_table: &mut toml::Table) {}

    /// Fill defaults that derive from other keys (Origin-Host from the domain…).
    fn resolve(&mut self);

    /// Semantic checks; every problem goes into `issues`.
    fn validate(&self, issues: &mut Issues);
}

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

fn path_string(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// Split `a.b[2].c` back into segments.
fn parse_path(key: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    for part in key.split('.') {
        let (name, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            out.push(Seg::Key(name.to_owned()));
        }
        while let Some(r) = rest.strip_prefix('[') {
            let Some(end) = r.find(']') else { break };
            if let Ok(i) = r[..end].parse() {
                out.push(Seg::Index(i));
            }
            rest = &r[end + 1..];
        }
    }
    out
}

fn line_of(src: &str, offset: usize) -> usize {
    src.as_bytes()[..offset.min(src.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Lay `over` on `base`: tables merge key by key, anything else replaces.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

fn lookup<'a>(table: &'a toml::Table, path: &[String]) -> Option<&'a toml::Value> {
    let (first, rest) = path.split_first()?;
    let v = table.get(first)?;
    if rest.is_empty() {
        return Some(v);
    }
    match v {
        toml::Value::Table(t) => lookup(t, rest),
        _ => None,
    }
}

fn set(table: &mut toml::Table, path: &[String], value: toml::Value) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        table.insert(first.clone(), value);
        return;
    }
    let entry = table
        .entry(first.clone())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if !entry.is_table() {
        *entry = toml::Value::Table(toml::Table::new());
    }
    if let toml::Value::Table(t) = entry {
        set(t, rest, value);
    }
}

/// Remove the value at `path`; false when there is nothing to remove.
fn remove(value: &mut toml::Value, path: &[Seg]) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    match (value, first) {
        (toml::Value::Table(t), Seg::Key(k)) => {
            if rest.is_empty() {
                t.remove(k).is_some()
            } else {
                t.get_mut(k).is_some_and(|v| remove(v, rest))
            }
        }
        (toml::Value::Array(a), Seg::Index(i)) => {
            if rest.is_empty() {
                if *i < a.len() {
                    a.remove(*i);
                    true
                } else {
                    false
                }
            } else {
                a.get_mut(*i).is_some_and(|v| remove(v, rest))
            }
        }
        _ => false,
    }
}

/// The span of the key (or array element) at `path` in the parsed file, or of the
/// deepest ancestor that has one.
fn span_of(doc: &toml_edit::Table, path: &[Seg]) -> Option<Range<usize>> {
    enum Node<'a> {
        Table(&'a toml_edit::Table),
        Item(&'a toml_edit::Item),
        Value(&'a toml_edit::Value),
    }
    let mut best: Option<Range<usize>> = None;
    let mut node = Node::Table(doc);
    for seg in path {
        let next = match (node, seg) {
            (Node::Table(t), Seg::Key(k))
            | (Node::Item(toml_edit::Item::Table(t)), Seg::Key(k)) => {
                t.get_key_value(k).map(|(key, item)| {
                    if let Some(s) = key.span() {
                        best = Some(s);
                    }
                    Node::Item(item)
                })
            }
            (Node::Item(toml_edit::Item::ArrayOfTables(a)), Seg::Index(i)) => a.get(*i).map(|t| {
                if let Some(s) = t.span() {
                    best = Some(s);
                }
                Node::Table(t)
            }),
            (Node::Item(toml_edit::Item::Value(v)), seg) | (Node::Value(v), seg) => {
                match (v, seg) {
                    (toml_edit::Value::InlineTable(t), Seg::Key(k)) => {
                        t.get_key_value(k).map(|(key, item)| {
                            if let Some(s) = key.span() {
                                best = Some(s);
                            }
                            Node::Item(item)
                        })
                    }
                    (toml_edit::Value::Array(a), Seg::Index(i)) => a.get(*i).map(|val| {
                        if let Some(s) = val.span() {
                            best = Some(s);
                        }
                        Node::Value(val)
                    }),
                    _ => None,
                }
            }
            _ => None,
        };
        match next {
            Some(n) => node = n,
            None => break,
        }
    }
    best
}

/// Read `path` and load it (see [`load_str`]).
pub(crate) fn load_file<T: RoleConfig>(
    path: &Path,
    env: &dyn EnvSource,
) -> Result<T, ConfigErrors> {
    let source = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(src) => load_str(&src, &source, env),
        Err(e) => Err(ConfigErrors(vec![ConfigError {
            source,
            line: None,
            key: String::new(),
            reason: format!("cannot read the file: {e}"),
        }])),
    }
}

/// The pipeline; `source` names the text in error messages.
pub(crate) fn load_str<T: RoleConfig>(
    src: &str,
    source: &str,
    env: &dyn EnvSource,
) -> Result<T, ConfigErrors> {
    let syntax_error = |e: &dyn std::fmt::Display, span: Option<Range<usize>>| {
        ConfigErrors(vec![ConfigError {
            source: source.to_owned(),
            line: span.map(|s| line_of(src, s.start)),
            key: String::new(),
            reason: format!("TOML syntax error: {}", first_line_of_message(e)),
        }])
    };
    let mut user: toml::Table = match toml::from_str(src) {
        Ok(t) => t,
        Err(e) => return Err(syntax_error(&e.message(), e.span())),
    };
    let doc = toml_edit::ImDocument::parse(src.to_owned()).ok();

    T::prepare(&mut user);
    let defaults = match toml::Value::try_from(T::default()) {
        Ok(toml::Value::Table(t)) => t,
        _ => toml::Table::new(),
    };

    // Environment overrides, applied after the file.
    let mut from_env: HashMap<String, String> = HashMap::new();
    let mut vars = env.vars();
    vars.sort();
    for (name, raw) in vars {
        let Some((role, path)) = split_var(&name) else {
            continue;
        };
        let Some(path) = T::env_path(&role, &path) else {
            continue;
        };
        let value = env_value(&raw, lookup(&defaults, &path));
        set(&mut user, &path, value);
        from_env.insert(path.join("."), name);
    }

    let mut merged = defaults;
    merge(&mut merged, user);
    let mut value = toml::Value::Table(merged);

    let mut problems: Vec<(String, String)> = Vec::new();
    let mut parsed: Option<T> = None;
    for _ in 0..512 {
        match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Ok(t) => {
                parsed = Some(t);
                break;
            }
            Err(e) => {
                let mut path: Vec<Seg> = e
                    .path()
                    .iter()
                    .filter_map(|s| match s {
                        serde_path_to_error::Segment::Map { key } => Some(Seg::Key(key.clone())),
                        serde_path_to_error::Segment::Seq { index } => Some(Seg::Index(*index)),
                        _ => None,
                    })
                    .collect();
                let msg = e.into_inner().message().to_owned();
                let reason = if let Some(field) = unknown_field(&msg) {
                    if path.last() != Some(&Seg::Key(field.clone())) {
                        path.push(Seg::Key(field.clone()));
                    }
                    format!("unknown key {field:?}{}", expected_keys(&msg))
                } else {
                    msg
                };
                problems.push((path_string(&path), reason));
                if !remove(&mut value, &path) {
                    break;
                }
            }
        }
    }

    if let Some(t) = parsed.as_mut() {
        t.resolve();
        let mut issues = Issues::default();
        t.validate(&mut issues);
        let unreadable: Vec<String> = problems.iter().map(|(k, _)| k.clone()).collect();
        for (key, reason) in issues.list {
            // A key already reported as unreadable was replaced by its default: do not
            // report consequences of that default as well.
            if unreadable
                .iter()
                .any(|k| !k.is_empty() && key.starts_with(k.as_str()))
            {
                continue;
            }
            problems.push((key, reason));
        }
    }

    if problems.is_empty() {
        if let Some(t) = parsed {
            return Ok(t);
        }
    }
    let errors = problems
        .into_iter()
        .map(|(key, reason)| {
            let env_var = from_env.iter().find_map(|(k, var)| {
                let hit = key == *k
                    || key.starts_with(&format!("{k}."))
                    || key.starts_with(&format!("{k}["));
                hit.then(|| var.clone())
            });
            match env_var {
                Some(var) => ConfigError {
                    source: format!("environment variable {var}"),
                    line: None,
                    key,
                    reason,
                },
                None => ConfigError {
                    source: source.to_owned(),
                    line: doc
                        .as_ref()
                        .and_then(|d| span_of(d.as_table(), &parse_path(&key)))
                        .map(|s| line_of(src, s.start)),
                    key,
                    reason,
                },
            }
        })
        .collect();
    Err(ConfigErrors(errors))
}

fn first_line_of_message(e: &dyn std::fmt::Display) -> String {
    let s = e.to_string();
    s.lines().next().unwrap_or("").trim().to_owned()
}

/// `unknown field `x`, expected …` → `x`.
fn unknown_field(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("unknown field `")?;
    let end = rest.find('`')?;
    Some(rest[..end].to_owned())
}

/// The ", expected one of …" tail of serde's unknown-field message, reworded.
fn expected_keys(msg: &str) -> String {
    match msg.find(", expected") {
        Some(i) => {
            format!(" (valid keys here:{})", &msg[i + ", expected".len()..]).replace("one of ", "")
        }
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_round_trip() {
        let p = parse_path("a.b[2].c");
        assert_eq!(
            p,
            vec![
                Seg::Key("a".into()),
                Seg::Key("b".into()),
                Seg::Index(2),
                Seg::Key("c".into())
            ]
        );
        assert_eq!(path_string(&p), "a.b[2].c");
    }

    #[test]
    fn merge_is_deep() {
        let mut base: toml::Table = toml::from_str("[a]\nx = 1\ny = 2\n").unwrap();
        let over: toml::Table = toml::from_str("[a]\ny = 3\n").unwrap();
        merge(&mut base, over);
        assert_eq!(base["a"]["x"].as_integer(), Some(1));
        assert_eq!(base["a"]["y"].as_integer(), Some(3));
    }

    #[test]
    fn spans_find_lines() {
        let src = "a = 1\n[b]\nc = [1,\n 2]\n[[d]]\ne = 1\n[[d]]\ne = 2\n";
        let doc = toml_edit::ImDocument::parse(src.to_owned()).unwrap();
        let line = |k: &str| span_of(doc.as_table(), &parse_path(k)).map(|s| line_of(src, s.start));
        assert_eq!(line("a"), Some(1));
        assert_eq!(line("b.c"), Some(3));
        assert_eq!(line("b.c[1]"), Some(4));
        assert_eq!(line("d[1]"), Some(7));
    }
}
