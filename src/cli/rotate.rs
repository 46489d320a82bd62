//! `kayle-sync rotate KEY`: rotate an endpoint's signing secret now and write the new one to
//! its sink, through the same step a bumped `signing_secret.rotation` runs.

use std::io::Write;

use anyhow::Context;

use super::Outcome;
use super::apply::{Carry, carry_out, confirm};
use super::args::RotateArgs;
use super::session::Session;
use super::terminal::Terminal;
use crate::model::{Live, SecretState};
use crate::plan::{self, Action, Change, Plan, SecretStep};
use crate::report::Closing;

pub async fn run(
    args: &RotateArgs,
    terminal: Terminal,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<Outcome> {
    // As apply: the sandbox first, then the directory lock.
    let session = Session::open(args.dir(), err).await?;
    // Takes turns with applies of the same directory: both write its sinks.
    let _lock = crate::lock::lock_dir(args.dir(), err).await?;
    let result = rotate(&session, args, terminal, out, err).await;
    session.close().await;
    result
}

async fn rotate(
    session: &Session,
    args: &RotateArgs,
    terminal: Terminal,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<Outcome> {
    let desired = &session.loaded.desired;
    let key = &args.key;
    let wanted = desired
        .endpoints
        .get(key)
        .ok_or_else(|| super::undeclared_key(key, args.dir(), desired.endpoints.keys()))?;
    let live = Live {
        endpoints: session.client.list_endpoints().await?,
        ..Live::default()
    };
    let managed = plan::managed(&desired.project, &live);
    let endpoint = managed
        .get(key)
        .and_then(|endpoints| endpoints.first())
        .with_context(|| format!("{key} has no live endpoint yet; run apply first"))?;
    let spec = &wanted.signing_secret;
    let what = format!(
        "Rotating the signing secret of {key} ({}): the old secret stops working at once; the \
         new one goes to sink {} as {} (sensitive).",
        crate::redact::safe_line(&endpoint.id),
        spec.sink,
        spec.name
    );
    writeln!(out, "{what}")?;
    // Whoever answers reads what is asked, also when stdout is a file or a pipe.
    if !args.auto_approve && terminal.answerer_misses_stdout() {
        writeln!(err, "{what}")?;
    }
    if !args.auto_approve && !confirm(Closing::Rotation, terminal.interactive, err)? {
        writeln!(err, "Rotation cancelled; nothing was changed.")?;
        return Ok(Outcome::Failed);
    }
    let state = plan::secret_state(&desired.project, endpoint);
    let applied_rotation = state.rotation();
    let unsettled_until = match state {
        SecretState::Unsettled { until, .. } => Some(until),
        SecretState::Settled { .. } => None,
    };
    let plan = Plan {
        changes: vec![Change {
            key: key.clone(),
            action: Action::Update,
            endpoint_id: Some(endpoint.id.clone()),
            reason: Some(plan::ChangeReason::RotateCommand),
            fields: Vec::new(),
            secret: Some(SecretStep::Rotate {
                sink: spec.sink.clone(),
                name: spec.name.clone(),
                from: applied_rotation,
                to: applied_rotation,
                unsettled_until,
                reload: desired.project.reloads.contains_key(&spec.sink),
            }),
            keys: Vec::new(),
        }],
        ..Plan::default()
    };
    let how = Carry {
        concurrency: 1,
        settle: args.settle,
        closing: Closing::Rotation,
        live_progress: terminal.live_progress,
    };
    carry_out(session, &plan, how, out, err).await
}
