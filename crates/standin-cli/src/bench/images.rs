//! `standin bench --only images`: pulling and starting images, against the tools users know.
//!
//! Everything is local: Debian's `docker-registry` on a loopback port, images written here
//! from the host's own files (a busybox base; a language runtime's library directory; a second
//! image on the same base), pushed with `skopeo`. Then, alternately in the same run:
//!
//! - a cold `standin pull` into an empty store (download, verify, decompress, unpack);
//! - `skopeo copy` of the same image to a `dir:` (download and verify only);
//! - `skopeo copy` into a `containers-storage:` overlay store of its own (what `podman pull`
//!   does: download, verify, unpack into layers ready to run: the pull's end state);
//! - `skopeo copy` to an OCI layout then `umoci unpack` (download, verify, unpack: the same
//!   work as the pull), when umoci is installed;
//! - create-to-exit of `standin run --image IMG --pull never -- true` with a warm store,
//!   beside `standin run -- true` on the host root;
//! - disk used by two images that share their base layer.
//!
//! Stores are removed only at the end: ext4 slows inode allocation down for a while after
//! many deletions (`recently_deleted`), which would otherwise land in the next cold pull.

use anyhow::{Context, bail};
use ring::digest::{Context as Sha256, SHA256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Cold pulls (and each comparison) measured.
const PULL_RUNS: usize = 5;
/// Warm starts measured per root.
const START_RUNS: usize = 21;

/// Run the image workloads and print their table; `Ok(false)` when a tool is missing.
pub(crate) fn run() -> anyhow::Result<bool> {
    for tool in ["docker-registry", "skopeo", "busybox"] {
        if which(tool).is_none() {
            println!("images: {tool} is not installed; not measured (.ci/run installs it)");
            return Ok(false);
        }
    }
    let umoci = which("umoci").is_some();
    let work = tempfile::Builder::new()
        .prefix("standin-bench-images")
        .tempdir()?;
    let w = work.path();
    let registry = Registry::start(w)?;
    let host = registry.host.clone();
    let runtime = runtime_dir().context("no /usr/lib/python3.* to build the second layer from")?;
    let big = format!("{host}/bench/runtime:1");
    let small = format!("{host}/bench/tools:1");
    let layout = w.join("oci");
    let base = Layer::write(&layout, busybox_tree)?;
    let lib = Layer::write(&layout, |t| {
        t.append_dir_all(runtime.strip_prefix("/").unwrap_or(&runtime), &runtime)
    })?;
    let tools = Layer::write(&layout, |t| {
        let note = b"the second image's own layer\n";
        let mut h = tar::Header::new_gnu();
        h.set_size(note.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        t.append_data(&mut h, "etc/bench-note", &note[..])
    })?;
    write_image(&layout, "runtime", &[&base, &lib])?;
    write_image(&layout, "tools", &[&base, &tools])?;
    registry.push(&layout, "runtime", &big)?;
    registry.push(&layout, "tools", &small)?;
    let compressed = base.size + lib.size;
    let unpacked = base.tar_size + lib.tar_size;

    let exe = std::env::current_exe()?;
    let standin = |home: &Path, args: &[&str]| -> anyhow::Result<()> {
        let out = Command::new(&exe)
            .env("STANDIN_HOME", home)
            .args(args)
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            bail!(
                "standin {args:?}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    };
    let skopeo = |dest: String| -> anyhow::Result<()> {
        let out = Command::new("skopeo")
            .args(["copy", "--quiet", "--src-tls-verify=false"])
            .arg(format!("docker://{big}"))
            .arg(dest)
            .output()?;
        if !out.status.success() {
            bail!(
                "skopeo copy: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    };
    let (mut pull, mut copy, mut copy_unpack) = (Vec::new(), Vec::new(), Vec::new());
    let mut copy_storage = Vec::new();
    for i in 0..PULL_RUNS {
        let home = w.join(format!("home-{i}"));
        let t = Instant::now();
        standin(&home, &["pull", "--insecure-registry", &host, &big])?;
        pull.push(t.elapsed());
        let t = Instant::now();
        skopeo(format!(
            "dir:{}",
            w.join(format!("skopeo-dir-{i}")).display()
        ))?;
        copy.push(t.elapsed());
        let storage = w.join(format!("skopeo-storage-{i}"));
        let t = Instant::now();
        skopeo(format!(
            "containers-storage:[overlay@{}+{}]bench:1",
            storage.join("root").display(),
            storage.join("run").display()
        ))?;
        copy_storage.push(t.elapsed());
        if umoci {
            let oci = w.join(format!("skopeo-oci-{i}"));
            let t = Instant::now();
            skopeo(format!("oci:{}:1", oci.display()))?;
            let out = Command::new("umoci")
                .args(["unpack", "--rootless", "--image"])
                .arg(format!("{}:1", oci.display()))
                .arg(w.join(format!("umoci-bundle-{i}")))
                .output()?;
            if !out.status.success() {
                bail!(
                    "umoci unpack: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            copy_unpack.push(t.elapsed());
        }
    }
    let home = w.join("home-0");
    let start = |image: bool| -> anyhow::Result<Vec<Duration>> {
        let mut args = vec!["run", "--no-network"];
        if image {
            args.extend(["--image", &big, "--pull", "never"]);
        }
        args.extend(["--", "true"]);
        (0..START_RUNS)
            .map(|_| {
                let t = Instant::now();
                standin(&home, &args)?;
                Ok(t.elapsed())
            })
            .collect()
    };
    let image_start = start(true)?;
    let host_start = start(false)?;
    standin(&home, &["pull", "--insecure-registry", &host, &small])?;
    let layers = std::fs::read_dir(home.join("images/layers"))?.count();
    let both = disk_usage(&home.join("images/layers"))?;
    let one = disk_usage(&w.join("home-1/images/layers"))?;

    println!(
        "images: local registry, a 2-layer image of {:.1} MB compressed, {:.1} MB unpacked \
         (busybox; {}); {PULL_RUNS} pulls, {START_RUNS} starts",
        mb(compressed),
        mb(unpacked),
        runtime.display()
    );
    println!("{:<46} {:>12} {:>12}  target", "workload", "median", "min");
    let row = |name: &str, v: &[Duration], target: &str| {
        let (median, min) = median_min(v);
        println!("{name:<46} {median:>9.1} ms {min:>9.1} ms  {target}");
    };
    row(
        "cold pull, standin (to a runnable store)",
        &pull,
        "≤ skopeo copy",
    );
    row("skopeo copy to dir: (download + verify)", &copy, "");
    row(
        "skopeo copy to containers-storage: (overlay)",
        &copy_storage,
        "",
    );
    if umoci {
        row("skopeo copy to oci: + umoci unpack", &copy_unpack, "");
    } else {
        println!("skopeo copy + umoci unpack: umoci is not installed; not measured");
    }
    row(
        "run --image IMG -- true, warm store",
        &image_start,
        "< 20 ms",
    );
    row("run -- true, host root", &host_start, "");
    println!(
        "{:<46} {:>9.1} MB  ({layers} layer directories; the first image alone: {:.1} MB)",
        "disk, two images sharing a base",
        mb(both),
        mb(one)
    );
    Ok(true)
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn median_min(v: &[Duration]) -> (f64, f64) {
    let mut ms: Vec<f64> = v.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    (ms[ms.len() / 2], ms[0])
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join(tool))
            .find(|p| p.is_file())
    })
}

/// The newest `/usr/lib/python3.N`: a real runtime's worth of small and large files.
fn runtime_dir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib")
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix("python3."))
                .is_some_and(|v| v.parse::<u32>().is_ok())
        })
        .collect();
    dirs.sort();
    dirs.pop()
}

/// `/bin/busybox` and the applet links a shell session needs.
fn busybox_tree(t: &mut tar::Builder<impl Write>) -> std::io::Result<()> {
    let busybox = which("busybox").ok_or_else(|| std::io::Error::other("busybox"))?;
    t.append_path_with_name(&busybox, "bin/busybox")?;
    for applet in ["sh", "true", "ls", "cat"] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        t.append_link(&mut h, format!("bin/{applet}"), "busybox")?;
    }
    Ok(())
}

/// Bytes used on disk under `dir` (allocated blocks, hard links counted once).
fn disk_usage(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let m = entry.metadata()?;
            if seen.insert((m.dev(), m.ino())) {
                total += m.blocks() * 512;
            }
            if m.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    Ok(total)
}

/// A gzip-compressed layer blob written into an OCI layout.
struct Layer {
    digest: String,
    diff_id: String,
    size: u64,
    tar_size: u64,
}

impl Layer {
    fn write(
        layout: &Path,
        fill: impl FnOnce(
            &mut tar::Builder<Hashing<flate2::write::GzEncoder<Hashing<Vec<u8>>>>>,
        ) -> std::io::Result<()>,
    ) -> anyhow::Result<Layer> {
        let gz =
            flate2::write::GzEncoder::new(Hashing::new(Vec::new()), flate2::Compression::default());
        let mut t = tar::Builder::new(Hashing::new(gz));
        t.follow_symlinks(false);
        fill(&mut t)?;
        let tar = t.into_inner()?;
        let (gz, diff_id, tar_size) = tar.finish();
        let (blob, digest, size) = gz.finish()?.finish();
        put_blob(layout, &digest, &blob)?;
        Ok(Layer {
            digest,
            diff_id,
            size,
            tar_size,
        })
    }
}

/// Passes bytes on and hashes them.
struct Hashing<W> {
    inner: W,
    ctx: Sha256,
    len: u64,
}

impl<W> Hashing<W> {
    fn new(inner: W) -> Hashing<W> {
        Hashing {
            inner,
            ctx: Sha256::new(&SHA256),
            len: 0,
        }
    }

    fn finish(self) -> (W, String, u64) {
        (
            self.inner,
            sha256_name(self.ctx.finish().as_ref()),
            self.len,
        )
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.ctx.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn sha256_name(digest: &[u8]) -> String {
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn put_blob(layout: &Path, digest: &str, bytes: &[u8]) -> std::io::Result<()> {
    let dir = layout.join("blobs/sha256");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(digest.trim_start_matches("sha256:")), bytes)
}

/// Add an image of `layers` (bottom first) to the layout, tagged `tag`.
fn write_image(layout: &Path, tag: &str, layers: &[&Layer]) -> anyhow::Result<()> {
    let blob = |bytes: &[u8]| -> std::io::Result<serde_json::Value> {
        let mut ctx = Sha256::new(&SHA256);
        ctx.update(bytes);
        let digest = sha256_name(ctx.finish().as_ref());
        put_blob(layout, &digest, bytes)?;
        Ok(serde_json::json!({"digest": digest, "size": bytes.len()}))
    };
    let platform = standin::host_platform();
    let architecture = platform.trim_start_matches("linux/");
    let config = serde_json::json!({
        "architecture": architecture,
        "os": "linux",
        "config": {"Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| &l.diff_id).collect::<Vec<_>>()},
    });
    let mut config_desc = blob(&serde_json::to_vec(&config)?)?;
    config_desc["mediaType"] = "application/vnd.oci.image.config.v1+json".into();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config_desc,
        "layers": layers.iter().map(|l| serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": l.digest,
            "size": l.size,
        })).collect::<Vec<_>>(),
    });
    let mut manifest_desc = blob(&serde_json::to_vec(&manifest)?)?;
    manifest_desc["mediaType"] = "application/vnd.oci.image.manifest.v1+json".into();
    manifest_desc["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": tag});
    let index_path = layout.join("index.json");
    let mut index: serde_json::Value = match std::fs::read(&index_path) {
        Ok(b) => serde_json::from_slice(&b)?,
        Err(_) => serde_json::json!({"schemaVersion": 2, "manifests": []}),
    };
    index["manifests"]
        .as_array_mut()
        .context("index.json manifests")?
        .push(manifest_desc);
    std::fs::write(&index_path, serde_json::to_vec(&index)?)?;
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    Ok(())
}

/// `docker-registry` on a free loopback port, plain HTTP, storage under the work directory.
struct Registry {
    child: Child,
    host: String,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Registry {
    fn start(work: &Path) -> anyhow::Result<Registry> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let host = format!("127.0.0.1:{port}");
        let config = work.join("registry.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {host}\n",
                work.join("registry").display()
            ),
        )?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting docker-registry")?;
        let mut registry = Registry { child, host };
        // Ready when it accepts connections; a registry that exited fails the run.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(&registry.host).is_err() {
            if let Some(status) = registry.child.try_wait()? {
                bail!("docker-registry exited ({status})");
            }
            if Instant::now() > deadline {
                bail!(
                    "docker-registry did not listen on {} within 10 s",
                    registry.host
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(registry)
    }

    fn push(&self, layout: &Path, tag: &str, to: &str) -> anyhow::Result<()> {
        let out = Command::new("skopeo")
            .args(["copy", "--quiet", "--dest-tls-verify=false"])
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{to}"))
            .output()?;
        if !out.status.success() {
            bail!(
                "skopeo copy (push): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }
}
