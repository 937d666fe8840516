//! The desk's time zone (`[server] timezone`): every time vitals shows a person — on the
//! page, on `/alerts`, in emails, in the CSV — is in it, with its abbreviation
//! ("09:31:05 EST"). Data keeps UTC (the tables, the JSON API, the logs).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// A time zone of the IANA database, named as in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeskZone(Tz);

impl Default for DeskZone {
    fn default() -> Self {
        DeskZone::host()
    }
}

impl DeskZone {
    /// UTC.
    pub const UTC: DeskZone = DeskZone(Tz::UTC);

    /// The zone named `name` ("America/New_York"), or what is wrong with the name.
    pub fn parse(name: &str) -> Result<DeskZone, String> {
        name.trim().parse::<Tz>().map(DeskZone).map_err(|_| {
            format!("`{name}` is not a time zone of the IANA database: write e.g. \"America/New_York\", \"Europe/London\" or \"UTC\"")
        })
    }

    /// The host's zone (`$TZ`, else `/etc/localtime`), UTC when it cannot be told.
    pub fn host() -> DeskZone {
        std::env::var("TZ")
            .ok()
            .and_then(|tz| DeskZone::parse(tz.trim_start_matches(':')).ok())
            .or_else(|| {
                iana_time_zone::get_timezone()
                    .ok()
                    .and_then(|n| DeskZone::parse(&n).ok())
            })
            .unwrap_or(DeskZone::UTC)
    }

    /// The zone's IANA name.
    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    /// "09:31:05 EST".
    pub fn time(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.0).format("%H:%M:%S %Z").to_string()
    }

    /// "2026-12-04 09:31:05 EST".
    pub fn date_time(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.0)
            .format("%Y-%m-%d %H:%M:%S %Z")
            .to_string()
    }

    /// RFC 3339 at the zone's offset ("2026-12-04T09:31:05-05:00"), for the CSV.
    pub fn rfc3339(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.0).to_rfc3339()
    }

    /// [`DeskZone::date_time`] of an RFC 3339 text; the text as it is when it is not one.
    pub fn date_time_text(&self, text: &str) -> String {
        match DateTime::parse_from_rfc3339(text) {
            Ok(t) => self.date_time(t.with_timezone(&Utc)),
            Err(_) => text.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn times_show_the_zone_and_its_abbreviation() {
        let ny = DeskZone::parse("America/New_York").unwrap();
        let winter = Utc.with_ymd_and_hms(2026, 12, 4, 14, 31, 5).unwrap();
        assert_eq!(ny.time(winter), "09:31:05 EST");
        let summer = Utc.with_ymd_and_hms(2026, 7, 1, 13, 30, 0).unwrap();
        assert_eq!(ny.date_time(summer), "2026-07-01 09:30:00 EDT");
        assert_eq!(ny.rfc3339(winter), "2026-12-04T09:31:05-05:00");
        assert_eq!(
            ny.date_time_text("2026-12-04T14:31:05.120+00:00"),
            "2026-12-04 09:31:05 EST"
        );
        assert_eq!(ny.date_time_text("soon"), "soon");
        assert!(DeskZone::parse("Mars/Olympus").unwrap_err().contains("IANA"));
    }
}
