//! What a sandbox's limits did, in words: the messages `standin run` prints and the SDKs
//! return, naming the limit that was reached and how to raise it.

use standin_policy::limits::Bytes;
use standin_sandbox::{LimitUsage, ResourceLimits};

/// One message per limit that was reached (none when none was).
pub fn limit_messages(limits: &ResourceLimits, usage: &LimitUsage) -> Vec<String> {
    let mut out = Vec::new();
    if usage.oom_kills > 0 {
        let limit = limits.memory.map_or("the memory limit".to_owned(), |b| {
            format!("the memory limit ({})", Bytes(b))
        });
        out.push(format!(
            "{limit} was reached: the kernel killed {} process{} in the sandbox (exit status 137 \
             when it was the command); raise it with --memory / memory(…)",
            usage.oom_kills,
            if usage.oom_kills == 1 { "" } else { "es" }
        ));
    }
    if usage.pids_refused > 0 {
        let limit = limits.pids.map_or("the pids limit".to_owned(), |n| {
            format!("the pids limit ({n})")
        });
        out.push(format!(
            "{limit} was reached: {} new process{} or thread{} refused (EAGAIN); raise it with \
             --pids / pids(…)",
            usage.pids_refused,
            if usage.pids_refused == 1 { "" } else { "es" },
            if usage.pids_refused == 1 { "" } else { "s" },
        ));
    }
    out
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
