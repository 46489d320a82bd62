//! The apply's step log: what was done to one endpoint, in order. Each step has a kind from a
//! closed set that scripts match on (`applied.endpoints[].steps[].kind` in `apply --format
//! json`; `docs/json.md` lists them and a test keeps the list current) and a sentence in the
//! user's words, the text the apply line shows. Never a secret: a write names its sink and the
//! secret's name.

use std::fmt;

use serde::Serialize;

use super::ReceiverCheck;
use super::secret::unix_time;
use crate::model::Field;
use crate::plan::KeyRepair;

/// One thing an apply did to an endpoint. Serialized (in `apply --format json`) as its `kind`
/// and its fields, which a test holds to [`StepKind::as_str`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Step {
    /// The endpoint was created, disabled until its secret and keys are in place.
    Created {
        id: String,
    },
    /// A create whose answer was lost had landed: the endpoint found by its identity label.
    Found {
        id: String,
    },
    Enabled,
    /// Fields changed, in the plan's order.
    Updated {
        fields: Vec<Field>,
    },
    Deleted,
    /// A deleted endpoint's secret taken out of its sink.
    SecretRemoved {
        sink: String,
        name: String,
    },
    /// A newly issued signing secret written to the sink.
    SecretWritten {
        sink: String,
        name: String,
    },
    /// The signing secret revealed and written to the sink; `unsettled` when the endpoint was
    /// recorded unsettled (a run before this one may not have written it).
    SecretRecovered {
        sink: String,
        name: String,
        unsettled: bool,
    },
    /// An unsettled endpoint's sink already held the API's secret.
    SecretVerified {
        sink: String,
        name: String,
    },
    SecretRotated {
        sink: String,
        name: String,
    },
    /// The endpoint stays recorded unsettled until `until` (unix seconds): a request whose
    /// answer was lost may land until then.
    KeptUnsettled {
        until: u64,
        lost: Lost,
    },
    /// A registered generated key is registered again, and why.
    KeyRepaired {
        key_id: String,
        repair: KeyRepair,
    },
    KeyRegistered {
        key_id: String,
    },
    KeyReactivated {
        key_id: String,
    },
    KeyDeactivated {
        key_id: String,
    },
    /// A key pair generated, its private half written to the sink as `name`; `replaced` names
    /// the key whose private half it takes the place of.
    KeyGenerated {
        key_id: String,
        sink: String,
        name: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        replaced: Option<String>,
    },
    /// The private key the sink already held for the key is used.
    KeyFromSink {
        key_id: String,
        sink: String,
        name: String,
    },
    /// Another run wrote a private key first; that one is used.
    KeyFromOtherRun {
        key_id: String,
        sink: String,
    },
    /// A replaced key's private half kept in the sink as `name` (`already` when it was).
    KeyKept {
        key_id: String,
        sink: String,
        name: String,
        already: bool,
    },
    /// A kept private key removed: no delivery encrypted to it can be sent any more.
    KeptKeyRemoved {
        key_id: String,
        sink: String,
        name: String,
    },
    /// The sink's reload command ran (`covered`: a run since the write already covered it).
    Reloaded {
        sink: String,
        covered: bool,
    },
    /// What the receiver made of a rotated secret.
    Receiver(ReceiverCheck),
}

/// Which request's lost answer keeps an endpoint unsettled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Lost {
    /// A rotation, or a request that records the secret's state.
    Request,
    /// A field update.
    Update,
}

/// The kinds of [`Step`], by the names scripts see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    Created,
    Found,
    Enabled,
    Updated,
    Deleted,
    SecretRemoved,
    SecretWritten,
    SecretRecovered,
    SecretVerified,
    SecretRotated,
    KeptUnsettled,
    KeyRepaired,
    KeyRegistered,
    KeyReactivated,
    KeyDeactivated,
    KeyGenerated,
    KeyFromSink,
    KeyFromOtherRun,
    KeyKept,
    KeptKeyRemoved,
    Reloaded,
    Receiver,
}

impl StepKind {
    pub const ALL: [StepKind; 22] = [
        StepKind::Created,
        StepKind::Found,
        StepKind::Enabled,
        StepKind::Updated,
        StepKind::Deleted,
        StepKind::SecretRemoved,
        StepKind::SecretWritten,
        StepKind::SecretRecovered,
        StepKind::SecretVerified,
        StepKind::SecretRotated,
        StepKind::KeptUnsettled,
        StepKind::KeyRepaired,
        StepKind::KeyRegistered,
        StepKind::KeyReactivated,
        StepKind::KeyDeactivated,
        StepKind::KeyGenerated,
        StepKind::KeyFromSink,
        StepKind::KeyFromOtherRun,
        StepKind::KeyKept,
        StepKind::KeptKeyRemoved,
        StepKind::Reloaded,
        StepKind::Receiver,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Created => "created",
            StepKind::Found => "found",
            StepKind::Enabled => "enabled",
            StepKind::Updated => "updated",
            StepKind::Deleted => "deleted",
            StepKind::SecretRemoved => "secret-removed",
            StepKind::SecretWritten => "secret-written",
            StepKind::SecretRecovered => "secret-recovered",
            StepKind::SecretVerified => "secret-verified",
            StepKind::SecretRotated => "secret-rotated",
            StepKind::KeptUnsettled => "kept-unsettled",
            StepKind::KeyRepaired => "key-repaired",
            StepKind::KeyRegistered => "key-registered",
            StepKind::KeyReactivated => "key-reactivated",
            StepKind::KeyDeactivated => "key-deactivated",
            StepKind::KeyGenerated => "key-generated",
            StepKind::KeyFromSink => "key-from-sink",
            StepKind::KeyFromOtherRun => "key-from-other-run",
            StepKind::KeyKept => "key-kept",
            StepKind::KeptKeyRemoved => "kept-key-removed",
            StepKind::Reloaded => "reloaded",
            StepKind::Receiver => "receiver",
        }
    }
}

impl StepKind {
    /// What a step of this kind says, for the documentation.
    pub fn description(self) -> &'static str {
        match self {
            StepKind::Created => {
                "the endpoint was created, disabled until its secret and keys are in place"
            }
            StepKind::Found => {
                "a create whose answer was lost had landed; the endpoint was found by its identity label"
            }
            StepKind::Enabled => "the endpoint was enabled",
            StepKind::Updated => "fields were updated (the text names them)",
            StepKind::Deleted => "the endpoint was deleted",
            StepKind::SecretRemoved => {
                "a deleted endpoint's signing secret was removed from its sink"
            }
            StepKind::SecretWritten => "a newly issued signing secret was written to the sink",
            StepKind::SecretRecovered => "the signing secret was revealed and written to the sink",
            StepKind::SecretVerified => {
                "an unsettled endpoint's sink already held the API's secret"
            }
            StepKind::SecretRotated => {
                "the signing secret was rotated and the new one written to the sink"
            }
            StepKind::KeptUnsettled => {
                "the endpoint stays recorded unsettled until the time given: a request whose answer was lost may still land"
            }
            StepKind::KeyRepaired => {
                "a registered generated key is registered again (the text says why)"
            }
            StepKind::KeyRegistered => "a key was registered, active",
            StepKind::KeyReactivated => "a key was reactivated",
            StepKind::KeyDeactivated => "a key was deactivated",
            StepKind::KeyGenerated => {
                "a key pair was generated and its private half written to the sink"
            }
            StepKind::KeyFromSink => "the private key the sink already held was used",
            StepKind::KeyFromOtherRun => "another run wrote a private key first; that one was used",
            StepKind::KeyKept => {
                "a replaced key's private half is kept in the sink under its kept name"
            }
            StepKind::KeptKeyRemoved => {
                "a kept private key was removed: no delivery encrypted to it can be sent any more"
            }
            StepKind::Reloaded => {
                "the sink's reload command ran, or a run since the write covered it"
            }
            StepKind::Receiver => {
                "what the receiver made of the new secret (as `after_rotation` says)"
            }
        }
    }
}

impl Step {
    pub fn kind(&self) -> StepKind {
        match self {
            Step::Created { .. } => StepKind::Created,
            Step::Found { .. } => StepKind::Found,
            Step::Enabled => StepKind::Enabled,
            Step::Updated { .. } => StepKind::Updated,
            Step::Deleted => StepKind::Deleted,
            Step::SecretRemoved { .. } => StepKind::SecretRemoved,
            Step::SecretWritten { .. } => StepKind::SecretWritten,
            Step::SecretRecovered { .. } => StepKind::SecretRecovered,
            Step::SecretVerified { .. } => StepKind::SecretVerified,
            Step::SecretRotated { .. } => StepKind::SecretRotated,
            Step::KeptUnsettled { .. } => StepKind::KeptUnsettled,
            Step::KeyRepaired { .. } => StepKind::KeyRepaired,
            Step::KeyRegistered { .. } => StepKind::KeyRegistered,
            Step::KeyReactivated { .. } => StepKind::KeyReactivated,
            Step::KeyDeactivated { .. } => StepKind::KeyDeactivated,
            Step::KeyGenerated { .. } => StepKind::KeyGenerated,
            Step::KeyFromSink { .. } => StepKind::KeyFromSink,
            Step::KeyFromOtherRun { .. } => StepKind::KeyFromOtherRun,
            Step::KeyKept { .. } => StepKind::KeyKept,
            Step::KeptKeyRemoved { .. } => StepKind::KeptKeyRemoved,
            Step::Reloaded { .. } => StepKind::Reloaded,
            Step::Receiver(_) => StepKind::Receiver,
        }
    }
}

/// The sentence the apply line shows.
impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Created { id } => write!(f, "created {id} (disabled)"),
            Step::Found { id } => write!(f, "found {id} after a lost answer"),
            Step::Enabled => f.write_str("enabled"),
            Step::Updated { fields } => {
                f.write_str("updated")?;
                for (i, field) in fields.iter().enumerate() {
                    let sep = if i == 0 { " " } else { ", " };
                    write!(f, "{sep}{}", field.name())?;
                }
                Ok(())
            }
            Step::Deleted => f.write_str("deleted"),
            Step::SecretRemoved { sink, name } => write!(f, "removed {name} from sink {sink}"),
            Step::SecretWritten { sink, name } => {
                write!(f, "signing secret written to sink {sink} as {name}")
            }
            Step::SecretRecovered {
                sink,
                name,
                unsettled: false,
            } => write!(f, "signing secret recovered to sink {sink} as {name}"),
            Step::SecretRecovered {
                sink,
                name,
                unsettled: true,
            } => write!(
                f,
                "signing secret recovered to sink {sink} as {name} (it was unsettled)"
            ),
            Step::SecretVerified { sink, name } => {
                write!(f, "signing secret in sink {sink} as {name} verified")
            }
            Step::SecretRotated { sink, name } => {
                write!(
                    f,
                    "signing secret rotated, written to sink {sink} as {name}"
                )
            }
            Step::KeptUnsettled { until, lost } => {
                let what = match lost {
                    Lost::Request => "a request",
                    Lost::Update => "an update",
                };
                write!(
                    f,
                    "kept unsettled until {}: {what} whose answer was lost may still land",
                    unix_time(*until)
                )
            }
            Step::KeyRepaired { key_id, repair } => write!(f, "key {key_id}: {}", repair.as_str()),
            Step::KeyRegistered { key_id } => write!(f, "registered key {key_id} (active)"),
            Step::KeyReactivated { key_id } => write!(f, "reactivated key {key_id}"),
            Step::KeyDeactivated { key_id } => write!(f, "deactivated key {key_id}"),
            Step::KeyGenerated {
                key_id,
                sink,
                name,
                replaced,
            } => {
                write!(
                    f,
                    "generated key {key_id}, private key written to sink {sink} as {name}"
                )?;
                match replaced {
                    Some(replaced) => write!(f, " in place of key {replaced}'s"),
                    None => Ok(()),
                }
            }
            Step::KeyFromSink { key_id, sink, name } => write!(
                f,
                "key {key_id}: using the private key sink {sink} holds as {name}"
            ),
            Step::KeyFromOtherRun { key_id, sink } => write!(
                f,
                "key {key_id}: another run wrote a private key to sink {sink} first; using it"
            ),
            Step::KeyKept {
                key_id,
                sink,
                name,
                already: false,
            } => write!(
                f,
                "key {key_id}: replaced, its private key kept in sink {sink} as {name}"
            ),
            Step::KeyKept {
                key_id,
                sink,
                name,
                already: true,
            } => write!(
                f,
                "key {key_id}: its private key is kept in sink {sink} as {name} already"
            ),
            Step::KeptKeyRemoved { key_id, sink, name } => write!(
                f,
                "key {key_id}: removed its kept private key {name} from sink {sink}; no \
                 delivery encrypted to it can be sent any more"
            ),
            Step::Reloaded {
                sink,
                covered: false,
            } => write!(f, "sink {sink}'s reload command ran"),
            Step::Reloaded {
                sink,
                covered: true,
            } => write!(f, "sink {sink}'s reload command had run since the write"),
            Step::Receiver(check) => f.write_str(&check.describe()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One step of every kind.
    fn one_of_each() -> Vec<Step> {
        let (sink, name, key_id) = ("local".to_owned(), "NAME".to_owned(), "k-1".to_owned());
        vec![
            Step::Created { id: "whe_1".into() },
            Step::Found { id: "whe_1".into() },
            Step::Enabled,
            Step::Updated {
                fields: vec![Field::Name, Field::UndeliveredPayloadRetentionHours],
            },
            Step::Deleted,
            Step::SecretRemoved {
                sink: sink.clone(),
                name: name.clone(),
            },
            Step::SecretWritten {
                sink: sink.clone(),
                name: name.clone(),
            },
            Step::SecretRecovered {
                sink: sink.clone(),
                name: name.clone(),
                unsettled: true,
            },
            Step::SecretVerified {
                sink: sink.clone(),
                name: name.clone(),
            },
            Step::SecretRotated {
                sink: sink.clone(),
                name: name.clone(),
            },
            Step::KeptUnsettled {
                until: 1,
                lost: Lost::Update,
            },
            Step::KeyRepaired {
                key_id: key_id.clone(),
                repair: KeyRepair::MissingFromSink,
            },
            Step::KeyRegistered {
                key_id: key_id.clone(),
            },
            Step::KeyReactivated {
                key_id: key_id.clone(),
            },
            Step::KeyDeactivated {
                key_id: key_id.clone(),
            },
            Step::KeyGenerated {
                key_id: key_id.clone(),
                sink: sink.clone(),
                name: name.clone(),
                replaced: None,
            },
            Step::KeyFromSink {
                key_id: key_id.clone(),
                sink: sink.clone(),
                name: name.clone(),
            },
            Step::KeyFromOtherRun {
                key_id: key_id.clone(),
                sink: sink.clone(),
            },
            Step::KeyKept {
                key_id: key_id.clone(),
                sink: sink.clone(),
                name: name.clone(),
                already: false,
            },
            Step::KeptKeyRemoved {
                key_id,
                sink: sink.clone(),
                name,
            },
            Step::Reloaded {
                sink,
                covered: false,
            },
            Step::Receiver(ReceiverCheck::Accepted {
                after_seconds: 1.5,
                retried: 2,
            }),
        ]
    }

    #[test]
    fn a_step_serializes_as_its_kind_and_its_fields() {
        let steps = one_of_each();
        let kinds: Vec<StepKind> = steps.iter().map(Step::kind).collect();
        assert_eq!(kinds, StepKind::ALL, "one step of every kind, in order");
        for step in &steps {
            let value = serde_json::to_value(step).unwrap();
            assert_eq!(value["kind"], step.kind().as_str(), "{value}");
        }
        let updated = serde_json::to_value(&steps[3]).unwrap();
        assert_eq!(
            updated["fields"],
            serde_json::json!(["name", "undelivered_payload_retention_hours"])
        );
        let receiver = serde_json::to_value(steps.last().unwrap()).unwrap();
        assert_eq!(receiver["receiver"], "accepted", "{receiver}");
        assert_eq!(receiver["retried"], 2, "{receiver}");
    }

    #[test]
    fn every_kind_has_its_own_name() {
        let mut names: Vec<&str> = StepKind::ALL.iter().map(|kind| kind.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), StepKind::ALL.len());
    }

    #[test]
    fn an_update_names_its_fields_in_order() {
        let step = Step::Updated {
            fields: vec![Field::Url, Field::SubscribedEventTypes],
        };
        assert_eq!(step.to_string(), "updated url, subscribed_event_types");
        assert_eq!(step.kind().as_str(), "updated");
    }

    #[test]
    fn a_generated_key_says_whose_place_it_takes() {
        let step = Step::KeyGenerated {
            key_id: "orders-2".into(),
            sink: "local".into(),
            name: "ORDERS_KEY".into(),
            replaced: Some("orders-1".into()),
        };
        assert_eq!(
            step.to_string(),
            "generated key orders-2, private key written to sink local as ORDERS_KEY in place \
             of key orders-1's"
        );
    }
}
