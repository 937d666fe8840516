//! `vitals replay` on one recorded week: 20 checks at 5 s (2,419,200 observations)
//! through the seed's rules with market hours, depends_on, a maintenance window and
//! check_unknown. Goal: ≤ 10 s on the project's 2-core machine.
//!
//! Baselines measured in the same run, on the same file:
//! - the floor: reading the file and parsing each line into a `serde_json::Value`,
//!   in this process (what any replay must at least do);
//! - Python's `json.loads` of each line (./.venv, made by scripts/test.sh), when present.
//!
//! `cargo bench --bench replay`

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use chrono::{Duration, TimeZone, Utc};

const CONFIG: &str = r#"
[server]
state_dir = "state"

[checks.ib]
kind = "ib_connection"
client_id = 90

[checks.cpu]
kind = "cpu"
[checks.memory]
kind = "memory"
[checks.disk]
kind = "disk"
[checks.host]
kind = "host"

[checks.strategy_registry]
kind = "strategy_slots"
table = "t/strategy_registry"

[checks.position_queue]
kind = "queue_backlog"
table = "t/position_queue"

[defaults]
unknown_after = "2m"

[[rules]]
name = "system_critical"
kinds = ["cpu", "memory", "disk"]
when = "value > 90"
severity = "WARNING"
keep_firing_for = "30s"
repeat = "1h"

[[rules]]
name = "ib_disconnected"
kinds = ["ib_connection"]
when = "status == 'critical'"
for = "3s"
severity = "CRITICAL"
maintenance = [{ start = "45 23 * * *", duration = "30m", timezone = "America/New_York", reason = "IB Gateway nightly restart" }]

[[rules]]
name = "data_stale"
kinds = ["delta_freshness"]
when = "value > 60"
severity = "WARNING"
repeat = "30m"

[[rules]]
name = "slots_near_limit"
kinds = ["strategy_slots"]
when = "value > 90"
severity = "INFO"
message = "{value} of {details.limit} streaming slots in use"

[[rules]]
name = "queue_backlog"
kinds = ["queue_backlog"]
when = "value > 50"
for = "1m"
severity = "WARNING"
"#;

/// The 13 freshness checks (20 checks in all).
const TABLES: [&str; 13] = [
    "positions",
    "greeks",
    "decisions",
    "orders",
    "fills",
    "quotes",
    "bars_1m",
    "bars_5m",
    "signals",
    "risk",
    "pnl",
    "margin",
    "vol_surface",
];

fn config_text() -> String {
    let mut text = CONFIG.to_owned();
    for t in TABLES {
        text.push_str(&format!(
            "\n[checks.{t}]\nkind = \"delta_freshness\"\ntable = \"t/{t}\"\ndepends_on = [\"ib\"]\nmarket_hours = \"nyse\"\nmarket_grace = \"5m\"\n"
        ));
    }
    text
}

/// One week (Monday 2026-11-23 00:00 New York, Thanksgiving week) of 20 checks every
/// 5 s, with a stale table every afternoon, an IB outage and a CPU spike.
fn write_week(path: &Path) -> u64 {
    let start = chrono_tz::America::New_York
        .with_ymd_and_hms(2026, 11, 23, 0, 0, 0)
        .unwrap()
        .with_timezone(&Utc);
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let steps = 7 * 24 * 3600 / 5;
    let mut n = 0;
    for i in 0..steps {
        let t = start + Duration::seconds(5 * i);
        let at = t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let minute_of_day = (i * 5 / 60) % (24 * 60);
        let ib_down = (2 * 24 * 60 + 14 * 60..2 * 24 * 60 + 14 * 60 + 20).contains(&(i * 5 / 60));
        let mut line = |id: &str, kind: &str, status: &str, value: f64, unit: &str, details: &str| {
            writeln!(
                out,
                r#"{{"id":"{id}","kind":"{kind}","status":"{status}","label":null,"value":{value},"unit":"{unit}","message":"{id} {value}{unit}","observed_at":"{at}","duration_ms":0.4,"details":{details}}}"#
            )
            .unwrap();
            n += 1;
        };
        line(
            "ib",
            "ib_connection",
            if ib_down { "critical" } else { "ok" },
            12.0,
            "ms",
            "{}",
        );
        let cpu = if minute_of_day == 600 {
            95.0
        } else {
            20.0 + (i % 7) as f64
        };
        line("cpu", "cpu", "ok", cpu, "%", "{}");
        line("memory", "memory", "ok", 41.5, "%", "{}");
        line("disk", "disk", "ok", 63.0, "%", "{}");
        line(
            "host",
            "host",
            "ok",
            86400.0 + (i * 5) as f64,
            "s",
            r#"{"procs":412,"load1":0.4}"#,
        );
        line(
            "strategy_registry",
            "strategy_slots",
            "ok",
            42.0,
            "",
            r#"{"limit":100}"#,
        );
        line("position_queue", "queue_backlog", "ok", (i % 60) as f64, "", "{}");
        for (k, table) in TABLES.iter().enumerate() {
            // Stale for 10 minutes each afternoon (a different table each day), else fresh.
            let stale =
                (15 * 60..15 * 60 + 10).contains(&minute_of_day) && k == (i as usize / 17280) % TABLES.len();
            let age = if stale { 120.0 } else { 3.0 };
            line(
                table,
                "delta_freshness",
                if stale { "critical" } else { "ok" },
                age,
                "s",
                "{}",
            );
        }
    }
    out.flush().unwrap();
    n
}

fn main() {
    let dir = common::fresh_dir("replay-bench");
    let config = dir.join("vitals.toml");
    std::fs::write(&config, config_text()).unwrap();
    let input = dir.join("week.jsonl");
    let t = Instant::now();
    let n = write_week(&input);
    let size = std::fs::metadata(&input).unwrap().len();
    println!(
        "input: {n} observations, {:.0} MB, written in {:.1} s",
        size as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );

    // Baseline 1: read and parse every line, nothing else.
    let t = Instant::now();
    let mut parsed = 0u64;
    for line in BufReader::with_capacity(1 << 20, std::fs::File::open(&input).unwrap()).lines() {
        let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        parsed += u64::from(v.is_object());
    }
    let floor = t.elapsed().as_secs_f64();
    assert_eq!(parsed, n);

    // vitals replay, three runs (the median counts).
    let mut runs = Vec::new();
    let mut stdout = Vec::new();
    let mut summary = String::new();
    for _ in 0..3 {
        let t = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_vitals"))
            .args(["replay", "-c"])
            .arg(&config)
            .arg(&input)
            .output()
            .unwrap();
        runs.push(t.elapsed().as_secs_f64());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        if !stdout.is_empty() {
            assert_eq!(stdout, out.stdout, "replay is deterministic");
        }
        stdout = out.stdout;
        summary = String::from_utf8_lossy(&out.stderr).into_owned();
    }
    runs.sort_by(f64::total_cmp);
    let replay = runs[1];
    let events = stdout.iter().filter(|b| **b == b'\n').count();

    // Baseline 2: Python's json.loads of each line.
    let python = common::python();
    let py = python.exists().then(|| {
        let t = Instant::now();
        let ok = Command::new(&python)
            .args([
                "-c",
                "import json,sys\nn=0\nfor l in open(sys.argv[1]):\n    json.loads(l); n+=1\nprint(n)",
            ])
            .arg(&input)
            .output()
            .unwrap();
        assert!(ok.status.success());
        t.elapsed().as_secs_f64()
    });

    println!("\n{summary}");
    println!("| | time | per observation | ratio to the parse floor |");
    println!("|---|---|---|---|");
    let row = |name: &str, s: f64| {
        println!(
            "| {name} | {s:.2} s | {:.2} µs | {:.2}× |",
            s * 1e6 / n as f64,
            s / floor
        );
    };
    row("parse each line into serde_json::Value (floor)", floor);
    row("`vitals replay` (median of 3)", replay);
    if let Some(py) = py {
        row("Python json.loads of each line", py);
    }
    println!(
        "\nreplay runs: {:.2} / {:.2} / {:.2} s; {events} alert events; goal ≤ 10 s: {}",
        runs[0],
        runs[1],
        runs[2],
        if replay <= 10.0 { "met" } else { "NOT met" }
    );
}
