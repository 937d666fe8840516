//! The plugin API: what a check kind implements and what it produces.
//!
//! A kind has a typed config ([`CheckConfig`]: serde + schemars, `deny_unknown_fields`)
//! with a pure [`CheckConfig::validate`] and an effectful [`CheckConfig::build`] that
//! returns the [`Check`] the runner calls on every tick. Kinds register themselves with
//! [`crate::register_check!`] from their own file under `src/checks/`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use serde::Serialize;
use serde_json::{Map, Value};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::board::Board;
pub use crate::observation::{Observation, Reading, Status};
pub use crate::panel::{Panel, Section};
pub use crate::plugin::{BuildError, KeyError};
use crate::plugin::{Family, ParsedComponent, Registration};
use crate::resources::Resources;
use crate::schema::keys_of;

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
    /// The button's text on the page ("Reconnect").
    pub label: &'static str,
    /// What it does, for the page (the button's tooltip, the question a destructive
    /// one asks) and `vitals plugins`.
    pub description: &'static str,
    /// Whether it changes data: the page asks for confirmation first, naming the check
    /// and the description.
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
    /// When the check is expected to be quiet: its maintenance windows and market
    /// hours (a writer idle on a Sunday is no error).
    pub quiet: Quiet,
    pub(crate) board: Option<Board>,
}

/// A check's maintenance windows and market hours, as the check itself may ask: is it
/// quiet now, and why?
#[derive(Debug, Clone, Default)]
pub struct Quiet {
    /// `maintenance`.
    pub windows: Vec<crate::rules::Window>,
    /// `market_hours`.
    pub market: Option<crate::market::MarketHours>,
}

impl Quiet {
    /// Why the check is expected to be quiet at `t` ("maintenance: …", "market closed:
    /// weekend"), or `None` when it is expected to be busy. Within the grace after the
    /// open counts as quiet too (the writers catch up).
    pub fn why(&self, t: chrono::DateTime<chrono::Utc>) -> Option<String> {
        if let Some((cause, _)) = crate::rules::window::open_window(&self.windows, t) {
            return Some(cause.trim_start_matches("in ").to_owned());
        }
        self.market.as_ref()?.held(t).map(|h| h.cause)
    }
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
            quiet: Quiet::default(),
            board: None,
        }
    }

    /// Resolves a path from the config: absolute as is, relative against the config
    /// file's directory.
    pub fn resolve_path(&self, path: &Path) -> PathBuf {
        crate::plugin::resolve_path(&self.config_dir, path)
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
    /// Whether every `critical` reading of this kind carries a value. Most kinds can be
    /// critical without one (the table is gone, the port refused): `vitals validate`
    /// notes a rule whose condition reads `value` of such a kind.
    const VALUE_WHEN_CRITICAL: bool = false;
    /// A complete example of the kind's keys (the body of a `[checks.<id>]` table,
    /// without `kind`). A registry-driven test parses and validates it, and the docs
    /// show it.
    const EXAMPLE: &'static str;

    /// Pure validation: no I/O, no await. Returns every problem found.
    fn validate(&self) -> Vec<KeyError> {
        Vec::new()
    }

    /// Validation against the check's common keys as they apply to it (`[defaults]`
    /// filled in): e.g. a latency threshold longer than the timeout can never be
    /// reached. Pure, like [`CheckConfig::validate`].
    fn validate_common(&self, _common: &Common) -> Vec<KeyError> {
        Vec::new()
    }

    /// The environment variables this check passes on to a program it runs (a plugin's
    /// `env_passthrough`): the loader refuses any that holds one of vitals' secrets.
    fn passes_env(&self) -> Vec<String> {
        Vec::new()
    }

    /// The environment variables this check reads a secret from (a peer's read token):
    /// no other check may pass them on to a plugin.
    fn secret_env(&self) -> Vec<String> {
        Vec::new()
    }

    /// How checks of this kind appear on the status page: a section and an optional
    /// partial template (see [`Panel`]). `None`: a row in "Other checks".
    const PANEL: Option<&'static Panel> = None;

    /// Every action a check of this kind may offer (`vitals plugins` lists them, and a
    /// rule's `remediate` is checked against them). A check's [`Check::actions`] is a
    /// subset: e.g. `force_sync` only where a sync command is configured.
    const ACTIONS: &'static [ActionSpec] = &[];

    /// Builds the running check. May acquire resources (connections, handles).
    fn build(&self, cx: &BuildContext) -> Result<Arc<dyn Check>, BuildError>;
}

/// The common keys of a check as they apply to it (`[defaults]` filled in), for
/// [`CheckConfig::validate_common`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Common {
    /// How often it runs.
    pub interval: Duration,
    /// How long one run may take.
    pub timeout: Duration,
}

/// A check kind's config after parsing: validated or built without knowing its type.
pub trait ParsedCheck: ParsedComponent {
    /// See [`CheckConfig::build`].
    fn build(&self, cx: &BuildContext) -> Result<Arc<dyn Check>, BuildError>;
    /// See [`CheckConfig::validate_common`].
    fn validate_common(&self, common: &Common) -> Vec<KeyError>;
    /// See [`CheckConfig::passes_env`].
    fn passes_env(&self) -> Vec<String>;
    /// See [`CheckConfig::secret_env`].
    fn secret_env(&self) -> Vec<String>;
}

impl<C: CheckConfig> ParsedComponent for C {
    fn validate(&self) -> Vec<KeyError> {
        CheckConfig::validate(self)
    }
    fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

impl<C: CheckConfig> ParsedCheck for C {
    fn build(&self, cx: &BuildContext) -> Result<Arc<dyn Check>, BuildError> {
        CheckConfig::build(self, cx)
    }
    fn validate_common(&self, common: &Common) -> Vec<KeyError> {
        CheckConfig::validate_common(self, common)
    }
    fn passes_env(&self) -> Vec<String> {
        CheckConfig::passes_env(self)
    }
    fn secret_env(&self) -> Vec<String> {
        CheckConfig::secret_env(self)
    }
}

/// The family of check kinds.
#[derive(Debug)]
pub enum Checks {}

impl Family for Checks {
    const NOUN: &'static str = "check kind";
    type Parsed = dyn ParsedCheck;
    type Extra = CheckExtra;
}

/// What a check kind's registration carries beyond the common fields.
#[derive(Debug)]
pub struct CheckExtra {
    /// See [`CheckConfig::PANEL`].
    pub panel: Option<&'static Panel>,
    /// See [`CheckConfig::VALUE_WHEN_CRITICAL`].
    pub value_when_critical: bool,
    /// See [`CheckConfig::ACTIONS`].
    pub actions: &'static [ActionSpec],
}

/// One registered check kind.
pub type CheckKind = Registration<Checks>;

impl Registration<Checks> {
    /// The registration of `C`, made in a `const` context by [`register_check!`](crate::register_check).
    pub const fn of<C: CheckConfig>(file: &'static str, line: u32) -> CheckKind {
        Registration {
            name: C::KIND,
            summary: C::SUMMARY,
            unit: C::UNIT,
            example: C::EXAMPLE,
            file,
            line,
            parse: parse_as::<C>,
            keys: keys_of::<C>,
            extra: CheckExtra {
                panel: C::PANEL,
                value_when_critical: C::VALUE_WHEN_CRITICAL,
                actions: C::ACTIONS,
            },
        }
    }

    /// How checks of this kind appear on the status page (`None`: a row of "Other
    /// checks").
    pub fn panel(&self) -> Option<&'static Panel> {
        self.extra.panel
    }

    /// Every action a check of this kind may offer.
    pub fn actions(&self) -> &'static [ActionSpec] {
        self.extra.actions
    }

    /// Whether every `critical` reading of this kind carries a value.
    pub fn value_when_critical(&self) -> bool {
        self.extra.value_when_critical
    }
}

fn parse_as<C: CheckConfig>(
    de: toml::de::ValueDeserializer<'_>,
) -> Result<Box<dyn ParsedCheck>, toml::de::Error> {
    let config: C = serde::Deserialize::deserialize(de)?;
    Ok(Box::new(config))
}

inventory::collect!(CheckKind);

/// Registers a check kind from its own file: `vitals::register_check!(CpuConfig);`
#[macro_export]
macro_rules! register_check {
    ($config:ty) => {
        $crate::inventory::submit! {
            $crate::check::CheckKind::of::<$config>(file!(), line!())
        }
    };
}
