//! Where this process's cgroups are, per controller: the v1 hierarchy that has the
//! controller, or the unified (v2) hierarchy, read from `/proc/self/cgroup` and
//! `/proc/self/mountinfo`.
//!
//! A host may mix them (v1 memory, pids and cpu with a v2 hierarchy mounted beside them, as
//! on standin's own CI machines), so the choice is made per controller: v1 when a v1
//! hierarchy has it, else v2 when the unified hierarchy offers it here, else none.

use std::path::{Path, PathBuf};

/// A controller standin uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Controller {
    /// Memory (`memory.max` / `memory.limit_in_bytes`).
    Memory,
    /// CPU bandwidth (`cpu.max` / `cpu.cfs_quota_us`).
    Cpu,
    /// Process and thread count (`pids.max`).
    Pids,
}

impl Controller {
    /// The kernel's name.
    pub fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Cpu => "cpu",
            Controller::Pids => "pids",
        }
    }
}

/// Which cgroup version a directory belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Version {
    /// A v1 hierarchy (one or a few controllers per mount).
    V1,
    /// The unified hierarchy.
    V2,
}

/// This process's cgroup directory in the hierarchy that serves a controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OwnCgroup {
    /// v1 or v2.
    pub version: Version,
    /// Mount point of the hierarchy.
    pub mount: PathBuf,
    /// This process's cgroup, relative to the mount point (empty: the mount's root).
    pub path: PathBuf,
}

impl OwnCgroup {
    /// The directory itself.
    pub(crate) fn dir(&self) -> PathBuf {
        self.mount.join(&self.path)
    }
}

/// Largest `/proc/self/cgroup` or `/proc/self/mountinfo` read.
const MAX_PROC_FILE: usize = 1 << 20;

/// The cgroups of this process, from the live `/proc`.
pub(crate) fn discover(controller: Controller) -> Option<OwnCgroup> {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .ok()
            .filter(|s| s.len() <= MAX_PROC_FILE)
    };
    let cgroup = read("/proc/self/cgroup")?;
    let mountinfo = read("/proc/self/mountinfo")?;
    let own = locate(controller, &cgroup, &mountinfo)?;
    if own.version == Version::V2 {
        // The unified hierarchy serves a controller only where it is offered to this cgroup.
        let offered = std::fs::read_to_string(own.dir().join("cgroup.controllers")).ok()?;
        if !offered.split_whitespace().any(|c| c == controller.name()) {
            return None;
        }
    }
    Some(own)
}

/// Pure part of [`discover`]: from the texts of `/proc/self/cgroup` and
/// `/proc/self/mountinfo`, the hierarchy serving `controller` (v1 first) and this process's
/// directory in it.
pub(crate) fn locate(controller: Controller, cgroup: &str, mountinfo: &str) -> Option<OwnCgroup> {
    let mut v2_path = None;
    for line in cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if id == "0" && controllers.is_empty() {
            v2_path = Some(path);
        } else if controllers.split(',').any(|c| c == controller.name())
            && let Some((mount, root)) = mount_of(mountinfo, Some(controller.name()))
        {
            return Some(OwnCgroup {
                version: Version::V1,
                mount,
                path: relative(path, &root)?,
            });
        }
    }
    let path = v2_path?;
    let (mount, root) = mount_of(mountinfo, None)?;
    Some(OwnCgroup {
        version: Version::V2,
        mount,
        path: relative(path, &root)?,
    })
}

/// The mount point and mount root of the v1 hierarchy with `controller`, or (`None`) of the
/// unified hierarchy.
fn mount_of(mountinfo: &str, controller: Option<&str>) -> Option<(PathBuf, String)> {
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let fields: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        let (Some(root), Some(mount), Some(fstype), Some(options)) =
            (fields.get(3), fields.get(4), right.first(), right.get(2))
        else {
            continue;
        };
        let matches = match controller {
            Some(c) => *fstype == "cgroup" && options.split(',').any(|o| o == c),
            None => *fstype == "cgroup2",
        };
        if matches {
            return Some((PathBuf::from(unescape(mount)), unescape(root)));
        }
    }
    None
}

/// `path` (a cgroup path from `/proc/self/cgroup`) relative to a mount whose root is `root`;
/// `None` when the cgroup is outside what is mounted (then it cannot be reached).
fn relative(path: &str, root: &str) -> Option<PathBuf> {
    let rel = Path::new(path).strip_prefix(root).ok()?;
    if rel
        .components()
        .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return None;
    }
    Some(rel.to_path_buf())
}

/// Undo mountinfo's octal escapes (`\040` for a space, …).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This project's CI machines: v1 memory, pids and cpu, a v2 hierarchy beside them.
    const HYBRID_CGROUP: &str =
        "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/351fe\n1:cpu:/\n0::/\n";
    const HYBRID_MOUNTS: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn a_hybrid_host_uses_its_v1_controllers() {
        let m = locate(Controller::Memory, HYBRID_CGROUP, HYBRID_MOUNTS).unwrap();
        assert_eq!(m.version, Version::V1);
        assert_eq!(
            m.dir(),
            Path::new("/sys/fs/cgroup/memory/process_api/351fe")
        );
        let p = locate(Controller::Pids, HYBRID_CGROUP, HYBRID_MOUNTS).unwrap();
        assert_eq!(p.dir(), Path::new("/sys/fs/cgroup/pids"));
        let c = locate(Controller::Cpu, HYBRID_CGROUP, HYBRID_MOUNTS).unwrap();
        assert_eq!(c.dir(), Path::new("/sys/fs/cgroup/cpu"));
    }

    #[test]
    fn a_pure_v2_host_uses_the_unified_hierarchy() {
        let cgroup = "0::/user.slice/user-1000.slice/user@1000.service/app.slice/run-1.scope\n";
        let mounts = "30 24 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        for c in [Controller::Memory, Controller::Cpu, Controller::Pids] {
            let own = locate(c, cgroup, mounts).unwrap();
            assert_eq!(own.version, Version::V2);
            assert_eq!(
                own.dir(),
                Path::new(
                    "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app.slice/run-1.scope"
                )
            );
        }
    }

    #[test]
    fn co_mounted_and_bind_mounted_hierarchies() {
        // cpu co-mounted with cpuacct, and a container whose mounts start below the root.
        let cgroup = "3:cpu,cpuacct:/docker/abc\n0::/docker/abc\n";
        let mounts = "\
40 31 0:40 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro - cgroup cgroup rw,cpu,cpuacct
41 31 0:41 /docker/abc /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
";
        let c = locate(Controller::Cpu, cgroup, mounts).unwrap();
        assert_eq!(c.dir(), Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        let m = locate(Controller::Memory, cgroup, mounts).unwrap();
        assert_eq!(m.version, Version::V2);
        assert_eq!(m.dir(), Path::new("/sys/fs/cgroup/unified"));
    }

    #[test]
    fn unreachable_or_missing_hierarchies_give_none() {
        // No v2 line, no v1 memory hierarchy.
        assert!(locate(Controller::Memory, "8:pids:/\n", HYBRID_MOUNTS).is_none());
        // The cgroup lies outside the mounted subtree.
        let mounts = "41 31 0:41 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        assert!(locate(Controller::Memory, "0::/other\n", mounts).is_none());
        // Hostile texts do not panic.
        for junk in ["", "::", "0::", "x:y:z\n0::..\n", "\u{0}"] {
            let _ = locate(Controller::Pids, junk, junk);
            let _ = locate(Controller::Pids, junk, HYBRID_MOUNTS);
        }
        assert!(
            locate(
                Controller::Pids,
                "0::/../etc\n",
                "1 1 0:1 / /c rw - cgroup2 c rw\n"
            )
            .is_none()
        );
    }

    #[test]
    fn mount_points_are_unescaped() {
        let mounts = "41 31 0:41 / /mnt/cgroup\\040v2 rw - cgroup2 cgroup2 rw\n";
        let own = locate(Controller::Pids, "0::/a\n", mounts).unwrap();
        assert_eq!(own.dir(), Path::new("/mnt/cgroup v2/a"));
        assert_eq!(unescape("a\\1"), "a\\1");
    }
}
