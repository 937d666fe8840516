//! What the Delta Lake checks and the delta sink share: where a configured table is,
//! opening an existing table, and one-line error text.

use std::path::Path;

use deltalake::arrow::array::{Array, RecordBatch, StringArray};
use deltalake::kernel::{StructField, StructType};
use deltalake::logstore::object_store::ObjectStoreExt;
use deltalake::logstore::{LogStoreRef, commit_uri_from_version};
use deltalake::parquet::arrow::ProjectionMask;
use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use deltalake::parquet::basic::{LogicalType, TimeUnit};
use deltalake::parquet::file::metadata::{FooterTail, ParquetMetaDataReader};
use deltalake::parquet::file::statistics::Statistics;
use deltalake::{DeltaTable, DeltaTableError, ObjectStore, ObjectStoreError};
use tokio_util::bytes::Bytes;

/// The URI schemes this build reads and writes Delta tables with (besides plain paths).
#[cfg(not(feature = "s3"))]
pub const SCHEMES: &[&str] = &["file"];
/// The URI schemes this build reads and writes Delta tables with (besides plain paths):
/// with the `s3` feature, S3 and S3-compatible stores.
#[cfg(feature = "s3")]
pub const SCHEMES: &[&str] = &["file", "s3", "s3a"];

/// Options of a table's object store (`storage_options`): endpoint, region, path style…
/// as deltalake and object_store name them (`AWS_ENDPOINT_URL`, `AWS_REGION`,
/// `AWS_ALLOW_HTTP`, `AWS_VIRTUAL_HOSTED_STYLE_REQUEST`…). Credentials come from the
/// usual `AWS_*` environment variables, not from the config.
pub type StorageOptions = std::collections::BTreeMap<String, String>;

/// The `storage_options` keys that hold credentials: refused in the config (it is not a
/// place for secrets); the environment (`AWS_ACCESS_KEY_ID`…) is.
const SECRET_OPTIONS: [&str; 4] = [
    "aws_secret_access_key",
    "aws_session_token",
    "secret_access_key",
    "session_token",
];

/// Checks `storage_options` at load time: no credentials, and only for a URI.
pub fn storage_options_key(table: &str, options: &StorageOptions) -> Option<crate::plugin::KeyError> {
    let error = |m: String| Some(crate::plugin::KeyError::new("storage_options", m));
    if options.is_empty() {
        return None;
    }
    if !table.contains("://") {
        return error("only tables given as a URI (s3://bucket/path) have storage options".into());
    }
    if let Some(k) = options
        .keys()
        .find(|k| SECRET_OPTIONS.contains(&k.to_ascii_lowercase().as_str()))
    {
        return error(format!(
            "`{k}` is a credential: the config is no place for it; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in vitals' environment (the service's EnvironmentFile)"
        ));
    }
    None
}

/// The options as deltalake takes them.
pub fn options_map(options: &StorageOptions) -> std::collections::HashMap<String, String> {
    options.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// Checks a table's `table` key at load time: `what` names the table ("the alerts
/// table"). Empty, or a URI whose scheme this build cannot read, is an error at the
/// key, so `validate` refuses what the build could only fail on at run time.
pub fn table_key(table: &str, what: &str) -> Option<crate::plugin::KeyError> {
    let error = |m: String| Some(crate::plugin::KeyError::new("table", m));
    if table.trim().is_empty() {
        return error(format!("must name {what}'s path or URI"));
    }
    let (scheme, _) = table.split_once("://")?;
    if SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()) {
        return None;
    }
    error(format!(
        "this build cannot read `{scheme}://` tables: it reads local paths and {} URIs. \
         S3 and S3-compatible stores need a build with `--features s3`; \
         otherwise give a local path (or a mounted one)",
        SCHEMES
            .iter()
            .map(|s| format!("{s}://"))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// A configured table location: a URI as is, a path resolved against the config file's
/// directory.
pub fn location(table: &str, config_dir: &Path) -> String {
    if table.contains("://") || Path::new(table).is_absolute() {
        table.to_owned()
    } else {
        config_dir.join(table).display().to_string()
    }
}

/// The column `name` of a table's schema, or why not, naming the columns it has.
pub fn field<'s>(schema: &'s StructType, location: &str, name: &str) -> Result<&'s StructField, String> {
    schema.field(name).ok_or_else(|| {
        let names: Vec<String> = schema.fields().map(|f| f.name().to_string()).collect();
        format!(
            "{location} has no column `{name}`; its columns: {}",
            names.join(", ")
        )
    })
}

/// The first line of a deltalake error (some carry long debug dumps).
pub fn error_line(e: &DeltaTableError) -> String {
    e.to_string().lines().next().unwrap_or_default().to_owned()
}

/// Why an existing table could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// It is not there (or not a Delta table): the data is gone.
    Missing(String),
    /// Anything else.
    Other(String),
}

/// Opens a table that must already exist (never creates a folder for a missing one).
pub async fn open_existing(location: &str, options: &StorageOptions) -> Result<DeltaTable, OpenError> {
    let path = Path::new(location);
    if !location.contains("://") && !path.join("_delta_log").exists() {
        let what = if path.exists() {
            "is not a Delta table (no _delta_log)"
        } else {
            "does not exist"
        };
        return Err(OpenError::Missing(format!("{location} {what}")));
    }
    let url = deltalake::table::builder::ensure_table_uri(location)
        .map_err(|e| OpenError::Other(format!("bad table location {location}: {}", error_line(&e))))?;
    deltalake::open_table_with_storage_options(url, options_map(options))
        .await
        .map_err(|e| match e {
            DeltaTableError::NotATable(_) => OpenError::Missing(format!("{location} is not a Delta table")),
            e => OpenError::Other(format!("cannot open {location}: {}", error_line(&e))),
        })
}

/// Reads `columns` of every live row of an existing table, only those columns, from its
/// data files. Columns come back by name (their order in a batch is the file's), with
/// the file's types (Python writes strings as LargeUtf8: cast before comparing). Tables a
/// plain Parquet read would get wrong — deletion vectors, the columns being partition
/// columns — are refused, never read wrongly.
/// The result of [`read_columns`].
pub type Columns = Result<Vec<RecordBatch>, OpenError>;

pub async fn read_columns(location: &str, options: &StorageOptions, columns: &[&str]) -> Columns {
    read_columns_at(location, options, columns)
        .await
        .map(|(_, _, batches)| batches)
}

/// How long a table that looks unchanged (no next commit file) goes without its current
/// commit file being looked at again, to notice that it vanished.
pub const CONFIRM_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// [`read_columns`], plus the table's log store and the version read.
async fn read_columns_at(
    location: &str,
    options: &StorageOptions,
    columns: &[&str],
) -> Result<(LogStoreRef, u64, Vec<RecordBatch>), OpenError> {
    let table = open_existing(location, options).await?;
    let other =
        |what: &str, e: &DeltaTableError| OpenError::Other(format!("{what} {location}: {}", error_line(e)));
    let version = table
        .version()
        .ok_or_else(|| OpenError::Other(format!("{location} has no commits")))?;
    let state = table
        .snapshot()
        .map_err(|e| other("cannot read the state of", &e))?;
    let schema = state.schema();
    for name in columns {
        field(&schema, location, name).map_err(OpenError::Other)?;
    }
    let actions = state
        .add_actions_table(true)
        .map_err(|e| other("cannot list the files of", &e))?;
    let fields: Vec<&StructField> = columns.iter().filter_map(|c| schema.field(c)).collect();
    refuse_unreadable(location, &actions, &fields).map_err(OpenError::Other)?;
    let paths = actions
        .column_by_name("path")
        .and_then(|p| p.as_any().downcast_ref::<StringArray>())
        .ok_or_else(|| OpenError::Other(format!("{location}: no file list")))?;
    let store = table.log_store().object_store(None);
    let mut batches = Vec::new();
    for i in 0..paths.len() {
        let path = deltalake::Path::from_url_path(paths.value(i))
            .map_err(|e| OpenError::Other(format!("bad file path in {location}: {e}")))?;
        let read_err = |e: String| OpenError::Other(format!("cannot read {path} of {location}: {e}"));
        let bytes: Bytes = store
            .get(&path)
            .await
            .map_err(|e| read_err(e.to_string()))?
            .bytes()
            .await
            .map_err(|e| read_err(e.to_string()))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| read_err(e.to_string()))?;
        let mask = ProjectionMask::columns(builder.parquet_schema(), columns.iter().copied());
        let reader = builder
            .with_projection(mask)
            .build()
            .map_err(|e| read_err(e.to_string()))?;
        for batch in reader {
            batches.push(batch.map_err(|e| read_err(e.to_string()))?);
        }
    }
    Ok((table.log_store(), version, batches))
}

/// Where a table was last read, and how to tell whether it moved on since: one HEAD of
/// the next commit file per call. What the Delta checks keep between runs instead of a
/// snapshot.
pub struct Watch {
    /// The table's log store.
    pub store: LogStoreRef,
    /// The version last read.
    pub version: u64,
    /// When the current commit file was last known to be there.
    confirmed: tokio::time::Instant,
    /// HEAD requests made so far (shown in details, for tests and benchmarks).
    pub heads: u64,
}

impl Watch {
    /// A table just read at `version`.
    pub fn new(store: LogStoreRef, version: u64) -> Watch {
        Watch {
            store,
            version,
            confirmed: tokio::time::Instant::now(),
            heads: 0,
        }
    }

    /// Whether a commit was made after the version read. With nothing new, the current
    /// commit file is looked at too — when `confirm`, or [`CONFIRM_EVERY`] after it was
    /// last seen — so a table that vanished is reported as `Missing`, not as unchanged.
    pub async fn moved_on(&mut self, location: &str, confirm: bool) -> Result<bool, OpenError> {
        let store = self.store.object_store(None);
        let unreachable = |e: ObjectStoreError| OpenError::Other(format!("cannot reach {location}: {e}"));
        self.heads += 1;
        match store.head(&commit_uri_from_version(Some(self.version + 1))).await {
            Ok(_) => return Ok(true),
            Err(ObjectStoreError::NotFound { .. }) => {}
            Err(e) => return Err(unreachable(e)),
        }
        if !confirm && self.confirmed.elapsed() < CONFIRM_EVERY {
            return Ok(false);
        }
        self.heads += 1;
        match store.head(&commit_uri_from_version(Some(self.version))).await {
            Ok(_) => {
                self.confirmed = tokio::time::Instant::now();
                Ok(false)
            }
            Err(ObjectStoreError::NotFound { .. }) => {
                Err(OpenError::Missing(format!("{location} has disappeared")))
            }
            Err(e) => Err(unreachable(e)),
        }
    }

    /// The table was read up to `version` (its commits are there).
    pub fn read_to(&mut self, version: u64) {
        self.version = version;
        self.confirmed = tokio::time::Instant::now();
    }
}

/// A table's columns kept between runs: read whole once per version, and between
/// commits a run costs one HEAD of the next commit file (plus, every
/// [`CONFIRM_EVERY`], one of the current, so a vanished table is reported).
#[derive(Default)]
pub struct KeptColumns {
    state: tokio::sync::Mutex<Option<Kept>>,
}

struct Kept {
    watch: Watch,
    batches: Vec<RecordBatch>,
}

impl KeptColumns {
    /// The columns of the table's latest version (the same `columns` on every call), read
    /// again only when a commit was made since the last read.
    pub async fn read(
        self: std::sync::Arc<Self>,
        location: String,
        options: StorageOptions,
        columns: Vec<String>,
    ) -> Columns {
        let mut slot = self.state.lock().await;
        if let Some(kept) = slot.as_mut() {
            match kept.watch.moved_on(&location, false).await {
                Ok(false) => return Ok(kept.batches.clone()),
                Ok(true) => {}
                Err(e) => {
                    *slot = None;
                    return Err(e);
                }
            }
        }
        *slot = None;
        let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
        let (store, version, batches) = read_columns_at(&location, &options, &columns).await?;
        *slot = Some(Kept {
            watch: Watch::new(store, version),
            batches: batches.clone(),
        });
        Ok(batches)
    }
}

/// Refuses what a plain read of the Parquet files (rows or footers) would get wrong:
/// deletion vectors (the files still hold the deleted rows), partition columns (not in
/// the files) and column mapping (the files name the columns differently).
pub fn refuse_unreadable(
    location: &str,
    actions: &RecordBatch,
    fields: &[&StructField],
) -> Result<(), String> {
    for field in actions.schema().fields() {
        let Some(col) = actions.column_by_name(field.name()) else {
            continue;
        };
        if field.name().starts_with("deletionVector") && col.null_count() < col.len() {
            return Err(format!(
                "{location} uses deletion vectors, which vitals cannot read yet"
            ));
        }
        if let Some(p) = field.name().strip_prefix("partition.")
            && fields.iter().any(|f| f.name() == p)
        {
            return Err(format!(
                "column `{p}` of {location} is a partition column, which vitals cannot read yet"
            ));
        }
    }
    for f in fields {
        if f.metadata.contains_key("delta.columnMapping.physicalName") {
            return Err(format!(
                "{location} uses column mapping (column `{}`), which vitals cannot read yet",
                f.name()
            ));
        }
    }
    Ok(())
}

/// The largest value of timestamp column `column` in one Parquet data file of `size`
/// bytes, from the statistics in its footer (exact to the file's unit; two small range
/// reads, no rows): microseconds since the epoch, `None` when the file holds no
/// non-null value.
pub async fn footer_max_micros(
    store: &dyn ObjectStore,
    path: &deltalake::Path,
    size: u64,
    column: &str,
) -> Result<Option<i64>, String> {
    if size < 8 {
        return Err(format!("{path} is too short for a Parquet file"));
    }
    let tail = store
        .get_range(path, size - 8..size)
        .await
        .map_err(|e| e.to_string())?;
    let tail: [u8; 8] = tail.as_ref().try_into().map_err(|_| "short read".to_owned())?;
    let len = FooterTail::try_new(&tail)
        .map_err(|e| e.to_string())?
        .metadata_length() as u64;
    if len + 8 > size {
        return Err(format!("{path} has a corrupt footer"));
    }
    let buf = store
        .get_range(path, size - 8 - len..size - 8)
        .await
        .map_err(|e| e.to_string())?;
    let meta = ParquetMetaDataReader::decode_metadata(&buf).map_err(|e| e.to_string())?;
    let schema = meta.file_metadata().schema_descr();
    let Some(idx) = (0..schema.num_columns()).find(|&i| schema.column(i).path().string() == column) else {
        return Err(format!("{path} has no column `{column}`"));
    };
    let per_micro: fn(i64) -> i64 = match schema.column(idx).logical_type_ref() {
        Some(LogicalType::Timestamp(t)) => match t.unit {
            TimeUnit::MILLIS => |v| v.saturating_mul(1000),
            TimeUnit::MICROS => |v| v,
            TimeUnit::NANOS => |v| v.div_euclid(1000),
        },
        other => {
            return Err(format!(
                "`{column}` in {path} is stored as {other:?}, not a timestamp"
            ));
        }
    };
    let mut max = None;
    for rg in meta.row_groups() {
        let chunk = rg.column(idx);
        match chunk.statistics() {
            Some(Statistics::Int64(s)) => {
                if let Some(v) = s.max_opt() {
                    max = max.max(Some(per_micro(*v)));
                } else if s.null_count_opt() != Some(rg.num_rows() as u64) {
                    return Err(format!("{path} keeps no max of `{column}` in its footer"));
                }
            }
            _ if rg.num_rows() == 0 => {}
            _ => return Err(format!("{path} keeps no statistics of `{column}` in its footer")),
        }
    }
    Ok(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_key_takes_paths_and_the_schemes_this_build_reads() {
        for ok in ["data/positions", "/srv/t", "file:///srv/t", "FILE:///srv/t"] {
            assert_eq!(table_key(ok, "the table"), None, "{ok}");
        }
        let e = table_key("gs://desk/positions", "the table").unwrap();
        assert_eq!(e.key, "table");
        assert!(
            e.message
                .starts_with("this build cannot read `gs://` tables: it reads local paths and file://"),
            "{}",
            e.message
        );
        // s3:// with the `s3` feature only.
        assert_eq!(
            table_key("s3://desk/positions", "the table").is_none(),
            cfg!(feature = "s3")
        );
        assert_eq!(
            table_key(" ", "the alerts table").unwrap().message,
            "must name the alerts table's path or URI"
        );
    }

    #[test]
    fn storage_options_take_no_credentials_and_need_a_uri() {
        let options = |pairs: &[(&str, &str)]| -> StorageOptions {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let endpoint = options(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")]);
        assert_eq!(storage_options_key("s3://desk/t", &endpoint), None);
        assert_eq!(storage_options_key("data/t", &StorageOptions::new()), None);
        let e = storage_options_key("data/t", &endpoint).unwrap();
        assert!(
            e.message.starts_with("only tables given as a URI"),
            "{}",
            e.message
        );
        let e = storage_options_key("s3://desk/t", &options(&[("AWS_SECRET_ACCESS_KEY", "x")])).unwrap();
        assert_eq!(e.key, "storage_options");
        assert!(e.message.contains("is a credential"), "{}", e.message);
    }
}
