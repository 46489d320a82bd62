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
mod status;

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};

pub use files::{DEBOUNCE, FilesError, is_noise};
pub use health::Metrics;
pub use log::{Log, LogEvent, Trigger, describe};
pub use policy::{FIRST_BACKOFF, Next, Stuck, error_policy, jitter};
pub use reconcile::{Changes, Done, ReconcileError, Reconciler, Snapshot, api_changed};
pub use status::{RefreshOptions, StatusFigures, refresh_forever};

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
    /// See [`crate::apply::Target::late_window`].
    pub late_window: Duration,
    /// How long a replaced key's private half is kept.
    pub kept_keys: crate::read::Retention,
    /// See [`crate::apply::Target::settle`].
    pub settle: Duration,
    /// Reconcile with `--verify-secrets` this often (`None`: never).
    pub verify_interval: Option<Duration>,
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

/// The loop's parts and its memory between reconciles.
struct Controller<'a> {
    options: &'a Options,
    reconciler: Reconciler<'a>,
    first_api: &'a ApiConfig,
    log: &'a mut Log,
    metrics: &'a Metrics,
    /// The content last reconciled; a change event with the same digest is ignored.
    last_digest: Option<[u8; 32]>,
    failures: u32,
    retry_at: Option<Instant>,
    next_tick: Instant,
    /// When the next reconcile that verifies secrets is due (`--verify-interval`).
    next_verify: Option<Instant>,
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
    let mut controller = Controller {
        options,
        reconciler: Reconciler {
            client,
            dry_run: options.dry_run,
            prune: options.prune,
            force: options.force,
            concurrency: options.concurrency,
            late_window: options.late_window,
            settle: options.settle,
            kept_keys: options.kept_keys,
        },
        first_api,
        log,
        metrics,
        last_digest: None,
        failures: 0,
        retry_at: None,
        next_tick: Instant::now() + jitter(options.interval),
        next_verify: options
            .verify_interval
            .map(|interval| Instant::now() + jitter(interval)),
        warned_api: false,
    };
    let mut poll = tokio::time::interval(SYMLINK_POLL);
    poll.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut pending = Some((Trigger::Start, None));
    loop {
        if let Some((trigger, snapshot)) = pending.take() {
            let snapshot = snapshot.unwrap_or_else(|| Snapshot::load(&options.dir));
            controller.reconcile(trigger, snapshot).await?;
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
                controller.take_notice(notice, &mut paths)?;
                while let Ok(notice) = incoming.try_recv() {
                    controller.take_notice(notice, &mut paths)?;
                }
                let moved = controller.retarget(&mut files)?;
                let relevant = files.relevant(&paths);
                if moved || !relevant.is_empty() {
                    pending = controller.changed(&relevant, moved)?;
                }
            }
            _ = tokio::time::sleep_until(controller.retry_at.unwrap_or(far)),
                if controller.retry_at.is_some() => {
                pending = Some((Trigger::Retry, None));
            }
            _ = tokio::time::sleep_until(controller.next_tick) => {
                pending = Some((Trigger::Interval, None));
            }
            _ = tokio::time::sleep_until(controller.next_verify.unwrap_or(far)),
                if controller.next_verify.is_some() => {
                pending = Some((Trigger::Verify, None));
            }
            _ = poll.tick() => {
                if controller.retarget(&mut files)? {
                    pending = controller.changed(&[], true)?;
                }
            }
        }
    }
    controller.log.event(
        LogEvent::Stop,
        "signal received; no reconcile was cut short; exiting",
    )?;
    Ok(())
}

impl Controller<'_> {
    /// Loads the directory after file events; a reconcile follows only when the content
    /// changed.
    fn changed(
        &mut self,
        relevant: &[PathBuf],
        moved: bool,
    ) -> Result<Option<(Trigger, Option<Snapshot>)>, WatchError> {
        let snapshot = Snapshot::load(&self.options.dir);
        if self.last_digest == Some(snapshot.digest) {
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
            shown.push("(the directory was replaced, or the symlink to it swapped)".to_owned());
        }
        self.log.event(LogEvent::Change, &shown.join(", "))?;
        Ok(Some((Trigger::Change, Some(snapshot))))
    }

    fn take_notice(
        &mut self,
        notice: files::Notice,
        paths: &mut Vec<PathBuf>,
    ) -> Result<(), WatchError> {
        match notice {
            Ok(batch) => paths.extend(batch),
            Err(errors) => {
                for error in errors {
                    self.log
                        .event(LogEvent::Warning, &format!("file watch: {error}"))?;
                }
            }
        }
        Ok(())
    }

    fn retarget(&mut self, files: &mut files::FileWatcher) -> Result<bool, WatchError> {
        match files.retarget() {
            Ok(moved) => Ok(moved),
            Err(error) => {
                self.log.event(LogEvent::Warning, &error.to_string())?;
                Ok(true)
            }
        }
    }

    /// Runs one reconcile of `snapshot` to the end, logs it, and schedules what follows.
    async fn reconcile(&mut self, trigger: Trigger, snapshot: Snapshot) -> Result<(), WatchError> {
        if let Ok(loaded) = &snapshot.loaded {
            if self.last_digest != Some(snapshot.digest) {
                for warning in &loaded.warnings {
                    self.log.event(LogEvent::Warning, &warning.to_string())?;
                }
            }
            let moved = api_changed(self.first_api, &loaded.desired.project.api);
            if moved && !self.warned_api {
                self.log.event(
                    LogEvent::Warning,
                    "the project file names a different API (url or token_env) than at start; \
                     watch keeps using the connection made at start: restart kayle-sync to switch",
                )?;
            }
            self.warned_api = moved;
        }
        self.last_digest = Some(snapshot.digest);
        // Takes turns with `apply` and `rotate` of the same directory: they write its sinks.
        let mut waiting = Vec::new();
        let lock = crate::lock::lock_dir(&self.options.dir, &mut waiting).await;
        if !waiting.is_empty() {
            self.log
                .event(LogEvent::Lock, String::from_utf8_lossy(&waiting).trim())?;
        }
        let verify = trigger == Trigger::Verify;
        // Each endpoint's result is logged as it finishes; a log that cannot be written
        // stops the watch once the reconcile is done.
        let mut unlogged = None;
        let log = &mut *self.log;
        let (result, applied) = self
            .reconciler
            .reconcile(&snapshot, verify, &mut |event| {
                let kind = match event {
                    crate::apply::Event::GeneratingKey { .. } => LogEvent::Key,
                    crate::apply::Event::Finished(_) => LogEvent::Endpoint,
                };
                if let Err(err) = log.event(kind, &crate::report::event_line(event)) {
                    unlogged.get_or_insert(err);
                }
            })
            .await;
        drop(lock);
        if let Some(err) = unlogged {
            return Err(err.into());
        }
        let drift = matches!(trigger, Trigger::Interval | Trigger::Verify)
            && matches!(result, Ok(Done::Applied(_)));
        self.metrics.record(result.is_ok(), drift);
        let next = match &result {
            Ok(_) => {
                self.failures = 0;
                None
            }
            Err(error) => {
                self.failures += 1;
                match error_policy(error, self.failures, self.options.interval) {
                    Next::Retry(wait) => Some(Next::Retry(jitter(wait))),
                    stuck @ Next::AwaitChange(_) => {
                        // Backoff counts retryable failures only.
                        self.failures = 0;
                        Some(stuck)
                    }
                }
            }
        };
        let now = Instant::now();
        self.retry_at = match next {
            Some(Next::Retry(wait)) => Some(now + wait),
            _ => None,
        };
        self.next_tick = now + jitter(self.options.interval);
        if verify || self.next_verify.is_none() {
            self.next_verify = self
                .options
                .verify_interval
                .map(|interval| now + jitter(interval));
        }
        self.log.outcome(trigger, &result, &applied, next)?;
        Ok(())
    }
}
