//! Events handed to a Python callback.
//!
//! The boundary never waits for Python: each event goes into an unbounded channel, and a
//! thread of its own takes the GIL to call the callback with the event's JSON. The thread
//! ends when the sandbox (the channel's sender) is gone.

use pyo3::prelude::*;
use std::sync::mpsc;

/// A listener that forwards every event to `callback` (called with one `str`, the event as
/// JSON; the Python wrapper turns it into a dict).
pub(crate) fn listener(callback: Py<PyAny>) -> PyResult<standin_recipe::EventListener> {
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::Builder::new()
        .name("standin-events".into())
        .spawn(move || {
            for event in rx {
                Python::attach(|py| {
                    if let Err(e) = callback.call1(py, (event,)) {
                        // A failing callback must not stop the others; Python reports it.
                        e.write_unraisable(py, None);
                    }
                });
            }
        })
        .map_err(|e| crate::StandinError::new_err(format!("starting the event thread: {e}")))?;
    Ok(Box::new(move |e: &standin::Event| {
        let _ = tx.send(standin_recipe::event_json(e).to_string());
    }))
}
