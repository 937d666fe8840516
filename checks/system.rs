//! The status page's "System metrics" section, which `cpu`, `memory`, `disk` (generic
//! cards with a bar and a sparkline) and `host` share. Not a kind: a section several
//! kinds point at.

use crate::panel::{Layout, Panel, Section};

/// The "System metrics" section.
pub static SYSTEM_SECTION: Section = Section {
    id: "system",
    title: "System metrics",
    order: 30,
    layout: Layout::Grid,
    listed_when_empty: true,
    head: "",
};

/// The generic card in "System metrics" (value, bar, sparkline), for `cpu`, `memory`
/// and `disk`.
pub static SYSTEM_CARD: Panel = Panel {
    section: &SYSTEM_SECTION,
    rank: 0,
    template: None,
    reads: &[],
    css: "",
};
