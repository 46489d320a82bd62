//! Loading the emulator's state from a JSON file and writing it back atomically.

use std::io::Write;
use std::path::Path;

use crate::store::Store;

/// A state file that does not parse. Its message names the file, the line and column, the
/// field and what is wrong, and never a value from the file: the file holds signing secrets,
/// and serde's own messages quote the offending value.
#[derive(Debug, thiserror::Error)]
#[error("the emulator state file {} is not valid: line {line}, column {column}: {problem}", path.display())]
pub(crate) struct StateFileError {
    path: std::path::PathBuf,
    line: usize,
    column: usize,
    problem: String,
}

/// Reads the state file; a missing file is an empty state.
pub(crate) fn load(path: &Path) -> std::io::Result<Store> {
    match std::fs::read(path) {
        Ok(bytes) => parse(&bytes).map_err(|(field, error)| {
            let error = StateFileError {
                path: path.to_path_buf(),
                line: error.line(),
                column: error.column(),
                problem: describe(field.as_deref(), &error),
            };
            std::io::Error::new(std::io::ErrorKind::InvalidData, error)
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Store::default()),
        Err(e) => Err(e),
    }
}

/// The state, or the error with the path of the field it is about (none for syntax).
fn parse(bytes: &[u8]) -> Result<Store, (Option<String>, serde_json::Error)> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let store = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let field = error.path().to_string();
        (Some(field), error.into_inner())
    })?;
    deserializer.end().map_err(|error| (None, error))?;
    Ok(Store::restored(store))
}

/// What is wrong, in words that cannot carry a value from the file: serde_json's syntax
/// messages are fixed texts, and of a data error only the field, the kind of problem and what
/// was expected are kept (`invalid type: string "whsec_…", expected u32` quotes the value).
fn describe(field: Option<&str>, error: &serde_json::Error) -> String {
    let message = error.to_string();
    let message = message
        .strip_suffix(&format!(
            " at line {} column {}",
            error.line(),
            error.column()
        ))
        .unwrap_or(&message);
    if error.classify() != serde_json::error::Category::Data {
        return message.to_owned();
    }
    // The expectation comes last and from the code, after any quoted value.
    let expected = message
        .rfind(", expected ")
        .map(|at| &message[at + 2..])
        .unwrap_or_default();
    let kind = ["invalid type", "invalid value", "invalid length"]
        .into_iter()
        .find(|kind| message.starts_with(kind));
    let what = match kind {
        Some(kind) if !expected.is_empty() => format!("{kind}, {expected}"),
        Some(kind) => kind.to_owned(),
        // Field names come from the code, never from the file.
        None if ["missing field `", "duplicate field `"]
            .iter()
            .any(|start| message.starts_with(start)) =>
        {
            message.to_owned()
        }
        None => "invalid value".to_owned(),
    };
    match field {
        Some(field) if field != "." => format!("{field}: {what}"),
        _ => what,
    }
}

/// Writes the state to a temporary file beside `path`, then renames it over `path`, so a
/// reader never sees half a file.
pub(crate) fn save(path: &Path, store: &Store) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(store)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state.json".to_string());
    let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    {
        // The state holds signing secrets: readable by its owner only, from the first byte.
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_an_empty_state() {
        let store = load(Path::new("/nonexistent/kayle-emulator-state.json")).unwrap();
        assert!(store.endpoints.is_empty());
    }

    fn problem(json: &str) -> String {
        let (field, error) = parse(json.as_bytes()).err().expect("an invalid state");
        describe(field.as_deref(), &error)
    }

    #[test]
    fn a_problem_is_described_without_the_value() {
        let secret = "whsec_0123456789abcdefghijklmnopqrstuv";
        let cases = [
            (
                format!(r#"{{"endpoints": [], "keys": [], "last_ms": "{secret}"}}"#),
                "last_ms: invalid type, expected i64",
            ),
            (
                format!(r#"{{"endpoints": "{secret}", "keys": [], "last_ms": 1}}"#),
                "endpoints: invalid type, expected a sequence",
            ),
            (
                r#"{"endpoints": [], "keys": [], "last_ms": 1, "#.to_owned(),
                "EOF while parsing a value",
            ),
            (
                r#"{"endpoints": [], "keys": []}"#.to_owned(),
                "missing field `last_ms`",
            ),
            (
                format!(r#"{{"endpoints": [], "keys": [], "last_ms": 1}} "{secret}""#),
                "trailing characters",
            ),
        ];
        for (json, wanted) in cases {
            let problem = problem(&json);
            assert_eq!(problem, wanted);
            assert!(!problem.contains("whsec_"), "{problem}");
        }
    }

    #[test]
    fn the_state_file_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let path =
            std::env::temp_dir().join(format!("kayle-emulator-mode-{}.json", std::process::id()));
        save(&path, &Store::default()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        std::fs::remove_file(&path).unwrap();
        assert_eq!(mode, 0o600, "it holds signing secrets");
    }
}
