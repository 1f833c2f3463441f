//! Secrets: placeholders in the sandbox, real values only on the host.
//!
//! - [`value`]: [`SecretValue`], the zeroized, never-printed real value;
//! - [`aws`]: AWS SigV4 credentials (re-signed, never substituted) and reading what a
//!   client signed;
//! - [`shape`]: token-shaped placeholders (`ghp_MSB…`) for clients that check formats;
//! - [`entry`]: [`SecretEntry`] and [`SecretInjection`], with the reference SDK's fields,
//!   defaults and validation;
//! - [`violation`]: [`ViolationAction`] and [`ViolationPolicy`] (block, block-and-log,
//!   block-and-terminate, passthrough hosts);
//! - [`set`]: [`SecretSet`] and [`Role`]: what each placeholder becomes for one destination;
//! - [`decode`] and [`scan`]: finding placeholders (raw, percent-encoded, JSON-escaped) in
//!   streams that arrive in pieces, and replacing them;
//! - [`rewrite`]: substitution in header values and query strings;
//! - [`basic`]: Basic credentials, read leniently to find placeholders and strictly to
//!   substitute them;
//! - [`dns_name`]: placeholders (raw, hex, base32, base64) smuggled in DNS query names;
//! - [`reflect`]: the reverse, replacing values echoed back in responses by placeholders.

pub mod aws;
pub mod basic;
pub mod decode;
pub mod dns_name;
pub mod entry;
pub mod reflect;
mod reflect_json;
pub mod rewrite;
pub mod scan;
pub mod set;
pub mod shape;
pub mod value;
pub mod violation;

pub use aws::{AwsError, AwsSigV4, PayloadMode, SigV4Authorization};
pub use decode::Form;
pub use entry::{
    MAX_PLACEHOLDER_BYTES, SecretEntry, SecretError, SecretInjection, default_placeholder,
    validate_env_name,
};
pub use reflect::{Scrubber, SentForm};
pub use scan::{Hit, Patterns, StreamScanner, StreamSubstituter};
pub use set::{Destination, Role, SecretSet};
pub use shape::shaped_placeholder;
pub use value::SecretValue;
pub use violation::{Refusal, ViolationAction, ViolationPolicy};
