//! The raw layer: YAML bytes to a tree of values that each remember where they were written.
//!
//! Parsing goes through serde-saphyr into [`Node`], a generic tree whose every value is wrapped
//! in [`serde_saphyr::Spanned`]. Typed extraction (with every problem collected rather than the
//! first one) happens in `reader.rs`, which is why this tree is generic rather than a set of
//! `deny_unknown_fields` structs: serde stops at the first error of a document.

use super::code::Code;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{DuplicateKeyPolicy, MergeKeyPolicy, Spanned};

/// A YAML value with its line and column (1-based) and whether it came through an alias.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub line: usize,
    pub column: usize,
    /// Set when the value was written as an alias (`*name`): kayle-sync refuses those.
    pub alias: bool,
}

/// The shape of a YAML value, after YAML 1.2 core-schema resolution with strict booleans.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Keys in document order; keys are always strings (non-string keys are converted).
    Map(Vec<(Node, Node)>),
}

impl Value {
    /// What the value is, in words, for "expected X, found Y" messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

/// A YAML syntax-level failure, with the place it happened when serde-saphyr knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub code: Code,
    pub message: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
}

/// Parses every document of a YAML stream. `Null` documents (empty, or only comments) are kept
/// so that the caller can tell an empty file from one that declares nothing.
///
/// A key repeated in one mapping is kept, in order, for `duplicate_keys` to report: failing the
/// parse instead would hide every other problem in the file.
pub fn parse_documents(text: &str) -> Result<Vec<Node>, ParseError> {
    parse_with(text, MergeKeyPolicy::Error)
}

/// [`parse_documents`], reading a merge key (`<<`) as an ordinary key: only to find where a
/// merge key that [`parse_documents`] refused sits, since a failed parse leaves no tree.
pub fn parse_keeping_merge_keys(text: &str) -> Result<Vec<Node>, ParseError> {
    parse_with(text, MergeKeyPolicy::AsOrdinary)
}

fn parse_with(text: &str, merge_keys: MergeKeyPolicy) -> Result<Vec<Node>, ParseError> {
    let options = serde_saphyr::options! {
        strict_booleans: true,
        duplicate_keys: DuplicateKeyPolicy::PassThrough,
        merge_keys: merge_keys,
        with_snippet: false,
        crop_radius: 0,
    };
    let docs: Vec<Spanned<RawNode>> =
        serde_saphyr::from_multiple_with_options(text, options).map_err(convert_error)?;
    Ok(docs.into_iter().map(into_node).collect())
}

fn convert_error(err: serde_saphyr::Error) -> ParseError {
    let err = err.without_snippet();
    let code = match err {
        serde_saphyr::Error::MergeKeyNotAllowed { .. } => Code::YamlMergeKey,
        serde_saphyr::Error::Budget { .. }
        | serde_saphyr::Error::AliasReplayLimitExceeded { .. }
        | serde_saphyr::Error::AliasExpansionLimitExceeded { .. }
        | serde_saphyr::Error::AliasReplayStackDepthExceeded { .. } => Code::YamlTooComplex,
        _ => Code::YamlSyntax,
    };
    let location = err.location().filter(|l| l.line() > 0);
    let mut message = match err {
        serde_saphyr::Error::MergeKeyNotAllowed { .. } => {
            "YAML merge keys (`<<`) are not supported".to_owned()
        }
        _ => err.to_string(),
    };
    // The rendered message repeats the location at its end; we print ours in front instead.
    if let Some(cut) = message.find(" at line ") {
        message.truncate(cut);
    }
    ParseError {
        code,
        message,
        line: location.map(|l| l.line() as usize),
        column: location.map(|l| l.column() as usize),
    }
}

fn into_node(spanned: Spanned<RawNode>) -> Node {
    let alias = spanned.referenced != spanned.defined;
    let value = match spanned.value.0 {
        RawValue::Null => Value::Null,
        RawValue::Bool(b) => Value::Bool(b),
        RawValue::Int(i) => Value::Int(i),
        RawValue::Float(f) => Value::Float(f),
        RawValue::Str(s) => Value::Str(s),
        RawValue::Seq(items) => Value::Seq(items.into_iter().map(into_node).collect()),
        RawValue::Map(entries) => Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| (key_node(into_node(k)), into_node(v)))
                .collect(),
        ),
    };
    Node {
        value,
        line: spanned.referenced.line() as usize,
        column: spanned.referenced.column() as usize,
        alias,
    }
}

/// An integer mapping key (`123:`) is read as the string it spells, so that an endpoint key made
/// of digits needs no quotes.
fn key_node(mut node: Node) -> Node {
    if let Value::Int(i) = node.value {
        node.value = Value::Str(i.to_string());
    }
    node
}

/// The serde-facing tree, before spans are flattened into [`Node`].
struct RawNode(RawValue);

enum RawValue {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<RawNode>>),
    Map(Vec<(Spanned<RawNode>, Spanned<RawNode>)>),
}

impl<'de> Deserialize<'de> for RawNode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawVisitor).map(RawNode)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = RawValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<RawValue, E> {
        Ok(RawValue::Null)
    }
    fn visit_none<E>(self) -> Result<RawValue, E> {
        Ok(RawValue::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<RawValue, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_bool<E>(self, v: bool) -> Result<RawValue, E> {
        Ok(RawValue::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<RawValue, E> {
        Ok(RawValue::Int(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<RawValue, E> {
        Ok(RawValue::Int(v.into()))
    }
    fn visit_i128<E>(self, v: i128) -> Result<RawValue, E> {
        Ok(RawValue::Int(v))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<RawValue, E> {
        i128::try_from(v)
            .map(RawValue::Int)
            .map_err(|_| E::custom("integer too large"))
    }
    fn visit_f64<E>(self, v: f64) -> Result<RawValue, E> {
        Ok(RawValue::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<RawValue, E> {
        Ok(RawValue::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<RawValue, E> {
        Ok(RawValue::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<RawValue, E> {
        Err(E::custom("binary values are not supported"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(RawValue::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawValue, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(RawValue::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_their_line_and_column() {
        let docs = parse_documents("a:\n  b: [1, yes, true, \"x\"]\n").unwrap();
        let Value::Map(top) = &docs[0].value else {
            panic!("{docs:?}")
        };
        let Value::Map(inner) = &top[0].1.value else {
            panic!()
        };
        let (key, list) = &inner[0];
        assert_eq!((key.line, key.column), (2, 3));
        let Value::Seq(items) = &list.value else {
            panic!()
        };
        assert_eq!(items[0].value, Value::Int(1));
        assert_eq!(items[1].value, Value::Str("yes".into()));
        assert_eq!(items[2].value, Value::Bool(true));
        assert_eq!((items[3].line, items[3].column), (2, 21));
    }

    #[test]
    fn aliases_are_marked() {
        let docs = parse_documents("a: &x 1\nb: *x\n").unwrap();
        let Value::Map(top) = &docs[0].value else {
            panic!()
        };
        assert!(!top[0].1.alias);
        assert!(top[1].1.alias);
    }

    #[test]
    fn duplicate_keys_are_kept_with_their_places() {
        let docs = parse_documents("a: 1\na: 2\n").unwrap();
        let Value::Map(top) = &docs[0].value else {
            panic!("{docs:?}")
        };
        let places: Vec<_> = top.iter().map(|(k, _)| (k.line, k.column)).collect();
        assert_eq!(places, [(1, 1), (2, 1)]);
    }

    #[test]
    fn empty_text_has_no_value() {
        let docs = parse_documents("").unwrap();
        assert!(docs.iter().all(|d| d.value == Value::Null), "{docs:?}");
    }
}
