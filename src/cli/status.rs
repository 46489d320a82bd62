//! `kayle-sync status [DIR]`: each endpoint's key, sink secret and deliveries over a window,
//! as a table or JSON; exits 1 when any endpoint has a problem.

use std::io::Write;

use anyhow::Context;

use super::Outcome;
use super::args::{LineFormat, StatusArgs};
use super::plan::{check_targets, check_targets_known};
use super::session::Session;
use crate::report;
use crate::status;

pub async fn run(
    args: &StatusArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<Outcome> {
    check_targets(&args.targets)?;
    let session = Session::open(&args.dir, err).await?;
    let result = report_status(&session, args, out).await;
    session.close().await;
    result
}

async fn report_status(
    session: &Session,
    args: &StatusArgs,
    out: &mut dyn Write,
) -> anyhow::Result<Outcome> {
    let desired = &session.loaded.desired;
    let options = status::Options {
        window: args.since,
        targets: args.targets.clone(),
        verify_secrets: args.verify_secrets,
        concurrency: crate::read::READ_CONCURRENCY,
    };
    let report = status::read(&session.client, desired, &session.sinks, &options)
        .await
        .context("reading the status")?;
    let known: Vec<&str> = desired
        .endpoints
        .keys()
        .chain(report.endpoints.iter().map(|e| &e.key))
        .map(String::as_str)
        .collect();
    check_targets_known(&args.targets, &known)?;
    match args.format {
        LineFormat::Text => report::render_status_text(&report, out)?,
        LineFormat::Json => report::render_status_json(&report, out)?,
    }
    Ok(if report.healthy {
        Outcome::Success
    } else {
        Outcome::Failed
    })
}
