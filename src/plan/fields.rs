//! Comparing desired with live field by field the way the server normalizes, so that a plan
//! right after an apply is empty, and the field changes' JSON.

use std::collections::BTreeSet;

use crate::model::{self, DesiredEndpoint, EventType, Field, FieldChange, LiveEndpoint, Project};

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
    let labels = desired_labels(project, desired);
    // Every field, so room for exactly that many: collected from a filter, a create's six
    // changes would get room for eight, and the plan is kept through the apply.
    let mut fields = Vec::with_capacity(Field::ALL.len());
    fields.extend(
        Field::ALL
            .into_iter()
            .filter_map(|field| change(field, desired, &labels, None)),
    );
    fields
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
    let mut fields: Vec<FieldChange> = Field::ALL
        .into_iter()
        .filter_map(|field| change(field, desired, &labels, Some(live)))
        .collect();
    // Collected from a filter, a single change gets room for four (56 bytes each), kept through
    // the apply: 1.7 MB of spare room in a plan of 10,000 one-field updates, none once shrunk.
    fields.shrink_to_fit();
    fields
}

/// The change of `field` from `live` (none for a create, where every field is set) to
/// `desired` with `labels`, or `None` when the server would read the two as the same.
fn change<'a>(
    field: Field,
    desired: &'a DesiredEndpoint,
    labels: &'a [String],
    live: Option<&'a LiveEndpoint>,
) -> Option<FieldChange> {
    // A create sets every field; an update those whose values differ.
    let changes = |same: bool| live.is_none() || !same;
    match field {
        Field::Name => {
            let after = normalized_name(desired.name.as_deref());
            let before = live.map(|live| live.name.as_deref());
            changes(before == Some(after)).then(|| FieldChange::Name {
                before: before.flatten().map(str::to_owned),
                after: after.map(str::to_owned),
            })
        }
        Field::Labels => {
            let before = live.map(|live| &live.labels);
            let set = |labels: &'a [String]| as_set(labels.iter().map(String::as_str), false);
            let same = before.is_some_and(|before| set(before) == set(labels));
            changes(same).then(|| FieldChange::Labels {
                before: before.cloned(),
                after: labels.to_vec(),
            })
        }
        Field::Url => {
            let before = live.map(|live| &live.url);
            changes(before == Some(&desired.url)).then(|| FieldChange::Url {
                before: before.cloned(),
                after: desired.url.clone(),
            })
        }
        Field::Enabled => {
            let before = live.map(|live| live.enabled);
            changes(before == Some(desired.enabled)).then_some(FieldChange::Enabled {
                before,
                after: desired.enabled,
            })
        }
        Field::SubscribedEventTypes => {
            let after = &desired.subscribed_event_types;
            let before = live.map(|live| &live.subscribed_event_types);
            let set = |events: &'a [EventType]| as_set(events.iter().map(EventType::name), true);
            let same = before.is_some_and(|before| set(before) == set(after));
            changes(same).then(|| FieldChange::SubscribedEventTypes {
                before: before.cloned(),
                after: after.clone(),
            })
        }
        Field::UndeliveredPayloadRetentionHours => {
            let after = desired.undelivered_payload_retention_hours;
            let before = live.map(|live| live.undelivered_payload_retention_hours);
            changes(before == Some(after))
                .then_some(FieldChange::UndeliveredPayloadRetentionHours { before, after })
        }
    }
}

/// Names as a set; `empty_is_all` reads no names as every event type.
fn as_set<'a>(names: impl Iterator<Item = &'a str>, empty_is_all: bool) -> BTreeSet<&'a str> {
    let set: BTreeSet<&str> = names.collect();
    if set.is_empty() && empty_is_all {
        model::ALL_EVENT_TYPES.into_iter().collect()
    } else {
        set
    }
}

/// Serde for `Change::fields`: an object keyed by field name, in the plan's order, each with
/// `before` and `after` as the API speaks them. A name that is no field, or a value of the
/// wrong type, makes the plan unreadable.
pub(crate) mod as_map {
    use std::fmt;

    use serde::de::{self, MapAccess, Visitor};
    use serde::ser::SerializeMap;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::model::{Field, FieldChange};

    #[derive(Serialize, Deserialize)]
    struct BeforeAfter<B, A> {
        before: B,
        after: A,
    }

    pub(crate) fn serialize<S: Serializer>(
        fields: &[FieldChange],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(fields.len()))?;
        for change in fields {
            let value = BeforeAfter {
                before: change.before(),
                after: change.after(),
            };
            map.serialize_entry(change.field().name(), &value)?;
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
                while let Some(name) = map.next_key::<String>()? {
                    let field = Field::from_name(&name).ok_or_else(|| {
                        de::Error::custom(format_args!("`{name}` is not an endpoint field"))
                    })?;
                    fields.push(read(field, &mut map)?);
                }
                Ok(fields)
            }
        }

        deserializer.deserialize_map(FieldsVisitor)
    }

    /// The `{before, after}` of `field`, typed as the field is.
    fn read<'de, A: MapAccess<'de>>(field: Field, map: &mut A) -> Result<FieldChange, A::Error> {
        // Each arm reads the value with its variant's types.
        macro_rules! typed {
            ($variant:ident) => {{
                let BeforeAfter { before, after } = map.next_value()?;
                FieldChange::$variant { before, after }
            }};
        }
        Ok(match field {
            Field::Name => typed!(Name),
            Field::Labels => typed!(Labels),
            Field::Url => typed!(Url),
            Field::Enabled => typed!(Enabled),
            Field::SubscribedEventTypes => typed!(SubscribedEventTypes),
            Field::UndeliveredPayloadRetentionHours => typed!(UndeliveredPayloadRetentionHours),
        })
    }
}
