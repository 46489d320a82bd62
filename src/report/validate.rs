//! What `validate` says of a config directory: a summary line and the diagnostics as text, or
//! one JSON document.

use std::io::Write;
use std::path::Path;

use crate::manifest::{Diagnostic, Inspection};
use crate::redact::{safe_line, safe_lines};

/// The JSON document: validity, the counts (also when invalid, so that a script tells
/// "nothing found" from "found, with errors") and every diagnostic, scrubbed.
pub fn render_validate_json(found: &Inspection, out: &mut dyn Write) -> anyhow::Result<()> {
    let (valid, diagnostics): (bool, &[Diagnostic]) = match &found.result {
        Ok(loaded) => (true, &loaded.warnings),
        Err(errors) => (false, &errors.0),
    };
    let body = serde_json::json!({
        "valid": valid,
        "endpoints": found.endpoints,
        "files": found.manifest_files,
        "diagnostics": diagnostics,
    });
    let body = crate::redact::scrub_json(&body);
    writeln!(out, "{}", serde_json::to_string_pretty(&body)?)?;
    Ok(())
}

/// The text: warnings or errors to `err`, the summary of a valid directory to `out`, and the
/// error count of an invalid one (`dir`, as the user typed it) to `err`.
pub fn render_validate_text(
    found: &Inspection,
    dir: &Path,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<()> {
    match &found.result {
        Ok(loaded) => {
            for warning in &loaded.warnings {
                writeln!(err, "{}", safe_lines(&warning.to_string()))?;
            }
            let n = loaded.desired.endpoints.len();
            let m = loaded.manifest_files;
            writeln!(
                out,
                "{n} {} in {m} {}: valid",
                plural(n, "endpoint"),
                plural(m, "file")
            )?;
        }
        Err(errors) => {
            writeln!(err, "{}", safe_lines(&errors.to_string()))?;
            let n = errors.0.len();
            writeln!(
                err,
                "{}: {n} {}",
                safe_line(&dir.display().to_string()),
                plural(n, "error")
            )?;
        }
    }
    Ok(())
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        word.to_owned()
    } else {
        format!("{word}s")
    }
}
