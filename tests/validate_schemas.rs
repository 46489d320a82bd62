//! The JSON Schemas in schemas/ agree with `validate`: every example is valid under both, and
//! the bad fixtures whose rule a schema can express are refused by the schema too.

use std::path::{Path, PathBuf};

use jsonschema::Validator;
use serde_json::Value;

fn schema(name: &str) -> Validator {
    let text = std::fs::read_to_string(Path::new("schemas").join(name)).unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    assert!(
        jsonschema::meta::is_valid(&schema),
        "{name} is not a valid JSON Schema"
    );
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|err| panic!("{name}: {err}"))
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(yaml_files(&path));
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn is_project_file(path: &Path) -> bool {
    matches!(
        path.file_name().and_then(|n| n.to_str()),
        Some("kayle-sync.yaml" | "kayle-sync.yml")
    )
}

/// Schema errors for every document of a YAML file; `None` if it is not parseable YAML.
fn schema_errors(project: &Validator, manifest: &Validator, path: &Path) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(path).ok()?;
    // YAML 1.2, as kayle-sync reads it: `yes` is a string, not a boolean.
    let options = serde_saphyr::options! { strict_booleans: true };
    let docs: Vec<Value> = serde_saphyr::from_multiple_with_options(&text, options).ok()?;
    let validator = if is_project_file(path) {
        project
    } else {
        manifest
    };
    Some(
        docs.iter()
            .filter(|doc| !doc.is_null())
            .flat_map(|doc| {
                validator
                    .iter_errors(doc)
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
            })
            .collect(),
    )
}

const CONFIG_DIRS: [&str; 3] = [
    "examples/quickstart",
    "examples/multi-env/staging",
    "examples/multi-env/production",
];

#[test]
fn every_example_is_valid_under_the_schemas() {
    let (project, manifest) = (
        schema("kayle-sync.schema.json"),
        schema("manifest.schema.json"),
    );
    let mut checked = 0;
    for dir in CONFIG_DIRS {
        for file in yaml_files(Path::new(dir)) {
            let errors = schema_errors(&project, &manifest, &file).expect("parses");
            assert!(errors.is_empty(), "{}: {errors:#?}", file.display());
            checked += 1;
        }
    }
    assert!(checked >= 6, "{checked}");
}

#[test]
fn every_example_config_directory_is_valid_under_validate() {
    for dir in CONFIG_DIRS {
        let loaded = kayle_sync::manifest::load(Path::new(dir))
            .unwrap_or_else(|diagnostics| panic!("{dir}:\n{diagnostics}"));
        assert!(!loaded.desired.endpoints.is_empty(), "{dir}");
        assert!(loaded.warnings.is_empty(), "{dir}: {:?}", loaded.warnings);
    }
}

#[test]
fn every_example_yaml_names_its_schema_on_the_first_line() {
    for file in yaml_files(Path::new("examples")) {
        let text = std::fs::read_to_string(&file).unwrap();
        let first = text.lines().next().unwrap_or_default();
        let target = first
            .strip_prefix("# yaml-language-server: $schema=")
            .unwrap_or_else(|| panic!("{}: first line is {first:?}", file.display()));
        if target.starts_with("https://") {
            continue; // the GitHub workflow uses the public workflow schema
        }
        let resolved = file.parent().unwrap().join(target);
        assert!(
            resolved.is_file(),
            "{}: {} does not exist",
            file.display(),
            resolved.display()
        );
        let expected = if is_project_file(&file) {
            "kayle-sync.schema.json"
        } else {
            "manifest.schema.json"
        };
        assert!(target.ends_with(expected), "{}: {target}", file.display());
    }
}

/// The bad fixtures whose rule a JSON Schema can express. The others need the file system,
/// cross-file knowledge, the project's sinks and prefix, UTF-16 counting or YAML-level checks.
const SCHEMA_REFUSES: &[&str] = &[
    "api-token-env-not-kayle",
    "api-url-credentials",
    "api-url-http",
    "api-url-invalid",
    "aws-endpoint-foreign",
    "duplicate-endpoint-first-invalid",
    "endpoint-not-a-mapping",
    "event-type-unknown",
    "event-types-empty",
    "key-both-sources",
    "key-id-missing",
    "key-invalid-format",
    "key-no-source",
    "key-too-long",
    "label-empty",
    "label-prefix-empty",
    "label-prefix-too-long",
    "label-reserved-prefix",
    "label-too-long",
    "labels-too-many",
    "labels-too-many-with-rotation",
    "manifest-missing-endpoints",
    "manifest-not-a-mapping",
    "missing-url",
    "name-blank",
    "private-key-name-without-generate",
    "retention-invalid",
    "rotation-negative",
    "sink-missing-path",
    "sink-not-a-mapping",
    "sink-reload-invalid",
    "sink-token-env-api-token",
    "sink-token-env-other-kind",
    "sink-unknown-type",
    "token-env-invalid",
    "unknown-field-did-you-mean",
    "unknown-field-no-suggestion",
    "unknown-project-field",
    "url-credentials",
    "url-forbidden-suffix",
    "url-http",
    "url-ip-literal",
    "url-no-dot",
    "url-too-long",
    "vault-address-http",
    "wrong-type-enabled",
    "wrong-type-name",
];

#[test]
fn bad_fixtures_are_refused_by_the_schema_where_it_can_express_the_rule() {
    let (project, manifest) = (
        schema("kayle-sync.schema.json"),
        schema("manifest.schema.json"),
    );
    for case in SCHEMA_REFUSES {
        let dir = Path::new("tests/fixtures/manifests/bad").join(case);
        assert!(dir.is_dir(), "{case} is not a fixture");
        let errors: Vec<String> = yaml_files(&dir)
            .iter()
            .flat_map(|file| schema_errors(&project, &manifest, file).expect("parses"))
            .collect();
        assert!(!errors.is_empty(), "{case}: the schema accepted it");
    }
}

#[test]
fn the_schema_still_accepts_the_good_parts_of_a_bad_fixture() {
    // Guards against a schema that refuses everything: the fixtures' shared project file is fine.
    let (project, manifest) = (
        schema("kayle-sync.schema.json"),
        schema("manifest.schema.json"),
    );
    let file = Path::new("tests/fixtures/manifests/bad/url-http/kayle-sync.yaml");
    assert_eq!(schema_errors(&project, &manifest, file), Some(vec![]));
    let file = Path::new("tests/fixtures/manifests/bad/duplicate-endpoint-across-files/a.yaml");
    assert_eq!(schema_errors(&project, &manifest, file), Some(vec![]));
}
