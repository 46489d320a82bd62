//! `kayle-sync plan`: read the live state and print what apply would change.

use std::io::Write;

use anyhow::Context;

use super::args::{Format, PlanArgs, SelectArgs};
use super::session::Session;
use super::terminal::Terminal;
use super::{Outcome, UsageError};
use crate::model::{Desired, Live};
use crate::plan::{self, Plan, PlanOptions};
use crate::read::{self, Planned};
use crate::report;

pub async fn run(
    args: &PlanArgs,
    terminal: Terminal,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<Outcome> {
    let session = Session::open(&args.dir, err).await?;
    let result = plan_and_print(&session, args, terminal, out, err).await;
    session.close().await;
    result
}

async fn plan_and_print(
    session: &Session,
    args: &PlanArgs,
    terminal: Terminal,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<Outcome> {
    let options = options(&args.select)?;
    let Planned { plan, live, guard } = compute(session, &options, false).await?;
    print(&plan, args.format, terminal, out, err)?;
    if let Err(refusal) = guard {
        writeln!(
            err,
            "warning: apply would refuse this plan: {}",
            crate::redact::safe_line(&refusal.to_string())
        )?;
    }
    if let Some(path) = &args.out {
        let text = plan::to_saved(&plan, &plan::fingerprint(&live), &options);
        std::fs::write(path, text)
            .with_context(|| format!("writing the plan to {}", path.display()))?;
        let word =
            |path: &std::path::Path| crate::manifest::shell_word(&path.display().to_string());
        writeln!(
            err,
            "Saved the plan to {}; apply it with `kayle-sync apply --plan {} {}`.",
            path.display(),
            word(path),
            word(&args.dir)
        )?;
    }
    Ok(if args.detailed_exitcode && !plan.is_empty() {
        Outcome::ChangesPending
    } else {
        Outcome::Success
    })
}

/// The planner's options as the command line gives them.
pub(super) fn options(select: &SelectArgs) -> anyhow::Result<PlanOptions> {
    check_targets(&select.targets)?;
    Ok(PlanOptions {
        prune: select.prune,
        targets: select.targets.clone(),
        verify_secrets: select.verify_secrets,
    })
}

/// Reads the live state and plans against it; the guard is checked as `force` says.
pub(super) async fn compute(
    session: &Session,
    options: &PlanOptions,
    force: bool,
) -> anyhow::Result<Planned> {
    let desired: &Desired = &session.loaded.desired;
    let kept = read::Retention::from_env().map_err(anyhow::Error::msg)?;
    let mut planned = read::plan_live(
        &session.client,
        desired,
        &session.sinks,
        options,
        force,
        kept,
    )
    .await
    .context("reading the live state")?;
    check_targets_exist(&options.targets, desired, &planned.live)?;
    // Said by the plan, and so in a pull request's comment, before apply refuses the file
    // (watch has no comment to make: its apply's sink check refuses it). A git process per
    // file sink, so not in the stage watch runs every round; apply's checks reuse the answer.
    planned.plan.warnings.extend(
        crate::sink::tracked_sink_files(&desired.project, session.sinks.git())
            .into_iter()
            .map(|(sink, problem)| format!("sink {sink}: {problem}")),
    );
    Ok(planned)
}

/// A `--target` must at least be shaped like a key.
pub(super) fn check_targets(targets: &[String]) -> Result<(), UsageError> {
    match targets
        .iter()
        .find(|target| !crate::model::is_valid_key(target))
    {
        Some(target) => Err(UsageError(format!(
            "--target {target}: not an endpoint key (lowercase letters, digits and `-`)"
        ))),
        None => Ok(()),
    }
}

/// A `--target` that names no declared or managed endpoint is a mistake (a typo would
/// otherwise plan nothing and look like `No changes.`): refused, with the nearest key.
fn check_targets_exist(
    targets: &[String],
    desired: &Desired,
    live: &Live,
) -> Result<(), UsageError> {
    let managed = plan::managed(&desired.project, live);
    let known: Vec<&str> = desired
        .endpoints
        .keys()
        .chain(managed.keys())
        .map(String::as_str)
        .collect();
    check_targets_known(targets, &known)
}

/// Refuses the first `--target` that is not among the `known` keys, with the nearest one.
pub(super) fn check_targets_known(targets: &[String], known: &[&str]) -> Result<(), UsageError> {
    let Some(unknown) = targets
        .iter()
        .find(|target| !known.contains(&target.as_str()))
    else {
        return Ok(());
    };
    let suggestion = match crate::manifest::did_you_mean(unknown, known) {
        Some(key) => format!("; did you mean --target {key}?"),
        None => String::new(),
    };
    Err(UsageError(format!(
        "--target {unknown} names no declared or managed endpoint{suggestion}"
    )))
}

/// Prints a plan in the chosen format to `out`; in text, its warnings to `err`.
pub(super) fn print(
    plan: &Plan,
    format: Format,
    terminal: Terminal,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<()> {
    // Streamed through a buffer, not rendered whole first: the text of 10,000 creates is
    // megabytes, and the plan is already in memory once.
    let mut buffer = std::io::BufWriter::with_capacity(64 * 1024, &mut *out);
    match format {
        Format::Text => report::render_text(plan, &mut buffer, terminal.stdout_color)?,
        Format::Json => report::render_json(plan, &mut buffer)?,
        Format::Markdown => report::render_markdown(plan, &mut buffer)?,
    }
    buffer.flush()?;
    drop(buffer);
    out.flush()?;
    if format == Format::Text {
        // Warnings are not the plan: stderr, so that stdout can be saved or piped as is.
        report::render_warnings(plan, err, terminal.stderr_color)?;
    }
    Ok(())
}
