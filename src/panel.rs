//! How a check kind appears on the status page, declared by the kind itself
//! ([`crate::check::CheckConfig::PANEL`]). The page (`src/web/`) knows no kind: it
//! gathers the sections the registered kinds declare, orders them, and renders each
//! check with its kind's partial template. Kinds without a panel get a row in "Other
//! checks".
//!
//! A partial is a minijinja template stored next to the kind (e.g.
//! `checks/ib_connection/panel.html.j2`). It renders one check, `v`, with these
//! fields: `id`, `kind`, `status` (`ok`…), `class` and `icon` (the badge's look),
//! `text` (label or status in capitals), `message`, `value`, `shown` (value with its
//! unit), `unit`, `observed_at`, `since`, `details` (the observation's details),
//! `actions` (each with `name`, `label`, `description`, `destructive`, `confirm`,
//! `url`; the last is the generic "Run now") and `spark` (points of a last-hour
//! sparkline, empty when there are fewer than two). `actions_enabled` says whether a
//! token is set. In the page (not when rendered alone: test with `is defined`) it also
//! sees `loop` (its place among the section's checks) and the page's `host` (this
//! instance's name), `overall` (`class`, `icon`, `text`), `counts` (by status) and
//! `alerts` (the active alerts: `rule`, `check_id`, `severity`, `message`): the Fleet
//! section's partial (`checks/peer/panel.html.j2`) leads with a row for this host.
//!
//! Two filters: `local` shows an RFC 3339 time in the desk's time zone
//! (`{{ v.details.newest|local }}` → "2026-12-04 09:31:05 EST"), `num` a number without
//! a trailing `.0`. Give the partial's root element `id="check-{{ v.id }}"`: the
//! header's links to checks that are not ok lead there.
//!
//! The page's macros are in the file `macros.html`, imported with
//! `{% from "macros.html" import badge, bar, buttons, spark %}`: `badge(v)` the status
//! badge, `bar(v, max=…, class=…)` a bar from 0 to `max` (default `details.limit`,
//! else 100) marked at `details.warn` and `details.crit` and coloured by the status,
//! `buttons(v)` the action buttons (a confirm for destructive ones), `spark(v)` the
//! sparkline.

/// How the checks of a section are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One card under the other.
    Stack,
    /// Cards side by side, wrapping.
    Grid,
    /// One table; each check's partial renders a `<tr>`.
    Table {
        /// The column headings.
        columns: &'static [&'static str],
    },
}

/// A section of the status page. Kinds that share a section point at the same static.
#[derive(Debug)]
pub struct Section {
    /// Its id: the HTML id and the name the page script refreshes it by.
    pub id: &'static str,
    /// Its heading.
    pub title: &'static str,
    /// Where it goes: sections are shown by ascending order, before the alerts.
    pub order: u16,
    /// How the panels of its checks are laid out.
    pub layout: Layout,
    /// When no check of its kinds is configured: `true` names it on the page's one
    /// "Not configured: …" line (with the kinds that would fill it), `false` leaves it
    /// out without a word. Never an empty box.
    pub listed_when_empty: bool,
    /// HTML placed between the heading and the refreshed part (kept across refreshes,
    /// e.g. a filter box).
    pub head: &'static str,
}

/// One kind's place on the page.
#[derive(Debug)]
pub struct Panel {
    /// The section its checks go to.
    pub section: &'static Section,
    /// Within a section, panels of lower rank come first; checks of one rank are
    /// sorted by id.
    pub rank: u8,
    /// The partial rendering one check (`include_str!("panel.html.j2")`); `None`: a
    /// generic card with badge, value, bar (when the details have `warn` and `crit`),
    /// sparkline, message and the kind's buttons.
    pub template: Option<&'static str>,
    /// Every `details` key the partial reads. A test checks it against the template
    /// and against what the kind writes, so the two cannot drift apart.
    pub reads: &'static [&'static str],
    /// CSS the partial needs (`include_str!("panel.css")`, or `""`): added to the
    /// page's stylesheet, since the page's Content-Security-Policy allows no inline
    /// styles. Scope its rules under the kind's own classes.
    pub css: &'static str,
}

impl Section {
    /// Whether two references name the same section.
    pub fn same(&self, other: &Section) -> bool {
        self.id == other.id
    }
}
