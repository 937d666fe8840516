//! `[calendars.<name>]` and the `market_hours` / `market_grace` keys of checks and
//! rules: each name resolved against the built-in calendars and the file's own, an
//! unknown one refused with the list of known ones.

use std::collections::BTreeMap;
use std::sync::Arc;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::diag::Collector;
use super::walk::{deserialize_table, keys_of, without_unknown_keys};
use crate::duration::Span;
use crate::market::{BUILT_IN, Calendar, CalendarConfig, MarketHours};
use crate::plugin::{suggest, valid_id};

/// Every calendar a check or rule may name: the built-in ones, changed or joined by the
/// file's `[calendars.<name>]`.
#[derive(Debug, Clone)]
pub struct Calendars(BTreeMap<String, Arc<Calendar>>);

impl Default for Calendars {
    fn default() -> Self {
        Calendars(
            BUILT_IN
                .iter()
                .filter_map(|n| Some(((*n).to_owned(), Arc::new(Calendar::built_in(n)?))))
                .collect(),
        )
    }
}

impl Calendars {
    /// The calendar of this name.
    pub fn get(&self, name: &str) -> Option<&Arc<Calendar>> {
        self.0.get(name)
    }

    /// The names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

/// Parses the `calendars` table.
pub(super) fn parse(c: &mut Collector, value: &Spanned<DeValue<'_>>) -> Calendars {
    let mut out = Calendars::default();
    let DeValue::Table(table) = value.get_ref() else {
        c.error(
            Some(value.span()),
            None,
            Some("calendars"),
            "expected a table of calendars (`[calendars.<name>]`)",
        );
        return out;
    };
    let keys = keys_of::<CalendarConfig>();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    for (name, value) in table.iter() {
        let name = name.get_ref().as_ref();
        let section = format!("calendars.{name}");
        if !valid_id(name) {
            c.error(
                Some(value.span()),
                Some(&section),
                None,
                "a calendar name may only use letters, digits, `_` and `-`",
            );
            continue;
        }
        let DeValue::Table(t) = value.get_ref() else {
            c.error(
                Some(value.span()),
                None,
                Some(name),
                format!("expected a table `[{section}]`"),
            );
            continue;
        };
        let known = without_unknown_keys(c, &section, t, &keys, "keys of a calendar");
        let Some(config) = deserialize_table::<CalendarConfig>(c, &section, &known, value.span()) else {
            continue;
        };
        match Calendar::compile(name, &config) {
            Ok(cal) => {
                out.0.insert(name.to_owned(), Arc::new(cal));
            }
            Err((key, message)) => {
                let span = t.get(key.as_str()).map(Spanned::span).or(Some(value.span()));
                c.error(span, Some(&section), Some(&key), message);
            }
        }
    }
    out
}

/// Resolves `market_hours` / `market_grace` of a check or rule; `Err` when reported.
pub(super) fn resolve(
    c: &mut Collector,
    calendars: &Calendars,
    section: &str,
    table: &DeTable<'_>,
    name: Option<&str>,
    grace: Option<Span>,
) -> Result<Option<MarketHours>, ()> {
    let Some(name) = name else {
        if grace.is_some() {
            c.error(
                table.get("market_grace").map(Spanned::span),
                Some(section),
                Some("market_grace"),
                "a grace after the open needs `market_hours` (e.g. `market_hours = \"nyse\"`)",
            );
            return Err(());
        }
        return Ok(None);
    };
    match calendars.get(name) {
        Some(cal) => Ok(Some(MarketHours::new(cal.clone(), grace.unwrap_or(Span::ZERO)))),
        None => {
            let known: Vec<&str> = calendars.names().collect();
            c.error(
                table.get("market_hours").map(Spanned::span),
                Some(section),
                Some("market_hours"),
                format!(
                    "`{name}` is not a known calendar{}; the known ones are {} (add one with `[calendars.{name}]`)",
                    suggest(name, known.iter().copied()),
                    known.join(", ")
                ),
            );
            Err(())
        }
    }
}
