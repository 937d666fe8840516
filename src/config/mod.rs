//! Loading `vitals.toml`: every error at once, each with file, line, column, section
//! and key. Loading is pure: it reads the one file and touches nothing else (the
//! warnings about where the config would write are apart, in [`warnings`]).
//!
//! This module dispatches the top-level sections to their owners: a section that
//! validates itself implements [`Section`] (`[server]`, `[defaults]`, `[history]`);
//! components (`[checks.*]`, `[sinks.*]`), rules and calendars have their own modules.

mod calendars;
mod components;
pub mod diag;
mod rules;
pub mod secrets;
mod server;
mod settings;
mod walk;
pub mod warnings;

use std::path::{Path, PathBuf};
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

pub use calendars::Calendars;
use diag::Collector;
pub use diag::{Diagnostic, Diagnostics, Level};
pub use server::{LOOPBACK_HOSTS, ServerConfig};
pub use settings::{COMMON_KEYS, CommonSettings, Defaults, SINK_COMMON_KEYS, SinkSettings};

use crate::alert::Severity as AlertSeverity;
use crate::check::ParsedCheck;
use crate::market::MarketHours;
use crate::plugin::KeyError;
use crate::registry::Registry;
use crate::rules::{Rule, Window, WindowConfig};
use crate::sinks::ParsedSink;

/// A top-level section that validates itself: its problems are reported at their keys.
pub trait Section: for<'de> Deserialize<'de> + JsonSchema {
    /// Its name (`[server]` → `"server"`).
    const NAME: &'static str;
    /// Every problem with its values, each at its key. Pure.
    fn validate(&self) -> Vec<KeyError>;
}

impl Section for crate::history::HistoryConfig {
    const NAME: &'static str = "history";
    fn validate(&self) -> Vec<KeyError> {
        crate::history::HistoryConfig::validate(self)
    }
}

/// Reads a [`Section`]: unknown keys, type errors and its own validation, each at its
/// key. `None` when any was found.
fn section<T: Section>(c: &mut Collector, value: &Spanned<DeValue<'_>>) -> Option<T> {
    let parsed: T = walk::section(c, T::NAME, value)?;
    let problems = parsed.validate();
    let table = value.get_ref().as_table();
    for e in &problems {
        let span = table.and_then(|t| t.get(e.key.as_str())).map(|v| v.span());
        c.error(
            span.or(Some(value.span())),
            Some(T::NAME),
            Some(&e.key),
            e.message.clone(),
        );
    }
    problems.is_empty().then_some(parsed)
}

/// The config file used when neither `-c` nor `$VITALS_CONFIG` names one.
pub const DEFAULT_PATH: &str = "config/vitals.toml";

/// One configured check, validated and ready to build.
#[derive(Debug)]
pub struct CheckSpec {
    /// Its id: the `<id>` of `[checks.<id>]`.
    pub id: String,
    /// Its kind.
    pub kind: &'static str,
    /// Effective interval.
    pub interval: Duration,
    /// Effective timeout.
    pub timeout: Duration,
    /// Effective jitter (at most the interval).
    pub jitter: Duration,
    /// Checks it depends on.
    pub depends_on: Vec<String>,
    /// Its maintenance windows, as written (for the fingerprint) and compiled.
    pub maintenance_config: Vec<WindowConfig>,
    /// Its maintenance windows, compiled.
    pub maintenance: Vec<Window>,
    /// Its market hours.
    pub market: Option<MarketHours>,
    /// How long it may stay `unknown` before `check_unknown` pages (`None`: never).
    pub unknown_after: Option<Duration>,
    /// The severity of its `check_unknown` alerts.
    pub unknown_severity: AlertSeverity,
    /// The kind's own config.
    pub params: Box<dyn ParsedCheck>,
}

impl CheckSpec {
    /// Identifies the check's whole configuration: equal fingerprints mean a reload
    /// can keep the running instance.
    pub fn fingerprint(&self) -> String {
        serde_json::json!({
            "kind": self.kind,
            "interval": self.interval.as_nanos().to_string(),
            "timeout": self.timeout.as_nanos().to_string(),
            "jitter": self.jitter.as_nanos().to_string(),
            "depends_on": self.depends_on,
            "maintenance": self.maintenance_config,
            "params": self.params.to_json(),
        })
        .to_string()
    }
}

/// One configured sink, validated and ready to build.
#[derive(Debug)]
pub struct SinkSpec {
    /// Its id (`[sinks.<id>]`).
    pub id: String,
    /// Its kind.
    pub kind: &'static str,
    /// Events below this severity are not sent to it.
    pub min_severity: AlertSeverity,
    /// How long it may fail before `sink_failing` pages (`None`: never).
    pub failing_after: Option<Duration>,
    /// The severity of its `sink_failing` alerts.
    pub failing_severity: AlertSeverity,
    /// The kind's own config.
    pub params: Box<dyn ParsedSink>,
}

impl SinkSpec {
    /// Identifies the sink's whole configuration: equal fingerprints mean a reload
    /// keeps the running sink (its queue, its connection, what it is delivering).
    pub fn fingerprint(&self) -> String {
        serde_json::json!({
            "kind": self.kind,
            "min_severity": self.min_severity,
            "params": self.params.to_json(),
        })
        .to_string()
    }
}

/// A loaded, valid config.
#[derive(Debug)]
pub struct Config {
    /// The file it came from.
    pub path: PathBuf,
    /// `[server]`.
    pub server: ServerConfig,
    /// `[defaults]`.
    pub defaults: Defaults,
    /// `[checks.*]`, in file order.
    pub checks: Vec<CheckSpec>,
    /// `[[rules]]`, in file order.
    pub rules: Vec<Rule>,
    /// `[sinks.*]`, in file order.
    pub sinks: Vec<SinkSpec>,
    /// The market calendars: built-in and `[calendars.*]`.
    pub calendars: Calendars,
    /// `[history]`, when the health history is kept.
    pub history: Option<crate::history::HistoryConfig>,
    /// Notes (not errors) found while loading.
    pub notes: Vec<Diagnostic>,
}

impl Config {
    /// The directory relative paths in the config are resolved against.
    pub fn dir(&self) -> PathBuf {
        config_dir(&self.path)
    }

    /// The state directory, resolved: `[server] state_dir`, else `$STATE_DIRECTORY`
    /// (its first entry), else `state` beside the config file.
    pub fn state_dir(&self) -> PathBuf {
        let from_systemd = || {
            let dirs = std::env::var_os("STATE_DIRECTORY")?;
            let first = dirs.to_str()?.split(':').next()?.to_owned();
            (!first.is_empty()).then(|| PathBuf::from(first))
        };
        match &self.server.state_dir {
            Some(dir) => crate::plugin::resolve_path(&self.dir(), dir),
            None => from_systemd().unwrap_or_else(|| self.dir().join("state")),
        }
    }

    /// What `vitals validate` and `vitals run` warn about beyond the file itself (see
    /// [`warnings::warnings`]).
    pub fn warnings(&self) -> Vec<String> {
        warnings::warnings(self)
    }

    /// The check with this id.
    pub fn check(&self, id: &str) -> Option<&CheckSpec> {
        self.checks.iter().find(|c| c.id == id)
    }
}

/// The directory of a config file (`.` for a bare file name).
pub fn config_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// Reads and validates a config file.
pub fn load(path: &Path, registry: &Registry) -> Result<Config, Diagnostics> {
    load_from(path, std::fs::read(path), registry)
}

/// Validates a config file's content as already read (`read` is the result of reading
/// `path`), for callers that keep the bytes, like the daemon's change watcher.
pub fn load_from(
    path: &Path,
    read: std::io::Result<Vec<u8>>,
    registry: &Registry,
) -> Result<Config, Diagnostics> {
    let problem = match read.map(String::from_utf8) {
        Ok(Ok(src)) => return parse(path, &src, registry),
        Ok(Err(e)) => format!("the config file is not UTF-8 text: {e}"),
        Err(e) => format!("cannot read the config file: {e}"),
    };
    Err(Diagnostics(vec![Diagnostic {
        level: Level::Error,
        file: path.to_owned(),
        position: None,
        section: None,
        key: None,
        message: problem,
    }]))
}

const TOP_LEVEL: [&str; 7] = [
    "server",
    "defaults",
    "history",
    "calendars",
    "checks",
    "rules",
    "sinks",
];

/// Validates config text (`path` is only used in messages and for relative paths).
pub fn parse(path: &Path, src: &str, registry: &Registry) -> Result<Config, Diagnostics> {
    let mut c = Collector::new(path, src);
    let (root, syntax) = DeTable::parse_recoverable(src);
    if !syntax.is_empty() {
        for e in syntax {
            c.error(
                e.span(),
                None,
                None,
                format!("TOML syntax error: {}", e.message()),
            );
        }
        return Err(Diagnostics(c.out));
    }
    let root = root.into_inner();
    let mut server = ServerConfig::default();
    let mut defaults = Defaults::default();
    let mut check_tables = Vec::new();
    let mut rule_tables = Vec::new();
    let mut sink_tables = Vec::new();
    let mut calendar_table = None;
    let mut history = None;

    for (key, value) in root.iter() {
        let name = key.get_ref().as_ref();
        match name {
            "server" => server = section(&mut c, value).unwrap_or(server),
            "defaults" => defaults = section(&mut c, value).unwrap_or(defaults),
            "calendars" => calendar_table = Some(value),
            "history" => history = section::<crate::history::HistoryConfig>(&mut c, value),
            "checks" => match value.get_ref() {
                DeValue::Table(t) => check_tables.extend(t.iter()),
                other => c.error(
                    Some(value.span()),
                    None,
                    Some("checks"),
                    format!(
                        "expected a table of checks (`[checks.<id>]`), found {}",
                        other.type_str()
                    ),
                ),
            },
            "rules" => match value.get_ref() {
                DeValue::Array(items) => rule_tables.extend(items.iter()),
                other => c.error(
                    Some(value.span()),
                    None,
                    Some("rules"),
                    format!(
                        "expected an array of tables (`[[rules]]`), found {}",
                        other.type_str()
                    ),
                ),
            },
            "sinks" => match value.get_ref() {
                DeValue::Table(t) => sink_tables.extend(t.iter()),
                other => c.error(
                    Some(value.span()),
                    None,
                    Some("sinks"),
                    format!(
                        "expected a table of sinks (`[sinks.<id>]`), found {}",
                        other.type_str()
                    ),
                ),
            },
            other => c.error(
                Some(key.span()),
                None,
                Some(other),
                walk::unknown_key_message(other, &TOP_LEVEL, "top-level sections"),
            ),
        }
    }
    let calendars = calendar_table.map_or_else(Calendars::default, |v| calendars::parse(&mut c, v));

    let mut checks = Vec::new();
    for &(id, table) in &check_tables {
        if let Some(spec) =
            components::parse_check(&mut c, &registry.checks, &defaults, &calendars, id, table)
        {
            checks.push(spec);
        }
    }
    components::validate_dependencies(&mut c, &root);
    let check_ids: Vec<&str> = check_tables.iter().map(|(k, _)| k.get_ref().as_ref()).collect();
    let mut rules: Vec<Rule> = Vec::new();
    for (index, value) in rule_tables.into_iter().enumerate() {
        if let Some(rule) = rules::parse_rule(&mut c, &registry.checks, &calendars, &check_ids, index, value)
        {
            let when = value
                .get_ref()
                .as_table()
                .and_then(|t| t.get("when"))
                .map(Spanned::span);
            rules::note_no_value(&mut c, &registry.checks, &checks, &rule, when);
            let remediate = value
                .get_ref()
                .as_table()
                .and_then(|t| t.get("remediate"))
                .map(Spanned::span);
            rules::check_remediation(&mut c, &registry.checks, &checks, &rule, remediate);
            if rules.iter().any(|r| r.config.name == rule.config.name) {
                let span = value
                    .get_ref()
                    .as_table()
                    .and_then(|t| t.get("name"))
                    .map(Spanned::span);
                c.error(
                    span,
                    Some(&format!("rules.{}", rule.config.name)),
                    Some("name"),
                    "another rule has this name: rule names must be unique",
                );
            }
            rules.push(rule);
        }
    }
    if checks.is_empty() && !c.has_errors() {
        c.note(
            None,
            None,
            "no checks are configured: add a `[checks.<id>]` table",
        );
    }

    let mut sinks = Vec::new();
    for (id_key, value) in sink_tables {
        if let Some(spec) = components::parse_sink(&mut c, &registry.sinks, id_key, value) {
            sinks.push(spec);
        }
    }
    let secrets = secrets::secret_variables(&server, &sinks, &checks);
    secrets::refuse_passthrough(&mut c, &secrets, &checks, &check_tables);
    // Report in file order; problems without a place (none so far) first.
    c.out.sort_by_key(|d| d.position);
    if c.has_errors() {
        return Err(Diagnostics(c.out));
    }
    Ok(Config {
        path: path.to_owned(),
        server,
        defaults,
        checks,
        rules,
        sinks,
        calendars,
        history,
        notes: c.out,
    })
}
