//! End-to-end tests: one binary, one module per area. `support/` holds what several
//! modules share; `kinds/` holds check kinds that live only in the tests.

mod alerting;
mod alertmanager;
mod architecture;
mod browser;
mod cli;
mod command;
mod config;
mod delta_freshness;
mod delta_sink;
mod demo;
mod dispatch;
mod docs;
mod email;
mod faults;
mod fleet;
mod fuzz;
mod history;
mod hung;
mod ib;
mod kinds;
mod logs;
mod operator;
mod panels;
mod registry;
mod reload;
mod remediation;
mod replay;
mod rules;
mod runner;
#[cfg(feature = "s3")]
mod s3;
mod secrets;
mod security;
mod service;
mod support;
mod web;
mod writing_a_sink;
