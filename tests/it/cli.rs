//! `vitals check` and `vitals plugins` from the outside: exit codes and their
//! precedence, the JSON shape of docs/reference.md, and the kinds listed.

use serde_json::Value;

use crate::support::{vitals, write_config};

/// A command check that prints `message` and exits with `code`.
fn nagios(id: &str, code: i32, message: &str) -> String {
    format!(
        "[checks.{id}]\nkind = \"command\"\ncommand = [\"/bin/sh\", \"-c\", \"echo '{message}'; exit {code}\"]\n"
    )
}

fn run_check(config: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), config);
    let out = vitals()
        .args(["check", "-c"])
        .arg(&path)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn exit_codes_follow_the_precedence() {
    let ok = nagios("a", 0, "OK");
    let warning = nagios("b", 1, "WARN");
    let critical = nagios("c", 2, "CRIT");
    let unknown = nagios("d", 3, "UNKNOWN");
    let cases = [
        (vec![&ok], 0),
        (vec![&ok, &warning], 1),
        (vec![&ok, &warning, &unknown], 3),
        (vec![&warning, &unknown, &critical], 2),
        (vec![&ok, &critical], 2),
        (vec![&unknown], 3),
    ];
    for (checks, expected) in cases {
        let config: String = checks.iter().map(|s| s.as_str()).collect();
        let (code, stdout, stderr) = run_check(&config, &[]);
        assert_eq!(code, Some(expected), "{config}\n{stdout}\n{stderr}");
        assert_eq!(stdout.lines().count(), checks.len(), "{stdout}");
    }
}

#[test]
fn named_checks_only_are_run() {
    let config = format!(
        "{}{}",
        nagios("fine", 0, "OK"),
        nagios("broken", 2, "CRIT - down")
    );
    let (code, stdout, _) = run_check(&config, &["fine"]);
    assert_eq!(code, Some(0));
    assert!(stdout.starts_with("OK"), "{stdout}");
    assert!(!stdout.contains("broken"));
    let (code, stdout, _) = run_check(&config, &["broken"]);
    assert_eq!(code, Some(2));
    assert!(stdout.starts_with("CRITICAL"), "{stdout}");
    assert!(stdout.contains("CRIT - down"), "{stdout}");
    let (code, _, stderr) = run_check(&config, &["brokn"]);
    assert_eq!(code, Some(64));
    assert!(
        stderr.contains("no check `brokn` (did you mean `broken`?)"),
        "{stderr}"
    );
}

#[test]
fn json_has_exactly_the_spec_shape() {
    let config = format!(
        "{}{}",
        nagios("plugin", 1, "WARNING - slow | time=45.2s;30;60;0"),
        // Thresholds out of reach: the exit code is the plugin's, whatever the disk holds.
        "[checks.disk]\nkind = \"disk\"\npath = \"/\"\nwarn = 99.98\ncrit = 99.99\n"
    );
    let (code, stdout, stderr) = run_check(&config, &["--format", "json"]);
    assert_eq!(code, Some(1), "{stderr}");
    let v: Value = serde_json::from_str(&stdout).expect("valid JSON");
    let root = v.as_object().unwrap();
    assert_eq!(root.keys().collect::<Vec<_>>(), ["checks"]);
    let checks = v["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 2);
    for c in checks {
        let keys: Vec<&str> = c.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "id",
                "kind",
                "status",
                "label",
                "value",
                "unit",
                "message",
                "observed_at",
                "duration_ms",
                "details"
            ]
        );
        let at = c["observed_at"].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(at).is_ok(), "{at}");
        assert!(
            at.ends_with('Z') && at.len() == "2026-01-27T14:30:05.120Z".len(),
            "{at}"
        );
        assert!(c["duration_ms"].as_f64().unwrap() >= 0.0);
        assert!(c["details"].is_object());
    }
    let plugin = &checks[0];
    assert_eq!(plugin["id"], "plugin");
    assert_eq!(plugin["kind"], "command");
    assert_eq!(plugin["status"], "warning");
    assert_eq!(plugin["label"], Value::Null);
    assert_eq!(plugin["value"], 45.2);
    assert_eq!(plugin["unit"], "s");
    assert_eq!(plugin["message"], "WARNING - slow");
    assert_eq!(plugin["details"]["perfdata"][0]["crit"], "60");
}

#[test]
fn system_checks_report_real_figures() {
    let config = "[checks.cpu]\nkind = \"cpu\"\nwarn = 100\ncrit = 100\n\
                  [checks.memory]\nkind = \"memory\"\nwarn = 100\ncrit = 100\n\
                  [checks.disk]\nkind = \"disk\"\npath = \"/\"\nwarn = 100\ncrit = 100\n\
                  [checks.host]\nkind = \"host\"\n";
    let (code, stdout, stderr) = run_check(config, &["--format", "json"]);
    let v: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    let by_id = |id: &str| {
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap()
            .clone()
    };
    for id in ["cpu", "memory", "disk"] {
        let c = by_id(id);
        assert_eq!(c["unit"], "%", "{c}");
        let pct = c["value"].as_f64().unwrap_or_else(|| panic!("{c}"));
        assert!((0.0..=100.0).contains(&pct), "{c}");
        // warn = crit = 100 is only reached at 100 %.
        assert_eq!(c["status"], if pct >= 100.0 { "critical" } else { "ok" }, "{c}");
    }
    let mem = by_id("memory");
    let (total, used) = (
        mem["details"]["total_bytes"].as_f64().unwrap(),
        mem["details"]["used_bytes"].as_f64().unwrap(),
    );
    assert!((used / total * 100.0 - mem["value"].as_f64().unwrap()).abs() < 1e-6);
    let disk = by_id("disk");
    assert_eq!(disk["details"]["mount_point"], "/");
    // The percent `df` shows (it rounds up): blocks reserved for root are not "used".
    let df = std::process::Command::new("df")
        .args(["--output=pcent", "/"])
        .output()
        .unwrap();
    let df: f64 = String::from_utf8_lossy(&df.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().trim_end_matches('%').parse().ok())
        .expect("df's percent");
    let ours = disk["value"].as_f64().unwrap();
    assert!(ours <= df && df - ours < 1.5, "vitals says {ours} %, df {df} %");
    let d = &disk["details"];
    let (used, available) = (
        d["used_bytes"].as_f64().unwrap(),
        d["available_bytes"].as_f64().unwrap(),
    );
    assert!((used / (used + available) * 100.0 - ours).abs() < 1e-6, "{disk}");
    assert!(d["reserved_bytes"].as_f64().is_some(), "{disk}");
    let host = by_id("host");
    assert_eq!(host["status"], "ok");
    assert_eq!(host["unit"], "s");
    assert!(host["value"].as_f64().unwrap() > 0.0);
    assert!(host["details"]["process_count"].as_u64().unwrap() >= 1);
    assert!(host["details"]["load"]["one"].as_f64().is_some());
    // Only a saturated resource (a busy CI machine can run the CPU at 100 %) is critical.
    let any_critical = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["status"] == "critical");
    assert_eq!(code, Some(if any_critical { 2 } else { 0 }), "{stdout}\n{stderr}");
}

#[test]
fn text_output_has_one_line_per_check() {
    let config = format!(
        "{}{}",
        nagios("a", 0, "OK - all good"),
        nagios("bb", 2, "CRITICAL - gone")
    );
    let (_, stdout, _) = run_check(&config, &[]);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(
        lines[0].starts_with("OK ") && lines[0].ends_with("OK - all good"),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with("CRITICAL ") && lines[1].ends_with("CRITICAL - gone"),
        "{stdout}"
    );
}

#[test]
fn plugins_lists_every_kind_with_its_keys() {
    let out = vitals().args(["plugins", "--format", "json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = v["check_kinds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    let registered = crate::support::shipped_registry().checks.names();
    assert_eq!(names, registered);
    let cpu = v["check_kinds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "cpu")
        .unwrap();
    let warn = cpu["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "warn")
        .unwrap();
    assert_eq!(warn["default"], "50");
    let text = vitals().arg("plugins").output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    for name in registered {
        assert!(
            text.contains(&format!("\n  {name}  —  ")),
            "{name} missing from:\n{text}"
        );
    }
}

/// A plugin's control characters reach neither the terminal nor the text log raw:
/// `down\rOK fine\e[K` must not display as "OK fine". The JSON output keeps them,
/// escaped.
#[test]
fn plugin_control_characters_are_shown_not_obeyed() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        "[checks.sly]\nkind = \"command\"\ncommand = [\"/bin/sh\", \"-c\", \"printf 'CRITICAL down\\\\rOK fine\\\\033[K\\\\n'; exit 2\"]\n",
    );
    let out = vitals().args(["check", "-c"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("CRITICAL down\\rOK fine\\e[K"), "{text:?}");
    assert!(!text.contains('\r') && !text.contains('\u{1b}'), "{text:?}");
    let json = vitals()
        .args(["check", "--format", "json", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(
        v["checks"][0]["message"], "CRITICAL down\rOK fine\u{1b}[K",
        "JSON stays exact"
    );
}
