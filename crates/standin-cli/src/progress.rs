//! Pull progress on a terminal: one line, rewritten in place, with the layers done and the
//! bytes received of the total. Only used when stderr is a terminal.

use crate::images::human_bytes;
use standin::PullProgress;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Redraw at most this often.
const REDRAW: Duration = Duration::from_millis(100);

#[derive(Debug, Default)]
struct State {
    reference: String,
    layers: usize,
    done: usize,
    total: u64,
    received: u64,
    last_draw: Option<Instant>,
}

/// Draws pull progress on stderr.
#[derive(Debug, Default)]
pub(crate) struct TerminalProgress(Mutex<State>);

impl TerminalProgress {
    fn draw(state: &mut State, force: bool) {
        let now = Instant::now();
        if !force && state.last_draw.is_some_and(|t| now - t < REDRAW) {
            return;
        }
        state.last_draw = Some(now);
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[Kpulling {}: {}/{} layers, {} of {}",
            state.reference,
            state.done,
            state.layers,
            human_bytes(state.received),
            human_bytes(state.total)
        );
        let _ = err.flush();
    }

    /// End the progress line.
    pub(crate) fn finish(&self) {
        if let Ok(mut s) = self.0.lock()
            && s.last_draw.is_some()
        {
            Self::draw(&mut s, true);
            eprintln!();
        }
    }
}

impl PullProgress for TerminalProgress {
    fn resolved(&self, reference: &str, layers: usize, bytes: u64) {
        if let Ok(mut s) = self.0.lock() {
            s.reference = reference.to_owned();
            s.layers = layers;
            s.total = bytes;
            Self::draw(&mut s, true);
        }
    }

    fn layer_cached(&self, _digest: &str, size: u64) {
        if let Ok(mut s) = self.0.lock() {
            s.done += 1;
            s.received += size;
            Self::draw(&mut s, false);
        }
    }

    fn layer_bytes(&self, _digest: &str, n: u64) {
        if let Ok(mut s) = self.0.lock() {
            s.received += n;
            Self::draw(&mut s, false);
        }
    }

    fn layer_done(&self, _digest: &str) {
        if let Ok(mut s) = self.0.lock() {
            s.done += 1;
            Self::draw(&mut s, true);
        }
    }
}
