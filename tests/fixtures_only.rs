//! Tests never read files a user edits: everything but the tests about the examples takes its
//! files from tests/fixtures or writes them to a temp dir, so editing an example cannot break
//! (or quietly weaken) a test of something else.

use std::path::{Path, PathBuf};

/// The tests that are about the examples, and may read them.
const ABOUT_THE_EXAMPLES: [&str; 2] = [
    // Validates every example against the JSON schemas.
    "tests/validate_schemas.rs",
    // Runs the README's quickstart as written.
    "tests/e2e_cli.rs",
];

fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            // Fixtures are data, snapshots are recorded output: neither reads a file.
            if !path.ends_with("tests/fixtures") && !path.ends_with("tests/snapshots") {
                sources(&path, found);
            }
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn only_the_tests_about_the_examples_read_them() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    for dir in ["tests", "benches", "crates/kayle-emulator/tests"] {
        sources(&root.join(dir), &mut found);
    }
    assert!(
        found.len() > 20,
        "the test sources were not found: {found:?}"
    );
    let readers: Vec<String> = found
        .iter()
        .map(|path| path.strip_prefix(root).unwrap().display().to_string())
        .filter(|path| !ABOUT_THE_EXAMPLES.contains(&path.as_str()) && !path.ends_with(file!()))
        .filter(|path| {
            let text = std::fs::read_to_string(root.join(path)).unwrap();
            text.contains("examples/")
        })
        .collect();
    assert!(
        readers.is_empty(),
        "these read examples/ (copy what they need to tests/fixtures): {readers:?}"
    );
}
