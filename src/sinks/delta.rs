//! `delta`: appends alert events to the alerts Delta table (the schema in docs/reference.md), creating
//! it if missing. Events of one `flush_interval` are one commit; the table handle is
//! re-opened every `REOPEN_EVERY` commits, because a long-lived handle makes each commit
//! slower (measured: 25 ms → 150 ms by the 1,000th) while a fresh one stays flat.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deltalake::arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use deltalake::arrow::datatypes::{DataType as ArrowType, Field, Schema, TimeUnit};
use deltalake::kernel::{DataType, StructField};
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::{DeltaTable, DeltaTableError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::{Sink, SinkConfig, SinkContext, SinkError};
use crate::alert::AlertEvent;
use crate::check::{BuildError, KeyError};
use crate::duration::Span;

/// Commits through one table handle before it is opened afresh.
pub const REOPEN_EVERY: u32 = 100;

/// `kind = "delta"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeltaSinkConfig {
    /// Path of the alerts table, or a `file://` URI, or with the `s3` feature an `s3://` URI (`validate` refuses schemes this
    /// build cannot write); created with the alerts schema if missing. Relative paths
    /// resolve against the config file's directory.
    pub table: String,
    /// Options of the table's object store, for an `s3://` table (a build with the `s3`
    /// feature), e.g. `{ AWS_ENDPOINT_URL = "http://127.0.0.1:9000", AWS_REGION =
    /// "us-east-1", AWS_ALLOW_HTTP = "true" }`. Credentials come from the usual `AWS_*`
    /// environment variables. Several vitals may append to one table on S3: each commit
    /// is a conditional put, and a lost race is retried.
    #[serde(default)]
    pub storage_options: crate::delta::StorageOptions,
    /// Events arriving within this window after the first are written in one commit
    /// (fewer commits keep the table fast to read).
    #[serde(default = "crate::duration::secs::<1>")]
    pub flush_interval: Span,
}

impl SinkConfig for DeltaSinkConfig {
    const KIND: &'static str = "delta";
    const SUMMARY: &'static str = "appends alert events to the alerts Delta table (one row per transition)";
    const EXAMPLE: &'static str = "table = \"../data/alerts\"\nflush_interval = \"1s\"\n";

    fn validate(&self) -> Vec<KeyError> {
        crate::delta::table_key(&self.table, "the alerts table")
            .into_iter()
            .chain(crate::delta::storage_options_key(
                &self.table,
                &self.storage_options,
            ))
            .collect()
    }

    fn build(&self, cx: &SinkContext) -> Result<Arc<dyn Sink>, BuildError> {
        let location = if self.table.contains("://") {
            self.table.clone()
        } else {
            cx.resolve_path(std::path::Path::new(&self.table))
                .display()
                .to_string()
        };
        Ok(Arc::new(DeltaSink {
            location,
            options: crate::delta::options_map(&self.storage_options),
            flush_interval: *self.flush_interval,
            table: Mutex::new(None),
        }))
    }
}

struct DeltaSink {
    location: String,
    options: std::collections::HashMap<String, String>,
    flush_interval: Duration,
    /// The open table and how many commits went through it.
    table: Mutex<Option<(DeltaTable, u32)>>,
}

/// The alerts table's columns, as Delta and as Arrow.
pub fn delta_columns() -> Vec<StructField> {
    let s = |n: &str, nullable: bool| StructField::new(n, DataType::STRING, nullable);
    vec![
        s("alert_id", false),
        s("rule", false),
        s("check_id", false),
        s("severity", false),
        s("state", false),
        s("message", false),
        StructField::new("value", DataType::DOUBLE, true),
        StructField::new("started_at", DataType::TIMESTAMP, false),
        StructField::new("event_at", DataType::TIMESTAMP, false),
        s("host", false),
    ]
}

fn arrow_schema() -> Arc<Schema> {
    let ts = ArrowType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let s = |n: &str| Field::new(n, ArrowType::Utf8, false);
    Arc::new(Schema::new(vec![
        s("alert_id"),
        s("rule"),
        s("check_id"),
        s("severity"),
        s("state"),
        s("message"),
        Field::new("value", ArrowType::Float64, true),
        Field::new("started_at", ts.clone(), false),
        Field::new("event_at", ts, false),
        s("host"),
    ]))
}

/// The rows of a batch of events.
pub fn to_batch(events: &[AlertEvent]) -> Result<RecordBatch, SinkError> {
    let strings = |f: &dyn Fn(&AlertEvent) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(events.iter().map(f)))
    };
    let times = |f: &dyn Fn(&AlertEvent) -> i64| -> ArrayRef {
        Arc::new(TimestampMicrosecondArray::from_iter_values(events.iter().map(f)).with_timezone("UTC"))
    };
    RecordBatch::try_new(
        arrow_schema(),
        vec![
            strings(&|e| &e.alert_id),
            strings(&|e| &e.rule),
            strings(&|e| &e.check_id),
            strings(&|e| e.severity.as_str()),
            strings(&|e| e.state.as_str()),
            strings(&|e| &e.message),
            Arc::new(Float64Array::from(
                events.iter().map(|e| e.value).collect::<Vec<_>>(),
            )),
            times(&|e| e.started_at.timestamp_micros()),
            times(&|e| e.event_at.timestamp_micros()),
            strings(&|e| &e.host),
        ],
    )
    .map_err(|e| SinkError::permanent(format!("cannot build the rows: {e}")))
}

impl DeltaSink {
    async fn open_or_create(&self) -> Result<DeltaTable, DeltaTableError> {
        let url = deltalake::table::builder::ensure_table_uri(&self.location)?;
        // A table with no log yet is created without asking the kernel to load it
        // first (which would log an error for a perfectly normal first start).
        let has_log = std::path::Path::new(&self.location)
            .join("_delta_log")
            .read_dir()
            .is_ok_and(|mut entries| entries.next().is_some());
        if has_log || self.location.contains("://") {
            match deltalake::open_table_with_storage_options(url.clone(), self.options.clone()).await {
                Err(DeltaTableError::NotATable(_)) => {}
                other => return other,
            }
        }
        let created = DeltaTable::try_from_url_with_storage_options(url.clone(), self.options.clone())
            .await?
            .create()
            .with_table_name("alerts")
            .with_comment("vitals alert events: one row per transition")
            .with_columns(delta_columns())
            .await;
        match created {
            Ok(t) => Ok(t),
            // Another writer created it meanwhile.
            Err(_) => deltalake::open_table_with_storage_options(url, self.options.clone()).await,
        }
    }
}

#[async_trait]
impl Sink for DeltaSink {
    fn group_wait(&self) -> Duration {
        self.flush_interval
    }

    async fn deliver(&self, events: &[AlertEvent]) -> Result<(), SinkError> {
        let batch = to_batch(events)?;
        let mut slot = self.table.lock().await;
        if slot.as_ref().is_none_or(|(_, commits)| *commits >= REOPEN_EVERY) {
            let table = self.open_or_create().await.map_err(|e| {
                SinkError::retry(format!("cannot open the alerts table {}: {e}", self.location))
            })?;
            *slot = Some((table, 0));
        }
        let Some((table, commits)) = slot.as_mut() else {
            unreachable!("opened above")
        };
        let result = async {
            let mut writer = RecordBatchWriter::for_table(table)?;
            writer.write(batch).await?;
            writer.flush_and_commit(table).await
        }
        .await;
        match result {
            Ok(_) => {
                *commits += 1;
                Ok(())
            }
            Err(e) => {
                // Start from a fresh handle next time (after a conflict or an I/O error).
                *slot = None;
                let message = format!("cannot append to the alerts table {}: {e}", self.location);
                match e {
                    DeltaTableError::SchemaMismatch { .. } | DeltaTableError::Arrow { .. } => {
                        Err(SinkError::permanent(message))
                    }
                    _ => Err(SinkError::retry(message)),
                }
            }
        }
    }
}

crate::register_sink!(DeltaSinkConfig);
