//! Dispatch: every sink gets its own queue and task, so a slow or dead sink never delays
//! the runner, the rules or another sink. Events wait in a durable outbox (one JSON
//! line each, in `[server] state_dir`) until their sink has accepted them, so delivery
//! is at least once across outages and restarts. Retryable failures back off
//! exponentially (1 s doubling to 5 min) and retry until delivered; permanent ones move
//! the batch to a dead-letter file and say so in the log.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::alert::{AlertEvent, Severity};
use crate::config::SinkSpec;
use crate::plugin::BuildError;
use crate::sinks::{Sink, SinkContext};

/// First retry delay.
pub const BACKOFF_START: Duration = Duration::from_secs(1);
/// Longest retry delay.
pub const BACKOFF_CAP: Duration = Duration::from_secs(300);
/// Longest one delivery may take before it counts as a retryable failure.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// A configured sink, built: the sink counterpart of [`crate::runner::Instance`]. A
/// build error is kept and reported on each delivery attempt (the events wait in the
/// outbox until a reload fixes it).
pub struct SinkInstance {
    /// Its id.
    pub id: String,
    /// Events below this severity are not sent to it.
    pub min_severity: Severity,
    /// The sink.
    pub sink: Result<Arc<dyn Sink>, BuildError>,
}

impl SinkInstance {
    /// Builds a configured sink (a build error is kept and reported on each attempt).
    pub fn build(spec: &SinkSpec, config_dir: &Path) -> SinkInstance {
        let cx = SinkContext {
            id: spec.id.clone(),
            config_dir: config_dir.to_owned(),
        };
        SinkInstance {
            id: spec.id.clone(),
            min_severity: spec.min_severity,
            sink: spec.params.build(&cx),
        }
    }
}

struct Queue {
    id: String,
    min_severity: Severity,
    tx: mpsc::UnboundedSender<AlertEvent>,
    outbox: Arc<Outbox>,
}

/// The running fan-out.
pub struct Dispatcher {
    queues: Vec<Queue>,
    tasks: Vec<JoinHandle<()>>,
    cancel: CancellationToken,
}

impl Dispatcher {
    /// Starts one task per sink. `state_dir` holds the outboxes.
    pub fn start(targets: Vec<SinkInstance>, state_dir: &Path) -> Dispatcher {
        let cancel = CancellationToken::new();
        let mut queues = Vec::new();
        let mut tasks = Vec::new();
        for t in targets {
            let (tx, rx) = mpsc::unbounded_channel();
            let outbox = Arc::new(Outbox::new(state_dir, &t.id));
            // Read before anything new is queued, so an event is never taken twice.
            let pending = outbox.load();
            tasks.push(tokio::spawn(run_sink(
                t.id.clone(),
                t.sink,
                pending,
                outbox.clone(),
                rx,
                cancel.clone(),
            )));
            queues.push(Queue {
                id: t.id,
                min_severity: t.min_severity,
                tx,
                outbox,
            });
        }
        Dispatcher {
            queues,
            tasks,
            cancel,
        }
    }

    /// A dispatcher without sinks.
    pub fn none() -> Dispatcher {
        Dispatcher {
            queues: Vec::new(),
            tasks: Vec::new(),
            cancel: CancellationToken::new(),
        }
    }

    /// Queues an event for every sink that takes its severity: written to the sink's
    /// outbox first (so it survives a crash), then handed to its task. Never waits for
    /// a sink.
    pub fn send(&self, event: &AlertEvent) {
        for q in &self.queues {
            if event.severity < q.min_severity {
                continue;
            }
            q.outbox.append(std::slice::from_ref(event));
            if q.tx.send(event.clone()).is_err() {
                error!(sink = %q.id, alert_id = %event.alert_id, "the sink's task has ended; the event waits in its outbox for the next start");
            }
        }
    }

    /// Stops the sinks: each makes one last attempt (within `grace`) to deliver what
    /// it holds; anything undelivered stays in its outbox for the next start.
    pub async fn shutdown(self, grace: Duration) {
        drop(self.queues);
        self.cancel.cancel();
        let all = futures::future::join_all(self.tasks);
        if tokio::time::timeout(grace + Duration::from_secs(1), all)
            .await
            .is_err()
        {
            warn!("sinks did not finish within {grace:?}; their events stay in the outbox");
        }
    }
}

/// A sink's durable queue, `<state_dir>/outbox/<id>.jsonl`: every event handed to the
/// sink, in order, until the sink has accepted it.
pub struct Outbox {
    path: PathBuf,
    dead: PathBuf,
    /// Appends (from the dispatcher) and removals (from the sink's task) take turns.
    lock: std::sync::Mutex<()>,
}

impl Outbox {
    /// The outbox of sink `id`.
    pub fn new(state_dir: &Path, id: &str) -> Outbox {
        let dir = state_dir.join("outbox");
        Outbox {
            path: dir.join(format!("{id}.jsonl")),
            dead: dir.join(format!("{id}.dead.jsonl")),
            lock: std::sync::Mutex::new(()),
        }
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Events waiting (a corrupt line is logged and skipped).
    pub fn load(&self) -> Vec<AlertEvent> {
        let _g = self.guard();
        let Ok(text) = std::fs::read_to_string(&self.path) else {
            return Vec::new();
        };
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .filter_map(|l| match serde_json::from_str(l) {
                Ok(e) => Some(e),
                Err(e) => {
                    error!(outbox = %self.path.display(), "skipping an unreadable outbox line ({e}): {l}");
                    None
                }
            })
            .collect()
    }

    fn append_to(path: &Path, events: &[AlertEvent]) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        let mut text = String::new();
        for e in events {
            text.push_str(&serde_json::to_string(e).map_err(std::io::Error::other)?);
            text.push('\n');
        }
        f.write_all(text.as_bytes())?;
        f.sync_data()
    }

    /// Persists newly queued events.
    pub fn append(&self, events: &[AlertEvent]) {
        let _g = self.guard();
        if let Err(e) = Self::append_to(&self.path, events) {
            error!(outbox = %self.path.display(), "cannot persist queued alert events ({e}); they are kept in memory only");
        }
    }

    /// The first `n` events were delivered (or buried): drop them, keep the rest.
    pub fn remove_first(&self, n: usize) {
        let _g = self.guard();
        let rewrite = || -> std::io::Result<()> {
            let text = match std::fs::read_to_string(&self.path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            };
            let rest: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).skip(n).collect();
            if rest.is_empty() {
                return std::fs::remove_file(&self.path);
            }
            let tmp = self.path.with_extension("jsonl.tmp");
            std::fs::write(&tmp, rest.join("\n") + "\n")?;
            std::fs::rename(&tmp, &self.path)
        };
        if let Err(e) = rewrite() {
            error!(outbox = %self.path.display(), "cannot update the outbox ({e}); delivered events may be sent again");
        }
    }

    /// A batch no retry can deliver.
    pub fn bury(&self, events: &[AlertEvent]) {
        let _g = self.guard();
        if let Err(e) = Self::append_to(&self.dead, events) {
            error!(file = %self.dead.display(), "cannot write the dead-letter file ({e})");
        }
    }
}

async fn run_sink(
    id: String,
    sink: Result<Arc<dyn Sink>, BuildError>,
    mut pending: Vec<AlertEvent>,
    outbox: Arc<Outbox>,
    mut rx: mpsc::UnboundedReceiver<AlertEvent>,
    cancel: CancellationToken,
) {
    if !pending.is_empty() {
        info!(sink = %id, "{} alert events from before the restart are still to be delivered", pending.len());
    }
    let mut backoff = BACKOFF_START;
    let mut closed = false;
    loop {
        if pending.is_empty() {
            if closed {
                return;
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                e = rx.recv() => match e {
                    Some(e) => pending.push(e),
                    None => return,
                },
            }
            // Group a burst.
            let wait = sink.as_ref().map_or(Duration::ZERO, |s| s.group_wait());
            if !wait.is_zero() {
                let until = Instant::now() + wait;
                loop {
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = tokio::time::sleep_until(until) => break,
                        e = rx.recv() => match e {
                            Some(e) => pending.push(e),
                            None => break,
                        },
                    }
                }
            }
        }
        // Take whatever else is waiting.
        while let Ok(e) = rx.try_recv() {
            pending.push(e);
        }
        let result = match &sink {
            Err(e) => Err(crate::sinks::SinkError::retry(format!(
                "the sink could not be set up: {e}"
            ))),
            Ok(sink) => match tokio::time::timeout(DELIVERY_TIMEOUT, sink.deliver(&pending)).await {
                Ok(r) => r,
                Err(_) => Err(crate::sinks::SinkError::retry(format!(
                    "delivery took longer than {DELIVERY_TIMEOUT:?}"
                ))),
            },
        };
        match result {
            Ok(()) => {
                info!(sink = %id, events = pending.len(), "delivered {} alert events", pending.len());
                outbox.remove_first(pending.len());
                pending.clear();
                backoff = BACKOFF_START;
            }
            Err(e) if !e.retryable => {
                error!(sink = %id, events = pending.len(), "delivery refused for good, events moved to the dead-letter file: {e}");
                outbox.bury(&pending);
                outbox.remove_first(pending.len());
                pending.clear();
            }
            Err(e) => {
                if cancel.is_cancelled() {
                    warn!(sink = %id, "{} alert events stay in the outbox for the next start: {e}", pending.len());
                    return;
                }
                warn!(sink = %id, events = pending.len(), "delivery failed, retrying in {backoff:?}: {e}");
                let until = Instant::now() + backoff;
                backoff = (backoff * 2).min(BACKOFF_CAP);
                loop {
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = tokio::time::sleep_until(until) => break,
                        e = rx.recv(), if !closed => match e {
                            Some(e) => pending.push(e),
                            None => closed = true,
                        },
                    }
                }
            }
        }
        if cancel.is_cancelled() && pending.is_empty() {
            return;
        }
    }
}
