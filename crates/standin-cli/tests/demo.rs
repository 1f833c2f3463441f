//! `standin demo`, the README's first command: it must show all four outcomes, and never
//! let a real value into a sandbox.

mod support;

use support::*;

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn the_demo_shows_the_four_outcomes() {
    require_root();
    let o = std::process::Command::new(standin_bin())
        .arg("demo")
        .output()
        .unwrap();
    let out = stdout(&o);
    assert!(o.status.success(), "{out}\n{}", stderr(&o));
    let section = |n: &str| {
        let start = out
            .find(n)
            .unwrap_or_else(|| panic!("no section {n}:\n{out}"));
        let rest = &out[start..];
        let end = rest[3..].find("\n\n").map_or(rest.len(), |e| e + 3);
        rest[..end].to_owned()
    };
    assert!(
        out.contains("sees OPENAI_API_KEY=$MSB_OPENAI_API_KEY"),
        "{out}"
    );
    let s1 = section("1. SUBSTITUTE");
    assert!(s1.contains("api.openai.com received:"), "{s1}");
    assert!(
        s1.to_ascii_lowercase()
            .contains("authorization: bearer sk-demo-"),
        "{s1}"
    );
    let s2 = section("2. BLOCK");
    assert!(s2.contains("destinations received: nothing"), "{s2}");
    assert!(s2.contains("reset"), "{s2}");
    assert!(
        s2.contains("secret-violation secret=OPENAI_API_KEY"),
        "{s2}"
    );
    let s3 = section("3. PASS THROUGH");
    assert!(s3.contains("traces.example received:"), "{s3}");
    assert!(s3.contains("Bearer $MSB_OPENAI_API_KEY"), "{s3}");
    assert!(!s3.contains("sk-demo-"), "{s3}");
    let s4 = section("4. BLOCK AND TERMINATE");
    assert!(
        s4.to_ascii_lowercase()
            .contains("authorization: bearer npm_demo"),
        "{s4}"
    );
    assert!(!s4.contains("evil.example received"), "{s4}");
    assert!(s4.contains("sandbox-terminated"), "{s4}");
    assert!(s4.contains("terminated by the boundary"), "{s4}");
    assert!(!s4.contains("never reached"), "{s4}");
}
