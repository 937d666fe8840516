//! vitals: a health-check daemon and plugin framework for an options-trading system on
//! Interactive Brokers and Delta Lake.
//!
//! The pieces, in the order data flows:
//! [`check`] (the plugin API) → [`runner`] (schedule, timeout, isolation) →
//! [`board`] (latest observations and history) → outputs ([`report`] for the CLI).
//! [`config`] loads `vitals.toml` with precise diagnostics; [`plugin`] is the registry
//! the kinds in `checks/` add themselves to; [`daemon`] ties it together for `vitals run`.

pub mod alert;
pub mod alerting;
pub mod board;
pub mod check;
pub mod checks;
pub mod config;
pub mod daemon;
pub mod delta;
pub mod dispatch;
pub mod duration;
pub mod observation;
pub mod panel;
pub mod plugin;
pub mod process;
pub mod reference;
pub mod registry;
pub mod report;
pub mod resources;
pub mod rules;
pub mod runner;
pub mod schema;
pub mod sinks;
pub mod system;
pub mod thresholds;
pub mod web;

#[doc(hidden)]
pub use inventory;
