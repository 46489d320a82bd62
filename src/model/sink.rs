//! The trait every secret store implements.

use secrecy::SecretString;

/// A failure of a secret store. Never carries a secret value.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The store could not be reached or refused the operation.
    #[error("{sink}: {message}")]
    Store { sink: String, message: String },
    /// The sink cannot work as configured (a program that is not an executable file, an
    /// address credentials may not go to, a missing token variable): trying again cannot help
    /// until a person changes the configuration or the environment.
    #[error("{sink}: {message}")]
    Config { sink: String, message: String },
    /// Reading or writing a local file failed.
    #[error("{sink}: {path}: {source}")]
    Io {
        sink: String,
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Another writer changed the secret between our read and our write.
    #[error("{sink}: {name} was changed concurrently by another writer")]
    Conflict { sink: String, name: String },
}

/// A place signing secrets (and generated private keys) are written to.
#[async_trait::async_trait]
pub trait SecretSink: Send + Sync {
    /// The sink's name from `kayle-sync.yaml`, for messages.
    fn name(&self) -> &str;

    /// Stores `value` under `name`, replacing any previous value, durably.
    async fn put(&self, name: &str, value: &SecretString) -> Result<(), SinkError>;

    /// Whether the store holds `name`; `None` for write-only stores that cannot tell.
    async fn contains(&self, name: &str) -> Result<Option<bool>, SinkError>;

    /// [`contains`](SecretSink::contains) for many names at once; stores that can read all
    /// their names in one go override it so a plan of many endpoints stays cheap.
    async fn contains_all(&self, names: &[String]) -> Result<Vec<Option<bool>>, SinkError> {
        let mut found = Vec::with_capacity(names.len());
        for name in names {
            found.push(self.contains(name).await?);
        }
        Ok(found)
    }

    /// The values the store holds under `names` (`None` for an absent or empty one), in the
    /// order asked; `Ok(None)` for write-only stores, which cannot be read.
    async fn read_all(
        &self,
        names: &[String],
    ) -> Result<Option<Vec<Option<SecretString>>>, SinkError> {
        let _ = names;
        Ok(None)
    }

    /// Stores `value` under `name` unless the store already holds a value there; then nothing
    /// is written and that value is returned. Stores make it atomic where they can (a file
    /// lock, Vault's check-and-set, AWS's create), so that two applies racing to generate a
    /// key for one name end up with the same key.
    async fn put_if_absent(
        &self,
        name: &str,
        value: &SecretString,
    ) -> Result<Option<SecretString>, SinkError> {
        let held = self.read_all(&[name.to_owned()]).await?;
        if let Some(existing) = held.and_then(|values| values.into_iter().next().flatten()) {
            return Ok(Some(existing));
        }
        self.put(name, value).await?;
        Ok(None)
    }

    /// Removes `name` from the store; `Ok(true)` if it held a value there, `Ok(false)` if it
    /// held none. Write-only stores cannot remove and say so.
    async fn remove(&self, name: &str) -> Result<bool, SinkError> {
        let _ = name;
        Err(SinkError::Store {
            sink: self.name().to_owned(),
            message: "this sink is write-only: kayle-sync cannot remove secrets from it".to_owned(),
        })
    }

    /// Whether a write could succeed now: credentials present and accepted, the store
    /// reachable, a file's directory writable, a command found. Asked before the API is
    /// changed, so that a store that cannot be written fails a run with nothing changed.
    async fn check_writable(&self) -> Result<(), SinkError> {
        Ok(())
    }
}
