//! Health history in a Delta table (`[history]`): every check's observations rolled up
//! per `resolution` bucket (worst status, last/min/max value, samples), one commit per
//! bucket for all checks, partitioned by day; and read back for `GET /api/history`.
//! The schema is in docs/reference.md and stable; Python `deltalake`/pandas read it.
//!
//! One folder for the table: [`rollup`] (buckets as they fill), [`write`] (the writer
//! task), [`upkeep`] (retention, compaction, vacuum) and [`read`] (the reader behind
//! `/api/history`, the board's reload and `vitals replay --history`).
//!
//! The writer never delays a check: observations reach it through the board's follower
//! channel, closed buckets are written by its own task, a failed write is retried with
//! the next bucket, and what is not written yet is written at stop.

pub mod read;
pub mod rollup;
pub mod upkeep;
pub mod write;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::delta::columns::{Column, ColumnType};
use crate::delta::open::TableSpec;
use crate::delta::{TableKeys, TableRef};
use crate::duration::Span;
use crate::plugin::KeyError;

pub use read::{Point, query, read_table, step_for};
pub use rollup::{Bucket, Rollup};
pub use upkeep::{Maintenance, maintain};
pub use write::run;

/// `[history]`: keep every check's history in a Delta table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HistoryConfig {
    /// Path or URI of the history table (created if missing). Default:
    /// `<state_dir>/history`. Relative paths resolve against the config file's
    /// directory.
    #[serde(default)]
    pub table: Option<String>,
    /// Width of one bucket: every check is rolled up per bucket (one row per check and
    /// bucket, one commit per bucket). At least `"1s"`.
    #[serde(default = "crate::duration::secs::<60>")]
    pub resolution: Span,
    /// How long rows are kept: whole days older than this are dropped (checked at start
    /// and every hour, then vacuumed an hour later).
    #[serde(default = "crate::duration::secs::<2592000>")]
    pub retention: Span,
    /// Options of the table's object store, for an `s3://` table (see the delta sink).
    #[serde(default)]
    pub storage_options: crate::delta::StorageOptions,
}

impl HistoryConfig {
    /// Every problem of the section, each at its key. Pure.
    pub fn validate(&self) -> Vec<KeyError> {
        let mut problems = Vec::new();
        if *self.resolution < Duration::from_secs(1) {
            problems.push(KeyError::new("resolution", "must be at least 1s"));
        }
        if *self.retention <= *self.resolution {
            problems.push(KeyError::new("retention", "must be longer than the resolution"));
        }
        if let Some(table) = &self.table {
            let keys = TableKeys {
                table: table.clone(),
                storage_options: self.storage_options.clone(),
            };
            problems.extend(keys.validate("the history table"));
        }
        problems
    }
}

/// The history table's columns, in order (`date` is the partition). `sync` came later:
/// a table created before it is written and read without it.
pub const COLUMNS: [Column; 11] = [
    Column::required("check_id", ColumnType::Text),
    Column::required("kind", ColumnType::Text),
    Column::required("bucket_start", ColumnType::Timestamp),
    Column::required("status", ColumnType::Text),
    Column::optional("value_last", ColumnType::Double),
    Column::optional("value_min", ColumnType::Double),
    Column::optional("value_max", ColumnType::Double),
    Column::required("unit", ColumnType::Text),
    Column::required("samples", ColumnType::Long),
    Column::optional("sync", ColumnType::Text),
    Column::required("date", ColumnType::Text),
];

/// The column a table created before it lacks.
pub const SYNC: &str = "sync";

/// What the history table is created with.
pub const SPEC: TableSpec = TableSpec {
    name: "history",
    comment: "vitals health history: one row per check and bucket",
    columns: &COLUMNS,
    partitions: &["date"],
};

/// Where the history is, for readers.
#[derive(Debug, Clone)]
pub struct HistoryTable {
    /// Where the table is.
    pub table: TableRef,
    /// The bucket width.
    pub resolution: Duration,
    /// How long rows are kept.
    pub retention: Duration,
    /// Buckets not written yet.
    pub pending: Arc<Mutex<Rollup>>,
}
