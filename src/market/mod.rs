//! Market calendars: when an exchange's session is open, so that alerts about data
//! that only moves while the market trades (positions, Greeks, decisions) are held back
//! at night, on weekends, on exchange holidays and after an early close.
//!
//! Two calendars are built in: `nyse` (the regular session, 09:30–16:00
//! America/New_York, 13:00 on early-close days) and `nyse_extended` (04:00–20:00, 17:00
//! on early-close days). NYSE's holidays and early closes follow the exchange's rules
//! (Rule 7.2): the fixed-date holidays with their Saturday/Sunday observance, the
//! Monday holidays, Good Friday from the date of Easter, Juneteenth from 2022, and the
//! unscheduled closures the exchange has announced ([`NYSE_SPECIAL_CLOSURES`]). A
//! `[calendars.<name>]` section adds closures and early closes to a built-in calendar,
//! or defines another exchange's sessions ([`CalendarConfig`]).

mod calendar;
pub mod nyse;

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveTime, Utc};

use crate::duration::Span;

pub use calendar::{Calendar, CalendarConfig, Day, DayConfig, MarketState};
pub use nyse::NYSE_SPECIAL_CLOSURES;

/// The names of the built-in calendars.
pub const BUILT_IN: [&str; 2] = ["nyse", "nyse_extended"];

/// `market_hours` and `market_grace` of a check or a rule, compiled.
#[derive(Debug, Clone)]
pub struct MarketHours {
    /// The calendar.
    pub calendar: Arc<Calendar>,
    /// How long after the session opens alerts are still held.
    pub grace: Duration,
}

/// Why alerts are held at a moment, and until when that cause stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// "market closed: Thanksgiving Day", "market opening: grace until 09:35".
    pub cause: String,
    /// When this cause ends: the session's open (or the open plus grace), or the next
    /// local midnight while closed (the next day may be closed for another reason).
    /// The hold may go on from then with another cause.
    pub until: DateTime<Utc>,
}

impl MarketHours {
    /// With the grace as written.
    pub fn new(calendar: Arc<Calendar>, grace: Span) -> Self {
        MarketHours {
            calendar,
            grace: Duration::from_std(*grace).unwrap_or(Duration::MAX),
        }
    }

    /// Whether (and why, and until when) alerts are held at `t`: outside the session,
    /// or within the grace after its open.
    pub fn held(&self, t: DateTime<Utc>) -> Option<Held> {
        let cal = &self.calendar;
        let local = t.with_timezone(&cal.tz);
        let grace_cause = |open: DateTime<Utc>| {
            let end = open + self.grace;
            Held {
                cause: format!(
                    "market opening: grace until {}",
                    end.with_timezone(&cal.tz).format("%H:%M")
                ),
                until: end,
            }
        };
        let state = cal.state(t);
        if state.open {
            // Within the grace of today's open?
            let today = local.date_naive();
            let Day::Session { open, .. } = cal.day(today) else {
                return None;
            };
            let opened = cal.at(today, open);
            return (t < opened + self.grace).then(|| grace_cause(opened));
        }
        let why = state.why.unwrap_or_default();
        let midnight = local
            .date_naive()
            .succ_opt()
            .map_or(state.until, |d| cal.at(d, NaiveTime::MIN));
        Some(Held {
            cause: format!("market closed: {why}"),
            until: state.until.min(midnight),
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn ny(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        chrono_tz::America::New_York
            .with_ymd_and_hms(y, m, d, h, min, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn holds_name_their_cause_and_lift_at_the_open_plus_grace() {
        let nyse = Arc::new(Calendar::built_in("nyse").unwrap());
        let m = MarketHours::new(nyse, Span::secs(300));
        // Thanksgiving 2026.
        let h = m.held(ny(2026, 11, 26, 11, 0)).unwrap();
        assert_eq!(h.cause, "market closed: Thanksgiving Day");
        assert_eq!(h.until, ny(2026, 11, 27, 0, 0), "the cause stands until midnight");
        let h = m.held(ny(2026, 11, 27, 3, 0)).unwrap();
        assert_eq!(h.cause, "market closed: opens at 09:30");
        assert_eq!(h.until, ny(2026, 11, 27, 9, 30));
        let h = m.held(ny(2026, 11, 27, 9, 30)).unwrap();
        assert_eq!(h.until, ny(2026, 11, 27, 9, 35));
        // The day after: open, then closed from 13:00 until Monday's open.
        assert_eq!(
            m.held(ny(2026, 11, 27, 9, 34)).unwrap().cause,
            "market opening: grace until 09:35"
        );
        assert_eq!(m.held(ny(2026, 11, 27, 9, 35)), None);
        assert_eq!(m.held(ny(2026, 11, 27, 12, 59)), None);
        let h = m.held(ny(2026, 11, 27, 13, 0)).unwrap();
        assert_eq!(h.cause, "market closed: early close 13:00");
        assert_eq!(h.until, ny(2026, 11, 28, 0, 0));
        let s = m.calendar.state(ny(2026, 11, 27, 13, 0));
        assert_eq!((s.open, s.until), (false, ny(2026, 11, 30, 9, 30)));
        assert_eq!(
            m.held(ny(2026, 11, 28, 12, 0)).unwrap().cause,
            "market closed: weekend"
        );
        assert_eq!(
            m.held(ny(2026, 11, 30, 8, 0)).unwrap().cause,
            "market closed: opens at 09:30"
        );
        assert_eq!(
            m.held(ny(2026, 11, 30, 16, 0)).unwrap().cause,
            "market closed: after the close 16:00"
        );
    }
}
