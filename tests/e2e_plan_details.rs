//! End to end: details of plan and validate that surprise a first-time user: label order, a
//! create without a name, counts of an invalid directory, a mistyped URL scheme, and a plan
//! run while `watch` holds the embedded sandbox.

use crate::support;

use std::process::Stdio;

use serde_json::{Value, json};
use support::manifests::{disabled, manifest};
use support::{Api, Project};

#[test]
fn labels_in_another_order_are_no_change() {
    let api = Api::start();
    let project = Project::new();
    project.manifest(
        "endpoints:\n  orders:\n    url: https://hooks.example.com/orders\n    enabled: false\n    \
         labels: [team-a, billing, eu]\n",
    );
    project.apply(&api, &[]);
    let live = api.one("orders");
    let mut labels: Vec<Value> = live["labels"].as_array().unwrap().clone();
    labels.reverse();
    api.patch(live["id"].as_str().unwrap(), json!({ "labels": labels }));
    assert_ne!(api.one("orders")["labels"], live["labels"], "reordered");
    project.assert_converged(&api);
}

#[test]
fn a_create_without_a_name_shows_no_name_line() {
    let api = Api::start();
    let project = Project::new();
    project.manifest(&manifest(&[disabled("orders")]));
    let text = project.run(&api, &["plan"]);
    text.expect(0);
    assert!(text.stdout.contains("+ create orders"), "{}", text.stdout);
    assert!(!text.stdout.contains("name:"), "{}", text.stdout);
    let markdown = project.run(&api, &["plan", "--format", "markdown"]);
    markdown.expect(0);
    assert!(!markdown.stdout.contains("name"), "{}", markdown.stdout);
    // JSON keeps its shape: every create lists every field, and no name is null.
    let json = project.run(&api, &["plan", "--format", "json"]);
    json.expect(0);
    let body: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(body["format_version"], 1);
    assert_eq!(
        body["changes"][0]["fields"]["name"],
        json!({"before": null, "after": null}),
        "{body:#}"
    );
}

#[test]
fn validate_in_json_counts_files_and_endpoints_of_an_invalid_directory() {
    let api = Api::start();
    let project = Project::new();
    project.write(
        "a.yaml",
        "endpoints:\n  one:\n    url: htps//hooks.example.com/one\n  two:\n    \
         url: https://hooks.example.com/two\n",
    );
    project.write("b.yaml", &manifest(&[disabled("three")]));
    let run = project.run(&api, &["validate", "--format", "json"]);
    run.expect(1);
    let body: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(body["valid"], false, "{body:#}");
    assert_eq!(body["files"], 2, "{body:#}");
    assert_eq!(body["endpoints"], 3, "{body:#}");
}

#[test]
fn a_mistyped_url_scheme_gets_a_did_you_mean() {
    let api = Api::start();
    let project = Project::new();
    for (typed, meant) in [
        ("htps//hooks.example.com/x", "https://hooks.example.com/x"),
        ("htps://hooks.example.com/x", "https://hooks.example.com/x"),
        ("https//hooks.example.com/x", "https://hooks.example.com/x"),
        ("hooks.example.com/x", "https://hooks.example.com/x"),
    ] {
        project.manifest(&format!("endpoints:\n  orders:\n    url: {typed}\n"));
        let run = project.run(&api, &["validate"]);
        run.expect(1);
        assert!(
            run.stderr.contains(&format!("hint: did you mean {meant}?")),
            "{typed}: {}",
            run.stderr
        );
        assert!(
            !run.stderr.contains("relative URL without a base"),
            "{typed}: {}",
            run.stderr
        );
    }
}

/// Whether another process holds the lock on `path` (a non-blocking `flock(2)` fails).
fn locked_elsewhere(path: &std::path::Path) -> bool {
    use std::os::fd::AsRawFd;
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    // SAFETY: flock on a descriptor owned here; unlocked when `file` is dropped.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) != 0 }
}

#[test]
fn plan_waits_while_watch_holds_the_sandbox() {
    let unused = Api::start();
    let project = Project::with_project_file(
        "api:\n  url: sandbox\nsinks:\n  local:\n    type: dotenv\n    path: secrets/kayle.env\n\
         defaults:\n  signing_secret:\n    sink: local\n",
    );
    project.manifest(&manifest(&[disabled("orders")]));
    let sandboxed = |args: &[&str]| {
        let mut command = project.command(&unused, args);
        command
            .env_remove("KAYLE_API_URL")
            .env_remove("KAYLE_API_KEY");
        command
    };
    let mut watch = sandboxed(&["watch", "--dry-run", "--interval", "1h"]);
    watch.stdout(Stdio::null()).stderr(Stdio::null());
    let mut watch = support::spawn(watch);
    let lock = project.path(".kayle-sync/sandbox.lock");
    let started = std::time::Instant::now();
    while !locked_elsewhere(&lock) {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "watch never took the sandbox"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    let mut plan = support::spawn(sandboxed(&["plan"]));
    std::thread::sleep(std::time::Duration::from_millis(1_000));
    assert!(
        plan.try_wait().unwrap().is_none(),
        "plan waits for its turn rather than failing"
    );
    watch.kill().unwrap();
    watch.wait().unwrap();
    let run = support::wait(plan);
    run.expect(0);
    assert!(
        run.stderr
            .contains("Waiting for another kayle-sync using this sandbox"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.contains("+ create orders"), "{}", run.stdout);
}
