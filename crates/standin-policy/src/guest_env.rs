//! The environment a sandboxed command starts with, built from scratch.
//!
//! Nothing is inherited from the host: a secret in standin's own environment cannot reach the
//! sandbox unless the user names it explicitly (`--env NAME`).

/// `PATH` inside the sandbox.
pub const GUEST_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// `HOME` inside the sandbox (writable, per-sandbox tmpfs).
pub const GUEST_HOME: &str = "/tmp";

/// The base environment. `term` is the host's `TERM`, passed through when standin has one so
/// that terminal programs behave (it carries no secret).
pub fn base(term: Option<&str>, hostname: &str) -> Vec<(String, String)> {
    let mut env = vec![
        ("PATH".to_owned(), GUEST_PATH.to_owned()),
        ("HOME".to_owned(), GUEST_HOME.to_owned()),
        ("USER".to_owned(), "root".to_owned()),
        ("LOGNAME".to_owned(), "root".to_owned()),
        ("SHELL".to_owned(), "/bin/sh".to_owned()),
        ("LANG".to_owned(), "C.UTF-8".to_owned()),
        ("HOSTNAME".to_owned(), hostname.to_owned()),
        ("TMPDIR".to_owned(), "/tmp".to_owned()),
    ];
    env.push((
        "TERM".to_owned(),
        term.filter(|t| !t.is_empty() && !t.contains('\0'))
            .unwrap_or("dumb")
            .to_owned(),
    ));
    env
}

/// Variables that point common runtimes at a CA bundle that includes the sandbox CA (`bundle`)
/// or at the CA alone (`ca`, for runtimes that add to their own roots).
pub fn ca_variables<'a>(bundle: &'a str, ca: &'a str) -> Vec<(&'static str, &'a str)> {
    vec![
        ("SSL_CERT_FILE", bundle), // OpenSSL, Python ssl, Go, Ruby, rustls-native-certs
        ("REQUESTS_CA_BUNDLE", bundle), // python requests
        ("CURL_CA_BUNDLE", bundle), // curl, pycurl
        ("NODE_EXTRA_CA_CERTS", ca), // Node.js (added to its bundled roots)
        ("GIT_SSL_CAINFO", bundle), // git
        ("PIP_CERT", bundle),      // pip
        ("AWS_CA_BUNDLE", bundle), // AWS CLI and SDKs
        ("CARGO_HTTP_CAINFO", bundle), // cargo
        ("NPM_CONFIG_CAFILE", bundle), // npm
        ("DENO_CERT", bundle),     // Deno
        ("HTTPLIB2_CA_CERTS", bundle), // httplib2 (Google API clients)
        ("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", bundle), // gRPC core
    ]
}

/// Set `name` to `value` in `env`, replacing an earlier value.
pub fn set(env: &mut Vec<(String, String)>, name: &str, value: &str) {
    match env.iter_mut().find(|(k, _)| k == name) {
        Some(slot) => slot.1 = value.to_owned(),
        None => env.push((name.to_owned(), value.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_env_is_minimal_and_overridable() {
        let mut env = base(Some("xterm-256color"), "box");
        assert!(
            env.iter()
                .any(|(k, v)| k == "TERM" && v == "xterm-256color")
        );
        assert!(env.iter().any(|(k, v)| k == "PATH" && v == GUEST_PATH));
        set(&mut env, "HOME", "/workspace");
        set(&mut env, "NEW", "1");
        assert_eq!(env.iter().filter(|(k, _)| k == "HOME").count(), 1);
        assert!(env.iter().any(|(k, v)| k == "HOME" && v == "/workspace"));
        assert!(env.iter().any(|(k, v)| k == "NEW" && v == "1"));
        assert!(
            base(None, "x")
                .iter()
                .any(|(k, v)| k == "TERM" && v == "dumb")
        );
    }
}
