//! `standin boundary`: the boundary as a pod sidecar (`standin::pod`), its init step
//! (`boundary init`: the capture rules) and the app's environment (`boundary env`).
//! docs/DEPLOY.md explains the deployment; this module turns flags into those calls.

use crate::cli::{
    BoundaryArgs, BoundaryCommand, BoundaryEnvArgs, BoundaryInitArgs, BoundaryServeArgs, RunArgs,
};
use crate::{EXIT_SECRET_TERMINATED, config, configure_network, secrets};
use anyhow::{Context, bail};
use clap::{Args, FromArgMatches};
use standin::Sandbox;
use standin::pod::{CA_BUNDLE_FILE, CA_FILE, PodBoundary, PodOptions};

/// Entry point: one of the three roles.
pub(crate) fn main(args: BoundaryArgs) -> i32 {
    let result = match args.command {
        Some(BoundaryCommand::Init(a)) => init(&a),
        Some(BoundaryCommand::Env(a)) => env(&a),
        None => serve(args.serve),
    };
    crate::report(result)
}

/// RunArgs as if no flag were given: the boundary takes everything from its config file.
fn no_run_flags() -> RunArgs {
    let cmd = RunArgs::augment_args(clap::Command::new("run"));
    RunArgs::from_arg_matches(&cmd.get_matches_from(["run"]))
        .expect("run's flags all have defaults")
}

fn init(a: &BoundaryInitArgs) -> anyhow::Result<i32> {
    if let Some(ns) = &a.netns {
        standin_sandbox::netns::enter_netns(ns).map_err(anyhow::Error::msg)?;
    }
    standin_sandbox::netns::install_pod_capture(a.uid).map_err(|e| {
        anyhow::anyhow!(
            "installing the capture rules: {e} (the init container needs CAP_NET_ADMIN and the \
             nft tool; see docs/DEPLOY.md)"
        )
    })?;
    eprintln!(
        "standin: capture rules installed; every uid but {} goes through the boundary",
        a.uid
    );
    Ok(0)
}

fn env(a: &BoundaryEnvArgs) -> anyhow::Result<i32> {
    let cfg = config::Config::load(&a.config)?;
    let builder = network_builder(&cfg, "app", secrets::Values::PlaceholdersOnly)?;
    let mut pairs = builder.placeholders();
    let bundle = a.ca_dir.join(CA_BUNDLE_FILE).display().to_string();
    let ca = a.ca_dir.join(CA_FILE).display().to_string();
    if !pairs.is_empty() {
        for (name, value) in standin_policy::guest_env::ca_variables(&bundle, &ca) {
            pairs.push((name.to_owned(), value.to_owned()));
        }
    }
    let mut out = String::new();
    for (name, value) in &pairs {
        if a.format == "env" {
            out.push_str(&format!("{name}={value}\n"));
        } else {
            // JSON strings are YAML double-quoted scalars.
            out.push_str(&format!(
                "- name: {name}\n  value: {}\n",
                serde_json::to_string(value)?
            ));
        }
    }
    print!("{out}");
    Ok(0)
}

/// The SDK builder for `cfg`'s network, as `run` would make it without flags.
fn network_builder(
    cfg: &config::Config,
    name: &str,
    values: secrets::Values,
) -> anyhow::Result<standin::SandboxBuilder> {
    configure_network(Sandbox::builder(name), cfg, &no_run_flags(), values)
}

fn serve(a: BoundaryServeArgs) -> anyhow::Result<i32> {
    let config_path = a
        .config
        .as_ref()
        .context("--config FILE is required: the policy and secrets this boundary serves")?;
    let mut cfg = config::Config::load(config_path)?;
    let euid = nix::unistd::geteuid().as_raw();
    if let Some(uid) = a.uid
        && uid != euid
    {
        bail!(
            "--uid {uid}: this boundary runs as uid {euid}, and the capture rules exempt only \
             --uid, so its own connections would be captured; run it as uid {uid} \
             (runAsUser), or give --uid {euid} to `boundary init` too"
        );
    }
    let uid = a.uid.unwrap_or(euid);
    // Before any thread: threads started later inherit the namespace.
    if let Some(ns) = &a.netns {
        standin_sandbox::netns::enter_netns(ns).map_err(anyhow::Error::msg)?;
    }
    if a.install_rules {
        standin_sandbox::netns::install_pod_capture(uid).map_err(|e| {
            anyhow::anyhow!("--install-rules: {e} (it needs CAP_NET_ADMIN; or run `standin boundary init` in an init container)")
        })?;
    }
    cfg.network.events = Some(
        a.events
            .clone()
            .or(cfg.network.events.take())
            .unwrap_or_else(|| "-".into()),
    );
    let name = a
        .name
        .clone()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "pod".to_owned());
    if let Err(e) = standin::detached::validate_name(&name) {
        bail!("--name (or $HOSTNAME): {e}");
    }
    let builder = network_builder(&cfg, &name, secrets::Values::Read)?;
    let mut files = secrets::ValueFiles::new(secrets::value_files(&cfg, &no_run_flags()));
    let runtime = crate::new_runtime().context("starting the async runtime")?;
    runtime.block_on(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let mut sigterm = signal(SignalKind::terminate())?;
        let mut sigint = signal(SignalKind::interrupt())?;
        let mut sighup = signal(SignalKind::hangup())?;
        let pod = PodBoundary::start(
            builder,
            PodOptions {
                state_dir: a.state_dir.clone(),
                publish_dir: a.ca_dir.clone(),
                system_bundle: a.system_bundle.clone(),
                health: a.health,
            },
        )
        .await?;
        if standin_sandbox::netns::pod_capture_installed() == Some(false) {
            bail!(
                "the capture rules are not installed in this network namespace: run `standin \
                 boundary init --uid {uid}` first (an init container), or pass --install-rules"
            );
        }
        eprintln!("standin: serving this network namespace (uid {uid} exempt)");
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(a.reload_secs));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let code = loop {
            tokio::select! {
                _ = pod.terminated() => {
                    eprintln!(
                        "standin: a secret violation terminated this pod (block-and-terminate): \
                         every connection is refused and the pod stays unready; its outputs \
                         cannot be trusted: delete it"
                    );
                    break EXIT_SECRET_TERMINATED;
                }
                _ = tick.tick() => files.reload_with("value file", |env, v| {
                    pod.update_secret(env, v).map_err(|e| e.to_string())
                }),
                _ = sighup.recv() => files.reload_with("SIGHUP", |env, v| {
                    pod.update_secret(env, v).map_err(|e| e.to_string())
                }),
                _ = sigterm.recv() => break 0,
                _ = sigint.recv() => break 0,
            }
        };
        // The rules stay: until a boundary serves again, the pod's connections are refused.
        pod.health().set_ready(false);
        pod.record_exit(code);
        Ok(code)
    })
}
