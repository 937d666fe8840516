//! `GET /metrics`: Prometheus exposition (OpenMetrics text, via `prometheus-client`),
//! built from the board and alerting at each scrape.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use axum::extract::State;
use axum::http::header;
use axum::response::Response;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::Web;
use crate::alert::Severity;
use crate::observation::Status;

type Labels = Vec<(String, String)>;
type Gauges = Family<Labels, Gauge<f64, AtomicU64>>;

fn gauges(registry: &mut Registry, name: &str, help: &str) -> Gauges {
    let family = Gauges::default();
    registry.register(name, help, family.clone());
    family
}

/// A label value as the text format needs it: `\`, `"` and line feeds escaped (the
/// encoder writes values as given, and a plugin's perfdata unit is anything it
/// printed). Ids and kinds need none: they are letters, digits, `_` and `-`.
fn label_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// The exposition text for what `web` shows now.
pub fn render(web: &Web) -> String {
    let mut registry = Registry::default();
    let status = gauges(
        &mut registry,
        "vitals_check_status",
        "Latest status of each check: 0 ok, 1 warning, 2 critical, 3 unknown",
    );
    let value = gauges(
        &mut registry,
        "vitals_check_value",
        "Latest value of each check, in its unit",
    );
    let duration = gauges(
        &mut registry,
        "vitals_check_duration_seconds",
        "How long the latest run of each check took",
    );
    let last_run = gauges(
        &mut registry,
        "vitals_check_last_run_timestamp_seconds",
        "When each check was last observed (Unix time)",
    );
    let alerts = gauges(
        &mut registry,
        "vitals_alerts_firing",
        "Alerts firing now, by severity",
    );
    let acked = gauges(
        &mut registry,
        "vitals_alerts_acknowledged",
        "Firing alerts someone acknowledged, by severity",
    );
    let held = gauges(
        &mut registry,
        "vitals_alerts_held",
        "Alert conditions held back (maintenance, market hours, a failing dependency)",
    );
    // The name `vitals_alerts_held` had before; kept for dashboards that read it.
    let suppressed = gauges(
        &mut registry,
        "vitals_alerts_suppressed",
        "Alert conditions held back (the old name of vitals_alerts_held)",
    );
    let sync = gauges(
        &mut registry,
        "vitals_sync_state",
        "The sync status of each table writer a check reports (its details.sync): 1 for its state (running, idle, error), 0 for the others",
    );
    let build = gauges(&mut registry, "vitals_build_info", "vitals' version (always 1)");
    let started = gauges(
        &mut registry,
        "vitals_start_time_seconds",
        "When vitals started (Unix time)",
    );

    for e in web.board.snapshot() {
        let o = &e.latest;
        let labels = vec![
            ("check".to_owned(), o.id.clone()),
            ("kind".to_owned(), o.kind.clone()),
        ];
        let code = match o.status {
            Status::Ok => 0.0,
            Status::Warning => 1.0,
            Status::Critical => 2.0,
            Status::Unknown => 3.0,
        };
        status.get_or_create(&labels).set(code);
        if let Some(v) = o.value.filter(|v| v.is_finite()) {
            let mut with_unit = labels.clone();
            with_unit.push(("unit".to_owned(), label_value(&o.unit)));
            value.get_or_create(&with_unit).set(v);
        }
        if let Some(now) = o.details.get("sync").and_then(serde_json::Value::as_str) {
            for state in ["running", "idle", "error"] {
                let mut l = labels.clone();
                l.push(("state".to_owned(), state.to_owned()));
                sync.get_or_create(&l).set(if state == now { 1.0 } else { 0.0 });
            }
        }
        duration.get_or_create(&labels).set(o.duration_ms / 1000.0);
        last_run
            .get_or_create(&labels)
            .set(o.observed_at.timestamp_millis() as f64 / 1000.0);
    }
    {
        let a = web.alerting.lock().unwrap_or_else(|e| e.into_inner());
        let active = a.active();
        for s in [Severity::Info, Severity::Warning, Severity::Critical] {
            let labels = vec![("severity".to_owned(), s.as_str().to_owned())];
            let firing = active.iter().filter(|x| x.severity == s);
            alerts.get_or_create(&labels).set(firing.clone().count() as f64);
            acked
                .get_or_create(&labels)
                .set(firing.filter(|x| x.acknowledged).count() as f64);
        }
        let n = a.held().len() as f64;
        held.get_or_create(&Vec::new()).set(n);
        suppressed.get_or_create(&Vec::new()).set(n);
    }
    let sink_up = gauges(
        &mut registry,
        "vitals_sink_up",
        "Whether each sink delivers: 1 ok, 0 failing",
    );
    let sink_queued = gauges(
        &mut registry,
        "vitals_sink_queued",
        "Alert events waiting in each sink's queue",
    );
    let dead = Family::<Labels, Counter<u64, AtomicU64>>::default();
    registry.register(
        "vitals_sink_dead_lettered",
        "Alert events each sink refused for good since vitals started",
        dead.clone(),
    );
    let sinks = web.alerting.lock().unwrap_or_else(|e| e.into_inner()).sinks();
    for s in sinks {
        let labels = vec![("sink".to_owned(), s.id.clone())];
        sink_up
            .get_or_create(&labels)
            .set(if s.state == crate::dispatch::SinkState::Ok {
                1.0
            } else {
                0.0
            });
        sink_queued.get_or_create(&labels).set(s.queued as f64);
        dead.get_or_create(&labels).inc_by(s.dead_lettered_total);
    }
    build
        .get_or_create(&vec![(
            "version".to_owned(),
            env!("CARGO_PKG_VERSION").to_owned(),
        )])
        .set(1.0);
    started
        .get_or_create(&Vec::new())
        .set(web.started_at.timestamp_millis() as f64 / 1000.0);

    let mut text = String::new();
    // Writing to a String cannot fail.
    let _ = encode(&mut text, &registry);
    sorted_series(&text)
}

/// The exposition with each family's series in label order: a family keeps its series
/// in a hash map, so two renders of the same board would list them differently (and
/// differ in their ETag).
fn sorted_series(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut series: Vec<&str> = Vec::new();
    let flush = |series: &mut Vec<&str>, out: &mut String| {
        // By labels only (stable): a series' own lines (`_total`, `_created`) keep
        // their order.
        series.sort_by_key(|l| match (l.find('{'), l.rfind('}')) {
            (Some(i), Some(j)) if i < j => &l[i..=j],
            _ => "",
        });
        for l in series.drain(..) {
            out.push_str(l);
            out.push('\n');
        }
    };
    for line in text.lines() {
        if line.starts_with('#') {
            flush(&mut series, &mut out);
            out.push_str(line);
            out.push('\n');
        } else {
            series.push(line);
        }
    }
    flush(&mut series, &mut out);
    out
}

/// The same exposition in the Prometheus text format (0.0.4), for a scraper that does
/// not ask for OpenMetrics (and for `promtool check metrics`): a counter family is named
/// with its `_total` in its `HELP` and `TYPE` lines, and there is no `# EOF`. Gauges are
/// written alike in both.
pub fn prometheus_text(openmetrics: &str) -> String {
    let counters: Vec<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|p| {
            let rest = line.strip_prefix(p)?;
            let name = counters.iter().find(|c| rest.starts_with(&format!("{c} ")))?;
            Some(format!("{p}{name}_total{}", &rest[name.len()..]))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

pub async fn metrics(State(web): State<Arc<Web>>, headers: axum::http::HeaderMap) -> Response {
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    let (route, content_type) = if openmetrics {
        (
            "metrics",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )
    } else {
        ("metrics-text", "text/plain; version=0.0.4; charset=utf-8")
    };
    let body = web.cached(route, || {
        let text = render(&web);
        let text = if openmetrics { text } else { prometheus_text(&text) };
        Ok::<_, std::convert::Infallible>(text.into_bytes().into())
    });
    match body {
        Ok(body) => body.respond(&headers, content_type),
        Err(e) => match e {},
    }
}
