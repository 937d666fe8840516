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
use crate::rules::{Attempt, CheckMeta, Engine, EngineState, Rule};

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
    /// The desk's time zone.
    pub zone: crate::timezone::DeskZone,
    /// `[server] public_url`.
    pub public_url: Option<String>,
    /// `[server] name`: the `host` of every alert event.
    pub name: String,
}

impl AlertingConfig {
    fn sink_env(&self) -> crate::sinks::SinkEnv {
        crate::sinks::SinkEnv {
            config_dir: self.config_dir.clone(),
            liveness: self.health.clone(),
            zone: self.zone,
            public_url: self.public_url.clone(),
            name: self.name.clone(),
        }
    }
}

/// How long sinks get to deliver what they hold when vitals stops or reloads.
pub const FLUSH_GRACE: Duration = Duration::from_secs(5);

/// The engine, the sinks and the saved state, together.
pub struct Alerting {
    engine: Engine,
    dispatcher: Dispatcher,
    state_file: PathBuf,
    /// Each sink's state as last fed to the engine (`sink_failing`).
    sink_states: HashMap<String, crate::dispatch::SinkState>,
    /// Who performs remediation attempts (the daemon's task); none: they are logged
    /// and dropped.
    remediator: Option<tokio::sync::mpsc::UnboundedSender<Attempt>>,
    /// `[server] name`: the `host` of the events it makes itself (actions).
    host: String,
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
        .map(|s| SinkInstance::build_with(s, &config.sink_env(), None))
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
        engine.set_host(&config.name);
        if let Some(state) = load_state(&state_file) {
            let n = engine.restore(state);
            info!("restored the state of {n} alerts from {}", state_file.display());
        }
        Alerting {
            engine,
            dispatcher,
            state_file,
            sink_states: HashMap::new(),
            remediator: None,
            host: config.name,
        }
    }

    /// Hands remediation attempts to `to` from now on.
    pub fn set_remediator(&mut self, to: tokio::sync::mpsc::UnboundedSender<Attempt>) {
        self.remediator = Some(to);
    }

    /// Feeds one observation; logs, dispatches and saves what it changes.
    pub fn observe(&mut self, o: &Observation) {
        let events = self.engine.observe(o, o.observed_at);
        self.emit(&events);
    }

    /// Runs the time-driven transitions due now (see [`Engine::advance`]), after
    /// feeding the engine every sink whose health changed (the built-in `sink_failing`
    /// watches them as checks `sink:<id>`).
    pub fn tick(&mut self) {
        let now = chrono::Utc::now();
        for s in self.dispatcher.statuses() {
            if self.sink_states.get(&s.id) == Some(&s.state) {
                continue;
            }
            self.sink_states.insert(s.id.clone(), s.state);
            let o = sink_observation(&s, now);
            let events = self.engine.observe(&o, now);
            self.emit(&events);
        }
        let events = self.engine.advance(now);
        self.emit(&events);
    }

    fn emit(&mut self, events: &[AlertEvent]) {
        for e in events {
            log_alert(e);
            self.dispatcher.send(e);
        }
        for a in self.engine.take_attempts() {
            if a.dry_run {
                let outcome = "dry run, nothing was run";
                self.record_remediation(&a, outcome);
                self.engine.remediation_outcome(&a.rule, &a.check, outcome);
            } else {
                let sent = self
                    .remediator
                    .as_ref()
                    .is_some_and(|to| to.send(a.clone()).is_ok());
                if !sent {
                    warn!(rule = %a.rule, check = %a.check, "{} not performed: no one performs remediation here", a.describe());
                }
            }
        }
        if self.engine.take_changed() {
            self.save();
        }
    }

    /// Records a remediation attempt that ran nothing (a dry run) as an `action` event.
    fn record_remediation(&mut self, a: &Attempt, outcome: &str) {
        let now = chrono::Utc::now();
        let text = format!("{} on {}: {outcome}", a.describe(), a.check);
        let event = AlertEvent::new(&a.rule, &a.check, Severity::Info, AlertState::Action, text, now)
            .of_episode(
                &format!("action.{}.{}.{}", a.check, a.action, a.at.timestamp_millis()),
                a.at,
            )
            .on_host(&self.host);
        log_alert(&event);
        self.dispatcher.send(&event);
    }

    /// What a remediation attempt came to (`remediation_failed` names the last one).
    pub fn remediation_outcome(&mut self, rule: &str, check: &str, outcome: &str) {
        self.engine.remediation_outcome(rule, check, outcome);
        if self.engine.take_changed() {
            self.save();
        }
    }

    /// An operator performed `action` of `check` by hand: remediations of that action
    /// on that check count their attempts afresh.
    pub fn operator_acted(&mut self, check: &str, action: &str) {
        self.engine.operator_acted(check, action, chrono::Utc::now());
        let events = self.engine.advance(chrono::Utc::now());
        self.emit(&events);
    }

    /// Pauses the remediation of a firing alert (until it resolves), recorded as an
    /// `action` event. `None`: no firing alert of a remediating rule has that id.
    pub fn pause_remediation(&mut self, alert_id: &str) -> Option<AlertEvent> {
        let (rule, check, action) = self.engine.pause_remediation(alert_id)?;
        let now = chrono::Utc::now();
        let event = AlertEvent::new(
            &rule,
            &check,
            Severity::Info,
            AlertState::Action,
            format!("auto {action} on {check} paused for this alert by an operator"),
            now,
        )
        .of_episode(&format!("action.{check}.pause.{}", now.timestamp_millis()), now)
        .on_host(&self.host);
        self.emit(std::slice::from_ref(&event));
        Some(event)
    }

    /// Acknowledges a firing alert (see [`Engine::acknowledge`]).
    pub fn acknowledge(&mut self, alert_id: &str) -> Option<AlertEvent> {
        let event = self.engine.acknowledge(alert_id, chrono::Utc::now())?;
        self.emit(std::slice::from_ref(&event));
        Some(event)
    }

    /// Records an action (run now, reconnect, force_sync, clear — by an operator, whose
    /// `rule` is "action", or by a rule's remediation, whose `rule` is its name) as an
    /// event: logged and sent to the sinks that keep a record (the alerts table, the log).
    /// `started_at` is when it was `asked` for, `event_at` when it was done.
    pub fn record_action(
        &mut self,
        check_id: &str,
        action: &str,
        rule: &str,
        asked: chrono::DateTime<chrono::Utc>,
        ok: bool,
        message: &str,
    ) -> AlertEvent {
        let now = chrono::Utc::now();
        let text = format!(
            "{action} on {check_id} {}: {message}",
            if ok { "done" } else { "failed" }
        );
        let event = AlertEvent::new(rule, check_id, Severity::Info, AlertState::Action, text, now)
            .of_episode(
                &format!("action.{check_id}.{action}.{}", asked.timestamp_millis()),
                asked,
            )
            .on_host(&self.host);
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

    /// Takes a new config: new rules keep the state of rules with the same name; a
    /// sink whose configuration did not change keeps running untouched, a changed one
    /// is replaced once the old one has finished, a new one starts. Returns the sinks
    /// to stop (flushed) by the caller.
    pub fn replace(&mut self, config: AlertingConfig) -> crate::dispatch::Retired {
        let state = self.engine.state();
        let env = config.sink_env();
        let retired = self.dispatcher.apply(&config.sinks, |spec, health| {
            SinkInstance::build_with(spec, &env, health)
        });
        self.engine = Engine::new(config.rules, config.checks);
        self.engine.set_host(&config.name);
        self.host = config.name;
        self.engine.restore(state);
        self.state_file = config.state_dir.join("alerts.json");
        self.save();
        retired
    }

    /// Every sink's health.
    pub fn sinks(&self) -> Vec<crate::dispatch::SinkStatus> {
        self.dispatcher.statuses()
    }

    /// Sends a sink's dead letters again (see [`Dispatcher::retry_dead`]).
    pub fn retry_dead(&mut self, sink: &str) -> Result<usize, String> {
        self.dispatcher.retry_dead(sink)
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

/// A sink's health as an observation of the check `sink:<id>`: critical while it fails.
fn sink_observation(s: &crate::dispatch::SinkStatus, now: chrono::DateTime<chrono::Utc>) -> Observation {
    use crate::observation::{Reading, Status};
    let reading = match s.state {
        crate::dispatch::SinkState::Ok => {
            Reading::new(Status::Ok, format!("sink {} ({}) delivers", s.id, s.kind))
        }
        crate::dispatch::SinkState::Failing => Reading::new(
            Status::Critical,
            format!(
                "sink {} ({}) has been failing since {}: {}",
                s.id,
                s.kind,
                s.since.format("%H:%M:%S UTC"),
                s.last_error.as_deref().unwrap_or("no reason given")
            ),
        ),
    };
    Observation::from_reading(
        &crate::dispatch::sink_check_id(&s.id),
        "sink",
        reading.with_detail("queued", s.queued),
        now,
        Duration::ZERO,
    )
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
