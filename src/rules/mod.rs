//! The rule engine: which observations become alerts, and when.
//!
//! Each `[[rules]]` entry selects checks (by id or kind) and fires when its condition
//! holds. For every (rule, check) pair the engine keeps a small state machine —
//! inactive → pending (`for`) → firing → resolved — with `keep_firing_for` against
//! flapping, `repeat` reminders, acknowledgement, and holds (maintenance windows, market
//! hours, `depends_on`). The engine is pure: it is fed observations and the time, and
//! returns alert events. Time-driven transitions (`for` elapsing, a `keep_firing_for`
//! resolve, a `repeat` reminder, a hold lifting) happen at their exact times, between
//! two observations too: [`Engine::advance`] runs them, judged on the latest
//! observation of the check.

mod active;
pub mod config;
pub mod expr;
mod held;
mod remedy;
mod state;
pub mod template;
pub mod window;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use crate::alert::RemediationView;
use crate::alert::{AlertEvent, AlertState, hostname};
use crate::observation::{Observation, Status};
pub use config::{
    CHECK_UNKNOWN, NoValuePolicy, REMEDIATION_FAILED, Remediate, Rule, RuleConfig, SINK_FAILING,
    UnknownPolicy,
};
pub use expr::Condition;
pub use held::HeldRecord;
pub use remedy::Attempt;
pub use state::EngineState;
pub use template::{PLACEHOLDERS, render, validate_template};
pub use window::{Window, WindowConfig};

use crate::market::MarketHours;

/// The message of an alert fired on a red check whose observation lacks what the
/// condition reads.
const NO_VALUE_MESSAGE: &str = "{check}: {message}";

/// What the engine needs to know of each check.
#[derive(Debug, Clone, Default)]
pub struct CheckMeta {
    /// The checks it depends on.
    pub depends_on: Vec<String>,
    /// Its maintenance windows.
    pub windows: Vec<Window>,
    /// Its market hours.
    pub market: Option<MarketHours>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "lowercase")]
enum Phase {
    Inactive,
    Pending {
        since: DateTime<Utc>,
    },
    #[serde(rename = "held", alias = "suppressed")]
    Held {
        since: DateTime<Utc>,
        cause: String,
        message: String,
        /// When the cause of the hold ends by itself (a window closing, the market
        /// opening, a closed day ending); none for a dependency, which lifts at an
        /// observation.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<DateTime<Utc>>,
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
    /// Whether the condition held at the latest observation (false: counting down
    /// `keep_firing_for`).
    #[serde(default = "yes")]
    holding: bool,
}

fn yes() -> bool {
    true
}

/// The rule engine.
#[derive(Debug)]
pub struct Engine {
    host: String,
    rules: Vec<Rule>,
    checks: HashMap<String, CheckMeta>,
    statuses: HashMap<String, Status>,
    phases: BTreeMap<(usize, String), Phase>,
    /// The latest observation of each check: what time-driven transitions are judged on.
    last: HashMap<String, Observation>,
    /// Set when a pair changes phase (or an event is emitted): the state should be saved.
    changed: bool,
    /// Holds as they begin, when asked for ([`Engine::record_holds`]).
    holds: Option<Vec<HeldRecord>>,
    /// When pairs are next due, soonest first (an entry whose pair has moved on since
    /// is skipped when reached): `advance` looks at the pairs that are due, never at
    /// all of them, so a pass costs what is due, not what is configured.
    dues: BinaryHeap<Reverse<(DateTime<Utc>, usize, String)>>,
    /// The due time each pair is in `dues` for (so an unchanged one is not pushed
    /// again at every observation).
    scheduled: HashMap<(usize, String), DateTime<Utc>>,
    /// The rules that select each check by id, and each kind, in rule order: an
    /// observation is judged by those, not by every rule (20,000 checks with their
    /// `check_unknown` rules: linear, not quadratic).
    by_check: HashMap<String, Vec<usize>>,
    by_kind: HashMap<String, Vec<usize>>,
    /// Each remediating rule's built-in `remediation_failed` (rule index → its index).
    failure_rules: HashMap<usize, usize>,
    /// The remediation of each remediating pair that has fired.
    remedies: BTreeMap<(usize, String), remedy::Remedy>,
    /// Attempts asked for, not yet taken ([`Engine::take_attempts`]).
    attempts_out: Vec<Attempt>,
}

impl Engine {
    /// An engine for `rules`, with what it needs to know of each check.
    pub fn new(mut rules: Vec<Rule>, checks: HashMap<String, CheckMeta>) -> Self {
        // Each remediating rule's remediation_failed, after the others.
        let mut failure_rules = HashMap::new();
        for i in 0..rules.len() {
            if rules[i].config.remediate.is_some() {
                let failure =
                    Rule::remediation_failed(&rules[i].config.name, rules[i].config.remediation_severity);
                failure_rules.insert(i, rules.len());
                rules.push(failure);
            }
        }
        let mut by_check: HashMap<String, Vec<usize>> = HashMap::new();
        let mut by_kind: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, r) in rules.iter().enumerate() {
            for c in &r.config.checks {
                by_check.entry(c.clone()).or_default().push(i);
            }
            for k in &r.config.kinds {
                by_kind.entry(k.clone()).or_default().push(i);
            }
        }
        Engine {
            host: hostname().to_owned(),
            rules,
            checks,
            statuses: HashMap::new(),
            phases: BTreeMap::new(),
            last: HashMap::new(),
            changed: false,
            holds: None,
            dues: BinaryHeap::new(),
            scheduled: HashMap::new(),
            by_check,
            by_kind,
            failure_rules,
            remedies: BTreeMap::new(),
            attempts_out: Vec::new(),
        }
    }

    /// Names the host its events come from (`[server] name`).
    pub fn set_host(&mut self, host: &str) {
        host.clone_into(&mut self.host);
    }

    /// The rules that select this check, in rule order.
    fn selecting(&self, id: &str, kind: &str) -> Vec<usize> {
        let mut rules: Vec<usize> = self
            .by_check
            .get(id)
            .into_iter()
            .chain(self.by_kind.get(kind))
            .flatten()
            .copied()
            .collect();
        rules.sort_unstable();
        rules.dedup();
        rules
    }

    /// Every calendar the checks follow, with the checks following it (sorted by id),
    /// by calendar name.
    pub fn calendars(&self) -> Vec<(&MarketHours, Vec<String>)> {
        let mut by_name: BTreeMap<&str, (&MarketHours, Vec<String>)> = BTreeMap::new();
        for (id, meta) in &self.checks {
            if let Some(m) = &meta.market {
                by_name
                    .entry(m.calendar.name())
                    .or_insert((m, Vec::new()))
                    .1
                    .push(id.clone());
            }
        }
        by_name
            .into_values()
            .map(|(m, mut checks)| {
                checks.sort();
                (m, checks)
            })
            .collect()
    }

    /// When the pair is next due by itself: its phase's next step or its remediation.
    fn due(&self, key: &(usize, String), phase: &Phase) -> Option<DateTime<Utc>> {
        match (self.phase_due(key, phase), self.remedy_due(key)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Puts the pair in `dues` for its next due time, unless it is there already.
    fn schedule(&mut self, key: &(usize, String)) {
        let Some(phase) = self.phases.get(key) else {
            return;
        };
        if let Some(due) = self.due(key, phase)
            && self.scheduled.get(key) != Some(&due)
        {
            self.scheduled.insert(key.clone(), due);
            self.dues.push(Reverse((due, key.0, key.1.clone())));
        }
    }

    /// When the pair's phase next changes by itself, without an observation.
    fn phase_due(&self, (index, check): &(usize, String), phase: &Phase) -> Option<DateTime<Utc>> {
        if !self.last.contains_key(check) {
            return None;
        }
        let rule = &self.rules[*index].config;
        let span = |d: std::time::Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
        match phase {
            Phase::Inactive => None,
            Phase::Pending { since } => since.checked_add_signed(span(*rule.for_)),
            Phase::Held { until, .. } => *until,
            Phase::Firing(f) if f.holding => {
                let repeat = rule.repeat.filter(|r| !r.is_zero())?;
                (!f.acknowledged).then(|| f.last_sent.checked_add_signed(span(*repeat)))?
            }
            Phase::Firing(f) => f.last_true.checked_add_signed(span(*rule.keep_firing_for)),
        }
    }

    /// Runs every time-driven transition due before `now`, each at its own time and in
    /// time order: `for` elapsing, a `keep_firing_for` resolve, a `repeat` reminder, a
    /// window closing or the market opening. Returns the events. A step due exactly at
    /// `now` waits: an observation at that same moment comes first (it is the truth
    /// at that moment), and the step runs at the next later time.
    pub fn advance(&mut self, now: DateTime<Utc>) -> Vec<AlertEvent> {
        let mut events = Vec::new();
        // The soonest due pair, while it is due before `now`.
        while let Some(Reverse((at, index, check))) = self.dues.peek().cloned() {
            if at >= now {
                break;
            }
            self.dues.pop();
            let key = (index, check);
            if self.scheduled.get(&key) == Some(&at) {
                self.scheduled.remove(&key);
            }
            let (Some(phase), Some(o)) = (self.phases.get(&key).cloned(), self.last.get(&key.1)) else {
                continue;
            };
            // An entry of a pair that has moved on since it was pushed.
            if self.due(&key, &phase) != Some(at) {
                continue;
            }
            if self.phase_due(&key, &phase) == Some(at) {
                let o = o.clone();
                let holds = match &phase {
                    Phase::Firing(f) => f.holding,
                    _ => true,
                };
                let next = self.step(key.0, phase.clone(), holds, &o, at, &mut events);
                self.apply(key.clone(), &phase, next, at, &mut events);
            }
            if self.remedy_due(&key) == Some(at) {
                self.remedy_step(&key, at, &mut events);
            }
        }
        self.changed |= !events.is_empty();
        events
    }

    /// Stores a pair's next phase, noting a change and a hold that begins, and keeps
    /// its remediation in step.
    fn apply(
        &mut self,
        key: (usize, String),
        before: &Phase,
        next: Phase,
        now: DateTime<Utc>,
        events: &mut Vec<AlertEvent>,
    ) {
        self.changed |= std::mem::discriminant(before) != std::mem::discriminant(&next);
        self.arm(&key, before, &next, now, events);
        if let Some(due) = self.due(&key, &next)
            && self.scheduled.get(&key) != Some(&due)
        {
            self.scheduled.insert(key.clone(), due);
            self.dues.push(Reverse((due, key.0, key.1.clone())));
        }
        if let (Some(holds), Phase::Held { cause, .. }) = (self.holds.as_mut(), &next) {
            let same = matches!(before, Phase::Held { cause: was, .. } if was == cause);
            if !same {
                holds.push(HeldRecord {
                    rule: self.rules[key.0].config.name.clone(),
                    check: key.1.clone(),
                    cause: cause.clone(),
                    at: now,
                });
            }
        }
        self.phases.insert(key, next);
    }

    /// Feeds one observation; returns the alert events it causes.
    pub fn observe(&mut self, o: &Observation, now: DateTime<Utc>) -> Vec<AlertEvent> {
        let mut events = self.advance(now);
        let pending = o.is_pending();
        if !pending {
            match self.statuses.get_mut(&o.id) {
                Some(s) => *s = o.status,
                None => {
                    self.statuses.insert(o.id.clone(), o.status);
                }
            }
        }
        // Reusing the previous observation's allocations.
        match self.last.get_mut(&o.id) {
            Some(last) => last.clone_from(o),
            None => {
                self.last.insert(o.id.clone(), o.clone());
            }
        }
        for index in self.selecting(&o.id, &o.kind) {
            let rule = &self.rules[index];
            if pending && !rule.sees_pending {
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
                    // The observation lacks what the condition reads: a red check still
                    // pages (`on_no_value`).
                    Err(e) => match (o.status, rule.config.on_no_value) {
                        (Status::Critical, NoValuePolicy::Fire) => Some(true),
                        (Status::Critical, NoValuePolicy::Resolve) => Some(false),
                        _ => {
                            tracing::debug!(rule = %rule.config.name, check = %o.id, "condition not evaluated: {e}");
                            None
                        }
                    },
                }
            };
            let Some(holds) = holds else { continue };
            let key = (index, o.id.clone());
            let phase = self.phases.get(&key).cloned().unwrap_or(Phase::Inactive);
            let next = self.step(index, phase.clone(), holds, o, now, &mut events);
            self.apply(key, &phase, next, now, &mut events);
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
        // Rendered only when an event or a stored phase needs it (most observations
        // change nothing). A condition that cannot judge the observation (it fires on a
        // red check with no value) would render its template with nothing in it: the
        // check's own words say what is wrong.
        let message = || {
            let template = match self.rules[index].condition.eval(o) {
                Err(_) if o.status == Status::Critical => NO_VALUE_MESSAGE,
                _ => rule.message.as_str(),
            };
            render(template, &rule.name, rule.severity, o)
        };
        let event = |f: &Firing, state: AlertState, reminder: bool, message: String| {
            let e = AlertEvent::new(&rule.name, &o.id, rule.severity, state, message, now)
                .of_episode(&f.alert_id, f.started_at)
                .with_value(o.value)
                .with_label(o.label.clone())
                .on_host(&self.host);
            if reminder { e.as_reminder() } else { e }
        };
        let for_ = chrono::Duration::from_std(*rule.for_).unwrap_or_default();
        let fire_or_hold = |since: DateTime<Utc>, events: &mut Vec<AlertEvent>| -> Phase {
            if now - since < for_ {
                return Phase::Pending { since };
            }
            if let Some((cause, until)) = self.hold(&self.rules[index], &o.id, now) {
                return Phase::Held {
                    since,
                    cause,
                    message: message(),
                    until,
                };
            }
            let text = message();
            let f = Firing {
                alert_id: crate::alert::episode_id(&rule.name, &o.id, now),
                started_at: now,
                last_true: now,
                last_sent: now,
                acknowledged: false,
                message: text.clone(),
                holding: true,
            };
            events.push(event(&f, AlertState::Firing, false, text));
            Phase::Firing(f)
        };
        match (phase, holds) {
            (Phase::Inactive, true) => fire_or_hold(now, events),
            // A hold that lifts by itself at `until` (a window, the market) stands until
            // then: the cause is not looked up again at every observation.
            (
                Phase::Held {
                    since,
                    cause,
                    until: Some(until),
                    ..
                },
                true,
            ) if now < until => Phase::Held {
                since,
                cause,
                message: message(),
                until: Some(until),
            },
            (Phase::Pending { since } | Phase::Held { since, .. }, true) => fire_or_hold(since, events),
            (Phase::Inactive | Phase::Pending { .. } | Phase::Held { .. }, false) => Phase::Inactive,
            (Phase::Firing(mut f), true) => {
                f.last_true = now;
                f.holding = true;
                f.message = message();
                if let Some(repeat) = rule.repeat
                    && !f.acknowledged
                    && now - f.last_sent >= chrono::Duration::from_std(*repeat).unwrap_or_default()
                    && self.hold(&self.rules[index], &o.id, now).is_none()
                {
                    f.last_sent = now;
                    events.push(event(&f, AlertState::Firing, true, f.message.clone()));
                }
                Phase::Firing(f)
            }
            (Phase::Firing(mut f), false) => {
                let keep = chrono::Duration::from_std(*rule.keep_firing_for).unwrap_or_default();
                if now - f.last_true >= keep {
                    // Why it fired, then what resolved it: never a resolve that reads
                    // like the problem ("stale (0.19s old)").
                    let text = format!("{} — resolved: {}", f.message, o.message);
                    events.push(event(&f, AlertState::Resolved, false, text));
                    Phase::Inactive
                } else {
                    f.holding = false;
                    Phase::Firing(f)
                }
            }
        }
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
    fn time_driven_transitions_happen_at_their_exact_times_between_observations() {
        let mut e = Engine::new(
            vec![rule(
                "slow",
                "value > 10",
                "for = \"30s\"\nkeep_firing_for = \"20s\"\nrepeat = \"10s\"",
            )],
            HashMap::new(),
        );
        assert!(e.observe(&obs("db", Status::Ok, 20.0, 0), at(0)).is_empty());
        // The next observation comes at 55 s: `for` elapsed at 30, reminders at 40, 50.
        let events = e.observe(&obs("db", Status::Ok, 20.0, 55), at(55));
        let times: Vec<_> = events.iter().map(|e| (e.event_at, e.reminder)).collect();
        assert_eq!(times, [(at(30), false), (at(40), true), (at(50), true)]);
        assert_eq!(events[0].started_at, at(30));
        // Cleared at 58; keep_firing_for resolves at 55 + 20 = 75 (the last time it
        // held), with no reminder while clearing.
        assert!(e.observe(&obs("db", Status::Ok, 1.0, 58), at(58)).is_empty());
        let events = e.advance(at(200));
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].state, AlertState::Resolved);
        assert_eq!(events[0].event_at, at(75));
        assert!(e.advance(at(400)).is_empty());
    }

    #[test]
    fn market_hours_hold_alerts_until_the_open_plus_grace_and_name_the_cause() {
        use crate::market::{Calendar, MarketHours};
        let nyse = std::sync::Arc::new(Calendar::built_in("nyse").unwrap());
        let meta = CheckMeta {
            market: Some(MarketHours::new(nyse, crate::duration::Span::secs(300))),
            ..Default::default()
        };
        let mut e = Engine::new(
            vec![rule("stale", "value > 60", "")],
            HashMap::from([("db".to_owned(), meta)]),
        );
        e.record_holds();
        let ny = |d: u32, h: u32, m: u32| {
            chrono_tz::America::New_York
                .with_ymd_and_hms(2026, 11, d, h, m, 0)
                .unwrap()
                .with_timezone(&Utc)
        };
        let stale = |t: DateTime<Utc>| {
            let r = Reading::new(Status::Warning, "old").with_value(500.0, "s");
            Observation::from_reading("db", "test", r, t, Default::default())
        };
        // Stale from Wednesday's close through Thanksgiving: nothing fires.
        assert!(e.observe(&stale(ny(25, 16, 30)), ny(25, 16, 30)).is_empty());
        assert!(e.observe(&stale(ny(26, 12, 0)), ny(26, 12, 0)).is_empty());
        assert_eq!(e.held()[0].cause, "market closed: Thanksgiving Day");
        // Still stale at Friday's open: it fires when the grace ends, 09:35, exactly.
        assert!(e.observe(&stale(ny(27, 9, 31)), ny(27, 9, 31)).is_empty());
        let fired = e.advance(ny(27, 10, 0));
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].event_at, ny(27, 9, 35));
        let causes: Vec<String> = e.take_holds().into_iter().map(|h| h.cause).collect();
        assert_eq!(
            causes,
            [
                "market closed: after the close 16:00",
                "market closed: Thanksgiving Day",
                "market closed: opens at 09:30",
                "market opening: grace until 09:35"
            ]
        );
    }

    #[test]
    fn a_dependency_not_yet_seen_holds_alerts_back() {
        let meta = CheckMeta {
            depends_on: vec!["ib".into()],
            windows: Vec::new(),
            market: None,
        };
        let mut e = Engine::new(
            vec![rule("slow", "value > 10", "")],
            HashMap::from([("db".to_owned(), meta)]),
        );
        assert!(e.observe(&obs("db", Status::Ok, 20.0, 0), at(0)).is_empty());
        assert_eq!(e.held()[0].cause, "ib has not reported yet");
        e.observe(&obs("ib", Status::Critical, 0.0, 1), at(1));
        e.observe(&obs("db", Status::Ok, 20.0, 2), at(2));
        assert_eq!(e.held()[0].cause, "ib is critical");
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
