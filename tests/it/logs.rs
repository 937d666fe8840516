//! A normal run is quiet: the daemon on the shipped config with every sink kind (the
//! alerts Delta table created at its first commit, email to a real SMTP server, the
//! real Alertmanager, the log) logs no WARN or ERROR, and no colour codes into a pipe.
//! `VITALS_LOG_FORMAT=json` gives one JSON object a line.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::support::alertmanager::Alertmanager;
use crate::support::smtp::SmtpServer;
use crate::support::{Daemonized, free_port, write_config};

const TOKEN: &str = "quiet-test-token";

/// The shipped config with a free port, state beside it, and every sink kind.
fn shipped_with_every_sink(dir: &Path, port: u16, smtp: u16, alertmanager: &str) -> String {
    let shipped =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/vitals.toml")).unwrap();
    let shipped = shipped
        .replace(
            "listen = \"127.0.0.1:8686\"",
            &format!("listen = \"127.0.0.1:{port}\""),
        )
        .replace("state_dir = \"../state\"", "state_dir = \"state\"")
        .replace(
            "path = \"../state/alerts.jsonl\"",
            "path = \"state/alerts.jsonl\"",
        );
    assert!(
        shipped.contains(&format!("127.0.0.1:{port}")),
        "the shipped [server] listen moved"
    );
    format!(
        "{shipped}\n\
         [sinks.alerts_table]\nkind = \"delta\"\ntable = \"{table}\"\nflush_interval = \"200ms\"\n\n\
         [sinks.mail]\nkind = \"email\"\nhost = \"127.0.0.1\"\nport = {smtp}\ntls = \"none\"\n\
         from = \"vitals@desk.test\"\nto = [\"ops@desk.test\"]\n\n\
         [sinks.am]\nkind = \"alertmanager\"\nurl = \"{alertmanager}\"\n",
        table = dir.join("alerts").display(),
    )
}

async fn get(url: &str) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_normal_run_logs_no_warning_or_error() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = tempfile::tempdir().unwrap();
    let smtp_port = free_port();
    let _smtp = SmtpServer::start(smtp_port, inbox.path(), None);
    let am = Alertmanager::start_on(dir.path(), free_port()).await;
    let port = free_port();
    let path = write_config(
        dir.path(),
        &shipped_with_every_sink(dir.path(), port, smtp_port, &am.url),
    );
    let d = Daemonized::spawn_with_env(&path, &[("VITALS_TOKEN", TOKEN)]);
    d.expect("status page on");
    let base = format!("http://127.0.0.1:{port}");
    // Every check has run (none pending any more).
    for _ in 0..200 {
        let status = get(&format!("{base}/api/status")).await;
        let checks = status["checks"].as_array().unwrap();
        if !checks.is_empty() && checks.iter().all(|c| c["label"] != "PENDING") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // An action is recorded as an event: the delta sink's first commit creates the table.
    let ran = reqwest::Client::new()
        .post(format!("{base}/api/checks/cpu/run"))
        .bearer_auth(TOKEN)
        .header("origin", base.clone())
        .send()
        .await
        .unwrap();
    assert!(ran.status().is_success(), "{}", ran.status());
    for _ in 0..200 {
        if dir
            .path()
            .join("alerts/_delta_log/00000000000000000001.json")
            .exists()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        dir.path()
            .join("alerts/_delta_log/00000000000000000001.json")
            .exists(),
        "the action was written to the new alerts table"
    );
    d.signal(nix::sys::signal::Signal::SIGTERM);
    d.expect("vitals stopped");
    let mut lines = d.drain();
    lines.push("(the last line was `vitals stopped`)".into());
    let loud: Vec<&String> = lines
        .iter()
        // Alerts are the product's output, not trouble in vitals: a loaded machine may
        // truly be over the shipped thresholds.
        .filter(|l| (l.contains(" WARN ") || l.contains(" ERROR ")) && !l.contains("ALERT "))
        .collect();
    assert!(loud.is_empty(), "a normal run logged:\n{loud:#?}");
    assert!(
        lines.iter().all(|l| !l.contains('\u{1b}')),
        "colour codes in a pipe: {lines:#?}"
    );
}

#[test]
fn json_logs_are_one_object_a_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "[checks.host]\nkind = \"host\"\n");
    let d = Daemonized::spawn_with_env(&path, &[("VITALS_LOG_FORMAT", "json")]);
    let started = d.expect("vitals started");
    d.signal(nix::sys::signal::Signal::SIGTERM);
    d.expect("vitals stopped");
    let mut lines = d.drain();
    lines.push(started);
    for line in &lines {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            v["level"].is_string() && v["fields"]["message"].is_string(),
            "{v}"
        );
    }
}
