//! `vitals demo`: the daemon on a simulated desk, in one command. Everything the page
//! shows is real vitals on real parts — Delta tables written by vitals' own `deltalake`
//! writer, an IB Gateway stand-in that speaks the TWS wire protocol to the real
//! `ibapi` client ([`gateway`]) — and only the desk is simulated: writers that commit
//! every second or two, a strategy registry near its 90-slot warning, a position
//! queue. Incidents come on a cycle so that something fires and resolves within the
//! first minutes: the positions writer pauses past the stale threshold, the gateway
//! drops and reconnects, strategies go past 90 and retire, the queue backs up and
//! drains. Every button acts on the simulation.

pub mod gateway;
mod tables;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::delta::TableRef;
use tables::DemoTable;

/// How `vitals demo` runs.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Where everything goes (`None`: a fresh folder under the system's temporary
    /// folder, removed at exit).
    pub dir: Option<PathBuf>,
    /// The page's address.
    pub listen: String,
    /// How many times faster the incidents come (and the freshness thresholds with
    /// them): 1 to 30.
    pub speed: f64,
}

/// Why the demo could not start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Its folder.
    #[error("cannot prepare {dir}: {source}")]
    Dir {
        /// The folder.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A folder whose path a shell command cannot quote.
    #[error("{0} has a quote in its path: give --dir a plain path")]
    Quoted(PathBuf),
    /// `--speed` out of range.
    #[error("--speed {0} is not 1 to 30")]
    Speed(f64),
    /// The gateway stand-in.
    #[error("cannot start the IB Gateway simulator: {0}")]
    Gateway(std::io::Error),
    /// A table.
    #[error("cannot write the demo table {table}: {message}")]
    Table {
        /// The table.
        table: String,
        /// Why.
        message: String,
    },
}

/// The length of one cycle of incidents at speed 1.
pub const CYCLE: Duration = Duration::from_secs(240);

/// A running simulated desk.
pub struct Desk {
    dir: PathBuf,
    owned: bool,
    config: PathBuf,
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _gateway: Arc<gateway::Gateway>,
}

impl Desk {
    /// Prepares the folder, the tables, the gateway and the config, and starts the
    /// writers and the incidents.
    pub async fn start(options: &DemoOptions) -> Result<Desk, DemoError> {
        if !(1.0..=30.0).contains(&options.speed) {
            return Err(DemoError::Speed(options.speed));
        }
        let (dir, owned) = match &options.dir {
            Some(d) => (d.clone(), false),
            None => (
                std::env::temp_dir().join(format!("vitals-demo-{}", std::process::id())),
                true,
            ),
        };
        let failed = |source| DemoError::Dir {
            dir: dir.clone(),
            source,
        };
        std::fs::create_dir_all(dir.join("tables")).map_err(failed)?;
        std::fs::create_dir_all(dir.join("poke")).map_err(failed)?;
        let dir = dir.canonicalize().map_err(failed)?;
        if dir.to_string_lossy().contains('\'') {
            return Err(DemoError::Quoted(dir));
        }
        let gateway = Arc::new(gateway::Gateway::try_start().await.map_err(DemoError::Gateway)?);
        let table = |name: &str| TableRef::local(&dir.join("tables").join(name));
        let sim = Arc::new(Sim {
            positions: DemoTable::feed(table("positions")),
            greeks: DemoTable::feed(table("greeks")),
            decisions: DemoTable::feed(table("decisions")),
            registry: DemoTable::registry(table("strategy_registry")),
            queue: DemoTable::queue(table("position_queue")),
            positions_paused: AtomicBool::new(false),
            gateway: gateway.clone(),
            poke: dir.join("poke"),
        });
        // Every table has its first rows before vitals looks.
        let first = |name: &str, r: Result<(), deltalake::errors::DeltaTableError>| {
            r.map_err(|e| DemoError::Table {
                table: name.to_owned(),
                message: crate::delta::error_line(&e),
            })
        };
        first("positions", sim.positions.tick(0).await)?;
        first("greeks", sim.greeks.tick(0).await)?;
        first("decisions", sim.decisions.tick(0).await)?;
        first(
            "strategy_registry",
            sim.registry.strategies(NORMAL_STRATEGIES).await,
        )?;
        first("position_queue", sim.queue.queue_rows(0, 0).await)?;
        let config = dir.join("vitals.toml");
        std::fs::write(
            &config,
            config_text(&options.listen, gateway.port(), &dir, options.speed),
        )
        .map_err(failed)?;
        let stop = CancellationToken::new();
        let mut tasks = Vec::new();
        for (name, period) in [("positions", 1.0), ("greeks", 1.5), ("decisions", 2.0)] {
            tasks.push(tokio::spawn(feed(sim.clone(), name, period, stop.clone())));
        }
        tasks.push(tokio::spawn(incidents(sim.clone(), options.speed, stop.clone())));
        Ok(Desk {
            dir,
            owned,
            config,
            stop,
            tasks,
            _gateway: gateway,
        })
    }

    /// The config `vitals run` takes for this desk.
    pub fn config(&self) -> &Path {
        &self.config
    }

    /// Where everything is.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops the writers and the gateway; removes the folder when the demo made it.
    pub async fn stop(self) {
        self.stop.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
        drop(self._gateway);
        if self.owned
            && let Err(e) = std::fs::remove_dir_all(&self.dir)
        {
            warn!(dir = %self.dir.display(), "cannot remove the demo's folder: {e}");
        }
    }
}

/// Strategies active outside the incident (the warning is at 90 of 100).
const NORMAL_STRATEGIES: usize = 88;

/// The simulated desk's parts.
struct Sim {
    positions: DemoTable,
    greeks: DemoTable,
    decisions: DemoTable,
    registry: DemoTable,
    queue: DemoTable,
    positions_paused: AtomicBool,
    gateway: Arc<gateway::Gateway>,
    /// `force_sync` touches `<poke>/<table>`; its writer commits at once and removes it.
    poke: PathBuf,
}

impl Sim {
    fn feed(&self, name: &str) -> &DemoTable {
        match name {
            "positions" => &self.positions,
            "greeks" => &self.greeks,
            _ => &self.decisions,
        }
    }
}

/// A feed's writer: a commit every `period` seconds (none while the positions writer
/// is paused), and one at once when `force_sync` pokes it (which also ends a pause).
async fn feed(sim: Arc<Sim>, name: &'static str, period: f64, stop: CancellationToken) {
    let poke = sim.poke.join(name);
    let period = Duration::from_secs_f64(period);
    let mut last = tokio::time::Instant::now();
    let mut n = 1;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        let poked = poke.exists();
        let paused = name == "positions" && sim.positions_paused.load(Ordering::Relaxed);
        if !poked && (paused || last.elapsed() < period) {
            continue;
        }
        if poked && paused {
            sim.positions_paused.store(false, Ordering::Relaxed);
            info!("demo: force_sync restarted the positions writer");
        }
        match sim.feed(name).tick(n).await {
            Ok(()) => n += 1,
            Err(e) => warn!(table = name, "demo writer: {}", crate::delta::error_line(&e)),
        }
        last = tokio::time::Instant::now();
        if poked {
            let _ = std::fs::remove_file(&poke);
        }
    }
}

/// The incidents, on a cycle of [`CYCLE`] / `speed`.
async fn incidents(sim: Arc<Sim>, speed: f64, stop: CancellationToken) {
    let at = |s: f64| Duration::from_secs_f64(s / speed);
    loop {
        let start = tokio::time::Instant::now();
        let step = async |s: f64, what: &str| -> bool {
            tokio::select! {
                _ = stop.cancelled() => false,
                _ = tokio::time::sleep_until(start + at(s)) => {
                    info!("demo: {what}");
                    true
                }
            }
        };
        if !step(
            20.0,
            "the positions writer pauses (stale in a minute; Force sync restarts it)",
        )
        .await
        {
            return;
        }
        sim.positions_paused.store(true, Ordering::Relaxed);
        if !step(100.0, "the positions writer resumes").await {
            return;
        }
        sim.positions_paused.store(false, Ordering::Relaxed);
        if !step(110.0, "the market data farm connection breaks").await {
            return;
        }
        sim.gateway
            .notice(2103, "Market data farm connection is broken:usfarm");
        if !step(125.0, "the gateway drops the connection (vitals reconnects)").await {
            return;
        }
        sim.gateway.drop_sessions();
        if !step(135.0, "the market data farm is back").await {
            return;
        }
        sim.gateway
            .notice(2104, "Market data farm connection is OK:usfarm");
        if !step(150.0, "five strategies start: 93 of 100 streaming slots").await {
            return;
        }
        if let Err(e) = sim.registry.strategies(NORMAL_STRATEGIES + 5).await {
            warn!("demo registry: {}", crate::delta::error_line(&e));
        }
        if !step(170.0, "the position queue backs up").await {
            return;
        }
        if let Err(e) = sim.queue.queue_rows(70, 90).await {
            warn!("demo queue: {}", crate::delta::error_line(&e));
        }
        if !step(210.0, "the five strategies retire").await {
            return;
        }
        if let Err(e) = sim.registry.strategies(NORMAL_STRATEGIES).await {
            warn!("demo registry: {}", crate::delta::error_line(&e));
        }
        if !step(230.0, "the position queue drains").await {
            return;
        }
        if let Err(e) = sim.queue.queue_rows(0, 0).await {
            warn!("demo queue: {}", crate::delta::error_line(&e));
        }
        if !step(CYCLE.as_secs_f64(), "the cycle starts again").await {
            return;
        }
    }
}

/// The desk's config: the shipped system checks, the trading system's checks on the
/// simulation, the seed rules (no market hours: it works at any hour), the alerts
/// table, an audit log and the history, all under `dir`. Time thresholds are divided by
/// `speed`.
fn config_text(listen: &str, gateway: u16, dir: &Path, speed: f64) -> String {
    let secs = |s: f64| format!("{}ms", (s * 1000.0 / speed).round() as u64);
    let stale = (60.0 / speed).round();
    let force_sync = |name: &str| {
        let poke = dir.join("poke").join(name);
        let poke = poke.display();
        format!(
            "[\"/bin/sh\", \"-c\", \"touch '{poke}'; i=0; while [ -e '{poke}' ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done\"]"
        )
    };
    let feed = |name: &str, depends: bool| {
        format!(
            "[checks.{name}]\nkind = \"delta_freshness\"\ntable = \"tables/{name}\"\ncolumn = \"synced_at\"\n\
             warn = \"{}\"\ncrit = \"{}\"\ninterval = \"2s\"\nforce_sync = {}\n{}\n",
            secs(30.0),
            secs(60.0),
            force_sync(name),
            if depends { "depends_on = [\"ib\"]\n" } else { "" }
        )
    };
    format!(
        r#"# vitals demo: a simulated desk (written by `vitals demo`; docs/demo.md).

[server]
listen = "{listen}"
token_env = "VITALS_TOKEN"
state_dir = "state"

[history]
resolution = "10s"

[defaults]
interval = "5s"
timeout = "3s"
jitter = "1s"

[checks.cpu]
kind = "cpu"
warn = 50
crit = 80

[checks.memory]
kind = "memory"
warn = 50
crit = 80

[checks.disk]
kind = "disk"
path = "{dir}"
warn = 50
crit = 80

[checks.host]
kind = "host"
interval = "30s"

[checks.ib]
kind = "ib_connection"
host = "127.0.0.1"
port = {gateway}
client_id = 90
heartbeat = "5s"
heartbeat_timeout = "3s"

{positions}
{greeks}
{decisions}
[checks.strategy_registry]
kind = "strategy_slots"
table = "tables/strategy_registry"
limit = 100
warn = 90
crit = 100
filter_column = "status"
filter_value = "ACTIVE"
interval = "2s"

[checks.position_queue]
kind = "queue_backlog"
table = "tables/position_queue"
warn = 50
crit = 200
max_age_warn = "{age_warn}"
max_age_crit = "{age_crit}"
interval = "2s"

[[rules]]
name = "system_critical"
kinds = ["cpu", "memory", "disk"]
when = "value > 90"
severity = "WARNING"
keep_firing_for = "30s"
repeat = "1h"
message = "{{check}} at {{value}}% (above 90%)"

[[rules]]
name = "ib_disconnected"
kinds = ["ib_connection"]
when = "status == 'critical'"
for = "3s"
severity = "CRITICAL"
message = "IB {{label}}: {{message}}"

[[rules]]
name = "data_stale"
kinds = ["delta_freshness"]
when = "value > {stale}"
severity = "WARNING"
message = "{{check}} stale ({{value}}s old)"
# What automation would do, recorded without running it (docs/alerts.md).
remediate = {{ action = "force_sync", after = "{after}", dry_run = true }}

[[rules]]
name = "slots_near_limit"
kinds = ["strategy_slots"]
when = "value > 90"
severity = "INFO"
message = "{{value}} of {{details.limit}} streaming slots in use"

[sinks.alerts]
kind = "delta"
table = "alerts"
flush_interval = "1s"

[sinks.audit]
kind = "log"
path = "alerts.jsonl"
"#,
        dir = dir.display(),
        positions = feed("positions", true),
        greeks = feed("greeks", true),
        decisions = feed("decisions", false),
        age_warn = secs(60.0),
        age_crit = secs(300.0),
        after = secs(10.0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_desk_config_is_valid_at_every_speed() {
        for speed in [1.0, 4.0, 10.0, 30.0] {
            let text = config_text("127.0.0.1:0", 4002, Path::new("/tmp/desk"), speed);
            let registry = crate::registry::registry().unwrap();
            if let Err(d) = crate::config::parse(Path::new("/tmp/desk/vitals.toml"), &text, registry) {
                panic!("speed {speed}: {d}");
            }
        }
    }
}
