//! The health history table (`[history]`): written by a running daemon, one row per
//! check and bucket, read by Python `deltalake`/pandas while vitals writes it (dtypes,
//! the `date` partition, rows per check); the last bucket written at stop; and
//! `GET /api/history` agreeing with what Python computes from the same table.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;
use vitals::daemon::Daemon;
use vitals::registry::registry;

use crate::support::{python, write_config};

/// Python's view of the table: dtypes, partition columns, rows per check, and the rows
/// of `counter` as (bucket_start ms, value_last, value_max, samples).
fn python_view(table: &Path) -> Value {
    let script = r#"
import json, sys
from deltalake import DeltaTable
t = DeltaTable(sys.argv[1])
df = t.to_pandas()
rows = df[df.check_id == "counter"].sort_values("bucket_start")
print(json.dumps({
    "dtypes": {c: str(d) for c, d in df.dtypes.items()},
    "partitions": t.metadata().partition_columns,
    "per_check": {k: int(v) for k, v in df.groupby("check_id").size().items()},
    "counter": [[int(r.bucket_start.timestamp() * 1000), r.value_last, r.value_max, int(r.samples)] for r in rows.itertuples()],
    "dates": sorted(set(df.date)),
    "sync": {k: sorted(set(v.dropna())) for k, v in df.groupby("check_id")["sync"]},
}))
import os; sys.stdout.flush(); os._exit(0)
"#;
    let out = Command::new(python())
        .arg("-c")
        .arg(script)
        .arg(table)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_is_a_delta_table_python_reads_and_the_api_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let counter = dir.path().join("n");
    std::fs::write(&counter, "0").unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "[history]\nresolution = \"1s\"\n\n\
             [checks.counter]\nkind = \"command\"\ninterval = \"200ms\"\n\
             command = [\"/bin/sh\", \"-c\", \"n=$(cat {f}); echo $((n+1)) > {f}; echo \\\"OK - n=$n | n=$n\\\"\"]\n\n\
             [checks.memory]\nkind = \"memory\"\ninterval = \"500ms\"\nwarn = 99\ncrit = 100\n\n\
             [checks.positions]\nkind = \"delta_freshness\"\ntable = \"positions\"\ninterval = \"500ms\"\n\
             warn = \"1h\"\ncrit = \"2h\"\ntimeout = \"20s\"\n",
            f = counter.display()
        ),
    );
    // A table its writer has just committed to: sync `running`.
    crate::support::delta::make(&[dir.path().join("positions").to_str().unwrap(), "tz", "5"]);
    let daemon = Daemon::start(&config, registry().unwrap()).await.expect("valid");
    let router = vitals::web::router(daemon.web_with_token(None));
    let table = dir.path().join("state/history");
    // Buckets close a second after they end (+2 s to settle): wait for three.
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if table.join("_delta_log/00000000000000000003.json").exists() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("three commits of history");

    // Python reads it while vitals writes.
    let live = python_view(&table);
    assert_eq!(live["partitions"], serde_json::json!(["date"]));
    let dtypes = &live["dtypes"];
    for (column, dtype) in [
        // pandas 3's string dtype.
        ("check_id", "str"),
        ("kind", "str"),
        ("status", "str"),
        ("unit", "str"),
        ("date", "str"),
        ("value_last", "float64"),
        ("value_min", "float64"),
        ("value_max", "float64"),
        ("samples", "int64"),
        ("bucket_start", "datetime64[us, UTC]"),
        ("sync", "str"),
    ] {
        assert_eq!(dtypes[column], dtype, "{column}: {dtypes}");
    }
    assert!(live["per_check"]["counter"].as_i64().unwrap() >= 2, "{live}");
    assert!(live["per_check"]["memory"].as_i64().unwrap() >= 2, "{live}");
    // A writer's sync status is kept per bucket; checks without one leave it null.
    assert_eq!(
        live["sync"]["positions"],
        serde_json::json!(["running"]),
        "{live}"
    );
    assert_eq!(live["sync"]["memory"], serde_json::json!([]), "{live}");
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert!(
        live["dates"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d == today.as_str()),
        "{live}"
    );

    // Stop: the bucket in progress is written too.
    let before = live["per_check"]["counter"].as_i64().unwrap();
    let runs_at_stop: i64 = std::fs::read_to_string(&counter).unwrap().trim().parse().unwrap();
    daemon.shutdown().await;
    let after = python_view(&table);
    let rows = after["counter"].as_array().unwrap();
    assert!(
        rows.len() as i64 > before,
        "the last buckets were written at stop"
    );
    let samples: i64 = rows.iter().map(|r| r[3].as_i64().unwrap()).sum();
    let runs: i64 = std::fs::read_to_string(&counter).unwrap().trim().parse().unwrap();
    assert!(
        samples >= runs_at_stop.min(runs) - 1 && samples <= runs,
        "every run is a sample: {samples} of {runs}"
    );
    // In each bucket the counter only grows: last == max.
    for r in rows {
        assert_eq!(r[1], r[2], "{r}");
    }

    // The API, at the table's resolution, agrees with Python on every bucket.
    let first = rows[0][0].as_i64().unwrap();
    let last = rows[rows.len() - 1][0].as_i64().unwrap();
    let at = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let uri = format!("/api/history?check=counter&from={}&to={}", at(first), at(last));
    let response = router
        .clone()
        .oneshot(
            Request::get(uri.replace('+', "%2B"))
                .header("host", "127.0.0.1")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value =
        serde_json::from_slice(&axum::body::to_bytes(response.into_body(), 1 << 22).await.unwrap()).unwrap();
    assert_eq!(body["step_s"], 1.0);
    let points: Vec<(i64, f64, i64)> = body["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let t = chrono::DateTime::parse_from_rfc3339(p["t"].as_str().unwrap()).unwrap();
            (
                t.timestamp_millis(),
                p["value_last"].as_f64().unwrap(),
                p["samples"].as_i64().unwrap(),
            )
        })
        .collect();
    let expected: Vec<(i64, f64, i64)> = rows
        .iter()
        .map(|r| {
            (
                r[0].as_i64().unwrap(),
                r[1].as_f64().unwrap(),
                r[3].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(points, expected);
    let uri = format!("/api/history?check=positions&from={}&to={}", at(first), at(last));
    let response = router
        .clone()
        .oneshot(
            Request::get(uri.replace('+', "%2B"))
                .header("host", "127.0.0.1")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let body: Value =
        serde_json::from_slice(&axum::body::to_bytes(response.into_body(), 1 << 22).await.unwrap()).unwrap();
    let syncs: Vec<&Value> = body["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["sync"])
        .collect();
    assert!(
        !syncs.is_empty() && syncs.iter().all(|s| *s == "running"),
        "{body}"
    );

    // A restart keeps the picture: the board's last hour comes back from the table.
    let restarted_at = chrono::Utc::now();
    let again = Daemon::start(&config, registry().unwrap()).await.expect("valid");
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if again
                .board()
                .history("counter")
                .iter()
                .any(|s| s.at < restarted_at)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the last hour reloaded into the board");
    let before_restart: Vec<f64> = again
        .board()
        .history("counter")
        .iter()
        .filter(|s| s.at < restarted_at)
        .filter_map(|s| s.value)
        .collect();
    assert!(!before_restart.is_empty());
    assert!(
        before_restart.windows(2).all(|w| w[0] <= w[1]),
        "in time order: {before_restart:?}"
    );
    again.shutdown().await;
}

#[test]
fn a_bad_history_section_is_refused_at_its_keys() {
    let e = vitals::config::parse(
        "v.toml".as_ref(),
        "[history]\nresolution = \"500ms\"\nretention = \"0s\"\n",
        registry().unwrap(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("v.toml:2:14: [history] key `resolution`: must be at least 1s"),
        "{e}"
    );
    assert!(
        e.contains("[history] key `retention`: must be longer than the resolution"),
        "{e}"
    );
}

/// Writes a history table the way vitals does, from Python: `days_ago` → commits, each
/// commit 10 rows of `cpu` in that day's partition.
pub(crate) const WRITE_OLD_DAYS: &str = r#"
import sys, os, json
from datetime import datetime, timedelta, timezone
import pandas as pd
from deltalake import write_deltalake
table, plan = sys.argv[1], json.loads(sys.argv[2])
now = datetime.now(timezone.utc).replace(hour=12, minute=0, second=0, microsecond=0)
for days_ago, commits in plan:
    day = now - timedelta(days=days_ago)
    for c in range(commits):
        starts = [day + timedelta(minutes=10 * c + i) for i in range(10)]
        df = pd.DataFrame({
            "check_id": ["cpu"] * 10, "kind": ["cpu"] * 10,
            "bucket_start": pd.to_datetime(starts, utc=True).astype("datetime64[us, UTC]"),
            "status": ["ok"] * 10, "value_last": [1.0] * 10, "value_min": [0.5] * 10,
            "value_max": [2.0] * 10, "unit": ["%"] * 10, "samples": pd.Series([12] * 10, dtype="int64"),
            "date": [day.strftime("%Y-%m-%d")] * 10,
        })
        write_deltalake(table, df, mode="append", partition_by=["date"])
sys.stdout.flush(); os._exit(0)
"#;

/// Reads the table in a loop until `stop` exists: the errors it met, and the row counts
/// per day it saw.
const READ_IN_A_LOOP: &str = r#"
import sys, os, json
from deltalake import DeltaTable
table, stop = sys.argv[1], sys.argv[2]
errors, seen, reads = [], {}, 0
while not os.path.exists(stop) or reads == 0:
    try:
        df = DeltaTable(table).to_pandas()
        reads += 1
        for day, n in df.groupby("date").size().items():
            seen.setdefault(day, set()).add(int(n))
    except Exception as e:
        errors.append(str(e))
print(json.dumps({"errors": errors, "reads": reads, "seen": {k: sorted(v) for k, v in seen.items()}}))
sys.stdout.flush(); os._exit(0)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_drops_old_days_and_compaction_leaves_one_file_a_day_while_python_reads() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("history");
    let out = Command::new(python())
        .arg("-c")
        .arg(WRITE_OLD_DAYS)
        .arg(&table)
        .arg("[[40, 2], [2, 3], [1, 1]]")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let day = |ago: i64| {
        (chrono::Utc::now() - chrono::Duration::days(ago))
            .format("%Y-%m-%d")
            .to_string()
    };
    let files_of = |d: &str| {
        std::fs::read_dir(table.join(format!("date={d}")))
            .map(|e| {
                e.filter_map(Result::ok)
                    .filter(|f| f.path().extension().is_some_and(|x| x == "parquet"))
                    .count()
            })
            .unwrap_or(0)
    };
    assert_eq!(files_of(&day(2)), 3);

    // A reader runs all along.
    let stop = dir.path().join("stop");
    let reader = Command::new(python())
        .arg("-c")
        .arg(READ_IN_A_LOOP)
        .arg(&table)
        .arg(&stop)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let config = write_config(
        dir.path(),
        "[history]\ntable = \"history\"\nresolution = \"1s\"\nretention = \"30d\"\n\n[checks.memory]\nkind = \"memory\"\ninterval = \"200ms\"\nwarn = 99\ncrit = 100\n",
    );
    let daemon = Daemon::start(&config, registry().unwrap()).await.expect("valid");
    // Upkeep runs at start: wait for the compaction commit.
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let log = std::fs::read_dir(table.join("_delta_log")).unwrap();
            let commits: Vec<String> = log
                .filter_map(Result::ok)
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .collect();
            let optimized = commits.iter().any(|t| t.contains("\"operation\":\"OPTIMIZE\""));
            // Python wrote 6 commits; more are vitals' buckets.
            let writes = commits
                .iter()
                .filter(|t| t.contains("\"operation\":\"WRITE\""))
                .count();
            if optimized && writes > 6 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("a compaction commit and a bucket of vitals");
    daemon.shutdown().await;
    std::fs::write(&stop, "").unwrap();
    let read: Value = serde_json::from_slice(&reader.wait_with_output().unwrap().stdout).unwrap();
    assert_eq!(read["errors"], serde_json::json!([]), "{read}");
    // The compacted day always had its 30 rows, before and after.
    assert_eq!(read["seen"][day(2)], serde_json::json!([30]), "{read}");

    let now = python_view_days(&table);
    assert!(
        !now.contains_key(&day(40)),
        "the day beyond retention is gone: {now:?}"
    );
    assert_eq!(now[&day(2)], 30);
    assert_eq!(now[&day(1)], 10);
    // A table from before the `sync` column is still written to, without it.
    assert!(
        now.get(&day(0)).is_some_and(|n| *n > 0),
        "vitals appended to the older table: {now:?}"
    );
    // The compaction wrote one new file for the day; the three old ones stay on disk
    // (removed from the table) until vacuumed an hour later.
    let log = std::fs::read_to_string(
        std::fs::read_dir(table.join("_delta_log"))
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains("\"operation\":\"OPTIMIZE\"")))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(log.matches("\"add\"").count(), 1, "one file for the day");
    assert_eq!(log.matches("\"remove\"").count(), 3);
}

/// Rows per day, from Python.
fn python_view_days(table: &Path) -> std::collections::HashMap<String, i64> {
    let script = "import json, sys, os\nfrom deltalake import DeltaTable\ndf = DeltaTable(sys.argv[1]).to_pandas()\n\
                  print(json.dumps({k: int(v) for k, v in df.groupby('date').size().items()}))\nsys.stdout.flush(); os._exit(0)\n";
    let out = Command::new(python())
        .arg("-c")
        .arg(script)
        .arg(table)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}
