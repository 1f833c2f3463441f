//! What a sandbox's cgroup recorded: processes killed at the memory limit, forks refused at
//! the pids limit, CPU periods throttled. Read by stage1 once the sandbox has ended, before
//! the cgroup is removed.

use super::hierarchy::{Controller, Version};
use rustix::fs::{Mode, OFlags, openat};
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::os::fd::BorrowedFd;

/// Largest cgroup statistics file read.
const MAX_STAT_FILE: u64 = 64 << 10;

/// What the limits did during a sandbox's life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitUsage {
    /// Processes the kernel killed because the memory limit was reached.
    pub oom_kills: u64,
    /// Most memory in use at once, in bytes, where the kernel reports it.
    pub memory_peak: Option<u64>,
    /// Forks (and new threads) refused because the pids limit was reached.
    pub pids_refused: u64,
    /// CPU periods (100 ms) in which the sandbox was held back by its CPU limit.
    pub cpu_throttled: u64,
    /// CPU time used, in microseconds, where the kernel reports it (v2).
    pub cpu_usage_usec: Option<u64>,
    /// Memory in use when this was read, in bytes.
    #[serde(default)]
    pub memory_current: Option<u64>,
    /// Processes and threads alive when this was read.
    #[serde(default)]
    pub pids_current: Option<u64>,
}

impl LimitUsage {
    /// Add what `controllers` of the cgroup directory `dir` recorded.
    pub(crate) fn read(
        &mut self,
        version: Version,
        controllers: &[Controller],
        dir: BorrowedFd<'_>,
    ) {
        for c in controllers {
            match (c, version) {
                (Controller::Memory, Version::V1) => {
                    if let Some(n) = stat(dir, "memory.oom_control", "oom_kill") {
                        self.oom_kills += n;
                    }
                    self.memory_peak = number(dir, "memory.max_usage_in_bytes");
                    self.memory_current = number(dir, "memory.usage_in_bytes");
                }
                (Controller::Memory, Version::V2) => {
                    if let Some(n) = stat(dir, "memory.events", "oom_kill") {
                        self.oom_kills += n;
                    }
                    self.memory_peak = number(dir, "memory.peak");
                    self.memory_current = number(dir, "memory.current");
                }
                (Controller::Pids, _) => {
                    if let Some(n) = stat(dir, "pids.events", "max") {
                        self.pids_refused += n;
                    }
                    self.pids_current = number(dir, "pids.current");
                }
                (Controller::Cpu, _) => {
                    if let Some(n) = stat(dir, "cpu.stat", "nr_throttled") {
                        self.cpu_throttled += n;
                    }
                    if version == Version::V2 {
                        self.cpu_usage_usec = stat(dir, "cpu.stat", "usage_usec");
                    }
                }
            }
        }
    }
}

fn read(dir: BorrowedFd<'_>, name: &str) -> Option<String> {
    let fd = openat(dir, name, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).ok()?;
    let mut text = String::new();
    std::fs::File::from(fd)
        .take(MAX_STAT_FILE)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

fn number(dir: BorrowedFd<'_>, name: &str) -> Option<u64> {
    read(dir, name)?.trim().parse().ok()
}

fn stat(dir: BorrowedFd<'_>, name: &str, key: &str) -> Option<u64> {
    keyed(&read(dir, name)?, key)
}

/// The value of `key` in a flat-keyed cgroup file (`key value` per line).
pub(crate) fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_keyed_files() {
        let events = "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(keyed(events, "oom_kill"), Some(1));
        assert_eq!(keyed(events, "max"), Some(12));
        assert_eq!(keyed(events, "missing"), None);
        assert_eq!(keyed("oom_kill x\n", "oom_kill"), None);
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(keyed(v1, "oom_kill"), Some(3));
    }
}
