//! Imports run one way: each top-level module uses only modules of lower layers, so that the
//! command line sits on top, rendering knows nothing of terminals, and planning nothing of
//! writing. Checked by reading the sources, since the compiler allows any direction.

use std::path::Path;

/// The layers, lowest first; a module may use those of lower layers only.
const LAYERS: &[&[&str]] = &[
    &["model", "credentials", "files", "http", "lock"],
    &["redact", "manifest", "probe"],
    &["api", "sink", "plan"],
    &["apply"],
    &["read"],
    &["status"],
    &["report"],
    &["watch"],
    &["cli"],
];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// Every `crate::NAME` in `text`.
fn uses(text: &str) -> Vec<&str> {
    text.match_indices("crate::")
        .map(|(at, found)| {
            let rest = &text[at + found.len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .collect()
}

fn rust_files(path: &Path, found: &mut Vec<std::path::PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).expect("a source directory reads") {
            rust_files(&entry.expect("an entry").path(), found);
        }
    } else if path.extension().is_some_and(|ext| ext == "rs") {
        found.push(path.to_owned());
    }
}

#[test]
fn every_module_uses_only_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut broken = Vec::new();
    let mut modules = 0;
    for entry in std::fs::read_dir(&src).expect("src reads") {
        let path = entry.expect("an entry").path();
        let name = path.file_stem().and_then(|n| n.to_str()).expect("a name");
        if matches!(name, "lib" | "main" | "layers") {
            continue;
        }
        let own = layer(name).unwrap_or_else(|| panic!("src/{name} is in no layer: add it"));
        modules += 1;
        let mut files = Vec::new();
        rust_files(&path, &mut files);
        for file in files {
            let text = std::fs::read_to_string(&file).expect("a source file reads");
            for used in uses(&text) {
                match layer(used) {
                    Some(theirs) if theirs < own || used == name => {}
                    Some(_) => broken.push(format!("{} uses crate::{used}", file.display())),
                    None => {}
                }
            }
        }
    }
    assert!(
        modules >= 15,
        "only {modules} modules found under {}",
        src.display()
    );
    assert!(
        broken.is_empty(),
        "imports against the layers:\n{}",
        broken.join("\n")
    );
}

#[test]
fn a_use_is_found_wherever_it_stands() {
    assert_eq!(
        uses("use crate::cli::X; f(crate::report::g()); crate::model"),
        ["cli", "report", "model"]
    );
}
