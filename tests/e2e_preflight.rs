//! End to end: a sink the plan writes to that cannot be written fails apply before the API is
//! changed, naming the sink and why.

use crate::support;

use support::manifests::{disabled, manifest};
use support::{Api, Project};

/// A project whose default sink is `sink` (a YAML mapping body, indented by four).
fn project_with_sink(sink: &str) -> Project {
    let project = Project::with_project_file(&format!(
        "api:\n  url: http://127.0.0.1:9\nsinks:\n  store:\n{sink}defaults:\n  signing_secret:\n    sink: store\n"
    ));
    project.manifest(&manifest(&[disabled("orders")]));
    project
}

#[track_caller]
fn assert_refused_unchanged(api: &Api, project: &Project, why: &str) {
    let run = project.run(api, &["apply", "--auto-approve"]);
    run.expect(1);
    assert!(run.stderr.contains("error: sink store: "), "{}", run.stderr);
    assert!(run.stderr.contains(why), "{}", run.stderr);
    assert!(run.stderr.contains("nothing was changed"), "{}", run.stderr);
    assert!(api.endpoints().is_empty(), "the API was not changed");
}

#[test]
fn a_vault_sink_without_its_token_fails_before_any_endpoint_is_created() {
    let api = Api::start();
    let project = project_with_sink(
        "    type: vault\n    address: http://127.0.0.1:9\n    token_env: VAULT_KAYLE_TEST_UNSET\n",
    );
    assert_refused_unchanged(&api, &project, "VAULT_KAYLE_TEST_UNSET");
}

#[test]
fn a_command_sink_whose_program_is_missing_fails_before_any_endpoint_is_created() {
    let api = Api::start();
    let project = project_with_sink(
        "    type: command\n    command: [kayle-sync-test-no-such-program, \"{name}\"]\n",
    );
    assert_refused_unchanged(&api, &project, "not an executable file on PATH");
}

#[test]
fn a_file_sink_that_cannot_be_created_fails_before_any_endpoint_is_created() {
    let api = Api::start();
    let project = project_with_sink("    type: dotenv\n    path: blocker/kayle.env\n");
    project.write("blocker", "a file where the sink's directory should be\n");
    assert_refused_unchanged(&api, &project, "blocker");
}

#[test]
fn writable_sinks_pass_the_check() {
    let api = Api::start();
    let project = project_with_sink("    type: dotenv\n    path: deep/er/kayle.env\n");
    project.apply(&api, &[]);
    assert_eq!(api.endpoints().len(), 1);
}
