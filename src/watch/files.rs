//! File events: a debounced, recursive watch on the config directory (and on the parents of
//! symlinks on the way to it), reduced to the paths that may matter.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::RecursiveMode;
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use tokio::sync::mpsc::UnboundedSender;

use super::controller::Watched;

/// How long the files must be quiet before a batch of events is reported: long enough to
/// join an editor's write-temp-then-rename, short enough to feel immediate.
pub const DEBOUNCE: Duration = Duration::from_millis(400);

/// One debounced batch: the paths events named, or the watcher's errors, rendered.
pub type Notice = Result<Vec<PathBuf>, Vec<String>>;

/// Why the directory cannot be watched.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// The operating system refused the watch (missing directory, inotify limit reached).
    #[error("watching {path}: {source}")]
    Watch {
        path: PathBuf,
        #[source]
        source: notify::Error,
    },
}

/// A running watch. Dropping it stops the events.
pub struct FileWatcher {
    debouncer: Debouncer<notify::RecommendedWatcher, RecommendedCache>,
    /// The directory as given, made absolute but with symlinks kept.
    dir: PathBuf,
    /// Where `dir` led when it was last watched: the path and the directory's identity, so a
    /// directory replaced at the same path is noticed too.
    resolved: Option<Resolved>,
}

impl FileWatcher {
    /// Watches `dir` recursively and sends each debounced batch to `notices`.
    ///
    /// When `dir` or a directory above it is a symlink (a git-sync `current` link), the link's
    /// parent is watched too, so replacing the link is noticed; [`FileWatcher::retarget`]
    /// then moves the watch to the new target.
    pub fn start(dir: &Path, notices: UnboundedSender<Notice>) -> Result<FileWatcher, FilesError> {
        let handler = move |result: DebounceEventResult| {
            let notice = match result {
                // Reads (kayle-sync's own loads among them) change nothing.
                Ok(events) => Ok(events
                    .into_iter()
                    .filter(|e| !e.event.kind.is_access())
                    .flat_map(|e| e.event.paths)
                    .collect()),
                Err(errors) => Err(errors.iter().map(ToString::to_string).collect()),
            };
            let _ = notices.send(notice);
        };
        let debouncer =
            new_debouncer(DEBOUNCE, None, handler).map_err(|source| FilesError::Watch {
                path: dir.to_owned(),
                source,
            })?;
        let mut watcher = FileWatcher {
            debouncer,
            dir: std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned()),
            resolved: None,
        };
        watcher.watch_dir()?;
        for link in watcher
            .dir
            .ancestors()
            .filter(|p| p.symlink_metadata().is_ok_and(|m| m.is_symlink()))
        {
            if let Some(parent) = link.parent() {
                let result = watcher.debouncer.watch(parent, RecursiveMode::NonRecursive);
                result.map_err(|source| FilesError::Watch {
                    path: parent.to_owned(),
                    source,
                })?;
            }
        }
        Ok(watcher)
    }

    fn watch_dir(&mut self) -> Result<(), FilesError> {
        self.resolved = resolve(&self.dir);
        self.debouncer
            .watch(&self.dir, RecursiveMode::Recursive)
            .map_err(|source| FilesError::Watch {
                path: self.dir.clone(),
                source,
            })
    }
}

impl Watched for FileWatcher {
    /// Checks where the directory leads now; if a symlink swap moved it (or the directory was
    /// replaced by another at the same path), watches the new one and returns true.
    fn retarget(&mut self) -> Result<bool, FilesError> {
        let now = resolve(&self.dir);
        if now == self.resolved {
            return Ok(false);
        }
        // The old target may be gone already, taking its watches with it.
        let _ = self.debouncer.unwatch(&self.dir);
        if now.is_some() {
            self.watch_dir()?;
        } else {
            self.resolved = None;
        }
        Ok(true)
    }

    fn relevant(&self, paths: &[PathBuf]) -> Vec<PathBuf> {
        relevant(&self.dir, paths)
    }
}

/// The paths under `dir` that may change the configuration, relative to it, sorted, each once.
pub(crate) fn relevant(dir: &Path, paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut relevant: Vec<PathBuf> = paths
        .iter()
        .filter_map(|path| path.strip_prefix(dir).ok())
        .filter(|rel| !is_noise(rel))
        .map(Path::to_path_buf)
        .collect();
    relevant.sort();
    relevant.dedup();
    relevant
}

/// A directory's real path and its device and inode numbers.
type Resolved = (PathBuf, u64, u64);

fn resolve(dir: &Path) -> Option<Resolved> {
    use std::os::unix::fs::MetadataExt;
    let path = std::fs::canonicalize(dir).ok()?;
    let meta = std::fs::metadata(&path).ok()?;
    Some((path, meta.dev(), meta.ino()))
}

/// Files no configuration is read from: kayle-sync's own state, and editors' swap, backup and
/// lock files. Everything else goes on to a load, which tells whether the content changed.
pub fn is_noise(rel: &Path) -> bool {
    if rel.components().any(|c| c.as_os_str() == ".kayle-sync") {
        return true;
    }
    let Some(name) = rel.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    name.ends_with('~')
        || name.starts_with(".#")
        || name == "4913"
        || [".swp", ".swx", ".swo"]
            .iter()
            .any(|ext| name.ends_with(ext))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editor_and_state_files_are_noise_but_hidden_config_links_are_not() {
        for noise in [
            ".kayle-sync/sandbox.json",
            "sub/.endpoints.yaml.swp",
            "endpoints.yaml~",
            ".#endpoints.yaml",
            "4913",
        ] {
            assert!(is_noise(Path::new(noise)), "{noise}");
        }
        // A Kubernetes ConfigMap swaps its content through the hidden `..data` link.
        for signal in ["endpoints.yaml", "..data", "keys/orders.pub.pem", ""] {
            assert!(!is_noise(Path::new(signal)), "{signal}");
        }
    }
}
