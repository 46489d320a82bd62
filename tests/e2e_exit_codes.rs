//! End to end: exit codes and streams. A usage error exits 64 in every command, a refused or
//! cancelled apply 1, warnings go to stderr and stdout holds only the plan, and an error is
//! said once.

use crate::support;

use std::ffi::{CStr, OsStr};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::Stdio;

use support::manifests::{disabled, manifest};
use support::{Api, Project};

/// A project declaring the disabled endpoints `keys`, not applied.
fn project(keys: &[&str]) -> Project {
    let project = Project::new();
    let entries: Vec<String> = keys.iter().map(|key| disabled(key)).collect();
    project.manifest(&manifest(&entries));
    project
}

#[test]
fn usage_errors_exit_64_in_every_command_and_help_and_version_exit_0() {
    let api = Api::start();
    let project = project(&["orders"]);
    let usage: &[&[&str]] = &[
        &["--bogus"],
        &["frobnicate"],
        &["--color", "sometimes", "plan"],
        &["init", "--bogus"],
        &["validate", "--format", "markdown"],
        &["plan", "--format", "xml"],
        &["plan", "--target", "Not_A_Key"],
        &["apply", "--concurrency", "0"],
        &["apply", "--target", "Not_A_Key", "--auto-approve"],
        &["watch", "--interval", "0s"],
        &["export", "--bogus"],
        &["rotate"],
        &["rotate", "orders", "--dir", ".", "."],
        &["completions", "tcsh"],
    ];
    for args in usage {
        let run = project.run(&api, args);
        run.expect(64);
        assert!(run.stderr.contains("error"), "{args:?}: {}", run.stderr);
    }
    for command in [
        "init",
        "validate",
        "plan",
        "apply",
        "watch",
        "export",
        "rotate",
        "completions",
    ] {
        project.run(&api, &[command, "--help"]).expect(0);
    }
    project.run(&api, &["--help"]).expect(0);
    project.run(&api, &["--version"]).expect(0);
    assert!(api.endpoints().is_empty(), "nothing was changed");
}

#[test]
fn apply_of_a_saved_plan_with_other_options_is_a_usage_error() {
    let api = Api::start();
    let project = project(&["orders"]);
    project.run(&api, &["plan", "--out", "plan.json"]).expect(0);
    for extra in [&["--prune"][..], &["--target", "orders"][..]] {
        let mut args = vec!["apply", "--plan", "plan.json", "--auto-approve"];
        args.extend_from_slice(extra);
        let run = project.run(&api, &args);
        run.expect(64);
        assert!(run.stderr.contains("leave out --prune"), "{}", run.stderr);
    }
    assert!(api.endpoints().is_empty());
}

#[test]
fn a_target_that_names_nothing_is_refused_with_the_nearest_key() {
    let api = Api::start();
    let project = project(&["orders", "billing"]);
    for command in [&["plan"][..], &["apply", "--auto-approve"][..]] {
        let mut args = command.to_vec();
        args.extend_from_slice(&["--target", "ordrs"]);
        let run = project.run(&api, &args);
        run.expect(64);
        assert!(
            run.stderr
                .contains("--target ordrs names no declared or managed endpoint"),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr.contains("did you mean --target orders?"),
            "{}",
            run.stderr
        );
        assert!(run.stdout.is_empty(), "no plan: {}", run.stdout);
    }
    assert!(api.endpoints().is_empty(), "nothing was created");
    // A key that exists only live (to prune it) is a fine target.
    project.apply(&api, &[]);
    project.manifest(&manifest(&[disabled("billing")]));
    let run = project.run(&api, &["plan", "--prune", "--target", "orders"]);
    run.expect(0);
    assert!(run.stdout.contains("- delete orders"), "{}", run.stdout);
}

#[test]
fn rotate_or_probe_of_a_key_that_names_nothing_is_a_usage_error() {
    let api = Api::start();
    let project = project(&["orders", "billing"]);
    for args in [
        &["rotate", "ordrs", "--auto-approve"][..],
        &["probe", "ordrs"],
    ] {
        let run = project.run(&api, args);
        run.expect(64);
        assert!(
            run.stderr.contains("ordrs is not declared in")
                && run.stderr.contains("did you mean orders?"),
            "{args:?}: {}",
            run.stderr
        );
    }
    // Values and combinations probe cannot carry out are usage errors too.
    for args in [
        &["probe", "--all", "orders", "elsewhere"][..],
        &["probe", "orders", "--url", "ftp://hooks.example.com/"],
        &["probe", "orders", "--url", "http://10.0.0.1/"],
    ] {
        project.run(&api, args).expect(64);
    }
}

#[test]
fn plan_and_apply_warnings_go_to_stderr_and_stdout_holds_only_the_plan() {
    let api = Api::start();
    let project = Project::new();
    // Enabled and without an encryption key: a plan warning.
    project.manifest("endpoints:\n  orders:\n    url: https://hooks.example.com/orders\n");
    let warning = "orders is not enabled: it has no active encryption key";
    for args in [&["plan"][..], &["apply", "--auto-approve"][..]] {
        let run = project.run(&api, args);
        run.expect(0);
        assert!(!run.stdout.contains("Warning"), "{args:?}: {}", run.stdout);
        assert!(run.stdout.contains("create orders"), "{}", run.stdout);
        assert!(
            run.stderr.contains(&format!("Warning: {warning}")),
            "{args:?}: {}",
            run.stderr
        );
    }
    // JSON keeps its warnings in the document, and they are not said again on stderr.
    let run = project.run(&api, &["plan", "--format", "json"]);
    run.expect(0);
    let body: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(body["warnings"].to_string().contains(warning), "{body:#}");
    assert!(!run.stderr.contains(warning), "{}", run.stderr);
}

#[test]
fn a_junk_plan_file_is_reported_once() {
    let api = Api::start();
    let project = project(&["orders"]);
    project.write("junk.json", "not a plan\n");
    let run = project.run(&api, &["apply", "--plan", "junk.json", "--auto-approve"]);
    run.expect(1);
    assert_eq!(
        run.stderr.matches("not a kayle-sync plan file").count(),
        1,
        "{}",
        run.stderr
    );
    assert_eq!(
        run.stderr.matches("expected ").count(),
        1,
        "the parser's reason once: {}",
        run.stderr
    );
}

/// A pseudo-terminal: (controlling side, terminal side). Both are opened close-on-exec, as
/// `std` opens every file, so that no command another test starts meanwhile inherits them
/// (`openpty(3)` leaves them open across `exec`); the command given the terminal side as its
/// stdin gets it all the same.
fn pty() -> (File, OwnedFd) {
    let open = |path: &Path| {
        OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(path)
            .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()))
    };
    let controller = open(Path::new("/dev/ptmx"));
    let fd = controller.as_raw_fd();
    // SAFETY: both take the controlling side, open for as long as `controller` lives.
    let unlocked = unsafe { libc::grantpt(fd) == 0 && libc::unlockpt(fd) == 0 };
    assert!(
        unlocked,
        "unlocking the pty: {}",
        std::io::Error::last_os_error()
    );
    let mut name = [0 as libc::c_char; 128];
    // SAFETY: ptsname_r writes a NUL-terminated name of at most `name.len()` bytes into `name`.
    let failed = unsafe { libc::ptsname_r(fd, name.as_mut_ptr(), name.len()) };
    assert_eq!(
        failed,
        0,
        "naming the pty: {}",
        std::io::Error::from_raw_os_error(failed)
    );
    // SAFETY: ptsname_r succeeded, so `name` holds a NUL-terminated string.
    let name = unsafe { CStr::from_ptr(name.as_ptr()) };
    let terminal = open(Path::new(OsStr::from_bytes(name.to_bytes())));
    (controller, terminal.into())
}

/// `apply` with stdin a terminal on which `typed` is typed.
fn apply_answering(api: &Api, project: &Project, typed: &[u8]) -> support::Run {
    let (mut controller, terminal) = pty();
    let mut command = project.command(api, &["apply"]);
    command.stdin(Stdio::from(terminal));
    let child = support::spawn(command);
    controller.write_all(typed).unwrap();
    let run = support::wait(child);
    drop(controller);
    run
}

#[test]
fn anything_but_yes_at_the_prompt_cancels_and_exits_1() {
    let api = Api::start();
    let project = project(&["orders"]);
    // Ctrl-D at the prompt is the end of input.
    for typed in [&b"no\n"[..], b"y\n", b"\x04"] {
        let run = apply_answering(&api, &project, typed);
        run.expect(1);
        assert!(
            run.stderr.contains("Only 'yes' is accepted"),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("Apply cancelled"), "{}", run.stderr);
        assert!(!run.stdout.contains("Apply cancelled"), "{}", run.stdout);
        assert!(api.endpoints().is_empty(), "nothing was created");
    }
    apply_answering(&api, &project, b"yes\n").expect(0);
    assert_eq!(api.managed("orders").len(), 1);
}

#[test]
fn plan_into_a_pipe_closed_early_ends_quietly_with_exit_0() {
    let api = Api::start();
    let project = project(&["orders", "billing", "shipping"]);
    for args in [&["plan"][..], &["plan", "--format", "json"]] {
        // What plan says on stderr when stdout is read to the end (the API it talks to).
        let usual = project.run(&api, args);
        usual.expect(0);
        let mut child = support::spawn(project.command(&api, args));
        // The reader goes away before anything is written, as `head -1` does once it has its
        // line: every write to stdout then fails with a broken pipe.
        drop(child.stdout.take());
        let run = support::wait(child);
        run.expect(0);
        assert_eq!(
            run.stderr, usual.stderr,
            "nothing said about the closed pipe"
        );
    }
}
