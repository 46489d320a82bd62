//! The signing-secret steps of one endpoint's work: writing, recovering, rotating and
//! verifying a secret, and recording on the endpoint what kayle-sync knows about it (see
//! [`SecretState`]), so that a lost request, a late one or a killed process never leaves a sink
//! stale without the next plan saying so.

use secrecy::{ExposeSecret, SecretString};

use super::endpoint::{ApplyError, Run, now};
use crate::api::EndpointFields;
use crate::model::SecretState;
use crate::plan::SecretStep;

impl Run<'_, '_> {
    pub(super) async fn secret_step(
        &mut self,
        endpoint_id: &str,
        step: &SecretStep,
        issued: Option<SecretString>,
    ) -> Result<(), ApplyError> {
        let client = self.target.client;
        match step {
            SecretStep::Write { sink, name } | SecretStep::Recover { sink, name, .. } => {
                let (secret, what) = match issued {
                    Some(secret) => (secret, "written"),
                    None => (
                        self.api(client.reveal_secret(endpoint_id).await)?,
                        "recovered",
                    ),
                };
                self.put(sink, name, &secret).await?;
                self.done
                    .push(format!("signing secret {what} to sink {sink} as {name}"));
                Ok(())
            }
            SecretStep::Rotate {
                sink,
                name,
                from,
                to,
                unsettled_until,
                ..
            } => {
                let began = jiff::Timestamp::now();
                self.rotate(endpoint_id, sink, name, (*from, *to), *unsettled_until)
                    .await?;
                self.settle_receiver(endpoint_id, sink, name, began).await
            }
            SecretStep::Verify {
                sink,
                name,
                rotation,
                until,
            } => {
                self.verify(endpoint_id, sink, name, *rotation, *until)
                    .await
            }
            SecretStep::Remove { .. } => {
                Err(self.inconsistent("only a delete removes secrets".to_owned()))
            }
        }
    }

    /// Rotates the secret, with the endpoint recorded unsettled first: whatever happens to
    /// the request or to this process, the next run finds the record and checks the sink.
    /// A rotation is never repeated (one whose answer was lost may still land), and the record
    /// says until when a lost request may land.
    async fn rotate(
        &mut self,
        endpoint_id: &str,
        sink: &str,
        name: &str,
        (from, to): (u64, u64),
        unsettled_until: Option<u64>,
    ) -> Result<(), ApplyError> {
        let client = self.target.client;
        let window = self.target.late_window.as_secs();
        let earlier = unsettled_until.unwrap_or(0);
        let until = earlier.max(now().saturating_add(window));
        self.mark_unsettled(
            endpoint_id,
            SecretState::Unsettled {
                rotation: from,
                until,
            },
        )
        .await?;
        let secret = match client.rotate_secret(endpoint_id).await {
            Ok(secret) => secret,
            Err(err) if err.is_outcome_unknown() => {
                // The rotation may have happened, or may still land. The sink gets what the
                // API holds now, so the receiver works meanwhile; the record stays, so the
                // next apply rotates again (or, for `kayle-sync rotate`, checks the sink once
                // no lost request can land any more).
                let current = self.api(client.reveal_secret(endpoint_id).await)?;
                self.put(sink, name, &current).await?;
                return Err(self.api_error(err));
            }
            Err(err) => return Err(self.api_error(err)),
        };
        self.put(sink, name, &secret).await?;
        self.settle_rotation(endpoint_id, sink, name, secret)
            .await?;
        self.done.push(format!(
            "signing secret rotated, written to sink {sink} as {name}"
        ));
        // An earlier lost request may still land: the record stays until it no longer can.
        let state = if earlier > now() {
            SecretState::Unsettled {
                rotation: to,
                until: earlier,
            }
        } else {
            SecretState::Settled { rotation: to }
        };
        self.settle(endpoint_id, state, false).await
    }

    /// Reveals the secret of an unsettled endpoint and writes it to the sink unless the sink
    /// holds it already; records it settled once no lost request can land any more.
    async fn verify(
        &mut self,
        endpoint_id: &str,
        sink: &str,
        name: &str,
        rotation: u64,
        until: u64,
    ) -> Result<(), ApplyError> {
        let current = self.api(self.target.client.reveal_secret(endpoint_id).await)?;
        let store = self.store(sink)?.clone();
        let held = store
            .read_all(&[name.to_owned()])
            .await
            .map_err(|source| self.sink_error(sink, name, source))?
            .and_then(|values| values.into_iter().next().flatten());
        if held.is_some_and(|held| held.expose_secret() == current.expose_secret()) {
            self.done
                .push(format!("signing secret in sink {sink} as {name} verified"));
        } else {
            self.put(sink, name, &current).await?;
            self.done.push(format!(
                "signing secret recovered to sink {sink} as {name} (it was unsettled)"
            ));
        }
        if until > now() {
            self.done.push(format!(
                "kept unsettled until {}: a request whose answer was lost may still land",
                jiff::Timestamp::from_second(until as i64)
                    .map_or_else(|_| until.to_string(), |t| t.to_string())
            ));
            return Ok(());
        }
        self.settle(endpoint_id, SecretState::Settled { rotation }, false)
            .await
    }

    /// Records `state` on the endpoint, and enables it with `enable`.
    ///
    /// Repeated within the retry policy like any update. An attempt whose answer was lost can
    /// still land later; should it land over the record of a later run's rotation whose own
    /// answer was lost too, that doubt would be lost: two lost answers on one endpoint within
    /// the late window. `--verify-secrets` finds what that leaves.
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
        let updated = self.api(
            self.target
                .client
                .update_endpoint(endpoint_id, &fields)
                .await,
        )?;
        self.labels = Some(updated.labels);
        self.state = Some(state);
        Ok(())
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
    ) -> Result<(), ApplyError> {
        for _ in 0..3 {
            let current = self.api(self.target.client.reveal_secret(endpoint_id).await)?;
            if current.expose_secret() == written.expose_secret() {
                return Ok(());
            }
            self.put(sink, name, &current).await?;
            written = current;
        }
        Ok(())
    }
}
