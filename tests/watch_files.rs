//! `kayle-sync watch` and the file system: saves, new and deleted files and directories,
//! symlink swaps (ConfigMap, git-sync), replaced directories and invalid edits.

use crate::watch_support;

use std::time::Duration;

use watch_support::*;

#[test]
fn applies_at_start_then_new_files_new_directories_and_atomic_saves_once_each() {
    let api = Api::start();
    let (_root, dir) = config_dir(&manifest(&[("alpha", "https://hooks.example.com/a")]));
    let mut watch = Watch::spawn(&dir, &api, &[]);

    let first = watch.reconcile();
    assert_outcome(&first, "applied", "start");
    assert_eq!(keys(&first, "create"), ["alpha"]);
    let sink = std::fs::read_to_string(dir.join("secrets/kayle.env")).unwrap();
    assert!(sink.contains("KAYLE_WEBHOOK_SECRET_ALPHA="), "{sink}");
    assert!(
        !watch.seen.iter().any(|l| l.contains("whsec_")),
        "a secret reached the log"
    );

    std::fs::write(
        dir.join("more.yaml"),
        manifest(&[("beta", "https://hooks.example.com/b")]),
    )
    .unwrap();
    let added = watch.reconcile();
    assert_outcome(&added, "applied", "change");
    assert_eq!(keys(&added, "create"), ["beta"]);
    assert!(api.endpoint("beta").is_some());

    atomic_save(
        &dir.join("endpoints.yaml"),
        &manifest(&[("alpha", "https://hooks.example.com/a2")]),
    );
    let saved = watch.reconcile();
    assert_outcome(&saved, "applied", "change");
    assert_eq!(keys(&saved, "update"), ["alpha"]);
    assert_eq!(api.url_of("alpha").unwrap(), "https://hooks.example.com/a2");

    // A new directory, its file written at once (before any watch on it can exist).
    std::fs::create_dir_all(dir.join("team/payments")).unwrap();
    std::fs::write(
        dir.join("team/payments/pay.yml"),
        manifest(&[("pay", "https://hooks.example.com/p")]),
    )
    .unwrap();
    let nested = watch.reconcile();
    assert_outcome(&nested, "applied", "change");
    assert_eq!(keys(&nested, "create"), ["pay"]);

    // Deleting it is one reconcile too; without --prune the endpoint stays.
    std::fs::remove_dir_all(dir.join("team")).unwrap();
    assert_outcome(&watch.reconcile(), "in-sync", "change");
    assert!(api.endpoint("pay").is_some());

    // Its own sink writes, the editor's leftovers and reads change nothing: no more reconciles.
    let extra = watch.reconciles_during(Duration::from_millis(1500));
    assert!(extra.is_empty(), "{extra:?}");
    watch.assert_running();
}

#[test]
fn a_configmap_style_symlink_swap_applies_the_new_content_once() {
    let api = Api::start();
    let (_root, dir) = config_dir("");
    std::fs::remove_file(dir.join("endpoints.yaml")).unwrap();
    for (version, url) in [
        ("v1", "https://hooks.example.com/1"),
        ("v2", "https://hooks.example.com/2"),
    ] {
        let data = dir.join("..data").join(version);
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("endpoints.yaml"), manifest(&[("gamma", url)])).unwrap();
    }
    std::os::unix::fs::symlink("..data/v1", dir.join("manifests")).unwrap();
    let mut watch = Watch::spawn(&dir, &api, &[]);
    assert_outcome(&watch.reconcile(), "applied", "start");
    assert_eq!(api.url_of("gamma").unwrap(), "https://hooks.example.com/1");

    symlink_over("..data/v2", &dir.join("manifests"));
    let swapped = watch.reconcile();
    assert_outcome(&swapped, "applied", "change");
    assert_eq!(keys(&swapped, "update"), ["gamma"]);
    assert_eq!(api.url_of("gamma").unwrap(), "https://hooks.example.com/2");
    let extra = watch.reconciles_during(Duration::from_millis(1500));
    assert!(extra.is_empty(), "{extra:?}");
}

#[test]
fn a_git_sync_style_swap_of_the_directory_link_applies_the_new_content_once() {
    let api = Api::start();
    let root = tempfile::tempdir().unwrap();
    // The sink lives outside the swapped revisions, as it must with git-sync.
    let project = PROJECT.replace(
        "secrets/kayle.env",
        &root.path().join("kayle.env").display().to_string(),
    );
    for (rev, url) in [
        ("rev1", "https://hooks.example.com/1"),
        ("rev2", "https://hooks.example.com/2"),
    ] {
        let dir = root.path().join(rev);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("kayle-sync.yaml"), &project).unwrap();
        std::fs::write(dir.join("endpoints.yaml"), manifest(&[("delta", url)])).unwrap();
    }
    let current = root.path().join("current");
    std::os::unix::fs::symlink("rev1", &current).unwrap();
    let mut watch = Watch::spawn(&current, &api, &[]);
    assert_outcome(&watch.reconcile(), "applied", "start");

    symlink_over("rev2", &current);
    let swapped = watch.reconcile();
    assert_outcome(&swapped, "applied", "change");
    assert_eq!(keys(&swapped, "update"), ["delta"]);
    assert_eq!(api.url_of("delta").unwrap(), "https://hooks.example.com/2");

    // Edits inside the new revision are seen: the watch moved with the link.
    std::fs::write(
        root.path().join("rev2/endpoints.yaml"),
        manifest(&[("delta", "https://hooks.example.com/3")]),
    )
    .unwrap();
    assert_outcome(&watch.reconcile(), "applied", "change");
    assert_eq!(api.url_of("delta").unwrap(), "https://hooks.example.com/3");
    let extra = watch.reconciles_during(Duration::from_millis(1500));
    assert!(extra.is_empty(), "{extra:?}");
}

#[test]
fn an_invalid_edit_applies_nothing_and_fixing_it_applies() {
    let api = Api::start();
    let (_root, dir) = config_dir(&manifest(&[("eps", "https://hooks.example.com/e")]));
    let mut watch = Watch::spawn(&dir, &api, &[]);
    assert_outcome(&watch.reconcile(), "applied", "start");

    let broken = "endpoints:\n  eps:\n    name: eps\n    url: https://hooks.example.com/e2\n    colour: red\n";
    std::fs::write(dir.join("endpoints.yaml"), broken).unwrap();
    let invalid = watch.reconcile();
    assert_outcome(&invalid, "invalid", "change");
    // Listed as `validate --format json` lists them, for pipelines to match on the codes.
    let listed = &invalid["diagnostics"];
    assert_eq!(listed[0]["code"], "unknown-field", "{invalid}");
    assert_eq!(listed[0]["field"], "endpoints.eps.colour", "{invalid}");
    assert_eq!(listed[0]["location"]["line"], 5, "{invalid}");
    let validated = std::process::Command::new(env!("CARGO_BIN_EXE_kayle-sync"))
        .args(["validate", "--format", "json"])
        .arg(&dir)
        .output()
        .unwrap();
    let validated: serde_json::Value = serde_json::from_slice(&validated.stdout).unwrap();
    assert_eq!(listed, &validated["diagnostics"], "{invalid}");
    assert_eq!(api.url_of("eps").unwrap(), "https://hooks.example.com/e");
    watch.assert_running();

    std::fs::write(
        dir.join("endpoints.yaml"),
        manifest(&[("eps", "https://hooks.example.com/e2")]),
    )
    .unwrap();
    let fixed = watch.reconcile();
    assert_outcome(&fixed, "applied", "change");
    assert_eq!(keys(&fixed, "update"), ["eps"]);
    assert_eq!(api.url_of("eps").unwrap(), "https://hooks.example.com/e2");

    // Another API in the project file: said in the log, the first connection is kept.
    let moved = PROJECT.replace("127.0.0.1:1", "127.0.0.1:2");
    std::fs::write(dir.join("kayle-sync.yaml"), moved).unwrap();
    // (Other warnings come first: these endpoints have no encryption key.)
    while !watch.event("warning")["message"]
        .as_str()
        .unwrap()
        .contains("different API")
    {}
    assert_outcome(&watch.reconcile(), "in-sync", "change");
}

#[test]
fn a_kubelet_configmap_update_applies_once() {
    // The layout a ConfigMap volume has: every file a link through `..data` to a timestamped
    // directory; an update writes a new directory, swaps `..data`, removes the old one.
    let api = Api::start();
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("config");
    let write_version = |name: &str, url: &str| {
        let data = dir.join(name);
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(
            data.join("kayle-sync.yaml"),
            PROJECT.replace(
                "secrets/kayle.env",
                &root.path().join("kayle.env").display().to_string(),
            ),
        )
        .unwrap();
        std::fs::write(data.join("endpoints.yaml"), manifest(&[("lambda", url)])).unwrap();
    };
    write_version("..2026_11_27_09_00_00.1", "https://hooks.example.com/1");
    std::os::unix::fs::symlink("..2026_11_27_09_00_00.1", dir.join("..data")).unwrap();
    for file in ["kayle-sync.yaml", "endpoints.yaml"] {
        std::os::unix::fs::symlink(format!("..data/{file}"), dir.join(file)).unwrap();
    }
    let mut watch = Watch::spawn(&dir, &api, &[]);
    assert_outcome(&watch.reconcile(), "applied", "start");

    write_version("..2026_11_27_09_01_00.2", "https://hooks.example.com/2");
    let temp = dir.join("..data_tmp");
    std::os::unix::fs::symlink("..2026_11_27_09_01_00.2", &temp).unwrap();
    std::fs::rename(&temp, dir.join("..data")).unwrap();
    std::fs::remove_dir_all(dir.join("..2026_11_27_09_00_00.1")).unwrap();

    let updated = watch.reconcile();
    assert_outcome(&updated, "applied", "change");
    assert_eq!(keys(&updated, "update"), ["lambda"]);
    assert_eq!(api.url_of("lambda").unwrap(), "https://hooks.example.com/2");
    let extra = watch.reconciles_during(Duration::from_millis(1500));
    assert!(extra.is_empty(), "{extra:?}");
}

#[test]
fn a_directory_replaced_at_the_same_path_is_watched_again() {
    let api = Api::start();
    let (root, dir) = config_dir(&manifest(&[("nu", "https://hooks.example.com/n1")]));
    let mut watch = Watch::spawn(&dir, &api, &[]);
    assert_outcome(&watch.reconcile(), "applied", "start");

    // A deploy that builds the new directory aside and swaps it in with two renames.
    let (new, old) = (
        root.path().join("config.new"),
        root.path().join("config.old"),
    );
    std::fs::create_dir_all(new.join("keys")).unwrap();
    std::fs::copy(dir.join("kayle-sync.yaml"), new.join("kayle-sync.yaml")).unwrap();
    std::fs::create_dir_all(new.join("secrets")).unwrap();
    std::fs::copy(dir.join("secrets/kayle.env"), new.join("secrets/kayle.env")).unwrap();
    std::fs::write(
        new.join("endpoints.yaml"),
        manifest(&[("nu", "https://hooks.example.com/n2")]),
    )
    .unwrap();
    std::fs::rename(&dir, &old).unwrap();
    std::fs::rename(&new, &dir).unwrap();
    let swapped = watch.reconcile();
    assert_outcome(&swapped, "applied", "change");
    assert_eq!(api.url_of("nu").unwrap(), "https://hooks.example.com/n2");

    // Edits in the new directory are seen: the watch moved to it.
    std::fs::write(
        dir.join("endpoints.yaml"),
        manifest(&[("nu", "https://hooks.example.com/n3")]),
    )
    .unwrap();
    assert_outcome(&watch.reconcile(), "applied", "change");
    assert_eq!(api.url_of("nu").unwrap(), "https://hooks.example.com/n3");
}
