//! Whether vitals itself keeps its schedule: every running check has reported within its
//! interval plus its timeout plus its jitter (and a little slack). The daemon assesses
//! it every second; the systemd watchdog (`WATCHDOG=1`), the `heartbeat` sink and the
//! Alertmanager `VitalsWatchdog` alert only say "alive" while it holds, so a wedged
//! runtime or a stalled scheduler reaches someone even though vitals cannot page about
//! itself.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::board::Board;

/// How late a check's latest observation may be beyond its interval + timeout + jitter
/// before the runner counts as not keeping its schedule.
pub const SLACK: Duration = Duration::from_secs(5);

/// The runner's state at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    /// Every check reported in time.
    Healthy,
    /// These checks are overdue (ids).
    Late(Vec<String>),
}

impl Liveness {
    /// Whether every check reported in time.
    pub fn is_healthy(&self) -> bool {
        matches!(self, Liveness::Healthy)
    }
}

/// One running check's schedule: its id and its interval + timeout + jitter, the
/// longest a run may take to come after the one before.
pub type Schedule = (String, Duration);

/// Assesses the runner: each check's latest observation against its schedule.
pub fn assess(schedules: &[Schedule], board: &Board, now: DateTime<Utc>) -> Liveness {
    let late: Vec<String> = schedules
        .iter()
        .filter(|(id, every)| {
            let allowed = chrono::Duration::from_std(*every + SLACK).unwrap_or(chrono::Duration::MAX);
            board
                .get(id)
                .is_some_and(|e| now.signed_duration_since(e.latest.observed_at) > allowed)
        })
        .map(|(id, _)| id.clone())
        .collect();
    if late.is_empty() {
        Liveness::Healthy
    } else {
        Liveness::Late(late)
    }
}

/// A handle on the latest assessment, for whoever must only say "alive" while the
/// runner keeps its schedule (sinks get one in their context).
#[derive(Debug, Clone)]
pub struct Health(watch::Receiver<Liveness>);

impl Health {
    /// A new assessment channel: the daemon keeps the sender.
    pub fn channel() -> (watch::Sender<Liveness>, Health) {
        let (tx, rx) = watch::channel(Liveness::Healthy);
        (tx, Health(rx))
    }

    /// Always healthy: for sinks built outside a daemon (tests, `vitals check`).
    pub fn always() -> Health {
        Health::channel().1
    }

    /// Whether the runner kept its schedule at the latest assessment.
    pub fn is_healthy(&self) -> bool {
        self.0.borrow().is_healthy()
    }

    /// The latest assessment.
    pub fn now(&self) -> Liveness {
        self.0.borrow().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observation::{Observation, Reading};

    #[test]
    fn a_check_overdue_beyond_interval_timeout_jitter_and_slack_is_late() {
        let now = Utc::now();
        let board = Board::new();
        // interval + timeout (+ no jitter).
        let instances: Vec<Schedule> = vec![
            ("fast".into(), Duration::from_secs(5 + 3)),
            ("slow".into(), Duration::from_secs(3600 + 3)),
        ];
        let seen = |id: &str, ago: i64| {
            let r = Reading::new(crate::observation::Status::Ok, "ok");
            board.publish(Observation::from_reading(
                id,
                "test",
                r,
                now - chrono::Duration::seconds(ago),
                Duration::ZERO,
            ));
        };
        // 5 s + 3 s + 5 s of slack = 13 s.
        seen("fast", 12);
        seen("slow", 600);
        assert_eq!(assess(&instances, &board, now), Liveness::Healthy);
        seen("fast", 14);
        assert_eq!(
            assess(&instances, &board, now),
            Liveness::Late(vec!["fast".into()])
        );
        let (tx, health) = Health::channel();
        assert!(health.is_healthy());
        tx.send_replace(assess(&instances, &board, now));
        assert!(!health.is_healthy());
    }
}
