//! The `dotenv` sink: `NAME=value` lines in a file, everything else in it kept as it was.
//!
//! Values are written bare when they consist only of letters, digits and `_-./+:@,=`, in single
//! quotes when they hold no `'` and no line break, and otherwise in double quotes with `\\`,
//! `\"`, `\n` and `\r` escaped, so a PEM private key fits on one line. `$` is never escaped:
//! loaders that expand `${VAR}` inside double quotes (python-dotenv, Compose) would expand it,
//! which is why single quotes are preferred. Reading accepts the same forms, an `export `
//! prefix, `# comments` after bare values, and double-quoted values spanning lines.

use secrecy::{ExposeSecret, SecretString};

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
        Ok(set(text, &entries, &values))
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
            .map(|(key, value)| (key, SecretString::from(value)))
            .collect())
    }
}

/// One line of the file, or several when a quoted value spans lines.
struct Entry {
    /// Byte range of the entry's text, including its final line break.
    start: usize,
    end: usize,
    key: Option<String>,
    value: Option<String>,
    export: bool,
}

/// Reads the values in `text` back as [`quote`] writes them. Values are never quoted in errors.
pub fn read_value(text: &str, name: &str) -> Result<Option<String>, String> {
    Ok(parse(text)?
        .into_iter()
        .rfind(|e| e.key.as_deref() == Some(name))
        .and_then(|e| e.value))
}

fn parse(text: &str) -> Result<Vec<Entry>, String> {
    let mut entries = Vec::new();
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
            entry.key = Some(key.to_owned());
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

/// Parses a value at the start of `text`; returns it and the bytes it used.
fn value(text: &str) -> Option<(String, usize)> {
    let skipped = text.len() - text.trim_start_matches([' ', '\t']).len();
    let body = &text[skipped..];
    if let Some(rest) = body.strip_prefix('\'') {
        let close = rest.find('\'')?;
        return Some((rest[..close].to_owned(), skipped + close + 2));
    }
    if let Some(rest) = body.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => return Some((out, skipped + 1 + i + 1)),
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
    Some((bare.trim_end().to_owned(), skipped + line.len()))
}

/// `value` as it must be written after `NAME=`.
pub fn quote(value: &str) -> String {
    let bare = |c: char| c.is_ascii_alphanumeric() || "_-./+:@,=".contains(c);
    if !value.is_empty() && value.chars().all(bare) {
        return value.to_owned();
    }
    if !value.contains(['\'', '\n', '\r']) {
        return format!("'{value}'");
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `text` with every entry of each name in `values` set to its value (the last one given for
/// a name wins), and a line appended, in order, for each name not in it yet.
fn set(text: &str, entries: &[Entry], values: &[(&str, &str)]) -> String {
    let mut wanted: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
    let mut order = Vec::new();
    for (name, value) in values {
        if wanted.insert(name, value).is_none() {
            order.push(*name);
        }
    }
    let line = |export: bool, name: &str, value: &str| {
        let prefix = if export { "export " } else { "" };
        format!("{prefix}{name}={}\n", quote(value))
    };
    let extra: usize = values.iter().map(|(n, v)| n.len() + v.len() + 4).sum();
    let mut out = String::with_capacity(text.len() + extra);
    let mut found = std::collections::HashSet::new();
    for entry in entries {
        match entry
            .key
            .as_deref()
            .and_then(|key| wanted.get_key_value(key))
        {
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
    out
}
