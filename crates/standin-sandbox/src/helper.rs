//! Dispatch for the helper roles of the standin binary (stage1 and the exec helper).
//!
//! A program that creates sandboxes re-executes a helper binary; by default the standin CLI.
//! Any binary can serve, if it calls [`run_if_requested`] first thing in `main`.

use crate::enter::{self, EnterRequest};
use crate::supervisor::HELPER_FD;
use crate::sys::fdpass::adopt_inherited;

/// argv\[1\] that selects stage1.
pub const STAGE1_ARG: &str = "__standin-stage1";
/// argv\[1\] that selects the exec helper.
pub const ENTER_ARG: &str = "__standin-enter";

/// If this process was started as a standin helper, run that role and never return;
/// otherwise return and let `main` continue.
pub fn run_if_requested() {
    let mut args = std::env::args_os().skip(1);
    let Some(role) = args.next() else { return };
    if role == STAGE1_ARG {
        let ctrl = adopt_inherited(HELPER_FD).unwrap_or_else(|e| {
            eprintln!("standin: stage1 started without its control socket: {e}");
            std::process::exit(125)
        });
        crate::stage1::main(ctrl)
    } else if role == ENTER_ARG {
        let req: EnterRequest = args
            .next()
            .and_then(|a| serde_json::from_str(a.to_str()?).ok())
            .unwrap_or_else(|| {
                eprintln!("standin: exec helper started without a valid request");
                std::process::exit(enter::EXIT_ENTER_FAILED)
            });
        let pidfd = adopt_inherited(HELPER_FD).unwrap_or_else(|e| {
            eprintln!("standin: exec helper started without the sandbox's pidfd: {e}");
            std::process::exit(enter::EXIT_ENTER_FAILED)
        });
        let cgroup = (0..req.cgroup_fds)
            .map(|i| adopt_inherited(HELPER_FD + 1 + i as i32))
            .collect::<Result<Vec<_>, _>>()
            .unwrap_or_else(|e| {
                eprintln!("standin: exec helper started without the sandbox's cgroup: {e}");
                std::process::exit(enter::EXIT_ENTER_FAILED)
            });
        let pty = match &req.job {
            crate::spec::Job::Command(e) if e.tty.is_some() => Some(
                adopt_inherited(HELPER_FD + 1 + req.cgroup_fds as i32).unwrap_or_else(|e| {
                    eprintln!("standin: exec helper started without its pty socket: {e}");
                    std::process::exit(enter::EXIT_ENTER_FAILED)
                }),
            ),
            _ => None,
        };
        enter::main(&req, pidfd, cgroup, pty)
    }
}

/// Have `cmd` start with `fd` at descriptor number `at` (for a helper role of a higher layer,
/// such as a detached sandbox's supervisor). `fd` must stay open until `cmd` is spawned.
pub fn pass_descriptor(cmd: &mut std::process::Command, fd: std::os::fd::BorrowedFd<'_>, at: i32) {
    use std::os::fd::AsRawFd;
    crate::sys::process::pass_fd(cmd, fd.as_raw_fd(), at);
}

/// Take ownership of descriptor `fd`, inherited from the parent through
/// [`pass_descriptor`]; an error when it is not open.
pub fn adopt_descriptor(fd: i32) -> std::io::Result<std::os::fd::OwnedFd> {
    adopt_inherited(fd)
}
