//! The SDK used the obvious way: `#[tokio::main]`, then `Sandbox::builder(..).create()`.
//! The start-up contract tests (`tests/sdk_startup.rs`) run it in each of its modes, named by
//! `SDK_STARTUP_MODE`:
//!
//! - `plain` (default): nothing else; the helper is found (or not) by the SDK;
//! - `late`: calls `standin::run_helper_if_requested()` inside the async main, too late;
//! - `self`: names its own executable as the helper without ever dispatching.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    println!("main started");
    let mode = std::env::var("SDK_STARTUP_MODE").unwrap_or_default();
    if mode == "late" {
        standin::run_helper_if_requested();
    }
    let mut builder = standin::Sandbox::builder("startup").no_network().command([
        "sh",
        "-c",
        "echo inside the sandbox",
    ]);
    if mode == "self" {
        builder = builder.helper(std::env::current_exe().expect("current_exe"));
    }
    match builder.create().await {
        Ok(sb) => match sb.wait().await {
            Ok(code) => std::process::ExitCode::from(code as u8),
            Err(e) => {
                eprintln!("wait: {e}");
                std::process::ExitCode::from(2)
            }
        },
        Err(e) => {
            eprintln!("create: {e}");
            std::process::ExitCode::from(3)
        }
    }
}
