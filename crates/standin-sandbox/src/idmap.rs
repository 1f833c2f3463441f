//! Choosing and writing the uid/gid maps of the sandbox's user namespace.
//!
//! - **As root**, sandbox uid/gid 0..65536 map to a subordinate range: the `root` entry of
//!   `/etc/subuid` and `/etc/subgid` when there is one, else [`DEFAULT_ROOT_RANGE_START`].
//!   The sandbox's root is never host root: a file only host root can read stays unreadable,
//!   and a process that escaped would be an unprivileged uid.
//! - **As an unprivileged user**, sandbox uid/gid 0 map to the caller's own uid/gid (the only
//!   mapping the kernel lets an unprivileged process write without setuid helpers).

use crate::sys::process::{Forked, fork};
use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;

/// First host uid/gid of the range used as root when `/etc/subuid` has no `root` entry.
/// Chosen far above the ranges `useradd` hands out (100000 + 65536·n) to avoid sharing ids
/// with other users' containers.
pub const DEFAULT_ROOT_RANGE_START: u32 = 1_000_000_000;
/// Size of the subordinate range mapped as root.
pub const ROOT_RANGE_LEN: u32 = 65536;

/// One line of a uid_map or gid_map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    /// First id inside the namespace.
    pub inside: u32,
    /// First id outside.
    pub outside: u32,
    /// Number of ids.
    pub len: u32,
}

/// The uid and gid maps for one sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMaps {
    /// uid map.
    pub uid: IdRange,
    /// gid map.
    pub gid: IdRange,
}

impl IdMaps {
    /// The maps for the current process's credentials.
    pub fn for_current_user() -> IdMaps {
        let uid = nix::unistd::geteuid().as_raw();
        let gid = nix::unistd::getegid().as_raw();
        if uid == 0 {
            IdMaps {
                uid: root_range(Path::new("/etc/subuid")),
                gid: root_range(Path::new("/etc/subgid")),
            }
        } else {
            IdMaps {
                uid: IdRange {
                    inside: 0,
                    outside: uid,
                    len: 1,
                },
                gid: IdRange {
                    inside: 0,
                    outside: gid,
                    len: 1,
                },
            }
        }
    }

    /// Host uid that the sandbox's root runs as.
    pub fn host_root_uid(&self) -> u32 {
        self.uid.outside
    }

    /// Write the maps for process `pid` (which has just created its user namespace).
    pub fn write(&self, pid: i32) -> std::io::Result<()> {
        let proc = format!("/proc/{pid}");
        fs::write(format!("{proc}/setgroups"), "deny")?;
        fs::write(format!("{proc}/uid_map"), line(self.uid))?;
        fs::write(format!("{proc}/gid_map"), line(self.gid))?;
        Ok(())
    }
}

/// A new user namespace with `maps` and nothing else, held by a descriptor (for
/// `MOUNT_ATTR_IDMAP`, which borrows a namespace's maps). Needs `CAP_SETUID`/`CAP_SETGID` to
/// write maps other than the caller's own ids, and a single-threaded caller (it forks).
pub(crate) fn namespace_with(maps: IdMaps) -> io::Result<OwnedFd> {
    use nix::fcntl::OFlag;
    let (ready_r, ready_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let (hold_r, hold_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    match fork()? {
        Forked::Child => {
            drop((ready_r, hold_w));
            let created = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER).is_ok();
            let _ = nix::unistd::write(&ready_w, &[u8::from(created)]);
            // Stay alive (so the namespace does) until the parent closes its end.
            let _ = nix::unistd::read(&hold_r, &mut [0u8; 1]);
            std::process::exit(0)
        }
        Forked::Parent(pid) => {
            drop((ready_w, hold_r));
            let held = (|| {
                let mut created = [0u8; 1];
                if nix::unistd::read(&ready_r, &mut created)? != 1 || created[0] != 1 {
                    return Err(io::Error::other("could not create a user namespace"));
                }
                maps.write(pid)?;
                Ok(OwnedFd::from(fs::File::open(format!(
                    "/proc/{pid}/ns/user"
                ))?))
            })();
            drop(hold_w);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
            held
        }
    }
}

fn line(r: IdRange) -> String {
    format!("{} {} {}\n", r.inside, r.outside, r.len)
}

fn root_range(file: &Path) -> IdRange {
    let from_file = fs::read_to_string(file)
        .ok()
        .and_then(|text| parse_subid(&text, "root"));
    let (outside, len) = from_file.unwrap_or((DEFAULT_ROOT_RANGE_START, ROOT_RANGE_LEN));
    IdRange {
        inside: 0,
        outside,
        len: len.min(ROOT_RANGE_LEN),
    }
}

/// Find `user:start:count` in a subuid/subgid file; the range must not include id 0 and must
/// hold at least 65536 ids.
fn parse_subid(text: &str, user: &str) -> Option<(u32, u32)> {
    text.lines().find_map(|l| {
        let mut it = l.trim().split(':');
        let (name, start, count) = (it.next()?, it.next()?, it.next()?);
        let (start, count) = (start.parse::<u32>().ok()?, count.parse::<u32>().ok()?);
        (name == user && start > 0 && count >= ROOT_RANGE_LEN).then_some((start, count))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_subid_entries() {
        let text = "alice:100000:65536\nroot:231072:65536\n";
        assert_eq!(parse_subid(text, "root"), Some((231072, 65536)));
        assert_eq!(parse_subid(text, "bob"), None);
        assert_eq!(
            parse_subid("root:0:65536\n", "root"),
            None,
            "never host root"
        );
        assert_eq!(parse_subid("root:5000:10\n", "root"), None, "too small");
    }
}
