//! Component tables (`[checks.<id>]`, `[sinks.<id>]`): the common keys, the kind
//! looked up in its family's registry (with suggestions), the kind's own keys and the
//! kind's own validation; then the check-specific parts (durations, maintenance
//! windows) and the `depends_on` graph.

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::diag::Collector;
use super::walk::{deserialize_table, deserialize_with, without_unknown_keys};
use super::{COMMON_KEYS, CheckSpec, CommonSettings, Defaults, SINK_COMMON_KEYS, SinkSettings, SinkSpec};
use crate::check::Checks;
use crate::plugin::{Family, Kinds, ParsedComponent, Registration, suggest, valid_id};
use crate::rules::{Window, WindowConfig};
use crate::sinks::Sinks;

/// The common keys of a component table (`[checks.<id>]`, `[sinks.<id>]`).
pub(super) trait CommonKeys: for<'de> Deserialize<'de> {
    /// The keys every kind of this component has.
    const KEYS: &'static [&'static str];
    /// The `kind` key's value.
    fn kind(&self) -> &str;
}

impl CommonKeys for CommonSettings {
    const KEYS: &'static [&'static str] = &COMMON_KEYS;
    fn kind(&self) -> &str {
        &self.kind
    }
}

impl CommonKeys for SinkSettings {
    const KEYS: &'static [&'static str] = &SINK_COMMON_KEYS;
    fn kind(&self) -> &str {
        &self.kind
    }
}

/// Checks the id of `[<what>.<id>]` (it appears in URLs, metrics and file names).
pub(super) fn component_id(
    c: &mut Collector,
    what: &str,
    id_key: &Spanned<std::borrow::Cow<'_, str>>,
) -> Option<String> {
    let id = id_key.get_ref().to_string();
    if !valid_id(&id) {
        c.error(
            Some(id_key.span()),
            Some(&format!("{what}.{id}")),
            None,
            "an id may only use letters, digits, `_` and `-` (it appears in URLs, metrics and file names)",
        );
        return None;
    }
    Some(id)
}

/// A parsed component table: its common keys, its kind, the kind's own config, and the
/// table (to place later errors).
struct Component<'t, F: Family, S> {
    settings: S,
    kind: &'static Registration<F>,
    params: Box<F::Parsed>,
    table: &'t DeTable<'t>,
}

/// Parses one component table: its common keys, its kind (with suggestions), its
/// kind's own keys (unknown ones reported with the expected list) and the kind's pure
/// validation. `None` if anything was wrong (all of it reported).
fn parse_component<'t, F: Family, S: CommonKeys>(
    c: &mut Collector,
    kinds: &Kinds<F>,
    section: &str,
    value: &'t Spanned<DeValue<'t>>,
) -> Option<Component<'t, F, S>> {
    let DeValue::Table(table) = value.get_ref() else {
        c.error(
            Some(value.span()),
            None,
            Some(section),
            format!(
                "expected a table `[{section}]`, found {}",
                value.get_ref().type_str()
            ),
        );
        return None;
    };
    // Split the common keys from the kind's own.
    let mut common = DeTable::new();
    let mut own = DeTable::new();
    for (k, v) in table.iter() {
        if S::KEYS.contains(&k.get_ref().as_ref()) {
            common.insert(k.clone(), v.clone());
        } else {
            own.insert(k.clone(), v.clone());
        }
    }
    // Every problem of the table at once: the common keys, the kind's keys (unknown
    // ones, then each that does not fit), then the kind's own validation.
    let settings: Option<S> = deserialize_table(c, section, &common, value.span());
    let kind_name = match &settings {
        Some(s) => s.kind().to_owned(),
        // The common keys failed: the kind may still be readable.
        None => table.get("kind").and_then(|k| k.get_ref().as_str())?.to_owned(),
    };
    let Some(kind) = kinds.get(&kind_name) else {
        let m = format!(
            "unknown {} `{kind_name}`{}",
            F::NOUN,
            kinds.unknown_kind_hint(&kind_name)
        );
        c.error(
            table.get("kind").map(Spanned::span),
            Some(section),
            Some("kind"),
            m,
        );
        return None;
    };
    let kind_keys: Vec<String> = (kind.keys)().into_iter().map(|k| k.name).collect();
    let mut allowed: Vec<&str> = kind_keys.iter().map(String::as_str).collect();
    allowed.extend(S::KEYS);
    let own = without_unknown_keys(c, section, &own, &allowed, &format!("keys of `{}`", kind.name));
    let params = deserialize_with(c, section, &own, value.span(), kind.parse)?;
    let settings = settings?;
    let mut ok = true;
    for e in params.validate() {
        let (span, message) = match table.get_key_value(e.key.as_str()) {
            Some((_, v)) => (v.span(), e.message),
            // A key the table does not set: its default is what is wrong.
            None => (
                value.span(),
                format!("{} (`{}` is not set here: that is its default)", e.message, e.key),
            ),
        };
        c.error(Some(span), Some(section), Some(&e.key), message);
        ok = false;
    }
    ok.then_some(Component {
        settings,
        kind,
        params,
        table,
    })
}

pub(super) fn parse_sink(
    c: &mut Collector,
    kinds: &Kinds<Sinks>,
    id_key: &Spanned<std::borrow::Cow<'_, str>>,
    value: &Spanned<DeValue<'_>>,
) -> Option<SinkSpec> {
    let id = component_id(c, "sinks", id_key)?;
    let section = format!("sinks.{id}");
    let Component {
        settings,
        kind,
        params,
        ..
    } = parse_component::<_, SinkSettings>(c, kinds, &section, value)?;
    Some(SinkSpec {
        id,
        kind: kind.name,
        min_severity: settings.min_severity,
        failing_after: settings.failing_after.get(),
        failing_severity: settings.failing_severity,
        params,
    })
}

pub(super) fn parse_check(
    c: &mut Collector,
    registry: &Kinds<Checks>,
    defaults: &Defaults,
    calendars: &super::Calendars,
    id_key: &Spanned<std::borrow::Cow<'_, str>>,
    value: &Spanned<DeValue<'_>>,
) -> Option<CheckSpec> {
    let id = component_id(c, "checks", id_key)?;
    let section = format!("checks.{id}");
    let Component {
        settings,
        kind,
        params,
        table,
    } = parse_component::<_, CommonSettings>(c, registry, &section, value)?;
    let mut ok = true;
    let interval = settings.interval.unwrap_or(defaults.interval);
    let timeout = settings.timeout.unwrap_or(defaults.timeout);
    for (key, d) in [("interval", settings.interval), ("timeout", settings.timeout)] {
        if d.is_some_and(|d| d.is_zero()) {
            c.error(
                table.get(key).map(Spanned::span),
                Some(&section),
                Some(key),
                "must be longer than 0s",
            );
            ok = false;
        }
    }
    let common = crate::check::Common {
        interval: *interval,
        timeout: *timeout,
    };
    for e in params.validate_common(&common) {
        let span = table
            .get_key_value(e.key.as_str())
            .map(|(_, v)| v.span())
            .unwrap_or(value.span());
        c.error(Some(span), Some(&section), Some(&e.key), e.message);
        ok = false;
    }
    let maintenance = compile_windows(c, &section, table, &settings.maintenance);
    let market = super::calendars::resolve(
        c,
        calendars,
        &section,
        table,
        settings.market_hours.as_deref(),
        settings.market_grace,
    );
    let market = market.map_err(|()| ok = false).ok().flatten();
    (ok && maintenance.is_some()).then(|| CheckSpec {
        id,
        kind: kind.name,
        interval: *interval,
        timeout: *timeout,
        jitter: *settings.jitter.unwrap_or(defaults.jitter).min(interval),
        depends_on: settings.depends_on,
        maintenance_config: settings.maintenance,
        maintenance: maintenance.unwrap_or_default(),
        market,
        unknown_after: settings.unknown_after.unwrap_or(defaults.unknown_after).get(),
        unknown_severity: settings.unknown_severity.unwrap_or(defaults.unknown_severity),
        params,
    })
}

/// Compiles maintenance windows, reporting each bad one at the `maintenance` key.
pub(super) fn compile_windows(
    c: &mut Collector,
    section: &str,
    table: &DeTable<'_>,
    windows: &[WindowConfig],
) -> Option<Vec<Window>> {
    let mut ok = true;
    let mut out = Vec::new();
    for w in windows {
        match Window::compile(w) {
            Ok(w) => out.push(w),
            Err(e) => {
                c.error(
                    table.get("maintenance").map(Spanned::span),
                    Some(section),
                    Some("maintenance"),
                    e,
                );
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

pub(super) fn validate_dependencies(c: &mut Collector, root: &DeTable<'_>) {
    // Read `depends_on` straight from the document, so a dependency typo is reported
    // even in a check that has other errors.
    let Some(tables) = root.get("checks").and_then(|v| v.get_ref().as_table()) else {
        return;
    };
    let all_ids: Vec<&str> = tables.keys().map(|k| k.get_ref().as_ref()).collect();
    let mut edges: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut spans = BTreeMap::new();
    for (id, table) in tables.iter() {
        let id = id.get_ref().as_ref();
        let Some(deps) = table.get_ref().as_table().and_then(|t| t.get("depends_on")) else {
            continue;
        };
        spans.insert(id, deps.span());
        let Some(list) = deps.get_ref().as_array() else {
            continue; // a type error, reported when the check is parsed
        };
        let section = format!("checks.{id}");
        for dep in list.iter() {
            let Some(name) = dep.get_ref().as_str() else {
                continue;
            };
            if name == id {
                c.error(
                    Some(dep.span()),
                    Some(&section),
                    Some("depends_on"),
                    "a check cannot depend on itself",
                );
            } else if !all_ids.contains(&name) {
                let m = format!(
                    "depends on `{name}`, which is not a configured check{}",
                    suggest(name, all_ids.iter().copied())
                );
                c.error(Some(dep.span()), Some(&section), Some("depends_on"), m);
            } else {
                edges.entry(id).or_default().push(name);
            }
        }
    }
    let mut reported = HashSet::new();
    for start in edges.keys() {
        let mut path = vec![*start];
        if let Some(cycle) = find_cycle(&edges, &mut path)
            && reported.insert(cycle.iter().min().copied().unwrap_or_default().to_owned())
        {
            let first = cycle[0];
            c.error(
                spans.get(first).cloned(),
                Some(&format!("checks.{first}")),
                Some("depends_on"),
                format!("dependency cycle: {}", cycle.join(" -> ")),
            );
        }
    }
}

fn find_cycle<'a>(edges: &BTreeMap<&'a str, Vec<&'a str>>, path: &mut Vec<&'a str>) -> Option<Vec<&'a str>> {
    let last = *path.last()?;
    for next in edges.get(last).into_iter().flatten() {
        if let Some(pos) = path.iter().position(|p| p == next) {
            let mut cycle = path[pos..].to_vec();
            cycle.push(next);
            return Some(cycle);
        }
        path.push(next);
        if let Some(c) = find_cycle(edges, path) {
            return Some(c);
        }
        path.pop();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dependency_cycle_is_found_with_its_path() {
        let edges: BTreeMap<&str, Vec<&str>> = BTreeMap::from([
            ("a", vec!["b"]),
            ("b", vec!["c"]),
            ("c", vec!["a"]),
            ("d", vec!["a"]),
        ]);
        assert_eq!(find_cycle(&edges, &mut vec!["a"]).unwrap(), ["a", "b", "c", "a"]);
        assert_eq!(find_cycle(&edges, &mut vec!["d"]).unwrap(), ["a", "b", "c", "a"]);
        let acyclic: BTreeMap<&str, Vec<&str>> = BTreeMap::from([("a", vec!["b"]), ("b", vec![])]);
        assert_eq!(find_cycle(&acyclic, &mut vec!["a"]), None);
    }
}
