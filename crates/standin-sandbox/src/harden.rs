//! Dropping every privilege before a workload execs (main command and `exec` alike).
//!
//! Order matters: securebits first (so uid 0 can never regain capabilities through execve),
//! then the bounding set, then the other capability sets, `no_new_privs`, landlock and
//! finally seccomp (the filters also forbid the syscalls the earlier steps needed).

use crate::spec::WORKSPACE;
use crate::sys::process::{capbset_drop, set_securebits};
use caps::CapSet;
use landlock::{
    ABI, Access, AccessFs, CompatLevel, Compatible, Ruleset, RulesetAttr, RulesetCreatedAttr,
    Scope, path_beneath_rules,
};
use std::path::PathBuf;

/// SECBIT_NOROOT, SECBIT_NO_SETUID_FIXUP, SECBIT_NO_CAP_AMBIENT_RAISE, each with its lock,
/// and SECBIT_KEEP_CAPS_LOCKED (with KEEP_CAPS off).
const SECUREBITS: libc::c_ulong = 0xEF;

/// Paths the workload may write (besides `/tmp`, `/workspace` and `/dev`).
#[derive(Debug, Clone, Default)]
pub(crate) struct WritablePaths(pub Vec<PathBuf>);

/// Drop everything. On success the caller should `execve` right away.
pub(crate) fn drop_privileges(
    extra_writable: &WritablePaths,
    seccomp: &[seccompiler::BpfProgram],
    switch_to: Option<(u32, u32)>,
) -> Result<(), String> {
    set_securebits(SECUREBITS).map_err(|e| format!("setting securebits: {e}"))?;
    // With SECBIT_NO_SETUID_FIXUP locked, changing uid keeps the capabilities this function
    // still needs; they are all dropped below either way.
    if let Some((uid, gid)) = switch_to {
        let not_mapped = |what: &str, id: u32, e: nix::errno::Errno| {
            format!(
                "cannot become {what} {id}: {e} (only ids mapped into the sandbox's user namespace can be used; rootless sandboxes map only root)"
            )
        };
        let g = nix::unistd::Gid::from_raw(gid);
        nix::unistd::setresgid(g, g, g).map_err(|e| not_mapped("gid", gid, e))?;
        let u = nix::unistd::Uid::from_raw(uid);
        nix::unistd::setresuid(u, u, u).map_err(|e| not_mapped("uid", uid, e))?;
    }
    let last_cap = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<libc::c_ulong>().ok())
        .unwrap_or(63);
    for cap in 0..=last_cap {
        capbset_drop(cap)
            .map_err(|e| format!("dropping capability {cap} from the bounding set: {e}"))?;
    }
    for set in [
        CapSet::Ambient,
        CapSet::Inheritable,
        CapSet::Effective,
        CapSet::Permitted,
    ] {
        caps::clear(None, set).map_err(|e| format!("clearing {set:?} capabilities: {e}"))?;
    }
    nix::sys::prctl::set_no_new_privs().map_err(|e| format!("setting no_new_privs: {e}"))?;
    apply_landlock(extra_writable)?;
    crate::seccomp::install(seccomp)
}

/// Read everywhere; write only where the sandbox has writable mounts; no signals to, and no
/// abstract-socket connections into, anything outside the workload's own domain. Best effort:
/// a kernel without landlock keeps the other layers.
fn apply_landlock(extra: &WritablePaths) -> Result<(), String> {
    let abi = ABI::V6;
    let err = |e: landlock::RulesetError| format!("landlock: {e}");
    let mut writable: Vec<PathBuf> = ["/tmp", WORKSPACE, "/dev"]
        .iter()
        .map(PathBuf::from)
        .collect();
    writable.extend(extra.0.iter().cloned());
    Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(abi))
        .map_err(err)?
        .scope(Scope::from_all(abi))
        .map_err(err)?
        .create()
        .map_err(err)?
        .add_rules(path_beneath_rules(["/"], AccessFs::from_read(abi)))
        .map_err(err)?
        .add_rules(path_beneath_rules(&writable, AccessFs::from_all(abi)))
        .map_err(err)?
        .restrict_self()
        .map_err(err)?;
    Ok(())
}
