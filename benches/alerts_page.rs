//! The alerts page on an alerts table of 100,000 rows (50,000 episodes, written by
//! Python `deltalake` in 20 commits), through a real `vitals run`: a filtered query
//! (`/alerts?severity=CRITICAL&check=check07`) and the whole page. Goal: a filtered
//! query ≤ 200 ms. Baseline in the same run: Python `deltalake` → pandas reading the
//! same table and filtering the same way (./.venv, made by scripts/test.sh).
//!
//! `cargo bench --bench alerts_page`

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const WRITE: &str = r#"
import sys, os
from datetime import datetime, timedelta, timezone
import numpy as np, pandas as pd
from deltalake import write_deltalake
table = sys.argv[1]
now = datetime.now(timezone.utc)
for part in range(20):
    n = 2500
    i = np.arange(part * n, (part + 1) * n)
    started = pd.to_datetime([now - timedelta(minutes=int(k) % 40000) for k in i], utc=True).astype("datetime64[us, UTC]")
    ids = [f"rule{k % 7}.check{k % 20:02}.{k}" for k in i]
    base = {
        "alert_id": ids, "rule": [f"rule{k % 7}" for k in i], "check_id": [f"check{k % 20:02}" for k in i],
        "severity": [["CRITICAL", "WARNING", "INFO"][k % 3] for k in i], "message": [f"alert {k}" for k in i],
        "value": np.arange(n, dtype="float64"), "started_at": started, "host": "desk",
    }
    fired = pd.DataFrame({**base, "state": "firing", "event_at": started})
    resolved = pd.DataFrame({**base, "state": "resolved", "event_at": started + pd.Timedelta(minutes=3)})
    write_deltalake(table, pd.concat([fired, resolved]), mode="append")
sys.stdout.flush(); os._exit(0)
"#;

const READ: &str = r#"
import sys, os, time
from deltalake import DeltaTable
table = sys.argv[1]
times = []
for _ in range(5):
    t = time.perf_counter()
    df = DeltaTable(table).to_pandas(filters=[("severity", "=", "CRITICAL"), ("check_id", "=", "check07")])
    episodes = df.groupby("alert_id").agg(started=("started_at", "min"), ended=("event_at", "max"))
    times.append(time.perf_counter() - t)
times.sort()
print(times[2] * 1000, len(df))
sys.stdout.flush(); os._exit(0)
"#;

fn main() {
    let dir = common::fresh_dir("alerts-page-bench");
    let table = dir.join("alerts");
    common::run_python(WRITE, &[table.as_os_str()]);

    let port = common::free_port();
    let config = dir.join("vitals.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\nstate_dir = \"state\"\n\n[checks.cpu]\nkind = \"cpu\"\nwarn = 99\ncrit = 100\n\n\
             [sinks.alerts]\nkind = \"delta\"\ntable = \"alerts\"\n"
        ),
    )
    .unwrap();
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_vitals"))
        .args(["run", "-c"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::new();
    let get = |path: &str| {
        let url = format!("http://127.0.0.1:{port}{path}");
        rt.block_on(async { client.get(&url).send().await?.text().await })
    };
    for _ in 0..100 {
        if get("/healthz").is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let time = |path: &str| -> (f64, String) {
        let mut runs = Vec::new();
        let mut body = String::new();
        for _ in 0..7 {
            let t = Instant::now();
            body = get(path).unwrap();
            runs.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        runs.sort_by(f64::total_cmp);
        (runs[3], body)
    };
    let (filtered, body) = time("/alerts?severity=CRITICAL&check=check07");
    assert!(body.contains("check07"), "the page lists the check's alerts");
    let (whole, _) = time("/alerts");
    let _ = daemon.kill();
    let _ = daemon.wait();
    let out = common::run_python(READ, &[table.as_os_str()]);
    let py: f64 = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    println!("| 100,000 rows | median of 7 | ratio to Python |");
    println!("|---|---|---|");
    println!(
        "| `GET /alerts?severity=CRITICAL&check=check07` | {filtered:.1} ms | {:.2}× |",
        filtered / py
    );
    println!(
        "| `GET /alerts` (all 30 days, newest 1,000 shown) | {whole:.1} ms | {:.2}× |",
        whole / py
    );
    println!("| Python deltalake → pandas, same filter, episodes grouped | {py:.1} ms | 1.00× |");
    println!(
        "\ngoal ≤ 200 ms for a filtered query: {}",
        if filtered <= 200.0 { "met" } else { "NOT met" }
    );
}
