//! What the benchmarks share: where the repository and the test Python are, a free
//! loopback port, a fresh scratch folder, and a Python script run to its end. Each
//! bench includes it with `mod common;` (not every bench uses every helper).
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// The repository.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The test Python with deltalake, pandas and pyarrow (`./scripts/test.sh` makes it).
pub fn python() -> PathBuf {
    root().join(".venv/bin/python")
}

/// A free port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An empty scratch folder `name` under the target directory (emptied first).
pub fn fresh_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `script` with the test Python and `args`; panics with its stderr if it fails.
pub fn run_python(script: &str, args: &[&std::ffi::OsStr]) -> Output {
    let out = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect(".venv/bin/python (./scripts/test.sh makes it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out
}
