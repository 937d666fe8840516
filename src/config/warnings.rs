//! Warnings about the places a config would write: the one part of checking a config
//! that looks outside the file (read-only). Loading itself reads nothing but the file.

use std::io::{BufRead, Read};
use std::path::Path;

use super::Config;

/// What `vitals validate` and `vitals run` warn about beyond the file itself: state or
/// a sink's file in a place no service should write, and a sink's file outside the
/// state directory that is an existing file but not a vitals alert log — the sink would
/// append to it.
pub fn warnings(config: &Config) -> Vec<String> {
    let state = config.state_dir();
    let mut out = Vec::new();
    if let Some(why) = not_for_data(&state) {
        out.push(format!(
            "{}: [server] key `state_dir`: warning: vitals' state would go to {}, {why}; set `state_dir = \"/var/lib/vitals\"`, or leave it unset under systemd (StateDirectory=vitals)",
            config.path.display(),
            state.display()
        ));
    }
    for sink in &config.sinks {
        let Some(file) = sink.params.appends_to(&config.dir()) else {
            continue;
        };
        if let Some(why) = not_for_data(&file) {
            out.push(format!(
                "{}: [sinks.{}] key `path`: warning: the sink would write {}, {why}; use an absolute path under /var/lib or /var/log",
                config.path.display(),
                sink.id,
                file.display()
            ));
            continue;
        }
        if file.starts_with(&state) || !file.is_file() {
            continue;
        }
        if !is_alert_log(&file) {
            out.push(format!(
                "{}: [sinks.{}] key `path`: warning: {} is an existing file that is not a vitals alert log; the sink would append alert events to it",
                config.path.display(),
                sink.id,
                file.display()
            ));
        }
    }
    out
}

/// Whether `file` is empty or starts with a line of a vitals alert log.
fn is_alert_log(file: &Path) -> bool {
    let first = std::fs::File::open(file).ok().and_then(|f| {
        let mut line = String::new();
        std::io::BufReader::new(f.take(64 * 1024))
            .read_line(&mut line)
            .ok()?;
        Some(line)
    });
    first.as_deref().is_none_or(|l| {
        l.trim().is_empty()
            || serde_json::from_str::<serde_json::Value>(l).is_ok_and(|v| v.get("alert_id").is_some())
    })
}

/// Why vitals should not write under `path`: a system directory (read-only for a
/// hardened service, `ProtectSystem=strict`), or a place this user cannot write.
fn not_for_data(path: &Path) -> Option<String> {
    const SYSTEM: [&str; 8] = ["/etc", "/usr", "/boot", "/bin", "/sbin", "/lib", "/proc", "/sys"];
    if let Some(dir) = SYSTEM.iter().find(|d| path.starts_with(d)) {
        return Some(format!(
            "under {dir}: read-only for the service (ProtectSystem=strict) and no place for data"
        ));
    }
    let mut existing = path;
    while !existing.exists() {
        existing = existing.parent()?;
    }
    nix::unistd::access(existing, nix::unistd::AccessFlags::W_OK)
        .err()
        .map(|_| format!("and {} is not writable by this user", existing.display()))
}
