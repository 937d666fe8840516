//! The `delta` sink: the alerts table read back with Python `deltalake` into pandas in
//! the schema of docs/reference.md, and two writers at once (vitals and a Python process appending to
//! the same table) losing nothing.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use vitals::alert::{AlertEvent, AlertState, Severity};
use vitals::config::parse;
use vitals::dispatch::{Dispatcher, SinkInstance};
use vitals::registry::registry;

use crate::support::delta::try_read_table;
use crate::support::python;

fn script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/alerts_table.py")
}

fn event(n: usize, state: AlertState, value: Option<f64>) -> AlertEvent {
    let t = chrono::DateTime::from_timestamp_micros(1_795_800_000_123_456 + n as i64).unwrap();
    AlertEvent {
        alert_id: format!("data_stale.positions.{n}"),
        rule: "data_stale".into(),
        check_id: "positions".into(),
        severity: Severity::Warning,
        state,
        message: format!("positions stale ({n}s old)"),
        value,
        started_at: t,
        event_at: t,
        host: "desk".into(),
        reminder: false,
        label: None,
    }
}

fn delta_dispatcher(dir: &Path, table: &str, flush: &str) -> Dispatcher {
    let text =
        format!("[sinks.alerts]\nkind = \"delta\"\ntable = \"{table}\"\nflush_interval = \"{flush}\"\n");
    let config = parse(&dir.join("v.toml"), &text, registry().unwrap()).unwrap_or_else(|d| panic!("{d}"));
    Dispatcher::start(vec![SinkInstance::build(&config.sinks[0], dir)], dir)
}

async fn wait_rows(table: &Path, n: usize) -> Value {
    let mut last = String::from("no table yet");
    for _ in 0..400 {
        // While the table is being created, a reader can see a half-made folder.
        match try_read_table(table) {
            Ok(v) if v["rows"].as_array().unwrap().len() >= n => return v,
            Ok(v) => last = format!("{} rows", v["rows"].as_array().unwrap().len()),
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the table never had {n} rows (last: {last})");
}

#[tokio::test]
async fn rows_read_back_with_python_match_the_spec_schema() {
    let dir = tempfile::tempdir().unwrap();
    let d = delta_dispatcher(dir.path(), "alerts", "200ms");
    d.send(&event(1, AlertState::Firing, Some(75.5)));
    d.send(&event(1, AlertState::Acknowledged, None));
    d.send(&event(1, AlertState::Resolved, Some(3.0)));
    let table = dir.path().join("alerts");
    let v = wait_rows(&table, 3).await;
    let dtypes = &v["dtypes"];
    for col in [
        "alert_id", "rule", "check_id", "severity", "state", "message", "host",
    ] {
        assert!(
            matches!(dtypes[col].as_str(), Some("object" | "string" | "str")),
            "{col}: {dtypes}"
        );
    }
    assert_eq!(dtypes["value"], "float64");
    assert_eq!(dtypes["started_at"], "datetime64[us, UTC]");
    assert_eq!(dtypes["event_at"], "datetime64[us, UTC]");
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    let states: Vec<&str> = rows.iter().map(|r| r["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["firing", "acknowledged", "resolved"]);
    assert_eq!(rows[0]["value"], 75.5);
    assert_eq!(rows[1]["value"], Value::Null);
    assert_eq!(rows[0]["severity"], "WARNING");
    // Microseconds survive the round trip.
    let expected = event(1, AlertState::Firing, None)
        .event_at
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    assert_eq!(rows[0]["event_at"], expected.as_str());
    assert_eq!(v["version"], 1, "created, then one commit for the three events");
    d.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn vitals_and_a_python_writer_at_once_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("alerts");
    let d = delta_dispatcher(dir.path(), "alerts", "50ms");
    // Create the table first, so both writers append.
    d.send(&event(0, AlertState::Firing, Some(0.0)));
    wait_rows(&table, 1).await;
    let mut python = Command::new(python())
        .arg(script())
        .arg("append")
        .arg(&table)
        .arg("30")
        .spawn()
        .unwrap();
    for n in 1..=120 {
        d.send(&event(n, AlertState::Firing, Some(n as f64)));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(python.wait().unwrap().success());
    let v = wait_rows(&table, 151).await;
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 151, "every row of both writers, once");
    let mut ids: Vec<&str> = rows.iter().map(|r| r["alert_id"].as_str().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 151, "no duplicates");
    assert_eq!(rows.iter().filter(|r| r["host"] == "dashboard").count(), 30);
    d.shutdown(Duration::from_secs(5)).await;
}
