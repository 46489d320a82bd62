//! Manifests the end-to-end tests of plan and apply share: endpoints with one public key each,
//! and cheap disabled endpoints.

use serde_json::Value;

use super::{Api, Project, id};

/// One endpoint entry of a manifest, enabled, with one encryption key from `keys/<key>.pem`.
pub fn endpoint(key: &str, name: &str, url: &str) -> String {
    format!(
        "  {key}:
    url: {url}
    name: {name}
    labels: [team-a]
    subscribed_event_types: [verification.session.succeeded]
    undelivered_payload_retention_hours: 168
    encryption_keys:
      - key_id: {key}-1
        public_key_file: keys/{key}.pem
"
    )
}

/// A disabled endpoint without keys: cheap, for tests about counts.
pub fn disabled(key: &str) -> String {
    format!("  {key}:\n    url: https://hooks.example.com/{key}\n    enabled: false\n")
}

pub fn manifest(entries: &[String]) -> String {
    format!("endpoints:\n{}", entries.concat())
}

pub fn secret_name(key: &str) -> String {
    format!(
        "KAYLE_WEBHOOK_SECRET_{}",
        key.to_uppercase().replace('-', "_")
    )
}

/// A directory declaring `keys` (each with its own public key), applied once.
pub fn applied(api: &Api, keys: &[&str]) -> Project {
    let project = Project::new();
    for key in keys {
        project.public_key(&format!("keys/{key}.pem"));
    }
    let entries: Vec<String> = keys
        .iter()
        .map(|key| endpoint(key, &format!("{key} service"), &url(key)))
        .collect();
    project.manifest(&manifest(&entries));
    project.apply(api, &[]);
    project
}

pub fn url(key: &str) -> String {
    format!("https://hooks.example.com/{key}")
}

/// The endpoint of `key` exists once and the sink holds its current secret.
#[track_caller]
pub fn assert_one_with_secret(api: &Api, project: &Project, key: &str) -> Value {
    let endpoint = api.one(key);
    assert_eq!(
        project.sink(&secret_name(key)).as_deref(),
        Some(api.secret(&id(&endpoint)).as_str()),
        "the sink holds {key}'s current secret"
    );
    endpoint
}
