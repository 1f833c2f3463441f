//! Resource limits through cgroups: one cgroup per sandbox, in every hierarchy that serves a
//! controller the sandbox's limits need (memory, cpu, pids), so v1, v2 and hosts that mix
//! them are all handled ([`hierarchy`]).
//!
//! ```text
//! supervisor   create <own cgroup>/standin-<id> (v1; v2: beside its own cgroup unless that is
//!              the root), write the limits, open the directory, its parent and the join file
//!     │ Spec + descriptors
//! stage1       fork the reaper (stays outside), write "0" to the join file, then build
//!     │        the sandbox: init and everything it starts inherit the cgroup
//!     │        ...
//!     │        init ends → read what the cgroup recorded ([`LimitUsage`]) → report, exit
//! reaper       wakes when stage1 and init are gone (a pipe closes), removes the cgroup
//! exec helper  joins with the join file's descriptor before entering the namespaces
//! ```
//!
//! The join file is `cgroup.procs` on v2 and `tasks` on v1. Both joiners are freshly exec'd
//! single-threaded helpers, so moving the calling thread moves the whole process, and a v1
//! `tasks` write of "0" (the writer's own thread) is the one migration the kernel performs
//! without taking the global thread-group semaphore for writing. `cgroup.procs` takes it,
//! and its writer waits for an RCU grace period (measured here: 5–19 ms against 0.04 ms,
//! the largest single cost of a sandbox's start; docs/PERFORMANCE.md).
//!
//! The cgroup is created next to the supervisor's own, so whatever bounds standin (a systemd
//! slice, a pod, a CI job) also bounds its sandboxes. On v2 a cgroup with processes cannot
//! hand controllers to children (the "no internal processes" rule), so the sandbox cgroup is
//! made a sibling of the supervisor's unless that is the hierarchy's root. The supervisor
//! removes the cgroup after the sandbox; if the supervisor is killed first, the reaper does.

pub(crate) mod hierarchy;
mod reaper;
mod usage;

pub use hierarchy::{Controller, Version};
pub use usage::LimitUsage;

use crate::error::SandboxError;
use crate::spec::ResourceLimits;
use hierarchy::{OwnCgroup, discover};
use rustix::fs::{AtFlags, Mode, OFlags, unlinkat};
use serde::{Deserialize, Serialize};
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Name prefix of every sandbox cgroup: `standin-<12 hex digits>`.
pub const NAME_PREFIX: &str = "standin-";
/// CPU bandwidth period, in microseconds (the kernel's default).
const CPU_PERIOD_US: u64 = 100_000;

/// One hierarchy's directory of a sandbox's cgroup.
#[derive(Debug)]
struct Part {
    version: Version,
    controllers: Vec<Controller>,
    parent: OwnedFd,
    dir: OwnedFd,
    /// The join file ([`join_file`]), opened for writing.
    procs: OwnedFd,
}

/// The file a single-threaded process writes "0" to in order to join a cgroup of `version`:
/// v1 `tasks` moves just the writing thread and so skips the thread-group semaphore (and its
/// RCU grace period) that `cgroup.procs` takes; v2 has only `cgroup.procs` for a domain
/// cgroup.
fn join_file(version: Version) -> &'static str {
    match version {
        Version::V1 => "tasks",
        Version::V2 => "cgroup.procs",
    }
}

/// A sandbox's cgroup, on the supervisor's side.
#[derive(Debug)]
pub(crate) struct SandboxCgroup {
    name: String,
    parts: Vec<Part>,
}

/// What travels to stage1 with the spec; the descriptors ride along, three per part
/// (parent directory, cgroup directory, join file).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct HandOff {
    name: String,
    parts: Vec<(Version, Vec<Controller>)>,
}

/// A limit that cannot be enforced here, and why.
fn unenforced(c: Controller, why: impl std::fmt::Display) -> String {
    format!("the {} limit cannot be enforced: {why}", c.name())
}

impl SandboxCgroup {
    /// Create the cgroup for `limits`. Returns `None` when no cgroup limit is set, and the
    /// limits that cannot be enforced on this host (an error instead when
    /// a limit in `limits.required`).
    pub(crate) fn create(
        limits: &ResourceLimits,
    ) -> Result<(Option<SandboxCgroup>, Vec<String>), SandboxError> {
        let wanted: Vec<Controller> = [
            (Controller::Memory, limits.memory.is_some()),
            (Controller::Cpu, limits.cpu_millis.is_some()),
            (Controller::Pids, limits.pids.is_some()),
        ]
        .into_iter()
        .filter_map(|(c, on)| on.then_some(c))
        .collect();
        if wanted.is_empty() {
            return Ok((None, Vec::new()));
        }
        let name = format!("{NAME_PREFIX}{}", random_hex());
        let mut problems: Vec<(Controller, String)> = Vec::new();
        // Group the controllers by the directory their sandbox cgroup goes in.
        let mut groups: Vec<(OwnCgroup, PathBuf, Vec<Controller>)> = Vec::new();
        for c in wanted {
            let Some(own) = discover(c) else {
                problems.push((
                    c,
                    unenforced(
                        c,
                        "no cgroup hierarchy offers this controller to standin's cgroup \
                         (rootless without a delegated cgroup, or the controller is disabled)",
                    ),
                ));
                continue;
            };
            let parent = match own.version {
                Version::V1 => own.dir(),
                Version::V2 if own.path.as_os_str().is_empty() => own.dir(),
                Version::V2 => own.mount.join(own.path.parent().unwrap_or(Path::new(""))),
            };
            match groups.iter_mut().find(|(_, p, _)| *p == parent) {
                Some((_, _, cs)) => cs.push(c),
                None => groups.push((own, parent, vec![c])),
            }
        }
        let mut cgroup = SandboxCgroup {
            name,
            parts: Vec::new(),
        };
        for (own, parent, controllers) in groups {
            match cgroup.add_part(&own, &parent, &controllers, limits) {
                Ok(part) => cgroup.parts.push(part),
                Err(why) => problems.extend(controllers.iter().map(|c| (*c, unenforced(*c, &why)))),
            }
        }
        let refused: Vec<&str> = problems
            .iter()
            .filter(|(c, _)| limits.required.contains(c))
            .map(|(_, why)| why.as_str())
            .collect();
        if !refused.is_empty() {
            // Dropping `cgroup` removes what was created.
            return Err(SandboxError::Limits(format!(
                "{}. Run standin as root, or in a cgroup delegated to your user (systemd: \
                 `systemd-run --user --scope -p Delegate=yes standin …`), or lift the limit \
                 with `unlimited`",
                refused.join("; ")
            )));
        }
        let cgroup = (!cgroup.parts.is_empty()).then_some(cgroup);
        Ok((cgroup, problems.into_iter().map(|(_, why)| why).collect()))
    }

    fn add_part(
        &self,
        own: &OwnCgroup,
        parent: &Path,
        controllers: &[Controller],
        limits: &ResourceLimits,
    ) -> Result<Part, String> {
        if own.version == Version::V2 {
            enable_controllers(parent, controllers)?;
        }
        let path = parent.join(&self.name);
        std::fs::create_dir(&path).map_err(|e| format!("creating {}: {e}", path.display()))?;
        let configured = (|| {
            for c in controllers {
                configure(own.version, *c, &path, limits)?;
            }
            let open = |p: &Path, flags: OFlags| {
                rustix::fs::open(p, flags | OFlags::CLOEXEC, Mode::empty())
                    .map_err(|e| format!("opening {}: {e}", p.display()))
            };
            Ok::<_, String>(Part {
                version: own.version,
                controllers: controllers.to_vec(),
                parent: open(parent, OFlags::RDONLY | OFlags::DIRECTORY)?,
                dir: open(&path, OFlags::RDONLY | OFlags::DIRECTORY)?,
                procs: open(&path.join(join_file(own.version)), OFlags::WRONLY)?,
            })
        })();
        if configured.is_err() {
            let _ = std::fs::remove_dir(&path);
        }
        configured
    }

    /// The hand-off for stage1, and its descriptors in order.
    pub(crate) fn hand_off(&self) -> (HandOff, Vec<BorrowedFd<'_>>) {
        let mut fds = Vec::new();
        for p in &self.parts {
            fds.extend([p.parent.as_fd(), p.dir.as_fd(), p.procs.as_fd()]);
        }
        let parts = self
            .parts
            .iter()
            .map(|p| (p.version, p.controllers.clone()))
            .collect();
        (
            HandOff {
                name: self.name.clone(),
                parts,
            },
            fds,
        )
    }

    /// The join files' descriptors (an exec helper joins through them).
    pub(crate) fn procs(&self) -> Vec<BorrowedFd<'_>> {
        self.parts.iter().map(|p| p.procs.as_fd()).collect()
    }

    /// What the cgroup has recorded so far (with the memory and processes in use now).
    pub(crate) fn usage(&self) -> LimitUsage {
        let mut usage = LimitUsage::default();
        for p in &self.parts {
            usage.read(p.version, &p.controllers, p.dir.as_fd());
        }
        usage
    }

    /// Remove the cgroup's directories that are empty (the reaper removes the others once
    /// their last process is gone). Idempotent; also done on drop.
    pub(crate) fn remove(&self) {
        for p in &self.parts {
            let _ = unlinkat(&p.parent, self.name.as_str(), AtFlags::REMOVEDIR);
        }
    }
}

impl Drop for SandboxCgroup {
    fn drop(&mut self) {
        self.remove();
    }
}

/// On v2, make sure `parent` hands `controllers` to its children.
fn enable_controllers(parent: &Path, controllers: &[Controller]) -> Result<(), String> {
    let file = parent.join("cgroup.subtree_control");
    let current =
        std::fs::read_to_string(&file).map_err(|e| format!("reading {}: {e}", file.display()))?;
    let missing: Vec<String> = controllers
        .iter()
        .filter(|c| !current.split_whitespace().any(|x| x == c.name()))
        .map(|c| format!("+{}", c.name()))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    write_file(&file, &missing.join(" ")).map_err(|e| {
        let hint = if e.raw_os_error() == Some(libc::EBUSY) {
            " (that cgroup has processes of its own; start standin in a leaf cgroup whose \
             parent delegates the controllers)"
        } else {
            ""
        };
        format!(
            "enabling {} in {}: {e}{hint}",
            missing.join(" "),
            file.display()
        )
    })
}

/// Write one limit of `c` into the cgroup at `path`.
fn configure(
    version: Version,
    c: Controller,
    path: &Path,
    limits: &ResourceLimits,
) -> Result<(), String> {
    let set = |name: &str, value: String| {
        write_file(&path.join(name), &value)
            .map_err(|e| format!("writing {value} to {}: {e}", path.join(name).display()))
    };
    let optional = |name: &str, value: String| {
        let p = path.join(name);
        if p.exists() {
            let _ = write_file(&p, &value);
        }
    };
    match (c, version) {
        (Controller::Memory, Version::V1) => {
            let bytes = limits.memory.unwrap_or(u64::MAX).to_string();
            set("memory.limit_in_bytes", bytes.clone())?;
            // No swap beyond the limit (the file exists with swap accounting on).
            optional("memory.memsw.limit_in_bytes", bytes);
            optional("memory.swappiness", "0".into());
        }
        (Controller::Memory, Version::V2) => {
            set(
                "memory.max",
                limits.memory.map_or("max".into(), |b| b.to_string()),
            )?;
            optional("memory.swap.max", "0".into());
        }
        (Controller::Cpu, Version::V1) => {
            let quota = limits
                .cpu_millis
                .map_or(-1, |m| (u64::from(m) * CPU_PERIOD_US / 1000) as i64);
            set("cpu.cfs_period_us", CPU_PERIOD_US.to_string())?;
            set("cpu.cfs_quota_us", quota.to_string())?;
        }
        (Controller::Cpu, Version::V2) => {
            let quota = limits.cpu_millis.map_or("max".into(), |m| {
                (u64::from(m) * CPU_PERIOD_US / 1000).to_string()
            });
            set("cpu.max", format!("{quota} {CPU_PERIOD_US}"))?;
        }
        (Controller::Pids, _) => {
            set(
                "pids.max",
                limits.pids.map_or("max".into(), |n| n.to_string()),
            )?;
        }
    }
    Ok(())
}

fn write_file(path: &Path, value: &str) -> io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)?
        .write_all(value.as_bytes())
}

/// Move the calling process into the cgroup whose join file ([`join_file`]) is `procs`
/// ("0" names the writer; the permission check uses the credentials the file was opened
/// with). The caller must be single-threaded: on v1 only the calling thread moves.
pub(crate) fn join(procs: BorrowedFd<'_>) -> io::Result<()> {
    // Fail closed: a second thread would stay outside the cgroup on v1, unbounded.
    let threads = thread_count()?;
    if threads != 1 {
        return Err(io::Error::other(format!(
            "the joining process has {threads} threads; a cgroup is joined single-threaded"
        )));
    }
    rustix::io::write(procs, b"0")
        .map(drop)
        .map_err(io::Error::from)
}

/// This process's thread count (`num_threads`, field 20 of `/proc/self/stat`).
fn thread_count() -> io::Result<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // The command name (field 2) is in parentheses and may hold spaces and parentheses: the
    // fields that follow start after the last `)`, at field 3.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(20 - 3))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| io::Error::other("unreadable /proc/self/stat"))
}

/// The sandbox's cgroup, on stage1's side: joined, with the reaper armed.
#[derive(Debug)]
pub(crate) struct Joined {
    parts: Vec<(Version, Vec<Controller>, OwnedFd)>,
    /// The write end of the reaper's pipe: its closing (stage1's and init's exit) wakes it.
    _reaper: OwnedFd,
}

impl Joined {
    /// Arm the reaper, then join every part of the cgroup.
    pub(crate) fn join(
        hand: HandOff,
        fds: Vec<OwnedFd>,
        ctrl: BorrowedFd<'_>,
    ) -> io::Result<Joined> {
        if fds.len() != hand.parts.len() * 3 || hand.parts.is_empty() {
            return Err(io::Error::other("wrong number of cgroup descriptors"));
        }
        if !hand.name.starts_with(NAME_PREFIX) || hand.name.len() > 64 || hand.name.contains('/') {
            return Err(io::Error::other("bad cgroup name"));
        }
        let mut it = fds.into_iter();
        let mut parents = Vec::new();
        let mut parts = Vec::new();
        let mut procs = Vec::new();
        for (version, controllers) in hand.parts {
            let (Some(parent), Some(dir), Some(p)) = (it.next(), it.next(), it.next()) else {
                return Err(io::Error::other("wrong number of cgroup descriptors"));
            };
            parents.push(parent);
            parts.push((version, controllers, dir));
            procs.push(p);
        }
        let reaper = reaper::spawn(&hand.name, parents, ctrl)?;
        for p in &procs {
            join(p.as_fd())?;
        }
        Ok(Joined {
            parts,
            _reaper: reaper,
        })
    }

    /// What the cgroup recorded so far.
    pub(crate) fn usage(&self) -> LimitUsage {
        let mut usage = LimitUsage::default();
        for (version, controllers, dir) in &self.parts {
            usage.read(*version, controllers, dir.as_fd());
        }
        usage
    }
}

fn random_hex() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 6];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut bytes);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joining_from_a_multithreaded_process_is_refused_before_anything_is_written() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let other = std::thread::spawn(move || rx.recv());
        assert!(thread_count().unwrap() >= 2);
        // A file that would accept the write: the refusal must come first.
        let sink = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .unwrap();
        let err = join(sink.as_fd()).unwrap_err();
        assert!(err.to_string().contains("threads"), "{err}");
        drop(tx);
        let _ = other.join();
    }
}
