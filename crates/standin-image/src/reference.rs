//! Image references, normalised as Docker does: `python:3.12` is
//! `docker.io/library/python:3.12`, no tag means `latest`, and a digest pins the content.
//!
//! The grammar is distribution's (`reference := name [":" tag] ["@" digest]`), parsed by hand
//! here rather than with `oci_spec`'s `Reference::try_from`: that one compiles a large regular
//! expression on first use, which cost about 50 ms of every `standin run --image` start (see
//! docs/PERFORMANCE.md). The parsed parts are handed to `Reference`'s plain constructors, so
//! the registry client sees exactly the type it expects. The grammar is stricter than the
//! regex in one place, as Docker is: a repository is checked after the registry has been split
//! off, so `Foo/bar` (Docker Hub, upper case) is refused instead of accepted.

use crate::error::ImageError;
use oci_client::Reference;
use std::fmt;

/// Longest repository path the distribution spec allows.
pub(crate) const MAX_REPOSITORY: usize = 255;
/// Longest tag the distribution spec allows.
pub(crate) const MAX_TAG: usize = 128;
/// Longest reference accepted at all (registry, repository, tag and a sha512 digest fit).
pub(crate) const MAX_REFERENCE: usize = 1024;

const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_LEGACY: &str = "index.docker.io";
const OFFICIAL_NAMESPACE: &str = "library";
const DEFAULT_TAG: &str = "latest";

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    inner: Reference,
}

impl ImageRef {
    /// Parse `name`. Errors say what a reference looks like.
    pub fn parse(name: &str) -> Result<ImageRef, ImageError> {
        let bad = |reason: &str| ImageError::BadReference {
            name: name.to_owned(),
            reason: reason.to_owned(),
        };
        let parts = split(name.trim()).map_err(bad)?;
        let inner = match (parts.tag, parts.digest) {
            (Some(tag), Some(digest)) => Reference::with_tag_and_digest(
                parts.registry,
                parts.repository,
                tag.to_owned(),
                digest.to_owned(),
            ),
            (None, Some(digest)) => {
                Reference::with_digest(parts.registry, parts.repository, digest.to_owned())
            }
            (tag, None) => Reference::with_tag(
                parts.registry,
                parts.repository,
                tag.unwrap_or(DEFAULT_TAG).to_owned(),
            ),
        };
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

/// The parts of a reference, normalised.
struct Parts<'a> {
    registry: String,
    repository: String,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
}

/// Split and check `s`; the error is the reason, in words.
fn split(s: &str) -> Result<Parts<'_>, &'static str> {
    if s.is_empty() {
        return Err("it is empty");
    }
    if s.len() > MAX_REFERENCE {
        return Err("it is longer than any registry accepts");
    }
    let (rest, digest) = match s.split_once('@') {
        Some((rest, digest)) => (rest, Some(check_digest(digest)?)),
        None => (s, None),
    };
    // A ':' after the last '/' starts the tag; one before it belongs to the registry's port.
    let (name, tag) = match rest.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, Some(check_tag(tag)?)),
        _ => (rest, None),
    };
    // Docker's rule: the first component names a registry only when it looks like a host
    // (a dot, a port, or `localhost`); otherwise the whole name is a Docker Hub repository.
    let (registry, path) = match name.split_once('/') {
        Some((first, path))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            check_registry(first)?;
            (first, path)
        }
        _ => (DOCKER_HUB, name),
    };
    check_repository(path)?;
    let registry = if registry == DOCKER_HUB_LEGACY {
        DOCKER_HUB
    } else {
        registry
    };
    let repository = if registry == DOCKER_HUB && !path.contains('/') {
        format!("{OFFICIAL_NAMESPACE}/{path}")
    } else {
        path.to_owned()
    };
    if repository.len() > MAX_REPOSITORY {
        return Err("the repository name is longer than 255 characters");
    }
    Ok(Parts {
        registry: registry.to_owned(),
        repository,
        tag,
        digest,
    })
}

/// `host[:port]`, the host made of DNS labels (letters, digits, inner hyphens).
fn check_registry(registry: &str) -> Result<(), &'static str> {
    const WHY: &str = "the registry must be HOST or HOST:PORT";
    let (host, port) = match registry.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (registry, None),
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if !host.split('.').all(label_ok) {
        return Err(WHY);
    }
    match port {
        Some(p) if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) => Err(WHY),
        _ => Ok(()),
    }
}

/// Path components of lower-case letters and digits, joined inside by `.`, `_`, `__` or
/// any run of `-`.
fn check_repository(path: &str) -> Result<(), &'static str> {
    if path.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err("repository names must be lower case");
    }
    for component in path.split('/') {
        let bytes = component.as_bytes();
        let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
            return Err("the repository has an empty path component");
        };
        if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
            return Err("repository path components start and end with a letter or digit");
        }
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if b.is_ascii_lowercase() || b.is_ascii_digit() {
                i += 1;
                continue;
            }
            // A separator: `.`, `_`, `__` or a run of `-`, always followed by a letter or digit
            // (the last byte is one, so the run ends inside the component).
            let run_end = match b {
                b'.' => i + 1,
                b'_' if bytes.get(i + 1) == Some(&b'_') => i + 2,
                b'_' => i + 1,
                b'-' => i + bytes[i..].iter().take_while(|&&c| c == b'-').count(),
                _ => return Err("repository names use only a-z, 0-9, '.', '_', '-' and '/'"),
            };
            if !bytes
                .get(run_end)
                .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            {
                return Err("repository names use only a-z, 0-9, '.', '_', '-' and '/'");
            }
            i = run_end;
        }
    }
    Ok(())
}

/// A word character, then up to 127 of word characters, `.` and `-`.
fn check_tag(tag: &str) -> Result<&str, &'static str> {
    const WHY: &str =
        "a tag is up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'";
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    match tag.as_bytes().split_first() {
        Some((&first, rest))
            if word(first)
                && rest.len() < MAX_TAG
                && rest.iter().all(|&b| word(b) || b == b'.' || b == b'-') =>
        {
            Ok(tag)
        }
        _ => Err(WHY),
    }
}

/// `sha256:` and 64 hex digits (or sha384/96, sha512/128), as registries address content.
fn check_digest(digest: &str) -> Result<&str, &'static str> {
    let (algorithm, hex) = digest
        .split_once(':')
        .ok_or("a digest is ALGORITHM:HEX, e.g. sha256:<64 hex digits>")?;
    let want = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err("the digest algorithm must be sha256, sha384 or sha512"),
    };
    if hex.len() != want || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err("the digest's hex part has the wrong length or characters");
    }
    Ok(digest)
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

    /// The cases distribution's own grammar tests use, normalised as Docker prints them.
    #[test]
    fn grammar_matches_docker() {
        let h = "f".repeat(64);
        let h512 = "f".repeat(128);
        for (input, registry, repository, tag, digest) in [
            (
                "test.com:tag",
                "docker.io",
                "library/test.com",
                Some("tag"),
                None,
            ),
            (
                "test.com:5000",
                "docker.io",
                "library/test.com",
                Some("5000"),
                None,
            ),
            ("test.com/repo:tag", "test.com", "repo", Some("tag"), None),
            ("test:5000/repo", "test:5000", "repo", Some("latest"), None),
            ("localhost/repo", "localhost", "repo", Some("latest"), None),
            (
                "index.docker.io/busybox",
                "docker.io",
                "library/busybox",
                Some("latest"),
                None,
            ),
            (
                "lowercase:Uppercase",
                "docker.io",
                "library/lowercase",
                Some("Uppercase"),
                None,
            ),
            (
                "sub-dom1.foo.com/bar/baz/quux:some-long-tag",
                "sub-dom1.foo.com",
                "bar/baz/quux",
                Some("some-long-tag"),
                None,
            ),
            (
                "b.gcr.io/test.example.com/my-app:test.example.com",
                "b.gcr.io",
                "test.example.com/my-app",
                Some("test.example.com"),
                None,
            ),
            (
                "xn--n3h.com/myimage:xn--n3h.com",
                "xn--n3h.com",
                "myimage",
                Some("xn--n3h.com"),
                None,
            ),
            (
                "foo/foo_bar.com:8080",
                "docker.io",
                "foo/foo_bar.com",
                Some("8080"),
                None,
            ),
            (
                "a/b__c/d---e.f_g",
                "docker.io",
                "a/b__c/d---e.f_g",
                Some("latest"),
                None,
            ),
            (
                &format!("test:5000/repo@sha256:{h}"),
                "test:5000",
                "repo",
                None,
                Some(format!("sha256:{h}")),
            ),
            (
                &format!("test:5000/repo:tag@sha256:{h}"),
                "test:5000",
                "repo",
                Some("tag"),
                Some(format!("sha256:{h}")),
            ),
            (
                &format!("x.io/img:t@sha512:{h512}"),
                "x.io",
                "img",
                Some("t"),
                Some(format!("sha512:{h512}")),
            ),
        ] {
            let r = ImageRef::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.registry(), registry, "{input}");
            assert_eq!(r.repository(), repository, "{input}");
            assert_eq!(r.tag(), tag, "{input}");
            assert_eq!(r.digest(), digest.as_deref(), "{input}");
        }
        let long_tag = format!("app:{}", "t".repeat(MAX_TAG));
        let too_long_tag = format!("app:{}", "t".repeat(MAX_TAG + 1));
        assert!(ImageRef::parse(&long_tag).is_ok());
        let long_repo = format!("x.io/{}", "a".repeat(MAX_REPOSITORY + 1));
        for bad in [
            too_long_tag.as_str(),
            long_repo.as_str(),
            "Foo/bar",
            "a//b",
            "a/",
            "/a",
            "a_",
            "a___b",
            "a..b",
            "a.-b",
            "-a.io/x",
            "a-.io/x",
            "a.io:/x",
            "a.io:5x/x",
            "app:.tag",
            "app:-tag",
            "app:",
            "app@",
            "app@sha256:ABC",
            &format!("app@md5:{h}"),
            &format!("app@sha256:{}", "F".repeat(64)),
            "app@sha256:fff",
            "app:t@x@y",
            "ap p",
            "app\u{e9}",
        ] {
            let e = ImageRef::parse(bad);
            assert!(e.is_err(), "{bad:?} parsed as {:?}", e.unwrap().to_string());
        }
    }
}
