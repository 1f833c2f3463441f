//! stage1: the freshly exec'd, single-threaded helper that creates the sandbox.
//!
//! ```text
//! setsid                               (terminal signals go to standin alone)
//! with limits: fork the cgroup reaper, join the sandbox's cgroup
//! open the workdir and mounts (idmapped copies of writable ones: crate::host_bind)
//! unshare(USER) → NeedMaps → (supervisor writes maps) → MapsWritten → setresuid/gid(0)
//! unshare(NS|UTS|IPC|CGROUP|NET)
//! configure the network namespace, create the listeners → Capture + 6 fds
//! unshare(PID)                         (last: the first child becomes PID 1)
//! fork → init (PID 1)                  → InitStarted { host pid }
//! wait for init, or for the supervisor to vanish (control socket hang-up) → kill init
//! → Exited { code, what the cgroup recorded }
//! ```
//!
//! stage1 never runs workload code and holds no secrets.

use crate::cgroup::Joined;
use crate::init::{self, EXIT_SETUP_FAILED};
use crate::netns;
use crate::protocol::{self, FromSandbox, ToSandbox};
use crate::rootfs::HostBinds;
use crate::spec::NetworkMode;
use crate::sys::pidfd;
use crate::sys::process::{Forked, fork};
use crate::workload;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sched::{CloneFlags, unshare};
use nix::sys::wait::waitpid;
use nix::unistd::{Gid, Pid, Uid, setresgid, setresuid};
use std::os::fd::{AsFd, OwnedFd};

/// Entry point; `ctrl` is the control socket inherited from the supervisor.
pub(crate) fn main(ctrl: OwnedFd) -> ! {
    let _ = nix::unistd::setsid();
    match run(&ctrl) {
        Ok(code) => std::process::exit(code),
        Err((stage, message)) => {
            let _ = protocol::send(ctrl.as_fd(), &FromSandbox::Failed { stage, message }, &[]);
            std::process::exit(EXIT_SETUP_FAILED)
        }
    }
}

type StageResult<T> = Result<T, (String, String)>;

fn at<T, E: std::fmt::Display>(stage: &str, r: Result<T, E>) -> StageResult<T> {
    r.map_err(|e| (stage.to_owned(), e.to_string()))
}

fn run(ctrl: &OwnedFd) -> StageResult<i32> {
    let (spec, cgroup) = match at(
        "reading the sandbox spec",
        protocol::recv::<ToSandbox>(ctrl),
    )? {
        Some((ToSandbox::Spec { spec, cgroup }, fds)) => (*spec, cgroup.map(|c| (c, fds))),
        _ => {
            return Err((
                "reading the sandbox spec".into(),
                "unexpected message".into(),
            ));
        }
    };
    // First, while still in the host's namespaces: the reaper, then the cgroup. Everything
    // this process starts from here on is inside it.
    let cgroup = match cgroup {
        Some((hand, fds)) => Some(at(
            "joining the sandbox's cgroup",
            Joined::join(hand, fds, ctrl.as_fd()),
        )?),
        None => None,
    };

    // Host directories, while this process still has the host's privileges (an idmapped
    // mount needs them).
    let binds = at("opening host directories", HostBinds::open(&spec))?;

    unshare(CloneFlags::CLONE_NEWUSER)
        .map_err(|e| ("creating the user namespace".to_owned(), userns_hint(e)))?;
    at(
        "requesting uid maps",
        protocol::send(ctrl.as_fd(), &FromSandbox::NeedMaps, &[]),
    )?;
    match at("waiting for uid maps", protocol::recv::<ToSandbox>(ctrl))? {
        Some((ToSandbox::MapsWritten, _)) => {}
        _ => return Err(("waiting for uid maps".into(), "supervisor went away".into())),
    }
    at(
        "becoming root in the sandbox",
        setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0)),
    )?;
    at(
        "becoming root in the sandbox",
        setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0)),
    )?;

    at(
        "creating namespaces",
        unshare(
            CloneFlags::CLONE_NEWNS
                | CloneFlags::CLONE_NEWUTS
                | CloneFlags::CLONE_NEWIPC
                | CloneFlags::CLONE_NEWCGROUP
                | CloneFlags::CLONE_NEWNET,
        ),
    )?;
    match spec.network {
        NetworkMode::Captured => {
            let sockets = at("setting up network capture", netns::configure_capture())?;
            let fds = sockets.into_vec();
            let borrowed: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
            at(
                "handing over the capture listeners",
                protocol::send(ctrl.as_fd(), &FromSandbox::Capture, &borrowed),
            )?;
        }
        NetworkMode::None => at("bringing up loopback", netns::configure_loopback_only())?,
    }

    at(
        "creating the PID namespace",
        unshare(CloneFlags::CLONE_NEWPID),
    )?;
    let (alive_r, alive_w) = at(
        "creating a pipe",
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC),
    )?;
    let init_pid = match at("starting init", fork())? {
        Forked::Child => {
            drop(alive_w);
            let ctrl = ctrl
                .try_clone()
                .unwrap_or_else(|_| std::process::exit(EXIT_SETUP_FAILED));
            init::main(&spec, binds, ctrl, alive_r)
        }
        Forked::Parent(pid) => pid,
    };
    drop(alive_r);
    drop(binds);
    // init is our child and nobody else reaps it, so until we wait for it this PID is init's:
    // the pidfd opened here is the one reference to it that cannot go stale. The supervisor
    // gets a copy with the report.
    let init_fd = at("opening init's pidfd", pidfd::open(init_pid))?;
    at(
        "reporting init",
        protocol::send(
            ctrl.as_fd(),
            &FromSandbox::InitStarted { init_pid },
            &[init_fd.as_fd()],
        ),
    )?;
    let code = supervise(ctrl, init_pid, init_fd);
    let usage = cgroup.as_ref().map(Joined::usage);
    let _ = protocol::send(ctrl.as_fd(), &FromSandbox::Exited { code, usage }, &[]);
    drop(alive_w);
    Ok(code)
}

/// Wait until init exits, or until the supervisor goes away (then kill the whole sandbox).
fn supervise(ctrl: &OwnedFd, init_pid: i32, init_fd: OwnedFd) -> i32 {
    loop {
        let mut fds = [
            PollFd::new(init_fd.as_fd(), PollFlags::POLLIN),
            PollFd::new(ctrl.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
            Ok(_) => {}
        }
        let init_done = fds[0].revents().is_some_and(|r| !r.is_empty());
        let ctrl_ev = fds[1].revents().unwrap_or(PollFlags::empty());
        if init_done {
            return wait_init(init_pid);
        }
        if ctrl_ev.intersects(PollFlags::POLLHUP | PollFlags::POLLERR) {
            break;
        }
        if ctrl_ev.contains(PollFlags::POLLIN) {
            // The supervisor sends nothing after setup; anything else (or EOF) ends the sandbox.
            break;
        }
    }
    let _ = pidfd::send_signal(init_fd.as_fd(), libc::SIGKILL);
    wait_init(init_pid)
}

fn wait_init(init_pid: i32) -> i32 {
    loop {
        match waitpid(Pid::from_raw(init_pid), None) {
            Err(nix::errno::Errno::EINTR) => continue,
            Ok(status) => {
                if let Some(code) = workload::exit_code(status) {
                    return code;
                }
            }
            Err(_) => return EXIT_SETUP_FAILED,
        }
    }
}

fn userns_hint(e: nix::errno::Errno) -> String {
    let read = |p: &str| std::fs::read_to_string(p).map(|s| s.trim().to_owned()).ok();
    let mut hint = format!("unshare(CLONE_NEWUSER) failed: {e}.");
    if read("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        hint.push_str(" Unprivileged user namespaces are disabled: run as root, or enable them with `sysctl -w kernel.unprivileged_userns_clone=1`.");
    } else if read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1")
    {
        hint.push_str(" AppArmor restricts unprivileged user namespaces: run as root, or `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`.");
    } else if read("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        hint.push_str(" user.max_user_namespaces is 0: raise it with `sysctl -w user.max_user_namespaces=15000`.");
    } else if e == nix::errno::Errno::EPERM {
        hint.push_str(" Are you inside a container or seccomp profile that forbids namespaces? Run standin as root on the host, or allow unshare/clone with CLONE_NEWUSER.");
    }
    hint
}
