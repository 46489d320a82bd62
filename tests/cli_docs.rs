//! The command line documents itself: completions, the man page, `--version` and `--help`.

use assert_cmd::Command;

fn run(args: &[&str]) -> String {
    let output = Command::cargo_bin("kayle-sync")
        .unwrap()
        .args(args)
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn completions_cover_every_shell_and_command() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let script = run(&["completions", shell]);
        for word in ["kayle-sync", "plan", "apply", "rotate", "auto-approve"] {
            assert!(script.contains(word), "{shell}: no {word}");
        }
    }
}

#[test]
fn man_page_is_roff_with_the_commands_and_the_environment() {
    let page = run(&["man"]);
    assert!(page.contains(".TH kayle-sync 1"), "{page}");
    for word in ["rotate", "KAYLE_SYNC_LATE_WINDOW"] {
        assert!(page.contains(word), "no {word}: {page}");
    }
}

#[test]
fn version_names_the_commit_of_a_git_checkout() {
    let version = run(&["--version"]);
    assert!(
        version.starts_with(&format!("kayle-sync {}", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    match head {
        Ok(head) if head.status.success() => {
            let commit = String::from_utf8(head.stdout).unwrap();
            assert!(
                version.contains(&format!("({})", commit.trim())),
                "{version}"
            );
        }
        // Not a checkout (a packaged crate): the bare version.
        _ => assert_eq!(
            version.trim(),
            format!("kayle-sync {}", env!("CARGO_PKG_VERSION"))
        ),
    }
}

#[test]
fn help_lists_the_environment_variables() {
    let help = run(&["--help"]);
    for name in [
        "KAYLE_API_URL",
        "KAYLE_API_KEY",
        "KAYLE_SYNC_HTTP_TIMEOUT",
        "KAYLE_SYNC_LATE_WINDOW",
        "NO_COLOR",
        "CI",
        "RUST_LOG",
    ] {
        assert!(help.contains(name), "no {name}: {help}");
    }
}

#[test]
fn a_failing_stdout_is_an_error_not_a_panic() {
    for args in [&["completions", "bash"][..], &["man"]] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let output = std::process::Command::new(assert_cmd::cargo::cargo_bin("kayle-sync"))
            .args(args)
            .stdout(full)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    }
}

/// Where a generated part of a document starts and ends.
const BEGIN: &str = "<!-- generated: begin -->\n";
const END: &str = "<!-- generated: end -->\n";

/// Checks that the generated part of `doc` is `expected`. With `KAYLE_SYNC_BLESS_DOCS=1` it is
/// rewritten first, so that a new name is documented by running the test once.
#[track_caller]
fn assert_generated(doc: &str, expected: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(doc);
    let text = std::fs::read_to_string(&path).unwrap();
    let start = text.find(BEGIN).expect("a generated part") + BEGIN.len();
    let end = start
        + text[start..]
            .find(END)
            .expect("the end of the generated part");
    if &text[start..end] != expected && std::env::var_os("KAYLE_SYNC_BLESS_DOCS").is_some() {
        let updated = format!("{}{expected}{}", &text[..start], &text[end..]);
        std::fs::write(&path, updated).unwrap();
        return;
    }
    assert_eq!(
        &text[start..end],
        expected,
        "{doc} does not list the names as kayle-sync has them; run this test with \
         KAYLE_SYNC_BLESS_DOCS=1 to rewrite it"
    );
}

/// A markdown table of names and what they mean, under `header`'s two column titles.
fn table<'a>(header: [&str; 2], rows: impl IntoIterator<Item = (String, &'a str)>) -> String {
    let mut table = format!("| {} | {} |\n|---|---|\n", header[0], header[1]);
    for (name, meaning) in rows {
        table.push_str(&format!("| `{name}` | {meaning} |\n"));
    }
    table
}

#[test]
fn the_diagnostic_codes_are_documented_from_the_enum() {
    let codes = kayle_sync::manifest::Code::ALL.map(|code| (code.to_string(), code.description()));
    assert_generated("docs/diagnostics.md", &table(["Code", "Meaning"], codes));
}

#[test]
fn the_watch_log_events_are_documented_from_the_enum() {
    let events = kayle_sync::watch::LogEvent::ALL
        .map(|event| (event.as_str().to_owned(), event.description()));
    assert_generated(
        "docs/watch.md",
        &table(["`event`", "The line says"], events),
    );
}

#[test]
fn the_apply_step_kinds_are_documented_from_the_enum() {
    let kinds =
        kayle_sync::apply::StepKind::ALL.map(|kind| (kind.as_str().to_owned(), kind.description()));
    assert_generated("docs/json.md", &table(["`kind`", "The step"], kinds));
}

#[test]
fn what_a_receiver_made_of_a_rotation_is_documented() {
    use kayle_sync::apply::ReceiverCheck;
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/json.md"),
    )
    .unwrap();
    let reason = || "why".to_owned();
    let all = [
        ReceiverCheck::Accepted {
            after_seconds: 1.0,
            retried: 0,
        },
        ReceiverCheck::NotReachable {
            reason: reason(),
            failed_since_rotation: 0,
        },
        ReceiverCheck::NotProbed {
            reason: reason(),
            failed_since_rotation: 0,
        },
    ];
    for check in all {
        // Fails to compile when a kind is added: add it to `all` too.
        match check {
            ReceiverCheck::Accepted { .. }
            | ReceiverCheck::NotReachable { .. }
            | ReceiverCheck::NotProbed { .. } => {}
        }
        let json = serde_json::to_value(&check).unwrap();
        let name = json["receiver"].as_str().unwrap();
        assert!(
            doc.contains(&format!("`{name}`")),
            "docs/json.md lacks {name}"
        );
        for field in json.as_object().unwrap().keys() {
            assert!(
                doc.contains(&format!("`{field}`")),
                "docs/json.md lacks {field}"
            );
        }
    }
}
