//! What every Delta table of vitals shares — the tables the checks read (positions,
//! the strategy registry, the queue) and the tables vitals writes (alerts, history):
//! where a configured table is and its keys ([`TableKeys`]), how a table's columns are
//! declared once ([`columns`]), opening and creating ([`open`]), reading rows and
//! watching for new commits ([`read`]), and the commit log ([`log`]).

pub mod columns;
pub mod log;
pub mod open;
pub mod read;

use std::path::Path;

use deltalake::DeltaTableError;
use deltalake::kernel::{StructField, StructType};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use open::{OpenError, open_existing, open_or_create};
pub use read::{
    CONFIRM_EVERY, Columns, KeptColumns, Watch, footer_max_micros, read_columns, refuse_unreadable,
};

use crate::plugin::KeyError;

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

/// The keys that say where a Delta table is, shared by every kind and section that
/// names one (`delta_freshness`, `strategy_slots`, `queue_backlog`, the `delta` sink,
/// `[history]`): flattened into their config (`#[serde(flatten)]`), validated once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TableKeys {
    /// Path of the Delta table, or a `file://` URI, or with the `s3` feature an `s3://`
    /// URI (`validate` refuses schemes this build cannot read or write). Relative paths resolve
    /// against the config file's directory.
    pub table: String,
    /// Options of the table's object store, for an `s3://` table (a build with the `s3`
    /// feature): e.g. `{ AWS_ENDPOINT_URL = "http://127.0.0.1:9000", AWS_REGION =
    /// "us-east-1", AWS_ALLOW_HTTP = "true" }` for an S3-compatible store. Credentials
    /// come from the usual `AWS_*` environment variables, never from here.
    #[serde(default)]
    pub storage_options: StorageOptions,
}

impl TableKeys {
    /// The problems of both keys; `what` names the table in messages ("the queue
    /// table").
    pub fn validate(&self, what: &str) -> Vec<KeyError> {
        table_key(&self.table, what)
            .into_iter()
            .chain(storage_options_key(&self.table, &self.storage_options))
            .collect()
    }

    /// Where the table is, with relative paths resolved against `config_dir`.
    pub fn resolve(&self, config_dir: &Path) -> TableRef {
        TableRef {
            location: location(&self.table, config_dir),
            options: self.storage_options.clone(),
        }
    }
}

/// A table, resolved: its location (a path or a URI) and its object store's options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRef {
    /// A path or a URI.
    pub location: String,
    /// Its object store's options.
    pub options: StorageOptions,
}

impl TableRef {
    /// A local table with no options.
    pub fn local(path: &Path) -> TableRef {
        TableRef {
            location: path.display().to_string(),
            options: StorageOptions::new(),
        }
    }
}

/// The `storage_options` keys that hold credentials: refused in the config (it is not a
/// place for secrets); the environment (`AWS_ACCESS_KEY_ID`…) is.
const SECRET_OPTIONS: [&str; 4] = [
    "aws_secret_access_key",
    "aws_session_token",
    "secret_access_key",
    "session_token",
];

/// Checks `storage_options` at load time: no credentials, and only for a URI.
pub fn storage_options_key(table: &str, options: &StorageOptions) -> Option<KeyError> {
    let error = |m: String| Some(KeyError::new("storage_options", m));
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
pub fn table_key(table: &str, what: &str) -> Option<KeyError> {
    let error = |m: String| Some(KeyError::new("table", m));
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

    #[test]
    fn table_keys_validate_both_keys_at_once() {
        let keys = TableKeys {
            table: "gs://x/y".into(),
            storage_options: [("AWS_SESSION_TOKEN".to_owned(), "t".to_owned())].into(),
        };
        let keys: Vec<String> = keys.validate("the table").into_iter().map(|e| e.key).collect();
        assert_eq!(keys, ["table", "storage_options"]);
    }
}
