//! The TOML walk shared by every section: deserializing a table with each failure
//! reported at the key it concerns, and unknown keys reported with the expected list
//! and a suggestion.

use std::ops::Range;

use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::diag::Collector;
use crate::plugin::suggest;

/// Deserializes a whole section, reporting unknown keys with suggestions.
pub(super) fn section<T: for<'de> Deserialize<'de> + JsonSchema>(
    c: &mut Collector,
    name: &str,
    value: &Spanned<DeValue<'_>>,
) -> Option<T> {
    let DeValue::Table(table) = value.get_ref() else {
        c.error(
            Some(value.span()),
            None,
            Some(name),
            format!(
                "expected a table `[{name}]`, found {}",
                value.get_ref().type_str()
            ),
        );
        return None;
    };
    let keys = keys_of::<T>();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    // Unknown keys are reported, and the rest is still read: every problem at once.
    let known = without_unknown_keys(c, name, table, &keys, "keys");
    deserialize_table(c, name, &known, value.span())
}

/// Reports the keys of `table` not in `allowed` and returns the table without them, so
/// the rest can still be checked.
pub(super) fn without_unknown_keys<'t>(
    c: &mut Collector,
    section: &str,
    table: &DeTable<'t>,
    allowed: &[&str],
    what: &str,
) -> DeTable<'t> {
    report_unknown_keys(c, section, table, allowed, what);
    let mut known = DeTable::new();
    for (k, v) in table.iter() {
        if allowed.contains(&k.get_ref().as_ref()) {
            known.insert(k.clone(), v.clone());
        }
    }
    known
}

/// Reports keys of `table` not in `allowed`; true if there were any.
fn report_unknown_keys(
    c: &mut Collector,
    section: &str,
    table: &DeTable<'_>,
    allowed: &[&str],
    what: &str,
) -> bool {
    let mut found = false;
    for key in table.keys() {
        let k = key.get_ref().as_ref();
        if !allowed.contains(&k) {
            c.error(
                Some(key.span()),
                Some(section),
                Some(k),
                unknown_key_message(k, allowed, what),
            );
            found = true;
        }
    }
    found
}

pub(super) fn unknown_key_message(key: &str, allowed: &[&str], what: &str) -> String {
    format!(
        "unknown key `{key}`{}; expected one of the {what}: {}",
        suggest(key, allowed.iter().copied()),
        allowed.join(", ")
    )
}

/// Deserializes a table, reporting a failure at the key it concerns.
pub(super) fn deserialize_table<T: for<'de> Deserialize<'de>>(
    c: &mut Collector,
    section: &str,
    table: &DeTable<'_>,
    span: Range<usize>,
) -> Option<T> {
    deserialize_with(c, section, table, span, |de| T::deserialize(de))
}

/// Deserializes a table with `parse`, reporting every key that fails, not only the
/// first: after a failure at a key, that key is set aside and the rest is read again.
/// `None` if any key failed.
pub(super) fn deserialize_with<T>(
    c: &mut Collector,
    section: &str,
    table: &DeTable<'_>,
    span: Range<usize>,
    parse: impl Fn(ValueDeserializer<'_>) -> Result<T, toml::de::Error>,
) -> Option<T> {
    let mut rest = table.clone();
    let mut failed = false;
    // Each round sets one key aside; the bound only guards against a mistake.
    for _ in 0..=table.len() {
        let de = ValueDeserializer::from(Spanned::new(span.clone(), DeValue::Table(rest.clone())));
        let e = match parse(de) {
            Ok(v) => return (!failed).then_some(v),
            Err(e) => e,
        };
        // A required key set aside is missing now: its problem is reported already, and
        // every other key was read without one.
        let set_aside = e
            .message()
            .strip_prefix("missing field `")
            .and_then(|m| m.split('`').next())
            .is_some_and(|k| table.contains_key(k) && !rest.contains_key(k));
        if set_aside {
            return None;
        }
        failed = true;
        let key = report_de_error(c, section, table, span.clone(), &e);
        match key {
            Some(k) if rest.contains_key(k.as_str()) => {
                rest.remove(k.as_str());
            }
            _ => return None,
        }
    }
    None
}

/// Reports a deserialization error at the key it concerns, in the user's words;
/// returns that key when it is known.
pub(super) fn report_de_error(
    c: &mut Collector,
    section: &str,
    table: &DeTable<'_>,
    span: Range<usize>,
    e: &toml::de::Error,
) -> Option<String> {
    let (key, at) = locate(table, e.span(), e.message());
    let message = e.message().to_owned();
    let message = match message.strip_prefix("missing field ") {
        Some(field) => format!("required key {field} is missing"),
        None => in_words(&message),
    };
    c.error(Some(at.unwrap_or(span)), Some(section), key.as_deref(), message);
    key
}

/// serde's type names in a message, in a TOML writer's words: "expected u16" becomes
/// "expected a whole number from 0 to 65535".
pub(super) fn in_words(message: &str) -> String {
    const WORDS: [(&str, &str); 14] = [
        ("expected u8", "expected a whole number from 0 to 255"),
        ("expected u16", "expected a whole number from 0 to 65535"),
        ("expected u32", "expected a whole number from 0 to 4294967295"),
        ("expected u64", "expected a whole number, 0 or more"),
        ("expected usize", "expected a whole number, 0 or more"),
        ("expected i8", "expected a whole number from -128 to 127"),
        ("expected i16", "expected a whole number from -32768 to 32767"),
        ("expected i32", "expected a whole number"),
        ("expected i64", "expected a whole number"),
        ("expected f32", "expected a number"),
        ("expected f64", "expected a number"),
        ("expected a sequence", "expected an array, e.g. [\"a\", \"b\"]"),
        ("expected a map", "expected a table, e.g. { key = \"value\" }"),
        ("expected a boolean", "expected true or false"),
    ];
    let mut out = message.to_owned();
    for (from, to) in WORDS {
        if let Some(at) = out.find(from) {
            let end = at + from.len();
            // Whole words only: `u16` must not match inside `u160`.
            if out[end..].chars().next().is_none_or(|ch| !ch.is_alphanumeric()) {
                out.replace_range(at..end, to);
            }
        }
    }
    out
}

/// Which key of `table` an error is about, and where to point.
fn locate(
    table: &DeTable<'_>,
    span: Option<Range<usize>>,
    message: &str,
) -> (Option<String>, Option<Range<usize>>) {
    if let Some(span) = &span {
        for (k, v) in table.iter() {
            let (ks, vs) = (k.span(), v.span());
            if (ks.start <= span.start && span.end <= ks.end)
                || (vs.start <= span.start && span.end <= vs.end)
            {
                return (
                    Some(k.get_ref().to_string()),
                    Some(if span.start == vs.start { vs } else { span.clone() }),
                );
            }
        }
    }
    // "missing field `x`" points at the table; name the key anyway.
    if let Some(key) = message
        .strip_prefix("missing field `")
        .and_then(|m| m.split('`').next())
    {
        return (Some(key.to_owned()), span);
    }
    // A key of a flattened part (`table` of the Delta kinds) comes back without its
    // place: find the value the message quotes.
    if let Some((k, v)) = quoted_value(message).and_then(|quoted| {
        table
            .iter()
            .find(|(_, v)| value_text(v.get_ref()).is_some_and(|t| t == quoted))
    }) {
        return (Some(k.get_ref().to_string()), Some(v.span()));
    }
    (None, span)
}

/// The value an "invalid type: integer `5`, …" or "invalid type: string \"x\", …"
/// message quotes, as it would be written.
fn quoted_value(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "))?;
    if let Some(s) = rest.strip_prefix("string \"") {
        return Some(format!("\"{}\"", s.split('"').next()?));
    }
    let (_, after) = rest.split_once('`')?;
    Some(after.split('`').next()?.to_owned())
}

/// A scalar value as the messages quote it.
fn value_text(v: &DeValue<'_>) -> Option<String> {
    Some(match v {
        DeValue::String(s) => format!("\"{s}\""),
        DeValue::Integer(i) => i.to_string(),
        DeValue::Float(f) => f.to_string(),
        DeValue::Boolean(b) => b.to_string(),
        _ => return None,
    })
}

/// The allowed keys of `T` (from its schema).
pub(super) fn keys_of<T: JsonSchema>() -> Vec<String> {
    crate::schema::keys_of::<T>()
        .into_iter()
        .map(|k| k.name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(src: &str) -> DeTable<'_> {
        DeTable::parse(src).expect("toml").into_inner()
    }

    #[test]
    fn an_error_is_located_at_its_key_and_value() {
        let src = "a = 1\nb = \"x\"\n";
        let t = table(src);
        let b_value = t.get("b").unwrap().span();
        let (key, at) = locate(&t, Some(b_value.clone()), "invalid type");
        assert_eq!(key.as_deref(), Some("b"));
        assert_eq!(at, Some(b_value));
    }

    #[test]
    fn a_missing_field_names_the_key() {
        let t = table("a = 1\n");
        let (key, at) = locate(&t, None, "missing field `url`");
        assert_eq!(key.as_deref(), Some("url"));
        assert_eq!(at, None);
    }

    #[test]
    fn unknown_keys_are_listed_with_a_suggestion() {
        let m = unknown_key_message("intervall", &["interval", "timeout"], "keys");
        assert_eq!(
            m,
            "unknown key `intervall` (did you mean `interval`?); expected one of the keys: interval, timeout"
        );
    }
}
