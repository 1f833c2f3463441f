//! The TypeScript SDK end to end: Node's own test runner runs `sdk/typescript/test/` (built by
//! `npm run build` there, as `.ci/run` does) inside the client namespace of a fake internet
//! built here, with a registry holding the image the tests name.

#[path = "images_support/registry.rs"]
mod registry;
#[path = "images_support/sdk_world.rs"]
mod sdk_world;
mod support;
#[path = "images_support/token.rs"]
mod token;

use support::{report, stdout};

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn the_reference_examples_and_the_package_tests_pass_under_node() {
    let package = sdk_world::package_dir("typescript");
    for built in ["standin.node", "build/test/examples.test.js"] {
        assert!(
            package.join(built).exists(),
            "{} is missing: build the package first (cd sdk/typescript && npm ci && npm run build), as .ci/run does",
            package.join(built).display()
        );
    }
    let world = sdk_world::World::new();
    let mut node = world.net.host_program("node");
    node.arg("--test")
        .args(["--test-concurrency=1", "--test-reporter=spec"])
        .args(["build/test/examples.test.js", "build/test/sdk.test.js"])
        .current_dir(&package);
    world.configure(&mut node);
    let o = node.output().expect("run node --test");
    assert!(o.status.success(), "{}", report(&o, &world.net));
    // Every test ran (none skipped or filtered away).
    let out = stdout(&o);
    // The runner's report, for `--nocapture`.
    println!("{out}");
    assert!(
        out.contains("ℹ fail 0") && out.contains("ℹ skipped 0"),
        "{out}"
    );
}
