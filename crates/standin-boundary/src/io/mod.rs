//! Byte-stream plumbing shared by every layer above: replaying peeked bytes
//! ([`Prefixed`]), one socket shared by a connection's layers ([`SharedSocket`]), resetting a
//! connection's sockets at once ([`Abort`], [`reset`]), and idle tracking ([`Tracked`]).

mod abort;
mod idle;
mod prefixed;
mod shared_socket;

pub(crate) use abort::{Abort, reset, reset_socket};
pub(crate) use idle::{Activity, Tracked, until_idle};
pub(crate) use prefixed::Prefixed;
pub(crate) use shared_socket::SharedSocket;
