//! `kayle-sync watch`: connect once, then hand the directory to the reconcile loop until
//! SIGINT or SIGTERM.

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};

use super::Outcome;
use super::args::{LineFormat, WatchArgs};
use super::session::Connection;
use crate::manifest;
use crate::watch::{self, Log, LogEvent, Metrics, WatchError, health};

pub async fn run(args: &WatchArgs, err: &mut dyn Write) -> anyhow::Result<Outcome> {
    // Listen before anything else, so a signal is never missed between start and the loop.
    let shutdown = shutdown_on_signal()?;
    let project = match manifest::load_project(&args.dir) {
        Ok(project) => project,
        Err(diagnostics) => {
            writeln!(
                err,
                "{}",
                crate::redact::safe_lines(&diagnostics.to_string())
            )?;
            anyhow::bail!(
                "{}: the project file is invalid; watch needs it to reach the API",
                args.dir.display()
            );
        }
    };
    let git = crate::sink::GitAnswers::default();
    super::apply::keep_sink_files_out_of_git(&project, &git, err)?;
    let mut connection = Connection::open(&project, &args.dir, err).await?;
    // As apply: --concurrency bounds requests in flight, and more endpoints than that are
    // worked on so that one waiting on its sink does not leave a slot idle.
    connection
        .client
        .limit_in_flight(usize::from(args.concurrency));
    let mut log = Log::new(Box::new(std::io::stdout()), args.format == LineFormat::Json);
    let metrics = Arc::new(Metrics::default());
    if let Some(addr) = args.health_addr {
        let bound = health::serve(addr, Arc::clone(&metrics))
            .await
            .with_context(|| format!("--health-addr {addr}: cannot listen"))?;
        log.event(
            LogEvent::Health,
            &format!("serving /healthz and /metrics on http://{bound}"),
        )
        .map_err(WatchError::Log)?;
    }
    let options = watch::Options {
        dir: args.dir.clone(),
        interval: args.interval,
        dry_run: args.dry_run,
        prune: args.prune,
        force: args.force,
        concurrency: usize::from(args.concurrency) * crate::apply::ENDPOINTS_PER_REQUEST_SLOT,
        late_window: connection.late_window,
        // Read once: a value that does not parse stops watch at start, as it stops plan.
        kept_keys: crate::read::Retention::from_env().map_err(anyhow::Error::msg)?,
        settle: args.settle,
        verify_interval: args.verify_interval,
    };
    log.event(
        LogEvent::Start,
        &format!(
            "watching {} (interval {}{})",
            args.dir.display(),
            humantime::format_duration(args.interval),
            if args.dry_run { ", dry run" } else { "" }
        ),
    )
    .map_err(WatchError::Log)?;
    let watching = watch::run(
        &options,
        &connection.client,
        &project.api,
        &mut log,
        &metrics,
        shutdown,
    );
    let result = match args.health_addr {
        // Read-only, so it runs beside the reconciles rather than taking turns with them;
        // it ends when watching does.
        Some(_) => {
            let refresh = watch::RefreshOptions {
                interval: args.status_interval,
                window: args.status_window,
                verify_interval: args.verify_interval,
                concurrency: usize::from(args.concurrency),
            };
            let refreshing =
                watch::refresh_forever(&args.dir, &connection.client, &refresh, &metrics.status);
            tokio::select! {
                result = watching => result,
                () = refreshing => unreachable!("the status refresh never ends"),
            }
        }
        None => watching.await,
    };
    connection.close().await;
    result?;
    Ok(Outcome::Success)
}

/// Turns true on the first SIGINT or SIGTERM; a second one ends the process at once.
fn shutdown_on_signal() -> anyhow::Result<tokio::sync::watch::Receiver<bool>> {
    let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    let (sender, receiver) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        let _ = sender.send(true);
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        eprintln!("second signal: exiting without finishing the reconcile in flight");
        std::process::exit(130);
    });
    Ok(receiver)
}
