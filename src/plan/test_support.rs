//! Builders of desired and live states for the planner's and the renderers' tests.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::model::{
    self, ApiConfig, ApiUrl, Desired, DesiredEndpoint, DesiredKey, KeyMaterial, Live, LiveEndpoint,
    LiveKey, Location, Project, RsaPublicJwk, SecretSpec, SinkConfig,
};

pub(crate) fn project() -> Project {
    let mut sinks = BTreeMap::new();
    sinks.insert(
        "local".to_owned(),
        SinkConfig::Dotenv {
            path: PathBuf::from(".env"),
        },
    );
    Project {
        dir: PathBuf::from("config"),
        api: ApiConfig {
            url: ApiUrl::Sandbox,
            token_env: "KAYLE_API_TOKEN".to_owned(),
        },
        label_prefix: model::DEFAULT_LABEL_PREFIX.to_owned(),
        sinks,
        reloads: Default::default(),
        default_sink: Some("local".to_owned()),
    }
}

pub(crate) fn desired(endpoints: Vec<DesiredEndpoint>) -> Desired {
    Desired {
        project: project(),
        endpoints: endpoints.into_iter().map(|e| (e.key.clone(), e)).collect(),
    }
}

/// An enabled endpoint subscribed to everything, with one user label and no keys.
pub(crate) fn endpoint(key: &str) -> DesiredEndpoint {
    DesiredEndpoint {
        key: key.to_owned(),
        url: format!("https://{key}.example.com/hooks/kayle"),
        name: Some(format!("Endpoint {key}")),
        labels: vec!["team:identity".to_owned()],
        enabled: true,
        subscribed_event_types: model::EventType::KNOWN.to_vec(),
        undelivered_payload_retention_hours: model::DEFAULT_RETENTION_HOURS,
        encryption_keys: Vec::new(),
        signing_secret: SecretSpec {
            sink: "local".to_owned(),
            name: format!("KAYLE_{}_SECRET", key.to_uppercase().replace('-', "_")),
            rotation: 0,
        },
        adopt: None,
        source: Location {
            file: PathBuf::from(format!("config/endpoints/{key}.yaml")),
            line: 1,
            column: 1,
        },
    }
}

pub(crate) fn public_key(key_id: &str) -> DesiredKey {
    DesiredKey {
        key_id: key_id.to_owned(),
        material: KeyMaterial::Public(RsaPublicJwk {
            n: "n-modulus".to_owned(),
            e: "AQAB".to_owned(),
        }),
    }
}

pub(crate) fn generated_key(key_id: &str) -> DesiredKey {
    DesiredKey {
        key_id: key_id.to_owned(),
        material: KeyMaterial::Generate {
            private_key_name: format!("{key_id}_PRIVATE_KEY"),
        },
    }
}

/// The endpoint as the server reads it back after an apply of `wanted`.
pub(crate) fn live_of(wanted: &DesiredEndpoint, id: &str, created_at: &str) -> LiveEndpoint {
    let project = project();
    let mut labels = wanted.labels.clone();
    labels.push(project.identity_label(&wanted.key));
    if wanted.signing_secret.rotation > 0 {
        labels.push(model::rotation_label(
            &project.label_prefix,
            wanted.signing_secret.rotation,
        ));
    }
    LiveEndpoint {
        id: id.to_owned(),
        organization_id: Some("org_test".to_owned()),
        name: wanted.name.as_deref().map(str::trim).map(str::to_owned),
        labels,
        url: wanted.url.clone(),
        enabled: wanted.enabled,
        subscribed_event_types: wanted.subscribed_event_types.clone(),
        undelivered_payload_retention_hours: wanted.undelivered_payload_retention_hours,
        created_at: created_at.to_owned(),
        updated_at: created_at.to_owned(),
        disabled_at: None,
    }
}

/// An endpoint made elsewhere, with no identity label.
pub(crate) fn foreign(id: &str) -> LiveEndpoint {
    LiveEndpoint {
        id: id.to_owned(),
        organization_id: Some("org_test".to_owned()),
        name: Some("Made in the dashboard".to_owned()),
        labels: vec!["team:other".to_owned()],
        url: "https://other.example.com/hook".to_owned(),
        enabled: true,
        subscribed_event_types: model::EventType::KNOWN.to_vec(),
        undelivered_payload_retention_hours: 72,
        created_at: "2026-01-01T00:00:00Z".to_owned(),
        updated_at: "2026-01-01T00:00:00Z".to_owned(),
        disabled_at: None,
    }
}

pub(crate) fn live_key(id: &str, key_id: &str, is_active: bool, created_at: &str) -> LiveKey {
    LiveKey {
        id: id.to_owned(),
        key_id: key_id.to_owned(),
        is_active,
        created_at: created_at.to_owned(),
        jwk: None,
    }
}

pub(crate) fn live(endpoints: Vec<LiveEndpoint>) -> Live {
    Live {
        endpoints,
        ..Live::default()
    }
}
