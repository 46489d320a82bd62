//! Keys written twice in one mapping: each later one is reported with the place of the first,
//! and dropped from the tree, so that the rest of the file is still checked (with the first).

use super::code::Code;
use std::collections::HashMap;

use super::node::{Node, Value};
use super::reader::{Reader, join, scalar_text};

/// Reports and removes every repeated key in the tree under `node`, whose field path is `field`.
pub fn drop_repeated(r: &mut Reader, node: &mut Node, field: &str) {
    match &mut node.value {
        Value::Seq(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                drop_repeated(r, item, &format!("{field}[{i}]"));
            }
        }
        Value::Map(entries) => {
            let mut first: HashMap<Identity, (usize, usize)> = HashMap::new();
            entries.retain(|(key, _)| {
                let Some(identity) = identity(&key.value) else {
                    return true;
                };
                match first.get(&identity) {
                    None => {
                        first.insert(identity, (key.line, key.column));
                        true
                    }
                    Some((line, column)) => {
                        let name = scalar_text(key);
                        r.error(
                            Code::YamlDuplicateKey,
                            key,
                            &join(field, &name),
                            format!(
                                "duplicate key `{name}` in one mapping; the first is at line {line}, column {column}"
                            ),
                        )
                        .hint = Some(
                            "remove one of the two; the other checks read the first".to_owned(),
                        );
                        false
                    }
                }
            });
            for (key, value) in entries {
                drop_repeated(r, value, &join(field, &scalar_text(key)));
            }
        }
        _ => {}
    }
}

/// What makes two keys the same key: their resolved scalar value (`0x1F` and `31` are one).
#[derive(Debug, PartialEq, Eq, Hash)]
enum Identity {
    Str(String),
    Int(i128),
    Bool(bool),
    Null,
    /// A float, by its bits (so `.nan` keys compare equal, as YAML says they are one value).
    Float(u64),
}

/// A scalar key's identity; collection keys (`? [a, b]`) are never compared.
fn identity(value: &Value) -> Option<Identity> {
    Some(match value {
        Value::Str(s) => Identity::Str(s.clone()),
        Value::Int(i) => Identity::Int(*i),
        Value::Bool(b) => Identity::Bool(*b),
        Value::Null => Identity::Null,
        Value::Float(f) => Identity::Float(f.to_bits()),
        Value::Seq(_) | Value::Map(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::manifest::node::parse_documents;

    fn check(text: &str) -> (Node, Vec<String>) {
        let mut doc = parse_documents(text).unwrap().remove(0);
        let mut problems = Vec::new();
        let mut r = Reader {
            file: Path::new("m.yaml"),
            problems: &mut problems,
        };
        drop_repeated(&mut r, &mut doc, "");
        (doc, problems.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn a_repeated_key_is_reported_at_the_second_and_the_first_is_kept() {
        let (doc, problems) = check("a:\n  b: 1\n  c: 2\n  b: 3\nd: [{e: 1, e: 2}]\n");
        assert_eq!(
            problems,
            [
                "m.yaml:4:3: a.b: duplicate key `b` in one mapping; the first is at line 2, column 3\n  hint: remove one of the two; the other checks read the first",
                "m.yaml:5:12: d[0].e: duplicate key `e` in one mapping; the first is at line 5, column 6\n  hint: remove one of the two; the other checks read the first",
            ]
        );
        let Value::Map(top) = &doc.value else {
            panic!("{doc:?}")
        };
        let Value::Map(a) = &top[0].1.value else {
            panic!("{doc:?}")
        };
        let kept: Vec<_> = a
            .iter()
            .map(|(k, v)| (scalar_text(k), scalar_text(v)))
            .collect();
        assert_eq!(kept, [("b".into(), "1".into()), ("c".into(), "2".into())]);
    }

    #[test]
    fn keys_are_compared_by_value_and_distinct_keys_are_kept() {
        let (_, problems) = check("0x1F: a\n31: b\n");
        assert_eq!(problems.len(), 1, "{problems:?}");
        let (doc, problems) = check("a: 1\nA: 2\n'true': 3\ntrue: 4\n");
        assert!(problems.is_empty(), "{problems:?}");
        let Value::Map(top) = &doc.value else {
            panic!("{doc:?}")
        };
        assert_eq!(top.len(), 4);
    }
}
