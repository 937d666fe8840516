//! The rule engine: which observations become alerts, and when.
//!
//! Each `[[rules]]` entry selects checks (by id or kind) and fires when its condition
//! holds. For every (rule, check) pair the engine keeps a small state machine —
//! inactive → pending (`for`) → firing → resolved — with `keep_firing_for` against
//! flapping, `repeat` reminders, acknowledgement, and `depends_on` suppression. The
//! engine is pure: it is fed observations and the time, and returns alert events.

pub mod config;
pub mod expr;
pub mod template;
pub mod window;

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::alert::{ActiveAlert, AlertEvent, AlertState, SuppressedAlert, hostname};
use crate::observation::{Observation, Status};
pub use config::{CHECK_UNKNOWN, Rule, RuleConfig, UnknownPolicy};
pub use expr::Condition;
pub use template::{PLACEHOLDERS, render, validate_template};
pub use window::{Window, WindowConfig};

/// What the engine needs to know of each check.
#[derive(Debug, Clone, Default)]
pub struct CheckMeta {
    /// The checks it depends on.
    pub depends_on: Vec<String>,
    /// Its maintenance windows.
    pub windows: Vec<Window>,
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
            host: hostname().to_owned(),
            rules,
            checks,
            statuses: HashMap::new(),
            phases: BTreeMap::new(),
            changed: false,
        }
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
        let pending = o.is_pending();
        if !pending {
            self.statuses.insert(o.id.clone(), o.status);
        }
        let mut events = Vec::new();
        for index in 0..self.rules.len() {
            let rule = &self.rules[index];
            if !rule.selects(&o.id, &o.kind) || (pending && !rule.sees_pending) {
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
        let for_ = chrono::Duration::from_std(*rule.for_).unwrap_or_default();
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
                    && now - f.last_sent >= chrono::Duration::from_std(*repeat).unwrap_or_default()
                {
                    f.last_sent = now;
                    events.push(event(&f, AlertState::Firing, true));
                }
                Phase::Firing(f)
            }
            (Phase::Firing(f), false) => {
                let keep = chrono::Duration::from_std(*rule.keep_firing_for).unwrap_or_default();
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
            // By name, and for rules that name their checks (the built-in check_unknown
            // is one rule per check), by check too.
            let same = |r: &Rule| {
                r.config.name == entry.rule
                    && (r.config.checks.is_empty()
                        || !r.config.kinds.is_empty()
                        || r.config.checks.contains(&entry.check))
            };
            if let Some(index) = self.rules.iter().position(same) {
                self.phases.insert((index, entry.check), entry.phase);
                restored += 1;
            }
        }
        restored
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use chrono::TimeZone;

    use super::*;
    use crate::observation::Reading;

    fn rule(name: &str, when: &str, extra: &str) -> Rule {
        let text = format!(
            "name = \"{name}\"\nchecks = [\"db\"]\nwhen = \"{when}\"\nseverity = \"WARNING\"\n{extra}"
        );
        toml::from_str::<RuleConfig>(&text).unwrap().compile().unwrap()
    }

    fn at(s: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap() + chrono::Duration::seconds(s)
    }

    fn obs(id: &str, status: Status, value: f64, s: i64) -> Observation {
        let r = Reading::new(status, "r").with_value(value, "s");
        Observation::from_reading(id, "test", r, at(s), Default::default())
    }

    #[test]
    fn a_pending_condition_fires_once_after_for_and_marks_the_state_changed() {
        let mut e = Engine::new(vec![rule("slow", "value > 10", "for = \"30s\"")], HashMap::new());
        assert!(e.observe(&obs("db", Status::Ok, 20.0, 0), at(0)).is_empty());
        assert!(e.take_changed(), "inactive -> pending is saved");
        assert!(!e.take_changed());
        assert!(e.observe(&obs("db", Status::Ok, 20.0, 29), at(29)).is_empty());
        assert!(!e.take_changed(), "still pending: nothing to save");
        let fired = e.observe(&obs("db", Status::Ok, 20.0, 30), at(30));
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].started_at, at(30));
        assert!(
            e.observe(&obs("db", Status::Ok, 20.0, 31), at(31)).is_empty(),
            "no repeat configured"
        );
        assert_eq!(
            e.observe(&obs("db", Status::Ok, 1.0, 32), at(32))[0].state,
            AlertState::Resolved
        );
    }

    #[test]
    fn saved_state_is_keyed_by_rule_name_not_position() {
        let mut e = Engine::new(
            vec![rule("a", "value > 10", ""), rule("b", "value > 100", "")],
            HashMap::new(),
        );
        e.observe(&obs("db", Status::Ok, 50.0, 0), at(0));
        let state = e.state();
        assert_eq!(state.len(), 1);
        // The rules come back in another order, and one more: `a` still fires, once.
        let mut after = Engine::new(
            vec![rule("c", "value > 0", ""), rule("a", "value > 10", "")],
            HashMap::new(),
        );
        assert_eq!(after.restore(state), 1);
        assert_eq!(after.active().len(), 1);
        assert_eq!(after.active()[0].rule, "a");
        let events = after.observe(&obs("db", Status::Ok, 50.0, 1), at(1));
        assert_eq!(
            events.iter().map(|e| e.rule.as_str()).collect::<Vec<_>>(),
            ["c"],
            "a is not re-sent"
        );
    }

    #[test]
    fn a_dependency_not_yet_seen_holds_alerts_back() {
        let meta = CheckMeta {
            depends_on: vec!["ib".into()],
            windows: Vec::new(),
        };
        let mut e = Engine::new(
            vec![rule("slow", "value > 10", "")],
            HashMap::from([("db".to_owned(), meta)]),
        );
        assert!(e.observe(&obs("db", Status::Ok, 20.0, 0), at(0)).is_empty());
        assert_eq!(e.suppressed()[0].cause, "held back: ib has not reported yet");
        e.observe(&obs("ib", Status::Critical, 0.0, 1), at(1));
        e.observe(&obs("db", Status::Ok, 20.0, 2), at(2));
        assert_eq!(e.suppressed()[0].cause, "held back: ib is critical");
        e.observe(&obs("ib", Status::Ok, 0.0, 3), at(3));
        let fired = e.observe(&obs("db", Status::Ok, 20.0, 4), at(4));
        assert_eq!(fired.len(), 1, "released once the dependency is ok");
        assert_eq!(fired[0].started_at, at(4));
    }
}

#[cfg(test)]
mod check_unknown {
    use std::collections::HashMap;
    use std::time::Duration;

    use chrono::TimeZone;

    use super::*;
    use crate::alert::Severity;
    use crate::observation::Reading;

    fn at(s: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap() + chrono::Duration::seconds(s)
    }

    fn obs(status: Status, s: i64) -> Observation {
        let r = Reading::new(status, "cannot read commit 7 of positions: corrupt");
        Observation::from_reading("positions", "delta_freshness", r, at(s), Default::default())
    }

    fn engine(user: Vec<Rule>) -> Engine {
        let mut rules = user;
        rules.push(Rule::check_unknown(
            "positions",
            Duration::from_secs(120),
            Severity::Warning,
        ));
        Engine::new(rules, HashMap::new())
    }

    #[test]
    fn a_check_unknown_for_unknown_after_pages_and_resolves_at_its_next_status() {
        let mut e = engine(Vec::new());
        assert!(e.observe(&obs(Status::Unknown, 0), at(0)).is_empty());
        assert!(e.observe(&obs(Status::Unknown, 119), at(119)).is_empty());
        let fired = e.observe(&obs(Status::Unknown, 120), at(120));
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].rule, "check_unknown");
        assert_eq!(fired[0].severity, Severity::Warning);
        assert_eq!(
            fired[0].message,
            "vitals cannot see positions: cannot read commit 7 of positions: corrupt"
        );
        let resolved = e.observe(&obs(Status::Critical, 130), at(130));
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].state, AlertState::Resolved);
    }

    #[test]
    fn a_check_that_never_runs_pages_after_unknown_after_from_start() {
        let mut e = engine(Vec::new());
        let pending = Observation::pending("positions", "delta_freshness", at(0));
        assert!(e.observe(&pending, at(0)).is_empty());
        let fired = e.observe(
            &Observation::pending("positions", "delta_freshness", at(120)),
            at(120),
        );
        assert_eq!(fired.len(), 1);
        assert_eq!(
            fired[0].message,
            "vitals cannot see positions: waiting for its first run"
        );
    }

    #[test]
    fn user_rules_never_see_the_pending_placeholder() {
        let text = "name = \"anything\"\nchecks = [\"positions\"]\nwhen = \"true\"\nseverity = \"CRITICAL\"\non_unknown = \"fire\"\n";
        let user = toml::from_str::<RuleConfig>(text).unwrap().compile().unwrap();
        let mut e = engine(vec![user]);
        let pending = Observation::pending("positions", "delta_freshness", at(0));
        assert!(
            e.observe(&pending, at(0)).is_empty(),
            "a pending check fires no user rule"
        );
        assert_eq!(
            e.observe(&obs(Status::Unknown, 1), at(1)).len(),
            1,
            "a real unknown does"
        );
    }
}
