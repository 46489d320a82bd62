//! `kayle-sync validate` as users run it: exit codes, stdout summary, stderr diagnostics, JSON.

use assert_cmd::Command;
use predicates::prelude::*;

fn kayle_sync() -> Command {
    let mut cmd = Command::cargo_bin("kayle-sync").unwrap();
    cmd.env_remove("KAYLE_API_KEY").env_remove("KAYLE_API_URL");
    cmd
}

/// A temporary config directory: the quickstart's project file and `e.yaml` holding `manifest`.
fn quickstart_with(manifest: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        "tests/fixtures/quickstart/kayle-sync.yaml",
        dir.path().join("kayle-sync.yaml"),
    )
    .unwrap();
    std::fs::write(dir.path().join("e.yaml"), manifest).unwrap();
    dir
}

#[test]
fn a_valid_directory_exits_zero_with_a_one_line_summary() {
    kayle_sync()
        .args(["validate", "tests/fixtures/staging"])
        .assert()
        .success()
        .stdout("2 endpoints in 2 files: valid\n")
        .stderr("");
}

#[test]
fn warnings_go_to_stderr_and_do_not_fail() {
    let dir = quickstart_with("endpoints:\n  web:\n    url: https://hooks.example.com/k\n");
    kayle_sync()
        .arg("validate")
        .arg(dir.path())
        .assert()
        .success()
        .stdout("1 endpoint in 1 file: valid\n")
        .stderr(predicate::str::contains(
            "e.yaml:2:3: warning: endpoints.web: enabled without an encryption key",
        ));
}

#[test]
fn an_invalid_directory_exits_one_with_every_diagnostic_on_stderr() {
    let dir = "tests/fixtures/manifests/bad/many-problems-one-run";
    kayle_sync()
        .args(["validate", dir])
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains(format!("{dir}/a.yaml:3:10: endpoints.web.url: http:// is allowed only")))
        .stderr(predicate::str::contains(format!("{dir}/b.yaml:4:5: endpoints.other.enabeld: unknown field `enabeld`\n  hint: did you mean `enabled`?")))
        .stderr(predicate::str::ends_with(format!("{dir}: 6 errors\n")));
}

#[test]
fn json_format_prints_the_diagnostics_as_json() {
    let output = kayle_sync()
        .args([
            "validate",
            "tests/fixtures/manifests/bad/unknown-sink",
            "--format",
            "json",
        ])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let body: serde_json::Value = serde_json::from_slice(&output).unwrap();
    assert_eq!(body["valid"], false);
    let first = &body["diagnostics"][0];
    assert_eq!(first["code"], "unknown-sink");
    assert_eq!(first["severity"], "error");
    assert_eq!(first["field"], "endpoints.web.signing_secret.sink");
    assert_eq!(first["location"]["line"], 6);
    assert_eq!(first["hint"], "did you mean `local`?");
}

#[test]
fn json_format_on_success_reports_counts() {
    let output = kayle_sync()
        .args(["validate", "tests/fixtures/quickstart", "--format", "json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let body: serde_json::Value = serde_json::from_slice(&output).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"valid": true, "endpoints": 2, "files": 1, "diagnostics": []})
    );
}

#[test]
fn validate_needs_no_token_and_defaults_to_the_current_directory() {
    kayle_sync()
        .current_dir("tests/fixtures/quickstart")
        .arg("validate")
        .assert()
        .success()
        .stdout("2 endpoints in 1 file: valid\n");
}

/// Makes a named pipe at `path`: opening one for reading blocks until a writer comes.
fn mkfifo(path: &std::path::Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

#[test]
fn a_named_pipe_among_the_manifests_is_skipped_with_a_warning_not_opened() {
    let dir = quickstart_with(
        "endpoints:\n  web:\n    url: https://hooks.example.com/k\n    enabled: false\n",
    );
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    mkfifo(&dir.path().join("sub/pipe.yaml"));
    kayle_sync()
        .arg("validate")
        .arg(dir.path())
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .success()
        .stdout("1 endpoint in 1 file: valid\n")
        .stderr(predicate::str::contains(format!(
            "{}:1:1: warning: not a regular file (a named pipe); skipped",
            dir.path().join("sub/pipe.yaml").display()
        )));
}

#[test]
fn a_named_pipe_as_a_public_key_file_is_an_error_not_a_hang() {
    let dir = quickstart_with(
        "endpoints:\n  web:\n    url: https://hooks.example.com/k\n    encryption_keys:\n      - key_id: k1\n        public_key_file: k1.pem\n",
    );
    mkfifo(&dir.path().join("k1.pem"));
    kayle_sync()
        .arg("validate")
        .arg(dir.path())
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("not a regular file"));
}

#[test]
fn control_codes_and_credentials_in_a_manifest_are_not_echoed_raw() {
    // A field name and a URL holding an OSC 8 link, a carriage return and userinfo.
    let dir = quickstart_with(
        "endpoints:\n  web:\n    url: \"https://user:pw-in-file@\\e]8;;http://evil\\a\\r\"\n    \
         \"lab\\e]8;;http://evil\\aels\\r\": [x]\n",
    );
    for format in ["text", "json"] {
        let output = kayle_sync()
            .args(["validate", "--format", format])
            .arg(dir.path())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{output:?}");
        let shown = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(shown.contains("lab"), "the field is reported: {shown}");
        assert!(!shown.contains(['\u{1b}', '\u{7}', '\r']), "{shown:?}");
        assert!(!shown.contains("pw-in-file"), "{shown}");
    }
}

/// The API keeps labels unique ignoring case, so a label that spells the prefix in other
/// letters collides with the identity label (`kayle-sync:web`) or the secret-state label
/// (`kayle-sync:verify=0@0`) kayle-sync adds, and the create is refused: it is reserved too.
#[test]
fn a_label_spelling_the_prefix_in_other_letters_is_reserved_too() {
    // U+212A KELVIN SIGN lowercases to `k`, and takes more bytes than it.
    for label in [
        "Kayle-Sync:web",
        "KAYLE-SYNC:verify=0@0",
        "\u{212A}ayle-sync:web",
    ] {
        let dir = quickstart_with(&format!(
            "endpoints:\n  web:\n    url: https://hooks.example.com/k\n    \
             labels: [\"{label}\"]\n    enabled: false\n"
        ));
        kayle_sync()
            .arg("validate")
            .arg(dir.path())
            .assert()
            .code(1)
            .stderr(predicate::str::contains(
                "e.yaml:4:14: endpoints.web.labels[0]: labels starting with `kayle-sync:` are reserved",
            ));
    }
}

/// A directory name is the user's text, and a pull request can choose it: every line that
/// names it, the error count included, shows it without its control characters.
#[test]
fn a_directory_name_holding_escape_codes_is_shown_escaped() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("cfg\u{1b}[2J");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(
        "tests/fixtures/quickstart/kayle-sync.yaml",
        dir.join("kayle-sync.yaml"),
    )
    .unwrap();
    std::fs::write(
        dir.join("e.yaml"),
        "endpoints:\n  web:\n    url: http://x\n",
    )
    .unwrap();
    kayle_sync()
        .arg("validate")
        .arg(&dir)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("1 error"))
        .stderr(predicate::str::contains('\u{1b}').not());
}
