//! The sink over a local file, shared by the `dotenv` and `json` kinds: puts made at the same
//! time are written together (see `batch`), and a plan's question about many names reads the
//! file once. Only the file's format differs between kinds.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::Arc;

use secrecy::SecretString;
use zeroize::Zeroizing;

use super::batch::BatchedFile;
use super::file::{SecretFile, blocking};
use super::git::GitAnswers;
use crate::model::{SecretSink, SinkError};

/// How one kind of secret file is read and written. Errors name positions, never values.
pub(crate) trait Format: Send + Sync + 'static {
    /// The file's new text with every put applied; `text` is `None` when there is no file.
    fn merge(
        file: &SecretFile,
        text: Option<&str>,
        puts: &[(String, SecretString)],
    ) -> Result<String, SinkError>;

    /// The file's new text without the entries named `names`; `None` when it holds none of them.
    fn remove(
        file: &SecretFile,
        text: Option<&str>,
        names: &[String],
    ) -> Result<Option<String>, SinkError>;

    /// The non-empty values the file holds, by name.
    fn values(
        file: &SecretFile,
        text: Option<&str>,
    ) -> Result<HashMap<String, SecretString>, SinkError>;
}

/// A secret file in the format `F`.
#[derive(Debug)]
pub(crate) struct FileSink<F> {
    file: SecretFile,
    batched: BatchedFile,
    /// Shared by the sinks of one run, which ask git about the file once.
    git: Arc<GitAnswers>,
    format: PhantomData<F>,
}

impl<F: Format> FileSink<F> {
    /// A sink named `sink` writing to `path` (already resolved against the config directory),
    /// asking git about it through `git`.
    pub(crate) fn new(sink: &str, path: PathBuf, git: Arc<GitAnswers>) -> Self {
        let file = SecretFile::new(sink, path);
        FileSink {
            batched: BatchedFile::new(file.clone(), F::merge),
            file,
            git,
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
        // Only whether each is there: no copy of the values leaves the parse.
        blocking(&self.file.sink, move || {
            let text = file.read().map(Zeroizing::new)?;
            let held = F::values(&file, text.as_deref())?;
            Ok(names
                .iter()
                .map(|name| Some(held.contains_key(name)))
                .collect())
        })
        .await
    }

    async fn read_all(
        &self,
        names: &[String],
    ) -> Result<Option<Vec<Option<SecretString>>>, SinkError> {
        let file = self.file.clone();
        let names = names.to_vec();
        blocking(&self.file.sink, move || {
            let text = file.read().map(Zeroizing::new)?;
            let mut held = F::values(&file, text.as_deref())?;
            Ok(Some(names.iter().map(|name| held.remove(name)).collect()))
        })
        .await
    }

    /// Under the file's lock, so that two applies generating a key for the same name end up
    /// with one key: the second finds the first's.
    async fn put_if_absent(
        &self,
        name: &str,
        value: &SecretString,
    ) -> Result<Option<SecretString>, SinkError> {
        let file = self.file.clone();
        let put = [(name.to_owned(), value.clone())];
        blocking(&self.file.sink, move || {
            let mut found = None;
            file.update(|text| {
                found = F::values(&file, text)?.remove(&put[0].0);
                match found {
                    Some(_) => Ok(None),
                    None => F::merge(&file, text, &put).map(Some),
                }
            })?;
            Ok(found)
        })
        .await
    }

    /// A locked read-modify-write, like a put, so that a batch of puts is not lost.
    async fn remove(&self, name: &str) -> Result<bool, SinkError> {
        let file = self.file.clone();
        let names = [name.to_owned()];
        blocking(&self.file.sink, move || {
            let mut removed = false;
            file.update(|text| {
                let new_text = F::remove(&file, text, &names)?;
                removed = new_text.is_some();
                Ok(new_text)
            })?;
            Ok(removed)
        })
        .await
    }

    async fn check_writable(&self) -> Result<(), SinkError> {
        let file = self.file.clone();
        let git = Arc::clone(&self.git);
        blocking(&self.file.sink, move || file.check_writable(&git)).await
    }
}
