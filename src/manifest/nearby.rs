//! A directory without a project file: the one diagnostic said about it, naming the project
//! files found a little below it, since the usual cause is running from one level too high.

use super::code::Code;
use std::path::{Path, PathBuf};

use super::diagnostic::Diagnostic;
use super::walk::PROJECT_FILES;

/// At most this many nearby project files are named.
const MAX_NAMED: usize = 3;

/// Directories never searched for a project file: build output and installed packages are
/// large and hold no configuration of the user's.
const SKIPPED: [&str; 2] = ["target", "node_modules"];

/// Where a starting project file comes from, for a user who has none nearby.
const START_HINT: &str = "`kayle-sync init` writes a starting one (see \
     https://github.com/kayle-sync/kayle-sync#how-it-works)";

/// The project file `dir` holds, if any, as a path relative to `dir`.
pub fn project_file(dir: &Path) -> Option<PathBuf> {
    PROJECT_FILES
        .iter()
        .map(PathBuf::from)
        .find(|name| dir.join(name).is_file())
}

/// The error for `dir` having no project file, or `None` when it has one (or cannot be
/// read, which the loader reports instead). `command` is the command line to suggest with a
/// nearby directory appended (`kayle-sync plan`); without one the hint names the directory.
pub fn missing_project(dir: &Path, command: Option<&str>) -> Option<Diagnostic> {
    if !dir.is_dir() || project_file(dir).is_some() {
        return None;
    }
    let found = nearby_projects(dir);
    let hint = match found.as_slice() {
        [] => format!("pass the config directory, or create a project file: {START_HINT}"),
        [only, ..] => {
            let files: Vec<String> = found
                .iter()
                .take(MAX_NAMED)
                .map(|file| shell_word(&file.display().to_string()))
                .collect();
            let more = match found.len().saturating_sub(MAX_NAMED) {
                0 => String::new(),
                n => format!(" and {n} more"),
            };
            let config_dir = shell_word(&only.parent().unwrap_or(dir).display().to_string());
            let suggestion = match command {
                Some(command) => format!("try `{command} {config_dir}`"),
                None => format!("pass {config_dir} as the config directory"),
            };
            format!("found {}{more}: {suggestion}", files.join(", "))
        }
    };
    Some(
        Diagnostic::error(
            Code::MissingProjectFile,
            None,
            format!("{} has no kayle-sync.yaml", dir.display()),
        )
        .hint(hint),
    )
}

/// The project files in `dir`'s children and grandchildren (hidden directories, `target` and
/// `node_modules` skipped), as `dir` joined with their path, sorted.
pub fn nearby_projects(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for child in subdirectories(dir) {
        found.extend(project_file(&child).map(|name| child.join(name)));
        for grandchild in subdirectories(&child) {
            found.extend(project_file(&grandchild).map(|name| grandchild.join(name)));
        }
    }
    found.sort();
    found
}

/// The directories directly under `dir` worth searching, as `dir` joined with their name.
fn subdirectories(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            !name.starts_with('.') && !SKIPPED.contains(&name.as_ref())
        })
        // Not following symlinks: a link back up would be searched again.
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
        .map(|entry| strip_dot(&dir.join(entry.file_name())))
        .collect()
}

/// `./examples` as `examples`: the way a user would type it.
fn strip_dot(path: &Path) -> PathBuf {
    path.strip_prefix(".")
        .map_or_else(|_| path.to_owned(), Path::to_owned)
}

/// `path` as one word a POSIX shell reads back unchanged: quoted only when it needs to be.
pub fn shell_word(path: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:@%+=,".contains(c);
    if !path.is_empty() && path.chars().all(plain) {
        path.to_owned()
    } else {
        format!("'{}'", path.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(root: &Path, rel: &str) {
        std::fs::create_dir_all(root.join(rel)).unwrap();
        std::fs::write(root.join(rel).join("kayle-sync.yaml"), "sinks: {}\n").unwrap();
    }

    #[test]
    fn children_and_grandchildren_are_searched_hidden_and_build_dirs_are_not() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        project(root, "b");
        project(root, "a/deep");
        project(root, "a/deep/deeper");
        project(root, ".hidden");
        project(root, "target/x");
        project(root, "node_modules/y");
        let found = nearby_projects(root);
        assert_eq!(
            found,
            vec![
                root.join("a/deep/kayle-sync.yaml"),
                root.join("b/kayle-sync.yaml")
            ]
        );
    }

    #[test]
    fn the_hint_names_a_few_files_and_the_command_for_the_first() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("my repo");
        for name in ["p1", "p2", "p3", "p4", "p5"] {
            project(&root, name);
        }
        let hint = missing_project(&root, Some("kayle-sync plan"))
            .unwrap()
            .hint
            .unwrap();
        // The whole hint, not fragments of it: the temporary directory's random name can
        // hold `p4` itself, so "no `p4` anywhere" would fail about once in a thousand runs.
        let quoted = |rel: &str| shell_word(&root.join(rel).display().to_string());
        let files = ["p1", "p2", "p3"].map(|p| quoted(&format!("{p}/kayle-sync.yaml")));
        assert_eq!(
            hint,
            format!(
                "found {} and 2 more: try `kayle-sync plan {}`",
                files.join(", "),
                quoted("p1")
            )
        );
        project(&root, "");
        assert!(missing_project(&root, None).is_none());
    }

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(shell_word("examples/quickstart"), "examples/quickstart");
        assert_eq!(shell_word("my dir"), "'my dir'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }
}
