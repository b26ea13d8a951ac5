//! Reading `compose.yaml` the way Docker Compose does, for the static checks
//! (`tests/compose.rs`) and the no-Docker topology test
//! (`tests/compose_topology.rs`): YAML with merge keys (`<<: *anchor`),
//! `${VAR}` / `${VAR:-default}` interpolation with `$$` as a literal `$`,
//! and `.env` files in Compose's dotenv syntax.

#![allow(dead_code)]

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `compose.yaml` as JSON, merge keys applied, nothing interpolated.
pub fn raw() -> Value {
    let text = std::fs::read_to_string(root().join("compose.yaml")).expect("compose.yaml");
    let mut yaml: serde_norway::Value =
        serde_norway::from_str(&text).expect("compose.yaml is YAML");
    yaml.apply_merge().expect("merge keys resolve");
    serde_json::to_value(yaml).expect("compose.yaml converts to JSON")
}

/// Variables from a dotenv file (Compose's syntax: `KEY=value`, `#`
/// comments, single quotes literal, double quotes with `\n` escapes).
pub fn dotenv(path: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("{}: not KEY=value: {line}", path.display()));
        let value = value.trim();
        let value = if let Some(v) = value.strip_prefix('\'') {
            v.strip_suffix('\'').expect("closing '").to_string()
        } else if let Some(v) = value.strip_prefix('"') {
            v.strip_suffix('"')
                .expect("closing \"")
                .replace("\\n", "\n")
                .replace("\\\"", "\"")
        } else {
            value.split(" #").next().unwrap_or("").trim().to_string()
        };
        out.insert(key.trim().to_string(), value);
    }
    out
}

/// One `${…}` found in a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarUse {
    pub name: String,
    /// `:-`/`-` default, `:?`/`?` required, `:+`/`+` alternative, or "".
    pub op: String,
    pub arg: String,
}

/// Splits `s` into literal text and `${…}` uses; `$$` is a literal `$`.
/// Errors on a bare `$NAME` (not used in Farol's file) or an unclosed `${`.
fn scan(s: &str) -> Result<Vec<Result<String, VarUse>>, String> {
    let mut parts = Vec::new();
    let mut lit = String::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '$' {
            lit.push(c);
            i += 1;
            continue;
        }
        match chars.get(i + 1) {
            Some('$') => {
                lit.push('$');
                i += 2;
            }
            Some('{') => {
                // Find the matching brace (defaults may contain braces).
                let mut depth = 1;
                let mut j = i + 2;
                while j < chars.len() && depth > 0 {
                    match chars[j] {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        _ => {}
                    }
                    j += 1;
                }
                if depth != 0 {
                    return Err(format!("unclosed ${{ in {s:?}"));
                }
                let body: String = chars[i + 2..j - 1].iter().collect();
                let name_len = body
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(body.len());
                let (name, rest) = body.split_at(name_len);
                let (op, arg) = ["-", "?", "+"]
                    .iter()
                    .flat_map(|o| [format!(":{o}"), o.to_string()])
                    .find_map(|o| rest.strip_prefix(o.as_str()).map(|a| (o.clone(), a)))
                    .unwrap_or((String::new(), rest));
                if name.is_empty() || (op.is_empty() && !rest.is_empty()) {
                    return Err(format!("bad substitution ${{{body}}} in {s:?}"));
                }
                if !lit.is_empty() {
                    parts.push(Ok(std::mem::take(&mut lit)));
                }
                parts.push(Err(VarUse {
                    name: name.to_string(),
                    op,
                    arg: arg.to_string(),
                }));
                i = j;
            }
            Some(n) if n.is_ascii_alphabetic() || *n == '_' => {
                return Err(format!("bare ${n}… in {s:?}: write ${{…}}"));
            }
            _ => {
                lit.push('$');
                i += 1;
            }
        }
    }
    if !lit.is_empty() {
        parts.push(Ok(lit));
    }
    Ok(parts)
}

/// Every `${…}` in `s` (including those nested in defaults).
pub fn uses(s: &str) -> Vec<VarUse> {
    let mut out = Vec::new();
    for part in scan(s).unwrap_or_else(|e| panic!("{e}")) {
        if let Err(u) = part {
            out.extend(uses(&u.arg));
            out.push(u);
        }
    }
    out
}

/// Compose's interpolation of one string with the variables `vars`.
pub fn interpolate(s: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    for part in scan(s)? {
        match part {
            Ok(lit) => out.push_str(&lit),
            Err(u) => {
                let val = vars.get(&u.name);
                let set = val.is_some();
                let nonempty = val.is_some_and(|v| !v.is_empty());
                let got = match u.op.as_str() {
                    "" => val.cloned().unwrap_or_default(),
                    ":-" if nonempty => val.cloned().unwrap(),
                    "-" if set => val.cloned().unwrap(),
                    ":-" | "-" => interpolate(&u.arg, vars)?,
                    ":?" if nonempty => val.cloned().unwrap(),
                    "?" if set => val.cloned().unwrap(),
                    ":?" | "?" => return Err(format!("{} is required: {}", u.name, u.arg)),
                    ":+" if nonempty => interpolate(&u.arg, vars)?,
                    "+" if set => interpolate(&u.arg, vars)?,
                    _ => String::new(),
                };
                out.push_str(&got);
            }
        }
    }
    Ok(out)
}

/// Every string in `v` (values only, not keys), with its JSON path.
pub fn strings(v: &Value, path: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::String(s) => out.push((path.to_string(), s.clone())),
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                strings(x, &format!("{path}[{i}]"), out);
            }
        }
        Value::Object(o) => {
            for (k, x) in o {
                strings(x, &format!("{path}.{k}"), out);
            }
        }
        _ => {}
    }
}

/// `v` with every string interpolated with `vars`.
pub fn resolve(v: &Value, vars: &BTreeMap<String, String>) -> Value {
    match v {
        Value::String(s) => Value::String(interpolate(s, vars).unwrap_or_else(|e| panic!("{e}"))),
        Value::Array(a) => Value::Array(a.iter().map(|x| resolve(x, vars)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), resolve(x, vars)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The services of a (resolved) compose document.
pub fn services(doc: &Value) -> &serde_json::Map<String, Value> {
    doc["services"].as_object().expect("services")
}

/// A service's `environment` as a map (map or `KEY=value` list form).
pub fn environment(service: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    match &service["environment"] {
        Value::Object(o) => {
            for (k, v) in o {
                let v = match v {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                out.insert(k.clone(), v);
            }
        }
        Value::Array(a) => {
            for item in a {
                let s = item.as_str().expect("KEY=value");
                let (k, v) = s.split_once('=').unwrap_or((s, ""));
                out.insert(k.to_string(), v.to_string());
            }
        }
        Value::Null => {}
        other => panic!("environment: {other}"),
    }
    out
}

/// Services that run the farol image.
pub fn farol_services(doc: &Value) -> Vec<String> {
    services(doc)
        .iter()
        .filter(|(_, s)| s["image"].as_str().is_some_and(|i| i.starts_with("farol:")))
        .map(|(n, _)| n.clone())
        .collect()
}

/// A service's command as a list of arguments.
pub fn command(service: &Value) -> Vec<String> {
    match &service["command"] {
        Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().expect("string argument").to_string())
            .collect(),
        Value::String(s) => s.split_whitespace().map(str::to_string).collect(),
        _ => vec![],
    }
}

/// `compose.yaml` resolved as `docker compose up` resolves it with no `.env`
/// and a clean environment: every variable takes its default.
pub fn resolved_with_defaults() -> Value {
    resolve(&raw(), &BTreeMap::new())
}
