//! `vitals replay`: recorded observations fed through a config's alerting — its rules,
//! `depends_on`, maintenance windows, market hours and `check_unknown` — on virtual
//! time (the clock is the observations' `observed_at`). Every alert event comes out as
//! one JSON line; nothing else is touched: no sink is built, no state file read or
//! written. The same input gives the same bytes out.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::{BufRead, Write};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::alert::{AlertEvent, AlertState, Severity};
use crate::config::Config;
use crate::observation::Observation;
use crate::rules::Engine;

/// Why a replay stopped: the input line and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// A line that is not an observation, out of time order, or for a check the config
    /// does not have.
    #[error("line {line}: {message}")]
    Input {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Reading the input or writing the output failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The history table could not be read.
    #[error("cannot read the history table {location}: {message}")]
    Table {
        /// Where it is.
        location: String,
        /// Why.
        message: String,
    },
}

/// One alert event as `vitals replay` prints it: the alerts table's columns (without
/// `host`) plus `reminder`.
#[derive(Debug, Serialize)]
struct Line<'a> {
    alert_id: &'a str,
    rule: &'a str,
    check_id: &'a str,
    severity: Severity,
    state: AlertState,
    message: &'a str,
    value: Option<f64>,
    started_at: String,
    event_at: String,
    reminder: bool,
    /// A remediation attempt or `remediation_failed`: what would have happened (a
    /// replay runs no action).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    simulated: bool,
}

fn millis(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// What a replay did, for the summary on stderr.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Summary {
    /// Observations read.
    pub observations: u64,
    /// The virtual time span.
    pub first: Option<DateTime<Utc>>,
    /// The last observation's time.
    pub last: Option<DateTime<Utc>>,
    /// Alert events written.
    pub events: u64,
    /// Pages (firing events that are not reminders) per rule.
    pub pages_by_rule: BTreeMap<String, u64>,
    /// Pages per check.
    pub pages_by_check: BTreeMap<String, u64>,
    /// Reminders sent.
    pub reminders: u64,
    /// Holds begun, per cause.
    pub held_by_cause: BTreeMap<String, u64>,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let span = match (self.first, self.last) {
            (Some(a), Some(b)) => format!(" from {} to {}", millis(a), millis(b)),
            _ => String::new(),
        };
        writeln!(f, "replayed {} observations{span}", self.observations)?;
        let pages: u64 = self.pages_by_rule.values().sum();
        writeln!(
            f,
            "{} alert events: {pages} pages, {} reminders",
            self.events, self.reminders
        )?;
        let list = |m: &BTreeMap<String, u64>| {
            m.iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if pages > 0 {
            writeln!(f, "pages per rule: {}", list(&self.pages_by_rule))?;
            writeln!(f, "pages per check: {}", list(&self.pages_by_check))?;
        }
        let held: u64 = self.held_by_cause.values().sum();
        writeln!(f, "held back: {held}")?;
        for (cause, n) in &self.held_by_cause {
            writeln!(f, "  {n:>6}  {cause}")?;
        }
        Ok(())
    }
}

/// A config's alerting, replaying.
pub struct Replayer {
    engine: Engine,
    kinds: HashMap<String, &'static str>,
    summary: Summary,
}

impl Replayer {
    /// Alerting as `config` would run it: its rules and the built-in `check_unknown`,
    /// each check's `depends_on`, maintenance and market hours. Nothing is started.
    pub fn new(config: Config) -> Replayer {
        let kinds = config.checks.iter().map(|c| (c.id.clone(), c.kind)).collect();
        let parts = crate::daemon::split(config);
        let mut engine = Engine::new(parts.alerting.rules, parts.alerting.checks);
        engine.record_holds();
        Replayer {
            engine,
            kinds,
            summary: Summary::default(),
        }
    }

    /// Feeds one observation (in time order: checked); returns its events.
    pub fn observe(&mut self, o: &Observation) -> Result<Vec<AlertEvent>, String> {
        match self.kinds.get(&o.id) {
            None => {
                let mut ids: Vec<&str> = self.kinds.keys().map(String::as_str).collect();
                ids.sort_unstable();
                return Err(format!(
                    "`{}` is not a check of this config{}",
                    o.id,
                    crate::plugin::suggest(&o.id, ids)
                ));
            }
            Some(kind) if *kind != o.kind => {
                return Err(format!(
                    "`{}` is a `{kind}` check in the config, not `{}`",
                    o.id, o.kind
                ));
            }
            Some(_) => {}
        }
        if let Some(last) = self.summary.last
            && o.observed_at < last
        {
            return Err(format!(
                "observed_at {} is before the previous line's {}: observations must be in time order",
                millis(o.observed_at),
                millis(last)
            ));
        }
        // Time runs to the observation a day at a time, so a gap of years with a
        // reminder every second is refused instead of filling memory.
        let mut events = match self.summary.last {
            Some(last) => self.advance_from(last, o.observed_at)?,
            None => Vec::new(),
        };
        self.summary.observations += 1;
        self.summary.first.get_or_insert(o.observed_at);
        self.summary.last = Some(o.observed_at);
        let mut more = self.engine.observe(o, o.observed_at);
        self.simulate(&mut more);
        self.count(&more);
        events.extend(more);
        Ok(events)
    }

    /// The remediation attempts the rules asked for, as `action` events that ran
    /// nothing (a replay performs no action), in time order with the others.
    fn simulate(&mut self, events: &mut Vec<AlertEvent>) {
        let attempts = self.engine.take_attempts();
        if attempts.is_empty() {
            return;
        }
        for a in attempts {
            let text = format!(
                "{} on {}: simulated, nothing is run in a replay",
                a.describe(),
                a.check
            );
            events.push(
                AlertEvent::new(&a.rule, &a.check, Severity::Info, AlertState::Action, text, a.at)
                    .of_episode(
                        &format!("action.{}.{}.{}", a.check, a.action, a.at.timestamp_millis()),
                        a.at,
                    ),
            );
            self.engine.remediation_outcome(&a.rule, &a.check, "simulated");
        }
        events.sort_by_key(|e| e.event_at);
    }

    /// Lets virtual time run from `from` to `t` with no more observations; returns the
    /// events, or an error past [`MAX_EVENTS`].
    pub fn advance_from(&mut self, from: DateTime<Utc>, t: DateTime<Utc>) -> Result<Vec<AlertEvent>, String> {
        let mut events = Vec::new();
        let mut at = from;
        while at < t {
            at = at
                .checked_add_signed(chrono::Duration::days(1))
                .map_or(t, |next| next.min(t));
            let mut more = self.engine.advance(at);
            self.simulate(&mut more);
            self.count(&more);
            events.extend(more);
            if events.len() > MAX_EVENTS {
                return Err(format!(
                    "more than {MAX_EVENTS} alert events from {} to {}: a reminder too often for so long?",
                    millis(from),
                    millis(at)
                ));
            }
        }
        Ok(events)
    }

    fn count(&mut self, events: &[AlertEvent]) {
        let s = &mut self.summary;
        for e in events {
            s.events += 1;
            match (e.state, e.reminder) {
                (AlertState::Firing, false) => {
                    *s.pages_by_rule.entry(e.rule.clone()).or_default() += 1;
                    *s.pages_by_check.entry(e.check_id.clone()).or_default() += 1;
                }
                (AlertState::Firing, true) => s.reminders += 1,
                _ => {}
            }
        }
        for h in self.engine.take_holds() {
            *s.held_by_cause.entry(h.cause).or_default() += 1;
        }
    }

    /// What the replay did.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }
}

/// The most alert events one stretch of virtual time (between two observations, or to
/// the end) may bring.
pub const MAX_EVENTS: usize = 100_000;

/// Writes one event as a JSON line.
pub fn write_event(out: &mut impl Write, e: &AlertEvent) -> std::io::Result<()> {
    let line = Line {
        alert_id: &e.alert_id,
        rule: &e.rule,
        check_id: &e.check_id,
        severity: e.severity,
        state: e.state,
        message: &e.message,
        value: e.value,
        started_at: millis(e.started_at),
        event_at: millis(e.event_at),
        reminder: e.reminder,
        simulated: e.state == AlertState::Action || e.rule == crate::rules::REMEDIATION_FAILED,
    };
    serde_json::to_writer(&mut *out, &line)?;
    out.write_all(b"\n")
}

/// The longest line `vitals replay` reads: an observation is a few hundred bytes, a
/// strategy registry's a few hundred kilobytes.
pub const MAX_LINE: usize = 4 << 20;

/// Replays `input` (one observation a line; blank lines skipped) through `config`,
/// writing every alert event to `out`. A line longer than [`MAX_LINE`] is refused
/// with its number, never read whole.
pub fn replay(config: Config, mut input: impl BufRead, out: &mut impl Write) -> Result<Summary, ReplayError> {
    use std::io::Read;
    let mut r = Replayer::new(config);
    let mut buf = Vec::new();
    for number in 1.. {
        buf.clear();
        let read = (&mut input)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)?;
        if read == 0 {
            break;
        }
        if buf.len() > MAX_LINE && buf.last() != Some(&b'\n') {
            return Err(ReplayError::Input {
                line: number,
                message: format!(
                    "the line is longer than {} MiB: not an observation",
                    MAX_LINE >> 20
                ),
            });
        }
        let line = String::from_utf8_lossy(&buf);
        if line.trim().is_empty() {
            continue;
        }
        let o: Observation = serde_json::from_str(&line).map_err(|e| ReplayError::Input {
            line: number,
            message: format!("not an observation ({e}); expected one JSON object a line, as in /api/status"),
        })?;
        let events = r.observe(&o).map_err(|message| ReplayError::Input {
            line: number,
            message,
        })?;
        for e in &events {
            write_event(out, e)?;
        }
    }
    out.flush()?;
    Ok(r.summary)
}

/// Replays the history table between two times (`vitals replay --history`): one
/// observation per check and bucket (its worst status and last value), in time order,
/// through `config`, writing every alert event to `out`. A row the config's rules
/// cannot take is an [`ReplayError::Input`] naming its row.
pub async fn replay_history(
    config: Config,
    table: &crate::delta::TableRef,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    out: &mut impl Write,
) -> Result<Summary, ReplayError> {
    let rows = crate::history::read_table(table, None, from, to)
        .await
        .map_err(|message| ReplayError::Table {
            location: table.location.clone(),
            message,
        })?;
    let mut r = Replayer::new(config);
    for (n, (check, t, v)) in rows.into_iter().enumerate() {
        let o = Observation {
            id: check,
            kind: v.kind,
            status: v.status,
            label: None,
            value: v.value_last,
            unit: v.unit,
            message: format!("from the history: {} samples", v.samples),
            observed_at: DateTime::from_timestamp_micros(t).unwrap_or_default(),
            duration_ms: 0.0,
            details: Default::default(),
        };
        let events = r
            .observe(&o)
            .map_err(|message| ReplayError::Input { line: n + 1, message })?;
        for e in &events {
            write_event(out, e)?;
        }
    }
    out.flush()?;
    Ok(r.summary)
}
