//! Resolving an image's `User` (`name`, `uid`, `name:group`, `uid:gid`) against the sandbox's
//! own `/etc/passwd` and `/etc/group`, as container runtimes do. Those files belong to the
//! image: they are read with a size limit and parsed without trusting them.

use std::path::Path;

/// Largest passwd or group file read.
const MAX_ACCOUNTS_FILE: u64 = 4 << 20;

/// Who a command runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ids {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    /// The home directory from passwd, when the user has an entry.
    pub(crate) home: Option<String>,
}

/// Resolve `spec` against the accounts files under `etc`.
pub(crate) fn resolve(spec: &str, etc: &Path) -> Result<Ids, String> {
    resolve_with(spec, &|name| read_small(&etc.join(name)))
}

/// Resolve `spec` with `read("passwd")` and `read("group")` giving the accounts files (empty
/// when absent).
pub(crate) fn resolve_with(spec: &str, read: &dyn Fn(&str) -> String) -> Result<Ids, String> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user.is_empty() {
        return Err(format!("user {spec:?} names no user"));
    }
    let numeric = user.parse::<u32>().ok();
    let passwd = read("passwd");
    // name:x:uid:gid:gecos:home:shell
    let entry = passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 7 {
            return None;
        }
        let matches = f[0] == user || (numeric.is_some() && numeric == f[2].parse::<u32>().ok());
        matches.then(|| {
            (
                f[2].parse::<u32>().ok(),
                f[3].parse::<u32>().ok(),
                f[5].to_owned(),
            )
        })
    });
    let (uid, default_gid, home) = match (numeric, entry) {
        (Some(uid), Some((_, gid, home))) => (uid, gid.unwrap_or(uid), Some(home)),
        (Some(uid), None) => (uid, uid, None),
        (None, Some((Some(uid), Some(gid), home))) => (uid, gid, Some(home)),
        (None, _) => {
            return Err(format!(
                "user {user:?} is not in the sandbox's /etc/passwd; use a numeric uid"
            ));
        }
    };
    let gid = match group {
        None => default_gid,
        Some("") => default_gid,
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => read("group")
                .lines()
                .find_map(|line| {
                    let f: Vec<&str> = line.split(':').collect();
                    (f.len() >= 3 && f[0] == g)
                        .then(|| f[2].parse::<u32>().ok())
                        .flatten()
                })
                .ok_or_else(|| {
                    format!("group {g:?} is not in the sandbox's /etc/group; use a numeric gid")
                })?,
        },
    };
    Ok(Ids { uid, gid, home })
}

/// At most [`MAX_ACCOUNTS_FILE`] bytes of `path` (empty when it cannot be read).
pub(crate) fn read_small(path: &Path) -> String {
    use std::io::Read;
    let mut s = String::new();
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.take(MAX_ACCOUNTS_FILE).read_to_string(&mut s);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_numbers_and_groups() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("passwd"),
            "root:x:0:0:root:/root:/bin/sh\nagent:x:1000:1001::/home/agent:/bin/sh\nbroken\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        let r = |s: &str| resolve(s, dir.path());
        assert_eq!(
            r("agent").unwrap(),
            Ids {
                uid: 1000,
                gid: 1001,
                home: Some("/home/agent".into())
            }
        );
        assert_eq!(r("1000").unwrap().gid, 1001);
        assert_eq!(
            r("4242").unwrap(),
            Ids {
                uid: 4242,
                gid: 4242,
                home: None
            }
        );
        assert_eq!(r("agent:staff").unwrap().gid, 50);
        assert_eq!(r("agent:7").unwrap().gid, 7);
        assert!(
            r("ghost")
                .unwrap_err()
                .contains("not in the sandbox's /etc/passwd")
        );
        assert!(r("agent:nogroup").unwrap_err().contains("/etc/group"));
        assert!(r(":5").is_err());
    }
}
