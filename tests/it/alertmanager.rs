//! The `alertmanager` sink against the real Alertmanager (Debian
//! `prometheus-alertmanager`), started on a free loopback port: the alert appears with
//! its labels, then resolves.

use std::time::Duration;

use vitals::alert::{AlertEvent, AlertState, Severity};
use vitals::config::parse;
use vitals::dispatch::{Dispatcher, SinkInstance};
use vitals::registry::registry;

use crate::support::alertmanager::Alertmanager;
use crate::support::free_port;

#[tokio::test]
async fn an_alert_appears_with_its_labels_then_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let am = Alertmanager::start_on(dir.path(), free_port()).await;
    let text = format!(
        "[sinks.am]\nkind = \"alertmanager\"\nurl = \"{}\"\npage_url = \"http://127.0.0.1:8686/\"\n",
        am.url
    );
    let config =
        parse(&dir.path().join("v.toml"), &text, registry().unwrap()).unwrap_or_else(|d| panic!("{d}"));
    let d = Dispatcher::start(
        vec![SinkInstance::build(&config.sinks[0], dir.path())],
        dir.path(),
    );

    let started = chrono::Utc::now();
    let mut e = AlertEvent {
        alert_id: "ib_disconnected.ib.1".into(),
        rule: "ib_disconnected".into(),
        check_id: "ib".into(),
        severity: Severity::Critical,
        state: AlertState::Firing,
        message: "IB disconnected: connection refused".into(),
        value: None,
        started_at: started,
        event_at: started,
        host: "desk".into(),
        reminder: false,
        label: None,
    };
    d.send(&e);
    let alerts = am.wait("the firing alert", |a| !a.is_empty()).await;
    assert_eq!(alerts.len(), 1);
    let a = &alerts[0];
    assert_eq!(a["labels"]["alertname"], "ib_disconnected");
    assert_eq!(a["labels"]["check"], "ib");
    assert_eq!(a["labels"]["severity"], "critical");
    assert_eq!(a["labels"]["source"], "vitals");
    assert_eq!(a["annotations"]["summary"], "IB disconnected: connection refused");
    assert_eq!(a["annotations"]["alert_id"], "ib_disconnected.ib.1");
    assert_eq!(a["status"]["state"], "active");
    assert_eq!(a["generatorURL"], "http://127.0.0.1:8686/");

    e.state = AlertState::Resolved;
    e.event_at = chrono::Utc::now();
    d.send(&e);
    am.wait("the alert resolved", |a| a.is_empty()).await;
    d.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn an_unreachable_alertmanager_is_retried_until_it_answers() {
    let dir = tempfile::tempdir().unwrap();
    // Reserve the address the Alertmanager will have, and start it only later.
    let am_dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let text = format!("[sinks.am]\nkind = \"alertmanager\"\nurl = \"http://127.0.0.1:{port}\"\n");
    let config =
        parse(&dir.path().join("v.toml"), &text, registry().unwrap()).unwrap_or_else(|d| panic!("{d}"));
    let d = Dispatcher::start(
        vec![SinkInstance::build(&config.sinks[0], dir.path())],
        dir.path(),
    );
    let now = chrono::Utc::now();
    d.send(&AlertEvent {
        alert_id: "system_critical.disk.1".into(),
        rule: "system_critical".into(),
        check_id: "disk".into(),
        severity: Severity::Warning,
        state: AlertState::Firing,
        message: "disk at 93%".into(),
        value: Some(93.0),
        started_at: now,
        event_at: now,
        host: "desk".into(),
        reminder: false,
        label: None,
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        dir.path().join("outbox/am.jsonl").exists(),
        "the undelivered event waits in the outbox"
    );
    // Now bring Alertmanager up on that port.
    let am = Alertmanager::start_on(am_dir.path(), port).await;
    let alerts = am.wait("the retried alert", |a| !a.is_empty()).await;
    assert_eq!(alerts[0]["labels"]["alertname"], "system_critical");
    for _ in 0..100 {
        if !dir.path().join("outbox/am.jsonl").exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !dir.path().join("outbox/am.jsonl").exists(),
        "delivered events leave the outbox"
    );
    d.shutdown(Duration::from_secs(2)).await;
}
