//! `watch`: file events -> debounce -> reconcile, one reconcile at a time, on every change,
//! on an interval (drift correction) and after failures (backoff), until a shutdown signal.
//!
//! Modeled on a kube-rs controller: the reconcile ([`reconcile`]) is idempotent and loads the
//! whole directory each time; one function ([`policy::error_policy`]) decides what follows a
//! failure; events that arrive during a reconcile wait in the channel and become one more.

mod controller;
mod files;
pub mod health;
mod log;
mod policy;
mod reconcile;
mod status;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

pub use files::{DEBOUNCE, FilesError, is_noise};
pub use health::Metrics;
pub use log::{Log, LogEvent, Trigger, describe};
pub use policy::{FIRST_BACKOFF, Next, Stuck, error_policy, jitter};
pub use reconcile::{Changes, Done, ReconcileError, Reconciler, Snapshot, api_changed};
pub use status::{RefreshOptions, StatusFigures, refresh_forever};

use crate::api::Client;
use crate::model::ApiConfig;
use controller::Controller;

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
    /// The log could not be written (stdout closed). The cause is the source, not part of
    /// the message: a chain printed with `{:#}` then names it once.
    #[error("writing the log")]
    Log(#[from] std::io::Error),
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
    shutdown: watch::Receiver<bool>,
) -> Result<(), WatchError> {
    let (notices, mut incoming) = mpsc::unbounded_channel();
    let mut files = files::FileWatcher::start(&options.dir, notices)?;
    let reconciler = Reconciler {
        client,
        dry_run: options.dry_run,
        prune: options.prune,
        force: options.force,
        concurrency: options.concurrency,
        late_window: options.late_window,
        settle: options.settle,
        kept_keys: options.kept_keys,
    };
    Controller::new(options, reconciler, first_api, log, metrics)
        .run(&mut files, &mut incoming, shutdown)
        .await
}
