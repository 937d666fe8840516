//! One vitals watching 50 peers at 5 s: the `peer` check's cost per run and the
//! watcher's CPU, against 50 plain `tcp` checks on the same ports in the same run.
//!
//! The peers are 50 HTTP servers in this process, each answering `/api/status` with a
//! desk-sized status (12 checks, 2 alerts, about 6 KB) the way a vitals does; the
//! watcher is the release binary, in a process of its own, run once with 50 `peer`
//! checks and once with 50 `tcp` checks. Each run: 15 s of warm-up, then CPU (utime +
//! stime from /proc) over `--seconds`, and the checks' median `duration_ms` from the
//! watcher's own /api/status.
//!
//! `cargo bench --bench fleet -- --seconds 60`

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const PEERS: usize = 50;

fn status_body(i: usize) -> String {
    let now = chrono::Utc::now();
    let checks: Vec<Value> = (0..12)
        .map(|c| {
            json!({
                "id": format!("check{c}"), "kind": "delta_freshness",
                "status": if c == 3 { "warning" } else { "ok" }, "label": "FRESH",
                "value": 1.5, "unit": "s", "message": format!("/data/table{c}: newest `synced_at` 1.5s old (warn 30s, crit 60s)"),
                "observed_at": now, "duration_ms": 1.2, "since": now,
                "details": {"table": format!("/data/table{c}"), "version": 1200, "warn": 30, "crit": 60, "sync": "running"},
            })
        })
        .collect();
    let alerts: Vec<Value> = (0..2)
        .map(|a| {
            json!({"alert_id": format!("data_stale.check{a}.1"), "rule": "data_stale", "check_id": format!("check{a}"),
                   "severity": "WARNING", "message": "stale", "started_at": now, "acknowledged": false})
        })
        .collect();
    json!({"generated_at": now, "host": format!("peer-{i}"), "name": format!("peer-{i}"), "public_url": null,
           "checks": checks, "alerts": alerts, "held": [], "suppressed": [], "sinks": [], "markets": [],
           "actions_enabled": false, "actions": []})
    .to_string()
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

struct Measured {
    cpu_s: f64,
    median_ms: f64,
    ok: usize,
}

fn measure(
    rt: &tokio::runtime::Runtime,
    dir: &std::path::Path,
    kind: &str,
    ports: &[u16],
    seconds: u64,
) -> Measured {
    let port = common::free_port();
    let mut text = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\nstate_dir = \"state-{kind}\"\n\n[defaults]\ninterval = \"5s\"\ntimeout = \"3s\"\n\n"
    );
    for (i, p) in ports.iter().enumerate() {
        match kind {
            "peer" => text.push_str(&format!(
                "[checks.host{i}]\nkind = \"peer\"\nurl = \"http://127.0.0.1:{p}\"\n\n"
            )),
            _ => text.push_str(&format!(
                "[checks.host{i}]\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = {p}\n\n"
            )),
        }
    }
    let config = dir.join(format!("{kind}.toml"));
    std::fs::write(&config, text).unwrap();
    let mut watcher = Command::new(env!("CARGO_BIN_EXE_vitals"))
        .args(["run", "-c"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(15));
    let ticks = cpu_ticks(watcher.id());
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds));
    let cpu_s = (cpu_ticks(watcher.id()) - ticks) as f64 / 100.0 * (60.0 / started.elapsed().as_secs_f64());
    let status: Value = rt.block_on(async {
        reqwest::get(format!("http://127.0.0.1:{port}/api/status"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    let _ = watcher.kill();
    let _ = watcher.wait();
    let checks = status["checks"].as_array().unwrap();
    let mut ms: Vec<f64> = checks.iter().filter_map(|c| c["duration_ms"].as_f64()).collect();
    ms.sort_by(f64::total_cmp);
    let ok = checks
        .iter()
        .filter(|c| c["status"] != "critical" && c["status"] != "unknown")
        .count();
    Measured {
        cpu_s,
        median_ms: ms[ms.len() / 2],
        ok,
    }
}

fn main() {
    let seconds: u64 = std::env::args()
        .skip_while(|a| a != "--seconds")
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let dir = common::fresh_dir("fleet-bench");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let ports: Vec<u16> = rt.block_on(async {
        let mut ports = Vec::new();
        for i in 0..PEERS {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            ports.push(listener.local_addr().unwrap().port());
            let app = axum::Router::new().route(
                "/api/status",
                axum::routing::get(move || async move {
                    ([("content-type", "application/json")], status_body(i))
                }),
            );
            tokio::spawn(async move { axum::serve(listener, app).await });
        }
        ports
    });
    let body = status_body(0).len();
    let peer = measure(&rt, &dir, "peer", &ports, seconds);
    let tcp = measure(&rt, &dir, "tcp", &ports, seconds);
    println!(
        "| 50 checks at 5 s, {seconds} s measured | watcher CPU per minute | per run | median run | checks answering |"
    );
    println!("|---|---|---|---|---|");
    let per_run = |m: &Measured| m.cpu_s / (PEERS as f64 * 12.0) * 1000.0;
    println!(
        "| `peer` (a {body}-byte /api/status each) | {:.2} s | {:.2} ms | {:.2} ms | {} of {PEERS} |",
        peer.cpu_s,
        per_run(&peer),
        peer.median_ms,
        peer.ok
    );
    println!(
        "| `tcp` on the same ports (baseline) | {:.2} s | {:.2} ms | {:.2} ms | {} of {PEERS} |",
        tcp.cpu_s,
        per_run(&tcp),
        tcp.median_ms,
        tcp.ok
    );
    println!(
        "\npeer / tcp: CPU {:.2}x, median run {:.2}x",
        peer.cpu_s / tcp.cpu_s,
        peer.median_ms / tcp.median_ms
    );
}
