//! The `dotenv` sink: `NAME=value` lines in a file, everything else in it kept as it was.
//!
//! A value is written so that `sh` (`set -a; . FILE`), python-dotenv and Node's `dotenv` (15 and
//! later) all read back exactly that value, and sourcing the file runs nothing:
//!
//! - bare, when it is only letters, digits and `_-./+:@,=` (every signing secret);
//! - else in single quotes, line breaks written as they are (a PEM private key spans lines):
//!   nothing inside is special to `sh`, and nothing to the two libraries except `\\` and a
//!   `\` before the closing quote (python-dotenv unescapes them) and `${` (python-dotenv
//!   expands it even there), so a value holding those is refused;
//! - else, when it holds a `'`, in double quotes, if it holds none of `"`, `\`, `$` and a
//!   backtick, which are special there; otherwise it is refused.
//!
//! NUL and carriage return are refused too: a shell variable cannot hold a NUL, and Node's
//! `dotenv` turns every carriage return into a line feed. A refused value is an error naming
//! the entry, never the value; no signing secret or generated key is ever refused.
//!
//! Reading accepts these forms and the ones earlier versions wrote (double quotes with `\\`,
//! `\"`, `\n`, `\r` escapes), an `export ` prefix, and `# comments` after bare values.

use secrecy::{ExposeSecret, SecretString};

use std::borrow::Cow;
use std::collections::HashMap;

use super::file::SecretFile;
use super::file_sink::{FileSink, Format};
use crate::model::SinkError;

/// The dotenv format; see the module documentation.
#[derive(Debug)]
pub(crate) struct Dotenv;

/// A dotenv file as a sink.
pub(crate) type DotenvSink = FileSink<Dotenv>;

impl Format for Dotenv {
    /// The file's text with every put applied, parsed once for the whole batch.
    fn merge(
        file: &SecretFile,
        text: Option<&str>,
        puts: &[(String, SecretString)],
    ) -> Result<String, SinkError> {
        let text = text.unwrap_or_default();
        let entries = parse(text).map_err(|e| file.format_error(e))?;
        let values: Vec<(&str, &str)> = puts
            .iter()
            .map(|(name, value)| (name.as_str(), value.expose_secret()))
            .collect();
        set(text, &entries, &values).map_err(|(name, why)| {
            file.format_error(format!("cannot write {name}: the value {why}"))
        })
    }

    /// Every other line is kept as it was, comments included.
    fn remove(
        file: &SecretFile,
        text: Option<&str>,
        names: &[String],
    ) -> Result<Option<String>, SinkError> {
        let text = text.unwrap_or_default();
        let entries = parse(text).map_err(|e| file.format_error(e))?;
        let removed = |e: &Entry| {
            e.key
                .is_some_and(|key| names.iter().any(|name| name == key))
        };
        if !entries.iter().any(removed) {
            return Ok(None);
        }
        Ok(Some(
            entries
                .iter()
                .filter(|e| !removed(e))
                .map(|e| &text[e.start..e.end])
                .collect(),
        ))
    }

    fn values(
        file: &SecretFile,
        text: Option<&str>,
    ) -> Result<HashMap<String, SecretString>, SinkError> {
        let entries = parse(text.unwrap_or_default()).map_err(|e| file.format_error(e))?;
        Ok(entries
            .into_iter()
            .filter_map(|e| Some((e.key?, e.value?)))
            .filter(|(_, value)| !value.is_empty())
            .map(|(key, value)| (key.to_owned(), SecretString::from(value.into_owned())))
            .collect())
    }
}

/// One line of the file, or several when a quoted value spans lines. It borrows from the
/// file's text: a batch parses the whole file, 10,000 entries at 10,000 endpoints.
struct Entry<'a> {
    /// Byte range of the entry's text, including its final line break.
    start: usize,
    end: usize,
    key: Option<&'a str>,
    value: Option<Cow<'a, str>>,
    export: bool,
}

/// Reads the values in `text` back as [`quote`] writes them. Values are never quoted in errors.
pub fn read_value(text: &str, name: &str) -> Result<Option<String>, String> {
    Ok(parse(text)?
        .into_iter()
        .rfind(|e| e.key == Some(name))
        .and_then(|e| e.value)
        .map(Cow::into_owned))
}

fn parse(text: &str) -> Result<Vec<Entry<'_>>, String> {
    // One entry per line at most: room for them all at once, none to spare.
    let mut entries = Vec::with_capacity(text.matches('\n').count() + 1);
    let mut pos = 0;
    let mut line_no = 1;
    while pos < text.len() {
        let line_end = text[pos..].find('\n').map_or(text.len(), |i| pos + i + 1);
        let line = &text[pos..line_end];
        let mut entry = Entry {
            start: pos,
            end: line_end,
            key: None,
            value: None,
            export: false,
        };
        if let Some((export, key, rest)) = assignment(line) {
            let value_start = line_end - rest.len();
            let (value, consumed) = value(&text[value_start..]).ok_or_else(|| {
                format!("line {line_no}: the quoted value of {key} is not closed")
            })?;
            let after = value_start + consumed;
            entry.end = text[after..]
                .find('\n')
                .map_or(text.len(), |i| after + i + 1);
            entry.key = Some(key);
            entry.value = Some(value);
            entry.export = export;
        }
        line_no += text[entry.start..entry.end].matches('\n').count();
        pos = entry.end;
        entries.push(entry);
    }
    Ok(entries)
}

/// `[export ]KEY=rest` -> (export, KEY, rest); `None` for comments, blanks and other lines.
fn assignment(line: &str) -> Option<(bool, &str, &str)> {
    let trimmed = line.trim_start();
    if trimmed.starts_with('#') {
        return None;
    }
    let (export, trimmed) = match trimmed.strip_prefix("export ") {
        Some(rest) => (true, rest.trim_start()),
        None => (false, trimmed),
    };
    let (key, rest) = trimmed.split_once('=')?;
    let key = key.trim_end();
    let valid = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-');
    valid.then_some((export, key, rest))
}

/// Parses a value at the start of `text`; returns it and the bytes it used. Only a value with
/// escapes is copied.
fn value(text: &str) -> Option<(Cow<'_, str>, usize)> {
    let skipped = text.len() - text.trim_start_matches([' ', '\t']).len();
    let body = &text[skipped..];
    if let Some(rest) = body.strip_prefix('\'') {
        let close = rest.find('\'')?;
        return Some((Cow::Borrowed(&rest[..close]), skipped + close + 2));
    }
    if let Some(rest) = body.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => return Some((Cow::Owned(out), skipped + 1 + i + 1)),
                '\\' => match chars.next()?.1 {
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    e @ ('\\' | '"' | '$') => out.push(e),
                    e => {
                        out.push('\\');
                        out.push(e);
                    }
                },
                c => out.push(c),
            }
        }
        return None;
    }
    let line = &body[..body.find('\n').unwrap_or(body.len())];
    let line = line.strip_suffix('\r').unwrap_or(line);
    let bare = match line.find(" #").or_else(|| line.find("\t#")) {
        Some(i) => &line[..i],
        None => line,
    };
    Some((Cow::Borrowed(bare.trim_end()), skipped + line.len()))
}

/// Why a value cannot be written: no quoting reads back the same in `sh`, python-dotenv and
/// Node's `dotenv`. Says which characters are the trouble, never the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unrepresentable {
    /// A shell variable cannot hold a NUL; Node's `dotenv` reads a carriage return as `\n`.
    #[error("holds a NUL or carriage return character")]
    Control,
    /// python-dotenv expands `${NAME}`, in single quotes too.
    #[error("holds `${{`, which python-dotenv expands")]
    Expansion,
    /// python-dotenv unescapes `\\` in single quotes, and a final `\` escapes the quote.
    #[error("holds `\\\\` or ends with `\\`")]
    Backslash,
    /// Only double quotes can hold a `'`, and there `"`, `\`, `$` and `` ` `` are special.
    #[error("holds a single quote together with `\"`, `\\`, `$` or a backtick")]
    Quotes,
}

/// `value` as it must be written after `NAME=`; see the module documentation.
pub fn quote(value: &str) -> Result<String, Unrepresentable> {
    if value.contains(['\0', '\r']) {
        return Err(Unrepresentable::Control);
    }
    if value.contains("${") {
        return Err(Unrepresentable::Expansion);
    }
    let bare = |c: char| c.is_ascii_alphanumeric() || "_-./+:@,=".contains(c);
    if !value.is_empty() && value.chars().all(bare) {
        return Ok(value.to_owned());
    }
    if !value.contains('\'') {
        if value.contains("\\\\") || value.ends_with('\\') {
            return Err(Unrepresentable::Backslash);
        }
        return Ok(format!("'{value}'"));
    }
    if value.contains(['"', '\\', '$', '`']) {
        return Err(Unrepresentable::Quotes);
    }
    Ok(format!("\"{value}\""))
}

/// `text` with every entry of each name in `values` set to its value (the last one given for
/// a name wins), and a line appended, in order, for each name not in it yet; or the first name
/// whose value cannot be written, and why.
fn set<'n>(
    text: &str,
    entries: &[Entry],
    values: &[(&'n str, &str)],
) -> Result<String, (&'n str, Unrepresentable)> {
    let mut wanted: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
    let mut order = Vec::new();
    for (name, value) in values {
        if wanted.insert(name, value).is_none() {
            order.push(*name);
        }
    }
    for (name, value) in &wanted {
        quote(value).map_err(|why| (*name, why))?;
    }
    let line = |export: bool, name: &str, value: &str| {
        let prefix = if export { "export " } else { "" };
        let value = quote(value).expect("every value was checked above");
        format!("{prefix}{name}={value}\n")
    };
    let extra: usize = values.iter().map(|(n, v)| n.len() + v.len() + 4).sum();
    let mut out = String::with_capacity(text.len() + extra);
    let mut found = std::collections::HashSet::new();
    for entry in entries {
        match entry.key.and_then(|key| wanted.get_key_value(key)) {
            Some((name, value)) => {
                found.insert(*name);
                out.push_str(&line(entry.export, name, value));
                if !text[entry.start..entry.end].ends_with('\n') {
                    out.pop();
                }
            }
            None => out.push_str(&text[entry.start..entry.end]),
        }
    }
    for name in order.into_iter().filter(|name| !found.contains(name)) {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&line(false, name, wanted[name]));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_what_earlier_versions_wrote() {
        let text = "PEM=\"-----BEGIN PRIVATE KEY-----\\nMIIE\\n-----END PRIVATE KEY-----\\n\"\nODD=\"it's \\\"x\\\" \\\\ $HOME\\r\"\nPLAIN='a b'\n";
        let read = |name| read_value(text, name).unwrap();
        assert_eq!(
            read("PEM").as_deref(),
            Some("-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n")
        );
        assert_eq!(read("ODD").as_deref(), Some("it's \"x\" \\ $HOME\r"));
        assert_eq!(read("PLAIN").as_deref(), Some("a b"));
    }

    proptest! {
        /// Every value is written so that it reads back, or refused for one of the documented
        /// reasons and no other.
        #[test]
        fn any_value_reads_back_or_is_refused_for_a_reason(value in any::<String>()) {
            match quote(&value) {
                Ok(quoted) => {
                    let text = format!("# head\nNAME={quoted}\nAFTER=x\n");
                    prop_assert_eq!(read_value(&text, "NAME").unwrap(), Some(value));
                    prop_assert_eq!(read_value(&text, "AFTER").unwrap(), Some("x".to_owned()));
                }
                Err(_) => prop_assert!(
                    value.contains(['\0', '\r'])
                        || value.contains("${")
                        || value.contains("\\\\")
                        || value.ends_with('\\')
                        || (value.contains('\'') && value.contains(['"', '\\', '$', '`'])),
                    "refused for no documented reason: {:?}", value
                ),
            }
        }

        /// Signing secrets and PEM private keys are never refused.
        #[test]
        fn secrets_and_pems_are_always_written(
            secret in "whsec_[A-Za-z0-9+/]{20,80}={0,2}",
            body in proptest::collection::vec("[A-Za-z0-9+/]{64}", 1..20),
        ) {
            prop_assert_eq!(quote(&secret).unwrap(), secret);
            let pem = format!(
                "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
                body.join("\n")
            );
            prop_assert_eq!(quote(&pem).unwrap(), format!("'{pem}'"));
        }
    }
}
