//! Loading `vitals.toml`: every error at once, each with file, line, column, section
//! and key. Loading is pure: it reads the one file and touches nothing else.

mod calendars;
mod components;
pub mod diag;
mod rules;
mod walk;

use std::path::{Path, PathBuf};
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

pub use calendars::Calendars;
use diag::Collector;
pub use diag::{Diagnostic, Diagnostics, Level};

use crate::alert::Severity as AlertSeverity;
use crate::check::ParsedCheck;
use crate::duration::{Span, SpanOrOff};
use crate::market::MarketHours;
use crate::registry::Registry;
use crate::rules::{Rule, Window, WindowConfig};
use crate::sinks::ParsedSink;

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
    /// resolve against the config file's directory. Unset: `$STATE_DIRECTORY` (set by
    /// systemd's `StateDirectory=`: `/var/lib/vitals` with dist/systemd/vitals.service),
    /// else `state` beside the config file.
    pub state_dir: Option<PathBuf>,
    /// Connections the web server serves at once; more are closed at once (refused,
    /// not queued), so idle or slow clients cannot use up vitals' file descriptors.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers, and how long a
    /// keep-alive connection may stay idle: then the server closes it.
    pub header_timeout: Span,
    /// Host names the web server answers to, besides `localhost`, `127.0.0.1`, `::1`
    /// and the `listen` address: the name a reverse proxy or the desk's browsers use,
    /// e.g. `["vitals.desk.example"]`. Any other `Host` gets 421 on every route, and a
    /// `POST` must come from a page on one of these names (against DNS rebinding).
    pub allowed_hosts: Vec<String>,
    /// Name of an environment variable holding a token that reading needs too: when it
    /// is set and not empty, `/`, `/api/*` and `/metrics` ask for it (HTTP Basic with
    /// any user name, or `Authorization: Bearer`); `/healthz` stays open. For a page
    /// reached beyond loopback without a proxy in front. Unset by default.
    pub read_token_env: Option<String>,
    /// The URL people reach the page at through a reverse proxy, e.g.
    /// `"https://vitals.desk.example/"`: its host name is answered to like
    /// `allowed_hosts`, and the page's buttons work from it (their `Origin`). A proxy
    /// that rewrites `Host` (nginx's default `proxy_pass`) needs nothing else.
    pub public_url: Option<String>,
}

/// The names the web server always answers to.
pub const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

impl ServerConfig {
    /// Every host name the web server answers to (lowercase, without ports).
    pub fn allowed_hosts(&self) -> Vec<String> {
        let mut hosts: Vec<String> = LOOPBACK_HOSTS.map(str::to_owned).to_vec();
        if let Ok(addr) = self.listen.parse::<std::net::SocketAddr>()
            && !addr.ip().is_unspecified()
        {
            hosts.push(addr.ip().to_string());
        }
        let public = self.public_url.as_deref().and_then(public_host);
        for h in self.allowed_hosts.iter().chain(public.as_ref()) {
            let h = h
                .trim()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_ascii_lowercase();
            if !h.is_empty() && !hosts.contains(&h) {
                hosts.push(h);
            }
        }
        hosts
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8686".into(),
            token_env: "VITALS_TOKEN".into(),
            state_dir: None,
            max_connections: 512,
            header_timeout: Span::secs(10),
            allowed_hosts: Vec::new(),
            read_token_env: None,
            public_url: None,
        }
    }
}

/// `[defaults]`: settings every check inherits unless it sets its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Defaults {
    /// How often each check runs. Missed ticks are skipped, never bunched up.
    pub interval: Span,
    /// How long one run may take before the runner reports the check `unknown`
    /// ("timed out after …"). A check whose target hangs reports that itself, as
    /// `critical`, just before this.
    pub timeout: Span,
    /// Each check starts at a random offset up to this (capped at its interval) and
    /// keeps that phase, so checks do not all fire in the same instant.
    pub jitter: Span,
    /// The built-in rule `check_unknown` pages when a check has been `unknown` (it
    /// could not tell: a corrupt table, a permission error, a broken plugin) or has not
    /// managed a first run for this long: "vitals cannot see <check>: …". `"off"`
    /// disables it.
    pub unknown_after: SpanOrOff,
    /// The severity of `check_unknown` alerts.
    pub unknown_severity: AlertSeverity,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            interval: Span::secs(5),
            timeout: Span::secs(3),
            jitter: Span::secs(1),
            unknown_after: SpanOrOff::After(Span::secs(120)),
            unknown_severity: AlertSeverity::Warning,
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
    #[serde(default)]
    pub interval: Option<Span>,
    /// How long one run may take (default: `[defaults] timeout`).
    #[serde(default)]
    pub timeout: Option<Span>,
    /// Largest random start offset (default: `[defaults] jitter`).
    #[serde(default)]
    pub jitter: Option<Span>,
    /// Ids of checks this one depends on: while one of them is not ok, this check's
    /// alerts are held back (an IB outage does not also page for every stale table).
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Maintenance windows during which this check's alerts are held back, e.g.
    /// weekends for market-data freshness: `[{ start = "0 17 * * FRI", duration =
    /// "62h", timezone = "America/New_York", reason = "market closed" }]`.
    #[serde(default)]
    pub maintenance: Vec<WindowConfig>,
    /// A market calendar (`"nyse"`, `"nyse_extended"` or a `[calendars.<name>]`):
    /// outside its session this check's alerts are held back the way maintenance holds
    /// them, with the cause named ("market closed: Thanksgiving Day"), and fire
    /// afterwards only if still true. The check keeps running and the page shows its
    /// real status.
    #[serde(default)]
    pub market_hours: Option<String>,
    /// How long after the session opens alerts are still held (data needs a few
    /// minutes to catch up), e.g. `"5m"`; needs `market_hours`.
    #[serde(default)]
    pub market_grace: Option<Span>,
    /// How long this check may stay `unknown` before `check_unknown` pages (default:
    /// `[defaults] unknown_after`; `"off"` disables it for this check).
    #[serde(default)]
    pub unknown_after: Option<SpanOrOff>,
    /// The severity of this check's `check_unknown` alerts (default: `[defaults]
    /// unknown_severity`).
    #[serde(default)]
    pub unknown_severity: Option<AlertSeverity>,
}

/// The common keys, as written in `[checks.<id>]`.
pub const COMMON_KEYS: [&str; 10] = [
    "kind",
    "interval",
    "timeout",
    "jitter",
    "depends_on",
    "maintenance",
    "market_hours",
    "market_grace",
    "unknown_after",
    "unknown_severity",
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
    /// The kind's own config.
    pub params: Box<dyn ParsedSink>,
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

    /// What `vitals validate` warns about beyond the file itself (loading reads nothing
    /// else; this does, read-only): a sink's `path` outside the state directory that
    /// names an existing file which is not a vitals alert log — the sink would append
    /// to it.
    pub fn warnings(&self) -> Vec<String> {
        use std::io::{BufRead, Read};
        let state = self.state_dir();
        let mut out = Vec::new();
        if let Some(why) = not_for_data(&state) {
            out.push(format!(
                "{}: [server] key `state_dir`: warning: vitals' state would go to {}, {why}; set `state_dir = \"/var/lib/vitals\"`, or leave it unset under systemd (StateDirectory=vitals)",
                self.path.display(),
                state.display()
            ));
        }
        for sink in &self.sinks {
            let params = sink.params.to_json();
            let Some(path) = params.get("path").and_then(|p| p.as_str()) else {
                continue;
            };
            let file = crate::plugin::resolve_path(&self.dir(), Path::new(path));
            if let Some(why) = not_for_data(&file) {
                out.push(format!(
                    "{}: [sinks.{}] key `path`: warning: the sink would write {}, {why}; use an absolute path under /var/lib or /var/log",
                    self.path.display(),
                    sink.id,
                    file.display()
                ));
                continue;
            }
            if file.starts_with(&state) || !file.is_file() {
                continue;
            }
            let first = std::fs::File::open(&file).ok().and_then(|f| {
                let mut line = String::new();
                std::io::BufReader::new(f.take(64 * 1024))
                    .read_line(&mut line)
                    .ok()?;
                Some(line)
            });
            let is_log = first.as_deref().is_none_or(|l| {
                l.trim().is_empty()
                    || serde_json::from_str::<serde_json::Value>(l).is_ok_and(|v| v.get("alert_id").is_some())
            });
            if !is_log {
                out.push(format!(
                    "{}: [sinks.{}] key `path`: warning: {} is an existing file that is not a vitals alert log; the sink would append alert events to it",
                    self.path.display(),
                    sink.id,
                    file.display()
                ));
            }
        }
        out
    }

    /// The check with this id.
    pub fn check(&self, id: &str) -> Option<&CheckSpec> {
        self.checks.iter().find(|c| c.id == id)
    }
}

/// The host name of a `public_url` (`https://name:port/path` → `name`).
fn public_host(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?;
    let name = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => authority.split(':').next()?,
    };
    (!name.is_empty()).then(|| name.to_ascii_lowercase())
}

/// Why vitals should not write under `path`: a system directory (read-only for a
/// hardened service, `ProtectSystem=strict`), or a place this user cannot write.
fn not_for_data(path: &Path) -> Option<String> {
    const SYSTEM: [&str; 8] = ["/etc", "/usr", "/boot", "/bin", "/sbin", "/lib", "/proc", "/sys"];
    if let Some(dir) = SYSTEM.iter().find(|d| path.starts_with(d)) {
        return Some(format!(
            "under {dir}: read-only for the service (ProtectSystem=strict) and no place for data"
        ));
    }
    let mut existing = path;
    while !existing.exists() {
        existing = existing.parent()?;
    }
    nix::unistd::access(existing, nix::unistd::AccessFlags::W_OK)
        .err()
        .map(|_| format!("and {} is not writable by this user", existing.display()))
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
            "server" => {
                if let Some(s) = walk::section::<ServerConfig>(&mut c, "server", value) {
                    let key_span = |key: &str| match value.get_ref() {
                        DeValue::Table(t) => t.get(key).map(|v| v.span()),
                        _ => None,
                    };
                    if let Err(e) = s.listen.parse::<std::net::SocketAddr>() {
                        c.error(
                            key_span("listen").or(Some(value.span())),
                            Some("server"),
                            Some("listen"),
                            format!(
                                "`{}` is not an address and port ({e}); expected e.g. \"127.0.0.1:8686\"",
                                s.listen
                            ),
                        );
                    }
                    if s.max_connections == 0 {
                        c.error(
                            key_span("max_connections").or(Some(value.span())),
                            Some("server"),
                            Some("max_connections"),
                            "must be at least 1",
                        );
                    }
                    if let Some(url) = &s.public_url
                        && public_host(url).is_none()
                    {
                        c.error(
                            key_span("public_url").or(Some(value.span())),
                            Some("server"),
                            Some("public_url"),
                            format!("`{url}` is not a URL: write e.g. \"https://vitals.desk.example/\""),
                        );
                    }
                    if s.header_timeout.is_zero() {
                        c.error(
                            key_span("header_timeout").or(Some(value.span())),
                            Some("server"),
                            Some("header_timeout"),
                            "must be longer than 0s",
                        );
                    }
                    server = s;
                }
            }
            "defaults" => {
                if let Some(d) = walk::section::<Defaults>(&mut c, "defaults", value) {
                    defaults = d;
                }
            }
            "calendars" => calendar_table = Some(value),
            "history" => {
                if let Some(h) = walk::section::<crate::history::HistoryConfig>(&mut c, "history", value) {
                    let key_span = |key: &str| match value.get_ref() {
                        DeValue::Table(t) => t.get(key).map(|v| v.span()),
                        _ => None,
                    };
                    let mut problems = Vec::new();
                    if *h.resolution < Duration::from_secs(1) {
                        problems.push(crate::plugin::KeyError::new("resolution", "must be at least 1s"));
                    }
                    if *h.retention <= *h.resolution {
                        problems.push(crate::plugin::KeyError::new(
                            "retention",
                            "must be longer than the resolution",
                        ));
                    }
                    if let Some(table) = &h.table {
                        problems.extend(crate::delta::table_key(table, "the history table"));
                        problems.extend(crate::delta::storage_options_key(table, &h.storage_options));
                    }
                    for e in problems {
                        c.error(
                            key_span(&e.key).or(Some(value.span())),
                            Some("history"),
                            Some(&e.key),
                            e.message,
                        );
                    }
                    history = Some(h);
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
                walk::unknown_key_message(other, &TOP_LEVEL, "top-level sections"),
            ),
        }
    }
    validate_durations(&mut c, &defaults);
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
    refuse_secret_passthrough(&mut c, &server, &sinks, &checks, &check_tables);
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

/// No check may pass a plugin a variable that the config names as holding a secret:
/// `[server] token_env`, `read_token_env`, and every sink key ending in `_env`
/// (`password_env`…).
fn refuse_secret_passthrough(
    c: &mut Collector,
    server: &ServerConfig,
    sinks: &[SinkSpec],
    checks: &[CheckSpec],
    tables: &[(&Spanned<std::borrow::Cow<'_, str>>, &Spanned<DeValue<'_>>)],
) {
    let mut secrets = vec![server.token_env.clone()];
    secrets.extend(server.read_token_env.clone());
    for sink in sinks {
        if let serde_json::Value::Object(keys) = sink.params.to_json() {
            secrets.extend(
                keys.iter()
                    .filter(|(k, _)| k.ends_with("_env"))
                    .filter_map(|(_, v)| v.as_str().map(str::to_owned)),
            );
        }
    }
    for check in checks {
        let listed = check.params.to_json();
        let Some(names) = listed.get("env_passthrough").and_then(|v| v.as_array()) else {
            continue;
        };
        for name in names.iter().filter_map(|n| n.as_str()) {
            if secrets.iter().any(|s| s == name) {
                let span = tables
                    .iter()
                    .find(|(id, _)| id.get_ref().as_ref() == check.id)
                    .and_then(|(_, t)| t.get_ref().as_table()?.get("env_passthrough").map(Spanned::span));
                c.error(
                    span,
                    Some(&format!("checks.{}", check.id)),
                    Some("env_passthrough"),
                    format!("`{name}` holds a secret of vitals' (another key of this config names it): it is never passed to a plugin"),
                );
            }
        }
    }
}

fn validate_durations(c: &mut Collector, d: &Defaults) {
    if d.interval.is_zero() {
        c.error(None, Some("defaults"), Some("interval"), "must be longer than 0s");
    }
    if d.timeout.is_zero() {
        c.error(None, Some("defaults"), Some("timeout"), "must be longer than 0s");
    }
}
