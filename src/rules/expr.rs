//! Rule conditions: CEL expressions (the Common Expression Language, as in Kubernetes
//! and Envoy) over one observation, compiled once at config load.

use cel::{Context, Program, Value};

use crate::observation::Observation;

/// The variables a condition may use.
pub const VARIABLES: [&str; 8] = [
    "status", "value", "unit", "label", "message", "details", "check", "kind",
];

/// A compiled condition.
#[derive(Debug)]
pub struct Condition {
    source: String,
    program: Program,
    /// Whether it reads `details` (converting them is most of an evaluation's cost).
    reads_details: bool,
    /// Whether it reads `value`.
    reads_value: bool,
}

impl Condition {
    /// Compiles `source`, refusing syntax errors and unknown variables.
    pub fn compile(source: &str) -> Result<Condition, String> {
        let program = Program::compile(source).map_err(|e| {
            e.errors
                .iter()
                .map(|e| e.msg.clone())
                .collect::<Vec<_>>()
                .join("; ")
        })?;
        let refs = program.references();
        let reads_details = refs.has_variable("details");
        let reads_value = refs.has_variable("value");
        for var in refs.variables() {
            if !VARIABLES.contains(&var) {
                return Err(format!(
                    "unknown variable `{var}`{}; a condition can use: {}",
                    crate::plugin::suggest(var, VARIABLES),
                    VARIABLES.join(", ")
                ));
            }
        }
        Ok(Condition {
            source: source.to_owned(),
            program,
            reads_details,
            reads_value,
        })
    }

    /// Whether the condition reads the observation's `value` (so it cannot judge an
    /// observation without one).
    pub fn reads_value(&self) -> bool {
        self.reads_value
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates the condition for `o`. An error (a type mismatch, `value` compared
    /// while null, a missing `details` key) is returned, not taken as true or false.
    pub fn eval(&self, o: &Observation) -> Result<bool, String> {
        // The built-in check_unknown's `false`, and the like: no context to build.
        match self.source.trim() {
            "false" => return Ok(false),
            "true" => return Ok(true),
            _ => {}
        }
        // The standard library's declarations are built once: building them is most of
        // what `Context::default()` costs.
        static STDLIB: std::sync::OnceLock<std::sync::Arc<cel::Env>> = std::sync::OnceLock::new();
        let env = STDLIB.get_or_init(|| std::sync::Arc::new(cel::Env::stdlib()));
        let mut cx = Context::with_env(env.clone());
        cx.add_variable_from_value("status", o.status.as_str());
        cx.add_variable_from_value("value", o.value.map_or(Value::Null, Value::from));
        cx.add_variable_from_value("unit", o.unit.as_str());
        cx.add_variable_from_value("label", o.label.as_deref().map_or(Value::Null, Value::from));
        cx.add_variable_from_value("message", o.message.as_str());
        cx.add_variable_from_value("check", o.id.as_str());
        cx.add_variable_from_value("kind", o.kind.as_str());
        if self.reads_details {
            let details = cel::to_value(&o.details).map_err(|e| format!("details: {e}"))?;
            cx.add_variable_from_value("details", details);
        }
        match self.program.execute(&cx) {
            Ok(Value::Bool(b)) => Ok(b),
            Ok(other) => Err(format!("`{}` gave {other:?}, not true or false", self.source)),
            Err(e) => Err(format!("`{}`: {e}", self.source)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observation::{Reading, Status};

    fn obs(status: Status, value: Option<f64>, label: Option<&str>) -> Observation {
        let mut r = Reading::new(status, "m")
            .with_detail("age_s", 42)
            .with_detail("farm", "usfarm");
        r.value = value;
        r.label = label.map(str::to_owned);
        Observation::from_reading(
            "positions",
            "delta_freshness",
            r,
            chrono::Utc::now(),
            Default::default(),
        )
    }

    #[test]
    fn compares_values_labels_statuses_and_details() {
        let o = obs(Status::Warning, Some(61.5), Some("STALE"));
        let t = |s: &str| Condition::compile(s).unwrap().eval(&o).unwrap();
        assert!(t("value > 60"));
        assert!(t("value > 60.0 && label == 'STALE'"));
        assert!(!t("status == 'ok'"));
        assert!(t("status != 'ok' || value < 0.0"));
        assert!(t("details.age_s >= 42 && details.farm == 'usfarm'"));
        assert!(t("check == 'positions' && kind == 'delta_freshness'"));
        assert!(t("!(value < 10)"));
    }

    #[test]
    fn a_null_value_is_an_error_not_a_silent_false() {
        let o = obs(Status::Unknown, None, None);
        let c = Condition::compile("value > 60").unwrap();
        assert!(c.eval(&o).is_err());
        let c = Condition::compile("value == null || value > 60").unwrap();
        assert_eq!(c.eval(&o), Ok(true));
    }

    #[test]
    fn refuses_syntax_errors_and_unknown_variables() {
        assert!(Condition::compile("value >").is_err());
        let e = Condition::compile("valu > 3").unwrap_err();
        assert!(
            e.contains("unknown variable `valu` (did you mean `value`?)"),
            "{e}"
        );
    }
}

/// Property tests: any condition text compiles or is refused with a message, and a
/// compiled condition evaluates any observation without a panic.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::observation::{Reading, Status};

    fn observation(status: Status, value: Option<f64>, label: String, detail: f64) -> Observation {
        let mut r = Reading::new(status, "m")
            .with_label(label)
            .with_detail("age_s", detail);
        r.value = value;
        Observation::from_reading("c", "k", r, chrono::Utc::now(), Default::default())
    }

    fn status() -> impl Strategy<Value = Status> {
        prop::sample::select(Status::ALL.to_vec())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5_000))]

        #[test]
        fn any_text_compiles_or_is_refused(source in any::<String>()) {
            if let Err(e) = Condition::compile(&source) {
                prop_assert!(!e.is_empty());
            }
        }

        #[test]
        fn conditions_over_the_observation_evaluate(
            source in r"(value|details\.age_s|status|label|1|'ok'|null)( (>|<|==|!=|&&|\|\|) (value|60|'critical'|label|true|details\.nope)){0,3}",
            status in status(),
            value in prop::option::of(any::<f64>()),
            label in "[A-Z]{0,8}",
            detail in any::<f64>(),
        ) {
            if let Ok(c) = Condition::compile(&source) {
                // Either a truth value or a reason, never a panic or a silent nothing.
                if let Err(e) = c.eval(&observation(status, value, label, detail)) {
                    prop_assert!(!e.is_empty(), "{}", source);
                }
            }
        }

        #[test]
        fn a_comparison_evaluates_as_rust_compares(
            value in prop::option::of(-1e6f64..1e6),
            threshold in -1e6f64..1e6,
            op in prop::sample::select(vec![">", ">=", "<", "<=", "==", "!="]),
        ) {
            let source = format!("value {op} {threshold:?}");
            let c = Condition::compile(&source).unwrap();
            let got = c.eval(&observation(Status::Ok, value, String::new(), 0.0));
            match value {
                // A missing value is not equal to any number, and cannot be ordered
                // against one: the condition cannot tell.
                None if op == "==" => prop_assert_eq!(got, Ok(false)),
                None if op == "!=" => prop_assert_eq!(got, Ok(true)),
                None => prop_assert!(got.is_err(), "{} -> {:?}", source, got),
                Some(v) => {
                    let expected = match op {
                        ">" => v > threshold,
                        ">=" => v >= threshold,
                        "<" => v < threshold,
                        "<=" => v <= threshold,
                        "==" => v == threshold,
                        _ => v != threshold,
                    };
                    prop_assert_eq!(got, Ok(expected), "{} with value {}", source, v);
                }
            }
        }
    }
}
