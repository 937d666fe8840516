//! Alerting latency and the alerts table under load.
//!
//! 1. Fault → email accepted by the SMTP server, and fault → row visible in the alerts
//!    Delta table, through a real vitals daemon: N command checks at a 5 s interval
//!    (random phases), rule `for = 0`, faults injected at random moments.
//! 2. The same fault through the pipeline an operator would otherwise build, measured
//!    in the same run: node_exporter (textfile collector) → Prometheus → Alertmanager →
//!    email, all with their documented default intervals (scrape and evaluation 1 m,
//!    Alertmanager group_wait 30 s).
//! 3. 10,000 alert events through the delta sink: commits written, and the time Python
//!    `deltalake` takes to read the table into pandas afterwards.
//!
//! Needs ./.venv (scripts/test.sh makes it) and the Debian packages prometheus,
//! prometheus-node-exporter and prometheus-alertmanager.
//! `cargo bench --bench alerting -- [--checks 40] [--skip-prometheus]`

mod common;

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use deltalake::arrow::array::{Array, StringArray};
use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use tokio::time::Instant;
use vitals::daemon::Daemon;
use vitals::registry::registry;

use common::{free_port, python, root};

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn smtp(port: u16, dir: &Path) -> Proc {
    let mut child = Command::new(python())
        .arg(root().join("tests/support/smtp_server.py"))
        .arg(port.to_string())
        .arg(dir)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python in .venv");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    Proc(child)
}

/// Every message's text and HTML.
fn mails(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "json")
            && let Ok(t) = std::fs::read_to_string(&p)
        {
            out.push(t);
        }
    }
    out
}

/// check_id values of every row committed so far (reading only commits not yet seen).
fn committed_checks(table: &Path, seen_commits: &mut HashSet<String>, out: &mut HashSet<String>) {
    let Ok(entries) = std::fs::read_dir(table.join("_delta_log")) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".json") || seen_commits.contains(&name) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(e.path()) else {
            continue;
        };
        seen_commits.insert(name);
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let Some(path) = v["add"]["path"].as_str() else {
                continue;
            };
            let file = std::fs::File::open(table.join(path)).unwrap();
            let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                .unwrap()
                .build()
                .unwrap();
            for batch in reader {
                let batch = batch.unwrap();
                let col = batch.column_by_name("check_id").unwrap();
                let col = col.as_any().downcast_ref::<StringArray>().unwrap();
                for i in 0..col.len() {
                    out.insert(col.value(i).to_owned());
                }
            }
        }
    }
}

fn percentile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * q).round() as usize]
}

async fn vitals_latency(checks: usize) -> (Vec<f64>, Vec<f64>) {
    let dir = tempfile::tempdir().unwrap();
    let inbox = tempfile::tempdir().unwrap();
    let port = free_port();
    let _smtp = smtp(port, inbox.path());
    let mut text = String::from("[defaults]\ninterval = \"5s\"\njitter = \"5s\"\ntimeout = \"3s\"\n\n");
    for i in 0..checks {
        let flag = dir.path().join(format!("fault{i}"));
        text.push_str(&format!(
            "[checks.c{i}]\nkind = \"command\"\ncommand = [\"/bin/sh\", \"-c\", \"if [ -e {} ]; then echo 'CRITICAL - fault'; exit 2; fi; echo OK\"]\n",
            flag.display()
        ));
    }
    text.push_str(&format!(
        "\n[[rules]]\nname = \"fault\"\nkinds = [\"command\"]\nwhen = \"status == 'critical'\"\nseverity = \"CRITICAL\"\nfor = \"0s\"\nmessage = \"fault on <{{check}}>\"\n\n\
         [sinks.alerts_table]\nkind = \"delta\"\ntable = \"alerts\"\nflush_interval = \"500ms\"\n\n\
         [sinks.mail]\nkind = \"email\"\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\ngroup_wait = \"500ms\"\n\
         from = \"vitals@bench.test\"\nto = [\"desk@bench.test\"]\n"
    ));
    let path = dir.path().join("vitals.toml");
    std::fs::write(&path, text).unwrap();
    let daemon = Daemon::start(&path, registry().unwrap()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(6)).await;

    let mut fault_at = BTreeMap::new();
    for i in 0..checks {
        tokio::time::sleep(Duration::from_millis(rand::random_range(0..250))).await;
        std::fs::write(dir.path().join(format!("fault{i}")), "").unwrap();
        fault_at.insert(format!("c{i}"), Instant::now());
    }
    let (mut email, mut row) = (BTreeMap::new(), BTreeMap::new());
    let (mut seen_commits, mut rows) = (HashSet::new(), HashSet::new());
    let deadline = Instant::now() + Duration::from_secs(60);
    while (email.len() < checks || row.len() < checks) && Instant::now() < deadline {
        let now = Instant::now();
        let bodies = mails(inbox.path()).concat();
        committed_checks(&dir.path().join("alerts"), &mut seen_commits, &mut rows);
        for (id, t) in &fault_at {
            if !email.contains_key(id) && bodies.contains(&format!("fault on <{id}>")) {
                email.insert(id.clone(), (now - *t).as_secs_f64());
            }
            if !row.contains_key(id) && rows.contains(id) {
                row.insert(id.clone(), (now - *t).as_secs_f64());
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    daemon.shutdown().await;
    assert_eq!(email.len(), checks, "every fault reached the SMTP server");
    assert_eq!(row.len(), checks, "every fault reached the alerts table");
    (email.into_values().collect(), row.into_values().collect())
}

async fn prometheus_latency(faults: usize) -> Vec<f64> {
    let dir = tempfile::tempdir().unwrap();
    let inbox = tempfile::tempdir().unwrap();
    let (smtp_port, ne_port, prom_port, am_port) = (free_port(), free_port(), free_port(), free_port());
    let _smtp = smtp(smtp_port, inbox.path());
    let textfiles = dir.path().join("textfiles");
    std::fs::create_dir_all(&textfiles).unwrap();
    std::fs::write(textfiles.join("fault.prom"), "# TYPE fault gauge\n").unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("am.yml"),
        format!(
            "global:\n  smtp_smarthost: 127.0.0.1:{smtp_port}\n  smtp_from: am@bench.test\n  smtp_require_tls: false\n\
             route:\n  receiver: desk\n  group_by: [id]\n\
             receivers:\n  - name: desk\n    email_configs:\n      - to: desk@bench.test\n"
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("rules.yml"),
        "groups:\n  - name: bench\n    rules:\n      - alert: Fault\n        expr: fault == 1\n        for: 0m\n",
    )
    .unwrap();
    std::fs::write(
        d.join("prometheus.yml"),
        format!(
            "rule_files: [{}]\nalerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{am_port}']\n\
             scrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{ne_port}']\n",
            d.join("rules.yml").display()
        ),
    )
    .unwrap();
    let quiet = |c: &mut Command| {
        c.stdout(Stdio::null()).stderr(Stdio::null());
    };
    let mut ne = Command::new("prometheus-node-exporter");
    ne.arg(format!("--web.listen-address=127.0.0.1:{ne_port}"))
        .arg("--collector.disable-defaults")
        .arg("--collector.textfile")
        .arg(format!("--collector.textfile.directory={}", textfiles.display()));
    quiet(&mut ne);
    let _ne = Proc(ne.spawn().expect("prometheus-node-exporter"));
    let mut am = Command::new("prometheus-alertmanager");
    am.arg(format!("--config.file={}", d.join("am.yml").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{am_port}"))
        .arg(format!("--storage.path={}", d.join("am").display()))
        .arg("--cluster.listen-address=");
    quiet(&mut am);
    let _am = Proc(am.spawn().expect("prometheus-alertmanager"));
    let mut prom = Command::new("prometheus");
    prom.arg(format!("--config.file={}", d.join("prometheus.yml").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
        .arg(format!("--storage.tsdb.path={}", d.join("tsdb").display()));
    quiet(&mut prom);
    let _prom = Proc(prom.spawn().expect("prometheus"));
    tokio::time::sleep(Duration::from_secs(5)).await;

    // Faults at random moments over a minute (so they fall anywhere in the scrape cycle).
    let mut fault_at = BTreeMap::new();
    let mut lines = String::from("# TYPE fault gauge\n");
    let start = Instant::now();
    let mut offsets: Vec<u64> = (0..faults).map(|_| rand::random_range(0..60_000)).collect();
    offsets.sort();
    for (i, ms) in offsets.into_iter().enumerate() {
        tokio::time::sleep_until(start + Duration::from_millis(ms)).await;
        lines.push_str(&format!("fault{{id=\"fault-{i}-x\"}} 1\n"));
        let tmp = textfiles.join("fault.prom.tmp");
        std::fs::write(&tmp, &lines).unwrap();
        std::fs::rename(&tmp, textfiles.join("fault.prom")).unwrap();
        fault_at.insert(format!("fault-{i}-x"), Instant::now());
    }
    let mut email = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    while email.len() < faults && Instant::now() < deadline {
        let now = Instant::now();
        let bodies = mails(inbox.path()).concat();
        for (id, t) in &fault_at {
            if !email.contains_key(id) && bodies.contains(id.as_str()) {
                email.insert(id.clone(), (now - *t).as_secs_f64());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        email.len(),
        faults,
        "every fault reached the SMTP server through Alertmanager"
    );
    email.into_values().collect()
}

async fn ten_thousand_events() -> (usize, f64, f64, usize) {
    use vitals::alert::{AlertEvent, AlertState, Severity};
    use vitals::config::parse;
    use vitals::dispatch::{Dispatcher, SinkInstance};
    let dir = tempfile::tempdir().unwrap();
    let text = "[sinks.alerts]\nkind = \"delta\"\ntable = \"alerts\"\nflush_interval = \"1s\"\n";
    let config = parse(&dir.path().join("v.toml"), text, registry().unwrap()).unwrap();
    let d = Dispatcher::start(
        vec![SinkInstance::build(&config.sinks[0], dir.path())],
        dir.path(),
    );
    let started = Instant::now();
    for n in 0..10_000 {
        let now = chrono::Utc::now();
        d.send(&AlertEvent {
            alert_id: format!("storm.c{}.{n}", n % 100),
            rule: "storm".into(),
            check_id: format!("c{}", n % 100),
            severity: Severity::Warning,
            state: if n % 2 == 0 {
                AlertState::Firing
            } else {
                AlertState::Resolved
            },
            message: format!("event {n}"),
            value: Some(n as f64),
            started_at: now,
            event_at: now,
            host: "bench".into(),
            reminder: false,
            label: None,
        });
        if n % 100 == 99 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let outbox = dir.path().join("outbox/alerts.jsonl");
    while outbox.exists() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    d.shutdown(Duration::from_secs(5)).await;
    let commits = std::fs::read_dir(dir.path().join("alerts/_delta_log"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .count()
        - 1;
    let out = Command::new(python())
        .arg(root().join("tests/support/alerts_table.py"))
        .arg("count")
        .arg(dir.path().join("alerts"))
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        commits,
        elapsed,
        v["seconds"].as_f64().unwrap(),
        v["rows"].as_u64().unwrap() as usize,
    )
}

/// `n` events, each delivered alone (one commit each): the time of each delivery, so
/// the commit cost can be compared at the start and the end of the run.
async fn single_commits(n: usize) -> Vec<f64> {
    use vitals::alert::{AlertEvent, AlertState, Severity};
    use vitals::config::parse;
    use vitals::dispatch::{Dispatcher, SinkInstance};
    let dir = tempfile::tempdir().unwrap();
    let text = "[sinks.alerts]\nkind = \"delta\"\ntable = \"alerts\"\nflush_interval = \"0s\"\n";
    let config = parse(&dir.path().join("v.toml"), text, registry().unwrap()).unwrap();
    let d = Dispatcher::start(
        vec![SinkInstance::build(&config.sinks[0], dir.path())],
        dir.path(),
    );
    let outbox = dir.path().join("outbox/alerts.jsonl");
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let now = chrono::Utc::now();
        let started = Instant::now();
        d.send(&AlertEvent {
            alert_id: format!("single.c.{i}"),
            rule: "single".into(),
            check_id: "c".into(),
            severity: Severity::Warning,
            state: AlertState::Firing,
            message: format!("event {i}"),
            value: None,
            started_at: now,
            event_at: now,
            host: "bench".into(),
            reminder: false,
            label: None,
        });
        while outbox.exists() {
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    d.shutdown(Duration::from_secs(5)).await;
    times
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .map(|i| args.get(i + 1).cloned().unwrap_or_default())
}

fn main() {
    let checks: usize = arg("--checks").and_then(|v| v.parse().ok()).unwrap_or(40);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (mut email, mut row) = vitals_latency(checks).await;
        println!("vitals, {checks} faults, 5 s interval, for = 0, group_wait 500 ms, flush_interval 500 ms:");
        println!(
            "  fault -> email:     p50 {:.2} s, p99 {:.2} s, max {:.2} s",
            percentile(&mut email, 0.5),
            percentile(&mut email, 0.99),
            percentile(&mut email, 1.0)
        );
        println!(
            "  fault -> table row: p50 {:.2} s, p99 {:.2} s, max {:.2} s",
            percentile(&mut row, 0.5),
            percentile(&mut row, 0.99),
            percentile(&mut row, 1.0)
        );
        let goal = percentile(&mut email, 0.99) <= 6.0 && percentile(&mut row, 0.99) <= 6.0;
        println!("  goal (p99 <= interval + 1 s = 6 s): {}", if goal { "met" } else { "NOT met" });
        if arg("--skip-prometheus").is_none() {
            let mut prom = prometheus_latency(8).await;
            println!("node_exporter -> Prometheus -> Alertmanager -> email, 8 faults, default intervals:");
            println!(
                "  fault -> email:     p50 {:.2} s, max {:.2} s (min {:.2} s)",
                percentile(&mut prom, 0.5),
                percentile(&mut prom, 1.0),
                percentile(&mut prom, 0.0)
            );
            println!(
                "  ratio (Prometheus pipeline / vitals), p50: {:.1}x",
                percentile(&mut prom, 0.5) / percentile(&mut email, 0.5)
            );
        }
        let singles: usize = arg("--single-commits").and_then(|v| v.parse().ok()).unwrap_or(1000);
        let times = single_commits(singles).await;
        let mut first: Vec<f64> = times[..100].to_vec();
        let mut last: Vec<f64> = times[times.len() - 100..].to_vec();
        let (f, l) = (percentile(&mut first, 0.5), percentile(&mut last, 0.5));
        println!(
            "{singles} events delivered one commit each: median delivery {f:.1} ms for the first 100, {l:.1} ms for the last 100 (ratio {:.2})",
            l / f
        );
        let (commits, elapsed, read, rows) = ten_thousand_events().await;
        println!(
            "10,000 events through the delta sink (flush_interval 1 s): {commits} commits, all committed in {elapsed:.2} s; \
             Python deltalake reads the {rows} rows into pandas in {:.0} ms",
            read * 1000.0
        );
    });
}
