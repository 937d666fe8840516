//! The rule engine: which observations become alerts, and when.
//!
//! Each `[[rules]]` entry selects checks (by id or kind) and fires when its condition
//! holds. For every (rule, check) pair the engine keeps a small state machine —
//! inactive → pending (`for`) → firing → resolved — with `keep_firing_for` against
//! flapping, `repeat` reminders, acknowledgement, and `depends_on` suppression. The
//! engine is pure: it is fed observations and the time, and returns alert events.

pub mod expr;
pub mod window;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::check::{Observation, Status};
use crate::config::duration;
use crate::schema::DurationStr;
pub use expr::Condition;
pub use window::{Window, WindowConfig};

/// This host's name, for alert events.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown-host".to_owned())
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

/// What a rule does with an `unknown` observation (the check could not tell).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum UnknownPolicy {
    /// Neither fire nor resolve: keep the alert state as it is.
    #[default]
    Hold,
    /// Treat it as the condition holding.
    Fire,
    /// Treat it as the condition not holding.
    Resolve,
}

/// One `[[rules]]` entry as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// The rule's name (letters, digits, `_`, `-`): it names the alert everywhere.
    pub name: String,
    /// Ids of the checks the rule watches.
    #[serde(default)]
    pub checks: Vec<String>,
    /// Kinds of check the rule watches (every configured check of these kinds).
    #[serde(default)]
    pub kinds: Vec<String>,
    /// The condition, a CEL expression over the observation: `status` ("ok",
    /// "warning", "critical", "unknown"), `value` (number or null), `unit`, `label`,
    /// `message`, `check` (the id), `kind` and `details` (e.g. `details.age_s`).
    /// Example: `value > 60 && label == "STALE"`.
    pub when: String,
    /// `INFO`, `WARNING` or `CRITICAL`.
    pub severity: Severity,
    /// How long the condition must hold before the alert fires ("0s": at once).
    #[serde(rename = "for", default, with = "duration")]
    #[schemars(with = "DurationStr")]
    pub for_: Duration,
    /// Once firing, how long the condition must stay false before the alert resolves
    /// (against flapping).
    #[serde(default, with = "duration")]
    #[schemars(with = "DurationStr")]
    pub keep_firing_for: Duration,
    /// Send a reminder this often while the alert fires and is not acknowledged
    /// (absent: no reminders).
    #[serde(default, with = "duration::option")]
    #[schemars(with = "Option<DurationStr>")]
    pub repeat: Option<Duration>,
    /// The alert's text. Placeholders: `{check}`, `{rule}`, `{severity}`, `{status}`,
    /// `{value}`, `{unit}`, `{label}`, `{message}` and `{details.KEY}`.
    #[serde(default = "default_message")]
    pub message: String,
    /// What an `unknown` observation does: `hold` (default), `fire` or `resolve`.
    #[serde(default)]
    pub on_unknown: UnknownPolicy,
    /// Maintenance windows during which this rule does not fire (conditions are held
    /// back and fire afterwards if still true; an alert already firing may still
    /// resolve), e.g. `[{ start = "45 23 * * *", duration = "30m", timezone =
    /// "America/New_York", reason = "IB Gateway nightly restart" }]`.
    #[serde(default)]
    pub maintenance: Vec<WindowConfig>,
}

fn default_message() -> String {
    "{check}: {message}".to_owned()
}

/// Placeholders a message template may use, besides `{details.KEY}`.
pub const PLACEHOLDERS: [&str; 8] = [
    "check", "rule", "severity", "status", "value", "unit", "label", "message",
];

/// Checks a message template's placeholders.
pub fn validate_template(template: &str) -> Result<(), String> {
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("`{{` without a closing `}}` in {template:?}"))?;
        let name = &after[..close];
        if !PLACEHOLDERS.contains(&name) && name.strip_prefix("details.").is_none_or(|k| k.is_empty()) {
            let mut m = format!("unknown placeholder `{{{name}}}`");
            if let Some(best) = crate::plugin::did_you_mean(name, PLACEHOLDERS) {
                m.push_str(&format!(" (did you mean `{{{best}}}`?)"));
            }
            m.push_str(&format!(
                "; placeholders: {{{}}}, {{details.KEY}}",
                PLACEHOLDERS.join("}, {")
            ));
            return Err(m);
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

/// Fills a message template from an observation.
pub fn render(template: &str, rule: &str, severity: Severity, o: &Observation) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            return out;
        };
        let name = &after[..close];
        let value = match name {
            "check" => o.id.clone(),
            "rule" => rule.to_owned(),
            "severity" => severity.as_str().to_owned(),
            "status" => o.status.as_str().to_owned(),
            "value" => o
                .value
                .map_or_else(|| "null".to_owned(), crate::thresholds::fmt_num),
            "unit" => o.unit.clone(),
            "label" => o.label.clone().unwrap_or_default(),
            "message" => o.message.clone(),
            other => match other.strip_prefix("details.").and_then(|k| o.details.get(k)) {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
                None => format!("{{{other}}}"),
            },
        };
        out.push_str(&value);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

/// A validated rule.
#[derive(Debug)]
pub struct Rule {
    /// As written.
    pub config: RuleConfig,
    /// The compiled condition.
    pub condition: Condition,
    /// Its maintenance windows, compiled.
    pub windows: Vec<Window>,
}

/// What the engine needs to know of each check.
#[derive(Debug, Clone, Default)]
pub struct CheckMeta {
    /// The checks it depends on.
    pub depends_on: Vec<String>,
    /// Its maintenance windows.
    pub windows: Vec<Window>,
}

impl Rule {
    /// Whether the rule watches this check.
    pub fn selects(&self, check_id: &str, kind: &str) -> bool {
        self.config.checks.iter().any(|c| c == check_id) || self.config.kinds.iter().any(|k| k == kind)
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "lowercase")]
enum Phase {
    Inactive,
    Pending {
        since: DateTime<Utc>,
    },
    Suppressed {
        since: DateTime<Utc>,
        cause: String,
        message: String,
    },
    Firing(Firing),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Firing {
    alert_id: String,
    started_at: DateTime<Utc>,
    last_true: DateTime<Utc>,
    last_sent: DateTime<Utc>,
    acknowledged: bool,
    message: String,
}

/// The rule engine.
#[derive(Debug)]
pub struct Engine {
    host: String,
    rules: Vec<Rule>,
    checks: HashMap<String, CheckMeta>,
    statuses: HashMap<String, Status>,
    phases: BTreeMap<(usize, String), Phase>,
    /// Set when a pair changes phase (or an event is emitted): the state should be saved.
    changed: bool,
}

impl Engine {
    /// An engine for `rules`, with what it needs to know of each check.
    pub fn new(rules: Vec<Rule>, checks: HashMap<String, CheckMeta>) -> Self {
        Engine {
            host: hostname(),
            rules,
            checks,
            statuses: HashMap::new(),
            phases: BTreeMap::new(),
            changed: false,
        }
    }

    /// An engine for a loaded config: takes its rules and reads its checks'
    /// `depends_on` and maintenance windows.
    pub fn for_config(config: &mut crate::config::Config) -> Self {
        let checks = config
            .checks
            .iter()
            .map(|c| {
                let meta = CheckMeta {
                    depends_on: c.depends_on.clone(),
                    windows: c.maintenance.clone(),
                };
                (c.id.clone(), meta)
            })
            .collect();
        Engine::new(std::mem::take(&mut config.rules), checks)
    }

    /// Why alerts of `rule` on `check` are held back at `now`: a maintenance window of
    /// the rule or the check, or a dependency that is not ok (or not yet seen).
    fn suppression(&self, rule: &Rule, check: &str, now: DateTime<Utc>) -> Option<String> {
        let meta = self.checks.get(check);
        if let Some(cause) = window::open_window(&rule.windows, now)
            .or_else(|| meta.and_then(|m| window::open_window(&m.windows, now)))
        {
            return Some(cause);
        }
        let deps = &meta?.depends_on;
        let causes: Vec<String> = deps
            .iter()
            .filter_map(|d| match self.statuses.get(d) {
                Some(Status::Ok) => None,
                Some(s) => Some(format!("{d} is {s}")),
                None => Some(format!("{d} has not reported yet")),
            })
            .collect();
        (!causes.is_empty()).then(|| format!("held back: {}", causes.join(", ")))
    }

    /// Feeds one observation; returns the alert events it causes.
    pub fn observe(&mut self, o: &Observation, now: DateTime<Utc>) -> Vec<AlertEvent> {
        self.statuses.insert(o.id.clone(), o.status);
        let mut events = Vec::new();
        for index in 0..self.rules.len() {
            let rule = &self.rules[index];
            if !rule.selects(&o.id, &o.kind) {
                continue;
            }
            let holds = if o.status == Status::Unknown {
                match rule.config.on_unknown {
                    UnknownPolicy::Hold => None,
                    UnknownPolicy::Fire => Some(true),
                    UnknownPolicy::Resolve => Some(false),
                }
            } else {
                match rule.condition.eval(o) {
                    Ok(b) => Some(b),
                    Err(e) => {
                        tracing::debug!(rule = %rule.config.name, check = %o.id, "condition not evaluated: {e}");
                        None
                    }
                }
            };
            let Some(holds) = holds else { continue };
            let key = (index, o.id.clone());
            let phase = self.phases.get(&key).cloned().unwrap_or(Phase::Inactive);
            let before = std::mem::discriminant(&phase);
            let next = self.step(index, phase, holds, o, now, &mut events);
            self.changed |= before != std::mem::discriminant(&next);
            self.phases.insert(key, next);
        }
        self.changed |= !events.is_empty();
        events
    }

    /// Whether the state changed since the last call (and should be saved).
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    fn step(
        &self,
        index: usize,
        phase: Phase,
        holds: bool,
        o: &Observation,
        now: DateTime<Utc>,
        events: &mut Vec<AlertEvent>,
    ) -> Phase {
        let rule = &self.rules[index].config;
        let message = render(&rule.message, &rule.name, rule.severity, o);
        let event = |f: &Firing, state: AlertState, reminder: bool| AlertEvent {
            alert_id: f.alert_id.clone(),
            rule: rule.name.clone(),
            check_id: o.id.clone(),
            severity: rule.severity,
            state,
            message: message.clone(),
            value: o.value,
            started_at: f.started_at,
            event_at: now,
            host: self.host.clone(),
            reminder,
        };
        let for_ = chrono::Duration::from_std(rule.for_).unwrap_or_default();
        let fire_or_hold = |since: DateTime<Utc>, events: &mut Vec<AlertEvent>| -> Phase {
            if now - since < for_ {
                return Phase::Pending { since };
            }
            if let Some(cause) = self.suppression(&self.rules[index], &o.id, now) {
                return Phase::Suppressed {
                    since,
                    cause,
                    message: message.clone(),
                };
            }
            let f = Firing {
                alert_id: format!("{}.{}.{}", rule.name, o.id, now.timestamp_millis()),
                started_at: now,
                last_true: now,
                last_sent: now,
                acknowledged: false,
                message: message.clone(),
            };
            events.push(event(&f, AlertState::Firing, false));
            Phase::Firing(f)
        };
        match (phase, holds) {
            (Phase::Inactive, true) => fire_or_hold(now, events),
            (Phase::Pending { since } | Phase::Suppressed { since, .. }, true) => fire_or_hold(since, events),
            (Phase::Inactive | Phase::Pending { .. } | Phase::Suppressed { .. }, false) => Phase::Inactive,
            (Phase::Firing(mut f), true) => {
                f.last_true = now;
                f.message = message.clone();
                if let Some(repeat) = rule.repeat
                    && !f.acknowledged
                    && self.suppression(&self.rules[index], &o.id, now).is_none()
                    && now - f.last_sent >= chrono::Duration::from_std(repeat).unwrap_or_default()
                {
                    f.last_sent = now;
                    events.push(event(&f, AlertState::Firing, true));
                }
                Phase::Firing(f)
            }
            (Phase::Firing(f), false) => {
                let keep = chrono::Duration::from_std(rule.keep_firing_for).unwrap_or_default();
                if now - f.last_true >= keep {
                    events.push(event(&f, AlertState::Resolved, false));
                    Phase::Inactive
                } else {
                    Phase::Firing(f)
                }
            }
        }
    }

    /// Acknowledges a firing alert: its reminders stop until it resolves (the resolve
    /// is still sent). Returns the event, or `None` if no such alert fires.
    pub fn acknowledge(&mut self, alert_id: &str, now: DateTime<Utc>) -> Option<AlertEvent> {
        for ((index, check), phase) in self.phases.iter_mut() {
            if let Phase::Firing(f) = phase
                && f.alert_id == alert_id
            {
                if f.acknowledged {
                    return None;
                }
                f.acknowledged = true;
                self.changed = true;
                let rule = &self.rules[*index].config;
                return Some(AlertEvent {
                    alert_id: f.alert_id.clone(),
                    rule: rule.name.clone(),
                    check_id: check.clone(),
                    severity: rule.severity,
                    state: AlertState::Acknowledged,
                    message: f.message.clone(),
                    value: None,
                    started_at: f.started_at,
                    event_at: now,
                    host: self.host.clone(),
                    reminder: false,
                });
            }
        }
        None
    }

    /// The alerts firing now, worst first.
    pub fn active(&self) -> Vec<ActiveAlert> {
        let mut out: Vec<ActiveAlert> = self
            .phases
            .iter()
            .filter_map(|((index, check), phase)| match phase {
                Phase::Firing(f) => {
                    let rule = &self.rules[*index].config;
                    Some(ActiveAlert {
                        alert_id: f.alert_id.clone(),
                        rule: rule.name.clone(),
                        check_id: check.clone(),
                        severity: rule.severity,
                        message: f.message.clone(),
                        started_at: f.started_at,
                        acknowledged: f.acknowledged,
                    })
                }
                _ => None,
            })
            .collect();
        out.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.started_at.cmp(&b.started_at)));
        out
    }

    /// The conditions that hold but are held back by a dependency.
    pub fn suppressed(&self) -> Vec<SuppressedAlert> {
        self.phases
            .iter()
            .filter_map(|((index, check), phase)| match phase {
                Phase::Suppressed {
                    since,
                    cause,
                    message,
                } => {
                    let rule = &self.rules[*index].config;
                    Some(SuppressedAlert {
                        rule: rule.name.clone(),
                        check_id: check.clone(),
                        severity: rule.severity,
                        message: message.clone(),
                        cause: cause.clone(),
                        since: *since,
                    })
                }
                _ => None,
            })
            .collect()
    }
}

/// The engine's state as saved to disk: every non-inactive (rule, check) pair, keyed by
/// names (not positions) so it survives restarts and config reloads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EngineState {
    entries: Vec<StateEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct StateEntry {
    rule: String,
    check: String,
    #[serde(flatten)]
    phase: Phase,
}

impl EngineState {
    /// Number of saved (rule, check) pairs.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is saved.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Engine {
    /// What to save: every pending, suppressed or firing pair.
    pub fn state(&self) -> EngineState {
        EngineState {
            entries: self
                .phases
                .iter()
                .filter(|(_, p)| **p != Phase::Inactive)
                .map(|((index, check), phase)| StateEntry {
                    rule: self.rules[*index].config.name.clone(),
                    check: check.clone(),
                    phase: phase.clone(),
                })
                .collect(),
        }
    }

    /// Takes over saved state: pairs whose rule still exists (and selects the check) go
    /// on where they were — a firing alert is not fired again, and resolves on the next
    /// observation that clears it. Returns how many pairs were restored.
    pub fn restore(&mut self, state: EngineState) -> usize {
        let mut restored = 0;
        for entry in state.entries {
            if let Some(index) = self.rules.iter().position(|r| r.config.name == entry.rule) {
                self.phases.insert((index, entry.check), entry.phase);
                restored += 1;
            }
        }
        restored
    }
}
