//! The market calendars as the page and `/api/status` show them.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::market::{MarketHours, MarketState};

/// A calendar's state now, for the page and `/api/status`.
#[derive(Debug, Clone, Serialize)]
pub struct MarketView {
    /// The state.
    #[serde(flatten)]
    pub state: MarketState,
    /// One line for people.
    pub text: String,
    /// The checks whose alerts follow it.
    pub checks: Vec<String>,
}

/// Each calendar the checks follow, as it is at `now`.
pub fn views(calendars: Vec<(MarketHours, Vec<String>)>, now: DateTime<Utc>) -> Vec<MarketView> {
    calendars
        .into_iter()
        .map(|(m, checks)| {
            let state = m.calendar.state(now);
            MarketView {
                text: state.describe(),
                state,
                checks,
            }
        })
        .collect()
}
