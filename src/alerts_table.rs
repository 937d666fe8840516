//! The alerts Delta table: one home for its columns, its creation, appending events
//! (the `delta` sink) and reading them back (the `/alerts` page). Its schema is in
//! docs/reference.md and stable; Python `deltalake`/pandas read it.

use chrono::{DateTime, Utc};
use deltalake::arrow::array::RecordBatch;
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::{DeltaTable, DeltaTableError};
use tokio::sync::Mutex;

use crate::alert::{AlertEvent, AlertState, Severity};
use crate::delta::columns::{self, Column, ColumnType};
use crate::delta::open::TableSpec;
use crate::delta::{OpenError, TableRef};

/// The alerts table's columns, in order.
pub const COLUMNS: [Column; 10] = [
    Column::required("alert_id", ColumnType::Text),
    Column::required("rule", ColumnType::Text),
    Column::required("check_id", ColumnType::Text),
    Column::required("severity", ColumnType::Text),
    Column::required("state", ColumnType::Text),
    Column::required("message", ColumnType::Text),
    Column::optional("value", ColumnType::Double),
    Column::required("started_at", ColumnType::Timestamp),
    Column::required("event_at", ColumnType::Timestamp),
    Column::required("host", ColumnType::Text),
];

/// What the alerts table is created with.
pub const SPEC: TableSpec = TableSpec {
    name: "alerts",
    comment: "vitals alert events: one row per transition",
    columns: &COLUMNS,
    partitions: &[],
};

/// Commits through one table handle before it is opened afresh: a long-lived handle
/// makes each commit slower (measured: 25 ms → 150 ms by the 1,000th) while a fresh one
/// stays flat.
pub const REOPEN_EVERY: u32 = 100;

/// The rows of a batch of events.
pub fn to_batch(events: &[AlertEvent]) -> Result<RecordBatch, DeltaTableError> {
    let text = |f: fn(&AlertEvent) -> &str| columns::text_array(events.iter().map(f));
    Ok(RecordBatch::try_new(
        columns::arrow_schema(&COLUMNS),
        vec![
            text(|e| &e.alert_id),
            text(|e| &e.rule),
            text(|e| &e.check_id),
            text(|e| e.severity.as_str()),
            text(|e| e.state.as_str()),
            text(|e| &e.message),
            columns::double_array(events.iter().map(|e| e.value)),
            columns::time_array(events.iter().map(|e| e.started_at.timestamp_micros())),
            columns::time_array(events.iter().map(|e| e.event_at.timestamp_micros())),
            text(|e| &e.host),
        ],
    )?)
}

/// Appends to the alerts table, creating it when missing: one commit per call.
pub struct Writer {
    table: TableRef,
    /// The open table and how many commits went through it.
    open: Mutex<Option<(DeltaTable, u32)>>,
}

/// Why an append failed.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The table could not be opened or created (worth retrying).
    #[error("cannot open the alerts table {location}: {source}")]
    Open {
        /// Where.
        location: String,
        /// Why.
        source: DeltaTableError,
    },
    /// The rows could not be appended.
    #[error("cannot append to the alerts table {location}: {source}")]
    Append {
        /// Where.
        location: String,
        /// Why.
        source: DeltaTableError,
    },
}

impl AppendError {
    /// Whether trying again cannot help (the rows do not fit the table).
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            AppendError::Append {
                source: DeltaTableError::SchemaMismatch { .. } | DeltaTableError::Arrow { .. },
                ..
            }
        )
    }
}

impl Writer {
    /// A writer of the table at `table`.
    pub fn new(table: TableRef) -> Writer {
        Writer {
            table,
            open: Mutex::new(None),
        }
    }

    /// Where it writes.
    pub fn location(&self) -> &str {
        &self.table.location
    }

    /// Appends `events` in one commit.
    pub async fn append(&self, events: &[AlertEvent]) -> Result<(), AppendError> {
        let location = || self.table.location.clone();
        let batch = to_batch(events).map_err(|source| AppendError::Append {
            location: location(),
            source,
        })?;
        let mut slot = self.open.lock().await;
        if slot.as_ref().is_none_or(|(_, commits)| *commits >= REOPEN_EVERY) {
            let table = crate::delta::open_or_create(&self.table, &SPEC)
                .await
                .map_err(|source| AppendError::Open {
                    location: location(),
                    source,
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
            Err(source) => {
                // Start from a fresh handle next time (after a conflict or an I/O error).
                *slot = None;
                Err(AppendError::Append {
                    location: location(),
                    source,
                })
            }
        }
    }
}

/// Every event of the table whose episode started at or after `since`, in table order.
/// A missing table has none.
pub async fn read(table: &TableRef, since: DateTime<Utc>) -> Result<Vec<AlertEvent>, OpenError> {
    let names = columns::names(&COLUMNS);
    let batches = match crate::delta::read_columns(&table.location, &table.options, &names).await {
        Ok(b) => b,
        Err(OpenError::Missing(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for b in &batches {
        rows_of(b, since, &mut out).map_err(|e| OpenError::Other(format!("{}: {e}", table.location)))?;
    }
    Ok(out)
}

fn rows_of(b: &RecordBatch, since: DateTime<Utc>, out: &mut Vec<AlertEvent>) -> Result<(), String> {
    let since = since.timestamp_micros();
    let (ids, rules, checks) = (
        columns::text(b, "alert_id")?,
        columns::text(b, "rule")?,
        columns::text(b, "check_id")?,
    );
    let (severity, state, message, host) = (
        columns::text(b, "severity")?,
        columns::text(b, "state")?,
        columns::text(b, "message")?,
        columns::text(b, "host")?,
    );
    let (started, at) = (columns::times(b, "started_at")?, columns::times(b, "event_at")?);
    let value = columns::doubles(b, "value")?;
    for i in 0..b.num_rows() {
        if started.value(i) < since {
            continue;
        }
        let Some(state) = parse_state(state.value(i)) else {
            continue;
        };
        out.push(AlertEvent {
            alert_id: ids.value(i).to_owned(),
            rule: rules.value(i).to_owned(),
            check_id: checks.value(i).to_owned(),
            severity: parse_severity(severity.value(i)),
            state,
            message: message.value(i).to_owned(),
            value: columns::opt(&value, i, |a, i| a.value(i)),
            started_at: DateTime::from_timestamp_micros(started.value(i)).unwrap_or_default(),
            event_at: DateTime::from_timestamp_micros(at.value(i)).unwrap_or_default(),
            host: host.value(i).to_owned(),
            reminder: false,
            label: None,
        });
    }
    Ok(())
}

fn parse_severity(s: &str) -> Severity {
    match s {
        "CRITICAL" => Severity::Critical,
        "WARNING" => Severity::Warning,
        _ => Severity::Info,
    }
}

fn parse_state(s: &str) -> Option<AlertState> {
    Some(match s {
        "firing" => AlertState::Firing,
        "resolved" => AlertState::Resolved,
        "acknowledged" => AlertState::Acknowledged,
        "action" => AlertState::Action,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rows_follow_the_column_table() {
        let at = Utc::now();
        let e = AlertEvent::new(
            "stale",
            "positions",
            Severity::Critical,
            AlertState::Firing,
            "m".into(),
            at,
        )
        .with_value(Some(75.0));
        let batch = to_batch(std::slice::from_ref(&e)).unwrap();
        assert_eq!(batch.schema(), columns::arrow_schema(&COLUMNS));
        let mut back = Vec::new();
        rows_of(&batch, at - chrono::Duration::seconds(1), &mut back).unwrap();
        // The table keeps µs.
        let mut expected = e;
        expected.started_at = DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap();
        expected.event_at = expected.started_at;
        assert_eq!(back, [expected]);
        let mut none = Vec::new();
        rows_of(&batch, at + chrono::Duration::seconds(1), &mut none).unwrap();
        assert!(none.is_empty(), "episodes started before `since` are left out");
    }
}
