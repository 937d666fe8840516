//! The writers, through the binary with real Delta tables written by Python: the sync
//! status of a table (`running`, `idle`, `error`, with `sync_process`), and a rule's
//! `remediate` with its safeguards — a stale table healed by one `force_sync`, a
//! failing one tried exactly `max_attempts` times a cooldown apart and then
//! `remediation_failed`, a held alert left alone, a dry run that runs nothing, an
//! action the kind lacks refused by `validate`, and a replayed week showing the
//! simulated attempts.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::delta::{make, make_script};
use crate::support::{Daemonized, audit, check, free_port, python, status, vitals, write_config};

const TOKEN: &str = "remediation-token";

/// Polls until `f` holds (20 s at most).
async fn until<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(t) = f().await {
            return t;
        }
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn actions(dir: &Path) -> Vec<Value> {
    audit(dir)
        .into_iter()
        .filter(|e| e["state"] == "action")
        .collect()
}

fn config(dir: &Path, port: u16, force_sync: &str, remediate: &str, extra: &str) -> std::path::PathBuf {
    write_config(
        dir,
        &format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n\n\
             [checks.positions]\nkind = \"delta_freshness\"\ntable = \"positions\"\nwarn = \"1s\"\ncrit = \"2s\"\n\
             interval = \"200ms\"\nforce_sync = {force_sync}\n{extra}\n\
             [[rules]]\nname = \"data_stale\"\nchecks = [\"positions\"]\nwhen = \"status == 'critical'\"\n\
             severity = \"WARNING\"\nremediate = {{ {remediate} }}\n\n\
             [sinks.audit]\nkind = \"log\"\npath = \"alerts.jsonl\"\n"
        ),
    )
}

/// A table gone stale is healed by one `force_sync` (a Python commit), and the alert
/// resolves: one attempt, recorded with its rule, number and outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_table_is_healed_by_one_force_sync() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let table = d.join("positions");
    make(&[table.to_str().unwrap(), "tz", "0", "1"]);
    let sync = format!(
        "[{:?}, {:?}, {:?}, \"tz\", \"0\", \"1\"]",
        python().display().to_string(),
        make_script().display().to_string(),
        table.display().to_string()
    );
    let port = free_port();
    let path = config(
        d,
        port,
        &sync,
        "action = \"force_sync\", max_attempts = 3, cooldown = \"1m\", window = \"1h\"",
        "",
    );
    let vitals = Daemonized::spawn(&path);
    vitals.expect("ALERT firing [WARNING] data_stale");
    vitals.expect("ALERT resolved [WARNING] data_stale");
    let done = until("the attempt recorded", async || {
        let done = actions(d);
        (!done.is_empty()).then_some(done)
    })
    .await;
    assert_eq!(done.len(), 1, "{done:?}\n{}", vitals.log().join("\n"));
    assert_eq!(done[0]["rule"], "data_stale");
    let message = done[0]["message"].as_str().unwrap();
    assert!(
        message.starts_with("force_sync on positions done: auto force_sync, attempt 1 of 3: "),
        "{message}"
    );
    assert!(message.ends_with("positions is now FRESH"), "{message}");
    // The sync status after the fix.
    let s = status(port).await;
    assert_ne!(check(&s, "positions")["details"]["sync"], "error", "{s}");
}

/// A `force_sync` that fails gets exactly `max_attempts` attempts, a cooldown apart;
/// then `remediation_failed` pages with the last outcome, and nothing more is tried.
/// The sync status says why; the page shows it and pauses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_force_sync_is_tried_max_attempts_then_pages() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    make(&[d.join("positions").to_str().unwrap(), "tz", "600", "1"]);
    let port = free_port();
    let path = config(
        d,
        port,
        "[\"/bin/sh\", \"-c\", \"echo 'writer not responding' >&2; exit 1\"]",
        "action = \"force_sync\", max_attempts = 2, cooldown = \"1s\", window = \"1h\"",
        "",
    );
    let vitals = Daemonized::spawn_with_env(&path, &[("VITALS_TOKEN", TOKEN)]);
    let gave_up = vitals.expect("ALERT firing [CRITICAL] remediation_failed");
    assert!(
        gave_up
            .contains("auto force_sync on positions gave up after 2 attempts within 1h; the last: failed:"),
        "{gave_up}"
    );
    assert!(gave_up.contains("writer not responding"), "{gave_up}");
    let done = until("two attempts recorded", async || {
        let done = actions(d);
        (done.len() >= 2).then_some(done)
    })
    .await;
    assert_eq!(done.len(), 2, "{done:?}");
    // When each attempt was due (`started_at`; `event_at` is when it was done).
    let at = |e: &Value| chrono::DateTime::parse_from_rfc3339(e["started_at"].as_str().unwrap()).unwrap();
    assert!(
        at(&done[1]) - at(&done[0]) >= chrono::Duration::seconds(1),
        "a cooldown apart: {done:?}"
    );
    assert!(done[1]["message"].as_str().unwrap().contains("attempt 2 of 2"));
    // The sync status names the failure.
    let s = status(port).await;
    let positions = check(&s, "positions");
    assert_eq!(positions["details"]["sync"], "error");
    assert!(
        positions["details"]["sync_reason"]
            .as_str()
            .unwrap()
            .starts_with("force_sync failed: `/bin/sh` failed"),
        "{positions}"
    );
    // The page says it gave up, and offers the pause.
    let page = reqwest::get(format!("http://127.0.0.1:{port}/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("auto force_sync gave up after 2 attempts"),
        "{page}"
    );
    assert!(page.contains("Pause auto-remediation"), "{page}");
    let alert = s["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["rule"] == "data_stale")
        .unwrap()
        .clone();
    assert_eq!(alert["remediation"]["attempts"], 2);
    assert_eq!(alert["remediation"]["gave_up"], true);
    let paused = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{port}/api/alerts/{}/remediation/pause",
            alert["alert_id"].as_str().unwrap()
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(paused.status(), 200);
    let page = reqwest::get(format!("http://127.0.0.1:{port}/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("auto force_sync paused for this alert"), "{page}");
    // Three cooldowns later: still two attempts.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        actions(d).len(),
        3,
        "the two attempts and the pause, nothing more"
    );
}

/// A rule held back (its check depends on a gateway that is down) is not remediated;
/// a dry run runs nothing and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_alert_is_left_alone_and_a_dry_run_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    make(&[d.join("positions").to_str().unwrap(), "tz", "600", "1"]);
    let ran = d.join("ran");
    let closed = free_port();
    let port = free_port();
    let path = config(
        d,
        port,
        &format!("[\"/bin/sh\", \"-c\", \"touch {}\"]", ran.display()),
        "action = \"force_sync\", cooldown = \"1s\"",
        &format!(
            "depends_on = [\"ib\"]\n\n[checks.ib]\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = {closed}\ninterval = \"200ms\"\n"
        ),
    );
    let vitals = Daemonized::spawn(&path);
    vitals.expect("status page on");
    until("positions held back by ib", async || {
        let s = status(port).await;
        s["held"].as_array().filter(|h| !h.is_empty()).map(|_| ())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!ran.exists(), "no force_sync while held");
    assert!(actions(d).is_empty());
    drop(vitals);

    // The same without the dependency, as a dry run.
    let path = config(
        d,
        port,
        &format!("[\"/bin/sh\", \"-c\", \"touch {}\"]", ran.display()),
        "action = \"force_sync\", cooldown = \"1s\", dry_run = true",
        "",
    );
    let vitals = Daemonized::spawn(&path);
    let line = vitals.expect("dry run");
    assert!(
        line.contains("auto force_sync, attempt 1 of 3 on positions: dry run, nothing was run"),
        "{line}"
    );
    assert!(!ran.exists(), "a dry run runs nothing");
}

/// `validate` refuses, at its key, an action the rule's check kind does not offer.
#[test]
fn validate_refuses_an_action_the_kind_lacks() {
    let dir = tempfile::tempdir().unwrap();
    let path = config(dir.path(), 0, "[\"/bin/true\"]", "action = \"reconnect\"", "");
    let out = vitals().args(["validate", "-c"]).arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains(
            "[rules.data_stale] key `remediate`: `reconnect` is not an action of `delta_freshness` checks (it offers force_sync)"
        ),
        "{stderr}"
    );
}

/// `sync`: `running` while the writer commits, `error` within an interval of killing
/// the `sync_process` writer (before the table is stale), `idle` on a quiet table,
/// `error` on a stale one; `/metrics` carries it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_status_follows_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let live = d.join("live");
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut writer = Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/writer.py"))
        .arg(&live)
        .arg("0.5")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut writer = Killed(std::mem::replace(
        &mut writer,
        Command::new("true").spawn().unwrap(),
    ));
    {
        use std::io::BufRead;
        let mut first = String::new();
        std::io::BufReader::new(writer.0.stdout.as_mut().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert_eq!(first.trim(), "ready");
    }
    make(&[d.join("quiet").to_str().unwrap(), "tz", "0", "1"]);
    make(&[d.join("stale").to_str().unwrap(), "tz", "0", "1"]);
    let port = free_port();
    let pattern = format!("writer\\.py {}", regex::escape(&live.display().to_string()));
    let path = write_config(
        d,
        &format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n\n\
             [checks.live]\nkind = \"delta_freshness\"\ntable = \"live\"\nwarn = \"10s\"\ncrit = \"20s\"\ninterval = \"200ms\"\n\
             sync_process = {pattern:?}\n\n\
             [checks.quiet]\nkind = \"delta_freshness\"\ntable = \"quiet\"\nwarn = \"1s\"\ncrit = \"1h\"\ninterval = \"200ms\"\n\n\
             [checks.stale]\nkind = \"delta_freshness\"\ntable = \"stale\"\nwarn = \"1s\"\ncrit = \"2s\"\ninterval = \"200ms\"\n"
        ),
    );
    let vitals = Daemonized::spawn(&path);
    vitals.expect("status page on");
    let sync = |s: &Value, id: &str| {
        let d = &check(s, id)["details"];
        (
            d["sync"].as_str().unwrap_or_default().to_owned(),
            d["sync_reason"].as_str().unwrap_or_default().to_owned(),
        )
    };
    until("live running, quiet idle, stale error", async || {
        let s = status(port).await;
        let (live, quiet, stale) = (sync(&s, "live"), sync(&s, "quiet"), sync(&s, "stale"));
        (live.0 == "running" && quiet.0 == "idle" && stale.0 == "error").then_some(())
    })
    .await;
    let s = status(port).await;
    assert!(
        sync(&s, "live")
            .1
            .contains(&format!("writer pid {}", writer.0.id())),
        "{s}"
    );
    assert!(sync(&s, "quiet").1.starts_with("no commit for"), "{s}");
    assert!(sync(&s, "stale").1.starts_with("stale: no commit for"), "{s}");
    let metrics = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("vitals_sync_state{check=\"stale\",kind=\"delta_freshness\",state=\"error\"} 1"),
        "{metrics}"
    );
    crate::support::promtool(&metrics).unwrap();

    writer.0.kill().unwrap();
    writer.0.wait().unwrap();
    let killed = Instant::now();
    let reason = until("live in error", async || {
        let s = status(port).await;
        let (state, why) = sync(&s, "live");
        (state == "error").then_some(why)
    })
    .await;
    assert!(reason.starts_with("no process matches sync_process"), "{reason}");
    // The table is not stale yet (crit 20 s): the writer's death is told first.
    assert!(killed.elapsed() < Duration::from_secs(10));
    let s = status(port).await;
    assert_eq!(check(&s, "live")["status"], "ok", "{s}");
}

/// A recorded week replayed: the would-be attempts and `remediation_failed` are in the
/// output, each marked `simulated`, and nothing is run.
#[test]
fn a_replayed_week_shows_the_simulated_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let ran = dir.path().join("ran");
    let path = write_config(
        dir.path(),
        &format!(
            "[checks.positions]\nkind = \"delta_freshness\"\ntable = \"positions\"\n\
             force_sync = [\"/bin/sh\", \"-c\", \"touch {}\"]\n\n\
             [[rules]]\nname = \"data_stale\"\nchecks = [\"positions\"]\nwhen = \"value > 60\"\nseverity = \"WARNING\"\n\
             remediate = {{ action = \"force_sync\", max_attempts = 3, cooldown = \"5m\", window = \"1h\" }}\n",
            ran.display()
        ),
    );
    // A week at one observation every 10 minutes; stale for two hours on Tuesday.
    let start = chrono::DateTime::parse_from_rfc3339("2026-11-30T00:00:00Z").unwrap();
    let mut recording = String::new();
    for i in 0..7 * 24 * 6 {
        let t = start + chrono::Duration::minutes(10 * i);
        let stale = (24 * 6 + 60..24 * 6 + 72).contains(&i);
        let (status, value) = if stale { ("critical", 900.0) } else { ("ok", 5.0) };
        recording.push_str(&format!(
            "{{\"id\":\"positions\",\"kind\":\"delta_freshness\",\"status\":\"{status}\",\"value\":{value},\"unit\":\"s\",\"message\":\"m\",\"observed_at\":\"{}\",\"details\":{{}}}}\n",
            t.to_rfc3339()
        ));
    }
    let file = dir.path().join("week.jsonl");
    std::fs::write(&file, recording).unwrap();
    let out = vitals()
        .args(["replay", "-c"])
        .arg(&path)
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let events: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let attempts: Vec<&Value> = events.iter().filter(|e| e["state"] == "action").collect();
    // 3 at the start, a cooldown apart; 3 more once the hour frees them.
    let minutes: Vec<i64> = attempts
        .iter()
        .map(|e| {
            let t = chrono::DateTime::parse_from_rfc3339(e["event_at"].as_str().unwrap()).unwrap();
            (t - start).num_minutes() - (24 * 60 + 600)
        })
        .collect();
    assert_eq!(minutes, [0, 5, 10, 60, 65, 70], "{attempts:?}");
    assert!(
        attempts
            .iter()
            .all(|e| e["simulated"] == true && e["rule"] == "data_stale")
    );
    assert!(
        attempts[0]["message"]
            .as_str()
            .unwrap()
            .contains("attempt 1 of 3")
    );
    let failed: Vec<&Value> = events
        .iter()
        .filter(|e| e["rule"] == "remediation_failed")
        .collect();
    assert_eq!(failed.len(), 2, "fired and resolved: {failed:?}");
    assert!(failed.iter().all(|e| e["simulated"] == true));
    assert!(!ran.exists(), "a replay runs nothing");
}
