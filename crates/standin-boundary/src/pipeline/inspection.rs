//! [`Inspection`]: what inspecting one sandbox's connections needs besides its state.

use crate::http::Pool;
use crate::state::SandboxState;
use crate::tls::ca::SandboxCa;
use std::sync::Arc;

/// What inspecting a sandbox's connections needs besides its state: its CA, the upstream TLS
/// configuration, and its pool of idle upstream connections.
#[derive(Debug)]
pub(crate) struct Inspection {
    /// The sandbox's state.
    pub(crate) state: Arc<SandboxState>,
    /// The sandbox's CA (leaves for the sandbox side).
    pub(crate) ca: Arc<SandboxCa>,
    /// Verification of the real destinations, offering HTTP/2 and HTTP/1.1.
    pub(crate) upstream_tls: Arc<rustls::ClientConfig>,
    /// The same, offering HTTP/1.1 only: for clients that did not offer HTTP/2.
    pub(crate) upstream_tls_http1: Arc<rustls::ClientConfig>,
    /// Idle upstream connections between client connections.
    pub(crate) pool: Arc<Pool>,
}
