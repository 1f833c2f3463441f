//! A bearer-token server for the test registry: the registry answers 401 with
//! `WWW-Authenticate: Bearer realm=…,service=…,scope=…`, the client fetches a token from the
//! realm (sending its credentials as Basic auth), then retries with `Authorization: Bearer`.
//!
//! The token is a JWT (ES256) signed here with a fresh P-256 key whose self-signed
//! certificate is the registry's `rootcertbundle` and rides in the token's `x5c` header, as
//! distribution's token authentication verifies it. It grants pull and push on every
//! repository the tests use. The server (Python's standard library over TLS from the test
//! CA) returns that token and logs each request line and its Authorization header, so a test
//! can check what the client asked for and which credentials it sent.

use base64::Engine;
use std::path::Path;
use std::process::{Child, Command};

pub(crate) const SERVICE: &str = "registry.test";
pub(crate) const ISSUER: &str = "standin-test-tokens";
const REPOSITORIES: &[&str] = &["bb", "curl", "child"];

pub(crate) struct Signer {
    key: rcgen::KeyPair,
    cert: rcgen::Certificate,
}

impl Signer {
    pub(crate) fn new() -> Signer {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "standin test token signer");
        let cert = params.self_signed(&key).unwrap();
        Signer { key, cert }
    }

    pub(crate) fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    /// A token valid for an hour, for every test repository.
    pub(crate) fn token(&self) -> String {
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let std = base64::engine::general_purpose::STANDARD;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = serde_json::json!({
            "typ": "JWT",
            "alg": "ES256",
            "x5c": [std.encode(self.cert.der())],
        });
        let access: Vec<_> = REPOSITORIES
            .iter()
            .map(|r| serde_json::json!({"type": "repository", "name": r, "actions": ["pull", "push"]}))
            .collect();
        let claims = serde_json::json!({
            "iss": ISSUER,
            "sub": "ci",
            "aud": SERVICE,
            "exp": now + 3600,
            "nbf": now - 60,
            "iat": now - 60,
            "jti": format!("standin-test-{now}"),
            "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            url.encode(header.to_string()),
            url.encode(claims.to_string())
        );
        let rng = ring::rand::SystemRandom::new();
        let pair = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &self.key.serialize_der(),
            &rng,
        )
        .unwrap();
        let signature = pair.sign(&rng, signing_input.as_bytes()).unwrap();
        format!("{signing_input}.{}", url.encode(signature.as_ref()))
    }
}

/// Serve `dir/token.json` at `https://registry.test:5001/token`, logging to
/// `dir/token-requests.log`; returns once it listens.
pub(crate) fn serve(net: &crate::support::FakeInternet, dir: &Path, pki: &Path) -> Child {
    let script = r#"
import http.server, ssl, sys
body = open(sys.argv[1], 'rb').read()
log = open(sys.argv[2], 'a')
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        log.write('%s auth=%s\n' % (self.path, self.headers.get('Authorization', '-')))
        log.flush()
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
srv = http.server.HTTPServer((sys.argv[3], 5001), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[4], sys.argv[5])
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print('ready', flush=True)
srv.serve_forever()
"#;
    let mut child = Command::new("ip")
        .args(["netns", "exec", &net.inet, "/usr/bin/python3", "-c", script])
        .arg(dir.join("token.json"))
        .arg(dir.join("token-requests.log"))
        .arg(crate::support::IMAGE_REGISTRY_V4)
        .arg(pki.join("leaf.pem"))
        .arg(pki.join("leaf.key"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 token server");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "ready", "the token server did not start");
    child
}
