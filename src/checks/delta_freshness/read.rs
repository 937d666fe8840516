//! Reading a table's freshness: open it once, then per run one HEAD of the next commit
//! file (and one of the current, to notice a table that vanished); only new commits
//! are read, and a column's max comes from the log's statistics or, where a file has
//! none, from that file's Parquet footer (read once per file).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use deltalake::arrow::array::{Array, Int64Array, StringArray, TimestampMicrosecondArray};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::{DataType as ArrowType, TimeUnit};
use deltalake::kernel::{DataType, PrimitiveType};
use deltalake::logstore::commit_uri_from_version;
use deltalake::logstore::object_store::ObjectStoreExt;
use deltalake::{DeltaTable, ObjectStoreError};
use tokio::sync::Mutex;

use crate::delta::{OpenError, error_line};

/// A table kept open between runs.
pub(super) struct Table {
    /// Where it is.
    pub(super) location: String,
    /// Its object store's options.
    pub(super) options: crate::delta::StorageOptions,
    /// The timestamp column whose max is the newest data, if any.
    pub(super) column: Option<String>,
    /// The open table (none before the first read and after a failed one).
    pub(super) state: Mutex<Option<Open>>,
}

/// What one read found.
#[derive(Debug, Clone)]
pub(super) struct Snapshot {
    pub(super) version: u64,
    pub(super) newest: DateTime<Utc>,
    pub(super) committed_at: Option<DateTime<Utc>>,
    pub(super) operation: Option<String>,
    pub(super) commits_read: u64,
    pub(super) footers_read: u64,
}

/// The open table and what was read of its latest version.
pub(super) struct Open {
    pub(super) table: DeltaTable,
    pub(super) version: u64,
    pub(super) newest: DateTime<Utc>,
    pub(super) committed_at: Option<DateTime<Utc>>,
    pub(super) operation: Option<String>,
    /// How many commit files were read to get here (for tests and benchmarks).
    pub(super) commits_read: u64,
    /// Column max per data file from its Parquet footer, for files whose log entry has
    /// no statistics (files never change, so each is read once).
    pub(super) footers: HashMap<String, Option<i64>>,
    /// How many footers were read to get here.
    pub(super) footers_read: u64,
}

/// Why a run could not tell the age.
pub(super) enum Failure {
    /// The table is not there (critical: the data is gone).
    Missing(String),
    /// Something else (unknown).
    Other(String),
}

impl Table {
    /// Brings the table up to date (opening it first if needed) and says what it found;
    /// after a failure it is opened afresh next time (it may come back).
    pub(super) async fn read(self: Arc<Self>) -> Result<Snapshot, Failure> {
        let mut slot = self.state.lock().await;
        let result = match slot.as_mut() {
            Some(open) => self.poll(open).await,
            None => self.open().await.map(|open| *slot = Some(open)),
        };
        if let Err(e) = result {
            *slot = None;
            return Err(e);
        }
        let open = slot.as_ref().unwrap_or_else(|| unreachable!("set above"));
        Ok(Snapshot {
            version: open.version,
            newest: open.newest,
            committed_at: open.committed_at,
            operation: open.operation.clone(),
            commits_read: open.commits_read,
            footers_read: open.footers_read,
        })
    }

    async fn open(&self) -> Result<Open, Failure> {
        let table = crate::delta::open_existing(&self.location, &self.options)
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
        let field = crate::delta::field(&schema, &self.location, column).map_err(Failure::Other)?;
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
