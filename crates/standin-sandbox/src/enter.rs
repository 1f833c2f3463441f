//! The exec helper: runs one more command (or a file operation) inside a running sandbox.
//!
//! Started by the supervisor as a fresh, single-threaded process holding a pidfd of the
//! sandbox's init at fd 3 (and the sandbox cgroup's join files after it, which it joins
//! first). It joins all of init's namespaces with one `setns(pidfd, …)`
//! (no PID-reuse race), becomes the sandbox's root, forks (the child lands in the sandbox's
//! PID namespace), and the child hardens itself exactly like the main command before
//! `execve`. The helper stays outside, waits, and exits with the command's status; if the
//! helper dies, the command gets SIGKILL.

use crate::init::{die_with_parent, writable_paths};
use crate::spec::{Job, SandboxSpec};
use crate::sys::process::{Forked, fork};
use crate::workload;
use nix::sched::{CloneFlags, setns};
use nix::sys::wait::waitpid;
use nix::unistd::{Gid, Pid, Uid, setresgid, setresuid};
use serde::{Deserialize, Serialize};
use std::os::fd::{AsFd, OwnedFd};

/// What the exec helper is asked to do (passed as one JSON argument).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct EnterRequest {
    /// The command or file operation.
    pub job: Job,
    /// The sandbox it runs in (for its writable paths).
    pub sandbox: SandboxSpec,
    /// How many join-file descriptors of the sandbox's cgroup follow the pidfd.
    #[serde(default)]
    pub cgroup_fds: usize,
}

/// Make a pty in the sandbox's own devpts (the helper is in its mount namespace), sized
/// `rows`×`cols`; returns (master, slave).
fn open_pty(rows: u16, cols: u16) -> std::io::Result<(OwnedFd, OwnedFd)> {
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
    grantpt(&master)?;
    unlockpt(&master)?;
    let name = ptsname(&master, Vec::new())?;
    let slave = rustix::fs::open(
        name.as_c_str(),
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NOCTTY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    let size = rustix::termios::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    rustix::termios::tcsetwinsize(&slave, size)?;
    Ok((master, slave))
}

/// Exit code when the sandbox could not be entered.
pub(crate) const EXIT_ENTER_FAILED: i32 = 125;

/// Entry point. `pidfd` refers to the sandbox's init; `cgroup` are the join-file
/// descriptors (`tasks` on v1, `cgroup.procs` on v2) of the sandbox's cgroup.
pub(crate) fn main(
    req: &EnterRequest,
    pidfd: OwnedFd,
    cgroup: Vec<OwnedFd>,
    pty_sock: Option<OwnedFd>,
) -> ! {
    let fail = |what: &str, e: &dyn std::fmt::Display| -> ! {
        eprintln!("standin: cannot enter the sandbox ({what}): {e}");
        std::process::exit(EXIT_ENTER_FAILED)
    };
    // Into the sandbox's cgroup first, while still in the host's namespaces: the command is
    // bounded by the sandbox's limits like everything else in it.
    for procs in &cgroup {
        if let Err(e) = crate::cgroup::join(procs.as_fd()) {
            fail("joining its cgroup", &e);
        }
    }
    drop(cgroup);
    let all = CloneFlags::CLONE_NEWUSER
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWNET
        | CloneFlags::CLONE_NEWCGROUP
        | CloneFlags::CLONE_NEWPID;
    if let Err(e) = setns(&pidfd, all) {
        if e == nix::errno::Errno::ESRCH {
            fail("it has stopped", &e);
        }
        fail("setns", &e);
    }
    drop(pidfd);
    if let Err(e) = setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0)) {
        fail("setresgid", &e);
    }
    if let Err(e) = setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0)) {
        fail("setresuid", &e);
    }
    // A terminal was asked for: made here, inside, and its master sent back to the caller.
    let slave = match (&req.job, pty_sock) {
        (Job::Command(exec), Some(sock)) => {
            let (rows, cols) = exec.tty.unwrap_or((24, 80));
            let (master, slave) = open_pty(rows, cols).unwrap_or_else(|e| fail("making a pty", &e));
            if let Err(e) = crate::sys::fdpass::send(sock.as_fd(), b"pty", &[master.as_fd()]) {
                fail("sending the pty", &e);
            }
            Some(slave)
        }
        _ => None,
    };
    let seccomp = crate::seccomp::filters(req.sandbox.shares_writable_host_dirs())
        .unwrap_or_else(|e| fail("seccomp", &e));
    let writable = writable_paths(&req.sandbox);
    let (alive_r, alive_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap_or_else(|e| fail("pipe", &e));
    match fork() {
        Ok(Forked::Child) => {
            drop(alive_w);
            die_with_parent(&alive_r);
            drop(alive_r);
            if let Some(slave) = &slave {
                for to in [
                    rustix::stdio::dup2_stdin,
                    rustix::stdio::dup2_stdout,
                    rustix::stdio::dup2_stderr,
                ] {
                    if let Err(e) = to(slave) {
                        fail("using the pty", &e);
                    }
                }
            }
            drop(slave);
            match &req.job {
                Job::Command(exec) => workload::exec(exec, &writable, &seccomp),
                Job::Files { op, user } => {
                    if let Err(e) = workload::drop_to(user.as_deref(), &writable, &seccomp) {
                        eprintln!("standin: {}: {e}", op.path().display());
                        std::process::exit(crate::files::EXIT_FAILED);
                    }
                    std::process::exit(crate::files::main(op))
                }
            }
        }
        Ok(Forked::Parent(pid)) => {
            drop(alive_r);
            // Only the command holds the pty's slave: its exit hangs the master up.
            drop(slave);
            loop {
                match waitpid(Pid::from_raw(pid), None) {
                    Err(nix::errno::Errno::EINTR) => continue,
                    Ok(status) => {
                        if let Some(code) = workload::exit_code(status) {
                            std::process::exit(code);
                        }
                    }
                    Err(e) => fail("wait", &e),
                }
            }
        }
        Err(e) => fail("fork", &e),
    }
}
