//! Output of `vitals check`: text or JSON, and the exit code.

use serde::Serialize;

use crate::observation::{Observation, Status};
use crate::thresholds::fmt_num;

/// The exit code for a set of observations: 2 if any critical, else 3 if any unknown,
/// else 1 if any warning, else 0.
pub fn exit_code(observations: &[Observation]) -> i32 {
    let has = |s: Status| observations.iter().any(|o| o.status == s);
    if has(Status::Critical) {
        2
    } else if has(Status::Unknown) {
        3
    } else if has(Status::Warning) {
        1
    } else {
        0
    }
}

/// `{"checks":[...]}`.
pub fn json(observations: &[Observation]) -> String {
    #[derive(Serialize)]
    struct Out<'a> {
        checks: &'a [Observation],
    }
    serde_json::to_string_pretty(&Out { checks: observations })
        .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// One aligned line per check: status, id, value, message.
pub fn text(observations: &[Observation]) -> String {
    let id_width = observations.iter().map(|o| o.id.len()).max().unwrap_or(0);
    let values: Vec<String> = observations
        .iter()
        .map(|o| match (o.value, o.unit.as_str()) {
            (Some(v), "") => fmt_num(v),
            (Some(v), "%") => format!("{}%", fmt_num(v)),
            (Some(v), u) => format!("{} {}", fmt_num(v), crate::text::visible(u)),
            (None, _) => "-".to_owned(),
        })
        .collect();
    let value_width = values.iter().map(String::len).max().unwrap_or(0);
    let mut out = String::new();
    for (o, v) in observations.iter().zip(&values) {
        let status = o.status.as_str().to_uppercase();
        let label = o.label.as_deref().map(|l| format!("[{l}] ")).unwrap_or_default();
        out.push_str(&format!(
            "{status:<8} {:<id_width$}  {v:>value_width$}  {label}{}\n",
            o.id,
            crate::text::visible(&o.message)
        ));
    }
    out
}
