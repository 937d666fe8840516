//! `delta_freshness`: how old is the newest data of a Delta table? Without `column`,
//! the latest commit's time; with it, the largest value of that timestamp column (from
//! the files' statistics — rows are never scanned).
//!
//! Cheap on big tables: the table stays open between runs, and a run where nothing new
//! was committed costs one HEAD of the next commit file (plus one of the current one, to
//! notice a table that vanished). Only when a new commit exists are the new commits
//! applied and the newest commit's `commitInfo.timestamp` read.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::check::{
    ActionError, ActionOutcome, ActionSpec, BuildContext, BuildError, Check, CheckConfig, KeyError, Reading,
    RunContext, Status,
};
use crate::duration;
use crate::duration::Span;
mod read;

use crate::delta::OpenError;
use crate::panel::{Layout, Panel, Section};
use crate::thresholds::{Thresholds, fmt_num};
use read::{Snapshot, Table};

use crate::bounded::OneAtATime;

/// `kind = "delta_freshness"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DeltaFreshnessConfig {
    /// Where the table is: `table` and `storage_options`.
    #[serde(flatten)]
    pub delta: crate::delta::TableKeys,
    /// A timestamp column (`timestamp` or `timestamp_ntz`, read as UTC) whose largest
    /// value is the time of the newest data. Absent: the time of the latest commit.
    #[serde(default)]
    pub column: Option<String>,
    /// Age at which the table is `warning` (label WARNING).
    #[serde(default = "crate::duration::secs::<30>")]
    pub warn: Span,
    /// Age at which the table is `critical` (label STALE).
    #[serde(default = "crate::duration::secs::<60>")]
    pub crit: Span,
    /// A command that makes the writer sync now, e.g. `["/opt/desk/bin/sync",
    /// "--positions"]`: the check's `force_sync` action runs it (no shell; a path with `/`
    /// resolves against the config file's directory), then checks the table again. Like
    /// a command plugin it gets only PATH, HOME, USER, LOGNAME, LANG, LC_ALL, TZ, TMPDIR
    /// and SHELL from vitals' environment, never its secrets.
    #[serde(default)]
    pub force_sync: Option<Vec<String>>,
    /// How long the `force_sync` command may run before its process group is killed.
    #[serde(default = "crate::duration::secs::<120>")]
    pub force_sync_timeout: Span,
    /// A regular expression matched against the command lines of running processes
    /// (`/proc/*/cmdline`, arguments joined by spaces), e.g. `"positions_writer\\.py"`:
    /// the writer that keeps the table in sync. While no process matches, the sync
    /// status is `error` at once, before the table is even stale. One look at /proc a
    /// second serves every check that asks, within each check's deadline.
    #[serde(default)]
    pub sync_process: Option<String>,
}

impl DeltaFreshnessConfig {
    fn thresholds(&self) -> Thresholds {
        Thresholds::higher_is_worse(self.warn.as_secs_f64(), self.crit.as_secs_f64())
    }
}

/// The status page's "Data freshness" section: one table row per table.
pub static FRESHNESS_SECTION: Section = Section {
    id: "freshness",
    title: "Data freshness",
    order: 20,
    layout: Layout::Table {
        columns: &["Table", "Newest data", "Age", "Status", "Sync", ""],
    },
    listed_when_empty: true,
    head: "",
};

static PANEL: Panel = Panel {
    section: &FRESHNESS_SECTION,
    rank: 0,
    template: Some(include_str!("panel.html.j2")),
    reads: &["crit", "newest", "sync", "sync_reason", "warn"],
    css: ".sync-running { color: var(--ok); } .sync-idle { color: var(--muted); } .sync-error { color: var(--critical); font-weight: 600; }",
};

/// `force_sync`: offered where `force_sync` names a command.
const FORCE_SYNC: ActionSpec = ActionSpec {
    name: "force_sync",
    label: "Force sync",
    description: "runs the configured sync command, then checks the table again",
    destructive: false,
};

impl CheckConfig for DeltaFreshnessConfig {
    const KIND: &'static str = "delta_freshness";
    const SUMMARY: &'static str =
        "age of the newest data in a Delta table (latest commit, or a timestamp column's max)";
    const UNIT: &'static str = "s";
    const EXAMPLE: &'static str =
        "table = \"../data/positions\"\ncolumn = \"synced_at\"\nwarn = \"30s\"\ncrit = \"60s\"\n";
    const PANEL: Option<&'static Panel> = Some(&PANEL);
    const ACTIONS: &'static [ActionSpec] = &[FORCE_SYNC];

    fn validate(&self) -> Vec<KeyError> {
        let mut errors = self
            .thresholds()
            .validate_durations(("warn", "crit"), "data age", 1.0);
        errors.extend(self.delta.validate("the table"));
        if self
            .force_sync
            .as_ref()
            .is_some_and(|c| c.first().is_none_or(|p| p.trim().is_empty()))
        {
            errors.push(KeyError::new(
                "force_sync",
                "must name a program: force_sync = [\"/path/to/sync\", \"arg\"]",
            ));
        }
        if self.column.as_deref().is_some_and(|c| c.trim().is_empty()) {
            errors.push(KeyError::new("column", "must name a column, or be left out"));
        }
        if let Some(p) = &self.sync_process {
            match regex::Regex::new(p) {
                Ok(_) if p.trim().is_empty() => errors.push(KeyError::new(
                    "sync_process",
                    "an empty pattern matches every process: name the writer, e.g. \"positions_writer\"",
                )),
                Ok(_) => {}
                Err(e) => errors.push(KeyError::new(
                    "sync_process",
                    format!(
                        "not a regular expression: {}",
                        e.to_string().lines().last().unwrap_or_default()
                    ),
                )),
            }
        }
        errors
    }

    fn build(&self, cx: &BuildContext) -> Result<Arc<dyn Check>, BuildError> {
        let force_sync = self.force_sync.as_ref().map(|cmd| {
            let program = std::path::PathBuf::from(&cmd[0]);
            let program = if cmd[0].contains('/') {
                cx.resolve_path(&program)
            } else {
                program
            };
            (program, cmd[1..].to_vec())
        });
        let sync_process = match &self.sync_process {
            Some(p) => Some(regex::Regex::new(p).map_err(|e| BuildError::Setup {
                what: "sync_process".into(),
                message: e.to_string(),
            })?),
            None => None,
        };
        Ok(Arc::new(Freshness {
            sync_process,
            sync_failed: std::sync::Mutex::new(None),
            last_version: std::sync::atomic::AtomicI64::new(-1),
            quiet: cx.quiet.clone(),
            force_sync,
            sync_timeout: *self.force_sync_timeout,
            table: Arc::new(Table {
                location: crate::delta::location(&self.delta.table, &cx.config_dir),
                options: self.delta.storage_options.clone(),
                column: self.column.clone(),
                confirm_after: {
                    let t = self.thresholds();
                    t.warn.min(t.crit)
                },
                state: Mutex::new(None),
            }),
            reads: OneAtATime::default(),
            thresholds: self.thresholds(),
        }))
    }
}

struct Freshness {
    /// `sync_process`.
    sync_process: Option<regex::Regex>,
    /// The last `force_sync` failed: why, and the table version then (a later commit
    /// or a successful sync clears it).
    sync_failed: std::sync::Mutex<Option<(String, Option<i64>)>>,
    /// The table version the last read saw (-1: none yet).
    last_version: std::sync::atomic::AtomicI64,
    /// When the table is expected to be quiet.
    quiet: crate::check::Quiet,
    force_sync: Option<(std::path::PathBuf, Vec<String>)>,
    sync_timeout: Duration,
    /// The table, kept open between runs.
    table: Arc<Table>,
    /// Its reads, one at a time: a hung read is reported, never started twice.
    reads: OneAtATime<Result<Snapshot, OpenError>>,
    thresholds: Thresholds,
}

#[async_trait]
impl Check for Freshness {
    fn actions(&self) -> Vec<ActionSpec> {
        match self.force_sync {
            Some(_) => vec![FORCE_SYNC],
            None => Vec::new(),
        }
    }

    async fn act(&self, action: &str, cx: &RunContext) -> Result<ActionOutcome, ActionError> {
        let Some((program, args)) = self.force_sync.as_ref().filter(|_| action == "force_sync") else {
            return Err(ActionError::NoSuchAction {
                check: cx.id.clone(),
                action: action.to_owned(),
                available: self.actions().iter().map(|a| a.name).collect(),
            });
        };
        let shown = program.display().to_string();
        let finished = crate::process::run(program, args, &Default::default(), &[], self.sync_timeout)
            .await
            .map_err(|e| ActionError::Failed(format!("cannot run `{shown}`: {e}")))?;
        let mut details = serde_json::Map::new();
        details.insert(
            "stdout".into(),
            finished.stdout.chars().take(4000).collect::<String>().into(),
        );
        details.insert(
            "stderr".into(),
            finished.stderr.chars().take(4000).collect::<String>().into(),
        );
        // What the command said last about why it failed: the operator reads it in the
        // toast and the log, not only in `details`.
        let why = finished
            .stderr
            .lines()
            .chain(finished.stdout.lines())
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(|l| format!(": {}", l.trim().chars().take(300).collect::<String>()))
            .unwrap_or_default();
        let (ok, message) = match finished.exit {
            None => (
                false,
                format!(
                    "`{shown}` did not finish within {}; its process group was killed{why}",
                    duration::format(self.sync_timeout)
                ),
            ),
            Some(s) if s.success() => (true, format!("`{shown}` finished")),
            Some(s) => (false, format!("`{shown}` failed ({s}){why}")),
        };
        if let Some(code) = finished.exit.and_then(|s| s.code()) {
            details.insert("exit_code".into(), code.into());
        }
        // The sync status says it until a later commit or a sync that works.
        *self.sync_failed.lock().unwrap_or_else(|e| e.into_inner()) = (!ok).then(|| {
            let seen = self.last_version.load(std::sync::atomic::Ordering::Relaxed);
            (
                format!("force_sync failed: {message}"),
                (seen >= 0).then_some(seen),
            )
        });
        // The check is run again by whoever performs the action (crate::actions).
        Ok(ActionOutcome { ok, message, details })
    }

    async fn run(&self, cx: &RunContext) -> Reading {
        // The writer first (a quick look at /proc), then the table with what is left.
        let writer = match &self.sync_process {
            Some(pattern) => Some(writer_running(pattern, cx.budget()).await),
            None => None,
        };
        let r = self.read(cx).await;
        let (sync, why) = self.sync(&r, writer);
        // The thresholds go with every reading: the page shows them next to the age.
        r.with_detail("warn", self.thresholds.warn)
            .with_detail("crit", self.thresholds.crit)
            .with_detail("sync", sync)
            .with_detail("sync_reason", why)
    }
}

/// Whether a process whose command line matches `pattern` runs (`Err`: the look did not
/// finish within `budget`, or /proc cannot be read). The process table is shared by
/// every check that asks within a second (`crate::procs`).
async fn writer_running(pattern: &regex::Regex, budget: Duration) -> Result<Option<u32>, String> {
    let table = crate::procs::table(budget)
        .await
        .map_err(|e| format!("cannot look for the writer: {e}"))?;
    Ok(table
        .iter()
        .find(|(_, line)| pattern.is_match(line))
        .map(|(pid, _)| *pid))
}

/// `sync`: what the writer is doing.
const RUNNING: &str = "running";
const IDLE: &str = "idle";
const ERROR: &str = "error";

impl Freshness {
    /// The sync status of a reading: `running`, `idle` or `error`, and why.
    fn sync(&self, r: &Reading, writer: Option<Result<Option<u32>, String>>) -> (&'static str, String) {
        let now = Utc::now();
        let quiet = self.quiet.why(now);
        let Some(age) = r.value else {
            // No age: the table cannot be read (or a read hangs).
            return (ERROR, r.message.clone());
        };
        let version = r.details.get("version").and_then(serde_json::Value::as_i64);
        {
            let mut failed = self.sync_failed.lock().unwrap_or_else(|e| e.into_inner());
            match failed.as_ref() {
                // A commit since the failed sync: the writer is back.
                Some((_, Some(then))) if version.is_some_and(|v| v > *then) => *failed = None,
                Some((why, _)) => return (ERROR, why.clone()),
                None => {}
            }
        }
        match &writer {
            Some(Ok(None)) => {
                let pattern = self
                    .sync_process
                    .as_ref()
                    .map(regex::Regex::as_str)
                    .unwrap_or_default();
                return (ERROR, format!("no process matches sync_process `{pattern}`"));
            }
            Some(Err(why)) => return (ERROR, why.clone()),
            _ => {}
        }
        // In the table's own terms: its commits, or its timestamp column's newest value.
        let (quiet_for, fresh) = match self.table.column {
            Some(_) => (
                format!("newest data {age:.0} s old"),
                format!("newest data {age:.0} s old"),
            ),
            None => (
                format!("no commit for {age:.0} s"),
                format!("last commit {age:.0} s ago"),
            ),
        };
        if age >= self.thresholds.crit && quiet.is_none() {
            return (ERROR, format!("stale: {quiet_for} while it should be busy"));
        }
        if age < self.thresholds.warn {
            let by = match writer {
                Some(Ok(Some(pid))) => format!(", writer pid {pid}"),
                _ => String::new(),
            };
            return (RUNNING, format!("{fresh}{by}"));
        }
        match quiet {
            Some(why) => (IDLE, why),
            None => (IDLE, quiet_for),
        }
    }

    async fn read(&self, cx: &RunContext) -> Reading {
        let location = &self.table.location;
        // Polled in place: the read's every wait is an await (object_store sends file
        // access to the blocking pool).
        let open = match self
            .reads
            .run_inline(cx.budget(), self.table.clone().read())
            .await
        {
            Ok(Ok(snapshot)) => snapshot,
            Ok(Err(OpenError::Missing(m))) => return Reading::new(Status::Critical, m).with_label("STALE"),
            Ok(Err(OpenError::Other(m))) => return Reading::unknown(m),
            Err(hung) => return hung.reading(location).with_detail("table", location.clone()),
        };
        self.last_version.store(
            i64::try_from(open.version).unwrap_or(i64::MAX),
            std::sync::atomic::Ordering::Relaxed,
        );
        let age = (Utc::now() - open.newest).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6;
        let age = age.max(0.0);
        let status = self.thresholds.grade(age);
        let label = match status {
            Status::Ok => "FRESH",
            Status::Warning => "WARNING",
            _ => "STALE",
        };
        let what = self
            .table
            .column
            .as_deref()
            .map_or("latest commit".to_owned(), |c| format!("newest `{c}`"));
        let mut r = Reading::new(
            status,
            format!(
                "{}: {what} {}s old ({})",
                self.table.location,
                fmt_num(age),
                self.thresholds.describe("s")
            ),
        )
        .with_value(age, "s")
        .with_label(label)
        .with_detail("table", self.table.location.clone())
        .with_detail("version", open.version)
        .with_detail("newest", open.newest.to_rfc3339())
        .with_detail("commits_read", open.commits_read)
        .with_detail("footers_read", open.footers_read)
        .with_detail("heads", open.heads);
        if let Some(at) = open.committed_at {
            r = r.with_detail("last_commit_at", at.to_rfc3339());
        }
        if let Some(op) = &open.operation {
            r = r.with_detail("operation", op.clone());
        }
        if let Some(c) = &self.table.column {
            r = r.with_detail("column", c.clone());
        }
        r
    }
}

crate::register_check!(DeltaFreshnessConfig);
