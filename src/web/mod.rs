//! The web server: the status page, `/api/status`, `/metrics`, `/healthz`, and the
//! authenticated `POST` actions. Everything it shows comes from the status board and
//! alerting; no `GET` runs a check or changes anything, so a burst of page loads never
//! delays a check.

pub mod alerts;
mod api;
mod cache;
mod guard;
mod markets;
mod metrics;
mod page;
mod server;
mod view;

pub use page::templates;
pub use server::{Limits, Server, bind, serve, spawn, spawn_with};

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde_json::json;
use tracing::info;

use crate::alerting::Alerting;
use crate::board::Board;
use crate::check::{ActionSpec, Checks};
use crate::plugin::Kinds;
use crate::runner::Instances;

/// The most a request body may hold (actions take none).
pub const BODY_LIMIT: usize = 4 * 1024;

/// How long a rendered page, status or metrics text is served again before it is
/// rendered anew (any `POST` drops it at once). Many readers cost one render per window.
pub const RENDER_EVERY: Duration = Duration::from_millis(250);

/// What the handlers read: the daemon's board, running instances and alerting, the
/// token, the kinds (for their panels) and the render cache.
pub struct Web {
    board: Board,
    instances: Instances,
    alerting: Arc<Mutex<Alerting>>,
    /// The bearer token actions need; `None`: actions are disabled.
    token: Option<String>,
    /// Where the token comes from, for messages.
    token_env: String,
    started_at: DateTime<Utc>,
    /// This instance's name (`[server] name`).
    host: String,
    /// `[server] public_url`.
    public_url: Option<String>,
    /// Rendered bodies by route, with when they were rendered.
    cache: Mutex<std::collections::HashMap<&'static str, cache::Rendered>>,
    /// The check kinds: their sections and partials.
    kinds: &'static Kinds<Checks>,
    /// Host names this server answers to (lowercase, without ports).
    allowed_hosts: Vec<String>,
    /// The token reading needs (`[server] read_token_env`); `None`: reading is open.
    read_token: Option<String>,
    /// The page's templates (an error in a kind's partial is shown by `GET /`).
    templates: Result<minijinja::Environment<'static>, minijinja::Error>,
    /// The page's stylesheet with the kinds' CSS.
    stylesheet: String,
    /// The desk's time zone (`[server] timezone`).
    zone: crate::timezone::DeskZone,
    /// The health history, when kept (`[history]`).
    history: Option<crate::history::HistoryTable>,
    /// The alerts table's reader (the table a sink appends to), for `/alerts`.
    alerts_table: Option<Arc<crate::alerts_table::Reader>>,
}

impl Web {
    /// Handlers over a daemon's board, instances and alerting. `token` is what actions
    /// need (`None` or empty: actions are disabled); `token_env` names where it came from.
    pub fn new(
        board: Board,
        instances: Instances,
        alerting: Arc<Mutex<Alerting>>,
        kinds: &'static Kinds<Checks>,
        token_env: &str,
        token: Option<String>,
    ) -> Web {
        let token = token.filter(|t| !t.trim().is_empty());
        if token.is_none() {
            info!("{token_env} is not set: the page's actions are disabled");
        }
        Web {
            board,
            instances,
            alerting,
            token,
            token_env: token_env.to_owned(),
            started_at: Utc::now(),
            host: crate::alert::hostname().to_owned(),
            public_url: None,
            cache: Mutex::default(),
            kinds,
            allowed_hosts: crate::config::LOOPBACK_HOSTS.map(str::to_owned).to_vec(),
            read_token: None,
            templates: page::templates(kinds, crate::timezone::DeskZone::host()),
            zone: crate::timezone::DeskZone::host(),
            stylesheet: page::stylesheet(kinds),
            history: None,
            alerts_table: None,
        }
    }

    /// Protects reading with `token` (see `[server] read_token_env`); `None` or empty:
    /// reading is open.
    pub fn with_read_token(mut self, token: Option<String>) -> Web {
        self.read_token = token.filter(|t| !t.trim().is_empty());
        self
    }

    /// Shows times in `zone` (see `[server] timezone`).
    /// Names this instance (`[server] name`) and where people reach its page
    /// (`public_url`): `/api/status` and the page say them.
    pub fn with_name(mut self, name: String, public_url: Option<String>) -> Web {
        self.host = name;
        self.public_url = public_url;
        self
    }

    /// Shows every time in `zone`.
    pub fn with_zone(mut self, zone: crate::timezone::DeskZone) -> Web {
        self.templates = page::templates(self.kinds, zone);
        self.zone = zone;
        self
    }

    /// Serves `/alerts` from this alerts table.
    pub fn with_alerts_table(mut self, table: Option<crate::delta::TableRef>) -> Web {
        self.alerts_table = table.map(|t| Arc::new(crate::alerts_table::Reader::new(t)));
        self
    }

    /// Serves `/api/history` from this table.
    pub fn with_history(mut self, history: Option<crate::history::HistoryTable>) -> Web {
        self.history = history;
        self
    }

    /// The host names to answer to (see `[server] allowed_hosts`); the loopback names
    /// by default.
    pub fn with_allowed_hosts(mut self, hosts: Vec<String>) -> Web {
        self.allowed_hosts = hosts;
        self
    }

    fn actions_enabled(&self) -> bool {
        self.token.is_some()
    }

    /// Every check's actions, by id.
    fn actions(&self) -> std::collections::BTreeMap<String, Vec<ActionSpec>> {
        let instances = self.instances.read().unwrap_or_else(|e| e.into_inner());
        instances
            .iter()
            .map(|(id, i)| (id.clone(), i.check().map(|c| c.actions()).unwrap_or_default()))
            .collect()
    }
}

/// The routes, with security headers and the body limit.
pub fn router(web: Arc<Web>) -> Router {
    Router::new()
        .route("/", get(page::page))
        .route("/static/page.css", get(page::css))
        .route("/static/page.js", get(page::js))
        .route("/static/trends.js", get(page::trends_js))
        .route("/static/uplot.js", get(page::uplot_js))
        .route("/static/uplot.css", get(page::uplot_css))
        .route("/api/status", get(api::status))
        .route("/api/history", get(api::history))
        .route("/alerts", get(alerts::page))
        .route("/alerts.csv", get(alerts::csv))
        .route("/api/alert-events", get(alerts::events))
        .route("/healthz", get(api::healthz))
        .route("/metrics", get(metrics::metrics))
        .route("/api/checks/{id}/run", post(api::run_now))
        .route("/api/checks/{id}/actions/{action}", post(api::action))
        .route("/api/alerts/{alert_id}/ack", post(api::ack))
        .route(
            "/api/alerts/{alert_id}/remediation/pause",
            post(api::pause_remediation),
        )
        .route("/api/sinks/{id}/retry", post(api::retry_sink))
        .layer(middleware::from_fn_with_state(web.clone(), guard::guard))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(web)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({"error": message.into()}))).into_response()
}

/// A refused request: status, message and, for 401, the challenge.
struct Refusal {
    status: StatusCode,
    message: String,
    challenge: Option<&'static str>,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Refusal {
            status,
            message: message.into(),
            challenge: None,
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut r = error(self.status, self.message);
        if let Some(c) = self.challenge {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(c));
        }
        r
    }
}
