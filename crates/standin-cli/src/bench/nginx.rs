//! The reference point: the same workloads through nginx as a TLS re-encrypting reverse proxy
//! that injects the credential itself (`proxy_set_header Authorization`), with upstream
//! keep-alive and certificate verification, when nginx is installed.

use anyhow::Context;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where nginx listens (the bench's own namespace).
pub(super) const LISTEN: &str = "192.0.2.2:8443";

/// A running nginx.
pub(super) struct Nginx {
    child: Child,
    _dir: tempfile::TempDir,
    ca: PathBuf,
}

impl Nginx {
    /// Start nginx in front of `upstream` (verified with `upstream_ca`), adding `value` as the
    /// bearer token; `None` when nginx is not installed.
    pub(super) fn start(
        upstream: &str,
        upstream_ca: &Path,
        value: &str,
    ) -> anyhow::Result<Option<Nginx>> {
        let Some(bin) = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|p| Path::new(p).exists())
        else {
            return Ok(None);
        };
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
        let leaf_key = KeyPair::generate()?;
        let leaf =
            CertificateParams::new(vec!["api.openai.com".to_owned()])?.signed_by(&leaf_key, &ca)?;
        std::fs::write(d.join("ca.pem"), ca.pem())?;
        std::fs::write(d.join("leaf.pem"), leaf.pem())?;
        std::fs::write(d.join("leaf.key"), leaf_key.serialize_pem())?;
        let conf = format!(
            r#"daemon off;
worker_processes auto;
pid {d}/nginx.pid;
error_log {d}/error.log error;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  keepalive_requests 10000000;
  client_max_body_size 0;
  upstream api {{ server {upstream}; keepalive 64; keepalive_requests 10000000; }}
  server {{
    listen {LISTEN} ssl;
    ssl_certificate {d}/leaf.pem;
    ssl_certificate_key {d}/leaf.key;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    location / {{
      proxy_pass https://api;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host api.openai.com;
      proxy_set_header Authorization "Bearer {value}";
      proxy_ssl_server_name on;
      proxy_ssl_name api.openai.com;
      proxy_ssl_verify on;
      proxy_ssl_trusted_certificate {ca};
      proxy_ssl_session_reuse on;
      proxy_request_buffering off;
      proxy_buffering off;
    }}
  }}
}}
"#,
            d = d.display(),
            ca = upstream_ca.display()
        );
        std::fs::write(d.join("nginx.conf"), conf)?;
        let child = Command::new(bin)
            .args(["-p", &d.display().to_string(), "-c"])
            .arg(d.join("nginx.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting nginx")?;
        let n = Nginx {
            child,
            ca: d.join("ca.pem"),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(LISTEN).is_err() {
            if Instant::now() > deadline {
                anyhow::bail!("nginx did not start listening on {LISTEN}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Some(n))
    }

    /// Client options that go through this nginx.
    pub(super) fn client_args(&self) -> Vec<String> {
        vec![
            "--addr".into(),
            "192.0.2.2".into(),
            "--port".into(),
            "8443".into(),
            "--ca".into(),
            self.ca.display().to_string(),
        ]
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its workers (SIGKILL would orphan them).
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
