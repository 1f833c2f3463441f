//! The supervisor of a detached sandbox: a process of its own (the helper binary run as
//! `__standin-supervise DIR`) that creates the sandbox from the [`Recipe`] it receives on
//! its setup socket, holds the boundary and the real values for the sandbox's whole life,
//! writes the main command's output to the log, and serves the control socket.
//!
//! Each connection gets a thread; the requests are few and long-lived (a `Run` lasts as long
//! as its command). When the main command ends (or the sandbox is stopped), the supervisor
//! records the exit, answers the clients waiting for it, and exits; stage1 sees it go and
//! nothing of the sandbox is left running.

use super::home::{Exit, Record, SandboxDir, now};
use super::log::{Log, copy_into};
use super::protocol::{Live, Reply, Request, Setup};
use super::recipe::Recipe;
use crate::Error;
use crate::sandbox::Local;
use crate::sandbox::launch::{Launched, Task};
use crate::stdio::StdioSpec;
use standin_sandbox::channel;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use zeroize::Zeroizing;

/// argv\[1\] that selects the supervisor role.
pub(crate) const SUPERVISE_ARG: &str = "__standin-supervise";
/// The setup socket's descriptor number in the supervisor.
pub(crate) const SETUP_FD: i32 = 3;
/// How long the supervisor lets clients waiting for the exit read their answer.
const FAREWELL: Duration = Duration::from_secs(2);

/// Entry point of the role; never returns.
pub(crate) fn main(dir: PathBuf) -> ! {
    // Its own session: signals of the creator's terminal never reach it.
    let _ = rustix::process::setsid();
    let setup = match standin_sandbox::helper::adopt_descriptor(SETUP_FD) {
        Ok(fd) => fd,
        Err(e) => {
            eprintln!("standin: supervisor started without its setup socket: {e}");
            std::process::exit(125)
        }
    };
    let code = match run(SandboxDir { path: dir }, setup) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("standin: supervisor: {e}");
            125
        }
    };
    std::process::exit(code)
}

/// The exit of the main command, and the clients still owed an answer.
#[derive(Default)]
struct Ending {
    code: Option<i32>,
    owed: usize,
}

struct Shared {
    local: Local,
    ending: Mutex<Ending>,
    changed: Condvar,
    uid: u32,
}

impl Shared {
    /// Block until the main command has ended (or `timeout` passed: `None`).
    fn exit_code(&self, timeout: Option<Duration>) -> Option<i32> {
        let guard = self.ending.lock().ok()?;
        let guard = match timeout {
            None => self.changed.wait_while(guard, |e| e.code.is_none()).ok()?,
            Some(t) => {
                self.changed
                    .wait_timeout_while(guard, t, |e| e.code.is_none())
                    .ok()?
                    .0
            }
        };
        guard.code
    }

    fn owe(&self, delta: isize) {
        if let Ok(mut e) = self.ending.lock() {
            e.owed = e.owed.saturating_add_signed(delta);
        }
        self.changed.notify_all();
    }
}

fn run(dir: SandboxDir, setup: OwnedFd) -> Result<(), String> {
    let recipe = {
        let mut buf = Zeroizing::new(vec![0u8; channel::MAX_MESSAGE]);
        let (n, _) = channel::recv_into(setup.as_fd(), &mut buf)
            .map_err(|e| format!("reading the recipe: {e}"))?;
        serde_json::from_slice::<Recipe>(&buf[..n]).map_err(|e| format!("bad recipe: {e}"))?
    };
    let fail = |setup: &OwnedFd, e: &Error| {
        let reply = match Reply::failed(e) {
            Reply::Failed { problems, message } => Setup::Failed { problems, message },
            _ => Setup::Failed {
                problems: Vec::new(),
                message: e.to_string(),
            },
        };
        let _ = channel::send(setup.as_fd(), &reply, &[]);
    };
    let _lock = match dir.lock() {
        Ok(l) => l,
        Err(e) => {
            fail(&setup, &e);
            return Err(e.to_string());
        }
    };
    let runtime = crate::runtime().map_err(|e| e.to_string())?;
    let (local, record, copier) = match runtime.block_on(start(&dir, recipe)) {
        Ok(v) => v,
        Err(e) => {
            fail(&setup, &e);
            return Err(e.to_string());
        }
    };
    let listener = match channel::listen(&dir.control()) {
        Ok(l) => l,
        Err(e) => {
            let e = Error::Io(e);
            fail(&setup, &e);
            return Err(e.to_string());
        }
    };
    let shared = Arc::new(Shared {
        local,
        ending: Mutex::new(Ending::default()),
        changed: Condvar::new(),
        uid: rustix::process::geteuid().as_raw(),
    });
    {
        let shared = shared.clone();
        std::thread::spawn(move || serve(&shared, listener));
    }
    let _ = channel::send(setup.as_fd(), &Setup::Ready, &[]);
    drop(setup);

    let code = runtime.block_on(shared.local.wait()).unwrap_or(125);
    let _ = std::fs::remove_file(dir.control());
    // Every writer of the output pipe was in the sandbox: the copier reaches its end.
    let _ = copier.join();
    let usage = shared.local.process.limit_usage().map(Into::into);
    let mut record = record;
    record.exit = Some(Exit {
        code,
        finished: now(),
        usage,
        terminated_by_violation: shared.local.terminated_by_violation(),
    });
    if let Err(e) = dir.write_record(&record) {
        tracing::error!(error = %e, "cannot record the exit");
    }
    // Answer everyone waiting for the end before going.
    if let Ok(mut e) = shared.ending.lock() {
        e.code = Some(code);
    }
    shared.changed.notify_all();
    if let Ok(guard) = shared.ending.lock() {
        let _ = shared
            .changed
            .wait_timeout_while(guard, FAREWELL, |e| e.owed > 0);
    }
    Ok(())
}

/// Create the sandbox; its output goes to the log (stdout and stderr through one pipe, so
/// their order is kept).
async fn start(
    dir: &SandboxDir,
    mut recipe: Recipe,
) -> Result<(Local, Record, std::thread::JoinHandle<()>), Error> {
    let config = recipe.public_view();
    let (output, output_w) = std::io::pipe()?;
    let builder = recipe.into_builder().map_err(Error::config)?.stdio(
        StdioSpec::default()
            .stdin(Stdio::null())
            .stdout(Stdio::from(output_w.try_clone()?))
            .stderr(Stdio::from(output_w)),
    );
    let root = match (&builder.image.reference, &builder.root) {
        (Some(r), _) => r.to_string(),
        (None, standin_sandbox::spec::RootSource::Dir(d)) => d.display().to_string(),
        (None, _) => "host".to_owned(),
    };
    let command = builder.command.clone();
    let local = Local::create(builder).await?;
    let log = Arc::new(Mutex::new(Log::create(&dir.output_log())?));
    let copier = copy_into(output, log);
    let record = Record {
        name: local.name.clone(),
        id: local.id.clone(),
        hostname: local.hostname.clone(),
        created: now(),
        supervisor_pid: std::process::id(),
        init_pid: local.process.init_pid(),
        root,
        command,
        limits: local.process.limits().into(),
        warnings: local.process.warnings().to_vec(),
        config,
        exit: None,
    };
    dir.write_record(&record)?;
    Ok((local, record, copier))
}

fn serve(shared: &Arc<Shared>, listener: OwnedFd) {
    loop {
        let conn = match channel::accept(listener.as_fd()) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "the control socket failed");
                return;
            }
        };
        let shared = shared.clone();
        std::thread::spawn(move || handle(&shared, conn));
    }
}

fn reply(conn: &OwnedFd, r: &Reply) {
    let _ = channel::send(conn.as_fd(), r, &[]);
}

fn handle(shared: &Shared, conn: OwnedFd) {
    match channel::peer_uid(conn.as_fd()) {
        Ok(uid) if uid == shared.uid || uid == 0 => {}
        _ => {
            reply(&conn, &Reply::failed(&Error::config("not your sandbox")));
            return;
        }
    }
    let Ok(Some((req, fds))) = channel::recv::<Request>(&conn) else {
        return;
    };
    match req {
        Request::Run { task } => run_task(shared, &conn, task, fds),
        Request::Wait => {
            shared.owe(1);
            if let Some(code) = shared.exit_code(None) {
                reply(&conn, &Reply::Exited { code });
            }
            shared.owe(-1);
        }
        Request::Stop { grace_ms } => {
            shared.owe(1);
            let process = &shared.local.process;
            if grace_ms == 0 {
                process.kill();
            } else {
                process.terminate();
                if shared
                    .exit_code(Some(Duration::from_millis(grace_ms)))
                    .is_none()
                {
                    process.kill();
                }
            }
            if let Some(code) = shared.exit_code(None) {
                reply(&conn, &Reply::Exited { code });
            }
            shared.owe(-1);
        }
        Request::UpdateSecret { env, value } => {
            let result = value
                .value()
                .map_err(Error::config)
                .and_then(|v| shared.local.update_secret(&env, v));
            match result {
                Ok(()) => reply(&conn, &Reply::Done),
                Err(e) => reply(&conn, &Reply::failed(&e)),
            }
        }
        Request::Inspect => {
            let exited = shared.ending.lock().ok().and_then(|e| e.code);
            reply(
                &conn,
                &Reply::Live(Live {
                    usage: shared.local.process.usage_now().map(Into::into),
                    terminated_by_violation: shared.local.terminated_by_violation(),
                    exited,
                }),
            );
        }
    }
}

/// Start `task` with the client's streams; kill it if the client goes away first.
fn run_task(shared: &Shared, conn: &OwnedFd, task: Task, fds: Vec<OwnedFd>) {
    let Ok(stdio) = <[OwnedFd; 3]>::try_from(fds) else {
        reply(
            conn,
            &Reply::failed(&Error::config("run: send stdin, stdout and stderr")),
        );
        return;
    };
    let (mut child, pty) = match shared.local.launch(task, stdio) {
        Ok((Launched::Local(child), pty)) => (child, pty),
        Ok((Launched::Remote(_), _)) => {
            // A supervisor's own sandbox is always attached to it.
            reply(
                conn,
                &Reply::failed(&Error::config("run: not an attached sandbox")),
            );
            return;
        }
        Err(e) => {
            reply(conn, &Reply::failed(&e));
            return;
        }
    };
    let pty_fds: Vec<BorrowedFd<'_>> = pty.iter().map(|p| p.as_fd()).collect();
    let _ = channel::send(conn.as_fd(), &Reply::Started, &pty_fds);
    drop(pty_fds);
    drop(pty);
    let pid = rustix::process::Pid::from_child(&child);
    let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok();
    let (done_r, done_w) = match std::io::pipe() {
        Ok(p) => p,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            return;
        }
    };
    std::thread::scope(|s| {
        s.spawn(|| {
            if client_left(conn.as_fd(), done_r.as_fd())
                && let Some(fd) = &pidfd
            {
                let _ = rustix::process::pidfd_send_signal(fd, rustix::process::Signal::KILL);
            }
        });
        let code = child
            .wait()
            .map(crate::sandbox::local::exit_code)
            .unwrap_or(125);
        drop(done_w);
        reply(conn, &Reply::Exited { code });
    });
}

/// Block until the client hangs up (`true`) or `done` is closed (`false`).
fn client_left(conn: BorrowedFd<'_>, done: BorrowedFd<'_>) -> bool {
    use rustix::event::{PollFd, PollFlags, poll};
    loop {
        let mut fds = [
            PollFd::new(&conn, PollFlags::IN | PollFlags::RDHUP),
            PollFd::new(&done, PollFlags::IN),
        ];
        match poll(&mut fds, None) {
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return false,
            Ok(_) => {
                if !fds[1].revents().is_empty() {
                    return false;
                }
                if !fds[0].revents().is_empty() {
                    return true;
                }
            }
        }
    }
}
