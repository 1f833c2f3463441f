//! The host process's descriptor limit.
//!
//! Every open connection through the boundary holds two descriptors in the process that runs
//! it (the sandbox's side and the upstream's), so a boundary serving thousands of
//! connections needs more than the traditional soft limit of 1024. Like most network
//! servers, callers raise the soft limit to the hard one at start.

/// Raise this process's soft `RLIMIT_NOFILE` to its hard limit; returns the soft limit now in
/// force. Processes started later (sandboxes included) inherit it.
pub fn raise_descriptor_limit() -> std::io::Result<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(std::io::Error::from)?;
    if soft >= hard {
        return Ok(soft);
    }
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).map_err(std::io::Error::from)?;
    Ok(hard)
}
