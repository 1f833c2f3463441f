//! The `--mount HOST:GUEST[:ro]` grammar.

use std::path::{Component, Path, PathBuf};
use thiserror::Error;

/// One explicit bind mount from the host into the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MountSpec {
    /// Absolute host path.
    pub host: PathBuf,
    /// Absolute path inside the sandbox.
    pub guest: PathBuf,
    /// Mount read-only (recursively).
    pub read_only: bool,
}

/// Guest paths that the runtime owns and a user mount may not cover or sit under.
pub const RESERVED_GUEST_PATHS: &[&str] = &["/proc", "/dev", "/etc", "/usr"];

/// Why a `--mount` argument was rejected.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum MountSpecError {
    /// Not of the form `HOST:GUEST` or `HOST:GUEST:ro|rw`.
    #[error("mount {0:?} is not HOST:GUEST[:ro|:rw]")]
    Syntax(String),
    /// A path is relative, or contains `..`.
    #[error("mount {spec:?}: {which} path {path:?} must be absolute and must not contain '..'")]
    NotAbsolute {
        /// The whole argument.
        spec: String,
        /// "host" or "guest".
        which: &'static str,
        /// The offending path.
        path: String,
    },
    /// The guest path is `/` or lies under a path the runtime manages.
    #[error(
        "mount {spec:?}: guest path {guest:?} is reserved; choose a path outside / {reserved:?}"
    )]
    Reserved {
        /// The whole argument.
        spec: String,
        /// The guest path.
        guest: String,
        /// The reserved list.
        reserved: &'static [&'static str],
    },
}

impl MountSpec {
    /// Parse `HOST:GUEST`, `HOST:GUEST:ro` or `HOST:GUEST:rw`. Paths may not contain `:`.
    pub fn parse(spec: &str) -> Result<MountSpec, MountSpecError> {
        let parts: Vec<&str> = spec.split(':').collect();
        let (host, guest, read_only) = match parts.as_slice() {
            [h, g] => (*h, *g, false),
            [h, g, "ro"] => (*h, *g, true),
            [h, g, "rw"] => (*h, *g, false),
            _ => return Err(MountSpecError::Syntax(spec.to_owned())),
        };
        for (which, p) in [("host", host), ("guest", guest)] {
            if !is_clean_absolute(Path::new(p)) {
                return Err(MountSpecError::NotAbsolute {
                    spec: spec.to_owned(),
                    which,
                    path: p.to_owned(),
                });
            }
        }
        let guest_path = Path::new(guest);
        let reserved = guest_path == Path::new("/")
            || RESERVED_GUEST_PATHS
                .iter()
                .any(|r| guest_path.starts_with(r));
        if reserved {
            return Err(MountSpecError::Reserved {
                spec: spec.to_owned(),
                guest: guest.to_owned(),
                reserved: RESERVED_GUEST_PATHS,
            });
        }
        Ok(MountSpec {
            host: PathBuf::from(host),
            guest: PathBuf::from(guest),
            read_only,
        })
    }
}

fn is_clean_absolute(p: &Path) -> bool {
    p.is_absolute()
        && p.components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_modes() {
        let m = MountSpec::parse("/srv/data:/data:ro").unwrap();
        assert_eq!(m.host, PathBuf::from("/srv/data"));
        assert_eq!(m.guest, PathBuf::from("/data"));
        assert!(m.read_only);
        assert!(!MountSpec::parse("/a:/b").unwrap().read_only);
        assert!(!MountSpec::parse("/a:/b:rw").unwrap().read_only);
    }

    #[test]
    fn rejects_bad_specs() {
        assert!(matches!(
            MountSpec::parse("/a"),
            Err(MountSpecError::Syntax(_))
        ));
        assert!(matches!(
            MountSpec::parse("/a:/b:rx"),
            Err(MountSpecError::Syntax(_))
        ));
        assert!(matches!(
            MountSpec::parse("a:/b"),
            Err(MountSpecError::NotAbsolute { which: "host", .. })
        ));
        assert!(matches!(
            MountSpec::parse("/a:/b/../etc"),
            Err(MountSpecError::NotAbsolute { which: "guest", .. })
        ));
        for g in ["/", "/proc", "/dev/x", "/etc", "/usr/lib"] {
            assert!(
                matches!(
                    MountSpec::parse(&format!("/a:{g}")),
                    Err(MountSpecError::Reserved { .. })
                ),
                "{g}"
            );
        }
        assert!(MountSpec::parse("/a:/devices").is_ok());
    }
}
