//! Alert sinks: where alert events go (the alerts Delta table, email, Alertmanager, the
//! log). Each kind is one file or folder here, registered like check kinds with
//! [`register_sink!`](crate::register_sink); [`crate::dispatch`] gives every sink its own
//! queue, retries and durable outbox.

mod alertmanager;
mod delta;
mod email;
mod log;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use crate::check::{BuildError, KeyError};
use crate::plugin::{DuplicateKind, Kind, Kinds, ParsedComponent, location};
use crate::rules::AlertEvent;
use crate::schema::{KeyDoc, keys_of};

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

/// What a sink's `build` gets.
#[derive(Debug, Clone)]
pub struct SinkContext {
    /// The sink's id (`[sinks.<id>]`).
    pub id: String,
    /// The config file's directory (relative paths resolve against it).
    pub config_dir: PathBuf,
}

impl SinkContext {
    /// Resolves a path from the config against the config file's directory.
    pub fn resolve_path(&self, path: &std::path::Path) -> PathBuf {
        if path.is_absolute() {
            path.to_owned()
        } else {
            self.config_dir.join(path)
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

    /// Pure validation.
    fn validate(&self) -> Vec<KeyError> {
        Vec::new()
    }

    /// Builds the sink.
    fn build(&self, cx: &SinkContext) -> Result<Arc<dyn Sink>, BuildError>;
}

/// A sink kind's config after parsing, type-erased.
pub trait ParsedSink: ParsedComponent {
    /// See [`SinkConfig::build`].
    fn build(&self, cx: &SinkContext) -> Result<Arc<dyn Sink>, BuildError>;
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
}

/// The parser of one sink kind.
pub type SinkParseFn =
    for<'i> fn(toml::de::ValueDeserializer<'i>) -> Result<Box<dyn ParsedSink>, toml::de::Error>;

/// One registered sink kind.
pub struct SinkKind {
    /// `kind = "…"`.
    pub name: &'static str,
    /// Where events go.
    pub summary: &'static str,
    /// Example keys.
    pub example: &'static str,
    /// Registration file.
    pub file: &'static str,
    /// Registration line.
    pub line: u32,
    /// Parses the kind's keys.
    pub parse: SinkParseFn,
    /// Documents the kind's keys.
    pub keys: fn() -> Vec<KeyDoc>,
}

impl SinkKind {
    /// The registration of `C` (see [`register_sink!`](crate::register_sink)).
    pub const fn of<C: SinkConfig>(file: &'static str, line: u32) -> SinkKind {
        SinkKind {
            name: C::KIND,
            summary: C::SUMMARY,
            example: C::EXAMPLE,
            file,
            line,
            parse: parse_sink_as::<C>,
            keys: keys_of::<C>,
        }
    }
}

fn parse_sink_as<C: SinkConfig>(
    de: toml::de::ValueDeserializer<'_>,
) -> Result<Box<dyn ParsedSink>, toml::de::Error> {
    let config: C = serde::Deserialize::deserialize(de)?;
    Ok(Box::new(SinkParams(config)))
}

impl std::fmt::Debug for SinkKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SinkKind({} at {})", self.name, location(self.file, self.line))
    }
}

impl Kind for SinkKind {
    const NOUN: &'static str = "sink kind";
    type Parsed = dyn ParsedSink;
    fn name(&self) -> &'static str {
        self.name
    }
    fn location(&self) -> String {
        location(self.file, self.line)
    }
    fn parse(&self, de: toml::de::ValueDeserializer<'_>) -> Result<Box<dyn ParsedSink>, toml::de::Error> {
        (self.parse)(de)
    }
    fn keys(&self) -> Vec<KeyDoc> {
        (self.keys)()
    }
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

/// The sink kinds.
pub type SinkRegistry = Kinds<SinkKind>;

/// The registry of every sink kind linked into this binary.
pub fn sink_registry() -> Result<&'static SinkRegistry, DuplicateKind> {
    static REGISTRY: OnceLock<Result<SinkRegistry, DuplicateKind>> = OnceLock::new();
    REGISTRY
        .get_or_init(|| SinkRegistry::from_kinds(inventory::iter::<SinkKind>))
        .as_ref()
        .map_err(Clone::clone)
}
