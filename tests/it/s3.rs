//! Delta tables on S3-compatible storage (the `s3` feature), against a local S3 server
//! (`moto[server]` from PyPI, in ./.venv) on a free loopback port, with the tables
//! written by Python `deltalake` into the same bucket: the freshness, slots and queue
//! checks read them; an endpoint that accepts and never answers is critical before the
//! check's timeout; two daemons appending to one alerts table lose no row.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::Value;

use crate::support::{Daemonized, free_port, python, vitals, write_config};

/// A moto S3 server, stopped when dropped.
struct S3 {
    child: Child,
    endpoint: String,
}

impl S3 {
    fn start() -> S3 {
        let port = free_port();
        let server = python().with_file_name("moto_server");
        let child = Command::new(&server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "{} (moto[server], installed by scripts/test.sh): {e}",
                    server.display()
                )
            });
        let s3 = S3 {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return s3;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("moto did not listen on {port}");
    }

    /// The options Python `deltalake` writes with (credentials included: it is a test
    /// server).
    fn python_options(&self) -> String {
        serde_json::json!({
            "AWS_ENDPOINT_URL": self.endpoint, "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
        })
        .to_string()
    }

    /// The `storage_options` of a vitals table (credentials come from the environment).
    fn vitals_options(&self) -> String {
        format!(
            "{{ AWS_ENDPOINT_URL = \"{}\", AWS_REGION = \"us-east-1\", AWS_ALLOW_HTTP = \"true\" }}",
            self.endpoint
        )
    }

    /// Runs tests/support/make_table.py against this server.
    fn make(&self, args: &[&str]) -> String {
        let out = Command::new(python())
            .arg(crate::support::delta::make_script())
            .args(args)
            .env("DELTA_STORAGE_OPTIONS", self.python_options())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const CREDENTIALS: [(&str, &str); 2] = [("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test")];

fn check_json(config: &Path) -> (Option<i32>, Value, String) {
    let out = vitals()
        .args(["check", "--format", "json", "-c"])
        .arg(config)
        .envs(CREDENTIALS)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    (out.status.code(), v, stderr)
}

#[test]
fn the_delta_checks_read_tables_python_wrote_to_s3() {
    let s3 = S3::start();
    s3.make(&["bucket", "desk"]);
    s3.make(&["s3://desk/positions", "tz", "5"]);
    s3.make(&["registry", "s3://desk/strategy_registry", "12", "3"]);
    s3.make(&["queue", "s3://desk/position_queue", "4", "6", "30"]);
    let dir = tempfile::tempdir().unwrap();
    let o = s3.vitals_options();
    let config = write_config(
        dir.path(),
        &format!(
            "[defaults]\ntimeout = \"10s\"\n\n\
             [checks.positions]\nkind = \"delta_freshness\"\ntable = \"s3://desk/positions\"\ncolumn = \"synced_at\"\nwarn = \"1m\"\ncrit = \"2m\"\nstorage_options = {o}\n\n\
             [checks.slots]\nkind = \"strategy_slots\"\ntable = \"s3://desk/strategy_registry\"\nfilter_column = \"status\"\nfilter_value = \"ACTIVE\"\nstorage_options = {o}\n\n\
             [checks.queue]\nkind = \"queue_backlog\"\ntable = \"s3://desk/position_queue\"\nstorage_options = {o}\n\n\
             [checks.gone]\nkind = \"delta_freshness\"\ntable = \"s3://desk/nothing_here\"\nstorage_options = {o}\n"
        ),
    );
    let (_, v, stderr) = check_json(&config);
    let by_id = |id: &str| {
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap_or_else(|| panic!("{id}: {stderr}"))
            .clone()
    };
    let positions = by_id("positions");
    assert_eq!(positions["status"], "ok", "{positions}");
    assert!(positions["value"].as_f64().unwrap() < 60.0, "{positions}");
    assert_eq!(by_id("slots")["value"], 12.0, "{}", by_id("slots"));
    assert_eq!(by_id("queue")["value"], 4.0, "{}", by_id("queue"));
    let gone = by_id("gone");
    assert_eq!(gone["status"], "critical", "a missing table is critical: {gone}");
}

#[test]
fn an_endpoint_that_never_answers_is_critical_before_the_timeout() {
    // Accepts connections, never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = std::thread::spawn(move || {
        let mut open = Vec::new();
        for s in listener.incoming().take(8).flatten() {
            open.push(s);
        }
        std::thread::sleep(Duration::from_secs(10));
        drop(open);
    });
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "[checks.positions]\nkind = \"delta_freshness\"\ntable = \"s3://desk/positions\"\ntimeout = \"2s\"\n\
             storage_options = {{ AWS_ENDPOINT_URL = \"http://127.0.0.1:{port}\", AWS_REGION = \"us-east-1\", AWS_ALLOW_HTTP = \"true\" }}\n"
        ),
    );
    let started = std::time::Instant::now();
    let (code, v, _) = check_json(&config);
    let took = started.elapsed();
    let c = &v["checks"][0];
    assert_eq!(code, Some(2), "{c}");
    assert_eq!(c["status"], "critical", "{c}");
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .contains("no answer from s3://desk/positions"),
        "{c}"
    );
    assert!(
        took < Duration::from_secs(4),
        "answered in {took:?}, within the 2 s timeout and the exit"
    );
    drop(held);
}

/// Two daemons, each flapping a check every 150 ms (an alert event each time), append to
/// one alerts table on the bucket at once; every event each logged is a row.
#[test]
fn two_daemons_appending_to_one_alerts_table_lose_no_row() {
    let s3 = S3::start();
    s3.make(&["bucket", "desk"]);
    let daemon = || -> (tempfile::TempDir, Daemonized) {
        let dir = tempfile::tempdir().unwrap();
        let flag = dir.path().join("flag");
        let config = write_config(
            dir.path(),
            &format!(
                "[checks.flapper]\nkind = \"command\"\ninterval = \"150ms\"\n\
                 command = [\"/bin/sh\", \"-c\", \"if [ -e {f} ]; then rm {f}; echo 'CRITICAL - down'; exit 2; fi; touch {f}; echo 'OK - up'\"]\n\n\
                 [[rules]]\nname = \"flap\"\nchecks = [\"flapper\"]\nwhen = \"status == 'critical'\"\nseverity = \"WARNING\"\n\n\
                 [sinks.audit]\nkind = \"log\"\npath = \"audit.jsonl\"\n\n\
                 [sinks.alerts]\nkind = \"delta\"\ntable = \"s3://desk/alerts\"\nflush_interval = \"100ms\"\nstorage_options = {}\n",
                s3.vitals_options(),
                f = flag.display(),
            ),
        );
        let d = Daemonized::spawn_with_env(&config, &CREDENTIALS);
        (dir, d)
    };
    let (a_dir, a) = daemon();
    let (b_dir, b) = daemon();
    a.expect("ALERT firing");
    b.expect("ALERT firing");
    std::thread::sleep(Duration::from_secs(3));
    for d in [&a, &b] {
        d.signal(Signal::SIGTERM);
    }
    a.expect("vitals stopped");
    b.expect("vitals stopped");
    let logged = |dir: &Path| -> Vec<String> {
        std::fs::read_to_string(dir.join("audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let e: Value = serde_json::from_str(l).unwrap();
                let at = chrono::DateTime::parse_from_rfc3339(e["event_at"].as_str().unwrap()).unwrap();
                format!(
                    "{} {} {}",
                    e["alert_id"].as_str().unwrap(),
                    e["state"].as_str().unwrap(),
                    at.timestamp_millis()
                )
            })
            .collect()
    };
    let (a_events, b_events) = (logged(a_dir.path()), logged(b_dir.path()));
    assert!(
        a_events.len() >= 4 && b_events.len() >= 4,
        "both daemons produced events"
    );
    let mut expected: Vec<String> = a_events.into_iter().chain(b_events).collect();
    expected.sort();
    let rows: Vec<String> = s3
        .make(&["events", "s3://desk/alerts"])
        .lines()
        .map(str::to_owned)
        .collect();
    let missing: Vec<&String> = expected.iter().filter(|e| !rows.contains(e)).collect();
    let extra: Vec<&String> = rows.iter().filter(|r| !expected.contains(r)).collect();
    let logs: Vec<String> = a
        .log()
        .into_iter()
        .chain(b.log())
        .filter(|l| !l.contains("ALERT"))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing rows {missing:?}, rows not logged {extra:?}; logs:\n{}",
        logs.join("\n")
    );
}
