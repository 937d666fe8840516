//! `vitals test`: unit tests for alert rules, in the manner of `promtool test rules`.
//! A test file names a config, gives observation series in a compact notation, and
//! lists the alert events expected at given times; the series are replayed through the
//! config's alerting on virtual time ([`crate::replay::Replayer`]) and the events got
//! are compared with those expected. The format is in `docs/market-hours.md`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::alert::AlertState;
use crate::duration::{self, Span};
use crate::observation::{Observation, Status};
use crate::registry::Registry;
use crate::replay::Replayer;

/// A test file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    /// The config whose rules are tested, relative to the test file.
    pub config: PathBuf,
    /// The tests.
    #[serde(default)]
    pub tests: Vec<TestCase>,
}

/// One test.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    /// What it shows.
    pub name: String,
    /// The virtual time of the first sample (RFC 3339), e.g. `"2026-11-27T14:00:00Z"`.
    pub start: DateTime<Utc>,
    /// The time between two samples of a series (default `"5s"`).
    #[serde(default = "duration::secs::<5>")]
    pub interval: Span,
    /// How long after `start` virtual time runs (default: to the last sample), so that
    /// a resolve after `keep_firing_for` can be expected.
    #[serde(default)]
    pub until: Option<Span>,
    /// Observation series, one per check.
    #[serde(default)]
    pub series: Vec<Series>,
    /// The alert events expected, all of them, in any order.
    #[serde(default)]
    pub expect: Vec<Expected>,
}

/// One check's observations.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Series {
    /// The check's id.
    pub check: String,
    /// Values, one per `interval`: `"50 95 95"`, `"95x10"` (ten samples of 95),
    /// `"10+5x4"` (10 15 20 25), `"_"` or `"_x3"` (no sample).
    #[serde(default)]
    pub values: Option<String>,
    /// Statuses in the same notation (`"okx5 criticalx3"`); default `ok` for every
    /// value. Without `values`, the samples have no value.
    #[serde(default)]
    pub statuses: Option<String>,
    /// The label of every sample.
    #[serde(default)]
    pub label: Option<String>,
    /// The message of every sample.
    #[serde(default)]
    pub message: Option<String>,
    /// The details of every sample, e.g. `{ limit = 100 }`.
    #[serde(default)]
    pub details: Map<String, Value>,
}

/// One expected alert event.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    /// When, after `start`, e.g. `"2m05s"`.
    pub at: Span,
    /// The rule.
    pub rule: String,
    /// The check.
    pub check: String,
    /// `firing`, `resolved`, `reminder`, or `action` (a remediation attempt, simulated).
    pub state: String,
}

/// The most samples one series, and one test's series in all, may expand to: a week
/// at one a second is 604,800.
pub const MAX_SAMPLES: usize = 1_000_000;

/// Expands the compact notation into one entry per sample (`None`: no sample), at most
/// [`MAX_SAMPLES`] (a 157-byte file must not ask for gigabytes).
pub fn expand(text: &str) -> Result<Vec<Option<String>>, String> {
    let mut out = Vec::new();
    for token in text.split_whitespace() {
        let (item, times) = match token.rsplit_once('x') {
            Some((item, n)) if !item.is_empty() && n.chars().all(|c| c.is_ascii_digit()) && !n.is_empty() => {
                let n: usize = n
                    .parse()
                    .map_err(|_| format!("`{token}`: the count is too large"))?;
                (item, n)
            }
            _ => (token, 1),
        };
        if out.len().saturating_add(times) > MAX_SAMPLES {
            return Err(format!(
                "`{token}`: a series may have at most {MAX_SAMPLES} samples"
            ));
        }
        if item == "_" {
            out.extend(std::iter::repeat_n(None, times));
            continue;
        }
        // `a+b` steps by b (numbers only).
        if let Some((a, b)) = item.split_once('+').filter(|(a, _)| !a.is_empty())
            && let (Ok(a), Ok(b)) = (a.parse::<f64>(), b.parse::<f64>())
        {
            out.extend((0..times).map(|i| Some(format!("{}", a + b * i as f64))));
            continue;
        }
        out.extend(std::iter::repeat_n(Some(item.to_owned()), times));
    }
    Ok(out)
}

impl Series {
    /// The observations of this series.
    fn observations(
        &self,
        kind: &str,
        start: DateTime<Utc>,
        step: chrono::Duration,
    ) -> Result<Vec<Observation>, String> {
        let values = self.values.as_deref().map(expand).transpose()?;
        let statuses = self.statuses.as_deref().map(expand).transpose()?;
        let n = match (&values, &statuses) {
            (Some(v), Some(s)) if v.len() != s.len() => {
                return Err(format!(
                    "series `{}`: {} values but {} statuses",
                    self.check,
                    v.len(),
                    s.len()
                ));
            }
            (Some(v), _) => v.len(),
            (None, Some(s)) => s.len(),
            (None, None) => return Err(format!("series `{}`: give `values` or `statuses`", self.check)),
        };
        let mut out = Vec::new();
        for i in 0..n {
            let observed_at = i32::try_from(i)
                .ok()
                .and_then(|i| step.checked_mul(i))
                .and_then(|d| start.checked_add_signed(d))
                .ok_or_else(|| format!("series `{}`: sample {i} is past the end of time", self.check))?;
            let value = values.as_ref().map(|v| v[i].clone());
            let status = statuses.as_ref().map(|s| s[i].clone());
            if value.as_ref().is_some_and(Option::is_none) || status.as_ref().is_some_and(Option::is_none) {
                continue;
            }
            let value = value
                .flatten()
                .map(|v| {
                    v.parse::<f64>()
                        .map_err(|_| format!("series `{}`: `{v}` is not a number", self.check))
                })
                .transpose()?;
            let status = match status.flatten() {
                Some(s) => serde_json::from_value::<Status>(Value::String(s.clone())).map_err(|_| {
                    format!(
                        "series `{}`: `{s}` is not a status (ok, warning, critical, unknown)",
                        self.check
                    )
                })?,
                None => Status::Ok,
            };
            out.push(Observation {
                id: self.check.clone(),
                kind: kind.to_owned(),
                status,
                label: self.label.clone(),
                value,
                unit: String::new(),
                message: self.message.clone().unwrap_or_default(),
                observed_at,
                duration_ms: 0.0,
                details: self.details.clone(),
            });
        }
        Ok(out)
    }
}

/// The result of one test: its name and, when it failed, what differs.
#[derive(Debug)]
pub struct Outcome {
    /// The test's name.
    pub name: String,
    /// Empty when it passed; else one line per difference.
    pub diff: Vec<String>,
}

/// Why a test file could not be run at all.
#[derive(Debug, thiserror::Error)]
pub enum TestFileError {
    /// The test file is unreadable or malformed.
    #[error("{file}: {message}")]
    File {
        /// The test file.
        file: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The config it names is invalid.
    #[error("{0}")]
    Config(crate::config::Diagnostics),
}

type Event = (i64, String, String, String);

fn show((ms, rule, check, state): &Event) -> String {
    let at = std::time::Duration::from_millis(u64::try_from(*ms).unwrap_or(0));
    format!(
        "+{:<8} {state:<9} {rule} on {check}",
        duration::format(at).replace(' ', "")
    )
}

/// Runs every test of a file.
pub fn run_file(path: &Path, registry: &Registry) -> Result<Vec<Outcome>, TestFileError> {
    let err = |message: String| TestFileError::File {
        file: path.to_owned(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read it: {e}")))?;
    let file: TestFile = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
    let config_path = crate::plugin::resolve_path(&crate::config::config_dir(path), &file.config);
    let mut outcomes = Vec::new();
    for case in &file.tests {
        // A fresh alerting for each test.
        let config = crate::config::load(&config_path, registry).map_err(TestFileError::Config)?;
        let kinds: Vec<(String, &'static str)> =
            config.checks.iter().map(|c| (c.id.clone(), c.kind)).collect();
        let mut replayer = Replayer::new(config);
        let step = chrono::Duration::from_std(*case.interval).map_err(|e| err(e.to_string()))?;
        let mut observations = Vec::new();
        for s in &case.series {
            let kind = kinds
                .iter()
                .find(|(id, _)| *id == s.check)
                .map(|(_, k)| *k)
                .ok_or_else(|| {
                    err(format!(
                        "test `{}`: `{}` is not a check of {}",
                        case.name,
                        s.check,
                        config_path.display()
                    ))
                })?;
            observations.extend(
                s.observations(kind, case.start, step)
                    .map_err(|m| err(format!("test `{}`: {m}", case.name)))?,
            );
            if observations.len() > MAX_SAMPLES {
                return Err(err(format!(
                    "test `{}`: its series have more than {MAX_SAMPLES} samples in all",
                    case.name
                )));
            }
        }
        // In time order; at one time, in the order of the series (a stable sort).
        observations.sort_by_key(|o| o.observed_at);
        let mut got = Vec::new();
        for o in &observations {
            got.extend(
                replayer
                    .observe(o)
                    .map_err(|m| err(format!("test `{}`: {m}", case.name)))?,
            );
            if got.len() > crate::replay::MAX_EVENTS {
                return Err(err(format!(
                    "test `{}`: more than {} alert events",
                    case.name,
                    crate::replay::MAX_EVENTS
                )));
            }
        }
        let after = |d: &Span| {
            chrono::Duration::from_std(**d)
                .ok()
                .and_then(|d| case.start.checked_add_signed(d))
                .ok_or_else(|| {
                    err(format!(
                        "test `{}`: {d} after its start is past the end of time",
                        case.name
                    ))
                })
        };
        if let Some(until) = &case.until {
            let from = observations.last().map_or(case.start, |o| o.observed_at);
            got.extend(
                replayer
                    .advance_from(from, after(until)?)
                    .map_err(|m| err(format!("test `{}`: {m}", case.name)))?,
            );
        }
        let key = |at: DateTime<Utc>, rule: &str, check: &str, state: &str| -> Event {
            (
                at.signed_duration_since(case.start).num_milliseconds(),
                rule.to_owned(),
                check.to_owned(),
                state.to_owned(),
            )
        };
        let got: BTreeSet<Event> = got
            .iter()
            .filter(|e| e.state != AlertState::Acknowledged)
            .map(|e| {
                let state = if e.reminder { "reminder" } else { e.state.as_str() };
                key(e.event_at, &e.rule, &e.check_id, state)
            })
            .collect();
        let mut expected = BTreeSet::new();
        for x in &case.expect {
            if !["firing", "resolved", "reminder", "action"].contains(&x.state.as_str()) {
                return Err(err(format!(
                    "test `{}`: state `{}` is not one of firing, resolved, reminder, action",
                    case.name, x.state
                )));
            }
            expected.insert(key(after(&x.at)?, &x.rule, &x.check, &x.state));
        }
        let mut diff: Vec<String> = expected
            .difference(&got)
            .map(|e| format!("  expected, not got: {}", show(e)))
            .collect();
        diff.extend(
            got.difference(&expected)
                .map(|e| format!("  got, not expected: {}", show(e))),
        );
        outcomes.push(Outcome {
            name: case.name.clone(),
            diff,
        });
    }
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compact_notation() {
        let e = |s: &str| expand(s).unwrap();
        assert_eq!(e("1 2"), [Some("1".into()), Some("2".into())]);
        assert_eq!(e("95x2 _x2"), [Some("95".into()), Some("95".into()), None, None]);
        assert_eq!(
            e("10+5x3"),
            [Some("10".into()), Some("15".into()), Some("20".into())]
        );
        assert_eq!(
            e("okx2 critical"),
            [Some("ok".into()), Some("ok".into()), Some("critical".into())]
        );
        assert_eq!(e("-3x1"), [Some("-3".into())]);
    }
}
