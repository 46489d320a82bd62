//! After a rotation wrote the new signing secret: the sink's `reload`, then waiting (at most
//! `--settle`) until the receiver accepts what Kayle now signs, then retrying at once the
//! deliveries that failed meanwhile. Kayle rotates with no grace period, so without this they
//! would wait for the 5- and 30-minute steps of the retry schedule.
//!
//! A receiver that does not answer from where kayle-sync runs (most CI cannot reach a
//! production receiver) is reported and not waited for; only one that answers and refuses is.

use std::time::Duration;

use secrecy::SecretString;
use serde::Serialize;
use tokio::time::Instant;

use super::endpoint::{ApplyError, Run};
use super::secret::Rotated;
use super::step::Step;
use crate::api::{ApiError, Client, DeliveryFilter, LiveDelivery, sendable_for};
use crate::model::LiveEndpoint;
use crate::probe::{self, Answer, Request};

/// `--settle` when none is given.
pub const DEFAULT_SETTLE: Duration = Duration::from_secs(120);

/// The wait after the first refused probe; each wait doubles, up to [`LONGEST_PROBE_WAIT`].
const FIRST_PROBE_WAIT: Duration = Duration::from_millis(250);
const LONGEST_PROBE_WAIT: Duration = Duration::from_secs(5);

/// What followed one rotation, as an apply reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AfterRotation {
    /// The sink's `reload` command ran and succeeded.
    pub reloaded: bool,
    #[serde(flatten)]
    pub receiver: ReceiverCheck,
}

/// What the receiver made of the new secret.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "receiver", rename_all = "kebab-case")]
pub enum ReceiverCheck {
    /// It accepted a request signed with the new secret, `after_seconds` after the sink was
    /// written; `retried` deliveries that failed since the rotation were sent again.
    Accepted { after_seconds: f64, retried: usize },
    /// It did not answer from here (refused connection, DNS, timeout, TLS, a redirect): not
    /// waited for, nothing retried.
    NotReachable {
        reason: String,
        failed_since_rotation: usize,
    },
    /// Not probed: `--settle 0`, or nothing to seal a request to (no active key).
    NotProbed {
        reason: String,
        failed_since_rotation: usize,
    },
}

impl ReceiverCheck {
    /// In the words of an apply's line.
    pub fn describe(&self) -> String {
        match self {
            ReceiverCheck::Accepted {
                after_seconds,
                retried,
            } => format!(
                "receiver took the new secret after {after_seconds:.1} s; {}",
                deliveries(*retried, "retried")
            ),
            ReceiverCheck::NotReachable {
                reason,
                failed_since_rotation,
            } => format!(
                "receiver not reachable from here: {reason}; not waited for; {}",
                deliveries(*failed_since_rotation, "failed since the rotation")
            ),
            ReceiverCheck::NotProbed {
                reason,
                failed_since_rotation,
            } => format!(
                "receiver not probed ({reason}); {}",
                deliveries(*failed_since_rotation, "failed since the rotation")
            ),
        }
    }
}

/// `1 delivery retried`, `4 deliveries retried`.
fn deliveries(count: usize, what: &str) -> String {
    let noun = if count == 1 { "delivery" } else { "deliveries" };
    format!("{count} {noun} {what}")
}

/// How waiting for the receiver ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Waited {
    /// It accepted.
    Accepted,
    /// It never answered: why.
    Unreachable(String),
    /// It answered, and still refused when the time ran out: its last answer.
    Refused(String),
}

/// The time as [`wait_for_receiver`] sees it: the real one, or a test's.
pub(super) trait Clock {
    /// Time since the clock was made.
    fn elapsed(&self) -> Duration;
    async fn sleep(&self, wait: Duration);
}

/// The clock of the runtime.
struct RuntimeClock(Instant);

impl Clock for RuntimeClock {
    fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }

    async fn sleep(&self, wait: Duration) {
        tokio::time::sleep(wait).await;
    }
}

/// How many probes in a row must be accepted. Behind a load balancer a rolling restart leaves
/// old instances, still on the old secret, answering beside the first new one: one accepted
/// probe would let the retried deliveries meet them.
const ACCEPTED_IN_A_ROW: u32 = 3;

/// The wait between the probes of a run of acceptances.
const BETWEEN_ACCEPTED: Duration = Duration::from_millis(200);

/// Probes until the receiver accepts [`ACCEPTED_IN_A_ROW`] probes in a row, at most `settle`
/// long, waiting longer after each refusal. A receiver that does not answer the first probe is
/// not waited for; one that has answered and then stops (restarting to load the secret) is.
/// When `settle` runs out during a run of acceptances, the last answer, an acceptance, counts.
pub(super) async fn wait_for_receiver<F, Fut>(
    settle: Duration,
    clock: &impl Clock,
    mut send: F,
) -> Waited
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Answer>,
{
    let deadline = clock.elapsed() + settle;
    let mut wait = FIRST_PROBE_WAIT;
    let mut answered = false;
    let mut in_a_row = 0;
    loop {
        let answer = send().await;
        if answer.accepted() {
            in_a_row += 1;
            let now = clock.elapsed();
            if in_a_row >= ACCEPTED_IN_A_ROW || now >= deadline {
                return Waited::Accepted;
            }
            clock.sleep(BETWEEN_ACCEPTED.min(deadline - now)).await;
            continue;
        }
        in_a_row = 0;
        match answer {
            Answer::NoAnswer { .. } | Answer::Redirect { .. } if !answered => {
                return Waited::Unreachable(unreachable_reason(&answer));
            }
            Answer::Status { .. } => answered = true,
            _ => {}
        }
        let now = clock.elapsed();
        if now >= deadline {
            return Waited::Refused(answer.describe());
        }
        clock.sleep(wait.min(deadline - now)).await;
        wait = (wait * 2).min(LONGEST_PROBE_WAIT);
    }
}

/// How long one probe may take: Kayle's own delivery timeout, but never longer than `settle`
/// (a second at least), so that `--settle` bounds the wait.
fn probe_timeout(settle: Duration) -> Duration {
    probe::TIMEOUT.min(settle.max(Duration::from_secs(1)))
}

fn unreachable_reason(answer: &Answer) -> String {
    match answer {
        Answer::NoAnswer { reason } => reason.clone(),
        Answer::Redirect { status } => {
            format!("it answered a redirect (HTTP {status}), which Kayle does not follow")
        }
        Answer::Status { .. } => answer.describe(),
    }
}

/// Of `listed` (one endpoint's deliveries, possibly listed twice), each id once: those failed
/// or waiting for a retry whose last attempt was at or after `since`. One never attempted is
/// on its way already; one being delivered cannot be requeued.
pub(super) fn refused_since(
    listed: Vec<LiveDelivery>,
    since: jiff::Timestamp,
) -> Vec<LiveDelivery> {
    let mut seen = std::collections::BTreeSet::new();
    listed
        .into_iter()
        .filter(|d| matches!(d.status.as_str(), "failed" | "pending") && d.attempt_count > 0)
        .filter(|d| {
            let attempted = d.last_attempt_at.as_deref().and_then(|at| at.parse().ok());
            // A time that does not parse: by its creation, which is never later.
            attempted
                .or_else(|| d.created())
                .is_none_or(|at| at >= since)
        })
        .filter(|d| seen.insert(d.id.clone()))
        .collect()
}

/// The endpoint's deliveries refused since `since`: every pending one (an older one may have
/// been attempted since), and the failed ones created as far back as one whose schedule could
/// still run after `since` ([`sendable_for`]: Kayle's schedule, then the payload retention
/// during which it may have been retried by hand). A delivery made an hour before a rotation fails
/// for good at its eighth attempt, a day after it, signed with the new secret.
async fn list_failed_since(
    client: &Client,
    endpoint: &LiveEndpoint,
    since: jiff::Timestamp,
) -> Result<Vec<LiveDelivery>, ApiError> {
    let failed = DeliveryFilter {
        endpoint_id: Some(endpoint.id.clone()),
        status: Some("failed".to_owned()),
        ..DeliveryFilter::default()
    };
    let pending = DeliveryFilter {
        status: Some("pending".to_owned()),
        ..failed.clone()
    };
    let reach =
        jiff::SignedDuration::try_from(sendable_for(endpoint.undelivered_payload_retention_hours))
            .unwrap_or(jiff::SignedDuration::MAX);
    let from = since.checked_sub(reach).unwrap_or(jiff::Timestamp::MIN);
    let (mut listed, waiting) = futures::try_join!(
        client.list_deliveries_since(&failed, from),
        client.list_deliveries(&pending)
    )?;
    listed.extend(waiting);
    Ok(refused_since(listed, since))
}

impl Run<'_, '_> {
    /// After a rotation that began at `began` wrote the new secret to `sink` as `name`: runs
    /// the sink's reload, waits for the receiver, retries what failed meanwhile, and says so.
    pub(super) async fn settle_receiver(
        &mut self,
        endpoint_id: &str,
        rotated: Rotated,
    ) -> Result<(), ApplyError> {
        let Rotated {
            sink,
            name,
            began,
            written_at: written,
            reloaded,
            secret,
        } = rotated;
        let (sink, name) = (sink.as_str(), name.as_str());
        let settle = self.target.settle;
        let client = self.target.client;
        let endpoint = self.api(client.get_endpoint(endpoint_id).await)?;
        let receiver = if settle.is_zero() {
            Err("--settle 0".to_owned())
        } else {
            self.probe_until_accepted(&endpoint, &secret, settle)
                .await?
        };
        let receiver = match receiver {
            Ok(Waited::Accepted) => {
                let after_seconds = written.elapsed().as_secs_f64();
                let retried = self.retry_failed(&endpoint, began).await?;
                ReceiverCheck::Accepted {
                    after_seconds: (after_seconds * 10.0).round() / 10.0,
                    retried,
                }
            }
            Ok(Waited::Refused(last)) => {
                return Err(ApplyError::ReceiverRefuses {
                    key: self.key.to_owned(),
                    sink: sink.to_owned(),
                    name: name.to_owned(),
                    settle: humantime::format_duration(settle).to_string(),
                    last,
                    reload: reloaded,
                });
            }
            Ok(Waited::Unreachable(reason)) => ReceiverCheck::NotReachable {
                reason,
                failed_since_rotation: self.failed_since(&endpoint, began).await?.len(),
            },
            Err(reason) => ReceiverCheck::NotProbed {
                reason,
                failed_since_rotation: self.failed_since(&endpoint, began).await?.len(),
            },
        };
        self.done.push(Step::Receiver(receiver.clone()));
        self.after_rotation = Some(AfterRotation { reloaded, receiver });
        Ok(())
    }

    /// Probes the endpoint's live URL with requests signed with `secret`, as Kayle signs;
    /// `Err` says why nothing could be sent.
    async fn probe_until_accepted(
        &self,
        endpoint: &LiveEndpoint,
        secret: &SecretString,
        settle: Duration,
    ) -> Result<Result<Waited, String>, ApplyError> {
        let client = self.target.client;
        let keys = self.api(client.list_keys(&endpoint.id).await)?;
        let (jwk, kid) = match probe::active_key(&keys) {
            Ok(active) => active,
            Err(why) => return Ok(Err(why.to_owned())),
        };
        let url = match crate::http::check_credential_url(&endpoint.url) {
            Ok(url) => url,
            Err(err) => return Ok(Ok(Waited::Unreachable(format!("its URL: {err}")))),
        };
        let event_type = probe::event_type(endpoint);
        let target = probe::Target {
            url: &url,
            jwk,
            kid,
            secret,
            event_type,
        };
        let http = crate::http::client_builder(probe_timeout(settle))
            .build()
            .map_err(|err| self.inconsistent(format!("cannot build an HTTP client: {err}")))?;
        let send = || async {
            probe::send_one(&http, &target, Request::Signed)
                .await
                .unwrap_or_else(|err| Answer::NoAnswer {
                    reason: err.to_string(),
                })
        };
        let clock = RuntimeClock(Instant::now());
        Ok(Ok(wait_for_receiver(settle, &clock, send).await))
    }

    /// Requeues each delivery that failed since `began`; how many were. A 409 (in flight
    /// again, or its payload gone) is one already dealt with.
    async fn retry_failed(
        &self,
        endpoint: &LiveEndpoint,
        began: jiff::Timestamp,
    ) -> Result<usize, ApplyError> {
        let client = self.target.client;
        let failed = self.failed_since(endpoint, began).await?;
        let mut retried = 0;
        for delivery in failed {
            match client.retry_delivery(&delivery.id).await {
                Ok(_) => retried += 1,
                Err(err) if err.status() == Some(409) => {}
                Err(err) => return Err(self.api_error(err)),
            }
        }
        Ok(retried)
    }

    /// The endpoint's deliveries that failed since `began`.
    async fn failed_since(
        &self,
        endpoint: &LiveEndpoint,
        began: jiff::Timestamp,
    ) -> Result<Vec<LiveDelivery>, ApplyError> {
        let client = self.target.client;
        self.api(list_failed_since(client, endpoint, began).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::test_delivery;

    fn status(status: u16) -> Answer {
        Answer::Status { status }
    }

    fn no_answer() -> Answer {
        Answer::NoAnswer {
            reason: "the connection was refused or could not be made".into(),
        }
    }

    /// A clock that moves only when slept on.
    #[derive(Default)]
    struct TestClock(std::cell::Cell<Duration>);

    impl Clock for TestClock {
        fn elapsed(&self) -> Duration {
            self.0.get()
        }

        async fn sleep(&self, wait: Duration) {
            self.0.set(self.0.get() + wait);
        }
    }

    /// Waits with `answers` given in turn (the last one repeated); the outcome, how many
    /// probes were sent, and how long it waited.
    async fn wait_with(settle: Duration, answers: Vec<Answer>) -> (Waited, usize, Duration) {
        let sent = std::cell::Cell::new(0);
        let clock = TestClock::default();
        let waited = wait_for_receiver(settle, &clock, || {
            let n = sent.get();
            sent.set(n + 1);
            let answer = answers[n.min(answers.len() - 1)].clone();
            async move { answer }
        })
        .await;
        (waited, sent.get(), clock.elapsed())
    }

    #[test]
    fn no_probe_outlasts_settle_or_kayles_timeout() {
        assert_eq!(
            probe_timeout(Duration::from_secs(5)),
            Duration::from_secs(5)
        );
        assert_eq!(probe_timeout(Duration::from_secs(120)), probe::TIMEOUT);
        assert_eq!(
            probe_timeout(Duration::from_millis(10)),
            Duration::from_secs(1)
        );
    }

    #[tokio::test]
    async fn a_receiver_that_refuses_then_accepts_is_waited_for() {
        let settle = Duration::from_secs(120);
        let answers = vec![status(400), status(400), no_answer(), status(200)];
        let (waited, sent, _) = wait_with(settle, answers).await;
        assert_eq!(
            (waited, sent),
            (Waited::Accepted, 6),
            "three acceptances in a row"
        );
    }

    /// A rolling restart: the first new instance accepts while old ones still refuse.
    #[tokio::test]
    async fn one_acceptance_among_refusals_is_not_enough() {
        let settle = Duration::from_secs(120);
        let answers = vec![
            status(400),
            status(200),
            status(400),
            status(200),
            status(200),
            status(400),
            status(200),
        ];
        let (waited, sent, _) = wait_with(settle, answers).await;
        assert_eq!((waited, sent), (Waited::Accepted, 9));
    }

    #[tokio::test]
    async fn settle_running_out_during_acceptances_counts_the_last_one() {
        // A refusal, 250 ms, an acceptance, 50 ms to the deadline, an acceptance.
        let settle = Duration::from_millis(300);
        let (waited, sent, took) = wait_with(settle, vec![status(400), status(200)]).await;
        assert_eq!((waited, sent, took), (Waited::Accepted, 3, settle));
    }

    #[tokio::test]
    async fn a_receiver_that_never_answers_is_not_waited_for() {
        let settle = Duration::from_secs(120);
        let (waited, sent, took) = wait_with(settle, vec![no_answer()]).await;
        assert!(matches!(waited, Waited::Unreachable(ref r) if r.contains("refused")));
        assert_eq!((sent, took), (1, Duration::ZERO));
        let redirect = Answer::Redirect { status: 302 };
        let (waited, _, _) = wait_with(settle, vec![redirect]).await;
        assert!(matches!(waited, Waited::Unreachable(ref r) if r.contains("redirect")));
    }

    #[tokio::test]
    async fn a_receiver_that_keeps_refusing_fails_when_settle_runs_out() {
        let settle = Duration::from_secs(30);
        let (waited, sent, took) = wait_with(settle, vec![status(401)]).await;
        assert_eq!(waited, Waited::Refused("refused (HTTP 401)".into()));
        assert_eq!(took, settle);
        // 0.25 + 0.5 + 1 + 2 + 4 + 5 + 5 + 5 + 5 = 27.75 s, then 2.25 s to the deadline.
        assert_eq!(sent, 11);
    }

    #[test]
    fn only_deliveries_failed_since_the_rotation_are_retried() {
        let since: jiff::Timestamp = "2026-01-01T10:00:00Z".parse().unwrap();
        let (after, before) = ("2026-01-01T10:00:01Z", "2026-01-01T09:59:59Z");
        let delivery =
            |id, status, attempts, at| test_delivery(id, status, attempts, Some(400), at);
        let listed = vec![
            delivery("whd_pending", "pending", 2, after),
            delivery("whd_failed", "failed", 8, after),
            delivery("whd_pending", "pending", 2, after),
            delivery("whd_earlier", "pending", 1, before),
            delivery("whd_queued", "pending", 0, after),
            delivery("whd_done", "succeeded", 1, after),
            delivery("whd_flight", "delivering", 1, after),
        ];
        let ids: Vec<String> = refused_since(listed, since)
            .into_iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(ids, ["whd_pending", "whd_failed"]);
    }

    #[test]
    fn the_report_says_what_happened_in_words() {
        let accepted = ReceiverCheck::Accepted {
            after_seconds: 3.2,
            retried: 4,
        };
        assert_eq!(
            accepted.describe(),
            "receiver took the new secret after 3.2 s; 4 deliveries retried"
        );
        let unreachable = ReceiverCheck::NotReachable {
            reason: "no answer within 15 s".into(),
            failed_since_rotation: 1,
        };
        assert_eq!(
            unreachable.describe(),
            "receiver not reachable from here: no answer within 15 s; not waited for; 1 \
             delivery failed since the rotation"
        );
    }
}
