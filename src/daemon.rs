//! `vitals run`: load the config, run the checks, log every status change, reload on
//! SIGHUP or when the file changes (an invalid new file is refused and the running
//! config stays), and stop cleanly.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use std::sync::Mutex;

use crate::alerting::{Alerting, AlertingConfig};
use crate::board::{Board, BoardEvent};
use crate::config::{self, CheckSpec, Config, Diagnostics, ServerConfig};
use crate::registry::Registry;
use crate::resources::Resources;
use crate::rules::{CheckMeta, Rule};
use crate::runner::{ApplyReport, Runner};

/// A loaded config taken apart, each part for its owner.
#[derive(Debug)]
pub struct Parts {
    /// `[server]`, for the web server.
    pub server: ServerConfig,
    /// The checks, for the runner.
    pub checks: Vec<CheckSpec>,
    /// The config file's directory (relative paths resolve against it).
    pub config_dir: PathBuf,
    /// Rules, sinks and what they need to know of the checks, for alerting.
    pub alerting: AlertingConfig,
    /// `[history]`: where the health history goes, if kept.
    pub history: Option<crate::history::HistoryTable>,
    /// The alerts table (the first a sink appends to), for the alerts page.
    pub alerts_table: Option<crate::delta::TableRef>,
}

/// Takes a loaded config apart: the runner gets the checks, alerting the rules (the
/// user's, then the built-in `check_unknown` for every check that has it), the sinks
/// and each check's `depends_on` and maintenance windows.
pub fn split(config: Config) -> Parts {
    let config_dir = config.dir();
    let state_dir = config.state_dir();
    let alerts_table = config
        .sinks
        .iter()
        .find_map(|s| s.params.alerts_table(&config_dir));
    let history = config.history.as_ref().map(|h| crate::history::HistoryTable {
        table: crate::delta::TableRef {
            location: match &h.table {
                Some(t) => crate::delta::location(t, &config_dir),
                None => state_dir.join("history").display().to_string(),
            },
            options: h.storage_options.clone(),
        },
        resolution: *h.resolution,
        retention: *h.retention,
        pending: Arc::new(Mutex::new(crate::history::Rollup::new(*h.resolution))),
    });
    let meta = config
        .checks
        .iter()
        .map(|c| {
            let meta = CheckMeta {
                depends_on: c.depends_on.clone(),
                windows: c.maintenance.clone(),
                market: c.market.clone(),
            };
            (c.id.clone(), meta)
        })
        .collect();
    // The built-in check_unknown rule, one per check that has it, after the user's;
    // then sink_failing, one per sink that has it.
    let mut rules = config.rules;
    rules.extend(config.checks.iter().filter_map(|c| {
        let after = c.unknown_after?;
        Some(Rule::check_unknown(&c.id, after, c.unknown_severity))
    }));
    rules.extend(config.sinks.iter().filter_map(|s| {
        let after = s.failing_after?;
        Some(Rule::sink_failing(
            &crate::dispatch::sink_check_id(&s.id),
            after,
            s.failing_severity,
        ))
    }));
    let (zone, public_url, name) = (
        config.server.zone(),
        config.server.public_url.clone(),
        config.server.name(),
    );
    Parts {
        server: config.server,
        checks: config.checks,
        alerting: AlertingConfig {
            rules,
            checks: meta,
            sinks: config.sinks,
            state_dir,
            config_dir: config_dir.clone(),
            health: crate::health::Health::always(),
            zone,
            public_url,
            name,
        },
        config_dir,
        history,
        alerts_table,
    }
}

/// How often the config file is looked at for changes.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// What the outside (signals, tests) can ask of a running daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Load the config file again (SIGHUP).
    Reload,
    /// Stop every check and return (SIGTERM, SIGINT).
    Shutdown,
}

/// A running daemon.
pub struct Daemon {
    path: PathBuf,
    registry: &'static Registry,
    runner: Runner,
    /// The file's content as last read, to notice changes.
    seen: Option<Vec<u8>>,
    alerting: Arc<Mutex<Alerting>>,
    /// The task feeding observations to alerting.
    evaluating: tokio::task::JoinHandle<()>,
    /// `[server]` as started (the listener is not moved by a reload).
    server: ServerConfig,
    /// The runner's latest liveness, for the sinks that say "alive".
    health: crate::health::Health,
    /// The history table and its writer, when `[history]` is set (as started).
    history: Option<(crate::history::HistoryTable, tokio::task::JoinHandle<()>)>,
    /// The alerts table, for the alerts page (as started).
    alerts_table: Option<crate::delta::TableRef>,
}

impl Daemon {
    /// Loads the config and starts every check; a bad config starts nothing.
    pub async fn start(path: &Path, registry: &'static Registry) -> Result<Daemon, Diagnostics> {
        let read = std::fs::read(path);
        let seen = read.as_ref().ok().cloned();
        let config = config::load_from(path, read, registry)?;
        for note in &config.notes {
            info!("{note}");
        }
        for warning in config.warnings() {
            warn!("{}", crate::text::visible(&warning));
        }
        let mut parts = split(config);
        match crate::files::tighten_dir(&parts.alerting.state_dir) {
            Ok(Some(done)) => info!("{done}"),
            Ok(None) => {}
            Err(e) => warn!("{e}"),
        }
        let board = Board::new();
        tokio::spawn(log_changes(board.follow()));
        let (health_tx, health) = crate::health::Health::channel();
        parts.alerting.health = health.clone();
        let alerting = Arc::new(Mutex::new(Alerting::start(parts.alerting)));
        let evaluating = tokio::spawn(evaluate_rules(board.follow(), alerting.clone()));
        let alerts_table = parts.alerts_table.clone();
        let history = parts.history.map(|h| {
            info!(table = %h.table.location, "keeping the health history in {}", h.table.location);
            let writer = tokio::spawn(crate::history::run(h.clone(), board.follow()));
            (h, writer)
        });
        let mut runner = Runner::new(board.clone(), Arc::new(Resources::default()));
        let (attempts, to_perform) = tokio::sync::mpsc::unbounded_channel();
        alerting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .set_remediator(attempts);
        tokio::spawn(crate::actions::remediate(
            to_perform,
            runner.instances(),
            board.clone(),
            alerting.clone(),
        ));
        tokio::spawn(watch_liveness(runner.instances(), board, health_tx));
        let server = parts.server;
        let report = runner.apply(parts.checks, &parts.config_dir).await;
        if let Some((table, _)) = &history {
            // The board's last hour from before the restart, without delaying the start.
            tokio::spawn(crate::history::read::reload_last_hour(
                table.clone(),
                runner.board().clone(),
                report.added.clone(),
            ));
        }
        info!(
            config = %path.display(),
            checks = report.added.len(),
            "vitals started with {} checks: {}",
            report.added.len(),
            report.added.join(", ")
        );
        Ok(Daemon {
            path: path.to_owned(),
            registry,
            runner,
            seen,
            alerting,
            evaluating,
            server,
            health,
            history,
            alerts_table,
        })
    }

    /// `[server]` as the daemon started with.
    pub fn server(&self) -> &ServerConfig {
        &self.server
    }

    /// The web handlers over this daemon, with the token from the environment variable
    /// `[server].token_env` (read now).
    pub fn web(&self) -> Arc<crate::web::Web> {
        self.web_with_token(std::env::var(&self.server.token_env).ok())
    }

    /// The web handlers with an explicit token (`None`: actions disabled).
    pub fn web_with_token(&self, token: Option<String>) -> Arc<crate::web::Web> {
        Arc::new(
            crate::web::Web::new(
                self.board().clone(),
                self.runner.instances(),
                self.alerting.clone(),
                &self.registry.checks,
                &self.server.token_env,
                token,
            )
            .with_allowed_hosts(self.server.allowed_hosts())
            .with_zone(self.server.zone())
            .with_name(self.server.name(), self.server.public_url.clone())
            .with_history(self.history.as_ref().map(|(h, _)| h.clone()))
            .with_alerts_table(self.alerts_table.clone())
            .with_read_token(
                self.server
                    .read_token_env
                    .as_ref()
                    .and_then(|v| std::env::var(v).ok()),
            ),
        )
    }

    /// The status board.
    pub fn board(&self) -> &Board {
        self.runner.board()
    }

    /// Alerting: active and suppressed alerts, acknowledgement.
    pub fn alerting(&self) -> Arc<Mutex<Alerting>> {
        self.alerting.clone()
    }

    /// The runner (to reach a check's instance).
    pub fn runner(&self) -> &Runner {
        &self.runner
    }

    /// Loads the config file again and applies it; on errors the running config stays.
    pub async fn reload(&mut self) -> Result<ApplyReport, Diagnostics> {
        let read = std::fs::read(&self.path);
        self.reload_from(read).await
    }

    /// Applies the file's content as just read.
    async fn reload_from(&mut self, read: std::io::Result<Vec<u8>>) -> Result<ApplyReport, Diagnostics> {
        self.seen = read.as_ref().ok().cloned();
        let config = match config::load_from(&self.path, read, self.registry) {
            Ok(c) => c,
            Err(diags) => {
                error!(
                    config = %self.path.display(),
                    "new config refused, the running config stays:\n{diags}"
                );
                return Err(diags);
            }
        };
        for note in &config.notes {
            info!("{note}");
        }
        let mut parts = split(config);
        parts.alerting.health = self.health.clone();
        if parts.server != self.server {
            warn!("[server] changed: the listener and token stay as started until vitals restarts");
        }
        let old_sinks = self
            .alerting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(parts.alerting);
        old_sinks.shutdown(crate::alerting::FLUSH_GRACE).await;
        let report = self.runner.apply(parts.checks, &parts.config_dir).await;
        info!(
            config = %self.path.display(),
            "config reloaded: added [{}], changed [{}], removed [{}], unchanged [{}]",
            report.added.join(", "),
            report.changed.join(", "),
            report.removed.join(", "),
            report.kept.len()
        );
        Ok(report)
    }

    /// Serves until `Control::Shutdown` (or the sender is dropped), reloading on
    /// `Control::Reload` and when the file's content changes.
    /// Tells systemd (when it started vitals with `Type=notify`) that vitals is ready,
    /// and says so again after each reload.
    pub async fn serve(mut self, mut control: mpsc::Receiver<Control>) {
        let checks = self.runner.ids().len();
        notify(&[
            sd_notify::NotifyState::Ready,
            sd_notify::NotifyState::Status(&format!("running {checks} checks")),
        ]);
        let mut watch = tokio::time::interval(WATCH_INTERVAL);
        watch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                c = control.recv() => match c {
                    Some(Control::Reload) => {
                        info!("reload requested");
                        reloading();
                        let _ = self.reload().await;
                        notify(&[sd_notify::NotifyState::Ready]);
                    }
                    Some(Control::Shutdown) | None => break,
                },
                _ = watch.tick() => {
                    let read = std::fs::read(&self.path);
                    if read.as_ref().ok() != self.seen.as_ref() {
                        info!(config = %self.path.display(), "config file changed");
                        reloading();
                        let _ = self.reload_from(read).await;
                        notify(&[sd_notify::NotifyState::Ready]);
                    }
                }
            }
        }
        self.shutdown().await;
    }

    /// Stops every check.
    pub async fn shutdown(mut self) {
        info!("shutting down");
        notify(&[sd_notify::NotifyState::Stopping]);
        self.runner.shutdown().await;
        // Every observation made before the stop still goes through the rules.
        self.runner.board().close_followers();
        let _ = self.evaluating.await;
        if let Some((_, writer)) = self.history.take() {
            // It writes what it has not written yet, then ends.
            if tokio::time::timeout(crate::alerting::FLUSH_GRACE, writer)
                .await
                .is_err()
            {
                warn!(
                    "the history's last buckets were not written within {:?}",
                    crate::alerting::FLUSH_GRACE
                );
            }
        }
        let sinks = self.alerting.lock().unwrap_or_else(|e| e.into_inner()).stop();
        sinks.shutdown(crate::alerting::FLUSH_GRACE).await;
        info!("vitals stopped");
    }
}

/// Sends a state to systemd's notify socket, if vitals was started with one
/// (`NOTIFY_SOCKET`); does nothing otherwise.
fn notify(state: &[sd_notify::NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(false, state) {
        warn!("cannot tell systemd {state:?}: {e}");
    }
}

/// `RELOADING=1` with the monotonic time systemd asks for.
fn reloading() {
    match sd_notify::NotifyState::monotonic_usec_now() {
        Ok(now) => notify(&[sd_notify::NotifyState::Reloading, now]),
        Err(_) => notify(&[sd_notify::NotifyState::Reloading]),
    }
}

/// Every second: is the runner keeping its schedule? The answer goes to the sinks that
/// say "alive", and, while it is yes, `WATCHDOG=1` goes to systemd (when its unit has
/// `WatchdogSec=`): a wedged runtime or a stalled scheduler stops the pings and systemd
/// restarts vitals.
async fn watch_liveness(
    instances: crate::runner::Instances,
    board: Board,
    health: tokio::sync::watch::Sender<crate::health::Liveness>,
) {
    let mut usec = 0;
    let watchdog = sd_notify::watchdog_enabled(false, &mut usec);
    if watchdog {
        info!(
            "systemd watchdog on: pinging every second while every check keeps its schedule (WatchdogSec={}s)",
            usec / 1_000_000
        );
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let schedules: Vec<crate::health::Schedule> = instances
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|i| (i.id.clone(), i.interval + i.timeout + i.jitter))
            .collect();
        let now = crate::health::assess(&schedules, &board, chrono::Utc::now());
        let before = health.send_replace(now.clone());
        match (&before, &now) {
            (crate::health::Liveness::Healthy, crate::health::Liveness::Late(ids)) => {
                error!(
                    "vitals is not keeping its schedule: overdue checks {}; the watchdog, heartbeat and VitalsWatchdog stop saying it is alive",
                    ids.join(", ")
                );
            }
            (crate::health::Liveness::Late(_), crate::health::Liveness::Healthy) => {
                info!("every check keeps its schedule again");
            }
            _ => {}
        }
        if watchdog && now.is_healthy() {
            notify(&[sd_notify::NotifyState::Watchdog]);
        }
        if health.is_closed() && !watchdog {
            return;
        }
    }
}

/// Logs every status change at info (the rules decide what is worth a warning: alert
/// firings are logged at warn), and every observation at debug level.
async fn log_changes(mut events: mpsc::UnboundedReceiver<BoardEvent>) {
    while let Some(e) = events.recv().await {
        let o = &e.observation;
        let message = crate::text::visible(&o.message);
        if tracing::enabled!(tracing::Level::DEBUG) {
            // The whole observation, as `vitals replay` reads it: a week of these lines
            // is a recording to backtest rules on (docs/market-hours.md).
            let json = serde_json::to_string(o).unwrap_or_default();
            debug!(check = %o.id, status = %o.status, value = ?o.value, observation = %json, "{message}");
        }
        if !e.is_change() || o.is_pending() {
            continue;
        }
        let from = match e.previous {
            Some(s) if !e.was_pending => s.as_str(),
            _ => "(new)",
        };
        info!(check = %o.id, status = %o.status, "{}: {from} -> {}: {message}", o.id, o.status);
    }
}

/// Feeds every observation to alerting, and once a second lets time-driven transitions
/// happen between observations (`for` elapsing, a hold lifting, a reminder due).
async fn evaluate_rules(mut events: mpsc::UnboundedReceiver<BoardEvent>, alerting: Arc<Mutex<Alerting>>) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            e = events.recv() => {
                let Some(e) = e else { return };
                alerting.lock().unwrap_or_else(|e| e.into_inner()).observe(&e.observation);
            }
            _ = tick.tick() => alerting.lock().unwrap_or_else(|e| e.into_inner()).tick(),
        }
    }
}

/// How often alerting looks at the clock between observations.
const TICK: Duration = Duration::from_secs(1);
