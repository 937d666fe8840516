//! The alert model: what the rule engine produces and every sink, the page and the
//! API consume. [`AlertEvent`] is one row of the alerts table (its schema is in
//! `docs/reference.md`); [`Severity`] is the one severity scale of alerts. A leaf
//! module: rules evaluate, dispatch delivers, both speak these types.

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// This host's name, for alert events: looked up once per process.
pub fn hostname() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "unknown-host".to_owned())
    })
}

/// How bad an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    /// For the record (e.g. streaming slots nearing the limit).
    Info,
    /// Someone should look soon.
    Warning,
    /// Act now.
    Critical,
}

impl Severity {
    /// `INFO`, `WARNING`, `CRITICAL`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "INFO",
            Severity::Warning => "WARNING",
            Severity::Critical => "CRITICAL",
        }
    }
}

/// The state an alert event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// The alert fired (or, with the same `alert_id`, a reminder).
    Firing,
    /// The condition cleared.
    Resolved,
    /// Someone acknowledged it: reminders stop until it resolves.
    Acknowledged,
    /// Not an alert: an operator ran an action (`rule` = "action", the message says
    /// which and with what result). Recorded in the alerts table and the log; the
    /// email and Alertmanager sinks skip it.
    Action,
}

impl AlertState {
    /// `firing`, `resolved`, `acknowledged`, `action`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
            AlertState::Acknowledged => "acknowledged",
            AlertState::Action => "action",
        }
    }
}

/// One transition of one alert: a row of the alerts table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    /// Stable for one firing episode: `<rule>.<check>.<start in Unix ms>`.
    pub alert_id: String,
    /// The rule.
    pub rule: String,
    /// The check.
    pub check_id: String,
    /// Its severity.
    pub severity: Severity,
    /// firing / resolved / acknowledged.
    pub state: AlertState,
    /// The rendered message.
    pub message: String,
    /// The observation's value.
    pub value: Option<f64>,
    /// When the episode started firing.
    pub started_at: DateTime<Utc>,
    /// When this event happened.
    pub event_at: DateTime<Utc>,
    /// The host vitals runs on.
    pub host: String,
    /// Whether this firing event is a reminder of an earlier one.
    pub reminder: bool,
}

/// An alert currently active (firing), for the page and the API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActiveAlert {
    /// Its id.
    pub alert_id: String,
    /// The rule.
    pub rule: String,
    /// The check.
    pub check_id: String,
    /// Its severity.
    pub severity: Severity,
    /// The latest rendered message.
    pub message: String,
    /// Since when it fires.
    pub started_at: DateTime<Utc>,
    /// Whether it was acknowledged.
    pub acknowledged: bool,
}

/// A condition that holds but whose alert is held back by a dependency.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SuppressedAlert {
    /// The rule.
    pub rule: String,
    /// The check.
    pub check_id: String,
    /// Its severity.
    pub severity: Severity,
    /// The message it would have.
    pub message: String,
    /// Why it is held back, e.g. "ib is critical".
    pub cause: String,
    /// Since when.
    pub since: DateTime<Utc>,
}
