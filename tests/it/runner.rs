//! The runner under paused tokio time: timeouts, panic isolation, schedules, jitter,
//! skipped ticks and cancellation. No real sleeps: virtual time only.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use vitals::board::{Board, BoardEvent};
use vitals::check::{Check, Reading, RunContext, Status};
use vitals::resources::Resources;
use vitals::runner::{Instance, Runner};

type Runs = Arc<Mutex<Vec<(Instant, Instant)>>>;

/// Records (scheduled, started) of every run.
struct Ticker(Runs);

#[async_trait]
impl Check for Ticker {
    async fn run(&self, cx: &RunContext) -> Reading {
        self.0.lock().unwrap().push((cx.scheduled, Instant::now()));
        Reading::new(Status::Ok, "tick")
    }
}

/// Never answers; notes when its run is dropped.
struct Hang(Arc<AtomicUsize>);

struct DropFlag(Arc<AtomicUsize>);
impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl Check for Hang {
    async fn run(&self, _: &RunContext) -> Reading {
        let _flag = DropFlag(self.0.clone());
        std::future::pending().await
    }
}

struct Panicky;

#[async_trait]
impl Check for Panicky {
    async fn run(&self, _: &RunContext) -> Reading {
        panic!("boom at the target")
    }
}

/// Takes `0` to answer.
struct Slow(Duration, Runs);

#[async_trait]
impl Check for Slow {
    async fn run(&self, cx: &RunContext) -> Reading {
        self.1.lock().unwrap().push((cx.scheduled, Instant::now()));
        tokio::time::sleep(self.0).await;
        Reading::new(Status::Ok, "slow")
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn runner() -> (Runner, tokio::sync::mpsc::UnboundedReceiver<BoardEvent>) {
    let board = Board::new();
    let rx = board.follow();
    (Runner::new(board, Arc::new(Resources::default())), rx)
}

fn start(runner: &mut Runner, instance: Instance) {
    runner.start(Arc::new(instance), String::new(), CancellationToken::new());
}

fn drain(rx: &mut tokio::sync::mpsc::UnboundedReceiver<BoardEvent>, id: &str) -> Vec<BoardEvent> {
    let mut out = Vec::new();
    while let Ok(e) = rx.try_recv() {
        if e.observation.id == id {
            out.push(e);
        }
    }
    out
}

#[tokio::test(start_paused = true)]
async fn a_hanging_check_times_out_while_a_fast_one_keeps_its_schedule() {
    let (mut runner, mut rx) = runner();
    let dropped = Arc::new(AtomicUsize::new(0));
    let runs: Runs = Arc::default();
    start(
        &mut runner,
        Instance::new(
            "hang",
            "test",
            secs(5.0),
            secs(3.0),
            Arc::new(Hang(dropped.clone())),
        ),
    );
    start(
        &mut runner,
        Instance::new(
            "tick",
            "test",
            secs(1.0),
            secs(3.0),
            Arc::new(Ticker(runs.clone())),
        ),
    );
    let t0 = Instant::now();
    tokio::time::sleep(secs(30.5)).await;
    runner.shutdown().await;

    let hang = {
        let mut all = Vec::new();
        while let Ok(e) = rx.try_recv() {
            all.push(e);
        }
        all.into_iter()
            .filter(|e| e.observation.id == "hang")
            .collect::<Vec<_>>()
    };
    // Runs start at 0, 5, …, 25 s and each is given up at +3 s.
    assert_eq!(hang.len(), 6);
    for e in &hang {
        assert_eq!(e.observation.status, Status::Unknown);
        assert_eq!(e.observation.message, "timed out after 3s");
    }
    // Every abandoned run was dropped, not left running in the background: the six
    // that timed out and the one in flight at shutdown.
    assert_eq!(dropped.load(Ordering::SeqCst), 7);

    let runs = runs.lock().unwrap();
    assert_eq!(runs.len(), 31, "a 1 s check over 30.5 s");
    for (k, (scheduled, started)) in runs.iter().enumerate() {
        assert_eq!(*scheduled, t0 + secs(k as f64), "tick {k} drifted");
        assert_eq!(started, scheduled, "tick {k} started late");
    }
}

#[tokio::test(start_paused = true)]
async fn a_panicking_check_is_reported_and_the_others_go_on() {
    let (mut runner, mut rx) = runner();
    let runs: Runs = Arc::default();
    start(
        &mut runner,
        Instance::new("panicky", "test", secs(2.0), secs(1.0), Arc::new(Panicky)),
    );
    start(
        &mut runner,
        Instance::new(
            "tick",
            "test",
            secs(1.0),
            secs(1.0),
            Arc::new(Ticker(runs.clone())),
        ),
    );
    tokio::time::sleep(secs(10.5)).await;
    runner.shutdown().await;
    let panics = drain(&mut rx, "panicky");
    assert_eq!(panics.len(), 6, "the panicking check keeps its schedule");
    for e in panics {
        assert_eq!(e.observation.status, Status::Unknown);
        assert_eq!(e.observation.message, "check panicked: boom at the target");
    }
    assert_eq!(runs.lock().unwrap().len(), 11);
}

#[tokio::test(start_paused = true)]
async fn interval_and_jitter_hold_over_many_ticks() {
    let (mut runner, _rx) = runner();
    let t0 = Instant::now();
    let all: Vec<Runs> = (0..50)
        .map(|i| {
            let runs: Runs = Arc::default();
            let inst = Instance::new(
                &format!("c{i}"),
                "test",
                secs(5.0),
                secs(1.0),
                Arc::new(Ticker(runs.clone())),
            )
            .with_jitter(secs(1.0));
            start(&mut runner, inst);
            runs
        })
        .collect();
    tokio::time::sleep(secs(500.0)).await;
    runner.shutdown().await;
    let mut phases = Vec::new();
    for runs in &all {
        let runs = runs.lock().unwrap();
        assert!(runs.len() >= 100, "{} runs", runs.len());
        let phase = runs[0].0 - t0;
        assert!(phase < secs(1.0), "phase {phase:?} beyond the jitter");
        for (k, (scheduled, started)) in runs.iter().enumerate() {
            assert_eq!(*scheduled, t0 + phase + secs(5.0 * k as f64), "tick {k} drifted");
            assert_eq!(started, scheduled);
        }
        phases.push(phase);
    }
    phases.sort();
    phases.dedup();
    assert!(
        phases.len() > 40,
        "checks should not start in lockstep: {} distinct phases",
        phases.len()
    );
}

#[tokio::test(start_paused = true)]
async fn a_check_slower_than_its_interval_skips_ticks_instead_of_bursting() {
    let (mut runner, _rx) = runner();
    let runs: Runs = Arc::default();
    start(
        &mut runner,
        Instance::new(
            "slow",
            "test",
            secs(1.0),
            secs(10.0),
            Arc::new(Slow(secs(2.5), runs.clone())),
        ),
    );
    tokio::time::sleep(secs(30.0)).await;
    runner.shutdown().await;
    let runs = runs.lock().unwrap();
    // One run every 2.5 s at most — never a catch-up burst of the missed ticks.
    assert!((11..=13).contains(&runs.len()), "{} runs", runs.len());
    for pair in runs.windows(2) {
        assert!(
            pair[1].1 - pair[0].1 >= secs(2.5),
            "runs {:?} and {:?} overlap or burst",
            pair[0].1,
            pair[1].1
        );
    }
}

#[tokio::test(start_paused = true)]
async fn stopping_a_check_cancels_its_run_in_flight() {
    let (mut runner, mut rx) = runner();
    let dropped = Arc::new(AtomicUsize::new(0));
    start(
        &mut runner,
        Instance::new(
            "hang",
            "test",
            secs(60.0),
            secs(30.0),
            Arc::new(Hang(dropped.clone())),
        ),
    );
    tokio::time::sleep(secs(1.0)).await;
    runner.stop("hang").await;
    tokio::task::yield_now().await;
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        1,
        "the in-flight run must be dropped"
    );
    assert!(runner.ids().is_empty());
    tokio::time::sleep(secs(120.0)).await;
    assert!(rx.try_recv().is_err(), "a stopped check published");
}

#[tokio::test(start_paused = true)]
async fn a_check_answering_before_the_deadline_wins_over_the_runner_timeout() {
    struct Target;
    #[async_trait]
    impl Check for Target {
        async fn run(&self, cx: &RunContext) -> Reading {
            match cx.before_deadline(std::future::pending::<()>()).await {
                Some(()) => Reading::new(Status::Ok, "answered"),
                None => Reading::new(Status::Critical, "target did not answer"),
            }
        }
    }
    let inst = Instance::new("t", "test", secs(5.0), secs(3.0), Arc::new(Target));
    let o = inst.run_once(Instant::now()).await;
    assert_eq!(
        (o.status, o.message.as_str()),
        (Status::Critical, "target did not answer")
    );
    assert!(
        o.duration_ms < 3000.0 && o.duration_ms >= 2800.0,
        "{}",
        o.duration_ms
    );
}
