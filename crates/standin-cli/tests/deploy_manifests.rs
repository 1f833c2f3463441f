//! The Kubernetes manifests in `deploy/kubernetes/`: valid against the Kubernetes API
//! schemas (offline, with `kubernetes-validate` from PyPI, which `.ci/run` installs into
//! `target/k8s-validate-venv`), and in step with what standin prints and reads.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use support::*;

/// The Kubernetes version the manifests are checked against (native sidecars need 1.29+).
const KUBERNETES_VERSION: &str = "1.31.0";
const MANIFESTS: &[&str] = &[
    "configmap.yaml",
    "secret.yaml",
    "networkpolicy.yaml",
    "deployment.yaml",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn deploy(file: &str) -> PathBuf {
    root().join("deploy/kubernetes").join(file)
}

fn validate(files: &[PathBuf]) -> std::process::Output {
    let validator = root().join("target/k8s-validate-venv/bin/kubernetes-validate");
    assert!(
        validator.exists(),
        "{} is missing: .ci/run installs it (pip install kubernetes-validate)",
        validator.display()
    );
    Command::new(validator)
        .args(["--strict", "-k", KUBERNETES_VERSION])
        .args(files)
        .output()
        .unwrap()
}

#[test]
#[ignore = "needs the schema validator .ci/run installs; .ci/run runs it with --include-ignored"]
fn the_manifests_pass_strict_schema_validation_and_a_broken_one_does_not() {
    let files: Vec<PathBuf> = MANIFESTS.iter().map(|f| deploy(f)).collect();
    let o = validate(&files);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(
        stdout(&o).matches("passed").count(),
        MANIFESTS.len(),
        "{}",
        stdout(&o)
    );
    // The validator is strict: a misspelt field fails it.
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("deployment.yaml");
    let text = std::fs::read_to_string(deploy("deployment.yaml")).unwrap();
    std::fs::write(
        &broken,
        text.replace("readOnlyRootFilesystem", "readOnlyRootFileSystem"),
    )
    .unwrap();
    let o = validate(&[broken]);
    assert!(!o.status.success(), "{}", stdout(&o));
}

#[test]
fn the_example_deployment_carries_what_boundary_env_prints_and_the_configmap_the_config() {
    let config = deploy("config.toml");
    let o = Command::new(standin_bin())
        .args(["boundary", "env", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let env: String = stdout(&o)
        .lines()
        .map(|l| format!("            {l}\n"))
        .collect();
    let deployment = std::fs::read_to_string(deploy("deployment.yaml")).unwrap();
    assert!(
        deployment.contains(&format!("          env:\n{env}")),
        "deployment.yaml's agent env differs from `standin boundary env`:\n{env}"
    );
    let configmap = std::fs::read_to_string(deploy("configmap.yaml")).unwrap();
    let toml = std::fs::read_to_string(&config).unwrap();
    for line in toml
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        assert!(
            configmap.contains(&format!("    {line}\n")),
            "configmap.yaml lacks {line:?} of config.toml"
        );
    }
}
