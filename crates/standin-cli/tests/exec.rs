//! The SDK: create a sandbox, exec into it, stop it.

mod support;
use standin::Sandbox;
use support::*;

fn builder() -> standin::SandboxBuilder {
    Sandbox::builder("exec-test")
        .helper(standin_bin())
        .no_network()
        .hostname("exec-box")
}

#[tokio::test]
async fn exec_runs_in_the_same_sandbox_with_the_same_hardening() {
    let sb = builder().env("FROM_BUILDER", "1").create().await.unwrap();
    let w = sb
        .exec("sh", ["-c", "echo shared > /tmp/note; hostname"])
        .await
        .unwrap();
    assert_eq!(w.code, 0, "{}", String::from_utf8_lossy(&w.stderr));
    assert_eq!(w.stdout_str().trim(), "exec-box");
    let r = sb.exec("cat", ["/tmp/note"]).await.unwrap();
    assert_eq!(
        r.stdout_str(),
        "shared\n",
        "second exec does not share /tmp"
    );
    let st = sb
        .exec("sh", ["-c", "grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status; echo $FROM_BUILDER; pwd; cat /proc/1/cmdline | head -c 200 | tr '\\0' ' '"])
        .await
        .unwrap();
    let s = format!(
        "{}\n--- code {} stderr:\n{}",
        st.stdout_str(),
        st.code,
        String::from_utf8_lossy(&st.stderr)
    );
    assert!(s.contains("CapEff:\t0000000000000000"), "{s}");
    assert!(s.contains("CapBnd:\t0000000000000000"), "{s}");
    assert!(s.contains("NoNewPrivs:\t1"), "{s}");
    assert!(s.contains("Seccomp:\t2"), "{s}");
    assert!(s.contains("\n1\n/workspace\n"), "{s}");
    assert!(
        s.contains("__standin-stage1"),
        "PID 1 is not the sandbox's init: {s}"
    );
    // A failing command's output is its output all the same.
    let failed = sb
        .exec("sh", ["-c", "echo partial; echo why >&2; exit 42"])
        .await
        .unwrap();
    assert_eq!(
        (failed.code, failed.stdout_str(), failed.stderr_str()),
        (42, "partial\n".to_owned(), "why\n".to_owned())
    );
    sb.stop();
    // Nothing starts in a stopped sandbox: exec fails, it does not return an exit code.
    let after = sb.exec("true", Vec::<String>::new()).await;
    assert!(
        matches!(&after, Err(e) if e.to_string().contains("the sandbox has stopped")),
        "exec into a stopped sandbox: {after:?}"
    );
}

#[tokio::test]
async fn dropping_the_sandbox_kills_its_processes() {
    let marker = format!("{}.5", unique("88"));
    let sb = builder().create().await.unwrap();
    let mut child = sb
        .spawn(
            vec![
                "sh".into(),
                "-c".into(),
                format!("sleep {marker} & echo up"),
            ],
            &[],
            Default::default(),
        )
        .unwrap();
    let out = child.wait().unwrap();
    assert!(out.success());
    let init = sb.init_pid();
    assert!(std::path::Path::new(&format!("/proc/{init}")).exists());
    drop(sb);
    // Drop kills init with SIGKILL; init's parent (stage1) reaps it right away. Once init is
    // reaped the kernel has killed the whole PID namespace.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let alive = std::fs::read_to_string(format!("/proc/{init}/stat")).is_ok();
        if !alive {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "init survived drop");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[tokio::test]
async fn invalid_builder_input_is_reported_by_create() {
    let err = builder()
        .hostname("bad host!")
        .env("A=B", "x")
        .create()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("hostname"), "{err}");
    assert!(err.contains("contains '='"), "{err}");
}

#[tokio::test]
async fn main_command_pipes_and_exit_code_reach_the_sdk() {
    use std::io::Read;
    use std::process::Stdio;
    let mut sb = builder()
        .command(["sh", "-c", "echo from-main; exit 3"])
        .stdio(
            standin::StdioSpec::default()
                .stdin(Stdio::null())
                .stdout(Stdio::piped()),
        )
        .create()
        .await
        .unwrap();
    let mut stdout = sb.take_main_pipes().unwrap().stdout.unwrap();
    assert_eq!(sb.wait().await.unwrap(), 3);
    let mut s = String::new();
    stdout.read_to_string(&mut s).unwrap();
    assert_eq!(s, "from-main\n");
}
