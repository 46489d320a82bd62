//! Why a change or a secret recovery is in the plan: closed sets, written in the JSON plan as
//! the same words the text plan shows.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why an endpoint is in the plan, when its action alone does not say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum ChangeReason {
    /// A second endpoint of a key; `of` is the id of the one kept. Shown `duplicate of <id>`.
    Duplicate { of: String },
    /// A managed endpoint no manifest declares any more, deleted by `--prune`.
    Undeclared,
    /// An endpoint made elsewhere, brought under management in place. Shown `adopt <id>`.
    Adopt { id: String },
    /// `kayle-sync rotate` asked for a rotation.
    RotateCommand,
}

impl ChangeReason {
    /// The same reason with the ids it names passed through `f` (to scrub them for output).
    pub fn map_ids(&self, f: impl Fn(&str) -> String) -> ChangeReason {
        match self {
            ChangeReason::Duplicate { of } => ChangeReason::Duplicate { of: f(of) },
            ChangeReason::Adopt { id } => ChangeReason::Adopt { id: f(id) },
            other => other.clone(),
        }
    }
}

impl fmt::Display for ChangeReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChangeReason::Duplicate { of } => write!(f, "duplicate of {of}"),
            ChangeReason::Undeclared => f.write_str("no longer declared"),
            ChangeReason::Adopt { id } => write!(f, "adopt {id}"),
            ChangeReason::RotateCommand => f.write_str("kayle-sync rotate"),
        }
    }
}

impl From<ChangeReason> for String {
    fn from(reason: ChangeReason) -> String {
        reason.to_string()
    }
}

impl TryFrom<String> for ChangeReason {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        if let Some(of) = text.strip_prefix("duplicate of ") {
            return Ok(ChangeReason::Duplicate { of: of.to_owned() });
        }
        if let Some(id) = text.strip_prefix("adopt ") {
            return Ok(ChangeReason::Adopt { id: id.to_owned() });
        }
        match text.as_str() {
            "no longer declared" => Ok(ChangeReason::Undeclared),
            "kayle-sync rotate" => Ok(ChangeReason::RotateCommand),
            _ => Err(format!("unknown change reason {text:?}")),
        }
    }
}

/// Why an endpoint's signing secret is revealed and written to its sink again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecoverReason {
    /// A readable sink does not hold it.
    #[serde(rename = "missing from sink")]
    MissingFromSink,
    /// `--verify-secrets` found the sink holding another value than the API reveals.
    #[serde(rename = "differs from the API's")]
    DiffersFromApi,
    /// Duplicates of the endpoint are deleted: the sink may hold one of theirs.
    #[serde(rename = "duplicates removed")]
    DuplicatesRemoved,
    /// The endpoint was made elsewhere and is adopted with the secret it has.
    #[serde(rename = "adopted")]
    Adopted,
    /// A disabled endpoint is about to be enabled, and its creation may have been cut short
    /// before its secret reached the sink.
    #[serde(rename = "before enabling")]
    BeforeEnabling,
}

impl RecoverReason {
    /// In the user's words, as the plan shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            RecoverReason::MissingFromSink => "missing from sink",
            RecoverReason::DiffersFromApi => "differs from the API's",
            RecoverReason::DuplicatesRemoved => "duplicates removed",
            RecoverReason::Adopted => "adopted",
            RecoverReason::BeforeEnabling => "before enabling",
        }
    }
}

impl fmt::Display for RecoverReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_written_as_the_words_the_plan_shows_and_read_back() {
        for reason in [
            ChangeReason::Duplicate { of: "whe_1".into() },
            ChangeReason::Undeclared,
            ChangeReason::Adopt { id: "whe_2".into() },
            ChangeReason::RotateCommand,
        ] {
            let json = serde_json::to_value(&reason).unwrap();
            assert_eq!(json, serde_json::json!(reason.to_string()));
            assert_eq!(
                serde_json::from_value::<ChangeReason>(json).unwrap(),
                reason
            );
        }
        for reason in [
            RecoverReason::MissingFromSink,
            RecoverReason::DiffersFromApi,
            RecoverReason::DuplicatesRemoved,
            RecoverReason::Adopted,
            RecoverReason::BeforeEnabling,
        ] {
            let json = serde_json::to_value(reason).unwrap();
            assert_eq!(json, serde_json::json!(reason.as_str()));
            assert_eq!(
                serde_json::from_value::<RecoverReason>(json).unwrap(),
                reason
            );
        }
        assert!(serde_json::from_str::<ChangeReason>("\"because\"").is_err());
    }
}
