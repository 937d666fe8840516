//! The web server under load: 1,000 checks on the board, `wrk` (Debian) with 64
//! connections on `/api/status` and then `/`, in the same process as the runner — and
//! the runner's scheduling lag during each load phase against a phase without load,
//! measured in the same run. Also the page's weight.
//!
//! `cargo bench --bench web -- [--checks 1000] [--seconds 20] [--wrk-threads 2]`

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use vitals::alerting::Alerting;
use vitals::board::Board;
use vitals::check::{Check, Reading, RunContext, Status};
use vitals::resources::Resources;
use vitals::runner::{Instance, Runner};

const INTERVAL: Duration = Duration::from_secs(1);

type Lags = Arc<Mutex<Vec<u32>>>;

/// A check that records how late it started and reports a plausible reading.
struct Probe(Lags, usize);

#[async_trait]
impl Check for Probe {
    async fn run(&self, cx: &RunContext) -> Reading {
        let lag = Instant::now().saturating_duration_since(cx.scheduled);
        self.0.lock().unwrap().push(lag.as_micros() as u32);
        let status = if self.1.is_multiple_of(50) {
            Status::Warning
        } else {
            Status::Ok
        };
        Reading::new(status, format!("probe {} fine", self.1))
            .with_value((self.1 % 100) as f64, "%")
            .with_detail("warn", 50.0)
            .with_detail("crit", 80.0)
    }
}

fn take(lags: &Lags) -> Vec<u32> {
    std::mem::take(&mut *lags.lock().unwrap())
}

fn pct(v: &mut [u32], q: f64) -> f64 {
    v.sort_unstable();
    v[((v.len() as f64 - 1.0) * q) as usize] as f64 / 1000.0
}

/// Runs wrk for `seconds` on `url`; returns (requests/s, p99 latency in ms).
fn wrk(url: &str, seconds: u64, threads: u64, gzip: bool) -> (f64, f64) {
    let mut wrk = Command::new("wrk");
    if gzip {
        wrk.args(["-H", "Accept-Encoding: gzip"]);
    }
    let out = wrk
        .args([
            &format!("-t{threads}"),
            "-c64",
            &format!("-d{seconds}s"),
            "--latency",
            url,
        ])
        .output()
        .expect("wrk (Debian package wrk)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Requests/sec in wrk output:\n{text}"));
    let p99 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| panic!("no 99% in wrk output:\n{text}"));
    let ms = if let Some(us) = p99.strip_suffix("us") {
        us.parse::<f64>().unwrap() / 1000.0
    } else if let Some(ms) = p99.strip_suffix("ms") {
        ms.parse::<f64>().unwrap()
    } else if let Some(s) = p99.strip_suffix('s') {
        s.parse::<f64>().unwrap() * 1000.0
    } else {
        panic!("unknown latency {p99}")
    };
    if text.contains("Non-2xx") {
        panic!("errors under load:\n{text}");
    }
    (rps, ms)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: u64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1)?.parse().ok())
            .unwrap_or(default)
    };
    let checks = arg("--checks", 1000) as usize;
    let seconds = arg("--seconds", 20);
    let threads = arg("--wrk-threads", 2);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vitals.toml");
        let config = vitals::config::parse(
            &path,
            "[server]\nstate_dir = \"state\"\n",
            vitals::registry::registry().unwrap(),
        )
        .unwrap();
        let alerting = Arc::new(Mutex::new(Alerting::start(vitals::daemon::split(config).alerting)));
        let board = Board::new();
        let mut runner = Runner::new(board.clone(), Arc::new(Resources::default()));
        let lags = Lags::default();
        for i in 0..checks {
            let inst = Instance::new(
                &format!("probe{i:04}"),
                "probe",
                INTERVAL,
                Duration::from_secs(1),
                Arc::new(Probe(lags.clone(), i)),
            )
            .with_jitter(INTERVAL);
            runner.start(Arc::new(inst), String::new(), CancellationToken::new());
        }
        let web = Arc::new(vitals::web::Web::new(
            board.clone(),
            runner.instances(),
            alerting,
            &vitals::registry::registry().unwrap().checks,
            "VITALS_TOKEN",
            None,
        ));
        // As `vitals run` does: the server on its own thread and runtime.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let server = vitals::web::spawn(&format!("127.0.0.1:{port}"), web).expect("the server starts");
        tokio::time::sleep(Duration::from_secs(3)).await; // every check on the board

        let page = reqwest::get(format!("http://127.0.0.1:{port}/"))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let status = reqwest::get(format!("http://127.0.0.1:{port}/api/status"))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();

        take(&lags);
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        let mut idle = take(&lags);

        // Each route as a client that takes the body as it is (what every request cost
        // before compression: the same-run baseline), then as one that asks for gzip.
        let mut phases = Vec::new();
        for (route, gzip) in [("/api/status", false), ("/api/status", true), ("/", false), ("/", true)] {
            let url = format!("http://127.0.0.1:{port}{route}");
            let (rps, p99) = tokio::task::spawn_blocking(move || wrk(&url, seconds, threads, gzip))
                .await
                .unwrap();
            let name = format!("wrk on `{route}`{}", if gzip { ", gzip" } else { "" });
            phases.push((name, rps, p99, take(&lags)));
        }
        let gz = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}/api/status"))
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();

        println!(
            "{checks} checks at 1 s; wrk -t{threads} -c64 -d{seconds}s; page {} bytes, /api/status {} bytes ({} gzipped)\n",
            page.len(),
            status.len(),
            gz.len()
        );
        println!(
            "| phase | requests/s | request p99 | check lag p50 | check lag p99 | check lag max | runs |"
        );
        println!("|---|---|---|---|---|---|---|");
        let row = |name: &str, rps: Option<f64>, p99: Option<f64>, lags: &mut Vec<u32>| {
            let runs = lags.len();
            let (p50, p99l, max) = (pct(lags, 0.5), pct(lags, 0.99), pct(lags, 1.0));
            println!(
                "| {name} | {} | {} | {p50:.2} ms | {p99l:.2} ms | {max:.2} ms | {runs} |",
                rps.map_or("—".into(), |r| format!("{r:.0}")),
                p99.map_or("—".into(), |p| format!("{p:.2} ms")),
            );
        };
        row("no load (baseline)", None, None, &mut idle);
        for (name, rps, p99, mut lags) in phases {
            row(&name, Some(rps), Some(p99), &mut lags);
        }
        tokio::task::spawn_blocking(move || server.stop(Duration::from_secs(5)))
            .await
            .unwrap();
        runner.shutdown().await;
    });
}
