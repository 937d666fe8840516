//! Loading `vitals.toml`: every error at once, each with file, line, column, section
//! and key. Loading is pure: it reads the one file and touches nothing else.

pub mod diag;
pub mod duration;

use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use diag::Collector;
pub use diag::{Diagnostic, Diagnostics, Severity};

use crate::dispatch::SinkSpec;
use crate::plugin::{Kind, Kinds, ParsedCheck, ParsedComponent, Registry, suggest};
use crate::rules::Severity as AlertSeverity;
use crate::rules::{Condition, Rule, RuleConfig, Window, WindowConfig, validate_template};
use crate::schema::DurationStr;
use crate::sinks::{SinkRegistry, sink_registry};

/// The config file used when neither `-c` nor `$VITALS_CONFIG` names one.
pub const DEFAULT_PATH: &str = "config/vitals.toml";

/// `[server]`: the HTTP server (status page, API, metrics).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address and port the web server listens on. Loopback by default: put a reverse
    /// proxy with TLS in front before exposing it.
    pub listen: String,
    /// Name of the environment variable holding the bearer token that `POST` actions
    /// require. When the variable is unset or empty, actions are disabled (403).
    pub token_env: String,
    /// Directory for vitals' own state: alert state (so a restart neither re-sends nor
    /// forgets an alert) and each sink's outbox of undelivered events. Relative paths
    /// resolve against the config file's directory.
    pub state_dir: PathBuf,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8686".into(),
            token_env: "VITALS_TOKEN".into(),
            state_dir: PathBuf::from("state"),
        }
    }
}

/// `[defaults]`: settings every check inherits unless it sets its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Defaults {
    /// How often each check runs. Missed ticks are skipped, never bunched up.
    #[serde(with = "duration")]
    #[schemars(with = "DurationStr")]
    pub interval: Duration,
    /// How long one run may take before the runner reports the check `unknown`
    /// ("timed out after …"). A check whose target hangs reports that itself, as
    /// `critical`, just before this.
    #[serde(with = "duration")]
    #[schemars(with = "DurationStr")]
    pub timeout: Duration,
    /// Each check starts at a random offset up to this (capped at its interval) and
    /// keeps that phase, so checks do not all fire in the same instant.
    #[serde(with = "duration")]
    #[schemars(with = "DurationStr")]
    pub jitter: Duration,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(3),
            jitter: Duration::from_secs(1),
        }
    }
}

/// The keys every `[checks.<id>]` has, whatever its kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommonSettings {
    /// The check kind: one of those `vitals plugins` lists.
    pub kind: String,
    /// How often this check runs (default: `[defaults] interval`).
    #[serde(default, with = "duration::option")]
    #[schemars(with = "Option<DurationStr>")]
    pub interval: Option<Duration>,
    /// How long one run may take (default: `[defaults] timeout`).
    #[serde(default, with = "duration::option")]
    #[schemars(with = "Option<DurationStr>")]
    pub timeout: Option<Duration>,
    /// Largest random start offset (default: `[defaults] jitter`).
    #[serde(default, with = "duration::option")]
    #[schemars(with = "Option<DurationStr>")]
    pub jitter: Option<Duration>,
    /// Ids of checks this one depends on: while one of them is not ok, this check's
    /// alerts are held back (an IB outage does not also page for every stale table).
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Maintenance windows during which this check's alerts are held back, e.g.
    /// weekends for market-data freshness: `[{ start = "0 17 * * FRI", duration =
    /// "62h", timezone = "America/New_York", reason = "market closed" }]`.
    #[serde(default)]
    pub maintenance: Vec<WindowConfig>,
}

/// The common keys, as written in `[checks.<id>]`.
pub const COMMON_KEYS: [&str; 6] = [
    "kind",
    "interval",
    "timeout",
    "jitter",
    "depends_on",
    "maintenance",
];

/// The keys every `[sinks.<id>]` has, whatever its kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SinkSettings {
    /// The sink kind: one of those `vitals plugins` lists.
    pub kind: String,
    /// Alert events below this severity (`INFO` < `WARNING` < `CRITICAL`) are not sent
    /// to this sink.
    #[serde(default = "lowest_severity")]
    pub min_severity: AlertSeverity,
}

fn lowest_severity() -> AlertSeverity {
    AlertSeverity::Info
}

/// The common keys of `[sinks.<id>]`.
pub const SINK_COMMON_KEYS: [&str; 2] = ["kind", "min_severity"];

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
    /// Notes (not errors) found while loading.
    pub notes: Vec<Diagnostic>,
}

impl Config {
    /// The directory relative paths in the config are resolved against.
    pub fn dir(&self) -> PathBuf {
        config_dir(&self.path)
    }

    /// The state directory, resolved.
    pub fn state_dir(&self) -> PathBuf {
        let dir = &self.server.state_dir;
        if dir.is_absolute() {
            dir.clone()
        } else {
            self.dir().join(dir)
        }
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
        severity: Severity::Error,
        file: path.to_owned(),
        position: None,
        section: None,
        key: None,
        message: problem,
    }]))
}

const TOP_LEVEL: [&str; 5] = ["server", "defaults", "checks", "rules", "sinks"];

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

    for (key, value) in root.iter() {
        let name = key.get_ref().as_ref();
        match name {
            "server" => {
                if let Some(s) = section::<ServerConfig>(&mut c, "server", value) {
                    if let Err(e) = s.listen.parse::<std::net::SocketAddr>() {
                        let span = match value.get_ref() {
                            DeValue::Table(t) => t.get("listen").map(|v| v.span()),
                            _ => None,
                        };
                        c.error(
                            span.or(Some(value.span())),
                            Some("server"),
                            Some("listen"),
                            format!(
                                "`{}` is not an address and port ({e}); expected e.g. \"127.0.0.1:8686\"",
                                s.listen
                            ),
                        );
                    }
                    server = s;
                }
            }
            "defaults" => {
                if let Some(d) = section::<Defaults>(&mut c, "defaults", value) {
                    defaults = d;
                }
            }
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
                unknown_key_message(other, &TOP_LEVEL, "top-level sections"),
            ),
        }
    }
    validate_durations(&mut c, &defaults);

    let mut checks = Vec::new();
    for &(id, table) in &check_tables {
        if let Some(spec) = parse_check(&mut c, registry, &defaults, id, table) {
            checks.push(spec);
        }
    }
    validate_dependencies(&mut c, &root);
    let check_ids: Vec<&str> = check_tables.iter().map(|(k, _)| k.get_ref().as_ref()).collect();
    let mut rules: Vec<Rule> = Vec::new();
    for (index, value) in rule_tables.into_iter().enumerate() {
        if let Some(rule) = parse_rule(&mut c, registry, &check_ids, index, value) {
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
    match sink_registry() {
        Err(e) => c.error(None, None, None, format!("this build is inconsistent: {e}")),
        Ok(kinds) => {
            for (id_key, value) in sink_tables {
                if let Some(spec) = parse_sink(&mut c, kinds, id_key, value) {
                    sinks.push(spec);
                }
            }
        }
    }
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
        notes: c.out,
    })
}

fn validate_durations(c: &mut Collector, d: &Defaults) {
    if d.interval.is_zero() {
        c.error(None, Some("defaults"), Some("interval"), "must be longer than 0s");
    }
    if d.timeout.is_zero() {
        c.error(None, Some("defaults"), Some("timeout"), "must be longer than 0s");
    }
}

/// Deserializes a whole section, reporting unknown keys with suggestions.
fn section<T: for<'de> Deserialize<'de> + JsonSchema>(
    c: &mut Collector,
    name: &str,
    value: &Spanned<DeValue<'_>>,
) -> Option<T> {
    let DeValue::Table(table) = value.get_ref() else {
        c.error(
            Some(value.span()),
            None,
            Some(name),
            format!(
                "expected a table `[{name}]`, found {}",
                value.get_ref().type_str()
            ),
        );
        return None;
    };
    let keys: Vec<String> = crate::schema::keys_of::<T>()
        .into_iter()
        .map(|k| k.name)
        .collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    if report_unknown_keys(c, name, table, &keys, "keys") {
        return None;
    }
    deserialize_table(c, name, table, value.span())
}

/// Reports keys of `table` not in `allowed`; true if there were any.
fn report_unknown_keys(
    c: &mut Collector,
    section: &str,
    table: &DeTable<'_>,
    allowed: &[&str],
    what: &str,
) -> bool {
    let mut found = false;
    for key in table.keys() {
        let k = key.get_ref().as_ref();
        if !allowed.contains(&k) {
            c.error(
                Some(key.span()),
                Some(section),
                Some(k),
                unknown_key_message(k, allowed, what),
            );
            found = true;
        }
    }
    found
}

fn unknown_key_message(key: &str, allowed: &[&str], what: &str) -> String {
    format!(
        "unknown key `{key}`{}; expected one of the {what}: {}",
        suggest(key, allowed.iter().copied()),
        allowed.join(", ")
    )
}

/// Deserializes a table, reporting a failure at the key it concerns.
fn deserialize_table<T: for<'de> Deserialize<'de>>(
    c: &mut Collector,
    section: &str,
    table: &DeTable<'_>,
    span: Range<usize>,
) -> Option<T> {
    let de = ValueDeserializer::from(Spanned::new(span.clone(), DeValue::Table(table.clone())));
    match T::deserialize(de) {
        Ok(v) => Some(v),
        Err(e) => {
            report_de_error(c, section, table, span, &e);
            None
        }
    }
}

fn report_de_error(
    c: &mut Collector,
    section: &str,
    table: &DeTable<'_>,
    span: Range<usize>,
    e: &toml::de::Error,
) {
    let (key, at) = locate(table, e.span(), e.message());
    let message = e.message().to_owned();
    let message = match message.strip_prefix("missing field ") {
        Some(field) => format!("required key {field} is missing"),
        None => message,
    };
    c.error(Some(at.unwrap_or(span)), Some(section), key.as_deref(), message);
}

/// Which key of `table` an error is about, and where to point.
fn locate(
    table: &DeTable<'_>,
    span: Option<Range<usize>>,
    message: &str,
) -> (Option<String>, Option<Range<usize>>) {
    if let Some(span) = &span {
        for (k, v) in table.iter() {
            let (ks, vs) = (k.span(), v.span());
            if (ks.start <= span.start && span.end <= ks.end)
                || (vs.start <= span.start && span.end <= vs.end)
            {
                return (
                    Some(k.get_ref().to_string()),
                    Some(if span.start == vs.start { vs } else { span.clone() }),
                );
            }
        }
    }
    // "missing field `x`" points at the table; name the key anyway.
    let key = message
        .strip_prefix("missing field `")
        .and_then(|m| m.split('`').next())
        .map(str::to_owned);
    (key, span)
}

/// The common keys of a component table (`[checks.<id>]`, `[sinks.<id>]`).
trait CommonKeys: for<'de> Deserialize<'de> {
    /// The keys every kind of this component has.
    const KEYS: &'static [&'static str];
    /// The `kind` key's value.
    fn kind(&self) -> &str;
}

impl CommonKeys for CommonSettings {
    const KEYS: &'static [&'static str] = &COMMON_KEYS;
    fn kind(&self) -> &str {
        &self.kind
    }
}

impl CommonKeys for SinkSettings {
    const KEYS: &'static [&'static str] = &SINK_COMMON_KEYS;
    fn kind(&self) -> &str {
        &self.kind
    }
}

/// Checks the id of `[<what>.<id>]` (it appears in URLs, metrics and file names).
fn component_id(
    c: &mut Collector,
    what: &str,
    id_key: &Spanned<std::borrow::Cow<'_, str>>,
) -> Option<String> {
    let id = id_key.get_ref().to_string();
    if id.is_empty()
        || !id
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
    {
        c.error(
            Some(id_key.span()),
            Some(&format!("{what}.{id}")),
            None,
            "an id may only use letters, digits, `_` and `-` (it appears in URLs, metrics and file names)",
        );
        return None;
    }
    Some(id)
}

/// Parses one component table: its common keys, its kind (with suggestions), its
/// kind's own keys (unknown ones reported with the expected list) and the kind's pure
/// validation. `None` if anything was wrong (all of it reported).
fn parse_component<'t, K: Kind, S: CommonKeys>(
    c: &mut Collector,
    kinds: &Kinds<K>,
    section: &str,
    value: &'t Spanned<DeValue<'t>>,
) -> Option<(S, &'static K, Box<K::Parsed>, &'t DeTable<'t>)> {
    let DeValue::Table(table) = value.get_ref() else {
        c.error(
            Some(value.span()),
            None,
            Some(section),
            format!(
                "expected a table `[{section}]`, found {}",
                value.get_ref().type_str()
            ),
        );
        return None;
    };
    // Split the common keys from the kind's own.
    let mut common = DeTable::new();
    let mut own = DeTable::new();
    for (k, v) in table.iter() {
        if S::KEYS.contains(&k.get_ref().as_ref()) {
            common.insert(k.clone(), v.clone());
        } else {
            own.insert(k.clone(), v.clone());
        }
    }
    let settings: S = deserialize_table(c, section, &common, value.span())?;
    let Some(kind) = kinds.get(settings.kind()) else {
        let m = format!(
            "unknown {} `{}`{}",
            K::NOUN,
            settings.kind(),
            kinds.unknown_kind_hint(settings.kind())
        );
        c.error(
            table.get("kind").map(Spanned::span),
            Some(section),
            Some("kind"),
            m,
        );
        return None;
    };
    let kind_keys: Vec<String> = kind.keys().into_iter().map(|k| k.name).collect();
    let mut allowed: Vec<&str> = kind_keys.iter().map(String::as_str).collect();
    allowed.extend(S::KEYS);
    if report_unknown_keys(c, section, &own, &allowed, &format!("keys of `{}`", kind.name())) {
        return None;
    }
    let de = ValueDeserializer::from(Spanned::new(value.span(), DeValue::Table(own.clone())));
    let params = match kind.parse(de) {
        Ok(p) => p,
        Err(e) => {
            report_de_error(c, section, table, value.span(), &e);
            return None;
        }
    };
    let mut ok = true;
    for e in params.validate() {
        let span = table
            .get_key_value(e.key.as_str())
            .map(|(_, v)| v.span())
            .unwrap_or(value.span());
        c.error(Some(span), Some(section), Some(&e.key), e.message);
        ok = false;
    }
    ok.then_some((settings, kind, params, table))
}

fn parse_sink(
    c: &mut Collector,
    kinds: &SinkRegistry,
    id_key: &Spanned<std::borrow::Cow<'_, str>>,
    value: &Spanned<DeValue<'_>>,
) -> Option<SinkSpec> {
    let id = component_id(c, "sinks", id_key)?;
    let section = format!("sinks.{id}");
    let (settings, kind, params, _) = parse_component::<_, SinkSettings>(c, kinds, &section, value)?;
    Some(SinkSpec {
        id,
        kind: kind.name,
        min_severity: settings.min_severity,
        params,
    })
}

fn parse_check(
    c: &mut Collector,
    registry: &Registry,
    defaults: &Defaults,
    id_key: &Spanned<std::borrow::Cow<'_, str>>,
    value: &Spanned<DeValue<'_>>,
) -> Option<CheckSpec> {
    let id = component_id(c, "checks", id_key)?;
    let section = format!("checks.{id}");
    let (settings, kind, params, table) = parse_component::<_, CommonSettings>(c, registry, &section, value)?;
    let mut ok = true;
    let interval = settings.interval.unwrap_or(defaults.interval);
    let timeout = settings.timeout.unwrap_or(defaults.timeout);
    for (key, d) in [("interval", settings.interval), ("timeout", settings.timeout)] {
        if d.is_some_and(|d| d.is_zero()) {
            c.error(
                table.get(key).map(Spanned::span),
                Some(&section),
                Some(key),
                "must be longer than 0s",
            );
            ok = false;
        }
    }
    let maintenance = compile_windows(c, &section, table, &settings.maintenance);
    (ok && maintenance.is_some()).then(|| CheckSpec {
        id,
        kind: kind.name,
        interval,
        timeout,
        jitter: settings.jitter.unwrap_or(defaults.jitter).min(interval),
        depends_on: settings.depends_on,
        maintenance_config: settings.maintenance,
        maintenance: maintenance.unwrap_or_default(),
        params,
    })
}

/// Compiles maintenance windows, reporting each bad one at the `maintenance` key.
fn compile_windows(
    c: &mut Collector,
    section: &str,
    table: &DeTable<'_>,
    windows: &[WindowConfig],
) -> Option<Vec<Window>> {
    let mut ok = true;
    let mut out = Vec::new();
    for w in windows {
        match Window::compile(w) {
            Ok(w) => out.push(w),
            Err(e) => {
                c.error(
                    table.get("maintenance").map(Spanned::span),
                    Some(section),
                    Some("maintenance"),
                    e,
                );
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

fn validate_dependencies(c: &mut Collector, root: &DeTable<'_>) {
    // Read `depends_on` straight from the document, so a dependency typo is reported
    // even in a check that has other errors.
    let Some(tables) = root.get("checks").and_then(|v| v.get_ref().as_table()) else {
        return;
    };
    let all_ids: Vec<&str> = tables.keys().map(|k| k.get_ref().as_ref()).collect();
    let mut edges: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut spans = BTreeMap::new();
    for (id, table) in tables.iter() {
        let id = id.get_ref().as_ref();
        let Some(deps) = table.get_ref().as_table().and_then(|t| t.get("depends_on")) else {
            continue;
        };
        spans.insert(id, deps.span());
        let Some(list) = deps.get_ref().as_array() else {
            continue; // a type error, reported when the check is parsed
        };
        let section = format!("checks.{id}");
        for dep in list.iter() {
            let Some(name) = dep.get_ref().as_str() else {
                continue;
            };
            if name == id {
                c.error(
                    Some(dep.span()),
                    Some(&section),
                    Some("depends_on"),
                    "a check cannot depend on itself",
                );
            } else if !all_ids.contains(&name) {
                let m = format!(
                    "depends on `{name}`, which is not a configured check{}",
                    suggest(name, all_ids.iter().copied())
                );
                c.error(Some(dep.span()), Some(&section), Some("depends_on"), m);
            } else {
                edges.entry(id).or_default().push(name);
            }
        }
    }
    let mut reported = HashSet::new();
    for start in edges.keys() {
        let mut path = vec![*start];
        if let Some(cycle) = find_cycle(&edges, &mut path)
            && reported.insert(cycle.iter().min().copied().unwrap_or_default().to_owned())
        {
            let first = cycle[0];
            c.error(
                spans.get(first).cloned(),
                Some(&format!("checks.{first}")),
                Some("depends_on"),
                format!("dependency cycle: {}", cycle.join(" -> ")),
            );
        }
    }
}

fn parse_rule(
    c: &mut Collector,
    registry: &Registry,
    check_ids: &[&str],
    index: usize,
    value: &Spanned<DeValue<'_>>,
) -> Option<Rule> {
    let DeValue::Table(table) = value.get_ref() else {
        c.error(
            Some(value.span()),
            None,
            Some("rules"),
            "each rule is a table: write `[[rules]]`",
        );
        return None;
    };
    let section = match table.get("name").and_then(|n| n.get_ref().as_str()) {
        Some(name) => format!("rules.{name}"),
        None => format!("rules[{index}]"),
    };
    let keys: Vec<String> = crate::schema::keys_of::<RuleConfig>()
        .into_iter()
        .map(|k| k.name)
        .collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    if report_unknown_keys(c, &section, table, &keys, "keys of a rule") {
        return None;
    }
    let config: RuleConfig = deserialize_table(c, &section, table, value.span())?;
    let span_of = |key: &str| table.get(key).map(Spanned::span).or(Some(value.span()));
    let mut ok = true;
    if config.name.is_empty()
        || !config
            .name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
    {
        c.error(
            span_of("name"),
            Some(&section),
            Some("name"),
            "a rule name may only use letters, digits, `_` and `-`",
        );
        ok = false;
    }
    if config.checks.is_empty() && config.kinds.is_empty() {
        c.error(
            Some(value.span()),
            Some(&section),
            Some("checks"),
            "a rule must select checks: give `checks = [\"id\", …]` or `kinds = [\"kind\", …]`",
        );
        ok = false;
    }
    for id in &config.checks {
        if !check_ids.contains(&id.as_str()) {
            let m = format!(
                "`{id}` is not a configured check{}",
                suggest(id, check_ids.iter().copied())
            );
            c.error(span_of("checks"), Some(&section), Some("checks"), m);
            ok = false;
        }
    }
    for kind in &config.kinds {
        if registry.get(kind).is_none() {
            let m = format!(
                "`{kind}` is not a registered check kind{}",
                registry.unknown_kind_hint(kind)
            );
            c.error(span_of("kinds"), Some(&section), Some("kinds"), m);
            ok = false;
        }
    }
    let condition = match Condition::compile(&config.when) {
        Ok(cond) => Some(cond),
        Err(e) => {
            c.error(
                span_of("when"),
                Some(&section),
                Some("when"),
                format!("invalid condition: {e}"),
            );
            None
        }
    };
    if let Err(e) = validate_template(&config.message) {
        c.error(span_of("message"), Some(&section), Some("message"), e);
        ok = false;
    }
    let condition = condition?;
    let windows = compile_windows(c, &section, table, &config.maintenance)?;
    ok.then_some(Rule {
        config,
        condition,
        windows,
    })
}

fn find_cycle<'a>(edges: &BTreeMap<&'a str, Vec<&'a str>>, path: &mut Vec<&'a str>) -> Option<Vec<&'a str>> {
    let last = *path.last()?;
    for next in edges.get(last).into_iter().flatten() {
        if let Some(pos) = path.iter().position(|p| p == next) {
            let mut cycle = path[pos..].to_vec();
            cycle.push(next);
            return Some(cycle);
        }
        path.push(next);
        if let Some(c) = find_cycle(edges, path) {
            return Some(c);
        }
        path.pop();
    }
    None
}
