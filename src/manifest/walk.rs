//! Finding and reading the files of a config directory: which files count, in what order, and
//! every way reading one can fail (too large, not UTF-8, unreadable, a symlink loop, not a
//! regular file).

use super::code::Code;
use std::path::{Path, PathBuf};

use super::diagnostic::Diagnostic;
pub use crate::files::ReadError;
use crate::files::{self, kind_of};
use crate::model::Location;

/// Files larger than this are refused before they are parsed: a config file is a few KiB.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// The project file names, in order of preference.
pub const PROJECT_FILES: [&str; 2] = ["kayle-sync.yaml", "kayle-sync.yml"];

/// The files a config directory holds, as paths relative to it, sorted.
#[derive(Debug, Default)]
pub struct Files {
    pub project: Option<PathBuf>,
    pub manifests: Vec<PathBuf>,
}

/// A location at the start of a file, for problems with the file as a whole.
pub fn file_location(dir: &Path, rel: &Path) -> Location {
    Location {
        file: dir.join(rel),
        line: 1,
        column: 1,
    }
}

/// Lists the project file and every manifest under `dir`, recursively, sorted, skipping hidden
/// entries. Symlinks are followed; a symlink that leads back to a directory being walked is
/// reported instead of followed.
pub fn find_files(dir: &Path, problems: &mut Vec<Diagnostic>) -> Files {
    let mut files = Files::default();
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            problems.push(Diagnostic::error(
                Code::NotADirectory,
                None,
                format!("{} is not a directory", dir.display()),
            ));
            return files;
        }
        Err(err) => {
            problems.push(Diagnostic::error(
                Code::UnreadableDirectory,
                None,
                format!("cannot read {}: {}", dir.display(), io_reason(&err)),
            ));
            return files;
        }
    }
    let mut ancestors = Vec::new();
    walk(
        dir,
        Path::new(""),
        &mut ancestors,
        &mut files.manifests,
        problems,
    );
    files.manifests.sort();
    for name in PROJECT_FILES {
        if let Some(pos) = files.manifests.iter().position(|p| p == Path::new(name)) {
            let path = files.manifests.remove(pos);
            if files.project.is_none() {
                files.project = Some(path);
            } else {
                problems.push(
                    Diagnostic::error(
                        Code::DuplicateProjectFile,
                        Some(file_location(dir, &path)),
                        "both kayle-sync.yaml and kayle-sync.yml exist",
                    )
                    .hint("keep one project file; kayle-sync.yaml is the one read"),
                );
            }
        }
    }
    files
}

fn walk(
    dir: &Path,
    rel: &Path,
    ancestors: &mut Vec<PathBuf>,
    out: &mut Vec<PathBuf>,
    problems: &mut Vec<Diagnostic>,
) {
    let here = dir.join(rel);
    let canonical = match std::fs::canonicalize(&here) {
        Ok(path) => path,
        Err(err) => {
            problems.push(unreadable(dir, rel, &err));
            return;
        }
    };
    if ancestors.contains(&canonical) {
        problems.push(
            Diagnostic::error(
                Code::SymlinkLoop,
                Some(file_location(dir, rel)),
                "this directory is a symlink back to a directory that contains it",
            )
            .hint("remove the symlink or point it outside the config directory"),
        );
        return;
    }
    let entries = match std::fs::read_dir(&here) {
        Ok(entries) => entries,
        Err(err) => {
            problems.push(unreadable(dir, rel, &err));
            return;
        }
    };
    let mut names: Vec<_> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    names.sort();
    ancestors.push(canonical);
    for name in names {
        let Some(text) = name.to_str() else {
            continue;
        };
        if text.starts_with('.') {
            continue;
        }
        let child = rel.join(&name);
        // Follows symlinks: a link to a file or directory counts as what it points at.
        match std::fs::metadata(dir.join(&child)) {
            Ok(meta) if meta.is_dir() => walk(dir, &child, ancestors, out, problems),
            // Opening a named pipe blocks until a writer comes, and a device may do anything.
            // Such a file stores no configuration, so it is skipped rather than refused: one
            // stray socket must not stop every plan and watch of the directory.
            Ok(meta) if is_yaml(text) && !meta.is_file() => {
                problems.push(
                    Diagnostic::warning(
                        Code::NotARegularFile,
                        Some(file_location(dir, &child)),
                        format!("not a regular file ({}); skipped", kind_of(&meta)),
                    )
                    .hint("kayle-sync reads manifests from regular files only; remove it or rename it"),
                );
            }
            Ok(_) if is_yaml(text) => {
                if !rel.as_os_str().is_empty() && PROJECT_FILES.contains(&text) {
                    problems.push(
                        Diagnostic::error(
                            Code::NestedProjectFile,
                            Some(file_location(dir, &child)),
                            "a project file inside the config directory's subdirectories",
                        )
                        .hint("each config directory has one project file at its top; run kayle-sync on that subdirectory instead"),
                    );
                } else {
                    out.push(child);
                }
            }
            Ok(_) => {}
            Err(err) if is_yaml(text) || err.raw_os_error() == Some(40) => {
                problems.push(unreadable(dir, &child, &err));
            }
            Err(_) => {}
        }
    }
    ancestors.pop();
}

fn is_yaml(name: &str) -> bool {
    name.ends_with(".yaml") || name.ends_with(".yml")
}

fn unreadable(dir: &Path, rel: &Path, err: &std::io::Error) -> Diagnostic {
    let (code, message) = if err.raw_os_error() == Some(40) {
        (
            Code::SymlinkLoop,
            "a symlink loop: the link resolves to itself".to_owned(),
        )
    } else {
        (
            Code::UnreadableFile,
            format!("cannot read: {}", io_reason(err)),
        )
    };
    Diagnostic::error(code, Some(file_location(dir, rel)), message)
}

/// The reason an I/O call failed, without the OS error number (it differs across systems).
fn io_reason(err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::NotFound => "not found".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => {
            let text = err.to_string();
            match text.find(" (os error") {
                Some(cut) => text[..cut].to_owned(),
                None => text,
            }
        }
    }
}

/// Reads a config file as UTF-8 text, refusing one larger than [`MAX_FILE_BYTES`].
pub fn read_text(dir: &Path, rel: &Path) -> Result<String, Box<Diagnostic>> {
    let path = dir.join(rel);
    let bytes = read_limited(&path).map_err(|err| {
        Box::new(match err {
            ReadError::Io(err) => unreadable(dir, rel, &err),
            err @ ReadError::NotRegular(_) => Diagnostic::error(
                Code::NotARegularFile,
                Some(file_location(dir, rel)),
                err.to_string(),
            ),
            ReadError::TooLarge(_) => Diagnostic::error(
                Code::FileTooLarge,
                Some(file_location(dir, rel)),
                format!("file is larger than {} KiB", MAX_FILE_BYTES / 1024),
            )
            .hint("config files are small; is this file meant to be under the config directory?"),
        })
    })?;
    decode(bytes).map_err(|(line, column)| {
        Box::new(
            Diagnostic::error(
                Code::NotUtf8,
                Some(Location {
                    file: path,
                    line,
                    column,
                }),
                "the file is not valid UTF-8",
            )
            .hint("save the file as UTF-8"),
        )
    })
}

/// Reads a regular file of at most [`MAX_FILE_BYTES`] bytes (see [`files::read_regular`]).
pub fn read_limited(path: &Path) -> Result<Vec<u8>, ReadError> {
    files::read_regular(path, MAX_FILE_BYTES)
}

/// Decodes UTF-8, or says where (line, column) the first invalid byte is.
fn decode(bytes: Vec<u8>) -> Result<String, (usize, usize)> {
    String::from_utf8(bytes).map_err(|err| {
        let valid = &err.as_bytes()[..err.utf8_error().valid_up_to()];
        let valid = std::str::from_utf8(valid).unwrap_or_default();
        let line = valid.matches('\n').count() + 1;
        let column = valid.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        (line, column)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_utf8_is_located() {
        assert_eq!(decode(b"a: 1\nb: \xff\n".to_vec()), Err((2, 4)));
        assert_eq!(decode(b"ok".to_vec()).as_deref(), Ok("ok"));
    }
}
