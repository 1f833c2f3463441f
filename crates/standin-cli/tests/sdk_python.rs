//! The Python SDK end to end: pytest runs `sdk/python/tests/` with the interpreter of the
//! virtual environment the package was installed in (`target/python-sdk-venv`, made by
//! `.ci/run`), inside the client namespace of a fake internet built here, with a registry
//! holding the image the tests name. The same world as the TypeScript tests.

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
fn the_reference_examples_and_the_package_tests_pass_under_pytest() {
    let package = sdk_world::package_dir("python");
    let python = package.join("../../target/python-sdk-venv/bin/python");
    let installed = std::process::Command::new(&python)
        .args(["-c", "import standin._standin, pytest"])
        .output();
    assert!(
        installed.is_ok_and(|o| o.status.success()),
        "the package is not installed in {}: run the Python SDK steps of .ci/run (python3 -m venv, pip install maturin pytest, maturin develop)",
        python.display()
    );
    let world = sdk_world::World::new();
    let mut pytest = world.net.host_program(python.to_str().unwrap());
    pytest
        .args(["-m", "pytest", "-v", "-p", "no:cacheprovider", "tests"])
        .current_dir(&package);
    world.configure(&mut pytest);
    let o = pytest.output().expect("run pytest");
    assert!(o.status.success(), "{}", report(&o, &world.net));
    let out = stdout(&o);
    // The runner's report, for `--nocapture`.
    println!("{out}");
    assert!(
        out.contains(" passed") && !out.contains("skipped") && !out.contains("deselected"),
        "{out}"
    );
}
