//! Typed reading of the raw YAML tree: every wrong type, unknown field or alias is recorded as a
//! diagnostic (with file, line, column and field path) and reading goes on, so one run reports
//! every problem.

use super::code::Code;
use std::path::Path;

use super::diagnostic::Diagnostic;
use super::node::{Node, Value};
use crate::model::Location;

/// Reads values out of one file's tree, collecting problems.
pub struct Reader<'a> {
    /// The file as shown to the user (the config directory joined with its relative path).
    pub file: &'a Path,
    pub problems: &'a mut Vec<Diagnostic>,
}

/// A mapping's fields, after unknown ones were reported.
pub struct Fields<'n> {
    entries: Vec<(&'n str, &'n Node)>,
}

impl<'n> Fields<'n> {
    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
    }
}

/// Joins a field path and a key: `endpoints` + `web` = `endpoints.web`.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

impl Reader<'_> {
    /// Where `node` is.
    pub fn at(&self, node: &Node) -> Location {
        Location {
            file: self.file.to_path_buf(),
            line: node.line,
            column: node.column,
        }
    }

    /// Records an error at `node` in `field`; returns it so a hint can be added.
    pub fn error(
        &mut self,
        code: Code,
        node: &Node,
        field: &str,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        let diagnostic = Diagnostic::error(code, Some(self.at(node)), message).field(field);
        self.problems.push(diagnostic);
        self.problems.last_mut().expect("just pushed")
    }

    /// Records that the mapping at `node`, in `parent`, lacks the field `name`. The diagnostic
    /// names the missing field itself (`endpoints.web.url`), so a script reading `field` learns
    /// what to add; the place is the mapping's, since the field has none.
    pub fn missing(&mut self, node: &Node, parent: &str, name: &str) -> &mut Diagnostic {
        self.error(
            Code::MissingField,
            node,
            &join(parent, name),
            format!("missing field `{name}`"),
        )
    }

    fn wrong_type(&mut self, node: &Node, field: &str, expected: &str) {
        let found = node.value.kind();
        let diagnostic = self.error(
            Code::WrongType,
            node,
            field,
            format!("expected {expected}, found {found}"),
        );
        if expected == "a string"
            && matches!(node.value, Value::Int(_) | Value::Float(_) | Value::Bool(_))
        {
            diagnostic.hint = Some("quote the value to make it a string".to_owned());
        }
    }

    /// Reports every alias (`*name`) in the tree: kayle-sync refuses them so that each value has
    /// exactly one place in the files, the one diagnostics point at.
    pub fn refuse_aliases(&mut self, node: &Node, field: &str) {
        if node.alias {
            self.error(
                Code::YamlAlias,
                node,
                field,
                "YAML aliases (`*name`) are not supported",
            )
            .hint = Some("write the value out; each value must have one place in the files".into());
            return;
        }
        match &node.value {
            Value::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.refuse_aliases(item, &format!("{field}[{i}]"));
                }
            }
            Value::Map(entries) => {
                for (key, value) in entries {
                    let name = scalar_text(key);
                    self.refuse_aliases(value, &join(field, &name));
                }
            }
            _ => {}
        }
    }

    /// Reads a mapping whose keys must be among `known`; reports the others, suggesting the
    /// closest known name.
    pub fn fields<'n>(
        &mut self,
        node: &'n Node,
        field: &str,
        known: &[&str],
    ) -> Option<Fields<'n>> {
        let entries = self.entries(node, field)?;
        let mut kept = Vec::new();
        for (key, key_node, value) in entries {
            if known.contains(&key) {
                kept.push((key, value));
            } else {
                let message = format!("unknown field `{key}`");
                let hint = did_you_mean(key, known);
                let diagnostic =
                    self.error(Code::UnknownField, key_node, &join(field, key), message);
                diagnostic.hint = Some(match hint {
                    Some(close) => format!("did you mean `{close}`?"),
                    None => format!("expected one of {}", list(known)),
                });
            }
        }
        Some(Fields { entries: kept })
    }

    /// Reads a mapping with free-form keys, as (key, key node, value).
    pub fn entries<'n>(
        &mut self,
        node: &'n Node,
        field: &str,
    ) -> Option<Vec<(&'n str, &'n Node, &'n Node)>> {
        let Value::Map(entries) = &node.value else {
            self.wrong_type(node, field, "a mapping");
            return None;
        };
        let mut out = Vec::new();
        for (key, value) in entries {
            match &key.value {
                Value::Str(text) => out.push((text.as_str(), key, value)),
                _ => {
                    self.error(
                        Code::WrongType,
                        key,
                        field,
                        format!("keys must be strings, found {}", key.value.kind()),
                    );
                }
            }
        }
        Some(out)
    }

    /// Reads a string.
    pub fn string(&mut self, node: &Node, field: &str) -> Option<String> {
        match &node.value {
            Value::Str(text) => Some(text.clone()),
            _ => {
                self.wrong_type(node, field, "a string");
                None
            }
        }
    }

    /// Reads a string or null (`None` inside means null).
    pub fn nullable_string(&mut self, node: &Node, field: &str) -> Option<Option<String>> {
        match &node.value {
            Value::Null => Some(None),
            _ => self.string(node, field).map(Some),
        }
    }

    /// Reads `true` or `false`.
    pub fn boolean(&mut self, node: &Node, field: &str) -> Option<bool> {
        match &node.value {
            Value::Bool(b) => Some(*b),
            _ => {
                self.wrong_type(node, field, "`true` or `false`");
                None
            }
        }
    }

    /// Reads a non-negative integer.
    pub fn unsigned(&mut self, node: &Node, field: &str) -> Option<u64> {
        match &node.value {
            Value::Int(i) => match u64::try_from(*i) {
                Ok(n) => Some(n),
                Err(_) => {
                    self.error(
                        Code::OutOfRange,
                        node,
                        field,
                        format!("expected a non-negative integer, found {i}"),
                    );
                    None
                }
            },
            _ => {
                self.wrong_type(node, field, "an integer");
                None
            }
        }
    }

    /// Reads a list.
    pub fn list<'n>(&mut self, node: &'n Node, field: &str) -> Option<&'n [Node]> {
        match &node.value {
            Value::Seq(items) => Some(items),
            _ => {
                self.wrong_type(node, field, "a list");
                None
            }
        }
    }

    /// Reads a list of strings; items of another type are reported and skipped.
    pub fn strings(&mut self, node: &Node, field: &str) -> Option<Vec<(String, Node)>> {
        let items = self.list(node, field)?;
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            if let Some(text) = self.string(item, &format!("{field}[{i}]")) {
                out.push((text, item.clone()));
            }
        }
        Some(out)
    }
}

/// A scalar key's text, for field paths.
pub fn scalar_text(node: &Node) -> String {
    match &node.value {
        Value::Str(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Null => "null".to_owned(),
        Value::Seq(_) | Value::Map(_) => "?".to_owned(),
    }
}

/// The known name closest to `word`, if one is close enough to be a likely typo.
pub fn did_you_mean<'k>(word: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (strsim::jaro_winkler(word, k), *k))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

/// `a`, `b` or `c`.
pub fn list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("`{i}`")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => quoted.concat(),
    }
}

/// Length in UTF-16 code units, as the server counts.
pub fn utf16_len(text: &str) -> usize {
    text.encode_utf16().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_are_close_names_only() {
        let known = ["url", "name", "labels", "enabled"];
        assert_eq!(did_you_mean("enabeld", &known), Some("enabled"));
        assert_eq!(did_you_mean("label", &known), Some("labels"));
        assert_eq!(did_you_mean("colour", &known), None);
    }

    #[test]
    fn lengths_count_utf16_units() {
        assert_eq!(utf16_len("abc"), 3);
        assert_eq!(utf16_len("😀"), 2);
    }
}
