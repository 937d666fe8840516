//! `delta`: appends alert events to the alerts Delta table ([`crate::alerts_table`]:
//! its schema, creation and writer), creating it if missing. Events of one
//! `flush_interval` are one commit. Several vitals may append to one table (on S3 each
//! commit is a conditional put, and a lost race is retried): docs/fleet.md.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Sink, SinkConfig, SinkContext, SinkError};
use crate::alert::AlertEvent;
use crate::alerts_table::Writer;
use crate::check::{BuildError, KeyError};
use crate::delta::{TableKeys, TableRef};
use crate::duration::Span;

/// `kind = "delta"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DeltaSinkConfig {
    /// Where the alerts table is (`table`, `storage_options`); created with the alerts
    /// schema if missing.
    #[serde(flatten)]
    pub delta: TableKeys,
    /// Events arriving within this window after the first are written in one commit
    /// (fewer commits keep the table fast to read).
    #[serde(default = "crate::duration::secs::<1>")]
    pub flush_interval: Span,
}

impl SinkConfig for DeltaSinkConfig {
    const KIND: &'static str = "delta";
    const SUMMARY: &'static str = "appends alert events to the alerts Delta table (one row per transition)";
    const EXAMPLE: &'static str = "table = \"../data/alerts\"\nflush_interval = \"1s\"\n";

    fn validate(&self) -> Vec<KeyError> {
        self.delta.validate("the alerts table")
    }

    fn alerts_table(&self, config_dir: &Path) -> Option<TableRef> {
        Some(self.delta.resolve(config_dir))
    }

    fn build(&self, cx: &SinkContext) -> Result<Arc<dyn Sink>, BuildError> {
        Ok(Arc::new(DeltaSink {
            writer: Writer::new(self.delta.resolve(&cx.config_dir)),
            flush_interval: *self.flush_interval,
        }))
    }
}

struct DeltaSink {
    writer: Writer,
    flush_interval: Duration,
}

#[async_trait]
impl Sink for DeltaSink {
    fn group_wait(&self) -> Duration {
        self.flush_interval
    }

    async fn deliver(&self, events: &[AlertEvent]) -> Result<(), SinkError> {
        self.writer.append(events).await.map_err(|e| {
            if e.is_permanent() {
                SinkError::permanent(e.to_string())
            } else {
                SinkError::retry(e.to_string())
            }
        })
    }
}

crate::register_sink!(DeltaSinkConfig);
