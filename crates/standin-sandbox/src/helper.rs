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

/// The helper protocol's version: stage1 is started with it as its second argument and
/// refuses to run for a different one (a `standin` binary from another release).
pub const HELPER_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Whether this process was started in a helper role (its first argument names one).
pub fn started_as_helper() -> bool {
    std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == STAGE1_ARG || a == ENTER_ARG)
}

/// In a process started in a helper role whose `main` never dispatched it (it went on to
/// create a sandbox instead, which would start yet another copy of itself): report `message`
/// to the process that started it (over the control socket, when it is one) and on stderr,
/// and exit. Returns when this process is no helper.
pub fn refuse_if_undispatched(message: &str) {
    if !started_as_helper() {
        return;
    }
    eprintln!("standin: {message}");
    if std::env::args_os().nth(1).is_some_and(|a| a == STAGE1_ARG)
        && let Ok(ctrl) = adopt_inherited(HELPER_FD)
    {
        refuse_setup(&ctrl, message)
    }
    std::process::exit(125)
}

/// stage1 refuses to start: take the supervisor's first message off the socket (closing a
/// socket with unread data would make the supervisor's next read fail with `ECONNRESET`
/// instead of reading why), answer `Failed` with `message`, and exit.
fn refuse_setup(ctrl: &std::os::fd::OwnedFd, message: &str) -> ! {
    let _ = crate::protocol::recv::<crate::protocol::ToSandbox>(ctrl);
    let failed = crate::protocol::FromSandbox::Failed {
        stage: "starting the helper".into(),
        message: message.to_owned(),
    };
    let _ = crate::protocol::send(std::os::fd::AsFd::as_fd(ctrl), &failed, &[]);
    std::process::exit(125)
}

/// Whether this process has a single thread (`Threads:` of `/proc/self/status`); a helper
/// must, since a multi-threaded process cannot create a user namespace.
pub fn single_threaded() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|n| n.trim().parse::<u32>().ok())
        })
        == Some(1)
}

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
        let refuse = |message: String| -> ! { refuse_setup(&ctrl, &message) };
        let version = args.next();
        if version.as_deref() != Some(std::ffi::OsStr::new(HELPER_VERSION)) {
            refuse(format!(
                "the helper binary {} is standin {HELPER_VERSION}, but the program creating the \
                 sandbox uses standin {}; point STANDIN_BIN (or the builder's helper) at a \
                 standin binary of the program's version",
                std::env::current_exe().unwrap_or_default().display(),
                version.unwrap_or_default().to_string_lossy(),
            ));
        }
        if !single_threaded() {
            refuse(
                "the helper process started threads before standin::run_helper_if_requested() \
                 ran (an async runtime such as #[tokio::main] starts them before main's body \
                 runs), and a multi-threaded process cannot create a user namespace; call it \
                 first thing in a plain fn main, or let standin use the standin binary \
                 (STANDIN_BIN)"
                    .into(),
            );
        }
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
