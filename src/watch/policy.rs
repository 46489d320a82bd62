//! The one place that decides what happens after a failed reconcile, and the jitter on waits.

use std::time::Duration;

use rand::Rng;

use super::reconcile::ReconcileError;
use crate::api::ApiError;
use crate::apply::ApplyError;
use crate::model::SinkError;
use crate::read::ReadError;

/// The first wait after a failure that is worth retrying; each later one doubles.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// What the loop does after a failed reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Reconcile again after this wait (the API or a sink may recover on its own).
    Retry(Duration),
    /// Retrying cannot help, for this reason: wait for the files to change (or the next
    /// interval tick).
    AwaitChange(Stuck),
}

/// Why retrying a failed reconcile cannot help: the same request would get the same answer
/// until a person changes the files, the API key or its scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stuck {
    /// The directory does not validate.
    InvalidConfig,
    /// The deletion guard refused the plan.
    GuardRefused,
    /// The API refused the key (HTTP 401).
    Unauthorized,
    /// The key lacks a scope the call needs (HTTP 403).
    Forbidden,
    /// The API refused a request as invalid (HTTP 400 or 422).
    RequestRejected,
    /// The API answered with a redirect (HTTP 3xx), which it never does: the base URL is
    /// wrong.
    Redirected,
    /// A sink cannot work as configured: a program that is not an executable file, an
    /// address credentials may not go to, a missing token variable, a file that cannot be
    /// written for lack of permission.
    SinkConfig,
    /// The plan names something the configuration does not have.
    InconsistentPlan,
    /// A sink holds a value kayle-sync cannot use where it needs one (a generated key's
    /// private key name holding something that is not a private key).
    UnusableSinkValue,
}

impl Stuck {
    /// In the user's words, for the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Stuck::InvalidConfig => "the configuration does not validate",
            Stuck::GuardRefused => "the deletion guard refused the plan",
            Stuck::Unauthorized => "the API refused the API key (HTTP 401)",
            Stuck::Forbidden => "the API key lacks a scope the call needs (HTTP 403)",
            Stuck::RequestRejected => "the API refused a request as invalid",
            Stuck::Redirected => "the API answered with a redirect: check the base URL",
            Stuck::SinkConfig => "a sink cannot work as configured",
            Stuck::InconsistentPlan => "the plan does not match the configuration",
            Stuck::UnusableSinkValue => "a sink holds a value kayle-sync cannot use",
        }
    }
}

/// Decides what follows the `failures`-th failure in a row (counting from 1).
///
/// What needs a person is not retried until the files change (the interval tick still
/// re-checks): an invalid configuration, a plan the deletion guard refuses, an API key the API
/// refuses (401) or that lacks a scope (403), a request the API refuses as invalid (400, 422),
/// an API that redirects (3xx: a wrong base URL), a sink that cannot work as configured, a
/// plan that does not match the configuration, a sink holding a value kayle-sync cannot use
/// (its content is a person's to fix). Everything else (5xx, timeouts, the network, a store
/// that fails or cannot be reached) is retried with exponential backoff from
/// [`FIRST_BACKOFF`], capped at the interval,
/// so a long outage costs one attempt per interval. A rotation deferred until a lost request
/// can no longer land is retried once that time has passed (`now` is the unix time), not
/// before: an earlier round would only check the sink and defer again.
pub fn error_policy(error: &ReconcileError, failures: u32, interval: Duration, now: u64) -> Next {
    match stuck(error) {
        Some(why) => Next::AwaitChange(why),
        None => {
            let doubled = FIRST_BACKOFF.saturating_mul(1u32 << failures.saturating_sub(1).min(20));
            let deferred = deferred_until(error).map_or(Duration::ZERO, |until| {
                Duration::from_secs(until.saturating_sub(now) + 1)
            });
            Next::Retry(doubled.max(deferred).min(interval))
        }
    }
}

/// When every change that failed was a rotation deferred for a lost request, the latest time
/// one waits for.
fn deferred_until(error: &ReconcileError) -> Option<u64> {
    let ReconcileError::Apply { errors, .. } = error else {
        return None;
    };
    let mut latest = None;
    for error in errors {
        match error {
            ApplyError::RotationDeferred { until, .. } => {
                latest = latest.max(Some(*until));
            }
            ApplyError::NotAttempted { .. } => {}
            _ => return None,
        }
    }
    latest
}

/// Why no retry can fix `error`, or `None` when one may.
fn stuck(error: &ReconcileError) -> Option<Stuck> {
    match error {
        ReconcileError::Invalid { .. } => Some(Stuck::InvalidConfig),
        ReconcileError::Refused(_) => Some(Stuck::GuardRefused),
        ReconcileError::Sinks(error) => sink_stuck(error),
        ReconcileError::Read(ReadError::Api(error)) => api_stuck(error),
        // Retried when any change failed in a way a retry may fix; a change not attempted
        // only follows another's failure.
        ReconcileError::Apply { errors, .. } => {
            let mut causes = errors
                .iter()
                .filter(|error| !matches!(error, ApplyError::NotAttempted { .. }))
                .map(apply_stuck)
                .peekable();
            causes.peek()?;
            causes.collect::<Option<Vec<Stuck>>>()?.first().copied()
        }
    }
}

fn apply_stuck(error: &ApplyError) -> Option<Stuck> {
    match error {
        ApplyError::Api { source, .. } => api_stuck(source),
        ApplyError::Inconsistent { .. } => Some(Stuck::InconsistentPlan),
        ApplyError::UnusablePrivateKey { .. } => Some(Stuck::UnusableSinkValue),
        // A failed reload leaves the endpoint unsettled: the next round runs it again.
        ApplyError::Reload { .. } | ApplyError::ReceiverRefuses { .. } => None,
        ApplyError::Sink { source, .. } | ApplyError::SinkRemove { source, .. } => {
            sink_stuck(source)
        }
        ApplyError::NotAttempted { .. } | ApplyError::RotationDeferred { .. } => None,
    }
}

fn api_stuck(error: &ApiError) -> Option<Stuck> {
    match error.status()? {
        300..=399 => Some(Stuck::Redirected),
        401 => Some(Stuck::Unauthorized),
        403 => Some(Stuck::Forbidden),
        400 | 422 => Some(Stuck::RequestRejected),
        _ => None,
    }
}

/// Decided by the error's kind: its configuration, or a file the process may not write,
/// stays as it is until a person acts; a store that failed or could not be reached, a
/// conflicting writer, any other I/O error may pass.
fn sink_stuck(error: &SinkError) -> Option<Stuck> {
    use std::io::ErrorKind::{PermissionDenied, ReadOnlyFilesystem};
    match error {
        SinkError::Config { .. } => Some(Stuck::SinkConfig),
        SinkError::Io { source, .. }
            if matches!(source.kind(), PermissionDenied | ReadOnlyFilesystem) =>
        {
            Some(Stuck::SinkConfig)
        }
        SinkError::Io { .. } | SinkError::Store { .. } | SinkError::Conflict { .. } => None,
    }
}

/// `wait` moved at random by up to ±10%, so many watchers started together spread out.
pub fn jitter(wait: Duration) -> Duration {
    let factor = rand::rng().random_range(0.9..=1.1);
    wait.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::GuardError;

    fn api_error(status: u16) -> ApplyError {
        ApplyError::Api {
            key: "orders".into(),
            source: Box::new(ApiError::Status {
                doing: "updating endpoint whe_1".into(),
                status,
                code: None,
                message: "no".into(),
                hint: None,
                issues: Vec::new(),
            }),
        }
    }

    fn apply_failure(errors: Vec<ApplyError>) -> ReconcileError {
        ReconcileError::Apply {
            failed: errors.len(),
            of: errors.len(),
            errors,
        }
    }

    fn api_failure() -> ReconcileError {
        apply_failure(vec![api_error(503)])
    }

    #[test]
    fn backoff_doubles_from_one_second_and_stops_at_the_interval() {
        let interval = Duration::from_secs(10);
        let waits: Vec<_> = (1..=6)
            .map(|n| error_policy(&api_failure(), n, interval, 0))
            .collect();
        let secs = |s| Next::Retry(Duration::from_secs(s));
        assert_eq!(
            waits,
            [secs(1), secs(2), secs(4), secs(8), secs(10), secs(10)]
        );
        assert_eq!(
            error_policy(&api_failure(), 1000, interval, 0),
            secs(10),
            "a huge count must not overflow"
        );
    }

    #[test]
    fn problems_that_need_a_person_are_not_retried() {
        let minute = Duration::from_secs(60);
        let refused = ReconcileError::Refused(GuardError::TooManyDeletes {
            deletes: 5,
            managed: 10,
        });
        assert_eq!(
            error_policy(&refused, 1, minute, 0),
            Next::AwaitChange(Stuck::GuardRefused)
        );
        for (status, why) in [
            (401, Stuck::Unauthorized),
            (403, Stuck::Forbidden),
            (422, Stuck::RequestRejected),
            (400, Stuck::RequestRejected),
            (301, Stuck::Redirected),
            (308, Stuck::Redirected),
        ] {
            let failure = apply_failure(vec![
                api_error(status),
                ApplyError::NotAttempted {
                    key: "orders".into(),
                },
            ]);
            assert_eq!(error_policy(&failure, 1, minute, 0), Next::AwaitChange(why));
            let ApplyError::Api { source, .. } = api_error(status) else {
                unreachable!()
            };
            let read = ReconcileError::Read(ReadError::Api(*source));
            assert_eq!(error_policy(&read, 1, minute, 0), Next::AwaitChange(why));
        }
        let inconsistent = apply_failure(vec![ApplyError::Inconsistent {
            key: "orders".into(),
            message: "sink vault is not declared".into(),
        }]);
        assert_eq!(
            error_policy(&inconsistent, 1, minute, 0),
            Next::AwaitChange(Stuck::InconsistentPlan)
        );
        let unusable = apply_failure(vec![ApplyError::UnusablePrivateKey {
            key: "zeta".into(),
            key_id: "zeta-1".into(),
            sink: "local".into(),
            name: "KAYLE_WEBHOOK_PRIVATE_KEY_ZETA".into(),
        }]);
        assert_eq!(
            error_policy(&unusable, 1, minute, 0),
            Next::AwaitChange(Stuck::UnusableSinkValue)
        );
    }

    fn sink_io(kind: std::io::ErrorKind) -> SinkError {
        SinkError::Io {
            sink: "local".into(),
            path: "secrets/kayle.env".into(),
            source: kind.into(),
        }
    }

    fn sink_store(message: &str) -> SinkError {
        SinkError::Store {
            sink: "vault".into(),
            message: message.into(),
        }
    }

    #[test]
    fn a_sink_that_cannot_work_as_configured_is_not_retried_and_an_outage_is() {
        let minute = Duration::from_secs(60);
        let config = || SinkError::Config {
            sink: "local".into(),
            message: "its reload: the command `/nonexistent/prog` is not an executable file".into(),
        };
        let written = |source: SinkError| {
            apply_failure(vec![ApplyError::Sink {
                key: "orders".into(),
                sink: "local".into(),
                name: "ORDERS".into(),
                source: Box::new(source),
            }])
        };
        let stuck = Next::AwaitChange(Stuck::SinkConfig);
        for failure in [
            ReconcileError::Sinks(config()),
            ReconcileError::Sinks(sink_io(std::io::ErrorKind::PermissionDenied)),
            ReconcileError::Sinks(sink_io(std::io::ErrorKind::ReadOnlyFilesystem)),
            written(config()),
        ] {
            assert_eq!(error_policy(&failure, 1, minute, 0), stuck, "{failure}");
        }
        for failure in [
            ReconcileError::Sinks(sink_store("reading x failed: HTTP 503")),
            ReconcileError::Sinks(sink_store("timed out")),
            ReconcileError::Sinks(sink_io(std::io::ErrorKind::TimedOut)),
            ReconcileError::Sinks(SinkError::Conflict {
                sink: "vault".into(),
                name: "ORDERS".into(),
            }),
            written(sink_store("connection refused")),
        ] {
            assert_eq!(
                error_policy(&failure, 1, minute, 0),
                Next::Retry(FIRST_BACKOFF),
                "{failure}"
            );
        }
    }

    #[test]
    fn a_failure_a_retry_may_fix_is_retried_even_beside_one_it_cannot() {
        let minute = Duration::from_secs(60);
        for status in [500, 503, 404, 429] {
            let failure = apply_failure(vec![api_error(422), api_error(status)]);
            assert_eq!(
                error_policy(&failure, 1, minute, 0),
                Next::Retry(FIRST_BACKOFF),
                "{status}"
            );
        }
        let lost = ReconcileError::Read(ReadError::Api(ApiError::Transport {
            doing: "listing endpoints".into(),
            reason: "timed out".into(),
        }));
        assert_eq!(
            error_policy(&lost, 1, minute, 0),
            Next::Retry(FIRST_BACKOFF)
        );
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..200 {
            let wait = jitter(Duration::from_secs(100)).as_secs_f64();
            assert!((90.0..=110.0).contains(&wait), "{wait}");
        }
    }
}
