//! The typed messages exchanged on the control socket between the supervisor, stage1 and init.
//!
//! One message per `SOCK_SEQPACKET` datagram, JSON-encoded, at most [`MAX_MESSAGE`] bytes.
//! Descriptors ride along as `SCM_RIGHTS` on the message that announces them.

use crate::cgroup::{HandOff, LimitUsage};
use crate::spec::SandboxSpec;
use crate::sys::fdpass;
use serde::{Deserialize, Serialize};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// Largest control message.
pub(crate) const MAX_MESSAGE: usize = 256 * 1024;

/// Supervisor → stage1.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ToSandbox {
    /// The sandbox to build, and its cgroup (whose descriptors ride along).
    Spec {
        /// The sandbox.
        spec: Box<SandboxSpec>,
        /// Its cgroup, when it has limits enforced by one.
        cgroup: Option<HandOff>,
    },
    /// uid/gid maps for stage1's user namespace are written.
    MapsWritten,
}

/// stage1/init → supervisor.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum FromSandbox {
    /// stage1 has its user namespace; write its maps.
    NeedMaps,
    /// The capture listeners (descriptors attached, in [`crate::CaptureSockets`] order).
    Capture,
    /// init is running with this PID (in the supervisor's PID namespace).
    InitStarted {
        /// Host PID of the sandbox's PID 1.
        init_pid: i32,
    },
    /// The sandbox is set up and the main command (if any) has been started.
    Ready,
    /// Setup failed.
    Failed {
        /// Which step.
        stage: String,
        /// What went wrong, and how to fix it when we know.
        message: String,
    },
    /// The main command (or the sandbox) ended with this exit code (128+N for signal N).
    Exited {
        /// Exit code.
        code: i32,
        /// What the sandbox's cgroup recorded (with a cgroup).
        #[serde(default)]
        usage: Option<LimitUsage>,
    },
}

/// The error for a message over [`MAX_MESSAGE`]: in practice, a sandbox configuration with a
/// very large environment.
pub(crate) fn too_large(len: usize) -> io::Error {
    // InvalidInput: nothing was sent (callers tell this from a broken channel).
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "the sandbox's configuration takes {} KiB, over the {} KiB the control channel carries; the environment is the usual cause (env(…), --env, an image's Env): make it smaller, or pass large data as a file (--mount)",
            len.div_ceil(1024),
            MAX_MESSAGE / 1024
        ),
    )
}

/// Send a message with optional descriptors.
pub(crate) fn send<T: Serialize>(
    sock: BorrowedFd<'_>,
    msg: &T,
    fds: &[BorrowedFd<'_>],
) -> io::Result<()> {
    let bytes = serde_json::to_vec(msg).map_err(io::Error::other)?;
    if bytes.len() > MAX_MESSAGE {
        return Err(too_large(bytes.len()));
    }
    fdpass::send(sock, &bytes, fds)
}

/// Receive one message. `Ok(None)` means the peer closed the socket.
pub(crate) fn recv<T: for<'de> Deserialize<'de>>(
    sock: impl AsFd,
) -> io::Result<Option<(T, Vec<OwnedFd>)>> {
    let mut buf = vec![0u8; MAX_MESSAGE];
    let (n, fds) = fdpass::recv(sock.as_fd(), &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    let msg = serde_json::from_slice(&buf[..n])
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    Ok(Some((msg, fds)))
}
