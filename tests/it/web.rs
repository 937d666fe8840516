//! The HTTP routes, called in-process with `tower::ServiceExt::oneshot` on the router of
//! a running daemon: every route, the JSON shape, authentication and Origin refusal,
//! each action's effect; and `promtool check metrics` on a live `/metrics`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;
use vitals::daemon::Daemon;
use vitals::registry::registry;

use crate::support::audit;
use crate::support::write_config;

const TOKEN: &str = "s3cret-token";

/// A daemon with a command check that is critical while `flag` exists, a rule on it,
/// a queue table with pending rows (`clear`), a fresh table with a `force_sync`
/// command, and an audit log sink.
async fn daemon(dir: &Path) -> Daemon {
    let flag = dir.join("down");
    std::fs::write(&flag, "").unwrap();
    crate::support::delta::make(&["queue", dir.join("queue").to_str().unwrap(), "3", "2", "30"]);
    crate::support::delta::make(&[dir.join("positions").to_str().unwrap(), "tz", "5"]);
    let text = format!(
        "[defaults]\ninterval = \"1h\"\ntimeout = \"20s\"\n\n\
         [checks.gateway]\nkind = \"command\"\ninterval = \"100ms\"\n\
         command = [\"/bin/sh\", \"-c\", \"if [ -e {f} ]; then echo 'CRITICAL - gateway down'; exit 2; fi; echo 'OK - up'\"]\n\n\
         [checks.queue]\nkind = \"queue_backlog\"\ntable = \"queue\"\n\n\
         [checks.positions]\nkind = \"delta_freshness\"\ntable = \"positions\"\nforce_sync = [\"/bin/true\"]\n\
         market_hours = \"nyse\"\nmarket_grace = \"5m\"\n\n\
         [[rules]]\nname = \"gateway_down\"\nchecks = [\"gateway\"]\nwhen = \"status == 'critical'\"\nseverity = \"CRITICAL\"\n\n\
         [sinks.audit]\nkind = \"log\"\npath = \"alerts.jsonl\"\n\n\
         [sinks.alerts_table]\nkind = \"delta\"\ntable = \"alerts\"\nflush_interval = \"100ms\"\n",
        f = flag.display()
    );
    let path = write_config(dir, &text);
    let daemon = Daemon::start(&path, registry().unwrap())
        .await
        .expect("valid config");
    // Every check has been seen once and the alert fires.
    let mut rx = daemon.board().follow();
    let mut seen = std::collections::HashSet::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        while seen.len() < 3 {
            let e = rx.recv().await.unwrap();
            seen.insert(e.observation.id.clone());
        }
    })
    .await
    .expect("every check ran");
    tokio::time::timeout(Duration::from_secs(5), async {
        while daemon.alerting().lock().unwrap().active().is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the alert fires");
    daemon
}

async fn call(
    router: &axum::Router,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, Value, axum::http::HeaderMap) {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "127.0.0.1:8686");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let response = router
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 22).await.unwrap();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, body, headers)
}

fn bearer() -> (&'static str, &'static str) {
    ("authorization", "Bearer s3cret-token")
}

#[tokio::test]
async fn every_get_route_answers_with_security_headers() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = daemon(dir.path()).await;
    let router = vitals::web::router(daemon.web_with_token(Some(TOKEN.into())));

    let (code, page, h) = call(&router, "GET", "/", &[]).await;
    assert_eq!(code, StatusCode::OK);
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    let page = page.as_str().unwrap();
    for section in [
        "IB connection",
        "Data freshness",
        "System metrics",
        "Active strategy registry",
        "Queue backlog",
        "Alerts",
    ] {
        assert!(page.contains(section), "section {section}");
    }
    assert!(
        page.contains("<strong>gateway_down</strong> on <a href=\"#check-gateway\""),
        "the active alert is listed, linked to its check"
    );
    assert!(page.contains(">Clear</button>"), "Clear button");
    assert!(page.contains("data-confirm="), "clear asks first");
    // The market status next to the freshness section, as the calendar says now.
    let nyse = vitals::market::Calendar::built_in("nyse").unwrap();
    let market = nyse.state(chrono::Utc::now());
    let freshness = &page[page.find("id=\"freshness\"").expect("freshness section")..];
    let line = &freshness[freshness.find("data-calendar=\"nyse\"").expect("market line")..];
    let expected = if market.open {
        "Market nyse open until"
    } else {
        "Market nyse closed until"
    };
    assert!(line[..300].contains(expected), "{}", &line[..300]);
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");

    let (code, status, _) = call(&router, "GET", "/api/status", &[]).await;
    assert_eq!(status["markets"][0]["calendar"], "nyse");
    assert_eq!(status["markets"][0]["checks"], serde_json::json!(["positions"]));
    assert_eq!(status["markets"][0]["open"], market.open);
    assert_eq!(code, StatusCode::OK);
    assert!(status["generated_at"].is_string());
    let checks = status["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 3);
    for c in checks {
        for key in [
            "id",
            "kind",
            "status",
            "label",
            "value",
            "unit",
            "message",
            "observed_at",
            "duration_ms",
            "details",
        ] {
            assert!(c.get(key).is_some(), "{key} in {c}");
        }
    }
    let alert = &status["alerts"][0];
    assert_eq!(alert["rule"], "gateway_down");
    assert_eq!(alert["severity"], "CRITICAL");
    assert_eq!(status["actions"]["queue"][0]["name"], "clear");
    assert_eq!(status["actions_enabled"], true);

    let (code, health, _) = call(&router, "GET", "/healthz", &[]).await;
    assert_eq!((code, health["status"].as_str()), (StatusCode::OK, Some("ok")));
    assert_eq!(health["checks"], 3);

    // A scraper that asks for OpenMetrics gets it; others the Prometheus text format.
    let (code, plain, h) = call(&router, "GET", "/metrics", &[]).await;
    assert_eq!(code, StatusCode::OK);
    assert!(
        h["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    assert!(!plain.as_str().unwrap().contains("# EOF"));
    let (code, metrics, h) = call(
        &router,
        "GET",
        "/metrics",
        &[("accept", "application/openmetrics-text; version=1.0.0")],
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert!(
        h["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let metrics = metrics.as_str().unwrap();
    assert!(
        metrics.contains("vitals_check_status{check=\"gateway\",kind=\"command\"} 2.0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("vitals_alerts_firing{severity=\"CRITICAL\"} 1.0"),
        "{metrics}"
    );
    assert!(metrics.contains("vitals_build_info{version="), "{metrics}");

    let (code, js, h) = call(&router, "GET", "/static/page.js", &[]).await;
    assert_eq!(code, StatusCode::OK);
    assert!(h["content-type"].to_str().unwrap().starts_with("text/javascript"));
    assert!(js.as_str().unwrap().contains("setInterval(refresh"));
    let (code, _, _) = call(&router, "GET", "/nowhere", &[]).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    // No GET changes state: GET on an action route is not allowed.
    let (code, _, _) = call(&router, "GET", "/api/checks/queue/actions/clear", &[]).await;
    assert_eq!(code, StatusCode::METHOD_NOT_ALLOWED);
    daemon.shutdown().await;
}

#[tokio::test]
async fn posts_need_the_token_and_this_origin() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = daemon(dir.path()).await;
    let run = "/api/checks/gateway/run";

    // No token configured: actions are disabled, the page has no buttons.
    let off = vitals::web::router(daemon.web_with_token(None));
    let (code, body, _) = call(&off, "POST", run, &[bearer()]).await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    assert!(body["error"].as_str().unwrap().contains("VITALS_TOKEN"), "{body}");
    let (_, page, _) = call(&off, "GET", "/", &[]).await;
    assert!(
        !page.as_str().unwrap().contains("data-post="),
        "no action buttons"
    );

    let on = vitals::web::router(daemon.web_with_token(Some(TOKEN.into())));
    let (code, _, h) = call(&on, "POST", run, &[]).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert_eq!(h["www-authenticate"], "Bearer");
    let (code, _, _) = call(&on, "POST", run, &[("authorization", "Bearer s3cret-tokem")]).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let (code, _, _) = call(&on, "POST", run, &[("authorization", "Basic czNjcmV0")]).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    // Cross-site: refused even with the token.
    let (code, body, _) = call(&on, "POST", run, &[bearer(), ("origin", "https://evil.example")]).await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{body}");
    let (code, _, _) = call(&on, "POST", run, &[bearer(), ("sec-fetch-site", "cross-site")]).await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    // The page's own origin is fine.
    let (code, body, _) = call(&on, "POST", run, &[bearer(), ("origin", "http://127.0.0.1:8686")]).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["id"], "gateway");
    // Bodies are size-limited.
    let big = Request::builder()
        .method("POST")
        .uri(run)
        .header("host", "127.0.0.1:8686")
        .header("authorization", "Bearer s3cret-token")
        .header("content-length", "100000")
        .body(Body::from(vec![b'x'; 100_000]))
        .unwrap();
    let r = on.clone().oneshot(big).await.unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    daemon.shutdown().await;
}

#[tokio::test]
async fn actions_do_what_they_say_and_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = daemon(dir.path()).await;
    let router = vitals::web::router(daemon.web_with_token(Some(TOKEN.into())));

    // Run now: a fresh observation, on the board.
    let before = daemon.board().get("positions").unwrap().latest.observed_at;
    let (code, o, _) = call(&router, "POST", "/api/checks/positions/run", &[bearer()]).await;
    assert_eq!(code, StatusCode::OK, "{o}");
    assert_eq!(o["label"], "FRESH");
    assert!(daemon.board().get("positions").unwrap().latest.observed_at > before);

    // force_sync runs its command.
    let (code, out, _) = call(
        &router,
        "POST",
        "/api/checks/positions/actions/force_sync",
        &[bearer()],
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{out}");
    assert_eq!(out["ok"], true);

    // clear: the pending rows are cleared in the table.
    let (code, out, _) = call(&router, "POST", "/api/checks/queue/actions/clear", &[bearer()]).await;
    assert_eq!(code, StatusCode::OK, "{out}");
    let counts = crate::support::delta::statuses(&dir.path().join("queue"), None);
    assert_eq!(counts["counts"]["CLEARED"], 3, "{counts}");
    assert_eq!(counts["counts"].get("PENDING"), None, "{counts}");

    // Unknown check and action: 404 that names what exists.
    let (code, e, _) = call(&router, "POST", "/api/checks/queu/run", &[bearer()]).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert!(
        e["error"].as_str().unwrap().contains("did you mean `queue`"),
        "{e}"
    );
    let (code, e, _) = call(&router, "POST", "/api/checks/queue/actions/purge", &[bearer()]).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert!(e["error"].as_str().unwrap().contains("clear"), "{e}");

    // Acknowledge: once; the second time there is nothing to acknowledge.
    let id = daemon.alerting().lock().unwrap().active()[0].alert_id.clone();
    let (code, ev, _) = call(&router, "POST", &format!("/api/alerts/{id}/ack"), &[bearer()]).await;
    assert_eq!(code, StatusCode::OK, "{ev}");
    assert_eq!(ev["state"], "acknowledged");
    let (_, status, _) = call(&router, "GET", "/api/status", &[]).await;
    assert_eq!(status["alerts"][0]["acknowledged"], true);
    let (code, _, _) = call(&router, "POST", &format!("/api/alerts/{id}/ack"), &[bearer()]).await;
    assert_eq!(code, StatusCode::NOT_FOUND);

    // Every action is an event in the alerts Delta table, as Python reads it (the sink
    // commits every 100 ms; a loaded machine may take longer)…
    let table = dir.path().join("alerts");
    // (Rows of different commits come back in no particular order.)
    let recorded = |t: &Value| -> Vec<String> {
        let mut ids: Vec<String> = t["rows"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["state"] == "action")
            .map(|r| r["check_id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    let mut last = Value::Null;
    for _ in 0..150 {
        if let Ok(t) = crate::support::delta::try_read_table(&table) {
            last = t;
            let acked = last["rows"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["state"] == "acknowledged");
            if recorded(&last).len() == 3 && acked {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(recorded(&last), ["positions", "positions", "queue"], "{last:#}");

    // …and in the log.
    daemon.shutdown().await;
    let actions: Vec<String> = audit(dir.path())
        .iter()
        .filter(|e| e["state"] == "action")
        .map(|e| e["message"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(actions.len(), 3, "{actions:?}");
    assert!(actions[0].starts_with("run on positions done"), "{actions:?}");
    assert!(
        actions[1].starts_with("force_sync on positions done"),
        "{actions:?}"
    );
    assert!(actions[2].starts_with("clear on queue done"), "{actions:?}");
}

#[tokio::test]
async fn reconnect_over_http_reaches_the_gateway() {
    let gw = crate::support::gateway::Gateway::start().await;
    gw.set_mode(crate::support::gateway::Mode::Hangup);
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[checks.ib]\nkind = \"ib_connection\"\nport = {}\nclient_id = 3\ninterval = \"1h\"\n\
         reconnect_backoff = \"50ms\"\nreconnect_backoff_max = \"50ms\"\nmax_reconnect_attempts = 1\n",
        gw.port()
    );
    let path = write_config(dir.path(), &text);
    let daemon = Daemon::start(&path, registry().unwrap()).await.unwrap();
    let web = daemon.web_with_token(Some(TOKEN.into()));
    let router = vitals::web::router(Arc::clone(&web));
    tokio::time::timeout(Duration::from_secs(10), async {
        while daemon.board().get("ib").is_none_or(|e| {
            e.latest
                .details
                .get("reconnect")
                .is_none_or(|r| r["gave_up"] != true)
        }) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("gives up");
    gw.set_mode(crate::support::gateway::Mode::Normal);
    let (code, out, _) = call(&router, "POST", "/api/checks/ib/actions/reconnect", &[bearer()]).await;
    assert_eq!(code, StatusCode::OK, "{out}");
    assert!(
        out["message"].as_str().unwrap().starts_with("connected to"),
        "{out}"
    );
    assert_eq!(
        daemon.board().get("ib").unwrap().latest.label.as_deref(),
        Some("CONNECTED")
    );
    daemon.shutdown().await;
}

#[tokio::test]
async fn promtool_accepts_the_live_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let port = crate::support::free_port();
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n\n[defaults]\ninterval = \"200ms\"\n\n\
         [checks.cpu]\nkind = \"cpu\"\n\n[checks.memory]\nkind = \"memory\"\n\n[checks.disk]\nkind = \"disk\"\n\n\
         [checks.host]\nkind = \"host\"\n\n[checks.probe]\nkind = \"command\"\ncommand = [\"/bin/sh\", \"-c\", \"echo 'WARNING - meh'; exit 1\"]\n\n\
         [[rules]]\nname = \"meh\"\nchecks = [\"probe\"]\nwhen = \"status == 'warning'\"\nseverity = \"WARNING\"\n"
    );
    let path = write_config(dir.path(), &text);
    let vitals = crate::support::Daemonized::spawn(&path);
    vitals.expect("status page on");
    let url = format!("http://127.0.0.1:{port}/metrics");
    let mut body = String::new();
    for _ in 0..100 {
        body = reqwest::get(&url).await.unwrap().text().await.unwrap();
        if body.matches("vitals_check_status{").count() == 5
            && body.contains("vitals_alerts_firing{severity=\"WARNING\"} 1")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(body.matches("vitals_check_status{").count(), 5, "{body}");
    if let Err(e) = crate::support::promtool(&body) {
        panic!("promtool: {e}\n{body}");
    }
    vitals.signal(nix::sys::signal::Signal::SIGTERM);
}

#[tokio::test]
async fn every_configured_check_is_visible_from_the_first_second() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        "[checks.slow]\nkind = \"command\"\ninterval = \"1h\"\ntimeout = \"30s\"\njitter = \"0s\"\n\
         command = [\"/bin/sh\", \"-c\", \"sleep 20; echo 'OK - late'\"]\n\n\
         [checks.later]\nkind = \"command\"\ninterval = \"1h\"\njitter = \"1h\"\n\
         command = [\"/bin/sh\", \"-c\", \"echo 'OK - fine'\"]\n",
    );
    let daemon = Daemon::start(&path, registry().unwrap()).await.unwrap();
    let router = vitals::web::router(daemon.web_with_token(None));
    let (code, status, _) = call(&router, "GET", "/api/status", &[]).await;
    assert_eq!(code, StatusCode::OK);
    let checks = status["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 2, "{status}");
    for c in checks {
        assert_eq!(c["status"], "unknown", "{c}");
        assert_eq!(c["label"], "PENDING", "{c}");
        assert_eq!(c["message"], "waiting for its first run", "{c}");
    }
    let (_, metrics, _) = call(&router, "GET", "/metrics", &[]).await;
    let metrics = metrics.as_str().unwrap();
    assert!(
        metrics.contains("vitals_check_status{check=\"slow\",kind=\"command\"} 3"),
        "{metrics}"
    );
    let (_, page, _) = call(&router, "GET", "/", &[]).await;
    assert_eq!(
        page.as_str()
            .unwrap()
            .matches("waiting for its first run")
            .count(),
        2
    );
    daemon.shutdown().await;
}

/// Idle and half-sent connections cannot starve the server: 300 of them are held while
/// `/healthz` answers and the checks keep their schedule; the server closes them after
/// `header_timeout`; past `max_connections` a connection is closed at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_partial_connections_are_bounded() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let port = crate::support::free_port();
    let path = write_config(
        dir.path(),
        &format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\nmax_connections = 310\nheader_timeout = \"2s\"\n\n\
             [checks.tick]\nkind = \"command\"\ninterval = \"100ms\"\njitter = \"0s\"\n\
             command = [\"/bin/sh\", \"-c\", \"echo OK - tick\"]\n"
        ),
    );
    let vitals = crate::support::Daemonized::spawn(&path);
    vitals.expect("status page on");
    let addr = format!("127.0.0.1:{port}");
    let mut held = Vec::new();
    for i in 0..300 {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        if i % 2 == 0 {
            // Half a request, never finished.
            s.write_all(b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                .await
                .unwrap();
        }
        held.push(s);
    }
    let healthz = format!("http://{addr}/healthz");
    let status = format!("http://{addr}/api/status");
    let observed_at = || async {
        let v: Value = reqwest::get(&status).await.unwrap().json().await.unwrap();
        v["checks"][0]["observed_at"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert!(reqwest::get(&healthz).await.unwrap().status().is_success());
    let first = observed_at().await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_ne!(observed_at().await, first, "the check keeps its schedule");
    // Past the cap the oldest give way (tests/it/security.rs has the attack): 20 more
    // are served, and the desk still gets its answer.
    let mut extra: Vec<tokio::net::TcpStream> = Vec::new();
    for _ in 0..20 {
        extra.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    assert!(reqwest::get(&healthz).await.unwrap().status().is_success());
    drop(extra);
    // The server closes the held ones after header_timeout (2 s).
    let started = std::time::Instant::now();
    for s in &mut held {
        let mut buf = [0u8; 256];
        let left = Duration::from_secs(6).saturating_sub(started.elapsed());
        let closed = tokio::time::timeout(left, async {
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {} // a 408 for the half-sent request, then the close
                }
            }
        })
        .await;
        assert!(
            closed.is_ok(),
            "a held connection was still open {:?} after",
            started.elapsed()
        );
    }
    assert!(reqwest::get(&healthz).await.unwrap().status().is_success());
    // HTTP/2 with prior knowledge (h2c) is not spoken: the answer is HTTP/1.1's.
    let mut h2 = tokio::net::TcpStream::connect(&addr).await.unwrap();
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), h2.read_to_end(&mut answer)).await;
    assert!(
        read.is_ok(),
        "the server neither answered nor closed the connection"
    );
    // An HTTP/1.1 refusal (a 4xx or 5xx), never an HTTP/2 frame.
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.starts_with("HTTP/1.1 4") || text.starts_with("HTTP/1.1 5"),
        "{text:?}"
    );
    vitals.signal(nix::sys::signal::Signal::SIGTERM);
}

/// DNS rebinding: a page on another name that resolves to vitals reads nothing and
/// acts on nothing; behind a reverse proxy that rewrites `Host`, the desk's name in
/// `[server] allowed_hosts` keeps the buttons working.
#[tokio::test]
async fn only_allowed_host_names_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        "[server]\nallowed_hosts = [\"Vitals.Desk.Example\"]\n\n\
         [checks.c]\nkind = \"command\"\ninterval = \"1h\"\ncommand = [\"/bin/sh\", \"-c\", \"echo OK\"]\n",
    );
    let daemon = Daemon::start(&path, registry().unwrap()).await.unwrap();
    let router = vitals::web::router(daemon.web_with_token(Some(TOKEN.into())));
    let send = |method: &str, uri: &str, headers: &[(&str, &str)]| {
        let mut req = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        router.clone().oneshot(req.body(Body::empty()).unwrap())
    };
    for route in ["/", "/api/status", "/metrics", "/healthz"] {
        let r = send("GET", route, &[("host", "evil.example:8686")])
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::MISDIRECTED_REQUEST, "{route}");
    }
    let r = send("GET", "/api/status", &[]).await.unwrap();
    assert_eq!(r.status(), StatusCode::MISDIRECTED_REQUEST, "no Host at all");
    // POSTs with the token, by Host and Origin.
    for (host, origin, expected, why) in [
        (
            "evil.example:8686",
            "http://evil.example:8686",
            StatusCode::MISDIRECTED_REQUEST,
            "a rebinding page: its Host and Origin agree",
        ),
        (
            "127.0.0.1:8686",
            "http://evil.example",
            StatusCode::FORBIDDEN,
            "a foreign Origin",
        ),
        (
            "127.0.0.1:8686",
            "http://",
            StatusCode::FORBIDDEN,
            "an empty origin (as h2c could carry)",
        ),
        (
            "127.0.0.1",
            "https://vitals.desk.example",
            StatusCode::OK,
            "behind nginx: Host rewritten, the page on the desk's name",
        ),
    ] {
        let r = send(
            "POST",
            "/api/checks/c/run",
            &[("host", host), ("origin", origin), bearer()],
        )
        .await
        .unwrap();
        assert_eq!(r.status(), expected, "{why}");
    }
    let r = send("GET", "/healthz", &[("host", "vitals.desk.example:443")])
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    daemon.shutdown().await;
}

/// `[server] read_token_env`: reading needs the token (Basic with any user, or Bearer);
/// `/healthz` stays open.
#[tokio::test]
async fn a_read_token_protects_everything_but_healthz() {
    let dir = tempfile::tempdir().unwrap();
    let port = crate::support::free_port();
    let path = write_config(
        dir.path(),
        &format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\nread_token_env = \"VITALS_READ_TOKEN\"\n\n\
             [checks.c]\nkind = \"command\"\ninterval = \"1h\"\ncommand = [\"/bin/sh\", \"-c\", \"echo OK\"]\n"
        ),
    );
    let vitals = crate::support::Daemonized::spawn_with_env(&path, &[("VITALS_READ_TOKEN", "r34d")]);
    vitals.expect("status page on");
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    for route in ["/", "/api/status", "/metrics"] {
        let r = client.get(format!("{base}{route}")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{route}");
        assert!(
            r.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Basic")
        );
        let wrong = client
            .get(format!("{base}{route}"))
            .basic_auth("desk", Some("nope"))
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "{route}");
        let basic = client
            .get(format!("{base}{route}"))
            .basic_auth("desk", Some("r34d"))
            .send()
            .await
            .unwrap();
        assert_eq!(basic.status(), StatusCode::OK, "{route}");
        let bearer = client
            .get(format!("{base}{route}"))
            .bearer_auth("r34d")
            .send()
            .await
            .unwrap();
        assert_eq!(bearer.status(), StatusCode::OK, "{route}");
    }
    let r = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    vitals.signal(nix::sys::signal::Signal::SIGTERM);
}

/// `GET /alerts` from the alerts Delta table: the firing episode with its Acknowledge
/// button; filters; acknowledging turns it `acknowledged`; the CSV has the filtered
/// events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alerts_page_lists_filters_acknowledges_and_downloads() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = daemon(dir.path()).await;
    let router = vitals::web::router(daemon.web_with_token(Some(TOKEN.into())));
    let id = daemon.alerting().lock().unwrap().active()[0].alert_id.clone();
    let page = |uri: String| {
        let router = router.clone();
        async move {
            let (code, body, _) = call(&router, "GET", &uri, &[]).await;
            assert_eq!(code, StatusCode::OK, "{body}");
            // minijinja escapes `/` as `&#x2f;`, which browsers read as `/`.
            body.as_str().unwrap().replace("&#x2f;", "/")
        }
    };
    // The episode reaches the table within the sink's flush interval.
    let firing = format!("data-alert=\"{id}\" data-state=\"firing\"");
    tokio::time::timeout(Duration::from_secs(10), async {
        while !page("/alerts".into()).await.contains(&firing) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the firing episode on /alerts");
    let all = page("/alerts".into()).await;
    assert!(
        all.contains(&format!("data-post=\"/api/alerts/{id}/ack\"")),
        "an Acknowledge button"
    );
    assert!(
        !page("/alerts?state=resolved".into()).await.contains(&firing),
        "filtered out by state"
    );
    assert!(
        !page("/alerts?check=queue".into()).await.contains(&firing),
        "filtered out by check"
    );
    assert!(
        page("/alerts?severity=CRITICAL&rule=gateway_down".into())
            .await
            .contains(&firing)
    );
    // The health page links to it.
    assert!(page("/".into()).await.contains("href=\"/alerts\""));

    // Acknowledge, as the button does: the episode turns acknowledged.
    let (code, _, _) = call(
        &router,
        "POST",
        &format!("/api/alerts/{id}/ack"),
        &[("origin", "http://127.0.0.1:8686"), bearer()],
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    let acknowledged = format!("data-alert=\"{id}\" data-state=\"acknowledged\"");
    tokio::time::timeout(Duration::from_secs(10), async {
        while !page("/alerts".into()).await.contains(&acknowledged) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the episode acknowledged on /alerts");
    assert!(
        page("/alerts?state=acknowledged".into())
            .await
            .contains(&acknowledged)
    );

    // The CSV of the filtered events.
    let (code, csv, headers) = call(&router, "GET", "/alerts.csv?rule=gateway_down", &[]).await;
    assert_eq!(code, StatusCode::OK);
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/csv"));
    let csv = csv.as_str().unwrap().to_owned();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "alert_id,rule,check_id,severity,state,message,value,started_at,event_at,host"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("{id},gateway_down,gateway,CRITICAL,firing,"))),
        "{csv}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("{id},gateway_down,gateway,CRITICAL,acknowledged,"))),
        "{csv}"
    );
    let (_, none, _) = call(&router, "GET", "/alerts.csv?check=nothing", &[]).await;
    assert_eq!(none.as_str().unwrap().lines().count(), 1, "only the header");
}

/// The page, `/api/status` and `/metrics` carry an ETag over what they show: a client
/// whose copy is current gets `304` and no body (the render's own time does not count),
/// a change (here a `POST` run) gives a new tag; a client that accepts gzip gets the
/// same body compressed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_bodies_answer_304_and_gzip_is_served_to_who_asks() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "[checks.memory]\nkind = \"memory\"\ninterval = \"1h\"\nwarn = 99\ncrit = 100\n",
    );
    let daemon = Daemon::start(&config, registry().unwrap()).await.expect("valid");
    let mut rx = daemon.board().follow();
    // The board shows the check as pending until its first run.
    tokio::time::timeout(Duration::from_secs(10), async {
        while daemon
            .board()
            .get("memory")
            .is_none_or(|e| e.latest.value.is_none())
        {
            rx.recv().await;
        }
    })
    .await
    .expect("the first run");
    let router = vitals::web::router(daemon.web_with_token(Some(TOKEN.into())));
    let get = |uri: &'static str, headers: Vec<(&'static str, String)>| {
        let router = router.clone();
        async move {
            let mut req = Request::get(uri).header("host", "127.0.0.1:8686");
            for (k, v) in headers {
                req = req.header(k, v);
            }
            let response = router.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
            let (parts, body) = response.into_parts();
            (parts, axum::body::to_bytes(body, 1 << 24).await.unwrap())
        }
    };
    for uri in ["/", "/api/status", "/metrics"] {
        let (first, body) = get(uri, vec![]).await;
        assert_eq!(first.status, StatusCode::OK, "{uri}");
        assert!(!body.is_empty());
        let etag = first.headers["etag"].to_str().unwrap().to_owned();
        // Browsers keep no copy (docs/security.md); a client that keeps one asks with
        // its tag.
        assert_eq!(first.headers["cache-control"], "no-store", "{uri}");
        // Rendered again (past the render window), with a later time: still current.
        tokio::time::sleep(vitals::web::RENDER_EVERY * 2).await;
        let (again, body) = get(uri, vec![("if-none-match", etag.clone())]).await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{uri}");
        assert!(body.is_empty(), "{uri}");

        let (gz, packed) = get(uri, vec![("accept-encoding", "gzip, deflate, br".into())]).await;
        assert_eq!(gz.headers["content-encoding"], "gzip", "{uri}");
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&packed[..]), &mut plain).unwrap();
        let (_, fresh) = get(uri, vec![]).await;
        assert_eq!(plain.len(), fresh.len(), "{uri}: the same body, compressed");
        assert!(packed.len() < plain.len(), "{uri}");
    }
    // A run changes what the status shows: the old tag no longer matches.
    let (first, _) = get("/api/status", vec![]).await;
    let etag = first.headers["etag"].to_str().unwrap().to_owned();
    let run = router
        .clone()
        .oneshot(
            Request::post("/api/checks/memory/run")
                .header("host", "127.0.0.1:8686")
                .header("authorization", format!("Bearer {TOKEN}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(run.status(), StatusCode::OK);
    let (after, body) = get("/api/status", vec![("if-none-match", etag)]).await;
    assert_eq!(after.status, StatusCode::OK);
    assert!(!body.is_empty());
    daemon.shutdown().await;
}
