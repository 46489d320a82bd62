//! `watch`: file events -> debounce -> reconcile, one reconcile at a time, on every change,
//! on an interval (drift correction) and after failures (backoff), until a shutdown signal.
//!
//! Modeled on a kube-rs controller: the reconcile ([`reconcile`]) is idempotent and loads the
//! whole directory each time; one function ([`policy::error_policy`]) decides what follows a
//! failure; events that arrive during a reconcile wait in the channel and become one more.

mod files;
pub mod health;
mod log;
mod policy;
mod reconcile;

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};

pub use files::{DEBOUNCE, FilesError, is_noise};
pub use health::Metrics;
pub use log::{Log, Trigger, describe};
pub use policy::{FIRST_BACKOFF, Next, error_policy, jitter};
pub use reconcile::{Changes, Done, ReconcileError, Reconciler, Snapshot, api_changed};

use crate::api::Client;
use crate::model::ApiConfig;

/// How often the directory's symlinks are re-resolved, in case a swap raised no event.
const SYMLINK_POLL: Duration = Duration::from_secs(2);

/// What `kayle-sync watch` was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    pub dir: PathBuf,
    pub interval: Duration,
    pub dry_run: bool,
    pub prune: bool,
    pub force: bool,
    pub concurrency: usize,
}

/// Why watching stopped early.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The directory could not be watched.
    #[error(transparent)]
    Files(#[from] FilesError),
    /// The log could not be written (stdout closed).
    #[error("writing the log: {0}")]
    Log(#[from] std::io::Error),
}

/// The loop's memory between reconciles.
struct State {
    /// The content last reconciled; a change event with the same digest is ignored.
    last_digest: Option<[u8; 32]>,
    failures: u32,
    retry_at: Option<Instant>,
    next_tick: Instant,
    warned_api: bool,
}

/// Reconciles `options.dir` now and then whenever it changes, every `options.interval` and
/// after failures, until `shutdown` turns true. A reconcile in flight is always finished.
///
/// `first_api` is the API the connection behind `client` was made for; when the project file
/// later names another, the log says so and the first connection stays in use.
pub async fn run(
    options: &Options,
    client: &Client,
    first_api: &ApiConfig,
    log: &mut Log,
    metrics: &Metrics,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), WatchError> {
    let (notices, mut incoming) = mpsc::unbounded_channel();
    let mut files = files::FileWatcher::start(&options.dir, notices)?;
    let reconciler = Reconciler {
        client,
        dry_run: options.dry_run,
        prune: options.prune,
        force: options.force,
        concurrency: options.concurrency,
    };
    let mut state = State {
        last_digest: None,
        failures: 0,
        retry_at: None,
        next_tick: Instant::now() + jitter(options.interval),
        warned_api: false,
    };
    let mut poll = tokio::time::interval(SYMLINK_POLL);
    poll.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut pending = Some((Trigger::Start, None));
    loop {
        if let Some((trigger, snapshot)) = pending.take() {
            let snapshot = snapshot.unwrap_or_else(|| Snapshot::load(&options.dir));
            reconcile_once(
                &reconciler,
                options,
                first_api,
                trigger,
                snapshot,
                &mut state,
                log,
                metrics,
            )
            .await?;
            if *shutdown.borrow() {
                break;
            }
        }
        let far = Instant::now() + Duration::from_secs(86_400);
        tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            Some(notice) = incoming.recv() => {
                let mut paths = Vec::new();
                take_notice(notice, &mut paths, log)?;
                while let Ok(notice) = incoming.try_recv() {
                    take_notice(notice, &mut paths, log)?;
                }
                let moved = retarget(&mut files, log)?;
                let relevant = files.relevant(&paths);
                if moved || !relevant.is_empty() {
                    pending = changed(&options.dir, &relevant, moved, &state, log)?;
                }
            }
            _ = tokio::time::sleep_until(state.retry_at.unwrap_or(far)), if state.retry_at.is_some() => {
                pending = Some((Trigger::Retry, None));
            }
            _ = tokio::time::sleep_until(state.next_tick) => {
                pending = Some((Trigger::Interval, None));
            }
            _ = poll.tick() => {
                if retarget(&mut files, log)? {
                    pending = changed(&options.dir, &[], true, &state, log)?;
                }
            }
        }
    }
    log.event("stop", "signal received; no reconcile in flight; exiting")?;
    Ok(())
}

/// Loads the directory after file events; a reconcile follows only when the content changed.
fn changed(
    dir: &Path,
    relevant: &[PathBuf],
    moved: bool,
    state: &State,
    log: &mut Log,
) -> Result<Option<(Trigger, Option<Snapshot>)>, WatchError> {
    let snapshot = Snapshot::load(dir);
    if state.last_digest == Some(snapshot.digest) {
        return Ok(None);
    }
    let mut shown: Vec<String> = relevant
        .iter()
        .take(5)
        .map(|p| match p.as_os_str().is_empty() {
            true => ".".to_owned(),
            false => p.display().to_string(),
        })
        .collect();
    if relevant.len() > 5 {
        shown.push(format!("and {} more", relevant.len() - 5));
    }
    if moved {
        shown.push("(the directory's symlink now leads elsewhere)".to_owned());
    }
    log.event("change", &shown.join(", "))?;
    Ok(Some((Trigger::Change, Some(snapshot))))
}

fn take_notice(
    notice: files::Notice,
    paths: &mut Vec<PathBuf>,
    log: &mut Log,
) -> Result<(), WatchError> {
    match notice {
        Ok(batch) => paths.extend(batch),
        Err(errors) => {
            for error in errors {
                log.event("warning", &format!("file watch: {error}"))?;
            }
        }
    }
    Ok(())
}

fn retarget(files: &mut files::FileWatcher, log: &mut Log) -> Result<bool, WatchError> {
    match files.retarget() {
        Ok(moved) => Ok(moved),
        Err(error) => {
            log.event("warning", &error.to_string())?;
            Ok(true)
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn reconcile_once(
    reconciler: &Reconciler<'_>,
    options: &Options,
    first_api: &ApiConfig,
    trigger: Trigger,
    snapshot: Snapshot,
    state: &mut State,
    log: &mut Log,
    metrics: &Metrics,
) -> Result<(), WatchError> {
    if let Ok(loaded) = &snapshot.loaded {
        if state.last_digest != Some(snapshot.digest) {
            for warning in &loaded.warnings {
                log.event("warning", &warning.to_string())?;
            }
        }
        let moved = api_changed(first_api, &loaded.desired.project.api);
        if moved && !state.warned_api {
            log.event(
                "warning",
                "the project file names a different API (url or token_env) than at start; \
                 watch keeps using the connection made at start: restart kayle-sync to switch",
            )?;
        }
        state.warned_api = moved;
    }
    state.last_digest = Some(snapshot.digest);
    let (result, applied) = reconciler.reconcile(&snapshot).await;
    let drift = trigger == Trigger::Interval && matches!(result, Ok(Done::Applied(_)));
    metrics.record(result.is_ok(), drift);
    let retry = match &result {
        Ok(_) => {
            state.failures = 0;
            None
        }
        Err(error) => {
            state.failures += 1;
            match error_policy(error, state.failures, options.interval) {
                Next::Retry(wait) => Some(jitter(wait)),
                Next::AwaitChange => None,
            }
        }
    };
    let now = Instant::now();
    state.retry_at = retry.map(|wait| now + wait);
    state.next_tick = now + jitter(options.interval);
    log.outcome(trigger, &result, &applied, retry)?;
    Ok(())
}
