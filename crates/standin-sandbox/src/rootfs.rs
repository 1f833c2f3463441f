//! Building the sandbox's root filesystem, run by init inside the sandbox's mount namespace.
//!
//! Every bind source is opened (`O_PATH`) *before* anything is mounted and bound through
//! `/proc/self/fd/N`, so later mounts cannot shadow a source and a path cannot be swapped
//! under us. The new root is a tmpfs mounted over `/tmp` (only in this private mount
//! namespace; the host sees nothing), populated, pivoted into, and finally made read-only:
//!
//! ```text
//! /            tmpfs, read-only once built
//! /usr, /bin…  host (or --rootfs) directories and the usr-merged symlinks, read-only
//! /etc         tmpfs with a curated set of host entries bound read-only, plus generated
//!              passwd, group, hosts, hostname, resolv.conf
//! /proc        fresh procfs of the sandbox's PID namespace
//! /dev         tmpfs: null zero full random urandom tty, devpts, shm
//! /tmp         writable
//! /workspace   --workdir bound read-write, or a fresh directory
//!              (/tmp, /dev/shm and a fresh /workspace: one tmpfs of the --disk size,
//!              [`crate::scratch`])
//! (mounts)     --mount binds
//! ```

use crate::host_bind::{HostBind, PreparedBind};
use crate::netns::RESOLVER_V4;
use crate::scratch::Scratch;
use crate::spec::{NetworkMode, RootSource, SandboxSpec, WORKSPACE};
use crate::sys::mount::{ATTR_NODEV, ATTR_NOSUID, ATTR_RDONLY, set_attrs};
use nix::fcntl::{OFlag, open};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::Mode;
use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, symlink};
use std::path::{Path, PathBuf};

/// Top-level host directories that make up the default root (when they exist). Symlinks
/// (usr-merged systems) are recreated as symlinks.
const HOST_ROOT_ENTRIES: &[&str] = &["usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"];

/// Host `/etc` entries the default root exposes (read-only). Everything else in the host's
/// `/etc` (shadow, machine secrets, service configuration) stays invisible.
const HOST_ETC_ENTRIES: &[&str] = &[
    "alternatives",
    "bash.bashrc",
    "ca-certificates",
    "ca-certificates.conf",
    "debian_version",
    "environment",
    "gai.conf",
    "host.conf",
    "inputrc",
    "issue",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "locale.alias",
    "localtime",
    "magic",
    "magic.mime",
    "mime.types",
    "networks",
    "nsswitch.conf",
    "os-release",
    "pki",
    "profile",
    "profile.d",
    "protocols",
    "python3",
    "python3.11",
    "services",
    "ssl",
    "terminfo",
    "timezone",
];

/// `/etc` entries that are always generated, never taken from the host or `--rootfs`.
const GENERATED_ETC: &[&str] = &["passwd", "group", "hosts", "hostname", "resolv.conf"];

/// Top-level entries of a `--rootfs` directory that the runtime provides itself.
const RUNTIME_OWNED: &[&str] = &["proc", "dev", "sys", "tmp", "etc", "run", "workspace"];

/// Device nodes bound from the host.
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// Where the new root is assembled (only inside the sandbox's private mount namespace).
pub(crate) const BASE: &str = "/tmp";

pub(crate) enum Entry {
    Symlink(PathBuf),
    Dir(OwnedFd),
    File(OwnedFd),
}

pub(crate) struct Source {
    name: String,
    entry: Entry,
}

/// Build the root filesystem and pivot into it. Errors name the path involved.
pub(crate) fn build(spec: &SandboxSpec, binds: HostBinds) -> Result<(), String> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| format!("making / private: {e}"))?;
    if let RootSource::Image(image) = &spec.root {
        return crate::image_root::build(spec, image, binds);
    }

    // 1. Open every source first.
    let (root_dir, root_names): (PathBuf, Vec<String>) = match &spec.root {
        RootSource::Host => (
            PathBuf::from("/"),
            HOST_ROOT_ENTRIES.iter().map(|s| s.to_string()).collect(),
        ),
        RootSource::Dir(dir) => (dir.clone(), list_dir(dir, RUNTIME_OWNED)?),
        RootSource::Image(_) => return Err("image roots are built by image_root".into()),
    };
    let root_sources = open_entries(&root_dir, &root_names)?;
    let etc_dir = root_dir.join("etc");
    let etc_names: Vec<String> = match &spec.root {
        RootSource::Host => HOST_ETC_ENTRIES.iter().map(|s| s.to_string()).collect(),
        RootSource::Dir(_) if etc_dir.is_dir() => list_dir(&etc_dir, GENERATED_ETC)?,
        RootSource::Dir(_) | RootSource::Image(_) => vec![],
    };
    let etc_sources = open_entries(&etc_dir, &etc_names)?;
    let HostSources {
        devices,
        workdir,
        user_mounts,
    } = HostSources::open(spec, binds)?;

    // 2. The new root.
    let base = Path::new(BASE);
    mount_tmpfs(
        base,
        "mode=0755,size=16m",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
    )?;

    for src in &root_sources {
        place(base, src, Access::ReadOnly)?;
    }

    let etc = base.join("etc");
    mkdir(&etc)?;
    for src in &etc_sources {
        place(&etc, src, Access::ReadOnly)?;
    }
    write_generated_etc(&etc, spec)?;
    if let Some(pem) = &spec.trust_ca_pem {
        install_ca(&etc, pem)?;
    }

    // Everything writable lives in one tmpfs of the disk limit's size.
    let scratch_at = base.join(".scratch");
    mkdir(&scratch_at)?;
    let scratch = Scratch::mount(&scratch_at, spec.limits.disk)?;

    build_dev(base, &devices, &scratch)?;

    let proc_dir = base.join("proc");
    mkdir(&proc_dir)?;
    mount(
        Some("proc"),
        &proc_dir,
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(|e| format!("mounting /proc: {e}"))?;

    let tmp = base.join("tmp");
    mkdir(&tmp)?;
    scratch.bind("tmp", 0o1777, &tmp, false)?;

    let ws = base.join(WORKSPACE.trim_start_matches('/'));
    mkdir(&ws)?;
    match &workdir {
        Some(bind) => bind.mount_at(&ws, Access::ReadWrite)?,
        None => scratch.bind("workspace", 0o755, &ws, false)?,
    }
    scratch.detach()?;

    for (m, bind) in &user_mounts {
        let target = base.join(m.guest.strip_prefix("/").unwrap_or(&m.guest));
        let is_dir = nix::sys::stat::fstat(bind.fd())
            .map(|st| (st.st_mode & libc::S_IFMT) == libc::S_IFDIR)
            .unwrap_or(true);
        make_mountpoint(&target, is_dir)?;
        bind.mount_at(
            &target,
            if m.read_only {
                Access::ReadOnly
            } else {
                Access::ReadWrite
            },
        )?;
    }

    // 3. Pivot: the tmpfs becomes /, the old root is detached.
    nix::unistd::chdir(base).map_err(|e| format!("chdir {BASE}: {e}"))?;
    nix::unistd::pivot_root(".", ".").map_err(|e| format!("pivot_root: {e}"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| format!("detaching the host root: {e}"))?;
    nix::unistd::chdir("/").map_err(|e| format!("chdir /: {e}"))?;
    set_attrs(
        Path::new("/"),
        ATTR_RDONLY | ATTR_NOSUID | ATTR_NODEV,
        false,
    )
    .map_err(|e| format!("making / read-only: {e}"))?;
    Ok(())
}

/// What the sandbox takes from the host whatever its root: device nodes, the workdir and the
/// user's bind mounts, opened before anything is mounted.
pub(crate) struct HostSources<'a> {
    pub(crate) devices: Vec<Source>,
    pub(crate) workdir: Option<HostBind>,
    /// Parents before children.
    pub(crate) user_mounts: Vec<(&'a standin_policy::MountSpec, HostBind)>,
}

impl<'a> HostSources<'a> {
    pub(crate) fn open(spec: &'a SandboxSpec, binds: HostBinds) -> Result<HostSources<'a>, String> {
        let devices = open_entries(
            Path::new("/dev"),
            &DEVICES.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )?;
        let workdir = match (binds.workdir, &spec.workdir) {
            (Some(bind), Some(dir)) => {
                Some(bind.open_in_sandbox(&format!("--workdir {}", dir.display()))?)
            }
            _ => None,
        };
        let mut user_mounts = Vec::with_capacity(spec.mounts.len());
        for (m, bind) in spec.mounts.iter().zip(binds.mounts) {
            user_mounts.push((
                m,
                bind.open_in_sandbox(&format!("--mount {}", m.host.display()))?,
            ));
        }
        user_mounts.sort_by_key(|(m, _)| m.guest.components().count());
        Ok(HostSources {
            devices,
            workdir,
            user_mounts,
        })
    }
}

/// The workdir and the `--mount` sources, opened by stage1 in the host's namespaces.
#[derive(Debug)]
pub(crate) struct HostBinds {
    workdir: Option<PreparedBind>,
    /// In `spec.mounts` order.
    mounts: Vec<PreparedBind>,
}

impl HostBinds {
    pub(crate) fn open(spec: &SandboxSpec) -> Result<HostBinds, String> {
        // Only needed (and only read from the root's accounts files) for a writable bind.
        let user = if spec.shares_writable_host_dirs() {
            crate::host_bind::main_user(spec)
        } else {
            (0, 0)
        };
        let workdir = match &spec.workdir {
            Some(dir) => Some(PreparedBind::open(
                dir,
                Access::ReadWrite,
                user,
                &format!("--workdir {}", dir.display()),
            )?),
            None => None,
        };
        let mut mounts = Vec::new();
        for m in &spec.mounts {
            let access = if m.read_only {
                Access::ReadOnly
            } else {
                Access::ReadWrite
            };
            mounts.push(PreparedBind::open(
                &m.host,
                access,
                user,
                &format!("--mount {}", m.host.display()),
            )?);
        }
        Ok(HostBinds { workdir, mounts })
    }
}

fn list_dir(dir: &Path, skip: &[&str]) -> Result<Vec<String>, String> {
    let rd = fs::read_dir(dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
    let mut names = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| format!("reading {}: {e}", dir.display()))?;
        if let Some(name) = ent.file_name().to_str()
            && !skip.contains(&name)
        {
            names.push(name.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

pub(crate) fn open_path(path: &Path) -> nix::Result<OwnedFd> {
    open(path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
}

pub(crate) fn open_entries(dir: &Path, names: &[String]) -> Result<Vec<Source>, String> {
    let mut out = Vec::new();
    for name in names {
        let path = dir.join(name);
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue; // optional entry not present
        };
        let entry = if meta.file_type().is_symlink() {
            Entry::Symlink(
                fs::read_link(&path).map_err(|e| format!("reading {}: {e}", path.display()))?,
            )
        } else {
            let fd = open(
                &path,
                OFlag::O_PATH | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
                Mode::empty(),
            )
            .map_err(|e| format!("opening {}: {e}", path.display()))?;
            if meta.is_dir() {
                Entry::Dir(fd)
            } else {
                Entry::File(fd)
            }
        };
        out.push(Source {
            name: name.clone(),
            entry,
        });
    }
    Ok(out)
}

/// How a bound entry may be used.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    ReadOnly,
    ReadWrite,
    /// A device node: writable, and not `nodev`.
    Device,
}

pub(crate) fn place(parent: &Path, src: &Source, access: Access) -> Result<(), String> {
    let target = parent.join(&src.name);
    match &src.entry {
        Entry::Symlink(to) => {
            symlink(to, &target).map_err(|e| format!("symlink {}: {e}", target.display()))
        }
        Entry::Dir(fd) => {
            mkdir(&target)?;
            bind_fd(fd, &target, access)
        }
        Entry::File(fd) => {
            make_mountpoint(&target, false)?;
            bind_fd(fd, &target, access)
        }
    }
}

pub(crate) fn bind_fd(fd: &OwnedFd, target: &Path, access: Access) -> Result<(), String> {
    let source = format!("/proc/self/fd/{}", fd.as_raw_fd());
    mount(
        Some(source.as_str()),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| format!("bind-mounting onto {}: {e}", target.display()))?;
    let attrs = match access {
        Access::ReadOnly => ATTR_RDONLY | ATTR_NOSUID | ATTR_NODEV,
        Access::ReadWrite => ATTR_NOSUID | ATTR_NODEV,
        Access::Device => ATTR_NOSUID,
    };
    set_attrs(target, attrs, true)
        .map_err(|e| format!("setting mount flags on {}: {e}", target.display()))
}

pub(crate) fn mount_tmpfs(target: &Path, data: &str, flags: MsFlags) -> Result<(), String> {
    mount(Some("tmpfs"), target, Some("tmpfs"), flags, Some(data))
        .map_err(|e| format!("mounting tmpfs on {}: {e}", target.display()))
}

pub(crate) fn mkdir(path: &Path) -> Result<(), String> {
    match fs::DirBuilder::new().mode(0o755).create(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(format!("mkdir {}: {e}", path.display())),
    }
}

pub(crate) fn make_mountpoint(target: &Path, is_dir: bool) -> Result<(), String> {
    if let Some(parent) = target.parent() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)
            .map_err(|e| format!("mkdir {}: {e}", parent.display()))?;
    }
    if is_dir {
        mkdir(target)
    } else if target.exists() {
        Ok(())
    } else {
        fs::File::create(target)
            .map(drop)
            .map_err(|e| format!("creating {}: {e}", target.display()))
    }
}

pub(crate) fn build_dev(base: &Path, devices: &[Source], scratch: &Scratch) -> Result<(), String> {
    let dev = base.join("dev");
    mkdir(&dev)?;
    mount_tmpfs(
        &dev,
        "mode=0755,size=64k",
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
    )?;
    for d in devices {
        place(&dev, d, Access::Device)?;
    }
    let pts = dev.join("pts");
    mkdir(&pts)?;
    mount(
        Some("devpts"),
        &pts,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )
    .map_err(|e| format!("mounting /dev/pts: {e}"))?;
    let shm = dev.join("shm");
    mkdir(&shm)?;
    scratch.bind("shm", 0o1777, &shm, true)?;
    for (name, to) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        symlink(to, dev.join(name)).map_err(|e| format!("symlink /dev/{name}: {e}"))?;
    }
    Ok(())
}

/// Make the sandbox trust `pem`: `/etc/standin/ca.pem`, `/etc/standin/ca-bundle.pem` (the
/// distribution bundle plus the CA), and that bundle bound read-only over every distribution
/// bundle file that exists as a regular file.
fn install_ca(etc: &Path, pem: &str) -> Result<(), String> {
    let dir = etc.join("standin");
    fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    fs::write(dir.join("ca.pem"), pem).map_err(|e| format!("writing the sandbox CA: {e}"))?;
    let targets: Vec<PathBuf> = crate::spec::SYSTEM_BUNDLES
        .iter()
        .map(|b| etc.join(b))
        .filter(|p| fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_file()))
        .collect();
    let mut bundle = match targets.first() {
        Some(p) => fs::read_to_string(p).map_err(|e| format!("reading {}: {e}", p.display()))?,
        None => String::new(),
    };
    if !bundle.is_empty() && !bundle.ends_with('\n') {
        bundle.push('\n');
    }
    bundle.push_str(pem);
    let bundle_path = dir.join("ca-bundle.pem");
    fs::write(&bundle_path, bundle).map_err(|e| format!("writing the CA bundle: {e}"))?;
    if targets.is_empty() {
        return Ok(());
    }
    let fd = open_path(&bundle_path).map_err(|e| format!("opening the CA bundle: {e}"))?;
    for t in &targets {
        bind_fd(&fd, t, Access::ReadOnly)?;
    }
    Ok(())
}

fn write_generated_etc(etc: &Path, spec: &SandboxSpec) -> Result<(), String> {
    write_etc_files(etc, &generated_etc(spec, true), false)
}

/// The `/etc` files the runtime writes: accounts (when `accounts`), hosts, hostname,
/// resolv.conf, and the spec's own.
pub(crate) fn generated_etc(spec: &SandboxSpec, accounts: bool) -> Vec<(String, String)> {
    let host = &spec.hostname;
    let resolv = match spec.network {
        NetworkMode::Captured => format!("nameserver {RESOLVER_V4}\noptions edns0\n"),
        NetworkMode::None => "nameserver 127.0.0.1\n".to_owned(),
    };
    let mut files: Vec<(String, String)> = Vec::new();
    if accounts {
        files.push((
            "passwd".into(),
            "root:x:0:0:root:/tmp:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n".into(),
        ));
        files.push((
            "group".into(),
            "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n".into(),
        ));
    }
    files.extend([
        (
            "hosts".into(),
            format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{host}\n"),
        ),
        ("hostname".into(), format!("{host}\n")),
        ("resolv.conf".into(), resolv),
    ]);
    files.extend(spec.etc_files.iter().cloned());
    files
}

/// Write `files` below `etc`. With `replace`, whatever is at each path (a symlink included)
/// is removed first, so nothing is written through a link.
pub(crate) fn write_etc_files(
    etc: &Path,
    files: &[(String, String)],
    replace: bool,
) -> Result<(), String> {
    for (name, contents) in files {
        let relative = Path::new(name);
        if !relative
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
        {
            return Err(format!(
                "/etc file {name:?} must be a relative path without '..'"
            ));
        }
        let path = etc.join(relative);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| format!("mkdir {}: {e}", parent.display()))?;
        }
        if replace {
            match fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => fs::remove_dir_all(&path)
                    .map_err(|e| format!("removing {}: {e}", path.display()))?,
                Ok(_) => fs::remove_file(&path)
                    .map_err(|e| format!("removing {}: {e}", path.display()))?,
                Err(_) => {}
            }
        }
        fs::write(&path, contents).map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    Ok(())
}
