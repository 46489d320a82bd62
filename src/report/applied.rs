//! Renders what an apply did: one line per endpoint as each finishes (the way Terraform says
//! "aws_x.y: Creation complete"), the notice before a slow key generation, and the closing
//! line.

use std::io::{self, Write};

use crate::apply::{Applied, Event, Outcome};
use crate::plan::{Action, Plan};
use crate::redact::{safe_line, safe_lines};

/// What the changes carried out were, for the closing line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closing {
    /// An apply of a plan: counts of what was created, updated and deleted.
    Apply,
    /// `kayle-sync rotate`: one endpoint's secret replaced.
    Rotation,
}

/// One endpoint's result as one line: `orders (whe_1): Creation complete: created …; enabled`,
/// or `… Creation FAILED after …: why`. Ids come from the server and failures can quote it:
/// everything is made safe to show; an error's own continuation lines are indented.
pub fn outcome_line(outcome: &Outcome) -> String {
    let id = outcome.endpoint_id.as_deref().unwrap_or("-");
    let endpoint = format!("{} ({id})", outcome.key);
    let what = match outcome.action {
        Action::Create => "Creation",
        Action::Update => "Update",
        Action::Delete => "Deletion",
    };
    let steps = outcome
        .done
        .iter()
        .map(|step| step.to_string())
        .collect::<Vec<_>>()
        .join("; ");
    let line = match (&outcome.error, steps.is_empty()) {
        (None, true) => format!("{endpoint}: {what} complete"),
        (None, false) => format!("{endpoint}: {what} complete: {steps}"),
        (Some(error), true) => format!("{endpoint}: {what} FAILED: {error:#}"),
        (Some(error), false) => format!("{endpoint}: {what} FAILED after {steps}: {error:#}"),
    };
    match outcome.error {
        None => safe_line(&line),
        Some(_) => safe_lines(&line).replace('\n', "\n    "),
    }
}

/// The line for one event of an apply: an endpoint's result, or the notice that a key is
/// about to be generated.
pub fn event_line(event: &Event) -> String {
    match event {
        Event::GeneratingKey { key, .. } => safe_line(&format!(
            "generating a {}-bit RSA key for {key}; this takes a few seconds",
            crate::apply::keys::GENERATED_KEY_BITS
        )),
        Event::Finished(outcome) => outcome_line(outcome),
    }
}

/// The closing line: what was done in all, or how much failed. A rotation names its endpoint,
/// the one key of `plan`.
pub fn render_closing(
    applied: &Applied,
    closing: Closing,
    plan: &Plan,
    out: &mut impl Write,
) -> io::Result<()> {
    let failed = applied.failed();
    if closing == Closing::Rotation {
        let keys: Vec<String> = plan.changes.iter().map(|c| safe_line(&c.key)).collect();
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
            applied.total()
        )
    }
}
