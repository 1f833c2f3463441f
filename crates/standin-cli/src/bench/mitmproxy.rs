//! The other reference point: mitmproxy (PyPI) as a reverse proxy that re-encrypts and injects
//! the credential (`modify_headers`), verifying the upstream against the fake internet's CA,
//! when `mitmdump` is installed. It resolves names itself, so it runs in a private mount
//! namespace whose `/etc/hosts` names the upstream.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where mitmproxy listens (the bench's own namespace).
pub(super) const LISTEN: (&str, u16) = ("192.0.2.2", 8444);

/// A running mitmdump.
pub(super) struct Mitmproxy {
    child: Child,
    dir: tempfile::TempDir,
}

impl Mitmproxy {
    /// Start mitmdump in front of `api.openai.com` at `upstream_ip`; `None` when it is not
    /// installed.
    pub(super) fn start(
        upstream_ip: &str,
        upstream_ca: &Path,
        value: &str,
    ) -> anyhow::Result<Option<Mitmproxy>> {
        let Some(bin) = ["/usr/local/bin/mitmdump", "/usr/bin/mitmdump"]
            .into_iter()
            .find(|p| Path::new(p).exists())
        else {
            return Ok(None);
        };
        let dir = tempfile::tempdir()?;
        let hosts = dir.path().join("hosts");
        std::fs::write(
            &hosts,
            format!("127.0.0.1 localhost\n{upstream_ip} api.openai.com\n"),
        )?;
        let script = format!(
            "mount --bind {hosts} /etc/hosts && exec {bin} --quiet --mode reverse:https://api.openai.com:443 \
             --listen-host {host} --listen-port {port} --set confdir={conf} \
             --set ssl_verify_upstream_trusted_ca={ca} --set keep_host_header=true \
             --set 'modify_headers=/~q/Authorization/Bearer {value}'",
            hosts = hosts.display(),
            host = LISTEN.0,
            port = LISTEN.1,
            conf = dir.path().display(),
            ca = upstream_ca.display(),
        );
        let child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting mitmdump")?;
        let m = Mitmproxy { child, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(LISTEN).is_err() || !m.ca().exists() {
            if Instant::now() > deadline {
                bail!(
                    "mitmdump did not start listening on {}:{}",
                    LISTEN.0,
                    LISTEN.1
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Some(m))
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("mitmproxy-ca-cert.pem")
    }

    /// Client options that go through this mitmproxy.
    pub(super) fn client_args(&self) -> Vec<String> {
        vec![
            "--addr".into(),
            LISTEN.0.into(),
            "--port".into(),
            LISTEN.1.to_string(),
            "--ca".into(),
            self.ca().display().to_string(),
        ]
    }
}

impl Drop for Mitmproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
