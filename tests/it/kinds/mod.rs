//! Check kinds that live only in the tests (registered in this test binary alone).

pub mod gauge;
