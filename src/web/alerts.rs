//! `GET /alerts`: past and present alerts from the alerts Delta table (the `delta`
//! sink's), as episodes (fired → acknowledged → resolved) with durations, filtered by
//! time range, severity, check, rule and state; firing ones can be acknowledged from
//! there (the same token rules); `GET /alerts.csv` downloads the filtered events.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::alert::{AlertEvent, AlertState};

use super::{Web, error};

/// One alert from firing to resolve.
#[derive(Debug, Clone, Serialize)]
struct Episode {
    alert_id: String,
    rule: String,
    check_id: String,
    severity: String,
    message: String,
    started_at: DateTime<Utc>,
    acknowledged_at: Option<DateTime<Utc>>,
    resolved_at: Option<DateTime<Utc>>,
    /// firing, acknowledged or resolved.
    state: &'static str,
    duration: String,
    ack_url: Option<String>,
}

/// The filters, as query parameters.
#[derive(Debug, Default, Deserialize, Serialize)]
pub(super) struct Filters {
    /// Only episodes started within this many hours (default 720: 30 days).
    hours: Option<u32>,
    severity: Option<String>,
    check: Option<String>,
    rule: Option<String>,
    state: Option<String>,
}

fn keep(f: &Filters, e: &AlertEvent) -> bool {
    let is = |want: &Option<String>, have: &str| {
        want.as_deref()
            .is_none_or(|w| w.is_empty() || w.eq_ignore_ascii_case(have))
    };
    is(&f.severity, e.severity.as_str()) && is(&f.check, &e.check_id) && is(&f.rule, &e.rule)
}

fn episodes(events: &[AlertEvent], active: &[String], now: DateTime<Utc>) -> Vec<Episode> {
    let mut by_id: BTreeMap<&str, Episode> = BTreeMap::new();
    let mut sorted: Vec<&AlertEvent> = events.iter().filter(|e| e.state != AlertState::Action).collect();
    sorted.sort_by_key(|e| e.event_at);
    for e in sorted {
        let ep = by_id.entry(&e.alert_id).or_insert_with(|| Episode {
            alert_id: e.alert_id.clone(),
            rule: e.rule.clone(),
            check_id: e.check_id.clone(),
            severity: e.severity.as_str().to_owned(),
            message: e.message.clone(),
            started_at: e.started_at,
            acknowledged_at: None,
            resolved_at: None,
            state: "firing",
            duration: String::new(),
            ack_url: None,
        });
        match e.state.as_str() {
            "acknowledged" => ep.acknowledged_at = ep.acknowledged_at.or(Some(e.event_at)),
            "resolved" => {
                ep.resolved_at = Some(e.event_at);
                ep.message = e.message.clone();
            }
            _ => {}
        }
    }
    let mut out: Vec<Episode> = by_id
        .into_values()
        .map(|mut ep| {
            ep.state = match (ep.resolved_at, ep.acknowledged_at) {
                (Some(_), _) => "resolved",
                (None, Some(_)) => "acknowledged",
                (None, None) => "firing",
            };
            let end = ep.resolved_at.unwrap_or(now);
            let secs = (end - ep.started_at).num_seconds().max(0) as u64;
            ep.duration = crate::duration::format(std::time::Duration::from_secs(secs));
            if ep.state == "firing" && active.contains(&ep.alert_id) {
                ep.ack_url = Some(format!("/api/alerts/{}/ack", ep.alert_id));
            }
            ep
        })
        .collect();
    out.sort_by_key(|e| std::cmp::Reverse(e.started_at));
    out
}

/// At most this many episodes on the page (the CSV has all).
const SHOWN: usize = 1000;

/// `GET /alerts`.
pub(super) async fn page(State(web): State<Arc<Web>>, Query(f): Query<Filters>) -> Response {
    let Some(table) = &web.alerts_table else {
        return error(
            StatusCode::NOT_FOUND,
            "no alerts table: add a sink of kind `delta` to keep the alerts' history",
        );
    };
    let now = Utc::now();
    let since = now - chrono::Duration::hours(i64::from(f.hours.unwrap_or(720)));
    let events = match crate::alerts_table::read(table, since).await {
        Ok(e) => e,
        Err(e) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot read the alerts table {}: {e}", table.location),
            );
        }
    };
    let kept: Vec<AlertEvent> = events.into_iter().filter(|e| keep(&f, e)).collect();
    let active: Vec<String> = web
        .alerting
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .active()
        .into_iter()
        .map(|a| a.alert_id)
        .collect();
    let mut all = episodes(&kept, &active, now);
    if let Some(state) = f.state.as_deref().filter(|s| !s.is_empty()) {
        all.retain(|e| e.state == state);
    }
    let total = all.len();
    all.truncate(SHOWN);
    let query = serde_urlencoded_query(&f);
    let cx = minijinja::context! {
        episodes => all,
        total => total,
        shown => SHOWN.min(total),
        f => f,
        csv => format!("/alerts.csv{query}"),
        actions_enabled => web.actions_enabled(),
        host => web.host,
    };
    let env = match web.templates.as_ref() {
        Ok(env) => env,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    match env.get_template("alerts.html").and_then(|t| t.render(cx)) {
        Ok(html) => Html(html).into_response(),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot render the alerts page: {e:#}"),
        ),
    }
}

fn serde_urlencoded_query(f: &Filters) -> String {
    let mut parts = Vec::new();
    let mut push = |k: &str, v: Option<String>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            let v: String = v
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
                    _ => format!("%{b:02X}"),
                })
                .collect();
            parts.push(format!("{k}={v}"));
        }
    };
    push("hours", f.hours.map(|h| h.to_string()));
    push("severity", f.severity.clone());
    push("check", f.check.clone());
    push("rule", f.rule.clone());
    push("state", f.state.clone());
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// `GET /alerts.csv`: the filtered events, one row each.
pub(super) async fn csv(State(web): State<Arc<Web>>, Query(f): Query<Filters>) -> Response {
    let Some(table) = &web.alerts_table else {
        return error(
            StatusCode::NOT_FOUND,
            "no alerts table: add a sink of kind `delta`",
        );
    };
    let since = Utc::now() - chrono::Duration::hours(i64::from(f.hours.unwrap_or(720)));
    let events = match crate::alerts_table::read(table, since).await {
        Ok(e) => e,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    let mut rows: Vec<&AlertEvent> = events.iter().filter(|e| keep(&f, e)).collect();
    if let Some(state) = f.state.as_deref().filter(|s| !s.is_empty()) {
        rows.retain(|e| e.state.as_str() == state);
    }
    rows.sort_by_key(|e| e.event_at);
    let mut out = String::from("alert_id,rule,check_id,severity,state,message,value,started_at,event_at\n");
    for e in rows {
        out.push_str(
            &[
                csv_field(&e.alert_id),
                csv_field(&e.rule),
                csv_field(&e.check_id),
                csv_field(e.severity.as_str()),
                csv_field(e.state.as_str()),
                csv_field(&e.message),
                e.value.map(|v| v.to_string()).unwrap_or_default(),
                e.started_at.to_rfc3339(),
                e.event_at.to_rfc3339(),
            ]
            .join(","),
        );
        out.push('\n');
    }
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"alerts.csv\""),
        ],
        out,
    )
        .into_response()
}
