//! `queue_backlog`: pending rows of the position queue table, and how old the oldest
//! one is. Status is the worse of the count and the age grades.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deltalake::arrow::array::{Array, StringArray, TimestampMicrosecondArray};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::{DataType as ArrowType, TimeUnit};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::check::{
    ActionError, ActionOutcome, ActionSpec, BuildContext, BuildError, Check, CheckConfig, KeyError, Reading,
    RunContext, Status,
};
use crate::delta::OpenError;
use crate::duration::{self, Span};
mod clear;

use crate::bounded::OneAtATime;
use crate::panel::{Layout, Panel, Section};
use crate::thresholds::{Thresholds, fmt_num};

/// `kind = "queue_backlog"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct QueueBacklogConfig {
    /// Where the table is: `table` and `storage_options`.
    #[serde(flatten)]
    pub delta: crate::delta::TableKeys,
    /// Column holding each row's state.
    #[serde(default = "default_status_column")]
    pub status_column: String,
    /// The state of a row still waiting to be processed.
    #[serde(default = "default_pending")]
    pub pending_value: String,
    /// Timestamp column of when a row was queued (`timestamp` or `timestamp_ntz`, read
    /// as UTC).
    #[serde(default = "default_created")]
    pub created_column: String,
    /// Pending rows at which the check turns `warning`.
    #[serde(default = "crate::plugin::num::<50, u64>")]
    pub warn: u64,
    /// Pending rows at which the check turns `critical`.
    #[serde(default = "crate::plugin::num::<200, u64>")]
    pub crit: u64,
    /// Age of the oldest pending row at which the check turns `warning` (optional).
    #[serde(default)]
    pub max_age_warn: Option<Span>,
    /// Age of the oldest pending row at which the check turns `critical` (optional).
    #[serde(default)]
    pub max_age_crit: Option<Span>,
    /// The state the `clear` action gives the pending rows (an update: nothing is
    /// deleted, and the table's history keeps them pending at the earlier version).
    #[serde(default = "default_cleared")]
    pub cleared_value: String,
}

fn default_cleared() -> String {
    "CLEARED".into()
}

fn default_status_column() -> String {
    "status".into()
}
fn default_pending() -> String {
    "PENDING".into()
}
fn default_created() -> String {
    "created_at".into()
}

impl QueueBacklogConfig {
    fn age_thresholds(&self) -> Option<Thresholds> {
        match (self.max_age_warn, self.max_age_crit) {
            (None, None) => None,
            (w, c) => {
                let w = w.or(c).unwrap_or_default().as_secs_f64();
                let c = c.map_or(f64::INFINITY, |c| c.as_secs_f64());
                Some(Thresholds::higher_is_worse(w, c))
            }
        }
    }
}

/// The status page's "Queue backlog" section.
pub static QUEUE_SECTION: Section = Section {
    id: "queue",
    title: "Queue backlog",
    order: 50,
    layout: Layout::Stack,
    listed_when_empty: true,
    head: "",
};

static PANEL: Panel = Panel {
    section: &QUEUE_SECTION,
    rank: 0,
    template: Some(include_str!("panel.html.j2")),
    reads: &["oldest_pending_at"],
    css: "",
};

/// `clear`.
const CLEAR: ActionSpec = ActionSpec {
    name: "clear",
    label: "Clear",
    description: "marks every pending row cleared in one Delta commit. Nothing is deleted: the rows stay in the table's history",
    destructive: true,
};

impl CheckConfig for QueueBacklogConfig {
    const KIND: &'static str = "queue_backlog";
    const SUMMARY: &'static str = "pending rows of the position queue table and the age of the oldest";
    const EXAMPLE: &'static str = "table = \"../data/position_queue\"\nwarn = 50\ncrit = 200\nmax_age_warn = \"1m\"\nmax_age_crit = \"5m\"\n";
    const PANEL: Option<&'static Panel> = Some(&PANEL);
    const ACTIONS: &'static [ActionSpec] = &[CLEAR];

    fn validate(&self) -> Vec<KeyError> {
        let mut errors = Thresholds::higher_is_worse(self.warn as f64, self.crit as f64).validate(
            ("warn", "crit"),
            "backlog",
            None,
        );
        if let (Some(w), Some(c)) = (self.max_age_warn, self.max_age_crit)
            && w > c
        {
            errors.push(KeyError::new(
                "max_age_crit",
                "is below max_age_warn: an older backlog is worse, so max_age_crit must be at least max_age_warn",
            ));
        }
        errors.extend(self.delta.validate("the queue table"));
        errors
    }

    fn build(&self, cx: &BuildContext) -> Result<Arc<dyn Check>, BuildError> {
        Ok(Arc::new(Backlog {
            location: crate::delta::location(&self.delta.table, &cx.config_dir),
            options: self.delta.storage_options.clone(),
            count: Thresholds::higher_is_worse(self.warn as f64, self.crit as f64),
            age: self.age_thresholds(),
            config: self.clone(),
            reads: Default::default(),
            kept: Default::default(),
        }))
    }
}

struct Backlog {
    location: String,
    options: crate::delta::StorageOptions,
    config: QueueBacklogConfig,
    count: Thresholds,
    age: Option<Thresholds>,
    /// Reads of the table, one at a time (a hung one is reported, not repeated).
    reads: OneAtATime<crate::delta::Columns>,
    /// The columns of the version last read (read again only after a commit).
    kept: Arc<crate::delta::KeptColumns>,
}

#[async_trait]
impl Check for Backlog {
    fn actions(&self) -> Vec<ActionSpec> {
        vec![CLEAR]
    }

    async fn act(&self, action: &str, cx: &RunContext) -> Result<ActionOutcome, ActionError> {
        if action != "clear" {
            return Err(ActionError::NoSuchAction {
                check: cx.id.clone(),
                action: action.to_owned(),
                available: vec!["clear"],
            });
        }
        match self.clear(async || {}).await {
            Ok((rows, files, version, attempts)) => {
                let mut details = serde_json::Map::new();
                details.insert("cleared_rows".into(), rows.into());
                details.insert("files_rewritten".into(), files.into());
                details.insert("version".into(), version.into());
                details.insert("attempts".into(), attempts.into());
                let message = if rows == 0 {
                    "no pending rows to clear".to_owned()
                } else {
                    format!(
                        "{rows} pending rows marked {} in version {version}",
                        self.config.cleared_value
                    )
                };
                Ok(ActionOutcome {
                    ok: true,
                    message,
                    details,
                })
            }
            Err(e) => Err(ActionError::Failed(e)),
        }
    }

    async fn run(&self, cx: &RunContext) -> Reading {
        let c = &self.config;
        let columns = vec![c.status_column.clone(), c.created_column.clone()];
        let read = self
            .kept
            .clone()
            .read(self.location.clone(), self.options.clone(), columns);
        let batches = match self.reads.run(cx.budget(), read).await {
            Err(hung) => return hung.reading(&self.location),
            Ok(Ok(b)) => b,
            Ok(Err(OpenError::Missing(m))) => return Reading::new(Status::Critical, m),
            Ok(Err(OpenError::Other(m))) => return Reading::unknown(m),
        };
        let (mut pending, mut total) = (0u64, 0u64);
        let mut oldest: Option<i64> = None;
        for batch in &batches {
            let column = |name: &str, to: &ArrowType| {
                batch
                    .column_by_name(name)
                    .ok_or_else(|| format!("column `{name}` is missing from a data file"))
                    .and_then(|col| cast(col, to).map_err(|e| format!("column `{name}`: {e}")))
            };
            let cols = column(&c.status_column, &ArrowType::Utf8).and_then(|s| {
                Ok((
                    s,
                    column(
                        &c.created_column,
                        &ArrowType::Timestamp(TimeUnit::Microsecond, None),
                    )?,
                ))
            });
            let (status, created) = match cols {
                Ok(c) => c,
                Err(e) => return Reading::unknown(format!("{}: {e}", self.location)),
            };
            let (Some(status), Some(created)) = (
                status.as_any().downcast_ref::<StringArray>(),
                created.as_any().downcast_ref::<TimestampMicrosecondArray>(),
            ) else {
                return Reading::unknown(format!("{}: unexpected column types", self.location));
            };
            total += batch.num_rows() as u64;
            for i in 0..batch.num_rows() {
                if !status.is_null(i) && status.value(i) == c.pending_value {
                    pending += 1;
                    if !created.is_null(i) {
                        oldest = Some(oldest.map_or(created.value(i), |o| o.min(created.value(i))));
                    }
                }
            }
        }
        let oldest_at = oldest.and_then(DateTime::<Utc>::from_timestamp_micros);
        let age = oldest_at.map(|t| ((Utc::now() - t).num_milliseconds() as f64 / 1000.0).max(0.0));
        let by_count = self.count.grade(pending as f64);
        let by_age = match (self.age, age) {
            (Some(t), Some(age)) => t.grade(age),
            _ => Status::Ok,
        };
        let status = by_count.worst(by_age);
        // Say which threshold fired: the count, the oldest row's age, or both.
        let mut reasons = Vec::new();
        let reached = |s: Status| match s {
            Status::Critical => Some("crit"),
            Status::Warning => Some("warn"),
            _ => None,
        };
        if let Some(level) = reached(by_count) {
            let limit = if level == "crit" {
                self.count.crit
            } else {
                self.count.warn
            };
            reasons.push(format!("{pending} pending reached {level} {}", fmt_num(limit)));
        }
        if let (Some(level), Some(t), Some(age)) = (reached(by_age), self.age, age) {
            let limit = if level == "crit" { t.crit } else { t.warn };
            reasons.push(format!(
                "the oldest is {} old, past max_age_{level} {}",
                duration::format(std::time::Duration::from_secs(age as u64)),
                duration::format(std::time::Duration::from_secs_f64(limit))
            ));
        }
        let mut message = format!("{pending} pending rows ({})", self.count.describe(""));
        if let Some(age) = age {
            message.push_str(&format!(", oldest {}s", fmt_num(age)));
        }
        if !reasons.is_empty() {
            message = format!("{}: {message}", reasons.join("; "));
        }
        let mut r = Reading::new(status, message)
            .with_value(pending as f64, "")
            .with_detail("pending", pending)
            .with_detail("total_rows", total);
        if let (Some(age), Some(at)) = (age, oldest_at) {
            r = r
                .with_detail("oldest_pending_age_s", age)
                .with_detail("oldest_pending_at", at.to_rfc3339());
        }
        r
    }
}

crate::register_check!(QueueBacklogConfig);
