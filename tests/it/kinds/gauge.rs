//! `test_gauge`: a check kind that lives only in the tests. It proves what
//! `docs/writing-a-check.md` promises: a new kind with a page panel (its own partial, a
//! bar, a sparkline) and an action is this one file, its partial `gauge.html.j2` and
//! one `mod` line. It reads a percentage from a file; its `reset` action writes 0 there.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use vitals::check::{
    ActionError, ActionOutcome, ActionSpec, BuildContext, BuildError, Check, CheckConfig, KeyError, Reading,
    RunContext, Status,
};
use vitals::panel::{Layout, Panel, Section};

/// `kind = "test_gauge"`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GaugeConfig {
    /// The file holding the level, a number from 0 to 100.
    pub file: PathBuf,
    /// Warning at or above this level.
    pub warn: f64,
    /// Critical at or above this level.
    pub crit: f64,
}

static SECTION: Section = Section {
    id: "gauges",
    title: "Test gauges",
    order: 60,
    layout: Layout::Grid,
    listed_when_empty: false,
    head: "",
};

static PANEL: Panel = Panel {
    section: &SECTION,
    rank: 0,
    template: Some(include_str!("gauge.html.j2")),
    reads: &["crit", "file", "warn"],
    css: ".gauge .file { font-family: monospace; }\n",
};

const RESET: ActionSpec = ActionSpec {
    name: "reset",
    label: "Reset gauge",
    description: "writes 0 to the gauge's file",
    destructive: false,
};

impl CheckConfig for GaugeConfig {
    const KIND: &'static str = "test_gauge";
    const SUMMARY: &'static str = "a level read from a file (a kind that lives only in the tests)";
    const UNIT: &'static str = "%";
    const EXAMPLE: &'static str = "file = \"level\"\nwarn = 50\ncrit = 80\n";
    const PANEL: Option<&'static Panel> = Some(&PANEL);
    const ACTIONS: &'static [ActionSpec] = &[RESET];

    fn validate(&self) -> Vec<KeyError> {
        if self.warn > self.crit {
            return vec![KeyError::new("warn", "must not be above crit")];
        }
        Vec::new()
    }

    fn build(&self, cx: &BuildContext) -> Result<Arc<dyn Check>, BuildError> {
        Ok(Arc::new(Gauge {
            file: cx.resolve_path(&self.file),
            config: self.clone(),
        }))
    }
}

struct Gauge {
    file: PathBuf,
    config: GaugeConfig,
}

#[async_trait]
impl Check for Gauge {
    async fn run(&self, _: &RunContext) -> Reading {
        let text = match tokio::fs::read_to_string(&self.file).await {
            Ok(t) => t,
            Err(e) => return Reading::unknown(format!("cannot read {}: {e}", self.file.display())),
        };
        let Ok(level) = text.trim().parse::<f64>() else {
            return Reading::unknown(format!("{:?} is not a number", text.trim()));
        };
        let status = if level >= self.config.crit {
            Status::Critical
        } else if level >= self.config.warn {
            Status::Warning
        } else {
            Status::Ok
        };
        Reading::new(status, format!("level {level} %"))
            .with_value(level, "%")
            .with_detail("warn", self.config.warn)
            .with_detail("crit", self.config.crit)
            .with_detail("file", self.file.display().to_string())
    }

    fn actions(&self) -> Vec<ActionSpec> {
        vec![RESET]
    }

    async fn act(&self, action: &str, cx: &RunContext) -> Result<ActionOutcome, ActionError> {
        if action != "reset" {
            return Err(ActionError::NoSuchAction {
                check: cx.id.clone(),
                action: action.into(),
                available: vec!["reset"],
            });
        }
        tokio::fs::write(&self.file, "0")
            .await
            .map_err(|e| ActionError::Failed(format!("cannot write {}: {e}", self.file.display())))?;
        Ok(ActionOutcome {
            ok: true,
            message: "the gauge reads 0 now".into(),
            details: Default::default(),
        })
    }
}

vitals::register_check!(GaugeConfig);
