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
    if report_unknown_keys(c, name, table, &keys, "keys") {
        return None;
    }
    deserialize_table(c, name, table, value.span())
}

/// Reports keys of `table` not in `allowed`; true if there were any.
pub(super) fn report_unknown_keys(
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
    let de = ValueDeserializer::from(Spanned::new(span.clone(), DeValue::Table(table.clone())));
    match T::deserialize(de) {
        Ok(v) => Some(v),
        Err(e) => {
            report_de_error(c, section, table, span, &e);
            None
        }
    }
}

pub(super) fn report_de_error(
    c: &mut Collector,
    section: &str,
    table: &DeTable<'_>,
    span: Range<usize>,
    e: &toml::de::Error,
) {
    let (key, at) = locate(table, e.span(), e.message());
    let message = e.message().to_owned();
    let message = match message.strip_prefix("missing field ") {
        Some(field) => format!("required key {field} is missing"),
        None => message,
    };
    c.error(Some(at.unwrap_or(span)), Some(section), key.as_deref(), message);
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
    let key = message
        .strip_prefix("missing field `")
        .and_then(|m| m.split('`').next())
        .map(str::to_owned);
    (key, span)
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
