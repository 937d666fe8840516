//! `delta_freshness`: how old is the newest data of a Delta table? Without `column`,
//! the latest commit's time; with it, the largest value of that timestamp column (from
//! the files' statistics — rows are never scanned).
//!
//! Cheap on big tables: the table stays open between runs, and a run where nothing new
//! was committed costs one HEAD of the next commit file (plus one of the current one, to
//! notice a table that vanished). Only when a new commit exists are the new commits
//! applied and the newest commit's `commitInfo.timestamp` read.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deltalake::arrow::array::{Array, Int64Array, StringArray, TimestampMicrosecondArray};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::{DataType as ArrowType, TimeUnit};
use deltalake::kernel::{DataType, PrimitiveType};
use deltalake::logstore::commit_uri_from_version;
use deltalake::logstore::object_store::ObjectStoreExt;
use deltalake::{DeltaTable, ObjectStoreError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::check::{
    ActionError, ActionOutcome, ActionSpec, BuildContext, BuildError, Check, CheckConfig, KeyError, Reading,
    RunContext, Status,
};
use crate::delta::{OpenError, error_line};
use crate::duration;
use crate::duration::Span;
use crate::panel::{Layout, Panel, Section};
use crate::thresholds::{Thresholds, fmt_num};

/// `kind = "delta_freshness"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeltaFreshnessConfig {
    /// Path or URI of the Delta table. Relative paths resolve against the config file's
    /// directory.
    pub table: String,
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
    /// resolves against the config file's directory), then checks the table again.
    #[serde(default)]
    pub force_sync: Option<Vec<String>>,
    /// How long the `force_sync` command may run before its process group is killed.
    #[serde(default = "crate::duration::secs::<120>")]
    pub force_sync_timeout: Span,
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
        columns: &["Table", "Newest data", "Age", "Status", ""],
    },
    placeholder: Some("<p class=\"muted\">No <code>delta_freshness</code> check is configured.</p>"),
    head: "",
};

static PANEL: Panel = Panel {
    section: &FRESHNESS_SECTION,
    rank: 0,
    template: Some(include_str!("panel.html.j2")),
    reads: &["newest"],
};

impl CheckConfig for DeltaFreshnessConfig {
    const KIND: &'static str = "delta_freshness";
    const SUMMARY: &'static str =
        "age of the newest data in a Delta table (latest commit, or a timestamp column's max)";
    const UNIT: &'static str = "s";
    const EXAMPLE: &'static str =
        "table = \"../data/positions\"\ncolumn = \"synced_at\"\nwarn = \"30s\"\ncrit = \"60s\"\n";
    const PANEL: Option<&'static Panel> = Some(&PANEL);

    fn validate(&self) -> Vec<KeyError> {
        let mut errors = self.thresholds().validate(("warn", "crit"), "data age", None);
        if self.table.trim().is_empty() {
            errors.push(KeyError::new("table", "must name the table's path or URI"));
        }
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
        Ok(Arc::new(Freshness {
            force_sync,
            sync_timeout: *self.force_sync_timeout,
            publisher: cx.publisher(),
            location: crate::delta::location(&self.table, &cx.config_dir),
            column: self.column.clone(),
            thresholds: self.thresholds(),
            state: Mutex::new(None),
        }))
    }
}

struct Freshness {
    force_sync: Option<(std::path::PathBuf, Vec<String>)>,
    sync_timeout: Duration,
    publisher: crate::check::Publisher,
    location: String,
    column: Option<String>,
    thresholds: Thresholds,
    state: Mutex<Option<Open>>,
}

/// The open table and what was read of its latest version.
struct Open {
    table: DeltaTable,
    version: u64,
    newest: DateTime<Utc>,
    committed_at: Option<DateTime<Utc>>,
    operation: Option<String>,
    /// How many commit files were read to get here (for tests and benchmarks).
    commits_read: u64,
    /// Column max per data file from its Parquet footer, for files whose log entry has
    /// no statistics (files never change, so each is read once).
    footers: HashMap<String, Option<i64>>,
    /// How many footers were read to get here.
    footers_read: u64,
}

/// Why a run could not tell the age.
enum Failure {
    /// The table is not there (critical: the data is gone).
    Missing(String),
    /// Something else (unknown).
    Other(String),
}

impl Freshness {
    async fn open(&self) -> Result<Open, Failure> {
        let table = crate::delta::open_existing(&self.location)
            .await
            .map_err(|e| match e {
                OpenError::Missing(m) => Failure::Missing(m),
                OpenError::Other(m) => Failure::Other(m),
            })?;
        let mut open = Open {
            version: table.version().unwrap_or(0),
            table,
            newest: DateTime::<Utc>::MIN_UTC,
            committed_at: None,
            operation: None,
            commits_read: 0,
            footers: HashMap::new(),
            footers_read: 0,
        };
        self.refresh(&mut open).await?;
        Ok(open)
    }

    /// Reads what the latest version says: commit time and operation, and the column max.
    async fn refresh(&self, open: &mut Open) -> Result<(), Failure> {
        let Some(version) = open.table.version() else {
            return Err(Failure::Other(format!("{} has no commits", self.location)));
        };
        open.version = version;
        let entry = open
            .table
            .log_store()
            .read_commit_entry(version)
            .await
            .map_err(|e| {
                Failure::Other(format!(
                    "cannot read commit {version} of {}: {}",
                    self.location,
                    error_line(&e)
                ))
            })?;
        open.commits_read += 1;
        let (committed_at, operation) = match entry {
            Some(bytes) => commit_info(&bytes).map_err(|e| {
                Failure::Other(format!("commit {version} of {} is corrupt: {e}", self.location))
            })?,
            None => (None, None),
        };
        open.committed_at = committed_at;
        open.operation = operation;
        open.newest = match &self.column {
            None => committed_at.ok_or_else(|| {
                Failure::Other(format!(
                    "commit {version} of {} has no commitInfo timestamp",
                    self.location
                ))
            })?,
            Some(column) => {
                self.column_max(&open.table, &mut open.footers, &mut open.footers_read, column)
                    .await?
            }
        };
        Ok(())
    }

    /// The newest value of `column`: each file's max from the log's statistics; where a
    /// file has none (writers can turn statistics off, or keep them for the first N
    /// columns only), from that file's Parquet footer — read once per file, as data files
    /// never change.
    async fn column_max(
        &self,
        table: &DeltaTable,
        footers: &mut HashMap<String, Option<i64>>,
        footers_read: &mut u64,
        column: &str,
    ) -> Result<DateTime<Utc>, Failure> {
        let state = table.snapshot().map_err(|e| {
            Failure::Other(format!(
                "cannot read the state of {}: {}",
                self.location,
                error_line(&e)
            ))
        })?;
        let schema = state.schema();
        let Some(field) = schema.field(column) else {
            let names: Vec<String> = schema.fields().map(|f| f.name().to_string()).collect();
            return Err(Failure::Other(format!(
                "{} has no column `{column}`; its columns: {}",
                self.location,
                names.join(", ")
            )));
        };
        if !matches!(
            field.data_type(),
            DataType::Primitive(PrimitiveType::Timestamp | PrimitiveType::TimestampNtz)
        ) {
            return Err(Failure::Other(format!(
                "column `{column}` of {} is {}, not a timestamp",
                self.location,
                field.data_type()
            )));
        }
        let actions = state.add_actions_table(true).map_err(|e| {
            Failure::Other(format!(
                "cannot read the file list of {}: {}",
                self.location,
                error_line(&e)
            ))
        })?;
        if actions.num_rows() == 0 {
            return Err(Failure::Other(format!("{} has no data files", self.location)));
        }
        crate::delta::refuse_unreadable(&self.location, &actions, &[field]).map_err(Failure::Other)?;
        let file_list = || Failure::Other(format!("{}: the file list is malformed", self.location));
        let paths = actions
            .column_by_name("path")
            .and_then(|a| a.as_any().downcast_ref::<StringArray>())
            .ok_or_else(file_list)?;
        let sizes = actions
            .column_by_name("size_bytes")
            .and_then(|a| a.as_any().downcast_ref::<Int64Array>())
            .ok_or_else(file_list)?;
        let micros = match actions.column_by_name(&format!("max.{column}")) {
            Some(maxes) => Some(
                cast(maxes, &ArrowType::Timestamp(TimeUnit::Microsecond, None))
                    .map_err(|e| Failure::Other(format!("statistics of `{column}`: {e}")))?,
            ),
            None => None,
        };
        let micros = micros
            .as_ref()
            .and_then(|m| m.as_any().downcast_ref::<TimestampMicrosecondArray>());
        let nulls = actions
            .column_by_name(&format!("null_count.{column}"))
            .and_then(|a| cast(a, &ArrowType::Int64).ok());
        let nulls = nulls
            .as_ref()
            .and_then(|a| a.as_any().downcast_ref::<Int64Array>());
        let records = actions
            .column_by_name("num_records")
            .and_then(|a| cast(a, &ArrowType::Int64).ok());
        let records = records
            .as_ref()
            .and_then(|a| a.as_any().downcast_ref::<Int64Array>());
        let store = table.log_store().object_store(None);
        let mut max: Option<i64> = None;
        let mut live = std::collections::HashSet::new();
        for i in 0..actions.num_rows() {
            if let Some(m) = micros.filter(|m| m.is_valid(i)) {
                max = max.max(Some(m.value(i)));
                continue;
            }
            let all_null = matches!((nulls, records), (Some(n), Some(r))
                if n.is_valid(i) && r.is_valid(i) && n.value(i) == r.value(i));
            if all_null {
                continue;
            }
            let path = paths.value(i);
            live.insert(path.to_owned());
            let file_max = match footers.get(path) {
                Some(m) => *m,
                None => {
                    let object = deltalake::Path::from_url_path(path).map_err(|e| {
                        Failure::Other(format!("bad file path {path} in {}: {e}", self.location))
                    })?;
                    let m = crate::delta::footer_max_micros(
                        store.as_ref(),
                        &object,
                        sizes.value(i) as u64,
                        column,
                    )
                    .await
                    .map_err(|e| {
                        Failure::Other(format!(
                            "{} keeps no statistics for `{column}` in its log, and its file {path} \
                             cannot tell either: {e}",
                            self.location
                        ))
                    })?;
                    *footers_read += 1;
                    footers.insert(path.to_owned(), m);
                    m
                }
            };
            max = max.max(file_max);
        }
        footers.retain(|p, _| live.contains(p));
        let max =
            max.ok_or_else(|| Failure::Other(format!("`{column}` of {} holds no values", self.location)))?;
        DateTime::from_timestamp_micros(max)
            .ok_or_else(|| Failure::Other(format!("`{column}` max {max} is out of range")))
    }

    /// Brings `open` up to date: one HEAD when nothing was committed.
    async fn poll(&self, open: &mut Open) -> Result<(), Failure> {
        let store = open.table.log_store().object_store(None);
        let next = commit_uri_from_version(Some(open.version + 1));
        match store.head(&next).await {
            Ok(_) => {}
            Err(ObjectStoreError::NotFound { .. }) => {
                // Nothing new; make sure the table itself is still there.
                return match store.head(&commit_uri_from_version(Some(open.version))).await {
                    Ok(_) => Ok(()),
                    Err(ObjectStoreError::NotFound { .. }) => {
                        Err(Failure::Missing(format!("{} has disappeared", self.location)))
                    }
                    Err(e) => Err(Failure::Other(format!("cannot reach {}: {e}", self.location))),
                };
            }
            Err(e) => return Err(Failure::Other(format!("cannot reach {}: {e}", self.location))),
        }
        open.table.update_incremental(None).await.map_err(|e| {
            Failure::Other(format!(
                "cannot read the new commits of {}: {}",
                self.location,
                error_line(&e)
            ))
        })?;
        self.refresh(open).await
    }
}

/// `commitInfo.timestamp` (ms) and `operation` of a commit file.
fn commit_info(bytes: &[u8]) -> Result<(Option<DateTime<Utc>>, Option<String>), String> {
    for line in std::str::from_utf8(bytes).map_err(|e| e.to_string())?.lines() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
        if let Some(info) = v.get("commitInfo") {
            let at = info
                .get("timestamp")
                .and_then(serde_json::Value::as_i64)
                .and_then(DateTime::from_timestamp_millis);
            let op = info.get("operation").and_then(|o| o.as_str()).map(str::to_owned);
            return Ok((at, op));
        }
    }
    Ok((None, None))
}

#[async_trait]
impl Check for Freshness {
    fn actions(&self) -> Vec<ActionSpec> {
        match self.force_sync {
            Some(_) => vec![ActionSpec {
                name: "force_sync",
                label: "Force sync",
                description: "runs the configured sync command, then checks the table again",
                destructive: false,
            }],
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
        let finished = crate::process::run(program, args, &Default::default(), self.sync_timeout)
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
        let (ok, mut message) = match finished.exit {
            None => (
                false,
                format!(
                    "`{shown}` did not finish within {}; its process group was killed",
                    duration::format(self.sync_timeout)
                ),
            ),
            Some(s) if s.success() => (true, format!("`{shown}` finished")),
            Some(s) => (false, format!("`{shown}` failed ({s})")),
        };
        if let Some(code) = finished.exit.and_then(|s| s.code()) {
            details.insert("exit_code".into(), code.into());
        }
        // Check again at once, and put the result on the board.
        let reading = self.run(cx).await;
        message.push_str(&format!(
            "; the table is now {}",
            reading.label.as_deref().unwrap_or(reading.status.as_str())
        ));
        details.insert("status".into(), reading.status.as_str().into());
        details.insert("message".into(), reading.message.clone().into());
        self.publisher.publish(reading);
        Ok(ActionOutcome { ok, message, details })
    }

    async fn run(&self, _cx: &RunContext) -> Reading {
        let mut slot = self.state.lock().await;
        let result = match slot.as_mut() {
            Some(open) => self.poll(open).await,
            None => match self.open().await {
                Ok(open) => {
                    *slot = Some(open);
                    Ok(())
                }
                Err(e) => Err(e),
            },
        };
        if let Err(e) = result {
            // Start afresh next time: the table may come back.
            *slot = None;
            return match e {
                Failure::Missing(m) => Reading::new(Status::Critical, m).with_label("STALE"),
                Failure::Other(m) => Reading::unknown(m),
            };
        }
        let Some(open) = slot.as_ref() else {
            unreachable!("set above")
        };
        let age = (Utc::now() - open.newest).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6;
        let age = age.max(0.0);
        let status = self.thresholds.grade(age);
        let label = match status {
            Status::Ok => "FRESH",
            Status::Warning => "WARNING",
            _ => "STALE",
        };
        let what = self
            .column
            .as_deref()
            .map_or("latest commit".to_owned(), |c| format!("newest `{c}`"));
        let mut r = Reading::new(
            status,
            format!(
                "{}: {what} {}s old ({})",
                self.location,
                fmt_num(age),
                self.thresholds.describe("s")
            ),
        )
        .with_value(age, "s")
        .with_label(label)
        .with_detail("table", self.location.clone())
        .with_detail("version", open.version)
        .with_detail("newest", open.newest.to_rfc3339())
        .with_detail("commits_read", open.commits_read)
        .with_detail("footers_read", open.footers_read);
        if let Some(at) = open.committed_at {
            r = r.with_detail("last_commit_at", at.to_rfc3339());
        }
        if let Some(op) = &open.operation {
            r = r.with_detail("operation", op.clone());
        }
        if let Some(c) = &self.column {
            r = r.with_detail("column", c.clone());
        }
        r
    }
}

crate::register_check!(DeltaFreshnessConfig);
