//! `kayle-sync apply`: plan, show the plan, confirm, and carry it out.

use std::io::{BufRead, Write};

use anyhow::Context;

use super::args::{ApplyArgs, Format, SelectArgs};
use super::plan::{compute, options, print};
use super::session::Session;
use super::terminal::Terminal;
use super::{Outcome, UsageError};
use crate::apply::{self, Target};
use crate::model::Live;
use crate::plan::{self, Plan, PlanOptions, Replanned};
use crate::read::Planned;
use crate::report::{self, AppliedJson, Closing, EndpointResult};

pub async fn run(
    args: &ApplyArgs,
    terminal: Terminal,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<Outcome> {
    // The sandbox (taken in turn in `Session::open`) before the directory lock, in the order
    // `watch` takes them, so that neither waits for the other forever.
    let mut session = Session::open(&args.dir, err).await?;
    // Held until the apply is done: applies of one directory take turns.
    let _lock = crate::lock::lock_dir(&args.dir, err).await?;
    session
        .client
        .limit_in_flight(usize::from(args.concurrency));
    let result = plan_and_apply(&session, args, terminal, out, err).await;
    session.close().await;
    result
}

async fn plan_and_apply(
    session: &Session,
    args: &ApplyArgs,
    terminal: Terminal,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<Outcome> {
    let desired = &session.loaded.desired;
    let (Planned { plan, live, guard }, options) = match &args.plan {
        Some(path) => saved_plan(session, path, &args.select, args.force, err).await?,
        None => {
            let options = options(&args.select)?;
            (compute(session, &options, args.force).await?, options)
        }
    };
    // With --format json, stdout holds one JSON document that scripts parse: the plan with
    // what was done, written at the end; or the plan alone when nothing was carried out.
    let json = args.format == Format::Json;
    // JSON rendering writes no warnings to stderr: they are in the document.
    let plan_only =
        |out: &mut dyn Write| print(&plan, Format::Json, terminal, out, &mut std::io::sink());
    if !json {
        print(&plan, args.format, terminal, out, err)?;
    }
    if let Err(refusal) = guard {
        if json {
            plan_only(out)?;
        }
        return Err(refusal.into());
    }
    let unchanged = json.then(|| unchanged(desired, &live, &plan, &options));
    // The listing is not needed any more; at 10,000 endpoints it is megabytes.
    drop(live);
    if !plan.is_empty() && !args.auto_approve {
        // Whoever answers reads the plan: on stderr too when stdout is a file or a pipe (and,
        // with JSON, keeps its one document).
        if json || terminal.answerer_misses_stdout() {
            let color = !json && terminal.stderr_color;
            report::render_text(&plan, &mut &mut *err, color)?;
            // The text format wrote its warnings to stderr already.
            if args.format != Format::Text {
                report::render_warnings(&plan, &mut *err, color)?;
            }
        }
        // Refused (nobody can answer) or declined: stdout holds the plan alone.
        let confirmed = confirm(Closing::Apply, terminal.interactive, err);
        if !matches!(confirmed, Ok(true)) {
            if json {
                plan_only(out)?;
            }
            confirmed?;
            writeln!(err, "Apply cancelled; nothing was changed.")?;
            return Ok(Outcome::Failed);
        }
    }
    // More endpoints than requests in flight: one waiting on its sink frees its slot.
    let concurrency = usize::from(args.concurrency) * apply::ENDPOINTS_PER_REQUEST_SLOT;
    let how = Carry {
        concurrency,
        settle: args.settle,
        closing: Closing::Apply,
        live_progress: terminal.live_progress,
    };
    let Some(mut results) = unchanged else {
        if plan.is_empty() {
            return Ok(Outcome::Success);
        }
        return carry_out(session, &plan, how, out, err).await;
    };
    let carried = if plan.is_empty() {
        Ok(Outcome::Success)
    } else {
        // What was done is collected for the document; the lines and the closing line go to
        // stderr.
        let mut collect = |outcome: apply::Outcome| results.push(EndpointResult::of(outcome));
        let mut stderr = std::io::stderr();
        carry_out_with(session, &plan, how, (&mut stderr, err), &mut collect).await
    };
    match carried {
        Ok(outcome) => {
            let mut buffer = std::io::BufWriter::with_capacity(64 * 1024, &mut *out);
            report::render_apply_json(&plan, &AppliedJson::new(results), &mut buffer)?;
            buffer.flush()?;
            Ok(outcome)
        }
        // The sinks' check refused: nothing was carried out.
        Err(refused) => {
            plan_only(out)?;
            Err(refused)
        }
    }
}

/// The declared endpoints the plan leaves alone (of those `options` selects), with their
/// live ids, for the JSON document.
fn unchanged(
    desired: &crate::model::Desired,
    live: &Live,
    plan: &Plan,
    options: &PlanOptions,
) -> Vec<EndpointResult> {
    let managed = plan::managed(&desired.project, live);
    let changed: std::collections::BTreeSet<&str> =
        plan.changes.iter().map(|c| c.key.as_str()).collect();
    desired
        .endpoints
        .keys()
        .filter(|key| options.targets.is_empty() || options.targets.contains(key))
        .filter(|key| !changed.contains(key.as_str()))
        .map(|key| {
            let id = managed
                .get(key)
                .and_then(|endpoints| endpoints.first())
                .map(|endpoint| endpoint.id.as_str());
            EndpointResult::unchanged(key, id)
        })
        .collect()
}

/// How a plan is carried out.
#[derive(Debug, Clone, Copy)]
pub(super) struct Carry {
    /// How many endpoints are worked on at once.
    pub concurrency: usize,
    /// `--settle`: see [`Target::settle`].
    pub settle: std::time::Duration,
    /// What the closing line says was done.
    pub closing: Closing,
    /// Whether a live count is drawn on stderr (see [`Terminal::live_progress`]).
    pub live_progress: bool,
}

/// Carries `plan` out and prints what was done: each endpoint's line to `err` as it
/// finishes, then the closing line to `out`; failed when any change failed.
pub(super) async fn carry_out(
    session: &Session,
    plan: &Plan,
    how: Carry,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<Outcome> {
    carry_out_with(session, plan, how, (out, err), &mut drop::<apply::Outcome>).await
}

/// [`carry_out`], handing each endpoint's outcome to `keep` once it is printed.
async fn carry_out_with(
    session: &Session,
    plan: &Plan,
    how: Carry,
    (out, err): (&mut dyn Write, &mut dyn Write),
    keep: &mut dyn FnMut(apply::Outcome),
) -> anyhow::Result<Outcome> {
    keep_sink_files_out_of_git(&session.loaded.desired.project, session.sinks.git(), err)?;
    let target = Target {
        client: &session.client,
        sinks: &session.sinks,
        desired: &session.loaded.desired,
        concurrency: how.concurrency,
        late_window: session.late_window,
        settle: how.settle,
    };
    let unwritable = apply::check_sinks(&target, plan).await;
    if !unwritable.is_empty() {
        for failure in &unwritable {
            writeln!(
                err,
                "error: sink {}",
                crate::redact::safe_line(&failure.to_string())
            )?;
        }
        anyhow::bail!("a sink the plan writes to cannot be written; nothing was changed");
    }
    // A live count only for a person at a terminal: never in a CI log.
    let mut progress = report::Progress::new(err, plan.changes.len(), how.live_progress);
    let applied = apply::apply(&target, plan, &mut |event| {
        progress.event(&event);
        if let apply::Event::Finished(outcome) = event {
            keep(*outcome);
        }
    })
    .await;
    progress.finish()?;
    report::render_closing(&applied, how.closing, plan, &mut &mut *out)?;
    out.flush()?;
    Ok(if applied.failed() == 0 {
        Outcome::Success
    } else {
        Outcome::Failed
    })
}

/// Before secrets are written to a file in a git work tree, makes git ignore that file.
pub(super) fn keep_sink_files_out_of_git(
    project: &crate::model::Project,
    git: &crate::sink::GitAnswers,
    err: &mut dyn Write,
) -> anyhow::Result<()> {
    let ignored = crate::sink::ignore_sink_files(project, git)
        .context("cannot add the secret files to a .gitignore")?;
    for path in ignored {
        writeln!(
            err,
            "{} is in a git work tree and was not ignored: added it to the .gitignore next to \
             it, so that its secrets are never committed",
            crate::redact::safe_line(&path.display().to_string())
        )?;
    }
    Ok(())
}

/// Loads a plan saved by `plan --out` and makes sure it is still exactly what would be done,
/// planning again with the options (`--prune`, `--target`) it was made with.
async fn saved_plan(
    session: &Session,
    path: &std::path::Path,
    select: &SelectArgs,
    force: bool,
    err: &mut dyn Write,
) -> anyhow::Result<(Planned, PlanOptions)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the saved plan {}", path.display()))?;
    let saved = plan::from_saved(&text).with_context(|| path.display().to_string())?;
    let options = saved.options();
    if (select.prune && !options.prune)
        || (!select.targets.is_empty() && select.targets != options.targets)
    {
        return Err(UsageError(format!(
            "{}: this plan was made {}; apply --plan uses the options the plan was made with, \
             so leave out --prune and --target, or run plan again; nothing was changed.",
            path.display(),
            describe(&options)
        ))
        .into());
    }
    let fresh = compute(session, &options, force).await?;
    if saved.fingerprint != plan::fingerprint(&fresh.live) {
        anyhow::bail!(
            "{}: the live state changed since this plan was made; nothing was changed. Run plan again.",
            path.display()
        );
    }
    match plan::replanned(&saved.plan, &fresh.plan) {
        Replanned::Same => {}
        // Removing a private key nobody saw in the plan is not what was approved: it waits.
        Replanned::KeptKeysRemovable(key_ids) => writeln!(
            err,
            "{}: kept private key(s) of replaced key(s) {} may go since this plan was saved; \
             they stay in the sink until a plan shows their removal",
            path.display(),
            crate::redact::safe_line(&key_ids.join(", "))
        )?,
        Replanned::KeptKeysNeeded(key_ids) => anyhow::bail!(
            "{}: kept private key(s) of replaced key(s) {} that this plan removes are needed \
             again (a delivery encrypted to them can be sent); nothing was changed. Run plan \
             again.",
            path.display(),
            crate::redact::safe_line(&key_ids.join(", "))
        ),
        Replanned::Differs => anyhow::bail!(
            "{}: the configuration changed since this plan was made; nothing was changed. Run \
             plan again.",
            path.display()
        ),
    }
    // The same plan as the fresh one, so the same guard.
    let planned = Planned {
        plan: saved.plan,
        ..fresh
    };
    Ok((planned, options))
}

/// The options of a saved plan, in the words of the command line.
fn describe(options: &PlanOptions) -> String {
    let mut words = Vec::new();
    if options.prune {
        words.push("--prune".to_owned());
    }
    words.extend(options.targets.iter().map(|key| format!("--target {key}")));
    if words.is_empty() {
        "without --prune or --target".to_owned()
    } else {
        format!("with {}", words.join(" "))
    }
}

/// Asks on the terminal whether to go ahead with an apply or a rotation; refuses outright when
/// stdin is not one (`interactive` false).
pub(super) fn confirm(
    what: Closing,
    interactive: bool,
    err: &mut dyn Write,
) -> anyhow::Result<bool> {
    let (verb, question) = match what {
        Closing::Apply => ("apply", "Apply these changes?"),
        Closing::Rotation => ("rotate", "Rotate this signing secret?"),
    };
    if !interactive {
        anyhow::bail!(
            "refusing to {verb}: stdin is not a terminal, so nobody can confirm; pass \
             --auto-approve to {verb} without asking"
        );
    }
    write!(err, "\n{question} Only 'yes' is accepted: ")?;
    err.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim() == "yes")
}
