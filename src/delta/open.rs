//! Opening tables: one that must exist (a check's table: a missing one is news) and one
//! vitals writes (alerts, history: created with its columns when missing).

use std::path::Path;

use deltalake::{DeltaTable, DeltaTableError};

use super::columns::{Column, delta_fields};
use super::{StorageOptions, TableRef, error_line, options_map};

/// Why an existing table could not be opened or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// It is not there (or not a Delta table): the data is gone.
    #[error("{0}")]
    Missing(String),
    /// Anything else.
    #[error("{0}")]
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

/// What a table vitals writes is created with.
#[derive(Debug, Clone, Copy)]
pub struct TableSpec {
    /// The table's name in its metadata.
    pub name: &'static str,
    /// Its description in its metadata.
    pub comment: &'static str,
    /// Its columns.
    pub columns: &'static [Column],
    /// Its partition columns.
    pub partitions: &'static [&'static str],
}

/// Opens a table vitals writes, creating it with `spec` when it is missing. A table
/// another writer created meanwhile is opened.
pub async fn open_or_create(table: &TableRef, spec: &TableSpec) -> Result<DeltaTable, DeltaTableError> {
    let url = deltalake::table::builder::ensure_table_uri(&table.location)?;
    let options = options_map(&table.options);
    // A table with no log yet is created without asking the kernel to load it first
    // (which would log an error for a perfectly normal first start).
    let has_log = Path::new(&table.location)
        .join("_delta_log")
        .read_dir()
        .is_ok_and(|mut entries| entries.next().is_some());
    if has_log || table.location.contains("://") {
        match deltalake::open_table_with_storage_options(url.clone(), options.clone()).await {
            Err(DeltaTableError::NotATable(_)) => {}
            other => return other,
        }
    }
    let created = DeltaTable::try_from_url_with_storage_options(url.clone(), options.clone())
        .await?
        .create()
        .with_table_name(spec.name)
        .with_comment(spec.comment)
        .with_columns(delta_fields(spec.columns))
        .with_partition_columns(spec.partitions.iter().copied())
        .await;
    match created {
        Ok(t) => Ok(t),
        // Another writer created it meanwhile.
        Err(_) => deltalake::open_table_with_storage_options(url, options).await,
    }
}

/// Refuses a local table that holds a symbolic link to a folder (its `_delta_log`, a
/// partition such as `date=2026-12-04`): vitals would write its files, and vacuum
/// delete files, wherever the link points. The table's own folder may be a link: it is
/// what the configuration names. A table vitals writes is checked before every write
/// and before its upkeep. Object stores have no links.
pub fn refuse_links(location: &str) -> Result<(), String> {
    if location.contains("://") {
        return Ok(());
    }
    fn walk(dir: &Path, depth: usize) -> Result<(), String> {
        // The table's folder, its log and its partitions (two levels are plenty).
        if depth > 2 {
            return Ok(());
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(());
        };
        for entry in entries.flatten() {
            let kind = entry.file_type().map_err(|e| e.to_string())?;
            if kind.is_symlink() && std::fs::metadata(entry.path()).is_ok_and(|m| m.is_dir()) {
                return Err(format!(
                    "{} is a symbolic link to a folder: vitals does not write or delete through it",
                    entry.path().display()
                ));
            }
            if kind.is_dir() {
                walk(&entry.path(), depth + 1)?;
            }
        }
        Ok(())
    }
    walk(Path::new(location), 0)
}
