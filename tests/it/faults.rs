//! The fault matrix (docs/reliability.md), its fast half in the suite; the harness is
//! `support/faults.rs`.

use crate::support::faults::{assert_nothing_lost, run};

/// The fast half, in the test suite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_matrix_fast_half() {
    assert_nothing_lost(&run(false).await, "fault-matrix");
}

/// The whole matrix (`scripts/fault-matrix`): the slow faults too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "about 2 minutes and a tmpfs mount: scripts/fault-matrix runs it"]
async fn fault_matrix_full() {
    assert_nothing_lost(&run(true).await, "fault-matrix-full");
}
