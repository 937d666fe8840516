//! One shared sysinfo `System` for every system check (a [`Resources`](crate::resources)
//! entry), and the process count read from /proc directly. Both read /proc
//! synchronously, so every call runs on the blocking pool.

use std::sync::{Arc, Mutex};

use std::time::Instant;
use sysinfo::{Disks, LoadAvg, MINIMUM_CPU_UPDATE_INTERVAL, MemoryRefreshKind, System};

/// Why the system could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// The kernel would not tell (sysinfo's message).
    #[error("cannot read {what}: {message}")]
    Read {
        /// What was being read ("the load average").
        what: &'static str,
        /// Why.
        message: String,
    },
    /// The blocking task reading /proc failed (it panicked or was cancelled).
    #[error("system probe failed: {0}")]
    Task(String),
    /// A configured path does not resolve (missing, or a component is unreadable).
    #[error("cannot resolve {path}: {message}")]
    Resolve {
        /// The path as configured.
        path: String,
        /// Why.
        message: String,
    },
    /// No mounted filesystem holds the path.
    #[error("no mounted filesystem holds {0}")]
    NoFilesystem(String),
}

fn read(what: &'static str) -> impl FnOnce(sysinfo::Error) -> ProbeError {
    move |e| ProbeError::Read {
        what,
        message: e.to_string(),
    }
}

/// Shared system sampler. CPU usage is measured between two refreshes at least
/// sysinfo's minimum interval apart; in the daemon, consecutive runs of the cpu check
/// are those two samples, so each reading is the average over the last interval.
#[derive(Default)]
pub struct SystemProbe {
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    system: Option<System>,
    cpu_refreshed: Option<Instant>,
}

/// Memory figures, in bytes.
#[derive(Debug, Clone, Copy)]
pub struct MemoryUsage {
    /// Total RAM.
    pub total: u64,
    /// RAM in use (total − available).
    pub used: u64,
    /// RAM available to new work.
    pub available: u64,
    /// Total swap.
    pub swap_total: u64,
    /// Swap in use.
    pub swap_used: u64,
}

/// Space on the filesystem holding a path.
#[derive(Debug, Clone)]
pub struct DiskUsage {
    /// Where it is mounted.
    pub mount_point: String,
    /// Device or source.
    pub name: String,
    /// Filesystem type.
    pub file_system: String,
    /// Size in bytes.
    pub total: u64,
    /// Bytes available to unprivileged users.
    pub available: u64,
    /// Bytes free, the blocks reserved for root included.
    pub free: u64,
}

impl DiskUsage {
    /// Bytes in use: the size less what is free.
    pub fn used(&self) -> u64 {
        self.total.saturating_sub(self.free)
    }

    /// Bytes reserved for root: free, but not available to anyone else.
    pub fn reserved(&self) -> u64 {
        self.free.saturating_sub(self.available)
    }

    /// Percent used as `df` (and psutil) count it: used / (used + available). The
    /// blocks reserved for root are neither: counting them as used would read 71 %
    /// where `df` says 25 %.
    pub fn percent_used(&self) -> Option<f64> {
        let room = self.used() + self.available;
        (room > 0).then(|| self.used() as f64 * 100.0 / room as f64)
    }
}

/// Host-wide figures.
#[derive(Debug, Clone, Copy)]
pub struct HostInfo {
    /// Seconds since boot.
    pub uptime: u64,
    /// Boot time, Unix seconds.
    pub boot_time: u64,
    /// Processes (threads not counted).
    pub processes: usize,
    /// 1, 5, 15 minute load averages.
    pub load: (f64, f64, f64),
    /// Logical CPUs.
    pub cpus: usize,
}

impl SystemProbe {
    async fn with_system<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut State) -> Result<T, ProbeError> + Send + 'static,
    ) -> Result<T, ProbeError> {
        let state = self.state.clone();
        tokio::task::spawn_blocking(move || {
            let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
            if state.system.is_none() {
                state.system = Some(System::new().map_err(read("system information"))?);
            }
            f(&mut state)
        })
        .await
        .map_err(|e| ProbeError::Task(e.to_string()))?
    }

    /// CPU usage in percent over the time since the previous call (at least sysinfo's
    /// minimum interval: the first call takes two samples that far apart).
    pub async fn cpu_usage(&self) -> Result<(f64, usize), ProbeError> {
        let wait = self
            .with_system(|s| {
                let now = Instant::now();
                match s.cpu_refreshed {
                    Some(t) if now - t >= MINIMUM_CPU_UPDATE_INTERVAL => Ok(None),
                    Some(t) => Ok(Some(t + MINIMUM_CPU_UPDATE_INTERVAL)),
                    None => {
                        system(s).refresh_cpu_usage();
                        s.cpu_refreshed = Some(now);
                        Ok(Some(now + MINIMUM_CPU_UPDATE_INTERVAL))
                    }
                }
            })
            .await?;
        if let Some(until) = wait {
            tokio::time::sleep_until(tokio::time::Instant::from_std(until)).await;
        }
        self.with_system(|s| {
            let sys = system(s);
            sys.refresh_cpu_usage();
            let usage = f64::from(sys.global_cpu_usage());
            let cpus = sys.cpus().len().max(1);
            s.cpu_refreshed = Some(Instant::now());
            Ok((usage, cpus))
        })
        .await
    }

    /// Memory and swap.
    pub async fn memory(&self) -> Result<MemoryUsage, ProbeError> {
        self.with_system(|s| {
            let sys = system(s);
            sys.refresh_memory_specifics(MemoryRefreshKind::everything());
            Ok(MemoryUsage {
                total: sys.total_memory(),
                used: sys.total_memory().saturating_sub(sys.available_memory()),
                available: sys.available_memory(),
                swap_total: sys.total_swap(),
                swap_used: sys.used_swap(),
            })
        })
        .await
    }

    /// Uptime, processes, load.
    pub async fn host(&self) -> Result<HostInfo, ProbeError> {
        self.with_system(|s| {
            let _ = s;
            let processes = count_processes()?;
            let LoadAvg { one, five, fifteen } = System::load_average().map_err(read("the load average"))?;
            Ok(HostInfo {
                uptime: System::uptime().map_err(read("the uptime"))?,
                boot_time: System::boot_time().map_err(read("the boot time"))?,
                processes,
                load: (one, five, fifteen),
                cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            })
        })
        .await
    }
}

/// Processes as `ps -e` lists them, kernel threads left out: the numeric entries of
/// /proc whose `stat` flags lack `PF_KTHREAD`. One small read per process and nothing
/// kept (sysinfo's process table would also walk every process's threads and keep a
/// record of each between runs).
fn count_processes() -> Result<usize, ProbeError> {
    /// `PF_KTHREAD` in include/linux/sched.h.
    const PF_KTHREAD: u64 = 0x0020_0000;
    let proc = std::fs::read_dir("/proc").map_err(|e| ProbeError::Read {
        what: "the process list",
        message: e.to_string(),
    })?;
    let mut n = 0;
    let mut path = std::path::PathBuf::from("/proc");
    for entry in proc.flatten() {
        let name = entry.file_name();
        if !name.as_encoded_bytes().iter().all(u8::is_ascii_digit) {
            continue;
        }
        path.push(&name);
        path.push("stat");
        // A process that ended meanwhile is not counted.
        let stat = std::fs::read_to_string(&path).unwrap_or_default();
        path.pop();
        path.pop();
        // The fields after the command name (which may hold spaces and parentheses):
        // state, ppid, pgrp, session, tty_nr, tpgid, flags.
        let flags = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(6)?.parse::<u64>().ok());
        if flags.is_some_and(|f| f & PF_KTHREAD == 0) {
            n += 1;
        }
    }
    Ok(n)
}

fn system(s: &mut State) -> &mut System {
    s.system
        .as_mut()
        .unwrap_or_else(|| unreachable!("with_system creates it"))
}

/// The filesystem holding `path`: the mount whose mount point is the longest prefix of
/// the canonical path. Blocking; call from `spawn_blocking`.
pub fn disk_usage(path: &std::path::Path) -> Result<DiskUsage, ProbeError> {
    let canonical = path.canonicalize().map_err(|e| ProbeError::Resolve {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    let disks = Disks::new_with_refreshed_list().map_err(read("the filesystems"))?;
    let disk = disks
        .iter()
        .filter(|d| canonical.starts_with(d.mount_point()))
        .max_by_key(|d| d.mount_point().as_os_str().len())
        .ok_or_else(|| ProbeError::NoFilesystem(canonical.display().to_string()))?;
    // The block counts as statvfs(2) gives them (what `df` reads): sysinfo has no
    // free-but-reserved figure.
    let fs = nix::sys::statvfs::statvfs(&canonical).map_err(|e| ProbeError::Resolve {
        path: canonical.display().to_string(),
        message: format!("statvfs: {e}"),
    })?;
    let unit = fs.fragment_size() as u64;
    Ok(DiskUsage {
        mount_point: disk.mount_point().display().to_string(),
        name: disk.name().to_string_lossy().into_owned(),
        file_system: disk.file_system().to_string_lossy().into_owned(),
        total: (fs.blocks() as u64).saturating_mul(unit),
        available: (fs.blocks_available() as u64).saturating_mul(unit),
        free: (fs.blocks_free() as u64).saturating_mul(unit),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_are_counted_as_ps_lists_them_without_kernel_threads() {
        let ours = count_processes().unwrap();
        // procps' way of leaving kernel threads out: not kthreadd, not its children.
        let ps = std::process::Command::new("ps")
            .args(["--ppid", "2", "-p", "2", "--deselect", "-o", "pid="])
            .output()
            .expect("ps (procps)");
        let listed = String::from_utf8_lossy(&ps.stdout).lines().count();
        assert!(ours >= 1, "this process at least");
        // Other tests start and end processes meanwhile.
        assert!(
            ours.abs_diff(listed) <= 10,
            "vitals counts {ours} processes, ps lists {listed}"
        );
    }
}
