//! Exported manifests read back as exactly what the server said, whatever it said, and their
//! keys (which name files with `--out`) are always endpoint keys.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::{Value, json};

use super::{derive_key, manifests};
use crate::model::{self, ApiConfig, ApiUrl, Live, LiveEndpoint, Project, SinkConfig};

fn project() -> Project {
    Project {
        dir: PathBuf::from("."),
        api: ApiConfig {
            url: ApiUrl::Sandbox,
            token_env: "KAYLE_API_KEY".into(),
        },
        label_prefix: model::DEFAULT_LABEL_PREFIX.into(),
        sinks: [(
            "local".to_owned(),
            SinkConfig::Dotenv {
                path: "secrets/kayle.env".into(),
            },
        )]
        .into_iter()
        .collect(),
        reloads: Default::default(),
        default_sink: None,
    }
}

fn endpoint(id: &str, name: Option<&str>, labels: &[&str], url: &str) -> LiveEndpoint {
    LiveEndpoint {
        id: id.into(),
        organization_id: None,
        name: name.map(Into::into),
        labels: labels.iter().map(|l| l.to_string()).collect(),
        url: url.into(),
        enabled: true,
        subscribed_event_types: vec![model::EventType::SessionSucceeded],
        undelivered_payload_retention_hours: model::DEFAULT_RETENTION_HOURS,
        created_at: "2026-01-01T00:00:00Z".into(),
        updated_at: "2026-01-01T00:00:00Z".into(),
        disabled_at: None,
    }
}

/// Strings a hostile or broken server could send, each breaking naive YAML in its own way.
const HOSTILE: [&str; 24] = [
    "whe_1\nendpoints:\n  evil:\n    url: https://evil.example.com",
    "whe_2: injected",
    "whe_3 # comment",
    "'single' and \"double\"",
    "back\\slash \\n \\\"",
    "{ flow: [map] }",
    "*alias",
    "&anchor value",
    "!!binary aGk=",
    "%YAML 1.2",
    "@at `tick`",
    "- item",
    "? complex",
    "---",
    "...",
    "tab\there\r\nand crlf",
    "nul \0 bell \u{7} del \u{7f} c1 \u{80}\u{9f}",
    "next line \u{85} separators \u{2028}\u{2029}",
    "bom \u{feff} noncharacter \u{fffe}",
    "  leading and trailing  ",
    "",
    "null",
    "true",
    "0x1F",
];

fn parse(text: &str) -> Value {
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

#[test]
fn every_server_string_reads_back_exactly() {
    let project = project();
    for (i, hostile) in HOSTILE.iter().enumerate() {
        let label = format!("team {hostile}");
        let live = Live {
            endpoints: vec![endpoint(
                hostile,
                Some(hostile),
                &[hostile, &label],
                &format!("https://hooks.example.com/{hostile}"),
            )],
            ..Live::default()
        };
        let exported =
            manifests(&project, &Default::default(), &live, None, &mut Vec::new()).unwrap();
        let [super::Exported { key, text, .. }] = exported.as_slice() else {
            panic!("{i}: one endpoint, one manifest: {exported:?}")
        };
        let doc = parse(text);
        let endpoints = doc["endpoints"].as_object().unwrap();
        assert_eq!(endpoints.len(), 1, "{i}: {text}");
        let exported = &endpoints[key];
        assert_eq!(exported["adopt"], json!(hostile), "{i}: {text}");
        assert_eq!(exported["name"], json!(hostile), "{i}: {text}");
        assert_eq!(exported["labels"], json!([hostile, label]), "{i}: {text}");
        assert_eq!(
            exported["url"],
            json!(format!("https://hooks.example.com/{hostile}")),
            "{i}: {text}"
        );
        assert_eq!(exported["signing_secret"]["sink"], json!("local"));
    }
}

#[test]
fn managed_keys_that_look_like_other_scalars_stay_strings() {
    let project = project();
    let live = Live {
        endpoints: ["null", "true", "123", "0x1f", "1e3"]
            .iter()
            .enumerate()
            .map(|(i, key)| {
                let label = project.identity_label(key);
                endpoint(
                    &format!("whe_{i}"),
                    None,
                    &[&label],
                    "https://h.example.com/",
                )
            })
            .collect(),
        ..Live::default()
    };
    for super::Exported { key, text, .. } in
        manifests(&project, &Default::default(), &live, None, &mut Vec::new()).unwrap()
    {
        let doc = parse(&text);
        let keys: Vec<&String> = doc["endpoints"].as_object().unwrap().keys().collect();
        assert_eq!(keys, [&key], "{text}");
    }
}

#[test]
fn derived_keys_are_endpoint_keys_whatever_the_id_and_name() {
    let project = project();
    let mut taken = BTreeSet::new();
    for (id, name) in [
        ("whe_/../..", None),
        ("/../../etc/passwd", None),
        ("..", Some("..")),
        ("whe_AbC/9", None),
        ("whe_AbC/8", Some("../../x")),
        ("whe_\n:", Some("\u{85}")),
        ("", None),
        ("", None),
    ] {
        let key = derive_key(
            &project,
            &endpoint(id, name, &[], "https://h.example.com/"),
            &taken,
        );
        assert!(model::is_valid_key(&key), "{id:?} {name:?}: {key:?}");
        assert!(!key.contains(['/', '.']), "{key}");
        assert!(taken.insert(key.clone()), "{key} given twice");
    }
    assert!(taken.contains("endpoint-abc-9"), "{taken:?}");
    assert!(taken.contains("x"), "{taken:?}");
}

#[test]
fn derived_keys_stay_unique_when_the_prefix_leaves_little_room() {
    let mut project = project();
    project.label_prefix = "p".repeat(model::MAX_LABEL_UNITS - 3);
    let mut taken = BTreeSet::new();
    for i in 0..120 {
        let live = endpoint(
            &format!("whe_{i}"),
            Some("Orders"),
            &[],
            "https://h.example.com/",
        );
        let key = derive_key(&project, &live, &taken);
        assert!(model::is_valid_key(&key), "{key}");
        assert!(taken.insert(key.clone()), "{key} given twice");
    }
}
