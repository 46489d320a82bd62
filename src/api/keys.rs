//! The signing-secret and encryption-key calls of the client.

use reqwest::Method;
use secrecy::SecretString;
use serde::Deserialize;

use super::{ApiError, Client, MAX_KEY_PAGES, Repeat, Written, signing_secret};
use crate::model::LiveKey;

#[derive(Deserialize)]
struct SecretBody {
    signing_secret: String,
}

impl Client {
    /// The endpoint's current signing secret.
    pub async fn reveal_secret(&self, id: &str) -> Result<SecretString, ApiError> {
        let path = format!("/v1/webhooks/endpoints/{id}/signing-secret/reveal");
        let doing = format!("revealing the signing secret of endpoint {id}");
        let body: SecretBody = self
            .call(Method::POST, &path, None, Repeat::Safe, &doing)
            .await?;
        signing_secret(body.signing_secret, &doing, Written::No)
    }

    /// Replaces the endpoint's signing secret; the old one stops working at once. Never
    /// repeated blindly: a rotation whose answer was lost (a timeout) may still land on the
    /// server after a repeat, replacing the secret the repeat returned; the error is then
    /// [`ApiError::OutcomeUnknown`].
    ///
    /// Not sent once `send_by` has passed ([`ApiError::NotSentInTime`]): the caller records,
    /// before rotating, until when a lost rotation may land, counting from `send_by`.
    pub async fn rotate_secret(
        &self,
        id: &str,
        send_by: std::time::SystemTime,
    ) -> Result<SecretString, ApiError> {
        let path = format!("/v1/webhooks/endpoints/{id}/signing-secret/rotate");
        let doing = format!("rotating the signing secret of endpoint {id}");
        let body: SecretBody = self
            .call_enveloped(
                Method::POST,
                &path,
                None,
                Repeat::Never,
                Some(send_by),
                &doing,
            )
            .await?
            .data;
        signing_secret(body.signing_secret, &doing, Written::Yes)
    }

    /// Every encryption key of an endpoint, newest first.
    pub async fn list_keys(&self, endpoint_id: &str) -> Result<Vec<LiveKey>, ApiError> {
        let path = format!("/v1/webhooks/endpoints/{endpoint_id}/keys");
        self.list_all(
            &path,
            MAX_KEY_PAGES,
            &format!("listing the keys of endpoint {endpoint_id}"),
        )
        .await
    }

    /// Registers a public key; the server makes it the active one. Not repeated blindly (a
    /// second create would register a second key with the same `key_id`).
    pub async fn create_key(
        &self,
        endpoint_id: &str,
        key_id: &str,
        jwk: serde_json::Value,
    ) -> Result<LiveKey, ApiError> {
        let path = format!("/v1/webhooks/endpoints/{endpoint_id}/keys");
        let body = serde_json::json!({
            "key_id": key_id,
            "algorithm": "RSA-OAEP-256",
            "key_type": "RSA",
            "jwk": jwk,
        });
        let doing = format!("registering key {key_id} on endpoint {endpoint_id}");
        self.call(Method::POST, &path, Some(&body), Repeat::Never, &doing)
            .await
    }

    pub async fn deactivate_key(&self, id: &str) -> Result<LiveKey, ApiError> {
        let path = format!("/v1/webhooks/keys/{id}/deactivate");
        self.call(
            Method::POST,
            &path,
            None,
            Repeat::Safe,
            &format!("deactivating key {id}"),
        )
        .await
    }

    pub async fn reactivate_key(&self, id: &str) -> Result<LiveKey, ApiError> {
        let path = format!("/v1/webhooks/keys/{id}/reactivate");
        self.call(
            Method::POST,
            &path,
            None,
            Repeat::Safe,
            &format!("reactivating key {id}"),
        )
        .await
    }
}
