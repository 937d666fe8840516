//! The `clear` action: every pending row marked cleared in one UPDATE commit that
//! rewrites only the files holding pending rows, read again and retried when another
//! writer's commit conflicts.

use deltalake::arrow::array::{Array, RecordBatch, StringArray};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::DataType as ArrowType;
use deltalake::arrow::datatypes::SchemaRef;
use deltalake::kernel::Action;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::logstore::object_store::ObjectStoreExt;
use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use deltalake::protocol::DeltaOperation;
use deltalake::writer::{DeltaWriter, RecordBatchWriter};

use crate::delta::{OpenError, error_line};

use super::Backlog;

/// How many times `clear` reads the table again after a conflicting commit.
const CLEAR_ATTEMPTS: u32 = 3;

impl Backlog {
    /// Clears, reading again and retrying after a failed commit (another writer
    /// rewrote or removed a file this attempt read), at most [`CLEAR_ATTEMPTS`] times.
    /// `before_first_commit` runs just before the first attempt commits (tests put a
    /// concurrent writer there). Returns (rows, files, version, attempts).
    pub(super) async fn clear(
        &self,
        before_first_commit: impl AsyncFnOnce(),
    ) -> Result<(u64, usize, u64, u32), String> {
        let mut hook = Some(before_first_commit);
        let mut last = String::new();
        for attempt in 1..=CLEAR_ATTEMPTS {
            let result = match hook.take() {
                Some(h) => self.try_clear(h).await,
                None => self.try_clear(async || {}).await,
            };
            match result {
                Ok((rows, files, version)) => return Ok((rows, files, version, attempt)),
                Err(e) => {
                    tracing::warn!(table = %self.location, attempt, "clear failed, reading again: {e}");
                    last = e;
                }
            }
        }
        Err(format!(
            "could not clear {} after {CLEAR_ATTEMPTS} attempts: {last}",
            self.location
        ))
    }

    /// Marks every pending row `cleared_value` in one Delta commit (an UPDATE),
    /// rewriting only the files that hold pending rows.
    async fn try_clear(&self, before_commit: impl AsyncFnOnce()) -> Result<(u64, usize, u64), String> {
        let c = &self.config;
        let table = crate::delta::open_existing(&self.location, &self.options)
            .await
            .map_err(|e| match e {
                OpenError::Missing(m) | OpenError::Other(m) => m,
            })?;
        let state = table.snapshot().map_err(|e| error_line(&e))?;
        // Refuse what a plain Parquet rewrite would get wrong.
        crate::delta::read_columns(&self.location, &self.options, &[c.status_column.as_str()])
            .await
            .map_err(|e| match e {
                OpenError::Missing(m) | OpenError::Other(m) => m,
            })?;
        let files: Vec<_> = state.snapshot().log_data().iter().collect();
        let store = table.log_store().object_store(None);
        let mut writer = RecordBatchWriter::for_table(&table).map_err(|e| error_line(&e))?;
        let target = writer.arrow_schema();
        let (mut cleared, mut removes) = (0u64, Vec::new());
        for f in files {
            let path = deltalake::Path::from_url_path(f.path().as_ref()).map_err(|e| e.to_string())?;
            let bytes = store
                .get(&path)
                .await
                .map_err(|e| format!("cannot read {path}: {e}"))?
                .bytes()
                .await
                .map_err(|e| format!("cannot read {path}: {e}"))?;
            let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
                .and_then(|b| b.build())
                .map_err(|e| format!("{path}: {e}"))?;
            let mut rewritten = Vec::new();
            let mut touched = 0;
            for batch in reader {
                let batch = batch.map_err(|e| format!("{path}: {e}"))?;
                let (batch, n) = mark_cleared(&batch, &c.status_column, &c.pending_value, &c.cleared_value)?;
                touched += n;
                rewritten.push(conform(&batch, &target)?);
            }
            if touched > 0 {
                for batch in rewritten {
                    writer.write(batch).await.map_err(|e| error_line(&e))?;
                }
                removes.push(f.remove_action(true));
                cleared += touched;
            }
        }
        if cleared == 0 {
            return Ok((0, 0, table.version().unwrap_or(0)));
        }
        let files = removes.len();
        let adds = writer.flush().await.map_err(|e| error_line(&e))?;
        let actions: Vec<Action> = adds
            .into_iter()
            .map(Action::Add)
            .chain(removes.into_iter().map(Action::Remove))
            .collect();
        let props = CommitProperties::default().with_metadata([
            ("vitalsAction".to_owned(), serde_json::json!("clear")),
            ("vitalsClearedRows".to_owned(), serde_json::json!(cleared)),
            (
                "vitalsHost".to_owned(),
                serde_json::json!(crate::alert::hostname()),
            ),
        ]);
        let predicate = format!("{} = '{}'", c.status_column, c.pending_value.replace('\'', "''"));
        before_commit().await;
        let version = CommitBuilder::from(props)
            .with_actions(actions)
            .build(
                Some(state),
                table.log_store(),
                DeltaOperation::Update {
                    predicate: Some(predicate),
                },
            )
            .await
            .map_err(|e| format!("commit: {}", error_line(&e)))?
            .version();
        Ok((cleared, files, version))
    }
}

/// The batch with every `pending` status replaced by `cleared`, and how many.
fn mark_cleared(
    batch: &RecordBatch,
    column: &str,
    pending: &str,
    cleared: &str,
) -> Result<(RecordBatch, u64), String> {
    let index = batch
        .schema()
        .index_of(column)
        .map_err(|_| format!("column `{column}` is missing from a data file"))?;
    let original = batch.column(index);
    let text = cast(original, &ArrowType::Utf8).map_err(|e| e.to_string())?;
    let text = text.as_any().downcast_ref::<StringArray>().ok_or("status cast")?;
    let mut n = 0;
    let updated: StringArray = (0..text.len())
        .map(|i| {
            if text.is_null(i) {
                None
            } else if text.value(i) == pending {
                n += 1;
                Some(cleared)
            } else {
                Some(text.value(i))
            }
        })
        .collect();
    let updated = cast(&updated, original.data_type()).map_err(|e| e.to_string())?;
    let mut columns = batch.columns().to_vec();
    columns[index] = updated;
    RecordBatch::try_new(batch.schema(), columns)
        .map(|b| (b, n))
        .map_err(|e| e.to_string())
}

/// The batch in the writer's schema (Python writes LargeUtf8; columns in file order).
fn conform(batch: &RecordBatch, target: &SchemaRef) -> Result<RecordBatch, String> {
    let columns = target
        .fields()
        .iter()
        .map(|f| {
            let col = batch
                .column_by_name(f.name())
                .ok_or_else(|| format!("column `{}` is missing", f.name()))?;
            cast(col, f.data_type()).map_err(|e| format!("column `{}`: {e}", f.name()))
        })
        .collect::<Result<Vec<_>, String>>()?;
    RecordBatch::try_new(target.clone(), columns).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::Utc;
    use deltalake::arrow::array::{Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
    use deltalake::arrow::datatypes::{DataType as A, Field, Schema, TimeUnit};
    use deltalake::kernel::{DataType, StructField};
    use deltalake::writer::{DeltaWriter, RecordBatchWriter};

    use super::*;
    use crate::checks::queue_backlog::QueueBacklogConfig;
    use crate::thresholds::Thresholds;

    /// One file: conids 0..3 PENDING, 3..5 DONE.
    async fn queue(path: &std::path::Path) {
        let url = deltalake::table::builder::ensure_table_uri(path.to_str().unwrap()).unwrap();
        let mut table = deltalake::DeltaTable::try_from_url(url)
            .await
            .unwrap()
            .create()
            .with_columns([
                StructField::new("conid", DataType::LONG, false),
                StructField::new("status", DataType::STRING, false),
                StructField::new("created_at", DataType::TIMESTAMP, false),
            ])
            .await
            .unwrap();
        let schema = Arc::new(Schema::new(vec![
            Field::new("conid", A::Int64, false),
            Field::new("status", A::Utf8, false),
            Field::new(
                "created_at",
                A::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                false,
            ),
        ]));
        let now = Utc::now().timestamp_micros();
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![0, 1, 2, 3, 4])),
                Arc::new(StringArray::from(vec![
                    "PENDING", "PENDING", "PENDING", "DONE", "DONE",
                ])),
                Arc::new(TimestampMicrosecondArray::from(vec![now; 5]).with_timezone("UTC")),
            ],
        )
        .unwrap();
        let mut writer = RecordBatchWriter::for_table(&table).unwrap();
        writer.write(batch).await.unwrap();
        writer.flush_and_commit(&mut table).await.unwrap();
    }

    fn backlog(location: &str, pending: &str, cleared: &str) -> Backlog {
        let config: QueueBacklogConfig = toml::from_str(&format!(
            "table = \"{location}\"\npending_value = \"{pending}\"\ncleared_value = \"{cleared}\""
        ))
        .unwrap();
        Backlog {
            location: location.to_owned(),
            options: Default::default(),
            count: Thresholds::higher_is_worse(config.warn as f64, config.crit as f64),
            age: config.age_thresholds(),
            config,
            reads: Default::default(),
            kept: Default::default(),
        }
    }

    async fn statuses(location: &str) -> Vec<String> {
        let batches = crate::delta::read_columns(location, &Default::default(), &["status"])
            .await
            .unwrap();
        let mut all: Vec<String> = batches
            .iter()
            .flat_map(|b| {
                let s = cast(b.column(0), &ArrowType::Utf8).unwrap();
                let s = s.as_any().downcast_ref::<StringArray>().unwrap().clone();
                (0..s.len()).map(move |i| s.value(i).to_owned())
            })
            .collect();
        all.sort();
        all
    }

    #[tokio::test]
    async fn a_concurrent_rewrite_of_a_file_it_read_is_a_conflict_and_the_retry_clears() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("queue");
        queue(&path).await;
        let location = path.to_str().unwrap();
        let clearing = backlog(location, "PENDING", "CLEARED");
        // Another writer rewrites the same file (every row kept) between this attempt's
        // read and its commit — what a compaction does.
        let rewriter = backlog(location, "DONE", "DONE");
        let (rows, files, version, attempts) = clearing
            .clear(async || {
                let (rewritten, _, v) = rewriter.try_clear(async || {}).await.unwrap();
                assert_eq!((rewritten, v), (2, 2), "the concurrent rewrite committed");
            })
            .await
            .unwrap();
        assert_eq!(
            attempts, 2,
            "the first commit conflicted and the table was read again"
        );
        assert_eq!((rows, files, version), (3, 1, 3));
        assert_eq!(
            statuses(location).await,
            ["CLEARED", "CLEARED", "CLEARED", "DONE", "DONE"],
            "nothing lost, nothing doubled"
        );
    }

    #[tokio::test]
    async fn each_commit_that_meets_a_concurrent_rewrite_fails_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("queue");
        queue(&path).await;
        let location = path.to_str().unwrap();
        let clearing = backlog(location, "PENDING", "CLEARED");
        let rewriter = backlog(location, "DONE", "DONE");
        let mut last = String::new();
        for _ in 0..CLEAR_ATTEMPTS {
            last = clearing
                .try_clear(async || {
                    rewriter.try_clear(async || {}).await.unwrap();
                })
                .await
                .unwrap_err();
        }
        assert!(last.starts_with("commit:"), "{last}");
        assert_eq!(statuses(location).await[..3], ["DONE", "DONE", "PENDING"]);
    }
}
