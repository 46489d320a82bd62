//! Reading a local file that a configuration names, safely: only a regular file, and only up
//! to a limit, so that a path naming a named pipe, a device or a huge file (which a pull
//! request can write) neither hangs kayle-sync nor fills its memory.

use std::io::Read;
use std::path::{Path, PathBuf};

/// What a file that is neither a regular file nor a directory is, in words.
pub fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let kind = meta.file_type();
    if kind.is_fifo() {
        "a named pipe"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_block_device() || kind.is_char_device() {
        "a device"
    } else {
        "a special file"
    }
}

/// Reads the regular file (or directory, which then fails as the OS says) at `path`, of at
/// most `limit` bytes.
///
/// Anything else is refused without reading: the type is checked before opening, and again on
/// the opened file (opened non-blocking, so a named pipe swapped in between cannot block).
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    use std::os::unix::fs::OpenOptionsExt;
    let meta = std::fs::metadata(path).map_err(ReadError::Io)?;
    if !meta.is_file() && !meta.is_dir() {
        return Err(ReadError::NotRegular(kind_of(&meta)));
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(ReadError::Io)?;
    let meta = file.metadata().map_err(ReadError::Io)?;
    if !meta.is_file() && !meta.is_dir() {
        return Err(ReadError::NotRegular(kind_of(&meta)));
    }
    // Room for the whole file at once: reading into a growing buffer would double it.
    let mut bytes = Vec::with_capacity(meta.len().min(limit + 1) as usize);
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge(limit));
    }
    Ok(bytes)
}

/// Why [`read_regular`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be opened or read.
    #[error(transparent)]
    Io(std::io::Error),
    /// The file is larger than the limit, in bytes.
    #[error("the file is larger than {} KiB", .0 / 1024)]
    TooLarge(u64),
    /// The path names a named pipe, a socket or a device, which is never read.
    #[error("not a regular file ({0})")]
    NotRegular(&'static str),
}

/// Where `path` leads when its links are followed, as far as they lead: `path` itself when it
/// is no link. Bounded, like the system's own resolution, so a loop ends.
pub fn link_target(path: &Path) -> PathBuf {
    let mut current = path.to_path_buf();
    for _ in 0..40 {
        let is_link = std::fs::symlink_metadata(&current).is_ok_and(|m| m.file_type().is_symlink());
        let Some(next) = is_link.then(|| std::fs::read_link(&current).ok()).flatten() else {
            break;
        };
        current = match current.parent() {
            Some(parent) => parent.join(next),
            None => next,
        };
    }
    current
}
