//! Turning a forked child into a workload: new session, working directory, every privilege
//! dropped, then `execve`. Shared by the main command (forked by init) and `exec` (forked by
//! the exec helper).

use crate::harden::{WritablePaths, drop_privileges};
use crate::spec::ExecSpec;
use crate::sys::process::{execve, reset_signals};
use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Exit code when the command was not found (as shells do).
pub(crate) const EXIT_NOT_FOUND: i32 = 127;
/// Exit code when the command could not be executed, or the sandbox could not drop privileges.
pub(crate) const EXIT_CANNOT_EXEC: i32 = 126;

/// Become an unprivileged process of the sandbox without exec'ing anything: new session,
/// `/` as working directory, `user` (or the sandbox's root), every privilege dropped. For
/// standin's own file operations, which must not be able to do more than a command could.
pub(crate) fn drop_to(
    user: Option<&str>,
    writable: &WritablePaths,
    seccomp: &[seccompiler::BpfProgram],
) -> Result<(), String> {
    reset_signals();
    let _ = nix::unistd::setsid();
    nix::unistd::chdir("/").map_err(|e| format!("cannot enter /: {e}"))?;
    let ids = match user {
        Some(u) => Some(crate::user::resolve(u, Path::new("/etc"))?),
        None => None,
    };
    drop_privileges(writable, seccomp, ids.map(|i| (i.uid, i.gid)))
}

/// Become the workload and exec it. Never returns: on failure prints one line to stderr and
/// exits with 126 or 127.
pub(crate) fn exec(
    spec: &ExecSpec,
    writable: &WritablePaths,
    seccomp: &[seccompiler::BpfProgram],
) -> ! {
    reset_signals();
    // A new session: the workload never holds standin's controlling terminal, so it cannot
    // inject input into it (TIOCSTI also fails under seccomp).
    let _ = nix::unistd::setsid();
    if spec.tty.is_some() {
        // stdin is the sandbox's own pty (from the exec helper): make it this session's
        // controlling terminal, for job control and terminal signals.
        let _ = rustix::process::ioctl_tiocsctty(std::io::stdin());
    }
    let program = spec.argv.first().map(String::as_str).unwrap_or("");
    let fail = |code: i32, msg: String| -> ! {
        eprintln!("standin: {program}: {msg}");
        std::process::exit(code)
    };
    if let Err(e) = nix::unistd::chdir(&spec.cwd) {
        fail(
            EXIT_CANNOT_EXEC,
            format!("cannot enter working directory {}: {e}", spec.cwd.display()),
        );
    }
    let ids = match &spec.user {
        Some(u) => match crate::user::resolve(u, Path::new("/etc")) {
            Ok(ids) => Some(ids),
            Err(e) => fail(EXIT_CANNOT_EXEC, e),
        },
        None => None,
    };
    let mut env = spec.env.clone();
    if let Some(home) = ids.as_ref().and_then(|i| i.home.clone())
        && !env.iter().any(|(k, _)| k == "HOME")
    {
        env.push(("HOME".into(), home));
    }
    let Some(path) = resolve(program, &env) else {
        fail(EXIT_NOT_FOUND, "command not found".into());
    };
    let to_c = |s: &str| CString::new(s).unwrap_or_default();
    let cpath = CString::new(path.as_os_str().as_encoded_bytes()).unwrap_or_default();
    let argv: Vec<CString> = spec.argv.iter().map(|a| to_c(a)).collect();
    let envp: Vec<CString> = env.iter().map(|(k, v)| to_c(&format!("{k}={v}"))).collect();
    if let Err(e) = drop_privileges(writable, seccomp, ids.map(|i| (i.uid, i.gid))) {
        fail(EXIT_CANNOT_EXEC, e);
    }
    let err = execve(&cpath, &argv, &envp);
    let code = if err.kind() == std::io::ErrorKind::NotFound {
        EXIT_NOT_FOUND
    } else {
        EXIT_CANNOT_EXEC
    };
    fail(code, err.to_string())
}

/// `execvp`-style lookup against the *sandbox's* `PATH`.
fn resolve(program: &str, env: &[(String, String)]) -> Option<PathBuf> {
    if program.is_empty() {
        return None;
    }
    if program.contains('/') {
        return Some(PathBuf::from(program));
    }
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str())
        .unwrap_or("/usr/local/bin:/usr/bin:/bin");
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(program))
        .find(|p| {
            p.metadata()
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// Exit code for a wait status: the code itself, or 128+N for signal N.
pub(crate) fn exit_code(status: nix::sys::wait::WaitStatus) -> Option<i32> {
    use nix::sys::wait::WaitStatus;
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}
