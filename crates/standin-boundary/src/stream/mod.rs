//! Streams the boundary does not parse: bytes from the sandbox held back only as long as
//! they may start a placeholder ([`ScanGate`], also used for HTTP bodies), and a non-HTTP
//! stream relayed with that scan one way and scrubbing of real values the other
//! ([`scanned`]).

mod gate;
pub(crate) mod scanned;

pub(crate) use gate::ScanGate;

/// How long bytes from a destination that may start a real value are held back waiting for
/// the rest, when the destination has stopped sending. Then they go as they are: an
/// interactive stream (gRPC, a database protocol) whose message happens to end like the start
/// of a value must not stall until the next message. (Scrubbing protects against values
/// echoed by accident; a destination that pauses in the middle of one on purpose could leak
/// it in any encoding anyway.)
pub(crate) const SCRUB_STALL: std::time::Duration = std::time::Duration::from_millis(50);
