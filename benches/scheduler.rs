//! Scheduler benchmark: N trivial checks at a 1 s interval for S seconds, through the
//! real runner (spawned run, timeout, panic isolation, board), against a baseline of
//! bare `tokio::time::interval` loops doing the same trivial work in the same process.
//!
//! Reports the scheduling lag (start − scheduled tick: p50/p99/max, and relative to the
//! interval) and the CPU time per check run (getrusage, user + system).
//!
//! `cargo bench --bench scheduler -- --checks 10000 --seconds 60`

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use vitals::board::Board;
use vitals::check::{Check, Reading, RunContext, Status};
use vitals::resources::Resources;
use vitals::runner::{Instance, Runner};

const INTERVAL: Duration = Duration::from_secs(1);

type Lags = Arc<Mutex<Vec<u32>>>;

struct Trivial(Lags);

#[async_trait]
impl Check for Trivial {
    async fn run(&self, cx: &RunContext) -> Reading {
        let lag = Instant::now().saturating_duration_since(cx.scheduled);
        self.0.lock().unwrap().push(lag.as_micros() as u32);
        Reading::new(Status::Ok, "trivial").with_value(1.0, "")
    }
}

fn cpu_time() -> Duration {
    let u = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).expect("getrusage");
    let tv = |t: nix::sys::time::TimeVal| Duration::new(t.tv_sec() as u64, t.tv_usec() as u32 * 1000);
    tv(u.user_time()) + tv(u.system_time())
}

struct Result {
    name: &'static str,
    runs: usize,
    p50: u32,
    p99: u32,
    max: u32,
    cpu_per_run: Duration,
}

fn summarize(name: &'static str, lags: &[Lags], cpu: Duration) -> Result {
    let mut all: Vec<u32> = lags.iter().flat_map(|l| l.lock().unwrap().clone()).collect();
    all.sort_unstable();
    let pick = |q: f64| all[((all.len() as f64 - 1.0) * q) as usize];
    Result {
        name,
        runs: all.len(),
        p50: pick(0.5),
        p99: pick(0.99),
        max: *all.last().unwrap(),
        cpu_per_run: cpu / all.len().max(1) as u32,
    }
}

async fn vitals_runner(checks: usize, seconds: u64) -> Result {
    let mut runner = Runner::new(Board::new(), Arc::new(Resources::default()));
    let lags: Vec<Lags> = (0..checks).map(|_| Lags::default()).collect();
    let cpu0 = cpu_time();
    for (i, l) in lags.iter().enumerate() {
        let inst = Instance::new(
            &format!("c{i}"),
            "bench",
            INTERVAL,
            Duration::from_secs(1),
            Arc::new(Trivial(l.clone())),
        )
        .with_jitter(INTERVAL);
        runner.start(Arc::new(inst), String::new(), CancellationToken::new());
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    runner.shutdown().await;
    summarize("vitals runner", &lags, cpu_time() - cpu0)
}

async fn bare_intervals(checks: usize, seconds: u64) -> Result {
    let lags: Vec<Lags> = (0..checks).map(|_| Lags::default()).collect();
    let cancel = CancellationToken::new();
    let cpu0 = cpu_time();
    let mut tasks = Vec::new();
    for l in &lags {
        let (l, cancel) = (l.clone(), cancel.clone());
        let phase = Duration::from_millis(rand::random_range(0..1000));
        tasks.push(tokio::spawn(async move {
            let mut ticks = tokio::time::interval_at(Instant::now() + phase, INTERVAL);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
            loop {
                let t = tokio::select! { _ = cancel.cancelled() => return, t = ticks.tick() => t };
                let lag = Instant::now().saturating_duration_since(t);
                l.lock().unwrap().push(lag.as_micros() as u32);
                std::hint::black_box(Reading::new(Status::Ok, "trivial").with_value(1.0, ""));
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    cancel.cancel();
    for t in tasks {
        let _ = t.await;
    }
    summarize("bare tokio intervals (baseline)", &lags, cpu_time() - cpu0)
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let checks = arg("--checks", 10_000) as usize;
    let seconds = arg("--seconds", 60);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "{checks} checks at a 1 s interval for {seconds} s, {} worker threads",
        num_threads()
    );
    let baseline = rt.block_on(bare_intervals(checks, seconds));
    let vitals = rt.block_on(vitals_runner(checks, seconds));
    println!(
        "| scheduler | runs | lag p50 | lag p99 | lag max | p99 / interval | CPU per run |\n|---|---|---|---|---|---|---|"
    );
    for r in [&baseline, &vitals] {
        println!(
            "| {} | {} | {:.2} ms | {:.2} ms | {:.2} ms | {:.3} % | {:.1} µs |",
            r.name,
            r.runs,
            r.p50 as f64 / 1000.0,
            r.p99 as f64 / 1000.0,
            r.max as f64 / 1000.0,
            r.p99 as f64 / 1000.0 / INTERVAL.as_millis() as f64 * 100.0,
            r.cpu_per_run.as_secs_f64() * 1e6
        );
    }
    println!(
        "\nvitals / baseline: CPU per run {:.2}x, p99 lag {:.2}x",
        vitals.cpu_per_run.as_secs_f64() / baseline.cpu_per_run.as_secs_f64(),
        vitals.p99 as f64 / baseline.p99.max(1) as f64
    );
    let goal = vitals.p99 as f64 / 1000.0 < INTERVAL.as_millis() as f64 * 0.05;
    println!(
        "goal (p99 lag < 5 % of the interval): {}",
        if goal { "met" } else { "NOT met" }
    );
}

fn num_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
