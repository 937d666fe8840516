//! What the operator sees when it matters, through the binary where it counts: a red
//! with no value still pages, a resolve says why it fired, the held-back list says its
//! cause once, bars are as red as their badge, a reload does not send an email twice, a
//! gateway drop logs no ERROR, actions say why they failed and look again, a taken port
//! stops `vitals run`, times are in the desk's zone, and a failing sink is shown,
//! counted, paged through the other sinks and its dead letters sent again.

use std::path::Path;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;
use vitals::daemon::Daemon;
use vitals::registry::registry;

use crate::support::delta::make;
use crate::support::gateway::Gateway;
use crate::support::smtp::SmtpServer;
use crate::support::{Daemonized, audit, free_port, vitals, write_config};

const TOKEN: &str = "operator-token";

async fn get(router: &axum::Router, uri: &str) -> (StatusCode, String) {
    let req = Request::builder()
        .uri(uri)
        .header("host", "127.0.0.1")
        .body(Body::empty())
        .unwrap();
    let r = router.clone().oneshot(req).await.unwrap();
    let status = r.status();
    let bytes = axum::body::to_bytes(r.into_body(), 1 << 24).await.unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

async fn post(router: &axum::Router, uri: &str) -> (StatusCode, Value) {
    let req = Request::builder()
        .method("POST")
        .uri(uri)
        .header("host", "127.0.0.1")
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .unwrap();
    let r = router.clone().oneshot(req).await.unwrap();
    let status = r.status();
    let bytes = axum::body::to_bytes(r.into_body(), 1 << 24).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or_default())
}

async fn wait(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A deleted table (or one never there) is critical with no value: the seed's
/// `value > 60` cannot judge it, and it pages anyway, in the check's own words.
/// `vitals validate` says so beforehand.
#[test]
fn a_missing_table_pages_through_the_seed_rule() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        "[defaults]\ninterval = \"200ms\"\n\n\
         [checks.positions]\nkind = \"delta_freshness\"\ntable = \"gone\"\n\n\
         [[rules]]\nname = \"data_stale\"\nkinds = [\"delta_freshness\"]\nwhen = \"value > 60\"\n\
         severity = \"WARNING\"\nmessage = \"{check} stale ({value}s old)\"\n\n\
         [sinks.audit]\nkind = \"log\"\npath = \"alerts.jsonl\"\n",
    );
    let out = vitals().args(["validate", "-c"]).arg(&path).output().unwrap();
    assert!(out.status.success());
    let notes = String::from_utf8_lossy(&out.stderr);
    assert!(
        notes.contains("note: [rules.data_stale] key `when`: the condition reads `value`, which a `delta_freshness` check can lack while critical"),
        "{notes}"
    );
    let d = Daemonized::spawn(&path);
    let line = d.expect("ALERT firing [WARNING] data_stale");
    assert!(
        line.contains("positions: ") && line.contains("gone does not exist"),
        "{line}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while audit(dir.path()).is_empty() {
        assert!(Instant::now() < deadline, "the alert never reached the log sink");
        std::thread::sleep(Duration::from_millis(50));
    }
    let events = audit(dir.path());
    assert_eq!(events[0]["rule"], "data_stale");
    assert_eq!(events[0]["value"], Value::Null);
}

fn engine(extra: &str) -> vitals::rules::Engine {
    let text = format!(
        "name = \"data_stale\"\nchecks = [\"positions\"]\nwhen = \"value > 60\"\nseverity = \"WARNING\"\n\
         message = \"{{check}} stale ({{value}}s old)\"\n{extra}"
    );
    let rule = toml::from_str::<vitals::rules::RuleConfig>(&text)
        .unwrap()
        .compile()
        .unwrap();
    vitals::rules::Engine::new(vec![rule], Default::default())
}

fn observation(
    status: vitals::check::Status,
    value: Option<f64>,
    message: &str,
    s: i64,
) -> vitals::check::Observation {
    let mut r = vitals::check::Reading::new(status, message);
    if let Some(v) = value {
        r = r.with_value(v, "s");
    }
    let at = chrono::DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap();
    vitals::check::Observation::from_reading("positions", "delta_freshness", r, at, Duration::ZERO)
}

#[test]
fn the_no_value_policy_is_the_rules_to_choose() {
    use vitals::check::Status;
    let gone = |s| observation(Status::Critical, None, "/data/positions does not exist", s);
    // Default: fire, with the check's words.
    let mut e = engine("");
    let fired = e.observe(&gone(0), gone(0).observed_at);
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].message, "positions: /data/positions does not exist");
    // hold: nothing; resolve: a firing alert resolves.
    let mut e = engine("on_no_value = \"hold\"\n");
    assert!(e.observe(&gone(0), gone(0).observed_at).is_empty());
    let mut e = engine("on_no_value = \"resolve\"\n");
    let stale = observation(Status::Critical, Some(90.0), "positions 90s old", 0);
    assert_eq!(e.observe(&stale, stale.observed_at).len(), 1);
    let events = e.observe(&gone(1), gone(1).observed_at);
    assert_eq!(events[0].state, vitals::alert::AlertState::Resolved);
    // A check that is not red and has no value changes nothing.
    let mut e = engine("");
    let quiet = observation(Status::Warning, None, "no value yet", 0);
    assert!(e.observe(&quiet, quiet.observed_at).is_empty());
}

/// A resolve keeps why the alert fired and says what resolved it: never
/// "RESOLVED data_stale: positions stale (0.19s old)".
#[test]
fn a_resolved_event_keeps_why_it_fired() {
    use vitals::check::Status;
    let mut e = engine("");
    let stale = observation(Status::Critical, Some(75.0), "positions 75s old", 0);
    e.observe(&stale, stale.observed_at);
    let fresh = observation(Status::Ok, Some(0.19), "positions 0.19s old", 5);
    let resolved = e.observe(&fresh, fresh.observed_at);
    assert_eq!(resolved[0].state, vitals::alert::AlertState::Resolved);
    assert_eq!(
        resolved[0].message,
        "positions stale (75s old) — resolved: positions 0.19s old"
    );
}

/// The page of a desk with a held alert, a registry past its limit, and nothing of IB:
/// alerts come first, the held cause is said once, the bar is as red as the badge,
/// empty sections are one line, no empty "Other checks" box, times in the desk's zone.
#[tokio::test]
async fn the_page_puts_alerts_first_and_says_each_thing_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    make(&["registry", d.join("registry").to_str().unwrap(), "101", "3"]);
    let path = write_config(
        d,
        "[server]\ntimezone = \"America/New_York\"\n\n\
         [checks.gateway]\nkind = \"disk\"\nwarn = 0\ncrit = 0\ninterval = \"200ms\"\n\n\
         [checks.feed]\nkind = \"memory\"\nwarn = 0\ncrit = 0\ninterval = \"200ms\"\ndepends_on = [\"gateway\"]\n\n\
         [checks.strategy_registry]\nkind = \"strategy_slots\"\ntable = \"registry\"\nfilter_column = \"status\"\nfilter_value = \"ACTIVE\"\n\n\
         [[rules]]\nname = \"feed_down\"\nchecks = [\"feed\"]\nwhen = \"status == 'critical'\"\nseverity = \"CRITICAL\"\n",
    );
    let daemon = Daemon::start(&path, registry().unwrap()).await.unwrap();
    let router = vitals::web::router(daemon.web_with_token(Some(TOKEN.into())));
    wait("the feed held back by the gateway", || {
        let held = daemon.alerting().lock().unwrap().held();
        held.first().is_some_and(|h| h.cause == "gateway is critical")
    })
    .await;
    wait("the registry read", || {
        daemon
            .board()
            .snapshot()
            .iter()
            .any(|e| e.latest.id == "strategy_registry" && e.latest.value.is_some())
    })
    .await;
    tokio::time::sleep(vitals::web::RENDER_EVERY).await;
    let (code, page) = get(&router, "/").await;
    assert_eq!(code, StatusCode::OK);
    // Alerts before every kind's section.
    let alerts = page.find("<section id=\"alerts\"").unwrap();
    let registry_section = page.find("<section id=\"registry\"").unwrap();
    assert!(alerts < registry_section, "the alerts come first");
    // The held cause, once.
    assert!(page.contains("— held back: gateway is critical"), "{page}");
    assert!(!page.contains("held back: held back"), "{page}");
    // 101 of 100: the bar is red like the badge.
    assert!(page.contains("<meter class=\"s-critical wide\""), "{page}");
    // Nothing of IB, freshness or the queue configured: one line, no empty boxes.
    assert!(
        page.contains("Not configured: IB connection (<code>ib_connection</code>)"),
        "{page}"
    );
    assert!(!page.contains("No <code>ib_connection</code> check is configured"));
    assert!(!page.contains("id=\"other\""), "no empty Other checks box");
    // The header links to the checks that are not ok.
    assert!(page.contains("href=\"#check-gateway\""), "{page}");
    // Times in the desk's zone.
    assert!(page.contains("times in America&#x2f;New_York"), "{page}");
    assert!(page.contains(" EST\"") || page.contains(" EDT\""), "{page}");
    daemon.shutdown().await;
}

/// After "12 pending rows marked CLEARED" the board says 0 pending at once, not at the
/// next run; a failing force sync says why, in its answer.
#[tokio::test]
async fn actions_look_again_and_say_why_they_failed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    make(&["queue", d.join("queue").to_str().unwrap(), "12", "2", "30"]);
    make(&[d.join("positions").to_str().unwrap(), "tz", "5"]);
    let path = write_config(
        d,
        "[defaults]\ninterval = \"1h\"\n\n\
         [checks.queue]\nkind = \"queue_backlog\"\ntable = \"queue\"\n\n\
         [checks.positions]\nkind = \"delta_freshness\"\ntable = \"positions\"\n\
         force_sync = [\"/bin/sh\", \"-c\", \"echo 'sync: IB session expired' >&2; exit 3\"]\n",
    );
    let daemon = Daemon::start(&path, registry().unwrap()).await.unwrap();
    let router = vitals::web::router(daemon.web_with_token(Some(TOKEN.into())));
    let pending = |daemon: &Daemon| {
        daemon
            .board()
            .snapshot()
            .iter()
            .find(|e| e.latest.id == "queue")
            .and_then(|e| e.latest.value)
    };
    wait("the queue read", || pending(&daemon) == Some(12.0)).await;
    let (code, body) = post(&router, "/api/checks/queue/actions/clear").await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(
        pending(&daemon),
        Some(0.0),
        "the board is current as soon as the action answers"
    );
    assert!(
        body["message"].as_str().unwrap().ends_with("; queue is now OK"),
        "{body}"
    );
    let (code, body) = post(&router, "/api/checks/positions/actions/force_sync").await;
    assert_eq!(code, StatusCode::BAD_GATEWAY);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("failed (exit status: 3): sync: IB session expired"),
        "{body}"
    );
    daemon.shutdown().await;
}

/// A reload that changes only a check does not touch the email sink: the email it is
/// grouping goes once, not once by the old sink and again from the outbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_sends_no_email_twice() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = tempfile::tempdir().unwrap();
    let port = free_port();
    let smtp = SmtpServer::start(port, inbox.path(), None);
    let flag = dir.path().join("down");
    std::fs::write(&flag, "").unwrap();
    let config = |ib_interval: &str| {
        format!(
            "[defaults]\ninterval = \"100ms\"\n\n\
             [checks.ib]\nkind = \"command\"\ninterval = \"{ib_interval}\"\ncommand = [\"/bin/true\"]\n\n\
             [checks.gateway]\nkind = \"command\"\n\
             command = [\"/bin/sh\", \"-c\", \"if [ -e {f} ]; then echo 'CRITICAL - down'; exit 2; fi; echo 'OK - up'\"]\n\n\
             [[rules]]\nname = \"gateway_down\"\nchecks = [\"gateway\"]\nwhen = \"status == 'critical'\"\nseverity = \"CRITICAL\"\n\n\
             [sinks.mail]\nkind = \"email\"\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\n\
             from = \"vitals <vitals@desk.test>\"\nto = [\"ops@desk.test\"]\ngroup_wait = \"2s\"\n",
            f = flag.display()
        )
    };
    let path = write_config(dir.path(), &config("1s"));
    let mut daemon = Daemon::start(&path, registry().unwrap()).await.unwrap();
    // The firing email goes out after its group_wait; then the resolve is grouped.
    smtp.wait_for(1).await;
    std::fs::remove_file(&flag).unwrap();
    wait("the alert resolved", || {
        daemon.alerting().lock().unwrap().active().is_empty()
    })
    .await;
    // Inside the resolve's group_wait, a reload that changes only [checks.ib].
    write_config(dir.path(), &config("2s"));
    daemon.reload().await.expect("valid");
    let all = smtp.wait_for(2).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let all_after = smtp.wait_for(2).await;
    assert_eq!(all_after.len(), 2, "firing once, resolved once: {all_after:#?}");
    assert_eq!(all.len(), 2);
    assert!(all_after[1]["subject"].as_str().unwrap().contains("RESOLVED"));
    daemon.shutdown().await;
}

/// A dropped gateway is the daemon's own status-change line, not an ERROR from the IB
/// client library.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_drop_logs_no_error() {
    let gw = Gateway::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        &format!(
            "[checks.ib]\nkind = \"ib_connection\"\nport = {}\nclient_id = 21\nheartbeat = \"200ms\"\n\
             reconnect_backoff = \"100ms\"\nreconnect_backoff_max = \"100ms\"\n",
            gw.port()
        ),
    );
    let d = Daemonized::spawn(&path);
    d.expect("-> ok");
    gw.drop_sessions();
    d.expect("ib: ok -> critical");
    let deadline = Instant::now() + Duration::from_secs(20);
    let reconnected = |lines: &[String]| {
        let down = lines.iter().position(|l| l.contains("ib: ok -> critical"));
        down.is_some_and(|at| lines[at..].iter().any(|l| l.contains("-> ok")))
    };
    while !reconnected(&d.all_lines()) {
        assert!(
            Instant::now() < deadline,
            "no reconnect:\n{}",
            d.all_lines().join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let all = d.all_lines();
    assert!(
        !all.iter().any(|l| l.contains("ERROR") || l.contains("WARN")),
        "a normal drop logs no ERROR or WARN, only its status changes:\n{}",
        all.join("\n")
    );
}

/// `vitals run` on a taken address stops at once, naming it.
#[test]
fn a_taken_port_stops_vitals_run() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        &format!("[server]\nlisten = \"{addr}\"\n\n[checks.cpu]\nkind = \"cpu\"\n"),
    );
    let started = Instant::now();
    let out = vitals().args(["run", "-c"]).arg(&path).output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(out.status.code(), Some(69));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
    assert!(
        err.contains("another program (or another vitals) listens there"),
        "{err}"
    );
}

/// A sink that fails is shown (`/api/status`, `/metrics`, the page), pages through the
/// other sinks after `failing_after` (never through itself), and its dead letters are
/// sent again with `vitals outbox retry`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_sink_is_shown_paged_and_its_dead_letters_sent_again() {
    use std::sync::{Arc, Mutex};
    // An Alertmanager that refuses (400) until told otherwise.
    let answer = Arc::new(Mutex::new(StatusCode::BAD_REQUEST));
    let got = Arc::new(Mutex::new(Vec::<String>::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let am = listener.local_addr().unwrap().port();
    let (a, g) = (answer.clone(), got.clone());
    let app = axum::Router::new().route(
        "/api/v2/alerts",
        axum::routing::post(move |body: String| {
            let (a, g) = (a.clone(), g.clone());
            async move {
                let code = *a.lock().unwrap();
                if code == StatusCode::OK {
                    g.lock().unwrap().push(body);
                }
                (code, "refused\nforged log line")
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let flag = dir.path().join("down");
    std::fs::write(&flag, "").unwrap();
    let path = write_config(
        dir.path(),
        &format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n\n\
             [defaults]\ninterval = \"100ms\"\n\n\
             [checks.gateway]\nkind = \"command\"\n\
             command = [\"/bin/sh\", \"-c\", \"if [ -e {f} ]; then echo 'CRITICAL - down'; exit 2; fi; echo 'OK - up'\"]\n\n\
             [[rules]]\nname = \"gateway_down\"\nchecks = [\"gateway\"]\nwhen = \"status == 'critical'\"\nseverity = \"CRITICAL\"\n\n\
             [sinks.am]\nkind = \"alertmanager\"\nurl = \"http://127.0.0.1:{am}\"\nfailing_after = \"1s\"\n\n\
             [sinks.audit]\nkind = \"log\"\npath = \"alerts.jsonl\"\n",
            f = flag.display()
        ),
    );
    let d = Daemonized::spawn_with_env(&path, &[("VITALS_TOKEN", TOKEN)]);
    d.expect("status page on");
    let status = || async {
        reqwest::get(format!("http://127.0.0.1:{port}/api/status"))
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    // The refusal: dead-lettered, the sink failing, with the reason (escaped).
    let deadline = Instant::now() + Duration::from_secs(20);
    let am_status = loop {
        let s = status().await;
        let am_status = s["sinks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == "am")
            .cloned()
            .unwrap();
        if am_status["dead_lettered"] == 1 {
            break am_status;
        }
        assert!(Instant::now() < deadline, "{s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(am_status["state"], "failing", "{am_status}");
    assert_eq!(am_status["kind"], "alertmanager");
    let why = am_status["last_error"].as_str().unwrap();
    assert!(
        why.contains("answered 400 Bad Request: refused\\nforged log line"),
        "{why}"
    );
    // Paged through the other sink after failing_after, never through itself.
    d.expect("ALERT firing [WARNING] sink_failing");
    wait("the page delivered by the log sink", || {
        crate::support::audit(dir.path())
            .iter()
            .any(|e| e["rule"] == "sink_failing")
    })
    .await;
    let paged = crate::support::audit(dir.path());
    let page = paged.iter().find(|e| e["rule"] == "sink_failing").unwrap();
    assert_eq!(page["check_id"], "sink:am");
    // /metrics says so too.
    let metrics = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("vitals_sink_up{sink=\"am\"} 0"), "{metrics}");
    assert!(
        metrics.contains("vitals_sink_dead_lettered_total{sink=\"am\"} 1"),
        "{metrics}"
    );
    crate::support::promtool(&metrics).expect("promtool accepts the metrics");
    // The page's header says which sink fails.
    let page = reqwest::get(format!("http://127.0.0.1:{port}/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("alerts to am (alertmanager) failing since"),
        "no failing sink in the header"
    );
    // Alertmanager is fixed; the dead letters go again.
    *answer.lock().unwrap() = StatusCode::OK;
    let out = vitals()
        .args(["outbox", "retry", "am", "-c"])
        .arg(&path)
        .env("VITALS_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 dead-lettered events of `am` sent again"));
    wait("the dead letter delivered", || {
        got.lock().unwrap().iter().any(|b| b.contains("gateway_down"))
    })
    .await;
    d.expect("ALERT resolved [WARNING] sink_failing");
    let s = status().await;
    let am_status = s["sinks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "am")
        .cloned()
        .unwrap();
    assert_eq!(
        (am_status["state"].as_str(), am_status["dead_lettered"].as_u64()),
        (Some("ok"), Some(0))
    );
    assert!(!Path::new(&dir.path().join("state/outbox/am.dead.jsonl")).exists());
}
