//! Dispatch: every sink gets its own queue and task, so a slow or dead sink never delays
//! the runner, the rules or another sink. Events wait in a durable outbox (one JSON
//! line each, in `[server] state_dir`) until their sink has accepted them, so delivery
//! is at least once across outages and restarts. Retryable failures back off
//! exponentially (1 s doubling to 5 min) and retry until delivered; permanent ones move
//! the batch to a dead-letter file and say so in the log. Each sink's health is kept
//! ([`health`]) and shown; a reload keeps every sink whose configuration did not change
//! exactly as it runs, and a changed one takes over its outbox only once the sink it
//! replaces has finished.

mod deliver;
mod outbox;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

pub use crate::sinks::health::{HealthReport, SinkHealth, SinkState, SinkStatus};
pub use deliver::{BACKOFF_CAP, BACKOFF_START, DELIVERY_TIMEOUT};
use deliver::{Start, Task};
pub use outbox::Outbox;

use crate::alert::{AlertEvent, Severity};
use crate::config::SinkSpec;
use crate::plugin::BuildError;
use crate::sinks::{Sink, SinkContext, SinkEnv, Takes};

/// The name of the built-in rule that pages when a sink has been failing for its
/// `failing_after`; its alerts are about the check id `sink:<id>`.
pub const SINK_FAILING: &str = "sink_failing";

/// The check id `sink_failing` uses for sink `id`.
pub fn sink_check_id(id: &str) -> String {
    format!("sink:{id}")
}

/// A configured sink, built: the sink counterpart of [`crate::runner::Instance`]. A
/// build error is kept and reported on each delivery attempt (the events wait in the
/// outbox until a reload fixes it).
pub struct SinkInstance {
    /// Its id.
    pub id: String,
    /// Its kind.
    pub kind: String,
    /// Events below this severity are not sent to it.
    pub min_severity: Severity,
    /// Which events its kind takes.
    pub takes: Takes,
    /// Its configuration's fingerprint (a reload keeps a sink whose fingerprint is
    /// unchanged).
    pub fingerprint: String,
    /// How long it may fail before `sink_failing` pages.
    pub failing_after: Option<Duration>,
    /// Its health (the sink reports work of its own there too).
    pub health: Arc<SinkHealth>,
    /// The sink.
    pub sink: Result<Arc<dyn Sink>, BuildError>,
}

impl SinkInstance {
    /// A sink built in code (tests, benchmarks): takes every event of every severity.
    pub fn new(id: &str, sink: Arc<dyn Sink>) -> SinkInstance {
        SinkInstance {
            id: id.to_owned(),
            kind: "custom".to_owned(),
            min_severity: Severity::Info,
            takes: Takes::All,
            fingerprint: String::new(),
            failing_after: None,
            health: SinkHealth::new(id, "custom", None),
            sink: Ok(sink),
        }
    }

    /// The same sink, taking only events of `min` or above.
    pub fn with_min_severity(mut self, min: Severity) -> SinkInstance {
        self.min_severity = min;
        self
    }

    /// Builds a configured sink (a build error is kept and reported on each attempt),
    /// outside a daemon: vitals counts as always healthy.
    pub fn build(spec: &SinkSpec, config_dir: &Path) -> SinkInstance {
        Self::build_with(spec, &SinkEnv::standalone(config_dir), None)
    }

    /// Builds a configured sink in a daemon's surroundings, reporting its health to
    /// `health` (a new one when `None`).
    pub fn build_with(spec: &SinkSpec, env: &SinkEnv, health: Option<Arc<SinkHealth>>) -> SinkInstance {
        let health = health.unwrap_or_else(|| SinkHealth::new(&spec.id, spec.kind, spec.failing_after));
        health.reconfigure(spec.kind, spec.failing_after);
        let cx = SinkContext {
            id: spec.id.clone(),
            config_dir: env.config_dir.clone(),
            health: env.liveness.clone(),
            zone: env.zone,
            public_url: env.public_url.clone(),
            name: env.name.clone(),
            report: HealthReport::to(health.clone()),
        };
        SinkInstance {
            id: spec.id.clone(),
            kind: spec.kind.to_owned(),
            min_severity: spec.min_severity,
            takes: spec.params.takes(),
            fingerprint: spec.fingerprint(),
            failing_after: spec.failing_after,
            sink: spec.params.build(&cx),
            health,
        }
    }
}

/// One running sink.
struct Running {
    fingerprint: String,
    min_severity: Severity,
    takes: Takes,
    /// Its queue; none for a sink that takes no events.
    tx: Option<mpsc::UnboundedSender<AlertEvent>>,
    task: Option<JoinHandle<()>>,
    cancel: CancellationToken,
    outbox: Arc<Outbox>,
    health: Arc<SinkHealth>,
    /// A sink that takes no events is kept alive here (its own task pings).
    _quiet: Option<Arc<dyn Sink>>,
}

impl Running {
    fn start(t: SinkInstance, outbox: Arc<Outbox>, start: Start) -> Running {
        let cancel = CancellationToken::new();
        if t.takes == Takes::Nothing {
            let quiet = match t.sink {
                Ok(sink) => Some(sink),
                Err(e) => {
                    let why = format!("the sink could not be set up: {e}");
                    error!(sink = %t.id, "{}", crate::text::visible(&why));
                    t.health.failed(&why);
                    None
                }
            };
            return Running {
                fingerprint: t.fingerprint,
                min_severity: t.min_severity,
                takes: t.takes,
                tx: None,
                task: None,
                cancel,
                outbox,
                health: t.health,
                _quiet: quiet,
            };
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let task = Task {
            id: t.id.clone(),
            sink: t.sink,
            outbox: outbox.clone(),
            health: t.health.clone(),
            rx,
            cancel: cancel.clone(),
        };
        Running {
            fingerprint: t.fingerprint,
            min_severity: t.min_severity,
            takes: t.takes,
            tx: Some(tx),
            task: Some(tokio::spawn(task.run(start))),
            cancel,
            outbox,
            health: t.health,
            _quiet: None,
        }
    }

    /// Stops it: one last attempt (within `grace`) to deliver what it holds; anything
    /// undelivered stays in its outbox.
    async fn stop(mut self, grace: Duration) -> bool {
        self.tx = None;
        self.cancel.cancel();
        match self.task.take() {
            Some(task) => tokio::time::timeout(grace + Duration::from_secs(1), task)
                .await
                .is_ok(),
            None => true,
        }
    }
}

/// The running fan-out.
pub struct Dispatcher {
    sinks: BTreeMap<String, Running>,
    state_dir: PathBuf,
}

/// Sinks a reload retired: removed ones, and changed ones whose replacement waits for
/// them. [`Retired::shutdown`] stops them (outside any lock: it awaits).
#[must_use = "retired sinks must be shut down, or their replacements never start"]
pub struct Retired(Vec<(String, Running, Option<oneshot::Sender<()>>)>);

impl Retired {
    /// Stops each within `grace`, then lets its replacement take over its outbox.
    pub async fn shutdown(self, grace: Duration) {
        let stops = self.0.into_iter().map(|(id, running, then)| async move {
            if !running.stop(grace).await {
                warn!(sink = %id, "the sink did not finish within {grace:?}; its events stay in the outbox");
            }
            if let Some(then) = then {
                let _ = then.send(());
            }
        });
        futures::future::join_all(stops).await;
    }
}

impl Dispatcher {
    /// Starts one task per sink. `state_dir` holds the outboxes.
    pub fn start(targets: Vec<SinkInstance>, state_dir: &Path) -> Dispatcher {
        let mut sinks = BTreeMap::new();
        for t in targets {
            let outbox = Arc::new(Outbox::new(state_dir, &t.id));
            // Read before anything new is queued, so an event is never taken twice.
            let pending = if t.takes == Takes::Nothing {
                Vec::new()
            } else {
                outbox.load()
            };
            sinks.insert(t.id.clone(), Running::start(t, outbox, Start::Loaded(pending)));
        }
        Dispatcher {
            sinks,
            state_dir: state_dir.to_owned(),
        }
    }

    /// A dispatcher without sinks.
    pub fn none() -> Dispatcher {
        Dispatcher {
            sinks: BTreeMap::new(),
            state_dir: PathBuf::new(),
        }
    }

    /// Takes a reloaded config's sinks, built with `build` (given the health of the
    /// sink of the same id, when there is one): an unchanged sink keeps running as it
    /// is (same task, same connection, nothing rebuilt, nothing replayed); a changed one
    /// starts anew once the old one has finished (it takes over the outbox then); a
    /// removed one stops. Returns what to stop.
    pub fn apply(
        &mut self,
        specs: &[SinkSpec],
        mut build: impl FnMut(&SinkSpec, Option<Arc<SinkHealth>>) -> SinkInstance,
    ) -> Retired {
        let mut retired = Vec::new();
        let mut next = BTreeMap::new();
        for spec in specs {
            let instance = match self.sinks.remove(&spec.id) {
                Some(mut r) if r.fingerprint == spec.fingerprint() => {
                    r.health.reconfigure(spec.kind, spec.failing_after);
                    r.min_severity = spec.min_severity;
                    next.insert(spec.id.clone(), r);
                    continue;
                }
                Some(old) => {
                    let t = build(spec, Some(old.health.clone()));
                    let (then, after) = oneshot::channel();
                    let outbox = old.outbox.clone();
                    retired.push((spec.id.clone(), old, Some(then)));
                    Running::start(t, outbox, Start::After(after))
                }
                None => {
                    let t = build(spec, None);
                    let outbox = Arc::new(Outbox::new(&self.state_dir, &spec.id));
                    let pending = if t.takes == Takes::Nothing {
                        Vec::new()
                    } else {
                        outbox.load()
                    };
                    Running::start(t, outbox, Start::Loaded(pending))
                }
            };
            next.insert(spec.id.clone(), instance);
        }
        retired.extend(
            std::mem::take(&mut self.sinks)
                .into_iter()
                .map(|(id, r)| (id, r, None)),
        );
        self.sinks = next;
        Retired(retired)
    }

    /// Queues an event for every sink that takes it (its kind takes it, it meets the
    /// sink's `min_severity`, and it is not the sink's own `sink_failing` alert): written
    /// to the sink's outbox first (so it survives a crash), then handed to its task.
    /// Never waits for a sink.
    pub fn send(&self, event: &AlertEvent) {
        for (id, s) in &self.sinks {
            let Some(tx) = &s.tx else { continue };
            if event.severity < s.min_severity || !s.takes.takes(event) {
                continue;
            }
            if event.rule == SINK_FAILING && event.check_id == sink_check_id(id) {
                continue;
            }
            s.outbox.append(std::slice::from_ref(event));
            s.health.queued(1);
            if tx.send(event.clone()).is_err() {
                error!(sink = %id, alert_id = %event.alert_id, "the sink's task has ended; the event waits in its outbox for the next start");
            }
        }
    }

    /// Every sink's health, by id.
    pub fn statuses(&self) -> Vec<SinkStatus> {
        self.sinks.values().map(|s| s.health.status()).collect()
    }

    /// Sends sink `id`'s dead letters again: they go back into its outbox and queue.
    /// Returns how many.
    pub fn retry_dead(&self, id: &str) -> Result<usize, String> {
        let s = self.sinks.get(id).ok_or_else(|| {
            let known: Vec<&str> = self.sinks.keys().map(String::as_str).collect();
            format!(
                "no sink `{id}`{}; configured sinks: {}",
                crate::plugin::suggest(id, known.iter().copied()),
                known.join(", ")
            )
        })?;
        let Some(tx) = &s.tx else {
            return Err(format!("sink `{id}` takes no events: it has no dead letters"));
        };
        let events = s
            .outbox
            .revive()
            .map_err(|e| format!("cannot move the dead letters of `{id}` back: {e}"))?;
        s.health.dead_in_file(0);
        s.health.queued(events.len() as u64);
        for e in &events {
            let _ = tx.send(e.clone());
        }
        Ok(events.len())
    }

    /// Stops the sinks: each makes one last attempt (within `grace`) to deliver what
    /// it holds; anything undelivered stays in its outbox for the next start.
    pub async fn shutdown(self, grace: Duration) {
        Retired(self.sinks.into_iter().map(|(id, r)| (id, r, None)).collect())
            .shutdown(grace)
            .await;
    }
}

/// Moves sink `id`'s dead letters back into its outbox in `state_dir`, for a vitals
/// that is not running (the next start delivers them). Returns how many.
pub fn revive_offline(state_dir: &Path, id: &str) -> std::io::Result<usize> {
    Outbox::new(state_dir, id).revive().map(|e| e.len())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use chrono::Utc;

    use tokio::time::Instant;

    use super::deliver::next_backoff;
    use super::*;
    use crate::alert::AlertState;
    use crate::sinks::SinkError;

    fn event(n: usize, severity: Severity) -> AlertEvent {
        AlertEvent {
            alert_id: format!("r.c.{n}"),
            rule: "r".into(),
            check_id: "c".into(),
            severity,
            state: AlertState::Firing,
            message: format!("event {n}"),
            value: None,
            started_at: Utc::now(),
            event_at: Utc::now(),
            host: "h".into(),
            reminder: false,
            label: None,
        }
    }

    /// Fails (retryably) its first `failures` deliveries, recording when each attempt
    /// came and what it carried.
    struct Flaky {
        failures: usize,
        attempts: Mutex<Vec<(Instant, Vec<String>)>>,
    }

    #[async_trait]
    impl Sink for Flaky {
        async fn deliver(&self, events: &[AlertEvent]) -> Result<(), SinkError> {
            let mut a = self.attempts.lock().unwrap();
            a.push((
                Instant::now(),
                events.iter().map(|e| e.alert_id.clone()).collect(),
            ));
            if a.len() <= self.failures {
                Err(SinkError::retry("down"))
            } else {
                Ok(())
            }
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let mut d = BACKOFF_START;
        let mut waits = vec![d];
        for _ in 0..10 {
            d = next_backoff(d);
            waits.push(d);
        }
        assert_eq!(waits[..4], [1, 2, 4, 8].map(Duration::from_secs));
        assert_eq!(*waits.last().unwrap(), BACKOFF_CAP);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_sink_is_retried_with_backoff_and_the_outbox_empties_on_delivery() {
        let dir = tempfile::tempdir().unwrap();
        let sink = Arc::new(Flaky {
            failures: 3,
            attempts: Mutex::default(),
        });
        let d = Dispatcher::start(
            vec![SinkInstance::new("s", sink.clone()).with_min_severity(Severity::Warning)],
            dir.path(),
        );
        d.send(&event(1, Severity::Info));
        d.send(&event(2, Severity::Critical));
        let outbox = Outbox::new(dir.path(), "s");
        assert_eq!(outbox.load().len(), 1, "below min_severity: not queued");
        while sink.attempts.lock().unwrap().len() < 4 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let attempts = sink.attempts.lock().unwrap().clone();
        let gaps: Vec<u64> = attempts.windows(2).map(|w| (w[1].0 - w[0].0).as_secs()).collect();
        assert_eq!(gaps, [1, 2, 4]);
        assert!(attempts.iter().all(|(_, ids)| ids == &["r.c.2"]));
        // Delivered: removed from the outbox.
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(outbox.load().is_empty());
        d.shutdown(Duration::from_secs(1)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_sink_that_cannot_be_built_keeps_its_events() {
        let dir = tempfile::tempdir().unwrap();
        let d = Dispatcher::start(
            vec![SinkInstance {
                sink: Err(BuildError::Environment("no runtime")),
                ..SinkInstance::new(
                    "broken",
                    Arc::new(Flaky {
                        failures: 0,
                        attempts: Mutex::default(),
                    }),
                )
            }],
            dir.path(),
        );
        d.send(&event(1, Severity::Warning));
        tokio::time::sleep(Duration::from_secs(10)).await;
        d.shutdown(Duration::from_secs(1)).await;
        let left = Outbox::new(dir.path(), "broken").load();
        assert_eq!(left.len(), 1, "waits for a reload that fixes the sink");
    }
}
