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
    /// The check's label when it happened (`STALE`, `DISCONNECTED`), for short
    /// subjects; not a column of the alerts table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// The id of an episode of `rule` on `check` that starts at `at`:
/// `<rule>.<check>.<at in Unix ms>`.
pub fn episode_id(rule: &str, check: &str, at: DateTime<Utc>) -> String {
    format!("{rule}.{check}.{}", at.timestamp_millis())
}

impl AlertEvent {
    /// An event of a new episode at `at`: `alert_id` is `<rule>.<check>.<at in Unix
    /// ms>`, `started_at` is `at`, the host is this one, no value, not a reminder. The
    /// later events of an episode say which with [`AlertEvent::of_episode`].
    pub fn new(
        rule: &str,
        check_id: &str,
        severity: Severity,
        state: AlertState,
        message: String,
        at: DateTime<Utc>,
    ) -> AlertEvent {
        AlertEvent {
            alert_id: episode_id(rule, check_id, at),
            rule: rule.to_owned(),
            check_id: check_id.to_owned(),
            severity,
            state,
            message,
            value: None,
            started_at: at,
            event_at: at,
            host: hostname().to_owned(),
            reminder: false,
            label: None,
        }
    }

    /// The same event, with the check's label.
    pub fn with_label(mut self, label: Option<String>) -> AlertEvent {
        self.label = label;
        self
    }

    /// The same event, of the episode `alert_id` that started at `started_at`.
    pub fn of_episode(mut self, alert_id: &str, started_at: DateTime<Utc>) -> AlertEvent {
        alert_id.clone_into(&mut self.alert_id);
        self.started_at = started_at;
        self
    }

    /// The same event, with the observation's value.
    pub fn with_value(mut self, value: Option<f64>) -> AlertEvent {
        self.value = value;
        self
    }

    /// The same event, from the vitals named `host`.
    pub fn on_host(mut self, host: &str) -> AlertEvent {
        host.clone_into(&mut self.host);
        self
    }

    /// The same firing event, as a reminder of an earlier one.
    pub fn as_reminder(mut self) -> AlertEvent {
        self.reminder = true;
        self
    }
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
    /// Its rule's `remediate`, where it has one: attempts, the next, given up, paused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remediation: Option<RemediationView>,
}

/// What the page and the API show of a firing alert's remediation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RemediationView {
    /// The action.
    pub action: String,
    /// Attempts made within the window.
    pub attempts: u32,
    /// At most.
    pub max_attempts: u32,
    /// When the next attempt is due, if one is.
    pub next_at: Option<DateTime<Utc>>,
    /// The attempts are used up and `remediation_failed` fires.
    pub gave_up: bool,
    /// Paused by an operator for this alert.
    pub paused: bool,
    /// `dry_run`.
    pub dry_run: bool,
    /// What the last attempt came to.
    pub last_outcome: Option<String>,
}

/// A condition that holds but whose alert is held back by a dependency.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeldAlert {
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
