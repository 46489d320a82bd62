//! The `dotenv` and `json` sinks against real files: format, permissions, atomicity, locking.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::sink_contract;

use kayle_sync::model::{SecretSink, SinkConfig};
use kayle_sync::sink::{self, dotenv};
use secrecy::SecretString;

const SECRET: &str = "whsec_c2VjcmV0LXZhbHVlLWZvci10ZXN0cw==";
/// Set in a child process: the sink kind and file it should write to (see `writer_process`).
const CHILD_KIND: &str = "KAYLE_TEST_SINK_CHILD_KIND";
const CHILD_PATH: &str = "KAYLE_TEST_SINK_CHILD_PATH";
const CHILD_TAG: &str = "KAYLE_TEST_SINK_CHILD_TAG";
const NAMES_PER_WRITER: usize = 20;

fn secret(value: &str) -> SecretString {
    SecretString::from(value.to_owned())
}

fn file_sink(kind: &str, path: &Path) -> Arc<dyn SecretSink> {
    let config = match kind {
        "dotenv" => SinkConfig::Dotenv { path: path.into() },
        "json" => SinkConfig::Json { path: path.into() },
        other => panic!("not a file sink: {other}"),
    };
    sink::build("local", &config, Path::new("/")).expect("file sinks always build")
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn leftover_temp_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".tmp"))
        .collect()
}

fn json_object(path: &Path) -> serde_json::Map<String, serde_json::Value> {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test]
async fn dotenv_replaces_in_place_appends_and_keeps_everything_else() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kayle.env");
    let before = "# secrets for the receiver\n\nexport FIRST=one\nKAYLE_SECRET=old-value # rotated\n  OTHER = \"a b\"  # spaced\nnot an assignment\nLAST='x'";
    std::fs::write(&path, before).unwrap();
    let sink = file_sink("dotenv", &path);

    sink.put("KAYLE_SECRET", &secret(SECRET)).await.unwrap();
    sink.put("FIRST", &secret("two")).await.unwrap();
    sink.put("NEW_ONE", &secret("fresh")).await.unwrap();

    let after = std::fs::read_to_string(&path).unwrap();
    let expected = format!(
        "# secrets for the receiver\n\nexport FIRST=two\nKAYLE_SECRET={SECRET}\n  OTHER = \"a b\"  # spaced\nnot an assignment\nLAST='x'\nNEW_ONE=fresh\n"
    );
    assert_eq!(after, expected);
    assert_eq!(
        dotenv::read_value(&after, "OTHER").unwrap().as_deref(),
        Some("a b")
    );
    assert_eq!(sink.contains("KAYLE_SECRET").await.unwrap(), Some(true));
    assert_eq!(sink.contains("LAST").await.unwrap(), Some(true));
    assert_eq!(sink.contains("MISSING").await.unwrap(), Some(false));
}

#[tokio::test]
async fn dotenv_replaces_every_duplicate_and_counts_empty_values_as_missing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kayle.env");
    std::fs::write(&path, "A=1\nEMPTY=\nA=2\n").unwrap();
    let sink = file_sink("dotenv", &path);
    assert_eq!(sink.contains("EMPTY").await.unwrap(), Some(false));
    sink.put("A", &secret("3")).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "A=3\nEMPTY=\nA=3\n"
    );
}

#[tokio::test]
async fn dotenv_quoted_values_read_back_exactly() {
    let pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n";
    let values = [
        SECRET,
        "with space",
        "hash # inside",
        "#leading",
        "it's",
        "say \"hi\"",
        "a=b=c",
        "tab\tin",
        "back\\slash \\n",
        "$HOME and `date` and $(date)",
        "line1\nline2",
        "it's\nthree lines\n",
        pem,
        "",
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kayle.env");
    let sink = file_sink("dotenv", &path);
    for (i, value) in values.iter().enumerate() {
        sink.put(&format!("V{i}"), &secret(value)).await.unwrap();
    }
    let text = std::fs::read_to_string(&path).unwrap();
    for (i, value) in values.iter().enumerate() {
        let read = dotenv::read_value(&text, &format!("V{i}")).unwrap();
        assert_eq!(read.as_deref(), Some(*value), "value {i} did not read back");
    }
    let quote = |value| dotenv::quote(value).unwrap();
    assert_eq!(quote(SECRET), SECRET, "plain secrets are written bare");
    assert_eq!(quote("a b # c"), "'a b # c'");
    assert_eq!(quote(pem), format!("'{pem}'"), "line breaks as they are");
    assert_eq!(quote("l1\nit's"), "\"l1\nit's\"");
}

#[tokio::test]
async fn dotenv_refuses_a_value_no_loader_reads_back_and_names_only_the_entry() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kayle.env");
    let before = "KEEP=me\n";
    std::fs::write(&path, before).unwrap();
    let sink = file_sink("dotenv", &path);
    for (value, why) in [
        ("cr\rlf", "carriage return"),
        ("nul\0byte", "NUL"),
        ("${HOME}", "expands"),
        ("two\\\\backslashes", "`\\\\`"),
        ("ends with\\", "ends with `\\`"),
        ("it's \"quoted\"", "single quote"),
        ("it's $HOME", "single quote"),
        ("it's `date`", "single quote"),
        ("it's back\\slash", "single quote"),
    ] {
        let error = sink
            .put("ODD_VALUE", &secret(value))
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("cannot write ODD_VALUE"), "{error}");
        assert!(error.contains(why), "{value:?}: {error}");
        assert!(!error.contains(value), "the value leaked: {error}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
    }
}

#[tokio::test]
async fn dotenv_unclosed_quote_fails_and_leaves_the_file_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kayle.env");
    let before = "KEEP=me\nBROKEN=\"never closed\nTAIL=private-tail-value\n";
    std::fs::write(&path, before).unwrap();
    let sink = file_sink("dotenv", &path);

    let error = sink
        .put("NEW", &secret(SECRET))
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
    assert!(
        error.contains("line 2") && error.contains("BROKEN"),
        "{error}"
    );
    for leaked in [SECRET, "never closed", "private-tail-value", "me"] {
        assert!(!error.contains(leaked), "error shows a value: {error}");
    }
    assert!(leftover_temp_files(dir.path()).is_empty());
}

#[tokio::test]
async fn json_keeps_other_keys_and_replaces_the_named_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secrets.json");
    std::fs::write(
        &path,
        r#"{"zeta": {"nested": [1, 2]}, "KAYLE": "old", "n": 3}"#,
    )
    .unwrap();
    let sink = file_sink("json", &path);

    sink.put("KAYLE", &secret(SECRET)).await.unwrap();
    sink.put("with \"quotes\"\nand newline", &secret("v\"\n"))
        .await
        .unwrap();

    let object = json_object(&path);
    assert_eq!(object["KAYLE"], SECRET);
    assert_eq!(object["zeta"], serde_json::json!({"nested": [1, 2]}));
    assert_eq!(object["n"], 3);
    assert_eq!(object["with \"quotes\"\nand newline"], "v\"\n");
    assert_eq!(object.len(), 4);
    assert_eq!(sink.contains("KAYLE").await.unwrap(), Some(true));
    assert_eq!(
        sink.contains("n").await.unwrap(),
        Some(false),
        "only strings are secrets"
    );
    assert_eq!(sink.contains("absent").await.unwrap(), Some(false));
}

#[tokio::test]
async fn json_invalid_or_non_object_file_fails_and_is_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secrets.json");
    let sink = file_sink("json", &path);
    for before in [r#"{"KEEP": "private-value", "#, r#"["private-value"]"#] {
        std::fs::write(&path, before).unwrap();
        let error = sink
            .put("NEW", &secret(SECRET))
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
        assert!(error.contains("secrets.json"), "{error}");
        assert!(
            !error.contains(SECRET) && !error.contains("private-value"),
            "{error}"
        );
        assert!(sink.contains("KEEP").await.is_err());
    }
    assert!(leftover_temp_files(dir.path()).is_empty());
}

#[tokio::test]
async fn file_sinks_write_0600_files_and_create_parent_directories() {
    for kind in ["dotenv", "json"] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deep/er/secrets");
        let sink = file_sink(kind, &path);
        assert_eq!(
            sink.contains("X").await.unwrap(),
            Some(false),
            "{kind}: no file yet"
        );
        sink.put("X", &secret(SECRET)).await.unwrap();
        assert_eq!(mode(&path), 0o600, "{kind}: new file");
        assert_eq!(
            mode(&path.with_file_name(".kayle-sync/secrets.lock")),
            0o600,
            "{kind}: lock file"
        );

        // A file someone made world-readable is replaced by a private one.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        sink.put("Y", &secret(SECRET)).await.unwrap();
        assert_eq!(mode(&path), 0o600, "{kind}: rewritten file");
        assert!(leftover_temp_files(path.parent().unwrap()).is_empty());
    }
}

#[tokio::test]
async fn file_sinks_follow_a_symlink_and_keep_it() {
    for kind in ["dotenv", "json"] {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("real/secrets");
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(&target, "").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();

        file_sink(kind, &link)
            .put("X", &secret(SECRET))
            .await
            .unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink(),
            "{kind}"
        );
        assert!(
            std::fs::read_to_string(&target).unwrap().contains(SECRET),
            "{kind}"
        );
        assert_eq!(mode(&target), 0o600, "{kind}");
    }
}

/// A link whose target is not written yet (a file a secret mount will hold, say) is followed
/// too: the target is created, not the link replaced by a file the receiver never reads.
#[tokio::test]
async fn file_sinks_follow_a_symlink_whose_target_does_not_exist_yet() {
    for kind in ["dotenv", "json"] {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("real/secrets");
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();

        file_sink(kind, &link)
            .put("X", &secret(SECRET))
            .await
            .unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink(),
            "{kind}: the link was replaced by a file"
        );
        let written = std::fs::read_to_string(&target).unwrap_or_default();
        assert!(written.contains(SECRET), "{kind}: the target holds nothing");
    }
}

#[tokio::test]
async fn file_sinks_relative_paths_resolve_against_the_project_directory() {
    let dir = tempfile::tempdir().unwrap();
    let config = SinkConfig::Dotenv {
        path: "secrets/kayle.env".into(),
    };
    let sink = sink::build("local", &config, dir.path()).unwrap();
    sink.put("X", &secret(SECRET)).await.unwrap();
    assert!(dir.path().join("secrets/kayle.env").is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn file_sinks_concurrent_puts_from_many_tasks_lose_nothing() {
    for kind in ["dotenv", "json"] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets");
        let tasks: Vec<_> = (0..40)
            .map(|i| {
                // A sink per task: each put takes the lock through its own file handle.
                let sink = file_sink(kind, &path);
                tokio::spawn(async move {
                    sink.put(&format!("NAME_{i}"), &secret(&format!("v{i}")))
                        .await
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_all_present(
            kind,
            &path,
            &(0..40)
                .map(|i| (format!("NAME_{i}"), format!("v{i}")))
                .collect::<Vec<_>>(),
        );
    }
}

fn assert_all_present(kind: &str, path: &Path, expected: &[(String, String)]) {
    let text = std::fs::read_to_string(path).unwrap();
    for (name, value) in expected {
        let read = match kind {
            "dotenv" => dotenv::read_value(&text, name).unwrap(),
            _ => json_object(path)
                .get(name)
                .and_then(|v| v.as_str())
                .map(str::to_owned),
        };
        assert_eq!(
            read.as_deref(),
            Some(value.as_str()),
            "{kind}: {name} was lost"
        );
    }
}

/// The other half of `file_sinks_two_processes_lose_nothing`: writes a batch of names to the
/// file its parent names. Does nothing when run on its own.
#[tokio::test]
#[ignore = "run by file_sinks_two_processes_lose_nothing as a second process"]
async fn writer_process() {
    let (Ok(kind), Ok(path), Ok(tag)) = (
        std::env::var(CHILD_KIND),
        std::env::var(CHILD_PATH),
        std::env::var(CHILD_TAG),
    ) else {
        return;
    };
    let sink = file_sink(&kind, Path::new(&path));
    for i in 0..NAMES_PER_WRITER {
        sink.put(&format!("{tag}_{i}"), &secret(&format!("{tag}-{i}")))
            .await
            .unwrap();
    }
}

/// The name the test harness knows `writer_process` by: its module path without the crate's
/// name, whichever binary this file is compiled into.
fn writer_process_name() -> String {
    match module_path!().split_once("::") {
        Some((_, module)) => format!("{module}::writer_process"),
        None => "writer_process".to_owned(),
    }
}

#[test]
fn file_sinks_two_processes_lose_nothing() {
    let exe = std::env::current_exe().unwrap();
    let writer = writer_process_name();
    for kind in ["dotenv", "json"] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets");
        let children: Vec<_> = ["P", "Q"]
            .iter()
            .map(|tag| {
                std::process::Command::new(&exe)
                    .args([writer.as_str(), "--exact", "--ignored", "--quiet"])
                    .env(CHILD_KIND, kind)
                    .env(CHILD_PATH, &path)
                    .env(CHILD_TAG, tag)
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for mut child in children {
            assert!(
                child.wait().unwrap().success(),
                "{kind}: a writer process failed"
            );
        }
        let expected: Vec<_> = ["P", "Q"]
            .iter()
            .flat_map(|tag| {
                (0..NAMES_PER_WRITER).map(move |i| (format!("{tag}_{i}"), format!("{tag}-{i}")))
            })
            .collect();
        assert_all_present(kind, &path, &expected);
    }
}

#[tokio::test]
async fn sinks_from_project_builds_every_sink_by_name() {
    use kayle_sync::model::{ApiConfig, ApiUrl, Project};
    let dir = tempfile::tempdir().unwrap();
    let mut project = Project {
        dir: dir.path().to_path_buf(),
        api: ApiConfig {
            url: ApiUrl::Sandbox,
            token_env: "KAYLE_API_TOKEN".into(),
        },
        label_prefix: "kayle-sync:".into(),
        sinks: [
            (
                "local",
                SinkConfig::Dotenv {
                    path: "kayle.env".into(),
                },
            ),
            (
                "vault",
                SinkConfig::Vault {
                    address: "http://127.0.0.1:8200".into(),
                    mount: "secret".into(),
                    path: "kayle".into(),
                    token_env: "VAULT_TOKEN".into(),
                },
            ),
        ]
        .into_iter()
        .map(|(name, config)| (name.to_owned(), config))
        .collect(),
        reloads: Default::default(),
        default_sink: Some("local".into()),
    };

    let sinks = sink::Sinks::from_project(&project).unwrap();
    assert_eq!(sinks.get("vault").unwrap().name(), "vault");
    assert!(sinks.get("nope").is_none());
    let local = sinks.get("local").unwrap();
    local.put("X", &secret(SECRET)).await.unwrap();
    assert!(
        std::fs::read_to_string(dir.path().join("kayle.env"))
            .unwrap()
            .contains(SECRET)
    );

    let empty = SinkConfig::Command {
        command: vec![],
        timeout_seconds: 5,
    };
    project.sinks.insert("broken".into(), empty);
    let error = sink::Sinks::from_project(&project).unwrap_err().to_string();
    assert!(error.starts_with("broken: "), "{error}");
}
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn file_sinks_read_back_and_put_only_where_nothing_is_held() {
    for kind in ["dotenv", "json"] {
        let dir = tempfile::tempdir().unwrap();
        let sink = file_sink(kind, &dir.path().join("secrets/kayle"));
        sink_contract::read_and_put_if_absent(sink, "KAYLE_PRIVATE_KEY").await;
    }
}

#[tokio::test]
async fn file_sinks_remove_one_entry_and_keep_the_rest() {
    for kind in ["dotenv", "json"] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kayle");
        std::fs::write(
            &path,
            if kind == "json" {
                "{\"KEEP\": 1}\n"
            } else {
                "# note\nKEEP=1\n"
            },
        )
        .unwrap();
        sink_contract::remove(file_sink(kind, &path), "KAYLE_SECRET").await;
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("KEEP"), "{kind}: {text}");
        assert!(!text.contains("removed-value"), "{kind}: {text}");
    }
}

#[tokio::test]
async fn a_command_sink_cannot_remove() {
    let config = SinkConfig::Command {
        command: vec!["true".into()],
        timeout_seconds: 5,
    };
    let sink = sink::build("ci", &config, Path::new("/")).unwrap();
    let error = sink.remove("X").await.unwrap_err().to_string();
    assert!(error.contains("write-only"), "{error}");
}
