//! The world the SDK tests (TypeScript and Python) run in: a fake internet with recording
//! HTTPS servers for every host the reference's examples name, a registry holding the image
//! `registry.test:5000/python` already pulled into a `STANDIN_HOME` of the test's own, and
//! the environment a test program needs (secret values, where the servers' log is, the
//! messages the Rust SDK gives for the mistakes the tests make).
//!
//! The image is a stand-in for a Python image: busybox, curl, `/usr/bin/python` that runs its
//! script with `sh`, and `/app/agent.py` (the working directory), a "script" that calls
//! `https://api.openai.com/v1/chat/completions` with `$OPENAI_API_KEY` as an agent would.

use crate::registry::{Registry, curl_layout_with, pull_ok, umoci};
use crate::support::{self, FakeInternet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The secret values the tests' programs see in their own environment.
pub(crate) const VALUES: &[(&str, &str)] = &[
    ("OPENAI_API_KEY", "sk-sdk-openai-0123456789abcdef"),
    ("STRIPE_KEY", "sk_live_sdk_stripe_0123456789"),
    ("API_KEY", "ghp_sdk_github_0123456789abcdef"),
];

/// `sdk/<language>` in this repository.
pub(crate) fn package_dir(language: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../sdk")
        .join(language)
}

/// Namespaces, servers, registry and store; dropped (and cleaned up) with the test.
pub(crate) struct World {
    pub(crate) net: FakeInternet,
    _registry: Registry,
    home: tempfile::TempDir,
    _work: tempfile::TempDir,
}

impl World {
    pub(crate) fn new() -> World {
        let net = FakeInternet::with_http(&[80], &[443]);
        let registry = Registry::start(&net);
        let work = tempfile::tempdir().unwrap();
        let layout = curl_layout_with(work.path(), "python-oci", |root| {
            let python = root.join("usr/bin/python");
            std::fs::write(&python, "#!/bin/sh\nexec /bin/sh \"$@\"\n").unwrap();
            std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755)).unwrap();
            std::fs::create_dir_all(root.join("app")).unwrap();
            std::fs::write(
                root.join("app/agent.py"),
                "curl -sS -m 5 -o /dev/null -w '%{http_code}' \
                 -H \"Authorization: Bearer $OPENAI_API_KEY\" \
                 https://api.openai.com/v1/chat/completions\n",
            )
            .unwrap();
        });
        let l = layout.to_str().unwrap();
        umoci(&[
            "config",
            "--image",
            &format!("{l}:base"),
            "--config.workingdir",
            "/app",
        ]);
        registry.push(&net, &layout, "base", "python:latest");
        let home = tempfile::tempdir().unwrap();
        pull_ok(&net, &registry, home.path(), "python");
        World {
            net,
            _registry: registry,
            home,
            _work: work,
        }
    }

    /// The environment of a test program: the helper, the store, trust for the fake
    /// internet's servers (the boundary reads `SSL_CERT_FILE` as its system roots), the
    /// servers' log, the secret values and the Rust SDK's messages.
    pub(crate) fn configure(&self, cmd: &mut Command) {
        cmd.env("STANDIN_BIN", support::standin_bin())
            .env("STANDIN_HOME", self.home.path())
            .env("SSL_CERT_FILE", self.net.ca_file())
            .env("STANDIN_TEST_RECEIVED", self.net.received_log())
            .env("STANDIN_TEST_RUST_ERRORS", rust_errors().to_string())
            .envs(VALUES.iter().copied());
    }
}

/// What the Rust SDK says for the mistakes the SDK tests make, so they can check that their
/// bindings pass the same text on.
fn rust_errors() -> serde_json::Value {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let bad_env = runtime
        .block_on(
            standin::Sandbox::builder("agent")
                .helper(support::standin_bin())
                .secret(|s| s.env("BAD=NAME").value("v").allow_host("api.openai.com"))
                .create(),
        )
        .expect_err("an invalid variable name must be refused");
    let no_host = standin::SecretBuilder::new()
        .env("OPENAI_API_KEY")
        .value("v")
        .build()
        .expect_err("a secret without a host must be refused");
    serde_json::json!({
        "badEnv": bad_env.to_string(),
        "noHost": no_host.to_string(),
    })
}
