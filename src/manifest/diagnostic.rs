//! Diagnostics: one problem found in a config directory, where it is and how to fix it.

use super::code::Code;
use std::fmt;

use serde::Serialize;

use crate::model::Location;

/// How bad a problem is: errors stop the load, warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem, with a stable kebab-case `code` that scripts and tests can rely on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub code: Code,
    pub location: Option<Location>,
    /// The field path, e.g. `endpoints.identity-prod.labels[2]`.
    pub field: Option<String>,
    pub message: String,
    pub hint: Option<String>,
}

impl Diagnostic {
    /// An error at `location`.
    pub fn error(code: Code, location: Option<Location>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            location,
            field: None,
            message: message.into(),
            hint: None,
        }
    }

    /// A warning at `location`.
    pub fn warning(code: Code, location: Option<Location>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, location, message)
        }
    }

    /// Names the field the problem is in.
    pub fn field(mut self, field: impl Into<String>) -> Self {
        let field = field.into();
        self.field = (!field.is_empty()).then_some(field);
        self
    }

    /// Adds a suggestion for fixing the problem.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    fn sort_key(&self) -> (Option<&std::path::Path>, usize, usize) {
        match &self.location {
            Some(l) => (Some(l.file.as_path()), l.line, l.column),
            None => (None, 0, 0),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(location) = &self.location {
            write!(f, "{location}: ")?;
        }
        if self.severity == Severity::Warning {
            f.write_str("warning: ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// Every error found in a config directory, in file, line and column order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Sorts by file, line and column; problems without a place come first.
    pub fn sort(&mut self) {
        sort(&mut self.0);
    }
}

/// Sorts diagnostics by file, line and column, keeping the order of equal places.
pub(crate) fn sort(list: &mut [Diagnostic]) {
    list.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, diagnostic) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{diagnostic}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_puts_place_field_message_then_hint() {
        let location = Location {
            file: "cfg/a.yaml".into(),
            line: 3,
            column: 5,
        };
        let d = Diagnostic::error(Code::InvalidUrl, Some(location), "bad")
            .field("endpoints.web.url")
            .hint("use https://");
        assert_eq!(
            d.to_string(),
            "cfg/a.yaml:3:5: endpoints.web.url: bad\n  hint: use https://"
        );
        let w = Diagnostic::warning(Code::NoEncryptionKey, None, "lossy");
        assert_eq!(w.to_string(), "warning: lossy");
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["location"]["file"], "cfg/a.yaml");
        assert_eq!(json["severity"], "error");
    }
}
