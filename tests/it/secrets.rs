//! Secrets stay secret: with a sentinel action token and SMTP password in its
//! environment, nothing vitals writes or serves holds either — not its log, the page,
//! `/api/status`, `/metrics`, the alerts table, the outboxes and dead letters, nor the
//! output of `vitals plugins` and `validate` — even with a plugin that prints its whole
//! environment.

use std::path::Path;
use std::time::Duration;

use crate::support::delta::try_read_table;
use crate::support::{Daemonized, free_port, vitals, write_config};

const TOKEN: &str = "SENTINEL-TOKEN-7c1e0f";
const PASSWORD: &str = "SENTINEL-PASSWORD-91ab44";

/// Every file under `dir`, as text.
fn files_under(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, out);
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((
                path.display().to_string(),
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_anything_vitals_writes_or_serves() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let smtp = free_port(); // nothing listens: mail stays in the outbox
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\nstate_dir = \"state\"\n\n\
         [defaults]\ninterval = \"200ms\"\njitter = \"0s\"\n\n\
         [checks.snoop]\nkind = \"command\"\n\
         command = [\"/bin/sh\", \"-c\", \"echo 'CRITICAL - printed my environment'; env; env >&2; exit 2\"]\n\n\
         [[rules]]\nname = \"snooped\"\nchecks = [\"snoop\"]\nwhen = \"status == 'critical'\"\nseverity = \"CRITICAL\"\n\
         message = \"{{check}}: {{message}} {{details.stderr}}\"\n\n\
         [sinks.table]\nkind = \"delta\"\ntable = \"alerts\"\nflush_interval = \"100ms\"\n\n\
         [sinks.audit]\nkind = \"log\"\npath = \"audit.jsonl\"\n\n\
         [sinks.mail]\nkind = \"email\"\nhost = \"127.0.0.1\"\nport = {smtp}\ntls = \"starttls\"\n\
         username = \"vitals\"\npassword_env = \"SMTP_PASSWORD\"\n\
         from = \"vitals@desk.test\"\nto = [\"ops@desk.test\"]\n"
    );
    let path = write_config(dir.path(), &text);
    let secrets = [("VITALS_TOKEN", TOKEN), ("SMTP_PASSWORD", PASSWORD)];
    let d = Daemonized::spawn_with_env(&path, &secrets);
    d.expect("ALERT firing [CRITICAL] snooped");
    let base = format!("http://127.0.0.1:{port}");
    let mut served = Vec::new();
    for route in ["/", "/api/status", "/metrics", "/healthz"] {
        let body = reqwest::get(format!("{base}{route}"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        served.push((route.to_owned(), body));
    }
    // The plugin's output did reach the page: the test would see a leak.
    assert!(served[1].1.contains("printed my environment"), "{}", served[1].1);
    assert!(served[1].1.contains("PATH="), "the plugin's env output is shown");
    // The alert reached the table and the audit log.
    let mut table = String::new();
    for _ in 0..100 {
        if let Ok(t) = try_read_table(&dir.path().join("alerts")) {
            table = t.to_string();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(table.contains("snooped"), "{table}");
    d.signal(nix::sys::signal::Signal::SIGTERM);
    d.expect("vitals stopped");
    let log = d.drain().join("\n");
    let mut written = Vec::new();
    files_under(dir.path(), &mut written);
    assert!(
        written.iter().any(|(p, _)| p.ends_with("outbox/mail.jsonl")),
        "the undelivered mail waits in its outbox: {:?}",
        written.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    // What vitals keeps for itself is its user's alone.
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join("state")), 0o700);
        assert_eq!(mode(&dir.path().join("state/outbox")), 0o700);
        assert_eq!(mode(&dir.path().join("state/alerts.json")), 0o600);
        assert_eq!(mode(&dir.path().join("state/outbox/mail.jsonl")), 0o600);
        assert_eq!(mode(&dir.path().join("audit.jsonl")), 0o600);
    }
    let cli = |args: &[&str]| {
        let out = vitals().args(args).envs(secrets).output().unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let plugins = cli(&["plugins"]);
    let validate = cli(&["validate", "-c", path.to_str().unwrap()]);
    let check = cli(&["check", "-c", path.to_str().unwrap()]);
    let mut everything: Vec<(String, String)> = served;
    everything.extend(written);
    everything.push(("the daemon's log".into(), log));
    everything.push(("the alerts table".into(), table));
    everything.push(("vitals plugins".into(), plugins));
    everything.push(("vitals validate".into(), validate));
    everything.push(("vitals check".into(), check));
    for (what, text) in &everything {
        for secret in [TOKEN, PASSWORD] {
            assert!(!text.contains(secret), "{what} holds a secret:\n{text}");
        }
    }
}
