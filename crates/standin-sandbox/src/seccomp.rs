//! The workload's seccomp filters.
//!
//! Three stacked filters, because a seccompiler filter has a single match action:
//! 1. `EPERM` for syscalls that widen kernel attack surface or could undo the isolation:
//!    ptrace, bpf, the keyring, the whole mount family, pivot_root, setns, unshare, `clone`
//!    with any `CLONE_NEW*` flag, perf_event_open, userfaultfd, io_uring, kexec, module
//!    loading, handle-based opens, and the TIOCSTI/TIOCLINUX ioctls (terminal injection);
//! 2. `ENOSYS` for `clone3`, whose flags live in memory a filter cannot read; libc then falls
//!    back to `clone`, which filter 1 can inspect;
//! 3. `EAFNOSUPPORT` for `socket`/`socketpair` in any family but UNIX, INET, INET6 and
//!    NETLINK (AF_VSOCK and AF_PACKET are not confined by the network namespace).
//!
//! When the sandbox can write a host directory (`--workdir`, a read-write `--mount`), what it
//! writes there belongs to a host user once the sandbox is gone (see [`crate::host_bind`]), so
//! filter 1 also refuses every way of giving a file the set-user-ID or set-group-ID bit
//! (`chmod` and friends, and the mode of `open`/`creat`/`mknod` and their `at` forms), and
//! filter 2 refuses `openat2`, whose mode a filter cannot read. Inside the sandbox these bits
//! do nothing anyway (`no_new_privs`); without a writable host directory they stay allowed, so
//! package managers that install set-user-ID programs keep working.
//!
//! On x86_64 a fourth, hand-written filter refuses the x32 ABI (syscall numbers with bit 30
//! set share the x86_64 audit arch, so the number-based filters would not see them). Every
//! seccompiler filter also kills the process on a foreign architecture (i386 `int 0x80`).

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch, sock_filter,
};
use std::collections::BTreeMap;

/// Build every filter, in the order they must be installed.
/// `host_writable`: the workload can write a host directory.
pub(crate) fn filters(host_writable: bool) -> Result<Vec<BpfProgram>, String> {
    let arch = TargetArch::try_from(std::env::consts::ARCH)
        .map_err(|e| format!("seccomp: unsupported architecture: {e}"))?;
    let mut denied = denied_syscalls()?;
    let mut unimplemented = BTreeMap::from([(libc::SYS_clone3, vec![])]);
    if host_writable {
        denied.extend(set_id_mode_rules()?);
        unimplemented.insert(libc::SYS_openat2, vec![]);
    }
    let mut out = vec![
        compile(denied, libc::EPERM, arch)?,
        compile(unimplemented, libc::ENOSYS, arch)?,
        compile(socket_family_rules()?, libc::EAFNOSUPPORT, arch)?,
    ];
    if arch == TargetArch::x86_64 {
        out.push(x32_filter());
    }
    Ok(out)
}

fn compile(
    rules: BTreeMap<i64, Vec<SeccompRule>>,
    errno: i32,
    arch: TargetArch,
) -> Result<BpfProgram, String> {
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(errno as u32),
        arch,
    )
    .map_err(|e| format!("seccomp: {e}"))?;
    filter.try_into().map_err(|e| format!("seccomp: {e}"))
}

fn cond(
    arg: u8,
    len: SeccompCmpArgLen,
    op: SeccompCmpOp,
    value: u64,
) -> Result<SeccompCondition, String> {
    SeccompCondition::new(arg, len, op, value).map_err(|e| format!("seccomp: {e}"))
}

fn rule(conds: Vec<SeccompCondition>) -> Result<SeccompRule, String> {
    SeccompRule::new(conds).map_err(|e| format!("seccomp: {e}"))
}

/// Syscalls refused with `EPERM`. An empty rule list means "always".
fn denied_syscalls() -> Result<BTreeMap<i64, Vec<SeccompRule>>, String> {
    let always: &[i64] = &[
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_bpf,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_fsopen,
        libc::SYS_fsconfig,
        libc::SYS_fsmount,
        libc::SYS_fspick,
        libc::SYS_move_mount,
        libc::SYS_open_tree,
        libc::SYS_mount_setattr,
        libc::SYS_setns,
        libc::SYS_unshare,
        libc::SYS_perf_event_open,
        libc::SYS_userfaultfd,
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
        libc::SYS_kexec_load,
        libc::SYS_kexec_file_load,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_open_by_handle_at,
        libc::SYS_name_to_handle_at,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_reboot,
        libc::SYS_acct,
        libc::SYS_quotactl,
        libc::SYS_syslog,
        libc::SYS_lookup_dcookie,
    ];
    let mut map: BTreeMap<i64, Vec<SeccompRule>> = always.iter().map(|&nr| (nr, vec![])).collect();

    // clone(flags, ...) with any namespace flag.
    let ns_flags: &[u64] = &[
        libc::CLONE_NEWNS as u64,
        libc::CLONE_NEWCGROUP as u64,
        libc::CLONE_NEWUTS as u64,
        libc::CLONE_NEWIPC as u64,
        libc::CLONE_NEWUSER as u64,
        libc::CLONE_NEWPID as u64,
        libc::CLONE_NEWNET as u64,
        0x80, // CLONE_NEWTIME
    ];
    let mut clone_rules = Vec::new();
    for &bit in ns_flags {
        clone_rules.push(rule(vec![cond(
            0,
            SeccompCmpArgLen::Qword,
            SeccompCmpOp::MaskedEq(bit),
            bit,
        )?])?);
    }
    map.insert(libc::SYS_clone, clone_rules);

    // Terminal input injection and console control.
    let mut ioctl_rules = Vec::new();
    #[allow(
        clippy::unnecessary_cast,
        reason = "the ioctl request type differs between libc targets"
    )]
    let requests = [libc::TIOCSTI as u64, libc::TIOCLINUX as u64];
    for req in requests {
        ioctl_rules.push(rule(vec![cond(
            1,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::Eq,
            req,
        )?])?);
    }
    map.insert(libc::SYS_ioctl, ioctl_rules);
    Ok(map)
}

/// `fchmodat2`, the same number on every architecture (the unified syscall table).
const SYS_FCHMODAT2: i64 = 452;

/// Syscalls whose mode argument carries `S_ISUID` or `S_ISGID`: (syscall, index of the mode).
fn set_id_mode_rules() -> Result<BTreeMap<i64, Vec<SeccompRule>>, String> {
    let mut calls: Vec<(i64, u8)> = vec![
        (libc::SYS_fchmod, 1),
        (libc::SYS_fchmodat, 2),
        (SYS_FCHMODAT2, 2),
        (libc::SYS_openat, 3),
        (libc::SYS_mknodat, 2),
    ];
    #[cfg(target_arch = "x86_64")]
    calls.extend([
        (libc::SYS_chmod, 1),
        (libc::SYS_open, 2),
        (libc::SYS_creat, 1),
        (libc::SYS_mknod, 1),
    ]);
    let mut map = BTreeMap::new();
    for (nr, arg) in calls {
        let mut rules = Vec::new();
        for bit in [libc::S_ISUID as u64, libc::S_ISGID as u64] {
            rules.push(rule(vec![cond(
                arg,
                SeccompCmpArgLen::Dword,
                SeccompCmpOp::MaskedEq(bit),
                bit,
            )?])?);
        }
        map.insert(nr, rules);
    }
    Ok(map)
}

/// `socket`/`socketpair` whose family (arg 0) is not UNIX (1), INET (2), INET6 (10) or
/// NETLINK (16).
fn socket_family_rules() -> Result<BTreeMap<i64, Vec<SeccompRule>>, String> {
    let dw = SeccompCmpArgLen::Dword;
    let rules = vec![
        rule(vec![cond(0, dw.clone(), SeccompCmpOp::Eq, 0)?])?,
        rule(vec![
            cond(0, dw.clone(), SeccompCmpOp::Ge, 3)?,
            cond(0, dw.clone(), SeccompCmpOp::Le, 9)?,
        ])?,
        rule(vec![
            cond(0, dw.clone(), SeccompCmpOp::Ge, 11)?,
            cond(0, dw.clone(), SeccompCmpOp::Le, 15)?,
        ])?,
        rule(vec![cond(0, dw, SeccompCmpOp::Gt, 16)?])?,
    ];
    Ok(BTreeMap::from([
        (libc::SYS_socket, rules.clone()),
        (libc::SYS_socketpair, rules),
    ]))
}

/// `if (nr >= 0x40000000) return ERRNO(ENOSYS); return ALLOW;` (x86_64 only).
fn x32_filter() -> BpfProgram {
    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    const RET_ALLOW: u32 = 0x7fff_0000;
    const RET_ERRNO: u32 = 0x0005_0000;
    let ins = |code, jt, jf, k| sock_filter { code, jt, jf, k };
    vec![
        ins(LD_W_ABS, 0, 0, 0), // seccomp_data.nr
        ins(JGE_K, 0, 1, 0x4000_0000),
        ins(RET_K, 0, 0, RET_ERRNO | libc::ENOSYS as u32),
        ins(RET_K, 0, 0, RET_ALLOW),
    ]
}

/// Install the filters on the calling thread (requires `no_new_privs`).
pub(crate) fn install(filters: &[BpfProgram]) -> Result<(), String> {
    for f in filters {
        seccompiler::apply_filter(f).map_err(|e| format!("installing seccomp filter: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn filters_compile() {
        for host_writable in [false, true] {
            let f = super::filters(host_writable).unwrap();
            assert!(f.len() >= 3);
            assert!(f.iter().all(|p| !p.is_empty()));
        }
    }
}
