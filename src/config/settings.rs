//! `[defaults]` and the keys every component has, whatever its kind: the common keys of
//! `[checks.<id>]` and of `[sinks.<id>]`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::alert::Severity as AlertSeverity;
use crate::duration::{Span, SpanOrOff};
use crate::plugin::KeyError;
use crate::rules::WindowConfig;

/// `[defaults]`: settings every check inherits unless it sets its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Defaults {
    /// How often each check runs. Missed ticks are skipped, never bunched up.
    pub interval: Span,
    /// How long one run may take before the runner reports the check `unknown`
    /// ("timed out after …"). A check whose target hangs reports that itself, as
    /// `critical`, just before this.
    pub timeout: Span,
    /// Each check starts at a random offset up to this (capped at its interval) and
    /// keeps that phase, so checks do not all fire in the same instant.
    pub jitter: Span,
    /// The built-in rule `check_unknown` pages when a check has been `unknown` (it
    /// could not tell: a corrupt table, a permission error, a broken plugin) or has not
    /// managed a first run for this long: "vitals cannot see <check>: …". `"off"`
    /// disables it.
    pub unknown_after: SpanOrOff,
    /// The severity of `check_unknown` alerts.
    pub unknown_severity: AlertSeverity,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            interval: Span::secs(5),
            timeout: Span::secs(3),
            jitter: Span::secs(1),
            unknown_after: SpanOrOff::After(Span::secs(120)),
            unknown_severity: AlertSeverity::Warning,
        }
    }
}

/// The keys every `[checks.<id>]` has, whatever its kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommonSettings {
    /// The check kind: one of those `vitals plugins` lists.
    pub kind: String,
    /// How often this check runs (default: `[defaults] interval`).
    #[serde(default)]
    pub interval: Option<Span>,
    /// How long one run may take (default: `[defaults] timeout`).
    #[serde(default)]
    pub timeout: Option<Span>,
    /// Largest random start offset (default: `[defaults] jitter`).
    #[serde(default)]
    pub jitter: Option<Span>,
    /// Ids of checks this one depends on: while one of them is not ok, this check's
    /// alerts are held back (an IB outage does not also page for every stale table).
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Maintenance windows during which this check's alerts are held back, e.g.
    /// weekends for market-data freshness: `[{ start = "0 17 * * FRI", duration =
    /// "62h", timezone = "America/New_York", reason = "market closed" }]`.
    #[serde(default)]
    pub maintenance: Vec<WindowConfig>,
    /// A market calendar (`"nyse"`, `"nyse_extended"` or a `[calendars.<name>]`):
    /// outside its session this check's alerts are held back the way maintenance holds
    /// them, with the cause named ("market closed: Thanksgiving Day"), and fire
    /// afterwards only if still true. The check keeps running and the page shows its
    /// real status.
    #[serde(default)]
    pub market_hours: Option<String>,
    /// How long after the session opens alerts are still held (data needs a few
    /// minutes to catch up), e.g. `"5m"`; needs `market_hours`.
    #[serde(default)]
    pub market_grace: Option<Span>,
    /// How long this check may stay `unknown` before `check_unknown` pages (default:
    /// `[defaults] unknown_after`; `"off"` disables it for this check).
    #[serde(default)]
    pub unknown_after: Option<SpanOrOff>,
    /// The severity of this check's `check_unknown` alerts (default: `[defaults]
    /// unknown_severity`).
    #[serde(default)]
    pub unknown_severity: Option<AlertSeverity>,
}

/// The common keys, as written in `[checks.<id>]`.
pub const COMMON_KEYS: [&str; 10] = [
    "kind",
    "interval",
    "timeout",
    "jitter",
    "depends_on",
    "maintenance",
    "market_hours",
    "market_grace",
    "unknown_after",
    "unknown_severity",
];

/// The keys every `[sinks.<id>]` has, whatever its kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SinkSettings {
    /// The sink kind: one of those `vitals plugins` lists.
    pub kind: String,
    /// Alert events below this severity (`INFO` < `WARNING` < `CRITICAL`) are not sent
    /// to this sink.
    #[serde(default = "lowest_severity")]
    pub min_severity: AlertSeverity,
    /// How long this sink may fail (every delivery, or a heartbeat's every ping) before
    /// the built-in rule `sink_failing` pages through the other sinks: "the desk's email
    /// has been failing for 2m: connection refused". `"off"` never pages for it.
    #[serde(default = "two_minutes")]
    pub failing_after: SpanOrOff,
    /// The severity of this sink's `sink_failing` alerts.
    #[serde(default = "warning")]
    pub failing_severity: AlertSeverity,
}

fn two_minutes() -> SpanOrOff {
    SpanOrOff::After(Span::secs(120))
}

fn warning() -> AlertSeverity {
    AlertSeverity::Warning
}

fn lowest_severity() -> AlertSeverity {
    AlertSeverity::Info
}

/// The common keys of `[sinks.<id>]`.
pub const SINK_COMMON_KEYS: [&str; 4] = ["kind", "min_severity", "failing_after", "failing_severity"];

impl super::Section for Defaults {
    const NAME: &'static str = "defaults";

    fn validate(&self) -> Vec<KeyError> {
        let mut errors = Vec::new();
        for (key, d) in [("interval", self.interval), ("timeout", self.timeout)] {
            if d.is_zero() {
                errors.push(KeyError::new(key, "must be longer than 0s"));
            }
        }
        errors
    }
}
