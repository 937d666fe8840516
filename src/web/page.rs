//! `GET /`: the status page, rendered on the server from `page.html.j2`. The page
//! knows no check kind: its sections are the ones the registered kinds declare
//! ([`crate::panel`]), in their order, each check rendered by its kind's partial (or
//! the generic `card.html.j2`), then the alerts, then "Other checks" for kinds without
//! a panel. `page.js` refreshes the sections every 5 s from the same page without a
//! full reload, counts ages up between refreshes, filters tables and posts the actions.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use minijinja::{AutoEscape, Environment};
use serde::Serialize;
use serde_json::{Value, json};

use super::Web;
use super::markets::MarketView;
use super::view::{View, look, view};
use crate::alert::Severity;
use crate::check::{Checks, Status};
use crate::panel::{Layout, Section};
use crate::plugin::Kinds;

use super::view::CARD;

/// The page's templates: its own, the macros partials use, and every registered kind's
/// partial under the kind's name. Everything is HTML-escaped, whatever its name. The
/// filter `local` shows an RFC 3339 time in the desk's zone ("2026-12-04 09:31:05
/// EST"), `num` a number without a trailing `.0` ("30", "0.5").
pub fn templates(
    kinds: &Kinds<Checks>,
    zone: crate::timezone::DeskZone,
) -> Result<Environment<'static>, minijinja::Error> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.add_filter("local", move |t: String| zone.date_time_text(&t));
    // A value that is not a number (a detail a failed read did not write) shows as
    // itself, or as "—": a partial never fails on it.
    env.add_filter("num", |v: minijinja::Value| match f64::try_from(v.clone()) {
        Ok(n) => crate::thresholds::fmt_num(n),
        Err(_) if v.is_undefined() || v.is_none() => "—".to_owned(),
        Err(_) => v.to_string(),
    });
    env.add_template("page.html", include_str!("page.html.j2"))?;
    env.add_template("alerts.html", include_str!("alerts.html.j2"))?;
    env.add_template("macros.html", include_str!("macros.html.j2"))?;
    env.add_template(CARD, include_str!("card.html.j2"))?;
    for kind in kinds.kinds() {
        if let Some(template) = kind.panel().and_then(|p| p.template) {
            env.add_template(kind.name, template)?;
        }
    }
    Ok(env)
}

/// Where the render's time goes in the page (its ETag leaves it out).
const GENERATED_AT: &str = "@vitals-generated-at@";
const GENERATED_SHOWN: &str = "@vitals-generated-shown@";

/// The page for what the board and alerting hold now, with markers where the render's
/// time goes.
fn rendered(web: &Web) -> Result<super::cache::Render, minijinja::Error> {
    let now = Utc::now();
    let body = render(web, now, GENERATED_AT, GENERATED_SHOWN)?;
    Ok(super::cache::Render {
        body: body.into_bytes(),
        fills: vec![
            (GENERATED_AT, now.to_rfc3339()),
            (GENERATED_SHOWN, web.zone.time(now).to_string()),
        ],
    })
}

/// The page's HTML for what the board and alerting hold at `now`, rendered at
/// `generated_at` (shown as `generated_shown`).
fn render(
    web: &Web,
    now: chrono::DateTime<Utc>,
    generated_at: &str,
    generated_shown: &str,
) -> Result<String, minijinja::Error> {
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
    let (mut alerts, held, calendars, sinks) = {
        let a = web.alerting.lock().unwrap_or_else(|e| e.into_inner());
        (a.active(), a.held(), a.calendars(), a.sinks())
    };
    let markets = super::markets::views(calendars, now);
    let (sections, not_configured) = sections(web.kinds, &views, &markets);
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
    // The checks that are not ok, worst first: the header links to each.
    let mut problems: Vec<&View> = views.iter().filter(|v| v.status != "ok").collect();
    problems.sort_by_key(|v| {
        let rank = match v.status {
            "critical" => 0,
            "unknown" => 1,
            _ => 2,
        };
        (rank, v.id.clone())
    });
    let problems: Vec<Value> = problems
        .iter()
        .map(|v| json!({"id": v.id, "class": v.class, "icon": v.icon, "text": v.text}))
        .collect();
    let failing_sinks: Vec<Value> = sinks
        .iter()
        .filter(|s| s.state == crate::dispatch::SinkState::Failing)
        .map(|s| {
            json!({"id": s.id, "kind": s.kind, "since": s.since.to_rfc3339(),
                   "since_shown": web.zone.time(s.since), "last_error": s.last_error, "queued": s.queued})
        })
        .collect();
    // With the history on: a chart per check.
    let trends: Vec<Value> = if web.history.is_some() {
        views
            .iter()
            .map(|v| json!({"id": v.id, "kind": v.kind, "unit": v.unit}))
            .collect()
    } else {
        Vec::new()
    };
    alerts.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.started_at.cmp(&b.started_at)));
    let alerts: Vec<Value> = alerts
        .iter()
        .map(|a| {
            let class = match a.severity {
                Severity::Critical => "s-critical",
                Severity::Warning => "s-warning",
                Severity::Info => "s-unknown",
            };
            json!({
                "alert_id": a.alert_id, "rule": a.rule, "check_id": a.check_id,
                "severity": a.severity.as_str(), "class": class, "message": a.message,
                "started_at": a.started_at.to_rfc3339(), "started_shown": web.zone.time(a.started_at),
                "acknowledged": a.acknowledged,
                "ack_url": format!("/api/alerts/{}/ack", a.alert_id),
                "remediation": a.remediation.as_ref().map(|r| remediation_text(r, now, &web.zone)),
                "remediation_paused": a.remediation.as_ref().is_some_and(|r| r.paused),
                "pause_url": format!("/api/alerts/{}/remediation/pause", a.alert_id),
                "history": format!("/alerts?check={}&rule={}", query_value(&a.check_id), query_value(&a.rule)),
            })
        })
        .collect();
    let cx = minijinja::context! {
        generated_at => generated_at,
        generated_shown => generated_shown,
        zone => web.zone.name(),
        host => web.host,
        actions_enabled => web.actions_enabled(),
        token_env => web.token_env,
        overall => json!({"icon": icon, "class": class, "text": worst.as_str().to_uppercase()}),
        counts => json!({
            "ok": counts(Status::Ok), "warning": counts(Status::Warning),
            "critical": counts(Status::Critical), "unknown": counts(Status::Unknown),
        }),
        problems => problems,
        failing_sinks => failing_sinks,
        sections => sections,
        not_configured => not_configured,
        others => views.iter().filter(|v| v.place.is_none()).collect::<Vec<_>>(),
        alerts => alerts,
        held => held,
        trends => trends,
    };
    let env = web.templates.as_ref().map_err(|e| {
        minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!("a kind's panel template is invalid: {e:#}"),
        )
    })?;
    env.get_template("page.html")?.render(cx)
}

/// `s` as a query parameter's value (ids and rule names are letters, digits, `_`, `-`
/// and `:`; anything else is escaped).
fn query_value(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One section as the template sees it.
#[derive(Serialize)]
struct SectionView<'v> {
    id: &'static str,
    title: &'static str,
    /// `stack`, `grid` or `table`.
    layout: &'static str,
    columns: &'static [&'static str],
    head: &'static str,
    checks: Vec<&'v View>,
    /// The market calendars its checks follow.
    markets: Vec<&'v MarketView>,
}

/// A section no configured check fills, for the one "Not configured" line.
#[derive(Serialize)]
struct Unconfigured {
    title: &'static str,
    /// The kinds that would fill it.
    kinds: Vec<&'static str>,
}

/// The sections the registered kinds declare, in their order, each with its checks (by
/// panel rank, then id); and the sections no check fills (those `listed_when_empty`),
/// which the page lists on one line instead of showing empty boxes.
fn sections<'v>(
    kinds: &Kinds<Checks>,
    views: &'v [View],
    markets: &'v [MarketView],
) -> (Vec<SectionView<'v>>, Vec<Unconfigured>) {
    let mut declared: Vec<&'static Section> = Vec::new();
    for kind in kinds.kinds() {
        if let Some(p) = kind.panel()
            && !declared.iter().any(|s| s.same(p.section))
        {
            declared.push(p.section);
        }
    }
    declared.sort_by_key(|s| (s.order, s.id));
    let mut empty = Vec::new();
    let shown = declared
        .into_iter()
        .filter_map(|s| {
            let mut checks: Vec<&View> = views
                .iter()
                .filter(|v| v.place.is_some_and(|(id, _)| id == s.id))
                .collect();
            checks.sort_by_key(|v| (v.place.map(|p| p.1), &v.id));
            if checks.is_empty() {
                if s.listed_when_empty {
                    empty.push(Unconfigured {
                        title: s.title,
                        kinds: kinds
                            .kinds()
                            .filter(|k| k.panel().is_some_and(|p| p.section.same(s)))
                            .map(|k| k.name)
                            .collect(),
                    });
                }
                return None;
            }
            let (layout, columns) = match s.layout {
                Layout::Stack => ("stack", &[][..]),
                Layout::Grid => ("grid", &[][..]),
                Layout::Table { columns } => ("table", columns),
            };
            let markets = markets
                .iter()
                .filter(|m| checks.iter().any(|v| m.checks.contains(&v.id)))
                .collect();
            Some(SectionView {
                markets,
                id: s.id,
                title: s.title,
                layout,
                columns,
                head: s.head,
                checks,
            })
        })
        .collect();
    (shown, empty)
}

pub async fn page(State(web): State<Arc<Web>>, headers: axum::http::HeaderMap) -> Response {
    match web.cached("page", || rendered(&web)) {
        Ok(html) => html.respond(&headers, "text/html; charset=utf-8"),
        Err(e) => super::error(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            format!("the page could not be rendered: {e}"),
        ),
    }
}

pub async fn css(State(web): State<Arc<Web>>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        web.stylesheet.clone(),
    )
        .into_response()
}

/// The page's stylesheet: its own, then the CSS each registered kind's panel brings
/// (once per panel, in kind order).
pub fn stylesheet(kinds: &Kinds<Checks>) -> String {
    let mut css = include_str!("page.css").to_owned();
    let mut seen: Vec<*const crate::panel::Panel> = Vec::new();
    for kind in kinds.kinds() {
        if let Some(p) = kind.panel().filter(|p| !p.css.is_empty())
            && !seen.contains(&std::ptr::from_ref(p))
        {
            seen.push(std::ptr::from_ref(p));
            css.push_str(&format!("\n/* {} */\n{}", kind.name, p.css));
        }
    }
    css
}

/// A static file with its type, cached for 5 minutes.
fn asset(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        body,
    )
        .into_response()
}

pub async fn trends_js() -> Response {
    asset("text/javascript; charset=utf-8", include_str!("trends.js"))
}

pub async fn uplot_js() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("vendor/uplot/uPlot.iife.min.js"),
    )
}

pub async fn uplot_css() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("vendor/uplot/uPlot.min.css"),
    )
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

/// A firing alert's remediation in a line: "auto force_sync: 2 of 3 attempts made, next
/// in 4m 12s", "auto force_sync gave up after 3 attempts …", "… paused".
fn remediation_text(
    r: &crate::rules::RemediationView,
    now: chrono::DateTime<chrono::Utc>,
    zone: &crate::timezone::DeskZone,
) -> String {
    let dry = if r.dry_run { " (dry run)" } else { "" };
    let last = r
        .last_outcome
        .as_deref()
        .map(|o| format!("; last: {o}"))
        .unwrap_or_default();
    if r.paused {
        return format!("auto {}{dry} paused for this alert{last}", r.action);
    }
    if r.gave_up {
        let again = r
            .next_at
            .map(|t| {
                format!(
                    "; tries again when the window frees an attempt, at {}",
                    zone.time(t)
                )
            })
            .unwrap_or_default();
        return format!(
            "auto {}{dry} gave up after {} attempts{last}{again}",
            r.action, r.attempts
        );
    }
    let next = r
        .next_at
        .map(|t| {
            let secs = (t - now).num_seconds().max(0) as u64;
            format!(
                ", next in {}",
                crate::duration::format(std::time::Duration::from_secs(secs))
            )
        })
        .unwrap_or_default();
    format!(
        "auto {}{dry}: {} of {} attempts made{next}{last}",
        r.action, r.attempts, r.max_attempts
    )
}
