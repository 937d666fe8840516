//! What vitals costs to keep running, against the stack an operator would otherwise
//! assemble, both started together and sampled from `/proc` in one run.
//!
//! - **vitals** (the release binary, a process of its own): five `delta_freshness`
//!   tables (one of them, `positions`, appended to every second by a Python `deltalake`
//!   writer), `strategy_slots`, `queue_backlog`, a missing table, `cpu`, `memory`,
//!   `disk`, `host` and `ib_connection` against the gateway stand-in
//!   (`src/demo/gateway.rs`, in this process), all at 5 s; the four seed rules
//!   feed the delta, email (a real SMTP server on loopback) and log sinks.
//! - **the stack**: Debian's `prometheus-node-exporter`, `prometheus` and
//!   `prometheus-alertmanager`, scrape and evaluation every 5 s, three host rules. It
//!   covers host metrics only.
//!
//! Each process's RSS, threads and open files every `--sample` seconds after
//! `--warmup`, for `--seconds`; CPU from its utime + stime over the whole window.
//! Prints the table, the ratios and vitals' RSS drift (first third vs last third).
//!
//! `cargo bench --bench footprint -- [--seconds 180] [--warmup 20] [--sample 2]
//! [--vitals-only] [--bin PATH] [--baseline PATH]`
//!
//! `--bin` measures another vitals binary than this build's; `--baseline` runs a second
//! one beside it on the same tables, gateway and SMTP server (before and after a change,
//! in one run).
//!
//! Needs ./.venv (scripts/test.sh makes it) and the Debian packages prometheus,
//! prometheus-node-exporter and prometheus-alertmanager. Loopback only.

mod common;

#[allow(dead_code)]
use vitals::demo::gateway;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, python, root};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    let i = args.iter().position(|a| a == name)?;
    Some(args.get(i + 1).cloned().unwrap_or_default())
}

fn num(name: &str, default: u64) -> u64 {
    arg(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a Python helper that prints "ready" once it is.
fn ready(mut command: Command) -> Proc {
    let mut child = command.stdout(Stdio::piped()).spawn().expect("python in .venv");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready", "helper did not start");
    Proc(child)
}

fn make_table(args: &[&str]) {
    let status = Command::new(python())
        .arg(root().join("tests/support/make_table.py"))
        .args(args)
        .status()
        .unwrap();
    assert!(status.success(), "make_table.py {args:?}");
}

/// One reading of a process.
#[derive(Clone, Copy, Default)]
struct Reading {
    rss_kb: u64,
    /// The heap and other private memory (the rest of RSS is the binary's pages in use).
    anon_kb: u64,
    threads: u64,
    fds: u64,
}

fn read(pid: u32) -> Reading {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    Reading {
        rss_kb: field("VmRSS:"),
        anon_kb: field("RssAnon:"),
        threads: field("Threads:"),
        fds: std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| d.count() as u64)
            .unwrap_or(0),
    }
}

/// utime + stime in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of stat; 12 and 13 after the name.
    n(11) + n(12)
}

fn median(v: &[u64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_unstable();
    if v.is_empty() {
        return 0.0;
    }
    v[v.len() / 2] as f64
}

/// What was sampled of one process (or the sum of several).
struct Series {
    name: String,
    pids: Vec<u32>,
    readings: Vec<Reading>,
    ticks: (u64, u64),
}

impl Series {
    fn new(name: &str, pids: Vec<u32>) -> Series {
        Series {
            name: name.to_owned(),
            pids,
            readings: Vec::new(),
            ticks: (0, 0),
        }
    }

    fn ticks_now(&self) -> u64 {
        self.pids.iter().map(|&p| cpu_ticks(p)).sum()
    }

    fn sample(&mut self) {
        let mut sum = Reading::default();
        for &p in &self.pids {
            let r = read(p);
            sum.rss_kb += r.rss_kb;
            sum.anon_kb += r.anon_kb;
            sum.threads += r.threads;
            sum.fds += r.fds;
        }
        self.readings.push(sum);
    }

    fn rss(&self) -> Vec<u64> {
        self.readings.iter().map(|r| r.rss_kb).collect()
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    procs: Vec<Proc>,
    vitals: Option<Proc>,
    baseline: Option<Proc>,
    stack: Vec<(String, Proc)>,
    log: PathBuf,
}

const RULES: &str = r#"
[[rules]]
name = "system_critical"
kinds = ["cpu", "memory", "disk"]
when = "value > 90"
severity = "WARNING"
keep_firing_for = "30s"
repeat = "1h"
message = "{check} at {value}% (above 90%)"

[[rules]]
name = "ib_disconnected"
kinds = ["ib_connection"]
when = "status == 'critical'"
for = "3s"
severity = "CRITICAL"
message = "IB {label}: {message}"

[[rules]]
name = "data_stale"
kinds = ["delta_freshness"]
when = "value > 60"
severity = "WARNING"
message = "{check} stale ({value}s old)"

[[rules]]
name = "slots_near_limit"
kinds = ["strategy_slots"]
when = "value > 90"
severity = "INFO"
message = "{value} of {details.limit} streaming slots in use"
"#;

/// The tables the checks watch (the positions table is the writer's).
fn make_tables(d: &Path) {
    let data = d.join("data");
    std::fs::create_dir_all(&data).unwrap();
    for (name, commits) in [
        ("greeks", "20"),
        ("quotes", "50"),
        ("orders", "120"),
        ("pnl", "5"),
    ] {
        make_table(&[data.join(name).to_str().unwrap(), "tz", "10", commits]);
    }
    make_table(&[
        "registry",
        data.join("strategy_registry").to_str().unwrap(),
        "60",
        "20",
    ]);
    make_table(&[
        "queue",
        data.join("position_queue").to_str().unwrap(),
        "10",
        "200",
        "20",
    ]);
}

/// Starts one vitals (`name`: its config, state, alerts table and log are its own; the
/// watched tables, the gateway and the SMTP server are shared).
fn start_vitals(
    d: &Path,
    name: &str,
    bin: &Path,
    ib_port: u16,
    smtp_port: u16,
    client_id: u32,
) -> (Proc, PathBuf) {
    let mut config = format!(
        "[server]\nlisten = \"127.0.0.1:{}\"\nstate_dir = \"state-{name}\"\n\n[defaults]\ninterval = \"5s\"\n\n\
         [checks.cpu]\nkind = \"cpu\"\n\n[checks.memory]\nkind = \"memory\"\n\n\
         [checks.disk]\nkind = \"disk\"\npath = \"/\"\n\n[checks.host]\nkind = \"host\"\n\n\
         [checks.ib]\nkind = \"ib_connection\"\nport = {ib_port}\nclient_id = {client_id}\nheartbeat = \"10s\"\n\n\
         [checks.strategy_registry]\nkind = \"strategy_slots\"\ntable = \"data/strategy_registry\"\nlimit = 100\nwarn = 90\ncrit = 100\n\n\
         [checks.position_queue]\nkind = \"queue_backlog\"\ntable = \"data/position_queue\"\nwarn = 50\ncrit = 200\n\n\
         [checks.missing]\nkind = \"delta_freshness\"\ntable = \"data/not_there\"\nwarn = \"30s\"\ncrit = \"60s\"\n\n",
        free_port()
    );
    for table in ["positions", "greeks", "quotes", "orders", "pnl"] {
        config.push_str(&format!(
            "[checks.{table}]\nkind = \"delta_freshness\"\ntable = \"data/{table}\"\ncolumn = \"synced_at\"\n\
             warn = \"30s\"\ncrit = \"60s\"\ndepends_on = [\"ib\"]\n\n"
        ));
    }
    config.push_str(RULES);
    config.push_str(&format!(
        "\n[sinks.alerts_table]\nkind = \"delta\"\ntable = \"data/alerts-{name}\"\nflush_interval = \"1s\"\n\n\
         [sinks.desk_email]\nkind = \"email\"\nhost = \"127.0.0.1\"\nport = {smtp_port}\ntls = \"none\"\n\
         from = \"vitals <vitals@bench.test>\"\nto = [\"desk@bench.test\"]\ngroup_wait = \"10s\"\n\n\
         [sinks.audit]\nkind = \"log\"\npath = \"state-{name}/alerts.jsonl\"\n"
    ));
    let path = d.join(format!("{name}.toml"));
    std::fs::write(&path, config).unwrap();
    let log = d.join(format!("{name}.log"));
    let child = Command::new(bin)
        .args(["run", "-c"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("the vitals binary");
    (Proc(child), log)
}

fn start_stack(d: &Path) -> Vec<(String, Proc)> {
    let (ne_port, prom_port, am_port) = (free_port(), free_port(), free_port());
    std::fs::write(
        d.join("am.yml"),
        "route:\n  receiver: desk\nreceivers:\n  - name: desk\n",
    )
    .unwrap();
    std::fs::write(
        d.join("rules.yml"),
        "groups:\n  - name: host\n    rules:\n\
         \x20     - alert: CpuHigh\n        expr: 100 * (1 - avg(rate(node_cpu_seconds_total{mode=\"idle\"}[1m]))) > 90\n\
         \x20     - alert: MemoryHigh\n        expr: 100 * (1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes) > 90\n\
         \x20     - alert: DiskFull\n        expr: 100 * (1 - node_filesystem_avail_bytes{mountpoint=\"/\"} / node_filesystem_size_bytes{mountpoint=\"/\"}) > 90\n",
    )
    .unwrap();
    std::fs::write(
        d.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 5s\n  evaluation_interval: 5s\n\
             rule_files: [{}]\nalerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{am_port}']\n\
             scrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{ne_port}']\n",
            d.join("rules.yml").display()
        ),
    )
    .unwrap();
    let quiet = |mut c: Command| -> Proc {
        Proc(
            c.stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("Debian prometheus packages"),
        )
    };
    let mut ne = Command::new("prometheus-node-exporter");
    ne.arg(format!("--web.listen-address=127.0.0.1:{ne_port}"));
    let mut am = Command::new("prometheus-alertmanager");
    am.arg(format!("--config.file={}", d.join("am.yml").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{am_port}"))
        .arg(format!("--storage.path={}", d.join("am").display()))
        .arg("--cluster.listen-address=");
    let mut prom = Command::new("prometheus");
    prom.arg(format!("--config.file={}", d.join("prometheus.yml").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
        .arg(format!("--storage.tsdb.path={}", d.join("tsdb").display()));
    vec![
        ("node_exporter".into(), quiet(ne)),
        ("Prometheus".into(), quiet(prom)),
        ("Alertmanager".into(), quiet(am)),
    ]
}

async fn setup(ib_port: u16, bin: &Path, baseline: Option<&Path>, with_stack: bool) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let inbox = d.join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    let smtp_port = free_port();
    let mut procs = Vec::new();
    let mut smtp = Command::new(python());
    smtp.arg(root().join("tests/support/smtp_server.py"))
        .arg(smtp_port.to_string())
        .arg(&inbox);
    procs.push(ready(smtp));
    std::fs::create_dir_all(d.join("data")).unwrap();
    let mut writer = Command::new(python());
    writer
        .arg(root().join("tests/support/writer.py"))
        .arg(d.join("data/positions"));
    procs.push(ready(writer));
    // Both sides start together.
    let stack = if with_stack { start_stack(&d) } else { Vec::new() };
    make_tables(&d);
    let (vitals, log) = start_vitals(&d, "vitals", bin, ib_port, smtp_port, 90);
    let baseline = baseline.map(|b| start_vitals(&d, "baseline", b, ib_port, smtp_port, 91).0);
    Setup {
        _dir: dir,
        procs,
        vitals: Some(vitals),
        baseline,
        stack,
        log,
    }
}

fn main() {
    let seconds = num("--seconds", 180);
    let warmup = num("--warmup", 20);
    let every = num("--sample", 2);
    let with_stack = arg("--vitals-only").is_none();
    let bin = arg("--bin")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_vitals")));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let gw = gateway::Gateway::start().await;
        let baseline = arg("--baseline").map(PathBuf::from);
        let mut s = setup(gw.port(), &bin, baseline.as_deref(), with_stack).await;
        let vitals_pid = s.vitals.as_ref().unwrap().0.id();
        let mut series = vec![Series::new("vitals", vec![vitals_pid])];
        if let Some(b) = &s.baseline {
            series.push(Series::new("vitals (baseline binary)", vec![b.0.id()]));
        }
        for (name, p) in &s.stack {
            series.push(Series::new(name, vec![p.0.id()]));
        }
        if with_stack {
            let pids = s.stack.iter().map(|(_, p)| p.0.id()).collect();
            series.push(Series::new("node_exporter + Prometheus + Alertmanager", pids));
        }
        tokio::time::sleep(Duration::from_secs(warmup)).await;
        // Clock ticks per second of /proc/PID/stat (USER_HZ).
        let tick: f64 = Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0);
        for x in &mut series {
            x.ticks.0 = x.ticks_now();
        }
        let t0 = Instant::now();
        let mut next = t0;
        while t0.elapsed() < Duration::from_secs(seconds) {
            for x in &mut series {
                x.sample();
            }
            next += Duration::from_secs(every);
            tokio::time::sleep_until(next.into()).await;
        }
        let wall = t0.elapsed().as_secs_f64();
        for x in &mut series {
            x.ticks.1 = x.ticks_now();
        }
        println!(
            "{} s after a {} s warm-up, sampled every {} s ({} samples); binary {}\n",
            seconds,
            warmup,
            every,
            series[0].readings.len(),
            bin.display()
        );
        println!("| process | RSS median | RSS peak | of which anonymous | CPU (% of one core) | threads | open files |");
        println!("|---|---|---|---|---|---|---|");
        let mut figures = Vec::new();
        for x in &series {
            let rss = x.rss();
            let cpu = (x.ticks.1 - x.ticks.0) as f64 / tick / wall * 100.0;
            let threads: Vec<u64> = x.readings.iter().map(|r| r.threads).collect();
            let fds: Vec<u64> = x.readings.iter().map(|r| r.fds).collect();
            let anon: Vec<u64> = x.readings.iter().map(|r| r.anon_kb).collect();
            println!(
                "| {} | {:.1} MB | {:.1} MB | {:.1} MB | {:.2} % | {} | {} |",
                x.name,
                median(&rss) / 1024.0,
                *rss.iter().max().unwrap_or(&0) as f64 / 1024.0,
                median(&anon) / 1024.0,
                cpu,
                median(&threads),
                median(&fds)
            );
            figures.push((median(&rss), cpu, median(&anon)));
        }
        let v = &series[0];
        let rss = v.rss();
        let third = (rss.len() / 3).max(1);
        println!(
            "\nvitals RSS drift: first third median {:.1} MB, last third {:.1} MB ({:+.1} %)",
            median(&rss[..third]) / 1024.0,
            median(&rss[rss.len() - third..]) / 1024.0,
            (median(&rss[rss.len() - third..]) / median(&rss[..third]) - 1.0) * 100.0
        );
        if with_stack {
            let (vr, vc, va) = figures[0];
            let (sr, sc, sa) = *figures.last().unwrap();
            println!(
                "vitals / stack: RSS {:.2} (goal <= 0.20), anonymous {:.2}, CPU {:.2}; vitals RSS {:.1} MB (goal <= 20), CPU {:.2} % (goal <= 0.5)",
                vr / sr,
                va / sa,
                vc / sc,
                vr / 1024.0,
                vc
            );
        }
        s.vitals.take();
        s.baseline.take();
        let log = std::fs::read_to_string(&s.log).unwrap_or_default();
        let bad: Vec<&str> = log
            .lines()
            .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
            .collect();
        println!("vitals logged {} WARN/ERROR lines", bad.len());
        for l in bad.iter().take(10) {
            println!("  {l}");
        }
        s.procs.clear();
        s.stack.clear();
        drop(gw);
    });
}
