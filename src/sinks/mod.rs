//! Alert sinks: where alert events go (the alerts Delta table, email, Alertmanager, the
//! log). Each kind is one file or folder here, registered like check kinds with
//! [`register_sink!`](crate::register_sink); [`crate::dispatch`] gives every sink its own
//! queue, retries and durable outbox.

mod alertmanager;
mod delta;
mod email;
pub mod health;
mod heartbeat;
pub mod http;
mod log;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use crate::alert::AlertEvent;
use crate::delta::TableRef;
use crate::plugin::{BuildError, Family, KeyError, ParsedComponent, Registration};
use crate::schema::keys_of;

/// Why a delivery failed, and whether trying again can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SinkError {
    /// True for outages (connection refused, timeouts, 4xx SMTP, 5xx HTTP): the batch
    /// is retried with backoff until it is delivered. False for errors that repeating
    /// cannot fix (a rejected recipient, a 400): the batch goes to the dead-letter file.
    pub retryable: bool,
    /// What happened.
    pub message: String,
}

impl SinkError {
    /// A failure worth retrying.
    pub fn retry(message: impl Into<String>) -> Self {
        SinkError {
            retryable: true,
            message: message.into(),
        }
    }

    /// A failure that retrying cannot fix.
    pub fn permanent(message: impl Into<String>) -> Self {
        SinkError {
            retryable: false,
            message: message.into(),
        }
    }
}

/// A built sink.
#[async_trait]
pub trait Sink: Send + Sync + 'static {
    /// How long to gather events after the first one before delivering them together
    /// (a storm of alerts becomes one email). Zero: deliver at once.
    fn group_wait(&self) -> Duration {
        Duration::ZERO
    }

    /// Delivers a batch, all or nothing. Ids (`alert_id` + `state` + `event_at`) let a
    /// receiver drop the duplicates that at-least-once delivery can produce.
    async fn deliver(&self, events: &[AlertEvent]) -> Result<(), SinkError>;
}

/// What every sink of a config is built in: the surroundings a daemon gives it.
#[derive(Debug, Clone)]
pub struct SinkEnv {
    /// The config file's directory (relative paths resolve against it).
    pub config_dir: PathBuf,
    /// Whether vitals keeps its schedule.
    pub liveness: crate::health::Health,
    /// The desk's time zone (`[server] timezone`).
    pub zone: crate::timezone::DeskZone,
    /// Where people reach the page (`[server] public_url`).
    pub public_url: Option<String>,
    /// This instance's name (`[server] name`).
    pub name: String,
}

impl SinkEnv {
    /// A sink built outside a daemon: always healthy, the host's zone, no page.
    pub fn standalone(config_dir: &Path) -> SinkEnv {
        SinkEnv {
            config_dir: config_dir.to_owned(),
            liveness: crate::health::Health::always(),
            zone: crate::timezone::DeskZone::host(),
            public_url: None,
            name: crate::alert::hostname().to_owned(),
        }
    }
}

/// What a sink's `build` gets.
#[derive(Debug, Clone)]
pub struct SinkContext {
    /// The sink's id (`[sinks.<id>]`).
    pub id: String,
    /// The config file's directory (relative paths resolve against it).
    pub config_dir: PathBuf,
    /// Whether vitals keeps its schedule (for sinks that say "alive": `heartbeat`,
    /// Alertmanager's `VitalsWatchdog`).
    pub health: crate::health::Health,
    /// The desk's time zone: times a person reads (an email) are shown in it.
    pub zone: crate::timezone::DeskZone,
    /// Where people reach the status page (`[server] public_url`), for links.
    pub public_url: Option<String>,
    /// This instance's name (`[server] name`): the `instance` an alert comes from.
    pub name: String,
    /// Where the sink reports the outcome of work it does on its own, outside
    /// deliveries (a heartbeat's pings, Alertmanager's re-sends): its health on the page
    /// and `sink_failing` follow it.
    pub report: health::HealthReport,
}

impl SinkContext {
    /// Resolves a path from the config against the config file's directory.
    pub fn resolve_path(&self, path: &std::path::Path) -> PathBuf {
        crate::plugin::resolve_path(&self.config_dir, path)
    }
}

/// Which alert events a sink kind takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Takes {
    /// Every event: alerts and the record of actions (the alerts table, the log).
    All,
    /// Alert events (firing, resolved, acknowledged), not the record of actions (email,
    /// Alertmanager: an operator's button press pages no one).
    Alerts,
    /// None: the sink only says that vitals is alive (`heartbeat`). Nothing is queued
    /// for it and it keeps no outbox.
    Nothing,
}

impl Takes {
    /// Whether a sink that takes these takes `event`.
    pub fn takes(self, event: &AlertEvent) -> bool {
        match self {
            Takes::All => true,
            Takes::Alerts => event.state != crate::alert::AlertState::Action,
            Takes::Nothing => false,
        }
    }
}

/// A sink kind's typed configuration (the keys of `[sinks.<id>]` beyond `kind` and
/// `min_severity`); the same contract as [`crate::check::CheckConfig`].
pub trait SinkConfig:
    serde::de::DeserializeOwned + Serialize + schemars::JsonSchema + std::fmt::Debug + Send + Sync + 'static
{
    /// `kind = "…"`.
    const KIND: &'static str;
    /// One line saying where events go.
    const SUMMARY: &'static str;
    /// A complete example of the kind's keys.
    const EXAMPLE: &'static str;
    /// Which events it takes (default: all of them).
    const TAKES: Takes = Takes::All;

    /// Pure validation.
    fn validate(&self) -> Vec<KeyError> {
        Vec::new()
    }

    /// The alerts Delta table this sink appends to, if it does: the `/alerts` page reads
    /// the first such table.
    fn alerts_table(&self, _config_dir: &Path) -> Option<TableRef> {
        None
    }

    /// The file this sink appends to, if it does: `vitals validate` warns when it is an
    /// existing file that is not an alert log, or in a place no service should write.
    fn appends_to(&self, _config_dir: &Path) -> Option<PathBuf> {
        None
    }

    /// The environment variables this sink reads a secret from (a password, a URL with
    /// a token): no check may pass them on to a plugin.
    fn secret_env(&self) -> Vec<String> {
        Vec::new()
    }

    /// Builds the sink.
    fn build(&self, cx: &SinkContext) -> Result<Arc<dyn Sink>, BuildError>;
}

/// A sink kind's config after parsing, type-erased.
pub trait ParsedSink: ParsedComponent {
    /// See [`SinkConfig::build`].
    fn build(&self, cx: &SinkContext) -> Result<Arc<dyn Sink>, BuildError>;
    /// See [`SinkConfig::TAKES`].
    fn takes(&self) -> Takes;
    /// See [`SinkConfig::alerts_table`].
    fn alerts_table(&self, config_dir: &Path) -> Option<TableRef>;
    /// See [`SinkConfig::appends_to`].
    fn appends_to(&self, config_dir: &Path) -> Option<PathBuf>;
    /// See [`SinkConfig::secret_env`].
    fn secret_env(&self) -> Vec<String>;
}

/// Wraps a sink config so the blanket impls of checks and sinks do not overlap.
#[derive(Debug)]
struct SinkParams<C>(C);

impl<C: SinkConfig> ParsedComponent for SinkParams<C> {
    fn validate(&self) -> Vec<KeyError> {
        self.0.validate()
    }
    fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.0).unwrap_or(serde_json::Value::Null)
    }
}

impl<C: SinkConfig> ParsedSink for SinkParams<C> {
    fn build(&self, cx: &SinkContext) -> Result<Arc<dyn Sink>, BuildError> {
        self.0.build(cx)
    }
    fn takes(&self) -> Takes {
        C::TAKES
    }
    fn alerts_table(&self, config_dir: &Path) -> Option<TableRef> {
        self.0.alerts_table(config_dir)
    }
    fn appends_to(&self, config_dir: &Path) -> Option<PathBuf> {
        self.0.appends_to(config_dir)
    }
    fn secret_env(&self) -> Vec<String> {
        self.0.secret_env()
    }
}

/// The family of sink kinds.
#[derive(Debug)]
pub enum Sinks {}

impl Family for Sinks {
    const NOUN: &'static str = "sink kind";
    type Parsed = dyn ParsedSink;
    type Extra = ();
}

/// One registered sink kind.
pub type SinkKind = Registration<Sinks>;

impl Registration<Sinks> {
    /// The registration of `C` (see [`register_sink!`](crate::register_sink)).
    pub const fn of<C: SinkConfig>(file: &'static str, line: u32) -> SinkKind {
        Registration {
            name: C::KIND,
            summary: C::SUMMARY,
            unit: "",
            example: C::EXAMPLE,
            file,
            line,
            parse: parse_as::<C>,
            keys: keys_of::<C>,
            extra: (),
        }
    }
}

fn parse_as<C: SinkConfig>(
    de: toml::de::ValueDeserializer<'_>,
) -> Result<Box<dyn ParsedSink>, toml::de::Error> {
    let config: C = serde::Deserialize::deserialize(de)?;
    Ok(Box::new(SinkParams(config)))
}

inventory::collect!(SinkKind);

/// Registers a sink kind from its own file: `crate::register_sink!(EmailConfig);`
#[macro_export]
macro_rules! register_sink {
    ($config:ty) => {
        $crate::inventory::submit! {
            $crate::sinks::SinkKind::of::<$config>(file!(), line!())
        }
    };
}
