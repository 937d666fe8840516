//! Health history in a Delta table (`[history]`): every check's observations rolled up
//! per `resolution` bucket (worst status, last/min/max value, samples), one commit per
//! bucket for all checks, partitioned by day; and read back for `GET /api/history`.
//! The schema is in docs/reference.md and stable; Python `deltalake`/pandas read it.
//!
//! The writer never delays a check: observations reach it through the board's follower
//! channel, closed buckets are written by its own task, a failed write is retried with
//! the next bucket, and what is not written yet is written at stop.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use deltalake::arrow::array::{
    Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::{DataType as ArrowType, Field, Schema, TimeUnit};
use deltalake::kernel::{DataType, StructField};
use deltalake::logstore::object_store::ObjectStoreExt;
use deltalake::parquet::arrow::ProjectionMask;
use deltalake::parquet::arrow::arrow_reader::{ArrowPredicateFn, ParquetRecordBatchReaderBuilder, RowFilter};
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::{DeltaTable, DeltaTableError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::board::BoardEvent;
use crate::duration::Span;
use crate::observation::{Observation, Status};

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

/// One check's bucket: as it fills, as a row of the table, as a point of
/// `/api/history` (its JSON).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bucket {
    /// The check's kind.
    pub kind: String,
    /// The worst status seen.
    pub status: Status,
    /// The last value seen (none: no observation had one).
    pub value_last: Option<f64>,
    /// The smallest value.
    pub value_min: Option<f64>,
    /// The largest value.
    pub value_max: Option<f64>,
    /// The value's unit.
    pub unit: String,
    /// Observations rolled up.
    pub samples: i64,
}

impl Bucket {
    /// A bucket of one observation.
    fn of(o: &Observation) -> Bucket {
        Bucket {
            kind: o.kind.clone(),
            status: o.status,
            value_last: o.value,
            value_min: o.value,
            value_max: o.value,
            unit: o.unit.clone(),
            samples: 1,
        }
    }

    /// Rolls a later bucket into this one: the worst status, the later last value and
    /// unit (when it has them), the min of mins, the max of maxes, the samples added.
    fn absorb(&mut self, later: Bucket) {
        self.status = self.status.worst(later.status);
        if later.value_last.is_some() {
            self.value_last = later.value_last;
        }
        self.value_min = pick(self.value_min, later.value_min, f64::min);
        self.value_max = pick(self.value_max, later.value_max, f64::max);
        if !later.unit.is_empty() {
            self.unit = later.unit;
        }
        self.samples += later.samples;
    }
}

/// Observations rolled up per bucket and check, until written.
#[derive(Debug, Default)]
pub struct Rollup {
    resolution_us: i64,
    buckets: BTreeMap<i64, BTreeMap<String, Bucket>>,
}

fn pick(a: Option<f64>, b: Option<f64>, f: fn(f64, f64) -> f64) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(f(a, b)),
        (a, b) => a.or(b),
    }
}

impl Rollup {
    /// An empty rollup at `resolution`.
    pub fn new(resolution: Duration) -> Rollup {
        Rollup {
            resolution_us: (resolution.as_micros() as i64).max(1_000_000),
            buckets: BTreeMap::new(),
        }
    }

    /// The start of the bucket `t` falls in.
    pub fn bucket_of(&self, t: DateTime<Utc>) -> i64 {
        t.timestamp_micros().div_euclid(self.resolution_us) * self.resolution_us
    }

    /// Adds one observation (the placeholder of a check that has not run is skipped).
    pub fn add(&mut self, o: &Observation) {
        if o.is_pending() {
            return;
        }
        let start = self.bucket_of(o.observed_at);
        let bucket = self.buckets.entry(start).or_default();
        match bucket.get_mut(&o.id) {
            Some(b) => b.absorb(Bucket::of(o)),
            None => {
                bucket.insert(o.id.clone(), Bucket::of(o));
            }
        }
    }

    /// Takes the buckets that ended before `cutoff` (all of them with `None`), oldest
    /// first.
    pub fn take_closed(&mut self, cutoff: Option<DateTime<Utc>>) -> Vec<(i64, BTreeMap<String, Bucket>)> {
        let keep_from = match cutoff {
            Some(c) => c.timestamp_micros() - self.resolution_us + 1,
            None => i64::MAX,
        };
        let open = self.buckets.split_off(&keep_from);
        let closed = std::mem::replace(&mut self.buckets, open);
        closed.into_iter().collect()
    }

    /// Puts back buckets a failed write could not store (merged with what came since).
    pub fn put_back(&mut self, buckets: Vec<(i64, BTreeMap<String, Bucket>)>) {
        for (start, checks) in buckets {
            let slot = self.buckets.entry(start).or_default();
            for (id, b) in checks {
                slot.entry(id).or_insert(b);
            }
        }
    }

    /// The rows not written yet for one check, from `from` on.
    pub fn pending_rows(&self, check: &str, from: i64, to: i64) -> Vec<(i64, Bucket)> {
        self.buckets
            .range(from..=to)
            .filter_map(|(start, checks)| Some((*start, checks.get(check)?.clone())))
            .collect()
    }
}

/// The history table's columns, as Delta.
pub fn delta_columns() -> Vec<StructField> {
    let s = |n: &str, nullable: bool| StructField::new(n, DataType::STRING, nullable);
    let d = |n: &str| StructField::new(n, DataType::DOUBLE, true);
    vec![
        s("check_id", false),
        s("kind", false),
        StructField::new("bucket_start", DataType::TIMESTAMP, false),
        s("status", false),
        d("value_last"),
        d("value_min"),
        d("value_max"),
        s("unit", false),
        StructField::new("samples", DataType::LONG, false),
        s("date", false),
    ]
}

fn arrow_schema() -> Arc<Schema> {
    let ts = ArrowType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let s = |n: &str| Field::new(n, ArrowType::Utf8, false);
    let d = |n: &str| Field::new(n, ArrowType::Float64, true);
    Arc::new(Schema::new(vec![
        s("check_id"),
        s("kind"),
        Field::new("bucket_start", ts, false),
        s("status"),
        d("value_last"),
        d("value_min"),
        d("value_max"),
        s("unit"),
        Field::new("samples", ArrowType::Int64, false),
        s("date"),
    ]))
}

/// The rows of closed buckets, as one batch.
fn to_batch(buckets: &[(i64, BTreeMap<String, Bucket>)]) -> Result<RecordBatch, DeltaTableError> {
    let rows: Vec<(i64, &String, &Bucket)> = buckets
        .iter()
        .flat_map(|(start, checks)| checks.iter().map(move |(id, b)| (*start, id, b)))
        .collect();
    let strings = |f: &dyn Fn(&(i64, &String, &Bucket)) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    };
    let doubles = |f: &dyn Fn(&Bucket) -> Option<f64>| -> ArrayRef {
        Arc::new(Float64Array::from_iter(rows.iter().map(|r| f(r.2))))
    };
    let date = |us: i64| {
        DateTime::from_timestamp_micros(us)
            .map(|t| t.format("%Y-%m-%d").to_string())
            .unwrap_or_default()
    };
    Ok(RecordBatch::try_new(
        arrow_schema(),
        vec![
            strings(&|r| r.1.clone()),
            strings(&|r| r.2.kind.clone()),
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.0)).with_timezone("UTC"),
            ),
            strings(&|r| r.2.status.as_str().to_owned()),
            doubles(&|b| b.value_last),
            doubles(&|b| b.value_min),
            doubles(&|b| b.value_max),
            strings(&|r| r.2.unit.clone()),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.2.samples))),
            strings(&|r| date(r.0)),
        ],
    )?)
}

/// Where the history is, for readers.
#[derive(Debug, Clone)]
pub struct HistoryTable {
    /// The table's location (path or URI).
    pub location: String,
    /// Its object store's options.
    pub options: crate::delta::StorageOptions,
    /// The bucket width.
    pub resolution: Duration,
    /// How long rows are kept.
    pub retention: Duration,
    /// Buckets not written yet.
    pub pending: Arc<Mutex<Rollup>>,
}

async fn open_or_create(t: &HistoryTable) -> Result<DeltaTable, DeltaTableError> {
    let url = deltalake::table::builder::ensure_table_uri(&t.location)?;
    let options = crate::delta::options_map(&t.options);
    let has_log = std::path::Path::new(&t.location)
        .join("_delta_log")
        .read_dir()
        .is_ok_and(|mut e| e.next().is_some());
    if has_log || t.location.contains("://") {
        match deltalake::open_table_with_storage_options(url.clone(), options.clone()).await {
            Err(DeltaTableError::NotATable(_)) => {}
            other => return other,
        }
    }
    let created = DeltaTable::try_from_url_with_storage_options(url.clone(), options.clone())
        .await?
        .create()
        .with_table_name("history")
        .with_comment("vitals health history: one row per check and bucket")
        .with_columns(delta_columns())
        .with_partition_columns(["date"])
        .await;
    match created {
        Ok(t) => Ok(t),
        Err(_) => deltalake::open_table_with_storage_options(url, options).await,
    }
}

/// How long after a bucket ends it is written (late observations of its last run).
const SETTLE: Duration = Duration::from_secs(2);

/// How often retention and compaction run (and once at start).
const MAINTAIN_EVERY: Duration = Duration::from_secs(3600);

/// Files removed by compaction or retention are deleted this long after, so that a
/// reader of the version before keeps its files.
const VACUUM_AFTER: Duration = Duration::from_secs(3600);

/// What one maintenance pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Maintenance {
    /// Days dropped by retention.
    pub days_dropped: usize,
    /// Days whose files were compacted into one.
    pub days_compacted: usize,
    /// Old files deleted by vacuum.
    pub files_deleted: usize,
}

/// The `date=YYYY-MM-DD` partition of a data file's path.
fn day_of(path: &str) -> Option<&str> {
    let rest = &path[path.find("date=")? + 5..];
    rest.get(..10)
}

/// Retention (whole days older than `retention` removed in one commit), compaction
/// (every finished day with more than one file rewritten as one file, one commit per
/// day) and vacuum of files removed more than an hour ago. Readers of any version keep
/// working: removed files stay on disk until vacuumed.
pub async fn maintain(
    t: &mut DeltaTable,
    retention: Duration,
    now: DateTime<Utc>,
) -> Result<Maintenance, DeltaTableError> {
    use deltalake::kernel::Action;
    use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
    use deltalake::protocol::DeltaOperation;

    let mut done = Maintenance::default();
    let today = now.format("%Y-%m-%d").to_string();
    let cutoff = (now - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX))
        .format("%Y-%m-%d")
        .to_string();
    t.update_incremental(None).await?;
    let state = t.snapshot()?.clone();
    let files: Vec<_> = state.snapshot().log_data().iter().collect();
    // Retention: whole days before the cutoff.
    let old: Vec<_> = files
        .iter()
        .filter(|f| day_of(f.path().as_ref()).is_some_and(|d| d < cutoff.as_str()))
        .collect();
    if !old.is_empty() {
        let mut days: Vec<String> = old
            .iter()
            .filter_map(|f| day_of(f.path().as_ref()).map(str::to_owned))
            .collect();
        days.sort_unstable();
        days.dedup();
        done.days_dropped = days.len();
        let actions: Vec<Action> = old
            .iter()
            .map(|f| Action::Remove(f.remove_action(true)))
            .collect();
        CommitBuilder::from(CommitProperties::default())
            .with_actions(actions)
            .build(
                Some(&state),
                t.log_store(),
                DeltaOperation::Delete {
                    predicate: Some(format!("date < '{cutoff}'")),
                },
            )
            .await?;
        t.update_incremental(None).await?;
    }
    // Compaction: finished days with several files.
    let state = t.snapshot()?.clone();
    let files: Vec<_> = state.snapshot().log_data().iter().collect();
    let mut by_day: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for f in files {
        let day = day_of(f.path().as_ref()).map(str::to_owned);
        if let Some(day) = day
            && day < today
        {
            by_day.entry(day).or_default().push(f);
        }
    }
    let store = t.log_store().object_store(None);
    for (day, files) in by_day.into_iter().filter(|(_, f)| f.len() > 1) {
        let state = t.snapshot()?.clone();
        let mut writer = RecordBatchWriter::for_table(t)?;
        let target = writer.arrow_schema();
        for f in &files {
            let path = deltalake::Path::from_url_path(f.path().as_ref())?;
            let bytes = store.get(&path).await?.bytes().await?;
            let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()?;
            for batch in reader {
                let batch = batch?;
                // The partition column is not in the files: put it back.
                let date: ArrayRef = Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                    day.as_str(),
                    batch.num_rows(),
                )));
                let columns = target
                    .fields()
                    .iter()
                    .map(|field| match batch.column_by_name(field.name()) {
                        Some(c) => cast(c, field.data_type()),
                        None => Ok(date.clone()),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                writer
                    .write(RecordBatch::try_new(target.clone(), columns)?)
                    .await?;
            }
        }
        let adds = writer.flush().await?;
        let actions: Vec<Action> = adds
            .into_iter()
            .map(Action::Add)
            .chain(files.iter().map(|f| Action::Remove(f.remove_action(true))))
            .collect();
        CommitBuilder::from(CommitProperties::default())
            .with_actions(actions)
            .build(
                Some(&state),
                t.log_store(),
                DeltaOperation::Optimize {
                    predicate: Some(format!("date = '{day}'")),
                    target_size: 0,
                },
            )
            .await?;
        t.update_incremental(None).await?;
        done.days_compacted += 1;
    }
    {
        let (vacuumed, metrics) = t
            .clone()
            .vacuum()
            .with_retention_period(chrono::Duration::from_std(VACUUM_AFTER).unwrap_or_default())
            .with_enforce_retention_duration(false)
            .await?;
        done.files_deleted = metrics.files_deleted.len();
        *t = vacuumed;
    }
    Ok(done)
}

/// The writer: feeds the rollup from the board and writes each closed bucket as one
/// commit; at the end of `events` (the daemon stops) writes everything left.
pub async fn run(table: HistoryTable, mut events: mpsc::UnboundedReceiver<BoardEvent>) {
    let mut open: Option<DeltaTable> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(1).min(table.resolution));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut upkeep = tokio::time::interval(MAINTAIN_EVERY);
    upkeep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        let cutoff = tokio::select! {
            _ = upkeep.tick() => {
                if open.is_none() {
                    open = open_or_create(&table).await.ok();
                }
                if let Some(t) = open.as_mut() {
                    match maintain(t, table.retention, Utc::now()).await {
                        Ok(m) if m != Maintenance::default() => info!(
                            table = %table.location,
                            "history upkeep: {} old days dropped, {} days compacted, {} files deleted",
                            m.days_dropped, m.days_compacted, m.files_deleted
                        ),
                        Ok(_) => {}
                        Err(e) => {
                            open = None;
                            warn!(table = %table.location, "history upkeep failed ({e}); tried again in an hour");
                        }
                    }
                }
                continue;
            }
            e = events.recv() => match e {
                Some(e) => {
                    table.pending.lock().unwrap_or_else(|e| e.into_inner()).add(&e.observation);
                    continue;
                }
                None => None,
            },
            _ = tick.tick() => Some(Utc::now() - chrono::Duration::from_std(SETTLE).unwrap_or_default()),
        };
        let closed = table
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take_closed(cutoff);
        if !closed.is_empty() {
            match write(&table, &mut open, &closed).await {
                Ok(()) if failing => {
                    failing = false;
                    info!(table = %table.location, "history written again");
                }
                Ok(()) => {}
                Err(e) => {
                    open = None;
                    if !failing || cutoff.is_none() {
                        warn!(table = %table.location, "cannot write the history ({e}); kept in memory and tried again");
                    }
                    failing = true;
                    table
                        .pending
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .put_back(closed);
                }
            }
        }
        if cutoff.is_none() {
            return;
        }
    }
}

async fn write(
    table: &HistoryTable,
    open: &mut Option<DeltaTable>,
    closed: &[(i64, BTreeMap<String, Bucket>)],
) -> Result<(), DeltaTableError> {
    if open.is_none() {
        *open = Some(open_or_create(table).await?);
    }
    let Some(t) = open.as_mut() else {
        unreachable!("opened above")
    };
    let batch = to_batch(closed)?;
    let mut writer = RecordBatchWriter::for_table(t)?;
    writer.write(batch).await?;
    writer.flush_and_commit(t).await?;
    Ok(())
}

/// One point of `/api/history`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Point {
    /// Start of the step.
    pub t: DateTime<Utc>,
    /// The values rolled up over the step.
    #[serde(flatten)]
    pub values: Bucket,
}

/// The step for a range: the resolution, or a multiple of it so that at most
/// `max_points` steps cover `from..to`.
pub fn step_for(resolution: Duration, from: DateTime<Utc>, to: DateTime<Utc>, max_points: i64) -> Duration {
    let res = resolution.as_micros().max(1) as u64;
    let span = (to - from).num_microseconds().unwrap_or(i64::MAX).max(0) as u64;
    let needed = span.div_ceil(max_points.max(1) as u64).max(res);
    let steps = needed.div_ceil(res);
    Duration::from_micros(steps * res)
}

/// A check's history from `from` to `to`, in steps of `step`: rows of the table (and
/// buckets not written yet), rolled up per step.
pub async fn query(
    table: &HistoryTable,
    check: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    step: Duration,
) -> Result<Vec<Point>, String> {
    let mut rows = read_rows(table, check, from, to).await?;
    let (from_us, to_us) = (from.timestamp_micros(), to.timestamp_micros());
    rows.extend(
        table
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pending_rows(check, from_us, to_us),
    );
    rows.sort_by_key(|(t, _)| *t);
    let step_us = (step.as_micros() as i64).max(1);
    let mut points: BTreeMap<i64, Bucket> = BTreeMap::new();
    for (t, v) in rows {
        if t < from_us || t > to_us {
            continue;
        }
        let slot = t.div_euclid(step_us) * step_us;
        match points.get_mut(&slot) {
            Some(p) => p.absorb(v),
            None => {
                points.insert(slot, v);
            }
        }
    }
    Ok(points
        .into_iter()
        .filter_map(|(t, values)| {
            Some(Point {
                t: DateTime::from_timestamp_micros(t)?,
                values,
            })
        })
        .collect())
}

/// The table's rows of one check between two times, reading only the days in range.
async fn read_rows(
    table: &HistoryTable,
    check: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(i64, Bucket)>, String> {
    let rows = read_table(&table.location, &table.options, Some(check), from, to).await?;
    Ok(rows.into_iter().map(|(_, t, v)| (t, v)).collect())
}

/// Every row of the history table between two times (of one check, or all), as
/// (check, bucket start in µs, values), in time order, reading only the days in range.
pub async fn read_table(
    location: &str,
    options: &crate::delta::StorageOptions,
    check: Option<&str>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(String, i64, Bucket)>, String> {
    let mut rows = read_files(location, options, check, from, to).await?;
    let (from_us, to_us) = (from.timestamp_micros(), to.timestamp_micros());
    rows.retain(|(_, t, _)| *t >= from_us && *t <= to_us);
    rows.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    Ok(rows)
}

async fn read_files(
    location: &str,
    options: &crate::delta::StorageOptions,
    check: Option<&str>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(String, i64, Bucket)>, String> {
    let t = match crate::delta::open_existing(location, options).await {
        Ok(t) => t,
        Err(crate::delta::OpenError::Missing(_)) => return Ok(Vec::new()),
        Err(crate::delta::OpenError::Other(e)) => return Err(e),
    };
    let state = t.snapshot().map_err(|e| crate::delta::error_line(&e))?;
    let actions = state
        .add_actions_table(true)
        .map_err(|e| crate::delta::error_line(&e))?;
    let column = |name: &str| -> Result<StringArray, String> {
        let c = actions
            .column_by_name(name)
            .ok_or_else(|| format!("{}: no `{name}` in the file list", location))?;
        let c = cast(c, &ArrowType::Utf8).map_err(|e| e.to_string())?;
        c.as_any()
            .downcast_ref::<StringArray>()
            .cloned()
            .ok_or_else(|| format!("{}: `{name}` is not text", location))
    };
    let paths = column("path")?;
    let dates = column("partition.date")?;
    let (first_day, last_day) = (
        from.format("%Y-%m-%d").to_string(),
        to.format("%Y-%m-%d").to_string(),
    );
    let store = t.log_store().object_store(None);
    let wanted = [
        "check_id",
        "kind",
        "bucket_start",
        "status",
        "value_last",
        "value_min",
        "value_max",
        "unit",
        "samples",
    ];
    let mut out = Vec::new();
    for i in 0..paths.len() {
        let day = dates.value(i);
        if day < first_day.as_str() || day > last_day.as_str() {
            continue;
        }
        let path = deltalake::Path::from_url_path(paths.value(i)).map_err(|e| e.to_string())?;
        let bytes = store
            .get(&path)
            .await
            .map_err(|e| e.to_string())?
            .bytes()
            .await
            .map_err(|e| e.to_string())?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| e.to_string())?;
        let mask = ProjectionMask::columns(builder.parquet_schema(), wanted.iter().copied());
        let mut builder = builder.with_projection(mask);
        if let Some(check) = check {
            // Only the check's rows are decoded: `check_id` is read first, the other
            // columns for the rows that match.
            let ids = ProjectionMask::columns(builder.parquet_schema(), ["check_id"]);
            let wanted_check = check.to_owned();
            let only_check = ArrowPredicateFn::new(ids, move |batch: RecordBatch| {
                let ids = cast(batch.column(0), &ArrowType::Utf8)?;
                deltalake::arrow::compute::kernels::cmp::eq(
                    &ids,
                    &StringArray::new_scalar(wanted_check.as_str()),
                )
            });
            builder = builder.with_row_filter(RowFilter::new(vec![Box::new(only_check)]));
        }
        for batch in builder.build().map_err(|e| e.to_string())? {
            let batch = batch.map_err(|e| e.to_string())?;
            rows_of(&batch, check, &mut out)?;
        }
    }
    Ok(out)
}

fn rows_of(
    batch: &RecordBatch,
    check: Option<&str>,
    out: &mut Vec<(String, i64, Bucket)>,
) -> Result<(), String> {
    let text = |name: &str| -> Result<StringArray, String> {
        let c = batch
            .column_by_name(name)
            .ok_or_else(|| format!("no column `{name}`"))?;
        let c = cast(c, &ArrowType::Utf8).map_err(|e| e.to_string())?;
        c.as_any()
            .downcast_ref::<StringArray>()
            .cloned()
            .ok_or_else(|| format!("`{name}` is not text"))
    };
    let double = |name: &str| -> Result<Float64Array, String> {
        let c = batch
            .column_by_name(name)
            .ok_or_else(|| format!("no column `{name}`"))?;
        c.as_any()
            .downcast_ref::<Float64Array>()
            .cloned()
            .ok_or_else(|| format!("`{name}` is not double"))
    };
    let ids = text("check_id")?;
    let kinds = text("kind")?;
    let statuses = text("status")?;
    let units = text("unit")?;
    let (last, min, max) = (double("value_last")?, double("value_min")?, double("value_max")?);
    let starts = batch
        .column_by_name("bucket_start")
        .and_then(|c| c.as_any().downcast_ref::<TimestampMicrosecondArray>())
        .ok_or("`bucket_start` is not a timestamp")?;
    let samples = batch
        .column_by_name("samples")
        .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
        .ok_or("`samples` is not int64")?;
    let opt = |a: &Float64Array, i: usize| (!a.is_null(i)).then(|| a.value(i));
    for i in 0..batch.num_rows() {
        if check.is_some_and(|c| ids.value(i) != c) {
            continue;
        }
        let status = serde_json::from_value(serde_json::Value::String(statuses.value(i).to_owned()))
            .unwrap_or(Status::Unknown);
        out.push((
            ids.value(i).to_owned(),
            starts.value(i),
            Bucket {
                kind: kinds.value(i).to_owned(),
                status,
                value_last: opt(&last, i),
                value_min: opt(&min, i),
                value_max: opt(&max, i),
                unit: units.value(i).to_owned(),
                samples: samples.value(i),
            },
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use std::collections::HashMap;

    use super::*;
    use crate::observation::Reading;

    /// Buckets by check, for tests.
    fn by_check(buckets: &[(i64, BTreeMap<String, Bucket>)]) -> HashMap<String, usize> {
        let mut n = HashMap::new();
        for (_, checks) in buckets {
            for id in checks.keys() {
                *n.entry(id.clone()).or_default() += 1;
            }
        }
        n
    }

    fn obs(id: &str, status: Status, value: Option<f64>, s: i64) -> Observation {
        let mut r = Reading::new(status, "m");
        r.value = value;
        r.unit = "%".into();
        let t = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap() + chrono::Duration::seconds(s);
        Observation::from_reading(id, "cpu", r, t, Duration::ZERO)
    }

    #[test]
    fn a_bucket_keeps_the_worst_status_and_last_min_max_and_samples() {
        let mut r = Rollup::new(Duration::from_secs(60));
        r.add(&obs("cpu", Status::Ok, Some(20.0), 0));
        r.add(&obs("cpu", Status::Critical, Some(95.0), 20));
        r.add(&obs("cpu", Status::Ok, Some(10.0), 40));
        r.add(&obs("cpu", Status::Ok, None, 50));
        r.add(&obs("cpu", Status::Ok, Some(30.0), 61));
        let cutoff = Utc.with_ymd_and_hms(2026, 11, 30, 12, 1, 0).unwrap();
        let closed = r.take_closed(Some(cutoff));
        assert_eq!(closed.len(), 1, "the bucket 12:01 is still open");
        let b = &closed[0].1["cpu"];
        assert_eq!(
            (b.status, b.value_last, b.value_min, b.value_max, b.samples),
            (Status::Critical, Some(10.0), Some(10.0), Some(95.0), 4)
        );
        let rest = r.take_closed(None);
        assert_eq!(by_check(&rest)["cpu"], 1);
    }

    #[test]
    fn the_step_keeps_the_answer_under_the_point_budget() {
        let from = Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap();
        let minute = Duration::from_secs(60);
        assert_eq!(
            step_for(minute, from, from + chrono::Duration::hours(1), 2000),
            minute
        );
        // A week at one minute is 10,080 points: 6-minute steps make 1,680.
        assert_eq!(
            step_for(minute, from, from + chrono::Duration::days(7), 2000),
            Duration::from_secs(360)
        );
        assert_eq!(
            step_for(
                Duration::from_secs(1),
                from,
                from + chrono::Duration::days(30),
                2000
            ),
            Duration::from_secs(1296)
        );
    }
}
