//! Image references, normalised as Docker does: `python:3.12` is
//! `docker.io/library/python:3.12`, no tag means `latest`, and a digest pins the content.

use crate::error::ImageError;
use oci_client::Reference;
use std::fmt;

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    inner: Reference,
}

impl ImageRef {
    /// Parse `name`. Errors say what a reference looks like.
    pub fn parse(name: &str) -> Result<ImageRef, ImageError> {
        let trimmed = name.trim();
        let bad = |reason: String| ImageError::BadReference {
            name: name.to_owned(),
            reason,
        };
        if trimmed.is_empty() {
            return Err(bad("it is empty".into()));
        }
        if trimmed.chars().any(|c| c.is_ascii_uppercase()) && !trimmed.contains('@') {
            // The grammar allows upper case only in tags and registry hosts; the underlying
            // parser's message for a capitalised repository is terse, so say it here.
            let repo_part = trimmed
                .rsplit_once(':')
                .map_or(trimmed, |(r, t)| if t.contains('/') { trimmed } else { r });
            let path = repo_part
                .split_once('/')
                .map_or(repo_part, |(first, rest)| {
                    if first.contains('.') || first.contains(':') || first == "localhost" {
                        rest
                    } else {
                        repo_part
                    }
                });
            if path.chars().any(|c| c.is_ascii_uppercase()) {
                return Err(bad("repository names must be lower case".into()));
            }
        }
        let inner = Reference::try_from(trimmed).map_err(|e| bad(e.to_string()))?;
        Ok(ImageRef { inner })
    }

    /// The registry host (and port), e.g. `docker.io`, `ghcr.io`, `localhost:5000`.
    pub fn registry(&self) -> &str {
        self.inner.registry()
    }

    /// The repository path, e.g. `library/python`.
    pub fn repository(&self) -> &str {
        self.inner.repository()
    }

    /// The tag, when the reference names one.
    pub fn tag(&self) -> Option<&str> {
        self.inner.tag()
    }

    /// The digest, when the reference pins one.
    pub fn digest(&self) -> Option<&str> {
        self.inner.digest()
    }

    /// The host the registry is reached at (`docker.io` is served by `index.docker.io`).
    pub fn registry_host(&self) -> &str {
        self.inner.resolve_registry()
    }

    pub(crate) fn oci(&self) -> &Reference {
        &self.inner
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(s: &str) -> String {
        ImageRef::parse(s).unwrap().to_string()
    }

    #[test]
    fn short_names_expand_as_docker_does() {
        assert_eq!(whole("python:3.12"), "docker.io/library/python:3.12");
        assert_eq!(whole("python"), "docker.io/library/python:latest");
        assert_eq!(whole("org/app:1"), "docker.io/org/app:1");
        assert_eq!(whole("ghcr.io/org/app:v2"), "ghcr.io/org/app:v2");
        assert_eq!(whole("localhost:5000/app"), "localhost:5000/app:latest");
        let d = "sha256:".to_owned() + &"a".repeat(64);
        assert_eq!(
            whole(&format!("busybox@{d}")),
            format!("docker.io/library/busybox@{d}")
        );
        assert_eq!(
            ImageRef::parse("python").unwrap().registry_host(),
            "index.docker.io"
        );
    }

    #[test]
    fn bad_names_say_what_is_wrong() {
        for bad in ["", "Python:3", "a b", "x@sha256:abc", "repo:tag:more", "-x"] {
            let e = ImageRef::parse(bad).unwrap_err().to_string();
            assert!(e.contains("not a valid image reference"), "{bad}: {e}");
            assert!(e.contains("REPOSITORY[:TAG]"), "{bad}: {e}");
        }
        let e = ImageRef::parse("Python:3").unwrap_err().to_string();
        assert!(e.contains("lower case"), "{e}");
    }
}
