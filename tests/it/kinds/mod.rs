//! Kinds that live only in the tests (registered in this test binary alone): the
//! worked examples of docs/writing-a-check.md and docs/writing-a-sink.md.

pub mod gauge;
pub mod webhook;
