//! The health of the managed endpoints, as `kayle-sync status` reports it and `watch` exports
//! it: each endpoint's active key, whether its sink holds the current secret, its deliveries
//! over a window, and the problems those show.

mod deliveries;
mod read;

use serde::Serialize;

pub use deliveries::{Deliveries, LastFailure, OldestPending, seconds_between, summarize};
pub use read::{Options, StatusError, read};

/// The version of the JSON document `status --format json` prints.
pub const FORMAT_VERSION: u32 = 1;

/// What one status run found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub format_version: u32,
    /// No endpoint has a problem.
    pub healthy: bool,
    pub window: Window,
    /// Whether the sinks' secrets were compared with the API's (`--verify-secrets`).
    pub secrets_verified: bool,
    /// Declared and managed endpoints, by key.
    pub endpoints: Vec<EndpointStatus>,
    /// The API requests the run made.
    pub requests: u64,
}

impl Report {
    /// Endpoints with at least one problem.
    pub fn unhealthy(&self) -> usize {
        self.endpoints
            .iter()
            .filter(|e| !e.problems.is_empty())
            .count()
    }
}

/// The deliveries counted: those created from `since` to `until`, and any older one still
/// pending.
#[derive(Debug, Clone, Serialize)]
pub struct Window {
    pub since: jiff::Timestamp,
    pub until: jiff::Timestamp,
    pub seconds: u64,
}

/// One endpoint's health.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointStatus {
    pub key: String,
    /// The live endpoint's id; `None` when a manifest declares it and none exists yet.
    pub endpoint_id: Option<String>,
    /// Whether a manifest declares it (a managed endpoint no manifest declares is reported too).
    pub declared: bool,
    /// `None` when there is no live endpoint.
    pub enabled: Option<bool>,
    pub encryption_key: KeyCheck,
    pub secret: SecretCheck,
    pub deliveries: Deliveries,
    pub problems: Vec<Found>,
}

/// A problem, with what it means in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Found {
    #[serde(flatten)]
    pub problem: Problem,
    pub message: String,
}

impl From<Problem> for Found {
    fn from(problem: Problem) -> Found {
        Found {
            message: problem.to_string(),
            problem,
        }
    }
}

/// The endpoint's active encryption key, and what its sink holds for a generated one.
#[derive(Debug, Clone, Serialize)]
pub struct KeyCheck {
    /// The `key_id` of the active key; `None` when none is active.
    pub key_id: Option<String>,
    /// The `key_id` the manifest wants active, when it declares keys.
    pub declared_key_id: Option<String>,
    pub private_key: PrivateKeyCheck,
}

/// Whether the sink holds the private half of a generated active key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PrivateKeyCheck {
    /// Not a key kayle-sync generates: its private half is the receiver's own business.
    NotGenerated,
    /// The sink's private key is the registered key's other half.
    Matches,
    /// The sink holds another private key: the receiver cannot decrypt.
    Differs,
    /// The sink holds no private key for it.
    Missing,
    /// The sink holds something that is not an RSA private key.
    Unusable,
    /// The sink could not be read, or the key is not registered: not compared.
    NotChecked,
}

/// Whether the endpoint's sink holds the secret Kayle signs with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum SecretCheck {
    /// Compared with the revealed secret: the same.
    Current { sink: String },
    /// Compared with the revealed secret: another one.
    Differs { sink: String },
    /// A secret is held; not compared with Kayle's (no `--verify-secrets`).
    Present { sink: String },
    /// The sink holds no secret under the endpoint's name.
    Missing { sink: String },
    /// The sink cannot be read back (a command, say): not checked.
    WriteOnly { sink: String },
    /// The sink could not be read: not checked.
    Unreadable { sink: String, reason: String },
    /// No manifest declares the endpoint, or it has no live endpoint: nothing to compare.
    NotChecked,
}

impl SecretCheck {
    /// The word the text table shows.
    pub fn word(&self) -> &'static str {
        match self {
            SecretCheck::Current { .. } => "current",
            SecretCheck::Differs { .. } => "DIFFERS",
            SecretCheck::Present { .. } => "present",
            SecretCheck::Missing { .. } => "MISSING",
            SecretCheck::WriteOnly { .. } => "write-only",
            SecretCheck::Unreadable { .. } => "unreadable",
            SecretCheck::NotChecked => "-",
        }
    }

    /// The same check with its texts (the sink's name, why it could not be read) passed
    /// through `map`: a renderer scrubs them.
    pub fn map_texts(&self, map: impl Fn(&str) -> String) -> SecretCheck {
        match self {
            SecretCheck::Current { sink } => SecretCheck::Current { sink: map(sink) },
            SecretCheck::Differs { sink } => SecretCheck::Differs { sink: map(sink) },
            SecretCheck::Present { sink } => SecretCheck::Present { sink: map(sink) },
            SecretCheck::Missing { sink } => SecretCheck::Missing { sink: map(sink) },
            SecretCheck::WriteOnly { sink } => SecretCheck::WriteOnly { sink: map(sink) },
            SecretCheck::Unreadable { sink, reason } => SecretCheck::Unreadable {
                sink: map(sink),
                reason: map(reason),
            },
            SecretCheck::NotChecked => SecretCheck::NotChecked,
        }
    }

    /// 1 when the sink is known to hold the current secret, 0 when known not to, `None` when
    /// that was not checked.
    pub fn current(&self) -> Option<bool> {
        match self {
            SecretCheck::Current { .. } => Some(true),
            SecretCheck::Differs { .. } | SecretCheck::Missing { .. } => Some(false),
            _ => None,
        }
    }
}

/// Something wrong with an endpoint: each makes `status` exit 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "code", rename_all = "kebab-case")]
pub enum Problem {
    /// A manifest declares it and no live endpoint exists: apply has not run.
    NotCreated,
    /// Enabled with no active key: Kayle fails every delivery to it for good.
    EnabledWithoutKey,
    /// The active key is not the one the manifest wants active.
    OtherKeyActive { active: String, declared: String },
    /// The sink's private key is not the registered generated key's, or is missing.
    PrivateKey { check: PrivateKeyCheck },
    /// The sink's secret is not the one Kayle signs with.
    SecretDiffers,
    /// The sink holds no secret.
    SecretMissing,
    /// Deliveries that used every attempt and failed.
    FailedDeliveries { count: u64 },
    /// Pending deliveries whose last attempt was refused: the receiver refuses now.
    RetryingDeliveries { count: u64 },
}

impl Problem {
    /// The same problem with the key ids it names passed through `map`: a renderer scrubs them.
    pub fn map_texts(&self, map: impl Fn(&str) -> String) -> Problem {
        match self {
            Problem::OtherKeyActive { active, declared } => Problem::OtherKeyActive {
                active: map(active),
                declared: map(declared),
            },
            other => other.clone(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::NotCreated => write!(f, "declared but not created: run apply"),
            Problem::EnabledWithoutKey => write!(
                f,
                "enabled without an active encryption key: every delivery fails and is lost"
            ),
            Problem::OtherKeyActive { active, declared } => write!(
                f,
                "key {active} is active but the manifest's active key is {declared}: run apply"
            ),
            Problem::PrivateKey { check } => match check {
                PrivateKeyCheck::Missing => {
                    write!(f, "the sink holds no private key for the active key")
                }
                _ => write!(
                    f,
                    "the sink's private key is not the active key's: the receiver cannot decrypt"
                ),
            },
            Problem::SecretDiffers => write!(
                f,
                "the sink holds a secret other than the one Kayle signs with (apply repairs it)"
            ),
            Problem::SecretMissing => write!(f, "the sink holds no signing secret for it"),
            Problem::FailedDeliveries { count } => {
                write!(f, "{count} delivery(ies) failed after every attempt")
            }
            Problem::RetryingDeliveries { count } => write!(
                f,
                "{count} pending delivery(ies) refused at their last attempt, waiting to be retried"
            ),
        }
    }
}

impl EndpointStatus {
    /// The problems its figures show, in a fixed order.
    fn find_problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.endpoint_id.is_none() {
            return vec![Problem::NotCreated];
        }
        let key = &self.encryption_key;
        if self.enabled == Some(true) && key.key_id.is_none() {
            problems.push(Problem::EnabledWithoutKey);
        }
        if let (Some(active), Some(declared)) = (&key.key_id, &key.declared_key_id)
            && active != declared
        {
            problems.push(Problem::OtherKeyActive {
                active: active.clone(),
                declared: declared.clone(),
            });
        }
        if matches!(
            key.private_key,
            PrivateKeyCheck::Differs | PrivateKeyCheck::Missing | PrivateKeyCheck::Unusable
        ) {
            problems.push(Problem::PrivateKey {
                check: key.private_key,
            });
        }
        match self.secret {
            SecretCheck::Differs { .. } => problems.push(Problem::SecretDiffers),
            SecretCheck::Missing { .. } => problems.push(Problem::SecretMissing),
            _ => {}
        }
        if self.deliveries.failed > 0 {
            problems.push(Problem::FailedDeliveries {
                count: self.deliveries.failed,
            });
        }
        if self.deliveries.retrying > 0 {
            problems.push(Problem::RetryingDeliveries {
                count: self.deliveries.retrying,
            });
        }
        problems
    }
}

/// Reports built in code, for the tests of what reads and renders them.
#[cfg(test)]
pub(crate) mod sample {
    use super::*;

    /// A healthy declared endpoint `key`, live as `id` (enabled, key `k1` active and its
    /// private half in the sink, the secret present in `local`), or not created (`None`).
    pub(crate) fn endpoint(key: &str, id: Option<&str>) -> EndpointStatus {
        EndpointStatus {
            key: key.into(),
            endpoint_id: id.map(str::to_owned),
            declared: true,
            enabled: id.map(|_| true),
            encryption_key: KeyCheck {
                key_id: Some("k1".into()),
                declared_key_id: Some("k1".into()),
                private_key: PrivateKeyCheck::Matches,
            },
            secret: SecretCheck::Present {
                sink: "local".into(),
            },
            deliveries: Deliveries::default(),
            problems: Vec::new(),
        }
    }

    /// A report of `endpoints` made at 2026-12-02T12:00:00Z over a day, secrets verified.
    pub(crate) fn report(endpoints: Vec<EndpointStatus>) -> Report {
        let until: jiff::Timestamp = "2026-12-02T12:00:00Z".parse().unwrap();
        Report {
            format_version: FORMAT_VERSION,
            healthy: endpoints.iter().all(|e| e.problems.is_empty()),
            window: Window {
                since: until,
                until,
                seconds: 86_400,
            },
            secrets_verified: true,
            endpoints,
            requests: 4,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy() -> EndpointStatus {
        sample::endpoint("web", Some("whe_1"))
    }

    #[test]
    fn each_problem_is_found_and_a_healthy_endpoint_has_none() {
        assert_eq!(healthy().find_problems(), []);
        let mut sick = healthy();
        sick.encryption_key.key_id = None;
        sick.secret = SecretCheck::Differs {
            sink: "local".into(),
        };
        sick.deliveries.failed = 2;
        sick.deliveries.retrying = 1;
        assert_eq!(
            sick.find_problems(),
            [
                Problem::EnabledWithoutKey,
                Problem::SecretDiffers,
                Problem::FailedDeliveries { count: 2 },
                Problem::RetryingDeliveries { count: 1 },
            ]
        );
        let mut drifted = healthy();
        drifted.encryption_key.key_id = Some("k0".into());
        drifted.encryption_key.private_key = PrivateKeyCheck::Missing;
        drifted.secret = SecretCheck::Missing {
            sink: "local".into(),
        };
        let problems = drifted.find_problems();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].to_string().contains("key k0 is active"));
        let mut disabled = healthy();
        disabled.enabled = Some(false);
        disabled.encryption_key.key_id = None;
        disabled.encryption_key.declared_key_id = None;
        assert_eq!(
            disabled.find_problems(),
            [],
            "disabled without a key is fine"
        );
        let mut absent = healthy();
        absent.endpoint_id = None;
        assert_eq!(absent.find_problems(), [Problem::NotCreated]);
    }

    #[test]
    fn problems_serialize_with_a_kebab_case_code() {
        let json = serde_json::to_value(Problem::FailedDeliveries { count: 3 }).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"code": "failed-deliveries", "count": 3})
        );
    }
}
