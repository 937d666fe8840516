//! `command`: runs a Nagios-style plugin. Exit 0/1/2/3 is ok/warning/critical/unknown,
//! the first line of output is the message, and performance data after `|` is parsed
//! into `details.perfdata` (its first value becomes the check's value).

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use nix::sys::signal::Signal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::check::{BuildContext, BuildError, Check, CheckConfig, KeyError, Reading, RunContext, Status};
use crate::duration;

/// `kind = "command"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandConfig {
    /// The program and its arguments, e.g. `["/usr/lib/nagios/plugins/check_ntp_time",
    /// "-H", "pool.ntp.org"]`. No shell is involved; a program path containing `/` is
    /// resolved against the config file's directory, a bare name through `PATH`.
    pub command: Vec<String>,
    /// Environment variables for the plugin. It does not inherit vitals' environment
    /// (which holds the action token and the SMTP password): only PATH, HOME, USER,
    /// LOGNAME, LANG, LC_ALL, TZ, TMPDIR and SHELL, plus these.
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
    /// Names of variables of vitals' own environment the plugin gets as they are (e.g.
    /// `["KRB5CCNAME"]`). Names that look like secrets (…TOKEN…, …PASSWORD…,
    /// …SECRET…, …CREDENTIAL…, …_KEY) and the variables other keys of the config name
    /// (`token_env`, `password_env`, …) are refused: give a plugin a secret in `env`,
    /// explicitly, if it truly needs one.
    #[serde(default)]
    pub env_passthrough: Vec<String>,
    /// Status reported when the plugin has not finished just before the check's
    /// `timeout` (its whole process group is then killed). A hung plugin is an outage of
    /// what it checks, so the default is `critical`.
    #[serde(default = "default_timeout_status")]
    pub timeout_status: Status,
}

fn default_timeout_status() -> Status {
    Status::Critical
}

impl CheckConfig for CommandConfig {
    const KIND: &'static str = "command";
    const SUMMARY: &'static str = "runs a Nagios-style plugin (exit 0/1/2/3, message, perfdata after `|`)";
    const EXAMPLE: &'static str = "command = [\"/bin/sh\", \"-c\", \"echo 'OK - fine | load=0.5;1;2'\"]\n";

    fn passes_env(&self) -> Vec<String> {
        self.env_passthrough.clone()
    }

    fn validate(&self) -> Vec<KeyError> {
        let mut errors = match self.command.first() {
            None => vec![KeyError::new(
                "command",
                "must name a program: command = [\"/path/to/plugin\", \"arg\", ...]",
            )],
            Some(p) if p.trim().is_empty() => vec![KeyError::new("command", "the program name is empty")],
            Some(_) => Vec::new(),
        };
        for name in &self.env_passthrough {
            if crate::process::looks_secret(name) {
                errors.push(KeyError::new(
                    "env_passthrough",
                    format!(
                        "`{name}` looks like a secret and is never passed through; give it in `env` if the plugin truly needs it"
                    ),
                ));
            }
        }
        errors
    }

    fn build(&self, cx: &BuildContext) -> Result<Arc<dyn Check>, BuildError> {
        let program = PathBuf::from(&self.command[0]);
        let program = if self.command[0].contains('/') {
            cx.resolve_path(&program)
        } else {
            program
        };
        Ok(Arc::new(CommandCheck {
            program,
            args: self.command[1..].to_vec(),
            env: self.env.clone(),
            passthrough: self.env_passthrough.clone(),
            timeout_status: self.timeout_status,
        }))
    }
}

struct CommandCheck {
    program: PathBuf,
    args: Vec<String>,
    env: std::collections::BTreeMap<String, String>,
    passthrough: Vec<String>,
    timeout_status: Status,
}

#[async_trait]
impl Check for CommandCheck {
    async fn run(&self, cx: &RunContext) -> Reading {
        let shown = self.program.display().to_string();
        let finished = match crate::process::run(
            &self.program,
            &self.args,
            &self.env,
            &self.passthrough,
            cx.budget(),
        )
        .await
        {
            Ok(f) => f,
            Err(e) => return Reading::unknown(format!("cannot run `{shown}`: {e}")),
        };
        let stderr = finished.stderr;
        let parsed = parse_output(&finished.stdout);
        let exit = finished.exit.map(Ok::<_, std::io::Error>);

        let exit = match exit {
            None => {
                let mut r = Reading::new(
                    self.timeout_status,
                    format!(
                        "`{shown}` did not finish within {}; its process group was killed",
                        duration::format(cx.timeout)
                    ),
                );
                r.details = parsed.details(&stderr);
                return r;
            }
            Some(Err(e)) => return Reading::unknown(format!("waiting for `{shown}` failed: {e}")),
            Some(Ok(exit)) => exit,
        };
        let (status, mut message) = match (exit.code(), exit.signal()) {
            (Some(code @ 0..=3), _) => (
                [Status::Ok, Status::Warning, Status::Critical, Status::Unknown][code as usize],
                parsed.message.clone(),
            ),
            (Some(code), _) => (
                Status::Unknown,
                format!("`{shown}` exited with code {code} (expected 0-3)"),
            ),
            (None, Some(sig)) => (
                Status::Unknown,
                format!(
                    "`{shown}` was killed by signal {sig}{}",
                    Signal::try_from(sig)
                        .map(|s| format!(" ({s})"))
                        .unwrap_or_default()
                ),
            ),
            (None, None) => (Status::Unknown, format!("`{shown}` ended without an exit code")),
        };
        if message.is_empty() {
            message = match stderr.lines().next() {
                Some(line) if !line.trim().is_empty() => format!("(no output; stderr: {})", line.trim()),
                _ => "(no output returned from plugin)".to_owned(),
            };
        }
        let mut reading = Reading::new(status, message);
        if let Some(first) = parsed.perfdata.first() {
            reading = reading.with_value(first.value, first.unit.clone());
        }
        reading.details = parsed.details(&stderr);
        if let Some(code) = exit.code() {
            reading.details.insert("exit_code".into(), code.into());
        }
        reading
    }
}

/// One performance-data item: `'label'=value[UOM];[warn];[crit];[min];[max]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PerfData {
    /// Its label.
    pub label: String,
    /// Its value.
    pub value: f64,
    /// Unit of measure (`s`, `%`, `B`, `KB`, `c`…), possibly empty.
    pub unit: String,
    /// Warning range, as written.
    pub warn: Option<String>,
    /// Critical range, as written.
    pub crit: Option<String>,
    /// Minimum.
    pub min: Option<f64>,
    /// Maximum.
    pub max: Option<f64>,
}

/// A plugin's output, split per the Nagios plugin guidelines.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PluginOutput {
    /// The first line's text.
    pub message: String,
    /// The lines after it, without perfdata.
    pub long_output: Vec<String>,
    /// All performance data, in order.
    pub perfdata: Vec<PerfData>,
}

impl PluginOutput {
    fn details(&self, stderr: &str) -> Map<String, Value> {
        let mut d = Map::new();
        d.insert("perfdata".into(), json!(self.perfdata));
        if !self.long_output.is_empty() {
            d.insert("long_output".into(), json!(self.long_output));
        }
        let stderr = stderr.trim();
        if !stderr.is_empty() {
            d.insert(
                "stderr".into(),
                json!(stderr.chars().take(2000).collect::<String>()),
            );
        }
        d
    }
}

/// Splits plugin output: first line (text `|` perfdata), then long text up to a line
/// with `|`, after which everything is perfdata.
pub fn parse_output(out: &str) -> PluginOutput {
    let mut lines = out.lines();
    let mut result = PluginOutput::default();
    let mut perf_text = String::new();
    if let Some(first) = lines.next() {
        let (text, perf) = first.split_once('|').unwrap_or((first, ""));
        result.message = text.trim().to_owned();
        perf_text.push_str(perf);
    }
    let mut in_perf = false;
    for line in lines {
        if in_perf {
            perf_text.push(' ');
            perf_text.push_str(line);
        } else if let Some((text, perf)) = line.split_once('|') {
            if !text.trim().is_empty() {
                result.long_output.push(text.trim_end().to_owned());
            }
            perf_text.push(' ');
            perf_text.push_str(perf);
            in_perf = true;
        } else {
            result.long_output.push(line.trim_end().to_owned());
        }
    }
    result.perfdata = parse_perfdata(&perf_text);
    result
}

/// Parses space-separated perfdata items; malformed items are skipped.
pub fn parse_perfdata(text: &str) -> Vec<PerfData> {
    tokenize(text)
        .into_iter()
        .filter_map(|item| parse_item(&item))
        .collect()
}

/// Splits on whitespace outside single quotes (`''` inside quotes is a literal quote).
fn tokenize(text: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' if quoted && chars.peek() == Some(&'\'') => {
                chars.next();
                cur.push('\'');
                cur.push('\'');
            }
            '\'' => {
                quoted = !quoted;
                cur.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    items.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        items.push(cur);
    }
    items
}

fn parse_item(item: &str) -> Option<PerfData> {
    let eq = item.rfind('=')?;
    let (label, rest) = (&item[..eq], &item[eq + 1..]);
    let label = match label.strip_prefix('\'').and_then(|l| l.strip_suffix('\'')) {
        Some(inner) => inner.replace("''", "'"),
        None => label.to_owned(),
    };
    if label.is_empty() {
        return None;
    }
    let mut fields = rest.split(';');
    let value_field = fields.next()?;
    let split = value_field
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E')))
        .unwrap_or(value_field.len());
    // "1e" would mis-split a unit starting with e; values rarely use exponents, so
    // retry with the plain number prefix when the greedy parse fails.
    let (num, unit) = value_field.split_at(split);
    let (value, unit) = match num.parse::<f64>() {
        Ok(v) => (v, unit),
        Err(_) => {
            let split = value_field
                .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+')))
                .unwrap_or(value_field.len());
            let (num, unit) = value_field.split_at(split);
            (num.parse::<f64>().ok()?, unit)
        }
    };
    let text = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_owned);
    let (warn, crit) = (text(fields.next()), text(fields.next()));
    let num = |s: Option<&str>| s.and_then(|s| s.parse::<f64>().ok());
    let (min, max) = (num(fields.next()), num(fields.next()));
    Some(PerfData {
        label,
        value,
        unit: unit.to_owned(),
        warn,
        crit,
        min,
        max,
    })
}

crate::register_check!(CommandConfig);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_message_long_output_and_perfdata() {
        let out = "DISK OK - free space: / 3326 MB (56%); | /=2643MB;5948;5958;0;5968\n\
                   / 15272 MB (77%);\n\
                   /boot 68 MB (69%);\n\
                   /home 69357 MB (27%); | /boot=68MB;88;93;0;98\n\
                   /home=69357MB;253404;253409;0;253414\n";
        let p = parse_output(out);
        assert_eq!(p.message, "DISK OK - free space: / 3326 MB (56%);");
        assert_eq!(p.long_output.len(), 3);
        let labels: Vec<&str> = p.perfdata.iter().map(|d| d.label.as_str()).collect();
        assert_eq!(labels, ["/", "/boot", "/home"]);
        assert_eq!(p.perfdata[0].value, 2643.0);
        assert_eq!(p.perfdata[0].unit, "MB");
        assert_eq!(p.perfdata[0].warn.as_deref(), Some("5948"));
        assert_eq!(p.perfdata[0].max, Some(5968.0));
    }

    #[test]
    fn quoted_labels_and_sparse_fields() {
        let d = parse_perfdata("'in use''d'=12.5%;;90 time=0.003s load=1e2 bad x=");
        assert_eq!(d.len(), 3);
        assert_eq!(d[0].label, "in use'd");
        assert_eq!((d[0].value, d[0].unit.as_str()), (12.5, "%"));
        assert_eq!(d[0].warn, None);
        assert_eq!(d[0].crit.as_deref(), Some("90"));
        assert_eq!((d[1].value, d[1].unit.as_str()), (0.003, "s"));
        assert_eq!(d[2].value, 100.0);
    }
}

/// Property tests: any plugin output parses without a panic, and well-formed perfdata
/// comes back as written.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        #[test]
        fn any_output_parses(out in any::<String>()) {
            let parsed = parse_output(&out);
            prop_assert!(!parsed.message.contains('\n'));
            for p in &parsed.perfdata {
                prop_assert!(!p.label.is_empty());
            }
        }

        #[test]
        fn output_shaped_text_parses(
            out in r"(OK|WARNING|CRITICAL|UNKNOWN)( - [ -~]{0,30})?( \| ([ -~]{0,40}))?(\n[ -~|]{0,30}){0,3}"
        ) {
            let parsed = parse_output(&out);
            prop_assert!(!parsed.message.contains('|'));
        }

        #[test]
        fn well_formed_perfdata_comes_back_as_written(
            label in "[a-z][a-z_ ]{0,12}",
            value in -1.0e6f64..1.0e6,
            unit in prop::sample::select(vec!["", "s", "ms", "%", "B", "KB", "c"]),
            warn in prop::option::of(0u32..1000),
            crit in prop::option::of(0u32..1000),
        ) {
            let quoted = format!("'{}'", label.replace('\'', "''"));
            let text = format!(
                "{quoted}={value}{unit};{};{}",
                warn.map(|w| w.to_string()).unwrap_or_default(),
                crit.map(|c| c.to_string()).unwrap_or_default(),
            );
            let items = parse_perfdata(&format!("x=1 {text}"));
            prop_assert_eq!(items.len(), 2, "{}", text);
            let p = &items[1];
            prop_assert_eq!(&p.label, &label);
            prop_assert_eq!(p.value, value);
            prop_assert_eq!(&p.unit, unit);
            prop_assert_eq!(p.warn.clone(), warn.map(|w| w.to_string()));
            prop_assert_eq!(p.crit.clone(), crit.map(|c| c.to_string()));
        }
    }
}
