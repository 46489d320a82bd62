//! The `json` sink: one JSON object of name to value in a file, other keys kept.
//!
//! The file is rewritten pretty-printed with keys in sorted order; values of other keys are
//! kept as they were (any JSON). A missing or empty file counts as `{}`.

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

use std::collections::HashMap;

use super::file::SecretFile;
use super::file_sink::{FileSink, Format};
use crate::model::SinkError;

/// The JSON format: one object of name to value.
#[derive(Debug)]
pub(crate) struct Json;

/// A JSON file as a sink.
pub(crate) type JsonSink = FileSink<Json>;

impl Format for Json {
    /// The file's object with every put applied, pretty-printed with sorted keys.
    fn merge(
        file: &SecretFile,
        text: Option<&str>,
        puts: &[(String, SecretString)],
    ) -> Result<String, SinkError> {
        let mut map = parse(file, text)?;
        for (name, value) in puts {
            map.insert(
                name.clone(),
                Value::String(value.expose_secret().to_owned()),
            );
        }
        let mut out = serde_json::to_string_pretty(&map)
            .map_err(|e| file.format_error(format_args!("cannot encode: {e}")))?;
        out.push('\n');
        Ok(out)
    }

    fn remove(
        file: &SecretFile,
        text: Option<&str>,
        names: &[String],
    ) -> Result<Option<String>, SinkError> {
        let mut map = parse(file, text)?;
        let before = map.len();
        map.retain(|name, _| !names.contains(name));
        if map.len() == before {
            return Ok(None);
        }
        let mut out = serde_json::to_string_pretty(&map)
            .map_err(|e| file.format_error(format_args!("cannot encode: {e}")))?;
        out.push('\n');
        Ok(Some(out))
    }

    fn values(
        file: &SecretFile,
        text: Option<&str>,
    ) -> Result<HashMap<String, SecretString>, SinkError> {
        Ok(parse(file, text)?
            .into_iter()
            .filter_map(|(name, value)| match value {
                Value::String(s) if !s.is_empty() => Some((name, SecretString::from(s))),
                _ => None,
            })
            .collect())
    }
}

/// The object in `text`; the error names the position, never the contents.
fn parse(file: &SecretFile, text: Option<&str>) -> Result<Map<String, Value>, SinkError> {
    let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
        return Ok(Map::new());
    };
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(file.format_error("holds JSON that is not an object")),
        Err(e) => Err(file.format_error(format_args!(
            "is not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        ))),
    }
}
