//! Resource limits as the SDK reports them: the limits in force, what they did, and that in
//! words (the messages `standin run` prints, naming the limit reached and how to raise it).

use standin_policy::limits::Bytes;

/// The limits a sandbox runs with, defaults applied (`None`: unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct ResourceLimits {
    /// Bytes of memory (processes and writable space together).
    pub memory: Option<u64>,
    /// Thousandths of a CPU.
    pub cpu_millis: Option<u32>,
    /// Processes and threads.
    pub pids: Option<u32>,
    /// Bytes of writable space.
    pub disk: Option<u64>,
}

impl From<standin_sandbox::ResourceLimits> for ResourceLimits {
    fn from(l: standin_sandbox::ResourceLimits) -> ResourceLimits {
        ResourceLimits {
            memory: l.memory,
            cpu_millis: l.cpu_millis,
            pids: l.pids,
            disk: l.disk,
        }
    }
}

/// What the limits did during a sandbox's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct LimitUsage {
    /// Processes the kernel killed because the memory limit was reached.
    pub oom_kills: u64,
    /// Most memory in use at once, in bytes, where the kernel reports it.
    pub memory_peak: Option<u64>,
    /// New processes or threads refused because the pids limit was reached.
    pub pids_refused: u64,
    /// CPU periods (100 ms) in which the sandbox was held back by its CPU limit.
    pub cpu_throttled: u64,
    /// CPU time used, in microseconds, where the kernel reports it.
    pub cpu_usage_usec: Option<u64>,
    /// Memory in use when this was read (a running sandbox's), in bytes.
    #[serde(default)]
    pub memory_current: Option<u64>,
    /// Processes and threads alive when this was read (a running sandbox's).
    #[serde(default)]
    pub pids_current: Option<u64>,
}

impl From<standin_sandbox::LimitUsage> for LimitUsage {
    fn from(u: standin_sandbox::LimitUsage) -> LimitUsage {
        LimitUsage {
            oom_kills: u.oom_kills,
            memory_peak: u.memory_peak,
            pids_refused: u.pids_refused,
            cpu_throttled: u.cpu_throttled,
            cpu_usage_usec: u.cpu_usage_usec,
            memory_current: u.memory_current,
            pids_current: u.pids_current,
        }
    }
}

/// One message per limit that was reached (none when none was).
pub fn limit_messages(limits: &ResourceLimits, usage: &LimitUsage) -> Vec<String> {
    [memory_message(limits, usage), pids_message(limits, usage)]
        .into_iter()
        .flatten()
        .collect()
}

/// The memory limit's message, if processes were killed at it.
pub(crate) fn memory_message(limits: &ResourceLimits, usage: &LimitUsage) -> Option<String> {
    if usage.oom_kills == 0 {
        return None;
    }
    let limit = limits.memory.map_or("the memory limit".to_owned(), |b| {
        format!("the memory limit ({})", Bytes(b))
    });
    Some(format!(
        "{limit} was reached: the kernel killed {} process{} in the sandbox (exit status 137 \
         when it was the command); raise it with --memory / memory(…)",
        usage.oom_kills,
        if usage.oom_kills == 1 { "" } else { "es" }
    ))
}

/// The pids limit's message, if forks were refused at it.
pub(crate) fn pids_message(limits: &ResourceLimits, usage: &LimitUsage) -> Option<String> {
    if usage.pids_refused == 0 {
        return None;
    }
    let limit = limits.pids.map_or("the pids limit".to_owned(), |n| {
        format!("the pids limit ({n})")
    });
    Some(format!(
        "{limit} was reached: {} new process{} or thread{} refused (EAGAIN); raise it with \
         --pids / pids(…)",
        usage.pids_refused,
        if usage.pids_refused == 1 { "" } else { "es" },
        if usage.pids_refused == 1 { "" } else { "s" },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_limit_reached_is_named_with_its_value() {
        let limits = ResourceLimits {
            memory: Some(64 << 20),
            pids: Some(32),
            ..ResourceLimits::default()
        };
        assert!(limit_messages(&limits, &LimitUsage::default()).is_empty());
        let usage = LimitUsage {
            oom_kills: 1,
            pids_refused: 7,
            ..LimitUsage::default()
        };
        let m = limit_messages(&limits, &usage);
        assert_eq!(m.len(), 2);
        assert!(
            m[0].starts_with(
                "the memory limit (64 MiB) was reached: the kernel killed 1 process in"
            ),
            "{}",
            m[0]
        );
        assert!(
            m[1].starts_with("the pids limit (32) was reached: 7 new processes or threads refused"),
            "{}",
            m[1]
        );
    }
}
