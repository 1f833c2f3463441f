//! The sandbox's PID 1.
//!
//! Builds the root filesystem, sets the hostname, forks the main command (if any), reports
//! `Ready`, then reaps every orphan until the main command exits, whose status becomes its own
//! exit code. When init exits, the kernel kills everything else in the PID namespace, so a
//! sandbox never outlives its main command, and background processes go with it.
//!
//! init keeps its capabilities inside the sandbox's user namespace on purpose: the
//! capability-less workload (same uid) then fails ptrace-access checks against it, so it
//! cannot read init's memory, environment or descriptors.

use crate::harden::WritablePaths;
use crate::protocol::{self, FromSandbox};
use crate::rootfs::HostBinds;
use crate::spec::SandboxSpec;
use crate::sys::process::{Forked, fork};
use crate::workload;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use std::os::fd::{AsFd, OwnedFd};

/// Exit code of init when it could not set up the sandbox.
pub(crate) const EXIT_SETUP_FAILED: i32 = 125;

/// Run as PID 1. `alive` is the read end of a pipe whose write end only stage1 holds.
pub(crate) fn main(spec: &SandboxSpec, binds: HostBinds, ctrl: OwnedFd, alive: OwnedFd) -> ! {
    die_with_parent(&alive);
    drop(alive);

    // Block SIGCHLD and SIGTERM so we can wait for them synchronously. A blocked signal is
    // never discarded, so the supervisor's SIGTERM (a graceful stop) reaches PID 1 even though
    // it has no handler; other signals from inside the namespace are ignored by the kernel.
    let mut chld = SigSet::empty();
    chld.add(Signal::SIGCHLD);
    chld.add(Signal::SIGTERM);
    let _ = chld.thread_block();

    if let Err(message) = setup(spec, binds) {
        let _ = protocol::send(
            ctrl.as_fd(),
            &FromSandbox::Failed {
                stage: "building the sandbox filesystem".into(),
                message,
            },
            &[],
        );
        std::process::exit(EXIT_SETUP_FAILED);
    }
    let seccomp = match crate::seccomp::filters(spec.shares_writable_host_dirs()) {
        Ok(f) => f,
        Err(message) => {
            let _ = protocol::send(
                ctrl.as_fd(),
                &FromSandbox::Failed {
                    stage: "compiling seccomp filters".into(),
                    message,
                },
                &[],
            );
            std::process::exit(EXIT_SETUP_FAILED);
        }
    };
    let writable = writable_paths(spec);

    let main_pid = match &spec.command {
        None => None,
        Some(cmd) => match fork() {
            Ok(Forked::Child) => {
                drop(ctrl);
                workload::exec(cmd, &writable, &seccomp)
            }
            Ok(Forked::Parent(pid)) => Some(pid),
            Err(e) => {
                let _ = protocol::send(
                    ctrl.as_fd(),
                    &FromSandbox::Failed {
                        stage: "starting the command".into(),
                        message: e.to_string(),
                    },
                    &[],
                );
                std::process::exit(EXIT_SETUP_FAILED);
            }
        },
    };
    let _ = protocol::send(ctrl.as_fd(), &FromSandbox::Ready, &[]);
    drop(ctrl);
    reap(main_pid, &chld)
}

/// Paths the workload may write besides the defaults: the writable user mounts.
/// An image root is writable as a whole (its writable layer disappears with the sandbox).
pub(crate) fn writable_paths(spec: &SandboxSpec) -> WritablePaths {
    let mut paths: Vec<std::path::PathBuf> = spec
        .mounts
        .iter()
        .filter(|m| !m.read_only)
        .map(|m| m.guest.clone())
        .collect();
    if matches!(spec.root, crate::spec::RootSource::Image(_)) {
        paths.push("/".into());
    }
    WritablePaths(paths)
}

fn setup(spec: &SandboxSpec, binds: HostBinds) -> Result<(), String> {
    crate::rootfs::build(spec, binds)?;
    // An image's WorkingDir need not exist in its layers (Docker creates it too). Created
    // with or without a main command: execs into an idle sandbox start there as well.
    if let crate::spec::RootSource::Image(image) = &spec.root
        && let Some(dir) = &image.working_dir
        && !dir.exists()
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("creating the working directory {}: {e}", dir.display()))?;
    }
    nix::unistd::sethostname(&spec.hostname).map_err(|e| format!("setting the hostname: {e}"))
}

/// Reap every child until the main command exits. SIGTERM (a graceful stop) goes on to the
/// main command; a sandbox without one ends at once (with 143, as if terminated).
fn reap(main_pid: Option<i32>, chld: &SigSet) -> ! {
    loop {
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(status) => {
                    if status.pid().map(|p| p.as_raw()) == main_pid
                        && let Some(code) = workload::exit_code(status)
                    {
                        std::process::exit(code);
                    }
                }
            }
        }
        if let Ok(Signal::SIGTERM) = chld.wait() {
            match main_pid {
                Some(pid) => {
                    let _ =
                        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGTERM);
                }
                None => std::process::exit(128 + Signal::SIGTERM as i32),
            }
        }
    }
}

/// Ask for SIGKILL when stage1 dies, then make sure it has not died already (the pipe's write
/// end, held only by stage1, would then be closed).
pub(crate) fn die_with_parent(alive: &OwnedFd) {
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    let mut fds = [nix::poll::PollFd::new(
        alive.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    if nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO).unwrap_or(0) > 0 {
        std::process::exit(EXIT_SETUP_FAILED);
    }
}
