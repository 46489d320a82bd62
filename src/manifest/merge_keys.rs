//! Where a refused YAML merge key (`<<`) sits. The parser stops at the first merge key and
//! leaves no tree, so without this its diagnostic would name no field.

use super::node::{self, Node, Value};
use super::reader::{join, scalar_text};

/// The field path of the mapping holding the merge key written at `line`:`column` of `text`
/// (`endpoints.api` for a `<<` among `api`'s fields), or `None` if it cannot be found.
pub fn field_of(text: &str, line: usize, column: usize) -> Option<String> {
    let docs = node::parse_keeping_merge_keys(text).ok()?;
    docs.iter().find_map(|doc| find(doc, "", (line, column)))
}

fn find(node: &Node, field: &str, at: (usize, usize)) -> Option<String> {
    match &node.value {
        Value::Map(entries) => entries.iter().find_map(|(key, value)| {
            if key.value == Value::Str("<<".into()) && (key.line, key.column) == at {
                Some(field.to_owned())
            } else {
                find(value, &join(field, &scalar_text(key)), at)
            }
        }),
        Value::Seq(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| find(item, &format!("{field}[{i}]"), at)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The field found for the merge key that parsing `text` refuses.
    fn found(text: &str) -> Option<String> {
        let err = node::parse_documents(text).expect_err("merge keys are refused");
        field_of(text, err.line.unwrap(), err.column.unwrap())
    }

    #[test]
    fn a_merge_key_is_placed_in_the_mapping_that_holds_it() {
        let text = "endpoints:\n  web: &base\n    url: https://a.example\n  api:\n    <<: *base\n";
        assert_eq!(found(text).as_deref(), Some("endpoints.api"));
    }

    #[test]
    fn a_merge_key_in_a_list_item_or_a_later_document_is_found() {
        let text = "endpoints: {}\n---\nendpoints:\n  web:\n    encryption_keys:\n      - key_id: a\n      - <<: {generate: true}\n        key_id: b\n";
        assert_eq!(
            found(text).as_deref(),
            Some("endpoints.web.encryption_keys[1]")
        );
    }

    #[test]
    fn a_merge_key_at_the_top_of_a_document_has_an_empty_path() {
        assert_eq!(found("<<: {endpoints: {}}\n").as_deref(), Some(""));
    }
}
