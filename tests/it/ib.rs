//! `ib_connection` against the gateway stand-in (`gateway.rs`): the real `ibapi`
//! client connects to it, and every cue ends in the right status, label, details and
//! message — pushed to the board, not waiting for the check's (long) interval.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;
use vitals::board::BoardEvent;
use vitals::check::{Observation, Status};
use vitals::daemon::Daemon;
use vitals::registry::registry;

use crate::support::gateway::{Gateway, Mode, SERVER_VERSION};
use crate::support::write_config;

/// A daemon with one `ib` check on the stand-in. The interval is an hour: whatever the
/// board shows after the first run was pushed.
async fn start(dir: &std::path::Path, port: u16, extra: &str) -> (Daemon, UnboundedReceiver<BoardEvent>) {
    let mut text = format!("[checks.ib]\nkind = \"ib_connection\"\nport = {port}\nclient_id = 7\n{extra}");
    for (key, value) in [
        ("interval", "\"1h\""),
        ("heartbeat", "\"200ms\""),
        ("heartbeat_timeout", "\"1s\""),
        ("reconnect_backoff", "\"50ms\""),
        ("reconnect_backoff_max", "\"200ms\""),
    ] {
        if !extra.contains(&format!("{key} =")) {
            text.push_str(&format!("{key} = {value}\n"));
        }
    }
    let path = write_config(dir, &text);
    let daemon = Daemon::start(&path, registry().unwrap())
        .await
        .expect("valid config");
    let rx = daemon.board().follow();
    (daemon, rx)
}

/// The next observation of `ib` that satisfies `want` (within 10 s).
async fn until(
    rx: &mut UnboundedReceiver<BoardEvent>,
    what: &str,
    want: impl Fn(&Observation) -> bool,
) -> Arc<Observation> {
    let wait = async {
        loop {
            let e = rx.recv().await.expect("board open");
            if e.observation.id == "ib" && want(&e.observation) {
                return e.observation;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .unwrap_or_else(|_| panic!("no observation: {what}"))
}

fn label(o: &Observation) -> &str {
    o.label.as_deref().unwrap_or_default()
}

async fn connected(rx: &mut UnboundedReceiver<BoardEvent>) -> Arc<Observation> {
    until(rx, "connected with a heartbeat", |o| {
        label(o) == "CONNECTED" && o.value.is_some()
    })
    .await
}

#[tokio::test]
async fn a_gateway_clock_far_from_this_hosts_is_a_warning() {
    let gw = Gateway::start().await;
    gw.skew_clock(120);
    let dir = tempfile::tempdir().unwrap();
    let (_daemon, mut rx) = start(dir.path(), gw.port(), "").await;
    let o = until(&mut rx, "a warning about the clock", |o| {
        o.status == Status::Warning
    })
    .await;
    assert_eq!(label(&o), "CONNECTED");
    let skew = o.details["skew_s"].as_i64().unwrap();
    assert!((119..=121).contains(&skew), "{:?}", o.details);
    assert!(
        o.message
            .contains(&format!("clock and this host's differ by {skew} s")),
        "{}",
        o.message
    );
}

#[tokio::test]
async fn a_healthy_gateway_reads_connected_with_heartbeat_and_farms() {
    let gw = Gateway::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (daemon, mut rx) = start(dir.path(), gw.port(), "").await;
    let o = connected(&mut rx).await;
    assert_eq!(o.status, Status::Ok, "{o:?}");
    assert_eq!(o.unit, "ms");
    let d = &o.details;
    assert_eq!(d["connected"], true);
    assert_eq!(d["server_version"], SERVER_VERSION);
    assert_eq!(d["client_id"], 7);
    assert_eq!(d["port"], gw.port());
    assert_eq!(d["accounts"], serde_json::json!(["DU123456"]));
    assert_eq!(d["ib_link"], "up");
    assert!(
        d["connected_since"].is_string() && d["last_heartbeat"].is_string(),
        "{d:?}"
    );
    assert_eq!(d["disconnected_at"], serde_json::Value::Null);
    assert_eq!(d["farms"]["usfarm"]["state"], "ok");
    assert_eq!(d["farms"]["ushmds"]["kind"], "historical data");
    assert_eq!(d["farms"]["secdefnj"]["state"], "ok");
    assert!(d["skew_s"].as_i64().unwrap().abs() <= 1, "{d:?}");
    crate::panels::assert_writes_what_its_panel_reads(&o);
    // Heartbeats keep coming, each one on the board.
    let next = until(&mut rx, "the next heartbeat", |n| {
        n.details["last_heartbeat"] != o.details["last_heartbeat"]
    })
    .await;
    assert_eq!(next.status, Status::Ok);
    assert!(gw.heartbeats() >= 2);
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_dropped_socket_is_pushed_at_once_and_recovery_gets_a_new_connected_since() {
    let gw = Gateway::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (daemon, mut rx) = start(dir.path(), gw.port(), "").await;
    let first = connected(&mut rx).await;
    gw.drop_sessions();
    let down = until(&mut rx, "disconnected after the drop", |o| {
        label(o) == "DISCONNECTED"
    })
    .await;
    assert_eq!(down.status, Status::Critical);
    assert!(down.message.contains("closed the connection"), "{}", down.message);
    assert_eq!(down.details["connected"], false);
    assert!(down.details["disconnected_at"].is_string());
    // Nothing of the dead session stands: no "connected for", and the farms' last
    // "ok" is not shown as current.
    assert_eq!(down.details["connected_since"], serde_json::Value::Null);
    assert_eq!(first.details["farms"]["usfarm"]["state"], "ok");
    let farms = down.details["farms"].as_object().unwrap();
    assert!(!farms.is_empty());
    for (name, f) in farms {
        assert_eq!(f["state"], "unknown", "{name}: {f}");
        assert_eq!(f["last_known"], "ok", "{name}: {f}");
    }
    // The gateway is still listening: the reconnect succeeds.
    let back = connected(&mut rx).await;
    assert_ne!(back.details["connected_since"], first.details["connected_since"]);
    assert_eq!(back.details["disconnected_at"], serde_json::Value::Null);
    assert_eq!(gw.sessions(), 2);
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_silent_gateway_is_dead_even_with_the_socket_open() {
    let gw = Gateway::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (daemon, mut rx) = start(dir.path(), gw.port(), "heartbeat_timeout = \"300ms\"\n").await;
    connected(&mut rx).await;
    gw.set_mode(Mode::Silent);
    let down = until(&mut rx, "dead on a missed heartbeat", |o| {
        label(o) == "DISCONNECTED"
    })
    .await;
    assert_eq!(down.status, Status::Critical);
    assert!(down.message.contains("no heartbeat answer"), "{}", down.message);
    assert!(down.message.contains("hung"), "{}", down.message);
    gw.set_mode(Mode::Normal);
    connected(&mut rx).await;
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_handshake_that_never_comes_back_is_reported_not_hung() {
    let gw = Gateway::start().await;
    gw.set_mode(Mode::Mute);
    let dir = tempfile::tempdir().unwrap();
    let (daemon, mut rx) = start(dir.path(), gw.port(), "heartbeat_timeout = \"300ms\"\n").await;
    let down = until(&mut rx, "handshake timeout", |o| label(o) == "DISCONNECTED").await;
    assert_eq!(down.status, Status::Critical);
    assert!(
        down.message.contains("did not complete the handshake"),
        "{}",
        down.message
    );
    gw.set_mode(Mode::Normal);
    gw.drop_sessions();
    connected(&mut rx).await;
    daemon.shutdown().await;
}

#[tokio::test]
async fn an_outage_refuses_connections_and_the_return_reconnects() {
    let gw = Gateway::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (daemon, mut rx) = start(dir.path(), gw.port(), "").await;
    connected(&mut rx).await;
    gw.outage();
    let refused = until(&mut rx, "refused", |o| {
        label(o) == "DISCONNECTED" && o.message.contains("nothing accepts connections")
    })
    .await;
    assert!(
        refused.message.contains("4002"),
        "says which port is paper: {}",
        refused.message
    );
    assert!(refused.details["reconnect"]["attempts"].as_u64().unwrap() >= 1);
    gw.back().await;
    let back = connected(&mut rx).await;
    assert_eq!(back.status, Status::Ok);
    daemon.shutdown().await;
}

#[tokio::test]
async fn ib_notices_1100_1101_1102_and_farms_are_followed() {
    let gw = Gateway::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (daemon, mut rx) = start(dir.path(), gw.port(), "").await;
    connected(&mut rx).await;

    gw.notice(
        1100,
        "Connectivity between IB and Trader Workstation has been lost.",
    );
    let lost = until(&mut rx, "1100", |o| o.status == Status::Critical).await;
    assert_eq!(label(&lost), "DISCONNECTED");
    assert!(
        lost.message.contains("lost its connection to IB (1100)"),
        "{}",
        lost.message
    );
    assert_eq!(lost.details["connected"], false);
    assert_eq!(lost.details["ib_link"], "lost");

    gw.notice(
        1102,
        "Connectivity between IB and Trader Workstation has been restored - data maintained.",
    );
    let ok = until(&mut rx, "1102", |o| o.status == Status::Ok).await;
    assert_eq!(label(&ok), "CONNECTED");
    assert_eq!(ok.details["ib_link"], "up");

    gw.notice(
        2110,
        "Connectivity between Trader Workstation and server is broken.",
    );
    until(&mut rx, "2110", |o| o.status == Status::Critical).await;
    gw.notice(
        1101,
        "Connectivity between IB and Trader Workstation has been restored - data lost.",
    );
    let data_lost = until(&mut rx, "1101", |o| o.status == Status::Warning).await;
    assert!(
        data_lost.message.contains("market data subscriptions were lost"),
        "{}",
        data_lost.message
    );
    daemon.shutdown().await;

    // Farms: broken is a warning, inactive is normal, each farm by name.
    let gw = Gateway::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (daemon, mut rx) = start(dir.path(), gw.port(), "").await;
    connected(&mut rx).await;
    gw.notice(2103, "Market data farm connection is broken:usfarm");
    let broken = until(&mut rx, "2103", |o| o.status == Status::Warning).await;
    assert_eq!(label(&broken), "CONNECTED");
    assert!(
        broken
            .message
            .contains("market data farm usfarm is broken (2103)"),
        "{}",
        broken.message
    );
    assert_eq!(broken.details["farms"]["usfarm"]["state"], "broken");
    for (code, text, farm, state) in [
        (
            2119,
            "Market data farm is connecting:usfarm",
            "usfarm",
            "connecting",
        ),
        (2104, "Market data farm connection is OK:usfarm", "usfarm", "ok"),
        (
            2108,
            "Market data farm connection is inactive but should be available upon demand.usfarm.nj",
            "usfarm.nj",
            "inactive",
        ),
        (
            2107,
            "HMDS data farm connection is inactive but should be available upon demand.ushmds",
            "ushmds",
            "inactive",
        ),
        (
            2105,
            "HMDS data farm connection is broken:euhmds",
            "euhmds",
            "broken",
        ),
        (2106, "HMDS data farm connection is OK:euhmds", "euhmds", "ok"),
        (
            2157,
            "Sec-def data farm connection is broken:secdefil",
            "secdefil",
            "broken",
        ),
        (
            2158,
            "Sec-def data farm connection is OK:secdefil",
            "secdefil",
            "ok",
        ),
    ] {
        gw.notice(code, text);
        let o = until(&mut rx, &format!("farm notice {code}"), |o| {
            o.details["farms"][farm]["code"] == code
        })
        .await;
        assert_eq!(o.details["farms"][farm]["state"], state, "{code}");
        let want = if state == "broken" {
            Status::Warning
        } else {
            Status::Ok
        };
        assert_eq!(o.status, want, "{code}: {}", o.message);
    }
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_second_vitals_with_the_same_client_id_is_told_326_not_left_hanging() {
    let gw = Gateway::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (daemon, mut rx) = start(dir.path(), gw.port(), "").await;
    connected(&mut rx).await;
    // A second vitals process, same config: `vitals check ib`.
    let out = tokio::task::spawn_blocking({
        let path = dir.path().join("vitals.toml");
        move || {
            crate::support::vitals()
                .args(["check", "ib", "-c"])
                .arg(path)
                .args(["--format", "json"])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let message = report["checks"][0]["message"].as_str().unwrap();
    assert!(message.contains("client id 7 is already in use"), "{message}");
    assert!(message.contains("client_id nobody else uses"), "{message}");
    daemon.shutdown().await;
}

#[tokio::test]
async fn backoff_stops_after_the_limit_and_reconnect_starts_again() {
    let gw = Gateway::start().await;
    gw.set_mode(Mode::Hangup);
    let dir = tempfile::tempdir().unwrap();
    let (daemon, mut rx) = start(dir.path(), gw.port(), "max_reconnect_attempts = 4\n").await;
    let gave_up = until(&mut rx, "gave up", |o| o.details["reconnect"]["gave_up"] == true).await;
    assert_eq!(gave_up.status, Status::Critical);
    assert!(
        gave_up
            .message
            .contains("auto-reconnect gave up after 4 attempts"),
        "{}",
        gave_up.message
    );
    assert_eq!(gw.accepted(), 4);
    // No storm: nothing more while given up (the backoff cap is 200 ms; wait 5 of them).
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(gw.accepted(), 4, "attempts after giving up");

    gw.set_mode(Mode::Normal);
    let check = daemon.runner().instance("ib").unwrap().check().unwrap();
    let outcome = check
        .act("reconnect", &crate::support::action_cx("ib"))
        .await
        .unwrap();
    assert!(outcome.ok, "{}", outcome.message);
    assert!(outcome.message.starts_with("connected to"), "{}", outcome.message);
    assert_eq!(gw.accepted(), 5);
    let o = connected(&mut rx).await;
    assert_eq!(o.details["reconnect"]["gave_up"], false);
    daemon.shutdown().await;
}

#[tokio::test]
async fn backoff_waits_grow_with_each_failed_attempt() {
    // Hang-ups with a 100 ms first wait doubling to 800 ms: each announced wait lies in
    // [delay/2, delay] for delay = 100, 200, 400, 800, 800 ms.
    let gw = Gateway::start().await;
    gw.set_mode(Mode::Hangup);
    let dir = tempfile::tempdir().unwrap();
    let (daemon, mut rx) = start(
        dir.path(),
        gw.port(),
        "reconnect_backoff = \"100ms\"\nreconnect_backoff_max = \"800ms\"\nmax_reconnect_attempts = 6\n",
    )
    .await;
    let mut waits = Vec::new();
    let mut seen = std::collections::HashSet::new();
    while waits.len() < 5 {
        let o = until(&mut rx, "a scheduled attempt", |o| {
            o.details["reconnect"]["next_attempt_at"].is_string()
        })
        .await;
        let at = o.details["reconnect"]["next_attempt_at"]
            .as_str()
            .unwrap()
            .to_owned();
        if seen.insert(at.clone()) {
            let at = chrono::DateTime::parse_from_rfc3339(&at).unwrap();
            waits.push((at.with_timezone(&chrono::Utc) - o.observed_at).num_milliseconds());
        }
    }
    for (wait, delay) in waits.iter().zip([100, 200, 400, 800, 800]) {
        assert!(
            (delay / 2 - 20..=delay + 20).contains(wait),
            "wait {wait} ms for a {delay} ms step: {waits:?}"
        );
    }
    daemon.shutdown().await;
}

#[tokio::test]
async fn reconnect_while_connected_starts_a_fresh_session() {
    let gw = Gateway::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (daemon, mut rx) = start(dir.path(), gw.port(), "").await;
    let first = connected(&mut rx).await;
    let check = daemon.runner().instance("ib").unwrap().check().unwrap();
    let outcome = check
        .act("reconnect", &crate::support::action_cx("ib"))
        .await
        .unwrap();
    assert!(outcome.ok, "{}", outcome.message);
    assert_eq!(
        gw.sessions(),
        2,
        "the old session was closed and a new one opened"
    );
    // The new session reads CONNECTED once its first heartbeat is answered (until then
    // it is unknown: neither up nor down).
    let o = until(&mut rx, "the new session", |o| {
        label(o) == "CONNECTED"
            && o.details["connected_since"] != first.details["connected_since"]
            && o.status != Status::Unknown
    })
    .await;
    assert_eq!(o.status, Status::Ok);
    assert!(o.value.is_some(), "its heartbeat round trip: {o:?}");
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_one_shot_check_of_a_hung_gateway_is_critical_not_unknown() {
    let gw = Gateway::start().await;
    gw.set_mode(Mode::Mute);
    let dir = tempfile::tempdir().unwrap();
    // The runner's timeout (1 s) is shorter than the handshake timeout (5 s).
    let text = format!(
        "[checks.ib]\nkind = \"ib_connection\"\nport = {}\nclient_id = 7\ntimeout = \"1s\"\n",
        gw.port()
    );
    let i = crate::support::instances(dir.path(), &text).remove(0);
    let o = i.run_once(tokio::time::Instant::now()).await;
    assert_eq!(o.status, Status::Critical, "{o:?}");
    assert_eq!(o.label.as_deref(), Some("CONNECTING"));
    assert!(
        o.message.contains("has not completed the connection"),
        "{}",
        o.message
    );
}

#[tokio::test]
async fn a_one_shot_check_of_a_gateway_that_never_answers_a_heartbeat_is_critical() {
    let gw = Gateway::start().await;
    gw.set_mode(Mode::Silent);
    let dir = tempfile::tempdir().unwrap();
    // The runner's timeout (1 s) is shorter than the heartbeat timeout (5 s).
    let text = format!(
        "[checks.ib]\nkind = \"ib_connection\"\nport = {}\nclient_id = 7\ntimeout = \"1s\"\n",
        gw.port()
    );
    let i = crate::support::instances(dir.path(), &text).remove(0);
    let o = i.run_once(tokio::time::Instant::now()).await;
    assert_eq!(o.status, Status::Critical, "{o:?}");
    assert_eq!(o.label.as_deref(), Some("CONNECTED"));
    assert!(
        o.message
            .contains("but not answering: no answer to a heartbeat within 1s (hung gateway?)"),
        "{}",
        o.message
    );
    assert_eq!(gw.heartbeats_asked(), 1, "the first heartbeat is sent at once");
}
