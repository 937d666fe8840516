//! A compiled market calendar: the sessions of each day, its holidays and early closes
//! (NYSE's by its rules, or those a `[calendars.<name>]` lists), and the market's state
//! at a moment.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::BUILT_IN;
use super::nyse;
use super::nyse::NYSE_SPECIAL_CLOSURES;

/// One `[calendars.<name>]` section: closures added to a built-in calendar (when the
/// section is named `nyse` or `nyse_extended`, or says `based_on`), or another
/// exchange's sessions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CalendarConfig {
    /// A built-in calendar to start from (`"nyse"` or `"nyse_extended"`): its sessions,
    /// holidays and early closes; the other keys change or add to them. A section named
    /// like a built-in calendar starts from it without saying so.
    #[serde(default)]
    pub based_on: Option<String>,
    /// IANA time zone of the sessions, e.g. `"Europe/London"` (required for a calendar
    /// not based on a built-in one).
    #[serde(default)]
    pub timezone: Option<String>,
    /// When the session opens, local time, e.g. `"08:00"`.
    #[serde(default)]
    pub open: Option<String>,
    /// When the session closes, local time, e.g. `"16:30"`.
    #[serde(default)]
    pub close: Option<String>,
    /// When the session closes on an early-close day (default: the built-in calendar's,
    /// or `close`).
    #[serde(default)]
    pub early_close: Option<String>,
    /// Weekdays without a session (default `["Sat", "Sun"]`).
    #[serde(default)]
    pub closed_weekdays: Option<Vec<String>>,
    /// Extra closed days, e.g. `[{ date = "2026-12-31", reason = "unscheduled closure" }]`.
    #[serde(default)]
    pub closed: Vec<DayConfig>,
    /// Extra early-close days, closing at `early_close`, e.g. `[{ date =
    /// "2026-12-31", reason = "New Year's Eve" }]`.
    #[serde(default)]
    pub early_closes: Vec<DayConfig>,
}

/// One dated entry of a calendar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DayConfig {
    /// The day, `YYYY-MM-DD`, in the calendar's time zone.
    pub date: String,
    /// Why, shown as the cause of the alerts held back that day.
    #[serde(default)]
    pub reason: Option<String>,
}

/// What one day is on a calendar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Day {
    /// No session: a weekend, a holiday (named) or an announced closure.
    Closed(String),
    /// A session from `open` to `close` (local times); `early` names an early close.
    Session {
        /// Local opening time.
        open: NaiveTime,
        /// Local closing time.
        close: NaiveTime,
        /// Set on an early-close day: why.
        early: Option<String>,
    },
}

/// How the holidays of a calendar are known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rules {
    /// NYSE's holiday and early-close rules.
    Nyse,
    /// Only the dates the config lists.
    Listed,
}

/// A compiled calendar.
#[derive(Debug, Clone)]
pub struct Calendar {
    name: String,
    pub(super) tz: Tz,
    open: NaiveTime,
    close: NaiveTime,
    early_close: NaiveTime,
    closed_weekdays: Vec<Weekday>,
    rules: Rules,
    closed: BTreeMap<NaiveDate, String>,
    early: BTreeMap<NaiveDate, String>,
}

/// The market state at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MarketState {
    /// The calendar's name.
    pub calendar: String,
    /// Whether a session is open.
    pub open: bool,
    /// Why it is closed ("Thanksgiving Day", "weekend", "early close 13:00", "after
    /// the close 16:00"…); for an open market, "early close 13:00" on such a day.
    pub why: Option<String>,
    /// When this changes: the close of an open session, the next open of a closed
    /// market.
    pub until: DateTime<Utc>,
    /// `until` in the calendar's time zone, for people ("Mon 30 Nov 09:30 EST").
    pub until_local: String,
}

fn time(s: &str) -> Result<NaiveTime, String> {
    NaiveTime::parse_from_str(s, "%H:%M")
        .map_err(|_| format!("`{s}` is not a time of day: write e.g. \"09:30\""))
}

fn date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("`{s}` is not a date: write e.g. \"2026-12-31\""))
}

fn weekday(s: &str) -> Result<Weekday, String> {
    s.parse::<Weekday>()
        .map_err(|_| format!("`{s}` is not a weekday: write e.g. \"Sat\""))
}

fn hhmm(t: NaiveTime) -> String {
    t.format("%H:%M").to_string()
}

impl Calendar {
    /// A built-in calendar by name.
    pub fn built_in(name: &str) -> Option<Calendar> {
        let t = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap_or_default();
        let (open, close, early_close) = match name {
            "nyse" => (t(9, 30), t(16, 0), t(13, 0)),
            "nyse_extended" => (t(4, 0), t(20, 0), t(17, 0)),
            _ => return None,
        };
        let closed = NYSE_SPECIAL_CLOSURES
            .iter()
            .filter_map(|(d, why)| Some((date(d).ok()?, (*why).to_owned())))
            .collect();
        Some(Calendar {
            name: name.to_owned(),
            tz: chrono_tz::America::New_York,
            open,
            close,
            early_close,
            closed_weekdays: vec![Weekday::Sat, Weekday::Sun],
            rules: Rules::Nyse,
            closed,
            early: BTreeMap::new(),
        })
    }

    /// Compiles a `[calendars.<name>]` section; errors are (key, message).
    pub fn compile(name: &str, c: &CalendarConfig) -> Result<Calendar, (String, String)> {
        let base_name = c.based_on.as_deref().or(BUILT_IN.contains(&name).then_some(name));
        let mut cal = match base_name {
            Some(b) => Calendar::built_in(b).ok_or_else(|| {
                (
                    "based_on".to_owned(),
                    format!(
                        "`{b}` is not a built-in calendar; the built-in ones are {}",
                        BUILT_IN.join(", ")
                    ),
                )
            })?,
            None => {
                let missing = [("timezone", &c.timezone), ("open", &c.open), ("close", &c.close)]
                    .into_iter()
                    .filter(|(_, v)| v.is_none())
                    .map(|(k, _)| k)
                    .collect::<Vec<_>>();
                if let Some(first) = missing.first() {
                    return Err((
                        (*first).to_owned(),
                        format!(
                            "a calendar not based on a built-in one needs `timezone`, `open` and `close` (missing: {}); or write `based_on = \"nyse\"`",
                            missing.join(", ")
                        ),
                    ));
                }
                Calendar {
                    name: name.to_owned(),
                    tz: Tz::UTC,
                    open: NaiveTime::MIN,
                    close: NaiveTime::MIN,
                    early_close: NaiveTime::MIN,
                    closed_weekdays: vec![Weekday::Sat, Weekday::Sun],
                    rules: Rules::Listed,
                    closed: BTreeMap::new(),
                    early: BTreeMap::new(),
                }
            }
        };
        cal.name = name.to_owned();
        fn key(k: &'static str) -> impl Fn(String) -> (String, String) {
            move |m| (k.to_owned(), m)
        }
        if let Some(tz) = &c.timezone {
            cal.tz = tz.parse().map_err(|_| {
                (
                    "timezone".to_owned(),
                    format!("unknown time zone {tz:?}: use an IANA name such as \"Europe/London\""),
                )
            })?;
        }
        if let Some(open) = &c.open {
            cal.open = time(open).map_err(key("open"))?;
        }
        if let Some(close) = &c.close {
            cal.close = time(close).map_err(key("close"))?;
            if base_name.is_none() {
                cal.early_close = cal.close;
            }
        }
        if let Some(early) = &c.early_close {
            cal.early_close = time(early).map_err(key("early_close"))?;
        }
        if cal.open >= cal.close {
            return Err((
                "close".to_owned(),
                format!(
                    "the session closes ({}) before it opens ({})",
                    hhmm(cal.close),
                    hhmm(cal.open)
                ),
            ));
        }
        if !(cal.open < cal.early_close && cal.early_close <= cal.close) {
            return Err((
                "early_close".to_owned(),
                format!(
                    "an early close ({}) must fall within the session",
                    hhmm(cal.early_close)
                ),
            ));
        }
        if let Some(days) = &c.closed_weekdays {
            cal.closed_weekdays = days
                .iter()
                .map(|d| weekday(d))
                .collect::<Result<_, _>>()
                .map_err(key("closed_weekdays"))?;
        }
        for d in &c.closed {
            let day = date(&d.date).map_err(key("closed"))?;
            let why = d.reason.clone().unwrap_or_else(|| "closed".to_owned());
            cal.closed.insert(day, why);
        }
        for d in &c.early_closes {
            let day = date(&d.date).map_err(key("early_closes"))?;
            cal.early
                .insert(day, d.reason.clone().unwrap_or_else(|| "early close".to_owned()));
        }
        Ok(cal)
    }

    /// The calendar's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What `day` (a local date) is.
    pub fn day(&self, day: NaiveDate) -> Day {
        if let Some(why) = self.closed.get(&day) {
            return Day::Closed(why.clone());
        }
        if self.closed_weekdays.contains(&day.weekday()) {
            let why = if matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
                "weekend".to_owned()
            } else {
                format!("closed on {}s", day.format("%A"))
            };
            return Day::Closed(why);
        }
        if self.rules == Rules::Nyse
            && let Some(holiday) = nyse::holiday(day)
        {
            return Day::Closed(holiday.to_owned());
        }
        let early = self.early.get(&day).cloned().or_else(|| match self.rules {
            Rules::Nyse => nyse::early_close(day).map(str::to_owned),
            Rules::Listed => None,
        });
        let close = if early.is_some() {
            self.early_close
        } else {
            self.close
        };
        Day::Session {
            open: self.open,
            close,
            early,
        }
    }

    /// A local date and time as UTC (a time skipped by a daylight-saving change is
    /// taken an hour later).
    pub(super) fn at(&self, day: NaiveDate, t: NaiveTime) -> DateTime<Utc> {
        let local = day.and_time(t);
        self.tz
            .from_local_datetime(&local)
            .earliest()
            .or_else(|| {
                self.tz
                    .from_local_datetime(&(local + Duration::hours(1)))
                    .earliest()
            })
            .map_or_else(|| Utc.from_utc_datetime(&local), |t| t.with_timezone(&Utc))
    }

    /// The first session opening strictly after the local date `after`, as (its
    /// date, its time). Looks a year ahead; a calendar closed for a whole year has
    /// none.
    fn next_open(&self, after: NaiveDate) -> Option<(NaiveDate, DateTime<Utc>)> {
        let mut d = after;
        for _ in 0..370 {
            d = d.succ_opt()?;
            if let Day::Session { open, .. } = self.day(d) {
                return Some((d, self.at(d, open)));
            }
        }
        None
    }

    /// The market state at `t`.
    pub fn state(&self, t: DateTime<Utc>) -> MarketState {
        let today = t.with_timezone(&self.tz).date_naive();
        let far = t + Duration::days(366);
        let (open, why, until) = match self.day(today) {
            Day::Session { open, close, early } => {
                let (o, c) = (self.at(today, open), self.at(today, close));
                let early_why = early.as_ref().map(|_| format!("early close {}", hhmm(close)));
                if t < o {
                    (false, Some(format!("opens at {}", hhmm(open))), o)
                } else if t < c {
                    (true, early_why, c)
                } else {
                    let next = self.next_open(today).map_or(far, |(_, t)| t);
                    let why = early_why.unwrap_or_else(|| format!("after the close {}", hhmm(close)));
                    (false, Some(why), next)
                }
            }
            Day::Closed(why) => (false, Some(why), self.next_open(today).map_or(far, |(_, t)| t)),
        };
        MarketState {
            calendar: self.name.clone(),
            open,
            why,
            until,
            until_local: until
                .with_timezone(&self.tz)
                .format("%a %d %b %H:%M %Z")
                .to_string(),
        }
    }
}

impl MarketState {
    /// One line for the page: "nyse open until Mon 30 Nov 16:00 EST", "nyse closed
    /// until Mon 30 Nov 09:30 EST: Thanksgiving Day".
    pub fn describe(&self) -> String {
        match (self.open, &self.why) {
            (true, None) => format!("{} open until {}", self.calendar, self.until_local),
            (true, Some(why)) => format!("{} open until {} ({why})", self.calendar, self.until_local),
            (false, why) => format!(
                "{} closed until {}{}",
                self.calendar,
                self.until_local,
                why.as_deref().map(|w| format!(": {w}")).unwrap_or_default()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::duration::Span;
    use crate::market::MarketHours;

    fn d(s: &str) -> NaiveDate {
        date(s).unwrap()
    }

    /// Every full-day closure of NYSE in a year, from the calendar.
    fn closures(cal: &Calendar, year: i32) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut day = NaiveDate::from_ymd_opt(year, 1, 1).unwrap();
        while day.year() == year {
            if let Day::Closed(why) = cal.day(day)
                && why != "weekend"
            {
                out.push((day.to_string(), why));
            }
            day = day.succ_opt().unwrap();
        }
        out
    }

    fn early_closes(cal: &Calendar, year: i32) -> Vec<String> {
        let mut out = Vec::new();
        let mut day = NaiveDate::from_ymd_opt(year, 1, 1).unwrap();
        while day.year() == year {
            if let Day::Session {
                early: Some(_),
                close,
                ..
            } = cal.day(day)
            {
                assert_eq!(hhmm(close), "13:00");
                out.push(day.to_string());
            }
            day = day.succ_opt().unwrap();
        }
        out
    }

    #[test]
    fn nyse_2025_matches_the_published_calendar() {
        let cal = Calendar::built_in("nyse").unwrap();
        let got: Vec<String> = closures(&cal, 2025).into_iter().map(|(d, _)| d).collect();
        // NYSE's published 2025 holidays, plus the closure of 9 January.
        assert_eq!(
            got,
            [
                "2025-01-01",
                "2025-01-09",
                "2025-01-20",
                "2025-02-17",
                "2025-04-18",
                "2025-05-26",
                "2025-06-19",
                "2025-07-04",
                "2025-09-01",
                "2025-11-27",
                "2025-12-25"
            ]
        );
        assert_eq!(
            early_closes(&cal, 2025),
            ["2025-07-03", "2025-11-28", "2025-12-24"]
        );
    }

    #[test]
    fn nyse_2026_matches_the_published_calendar() {
        let cal = Calendar::built_in("nyse").unwrap();
        let got = closures(&cal, 2026);
        let dates: Vec<&str> = got.iter().map(|(d, _)| d.as_str()).collect();
        assert_eq!(
            dates,
            [
                "2026-01-01",
                "2026-01-19",
                "2026-02-16",
                "2026-04-03",
                "2026-05-25",
                "2026-06-19",
                "2026-07-03",
                "2026-09-07",
                "2026-11-26",
                "2026-12-25"
            ]
        );
        // Independence Day falls on a Saturday: observed Friday 3 July, no early close
        // on the 2nd.
        assert_eq!(got[6].1, "Independence Day");
        assert_eq!(got[3].1, "Good Friday");
        assert_eq!(early_closes(&cal, 2026), ["2026-11-27", "2026-12-24"]);
    }

    #[test]
    fn the_saturday_and_sunday_rules_of_later_years() {
        let cal = Calendar::built_in("nyse").unwrap();
        // 2027: Juneteenth on a Saturday → Friday 18 June; Independence Day on a
        // Sunday → Monday 5 July; Christmas on a Saturday → Friday 24 December (no
        // early close then).
        let got: Vec<String> = closures(&cal, 2027).into_iter().map(|(d, _)| d).collect();
        for day in ["2027-06-18", "2027-07-05", "2027-12-24", "2027-03-26"] {
            assert!(got.contains(&day.to_owned()), "{day} in {got:?}");
        }
        assert_eq!(early_closes(&cal, 2027), ["2027-11-26"]);
        // 2028: New Year's Day on a Saturday is not observed on Friday 31 December
        // 2027; Christmas on a Monday.
        assert!(!got.contains(&"2027-12-31".to_owned()));
        assert!(matches!(cal.day(d("2028-12-25")), Day::Closed(_)));
        // Juneteenth only from 2022.
        assert!(matches!(cal.day(d("2021-06-18")), Day::Session { .. }));
        // Good Friday 2024, 2029 and 2030.
        for day in ["2024-03-29", "2029-03-30", "2030-04-19"] {
            assert_eq!(cal.day(d(day)), Day::Closed("Good Friday".into()), "{day}");
        }
        // Every year through 2030 has its nine or ten holidays.
        for year in 2024..=2030 {
            let n = closures(&cal, year).len();
            assert!((9..=11).contains(&n), "{year}: {n}");
        }
    }

    #[test]
    fn daylight_saving_changes_in_new_york() {
        let nyse = Arc::new(Calendar::built_in("nyse").unwrap());
        let m = MarketHours::new(nyse.clone(), Span::ZERO);
        // 2026-03-08 (Sunday): clocks go forward; Monday opens 09:30 EDT = 13:30 UTC.
        let monday = Utc.with_ymd_and_hms(2026, 3, 9, 13, 30, 0).unwrap();
        assert_eq!(
            nyse.state(Utc.with_ymd_and_hms(2026, 3, 6, 21, 0, 0).unwrap())
                .until,
            monday
        );
        assert!(m.held(monday).is_none());
        assert!(m.held(monday - Duration::seconds(1)).is_some());
        // Friday before was still EST: closed at 16:00 EST = 21:00 UTC.
        assert!(
            m.held(Utc.with_ymd_and_hms(2026, 3, 6, 20, 59, 0).unwrap())
                .is_none()
        );
        // 2026-11-01 (Sunday): clocks go back; Monday opens 09:30 EST = 14:30 UTC.
        let monday = Utc.with_ymd_and_hms(2026, 11, 2, 14, 30, 0).unwrap();
        assert_eq!(
            nyse.state(Utc.with_ymd_and_hms(2026, 10, 31, 12, 0, 0).unwrap())
                .until,
            monday
        );
        assert!(
            m.held(Utc.with_ymd_and_hms(2026, 11, 2, 13, 30, 0).unwrap())
                .is_some()
        );
        assert!(m.held(monday).is_none());
        let s = nyse.state(Utc.with_ymd_and_hms(2026, 10, 31, 12, 0, 0).unwrap());
        assert_eq!(s.until_local, "Mon 02 Nov 09:30 EST");
    }

    #[test]
    fn extended_hours_and_an_unscheduled_closure() {
        let ext = Calendar::built_in("nyse_extended").unwrap();
        assert_eq!(
            ext.day(d("2026-11-27")),
            Day::Session {
                open: time("04:00").unwrap(),
                close: time("17:00").unwrap(),
                early: Some("the day after Thanksgiving".into())
            }
        );
        let c = CalendarConfig {
            closed: vec![DayConfig {
                date: "2026-12-31".into(),
                reason: Some("unscheduled closure".into()),
            }],
            ..Default::default()
        };
        let nyse = Calendar::compile("nyse", &c).unwrap();
        assert_eq!(
            nyse.day(d("2026-12-31")),
            Day::Closed("unscheduled closure".into())
        );
        assert!(
            matches!(nyse.day(d("2026-11-26")), Day::Closed(_)),
            "still the built-in holidays"
        );
    }

    #[test]
    fn another_exchange() {
        let c = CalendarConfig {
            timezone: Some("Europe/London".into()),
            open: Some("08:00".into()),
            close: Some("16:30".into()),
            closed_weekdays: Some(vec!["Sat".into(), "Sun".into()]),
            closed: vec![DayConfig {
                date: "2026-12-25".into(),
                reason: Some("Christmas Day".into()),
            }],
            ..Default::default()
        };
        let lse = Arc::new(Calendar::compile("lse", &c).unwrap());
        let m = MarketHours::new(lse, Span::ZERO);
        let london = |d: u32, h: u32| {
            chrono_tz::Europe::London
                .with_ymd_and_hms(2026, 12, d, h, 0, 0)
                .unwrap()
                .with_timezone(&Utc)
        };
        assert!(m.held(london(24, 12)).is_none());
        assert_eq!(
            m.held(london(25, 12)).unwrap().cause,
            "market closed: Christmas Day"
        );
        // Thanksgiving means nothing in London.
        assert!(m.held(london(1, 12)).is_none());
        let bad = |c: CalendarConfig| Calendar::compile("x", &c).unwrap_err();
        assert_eq!(bad(CalendarConfig::default()).0, "timezone");
        let e = bad(CalendarConfig {
            based_on: Some("lse".into()),
            ..Default::default()
        });
        assert!(e.1.contains("nyse, nyse_extended"), "{e:?}");
        let e = bad(CalendarConfig {
            timezone: Some("UTC".into()),
            open: Some("9:3x".into()),
            close: Some("16:00".into()),
            ..Default::default()
        });
        assert_eq!(e.0, "open");
    }
}
