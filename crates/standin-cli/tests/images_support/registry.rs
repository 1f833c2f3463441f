//! The test registry and the images pushed to it, shared by the image tests and the SDK
//! tests: Debian's `docker-registry` in the fake internet (TLS from the test CA, htpasswd
//! Basic auth or a bearer-token server), images made offline with `umoci` and pushed with
//! `skopeo` from the client namespace.
#![allow(dead_code, reason = "each test binary uses only some of the helpers")]

use crate::support::{FakeInternet, IMAGE_REGISTRY_V4, report, stderr, stdout};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};

pub(crate) const USER: &str = "ci";
pub(crate) const PASSWORD: &str = "correct-horse";
/// Port 5000: the fake internet's own HTTPS servers listen on 443.
pub(crate) const REGISTRY: &str = "registry.test:5000";

/// A registry in the fake internet, with the files a client needs.
pub(crate) struct Registry {
    children: Vec<Child>,
    pub(crate) dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// How the test registry authenticates clients.
pub(crate) enum Auth {
    /// htpasswd Basic auth on the registry itself.
    Basic,
    /// The bearer-token flow: the registry sends clients to a token server
    /// (`https://registry.test:5001/token`) and accepts the tokens it signs.
    Token,
}

impl Registry {
    pub(crate) fn start(net: &FakeInternet) -> Registry {
        Registry::start_with(net, Auth::Basic)
    }

    pub(crate) fn start_with(net: &FakeInternet, auth: Auth) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let pki = net.pki_dir();
        let mut children = Vec::new();
        let auth_config = match auth {
            Auth::Basic => {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", USER, PASSWORD])
                    .output()
                    .expect("htpasswd (apache2-utils)");
                assert!(out.status.success());
                std::fs::write(d.join("htpasswd"), &out.stdout).unwrap();
                format!(
                    "  htpasswd:\n    realm: standin-test\n    path: {}\n",
                    d.join("htpasswd").display()
                )
            }
            Auth::Token => {
                let signer = crate::token::Signer::new();
                std::fs::write(d.join("token-signer.pem"), signer.cert_pem()).unwrap();
                std::fs::write(
                    d.join("token.json"),
                    format!(r#"{{"token":"{0}","access_token":"{0}"}}"#, signer.token()),
                )
                .unwrap();
                children.push(crate::token::serve(net, d, &pki));
                format!(
                    "  token:\n    realm: https://registry.test:5001/token\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                    crate::token::SERVICE,
                    crate::token::ISSUER,
                    d.join("token-signer.pem").display()
                )
            }
        };
        std::fs::write(
            d.join("config.yml"),
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {data}\n  delete:\n    enabled: true\nhttp:\n  addr: {IMAGE_REGISTRY_V4}:5000\n  tls:\n    certificate: {cert}\n    key: {key}\nauth:\n{auth_config}",
                data = d.join("data").display(),
                cert = pki.join("leaf.pem").display(),
                key = pki.join("leaf.key").display(),
            ),
        )
        .unwrap();
        // skopeo's trust: a directory with the CA.
        std::fs::create_dir(d.join("certs")).unwrap();
        std::fs::copy(pki.join("ca.pem"), d.join("certs/ca.crt")).unwrap();
        // standin's credentials (podman/skopeo format).
        std::fs::write(
            d.join("auth.json"),
            format!(
                r#"{{"auths":{{"{REGISTRY}":{{"auth":"{}"}}}}}}"#,
                b64(&format!("{USER}:{PASSWORD}"))
            ),
        )
        .unwrap();
        children.push(
            Command::new("ip")
                .args(["netns", "exec", &net.inet, "docker-registry", "serve"])
                .arg(d.join("config.yml"))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("docker-registry"),
        );
        let reg = Registry { children, dir };
        reg.wait_ready(net);
        reg
    }

    /// Readiness: the registry answers `/v2/` (401 without credentials) over TLS.
    pub(crate) fn wait_ready(&self, net: &FakeInternet) {
        let ca = net.ca_file();
        for _ in 0..500 {
            let o = Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &net.client,
                    "curl",
                    "-s",
                    "-o",
                    "/dev/null",
                ])
                .args(["-w", "%{http_code}", "--cacert"])
                .arg(&ca)
                .arg(format!("https://{REGISTRY}/v2/"))
                .output()
                .unwrap();
            if stdout(&o) == "401" {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("the registry did not start");
    }

    pub(crate) fn auth_file(&self) -> PathBuf {
        self.dir.path().join("auth.json")
    }

    /// `skopeo copy oci:LAYOUT:TAG docker://registry.test/NAME`, from the client namespace.
    pub(crate) fn push(&self, net: &FakeInternet, layout: &Path, tag: &str, name: &str) {
        self.push_with(net, layout, tag, name, &[]);
    }

    /// [`Registry::push`] with more `skopeo copy` options.
    pub(crate) fn push_with(
        &self,
        net: &FakeInternet,
        layout: &Path,
        tag: &str,
        name: &str,
        opts: &[&str],
    ) {
        let o = Command::new("ip")
            .args(["netns", "exec", &net.client, "skopeo", "copy", "--quiet"])
            .args(opts)
            .arg("--dest-cert-dir")
            .arg(self.dir.path().join("certs"))
            .args(["--dest-creds", &format!("{USER}:{PASSWORD}")])
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{REGISTRY}/{name}"))
            .output()
            .unwrap();
        assert!(o.status.success(), "skopeo copy: {}", stderr(&o));
    }
}

pub(crate) fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

pub(crate) fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run")
}

pub(crate) fn umoci(args: &[&str]) {
    let o = Command::new("umoci").args(args).output().expect("umoci");
    assert!(o.status.success(), "umoci {args:?}: {}", stderr(&o));
}

/// A new OCI layout `dir/NAME` with an empty image at tag `base`, unpacked into a bundle
/// (`dir/NAME-bundle`, files under `rootfs/`) for the caller to fill and repack.
pub(crate) fn empty_image(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let layout = dir.join(name);
    let bundle = dir.join(format!("{name}-bundle"));
    let l = layout.to_str().unwrap();
    umoci(&["init", "--layout", l]);
    umoci(&["new", "--image", &format!("{l}:base")]);
    umoci(&[
        "unpack",
        "--image",
        &format!("{l}:base"),
        bundle.to_str().unwrap(),
    ]);
    (layout, bundle)
}

/// An OCI layout tagged `base` holding busybox and the host's curl with the libraries `ldd`
/// names: a small real userland with a TLS client.
pub(crate) fn curl_layout(dir: &Path) -> PathBuf {
    curl_layout_with(dir, "curl-oci", |_| {})
}

/// [`curl_layout`] at `dir/NAME`, with `extra` adding files to the root first.
pub(crate) fn curl_layout_with(dir: &Path, name: &str, extra: impl FnOnce(&Path)) -> PathBuf {
    let (layout, bundle) = empty_image(dir, name);
    let l = layout.to_str().unwrap();
    let root = bundle.join("rootfs");
    let copy = |path: &str| {
        let dest = root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(path, &dest).unwrap_or_else(|e| panic!("copy {path}: {e}"));
    };
    copy("/usr/bin/curl");
    copy("/bin/busybox");
    std::os::unix::fs::symlink("busybox", root.join("bin/sh")).unwrap();
    let ldd = run(Command::new("ldd").arg("/usr/bin/curl"));
    for line in stdout(&ldd).lines() {
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            copy(p);
        }
    }
    extra(&root);
    umoci(&[
        "repack",
        "--image",
        &format!("{l}:base"),
        bundle.to_str().unwrap(),
    ]);
    umoci(&[
        "config",
        "--image",
        &format!("{l}:base"),
        "--config.env",
        "PATH=/usr/bin:/bin",
    ]);
    layout
}

pub(crate) fn image(name: &str) -> String {
    format!("{REGISTRY}/{name}")
}

/// `standin ARGS` in the client namespace with its own STANDIN_HOME and the registry's
/// credentials.
pub(crate) fn standin(net: &FakeInternet, reg: &Registry, home: &Path, args: &[&str]) -> Output {
    run(Command::new("ip")
        .args(["netns", "exec", &net.client, crate::support::standin_bin()])
        .args(args)
        .env("STANDIN_HOME", home)
        .env("REGISTRY_AUTH_FILE", reg.auth_file()))
}

/// `standin pull` of `name` from the test registry (trusting the test CA), which must succeed.
pub(crate) fn pull_ok(net: &FakeInternet, reg: &Registry, home: &Path, name: &str) -> Output {
    let ca = net.ca_file().display().to_string();
    let o = standin(
        net,
        reg,
        home,
        &["pull", "--registry-ca", &ca, &image(name)],
    );
    assert!(o.status.success(), "pull {name}: {}", report(&o, net));
    o
}
