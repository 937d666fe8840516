//! One sink's task: gathers a batch (`group_wait`), delivers it (bounded by
//! [`DELIVERY_TIMEOUT`]), removes exactly the delivered lines from the outbox, retries
//! with backoff, buries what is refused for good, and keeps the sink's health.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::outbox::Outbox;
use crate::alert::AlertEvent;
use crate::plugin::BuildError;
use crate::sinks::health::SinkHealth;
use crate::sinks::{Sink, SinkError};

/// First retry delay.
pub const BACKOFF_START: Duration = Duration::from_secs(1);
/// Longest retry delay.
pub const BACKOFF_CAP: Duration = Duration::from_secs(300);
/// Longest one delivery may take before it counts as a retryable failure.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the task's first events come from.
pub(super) enum Start {
    /// Loaded from the outbox when the dispatcher started, before anything new was
    /// queued: the events left from before vitals started.
    Loaded(Vec<AlertEvent>),
    /// A reload changed the sink: its outbox is read once the sink it replaces has
    /// finished (so no event is delivered by both), and what was queued meanwhile —
    /// already in the outbox — is not taken twice.
    After(oneshot::Receiver<()>),
}

/// What identifies one event among the outbox's: at-least-once delivery dedups on it.
fn key(e: &AlertEvent) -> (String, &'static str, i64, bool) {
    (
        e.alert_id.clone(),
        e.state.as_str(),
        e.event_at.timestamp_micros(),
        e.reminder,
    )
}

/// The sink's task.
pub(super) struct Task {
    pub id: String,
    pub sink: Result<Arc<dyn Sink>, BuildError>,
    pub outbox: Arc<Outbox>,
    pub health: Arc<SinkHealth>,
    pub rx: mpsc::UnboundedReceiver<AlertEvent>,
    pub cancel: CancellationToken,
}

impl Task {
    pub(super) async fn run(mut self, start: Start) {
        let Task {
            id,
            sink,
            outbox,
            health,
            ..
        } = &self;
        let (id, outbox, health) = (id.clone(), outbox.clone(), health.clone());
        if let Err(e) = sink {
            health.failed(&format!("the sink could not be set up: {e}"));
        }
        let mut pending = match start {
            Start::Loaded(events) => {
                if !events.is_empty() {
                    info!(sink = %id, "{} alert events from before the restart are still to be delivered", events.len());
                }
                health.queued(events.len() as u64);
                events
            }
            Start::After(done) => {
                tokio::select! {
                    _ = done => {}
                    _ = self.cancel.cancelled() => return,
                }
                let loaded = outbox.load();
                // Every event queued meanwhile was written to the outbox before it was
                // sent here: the first of each that arrives is already loaded.
                let mut seen: HashMap<_, usize> = HashMap::new();
                for e in &loaded {
                    *seen.entry(key(e)).or_default() += 1;
                }
                let mut pending = loaded;
                while let Ok(e) = self.rx.try_recv() {
                    match seen.get_mut(&key(&e)) {
                        Some(n) if *n > 0 => *n -= 1,
                        _ => pending.push(e),
                    }
                }
                debug!(sink = %id, "the reloaded sink takes over {} queued events", pending.len());
                pending
            }
        };
        health.dead_in_file(outbox.dead_count());
        self.deliver_loop(&id, &outbox, &health, &mut pending).await;
    }

    async fn deliver_loop(
        &mut self,
        id: &str,
        outbox: &Outbox,
        health: &SinkHealth,
        pending: &mut Vec<AlertEvent>,
    ) {
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
                    e = self.rx.recv() => match e {
                        Some(e) => pending.push(e),
                        None => return,
                    },
                    _ = self.cancel.cancelled() => return,
                }
                // Group a burst.
                let wait = self.sink.as_ref().map_or(Duration::ZERO, |s| s.group_wait());
                if !wait.is_zero() {
                    let until = Instant::now() + wait;
                    loop {
                        tokio::select! {
                            _ = self.cancel.cancelled() => break,
                            _ = tokio::time::sleep_until(until) => break,
                            e = self.rx.recv() => match e {
                                Some(e) => pending.push(e),
                                None => break,
                            },
                        }
                    }
                }
            }
            // Take whatever else is waiting.
            while let Ok(e) = self.rx.try_recv() {
                pending.push(e);
            }
            let result = match &self.sink {
                Err(e) => Err(SinkError::retry(format!("the sink could not be set up: {e}"))),
                Ok(sink) => {
                    // A delivery stuck on hung storage is waited for by the next
                    // attempts rather than joined by more (at most one blocked delivery
                    // per sink).
                    let (sink, batch) = (sink.clone(), pending.clone());
                    let attempt = async move { sink.deliver(&batch).await };
                    match deliveries.run(DELIVERY_TIMEOUT, attempt).await {
                        Ok(r) => r,
                        Err(hung) => Err(SinkError::retry(format!(
                            "a delivery has not returned for {}: is the sink's storage or network hung?",
                            crate::duration::format(Duration::from_secs(hung.stuck_for.as_secs()))
                        ))),
                    }
                }
            };
            let n = pending.len() as u64;
            match result {
                Ok(()) => {
                    info!(sink = %id, events = n, "delivered {n} alert events");
                    outbox.remove_first(pending.len());
                    pending.clear();
                    health.dequeued(n);
                    health.succeeded();
                    backoff = BACKOFF_START;
                }
                Err(e) if !e.retryable => {
                    let why = crate::text::visible(&e.message);
                    error!(sink = %id, events = n, "delivery refused for good, events moved to the dead-letter file: {why}");
                    outbox.bury(pending);
                    outbox.remove_first(pending.len());
                    pending.clear();
                    health.dequeued(n);
                    health.failed(&format!(
                        "refused for good, {n} events dead-lettered: {}",
                        e.message
                    ));
                    health.buried(n, outbox.dead_count());
                }
                Err(e) => {
                    health.failed(&e.message);
                    let why = crate::text::visible(&e.message);
                    if self.cancel.is_cancelled() {
                        warn!(sink = %id, "{n} alert events stay in the outbox for the next start: {why}");
                        return;
                    }
                    warn!(sink = %id, events = n, "delivery failed, retrying in {backoff:?}: {why}");
                    let until = Instant::now() + backoff;
                    backoff = next_backoff(backoff);
                    loop {
                        tokio::select! {
                            _ = self.cancel.cancelled() => break,
                            _ = tokio::time::sleep_until(until) => break,
                            e = self.rx.recv(), if !closed => match e {
                                Some(e) => pending.push(e),
                                None => closed = true,
                            },
                        }
                    }
                }
            }
        }
    }
}

/// The wait after a retryable failure that waited `backoff`: doubled, at most
/// [`BACKOFF_CAP`].
pub(super) fn next_backoff(backoff: Duration) -> Duration {
    (backoff * 2).min(BACKOFF_CAP)
}
