//! Running as a service: systemd's notify protocol (READY, RELOADING, STOPPING,
//! WATCHDOG) on a socket the test listens on, the unit checked by `systemd-analyze
//! verify`, the install script into a scratch root, `$STATE_DIRECTORY`, the warning for
//! state under /etc, and the dead-man's switches: the `heartbeat` sink and
//! Alertmanager's `VitalsWatchdog`.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::alertmanager::Alertmanager;
use crate::support::{Daemonized, free_port, vitals, write_config};

fn command_check(dir: &Path) -> String {
    let flag = dir.join("down");
    format!(
        "[checks.gateway]\nkind = \"command\"\ninterval = \"200ms\"\n\
         command = [\"/bin/sh\", \"-c\", \"if [ -e {f} ]; then echo 'CRITICAL - down'; exit 2; fi; echo 'OK - up'\"]\n\n\
         [[rules]]\nname = \"gateway_down\"\nchecks = [\"gateway\"]\nwhen = \"status == 'critical'\"\nseverity = \"CRITICAL\"\n",
        f = flag.display()
    )
}

/// Receives notify datagrams until one contains `needle`; returns it.
fn expect_notify(socket: &UnixDatagram, needle: &str) -> String {
    let mut buf = [0u8; 4096];
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        if let Ok(n) = socket.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if text.contains(needle) {
                return text;
            }
        }
    }
    panic!("vitals never sent {needle:?} to the notify socket");
}

#[test]
fn vitals_speaks_systemds_notify_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let config = write_config(dir.path(), &command_check(dir.path()));
    // As systemd starts it: WATCHDOG_PID is the service's own pid (the shell execs
    // vitals, keeping its pid).
    let mut command = std::process::Command::new("/bin/sh");
    command
        .args(["-c", "WATCHDOG_PID=$$ exec \"$0\" run -c \"$1\""])
        .arg(env!("CARGO_BIN_EXE_vitals"))
        .arg(&config)
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "2000000");
    let daemon = Daemonized::spawn_command(command);
    let ready = expect_notify(&socket, "READY=1");
    assert!(ready.contains("STATUS=running 1 checks"), "{ready}");
    // The watchdog is fed while the checks keep their schedule.
    expect_notify(&socket, "WATCHDOG=1");
    expect_notify(&socket, "WATCHDOG=1");
    daemon.signal(Signal::SIGHUP);
    let reloading = expect_notify(&socket, "RELOADING=1");
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");
    expect_notify(&socket, "READY=1");
    daemon.signal(Signal::SIGTERM);
    expect_notify(&socket, "STOPPING=1");
    daemon.expect("vitals stopped");
}

#[test]
fn systemd_analyze_verifies_the_unit() {
    if std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("systemd-analyze is not installed: skipped (scripts/test.sh installs systemd)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/dist/systemd/vitals.service"
    ))
    .unwrap()
    .replace("/usr/local/bin/vitals", env!("CARGO_BIN_EXE_vitals"));
    assert!(
        unit.contains("Type=notify")
            && unit.contains("WatchdogSec=")
            && unit.contains("StateDirectory=vitals")
    );
    let path = dir.path().join("vitals.service");
    std::fs::write(&path, unit).unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let about_ours: Vec<&str> = text.lines().filter(|l| l.contains("vitals.service")).collect();
    assert!(out.status.success() && about_ours.is_empty(), "{text}");
}

#[test]
fn the_install_script_puts_everything_in_place_and_keeps_a_changed_config() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let install = || {
        std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/install"))
            .env("DESTDIR", root.path())
            .env("VITALS_BIN", env!("CARGO_BIN_EXE_vitals"))
            .output()
            .unwrap()
    };
    let out = install();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("valid (4 checks)"),
        "the installed config validates: {stdout}"
    );
    let r = root.path();
    let mode = |p: &str| std::fs::metadata(r.join(p)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("usr/local/bin/vitals"), 0o755);
    assert_eq!(mode("etc/vitals/env"), 0o600, "secrets readable by root only");
    assert_eq!(mode("etc/systemd/system/vitals.service"), 0o644);
    let config = std::fs::read_to_string(r.join("etc/vitals/vitals.toml")).unwrap();
    assert!(
        config.contains("state_dir = \"/var/lib/vitals\""),
        "no state under /etc"
    );
    assert!(config.contains("path = \"/var/lib/vitals/alerts.jsonl\""));
    assert!(r.join("usr/local/share/doc/vitals/operating.md").exists());
    // An upgrade keeps the desk's config.
    std::fs::write(r.join("etc/vitals/vitals.toml"), format!("{config}\n# edited\n")).unwrap();
    let out = install();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("kept"));
    let after = std::fs::read_to_string(r.join("etc/vitals/vitals.toml")).unwrap();
    assert!(after.ends_with("# edited\n"));
}

#[test]
fn validate_warns_when_state_would_go_under_etc() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "[server]\nstate_dir = \"/etc/state\"\n[checks.cpu]\nkind = \"cpu\"\n[sinks.audit]\nkind = \"log\"\npath = \"/usr/alerts.jsonl\"\n",
    );
    let out = vitals().args(["validate", "-c"]).arg(&config).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "a warning, not an error: {stderr}");
    assert!(
        stderr
            .contains("[server] key `state_dir`: warning: vitals' state would go to /etc/state, under /etc"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "[sinks.audit] key `path`: warning: the sink would write /usr/alerts.jsonl, under /usr"
        ),
        "{stderr}"
    );
}

#[test]
fn without_state_dir_the_state_goes_to_state_directory() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("var-lib-vitals");
    std::fs::create_dir(&state).unwrap();
    std::fs::write(dir.path().join("down"), "").unwrap();
    let config = write_config(dir.path(), &command_check(dir.path()));
    let daemon = Daemonized::spawn_with_env(&config, &[("STATE_DIRECTORY", state.to_str().unwrap())]);
    daemon.expect("ALERT firing");
    daemon.signal(Signal::SIGTERM);
    daemon.expect("vitals stopped");
    assert!(
        state.join("alerts.json").exists(),
        "the alert state is in $STATE_DIRECTORY"
    );
    assert!(!dir.path().join("state").exists(), "and not beside the config");
}

/// A loopback HTTP server that answers 200 to everything and counts the requests (with
/// their first lines).
async fn ping_server() -> (u16, Arc<AtomicUsize>, Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (c, l) = (count.clone(), lines.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let (c, l) = (c.clone(), l.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                l.lock()
                    .unwrap()
                    .push(text.lines().next().unwrap_or_default().to_owned());
                c.fetch_add(1, Ordering::SeqCst);
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nOK")
                    .await;
            });
        }
    });
    (port, count, lines)
}

async fn wait_for(what: &str, f: impl Fn() -> bool) {
    tokio::time::timeout(Duration::from_secs(20), async {
        while !f() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("never: {what}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_heartbeat_pings_while_healthy_and_stops_when_not() {
    let (port, count, lines) = ping_server().await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[sinks.deadman]\nkind = \"heartbeat\"\nurl = \"http://127.0.0.1:{port}/ping/secret-uuid\"\nmethod = \"POST\"\ninterval = \"100ms\"\n"
    );
    let config = vitals::config::parse(
        &dir.path().join("v.toml"),
        &text,
        vitals::registry::registry().unwrap(),
    )
    .unwrap_or_else(|d| panic!("{d}"));
    let (tx, health) = vitals::health::Health::channel();
    let env = vitals::sinks::SinkEnv {
        liveness: health,
        ..vitals::sinks::SinkEnv::standalone(dir.path())
    };
    let sink = vitals::dispatch::SinkInstance::build_with(&config.sinks[0], &env, None);
    assert!(sink.sink.is_ok());
    wait_for("three pings", || count.load(Ordering::SeqCst) >= 3).await;
    assert_eq!(lines.lock().unwrap()[0], "POST /ping/secret-uuid HTTP/1.1");
    // Not keeping its schedule: the pings stop (silence is the alarm)...
    tx.send_replace(vitals::health::Liveness::Late(vec!["positions".into()]));
    tokio::time::sleep(Duration::from_millis(150)).await;
    let stopped = count.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(count.load(Ordering::SeqCst), stopped, "no ping while late");
    // ...and resume when it is back on schedule.
    tx.send_replace(vitals::health::Liveness::Healthy);
    wait_for("pings again", || count.load(Ordering::SeqCst) >= stopped + 2).await;
    drop(sink);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_vitals_stops_the_heartbeat() {
    let (port, count, _) = ping_server().await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{}\n[sinks.deadman]\nkind = \"heartbeat\"\nurl_env = \"TEST_HEARTBEAT_URL\"\ninterval = \"100ms\"\n",
        command_check(dir.path())
    );
    let config = write_config(dir.path(), &text);
    let url = format!("http://127.0.0.1:{port}/ping");
    let mut daemon = Daemonized::spawn_with_env(&config, &[("TEST_HEARTBEAT_URL", url.as_str())]);
    wait_for("pings from the daemon", || count.load(Ordering::SeqCst) >= 3).await;
    daemon.child.kill().unwrap();
    daemon.child.wait().unwrap();
    let after = count.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        count.load(Ordering::SeqCst) <= after + 1,
        "the pings stopped with vitals"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vitals_watchdog_is_in_alertmanager_while_vitals_runs_and_expires_when_killed() {
    let dir = tempfile::tempdir().unwrap();
    let am = Alertmanager::start_on(dir.path(), free_port()).await;
    let text = format!(
        "{}\n[sinks.am]\nkind = \"alertmanager\"\nurl = \"{}\"\nresend_interval = \"1s\"\nwatchdog = true\n",
        command_check(dir.path()),
        am.url
    );
    let config = write_config(dir.path(), &text);
    let mut daemon = Daemonized::spawn(&config);
    let watchdog = |a: &[serde_json::Value]| a.iter().any(|a| a["labels"]["alertname"] == "VitalsWatchdog");
    let alerts = am.wait("VitalsWatchdog", watchdog).await;
    let w = alerts
        .iter()
        .find(|a| a["labels"]["alertname"] == "VitalsWatchdog")
        .unwrap();
    assert_eq!(w["labels"]["severity"], "none");
    assert_eq!(w["status"]["state"], "active");
    // Still there after a few re-posts.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(watchdog(&am.alerts().await), "re-posted before it expires");
    daemon.child.kill().unwrap();
    daemon.child.wait().unwrap();
    am.wait("VitalsWatchdog expired", |a| !watchdog(a)).await;
}

#[test]
fn public_url_is_answered_to_and_a_bad_one_is_refused_at_its_key() {
    let registry = vitals::registry::registry().unwrap();
    let config = vitals::config::parse(
        "v.toml".as_ref(),
        "[server]\npublic_url = \"https://Vitals.Desk.example:8443/board\"\n",
        registry,
    )
    .unwrap_or_else(|d| panic!("{d}"));
    assert!(
        config
            .server
            .allowed_hosts()
            .contains(&"vitals.desk.example".to_owned())
    );
    let e = vitals::config::parse(
        "v.toml".as_ref(),
        "[server]\npublic_url = \"vitals.desk\"\n",
        registry,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("v.toml:2:14: [server] key `public_url`: `vitals.desk` is not a URL"),
        "{e}"
    );
}
