//! `heartbeat`: a dead-man's switch. Pings a URL every `interval` while vitals keeps
//! its schedule (healthchecks.io, Uptime Kuma push monitors, Dead Man's Snitch and the
//! like page when the pings stop): if vitals dies, hangs or its scheduler stalls, the
//! pings stop and the service on the other end pages. Alert events are not sent here.

use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Sink, SinkConfig, SinkContext, SinkError, Takes};
use crate::alert::AlertEvent;
use crate::check::{BuildError, KeyError};
use crate::duration::Span;
use crate::health::Health;

/// How the URL is pinged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum PingMethod {
    /// `GET` with no body.
    #[default]
    Get,
    /// `POST` with a one-line text body ("vitals on HOST: N checks on schedule").
    Post,
}

/// `kind = "heartbeat"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatConfig {
    /// The URL to ping, e.g. `"https://hc-ping.com/<uuid>"`. A ping URL is a secret
    /// (anyone who has it can ping): prefer `url_env`. Give one of the two.
    #[serde(default)]
    pub url: Option<String>,
    /// Name of the environment variable holding the URL (e.g. `"VITALS_HEARTBEAT_URL"`,
    /// set in the service's environment file).
    #[serde(default)]
    pub url_env: Option<String>,
    /// `GET` or `POST`.
    #[serde(default)]
    pub method: PingMethod,
    /// How often to ping; the service on the other end should expect a ping at least
    /// this often (give it some grace).
    #[serde(default = "crate::duration::secs::<60>")]
    pub interval: Span,
    /// How long one ping may take.
    #[serde(default = "crate::duration::secs::<10>")]
    pub timeout: Span,
}

fn valid_url(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}

impl SinkConfig for HeartbeatConfig {
    const KIND: &'static str = "heartbeat";
    const SUMMARY: &'static str = "a dead-man's switch: pings a URL every interval while vitals keeps its schedule (alert events are not sent)";
    const EXAMPLE: &'static str = "url_env = \"VITALS_HEARTBEAT_URL\"\nmethod = \"GET\"\ninterval = \"1m\"\n";
    const TAKES: Takes = Takes::Nothing;

    fn secret_env(&self) -> Vec<String> {
        self.url_env.iter().cloned().collect()
    }

    fn validate(&self) -> Vec<KeyError> {
        let mut errors = Vec::new();
        match (&self.url, &self.url_env) {
            (Some(_), Some(_)) => errors.push(KeyError::new("url", "give `url` or `url_env`, not both")),
            (None, None) => errors.push(KeyError::new(
                "url",
                "give the URL to ping: `url_env = \"VITALS_HEARTBEAT_URL\"` (preferred) or `url`",
            )),
            (Some(url), None) if !valid_url(url) => {
                errors.push(KeyError::new("url", "must start with http:// or https://"));
            }
            _ => {}
        }
        if self.interval.is_zero() {
            errors.push(KeyError::new("interval", "must be longer than 0s"));
        }
        errors
    }

    fn build(&self, cx: &SinkContext) -> Result<Arc<dyn Sink>, BuildError> {
        let url = match (&self.url, &self.url_env) {
            (Some(url), _) => url.clone(),
            (None, Some(var)) => {
                let url = std::env::var(var)
                    .ok()
                    .filter(|u| !u.trim().is_empty())
                    .ok_or_else(|| BuildError::MissingEnv {
                        what: "heartbeat URL",
                        var: var.clone(),
                    })?;
                if !valid_url(&url) {
                    return Err(BuildError::Setup {
                        what: format!("the URL in {var}"),
                        message: "must start with http:// or https://".into(),
                    });
                }
                url
            }
            (None, None) => unreachable!("validate requires one"),
        };
        let client = super::http::client(*self.timeout)?;
        let inner = Arc::new(Inner {
            client,
            shown: super::http::masked(&url),
            url,
            method: self.method,
            health: cx.health.clone(),
            report: cx.report.clone(),
            name: cx.name.clone(),
        });
        tokio::spawn(beat(Arc::downgrade(&inner), *self.interval));
        Ok(Arc::new(Heartbeat(inner)))
    }
}

struct Inner {
    client: reqwest::Client,
    url: String,
    shown: String,
    method: PingMethod,
    health: Health,
    /// The sink's health: a ping that fails is the sink failing.
    report: super::health::HealthReport,
    /// This instance's name, said in a POST's body.
    name: String,
}

impl Inner {
    async fn ping(&self) -> Result<(), String> {
        let request = match self.method {
            PingMethod::Get => self.client.get(&self.url),
            PingMethod::Post => self
                .client
                .post(&self.url)
                .body(format!("vitals on {}: every check on schedule", self.name)),
        };
        super::http::outcome("the heartbeat service", &self.shown, request.send().await)
            .await
            .map_err(|e| e.message)
    }
}

struct Heartbeat(#[allow(dead_code)] Arc<Inner>);

/// Pings every `every` while the runner keeps its schedule; ends with the sink.
async fn beat(inner: Weak<Inner>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        ticks.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        if !inner.health.is_healthy() {
            // The daemon logs that it is not keeping its schedule; silence is the alarm.
            continue;
        }
        let result = inner.ping().await;
        match &result {
            Ok(()) => inner.report.ok(),
            Err(e) => inner.report.failed(e),
        }
        match result {
            Ok(()) if failing => {
                failing = false;
                tracing::info!("heartbeat to {} delivered again", inner.shown);
            }
            Ok(()) => {}
            Err(e) => {
                if !failing {
                    tracing::warn!(
                        "heartbeat to {} failed ({e}); the service on the other end will page if this goes on",
                        inner.shown
                    );
                }
                failing = true;
            }
        }
    }
}

#[async_trait]
impl Sink for Heartbeat {
    async fn deliver(&self, _events: &[AlertEvent]) -> Result<(), SinkError> {
        // A heartbeat says "alive", not what is wrong: alert events go to the other sinks.
        Ok(())
    }
}

crate::register_sink!(HeartbeatConfig);
