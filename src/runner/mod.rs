//! The runner: schedules every check on its own interval (with a fixed random phase so
//! checks do not fire in lockstep, skipping missed ticks rather than bursting), owns
//! the timeout, and isolates panics. A hung or panicking check becomes `unknown` with a
//! message; no other check is delayed, because every check runs in a task of its own.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use futures::FutureExt;
use rand::Rng;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::board::Board;
use crate::check::{BuildContext, BuildError, Check, Observation, ParsedCheck, Reading, RunContext};
use crate::config::CheckSpec;
use crate::duration;
use crate::resources::Resources;

enum Source {
    Built(Arc<dyn Check>),
    Lazy {
        params: Box<dyn ParsedCheck>,
        cx: BuildContext,
        built: Mutex<Option<Arc<dyn Check>>>,
    },
}

/// One configured check, ready to run: its schedule and the check itself (built on
/// first use, and built again on the next run if building failed).
pub struct Instance {
    /// The check's id.
    pub id: String,
    /// Its kind.
    pub kind: &'static str,
    /// How often it runs.
    pub interval: Duration,
    /// How long a run may take.
    pub timeout: Duration,
    /// Largest random start offset.
    pub jitter: Duration,
    /// Checks it depends on.
    pub depends_on: Vec<String>,
    source: Source,
}

impl Instance {
    /// An instance around an already built check (tests, benchmarks, embedding).
    pub fn new(
        id: &str,
        kind: &'static str,
        interval: Duration,
        timeout: Duration,
        check: Arc<dyn Check>,
    ) -> Self {
        Instance {
            id: id.to_owned(),
            kind,
            interval,
            timeout,
            jitter: Duration::ZERO,
            depends_on: Vec::new(),
            source: Source::Built(check),
        }
    }

    /// Sets the jitter (largest random start offset).
    pub fn with_jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter.min(self.interval);
        self
    }

    /// An instance for a configured check; `cx` carries its lifetime and resources.
    pub fn from_spec(spec: CheckSpec, mut cx: BuildContext) -> Self {
        cx.quiet = crate::check::Quiet {
            windows: spec.maintenance.clone(),
            market: spec.market.clone(),
        };
        Instance {
            id: spec.id,
            kind: spec.kind,
            interval: spec.interval,
            timeout: spec.timeout,
            jitter: spec.jitter,
            depends_on: spec.depends_on,
            source: Source::Lazy {
                params: spec.params,
                cx,
                built: Mutex::new(None),
            },
        }
    }

    /// The built check, building it now if needed.
    pub fn check(&self) -> Result<Arc<dyn Check>, BuildError> {
        match &self.source {
            Source::Built(c) => Ok(c.clone()),
            Source::Lazy { params, cx, built } => {
                let mut slot = built.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(c) = &*slot {
                    return Ok(c.clone());
                }
                let c = params.build(cx)?;
                *slot = Some(c.clone());
                Ok(c)
            }
        }
    }

    /// Runs the check once, now, under the timeout and panic isolation.
    pub async fn run_once(&self, scheduled: Instant) -> Observation {
        let observed_at = Utc::now();
        let started = Instant::now();
        let reading = match self.check() {
            Err(e) => Reading::unknown(format!("{}: the check could not be set up: {e}", self.id)),
            Ok(check) => {
                let cx = RunContext {
                    id: self.id.clone(),
                    scheduled,
                    deadline: started + self.timeout,
                    timeout: self.timeout,
                };
                // Run in place (no task of its own per run): a panic is caught here,
                // and at the deadline the run is dropped, which cancels it.
                let run = std::panic::AssertUnwindSafe(check.run(&cx)).catch_unwind();
                match tokio::time::timeout_at(cx.deadline, run).await {
                    Ok(Ok(reading)) => reading,
                    Ok(Err(panic)) => Reading::unknown(format!("check panicked: {}", panic_message(panic))),
                    Err(_) => Reading::unknown(format!("timed out after {}", duration::format(self.timeout))),
                }
            }
        };
        Observation::from_reading(&self.id, self.kind, reading, observed_at, started.elapsed())
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_owned()
    }
}

/// Runs `instance` on its schedule until `cancel`, publishing each observation.
pub async fn schedule(instance: Arc<Instance>, board: Board, cancel: CancellationToken) {
    // Whole milliseconds: the timer wheel's resolution.
    let jitter_ms = instance.jitter.as_millis().min(u128::from(u64::MAX)) as u64;
    let phase = if jitter_ms == 0 {
        Duration::ZERO
    } else {
        Duration::from_millis(rand::rng().random_range(0..jitter_ms))
    };
    let mut ticks = tokio::time::interval_at(Instant::now() + phase, instance.interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        let scheduled = tokio::select! {
            biased;
            _ = cancel.cancelled() => return,
            t = ticks.tick() => t,
        };
        let observation = tokio::select! {
            biased;
            _ = cancel.cancelled() => return,
            o = instance.run_once(scheduled) => o,
        };
        board.publish(observation);
    }
}

struct Running {
    fingerprint: String,
    instance: Arc<Instance>,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

/// What a config change did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ApplyReport {
    /// New checks started.
    pub added: Vec<String>,
    /// Checks whose config changed, restarted.
    pub changed: Vec<String>,
    /// Checks no longer configured, stopped.
    pub removed: Vec<String>,
    /// Checks left running untouched.
    pub kept: Vec<String>,
}

/// The running instances by id, shared with whoever needs to reach them between
/// reloads (the web server's run-now and action routes).
pub type Instances = Arc<std::sync::RwLock<BTreeMap<String, Arc<Instance>>>>;

/// Owns the running checks of a daemon.
pub struct Runner {
    board: Board,
    resources: Arc<Resources>,
    running: BTreeMap<String, Running>,
    shared: Instances,
}

impl Runner {
    /// A runner publishing to `board`.
    pub fn new(board: Board, resources: Arc<Resources>) -> Self {
        Runner {
            board,
            resources,
            running: BTreeMap::new(),
            shared: Instances::default(),
        }
    }

    /// The board it publishes to.
    pub fn board(&self) -> &Board {
        &self.board
    }

    /// Starts running `instance`, cancelled through `cancel`.
    pub fn start(&mut self, instance: Arc<Instance>, fingerprint: String, cancel: CancellationToken) {
        let task = tokio::spawn(schedule(instance.clone(), self.board.clone(), cancel.clone()));
        self.shared
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(instance.id.clone(), instance.clone());
        self.running.insert(
            instance.id.clone(),
            Running {
                fingerprint,
                instance,
                cancel,
                task,
            },
        );
    }

    /// Stops one check and waits for its schedule to end.
    pub async fn stop(&mut self, id: &str) {
        if let Some(r) = self.running.remove(id) {
            self.shared.write().unwrap_or_else(|e| e.into_inner()).remove(id);
            r.cancel.cancel();
            if let Err(e) = r.task.await
                && e.is_panic()
            {
                warn!(check = id, "the schedule of the check panicked while stopping");
            }
        }
    }

    /// Makes the running checks match `config`: starts new ones, restarts changed ones,
    /// stops removed ones and leaves unchanged ones running (their state, connections
    /// and schedule untouched).
    pub async fn apply(&mut self, checks: Vec<CheckSpec>, config_dir: &std::path::Path) -> ApplyReport {
        let mut report = ApplyReport::default();
        let dir = config_dir.to_owned();
        let wanted: HashSet<String> = checks.iter().map(|c| c.id.clone()).collect();
        let gone: Vec<String> = self
            .running
            .keys()
            .filter(|id| !wanted.contains(*id))
            .cloned()
            .collect();
        for id in gone {
            self.stop(&id).await;
            report.removed.push(id);
        }
        for spec in checks {
            let fingerprint = spec.fingerprint();
            match self.running.get(&spec.id) {
                Some(r) if r.fingerprint == fingerprint => {
                    report.kept.push(spec.id);
                    continue;
                }
                Some(_) => {
                    self.stop(&spec.id).await;
                    report.changed.push(spec.id.clone());
                }
                None => report.added.push(spec.id.clone()),
            }
            let cancel = CancellationToken::new();
            let cx = BuildContext {
                id: spec.id.clone(),
                kind: spec.kind,
                config_dir: dir.clone(),
                resources: self.resources.clone(),
                cancel: cancel.clone(),
                quiet: Default::default(),
                board: Some(self.board.clone()),
            };
            debug!(check = %spec.id, kind = spec.kind, "starting check");
            if self.board.get(&spec.id).is_none() {
                // On the page and in the API from the first second, not from its first run.
                self.board
                    .publish(Observation::pending(&spec.id, spec.kind, Utc::now()));
            }
            self.start(Arc::new(Instance::from_spec(spec, cx)), fingerprint, cancel);
        }
        self.board.retain(|id| wanted.contains(id));
        report
    }

    /// The running instance of a check (to run it now, or call its actions).
    pub fn instance(&self, id: &str) -> Option<Arc<Instance>> {
        self.running.get(id).map(|r| r.instance.clone())
    }

    /// The running instances, kept up to date across reloads.
    pub fn instances(&self) -> Instances {
        self.shared.clone()
    }

    /// Ids of the running checks.
    pub fn ids(&self) -> Vec<String> {
        self.running.keys().cloned().collect()
    }

    /// Stops every check and waits for them.
    pub async fn shutdown(&mut self) {
        let ids = self.ids();
        for r in self.running.values() {
            r.cancel.cancel();
        }
        for id in ids {
            self.stop(&id).await;
        }
    }
}
