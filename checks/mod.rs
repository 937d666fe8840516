//! The check kinds: the plugins. Each kind is one file or folder here — its config, its
//! check, its registration and (optionally) its status-page panel — and one `mod` line
//! below; nothing else in the tree lists kinds (docs/writing-a-check.md).

mod command;
mod cpu;
mod delta_freshness;
mod disk;
mod host;
mod ib_connection;
mod memory;
mod peer;
mod queue_backlog;
mod strategy_slots;
mod system;
mod tcp;
