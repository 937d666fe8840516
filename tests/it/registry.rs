//! The registry: every kind's example parses and validates, every key is documented,
//! and two kinds with one name are refused naming both places.

use std::sync::Arc;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use vitals::check::{BuildContext, BuildError, Check, CheckConfig, Reading, RunContext};
use vitals::check::{CheckKind, Checks};
use vitals::config::parse;
use vitals::plugin::Kinds;
use vitals::registry::registry;

#[test]
fn every_kind_example_parses_and_validates() {
    let registry = registry().expect("no duplicate kinds");
    let names = registry.checks.names();
    for expected in ["command", "cpu", "disk", "host", "memory"] {
        assert!(
            names.contains(&expected),
            "kind {expected} is not registered: {names:?}"
        );
    }
    for kind in registry.checks.kinds() {
        let text = format!("[checks.example]\nkind = \"{}\"\n{}", kind.name, kind.example);
        let config = parse("example.toml".as_ref(), &text, registry)
            .unwrap_or_else(|d| panic!("the example of `{}` is invalid:\n{d}", kind.name));
        assert_eq!(config.checks.len(), 1);
        assert_eq!(config.checks[0].kind, kind.name);
        assert!(
            kind.location().starts_with("checks/") || kind.location().starts_with("tests/"),
            "{} registered from {}",
            kind.name,
            kind.location()
        );
    }
}

#[test]
fn every_key_of_every_kind_is_documented() {
    let registry = registry().unwrap();
    for kind in registry.checks.kinds() {
        let keys = (kind.keys)();
        assert!(
            !keys.is_empty() || kind.name == "host",
            "{} has no keys",
            kind.name
        );
        for key in keys {
            assert!(
                key.doc.len() > 10,
                "key `{}` of kind `{}` has no /// documentation",
                key.name,
                kind.name
            );
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Twin {}

struct Nothing;

#[async_trait]
impl Check for Nothing {
    async fn run(&self, _: &RunContext) -> Reading {
        Reading::unknown("nothing")
    }
}

impl CheckConfig for Twin {
    const KIND: &'static str = "twin";
    const SUMMARY: &'static str = "test";
    const EXAMPLE: &'static str = "";
    fn build(&self, _: &BuildContext) -> Result<Arc<dyn Check>, BuildError> {
        Ok(Arc::new(Nothing))
    }
}

static FIRST: CheckKind = CheckKind::of::<Twin>("checks/a.rs", 10);
static SECOND: CheckKind = CheckKind::of::<Twin>("checks/b.rs", 20);

#[test]
fn two_kinds_with_one_name_are_an_error_naming_both() {
    let err = Kinds::<Checks>::from_kinds([&FIRST, &SECOND]).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("`twin`"), "{text}");
    assert!(text.contains("checks/a.rs:10"), "{text}");
    assert!(text.contains("checks/b.rs:20"), "{text}");
    assert!(Kinds::<Checks>::from_kinds([&FIRST]).is_ok());
}

#[test]
fn every_sink_kind_example_parses_validates_and_is_documented() {
    let sinks = &registry().expect("no duplicate kinds").sinks;
    assert!(sinks.names().len() >= 5, "{:?}", sinks.names());
    for kind in sinks.kinds() {
        let text = format!("[sinks.example]\nkind = \"{}\"\n{}", kind.name, kind.example);
        let config = parse("example.toml".as_ref(), &text, registry().unwrap())
            .unwrap_or_else(|d| panic!("the example of sink `{}` is invalid:\n{d}", kind.name));
        assert_eq!(config.sinks[0].kind, kind.name);
        for key in (kind.keys)() {
            assert!(
                key.doc.len() > 10,
                "key `{}` of sink `{}` has no /// documentation",
                key.name,
                kind.name
            );
        }
    }
}
