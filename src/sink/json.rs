//! The `json` sink: one JSON object of name to value in a file, other keys kept.
//!
//! The file is rewritten pretty-printed with keys in sorted order; values of other keys are
//! kept as they were (any JSON). A missing or empty file counts as `{}`.

use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

use super::batch::BatchedFile;
use super::file::{SecretFile, blocking};
use crate::model::{SecretSink, SinkError};

/// A JSON file holding one object. Puts made at the same time are written together (see
/// `batch`).
#[derive(Debug)]
pub struct JsonSink {
    file: SecretFile,
    batched: BatchedFile,
}

impl JsonSink {
    /// A sink named `sink` writing to `path` (already resolved against the config directory).
    pub fn new(sink: &str, path: PathBuf) -> Self {
        let file = SecretFile::new(sink, path);
        JsonSink {
            batched: BatchedFile::new(file.clone(), merge),
            file,
        }
    }
}

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
        self.batched.put(name, value).await
    }

    async fn contains(&self, name: &str) -> Result<Option<bool>, SinkError> {
        let found = self.contains_all(&[name.to_owned()]).await?;
        Ok(found.into_iter().next().flatten())
    }

    /// Reads and parses the file once for all names (a plan asks for every managed endpoint).
    async fn contains_all(&self, names: &[String]) -> Result<Vec<Option<bool>>, SinkError> {
        let file = self.file.clone();
        let names = names.to_vec();
        blocking(&self.file.sink, move || {
            let map = parse(&file, file.read()?.as_deref())?;
            Ok(names
                .iter()
                .map(|name| Some(matches!(map.get(name), Some(Value::String(s)) if !s.is_empty())))
                .collect())
        })
        .await
    }
}
