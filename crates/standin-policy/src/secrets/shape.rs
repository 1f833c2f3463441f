//! Token-shaped placeholders: for clients that check a token's format before sending it
//! (`gh` wants `ghp_…`/`github_pat_…`, Slack SDKs `xoxb-…`), a placeholder that keeps the
//! value's public prefix and its length, with a body of letters and digits that says what it
//! is: `ghp_MSBGITHUBTOKENxxxxxxxxxxxxxxxxxxx`.
//!
//! What it reveals inside the sandbox: the prefix (the kind of token, which its vendor
//! documents as public) and the value's length. Nothing else of the value.

/// Known public prefixes, longest first where one extends another.
const KNOWN_PREFIXES: &[&str] = &[
    "github_pat_",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "glpat-",
    "xoxb-",
    "xoxp-",
    "xoxa-",
    "xoxe-",
    "xapp-",
    "sk-ant-api03-",
    "sk-ant-",
    "sk-proj-",
    "sk_live_",
    "sk_test_",
    "rk_live_",
    "rk_test_",
    "npm_",
    "pypi-",
    "hf_",
    "AKIA",
    "ASIA",
    "sk-",
];

/// Shortest body after the prefix.
pub const MIN_SHAPED_BODY: usize = 16;
/// Longest shaped placeholder.
pub const MAX_SHAPED_LEN: usize = 256;

/// The public prefix of `value`: a known token prefix, or else a leading run of 1 to 8
/// lower-case letters followed by `_` or `-` (`abc_`, `key-`). Empty if there is none.
pub fn public_prefix(value: &[u8]) -> &str {
    if let Some(p) = KNOWN_PREFIXES
        .iter()
        .find(|p| value.starts_with(p.as_bytes()))
    {
        return p;
    }
    let letters = value
        .iter()
        .take(9)
        .take_while(|b| b.is_ascii_lowercase())
        .count();
    if (1..=8).contains(&letters) && matches!(value.get(letters), Some(b'_' | b'-')) {
        // ASCII by construction.
        return std::str::from_utf8(&value[..=letters]).unwrap_or("");
    }
    ""
}

/// The token-shaped placeholder of secret `env` whose value is `value`: its public prefix,
/// then `MSB` and the env name's letters and digits (upper-cased), padded with `x` to the
/// value's length (at least [`MIN_SHAPED_BODY`] characters after the prefix, at most
/// [`MAX_SHAPED_LEN`] in all).
pub fn shaped_placeholder(env: &str, value: &[u8]) -> String {
    let prefix = public_prefix(value);
    let len = value
        .len()
        .max(prefix.len() + MIN_SHAPED_BODY)
        .min(MAX_SHAPED_LEN);
    let mut out = String::with_capacity(len);
    out.push_str(prefix);
    out.push_str("MSB");
    out.extend(
        env.chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_uppercase()),
    );
    out.truncate(len);
    while out.len() < len {
        out.push('x');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_prefix_and_length() {
        let v = b"ghp_AbCdEf0123456789AbCdEf0123456789ABCD";
        let p = shaped_placeholder("GITHUB_TOKEN", v);
        assert_eq!(p, "ghp_MSBGITHUBTOKENxxxxxxxxxxxxxxxxxxxxxx");
        assert_eq!(p.len(), v.len());
        assert!(
            shaped_placeholder(
                "SLACK_BOT_TOKEN",
                b"xoxb-1234-5678-abcdefghijklmnopqrstuvwx"
            )
            .starts_with("xoxb-MSBSLACKBOTTOKEN")
        );
        assert!(shaped_placeholder("K", b"github_pat_11AAAA").starts_with("github_pat_MSBK"));
        assert!(shaped_placeholder("K", b"sk-proj-abcdef").starts_with("sk-proj-MSBK"));
        assert_eq!(public_prefix(b"abc_123"), "abc_");
        assert_eq!(public_prefix(b"toolongprefix_123"), "");
        assert_eq!(public_prefix(b"Secret"), "");
        // Short values still get a body of MIN_SHAPED_BODY; long env names are cut.
        assert_eq!(shaped_placeholder("K", b"x").len(), MIN_SHAPED_BODY);
        let long = "A".repeat(400);
        assert_eq!(shaped_placeholder(&long, b"v").len(), MIN_SHAPED_BODY);
        assert!(shaped_placeholder("K", &[b'a'; 1000]).len() <= MAX_SHAPED_LEN);
    }
}
