//! Reading tables: the rows of a few columns ([`read_columns`]), kept between runs and
//! read again only after a commit ([`KeptColumns`]), whether a table moved on since it
//! was read ([`Watch`]: one HEAD of the next commit file), and a timestamp column's max
//! from a Parquet footer ([`footer_max_micros`]).

use deltalake::arrow::array::{Array, RecordBatch, StringArray};
use deltalake::kernel::StructField;
use deltalake::logstore::object_store::ObjectStoreExt;
use deltalake::logstore::{LogStoreRef, commit_uri_from_version};
use deltalake::parquet::arrow::ProjectionMask;
use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use deltalake::parquet::basic::{LogicalType, TimeUnit};
use deltalake::parquet::file::metadata::{FooterTail, ParquetMetaDataReader};
use deltalake::parquet::file::statistics::Statistics;
use deltalake::{DeltaTableError, ObjectStore, ObjectStoreError};
use tokio_util::bytes::Bytes;

use super::{OpenError, StorageOptions, error_line, field, open_existing};

/// The result of [`read_columns`].
pub type Columns = Result<Vec<RecordBatch>, OpenError>;

/// Reads `columns` of every live row of an existing table, only those columns, from its
/// data files. Columns come back by name (their order in a batch is the file's), with
/// the file's types (Python writes strings as LargeUtf8: cast before comparing). Tables a
/// plain Parquet read would get wrong — deletion vectors, the columns being partition
/// columns — are refused, never read wrongly.
pub async fn read_columns(location: &str, options: &StorageOptions, columns: &[&str]) -> Columns {
    read_columns_at(location, options, columns, &Since::All)
        .await
        .map(|(_, _, batches)| batches)
}

/// Which data files a read can skip: those whose rows all come before a time, told by
/// the file's partition (a `date` partition, `YYYY-MM-DD`) or its statistics (the max
/// of a timestamp column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Since {
    /// Every file.
    All,
    /// Files that may hold rows with `column` at or after `micros` (µs since the epoch,
    /// UTC): a file in a `date` partition before that day, or whose statistics say its
    /// max of `column` is before it, is not read.
    From {
        /// The timestamp column.
        column: &'static str,
        /// The time.
        micros: i64,
    },
}

/// [`read_columns`] of the files that may hold rows [`Since`] says, with the table's
/// log store and the version read.
pub async fn read_columns_since(
    location: &str,
    options: &StorageOptions,
    columns: &[&str],
    since: &Since,
) -> Result<(LogStoreRef, u64, Vec<RecordBatch>), OpenError> {
    read_columns_at(location, options, columns, since).await
}

/// Which rows of the file list `since` lets a read skip.
fn skippable(actions: &RecordBatch, since: &Since) -> Vec<bool> {
    let n = actions.num_rows();
    let Since::From { column, micros } = since else {
        return vec![false; n];
    };
    let day = chrono::DateTime::from_timestamp_micros(*micros)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    let dates = super::columns::text(actions, "partition.date").ok();
    let maxes = super::columns::times(actions, &format!("max.{column}")).ok();
    (0..n)
        .map(|i| {
            let by_day = dates
                .as_ref()
                .is_some_and(|d| !d.is_null(i) && d.value(i) < day.as_str());
            let by_stats = maxes
                .as_ref()
                .is_some_and(|m| !m.is_null(i) && m.value(i) < *micros);
            by_day || by_stats
        })
        .collect()
}

/// How long a table that looks unchanged (no next commit file) goes without its current
/// commit file being looked at again, to notice that it vanished.
pub const CONFIRM_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// [`read_columns`], plus the table's log store and the version read.
async fn read_columns_at(
    location: &str,
    options: &StorageOptions,
    columns: &[&str],
    since: &Since,
) -> Result<(LogStoreRef, u64, Vec<RecordBatch>), OpenError> {
    let table = open_existing(location, options).await?;
    let other =
        |what: &str, e: &DeltaTableError| OpenError::Other(format!("{what} {location}: {}", error_line(e)));
    let version = table
        .version()
        .ok_or_else(|| OpenError::Other(format!("{location} has no commits")))?;
    let state = table
        .snapshot()
        .map_err(|e| other("cannot read the state of", &e))?;
    let schema = state.schema();
    for name in columns {
        field(&schema, location, name).map_err(OpenError::Other)?;
    }
    let actions = state
        .add_actions_table(true)
        .map_err(|e| other("cannot list the files of", &e))?;
    let fields: Vec<&StructField> = columns.iter().filter_map(|c| schema.field(c)).collect();
    refuse_unreadable(location, &actions, &fields).map_err(OpenError::Other)?;
    let paths = actions
        .column_by_name("path")
        .and_then(|p| p.as_any().downcast_ref::<StringArray>())
        .ok_or_else(|| OpenError::Other(format!("{location}: no file list")))?;
    let skip = skippable(&actions, since);
    let store = table.log_store().object_store(None);
    let mut batches = Vec::new();
    for i in (0..paths.len()).filter(|&i| !skip[i]) {
        let path = deltalake::Path::from_url_path(paths.value(i))
            .map_err(|e| OpenError::Other(format!("bad file path in {location}: {e}")))?;
        let read_err = |e: String| OpenError::Other(format!("cannot read {path} of {location}: {e}"));
        let bytes: Bytes = store
            .get(&path)
            .await
            .map_err(|e| read_err(e.to_string()))?
            .bytes()
            .await
            .map_err(|e| read_err(e.to_string()))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| read_err(e.to_string()))?;
        let mask = ProjectionMask::columns(builder.parquet_schema(), columns.iter().copied());
        let reader = builder
            .with_projection(mask)
            .build()
            .map_err(|e| read_err(e.to_string()))?;
        for batch in reader {
            batches.push(batch.map_err(|e| read_err(e.to_string()))?);
        }
    }
    Ok((table.log_store(), version, batches))
}

/// Where a table was last read, and how to tell whether it moved on since: one HEAD of
/// the next commit file per call. What the Delta checks keep between runs instead of a
/// snapshot.
pub struct Watch {
    /// The table's log store.
    pub store: LogStoreRef,
    /// The version last read.
    pub version: u64,
    /// When the current commit file was last known to be there.
    confirmed: tokio::time::Instant,
    /// HEAD requests made so far (shown in details, for tests and benchmarks).
    pub heads: u64,
}

impl Watch {
    /// A table just read at `version`.
    pub fn new(store: LogStoreRef, version: u64) -> Watch {
        Watch {
            store,
            version,
            confirmed: tokio::time::Instant::now(),
            heads: 0,
        }
    }

    /// Whether a commit was made after the version read. With nothing new, the current
    /// commit file is looked at too — when `confirm`, or [`CONFIRM_EVERY`] after it was
    /// last seen — so a table that vanished is reported as `Missing`, not as unchanged.
    pub async fn moved_on(&mut self, location: &str, confirm: bool) -> Result<bool, OpenError> {
        let store = self.store.object_store(None);
        let unreachable = |e: ObjectStoreError| OpenError::Other(format!("cannot reach {location}: {e}"));
        self.heads += 1;
        match store.head(&commit_uri_from_version(Some(self.version + 1))).await {
            Ok(_) => return Ok(true),
            Err(ObjectStoreError::NotFound { .. }) => {}
            Err(e) => return Err(unreachable(e)),
        }
        if !confirm && self.confirmed.elapsed() < CONFIRM_EVERY {
            return Ok(false);
        }
        self.heads += 1;
        match store.head(&commit_uri_from_version(Some(self.version))).await {
            Ok(_) => {
                self.confirmed = tokio::time::Instant::now();
                Ok(false)
            }
            Err(ObjectStoreError::NotFound { .. }) => {
                Err(OpenError::Missing(format!("{location} has disappeared")))
            }
            Err(e) => Err(unreachable(e)),
        }
    }

    /// The table was read up to `version` (its commits are there).
    pub fn read_to(&mut self, version: u64) {
        self.version = version;
        self.confirmed = tokio::time::Instant::now();
    }
}

/// A table's columns kept between runs: read whole once per version, and between
/// commits a run costs one HEAD of the next commit file (plus, every
/// [`CONFIRM_EVERY`], one of the current, so a vanished table is reported).
#[derive(Default)]
pub struct KeptColumns {
    state: tokio::sync::Mutex<Option<Kept>>,
}

struct Kept {
    watch: Watch,
    batches: Vec<RecordBatch>,
}

impl KeptColumns {
    /// The columns of the table's latest version (the same `columns` on every call), read
    /// again only when a commit was made since the last read.
    pub async fn read(
        self: std::sync::Arc<Self>,
        location: String,
        options: StorageOptions,
        columns: Vec<String>,
    ) -> Columns {
        let mut slot = self.state.lock().await;
        if let Some(kept) = slot.as_mut() {
            match kept.watch.moved_on(&location, false).await {
                Ok(false) => return Ok(kept.batches.clone()),
                Ok(true) => {}
                Err(e) => {
                    *slot = None;
                    return Err(e);
                }
            }
        }
        *slot = None;
        let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
        let (store, version, batches) = read_columns_at(&location, &options, &columns, &Since::All).await?;
        *slot = Some(Kept {
            watch: Watch::new(store, version),
            batches: batches.clone(),
        });
        Ok(batches)
    }
}

/// Refuses what a plain read of the Parquet files (rows or footers) would get wrong:
/// deletion vectors (the files still hold the deleted rows), partition columns (not in
/// the files) and column mapping (the files name the columns differently).
pub fn refuse_unreadable(
    location: &str,
    actions: &RecordBatch,
    fields: &[&StructField],
) -> Result<(), String> {
    for field in actions.schema().fields() {
        let Some(col) = actions.column_by_name(field.name()) else {
            continue;
        };
        if field.name().starts_with("deletionVector") && col.null_count() < col.len() {
            return Err(format!(
                "{location} uses deletion vectors, which vitals cannot read yet"
            ));
        }
        if let Some(p) = field.name().strip_prefix("partition.")
            && fields.iter().any(|f| f.name() == p)
        {
            return Err(format!(
                "column `{p}` of {location} is a partition column, which vitals cannot read yet"
            ));
        }
    }
    for f in fields {
        if f.metadata.contains_key("delta.columnMapping.physicalName") {
            return Err(format!(
                "{location} uses column mapping (column `{}`), which vitals cannot read yet",
                f.name()
            ));
        }
    }
    Ok(())
}

/// The largest value of timestamp column `column` in one Parquet data file of `size`
/// bytes, from the statistics in its footer (exact to the file's unit; two small range
/// reads, no rows): microseconds since the epoch, `None` when the file holds no
/// non-null value.
pub async fn footer_max_micros(
    store: &dyn ObjectStore,
    path: &deltalake::Path,
    size: u64,
    column: &str,
) -> Result<Option<i64>, String> {
    if size < 8 {
        return Err(format!("{path} is too short for a Parquet file"));
    }
    let tail = store
        .get_range(path, size - 8..size)
        .await
        .map_err(|e| e.to_string())?;
    let tail: [u8; 8] = tail.as_ref().try_into().map_err(|_| "short read".to_owned())?;
    let len = FooterTail::try_new(&tail)
        .map_err(|e| e.to_string())?
        .metadata_length() as u64;
    if len + 8 > size {
        return Err(format!("{path} has a corrupt footer"));
    }
    let buf = store
        .get_range(path, size - 8 - len..size - 8)
        .await
        .map_err(|e| e.to_string())?;
    let meta = ParquetMetaDataReader::decode_metadata(&buf).map_err(|e| e.to_string())?;
    let schema = meta.file_metadata().schema_descr();
    let Some(idx) = (0..schema.num_columns()).find(|&i| schema.column(i).path().string() == column) else {
        return Err(format!("{path} has no column `{column}`"));
    };
    let per_micro: fn(i64) -> i64 = match schema.column(idx).logical_type_ref() {
        Some(LogicalType::Timestamp(t)) => match t.unit {
            TimeUnit::MILLIS => |v| v.saturating_mul(1000),
            TimeUnit::MICROS => |v| v,
            TimeUnit::NANOS => |v| v.div_euclid(1000),
        },
        other => {
            return Err(format!(
                "`{column}` in {path} is stored as {other:?}, not a timestamp"
            ));
        }
    };
    let mut max = None;
    for rg in meta.row_groups() {
        let chunk = rg.column(idx);
        match chunk.statistics() {
            Some(Statistics::Int64(s)) => {
                if let Some(v) = s.max_opt() {
                    max = max.max(Some(per_micro(*v)));
                } else if s.null_count_opt() != Some(rg.num_rows() as u64) {
                    return Err(format!("{path} keeps no max of `{column}` in its footer"));
                }
            }
            _ if rg.num_rows() == 0 => {}
            _ => return Err(format!("{path} keeps no statistics of `{column}` in its footer")),
        }
    }
    Ok(max)
}
