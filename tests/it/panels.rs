//! Kinds bring their own page panel: each partial reads exactly the details keys its
//! kind declares, and the kinds write them.

use std::collections::BTreeSet;

use vitals::check::Observation;
use vitals::registry::registry;

/// The `v.details.KEY` names a template reads.
fn details_read(template: &str) -> BTreeSet<String> {
    template
        .split("v.details.")
        .skip(1)
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .collect()
}

#[test]
fn every_partial_reads_exactly_what_its_kind_declares() {
    let mut with_partial = 0;
    for kind in registry().unwrap().checks.kinds() {
        let Some(panel) = kind.panel() else { continue };
        let declared: BTreeSet<String> = panel.reads.iter().map(|s| s.to_string()).collect();
        let read = panel.template.map(details_read).unwrap_or_default();
        assert_eq!(
            read, declared,
            "kind `{}`: its partial reads {read:?} but declares {declared:?}",
            kind.name
        );
        with_partial += usize::from(panel.template.is_some());
    }
    assert!(with_partial >= 6, "{with_partial} kinds have a partial");
}

/// Every partial renders one check, with no details at all (a check that could not
/// read anything), showing its id and its badge: a partial that errors or shows nothing
/// fails here, not on the desk's page.
#[test]
fn every_partial_renders_its_check() {
    let env = vitals::web::templates(&registry().unwrap().checks, vitals::timezone::DeskZone::UTC)
        .expect("every template parses");
    let mut rendered = 0;
    for kind in registry().unwrap().checks.kinds() {
        if kind.panel().and_then(|p| p.template).is_none() {
            continue;
        }
        let v = serde_json::json!({
            "id": "probe-check-7", "kind": kind.name, "status": "critical",
            "class": "s-critical", "icon": "✖", "text": "PROBE-BADGE",
            "message": "probe message", "value": null, "shown": "—", "unit": "",
            "observed_at": "2026-12-04T12:00:00Z", "since": "2026-12-04T11:00:00Z",
            "details": {}, "actions": [], "spark": "",
        });
        let html = env
            .get_template(kind.name)
            .and_then(|t| t.render(minijinja::context! { v => v, actions_enabled => true }))
            .unwrap_or_else(|e| panic!("kind `{}`: {e:#}", kind.name));
        assert!(
            html.contains("data-check=\"probe-check-7\""),
            "kind `{}` does not mark its check:\n{html}",
            kind.name
        );
        assert!(
            html.contains("✖ PROBE-BADGE"),
            "kind `{}` shows no badge:\n{html}",
            kind.name
        );
        rendered += 1;
    }
    assert!(rendered >= 6, "{rendered} partials rendered");
}

/// Asserts that an observation of a kind with a panel has every details key its
/// partial reads: called by the tests that produce real observations of each kind.
pub fn assert_writes_what_its_panel_reads(o: &Observation) {
    let kind = registry()
        .unwrap()
        .checks
        .get(&o.kind)
        .expect("a registered kind");
    let Some(panel) = kind.panel() else { return };
    for key in panel.reads {
        assert!(
            o.details.contains_key(*key),
            "`{}` writes no `{key}`, which its panel reads: {:?}",
            o.kind,
            o.details
        );
    }
}

#[tokio::test]
async fn system_kinds_write_what_their_panels_read() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[checks.h]\nkind = \"host\"\n[checks.c]\nkind = \"cpu\"\n\
                [checks.m]\nkind = \"memory\"\n[checks.d]\nkind = \"disk\"\npath = \"/\"\n";
    for i in crate::support::instances(dir.path(), text) {
        let o = i.run_once(tokio::time::Instant::now()).await;
        assert_ne!(o.status, vitals::check::Status::Unknown, "{o:?}");
        assert_writes_what_its_panel_reads(&o);
    }
}
