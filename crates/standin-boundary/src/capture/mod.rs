//! Capture: the listening sockets the sandbox runtime hands over, where a captured
//! connection was originally headed, and the descriptor limit the host process needs to
//! serve many of them.
//!
//! The lowest layer of the boundary: it knows nothing of policy or protocols.

mod limits;
mod listeners;
mod original_dst;

pub use limits::raise_descriptor_limit;
pub use listeners::{CaptureListeners, ListenerError};
pub(crate) use original_dst::original_dst;
