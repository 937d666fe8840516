//! Each sink's health, watched like everything else: whether its last delivery (or, for
//! a sink that says "alive", its last ping) worked, since when it fails and why, how
//! many events wait and how many were refused for good. The dispatcher's task writes
//! it, a sink with work of its own (a heartbeat's pings, Alertmanager's re-sends)
//! reports through [`HealthReport`], and `/api/status`, `/metrics`, the page and the
//! built-in rule `sink_failing` read it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// `ok` or `failing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkState {
    /// Its last attempt worked (or it has not had to try yet).
    Ok,
    /// Its last attempt failed: `last_error` says why, `since` since when.
    Failing,
}

/// A sink's health as `/api/status` shows it (`sinks`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SinkStatus {
    /// The sink's id.
    pub id: String,
    /// Its kind.
    pub kind: String,
    /// `ok` or `failing`.
    pub state: SinkState,
    /// Events waiting to be delivered.
    pub queued: u64,
    /// Why it fails (the last error, escaped; the URL masked), or why it last failed.
    pub last_error: Option<String>,
    /// When it entered its state.
    pub since: DateTime<Utc>,
    /// Events in its dead-letter file now (refused for good; `vitals outbox retry`
    /// sends them again).
    pub dead_lettered: u64,
    /// Events refused for good since vitals started.
    pub dead_lettered_total: u64,
    /// After how long failing it pages (`failing_after`); none: never.
    #[serde(skip)]
    pub failing_after: Option<Duration>,
}

#[derive(Debug)]
struct Inner {
    state: SinkState,
    since: DateTime<Utc>,
    last_error: Option<String>,
    dead_lettered: u64,
}

/// One sink's health, shared by its task, the sink itself and the readers; kept across
/// reloads for a sink of the same id.
#[derive(Debug)]
pub struct SinkHealth {
    id: String,
    kind: Mutex<String>,
    inner: Mutex<Inner>,
    queued: AtomicU64,
    dead_total: AtomicU64,
    failing_after: Mutex<Option<Duration>>,
}

impl SinkHealth {
    /// A sink that has not tried anything yet: ok.
    pub fn new(id: &str, kind: &str, failing_after: Option<Duration>) -> Arc<SinkHealth> {
        Arc::new(SinkHealth {
            id: id.to_owned(),
            kind: Mutex::new(kind.to_owned()),
            inner: Mutex::new(Inner {
                state: SinkState::Ok,
                since: Utc::now(),
                last_error: None,
                dead_lettered: 0,
            }),
            queued: AtomicU64::new(0),
            dead_total: AtomicU64::new(0),
            failing_after: Mutex::new(failing_after),
        })
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A reload kept the id and may have changed the rest.
    pub fn reconfigure(&self, kind: &str, failing_after: Option<Duration>) {
        kind.clone_into(&mut self.kind.lock().unwrap_or_else(|e| e.into_inner()));
        *self.failing_after.lock().unwrap_or_else(|e| e.into_inner()) = failing_after;
    }

    /// An attempt worked.
    pub fn succeeded(&self) {
        let mut i = self.inner();
        if i.state != SinkState::Ok {
            i.state = SinkState::Ok;
            i.since = Utc::now();
        }
    }

    /// An attempt failed: `error` (escaped for one line) says why.
    pub fn failed(&self, error: &str) {
        let mut i = self.inner();
        if i.state != SinkState::Failing {
            i.state = SinkState::Failing;
            i.since = Utc::now();
        }
        i.last_error = Some(crate::text::visible(error).into_owned());
    }

    /// `n` events were queued for it.
    pub fn queued(&self, n: u64) {
        self.queued.fetch_add(n, Ordering::Relaxed);
    }

    /// `n` queued events left the queue (delivered or refused).
    pub fn dequeued(&self, n: u64) {
        let _ = self
            .queued
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |q| {
                Some(q.saturating_sub(n))
            });
    }

    /// `n` events were refused for good (now `in_file` in the dead-letter file).
    pub fn buried(&self, n: u64, in_file: u64) {
        self.dead_total.fetch_add(n, Ordering::Relaxed);
        self.inner().dead_lettered = in_file;
    }

    /// The dead-letter file holds `n` events (read at start, emptied by a retry).
    pub fn dead_in_file(&self, n: u64) {
        self.inner().dead_lettered = n;
    }

    /// As `/api/status` shows it.
    pub fn status(&self) -> SinkStatus {
        let i = self.inner();
        SinkStatus {
            id: self.id.clone(),
            kind: self.kind.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            state: i.state,
            queued: self.queued.load(Ordering::Relaxed),
            last_error: i.last_error.clone(),
            since: i.since,
            dead_lettered: i.dead_lettered,
            dead_lettered_total: self.dead_total.load(Ordering::Relaxed),
            failing_after: *self.failing_after.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }
}

/// What a sink gets to report its health itself, for work outside deliveries: a
/// heartbeat's pings, Alertmanager's re-sends. Outside a dispatcher it reports nowhere.
#[derive(Debug, Clone, Default)]
pub struct HealthReport(Option<Arc<SinkHealth>>);

impl HealthReport {
    /// Reports to `health`.
    pub fn to(health: Arc<SinkHealth>) -> HealthReport {
        HealthReport(Some(health))
    }

    /// The work worked.
    pub fn ok(&self) {
        if let Some(h) = &self.0 {
            h.succeeded();
        }
    }

    /// The work failed, for this reason.
    pub fn failed(&self, error: &str) {
        if let Some(h) = &self.0 {
            h.failed(error);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sink_fails_since_its_first_failure_and_recovers_at_a_success() {
        let h = SinkHealth::new("mail", "email", Some(Duration::from_secs(120)));
        assert_eq!(h.status().state, SinkState::Ok);
        h.failed("connection refused\r\nforged");
        let first = h.status();
        assert_eq!(first.state, SinkState::Failing);
        assert_eq!(
            first.last_error.as_deref(),
            Some("connection refused\\r\\nforged")
        );
        h.failed("timed out");
        assert_eq!(h.status().since, first.since, "still failing since the first");
        h.queued(3);
        h.dequeued(5);
        assert_eq!(h.status().queued, 0);
        h.succeeded();
        let s = h.status();
        assert_eq!(s.state, SinkState::Ok);
        assert_eq!(
            s.last_error.as_deref(),
            Some("timed out"),
            "the last error stays readable"
        );
        h.buried(2, 2);
        assert_eq!((h.status().dead_lettered, h.status().dead_lettered_total), (2, 2));
    }
}
