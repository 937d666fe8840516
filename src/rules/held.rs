//! Held alerts: why a pair's alert is held back (a maintenance window, market hours, a
//! dependency that is not ok), the pairs held now, and the record of holds as they
//! begin (for `vitals replay`'s summary).

use chrono::{DateTime, Utc};

use super::{Engine, Phase, Rule, window};
use crate::alert::HeldAlert;
use crate::observation::Status;

/// A condition held back: which pair, why, from when (for `vitals replay`'s summary).
#[derive(Debug, Clone, PartialEq)]
pub struct HeldRecord {
    /// The rule's name.
    pub rule: String,
    /// The check's id.
    pub check: String,
    /// Why ("market closed: Thanksgiving Day", "in maintenance: …", "ib is critical").
    pub cause: String,
    /// When the hold began.
    pub at: DateTime<Utc>,
}

/// Why a pair is held back, and when the hold lifts by itself (none: at an
/// observation).
pub(super) type Held = (String, Option<DateTime<Utc>>);

impl Engine {
    /// Keeps a record of every hold as it begins, for [`Engine::take_holds`].
    pub fn record_holds(&mut self) {
        self.holds = Some(Vec::new());
    }

    /// The holds that began since the last call (empty unless recording).
    pub fn take_holds(&mut self) -> Vec<HeldRecord> {
        self.holds.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Why alerts of `rule` on `check` are held back at `now`: a maintenance window of
    /// the rule or the check, the market hours of the rule or the check, or a
    /// dependency that is not ok (or not yet seen).
    pub(super) fn hold(&self, rule: &Rule, check: &str, now: DateTime<Utc>) -> Option<Held> {
        let meta = self.checks.get(check);
        if let Some((cause, until)) = window::open_window(&rule.windows, now)
            .or_else(|| meta.and_then(|m| window::open_window(&m.windows, now)))
        {
            return Some((cause, Some(until)));
        }
        if let Some(hold) = rule
            .market
            .as_ref()
            .and_then(|m| m.held(now))
            .or_else(|| meta.and_then(|m| m.market.as_ref()?.held(now)))
        {
            return Some((hold.cause, Some(hold.until)));
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
        (!causes.is_empty()).then(|| (causes.join(", "), None))
    }

    /// The conditions that hold but whose alerts are held back (maintenance, market
    /// hours, a dependency that is not ok).
    pub fn held(&self) -> Vec<HeldAlert> {
        self.phases
            .iter()
            .filter_map(|((index, check), phase)| match phase {
                Phase::Held {
                    since,
                    cause,
                    message,
                    ..
                } => {
                    let rule = &self.rules[*index].config;
                    Some(HeldAlert {
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
