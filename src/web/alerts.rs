//! `GET /alerts`: past and present alerts from the alerts Delta table (the one a sink
//! appends to), as episodes (fired → acknowledged → resolved) with durations, and the
//! actions taken (by operators and by rules' remediation), filtered by time range,
//! severity, check, rule, state and host; firing ones can be acknowledged from there
//! (the same token rules). Times are in the desk's zone. `GET /alerts.csv` streams the
//! filtered events, at most [`CSV_ROWS`] rows, with every field a spreadsheet could
//! take for a formula neutralised.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Web, error};
use crate::alert::{AlertEvent, AlertState, Severity};

/// One alert from firing to resolve.
#[derive(Debug, Clone, Serialize)]
struct Episode {
    alert_id: String,
    rule: String,
    check_id: String,
    host: String,
    severity: String,
    /// The badge's class.
    class: &'static str,
    /// Why it fired (the firing message, as the latest reminder said it).
    message: String,
    /// What resolved it (the resolve event's text), once resolved.
    resolution: Option<String>,
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
    host: Option<String>,
}

/// The longest range `hours` can ask for: ten years.
const MAX_HOURS: u32 = 24 * 366 * 10;

impl Filters {
    /// The start of the range, never out of chrono's range whatever `hours` says.
    fn since(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let hours = self.hours.unwrap_or(720).min(MAX_HOURS);
        chrono::Duration::try_hours(i64::from(hours))
            .and_then(|d| now.checked_sub_signed(d))
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }
}

fn class(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "s-critical",
        Severity::Warning => "s-warning",
        Severity::Info => "s-unknown",
    }
}

fn keep(f: &Filters, e: &AlertEvent) -> bool {
    let is = |want: &Option<String>, have: &str| {
        want.as_deref()
            .is_none_or(|w| w.is_empty() || w.eq_ignore_ascii_case(have))
    };
    is(&f.severity, e.severity.as_str())
        && is(&f.check, &e.check_id)
        && is(&f.rule, &e.rule)
        && is(&f.host, &e.host)
}

/// One episode's events as they are grouped: references into the shared read, so
/// grouping a month of a busy table copies no text.
struct Group<'a> {
    /// The earliest event (the episode's rule, check, host, severity, start).
    first: &'a AlertEvent,
    /// The latest firing event (why it fired, as the latest reminder said it).
    fired: Option<&'a AlertEvent>,
    acknowledged_at: Option<DateTime<Utc>>,
    /// The latest resolve.
    resolved: Option<&'a AlertEvent>,
}

impl Group<'_> {
    fn state(&self) -> &'static str {
        match (self.resolved, self.acknowledged_at) {
            (Some(_), _) => "resolved",
            (None, Some(_)) => "acknowledged",
            (None, None) => "firing",
        }
    }
}

/// The episodes of `events` (actions left out) whose state is `state` (any: `None`),
/// newest first: how many there are, and the first `shown` of them.
fn episodes<'a>(
    events: impl Iterator<Item = &'a AlertEvent>,
    state: Option<&str>,
    shown: usize,
    active: &[String],
    now: DateTime<Utc>,
) -> (usize, Vec<Episode>) {
    let mut by_id: std::collections::HashMap<&str, Group<'a>> = std::collections::HashMap::new();
    for e in events.filter(|e| e.state != AlertState::Action) {
        let g = by_id.entry(&e.alert_id).or_insert(Group {
            first: e,
            fired: None,
            acknowledged_at: None,
            resolved: None,
        });
        if e.event_at < g.first.event_at {
            g.first = e;
        }
        let later = |had: Option<&AlertEvent>| had.is_none_or(|h| e.event_at >= h.event_at);
        match e.state {
            AlertState::Acknowledged => {
                g.acknowledged_at = Some(g.acknowledged_at.map_or(e.event_at, |a| a.min(e.event_at)));
            }
            AlertState::Resolved if later(g.resolved) => g.resolved = Some(e),
            AlertState::Firing if later(g.fired) => g.fired = Some(e),
            _ => {}
        }
    }
    let mut groups: Vec<Group<'a>> = by_id
        .into_values()
        .filter(|g| state.is_none_or(|s| g.state() == s))
        .collect();
    let total = groups.len();
    groups.sort_unstable_by(|a, b| {
        b.first
            .started_at
            .cmp(&a.first.started_at)
            .then_with(|| b.first.alert_id.cmp(&a.first.alert_id))
    });
    groups.truncate(shown);
    let out = groups
        .into_iter()
        .map(|g| {
            let e = g.first;
            let state = g.state();
            let resolved_at = g.resolved.map(|r| r.event_at);
            let end = resolved_at.unwrap_or(now);
            let secs = (end - e.started_at).num_seconds().max(0) as u64;
            Episode {
                alert_id: e.alert_id.clone(),
                rule: e.rule.clone(),
                check_id: e.check_id.clone(),
                host: e.host.clone(),
                severity: e.severity.as_str().to_owned(),
                class: class(e.severity),
                message: g.fired.unwrap_or(e).message.clone(),
                resolution: g.resolved.map(|r| r.message.clone()),
                started_at: e.started_at,
                acknowledged_at: g.acknowledged_at,
                resolved_at,
                state,
                duration: crate::duration::format(std::time::Duration::from_secs(secs)),
                ack_url: (state != "resolved" && active.contains(&e.alert_id))
                    .then(|| format!("/api/alerts/{}/ack", e.alert_id)),
            }
        })
        .collect();
    (total, out)
}

/// At most this many episodes on the page (the CSV has more).
const SHOWN: usize = 1000;

/// At most this many actions on the page.
const ACTIONS_SHOWN: usize = 200;

/// At most this many rows in one CSV (a longer range is asked for in parts).
pub const CSV_ROWS: usize = 100_000;

/// `GET /alerts`.
pub(super) async fn page(State(web): State<Arc<Web>>, Query(f): Query<Filters>) -> Response {
    let Some(table) = &web.alerts_table else {
        return error(
            StatusCode::NOT_FOUND,
            "no alerts table: add a sink of kind `delta` to keep the alerts' history",
        );
    };
    let now = Utc::now();
    let events = match table.events(f.since(now)).await {
        Ok(e) => e,
        Err(e) => return unreadable(&e),
    };
    let kept = || events.iter().map(|(_, e)| e).filter(|e| keep(&f, e));
    let active: Vec<String> = web
        .alerting
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .active()
        .into_iter()
        .map(|a| a.alert_id)
        .collect();
    let state = f.state.as_deref().filter(|s| !s.is_empty());
    let (total, all) = episodes(kept(), state, SHOWN, &active, now);
    let mut actions: Vec<serde_json::Value> = kept()
        .filter(|e| e.state == AlertState::Action && state.is_none_or(|s| s == "action"))
        .map(|e| {
            serde_json::json!({
                "at": e.event_at, "check_id": e.check_id, "host": e.host, "message": e.message,
                "by": if e.rule == "action" { "operator".to_owned() } else { format!("rule {}", e.rule) },
            })
        })
        .collect();
    actions.sort_by(|a, b| b["at"].as_str().cmp(&a["at"].as_str()));
    let actions_total = actions.len();
    actions.truncate(ACTIONS_SHOWN);
    let cx = minijinja::context! {
        episodes => all,
        total => total,
        shown => SHOWN.min(total),
        actions => actions,
        actions_total => actions_total,
        f => f,
        csv => format!("/alerts.csv{}", query(&f)),
        actions_enabled => web.actions_enabled(),
        host => web.host,
        zone => web.zone.name(),
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

/// The parameters of `GET /api/alert-events`.
#[derive(Debug, Deserialize)]
pub(super) struct EventsQuery {
    check: String,
    /// How far back (default 24 h).
    hours: Option<u32>,
}

/// At most this many events in one `/api/alert-events` answer.
const EVENTS_SHOWN: usize = 1000;

/// `GET /api/alert-events?check=&hours=`: one check's firing and resolved events (the
/// trend charts' markers), newest last, as JSON.
pub(super) async fn events(State(web): State<Arc<Web>>, Query(q): Query<EventsQuery>) -> Response {
    let Some(table) = &web.alerts_table else {
        return axum::Json(serde_json::json!({"events": []})).into_response();
    };
    let f = Filters {
        hours: Some(q.hours.unwrap_or(24)),
        check: Some(q.check),
        ..Default::default()
    };
    let events = match table.events(f.since(Utc::now())).await {
        Ok(e) => e,
        Err(e) => return unreadable(&e),
    };
    let mut kept: Vec<serde_json::Value> = events
        .iter()
        .map(|(_, e)| e)
        .filter(|e| keep(&f, e) && matches!(e.state, AlertState::Firing | AlertState::Resolved))
        .map(|e| serde_json::json!({"state": e.state, "event_at": e.event_at, "rule": e.rule, "alert_id": e.alert_id}))
        .collect();
    kept.sort_by(|a, b| a["event_at"].as_str().cmp(&b["event_at"].as_str()));
    let drop = kept.len().saturating_sub(EVENTS_SHOWN);
    kept.drain(..drop);
    axum::Json(serde_json::json!({"events": kept})).into_response()
}

/// A 503 for a table that cannot be read, without its location (an unauthenticated
/// reader learns nothing of the host's paths: the log has it).
fn unreadable(e: &crate::delta::OpenError) -> Response {
    tracing::debug!("cannot read the alerts table: {e}");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "cannot read the alerts table now: vitals' log says why",
    )
}

/// The filters as a query string (`?hours=24&check=positions`).
fn query(f: &Filters) -> String {
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
    push("host", f.host.clone());
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// One CSV field: quoted when it must be, and a text a spreadsheet would take for a
/// formula (`=`, `+`, `-`, `@`, a tab or a carriage return first) led by a `'`, as
/// OWASP advises against CSV injection.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// The CSV's columns.
const CSV_HEADER: &str = "alert_id,rule,check_id,severity,state,message,value,started_at,event_at,host\n";

fn csv_row(e: &AlertEvent, zone: crate::timezone::DeskZone) -> String {
    let mut row = [
        csv_field(&e.alert_id),
        csv_field(&e.rule),
        csv_field(&e.check_id),
        csv_field(e.severity.as_str()),
        csv_field(e.state.as_str()),
        csv_field(&e.message),
        e.value.map(|v| v.to_string()).unwrap_or_default(),
        zone.rfc3339(e.started_at),
        zone.rfc3339(e.event_at),
        csv_field(&e.host),
    ]
    .join(",");
    row.push('\n');
    row
}

/// `GET /alerts.csv`: the filtered events, one row each, oldest first, streamed; at
/// most [`CSV_ROWS`] (the newest ones; the header `x-vitals-rows-capped` says so).
pub(super) async fn csv(State(web): State<Arc<Web>>, Query(f): Query<Filters>) -> Response {
    let Some(table) = &web.alerts_table else {
        return error(
            StatusCode::NOT_FOUND,
            "no alerts table: add a sink of kind `delta`",
        );
    };
    let events = match table.events(f.since(Utc::now())).await {
        Ok(e) => e,
        Err(e) => return unreadable(&e),
    };
    let state = f.state.clone().filter(|s| !s.is_empty());
    // The rows by their place in the (shared) read: no copy of the events.
    let mut rows: Vec<usize> = events
        .iter()
        .filter(|(_, e)| keep(&f, e) && state.as_deref().is_none_or(|s| e.state.as_str() == s))
        .map(|(i, _)| i)
        .collect();
    rows.sort_by_key(|&i| events.get(i).event_at);
    let capped = rows.len() > CSV_ROWS;
    if capped {
        rows.drain(..rows.len() - CSV_ROWS);
    }
    let zone = web.zone;
    // Written 500 rows at a time as the client reads: the whole text is never in
    // memory.
    use futures::StreamExt as _;
    let head = futures::stream::once(async {
        Ok::<_, std::convert::Infallible>(axum::body::Bytes::from(CSV_HEADER))
    });
    let body = futures::stream::unfold((events, rows, 0), move |(events, rows, at)| async move {
        let end = (at + 500).min(rows.len());
        let text: String = rows[at..end]
            .iter()
            .map(|&i| csv_row(events.get(i), zone))
            .collect();
        (!text.is_empty()).then(|| (Ok(axum::body::Bytes::from(text)), (events, rows, end)))
    });
    let chunks = head.chain(body);
    let mut r = Response::new(Body::from_stream(chunks));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        header::HeaderValue::from_static("attachment; filename=\"alerts.csv\""),
    );
    if capped {
        h.insert("x-vitals-rows-capped", header::HeaderValue::from(CSV_ROWS));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_formula_never_reaches_a_spreadsheet() {
        assert_eq!(
            csv_field("=HYPERLINK(\"http://x\")"),
            "\"'=HYPERLINK(\"\"http://x\"\")\""
        );
        assert_eq!(csv_field("+1"), "'+1");
        assert_eq!(csv_field("-2"), "'-2");
        assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_field("positions stale"), "positions stale");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
    }

    #[test]
    fn any_range_is_a_time() {
        let now = Utc::now();
        for hours in [None, Some(0), Some(1), Some(u32::MAX)] {
            let f = Filters {
                hours,
                ..Default::default()
            };
            assert!(f.since(now) <= now);
        }
    }
}
