//! The JSON routes: `/api/status`, `/healthz`, and the `POST` actions (run now, a
//! check's own actions, acknowledge).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tracing::info;

use super::{Refusal, Web, error};
use crate::check::ActionError;

/// `GET /api/status`: every check's latest observation, the active and held-back
/// alerts, and which actions each check offers.
pub(super) async fn status(State(web): State<Arc<Web>>, headers: axum::http::HeaderMap) -> Response {
    let render = || {
        let now = Utc::now();
        serde_json::to_vec(&status_json(&web, now)).map(|body| super::cache::Render {
            body,
            fills: vec![(GENERATED_AT, serde_json::to_string(&now).unwrap_or_default())],
        })
    };
    match web.cached("status", render) {
        Ok(body) => body.respond(&headers, "application/json"),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot render the status: {e}"),
        ),
    }
}

/// Where the render's time goes in the status (its ETag leaves it out).
const GENERATED_AT: &str = "\"@vitals-generated-at@\"";

fn status_json(web: &Web, now: chrono::DateTime<Utc>) -> Value {
    let checks: Vec<Value> = web
        .board
        .snapshot()
        .iter()
        .map(|e| {
            let mut o = serde_json::to_value(&*e.latest).unwrap_or_default();
            o["since"] = json!(e.since);
            o
        })
        .collect();
    let (alerts, held, calendars, sinks) = {
        let a = web.alerting.lock().unwrap_or_else(|e| e.into_inner());
        (a.active(), a.held(), a.calendars(), a.sinks())
    };
    json!({
        "markets": super::markets::views(calendars, now),
        "generated_at": "@vitals-generated-at@",
        "host": web.host,
        "name": web.host,
        "public_url": web.public_url,
        "checks": checks,
        "alerts": alerts,
        "held": held,
        // The name `held` had before; kept for clients that read it.
        "suppressed": held,
        "sinks": sinks,
        "actions_enabled": web.actions_enabled(),
        "actions": web.actions(),
    })
}

/// The parameters of `GET /api/history`.
#[derive(Debug, serde::Deserialize)]
pub(super) struct HistoryQuery {
    check: String,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
}

/// At most about this many points per answer.
const MAX_POINTS: i64 = 2000;

/// `GET /api/history?check=ID&from=T&to=T`: a check's history (RFC 3339 times; default
/// the last hour), at the table's resolution or a coarser step keeping the answer under
/// ~2,000 points.
pub(super) async fn history(
    State(web): State<Arc<Web>>,
    axum::extract::Query(q): axum::extract::Query<HistoryQuery>,
) -> Response {
    let Some(table) = &web.history else {
        return error(
            StatusCode::NOT_FOUND,
            "the health history is off: add a [history] section to the config",
        );
    };
    if web.board.get(&q.check).is_none() {
        return error(StatusCode::NOT_FOUND, format!("no check `{}`", q.check));
    }
    // Times the history can hold: a year 1 or a year 262143 is refused, never
    // computed with (chrono panics past its range).
    let (first, last) = (
        DateTime::from_timestamp(0, 0).unwrap_or_default(),
        DateTime::from_timestamp(10_413_792_000, 0).unwrap_or(DateTime::<Utc>::MAX_UTC),
    );
    let in_range = |t: &DateTime<Utc>| (first..=last).contains(t);
    if !q.to.iter().chain(&q.from).all(in_range) {
        return error(
            StatusCode::BAD_REQUEST,
            "`from` and `to` must be between 1970-01-01 and 2300-01-01",
        );
    }
    let to = q.to.unwrap_or_else(Utc::now);
    let from = q
        .from
        .unwrap_or_else(|| to.checked_sub_signed(chrono::Duration::hours(1)).unwrap_or(first));
    if from >= to {
        return error(StatusCode::BAD_REQUEST, "`from` must be before `to`");
    }
    let step = crate::history::step_for(table.resolution, from, to, MAX_POINTS);
    match crate::history::query(table, &q.check, from, to, step).await {
        Ok(points) => axum::Json(json!({
            "check": q.check,
            "from": from,
            "to": to,
            "resolution_s": table.resolution.as_secs_f64(),
            "step_s": step.as_secs_f64(),
            "points": points,
        }))
        .into_response(),
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("cannot read the history table {}: {e}", table.table.location),
        ),
    }
}

/// `GET /healthz`: vitals itself is alive and serving.
pub(super) async fn healthz(State(web): State<Arc<Web>>) -> Response {
    let checks = web.instances.read().unwrap_or_else(|e| e.into_inner()).len();
    axum::Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "checks": checks,
        "started_at": web.started_at,
        "uptime_s": (Utc::now() - web.started_at).num_seconds(),
    }))
    .into_response()
}

fn instance(web: &Web, id: &str) -> Result<Arc<crate::runner::Instance>, Refusal> {
    let instances = web.instances.read().unwrap_or_else(|e| e.into_inner());
    instances.get(id).cloned().ok_or_else(|| {
        let known: Vec<&str> = instances.keys().map(String::as_str).collect();
        Refusal::new(
            StatusCode::NOT_FOUND,
            format!(
                "no check `{id}`{}; configured checks: {}",
                crate::plugin::suggest(id, known.iter().copied()),
                known.join(", ")
            ),
        )
    })
}

/// `POST /api/checks/{id}/run`: runs the check now and puts the result on the board.
pub(super) async fn run_now(State(web): State<Arc<Web>>, Path(id): Path<String>) -> Response {
    let i = match instance(&web, &id) {
        Ok(i) => i,
        Err(r) => return r.into_response(),
    };
    let o = i.run_once(tokio::time::Instant::now()).await;
    web.board.publish(o.clone());
    info!(check = %id, status = %o.status, "run now (requested over HTTP): {}", crate::text::visible(&o.message));
    web.alerting
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .record_action(
            &id,
            "run",
            "action",
            chrono::Utc::now(),
            true,
            &format!("{}: {}", o.status, o.message),
        );
    axum::Json(o).into_response()
}

/// `POST /api/checks/{id}/actions/{action}`: one of the check's own actions, performed
/// the one way every action is ([`crate::actions::perform`]: run, look again, log,
/// record).
pub(super) async fn action(
    State(web): State<Arc<Web>>,
    Path((id, name)): Path<(String, String)>,
) -> Response {
    let i = match instance(&web, &id) {
        Ok(i) => i,
        Err(r) => return r.into_response(),
    };
    let done = crate::actions::perform(
        &i,
        &name,
        crate::actions::Actor::Operator,
        "",
        &web.board,
        &web.alerting,
    )
    .await;
    match done.outcome {
        Ok(outcome) => {
            let code = if outcome.ok {
                StatusCode::OK
            } else {
                StatusCode::BAD_GATEWAY
            };
            (code, axum::Json(outcome)).into_response()
        }
        Err(e @ ActionError::NoSuchAction { .. }) => error(StatusCode::NOT_FOUND, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// `POST /api/sinks/{id}/retry`: sends the sink's dead letters again.
pub(super) async fn retry_sink(State(web): State<Arc<Web>>, Path(id): Path<String>) -> Response {
    let result = web
        .alerting
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retry_dead(&id);
    match result {
        Ok(n) => {
            info!(sink = %id, "{n} dead-lettered alert events sent again (requested over HTTP)");
            axum::Json(json!({"sink": id, "requeued": n})).into_response()
        }
        Err(e) => error(StatusCode::NOT_FOUND, e),
    }
}

/// `POST /api/alerts/{alert_id}/remediation/pause`: no more automatic attempts for
/// this alert (until it resolves); recorded as an `action` event.
pub(super) async fn pause_remediation(State(web): State<Arc<Web>>, Path(alert_id): Path<String>) -> Response {
    let paused = web
        .alerting
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .pause_remediation(&alert_id);
    match paused {
        Some(event) => {
            info!(alert_id = %alert_id, "remediation paused over HTTP");
            axum::Json(event).into_response()
        }
        None => error(
            StatusCode::NOT_FOUND,
            format!("no firing alert `{alert_id}` of a rule with `remediate`"),
        ),
    }
}

/// `POST /api/alerts/{alert_id}/ack`.
pub(super) async fn ack(State(web): State<Arc<Web>>, Path(alert_id): Path<String>) -> Response {
    let mut alerting = web.alerting.lock().unwrap_or_else(|e| e.into_inner());
    match alerting.acknowledge(&alert_id) {
        Some(event) => {
            info!(alert_id = %alert_id, "alert acknowledged over HTTP");
            axum::Json(event).into_response()
        }
        None => {
            let firing: Vec<String> = alerting
                .active()
                .into_iter()
                .filter(|a| !a.acknowledged)
                .map(|a| a.alert_id)
                .collect();
            error(
                StatusCode::NOT_FOUND,
                format!(
                    "no unacknowledged firing alert `{alert_id}`; firing now: {}",
                    if firing.is_empty() {
                        "none".to_owned()
                    } else {
                        firing.join(", ")
                    }
                ),
            )
        }
    }
}
