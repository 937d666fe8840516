//! The engine's state as saved to `<state_dir>/alerts.json`: every pair that is not
//! inactive, keyed by rule and check names, so a restart or a reload neither re-sends
//! nor forgets an alert.

use serde::{Deserialize, Serialize};

use super::{Engine, Phase, Rule};

/// The engine's state as saved to disk: every non-inactive (rule, check) pair, keyed by
/// names (not positions) so it survives restarts and config reloads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EngineState {
    entries: Vec<StateEntry>,
    /// Each remediating pair's attempts (so a restart does not reset the count).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    remedies: Vec<RemedyEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct RemedyEntry {
    rule: String,
    check: String,
    #[serde(flatten)]
    remedy: super::remedy::Remedy,
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
                    rule: self.rules[*index].state_name(),
                    check: check.clone(),
                    phase: phase.clone(),
                })
                .collect(),
            remedies: self
                .remedies
                .iter()
                .map(|((index, check), remedy)| RemedyEntry {
                    rule: self.rules[*index].state_name(),
                    check: check.clone(),
                    remedy: remedy.clone(),
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
                r.state_name() == entry.rule
                    && (r.config.checks.is_empty()
                        || !r.config.kinds.is_empty()
                        || r.config.checks.contains(&entry.check))
            };
            if let Some(index) = self.rules.iter().position(same) {
                self.phases.insert((index, entry.check), entry.phase);
                restored += 1;
            }
        }
        for entry in state.remedies {
            if let Some(index) = self.rules.iter().position(|r| r.state_name() == entry.rule) {
                self.remedies.insert((index, entry.check), entry.remedy);
            }
        }
        restored
    }
}
