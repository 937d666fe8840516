//! vitals: a health-check daemon and plugin framework for an options-trading system on
//! Interactive Brokers and Delta Lake.
//!
//! The pieces, in the order data flows (docs/architecture.md draws it):
//! [`config`] loads `vitals.toml` with precise diagnostics, and [`daemon::split`] hands
//! each part to its owner → [`runner`] runs every check ([`check`] is the plugin API;
//! schedule, timeout, isolation) → [`board`] keeps the latest [`observation`]s and
//! their history → [`alerting`] feeds them to the [`rules`] engine, whose [`alert`]
//! events [`dispatch`] delivers to the [`sinks`] (alerts table, email, Alertmanager,
//! log) → [`web`] shows the board and the alerts (each kind's [`panel`]), [`report`]
//! prints them for `vitals check`. Check kinds (`src/checks/`) and sink kinds
//! (`src/sinks/`) register themselves through the one machinery in [`plugin`];
//! [`registry`] holds them all.

pub mod actions;
pub mod alert;
pub mod alerting;
pub mod alerts_table;
pub mod board;
pub mod bounded;
pub mod check;
#[path = "../checks/mod.rs"]
pub mod checks;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod delta;
pub mod demo;
pub mod dispatch;
pub mod duration;
pub mod files;
pub mod health;
pub mod history;
pub mod market;
pub mod observation;
pub mod panel;
pub mod plugin;
pub mod process;
pub mod procs;
pub mod reference;
pub mod registry;
pub mod replay;
pub mod report;
pub mod resources;
pub mod rules;
pub mod ruletest;
pub mod runner;
pub mod schema;
pub mod sinks;
pub mod system;
pub mod text;
pub mod thresholds;
pub mod timezone;
pub mod web;

#[doc(hidden)]
pub use inventory;
