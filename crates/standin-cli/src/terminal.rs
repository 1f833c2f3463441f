//! `-t`: relay this terminal to a command's pty inside the sandbox.
//!
//! This side's terminal goes to raw mode (every key, Ctrl-C and Ctrl-Z included, goes to the
//! sandbox's pty, whose line discipline turns them into signals for the command's foreground
//! job), its size follows this one's (`SIGWINCH`), and its mode is restored when the command
//! ends, when standin fails, and on SIGTERM or SIGHUP.

use rustix::termios::{OptionalActions, Termios, tcgetattr, tcgetwinsize, tcsetattr};
use standin::TerminalExec;
use std::io::{Read, Write};
use std::os::fd::AsFd;

/// The size of this process's terminal, or 24×80 without one.
pub(crate) fn size() -> (u16, u16) {
    match tcgetwinsize(std::io::stdin()) {
        Ok(w) if w.ws_row > 0 && w.ws_col > 0 => (w.ws_row, w.ws_col),
        _ => (24, 80),
    }
}

/// Raw mode on stdin while alive; the saved mode comes back on drop.
struct RawMode(Option<Termios>);

impl RawMode {
    fn enter() -> RawMode {
        let stdin = std::io::stdin();
        let Ok(saved) = tcgetattr(&stdin) else {
            return RawMode(None);
        };
        let mut raw = saved.clone();
        raw.make_raw();
        let _ = tcsetattr(&stdin, OptionalActions::Now, &raw);
        RawMode(Some(saved))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            let _ = tcsetattr(std::io::stdin(), OptionalActions::Now, saved);
        }
    }
}

/// After the command ends, how long its remaining output may take to arrive (a background
/// process still holding the terminal would otherwise keep us here).
const DRAIN: std::time::Duration = std::time::Duration::from_millis(500);

/// Relay until the command ends; its exit code (128+15 or 128+1 when standin itself got
/// SIGTERM or SIGHUP first).
pub(crate) async fn relay(exec: TerminalExec) -> anyhow::Result<i32> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut winch = signal(SignalKind::window_change())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let master = exec.terminal().try_clone_to_owned()?;
    let resize_fd = master.try_clone()?;
    let mut input = std::fs::File::from(master.try_clone()?);
    let mut output = std::fs::File::from(master);
    let raw = RawMode::enter();
    // Keys to the command. This thread may stay blocked in read() after the end; the
    // process exits right after.
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdin.read(&mut buf) {
            if n == 0 || input.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    // Its output to ours, until the terminal hangs up (EIO).
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let mut stdout = std::io::stdout();
        let mut buf = [0u8; 16384];
        while let Ok(n) = output.read(&mut buf) {
            if n == 0
                || stdout
                    .write_all(&buf[..n])
                    .and_then(|()| stdout.flush())
                    .is_err()
            {
                break;
            }
        }
        let _ = done_tx.send(());
    });
    let wait = exec.wait();
    tokio::pin!(wait);
    let code = loop {
        tokio::select! {
            code = &mut wait => break code?,
            _ = winch.recv() => {
                let (rows, cols) = size();
                let size = rustix::termios::Winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
                let _ = rustix::termios::tcsetwinsize(resize_fd.as_fd(), size);
            }
            _ = term.recv() => break 128 + 15,
            _ = hup.recv() => break 128 + 1,
        }
    };
    let _ = tokio::task::spawn_blocking(move || done_rx.recv_timeout(DRAIN)).await;
    drop(raw);
    Ok(code)
}
