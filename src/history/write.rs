//! The history writer: feeds the rollup from the board and writes each closed bucket
//! as one commit; at the end writes everything left.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use deltalake::arrow::array::RecordBatch;
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::{DeltaTable, DeltaTableError};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::upkeep::{MAINTAIN_EVERY, Maintenance, maintain};
use super::{Bucket, COLUMNS, HistoryTable, SPEC};
use crate::board::BoardEvent;
use crate::delta::columns;

/// How long after a bucket ends it is written (late observations of its last run).
const SETTLE: Duration = Duration::from_secs(2);

/// The rows of closed buckets, as one batch; `with_sync`: the table has the `sync`
/// column (one created before it has not).
fn to_batch(
    buckets: &[(i64, BTreeMap<String, Bucket>)],
    with_sync: bool,
) -> Result<RecordBatch, DeltaTableError> {
    let rows: Vec<(i64, &String, &Bucket)> = buckets
        .iter()
        .flat_map(|(start, checks)| checks.iter().map(move |(id, b)| (*start, id, b)))
        .collect();
    let doubles = |f: fn(&Bucket) -> Option<f64>| columns::double_array(rows.iter().map(|r| f(r.2)));
    let dates: Vec<String> = rows
        .iter()
        .map(|r| {
            DateTime::from_timestamp_micros(r.0)
                .map(|t| t.format("%Y-%m-%d").to_string())
                .unwrap_or_default()
        })
        .collect();
    let mut arrays = vec![
        columns::text_array(rows.iter().map(|r| r.1.as_str())),
        columns::text_array(rows.iter().map(|r| r.2.kind.as_str())),
        columns::time_array(rows.iter().map(|r| r.0)),
        columns::text_array(rows.iter().map(|r| r.2.status.as_str())),
        doubles(|b| b.value_last),
        doubles(|b| b.value_min),
        doubles(|b| b.value_max),
        columns::text_array(rows.iter().map(|r| r.2.unit.as_str())),
        columns::long_array(rows.iter().map(|r| r.2.samples)),
    ];
    if with_sync {
        arrays.push(std::sync::Arc::new(
            deltalake::arrow::array::StringArray::from_iter(rows.iter().map(|r| r.2.sync.as_deref())),
        ));
    }
    arrays.push(columns::text_array(dates.iter().map(String::as_str)));
    let wanted: Vec<_> = COLUMNS
        .iter()
        .filter(|c| with_sync || c.name != super::SYNC)
        .copied()
        .collect();
    Ok(RecordBatch::try_new(columns::arrow_schema(&wanted), arrays)?)
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
                    open = crate::delta::open_or_create(&table.table, &SPEC).await.ok();
                }
                if let Err(e) = crate::delta::open::refuse_links(&table.table.location) {
                    warn!(table = %table.table.location, "history upkeep refused: {e}");
                    continue;
                }
                if let Some(t) = open.as_mut() {
                    match maintain(t, table.retention, Utc::now()).await {
                        Ok(m) if m != Maintenance::default() => info!(
                            table = %table.table.location,
                            "history upkeep: {} old days dropped, {} days compacted, {} files deleted",
                            m.days_dropped, m.days_compacted, m.files_deleted
                        ),
                        Ok(_) => {}
                        Err(e) => {
                            open = None;
                            warn!(table = %table.table.location, "history upkeep failed ({e}); tried again in an hour");
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
                    info!(table = %table.table.location, "history written again");
                }
                Ok(()) => {}
                Err(e) => {
                    open = None;
                    if !failing || cutoff.is_none() {
                        warn!(table = %table.table.location, "cannot write the history ({e}); kept in memory and tried again");
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
    crate::delta::open::refuse_links(&table.table.location).map_err(DeltaTableError::Generic)?;
    if open.is_none() {
        *open = Some(crate::delta::open_or_create(&table.table, &SPEC).await?);
    }
    let Some(t) = open.as_mut() else {
        unreachable!("opened above")
    };
    let with_sync = t
        .snapshot()
        .is_ok_and(|s| s.schema().field(super::SYNC).is_some());
    let batch = to_batch(closed, with_sync)?;
    let mut writer = RecordBatchWriter::for_table(t)?;
    writer.write(batch).await?;
    writer.flush_and_commit(t).await?;
    Ok(())
}
