//! A rule's message template: `{check}`, `{value}`, `{details.KEY}`… filled from the
//! observation that fired it.

use crate::alert::Severity;
use crate::observation::Observation;

/// Placeholders a message template may use, besides `{details.KEY}`.
pub const PLACEHOLDERS: [&str; 8] = [
    "check", "rule", "severity", "status", "value", "unit", "label", "message",
];

/// Checks a message template's placeholders.
pub fn validate_template(template: &str) -> Result<(), String> {
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("`{{` without a closing `}}` in {template:?}"))?;
        let name = &after[..close];
        if !PLACEHOLDERS.contains(&name) && name.strip_prefix("details.").is_none_or(|k| k.is_empty()) {
            let mut m = format!("unknown placeholder `{{{name}}}`");
            if let Some(best) = crate::plugin::did_you_mean(name, PLACEHOLDERS) {
                m.push_str(&format!(" (did you mean `{{{best}}}`?)"));
            }
            m.push_str(&format!(
                "; placeholders: {{{}}}, {{details.KEY}}",
                PLACEHOLDERS.join("}, {")
            ));
            return Err(m);
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

/// Fills a message template from an observation.
pub fn render(template: &str, rule: &str, severity: Severity, o: &Observation) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            return out;
        };
        let name = &after[..close];
        let value = match name {
            "check" => o.id.clone(),
            "rule" => rule.to_owned(),
            "severity" => severity.as_str().to_owned(),
            "status" => o.status.as_str().to_owned(),
            "value" => o
                .value
                .map_or_else(|| "null".to_owned(), crate::thresholds::fmt_num),
            "unit" => o.unit.clone(),
            "label" => o.label.clone().unwrap_or_default(),
            "message" => o.message.clone(),
            other => match other.strip_prefix("details.").and_then(|k| o.details.get(k)) {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
                None => format!("{{{other}}}"),
            },
        };
        out.push_str(&value);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observation::{Reading, Status};

    #[test]
    fn templates_name_their_unknown_placeholders() {
        assert!(validate_template("{check}: {message} ({details.age_s} s)").is_ok());
        let e = validate_template("{chek} is down").unwrap_err();
        assert!(
            e.contains("unknown placeholder `{chek}` (did you mean `{check}`?)"),
            "{e}"
        );
        assert!(
            validate_template("{check")
                .unwrap_err()
                .contains("without a closing")
        );
        assert!(validate_template("{details.}").is_err());
    }

    #[test]
    fn render_fills_every_placeholder() {
        let r = Reading::new(Status::Critical, "stale")
            .with_value(75.0, "s")
            .with_label("STALE")
            .with_detail("table", "positions");
        let o = Observation::from_reading(
            "pos",
            "delta_freshness",
            r,
            chrono::Utc::now(),
            Default::default(),
        );
        assert_eq!(
            render(
                "{check} {rule} {severity} {status} {value}{unit} {label} {message} {details.table} {details.nope}",
                "r",
                Severity::Critical,
                &o
            ),
            "pos r CRITICAL critical 75s STALE stale positions {details.nope}"
        );
    }
}

/// Property tests: any template is accepted or refused with a message, and rendering
/// any template (even a refused one) never panics.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::observation::{Reading, Status};

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        #[test]
        fn any_template_validates_or_is_refused_and_renders(template in any::<String>()) {
            if let Err(e) = validate_template(&template) {
                prop_assert!(!e.is_empty());
            }
            let r = Reading::new(Status::Warning, "msg").with_value(1.5, "s").with_detail("k", "v");
            let o = Observation::from_reading("c", "k", r, chrono::Utc::now(), Default::default());
            let out = render(&template, "rule", Severity::Warning, &o);
            // Text without a placeholder comes out as it went in.
            if !template.contains('{') {
                prop_assert_eq!(&out, &template);
            }
            // A known placeholder on its own is replaced by its value.
            let out = render(&format!("{template}{{check}}"), "rule", Severity::Warning, &o);
            if !template.contains('{') {
                prop_assert_eq!(out, format!("{template}c"));
            }
        }

        #[test]
        fn a_valid_template_leaves_no_known_placeholder(
            parts in prop::collection::vec(
                prop::sample::select(vec!["{check}", "{rule}", "{value}", "{unit}", "{message}", "{details.k}", " is ", "é", "}"]),
                0..8,
            )
        ) {
            let template = parts.concat();
            prop_assert!(validate_template(&template).is_ok(), "{}", template);
            let r = Reading::new(Status::Warning, "msg").with_value(1.5, "s").with_detail("k", "v");
            let o = Observation::from_reading("c", "k", r, chrono::Utc::now(), Default::default());
            let out = render(&template, "rule", Severity::Warning, &o);
            for p in ["{check}", "{rule}", "{value}", "{unit}", "{message}", "{details.k}"] {
                prop_assert!(!out.contains(p), "{} -> {}", template, out);
            }
        }
    }
}
