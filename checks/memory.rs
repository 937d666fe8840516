//! `memory`: RAM in use, in percent of the total.

use std::sync::Arc;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::check::{BuildContext, BuildError, Check, CheckConfig, KeyError, Reading, RunContext};
use crate::panel::Panel;
use crate::system::SystemProbe;
use crate::thresholds::{Thresholds, fmt_num};

/// `kind = "memory"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryConfig {
    /// Used memory in percent (of total RAM; "used" is total minus available, so
    /// reclaimable cache counts as free) at which the check turns `warning`.
    pub warn: f64,
    /// Used memory in percent at which the check turns `critical`.
    pub crit: f64,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            warn: 50.0,
            crit: 80.0,
        }
    }
}

impl MemoryConfig {
    fn thresholds(&self) -> Thresholds {
        Thresholds::higher_is_worse(self.warn, self.crit)
    }
}

impl CheckConfig for MemoryConfig {
    const KIND: &'static str = "memory";
    const SUMMARY: &'static str = "memory in use, in percent of the host's RAM";
    const UNIT: &'static str = "%";
    const VALUE_WHEN_CRITICAL: bool = true;
    const EXAMPLE: &'static str = "warn = 50\ncrit = 80\n";
    const PANEL: Option<&'static Panel> = Some(&super::system::SYSTEM_CARD);

    fn validate(&self) -> Vec<KeyError> {
        self.thresholds()
            .validate(("warn", "crit"), "memory usage", Some((0.0, 100.0)))
    }

    fn build(&self, cx: &BuildContext) -> Result<Arc<dyn Check>, BuildError> {
        Ok(Arc::new(Memory {
            thresholds: self.thresholds(),
            probe: cx.resources.get::<SystemProbe>(),
        }))
    }
}

struct Memory {
    thresholds: Thresholds,
    probe: Arc<SystemProbe>,
}

#[async_trait]
impl Check for Memory {
    async fn run(&self, _cx: &RunContext) -> Reading {
        let m = match self.probe.memory().await {
            Ok(m) => m,
            Err(e) => return Reading::unknown(e.to_string()),
        };
        if m.total == 0 {
            return Reading::unknown("the host reports 0 bytes of memory");
        }
        let pct = m.used as f64 * 100.0 / m.total as f64;
        Reading::new(
            self.thresholds.grade(pct),
            format!(
                "memory {}% used, {} of {} ({})",
                fmt_num(pct),
                bytes(m.used),
                bytes(m.total),
                self.thresholds.describe("%")
            ),
        )
        .with_value(pct, "%")
        .with_detail("total_bytes", m.total)
        .with_detail("used_bytes", m.used)
        .with_detail("available_bytes", m.available)
        .with_detail("swap_total_bytes", m.swap_total)
        .with_detail("swap_used_bytes", m.swap_used)
        .with_detail("warn", self.thresholds.warn)
        .with_detail("crit", self.thresholds.crit)
    }
}

/// Bytes for a human: "3.2 GiB".
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

crate::register_check!(MemoryConfig);
