//! Process-level primitives: fork, exec, prctl and the pre-exec descriptor shuffle.

use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Result of [`fork`].
#[derive(Debug)]
pub(crate) enum Forked {
    /// In the child.
    Child,
    /// In the parent, with the child's PID.
    Parent(i32),
}

/// `fork()`.
///
/// Only call this from a single-threaded process (stage1, init, the exec helper): all of
/// standin's forks happen in freshly exec'd helpers that never start threads.
pub(crate) fn fork() -> io::Result<Forked> {
    // SAFETY: callers are single-threaded (see above), so the child cannot inherit a lock held
    // by another thread; the child only runs our own code until it execs or exits.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Child => Ok(Forked::Child),
        nix::unistd::ForkResult::Parent { child } => Ok(Forked::Parent(child.as_raw())),
    }
}

/// `execve(path, argv, envp)`; returns only on failure.
pub(crate) fn execve(path: &CString, argv: &[CString], envp: &[CString]) -> io::Error {
    match nix::unistd::execve(path, argv, envp) {
        Err(e) => io::Error::from(e),
        Ok(never) => match never {},
    }
}

/// Make the descriptor `from` available as `to` in the program `cmd` runs. `from` must stay
/// open until `cmd` is spawned.
pub(crate) fn pass_fd(cmd: &mut Command, from: RawFd, to: RawFd) {
    // SAFETY: the closure runs between fork and exec; it only calls `dup2_for_exec`, which is
    // async-signal-safe and allocates nothing.
    unsafe {
        cmd.pre_exec(move || dup2_for_exec(from, to));
    }
}

/// Make `from` available as `to` across the coming exec: async-signal-safe, no allocation.
/// `dup2` clears close-on-exec on `to`; when `from` already *is* `to`, `dup2` does nothing, so
/// the flag is cleared explicitly.
fn dup2_for_exec(from: RawFd, to: RawFd) -> io::Result<()> {
    let rc = if from == to {
        // SAFETY: fcntl(F_SETFD) on an integer descriptor; async-signal-safe.
        unsafe { libc::fcntl(to, libc::F_SETFD, 0) }
    } else {
        // SAFETY: dup2 on integer descriptors; async-signal-safe.
        unsafe { libc::dup2(from, to) }
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `prctl(PR_SET_SECUREBITS, bits)`.
pub(crate) fn set_securebits(bits: libc::c_ulong) -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_SECUREBITS, bits, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `prctl(PR_CAPBSET_DROP, cap)`. `EINVAL` (no such capability on this kernel) is not an error.
pub(crate) fn capbset_drop(cap: libc::c_ulong) -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) } != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINVAL) {
            return Err(e);
        }
    }
    Ok(())
}

/// Reset every signal disposition to its default and unblock all signals, as a freshly
/// started program expects (our helpers ignore SIGPIPE and block SIGCHLD).
pub(crate) fn reset_signals() {
    for sig in 1..libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: restoring SIG_DFL is always valid; errors for unsupported numbers are ignored.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    );
}
