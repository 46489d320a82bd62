//! End to end: secrets written into a git work tree are never offered to git, nor their locks.

use crate::support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use support::manifests::{disabled, manifest};
use support::{Api, Project};

fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git is installed");
    assert!(output.status.success(), "git {args:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// The files `git add -A` stages in `dir`.
fn staged(dir: &Path) -> Vec<String> {
    git(dir, &["add", "-A"]);
    git(dir, &["diff", "--cached", "--name-only"])
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn apply_in_a_git_repository_stages_neither_secrets_nor_locks() {
    let api = Api::start();
    let project = Project::new();
    git(project.dir(), &["init", "-q"]);
    project.manifest(&manifest(&[disabled("orders")]));

    let run = project.apply(&api, &[]);
    assert!(project.sink_path().exists());
    assert!(
        run.stderr
            .contains("is in a git work tree and was not ignored: added it to the .gitignore"),
        "{}",
        run.stderr
    );
    let porcelain = git(
        project.dir(),
        &["status", "--porcelain", "--untracked-files=all"],
    );
    assert!(!porcelain.contains("kayle.env"), "{porcelain}");
    assert!(!porcelain.contains(".lock"), "{porcelain}");
    let staged = staged(project.dir());
    assert!(
        staged.contains(&"secrets/.gitignore".to_owned()),
        "{staged:?}"
    );
    assert!(
        staged
            .iter()
            .all(|f| !f.contains("kayle.env") && !f.ends_with(".lock")),
        "{staged:?}"
    );

    // Said once: the file is ignored now.
    project.manifest(&manifest(&[disabled("orders"), disabled("billing")]));
    let again = project.apply(&api, &[]);
    assert!(!again.stderr.contains(".gitignore"), "{}", again.stderr);
}

#[test]
fn a_sink_file_git_already_ignores_gets_no_gitignore() {
    let api = Api::start();
    let project = Project::new();
    git(project.dir(), &["init", "-q"]);
    project.write(".gitignore", "*.env\n");
    project.manifest(&manifest(&[disabled("orders")]));

    let run = project.apply(&api, &[]);
    assert!(!run.stderr.contains(".gitignore"), "{}", run.stderr);
    assert!(!project.path("secrets/.gitignore").exists());
    let staged = staged(project.dir());
    assert!(
        staged
            .iter()
            .all(|f| !f.contains("kayle.env") && !f.ends_with(".lock")),
        "{staged:?}"
    );
}

#[test]
fn one_apply_asks_git_once_whether_it_tracks_the_sink_file() {
    let api = Api::start();
    let project = Project::new();
    git(project.dir(), &["init", "-q"]);
    project.manifest(&manifest(&[disabled("orders")]));
    // A `git` first on the PATH that notes each call, then runs the real one.
    let spy = tempfile::tempdir().unwrap();
    let log = spy.path().join("calls");
    let path = std::env::var("PATH").unwrap();
    let script = spy.path().join("git");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\nPATH='{path}' exec git \"$@\"\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();

    let spied = format!("{}:{path}", spy.path().display());
    let run = project.run_with(&api, &["apply", "--auto-approve"], &[("PATH", &spied)]);
    run.expect(0);
    // The plan's warning, the `.gitignore` step and the sink's write check all asked.
    assert!(
        run.stderr.contains("added it to the .gitignore"),
        "{}",
        run.stderr
    );
    let calls = std::fs::read_to_string(&log).unwrap();
    let asked = calls
        .lines()
        .filter(|call| call.contains("ls-files"))
        .count();
    assert_eq!(asked, 1, "{calls}");
}

#[test]
fn outside_a_git_repository_nothing_is_added() {
    let api = Api::start();
    let project = Project::new();
    project.manifest(&manifest(&[disabled("orders")]));
    let run = project.apply(&api, &[]);
    assert!(!run.stderr.contains(".gitignore"), "{}", run.stderr);
    assert!(!project.path("secrets/.gitignore").exists());
    assert!(
        !project.path("secrets/kayle.env.lock").exists(),
        "no lock beside it"
    );
}

#[test]
fn a_sink_file_git_tracks_is_refused_before_any_write() {
    let api = Api::start();
    let project = Project::new();
    git(project.dir(), &["init", "-q"]);
    let placeholder = "# filled in by kayle-sync apply\n";
    project.write("secrets/kayle.env", placeholder);
    project.manifest(&manifest(&[disabled("orders")]));
    git(project.dir(), &["add", "-A"]);
    git(project.dir(), &["commit", "-q", "-m", "placeholder"]);

    let plan = project.run(&api, &["plan"]);
    plan.expect(0);
    assert!(
        plan.stderr.contains("secrets/kayle.env") && plan.stderr.contains("git tracks"),
        "{}",
        plan.stderr
    );
    assert!(plan.stderr.contains("git rm --cached"), "{}", plan.stderr);

    let run = project.run(&api, &["apply", "--auto-approve"]);
    run.expect(1);
    assert!(run.stderr.contains("error: sink local: "), "{}", run.stderr);
    assert!(run.stderr.contains("secrets/kayle.env"), "{}", run.stderr);
    assert!(run.stderr.contains("git rm --cached"), "{}", run.stderr);
    assert!(run.stderr.contains("nothing was changed"), "{}", run.stderr);
    assert!(api.endpoints().is_empty(), "the API was not changed");
    assert_eq!(project.sink_text(), placeholder);
    assert!(!project.path("secrets/.gitignore").exists());
    let porcelain = git(project.dir(), &["status", "--porcelain"]);
    assert!(porcelain.is_empty(), "{porcelain}");

    // The fix the message names: untrack the file, then apply writes it and git ignores it.
    git(
        project.dir(),
        &["rm", "-q", "--cached", "secrets/kayle.env"],
    );
    git(project.dir(), &["commit", "-q", "-m", "untrack"]);
    project.apply(&api, &[]);
    assert_eq!(api.endpoints().len(), 1);
    let staged = staged(project.dir());
    assert!(
        staged.iter().all(|f| !f.contains("kayle.env")),
        "{staged:?}"
    );
}
