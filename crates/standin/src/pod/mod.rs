//! The boundary as a pod sidecar: it serves the network namespace it runs in (a Kubernetes
//! pod's, shared by every container of the pod) instead of creating a sandbox.
//!
//! ```text
//! init container   `standin boundary init --uid UID`: the capture ruleset, exempting UID
//! sidecar (UID)    PodBoundary: listeners on loopback, the same Boundary as a sandbox's,
//!                  the pod's CA (kept in a state directory, published to a shared one),
//!                  health endpoints, value files watched, block-and-terminate recorded
//! app container    placeholders in its environment (`standin boundary env`), the
//!                  published CA bundle; every connection and DNS query it makes is
//!                  redirected to the sidecar, and nothing else leaves the pod
//! ```
//!
//! What block-and-terminate means here (a sidecar cannot kill another container): every
//! connection of the pod is refused from then on, readiness fails, a marker in the state
//! directory makes every later start of the boundary in this pod refuse to serve, and
//! [`PodBoundary::terminated`] resolves so the binary exits non-zero. docs/DEPLOY.md.

mod ca_files;
mod health;

pub use ca_files::{CA_BUNDLE_FILE, CA_FILE};
pub use health::Health;

use crate::SandboxBuilder;
use crate::error::Error;
use crate::sandbox::local::{listeners, sandbox_id};
use standin_boundary::{
    Boundary, BoundaryConfig, Event, EventAction, EventKind, EventProtocol, EventSink,
};
use standin_policy::secrets::SecretValue;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::Notify;

/// Name of the marker a block-and-terminate leaves in the state directory.
pub const TERMINATED_MARKER: &str = "terminated";

/// Where a pod boundary keeps and publishes its files, and where it answers health checks.
#[derive(Debug, Clone)]
pub struct PodOptions {
    /// Readable by the boundary alone (an `emptyDir` only the sidecar mounts): the CA's key
    /// and the termination marker. Created 0700 if missing.
    pub state_dir: PathBuf,
    /// Shared with the app (an `emptyDir` both mount): `ca.pem` and `ca-bundle.pem` are
    /// written here. Created if missing.
    pub publish_dir: PathBuf,
    /// The system bundle the published bundle starts from (the sidecar image's public roots).
    pub system_bundle: PathBuf,
    /// Address of `GET /livez` and `GET /readyz`.
    pub health: Option<SocketAddr>,
}

/// A running pod boundary. Dropping it stops serving.
#[derive(Debug)]
pub struct PodBoundary {
    boundary: Boundary,
    health: Arc<Health>,
    terminated: Arc<(AtomicBool, Notify)>,
    events: EventSink,
    id: String,
    _health_task: Option<tokio::task::JoinHandle<()>>,
}

impl PodBoundary {
    /// Serve the current network namespace with the network configuration of `builder`
    /// (its egress rules, secrets, events; the sandbox parts are not used). The capture
    /// rules must be in place (`standin_sandbox::netns::install_pod_capture`).
    pub async fn start(mut b: SandboxBuilder, opts: PodOptions) -> Result<PodBoundary, Error> {
        let mut problems = b.errors.clone();
        problems.extend(b.network.errors.iter().cloned());
        if !b.network.enabled {
            problems.push(
                "the network is off: a pod boundary serves the pod's network, turn it on"
                    .to_owned(),
            );
        }
        if !problems.is_empty() {
            return Err(Error::Config { problems });
        }
        ca_files::private_dir(&opts.state_dir)?;
        let marker = opts.state_dir.join(TERMINATED_MARKER);
        if let Ok(when) = std::fs::read_to_string(&marker) {
            return Err(Error::config(format!(
                "this pod was terminated after a secret violation ({}); its outputs cannot \
                 be trusted and it is not served again: delete the pod (the marker is {})",
                when.trim(),
                marker.display()
            )));
        }
        let id = sandbox_id();
        let events = b.network.take_sink(&id, &b.name).map_err(Error::config)?;
        let secrets = Arc::new(b.network.take_secret_set()?);
        let settings = b.network.boundary_settings()?;
        let intercept = !secrets.is_empty();
        let ca = if intercept {
            let ca = ca_files::load_or_create(&opts.state_dir, &b.name)?;
            ca_files::publish(&opts.publish_dir, &ca.cert_pem(), &opts.system_bundle)?;
            Some(Arc::new(ca))
        } else {
            None
        };
        if settings.dns_upstreams.is_empty() {
            return Err(Error::config(
                "no DNS upstream: none given (dns_upstreams) and none in /etc/resolv.conf",
            ));
        }
        let sockets =
            standin_sandbox::netns::bind_listeners("this network namespace").map_err(|e| {
                Error::Io(std::io::Error::other(format!(
                    "{e} (another boundary, or a process of the app, holds the port)"
                )))
            })?;
        let terminated = Arc::new((AtomicBool::new(false), Notify::new()));
        let health = Arc::new(Health::default());
        let hook = {
            let terminated = terminated.clone();
            let health = health.clone();
            standin_boundary::TerminateHook(Some(Arc::new(move || {
                health.set_ready(false);
                let when = format!("at {} s since the Unix epoch", now_unix());
                if let Err(e) = std::fs::write(&marker, &when) {
                    tracing::error!(error = %e, marker = %marker.display(), "cannot record the termination");
                }
                terminated.0.store(true, Ordering::Release);
                terminated.1.notify_waiters();
            })))
        };
        let boundary = Boundary::start(
            listeners(sockets),
            BoundaryConfig {
                sandbox_id: id.clone(),
                // The pod's own addresses never reach the relay (the rules keep local traffic
                // local); loopback and the rest are refused by the fixed guard.
                sandbox_addrs: Vec::new(),
                events: events.clone(),
                secrets: intercept.then(|| secrets.clone()),
                refusal: secrets.on_violation.respond.unwrap_or_default(),
                ca,
                on_terminate: hook,
                ..settings
            },
        )?;
        let health_task = match opts.health {
            Some(addr) => Some(health::serve(addr, health.clone()).await?),
            None => None,
        };
        health.set_ready(true);
        let mut started = Event::new(&id, EventKind::SandboxStarted, EventProtocol::None);
        started.action = EventAction::Record;
        started.detail = Some("pod boundary".to_owned());
        events.emit(started);
        Ok(PodBoundary {
            boundary,
            health,
            terminated,
            events,
            id,
            _health_task: health_task,
        })
    }

    /// Replace secret `env`'s value (a value file changed). The same guarantees as
    /// [`crate::Sandbox::update_secret`].
    pub fn update_secret(&self, env: &str, value: impl Into<Vec<u8>>) -> Result<(), Error> {
        self.boundary
            .update_secret(env, SecretValue::new(value.into()))
            .map_err(|e| Error::config(e.to_string()))
    }

    /// Resolves once a block-and-terminate violation has ended this pod's service.
    pub async fn terminated(&self) {
        loop {
            let notified = self.terminated.1.notified();
            if self.terminated.0.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }

    /// Whether a block-and-terminate violation has ended this pod's service.
    pub fn is_terminated(&self) -> bool {
        self.terminated.0.load(Ordering::Acquire)
    }

    /// The readiness the health endpoint reports (set unready before shutting down).
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// Record the end of service (a `sandbox-exited` event with `code`).
    pub fn record_exit(&self, code: i32) {
        let mut e = Event::new(&self.id, EventKind::SandboxExited, EventProtocol::None);
        e.action = EventAction::Record;
        e.exit_code = Some(code);
        self.events.emit(e);
    }
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
