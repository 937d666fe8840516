//! Property tests of the inputs that come from outside: any config text loads or is
//! refused with diagnostics (never a panic), and the HTTP server answers any method,
//! path, header and body with a 2xx, 3xx or 4xx — never a 5xx, never a panic.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use proptest::prelude::*;
use tower::ServiceExt;
use vitals::config::{Level, parse};
use vitals::daemon::Daemon;
use vitals::registry::registry;

use crate::support::write_config;

/// Keys and values a config is made of, to reach deep into the loader.
fn config_text() -> impl Strategy<Value = String> {
    let section = prop::sample::select(vec![
        "[server]",
        "[defaults]",
        "[checks.a]",
        "[checks.b-2]",
        "[[rules]]",
        "[sinks.s]",
        "[checks.\"x y\"]",
        "[calendars.nyse]",
        "[checks]",
    ]);
    let key = prop::sample::select(vec![
        "kind",
        "interval",
        "timeout",
        "jitter",
        "warn",
        "crit",
        "table",
        "column",
        "port",
        "host",
        "command",
        "depends_on",
        "maintenance",
        "name",
        "kinds",
        "checks",
        "when",
        "severity",
        "for",
        "message",
        "listen",
        "state_dir",
        "path",
        "unknown_after",
        "min_severity",
        "to",
        "from",
        "url",
        "limit",
        "filter_column",
    ]);
    let value = prop::sample::select(vec![
        "\"cpu\"",
        "\"delta_freshness\"",
        "\"command\"",
        "\"tcp\"",
        "\"ib_connection\"",
        "\"log\"",
        "\"5s\"",
        "\"0s\"",
        "\"off\"",
        "\"soon\"",
        "5",
        "-1",
        "1e999",
        "true",
        "[]",
        "[\"a\"]",
        "[\"b-2\", \"a\"]",
        "{ start = \"0 17 * * FRI\", duration = \"1h\" }",
        "[{ start = \"bad\", duration = \"1h\" }]",
        "\"value > 60\"",
        "\"value >\"",
        "\"WARNING\"",
        "\"{check} {nope}\"",
        "\"127.0.0.1:0\"",
        "\"s3://x/y\"",
        "\"\"",
        "\"é\"",
    ]);
    let line = (key, value).prop_map(|(k, v)| format!("{k} = {v}\n"));
    let block = (section, prop::collection::vec(line, 0..6))
        .prop_map(|(s, lines)| format!("{s}\n{}", lines.concat()));
    prop::collection::vec(block, 0..6).prop_map(|blocks| blocks.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    #[test]
    fn any_text_loads_or_is_refused_with_diagnostics(text in any::<String>()) {
        if let Err(d) = parse("fuzz.toml".as_ref(), &text, registry().unwrap()) {
            prop_assert!(d.errors().count() > 0);
        }
    }

    #[test]
    fn config_shaped_text_loads_or_is_refused_at_a_place(text in config_text()) {
        match parse("fuzz.toml".as_ref(), &text, registry().unwrap()) {
            Ok(c) => prop_assert!(c.notes.iter().all(|n| n.level == Level::Note)),
            Err(d) => {
                for e in d.errors() {
                    prop_assert!(!e.message.is_empty());
                    prop_assert!(e.to_string().starts_with("fuzz.toml"), "{}", e);
                }
            }
        }
    }
}

fn request() -> impl Strategy<Value = (String, String, Vec<(String, String)>, Vec<u8>)> {
    let method = prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"]);
    let segment = prop::sample::select(vec![
        "api",
        "checks",
        "status",
        "alerts",
        "ack",
        "run",
        "actions",
        "reconnect",
        "clear",
        "metrics",
        "healthz",
        "static",
        "page.js",
        "c",
        "..",
        "%2e%2e",
        "%00",
        "é",
        "a%20b",
        "x".repeat(300).leak(),
        "",
        "{id}",
    ]);
    let path = prop::collection::vec(segment, 0..6).prop_map(|s| format!("/{}", s.join("/")));
    let header = (
        prop::sample::select(vec![
            "authorization",
            "origin",
            "host",
            "content-length",
            "sec-fetch-site",
            "content-type",
            "x-any",
        ]),
        "[ -~]{0,40}",
    )
        .prop_map(|(k, v)| (k.to_owned(), v));
    (
        method.prop_map(str::to_owned),
        path,
        prop::collection::vec(header, 0..4),
        prop::collection::vec(any::<u8>(), 0..64),
    )
}

#[test]
fn any_request_gets_an_answer_that_is_not_a_server_error() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        "[checks.c]\nkind = \"command\"\ninterval = \"1h\"\ncommand = [\"/bin/sh\", \"-c\", \"echo 'OK - fine'\"]\n",
    );
    let (daemon, router) = runtime.block_on(async {
        let daemon = Daemon::start(&path, registry().unwrap()).await.unwrap();
        let router = vitals::web::router(Arc::clone(&daemon.web_with_token(Some("t0ken".into()))));
        (daemon, router)
    });
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(10_000));
    runner
        .run(&request(), |(method, path, headers, body)| {
            let mut req = Request::builder().method(method.as_str()).uri(path.as_str());
            for (k, v) in &headers {
                req = req.header(k.as_str(), v.as_str());
            }
            let Ok(req) = req.body(Body::from(body)) else {
                return Ok(()); // not an HTTP request at all (the server never sees it)
            };
            let response = runtime.block_on(router.clone().oneshot(req)).unwrap();
            prop_assert!(
                !response.status().is_server_error(),
                "{method} {path} {headers:?}: {}",
                response.status()
            );
            Ok(())
        })
        .unwrap();
    runtime.block_on(daemon.shutdown());
}

/// Whatever a plugin prints as a perfdata unit, `/metrics` stays parseable.
#[test]
fn the_exposition_parses_whatever_units_plugins_print() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "[server]\nstate_dir = \"state\"\n");
    let daemon = runtime
        .block_on(Daemon::start(&path, registry().unwrap()))
        .unwrap();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(150));
    let units = prop::collection::vec(r#"[a-z%"\\\n\t{}=,# -]{0,8}"#, 1..6);
    runner
        .run(&units, |units| {
            for (i, unit) in units.iter().enumerate() {
                let reading = vitals::check::Reading::new(vitals::check::Status::Ok, "m")
                    .with_value(i as f64, unit.clone());
                daemon.board().publish(vitals::check::Observation::from_reading(
                    &format!("c{i}"),
                    "command",
                    reading,
                    chrono::Utc::now(),
                    Duration::ZERO,
                ));
            }
            // A fresh handler each time: its render cache is empty.
            let router = vitals::web::router(daemon.web_with_token(None));
            let req = Request::builder()
                .uri("/metrics")
                .header("host", "127.0.0.1:8686")
                .body(Body::empty())
                .unwrap();
            let response = runtime.block_on(router.oneshot(req)).unwrap();
            let bytes = runtime
                .block_on(axum::body::to_bytes(response.into_body(), 1 << 20))
                .unwrap();
            let body = String::from_utf8_lossy(&bytes).into_owned();
            prop_assert!(
                crate::support::promtool(&body).is_ok(),
                "{units:?}\n{body}\n{:?}",
                crate::support::promtool(&body)
            );
            Ok(())
        })
        .unwrap();
    runtime.block_on(daemon.shutdown());
}
