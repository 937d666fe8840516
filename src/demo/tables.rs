//! The demo desk's Delta tables, written with vitals' own `deltalake` writer: the three
//! feeds (positions, greeks, decisions: a row a commit with `synced_at`), the strategy
//! registry and the position queue (both rewritten whole when the simulation changes
//! them, the way a writer that owns a small table does).

use deltalake::DeltaTable;
use deltalake::arrow::array::RecordBatch;
use deltalake::errors::DeltaTableError;
use deltalake::writer::{DeltaWriter, RecordBatchWriter};

use crate::delta::TableRef;
use crate::delta::columns::{self, Column, ColumnType};
use crate::delta::open::TableSpec;

const FEED: TableSpec = TableSpec {
    name: "demo_feed",
    comment: "vitals demo: a feed the simulated writer keeps fresh",
    columns: &[
        Column::required("conid", ColumnType::Long),
        Column::required("symbol", ColumnType::Text),
        Column::required("synced_at", ColumnType::Timestamp),
    ],
    partitions: &[],
};

const REGISTRY: TableSpec = TableSpec {
    name: "demo_strategy_registry",
    comment: "vitals demo: the strategies and their streaming slots",
    columns: &[
        Column::required("conid", ColumnType::Long),
        Column::required("symbol", ColumnType::Text),
        Column::required("strategy_id", ColumnType::Text),
        Column::required("since", ColumnType::Timestamp),
        Column::required("status", ColumnType::Text),
    ],
    partitions: &[],
};

const QUEUE: TableSpec = TableSpec {
    name: "demo_position_queue",
    comment: "vitals demo: the position queue",
    columns: &[
        Column::required("conid", ColumnType::Long),
        Column::required("status", ColumnType::Text),
        Column::required("created_at", ColumnType::Timestamp),
    ],
    partitions: &[],
};

const SYMBOLS: [&str; 8] = ["SPY", "QQQ", "IWM", "AAPL", "MSFT", "NVDA", "TSLA", "AMZN"];

/// One of the demo's tables, kept open between writes.
pub(super) struct DemoTable {
    table: TableRef,
    spec: &'static TableSpec,
    open: tokio::sync::Mutex<Option<DeltaTable>>,
}

impl DemoTable {
    /// A feed table (`synced_at` rows).
    pub(super) fn feed(table: TableRef) -> DemoTable {
        Self::of(table, &FEED)
    }

    /// The strategy registry.
    pub(super) fn registry(table: TableRef) -> DemoTable {
        Self::of(table, &REGISTRY)
    }

    /// The position queue.
    pub(super) fn queue(table: TableRef) -> DemoTable {
        Self::of(table, &QUEUE)
    }

    fn of(table: TableRef, spec: &'static TableSpec) -> DemoTable {
        DemoTable {
            table,
            spec,
            open: tokio::sync::Mutex::new(None),
        }
    }

    /// Appends one row to a feed, `synced_at` now.
    pub(super) async fn tick(&self, n: i64) -> Result<(), DeltaTableError> {
        let now = chrono::Utc::now().timestamp_micros();
        let symbol = SYMBOLS[n.unsigned_abs() as usize % SYMBOLS.len()];
        let batch = self.batch(vec![
            columns::long_array([100_000 + n % 500]),
            columns::text_array([symbol]),
            columns::time_array([now]),
        ])?;
        self.append(batch).await
    }

    /// Rewrites the registry: `active` strategies ACTIVE and a few STOPPED.
    pub(super) async fn strategies(&self, active: usize) -> Result<(), DeltaTableError> {
        let now = chrono::Utc::now();
        let n = active + 6;
        let ids: Vec<String> = (0..n).map(|i| format!("strat-{i:03}")).collect();
        let since: Vec<i64> = (0..n)
            .map(|i| (now - chrono::Duration::minutes(i as i64 * 7)).timestamp_micros())
            .collect();
        let batch = self.batch(vec![
            columns::long_array((0..n).map(|i| 200_000 + i as i64)),
            columns::text_array((0..n).map(|i| SYMBOLS[i % SYMBOLS.len()])),
            columns::text_array(ids.iter().map(String::as_str)),
            columns::time_array(since),
            columns::text_array((0..n).map(|i| if i < active { "ACTIVE" } else { "STOPPED" })),
        ])?;
        self.replace(batch).await
    }

    /// Rewrites the queue: `pending` rows waiting (the oldest `oldest_s` old) and some
    /// done.
    pub(super) async fn queue_rows(&self, pending: usize, oldest_s: i64) -> Result<(), DeltaTableError> {
        let now = chrono::Utc::now();
        let done = 40;
        let n = pending + done;
        let created: Vec<i64> = (0..n)
            .map(|i| {
                let ago = if i < pending {
                    oldest_s * (pending - i) as i64 / pending.max(1) as i64
                } else {
                    3600
                };
                (now - chrono::Duration::seconds(ago)).timestamp_micros()
            })
            .collect();
        let batch = self.batch(vec![
            columns::long_array((0..n).map(|i| 300_000 + i as i64)),
            columns::text_array((0..n).map(|i| if i < pending { "PENDING" } else { "DONE" })),
            columns::time_array(created),
        ])?;
        self.replace(batch).await
    }

    fn batch(&self, arrays: Vec<deltalake::arrow::array::ArrayRef>) -> Result<RecordBatch, DeltaTableError> {
        Ok(RecordBatch::try_new(
            columns::arrow_schema(self.spec.columns),
            arrays,
        )?)
    }

    /// The open table (created when missing); after a failed write, opened afresh.
    async fn with_table<T>(
        &self,
        write: impl AsyncFnOnce(&mut DeltaTable) -> Result<T, DeltaTableError>,
    ) -> Result<T, DeltaTableError> {
        let mut slot = self.open.lock().await;
        if slot.is_none() {
            *slot = Some(crate::delta::open_or_create(&self.table, self.spec).await?);
        }
        let Some(t) = slot.as_mut() else {
            unreachable!("opened above")
        };
        let done = write(t).await;
        if done.is_err() {
            *slot = None;
        }
        done
    }

    async fn append(&self, batch: RecordBatch) -> Result<(), DeltaTableError> {
        self.with_table(async |t| {
            let mut writer = RecordBatchWriter::for_table(t)?;
            writer.write(batch).await?;
            writer.flush_and_commit(t).await?;
            Ok(())
        })
        .await
    }

    /// Replaces every row with `batch`, in one commit (an overwrite).
    async fn replace(&self, batch: RecordBatch) -> Result<(), DeltaTableError> {
        use deltalake::kernel::Action;
        use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
        use deltalake::protocol::{DeltaOperation, SaveMode};
        self.with_table(async |t| {
            t.update_incremental(None).await?;
            let state = t.snapshot()?.clone();
            let mut writer = RecordBatchWriter::for_table(t)?;
            writer.write(batch).await?;
            let adds = writer.flush().await?;
            let actions: Vec<Action> = adds
                .into_iter()
                .map(Action::Add)
                .chain(
                    state
                        .snapshot()
                        .log_data()
                        .iter()
                        .map(|f| Action::Remove(f.remove_action(true))),
                )
                .collect();
            CommitBuilder::from(CommitProperties::default())
                .with_actions(actions)
                .build(
                    Some(&state),
                    t.log_store(),
                    DeltaOperation::Write {
                        mode: SaveMode::Overwrite,
                        partition_by: None,
                        predicate: None,
                    },
                )
                .await?;
            t.update_incremental(None).await?;
            Ok(())
        })
        .await
    }
}
