//! Running an external program the way checks and actions need it: no shell, stdin
//! closed, output captured (bounded), its own process group, and the whole group
//! killed when it ends, times out, or the run is abandoned. The program does not
//! inherit vitals' environment (which holds the action token and the SMTP password):
//! it gets [`INHERITED`] and the `env` its config gives, nothing else.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The variables a program inherits from vitals' environment, when set: what a Nagios
/// plugin or a sync script needs to find programs, files and its locale. Anything else
/// (secrets above all) must be given in the check's `env`.
pub const INHERITED: [&str; 9] = [
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ", "TMPDIR", "SHELL",
];

/// Most output kept from a program; the rest is read and dropped.
pub const OUTPUT_LIMIT: u64 = 64 * 1024;

/// How a run ended.
#[derive(Debug)]
pub struct Finished {
    /// The exit status, or `None` if the program was still running at the deadline
    /// (its process group was then killed).
    pub exit: Option<ExitStatus>,
    /// Standard output (lossy UTF-8, at most [`OUTPUT_LIMIT`] bytes).
    pub stdout: String,
    /// Standard error (likewise).
    pub stderr: String,
}

/// Kills a process group when dropped, so an abandoned run leaves nothing behind.
struct GroupKiller(Option<Pid>);

impl GroupKiller {
    fn kill(&mut self) {
        if let Some(pgid) = self.0.take() {
            // ESRCH (group already gone) is the normal case after a clean exit.
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

impl Drop for GroupKiller {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn read_limited(mut r: impl AsyncRead + Unpin) -> Vec<u8> {
    let mut buf = Vec::new();
    let _ = (&mut r).take(OUTPUT_LIMIT).read_to_end(&mut buf).await;
    let _ = tokio::io::copy(&mut r, &mut tokio::io::sink()).await;
    buf
}

/// Whether a variable's name looks like it holds a secret: such a variable is never
/// passed through to a program, even when listed.
pub fn looks_secret(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    ["TOKEN", "PASSWORD", "PASSWD", "SECRET", "CREDENTIAL", "PRIVATE"]
        .iter()
        .any(|w| n.contains(w))
        || n.ends_with("_KEY")
        || n == "KEY"
}

/// Runs `program args` with [`INHERITED`], the `passthrough` variables (those of them
/// that are set and do not [look secret](looks_secret)) and `env` as its whole
/// environment, for at most `budget`. `Err` when it cannot be
/// started (missing, not executable) or waited for.
pub async fn run(
    program: &Path,
    args: &[String],
    env: &BTreeMap<String, String>,
    passthrough: &[String],
    budget: Duration,
) -> std::io::Result<Finished> {
    let mut cmd = tokio::process::Command::new(program);
    cmd.env_clear();
    let wanted = passthrough
        .iter()
        .map(String::as_str)
        .filter(|n| !looks_secret(n));
    for name in INHERITED.into_iter().chain(wanted) {
        if let Some(value) = std::env::var_os(name) {
            cmd.env(name, value);
        }
    }
    cmd.args(args)
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd.spawn()?;
    let mut killer = GroupKiller(
        child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw),
    );
    let stdout = tokio::spawn(read_limited(child.stdout.take().expect("piped")));
    let stderr = tokio::spawn(read_limited(child.stderr.take().expect("piped")));
    let exit = tokio::time::timeout(budget, child.wait()).await;
    // Exited or out of time: nothing of its group may outlive it (this also closes
    // pipes held open by stray background children).
    killer.kill();
    let _ = child.wait().await;
    let (stdout, stderr) = (stdout.await.unwrap_or_default(), stderr.await.unwrap_or_default());
    let exit = match exit {
        Ok(status) => Some(status?),
        Err(_) => None,
    };
    Ok(Finished {
        exit,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    })
}
