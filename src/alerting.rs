//! Alerting in the daemon: the rule engine fed by the board, its events logged and
//! dispatched to the sinks, and its state saved (`<state_dir>/alerts.json`) so that a
//! restart neither re-sends nor forgets an alert.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tracing::{error, info, warn};

use crate::alert::{ActiveAlert, AlertEvent, AlertState, HeldAlert, Severity};
use crate::config::SinkSpec;
use crate::dispatch::{Dispatcher, SinkInstance};
use crate::observation::Observation;
use crate::rules::{CheckMeta, Engine, EngineState, Rule};

/// What alerting takes of a config (the daemon takes the config apart).
#[derive(Debug)]
pub struct AlertingConfig {
    /// `[[rules]]`.
    pub rules: Vec<Rule>,
    /// What the rules need to know of each check (`depends_on`, maintenance).
    pub checks: HashMap<String, CheckMeta>,
    /// `[sinks.*]`.
    pub sinks: Vec<SinkSpec>,
    /// Where the alert state and the outboxes live.
    pub state_dir: PathBuf,
    /// The config file's directory (relative paths of sinks resolve against it).
    pub config_dir: PathBuf,
    /// The daemon's health, for the sinks that say "alive".
    pub health: crate::health::Health,
}

/// How long sinks get to deliver what they hold when vitals stops or reloads.
pub const FLUSH_GRACE: Duration = Duration::from_secs(5);

/// The engine, the sinks and the saved state, together.
pub struct Alerting {
    engine: Engine,
    dispatcher: Dispatcher,
    state_file: PathBuf,
}

fn load_state(path: &Path) -> Option<EngineState> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            error!(file = %path.display(), "cannot read the saved alert state ({e}); starting without it");
            return None;
        }
    };
    match serde_json::from_str(&text) {
        Ok(s) => Some(s),
        Err(e) => {
            error!(file = %path.display(), "the saved alert state is unreadable ({e}); starting without it");
            None
        }
    }
}

fn start_dispatcher(config: &AlertingConfig) -> Dispatcher {
    let built = config
        .sinks
        .iter()
        .map(|s| SinkInstance::build_with(s, &config.config_dir, config.health.clone()))
        .collect();
    Dispatcher::start(built, &config.state_dir)
}

impl Alerting {
    /// Builds the engine from `config` (taking its rules), restores the saved state and
    /// starts the sinks.
    pub fn start(config: AlertingConfig) -> Alerting {
        let state_file = config.state_dir.join("alerts.json");
        let dispatcher = start_dispatcher(&config);
        let mut engine = Engine::new(config.rules, config.checks);
        if let Some(state) = load_state(&state_file) {
            let n = engine.restore(state);
            info!("restored the state of {n} alerts from {}", state_file.display());
        }
        Alerting {
            engine,
            dispatcher,
            state_file,
        }
    }

    /// Feeds one observation; logs, dispatches and saves what it changes.
    pub fn observe(&mut self, o: &Observation) {
        let events = self.engine.observe(o, o.observed_at);
        self.emit(&events);
    }

    /// Runs the time-driven transitions due now (see [`Engine::advance`]).
    pub fn tick(&mut self) {
        let events = self.engine.advance(chrono::Utc::now());
        self.emit(&events);
    }

    fn emit(&mut self, events: &[AlertEvent]) {
        for e in events {
            log_alert(e);
            self.dispatcher.send(e);
        }
        if self.engine.take_changed() {
            self.save();
        }
    }

    /// Acknowledges a firing alert (see [`Engine::acknowledge`]).
    pub fn acknowledge(&mut self, alert_id: &str) -> Option<AlertEvent> {
        let event = self.engine.acknowledge(alert_id, chrono::Utc::now())?;
        self.emit(std::slice::from_ref(&event));
        Some(event)
    }

    /// Records an operator action (run now, reconnect, force_sync, clear, ack) as an
    /// event: logged and sent to the sinks that keep a record (the alerts table, the log).
    pub fn record_action(&mut self, check_id: &str, action: &str, ok: bool, message: &str) -> AlertEvent {
        let now = chrono::Utc::now();
        let text = format!(
            "{action} on {check_id} {}: {message}",
            if ok { "done" } else { "failed" }
        );
        let event = AlertEvent::new("action", check_id, Severity::Info, AlertState::Action, text, now)
            .of_episode(
                &format!("action.{check_id}.{action}.{}", now.timestamp_millis()),
                now,
            );
        self.emit(std::slice::from_ref(&event));
        event
    }

    /// The alerts firing now.
    pub fn active(&self) -> Vec<ActiveAlert> {
        self.engine.active()
    }

    /// Every calendar the checks follow, with the checks following it.
    pub fn calendars(&self) -> Vec<(crate::market::MarketHours, Vec<String>)> {
        self.engine
            .calendars()
            .into_iter()
            .map(|(m, checks)| (m.clone(), checks))
            .collect()
    }

    /// Conditions whose alerts are held back (maintenance, market hours, a dependency).
    pub fn held(&self) -> Vec<HeldAlert> {
        self.engine.held()
    }

    /// Takes a new config: new rules keep the state of rules with the same name, new
    /// sinks start. Returns the old sinks, to be shut down (flushed) by the caller.
    pub fn replace(&mut self, config: AlertingConfig) -> Dispatcher {
        let state = self.engine.state();
        let sinks = start_dispatcher(&config);
        self.engine = Engine::new(config.rules, config.checks);
        self.engine.restore(state);
        self.state_file = config.state_dir.join("alerts.json");
        self.save();
        std::mem::replace(&mut self.dispatcher, sinks)
    }

    /// Saves the engine state (atomically: a temporary file renamed over the old one).
    pub fn save(&self) {
        let write = || -> std::io::Result<()> {
            let text = serde_json::to_string_pretty(&self.engine.state()).map_err(std::io::Error::other)?;
            crate::files::write_atomic(&self.state_file, text.as_bytes())
        };
        if let Err(e) = write() {
            warn!(file = %self.state_file.display(), "cannot save the alert state ({e}); a restart would forget it");
        }
    }

    /// Saves the state and hands over the sinks, to be shut down (flushed) by the
    /// caller; later events are no longer dispatched.
    pub fn stop(&mut self) -> Dispatcher {
        self.save();
        std::mem::replace(&mut self.dispatcher, Dispatcher::none())
    }
}

/// One structured line per alert event in vitals' own log.
pub fn log_alert(a: &AlertEvent) {
    let message = crate::text::visible(&a.message);
    let what = match (a.state, a.reminder) {
        (AlertState::Firing, true) => "still firing",
        (state, _) => state.as_str(),
    };
    match a.state {
        AlertState::Firing => warn!(
            alert_id = %a.alert_id, rule = %a.rule, check = %a.check_id, severity = a.severity.as_str(),
            "ALERT {what} [{}] {}: {message}", a.severity.as_str(), a.rule
        ),
        _ => info!(
            alert_id = %a.alert_id, rule = %a.rule, check = %a.check_id, severity = a.severity.as_str(),
            "ALERT {what} [{}] {}: {message}", a.severity.as_str(), a.rule
        ),
    }
}
