//! `kayle-sync validate`: load the config directory offline and report every problem.

use std::io::Write;

use super::Outcome;
use super::args::{LineFormat, ValidateArgs};
use crate::manifest::{self, Diagnostic, Diagnostics};
use crate::redact::safe_lines;

/// Runs `validate`, writing the summary to `out` and diagnostics to `err` (stdout and stderr).
/// `missing` is the error for a directory without a project file, if it has none.
pub fn run(
    args: &ValidateArgs,
    missing: Option<Diagnostic>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<Outcome> {
    let found = match missing {
        Some(missing) => manifest::Inspection {
            result: Err(Diagnostics(vec![missing])),
            manifest_files: 0,
            endpoints: 0,
        },
        None => manifest::inspect(&args.dir),
    };
    let result = found.result;
    match args.format {
        LineFormat::Json => {
            // Counted also when invalid: a script tells "nothing found" from "found, with errors".
            let (valid, diagnostics): (bool, Vec<Diagnostic>) = match &result {
                Ok(loaded) => (true, loaded.warnings.clone()),
                Err(errors) => (false, errors.0.clone()),
            };
            let body = serde_json::json!({
                "valid": valid,
                "endpoints": found.endpoints,
                "files": found.manifest_files,
                "diagnostics": diagnostics,
            });
            let body = crate::redact::scrub_json(&body);
            writeln!(out, "{}", serde_json::to_string_pretty(&body)?)?;
        }
        LineFormat::Text => match &result {
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
                writeln!(err, "{}: {n} {}", args.dir.display(), plural(n, "error"))?;
            }
        },
    }
    Ok(if result.is_ok() {
        Outcome::Success
    } else {
        Outcome::Failed
    })
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        word.to_owned()
    } else {
        format!("{word}s")
    }
}
