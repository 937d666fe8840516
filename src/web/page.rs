//! `GET /`: the status page, rendered on the server from `page.html.j2`. The page
//! knows no check kind: its sections are the ones the registered kinds declare
//! ([`crate::panel`]), in their order, each check rendered by its kind's partial (or
//! the generic `card.html.j2`), then the alerts, then "Other checks" for kinds without
//! a panel. `page.js` refreshes the sections every 5 s from the same page without a
//! full reload, counts ages up between refreshes, filters tables and posts the actions.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use minijinja::{AutoEscape, Environment};
use serde::Serialize;
use serde_json::{Value, json};

use super::Web;
use super::markets::MarketView;
use crate::alert::Severity;
use crate::board::Sample;
use crate::check::{ActionSpec, Checks, Observation, Status};
use crate::panel::{Layout, Section};
use crate::plugin::Kinds;

/// The generic panel of a kind that declares a section but no partial.
const CARD: &str = "card.html";

/// The page's templates: its own, the macros partials use, and every registered kind's
/// partial under the kind's name. Everything is HTML-escaped, whatever its name.
pub fn templates(kinds: &Kinds<Checks>) -> Result<Environment<'static>, minijinja::Error> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
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
    label: &'static str,
    description: &'static str,
    destructive: bool,
    /// The question a destructive action asks first.
    confirm: String,
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
    /// The template that renders it.
    template: &'static str,
    /// Its section's id and its panel's rank, or `None` for "Other checks".
    #[serde(skip)]
    place: Option<(&'static str, u8)>,
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
    let kind = web.kinds.get(&o.kind);
    let panel = kind.and_then(|k| k.panel());
    let template = match (kind, panel) {
        (Some(k), Some(p)) if p.template.is_some() => k.name,
        _ => CARD,
    };
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
            .filter(|_| web.actions_enabled())
            .map(|a| Action {
                name: a.name,
                label: a.label,
                description: a.description,
                destructive: a.destructive,
                confirm: format!("{} {}: {}. Go ahead?", a.label, o.id, a.description),
                url: format!("/api/checks/{}/actions/{}", o.id, a.name),
            })
            // Every check can be run now, whatever its kind.
            .chain(web.actions_enabled().then(|| Action {
                name: "run",
                label: "Run now",
                description: "runs the check once now and shows the result",
                destructive: false,
                confirm: String::new(),
                url: format!("/api/checks/{}/run", o.id),
            }))
            .collect(),
        spark: sparkline(&web.board.history(&o.id), &o.unit, now),
        template,
        place: panel.map(|p| (p.section.id, p.rank)),
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
    let (mut alerts, held, calendars) = {
        let a = web.alerting.lock().unwrap_or_else(|e| e.into_inner());
        (a.active(), a.held(), a.calendars())
    };
    let markets = super::markets::views(calendars, now);
    let sections = sections(web.kinds, &views, &markets);
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
        sections => sections,
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

/// One section as the template sees it.
#[derive(Serialize)]
struct SectionView<'v> {
    id: &'static str,
    title: &'static str,
    /// `stack`, `grid` or `table`.
    layout: &'static str,
    columns: &'static [&'static str],
    placeholder: Option<&'static str>,
    head: &'static str,
    checks: Vec<&'v View>,
    /// The market calendars its checks follow.
    markets: Vec<&'v MarketView>,
}

/// The sections the registered kinds declare, in their order, each with its checks
/// (by panel rank, then id). A section without checks shows its placeholder, or is
/// left out when it has none.
fn sections<'v>(kinds: &Kinds<Checks>, views: &'v [View], markets: &'v [MarketView]) -> Vec<SectionView<'v>> {
    let mut declared: Vec<&'static Section> = Vec::new();
    for kind in kinds.kinds() {
        if let Some(p) = kind.panel()
            && !declared.iter().any(|s| s.same(p.section))
        {
            declared.push(p.section);
        }
    }
    declared.sort_by_key(|s| (s.order, s.id));
    declared
        .into_iter()
        .filter_map(|s| {
            let mut checks: Vec<&View> = views
                .iter()
                .filter(|v| v.place.is_some_and(|(id, _)| id == s.id))
                .collect();
            checks.sort_by_key(|v| (v.place.map(|p| p.1), &v.id));
            if checks.is_empty() && s.placeholder.is_none() {
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
                placeholder: s.placeholder,
                head: s.head,
                checks,
            })
        })
        .collect()
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
