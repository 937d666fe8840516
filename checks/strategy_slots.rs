//! `strategy_slots`: streaming slots used by active strategies, read from the strategy
//! registry Delta table (one row per active strategy, or the rows an optional filter
//! selects). Only the needed columns are read from the data files.

use std::sync::Arc;

use async_trait::async_trait;
use deltalake::arrow::array::{Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::{DataType as ArrowType, TimeUnit};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::bounded::OneAtATime;
use crate::check::{BuildContext, BuildError, Check, CheckConfig, KeyError, Reading, RunContext, Status};
use crate::delta::OpenError;
use crate::panel::{Layout, Panel, Section};
use crate::thresholds::{Thresholds, fmt_num};

/// `kind = "strategy_slots"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StrategySlotsConfig {
    /// Where the table is: `table` and `storage_options`.
    #[serde(flatten)]
    pub delta: crate::delta::TableKeys,
    /// Streaming slots the account has (IB's market data lines for this system).
    #[serde(default = "crate::plugin::num::<100, u32>")]
    pub limit: u32,
    /// Slots used at which the check turns `warning`.
    #[serde(default = "crate::plugin::num::<90, u32>")]
    pub warn: u32,
    /// Slots used at which the check turns `critical`.
    #[serde(default = "crate::plugin::num::<100, u32>")]
    pub crit: u32,
    /// Column holding the contract id.
    #[serde(default = "default_conid")]
    pub conid_column: String,
    /// Column holding the underlying symbol.
    #[serde(default = "default_symbol")]
    pub symbol_column: String,
    /// Column holding the strategy execution id.
    #[serde(default = "default_strategy_id")]
    pub strategy_id_column: String,
    /// Column holding when streaming started.
    #[serde(default = "default_since")]
    pub since_column: String,
    /// Optional column saying which rows are active (with `filter_value`); without it,
    /// every row is an active strategy.
    #[serde(default)]
    pub filter_column: Option<String>,
    /// The value of `filter_column` that marks an active row (compared as text).
    #[serde(default)]
    pub filter_value: Option<String>,
}

fn default_conid() -> String {
    "conid".into()
}
fn default_symbol() -> String {
    "symbol".into()
}
fn default_strategy_id() -> String {
    "strategy_id".into()
}
fn default_since() -> String {
    "since".into()
}

/// The status page's "Active strategy registry" section, with its symbol filter.
pub static REGISTRY_SECTION: Section = Section {
    id: "registry",
    title: "Active strategy registry",
    order: 40,
    layout: Layout::Stack,
    listed_when_empty: true,
    head: "<label class=\"filter\">Filter by symbol <input id=\"symbol-filter\" type=\"search\" placeholder=\"e.g. SPY\" autocomplete=\"off\"></label>",
};

static PANEL: Panel = Panel {
    section: &REGISTRY_SECTION,
    rank: 0,
    template: Some(include_str!("strategy_slots.html.j2")),
    reads: &["crit", "limit", "rows", "warn"],
    css: "",
};

impl CheckConfig for StrategySlotsConfig {
    const KIND: &'static str = "strategy_slots";
    const SUMMARY: &'static str =
        "streaming slots used by active strategies, from the strategy registry table";
    const EXAMPLE: &'static str =
        "table = \"../data/strategy_registry\"\nlimit = 100\nwarn = 90\ncrit = 100\n";
    const PANEL: Option<&'static Panel> = Some(&PANEL);

    fn validate(&self) -> Vec<KeyError> {
        let mut errors = Thresholds::higher_is_worse(self.warn.into(), self.crit.into()).validate(
            ("warn", "crit"),
            "slot usage",
            Some((0.0, self.limit.into())),
        );
        if self.limit == 0 {
            errors.push(KeyError::new("limit", "must be at least 1"));
        }
        if self.filter_column.is_some() != self.filter_value.is_some() {
            errors.push(KeyError::new(
                "filter_value",
                "give `filter_column` and `filter_value` together",
            ));
        }
        errors.extend(self.delta.validate("the registry table"));
        errors
    }

    fn build(&self, cx: &BuildContext) -> Result<Arc<dyn Check>, BuildError> {
        Ok(Arc::new(Slots {
            location: crate::delta::location(&self.delta.table, &cx.config_dir),
            options: self.delta.storage_options.clone(),
            config: self.clone(),
            thresholds: Thresholds::higher_is_worse(self.warn.into(), self.crit.into()),
            reads: Default::default(),
            kept: Default::default(),
        }))
    }
}

struct Slots {
    location: String,
    options: crate::delta::StorageOptions,
    config: StrategySlotsConfig,
    thresholds: Thresholds,
    /// Reads of the table, one at a time (a hung one is reported, not repeated).
    reads: OneAtATime<crate::delta::Columns>,
    /// The columns of the version last read (read again only after a commit).
    kept: Arc<crate::delta::KeptColumns>,
}

impl Slots {
    async fn rows(&self, budget: std::time::Duration) -> Result<Vec<Value>, Reading> {
        let c = &self.config;
        let mut wanted = vec![
            c.conid_column.as_str(),
            c.symbol_column.as_str(),
            c.strategy_id_column.as_str(),
            c.since_column.as_str(),
        ];
        if let Some(f) = &c.filter_column {
            wanted.push(f);
        }
        let read = self.kept.clone().read(
            self.location.clone(),
            self.options.clone(),
            wanted.iter().map(|s| s.to_string()).collect(),
        );
        let batches = self
            .reads
            .run(budget, read)
            .await
            .map_err(|hung| hung.reading(&self.location))?
            .map_err(|e| match e {
                OpenError::Missing(m) => Reading::new(Status::Critical, m),
                OpenError::Other(m) => Reading::unknown(m),
            })?;
        let mut rows = Vec::new();
        for batch in &batches {
            self.collect(batch, &mut rows)
                .map_err(|e| Reading::unknown(format!("{}: {e}", self.location)))?;
        }
        Ok(rows)
    }

    fn collect(&self, batch: &RecordBatch, rows: &mut Vec<Value>) -> Result<(), String> {
        let c = &self.config;
        // Columns come back in file order, and Python writes strings as LargeUtf8: look
        // them up by name and cast.
        let column = |name: &str, to: &ArrowType| {
            let col = batch
                .column_by_name(name)
                .ok_or_else(|| format!("column `{name}` is missing from a data file"))?;
            cast(col, to).map_err(|e| format!("column `{name}`: {e}"))
        };
        let conid = column(&c.conid_column, &ArrowType::Int64)?;
        let conid = conid.as_any().downcast_ref::<Int64Array>().ok_or("conid cast")?;
        let symbol = column(&c.symbol_column, &ArrowType::Utf8)?;
        let symbol = symbol
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or("symbol cast")?;
        let strategy = column(&c.strategy_id_column, &ArrowType::Utf8)?;
        let strategy = strategy
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or("strategy cast")?;
        let since = column(
            &c.since_column,
            &ArrowType::Timestamp(TimeUnit::Microsecond, None),
        )?;
        let since = since
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .ok_or("since cast")?;
        let filter = match &c.filter_column {
            Some(f) => Some(column(f, &ArrowType::Utf8)?),
            None => None,
        };
        let filter = filter
            .as_ref()
            .and_then(|f| f.as_any().downcast_ref::<StringArray>());
        for i in 0..batch.num_rows() {
            if let (Some(f), Some(want)) = (filter, &c.filter_value)
                && (f.is_null(i) || f.value(i) != want)
            {
                continue;
            }
            let text = |a: &StringArray| (!a.is_null(i)).then(|| a.value(i).to_owned());
            rows.push(json!({
                "conid": (!conid.is_null(i)).then(|| conid.value(i)),
                "symbol": text(symbol),
                "strategy_id": text(strategy),
                "since": (!since.is_null(i))
                    .then(|| chrono::DateTime::from_timestamp_micros(since.value(i)).map(|t| t.to_rfc3339()))
                    .flatten(),
            }));
        }
        Ok(())
    }
}

#[async_trait]
impl Check for Slots {
    async fn run(&self, cx: &RunContext) -> Reading {
        let mut rows = match self.rows(cx.budget()).await {
            Ok(r) => r,
            Err(reading) => return reading,
        };
        rows.sort_by(|a, b| a["symbol"].as_str().cmp(&b["symbol"].as_str()));
        let used = rows.len() as f64;
        let limit = f64::from(self.config.limit);
        Reading::new(
            self.thresholds.grade(used),
            format!(
                "{} of {} streaming slots used by active strategies ({})",
                fmt_num(used),
                self.config.limit,
                self.thresholds.describe("")
            ),
        )
        .with_value(used, "")
        .with_detail("limit", self.config.limit)
        .with_detail("free", (limit - used).max(0.0))
        .with_detail("warn", self.thresholds.warn)
        .with_detail("crit", self.thresholds.crit)
        .with_detail("rows", Value::Array(rows))
    }
}

crate::register_check!(StrategySlotsConfig);
