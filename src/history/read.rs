//! Reading the history back: one check's points over a range (`/api/history`, the
//! board's reload at start) and every row between two times (`vitals replay
//! --history`), reading only the days in range.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use deltalake::arrow::array::{Array, RecordBatch, StringArray};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::DataType as ArrowType;
use deltalake::logstore::object_store::ObjectStoreExt;
use deltalake::parquet::arrow::ProjectionMask;
use deltalake::parquet::arrow::arrow_reader::{ArrowPredicateFn, ParquetRecordBatchReaderBuilder, RowFilter};
use serde::Serialize;

use super::{Bucket, HistoryTable};
use crate::delta::TableRef;
use crate::delta::columns;
use crate::observation::Status;

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
    let rows = read_table(&table.table, Some(check), from, to).await?;
    Ok(rows.into_iter().map(|(_, t, v)| (t, v)).collect())
}

/// Every row of the history table between two times (of one check, or all), as
/// (check, bucket start in µs, values), in time order, reading only the days in range.
pub async fn read_table(
    table: &TableRef,
    check: Option<&str>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(String, i64, Bucket)>, String> {
    let mut rows = read_files(&table.location, &table.options, check, from, to).await?;
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
    let column =
        |name: &str| columns::text(&actions, name).map_err(|e| format!("{location}: file list: {e}"));
    let paths = column("path")?;
    let dates = column("partition.date")?;
    let (first_day, last_day) = (
        from.format("%Y-%m-%d").to_string(),
        to.format("%Y-%m-%d").to_string(),
    );
    let store = t.log_store().object_store(None);
    // Every column but the partition (not in the files).
    let wanted: Vec<&str> = super::COLUMNS
        .iter()
        .map(|c| c.name)
        .filter(|n| !super::SPEC.partitions.contains(n))
        .collect();
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
    let ids = columns::text(batch, "check_id")?;
    let kinds = columns::text(batch, "kind")?;
    let statuses = columns::text(batch, "status")?;
    let units = columns::text(batch, "unit")?;
    let (last, min, max) = (
        columns::doubles(batch, "value_last")?,
        columns::doubles(batch, "value_min")?,
        columns::doubles(batch, "value_max")?,
    );
    let starts = columns::times(batch, "bucket_start")?;
    let samples = columns::longs(batch, "samples")?;
    // A table from before the column has none.
    let sync = match batch.column_by_name(super::SYNC) {
        Some(_) => Some(columns::text(batch, super::SYNC)?),
        None => None,
    };
    let value = |a: &deltalake::arrow::array::Float64Array, i| columns::opt(a, i, |a, i| a.value(i));
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
                value_last: value(&last, i),
                value_min: value(&min, i),
                value_max: value(&max, i),
                unit: units.value(i).to_owned(),
                samples: samples.value(i),
                sync: sync
                    .as_ref()
                    .filter(|s| s.is_valid(i))
                    .map(|s| s.value(i).to_owned()),
            },
        ));
    }
    Ok(())
}

/// Seeds each check's board history (sparklines, the page's last hour) from the
/// history table, so a restart does not reset them.
pub async fn reload_last_hour(
    table: crate::history::HistoryTable,
    board: crate::board::Board,
    ids: Vec<String>,
) {
    let to = chrono::Utc::now();
    let from = to - chrono::Duration::from_std(crate::board::HISTORY_WINDOW).unwrap_or_default();
    let step = table.resolution;
    let mut seeded = 0;
    for id in ids {
        match crate::history::query(&table, &id, from, to, step).await {
            Ok(points) => {
                let samples: Vec<crate::board::Sample> = points
                    .iter()
                    .map(|p| crate::board::Sample {
                        at: p.t,
                        status: p.values.status,
                        value: p.values.value_last,
                    })
                    .collect();
                seeded += samples.len();
                board.seed_history(&id, samples);
            }
            Err(e) => {
                tracing::warn!(table = %table.table.location, "cannot reload the last hour of {id} from the history: {e}");
            }
        }
    }
    tracing::debug!("reloaded {seeded} history points from {}", table.table.location);
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

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
