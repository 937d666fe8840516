//! The history table's upkeep: retention (whole days older than `retention` removed
//! in one commit), compaction (every finished day with more than one file rewritten as
//! one file) and vacuum of the files removed more than an hour before.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use deltalake::arrow::array::{ArrayRef, RecordBatch, StringArray, new_null_array};
use deltalake::arrow::compute::cast;
use deltalake::logstore::object_store::ObjectStoreExt;
use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::{DeltaTable, DeltaTableError};

/// How often retention and compaction run (and once at start).
pub const MAINTAIN_EVERY: Duration = Duration::from_secs(3600);

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

    // A planted link to a folder would have vacuum delete, and compaction write, outside
    // the table: refused, before anything is touched.
    if let Ok(path) = t.table_url().to_file_path() {
        crate::delta::open::refuse_links(&path.display().to_string()).map_err(DeltaTableError::Generic)?;
    }
    let mut done = Maintenance::default();
    let today = now.format("%Y-%m-%d").to_string();
    let cutoff = chrono::Duration::from_std(retention)
        .ok()
        .and_then(|r| now.checked_sub_signed(r))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
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
                        None if field.name() == "date" => Ok(date.clone()),
                        // A column the file predates (a table's later optional one).
                        None => Ok(new_null_array(field.data_type(), batch.num_rows())),
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
