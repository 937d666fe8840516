//! Property tests of the inputs that come from outside: any config text loads or is
//! refused with diagnostics (never a panic), any recording replays or is refused at a
//! line, any rule-test file runs or is refused (never a panic, never more samples than
//! the cap), and the HTTP server answers any method, path, header and body with a 2xx,
//! 3xx or 4xx — never a 5xx, never a panic.

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
        "market_hours",
        "market_grace",
        "timezone",
        "open",
        "close",
        "closed",
        "early_closes",
        "based_on",
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
        "\"nyse\"",
        "\"lse\"",
        "\"09:30\"",
        "\"25:00\"",
        "\"Europe/London\"",
        "[{ date = \"2026-12-31\", reason = \"closure\" }]",
        "[{ date = \"2026-13-01\" }]",
    ]);
    let line = (key, value).prop_map(|(k, v)| format!("{k} = {v}\n"));
    let block = (section, prop::collection::vec(line, 0..6))
        .prop_map(|(s, lines)| format!("{s}\n{}", lines.concat()));
    prop::collection::vec(block, 0..6).prop_map(|blocks| blocks.concat())
}

/// Lines a recording could hold: observations with any field missing, mistyped or out
/// of order, and garbage.
fn replay_line() -> impl Strategy<Value = String> {
    let id = prop::sample::select(vec!["\"cpu\"", "\"ib\"", "\"nope\"", "5", "null"]);
    let kind = prop::sample::select(vec!["\"cpu\"", "\"tcp\"", "\"disk\"", "[]"]);
    let status = prop::sample::select(vec!["\"ok\"", "\"critical\"", "\"unknown\"", "\"OK\"", "1"]);
    let value = prop::sample::select(vec!["95", "null", "\"95\"", "1e308", "-0"]);
    let at = prop::sample::select(vec![
        "\"2026-11-27T14:30:00Z\"",
        "\"2026-11-27T14:29:00Z\"",
        "\"2026-11-27T14:31:00.500+01:00\"",
        "\"yesterday\"",
        "0",
    ]);
    prop_oneof![
        (id, kind, status, value, at).prop_map(|(i, k, s, v, a)| {
            format!(
                r#"{{"id":{i},"kind":{k},"status":{s},"value":{v},"observed_at":{a},"details":{{"x":1}}}}"#
            )
        }),
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn any_recording_replays_or_is_refused_at_a_line(lines in prop::collection::vec(replay_line(), 0..12)) {
        let text = "[checks.cpu]\nkind = \"cpu\"\n[checks.ib]\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = 4002\n\
                    [[rules]]\nname = \"hot\"\nkinds = [\"cpu\"]\nwhen = \"value > 90\"\nseverity = \"WARNING\"\nfor = \"1s\"\n\
                    market_hours = \"nyse\"\n";
        let config = parse("fuzz.toml".as_ref(), text, registry().unwrap()).unwrap();
        let input = lines.join("\n");
        let mut out = Vec::new();
        match vitals::replay::replay(config, input.as_bytes(), &mut out) {
            Ok(summary) => prop_assert!(summary.observations as usize <= lines.len()),
            Err(vitals::replay::ReplayError::Input { line, message }) => {
                prop_assert!(line >= 1 && !message.is_empty());
            }
            Err(e) => prop_assert!(false, "{e}"),
        }
    }
}

/// Series in `vitals test`'s notation, with counts and steps an attacker would try.
fn series_text() -> impl Strategy<Value = String> {
    let token = prop::sample::select(vec![
        "95",
        "_",
        "10+5",
        "1e308+1e308",
        "x",
        "95x3",
        "_x999999999999",
        "10+5x999999999",
        "okx5",
        "x5",
        "+x",
        "5x",
        "nanx2",
        "1x18446744073709551616",
        "-0+-0x4",
        "critical",
    ]);
    prop_oneof![
        prop::collection::vec(token, 0..6).prop_map(|t| t.join(" ")),
        any::<String>(),
    ]
}

/// A rule-test file's case: times near the ends of what a date can hold, any interval,
/// `until` and `at`.
fn test_case() -> impl Strategy<Value = String> {
    let start = prop::sample::select(vec![
        "2026-11-27T14:00:00Z",
        "+262142-12-31T00:00:00Z",
        "-262143-01-01T00:00:00Z",
        "1970-01-01T00:00:00Z",
    ]);
    let span = prop::sample::select(vec!["0s", "1ms", "5s", "1h", "99y", "100y", "101y", "-1s", "x"]);
    (start, span.clone(), span.clone(), span, series_text()).prop_map(|(start, interval, until, at, values)| {
        format!(
            "config = \"vitals.toml\"\n[[tests]]\nname = \"t\"\nstart = \"{start}\"\ninterval = \"{interval}\"\n\
             until = \"{until}\"\nseries = [{{ check = \"c\", values = {values:?} }}]\n\
             expect = [{{ at = \"{at}\", rule = \"hot\", check = \"c\", state = \"firing\" }}]\n"
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn any_series_expands_within_the_cap_or_is_refused(text in series_text()) {
        match vitals::ruletest::expand(&text) {
            Ok(samples) => prop_assert!(samples.len() <= vitals::ruletest::MAX_SAMPLES),
            Err(message) => prop_assert!(!message.is_empty()),
        }
    }
}

#[test]
fn any_rule_test_file_runs_or_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        "[checks.c]\nkind = \"cpu\"\n\n[[rules]]\nname = \"hot\"\nchecks = [\"c\"]\nwhen = \"value > 90\"\n\
         severity = \"WARNING\"\nrepeat = \"1h\"\n",
    );
    let file = dir.path().join("fuzz.test.toml");
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(300));
    runner
        .run(&test_case(), |text| {
            std::fs::write(&file, &text).unwrap();
            match vitals::ruletest::run_file(&file, registry().unwrap()) {
                Ok(outcomes) => prop_assert_eq!(outcomes.len(), 1),
                Err(vitals::ruletest::TestFileError::File { message, .. }) => {
                    prop_assert!(!message.is_empty())
                }
                Err(e) => prop_assert!(false, "{e}"),
            }
            Ok(())
        })
        .unwrap();
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
    // The routes that read a table, with the parameters an attacker would try.
    let table_route = prop::sample::select(vec![
        "/alerts",
        "/alerts.csv",
        "/api/history",
        "/api/alert-events",
    ]);
    let param = (
        prop::sample::select(vec![
            "hours", "to", "from", "check", "state", "severity", "host", "rule",
        ]),
        prop::sample::select(vec![
            "4294967295",
            "0",
            "-1",
            "1",
            "-262143-01-01T00:00:00Z",
            "+262142-12-31T23:59:59Z",
            "2026-12-04T09:30:00Z",
            "1970-01-01T00:00:00Z",
            "c",
            "%3D1%2B1",
            "x%0Ay",
            "",
        ]),
    )
        .prop_map(|(k, v)| format!("{k}={v}"));
    let with_query = (table_route, prop::collection::vec(param, 0..4))
        .prop_map(|(route, params)| format!("{route}?{}", params.join("&")));
    let path = prop_oneof![path, with_query];
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
        "[history]\ntable = \"history\"\n\n\
         [sinks.t]\nkind = \"delta\"\ntable = \"alerts\"\n\n\
         [checks.c]\nkind = \"command\"\ninterval = \"1h\"\ncommand = [\"/bin/sh\", \"-c\", \"echo 'OK - fine'\"]\n",
    );
    let (daemon, router) = runtime.block_on(async {
        // Rows to read, so the table routes go all the way.
        vitals::alerts_table::Writer::new(vitals::delta::TableRef::local(&dir.path().join("alerts")))
            .append(&[vitals::alert::AlertEvent::new(
                "r",
                "c",
                vitals::alert::Severity::Critical,
                vitals::alert::AlertState::Firing,
                "=1+1\nline".into(),
                chrono::Utc::now(),
            )])
            .await
            .unwrap();
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
