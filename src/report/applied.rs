//! Renders what an apply did, endpoint by endpoint as each finishes, and its closing line.

use std::io::{self, Write};

use crate::apply::{Applied, Outcome};
use crate::plan::Action;
use crate::redact::{safe_line, safe_lines};

/// What the changes carried out were, for the closing line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closing {
    /// An apply of a plan: counts of what was created, updated and deleted.
    Apply,
    /// `kayle-sync rotate`: one endpoint's secret replaced.
    Rotation,
}

/// One line per step done and the closing line to `out`; one line per failure to `errors`.
/// Ids come from the server and failures can quote it: both are made safe to show.
pub fn render_applied(
    applied: &Applied,
    out: &mut impl Write,
    errors: &mut impl Write,
) -> io::Result<()> {
    for outcome in &applied.outcomes {
        render_outcome(outcome, out, errors)?;
    }
    render_closing(applied, Closing::Apply, out)
}

/// One endpoint's result: a line per step done to `out`, its failure (if any) to `errors`.
pub fn render_outcome(
    outcome: &Outcome,
    out: &mut impl Write,
    errors: &mut impl Write,
) -> io::Result<()> {
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
    Ok(())
}

/// The closing line: what was done in all, or how much failed.
pub fn render_closing(applied: &Applied, closing: Closing, out: &mut impl Write) -> io::Result<()> {
    let failed = applied.failed();
    if closing == Closing::Rotation {
        let keys: Vec<String> = applied.outcomes.iter().map(|o| safe_line(&o.key)).collect();
        let keys = keys.join(", ");
        return if failed == 0 {
            writeln!(out, "Rotation complete: {keys} has a new signing secret.")
        } else {
            writeln!(out, "Rotation failed for {keys} (see the error above).")
        };
    }
    let (created, updated, deleted) = (
        applied.completed(Action::Create),
        applied.completed(Action::Update),
        applied.completed(Action::Delete),
    );
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
