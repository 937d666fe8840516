//! Config diagnostics: each error names file, line, column, section and key; all
//! errors come at once; `validate` exits 78; `run` refuses a bad config.

use vitals::config::{Diagnostics, parse};
use vitals::registry::registry;

use crate::support::{vitals, write_config};

fn errors(text: &str) -> Vec<String> {
    match parse("conf/vitals.toml".as_ref(), text, registry().unwrap()) {
        Ok(_) => panic!("config should be refused:\n{text}"),
        Err(Diagnostics(d)) => d
            .iter()
            .filter(|d| d.level == vitals::config::Level::Error)
            .map(ToString::to_string)
            .collect(),
    }
}

fn single(text: &str) -> String {
    let e = errors(text);
    assert_eq!(e.len(), 1, "expected one error, got {e:#?}");
    e.into_iter().next().unwrap()
}

#[test]
fn unknown_key_names_place_and_suggests() {
    let e = single("[checks.cpu]\nkind = \"cpu\"\nwarm = 50\n");
    assert!(
        e.starts_with(
            "conf/vitals.toml:3:1: [checks.cpu] key `warm`: unknown key `warm` (did you mean `warn`?)"
        ),
        "{e}"
    );
    assert!(e.contains("expected one of the keys of `cpu`: warn, crit"), "{e}");
}

#[test]
fn unknown_kind_lists_kinds_and_the_closest() {
    let e = single("\n[checks.mem]\nkind = \"memroy\"\n");
    assert!(
        e.starts_with("conf/vitals.toml:3:8: [checks.mem] key `kind`: unknown check kind `memroy`"),
        "{e}"
    );
    assert!(e.contains("did you mean `memory`?"), "{e}");
    // Every registered kind is listed, in order (from the registry: no list to keep).
    let kinds = crate::support::shipped_registry().checks.names().join(", ");
    assert!(e.contains(&format!("registered kinds: {kinds}")), "{e}");
}

#[test]
fn wrong_type_is_reported_at_the_value() {
    let e = single("[checks.cpu]\nkind = \"cpu\"\nwarn = \"high\"\n");
    assert!(
        e.starts_with("conf/vitals.toml:3:8: [checks.cpu] key `warn`:"),
        "{e}"
    );
    assert!(e.contains("invalid type"), "{e}");
}

#[test]
fn bad_durations_say_what_is_expected() {
    let e = single("[defaults]\ninterval = 5\n");
    assert!(
        e.starts_with("conf/vitals.toml:2:12: [defaults] key `interval`:"),
        "{e}"
    );
    assert!(e.contains("needs a unit"), "{e}");
    let e = single("[checks.cpu]\nkind = \"cpu\"\ntimeout = \"soon\"\n");
    assert!(
        e.starts_with("conf/vitals.toml:3:11: [checks.cpu] key `timeout`: invalid duration \"soon\""),
        "{e}"
    );
    assert!(e.contains("\"500ms\", \"30s\", \"5m\""), "{e}");
    let e = single("[checks.cpu]\nkind = \"cpu\"\ninterval = \"0s\"\n");
    assert!(e.contains("key `interval`: must be longer than 0s"), "{e}");
}

#[test]
fn threshold_order_is_checked_per_kind() {
    let e = single("[checks.disk]\nkind = \"disk\"\nwarn = 90\ncrit = 80\n");
    assert!(
        e.starts_with("conf/vitals.toml:4:8: [checks.disk] key `crit`:"),
        "{e}"
    );
    assert!(e.contains("crit must be at least warn"), "{e}");
    let e = single("[checks.cpu]\nkind = \"cpu\"\ncrit = 120\n");
    assert!(e.contains("key `crit`: 120 is out of range"), "{e}");
    // Where lower can be worse, an inverted pair is accepted.
    parse(
        "x.toml".as_ref(),
        "[checks.h]\nkind = \"host\"\nprocs_warn = 40\nprocs_crit = 10\n",
        registry().unwrap(),
    )
    .expect("inverted process thresholds are valid");
}

#[test]
fn missing_required_key_points_at_the_table() {
    let e = single("[checks.plugin]\nkind = \"command\"\n");
    assert!(
        e.starts_with(
            "conf/vitals.toml:1:1: [checks.plugin] key `command`: required key `command` is missing"
        ),
        "{e}"
    );
}

#[test]
fn syntax_errors_have_line_and_column() {
    let e = errors("[checks.cpu]\nkind = \"cpu\nwarn = 50\n");
    assert!(!e.is_empty());
    assert!(e[0].starts_with("conf/vitals.toml:2:"), "{e:?}");
    assert!(e[0].contains("TOML syntax error"), "{e:?}");
}

#[test]
fn dependencies_must_exist_and_not_cycle() {
    let e = single("[checks.a]\nkind = \"cpu\"\ndepends_on = [\"bb\"]\n[checks.b]\nkind = \"cpu\"\n");
    assert!(
        e.starts_with("conf/vitals.toml:3:15: [checks.a] key `depends_on`: depends on `bb`"),
        "{e}"
    );
    assert!(e.contains("did you mean `b`?"), "{e}");
    let e = single(
        "[checks.a]\nkind = \"cpu\"\ndepends_on = [\"b\"]\n[checks.b]\nkind = \"cpu\"\ndepends_on = [\"a\"]\n",
    );
    assert!(e.contains("dependency cycle: a -> b -> a"), "{e}");
}

#[test]
fn every_error_is_reported_at_once_in_file_order() {
    let text = "[server]\nlisn = \"x\"\n\n[checks.cpu]\nkind = \"cpu\"\nwarn = 90\ncrit = 10\n\n[checks.x]\nkind = \"cpuu\"\n\n[checks.d]\nkind = \"disk\"\ndepends_on = [\"nope\"]\nextra = 1\n";
    let e = errors(text);
    assert_eq!(e.len(), 5, "{e:#?}");
    let lines: Vec<&str> = e.iter().map(|l| l.split(':').nth(1).unwrap()).collect();
    assert_eq!(lines, ["2", "7", "10", "14", "15"], "{e:#?}");
}

#[test]
fn sinks_are_parsed_and_checked_like_checks() {
    let text = "[checks.cpu]\nkind = \"cpu\"\n[sinks.audit]\nkind = \"log\"\npath = \"alerts.jsonl\"\nmin_severity = \"WARNING\"\n";
    let config = parse("v.toml".as_ref(), text, registry().unwrap()).expect("valid");
    assert_eq!(config.sinks.len(), 1);
    assert_eq!(
        (config.sinks[0].id.as_str(), config.sinks[0].kind),
        ("audit", "log")
    );
    assert_eq!(config.sinks[0].min_severity, vitals::alert::Severity::Warning);
    assert!(config.notes.is_empty(), "{:?}", config.notes);

    let e = single("[sinks.mail]\nkind = \"emial\"\n");
    assert!(
        e.starts_with(
            "conf/vitals.toml:2:8: [sinks.mail] key `kind`: unknown sink kind `emial` (did you mean `email`?)"
        ),
        "{e}"
    );
    assert!(
        e.contains("registered kinds: alertmanager, delta, email, heartbeat, log"),
        "{e}"
    );
    let e = errors(
        "[sinks.mail]\nkind = \"email\"\nhost = \"127.0.0.1\"\nfrom = \"not an address\"\nto = []\nusername = \"u\"\n",
    );
    let joined = e.join("\n");
    assert!(
        joined.contains(
            "conf/vitals.toml:4:8: [sinks.mail] key `from`: \"not an address\" is not an email address"
        ),
        "{joined}"
    );
    assert!(
        joined.contains("[sinks.mail] key `to`: give at least one recipient"),
        "{joined}"
    );
    assert!(
        joined.contains("[sinks.mail] key `password_env`: `username` needs `password_env`"),
        "{joined}"
    );
    let e = single("[sinks.am]\nkind = \"alertmanager\"\nurl = \"http://127.0.0.1:9093\"\nresend = \"1m\"\n");
    assert!(e.contains("[sinks.am] key `resend`: unknown key `resend`"), "{e}");
    let e = single("[sinks.log]\nkind = \"log\"\nmin_severity = \"LOW\"\n");
    assert!(
        e.contains("[sinks.log] key `min_severity`: unknown variant `LOW`"),
        "{e}"
    );
}

#[test]
fn validate_exits_78_and_prints_every_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        "[checks.cpu]\nkind = \"cpu\"\nwarm = 1\n[checks.d]\nkind = \"dsk\"\n",
    );
    let out = vitals().args(["validate", "-c"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    let file = path.display().to_string();
    assert!(
        err.contains(&format!("{file}:3:1: [checks.cpu] key `warm`")),
        "{err}"
    );
    assert!(
        err.contains(&format!("{file}:5:8: [checks.d] key `kind`")),
        "{err}"
    );
    assert!(err.contains("2 errors in the config"), "{err}");

    let good = write_config(dir.path(), "[checks.cpu]\nkind = \"cpu\"\n");
    let out = vitals().args(["validate", "-c"]).arg(&good).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn missing_file_is_an_error_naming_it() {
    let out = vitals()
        .args(["validate", "-c", "/nonexistent/vitals.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/vitals.toml: cannot read the config file"),
        "{err}"
    );
}

#[test]
fn config_path_comes_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "[checks.cpu]\nkind = \"cpuu\"\n");
    let out = vitals()
        .arg("validate")
        .env("VITALS_CONFIG", &path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&path.display().to_string()));
}

#[test]
fn run_refuses_a_bad_config_without_starting_anything() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let path = write_config(
        dir.path(),
        &format!(
            "[checks.touch]\nkind = \"command\"\ncommand = [\"/bin/touch\", \"{}\"]\n[checks.bad]\nkind = \"cpu\"\nwarn = 99\ncrit = 1\n",
            marker.display()
        ),
    );
    let out = vitals().args(["run", "-c"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("[checks.bad] key `crit`"), "{err}");
    assert!(err.contains("vitals did not start"), "{err}");
    assert!(!err.contains("vitals started"), "{err}");
    assert!(!marker.exists(), "a check ran although the config was refused");
}

#[test]
fn shipped_config_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/vitals.toml");
    let config = vitals::config::load(path.as_ref(), registry().unwrap()).unwrap_or_else(|d| panic!("{d}"));
    let kinds: Vec<&str> = config.checks.iter().map(|c| c.kind).collect();
    assert_eq!(kinds, ["cpu", "memory", "disk", "host"]);
}

#[test]
fn a_listen_address_that_is_not_one_is_refused_at_the_key() {
    let e = single("[server]\nlisten = \"localhost\"\n");
    assert!(
        e.starts_with("conf/vitals.toml:2:10: [server] key `listen`: `localhost` is not an address and port"),
        "{e}"
    );
    assert!(e.contains("127.0.0.1:8686"), "{e}");
}

#[test]
fn a_table_uri_this_build_cannot_read_is_refused_at_load() {
    let e = errors(
        "[checks.positions]\nkind = \"delta_freshness\"\ntable = \"az://desk/positions\"\n\n\
         [sinks.alerts]\nkind = \"delta\"\ntable = \"gs://desk/alerts\"\n",
    );
    assert_eq!(e.len(), 2, "{e:#?}");
    assert!(
        e[0].starts_with(
            "conf/vitals.toml:3:9: [checks.positions] key `table`: this build cannot read `az://` tables"
        ),
        "{}",
        e[0]
    );
    let reads = if cfg!(feature = "s3") {
        "it reads local paths and file://, s3://, s3a:// URIs"
    } else {
        "it reads local paths and file:// URIs. S3 and S3-compatible stores need a build with `--features s3`"
    };
    assert!(e[0].contains(reads), "{}", e[0]);
    assert!(
        e[1].starts_with("conf/vitals.toml:7:9: [sinks.alerts] key `table`: this build cannot read `gs://`"),
        "{}",
        e[1]
    );
}

#[test]
fn the_built_in_rule_name_is_reserved_and_unknown_after_takes_off() {
    let e = single(
        "[checks.cpu]\nkind = \"cpu\"\nunknown_after = \"off\"\n\n\
         [[rules]]\nname = \"check_unknown\"\nkinds = [\"cpu\"]\nwhen = \"true\"\nseverity = \"INFO\"\n",
    );
    assert!(
        e.starts_with(
            "conf/vitals.toml:6:8: [rules.check_unknown] key `name`: `check_unknown` is the built-in rule"
        ),
        "{e}"
    );
    let e = single("[defaults]\nunknown_after = \"soon\"\n");
    assert!(
        e.contains("key `unknown_after`: invalid duration \"soon\""),
        "{e}"
    );
}

#[test]
fn secrets_are_never_passed_through_to_plugins() {
    let e = errors(
        "[server]\ntoken_env = \"DESK_ACTIONS\"\n\n\
         [checks.p]\nkind = \"command\"\ncommand = [\"/bin/true\"]\nenv_passthrough = [\"KRB5CCNAME\", \"DESK_ACTIONS\", \"SMTP_PW\"]\n\n\
         [sinks.mail]\nkind = \"email\"\nhost = \"127.0.0.1\"\nusername = \"u\"\npassword_env = \"SMTP_PW\"\n\
         from = \"a@b.c\"\nto = [\"d@e.f\"]\n",
    );
    assert_eq!(e.len(), 2, "{e:#?}");
    assert!(
        e.iter()
            .any(|e| e.contains("`DESK_ACTIONS` holds a secret of vitals'")),
        "{e:#?}"
    );
    assert!(
        e.iter()
            .any(|e| e.contains("`SMTP_PW` holds a secret of vitals'")),
        "{e:#?}"
    );
    for line in &e {
        assert!(line.contains("[checks.p] key `env_passthrough`"), "{line}");
    }
    let e = single(
        "[checks.p]\nkind = \"command\"\ncommand = [\"/bin/true\"]\nenv_passthrough = [\"AWS_SECRET_ACCESS_KEY\"]\n",
    );
    assert!(
        e.contains("`AWS_SECRET_ACCESS_KEY` looks like a secret and is never passed through"),
        "{e}"
    );
}

#[test]
fn validate_warns_when_a_log_sink_would_append_to_a_file_that_is_not_its_log() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "the desk's own notes\n").unwrap();
    std::fs::write(dir.path().join("alerts.jsonl"), "{\"alert_id\":\"r.c.1\"}\n").unwrap();
    let path = write_config(
        dir.path(),
        "[checks.cpu]\nkind = \"cpu\"\n\n[sinks.oops]\nkind = \"log\"\npath = \"notes.txt\"\n\n\
         [sinks.fine]\nkind = \"log\"\npath = \"alerts.jsonl\"\n",
    );
    let out = vitals().args(["validate", "-c"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "a warning, not an error");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("[sinks.oops] key `path`: warning:")
            && stderr.contains("notes.txt is an existing file that is not a vitals alert log"),
        "{stderr}"
    );
    assert!(!stderr.contains("[sinks.fine]"), "{stderr}");
}

/// The shipped config shows every check kind and every sink kind (live or commented
/// out), and uncommented, every example in it is valid: a new kind without an example
/// there, or an example that rotted, fails here.
#[test]
fn the_shipped_config_shows_every_kind_and_its_examples_are_valid() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/vitals.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let shipped = crate::support::shipped_registry();
    for name in shipped.checks.names().into_iter().chain(shipped.sinks.names()) {
        assert!(
            text.contains(&format!("kind = \"{name}\"")),
            "config/vitals.toml has no example of kind `{name}`"
        );
    }
    // Every commented-out table and key, uncommented.
    let uncommented: String = text
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest)
                if rest.starts_with('[')
                    || rest.split_once(" =").is_some_and(|(k, _)| {
                        !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                    }) =>
            {
                rest
            }
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(uncommented.matches("[checks.").count() >= 10, "{uncommented}");
    let config = parse(&path, &uncommented, registry().unwrap())
        .unwrap_or_else(|d| panic!("the shipped config's examples, uncommented, are invalid:\n{d}"));
    let kinds: std::collections::BTreeSet<&str> = config.checks.iter().map(|c| c.kind).collect();
    assert_eq!(kinds.len(), shipped.checks.names().len(), "{kinds:?}");
}

/// Every problem of one table, in the user's units and words: a misspelled key hides
/// no bad value, durations are shown as written, types in TOML's words, and a
/// threshold past the timeout is refused.
#[test]
fn a_table_reports_all_its_problems_in_the_users_words() {
    let e = errors("[checks.cpu]\nkind = \"cpu\"\ncirt = 90\nwarn = 500\n");
    assert_eq!(e.len(), 3, "{e:#?}");
    assert!(
        e[0].contains("(`crit` is not set here: that is its default)"),
        "{e:#?}"
    );
    assert!(
        e[1].contains("key `cirt`: unknown key `cirt` (did you mean `crit`?)"),
        "{e:#?}"
    );
    assert!(e[2].contains("key `warn`: 500 is out of range"), "{e:#?}");

    let e = single(
        "[checks.gw]\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = 4002\nwarn = \"2s\"\ncrit = \"1s\"\n",
    );
    assert!(e.contains("crit (1s) is below warn (2s)"), "{e}");

    let e = single("[checks.gw]\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = 70000\n");
    assert!(e.contains("key `port`"), "{e}");
    assert!(e.contains("expected a whole number from 0 to 65535"), "{e}");
    assert!(!e.contains("u16"), "{e}");

    // Two bad values of one kind: both reported.
    let e = errors("[checks.gw]\nkind = \"tcp\"\nhost = 5\nport = \"x\"\n");
    assert_eq!(e.len(), 2, "{e:#?}");
    assert!(
        e[0].contains("key `host`") && e[1].contains("key `port`"),
        "{e:#?}"
    );

    // A latency threshold the timeout cuts off first.
    let e = single(
        "[checks.gw]\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = 4002\ntimeout = \"500ms\"\ncrit = \"1s\"\n",
    );
    assert!(
        e.contains("key `crit`: crit (1s) is longer than the check's timeout (500ms)"),
        "{e}"
    );

    // A flattened key (the Delta kinds' `table`) is still placed at its value.
    let e = single("[checks.q]\nkind = \"queue_backlog\"\ntable = 5\n");
    assert!(
        e.starts_with("conf/vitals.toml:3:9: [checks.q] key `table`:"),
        "{e}"
    );
}
