//! The reaper: a process stage1 forks before it joins the sandbox's cgroup (so it stays
//! outside it), which removes the cgroup once the sandbox is gone, also when the supervisor
//! was killed and could not.
//!
//! It holds the read end of a pipe whose write end stage1 keeps (and init inherits); when
//! both have exited, every process of the sandbox's PID namespace is gone and the read
//! returns end-of-file. The directories are then removed through descriptors of their
//! parents, opened by the supervisor, so the reaper needs no path and no mount namespace of
//! its own. An exec helper may still be in the cgroup for a moment after the sandbox's end
//! (it waits for its child before exiting): a busy directory is retried for a bounded time.

use crate::sys::process::{Forked, fork};
use rustix::fs::{AtFlags, unlinkat};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

/// How long the reaper keeps retrying a cgroup that still has processes.
const BUSY_PATIENCE: Duration = Duration::from_secs(10);

/// Fork the reaper for the cgroup `name` in each of `parents`. Returns the pipe's write end.
/// `ctrl` (the control socket) is closed in the reaper, so that it never keeps the
/// supervisor's end of the channel open.
pub(crate) fn spawn(
    name: &str,
    parents: Vec<OwnedFd>,
    ctrl: BorrowedFd<'_>,
) -> io::Result<OwnedFd> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    match fork()? {
        Forked::Child => {
            drop(w);
            let _ = nix::unistd::close(ctrl.as_raw_fd());
            quiet_stdio();
            wait_for_eof(&r);
            remove(name, &parents);
            std::process::exit(0)
        }
        Forked::Parent(_) => {
            drop(r);
            drop(parents);
            Ok(w)
        }
    }
}

/// Point stdin, stdout and stderr at /dev/null: the reaper must not hold the supervisor's
/// pipes open after the sandbox has ended.
fn quiet_stdio() {
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        let _ = nix::unistd::dup2_stdin(&null);
        let _ = nix::unistd::dup2_stdout(&null);
        let _ = nix::unistd::dup2_stderr(&null);
    }
}

fn wait_for_eof(r: &OwnedFd) {
    let mut buf = [0u8; 16];
    loop {
        match nix::unistd::read(r, &mut buf) {
            Ok(0) => return,
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
        }
    }
}

fn remove(name: &str, parents: &[OwnedFd]) {
    let deadline = Instant::now() + BUSY_PATIENCE;
    let mut pause = Duration::from_millis(1);
    for parent in parents {
        loop {
            match unlinkat(parent, name, AtFlags::REMOVEDIR) {
                Err(rustix::io::Errno::BUSY) if Instant::now() < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
                _ => break,
            }
        }
    }
}
