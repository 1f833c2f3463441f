//! The pod's CA on disk: its key kept in the state directory (mode 0600, read back after a
//! restart so the app, which loaded the published certificate once, keeps trusting the
//! boundary), its certificate and a bundle published to the directory shared with the app.

use crate::error::Error;
use standin_boundary::{CaState, SandboxCa};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use zeroize::Zeroizing;

/// File in the state directory holding the CA's state.
const STATE_FILE: &str = "ca-state.pem";
/// Largest CA state file read back.
const MAX_STATE_FILE: u64 = 16 * 1024;
/// Largest system bundle read.
const MAX_SYSTEM_BUNDLE: u64 = 8 * 1024 * 1024;
/// How long a pod's CA is valid: pods outlive a sandbox's 30 days, and the key never leaves
/// the pod.
const POD_CA_VALIDITY: std::time::Duration = std::time::Duration::from_secs(366 * 24 * 3600);

/// The published CA certificate (for clients that add one CA to their own roots).
pub const CA_FILE: &str = "ca.pem";
/// The published bundle: the system roots plus the pod's CA.
pub const CA_BUNDLE_FILE: &str = "ca-bundle.pem";

/// Make `dir` if missing, 0700; refuse one that others can read.
pub(super) fn private_dir(dir: &Path) -> Result<(), Error> {
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| {
                Error::config(format!(
                    "creating the state directory {}: {e}",
                    dir.display()
                ))
            })?;
    }
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(Error::config(format!(
            "the state directory {} is readable by others (mode {:o}); it holds the CA's key: \
             chmod 700 it, or mount a volume only the boundary uses",
            dir.display(),
            mode & 0o777
        )));
    }
    Ok(())
}

/// The CA stored in `state_dir`, or a new one stored there.
pub(super) fn load_or_create(state_dir: &Path, name: &str) -> Result<SandboxCa, Error> {
    let path = state_dir.join(STATE_FILE);
    match std::fs::File::open(&path) {
        Ok(f) => {
            use std::io::Read;
            let mut text = Zeroizing::new(String::new());
            f.take(MAX_STATE_FILE).read_to_string(&mut text)?;
            let state = parse(&text).ok_or_else(|| {
                Error::config(format!(
                    "{} is not a CA state this version wrote; remove it to make a new CA (the \
                     app must then be restarted to trust it)",
                    path.display()
                ))
            })?;
            Ok(SandboxCa::restore(&state)?)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let state = CaState::generate(name, POD_CA_VALIDITY)?;
            let ca = SandboxCa::restore(&state)?;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)?;
            f.write_all(render(&state).as_bytes())?;
            f.sync_all()?;
            Ok(ca)
        }
        Err(e) => Err(Error::Io(e)),
    }
}

/// The state file's text: three `key=value` lines, then the key's PEM.
fn render(state: &CaState) -> Zeroizing<String> {
    Zeroizing::new(format!(
        "id={}\nnot_before={}\nvalidity={}\n{}",
        state.id,
        state.not_before_unix,
        state.validity_secs,
        state.key_pem.as_str()
    ))
}

fn parse(text: &str) -> Option<CaState> {
    let mut lines = text.splitn(4, '\n');
    let id = lines.next()?.strip_prefix("id=")?.to_owned();
    let not_before_unix = lines.next()?.strip_prefix("not_before=")?.parse().ok()?;
    let validity_secs = lines.next()?.strip_prefix("validity=")?.parse().ok()?;
    let key_pem = Zeroizing::new(lines.next()?.to_owned());
    key_pem.starts_with("-----BEGIN").then_some(CaState {
        id,
        not_before_unix,
        validity_secs,
        key_pem,
    })
}

/// Write `ca.pem` and `ca-bundle.pem` (the system roots, then the pod's CA) into `dir`,
/// each replaced atomically.
pub(super) fn publish(dir: &Path, ca_pem: &str, system_bundle: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::config(format!("creating {}: {e}", dir.display())))?;
    let mut bundle = String::new();
    match std::fs::File::open(system_bundle) {
        Ok(f) => {
            use std::io::Read;
            f.take(MAX_SYSTEM_BUNDLE).read_to_string(&mut bundle)?;
            if !bundle.is_empty() && !bundle.ends_with('\n') {
                bundle.push('\n');
            }
        }
        Err(e) => tracing::warn!(
            bundle = %system_bundle.display(), error = %e,
            "no system CA bundle: the published bundle holds the pod's CA alone, so hosts the boundary does not intercept will not verify"
        ),
    }
    bundle.push_str(ca_pem);
    write_atomically(&dir.join(CA_FILE), ca_pem)?;
    write_atomically(&dir.join(CA_BUNDLE_FILE), &bundle)
}

fn write_atomically(path: &Path, text: &str) -> Result<(), Error> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_file_round_trips_and_refuses_garbage() {
        let state = CaState::generate("p", std::time::Duration::from_secs(60)).unwrap();
        let back = parse(&render(&state)).unwrap();
        assert_eq!(back.id, "p");
        assert_eq!(back.not_before_unix, state.not_before_unix);
        assert_eq!(back.key_pem.as_str(), state.key_pem.as_str());
        for bad in [
            "",
            "id=p\n",
            "id=p\nnot_before=x\nvalidity=1\n-----BEGIN",
            "x=1\n\n\n",
        ] {
            assert!(parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn a_restart_keeps_the_ca_and_others_cannot_read_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        private_dir(&state).unwrap();
        load_or_create(&state, "pod").unwrap();
        let stored = std::fs::read(state.join(STATE_FILE)).unwrap();
        // A second start reads the same key back (restoring it is tested in the boundary's
        // `a_restored_ca_is_the_same_authority_to_clients`), and writes nothing new.
        load_or_create(&state, "pod").unwrap();
        assert_eq!(std::fs::read(state.join(STATE_FILE)).unwrap(), stored);
        let mode = std::fs::metadata(state.join(STATE_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = private_dir(&state).unwrap_err().to_string();
        assert!(err.contains("readable by others"), "{err}");
    }
}
