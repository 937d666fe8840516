//! Dispatch under paused time: retries with backoff until delivered, the durable
//! outbox across a restart, dead letters, isolation between sinks, grouping and
//! severity filters.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use tokio::time::Instant;
use vitals::alert::{AlertEvent, AlertState, Severity};
use vitals::dispatch::{Dispatcher, Outbox, SinkInstance};
use vitals::sinks::{Sink, SinkError};

fn event(n: usize, severity: Severity) -> AlertEvent {
    let now = Utc::now();
    AlertEvent {
        alert_id: format!("rule.check.{n}"),
        rule: "rule".into(),
        check_id: "check".into(),
        severity,
        state: AlertState::Firing,
        message: format!("event {n}"),
        value: Some(n as f64),
        started_at: now,
        event_at: now,
        host: "test".into(),
        reminder: false,
        label: None,
    }
}

/// Fails `failures` times (retryable, or permanently), then accepts.
#[derive(Default)]
struct Recorder {
    failures: AtomicUsize,
    permanent: bool,
    group_wait: Duration,
    /// How long each delivery takes.
    delay: Duration,
    attempts: Mutex<Vec<Instant>>,
    delivered: Mutex<Vec<Vec<String>>>,
}

#[async_trait]
impl Sink for Recorder {
    fn group_wait(&self) -> Duration {
        self.group_wait
    }
    async fn deliver(&self, events: &[AlertEvent]) -> Result<(), SinkError> {
        self.attempts.lock().unwrap().push(Instant::now());
        tokio::time::sleep(self.delay).await;
        if self.failures.load(Ordering::SeqCst) > 0 {
            self.failures.fetch_sub(1, Ordering::SeqCst);
            return Err(if self.permanent {
                SinkError::permanent("550 no such mailbox")
            } else {
                SinkError::retry("connection refused")
            });
        }
        self.delivered
            .lock()
            .unwrap()
            .push(events.iter().map(|e| e.alert_id.clone()).collect());
        Ok(())
    }
}

struct Hang;

#[async_trait]
impl Sink for Hang {
    async fn deliver(&self, _: &[AlertEvent]) -> Result<(), SinkError> {
        std::future::pending().await
    }
}

fn target(id: &str, sink: Arc<dyn Sink>, min: Severity) -> SinkInstance {
    SinkInstance::new(id, sink).with_min_severity(min)
}

fn outbox_lines(dir: &Path, id: &str) -> usize {
    std::fs::read_to_string(dir.join("outbox").join(format!("{id}.jsonl")))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

async fn until(what: &str, f: impl Fn() -> bool) {
    for _ in 0..100_000 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never: {what}");
}

#[tokio::test(start_paused = true)]
async fn retryable_failures_back_off_and_deliver_in_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(Recorder {
        failures: AtomicUsize::new(3),
        ..Default::default()
    });
    let d = Dispatcher::start(vec![target("mail", sink.clone(), Severity::Info)], dir.path());
    let t0 = Instant::now();
    d.send(&event(1, Severity::Critical));
    until("delivered", || !sink.delivered.lock().unwrap().is_empty()).await;
    let attempts: Vec<Duration> = sink.attempts.lock().unwrap().iter().map(|t| *t - t0).collect();
    let secs: Vec<u64> = attempts.iter().map(|d| d.as_secs()).collect();
    assert_eq!(secs, [0, 1, 3, 7], "backoff 1 s, 2 s, 4 s: {attempts:?}");
    assert_eq!(*sink.delivered.lock().unwrap(), [vec!["rule.check.1".to_owned()]]);
    assert_eq!(
        outbox_lines(dir.path(), "mail"),
        0,
        "delivered events leave the outbox"
    );
    d.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn undelivered_events_survive_a_restart_in_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let down = Arc::new(Recorder {
        failures: AtomicUsize::new(usize::MAX),
        ..Default::default()
    });
    let d = Dispatcher::start(vec![target("mail", down.clone(), Severity::Info)], dir.path());
    d.send(&event(1, Severity::Warning));
    d.send(&event(2, Severity::Critical));
    until("two attempts", || down.attempts.lock().unwrap().len() >= 2).await;
    assert_eq!(outbox_lines(dir.path(), "mail"), 2);
    d.shutdown(Duration::from_secs(1)).await;
    assert_eq!(outbox_lines(dir.path(), "mail"), 2, "nothing is lost at shutdown");

    let up = Arc::new(Recorder::default());
    let d = Dispatcher::start(vec![target("mail", up.clone(), Severity::Info)], dir.path());
    until("delivered after the restart", || {
        !up.delivered.lock().unwrap().is_empty()
    })
    .await;
    assert_eq!(
        *up.delivered.lock().unwrap(),
        [vec!["rule.check.1".to_owned(), "rule.check.2".to_owned()]]
    );
    assert_eq!(outbox_lines(dir.path(), "mail"), 0);
    d.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn a_permanent_failure_goes_to_the_dead_letter_file_and_the_queue_moves_on() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(Recorder {
        failures: AtomicUsize::new(1),
        permanent: true,
        ..Default::default()
    });
    let d = Dispatcher::start(vec![target("mail", sink.clone(), Severity::Info)], dir.path());
    d.send(&event(1, Severity::Warning));
    until("first attempt", || sink.attempts.lock().unwrap().len() == 1).await;
    d.send(&event(2, Severity::Warning));
    until("second delivered", || !sink.delivered.lock().unwrap().is_empty()).await;
    assert_eq!(*sink.delivered.lock().unwrap(), [vec!["rule.check.2".to_owned()]]);
    let dead = std::fs::read_to_string(dir.path().join("outbox/mail.dead.jsonl")).unwrap();
    assert_eq!(dead.lines().count(), 1);
    assert!(dead.contains("rule.check.1"));
    d.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn a_hung_sink_delays_no_other_sink() {
    let dir = tempfile::tempdir().unwrap();
    let fast = Arc::new(Recorder::default());
    let d = Dispatcher::start(
        vec![
            target("hung", Arc::new(Hang), Severity::Info),
            target("fast", fast.clone(), Severity::Info),
        ],
        dir.path(),
    );
    let t0 = Instant::now();
    for n in 0..3 {
        d.send(&event(n, Severity::Critical));
        until("delivered", || fast.delivered.lock().unwrap().len() == n + 1).await;
    }
    assert!(
        Instant::now() - t0 < Duration::from_millis(100),
        "the fast sink waited for the hung one"
    );
    // The hung sink's events are kept for it.
    assert_eq!(outbox_lines(dir.path(), "hung"), 3);
    d.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_delivers_what_was_queued_during_a_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let table = Arc::new(Recorder {
        delay: Duration::from_millis(300),
        ..Default::default()
    });
    let d = Dispatcher::start(vec![target("alerts", table.clone(), Severity::Info)], dir.path());
    d.send(&event(0, Severity::Warning));
    until("the first delivery started", || {
        !table.attempts.lock().unwrap().is_empty()
    })
    .await;
    // Queued while the first delivery runs, then the stop.
    for n in 1..5 {
        d.send(&event(n, Severity::Warning));
    }
    d.shutdown(Duration::from_secs(5)).await;
    let delivered: usize = table.delivered.lock().unwrap().iter().map(Vec::len).sum();
    assert_eq!(
        delivered, 5,
        "everything queued before the stop is delivered within the grace"
    );
    assert_eq!(outbox_lines(dir.path(), "alerts"), 0);
}

#[tokio::test(start_paused = true)]
async fn a_storm_within_group_wait_is_one_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let mail = Arc::new(Recorder {
        group_wait: Duration::from_secs(10),
        ..Default::default()
    });
    let d = Dispatcher::start(vec![target("mail", mail.clone(), Severity::Info)], dir.path());
    for n in 0..100 {
        d.send(&event(n, Severity::Warning));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    until("delivered", || !mail.delivered.lock().unwrap().is_empty()).await;
    let delivered = mail.delivered.lock().unwrap().clone();
    assert_eq!(delivered.len(), 1, "one delivery for the whole storm");
    assert_eq!(delivered[0].len(), 100);
    d.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn min_severity_filters_per_sink() {
    let dir = tempfile::tempdir().unwrap();
    let all = Arc::new(Recorder::default());
    let pager = Arc::new(Recorder::default());
    let d = Dispatcher::start(
        vec![
            target("all", all.clone(), Severity::Info),
            target("pager", pager.clone(), Severity::Critical),
        ],
        dir.path(),
    );
    d.send(&event(1, Severity::Info));
    d.send(&event(2, Severity::Critical));
    until("all delivered", || {
        all.delivered.lock().unwrap().concat().len() == 2
    })
    .await;
    until("pager delivered", || !pager.delivered.lock().unwrap().is_empty()).await;
    assert_eq!(pager.delivered.lock().unwrap().concat(), ["rule.check.2"]);
    d.shutdown(Duration::from_secs(1)).await;
}

#[test]
fn a_corrupt_outbox_line_is_skipped_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::new(dir.path(), "mail");
    outbox.append(&[event(1, Severity::Info)]);
    let path = dir.path().join("outbox/mail.jsonl");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("{truncated\n");
    std::fs::write(&path, text).unwrap();
    outbox.append(&[event(2, Severity::Info)]);
    let ids: Vec<String> = outbox.load().into_iter().map(|e| e.alert_id).collect();
    assert_eq!(ids, ["rule.check.1", "rule.check.2"]);
}
