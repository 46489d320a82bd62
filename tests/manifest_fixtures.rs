//! Every bad config directory under tests/fixtures/manifests/bad is refused, with exactly the
//! diagnostics in its snapshot; and no secret-looking file content ever reaches a message.

use std::path::{Path, PathBuf};

use kayle_sync::manifest;

const BAD: &str = "tests/fixtures/manifests/bad";

fn bad_cases() -> Vec<(String, PathBuf)> {
    let mut cases: Vec<(String, PathBuf)> = std::fs::read_dir(BAD)
        .expect("the bad fixture corpus exists")
        .map(|entry| entry.unwrap())
        .filter(|entry| entry.file_type().unwrap().is_dir())
        .map(|entry| {
            let name = entry.file_name().into_string().unwrap();
            let dir = Path::new(BAD).join(&name);
            (name, dir)
        })
        .collect();
    cases.sort();
    cases
}

fn render(diagnostics: &manifest::Diagnostics) -> String {
    diagnostics
        .0
        .iter()
        .map(|d| format!("[{}] {d}\n", d.code))
        .collect()
}

#[test]
fn the_corpus_has_at_least_thirty_cases() {
    assert!(bad_cases().len() >= 30, "{}", bad_cases().len());
}

#[test]
fn every_bad_fixture_is_refused_with_its_exact_diagnostics() {
    for (name, dir) in bad_cases() {
        let diagnostics = match manifest::load(&dir) {
            Ok(_) => panic!("{name}: expected diagnostics, the directory was accepted"),
            Err(diagnostics) => diagnostics,
        };
        assert!(!diagnostics.0.is_empty(), "{name}");
        assert!(
            diagnostics
                .0
                .iter()
                .all(|d| d.severity == manifest::Severity::Error),
            "{name}: only errors are returned as Err"
        );
        insta::assert_snapshot!(name, render(&diagnostics));
    }
}

#[test]
fn every_located_diagnostic_names_a_file_inside_the_given_directory() {
    for (name, dir) in bad_cases() {
        let Err(diagnostics) = manifest::load(&dir) else {
            panic!("{name} was accepted")
        };
        for d in &diagnostics.0 {
            if let Some(location) = &d.location {
                assert!(location.file.starts_with(&dir), "{name}: {d}");
                assert!(location.line >= 1 && location.column >= 1, "{name}: {d}");
            }
        }
    }
}

#[test]
fn key_file_contents_never_appear_in_diagnostics() {
    for case in ["key-file-private", "key-file-jwk-private"] {
        let Err(diagnostics) = manifest::load(&Path::new(BAD).join(case)) else {
            panic!("{case} was accepted")
        };
        let text = format!(
            "{diagnostics} {}",
            serde_json::to_string(&diagnostics).unwrap()
        );
        assert!(!text.contains("THIS-MUST-NEVER-BE-ECHOED"), "{text}");
        assert!(
            diagnostics
                .0
                .iter()
                .any(|d| d.code == manifest::Code::PrivateKeyRefused)
        );
    }
}

#[test]
fn diagnostics_are_in_file_line_column_order() {
    let Err(diagnostics) = manifest::load(&Path::new(BAD).join("many-problems-one-run")) else {
        panic!("accepted")
    };
    let places: Vec<_> = diagnostics
        .0
        .iter()
        .map(|d| d.location.clone().map(|l| (l.file, l.line, l.column)))
        .collect();
    let mut sorted = places.clone();
    sorted.sort();
    assert_eq!(places, sorted);
    assert!(diagnostics.0.len() >= 6, "{diagnostics}");
}
