//! `delta_freshness` on tables written by Python `deltalake` + pandas: commit time and
//! timestamp columns (tz-aware and naive), incremental reads, and every bad-table case
//! with recovery.

use std::path::Path;

use vitals::check::{Observation, Status};
use vitals::runner::Instance;

use crate::support::delta::{make, make_script, statuses};
use crate::support::{action_cx, instances, python};

fn check(dir: &Path, table: &str, extra: &str) -> Instance {
    let text = format!(
        "[checks.positions]\nkind = \"delta_freshness\"\ntable = \"{table}\"\ntimeout = \"20s\"\n{extra}"
    );
    instances(dir, &text).remove(0)
}

async fn run(i: &Instance) -> Observation {
    i.run_once(tokio::time::Instant::now()).await
}

#[tokio::test]
async fn a_tz_aware_column_gives_the_age_of_the_newest_row() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("positions");
    make(&[table.to_str().unwrap(), "tz", "45", "3"]);
    let o = run(&check(dir.path(), "positions", "column = \"synced_at\"\n")).await;
    assert_eq!(
        (o.status, o.label.as_deref()),
        (Status::Warning, Some("WARNING")),
        "{o:?}"
    );
    let age = o.value.unwrap();
    assert!((45.0..50.0).contains(&age), "{age}");
    assert_eq!(o.unit, "s");
    assert_eq!(o.details["version"], 2);
    assert_eq!(o.details["operation"], "WRITE");
    crate::panels::assert_writes_what_its_panel_reads(&o);
}

#[tokio::test]
async fn a_naive_column_is_read_as_utc() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("greeks");
    make(&[table.to_str().unwrap(), "ntz", "10"]);
    let o = run(&check(dir.path(), "greeks", "column = \"synced_at\"\n")).await;
    assert_eq!(
        (o.status, o.label.as_deref()),
        (Status::Ok, Some("FRESH")),
        "{o:?}"
    );
    assert!((10.0..15.0).contains(&o.value.unwrap()), "{o:?}");
    // 90 s old: stale.
    let stale = dir.path().join("stale");
    make(&[stale.to_str().unwrap(), "ntz", "90"]);
    let o = run(&check(dir.path(), "stale", "column = \"synced_at\"\n")).await;
    assert_eq!(
        (o.status, o.label.as_deref()),
        (Status::Critical, Some("STALE")),
        "{o:?}"
    );
}

#[tokio::test]
async fn without_a_column_the_latest_commit_time_counts() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("decisions");
    make(&[table.to_str().unwrap(), "tz", "500"]);
    let o = run(&check(dir.path(), "decisions", "")).await;
    assert_eq!(
        o.status,
        Status::Ok,
        "the commit is new even if its rows are old: {o:?}"
    );
    assert!(o.value.unwrap() < 10.0, "{o:?}");
    assert!(o.details["last_commit_at"].is_string());
}

#[tokio::test]
async fn new_commits_are_seen_and_only_they_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("positions");
    make(&[table.to_str().unwrap(), "tz", "50"]);
    let check = check(dir.path(), "positions", "column = \"synced_at\"\n");
    let first = run(&check).await;
    assert_eq!(first.status, Status::Warning);
    assert_eq!(first.details["commits_read"], 1);
    let again = run(&check).await;
    assert_eq!(again.details["commits_read"], 1, "nothing new: no commit read");
    // Two more commits, the newest row 5 s old.
    make(&[table.to_str().unwrap(), "tz", "5", "2"]);
    let after = run(&check).await;
    assert_eq!(after.status, Status::Ok, "{after:?}");
    assert_eq!(after.details["version"], 2);
    assert_eq!(
        after.details["commits_read"], 3,
        "each new commit read once, nothing else of the table"
    );
    // Checkpointed and compacted (files removed and re-added): still right.
    make(&["checkpoint", table.to_str().unwrap()]);
    make(&["optimize", table.to_str().unwrap()]);
    let compacted = run(&check).await;
    assert_eq!(compacted.status, Status::Ok, "{compacted:?}");
    assert_eq!(compacted.details["operation"], "OPTIMIZE");
    assert!((5.0..10.0).contains(&compacted.value.unwrap()), "{compacted:?}");
}

#[tokio::test]
async fn an_unchanged_fresh_table_costs_one_head_and_a_vanished_one_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("positions");
    make(&[table.to_str().unwrap(), "tz", "5", "3"]);
    let fresh = check(
        dir.path(),
        "positions",
        "column = \"synced_at\"\nwarn = \"1h\"\ncrit = \"2h\"\n",
    );
    let first = run(&fresh).await;
    assert_eq!(first.status, Status::Ok, "{first:?}");
    assert_eq!(first.details["heads"], 0, "the first run opens the table");
    for n in 1..=3 {
        let o = run(&fresh).await;
        assert_eq!(o.status, Status::Ok, "{o:?}");
        assert_eq!(o.details["heads"], n, "one HEAD of the next commit file per run");
    }
    // Once the data is old enough to warn, an unchanged table's current commit is
    // confirmed on each run, so a table that vanished reads as gone, not as stale.
    let stale = check(
        dir.path(),
        "positions",
        "column = \"synced_at\"\nwarn = \"1s\"\ncrit = \"1h\"\n",
    );
    assert_eq!(run(&stale).await.status, Status::Warning);
    assert_eq!(run(&stale).await.details["heads"], 2);
    std::fs::remove_dir_all(&table).unwrap();
    let o = run(&stale).await;
    assert_eq!(o.status, Status::Critical, "{o:?}");
    assert!(o.message.ends_with("has disappeared"), "{}", o.message);
}

#[tokio::test]
async fn bad_tables_are_reported_and_heal() {
    let dir = tempfile::tempdir().unwrap();
    // Missing: critical, the data is gone.
    let missing = check(dir.path(), "nowhere", "");
    let o = run(&missing).await;
    assert_eq!(o.status, Status::Critical, "{o:?}");
    assert!(o.message.ends_with("nowhere does not exist"), "{}", o.message);
    // A directory that is not a table.
    std::fs::create_dir(dir.path().join("plain")).unwrap();
    let o = run(&check(dir.path(), "plain", "")).await;
    assert_eq!(o.status, Status::Critical);
    assert!(o.message.contains("is not a Delta table"), "{}", o.message);
    // The table appears: the same check heals.
    make(&[dir.path().join("nowhere").to_str().unwrap(), "tz", "1"]);
    let o = run(&missing).await;
    assert_eq!(o.status, Status::Ok, "{o:?}");

    // Columns that do not exist or are not timestamps.
    let o = run(&check(dir.path(), "nowhere", "column = \"synced\"\n")).await;
    assert_eq!(o.status, Status::Unknown);
    assert!(
        o.message
            .contains("has no column `synced`; its columns: conid, symbol, synced_at"),
        "{}",
        o.message
    );
    let o = run(&check(dir.path(), "nowhere", "column = \"symbol\"\n")).await;
    assert_eq!(o.status, Status::Unknown);
    assert!(
        o.message.contains("column `symbol`") && o.message.contains("not a timestamp"),
        "{}",
        o.message
    );

    // A corrupt next commit: unknown with the cause, not a panic; the table vanishing:
    // critical.
    let table = dir.path().join("nowhere");
    let watched = check(dir.path(), "nowhere", "");
    assert_eq!(run(&watched).await.status, Status::Ok);
    std::fs::write(
        table.join("_delta_log/00000000000000000001.json"),
        "{\"add\": {truncated",
    )
    .unwrap();
    let o = run(&watched).await;
    assert_eq!(o.status, Status::Unknown, "{o:?}");
    assert!(o.message.contains("nowhere"), "{}", o.message);
    std::fs::remove_dir_all(&table).unwrap();
    let o = run(&watched).await;
    assert_eq!(o.status, Status::Critical, "{o:?}");
}

#[tokio::test]
async fn strategy_slots_counts_the_active_rows_of_a_python_registry() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("registry");
    make(&["registry", table.to_str().unwrap(), "92", "20"]);
    // Every row is a strategy: 112 of 100 slots.
    let all = instances(
        dir.path(),
        "[checks.slots]\nkind = \"strategy_slots\"\ntable = \"registry\"\n",
    )
    .remove(0);
    let o = run(&all).await;
    assert_eq!((o.status, o.value), (Status::Critical, Some(112.0)), "{o:?}");
    // Only the ACTIVE ones: 92, past the warning mark of 90.
    let active = instances(
        dir.path(),
        "[checks.slots]\nkind = \"strategy_slots\"\ntable = \"registry\"\nfilter_column = \"status\"\nfilter_value = \"ACTIVE\"\n",
    )
    .remove(0);
    let o = run(&active).await;
    assert_eq!((o.status, o.value), (Status::Warning, Some(92.0)), "{o:?}");
    assert_eq!(o.details["limit"], 100);
    assert_eq!(o.details["free"], 8.0);
    crate::panels::assert_writes_what_its_panel_reads(&o);
    let rows = o.details["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 92);
    let first = &rows[0];
    assert!(first["conid"].as_i64().unwrap() >= 100000, "{first}");
    assert!(
        first["strategy_id"].as_str().unwrap().starts_with("strat-"),
        "{first}"
    );
    assert!(first["since"].as_str().is_some(), "{first}");
    assert!(
        o.message.starts_with("92 of 100 streaming slots used"),
        "{}",
        o.message
    );
    // A renamed column.
    let o = run(&instances(
        dir.path(),
        "[checks.slots]\nkind = \"strategy_slots\"\ntable = \"registry\"\nsince_column = \"started\"\n",
    )
    .remove(0))
    .await;
    assert_eq!(o.status, Status::Unknown);
    assert!(o.message.contains("has no column `started`"), "{}", o.message);
}

#[tokio::test]
async fn queue_backlog_counts_pending_rows_and_grades_the_oldest() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("queue");
    make(&["queue", table.to_str().unwrap(), "60", "500", "120"]);
    // By count only: 60 pending, warning at 50.
    let by_count = instances(
        dir.path(),
        "[checks.q]\nkind = \"queue_backlog\"\ntable = \"queue\"\n",
    )
    .remove(0);
    let o = run(&by_count).await;
    assert_eq!((o.status, o.value), (Status::Warning, Some(60.0)), "{o:?}");
    assert_eq!(o.details["total_rows"], 560);
    crate::panels::assert_writes_what_its_panel_reads(&o);
    let age = o.details["oldest_pending_age_s"].as_f64().unwrap();
    assert!((120.0..130.0).contains(&age), "{age}");
    // The oldest pending row is past max_age_crit: the worse grade wins.
    let by_age = instances(
        dir.path(),
        "[checks.q]\nkind = \"queue_backlog\"\ntable = \"queue\"\nmax_age_warn = \"30s\"\nmax_age_crit = \"1m\"\n",
    )
    .remove(0);
    let o = run(&by_age).await;
    assert_eq!(o.status, Status::Critical, "{o:?}");
    // The message names the thresholds that fired: the count's warn, the age's crit.
    assert!(
        o.message.starts_with(
            "60 pending reached warn 50; the oldest is 2m old, past max_age_crit 1m: 60 pending rows"
        ),
        "{}",
        o.message
    );
    // Another pending value: none of those.
    let none = instances(
        dir.path(),
        "[checks.q]\nkind = \"queue_backlog\"\ntable = \"queue\"\npending_value = \"QUEUED\"\n",
    )
    .remove(0);
    let o = run(&none).await;
    assert_eq!((o.status, o.value), (Status::Ok, Some(0.0)), "{o:?}");

    // Between commits the rows are not read again: with its data files gone (and no
    // commit saying so) the count is still the version's.
    for f in std::fs::read_dir(&table).unwrap().flatten() {
        if f.path().extension().is_some_and(|e| e == "parquet") {
            std::fs::remove_file(f.path()).unwrap();
        }
    }
    let o = run(&by_count).await;
    assert_eq!((o.status, o.value), (Status::Warning, Some(60.0)), "{o:?}");
    // A new commit: the table is read again (and the missing file is reported).
    make(&["queue", table.to_str().unwrap(), "1", "0", "10"]);
    let o = run(&by_count).await;
    assert_eq!(o.status, Status::Unknown, "{o:?}");
    assert!(o.message.contains("cannot read"), "{}", o.message);
}

#[tokio::test]
async fn force_sync_runs_the_command_then_checks_again() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("positions");
    make(&[table.to_str().unwrap(), "tz", "90"]);
    let script = make_script();
    let sync = format!(
        "force_sync = [\"{}\", \"{}\", \"{}\", \"tz\", \"1\"]\n",
        python().display(),
        script.display(),
        table.display()
    );
    let inst = check(
        dir.path(),
        "positions",
        &format!("column = \"synced_at\"\n{sync}"),
    );
    assert_eq!(run(&inst).await.status, Status::Critical);
    let c = inst.check().unwrap();
    assert_eq!(
        c.actions().iter().map(|a| a.name).collect::<Vec<_>>(),
        ["force_sync"]
    );
    let outcome = c.act("force_sync", &action_cx("positions")).await.expect("ran");
    assert!(outcome.ok, "{outcome:?}");
    assert!(outcome.message.ends_with("finished"), "{}", outcome.message);
    // Whoever performs the action looks again (crate::actions): the table is fresh now.
    assert_eq!(run(&inst).await.status, Status::Ok);
    assert_eq!(outcome.details["exit_code"], 0);

    let failing = check(
        dir.path(),
        "positions",
        "force_sync = [\"/bin/sh\", \"-c\", \"echo 'sync: gateway refused' >&2; exit 3\"]\n",
    );
    let outcome = failing
        .check()
        .unwrap()
        .act("force_sync", &action_cx("positions"))
        .await
        .expect("ran");
    assert!(!outcome.ok);
    // Why it failed is in the message the toast and the log show, not only in details.
    assert!(
        outcome
            .message
            .contains("failed (exit status: 3): sync: gateway refused"),
        "{}",
        outcome.message
    );
    assert_eq!(outcome.details["exit_code"], 3);
    assert_eq!(outcome.details["stderr"], "sync: gateway refused\n");

    let err = failing
        .check()
        .unwrap()
        .act("clear", &action_cx("positions"))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("has no action `clear` (it has: force_sync)"),
        "{err}"
    );
}

#[tokio::test]
async fn clear_marks_pending_rows_in_one_update_that_python_reads_and_history_keeps() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("queue");
    make(&["queue", table.to_str().unwrap(), "60", "500", "120"]);
    // A second file with one pending row, and a third with none: only the first two are
    // rewritten.
    make(&["queue", table.to_str().unwrap(), "1", "0", "10"]);
    make(&["queue", table.to_str().unwrap(), "0", "10", "10"]);
    let inst = instances(
        dir.path(),
        "[checks.q]\nkind = \"queue_backlog\"\ntable = \"queue\"\n",
    )
    .remove(0);
    assert_eq!(run(&inst).await.value, Some(61.0));
    let c = inst.check().unwrap();
    assert!(c.actions()[0].destructive);
    let outcome = c.act("clear", &action_cx("q")).await.expect("cleared");
    assert!(outcome.ok, "{outcome:?}");
    assert_eq!(outcome.details["cleared_rows"], 61);
    assert_eq!(outcome.details["files_rewritten"], 2);
    assert_eq!(outcome.details["version"], 3);

    let now = statuses(&table, None);
    assert_eq!(
        now["counts"],
        serde_json::json!({"DONE": 510, "CLEARED": 61}),
        "{now}"
    );
    assert_eq!(now["operation"], "UPDATE");
    let before = statuses(&table, Some(2));
    assert_eq!(
        before["counts"],
        serde_json::json!({"DONE": 510, "PENDING": 61}),
        "time travel keeps them pending"
    );
    let o = run(&inst).await;
    assert_eq!((o.status, o.value), (Status::Ok, Some(0.0)), "{o:?}");
    // Nothing left: a second clear is a no-op, not a new commit.
    let again = c.act("clear", &action_cx("q")).await.unwrap();
    assert_eq!(again.details["cleared_rows"], 0);
    assert_eq!(again.details["version"], 3);
}

#[tokio::test]
async fn without_log_statistics_the_parquet_footers_tell_once_per_file() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("option_snapshots");
    // Statistics for `conid` only: the log cannot tell `synced_at`'s max.
    make(&[table.to_str().unwrap(), "tz", "40", "2", "nostats"]);
    let log = std::fs::read_to_string(table.join("_delta_log/00000000000000000000.json")).unwrap();
    assert!(
        !log.contains("synced_at\\\":"),
        "the writer kept stats after all: {log}"
    );
    let check = check(dir.path(), "option_snapshots", "column = \"synced_at\"\n");
    let first = run(&check).await;
    assert_eq!(first.status, Status::Warning, "{first:?}");
    assert!((40.0..45.0).contains(&first.value.unwrap()), "{first:?}");
    assert_eq!(first.details["footers_read"], 2, "one footer per file");
    // Nothing new: nothing read.
    let again = run(&check).await;
    assert_eq!(again.details["footers_read"], 2);
    // A new file: only its footer is read.
    make(&[table.to_str().unwrap(), "tz", "3"]);
    let after = run(&check).await;
    assert_eq!(after.status, Status::Ok, "{after:?}");
    assert!((3.0..8.0).contains(&after.value.unwrap()), "{after:?}");
    assert_eq!(after.details["footers_read"], 3);
}

/// Writes a table with the Rust crate: `synced_at` (tz-aware) in `commits` commits, the
/// newest row `age_s` seconds old.
async fn rust_table(path: &Path, age_s: i64, commits: i64) {
    use std::sync::Arc;

    use deltalake::arrow::array::{Int64Array, RecordBatch, TimestampMicrosecondArray};
    use deltalake::arrow::datatypes::{DataType as A, Field, Schema, TimeUnit};
    use deltalake::kernel::{DataType, StructField};
    use deltalake::writer::{DeltaWriter, RecordBatchWriter};

    std::fs::create_dir_all(path).unwrap();
    let url = deltalake::table::builder::ensure_table_uri(path.to_str().unwrap()).unwrap();
    let mut table = deltalake::DeltaTable::try_from_url(url)
        .await
        .unwrap()
        .create()
        .with_columns([
            StructField::new("conid", DataType::LONG, false),
            StructField::new("synced_at", DataType::TIMESTAMP, false),
        ])
        .await
        .unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("conid", A::Int64, false),
        Field::new(
            "synced_at",
            A::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
    ]));
    let now = chrono::Utc::now().timestamp_micros();
    for i in 0..commits {
        let t = now - (age_s + (commits - 1 - i) * 60) * 1_000_000;
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![i, i + 100])),
                Arc::new(TimestampMicrosecondArray::from(vec![t - 30_000_000, t]).with_timezone("UTC")),
            ],
        )
        .unwrap();
        let mut writer = RecordBatchWriter::for_table(&table).unwrap();
        writer.write(batch).await.unwrap();
        writer.flush_and_commit(&mut table).await.unwrap();
    }
}

#[tokio::test]
async fn tables_written_by_the_rust_crate_read_the_same() {
    let dir = tempfile::tempdir().unwrap();
    rust_table(&dir.path().join("legs"), 35, 3).await;
    let o = run(&check(dir.path(), "legs", "column = \"synced_at\"\n")).await;
    assert_eq!(
        (o.status, o.label.as_deref()),
        (Status::Warning, Some("WARNING")),
        "{o:?}"
    );
    assert!((35.0..40.0).contains(&o.value.unwrap()), "{o:?}");
    assert_eq!(o.details["version"], 3, "create + 3 appends");
    assert_eq!(o.details["footers_read"], 0, "the Rust writer keeps statistics");
    let by_commit = run(&check(dir.path(), "legs", "")).await;
    assert_eq!(by_commit.status, Status::Ok, "{by_commit:?}");
}
