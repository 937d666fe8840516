//! Key documentation derived from the config structs themselves (schemars reads their
//! serde attributes and `///` comments), so `vitals plugins` and
//! docs/configuration.md cannot drift from the code.

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

/// One documented key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyDoc {
    /// The key as written in TOML.
    pub name: String,
    /// Its type, for a human (`number`, `duration`, `array of string`, `"a" | "b"`).
    #[serde(rename = "type")]
    pub ty: String,
    /// Its default, rendered as TOML; `None` when required or absent by default.
    pub default: Option<String>,
    /// Whether the key must be given.
    pub required: bool,
    /// The field's `///` comment.
    pub doc: String,
}

/// The documented keys of a config struct, in declaration order.
pub fn keys_of<T: JsonSchema>() -> Vec<KeyDoc> {
    let schema = schemars::schema_for!(T);
    let root = schema.as_value();
    let defs = root.get("$defs").cloned().unwrap_or(Value::Null);
    let required: Vec<&str> = root
        .get("required")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(props) = root.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    props
        .iter()
        .map(|(name, prop)| {
            let prop = resolve(prop, &defs);
            let default = prop.get("default").filter(|d| !d.is_null()).map(render_toml);
            KeyDoc {
                name: name.clone(),
                ty: type_name(&prop, &defs),
                default,
                required: required.contains(&name.as_str()),
                doc: prop
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            }
        })
        .collect()
}

/// Follows a `$ref` (keeping the property's own description and default over the
/// referenced type's).
fn resolve(prop: &Value, defs: &Value) -> Value {
    let Some(target) = prop
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/$defs/"))
        .and_then(|name| defs.get(name))
    else {
        return prop.clone();
    };
    let mut merged = target.clone();
    if let (Some(m), Some(p)) = (merged.as_object_mut(), prop.as_object()) {
        for (k, v) in p {
            if k != "$ref" {
                m.insert(k.clone(), v.clone());
            }
        }
    }
    merged
}

fn type_name(prop: &Value, defs: &Value) -> String {
    if let Some(values) = enum_values(prop) {
        return values.join(" | ");
    }
    if let Some(any) = prop
        .get("anyOf")
        .or_else(|| prop.get("oneOf"))
        .and_then(Value::as_array)
    {
        let parts: Vec<String> = any
            .iter()
            .map(|v| resolve(v, defs))
            .filter(|v| v.get("type").and_then(Value::as_str) != Some("null"))
            .map(|v| type_name(&v, defs))
            .collect();
        return parts.join(" | ");
    }
    match prop.get("format").and_then(Value::as_str) {
        Some("duration") => return "duration".into(),
        Some("duration or \"off\"") => return "duration or \"off\"".into(),
        _ => {}
    }
    let types: Vec<&str> = match prop.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .collect(),
        _ => vec![],
    };
    match types.as_slice() {
        ["array"] => {
            let item = prop.get("items").map(|i| type_name(&resolve(i, defs), defs));
            format!("array of {}", item.unwrap_or_else(|| "values".into()))
        }
        ["object"] => "table".into(),
        [t] => (*t).to_owned(),
        _ => "value".into(),
    }
}

fn enum_values(prop: &Value) -> Option<Vec<String>> {
    if let Some(values) = prop.get("enum").and_then(Value::as_array) {
        return Some(values.iter().map(render_toml).collect());
    }
    let variants = prop.get("oneOf").and_then(Value::as_array)?;
    variants
        .iter()
        .map(|v| {
            v.get("const")
                .map(render_toml)
                .or_else(|| v.get("enum")?.as_array()?.first().map(render_toml))
        })
        .collect()
}

/// Renders a JSON value as the TOML a user would write.
pub fn render_toml(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Array(items) => {
            format!(
                "[{}]",
                items.iter().map(render_toml).collect::<Vec<_>>().join(", ")
            )
        }
        Value::Object(map) if map.is_empty() => "{}".to_owned(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        Value::Object(map) => format!(
            "{{ {} }}",
            map.iter()
                .map(|(k, v)| format!("{k} = {}", render_toml(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}
