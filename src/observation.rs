//! What a check says and what the runner makes of it: [`Status`], [`Reading`] (a
//! check's answer) and [`Observation`] (the reading with identity and timing, the unit
//! the board, the rules and every output work with; its JSON is in
//! `docs/reference.md`). A leaf module: it depends on nothing else in the crate.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

/// The health of one check at one moment, ordered by how bad it is for display
/// (`ok` < `warning` < `unknown` < `critical`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Everything is within its thresholds.
    Ok,
    /// A threshold was reached; someone should look soon.
    Warning,
    /// Act now.
    Critical,
    /// The check could not tell (it failed, timed out or panicked).
    Unknown,
}

impl Status {
    /// All statuses, in the order of their Nagios exit codes.
    pub const ALL: [Status; 4] = [Status::Ok, Status::Warning, Status::Critical, Status::Unknown];

    /// The lowercase name used in JSON and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Critical => "critical",
            Status::Unknown => "unknown",
        }
    }

    /// The Nagios plugin exit code of this status (0, 1, 2, 3).
    pub fn nagios_code(self) -> i32 {
        match self {
            Status::Ok => 0,
            Status::Warning => 1,
            Status::Critical => 2,
            Status::Unknown => 3,
        }
    }

    /// Rank for "worst of": ok < warning < unknown < critical.
    pub fn severity_rank(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Warning => 1,
            Status::Unknown => 2,
            Status::Critical => 3,
        }
    }

    /// The worse of two statuses.
    pub fn worst(self, other: Status) -> Status {
        if other.severity_rank() > self.severity_rank() {
            other
        } else {
            self
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a check says about its target on one run. The runner adds identity and timing
/// to make an [`Observation`].
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// ok / warning / critical / unknown.
    pub status: Status,
    /// The headline number (percent, seconds, count…), if the check has one.
    pub value: Option<f64>,
    /// The unit of `value` (`%`, `s`, `ms`, …); empty when there is none.
    pub unit: String,
    /// A kind-specific word for the state (FRESH / STALE, CONNECTED…), if any.
    pub label: Option<String>,
    /// One line for a human.
    pub message: String,
    /// Everything else, as a JSON object.
    pub details: Map<String, Value>,
}

impl Reading {
    /// A reading with a status and message and nothing else.
    pub fn new(status: Status, message: impl Into<String>) -> Self {
        Reading {
            status,
            value: None,
            unit: String::new(),
            label: None,
            message: message.into(),
            details: Map::new(),
        }
    }

    /// An `unknown` reading: the check could not tell.
    pub fn unknown(message: impl Into<String>) -> Self {
        Self::new(Status::Unknown, message)
    }

    /// Sets the headline value and its unit.
    pub fn with_value(mut self, value: f64, unit: impl Into<String>) -> Self {
        self.value = value.is_finite().then_some(value);
        self.unit = unit.into();
        self
    }

    /// Sets the label.
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Adds one entry to `details`.
    pub fn with_detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }
}

/// One check's result at one moment: the unit the board, the rules and every
/// output (JSON, page, metrics) work with. Serializes to the observation JSON of
/// `docs/reference.md`, and reads it back (`vitals replay`): `id`, `kind`, `status`
/// and `observed_at` are required, the rest default to empty, and other keys of
/// `/api/status` are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// The check's id (`[checks.<id>]`).
    pub id: String,
    /// The check's kind.
    pub kind: String,
    /// ok / warning / critical / unknown.
    pub status: Status,
    /// Kind-specific state word, or null.
    #[serde(default)]
    pub label: Option<String>,
    /// Headline value, or null.
    #[serde(default)]
    pub value: Option<f64>,
    /// Unit of `value`.
    #[serde(default)]
    pub unit: String,
    /// One line for a human.
    #[serde(default)]
    pub message: String,
    /// When the run started (UTC, millisecond precision in JSON).
    #[serde(serialize_with = "serialize_millis")]
    pub observed_at: DateTime<Utc>,
    /// How long the run took, in milliseconds.
    #[serde(default)]
    pub duration_ms: f64,
    /// Kind-specific details.
    #[serde(default)]
    pub details: Map<String, Value>,
}

fn serialize_millis<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// The label of a configured check that has not run yet.
pub const PENDING: &str = "PENDING";

impl Observation {
    /// What the board shows for a configured check before its first run: `unknown`,
    /// label `PENDING`, "waiting for its first run". It is on the page, in the API and
    /// in the metrics from the first second; only the built-in `check_unknown` rule
    /// looks at it (a check that never manages a first run pages after
    /// `unknown_after`).
    pub fn pending(id: &str, kind: &str, at: DateTime<Utc>) -> Self {
        let reading = Reading::unknown("waiting for its first run").with_label(PENDING);
        Observation::from_reading(id, kind, reading, at, Duration::ZERO)
    }

    /// Whether this is a [`Observation::pending`] placeholder, not a run's result.
    pub fn is_pending(&self) -> bool {
        self.status == Status::Unknown && self.label.as_deref() == Some(PENDING)
    }

    /// Wraps a reading with the check's identity and timing.
    pub fn from_reading(
        id: &str,
        kind: &str,
        reading: Reading,
        observed_at: DateTime<Utc>,
        duration: Duration,
    ) -> Self {
        Observation {
            id: id.to_owned(),
            kind: kind.to_owned(),
            status: reading.status,
            label: reading.label,
            value: reading.value,
            unit: reading.unit,
            message: reading.message,
            observed_at,
            duration_ms: (duration.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
            details: reading.details,
        }
    }
}
