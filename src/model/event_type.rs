//! The event types an endpoint subscribes to, as a closed set: four one-byte values rather
//! than four strings per endpoint in the desired state, the listing and the plan.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ALL_EVENT_TYPES;

/// An event type, written as the API spells it (`verification.session.succeeded`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventType {
    SessionSucceeded,
    SessionFailed,
    SessionExpired,
    SessionCancelled,
    /// One this kayle-sync does not know, as a server listed it: kept as it was sent, so that
    /// a newer server's listing still reads and the plan shows what it holds. A manifest never
    /// declares one.
    Other(String),
}

impl EventType {
    /// The four types the API knows, in the order the server reports them.
    pub const KNOWN: [EventType; 4] = [
        EventType::SessionSucceeded,
        EventType::SessionFailed,
        EventType::SessionExpired,
        EventType::SessionCancelled,
    ];

    /// The name the API uses.
    pub fn name(&self) -> &str {
        match self {
            EventType::SessionSucceeded => ALL_EVENT_TYPES[0],
            EventType::SessionFailed => ALL_EVENT_TYPES[1],
            EventType::SessionExpired => ALL_EVENT_TYPES[2],
            EventType::SessionCancelled => ALL_EVENT_TYPES[3],
            EventType::Other(name) => name,
        }
    }

    /// The known type `name` names, if it names one.
    pub fn known(name: &str) -> Option<EventType> {
        EventType::KNOWN
            .into_iter()
            .find(|known| known.name() == name)
    }

    /// The type `name` names: a known one, or [`EventType::Other`].
    pub fn from_name(name: &str) -> EventType {
        EventType::known(name).unwrap_or_else(|| EventType::Other(name.to_owned()))
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for EventType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Name;

        impl serde::de::Visitor<'_> for Name {
            type Value = EventType;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an event type")
            }

            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<EventType, E> {
                Ok(EventType::from_name(name))
            }
        }

        deserializer.deserialize_str(Name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_an_unknown_one_is_kept_as_sent() {
        for (known, name) in EventType::KNOWN.iter().zip(ALL_EVENT_TYPES) {
            assert_eq!(known.name(), name);
            assert_eq!(EventType::from_name(name), *known);
            assert_eq!(serde_json::to_value(known).unwrap(), name);
        }
        let types: Vec<EventType> =
            serde_json::from_str(r#"["verification.session.failed", "account.closed"]"#).unwrap();
        assert_eq!(
            types,
            [
                EventType::SessionFailed,
                EventType::Other("account.closed".into())
            ]
        );
        assert_eq!(EventType::known("account.closed"), None);
        assert_eq!(
            std::mem::size_of::<EventType>(),
            std::mem::size_of::<String>(),
            "a known type costs no more than the string it replaces, and no allocation"
        );
    }
}
