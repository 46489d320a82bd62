//! Renders what an apply did, endpoint by endpoint, and its closing line.

use std::io::{self, Write};

use crate::apply::Applied;
use crate::plan::Action;
use crate::redact::{safe_line, safe_lines};

/// One line per step done and the closing line to `out`; one line per failure to `errors`.
/// Ids come from the server and failures can quote it: both are made safe to show.
pub fn render_applied(
    applied: &Applied,
    out: &mut impl Write,
    errors: &mut impl Write,
) -> io::Result<()> {
    for outcome in &applied.outcomes {
        let id = outcome.endpoint_id.as_deref().unwrap_or("-");
        let endpoint = safe_line(&format!("{} ({id})", outcome.key));
        for step in &outcome.done {
            writeln!(out, "{endpoint}: {}", safe_line(step))?;
        }
        if let Some(error) = &outcome.error {
            writeln!(
                errors,
                "{endpoint}: FAILED: {}",
                safe_lines(&format!("{error:#}"))
            )?;
        }
    }
    let (created, updated, deleted) = (
        applied.completed(Action::Create),
        applied.completed(Action::Update),
        applied.completed(Action::Delete),
    );
    let failed = applied.failed();
    if failed == 0 {
        writeln!(
            out,
            "Apply complete: {created} created, {updated} updated, {deleted} deleted."
        )
    } else {
        writeln!(
            out,
            "Apply failed: {failed} of {} changes failed ({created} created, {updated} updated, \
             {deleted} deleted).",
            applied.outcomes.len()
        )
    }
}
