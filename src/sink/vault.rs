//! The `vault` sink: HashiCorp Vault or OpenBao KV version 2, written with check-and-set.
//!
//! The secret at `path` (`{name}` replaced) holds a map; the entry's key is the secret's name,
//! so several names may share one path. A write reads the current version, merges the entry
//! into the data it read, and writes with `options.cas` set to that version: a writer that got
//! in between makes the write fail instead of being overwritten, and the cycle is retried.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};

use crate::http;
use crate::model::{SecretSink, SinkError};
use crate::redact;

/// How many read-merge-write cycles a put tries before giving up with a conflict.
const MAX_ATTEMPTS: u64 = 10;

/// Runs between the read and the write of a put; tests use it to race the sink.
pub type BeforeWrite = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// A KV v2 mount of a Vault or OpenBao server.
pub struct VaultSink {
    sink: String,
    address: String,
    mount: String,
    path: String,
    token_env: String,
    http: reqwest::Client,
    before_write: Option<BeforeWrite>,
}

impl std::fmt::Debug for VaultSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultSink")
            .field("sink", &self.sink)
            .field("address", &self.address)
            .field("mount", &self.mount)
            .field("path", &self.path)
            .field("token_env", &self.token_env)
            .finish_non_exhaustive()
    }
}

/// The secret's current data and version (0 when it was never written).
struct Current {
    data: Map<String, Value>,
    version: u64,
}

impl VaultSink {
    /// A sink named `sink`; the token is read from the variable `token_env` at each call.
    /// One request may take as long as [`http::request_timeout`] says. The token goes only
    /// over https or to this machine: any other `address` is refused here.
    pub fn new(
        sink: &str,
        address: &str,
        mount: &str,
        path: &str,
        token_env: &str,
    ) -> Result<Self, SinkError> {
        let config = |message: String| SinkError::Config {
            sink: sink.to_owned(),
            message,
        };
        let address = address.trim_end_matches('/');
        http::check_credential_url(address)
            .map_err(|e| config(format!("address {}: {e}", http::redact(address))))?;
        let timeout = http::request_timeout().map_err(config)?;
        let http = http::client_builder(timeout)
            .build()
            .map_err(|e| SinkError::Store {
                sink: sink.to_owned(),
                message: format!("cannot set up an HTTP client: {e}"),
            })?;
        Ok(VaultSink {
            sink: sink.to_owned(),
            address: address.to_owned(),
            mount: mount.trim_matches('/').to_owned(),
            path: path.trim_matches('/').to_owned(),
            token_env: token_env.to_owned(),
            http,
            before_write: None,
        })
    }

    /// Runs `hook` between the read and the write of every put attempt (for tests).
    pub fn with_before_write(mut self, hook: BeforeWrite) -> Self {
        self.before_write = Some(hook);
        self
    }

    /// An error whose message can quote the server or the address (with its userinfo): made
    /// safe to show.
    fn error(&self, message: impl Into<String>) -> SinkError {
        SinkError::Store {
            sink: self.sink.clone(),
            message: redact::untrusted(&message.into(), &[]),
        }
    }

    /// The token, or a configuration error: a variable that is not set (or holds no token)
    /// stays so for the life of the process, whatever is tried again.
    fn token(&self) -> Result<SecretString, SinkError> {
        let config = |message: String| SinkError::Config {
            sink: self.sink.clone(),
            message: redact::untrusted(&message, &[]),
        };
        // Taken out of the environment at start, when the project names the variable.
        match crate::credentials::token(&self.token_env) {
            Ok(Some(token)) if !token.expose_secret().is_empty() => Ok(token),
            Err(not_a_token) => Err(config(not_a_token.to_string())),
            _ => Err(config(format!(
                "the environment variable {} that should hold the Vault token is not set",
                self.token_env
            ))),
        }
    }

    fn data_url(&self, name: &str) -> String {
        let path = self.path.replace("{name}", name);
        format!("{}/v1/{}/data/{path}", self.address, self.mount)
    }

    /// The message of a failed call: status and the server's `errors`, scrubbed of the `known`
    /// secrets (the token, the values being written), which a server can echo.
    async fn failure(&self, doing: &str, response: reqwest::Response, known: &[&str]) -> SinkError {
        let status = response.status();
        let errors = http::read_body(response, http::MAX_RESPONSE_BYTES)
            .await
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
            .and_then(|body| body.get("errors").cloned())
            .and_then(|e| serde_json::from_value::<Vec<String>>(e).ok())
            .unwrap_or_default();
        let mut message = format!("{doing} failed: HTTP {status}");
        if !errors.is_empty() {
            message.push_str(": ");
            message.push_str(&errors.join("; "));
        }
        // The address's userinfo goes out as Basic auth, which a server can echo too.
        let userinfo = redact::url_credentials(&self.address);
        let known: Vec<&str> = known
            .iter()
            .copied()
            .chain(userinfo.iter().map(String::as_str))
            .collect();
        self.error(redact::scrub(&message, &known))
    }

    /// Refuses a redirect, which is not followed: it would carry the token, and on a write
    /// the secret, to wherever the answer points.
    fn refuse_redirect(&self, doing: &str, response: &reqwest::Response) -> Result<(), SinkError> {
        let status = response.status();
        if !status.is_redirection() {
            return Ok(());
        }
        Err(self.error(format!(
            "{doing}: HTTP {status}: the server redirects, and redirects are not followed (they \
             would carry the Vault token elsewhere); set `address` to where Vault answers"
        )))
    }

    /// The body of a successful answer, at most [`http::MAX_RESPONSE_BYTES`] of it.
    async fn body(&self, doing: &str, response: reqwest::Response) -> Result<Value, SinkError> {
        let bytes = http::read_body(response, http::MAX_RESPONSE_BYTES)
            .await
            .map_err(|e| self.error(format!("{doing}: {e}")))?;
        Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn read(&self, url: &str, token: &SecretString) -> Result<Current, SinkError> {
        let response = self
            .http
            .get(url)
            .header("X-Vault-Token", token.expose_secret())
            .send()
            .await
            .map_err(|e| self.error(format!("reading {url}: {e}")))?;
        self.refuse_redirect(&format!("reading {url}"), &response)?;
        let status = response.status();
        if status != StatusCode::OK && status != StatusCode::NOT_FOUND {
            let known = [token.expose_secret()];
            return Err(self
                .failure(&format!("reading {url}"), response, &known)
                .await);
        }
        // A 404 is a path never written, or one whose latest version was deleted: its
        // metadata still carries the version a check-and-set write must name.
        let body = self.body(&format!("reading {url}"), response).await?;
        let version = body
            .pointer("/data/metadata/version")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let data = match body.pointer("/data/data") {
            Some(Value::Object(map)) if status == StatusCode::OK => map.clone(),
            _ => Map::new(),
        };
        Ok(Current { data, version })
    }

    /// Writes `data` if the secret is still at `version`; `Ok(false)` if someone got in between.
    async fn write(
        &self,
        url: &str,
        token: &SecretString,
        data: Map<String, Value>,
        version: u64,
    ) -> Result<bool, SinkError> {
        let body = json!({ "options": { "cas": version }, "data": data });
        let response = self
            .http
            .post(url)
            .header("X-Vault-Token", token.expose_secret())
            .json(&body)
            .send()
            .await
            .map_err(|e| self.error(format!("writing {url}: {e}")))?;
        self.refuse_redirect(&format!("writing {url}"), &response)?;
        if response.status().is_success() {
            return Ok(true);
        }
        let mut known: Vec<&str> = body["data"]
            .as_object()
            .into_iter()
            .flat_map(|data| data.values().filter_map(Value::as_str))
            .collect();
        known.push(token.expose_secret());
        let failure = self
            .failure(&format!("writing {url}"), response, &known)
            .await;
        if failure.to_string().contains("check-and-set") {
            return Ok(false);
        }
        Err(failure)
    }
}

#[async_trait::async_trait]
impl SecretSink for VaultSink {
    fn name(&self) -> &str {
        &self.sink
    }

    async fn put(&self, name: &str, value: &SecretString) -> Result<(), SinkError> {
        self.merge_in(name, value, false).await.map(|_| ())
    }

    async fn contains(&self, name: &str) -> Result<Option<bool>, SinkError> {
        let token = self.token()?;
        let current = self.read(&self.data_url(name), &token).await?;
        Ok(Some(held(&current.data, name).is_some()))
    }

    async fn read_all(
        &self,
        names: &[String],
    ) -> Result<Option<Vec<Option<SecretString>>>, SinkError> {
        let token = self.token()?;
        let mut values = Vec::with_capacity(names.len());
        for name in names {
            let current = self.read(&self.data_url(name), &token).await?;
            values.push(held(&current.data, name));
        }
        Ok(Some(values))
    }

    /// The token is looked up (`auth/token/lookup-self`): present, accepted, server reachable.
    async fn check_writable(&self) -> Result<(), SinkError> {
        let token = self.token()?;
        let url = format!("{}/v1/auth/token/lookup-self", self.address);
        let response = self
            .http
            .get(&url)
            .header("X-Vault-Token", token.expose_secret())
            .send()
            .await
            .map_err(|e| self.error(format!("checking the token at {url}: {e}")))?;
        self.refuse_redirect(&format!("checking the token at {url}"), &response)?;
        if response.status().is_success() {
            return Ok(());
        }
        let known = [token.expose_secret()];
        Err(self
            .failure(&format!("checking the token at {url}"), response, &known)
            .await)
    }

    /// With check-and-set, like a put; when the map is left empty, its version is deleted too.
    async fn remove(&self, name: &str) -> Result<bool, SinkError> {
        self.remove_entry(name).await
    }

    /// With check-and-set, like a put: a writer that got in between is seen on the next read.
    async fn put_if_absent(
        &self,
        name: &str,
        value: &SecretString,
    ) -> Result<Option<SecretString>, SinkError> {
        self.merge_in(name, value, true).await
    }
}

/// The non-empty string value of `name` in a secret's data.
fn held(data: &Map<String, Value>, name: &str) -> Option<SecretString> {
    match data.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Some(SecretString::from(s.clone())),
        _ => None,
    }
}

impl VaultSink {
    /// Deletes the entry `name` from the secret's data with check-and-set, retrying when
    /// another writer got in between; a secret left with no entry has that version deleted.
    async fn remove_entry(&self, name: &str) -> Result<bool, SinkError> {
        let token = self.token()?;
        let url = self.data_url(name);
        for attempt in 1..=MAX_ATTEMPTS {
            let Current { mut data, version } = self.read(&url, &token).await?;
            if data.remove(name).is_none() {
                return Ok(false);
            }
            let empty = data.is_empty();
            if self.write(&url, &token, data, version).await? {
                if empty {
                    self.delete_latest(&url, &token).await?;
                }
                return Ok(true);
            }
            self.after_conflict(&url, attempt).await;
        }
        Err(SinkError::Conflict {
            sink: self.sink.clone(),
            name: name.to_owned(),
        })
    }

    /// Waits before the next check-and-set cycle, jittered so that writers racing for one
    /// path do not collide again in lockstep.
    async fn after_conflict(&self, url: &str, attempt: u64) {
        tracing::debug!(sink = %self.sink, url = %redact::scrub_url(url), attempt, "check-and-set conflict");
        let pause = rand::random_range(5..=25) * attempt;
        tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
    }

    /// Deletes the latest version of the secret at `url` (KV v2 keeps it recoverable).
    async fn delete_latest(&self, url: &str, token: &SecretString) -> Result<(), SinkError> {
        let response = self
            .http
            .delete(url)
            .header("X-Vault-Token", token.expose_secret())
            .send()
            .await
            .map_err(|e| self.error(format!("deleting {url}: {e}")))?;
        self.refuse_redirect(&format!("deleting {url}"), &response)?;
        if response.status().is_success() {
            return Ok(());
        }
        let known = [token.expose_secret()];
        Err(self
            .failure(&format!("deleting {url}"), response, &known)
            .await)
    }

    /// Merges `name = value` into the secret's data with check-and-set, retrying when another
    /// writer got in between. With `keep_existing`, a value already held is returned instead,
    /// and nothing is written.
    async fn merge_in(
        &self,
        name: &str,
        value: &SecretString,
        keep_existing: bool,
    ) -> Result<Option<SecretString>, SinkError> {
        let token = self.token()?;
        let url = self.data_url(name);
        for attempt in 1..=MAX_ATTEMPTS {
            let Current { mut data, version } = self.read(&url, &token).await?;
            if keep_existing && let Some(existing) = held(&data, name) {
                return Ok(Some(existing));
            }
            data.insert(
                name.to_owned(),
                Value::String(value.expose_secret().to_owned()),
            );
            if let Some(hook) = &self.before_write {
                hook().await;
            }
            if self.write(&url, &token, data, version).await? {
                return Ok(None);
            }
            self.after_conflict(&url, attempt).await;
        }
        Err(SinkError::Conflict {
            sink: self.sink.clone(),
            name: name.to_owned(),
        })
    }
}
