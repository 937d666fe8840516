//! The check kinds. Each kind is one file or folder here: its config, its check, its
//! registration and (optionally) its status-page panel. Adding a kind is one file (plus
//! an optional partial template next to it) and one `mod` line below.

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

use crate::panel::{Layout, Panel, Section};

/// The status page's "System metrics" section, shared by `cpu`, `memory`, `disk`
/// (generic cards with a bar and a sparkline) and `host`.
pub static SYSTEM_SECTION: Section = Section {
    id: "system",
    title: "System metrics",
    order: 30,
    layout: Layout::Grid,
    placeholder: Some("<p class=\"muted\">No system checks are configured.</p>"),
    head: "",
};

/// The generic card in "System metrics" (value, bar, sparkline), for `cpu`, `memory`
/// and `disk`.
pub static SYSTEM_CARD: Panel = Panel {
    section: &SYSTEM_SECTION,
    rank: 0,
    template: None,
    reads: &[],
};
