//! The endpoint's writable fields as the API speaks them, and comparing desired with live the
//! way the server normalizes, so that a plan right after an apply is empty.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::FieldChange;
use crate::model::{self, DesiredEndpoint, LiveEndpoint, Project};

/// The labels an endpoint should carry apart from the secret-state label: the user's, then the
/// identity label. The state label is apply's to write (see [`model::SecretState`]): a plan
/// keeps whatever state label the endpoint carries, and never shows one changing as a field.
pub fn desired_labels(project: &Project, desired: &DesiredEndpoint) -> Vec<String> {
    let mut labels = desired.labels.clone();
    labels.push(project.identity_label(&desired.key));
    labels
}

/// `labels` with the secret-state labels replaced by the one recording `state`.
pub fn with_state_label(
    project: &Project,
    labels: &[String],
    state: model::SecretState,
) -> Vec<String> {
    let prefix = &project.label_prefix;
    let mut labels: Vec<String> = labels
        .iter()
        .filter(|label| !model::is_state_label(prefix, label))
        .cloned()
        .collect();
    labels.extend(state.label(prefix));
    labels
}

/// The desired name as the server stores it: trimmed, and an empty one is no name.
fn normalized_name(name: Option<&str>) -> Option<&str> {
    name.map(str::trim).filter(|name| !name.is_empty())
}

/// Every field of a desired endpoint as the create call sends it (apply adds the state label).
pub(crate) fn create_fields(project: &Project, desired: &DesiredEndpoint) -> Vec<FieldChange> {
    desired_values(desired, desired_labels(project, desired))
        .into_iter()
        .map(|(field, after)| FieldChange {
            field: field.to_owned(),
            before: Value::Null,
            after,
        })
        .collect()
}

fn desired_values(desired: &DesiredEndpoint, labels: Vec<String>) -> Vec<(&'static str, Value)> {
    vec![
        ("name", json!(normalized_name(desired.name.as_deref()))),
        ("labels", json!(labels)),
        ("url", json!(desired.url)),
        ("enabled", json!(desired.enabled)),
        (
            "subscribed_event_types",
            json!(desired.subscribed_event_types),
        ),
        (
            "undelivered_payload_retention_hours",
            json!(desired.undelivered_payload_retention_hours),
        ),
    ]
}

fn live_values(live: &LiveEndpoint) -> Vec<(&'static str, Value)> {
    vec![
        ("name", json!(live.name)),
        ("labels", json!(live.labels)),
        ("url", json!(live.url)),
        ("enabled", json!(live.enabled)),
        ("subscribed_event_types", json!(live.subscribed_event_types)),
        (
            "undelivered_payload_retention_hours",
            json!(live.undelivered_payload_retention_hours),
        ),
    ]
}

/// The fields whose desired value differs from the live one, compared as the server reads them
/// back:
/// - `name`: the desired name trimmed, an empty one as none; the live one as stored.
/// - `labels`: as sets of exact strings. Order never matters (the server keeps whatever order
///   was sent), but case does: the server refuses two labels equal ignoring case, yet a user who
///   changes `Team` to `team` wants that applied, so a case change is a change.
/// - `subscribed_event_types`: as sets (the server stores duplicates as sent); a live empty list
///   reads as all four types, as the server reports it.
/// - `url` verbatim (the server does not normalize it), `enabled` and retention as values.
///
/// The endpoint's secret-state labels are kept as they are on the desired side: the secret
/// step, not a field change, moves them.
pub(crate) fn changed_fields(
    project: &Project,
    desired: &DesiredEndpoint,
    live: &LiveEndpoint,
) -> Vec<FieldChange> {
    let state_labels = live
        .labels
        .iter()
        .filter(|label| model::is_state_label(&project.label_prefix, label))
        .cloned();
    let mut labels = desired_labels(project, desired);
    labels.extend(state_labels);
    desired_values(desired, labels)
        .into_iter()
        .zip(live_values(live))
        .filter(|((field, after), (_, before))| !same(field, before, after))
        .map(|((field, after), (_, before))| FieldChange {
            field: field.to_owned(),
            before,
            after,
        })
        .collect()
}

fn same(field: &str, before: &Value, after: &Value) -> bool {
    match field {
        "labels" => as_set(before, false) == as_set(after, false),
        "subscribed_event_types" => as_set(before, true) == as_set(after, true),
        _ => before == after,
    }
}

/// A JSON list of strings as a set; `empty_is_all` reads an empty list as every event type.
fn as_set(value: &Value, empty_is_all: bool) -> BTreeSet<String> {
    let set: BTreeSet<String> = value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| item.as_str().map(str::to_owned))
        .collect();
    if set.is_empty() && empty_is_all {
        model::ALL_EVENT_TYPES
            .iter()
            .map(|t| (*t).to_owned())
            .collect()
    } else {
        set
    }
}

/// Serde for `Change::fields`: an object keyed by field name, in the plan's order.
pub(crate) mod as_map {
    use std::fmt;

    use serde::de::{MapAccess, Visitor};
    use serde::ser::SerializeMap;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::Value;

    use crate::plan::FieldChange;

    #[derive(Serialize, Deserialize)]
    struct BeforeAfter {
        before: Value,
        after: Value,
    }

    pub(crate) fn serialize<S: Serializer>(
        fields: &[FieldChange],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(fields.len()))?;
        for change in fields {
            let value = BeforeAfter {
                before: change.before.clone(),
                after: change.after.clone(),
            };
            map.serialize_entry(&change.field, &value)?;
        }
        map.end()
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<FieldChange>, D::Error> {
        struct FieldsVisitor;

        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = Vec<FieldChange>;

            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("an object of field name to {before, after}")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut fields = Vec::new();
                while let Some((field, value)) = map.next_entry::<String, BeforeAfter>()? {
                    fields.push(FieldChange {
                        field,
                        before: value.before,
                        after: value.after,
                    });
                }
                Ok(fields)
            }
        }

        deserializer.deserialize_map(FieldsVisitor)
    }
}
