//! `[[rules]]`: each rule validates itself ([`crate::rules::RuleConfig::validate`]);
//! here its problems are placed in the file, and its references to checks and kinds are
//! checked against the whole config.

use toml::Spanned;
use toml::de::DeValue;

use super::diag::Collector;
use super::walk::{deserialize_table, keys_of, without_unknown_keys};
use crate::check::Checks;
use crate::plugin::{Kinds, suggest};
use crate::rules::{CHECK_UNKNOWN, Rule, RuleConfig};

/// Parses and validates one `[[rules]]` entry; `None` if anything was wrong (all of it
/// reported).
pub(super) fn parse_rule(
    c: &mut Collector,
    checks: &Kinds<Checks>,
    calendars: &super::Calendars,
    check_ids: &[&str],
    index: usize,
    value: &Spanned<DeValue<'_>>,
) -> Option<Rule> {
    let DeValue::Table(table) = value.get_ref() else {
        c.error(
            Some(value.span()),
            None,
            Some("rules"),
            "each rule is a table: write `[[rules]]`",
        );
        return None;
    };
    let section = match table.get("name").and_then(|n| n.get_ref().as_str()) {
        Some(name) => format!("rules.{name}"),
        None => format!("rules[{index}]"),
    };
    let keys = keys_of::<RuleConfig>();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let known = without_unknown_keys(c, &section, table, &keys, "keys of a rule");
    let config: RuleConfig = deserialize_table(c, &section, &known, value.span())?;
    let span_of = |key: &str| table.get(key).map(Spanned::span).or(Some(value.span()));
    let mut ok = true;
    if config.name == CHECK_UNKNOWN {
        c.error(
            span_of("name"),
            Some(&section),
            Some("name"),
            "`check_unknown` is the built-in rule for checks stuck in unknown: tune it with \
             `unknown_after` and `unknown_severity` (in [defaults] or on a check), or give yours another name",
        );
        ok = false;
    }
    if config.name == crate::rules::REMEDIATION_FAILED {
        c.error(
            span_of("name"),
            Some(&section),
            Some("name"),
            "`remediation_failed` is the built-in rule that pages when a rule's `remediate` gave up: \
             tune it with `remediation_severity`, or give yours another name",
        );
        ok = false;
    }
    for id in &config.checks {
        if !check_ids.contains(&id.as_str()) {
            let m = format!(
                "`{id}` is not a configured check{}",
                suggest(id, check_ids.iter().copied())
            );
            c.error(span_of("checks"), Some(&section), Some("checks"), m);
            ok = false;
        }
    }
    for kind in &config.kinds {
        if checks.get(kind).is_none() {
            let m = format!(
                "`{kind}` is not a registered check kind{}",
                checks.unknown_kind_hint(kind)
            );
            c.error(span_of("kinds"), Some(&section), Some("kinds"), m);
            ok = false;
        }
    }
    let market = super::calendars::resolve(
        c,
        calendars,
        &section,
        table,
        config.market_hours.as_deref(),
        config.market_grace,
    );
    let market = market.map_err(|()| ok = false).ok().flatten();
    match config.compile() {
        Ok(mut rule) => {
            rule.market = market;
            ok.then_some(rule)
        }
        Err(errors) => {
            for e in errors {
                // A rule that selects nothing has no key to point at: the whole rule.
                let at = if e.key == "checks" && !table.contains_key("checks") {
                    Some(value.span())
                } else {
                    span_of(&e.key)
                };
                c.error(at, Some(&section), Some(&e.key), e.message);
            }
            None
        }
    }
}

/// Notes a rule whose condition reads `value` of a kind that can be `critical` without
/// one: what the rule does then (`on_no_value`), so no one learns it at 3 a.m.
pub(super) fn note_no_value(
    c: &mut Collector,
    kinds: &Kinds<Checks>,
    checks: &[crate::config::CheckSpec],
    rule: &Rule,
    when: Option<std::ops::Range<usize>>,
) {
    if !rule.condition.reads_value() {
        return;
    }
    let selected = rule.config.kinds.iter().map(String::as_str).chain(
        checks
            .iter()
            .filter(|s| rule.config.checks.contains(&s.id))
            .map(|s| s.kind),
    );
    let mut without: Vec<&str> = selected
        .filter(|k| kinds.get(k).is_some_and(|r| !r.value_when_critical()))
        .collect();
    without.sort_unstable();
    without.dedup();
    if without.is_empty() {
        return;
    }
    let which = without
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let what = match rule.config.on_no_value {
        crate::rules::NoValuePolicy::Fire => {
            "it fires then with the check's own message (`on_no_value = \"fire\"`, the default)"
        }
        crate::rules::NoValuePolicy::Hold => {
            "with `on_no_value = \"hold\"` it does not fire then: such a red check pages no one through this rule"
        }
        crate::rules::NoValuePolicy::Resolve => {
            "with `on_no_value = \"resolve\"` it resolves then: such a red check pages no one through this rule"
        }
    };
    c.note_at(
        when,
        Some(&format!("rules.{}", rule.config.name)),
        "when",
        format!("the condition reads `value`, which a {which} check can lack while critical (its target is gone): {what}"),
    );
}

/// Refuses a `remediate` action that the kind of some check the rule selects does not
/// offer, naming the kinds and what they offer.
pub(super) fn check_remediation(
    c: &mut Collector,
    kinds: &Kinds<Checks>,
    checks: &[crate::config::CheckSpec],
    rule: &Rule,
    at: Option<std::ops::Range<usize>>,
) {
    let Some(r) = &rule.config.remediate else {
        return;
    };
    let mut selected: Vec<&str> = rule
        .config
        .kinds
        .iter()
        .map(String::as_str)
        .chain(
            checks
                .iter()
                .filter(|s| rule.config.checks.contains(&s.id))
                .map(|s| s.kind),
        )
        .collect();
    selected.sort_unstable();
    selected.dedup();
    for kind in selected {
        let Some(k) = kinds.get(kind) else { continue };
        if k.actions().iter().any(|a| a.name == r.action) {
            continue;
        }
        let offered: Vec<&str> = k.actions().iter().map(|a| a.name).collect();
        let offered = if offered.is_empty() {
            "it offers none".to_owned()
        } else {
            format!("it offers {}", offered.join(", "))
        };
        c.error(
            at.clone(),
            Some(&format!("rules.{}", rule.config.name)),
            Some("remediate"),
            format!("`{}` is not an action of `{kind}` checks ({offered})", r.action),
        );
    }
}
