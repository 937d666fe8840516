//! The check kinds. Each file is one kind: its config, its check and its
//! registration. Adding a kind is one file here and one `mod` line below.

mod command;
mod cpu;
mod delta_freshness;
mod disk;
mod host;
mod ib_connection;
mod memory;
mod queue_backlog;
mod strategy_slots;
mod tcp;
