//! The method names of each binding, and the SDK names they stand for.

/// The language whose names a recipe uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// The reference's camelCase names (`allowHost`, `secretEnvSimple`, …).
    JavaScript,
    /// The Rust SDK's snake_case names (`allow_host`, `secret_env`, …).
    Python,
}

impl Language {
    /// The SDK name for `method` called on the builder `on`.
    ///
    /// The reference's `NetworkBuilder.secretEnv` takes a placeholder (the SDK's
    /// `secret_env_with_placeholder`) and its `secretEnvSimple` does not (the SDK's
    /// `secret_env`); every other name is the snake_case of the camelCase one.
    pub(crate) fn sdk_name(self, on: &str, method: &str) -> String {
        match (self, on, method) {
            (Language::JavaScript, "NetworkBuilder", "secretEnv") => {
                "secret_env_with_placeholder".into()
            }
            (Language::JavaScript, "NetworkBuilder", "secretEnvSimple") => "secret_env".into(),
            (Language::JavaScript, _, m) => snake_case(m),
            (Language::Python, _, m) => m.to_owned(),
        }
    }

    /// A field name of the objects handed back (`SecretEntry`, events): camelCase for
    /// JavaScript, as the SDK writes it for Python.
    pub(crate) fn field(self, snake: &str) -> String {
        match self {
            Language::JavaScript => camel_case(snake),
            Language::Python => snake.to_owned(),
        }
    }
}

fn snake_case(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn camel_case(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_between_the_languages() {
        let js = Language::JavaScript;
        assert_eq!(
            js.sdk_name("SecretBuilder", "allowHostPattern"),
            "allow_host_pattern"
        );
        assert_eq!(
            js.sdk_name("NetworkBuilder", "secretEnv"),
            "secret_env_with_placeholder"
        );
        assert_eq!(
            js.sdk_name("NetworkBuilder", "secretEnvSimple"),
            "secret_env"
        );
        assert_eq!(js.sdk_name("SandboxBuilder", "secretEnv"), "secret_env");
        assert_eq!(
            Language::Python.sdk_name("NetworkBuilder", "secret_env"),
            "secret_env"
        );
        assert_eq!(js.field("require_tls_identity"), "requireTlsIdentity");
        assert_eq!(Language::Python.field("allow_any_host"), "allow_any_host");
    }
}
