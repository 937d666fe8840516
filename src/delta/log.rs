//! The Delta commit log, read directly: one commit file (newline-delimited JSON
//! actions) says when it was made, by which operation, and which files it adds with
//! their statistics. What `delta_freshness` reads commit by commit instead of loading
//! the table's whole state again.

use chrono::{DateTime, NaiveDateTime, Utc};

/// Where a new file's column max comes from.
#[derive(Debug, PartialEq)]
pub enum FileMax {
    /// Its log entry's statistics (none: the file holds only nulls there).
    Stats(Option<i64>),
    /// Its Parquet footer (the log entry has no statistics for the column).
    Footer,
}

/// A file a commit adds.
#[derive(Debug, PartialEq)]
pub struct Added {
    /// Its path in the table.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// Where its max of the watched column comes from.
    pub max: FileMax,
}

/// What one commit file says.
#[derive(Debug, Default, PartialEq)]
pub struct Commit {
    /// `commitInfo.timestamp`.
    pub at: Option<DateTime<Utc>>,
    /// `commitInfo.operation`.
    pub operation: Option<String>,
    /// The files added (read only when a column is watched).
    pub adds: Vec<Added>,
    /// Whether it removes files or changes the schema, protocol or a file's deletion
    /// vector: the column max must be read from the whole table again.
    pub reshapes: bool,
}

impl Commit {
    /// Parses a commit file (newline-delimited JSON actions); with `column`, also each
    /// added file's max of it.
    pub fn parse(bytes: &[u8], column: Option<&str>) -> Result<Commit, String> {
        let mut commit = Commit::default();
        for line in std::str::from_utf8(bytes).map_err(|e| e.to_string())?.lines() {
            if line.trim().is_empty() {
                continue;
            }
            let v: serde_json::Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
            if let Some(info) = v.get("commitInfo") {
                commit.at = info
                    .get("timestamp")
                    .and_then(serde_json::Value::as_i64)
                    .and_then(DateTime::from_timestamp_millis);
                commit.operation = info.get("operation").and_then(|o| o.as_str()).map(str::to_owned);
            }
            let Some(column) = column else { continue };
            if v.get("remove").is_some() || v.get("metaData").is_some() || v.get("protocol").is_some() {
                commit.reshapes = true;
            }
            if let Some(add) = v.get("add") {
                if add.get("deletionVector").is_some_and(|d| !d.is_null()) {
                    commit.reshapes = true;
                }
                let path = add
                    .get("path")
                    .and_then(|p| p.as_str())
                    .ok_or("an add action without a path")?;
                let size = add
                    .get("size")
                    .and_then(serde_json::Value::as_u64)
                    .ok_or("an add action without a size")?;
                commit.adds.push(Added {
                    path: path.to_owned(),
                    size,
                    max: stats_max(add.get("stats").and_then(|s| s.as_str()), column),
                });
            }
        }
        Ok(commit)
    }
}

/// A file's max of `column` from its `add.stats` JSON: `maxValues.<column>` (a
/// timestamp string, with or without a zone), none when every value is null, else the
/// footer must tell.
fn stats_max(stats: Option<&str>, column: &str) -> FileMax {
    let Some(stats) = stats.and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok()) else {
        return FileMax::Footer;
    };
    if let Some(max) = stats
        .pointer(&format!("/maxValues/{column}"))
        .and_then(|m| m.as_str())
        && let Some(micros) = timestamp_micros(max)
    {
        return FileMax::Stats(Some(micros));
    }
    let nulls = stats
        .pointer(&format!("/nullCount/{column}"))
        .and_then(serde_json::Value::as_i64);
    let records = stats.get("numRecords").and_then(serde_json::Value::as_i64);
    match (nulls, records) {
        (Some(n), Some(r)) if n == r => FileMax::Stats(None),
        _ => FileMax::Footer,
    }
}

/// A statistics timestamp: RFC 3339 (`…Z`, `…+00:00`) or zoneless (timestamp_ntz, read
/// as UTC like the rest of vitals does).
fn timestamp_micros(s: &str) -> Option<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_micros());
    }
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc().timestamp_micros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_says_its_time_operation_and_the_maxima_of_its_files() {
        let commit = br#"{"add":{"path":"part-1.parquet","size":900,"stats":"{\"numRecords\":2,\"minValues\":{\"synced_at\":\"2026-11-30T05:30:50.000Z\"},\"maxValues\":{\"synced_at\":\"2026-11-30T05:30:52.523Z\"},\"nullCount\":{\"synced_at\":0}}"}}
{"add":{"path":"part-2.parquet","size":800,"stats":"{\"numRecords\":3,\"nullCount\":{\"synced_at\":3}}"}}
{"add":{"path":"part-3.parquet","size":700,"stats":null}}
{"add":{"path":"part-4.parquet","size":600,"stats":"{\"numRecords\":1,\"maxValues\":{\"synced_at\":\"2026-11-30T05:30:53.5\"}}"}}
{"commitInfo":{"timestamp":1796016652600,"operation":"WRITE"}}
"#;
        let c = Commit::parse(commit, Some("synced_at")).unwrap();
        assert_eq!(c.at, DateTime::from_timestamp_millis(1_796_016_652_600));
        assert_eq!(c.operation.as_deref(), Some("WRITE"));
        assert!(!c.reshapes);
        let maxes: Vec<&FileMax> = c.adds.iter().map(|a| &a.max).collect();
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().timestamp_micros();
        assert_eq!(
            maxes,
            [
                &FileMax::Stats(Some(at("2026-11-30T05:30:52.523Z"))),
                &FileMax::Stats(None),
                &FileMax::Footer,
                &FileMax::Stats(Some(at("2026-11-30T05:30:53.5Z"))),
            ]
        );
        assert_eq!((c.adds[2].path.as_str(), c.adds[2].size), ("part-3.parquet", 700));
        // Without a column only the commitInfo is read.
        let c = Commit::parse(commit, None).unwrap();
        assert!(c.adds.is_empty());
        assert_eq!(c.operation.as_deref(), Some("WRITE"));
    }

    #[test]
    fn removes_schema_changes_and_deletion_vectors_mean_reading_the_table_again() {
        for line in [
            r#"{"remove":{"path":"part-1.parquet","deletionTimestamp":1,"dataChange":true}}"#,
            r#"{"metaData":{"id":"x","format":{"provider":"parquet"},"schemaString":"{}","partitionColumns":[]}}"#,
            r#"{"protocol":{"minReaderVersion":3,"minWriterVersion":7}}"#,
            r#"{"add":{"path":"p","size":1,"deletionVector":{"storageType":"u"}}}"#,
        ] {
            assert!(
                Commit::parse(line.as_bytes(), Some("t")).unwrap().reshapes,
                "{line}"
            );
            assert!(!Commit::parse(line.as_bytes(), None).unwrap().reshapes, "{line}");
        }
        assert!(Commit::parse(b"{\"add\": {truncated", Some("t")).is_err());
    }
}
