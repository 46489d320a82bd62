//! The sink over a local file, shared by the `dotenv` and `json` kinds: puts made at the same
//! time are written together (see `batch`), and a plan's question about many names reads the
//! file once. Only the file's format differs between kinds.

use std::collections::HashSet;
use std::marker::PhantomData;
use std::path::PathBuf;

use secrecy::SecretString;

use super::batch::BatchedFile;
use super::file::{SecretFile, blocking};
use crate::model::{SecretSink, SinkError};

/// How one kind of secret file is read and written. Errors name positions, never values.
pub(crate) trait Format: Send + Sync + 'static {
    /// The file's new text with every put applied; `text` is `None` when there is no file.
    fn merge(
        file: &SecretFile,
        text: Option<&str>,
        puts: &[(String, SecretString)],
    ) -> Result<String, SinkError>;

    /// The names the file holds a non-empty value for.
    fn holding(file: &SecretFile, text: Option<&str>) -> Result<HashSet<String>, SinkError>;
}

/// A secret file in the format `F`.
#[derive(Debug)]
pub(crate) struct FileSink<F> {
    file: SecretFile,
    batched: BatchedFile,
    format: PhantomData<F>,
}

impl<F: Format> FileSink<F> {
    /// A sink named `sink` writing to `path` (already resolved against the config directory).
    pub(crate) fn new(sink: &str, path: PathBuf) -> Self {
        let file = SecretFile::new(sink, path);
        FileSink {
            batched: BatchedFile::new(file.clone(), F::merge),
            file,
            format: PhantomData,
        }
    }
}

#[async_trait::async_trait]
impl<F: Format> SecretSink for FileSink<F> {
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
            let text = file.read()?;
            let held = F::holding(&file, text.as_deref())?;
            Ok(names.iter().map(|name| Some(held.contains(name))).collect())
        })
        .await
    }
}
