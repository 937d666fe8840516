//! The `command` kind against real scripts: exit codes, perfdata, hangs (the whole
//! process group is killed), missing programs and signal deaths.

use std::time::Duration;

use vitals::check::Status;

use crate::support::{instances, script};

async fn run_one(dir: &std::path::Path, extra: &str, program: &str) -> vitals::check::Observation {
    let text = format!("[checks.plugin]\nkind = \"command\"\ncommand = [\"{program}\"]\n{extra}");
    let inst = instances(dir, &text).remove(0);
    inst.run_once(tokio::time::Instant::now()).await
}

#[tokio::test]
async fn exit_codes_map_to_statuses_with_message_and_perfdata() {
    let dir = tempfile::tempdir().unwrap();
    for (code, status) in [
        (0, Status::Ok),
        (1, Status::Warning),
        (2, Status::Critical),
        (3, Status::Unknown),
    ] {
        let s = script(
            dir.path(),
            &format!("exit{code}.sh"),
            &format!(
                "echo 'STATE {code} - text | rtt=12.5ms;100;200;0 loss=0%'\necho 'second line'\nexit {code}"
            ),
        );
        let o = run_one(dir.path(), "", s.to_str().unwrap()).await;
        assert_eq!(o.status, status, "{o:?}");
        assert_eq!(o.message, format!("STATE {code} - text"));
        assert_eq!(o.value, Some(12.5));
        assert_eq!(o.unit, "ms");
        assert_eq!(o.details["exit_code"], code);
        assert_eq!(o.details["perfdata"][1]["label"], "loss");
        assert_eq!(o.details["long_output"][0], "second line");
    }
}

#[tokio::test]
async fn relative_program_paths_resolve_against_the_config_dir() {
    let dir = tempfile::tempdir().unwrap();
    script(dir.path(), "rel.sh", "echo 'OK - relative'");
    let o = run_one(dir.path(), "", "./rel.sh").await;
    assert_eq!((o.status, o.message.as_str()), (Status::Ok, "OK - relative"));
}

#[tokio::test]
async fn out_of_range_exit_and_signal_death_are_unknown_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let s = script(dir.path(), "seven.sh", "echo weird; exit 7");
    let o = run_one(dir.path(), "", s.to_str().unwrap()).await;
    assert_eq!(o.status, Status::Unknown);
    assert!(
        o.message.contains("exited with code 7 (expected 0-3)"),
        "{}",
        o.message
    );

    let s = script(dir.path(), "killed.sh", "kill -9 $$");
    let o = run_one(dir.path(), "", s.to_str().unwrap()).await;
    assert_eq!(o.status, Status::Unknown);
    assert!(
        o.message.contains("was killed by signal 9 (SIGKILL)"),
        "{}",
        o.message
    );
}

#[tokio::test]
async fn a_missing_program_is_unknown_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let o = run_one(dir.path(), "", "/nonexistent/check_thing").await;
    assert_eq!(o.status, Status::Unknown);
    assert!(
        o.message
            .starts_with("cannot run `/nonexistent/check_thing`: No such file"),
        "{}",
        o.message
    );
}

#[tokio::test]
async fn no_output_says_so_and_keeps_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let s = script(
        dir.path(),
        "quiet.sh",
        "echo 'permission denied on socket' >&2; exit 2",
    );
    let o = run_one(dir.path(), "", s.to_str().unwrap()).await;
    assert_eq!(o.status, Status::Critical);
    assert_eq!(o.message, "(no output; stderr: permission denied on socket)");
    assert_eq!(o.details["stderr"], "permission denied on socket");
}

fn alive(pid: i32) -> bool {
    // A killed child may linger as a zombie until its new parent reaps it: that is dead.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => {
            let state = stat.rsplit(')').next().unwrap_or("").split_whitespace().next();
            !matches!(state, Some("Z") | Some("X"))
        }
    }
}

#[tokio::test]
async fn a_hung_plugin_is_critical_and_its_whole_group_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let s = script(
        dir.path(),
        "hang.sh",
        &format!(
            "sleep 300 &\necho $! > {p}\nsleep 300 &\necho $! >> {p}\necho $$ >> {p}\nwait",
            p = pids.display()
        ),
    );
    let started = std::time::Instant::now();
    let o = run_one(dir.path(), "timeout = \"1s\"\n", s.to_str().unwrap()).await;
    assert_eq!(o.status, Status::Critical, "{o:?}");
    assert!(
        o.message
            .contains("did not finish within 1s; its process group was killed"),
        "{}",
        o.message
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the check outlived its timeout"
    );
    let pids: Vec<i32> = std::fs::read_to_string(&pids)
        .unwrap()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 3);
    // SIGKILL is delivered asynchronously: on a loaded machine a process can take a
    // moment to die. Give the kernel up to 5 s, no more.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    for pid in pids {
        while alive(pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!alive(pid), "process {pid} of the hung plugin is still running");
    }
}

#[tokio::test]
async fn timeout_status_is_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let s = script(dir.path(), "slow.sh", "sleep 30");
    let o = run_one(
        dir.path(),
        "timeout = \"300ms\"\ntimeout_status = \"unknown\"\n",
        s.to_str().unwrap(),
    )
    .await;
    assert_eq!(o.status, Status::Unknown);
    assert!(o.message.contains("did not finish within 300ms"), "{}", o.message);
}

#[tokio::test]
async fn stray_background_children_do_not_hold_the_check() {
    let dir = tempfile::tempdir().unwrap();
    // The plugin answers at once but leaves a child holding its stdout.
    let s = script(
        dir.path(),
        "stray.sh",
        "sleep 300 &\necho 'OK - answered'\nexit 0",
    );
    let started = std::time::Instant::now();
    let o = run_one(dir.path(), "timeout = \"10s\"\n", s.to_str().unwrap()).await;
    assert_eq!((o.status, o.message.as_str()), (Status::Ok, "OK - answered"));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "waited for the stray child"
    );
}

#[tokio::test]
async fn tcp_reports_connect_time_and_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let open = format!("[checks.gw]\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = {port}\n");
    let o = instances(dir.path(), &open)
        .remove(0)
        .run_once(tokio::time::Instant::now())
        .await;
    assert_eq!(o.status, Status::Ok, "{o:?}");
    assert_eq!(o.unit, "ms");
    assert!(o.value.unwrap() < 200.0);
    drop(listener);
    let o = instances(dir.path(), &open)
        .remove(0)
        .run_once(tokio::time::Instant::now())
        .await;
    assert_eq!(o.status, Status::Critical, "{o:?}");
    assert!(o.message.contains("Connection refused"), "{}", o.message);
}

/// A plugin gets the allowlisted variables and what `env_passthrough` names, nothing
/// else of vitals' environment.
#[tokio::test]
async fn env_passthrough_gives_a_plugin_the_variables_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[checks.p]\nkind = \"command\"\nenv_passthrough = [\"VITALS_TEST_PASS\"]\nenv = { GIVEN = \"yes\" }\n\
                command = [\"/bin/sh\", \"-c\", \"echo \\\"OK - pass=${VITALS_TEST_PASS:-none} given=$GIVEN other=${VITALS_TEST_OTHER:-none} path=${PATH:+set}\\\"\"]\n";
    // Set for this process: the plugin would inherit them without the scrubbing.
    let out = crate::support::vitals()
        .args(["check", "-c"])
        .arg(crate::support::write_config(dir.path(), text))
        .env("VITALS_TEST_PASS", "through")
        .env("VITALS_TEST_OTHER", "leaked")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("OK - pass=through given=yes other=none path=set"),
        "{stdout}"
    );
}
