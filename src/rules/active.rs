//! The alerts firing now, as the page and the API see them, and their acknowledgement.

use chrono::{DateTime, Utc};

use super::{Engine, Phase};
use crate::alert::{ActiveAlert, AlertEvent, AlertState};

impl Engine {
    /// Acknowledges a firing alert: its reminders stop until it resolves (the resolve
    /// is still sent). Returns the event, or `None` if no such alert fires.
    /// An acknowledgement also lets a remediation that gave up try again (its attempts
    /// are counted afresh).
    pub fn acknowledge(&mut self, alert_id: &str, now: DateTime<Utc>) -> Option<AlertEvent> {
        let mut acked = None;
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
                let event = AlertEvent::new(
                    &rule.name,
                    check,
                    rule.severity,
                    AlertState::Acknowledged,
                    f.message.clone(),
                    now,
                )
                .of_episode(&f.alert_id, f.started_at)
                .on_host(&self.host);
                acked = Some((*index, check.clone(), event));
                break;
            }
        }
        let (index, check, event) = acked?;
        self.acknowledged(index, &check, now);
        Some(event)
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
                        remediation: self.remediation_view(&(*index, check.clone())),
                    })
                }
                _ => None,
            })
            .collect();
        out.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.started_at.cmp(&b.started_at)));
        out
    }
}
