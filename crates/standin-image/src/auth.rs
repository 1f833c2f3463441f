//! Registry credentials, read from where docker, podman and skopeo keep them.
//!
//! Files, first match wins: `REGISTRY_AUTH_FILE` (podman, skopeo), then
//! `$DOCKER_CONFIG/config.json` or `~/.docker/config.json` (docker). Each has an `auths`
//! object keyed by registry (`host[:port]`, optionally with a scheme or a `/v1/` path, as
//! `docker login` writes for Docker Hub) whose entries carry `auth` (base64 of
//! `user:password`) or `username` and `password`. Credential helpers (`credsStore`,
//! `credHelpers`) are not run: standin does not execute programs named in a file.

use crate::error::ImageError;
use base64::Engine;
use oci_client::secrets::RegistryAuth;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Largest credentials file read.
const MAX_AUTH_FILE: u64 = 1 << 20;

#[derive(Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// The credential files consulted, in order.
pub fn auth_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(f) = std::env::var_os("REGISTRY_AUTH_FILE").filter(|v| !v.is_empty()) {
        files.push(PathBuf::from(f));
    }
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
        files.push(PathBuf::from(d).join("config.json"));
    } else if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        files.push(PathBuf::from(h).join(".docker/config.json"));
    }
    files
}

/// The credentials for `registry` (as written in the reference, e.g. `docker.io`), or
/// anonymous access when no file has any.
pub fn credentials_for(registry: &str) -> Result<RegistryAuth, ImageError> {
    for file in auth_files() {
        if let Some(auth) = lookup(&file, registry)? {
            return Ok(auth);
        }
    }
    Ok(RegistryAuth::Anonymous)
}

fn lookup(path: &Path, registry: &str) -> Result<Option<RegistryAuth>, ImageError> {
    let bad = |detail: String| ImageError::AuthFile {
        path: path.to_owned(),
        detail,
    };
    let text = match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(bad(e.to_string())),
        Ok(m) if m.len() > MAX_AUTH_FILE => {
            return Err(bad(format!("larger than {MAX_AUTH_FILE} bytes")));
        }
        Ok(_) => std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?,
    };
    let file: AuthFile = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    for (key, entry) in &file.auths {
        if normalise_key(key) != normalise_key(registry) {
            continue;
        }
        if let (Some(user), Some(pass)) = (&entry.username, &entry.password) {
            return Ok(Some(RegistryAuth::Basic(user.clone(), pass.clone())));
        }
        if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|e| bad(format!("auths.{key:?}.auth is not base64: {e}")))?;
            let decoded = String::from_utf8(decoded)
                .map_err(|_| bad(format!("auths.{key:?}.auth is not UTF-8")))?;
            let Some((user, pass)) = decoded.split_once(':') else {
                return Err(bad(format!(
                    "auths.{key:?}.auth must be base64 of user:password"
                )));
            };
            return Ok(Some(RegistryAuth::Basic(user.to_owned(), pass.to_owned())));
        }
    }
    Ok(None)
}

/// `https://index.docker.io/v1/`, `index.docker.io` and `docker.io` all name Docker Hub;
/// other keys are compared as `host[:port]` without scheme or path.
fn normalise_key(key: &str) -> String {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = key.split('/').next().unwrap_or(key).to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" => "docker.io".into(),
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_entry_forms_and_docker_hub_aliases() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.json");
        let b64 = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
        std::fs::write(
            &path,
            format!(
                r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{b64}"}},
                "reg.test:5000":{{"username":"bob","password":"pw"}}}}}}"#
            ),
        )
        .unwrap();
        match lookup(&path, "docker.io").unwrap() {
            Some(RegistryAuth::Basic(u, p)) => {
                assert_eq!((u.as_str(), p.as_str()), ("alice", "s3cret"))
            }
            other => panic!("{other:?}"),
        }
        match lookup(&path, "reg.test:5000").unwrap() {
            Some(RegistryAuth::Basic(u, _)) => assert_eq!(u, "bob"),
            other => panic!("{other:?}"),
        }
        assert!(lookup(&path, "other.test").unwrap().is_none());
        assert!(lookup(&dir.path().join("absent"), "x").unwrap().is_none());
        std::fs::write(&path, r#"{"auths":{"x":{"auth":"!!"}}}"#).unwrap();
        let e = lookup(&path, "x").unwrap_err().to_string();
        assert!(e.contains("not base64"), "{e}");
    }
}
