//! `NativeSandbox`: a created sandbox, as a JavaScript class.

use crate::info::NativeFileEntry;
use crate::sdk_error;
use napi::bindgen_prelude::Buffer;
use napi_derive::napi;
use std::sync::Arc;

/// A running sandbox. Stopped by `stop()` or when garbage-collected (as the Rust handle is
/// when dropped).
#[napi]
#[derive(Debug)]
pub struct NativeSandbox {
    inner: Arc<standin::Sandbox>,
}

/// What `exec` returns: the exit code (128+N if killed by signal N) and the captured output.
#[napi(object)]
pub struct NativeExecOutput {
    /// Exit code.
    pub code: i32,
    /// Captured stdout.
    pub stdout: Buffer,
    /// Captured stderr.
    pub stderr: Buffer,
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

impl NativeSandbox {
    pub(crate) fn new(sandbox: standin::Sandbox) -> NativeSandbox {
        NativeSandbox {
            inner: Arc::new(sandbox),
        }
    }
}

#[napi]
impl NativeSandbox {
    /// The sandbox's name.
    #[napi(getter)]
    pub fn name(&self) -> String {
        self.inner.name().to_owned()
    }

    /// The sandbox's unique id.
    #[napi(getter)]
    pub fn id(&self) -> String {
        self.inner.id().to_owned()
    }

    /// Run `program` with `args` inside; resolves with its exit code and output.
    #[napi]
    pub async fn exec(&self, program: String, args: Vec<String>) -> napi::Result<NativeExecOutput> {
        let out = self.inner.exec(&program, args).await.map_err(sdk_error)?;
        Ok(NativeExecOutput {
            code: out.code,
            stdout: out.stdout.into(),
            stderr: out.stderr.into(),
        })
    }

    /// Wait for the main command (or the sandbox) to end; resolves with its exit code.
    #[napi]
    pub async fn wait(&self) -> napi::Result<i32> {
        self.inner.wait().await.map_err(sdk_error)
    }

    /// Stop the sandbox now (SIGKILL to everything in it).
    #[napi]
    pub fn stop(&self) {
        self.inner.stop();
    }

    /// Stop the main command with SIGTERM, then everything with SIGKILL after `grace_ms`;
    /// resolves with the main command's exit code.
    #[napi]
    pub async fn stop_gracefully(&self, grace_ms: u32) -> napi::Result<i32> {
        let grace = std::time::Duration::from_millis(grace_ms.into());
        self.inner.stop_gracefully(grace).await.map_err(sdk_error)
    }

    /// Replace a secret's value (rotation).
    #[napi]
    pub async fn update_secret(&self, env: String, value: String) -> napi::Result<()> {
        self.inner
            .update_secret(&env, value.into_bytes())
            .await
            .map_err(sdk_error)
    }

    /// The sandbox's host name.
    #[napi(getter)]
    pub fn hostname(&self) -> String {
        self.inner.hostname().to_owned()
    }

    /// Whether the sandbox outlives this process (created `detached`, or from `get`).
    #[napi(getter)]
    pub fn is_detached(&self) -> bool {
        self.inner.is_detached()
    }

    /// Write `data` to `path` inside (created or replaced).
    #[napi]
    pub async fn fs_write(&self, path: String, data: Buffer) -> napi::Result<()> {
        let data: Vec<u8> = data.to_vec();
        self.inner.fs().write(&path, data).await.map_err(sdk_error)
    }

    /// The contents of `path` inside.
    #[napi]
    pub async fn fs_read(&self, path: String) -> napi::Result<Buffer> {
        let data = self.inner.fs().read(&path).await.map_err(sdk_error)?;
        Ok(data.into())
    }

    /// The entries of the directory `path` inside.
    #[napi]
    pub async fn fs_list(&self, path: String) -> napi::Result<Vec<NativeFileEntry>> {
        let list = self.inner.fs().list(&path).await.map_err(sdk_error)?;
        Ok(list.into_iter().map(NativeFileEntry::from).collect())
    }

    /// What `path` inside is (not following a final symlink).
    #[napi]
    pub async fn fs_stat(&self, path: String) -> napi::Result<NativeFileEntry> {
        let entry = self.inner.fs().stat(&path).await.map_err(sdk_error)?;
        Ok(entry.into())
    }

    /// Whether `path` exists inside.
    #[napi]
    pub async fn fs_exists(&self, path: String) -> napi::Result<bool> {
        self.inner.fs().exists(&path).await.map_err(sdk_error)
    }

    /// Remove `path` inside (a directory with everything in it).
    #[napi]
    pub async fn fs_remove(&self, path: String) -> napi::Result<()> {
        self.inner.fs().remove(&path).await.map_err(sdk_error)
    }

    /// Copy the host file or directory `host` to `path` inside.
    #[napi]
    pub async fn fs_copy_from_host(&self, host: String, path: String) -> napi::Result<()> {
        let fs = self.inner.fs();
        fs.copy_from_host(&host, &path).await.map_err(sdk_error)
    }

    /// Copy `path` inside to the host path `host`.
    #[napi]
    pub async fn fs_copy_to_host(&self, path: String, host: String) -> napi::Result<()> {
        let fs = self.inner.fs();
        fs.copy_to_host(&path, &host).await.map_err(sdk_error)
    }

    /// Whether the sandbox was ended by a `blockAndTerminate` violation.
    #[napi(getter)]
    pub fn terminated_by_violation(&self) -> bool {
        self.inner.terminated_by_violation()
    }
}
