//! delta_freshness cost on tables with 100, 1,000 and 10,000 commits (checkpointed every
//! 100 commits, as the writers do by default): the first run and a steady-state run
//! (nothing new committed), against the Python baselines an operator would write today,
//! measured in the same run, and against the physical limit (one HEAD of the next
//! commit file).
//!
//! `cargo bench --bench freshness -- [--max-commits 10000]`

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use deltalake::DeltaTable;
use deltalake::arrow::array::{Int64Array, RecordBatch, TimestampMicrosecondArray};
use deltalake::arrow::datatypes::{DataType as ArrowType, Field, Schema, TimeUnit};
use deltalake::kernel::{DataType, StructField};
use deltalake::logstore::commit_uri_from_version;
use deltalake::logstore::object_store::ObjectStoreExt;
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use vitals::check::BuildContext;
use vitals::config::parse;
use vitals::registry::registry;
use vitals::runner::Instance;

use common::root;

async fn make_table(path: &Path, commits: usize, rows: usize) {
    let url = deltalake::ensure_table_uri(path.to_str().unwrap()).unwrap();
    let mut table = DeltaTable::try_from_url(url.clone())
        .await
        .unwrap()
        .create()
        .with_columns(vec![
            StructField::new("conid", DataType::LONG, false),
            StructField::new("synced_at", DataType::TIMESTAMP, false),
        ])
        .await
        .unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("conid", ArrowType::Int64, false),
        Field::new(
            "synced_at",
            ArrowType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
    ]));
    for i in 1..commits {
        if i % 100 == 0 {
            table = deltalake::open_table(url.clone()).await.unwrap();
        }
        let now = chrono::Utc::now().timestamp_micros();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from_iter_values(
                    (0..rows).map(|r| (i * rows + r) as i64),
                )),
                Arc::new(
                    TimestampMicrosecondArray::from_iter_values((0..rows).map(|r| now - r as i64))
                        .with_timezone("UTC"),
                ),
            ],
        )
        .unwrap();
        let mut writer = RecordBatchWriter::for_table(&table).unwrap();
        writer.write(batch).await.unwrap();
        writer.flush_and_commit(&mut table).await.unwrap();
    }
}

fn instance(dir: &Path, table: &Path, column: bool) -> Instance {
    let col = if column { "column = \"synced_at\"\n" } else { "" };
    let text = format!(
        "[checks.t]\nkind = \"delta_freshness\"\ntable = \"{}\"\ntimeout = \"60s\"\nwarn = \"1h\"\ncrit = \"2h\"\n{col}",
        table.display()
    );
    let mut config = parse(&dir.join("v.toml"), &text, registry().unwrap()).unwrap();
    let spec = config.checks.remove(0);
    let cx = BuildContext::standalone(&spec.id, spec.kind, dir);
    Instance::from_spec(spec, cx)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The first run of a new instance, and the medians of steady runs and of HEADs.
async fn vitals_costs(dir: &Path, table: &Path, column: bool) -> (f64, f64, f64) {
    let first = {
        let i = instance(dir, table, column);
        let t = Instant::now();
        let o = i.run_once(tokio::time::Instant::now()).await;
        assert_eq!(o.status, vitals::check::Status::Ok, "{o:?}");
        t.elapsed().as_secs_f64() * 1000.0
    };
    let i = instance(dir, table, column);
    i.run_once(tokio::time::Instant::now()).await;
    // Steady runs and HEADs of the next commit file interleaved, so both see the same
    // machine (a warm-up, a busy neighbour) and their ratio is fair.
    let url = deltalake::ensure_table_uri(table.to_str().unwrap()).unwrap();
    let t = deltalake::open_table(url).await.unwrap();
    let store = t.log_store().object_store(None);
    let next = commit_uri_from_version(Some(t.version().unwrap() + 1));
    let mut steady = Vec::new();
    let mut heads = Vec::new();
    for _ in 0..1000 {
        let h = Instant::now();
        let _ = store.head(&next).await;
        heads.push(h.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        let o = i.run_once(tokio::time::Instant::now()).await;
        steady.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(o.details["commits_read"], 1, "steady state must read no commit");
        assert_eq!(
            o.status,
            vitals::check::Status::Ok,
            "a fresh table: one HEAD per run"
        );
    }
    (first, median(steady), median(heads))
}

fn python(table: &Path, runs: usize) -> serde_json::Value {
    let out = Command::new(root().join(".venv/bin/python"))
        .arg(root().join("tests/support/freshness_baseline.py"))
        .arg(table)
        .arg(runs.to_string())
        .arg("synced_at")
        .output()
        .expect(".venv (scripts/test.sh makes it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let max: usize = args
        .iter()
        .position(|a| a == "--max-commits")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(10_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "| commits | vitals first run | vitals steady (commit time) | vitals steady (column) | one HEAD | Python open + history(1) | Python kept open | Python column max | open+history / steady | kept open / steady | steady / one HEAD |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    rt.block_on(async {
        for commits in [100, 1_000, 10_000].into_iter().filter(|c| *c <= max) {
            let dir = tempfile::tempdir().unwrap();
            let table = dir.path().join("t");
            let t = Instant::now();
            make_table(&table, commits, 1).await;
            eprintln!("made {commits} commits in {:.1} s", t.elapsed().as_secs_f64());
            let (first, steady, head) = vitals_costs(dir.path(), &table, false).await;
            let (_, steady_col, _) = vitals_costs(dir.path(), &table, true).await;
            let py = python(&table, if commits >= 10_000 { 5 } else { 20 });
            let open = py["open_history_ms"].as_f64().unwrap();
            let kept = py["kept_open_ms"].as_f64().unwrap();
            println!(
                "| {commits} | {first:.2} ms | {steady:.3} ms | {steady_col:.3} ms | {head:.3} ms | {open:.1} ms | {kept:.2} ms | {:.1} ms | {:.0}× | {:.0}× | {:.1}× |",
                py["column_max_ms"].as_f64().unwrap(),
                open / steady,
                kept / steady,
                steady / head
            );
        }
        // Rows do not matter: 1,000,000 rows in 1,000 files.
        let dir = tempfile::tempdir().unwrap();
        let table = dir.path().join("t");
        let t = Instant::now();
        make_table(&table, 1_001, 1_000).await;
        eprintln!("made 1,000,000 rows in {:.1} s", t.elapsed().as_secs_f64());
        let (first, steady, _) = vitals_costs(dir.path(), &table, false).await;
        let (first_col, steady_col, _) = vitals_costs(dir.path(), &table, true).await;
        let py = python(&table, 5);
        let col = py["column_max_ms"].as_f64().unwrap();
        println!();
        println!(
            "| 1,000,000 rows / 1,000 files | vitals first run | vitals first run (column) | vitals steady (commit time) | vitals steady (column) | Python open + history(1) | Python column max | column max / steady |"
        );
        println!("|---|---|---|---|---|---|---|---|");
        println!(
            "| | {first:.2} ms | {first_col:.2} ms | {steady:.3} ms | {steady_col:.3} ms | {:.1} ms | {col:.1} ms | {:.0}× |",
            py["open_history_ms"].as_f64().unwrap(),
            col / steady_col
        );
    });
}
