//! Documentation generated from the registry and the config structs: the output of
//! `vitals plugins` and the reference part of docs/configuration.md (a test keeps the
//! committed file equal to what this generates).

use serde::Serialize;

use crate::check::ActionSpec;
use crate::config::{CommonSettings, Defaults, ServerConfig, SinkSettings};
use crate::plugin::{Family, KindDoc, Kinds};
use crate::registry::Registry;
use crate::rules::{CHECK_UNKNOWN, RuleConfig, SINK_FAILING};
use crate::schema::{KeyDoc, keys_of};

/// Every kind of a family with its keys.
pub fn kinds<F: Family>(kinds: &Kinds<F>) -> Vec<KindDoc> {
    kinds
        .kinds()
        .map(|k| KindDoc {
            name: k.name,
            summary: k.summary,
            keys: (k.keys)(),
        })
        .collect()
}

/// `vitals plugins` as text.
pub fn plugins_text(registry: &Registry) -> String {
    let mut out =
        String::from("Check kinds (keys beyond the common ones; `vitals plugins --format json` for all):\n");
    for kind in kinds(&registry.checks) {
        out.push_str(&format!("\n  {}  —  {}\n", kind.name, kind.summary));
        let width = kind.keys.iter().map(|k| k.name.len()).max().unwrap_or(0);
        for key in &kind.keys {
            out.push_str(&format!("      {:<width$}  {}\n", key.name, key_summary(key)));
        }
        for a in actions_of(registry, kind.name) {
            out.push_str(&format!("      action {}  {}\n", a.name, action_summary(a)));
        }
    }
    out.push_str("\nCommon keys of every [checks.<id>]:\n");
    for key in keys_of::<CommonSettings>() {
        out.push_str(&format!("      {:<10}  {}\n", key.name, key_summary(&key)));
    }
    out.push_str("\nSink kinds:\n");
    for kind in kinds(&registry.sinks) {
        out.push_str(&format!("\n  {}  —  {}\n", kind.name, kind.summary));
        let width = kind.keys.iter().map(|k| k.name.len()).max().unwrap_or(0);
        for key in &kind.keys {
            out.push_str(&format!("      {:<width$}  {}\n", key.name, key_summary(key)));
        }
    }
    out.push_str("\nCommon keys of every [sinks.<id>]:\n");
    for key in keys_of::<SinkSettings>() {
        out.push_str(&format!("      {:<12}  {}\n", key.name, key_summary(&key)));
    }
    out.push_str("\nBuilt-in rules:\n\n");
    out.push_str(&format!("  {CHECK_UNKNOWN}  —  {CHECK_UNKNOWN_TEXT}\n"));
    out.push_str(&format!("  {SINK_FAILING}  —  {SINK_FAILING_TEXT}\n"));
    out
}

/// What the built-in `check_unknown` rule does, for `vitals plugins` and the docs.
pub const CHECK_UNKNOWN_TEXT: &str = "pages when a check has been `unknown` (it could not tell: a corrupt \
     table, a permission error, a broken plugin) or has not managed a first run for `unknown_after` \
     (default 2m; \"off\" disables it), with \"vitals cannot see <check>: <message>\" at \
     `unknown_severity` (default WARNING); resolves at the check's first other status. Set both in \
     [defaults] or on a check. Maintenance windows and depends_on hold it back like any rule.";

/// The actions a check kind declares.
fn actions_of(registry: &Registry, kind: &str) -> &'static [ActionSpec] {
    registry.checks.get(kind).map(|k| k.actions()).unwrap_or_default()
}

/// "“Force sync”: runs … (asks first)".
fn action_summary(a: &ActionSpec) -> String {
    format!(
        "“{}”: {}{}",
        a.label,
        a.description,
        if a.destructive { " (asks first)" } else { "" }
    )
}

/// What the built-in `sink_failing` rule does, for `vitals plugins` and the docs.
pub const SINK_FAILING_TEXT: &str = "pages when a sink has been failing (every delivery, or a heartbeat's \
     every ping) for its `failing_after` (default 2m; \"off\" disables it), at its `failing_severity` \
     (default WARNING), about the check `sink:<id>`, with what the sink last said; it goes to every \
     other sink, never to the failing one, and resolves at the sink's first success. The sink's \
     health is in `/api/status` (`sinks`), `/metrics` (`vitals_sink_up`) and the page's header.";

fn key_summary(key: &KeyDoc) -> String {
    let default = match (&key.default, key.required) {
        (_, true) => "required".to_owned(),
        (Some(d), _) => format!("default {d}"),
        (None, _) => "optional".to_owned(),
    };
    format!("{} ({default})", key.ty)
}

/// `vitals plugins --format json`.
pub fn plugins_json(registry: &Registry) -> String {
    #[derive(Serialize)]
    struct Out {
        check_kinds: Vec<KindDoc>,
        /// Each check kind's actions, by kind.
        check_actions: std::collections::BTreeMap<&'static str, &'static [ActionSpec]>,
        common_check_keys: Vec<KeyDoc>,
        sink_kinds: Vec<KindDoc>,
    }
    serde_json::to_string_pretty(&Out {
        check_kinds: kinds(&registry.checks),
        check_actions: registry
            .checks
            .kinds()
            .filter(|k| !k.actions().is_empty())
            .map(|k| (k.name, k.actions()))
            .collect(),
        common_check_keys: keys_of::<CommonSettings>(),
        sink_kinds: kinds(&registry.sinks),
    })
    .unwrap_or_default()
}

/// The generated reference of docs/configuration.md.
pub fn configuration_reference(registry: &Registry) -> String {
    let mut out = String::new();
    out.push_str("## `[server]`\n\n");
    out.push_str(&key_table(&keys_of::<ServerConfig>()));
    out.push_str("\n## `[defaults]`\n\n");
    out.push_str(&key_table(&keys_of::<Defaults>()));
    out.push_str("\n## `[history]`: the health history table\n\n");
    out.push_str(
        "Present: every check is rolled up per `resolution` bucket into a Delta table (schema in \
         docs/reference.md), read by `GET /api/history` and reloaded into the board at start.\n\n",
    );
    out.push_str(&key_table(&keys_of::<crate::history::HistoryConfig>()));
    out.push_str("\n## `[calendars.<name>]`: market calendars\n\n");
    out.push_str(
        "`market_hours` on a check or rule names a calendar: `nyse` (09:30–16:00 America/New_York, 13:00 on \
         early-close days) and `nyse_extended` (04:00–20:00, 17:00 on early-close days) are built in, with NYSE's \
         holidays and early closes. A section named like a built-in one adds to it; another name defines an \
         exchange (docs/market-hours.md).\n\n",
    );
    out.push_str(&key_table(&keys_of::<crate::market::CalendarConfig>()));
    out.push_str("\n## `[checks.<id>]`: keys of every check\n\n");
    out.push_str(
        "The id is the table's name: letters, digits, `_` and `-`. Besides these keys, a check takes the keys of its kind.\n\n",
    );
    out.push_str(&key_table(&keys_of::<CommonSettings>()));
    out.push_str("\n## `[[rules]]`\n\n");
    out.push_str(
        "Each rule watches the checks it selects (`checks` and/or `kinds`) and fires when `when` holds. \
         One alert per (rule, check): inactive → pending (`for`) → firing → resolved.\n\n",
    );
    out.push_str(&key_table(&keys_of::<RuleConfig>()));
    out.push_str(&format!(
        "\nThe built-in rule `{CHECK_UNKNOWN}` {CHECK_UNKNOWN_TEXT}\n"
    ));
    out.push_str("\n## `[sinks.<id>]`: where alert events go\n\n");
    out.push_str(
        "Every sink has its own queue and durable outbox (in `[server] state_dir`): a slow or dead sink \
         delays nothing else, and undelivered events survive restarts. Keys of every sink:\n\n",
    );
    out.push_str(&key_table(&keys_of::<SinkSettings>()));
    out.push_str(&format!(
        "\nThe built-in rule `{SINK_FAILING}` {SINK_FAILING_TEXT}\n"
    ));
    for kind in kinds(&registry.sinks) {
        out.push_str(&format!(
            "\n### sink `{}`\n\n{}.\n\n",
            kind.name,
            capitalize(kind.summary)
        ));
        out.push_str(&key_table(&kind.keys));
    }
    out.push_str("\n## Check kinds\n");
    for kind in registry.checks.kinds() {
        out.push_str(&format!(
            "\n### kind `{}`\n\n{}",
            kind.name,
            capitalize(kind.summary)
        ));
        if !kind.unit.is_empty() {
            out.push_str(&format!(" (value in `{}`)", kind.unit));
        }
        out.push_str(".\n\n");
        out.push_str(&key_table(&(kind.keys)()));
        for a in kind.actions() {
            out.push_str(&format!("\nAction `{}`: {}.\n", a.name, action_summary(a)));
        }
        out.push_str(&format!(
            "\n```toml\n[checks.my_{}]\nkind = \"{}\"\n{}```\n",
            kind.name, kind.name, kind.example
        ));
    }
    out
}

fn key_table(keys: &[KeyDoc]) -> String {
    let mut out = String::from("| key | type | default | meaning |\n|---|---|---|---|\n");
    for k in keys {
        let default = match (&k.default, k.required) {
            (_, true) => "*required*".to_owned(),
            (Some(d), _) => format!("`{}`", d.replace('|', "\\|")),
            (None, _) => "—".to_owned(),
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            k.name,
            k.ty.replace('|', "\\|"),
            default,
            k.doc.replace('\n', " ").replace('|', "\\|")
        ));
    }
    out
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}
