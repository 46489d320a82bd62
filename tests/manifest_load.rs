//! Loading good directories into the desired state (defaults, normalization, key material), and
//! bad input that cannot live in the fixture corpus: huge files, symlink loops, unreadable files,
//! arbitrary bytes.

use std::fs;
use std::path::Path;

use kayle_sync::manifest::{self, Diagnostics};
use kayle_sync::model::{self, ApiUrl, KeyMaterial, SinkConfig};
use proptest::prelude::*;

const PROJECT: &str = "api:\n  url: sandbox\nsinks:\n  local:\n    type: dotenv\n    path: secrets/kayle.env\ndefaults:\n  signing_secret:\n    sink: local\n";

fn project_dir(manifest: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("kayle-sync.yaml"), PROJECT).unwrap();
    fs::write(dir.path().join("endpoints.yaml"), manifest).unwrap();
    dir
}

fn codes(diagnostics: &Diagnostics) -> Vec<&'static str> {
    diagnostics.0.iter().map(|d| d.code.as_str()).collect()
}

#[test]
fn the_quickstart_loads_into_the_desired_state() {
    let loaded = manifest::load(Path::new("tests/fixtures/quickstart")).unwrap();
    let desired = &loaded.desired;
    assert_eq!(desired.project.api.url, ApiUrl::Sandbox);
    assert_eq!(desired.project.api.token_env, "KAYLE_API_KEY");
    assert_eq!(desired.project.label_prefix, "kayle-sync:");
    assert_eq!(
        desired.project.sinks["local"],
        SinkConfig::Dotenv {
            path: "secrets/kayle.env".into()
        }
    );
    let orders = &desired.endpoints["orders"];
    assert_eq!(orders.undelivered_payload_retention_hours, 168);
    assert_eq!(orders.signing_secret.name, "KAYLE_WEBHOOK_SECRET_ORDERS");
    assert_eq!(orders.signing_secret.sink, "local");
    let KeyMaterial::Public(jwk) = &orders.active_key().unwrap().material else {
        panic!("orders uses a public key file")
    };
    assert_eq!(jwk.e, "AQAB");
    assert_eq!(
        jwk.n.len(),
        342,
        "a 2048-bit modulus is 256 bytes, 342 base64url characters"
    );
    assert_eq!(
        orders.source.file,
        Path::new("tests/fixtures/quickstart/endpoints.yaml")
    );
    assert_eq!((orders.source.line, orders.source.column), (3, 3));
    let identity = &desired.endpoints["identity"];
    assert_eq!(
        identity.active_key().unwrap().material,
        KeyMaterial::Generate {
            private_key_name: "KAYLE_WEBHOOK_PRIVATE_KEY_IDENTITY".into()
        }
    );
    assert_eq!(identity.subscribed_event_types, model::EventType::KNOWN);
}

#[test]
fn fields_are_normalized_the_way_the_server_normalizes() {
    let dir = project_dir(
        "endpoints:\n  web:\n    url: https://hooks.example.com/k\n    name: '  Web  '\n    labels: [' a ', b]\n    enabled: false\n    subscribed_event_types: [verification.session.failed, verification.session.failed, verification.session.expired]\n",
    );
    let loaded = manifest::load(dir.path()).unwrap();
    let web = &loaded.desired.endpoints["web"];
    assert_eq!(web.name.as_deref(), Some("Web"));
    assert_eq!(web.labels, ["a", "b"]);
    assert!(!web.enabled);
    assert_eq!(
        web.subscribed_event_types,
        [
            model::EventType::SessionFailed,
            model::EventType::SessionExpired
        ]
    );
    assert_eq!(web.undelivered_payload_retention_hours, 72);
    assert_eq!(web.signing_secret.rotation, 0);
}

#[test]
fn several_generated_keys_get_their_key_id_in_the_private_key_name() {
    let dir = project_dir(
        "endpoints:\n  web:\n    url: https://hooks.example.com/k\n    encryption_keys:\n      - {key_id: old-1, generate: true}\n      - {key_id: new-2, generate: true}\n",
    );
    let loaded = manifest::load(dir.path()).unwrap();
    let names: Vec<_> = loaded.desired.endpoints["web"]
        .encryption_keys
        .iter()
        .map(|k| match &k.material {
            KeyMaterial::Generate { private_key_name } => private_key_name.clone(),
            KeyMaterial::Public(_) => panic!("generated"),
        })
        .collect();
    assert_eq!(
        names,
        [
            "KAYLE_WEBHOOK_PRIVATE_KEY_WEB_OLD_1",
            "KAYLE_WEBHOOK_PRIVATE_KEY_WEB_NEW_2"
        ]
    );
}

#[test]
fn an_enabled_endpoint_without_a_key_is_a_warning_not_an_error() {
    let dir = project_dir("endpoints:\n  web:\n    url: https://hooks.example.com/k\n");
    let loaded = manifest::load(dir.path()).unwrap();
    assert_eq!(loaded.desired.endpoints.len(), 1);
    assert_eq!(loaded.warnings.len(), 1);
    assert_eq!(loaded.warnings[0].code, manifest::Code::NoEncryptionKey);
    assert_eq!(loaded.warnings[0].severity, manifest::Severity::Warning);
}

#[test]
fn a_jwk_file_gives_the_same_key_as_its_pem() {
    let pem = fs::read_to_string("tests/fixtures/quickstart/keys/orders-2026-11.pub.pem").unwrap();
    let from_pem = manifest::parse_public_key(&pem).unwrap();
    let jwk = serde_json::json!({"kty": "RSA", "n": from_pem.n, "e": from_pem.e, "alg": "RSA-OAEP-256", "use": "enc"});
    assert_eq!(
        manifest::parse_public_key(&jwk.to_string()).unwrap(),
        from_pem
    );
    let pkcs1 = fs::read_to_string("tests/fixtures/staging/keys/identity-staging.pub.pem").unwrap();
    assert!(pkcs1.starts_with("-----BEGIN RSA PUBLIC KEY-----"));
    assert!(manifest::parse_public_key(&pkcs1).is_ok());
}

#[test]
fn hidden_files_and_other_extensions_are_ignored_and_yml_is_read() {
    let dir = project_dir(
        "endpoints:\n  web:\n    url: https://hooks.example.com/k\n    enabled: false\n",
    );
    fs::create_dir(dir.path().join(".git")).unwrap();
    fs::write(dir.path().join(".git/broken.yaml"), "{{{").unwrap();
    fs::write(dir.path().join(".endpoints.yaml.swp"), "{{{").unwrap();
    fs::write(dir.path().join("notes.txt"), "{{{").unwrap();
    fs::create_dir(dir.path().join("more")).unwrap();
    fs::write(
        dir.path().join("more/api.yml"),
        "endpoints:\n  api:\n    url: https://hooks.example.com/a\n    enabled: false\n",
    )
    .unwrap();
    let loaded = manifest::load(dir.path()).unwrap();
    assert_eq!(
        loaded.desired.endpoints.keys().collect::<Vec<_>>(),
        ["api", "web"]
    );
    assert_eq!(loaded.manifest_files, 2);
}

#[test]
fn a_file_over_the_size_limit_is_refused_before_parsing() {
    let dir = project_dir("endpoints:\n");
    let big = format!("endpoints:\n{}", "# padding\n".repeat(1_100_000));
    fs::write(dir.path().join("big.yaml"), big).unwrap();
    let err = manifest::load(dir.path()).unwrap_err();
    assert_eq!(codes(&err), ["file-too-large"]);
    assert!(
        err.0[0]
            .location
            .as_ref()
            .unwrap()
            .file
            .ends_with("big.yaml")
    );
}

#[cfg(unix)]
#[test]
fn a_symlink_loop_is_reported_not_followed_forever() {
    let dir = project_dir("endpoints:\n");
    fs::create_dir(dir.path().join("sub")).unwrap();
    std::os::unix::fs::symlink("..", dir.path().join("sub/back")).unwrap();
    std::os::unix::fs::symlink("self.yaml", dir.path().join("self.yaml")).unwrap();
    let err = manifest::load(dir.path()).unwrap_err();
    assert_eq!(codes(&err), ["symlink-loop", "symlink-loop"], "{err}");
}

#[cfg(unix)]
#[test]
fn an_unreadable_file_is_reported_with_its_name() {
    use std::os::unix::fs::PermissionsExt;
    let dir = project_dir("endpoints:\n");
    let path = dir.path().join("secret.yaml");
    fs::write(&path, "endpoints:\n").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o000)).unwrap();
    if fs::read(&path).is_ok() {
        // Running as root: permissions do not stop reads. A dangling symlink still makes the
        // read fail, which is the path under test.
        fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink("missing-target", &path).unwrap();
    }
    let err = manifest::load(dir.path()).unwrap_err();
    assert_eq!(codes(&err), ["unreadable-file"], "{err}");
    let shown = err.to_string();
    assert!(shown.contains("secret.yaml:1:1: cannot read: "), "{shown}");
}

#[test]
fn a_missing_directory_is_one_clear_error() {
    let err = manifest::load(Path::new("tests/fixtures/manifests/no-such-dir")).unwrap_err();
    assert_eq!(codes(&err), ["unreadable-directory"]);
    assert!(err.to_string().contains("no-such-dir"), "{err}");
}

#[test]
fn load_project_reads_only_the_project_file() {
    let dir = project_dir("this is not: [valid");
    let project = manifest::load_project(dir.path()).unwrap();
    assert_eq!(project.default_sink.as_deref(), Some("local"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let dir = project_dir("");
        fs::write(dir.path().join("endpoints.yaml"), &bytes).unwrap();
        let _ = manifest::load(dir.path());
    }

    #[test]
    fn arbitrary_yaml_like_text_never_panics(text in "(endpoints:|\n|  |- |web:|url: |https://a.b/|&a |\\*a |\\[|\\]|\\{|\\}|: |'|\"|#|\t|labels|---|1|true|null|~|<<: )*") {
        let dir = project_dir(&text);
        let _ = manifest::load(dir.path());
        fs::write(dir.path().join("kayle-sync.yaml"), &text).unwrap();
        let _ = manifest::load(dir.path());
    }
}

/// A manifest may hold several YAML documents (the multi-env example does); only the project
/// file is limited to one (`multiple-documents`).
#[test]
fn every_document_of_a_manifest_is_read() {
    let dir = project_dir(
        "endpoints:\n  a:\n    url: https://hooks.example.com/a\n    enabled: false\n---\n# only a comment\n---\nendpoints:\n  b:\n    url: https://hooks.example.com/b\n    enabled: false\n",
    );
    let loaded = manifest::load(dir.path()).unwrap();
    let keys: Vec<_> = loaded.desired.endpoints.keys().collect();
    assert_eq!(keys, ["a", "b"]);
    assert_eq!(loaded.manifest_files, 1);
    let b = &loaded.desired.endpoints["b"];
    assert_eq!((b.source.line, b.source.column), (9, 3));
}

#[test]
fn a_key_repeated_in_a_later_document_of_the_same_file_is_a_duplicate() {
    let dir = project_dir(
        "endpoints:\n  a:\n    url: https://hooks.example.com/a\n    enabled: false\n---\nendpoints:\n  a:\n    url: https://hooks.example.com/b\n    enabled: false\n",
    );
    let diagnostics = manifest::load(dir.path()).unwrap_err();
    assert_eq!(codes(&diagnostics), ["duplicate-endpoint"]);
    let location = diagnostics.0[0].location.as_ref().unwrap();
    assert_eq!((location.line, location.column), (7, 3));
    assert!(
        diagnostics.0[0].message.contains("endpoints.yaml:2:3"),
        "{diagnostics}"
    );
}

#[test]
fn an_endpoint_key_of_digits_needs_no_quotes() {
    let dir = project_dir(
        "endpoints:\n  2026:\n    url: https://hooks.example.com/k\n    enabled: false\n",
    );
    let loaded = manifest::load(dir.path()).unwrap();
    assert!(loaded.desired.endpoints.contains_key("2026"));
}

#[test]
fn two_sinks_reaching_one_file_through_a_symlink_may_not_share_a_secret_name() {
    let dir = project_dir(
        "endpoints:\n  web:\n    url: https://hooks.example.com/web\n    enabled: false\n    signing_secret: { name: SHARED }\n  api:\n    url: https://hooks.example.com/api\n    enabled: false\n    signing_secret: { sink: linked, name: SHARED }\n",
    );
    let project = PROJECT.replace(
        "sinks:\n",
        "sinks:\n  linked:\n    type: dotenv\n    path: linked/kayle.env\n",
    );
    fs::write(dir.path().join("kayle-sync.yaml"), project).unwrap();
    fs::create_dir(dir.path().join("secrets")).unwrap();
    std::os::unix::fs::symlink("secrets", dir.path().join("linked")).unwrap();

    let diagnostics = manifest::load(dir.path()).unwrap_err();
    assert_eq!(
        codes(&diagnostics),
        ["duplicate-secret-name"],
        "{diagnostics}"
    );
    let text = diagnostics.to_string();
    assert!(
        text.contains(":6:3: endpoints.api.signing_secret.name"),
        "{text}"
    );
    assert!(text.contains("both write the file"), "{text}");

    // Without the link they are two files, and each may hold its own SHARED.
    fs::remove_file(dir.path().join("linked")).unwrap();
    fs::create_dir(dir.path().join("linked")).unwrap();
    manifest::load(dir.path()).unwrap();
}

/// A sink whose path is a link to a file that does not exist yet is one file with the link's
/// target, as much as when the target exists: the verdict may not depend on whether an apply
/// has written the target already (today the first load accepts what the next one refuses).
#[test]
fn a_sink_linked_to_a_file_not_written_yet_may_not_share_a_secret_name() {
    let dir = project_dir(
        "endpoints:\n  web:\n    url: https://hooks.example.com/web\n    enabled: false\n    signing_secret: { name: SHARED }\n  api:\n    url: https://hooks.example.com/api\n    enabled: false\n    signing_secret: { sink: linked, name: SHARED }\n",
    );
    let project = PROJECT.replace(
        "sinks:\n",
        "sinks:\n  linked:\n    type: dotenv\n    path: secrets/linked.env\n",
    );
    fs::write(dir.path().join("kayle-sync.yaml"), project).unwrap();
    fs::create_dir(dir.path().join("secrets")).unwrap();
    std::os::unix::fs::symlink("kayle.env", dir.path().join("secrets/linked.env")).unwrap();

    let diagnostics =
        manifest::load(dir.path()).expect_err("two sinks that become one file were accepted");
    assert_eq!(
        codes(&diagnostics),
        ["duplicate-secret-name"],
        "{diagnostics}"
    );

    // Once the target exists the same directory is refused: the check has teeth.
    fs::write(dir.path().join("secrets/kayle.env"), "").unwrap();
    assert_eq!(
        codes(&manifest::load(dir.path()).unwrap_err()),
        ["duplicate-secret-name"]
    );
}
