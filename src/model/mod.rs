//! The desired and live endpoint types every stage shares, and the sink trait.
//!
//! `manifest/` produces [`Desired`], `api/` produces [`Live`], `plan/` compares the two and
//! `apply/` and `sink/` carry the result out. Nothing here does I/O.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

mod event_type;
mod fields;
mod kept;
mod sink;

pub use event_type::EventType;
pub use fields::{EndpointFields, Field, FieldChange, FieldValue};
pub use kept::{KeptKey, kept_key_name};
pub use sink::{SecretSink, SinkError};

/// Upper-cases and turns every character that is not a letter or digit into `_`: a name part
/// every sink kind takes.
pub fn env_style(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The names of the four event types the API knows ([`EventType::KNOWN`]), in the order the
/// server reports them.
pub const ALL_EVENT_TYPES: [&str; 4] = [
    "verification.session.succeeded",
    "verification.session.failed",
    "verification.session.expired",
    "verification.session.cancelled",
];

/// The retention values the API accepts, in hours.
pub const RETENTION_HOURS: [u32; 4] = [0, 24, 72, 168];

/// The API's default retention, in hours.
pub const DEFAULT_RETENTION_HOURS: u32 = 72;

/// The most labels the API keeps on one endpoint; one is the identity label.
pub const MAX_LABELS: usize = 8;

/// The longest label the API accepts, in UTF-16 code units.
pub const MAX_LABEL_UNITS: usize = 40;

/// The default label prefix: an endpoint labelled `kayle-sync:<key>` is managed as `<key>`.
pub const DEFAULT_LABEL_PREFIX: &str = "kayle-sync:";

/// Where a value came from in the user's files, for messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// Everything a config directory declares, validated.
#[derive(Debug, Clone)]
pub struct Desired {
    pub project: Project,
    /// Endpoints by key, in key order.
    pub endpoints: BTreeMap<String, DesiredEndpoint>,
}

/// The project file, `kayle-sync.yaml`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// The config directory; relative paths in the files are relative to it.
    pub dir: PathBuf,
    pub api: ApiConfig,
    pub label_prefix: String,
    pub sinks: BTreeMap<String, SinkConfig>,
    /// The sinks' `reload` commands, by sink name: what makes a receiver load what was just
    /// written to the sink. Kept beside `sinks` because every kind of sink may have one.
    pub reloads: BTreeMap<String, ReloadCommand>,
    /// `defaults.signing_secret.sink`.
    pub default_sink: Option<String>,
}

impl Project {
    /// The label that marks an endpoint as ours and names its key.
    pub fn identity_label(&self, key: &str) -> String {
        format!("{}{key}", self.label_prefix)
    }

    /// The key an identity label names, if the label is one of ours.
    pub fn key_of_label<'a>(&self, label: &'a str) -> Option<&'a str> {
        label
            .strip_prefix(self.label_prefix.as_str())
            .filter(|key| is_valid_key(key))
    }
}

/// Whether `key` is a valid endpoint key: `^[a-z0-9][a-z0-9-]*$`.
pub fn is_valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Where the API lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiUrl {
    /// A real server, e.g. `https://api.kayle.id`.
    Remote(String),
    /// The embedded emulator, state kept under the config directory.
    Sandbox,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    pub url: ApiUrl,
    /// The environment variable holding the bearer token.
    pub token_env: String,
}

/// One secret store, as `kayle-sync.yaml` declares it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum SinkConfig {
    /// `NAME=value` lines in a file.
    Dotenv { path: PathBuf },
    /// One JSON object of name to value in a file.
    Json { path: PathBuf },
    /// An argv list; `{name}` is replaced, the secret goes to stdin.
    Command {
        command: Vec<String>,
        timeout_seconds: u64,
    },
    /// AWS Secrets Manager.
    AwsSecretsManager {
        region: Option<String>,
        endpoint_url: Option<String>,
        prefix: String,
    },
    /// HashiCorp Vault or OpenBao, KV version 2.
    Vault {
        address: String,
        mount: String,
        /// The secret's path, `{name}` replaced.
        path: String,
        token_env: String,
    },
}

/// A sink's `reload`: an argv list (no shell) run after kayle-sync wrote a new signing secret
/// to the sink, so that the receiver reading the sink loads it (`kubectl rollout restart …`).
/// It is handed nothing secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadCommand {
    /// Never empty.
    pub command: Vec<String>,
    pub timeout_seconds: u64,
}

/// How long a command (a `command` sink's, or a `reload`) may run when the file sets no
/// `timeout_seconds`.
pub const DEFAULT_COMMAND_TIMEOUT_SECONDS: u64 = 30;

/// One endpoint as the manifests declare it, validated and normalized the way the server
/// normalizes (trimmed strings, defaults filled, event types explicit and de-duplicated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredEndpoint {
    pub key: String,
    pub url: String,
    pub name: Option<String>,
    /// The user's labels, without the identity label.
    pub labels: Vec<String>,
    pub enabled: bool,
    /// Never empty (the server would store an empty list and deliver nothing).
    pub subscribed_event_types: Vec<EventType>,
    pub undelivered_payload_retention_hours: u32,
    /// The last one is the active key.
    pub encryption_keys: Vec<DesiredKey>,
    pub signing_secret: SecretSpec,
    /// The id of an existing endpoint, made elsewhere (the dashboard), to bring under
    /// management in place, keeping its id and signing secret. Used only while no live
    /// endpoint carries this key's identity label.
    pub adopt: Option<String>,
    /// Where the endpoint's key is declared.
    pub source: Location,
}

impl DesiredEndpoint {
    /// The key that should be active, if any.
    pub fn active_key(&self) -> Option<&DesiredKey> {
        self.encryption_keys.last()
    }
}

/// Where an endpoint's signing secret goes, and how often it has been rotated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSpec {
    /// A name in `Project::sinks`.
    pub sink: String,
    /// The name the secret is stored under.
    pub name: String,
    /// Bumping this rotates the secret once.
    pub rotation: u64,
}

/// One encryption key entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredKey {
    /// The JWE `kid`.
    pub key_id: String,
    pub material: KeyMaterial,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyMaterial {
    /// A public key read from a file.
    Public(RsaPublicJwk),
    /// kayle-sync generates the pair; the private key goes to the endpoint's sink.
    Generate {
        /// The name the PKCS#8 PEM private key is stored under.
        private_key_name: String,
    },
}

/// An RSA public key as a JWK: base64url modulus and exponent, no padding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RsaPublicJwk {
    pub n: String,
    pub e: String,
}

impl RsaPublicJwk {
    /// The JWK body the key-create call takes.
    pub fn to_api_jwk(&self, kid: &str) -> serde_json::Value {
        serde_json::json!({
            "kty": "RSA",
            "n": self.n,
            "e": self.e,
            "alg": "RSA-OAEP-256",
            "use": "enc",
            "kid": kid,
        })
    }
}

/// A webhook endpoint as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveEndpoint {
    pub id: String,
    #[serde(default)]
    pub organization_id: Option<String>,
    pub name: Option<String>,
    pub labels: Vec<String>,
    pub url: String,
    pub enabled: bool,
    pub subscribed_event_types: Vec<EventType>,
    pub undelivered_payload_retention_hours: u32,
    pub created_at: String,
    pub updated_at: String,
    pub disabled_at: Option<String>,
}

/// An encryption key as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveKey {
    pub id: String,
    pub key_id: String,
    pub is_active: bool,
    pub created_at: String,
    /// The registered public JWK, when the listing carries it.
    #[serde(default)]
    pub jwk: Option<serde_json::Value>,
}

/// The organization's endpoints as listed, with the keys of those whose manifests declare keys.
#[derive(Debug, Clone, Default)]
pub struct Live {
    /// Every endpoint, newest first as listed, each id once.
    pub endpoints: Vec<LiveEndpoint>,
    /// Keys by endpoint id; only fetched for managed endpoints that declare keys.
    pub keys: BTreeMap<String, Vec<LiveKey>>,
    /// For readable sinks: whether each managed endpoint's secret is present, by key.
    /// Absent when the sink cannot be read (write-only) or was not asked.
    pub secret_present: BTreeMap<String, bool>,
    /// Readable sinks that could not be asked (no credentials in a pull-request job, say), by
    /// name, with the reason: whether they hold their secrets is unknown.
    pub unreadable_sinks: BTreeMap<String, String>,
    /// With `--verify-secrets`: keys whose readable sink holds a secret other than the one the
    /// API reveals.
    pub secret_differs: std::collections::BTreeSet<String>,
    /// With `--verify-secrets`: keys whose sink's secret was compared with the API's.
    pub secret_compared: std::collections::BTreeSet<String>,
    /// For endpoints whose active key is generated and whose sink is readable: what the sink
    /// holds under the key's private key name, by endpoint key.
    pub private_keys: BTreeMap<String, PrivateKeyHalf>,
    /// For the same endpoints, when the plan asked: the replaced keys' private halves their
    /// sinks keep (see [`KeptKey`]), by endpoint key.
    pub kept_keys: BTreeMap<String, Vec<KeptKey>>,
}

/// What a readable sink holds for a generated key: only the public half derived from it is
/// kept, never the private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrivateKeyHalf {
    /// No value under the key's private key name.
    Missing,
    /// A private key whose public half is this.
    Holds(RsaPublicJwk),
    /// A value that is not a PKCS#8 or PKCS#1 RSA private key.
    Unusable,
}

impl SinkConfig {
    /// The sink kind as written in `kayle-sync.yaml`.
    pub fn kind(&self) -> &'static str {
        match self {
            SinkConfig::Dotenv { .. } => "dotenv",
            SinkConfig::Json { .. } => "json",
            SinkConfig::Command { .. } => "command",
            SinkConfig::AwsSecretsManager { .. } => "aws-secrets-manager",
            SinkConfig::Vault { .. } => "vault",
        }
    }

    /// Whether `name` can name a secret in this kind of sink; the error says what is allowed.
    pub fn check_secret_name(&self, name: &str) -> Result<(), String> {
        let ok = |allowed: fn(char) -> bool, max: usize| {
            !name.is_empty() && name.len() <= max && name.chars().all(allowed)
        };
        let (valid, rule) = match self {
            SinkConfig::Dotenv { .. } => (
                ok(|c| c.is_ascii_alphanumeric() || c == '_', 255)
                    && !name.starts_with(|c: char| c.is_ascii_digit()),
                "letters, digits and `_`, not starting with a digit",
            ),
            SinkConfig::Json { .. } => (
                ok(|c| !c.is_control(), 255),
                "1 to 255 printable characters",
            ),
            SinkConfig::Command { .. } => (
                ok(|c| c.is_ascii_alphanumeric() || "_-./".contains(c), 255),
                "letters, digits and `_-./`",
            ),
            SinkConfig::AwsSecretsManager { .. } => (
                ok(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c), 512),
                "letters, digits and `/_+=.@-`, at most 512",
            ),
            SinkConfig::Vault { .. } => (
                ok(|c| c.is_ascii_alphanumeric() || "_-.".contains(c), 255),
                "letters, digits and `_-.`",
            ),
        };
        if valid {
            Ok(())
        } else {
            Err(format!("a {} sink takes names made of {rule}", self.kind()))
        }
    }
}

/// The most labels a manifest may declare: the API keeps 8, and kayle-sync keeps two of its
/// own, the identity label and the secret-state label.
pub const MAX_DECLARED_LABELS: usize = MAX_LABELS - 2;

/// What kayle-sync knows about an endpoint's signing secret, recorded on the endpoint itself in
/// one label so that it survives without local state and any later run finds it.
///
/// - `Settled { rotation: 0 }`: no label. The sink was written with the secret the API holds,
///   and no rotation was ever applied.
/// - `Settled { rotation: N }`: `<prefix>rotation=N`. Rotation N was applied and the sink holds
///   the secret it produced.
/// - `Unsettled { rotation: N, until: T }`: `<prefix>verify=N@T`. Something happened that may
///   have left the sink without the API's current secret: a create or rotation is under way or
///   was interrupted, or a request whose answer was lost may still land on the server until
///   unix time `T` (0 when none can). The next apply reveals the secret and writes it to the
///   sink, and records `Settled` only once `T` has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SecretState {
    Settled { rotation: u64 },
    Unsettled { rotation: u64, until: u64 },
}

impl SecretState {
    /// The rotation number last applied.
    pub fn rotation(self) -> u64 {
        match self {
            SecretState::Settled { rotation } | SecretState::Unsettled { rotation, .. } => rotation,
        }
    }

    /// The label that records this state, `None` for a settled secret never rotated.
    pub fn label(self, label_prefix: &str) -> Option<String> {
        match self {
            SecretState::Settled { rotation: 0 } => None,
            SecretState::Settled { rotation } => Some(rotation_label(label_prefix, rotation)),
            SecretState::Unsettled { rotation, until } => {
                Some(format!("{label_prefix}verify={rotation}@{until}"))
            }
        }
    }

    /// The state an endpoint's labels record. Several state labels (a label set by hand, say)
    /// combine to the most cautious reading: the highest rotation, unsettled if any is.
    pub fn of_labels<'a>(label_prefix: &str, labels: impl IntoIterator<Item = &'a String>) -> Self {
        let mut rotation = 0;
        let mut until: Option<u64> = None;
        for label in labels {
            match state_of_label(label_prefix, label) {
                Some(SecretState::Settled { rotation: r }) => rotation = rotation.max(r),
                Some(SecretState::Unsettled {
                    rotation: r,
                    until: t,
                }) => {
                    rotation = rotation.max(r);
                    until = Some(until.unwrap_or(0).max(t));
                }
                None => {}
            }
        }
        match until {
            Some(until) => SecretState::Unsettled { rotation, until },
            None => SecretState::Settled { rotation },
        }
    }
}

/// Whether `label` is one of kayle-sync's secret-state labels.
pub fn is_state_label(label_prefix: &str, label: &str) -> bool {
    state_of_label(label_prefix, label).is_some()
}

/// The label recording the rotation number last applied to an endpoint's signing secret.
///
/// It cannot be mistaken for an identity label (keys never contain `=`).
pub fn rotation_label(label_prefix: &str, rotation: u64) -> String {
    format!("{label_prefix}rotation={rotation}")
}

/// The state one label records, if it is a state label.
fn state_of_label(label_prefix: &str, label: &str) -> Option<SecretState> {
    let rest = label.strip_prefix(label_prefix)?;
    if let Some(number) = rest.strip_prefix("rotation=") {
        return Some(SecretState::Settled {
            rotation: number.parse().ok()?,
        });
    }
    let (rotation, until) = rest.strip_prefix("verify=")?.split_once('@')?;
    Some(SecretState::Unsettled {
        rotation: rotation.parse().ok()?,
        until: until.parse().ok()?,
    })
}

/// The longest state label a project can write, for checking that it fits in a label: the
/// largest rotation a manifest declares, and a time far in the future.
pub fn longest_state_label(label_prefix: &str, rotation: u64) -> String {
    SecretState::Unsettled {
        rotation,
        until: 9_999_999_999,
    }
    .label(label_prefix)
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_labels_round_trip_and_combine_cautiously() {
        let prefix = "kayle-sync:";
        for state in [
            SecretState::Settled { rotation: 3 },
            SecretState::Unsettled {
                rotation: 0,
                until: 0,
            },
            SecretState::Unsettled {
                rotation: 4,
                until: 1_764_687_600,
            },
        ] {
            let label = state.label(prefix).unwrap();
            assert!(is_state_label(prefix, &label), "{label}");
            assert_eq!(SecretState::of_labels(prefix, [&label]), state);
        }
        assert_eq!(SecretState::Settled { rotation: 0 }.label(prefix), None);
        let labels = [
            "team".to_owned(),
            "kayle-sync:orders".to_owned(),
            "kayle-sync:rotation=5".to_owned(),
            "kayle-sync:verify=4@100".to_owned(),
        ];
        assert_eq!(
            SecretState::of_labels(prefix, &labels),
            SecretState::Unsettled {
                rotation: 5,
                until: 100
            }
        );
        assert!(!is_state_label(prefix, "kayle-sync:orders"));
        assert!(!is_state_label(prefix, "kayle-sync:verify=x@1"));
        assert!(
            longest_state_label(prefix, 9999).encode_utf16().count() <= MAX_LABEL_UNITS,
            "the default prefix leaves room for the longest state label"
        );
    }
}
