//! Resource limits: the grammar of `--memory`, `--cpus`, `--pids` and `--disk` (shared by the
//! CLI, the TOML file and the SDK builders), and the defaults that protect the host.
//!
//! Sizes are bytes with an optional binary suffix (`512M`, `2G`, `1.5G`, `16384k`; `K`, `M`,
//! `G`, `T`, upper or lower case, an optional trailing `B` or `iB`), as Docker reads them.
//! CPUs are a decimal number of CPUs (`0.5`, `2`), kept in thousandths. Every limit also
//! takes `unlimited`, which lifts it.

use std::fmt;

/// The smallest memory limit accepted: below this nothing starts (the kernel's own page
/// tables and the sandbox's init already need some).
pub const MIN_MEMORY: u64 = 8 << 20;
/// The smallest `--disk` accepted.
pub const MIN_DISK: u64 = 1 << 20;
/// The smallest `--pids` accepted: init, a shell and the command.
pub const MIN_PIDS: u32 = 8;
/// The largest `--pids` accepted (the kernel's own ceiling, `PID_MAX_LIMIT`).
pub const MAX_PIDS: u32 = 4 << 20;
/// The largest `--cpus` accepted, in thousandths.
pub const MAX_CPU_MILLIS: u32 = 1024 * 1000;
/// Longest limit text read.
const MAX_TEXT: usize = 32;

/// Default memory limit: this much, or half the host's memory when that is less.
pub const DEFAULT_MEMORY: u64 = 4 << 30;
/// Default pids limit: enough for parallel builds (threads count), far below the host's.
pub const DEFAULT_PIDS: u32 = 4096;

/// One limit's setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Limit<T> {
    /// Not given: the default applies.
    #[default]
    Default,
    /// `unlimited`: no limit.
    Unlimited,
    /// This value.
    Value(T),
}

/// A limit that does not parse, with what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {text:?}: {problem}")]
pub struct LimitError {
    /// Which limit (`memory`, `cpus`, `pids`, `disk`).
    pub what: &'static str,
    /// The text given (cut to a readable length).
    pub text: String,
    /// What is wrong and what to write.
    pub problem: String,
}

fn error(what: &'static str, text: &str, problem: impl Into<String>) -> LimitError {
    LimitError {
        what,
        text: text.chars().take(MAX_TEXT).collect(),
        problem: problem.into(),
    }
}

/// Parse a `--memory` value.
pub fn parse_memory(text: &str) -> Result<Limit<u64>, LimitError> {
    parse_size("memory", text, MIN_MEMORY)
}

/// Parse a `--disk` value.
pub fn parse_disk(text: &str) -> Result<Limit<u64>, LimitError> {
    parse_size("disk", text, MIN_DISK)
}

fn parse_size(what: &'static str, text: &str, min: u64) -> Result<Limit<u64>, LimitError> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("unlimited") {
        return Ok(Limit::Unlimited);
    }
    let usage = "use a size such as 512M, 2G or 1.5G (K, M, G, T are powers of 1024), or unlimited";
    if t.is_empty() || t.len() > MAX_TEXT {
        return Err(error(what, text, usage));
    }
    let lower = t.to_ascii_lowercase();
    let body = lower
        .strip_suffix("ib")
        .or_else(|| lower.strip_suffix('b'))
        .unwrap_or(&lower);
    let (number, shift) = match body.as_bytes().last() {
        Some(b'k') => (&body[..body.len() - 1], 10),
        Some(b'm') => (&body[..body.len() - 1], 20),
        Some(b'g') => (&body[..body.len() - 1], 30),
        Some(b't') => (&body[..body.len() - 1], 40),
        _ => (body, 0),
    };
    let bytes = scaled(number, shift).ok_or_else(|| error(what, text, usage))?;
    if bytes < min {
        return Err(error(
            what,
            text,
            format!("at least {} is needed", Bytes(min)),
        ));
    }
    Ok(Limit::Value(bytes))
}

/// `number × 2^shift`, for a decimal `number` with at most three fractional digits.
fn scaled(number: &str, shift: u32) -> Option<u64> {
    u64::try_from((u128::from(thousandths(number)?) << shift) / 1000).ok()
}

/// A decimal number with at most three fractional digits (`2`, `0.5`, `.25`), in
/// thousandths.
fn thousandths(number: &str) -> Option<u64> {
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if int.is_empty() && frac.is_empty()
        || frac.len() > 3
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let int: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let frac: u64 = format!("{frac:0<3}").parse().ok()?;
    int.checked_mul(1000)?.checked_add(frac)
}

/// Parse a `--cpus` value into thousandths of a CPU.
pub fn parse_cpus(text: &str) -> Result<Limit<u32>, LimitError> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("unlimited") {
        return Ok(Limit::Unlimited);
    }
    let usage =
        "use a number of CPUs such as 0.5, 1 or 2.25 (at most three decimals), or unlimited";
    if t.len() > MAX_TEXT {
        return Err(error("cpus", text, usage));
    }
    let millis = thousandths(t).ok_or_else(|| error("cpus", text, usage))?;
    // The kernel's smallest quota is 1 ms per 100 ms period.
    if millis < 10 {
        return Err(error("cpus", text, "at least 0.01 CPU is needed"));
    }
    if millis > u64::from(MAX_CPU_MILLIS) {
        return Err(error("cpus", text, "at most 1024 CPUs"));
    }
    Ok(Limit::Value(millis as u32))
}

/// Parse a `--pids` value.
pub fn parse_pids(text: &str) -> Result<Limit<u32>, LimitError> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("unlimited") {
        return Ok(Limit::Unlimited);
    }
    let n: u32 = t.parse().map_err(|_| {
        error(
            "pids",
            text,
            "use a whole number of processes and threads, such as 256, or unlimited",
        )
    })?;
    if !(MIN_PIDS..=MAX_PIDS).contains(&n) {
        return Err(error(
            "pids",
            text,
            format!("use {MIN_PIDS} to {MAX_PIDS}, or unlimited"),
        ));
    }
    Ok(Limit::Value(n))
}

/// The limits a sandbox gets: each given one, or its default.
///
/// Defaults protect the host and can each be raised or lifted: memory [`DEFAULT_MEMORY`] or
/// half the host's memory when that is less; [`DEFAULT_PIDS`] processes and threads; no CPU
/// limit; writable space (the tmpfs holding `/tmp`, `/workspace`, `/dev/shm` and an image's
/// writable layer, which lives in memory) half the memory limit, or a quarter of the host's
/// memory when memory is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// `--memory`.
    pub memory: Limit<u64>,
    /// `--cpus`, in thousandths.
    pub cpus: Limit<u32>,
    /// `--pids`.
    pub pids: Limit<u32>,
    /// `--disk`.
    pub disk: Limit<u64>,
}

/// Which cgroup-enforced limits were given explicitly (the disk limit needs no cgroup and
/// is always enforced).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Explicit {
    /// `--memory` was given.
    pub memory: bool,
    /// `--cpus` was given.
    pub cpus: bool,
    /// `--pids` was given.
    pub pids: bool,
}

/// Resolved limits (`None`: unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Resolved {
    /// Bytes of memory.
    pub memory: Option<u64>,
    /// Thousandths of a CPU.
    pub cpu_millis: Option<u32>,
    /// Processes and threads.
    pub pids: Option<u32>,
    /// Bytes of writable space.
    pub disk: Option<u64>,
    /// Which limits were given explicitly: those must be enforced; defaults are enforced
    /// where the host allows, with a warning where it does not.
    pub explicit: Explicit,
}

impl Limits {
    /// Apply the defaults for a host with `host_memory` bytes of memory.
    pub fn resolve(&self, host_memory: u64) -> Resolved {
        let memory = match self.memory {
            Limit::Default => Some(DEFAULT_MEMORY.min(host_memory / 2).max(MIN_MEMORY)),
            Limit::Unlimited => None,
            Limit::Value(v) => Some(v),
        };
        let disk = match self.disk {
            Limit::Default => Some((memory.unwrap_or(host_memory / 2) / 2).max(MIN_DISK)),
            Limit::Unlimited => None,
            Limit::Value(v) => Some(v),
        };
        let pick = |l: Limit<u32>, default: Option<u32>| match l {
            Limit::Default => default,
            Limit::Unlimited => None,
            Limit::Value(v) => Some(v),
        };
        Resolved {
            memory,
            cpu_millis: pick(self.cpus, None),
            pids: pick(self.pids, Some(DEFAULT_PIDS)),
            disk,
            explicit: Explicit {
                memory: self.memory != Limit::Default,
                cpus: self.cpus != Limit::Default,
                pids: self.pids != Limit::Default,
            },
        }
    }
}

/// A byte count for people: `512 MiB`, `1.5 GiB`.
#[derive(Debug, Clone, Copy)]
pub struct Bytes(pub u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
        let mut value = self.0 as f64;
        let mut unit = 0;
        while value >= 1024.0 && unit < UNITS.len() - 1 {
            value /= 1024.0;
            unit += 1;
        }
        if unit == 0 || value.fract() == 0.0 {
            write!(f, "{value:.0} {}", UNITS[unit])
        } else {
            write!(f, "{value:.1} {}", UNITS[unit])
        }
    }
}

/// Thousandths of a CPU for people: `0.5`, `2`.
#[derive(Debug, Clone, Copy)]
pub struct Cpus(pub u32);

impl fmt::Display for Cpus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (int, frac) = (self.0 / 1000, self.0 % 1000);
        if frac == 0 {
            write!(f, "{int}")
        } else {
            let frac = format!("{frac:03}");
            write!(f, "{int}.{}", frac.trim_end_matches('0'))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_docker_reads_them() {
        for (text, bytes) in [
            ("512M", 512 << 20),
            ("512m", 512 << 20),
            ("2G", 2 << 30),
            ("2GiB", 2 << 30),
            ("2gb", 2 << 30),
            ("1.5G", 3 << 29),
            ("16384k", 16 << 20),
            ("1T", 1 << 40),
            ("16777216", 16 << 20),
            (" 1g ", 1 << 30),
        ] {
            assert_eq!(parse_memory(text), Ok(Limit::Value(bytes)), "{text}");
        }
        assert_eq!(parse_disk("unlimited"), Ok(Limit::Unlimited));
        assert_eq!(parse_disk("UNLIMITED"), Ok(Limit::Unlimited));
    }

    #[test]
    fn bad_sizes_say_what_to_write() {
        for text in [
            "",
            "G",
            "-1G",
            "1.2345G",
            "1,5G",
            "12X",
            "0x10",
            "1 G",
            "nan",
            "1e9",
            "99999999999999999999",
            "20000000T",
        ] {
            let e = parse_memory(text).unwrap_err();
            assert!(e.to_string().contains("512M"), "{text}: {e}");
        }
        let e = parse_memory("1M").unwrap_err();
        assert!(e.to_string().contains("at least 8 MiB"), "{e}");
        assert!(parse_disk("1M").is_ok());
        assert!(parse_disk("1023k").is_err());
    }

    #[test]
    fn cpus_are_thousandths() {
        assert_eq!(parse_cpus("0.5"), Ok(Limit::Value(500)));
        assert_eq!(parse_cpus("2"), Ok(Limit::Value(2000)));
        assert_eq!(parse_cpus("2.25"), Ok(Limit::Value(2250)));
        assert_eq!(parse_cpus(".01"), Ok(Limit::Value(10)));
        assert_eq!(parse_cpus("unlimited"), Ok(Limit::Unlimited));
        for text in ["0", "0.001", "1.0001", "-1", "1025", "two", "", "1G"] {
            assert!(parse_cpus(text).is_err(), "{text}");
        }
    }

    #[test]
    fn pids_are_bounded() {
        assert_eq!(parse_pids("256"), Ok(Limit::Value(256)));
        assert_eq!(parse_pids("unlimited"), Ok(Limit::Unlimited));
        for text in ["0", "7", "-5", "1.5", "", "99999999"] {
            assert!(parse_pids(text).is_err(), "{text}");
        }
    }

    #[test]
    fn defaults_protect_the_host_and_can_be_lifted() {
        let host = 24u64 << 30;
        let r = Limits::default().resolve(host);
        assert_eq!(r.memory, Some(4 << 30));
        assert_eq!(r.disk, Some(2 << 30));
        assert_eq!(r.pids, Some(DEFAULT_PIDS));
        assert_eq!(r.cpu_millis, None);
        assert_eq!(r.explicit, Explicit::default());
        // A small host: half its memory, and writable space half of that.
        let r = Limits::default().resolve(2 << 30);
        assert_eq!((r.memory, r.disk), (Some(1 << 30), Some(512 << 20)));
        // Memory lifted: writable space a quarter of the host.
        let lifted = Limits {
            memory: Limit::Unlimited,
            ..Limits::default()
        };
        let r = lifted.resolve(host);
        assert_eq!((r.memory, r.disk), (None, Some(6 << 30)));
        assert!(r.explicit.memory && !r.explicit.pids && !r.explicit.cpus);
        // A given memory limit sets the default writable space.
        let given = Limits {
            memory: Limit::Value(256 << 20),
            pids: Limit::Unlimited,
            ..Limits::default()
        };
        let r = given.resolve(host);
        assert_eq!(
            (r.memory, r.disk, r.pids),
            (Some(256 << 20), Some(128 << 20), None)
        );
    }

    #[test]
    fn amounts_print_for_people() {
        assert_eq!(Bytes(512 << 20).to_string(), "512 MiB");
        assert_eq!(Bytes(3 << 29).to_string(), "1.5 GiB");
        assert_eq!(Bytes(100).to_string(), "100 B");
        assert_eq!(Cpus(500).to_string(), "0.5");
        assert_eq!(Cpus(2000).to_string(), "2");
        assert_eq!(Cpus(2250).to_string(), "2.25");
    }
}
