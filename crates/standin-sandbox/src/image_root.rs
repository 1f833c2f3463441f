//! Building a root filesystem from image layers, run by init inside the sandbox's mount
//! namespace.
//!
//! ```text
//! /            overlayfs: the image's layers read-only, under a writable tmpfs layer that
//!              disappears with the sandbox (mounted with `userxattr`, as overlayfs requires
//!              inside a user namespace)
//! /proc /dev /tmp /workspace (mounts)   as for every sandbox
//! /etc         the image's own, with hosts, hostname and resolv.conf generated, passwd and
//!              group generated only when the image has none, and the CA bundles extended
//! ```
//!
//! The image is hostile to the host: any of its paths may be a symlink pointing anywhere.
//! Before the pivot, while host paths are still reachable, nothing is created or written
//! through a path the image controls: runtime-owned top-level entries are replaced by real
//! directories (found with `O_NOFOLLOW`), mount targets below them are opened one component
//! at a time with `O_NOFOLLOW`, and mounts go onto those descriptors. Files are written
//! only after the pivot, when every path resolves inside the sandbox.

use crate::rootfs::{
    Access, BASE, HostBinds, HostSources, build_dev, generated_etc, mount_tmpfs, write_etc_files,
};
use crate::scratch::Scratch;
use crate::spec::{CA_BUNDLE, CA_FILE, IMAGE_BUNDLES, ImageRoot, SandboxSpec};
use nix::fcntl::{AtFlags, OFlag, open, openat};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{Mode, SFlag, fstatat, mkdirat};
use nix::unistd::{UnlinkatFlags, unlinkat};
use std::fs;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

/// The longest overlayfs option string the kernel accepts (one page, less the options other
/// than `lowerdir`).
const MAX_MOUNT_DATA: usize = 4000;

/// Top-level entries the runtime mounts over, whatever the image has there.
const RUNTIME_DIRS: &[&str] = &["proc", "dev", "tmp", "etc", WORKSPACE_NAME];
const WORKSPACE_NAME: &str = "workspace";

/// Build the root from `image` and pivot into it.
pub(crate) fn build(spec: &SandboxSpec, image: &ImageRoot, binds: HostBinds) -> Result<(), String> {
    let sources = HostSources::open(spec, binds)?;
    // The store may live below BASE (a STANDIN_HOME under /tmp): open it before BASE is
    // covered.
    let store = layer_store(image)?;

    // 1. The overlay.
    // The writable layer and every other writable directory share one tmpfs of the disk
    // limit's size.
    let base = Path::new(BASE);
    let scratch = Scratch::mount(base, spec.limits.disk)?;
    let (upper, work, root) = (base.join("upper"), base.join("work"), base.join("root"));
    for d in [&upper, &work, &root] {
        fs::create_dir(d).map_err(|e| format!("mkdir {}: {e}", d.display()))?;
    }
    // The writable layer's root becomes the sandbox's `/`: world-readable.
    fs::set_permissions(&upper, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .map_err(|e| format!("chmod {}: {e}", upper.display()))?;
    if image.copy {
        copy_root(image, &store, &root, spec.limits.disk)?;
    } else if let Err(e) = mount_overlay(image, &store, &upper, &work, &root) {
        eprintln!("standin: {e}; copying the image's layers instead (a slower start)");
        copy_root(image, &store, &root, spec.limits.disk)?;
    }

    // 2. Mounts, onto directories opened without following symlinks.
    let root_fd = open(
        &root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("opening the image root: {e}"))?;
    for name in RUNTIME_DIRS {
        real_dir(&root_fd, name)?;
    }
    mount(
        Some("proc"),
        &root.join("proc"),
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(|e| format!("mounting /proc: {e}"))?;
    build_dev(&root, &sources.devices, &scratch)?;
    scratch.bind("tmp", 0o1777, &root.join("tmp"), false)?;
    let ws = root.join(WORKSPACE_NAME);
    match &sources.workdir {
        Some(bind) => bind.mount_at(&ws, Access::ReadWrite)?,
        None => scratch.bind("workspace", 0o755, &ws, false)?,
    }
    for (m, bind) in &sources.user_mounts {
        let is_dir = nix::sys::stat::fstat(bind.fd())
            .map(|st| {
                SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR
            })
            .unwrap_or(true);
        let target = mount_target(&root_fd, &m.guest, is_dir)?;
        let at = PathBuf::from(format!("/proc/self/fd/{}", target.as_raw_fd()));
        bind.mount_at(
            &at,
            if m.read_only {
                Access::ReadOnly
            } else {
                Access::ReadWrite
            },
        )
        .map_err(|e| format!("--mount {}: {e}", m.guest.display()))?;
    }
    drop(root_fd);

    // 3. Pivot: the overlay becomes /, the host root is detached.
    nix::unistd::chdir(&root).map_err(|e| format!("chdir {}: {e}", root.display()))?;
    nix::unistd::pivot_root(".", ".").map_err(|e| format!("pivot_root: {e}"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| format!("detaching the host root: {e}"))?;
    nix::unistd::chdir("/").map_err(|e| format!("chdir /: {e}"))?;

    // 4. Files, now that every path resolves inside the sandbox.
    let etc = Path::new("/etc");
    let has_accounts = etc.join("passwd").is_file() && etc.join("group").is_file();
    write_etc_files(etc, &generated_etc(spec, !has_accounts), true)?;
    if let Some(pem) = &spec.trust_ca_pem {
        install_ca(pem)?;
    }
    Ok(())
}

/// The copy fallback: a tmpfs at `root` holding the layers merged as overlayfs would.
/// With a disk limit, the tmpfs is then shrunk to the image's size plus the limit, so the
/// sandbox can write at most that much there too.
fn copy_root(
    image: &ImageRoot,
    store: &OwnedFd,
    root: &Path,
    disk: Option<u64>,
) -> Result<(), String> {
    mount_tmpfs(root, "mode=0755", MsFlags::MS_NOSUID | MsFlags::MS_NODEV)?;
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let layers = layer_names(image)?
        .into_iter()
        .rev()
        .map(|name| {
            openat(store.as_fd(), name, flags, Mode::empty())
                .map_err(|e| format!("opening image layer {name}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let root_fd =
        open(root, flags, Mode::empty()).map_err(|e| format!("opening the image root: {e}"))?;
    crate::layer_copy::copy_layers(&layers, &root_fd)?;
    if let Some(disk) = disk {
        let st = nix::sys::statvfs::fstatvfs(&root_fd)
            .map_err(|e| format!("statfs of the image copy: {e}"))?;
        let used = (st.blocks() - st.blocks_free()) * st.fragment_size();
        mount(
            None::<&str>,
            root,
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some(format!("size={}", used.saturating_add(disk)).as_str()),
        )
        .map_err(|e| format!("sizing the image copy: {e}"))?;
    }
    Ok(())
}

/// The layers' directory names, top first, checked to share the store's directory and to be
/// usable in overlayfs options.
fn layer_names(image: &ImageRoot) -> Result<Vec<&str>, String> {
    let Some(first) = image.layers.first() else {
        return Err("the image has no layers".into());
    };
    let parent = first.parent().unwrap_or(Path::new("/"));
    let mut names = Vec::with_capacity(image.layers.len());
    for layer in image.layers.iter().rev() {
        if layer.parent() != Some(parent) {
            return Err(format!(
                "image layers must share one directory ({} is not in {})",
                layer.display(),
                parent.display()
            ));
        }
        let name = layer
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| !n.contains([':', ',', '\\']))
            .ok_or_else(|| format!("layer directory name {} is not usable", layer.display()))?;
        names.push(name);
    }
    Ok(names)
}

/// `mount -t overlay` with the layers top first. The layers share the store's directory, so
/// they are named relative to it (init's working directory for the call), which keeps the
/// option string within a page for images of up to ~60 layers.
fn mount_overlay(
    image: &ImageRoot,
    store: &OwnedFd,
    upper: &Path,
    work: &Path,
    root: &Path,
) -> Result<(), String> {
    let names = layer_names(image)?;
    for p in [upper, work] {
        if p.to_string_lossy().contains([':', ',', '\\']) {
            return Err(format!("{} contains ':', ',' or '\\'", p.display()));
        }
    }
    let data = format!(
        "lowerdir={},upperdir={},workdir={},userxattr",
        names.join(":"),
        upper.display(),
        work.display()
    );
    if data.len() > MAX_MOUNT_DATA {
        return Err(format!(
            "the image has {} layers, more than overlayfs can stack in one mount here; flatten it (for example `skopeo copy` through `umoci` or `docker export`)",
            image.layers.len()
        ));
    }
    nix::unistd::fchdir(store).map_err(|e| format!("chdir to the image store: {e}"))?;
    let mounted = mount(
        Some("overlay"),
        root,
        Some("overlay"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(data.as_str()),
    );
    nix::unistd::chdir("/").map_err(|e| format!("chdir /: {e}"))?;
    mounted.map_err(|e| {
        format!(
            "mounting the image's layers with overlayfs failed: {e}; this kernel may not allow overlayfs inside a user namespace (Linux 5.11 or later does)"
        )
    })
}

/// The directory holding the layers, opened while its path is still reachable.
fn layer_store(image: &ImageRoot) -> Result<OwnedFd, String> {
    let parent = image
        .layers
        .first()
        .and_then(|l| l.parent())
        .ok_or("the image has no layers")?;
    open(
        parent,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("opening the image store {}: {e}", parent.display()))
}

/// Make `name` in `root` a real directory: a symlink or file the image put there is removed.
fn real_dir(root: &OwnedFd, name: &str) -> Result<(), String> {
    match fstatat(root.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st)
            if SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR =>
        {
            return Ok(());
        }
        Ok(_) => unlinkat(root.as_fd(), name, UnlinkatFlags::NoRemoveDir)
            .map_err(|e| format!("replacing the image's /{name}: {e}"))?,
        Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(format!("/{name} in the image: {e}")),
    }
    mkdirat(root.as_fd(), name, Mode::from_bits_truncate(0o755))
        .map_err(|e| format!("mkdir /{name}: {e}"))
}

/// Open (creating when missing) the mount target `guest` below `root`, one component at a
/// time, never following a symlink.
fn mount_target(root: &OwnedFd, guest: &Path, is_dir: bool) -> Result<OwnedFd, String> {
    let comps: Vec<&std::ffi::OsStr> = guest
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect();
    let Some((last, parents)) = comps.split_last() else {
        return Err(format!("--mount target {} is the root", guest.display()));
    };
    let dir_flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let through = |c: &std::ffi::OsStr, e: nix::errno::Errno| {
        format!(
            "--mount target {}: {:?} in the image is not a directory ({e}); mount somewhere else",
            guest.display(),
            c
        )
    };
    let mut cur = root
        .try_clone()
        .map_err(|e| format!("duplicating a descriptor: {e}"))?;
    for c in parents {
        cur = match openat(cur.as_fd(), *c, dir_flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(nix::errno::Errno::ENOENT) => {
                mkdirat(cur.as_fd(), *c, Mode::from_bits_truncate(0o755))
                    .map_err(|e| through(c, e))?;
                openat(cur.as_fd(), *c, dir_flags, Mode::empty()).map_err(|e| through(c, e))?
            }
            Err(e) => return Err(through(c, e)),
        };
    }
    if is_dir {
        match mkdirat(cur.as_fd(), *last, Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(through(last, e)),
        }
        openat(cur.as_fd(), *last, dir_flags, Mode::empty()).map_err(|e| through(last, e))
    } else {
        let f = openat(
            cur.as_fd(),
            *last,
            OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY,
            Mode::from_bits_truncate(0o644),
        )
        .map_err(|e| through(last, e))?;
        drop(f);
        openat(
            cur.as_fd(),
            *last,
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| through(last, e))
    }
}

/// Trust `pem` inside the image (after the pivot): `/etc/standin/ca.pem`, the image's own
/// bundle plus the CA in `/etc/standin/ca-bundle.pem`, and that bundle in place of every
/// distribution bundle file the image has (a Debian path is created when it has none).
fn install_ca(pem: &str) -> Result<(), String> {
    let etc = Path::new("/etc");
    let present: Vec<PathBuf> = IMAGE_BUNDLES
        .iter()
        .map(|b| etc.join(b))
        .filter(|p| fs::symlink_metadata(p).is_ok())
        .collect();
    let mut bundle = present
        .iter()
        .find_map(|p| fs::read_to_string(p).ok())
        .unwrap_or_default();
    if !bundle.is_empty() && !bundle.ends_with('\n') {
        bundle.push('\n');
    }
    bundle.push_str(pem);
    let mut files = vec![
        (rel_etc(CA_FILE), pem.to_owned()),
        (rel_etc(CA_BUNDLE), bundle.clone()),
    ];
    let targets: Vec<String> = if present.is_empty() {
        vec![IMAGE_BUNDLES[0].to_owned()]
    } else {
        present
            .iter()
            .filter_map(|p| p.strip_prefix(etc).ok())
            .map(|p| p.to_string_lossy().into_owned())
            .collect()
    };
    for t in targets {
        files.push((t, bundle.clone()));
    }
    write_etc_files(etc, &files, true)
}

fn rel_etc(path: &str) -> String {
    path.trim_start_matches("/etc/").to_owned()
}
