//! What the Delta Lake checks and the delta sink share: where a configured table is,
//! opening an existing table, and one-line error text.

use std::path::Path;

use deltalake::{DeltaTable, DeltaTableError};

/// A configured table location: a URI as is, a path resolved against the config file's
/// directory.
pub fn location(table: &str, config_dir: &Path) -> String {
    if table.contains("://") || Path::new(table).is_absolute() {
        table.to_owned()
    } else {
        config_dir.join(table).display().to_string()
    }
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
pub async fn open_existing(location: &str) -> Result<DeltaTable, OpenError> {
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
    deltalake::open_table(url).await.map_err(|e| match e {
        DeltaTableError::NotATable(_) => OpenError::Missing(format!("{location} is not a Delta table")),
        e => OpenError::Other(format!("cannot open {location}: {}", error_line(&e))),
    })
}
