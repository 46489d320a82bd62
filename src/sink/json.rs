//! The `json` sink: one JSON object of name to value in a file, other keys kept.
//!
//! The file is rewritten pretty-printed with keys in sorted order; values of other keys are
//! kept as they were (any JSON). A missing or empty file counts as `{}`.

use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

use super::file::{SecretFile, blocking};
use crate::model::{SecretSink, SinkError};

/// A JSON file holding one object.
#[derive(Debug)]
pub struct JsonSink {
    file: SecretFile,
}

impl JsonSink {
    /// A sink named `sink` writing to `path` (already resolved against the config directory).
    pub fn new(sink: &str, path: PathBuf) -> Self {
        JsonSink {
            file: SecretFile::new(sink, path),
        }
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

#[async_trait::async_trait]
impl SecretSink for JsonSink {
    fn name(&self) -> &str {
        &self.file.sink
    }

    async fn put(&self, name: &str, value: &SecretString) -> Result<(), SinkError> {
        let file = self.file.clone();
        let name = name.to_owned();
        let value = value.clone();
        blocking(&self.file.sink, move || {
            file.update(|text| {
                let mut map = parse(&file, text)?;
                map.insert(name, Value::String(value.expose_secret().to_owned()));
                let mut out = serde_json::to_string_pretty(&map)
                    .map_err(|e| file.format_error(format_args!("cannot encode: {e}")))?;
                out.push('\n');
                Ok(out)
            })
        })
        .await
    }

    async fn contains(&self, name: &str) -> Result<Option<bool>, SinkError> {
        let file = self.file.clone();
        let name = name.to_owned();
        blocking(&self.file.sink, move || {
            let map = parse(&file, file.read()?.as_deref())?;
            Ok(Some(
                matches!(map.get(&name), Some(Value::String(s)) if !s.is_empty()),
            ))
        })
        .await
    }
}
