//! Re-signing an AWS Signature Version 4 request with the real secret access key.
//!
//! The sandbox signed the request with its placeholder as the key; the signature is
//! worthless and is replaced. What the client signed is kept: the same method, target and
//! header names (`SignedHeaders`), the same credential scope (region and service), the same
//! payload mode. The signature is computed by `aws-sigv4`, the AWS SDK for Rust's signer.
//! Anything that does not fit exactly is refused, never forwarded with the placeholder's
//! signature (which would only fail) or signed loosely.

use http::HeaderValue;
use http::header::{self, HeaderMap};
use standin_policy::secrets::{AwsSigV4, PayloadMode, SecretValue, SigV4Authorization};
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PercentEncodingMode, SignableBody, SignableRequest, SigningSettings, UriPathNormalizationMode,
    sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

const X_AMZ_DATE: &str = "x-amz-date";
const X_AMZ_CONTENT_SHA256: &str = "x-amz-content-sha256";

/// A SigV4 request found among the headers, to re-sign once the body is known.
#[derive(Debug)]
pub(crate) struct Resign {
    /// The secret it is signed for.
    pub(crate) secret: usize,
    /// What the client's `Authorization` said.
    pub(crate) auth: SigV4Authorization,
}

/// The request's method, authority as the client wrote it, and path and query.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestLine<'a> {
    pub(crate) method: &'a str,
    pub(crate) host: &'a str,
    pub(crate) target: &'a str,
}

/// What the signature covers of the body.
#[derive(Debug)]
pub(crate) enum Payload<'a> {
    /// The whole body, hashed here.
    Bytes(&'a [u8]),
    /// The client's mode, kept (from `x-amz-content-sha256`).
    AsDeclared,
}

impl Resign {
    /// Whether the body must be read whole before signing (no `x-amz-content-sha256`: the
    /// payload hash is part of the signature), or re-hashed because the boundary rewrites it.
    pub(crate) fn needs_body(headers: &HeaderMap) -> bool {
        PayloadMode::from_header(headers.get(X_AMZ_CONTENT_SHA256).map(HeaderValue::as_bytes))
            == PayloadMode::Absent
    }

    /// Check the request and sign it afresh with `value`, replacing `Authorization` and
    /// `X-Amz-Date` (and `x-amz-content-sha256` when the body was rehashed).
    pub(crate) fn apply(
        &self,
        aws: &AwsSigV4,
        value: &SecretValue,
        line: &RequestLine<'_>,
        headers: &mut HeaderMap,
        payload: Payload<'_>,
    ) -> Result<(), String> {
        let RequestLine {
            method,
            host,
            target,
        } = *line;
        let a = &self.auth;
        if !aws.allows_scope(&a.region, &a.service) {
            return Err(format!(
                "an AWS request for region {} and service {} is outside the credential's allowed regions and services",
                a.region, a.service
            ));
        }
        let date = headers
            .get(X_AMZ_DATE)
            .and_then(|v| v.to_str().ok())
            .ok_or("an AWS SigV4 request without X-Amz-Date")?;
        if !date.starts_with(&a.date) {
            return Err("the AWS credential scope's date differs from X-Amz-Date".into());
        }
        let mode =
            PayloadMode::from_header(headers.get(X_AMZ_CONTENT_SHA256).map(HeaderValue::as_bytes));
        let mut rehashed = None;
        let body = match (&mode, payload) {
            (PayloadMode::ChunkSigned(m), _) => {
                return Err(format!(
                    "a chunk-signed AWS upload ({m}) cannot be re-signed; configure the client for unsigned payloads over HTTPS (the AWS SDKs' default for S3)"
                ));
            }
            (PayloadMode::Unknown, _) => {
                return Err("an unknown x-amz-content-sha256 payload mode".into());
            }
            (PayloadMode::Hash(_), Payload::Bytes(b)) => {
                let h = sha256_hex(b);
                rehashed = Some(h.clone());
                SignableBody::Precomputed(h)
            }
            (PayloadMode::Hash(h), Payload::AsDeclared) => SignableBody::Precomputed(h.clone()),
            (PayloadMode::Absent, Payload::Bytes(b)) => SignableBody::Bytes(b),
            (PayloadMode::Absent, Payload::AsDeclared) => {
                return Err("an AWS request body that was not read whole".into());
            }
            (PayloadMode::Unsigned, _) => SignableBody::UnsignedPayload,
            (PayloadMode::StreamingUnsignedTrailer, _) => {
                SignableBody::StreamingUnsignedPayloadTrailer
            }
        };
        if let Some(h) = &rehashed {
            headers.insert(
                X_AMZ_CONTENT_SHA256,
                HeaderValue::from_str(h).map_err(|_| "the payload hash is not a header value")?,
            );
        }
        // The headers the client signed, as they are now (a session token's placeholder is
        // already replaced), minus those the signer writes itself.
        let mut signed: Vec<(&str, String)> = Vec::with_capacity(a.signed_headers.len());
        for name in &a.signed_headers {
            if name == X_AMZ_DATE || name == "authorization" {
                continue;
            }
            if name == "host" {
                signed.push(("host", host.to_owned()));
                continue;
            }
            let mut values = headers.get_all(name.as_str()).iter().peekable();
            if values.peek().is_none() {
                return Err(format!("the signed header {name} is missing"));
            }
            let joined = values
                .map(|v| v.to_str().map(str::trim))
                .collect::<Result<Vec<&str>, _>>()
                .map_err(|_| format!("the signed header {name} is not visible ASCII"))?
                .join(",");
            signed.push((name.as_str(), joined));
        }
        let secret = std::str::from_utf8(value.expose())
            .map_err(|_| "the AWS secret access key is not UTF-8")?;
        let identity: Identity =
            Credentials::new(&a.access_key_id, secret, None, None, "standin").into();
        let mut settings = SigningSettings::default();
        if is_s3(&a.service) {
            // S3 signs the path as sent, without normalising or re-encoding it.
            settings.percent_encoding_mode = PercentEncodingMode::Single;
            settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        }
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&a.region)
            .name(&a.service)
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| format!("AWS signing parameters: {e}"))?
            .into();
        let uri = format!("https://{host}{target}");
        let request = SignableRequest::new(
            method,
            uri,
            signed.iter().map(|(n, v)| (*n, v.as_str())),
            body,
        )
        .map_err(|e| format!("the AWS request cannot be signed: {e}"))?;
        let (instructions, _signature) = sign(request, &params)
            .map_err(|e| format!("the AWS request cannot be signed: {e}"))?
            .into_parts();
        for (name, value) in instructions.headers() {
            let mut v = HeaderValue::from_str(value)
                .map_err(|_| "the signer wrote a header value that is not valid")?;
            if name.eq_ignore_ascii_case(header::AUTHORIZATION.as_str()) {
                v.set_sensitive(true);
                headers.insert(header::AUTHORIZATION, v);
            } else if let Ok(n) = http::HeaderName::from_bytes(name.as_bytes()) {
                headers.insert(n, v);
            }
        }
        Ok(())
    }
}

fn is_s3(service: &str) -> bool {
    matches!(
        service,
        "s3" | "s3-object-lambda" | "s3express" | "s3-outposts"
    )
}

fn sha256_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = String::with_capacity(64);
    for b in d.as_ref() {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
    out
}
