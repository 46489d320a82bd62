//! Keeping secret files out of git: a file sink inside a git work tree that git would offer
//! to commit gets a `.gitignore` next to it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::model::{Project, SinkConfig};

/// For every file sink of `project` that lies in a git work tree and that git does not
/// ignore, adds the file to a `.gitignore` in its directory; returns the files so ignored.
/// Without git, or outside a work tree, nothing is done.
pub fn ignore_sink_files(project: &Project) -> std::io::Result<Vec<PathBuf>> {
    let mut ignored = Vec::new();
    for config in project.sinks.values() {
        let (SinkConfig::Dotenv { path } | SinkConfig::Json { path }) = config else {
            continue;
        };
        let path = project.dir.join(path);
        if ignore(&path)? {
            ignored.push(path);
        }
    }
    Ok(ignored)
}

/// Adds `path` to the `.gitignore` of its directory if git would offer it to commit.
fn ignore(path: &Path) -> std::io::Result<bool> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(false);
    };
    if !in_work_tree(dir) || is_ignored(dir, name)? {
        return Ok(false);
    }
    std::fs::create_dir_all(dir)?;
    let gitignore = dir.join(".gitignore");
    let existing = std::fs::read_to_string(&gitignore).unwrap_or_default();
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&gitignore)?;
    if !existing.is_empty() && !existing.ends_with('\n') {
        writeln!(file)?;
    }
    // Anchored, and with git's special characters escaped, so it names this file only.
    let mut pattern = String::from("/");
    for c in name.to_string_lossy().chars() {
        if matches!(c, '*' | '?' | '[' | '\\' | '!' | '#') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    writeln!(file, "# kayle-sync writes secrets here\n{pattern}")?;
    Ok(true)
}

/// Whether `dir`, or the nearest existing directory above it, is inside a git work tree.
fn in_work_tree(dir: &Path) -> bool {
    dir.ancestors().any(|d| d.join(".git").exists())
}

/// Whether git ignores `name` in `dir`; `true` when git cannot tell (not installed, say), so
/// that nothing is written on a guess.
fn is_ignored(dir: &Path, name: &std::ffi::OsStr) -> std::io::Result<bool> {
    let Some(existing) = dir.ancestors().find(|d| d.is_dir()) else {
        return Ok(true);
    };
    let relative = dir
        .strip_prefix(existing)
        .unwrap_or(Path::new(""))
        .join(name);
    let status = Command::new("git")
        .args(["check-ignore", "-q", "--no-index", "--"])
        .arg(&relative)
        .current_dir(existing)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    Ok(match status {
        Ok(status) => status.code() != Some(1),
        Err(_) => true,
    })
}
