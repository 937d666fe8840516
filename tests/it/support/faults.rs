//! The fault matrix: `vitals run` with every kind of check and every sink kind (the
//! alerts Delta table, email to a real SMTP server, the real Alertmanager, the log),
//! and faults injected one after another: the IB gateway killed, silent and flapping;
//! a table deleted, corrupted mid-commit and hung; the alerts table's filesystem full;
//! SMTP down, slow, answering 4xx and 5xx; a plugin that crashes, hangs or floods its
//! output; an invalid reload; `kill -9` with alerts pending. For each fault: whether
//! and how fast it was detected, what the page said, how fast it recovered, and how
//! many alert events it caused; at the end, per sink, events produced against events
//! delivered.
//!
//! The fast half runs in the test suite (`fault_matrix_fast_half`, about 30 s); the
//! whole matrix, slow faults included (about 2 min, and a tmpfs mount, so as root), is
//! `scripts/fault-matrix`, whose table is in docs/reliability.md.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::alertmanager::Alertmanager;
use crate::support::delta::{make, try_read_table};
use crate::support::gateway::{Gateway, Mode};
use crate::support::smtp::SmtpServer;
use crate::support::{Daemonized, free_port, write_config};

/// How long a fault may take to be detected before it counts as missed.
const DETECT_WITHIN: Duration = Duration::from_secs(20);

/// One row of the matrix.
#[derive(Debug, Clone)]
pub struct Row {
    /// The fault.
    pub fault: String,
    /// The check (or part) that should see it.
    pub watched: String,
    /// From injection to the first sign of it (on the page, or in the log).
    pub detected: Option<Duration>,
    /// What the page said then.
    pub shown: String,
    /// From the repair to the all-clear.
    pub recovered: Option<Duration>,
    /// Alert events produced while it lasted.
    pub events: usize,
}

/// Events produced against events delivered, for one sink.
#[derive(Debug, Clone, Default)]
pub struct Delivery {
    /// Distinct events the sink received.
    pub delivered: usize,
    /// Events received more than once (at-least-once delivery after a crash).
    pub duplicates: usize,
    /// Events the sink refused for good (in its dead-letter file).
    pub dead: usize,
}

/// The whole run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// One row per fault.
    pub rows: Vec<Row>,
    /// Distinct alert events the rule engine produced (the daemon's own log).
    pub produced: usize,
    /// Per sink.
    pub sinks: BTreeMap<String, Delivery>,
    /// Faults that could not be injected here, and why.
    pub skipped: Vec<(String, String)>,
}

impl Report {
    /// The matrix as Markdown.
    pub fn markdown(&self) -> String {
        let ms = |d: Option<Duration>| d.map_or("—".to_owned(), |d| format!("{} ms", d.as_millis()));
        let mut out = String::from(
            "| fault | seen by | detected after | the page said | recovered after | alert events |\n|---|---|---|---|---|---|\n",
        );
        for r in &self.rows {
            let shown: String = r.shown.replace('|', "\\|").chars().take(110).collect();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                r.fault,
                r.watched,
                if r.detected.is_some() {
                    ms(r.detected)
                } else {
                    "**missed**".into()
                },
                shown,
                ms(r.recovered),
                r.events
            );
        }
        for (fault, why) in &self.skipped {
            let _ = writeln!(out, "| {fault} | — | not run: {why} | | | |");
        }
        let _ = writeln!(
            out,
            "\n| sink | produced | delivered | duplicates | refused for good |\n|---|---|---|---|---|"
        );
        for (sink, d) in &self.sinks {
            let _ = writeln!(
                out,
                "| {sink} | {} | {} | {} | {} |",
                self.produced, d.delivered, d.duplicates, d.dead
            );
        }
        out
    }
}

/// The daemon, its surroundings and how to look at them.
struct Rig {
    dir: PathBuf,
    config: PathBuf,
    port: u16,
    daemon: Option<Daemonized>,
    /// Daemons that have ended (their whole logs are counted at the end).
    ended: Vec<Daemonized>,
    log: Vec<String>,
    gateway: Gateway,
    smtp: Option<SmtpServer>,
    smtp_port: u16,
    inbox: PathBuf,
    _alertmanager: Alertmanager,
}

fn config(dir: &Path, port: u16, gateway: u16, smtp: u16, alertmanager: &str, alerts_table: &Path) -> String {
    format!(
        r#"[server]
listen = "127.0.0.1:{port}"
state_dir = "state"

[defaults]
interval = "250ms"
timeout = "2s"
jitter = "0s"
unknown_after = "3s"

[checks.ib]
kind = "ib_connection"
port = {gateway}
client_id = 21
heartbeat = "500ms"
heartbeat_timeout = "1s"
reconnect_backoff = "100ms"
reconnect_backoff_max = "500ms"
max_reconnect_attempts = 1000

[checks.positions]
kind = "delta_freshness"
table = "positions"
warn = "1h"
crit = "2h"

[checks.registry]
kind = "strategy_slots"
table = "registry"

[checks.queue]
kind = "queue_backlog"
table = "queue"

[checks.cpu]
kind = "cpu"
warn = 99
crit = 100

[checks.disk]
kind = "disk"
path = "{dir}"
warn = 99
crit = 100

[checks.plugin]
kind = "command"
command = ["/bin/sh", "-c", "case $(cat {dir}/plugin-mode) in crash) kill -SEGV $$;; hang) sleep 60;; flood) echo 'OK - flooded'; head -c 100000000 /dev/zero | tr '\\0' x;; *) echo 'OK - fine';; esac"]

[[rules]]
name = "ib_down"
checks = ["ib"]
when = "status == 'critical'"
severity = "CRITICAL"

[[rules]]
name = "data_missing"
kinds = ["delta_freshness", "strategy_slots", "queue_backlog"]
when = "status == 'critical'"
severity = "CRITICAL"

[[rules]]
name = "plugin_failing"
checks = ["plugin"]
when = "status != 'ok'"
on_unknown = "fire"
severity = "WARNING"

[sinks.audit]
kind = "log"
path = "audit.jsonl"

[sinks.table]
kind = "delta"
table = "{table}"
flush_interval = "200ms"

[sinks.mail]
kind = "email"
host = "127.0.0.1"
port = {smtp}
tls = "none"
group_wait = "0s"
timeout = "5s"
from = "vitals@desk.test"
to = ["ops@desk.test"]

[sinks.am]
kind = "alertmanager"
url = "{alertmanager}"
"#,
        dir = dir.display(),
        table = alerts_table.display(),
    )
}

impl Rig {
    async fn start(dir: &Path, alerts_table: &Path) -> Rig {
        make(&[dir.join("positions").to_str().unwrap(), "tz", "1"]);
        make(&["registry", dir.join("registry").to_str().unwrap(), "3", "1"]);
        make(&["queue", dir.join("queue").to_str().unwrap(), "0", "5", "1"]);
        std::fs::write(dir.join("plugin-mode"), "ok").unwrap();
        let gateway = Gateway::start().await;
        let inbox = dir.join("inbox");
        std::fs::create_dir_all(&inbox).unwrap();
        let smtp_port = free_port();
        let smtp = SmtpServer::start(smtp_port, &inbox, None);
        let am_dir = dir.join("alertmanager");
        std::fs::create_dir_all(&am_dir).unwrap();
        let alertmanager = Alertmanager::start_on(&am_dir, free_port()).await;
        let port = free_port();
        let text = config(
            dir,
            port,
            gateway.port(),
            smtp_port,
            &alertmanager.url,
            alerts_table,
        );
        let config = write_config(dir, &text);
        let mut rig = Rig {
            dir: dir.to_owned(),
            config,
            port,
            daemon: None,
            ended: Vec::new(),
            log: Vec::new(),
            gateway,
            smtp: Some(smtp),
            smtp_port,
            inbox,
            _alertmanager: alertmanager,
        };
        rig.start_daemon();
        rig.until_all_ok().await;
        rig
    }

    fn start_daemon(&mut self) {
        let d = Daemonized::spawn(&self.config);
        self.log.push(d.expect("status page on"));
        self.daemon = Some(d);
    }

    fn drain(&mut self) {
        if let Some(d) = &self.daemon {
            self.log.extend(d.drain());
        }
    }

    async fn checks(&self) -> BTreeMap<String, Value> {
        let url = format!("http://127.0.0.1:{}/api/status", self.port);
        let Ok(r) = reqwest::get(&url).await else {
            return BTreeMap::new();
        };
        let status: Value = r.json().await.unwrap_or_default();
        status["checks"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|c| (c["id"].as_str().unwrap_or_default().to_owned(), c.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Polls the page until `check` satisfies `want` (at most `within`): how long that
    /// took and what the page said.
    async fn until(
        &self,
        check: &str,
        within: Duration,
        want: impl Fn(&Value) -> bool,
    ) -> (Option<Duration>, String) {
        let started = Instant::now();
        let mut last = String::new();
        while started.elapsed() < within {
            if let Some(o) = self.checks().await.get(check) {
                last = format!(
                    "{} {}: {}",
                    o["status"].as_str().unwrap_or_default(),
                    o["label"].as_str().unwrap_or_default(),
                    o["message"].as_str().unwrap_or_default()
                );
                if want(o) {
                    return (Some(started.elapsed()), last);
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        (None, last)
    }

    async fn until_all_ok(&self) {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            let checks = self.checks().await;
            if checks.len() == 7 && checks.values().all(|c| c["status"] == "ok") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the rig never came up all ok: {:#?}", self.checks().await);
    }

    /// The events the log sink wrote.
    fn audit(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.join("audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Whether `sink` has undelivered events.
    fn backlog(&self, sink: &str) -> bool {
        std::fs::metadata(self.dir.join(format!("state/outbox/{sink}.jsonl"))).is_ok_and(|m| m.len() > 0)
    }

    /// A fault of a sink: an alert fires and resolves (the plugin crashes, then heals)
    /// while it lasts. Detected when the daemon logs the sink's failure; recovered when
    /// the sink's outbox is empty after the repair.
    async fn sink_fault(
        &mut self,
        report: &mut Report,
        fault: &str,
        sink: &str,
        inject: impl AsyncFnOnce(&mut Rig),
        repair: impl AsyncFnOnce(&mut Rig),
    ) {
        let before = self.audit().len();
        self.drain();
        let seen_before = self.log.len();
        inject(self).await;
        let started = Instant::now();
        std::fs::write(self.dir.join("plugin-mode"), "crash").unwrap();
        let mut detected = None;
        let mut shown = String::from("(the log said nothing)");
        while started.elapsed() < DETECT_WITHIN && detected.is_none() {
            self.drain();
            if let Some(line) = self.log[seen_before..].iter().find(|l| {
                l.contains(&format!("sink={sink}"))
                    && (l.contains("delivery failed") || l.contains("refused"))
            }) {
                detected = Some(started.elapsed());
                // The log line without its time, level and target.
                shown = line
                    .split_once("vitals::dispatch: ")
                    .map_or(line.as_str(), |(_, m)| m)
                    .to_owned();
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        std::fs::write(self.dir.join("plugin-mode"), "ok").unwrap();
        self.until("plugin", Duration::from_secs(30), |o| o["status"] == "ok")
            .await;
        let repaired = Instant::now();
        repair(self).await;
        // A sink that failed for a while retries at its backoff (doubling to 5 min), so
        // its outbox may take a while to empty after the repair.
        let mut recovered = None;
        while repaired.elapsed() < Duration::from_secs(180) {
            if !self.backlog(sink) {
                recovered = Some(repaired.elapsed());
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.drain();
        report.rows.push(Row {
            fault: fault.to_owned(),
            watched: format!("sink `{sink}`"),
            detected,
            shown,
            recovered,
            events: self.audit().len() - before,
        });
    }

    /// Injects a fault, waits for `detect` on `check`, repairs it, waits for `ok`.
    async fn fault(
        &mut self,
        report: &mut Report,
        fault: &str,
        check: &str,
        inject: impl AsyncFnOnce(&mut Rig),
        detect: impl Fn(&Value) -> bool,
        repair: impl AsyncFnOnce(&mut Rig),
    ) {
        let before = self.audit().len();
        inject(self).await;
        let (detected, shown) = self.until(check, DETECT_WITHIN, detect).await;
        repair(self).await;
        let (recovered, _) = self
            .until(check, Duration::from_secs(30), |o| o["status"] == "ok")
            .await;
        // Let the alert's resolve reach the log before counting.
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.drain();
        report.rows.push(Row {
            fault: fault.to_owned(),
            watched: check.to_owned(),
            detected,
            shown,
            recovered,
            events: self.audit().len() - before,
        });
    }
}

fn message(o: &Value) -> &str {
    o["message"].as_str().unwrap_or_default()
}

/// The next commit file of a table.
fn next_commit(table: &Path) -> PathBuf {
    let n = std::fs::read_dir(table.join("_delta_log"))
        .unwrap()
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_suffix(".json")?
                .parse::<u64>()
                .ok()
        })
        .max()
        .map_or(0, |v| v + 1);
    table.join(format!("_delta_log/{n:020}.json"))
}

/// Runs the matrix; `full` adds the slow faults (SMTP slow, IB flapping, a full
/// filesystem).
pub async fn run(full: bool) -> Report {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_owned();
    let mut report = Report::default();

    // The alerts table on a small filesystem of its own, where one can be mounted.
    let alerts_fs = dir.join("alerts-fs");
    std::fs::create_dir_all(&alerts_fs).unwrap();
    let mounted = full
        && std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
            .arg(&alerts_fs)
            .status()
            .is_ok_and(|s| s.success());
    let alerts_table = alerts_fs.join("alerts");
    let mut rig = Rig::start(&dir, &alerts_table).await;

    // IB gateway killed, then back.
    rig.fault(
        &mut report,
        "IB gateway killed (connection refused)",
        "ib",
        async |r| r.gateway.outage(),
        |o| o["status"] == "critical",
        async |r| r.gateway.back().await,
    )
    .await;
    // IB gateway up but silent.
    rig.fault(
        &mut report,
        "IB gateway silent (no heartbeat answers)",
        "ib",
        async |r| r.gateway.set_mode(Mode::Silent),
        |o| o["status"] == "critical",
        async |r| r.gateway.set_mode(Mode::Normal),
    )
    .await;
    if full {
        // Flapping: the session dropped every 2 s, five times.
        rig.fault(
            &mut report,
            "IB gateway flapping (dropped every 2 s, 5 times)",
            "ib",
            async |r| {
                for _ in 0..5 {
                    r.gateway.drop_sessions();
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                r.gateway.drop_sessions();
            },
            |o| o["status"] == "critical" || o["details"]["connected_since"].is_string(),
            async |_| {},
        )
        .await;
    }
    // A table deleted, then restored.
    let positions = dir.join("positions");
    let moved = dir.join("positions.away");
    rig.fault(
        &mut report,
        "table deleted",
        "positions",
        async |_| std::fs::rename(&positions, &moved).unwrap(),
        |o| o["status"] == "critical",
        async |_| std::fs::rename(&moved, &positions).unwrap(),
    )
    .await;
    // A commit cut off mid-write: the check cannot tell, check_unknown pages.
    let corrupt = next_commit(&dir.join("queue"));
    rig.fault(
        &mut report,
        "table corrupted mid-commit (truncated JSON)",
        "queue",
        async |_| std::fs::write(&corrupt, "{\"commitInfo\":{\"timestamp\":17").unwrap(),
        |o| o["status"] == "unknown",
        async |r| {
            // Long enough for check_unknown (unknown_after = 3s) to page.
            for _ in 0..200 {
                if r.audit()
                    .iter()
                    .any(|e| e["rule"] == "check_unknown" && e["check_id"] == "queue")
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            std::fs::remove_file(&corrupt).unwrap()
        },
    )
    .await;
    // A table whose next read hangs (a FIFO as its next commit: open() blocks).
    let fifo = next_commit(&positions);
    rig.fault(
        &mut report,
        "table storage hung (read blocks forever)",
        "positions",
        async |_| {
            nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        },
        |o| o["status"] == "critical" && message(o).contains("hung"),
        async |_| {
            // The storage answers: the blocked open() returns (a writer opens the FIFO),
            // the stuck read ends, and the file goes.
            use std::os::unix::fs::OpenOptionsExt;
            let _ = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(nix::libc::O_NONBLOCK)
                .open(&fifo);
            std::fs::remove_file(&fifo).unwrap();
        },
    )
    .await;
    if mounted {
        // The alerts table's filesystem full: the delta sink retries; nothing is lost.
        let filler = alerts_fs.join("filler");
        rig.sink_fault(
            &mut report,
            "alerts table's filesystem full (2 MB tmpfs)",
            "table",
            async |_| {
                let _ = std::process::Command::new("dd")
                    .args(["if=/dev/zero", "bs=64k"])
                    .arg(format!("of={}", filler.display()))
                    .stderr(std::process::Stdio::null())
                    .status();
            },
            async |_| std::fs::remove_file(&filler).unwrap(),
        )
        .await;
    } else {
        report.skipped.push((
            "alerts table's filesystem full".into(),
            if full {
                "no small filesystem could be mounted here".into()
            } else {
                "slow half".into()
            },
        ));
    }
    // SMTP down while an alert fires and resolves, then back on the same port.
    rig.sink_fault(
        &mut report,
        "SMTP server down",
        "mail",
        async |r| r.smtp = None,
        async |r| r.smtp = Some(SmtpServer::start(r.smtp_port, &r.inbox, None)),
    )
    .await;
    for (fault, mode) in [
        ("SMTP answering 4xx (try later)", "4xx"),
        ("SMTP answering 5xx (refused)", "5xx"),
    ] {
        rig.sink_fault(
            &mut report,
            fault,
            "mail",
            async |r| r.smtp.as_ref().unwrap().set_mode(mode),
            async |r| r.smtp.as_ref().unwrap().set_mode("ok"),
        )
        .await;
    }
    if full {
        rig.sink_fault(
            &mut report,
            "SMTP slow (30 s per message)",
            "mail",
            async |r| r.smtp.as_ref().unwrap().set_mode("slow"),
            async |r| {
                tokio::time::sleep(Duration::from_secs(35)).await;
                r.smtp.as_ref().unwrap().set_mode("ok");
            },
        )
        .await;
    }
    // Plugins that crash, hang and flood.
    for (fault, mode, seen) in [
        ("plugin crashes (SIGSEGV)", "crash", "unknown"),
        ("plugin hangs", "hang", "critical"),
        ("plugin writes 100 MB to stdout", "flood", "ok"),
    ] {
        rig.fault(
            &mut report,
            fault,
            "plugin",
            async |r| std::fs::write(r.dir.join("plugin-mode"), mode).unwrap(),
            |o| o["status"] == seen && (seen != "ok" || message(o).contains("flooded")),
            async |r| std::fs::write(r.dir.join("plugin-mode"), "ok").unwrap(),
        )
        .await;
    }
    // An invalid reload is refused; the running config stays.
    {
        let before = rig.audit().len();
        let good = std::fs::read_to_string(&rig.config).unwrap();
        let started = Instant::now();
        std::fs::write(&rig.config, format!("{good}\n[checks.broken]\nkind = \"cpuu\"\n")).unwrap();
        let refused = rig
            .daemon
            .as_ref()
            .map(|d| d.expect("new config refused, the running config stays"));
        let detected = refused.map(|_| started.elapsed());
        std::fs::write(&rig.config, &good).unwrap();
        let (still, shown) = rig
            .until("ib", Duration::from_secs(5), |o| o["status"] == "ok")
            .await;
        report.rows.push(Row {
            fault: "invalid config reloaded".into(),
            watched: "the daemon".into(),
            detected,
            shown: format!("refused in the log; checks kept running ({shown})"),
            recovered: still.map(|_| Duration::ZERO),
            events: rig.audit().len() - before,
        });
    }
    // kill -9 with alerts pending (SMTP down), then a restart.
    {
        let before = rig.audit().len();
        rig.smtp = None;
        std::fs::write(rig.dir.join("plugin-mode"), "crash").unwrap();
        let (detected, shown) = rig.until("plugin", DETECT_WITHIN, |o| o["status"] != "ok").await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        rig.drain();
        if let Some(d) = rig.daemon.take() {
            d.signal(nix::sys::signal::Signal::SIGKILL);
            rig.ended.push(d);
        }
        std::fs::write(rig.dir.join("plugin-mode"), "ok").unwrap();
        rig.smtp = Some(SmtpServer::start(rig.smtp_port, &rig.inbox, None));
        let restarted = Instant::now();
        rig.start_daemon();
        let (_, _) = rig
            .until("plugin", Duration::from_secs(30), |o| o["status"] == "ok")
            .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        rig.drain();
        report.rows.push(Row {
            fault: "kill -9 with alerts pending, then a restart".into(),
            watched: "plugin".into(),
            detected,
            shown,
            recovered: Some(restarted.elapsed()),
            events: rig.audit().len() - before,
        });
    }

    // Everything repaired: wait until every outbox is empty, then count.
    let outbox = dir.join("state/outbox");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        let pending = std::fs::read_dir(&outbox)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".jsonl"))
                    .filter(|e| !e.file_name().to_string_lossy().contains(".dead."))
                    .filter(|e| std::fs::metadata(e.path()).is_ok_and(|m| m.len() > 0))
                    .count()
            })
            .unwrap_or(0);
        if pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    rig.drain();
    if let Some(d) = rig.daemon.take() {
        d.signal(nix::sys::signal::Signal::SIGTERM);
        rig.log.push(d.expect("vitals stopped"));
        rig.log.extend(d.drain());
        rig.ended.push(d);
    }
    account(&rig, &mut report, &alerts_table);
    drop(rig);
    if mounted {
        let _ = std::process::Command::new("umount").arg(&alerts_fs).status();
    }
    report
}

/// The identity of an event: at-least-once delivery may repeat it, never change it.
fn key(alert_id: &str, state: &str, event_at: &str) -> String {
    format!("{alert_id} {state} {event_at}")
}

fn tally(keys: impl IntoIterator<Item = String>) -> Delivery {
    let mut seen = BTreeMap::<String, usize>::new();
    for k in keys {
        *seen.entry(k).or_default() += 1;
    }
    Delivery {
        delivered: seen.len(),
        duplicates: seen.values().map(|n| n - 1).sum(),
        dead: 0,
    }
}

fn dead(dir: &Path, sink: &str) -> usize {
    std::fs::read_to_string(dir.join(format!("state/outbox/{sink}.dead.jsonl")))
        .map(|t| t.lines().filter(|l| !l.trim().is_empty()).count())
        .unwrap_or(0)
}

fn account(rig: &Rig, report: &mut Report, alerts_table: &Path) {
    // Produced: every "ALERT …" line of the daemon's log (both of its lives; whole,
    // including lines an `expect` read past).
    report.produced = rig
        .ended
        .iter()
        .chain(&rig.daemon)
        .flat_map(Daemonized::all_lines)
        .filter(|l| l.contains(" ALERT "))
        .count();
    let audit = rig.audit();
    let log = tally(audit.iter().map(|e| {
        key(
            e["alert_id"].as_str().unwrap_or_default(),
            e["state"].as_str().unwrap_or_default(),
            e["event_at"].as_str().unwrap_or_default(),
        )
    }));
    report.sinks.insert("log".into(), log);
    let table = try_read_table(alerts_table).unwrap_or_default();
    let rows = table["rows"].as_array().cloned().unwrap_or_default();
    let mut d = tally(rows.iter().map(|r| {
        key(
            r["alert_id"].as_str().unwrap_or_default(),
            r["state"].as_str().unwrap_or_default(),
            &r["event_at"].to_string(),
        )
    }));
    d.dead = dead(&rig.dir, "table");
    report.sinks.insert("delta (alerts table)".into(), d);
    // Email: each event is a "[STATE] …" line followed by one with "at: … id: …".
    let mut keys = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&rig.inbox)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    for f in files {
        let m: Value = serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
        let text = m["text"].as_str().unwrap_or_default();
        let mut state = "";
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix('[') {
                state = rest.split(']').next().unwrap_or_default();
            } else if let Some((_, tail)) = line.split_once("   at: ") {
                let (at, id) = tail.split_once("   id: ").unwrap_or((tail, ""));
                keys.push(key(id.trim(), &state.to_lowercase(), at.trim()));
            }
        }
    }
    let mut d = tally(keys);
    d.dead = dead(&rig.dir, "mail");
    report.sinks.insert("email".into(), d);
    // Alertmanager: what vitals logged as delivered (the receiver keeps alerts, not events).
    let delivered: usize = rig
        .log
        .iter()
        .filter(|l| l.contains("sink=am") && l.contains("delivered"))
        .filter_map(|l| {
            l.split("delivered ")
                .nth(1)?
                .split(' ')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .sum();
    report.sinks.insert(
        "alertmanager".into(),
        Delivery {
            delivered,
            duplicates: 0,
            dead: dead(&rig.dir, "am"),
        },
    );
}

/// Every fault detected and recovered, and no sink lost an event (the ones the SMTP
/// server refused for good are in the dead-letter file, counted) or notified twice.
pub fn assert_nothing_lost(report: &Report, name: &str) {
    let table = report.markdown();
    std::fs::create_dir_all(concat!(env!("CARGO_MANIFEST_DIR"), "/test-output")).unwrap();
    std::fs::write(
        format!("{}/test-output/{name}.md", env!("CARGO_MANIFEST_DIR")),
        &table,
    )
    .unwrap();
    println!("{table}");
    for row in &report.rows {
        assert!(row.detected.is_some(), "missed: {row:?}\n{table}");
        assert!(row.recovered.is_some(), "did not recover: {row:?}\n{table}");
    }
    assert!(report.produced > 10, "{table}");
    for (sink, d) in &report.sinks {
        assert_eq!(
            d.delivered + d.dead,
            report.produced,
            "{sink} lost events\n{table}"
        );
        if sink == "email" {
            assert_eq!(d.duplicates, 0, "a notification was sent twice\n{table}");
        }
    }
}
