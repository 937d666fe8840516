//! `cpu`: CPU usage of the whole host, in percent.

use std::sync::Arc;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::check::{BuildContext, BuildError, Check, CheckConfig, KeyError, Reading, RunContext};
use crate::panel::Panel;
use crate::system::SystemProbe;
use crate::thresholds::{Thresholds, fmt_num};

/// `kind = "cpu"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CpuConfig {
    /// Usage in percent at which the check turns `warning`.
    pub warn: f64,
    /// Usage in percent at which the check turns `critical`.
    pub crit: f64,
}

impl Default for CpuConfig {
    fn default() -> Self {
        CpuConfig {
            warn: 50.0,
            crit: 80.0,
        }
    }
}

impl CpuConfig {
    fn thresholds(&self) -> Thresholds {
        Thresholds::higher_is_worse(self.warn, self.crit)
    }
}

impl CheckConfig for CpuConfig {
    const KIND: &'static str = "cpu";
    const SUMMARY: &'static str = "CPU usage of the host, averaged over the check's interval";
    const UNIT: &'static str = "%";
    const VALUE_WHEN_CRITICAL: bool = true;
    const EXAMPLE: &'static str = "warn = 50\ncrit = 80\n";
    const PANEL: Option<&'static Panel> = Some(&super::system::SYSTEM_CARD);

    fn validate(&self) -> Vec<KeyError> {
        self.thresholds()
            .validate(("warn", "crit"), "CPU usage", Some((0.0, 100.0)))
    }

    fn build(&self, cx: &BuildContext) -> Result<Arc<dyn Check>, BuildError> {
        Ok(Arc::new(Cpu {
            thresholds: self.thresholds(),
            probe: cx.resources.get::<SystemProbe>(),
        }))
    }
}

struct Cpu {
    thresholds: Thresholds,
    probe: Arc<SystemProbe>,
}

#[async_trait]
impl Check for Cpu {
    async fn run(&self, _cx: &RunContext) -> Reading {
        match self.probe.cpu_usage().await {
            Ok((usage, cpus)) => Reading::new(
                self.thresholds.grade(usage),
                format!("CPU {}% used ({})", fmt_num(usage), self.thresholds.describe("%")),
            )
            .with_value(usage, "%")
            .with_detail("cpus", cpus)
            .with_detail("warn", self.thresholds.warn)
            .with_detail("crit", self.thresholds.crit),
            Err(e) => Reading::unknown(e.to_string()),
        }
    }
}

crate::register_check!(CpuConfig);
