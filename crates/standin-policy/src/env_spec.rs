//! The `--env` grammar and the rules for environment variable names.
//!
//! `K=V` sets `K` to `V` in the sandbox; a bare `K` copies the host's value of `K` (an explicit,
//! per-variable opt-in: the sandbox never inherits the host environment wholesale).

use thiserror::Error;

/// One `--env` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvSpec {
    /// `K=V`: set `K` to `V`.
    Set {
        /// Variable name.
        name: String,
        /// Value (may be empty).
        value: String,
    },
    /// `K`: copy the host's value of `K`, if it has one.
    Inherit {
        /// Variable name.
        name: String,
    },
}

/// Why an `--env` argument or variable name was rejected.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum EnvSpecError {
    /// The name part is empty (`=V`).
    #[error("environment variable name is empty in {0:?}; expected NAME=VALUE or NAME")]
    EmptyName(String),
    /// A name given on its own contains `=`.
    #[error("environment variable name {0:?} contains '='; names cannot contain '='")]
    Equals(String),
    /// A NUL byte in the name or value.
    #[error("environment variable {0:?} contains a NUL byte, which cannot be passed to a process")]
    Nul(String),
}

impl EnvSpec {
    /// Parse one `--env` argument.
    pub fn parse(arg: &str) -> Result<EnvSpec, EnvSpecError> {
        let (name, value) = match arg.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (arg, None),
        };
        validate_name(name).map_err(|e| match e {
            EnvSpecError::EmptyName(_) => EnvSpecError::EmptyName(arg.to_owned()),
            other => other,
        })?;
        match value {
            Some(v) if v.contains('\0') => Err(EnvSpecError::Nul(name.to_owned())),
            Some(v) => Ok(EnvSpec::Set {
                name: name.to_owned(),
                value: v.to_owned(),
            }),
            None => Ok(EnvSpec::Inherit {
                name: name.to_owned(),
            }),
        }
    }
}

/// Check a variable name: non-empty, no `=` and no NUL. Shell-identifier syntax is not
/// required, matching what `execve` accepts.
pub fn validate_name(name: &str) -> Result<(), EnvSpecError> {
    if name.is_empty() {
        return Err(EnvSpecError::EmptyName(name.to_owned()));
    }
    if name.contains('\0') {
        return Err(EnvSpecError::Nul(name.to_owned()));
    }
    Ok(())
}

/// Like [`validate_name`], for names given on their own (not split from `K=V`), which must not
/// contain `=` either.
pub fn validate_name_strict(name: &str) -> Result<(), EnvSpecError> {
    validate_name(name)?;
    if name.contains('=') {
        return Err(EnvSpecError::Equals(name.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_set_and_inherit() {
        assert_eq!(
            EnvSpec::parse("A=b=c").unwrap(),
            EnvSpec::Set {
                name: "A".into(),
                value: "b=c".into()
            }
        );
        assert_eq!(
            EnvSpec::parse("EMPTY=").unwrap(),
            EnvSpec::Set {
                name: "EMPTY".into(),
                value: String::new()
            }
        );
        assert_eq!(
            EnvSpec::parse("HOME").unwrap(),
            EnvSpec::Inherit {
                name: "HOME".into()
            }
        );
    }

    #[test]
    fn rejects_bad_names() {
        assert!(matches!(
            EnvSpec::parse("=x"),
            Err(EnvSpecError::EmptyName(_))
        ));
        assert!(matches!(
            EnvSpec::parse(""),
            Err(EnvSpecError::EmptyName(_))
        ));
        assert!(matches!(EnvSpec::parse("A\0=x"), Err(EnvSpecError::Nul(_))));
        assert!(matches!(EnvSpec::parse("A=x\0"), Err(EnvSpecError::Nul(_))));
        assert!(validate_name_strict("A=B").is_err());
        assert!(validate_name_strict("my-var.1").is_ok());
    }
}
