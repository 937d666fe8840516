//! Maintenance windows: times when a rule or a check does not alert (the IB Gateway's
//! nightly restart, weekends for market-data freshness). A window opens at each time
//! matching a cron expression in a time zone and stays open for a duration, so a window
//! across midnight or over a weekend is one entry.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration;
use crate::duration::Span;

/// One maintenance window as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowConfig {
    /// When the window opens: a cron expression (minute hour day-of-month month
    /// day-of-week), e.g. `"45 23 * * *"` every night at 23:45, `"0 17 * * FRI"` Friday
    /// evenings.
    pub start: String,
    /// How long the window stays open once opened, e.g. `"30m"`, `"62h"`.
    pub duration: Span,
    /// IANA time zone `start` is read in (default `UTC`), e.g. `"America/New_York"`;
    /// daylight saving time is followed.
    #[serde(default = "utc")]
    pub timezone: String,
    /// Why: shown as the cause of the alerts it holds back.
    #[serde(default)]
    pub reason: Option<String>,
}

fn utc() -> String {
    "UTC".to_owned()
}

/// A compiled window.
#[derive(Debug, Clone)]
pub struct Window {
    cron: Cron,
    duration: chrono::Duration,
    tz: Tz,
    label: String,
}

impl Window {
    /// Compiles a window; the error names what is wrong.
    pub fn compile(c: &WindowConfig) -> Result<Window, String> {
        let cron = Cron::from_str(&c.start).map_err(|e| {
            format!(
                "maintenance start {:?} is not a cron expression ({e}): write e.g. \"45 23 * * *\"",
                c.start
            )
        })?;
        let tz: Tz = c.timezone.parse().map_err(|_| {
            format!(
                "unknown time zone {:?}: use an IANA name such as \"America/New_York\" or \"UTC\"",
                c.timezone
            )
        })?;
        if c.duration.is_zero() {
            return Err("a maintenance window's duration must be longer than 0s".into());
        }
        let what = c
            .reason
            .clone()
            .unwrap_or_else(|| "maintenance window".to_owned());
        Ok(Window {
            cron,
            duration: chrono::Duration::from_std(*c.duration).map_err(|e| e.to_string())?,
            tz,
            label: format!(
                "{what} ({} {}, {})",
                c.start,
                c.timezone,
                duration::format(*c.duration)
            ),
        })
    }

    /// Whether the window is open at `t`.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.open_until(t).is_some()
    }

    /// When the window closes, if it is open at `t`.
    pub fn open_until(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = t.with_timezone(&self.tz);
        let start = self.cron.find_previous_occurrence(&local, true).ok()?;
        let end = start.with_timezone(&Utc) + self.duration;
        (t < end).then_some(end)
    }

    /// For messages: "IB nightly restart (45 23 * * * America/New_York, 30m)".
    pub fn label(&self) -> &str {
        &self.label
    }
}

/// The first of `windows` open at `t`, as a cause ("in maintenance: …") and when it
/// closes.
pub fn open_window(windows: &[Window], t: DateTime<Utc>) -> Option<(String, DateTime<Utc>)> {
    windows.iter().find_map(|w| {
        let until = w.open_until(t)?;
        Some((format!("in maintenance: {}", w.label()), until))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn window(start: &str, d: u64, tz: &str) -> Window {
        Window::compile(&WindowConfig {
            start: start.into(),
            duration: Span::secs(d * 60),
            timezone: tz.into(),
            reason: None,
        })
        .unwrap()
    }

    #[test]
    fn a_window_across_midnight_in_new_york() {
        // 23:45–00:15 New York time; in November New York is UTC-5.
        let w = window("45 23 * * *", 30, "America/New_York");
        let ny = |d: u32, h: u32, m: u32| {
            chrono_tz::America::New_York
                .with_ymd_and_hms(2026, 11, d, h, m, 0)
                .unwrap()
                .with_timezone(&Utc)
        };
        assert!(!w.contains(ny(27, 23, 44)));
        assert!(w.contains(ny(27, 23, 45)));
        assert!(w.contains(ny(28, 0, 10)));
        assert!(!w.contains(ny(28, 0, 15)));
        // In July (UTC-4) it follows daylight saving time.
        let july = chrono_tz::America::New_York
            .with_ymd_and_hms(2026, 7, 1, 23, 50, 0)
            .unwrap();
        assert!(w.contains(july.with_timezone(&Utc)));
    }

    #[test]
    fn a_weekend_window() {
        let w = window("0 17 * * FRI", 62 * 60, "America/New_York");
        let ny = |d: u32, h: u32| {
            chrono_tz::America::New_York
                .with_ymd_and_hms(2026, 11, d, h, 0, 0)
                .unwrap()
                .with_timezone(&Utc)
        };
        assert!(!w.contains(ny(27, 16))); // Friday 16:00
        assert!(w.contains(ny(28, 12))); // Saturday
        assert!(w.contains(ny(30, 6))); // Monday 06:00
        assert!(!w.contains(ny(30, 7))); // Monday 07:00
    }

    #[test]
    fn bad_windows_say_what_is_wrong() {
        let bad = |start: &str, tz: &str| {
            Window::compile(&WindowConfig {
                start: start.into(),
                duration: Span::secs(60),
                timezone: tz.into(),
                reason: None,
            })
            .unwrap_err()
        };
        assert!(bad("61 * * * *", "UTC").contains("is not a cron expression"));
        assert!(bad("0 * * * *", "America/New_Yrok").contains("unknown time zone"));
    }
}
