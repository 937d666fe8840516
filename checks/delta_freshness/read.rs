//! Reading a table's freshness: open it once, then per run one HEAD of the next commit
//! file; only new commits are read (their `commitInfo`, and for a column the maxima in
//! their `add` statistics), never the table's whole state again. Nothing of the table is
//! kept between runs but its log store, the version and the newest value: no snapshot,
//! no file list. A column's max comes from the log's statistics or, where a file has
//! none, from that file's Parquet footer (read once per file).
//!
//! A vanished table is noticed without a second HEAD on every run: while the table looks
//! unchanged, the current commit file is looked at again only once the data's age
//! reaches the first threshold (the reading is about to leave `ok`, so it says *gone*
//! rather than *stale*) or when it was last seen [`crate::delta::CONFIRM_EVERY`] ago.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use deltalake::DeltaTable;
use deltalake::arrow::array::{Array, Int64Array, StringArray, TimestampMicrosecondArray};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::{DataType as ArrowType, TimeUnit};
use deltalake::kernel::{DataType, PrimitiveType};
use tokio::sync::Mutex;

use crate::delta::log::{Commit, FileMax};
use crate::delta::{OpenError, Watch, error_line};

/// New commits read one by one at most; more than that (a long outage) and the table is
/// opened afresh from its checkpoint instead.
const MAX_STEPS: u64 = 100;

/// A table kept open between runs.
pub(super) struct Table {
    /// Where it is.
    pub(super) location: String,
    /// Its object store's options.
    pub(super) options: crate::delta::StorageOptions,
    /// The timestamp column whose max is the newest data, if any.
    pub(super) column: Option<String>,
    /// The age (seconds) at which the reading leaves `ok`: from then on an unchanged
    /// table's current commit is confirmed on every run.
    pub(super) confirm_after: f64,
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
    pub(super) heads: u64,
}

/// What is kept of the table between runs.
pub(super) struct Open {
    /// Its log store and the version read (no snapshot is kept).
    pub(super) watch: Watch,
    pub(super) newest: DateTime<Utc>,
    pub(super) committed_at: Option<DateTime<Utc>>,
    pub(super) operation: Option<String>,
    /// The column's max over the live files (µs), brought up to date commit by commit.
    pub(super) column_max: Option<i64>,
    /// How many commit files were read to get here (for tests and benchmarks).
    pub(super) commits_read: u64,
    /// Column max per data file from its Parquet footer, for files whose log entry has
    /// no statistics (files never change, so each is read once).
    pub(super) footers: HashMap<String, Option<i64>>,
    /// How many footers were read to get here.
    pub(super) footers_read: u64,
}

/// What reading the new commits found.
enum Caught {
    /// Up to date.
    Current,
    /// Something only a fresh open reads right (files removed, a new schema or
    /// protocol, deletion vectors, too many commits): open it again.
    Reopen,
}

impl Table {
    /// Brings the table up to date (opening it first if needed) and says what it found;
    /// after a failure it is opened afresh next time (it may come back).
    pub(super) async fn read(self: Arc<Self>) -> Result<Snapshot, OpenError> {
        let mut slot = self.state.lock().await;
        let result = match slot.as_mut() {
            Some(open) => match self.poll(open).await {
                Ok(Caught::Current) => Ok(()),
                Ok(Caught::Reopen) => {
                    let (footers, counts) = (
                        std::mem::take(&mut open.footers),
                        (open.commits_read, open.footers_read, open.watch.heads),
                    );
                    self.open(footers, counts).await.map(|open| *slot = Some(open))
                }
                Err(e) => Err(e),
            },
            None => self
                .open(HashMap::new(), (0, 0, 0))
                .await
                .map(|open| *slot = Some(open)),
        };
        if let Err(e) = result {
            *slot = None;
            return Err(e);
        }
        let open = slot.as_ref().unwrap_or_else(|| unreachable!("set above"));
        Ok(Snapshot {
            version: open.watch.version,
            newest: open.newest,
            committed_at: open.committed_at,
            operation: open.operation.clone(),
            commits_read: open.commits_read,
            footers_read: open.footers_read,
            heads: open.watch.heads,
        })
    }

    /// Opens the table and reads its latest version whole (commit time and operation,
    /// the column max over every live file); keeps only what the next runs need.
    async fn open(
        &self,
        mut footers: HashMap<String, Option<i64>>,
        (commits_read, mut footers_read, heads): (u64, u64, u64),
    ) -> Result<Open, OpenError> {
        let table = crate::delta::open_existing(&self.location, &self.options).await?;
        let Some(version) = table.version() else {
            return Err(OpenError::Other(format!("{} has no commits", self.location)));
        };
        let store = table.log_store();
        let entry = store.read_commit_entry(version).await.map_err(|e| {
            OpenError::Other(format!(
                "cannot read commit {version} of {}: {}",
                self.location,
                error_line(&e)
            ))
        })?;
        let (committed_at, operation) = match entry {
            Some(bytes) => {
                let c = Commit::parse(&bytes, None).map_err(|e| self.corrupt(version, &e))?;
                (c.at, c.operation)
            }
            None => (None, None),
        };
        let column_max = match &self.column {
            None => None,
            Some(column) => {
                self.column_max(&table, &mut footers, &mut footers_read, column)
                    .await?
            }
        };
        let mut watch = Watch::new(store, version);
        watch.heads = heads;
        let mut open = Open {
            watch,
            newest: DateTime::<Utc>::MIN_UTC,
            committed_at,
            operation,
            column_max,
            commits_read: commits_read + 1,
            footers,
            footers_read,
        };
        open.newest = self.newest(&open)?;
        Ok(open)
    }

    fn corrupt(&self, version: u64, e: &str) -> OpenError {
        OpenError::Other(format!("commit {version} of {} is corrupt: {e}", self.location))
    }

    /// The newest data: the column's max, else the latest commit's time.
    fn newest(&self, open: &Open) -> Result<DateTime<Utc>, OpenError> {
        match (&self.column, open.column_max) {
            (None, _) => open.committed_at.ok_or_else(|| {
                OpenError::Other(format!(
                    "commit {} of {} has no commitInfo timestamp",
                    open.watch.version, self.location
                ))
            }),
            (Some(column), max) => {
                let max = max.ok_or_else(|| {
                    OpenError::Other(format!("`{column}` of {} holds no values", self.location))
                })?;
                DateTime::from_timestamp_micros(max)
                    .ok_or_else(|| OpenError::Other(format!("`{column}` max {max} is out of range")))
            }
        }
    }

    /// The newest value of `column` (µs), or none when it holds no values: each file's
    /// max from the log's statistics; where a file has none (writers can turn statistics
    /// off, or keep them for the first N columns only), from that file's Parquet footer —
    /// read once per file, as data files never change.
    async fn column_max(
        &self,
        table: &DeltaTable,
        footers: &mut HashMap<String, Option<i64>>,
        footers_read: &mut u64,
        column: &str,
    ) -> Result<Option<i64>, OpenError> {
        let state = table.snapshot().map_err(|e| {
            OpenError::Other(format!(
                "cannot read the state of {}: {}",
                self.location,
                error_line(&e)
            ))
        })?;
        let schema = state.schema();
        let field = crate::delta::field(&schema, &self.location, column).map_err(OpenError::Other)?;
        if !matches!(
            field.data_type(),
            DataType::Primitive(PrimitiveType::Timestamp | PrimitiveType::TimestampNtz)
        ) {
            return Err(OpenError::Other(format!(
                "column `{column}` of {} is {}, not a timestamp",
                self.location,
                field.data_type()
            )));
        }
        let actions = state.add_actions_table(true).map_err(|e| {
            OpenError::Other(format!(
                "cannot read the file list of {}: {}",
                self.location,
                error_line(&e)
            ))
        })?;
        if actions.num_rows() == 0 {
            return Err(OpenError::Other(format!("{} has no data files", self.location)));
        }
        crate::delta::refuse_unreadable(&self.location, &actions, &[field]).map_err(OpenError::Other)?;
        let file_list = || OpenError::Other(format!("{}: the file list is malformed", self.location));
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
                    .map_err(|e| OpenError::Other(format!("statistics of `{column}`: {e}")))?,
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
                    let m = self
                        .footer(store.as_ref(), path, sizes.value(i) as u64, column)
                        .await?;
                    *footers_read += 1;
                    footers.insert(path.to_owned(), m);
                    m
                }
            };
            max = max.max(file_max);
        }
        footers.retain(|p, _| live.contains(p));
        Ok(max)
    }

    /// Brings `open` up to date: one HEAD when nothing was committed (and, now and then,
    /// one more to confirm the table is still there); else the new commits, one by one.
    async fn poll(&self, open: &mut Open) -> Result<Caught, OpenError> {
        // Nothing new: done, unless the data is getting old enough to warn — then make
        // sure the table itself is still there, so it reads as gone, not as stale.
        let age = (Utc::now() - open.newest).num_milliseconds() as f64 / 1000.0;
        let moved_on = open
            .watch
            .moved_on(&self.location, age >= self.confirm_after)
            .await?;
        if !moved_on {
            return Ok(Caught::Current);
        }
        let mut version = open.watch.version + 1;
        let last = open.watch.version + MAX_STEPS;
        while version <= last {
            let entry = open.watch.store.read_commit_entry(version).await.map_err(|e| {
                OpenError::Other(format!(
                    "cannot read commit {version} of {}: {}",
                    self.location,
                    error_line(&e)
                ))
            })?;
            let Some(bytes) = entry else {
                break;
            };
            open.commits_read += 1;
            let commit =
                Commit::parse(&bytes, self.column.as_deref()).map_err(|e| self.corrupt(version, &e))?;
            if self.column.is_some() && commit.reshapes {
                return Ok(Caught::Reopen);
            }
            if let Some(column) = &self.column {
                for add in &commit.adds {
                    let file_max = match add.max {
                        FileMax::Stats(m) => m,
                        FileMax::Footer => {
                            let store = open.watch.store.object_store(None);
                            let m = self.footer(store.as_ref(), &add.path, add.size, column).await?;
                            open.footers_read += 1;
                            open.footers.insert(add.path.clone(), m);
                            m
                        }
                    };
                    open.column_max = open.column_max.max(file_max);
                }
            }
            open.watch.read_to(version);
            open.committed_at = commit.at;
            open.operation = commit.operation;
            version += 1;
        }
        if version > last {
            // Maybe more to read than is worth reading one by one.
            return Ok(Caught::Reopen);
        }
        open.newest = self.newest(open)?;
        Ok(Caught::Current)
    }

    /// A file's column max from its Parquet footer (its log entry has no statistics).
    async fn footer(
        &self,
        store: &dyn deltalake::ObjectStore,
        path: &str,
        size: u64,
        column: &str,
    ) -> Result<Option<i64>, OpenError> {
        let object = deltalake::Path::from_url_path(path)
            .map_err(|e| OpenError::Other(format!("bad file path {path} in {}: {e}", self.location)))?;
        crate::delta::footer_max_micros(store, &object, size, column)
            .await
            .map_err(|e| {
                OpenError::Other(format!(
                    "{} keeps no statistics for `{column}` in its log, and its file {path} cannot tell either: {e}",
                    self.location
                ))
            })
    }
}
