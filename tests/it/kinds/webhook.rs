//! `test_webhook`: a sink kind that lives only in the tests. It proves what
//! `docs/writing-a-sink.md` promises: a new sink kind is this one file and one `mod`
//! line. It posts each batch of alert events as a JSON array to a URL, with the shared
//! HTTP helpers (`vitals::sinks::http`): a 5xx or no answer is retried with backoff, a
//! 4xx moves the batch to the dead-letter file, and the logs show the URL masked.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use vitals::alert::AlertEvent;
use vitals::duration::Span;
use vitals::plugin::{BuildError, KeyError};
use vitals::sinks::{Sink, SinkConfig, SinkContext, SinkError, Takes, http};

/// `kind = "test_webhook"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The URL each batch of events is posted to, e.g. `"https://hooks.desk.example/vitals"`.
    /// A URL with a token in it is a secret: prefer `url_env`. Give one of the two.
    #[serde(default)]
    pub url: Option<String>,
    /// Name of the environment variable holding the URL.
    #[serde(default)]
    pub url_env: Option<String>,
    /// How long one post may take before it counts as failed (and is retried).
    #[serde(default = "vitals::duration::secs::<10>")]
    pub timeout: Span,
    /// Events arriving within this window after the first are posted together.
    #[serde(default = "vitals::duration::secs::<0>")]
    pub group_wait: Span,
}

impl SinkConfig for WebhookConfig {
    const KIND: &'static str = "test_webhook";
    const SUMMARY: &'static str =
        "posts each batch of alert events as a JSON array to a URL (a test-only kind)";
    const EXAMPLE: &'static str = "url_env = \"DESK_WEBHOOK_URL\"\ntimeout = \"5s\"\n";
    // Alerts only: an operator's button press is recorded, not posted.
    const TAKES: Takes = Takes::Alerts;

    fn validate(&self) -> Vec<KeyError> {
        match (&self.url, &self.url_env) {
            (Some(_), Some(_)) => vec![KeyError::new("url", "give `url` or `url_env`, not both")],
            (None, None) => vec![KeyError::new("url", "give `url_env` (preferred) or `url`")],
            (Some(u), None) if !(u.starts_with("http://") || u.starts_with("https://")) => {
                vec![KeyError::new("url", "must start with http:// or https://")]
            }
            _ => Vec::new(),
        }
    }

    fn secret_env(&self) -> Vec<String> {
        self.url_env.iter().cloned().collect()
    }

    fn build(&self, _cx: &SinkContext) -> Result<Arc<dyn Sink>, BuildError> {
        let url = match (&self.url, &self.url_env) {
            (Some(url), _) => url.clone(),
            (None, Some(var)) => std::env::var(var).map_err(|_| BuildError::MissingEnv {
                what: "webhook URL",
                var: var.clone(),
            })?,
            (None, None) => unreachable!("validate requires one"),
        };
        Ok(Arc::new(Webhook {
            client: http::client(*self.timeout)?,
            shown: http::masked(&url),
            url,
            group_wait: *self.group_wait,
        }))
    }
}

struct Webhook {
    client: reqwest::Client,
    url: String,
    shown: String,
    group_wait: Duration,
}

#[async_trait]
impl Sink for Webhook {
    fn group_wait(&self) -> Duration {
        self.group_wait
    }

    async fn deliver(&self, events: &[AlertEvent]) -> Result<(), SinkError> {
        let sent = self.client.post(&self.url).json(events).send().await;
        http::outcome("the webhook", &self.shown, sent).await
    }
}

vitals::register_sink!(WebhookConfig);
