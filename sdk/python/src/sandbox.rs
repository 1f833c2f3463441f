//! `NativeSandbox`: a created sandbox, as a Python class.

use crate::{StandinError, sdk_error};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::future::Future;
use std::sync::Arc;

/// Run `f` to its end on the SDK's runtime, with the GIL released.
pub(crate) fn block_on<T: Send>(
    py: Python<'_>,
    f: impl Future<Output = Result<T, standin::Error>> + Send,
) -> PyResult<T> {
    py.detach(|| pyo3_async_runtimes::tokio::get_runtime().block_on(f))
        .map_err(sdk_error)
}

/// A running sandbox. Stopped by `stop()` or when collected (as the Rust handle is when
/// dropped), unless it is detached.
#[pyclass(frozen)]
#[derive(Debug)]
pub struct NativeSandbox {
    inner: Arc<standin::Sandbox>,
}

impl NativeSandbox {
    pub(crate) fn new(sandbox: standin::Sandbox) -> NativeSandbox {
        NativeSandbox {
            inner: Arc::new(sandbox),
        }
    }
}

/// What `exec` returns: the exit code (128+N if killed by signal N) and the captured output.
#[pyclass(frozen)]
pub struct NativeExecOutput {
    #[pyo3(get)]
    code: i32,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

#[pymethods]
impl NativeExecOutput {
    /// Captured stdout.
    #[getter]
    fn stdout<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.stdout)
    }

    /// Captured stderr.
    #[getter]
    fn stderr<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.stderr)
    }
}

impl std::fmt::Debug for NativeExecOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeExecOutput")
            .field("code", &self.code)
            .field("stdout", &self.stdout.len())
            .field("stderr", &self.stderr.len())
            .finish()
    }
}

impl From<standin::ExecOutput> for NativeExecOutput {
    fn from(o: standin::ExecOutput) -> NativeExecOutput {
        NativeExecOutput {
            code: o.code,
            stdout: o.stdout,
            stderr: o.stderr,
        }
    }
}

/// A file operation's result that Python receives as JSON (a `FileEntry` or a list of them).
fn entries_json<T: serde::Serialize>(v: &T) -> Result<String, standin::Error> {
    serde_json::to_string(v).map_err(|e| standin::Error::Io(std::io::Error::other(e)))
}

macro_rules! awaitable {
    ($py:expr, $inner:expr, |$sb:ident| $body:expr) => {{
        let $sb = Arc::clone($inner);
        pyo3_async_runtimes::tokio::future_into_py($py, async move {
            let out = $body.await.map_err(sdk_error)?;
            Ok(out)
        })
    }};
}

#[pymethods]
impl NativeSandbox {
    /// The sandbox's name.
    #[getter]
    fn name(&self) -> String {
        self.inner.name().to_owned()
    }

    /// The sandbox's unique id.
    #[getter]
    fn id(&self) -> String {
        self.inner.id().to_owned()
    }

    /// The sandbox's host name.
    #[getter]
    fn hostname(&self) -> String {
        self.inner.hostname().to_owned()
    }

    /// Whether it outlives this process.
    #[getter]
    fn is_detached(&self) -> bool {
        self.inner.is_detached()
    }

    /// Whether a block-and-terminate violation ended it.
    #[getter]
    fn terminated_by_violation(&self) -> bool {
        self.inner.terminated_by_violation()
    }

    /// Run `program` with `args` inside; resolves with a `NativeExecOutput`.
    fn exec<'py>(
        &self,
        py: Python<'py>,
        program: String,
        args: Vec<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let sb = Arc::clone(&self.inner);
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let out = sb.exec(&program, args).await.map_err(sdk_error)?;
            Ok(NativeExecOutput::from(out))
        })
    }

    /// [`exec`](Self::exec), blocking.
    fn exec_sync(
        &self,
        py: Python<'_>,
        program: String,
        args: Vec<String>,
    ) -> PyResult<NativeExecOutput> {
        let out = block_on(py, self.inner.exec(&program, args))?;
        Ok(out.into())
    }

    /// Wait for the sandbox to end; resolves with its exit code.
    fn wait<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        awaitable!(py, &self.inner, |sb| sb.wait())
    }

    /// [`wait`](Self::wait), blocking.
    fn wait_sync(&self, py: Python<'_>) -> PyResult<i32> {
        block_on(py, self.inner.wait())
    }

    /// Stop it now (SIGKILL to everything inside).
    fn stop(&self) {
        self.inner.stop();
    }

    /// SIGTERM, then SIGKILL after `grace_seconds`; resolves with the exit code.
    fn stop_gracefully<'py>(
        &self,
        py: Python<'py>,
        grace_seconds: f64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let grace = std::time::Duration::try_from_secs_f64(grace_seconds)
            .map_err(|e| StandinError::new_err(format!("stop_gracefully({grace_seconds}): {e}")))?;
        awaitable!(py, &self.inner, |sb| sb.stop_gracefully(grace))
    }

    /// Replace a secret's value (rotation).
    fn update_secret<'py>(
        &self,
        py: Python<'py>,
        env: String,
        value: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        awaitable!(py, &self.inner, |sb| sb
            .update_secret(&env, value.into_bytes()))
    }

    /// Write `data` to `path` inside.
    fn fs_write<'py>(
        &self,
        py: Python<'py>,
        path: String,
        data: Vec<u8>,
    ) -> PyResult<Bound<'py, PyAny>> {
        awaitable!(py, &self.inner, |sb| sb.fs().write(&path, data))
    }

    /// The contents of `path` inside (`bytes`).
    fn fs_read<'py>(&self, py: Python<'py>, path: String) -> PyResult<Bound<'py, PyAny>> {
        let sb = Arc::clone(&self.inner);
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let data = sb.fs().read(&path).await.map_err(sdk_error)?;
            Ok(std::borrow::Cow::<'static, [u8]>::Owned(data))
        })
    }

    /// The entries of the directory `path` inside, as JSON.
    fn fs_list<'py>(&self, py: Python<'py>, path: String) -> PyResult<Bound<'py, PyAny>> {
        awaitable!(py, &self.inner, |sb| async {
            entries_json(&sb.fs().list(&path).await?)
        })
    }

    /// What `path` inside is, as JSON.
    fn fs_stat<'py>(&self, py: Python<'py>, path: String) -> PyResult<Bound<'py, PyAny>> {
        awaitable!(py, &self.inner, |sb| async {
            entries_json(&sb.fs().stat(&path).await?)
        })
    }

    /// Whether `path` exists inside.
    fn fs_exists<'py>(&self, py: Python<'py>, path: String) -> PyResult<Bound<'py, PyAny>> {
        awaitable!(py, &self.inner, |sb| sb.fs().exists(&path))
    }

    /// Remove `path` inside.
    fn fs_remove<'py>(&self, py: Python<'py>, path: String) -> PyResult<Bound<'py, PyAny>> {
        awaitable!(py, &self.inner, |sb| sb.fs().remove(&path))
    }

    /// Copy the host path `host` to `path` inside.
    fn fs_copy_from_host<'py>(
        &self,
        py: Python<'py>,
        host: String,
        path: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        awaitable!(py, &self.inner, |sb| sb.fs().copy_from_host(&host, &path))
    }

    /// Copy `path` inside to the host path `host`.
    fn fs_copy_to_host<'py>(
        &self,
        py: Python<'py>,
        path: String,
        host: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        awaitable!(py, &self.inner, |sb| sb.fs().copy_to_host(&path, &host))
    }
}
