//! `alertmanager`: posts alerts to a Prometheus Alertmanager (`/api/v2/alerts`), so
//! teams that already route pages through Alertmanager get vitals' alerts there.
//! Alertmanager expires an alert that is not re-sent (its `resolve_timeout`), so firing
//! alerts are posted again every `resend_interval` until they resolve. With `watchdog`,
//! an always-firing `VitalsWatchdog` alert says vitals is alive, as kube-prometheus'
//! `Watchdog` does: it expires when vitals stops re-posting it, so a dead-man's-switch
//! route in Alertmanager learns that vitals is dead or wedged.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Sink, SinkConfig, SinkContext, SinkError, Takes};
use crate::alert::{AlertEvent, AlertState};
use crate::check::{BuildError, KeyError};
use crate::duration::Span;

/// `kind = "alertmanager"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// Base URL of the Alertmanager, e.g. `"http://127.0.0.1:9093"` (plain HTTP; put
    /// it on loopback or behind a TLS proxy).
    pub url: String,
    /// How often firing alerts are posted again (keep it below Alertmanager's
    /// `resolve_timeout`, 5m by default).
    #[serde(default = "crate::duration::secs::<60>")]
    pub resend_interval: Span,
    /// Link to the status page, sent as each alert's `generatorURL`.
    #[serde(default)]
    pub page_url: Option<String>,
    /// How long one request may take before it is retried.
    #[serde(default = "crate::duration::secs::<10>")]
    pub timeout: Span,
    /// Also post an always-firing `VitalsWatchdog` alert (severity `none`) every
    /// `resend_interval` while every check keeps its schedule. It expires three
    /// intervals after the last post, so Alertmanager resolves it once vitals is dead
    /// or wedged: route `alertname="VitalsWatchdog"` to a dead-man's-switch receiver
    /// (docs/operating.md).
    #[serde(default)]
    pub watchdog: bool,
}

/// The name of the always-firing liveness alert.
pub const WATCHDOG_ALERT: &str = "VitalsWatchdog";

impl SinkConfig for AlertmanagerConfig {
    const KIND: &'static str = "alertmanager";
    const SUMMARY: &'static str = "posts alerts to a Prometheus Alertmanager (/api/v2/alerts)";
    const EXAMPLE: &'static str = "url = \"http://127.0.0.1:9093\"\nresend_interval = \"1m\"\n";
    const TAKES: Takes = Takes::Alerts;

    fn validate(&self) -> Vec<KeyError> {
        let mut errors = Vec::new();
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            errors.push(KeyError::new(
                "url",
                "must start with http:// (https needs a TLS proxy)",
            ));
        }
        if self.resend_interval.is_zero() {
            errors.push(KeyError::new("resend_interval", "must be longer than 0s"));
        }
        errors
    }

    fn build(&self, cx: &SinkContext) -> Result<Arc<dyn Sink>, BuildError> {
        let client = super::http::client(*self.timeout)?;
        let inner = Arc::new(Inner {
            client,
            endpoint: super::http::join(&self.url, "/api/v2/alerts"),
            shown: super::http::masked(&self.url),
            page_url: self.page_url.clone(),
            host: cx.name.clone(),
            active: Mutex::new(BTreeMap::new()),
            watchdog: self.watchdog.then(|| (cx.health.clone(), chrono::Utc::now())),
            report: cx.report.clone(),
        });
        tokio::spawn(resend(Arc::downgrade(&inner), *self.resend_interval));
        Ok(Arc::new(Alertmanager(inner)))
    }
}

struct Inner {
    client: reqwest::Client,
    endpoint: String,
    /// The URL as logs may show it.
    shown: String,
    page_url: Option<String>,
    host: String,
    /// Firing alerts delivered, by id, to re-send.
    active: Mutex<BTreeMap<String, AlertEvent>>,
    /// With `watchdog`: vitals' health, and when the watchdog alert started.
    watchdog: Option<(crate::health::Health, chrono::DateTime<chrono::Utc>)>,
    /// The sink's health: a re-send that fails is the sink failing.
    report: super::health::HealthReport,
}

struct Alertmanager(Arc<Inner>);

impl Inner {
    /// The `VitalsWatchdog` alert, valid for three intervals, while vitals keeps its
    /// schedule.
    fn watchdog(&self, every: Duration) -> Option<Value> {
        let (health, since) = self.watchdog.as_ref()?;
        if !health.is_healthy() {
            return None;
        }
        let ends =
            chrono::Utc::now() + chrono::Duration::from_std(every * 3).unwrap_or(chrono::Duration::MAX);
        Some(json!({
            "labels": {
                "alertname": WATCHDOG_ALERT,
                "severity": "none",
                "instance": self.host,
                "source": "vitals",
            },
            "annotations": {
                "summary": format!("vitals on {} is alive: this alert always fires, and stops when vitals is dead or wedged", self.host),
            },
            "startsAt": since.to_rfc3339(),
            "endsAt": ends.to_rfc3339(),
        }))
    }

    fn to_json(&self, e: &AlertEvent) -> Value {
        let mut alert = json!({
            "labels": {
                "alertname": e.rule,
                "check": e.check_id,
                "severity": e.severity.as_str().to_lowercase(),
                "instance": self.host,
                "source": "vitals",
            },
            "annotations": { "summary": e.message, "alert_id": e.alert_id },
            "startsAt": e.started_at.to_rfc3339(),
        });
        if e.state == AlertState::Resolved {
            alert["endsAt"] = json!(e.event_at.to_rfc3339());
        }
        if let Some(url) = &self.page_url {
            alert["generatorURL"] = json!(url);
        }
        alert
    }

    async fn post(&self, alerts: Vec<Value>) -> Result<(), SinkError> {
        if alerts.is_empty() {
            return Ok(());
        }
        let sent = self.client.post(&self.endpoint).json(&alerts).send().await;
        super::http::outcome("Alertmanager", &self.shown, sent).await
    }
}

async fn resend(inner: Weak<Inner>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut first = true;
    loop {
        ticks.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        let mut alerts: Vec<Value> = if first {
            // The firing alerts were just delivered; only the watchdog goes now.
            Vec::new()
        } else {
            let active = inner.active.lock().unwrap_or_else(|e| e.into_inner());
            active.values().map(|e| inner.to_json(e)).collect()
        };
        first = false;
        alerts.extend(inner.watchdog(every));
        let empty = alerts.is_empty();
        match inner.post(alerts).await {
            Ok(()) if !empty => inner.report.ok(),
            Ok(()) => {}
            Err(e) => {
                inner.report.failed(&e.message);
                tracing::warn!(
                    "re-sending firing alerts to Alertmanager failed (next try in {every:?}): {e}"
                );
            }
        }
    }
}

#[async_trait]
impl Sink for Alertmanager {
    async fn deliver(&self, events: &[AlertEvent]) -> Result<(), SinkError> {
        let inner = &self.0;
        // Acknowledgements are vitals' own (Alertmanager has silences for that), and
        // operator actions are not alerts.
        let alerts: Vec<Value> = events
            .iter()
            .filter(|e| matches!(e.state, AlertState::Firing | AlertState::Resolved))
            .map(|e| inner.to_json(e))
            .collect();
        inner.post(alerts).await?;
        let mut active = inner.active.lock().unwrap_or_else(|e| e.into_inner());
        for e in events {
            match e.state {
                AlertState::Firing => {
                    active.insert(e.alert_id.clone(), e.clone());
                }
                AlertState::Resolved => {
                    active.remove(&e.alert_id);
                }
                AlertState::Acknowledged | AlertState::Action => {}
            }
        }
        Ok(())
    }
}

crate::register_sink!(AlertmanagerConfig);
