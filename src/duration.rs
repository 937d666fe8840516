//! Durations in config are strings: "500ms", "30s", "5m", "1h 30m" (humantime). A
//! config field is a [`Span`]: it reads and writes that form, documents itself as a
//! `duration`, and derefs to `std::time::Duration`.

use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration as written in config (`"30s"`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span(pub Duration);

impl Span {
    /// No time at all.
    pub const ZERO: Span = Span(Duration::ZERO);

    /// `n` seconds.
    pub const fn secs(n: u64) -> Span {
        Span(Duration::from_secs(n))
    }

    /// `n` milliseconds.
    pub const fn millis(n: u64) -> Span {
        Span(Duration::from_millis(n))
    }

    /// The `std` duration.
    pub const fn get(self) -> Duration {
        self.0
    }
}

/// A duration that can be turned off: `"2m"`, or `"off"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanOrOff {
    /// `"off"`.
    Off,
    /// A duration.
    After(Span),
}

impl SpanOrOff {
    /// The duration, or `None` when off.
    pub fn get(self) -> Option<Duration> {
        match self {
            SpanOrOff::Off => None,
            SpanOrOff::After(s) => Some(s.0),
        }
    }
}

impl<'de> Deserialize<'de> for SpanOrOff {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<SpanOrOff, D::Error> {
        match Raw::deserialize(d)? {
            Raw::Text(t) if t.trim().eq_ignore_ascii_case("off") => Ok(SpanOrOff::Off),
            raw => from_raw(raw).map(|d| SpanOrOff::After(Span(d))),
        }
    }
}

impl Serialize for SpanOrOff {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            SpanOrOff::Off => s.serialize_str("off"),
            SpanOrOff::After(d) => d.serialize(s),
        }
    }
}

impl JsonSchema for SpanOrOff {
    fn schema_name() -> Cow<'static, str> {
        "DurationOrOff".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "format": "duration or \"off\"" })
    }
}

/// `N` seconds, as a serde default:
/// `#[serde(default = "crate::duration::secs::<10>")]`.
pub const fn secs<const N: u64>() -> Span {
    Span::secs(N)
}

/// `N` milliseconds, as a serde default (see [`secs`]).
pub const fn millis<const N: u64>() -> Span {
    Span::millis(N)
}

impl Deref for Span {
    type Target = Duration;
    fn deref(&self) -> &Duration {
        &self.0
    }
}

impl From<Duration> for Span {
    fn from(d: Duration) -> Span {
        Span(d)
    }
}

impl From<Span> for Duration {
    fn from(s: Span) -> Duration {
        s.0
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format(self.0))
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Span, D::Error> {
        from_raw(Raw::deserialize(d)?).map(Span)
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(self.0))
    }
}

impl JsonSchema for Span {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "format": "duration" })
    }
}

/// The longest duration a config may give: a hundred years. Every duration vitals
/// computes with (a retention subtracted from now, a window added to a start) stays in
/// range; `retention = "300000y"` is refused at its key, not met at run time.
pub const LONGEST: Duration = Duration::from_secs(100 * 366 * 24 * 3600);

/// Parses a duration string, with a message that says what is expected.
pub fn parse(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim()).map_err(|e| {
        format!("invalid duration {s:?} ({e}): write it as a string like \"500ms\", \"30s\", \"5m\"")
    })?;
    if d > LONGEST {
        return Err(format!(
            "{s:?} is longer than any duration vitals takes (at most 100 years)"
        ));
    }
    Ok(d)
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
        assert!(parse("300000y").unwrap_err().contains("at most 100 years"));
        assert!(parse("99y").is_ok());
    }

    #[test]
    fn a_span_reads_and_writes_the_config_form() {
        let s: Span = serde_json::from_str("\"1m 30s\"").unwrap();
        assert_eq!(s, Span::secs(90));
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"1m 30s\"");
        let e = serde_json::from_str::<Span>("30").unwrap_err().to_string();
        assert!(e.contains("a duration needs a unit: write \"30s\""), "{e}");
        assert_eq!(s.as_secs(), 90, "derefs to Duration");
    }
}
