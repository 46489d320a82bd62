//! The read-modify-write cycle the file sinks share: an advisory lock, an atomic replace, 0600.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroize;

use super::git::GitAnswers;
use crate::files::ReadError;
use crate::model::SinkError;

/// The largest secret file read: room for 10,000 secrets and 2,000 generated private keys, and
/// small enough that parsing a hostile file of this size stays within a few hundred MB.
pub(crate) const MAX_SINK_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// The directory, next to a secret file, that holds its lock.
const LOCK_DIR: &str = ".kayle-sync";

/// Permissions of every file a sink writes: the owner may read and write, nobody else.
const PRIVATE: u32 = 0o600;

/// A local file holding secrets, named in messages by its sink.
#[derive(Debug, Clone)]
pub(crate) struct SecretFile {
    pub(crate) sink: String,
    pub(crate) path: PathBuf,
}

impl SecretFile {
    pub(crate) fn new(sink: &str, path: PathBuf) -> Self {
        SecretFile {
            sink: sink.to_owned(),
            path,
        }
    }

    /// An I/O error about `path`, never about the contents.
    pub(crate) fn io_error(&self, path: &Path, source: std::io::Error) -> SinkError {
        SinkError::Io {
            sink: self.sink.clone(),
            path: path.display().to_string(),
            source,
        }
    }

    /// A malformed file, described by `message` (which must not quote any value).
    pub(crate) fn format_error(&self, message: impl std::fmt::Display) -> SinkError {
        SinkError::Store {
            sink: self.sink.clone(),
            message: format!("{}: {message}", self.path.display()),
        }
    }

    /// The current contents, or `None` if the file does not exist yet.
    ///
    /// Only a regular file of at most [`MAX_SINK_FILE_BYTES`] is read: the path comes from the
    /// configuration, which a pull request can change to a named pipe or a device.
    pub(crate) fn read(&self) -> Result<Option<String>, SinkError> {
        let bytes = match crate::files::read_regular(&self.path, MAX_SINK_FILE_BYTES) {
            Ok(bytes) => bytes,
            Err(ReadError::Io(e)) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(ReadError::Io(e)) => return Err(self.io_error(&self.path, e)),
            Err(e) => return Err(self.format_error(e)),
        };
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| self.format_error("the file is not UTF-8 text"))
    }

    /// Whether the file can be written: git does not track it (its secrets would be
    /// committed), its directory (and the lock's) can be made, and a file can be created in
    /// it. Nothing is left behind but those directories.
    pub(crate) fn check_writable(&self, git: &GitAnswers) -> Result<(), SinkError> {
        if let Some(problem) = super::git::tracked_file_problem(&self.path, git) {
            return Err(SinkError::Config {
                sink: self.sink.clone(),
                message: problem,
            });
        }
        let dir = self.directory();
        std::fs::create_dir_all(&dir).map_err(|e| self.io_error(&dir, e))?;
        self.lock_path()?;
        tempfile::Builder::new()
            .prefix(".kayle-sync-")
            .suffix(".tmp")
            .tempfile_in(&dir)
            .map(drop)
            .map_err(|e| self.io_error(&dir, e))
    }

    /// Replaces the contents with `change(current)` while holding the file's lock; a change
    /// that returns `None` leaves the file as it is.
    ///
    /// The lock is `.kayle-sync/<file>.lock` in the file's directory (the file itself is
    /// replaced by rename, so a lock on it would not be seen by the next writer), in a
    /// directory git ignores, so that git never offers it to commit. The new contents go to a 0600 temporary
    /// file in the same directory, are synced, renamed over the file, and the directory is
    /// synced, so a crash leaves either the old or the new file, never a mix. If `change`
    /// fails, the file is not touched.
    ///
    /// A symbolic link is followed: its target is updated and the link kept.
    pub(crate) fn update(
        &self,
        change: impl FnOnce(Option<&str>) -> Result<Option<String>, SinkError>,
    ) -> Result<(), SinkError> {
        let target = match std::fs::canonicalize(&self.path) {
            Ok(target) => SecretFile::new(&self.sink, target),
            // No file yet, or a link to a file not written yet: write where the link points.
            Err(e) if e.kind() == ErrorKind::NotFound => {
                SecretFile::new(&self.sink, crate::files::link_target(&self.path))
            }
            Err(e) => return Err(self.io_error(&self.path, e)),
        };
        target.update_file(change)
    }

    fn update_file(
        &self,
        change: impl FnOnce(Option<&str>) -> Result<Option<String>, SinkError>,
    ) -> Result<(), SinkError> {
        let dir = self.directory();
        std::fs::create_dir_all(&dir).map_err(|e| self.io_error(&dir, e))?;
        let lock_path = self.lock_path()?;
        let lock_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(PRIVATE)
            .open(&lock_path)
            .map_err(|e| self.io_error(&lock_path, e))?;
        let mut lock = fd_lock::RwLock::new(lock_file);
        let _guard = lock.write().map_err(|e| self.io_error(&lock_path, e))?;

        // Both texts hold every secret in the file: wipe them once written.
        let mut old_text = self.read()?;
        let result = change(old_text.as_deref()).and_then(|new_text| {
            let Some(mut new_text) = new_text else {
                return Ok(());
            };
            let written = self.replace(&dir, new_text.as_bytes());
            new_text.zeroize();
            written
        });
        old_text.zeroize();
        result
    }

    fn replace(&self, dir: &Path, bytes: &[u8]) -> Result<(), SinkError> {
        let mut temp = tempfile::Builder::new()
            .prefix(".kayle-sync-")
            .suffix(".tmp")
            .permissions(std::fs::Permissions::from_mode(PRIVATE))
            .tempfile_in(dir)
            .map_err(|e| self.io_error(dir, e))?;
        temp.write_all(bytes)
            .and_then(|()| temp.as_file().sync_all())
            .map_err(|e| self.io_error(temp.path(), e))?;
        temp.persist(&self.path)
            .map_err(|e| self.io_error(&self.path, e.error))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| self.io_error(dir, e))
    }

    fn directory(&self) -> PathBuf {
        match self.path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// `.kayle-sync/<file>.lock` next to the file: every writer of the file finds it, whatever
    /// its config directory. The directory is made with a `.gitignore` that ignores it all.
    pub(crate) fn lock_path(&self) -> Result<PathBuf, SinkError> {
        let lock_dir = self.directory().join(LOCK_DIR);
        std::fs::create_dir_all(&lock_dir).map_err(|e| self.io_error(&lock_dir, e))?;
        let ignore = lock_dir.join(".gitignore");
        if !ignore.exists() {
            std::fs::write(&ignore, "# kayle-sync's lock files and state\n*\n")
                .map_err(|e| self.io_error(&ignore, e))?;
        }
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(".lock");
        Ok(lock_dir.join(name))
    }
}

/// Runs blocking file work off the async runtime.
pub(crate) async fn blocking<T: Send + 'static>(
    sink: &str,
    work: impl FnOnce() -> Result<T, SinkError> + Send + 'static,
) -> Result<T, SinkError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| SinkError::Store {
            sink: sink.to_owned(),
            message: format!("file task failed: {e}"),
        })?
}
