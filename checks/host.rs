//! `host`: uptime, process count and load average of the host.

use std::sync::Arc;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::check::{BuildContext, BuildError, Check, CheckConfig, KeyError, Reading, RunContext, Status};
use crate::panel::Panel;
use crate::system::SystemProbe;
use crate::thresholds::{Thresholds, fmt_num};

/// `kind = "host"`. Without thresholds it is informational (always `ok`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct HostConfig {
    /// Process count at which the check turns `warning`. Set `procs_warn` above
    /// `procs_crit` to alarm on too *few* processes instead (something died).
    pub procs_warn: Option<u64>,
    /// Process count at which the check turns `critical`. Give both or neither.
    pub procs_crit: Option<u64>,
}

impl HostConfig {
    fn thresholds(&self) -> Option<Thresholds> {
        Some(Thresholds::either_way(
            self.procs_warn? as f64,
            self.procs_crit? as f64,
        ))
    }
}

static PANEL: Panel = Panel {
    section: &super::system::SYSTEM_SECTION,
    rank: 1,
    template: Some(include_str!("host.html.j2")),
    reads: &["load", "process_count", "uptime"],
    css: "",
};

impl CheckConfig for HostConfig {
    const KIND: &'static str = "host";
    const SUMMARY: &'static str = "uptime, process count and load average of the host";
    const UNIT: &'static str = "s";
    const VALUE_WHEN_CRITICAL: bool = true;
    const EXAMPLE: &'static str = "procs_warn = 2000\nprocs_crit = 4000\n";
    const PANEL: Option<&'static Panel> = Some(&PANEL);

    fn validate(&self) -> Vec<KeyError> {
        match (self.procs_warn, self.procs_crit) {
            (Some(_), None) => vec![KeyError::new("procs_warn", "give `procs_crit` too, or neither")],
            (None, Some(_)) => vec![KeyError::new("procs_crit", "give `procs_warn` too, or neither")],
            _ => Vec::new(),
        }
    }

    fn build(&self, cx: &BuildContext) -> Result<Arc<dyn Check>, BuildError> {
        Ok(Arc::new(Host {
            thresholds: self.thresholds(),
            probe: cx.resources.get::<SystemProbe>(),
        }))
    }
}

struct Host {
    thresholds: Option<Thresholds>,
    probe: Arc<SystemProbe>,
}

#[async_trait]
impl Check for Host {
    async fn run(&self, _cx: &RunContext) -> Reading {
        let h = match self.probe.host().await {
            Ok(h) => h,
            Err(e) => return Reading::unknown(e.to_string()),
        };
        let status = self
            .thresholds
            .map_or(Status::Ok, |t| t.grade(h.processes as f64));
        let mut message = format!(
            "up {}, {} processes, load {} {} {}",
            human_uptime(h.uptime),
            h.processes,
            fmt_num(h.load.0),
            fmt_num(h.load.1),
            fmt_num(h.load.2)
        );
        if let Some(t) = self.thresholds {
            message.push_str(&format!(" (processes {})", t.describe("")));
        }
        Reading::new(status, message)
            .with_value(h.uptime as f64, "s")
            .with_detail("uptime", human_uptime(h.uptime))
            .with_detail("uptime_s", h.uptime)
            .with_detail("boot_time", h.boot_time)
            .with_detail("process_count", h.processes)
            .with_detail("cpus", h.cpus)
            .with_detail(
                "load",
                json!({ "one": h.load.0, "five": h.load.1, "fifteen": h.load.2 }),
            )
    }
}

/// "3d 4h 12m" — days, hours and minutes, no seconds.
fn human_uptime(secs: u64) -> String {
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match (d, h) {
        (0, 0) => format!("{m}m"),
        (0, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h {m}m"),
    }
}

crate::register_check!(HostConfig);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_reads_like_a_human_wrote_it() {
        assert_eq!(human_uptime(59), "0m");
        assert_eq!(human_uptime(3 * 3600 + 120), "3h 2m");
        assert_eq!(human_uptime(2 * 86_400 + 3600), "2d 1h 0m");
    }
}
