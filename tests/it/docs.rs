//! docs/configuration.md carries the reference generated from the registry, so it
//! cannot drift. `VITALS_BLESS=1 cargo test docs` rewrites it after a change.

use crate::support::shipped_registry;
use vitals::reference::configuration_reference;

const BEGIN: &str = "<!-- BEGIN GENERATED REFERENCE: edit the config structs' /// comments, then run `VITALS_BLESS=1 cargo test docs` -->\n";
const END: &str = "<!-- END GENERATED REFERENCE -->";

#[test]
fn configuration_reference_matches_the_registry() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configuration.md");
    let doc = std::fs::read_to_string(path).expect("docs/configuration.md");
    let (head, rest) = doc.split_once(BEGIN).expect("the BEGIN marker");
    let (current, tail) = rest.split_once(END).expect("the END marker");
    let generated = configuration_reference(&shipped_registry());
    if std::env::var_os("VITALS_BLESS").is_some() {
        std::fs::write(path, format!("{head}{BEGIN}{generated}{END}{tail}")).unwrap();
        return;
    }
    assert!(
        current == generated,
        "docs/configuration.md is out of date: run `VITALS_BLESS=1 cargo test docs` and commit it"
    );
}
