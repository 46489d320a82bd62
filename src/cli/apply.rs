//! `kayle-sync apply`: plan, show the plan, confirm, and carry it out.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Context;

use super::Outcome;
use super::args::{ApplyArgs, ColorChoice};
use super::plan::{compute, print};
use super::session::Session;
use crate::apply::{self, Target};
use crate::model::Live;
use crate::plan::{self, Plan};
use crate::report;

pub async fn run(
    args: &ApplyArgs,
    color: ColorChoice,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<Outcome> {
    // Held until the apply is done: applies of one directory take turns.
    let _lock = super::session::lock_dir(&args.dir, err).await?;
    let mut session = Session::open(&args.dir, err).await?;
    session
        .client
        .limit_in_flight(usize::from(args.concurrency));
    let result = plan_and_apply(&session, args, color, out, err).await;
    session.close().await;
    result
}

async fn plan_and_apply(
    session: &Session,
    args: &ApplyArgs,
    color: ColorChoice,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<Outcome> {
    let desired = &session.loaded.desired;
    let (fresh, live) = compute(session, &args.select).await?;
    let plan = match &args.plan {
        Some(path) => saved_plan(path, &fresh, &live)?,
        None => fresh,
    };
    print(&plan, args.format, color, out)?;
    plan::check_guard(&plan, desired, &live, args.force)?;
    // The listing is not needed any more; at 10,000 endpoints it is megabytes.
    drop(live);
    if plan.is_empty() {
        return Ok(Outcome::Success);
    }
    if !args.auto_approve && !confirm(err)? {
        writeln!(err, "Apply cancelled; nothing was changed.")?;
        return Ok(Outcome::Failed);
    }
    let target = Target {
        client: &session.client,
        sinks: &session.sinks,
        desired,
        // More endpoints than requests in flight: one waiting on its sink frees its slot.
        concurrency: usize::from(args.concurrency) * apply::ENDPOINTS_PER_REQUEST_SLOT,
    };
    let applied = apply::apply(&target, &plan).await;
    let mut buffer = std::io::BufWriter::with_capacity(64 * 1024, &mut *out);
    report::render_applied(&applied, &mut buffer)?;
    buffer.flush()?;
    Ok(if applied.failed() == 0 {
        Outcome::Success
    } else {
        Outcome::Failed
    })
}

/// Loads a plan saved by `plan --out` and makes sure it is still exactly what would be done.
fn saved_plan(path: &std::path::Path, fresh: &Plan, live: &Live) -> anyhow::Result<Plan> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the saved plan {}", path.display()))?;
    let saved = plan::from_saved(&text).with_context(|| path.display().to_string())?;
    if saved.fingerprint != plan::fingerprint(live) {
        anyhow::bail!(
            "{}: the live state changed since this plan was made; nothing was changed. Run plan again.",
            path.display()
        );
    }
    if saved.plan != *fresh {
        anyhow::bail!(
            "{}: the configuration changed since this plan was made (or other options were \
             given); nothing was changed. Run plan again.",
            path.display()
        );
    }
    Ok(saved.plan)
}

/// Asks on the terminal; refuses outright when stdin is not one.
fn confirm(err: &mut dyn Write) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "refusing to apply: stdin is not a terminal, so nobody can confirm; pass \
             --auto-approve to apply without asking"
        );
    }
    write!(err, "\nApply these changes? Only 'yes' is accepted: ")?;
    err.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim() == "yes")
}
