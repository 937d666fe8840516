//! Helpers every test module shares: the binary and a daemon of it, configs, free
//! ports, the test Python and the Delta fixtures it writes and reads.

pub mod alertmanager;
pub mod browser;
pub mod delta;
pub mod faults;
/// The IB Gateway stand-in is the product's (`vitals demo` runs on it).
pub use vitals::demo::gateway;
pub mod smtp;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use vitals::check::{BuildContext, RunContext};
use vitals::config::{Config, parse};
use vitals::plugin::Kinds;
use vitals::registry::{Registry, registry};
use vitals::runner::Instance;

/// The `vitals` binary built for these tests.
pub fn vitals() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vitals"));
    // The default log filter, as an operator gets it.
    c.env_remove("VITALS_CONFIG")
        .env_remove("RUST_LOG")
        .env_remove("VITALS_LOG")
        .env_remove("VITALS_LOG_FORMAT");
    c
}

/// Writes `text` as `vitals.toml` in `dir`.
/// Writes `text` as `vitals.toml` in `dir`. A config without a `[server]` section gets
/// one on port 0 (any free port): tests run in parallel, and `vitals run` refuses to
/// start without its page.
pub fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("vitals.toml");
    // At the end: the lines tests point at stay where they are.
    let text = if text.contains("[server]") {
        text.to_owned()
    } else {
        format!("{text}\n[server]\nlisten = \"127.0.0.1:0\"\n")
    };
    std::fs::write(&path, text).expect("write config");
    path
}

/// Parses config text that must be valid.
pub fn valid_config(dir: &Path, text: &str) -> Config {
    let path = dir.join("vitals.toml");
    match parse(&path, text, registry().expect("registry")) {
        Ok(c) => c,
        Err(d) => panic!("config should be valid:\n{d}"),
    }
}

/// Instances for every check of a valid config, as `vitals check` builds them.
pub fn instances(dir: &Path, text: &str) -> Vec<Instance> {
    let config = valid_config(dir, text);
    let dir = config.dir();
    config
        .checks
        .into_iter()
        .map(|spec| {
            let cx = BuildContext::standalone(&spec.id, spec.kind, &dir);
            Instance::from_spec(spec, cx)
        })
        .collect()
}

/// Writes an executable shell script.
pub fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// The Python with the test packages (scripts/test.sh makes ./.venv).
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("VITALS_TEST_PYTHON") {
        return p.into();
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        venv.exists(),
        "no test Python: run ./scripts/test.sh, which creates .venv with aiosmtpd"
    );
    venv
}

/// A free loopback port (nothing listens on it when this returns).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `promtool check metrics` (Debian `prometheus`) on an exposition text: `Err` with
/// what it said unless it accepts it.
pub fn promtool(body: &str) -> Result<(), String> {
    use std::io::Write;
    let mut p = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian prometheus; scripts/test.sh installs it)");
    p.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = p.wait_with_output().unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The kinds the `vitals` binary has: this test binary's registry less the kinds that
/// live only in the tests (`tests/it/kinds/`).
pub fn shipped_registry() -> Registry {
    let all = registry().expect("no duplicate kinds");
    Registry {
        checks: Kinds::from_kinds(all.checks.kinds().filter(|k| !k.file.starts_with("tests/"))).unwrap(),
        sinks: Kinds::from_kinds(all.sinks.kinds().filter(|k| !k.file.starts_with("tests/"))).unwrap(),
    }
}

/// What an action gets when a test calls it directly (a minute to finish).
pub fn action_cx(id: &str) -> RunContext {
    let now = tokio::time::Instant::now();
    RunContext {
        id: id.into(),
        scheduled: now,
        deadline: now + std::time::Duration::from_secs(60),
        timeout: std::time::Duration::from_secs(60),
    }
}

/// `vitals run -c path` as a child process, its log followed line by line.
pub struct Daemonized {
    pub child: Child,
    lines: std_mpsc::Receiver<String>,
    /// Every line logged so far.
    all: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Daemonized {
    /// Starts `vitals run -c path`, following its log lines.
    pub fn spawn(path: &std::path::Path) -> Daemonized {
        Self::spawn_with_env(path, &[])
    }

    /// Starts `vitals run -c path` with extra environment variables.
    pub fn spawn_with_env(path: &std::path::Path, env: &[(&str, &str)]) -> Daemonized {
        let mut command = vitals();
        command.args(["run", "-c"]).arg(path).envs(env.iter().copied());
        Self::spawn_command(command)
    }

    /// Starts a command that runs the daemon (through a shell, say), following its log.
    pub fn spawn_command(mut command: Command) -> Daemonized {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = std_mpsc::channel();
        let all = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let keep = all.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                keep.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        Daemonized { child, lines, all }
    }

    /// Every line logged so far, in order.
    pub fn log(&self) -> Vec<String> {
        self.all.lock().unwrap().clone()
    }

    pub fn expect(&self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!("the daemon never logged {needle:?}"),
            }
        }
    }

    /// Waits until every one of `needles` has been logged, in any order (a check's
    /// first run may be logged before or after the line that announces it).
    pub fn expect_all(&self, needles: &[&str]) -> Vec<String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let mut found: Vec<Option<String>> = vec![None; needles.len()];
        while found.iter().any(Option::is_none) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(i) =
                        (0..needles.len()).find(|&i| found[i].is_none() && line.contains(needles[i]))
                    {
                        found[i] = Some(line);
                    }
                }
                Err(_) => {
                    let missing: Vec<&str> = (0..needles.len())
                        .filter(|&i| found[i].is_none())
                        .map(|i| needles[i])
                        .collect();
                    panic!("the daemon never logged {missing:?}");
                }
            }
        }
        found.into_iter().flatten().collect()
    }

    /// Every line the daemon has logged so far.
    pub fn all_lines(&self) -> Vec<String> {
        self.all.lock().unwrap().clone()
    }

    /// Every line logged since the last `expect` or `drain`, without waiting.
    pub fn drain(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), sig).unwrap();
    }
}

impl Drop for Daemonized {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The events the `audit` log sink wrote (`alerts.jsonl` beside the config).
pub fn audit(dir: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("alerts.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The `/api/status` of the daemon on `port` (loopback, no token).
pub async fn status(port: u16) -> serde_json::Value {
    reqwest::get(format!("http://127.0.0.1:{port}/api/status"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Check `id` of a status; panics naming it when it is not there.
pub fn check<'a>(status: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    status["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id} in {status}"))
}
