//! One connection, below the protocols: its context ([`ConnCtx`]: identity, plans, verdicts,
//! reporting) and the way to its destination ([`dial`]: connect with a timeout, verified TLS,
//! one upstream-failed event on failure).

mod context;
mod dial;

pub(crate) use context::{Blocked, ConnCtx, Denied, RealValues};
pub(crate) use dial::{HANDSHAKE_TIMEOUT, TlsUpstream, connect, dial_tls};
