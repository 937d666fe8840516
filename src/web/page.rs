//! `GET /`: the status page, rendered on the server from `page.html.j2` (the seed's
//! "System Health" sections, in its order). `page.js` refreshes the data sections
//! every 5 s from the same page without a full reload, counts ages up between
//! refreshes, filters the registry table and posts the actions.

use std::sync::{Arc, OnceLock};

use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use minijinja::Environment;
use serde::Serialize;
use serde_json::{Value, json};

use super::Web;
use crate::board::Sample;
use crate::check::{ActionSpec, Observation, Status};

fn templates() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.add_template("page.html", include_str!("page.html.j2"))
            .expect("page.html.j2 is valid (a test renders it)");
        env
    })
}

/// Icon and class for a status: shown with its text, never colour alone.
fn look(status: Status) -> (&'static str, &'static str) {
    match status {
        Status::Ok => ("✔", "s-ok"),
        Status::Warning => ("▲", "s-warning"),
        Status::Critical => ("✖", "s-critical"),
        Status::Unknown => ("?", "s-unknown"),
    }
}

#[derive(Serialize)]
struct Action {
    name: &'static str,
    description: &'static str,
    destructive: bool,
    url: String,
}

/// One observation as the template sees it.
#[derive(Serialize)]
struct View {
    id: String,
    kind: String,
    status: &'static str,
    class: &'static str,
    icon: &'static str,
    text: String,
    message: String,
    value: Option<f64>,
    shown: String,
    unit: String,
    observed_at: String,
    since: String,
    details: Value,
    actions: Vec<Action>,
    /// Sparkline points (SVG polyline) of the last hour.
    spark: String,
}

fn shown(value: Option<f64>, unit: &str) -> String {
    match value {
        None => "—".into(),
        Some(v) if unit == "%" => format!("{v:.1} %"),
        Some(v) if v.fract() == 0.0 => format!("{v} {unit}").trim().to_owned(),
        Some(v) => format!("{v:.1} {unit}").trim().to_owned(),
    }
}

/// Points of a 120×28 sparkline over the last hour (or since the first sample, when
/// younger); percent values on a 0–100 scale.
fn sparkline(history: &[Sample], unit: &str, now: DateTime<Utc>) -> String {
    let hour_ago = now - ChronoDuration::hours(1);
    let from = history
        .iter()
        .map(|s| s.at)
        .filter(|t| *t >= hour_ago)
        .min()
        .unwrap_or(hour_ago);
    let span = (now - from).num_milliseconds().max(1) as f64;
    let points: Vec<(f64, f64)> = history
        .iter()
        .filter(|s| s.at >= from)
        .filter_map(|s| Some(((s.at - from).num_milliseconds() as f64 / span, s.value?)))
        .collect();
    if points.len() < 2 {
        return String::new();
    }
    let (lo, hi) = if unit == "%" {
        (0.0, 100.0)
    } else {
        let lo = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        let hi = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
        if hi > lo { (lo, hi) } else { (lo - 1.0, hi + 1.0) }
    };
    points
        .iter()
        .map(|(x, y)| {
            let y = 27.0 - (y.clamp(lo, hi) - lo) / (hi - lo) * 26.0;
            format!("{:.1},{:.1}", x * 120.0, y)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn view(
    web: &Web,
    o: &Observation,
    since: DateTime<Utc>,
    actions: &[ActionSpec],
    now: DateTime<Utc>,
) -> View {
    let (icon, class) = look(o.status);
    View {
        id: o.id.clone(),
        kind: o.kind.clone(),
        status: o.status.as_str(),
        class,
        icon,
        text: o
            .label
            .clone()
            .unwrap_or_else(|| o.status.as_str().to_uppercase()),
        message: o.message.clone(),
        value: o.value,
        shown: shown(o.value, &o.unit),
        unit: o.unit.clone(),
        observed_at: o.observed_at.to_rfc3339(),
        since: since.to_rfc3339(),
        details: Value::Object(o.details.clone()),
        actions: actions
            .iter()
            .map(|a| Action {
                name: a.name,
                description: a.description,
                destructive: a.destructive,
                url: format!("/api/checks/{}/actions/{}", o.id, a.name),
            })
            .collect(),
        spark: sparkline(&web.board.history(&o.id), &o.unit, now),
    }
}

/// The page's HTML for what the board and alerting hold now.
pub fn render(web: &Web) -> Result<String, minijinja::Error> {
    let now = Utc::now();
    let actions = web.actions();
    let mut views: Vec<View> = web
        .board
        .snapshot()
        .iter()
        .map(|e| {
            let a = actions.get(&e.latest.id).map(Vec::as_slice).unwrap_or_default();
            view(web, &e.latest, e.since, a, now)
        })
        .collect();
    views.sort_by(|a, b| a.id.cmp(&b.id));
    let of = |kinds: &[&str]| -> Vec<&View> {
        views
            .iter()
            .filter(|v| kinds.contains(&v.kind.as_str()))
            .collect()
    };
    let known = [
        "ib_connection",
        "delta_freshness",
        "cpu",
        "memory",
        "disk",
        "host",
        "strategy_slots",
        "queue_backlog",
    ];
    let counts = |s: Status| views.iter().filter(|v| v.status == s.as_str()).count();
    let worst = views
        .iter()
        .map(|v| match v.status {
            "critical" => Status::Critical,
            "unknown" => Status::Unknown,
            "warning" => Status::Warning,
            _ => Status::Ok,
        })
        .max_by_key(|s| s.severity_rank())
        .unwrap_or(Status::Unknown);
    let (icon, class) = look(worst);
    let (mut alerts, suppressed) = {
        let a = web.alerting.lock().unwrap_or_else(|e| e.into_inner());
        (a.active(), a.suppressed())
    };
    alerts.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.started_at.cmp(&b.started_at)));
    let alerts: Vec<Value> = alerts
        .iter()
        .map(|a| {
            let class = match a.severity {
                crate::alert::Severity::Critical => "s-critical",
                crate::alert::Severity::Warning => "s-warning",
                crate::alert::Severity::Info => "s-unknown",
            };
            json!({
                "alert_id": a.alert_id, "rule": a.rule, "check_id": a.check_id,
                "severity": a.severity.as_str(), "class": class, "message": a.message,
                "started_at": a.started_at.to_rfc3339(), "acknowledged": a.acknowledged,
                "ack_url": format!("/api/alerts/{}/ack", a.alert_id),
            })
        })
        .collect();
    let cx = minijinja::context! {
        generated_at => now.to_rfc3339(),
        host => web.host,
        actions_enabled => web.actions_enabled(),
        token_env => web.token_env,
        overall => json!({"icon": icon, "class": class, "text": worst.as_str().to_uppercase()}),
        counts => json!({
            "ok": counts(Status::Ok), "warning": counts(Status::Warning),
            "critical": counts(Status::Critical), "unknown": counts(Status::Unknown),
        }),
        ib => of(&["ib_connection"]),
        freshness => of(&["delta_freshness"]),
        system => of(&["cpu", "memory", "disk"]),
        hosts => of(&["host"]),
        slots => of(&["strategy_slots"]),
        queues => of(&["queue_backlog"]),
        others => views.iter().filter(|v| !known.contains(&v.kind.as_str())).collect::<Vec<_>>(),
        alerts => alerts,
        suppressed => suppressed,
    };
    templates().get_template("page.html")?.render(cx)
}

pub async fn page(State(web): State<Arc<Web>>) -> Response {
    match web.cached("page", || render(&web).map(String::into_bytes)) {
        Ok(html) => Html(html).into_response(),
        Err(e) => super::error(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            format!("the page could not be rendered: {e}"),
        ),
    }
}

pub async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        include_str!("page.css"),
    )
        .into_response()
}

pub async fn js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        include_str!("page.js"),
    )
        .into_response()
}
