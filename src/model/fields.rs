//! The endpoint's writable fields, defined once: their names as the API spells them, a typed
//! change to one of them, and the request body that sets them.
//!
//! Every use matches on [`Field`] or [`FieldChange`] exhaustively, so a new field does not
//! compile until the plan diffs it, apply sends it and the reports show it.

use serde::Serialize;

use super::EventType;

/// One writable field of an endpoint. [`Field::ALL`] is the API's field order, which is the
/// order of a plan's field changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    Name,
    Labels,
    Url,
    Enabled,
    SubscribedEventTypes,
    UndeliveredPayloadRetentionHours,
}

impl Field {
    /// Every field, in the API's order.
    pub const ALL: [Field; 6] = [
        Field::Name,
        Field::Labels,
        Field::Url,
        Field::Enabled,
        Field::SubscribedEventTypes,
        Field::UndeliveredPayloadRetentionHours,
    ];

    /// The field's name in the API's JSON, the plan's JSON and the plan's text.
    pub fn name(self) -> &'static str {
        match self {
            Field::Name => "name",
            Field::Labels => "labels",
            Field::Url => "url",
            Field::Enabled => "enabled",
            Field::SubscribedEventTypes => "subscribed_event_types",
            Field::UndeliveredPayloadRetentionHours => "undelivered_payload_retention_hours",
        }
    }

    /// The field a name in the API's JSON names.
    pub fn from_name(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|field| field.name() == name)
    }
}

impl Serialize for Field {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// One field's change, with the values as typed as the fields. `before` is `None` for a
/// create, which has no earlier value; a name's `None` is also no name, which the JSON plan
/// writes as `null` either way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldChange {
    Name {
        before: Option<String>,
        after: Option<String>,
    },
    Labels {
        before: Option<Vec<String>>,
        after: Vec<String>,
    },
    Url {
        before: Option<String>,
        after: String,
    },
    Enabled {
        before: Option<bool>,
        after: bool,
    },
    SubscribedEventTypes {
        before: Option<Vec<EventType>>,
        after: Vec<EventType>,
    },
    UndeliveredPayloadRetentionHours {
        before: Option<u32>,
        after: u32,
    },
}

/// One side of a [`FieldChange`] in the shapes of JSON, for the reports: serialized, it is
/// exactly the value the API speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum FieldValue<'a> {
    Null,
    Text(&'a str),
    List(&'a [String]),
    Events(&'a [EventType]),
    Flag(bool),
    Number(u32),
}

impl FieldChange {
    /// The field this changes.
    pub fn field(&self) -> Field {
        match self {
            FieldChange::Name { .. } => Field::Name,
            FieldChange::Labels { .. } => Field::Labels,
            FieldChange::Url { .. } => Field::Url,
            FieldChange::Enabled { .. } => Field::Enabled,
            FieldChange::SubscribedEventTypes { .. } => Field::SubscribedEventTypes,
            FieldChange::UndeliveredPayloadRetentionHours { .. } => {
                Field::UndeliveredPayloadRetentionHours
            }
        }
    }

    /// The value before; [`FieldValue::Null`] for a create.
    pub fn before(&self) -> FieldValue<'_> {
        use FieldValue::{List, Null, Text};
        match self {
            FieldChange::Name { before, .. } => before.as_deref().map_or(Null, Text),
            FieldChange::Labels { before, .. } => before.as_deref().map_or(Null, List),
            FieldChange::SubscribedEventTypes { before, .. } => {
                before.as_deref().map_or(Null, FieldValue::Events)
            }
            FieldChange::Url { before, .. } => before.as_deref().map_or(Null, Text),
            FieldChange::Enabled { before, .. } => before.map_or(Null, FieldValue::Flag),
            FieldChange::UndeliveredPayloadRetentionHours { before, .. } => {
                before.map_or(Null, FieldValue::Number)
            }
        }
    }

    /// The value after.
    pub fn after(&self) -> FieldValue<'_> {
        match self {
            FieldChange::Name { after, .. } => {
                after.as_deref().map_or(FieldValue::Null, FieldValue::Text)
            }
            FieldChange::Labels { after, .. } => FieldValue::List(after),
            FieldChange::SubscribedEventTypes { after, .. } => FieldValue::Events(after),
            FieldChange::Url { after, .. } => FieldValue::Text(after),
            FieldChange::Enabled { after, .. } => FieldValue::Flag(*after),
            FieldChange::UndeliveredPayloadRetentionHours { after, .. } => {
                FieldValue::Number(*after)
            }
        }
    }

    /// The same change with every string in its values passed through `text` (to scrub what a
    /// report shows).
    pub fn map_text(&self, text: impl Fn(&str) -> String) -> FieldChange {
        let list = |items: &[String]| items.iter().map(|item| text(item)).collect::<Vec<_>>();
        match self {
            FieldChange::Name { before, after } => FieldChange::Name {
                before: before.as_deref().map(&text),
                after: after.as_deref().map(&text),
            },
            FieldChange::Labels { before, after } => FieldChange::Labels {
                before: before.as_deref().map(list),
                after: list(after),
            },
            FieldChange::Url { before, after } => FieldChange::Url {
                before: before.as_deref().map(&text),
                after: text(after),
            },
            FieldChange::SubscribedEventTypes { before, after } => {
                // Only a type this kayle-sync does not know holds text from elsewhere.
                let events = |items: &[EventType]| {
                    let scrub = |item: &EventType| match item {
                        EventType::Other(name) => EventType::Other(text(name)),
                        known => known.clone(),
                    };
                    items.iter().map(scrub).collect::<Vec<_>>()
                };
                FieldChange::SubscribedEventTypes {
                    before: before.as_deref().map(events),
                    after: events(after),
                }
            }
            FieldChange::Enabled { .. } | FieldChange::UndeliveredPayloadRetentionHours { .. } => {
                self.clone()
            }
        }
    }
}

/// The writable fields of an endpoint as the create and update calls take them; `None` leaves
/// a field out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EndpointFields {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `Some(None)` clears the name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscribed_event_types: Option<Vec<EventType>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub undelivered_payload_retention_hours: Option<u32>,
}

impl EndpointFields {
    /// The request that sets exactly the `after` values of `changes`. It cannot fail: each
    /// change already holds its field's type.
    pub fn of_changes(changes: &[FieldChange]) -> EndpointFields {
        let mut fields = EndpointFields::default();
        for change in changes {
            fields.set(change);
        }
        fields
    }

    /// Sets the field `change` changes to its `after` value.
    pub fn set(&mut self, change: &FieldChange) {
        match change {
            FieldChange::Name { after, .. } => self.name = Some(after.clone()),
            FieldChange::Labels { after, .. } => self.labels = Some(after.clone()),
            FieldChange::Url { after, .. } => self.url = Some(after.clone()),
            FieldChange::Enabled { after, .. } => self.enabled = Some(*after),
            FieldChange::SubscribedEventTypes { after, .. } => {
                self.subscribed_event_types = Some(after.clone());
            }
            FieldChange::UndeliveredPayloadRetentionHours { after, .. } => {
                self.undelivered_payload_retention_hours = Some(*after);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == EndpointFields::default()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_field_is_listed_once_and_found_by_its_name() {
        for (index, field) in Field::ALL.into_iter().enumerate() {
            assert_eq!(Field::from_name(field.name()), Some(field));
            assert!(!Field::ALL[..index].contains(&field), "{field:?} twice");
        }
        assert_eq!(Field::from_name("color"), None);
    }

    #[test]
    fn plan_values_become_request_fields() {
        let fields = EndpointFields::of_changes(&[
            FieldChange::Name {
                before: Some("Old".into()),
                after: None,
            },
            FieldChange::Labels {
                before: None,
                after: vec!["a".into(), "kayle-sync:x".into()],
            },
            FieldChange::UndeliveredPayloadRetentionHours {
                before: Some(72),
                after: 168,
            },
        ]);
        assert_eq!(fields.name, Some(None), "no name clears the name");
        assert_eq!(
            serde_json::to_value(&fields).unwrap(),
            json!({"name": null, "labels": ["a", "kayle-sync:x"], "undelivered_payload_retention_hours": 168})
        );
    }

    #[test]
    fn values_show_as_the_api_speaks_them() {
        let change = FieldChange::Enabled {
            before: None,
            after: true,
        };
        assert_eq!(serde_json::to_value(change.before()).unwrap(), json!(null));
        assert_eq!(serde_json::to_value(change.after()).unwrap(), json!(true));
        let change = FieldChange::SubscribedEventTypes {
            before: Some(Vec::new()),
            after: vec![EventType::SessionFailed],
        };
        assert_eq!(serde_json::to_value(change.before()).unwrap(), json!([]));
        assert_eq!(
            serde_json::to_value(change.after()).unwrap(),
            json!(["verification.session.failed"])
        );
    }
}
