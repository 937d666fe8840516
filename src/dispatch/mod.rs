//! Dispatch: every sink gets its own queue and task, so a slow or dead sink never delays
//! the runner, the rules or another sink. Events wait in a durable outbox (one JSON
//! line each, in `[server] state_dir`) until their sink has accepted them, so delivery
//! is at least once across outages and restarts. Retryable failures back off
//! exponentially (1 s doubling to 5 min) and retry until delivered; permanent ones move
//! the batch to a dead-letter file and say so in the log.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::alert::{AlertEvent, Severity};
mod outbox;

pub use outbox::Outbox;

use crate::config::SinkSpec;
use crate::plugin::BuildError;
use crate::sinks::{Sink, SinkContext, Takes};

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
    /// Which events its kind takes.
    pub takes: Takes,
    /// The sink.
    pub sink: Result<Arc<dyn Sink>, BuildError>,
}

impl SinkInstance {
    /// Builds a configured sink (a build error is kept and reported on each attempt),
    /// outside a daemon: vitals counts as always healthy.
    pub fn build(spec: &SinkSpec, config_dir: &Path) -> SinkInstance {
        Self::build_with(spec, config_dir, crate::health::Health::always())
    }

    /// Builds a configured sink that can see the daemon's health.
    pub fn build_with(spec: &SinkSpec, config_dir: &Path, health: crate::health::Health) -> SinkInstance {
        let cx = SinkContext {
            id: spec.id.clone(),
            config_dir: config_dir.to_owned(),
            health,
        };
        SinkInstance {
            id: spec.id.clone(),
            min_severity: spec.min_severity,
            takes: spec.params.takes(),
            sink: spec.params.build(&cx),
        }
    }
}

struct Queue {
    id: String,
    min_severity: Severity,
    takes: Takes,
    tx: mpsc::UnboundedSender<AlertEvent>,
    outbox: Arc<Outbox>,
}

/// The running fan-out.
pub struct Dispatcher {
    queues: Vec<Queue>,
    /// Sinks that take no events (a heartbeat): kept alive, never queued to.
    quiet: Vec<Arc<dyn Sink>>,
    tasks: Vec<JoinHandle<()>>,
    cancel: CancellationToken,
}

impl Dispatcher {
    /// Starts one task per sink. `state_dir` holds the outboxes.
    pub fn start(targets: Vec<SinkInstance>, state_dir: &Path) -> Dispatcher {
        let cancel = CancellationToken::new();
        let mut queues = Vec::new();
        let mut tasks = Vec::new();
        let mut quiet = Vec::new();
        for t in targets {
            if t.takes == Takes::Nothing {
                match t.sink {
                    Ok(sink) => quiet.push(sink),
                    Err(e) => {
                        error!(sink = %t.id, "the sink could not be set up: {}", crate::text::visible(&e.to_string()))
                    }
                }
                continue;
            }
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
                takes: t.takes,
                tx,
                outbox,
            });
        }
        Dispatcher {
            queues,
            quiet,
            tasks,
            cancel,
        }
    }

    /// A dispatcher without sinks.
    pub fn none() -> Dispatcher {
        Dispatcher {
            queues: Vec::new(),
            quiet: Vec::new(),
            tasks: Vec::new(),
            cancel: CancellationToken::new(),
        }
    }

    /// Queues an event for every sink that takes its severity: written to the sink's
    /// outbox first (so it survives a crash), then handed to its task. Never waits for
    /// a sink.
    pub fn send(&self, event: &AlertEvent) {
        for q in &self.queues {
            if event.severity < q.min_severity || !q.takes.takes(event) {
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
        drop(self.quiet);
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
    let deliveries = crate::bounded::OneAtATime::default();
    loop {
        if pending.is_empty() {
            if closed {
                return;
            }
            // Events already queued go first: a shutdown delivers them within its
            // grace rather than leaving them to the next start.
            tokio::select! {
                biased;
                e = rx.recv() => match e {
                    Some(e) => pending.push(e),
                    None => return,
                },
                _ = cancel.cancelled() => return,
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
            Ok(sink) => {
                // A delivery stuck on hung storage is waited for by the next attempts
                // rather than joined by more (at most one blocked delivery per sink).
                let (sink, batch) = (sink.clone(), pending.clone());
                let attempt = async move { sink.deliver(&batch).await };
                match deliveries.run(DELIVERY_TIMEOUT, attempt).await {
                    Ok(r) => r,
                    Err(hung) => Err(crate::sinks::SinkError::retry(format!(
                        "a delivery has not returned for {}: is the sink's storage or network hung?",
                        crate::duration::format(std::time::Duration::from_secs(hung.stuck_for.as_secs()))
                    ))),
                }
            }
        };
        match result {
            Ok(()) => {
                info!(sink = %id, events = pending.len(), "delivered {} alert events", pending.len());
                outbox.remove_first(pending.len());
                pending.clear();
                backoff = BACKOFF_START;
            }
            Err(e) if !e.retryable => {
                error!(sink = %id, events = pending.len(), "delivery refused for good, events moved to the dead-letter file: {}", crate::text::visible(&e.message));
                outbox.bury(&pending);
                outbox.remove_first(pending.len());
                pending.clear();
            }
            Err(e) => {
                if cancel.is_cancelled() {
                    warn!(sink = %id, "{} alert events stay in the outbox for the next start: {}", pending.len(), crate::text::visible(&e.message));
                    return;
                }
                warn!(sink = %id, events = pending.len(), "delivery failed, retrying in {backoff:?}: {}", crate::text::visible(&e.message));
                let until = Instant::now() + backoff;
                backoff = next_backoff(backoff);
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
    }
}

/// The wait after a retryable failure that waited `backoff`: doubled, at most
/// [`BACKOFF_CAP`].
fn next_backoff(backoff: Duration) -> Duration {
    (backoff * 2).min(BACKOFF_CAP)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use chrono::Utc;

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
            vec![SinkInstance {
                takes: Takes::All,
                id: "s".into(),
                min_severity: Severity::Warning,
                sink: Ok(sink.clone()),
            }],
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
                takes: Takes::All,
                id: "broken".into(),
                min_severity: Severity::Info,
                sink: Err(BuildError::Environment("no runtime")),
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
