//! End-to-end tests: one binary, one module per area.

pub mod alerting;
mod alertmanager;
mod browser;
mod cli;
mod command;
mod config;
mod delta_freshness;
pub mod delta_sink;
mod dispatch;
mod docs;
pub mod email;
pub mod gateway;
mod ib;
mod registry;
pub mod reload;
mod rules;
mod runner;
mod web;

use std::path::{Path, PathBuf};
use std::process::Command;

use vitals::check::BuildContext;
use vitals::config::{Config, parse};
use vitals::registry::registry;
use vitals::runner::Instance;

/// The `vitals` binary built for these tests.
pub fn vitals() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vitals"));
    c.env_remove("VITALS_CONFIG")
        .env_remove("RUST_LOG")
        .env("VITALS_LOG", "info");
    c
}

/// Writes `text` as `vitals.toml` in `dir`.
pub fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("vitals.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// Parses config text that must be valid.
pub fn valid_config(dir: &Path, text: &str) -> Config {
    let path = dir.join("vitals.toml");
    match parse(&path, text, registry().expect("registry")) {
        Ok(c) => c,
        Err(d) => panic!("config should be valid:\n{d}"),
    }
}

/// Instances for every check of a valid config, as `vitals check` builds them.
pub fn instances(dir: &Path, text: &str) -> Vec<Instance> {
    let config = valid_config(dir, text);
    let dir = config.dir();
    config
        .checks
        .into_iter()
        .map(|spec| {
            let cx = BuildContext::standalone(&spec.id, spec.kind, &dir);
            Instance::from_spec(spec, cx)
        })
        .collect()
}

/// Writes an executable shell script.
pub fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}
