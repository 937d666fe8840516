//! Durations in config are strings: "500ms", "30s", "5m", "1h 30m" (humantime).
//! Use with `#[serde(with = "crate::duration")]` (or `::option`).

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// Parses a duration string, with a message that says what is expected.
pub fn parse(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| {
        format!("invalid duration {s:?} ({e}): write it as a string like \"500ms\", \"30s\", \"5m\"")
    })
}

/// Formats a duration the way it is written in config.
pub fn format(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Raw {
    Text(String),
    Number(f64),
}

fn from_raw<E: serde::de::Error>(raw: Raw) -> Result<Duration, E> {
    match raw {
        Raw::Text(s) => parse(&s).map_err(E::custom),
        Raw::Number(n) => Err(E::custom(format!(
            "a duration needs a unit: write \"{n}s\" (or \"500ms\", \"5m\"), not {n}"
        ))),
    }
}

/// Serde `with` module for `Duration`.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    from_raw(Raw::deserialize(d)?)
}

/// Serde `with` module for `Duration`.
pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(*d))
}

/// Serde `with` module for `Option<Duration>`.
pub mod option {
    use super::*;

    /// Deserializes an optional duration.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<Raw>::deserialize(d)?.map(from_raw).transpose()
    }

    /// Serializes an optional duration.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&format(*d)),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("1h 30m"), Ok(Duration::from_secs(5400)));
        let err = parse("30 x").unwrap_err();
        assert!(err.contains("\"30s\""), "{err}");
    }
}
