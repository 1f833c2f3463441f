//! # standin-node: the native half of the `standin` npm package
//!
//! A Node addon (napi-rs) over the Rust SDK, so TypeScript programs get exactly its behaviour:
//! no policy, validation or default lives here or in the JavaScript wrapper.
//!
//! The JavaScript builders (`index.js`) record the calls made on them, in order, as a
//! *recipe*; `standin-recipe` replays it onto the Rust builders, so every validation error is
//! the Rust SDK's own message (the Python package shares the same replay). [`sandbox`] wraps a
//! created sandbox as the `NativeSandbox` class; [`info`] holds the plain objects handed back.
//! Events reach JavaScript as JSON (`standin_recipe::event_json`, as for Python).
//!
//! Secret values cross from JavaScript as strings inside the recipe. The copies made here
//! (the recipe text and its parsed form) are zeroized once the builders hold theirs; the
//! JavaScript strings are the caller's and live as long as V8 keeps them.

// Hand-written code here has no `unsafe`; napi-rs' macros generate the FFI glue (with
// their own `allow`), which `forbid` would reject.
#![deny(unsafe_code)]

mod info;
mod sandbox;

pub use info::{NativeFileEntry, NativeSandboxInfo};
pub use sandbox::{NativeExecOutput, NativeSandbox};

use napi::Status;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use standin_recipe::Language;
use zeroize::Zeroizing;

/// The JavaScript function that receives every event, as JSON: called with it alone (no
/// error-first argument) and *weak*, so a listener never keeps Node running by itself.
pub type EventCallback = ThreadsafeFunction<String, (), String, Status, false, true>;

/// Create a sandbox from a recipe (JSON); resolves once it is running. `on_event`, when
/// given, receives the sandbox's events.
#[napi]
pub async fn create_sandbox(
    recipe: String,
    on_event: Option<EventCallback>,
) -> napi::Result<NativeSandbox> {
    let recipe = Zeroizing::new(recipe);
    let listener = on_event.map(|f| -> standin_recipe::EventListener {
        Box::new(move |e: &standin::Event| {
            // Non-blocking on an unbounded queue: the boundary never waits for JavaScript.
            let event = standin_recipe::event_json(e).to_string();
            let _ = f.call(event, ThreadsafeFunctionCallMode::NonBlocking);
        })
    });
    let builder = standin_recipe::sandbox_builder(Language::JavaScript, &recipe, listener)
        .map_err(invalid)?;
    drop(recipe);
    let sandbox = builder.create().await.map_err(sdk_error)?;
    Ok(NativeSandbox::new(sandbox))
}

/// Materialize a secret from a `SecretBuilder` recipe (JSON list of calls); returns the
/// `SecretEntry` as JSON, or throws the Rust SDK's validation error.
#[napi]
pub fn build_secret(calls: String) -> napi::Result<String> {
    let calls = Zeroizing::new(calls);
    standin_recipe::secret_entry_json(Language::JavaScript, &calls).map_err(invalid)
}

/// A handle on the detached sandbox named `name`.
#[napi]
pub async fn get_sandbox(name: String) -> napi::Result<NativeSandbox> {
    let sandbox = standin::Sandbox::get(&name).await.map_err(sdk_error)?;
    Ok(NativeSandbox::new(sandbox))
}

/// Every detached sandbox of this user, running or exited.
#[napi]
pub fn list_sandboxes() -> napi::Result<Vec<NativeSandboxInfo>> {
    let list = standin::Sandbox::list().map_err(sdk_error)?;
    Ok(list.iter().map(NativeSandboxInfo::from).collect())
}

/// Remove the detached sandbox `name` (stopping it first when `force`).
#[napi]
pub async fn remove_sandbox(name: String, force: bool) -> napi::Result<()> {
    standin::Sandbox::remove(&name, force)
        .await
        .map_err(sdk_error)
}

/// The text of an SDK error, as a JavaScript `Error`.
pub(crate) fn sdk_error(e: standin::Error) -> napi::Error {
    napi::Error::new(Status::GenericFailure, e.to_string())
}

fn invalid(message: String) -> napi::Error {
    napi::Error::new(Status::InvalidArg, message)
}
