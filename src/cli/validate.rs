//! `kayle-sync validate`: load the config directory offline and report every problem.

use std::io::Write;

use super::Outcome;
use super::args::{LineFormat, ValidateArgs};
use crate::manifest::{self, Diagnostic, Diagnostics};
use crate::report;

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
    match args.format {
        LineFormat::Json => report::render_validate_json(&found, out)?,
        LineFormat::Text => report::render_validate_text(&found, &args.dir, out, err)?,
    }
    Ok(if found.result.is_ok() {
        Outcome::Success
    } else {
        Outcome::Failed
    })
}
