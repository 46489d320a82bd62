//! `kayle-sync init`: a new directory that validates, plans and applies against the sandbox.

use assert_cmd::Command;

fn kayle_sync(args: &[&str], dir: &std::path::Path) -> (i32, String, String) {
    let output = Command::cargo_bin("kayle-sync")
        .unwrap()
        .args(args)
        .arg(dir)
        .env_remove("KAYLE_API_KEY")
        .env_remove("KAYLE_API_URL")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn init_then_validate_plan_apply_plan_converges_in_the_sandbox() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("new");
    let (code, out, err) = kayle_sync(&["init"], &dir);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Next steps"), "{out}");
    for file in ["kayle-sync.yaml", "endpoints/example.yaml", ".gitignore"] {
        assert!(dir.join(file).is_file(), "{file}");
    }
    let ignored = std::fs::read_to_string(dir.join(".gitignore")).unwrap();
    assert!(ignored.contains("secrets/") && ignored.contains(".kayle-sync/"));

    let (code, out, err) = kayle_sync(&["validate"], &dir);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(err, "", "no warning either");

    let (code, out, err) = kayle_sync(&["plan"], &dir);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Plan: 1 to create"), "{out}");

    let (code, out, err) = kayle_sync(&["apply", "--auto-approve"], &dir);
    assert_eq!(code, 0, "{out}{err}");
    let secrets = std::fs::read_to_string(dir.join("secrets/kayle.env")).unwrap();
    assert!(
        secrets.contains("KAYLE_WEBHOOK_SECRET_EXAMPLE="),
        "secret written"
    );
    assert!(
        secrets.contains("KAYLE_WEBHOOK_PRIVATE_KEY_EXAMPLE="),
        "key written"
    );

    let (code, out, err) = kayle_sync(&["plan"], &dir);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("No changes."), "{out}");
}

#[test]
fn init_refuses_to_overwrite_and_names_what_is_there() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("kayle-sync.yaml"), "mine\n").unwrap();
    let (code, out, err) = kayle_sync(&["init"], dir.path());
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("kayle-sync.yaml"), "{err}");
    assert!(!err.contains("example.yaml"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("kayle-sync.yaml")).unwrap(),
        "mine\n"
    );
    assert!(
        !dir.path().join("endpoints").exists() && !dir.path().join(".gitignore").exists(),
        "wrote nothing"
    );
}

#[test]
fn init_in_a_repository_root_adds_its_lines_to_the_gitignore_there() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".gitignore"), "target/\nsecrets/").unwrap();
    let (code, out, err) = kayle_sync(&["init"], dir.path());
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("added secrets/ and .kayle-sync/ to .gitignore"),
        "{out}"
    );
    let ignored = std::fs::read_to_string(dir.path().join(".gitignore")).unwrap();
    assert!(
        ignored.starts_with("target/\nsecrets/\n"),
        "kept: {ignored}"
    );
    assert_eq!(ignored.matches("secrets/").count(), 1, "{ignored}");
    assert!(ignored.ends_with(".kayle-sync/\n"), "{ignored}");
    // A second init refuses (the project file is there) and leaves the file as it is.
    let (code, _, _) = kayle_sync(&["init"], dir.path());
    assert_eq!(code, 1);
    assert_eq!(
        std::fs::read_to_string(dir.path().join(".gitignore")).unwrap(),
        ignored
    );
}
