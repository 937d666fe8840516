//! The plugin API: what a check kind implements and what it produces.
//!
//! A kind has a typed config ([`CheckConfig`]: serde + schemars, `deny_unknown_fields`)
//! with a pure [`CheckConfig::validate`] and an effectful [`CheckConfig::build`] that
//! returns the [`Check`] the runner calls on every tick. Kinds register themselves with
//! [`crate::register_check!`] from their own file under `checks/`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::board::Board;
use crate::resources::Resources;

/// The health of one check at one moment, ordered by how bad it is for display
/// (`ok` < `warning` < `unknown` < `critical`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Everything is within its thresholds.
    Ok,
    /// A threshold was reached; someone should look soon.
    Warning,
    /// Act now.
    Critical,
    /// The check could not tell (it failed, timed out or panicked).
    Unknown,
}

impl Status {
    /// All statuses, in the order of their Nagios exit codes.
    pub const ALL: [Status; 4] = [Status::Ok, Status::Warning, Status::Critical, Status::Unknown];

    /// The lowercase name used in JSON and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Critical => "critical",
            Status::Unknown => "unknown",
        }
    }

    /// The Nagios plugin exit code of this status (0, 1, 2, 3).
    pub fn nagios_code(self) -> i32 {
        match self {
            Status::Ok => 0,
            Status::Warning => 1,
            Status::Critical => 2,
            Status::Unknown => 3,
        }
    }

    /// Rank for "worst of": ok < warning < unknown < critical.
    pub fn severity_rank(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Warning => 1,
            Status::Unknown => 2,
            Status::Critical => 3,
        }
    }

    /// The worse of two statuses.
    pub fn worst(self, other: Status) -> Status {
        if other.severity_rank() > self.severity_rank() {
            other
        } else {
            self
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a check says about its target on one run. The runner adds identity and timing
/// to make an [`Observation`].
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// ok / warning / critical / unknown.
    pub status: Status,
    /// The headline number (percent, seconds, count…), if the check has one.
    pub value: Option<f64>,
    /// The unit of `value` (`%`, `s`, `ms`, …); empty when there is none.
    pub unit: String,
    /// A kind-specific word for the state (FRESH / STALE, CONNECTED…), if any.
    pub label: Option<String>,
    /// One line for a human.
    pub message: String,
    /// Everything else, as a JSON object.
    pub details: Map<String, Value>,
}

impl Reading {
    /// A reading with a status and message and nothing else.
    pub fn new(status: Status, message: impl Into<String>) -> Self {
        Reading {
            status,
            value: None,
            unit: String::new(),
            label: None,
            message: message.into(),
            details: Map::new(),
        }
    }

    /// An `unknown` reading: the check could not tell.
    pub fn unknown(message: impl Into<String>) -> Self {
        Self::new(Status::Unknown, message)
    }

    /// Sets the headline value and its unit.
    pub fn with_value(mut self, value: f64, unit: impl Into<String>) -> Self {
        self.value = value.is_finite().then_some(value);
        self.unit = unit.into();
        self
    }

    /// Sets the label.
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Adds one entry to `details`.
    pub fn with_detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }
}

/// One check's result at one moment: the unit the board, the rules and every
/// output (JSON, page, metrics) work with. Serializes to SPEC.md's observation JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Observation {
    /// The check's id (`[checks.<id>]`).
    pub id: String,
    /// The check's kind.
    pub kind: String,
    /// ok / warning / critical / unknown.
    pub status: Status,
    /// Kind-specific state word, or null.
    pub label: Option<String>,
    /// Headline value, or null.
    pub value: Option<f64>,
    /// Unit of `value`.
    pub unit: String,
    /// One line for a human.
    pub message: String,
    /// When the run started (UTC, millisecond precision in JSON).
    #[serde(serialize_with = "serialize_millis")]
    pub observed_at: DateTime<Utc>,
    /// How long the run took, in milliseconds.
    pub duration_ms: f64,
    /// Kind-specific details.
    pub details: Map<String, Value>,
}

fn serialize_millis<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

impl Observation {
    /// Wraps a reading with the check's identity and timing.
    pub fn from_reading(
        id: &str,
        kind: &str,
        reading: Reading,
        observed_at: DateTime<Utc>,
        duration: Duration,
    ) -> Self {
        Observation {
            id: id.to_owned(),
            kind: kind.to_owned(),
            status: reading.status,
            label: reading.label,
            value: reading.value,
            unit: reading.unit,
            message: reading.message,
            observed_at,
            duration_ms: (duration.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
            details: reading.details,
        }
    }
}

/// What the runner hands a check on each run.
#[derive(Debug, Clone)]
pub struct RunContext {
    /// The check's id.
    pub id: String,
    /// When this run was scheduled to start (the tick), for lag measurement.
    pub scheduled: Instant,
    /// When the runner will give up on this run. A check whose *target* hangs should
    /// answer before this (see [`RunContext::before_deadline`]) with the cause.
    pub deadline: Instant,
    /// The configured timeout.
    pub timeout: Duration,
}

impl RunContext {
    /// How much time is left before the runner's deadline, less a small margin so a
    /// check answering "my target hung" wins the race against the runner's timeout.
    pub fn budget(&self) -> Duration {
        let margin = (self.timeout / 20).min(Duration::from_millis(100));
        self.deadline
            .saturating_duration_since(Instant::now())
            .saturating_sub(margin)
    }

    /// Runs `fut`, or returns `None` if it has not finished within [`RunContext::budget`].
    pub async fn before_deadline<F: std::future::Future>(&self, fut: F) -> Option<F::Output> {
        tokio::time::timeout(self.budget(), fut).await.ok()
    }
}

/// An action a check offers (`POST /api/checks/{id}/actions/{name}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionSpec {
    /// The action's name in the URL.
    pub name: &'static str,
    /// What it does, for the page and `vitals plugins`.
    pub description: &'static str,
    /// Whether the page asks for confirmation first.
    pub destructive: bool,
}

/// The result of an action.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionOutcome {
    /// Whether it did what it was asked.
    pub ok: bool,
    /// What happened, for a human.
    pub message: String,
    /// Anything else (captured output, rows touched…).
    pub details: Map<String, Value>,
}

/// Why an action could not run.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// The check has no action of that name.
    #[error("check `{check}` has no action `{action}`{}", available_actions(.available))]
    NoSuchAction {
        /// The check's id.
        check: String,
        /// The requested action.
        action: String,
        /// The actions it has.
        available: Vec<&'static str>,
    },
    /// The action started and failed.
    #[error("{0}")]
    Failed(String),
}

fn available_actions(list: &[&'static str]) -> String {
    if list.is_empty() {
        " (it has none)".to_owned()
    } else {
        format!(" (it has: {})", list.join(", "))
    }
}

/// A running check, built from its config. The runner owns scheduling, the timeout and
/// panic isolation; `run` only looks at the target and says what it saw.
///
/// `run` must not block the thread: wrap blocking calls in `tokio::task::spawn_blocking`.
#[async_trait]
pub trait Check: Send + Sync + 'static {
    /// Looks at the target once.
    async fn run(&self, cx: &RunContext) -> Reading;

    /// The actions this check offers; none by default.
    fn actions(&self) -> Vec<ActionSpec> {
        Vec::new()
    }

    /// Performs one of [`Check::actions`].
    async fn act(&self, action: &str, cx: &RunContext) -> Result<ActionOutcome, ActionError> {
        Err(ActionError::NoSuchAction {
            check: cx.id.clone(),
            action: action.to_owned(),
            available: self.actions().iter().map(|a| a.name).collect(),
        })
    }
}

/// A config-level problem with one key of a check (from [`CheckConfig::validate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError {
    /// The key it is about, as written in the TOML.
    pub key: String,
    /// What is wrong and what is expected.
    pub message: String,
}

impl KeyError {
    /// A problem with `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        KeyError {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Why `build` failed (e.g. an invalid resource the check needs).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct BuildError(pub String);

/// What `build` gets: shared resources, a way to publish between runs, and the
/// lifetime of the check (cancelled when it is removed, changed by a reload, or on
/// shutdown).
#[derive(Clone)]
pub struct BuildContext {
    /// The check's id.
    pub id: String,
    /// The check's kind.
    pub kind: &'static str,
    /// The directory of the config file; relative paths in a check's config are
    /// resolved against it.
    pub config_dir: PathBuf,
    /// Process-wide shared resources (one `System` for all system checks, …).
    pub resources: Arc<Resources>,
    /// Cancelled when this check instance is retired.
    pub cancel: CancellationToken,
    pub(crate) board: Option<Board>,
}

impl BuildContext {
    /// A context for a check that runs outside a daemon (tests, `vitals check`).
    pub fn standalone(id: &str, kind: &'static str, config_dir: &Path) -> Self {
        BuildContext {
            id: id.to_owned(),
            kind,
            config_dir: config_dir.to_owned(),
            resources: Arc::new(Resources::default()),
            cancel: CancellationToken::new(),
            board: None,
        }
    }

    /// Resolves a path from the config: absolute as is, relative against the config
    /// file's directory.
    pub fn resolve_path(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_owned()
        } else {
            self.config_dir.join(path)
        }
    }

    /// A handle to publish observations between scheduled runs (push, e.g. a dropped
    /// connection), so detection never waits for the next interval.
    pub fn publisher(&self) -> Publisher {
        Publisher {
            id: self.id.clone(),
            kind: self.kind,
            board: self.board.clone(),
        }
    }
}

/// Publishes readings for one check outside its schedule. Outside a daemon it does
/// nothing.
#[derive(Clone)]
pub struct Publisher {
    id: String,
    kind: &'static str,
    board: Option<Board>,
}

impl Publisher {
    /// Puts `reading` on the status board now, as this check's latest observation.
    pub fn publish(&self, reading: Reading) {
        if let Some(board) = &self.board {
            board.publish(Observation::from_reading(
                &self.id,
                self.kind,
                reading,
                Utc::now(),
                Duration::ZERO,
            ));
        }
    }
}

/// A check kind's typed configuration: the keys of `[checks.<id>]` beyond the common
/// ones (`kind`, `interval`, `timeout`, `jitter`, `depends_on`).
///
/// Derive `Deserialize` with `#[serde(deny_unknown_fields)]`, `Serialize` (for the
/// defaults shown by `vitals plugins`) and `schemars::JsonSchema` (the `///` on each field
/// becomes the user documentation).
pub trait CheckConfig:
    serde::de::DeserializeOwned + Serialize + schemars::JsonSchema + fmt::Debug + Send + Sync + 'static
{
    /// The kind's name, as written in `kind = "…"`.
    const KIND: &'static str;
    /// One line saying what the kind watches.
    const SUMMARY: &'static str;
    /// The value's unit (empty when the kind has no single value).
    const UNIT: &'static str = "";
    /// A complete example of the kind's keys (the body of a `[checks.<id>]` table,
    /// without `kind`). A registry-driven test parses and validates it, and the docs
    /// show it.
    const EXAMPLE: &'static str;

    /// Pure validation: no I/O, no await. Returns every problem found.
    fn validate(&self) -> Vec<KeyError> {
        Vec::new()
    }

    /// Builds the running check. May acquire resources (connections, handles).
    fn build(&self, cx: &BuildContext) -> Result<Arc<dyn Check>, BuildError>;
}
