//! `disk`: space used on the filesystem holding a path, in percent.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::memory::bytes;
use crate::check::{BuildContext, BuildError, Check, CheckConfig, KeyError, Reading, RunContext, Status};
use crate::panel::Panel;
use crate::system::disk_usage;
use crate::thresholds::{Thresholds, fmt_num};

/// `kind = "disk"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DiskConfig {
    /// Any path on the filesystem to watch (the mount point itself, or a directory or
    /// file on it, such as the Delta tables' folder). Relative paths are resolved
    /// against the config file's directory.
    pub path: PathBuf,
    /// Used space in percent at which the check turns `warning`. Used space counts what
    /// is reserved for root: it is what is no longer available to the trading system.
    pub warn: f64,
    /// Used space in percent at which the check turns `critical`.
    pub crit: f64,
}

impl Default for DiskConfig {
    fn default() -> Self {
        DiskConfig {
            path: PathBuf::from("/"),
            warn: 50.0,
            crit: 80.0,
        }
    }
}

impl DiskConfig {
    fn thresholds(&self) -> Thresholds {
        Thresholds::higher_is_worse(self.warn, self.crit)
    }
}

impl CheckConfig for DiskConfig {
    const KIND: &'static str = "disk";
    const SUMMARY: &'static str = "space used on the filesystem holding `path`, in percent";
    const UNIT: &'static str = "%";
    const EXAMPLE: &'static str = "path = \"/\"\nwarn = 50\ncrit = 80\n";
    const PANEL: Option<&'static Panel> = Some(&super::system::SYSTEM_CARD);

    fn validate(&self) -> Vec<KeyError> {
        let mut errors = self
            .thresholds()
            .validate(("warn", "crit"), "disk usage", Some((0.0, 100.0)));
        if self.path.as_os_str().is_empty() {
            errors.push(KeyError::new(
                "path",
                "must not be empty: name a path on the filesystem to watch",
            ));
        }
        errors
    }

    fn build(&self, cx: &BuildContext) -> Result<Arc<dyn Check>, BuildError> {
        Ok(Arc::new(Disk {
            path: cx.resolve_path(&self.path),
            thresholds: self.thresholds(),
        }))
    }
}

struct Disk {
    path: PathBuf,
    thresholds: Thresholds,
}

#[async_trait]
impl Check for Disk {
    async fn run(&self, cx: &RunContext) -> Reading {
        let path = self.path.clone();
        // A stalled filesystem (dead NFS server) blocks statfs: answer before the
        // runner's deadline, as critical, with the cause.
        let usage = match cx
            .before_deadline(tokio::task::spawn_blocking(move || disk_usage(&path)))
            .await
        {
            None => {
                return Reading::new(
                    Status::Critical,
                    format!(
                        "the filesystem holding {} did not answer in time (stalled mount?)",
                        self.path.display()
                    ),
                );
            }
            Some(Err(e)) => return Reading::unknown(format!("disk probe failed: {e}")),
            Some(Ok(Err(e))) => return Reading::unknown(e.to_string()),
            Some(Ok(Ok(u))) => u,
        };
        let Some(pct) = usage.percent_used().filter(|_| usage.total > 0) else {
            return Reading::unknown(format!("{} reports a size of 0 bytes", usage.mount_point));
        };
        let (used, reserved) = (usage.used(), usage.reserved());
        Reading::new(
            self.thresholds.grade(pct),
            format!(
                "{} {}% used, {} free of {} ({})",
                usage.mount_point,
                fmt_num(pct),
                bytes(usage.available),
                bytes(usage.total),
                self.thresholds.describe("%")
            ),
        )
        .with_value(pct, "%")
        .with_detail("path", self.path.display().to_string())
        .with_detail("mount_point", usage.mount_point)
        .with_detail("device", usage.name)
        .with_detail("file_system", usage.file_system)
        .with_detail("total_bytes", usage.total)
        .with_detail("available_bytes", usage.available)
        .with_detail("used_bytes", used)
        .with_detail("reserved_bytes", reserved)
        .with_detail("warn", self.thresholds.warn)
        .with_detail("crit", self.thresholds.crit)
    }
}

crate::register_check!(DiskConfig);
