//! `log`: one JSON line per alert event, appended to a file (or written to stdout).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Sink, SinkConfig, SinkContext, SinkError};
use crate::alert::AlertEvent;
use crate::check::BuildError;

/// `kind = "log"`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// File the events are appended to, one JSON object per line (relative paths
    /// resolve against the config file's directory). Absent: standard output.
    pub path: Option<PathBuf>,
}

impl SinkConfig for LogConfig {
    const KIND: &'static str = "log";
    const SUMMARY: &'static str = "one JSON line per alert event, to a file or standard output";
    const EXAMPLE: &'static str = "path = \"alerts.jsonl\"\n";

    fn appends_to(&self, config_dir: &std::path::Path) -> Option<PathBuf> {
        self.path
            .as_deref()
            .map(|p| crate::plugin::resolve_path(config_dir, p))
    }

    fn build(&self, cx: &SinkContext) -> Result<Arc<dyn Sink>, BuildError> {
        Ok(Arc::new(LogSink {
            path: self.path.as_deref().map(|p| cx.resolve_path(p)),
        }))
    }
}

struct LogSink {
    path: Option<PathBuf>,
}

#[async_trait]
impl Sink for LogSink {
    async fn deliver(&self, events: &[AlertEvent]) -> Result<(), SinkError> {
        let mut text = String::new();
        for e in events {
            text.push_str(&serde_json::to_string(e).map_err(|e| SinkError::permanent(e.to_string()))?);
            text.push('\n');
        }
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            match path {
                Some(path) => {
                    let mut f = crate::files::append(&path)?;
                    f.write_all(text.as_bytes())?;
                    f.sync_data()
                }
                None => {
                    let mut out = std::io::stdout().lock();
                    out.write_all(text.as_bytes())?;
                    out.flush()
                }
            }
        })
        .await
        .map_err(|e| SinkError::retry(e.to_string()))?
        .map_err(|e| SinkError::retry(format!("cannot write the alert log: {e}")))
    }
}

crate::register_sink!(LogConfig);
