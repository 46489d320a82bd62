//! The reconcile loop itself: when to reconcile (start, change, interval, verify, retry), one
//! reconcile at a time, and what to log. Generic over the reconcile and the file watch, so its
//! timing can be tested in-process with tokio's paused clock instead of real sleeps.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};

use super::files::{FilesError, Notice};
use super::log::{Log, LogEvent, Trigger};
use super::policy::{Next, error_policy, jitter};
use super::reconcile::{Changes, Done, ReconcileError, Snapshot, api_changed};
use super::{Metrics, Options, WatchError};
use crate::model::ApiConfig;

/// How often the directory's symlinks are re-resolved, in case a swap raised no event.
const SYMLINK_POLL: Duration = Duration::from_secs(2);

/// One reconcile of a snapshot, as the loop sees it: [`super::Reconciler`] against the API,
/// or a scripted stand-in when the loop itself is under test.
pub(crate) trait Reconcile {
    /// Plans `snapshot` against the live state and applies it, handing `report` each event
    /// as it happens; returns the outcome and what was applied even when it failed. With
    /// `verify_secrets`, sinks' secrets are compared with the API's.
    async fn reconcile(
        &self,
        snapshot: &Snapshot,
        verify_secrets: bool,
        report: &mut dyn FnMut(&crate::apply::Event),
    ) -> (Result<Done, ReconcileError>, Changes);
}

/// What the loop asks of the file watch besides its notices (which come over a channel).
pub(crate) trait Watched {
    /// Checks where the directory leads now; true when the watch moved to a new target.
    fn retarget(&mut self) -> Result<bool, FilesError>;
    /// The paths of a batch that may change the configuration, relative to the directory.
    fn relevant(&self, paths: &[PathBuf]) -> Vec<PathBuf>;
}

/// The loop's parts and its memory between reconciles.
pub(crate) struct Controller<'a, R> {
    options: &'a Options,
    reconciler: R,
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

impl<'a, R: Reconcile> Controller<'a, R> {
    /// A controller whose first interval and verify reconciles are due a (jittered) interval
    /// from now.
    pub(crate) fn new(
        options: &'a Options,
        reconciler: R,
        first_api: &'a ApiConfig,
        log: &'a mut Log,
        metrics: &'a Metrics,
    ) -> Self {
        Controller {
            options,
            reconciler,
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
        }
    }

    /// Reconciles at start, then on each relevant notice from `incoming`, interval, verify
    /// interval and retry, until `shutdown` turns true. A reconcile in flight is finished.
    pub(crate) async fn run(
        mut self,
        files: &mut impl Watched,
        incoming: &mut mpsc::UnboundedReceiver<Notice>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), WatchError> {
        let mut poll = tokio::time::interval(SYMLINK_POLL);
        poll.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut pending = Some((Trigger::Start, None));
        loop {
            if let Some((trigger, snapshot)) = pending.take() {
                let snapshot = snapshot.unwrap_or_else(|| Snapshot::load(&self.options.dir));
                self.reconcile(trigger, snapshot).await?;
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
                    self.take_notice(notice, &mut paths)?;
                    while let Ok(notice) = incoming.try_recv() {
                        self.take_notice(notice, &mut paths)?;
                    }
                    let moved = self.retarget(files)?;
                    let relevant = files.relevant(&paths);
                    if moved || !relevant.is_empty() {
                        pending = self.changed(&relevant, moved)?;
                    }
                }
                _ = tokio::time::sleep_until(self.retry_at.unwrap_or(far)),
                    if self.retry_at.is_some() => {
                    pending = Some((Trigger::Retry, None));
                }
                _ = tokio::time::sleep_until(self.next_tick) => {
                    pending = Some((Trigger::Interval, None));
                }
                _ = tokio::time::sleep_until(self.next_verify.unwrap_or(far)),
                    if self.next_verify.is_some() => {
                    pending = Some((Trigger::Verify, None));
                }
                _ = poll.tick() => {
                    if self.retarget(files)? {
                        pending = self.changed(&[], true)?;
                    }
                }
            }
        }
        self.log.event(
            LogEvent::Stop,
            "signal received; no reconcile was cut short; exiting",
        )?;
        Ok(())
    }

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

    fn take_notice(&mut self, notice: Notice, paths: &mut Vec<PathBuf>) -> Result<(), WatchError> {
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

    fn retarget(&mut self, files: &mut impl Watched) -> Result<bool, WatchError> {
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
        let next = self.next_after(&result);
        self.schedule(verify, next);
        self.log.outcome(trigger, &result, &applied, next)?;
        Ok(())
    }

    /// What the error policy says follows `result`; counts retryable failures in a row.
    fn next_after(&mut self, result: &Result<Done, ReconcileError>) -> Option<Next> {
        let Err(error) = result else {
            self.failures = 0;
            return None;
        };
        self.failures += 1;
        let now = jiff::Timestamp::now().as_second().max(0) as u64;
        match error_policy(error, self.failures, self.options.interval, now) {
            Next::Retry(wait) => Some(Next::Retry(jitter(wait))),
            stuck @ Next::AwaitChange(_) => {
                // Backoff counts retryable failures only.
                self.failures = 0;
                Some(stuck)
            }
        }
    }

    /// Sets the retry, the next interval reconcile and (after a verify) the next verify, each
    /// counted from now, the end of a reconcile.
    fn schedule(&mut self, verified: bool, next: Option<Next>) {
        let now = Instant::now();
        self.retry_at = match next {
            Some(Next::Retry(wait)) => Some(now + wait),
            _ => None,
        };
        self.next_tick = now + jitter(self.options.interval);
        if verified || self.next_verify.is_none() {
            self.next_verify = self
                .options
                .verify_interval
                .map(|interval| now + jitter(interval));
        }
    }
}
