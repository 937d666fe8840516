//! Remediation: a rule's `remediate` runs an action by itself while the rule's alert
//! fires, within safeguards — at most `max_attempts` within a sliding `window` per rule
//! and check (a new episode does not reset the count: a flapping condition cannot
//! loop), `cooldown` between attempts, none while the alert is held back (maintenance,
//! market closed, a dependency down) or paused by an operator. When the attempts are
//! used up and the condition still holds, the built-in `remediation_failed` fires; it
//! resolves with the alert. The engine only decides: it hands out [`Attempt`]s, which
//! the daemon performs (or records as a dry run) and a replay shows as simulated.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Engine, Phase};
use crate::alert::{AlertEvent, RemediationView};

/// One (rule, check) pair's remediation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct Remedy {
    /// The attempts within the window, oldest first.
    #[serde(default)]
    pub(super) attempts: Vec<DateTime<Utc>>,
    /// When the next attempt (or the finding that the attempts are used up) is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) next: Option<DateTime<Utc>>,
    /// The episode (alert id) it works for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) episode: Option<String>,
    /// Paused by an operator, for `episode`.
    #[serde(default)]
    pub(super) paused: bool,
    /// What the last attempt came to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) last_outcome: Option<String>,
}

/// An attempt the engine asks for: `action` of `check`, for `rule`.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    /// The remediating rule.
    pub rule: String,
    /// The check whose action runs.
    pub check: String,
    /// The action.
    pub action: String,
    /// Which attempt within the window (1-based)…
    pub number: u32,
    /// …of how many at most.
    pub of: u32,
    /// `dry_run`: record it, run nothing.
    pub dry_run: bool,
    /// The alert it is for.
    pub alert_id: String,
    /// When (virtual time in a replay).
    pub at: DateTime<Utc>,
}

impl Attempt {
    /// "auto force_sync, attempt 2 of 3"
    pub fn describe(&self) -> String {
        format!("auto {}, attempt {} of {}", self.action, self.number, self.of)
    }
}

type Key = (usize, String);

fn span(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl Engine {
    /// When the pair's remediation is next due.
    pub(super) fn remedy_due(&self, key: &Key) -> Option<DateTime<Utc>> {
        self.remedies.get(key)?.next
    }

    /// Keeps a remediating pair's schedule in step with its phase: a new episode
    /// starts its first attempt `after` later; a condition that holds again resumes
    /// (past the cooldown); anything but firing stops it and resolves its
    /// `remediation_failed`.
    pub(super) fn arm(
        &mut self,
        key: &Key,
        before: &Phase,
        next: &Phase,
        now: DateTime<Utc>,
        events: &mut Vec<AlertEvent>,
    ) {
        let Some(rem) = self.rules[key.0].config.remediate.clone() else {
            return;
        };
        match next {
            Phase::Firing(f) => {
                let r = self.remedies.entry(key.clone()).or_default();
                let new_episode = r.episode.as_deref() != Some(f.alert_id.as_str());
                if new_episode {
                    r.episode = Some(f.alert_id.clone());
                    r.paused = false;
                    r.next = None;
                }
                if !f.holding {
                    // Counting down keep_firing_for: nothing to fix.
                    r.next = None;
                } else if !r.paused && r.next.is_none() {
                    let earliest = if new_episode {
                        now.checked_add_signed(span(*rem.after)).unwrap_or(now)
                    } else {
                        now
                    };
                    let cooled = r
                        .attempts
                        .last()
                        .and_then(|t| t.checked_add_signed(span(*rem.cooldown)));
                    r.next = Some(cooled.map_or(earliest, |c| c.max(earliest)));
                }
            }
            _ => {
                if let Some(r) = self.remedies.get_mut(key) {
                    r.next = None;
                    r.episode = None;
                    r.paused = false;
                }
                if matches!(before, Phase::Firing(_)) {
                    self.resolve_failure(key, now, events);
                }
            }
        }
    }

    /// The pair's remediation at its due time `t`: an attempt, or (attempts used up,
    /// the condition still holding) `remediation_failed`.
    pub(super) fn remedy_step(&mut self, key: &Key, t: DateTime<Utc>, events: &mut Vec<AlertEvent>) {
        let Some(rem) = self.rules[key.0].config.remediate.clone() else {
            return;
        };
        let firing = match self.phases.get(key) {
            Some(Phase::Firing(f)) if f.holding => Some(f.alert_id.clone()),
            _ => None,
        };
        let held = self.hold(&self.rules[key.0], &key.1, t).is_some();
        let Some(r) = self.remedies.get_mut(key) else {
            return;
        };
        r.next = None;
        let Some(alert_id) = firing.filter(|_| !r.paused) else {
            return;
        };
        let window = span(*rem.window);
        r.attempts.retain(|a| t.signed_duration_since(*a) < window);
        let cooldown = span(*rem.cooldown);
        if held {
            // Not while held back: look again a cooldown later.
            r.next = t.checked_add_signed(cooldown);
        } else if let Some(cooled) = r.attempts.last().and_then(|a| a.checked_add_signed(cooldown))
            && cooled > t
        {
            r.next = Some(cooled);
        } else if (r.attempts.len() as u32) < rem.max_attempts {
            r.attempts.push(t);
            r.next = t.checked_add_signed(cooldown);
            self.attempts_out.push(Attempt {
                rule: self.rules[key.0].config.name.clone(),
                check: key.1.clone(),
                action: rem.action.clone(),
                number: r.attempts.len() as u32,
                of: rem.max_attempts,
                dry_run: rem.dry_run,
                alert_id,
                at: t,
            });
        } else {
            // Used up while the condition holds: page, and try again when the window
            // frees an attempt.
            r.next = r.attempts.first().and_then(|a| a.checked_add_signed(window));
            let text = format!(
                "auto {} on {} gave up after {} attempts within {}; the last: {}",
                rem.action,
                key.1,
                r.attempts.len(),
                crate::duration::format(*rem.window),
                r.last_outcome.as_deref().unwrap_or("no outcome yet")
            );
            self.fire_failure(key, text, t, events);
        }
        self.changed = true;
        self.schedule(key);
    }

    fn fire_failure(&mut self, key: &Key, text: String, t: DateTime<Utc>, events: &mut Vec<AlertEvent>) {
        let Some(&fi) = self.failure_rules.get(&key.0) else {
            return;
        };
        let fkey = (fi, key.1.clone());
        let phase = self.phases.get(&fkey).cloned().unwrap_or(Phase::Inactive);
        if matches!(phase, Phase::Firing(_)) {
            return;
        }
        let Some(mut o) = self.last.get(&key.1).cloned() else {
            return;
        };
        o.message = text;
        let next = self.step(fi, phase.clone(), true, &o, t, events);
        self.apply(fkey, &phase, next, t, events);
    }

    fn resolve_failure(&mut self, key: &Key, t: DateTime<Utc>, events: &mut Vec<AlertEvent>) {
        let Some(&fi) = self.failure_rules.get(&key.0) else {
            return;
        };
        let fkey = (fi, key.1.clone());
        let Some(phase @ Phase::Firing(_)) = self.phases.get(&fkey).cloned() else {
            return;
        };
        let Some(o) = self.last.get(&key.1).cloned() else {
            return;
        };
        let next = self.step(fi, phase.clone(), false, &o, t, events);
        self.apply(fkey, &phase, next, t, events);
    }

    /// The attempts asked for since the last call, in time order.
    pub fn take_attempts(&mut self) -> Vec<Attempt> {
        std::mem::take(&mut self.attempts_out)
    }

    /// What an attempt came to (the daemon reports it; `remediation_failed` says it).
    pub fn remediation_outcome(&mut self, rule: &str, check: &str, outcome: &str) {
        if let Some(r) = self
            .remedies
            .iter_mut()
            .find(|((i, c), _)| c == check && self.rules[*i].config.name == rule)
            .map(|(_, r)| r)
        {
            r.last_outcome = Some(outcome.chars().take(500).collect());
            self.changed = true;
        }
    }

    /// An operator acknowledged the alert `alert_id` (of a remediating rule, or its
    /// `remediation_failed`), or performed the action by hand: the attempts are counted
    /// afresh, so remediation may try again.
    fn recount(&mut self, key: &Key, now: DateTime<Utc>) {
        let holding = matches!(self.phases.get(key), Some(Phase::Firing(f)) if f.holding);
        let Some(r) = self.remedies.get_mut(key) else {
            return;
        };
        r.attempts.clear();
        if holding && !r.paused {
            r.next = Some(now);
        }
        self.changed = true;
        self.schedule(key);
    }

    /// After an acknowledgement of `(index, check)`: its remediation, or the one whose
    /// `remediation_failed` it is, counts afresh.
    pub(super) fn acknowledged(&mut self, index: usize, check: &str, now: DateTime<Utc>) {
        let remediating = match &self.rules[index].failure_of {
            Some(_) => self
                .failure_rules
                .iter()
                .find(|(_, f)| **f == index)
                .map(|(r, _)| *r),
            None => Some(index),
        };
        if let Some(r) = remediating {
            self.recount(&(r, check.to_owned()), now);
        }
    }

    /// An operator performed `action` of `check` by hand: the remediations running that
    /// action on that check count afresh.
    pub fn operator_acted(&mut self, check: &str, action: &str, now: DateTime<Utc>) {
        let keys: Vec<Key> = self
            .remedies
            .keys()
            .filter(|(i, c)| {
                c == check
                    && self.rules[*i]
                        .config
                        .remediate
                        .as_ref()
                        .is_some_and(|r| r.action == action)
            })
            .cloned()
            .collect();
        for key in keys {
            self.recount(&key, now);
        }
    }

    /// Pauses the remediation of the firing alert `alert_id` (until it resolves).
    /// Returns the rule, the check and the action, or `None` when no firing alert of a
    /// remediating rule has that id.
    pub fn pause_remediation(&mut self, alert_id: &str) -> Option<(String, String, String)> {
        let key = self.phases.iter().find_map(|(key, phase)| match phase {
            Phase::Firing(f) if f.alert_id == alert_id && self.rules[key.0].config.remediate.is_some() => {
                Some(key.clone())
            }
            _ => None,
        })?;
        let action = self.rules[key.0].config.remediate.as_ref()?.action.clone();
        let r = self.remedies.entry(key.clone()).or_default();
        r.paused = true;
        r.next = None;
        r.episode = Some(alert_id.to_owned());
        self.changed = true;
        Some((self.rules[key.0].config.name.clone(), key.1, action))
    }

    /// The remediation of a firing pair, as the page shows it.
    pub(super) fn remediation_view(&self, key: &Key) -> Option<RemediationView> {
        let rem = self.rules[key.0].config.remediate.as_ref()?;
        let r = self.remedies.get(key).cloned().unwrap_or_default();
        let gave_up = self
            .failure_rules
            .get(&key.0)
            .is_some_and(|fi| matches!(self.phases.get(&(*fi, key.1.clone())), Some(Phase::Firing(_))));
        Some(RemediationView {
            action: rem.action.clone(),
            attempts: r.attempts.len() as u32,
            max_attempts: rem.max_attempts,
            next_at: r.next,
            gave_up,
            paused: r.paused,
            dry_run: rem.dry_run,
            last_outcome: r.last_outcome,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use chrono::TimeZone;

    use super::*;
    use crate::alert::AlertState;
    use crate::observation::{Observation, Reading, Status};
    use crate::rules::{CheckMeta, REMEDIATION_FAILED, Rule, RuleConfig};

    fn at(s: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 15, 0, 0).unwrap() + chrono::Duration::seconds(s)
    }

    fn stale(age: f64, s: i64) -> Observation {
        let status = if age > 60.0 { Status::Critical } else { Status::Ok };
        let r = Reading::new(status, format!("{age}s old")).with_value(age, "s");
        Observation::from_reading("positions", "delta_freshness", r, at(s), Default::default())
    }

    fn engine(remediate: &str, meta: CheckMeta) -> Engine {
        let text = format!(
            "name = \"data_stale\"\nchecks = [\"positions\"]\nwhen = \"value > 60\"\nseverity = \"WARNING\"\n\
             remediate = {{ {remediate} }}\n"
        );
        let rule: Rule = toml::from_str::<RuleConfig>(&text).unwrap().compile().unwrap();
        Engine::new(vec![rule], HashMap::from([("positions".to_owned(), meta)]))
    }

    /// Observes a stale table every 10 s from `from` to `to`; the attempts and events.
    fn stale_from(e: &mut Engine, from: i64, to: i64) -> (Vec<Attempt>, Vec<AlertEvent>) {
        let (mut attempts, mut events) = (Vec::new(), Vec::new());
        let mut s = from;
        while s <= to {
            events.extend(e.observe(&stale(500.0, s), at(s)));
            attempts.extend(e.take_attempts());
            s += 10;
        }
        (attempts, events)
    }

    #[test]
    fn a_failing_fix_gets_max_attempts_a_cooldown_apart_then_pages_once() {
        let mut e = engine(
            "action = \"force_sync\", after = \"30s\", max_attempts = 3, cooldown = \"5m\", window = \"1h\"",
            CheckMeta::default(),
        );
        let (attempts, events) = stale_from(&mut e, 0, 40 * 60);
        let times: Vec<i64> = attempts.iter().map(|a| (a.at - at(0)).num_seconds()).collect();
        assert_eq!(times, [30, 330, 630], "after, then a cooldown apart");
        let numbers: Vec<(u32, u32)> = attempts.iter().map(|a| (a.number, a.of)).collect();
        assert_eq!(numbers, [(1, 3), (2, 3), (3, 3)]);
        assert_eq!(attempts[1].describe(), "auto force_sync, attempt 2 of 3");
        let failed: Vec<&AlertEvent> = events.iter().filter(|e| e.rule == REMEDIATION_FAILED).collect();
        assert_eq!(failed.len(), 1, "remediation_failed fires once");
        assert_eq!(failed[0].event_at, at(930), "a cooldown after the last attempt");
        assert_eq!(failed[0].severity, crate::alert::Severity::Critical);
        assert!(
            failed[0]
                .message
                .starts_with("auto force_sync on positions gave up after 3 attempts within 1h"),
            "{}",
            failed[0].message
        );
        let view = e
            .active()
            .into_iter()
            .find(|a| a.rule == "data_stale")
            .unwrap()
            .remediation
            .unwrap();
        assert!(view.gave_up);
        assert_eq!(view.next_at, Some(at(30 + 3600)), "when the window frees one");
        // The sliding window frees the first attempt at 3630 s and the second at 3930 s:
        // never more than 3 in any hour, and no second page.
        let (attempts, events) = stale_from(&mut e, 40 * 60 + 10, 70 * 60);
        let times: Vec<i64> = attempts.iter().map(|a| (a.at - at(0)).num_seconds()).collect();
        assert_eq!(times, [3630, 3930]);
        assert!(events.iter().all(|e| e.rule != REMEDIATION_FAILED));
        // Healed: the alert and remediation_failed resolve together.
        let events = e.observe(&stale(5.0, 70 * 60 + 10), at(70 * 60 + 10));
        let resolved: Vec<&str> = events
            .iter()
            .filter(|e| e.state == AlertState::Resolved)
            .map(|e| e.rule.as_str())
            .collect();
        assert_eq!(resolved.len(), 2, "{resolved:?}");
        assert!(resolved.contains(&REMEDIATION_FAILED));
    }

    #[test]
    fn a_flapping_condition_stays_within_max_attempts_per_window() {
        let mut e = engine(
            "action = \"force_sync\", max_attempts = 2, cooldown = \"1m\", window = \"1h\"",
            CheckMeta::default(),
        );
        let mut attempts = Vec::new();
        // Stale for 2 minutes, fresh for 1, for an hour: 20 episodes.
        for episode in 0..20 {
            let start = episode * 180;
            for s in (start..start + 120).step_by(10) {
                e.observe(&stale(500.0, s), at(s));
                attempts.extend(e.take_attempts());
            }
            e.observe(&stale(5.0, start + 120), at(start + 120));
            attempts.extend(e.take_attempts());
        }
        assert_eq!(attempts.len(), 2, "{attempts:?}");
    }

    #[test]
    fn a_held_alert_is_not_remediated_and_a_dry_run_says_so() {
        // Held back by a dependency that is down: no attempt.
        let meta = CheckMeta {
            depends_on: vec!["ib".to_owned()],
            ..Default::default()
        };
        let mut e = engine("action = \"force_sync\", cooldown = \"1m\"", meta);
        let down = Observation::from_reading(
            "ib",
            "ib_connection",
            Reading::new(Status::Critical, "down"),
            at(0),
            Default::default(),
        );
        e.observe(&down, at(0));
        let (attempts, events) = stale_from(&mut e, 0, 600);
        assert!(
            attempts.is_empty() && events.is_empty(),
            "{attempts:?} {events:?}"
        );
        assert_eq!(e.held().len(), 1);

        let mut e = engine("action = \"force_sync\", dry_run = true", CheckMeta::default());
        let (attempts, _) = stale_from(&mut e, 0, 10);
        assert_eq!(attempts.len(), 1);
        assert!(attempts[0].dry_run);
    }

    #[test]
    fn pausing_stops_attempts_and_a_press_by_hand_counts_afresh() {
        let mut e = engine(
            "action = \"force_sync\", max_attempts = 1, cooldown = \"1m\", window = \"1h\"",
            CheckMeta::default(),
        );
        let (attempts, _) = stale_from(&mut e, 0, 300);
        assert_eq!(attempts.len(), 1, "one, then used up");
        // By hand: counted afresh, so one more.
        e.operator_acted("positions", "force_sync", at(310));
        let (attempts, _) = stale_from(&mut e, 310, 600);
        assert_eq!(attempts.len(), 1);
        // Paused: nothing more for this alert, and the state says so.
        let id = e
            .active()
            .into_iter()
            .find(|a| a.rule == "data_stale")
            .unwrap()
            .alert_id;
        assert!(e.pause_remediation(&id).is_some());
        e.operator_acted("positions", "force_sync", at(610));
        let (attempts, _) = stale_from(&mut e, 610, 3600);
        assert!(attempts.is_empty());
        // A restart keeps the count and the pause.
        let state = e.state();
        let mut again = engine(
            "action = \"force_sync\", max_attempts = 1, cooldown = \"1m\", window = \"1h\"",
            CheckMeta::default(),
        );
        again.restore(state);
        let (attempts, _) = stale_from(&mut again, 3610, 3700);
        assert!(attempts.is_empty());
    }
}
