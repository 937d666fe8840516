//! One `[[rules]]` entry: as written ([`RuleConfig`]), validated by itself
//! ([`RuleConfig::validate`]) and compiled ([`Rule`]). References to checks and kinds
//! are checked by the config loader, which knows the whole file.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::template::validate_template;
use super::{Condition, Window, WindowConfig};
use crate::alert::Severity;
use crate::duration::Span;
use crate::market::MarketHours;
use crate::plugin::{KeyError, valid_id};

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

/// What a rule does with an observation its condition cannot judge because the
/// observation lacks what the condition reads (`value > 60` with no value: the table is
/// gone; `details.age_s` that a failed read did not write), while the check is
/// `critical`. At any other status such an observation changes nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NoValuePolicy {
    /// Treat it as the condition holding: a red check pages (Grafana's "alerting" on no
    /// data). The message is then "<check>: <what the check said>".
    #[default]
    Fire,
    /// Neither fire nor resolve: keep the alert state as it is.
    Hold,
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
    #[serde(rename = "for", default)]
    pub for_: Span,
    /// Once firing, how long the condition must stay false before the alert resolves
    /// (against flapping).
    #[serde(default)]
    pub keep_firing_for: Span,
    /// Send a reminder this often while the alert fires and is not acknowledged
    /// (absent: no reminders).
    #[serde(default)]
    pub repeat: Option<Span>,
    /// The alert's text. Placeholders: `{check}`, `{rule}`, `{severity}`, `{status}`,
    /// `{value}`, `{unit}`, `{label}`, `{message}` and `{details.KEY}`.
    #[serde(default = "default_message")]
    pub message: String,
    /// What an `unknown` observation does: `hold` (default), `fire` or `resolve`.
    #[serde(default)]
    pub on_unknown: UnknownPolicy,
    /// What a `critical` observation does when the condition cannot judge it because
    /// it lacks what the condition reads (no `value`: a deleted table, an unmounted
    /// volume): `fire` (default: no red goes unpaged), `hold` or `resolve`.
    #[serde(default)]
    pub on_no_value: NoValuePolicy,
    /// Maintenance windows during which this rule does not fire (conditions are held
    /// back and fire afterwards if still true; an alert already firing may still
    /// resolve), e.g. `[{ start = "45 23 * * *", duration = "30m", timezone =
    /// "America/New_York", reason = "IB Gateway nightly restart" }]`.
    #[serde(default)]
    pub maintenance: Vec<WindowConfig>,
    /// A market calendar (`"nyse"`, `"nyse_extended"` or a `[calendars.<name>]`):
    /// outside its session this rule's alerts are held back the way maintenance holds
    /// them, with the cause named ("market closed: Thanksgiving Day"), and fire
    /// afterwards only if still true.
    #[serde(default)]
    pub market_hours: Option<String>,
    /// How long after the session opens alerts are still held (data needs a few
    /// minutes to catch up), e.g. `"5m"`; needs `market_hours`.
    #[serde(default)]
    pub market_grace: Option<Span>,
    /// An action the rule runs by itself while its alert fires, with safeguards, e.g.
    /// `{ action = "force_sync", max_attempts = 3, cooldown = "5m", window = "1h" }`
    /// (docs/alerts.md, "Remediation").
    #[serde(default)]
    pub remediate: Option<Remediate>,
    /// The severity of the built-in `remediation_failed` alert, fired when the
    /// attempts are used up and the condition still holds.
    #[serde(default = "critical")]
    pub remediation_severity: Severity,
}

fn critical() -> Severity {
    Severity::Critical
}

/// A rule's `remediate`: what it runs by itself, and how often at most.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Remediate {
    /// The action, one that the kind of every check the rule selects offers:
    /// `force_sync` (`delta_freshness`), `clear` (`queue_backlog`), `reconnect`
    /// (`ib_connection`), or one a plugin kind declares.
    pub action: String,
    /// How long after the alert fires the first attempt waits.
    #[serde(default)]
    pub after: Span,
    /// Attempts at most within `window`, counted per rule and check: a new episode
    /// does not reset the count, so a flapping condition cannot loop.
    #[serde(default = "three")]
    pub max_attempts: u32,
    /// The least time between two attempts (and between the last attempt and giving
    /// up: the fix gets this long to work).
    #[serde(default = "crate::duration::secs::<300>")]
    pub cooldown: Span,
    /// The sliding window the attempts are counted in.
    #[serde(default = "crate::duration::secs::<3600>")]
    pub window: Span,
    /// Run nothing: record each would-be attempt as an `action` event saying "dry
    /// run", to watch what the automation would do before trusting it.
    #[serde(default)]
    pub dry_run: bool,
}

fn three() -> u32 {
    3
}

/// The most `max_attempts` may be.
pub const MAX_ATTEMPTS: u32 = 100;

impl Remediate {
    fn validate(&self) -> Vec<KeyError> {
        let mut errors = Vec::new();
        let mut bad = |m: String| errors.push(KeyError::new("remediate", m));
        if !valid_id(&self.action) {
            bad(format!(
                "`{}` is not an action name: write e.g. action = \"force_sync\"",
                self.action
            ));
        }
        if self.max_attempts == 0 || self.max_attempts > MAX_ATTEMPTS {
            bad(format!(
                "max_attempts must be 1 to {MAX_ATTEMPTS}, not {}",
                self.max_attempts
            ));
        }
        if self.cooldown.is_zero() {
            bad("cooldown must be longer than 0s: the fix needs time to work".to_owned());
        }
        if *self.window < *self.cooldown {
            bad(format!(
                "window ({}) must be at least the cooldown ({})",
                crate::duration::format(*self.window),
                crate::duration::format(*self.cooldown)
            ));
        }
        errors
    }
}

fn default_message() -> String {
    "{check}: {message}".to_owned()
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
    /// Whether it sees the pending placeholder of a check that has not run yet (only the
    /// built-in `check_unknown` does).
    pub sees_pending: bool,
    /// Its market hours, set by the config loader (which knows the calendars).
    pub market: Option<MarketHours>,
    /// For a built-in `remediation_failed`: the remediating rule it belongs to.
    pub failure_of: Option<String>,
}

/// The name of the built-in rule that pages for a check stuck in `unknown`.
pub const CHECK_UNKNOWN: &str = "check_unknown";

impl Rule {
    /// The built-in `check_unknown` rule for one check: fires when the check has been
    /// `unknown` (or pending: it never managed a first run) for `after`, with
    /// "vitals cannot see <check>: <message>"; resolves at its first other status.
    /// Maintenance windows and `depends_on` hold it back like any rule.
    pub fn check_unknown(check: &str, after: std::time::Duration, severity: Severity) -> Rule {
        let config = RuleConfig {
            name: CHECK_UNKNOWN.to_owned(),
            checks: vec![check.to_owned()],
            kinds: Vec::new(),
            when: "false".to_owned(),
            severity,
            for_: Span(after),
            keep_firing_for: Span::ZERO,
            repeat: None,
            message: "vitals cannot see {check}: {message}".to_owned(),
            on_unknown: UnknownPolicy::Fire,
            on_no_value: NoValuePolicy::Hold,
            maintenance: Vec::new(),
            market_hours: None,
            market_grace: None,
            remediate: None,
            remediation_severity: Severity::Critical,
        };
        Rule {
            condition: Condition::compile(&config.when)
                .unwrap_or_else(|e| unreachable!("`false` is a condition: {e}")),
            config,
            windows: Vec::new(),
            sees_pending: true,
            market: None,
            failure_of: None,
        }
    }
}

/// The name of the built-in rule that pages when a rule's remediation gave up.
pub const REMEDIATION_FAILED: &str = "remediation_failed";

/// The name of the built-in rule that pages for a sink that has been failing.
pub const SINK_FAILING: &str = "sink_failing";

impl Rule {
    /// The built-in `sink_failing` rule for one sink, whose health is observed as the
    /// check `sink:<id>` (critical while failing): fires when it has been failing for
    /// `after`, with what the sink last said; resolves at its first success. Its alerts
    /// go to every other sink.
    pub fn sink_failing(check_id: &str, after: std::time::Duration, severity: Severity) -> Rule {
        let config = RuleConfig {
            name: SINK_FAILING.to_owned(),
            checks: vec![check_id.to_owned()],
            kinds: Vec::new(),
            when: "status == 'critical'".to_owned(),
            severity,
            for_: Span(after),
            keep_firing_for: Span::ZERO,
            repeat: None,
            message: "{message}".to_owned(),
            on_unknown: UnknownPolicy::Hold,
            on_no_value: NoValuePolicy::Hold,
            maintenance: Vec::new(),
            market_hours: None,
            market_grace: None,
            remediate: None,
            remediation_severity: Severity::Critical,
        };
        Rule {
            condition: Condition::compile(&config.when)
                .unwrap_or_else(|e| unreachable!("the sink_failing condition compiles: {e}")),
            config,
            windows: Vec::new(),
            sees_pending: false,
            market: None,
            failure_of: None,
        }
    }

    /// The built-in `remediation_failed` rule of the remediating rule `of`: the engine
    /// fires it for a check when `of`'s attempts are used up and its condition still
    /// holds, and resolves it with `of`'s alert. It selects no check by itself.
    pub fn remediation_failed(of: &str, severity: Severity) -> Rule {
        let config = RuleConfig {
            name: REMEDIATION_FAILED.to_owned(),
            checks: Vec::new(),
            kinds: Vec::new(),
            when: "false".to_owned(),
            severity,
            for_: Span::ZERO,
            keep_firing_for: Span::ZERO,
            repeat: None,
            message: "{message}".to_owned(),
            on_unknown: UnknownPolicy::Hold,
            on_no_value: NoValuePolicy::Hold,
            maintenance: Vec::new(),
            market_hours: None,
            market_grace: None,
            remediate: None,
            remediation_severity: Severity::Critical,
        };
        Rule {
            condition: Condition::compile(&config.when)
                .unwrap_or_else(|e| unreachable!("`false` is a condition: {e}")),
            config,
            windows: Vec::new(),
            sees_pending: false,
            market: None,
            failure_of: Some(of.to_owned()),
        }
    }

    /// The name its state is saved under: its own, or for a built-in
    /// `remediation_failed`, `remediation_failed:<the remediating rule>`.
    pub fn state_name(&self) -> String {
        match &self.failure_of {
            Some(of) => format!("{REMEDIATION_FAILED}:{of}"),
            None => self.config.name.clone(),
        }
    }

    /// Whether the rule watches this check.
    pub fn selects(&self, check_id: &str, kind: &str) -> bool {
        self.config.checks.iter().any(|c| c == check_id) || self.config.kinds.iter().any(|k| k == kind)
    }
}

impl RuleConfig {
    /// Every problem of this rule on its own, each at its key: the name, that it
    /// selects something, the condition, the message template, the maintenance windows.
    pub fn validate(&self) -> Vec<KeyError> {
        self.compile_parts().err().unwrap_or_default()
    }

    fn compile_parts(&self) -> Result<(Condition, Vec<Window>), Vec<KeyError>> {
        let mut errors = Vec::new();
        if !valid_id(&self.name) {
            errors.push(KeyError::new(
                "name",
                "a rule name may only use letters, digits, `_` and `-`",
            ));
        }

        if self.checks.is_empty() && self.kinds.is_empty() {
            errors.push(KeyError::new(
                "checks",
                "a rule must select checks: give `checks = [\"id\", …]` or `kinds = [\"kind\", …]`",
            ));
        }
        if let Some(r) = &self.remediate {
            errors.extend(r.validate());
        }
        let condition = Condition::compile(&self.when)
            .map_err(|e| errors.push(KeyError::new("when", format!("invalid condition: {e}"))))
            .ok();
        if let Err(e) = validate_template(&self.message) {
            errors.push(KeyError::new("message", e));
        }
        let mut windows = Vec::new();
        for w in &self.maintenance {
            match Window::compile(w) {
                Ok(w) => windows.push(w),
                Err(e) => errors.push(KeyError::new("maintenance", e)),
            }
        }
        match condition {
            Some(c) if errors.is_empty() => Ok((c, windows)),
            _ => Err(errors),
        }
    }

    /// The compiled rule, or every problem (see [`RuleConfig::validate`]).
    pub fn compile(self) -> Result<Rule, Vec<KeyError>> {
        let (condition, windows) = self.compile_parts()?;
        Ok(Rule {
            config: self,
            condition,
            windows,
            sees_pending: false,
            market: None,
            failure_of: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(toml_text: &str) -> RuleConfig {
        toml::from_str(toml_text).expect("a rule")
    }

    #[test]
    fn a_valid_rule_compiles() {
        let r = rule(
            "name = \"stale\"\nkinds = [\"delta_freshness\"]\nwhen = \"value > 60\"\nseverity = \"CRITICAL\"\nfor = \"30s\"",
        );
        assert!(r.validate().is_empty());
        let r = r.compile().unwrap();
        assert_eq!(r.config.for_, Span::secs(30));
        assert!(r.selects("x", "delta_freshness"));
        assert!(!r.selects("x", "cpu"));
    }

    #[test]
    fn every_problem_is_reported_at_its_key() {
        let r = rule(
            "name = \"a b\"\nwhen = \"value >\"\nseverity = \"INFO\"\nmessage = \"{chek}\"\nmaintenance = [{ start = \"not cron\", duration = \"1h\" }]",
        );
        let keys: Vec<String> = r.validate().into_iter().map(|e| e.key).collect();
        assert_eq!(keys, ["name", "checks", "when", "message", "maintenance"]);
    }
}
