//! One check as the page's templates see it (`v` in a kind's partial; src/panel.rs
//! documents its fields): its look, its value as shown, its sparkline, its buttons.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde::Serialize;
use serde_json::Value;

use super::Web;

/// The generic panel of a kind that declares a section but no partial.
pub(super) const CARD: &str = "card.html";
use crate::board::Sample;
use crate::check::{ActionSpec, Observation, Status};

/// Icon and class for a status: shown with its text, never colour alone.
pub(super) fn look(status: Status) -> (&'static str, &'static str) {
    match status {
        Status::Ok => ("✔", "s-ok"),
        Status::Warning => ("▲", "s-warning"),
        Status::Critical => ("✖", "s-critical"),
        Status::Unknown => ("?", "s-unknown"),
    }
}

#[derive(Serialize)]
pub(super) struct Action {
    pub(super) name: &'static str,
    pub(super) label: &'static str,
    pub(super) description: &'static str,
    pub(super) destructive: bool,
    /// The question a destructive action asks first.
    pub(super) confirm: String,
    pub(super) url: String,
}

/// One observation as the template sees it.
#[derive(Serialize)]
pub(super) struct View {
    pub(super) id: String,
    pub(super) kind: String,
    pub(super) status: &'static str,
    pub(super) class: &'static str,
    pub(super) icon: &'static str,
    pub(super) text: String,
    pub(super) message: String,
    pub(super) value: Option<f64>,
    pub(super) shown: String,
    pub(super) unit: String,
    pub(super) observed_at: String,
    pub(super) since: String,
    pub(super) details: Value,
    pub(super) actions: Vec<Action>,
    /// Sparkline points (SVG polyline) of the last hour.
    pub(super) spark: String,
    /// The template that renders it.
    pub(super) template: &'static str,
    /// Its section's id and its panel's rank, or `None` for "Other checks".
    #[serde(skip)]
    pub(super) place: Option<(&'static str, u8)>,
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
    let points = thin(points);
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

/// Most points a sparkline draws: 120 px wide, two points a pixel pair. A check at
/// 10 s has 360 samples in its hour; drawn whole, 1,000 such checks made the page
/// grow by megabytes over its first hour (docs/performance.md, "Soak").
const SPARK_POINTS: usize = 60;

/// At most [`SPARK_POINTS`]: in each of half as many stretches, its lowest and its
/// highest point in time order, so a spike is never thinned away.
fn thin(points: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    if points.len() <= SPARK_POINTS {
        return points;
    }
    let stretch = points.len().div_ceil(SPARK_POINTS / 2);
    let mut out = Vec::with_capacity(SPARK_POINTS);
    for chunk in points.chunks(stretch) {
        let by_y = |a: &&(f64, f64), b: &&(f64, f64)| a.1.total_cmp(&b.1);
        let (Some(lo), Some(hi)) = (chunk.iter().min_by(by_y), chunk.iter().max_by(by_y)) else {
            continue;
        };
        if lo.0 <= hi.0 {
            out.extend([*lo, *hi]);
        } else {
            out.extend([*hi, *lo]);
        }
    }
    out.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
    out
}

pub(super) fn view(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_hour_of_samples_draws_at_most_60_points_and_keeps_a_spike() {
        let now = Utc::now();
        // A check at 10 s: 360 samples in the hour, one of them a spike.
        let history: Vec<Sample> = (0..360)
            .map(|i| Sample {
                at: now - ChronoDuration::seconds(3600 - i * 10),
                value: Some(if i == 123 { 90.0 } else { 10.0 + (i % 3) as f64 }),
                status: crate::check::Status::Ok,
            })
            .collect();
        let line = sparkline(&history, "%", now);
        let points: Vec<&str> = line.split(' ').collect();
        assert!(points.len() <= SPARK_POINTS, "{} points", points.len());
        assert!(points.len() >= SPARK_POINTS / 2, "{} points", points.len());
        // 90 % is drawn at y = 27 - 0.9 * 26 = 3.6.
        assert!(points.iter().any(|p| p.ends_with(",3.6")), "{line}");
        // x only goes forward.
        let xs: Vec<f64> = points
            .iter()
            .map(|p| p.split(',').next().unwrap().parse().unwrap())
            .collect();
        assert!(xs.windows(2).all(|w| w[0] <= w[1]), "{line}");
        // Few samples are drawn whole.
        let short = sparkline(&history[..20], "%", now);
        assert_eq!(short.split(' ').count(), 20);
    }
}
