//! Reading the history table: one check's week at one-minute resolution (10,080
//! points) from a table of 20 checks × 7 days (201,600 rows, one file a day, as after
//! compaction), through the reader behind `GET /api/history`. Goal: ≤ 50 ms. Baseline
//! in the same run: Python `deltalake` → pandas reading the same range and check
//! (./.venv, made by scripts/test.sh).
//!
//! `cargo bench --bench history`

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WRITE: &str = r#"
import sys, os
from datetime import datetime, timedelta, timezone
import numpy as np, pandas as pd
from deltalake import write_deltalake
table = sys.argv[1]
start = datetime(2026, 11, 23, tzinfo=timezone.utc)
for day in range(7):
    t0 = start + timedelta(days=day)
    minutes = pd.date_range(t0, periods=1440, freq="min", tz="UTC").astype("datetime64[us, UTC]")
    frames = []
    for c in range(20):
        v = np.random.default_rng(c * 7 + day).uniform(0, 100, 1440)
        frames.append(pd.DataFrame({
            "check_id": f"check{c:02}", "kind": "cpu", "bucket_start": minutes, "status": "ok",
            "value_last": v, "value_min": v - 1, "value_max": v + 1, "unit": "%",
            "samples": np.full(1440, 12, dtype="int64"), "date": t0.strftime("%Y-%m-%d"),
        }))
    write_deltalake(table, pd.concat(frames), mode="append", partition_by=["date"])
sys.stdout.flush(); os._exit(0)
"#;

const READ: &str = r#"
import sys, os, time
from datetime import datetime, timezone
from deltalake import DeltaTable
table = sys.argv[1]
times = []
for _ in range(5):
    t = time.perf_counter()
    df = DeltaTable(table).to_pandas(
        partitions=[("date", ">=", "2026-11-23"), ("date", "<=", "2026-11-29")],
        filters=[("check_id", "=", "check07")],
    )
    df = df.sort_values("bucket_start")
    times.append(time.perf_counter() - t)
    assert len(df) == 10080, len(df)
times.sort()
print(times[2] * 1000)
sys.stdout.flush(); os._exit(0)
"#;

fn main() {
    let dir = common::fresh_dir("history-bench");
    let table = dir.join("history");
    common::run_python(WRITE, &[table.as_os_str()]);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let history = vitals::history::HistoryTable {
        table: vitals::delta::TableRef::local(&table),
        resolution: Duration::from_secs(60),
        retention: Duration::from_secs(30 * 86400),
        pending: Arc::new(Mutex::new(vitals::history::Rollup::new(Duration::from_secs(60)))),
    };
    let from = chrono::DateTime::parse_from_rfc3339("2026-11-23T00:00:00Z")
        .unwrap()
        .to_utc();
    let to = chrono::DateTime::parse_from_rfc3339("2026-11-29T23:59:00Z")
        .unwrap()
        .to_utc();
    let mut runs = Vec::new();
    for _ in 0..7 {
        let t = Instant::now();
        let points = rt
            .block_on(vitals::history::query(
                &history,
                "check07",
                from,
                to,
                Duration::from_secs(60),
            ))
            .unwrap();
        runs.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(points.len(), 10_080);
    }
    runs.sort_by(f64::total_cmp);
    let ours = runs[3];
    let out = common::run_python(READ, &[table.as_os_str()]);
    let py: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    println!("| | median | ratio |");
    println!("|---|---|---|");
    println!(
        "| vitals `history::query`, one check, 7 days at 1 min (10,080 points) | {ours:.1} ms | 1.00× |"
    );
    println!(
        "| Python deltalake → pandas, same range and check (partition + row filter) | {py:.1} ms | {:.2}× |",
        py / ours
    );
    println!(
        "\nvitals runs (ms): {}; goal ≤ 50 ms: {}",
        runs.iter()
            .map(|r| format!("{r:.1}"))
            .collect::<Vec<_>>()
            .join(" / "),
        if ours <= 50.0 { "met" } else { "NOT met" }
    );
}
