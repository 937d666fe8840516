//! The alerts Delta table: one home for its columns, its creation, appending events
//! (the `delta` sink) and reading them back (the `/alerts` page). Its schema is in
//! docs/reference.md and stable; Python `deltalake`/pandas read it.
//!
//! A table vitals creates is partitioned by `date` (the event's day, UTC), so a read
//! of the last hours opens only the days in range; a table created before (without
//! `date`) is still read and appended to, its files skipped by their statistics. The
//! reader keeps its last read for as long as the table has no new commit (one HEAD of
//! the next commit file tells), so the page's readers share one read.

use chrono::{DateTime, Utc};
use deltalake::arrow::array::RecordBatch;
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::{DeltaTable, DeltaTableError};
use tokio::sync::Mutex;

use crate::alert::{AlertEvent, AlertState, Severity};
use crate::delta::columns::{self, Column, ColumnType};
use crate::delta::open::TableSpec;
use crate::delta::{OpenError, TableRef};

/// The alerts table's columns, in order (`date`, the partition, last).
pub const COLUMNS: [Column; 11] = [
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
    Column::required("date", ColumnType::Text),
];

/// The columns a table created before the `date` partition has.
const UNPARTITIONED: usize = 10;

/// What the alerts table is created with.
pub const SPEC: TableSpec = TableSpec {
    name: "alerts",
    comment: "vitals alert events: one row per transition",
    columns: &COLUMNS,
    partitions: &["date"],
};

/// Commits through one table handle before it is opened afresh: a long-lived handle
/// makes each commit slower (measured: 25 ms → 150 ms by the 1,000th) while a fresh one
/// stays flat.
pub const REOPEN_EVERY: u32 = 100;

/// The rows of a batch of events, with the `date` partition when `partitioned`.
pub fn to_batch(events: &[AlertEvent], partitioned: bool) -> Result<RecordBatch, DeltaTableError> {
    let text = |f: fn(&AlertEvent) -> &str| columns::text_array(events.iter().map(f));
    let mut arrays = vec![
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
    ];
    let wanted = if partitioned { COLUMNS.len() } else { UNPARTITIONED };
    if partitioned {
        let days: Vec<String> = events
            .iter()
            .map(|e| e.event_at.format("%Y-%m-%d").to_string())
            .collect();
        arrays.push(columns::text_array(days.iter().map(String::as_str)));
    }
    Ok(RecordBatch::try_new(
        columns::arrow_schema(&COLUMNS[..wanted]),
        arrays,
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
        crate::delta::open::refuse_links(&self.table.location).map_err(|e| AppendError::Append {
            location: location(),
            source: DeltaTableError::Generic(e),
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
        // A table created before the `date` partition is appended to as it is.
        let partitioned = table
            .snapshot()
            .is_ok_and(|s| s.metadata().partition_columns().iter().any(|c| c == "date"));
        let batch = to_batch(events, partitioned).map_err(|source| AppendError::Append {
            location: location(),
            source,
        })?;
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
    Ok(read_at(table, since)
        .await?
        .map(|(_, events)| events)
        .unwrap_or_default())
}

/// [`read`], with the table's watch (none: the table is missing). Only the files that
/// may hold events since `since` are read (by `date` partition or statistics).
async fn read_at(
    table: &TableRef,
    since: DateTime<Utc>,
) -> Result<Option<(crate::delta::Watch, Vec<AlertEvent>)>, OpenError> {
    let names = columns::names(&COLUMNS[..UNPARTITIONED]);
    let window = crate::delta::read::Since::From {
        column: "event_at",
        micros: since.timestamp_micros(),
    };
    let (store, version, batches) = match crate::delta::read::read_columns_since(
        &table.location,
        &table.options,
        &names,
        &window,
    )
    .await
    {
        Ok(read) => read,
        Err(OpenError::Missing(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for b in &batches {
        rows_of(b, since, &mut out).map_err(|e| OpenError::Other(format!("{}: {e}", table.location)))?;
    }
    Ok(Some((crate::delta::Watch::new(store, version), out)))
}

/// How long the web waits for the alerts table (and for the reads queued before its own).
pub const READ_LIMIT: std::time::Duration = std::time::Duration::from_secs(20);

/// The alerts table's reader for the web: one read at a time, and the last read kept
/// for as long as the table has no new commit and the range asked for is within it.
/// However many pages and CSVs are asked for at once, the table is read once.
pub struct Reader {
    table: TableRef,
    last: tokio::sync::Mutex<Option<Kept>>,
}

struct Kept {
    watch: crate::delta::Watch,
    since: DateTime<Utc>,
    events: std::sync::Arc<Vec<AlertEvent>>,
    /// When a request last used it.
    used: std::time::Instant,
}

/// How long a read is kept with no request using it: then its memory goes back.
pub const KEEP_IDLE: std::time::Duration = std::time::Duration::from_secs(60);

impl Reader {
    /// A reader of `table`.
    pub fn new(table: TableRef) -> Reader {
        Reader {
            table,
            last: tokio::sync::Mutex::new(None),
        }
    }

    /// Where it reads.
    pub fn table(&self) -> &TableRef {
        &self.table
    }

    /// The events of episodes started at or after `since` (the kept read when the table
    /// has not moved on and it covers `since`; else read now). The kept read is shared,
    /// never copied: [`Events`] filters it as it is walked.
    /// A read that does not finish within [`READ_LIMIT`] (a hung mount, a stalled
    /// object store) is an error, and the next request tries again.
    pub async fn events(self: &std::sync::Arc<Self>, since: DateTime<Utc>) -> Result<Events, OpenError> {
        match tokio::time::timeout(READ_LIMIT, self.events_now(since)).await {
            Ok(read) => read,
            Err(_) => Err(OpenError::Other(format!(
                "{}: the read did not finish within {READ_LIMIT:?}",
                self.table.location
            ))),
        }
    }

    async fn events_now(self: &std::sync::Arc<Self>, since: DateTime<Utc>) -> Result<Events, OpenError> {
        let mut last = self.last.lock().await;
        if let Some(kept) = last.as_mut()
            && kept.since <= since
            && !kept.watch.moved_on(&self.table.location, false).await?
        {
            kept.used = std::time::Instant::now();
            return Ok(Events {
                all: kept.events.clone(),
                since,
            });
        }
        // The old read goes before the new one is made (one in memory at a time).
        let watched = last.take().is_some();
        match read_at(&self.table, since).await? {
            Some((watch, events)) => {
                let events = std::sync::Arc::new(events);
                *last = Some(Kept {
                    watch,
                    since,
                    events: events.clone(),
                    used: std::time::Instant::now(),
                });
                if !watched {
                    self.forget_when_idle();
                }
                Ok(Events { all: events, since })
            }
            None => Ok(Events {
                all: std::sync::Arc::default(),
                since,
            }),
        }
    }
}

impl Reader {
    /// Drops the kept read once no request has used it for [`KEEP_IDLE`], and gives its
    /// memory back: a month of a busy table viewed once is not held for good.
    fn forget_when_idle(self: &std::sync::Arc<Self>) {
        let reader = std::sync::Arc::downgrade(self);
        tokio::spawn(async move {
            let mut wait = KEEP_IDLE;
            loop {
                tokio::time::sleep(wait).await;
                let Some(reader) = reader.upgrade() else {
                    return;
                };
                let mut last = reader.last.lock().await;
                match last.as_ref() {
                    None => return,
                    Some(kept) if kept.used.elapsed() >= KEEP_IDLE => {
                        *last = None;
                        drop(last);
                        give_back_memory();
                        return;
                    }
                    // Used since: wait until it has been idle long enough.
                    Some(kept) => wait = KEEP_IDLE.saturating_sub(kept.used.elapsed()),
                }
            }
        });
    }
}

/// Returns the heap's free pages to the system (glibc keeps freed small blocks, a
/// dropped read's strings, in its arenas otherwise).
fn give_back_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of the allocator's own arenas.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The events of a [`Reader`]'s read from `since` on: the read itself, shared.
#[derive(Clone)]
pub struct Events {
    all: std::sync::Arc<Vec<AlertEvent>>,
    since: DateTime<Utc>,
}

impl Events {
    /// The events of episodes started at or after `since`, in table order, each with its
    /// index (for [`Events::get`]).
    pub fn iter(&self) -> impl Iterator<Item = (usize, &AlertEvent)> {
        self.all
            .iter()
            .enumerate()
            .filter(|(_, e)| e.started_at >= self.since)
    }

    /// The event at `index` of [`Events::iter`].
    pub fn get(&self, index: usize) -> &AlertEvent {
        &self.all[index]
    }
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
        let batch = to_batch(std::slice::from_ref(&e), true).unwrap();
        assert_eq!(batch.schema(), columns::arrow_schema(&COLUMNS));
        assert_eq!(
            to_batch(std::slice::from_ref(&e), false).unwrap().num_columns(),
            10
        );
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
