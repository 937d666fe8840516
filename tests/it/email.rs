//! The `email` sink against a real SMTP server (Python aiosmtpd) on loopback: content,
//! a storm grouped into one message, STARTTLS with AUTH, and a server that is down for
//! a while — every event arrives once it is back, and checks keep their schedule.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use vitals::alert::{AlertEvent, AlertState, Severity};
use vitals::config::parse;
use vitals::dispatch::{Dispatcher, SinkInstance};
use vitals::registry::registry;

use crate::support::free_port;
use crate::support::smtp::SmtpServer;

fn event(n: usize, severity: Severity, state: AlertState) -> AlertEvent {
    let now = chrono::Utc::now();
    AlertEvent {
        alert_id: format!("data_stale.positions{n}.1"),
        rule: "data_stale".into(),
        check_id: format!("positions{n}"),
        severity,
        state,
        message: format!("positions{n} stale (75s old)"),
        value: Some(75.0),
        started_at: now,
        event_at: now,
        host: "desk".into(),
        reminder: false,
        label: None,
    }
}

fn email_target(dir: &Path, keys: &str) -> SinkInstance {
    let text = format!(
        "[sinks.mail]\nkind = \"email\"\nfrom = \"vitals <vitals@desk.test>\"\nto = [\"ops@desk.test\"]\n{keys}"
    );
    let config =
        parse(&dir.join("vitals.toml"), &text, registry().unwrap()).unwrap_or_else(|d| panic!("{d}"));
    SinkInstance::build(&config.sinks[0], dir)
}

#[tokio::test]
async fn one_alert_is_one_readable_email() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = tempfile::tempdir().unwrap();
    let port = free_port();
    let smtp = SmtpServer::start(port, inbox.path(), None);
    let target = email_target(
        dir.path(),
        &format!(
            "host = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\ngroup_wait = \"0s\"\npage_url = \"http://127.0.0.1:8686/\"\n"
        ),
    );
    let d = Dispatcher::start(vec![target], dir.path());
    d.send(&event(1, Severity::Warning, AlertState::Firing).with_label(Some("STALE".into())));
    let m = smtp.wait_for(1).await;
    // Short enough for a lock screen: rule, check, severity, label; the advice is in
    // the body.
    assert_eq!(
        m[0]["subject"],
        "[vitals] FIRING WARNING data_stale · positions1 · STALE"
    );
    assert_eq!(m[0]["to"][0], "ops@desk.test");
    let text = m[0]["text"].as_str().expect("a plain-text part");
    assert!(
        text.contains("[FIRING] WARNING data_stale on positions1"),
        "{text}"
    );
    assert!(text.contains("value: 75"), "{text}");
    assert!(
        text.contains("positions1 stale (75s old)"),
        "the advice is in the body: {text}"
    );
    assert!(text.contains("Status page: http://127.0.0.1:8686/"), "{text}");
    let html = m[0]["html"].as_str().expect("an HTML part");
    assert!(html.contains("<td>positions1</td>"), "{html}");
    // minijinja escapes `/` in HTML as `&#x2f;`, which browsers read as `/`.
    assert!(
        html.replace("&#x2f;", "/")
            .contains("href=\"http://127.0.0.1:8686/\""),
        "{html}"
    );
    d.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn a_storm_of_100_alerts_is_one_email() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = tempfile::tempdir().unwrap();
    let port = free_port();
    let smtp = SmtpServer::start(port, inbox.path(), None);
    let target = email_target(
        dir.path(),
        &format!("host = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\ngroup_wait = \"1s\"\n"),
    );
    let d = Dispatcher::start(vec![target], dir.path());
    for n in 0..100 {
        let severity = if n == 7 {
            Severity::Critical
        } else {
            Severity::Warning
        };
        d.send(&event(n, severity, AlertState::Firing));
    }
    d.send(&event(200, Severity::Warning, AlertState::Resolved));
    let m = smtp.wait_for(1).await;
    // Nothing else follows.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(smtp.messages().len(), 1);
    assert_eq!(
        m[0]["subject"],
        "[vitals] CRITICAL 101 alerts: 100 firing, 1 resolved"
    );
    let text = m[0]["text"].as_str().unwrap();
    assert_eq!(text.matches("[FIRING]").count(), 100);
    assert_eq!(text.matches("[RESOLVED]").count(), 1);
    d.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn starttls_and_auth_where_the_server_requires_them() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = tempfile::tempdir().unwrap();
    // A private CA and a server certificate it signed, for 127.0.0.1.
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let openssl = |args: &str| {
        let status = Command::new("openssl")
            .args(args.split_whitespace())
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl");
        assert!(status.success(), "openssl {args}");
    };
    openssl("req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=vitals-test-ca -keyout ca.key -out ca.pem");
    openssl("req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout key.pem -out server.csr");
    std::fs::write(
        dir.path().join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(
        "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile ext.cnf -out cert.pem",
    );
    let port = free_port();
    let smtp = SmtpServer::start(port, inbox.path(), Some((&cert, &key, "vitals", "s3cret")));
    // SAFETY: set before any thread of this test reads the environment.
    unsafe { std::env::set_var("VITALS_TEST_SMTP_PASSWORD", "s3cret") };
    let target = email_target(
        dir.path(),
        &format!(
            "host = \"127.0.0.1\"\nport = {port}\ntls = \"starttls\"\nca_file = \"ca.pem\"\n\
             username = \"vitals\"\npassword_env = \"VITALS_TEST_SMTP_PASSWORD\"\ngroup_wait = \"0s\"\n"
        ),
    );
    let d = Dispatcher::start(vec![target], dir.path());
    d.send(&event(1, Severity::Critical, AlertState::Firing));
    let m = smtp.wait_for(1).await;
    assert_eq!(m[0]["tls"], true, "the message must travel over TLS");
    d.shutdown(Duration::from_secs(2)).await;

    // A wrong password is refused by the server: nothing arrives, the event is kept.
    let inbox2 = tempfile::tempdir().unwrap();
    let port2 = free_port();
    let smtp2 = SmtpServer::start(port2, inbox2.path(), Some((&cert, &key, "vitals", "other")));
    let dir2 = tempfile::tempdir().unwrap();
    let target = email_target(
        dir2.path(),
        &format!(
            "host = \"127.0.0.1\"\nport = {port2}\ntls = \"starttls\"\naccept_invalid_certs = true\n\
             username = \"vitals\"\npassword_env = \"VITALS_TEST_SMTP_PASSWORD\"\ngroup_wait = \"0s\"\n"
        ),
    );
    let d = Dispatcher::start(vec![target], dir2.path());
    d.send(&event(2, Severity::Critical, AlertState::Firing));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(smtp2.messages().is_empty());
    d.shutdown(Duration::from_secs(1)).await;
    let kept = std::fs::read_to_string(dir2.path().join("outbox/mail.jsonl"))
        .or_else(|_| std::fs::read_to_string(dir2.path().join("outbox/mail.dead.jsonl")))
        .expect("the refused event is kept (outbox or dead letters)");
    assert!(kept.contains("data_stale.positions2.1"));
}
