//! `vitals replay` and `vitals test`: a recorded Thanksgiving week replayed through a
//! config with market hours, maintenance and depends_on; determinism; bad input; the
//! shipped config's rule tests.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, Duration, TimeZone, Timelike, Utc, Weekday};
use chrono_tz::America::New_York;
use serde_json::{Value, json};

use crate::support::{vitals, write_config};

const CONFIG: &str = r#"
[server]
state_dir = "state"

[checks.ib]
kind = "ib_connection"
client_id = 90

[checks.positions]
kind = "delta_freshness"
table = "tables/positions"
depends_on = ["ib"]
market_hours = "nyse"
market_grace = "5m"

[checks.greeks]
kind = "delta_freshness"
table = "tables/greeks"
depends_on = ["ib"]
market_hours = "nyse"
market_grace = "5m"

[[rules]]
name = "ib_disconnected"
kinds = ["ib_connection"]
when = "status == 'critical'"
for = "3s"
severity = "CRITICAL"
message = "IB {label}: {message}"
maintenance = [{ start = "45 23 * * *", duration = "30m", timezone = "America/New_York", reason = "IB Gateway nightly restart" }]

[[rules]]
name = "data_stale"
kinds = ["delta_freshness"]
when = "value > 60"
severity = "WARNING"
message = "{check} stale ({value}s old)"

[sinks.audit]
kind = "log"
path = "state/alerts.jsonl"
"#;

fn ny(d: u32, h: u32, m: u32) -> DateTime<Utc> {
    New_York
        .with_ymd_and_hms(2026, 11, d, h, m, 0)
        .unwrap()
        .with_timezone(&Utc)
}

/// When the market data flows in Thanksgiving week 2026 (written out by hand, not from
/// vitals' calendar): 09:32 (two minutes to catch up after the open) to the close,
/// Monday to Wednesday and Friday (early close 13:00); Thanksgiving and the weekend
/// closed.
fn flowing(t: DateTime<Utc>) -> bool {
    let l = t.with_timezone(&New_York);
    let minutes = l.hour() * 60 + l.minute();
    let close = match (l.day(), l.weekday()) {
        (26, _) | (_, Weekday::Sat | Weekday::Sun) => return false,
        (27, _) => 13 * 60,
        _ => 16 * 60,
    };
    (9 * 60 + 32..close).contains(&minutes)
}

fn obs(id: &str, kind: &str, status: &str, value: f64, t: DateTime<Utc>) -> Value {
    json!({
        "id": id, "kind": kind, "status": status, "label": null, "value": value, "unit": "s",
        "message": format!("{id}: {value}"), "observed_at": t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "duration_ms": 1.0, "details": {}
    })
}

/// A week of observations every 30 s, with these real faults:
/// - Tuesday 14:00–14:20: IB is down during the session, and both tables go stale
///   with it (held back by depends_on: one page, for IB);
/// - Wednesday 15:00–15:10: positions stale on a normal afternoon (one page);
///
/// and these non-faults: every night and weekend the tables stop; Thanksgiving; the
/// early close on Friday; the IB Gateway's nightly restart (23:46–23:52).
fn thanksgiving_week() -> String {
    let mut out = String::new();
    let (start, end) = (ny(23, 0, 0), ny(30, 0, 0));
    let mut last_update = [ny(20, 16, 0); 2];
    let mut t = start;
    while t < end {
        let l = t.with_timezone(&New_York);
        let minutes = l.hour() * 60 + l.minute();
        let outage = t >= ny(24, 14, 0) && t < ny(24, 14, 20);
        let restart = (23 * 60 + 46..23 * 60 + 52).contains(&minutes);
        let ib_down = outage || restart;
        let ib = if ib_down { "critical" } else { "ok" };
        out.push_str(&obs("ib", "ib_connection", ib, 0.0, t).to_string());
        out.push('\n');
        for (i, table) in ["positions", "greeks"].into_iter().enumerate() {
            let writer_hung = table == "positions" && t >= ny(25, 15, 0) && t < ny(25, 15, 10);
            if flowing(t) && !ib_down && !writer_hung {
                last_update[i] = t - Duration::seconds(5);
            }
            let age = (t - last_update[i]).num_seconds() as f64;
            let status = if age > 60.0 { "warning" } else { "ok" };
            out.push_str(&obs(table, "delta_freshness", status, age, t).to_string());
            out.push('\n');
        }
        t += Duration::seconds(30);
    }
    out
}

fn setup(dir: &Path) -> (PathBuf, PathBuf) {
    let config = write_config(dir, CONFIG);
    let input = dir.join("week.jsonl");
    std::fs::write(&input, thanksgiving_week()).unwrap();
    (config, input)
}

fn replay(config: &Path, input: &Path) -> std::process::Output {
    vitals()
        .args(["replay", "-c"])
        .arg(config)
        .arg(input)
        .output()
        .unwrap()
}

#[test]
fn a_thanksgiving_week_pages_for_the_real_faults_only() {
    let dir = tempfile::tempdir().unwrap();
    let (config, input) = setup(dir.path());
    let out = replay(&config, &input);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let events: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let got: Vec<(String, String, String, String)> = events
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap().to_owned();
            (s("rule"), s("check_id"), s("state"), s("event_at"))
        })
        .collect();
    let at = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    assert_eq!(
        got,
        [
            // `for = "3s"` elapses between two observations: it fires at 14:00:03.
            (
                "ib_disconnected",
                "ib",
                "firing",
                at(ny(24, 14, 0) + Duration::seconds(3))
            ),
            ("ib_disconnected", "ib", "resolved", at(ny(24, 14, 20))),
            (
                "data_stale",
                "positions",
                "firing",
                at(ny(25, 15, 0) + Duration::seconds(30))
            ),
            ("data_stale", "positions", "resolved", at(ny(25, 15, 10))),
        ]
        .map(|(a, b, c, d)| (a.to_owned(), b.to_owned(), c.to_owned(), d)),
        "{stderr}"
    );
    // The alerts table's columns plus `reminder`, and nothing else.
    let keys: Vec<&str> = events[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "alert_id",
            "rule",
            "check_id",
            "severity",
            "state",
            "message",
            "value",
            "started_at",
            "event_at",
            "reminder"
        ]
    );
    assert_eq!(events[2]["message"], "positions stale (65s old)");
    // The summary names every cause that held something back.
    for cause in [
        "market closed: Thanksgiving Day",
        "market closed: early close 13:00",
        "market closed: weekend",
        "market closed: after the close 16:00",
        "market opening: grace until 09:35",
        "in maintenance: IB Gateway nightly restart",
        "ib is critical",
    ] {
        assert!(stderr.contains(cause), "{cause} in\n{stderr}");
    }
    assert!(
        stderr.contains("pages per rule: data_stale 1, ib_disconnected 1"),
        "{stderr}"
    );
    // Nothing was touched: no state directory, no alert log.
    assert!(!dir.path().join("state").exists());
}

#[test]
fn replay_is_deterministic_and_leaves_no_trace() {
    let dir = tempfile::tempdir().unwrap();
    let (config, input) = setup(dir.path());
    let a = replay(&config, &input);
    let b = replay(&config, &input);
    assert!(a.status.success());
    assert!(!a.stdout.is_empty());
    assert_eq!(a.stdout, b.stdout, "the same input gives the same bytes");
    // From standard input too.
    let mut child = vitals()
        .args(["replay", "-c"])
        .arg(&config)
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let text = std::fs::read(&input).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || stdin.write_all(&text));
    let c = child.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    assert_eq!(a.stdout, c.stdout);
}

#[test]
fn bad_input_is_refused_with_its_line_number() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), CONFIG);
    let good = obs("ib", "ib_connection", "ok", 0.0, ny(24, 10, 0)).to_string();
    let earlier = obs("ib", "ib_connection", "ok", 0.0, ny(24, 9, 0)).to_string();
    let cases = [
        (
            format!(
                "{good}\n{}\n",
                obs("postions", "delta_freshness", "ok", 1.0, ny(24, 10, 1))
            ),
            "line 2: `postions` is not a check of this config (did you mean `positions`?)",
        ),
        (
            format!("{good}\n\n{earlier}\n"),
            "line 3: observed_at 2026-11-24T14:00:00.000Z is before",
        ),
        (
            format!("{good}\n{{\"id\": \"ib\"\n"),
            "line 2: not an observation",
        ),
        (
            format!("{}\n", obs("ib", "delta_freshness", "ok", 1.0, ny(24, 10, 1))),
            "line 1: `ib` is a `ib_connection` check in the config, not `delta_freshness`",
        ),
    ];
    for (text, expected) in cases {
        let input = dir.path().join("bad.jsonl");
        std::fs::write(&input, text).unwrap();
        let out = replay(&config, &input);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(65), "{stderr}");
        assert!(stderr.contains(expected), "{expected:?} in {stderr}");
    }
}

#[test]
fn an_unknown_calendar_is_refused_with_the_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    let text = CONFIG.replacen("market_hours = \"nyse\"", "market_hours = \"nyes\"", 1)
        + "\n[calendars.lse]\ntimezone = \"Europe/London\"\nopen = \"08:00\"\nclose = \"16:30\"\n";
    let config = write_config(dir.path(), &text);
    let out = vitals().args(["validate", "-c"]).arg(&config).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78));
    assert!(
        stderr.contains(
            "[checks.positions] key `market_hours`: `nyes` is not a known calendar (did you mean `nyse`?); the known ones are lse, nyse, nyse_extended"
        ),
        "{stderr}"
    );
    // A bad calendar is placed at its key.
    let text = CONFIG.to_owned()
        + "\n[calendars.lse]\ntimezone = \"Europe/London\"\nopen = \"8h\"\nclose = \"16:30\"\n";
    let config = write_config(dir.path(), &text);
    let out = vitals().args(["validate", "-c"]).arg(&config).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("[calendars.lse] key `open`: `8h` is not a time of day: write e.g. \"09:30\""),
        "{stderr}"
    );
}

#[test]
fn rule_tests_pass_and_a_wrong_expectation_shows_a_diff() {
    // The shipped config's own rule tests.
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/vitals.test.toml");
    let out = vitals().arg("test").arg(&shipped).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(" 0 failed"), "{stdout}");
    // A wrong expectation fails with the difference.
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), CONFIG);
    let test = dir.path().join("rules.test.toml");
    std::fs::write(
        &test,
        r#"
config = "vitals.toml"

# The example of docs/market-hours.md.
[[tests]]
name = "stale positions page once the grace is over"
start = "2026-11-27T09:30:00-05:00"
interval = "30s"
until = "30m"
series = [
  { check = "ib", statuses = "okx60" },
  { check = "positions", values = "500x30 3x30" },
]
expect = [
  { at = "5m", rule = "data_stale", check = "positions", state = "firing" },
  { at = "15m", rule = "data_stale", check = "positions", state = "resolved" },
]

[[tests]]
name = "stale during the session pages"
start = "2026-11-25T15:00:00-05:00"
interval = "30s"
series = [
  { check = "ib", statuses = "okx10" },
  { check = "positions", values = "5 35 65 95 125 5x5" },
]
expect = [
  { at = "1m", rule = "data_stale", check = "positions", state = "firing" },
  { at = "2m", rule = "data_stale", check = "positions", state = "resolved" },
]
"#,
    )
    .unwrap();
    let out = vitals().arg("test").arg(&test).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAIL"), "{stdout}");
    assert!(
        stdout.contains("expected, not got: +2m       resolved  data_stale on positions"),
        "{stdout}"
    );
    assert!(
        stdout.contains("got, not expected: +2m30s    resolved  data_stale on positions"),
        "{stdout}"
    );
    assert!(!stdout.contains("firing "), "the firing at 1m matched: {stdout}");
    assert!(
        stdout.contains("ok    ") && stdout.contains("stale positions page once the grace is over"),
        "{stdout}"
    );
    assert!(stdout.contains("1 passed, 1 failed"), "{stdout}");
}

#[test]
fn a_debug_log_is_a_recording_replay_reads() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("down");
    let text = format!(
        "[checks.gateway]\nkind = \"command\"\ninterval = \"100ms\"\n\
         command = [\"/bin/sh\", \"-c\", \"if [ -e {f} ]; then echo 'CRITICAL - down'; exit 2; fi; echo 'OK - up'\"]\n\n\
         [[rules]]\nname = \"gateway_down\"\nchecks = [\"gateway\"]\nwhen = \"status == 'critical'\"\nseverity = \"CRITICAL\"\n",
        f = flag.display()
    );
    let config = write_config(dir.path(), &text);
    let daemon = crate::support::Daemonized::spawn_with_env(
        &config,
        &[
            ("VITALS_LOG", "info,vitals::daemon=debug"),
            ("VITALS_LOG_FORMAT", "json"),
        ],
    );
    daemon.expect("OK - up");
    std::fs::write(&flag, "").unwrap();
    daemon.expect("ALERT firing");
    std::fs::remove_file(&flag).unwrap();
    daemon.expect("ALERT resolved");
    // The observation that resolved it is logged by another task: wait for an OK line
    // logged after the resolve.
    daemon.expect("OK - up");
    let log = daemon.log();
    drop(daemon);
    // What docs/market-hours.md says to do with the log (with jq there): keep the
    // `observation` field of each line.
    let recording: String = log
        .iter()
        .filter_map(|l| {
            let v: Value = serde_json::from_str(l).ok()?;
            Some(v["fields"]["observation"].as_str()?.to_owned() + "\n")
        })
        .collect();
    let input = dir.path().join("recorded.jsonl");
    std::fs::write(&input, &recording).unwrap();
    let out = replay(&config, &input);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let states: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["state"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        states,
        ["firing", "resolved"],
        "the recording replays the live episode"
    );
}

/// `vitals replay --history`: the history table's buckets as observations.
#[test]
fn the_history_table_replays_as_observations() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), CONFIG);
    let table = dir.path().join("history");
    // IB ok for 3 minutes, critical for 4, ok again (one bucket a minute), from 14:00
    // New York on a Tuesday: in the session, out of the nightly restart.
    let script = r#"
import sys, os
import pandas as pd
from deltalake import write_deltalake
starts = pd.date_range("2026-11-24T19:00:00Z", periods=10, freq="min").astype("datetime64[us, UTC]")
status = ["ok"] * 3 + ["critical"] * 4 + ["ok"] * 3
df = pd.DataFrame({"check_id": "ib", "kind": "ib_connection", "bucket_start": starts, "status": status,
    "value_last": 12.0, "value_min": 10.0, "value_max": 14.0, "unit": "ms",
    "samples": pd.Series([12] * 10, dtype="int64"), "date": "2026-11-24"})
write_deltalake(sys.argv[1], df, partition_by=["date"])
sys.stdout.flush(); os._exit(0)
"#;
    let out = std::process::Command::new(crate::support::python())
        .arg("-c")
        .arg(script)
        .arg(&table)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = vitals()
        .args(["replay", "-c"])
        .arg(&config)
        .arg("--history")
        .arg(&table)
        .args(["--from", "2026-11-24T00:00:00Z", "--to", "2026-11-25T00:00:00Z"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("replayed 10 observations"), "{stderr}");
    let events: Vec<(String, String)> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let e: Value = serde_json::from_str(l).unwrap();
            (
                e["state"].as_str().unwrap().to_owned(),
                e["event_at"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        events,
        [
            ("firing".to_owned(), "2026-11-24T19:03:03.000Z".to_owned()),
            ("resolved".to_owned(), "2026-11-24T19:07:00.000Z".to_owned()),
        ]
    );
}
