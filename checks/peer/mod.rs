//! `peer`: another vitals, read over HTTP (its `/api/status`), the way Prometheus
//! federation and Icinga satellites work. Its status is the peer's worst check status;
//! it is critical when the peer cannot be reached, answers an error (a 401 names the
//! token), or has observed nothing for `max_age` (it is wedged). Its value is the peer's
//! count of problems; its details carry the peer's name, counts and active alerts, so
//! the Fleet section shows every host of a desk on one page and a rule on
//! `kinds = ["peer"]` pages when one dies (docs/fleet.md).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::check::{BuildContext, BuildError, Check, CheckConfig, KeyError, Reading, RunContext, Status};
use crate::duration;
use crate::duration::Span;
use crate::panel::{Layout, Panel, Section};

/// `kind = "peer"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// The other vitals' base URL, e.g. `"http://10.0.0.12:8686"` (its `/api/status` is
    /// read). No credentials in it: a token goes in `read_token_env`.
    pub url: String,
    /// The environment variable holding the peer's read token, when the peer protects
    /// reads (its `[server] read_token_env`): sent as a bearer token, never shown, and
    /// never passed to a plugin.
    #[serde(default)]
    pub read_token_env: Option<String>,
    /// How long the peer may go without observing anything (its newest check
    /// observation) before it counts as wedged: `critical`, though it answers.
    #[serde(default = "crate::duration::secs::<60>")]
    pub max_age: Span,
}

/// The status page's "Fleet" section: this host first, then one row per peer.
pub static FLEET_SECTION: Section = Section {
    id: "fleet",
    title: "Fleet",
    order: 5,
    layout: Layout::Table {
        columns: &["Host", "Status", "Checks", "Alerts", ""],
    },
    listed_when_empty: false,
    head: "",
};

static PANEL: Panel = Panel {
    section: &FLEET_SECTION,
    rank: 0,
    template: Some(include_str!("panel.html.j2")),
    reads: &["alerts", "counts", "link", "name"],
    css: ".fleet-alerts { margin: 0; padding-left: 1.1em; } .fleet-self td:first-child { font-weight: 600; }",
};

/// At most this many of a peer's alerts in its details.
const ALERTS_KEPT: usize = 10;

impl CheckConfig for PeerConfig {
    const KIND: &'static str = "peer";
    const SUMMARY: &'static str = "another vitals, read over HTTP: its worst status, its problems and alerts";
    const UNIT: &'static str = "";
    const EXAMPLE: &'static str = "url = \"http://127.0.0.1:8687\"\n";
    const PANEL: Option<&'static Panel> = Some(&PANEL);

    fn validate(&self) -> Vec<KeyError> {
        let mut errors = Vec::new();
        match reqwest::Url::parse(&self.url) {
            Ok(u) if !matches!(u.scheme(), "http" | "https") => errors.push(KeyError::new(
                "url",
                "must start with http:// or https://, e.g. \"http://10.0.0.12:8686\"",
            )),
            Ok(u) if !u.username().is_empty() || u.password().is_some() => errors.push(KeyError::new(
                "url",
                "must hold no user or password: put the peer's read token in an environment variable and name it in read_token_env",
            )),
            Ok(u) if u.query().is_some() => errors.push(KeyError::new(
                "url",
                "must hold no query: it is the base URL of the other vitals, e.g. \"http://10.0.0.12:8686\"",
            )),
            Ok(_) => {}
            Err(e) => errors.push(KeyError::new(
                "url",
                format!("is not a URL ({e}): write e.g. \"http://10.0.0.12:8686\""),
            )),
        }
        if self.max_age.is_zero() {
            errors.push(KeyError::new("max_age", "must be longer than 0s"));
        }
        errors
    }

    fn secret_env(&self) -> Vec<String> {
        self.read_token_env.iter().cloned().collect()
    }

    fn build(&self, _cx: &BuildContext) -> Result<Arc<dyn Check>, BuildError> {
        let client = reqwest::Client::builder()
            .build()
            .map_err(|e| BuildError::Setup {
                what: "HTTP client".into(),
                message: e.to_string(),
            })?;
        Ok(Arc::new(Peer {
            client,
            status_url: format!("{}/api/status", self.url.trim_end_matches('/')),
            url: self.url.trim_end_matches('/').to_owned(),
            token_env: self.read_token_env.clone(),
            max_age: *self.max_age,
        }))
    }
}

struct Peer {
    client: reqwest::Client,
    status_url: String,
    url: String,
    token_env: Option<String>,
    max_age: std::time::Duration,
}

#[async_trait]
impl Check for Peer {
    async fn run(&self, cx: &RunContext) -> Reading {
        let budget = cx.budget();
        let down = |why: String| {
            Reading::new(Status::Critical, format!("{}: {why}", self.url))
                .with_label("DOWN")
                .with_detail("url", self.url.clone())
                .with_detail("link", self.url.clone())
        };
        let mut request = self.client.get(&self.status_url).timeout(budget);
        if let Some(var) = &self.token_env {
            match std::env::var(var) {
                Ok(token) if !token.is_empty() => request = request.bearer_auth(token),
                _ => return down(format!("${var} (read_token_env) is not set")),
            }
        }
        let answer = match tokio::time::timeout(budget, request.send()).await {
            Err(_) => {
                return down(format!("no answer within {}", duration::format(budget)));
            }
            Ok(Err(e)) if e.is_timeout() => {
                return down(format!("no answer within {}", duration::format(budget)));
            }
            Ok(Err(e)) => return down(format!("cannot be reached: {}", e.without_url())),
            Ok(Ok(a)) => a,
        };
        let code = answer.status();
        if code == reqwest::StatusCode::UNAUTHORIZED {
            let hint = match &self.token_env {
                Some(var) => format!("the token in ${var} was refused"),
                None => {
                    "it protects reads: set read_token_env to the variable holding its read token".to_owned()
                }
            };
            return down(format!("answered 401 Unauthorized: {hint}"));
        }
        if !code.is_success() {
            return down(format!("answered {code}"));
        }
        let body = match tokio::time::timeout(budget, answer.json::<Value>()).await {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => return down(format!("did not answer as vitals does: {}", e.without_url())),
            Err(_) => {
                return down(format!(
                    "its answer did not arrive within {}",
                    duration::format(budget)
                ));
            }
        };
        self.read(&body)
    }
}

impl Peer {
    /// A peer's `/api/status`, as one reading.
    fn read(&self, body: &Value) -> Reading {
        let name = body["name"]
            .as_str()
            .or_else(|| body["host"].as_str())
            .unwrap_or("?")
            .to_owned();
        let link = body["public_url"]
            .as_str()
            .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
            .unwrap_or(&self.url)
            .to_owned();
        let checks = body["checks"].as_array().map(Vec::as_slice).unwrap_or_default();
        let mut counts = [0u64; 4];
        let mut worst = Status::Ok;
        let mut newest: Option<DateTime<Utc>> = None;
        for c in checks {
            let status: Status = serde_json::from_value(c["status"].clone()).unwrap_or(Status::Unknown);
            counts[match status {
                Status::Ok => 0,
                Status::Warning => 1,
                Status::Critical => 2,
                Status::Unknown => 3,
            }] += 1;
            worst = worst.worst(status);
            let at = c["observed_at"]
                .as_str()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc));
            newest = newest.max(at);
        }
        let alerts: Vec<Value> = body["alerts"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .take(ALERTS_KEPT)
            .map(|a| {
                json!({
                    "rule": a["rule"], "check_id": a["check_id"], "severity": a["severity"],
                    "message": a["message"], "started_at": a["started_at"],
                })
            })
            .collect();
        let problems = counts[1] + counts[2] + counts[3];
        let mut said = format!(
            "{name}: {} ok, {} warning, {} critical, {} unknown",
            counts[0], counts[1], counts[2], counts[3]
        );
        if !alerts.is_empty() {
            let firing: Vec<String> = alerts
                .iter()
                .map(|a| {
                    format!(
                        "{} on {}",
                        a["rule"].as_str().unwrap_or("?"),
                        a["check_id"].as_str().unwrap_or("?")
                    )
                })
                .collect();
            said.push_str(&format!("; firing: {}", firing.join(", ")));
        }
        let (status, label) = match newest {
            Some(t) if (Utc::now() - t).to_std().is_ok_and(|age| age > self.max_age) => {
                let age = (Utc::now() - t).num_seconds();
                said = format!(
                    "{name} answers but has observed nothing for {age} s (max_age {}): vitals there is wedged",
                    duration::format(self.max_age)
                );
                (Status::Critical, "WEDGED")
            }
            _ => (worst, "UP"),
        };
        Reading::new(status, said)
            .with_value(problems as f64, "")
            .with_label(label)
            .with_detail("name", name)
            .with_detail(
                "counts",
                json!({"ok": counts[0], "warning": counts[1], "critical": counts[2], "unknown": counts[3]}),
            )
            .with_detail("alerts", Value::Array(alerts))
            .with_detail("url", self.url.clone())
            .with_detail("link", link)
    }
}

crate::register_check!(PeerConfig);
