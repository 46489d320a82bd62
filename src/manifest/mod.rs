//! Loads a config directory into the validated desired state, or every problem found in it.
//!
//! The pipeline: `walk` finds and reads the files, `node` parses YAML into a tree that keeps
//! each value's line and column, `reader` reads typed values out of it collecting problems,
//! `project` and `endpoint` (with `rules` and `keys`) check and normalize, and this module puts
//! the results together. Only validated types leave: [`model::Desired`] or [`Diagnostics`].

mod code;
mod credentials;
mod destinations;
mod diagnostic;
mod duplicate_keys;
mod endpoint;
mod key_entries;
mod keys;
mod merge_keys;
mod nearby;
mod node;
mod project;
mod reader;
mod rules;
mod walk;

use std::collections::BTreeMap;
use std::path::Path;

pub use code::Code;
pub use diagnostic::{Diagnostic, Diagnostics, Severity};
pub use keys::{KeyFileError, default_private_key_name, default_secret_name, parse_public_key};
pub use nearby::{missing_project, shell_word};
pub use project::DEFAULT_TOKEN_ENV;
pub use reader::did_you_mean;
pub use walk::{MAX_FILE_BYTES, PROJECT_FILES};

use crate::model::{self, Location};
use reader::Reader;

const MANIFEST_HINT: &str = "declare `endpoints:` in it, or delete it";
const PROJECT_HINT: &str = "declare at least `sinks:` and `defaults:`; `kayle-sync init` writes a \
     starting one (see https://github.com/kayle-sync/kayle-sync#how-it-works)";

/// A valid config directory: the desired state, and the warnings found on the way.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub desired: model::Desired,
    pub warnings: Vec<Diagnostic>,
    /// How many manifest files were read (the project file not included).
    pub manifest_files: usize,
}

/// What loading a config directory found, valid or not.
#[derive(Debug)]
pub struct Inspection {
    pub result: Result<Loaded, Diagnostics>,
    /// How many manifest files were found (the project file not included).
    pub manifest_files: usize,
    /// How many endpoint keys the manifests declare, valid or not.
    pub endpoints: usize,
}

/// Loads and validates the config directory `dir`: its project file and every manifest.
///
/// Paths in diagnostics are `dir` joined with the file's path inside it, so they read the way
/// the user typed the directory.
pub fn load(dir: &Path) -> Result<Loaded, Diagnostics> {
    inspect(dir).result
}

/// [`load`], also counting the files and endpoints found when some are invalid.
pub fn inspect(dir: &Path) -> Inspection {
    // Without a project file this is not a config directory (often it is a repository one
    // level up): its YAML files are not manifests, and checking them would bury the one line
    // that matters under errors about unrelated files.
    if let Some(missing) = missing_project(dir, None) {
        return Inspection {
            result: Err(Diagnostics(vec![missing])),
            manifest_files: 0,
            endpoints: 0,
        };
    }
    let mut problems = Vec::new();
    let files = walk::find_files(dir, &mut problems);
    let project = match &files.project {
        Some(rel) => read_project(dir, rel, &mut problems),
        None => {
            let unreadable = problems
                .iter()
                .any(|d| matches!(d.code, Code::NotADirectory | Code::UnreadableDirectory));
            if !unreadable {
                problems.extend(missing_project(dir, None));
            }
            None
        }
    };
    let label_prefix = project
        .as_ref()
        .map_or(model::DEFAULT_LABEL_PREFIX, |p| p.label_prefix.as_str())
        .to_owned();
    let cx = endpoint::Context {
        dir,
        project: project.as_ref(),
        label_prefix: &label_prefix,
    };
    // Collected, then built into the map at once: a map built by inserting keys in order
    // leaves its nodes half full, and at 10,000 endpoints that is megabytes.
    let mut entries = Vec::new();
    let mut declared: BTreeMap<String, Location> = BTreeMap::new();
    for rel in &files.manifests {
        let shown = dir.join(rel);
        let Some(docs) = read_yaml(dir, rel, &mut problems, MANIFEST_HINT) else {
            continue;
        };
        let mut r = Reader {
            file: &shown,
            problems: &mut problems,
        };
        for doc in docs.iter().filter(|d| !project::is_empty(d)) {
            for entry in endpoint::read_document(&mut r, &cx, doc) {
                let first = check_unique(&mut r, &mut declared, &entry.key, entry.key_node);
                if let (true, Some(endpoint)) = (first, entry.endpoint) {
                    entries.push((entry.key, endpoint));
                }
            }
        }
    }
    let endpoints: BTreeMap<String, model::DesiredEndpoint> = entries.into_iter().collect();
    destinations::check_unique(project.as_ref(), &endpoints, &mut problems);
    credentials::check_secret_names(project.as_ref(), &endpoints, &mut problems);
    let (mut errors, mut warnings): (Vec<_>, Vec<_>) = problems
        .into_iter()
        .partition(|d| d.severity == Severity::Error);
    diagnostic::sort(&mut warnings);
    let result = match project {
        Some(project) if errors.is_empty() => Ok(Loaded {
            desired: model::Desired { project, endpoints },
            warnings,
            manifest_files: files.manifests.len(),
        }),
        _ => {
            diagnostic::sort(&mut errors);
            Err(Diagnostics(errors))
        }
    };
    Inspection {
        result,
        manifest_files: files.manifests.len(),
        endpoints: declared.len(),
    }
}

/// Loads only the project file of `dir` (for commands that need the API and sinks but not the
/// manifests, such as `export`).
pub fn load_project(dir: &Path) -> Result<model::Project, Diagnostics> {
    let mut problems = Vec::new();
    let project = match nearby::project_file(dir) {
        Some(rel) => read_project(dir, &rel, &mut problems),
        None => {
            problems.extend(missing_project(dir, None).or_else(|| not_a_directory(dir)));
            None
        }
    };
    problems.retain(|d| d.severity == Severity::Error);
    match project {
        Some(project) if problems.is_empty() => Ok(project),
        _ => {
            diagnostic::sort(&mut problems);
            Err(Diagnostics(problems))
        }
    }
}

/// What the walk says of `dir` when it is not a readable directory.
fn not_a_directory(dir: &Path) -> Option<Diagnostic> {
    let mut problems = Vec::new();
    walk::find_files(dir, &mut problems);
    problems.into_iter().next()
}

fn read_project(dir: &Path, rel: &Path, problems: &mut Vec<Diagnostic>) -> Option<model::Project> {
    let docs = read_yaml(dir, rel, problems, PROJECT_HINT)?;
    let shown = dir.join(rel);
    let docs: Vec<_> = docs.iter().filter(|d| !project::is_empty(d)).collect();
    let mut r = Reader {
        file: &shown,
        problems,
    };
    match docs.as_slice() {
        [doc] => project::read(&mut r, doc, dir),
        [] => {
            r.problems.push(
                Diagnostic::error(
                    Code::EmptyFile,
                    Some(walk::file_location(dir, rel)),
                    "the project file is empty",
                )
                .hint(PROJECT_HINT),
            );
            None
        }
        [_, second, ..] => {
            r.error(
                Code::MultipleDocuments,
                second,
                "",
                "the project file holds more than one YAML document",
            );
            None
        }
    }
}

/// Reads and parses one file; an empty file (no content at all) is an error.
fn read_yaml(
    dir: &Path,
    rel: &Path,
    problems: &mut Vec<Diagnostic>,
    empty_hint: &str,
) -> Option<Vec<node::Node>> {
    let text = match walk::read_text(dir, rel) {
        Ok(text) => text,
        Err(diagnostic) => {
            problems.push(*diagnostic);
            return None;
        }
    };
    let location = |line: Option<usize>, column: Option<usize>| Location {
        file: dir.join(rel),
        line: line.unwrap_or(1),
        column: column.unwrap_or(1),
    };
    if let Some(offset) = text.find('\t') {
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        let indent = before.rsplit('\n').next().unwrap_or("").trim().is_empty();
        if indent {
            problems.push(
                Diagnostic::error(
                    Code::YamlTab,
                    Some(location(Some(line), Some(column))),
                    "a tab character in indentation",
                )
                .hint("YAML indents with spaces only"),
            );
            return None;
        }
    }
    match node::parse_documents(&text) {
        Ok(docs) if docs.iter().all(project::is_empty) && text.trim().is_empty() => {
            problems.push(
                Diagnostic::error(
                    Code::EmptyFile,
                    Some(location(None, None)),
                    "the file is empty",
                )
                .hint(empty_hint),
            );
            None
        }
        Ok(mut docs) => {
            let shown = dir.join(rel);
            let mut r = Reader {
                file: &shown,
                problems,
            };
            for doc in &mut docs {
                duplicate_keys::drop_repeated(&mut r, doc, "");
            }
            Some(docs)
        }
        Err(err) => {
            let field = match (err.code, err.line, err.column) {
                (Code::YamlMergeKey, Some(line), Some(column)) => {
                    merge_keys::field_of(&text, line, column)
                }
                _ => None,
            };
            problems.push(
                Diagnostic::error(err.code, Some(location(err.line, err.column)), err.message)
                    .field(field.unwrap_or_default()),
            );
            None
        }
    }
}

/// Records where `key` is declared; reports (and returns false for) a second declaration.
fn check_unique(
    r: &mut Reader,
    declared: &mut BTreeMap<String, Location>,
    key: &str,
    key_node: &node::Node,
) -> bool {
    if let Some(first) = declared.get(key) {
        let message = format!("endpoint `{key}` is already declared at {first}");
        r.error(
            Code::DuplicateEndpoint,
            key_node,
            &reader::join("endpoints", key),
            message,
        )
        .hint = Some("each key names one endpoint; rename or remove one of them".into());
        false
    } else {
        declared.insert(key.to_owned(), r.at(key_node));
        true
    }
}
