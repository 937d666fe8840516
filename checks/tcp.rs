//! `tcp`: can a TCP connection to `host:port` be opened, and how fast? (The worked
//! example of docs/writing-a-check.md.)

use std::sync::Arc;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::check::{
    BuildContext, BuildError, Check, CheckConfig, Common, KeyError, Reading, RunContext, Status,
};
use crate::duration;
use crate::duration::Span;
use crate::thresholds::{Thresholds, fmt_num};

/// `kind = "tcp"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TcpConfig {
    /// Host name or IP address to connect to.
    pub host: String,
    /// TCP port to connect to (1-65535).
    pub port: u16,
    /// Connect time at which the check turns `warning`.
    #[serde(default = "crate::duration::millis::<200>")]
    pub warn: Span,
    /// Connect time at which the check turns `critical`. A refused connection, or none
    /// at all before the check's timeout, is `critical` too.
    #[serde(default = "crate::duration::secs::<1>")]
    pub crit: Span,
}

impl TcpConfig {
    fn thresholds(&self) -> Thresholds {
        Thresholds::higher_is_worse(self.warn.as_secs_f64() * 1000.0, self.crit.as_secs_f64() * 1000.0)
    }
}

impl CheckConfig for TcpConfig {
    const KIND: &'static str = "tcp";
    const SUMMARY: &'static str = "opens a TCP connection to `host:port` and times it";
    const UNIT: &'static str = "ms";
    const EXAMPLE: &'static str = "host = \"127.0.0.1\"\nport = 4002\nwarn = \"200ms\"\ncrit = \"1s\"\n";

    fn validate(&self) -> Vec<KeyError> {
        let mut errors = self
            .thresholds()
            .validate_durations(("warn", "crit"), "connect time", 1000.0);
        if self.host.trim().is_empty() {
            errors.push(KeyError::new("host", "must name a host, e.g. \"127.0.0.1\""));
        }
        if self.port == 0 {
            errors.push(KeyError::new("port", "must be a port from 1 to 65535"));
        }
        errors
    }

    fn validate_common(&self, common: &Common) -> Vec<KeyError> {
        if *self.crit > common.timeout {
            return vec![KeyError::new(
                "crit",
                format!(
                    "crit ({}) is longer than the check's timeout ({}): a connection that slow is cut off first, so crit can never be reached; raise `timeout` or lower `crit`",
                    self.crit,
                    duration::format(common.timeout)
                ),
            )];
        }
        Vec::new()
    }

    fn build(&self, _cx: &BuildContext) -> Result<Arc<dyn Check>, BuildError> {
        Ok(Arc::new(Tcp {
            target: format!("{}:{}", self.host, self.port),
            thresholds: self.thresholds(),
        }))
    }
}

struct Tcp {
    target: String,
    thresholds: Thresholds,
}

#[async_trait]
impl Check for Tcp {
    async fn run(&self, cx: &RunContext) -> Reading {
        let started = tokio::time::Instant::now();
        match cx
            .before_deadline(tokio::net::TcpStream::connect(&self.target))
            .await
        {
            None => Reading::new(
                Status::Critical,
                format!(
                    "{}: no answer within {}",
                    self.target,
                    duration::format(cx.timeout)
                ),
            ),
            Some(Err(e)) => Reading::new(Status::Critical, format!("{}: {e}", self.target)),
            Some(Ok(_stream)) => {
                let ms = started.elapsed().as_secs_f64() * 1000.0;
                Reading::new(
                    self.thresholds.grade(ms),
                    format!(
                        "{} connected in {} ms ({})",
                        self.target,
                        fmt_num(ms),
                        self.thresholds.describe(" ms")
                    ),
                )
                .with_value(ms, "ms")
                .with_detail("target", self.target.clone())
            }
        }
    }
}

crate::register_check!(TcpConfig);
