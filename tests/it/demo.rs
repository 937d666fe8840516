//! `vitals demo` through the binary: the whole desk from the first seconds, an alert
//! that fires and resolves within one cycle, every button acting on the simulation,
//! the page in Chromium (its screenshot is docs/demo.png), and SIGTERM leaving nothing
//! behind.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::browser::{ChromeDriver, screenshot, until as browser_until};
use crate::support::{Daemonized, check, free_port, vitals};

const TOKEN: &str = "demo-test-token";

async fn status(port: u16) -> Option<Value> {
    reqwest::get(format!("http://127.0.0.1:{port}/api/status"))
        .await
        .ok()?
        .json()
        .await
        .ok()
}

async fn post(port: u16, path: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}{path}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or_default())
}

/// Polls `f` every 200 ms until it gives a value, for at most `secs`.
async fn within<T>(secs: u64, what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(t) = f().await {
            return t;
        }
        assert!(Instant::now() < deadline, "not within {secs} s: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn empty(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_shows_the_whole_desk_and_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut command = vitals();
    command
        .args(["demo", "--listen", &format!("127.0.0.1:{port}"), "--speed", "10"])
        .current_dir(cwd.path())
        .env("TMPDIR", tmp.path())
        .env("VITALS_TOKEN", TOKEN);
    let demo = Daemonized::spawn_command(command);
    let started = Instant::now();

    // Within 20 s: IB connected, the three feeds fresh, slots and queue with values,
    // the system checks; no section left unconfigured.
    let s = within(20, "the whole desk", async || {
        let s = status(port).await?;
        let ok = check(&s, "ib")["label"] == "CONNECTED"
            && ["positions", "greeks", "decisions"]
                .iter()
                .all(|t| check(&s, t)["label"] == "FRESH")
            && check(&s, "strategy_registry")["value"].is_number()
            && check(&s, "position_queue")["value"].is_number();
        ok.then_some(s)
    })
    .await;
    assert!(started.elapsed() < Duration::from_secs(20));
    for system in ["cpu", "memory", "disk", "host"] {
        check(&s, system);
    }
    let page = reqwest::get(format!("http://127.0.0.1:{port}/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("Not configured"), "every section has its checks");
    assert!(!page.contains("is configured"), "{page}");

    // The positions writer pauses past the stale threshold: an alert fires and
    // resolves within one cycle (24 s at speed 10; 4 minutes at speed 1).
    let fired = demo.expect("ALERT firing [WARNING] data_stale: positions stale");
    let resolved = demo.expect("ALERT resolved [WARNING] data_stale");
    assert!(!fired.is_empty() && !resolved.is_empty());

    // Reconnect reaches the simulated gateway.
    let (code, reconnected) = post(port, "/api/checks/ib/actions/reconnect").await;
    assert_eq!(code, 200, "{reconnected}");
    within(20, "IB connected after the reconnect", async || {
        let s = status(port).await?;
        (check(&s, "ib")["label"] == "CONNECTED").then_some(())
    })
    .await;
    // Clear empties the backed-up queue.
    within(30, "the queue backed up", async || {
        let s = status(port).await?;
        (check(&s, "position_queue")["value"].as_f64()? >= 50.0).then_some(())
    })
    .await;
    let (code, cleared) = post(port, "/api/checks/position_queue/actions/clear").await;
    assert_eq!(code, 200, "{cleared}");
    let s = status(port).await.unwrap();
    assert_eq!(check(&s, "position_queue")["value"], 0.0, "{cleared}");

    // Force sync during the next cycle's pause (from 26 s at speed 10): the writer
    // commits at once and the table reads fresh again.
    within(20, "the positions writer paused", async || {
        let s = status(port).await?;
        (check(&s, "positions")["label"] != "FRESH").then_some(())
    })
    .await;
    let (code, synced) = post(port, "/api/checks/positions/actions/force_sync").await;
    assert_eq!(code, 200, "{synced}");
    assert!(
        synced["message"]
            .as_str()
            .unwrap()
            .ends_with("positions is now FRESH"),
        "{synced}"
    );
    // The page in Chromium; its screenshot is the one in docs/demo.md.
    let driver = ChromeDriver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let c = driver.browser(profile.path()).await;
    c.set_window_size(1280, 1400).await.unwrap();
    c.goto(&format!("http://127.0.0.1:{port}/")).await.unwrap();
    browser_until(
        &c,
        "every section with its rows",
        "return ['ib', 'freshness', 'registry', 'queue', 'system'].every(id => { \
           const s = document.getElementById(id); return s && s.querySelector('[data-check]'); })",
    )
    .await;
    screenshot(&c, "demo.png").await;
    if std::env::var_os("VITALS_BLESS").is_some() {
        std::fs::copy(
            crate::support::browser::output_dir().join("demo.png"),
            Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/demo.png"),
        )
        .unwrap();
    }
    c.close().await.unwrap();

    // SIGTERM: exit 0, nothing left in the temporary folder or the working directory.
    demo.signal(nix::sys::signal::Signal::SIGTERM);
    let mut demo = demo;
    let exit = tokio::task::spawn_blocking(move || demo.child.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(exit.code(), Some(0));
    assert_eq!(empty(tmp.path()), Vec::<String>::new(), "the temporary folder");
    assert_eq!(empty(cwd.path()), Vec::<String>::new(), "the working directory");
}
