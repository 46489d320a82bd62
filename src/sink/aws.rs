//! The `aws-secrets-manager` sink: one Secrets Manager secret per name, `prefix` + name.

use aws_config::BehaviorVersion;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::OnceCell;

use crate::http;
use crate::model::{SecretSink, SinkError};
use crate::redact;

/// Every call to Secrets Manager is bounded like any other request: an unresponsive endpoint
/// fails the step instead of holding a plan or an apply for good (the SDK sets no limit).
/// One attempt may take [`http::request_timeout`]; a call with the SDK's retries, twice that.
fn timeouts() -> TimeoutConfig {
    let attempt = http::request_timeout().unwrap_or(http::DEFAULT_TIMEOUT);
    TimeoutConfig::builder()
        .connect_timeout(http::connect_timeout(attempt))
        .operation_attempt_timeout(attempt)
        .operation_timeout(attempt * 2)
        .build()
}

/// How long a removed secret can still be restored, in days (AWS allows 7 to 30).
const RECOVERY_WINDOW_DAYS: i64 = 30;

/// AWS Secrets Manager in one region; credentials come from the standard AWS chain
/// (environment, profile, SSO, process, instance metadata).
pub struct AwsSecretsManagerSink {
    sink: String,
    region: Option<String>,
    endpoint_url: Option<String>,
    prefix: String,
    /// Built on first use: loading the AWS configuration is async and may read files.
    client: OnceCell<Client>,
    /// The secret parts of the credentials the client signs with (secret key, session token),
    /// scrubbed from every error: whatever answers at `endpoint_url` can echo the request.
    credentials: std::sync::OnceLock<Vec<SecretString>>,
}

/// Leaves out the client, whose configuration holds the credentials provider.
impl std::fmt::Debug for AwsSecretsManagerSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsSecretsManagerSink")
            .field("sink", &self.sink)
            .field("region", &self.region)
            .field("endpoint_url", &self.endpoint_url)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl AwsSecretsManagerSink {
    /// A sink named `sink`; `region` and `endpoint_url` override the AWS configuration's.
    pub fn new(
        sink: &str,
        region: Option<String>,
        endpoint_url: Option<String>,
        prefix: &str,
    ) -> Self {
        AwsSecretsManagerSink {
            sink: sink.to_owned(),
            region,
            endpoint_url,
            prefix: prefix.to_owned(),
            client: OnceCell::new(),
            credentials: std::sync::OnceLock::new(),
        }
    }

    async fn client(&self) -> &Client {
        self.client
            .get_or_init(|| async {
                let mut loader =
                    aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts());
                if let Some(region) = &self.region {
                    loader = loader.region(aws_config::Region::new(region.clone()));
                }
                if let Some(url) = &self.endpoint_url {
                    loader = loader.endpoint_url(url);
                }
                let config = loader.load().await;
                let mut secrets = Vec::new();
                if let Some(provider) = config.credentials_provider() {
                    use aws_sdk_secretsmanager::config::ProvideCredentials;
                    if let Ok(credentials) = provider.provide_credentials().await {
                        secrets.push(SecretString::from(credentials.secret_access_key()));
                        secrets.extend(credentials.session_token().map(SecretString::from));
                    }
                }
                let _ = self.credentials.set(secrets);
                Client::new(&config)
            })
            .await
    }

    /// The error for a failed call, `value` being the secret it was writing, if any: scrubbed
    /// from what the service said, since a service (or whatever answers at `endpoint_url`) can
    /// echo the request.
    fn error<E>(
        &self,
        doing: &str,
        id: &str,
        e: SdkError<E>,
        value: Option<&SecretString>,
    ) -> SinkError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let mut known: Vec<&str> = value.map(|v| v.expose_secret()).into_iter().collect();
        known.extend(
            self.credentials
                .get()
                .into_iter()
                .flatten()
                .map(|secret| secret.expose_secret()),
        );
        SinkError::Store {
            sink: self.sink.clone(),
            message: redact::untrusted(&format!("{doing} secret {id}: {}", describe(&e)), &known),
        }
    }

    /// Creates the secret; `Ok(false)` if another writer created it first.
    async fn create(&self, id: &str, value: &SecretString) -> Result<bool, SinkError> {
        let created = self
            .client()
            .await
            .create_secret()
            .name(id)
            .secret_string(value.expose_secret())
            .description("Webhook signing secret written by kayle-sync")
            .send()
            .await;
        match created {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_exists_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(self.error("creating", id, e, Some(value))),
        }
    }

    /// The secret's description, or `None` if there is no such secret.
    async fn describe(&self, id: &str) -> Result<Option<DescribeSecretOutput>, SinkError> {
        let described = self
            .client()
            .await
            .describe_secret()
            .secret_id(id)
            .send()
            .await;
        match described {
            Ok(secret) => Ok(Some(secret)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(self.error("describing", id, e, None)),
        }
    }

    /// Cancels a scheduled deletion.
    async fn restore(&self, id: &str) -> Result<(), SinkError> {
        let restored = self
            .client()
            .await
            .restore_secret()
            .secret_id(id)
            .send()
            .await;
        restored
            .map(|_| ())
            .map_err(|e| self.error("restoring", id, e, None))
    }

    /// The secret's current value; `None` when there is no such secret, it is scheduled for
    /// deletion, or its value is empty.
    async fn value(&self, id: &str) -> Result<Option<SecretString>, SinkError> {
        let got = self
            .client()
            .await
            .get_secret_value()
            .secret_id(id)
            .send()
            .await;
        match got {
            Ok(output) => Ok(output
                .secret_string()
                .filter(|value| !value.is_empty())
                .map(|value| SecretString::from(value.to_owned()))),
            Err(e)
                if e.as_service_error().is_some_and(|s| {
                    // A secret scheduled for deletion answers InvalidRequest.
                    s.is_resource_not_found_exception() || s.is_invalid_request_exception()
                }) =>
            {
                Ok(None)
            }
            Err(e) => Err(self.error("reading", id, e, None)),
        }
    }

    /// Adds a new current version; `Ok(false)` if the secret does not exist.
    async fn update(&self, id: &str, value: &SecretString) -> Result<bool, SinkError> {
        let updated = self
            .client()
            .await
            .put_secret_value()
            .secret_id(id)
            .secret_string(value.expose_secret())
            .send()
            .await;
        match updated {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(self.error("updating", id, e, Some(value))),
        }
    }
}

/// What a failed call says: the status, and the error code and message the SDK read from the
/// body; or, with no answer, each cause's own message. Not the SDK's full dump, which holds the
/// raw response, headers and body.
fn describe<E>(e: &SdkError<E>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    if let Some(response) = e.raw_response() {
        let mut text = format!("HTTP {}", response.status().as_u16());
        if let Some(code) = e.code() {
            text.push_str(&format!(" {code}"));
        }
        if let Some(message) = e.message() {
            text.push_str(&format!(": {message}"));
        }
        return text;
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

#[async_trait::async_trait]
impl SecretSink for AwsSecretsManagerSink {
    fn name(&self) -> &str {
        &self.sink
    }

    /// Updates the secret, creating it if absent and restoring it first if it was scheduled
    /// for deletion (Secrets Manager takes no new value for such a secret).
    async fn put(&self, name: &str, value: &SecretString) -> Result<(), SinkError> {
        let id = format!("{}{name}", self.prefix);
        let exists = match self.describe(&id).await? {
            Some(secret) if secret.deleted_date().is_some() => {
                self.restore(&id).await?;
                true
            }
            Some(_) => true,
            None => false,
        };
        if exists && self.update(&id, value).await? {
            return Ok(());
        }
        if self.create(&id, value).await? {
            return Ok(());
        }
        // Another writer created it between our calls: it exists now.
        if self.update(&id, value).await? {
            return Ok(());
        }
        Err(SinkError::Conflict {
            sink: self.sink.clone(),
            name: name.to_owned(),
        })
    }

    async fn read_all(
        &self,
        names: &[String],
    ) -> Result<Option<Vec<Option<SecretString>>>, SinkError> {
        let mut values = Vec::with_capacity(names.len());
        for name in names {
            values.push(self.value(&format!("{}{name}", self.prefix)).await?);
        }
        Ok(Some(values))
    }

    /// Atomic through CreateSecret, which fails for a name that exists.
    async fn put_if_absent(
        &self,
        name: &str,
        value: &SecretString,
    ) -> Result<Option<SecretString>, SinkError> {
        let id = format!("{}{name}", self.prefix);
        if let Some(existing) = self.value(&id).await? {
            return Ok(Some(existing));
        }
        if self.create(&id, value).await? {
            return Ok(None);
        }
        // It exists: created meanwhile by another writer, or empty, or scheduled for deletion.
        if let Some(existing) = self.value(&id).await? {
            return Ok(Some(existing));
        }
        self.put(name, value).await?;
        Ok(None)
    }

    /// One cheap call (list one secret): credentials found and accepted, endpoint reachable.
    async fn check_writable(&self) -> Result<(), SinkError> {
        let listed = self
            .client()
            .await
            .list_secrets()
            .max_results(1)
            .send()
            .await;
        listed
            .map(drop)
            .map_err(|e| self.error("listing", &format!("{}*", self.prefix), e, None))
    }

    /// Scheduled for deletion with a recovery window, so that a mistaken prune can be undone
    /// with `aws secretsmanager restore-secret`.
    async fn remove(&self, name: &str) -> Result<bool, SinkError> {
        let id = format!("{}{name}", self.prefix);
        match self.describe(&id).await? {
            Some(secret) if secret.deleted_date().is_none() => {}
            _ => return Ok(false),
        }
        let deleted = self
            .client()
            .await
            .delete_secret()
            .secret_id(&id)
            .recovery_window_in_days(RECOVERY_WINDOW_DAYS)
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(self.error("deleting", &id, e, None)),
        }
    }

    /// Present when the secret exists, is not scheduled for deletion and has a current value.
    async fn contains(&self, name: &str) -> Result<Option<bool>, SinkError> {
        let id = format!("{}{name}", self.prefix);
        Ok(Some(self.describe(&id).await?.is_some_and(|secret| {
            let current = secret.version_ids_to_stages().is_some_and(|versions| {
                versions
                    .values()
                    .any(|stages| stages.iter().any(|s| s == "AWSCURRENT"))
            });
            secret.deleted_date().is_none() && current
        })))
    }
}
