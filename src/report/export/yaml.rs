//! Scalars written into YAML text so that they read back as exactly the same string, whatever
//! they hold: `export` writes what a server sent, which must never become YAML structure.

use std::fmt::Write as _;

/// `text` as a YAML double-quoted scalar: `\` and `"` escaped, and every character that is not
/// printable YAML (controls, DEL, C1, the BOM, the non-characters) or that a YAML 1.1 reader
/// takes for a line break (NEL, LS, PS) written as an escape.
pub fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{85}' => out.push_str("\\N"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            c if c.is_control() || matches!(c, '\u{feff}' | '\u{fffe}' | '\u{ffff}') => {
                write!(out, "\\u{:04X}", c as u32).expect("writing to a String");
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// An endpoint key as a mapping key: plain when it can only read back as that string, quoted
/// when a reader could take it for something else (`null`, `true`, `123`, `0x1f`, `1e3`).
pub fn key(key: &str) -> String {
    const WORDS: [&str; 11] = [
        "null", "true", "false", "yes", "no", "on", "off", "y", "n", "nan", "inf",
    ];
    let plain = key.starts_with(|c: char| c.is_ascii_lowercase())
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !WORDS.contains(&key);
    if plain { key.to_owned() } else { quoted(key) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn read_back(yaml: &str) -> String {
        serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("{e}: {yaml}"))
    }

    #[test]
    fn escapes_are_yaml_escapes() {
        assert_eq!(quoted("a\"b\\c\nd"), r#""a\"b\\c\nd""#);
        assert_eq!(
            quoted("\u{0}\u{7f}\u{85}\u{feff}"),
            r#""\u0000\u007F\N\uFEFF""#
        );
        assert_eq!(key("orders-2"), "orders-2");
        assert_eq!(key("null"), "\"null\"");
        assert_eq!(key("2fa"), "\"2fa\"");
    }

    proptest! {
        #[test]
        fn any_string_reads_back(text in any::<String>()) {
            prop_assert_eq!(read_back(&quoted(&text)), text);
        }

        #[test]
        fn any_key_reads_back_as_a_string(text in "[a-z0-9][a-z0-9-]{0,20}") {
            let doc: std::collections::BTreeMap<String, u8> =
                serde_saphyr::from_str(&format!("{}: 1", key(&text))).unwrap();
            prop_assert_eq!(doc.keys().collect::<Vec<_>>(), vec![&text]);
        }
    }
}
