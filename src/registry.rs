//! Every kind linked into this binary, of both families: check kinds and sink kinds.
//! The config loader, `vitals plugins`, the docs and the page all take the one
//! [`Registry`], injected the same way (a `&Registry` argument), so a test can hand
//! them a registry of its own.

use std::sync::OnceLock;

use crate::check::{CheckKind, Checks};
use crate::plugin::{DuplicateKind, Kinds};
use crate::sinks::{SinkKind, Sinks};

/// The registered kinds of both families.
#[derive(Debug)]
pub struct Registry {
    /// Check kinds (`[checks.<id>] kind = …`).
    pub checks: Kinds<Checks>,
    /// Sink kinds (`[sinks.<id>] kind = …`).
    pub sinks: Kinds<Sinks>,
}

impl Registry {
    /// Every kind registered with `register_check!` / `register_sink!` in this binary
    /// (the test binary's own kinds included), refusing two kinds with one name.
    pub fn linked() -> Result<Registry, DuplicateKind> {
        Ok(Registry {
            checks: Kinds::from_kinds(inventory::iter::<CheckKind>)?,
            sinks: Kinds::from_kinds(inventory::iter::<SinkKind>)?,
        })
    }
}

/// The registry of every kind linked into this binary, built once.
pub fn registry() -> Result<&'static Registry, DuplicateKind> {
    static REGISTRY: OnceLock<Result<Registry, DuplicateKind>> = OnceLock::new();
    REGISTRY
        .get_or_init(Registry::linked)
        .as_ref()
        .map_err(Clone::clone)
}
