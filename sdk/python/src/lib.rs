//! # standin-python: the native half of the `standin` Python package
//!
//! A PyO3 extension over the Rust SDK, so Python programs get exactly its behaviour: no
//! policy, validation or default lives here or in the Python wrapper (`python/standin`).
//!
//! The Python builders record the calls made on them as a recipe that `standin-recipe`
//! replays onto the Rust builders (the TypeScript package does the same), so every
//! validation error is the Rust SDK's message. Async methods return asyncio awaitables
//! driven by a tokio runtime (`pyo3-async-runtimes`); the `*_sync` functions block on the
//! same runtime with the GIL released. [`sandbox`] is the `NativeSandbox` class; [`events`]
//! hands events to a Python callback from a thread of its own.
//!
//! Secret values cross from Python as strings inside the recipe. The copies made here (the
//! recipe text and its parsed form) are zeroized once the builders hold theirs; the Python
//! strings are the caller's.

// Hand-written code here has no `unsafe`; PyO3's macros generate the FFI glue.
#![deny(unsafe_code)]

mod events;
mod sandbox;

use pyo3::prelude::*;
use sandbox::{NativeExecOutput, NativeSandbox};
use standin_recipe::Language;
use zeroize::Zeroizing;

pyo3::create_exception!(
    _standin,
    StandinError,
    pyo3::exceptions::PyException,
    "What standin raises: invalid configuration (the Rust SDK's message) or a failed operation."
);

/// The SDK's error as a `StandinError`, with its text.
pub(crate) fn sdk_error(e: standin::Error) -> PyErr {
    StandinError::new_err(e.to_string())
}

fn invalid(message: String) -> PyErr {
    StandinError::new_err(message)
}

/// The builder a recipe describes, with `on_event` receiving the events.
fn builder(recipe: String, on_event: Option<Py<PyAny>>) -> PyResult<standin::SandboxBuilder> {
    let recipe = Zeroizing::new(recipe);
    let listener = on_event.map(events::listener).transpose()?;
    let b =
        standin_recipe::sandbox_builder(Language::Python, &recipe, listener).map_err(invalid)?;
    Ok(match built_helper() {
        Some(helper) if std::env::var_os(standin::HELPER_ENV).is_none() => b.helper(helper),
        _ => b,
    })
}

/// The `standin` binary of the repository this extension was built in (release, then
/// debug), when it is there: a package built from the repository needs no configuration.
/// `STANDIN_BIN` takes precedence; otherwise the SDK looks beside the interpreter and on
/// `PATH`, and says what to do when it finds none.
fn built_helper() -> Option<std::path::PathBuf> {
    let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target");
    ["release", "debug"]
        .iter()
        .map(|profile| target.join(profile).join("standin"))
        .find(|p| p.is_file())
}

/// Create a sandbox from a recipe (JSON); an awaitable that resolves once it is running.
#[pyfunction]
#[pyo3(signature = (recipe, on_event=None))]
fn create_sandbox<'py>(
    py: Python<'py>,
    recipe: String,
    on_event: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let builder = builder(recipe, on_event)?;
    pyo3_async_runtimes::tokio::future_into_py(py, async move {
        let sandbox = builder.create().await.map_err(sdk_error)?;
        Ok(NativeSandbox::new(sandbox))
    })
}

/// [`create_sandbox`], blocking (the GIL released while it waits).
#[pyfunction]
#[pyo3(signature = (recipe, on_event=None))]
fn create_sandbox_sync(
    py: Python<'_>,
    recipe: String,
    on_event: Option<Py<PyAny>>,
) -> PyResult<NativeSandbox> {
    let builder = builder(recipe, on_event)?;
    let sandbox = sandbox::block_on(py, builder.create())?;
    Ok(NativeSandbox::new(sandbox))
}

/// `SecretBuilder.build()`: the entry as JSON, or the Rust SDK's validation error.
#[pyfunction]
fn build_secret(calls: String) -> PyResult<String> {
    let calls = Zeroizing::new(calls);
    standin_recipe::secret_entry_json(Language::Python, &calls).map_err(invalid)
}

/// A handle on the detached sandbox `name` (awaitable).
#[pyfunction]
fn get_sandbox(py: Python<'_>, name: String) -> PyResult<Bound<'_, PyAny>> {
    pyo3_async_runtimes::tokio::future_into_py(py, async move {
        let sandbox = standin::Sandbox::get(&name).await.map_err(sdk_error)?;
        Ok(NativeSandbox::new(sandbox))
    })
}

/// Every detached sandbox of this user, as JSON (a list of objects).
#[pyfunction]
fn list_sandboxes() -> PyResult<String> {
    let list = standin::Sandbox::list().map_err(sdk_error)?;
    serde_json::to_string(&list).map_err(|e| StandinError::new_err(e.to_string()))
}

/// Remove the detached sandbox `name`, stopping it first when `force` (awaitable).
#[pyfunction]
fn remove_sandbox(py: Python<'_>, name: String, force: bool) -> PyResult<Bound<'_, PyAny>> {
    pyo3_async_runtimes::tokio::future_into_py(py, async move {
        standin::Sandbox::remove(&name, force)
            .await
            .map_err(sdk_error)
    })
}

#[pymodule]
fn _standin(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("StandinError", m.py().get_type::<StandinError>())?;
    m.add_class::<NativeSandbox>()?;
    m.add_class::<NativeExecOutput>()?;
    m.add_function(wrap_pyfunction!(create_sandbox, m)?)?;
    m.add_function(wrap_pyfunction!(create_sandbox_sync, m)?)?;
    m.add_function(wrap_pyfunction!(build_secret, m)?)?;
    m.add_function(wrap_pyfunction!(get_sandbox, m)?)?;
    m.add_function(wrap_pyfunction!(list_sandboxes, m)?)?;
    m.add_function(wrap_pyfunction!(remove_sandbox, m)?)?;
    Ok(())
}
