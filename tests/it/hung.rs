//! Hung storage: a Delta table whose `_delta_log/_last_checkpoint` is a FIFO nobody
//! writes to blocks `open()` forever, as a hung NFS mount does. The checks report it
//! `critical` themselves, keep at most one stuck read, and neither `vitals check` nor a
//! stopping daemon waits for it.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::delta::make;
use crate::support::{Daemonized, free_port, vitals, write_config};

/// A freshness table whose next read hangs in `open()`.
fn hung_table(path: &Path) {
    make(&[path.to_str().unwrap(), "tz", "5"]);
    hang(path);
}

/// Makes the next read of the table at `path` hang in `open()`.
fn hang(path: &Path) {
    nix::unistd::mkfifo(
        &path.join("_delta_log/_last_checkpoint"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
}

fn threads(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap()
}

#[test]
fn a_one_shot_check_of_hung_storage_is_critical_and_exits_in_time() {
    let dir = tempfile::tempdir().unwrap();
    hung_table(&dir.path().join("positions"));
    make(&[
        "registry",
        dir.path().join("registry").to_str().unwrap(),
        "3",
        "1",
    ]);
    hang(&dir.path().join("registry"));
    let path = write_config(
        dir.path(),
        "[defaults]\ntimeout = \"1s\"\n\n\
         [checks.positions]\nkind = \"delta_freshness\"\ntable = \"positions\"\n\n\
         [checks.slots]\nkind = \"strategy_slots\"\ntable = \"registry\"\n",
    );
    let started = Instant::now();
    let out = vitals()
        .args(["check", "--format", "json", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    let took = started.elapsed();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        took < Duration::from_secs(2),
        "exited {took:?} after start: timeout + 1 s at most"
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    for check in json["checks"].as_array().unwrap() {
        assert_eq!(check["status"], "critical", "{check}");
        let message = check["message"].as_str().unwrap();
        assert!(message.contains("within 1s: is the storage hung?"), "{message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_keeps_one_stuck_read_however_many_runs_and_stops_in_time() {
    let dir = tempfile::tempdir().unwrap();
    hung_table(&dir.path().join("positions"));
    let port = free_port();
    let path = write_config(
        dir.path(),
        &format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n\n\
             [checks.positions]\nkind = \"delta_freshness\"\ntable = \"positions\"\n\
             interval = \"20ms\"\ntimeout = \"500ms\"\njitter = \"0s\"\n"
        ),
    );
    let mut d = Daemonized::spawn(&path);
    d.expect("status page on");
    let pid = d.child.id();
    let url = format!("http://127.0.0.1:{port}/api/status");
    let observation = || async {
        let status: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
        status["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == "positions")
            .cloned()
            .unwrap_or(Value::Null)
    };
    // The first run hangs and says so; note the threads then.
    let mut o = Value::Null;
    for _ in 0..100 {
        o = observation().await;
        if o["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("still no answer"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(o["status"], "critical", "{o}");
    let before = threads(pid);
    // More than 100 runs at 20 ms later, the same single read is still the stuck one.
    loop {
        o = observation().await;
        if o["details"]["hung_for_s"].as_u64().unwrap_or(0) >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        o["message"]
            .as_str()
            .unwrap()
            .contains("a read started 3s ago has not returned"),
        "{o}"
    );
    let after = threads(pid);
    assert!(
        after <= before + 1,
        "threads went from {before} to {after} in 100 runs"
    );
    // SIGTERM: out within the sinks' grace, the stuck read notwithstanding.
    let stopping = Instant::now();
    d.signal(nix::sys::signal::Signal::SIGTERM);
    let status = d.child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(
        stopping.elapsed() < Duration::from_secs(6),
        "{:?}",
        stopping.elapsed()
    );
}
