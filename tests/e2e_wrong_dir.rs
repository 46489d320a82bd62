//! End to end: run from a directory that is not a config directory (a repository's root, one
//! level above the project), every command says so in one error, names the project files
//! nearby and how to point at them, and reads nothing else.

use crate::support;

use support::manifests::{disabled, manifest};
use support::{Api, PROJECT_FILE, Project};

/// A repository whose config directory is `deploy/kayle`, with YAML of other tools around it.
fn repository() -> Project {
    let repo = Project::with_project_file(PROJECT_FILE);
    std::fs::remove_file(repo.path("kayle-sync.yaml")).unwrap();
    repo.write("deploy/kayle/kayle-sync.yaml", PROJECT_FILE);
    repo.write(
        "deploy/kayle/endpoints.yaml",
        &manifest(&[disabled("orders")]),
    );
    repo.write("action.yml", "name: build\nruns: {using: node20}\n");
    repo.write(".github/workflows/ci.yml", "on: push\n");
    repo.write("charts/app/values.yaml", "replicas: 2\n");
    // Searched no deeper than grandchildren, and never under build output.
    repo.write("a/b/c/kayle-sync.yaml", PROJECT_FILE);
    repo.write("target/x/kayle-sync.yaml", PROJECT_FILE);
    repo
}

#[test]
fn every_command_stops_at_the_missing_project_file_and_points_at_the_nearby_one() {
    let api = Api::start();
    let repo = repository();
    repo.write("plan.json", "{}");
    for (args, suggested) in [
        (vec!["validate"], "kayle-sync validate deploy/kayle"),
        (vec!["plan"], "kayle-sync plan deploy/kayle"),
        (
            vec!["apply", "--auto-approve"],
            "kayle-sync apply deploy/kayle",
        ),
        (
            vec!["apply", "--plan", "plan.json", "--auto-approve"],
            "kayle-sync apply --plan plan.json deploy/kayle",
        ),
        (
            vec!["rotate", "orders"],
            "kayle-sync rotate orders deploy/kayle",
        ),
        (vec!["export"], "kayle-sync export deploy/kayle"),
        (
            vec!["probe", "orders"],
            "kayle-sync probe orders deploy/kayle",
        ),
        (
            vec!["probe", "--all"],
            "kayle-sync probe --all deploy/kayle",
        ),
        (vec!["watch", "--dry-run"], "kayle-sync watch deploy/kayle"),
    ] {
        let run = repo.run(&api, &args);
        run.expect(1);
        // validate's own report format: its diagnostics, then a count.
        let expected = match args[0] {
            "validate" => vec![
                ". has no kayle-sync.yaml".to_owned(),
                format!("  hint: found deploy/kayle/kayle-sync.yaml: try `{suggested}`"),
                ".: 1 error".to_owned(),
            ],
            _ => vec![
                "error: . has no kayle-sync.yaml".to_owned(),
                format!("  hint: found deploy/kayle/kayle-sync.yaml: try `{suggested}`"),
            ],
        };
        let lines: Vec<&str> = run.stderr.lines().collect();
        assert_eq!(lines, expected, "{args:?}");
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
    }
    assert!(api.endpoints().is_empty(), "nothing was read or changed");
    assert!(!repo.path(".kayle-sync").exists(), "no sandbox was started");
}

#[test]
fn validate_in_json_reports_the_one_error() {
    let api = Api::start();
    let repo = repository();
    let run = repo.run(&api, &["validate", "--format", "json"]);
    run.expect(1);
    let body: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let diagnostics = body["diagnostics"].as_array().unwrap();
    assert_eq!(diagnostics.len(), 1, "{body:#}");
    assert_eq!(diagnostics[0]["code"], "missing-project-file");
    assert_eq!(
        diagnostics[0]["hint"],
        "found deploy/kayle/kayle-sync.yaml: try `kayle-sync validate deploy/kayle`"
    );
}

#[test]
fn with_no_project_file_nearby_the_hint_names_init_and_the_docs_not_a_source_checkout() {
    let api = Api::start();
    let empty = Project::new();
    std::fs::remove_file(empty.path("kayle-sync.yaml")).unwrap();
    let run = empty.run(&api, &["validate"]);
    run.expect(1);
    assert!(run.stderr.contains("`kayle-sync init`"), "{}", run.stderr);
    assert!(run.stderr.contains("https://"), "{}", run.stderr);
    assert!(!run.stderr.contains("quickstart"), "{}", run.stderr);

    // An empty project file gets the same pointer.
    empty.write("kayle-sync.yaml", "");
    let run = empty.run(&api, &["validate"]);
    run.expect(1);
    assert!(run.stderr.contains("`kayle-sync init`"), "{}", run.stderr);
    assert!(!run.stderr.contains("quickstart"), "{}", run.stderr);
}

#[test]
fn the_hint_after_plan_out_is_the_command_that_applies_the_plan_from_here() {
    let api = Api::start();
    let repo = repository();
    let run = repo.run(&api, &["plan", "deploy/kayle", "--out", "saved plan.json"]);
    run.expect(0);
    let hint = run
        .stderr
        .lines()
        .find(|line| line.starts_with("Saved the plan"))
        .unwrap_or_else(|| panic!("no hint in {}", run.stderr));
    let command = hint.split('`').nth(1).unwrap();
    assert_eq!(
        command,
        "kayle-sync apply --plan 'saved plan.json' deploy/kayle"
    );

    // Run exactly that (non-interactively) from the same place.
    let words = [
        "apply",
        "--plan",
        "saved plan.json",
        "deploy/kayle",
        "--auto-approve",
    ];
    let applied = repo.run(&api, &words);
    applied.expect(0);
    assert_eq!(api.managed("orders").len(), 1, "{}", applied.all());
}
