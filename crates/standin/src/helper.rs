//! Finding the helper binary a sandbox is started with.
//!
//! Creating a sandbox re-executes a *helper*: a fresh, single-threaded process that becomes
//! stage1 (and later the exec helper, and a detached sandbox's supervisor). A program that
//! uses the SDK the obvious way (`#[tokio::main]`, `Sandbox::builder(..).create().await`)
//! cannot be that helper itself: by the time its `main` body runs, the runtime has started
//! threads, and a multi-threaded process cannot create a user namespace. So by default the
//! helper is the `standin` binary, found in this order:
//!
//! 1. [`SandboxBuilder::helper`](crate::SandboxBuilder::helper), when given;
//! 2. `STANDIN_BIN`, when set;
//! 3. this program itself, when it called [`run_helper_if_requested`](crate::run_helper_if_requested)
//!    while still single-threaded (the `standin` CLI does);
//! 4. `standin` next to this program's executable (cargo puts the CLI there for a workspace's
//!    tests and examples);
//! 5. `standin` on `PATH`.
//!
//! Nothing found is an error at once, saying how to provide one. A program that called
//! `run_helper_if_requested` after starting threads gets an error saying so, rather than a
//! helper that would fail with `EINVAL` from `unshare`; and a copy of the program started as
//! the helper that never dispatched (an explicit `helper(current_exe)` without the call)
//! reports that to its parent and exits, instead of starting another copy of itself over
//! and over.

use crate::Error;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Whether this process called `run_helper_if_requested`, and whether it was single-threaded
/// then.
static DISPATCH: OnceLock<bool> = OnceLock::new();

/// The environment variable naming the helper binary.
pub const HELPER_ENV: &str = "STANDIN_BIN";

/// Record that `run_helper_if_requested` ran (and returned: this process is no helper).
pub(crate) fn note_dispatch() {
    let _ = DISPATCH.set(standin_sandbox::helper::single_threaded());
}

/// The helper binary to start sandboxes with; `explicit` is the builder's.
pub(crate) fn resolve(explicit: Option<PathBuf>) -> Result<PathBuf, Error> {
    // A copy of this program started as the helper, whose main never dispatched: it ends
    // here, telling the program that started it, instead of starting another copy.
    standin_sandbox::helper::refuse_if_undispatched(
        "this program was started as standin's helper, but its main did not call \
         standin::run_helper_if_requested() before creating a sandbox; call it first thing \
         in a plain fn main, or leave the helper to the standin binary (STANDIN_BIN)",
    );
    if let Some(path) = explicit {
        return Ok(path);
    }
    if let Some(path) = std::env::var_os(HELPER_ENV).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        return if is_executable(&path) {
            Ok(path)
        } else {
            Err(Error::helper(format!(
                "{HELPER_ENV}={} is not an executable file; point it at the standin binary",
                path.display()
            )))
        };
    }
    let exe = std::env::current_exe()?;
    match DISPATCH.get() {
        Some(true) => return Ok(exe),
        Some(false) => {
            return Err(Error::helper(
                "standin::run_helper_if_requested() was called after this program started \
                 threads (an async runtime such as #[tokio::main] starts them before main's \
                 body runs), so this program cannot serve as the sandbox's helper; call it \
                 first thing in a plain fn main before building the runtime, or remove the \
                 call and let standin use the standin binary (STANDIN_BIN, or standin on PATH)",
            ));
        }
        None => {}
    }
    let beside = exe.parent().map(|d| d.join("standin"));
    if let Some(path) = beside.filter(|p| is_executable(p) && *p != exe) {
        return Ok(path);
    }
    if let Some(path) = on_path("standin") {
        return Ok(path);
    }
    Err(Error::helper(format!(
        "standin needs its helper binary to start a sandbox and found none: set {HELPER_ENV} \
         to the standin binary, put standin on PATH (cargo install --path crates/standin-cli, \
         from standin's source), or call standin::run_helper_if_requested() first thing in a \
         plain fn main so that this program serves as its own helper"
    )))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .filter(|d| d.is_absolute())
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}
