//! Keeping secret files out of git: a file sink inside a git work tree that git would offer
//! to commit gets a `.gitignore` next to it, and one git already tracks (which a `.gitignore`
//! cannot keep out of a commit) is not written at all.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Mutex, PoisonError};

use crate::model::{Project, SinkConfig};

/// Whether git tracks each sink file, asked of git once per file in a run: the plan's warning,
/// the `.gitignore` step and the sinks' write check all want to know. Nothing kayle-sync does
/// adds a file to git's index, so the answer holds for the run; the next run (and the next
/// reconcile of `watch`, which builds its sinks again) asks again, and sees a file untracked
/// meanwhile.
#[derive(Debug, Default)]
pub struct GitAnswers {
    tracked: Mutex<HashMap<PathBuf, bool>>,
}

impl GitAnswers {
    /// Whether git tracks the file at `path`; see [`is_tracked`].
    fn is_tracked(&self, path: &Path) -> bool {
        let answers = || self.tracked.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(&tracked) = answers().get(path) {
            return tracked;
        }
        // Asked without the lock held: two sinks' checks may run at once.
        let tracked = is_tracked(path);
        answers().insert(path.to_owned(), tracked);
        tracked
    }
}

/// For every file sink of `project` that lies in a git work tree and that git does not
/// ignore, adds the file to a `.gitignore` in its directory; returns the files so ignored.
/// Without git, or outside a work tree, nothing is done.
pub fn ignore_sink_files(project: &Project, git: &GitAnswers) -> std::io::Result<Vec<PathBuf>> {
    let mut ignored = Vec::new();
    for config in project.sinks.values() {
        let (SinkConfig::Dotenv { path } | SinkConfig::Json { path }) = config else {
            continue;
        };
        let path = project.dir.join(path);
        if ignore(&path, git)? {
            ignored.push(path);
        }
    }
    Ok(ignored)
}

/// Adds `path` to the `.gitignore` of its directory if git would offer it to commit.
fn ignore(path: &Path, git: &GitAnswers) -> std::io::Result<bool> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(false);
    };
    // A tracked file is refused before anything is written (`tracked_file_problem`): an
    // entry in a `.gitignore` would not keep it out of the next commit.
    if !in_work_tree(dir) || is_ignored(dir, name)? || git.is_tracked(path) {
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

/// For every file sink of `project` whose file git tracks, the sink's name and
/// [`tracked_file_problem`]'s message, in sink order.
pub fn tracked_sink_files(project: &Project, git: &GitAnswers) -> Vec<(String, String)> {
    project
        .sinks
        .iter()
        .filter_map(|(name, config)| {
            let (SinkConfig::Dotenv { path } | SinkConfig::Json { path }) = config else {
                return None;
            };
            let problem = tracked_file_problem(&project.dir.join(path), git)?;
            Some((name.clone(), problem))
        })
        .collect()
}

/// Why secrets may not be written to `path`, when git tracks it (itself, or the file a link
/// there points to): written, they would be in the next `git commit -a`, whatever a
/// `.gitignore` says. The message names the file and how to untrack it.
pub(crate) fn tracked_file_problem(path: &Path, git: &GitAnswers) -> Option<String> {
    // Git is asked from the file's own directory, so the file's name is the only part of the
    // path that can lead elsewhere: its target is asked about only when it is a link.
    let is_link = path
        .symlink_metadata()
        .is_ok_and(|meta| meta.file_type().is_symlink());
    let tracked = git.is_tracked(path)
        || (is_link && std::fs::canonicalize(path).is_ok_and(|target| git.is_tracked(&target)));
    if !tracked {
        return None;
    }
    let shown = crate::manifest::shell_word(&path.display().to_string());
    Some(format!(
        "git tracks {shown}, so the secrets written to it would go into the next commit; \
         untrack it with `git rm --cached {shown}` and commit that, then apply again"
    ))
}

/// Whether git tracks the file at `path` (it is in the index of its work tree). Git is asked
/// from the nearest existing directory, so a work tree above the current directory is found
/// too; `false` without git or outside a work tree.
fn is_tracked(path: &Path) -> bool {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return false;
    };
    // Literal, so that a file named `*.env` does not match every dotenv file git tracks.
    let args = ["--literal-pathspecs", "ls-files", "--error-unmatch", "--"];
    ask_git(dir, name, &args).is_some_and(|status| status.success())
}

/// Whether `dir`, or the nearest existing directory above it, is inside a git work tree.
fn in_work_tree(dir: &Path) -> bool {
    dir.ancestors().any(|d| d.join(".git").exists())
}

/// Whether git ignores `name` in `dir`; `true` when git cannot tell (not installed, say), so
/// that nothing is written on a guess.
fn is_ignored(dir: &Path, name: &OsStr) -> std::io::Result<bool> {
    let args = ["check-ignore", "-q", "--no-index", "--"];
    Ok(ask_git(dir, name, &args).is_none_or(|status| status.code() != Some(1)))
}

/// How `git ARGS <dir/name>` exits, run from the nearest existing directory of `dir` with the
/// path relative to it; `None` when git cannot be run.
fn ask_git(dir: &Path, name: &OsStr, args: &[&str]) -> Option<ExitStatus> {
    // The empty path, where a relative `dir` ends, is the current directory.
    let existing = dir
        .ancestors()
        .find(|d| d.as_os_str().is_empty() || d.is_dir())?;
    let relative = dir
        .strip_prefix(existing)
        .unwrap_or(Path::new(""))
        .join(name);
    let cwd = if existing.as_os_str().is_empty() {
        Path::new(".")
    } else {
        existing
    };
    Command::new("git")
        .args(args)
        .arg(&relative)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) {
        let status = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .status()
            .expect("git runs");
        assert!(status.success(), "git {args:?}");
    }

    #[test]
    fn a_tracked_file_is_refused_and_so_is_a_link_to_one() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path();
        git(repo, &["init", "-q"]);
        std::fs::write(repo.join("tracked.env"), "# placeholder\n").unwrap();
        git(repo, &["add", "tracked.env"]);
        git(repo, &["commit", "-q", "-m", "placeholder"]);
        std::fs::write(repo.join("untracked.env"), "").unwrap();
        std::os::unix::fs::symlink("tracked.env", repo.join("link.env")).unwrap();
        std::os::unix::fs::symlink("untracked.env", repo.join("other-link.env")).unwrap();

        for refused in ["tracked.env", "link.env"] {
            let problem =
                tracked_file_problem(&repo.join(refused), &GitAnswers::default()).expect(refused);
            assert!(problem.contains(refused), "{problem}");
            assert!(problem.contains("git rm --cached"), "{problem}");
        }
        for allowed in [
            "untracked.env",
            "other-link.env",
            "not-there.env",
            "dir/new.env",
        ] {
            let problem = tracked_file_problem(&repo.join(allowed), &GitAnswers::default());
            assert_eq!(problem, None, "{allowed}");
        }
    }
}
