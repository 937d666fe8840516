//! The second security pass, one test per attack, each reproduced as it was found:
//! the alerts table behind `/alerts` read only as far as the filter needs, once per
//! table version, the CSV capped and cut off from a client that does not read it; no
//! secret of an Alertmanager URL in the log and no forged log line from its answer;
//! history upkeep and the alerts writer never going through a planted link; no panic
//! from a URL; no spreadsheet formula in the CSV; the state folder private and its
//! outbox never followed; the connection cap evicting instead of locking out; hostile
//! `vitals test` and `vitals replay` input refused with exit 65; a retention of
//! 300,000 years refused at its key; what 421, 503 and the authorization scheme show.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;
use vitals::alert::{AlertEvent, AlertState, Severity};
use vitals::alerts_table::Writer;
use vitals::daemon::Daemon;
use vitals::delta::TableRef;
use vitals::registry::registry;

use crate::support::{Daemonized, free_port, python, vitals, write_config};

const TOKEN: &str = "security-token";

async fn get(
    router: &axum::Router,
    uri: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, axum::http::HeaderMap, String) {
    let mut req = Request::builder().uri(uri);
    if !headers.iter().any(|(k, _)| *k == "host") {
        req = req.header("host", "127.0.0.1");
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = router
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (status, headers) = (r.status(), r.headers().clone());
    let bytes = axum::body::to_bytes(r.into_body(), 1 << 28).await.unwrap();
    (status, headers, String::from_utf8_lossy(&bytes).into_owned())
}

fn alerts_py(args: &[&str]) -> String {
    let out = Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/alerts_table.py"))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn event(check: &str, message: &str, at: chrono::DateTime<chrono::Utc>) -> AlertEvent {
    AlertEvent::new(
        "data_stale",
        check,
        Severity::Critical,
        AlertState::Firing,
        message.to_owned(),
        at,
    )
}

fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() && !p.ends_with("_delta_log") {
            out.extend(parquet_files(&p));
        } else if p.extension().is_some_and(|x| x == "parquet") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Item 1: a filtered page reads only the days it shows (the alerts table is
/// partitioned by `date`), the read is kept until the table has a new commit, and the
/// CSV has a row cap that says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_reads_go_no_further_than_the_filter_and_once_per_version() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let table = d.join("alerts");
    let writer = Writer::new(TableRef::local(&table));
    let now = chrono::Utc::now();
    writer
        .append(&[event(
            "old_check",
            "ten days ago",
            now - chrono::Duration::days(10),
        )])
        .await
        .unwrap();
    writer
        .append(&[event("new_check", "just now", now)])
        .await
        .unwrap();
    let old_day = table.join(format!(
        "date={}",
        (now - chrono::Duration::days(10)).format("%Y-%m-%d")
    ));
    assert!(old_day.is_dir(), "partitioned by date");
    let path = write_config(
        d,
        "[sinks.alerts]\nkind = \"delta\"\ntable = \"alerts\"\n\n\
         [checks.c]\nkind = \"command\"\ninterval = \"1h\"\ncommand = [\"/bin/sh\", \"-c\", \"echo OK\"]\n",
    );
    let daemon = Daemon::start(&path, registry().unwrap()).await.unwrap();
    let router = vitals::web::router(daemon.web_with_token(Some(TOKEN.into())));

    // The old day's files gone: a day's filter never reads them.
    for f in parquet_files(&old_day) {
        std::fs::remove_file(f).unwrap();
    }
    let (code, _, page) = get(&router, "/alerts?hours=24", &[]).await;
    assert_eq!(code, StatusCode::OK, "{page}");
    assert!(
        page.contains("just now") && !page.contains("ten days ago"),
        "{page}"
    );
    // A month's filter must read it, and says it cannot, without the path.
    let (code, _, page) = get(&router, "/alerts?hours=720", &[]).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert!(!page.contains(d.to_str().unwrap()), "no filesystem path: {page}");

    // Kept by version: with today's files gone too, the same filter answers from the
    // read it kept…
    let (code, _, _) = get(&router, "/alerts?hours=24", &[]).await;
    assert_eq!(code, StatusCode::OK);
    let today = parquet_files(&table);
    for f in &today {
        std::fs::remove_file(f).unwrap();
    }
    let (code, _, page) = get(&router, "/alerts.csv?hours=24", &[]).await;
    assert_eq!(code, StatusCode::OK, "the kept read: {page}");
    assert!(page.contains("just now"), "{page}");
    // …until the table has a new commit: then it reads again (and meets the hole).
    writer
        .append(&[event("newer_check", "newer", now)])
        .await
        .unwrap();
    let (code, _, _) = get(&router, "/alerts?hours=24", &[]).await;
    assert_eq!(
        code,
        StatusCode::SERVICE_UNAVAILABLE,
        "read again after the commit"
    );
    daemon.shutdown().await;
}

/// Item 1: a table from before the partition (one 120,000-row file) is still read; the
/// CSV stops at its cap and says so; a client that asks for it and never reads the
/// answer is cut off after `write_timeout`, and the page keeps answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csv_nobody_reads_is_cut_off_and_an_old_table_still_reads() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    alerts_py(&["bulk", d.join("alerts").to_str().unwrap(), "120000", "10"]);
    let port = free_port();
    let path = write_config(
        d,
        &format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\nwrite_timeout = \"1s\"\n\n\
             [sinks.alerts]\nkind = \"delta\"\ntable = \"alerts\"\n\n\
             [checks.c]\nkind = \"command\"\ninterval = \"1h\"\ncommand = [\"/bin/sh\", \"-c\", \"echo OK\"]\n"
        ),
    );
    let vitals = Daemonized::spawn(&path);
    vitals.expect("status page on");
    let base = format!("http://127.0.0.1:{port}");
    let full = reqwest::get(format!("{base}/alerts.csv?hours=8760"))
        .await
        .unwrap();
    assert_eq!(full.status(), 200);
    assert_eq!(
        full.headers()["x-vitals-rows-capped"],
        vitals::web::alerts::CSV_ROWS.to_string().as_str()
    );
    let text = full.text().await.unwrap();
    assert_eq!(
        text.lines().count(),
        vitals::web::alerts::CSV_ROWS + 1,
        "the header and the cap"
    );
    assert!(text.lines().nth(1).unwrap().contains("old-host"));

    // Asks, then does not read for three write timeouts.
    let mut slow = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    slow.write_all(b"GET /alerts.csv?hours=8760 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), slow.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "the connection was closed");
    assert!(
        got.len() < text.len() && !got.ends_with(b"0\r\n\r\n"),
        "{} of {} bytes, and no end of the chunked answer",
        got.len(),
        text.len()
    );
    assert!(
        reqwest::get(format!("{base}/healthz"))
            .await
            .unwrap()
            .status()
            .is_success()
    );
    assert!(
        !vitals.log().iter().any(|l| l.contains("ERROR")),
        "{:?}",
        vitals.log()
    );
}

#[derive(Default)]
struct Seen {
    uris: Mutex<Vec<String>>,
    authorization: Mutex<Vec<String>>,
}

/// Items 2 and 7: an Alertmanager URL with a user, a password and a query token. The
/// endpoint keeps the query; the log and the unauthenticated status show neither; a
/// 400 whose body holds a newline and a fake log line stays on one line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alertmanager_url_keeps_its_secrets_and_its_answer_forges_no_line() {
    use axum::extract::{OriginalUri, State};
    let seen = Arc::new(Seen::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let am = listener.local_addr().unwrap().port();
    let app =
        axum::Router::new()
            .fallback(
                |State(seen): State<Arc<Seen>>,
                 OriginalUri(uri): OriginalUri,
                 headers: axum::http::HeaderMap| async move {
                    seen.uris.lock().unwrap().push(uri.to_string());
                    if let Some(a) = headers.get("authorization") {
                        seen.authorization
                            .lock()
                            .unwrap()
                            .push(a.to_str().unwrap().to_owned());
                    }
                    (
                        StatusCode::BAD_REQUEST,
                        "bad alert\nERROR vitals: FORGED line from the body",
                    )
                },
            )
            .with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let path = write_config(
        dir.path(),
        &format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n\n\
             [checks.down]\nkind = \"command\"\ninterval = \"200ms\"\n\
             command = [\"/bin/sh\", \"-c\", \"echo 'CRITICAL - down'; exit 2\"]\n\n\
             [[rules]]\nname = \"down\"\nchecks = [\"down\"]\nwhen = \"status == 'critical'\"\nseverity = \"CRITICAL\"\n\n\
             [sinks.am]\nkind = \"alertmanager\"\nurl = \"http://user:pa55@127.0.0.1:{am}/prefix?token=s3cret\"\n"
        ),
    );
    let vitals = Daemonized::spawn(&path);
    let line = vitals.expect("answered 400");
    assert!(
        line.contains(&format!("Alertmanager at http://127.0.0.1:{am}/… answered 400")),
        "{line}"
    );
    assert_eq!(
        seen.uris.lock().unwrap()[0],
        "/prefix/api/v2/alerts?token=s3cret",
        "the query is kept after the path"
    );
    use base64::Engine as _;
    assert_eq!(
        seen.authorization.lock().unwrap()[0],
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("user:pa55")
        )
    );
    let status: serde_json::Value = reqwest::get(format!("http://127.0.0.1:{port}/api/status"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let status = status.to_string();
    assert!(
        status.contains("answered 400"),
        "the sink's last error is shown: {status}"
    );
    for l in vitals.log().iter().chain([&status]) {
        for secret in ["pa55", "s3cret", "user:"] {
            assert!(!l.contains(secret), "{secret} in {l}");
        }
    }
    assert!(
        !vitals
            .log()
            .iter()
            .any(|l| l.trim_start().starts_with("ERROR vitals: FORGED")),
        "a forged line: {:?}",
        vitals.log()
    );
}

/// Item 3: a link planted inside a history table (a partition that is a link to a
/// folder outside) stops upkeep before it touches anything: no compacted file is
/// written there and vacuum deletes nothing there. The alerts writer refuses the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upkeep_and_the_alerts_writer_never_go_through_a_planted_link() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("history");
    let out = Command::new(python())
        .arg("-c")
        .arg(crate::history::WRITE_OLD_DAYS)
        .arg(&table)
        .arg("[[40, 1], [2, 3]]")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let day = (chrono::Utc::now() - chrono::Duration::days(2))
        .format("%Y-%m-%d")
        .to_string();
    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let partition = table.join(format!("date={day}"));
    let moved = outside.join(format!("date={day}"));
    std::fs::rename(&partition, &moved).unwrap();
    std::os::unix::fs::symlink(&moved, &partition).unwrap();
    let before = parquet_files(&outside);
    assert_eq!(before.len(), 3);

    let mut t = vitals::delta::open::open_existing(table.to_str().unwrap(), &Default::default())
        .await
        .unwrap();
    let e = vitals::history::maintain(&mut t, Duration::from_secs(30 * 86400), chrono::Utc::now())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("is a symbolic link to a folder"), "{e}");
    assert_eq!(
        parquet_files(&outside),
        before,
        "nothing written or deleted outside"
    );
    assert!(
        table
            .join(format!(
                "date={}",
                (chrono::Utc::now() - chrono::Duration::days(40)).format("%Y-%m-%d")
            ))
            .is_dir(),
        "not even the day past retention was dropped: refused before anything"
    );

    // The alerts writer: today's partition replaced by a link.
    let alerts = dir.path().join("alerts");
    let writer = Writer::new(TableRef::local(&alerts));
    let now = chrono::Utc::now();
    writer.append(&[event("c", "first", now)]).await.unwrap();
    let today = alerts.join(format!("date={}", now.format("%Y-%m-%d")));
    let elsewhere = dir.path().join("elsewhere");
    std::fs::rename(&today, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &today).unwrap();
    let before = parquet_files(&elsewhere);
    let e = Writer::new(TableRef::local(&alerts))
        .append(&[event("c", "second", now)])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("symbolic link"), "{e}");
    assert_eq!(parquet_files(&elsewhere), before);
}

/// Items 4, 5 and 12 through the router: times out of range answer 400 (never a
/// panic), a formula never reaches a spreadsheet, a 421 names no host, a lowercase
/// `bearer` is a bearer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_urls_formulas_and_schemes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let writer = Writer::new(TableRef::local(&d.join("alerts")));
    let now = chrono::Utc::now();
    writer
        .append(&[
            event("c1", "=HYPERLINK(\"http://evil.example\",\"click\")", now),
            event("c2", "+1+cmd|' /C calc'!A0", now),
            event("c3", "-2", now),
            event("c4", "@SUM(A1:A9)", now),
        ])
        .await
        .unwrap();
    let path = write_config(
        d,
        "[server]\npublic_url = \"https://vitals.desk.example\"\n\n\
         [history]\ntable = \"history\"\n\n\
         [sinks.alerts]\nkind = \"delta\"\ntable = \"alerts\"\n\n\
         [checks.c]\nkind = \"command\"\ninterval = \"1h\"\ncommand = [\"/bin/sh\", \"-c\", \"echo OK\"]\n",
    );
    let daemon = Daemon::start(&path, registry().unwrap()).await.unwrap();
    let router = vitals::web::router(daemon.web_with_token(Some(TOKEN.into())));
    for uri in [
        "/alerts?hours=4294967295",
        "/alerts.csv?hours=4294967295",
        "/api/alert-events?check=c1&hours=4294967295",
        "/api/history?check=c&to=-262143-01-01T00:00:00Z",
        "/api/history?check=c&from=-262143-01-01T00:00:00Z&to=%2B262142-12-31T23:59:59Z",
    ] {
        let (code, _, body) = get(&router, uri, &[]).await;
        assert!(!code.is_server_error(), "{uri}: {code} {body}");
    }
    let (code, _, csv) = get(&router, "/alerts.csv?hours=24", &[]).await;
    assert_eq!(code, StatusCode::OK);
    for (cell, safe) in [
        ("=HYPERLINK", "\"'=HYPERLINK("),
        ("+1+cmd", "'+1+cmd"),
        ("-2", ",'-2,"),
        ("@SUM", "'@SUM("),
    ] {
        assert!(csv.contains(safe), "{cell}: {csv}");
        assert!(!csv.contains(&format!(",{cell}")), "{cell} as is: {csv}");
    }
    // A 421 says what is wrong, not which names would do.
    let (code, _, body) = get(&router, "/api/status", &[("host", "evil.example")]).await;
    assert_eq!(code, StatusCode::MISDIRECTED_REQUEST);
    assert!(
        !body.contains("vitals.desk.example") && !body.contains("127.0.0.1"),
        "{body}"
    );
    // RFC 7235: the scheme is case-insensitive.
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let req = Request::builder()
            .method("POST")
            .uri("/api/checks/c/run")
            .header("host", "127.0.0.1")
            .header("authorization", format!("{scheme} {TOKEN}"))
            .body(Body::empty())
            .unwrap();
        let r = router.clone().oneshot(req).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{scheme}");
    }
    daemon.shutdown().await;
}

/// Item 8: a state folder others may write is made private at start; a link in place
/// of an outbox file is refused, and nothing of its target reaches the log.
#[test]
fn the_state_folder_is_private_and_an_outbox_link_is_not_followed() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let state = d.join("state");
    std::fs::create_dir_all(state.join("outbox")).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
    let secret = d.join("secret.txt");
    std::fs::write(&secret, "line one of a secret\nAWS_SECRET=hunter2\n").unwrap();
    std::os::unix::fs::symlink(&secret, state.join("outbox").join("audit.jsonl")).unwrap();
    let path = write_config(
        d,
        "[checks.c]\nkind = \"command\"\ninterval = \"1h\"\ncommand = [\"/bin/sh\", \"-c\", \"echo OK\"]\n\n\
         [sinks.audit]\nkind = \"log\"\npath = \"alerts.jsonl\"\n",
    );
    let vitals = Daemonized::spawn(&path);
    vitals.expect("made it 0700");
    vitals.expect("status page on");
    let mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    let log = vitals.log().join("\n");
    assert!(log.contains("symbolic link"), "the link is named: {log}");
    assert!(!log.contains("hunter2") && !log.contains("line one"), "{log}");
    assert_eq!(
        std::fs::read_to_string(&secret).unwrap(),
        "line one of a secret\nAWS_SECRET=hunter2\n"
    );
}

/// Item 9: a client holding every connection open (and opening another each time one
/// closes) does not lock the desk out: the oldest gives way and `/healthz` answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holding_every_connection_does_not_lock_the_desk_out() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let path = write_config(
        dir.path(),
        &format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\nmax_connections = 4\n\n\
             [checks.c]\nkind = \"command\"\ninterval = \"1h\"\ncommand = [\"/bin/sh\", \"-c\", \"echo OK\"]\n"
        ),
    );
    let vitals = Daemonized::spawn(&path);
    vitals.expect("status page on");
    let stop = tokio_util::sync::CancellationToken::new();
    let mut holders = Vec::new();
    for _ in 0..4 {
        let stop = stop.clone();
        holders.push(tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let mut reopened = 0;
            while !stop.is_cancelled() {
                let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
                    continue;
                };
                let mut buf = [0u8; 64];
                tokio::select! {
                    _ = s.read(&mut buf) => reopened += 1,
                    _ = stop.cancelled() => {}
                }
            }
            reopened
        }));
    }
    let mut answered = 0;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    for _ in 0..21 {
        if client
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            answered += 1;
        }
    }
    stop.cancel();
    let mut reopened = 0;
    for h in holders {
        reopened += h.await.unwrap();
    }
    assert_eq!(answered, 21, "every probe answered");
    assert!(reopened >= 1, "the holders were evicted and came back");
}

/// Item 10: rule-test files that panicked or asked for gigabytes, and a replay line of
/// 5 MiB, end with a clear error and exit 65.
#[test]
fn hostile_test_files_and_replay_lines_exit_65() {
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        "[checks.c]\nkind = \"cpu\"\n\n[[rules]]\nname = \"hot\"\nchecks = [\"c\"]\nwhen = \"value > 90\"\nseverity = \"WARNING\"\nrepeat = \"1s\"\n",
    );
    let many_series = format!(
        "series = [{}]",
        ["{ check = \"c\", values = \"1x400000\" }"; 3].join(", ")
    );
    let case = |body: &str| {
        format!(
            "config = \"vitals.toml\"\n[[tests]]\nname = \"t\"\nstart = \"2026-11-27T14:00:00Z\"\n{body}\n"
        )
    };
    for (name, body, says) in [
        (
            "huge count",
            "series = [{ check = \"c\", values = \"10+5x999999999\" }]",
            "at most",
        ),
        (
            "count past usize",
            "series = [{ check = \"c\", values = \"_x99999999999999999999999\" }]",
            "too large",
        ),
        (
            "sample past the end of time",
            "start = \"+262000-01-01T00:00:00Z\"\ninterval = \"100y\"\nseries = [{ check = \"c\", values = \"1x3\" }]",
            "sample 2 is past the end of time",
        ),
        (
            "until past the end of time",
            "until = \"99y\"\nstart = \"+262100-01-01T00:00:00Z\"\nseries = [{ check = \"c\", values = \"1\" }]",
            "past the end of time",
        ),
        (
            "expect past the end of time",
            "start = \"+262100-01-01T00:00:00Z\"\nseries = [{ check = \"c\", values = \"1\" }]\nexpect = [{ at = \"99y\", rule = \"hot\", check = \"c\", state = \"firing\" }]",
            "past the end of time",
        ),
        // Three series of 400,000 samples each: each under the cap, the test over it.
        ("many series", &many_series, "in all"),
        (
            "reminders every second for years",
            "until = \"90y\"\nseries = [{ check = \"c\", values = \"95\" }]",
            "alert events",
        ),
    ] {
        // `start` given twice is a TOML error of its own: the cases that move it replace it.
        let text = if body.contains("start =") {
            case(body).replacen("start = \"2026-11-27T14:00:00Z\"\n", "", 1)
        } else {
            case(body)
        };
        let file = dir.path().join("hostile.test.toml");
        std::fs::write(&file, text).unwrap();
        let out = vitals().arg("test").arg(&file).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(65), "{name}: {stderr}");
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        assert!(stderr.contains(says), "{name}: {stderr}");
    }

    // A 5 MiB line is refused at its number without reading it whole.
    let recording = dir.path().join("long.jsonl");
    let mut text = "x".repeat(5 << 20);
    text.push('\n');
    std::fs::write(&recording, text).unwrap();
    let out = vitals()
        .args(["replay", "-c"])
        .arg(dir.path().join("vitals.toml"))
        .arg(&recording)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(65), "{stderr}");
    assert!(
        stderr.contains("line 1") && stderr.contains("longer than 4 MiB"),
        "{stderr}"
    );
}

/// Item 11: a duration beyond what vitals can count is refused at its key, by
/// `validate`, not met by the history writer at start.
#[test]
fn a_retention_of_300000_years_is_refused_at_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        "[history]\ntable = \"history\"\nretention = \"300000y\"\n",
    );
    let out = vitals().args(["validate", "-c"]).arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains("vitals.toml:3:13: [history] key `retention`"),
        "{stderr}"
    );
    assert!(stderr.contains("100 years"), "{stderr}");
}
