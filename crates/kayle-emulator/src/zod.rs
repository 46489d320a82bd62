//! Request-validation issues written the way the real server's ZodError lists them.

use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq};

/// A JSON value that keeps its keys in insertion order (the server's issue objects have a
/// fixed key order, and `serde_json::Value` would sort them).
#[derive(Clone, Debug)]
pub(crate) enum J {
    Bool(bool),
    Int(i64),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(&'static str, J)>),
}

impl Serialize for J {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            J::Bool(b) => s.serialize_bool(*b),
            J::Int(i) => s.serialize_i64(*i),
            J::Str(v) => s.serialize_str(v),
            J::Arr(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            J::Obj(fields) => {
                let mut map = s.serialize_map(Some(fields.len()))?;
                for (k, v) in fields {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

fn s(v: &str) -> J {
    J::Str(v.to_string())
}

/// A path segment: a field name or an array index.
#[derive(Clone, Debug)]
pub(crate) enum Seg {
    Key(&'static str),
    Index(usize),
}

fn path_json(path: &[Seg]) -> J {
    J::Arr(
        path.iter()
            .map(|p| match p {
                Seg::Key(k) => s(k),
                Seg::Index(i) => J::Int(*i as i64),
            })
            .collect(),
    )
}

/// One issue of a ZodError.
#[derive(Clone, Debug)]
pub(crate) struct Issue(pub J);

/// The JSON type name the server reports as "received".
pub(crate) fn type_name(v: Option<&serde_json::Value>) -> &'static str {
    match v {
        None => "undefined",
        Some(serde_json::Value::Null) => "null",
        Some(serde_json::Value::Bool(_)) => "boolean",
        Some(serde_json::Value::Number(_)) => "number",
        Some(serde_json::Value::String(_)) => "string",
        Some(serde_json::Value::Array(_)) => "array",
        Some(serde_json::Value::Object(_)) => "object",
    }
}

impl Issue {
    pub fn invalid_type(expected: &str, received: &str, path: &[Seg]) -> Issue {
        Issue(J::Obj(vec![
            ("expected", s(expected)),
            ("code", s("invalid_type")),
            ("path", path_json(path)),
            (
                "message",
                J::Str(format!(
                    "Invalid input: expected {expected}, received {received}"
                )),
            ),
        ]))
    }

    pub fn not_a_number(path: &[Seg]) -> Issue {
        Issue(J::Obj(vec![
            ("expected", s("number")),
            ("code", s("invalid_type")),
            ("received", s("NaN")),
            ("path", path_json(path)),
            ("message", s("Invalid input: expected number, received NaN")),
        ]))
    }

    pub fn not_an_int(path: &[Seg]) -> Issue {
        Issue(J::Obj(vec![
            ("expected", s("int")),
            ("format", s("safeint")),
            ("code", s("invalid_type")),
            ("path", path_json(path)),
            ("message", s("Invalid input: expected int, received number")),
        ]))
    }

    /// `origin` is "string", "array" or "number".
    pub fn too_big(origin: &str, maximum: i64, path: &[Seg]) -> Issue {
        let message = match origin {
            "string" => format!("Too big: expected string to have <={maximum} characters"),
            "array" => format!("Too big: expected array to have <={maximum} items"),
            _ => format!("Too big: expected number to be <={maximum}"),
        };
        Issue(J::Obj(vec![
            ("origin", s(origin)),
            ("code", s("too_big")),
            ("maximum", J::Int(maximum)),
            ("inclusive", J::Bool(true)),
            ("path", path_json(path)),
            ("message", J::Str(message)),
        ]))
    }

    pub fn too_small(origin: &str, minimum: i64, path: &[Seg]) -> Issue {
        let message = match origin {
            "string" => format!("Too small: expected string to have >={minimum} characters"),
            "array" => format!("Too small: expected array to have >={minimum} items"),
            _ => format!("Too small: expected number to be >={minimum}"),
        };
        Issue(J::Obj(vec![
            ("origin", s(origin)),
            ("code", s("too_small")),
            ("minimum", J::Int(minimum)),
            ("inclusive", J::Bool(true)),
            ("path", path_json(path)),
            ("message", J::Str(message)),
        ]))
    }

    /// A refinement written as `{code, path, message}` (URL and empty-PATCH checks).
    pub fn custom(message: &str, path: &[Seg]) -> Issue {
        Issue(J::Obj(vec![
            ("code", s("custom")),
            ("path", path_json(path)),
            ("message", s(message)),
        ]))
    }

    /// A refinement written as `{code, message, path}` (the label checks).
    pub fn custom_message_first(message: &str, path: &[Seg]) -> Issue {
        Issue(J::Obj(vec![
            ("code", s("custom")),
            ("message", s(message)),
            ("path", path_json(path)),
        ]))
    }

    /// A value outside an enum.
    pub fn invalid_option(values: &[&str], path: &[Seg]) -> Issue {
        let message = if values.len() == 1 {
            format!("Invalid input: expected \"{}\"", values[0])
        } else {
            let quoted: Vec<String> = values.iter().map(|v| format!("\"{v}\"")).collect();
            format!("Invalid option: expected one of {}", quoted.join("|"))
        };
        Issue(J::Obj(vec![
            ("code", s("invalid_value")),
            ("values", J::Arr(values.iter().map(|v| s(v)).collect())),
            ("path", path_json(path)),
            ("message", J::Str(message)),
        ]))
    }

    /// A value that matches none of a union of integer literals.
    pub fn invalid_literal_union(literals: &[i64], path: &[Seg]) -> Issue {
        let errors = literals
            .iter()
            .map(|lit| {
                J::Arr(vec![J::Obj(vec![
                    ("code", s("invalid_value")),
                    ("values", J::Arr(vec![J::Int(*lit)])),
                    ("path", J::Arr(vec![])),
                    ("message", J::Str(format!("Invalid input: expected {lit}"))),
                ])])
            })
            .collect();
        Issue(J::Obj(vec![
            ("code", s("invalid_union")),
            ("errors", J::Arr(errors)),
            ("path", path_json(path)),
            ("message", s("Invalid input")),
        ]))
    }

    pub fn bad_pattern(path: &[Seg]) -> Issue {
        Issue(J::Obj(vec![
            ("origin", s("string")),
            ("code", s("invalid_format")),
            ("format", s("regex")),
            ("pattern", s("/^[A-Za-z0-9_-]+$/")),
            ("path", path_json(path)),
            (
                "message",
                s("Invalid string: must match pattern /^[A-Za-z0-9_-]+$/"),
            ),
        ]))
    }
}

/// The `message` of a ZodError body: the issue list as pretty JSON with two-space indents.
pub(crate) fn message(issues: &[Issue]) -> String {
    let list = J::Arr(issues.iter().map(|i| i.0.clone()).collect());
    serde_json::to_string_pretty(&list).unwrap_or_default()
}

/// Length as JavaScript counts it: UTF-16 code units.
pub(crate) fn js_len(v: &str) -> usize {
    v.encode_utf16().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_matches_the_servers_layout() {
        let text = message(&[Issue::custom("Bad.", &[Seg::Key("url")])]);
        assert_eq!(
            text,
            "[\n  {\n    \"code\": \"custom\",\n    \"path\": [\n      \"url\"\n    ],\n    \"message\": \"Bad.\"\n  }\n]"
        );
    }

    #[test]
    fn empty_path_is_written_inline() {
        let text = message(&[Issue::custom("x", &[])]);
        assert!(text.contains("\"path\": [],"), "{text}");
    }
}
