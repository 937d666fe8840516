//! Delta tables written and read by Python `deltalake` + pandas, as the trading
//! system's writers do (`tests/support/make_table.py`, `tests/support/alerts_table.py`).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::python;

fn helper(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support")
        .join(name)
}

/// The table-making script, for configs that run it themselves (e.g. `force_sync`).
pub fn make_script() -> PathBuf {
    helper("make_table.py")
}

/// Makes or appends to a table with `tests/support/make_table.py` (its arguments: a
/// freshness table `PATH tz|ntz AGE_S [ROWS]`, `registry PATH ACTIVE INACTIVE`, `queue
/// PATH PENDING DONE AGE_S`, …).
pub fn make(args: &[&str]) {
    let out = Command::new(python())
        .arg(make_script())
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The count of each status in a queue table (at `version`, or the latest).
pub fn statuses(table: &Path, version: Option<u64>) -> Value {
    let mut cmd = Command::new(python());
    cmd.arg(make_script()).arg("statuses").arg(table);
    if let Some(v) = version {
        cmd.arg(v.to_string());
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The alerts table as Python `deltalake` + pandas read it, or why Python could not.
pub fn try_read_table(table: &Path) -> Result<Value, String> {
    let out = Command::new(python())
        .arg(helper("alerts_table.py"))
        .arg("read")
        .arg(table)
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
}
