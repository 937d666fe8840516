//! The host's running processes by command line, read from `/proc` at most once per
//! [`SHARED_FOR`] whoever asks: every check that looks for a process (a table writer's
//! `sync_process`) shares one scan, so the cost does not grow with the number of checks.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// How long one scan answers every check that asks: a process that ends is seen at most
/// this much later than by a scan of its own.
pub const SHARED_FOR: Duration = Duration::from_secs(1);

/// Every process but vitals itself: its pid and its command line, arguments joined by
/// spaces (kernel threads, whose command line is empty, are left out).
pub type Table = Arc<Vec<(u32, String)>>;

/// The last scan and when it was taken.
static LAST: Mutex<Option<(Instant, Table)>> = Mutex::const_new(None);

/// The process table, from a scan at most `SHARED_FOR` old, or a new one; `Err` when
/// `/proc` cannot be read or the wait (for a scan already running, or its own) passes
/// `budget`.
pub async fn table(budget: Duration) -> Result<Table, String> {
    table_within(SHARED_FOR, budget).await
}

/// [`table`] with a scan at most `fresh` old (`Duration::ZERO`: a scan of its own).
pub async fn table_within(fresh: Duration, budget: Duration) -> Result<Table, String> {
    let look = async {
        // One scan at a time: who comes while it runs waits for it and shares it.
        let mut last = LAST.lock().await;
        if let Some((at, t)) = last.as_ref()
            && at.elapsed() < fresh
        {
            return Ok(t.clone());
        }
        let t: Table = tokio::task::spawn_blocking(scan)
            .await
            .map_err(|e| format!("the look in /proc failed: {e}"))??
            .into();
        *last = Some((Instant::now(), t.clone()));
        Ok(t)
    };
    tokio::time::timeout(budget, look).await.unwrap_or_else(|_| {
        Err(format!(
            "the look in /proc did not finish within {}",
            crate::duration::format(budget)
        ))
    })
}

/// One pass over `/proc/*/cmdline`.
fn scan() -> Result<Vec<(u32, String)>, String> {
    let me = std::process::id();
    let entries = std::fs::read_dir("/proc").map_err(|e| format!("cannot read /proc: {e}"))?;
    let mut out = Vec::new();
    for entry in entries {
        // A listing cut short would miss a writer that runs: say so instead.
        let entry = entry.map_err(|e| format!("cannot list /proc: {e}"))?;
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        // A process that ended meanwhile, or a kernel thread (empty): not listed.
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if raw.is_empty() {
            continue;
        }
        let line = String::from_utf8_lossy(&raw).replace('\0', " ");
        out.push((pid, line.trim_end().to_owned()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_scan_lists_other_processes_and_is_shared_while_fresh() {
        // The process that started the tests (cargo, a shell) is listed with its
        // command line.
        let parent = std::os::unix::process::parent_id();
        let line = String::from_utf8_lossy(&std::fs::read(format!("/proc/{parent}/cmdline")).unwrap())
            .replace('\0', " ")
            .trim_end()
            .to_owned();
        let t = table_within(Duration::ZERO, Duration::from_secs(5))
            .await
            .unwrap();
        assert!(
            t.iter().any(|(pid, l)| *pid == parent && *l == line),
            "{parent} {line:?}: {t:?}"
        );
        assert!(
            t.iter().all(|(pid, _)| *pid != std::process::id()),
            "not vitals itself"
        );
        // Within the window the same scan answers; a new one is taken after.
        let again = table_within(Duration::from_secs(60), Duration::from_secs(5))
            .await
            .unwrap();
        assert!(Arc::ptr_eq(&t, &again));
        // A process that ended is gone from the next scan.
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        let after = table_within(Duration::ZERO, Duration::from_secs(5))
            .await
            .unwrap();
        assert!(!Arc::ptr_eq(&t, &after));
        assert!(
            !after.iter().any(|(pid, l)| *pid == child.id() && l == "sleep 30"),
            "the ended process is gone"
        );
    }
}
