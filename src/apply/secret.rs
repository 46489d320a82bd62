//! The signing-secret steps of one endpoint's work: writing, recovering, rotating and
//! verifying a secret, and recording on the endpoint what kayle-sync knows about it (see
//! [`SecretState`]), so that a lost request, a late one or a killed process never leaves a sink
//! stale without the next plan saying so.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use secrecy::{ExposeSecret, SecretString};

use super::endpoint::{ApplyError, Run, now};
use super::step::{Lost, Step};
use crate::api::{ApiError, EndpointFields};
use crate::model::SecretState;
use crate::plan::SecretStep;
use crate::sink::Reloaded;

/// How long the record made before a rotation may take, from reading the clock to the
/// rotation leaving; the record counts the late window from then. A record that takes
/// longer is made again, at most [`MAX_MARKS`] times in all.
const SEND_MARGIN_SECS: u64 = 2;

/// How many times a rotation's record is made before it gives up on a slow server.
const MAX_MARKS: u32 = 3;

/// Now, as a unix time in seconds rounded up.
fn now_ceil() -> u64 {
    let elapsed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    elapsed.as_secs() + u64::from(elapsed.subsec_nanos() > 0)
}

/// What a rotation wrote, for waiting on the receiver once the endpoint's other changes are made.
pub(super) struct Rotated {
    pub(super) sink: String,
    pub(super) name: String,
    /// When the rotation began: deliveries failed since are retried.
    pub(super) began: jiff::Timestamp,
    /// When the sink's last write ended.
    pub(super) written_at: tokio::time::Instant,
    /// Whether the sink's reload ran after the write.
    pub(super) reloaded: bool,
    /// The secret the sink holds, the API's current one.
    pub(super) secret: SecretString,
}

/// `until` (unix seconds) as a timestamp, for messages.
pub(super) fn unix_time(until: u64) -> String {
    jiff::Timestamp::from_second(until as i64).map_or_else(|_| until.to_string(), |t| t.to_string())
}

impl Run<'_, '_> {
    pub(super) async fn secret_step(
        &mut self,
        endpoint_id: &str,
        step: &SecretStep,
        issued: Option<SecretString>,
    ) -> Result<(), ApplyError> {
        let client = self.target.client;
        match step {
            SecretStep::Write { sink, name, reload }
            | SecretStep::Recover {
                sink, name, reload, ..
            } => {
                let (secret, issued) = match issued {
                    Some(secret) => (secret, true),
                    None => (self.api(client.reveal_secret(endpoint_id).await)?, false),
                };
                self.put(sink, name, &secret).await?;
                let done = match issued {
                    true => Step::SecretWritten {
                        sink: sink.clone(),
                        name: name.clone(),
                    },
                    false => Step::SecretRecovered {
                        sink: sink.clone(),
                        name: name.clone(),
                        unsettled: false,
                    },
                };
                self.done.push(done);
                if !reload {
                    return Ok(());
                }
                let reloaded = self.reload_written(sink, &secret).await;
                // A new endpoint (also one found after a lost answer) is recorded unsettled
                // until its secret is in place; a recovered one is recorded now.
                if reloaded.is_err() && matches!(step, SecretStep::Recover { .. }) {
                    self.unsettle_for_reload(endpoint_id, None).await;
                }
                reloaded
            }
            SecretStep::Rotate {
                sink,
                name,
                from,
                to,
                unsettled_until,
                reload,
            } => {
                // An earlier rotation that left the endpoint unsettled (a killed run's, or one
                // whose answer was lost) may have changed the secret already: what the
                // receiver refused since then is retried too.
                let now = jiff::Timestamp::now();
                let began = unsettled_until
                    .and_then(|until| self.rotation_began(until))
                    .map_or(now, |earlier| earlier.min(now));
                let (secret, written_at) = self
                    .rotate(
                        endpoint_id,
                        (sink, name),
                        (*from, *to),
                        *unsettled_until,
                        *reload,
                    )
                    .await?;
                // The receiver is waited for once the change's field updates are made too
                // (a new URL is the one to probe): see `Run::update`.
                self.rotated = Some(Rotated {
                    sink: sink.clone(),
                    name: name.clone(),
                    began,
                    written_at,
                    reloaded: *reload,
                    secret,
                });
                Ok(())
            }
            SecretStep::Verify {
                sink,
                name,
                rotation,
                until,
                reload,
            } => {
                let current = self
                    .verify(endpoint_id, (sink, name), *rotation, *until, *reload)
                    .await?;
                // Waited for once the change's field updates are made, as after a rotation.
                self.rotated = self.recovered((sink, name), *until, *reload, current);
                Ok(())
            }
            SecretStep::Remove { .. } => {
                Err(self.inconsistent("only a delete removes secrets".to_owned()))
            }
        }
    }

    /// Rotates the secret, with the endpoint recorded unsettled first: whatever happens to
    /// the request or to this process, the next run finds the record and checks the sink.
    /// A rotation is never repeated (one whose answer was lost may still land), and the record
    /// says until when a lost request may land: the late window from the latest moment the
    /// rotation may leave, which the client holds it to.
    ///
    /// With `reload`, the sink's reload runs before the endpoint is recorded settled: should it
    /// fail, or this process die first, the record makes the next apply check the sink and run
    /// it again. Returns the secret the sink holds and when it was written.
    async fn rotate(
        &mut self,
        endpoint_id: &str,
        (sink, name): (&str, &str),
        (from, to): (u64, u64),
        unsettled_until: Option<u64>,
        reload: bool,
    ) -> Result<(SecretString, tokio::time::Instant), ApplyError> {
        let client = self.target.client;
        let window = self.target.late_window.as_secs();
        let recorded = match self.state {
            Some(SecretState::Unsettled { until, .. }) => until,
            _ => 0,
        };
        let earlier = unsettled_until.unwrap_or(0).max(recorded);
        if earlier > now() {
            // A lost request could land after the record below and undo it; should the
            // rotation's own answer be lost too, nothing would say the sink may be stale.
            let current = self
                .verify(endpoint_id, (sink, name), from, earlier, reload)
                .await?;
            if let Some(recovered) = self.recovered((sink, name), earlier, reload, current) {
                self.settle_receiver(endpoint_id, recovered).await?;
            }
            return Err(ApplyError::RotationDeferred {
                key: self.key.to_owned(),
                until: earlier,
                by_command: from == to,
            });
        }
        let mut marks = 0;
        let secret = loop {
            marks += 1;
            // Seconds up, so that the record never ends before the window does.
            let until = now_ceil().saturating_add(SEND_MARGIN_SECS + window);
            self.mark_unsettled(
                endpoint_id,
                SecretState::Unsettled {
                    rotation: from,
                    until,
                },
            )
            .await?;
            let send_by = UNIX_EPOCH + Duration::from_secs(until - window);
            match client.rotate_secret(endpoint_id, send_by).await {
                Ok(secret) => break secret,
                // The record took too long to make: make it again, later, before rotating.
                Err(ApiError::NotSentInTime { .. }) if marks < MAX_MARKS => continue,
                Err(err) if err.is_outcome_unknown() => {
                    // The rotation may have happened, or may still land. The sink gets what
                    // the API holds now, so the receiver works meanwhile; the record stays, so
                    // the next apply rotates again (or, for `kayle-sync rotate`, checks the
                    // sink once no lost request can land any more).
                    let current = self.api(client.reveal_secret(endpoint_id).await)?;
                    self.put(sink, name, &current).await?;
                    self.done.push(Step::SecretRecovered {
                        sink: sink.to_owned(),
                        name: name.to_owned(),
                        unsettled: true,
                    });
                    if reload && let Err(failed) = self.reload_written(sink, &current).await {
                        // The record makes the next apply run it again; the lost answer is
                        // what this run reports.
                        tracing::debug!(key = self.key, error = %failed, "reload after a lost rotation");
                    }
                    return Err(self.api_error(err));
                }
                Err(err) => return Err(self.api_error(err)),
            }
        };
        self.put(sink, name, &secret).await?;
        let secret = self
            .settle_rotation(endpoint_id, sink, name, secret)
            .await?;
        let written_at = tokio::time::Instant::now();
        self.done.push(Step::SecretRotated {
            sink: sink.to_owned(),
            name: name.to_owned(),
        });
        if reload && let Err(failed) = self.reload_written(sink, &secret).await {
            // Recorded at the new rotation, so the next apply does not rotate again.
            self.unsettle_for_reload(endpoint_id, Some(to)).await;
            return Err(failed);
        }
        self.settle(endpoint_id, SecretState::Settled { rotation: to }, false)
            .await?;
        Ok((secret, written_at))
    }

    /// Reveals the secret of an unsettled endpoint and writes it to the sink unless the sink
    /// holds it already; runs the sink's reload with `reload` (the receiver may not have loaded
    /// what an interrupted run wrote); records it settled once no lost request can land any
    /// more. Returns the API's current secret, which the sink now holds: the receiver may only
    /// now take it.
    async fn verify(
        &mut self,
        endpoint_id: &str,
        (sink, name): (&str, &str),
        rotation: u64,
        until: u64,
        reload: bool,
    ) -> Result<SecretString, ApplyError> {
        let current = self.api(self.target.client.reveal_secret(endpoint_id).await)?;
        let store = self.store(sink)?.clone();
        let held = store
            .read_all(&[name.to_owned()])
            .await
            .map_err(|source| self.sink_error(sink, name, source))?
            .and_then(|values| values.into_iter().next().flatten());
        let held_it = held.is_some_and(|held| held.expose_secret() == current.expose_secret());
        if held_it {
            self.done.push(Step::SecretVerified {
                sink: sink.to_owned(),
                name: name.to_owned(),
            });
        } else {
            self.put(sink, name, &current).await?;
            self.done.push(Step::SecretRecovered {
                sink: sink.to_owned(),
                name: name.to_owned(),
                unsettled: true,
            });
        }
        if reload {
            // The endpoint is recorded unsettled: should the reload fail, the next apply
            // finds the record and runs it again.
            self.reload_written(sink, &current).await?;
        }
        if until > now() {
            self.done.push(Step::KeptUnsettled {
                until,
                lost: Lost::Request,
            });
            return Ok(current);
        }
        self.settle(endpoint_id, SecretState::Settled { rotation }, false)
            .await?;
        Ok(current)
    }

    /// After [`Run::verify`] of an endpoint recorded unsettled `until`: what the receiver is to
    /// be waited for with, now that the sink holds `secret` (whether this run wrote it, a run
    /// that lost a rotation's answer did, or a reload failed after it). The receiver may have
    /// refused what Kayle signed since the rotation that left the record, so those deliveries
    /// are retried once it takes the secret, as after a rotation of this run. The record says
    /// when that rotation began at the earliest (by this run's late window); a create's record
    /// (`until` 0) is of an endpoint never enabled, and is not waited for.
    fn recovered(
        &self,
        (sink, name): (&str, &str),
        until: u64,
        reloaded: bool,
        secret: SecretString,
    ) -> Option<Rotated> {
        Some(Rotated {
            sink: sink.to_owned(),
            name: name.to_owned(),
            began: self.rotation_began(until)?,
            written_at: tokio::time::Instant::now(),
            reloaded,
            secret,
        })
    }

    /// The earliest the rotation that recorded an endpoint unsettled `until` (see
    /// [`Run::rotate`]) may have begun, by this run's late window; `None` for a record with no
    /// time (a create's).
    fn rotation_began(&self, until: u64) -> Option<jiff::Timestamp> {
        let window = self.target.late_window.as_secs();
        let began = until.checked_sub(window + SEND_MARGIN_SECS)?;
        jiff::Timestamp::from_second(i64::try_from(began).ok()?).ok()
    }

    /// Runs the reload of `sink`, which was just written `written` (scrubbed from what the
    /// command prints), unless a run started since covers it.
    pub(super) async fn reload_written(
        &mut self,
        sink: &str,
        written: &SecretString,
    ) -> Result<(), ApplyError> {
        let Some(reload) = self.target.sinks.reload(sink) else {
            return Err(self.inconsistent(format!("sink {sink} has no reload command any more")));
        };
        let ran = reload
            .after(std::time::Instant::now(), written)
            .await
            .map_err(|source| ApplyError::Reload {
                key: self.key.to_owned(),
                sink: sink.to_owned(),
                source: Box::new(source),
            })?;
        self.done.push(Step::Reloaded {
            sink: sink.to_owned(),
            covered: ran == Reloaded::Covered,
        });
        Ok(())
    }

    /// After a reload failed: records the endpoint unsettled at `rotation` (by default the
    /// one its labels record), so that the next apply checks the sink and runs the reload
    /// again instead of finding nothing to do. No request of this run lost its answer, so none
    /// can land late: `until` is now (whole seconds down, so never later than the next run's
    /// clock), which also tells that run since when the receiver may have refused deliveries
    /// (see [`Run::recovered`]). The reload's failure is what the run
    /// reports; a record that fails too leaves the endpoint as it was.
    async fn unsettle_for_reload(&mut self, endpoint_id: &str, rotation: Option<u64>) {
        let rotation = match rotation {
            Some(rotation) => rotation,
            None => match self.current_labels(endpoint_id).await {
                Ok(labels) => {
                    let prefix = &self.target.desired.project.label_prefix;
                    SecretState::of_labels(prefix, &labels).rotation()
                }
                Err(error) => {
                    tracing::debug!(key = self.key, %error, "reading the labels after a failed reload");
                    return;
                }
            },
        };
        let state = SecretState::Unsettled {
            rotation,
            until: super::endpoint::now(),
        };
        if let Err(error) = self.settle(endpoint_id, state, false).await {
            tracing::debug!(key = self.key, %error, "recording a failed reload");
        }
    }

    /// Records `state` on the endpoint, and enables it with `enable` (through
    /// [`Run::update_recorded`]: an answer lost on the way leaves the endpoint unsettled).
    pub(super) async fn settle(
        &mut self,
        endpoint_id: &str,
        state: SecretState,
        enable: bool,
    ) -> Result<(), ApplyError> {
        let labels = self.current_labels(endpoint_id).await?;
        let fields = EndpointFields {
            labels: Some(self.with_state(&labels, state)),
            enabled: enable.then_some(true),
            ..EndpointFields::default()
        };
        self.state = Some(state);
        self.update_recorded(endpoint_id, fields).await
    }

    /// Updates the endpoint. An update whose answer was lost may land late, over whatever
    /// is written after it, such as a later run's record before a rotation: were that
    /// rotation's answer lost too, nothing would say the sink may be stale. So after a lost
    /// answer the update is sent again with the endpoint recorded unsettled until the lost
    /// one can no longer land, and no rotation starts before then (see [`Run::rotate`]).
    pub(super) async fn update_recorded(
        &mut self,
        endpoint_id: &str,
        mut fields: EndpointFields,
    ) -> Result<(), ApplyError> {
        let client = self.target.client;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let lost = match client.update_endpoint(endpoint_id, &fields).await {
                Ok(updated) => {
                    self.labels = Some(updated.labels);
                    return Ok(());
                }
                Err(err) if err.is_outcome_unknown() && attempts < MAX_MARKS => err,
                Err(err) => return Err(self.api_error(err)),
            };
            tracing::debug!(endpoint_id, error = %lost, "recording a lost update");
            let labels = match fields.labels.take() {
                Some(labels) => labels,
                None => self.current_labels(endpoint_id).await?,
            };
            let prefix = &self.target.desired.project.label_prefix;
            let written = SecretState::of_labels(prefix, &labels);
            let earlier = match written {
                SecretState::Unsettled { until, .. } => until,
                SecretState::Settled { .. } => 0,
            };
            let until = earlier.max(now_ceil().saturating_add(self.target.late_window.as_secs()));
            let state = SecretState::Unsettled {
                rotation: written.rotation(),
                until,
            };
            fields.labels = Some(self.with_state(&labels, state));
            self.state = Some(state);
            self.done.push(Step::KeptUnsettled {
                until,
                lost: Lost::Update,
            });
        }
    }

    /// Records `state` before a step that could leave the sink behind. Sent once: were it
    /// repeated after a lost answer, the first attempt could land after this run recorded the
    /// step settled, and undo that record (the next apply would rotate again). When its answer
    /// is lost, the step is not taken.
    async fn mark_unsettled(
        &mut self,
        endpoint_id: &str,
        state: SecretState,
    ) -> Result<(), ApplyError> {
        let labels = self.current_labels(endpoint_id).await?;
        let fields = EndpointFields {
            labels: Some(self.with_state(&labels, state)),
            ..EndpointFields::default()
        };
        let client = self.target.client;
        let updated = self.api(client.update_endpoint_once(endpoint_id, &fields).await)?;
        self.labels = Some(updated.labels);
        self.state = Some(state);
        Ok(())
    }

    /// The endpoint's labels as this run last saw them, read from the API if it has not.
    async fn current_labels(&mut self, endpoint_id: &str) -> Result<Vec<String>, ApplyError> {
        if let Some(labels) = &self.labels {
            return Ok(labels.clone());
        }
        let endpoint = self.api(self.target.client.get_endpoint(endpoint_id).await)?;
        self.labels = Some(endpoint.labels.clone());
        Ok(endpoint.labels)
    }

    /// `labels` with the secret-state label recording `state`.
    pub(super) fn with_state(&self, labels: &[String], state: SecretState) -> Vec<String> {
        crate::plan::with_state_label(&self.target.desired.project, labels, state)
    }

    pub(super) fn wanted_rotation(&self) -> Result<u64, ApplyError> {
        self.target
            .desired
            .endpoints
            .get(self.key)
            .map(|wanted| wanted.signing_secret.rotation)
            .ok_or_else(|| self.inconsistent("the endpoint is not declared any more".into()))
    }

    /// Another rotation (a racing apply, a `rotate` elsewhere) may have replaced the secret
    /// just written: the sink must end with the secret the API holds now, so read it back
    /// and write again until they agree.
    async fn settle_rotation(
        &mut self,
        endpoint_id: &str,
        sink: &str,
        name: &str,
        mut written: SecretString,
    ) -> Result<SecretString, ApplyError> {
        for _ in 0..3 {
            let current = self.api(self.target.client.reveal_secret(endpoint_id).await)?;
            if current.expose_secret() == written.expose_secret() {
                return Ok(written);
            }
            self.put(sink, name, &current).await?;
            written = current;
        }
        Ok(written)
    }
}
