//! Reloading: a valid new config is applied (unchanged checks keep running untouched),
//! an invalid one is refused with its errors while the old one keeps running — through
//! the API, the file watcher, and SIGHUP to the real binary.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use vitals::board::BoardEvent;
use vitals::daemon::{Control, Daemon};
use vitals::registry::registry;

use crate::support::{Daemonized, write_config};

const BASE: &str = "[defaults]\ninterval = \"50ms\"\njitter = \"0s\"\n\n[checks.a]\nkind = \"memory\"\n";

/// Waits (bounded) for an observation of `id` on the board.
async fn observed(rx: &mut mpsc::UnboundedReceiver<BoardEvent>, id: &str) -> BoardEvent {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let e = rx.recv().await.expect("board closed");
            if e.observation.id == id {
                return e;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no observation of `{id}`"))
}

#[tokio::test]
async fn reload_applies_valid_configs_and_refuses_invalid_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), BASE);
    let mut daemon = Daemon::start(&path, registry().unwrap())
        .await
        .expect("valid config");
    let mut rx = daemon.board().follow();
    observed(&mut rx, "a").await;
    let a_before = daemon.runner().instance("a").unwrap();

    write_config(
        dir.path(),
        &format!("{BASE}\n[checks.b]\nkind = \"disk\"\npath = \"/\"\n"),
    );
    let report = daemon.reload().await.expect("valid reload");
    assert_eq!(report.added, ["b"]);
    assert_eq!(report.kept, ["a"]);
    assert!(report.changed.is_empty() && report.removed.is_empty());
    assert!(
        Arc::ptr_eq(&a_before, &daemon.runner().instance("a").unwrap()),
        "unchanged check was restarted"
    );
    observed(&mut rx, "b").await;

    write_config(
        dir.path(),
        &format!("{BASE}warn = 90\ncrit = 10\n\n[checks.b]\nkind = \"dsk\"\n"),
    );
    let err = daemon.reload().await.expect_err("invalid config must be refused");
    let text = err.to_string();
    assert!(text.contains("[checks.a] key `crit`"), "{text}");
    assert!(text.contains("[checks.b] key `kind`"), "{text}");
    // The old config keeps running: both checks still publish.
    while rx.try_recv().is_ok() {}
    observed(&mut rx, "a").await;
    observed(&mut rx, "b").await;
    assert_eq!(daemon.runner().ids(), ["a", "b"]);

    write_config(dir.path(), &format!("{BASE}warn = 95\ncrit = 99\n"));
    let report = daemon.reload().await.expect("valid reload");
    assert_eq!(report.changed, ["a"]);
    assert_eq!(report.removed, ["b"]);
    assert!(
        daemon.board().get("b").is_none(),
        "a removed check stays on the board"
    );
    let e = observed(&mut rx, "a").await;
    assert_eq!(e.observation.details["crit"], 99.0);
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_changed_file_is_picked_up_without_a_signal() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), BASE);
    let daemon = Daemon::start(&path, registry().unwrap()).await.unwrap();
    let mut rx = daemon.board().follow();
    let (tx, control) = mpsc::channel(1);
    let served = tokio::spawn(daemon.serve(control));
    observed(&mut rx, "a").await;
    write_config(dir.path(), &format!("{BASE}\n[checks.c]\nkind = \"host\"\n"));
    observed(&mut rx, "c").await;
    tx.send(Control::Shutdown).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), served)
        .await
        .expect("clean shutdown")
        .unwrap();
}

#[test]
fn the_binary_reloads_on_sighup_and_stops_cleanly_on_sigterm() {
    use nix::sys::signal::Signal;
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), BASE);
    let mut d = Daemonized::spawn(&path);
    // (The status does not matter here; a loaded machine may turn memory amber.)
    d.expect_all(&["vitals started with 1 checks: a", "a: (new) ->"]);

    // Same content, then SIGHUP: the file watcher sees nothing new; the signal reloads.
    write_config(dir.path(), &format!("{BASE}\n[checks.b]\nkind = \"host\"\n"));
    d.signal(Signal::SIGHUP);
    // The new check's first run may be logged before the reload's summary.
    d.expect_all(&["config reloaded: added [b]", "b: (new) ->"]);

    write_config(dir.path(), &format!("{BASE}\n[checks.b]\nkind = \"hots\"\n"));
    d.signal(Signal::SIGHUP);
    d.expect("new config refused, the running config stays");
    let line = d.expect("[checks.b] key `kind`");
    assert!(line.contains(&format!("{}:9:8", path.display())), "{line}");

    d.signal(Signal::SIGTERM);
    d.expect("vitals stopped");
    let status = d.child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn the_daemon_logs_alerts_from_real_checks() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("down");
    std::fs::write(&flag, "").unwrap();
    let path = write_config(
        dir.path(),
        &format!(
            "[defaults]\ninterval = \"100ms\"\njitter = \"0s\"\n\n\
             [checks.gateway]\nkind = \"command\"\n\
             command = [\"/bin/sh\", \"-c\", \"if [ -e {f} ]; then echo 'CRITICAL - gateway down'; exit 2; fi; echo 'OK - up'\"]\n\n\
             [[rules]]\nname = \"gateway_down\"\nchecks = [\"gateway\"]\nwhen = \"status == 'critical'\"\nseverity = \"CRITICAL\"\n\
             message = \"{{check}}: {{message}}\"\n",
            f = flag.display()
        ),
    );
    let d = Daemonized::spawn(&path);
    let fired = d.expect("ALERT firing [CRITICAL] gateway_down: gateway: CRITICAL - gateway down");
    assert!(fired.contains("alert_id=gateway_down.gateway."), "{fired}");
    std::fs::remove_file(&flag).unwrap();
    // A resolve says why it fired, then what resolved it.
    d.expect("ALERT resolved [CRITICAL] gateway_down: gateway: CRITICAL - gateway down — resolved: OK - up");
}
