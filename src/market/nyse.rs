//! NYSE's holiday rules (Rule 7.2): the fixed-date holidays with their Saturday/Sunday
//! observance, the Monday holidays, Good Friday from the date of Easter, Juneteenth from
//! 2022, the early closes, and the unscheduled closures the exchange announced.

use chrono::{Datelike, NaiveDate, Weekday};

/// The `n`th `weekday` of a month (n from 1), or the last when `n` is 0.
fn nth(year: i32, month: u32, weekday: Weekday, n: u32) -> NaiveDate {
    if n == 0 {
        let next = if month == 12 {
            NaiveDate::from_ymd_opt(year + 1, 1, 1)
        } else {
            NaiveDate::from_ymd_opt(year, month + 1, 1)
        };
        let mut d = next.and_then(|d| d.pred_opt()).unwrap_or_default();
        while d.weekday() != weekday {
            d = d.pred_opt().unwrap_or_default();
        }
        d
    } else {
        NaiveDate::from_weekday_of_month_opt(year, month, weekday, n as u8).unwrap_or_default()
    }
}

/// Easter Sunday (Gregorian; the anonymous algorithm of Meeus/Jones/Butcher).
pub fn easter(year: i32) -> NaiveDate {
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, month as u32, day as u32).unwrap_or_default()
}

/// A fixed-date holiday as observed: Saturday → the Friday before, Sunday → the
/// Monday after.
fn observed(d: NaiveDate) -> NaiveDate {
    match d.weekday() {
        Weekday::Sat => d.pred_opt().unwrap_or(d),
        Weekday::Sun => d.succ_opt().unwrap_or(d),
        _ => d,
    }
}

fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

/// The holiday on `d`, if NYSE is closed for one.
pub fn holiday(d: NaiveDate) -> Option<&'static str> {
    let y = d.year();
    // New Year's Day on a Saturday is not observed on the Friday before (the
    // exchange's rule: the year-end close is not moved); on a Sunday, Monday.
    let new_year = ymd(y, 1, 1);
    if new_year.weekday() != Weekday::Sat && observed(new_year) == d {
        return Some("New Year's Day");
    }
    let list: [(NaiveDate, &'static str); 9] = [
        (nth(y, 1, Weekday::Mon, 3), "Martin Luther King Jr. Day"),
        (nth(y, 2, Weekday::Mon, 3), "Washington's Birthday"),
        (easter(y) - chrono::Duration::days(2), "Good Friday"),
        (nth(y, 5, Weekday::Mon, 0), "Memorial Day"),
        (observed(ymd(y, 7, 4)), "Independence Day"),
        (nth(y, 9, Weekday::Mon, 1), "Labor Day"),
        (nth(y, 11, Weekday::Thu, 4), "Thanksgiving Day"),
        (observed(ymd(y, 12, 25)), "Christmas Day"),
        (observed(ymd(y, 6, 19)), "Juneteenth National Independence Day"),
    ];
    list.iter()
        .find(|(date, name)| *date == d && (y >= 2022 || !name.starts_with("Juneteenth")))
        .map(|(_, name)| *name)
}

/// The reason NYSE closes early (13:00) on `d`, if it does: the day before
/// Independence Day, the day after Thanksgiving, Christmas Eve — each only when
/// it is a trading day and the holiday it precedes is not observed on it.
pub fn early_close(d: NaiveDate) -> Option<&'static str> {
    let y = d.year();
    let weekday = !matches!(d.weekday(), Weekday::Sat | Weekday::Sun);
    if !weekday || holiday(d).is_some() {
        return None;
    }
    if d == ymd(y, 7, 3) && ymd(y, 7, 4).weekday() != Weekday::Sat {
        return Some("the day before Independence Day");
    }
    if d == nth(y, 11, Weekday::Thu, 4) + chrono::Duration::days(1) {
        return Some("the day after Thanksgiving");
    }
    if d == ymd(y, 12, 24) {
        return Some("Christmas Eve");
    }
    None
}

/// Closures NYSE announced outside its holiday rules (national days of mourning,
/// weather), as (date, reason).
pub const NYSE_SPECIAL_CLOSURES: [(&str, &str); 4] = [
    ("2012-10-29", "Hurricane Sandy"),
    ("2012-10-30", "Hurricane Sandy"),
    (
        "2018-12-05",
        "National Day of Mourning for President George H. W. Bush",
    ),
    (
        "2025-01-09",
        "National Day of Mourning for President Jimmy Carter",
    ),
];
