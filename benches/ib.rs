//! How fast `ib_connection` tells the board, against the gateway stand-in
//! (`src/demo/gateway.rs`, the real `ibapi` client on loopback): socket drop →
//! DISCONNECTED, silent gateway → DISCONNECTED, gateway back → CONNECTED.
//!
//! `cargo bench --bench ib -- [--trials 30]`

#[allow(dead_code)]
use vitals::demo::gateway;

use std::time::{Duration, Instant};

use gateway::{Gateway, Mode};
use tokio::sync::mpsc::UnboundedReceiver;
use vitals::board::BoardEvent;
use vitals::daemon::Daemon;
use vitals::registry::registry;

async fn until(rx: &mut UnboundedReceiver<BoardEvent>, label: &str, heartbeat: bool) {
    loop {
        let e = rx.recv().await.expect("board open");
        let o = &e.observation;
        if o.label.as_deref() == Some(label) && (!heartbeat || o.value.is_some()) {
            return;
        }
    }
}

fn stats(mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    let p = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    format!(
        "median {:.1} ms, p90 {:.1} ms, max {:.1} ms (n = {})",
        p(0.5),
        p(0.9),
        p(1.0),
        v.len()
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let trials: usize = args
        .iter()
        .position(|a| a == "--trials")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(30);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let gw = Gateway::start().await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vitals.toml");
        std::fs::write(
            &path,
            format!(
                "[checks.ib]\nkind = \"ib_connection\"\nport = {}\nclient_id = 7\ninterval = \"1h\"\n\
                 heartbeat = \"1s\"\nheartbeat_timeout = \"1s\"\nreconnect_backoff = \"100ms\"\n\
                 reconnect_backoff_max = \"100ms\"\nmax_reconnect_attempts = 1000\n",
                gw.port()
            ),
        )
        .unwrap();
        let daemon = Daemon::start(&path, registry().unwrap()).await.unwrap();
        let mut rx = daemon.board().follow();
        until(&mut rx, "CONNECTED", true).await;

        let (mut drop, mut back, mut silent) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..trials {
            // Socket drop.
            let t = Instant::now();
            gw.drop_sessions();
            until(&mut rx, "DISCONNECTED", false).await;
            drop.push(t.elapsed().as_secs_f64() * 1000.0);
            until(&mut rx, "CONNECTED", true).await;

            // Outage, then the gateway comes back: time from its return to CONNECTED
            // (includes the wait for the next attempt: backoff 100 ms, half of it jitter).
            gw.outage();
            until(&mut rx, "DISCONNECTED", false).await;
            tokio::time::sleep(Duration::from_millis(150)).await;
            let t = Instant::now();
            gw.back().await;
            until(&mut rx, "CONNECTED", false).await;
            back.push(t.elapsed().as_secs_f64() * 1000.0);
            until(&mut rx, "CONNECTED", true).await;
        }
        for _ in 0..trials.min(10) {
            // Silent gateway: heartbeat 1 s, timeout 1 s.
            let t = Instant::now();
            gw.set_mode(Mode::Silent);
            until(&mut rx, "DISCONNECTED", false).await;
            silent.push(t.elapsed().as_secs_f64() * 1000.0);
            gw.set_mode(Mode::Normal);
            until(&mut rx, "CONNECTED", true).await;
        }
        println!("socket drop -> DISCONNECTED: {}", stats(drop));
        println!(
            "silent gateway -> DISCONNECTED (heartbeat 1 s + timeout 1 s): {}",
            stats(silent)
        );
        println!("gateway back -> CONNECTED (backoff 100 ms): {}", stats(back));
        daemon.shutdown().await;
    });
}
